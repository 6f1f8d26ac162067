import numpy as np

from graphs.connectivity import lat_lon_to_xyz
from graphs.features import (
    edge_features,
    indexed_edge_features,
    node_features,
    receiver_frame_rotations,
)
from graphs.icosahedral import mesh_hierarchy, multi_mesh_edges

H = np.sqrt(0.5)


def rotation_z(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def rotation_x(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def test_node_features_hand_values():
    features = node_features(np.array([0.0, 60.0, -90.0]), np.array([0.0, 90.0, 180.0]))
    assert features.dtype == np.float32 and features.shape == (3, 3)
    np.testing.assert_allclose(features, [[1, 0, 1], [0.5, 1, 0], [0, 0, -1]], atol=1e-7)


def test_receiver_frame_rotations():
    rng = np.random.default_rng(1)
    lat, lon = rng.uniform(-89, 89, 50), rng.uniform(-180, 360, 50)
    receivers = lat_lon_to_xyz(lat, lon)
    rotations = receiver_frame_rotations(receivers)
    np.testing.assert_allclose(
        rotations @ rotations.transpose(0, 2, 1), np.eye(3)[None] * np.ones((50, 1, 1)), atol=1e-14
    )
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-14)
    np.testing.assert_allclose(
        np.einsum("eij,ej->ei", rotations, receivers), [[1, 0, 0]] * 50, atol=1e-14
    )
    # A small step north (east) of the receiver lands on +z (+y) in the local frame.
    north = lat_lon_to_xyz(lat + 1e-4, lon) - receivers
    east = lat_lon_to_xyz(lat, lon + 1e-4) - receivers
    local_north = np.einsum("eij,ej->ei", rotations, north)
    local_east = np.einsum("eij,ej->ei", rotations, east)
    assert (local_north[:, 2] > 0).all() and np.abs(local_north[:, 1]).max() < 1e-12
    assert (local_east[:, 1] > 0).all() and np.abs(local_east[:, 2]).max() < 1e-9


def test_edge_features_hand_values():
    # Receiver lat 0 lon 0 with senders lon 90 on the equator and the north pole; receiver
    # lon 90 with sender lon 180 (the first edge turned 90 degrees about the pole). All
    # have chord sqrt 2, so max-normalisation divides by sqrt 2.
    senders = np.array([[0.0, 1, 0], [0, 0, 1], [-1, 0, 0]])
    receivers = np.array([[1.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    features = edge_features(senders, receivers)
    assert features.dtype == np.float32 and features.shape == (3, 4)
    np.testing.assert_allclose(features, [[-H, H, 0, 1], [-H, 0, H, 1], [-H, H, 0, 1]], atol=1e-7)
    # A shorter edge in the same set is scaled by the longest one.
    short = lat_lon_to_xyz(np.array([0.0]), np.array([60.0]))  # chord 1 from (1, 0, 0)
    features = edge_features(
        np.concatenate([senders, short]), np.concatenate([receivers, receivers[:1]])
    )
    np.testing.assert_allclose(features[3], [-0.5 * H, np.sqrt(0.75) * H, 0, H], atol=1e-7)


def test_edge_features_invariant_under_turns_about_the_pole():
    hierarchy = mesh_hierarchy(2)
    vertices = hierarchy[-1][0]
    senders, receivers = multi_mesh_edges(hierarchy)
    off_pole = np.abs(vertices[receivers, 2]) < 1 - 1e-9
    senders, receivers = senders[off_pole], receivers[off_pole]
    features = edge_features(vertices[senders], vertices[receivers])
    turned = vertices @ rotation_z(0.7).T
    np.testing.assert_allclose(
        edge_features(turned[senders], turned[receivers]), features, atol=1e-6
    )
    # Tilting the pole keeps lengths but not bearings from north, on purpose.
    tilted = vertices @ rotation_x(0.7).T
    tilted_features = edge_features(tilted[senders], tilted[receivers])
    np.testing.assert_allclose(tilted_features[:, 3], features[:, 3], atol=1e-6)
    assert np.abs(tilted_features[:, :3] - features[:, :3]).max() > 0.1
    np.testing.assert_allclose(np.linalg.norm(features[:, :3], axis=1), features[:, 3], atol=1e-6)
    assert features[:, 3].max() == 1.0


def test_indexed_edge_features_match_rotation_matrices():
    # Against the [E, 3, 3] rotations written out, on the multi-mesh plus both poles.
    hierarchy = mesh_hierarchy(2)
    vertices = hierarchy[-1][0]
    senders, receivers = multi_mesh_edges(hierarchy)
    displacement = vertices[senders] - vertices[receivers]
    local = np.einsum("eij,ej->ei", receiver_frame_rotations(vertices[receivers]), displacement)
    length = np.linalg.norm(displacement, axis=1)
    expected = np.concatenate([local, length[:, None]], axis=1) / length.max()
    got = indexed_edge_features(vertices, vertices, senders, receivers)
    assert np.abs(vertices[receivers, 2]).max() == 1.0  # receivers on the poles included
    np.testing.assert_allclose(got, expected, atol=1e-7)
