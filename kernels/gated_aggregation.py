"""Gated aggregation: per-destination softmax over edge logits, then the gated sum of messages.

The aggregation of OneForecast's multi-head attention node update. For an edge i -> j with
message x_ij in R^D and logits a_ij in R^H (one per head h):

    alpha^h_ij = exp(a^h_ij - max_k a^h_kj) / sum_{k -> j} exp(a^h_kj - max_k a^h_kj)
    m^h_j      = sum_{i -> j} alpha^h_ij * x_ij                      m_j in R^{H x D}

alpha^h_ij is a gate in (0, 1] on the message, normalised over the in-edges of j, so
sum_{i -> j} alpha^h_ij = 1 for every head of every node that has in-edges. A node without
in-edges receives m_j = 0 (no softmax is defined there; zero is what a sum over no edges gives
and what DGL's edge_softmax + sum, used by the released code, gives).

One public function, ``gated_aggregation``, which the model calls. It runs the plain-PyTorch
reference below everywhere for now; a fused Triton kernel (one pass per destination segment,
edges sorted by receiver as graphs/ stores them, no [E, H, D] temporary) will go behind it
without touching the model, and be tested against this reference.
"""

import torch
from torch import Tensor
from torch_geometric.utils import softmax


def gated_aggregation_reference(
    messages: Tensor, logits: Tensor, receivers: Tensor, num_nodes: int
) -> Tensor:
    """messages: [..., E, D], logits: [..., E, H], receivers: [E] (destination of each edge),
    leading dims equal (a batch of samples on one shared graph) -> [..., num_nodes, H, D]."""
    # Softmax in at least float32: bf16 logits (autocast) would round the max-subtracted
    # exponents. PyG's softmax subtracts the per-destination max (scatter max, then
    # index_select) and broadcasts the 1-D index over the leading batch dims.
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    alpha = softmax(logits, receivers, num_nodes=num_nodes, dim=-2)  # [..., E, H]
    weighted = alpha.to(messages.dtype).unsqueeze(-1) * messages.unsqueeze(-2)  # [..., E, H, D]
    out = messages.new_zeros((*messages.shape[:-2], num_nodes, *weighted.shape[-2:]))
    return out.index_add_(-3, receivers, weighted)  # [..., N, H, D]


def gated_aggregation(
    messages: Tensor, logits: Tensor, receivers: Tensor, num_nodes: int
) -> Tensor:
    """m^h_j = sum_{i -> j} softmax_j(a^h)_ij * x_ij.

    messages x: [..., E, D]; logits a: [..., E, H]; receivers: [E] int64, shared by the leading
    (batch) dims; returns [..., num_nodes, H, D] in the messages' dtype. Nodes without in-edges
    get zeros.
    """
    if messages.shape[:-1] != logits.shape[:-1] or receivers.shape != logits.shape[-2:-1]:
        raise ValueError(
            f"gated_aggregation needs messages [..., E, D], logits [..., E, H], receivers [E]; "
            f"got {tuple(messages.shape)}, {tuple(logits.shape)}, {tuple(receivers.shape)}"
        )
    return gated_aggregation_reference(messages, logits, receivers, num_nodes)
