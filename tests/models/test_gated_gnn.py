"""GatedGNN end to end on a small random grid/mesh HeteroData, for every processor variant."""

import pytest
import torch
from torch import nn
from torch_geometric.data import HeteroData

from models.oneforecast import GatedGNN, GatedGNNConfig
from models.oneforecast.gated_layer import GatedLayer
from models.oneforecast.interaction import InteractionNetwork
from models.oneforecast.layers import mlp

N_LAT, N_LON, N_MESH = 3, 4, 5
N_GRID = N_LAT * N_LON  # grid node index = i_lat * N_LON + i_lon


def random_graph(seed: int = 0) -> HeteroData:
    """Grid/mesh graph with the fields graphs/ produces: x [N, 3], edge_index [2, E], edge_attr
    [E, 4]. Mesh node 0 receives no grid->mesh edge."""
    generator = torch.Generator().manual_seed(seed)
    graph = HeteroData()
    graph["grid"].x = torch.randn(N_GRID, 3, generator=generator)
    graph["mesh"].x = torch.randn(N_MESH, 3, generator=generator)
    grid2mesh = torch.stack(
        [torch.arange(N_GRID), torch.randint(1, N_MESH, (N_GRID,), generator=generator)]
    )
    mesh2mesh = torch.randint(0, N_MESH, (2, 14), generator=generator)
    mesh2grid = torch.stack(
        [
            torch.randint(0, N_MESH, (2 * N_GRID,), generator=generator),
            torch.arange(2 * N_GRID) % N_GRID,
        ]
    )
    for edge_type, edge_index in [
        (("grid", "to", "mesh"), grid2mesh),
        (("mesh", "to", "mesh"), mesh2mesh),
        (("mesh", "to", "grid"), mesh2grid),
    ]:
        graph[edge_type].edge_index = edge_index
        graph[edge_type].edge_attr = torch.randn(edge_index.shape[1], 4, generator=generator)
    return graph


VARIANTS = {
    "gated-mean": {"processor": "gated", "gate_mode": "mean"},
    "gated-streams": {"processor": "gated", "gate_mode": "streams"},
    "interaction": {"processor": "interaction"},
}


def make_model(**overrides) -> GatedGNN:
    torch.manual_seed(0)
    config = {"in_channels": 6, "out_channels": 2, "hidden": 16, "processor_layers": 2,
              "heads": 2, "attention_hidden": 8}
    return GatedGNN(GatedGNNConfig(**(config | overrides)))


def test_output_shape_and_config_round_trip():
    model = make_model()
    x = torch.randn(2, N_GRID, 6)
    assert model(x, random_graph()).shape == (2, N_GRID, 2)
    config = model.config
    assert GatedGNNConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="hiden"):
        GatedGNNConfig.from_dict(config.to_dict() | {"hiden": 3})


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_batch_equals_separate_samples(variant):
    model = make_model(**VARIANTS[variant]).eval()
    graph = random_graph()
    x = torch.randn(3, N_GRID, 6)
    batched = model(x, graph)
    separate = torch.cat([model(x[b : b + 1], graph) for b in range(3)])
    torch.testing.assert_close(batched, separate, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_mesh_node_and_edge_order_does_not_change_grid_output(variant):
    model = make_model(**VARIANTS[variant]).eval()
    graph = random_graph()
    x = torch.randn(2, N_GRID, 6)

    perm = torch.randperm(N_MESH, generator=torch.Generator().manual_seed(1))  # new -> old
    new_index = torch.empty_like(perm)
    new_index[perm] = torch.arange(N_MESH)  # old -> new
    permuted = random_graph()
    grid2mesh, mesh2mesh, mesh2grid = (
        ("grid", "to", "mesh"),
        ("mesh", "to", "mesh"),
        ("mesh", "to", "grid"),
    )
    permuted["mesh"].x = graph["mesh"].x[perm]
    permuted[grid2mesh].edge_index[1] = new_index[graph[grid2mesh].edge_index[1]]
    edge_order = torch.randperm(14, generator=torch.Generator().manual_seed(2))
    permuted[mesh2mesh].edge_index = new_index[graph[mesh2mesh].edge_index[:, edge_order]]
    permuted[mesh2mesh].edge_attr = graph[mesh2mesh].edge_attr[edge_order]
    permuted[mesh2grid].edge_index[0] = new_index[graph[mesh2grid].edge_index[0]]

    torch.testing.assert_close(model(x, permuted), model(x, graph), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_forward_backward_reaches_every_parameter(variant):
    model = make_model(**VARIANTS[variant])
    model(torch.randn(2, N_GRID, 6), random_graph()).square().mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("variant", ["gated-mean", "interaction"])
def test_gradient_checkpointing_gives_same_output_and_gradients(variant):
    graph = random_graph()
    x = torch.randn(2, N_GRID, 6)
    results = []
    for checkpointing in (False, True):
        model = make_model(gradient_checkpointing=checkpointing, **VARIANTS[variant]).train()
        y = model(x, graph)
        y.square().mean().backward()
        results.append((y, {n: p.grad for n, p in model.named_parameters()}))
    (y_plain, grads_plain), (y_ckpt, grads_ckpt) = results
    torch.testing.assert_close(y_ckpt, y_plain, rtol=0, atol=1e-6)
    for name, grad in grads_plain.items():
        torch.testing.assert_close(grads_ckpt[name], grad, rtol=1e-5, atol=1e-6)


def test_dropout_acts_in_train_mode_only():
    graph = random_graph()
    x = torch.randn(2, N_GRID, 6)
    plain = make_model()
    dropped = make_model(dropout=0.5)
    dropped.load_state_dict(plain.state_dict())

    plain.train(), dropped.train()
    assert not torch.allclose(dropped(x, graph), plain(x, graph))
    plain.eval(), dropped.eval()
    torch.testing.assert_close(dropped(x, graph), plain(x, graph))


def test_graph_features_follow_input_dtype():
    model = make_model().double()
    y = model(torch.randn(1, N_GRID, 6, dtype=torch.float64), random_graph())  # float32 graph
    assert y.dtype == torch.float64


def test_processor_kind_and_gate_mode_reach_the_layers():
    gated = make_model(processor_layers=3, gate_mode="streams", heads=3, gate_hidden=5)
    assert len(gated.processor.layers) == 3
    for layer in gated.processor.layers:
        assert isinstance(layer, GatedLayer)
        assert layer.edge_update.gate_mode == "streams"
        assert layer.edge_update.gate[0].out_features == 5  # gate hidden
        assert layer.edge_update.gate[2].out_features == 3 * 3  # H heads x 3 streams
        assert layer.node_update.attention[0].out_features == 8  # attention hidden
        assert layer.node_update.node_mlp[0].in_features == (3 + 1) * 16  # [m (H*D), v]
    # the default gate width is the released max(16, D/8)
    assert make_model(hidden=256).processor.layers[0].edge_update.gate[0].out_features == 32
    assert make_model().processor.layers[0].edge_update.gate[0].out_features == 16
    ungated = make_model(processor="interaction")
    assert all(isinstance(layer, InteractionNetwork) for layer in ungated.processor.layers)
    # encoder and decoder are GraphCast's interaction steps whatever the processor
    assert isinstance(gated.encoder.grid2mesh, InteractionNetwork)
    assert isinstance(gated.decoder.mesh2grid, InteractionNetwork)


def test_embedders_end_in_layer_norm_and_the_output_mlp_does_not():
    model = make_model()
    kinds = [type(m) for m in model.encoder.grid_embed]
    assert kinds == [nn.Linear, nn.SiLU, nn.Linear, nn.LayerNorm]
    assert [type(m) for m in model.decoder.head] == [nn.Linear, nn.SiLU, nn.Linear]
    assert [type(m) for m in mlp(3, 4, 5, layer_norm=False)] == [nn.Linear, nn.SiLU, nn.Linear]


@pytest.mark.parametrize(
    "bad, match",
    [({"processor": "gat"}, "processor 'gat'"), ({"gate_mode": "sum"}, "gate_mode 'sum'"),
     ({"heads": 0}, "heads"), ({"gate_hidden": 0}, "gate_hidden")],
)
def test_config_rejects_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        GatedGNNConfig(in_channels=3, out_channels=3, **bad)
