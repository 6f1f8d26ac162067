"""Regional densification of the icosahedral mesh: OneForecast's nested mesh.

Boxes are geographic ``(lat_min, lat_max, lon_min, lon_max)`` in degrees north / east; a box
with ``lon_min > lon_max`` (mod 360) crosses the date line, e.g. ``(40, 60, 350, 20)``. They do
not depend on the data's latitude order: the mesh lives on the sphere, not on the grid's axes.

Two rules (``mode``), both splitting a face into 4 at its projected edge midpoints, one extra
level per round:

- ``"oneforecast"``: every face of the current finest level whose centroid lies in a box is
  split, as in OneForecast's released code. Unsplit neighbours keep their three corners, so
  the split faces' edge midpoints on the box boundary are *hanging nodes* (they lie on an
  unsplit face's edge without being one of its vertices).
- ``"conforming"``: the same centroid rule, restricted so that neighbours differ by at most
  one level (a face of round j may only split if every neighbour already reached round j),
  then closed by red-green refinement: a face with 1, 2 or 3 hanging midpoints on its edges is
  split into 2, 3 or 4 triangles through them. This adds edges but no nodes, and leaves a
  conforming triangulation of the sphere (Euler's V - E + F = 2 holds).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_KEY = np.int64(1) << 32  # edge key u * 2**32 + v; vertex ids stay far below 2**31


class NestedMesh(NamedTuple):
    """A regionally refined mesh.

    vertices: [V, 3] float64 unit vectors; the unrefined mesh's vertices come first.
    faces: [F, 3] int64 counter-clockwise leaf triangles tiling the sphere (for point location).
    edge_faces: triangles whose edges join the multi-mesh: every face created by a split or by
        the conforming closure ([F_i, 3] int64 each).
    new_vertex_round: [V - V_0] int64, round (1, 2, ...) in which each added vertex appeared.
    """

    vertices: np.ndarray
    faces: np.ndarray
    edge_faces: list[np.ndarray]
    new_vertex_round: np.ndarray


def in_boxes(lat_deg: np.ndarray, lon_deg: np.ndarray, boxes) -> np.ndarray:
    """Whether each point lies in at least one box (boundaries included).

    Args:
        lat_deg: [N] degrees north.
        lon_deg: [N] degrees east, any convention.
        boxes: sequence of ``(lat_min, lat_max, lon_min, lon_max)``; ``lon_min > lon_max``
            (mod 360) crosses the date line; a span of 360 or more is the whole circle.

    Returns:
        [N] bool.
    """
    lat = np.asarray(lat_deg, dtype=np.float64)
    lon = np.asarray(lon_deg, dtype=np.float64)
    inside = np.zeros(lat.shape, dtype=bool)
    for lat_min, lat_max, lon_min, lon_max in boxes:
        span = lon_max - lon_min
        width = 360.0 if span >= 360.0 else np.mod(span, 360.0)
        in_lon = np.mod(lon - lon_min, 360.0) <= width
        inside |= (lat >= lat_min) & (lat <= lat_max) & in_lon
    return inside


def box_indices(lat_deg: np.ndarray, lon_deg: np.ndarray, box, slack: float = 1e-6
                ) -> tuple[np.ndarray, np.ndarray]:
    """The rows of a rectilinear grid's latitudes and the columns of its longitudes inside one
    ``(lat_min, lat_max, lon_min, lon_max)`` box (as `in_boxes`; ``slack`` degrees beyond each
    side keep points on a side that arithmetic moved by a rounding error).

    Args:
        lat_deg: [H] degrees north, any order.
        lon_deg: [W] degrees east, any convention and order.

    Returns:
        ([h] int64, [w] int64): row and column indices, in the grid's own order.
    """
    lat_min, lat_max, lon_min, lon_max = (float(v) for v in box)
    wide = [(lat_min - slack, lat_max + slack, lon_min - slack, lon_max + slack)]
    lat = np.asarray(lat_deg, dtype=np.float64)
    lon = np.asarray(lon_deg, dtype=np.float64)
    rows = in_boxes(lat, np.full(lat.shape, lon_min), wide)
    cols = in_boxes(np.full(lon.shape, lat_min), lon, wide)
    return np.flatnonzero(rows).astype(np.int64), np.flatnonzero(cols).astype(np.int64)


def face_centroid_lat_lon(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, ...]:
    """Latitude and longitude (degrees) of each face's centroid projected onto the sphere.

    Args:
        vertices: [V, 3].
        faces: [F, 3] int64.

    Returns:
        lat: [F] in [-90, 90]; lon: [F] in [0, 360).
    """
    centroid = vertices[faces[:, 0]] + vertices[faces[:, 1]] + vertices[faces[:, 2]]
    x, y, z = centroid[:, 0], centroid[:, 1], centroid[:, 2]
    lat = np.rad2deg(np.arctan2(z, np.hypot(x, y)))
    lon = np.mod(np.rad2deg(np.arctan2(y, x)), 360.0)
    return lat, lon


def _undirected_keys(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.minimum(u, v) * _KEY + np.maximum(u, v)


def _lookup(table_keys: np.ndarray, table_ids: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``table_ids`` of ``keys`` in the sorted ``table_keys``; -1 where absent."""
    pos = np.minimum(np.searchsorted(table_keys, keys), max(table_keys.shape[0] - 1, 0))
    if table_keys.shape[0] == 0:
        return np.full(keys.shape, -1, dtype=np.int64)
    return np.where(table_keys[pos] == keys, table_ids[pos], -1)


def _edges_are_complete(faces: np.ndarray, mid_keys: np.ndarray) -> np.ndarray:
    """Whether no neighbour of each face is coarser than the face itself.

    Across edge (u, v) the neighbour is as fine or finer exactly when some leaf face walks
    (v, u), or when the neighbour was split and left a midpoint on (u, v).

    Args:
        faces: [F, 3] leaf faces.
        mid_keys: [M] sorted undirected keys of the edges that have a midpoint.

    Returns:
        [F] bool.
    """
    senders, receivers = faces, np.roll(faces, -1, axis=1)  # [F, 3]: edges ab, bc, ca
    directed = np.sort((senders * _KEY + receivers).reshape(-1))
    reverse = (receivers * _KEY + senders).reshape(-1)
    pos = np.minimum(np.searchsorted(directed, reverse), directed.shape[0] - 1)
    has_twin = directed[pos] == reverse
    split = np.isin(_undirected_keys(senders, receivers).reshape(-1), mid_keys)
    return (has_twin | split).reshape(-1, 3).all(axis=1)


def _rotate(rows: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Rows cycled left by ``shift``: out[i, j] = rows[i, (j + shift[i]) % 3]."""
    cols = (np.arange(3)[None, :] + shift[:, None]) % 3
    return np.take_along_axis(rows, cols, axis=1)


def _close(vertices: np.ndarray, faces: np.ndarray, midpoints: np.ndarray) -> np.ndarray:
    """Red-green closure: split faces with hanging midpoints on their edges.

    Args:
        vertices: [V, 3].
        faces: [F, 3] leaf faces (a, b, c).
        midpoints: [F, 3] vertex id of the midpoint of edge ab, bc, ca, or -1.

    Returns:
        [F', 3] counter-clockwise faces, F' >= F, conforming (no hanging nodes).
    """
    hanging = midpoints >= 0
    count = hanging.sum(axis=1)
    out = [faces[count == 0]]

    one = count == 1  # rotate the hanging edge to ab: (a, m, c), (m, b, c)
    shift = np.argmax(hanging[one], axis=1)
    (a, b, c), m = _rotate(faces[one], shift).T, _rotate(midpoints[one], shift)[:, 0]
    out += [np.stack([a, m, c], axis=1), np.stack([m, b, c], axis=1)]

    two = count == 2  # rotate the complete edge to ca: corner (m1, b, m2) and a quadrilateral
    shift = (np.argmin(hanging[two], axis=1) + 1) % 3
    (a, b, c), mids = _rotate(faces[two], shift).T, _rotate(midpoints[two], shift)
    m1, m2 = mids[:, 0], mids[:, 1]
    # Cut the quadrilateral (a, m1, m2, c) along its shorter diagonal.
    short_a = np.linalg.norm(vertices[a] - vertices[m2], axis=1) <= np.linalg.norm(
        vertices[m1] - vertices[c], axis=1
    )
    quad_1 = np.where(short_a[:, None], np.stack([a, m1, m2], 1), np.stack([a, m1, c], 1))
    quad_2 = np.where(short_a[:, None], np.stack([a, m2, c], 1), np.stack([m1, m2, c], 1))
    out += [np.stack([m1, b, m2], axis=1), quad_1, quad_2]

    three = count == 3
    (a, b, c), (ab, bc, ca) = faces[three].T, midpoints[three].T
    out += [np.stack(f, axis=1) for f in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))]
    return np.concatenate(out).astype(np.int64)


def refine_regions(
    vertices: np.ndarray,
    faces: np.ndarray,
    boxes,
    levels: int,
    mode: str = "conforming",
) -> NestedMesh:
    """Splits the faces of a mesh inside lat/lon boxes ``levels`` more times.

    Args:
        vertices: [V_0, 3] float64 unit vectors of the finest regular level.
        faces: [F_0, 3] int64 counter-clockwise faces tiling the sphere.
        boxes: sequence of ``(lat_min, lat_max, lon_min, lon_max)`` (see ``in_boxes``).
        levels: extra refinement rounds (0 returns the mesh unchanged).
        mode: ``"conforming"`` (balanced, red-green closure) or ``"oneforecast"`` (hanging
            nodes), see the module docstring.

    Returns:
        ``NestedMesh``; vertex ids ``< V_0`` are the input vertices unchanged.
    """
    if mode not in ("conforming", "oneforecast"):
        raise ValueError(f"region mode must be 'conforming' or 'oneforecast', got {mode!r}")
    depth = np.zeros(faces.shape[0], dtype=np.int64)
    mid_keys = np.zeros(0, dtype=np.int64)  # sorted undirected keys of split edges
    mid_ids = np.zeros(0, dtype=np.int64)
    new_vertices, new_round, edge_faces = [vertices], [], []
    num_vertices = vertices.shape[0]
    for round_ in range(1, levels + 1):
        lat, lon = face_centroid_lat_lon(np.concatenate(new_vertices), faces)
        marked = (depth == round_ - 1) & in_boxes(lat, lon, boxes)
        if mode == "conforming" and round_ > 1:
            marked &= _edges_are_complete(faces, mid_keys)
        if not marked.any():
            break
        split = faces[marked]  # [S, 3]
        a, b, c = split.T
        keys = np.stack([_undirected_keys(a, b), _undirected_keys(b, c), _undirected_keys(c, a)])
        found = _lookup(mid_keys, mid_ids, keys)  # [3, S]
        fresh = np.unique(keys[found < 0])
        fresh_ids = num_vertices + np.arange(fresh.shape[0], dtype=np.int64)
        ends = np.stack(np.divmod(fresh, _KEY), axis=1)
        all_vertices = np.concatenate(new_vertices)
        middle = all_vertices[ends[:, 0]] + all_vertices[ends[:, 1]]
        new_vertices.append(middle / np.linalg.norm(middle, axis=1, keepdims=True))
        new_round.append(np.full(fresh.shape[0], round_, dtype=np.int64))
        num_vertices += fresh.shape[0]
        mid_keys, mid_ids = np.concatenate([mid_keys, fresh]), np.concatenate([mid_ids, fresh_ids])
        order = np.argsort(mid_keys)
        mid_keys, mid_ids = mid_keys[order], mid_ids[order]
        ab, bc, ca = _lookup(mid_keys, mid_ids, keys)
        children = np.concatenate(
            [
                np.stack([a, ab, ca], axis=1),
                np.stack([ab, b, bc], axis=1),
                np.stack([ca, bc, c], axis=1),
                np.stack([ab, bc, ca], axis=1),
            ]
        )
        edge_faces.append(children)
        faces = np.concatenate([faces[~marked], children])
        depth = np.concatenate([depth[~marked], np.full(children.shape[0], round_)])
    all_vertices = np.concatenate(new_vertices)
    if mode == "conforming" and mid_keys.shape[0]:
        a, b, c = faces.T
        keys = np.stack([_undirected_keys(a, b), _undirected_keys(b, c), _undirected_keys(c, a)])
        midpoints = _lookup(mid_keys, mid_ids, keys).T  # [F, 3]
        faces = _close(all_vertices, faces, midpoints)
        edge_faces.append(faces)
    rounds = np.concatenate(new_round) if new_round else np.zeros(0, dtype=np.int64)
    return NestedMesh(all_vertices, faces, edge_faces, rounds)
