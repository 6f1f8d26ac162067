"""Static node and edge features of GraphCast (Lam et al. 2023, supplement section 3.2.2)."""

from __future__ import annotations

import numpy as np


def node_features(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """(cos lat, sin lon, cos lon) of each node.

    Args:
        lat_deg: [N] degrees north.
        lon_deg: [N] degrees east.

    Returns:
        [N, 3] float32.
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
    """Length and receiver-local displacement of each edge, as in GraphCast.

    Each edge's displacement ``sender - receiver`` is rotated by the receiver's
    ``receiver_frame_rotations`` matrix (receiver to (1, 0, 0), local east to +y, local north
    to +z). Features are ``(|d|, R d) / max_e |d_e|``, so the longest edge of the set has
    length feature 1. They do not change when the whole sphere turns about the polar axis
    (except for receivers on a pole, where east is a convention); the length feature alone
    is invariant under every rotation, the direction keeps its bearing from north on purpose.

    Args:
        sender_xyz: [E, 3] unit vectors.
        receiver_xyz: [E, 3] unit vectors.

    Returns:
        [E, 4] float32.
    """
    displacement = sender_xyz - receiver_xyz
    length = np.linalg.norm(displacement, axis=1)
    local = np.einsum("eij,ej->ei", receiver_frame_rotations(receiver_xyz), displacement)
    features = np.concatenate([length[:, None], local], axis=1) / length.max()
    return features.astype(np.float32)
