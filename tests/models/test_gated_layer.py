"""OneForecast's gated processor layer: hand-computed edge and node updates on a 5-node graph,
an independent numpy loop over edges, gates, equivariance and batching."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from models.oneforecast.gated_layer import AttentionNodeUpdate, GatedEdgeUpdate, GatedLayer

# 5 nodes, edges sender -> receiver: 0->1, 2->1, 3->1, 1->2, 4->2, 0->3 (0 and 4: no in-edges)
EDGE_INDEX = torch.tensor([[0, 2, 3, 1, 4, 0], [1, 1, 1, 2, 2, 3]])
V = torch.tensor([[1.0, 0], [0, 1], [2, 0], [0, 2], [1, 1]])  # [N=5, D=2]
E = torch.tensor([[1.0, 2], [0, -1], [3, 0], [-2, 1], [0.5, 0.5], [4, -4]])  # [E=6, D=2]


def constant_gate_edge_update(gate_mode: str) -> GatedEdgeUpdate:
    """D = 2, H = 2, with gates that do not depend on the input and MLP_e(x) = e + v_i - v_j."""
    layer = GatedEdgeUpdate(hidden=2, heads=2, gate_hidden=3, gate_mode=gate_mode)
    ln3 = math.log(3.0)
    with torch.no_grad():
        layer.gate[0].weight.zero_()
        layer.gate[0].bias.zero_()  # SiLU(0) = 0, so the logits are the last bias
        layer.gate[2].weight.zero_()
        # head-major (h, stream): head 0 (e, s, d) = sigmoid(ln 3, 0, -ln 3) = (3/4, 1/2, 1/4)
        #                         head 1 (e, s, d) = sigmoid(ln 3, ln 3, 0)  = (3/4, 3/4, 1/2)
        # mean over heads: g_e = 3/4, g_s = 5/8, g_d = 3/8; their mean is 7/12
        layer.gate[2].bias.copy_(torch.tensor([ln3, 0.0, -ln3, ln3, ln3, 0.0]))
    # a linear MLP_e keeps the expected values plain arithmetic: [e, v_i, v_j] -> e + v_i - v_j
    layer.edge_mlp = nn.Linear(6, 2, bias=False)
    eye = torch.eye(2)
    with torch.no_grad():
        layer.edge_mlp.weight.copy_(torch.cat([eye, eye, -eye], dim=1))
    return layer


def test_edge_update_mean_gate_hand_values():
    layer = constant_gate_edge_update("mean")
    senders, receivers = EDGE_INDEX
    e_new = layer(E, V[senders], V[receivers])
    # e' = e + 7/12 (e + v_i - v_j); first edge 0 -> 1: [1, 2] + 7/12 [2, 1]
    expected = E + 7 / 12 * (E + V[senders] - V[receivers])
    torch.testing.assert_close(e_new, expected)
    torch.testing.assert_close(e_new[0], torch.tensor([1 + 14 / 12, 2 + 7 / 12]))


def test_edge_update_stream_gates_hand_values():
    layer = constant_gate_edge_update("streams")
    senders, receivers = EDGE_INDEX
    e_new = layer(E, V[senders], V[receivers])
    # e' = e + MLP_e([g_e e, g_s v_i, g_d v_j]) = e + 3/4 e + 5/8 v_i - 3/8 v_j
    expected = E + 0.75 * E + 0.625 * V[senders] - 0.375 * V[receivers]
    torch.testing.assert_close(e_new, expected)
    # edge 1 -> 2: [-2, 1] + 3/4 [-2, 1] + 5/8 [0, 1] - 3/8 [2, 0]
    torch.testing.assert_close(e_new[3], torch.tensor([-3.5 - 0.75, 1.75 + 0.625]))


def test_node_update_hand_values():
    layer = AttentionNodeUpdate(hidden=2, heads=2, attention_hidden=4)
    # logits a^h_ij = e'_ij[h]; MLP_v([m^0, m^1, v]) = m^0 + m^1, so v' = v + m^0 + m^1
    layer.attention = nn.Linear(2, 2, bias=False)
    layer.node_mlp = nn.Linear(6, 2, bias=False)
    eye = torch.eye(2)
    with torch.no_grad():
        layer.attention.weight.copy_(eye)
        layer.node_mlp.weight.copy_(torch.cat([eye, eye, torch.zeros(2, 2)], dim=1))
    ln2, ln3 = math.log(2.0), math.log(3.0)
    e = torch.tensor([[0.0, 0], [ln2, 0], [ln3, ln2], [1, 0], [1, 5], [-2, 7]])  # e' [E, D]
    v_new = layer(V, e, EDGE_INDEX[1])

    # node 1, head 0: exp(0, ln 2, ln 3) -> alpha (1/6, 1/3, 1/2); head 1: (1/4, 1/4, 1/2)
    m1 = [ln2 / 3 + ln3 / 2, ln2 / 2], [ln2 / 4 + ln3 / 2, ln2 / 2]
    # node 2, head 0: (1/2, 1/2); head 1: exp(0), exp(5) -> (1, e^5) / (1 + e^5)
    w = math.exp(5) / (1 + math.exp(5))
    m2 = [1.0, 2.5], [1.0, 5 * w]
    # node 3: one in-edge, alpha = 1 in both heads
    m3 = [-2.0, 7.0], [-2.0, 7.0]
    expected = V.clone()
    for node, (head0, head1) in [(1, m1), (2, m2), (3, m3)]:
        expected[node] += torch.tensor(head0) + torch.tensor(head1)
    # nodes 0 and 4 have no in-edges: m = 0, so v' = v + MLP_v([0, v]) = v here
    torch.testing.assert_close(v_new, expected)


def test_node_without_in_edges_is_updated_from_zero_aggregate():
    torch.manual_seed(0)
    layer = AttentionNodeUpdate(hidden=2, heads=3, attention_hidden=4)
    v_new = layer(V, torch.randn(6, 2), EDGE_INDEX[1])
    for node in (0, 4):
        zero_m = torch.zeros(3 * 2)  # H * D
        torch.testing.assert_close(
            v_new[node], V[node] + layer.node_mlp(torch.cat([zero_m, V[node]]))
        )


# -- the whole layer against an independent numpy loop over edges -----------------------------


def np_mlp(sequential: nn.Sequential, x: np.ndarray) -> np.ndarray:
    """Linear / SiLU / LayerNorm sequence in float64 numpy, one vector at a time."""
    for module in sequential:
        if isinstance(module, nn.Linear):
            x = module.weight.detach().double().numpy() @ x + module.bias.detach().double().numpy()
        elif isinstance(module, nn.SiLU):
            x = x / (1 + np.exp(-x))
        elif isinstance(module, nn.LayerNorm):
            normed = (x - x.mean()) / np.sqrt(x.var() + module.eps)
            x = normed * module.weight.detach().double().numpy() + module.bias.detach().numpy()
        else:
            raise TypeError(module)
    return x


@pytest.mark.parametrize("gate_mode", ["mean", "streams"])
def test_layer_matches_numpy_loop_over_edges(gate_mode):
    torch.manual_seed(0)
    heads, hidden = 2, 3
    layer = GatedLayer(hidden, heads, gate_hidden=4, attention_hidden=5, gate_mode=gate_mode)
    v = torch.randn(5, hidden)
    e = torch.randn(6, hidden)
    v_new, e_new = layer(v, v, EDGE_INDEX, e)

    vn, en = v.double().numpy(), e.double().numpy()
    e_expected, logits = [], []
    for k, (i, j) in enumerate(EDGE_INDEX.t().tolist()):
        x = np.concatenate([en[k], vn[i], vn[j]])
        g = 1 / (1 + np.exp(-np_mlp(layer.edge_update.gate, x)))  # [H * 3], head-major
        g_e, g_s, g_d = g.reshape(heads, 3).mean(axis=0)
        if gate_mode == "mean":
            update = (g_e + g_s + g_d) / 3 * np_mlp(layer.edge_update.edge_mlp, x)
        else:
            gated = np.concatenate([g_e * en[k], g_s * vn[i], g_d * vn[j]])
            update = np_mlp(layer.edge_update.edge_mlp, gated)
        e_expected.append(en[k] + update)
        logits.append(np_mlp(layer.node_update.attention, e_expected[-1]))
    e_expected, logits = np.array(e_expected), np.array(logits)  # [E, D], [E, H]

    v_expected = vn.copy()
    for j in range(5):
        into_j = np.flatnonzero(EDGE_INDEX[1].numpy() == j)
        m = np.zeros((heads, hidden))
        if len(into_j):
            weights = np.exp(logits[into_j])  # [k, H]
            alpha = weights / weights.sum(axis=0)
            m = alpha.T @ e_expected[into_j]  # [H, D]: head h's weighted sum of the full e'
        v_expected[j] += np_mlp(layer.node_update.node_mlp, np.concatenate([m.ravel(), vn[j]]))

    torch.testing.assert_close(e_new.double(), torch.from_numpy(e_expected), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v_new.double(), torch.from_numpy(v_expected), atol=1e-5, rtol=1e-5)


# -- gates, equivariance, batching ---------------------------------------------------------------


@pytest.mark.parametrize("gate_mode", ["mean", "streams"])
def test_gates_in_open_unit_interval_and_gate_weights_get_gradient(gate_mode):
    torch.manual_seed(0)
    layer = GatedLayer(8, heads=4, gate_hidden=16, attention_hidden=8, gate_mode=gate_mode)
    v, e = 3 * torch.randn(2, 5, 8), 3 * torch.randn(6, 8)
    senders, receivers = EDGE_INDEX
    x = torch.cat(torch.broadcast_tensors(e, v[:, senders], v[:, receivers]), dim=-1)
    g = layer.edge_update.gates(x)
    assert g.shape == (2, 6, 4, 3)
    assert (g > 0).all() and (g < 1).all()
    assert g.std() > 0.01  # the gates depend on their input

    v_new, e_new = layer(v, v, EDGE_INDEX, e)
    (v_new.square().sum() + e_new.square().sum()).backward()
    for linear in (layer.edge_update.gate[0], layer.edge_update.gate[2]):
        assert linear.weight.grad is not None and linear.weight.grad.abs().sum() > 0


def random_graph(seed: int, n_nodes: int = 7, n_edges: int = 20):
    generator = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n_nodes, (2, n_edges), generator=generator)
    edge_index[1, edge_index[1] == 0] = 1  # node 0 receives nothing
    return edge_index, generator


LAYERS = {
    "gated-mean": lambda: GatedLayer(6, heads=3, gate_hidden=4, attention_hidden=5),
    "gated-streams": lambda: GatedLayer(6, heads=3, gate_hidden=4, attention_hidden=5,
                                        gate_mode="streams"),
}


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_permutation_equivariance(kind):
    torch.manual_seed(0)
    layer = LAYERS[kind]()
    edge_index, generator = random_graph(3)
    v = torch.randn(2, 7, 6, generator=generator)
    e = torch.randn(20, 6, generator=generator)
    v_new, e_new = layer(v, v, edge_index, e)

    node_perm = torch.randperm(7, generator=generator)  # new node n is old node node_perm[n]
    old_to_new = torch.argsort(node_perm)
    edge_perm = torch.randperm(20, generator=generator)  # new edge k is old edge edge_perm[k]
    v_p, e_p = v[:, node_perm], e[edge_perm]
    edge_index_p = old_to_new[edge_index[:, edge_perm]]
    v_new_p, e_new_p = layer(v_p, v_p, edge_index_p, e_p)

    torch.testing.assert_close(v_new_p, v_new[:, node_perm], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(e_new_p, e_new[:, edge_perm], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_batch_of_three_equals_three_single_samples(kind):
    torch.manual_seed(0)
    layer = LAYERS[kind]()
    edge_index, generator = random_graph(4)
    v = torch.randn(3, 7, 6, generator=generator)
    e = torch.randn(20, 6, generator=generator)  # shared by the batch
    v_new, e_new = layer(v, v, edge_index, e)
    for b in range(3):
        v_b, e_b = layer(v[b], v[b], edge_index, e)
        torch.testing.assert_close(v_new[b], v_b)
        torch.testing.assert_close(e_new[b], e_b)
