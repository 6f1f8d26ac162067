"""GraphCast's interaction network (encoder, decoder, ungated processor) against hand values."""

import torch
from torch import nn

from models.oneforecast.interaction import InteractionNetwork

# bipartite, 2 senders and 3 receivers: edges 0 -> 1, 1 -> 2, 0 -> 2; receiver 0 has none
EDGE_INDEX = torch.tensor([[0, 1, 0], [1, 2, 2]])  # [2, E]


def linear(layer_in: int, weight: list[list[float]]) -> nn.Linear:
    module = nn.Linear(layer_in, len(weight), bias=False)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(weight))
    return module


def test_hand_computed_sum_aggregation():
    layer = InteractionNetwork(hidden=2)
    # MLP_e([e, v_i, v_j]) = v_i - v_j (so e' = e + v_i - v_j); MLP_v([a, v]) = a (so v' = v + a)
    layer.edge_mlp = linear(6, [[0, 0, 1, 0, -1, 0], [0, 0, 0, 1, 0, -1]])
    layer.node_mlp = linear(4, [[1, 0, 0, 0], [0, 1, 0, 0]])
    v_src = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    v_dst = torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.0, -1.0]])
    e = torch.tensor([[1.0, 2.0], [4.0, -4.0], [0.5, 0.5]])
    v_new, e_new = layer(v_src, v_dst, EDGE_INDEX, e)

    # e'_0 = [1, 2] + [1, 2] - [2, 0] = [0, 4]; e'_1 = [4, -4] + [3, -1] - [0, -1] = [7, -4];
    # e'_2 = [0.5, 0.5] + [1, 2] - [0, -1] = [1.5, 3.5]
    torch.testing.assert_close(e_new, torch.tensor([[0.0, 4.0], [7.0, -4.0], [1.5, 3.5]]))
    # receiver 0: no edges, a = 0; receiver 1: a = e'_0; receiver 2: a = e'_1 + e'_2
    torch.testing.assert_close(v_new, torch.tensor([[1.0, 1.0], [2.0, 4.0], [8.5, -1.5]]))


def test_batch_equals_separate_samples_and_node_order_does_not_matter():
    torch.manual_seed(0)
    layer = InteractionNetwork(hidden=4)
    edge_index = torch.randint(0, 6, (2, 15))
    v = torch.randn(3, 6, 4)
    e = torch.randn(15, 4)  # shared by the batch
    v_new, e_new = layer(v, v, edge_index, e)
    for b in range(3):
        v_b, e_b = layer(v[b], v[b], edge_index, e)
        torch.testing.assert_close(v_new[b], v_b)
        torch.testing.assert_close(e_new[b], e_b)

    node_perm, edge_perm = torch.randperm(6), torch.randperm(15)
    edge_index_p = torch.argsort(node_perm)[edge_index[:, edge_perm]]
    v_p = v[:, node_perm]
    v_new_p, e_new_p = layer(v_p, v_p, edge_index_p, e[edge_perm])
    torch.testing.assert_close(v_new_p, v_new[:, node_perm], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(e_new_p, e_new[:, edge_perm], rtol=1e-5, atol=1e-6)
