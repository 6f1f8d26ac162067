"""Publishing the prepared store to an object store: the completion marker is written last.

fsspec's memory:// filesystem stands in for S3/GCS: a real in-process filesystem of whole
objects with no rename. Every object put and delete goes through its backing dict, which the
`memfs` fixture replaces with one that records them in order (and isolates each test).
"""

import json
import warnings

import numpy as np
import pytest
import torch
import xarray as xr
import zarr
from fsspec.core import url_to_fs
from fsspec.implementations.memory import MemoryFileSystem

from pipeline.datasets import ChunkReader, WeatherWindows
from pipeline.errors import DataError
from pipeline.ingest import open_prepared, prepare_weather, read_manifest
from pipeline.publish import MARKER_SUFFIX
from pipeline.synthetic import write_synthetic_era5

SPECS = ["temperature@850", "2m_temperature", "geopotential@500"]
TRAIN = ("2020-01-01", "2020-01-02T18")  # the first 8 of 12 six-hourly times
URL = "memory://bucket/era5/weather.zarr"
ROOT, MARKER = "/bucket/era5/weather.zarr", "/bucket/era5/weather.zarr" + MARKER_SUFFIX


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A small canonical synthetic store: 12 times, 8 x 16 grid."""
    return write_synthetic_era5(tmp_path_factory.mktemp("src") / "era5.zarr", start="2020-01-01",
                                end="2020-01-03T18", n_lat=8, n_lon=16)


@pytest.fixture(scope="module")
def local(source, tmp_path_factory):
    """The same selection published locally (rename): the reference."""
    dest = tmp_path_factory.mktemp("local") / "weather.zarr"
    prepare_weather(source, dest, variables=SPECS, train_period=TRAIN)
    return dest


class RecordingObjects(dict):
    """MemoryFileSystem's path → object dict, logging ("put" | "del", path) in order."""

    def __init__(self):
        super().__init__()
        self.log: list[tuple[str, str]] = []

    def __setitem__(self, path, obj):
        self.log.append(("put", path))
        super().__setitem__(path, obj)

    def __delitem__(self, path):
        self.log.append(("del", path))
        super().__delitem__(path)


@pytest.fixture
def memfs(monkeypatch) -> RecordingObjects:
    objects = RecordingObjects()
    monkeypatch.setattr(MemoryFileSystem, "store", objects)
    monkeypatch.setattr(MemoryFileSystem, "pseudo_dirs", [""])
    return objects


def publish(source, **kwargs):
    return prepare_weather(source, URL, **{"variables": SPECS, "train_period": TRAIN, **kwargs})


def test_object_store_round_trip_equals_local(source, local, memfs):
    summary = publish(source)
    assert summary["dest"] == URL and summary["shape"] == (12, 3, 8, 16)
    remote, reference = open_prepared(URL), open_prepared(local)
    assert remote.data.chunks == (1, 3, 8, 16) and remote.data.dtype == np.float32
    np.testing.assert_array_equal(remote.data[:], reference.data[:])
    for field in ("times", "lat", "lon", "mean", "std", "diff_std"):
        np.testing.assert_array_equal(getattr(remote, field), getattr(reference, field), field)
    assert (remote.channels, remote.time_step_hours, remote.attrs) == (
        reference.channels, reference.time_step_hours, reference.attrs)
    manifest = read_manifest(URL)
    assert manifest == read_manifest(local) and set(manifest["hashes"]) >= {"data", "mean"}
    # The loader's reader falls back to zarr's own slicing for a non-local store.
    reader = ChunkReader(remote.data)
    assert reader.chunk_dir is None
    np.testing.assert_array_equal(reader.read(3, 7), reference.data[3:7])
    # The marker is a sibling, so zarr/xarray see no foreign object inside the store.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        via_xarray = xr.open_zarr(URL, consolidated=False, chunks=None)
    np.testing.assert_array_equal(via_xarray.time.values, reference.times)


def test_marker_is_written_last_and_names_the_store(source, memfs):
    publish(source)
    fs, _ = url_to_fs(URL)
    puts = [path for kind, path in memfs.log if kind == "put"]
    assert puts[-1] == MARKER and puts.count(MARKER) == 1
    assert set(puts[:-1]) == set(fs.find(ROOT))  # every object of the store came before it
    assert any(p.startswith(f"{ROOT}/data/c/") for p in puts)
    record = json.loads(fs.cat_file(MARKER))
    assert record["format"] == "sluice.publish_complete/1" and record["store"] == URL


def test_failure_after_data_writing_leaves_no_marker(source, memfs, tmp_path, monkeypatch):
    monkeypatch.setattr("pipeline.timeblocks.BLOCK_BYTES", 1)  # one time step per block
    ds = xr.open_zarr(source, consolidated=False, chunks=None).load()
    ds.temperature[5, 1, 2, 3] = np.nan  # found after steps 0-4 are written
    nan_source = tmp_path / "nan.zarr"
    ds.to_zarr(nan_source, zarr_format=3, consolidated=False)
    with pytest.raises(DataError) as raised:
        publish(nan_source)
    assert raised.value.field == "temperature@850"
    assert any(kind == "put" and p.startswith(f"{ROOT}/data/c/") for kind, p in memfs.log)
    assert ("put", MARKER) not in memfs.log
    assert url_to_fs(URL)[0].find(ROOT) == []  # what was written is removed again
    with pytest.raises(DataError) as refused:
        open_prepared(URL)
    assert refused.value.field == "completion marker"
    assert refused.value.found.startswith("no marker")


def test_reader_refuses_an_unmarked_or_changed_store(source, memfs):
    publish(source)
    fs, _ = url_to_fs(URL)
    marker = fs.cat_file(MARKER)
    fs.rm_file(MARKER)  # as if the writer died just before the marker
    with pytest.raises(DataError) as refused:
        open_prepared(URL)
    assert (refused.value.field, refused.value.expected) == (
        "completion marker", "a store whose publish finished (marker written last)")
    assert str(refused.value).startswith(f"{URL}: field 'completion marker'")
    with pytest.raises(FileExistsError, match="no completion marker"):
        publish(source)  # leftovers are not deleted without overwrite
    fs.pipe_file(MARKER, marker)
    zarr.open_group(URL, mode="r+").attrs["time_step_hours"] = 3.0  # written after the marker
    with pytest.raises(DataError, match="changed after it was published"):
        open_prepared(URL)


def test_overwrite_deletes_the_marker_first(source, memfs):
    publish(source, variables=["2m_temperature"])
    old = set(url_to_fs(URL)[0].find(ROOT))
    n = len(memfs.log)
    with pytest.raises(FileExistsError, match="published store"):
        publish(source)
    assert len(memfs.log) == n  # nothing touched
    publish(source, overwrite=True)
    events = memfs.log[n:]
    assert events[0] == ("del", MARKER) and events[-1] == ("put", MARKER)
    first_put = events.index(next(e for e in events if e[0] == "put"))
    assert {p for _, p in events[1:first_put]} == old  # all old objects go before any new one
    assert all(kind == "del" for kind, _ in events[:first_put])
    assert open_prepared(URL).channels == ("temperature_850", "2m_temperature",
                                           "geopotential_500")


def test_file_url_publishes_a_local_directory(source, local, tmp_path):
    dest = tmp_path / "weather.zarr"
    prepare_weather(source, f"file://{dest}", variables=SPECS, train_period=TRAIN)
    assert [p.name for p in tmp_path.iterdir()] == ["weather.zarr"]  # renamed, no marker
    store = open_prepared(f"file://{dest}")
    assert ChunkReader(store.data).chunk_dir is not None  # the loader's direct chunk reads
    np.testing.assert_array_equal(store.data[:], open_prepared(local).data[:])


def test_weather_windows_over_an_object_store(source, local, memfs):
    publish(source)
    period = ("2020-01-01", "2020-01-03T18")
    remote, reference = (WeatherWindows(p, period, history=2, lead_steps=1) for p in (URL, local))
    assert len(remote) == len(reference)
    for got, want in zip(remote[3], reference[3], strict=True):
        assert torch.equal(got, want)
