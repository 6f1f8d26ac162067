"""Nested icosahedral meshes and the multi-mesh of GraphCast / OneForecast.

All vertices lie on the unit sphere; faces are counter-clockwise seen from outside, so
``cross(b - a, c - a)`` points away from the origin for every face ``(a, b, c)``.
"""

from __future__ import annotations

import numpy as np


def icosahedron() -> tuple[np.ndarray, np.ndarray]:
    """The regular icosahedron inscribed in the unit sphere.

    Vertices are the cyclic permutations of ``(0, ±1, ±phi)``; with this choice the poles and
    the point lat 0, lon 0 are midpoints of icosahedron edges, so they become mesh vertices
    from refinement 1 on.

    Returns:
        vertices: [12, 3] float64, unit norm.
        faces: [20, 3] int64, counter-clockwise seen from outside.
    """
    phi = (1.0 + np.sqrt(5.0)) / 2.0
    vertices = np.array(
        [
            [-1.0, phi, 0.0],
            [1.0, phi, 0.0],
            [-1.0, -phi, 0.0],
            [1.0, -phi, 0.0],
            [0.0, -1.0, phi],
            [0.0, 1.0, phi],
            [0.0, -1.0, -phi],
            [0.0, 1.0, -phi],
            [phi, 0.0, -1.0],
            [phi, 0.0, 1.0],
            [-phi, 0.0, -1.0],
            [-phi, 0.0, 1.0],
        ]
    )
    vertices /= np.linalg.norm(vertices, axis=1, keepdims=True)
    faces = np.array(
        [
            [0, 11, 5],
            [0, 5, 1],
            [0, 1, 7],
            [0, 7, 10],
            [0, 10, 11],
            [1, 5, 9],
            [5, 11, 4],
            [11, 10, 2],
            [10, 7, 6],
            [7, 1, 8],
            [3, 9, 4],
            [3, 4, 2],
            [3, 2, 6],
            [3, 6, 8],
            [3, 8, 9],
            [4, 9, 5],
            [2, 4, 11],
            [6, 2, 10],
            [8, 6, 7],
            [9, 8, 1],
        ],
        dtype=np.int64,
    )
    return vertices, faces


def subdivide(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Splits every triangle into four, projecting the edge midpoints onto the unit sphere.

    Args:
        vertices: [V, 3] float64 unit vectors.
        faces: [F, 3] int64, counter-clockwise.

    Returns:
        vertices: [V + F * 3 / 2, 3]; the first V rows are the input vertices unchanged, so
            meshes of successive refinements are nested.
        faces: [4 * F, 3] int64, counter-clockwise.
    """
    num_vertices = vertices.shape[0]
    a, b, c = faces[:, 0], faces[:, 1], faces[:, 2]
    # Edge (a, b) of face f is edge_ends[k * F + f] for k = 0 (ab), 1 (bc), 2 (ca).
    edge_ends = np.stack([np.concatenate([a, b, c]), np.concatenate([b, c, a])], axis=1)
    edge_ends.sort(axis=1)
    # Two faces share each edge; a scalar key makes unique 1-D (much faster than axis=0).
    keys = edge_ends[:, 0] * num_vertices + edge_ends[:, 1]
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    midpoint_ends = edge_ends[first]  # [F * 3 / 2, 2]
    midpoints = vertices[midpoint_ends[:, 0]] + vertices[midpoint_ends[:, 1]]
    midpoints /= np.linalg.norm(midpoints, axis=1, keepdims=True)

    ab, bc, ca = (num_vertices + inverse.reshape(3, -1)).astype(np.int64)
    new_faces = np.concatenate(
        [
            np.stack([a, ab, ca], axis=1),
            np.stack([ab, b, bc], axis=1),
            np.stack([ca, bc, c], axis=1),
            np.stack([ab, bc, ca], axis=1),
        ]
    )
    return np.concatenate([vertices, midpoints]), new_faces


def mesh_hierarchy(levels: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Icosahedron refined 0, 1, ..., ``levels`` times.

    Returns:
        ``levels + 1`` pairs (vertices [10 * 4**k + 2, 3], faces [20 * 4**k, 3]); the
        vertices of refinement k are the first rows of those of refinement k + 1.
    """
    if levels < 0:
        raise ValueError(f"mesh levels must be >= 0, got {levels}")
    hierarchy = [icosahedron()]
    for _ in range(levels):
        hierarchy.append(subdivide(*hierarchy[-1]))
    return hierarchy


def faces_to_edges(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directed edges of a closed, consistently oriented triangle mesh.

    Each face contributes a -> b, b -> c, c -> a; the neighbour across each edge walks it the
    other way, so every undirected edge appears exactly once in each direction.

    Args:
        faces: [F, 3] int64.

    Returns:
        senders: [3 * F] int64.
        receivers: [3 * F] int64.
    """
    senders = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    receivers = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    return senders, receivers


def multi_mesh_edges(
    hierarchy: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """Union of the edges of every refinement, on the finest mesh's vertex indices.

    Coarse levels supply the long-range edges and fine levels the short ones (GraphCast's
    multi-mesh). Indices carry over unchanged because the hierarchy is nested.

    Args:
        hierarchy: as returned by ``mesh_hierarchy``.

    Returns:
        senders: [E] int64, sorted by (receiver, sender), no duplicates, no self loops;
            every edge appears in both directions.
        receivers: [E] int64.
    """
    num_vertices = hierarchy[-1][0].shape[0]
    edges = [faces_to_edges(faces) for _, faces in hierarchy]
    senders = np.concatenate([s for s, _ in edges])
    receivers = np.concatenate([r for _, r in edges])
    keys = np.unique(receivers * num_vertices + senders)
    receivers, senders = np.divmod(keys, num_vertices)
    not_loop = senders != receivers
    return senders[not_loop], receivers[not_loop]
