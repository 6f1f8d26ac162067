"""GatedRNN: a GRU written out by hand, classifying a sequence from its last hidden state."""

import torch
from torch import Tensor, nn

from kernels import sigmoid_gate


class GatedRNN(nn.Module):
    """GRU (Cho et al., 2014) over x [B, T, input_size] -> logits [B, num_classes].

    z_t = sigmoid(W_z [x_t, h_{t-1}])                    update gate
    r_t = sigmoid(W_r [x_t, h_{t-1}])                    reset gate
    h~_t = tanh(W_h [x_t, r_t * h_{t-1}])                candidate
    h_t = (1 - z_t) * h_{t-1} + z_t * h~_t
    """

    def __init__(self, input_size: int, hidden: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.hidden = hidden
        self.update_gate = nn.Linear(input_size + hidden, hidden)  # W_z
        self.reset_gate = nn.Linear(input_size + hidden, hidden)  # W_r
        self.candidate = nn.Linear(input_size + hidden, hidden)  # W_h
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_classes)

    def cell(self, x_t: Tensor, h: Tensor) -> Tensor:
        """One step: x_t [B, input_size], h = h_{t-1} [B, hidden] -> h_t [B, hidden]."""
        xh = torch.cat([x_t, h], dim=-1)  # [B, input_size + hidden]
        z = torch.sigmoid(self.update_gate(xh))
        reset_h = sigmoid_gate(h, self.reset_gate(xh))  # r_t * h_{t-1}
        h_candidate = torch.tanh(self.candidate(torch.cat([x_t, reset_h], dim=-1)))
        return (1 - z) * h + z * h_candidate

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, T, input_size] -> logits [B, num_classes] from h_T (h_0 = 0)."""
        h = x.new_zeros(x.shape[0], self.hidden)  # [B, hidden]
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
        return self.head(self.dropout(h))
