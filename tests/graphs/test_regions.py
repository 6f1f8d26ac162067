"""Nested (regionally refined) meshes and the graphs built on them."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from graphs import GraphSpec, build_graph, graph_cache, load_graph, spec_hash
from graphs.build import build_mesh
from graphs.connectivity import (
    lat_lon_to_xyz,
    mesh_edge_radius,
    spherical_barycentric,
    xyz_to_lat_lon,
)
from graphs.icosahedral import faces_to_edges, mesh_hierarchy
from graphs.regions import in_boxes, refine_regions

G2M, M2M, M2G = ("grid", "to", "mesh"), ("mesh", "to", "mesh"), ("mesh", "to", "grid")
# OneForecast's two boxes: 0-30N 105-160E (East Asia / West Pacific), 10-30N 95-35W.
ONEFORECAST_BOXES = ((0.0, 30.0, 105.0, 160.0), (10.0, 30.0, -95.0, -35.0))
LAT_1P5 = tuple(np.linspace(-90, 90, 121))  # with poles, ascending
LON_1P5 = tuple(np.arange(240) * 1.5)
# Angular length in degrees of one chord ``c``: 2 asin(c / 2).
deg = np.rad2deg


def undirected(faces):
    senders, receivers = faces_to_edges(faces)
    return np.unique(np.sort(np.stack([senders, receivers], axis=1), axis=1), axis=0)


def near_boxes(lat, lon, boxes, margin_deg):
    """In some box widened by ``margin_deg`` of arc (a superset of the true neighbourhood)."""
    grown = []
    for lat_min, lat_max, lon_min, lon_max in boxes:
        widest = np.cos(np.deg2rad(min(89.0, max(abs(lat_min), abs(lat_max)) + margin_deg)))
        pad = margin_deg / widest
        grown.append((lat_min - margin_deg, lat_max + margin_deg, lon_min - pad, lon_max + pad))
    return in_boxes(lat, lon, grown)


def test_in_boxes_date_line_and_conventions():
    lat = np.array([10.0, 10, 10, 10, 10, 50])
    lon = np.array([355.0, -5, 15, 25, 180, 0])
    np.testing.assert_array_equal(
        in_boxes(lat, lon, [(0, 30, 350, 20)]), [True, True, True, False, False, False]
    )
    np.testing.assert_array_equal(
        in_boxes(lat, lon, [(0, 30, -10, 20)]), in_boxes(lat, lon, [(0, 30, 350, 20)])
    )
    assert in_boxes(lat, lon, [(0, 60, 0, 360)]).all()
    assert not in_boxes(lat, lon, []).any()


@pytest.mark.parametrize("levels", [5, 6])
def test_regular_multi_mesh_counts(levels):
    mesh = build_mesh(GraphSpec(lat=(0.0,), lon=(0.0,), mesh_levels=levels))
    assert mesh["vertices"].shape[0] == 10 * 4**levels + 2
    expected = {5: 81_900, 6: 327_660}[levels]  # 2 * sum_k 30 * 4**k
    assert mesh["senders"].shape[0] == expected
    assert np.array_equal(np.bincount(mesh["level"]), [12] + [30 * 4 ** (k - 1) for k in
                                                               range(1, levels + 1)])
    v, e, f = mesh["vertices"].shape[0], undirected(mesh["faces"]).shape[0], mesh["faces"].shape[0]
    assert (e, v - e + f) == (30 * 4**levels, 2)  # Euler on the finest level


def test_oneforecast_cross_check_counts():
    # OneForecast's rule on GraphCast's icosahedron, level 5, its two boxes, one extra level.
    spec = GraphSpec(lat=(0.0,), lon=(0.0,), mesh_levels=5, regions=ONEFORECAST_BOXES,
                     region_levels=1, region_mode="oneforecast", mesh_orientation="graphcast")
    mesh = build_mesh(spec)
    assert mesh["vertices"].shape[0] == 12_337
    assert mesh["senders"].shape[0] == 98_296
    # The same rule on Sluice's orientation (poles on icosahedron edges) lands differently.
    sluice = build_mesh(replace(spec, mesh_orientation="sluice"))
    assert (sluice["vertices"].shape[0], sluice["senders"].shape[0]) == (12_360, 98_502)
    # With one extra level the conforming closure adds edges, never nodes.
    conforming = build_mesh(replace(spec, region_mode="conforming"))
    assert conforming["vertices"].shape[0] == 12_337
    assert conforming["senders"].shape[0] > 98_296


@pytest.mark.parametrize("orientation", ["sluice", "graphcast"])
@pytest.mark.parametrize("region_levels", [1, 2, 3])
def test_conforming_nested_mesh_is_a_closed_triangulation(orientation, region_levels):
    vertices, faces = mesh_hierarchy(3, orientation)[-1]
    boxes = ((0.0, 30.0, 105.0, 160.0), (40.0, 70.0, 350.0, 20.0))
    nested = refine_regions(vertices, faces, boxes, region_levels, "conforming")
    v, f = nested.vertices.shape[0], nested.faces.shape[0]
    edges = undirected(nested.faces)
    assert v - edges.shape[0] + f == 2  # Euler
    # Every edge borders exactly two faces, walked once each way: no hanging nodes.
    senders, receivers = faces_to_edges(nested.faces)
    directed = set(zip(senders.tolist(), receivers.tolist(), strict=True))
    assert len(directed) == 3 * f and directed == {(r, s) for s, r in directed}
    a, b, c = (nested.vertices[nested.faces[:, i]] for i in range(3))
    assert (np.einsum("ij,ij->i", np.cross(b - a, c - a), a + b + c) > 0).all()
    assert v > vertices.shape[0]
    np.testing.assert_array_equal(nested.vertices[: len(vertices)], vertices)
    np.testing.assert_allclose(np.linalg.norm(nested.vertices, axis=1), 1.0, atol=1e-15)


def test_oneforecast_mode_leaves_hanging_nodes():
    vertices, faces = mesh_hierarchy(3)[-1]
    nested = refine_regions(vertices, faces, ONEFORECAST_BOXES, 1, "oneforecast")
    v, f = nested.vertices.shape[0], nested.faces.shape[0]
    assert v - undirected(nested.faces).shape[0] + f < 2  # hanging nodes break Euler
    senders, receivers = faces_to_edges(nested.faces)
    directed = set(zip(senders.tolist(), receivers.tolist(), strict=True))
    assert directed != {(r, s) for s, r in directed}


@pytest.mark.parametrize("mode", ["conforming", "oneforecast"])
@pytest.mark.parametrize("boxes", [ONEFORECAST_BOXES, ((40.0, 70.0, 350.0, 20.0),)],
                         ids=["oneforecast-boxes", "date-line"])
def test_new_nodes_stay_near_the_boxes(mode, boxes):
    spec = GraphSpec(lat=(0.0,), lon=(0.0,), mesh_levels=4, regions=boxes, region_levels=2,
                     region_mode=mode)
    mesh = build_mesh(spec)
    new = mesh["level"] > spec.mesh_levels
    assert new.sum() > 0
    lat, lon = xyz_to_lat_lon(mesh["vertices"][new])
    edge_deg = deg(2 * np.arcsin(mesh["radius"] / 2))
    assert near_boxes(lat, lon, boxes, edge_deg).all()
    # ... and the interior of every box is refined: its nodes reach level mesh_levels + 2.
    all_lat, all_lon = xyz_to_lat_lon(mesh["vertices"])
    for box in boxes:
        inner = (box[0] + edge_deg, box[1] - edge_deg, box[2] + edge_deg, box[3] - edge_deg)
        assert mesh["level"][in_boxes(all_lat, all_lon, [inner])].max() == spec.mesh_levels + 2


def test_date_line_box_refines_both_sides():
    spec = GraphSpec(lat=(0.0,), lon=(0.0,), mesh_levels=4, regions=((40.0, 70.0, 350.0, 20.0),),
                     region_levels=1)
    mesh = build_mesh(spec)
    lat, lon = xyz_to_lat_lon(mesh["vertices"][mesh["level"] == 5])
    assert ((lon > 300) & (lon < 360)).sum() > 10 and ((lon >= 0) & (lon < 60)).sum() > 10
    assert ((lon > 60) & (lon < 300)).sum() == 0
    assert (lat > 30).all()


@pytest.fixture(scope="module", params=["conforming", "oneforecast"])
def nested_graphs(request):
    """The 1.5 deg grid on level 4 + 2 regional levels, for both latitude orders."""
    specs = [
        GraphSpec(lat=lat, lon=LON_1P5, mesh_levels=4, regions=ONEFORECAST_BOXES, region_levels=2,
                  region_mode=request.param)
        for lat in (LAT_1P5, LAT_1P5[::-1])
    ]
    return specs, [build_graph(spec) for spec in specs]


def test_boxes_are_geographic_whatever_the_latitude_order(nested_graphs):
    (ascending, descending), (up, down) = nested_graphs
    assert spec_hash(ascending) != spec_hash(descending)
    for data in (up, down):
        refined = data["mesh"].level > 4
        assert refined.sum() > 100
        # The 0-30N box is north of the equator (OneForecast's code mirrors it south).
        assert (data["mesh"].lat[refined] > -2.0).all()
        assert (data["mesh"].lat[data["mesh"].in_region] >= 0).all()
        assert data["mesh"].in_region.sum() > 0
    # The mesh does not depend on the grid's axis order at all.
    for key in ("pos", "x", "level", "in_region"):
        assert torch.equal(up["mesh"][key], down["mesh"][key])
    assert torch.equal(up[M2M].edge_index, down[M2M].edge_index)
    # Grid node i_lat * W + i_lon of one is node (H - 1 - i_lat) * W + i_lon of the other.
    h, w = len(LAT_1P5), len(LON_1P5)
    flip = ((h - 1 - np.arange(h))[:, None] * w + np.arange(w)[None, :]).reshape(-1)
    for edge_type in (G2M, M2G):
        ei_up, ei_down = up[edge_type].edge_index.numpy(), down[edge_type].edge_index.numpy()
        grid_row = 0 if edge_type == G2M else 1
        mapped = ei_down.copy()
        mapped[grid_row] = flip[ei_down[grid_row]]
        key = lambda e: set(zip(e[0].tolist(), e[1].tolist(), strict=True))  # noqa: E731
        assert key(mapped) == key(ei_up)


def test_nested_graph_connectivity(nested_graphs):
    specs, graphs = nested_graphs
    spec, data = specs[0], graphs[0]
    num_mesh, num_grid = data["mesh"].num_nodes, data["grid"].num_nodes
    assert num_mesh > 10 * 4**4 + 2
    senders, receivers = data[M2M].edge_index.numpy()
    # Symmetric, no duplicates, no self loops, no isolated nodes.
    pairs = senders * num_mesh + receivers
    assert np.unique(pairs).shape[0] == pairs.shape[0]
    np.testing.assert_array_equal(np.sort(pairs), np.sort(receivers * num_mesh + senders))
    assert (senders != receivers).all()
    assert (np.bincount(receivers, minlength=num_mesh) > 0).all()
    g2m = data[G2M].edge_index.numpy()
    assert (np.bincount(g2m[0], minlength=num_grid) >= 1).all()
    assert (np.bincount(g2m[1], minlength=num_mesh) >= 1).all()
    # The grid->mesh radius is the unrefined level's, also inside the region.
    radius = 0.6 * mesh_edge_radius(*mesh_hierarchy(4)[-1])
    length = np.linalg.norm(data["grid"].pos.double().numpy()[g2m[0]]
                            - data["mesh"].pos.double().numpy()[g2m[1]], axis=1)
    assert length.max() <= radius + 1e-6
    refined_receivers = (data["mesh"].level[g2m[1]] > 4).numpy()
    assert length[refined_receivers].max() > 0.9 * radius
    # mesh->grid: exactly 3 per grid node, a leaf triangle holding it.
    m2g = data[M2G].edge_index.numpy()
    np.testing.assert_array_equal(m2g[1], np.repeat(np.arange(num_grid), 3))
    mesh = build_mesh(spec)
    tri = np.sort(m2g[0].reshape(-1, 3), axis=1)
    leaves = {tuple(f) for f in np.sort(mesh["faces"], axis=1).tolist()}
    assert all(tuple(t) in leaves for t in tri.tolist())
    grid_xyz = lat_lon_to_xyz(data["grid"].lat.double().numpy(), data["grid"].lon.double().numpy())
    weights = spherical_barycentric(grid_xyz, mesh["vertices"][m2g[0].reshape(-1, 3)])
    assert weights.min() >= -1e-6
    # Some grid nodes in the box decode from refined mesh nodes.
    assert (data["mesh"].level[m2g[0]] > 4).any()


def test_max_neighbours_caps_grid_to_mesh_at_the_nearest():
    base = GraphSpec(lat=LAT_1P5, lon=LON_1P5, mesh_levels=4)
    full, capped = build_graph(base), build_graph(replace(base, max_neighbours=2))
    num_grid = full["grid"].num_nodes
    degree_full = np.bincount(full[G2M].edge_index[0].numpy(), minlength=num_grid)
    degree_capped = np.bincount(capped[G2M].edge_index[0].numpy(), minlength=num_grid)
    np.testing.assert_array_equal(degree_capped, np.minimum(degree_full, 2))
    assert degree_full.max() > 2
    # The kept edges are the shortest of each grid node's full set: none is longer than the
    # third-nearest (in chord units; each set's features are scaled by its own longest edge).
    def chords(data):
        grid, mesh = data[G2M].edge_index.numpy()
        pos_grid, pos_mesh = data["grid"].pos.double().numpy(), data["mesh"].pos.double().numpy()
        return grid, np.linalg.norm(pos_grid[grid] - pos_mesh[mesh], axis=1)

    grid_full, chord_full = chords(full)
    order = np.lexsort((chord_full, grid_full))
    grid_sorted = grid_full[order]
    rank = np.arange(order.shape[0]) - np.searchsorted(grid_sorted, grid_sorted)
    third = np.full(num_grid, np.inf)
    third[grid_sorted[rank == 2]] = chord_full[order][rank == 2]
    grid_capped, chord_capped = chords(capped)
    assert (chord_capped <= third[grid_capped] + 1e-6).all()


def test_graph_cache_builds_then_loads(tmp_path):
    spec = GraphSpec(lat=LAT_1P5[::4], lon=LON_1P5[::4], mesh_levels=2,
                     regions=((0.0, 30.0, 105.0, 160.0),), region_levels=1)
    first = graph_cache(spec, tmp_path / "cache")
    path = tmp_path / "cache" / f"{spec_hash(spec)}.pt"
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == [path.name]
    stamp = path.stat().st_mtime_ns
    again = graph_cache(spec, tmp_path / "cache")
    assert path.stat().st_mtime_ns == stamp  # loaded, not rebuilt
    for store in first.node_types + first.edge_types:
        for key, value in first[store].items():
            assert torch.equal(again[store][key], value)
    assert again["mesh"].in_region.dtype == torch.bool and again["mesh"].level.dtype == torch.int64
    assert GraphSpec.from_json(again.spec_json) == spec
    path.write_bytes(b"damaged")
    rebuilt = graph_cache(spec, tmp_path / "cache")
    assert torch.equal(rebuilt[M2M].edge_index, first[M2M].edge_index)
    assert load_graph(path).spec_hash == spec_hash(spec)


def test_quarter_degree_level_6_graph():
    # GraphCast's configuration: 0.25 deg with poles (721 x 1440) on the level-6 multi-mesh.
    spec = GraphSpec(lat=tuple(np.linspace(90, -90, 721)), lon=tuple(np.arange(1440) * 0.25),
                     mesh_levels=6)
    data = build_graph(spec)
    num_grid = 721 * 1440
    assert (data["grid"].num_nodes, data["mesh"].num_nodes) == (num_grid, 40_962)
    assert data[M2M].num_edges == 327_660
    assert 1_600_000 < data[G2M].num_edges < 1_650_000  # 1,629,780 measured
    assert data[M2G].num_edges == 3 * 1_038_240
    senders, receivers = data[M2M].edge_index.numpy()
    pairs = np.sort(senders * 40_962 + receivers)
    np.testing.assert_array_equal(pairs, np.sort(receivers * 40_962 + senders))
    # Every grid point, 1440 of them on each pole, lies in its decoding triangle.
    grid_xyz = lat_lon_to_xyz(data["grid"].lat.double().numpy(), data["grid"].lon.double().numpy())
    vertices = mesh_hierarchy(6)[-1][0]
    m2g = data[M2G].edge_index[0].numpy().reshape(-1, 3)
    weights = spherical_barycentric(grid_xyz, vertices[m2g])
    assert weights.min() >= -1e-6  # float32 lat/lon of the grid: about 1e-7 of an edge off
    assert (np.bincount(data[G2M].edge_index[0].numpy(), minlength=num_grid) >= 1).all()


def test_box_indices_pick_rows_and_columns_by_hand():
    from graphs.regions import box_indices

    lat = np.array([60.0, 45.0, 30.0, 15.0])  # descending, as the stores
    lon = np.array([0.0, 90.0, 170.0, 180.0, 190.0, 350.0])
    rows, cols = box_indices(lat, lon, (20, 50, 170, 185))
    assert rows.tolist() == [1, 2] and cols.tolist() == [2, 3]
    # across the date line and the 0° meridian: 350 eastward to 90
    rows, cols = box_indices(lat, lon, (15, 60, 350, 90))
    assert rows.tolist() == [0, 1, 2, 3] and cols.tolist() == [0, 1, 5]
    # a side moved by a rounding error still holds its points; a real offset does not
    _, cols = box_indices(lat, lon, (0, 90, 90 + 1e-9, 170 - 1e-9))
    assert cols.tolist() == [1, 2]
    _, cols = box_indices(lat, lon, (0, 90, 90.01, 170))
    assert cols.tolist() == [2]
