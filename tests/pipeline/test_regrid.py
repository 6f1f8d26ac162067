"""Conservative regridding: exact pole half-cells, conservation, coordinates, laziness."""

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

from pipeline.regrid import (
    area_weights,
    equiangular_grid,
    latitude_weights,
    longitude_weights,
    regrid_conservative,
)


def field(values, lat, lon):
    return xr.DataArray(values, dims=("latitude", "longitude"),
                        coords={"latitude": lat, "longitude": lon})


def global_mean(values, lat):
    """Area-weighted mean of [..., H, W] with the exact band areas (half cells at the poles)."""
    return float((np.asarray(values).mean(axis=-1) * area_weights(lat)).sum(axis=-1))


@pytest.mark.parametrize(("src", "dst"), [
    ((721, 1440), (121, 240)),  # WB2 0.25° → 1.5°, both with poles
    ((73, 144), (32, 64)),  # a ratio that splits source cells
    ((32, 64), (121, 240)),  # refining
])
def test_area_weighted_global_mean_is_conserved(src, dst):
    rng = np.random.default_rng(0)
    (slat, slon), (tlat, tlon) = equiangular_grid(*src), equiangular_grid(*dst)
    x = field(280 + 20 * rng.standard_normal(src), slat, slon)
    out = regrid_conservative(x, tlat, tlon)
    before, after = global_mean(x.values, slat), global_mean(out.values, tlat)
    assert abs(after - before) / abs(before) < 1e-10


def test_output_coordinates_are_exactly_the_wb2_grid():
    slat, slon = equiangular_grid(721, 1440)
    x = field(np.zeros((721, 1440), np.float32), slat, slon)
    out = regrid_conservative(x, *equiangular_grid(121, 240))
    assert out.dims == ("latitude", "longitude") and out.shape == (121, 240)
    np.testing.assert_array_equal(out.latitude.values, np.linspace(90, -90, 121))
    np.testing.assert_array_equal(out.longitude.values, np.arange(240) * 1.5)


def test_pole_row_is_the_half_cell_not_a_block_mean():
    # 15° source with poles (90, 75, ..., -90) → 45° target (90, 45, 0, -45, -90). The target's
    # north row is the half cell [67.5°, 90°]: the source pole half cell [82.5°, 90°] plus the
    # 75° cell [67.5°, 82.5°], weighted by their areas (Δ sin φ).
    slat, tlat = np.linspace(90, -90, 13), np.linspace(90, -90, 5)
    s = np.sin(np.deg2rad([90.0, 82.5, 67.5]))
    w_pole, w_75 = (s[0] - s[1]) / (s[0] - s[2]), (s[1] - s[2]) / (s[0] - s[2])
    weights = latitude_weights(slat, tlat)
    np.testing.assert_allclose(weights[0, :2], [w_pole, w_75], rtol=1e-14)
    assert np.all(weights[0, 2:] == 0)
    x = field(np.arange(13.0)[:, None] * np.ones((1, 8)), slat, np.arange(8) * 45.0)
    out = regrid_conservative(x, tlat, np.arange(8) * 45.0)
    np.testing.assert_allclose(out.values[0], w_pole * 0 + w_75 * 1, rtol=1e-14)
    assert not np.isclose(out.values[0, 0], 0.5)  # the unweighted block mean of rows 0, 1
    np.testing.assert_allclose(out.values[2], 6.0, rtol=1e-14)  # equator: symmetric rows


@pytest.mark.parametrize(("src", "dst"), [
    (equiangular_grid(73, 144), equiangular_grid(25, 48)),
    ((np.arange(89.5, -90, -1.0), np.arange(0.5, 360, 1.0)), equiangular_grid(121, 240)),
    (equiangular_grid(32, 64), (np.arange(-88.5, 90, 3.0), np.arange(-180, 180, 3.0))),
], ids=["coarsen", "offset_source", "ascending_target"])
def test_constant_field_stays_constant(src, dst):
    x = field(np.full((len(src[0]), len(src[1])), 7.25), *src)
    out = regrid_conservative(x, *dst)
    np.testing.assert_allclose(out.values, 7.25, rtol=1e-13)


def test_longitude_origin_and_wrap_do_not_matter():
    rng = np.random.default_rng(1)
    slat, slon = equiangular_grid(19, 36)
    x = field(rng.standard_normal((19, 36)), slat, slon)
    shifted = x.assign_coords(longitude=np.where(slon >= 180, slon - 360, slon)).sortby(
        "longitude")
    tlat, tlon = equiangular_grid(7, 12)
    np.testing.assert_allclose(regrid_conservative(shifted, tlat, tlon).values,
                               regrid_conservative(x, tlat, tlon).values, rtol=1e-13)
    # The 0° target cell [-15°, 15°] straddles the wrap: source cells 350°, 0° and 10°.
    weights = longitude_weights(slon, tlon)
    np.testing.assert_allclose(weights[0, [35, 0, 1]], 1 / 3, rtol=1e-14)
    assert weights[0].sum() == pytest.approx(1.0, rel=1e-15)


def test_lazy_on_dask_and_equal_to_eager():
    rng = np.random.default_rng(2)
    slat, slon = equiangular_grid(37, 72)
    values = rng.standard_normal((4, 3, 37, 72)).astype(np.float32)  # [T, C, H, W]
    eager = xr.DataArray(values, dims=("time", "channel", "latitude", "longitude"),
                         coords={"latitude": slat, "longitude": slon})
    lazy = eager.chunk({"time": 1})
    out = regrid_conservative(lazy, *equiangular_grid(13, 24))
    assert isinstance(out.data, dsa.Array) and out.chunks[0] == (1, 1, 1, 1)
    assert out.dims == ("time", "channel", "latitude", "longitude")
    np.testing.assert_allclose(out.values, regrid_conservative(eager, *equiangular_grid(13, 24))
                               .values, rtol=1e-13)


def test_regional_source_is_refused():
    with pytest.raises(ValueError, match="global"):
        longitude_weights(np.arange(0, 90, 1.5), np.arange(240) * 1.5)


def test_why_not_xarray_regrid_directly():
    """xarray-regrid extends the pole cell to [90 - Δ/2, 90 + Δ/2] and weights it by its
    Δ sin φ, which is 0: the source pole row is dropped. If this starts failing, xarray-regrid
    has learnt half cells and pipeline/regrid.py could call it instead."""
    import xarray_regrid  # noqa: F401  (registers the .regrid accessor)

    rng = np.random.default_rng(3)
    (slat, slon), (tlat, tlon) = equiangular_grid(73, 144), equiangular_grid(25, 48)
    x = field(280 + 20 * rng.standard_normal((73, 144)), slat, slon)
    theirs = x.regrid.conservative(xr.Dataset(coords={"latitude": tlat, "longitude": tlon}),
                                   latitude_coord="latitude")
    ours = regrid_conservative(x, tlat, tlon)
    # Away from the poles (3:1 here, no split cells) the two agree.
    np.testing.assert_allclose(theirs.values[1:-1], ours.values[1:-1], rtol=1e-12)
    before = global_mean(x.values, slat)
    assert abs(global_mean(theirs.values, tlat) - before) / before > 1e-8
    assert abs(global_mean(ours.values, tlat) - before) / before < 1e-12
