"""Building blocks of the gated GNN: the GraphCast MLP and the gated interaction step."""

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from kernels import sigmoid_gate


def mlp(in_features: int, hidden: int, out_features: int) -> nn.Sequential:
    """Linear - SiLU - Linear - LayerNorm, GraphCast's MLP for every embedding and update."""
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.SiLU(),
        nn.Linear(hidden, out_features),
        nn.LayerNorm(out_features),
    )


class GatedInteraction(MessagePassing):
    """One gated message-passing step on edges src -> dst (OneForecast's gated messaging,
    simplified).

    For an edge i -> j (i: sender in the source node type, j: receiver in the destination type):

        e'_ij = e_ij + MLP_e([e_ij, h_i^src, h_j^dst])      edge update, residual
        g_ij  = W_g e'_ij + b_g                             gate logits, per channel
        a_j   = sum_{i -> j} e'_ij * sigmoid(g_ij)          gated sum aggregation
        h'_j  = h_j + Dropout(MLP_n([h_j, a_j]))            node update, residual

    Node features may carry leading batch dims ([B, N, D], node_dim=-2) with one shared graph;
    edge features are [B, E, D] or [E, D] (broadcast over the batch).
    """

    def __init__(self, hidden: int, dropout: float = 0.0):
        super().__init__(aggr="sum", node_dim=-2)
        self.edge_mlp = mlp(3 * hidden, hidden, hidden)
        self.gate = nn.Linear(hidden, hidden)
        self.node_mlp = mlp(2 * hidden, hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, h_src: Tensor, h_dst: Tensor, edge_index: Tensor, e: Tensor
    ) -> tuple[Tensor, Tensor]:
        """h_src: [..., N_src, D], h_dst: [..., N_dst, D], edge_index: [2, E] (row 0 sender,
        row 1 receiver), e: [..., E, D]. Returns h'_dst [..., N_dst, D] and e' [..., E, D]."""
        size = (h_src.shape[-2], h_dst.shape[-2])
        e = self.edge_updater(edge_index, x=(h_src, h_dst), e=e, size=size)  # [..., E, D]
        a = self.propagate(edge_index, e=e, size=size)  # [..., N_dst, D]
        h_dst = h_dst + self.dropout(self.node_mlp(torch.cat([h_dst, a], dim=-1)))
        return h_dst, e

    def edge_update(self, e: Tensor, x_j: Tensor, x_i: Tensor) -> Tensor:
        # PyG names the sender x_j and the receiver x_i (flow source_to_target).
        # e'_ij = e_ij + MLP_e([e_ij, h_i^src, h_j^dst]); broadcast a shared [E, D] over the batch
        e, h_sender, h_receiver = torch.broadcast_tensors(e, x_j, x_i)  # [..., E, D]
        return e + self.edge_mlp(torch.cat([e, h_sender, h_receiver], dim=-1))

    def message(self, e: Tensor) -> Tensor:
        # e'_ij * sigmoid(W_g e'_ij + b_g), summed into receivers by aggr="sum"
        return sigmoid_gate(e, self.gate(e))  # [..., E, D]
