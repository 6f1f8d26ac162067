import numpy as np
import pytest
import torch

from graphs import GraphSpec, build_graph, load_graph, save_graph, spec_hash
from graphs.connectivity import lat_lon_to_xyz, mesh_edge_radius
from graphs.icosahedral import mesh_hierarchy

LON_64 = tuple(np.arange(64) * 5.625)
LAT_WITH_POLES = tuple(np.linspace(90, -90, 32))
LAT_WITHOUT_POLES = tuple(90 - (np.arange(32) + 0.5) * 180 / 32)
G2M, M2M, M2G = ("grid", "to", "mesh"), ("mesh", "to", "mesh"), ("mesh", "to", "grid")


@pytest.fixture(
    scope="module",
    params=[(LAT_WITH_POLES, 2), (LAT_WITHOUT_POLES, 3)],
    ids=["poles-L2", "no-poles-L3"],
)
def spec_and_graph(request):
    lat, levels = request.param
    spec = GraphSpec(lat=lat, lon=LON_64, mesh_levels=levels)
    return spec, build_graph(spec)


def test_graph_structure(spec_and_graph):
    spec, data = spec_and_graph
    num_grid, num_mesh = 32 * 64, 10 * 4**spec.mesh_levels + 2
    assert data["grid"].num_nodes == num_grid and data["mesh"].num_nodes == num_mesh
    for node_type, n in (("grid", num_grid), ("mesh", num_mesh)):
        store = data[node_type]
        assert store.x.shape == (n, 3) and store.pos.shape == (n, 3)
        assert store.lat.shape == store.lon.shape == (n,)
        for tensor in (store.x, store.pos, store.lat, store.lon):
            assert tensor.dtype == torch.float32
        xyz = lat_lon_to_xyz(store.lat.double().numpy(), store.lon.double().numpy())
        np.testing.assert_allclose(store.pos.numpy(), xyz, atol=1e-6)
    sizes = {G2M: (num_grid, num_mesh), M2M: (num_mesh, num_mesh), M2G: (num_mesh, num_grid)}
    for edge_type, (num_src, num_dst) in sizes.items():
        edge_index, edge_attr = data[edge_type].edge_index, data[edge_type].edge_attr
        assert edge_index.dtype == torch.int64 and edge_attr.dtype == torch.float32
        assert edge_index.shape[0] == 2 and edge_attr.shape == (edge_index.shape[1], 4)
        assert edge_index.min() >= 0
        assert edge_index[0].max() < num_src and edge_index[1].max() < num_dst
        assert edge_attr[:, 3].max() == 1.0  # [dx, dy, dz, |d|], longest edge 1
    assert data[M2M].num_edges == 2 * sum(30 * 4**k for k in range(spec.mesh_levels + 1))
    assert data[M2G].num_edges == 3 * num_grid
    np.testing.assert_array_equal(torch.bincount(data[M2G].edge_index[1], minlength=num_grid), 3)
    g2m = data[G2M].edge_index
    assert (torch.bincount(g2m[1], minlength=num_mesh) >= 1).all()
    assert (torch.bincount(g2m[0], minlength=num_grid) >= 1).all()
    assert data.spec_json == spec.to_json() and data.spec_hash == spec_hash(spec)


def test_grid_nodes_follow_numpy_reshape(spec_and_graph):
    spec, data = spec_and_graph
    lat = data["grid"].lat.reshape(len(spec.lat), len(spec.lon))
    lon = data["grid"].lon.reshape(len(spec.lat), len(spec.lon))
    np.testing.assert_array_equal(lat, np.broadcast_to(np.float32(spec.lat)[:, None], lat.shape))
    np.testing.assert_array_equal(lon, np.broadcast_to(np.float32(spec.lon)[None, :], lon.shape))


def test_grid_to_mesh_edges_are_all_pairs_within_radius(spec_and_graph):
    spec, data = spec_and_graph
    vertices, faces = mesh_hierarchy(spec.mesh_levels)[-1]
    radius = 0.6 * mesh_edge_radius(vertices, faces)
    grid_xyz = lat_lon_to_xyz(data["grid"].lat.double().numpy(), data["grid"].lon.double().numpy())
    distance = np.linalg.norm(grid_xyz[:, None] - vertices[None], axis=2)
    # float32 lat/lon round trip: compare away from the boundary.
    inside, outside = distance <= radius - 1e-5, distance > radius + 1e-5
    g2m = data[G2M].edge_index.numpy()
    has_edge = np.zeros_like(inside)
    has_edge[g2m[0], g2m[1]] = True
    assert has_edge[inside].all() and not has_edge[outside].any()


def test_longitude_convention_does_not_change_the_graph():
    east = build_graph(GraphSpec(lat=LAT_WITHOUT_POLES, lon=LON_64))
    # -180..180 lists the same points in another order; edges must map one to one.
    lon_180 = tuple(np.array(LON_64) - 180)
    west = build_graph(GraphSpec(lat=LAT_WITHOUT_POLES, lon=lon_180))
    for edge_type in (G2M, M2M, M2G):
        assert east[edge_type].num_edges == west[edge_type].num_edges
    torch.testing.assert_close(east[M2M].edge_attr, west[M2M].edge_attr)
    np.testing.assert_array_equal(
        torch.bincount(east[G2M].edge_index[1]), torch.bincount(west[G2M].edge_index[1])
    )


def test_coarse_grid_is_rejected():
    with pytest.raises(ValueError, match=r"GraphSpec\.lat/lon.*GraphSpec\.mesh_levels=3"):
        build_graph(GraphSpec(lat=(60.0, 0.0, -60.0), lon=(0.0, 90.0, 180.0, 270.0), mesh_levels=3))


def test_small_radius_is_rejected():
    lat, lon = tuple(np.arange(-89.5, 90, 1.0)), tuple(np.arange(0, 360, 1.0))
    with pytest.raises(ValueError, match=r"grid nodes send no .*GraphSpec\.radius_fraction=0\.3"):
        build_graph(GraphSpec(lat=lat, lon=lon, mesh_levels=0, radius_fraction=0.3))


def test_save_load_round_trip(tmp_path, spec_and_graph):
    spec, data = spec_and_graph
    path = tmp_path / "graph.pt"
    save_graph(data, path)
    assert [p.name for p in tmp_path.iterdir()] == ["graph.pt"]
    raw = torch.load(path, weights_only=True)
    assert raw["spec_json"] == spec.to_json()
    loaded = load_graph(path)
    assert loaded.node_types == data.node_types and loaded.edge_types == data.edge_types
    for store_type in data.node_types + data.edge_types:
        assert set(loaded[store_type].keys()) == set(data[store_type].keys())
        for key, value in data[store_type].items():
            assert torch.equal(loaded[store_type][key], value)
            assert loaded[store_type][key].dtype == value.dtype
    assert GraphSpec.from_json(loaded.spec_json) == spec
    assert loaded.spec_hash == spec_hash(spec)


def test_load_rejects_foreign_files(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not a graph")
    with pytest.raises(ValueError, match="notes.pt"):
        load_graph(text)
    tensors = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, tensors)
    with pytest.raises(ValueError, match="weights.pt.*not a Sluice graph"):
        load_graph(tensors)


def test_spec_json_and_hash():
    spec = GraphSpec(lat=LAT_WITH_POLES, lon=LON_64, mesh_levels=2, radius_fraction=0.6)
    digest = spec_hash(spec)
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert spec_hash(GraphSpec(lat=list(LAT_WITH_POLES), lon=np.array(LON_64))) == digest
    assert GraphSpec.from_json(spec.to_json()) == spec
    assert spec.to_json().startswith('{"lat":[90.0,84.193548,')
    assert list(__import__("json").loads(spec.to_json())) == [
        "lat",
        "lon",
        "max_neighbours",
        "mesh_levels",
        "mesh_orientation",
        "radius_fraction",
        "region_levels",
        "region_mode",
        "regions",
    ]
    changed = [
        GraphSpec(lat=LAT_WITH_POLES[:-1], lon=LON_64),
        GraphSpec(lat=LAT_WITH_POLES[:-1] + (-89.9,), lon=LON_64),
        GraphSpec(lat=LAT_WITH_POLES, lon=LON_64[1:]),
        GraphSpec(lat=LAT_WITH_POLES, lon=LON_64, mesh_levels=3),
        GraphSpec(lat=LAT_WITH_POLES, lon=LON_64, radius_fraction=0.7),
        GraphSpec(lat=LAT_WITH_POLES, lon=LON_64, regions=((0, 30, 105, 160),)),
        GraphSpec(lat=LAT_WITH_POLES, lon=LON_64, region_levels=1),
        GraphSpec(lat=LAT_WITH_POLES, lon=LON_64, region_mode="oneforecast"),
        GraphSpec(lat=LAT_WITH_POLES, lon=LON_64, max_neighbours=4),
        GraphSpec(lat=LAT_WITH_POLES, lon=LON_64, mesh_orientation="graphcast"),
    ]
    hashes = {spec_hash(s) for s in changed}
    assert len(hashes) == len(changed) and digest not in hashes
    # Below the 6-decimal rounding, and -0.0 against 0.0, specs are the same.
    assert spec_hash(GraphSpec(lat=(0.0, 1e-8), lon=(-0.0,))) == spec_hash(
        GraphSpec(lat=(0.0, 0.0), lon=(0.0,))
    )


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"lat": ()}, "lat"),
        ({"lat": (91.0,)}, "lat"),
        ({"mesh_levels": -1}, "mesh_levels"),
        ({"mesh_levels": 1.5}, "mesh_levels"),
        ({"radius_fraction": 0.0}, "radius_fraction"),
        ({"regions": ((30, 0, 0, 10),)}, "regions"),
        ({"regions": ((-91, 0, 0, 10),)}, "regions"),
        ({"regions": ((0, 10, 0),)}, "regions"),
        ({"region_levels": -1}, "region_levels"),
        ({"region_mode": "red-green"}, "region_mode"),
        ({"max_neighbours": 0}, "max_neighbours"),
        ({"mesh_orientation": "rotated"}, "mesh_orientation"),
    ],
)
def test_spec_rejects_bad_fields(kwargs, field):
    with pytest.raises(ValueError, match=f"GraphSpec.{field}"):
        GraphSpec(**({"lat": (0.0,), "lon": (0.0,)} | kwargs))
