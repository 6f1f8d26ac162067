"""Building blocks of every step of the gated GNN: GraphCast's MLP, and the gather of edge
endpoints and the sum into receivers that message passing is made of (batched over samples on
one shared graph, no loops over nodes or edges)."""

import torch
from torch import Tensor, nn


def mlp(in_features: int, hidden: int, out_features: int, layer_norm: bool = True) -> nn.Sequential:
    """Linear - SiLU - Linear - LayerNorm (GraphCast's MLP for embedders and updates).

    layer_norm=False only for the output MLP: its target (a normalised change) is not unit-normed,
    and GraphCast and OneForecast both leave it off there.
    """
    layers = [nn.Linear(in_features, hidden), nn.SiLU(), nn.Linear(hidden, out_features)]
    if layer_norm:
        layers.append(nn.LayerNorm(out_features))
    return nn.Sequential(*layers)


def edge_inputs(e: Tensor, v_src: Tensor, v_dst: Tensor, edge_index: Tensor) -> list[Tensor]:
    """[e_ij, v_i, v_j], each [..., E, D]: e: [E, D] (shared by the batch) or [..., E, D];
    v_src: [..., N_src, D]; v_dst: [..., N_dst, D]; edge_index: [2, E] (sender, receiver)."""
    senders, receivers = edge_index
    v_i = v_src.index_select(-2, senders)  # [..., E, D]
    v_j = v_dst.index_select(-2, receivers)  # [..., E, D]
    return list(torch.broadcast_tensors(e, v_i, v_j))


def sum_into_receivers(e: Tensor, receivers: Tensor, num_nodes: int) -> Tensor:
    """sum_{i -> j} e_ij: e: [..., E, D], receivers: [E] -> [..., num_nodes, D]."""
    out = e.new_zeros((*e.shape[:-2], num_nodes, e.shape[-1]))
    return out.index_add_(-2, receivers, e)
