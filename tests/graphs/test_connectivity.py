import numpy as np
import pytest

from graphs.connectivity import (
    grid_lat_lon,
    in_mesh_triangle_indices,
    lat_lon_to_xyz,
    mesh_edge_radius,
    radius_query_indices,
    spherical_barycentric,
    xyz_to_lat_lon,
)
from graphs.icosahedral import icosahedron, mesh_hierarchy

LON_64 = np.arange(64) * 5.625
LAT_WITH_POLES = np.linspace(90, -90, 32)
LAT_WITHOUT_POLES = 90 - (np.arange(32) + 0.5) * 180 / 32


def test_lat_lon_to_xyz_hand_values():
    xyz = lat_lon_to_xyz(
        np.array([0, 90, -90, 0, 0, 0, 45]), np.array([0, 0, 123, 90, 180, -90, 0])
    )
    expected = [
        [1, 0, 0],
        [0, 0, 1],
        [0, 0, -1],
        [0, 1, 0],
        [-1, 0, 0],
        [0, -1, 0],
        [np.sqrt(0.5), 0, np.sqrt(0.5)],
    ]
    np.testing.assert_allclose(xyz, expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(
        lat_lon_to_xyz(np.array([10.0, -30]), np.array([-90.0, -179])),
        lat_lon_to_xyz(np.array([10.0, -30]), np.array([270.0, 181])),
        rtol=0,
        atol=1e-15,
    )


def test_xyz_to_lat_lon_round_trip():
    lat, lon = grid_lat_lon(LAT_WITHOUT_POLES, LON_64 - 180)
    back_lat, back_lon = xyz_to_lat_lon(lat_lon_to_xyz(lat, lon))
    np.testing.assert_allclose(back_lat, lat, atol=1e-12)
    np.testing.assert_allclose(back_lon, np.mod(lon, 360), atol=1e-12)


def test_grid_order_matches_numpy_reshape():
    lat, lon = np.array([80.0, 10, -50]), np.array([0.0, 90, 180, 270])
    lat_flat, lon_flat = grid_lat_lon(lat, lon)
    field = lat[:, None] * 1000 + lon[None, :]  # field[lat, lon]
    np.testing.assert_array_equal(field.reshape(-1), lat_flat * 1000 + lon_flat)
    assert (lat_flat[4], lon_flat[4]) == (10.0, 0.0)  # i_lat * W + i_lon with W = 4


def brute_force_pairs(grid_xyz, mesh_xyz, radius):
    distance = np.linalg.norm(grid_xyz[:, None] - mesh_xyz[None], axis=2)
    grid_idx, mesh_idx = np.nonzero(distance <= radius)
    return set(zip(grid_idx.tolist(), mesh_idx.tolist(), strict=True))


@pytest.mark.parametrize("lat", [LAT_WITH_POLES, LAT_WITHOUT_POLES])
def test_radius_query_matches_brute_force(lat):
    grid_xyz = lat_lon_to_xyz(*grid_lat_lon(lat, LON_64))
    mesh_xyz = mesh_hierarchy(2)[-1][0]
    radius = 0.6 * mesh_edge_radius(*mesh_hierarchy(2)[-1])
    grid_idx, mesh_idx = radius_query_indices(grid_xyz, mesh_xyz, radius)
    pairs = list(zip(grid_idx.tolist(), mesh_idx.tolist(), strict=True))
    assert len(set(pairs)) == len(pairs)
    assert set(pairs) == brute_force_pairs(grid_xyz, mesh_xyz, radius)
    assert grid_idx.dtype == mesh_idx.dtype == np.int64
    # Coincident points (poles, lat 0 / lon 0 are mesh vertices) are pairs at distance 0.
    if lat[0] == 90:
        assert (0, int(np.argmax(mesh_xyz[:, 2]))) in set(pairs)


def test_spherical_barycentric_hand_values():
    vertices, faces = icosahedron()
    triangle = vertices[faces[0]]
    centroid = triangle.sum(axis=0) / np.linalg.norm(triangle.sum(axis=0))
    points = np.stack([triangle[1], centroid])
    weights = spherical_barycentric(points, np.stack([triangle, triangle]))
    np.testing.assert_allclose(weights, [[0, 1, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-15)


def check_in_mesh_triangle(points, vertices, faces):
    grid_idx, mesh_idx = in_mesh_triangle_indices(points, vertices, faces)
    n = len(points)
    np.testing.assert_array_equal(grid_idx, np.repeat(np.arange(n), 3))
    chosen = mesh_idx.reshape(n, 3)
    # The chosen triple is one face, in its own counter-clockwise order.
    face_of = {tuple(f): i for i, f in enumerate(faces.tolist())}
    chosen_face = np.array([face_of[tuple(t)] for t in chosen.tolist()])
    weights = spherical_barycentric(points, vertices[chosen])
    assert weights.min() >= -1e-9
    # Brute force over all faces, by the sign test det(a, b, p), det(b, c, p), det(c, a, p)
    # >= 0 written with np.linalg.det: the chosen face contains the point, and where exactly
    # one face contains it with margin, that face is the one chosen.
    tri = vertices[faces]  # [F, 3, 3]
    pts = np.broadcast_to(points[:, None, None, :], (n, len(faces), 1, 3))
    dets = np.stack(
        [
            np.linalg.det(
                np.concatenate(
                    [np.broadcast_to(tri[None, :, [i, j]], (n, len(faces), 2, 3)), pts], axis=2
                )
            )
            for i, j in ((1, 2), (2, 0), (0, 1))
        ],
        axis=2,
    )
    all_weights = dets.min(axis=2)  # [n, F]
    containing = all_weights >= -1e-9
    assert containing[np.arange(n), chosen_face].all()
    strictly = (all_weights > 1e-9).sum(axis=1) == 1
    np.testing.assert_array_equal(chosen_face[strictly], all_weights[strictly].argmax(axis=1))
    return chosen_face


@pytest.mark.parametrize("lat", [LAT_WITH_POLES, LAT_WITHOUT_POLES])
@pytest.mark.parametrize("level", [0, 2])
def test_in_mesh_triangle_grid(lat, level):
    vertices, faces = mesh_hierarchy(level)[-1]
    points = lat_lon_to_xyz(*grid_lat_lon(lat, LON_64 - 180 * (level == 0)))
    check_in_mesh_triangle(points, vertices, faces)


def test_in_mesh_triangle_on_vertices_and_edges():
    # Every vertex of refinement 2 lies on a vertex or an edge of refinement 1.
    vertices, faces = mesh_hierarchy(1)[-1]
    points = mesh_hierarchy(2)[-1][0]
    chosen_face = check_in_mesh_triangle(points, vertices, faces)
    chosen_vertices = faces[chosen_face]
    for p in range(len(vertices)):
        assert p in chosen_vertices[p]


def test_in_mesh_triangle_random_points():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(500, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    check_in_mesh_triangle(points, *mesh_hierarchy(1)[-1])


def test_mesh_edge_radius():
    assert mesh_edge_radius(*icosahedron()) == pytest.approx(1.0514622242382672, rel=1e-14)
    vertices, faces = mesh_hierarchy(2)[-1]
    brute = max(
        np.linalg.norm(vertices[f[i]] - vertices[f[(i + 1) % 3]]) for f in faces for i in range(3)
    )
    assert mesh_edge_radius(vertices, faces) == brute
    # Refining roughly halves the edges.
    assert 0.45 < brute / mesh_edge_radius(*mesh_hierarchy(1)[-1]) < 0.6
