"""GatedInteraction against hand-computed values and a manual loop over edges."""

import math

import torch
from torch import nn

from models.oneforecast.layers import GatedInteraction

# bipartite, 2 senders and 3 receivers: edges 0 -> 1 and 1 -> 2; receiver 0 has no incoming edge
EDGE_INDEX = torch.tensor([[0, 1], [1, 2]])  # [2, E]


def test_hand_computed_gated_sum():
    torch.manual_seed(0)
    layer = GatedInteraction(hidden=2)
    with torch.no_grad():
        # MLP_e = 0 (its LayerNorm scale and shift set to zero), so e' = e
        layer.edge_mlp[-1].weight.zero_()
        layer.edge_mlp[-1].bias.zero_()
        # g = ln 3 on every channel, so sigmoid(g) = 3/4
        layer.gate.weight.zero_()
        layer.gate.bias.fill_(math.log(3.0))
    # MLP_n([h, a]) = a, so h' = h + a
    layer.node_mlp = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        layer.node_mlp.weight.copy_(torch.tensor([[0.0, 0, 1, 0], [0, 0, 0, 1]]))

    h_src = torch.randn(2, 2)
    h_dst = torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.0, -1.0]])
    e = torch.tensor([[1.0, 2.0], [4.0, -4.0]])
    h_new, e_new = layer(h_src, h_dst, EDGE_INDEX, e)

    # a_0 = 0 (no edges), a_1 = 3/4 [1, 2], a_2 = 3/4 [4, -4]
    expected = torch.tensor([[1.0, 1.0], [2.75, 1.5], [3.0, -4.0]])
    torch.testing.assert_close(h_new, expected)
    torch.testing.assert_close(e_new, e)


def test_matches_manual_loop_over_edges():
    torch.manual_seed(0)
    hidden = 2
    layer = GatedInteraction(hidden).double()
    h_src = torch.randn(2, hidden, dtype=torch.float64)
    h_dst = torch.randn(3, hidden, dtype=torch.float64)
    e = torch.randn(2, hidden, dtype=torch.float64)
    h_new, e_new = layer(h_src, h_dst, EDGE_INDEX, e)

    a = torch.zeros_like(h_dst)
    e_manual = []
    for k, (i, j) in enumerate(EDGE_INDEX.t().tolist()):
        e_ij = e[k] + layer.edge_mlp(torch.cat([e[k], h_src[i], h_dst[j]]))
        a[j] += e_ij * torch.sigmoid(layer.gate(e_ij))
        e_manual.append(e_ij)
    h_manual = h_dst + layer.node_mlp(torch.cat([h_dst, a], dim=-1))

    torch.testing.assert_close(e_new, torch.stack(e_manual))
    torch.testing.assert_close(h_new, h_manual)
    # the receiver without edges is updated from a = 0 only
    torch.testing.assert_close(
        h_new[0], h_dst[0] + layer.node_mlp(torch.cat([h_dst[0], torch.zeros(hidden).double()]))
    )


def test_homogeneous_batched_with_shared_edge_features():
    torch.manual_seed(0)
    layer = GatedInteraction(hidden=4)
    h = torch.randn(3, 5, 4)  # [B, N, D]
    edge_index = torch.randint(0, 5, (2, 9))
    e = torch.randn(9, 4)  # [E, D], shared by the batch
    h_new, e_new = layer(h, h, edge_index, e)
    assert h_new.shape == (3, 5, 4) and e_new.shape == (3, 9, 4)
    for b in range(3):
        h_b, e_b = layer(h[b], h[b], edge_index, e)
        torch.testing.assert_close(h_new[b], h_b)
        torch.testing.assert_close(e_new[b], e_b)
