"""Limited-area graphs (GraphSpec.domain): the regional grid on the true sphere, mesh cropped."""

import json

import numpy as np
import pytest
import torch

from graphs import GraphSpec, build_graph, build_regional_graph, load_graph, save_graph, spec_hash
from graphs.build import build_mesh
from graphs.connectivity import (
    grid_lat_lon_to_xyz,
    in_mesh_triangle_indices,
    lat_lon_to_xyz,
    radius_query_indices,
)
from graphs.icosahedral import faces_to_edges, mesh_hierarchy

G2M, M2M, M2G = ("grid", "to", "mesh"), ("mesh", "to", "mesh"), ("mesh", "to", "grid")
EDGE_TYPES = (G2M, M2M, M2G)


def regional_spec(domain, step, mesh_levels=3, region_levels=1, lon_180=False, **kwargs):
    """A ``step``-degree grid filling ``domain`` (lat descending), mesh refined in the domain."""
    lat_min, lat_max, lon_min, lon_max = domain
    width = np.mod(lon_max - lon_min, 360.0) or 360.0
    lat = np.arange(lat_max, lat_min - step / 2, -step)
    lon = lon_min + np.arange(0.0, width + step / 2, step)
    lon = np.mod(lon + 180.0, 360.0) - 180.0 if lon_180 else lon
    return GraphSpec(
        lat=tuple(lat),
        lon=tuple(lon),
        mesh_levels=mesh_levels,
        regions=(domain,),
        region_levels=region_levels,
        domain=domain,
        **kwargs,
    )


CASES = {
    # 21 x 31 points, 1 degree, 20 x 30 degree box over Europe.
    "europe-1deg-L3+2": dict(domain=(30.0, 50.0, 0.0, 30.0), step=1.0, region_levels=2),
    # Across the date line, grid longitudes in -180..180 (170 .. 180, -178 .. -160).
    "dateline-2deg-L3+1": dict(domain=(10.0, 30.0, 170.0, -160.0), step=2.0, lon_180=True),
    # Southern hemisphere, the box given in 0..360 (280 = 80 W).
    "south-2deg-L2+2-cap4": dict(
        domain=(-45.0, -25.0, 280.0, 310.0),
        step=2.0,
        mesh_levels=2,
        region_levels=2,
        max_neighbours=4,
    ),
}


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def spec_and_graph(request):
    spec = regional_spec(**CASES[request.param])
    return spec, build_graph(spec)


def box_width(domain) -> float:
    return float(np.mod(domain[3] - domain[2], 360.0)) or 360.0


def unwrapped_lon(lon, domain) -> np.ndarray:
    """Degrees east of ``lon_min``, in [-(360 - width) / 2, 360 - (360 - width) / 2): points a
    little west of the box come out negative, not near 360."""
    pad = (360.0 - box_width(domain)) / 2.0
    return np.mod(np.asarray(lon, dtype=np.float64) - domain[2] + pad, 360.0) - pad


def radius_deg(spec) -> float:
    chord = spec.radius_fraction * build_mesh(spec)["radius"]
    return float(np.rad2deg(2.0 * np.arcsin(chord / 2.0)))


def arc_deg(a, b) -> np.ndarray:
    """Great-circle angle in degrees between rows of unit vectors ``a`` and ``b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    return np.rad2deg(np.arctan2(cross, np.einsum("ij,ij->i", a, b)))


def longest_arc_per_level(spec) -> np.ndarray:
    """[mesh_levels + 1] degrees: the longest edge of each uniform refinement."""
    longest = []
    for vertices, faces in mesh_hierarchy(spec.mesh_levels, spec.mesh_orientation):
        senders, receivers = faces_to_edges(faces)
        longest.append(arc_deg(vertices[senders], vertices[receivers]).max())
    return np.array(longest)


def edge_ends(data, edge_type, key):
    """The ``key`` attribute of the senders and receivers of every edge of ``edge_type``."""
    src, _, dst = edge_type
    edge_index = data[edge_type].edge_index.numpy()
    return data[src][key].numpy()[edge_index[0]], data[dst][key].numpy()[edge_index[1]]


# --- GraphSpec.domain -------------------------------------------------------------------------


def test_spec_without_domain_keeps_its_json_and_hash():
    spec = GraphSpec(lat=tuple(np.linspace(90, -90, 33)), lon=tuple(np.arange(64) * 5.625))
    text = spec.to_json()
    assert "domain" not in json.loads(text) and spec.domain is None
    # The hash this spec had before GraphSpec.domain existed: cached graphs stay valid.
    assert spec_hash(spec) == "e7216421d78b56a6"
    assert GraphSpec.from_json(text) == spec
    with_null = json.dumps(json.loads(text) | {"domain": None})
    assert GraphSpec.from_json(with_null) == spec


def test_spec_json_round_trips_with_domain():
    spec = regional_spec(**CASES["dateline-2deg-L3+1"])
    fields = json.loads(spec.to_json())
    assert fields["domain"] == [10.0, 30.0, 170.0, -160.0]
    assert GraphSpec.from_json(spec.to_json()) == spec
    assert spec_hash(GraphSpec.from_json(spec.to_json())) == spec_hash(spec)
    # Canonicalised like the regions: ints, numpy scalars and -0.0 give the same spec.
    same = GraphSpec(lat=(0.0,), lon=(0.0,), domain=(np.float32(-10), 10, -0.0, 5))
    assert same.domain == (-10.0, 10.0, 0.0, 5.0)
    without = GraphSpec(
        lat=spec.lat, lon=spec.lon, mesh_levels=3, regions=spec.regions, region_levels=1
    )
    assert spec_hash(without) != spec_hash(spec)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"domain": (30.0, 10.0, 0.0, 10.0)}, r"GraphSpec\.domain must be"),
        ({"domain": (-91.0, 10.0, 0.0, 10.0)}, r"GraphSpec\.domain must be"),
        ({"domain": (0.0, 10.0, 0.0)}, r"GraphSpec\.domain must be"),
        ({"lat": (5.0, 11.0), "domain": (0.0, 10.0, 0.0, 10.0)}, r"GraphSpec\.lat value 11\.0"),
        ({"lon": (5.0, -1.0), "domain": (0.0, 10.0, 0.0, 10.0)}, r"GraphSpec\.lon value -1\.0"),
        ({"lon": (175.0, 165.0), "domain": (0.0, 10.0, 170.0, -160.0)}, r"lon value 165\.0"),
        ({"lon": (-150.0,), "domain": (0.0, 10.0, 170.0, -160.0)}, r"lon value -150\.0"),
    ],
)
def test_spec_rejects_bad_domain(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GraphSpec(**({"lat": (5.0,), "lon": (5.0,)} | kwargs))


def test_spec_accepts_grid_on_domain_boundary():
    spec = GraphSpec(lat=(0.0, 10.0), lon=(170.0, 180.0, -160.0), domain=(0, 10, 170, -160))
    assert spec.domain == (0.0, 10.0, 170.0, -160.0)
    assert GraphSpec(lat=(0.3,), lon=(0.1, 0.7), domain=(0.1, 0.3, 0.1, 0.7)).lat == (0.3,)


# --- the limited-area graph -------------------------------------------------------------------


def test_grid_nodes_are_the_regional_grid(spec_and_graph):
    spec, data = spec_and_graph
    shape = (len(spec.lat), len(spec.lon))
    lat, lon = np.meshgrid(np.array(spec.lat), np.array(spec.lon), indexing="ij")
    assert data["grid"].num_nodes == shape[0] * shape[1]
    np.testing.assert_array_equal(data["grid"].lat.reshape(shape), lat.astype(np.float32))
    np.testing.assert_array_equal(data["grid"].lon.reshape(shape), lon.astype(np.float32))
    np.testing.assert_allclose(
        data["grid"].pos.numpy(), lat_lon_to_xyz(lat.reshape(-1), lon.reshape(-1)), atol=1e-7
    )


def test_graph_has_the_global_graphs_layout(spec_and_graph):
    spec, data = spec_and_graph
    num = {"grid": data["grid"].num_nodes, "mesh": data["mesh"].num_nodes}
    assert data.node_types == ["grid", "mesh"] and data.edge_types == list(EDGE_TYPES)
    assert set(data["grid"].keys()) == {"x", "pos", "lat", "lon"}
    assert set(data["mesh"].keys()) == {
        "x",
        "pos",
        "lat",
        "lon",
        "level",
        "in_region",
        "global_index",
    }
    for node_type in ("grid", "mesh"):
        store = data[node_type]
        for key in ("x", "pos", "lat", "lon"):
            assert store[key].dtype == torch.float32 and store[key].shape[0] == num[node_type]
    assert data["mesh"].level.dtype == data["mesh"].global_index.dtype == torch.int64
    assert data["mesh"].in_region.dtype == torch.bool
    for edge_type in EDGE_TYPES:
        edge_index, edge_attr = data[edge_type].edge_index, data[edge_type].edge_attr
        assert edge_index.dtype == torch.int64 and edge_attr.dtype == torch.float32
        assert edge_attr.shape == (edge_index.shape[1], 4) and edge_attr[:, 3].max() == 1.0
        assert edge_index.min() >= 0
        assert edge_index[0].max() < num[edge_type[0]] and edge_index[1].max() < num[edge_type[2]]
        receivers = edge_index[1].numpy()
        assert (np.diff(receivers) >= 0).all()  # sorted by receiver, as the global graph
    assert data.spec_json == spec.to_json() and data.spec_hash == spec_hash(spec)


def test_no_edge_wraps_across_the_box(spec_and_graph):
    spec, data = spec_and_graph
    width = box_width(spec.domain)
    lat_min, lat_max, lon_min, lon_max = spec.domain
    diagonal = arc_deg(lat_lon_to_xyz([lat_min], [lon_min]), lat_lon_to_xyz([lat_max], [lon_max]))
    # The least true distance between a node in the westmost and one in the eastmost quarter
    # (half the box apart in longitude, at the highest latitude any node reaches).
    highest = min(89.0, max(abs(lat_min), abs(lat_max)) + 2.0 * radius_deg(spec))
    across = arc_deg(lat_lon_to_xyz([highest], [0.0]), lat_lon_to_xyz([highest], [width / 2]))
    for edge_type in EDGE_TYPES:
        lon_src, lon_dst = (
            unwrapped_lon(v, spec.domain) for v in edge_ends(data, edge_type, "lon")
        )
        west_east = (lon_src < width / 4) & (lon_dst > 3 * width / 4)
        east_west = (lon_src > 3 * width / 4) & (lon_dst < width / 4)
        pos_src, pos_dst = edge_ends(data, edge_type, "pos")
        arc = arc_deg(pos_src, pos_dst)
        # Edge features are those of the true positions (a wrapped edge would be short).
        chord = np.linalg.norm(pos_src.astype(np.float64) - pos_dst, axis=1)
        np.testing.assert_allclose(
            data[edge_type].edge_attr[:, 3].numpy(), chord / chord.max(), atol=1e-5
        )
        if edge_type != M2M:
            assert not (west_east | east_west).any(), edge_type
            assert arc.max() < diagonal[0], edge_type
            continue
        # The multi-mesh keeps its coarse long-range edges among kept nodes; those joining the
        # two quarters cross the box at full length, they do not wrap round it.
        assert (arc[west_east | east_west] >= across[0]).all()
        # Each edge is as short as the refinement it comes from (an edge of level k >= 1 has
        # an end first seen at level k), so only the two coarsest levels' edges (about 32
        # degrees and up) exceed the diagonal; a seam edge between fine nodes would not.
        level = np.maximum(*edge_ends(data, edge_type, "level"))
        longest = longest_arc_per_level(spec)
        assert (arc <= longest[np.minimum(level, spec.mesh_levels)] + 1e-3).all()
        assert (level[arc >= diagonal[0]] <= 1).all()
    # The westmost and eastmost grid columns share no mesh node (they do in the released code).
    g2m = data[G2M].edge_index.numpy()
    column = g2m[0] % len(spec.lon)
    west = np.unique(g2m[1][column == 0])
    east = np.unique(g2m[1][column == len(spec.lon) - 1])
    assert west.size and east.size and not np.intersect1d(west, east).size


def test_no_node_near_a_pole(spec_and_graph):
    spec, data = spec_and_graph
    margin = 2.0 * radius_deg(spec)
    lat_min, lat_max = spec.domain[:2]
    width = box_width(spec.domain)
    for node_type in ("grid", "mesh"):
        lat = data[node_type].lat.numpy()
        assert (lat >= lat_min - margin).all() and (lat <= lat_max + margin).all(), node_type
        assert (np.abs(lat) < 89.0).all(), node_type
        # Longitudes too: the mesh ends within the margin (widened for latitude) of the box.
        lon = unwrapped_lon(data[node_type].lon.numpy(), spec.domain)
        pad = margin / np.cos(np.deg2rad(max(abs(lat_min), abs(lat_max)) + margin))
        assert (lon >= -pad).all() and (lon <= width + pad).all(), node_type


def test_box_with_a_pole_builds():
    spec = regional_spec(domain=(70.0, 90.0, -20.0, 20.0), step=2.0)
    data = build_graph(spec)
    lat, lon = np.meshgrid(np.array(spec.lat), np.array(spec.lon), indexing="ij")
    np.testing.assert_allclose(
        data["grid"].pos.numpy(), lat_lon_to_xyz(lat.reshape(-1), lon.reshape(-1)), atol=1e-7
    )
    assert data["mesh"].lat.max() == 90.0  # the pole is a mesh vertex, and kept
    assert (torch.bincount(data[M2G].edge_index[1], minlength=lat.size) == 3).all()
    assert (torch.bincount(data[G2M].edge_index[0], minlength=lat.size) >= 1).all()


def test_released_construction_wraps_and_reaches_the_poles():
    """OneForecast's released code builds a regional graph as a global one: the box's latitudes
    stretched pole to pole, its longitudes round the whole circle. Emulated here, the westmost
    and eastmost columns then share mesh nodes away from the poles, which the limited-area
    graph of the same grid never does (``test_no_edge_wraps_across_the_box``)."""
    spec = regional_spec(**CASES["europe-1deg-L3+2"])
    lat_min, lat_max = spec.domain[:2]
    num_lat, num_lon = len(spec.lat), len(spec.lon)
    stretched = GraphSpec(
        lat=tuple(-90.0 + (np.array(spec.lat) - lat_min) / (lat_max - lat_min) * 180.0),
        lon=tuple(np.arange(num_lon) * 360.0 / num_lon),
        mesh_levels=2,  # stretched to the globe, 21 x 31 points are too coarse for level 3
    )
    data = build_graph(stretched)
    # Grid node i is the regional grid's node i; column and row by the row-major order.
    for edge_type, grid_row in ((G2M, 0), (M2G, 1)):
        edge_index = data[edge_type].edge_index.numpy()
        grid, mesh = edge_index[grid_row], edge_index[1 - grid_row]
        row, column = np.divmod(grid, num_lon)
        interior = (row > 0) & (row < num_lat - 1)  # not the rows put on the poles
        west = np.unique(mesh[interior & (column == 0)])
        east = np.unique(mesh[interior & (column == num_lon - 1)])
        assert np.intersect1d(west, east).size > 0, edge_type
    assert abs(data["grid"].lat).max() == 90.0  # the box's top and bottom rows on the poles
    regional = build_graph(spec)
    assert abs(regional["grid"].lat).max() == lat_max


def test_every_node_is_connected(spec_and_graph):
    spec, data = spec_and_graph
    num_grid, num_mesh = data["grid"].num_nodes, data["mesh"].num_nodes
    g2m, m2m, m2g = (data[t].edge_index for t in EDGE_TYPES)
    assert (torch.bincount(g2m[0], minlength=num_grid) >= 1).all()
    np.testing.assert_array_equal(torch.bincount(m2g[1], minlength=num_grid), 3)
    assert m2g.shape[1] == 3 * num_grid
    used = torch.zeros(num_mesh, dtype=torch.bool)
    used[g2m[1]] = used[m2g[0]] = True
    assert used.all()  # cropping keeps exactly the vertices the grid reaches
    assert (torch.bincount(m2m[1], minlength=num_mesh) >= 1).all()


def test_cropped_mesh_is_the_global_mesh_restricted(spec_and_graph):
    spec, data = spec_and_graph
    mesh = build_mesh(spec)
    kept = data["mesh"].global_index.numpy()
    assert (np.diff(kept) > 0).all() and kept[-1] < mesh["vertices"].shape[0]
    assert kept.shape[0] < mesh["vertices"].shape[0] / 2
    np.testing.assert_array_equal(data["mesh"].pos.numpy(), mesh["vertices"][kept].astype("f4"))
    np.testing.assert_array_equal(data["mesh"].level.numpy(), mesh["level"][kept])
    # The multi-mesh edges among kept vertices, all of them and no others.
    m2m = data[M2M].edge_index.numpy()
    is_kept = np.zeros(mesh["vertices"].shape[0], dtype=bool)
    is_kept[kept] = True
    both = is_kept[mesh["senders"]] & is_kept[mesh["receivers"]]
    np.testing.assert_array_equal(kept[m2m[0]], mesh["senders"][both])
    np.testing.assert_array_equal(kept[m2m[1]], mesh["receivers"][both])
    # Grid -> mesh: the global radius query, unchanged by the cropping.
    radius = spec.radius_fraction * mesh["radius"]
    grid_xyz = grid_lat_lon_to_xyz(np.array(spec.lat), np.array(spec.lon))
    grid, receiver = radius_query_indices(grid_xyz, mesh["vertices"], radius, spec.max_neighbours)
    g2m = data[G2M].edge_index.numpy()
    np.testing.assert_array_equal(g2m[0], grid)
    np.testing.assert_array_equal(kept[g2m[1]], receiver)
    # Mesh -> grid: the corners of the uncropped finest triangle holding each grid point.
    m2g = data[M2G].edge_index.numpy()
    grid, corner = in_mesh_triangle_indices(grid_xyz, mesh["vertices"], mesh["faces"])
    np.testing.assert_array_equal(m2g[1], grid)
    np.testing.assert_array_equal(kept[m2g[0]], corner)


def test_regional_mesh_is_denser_in_the_domain(spec_and_graph):
    spec, data = spec_and_graph
    in_region = data["mesh"].in_region
    assert in_region.any() and not in_region.all()
    assert data["mesh"].level[in_region].max() == spec.mesh_levels + spec.region_levels


def test_save_load_round_trip(tmp_path, spec_and_graph):
    spec, data = spec_and_graph
    path = tmp_path / "regional.pt"
    save_graph(data, path)
    loaded = load_graph(path)
    assert GraphSpec.from_json(loaded.spec_json) == spec and loaded.spec_hash == spec_hash(spec)
    assert GraphSpec.from_json(loaded.spec_json).domain == spec.domain
    assert loaded.node_types == data.node_types and loaded.edge_types == data.edge_types
    for store_type in data.node_types + data.edge_types:
        assert set(loaded[store_type].keys()) == set(data[store_type].keys())
        for key, value in data[store_type].items():
            assert torch.equal(loaded[store_type][key], value), (store_type, key)
            assert loaded[store_type][key].dtype == value.dtype


def test_build_regional_graph_needs_a_domain():
    with pytest.raises(ValueError, match=r"GraphSpec\.domain"):
        build_regional_graph(GraphSpec(lat=(0.0,), lon=(0.0,)))


def test_small_radius_is_rejected():
    spec = regional_spec(
        domain=(30.0, 50.0, 0.0, 30.0),
        step=2.0,
        mesh_levels=0,
        region_levels=0,
        radius_fraction=0.3,
    )
    with pytest.raises(ValueError, match=r"grid nodes send no .*GraphSpec\.radius_fraction=0\.3"):
        build_graph(spec)


def test_coarse_grid_is_rejected():
    # 5-degree grid against a mesh refined to about 2 degrees: holes inside the domain.
    spec = regional_spec(
        domain=(30.0, 50.0, 0.0, 30.0), step=5.0, region_levels=2, radius_fraction=0.3
    )
    with pytest.raises(ValueError, match=r"mesh nodes among the grid points .*GraphSpec\.lat/lon"):
        build_graph(spec)


def test_oneforecast_model_runs_on_the_regional_graph(spec_and_graph):
    from models.oneforecast import GatedGNN, GatedGNNConfig

    _, data = spec_and_graph
    torch.manual_seed(0)
    model = GatedGNN(
        GatedGNNConfig(
            in_channels=2, out_channels=1, hidden=8, processor_layers=1, heads=2, attention_hidden=8
        )
    )
    out = model(torch.randn(1, data["grid"].num_nodes, 2), data)
    assert out.shape == (1, data["grid"].num_nodes, 1) and torch.isfinite(out).all()
