"""Ingest of real-store variants: names, CDS NetCDF, expver, packing, striding, regridding,
manifest, fill policies and the checks at the door that real data needs."""

import numpy as np
import pytest
import xarray as xr
import zarr

from pipeline.errors import DataError
from pipeline.ingest import dask_workers, open_prepared, prepare_weather, read_manifest
from pipeline.names import ERA5_TO_WB2, channel_specs
from pipeline.regrid import equiangular_grid, regrid_conservative
from pipeline.synthetic import synthetic_era5

SPECS = ["temperature@850", "2m_temperature", "geopotential@500"]
TRAIN = ("2020-01-01", "2020-01-02T18")  # 8 of 12 six-hourly times


@pytest.fixture(scope="module")
def canonical():
    """12 six-hourly times on a 9 × 16 grid with poles, WB2 names and orientation."""
    ds = synthetic_era5(start="2020-01-01", end="2020-01-03T18", n_lat=9, n_lon=16)
    ds.attrs = {}  # the wave list has no NetCDF attribute type
    return ds.load()


@pytest.fixture(scope="module")
def reference(canonical, tmp_path_factory):
    src = tmp_path_factory.mktemp("ref") / "src.zarr"
    canonical.to_zarr(src, zarr_format=3, consolidated=False)
    dest = src.parent / "prepared.zarr"
    prepare_weather(src, dest, variables=SPECS, train_period=TRAIN)
    return open_prepared(dest)


def prepare(src, tmp_path, **kwargs):
    dest = tmp_path / "out.zarr"
    prepare_weather(src, dest, **{"variables": SPECS, "train_period": TRAIN, **kwargs})
    return open_prepared(dest)


def assert_same(store, reference):
    np.testing.assert_array_equal(store.data[:], reference.data[:])
    for field in ("times", "lat", "lon", "mean", "std", "diff_std"):
        np.testing.assert_array_equal(getattr(store, field), getattr(reference, field), field)


def era5_short_names(ds):
    short = {v: k for k, v in ERA5_TO_WB2.items() if v in ds.data_vars}
    return ds.rename(short)


def cds_netcdf(ds):
    """CDS's NetCDF since 2024: short names, valid_time, pressure_level, expver along time."""
    out = era5_short_names(ds).rename(time="valid_time", level="pressure_level")
    expver = np.where(np.arange(out.sizes["valid_time"]) < 9, "0001", "0005")
    return out.assign_coords(expver=("valid_time", expver), number=0)


def test_cds_netcdf_with_short_names_and_expver_variable(canonical, reference, tmp_path):
    src = tmp_path / "cds.nc"
    cds_netcdf(canonical).to_netcdf(src, engine="h5netcdf")
    assert_same(prepare(src, tmp_path), reference)


def test_expver_dimension_prefers_final_era5(canonical, reference, tmp_path):
    # Old CDS layout: a value per expver, NaN where that version has none. The last 3 times are
    # ERA5T only; time 8 is in both (the final value must win); ERA5T's own values are junk
    # where final ERA5 exists.
    final = canonical.copy(deep=True)
    prelim = canonical.copy(deep=True)
    for name in final.data_vars:
        final[name][9:] = np.nan
        prelim[name][:8] = -999.0
        prelim[name][8] = final[name][8] + 1.0
    both = xr.concat([final, prelim], dim=xr.DataArray([1, 5], dims="expver", name="expver"))
    src = tmp_path / "old_cds.nc"
    era5_short_names(both).transpose("time", "expver", ...).to_netcdf(src, engine="h5netcdf")
    assert_same(prepare(src, tmp_path), reference)


def test_expver_variable_with_repeated_times(canonical, reference, tmp_path):
    # Two CDS files concatenated: times 0-8 final ERA5, times 6-11 ERA5T (6-8 in both).
    final = canonical.isel(time=slice(0, 9)).assign_coords(expver=("time", ["0001"] * 9))
    prelim = canonical.isel(time=slice(6, 12)).copy(deep=True)
    prelim["temperature"][:3] = 0.0  # preliminary values that final ERA5 must override
    prelim = prelim.assign_coords(expver=("time", ["0005"] * 6))
    src = tmp_path / "concat.zarr"
    xr.concat([final, prelim], dim="time").to_zarr(src, zarr_format=2)
    assert_same(prepare(src, tmp_path), reference)


def test_user_name_map_and_descending_levels(canonical, reference, tmp_path):
    src = tmp_path / "own_names.zarr"
    ds = canonical.rename({"2m_temperature": "T_2M", "temperature": "temp", "level": "plev"})
    ds = ds.isel(plev=slice(None, None, -1))  # 850, 500
    ds.to_zarr(src, zarr_format=3, consolidated=False)
    store = prepare(src, tmp_path, name_map={"T_2M": "2m_temperature", "temp": "temperature",
                                             "plev": "level"})
    assert_same(store, reference)


def test_level_in_pa_is_converted(canonical, reference, tmp_path):
    src = tmp_path / "pa.zarr"
    ds = canonical.assign_coords(level=("level", canonical.level.values * 100.0,
                                        {"units": "Pa"}))
    ds.to_zarr(src, zarr_format=3, consolidated=False)
    assert_same(prepare(src, tmp_path), reference)


def test_packed_int16_netcdf_is_decoded_and_stats_are_right(canonical, tmp_path):
    src = tmp_path / "packed.nc"
    t2m = canonical["2m_temperature"]
    scale, offset = 0.002, 280.0  # ±65 K around 280 K in int16 steps of 2 mK
    encoding = {"2m_temperature": {"dtype": "int16", "scale_factor": scale,
                                   "add_offset": offset, "_FillValue": -32767}}
    canonical[["2m_temperature"]].to_netcdf(src, engine="h5netcdf", encoding=encoding)
    with xr.open_dataset(src, engine="h5netcdf", mask_and_scale=False) as raw:
        assert raw["2m_temperature"].dtype == np.int16
        packed = raw["2m_temperature"].values
    unpacked = (packed * scale + offset).astype(np.float32)  # [T, H, W]
    np.testing.assert_allclose(unpacked, t2m.values, atol=scale)  # the packing's own error
    store = prepare(src, tmp_path, variables=["2m_temperature"])
    np.testing.assert_allclose(store.data[:, 0], unpacked, rtol=1e-6)
    train = unpacked[:8].astype(np.float64)
    np.testing.assert_allclose(store.mean, [train.mean()], rtol=1e-6)
    np.testing.assert_allclose(store.std, [train.std()], rtol=1e-5)
    np.testing.assert_allclose(store.diff_std, [np.diff(train, axis=0).std()], rtol=1e-5)


def test_hourly_source_strided_to_six_hourly(canonical, reference, tmp_path):
    # Starts at 21 UTC, so the stride must align to 00 UTC rather than to the first time.
    hourly = synthetic_era5(start="2019-12-31T21", end="2020-01-03T20", freq_hours=1, n_lat=9,
                            n_lon=16)
    hourly.attrs = {}
    src = tmp_path / "hourly.zarr"
    hourly.to_zarr(src, zarr_format=3, consolidated=False)
    store = prepare(src, tmp_path, time_step_hours=6)
    assert store.time_step_hours == 6
    np.testing.assert_array_equal(store.times, canonical.time.values)
    np.testing.assert_allclose(store.data[:], reference.data[:], rtol=1e-6)
    np.testing.assert_allclose(store.diff_std, reference.diff_std, rtol=1e-5)


def test_regridded_ingest(canonical, tmp_path):
    src = tmp_path / "src.zarr"
    canonical.to_zarr(src, zarr_format=3, consolidated=False)
    store = prepare(src, tmp_path, regrid={"n_lat": 5, "n_lon": 8})
    lat, lon = equiangular_grid(5, 8)
    np.testing.assert_array_equal(store.lat, lat)
    np.testing.assert_array_equal(store.lon, lon)
    fields = [f.reset_coords(drop=True) for f in (canonical.temperature.sel(level=850),
                                                  canonical["2m_temperature"],
                                                  canonical.geopotential.sel(level=500))]
    source = xr.concat(fields, dim="channel").transpose("time", "channel", ...)
    want = regrid_conservative(source, lat, lon).values.astype(np.float32)
    assert store.data.shape == (12, 3, 5, 8) and store.data.chunks == (1, 3, 5, 8)
    np.testing.assert_array_equal(store.data[:], want)
    train = want[:8].astype(np.float64)
    np.testing.assert_allclose(store.std, train.std(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(store.diff_std, np.diff(train, axis=0).std(axis=(0, 2, 3)),
                               rtol=1e-5)
    assert read_manifest(tmp_path / "out.zarr")["selection"]["regrid"]["n_lat"] == 5


def test_compact_selection_order(canonical, tmp_path):
    specs = channel_specs(["geopotential", "temperature"], [500, 850], ["2m_temperature"])
    assert specs == ["geopotential@500", "geopotential@850", "temperature@500",
                     "temperature@850", "2m_temperature"]
    assert len(channel_specs(["a", "b", "c", "d", "e"], range(13), ["s1", "s2", "s3", "s4"])) == 69
    src = tmp_path / "src.zarr"
    canonical.to_zarr(src, zarr_format=3, consolidated=False)
    store = prepare(src, tmp_path, variables=specs)
    assert store.channels == ("geopotential_500", "geopotential_850", "temperature_500",
                              "temperature_850", "2m_temperature")
    np.testing.assert_array_equal(store.data[3, 2], canonical.temperature.values[3, 0])


def test_store_has_no_string_arrays_and_a_verifiable_manifest(canonical, reference, tmp_path):
    import hashlib

    src = tmp_path / "src.zarr"
    canonical.to_zarr(src, zarr_format=3, consolidated=False)
    store = prepare(src, tmp_path, time_range=("2020-01-01", "2020-01-03T12"))
    group = zarr.open_group(tmp_path / "out.zarr", mode="r")
    assert group.metadata.zarr_format == 3
    assert sorted(name for name, _ in group.arrays()) == [
        "data", "diff_std", "latitude", "longitude", "mean", "std", "time"]
    assert all(arr.dtype.kind in "fi" for _, arr in group.arrays())
    manifest = read_manifest(tmp_path / "out.zarr")
    assert manifest["shape"] == [11, 3, 9, 16] and manifest["source"] == str(src)
    assert manifest["selection"]["time_range"] == ["2020-01-01", "2020-01-03T12"]
    assert manifest["selection"]["levels"] == [500.0, 850.0]
    data = np.ascontiguousarray(store.data[:], dtype="<f4")
    assert manifest["hashes"]["data"] == hashlib.sha256(data.tobytes()).hexdigest()
    assert set(manifest["hashes"]) == {name for name, _ in group.arrays()}


def with_nans(ds):
    ds = ds.copy(deep=True)
    ds["2m_temperature"][5, 2, 3] = np.nan
    return ds


@pytest.mark.parametrize("policy", [-1.5, "interpolate_time"])
def test_fill_nan_policies(canonical, tmp_path, policy):
    src = tmp_path / "nan.zarr"
    with_nans(canonical).to_zarr(src, zarr_format=3, consolidated=False)
    store = prepare(src, tmp_path, variables=["2m_temperature"], fill_nan=policy)
    t2m = canonical["2m_temperature"].values
    want = -1.5 if policy == -1.5 else (t2m[4, 2, 3] + t2m[6, 2, 3]) / 2
    np.testing.assert_allclose(store.data[5, 0, 2, 3], want, rtol=1e-6)
    np.testing.assert_array_equal(store.data[5, 0, 3], t2m[5, 3])


def test_dask_threads_outside_ray_use_every_cpu():
    import os

    assert dask_workers() == os.cpu_count()


def regional(ds):
    return ds.isel(latitude=slice(1, 6), longitude=slice(0, 8))


def no_time_dim(ds):
    return ds.assign(temperature=ds.temperature.isel(time=0, drop=True))


def write_bad(path, kind, canonical):
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        path = path.with_suffix(".csv")
        path.write_text("time,t2m\n2020-01-01,280\n")
    elif kind == "empty_dir":
        path.mkdir(parents=True)
    elif kind == "hourly_gap":
        hourly = synthetic_era5(start="2020-01-01", end="2020-01-03T18", freq_hours=1, n_lat=9,
                                n_lon=16)
        hourly.attrs = {}
        gap = hourly.drop_sel(time=np.datetime64("2020-01-02T06"))
        gap.to_zarr(path, zarr_format=3, consolidated=False)
    elif kind == "four_hourly":
        synthetic_era5(start="2020-01-01", end="2020-01-03T20", freq_hours=4, n_lat=9,
                       n_lon=16).drop_attrs().to_zarr(path, zarr_format=3, consolidated=False)
    else:
        {"regional": regional, "no_time_dim": no_time_dim}[kind](canonical).to_zarr(
            path, zarr_format=3, consolidated=False)
    return path


BAD = {
    # id: (how the source is broken, kwargs, field, text in the message)
    "csv": ("csv", {}, "source", "a Zarr store (v2 or v3) or a NetCDF file, found a file"),
    "empty_dir": ("empty_dir", {}, "source", "without zarr.json"),
    "regional": ("regional", {}, "latitude", "a global grid"),
    "wrong_dims": ("no_time_dim", {}, "temperature", "('level', 'latitude', 'longitude')"),
    "gap_after_striding": ("hourly_gap", {"time_step_hours": 6}, "time",
                           "found 12 h between 2020-01-02T00"),
    "step_not_dividing": ("four_hourly", {"time_step_hours": 6}, "time_step_hours",
                          "found 4 h"),
    "regrid_regional": ("regional", {"require_global": False,
                                     "regrid": {"n_lat": 5, "n_lon": 8}}, "regrid", "global"),
    "empty_strided_selection": ("four_hourly", {"time_step_hours": 8,
                                                "time_range": ("2020-01-01T04",
                                                               "2020-01-01T04")},
                                "time", "at least two times"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_real_data_raises_data_error_and_leaves_nothing(canonical, tmp_path, case):
    kind, kwargs, field, text = BAD[case]
    src = write_bad(tmp_path / "src" / "bad.zarr", kind, canonical)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError) as raised:
        prepare_weather(src, out / "weather.zarr",
                        **{"variables": SPECS, "train_period": TRAIN, **kwargs})
    assert raised.value.field == field, str(raised.value)
    assert str(raised.value).startswith(f"{src}: field '{field}'") and text in str(raised.value)
    assert list(out.iterdir()) == []


def test_regional_store_is_accepted_when_not_required_global(canonical, tmp_path):
    src = write_bad(tmp_path / "regional.zarr", "regional", canonical)
    store = prepare(src, tmp_path, require_global=False)
    assert store.data.shape == (12, 3, 5, 8)
