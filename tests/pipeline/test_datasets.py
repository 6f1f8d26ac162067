"""WeatherWindows: exact time steps, period boundaries, batches through our loader, pickling."""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from torch.utils.data import default_collate

from pipeline.datasets import ChunkReader, WeatherWindows, WindowBatch, collate_windows
from pipeline.sampler import ResumableDistributedSampler
from pipeline.train import make_loader
from tests.pipeline.helpers import WINDOW_SPECS, WINDOW_TIMES, small_prepared_store

ROOT = Path(__file__).resolve().parents[2]
SPECS, ALL = WINDOW_SPECS, WINDOW_TIMES  # the store's 20 six-hourly times


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return small_prepared_store(tmp_path_factory.mktemp("windows"))


@pytest.fixture(scope="module")
def store(prepared):
    """(data [T, C, H, W] read by zarr, times [T] datetime64[ns])."""
    group = zarr.open_group(prepared, mode="r")
    return group["data"][:], np.asarray(group["time"][:], dtype=np.int64).view("datetime64[ns]")


@pytest.mark.parametrize("history", [1, 2])
@pytest.mark.parametrize("lead_steps", [1, 2, 3])
def test_samples_are_the_right_time_steps(prepared, store, history, lead_steps):
    data, times = store
    ds = WeatherWindows(prepared, ALL, history=history, lead_steps=lead_steps)
    assert len(ds) == len(times) - history - lead_steps + 1
    assert ds.channels == ("temperature_850", "2m_temperature", "geopotential_500",
                           "u_component_of_wind_500")
    assert ds.times.dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(ds.times, times[history - 1 : len(times) - lead_steps])
    for i in range(len(ds)):
        t = history - 1 + i
        inputs, targets, time_ns = ds[i]
        assert inputs.dtype == targets.dtype == torch.float32 and time_ns.dtype == torch.int64
        np.testing.assert_array_equal(inputs.numpy(), data[t - history + 1 : t + 1])
        np.testing.assert_array_equal(targets.numpy(), data[t + 1 : t + lead_steps + 1])
        assert int(time_ns) == times[t].astype(np.int64)


@pytest.mark.parametrize(("period", "period_times"), [
    (("2020-01-02", "2020-01-03T18"), ("2020-01-02T00", "2020-01-03T18")),
    (("2020-01-02T06", "2020-01-04"), ("2020-01-02T06", "2020-01-04T18")),  # a day: 4 times
])
def test_no_window_crosses_the_period(prepared, store, period, period_times):
    """With history 2 and lead 3, the first window starts at the period's first time and the
    last ends at its last time; every window in between is indexable."""
    times = store[1]
    ds = WeatherWindows(prepared, period, history=2, lead_steps=3)
    first, last = (int(np.flatnonzero(times == np.datetime64(p))[0]) for p in period_times)
    np.testing.assert_array_equal(ds.index, np.arange(first + 1, last - 3 + 1))
    assert times[ds.index[0] - 1] == np.datetime64(period_times[0])
    assert times[ds.index[-1] + 3] == np.datetime64(period_times[1])
    # three times cannot hold a window of four
    assert len(WeatherWindows(prepared, ("2020-01-02", "2020-01-02T12"), history=2,
                              lead_steps=2)) == 0


def test_batches_read_whole_match_samples(prepared):
    ds = WeatherWindows(prepared, ALL, history=2, lead_steps=2)
    indices = [5, 0, 11]
    batch = ds.__getitems__(indices)
    assert isinstance(batch, WindowBatch) and len(batch) == 3
    expected = default_collate([ds[i] for i in indices])
    for got in (collate_windows(batch), default_collate(batch)):
        for g, e in zip(got, expected, strict=True):
            assert torch.equal(g, e)
    assert ds.sample_ids(expected) == expected[2].tolist()


def test_reading_through_zarr_gives_the_same_blocks(prepared, store):
    array = zarr.open_array(prepared / "data", mode="r")
    direct = ChunkReader(array)
    assert direct.chunk_dir is not None and direct.zstd is not None
    through_zarr = ChunkReader(array)
    through_zarr.chunk_dir = None
    np.testing.assert_array_equal(direct.read(3, 7), store[0][3:7])
    np.testing.assert_array_equal(through_zarr.read(3, 7), store[0][3:7])
    in_memory = zarr.create_array(zarr.storage.MemoryStore(), shape=(4, 2, 3), chunks=(1, 2, 3),
                                  dtype="float32")
    in_memory[:] = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
    assert ChunkReader(in_memory).chunk_dir is None
    np.testing.assert_array_equal(ChunkReader(in_memory).read(1, 3), in_memory[1:3])


def test_a_local_store_is_read_by_direct_chunk_reads(prepared):
    ds = WeatherWindows(prepared, ("2020-01-01", "2020-01-03T18"))
    assert ds._open().chunk_dir is not None  # not zarr's slower path (see test_publish for URLs)


def test_pickles_without_the_open_store(prepared):
    ds = WeatherWindows(prepared, ALL, lead_steps=2)
    first = ds[0]
    assert ds._reader is not None
    blob = pickle.dumps(ds)
    for cls in (b"ChunkReader", b"zarr.core", b"zarr.storage", b"numcodecs"):
        assert cls not in blob  # no reader, array, store or codec travels
    clone = pickle.loads(blob)
    assert clone._reader is None
    for a, b in zip(clone[0], first, strict=True):
        assert torch.equal(a, b)


def test_loader_batches_identical_with_0_and_1_spawned_worker(prepared):
    ds = WeatherWindows(prepared, ALL, history=2, lead_steps=1)

    def epoch(workers, collate_fn):
        sampler = ResumableDistributedSampler(len(ds), seed=3)
        loader = make_loader(ds, sampler, 4, workers, collate_fn)
        return sampler.indices(), list(loader)

    order, in_process = epoch(0, None)
    _, ours = epoch(0, collate_windows)
    _, spawned = epoch(1, collate_windows)
    assert len(in_process) == len(ds) // 4
    for a, b, c in zip(in_process, ours, spawned, strict=True):
        for x, y, z in zip(a, b, c, strict=True):
            assert torch.equal(x, y) and torch.equal(x, z)
    ids = [i for batch in spawned for i in ds.sample_ids(batch)]
    assert ids == ds.times[order[: len(ids)]].astype(np.int64).tolist()


def test_benchmark_smoke_run():
    run = subprocess.run([sys.executable, "benchmarks/weather_loader.py", "--small"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    last = json.loads(run.stdout.strip().splitlines()[-1])
    assert last["benchmark"] == "weather_loader"
    assert {"loader_vs_raw", "loader_vs_xarray", "workers2_vs_workers0"} <= last["figures"].keys()
