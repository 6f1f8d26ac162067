"""Ingest: channel selection, train-only statistics, layout normalisation, checks at the door."""

import numpy as np
import pytest
import xarray as xr
import zarr

from pipeline.errors import DataError
from pipeline.ingest import open_prepared, prepare_weather
from pipeline.synthetic import write_synthetic_era5

SPECS = ["temperature@850", "2m_temperature", "geopotential@500", "u_component_of_wind@500"]
NAMES = ["temperature_850", "2m_temperature", "geopotential_500", "u_component_of_wind_500"]
TRAIN = ("2020-01-01", "2020-01-07T18")  # the first 28 of 40 six-hourly times


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """(path, in-memory copy) of a small canonical synthetic store: 40 times, 16 x 32 grid."""
    path = write_synthetic_era5(tmp_path_factory.mktemp("src") / "era5.zarr", start="2020-01-01",
                                end="2020-01-10T18", n_lat=16, n_lon=32)
    return path, xr.open_zarr(path, consolidated=False, chunks=None).load()


@pytest.fixture(scope="module")
def prepared(source, tmp_path_factory):
    dest = tmp_path_factory.mktemp("prepared") / "weather.zarr"
    summary = prepare_weather(source[0], dest, variables=SPECS, train_period=TRAIN)
    return dest, summary, open_prepared(dest)


def prepare(src, tmp_path, **kwargs):
    kwargs = {"variables": SPECS, "train_period": TRAIN, **kwargs}
    prepare_weather(src, tmp_path / "out.zarr", **kwargs)
    return open_prepared(tmp_path / "out.zarr")


def channel_values(ds: xr.Dataset) -> np.ndarray:
    """[T, C, H, W] float32 reference for SPECS, straight from the canonical dataset."""
    fields = [ds.temperature.sel(level=850), ds["2m_temperature"], ds.geopotential.sel(level=500),
              ds.u_component_of_wind.sel(level=500)]
    return np.stack([f.values for f in fields], axis=1).astype(np.float32)


def test_channels_are_selected_in_the_order_given(source, prepared):
    _, ds = source
    _, summary, store = prepared
    assert store.channels == tuple(NAMES)
    assert summary["channels"] == NAMES and summary["shape"] == (40, 4, 16, 32)
    assert store.data.shape == (40, 4, 16, 32) and store.data.chunks == (1, 4, 16, 32)
    expected = channel_values(ds)
    for i in (0, 17, 39):
        sample = store.data[i]
        assert sample.dtype == np.float32 and sample.shape == (4, 16, 32)
        assert np.array_equal(sample, expected[i])


def test_statistics_cover_the_train_period_only(source, prepared):
    _, ds = source
    store = prepared[2]
    train = channel_values(ds)[:28].astype(np.float64)  # [28, C, H, W]
    diffs = train[1:] - train[:-1]
    for got, want in ((store.mean, train.mean(axis=(0, 2, 3))),
                      (store.std, train.std(axis=(0, 2, 3))),
                      (store.diff_std, diffs.std(axis=(0, 2, 3)))):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5)
    whole = channel_values(ds).astype(np.float64)
    assert not np.allclose(store.std, whole.std(axis=(0, 2, 3)), rtol=1e-5)


def test_open_prepared_round_trip(source, prepared):
    _, ds = source
    dest, _, store = prepared
    np.testing.assert_array_equal(store.times, ds.time.values)
    assert store.times.dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(store.lat, ds.latitude.values)
    np.testing.assert_array_equal(store.lon, ds.longitude.values)
    assert store.time_step_hours == 6
    assert store.attrs["latitude_order"] == "descending"
    assert store.attrs["source_latitude_order"] == "descending"
    assert store.attrs["train_period"] == list(TRAIN)
    assert zarr.open_group(dest, mode="r")["time"].dtype == np.int64
    via_xarray = xr.open_zarr(dest, consolidated=False, chunks=None)  # CF-decodes the int64 time
    np.testing.assert_array_equal(via_xarray.time.values, ds.time.values)
    np.testing.assert_array_equal(via_xarray.data.values[5], store.data[5])


def flip_latitude(ds):
    return ds.isel(latitude=slice(None, None, -1))


def to_minus180(ds):
    lon = ds.longitude.values
    return ds.assign_coords(longitude=np.where(lon >= 180, lon - 360, lon)).sortby("longitude")


def transpose_and_rename(ds):
    return ds.transpose("latitude", "longitude", "level", "time").rename(latitude="lat",
                                                                        longitude="lon")


@pytest.mark.parametrize(("layout", "source_latitude_order"), [
    (flip_latitude, "ascending"),
    (to_minus180, "descending"),
    (transpose_and_rename, "descending"),
    (lambda ds: transpose_and_rename(to_minus180(flip_latitude(ds))), "ascending"),
], ids=["latitude_ascending", "longitude_-180..180", "transposed_lat_lon", "all_three"])
def test_source_layouts_give_identical_prepared_data(source, prepared, tmp_path, layout,
                                                     source_latitude_order):
    src = tmp_path / "src.zarr"
    # A v2 store, like WeatherBench2's; the v3 codecs read with the source can't go into it.
    layout(source[1]).drop_encoding().to_zarr(src, zarr_format=2)
    store = prepare(src, tmp_path)
    reference = prepared[2]
    assert np.array_equal(store.data[:], reference.data[:])
    for field in ("times", "lat", "lon", "mean", "std", "diff_std"):
        assert np.array_equal(getattr(store, field), getattr(reference, field)), field
    assert store.attrs["source_latitude_order"] == source_latitude_order


def test_netcdf_source(source, prepared, tmp_path):
    pytest.importorskip("h5py", reason="h5netcdf needs h5py to read and write NetCDF-4")
    src = tmp_path / "era5.nc"
    netcdf = source[1].drop_encoding()
    netcdf.attrs = {}  # the list of wave dicts has no HDF5 attribute type
    netcdf.to_netcdf(src, engine="h5netcdf")
    store = prepare(src, tmp_path)
    assert np.array_equal(store.data[:], prepared[2].data[:])
    np.testing.assert_array_equal(store.std, prepared[2].std)


def test_time_range_selects_a_subset(source, tmp_path):
    store = prepare(source[0], tmp_path, time_range=("2020-01-02", "2020-01-08T18"))
    assert store.times[0] == np.datetime64("2020-01-02") and store.times.size == 28
    assert store.attrs["time_range"] == ["2020-01-02", "2020-01-08T18"]


def test_existing_dest_needs_overwrite(source, tmp_path):
    prepare(source[0], tmp_path, variables=["2m_temperature"])
    with pytest.raises(FileExistsError):
        prepare(source[0], tmp_path)
    store = prepare(source[0], tmp_path, overwrite=True)
    assert store.channels == tuple(NAMES)
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]


def with_time(ds, times):
    return ds.assign_coords(time=times)


def nan_at_850(ds):
    ds = ds.copy(deep=True)
    ds.temperature[7, 1, 3, 4] = np.nan
    return ds


def with_member_dim(ds):
    return ds.assign(temperature=ds.temperature.expand_dims(member=2).copy())


BAD_SOURCES = {
    # id: (make the source from the canonical dataset, extra kwargs, field, text in the message)
    "missing_variable": (None, {"variables": ["relative_humidity@500"]}, "relative_humidity",
                         "data variable"),
    "missing_level": (None, {"variables": ["temperature@700"]}, "temperature@700",
                      "available levels [500, 850]"),
    "extra_dim": (with_member_dim, {}, "temperature", "member"),
    "nan": (nan_at_850, {}, "temperature@850", "1 NaNs, the first at 2020-01-02T18"),
    "duplicate_time": (lambda ds: with_time(ds, np.r_[ds.time.values[:5], ds.time.values[4:-1]]),
                       {}, "time", "duplicate time 2020-01-02T00"),
    "unsorted_time": (lambda ds: with_time(ds, ds.time.values[[0, 1, 3, 2, *range(4, 40)]]), {},
                      "time", "decreasing"),
    "non_uniform_step": (lambda ds: ds.drop_isel(time=10), {}, "time",
                         "a uniform step of 6 h, found 12 h"),
    "empty_train_period": (None, {"train_period": ("2021-01-01", "2021-01-31")}, "train_period",
                           "found 0"),
    "empty_time_range": (None, {"time_range": ("2021-01-01", "2021-01-31")}, "time_range", ""),
    "missing_latitude": (lambda ds: ds.drop_vars("latitude"), {}, "latitude", "'lat'"),
    "missing_longitude": (lambda ds: ds.drop_vars("longitude"), {}, "longitude", "'lon'"),
}


@pytest.mark.parametrize("case", BAD_SOURCES, ids=list(BAD_SOURCES))
def test_bad_input_raises_data_error_and_leaves_nothing(source, tmp_path, case):
    make, kwargs, field, text = BAD_SOURCES[case]
    src = source[0]
    if make is not None:
        src = tmp_path / "src" / "bad.zarr"
        make(source[1]).to_zarr(src, zarr_format=3, consolidated=False)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError) as raised:
        prepare_weather(src, out / "weather.zarr", **{"variables": SPECS, "train_period": TRAIN,
                                                      **kwargs})
    message = str(raised.value)
    assert raised.value.field == field
    assert message.startswith(f"{src}: field '{field}'") and text in message
    assert list(out.iterdir()) == []


def test_gap_outside_time_range_is_accepted(source, tmp_path):
    src = tmp_path / "gappy.zarr"
    source[1].drop_isel(time=35).to_zarr(src, zarr_format=3, consolidated=False)
    store = prepare(src, tmp_path, time_range=("2020-01-01", "2020-01-08T18"))
    assert store.times.size == 32
