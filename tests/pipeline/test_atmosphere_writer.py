"""The WB2-layout store: names, dims, units, order, determinism, atomicity, Zarr v2 and v3."""

import numpy as np
import pytest
import xarray as xr

from pipeline.atmosphere import writer
from pipeline.atmosphere.core import AtmosphereConfig
from pipeline.atmosphere.writer import write_synthetic_atmosphere

TINY = AtmosphereConfig(lmax=21, nlat=32, nlon=64, dt=3600.0, spinup_days=2.0)
SMALL = {"start": "2001-01-01", "end": "2001-01-02T18", "grid": (16, 32), "config": TINY,
         "levels": (1000, 500), "block": 3}


def _open(path, zarr_format=3):
    return xr.open_zarr(path, consolidated=zarr_format == 2)


@pytest.mark.parametrize("zarr_format", [3, 2])
def test_store_has_wb2_names_dims_units_and_order(tmp_path, zarr_format):
    path = write_synthetic_atmosphere(tmp_path / "a.zarr", zarr_format=zarr_format, **SMALL)
    ds = _open(path, zarr_format)
    assert set(ds.data_vars) == set(writer.VARIABLES)
    for name in writer.ATMOSPHERIC:
        assert ds[name].dims == ("time", "level", "latitude", "longitude")
    for name in writer.SURFACE:
        assert ds[name].dims == ("time", "latitude", "longitude")
    assert ds["geopotential"].attrs["units"] == "m**2 s**-2"
    assert ds["specific_humidity"].attrs["units"] == "kg kg**-1"
    assert ds["mean_sea_level_pressure"].attrs["units"] == "Pa"
    assert ds["geopotential"].dtype == np.float32
    assert ds.time.dtype == np.dtype("datetime64[ns]") and ds.sizes["time"] == 8
    assert np.all(np.diff(ds.time.values) == np.timedelta64(6, "h"))
    assert list(ds.level.values) == [500, 1000] and ds.level.dtype == np.int64
    lat = ds.latitude.values
    assert np.all(np.diff(lat) < 0) and lat[0] == 90 - 180 / 16 / 2
    assert ds.longitude.values[0] == 0 and ds.longitude.values[-1] == 360 - 360 / 32
    z500 = ds["geopotential"].sel(level=500).values
    assert 4.5e4 < z500.mean() < 6.0e4


def test_same_seed_gives_identical_arrays_and_another_seed_does_not(tmp_path):
    kw = dict(SMALL, variables=("geopotential", "specific_humidity"))
    a = _open(write_synthetic_atmosphere(tmp_path / "a.zarr", **kw)).load()
    b = _open(write_synthetic_atmosphere(tmp_path / "b.zarr", **kw)).load()
    other = dict(kw, config=AtmosphereConfig(**{**TINY.__dict__, "seed": 1}))
    c = _open(write_synthetic_atmosphere(tmp_path / "c.zarr", **other)).load()
    assert set(a.data_vars) == {"geopotential", "specific_humidity"}
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert not np.array_equal(a["geopotential"].values, c["geopotential"].values)


def test_a_later_window_equals_the_same_times_of_a_longer_store(tmp_path):
    kw = dict(SMALL, variables=("temperature",))
    long = _open(write_synthetic_atmosphere(tmp_path / "l.zarr", **kw)).load()
    short = _open(write_synthetic_atmosphere(tmp_path / "s.zarr", **dict(
        kw, start="2001-01-02"))).load()
    np.testing.assert_array_equal(short.temperature.values,
                                  long.temperature.sel(time=short.time).values)


def test_an_exception_mid_write_leaves_nothing_at_the_path(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = writer.column_fields

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # after the first block of 3 was written
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(writer, "column_fields", failing)
    target = tmp_path / "x.zarr"
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_synthetic_atmosphere(target, **SMALL)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileExistsError):
        target.mkdir()
        write_synthetic_atmosphere(target, **SMALL)


def test_finer_grid_with_poles_comes_from_spectral_synthesis(tmp_path):
    kw = dict(SMALL, grid=(65, 128), variables=("geopotential", "2m_temperature"))
    ds = _open(write_synthetic_atmosphere(tmp_path / "f.zarr", **kw))
    lat = ds.latitude.values
    assert lat[0] == 90.0 and lat[-1] == -90.0 and lat.size == 65
    # a pole is one point: every longitude of the polar row carries the same scalar value
    z = ds.geopotential.values[:, :, 0]
    np.testing.assert_allclose(z, z[..., :1].repeat(128, -1), rtol=1e-6)


def test_unknown_level_or_variable_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        write_synthetic_atmosphere(tmp_path / "y.zarr", **dict(SMALL, levels=(123,)))
    with pytest.raises(ValueError, match="unknown"):
        write_synthetic_atmosphere(tmp_path / "y.zarr", **dict(SMALL, variables=("rain",)))


# -- the native regional crop (issue 9: the regional truth beside the global data) -------------
def test_native_crop_whole_globe_coarsens_to_the_global_store(tmp_path):
    """The global store is the conservative coarsening of the native fields the crop writes."""
    from pipeline.regrid import gaussian_latitude_edges, regrid_conservative_array

    glob, crop = tmp_path / "g.zarr", tmp_path / "n.zarr"
    write_synthetic_atmosphere(glob, native_crop=(crop, (-90, 90, 0, 359.999)), **SMALL)
    g, n = _open(glob).load(), _open(crop).load()
    assert (n.sizes["latitude"], n.sizes["longitude"]) == (TINY.nlat, TINY.nlon)
    np.testing.assert_array_equal(g.time.values, n.time.values)
    for name in ("temperature", "2m_temperature"):
        coarse = regrid_conservative_array(
            n[name].values.astype(np.float64), n.latitude.values, n.longitude.values,
            g.latitude.values, g.longitude.values,
            src_lat_edges=gaussian_latitude_edges(TINY.nlat))
        np.testing.assert_allclose(coarse, g[name].values, rtol=1e-5, atol=1e-3)


def test_native_crop_of_a_box_is_the_native_field_there(tmp_path):
    whole, box = tmp_path / "n.zarr", tmp_path / "b.zarr"
    write_synthetic_atmosphere(tmp_path / "g1.zarr", native_crop=(whole, (-90, 90, 0, 359.999)),
                               **SMALL)
    write_synthetic_atmosphere(tmp_path / "g2.zarr", native_crop=(box, (20, 50, 340, 30)),
                               **SMALL)  # crosses the 0° meridian
    w, b = _open(whole).load(), _open(box).load()
    lat, lon = b.latitude.values, b.longitude.values
    assert lat.min() >= 20 and lat.max() <= 50 and np.all(np.diff(lat) < 0)
    assert np.all((lon >= 340) | (lon <= 30)) and np.all(np.diff(lon) > 0)  # 0..360 order
    # every native point of the box is there, none other
    inside = (w.latitude.values >= 20) & (w.latitude.values <= 50)
    assert lat.size == inside.sum()
    assert lon.size == ((w.longitude.values >= 340) | (w.longitude.values <= 30)).sum()
    np.testing.assert_array_equal(b["geopotential"].values,
                                  w["geopotential"].sel(latitude=lat, longitude=lon).values)


def test_native_crop_needs_a_coarse_global_grid(tmp_path):
    with pytest.raises(ValueError, match="coarser"):
        write_synthetic_atmosphere(tmp_path / "g.zarr", native_crop=(tmp_path / "n.zarr",
                                                                     (0, 30, 0, 30)),
                                   **{**SMALL, "grid": (32, 64)})
    assert not (tmp_path / "g.zarr").exists() and not (tmp_path / "n.zarr").exists()
