"""models/oneforecast/nested.py: the global forecast interpolated onto a regional grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.oneforecast.nested import BoundaryInterpolator, latitude_weights, longitude_weights


def test_latitude_weights_by_hand_in_either_source_order():
    src = np.array([90.0, 60.0, 30.0, 0.0])  # descending, as WeatherBench2
    w = latitude_weights(src, np.array([45.0, 30.0, 80.0]))
    np.testing.assert_allclose(w, [[0, 0.5, 0.5, 0], [0, 0, 1, 0], [2 / 3, 1 / 3, 0, 0]])
    w_asc = latitude_weights(src[::-1], np.array([45.0]))
    np.testing.assert_allclose(w_asc, [[0, 0.5, 0.5, 0]])


def test_latitude_beyond_the_source_rows_takes_the_outermost_row():
    src = np.array([87.19, 60.0, -60.0, -87.19])  # a grid without poles
    w = latitude_weights(src, np.array([90.0, -89.0]))
    np.testing.assert_allclose(w, [[1, 0, 0, 0], [0, 0, 0, 1]])


def test_longitude_weights_wrap_across_the_seam():
    src = np.array([0.0, 90.0, 180.0, 270.0])
    w = longitude_weights(src, np.array([315.0, -45.0, 10.0, 180.0, 720.0]))
    np.testing.assert_allclose(w, [[0.5, 0, 0, 0.5], [0.5, 0, 0, 0.5],
                                   [80 / 90, 10 / 90, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]])
    src_180 = np.array([-180.0, -90.0, 0.0, 90.0])  # another origin: same answer
    np.testing.assert_allclose(longitude_weights(src_180, np.array([135.0])),
                               [[0.5, 0, 0, 0.5]])


@pytest.mark.parametrize("bad", [np.array([0.0]), np.array([0.0, 0.0, 1.0]),
                                 np.array([0.0, 10.0, 5.0])])
def test_non_monotonic_sources_are_refused(bad):
    with pytest.raises(ValueError, match="monotonic"):
        latitude_weights(bad, np.array([1.0]))


def test_interpolator_reproduces_linear_fields_and_reads_only_near_the_region():
    src_lat = np.linspace(90, -90, 33)  # 5.625°
    src_lon = np.arange(64) * 5.625
    dst_lat = np.arange(50.0, 29.0, -0.7)  # a box 30–50 N, 350–20 E, across the meridian
    dst_lon = np.arange(-10.0, 20.01, 0.7)
    interp = BoundaryInterpolator(src_lat, src_lon, dst_lat, dst_lon)
    lat2, lon2 = np.meshgrid(src_lat, src_lon, indexing="ij")
    fields = np.stack([3.0 + 0.5 * lat2,  # linear in latitude: exact everywhere
                       np.full_like(lat2, 7.0)])  # constants kept
    out = interp(torch.from_numpy(fields).float()[None]).numpy()[0]
    assert out.shape == (2, dst_lat.size, dst_lon.size)
    np.testing.assert_allclose(out[0], (3.0 + 0.5 * dst_lat)[:, None].repeat(dst_lon.size, 1),
                               rtol=1e-5)
    np.testing.assert_allclose(out[1], 7.0, rtol=1e-6)
    # linear in longitude within the bracketing columns: exact once unwrapped to the box
    lon_field = np.mod(lon2 + 180.0, 360.0) - 180.0  # continuous across 0°
    out_lon = interp(torch.from_numpy(lon_field).float()).numpy()
    np.testing.assert_allclose(out_lon, dst_lon[None].repeat(dst_lat.size, 0), atol=1e-4)
    # the source rows/columns read: the region plus at most one cell around it
    read_lat, read_lon = src_lat[interp.rows.numpy()], src_lon[interp.cols.numpy()]
    assert read_lat.max() < 50 + 5.625 and read_lat.min() > 30 - 5.625
    offsets = np.mod(read_lon + 10.0 + 180.0, 360.0) - 180.0  # degrees east of the west edge
    assert offsets.min() > -5.625 and offsets.max() < 30 + 5.625
    assert len(read_lon) <= 30 / 5.625 + 2


def test_interpolator_equals_the_dense_products():
    rng = np.random.default_rng(0)
    src_lat, src_lon = np.linspace(-80, 80, 17), np.arange(36) * 10.0
    dst_lat, dst_lon = rng.uniform(-85, 85, 5), rng.uniform(-180, 540, 7)
    x = rng.standard_normal((3, 17, 36))
    dense = latitude_weights(src_lat, dst_lat) @ x @ longitude_weights(src_lon, dst_lon).T
    interp = BoundaryInterpolator(src_lat, src_lon, dst_lat, dst_lon)
    got = interp(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, dense, rtol=1e-12, atol=1e-12)
