"""The atmosphere's output grids: conservative averaging from the Gauss–Legendre native grid.

The regridder itself (pole half cells, wrap, hand-computed rows) is tested in test_regrid.py.
"""

import numpy as np

from pipeline.atmosphere.sht import SphericalGrid
from pipeline.atmosphere.writer import output_grid
from pipeline.regrid import (
    area_weights,
    gaussian_latitude_edges,
    latitude_edges,
    regrid_conservative_array,
)


def _mean(field, lat, edges=None):
    w = area_weights(lat, edges)[:, None]
    return (field * w).sum() / (w.sum() * field.shape[-1])


def test_global_mean_is_conserved_from_the_gaussian_native_grid():
    rng = np.random.default_rng(0)
    native = SphericalGrid(lmax=42, nlat=64, nlon=128)
    edges = gaussian_latitude_edges(64)
    # the GL cells have exactly the quadrature weights as areas (both normalised to sum 1)
    np.testing.assert_allclose(area_weights(native.latitude, edges) / 128,
                               native.quadrature_weights.ravel(), rtol=1e-12)
    field = rng.standard_normal((3, 64, 128)) + 280.0
    for grid in ("5.625", (33, 64), (16, 32)):
        lat, lon, _ = output_grid(grid)
        out = regrid_conservative_array(field, native.latitude, native.longitude, lat, lon,
                                        src_lat_edges=edges)
        for k in range(3):
            assert abs(_mean(out[k], lat) / _mean(field[k], native.latitude, edges) - 1) < 1e-12
        ones = regrid_conservative_array(np.ones((64, 128)), native.latitude, native.longitude,
                                         lat, lon, src_lat_edges=edges)
        np.testing.assert_allclose(ones, 1.0, rtol=1e-12)  # a constant stays constant


def test_output_coordinates_are_exact_wb2_grids():
    lat, lon, poles = output_grid("5.625")
    assert not poles and lat.size == 32 and lon.size == 64
    assert lat[0] == 87.1875 and lat[-1] == -87.1875 and np.all(np.diff(lat) == -5.625)
    assert lon[0] == 0.0 and lon[-1] == 354.375
    lat, lon, poles = output_grid("1.5")
    assert poles and lat[0] == 90.0 and lat[-1] == -90.0 and lat.size == 121
    np.testing.assert_array_equal(lat, 90.0 - 1.5 * np.arange(121))
    np.testing.assert_array_equal(lon, 1.5 * np.arange(240))
    edges = latitude_edges(lat)
    assert edges[0] == 90.0 and edges[1] == 89.25  # the polar cell is half a cell
