"""GraphCast's interaction network: the ungated message-passing step.

Used for the encoder (grid -> mesh), the decoder (mesh -> grid) and, with
``processor: interaction``, every processor layer (the ungated baseline of the ablation).
For an edge i -> j (i in the source node set, j in the destination set):

    e'_ij = e_ij + MLP_e([e_ij || v_i || v_j])             edge update, residual
    v'_j  = v_j + MLP_v([sum_{i -> j} e'_ij || v_j])      node update, residual

A destination without in-edges is updated from a zero sum.
"""

import torch
from torch import Tensor, nn

from .layers import edge_inputs, mlp, sum_into_receivers


class InteractionNetwork(nn.Module):
    """One ungated step src -> dst (GraphCast); batched [B, N, D] over one shared graph."""

    def __init__(self, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.edge_mlp = mlp(3 * hidden, hidden, hidden)
        self.node_mlp = mlp(2 * hidden, hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, v_src: Tensor, v_dst: Tensor, edge_index: Tensor, e: Tensor
    ) -> tuple[Tensor, Tensor]:
        """v_src: [..., N_src, D], v_dst: [..., N_dst, D], edge_index: [2, E], e: [E, D] or
        [..., E, D]. Returns v'_dst [..., N_dst, D] and e' [..., E, D]."""
        e, v_i, v_j = edge_inputs(e, v_src, v_dst, edge_index)
        e = e + self.edge_mlp(torch.cat([e, v_i, v_j], dim=-1))  # [..., E, D]
        aggregate = sum_into_receivers(e, edge_index[1], v_dst.shape[-2])  # [..., N_dst, D]
        v_dst = v_dst + self.dropout(self.node_mlp(torch.cat([aggregate, v_dst], dim=-1)))
        return v_dst, e
