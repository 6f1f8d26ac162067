"""Grid <-> mesh connectivity on the unit sphere (GraphCast's grid_mesh_connectivity, vectorised).

Distances are chord lengths between unit vectors, as in GraphCast.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from graphs.icosahedral import faces_to_edges


def lat_lon_to_xyz(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """Unit vectors of points given in degrees north and degrees east.

    Longitude may be in 0..360 or -180..180; x points to (lat 0, lon 0), z to the north pole.

    Args:
        lat_deg: [N].
        lon_deg: [N].

    Returns:
        [N, 3] float64.
    """
    lat = np.deg2rad(np.asarray(lat_deg, dtype=np.float64))
    lon = np.deg2rad(np.asarray(lon_deg, dtype=np.float64))
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def xyz_to_lat_lon(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of ``lat_lon_to_xyz``.

    Args:
        xyz: [N, 3] unit vectors.

    Returns:
        lat_deg: [N] in [-90, 90].
        lon_deg: [N] in [0, 360).
    """
    lat = np.rad2deg(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0)))
    lon = np.mod(np.rad2deg(np.arctan2(xyz[:, 1], xyz[:, 0])), 360.0)
    return lat, lon


def grid_lat_lon(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of the nodes of a lat-lon grid, flattened row-major.

    Node ``i_lat * W + i_lon`` is ``(lat[i_lat], lon[i_lon])``, the order of
    ``field[..., lat, lon].reshape(..., H * W)``. Models rely on this order.

    Args:
        lat: [H] degrees north, any order.
        lon: [W] degrees east, any order or convention.

    Returns:
        lat_flat: [H * W].
        lon_flat: [H * W].
    """
    lat_2d, lon_2d = np.meshgrid(np.asarray(lat), np.asarray(lon), indexing="ij")
    return lat_2d.reshape(-1), lon_2d.reshape(-1)


def radius_query_indices(
    grid_xyz: np.ndarray, mesh_xyz: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """All grid-mesh pairs within a chord distance.

    Args:
        grid_xyz: [N, 3] unit vectors.
        mesh_xyz: [M, 3] unit vectors.
        radius: chord distance; pairs with distance <= radius are kept.

    Returns:
        grid_idx: [E] int64, sorted by (mesh_idx, grid_idx).
        mesh_idx: [E] int64.
    """
    pairs = cKDTree(grid_xyz).sparse_distance_matrix(
        cKDTree(mesh_xyz), radius, output_type="ndarray"
    )
    grid_idx = pairs["i"].astype(np.int64)
    mesh_idx = pairs["j"].astype(np.int64)
    order = np.lexsort((grid_idx, mesh_idx))
    return grid_idx[order], mesh_idx[order]


def _vertex_coefficients(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Coefficients w with ``p = w_a a + w_b b + w_c c`` (Cramer's rule).

    ``w_a = det(b, c, p) / det(a, b, c)``; the denominator is positive for a counter-clockwise
    triangle, and ``det(b, c, p) >= 0`` says p is on the inner side of the great circle
    through b and c. So p is in the spherical triangle iff all three are >= 0.

    Args:
        points: [N, 3].
        triangles: [N, 3, 3] vertices (a, b, c) of one counter-clockwise triangle per point.

    Returns:
        [N, 3] float64.
    """
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    bc, ca, ab = np.cross(b, c), np.cross(c, a), np.cross(a, b)
    dets = np.stack(
        [
            np.einsum("ij,ij->i", points, bc),
            np.einsum("ij,ij->i", points, ca),
            np.einsum("ij,ij->i", points, ab),
        ],
        axis=1,
    )
    return dets / np.einsum("ij,ij->i", a, bc)[:, None]


def spherical_barycentric(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Barycentric weights of each point's central projection onto its triangle's plane.

    A weight is negative exactly when the point lies outside the spherical triangle across
    the edge opposite that vertex. Defined for points on the triangle's side of the sphere.

    Args:
        points: [N, 3] unit vectors.
        triangles: [N, 3, 3] vertices (a, b, c) of one counter-clockwise triangle per point.

    Returns:
        [N, 3] float64 weights of (a, b, c), summing to 1.
    """
    coefficients = _vertex_coefficients(points, triangles)
    return coefficients / coefficients.sum(axis=1, keepdims=True)


def in_mesh_triangle_indices(
    grid_xyz: np.ndarray, vertices: np.ndarray, faces: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The three vertices of the mesh triangle containing each grid point.

    A spherical triangle lies inside the cap centred on its normalised centroid that reaches
    its farthest vertex, so every face whose centroid is within the largest such cap radius
    of a point is a candidate, and the containing face is always among them. Of the
    candidates, the one with the largest smallest barycentric coefficient wins; that picks a
    single face for points on shared edges and vertices (poles, lon 0) deterministically.

    Args:
        grid_xyz: [N, 3] unit vectors.
        vertices: [V, 3] unit vectors.
        faces: [F, 3] int64, counter-clockwise, covering the sphere.

    Returns:
        grid_idx: [3 * N] int64, ``repeat(arange(N), 3)``.
        mesh_idx: [3 * N] int64, the containing face's vertices (a, b, c) for each point.
    """
    triangles = vertices[faces]  # [F, 3, 3]
    centroids = triangles.sum(axis=1)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    cap_radius = np.linalg.norm(triangles - centroids[:, None, :], axis=2).max()
    pairs = cKDTree(grid_xyz).sparse_distance_matrix(
        cKDTree(centroids), cap_radius * (1.0 + 1e-6), output_type="ndarray"
    )
    point, face = pairs["i"].astype(np.int64), pairs["j"].astype(np.int64)
    # Unnormalised coefficients: same signs as the barycentric weights, and finite for
    # candidates a quarter-turn away, where the projection onto their plane does not exist.
    min_weight = _vertex_coefficients(grid_xyz[point], triangles[face]).min(axis=1)
    # Best candidate first within each point, then keep each point's first row.
    order = np.lexsort((-min_weight, point))
    _, first = np.unique(point[order], return_index=True)
    num_points = grid_xyz.shape[0]
    if first.shape[0] != num_points:
        raise ValueError("faces do not cover the sphere, or grid_xyz are not unit vectors")
    best_face = face[order][first]  # [N]; unique() sorts, so row n is grid point n
    return np.repeat(np.arange(num_points, dtype=np.int64), 3), faces[best_face].reshape(-1)


def mesh_edge_radius(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Longest edge (chord length) of a triangle mesh.

    GraphCast connects grid to mesh within ``0.6 *`` this: above 1/sqrt(3), the
    circumradius of a flat equilateral face, so on refined (nearly flat) meshes every grid
    point reaches some mesh node. The bare icosahedron's faces bulge too much for that
    (face-centre-to-vertex chord 0.641 > 0.6 * 1.051).

    Args:
        vertices: [V, 3].
        faces: [F, 3] int64.
    """
    senders, receivers = faces_to_edges(faces)
    return float(np.linalg.norm(vertices[senders] - vertices[receivers], axis=1).max())
