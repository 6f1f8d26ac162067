"""Static node and edge features of GraphCast (Lam et al. 2023, supplement section 3.2.2)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def node_features(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """(cos lat, sin lon, cos lon) of each node, with lat the latitude (degrees north).

    GraphCast's code uses cos of the colatitude, i.e. sin lat, which tells the hemispheres
    apart; cos lat does not (the model learns the hemisphere from ``pos`` or the data). Kept as
    the project's convention so trained models stay valid.

    Args:
        lat_deg: [N] degrees north.
        lon_deg: [N] degrees east.

    Returns:
        [N, 3] float32 (computed in float64, cast deliberately).
    """
    lat = np.deg2rad(np.asarray(lat_deg, dtype=np.float64))
    lon = np.deg2rad(np.asarray(lon_deg, dtype=np.float64))
    return np.stack([np.cos(lat), np.sin(lon), np.cos(lon)], axis=-1).astype(np.float32)


def receiver_frame_rotations(receiver_xyz: np.ndarray) -> np.ndarray:
    """Rotations taking each receiver to lat 0, lon 0, i.e. to (1, 0, 0).

    ``R = R_y(lat) @ R_z(-lon)``: first about the polar axis by -lon (receiver onto the
    prime meridian), then about y by +lat (receiver down onto the equator), with
    ``R_z(t) = [[cos t, -sin t, 0], [sin t, cos t, 0], [0, 0, 1]]`` and
    ``R_y(t) = [[cos t, 0, sin t], [0, 1, 0], [-sin t, 0, cos t]]``. In the rotated frame y
    points east and z north at the receiver, as in GraphCast's local coordinates.

    Args:
        receiver_xyz: [E, 3] unit vectors.

    Returns:
        [E, 3, 3] float64.
    """
    x, y, z = receiver_xyz[:, 0], receiver_xyz[:, 1], receiver_xyz[:, 2]
    cos_lat = np.hypot(x, y)
    # At a pole the longitude is undefined; take lon 0 there, as lat_lon_to_xyz(±90, 0) does.
    at_pole = cos_lat == 0.0
    safe_cos_lat = np.where(at_pole, 1.0, cos_lat)
    cos_lon = np.where(at_pole, 1.0, x / safe_cos_lat)
    sin_lon = np.where(at_pole, 0.0, y / safe_cos_lat)
    sin_lat = z
    zeros = np.zeros_like(x)
    # Rows of R_y(lat) @ R_z(-lon), multiplied out.
    return np.stack(
        [
            np.stack([cos_lat * cos_lon, cos_lat * sin_lon, sin_lat], axis=-1),
            np.stack([-sin_lon, cos_lon, zeros], axis=-1),
            np.stack([-sin_lat * cos_lon, -sin_lat * sin_lon, cos_lat], axis=-1),
        ],
        axis=-2,
    )


def edge_features(sender_xyz: np.ndarray, receiver_xyz: np.ndarray) -> np.ndarray:
    """Receiver-local displacement and length of each edge, as in GraphCast.

    Each edge's displacement ``d = sender - receiver`` is rotated by the receiver's
    ``receiver_frame_rotations`` matrix R (receiver to (1, 0, 0), local east to +y, local
    north to +z). Features are ``(R d, |d|) / max_e |d_e|`` = ``[dx, dy, dz, |d|]``, so the
    longest edge of the set has length feature 1. They do not change when the whole sphere
    turns about the polar axis (except for receivers on a pole, where east is a convention);
    the length alone is invariant under every rotation, the direction keeps its bearing from
    north on purpose.

    Args:
        sender_xyz: [E, 3] unit vectors.
        receiver_xyz: [E, 3] unit vectors.

    Returns:
        [E, 4] float32 (computed in float64, cast deliberately).
    """
    index = np.arange(sender_xyz.shape[0])
    return indexed_edge_features(sender_xyz, receiver_xyz, index, index)


def indexed_edge_features(
    sender_xyz: np.ndarray, receiver_xyz: np.ndarray, senders: np.ndarray, receivers: np.ndarray
) -> np.ndarray:
    """``edge_features(sender_xyz[senders], receiver_xyz[receivers])``, faster.

    The rows of ``receiver_frame_rotations`` multiplied out, with each receiver's longitude
    (cos, sin) computed once per node: ``R d = (r . d, cos_lon d_y - sin_lon d_x,
    cos_lat d_z - sin_lat (cos_lon d_x + sin_lon d_y))``. Every per-edge array is a
    contiguous [E] row, no [E, 3, 3] temporaries, and blocks of edges run on all cores
    (numpy releases the GIL in gathers and arithmetic).

    Args:
        sender_xyz: [S, 3] unit vectors of the sender nodes.
        receiver_xyz: [R, 3] unit vectors of the receiver nodes.
        senders: [E] int64 indices into ``sender_xyz``.
        receivers: [E] int64 indices into ``receiver_xyz``.

    Returns:
        [E, 4] float32.
    """
    sender_t = np.ascontiguousarray(sender_xyz.T)  # [3, S]
    receiver_t = np.ascontiguousarray(receiver_xyz.T)  # [3, R]
    cos_lat = np.hypot(receiver_t[0], receiver_t[1])
    at_pole = cos_lat == 0.0  # lon 0 there, as in receiver_frame_rotations
    safe_cos_lat = np.where(at_pole, 1.0, cos_lat)
    cos_lon = np.where(at_pole, 1.0, receiver_t[0] / safe_cos_lat)
    sin_lon = np.where(at_pole, 0.0, receiver_t[1] / safe_cos_lat)
    num_edges = senders.shape[0]
    features = np.empty((4, num_edges), dtype=np.float64)

    def block(start: int, stop: int) -> None:
        s, r = senders[start:stop], receivers[start:stop]
        out = features[:, start:stop]
        x, y, z = receiver_t[0, r], receiver_t[1, r], receiver_t[2, r]
        dx, dy, dz = sender_t[0, s] - x, sender_t[1, s] - y, sender_t[2, s] - z
        c, s_ = cos_lon[r], sin_lon[r]
        out[0] = x * dx + y * dy + z * dz
        out[1] = c * dy - s_ * dx
        # cos_lat = x cos_lon + y sin_lon (0 on a pole)
        out[2] = (x * c + y * s_) * dz - z * (c * dx + s_ * dy)
        out[3] = np.sqrt(dx * dx + dy * dy + dz * dz)

    step = 1 << 18
    starts = range(0, num_edges, step)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(lambda i: block(i, min(i + step, num_edges)), starts))
    features /= features[3].max()
    out = np.empty((num_edges, 4), dtype=np.float32)
    out[:] = features.T
    return out
