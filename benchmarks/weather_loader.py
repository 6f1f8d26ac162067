"""weather_loader: sample MB/s of `WeatherWindows` against raw Zarr reads and a naive xarray loader.

One run generates its own data (nothing is downloaded):

1. a WeatherBench2-layout source Zarr v3 store (`time`, `level`, `latitude` 90 → -90,
   `longitude` 0..360; 5 pressure-level variables on 13 levels + 4 surface variables, float32,
   chunked one time step per variable as WB2 is), filled with smooth random fields;
2. the prepared store, written by the project's own `pipeline.ingest.prepare_weather`
   (69 channels, `data[time, channel, lat, lon]`, chunks (1, 69, H, W)).

Then the same shuffled sequence of samples (epoch 0 of `ResumableDistributedSampler`; history 1,
lead 1, so each sample is the two time steps t and t+1, [2, 69, H, W] float32) is read through

  raw      `arr[t:t+2]` on the prepared zarr array, nothing else: the ceiling;
  xarray   the naive research-code loader on the *source* store: `xr.open_zarr`, then per
           sample and time step `ds.isel(time=t)[var].sel(level=levels).values` for each
           variable, concatenated to [69, H, W] and stacked: the baseline;
  loader   `WeatherWindows` through the foundation's `make_loader` (spawn workers, our
           sampler, drop_last) with 0 and with 2 DataLoader workers.

All figures are MB/s of delivered sample bytes (inputs + targets, 1 MB = 1e6 bytes). The page
cache is *warm* for every path: each store's files are read once before any timing, and all
stores together fit in RAM. DataLoader workers are started (and their store opened) before the
clock starts: worker start-up is a once-per-training cost, not a per-sample one. Also before
the clock, one epoch through every loader is checked batch for batch (bit-identical) against
the 0-worker loader, so a fast path cannot deliver other data.

The last line printed is one JSON object with `loader_vs_raw`, `loader_vs_xarray`,
`workers2_vs_workers0` and every MB/s figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
import torch
import xarray as xr
import zarr

from pipeline.datasets import WeatherWindows, collate_windows
from pipeline.ingest import prepare_weather
from pipeline.sampler import ResumableDistributedSampler
from pipeline.train import make_loader

LEVELS = (50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000)  # hPa, as WB2's 13
PRESSURE_VARIABLES = ("geopotential", "specific_humidity", "temperature", "u_component_of_wind",
                      "v_component_of_wind")
SURFACE_VARIABLES = ("10m_u_component_of_wind", "10m_v_component_of_wind", "2m_temperature",
                     "mean_sea_level_pressure")
CHANNEL_SPECS = [f"{v}@{lev}" for v in PRESSURE_VARIABLES for lev in LEVELS] + list(
    SURFACE_VARIABLES)  # 69, in the order the naive loader stacks them
# Rough magnitudes so the fields look like their variables (I/O does not care, zstd a little).
SCALE = {"geopotential": (5e4, 3e3), "specific_humidity": (5e-3, 3e-3), "temperature": (250, 15),
         "u_component_of_wind": (5, 10), "v_component_of_wind": (0, 8),
         "10m_u_component_of_wind": (0, 5), "10m_v_component_of_wind": (0, 5),
         "2m_temperature": (285, 12), "mean_sea_level_pressure": (1.01e5, 1e3)}
MB = 1e6


# -- data ------------------------------------------------------------------------------------
def smooth_basis(n_lat: int, n_lon: int, n_modes: int, rng) -> np.ndarray:
    """[n_modes, H, W] float32 products of low-wavenumber waves in longitude and latitude."""
    lat = np.linspace(np.pi / 2, -np.pi / 2, n_lat)[:, None]
    lon = np.arange(n_lon)[None, :] * (2 * np.pi / n_lon)
    modes = []
    for _ in range(n_modes):
        m, n = rng.integers(1, 8), rng.integers(1, 6)
        a, b = rng.uniform(0, 2 * np.pi, 2)
        modes.append(np.cos(m * lon + a) * np.cos(n * lat + b) * np.cos(lat) ** 0.5)
    return np.stack(modes).astype(np.float32)


def write_source(path: Path, n_times: int, n_lat: int, n_lon: int, seed: int = 0) -> Path:
    """A WeatherBench2-layout Zarr v3 store of smooth random fields, one time step per chunk.

    Each (variable, level, time) field is a random combination of a few smooth modes plus
    1e-3-relative noise (so the low mantissa bits are as incompressible as real data's).
    Written one time step at a time, so memory stays at a few time steps even at 0.25°.
    """
    rng = np.random.default_rng(seed)
    basis = smooth_basis(n_lat, n_lon, 8, rng)  # [K, H, W]
    times = pd.date_range("2020-01-01", periods=n_times, freq="6h").values
    coords = {"time": times, "level": np.array(LEVELS, dtype=np.int64),
              "latitude": np.linspace(90, -90, n_lat), "longitude": np.arange(n_lon) * 360 / n_lon}

    def fields(name: str, n: int, t: int) -> np.ndarray:
        mean, std = SCALE[name]
        w = rng.standard_normal((n, basis.shape[0]), dtype=np.float32)
        x = np.einsum("nk,khw->nhw", w, basis) / np.sqrt(basis.shape[0])
        x += 1e-3 * rng.standard_normal(x.shape, dtype=np.float32)
        return (mean + std * x).astype(np.float32)

    def step(t: int) -> xr.Dataset:
        dvars = {name: (("time", "level", "latitude", "longitude"),
                        fields(name, len(LEVELS), t)[None]) for name in PRESSURE_VARIABLES}
        dvars |= {name: (("time", "latitude", "longitude"), fields(name, 1, t))
                  for name in SURFACE_VARIABLES}
        return xr.Dataset(dvars, coords={**coords, "time": times[t:t + 1]})

    first = step(0)
    encoding = {name: {"chunks": (1, *var.shape[1:])} for name, var in first.data_vars.items()}
    encoding["time"] = {"units": "hours since 2020-01-01", "dtype": "int64"}
    first.to_zarr(path, mode="w", zarr_format=3, consolidated=False, encoding=encoding)
    for t in range(1, n_times):
        step(t).to_zarr(path, append_dim="time", zarr_format=3, consolidated=False)
    return path


def warm_page_cache(*paths: Path) -> int:
    """Read every file under ``paths`` once; returns the bytes on disk."""
    total = 0
    for root in paths:
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            total += len(f.read_bytes())
    return total


# -- the three ways to read a sample ----------------------------------------------------------
def naive_xarray_sample(ds: xr.Dataset, t: int) -> np.ndarray:
    """Sample t as research code usually reads it: [2, 69, H, W] float32 from the source."""
    steps = []
    for s in (t, t + 1):
        snapshot = ds.isel(time=s)
        fields = [snapshot[v].sel(level=list(LEVELS)).values for v in PRESSURE_VARIABLES]
        fields += [snapshot[v].values[None] for v in SURFACE_VARIABLES]
        steps.append(np.concatenate(fields, axis=0))
    return np.stack(steps)


class ZarrReadWindows(WeatherWindows):
    """`WeatherWindows` reading each block with zarr's ``data[a:b]`` (its thread pool, a copy)."""

    def _open(self):
        reader = super()._open()
        reader.chunk_dir = None  # ChunkReader's fallback: every block through zarr
        return reader


def same_batches(loaders: dict, sampler) -> None:
    """Off the clock: one epoch through every loader, in step with 0 workers, batch for batch
    bit-identical (whatever a path does to be fast, it delivers the same data)."""
    sampler.set_epoch(0)
    reference = loaders["loader_w0"]
    for name, loader in loaders.items():
        for n, (want, got) in enumerate(zip(reference, loader, strict=True)):
            if not all(torch.equal(a, b) for a, b in zip(want, got, strict=True)):
                raise AssertionError(f"{name}: batch {n} differs from 0 workers'")


def spin(n: int) -> float:
    """Pure-Python work; returns its own rate (iterations/s)."""
    start, x = time.perf_counter(), 0
    for i in range(n):
        x += i
    return n / (time.perf_counter() - start)


def cpu_parallel_speedup(pool, n: int) -> float:
    """Throughput of 2 processes computing at once / 1 process alone: what the host gives now."""
    one = max(pool.map(spin, [n])[0], pool.map(spin, [n])[0])
    return sum(pool.map(spin, [n, n])) / one


def measure(source: Path, prepared: Path, *, batch_size: int, repeats: int,
            spin_n: int = 10_000_000) -> dict:
    """MB/s of every path over epoch 0 of the sampler (history 1, lead 1); warm page cache.

    The paths are timed in interleaved rounds (each path once per round) so that they share
    the machine's state; each path's best round is kept. Every round also measures how much
    parallel CPU the host gives right then (the vCPUs of a shared VM come and go).
    """
    dataset = WeatherWindows(prepared, ("1970", "2100"))  # every window of the store
    sampler = ResumableDistributedSampler(len(dataset), seed=0)
    n_used = len(dataset) // batch_size * batch_size  # what the loader delivers (drop_last)
    starts = [int(dataset.index[i]) for i in sampler.indices()[:n_used]]  # store time index t
    array = zarr.open_array(prepared / "data", mode="r")
    sample_bytes = 2 * int(np.prod(array.shape[1:])) * array.dtype.itemsize
    source_ds = xr.open_zarr(source, consolidated=False)  # dask-backed, chunked as stored

    def raw() -> int:
        for t in starts:
            np.asarray(array[t:t + 2])
        return n_used * sample_bytes

    def naive() -> int:
        for t in starts:
            naive_xarray_sample(source_ds, t)
        return n_used * sample_bytes

    def through(loader) -> int:
        sampler.set_epoch(0)
        return sum(inputs.nbytes + targets.nbytes for inputs, targets, _ in loader)

    paths = {"raw_zarr": raw, "xarray_naive": naive}
    loaders = {}
    for workers in (0, 2):
        # Headline: the dataset's own collate (whole batch in one block, no copy); also torch's
        # default collate, which stacks (copies) every batch.
        loaders[f"loader_w{workers}"] = make_loader(dataset, sampler, batch_size, workers,
                                                    collate_windows)
        loaders[f"loader_default_collate_w{workers}"] = make_loader(dataset, sampler,
                                                                    batch_size, workers)
    loaders["loader_zarr_read_w0"] = make_loader(ZarrReadWindows(prepared, ("1970", "2100")),
                                                 sampler, batch_size, 0)
    paths |= {name: (lambda loader=loader: through(loader)) for name, loader in loaders.items()}

    # Off the clock: first-touch costs (codec set-up, dask graph caches) and worker start-up
    # (spawn, import, open the store), by a short tail of the epoch.
    for t in starts[:2]:
        np.asarray(array[t:t + 2]), naive_xarray_sample(source_ds, t)
    for loader in loaders.values():
        sampler.set_epoch(0, cursor=max(0, n_used - 4 * batch_size))
        for _ in loader:
            pass
    same_batches(loaders, sampler)

    rates = {name: 0.0 for name in paths}
    speedups = []
    with get_context("spawn").Pool(2) as pool:
        pool.map(spin, [1, 1])
        for _ in range(repeats):
            speedups.append(cpu_parallel_speedup(pool, spin_n))
            for name, run in paths.items():
                start = time.perf_counter()
                nbytes = run()
                rates[name] = max(rates[name], nbytes / (time.perf_counter() - start) / MB)
    del loaders  # shuts the workers down
    return {**{f"{k}_mb_s": v for k, v in rates.items()},
            "cpu_parallel_speedup": float(np.mean(speedups)),
            "samples": n_used, "sample_mb": sample_bytes / MB}


# -- driver ------------------------------------------------------------------------------------
def build_stores(workdir: Path, n_times: int, n_lat: int, n_lon: int,
                 keep: bool) -> tuple[Path, Path, dict]:
    source, prepared = workdir / "source.zarr", workdir / "prepared.zarr"
    if keep and prepared.exists():  # a kept workdir from an earlier run with the same sizes
        return source, prepared, {"source_seconds": 0.0, "prepare_seconds": 0.0,
                                  "source_mb": dir_bytes(source) / MB,
                                  "prepared_mb": dir_bytes(prepared) / MB}
    started = time.perf_counter()
    write_source(source, n_times, n_lat, n_lon)
    written = time.perf_counter() - started
    times = pd.date_range("2020-01-01", periods=n_times, freq="6h")
    summary = prepare_weather(source, prepared, variables=CHANNEL_SPECS,
                              train_period=(str(times[0]), str(times[-1])))
    info = {"source_seconds": written, "prepare_seconds": summary["seconds"],
            "source_mb": dir_bytes(source) / MB, "prepared_mb": dir_bytes(prepared) / MB}
    return source, prepared, info


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_grid(workdir: Path, n_times: int, n_lon: int, n_lat: int, args) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"\n== {n_lon}x{n_lat}x{len(CHANNEL_SPECS)}, {n_times} times ==", flush=True)
    keep = args.workdir is not None
    source, prepared, info = build_stores(workdir, n_times, n_lat, n_lon, keep)
    print(f"source {info['source_mb']:.0f} MB (written in {info['source_seconds']:.1f} s), "
          f"prepared {info['prepared_mb']:.0f} MB (prepare_weather {info['prepare_seconds']:.1f} s)"
          , flush=True)
    warm_page_cache(source, prepared)
    rates = measure(source, prepared, batch_size=args.batch_size, repeats=args.repeats,
                    spin_n=100_000 if args.small else 10_000_000)
    if not keep:  # free the disk before the next grid
        shutil.rmtree(source)
        shutil.rmtree(prepared)
    return {**info, **rates}


def print_table(name: str, r: dict) -> None:
    raw, naive = r["raw_zarr_mb_s"], r["xarray_naive_mb_s"]
    print(f"\n{name}: {r['samples']} samples of {r['sample_mb']:.1f} MB (t and t+6 h), "
          f"warm page cache, best of {r['repeats']} interleaved rounds")
    print(f"{'path':<52}{'MB/s':>8}{'vs raw':>8}{'vs xarray':>11}")
    rows = [("raw zarr arr[t:t+2], prepared (ceiling)", "raw_zarr"),
            ("naive xarray loader, source (baseline)", "xarray_naive"),
            ("WeatherWindows + make_loader, 0 workers", "loader_w0"),
            ("WeatherWindows + make_loader, 2 workers", "loader_w2"),
            ("  torch default_collate, 0 workers", "loader_default_collate_w0"),
            ("  torch default_collate, 2 workers", "loader_default_collate_w2"),
            ("  zarr data[a:b] reads, default_collate, 0 workers", "loader_zarr_read_w0")]
    for label, key in rows:
        rate = r[f"{key}_mb_s"]
        print(f"{label:<52}{rate:>8.0f}{rate / raw:>8.2f}{rate / naive:>11.2f}")
    default_ratio = r["loader_default_collate_w2_mb_s"] / r["loader_default_collate_w0_mb_s"]
    print(f"2 workers / 0 workers: {r['loader_w2_mb_s'] / r['loader_w0_mb_s']:.2f} "
          f"(default_collate: {default_ratio:.2f}); meanwhile the host gave pure compute a "
          f"2-process speedup of {r['cpu_parallel_speedup']:.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--times", type=int, default=128, help="time steps at the main grid")
    parser.add_argument("--grid", default="240x121", help="LONxLAT of the main grid")
    parser.add_argument("--full-times", type=int, default=4,
                        help="time steps at 1440x721 (0: skip; default 4 = 3 samples)")
    parser.add_argument("--full", action="store_true", help="1440x721 with 9 times (8 samples)")
    parser.add_argument("--small", action="store_true",
                        help="CI smoke size: 64x32, 8 times, no 1440x721 part")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per path (best kept)")
    parser.add_argument("--workdir", help="where the stores go (default: a temp dir, removed)")
    args = parser.parse_args(argv)
    if args.small:
        args.times, args.grid, args.full_times, args.repeats = 8, "64x32", 0, 1
    if args.full:
        args.full_times = 9
    n_lon, n_lat = (int(v) for v in args.grid.lower().split("x"))
    # A given workdir is kept, and its stores reused by the next run (same --times/--grid).
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="weather_loader-"))
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}, zarr {zarr.__version__}, "
          f"workdir {workdir}")
    try:
        main_r = run_grid(workdir / f"{n_lon}x{n_lat}x{args.times}", args.times, n_lon, n_lat, args)
        main_r["repeats"] = args.repeats
        full_r = None
        if args.full_times > 1:
            full_r = run_grid(workdir / f"1440x721x{args.full_times}", args.full_times, 1440,
                              721, args)
            full_r["repeats"] = args.repeats
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    print_table(f"{n_lon}x{n_lat}x{len(CHANNEL_SPECS)}", main_r)
    if full_r:
        print_table("1440x721x69", full_r)
    figures = {
        "loader_vs_raw": main_r["loader_w0_mb_s"] / main_r["raw_zarr_mb_s"],
        "loader_vs_xarray": main_r["loader_w0_mb_s"] / main_r["xarray_naive_mb_s"],
        "workers2_vs_workers0": main_r["loader_w2_mb_s"] / main_r["loader_w0_mb_s"],
        **{k: v for k, v in main_r.items() if k.endswith("_mb_s")},
        "cpu_parallel_speedup": main_r["cpu_parallel_speedup"],
    }
    if full_r:
        figures |= {f"full_{k}": v for k, v in full_r.items() if k.endswith("_mb_s")}
        figures["full_loader_vs_raw"] = full_r["loader_w0_mb_s"] / full_r["raw_zarr_mb_s"]
        figures["full_loader_vs_xarray"] = full_r["loader_w0_mb_s"] / full_r["xarray_naive_mb_s"]
    print(json.dumps({"benchmark": "weather_loader",
                      "figures": {k: round(v, 3) for k, v in figures.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
