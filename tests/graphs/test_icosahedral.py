import itertools

import numpy as np
import pytest

from graphs.icosahedral import (
    faces_to_edges,
    icosahedron,
    mesh_hierarchy,
    multi_mesh_edges,
    subdivide,
)

# Edge of the regular icosahedron inscribed in the unit sphere: 4 / sqrt(10 + 2 sqrt 5).
ICOSAHEDRON_EDGE = 1.0514622242382672


def undirected_edges(faces):
    senders, receivers = faces_to_edges(faces)
    pairs = zip(senders.tolist(), receivers.tolist(), strict=True)
    return {(min(s, r), max(s, r)) for s, r in pairs}


def outward_normal_dots(vertices, faces):
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    return np.einsum("ij,ij->i", np.cross(b - a, c - a), a + b + c)


def test_icosahedron():
    vertices, faces = icosahedron()
    assert vertices.shape == (12, 3) and vertices.dtype == np.float64
    assert faces.shape == (20, 3) and faces.dtype == np.int64
    np.testing.assert_allclose(np.linalg.norm(vertices, axis=1), 1.0, rtol=0, atol=1e-15)
    edges = undirected_edges(faces)
    assert len(edges) == 30
    lengths = [np.linalg.norm(vertices[i] - vertices[j]) for i, j in edges]
    np.testing.assert_allclose(lengths, ICOSAHEDRON_EDGE, rtol=1e-14)
    assert (outward_normal_dots(vertices, faces) > 0).all()
    assert (np.bincount(faces.reshape(-1)) == 5).all()


@pytest.mark.parametrize("k", range(5))
def test_hierarchy_counts_nesting_orientation(k):
    hierarchy = mesh_hierarchy(k)
    assert len(hierarchy) == k + 1
    for level, (vertices, faces) in enumerate(hierarchy):
        num_v, num_f, num_e = 10 * 4**level + 2, 20 * 4**level, 30 * 4**level
        assert vertices.shape == (num_v, 3) and faces.shape == (num_f, 3)
        assert len(undirected_edges(faces)) == num_e
        assert num_v - num_e + num_f == 2
        np.testing.assert_allclose(np.linalg.norm(vertices, axis=1), 1.0, rtol=0, atol=1e-15)
        assert (outward_normal_dots(vertices, faces) > 0).all()
        assert faces.dtype == np.int64
    for (coarse, _), (fine, _) in itertools.pairwise(hierarchy):
        np.testing.assert_array_equal(fine[: len(coarse)], coarse)


def test_subdivide_adds_one_normalised_midpoint_per_edge():
    vertices, faces = icosahedron()
    fine_vertices, fine_faces = subdivide(vertices, faces)
    midpoints = {}
    for i, j in undirected_edges(faces):
        m = vertices[i] + vertices[j]
        midpoints[(i, j)] = m / np.linalg.norm(m)
    new = fine_vertices[12:]
    assert len(new) == len(midpoints) == 30
    distances = np.linalg.norm(new[:, None] - np.array(list(midpoints.values()))[None], axis=2)
    # Each new vertex is exactly one of the edge midpoints, and each midpoint appears once.
    assert (np.sort(distances.min(axis=1)) < 1e-15).all()
    assert sorted(distances.argmin(axis=1).tolist()) == list(range(30))
    # Corner sub-triangle (a, ab, ca) of every face keeps the original vertex a.
    np.testing.assert_array_equal(fine_faces[:20, 0], faces[:, 0])


def test_faces_to_edges_both_directions():
    _, faces = mesh_hierarchy(1)[-1]
    senders, receivers = faces_to_edges(faces)
    assert senders.shape == receivers.shape == (3 * len(faces),)
    directed = set(zip(senders.tolist(), receivers.tolist(), strict=True))
    assert len(directed) == 3 * len(faces)
    assert directed == {(r, s) for s, r in directed}


@pytest.mark.parametrize("levels", [0, 2, 3])
def test_multi_mesh_edges(levels):
    hierarchy = mesh_hierarchy(levels)
    senders, receivers = multi_mesh_edges(hierarchy)
    union = set().union(*(undirected_edges(f) for _, f in hierarchy))
    assert len(union) == sum(30 * 4**k for k in range(levels + 1))
    assert len(senders) == 2 * len(union)
    directed = list(zip(senders.tolist(), receivers.tolist(), strict=True))
    assert len(set(directed)) == len(directed)
    assert set(directed) == union | {(j, i) for i, j in union}
    assert (senders != receivers).all()
    assert senders.dtype == receivers.dtype == np.int64
    assert 0 <= min(senders.min(), receivers.min())
    assert max(senders.max(), receivers.max()) < len(hierarchy[-1][0])


def test_negative_levels_rejected():
    with pytest.raises(ValueError, match="levels"):
        mesh_hierarchy(-1)
