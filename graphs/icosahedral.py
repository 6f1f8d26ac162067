"""Nested icosahedral meshes and the multi-mesh of GraphCast / OneForecast.

All vertices lie on the unit sphere; faces are counter-clockwise seen from outside, so
``cross(b - a, c - a)`` points away from the origin for every face ``(a, b, c)``.
"""

from __future__ import annotations

import numpy as np

ORIENTATIONS = ("sluice", "graphcast")


def icosahedron(orientation: str = "sluice") -> tuple[np.ndarray, np.ndarray]:
    """The regular icosahedron inscribed in the unit sphere.

    Vertices are the cyclic permutations of ``(0, ±1, ±phi)``. With ``orientation="sluice"``
    the poles and the point lat 0, lon 0 are midpoints of icosahedron edges, so they become
    mesh vertices from refinement 1 on. ``"graphcast"`` turns it about the y axis as GraphCast's
    ``get_icosahedron`` does (and so PhysicsNeMo and OneForecast): by half the supplement of
    the dihedral angle, which puts a face centre on each pole.

    Args:
        orientation: ``"sluice"`` or ``"graphcast"``.

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
    if orientation == "graphcast":
        angle = (np.pi - 2.0 * np.arcsin(phi / np.sqrt(3.0))) / 2.0
        cos, sin = np.cos(angle), np.sin(angle)
        # GraphCast multiplies row vectors by R_y(angle) from the right.
        vertices = vertices @ np.array([[cos, 0.0, sin], [0.0, 1.0, 0.0], [-sin, 0.0, cos]])
    elif orientation != "sluice":
        raise ValueError(
            f"icosahedron orientation must be one of {ORIENTATIONS}, got {orientation!r}"
        )
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


def mesh_hierarchy(levels: int, orientation: str = "sluice") -> list[tuple[np.ndarray, np.ndarray]]:
    """Icosahedron (see ``icosahedron`` for ``orientation``) refined 0, 1, ..., ``levels`` times.

    Returns:
        ``levels + 1`` pairs (vertices [10 * 4**k + 2, 3], faces [20 * 4**k, 3]); the
        vertices of refinement k are the first rows of those of refinement k + 1.
    """
    if levels < 0:
        raise ValueError(f"mesh levels must be >= 0, got {levels}")
    hierarchy = [icosahedron(orientation)]
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
    extra_faces: list[np.ndarray] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Union of the edges of every refinement, on the finest mesh's vertex indices.

    Coarse levels supply the long-range edges and fine levels the short ones (GraphCast's
    multi-mesh). Indices carry over unchanged because the hierarchy is nested.

    Args:
        hierarchy: as returned by ``mesh_hierarchy``.
        extra_faces: more triangles ([F_i, 3] int64 each, e.g. a regional refinement's, see
            ``graphs.regions``) whose edges join the union; they may index vertices beyond
            the hierarchy's and need not cover the sphere.

    Returns:
        senders: [E] int64, sorted by (receiver, sender), no duplicates, no self loops;
            every edge appears in both directions.
        receivers: [E] int64.
    """
    all_faces = [faces for _, faces in hierarchy] + list(extra_faces)
    num_vertices = max(hierarchy[-1][0].shape[0], *(int(f.max()) + 1 for f in all_faces))
    edges = [faces_to_edges(faces) for faces in all_faces]
    # Both directions explicitly: a partial refinement is not closed, so the face across an
    # edge need not walk it back.
    senders = np.concatenate([s for s, _ in edges] + [r for _, r in edges])
    receivers = np.concatenate([r for _, r in edges] + [s for s, _ in edges])
    keys = receivers * num_vertices + senders
    keys.sort()
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    receivers, senders = np.divmod(keys, num_vertices)
    not_loop = senders != receivers
    return senders[not_loop], receivers[not_loop]


def vertex_levels(num_vertices_per_level: list[int]) -> np.ndarray:
    """Refinement level at which each vertex of a nested hierarchy first appears.

    Args:
        num_vertices_per_level: vertex counts of levels 0..L (increasing).

    Returns:
        [V_L] int64.
    """
    counts = np.asarray(num_vertices_per_level)
    return np.searchsorted(counts, np.arange(counts[-1]), side="right").astype(np.int64)
