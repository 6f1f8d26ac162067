"""Ingest an ERA5-style Zarr (v2 or v3) or NetCDF source into the prepared weather store.

The prepared store (Zarr v3, a directory) holds

    data      [T, C, H, W] float32, chunks (1, C, H, W)   one chunk per sample, read by workers
    time      [T] int64, nanoseconds since 1970-01-01     (CF units attribute, so xarray decodes)
    channel   [C] str       latitude [H] float64 (descending, 90 → -90)   longitude [W] float64
    mean, std, diff_std   [C] float32, over the train period only (float64 accumulation):

        mean_c = ⟨x⟩,   std_c = sqrt(⟨(x - mean_c)²⟩),
        diff_std_c = std over t of (x[t+1] - x[t]), both t and t+1 in the train period

    where ⟨·⟩ averages over train times and all grid points (unweighted, ddof = 0).
    attrs: channels, latitude_order, source_latitude_order, source_longitude_convention,
    time_step_hours, train_period, time_range, source.

Channels are named by spec: "2m_temperature" (a surface variable) or "geopotential@500"
(variable@level in hPa), written as "2m_temperature" and "geopotential_500".

Sources are normalised on read, so every store layout gives the same prepared data: `lat`/`lon`
are aliases of `latitude`/`longitude`; longitudes in -180..180 become 0..360, ascending; latitude
is flipped to descending (the ERA5/WeatherBench2 convention) if the source is ascending; each
variable is transposed to (time, [level,] latitude, longitude). Then everything is checked at the
door, each failure a `DataError` naming the file, the field and what was expected.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from pipeline.errors import ConfigError, DataError

COORD_ALIASES = {"lat": "latitude", "lon": "longitude"}
SPATIAL_DIMS = ("latitude", "longitude")
TIME_ENCODING = {"units": "nanoseconds since 1970-01-01", "dtype": "int64"}


@contextmanager
def atomic_directory(path, *, overwrite: bool = False):
    """Yield an empty temporary sibling of ``path`` that replaces ``path`` only on success.

    On any exception the temporary directory is removed and ``path`` is left as it was. Raises
    FileExistsError if ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    # A sibling, so the final rename stays on one file system and is atomic.
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            # rename(2) cannot replace a non-empty directory: move the old one aside first.
            old = tmp.with_name(tmp.name + ".old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def parse_channel(spec: str) -> tuple[str, float | None, str]:
    """'geopotential@500' → ('geopotential', 500.0, 'geopotential_500'); no '@' → surface."""
    name, sep, level = spec.partition("@")
    if not sep:
        return name, None, name
    try:
        hpa = float(level)
    except ValueError:
        raise ConfigError(f"channel '{spec}': expected 'variable@level', level in hPa") from None
    return name, hpa, f"{name}_{hpa:g}"


def open_source(source) -> xr.Dataset:
    """Open a Zarr store (a directory) or a NetCDF file lazily, with `lat`/`lon` renamed."""
    path = Path(source)
    if not path.exists():
        raise DataError(source, "source", "an existing Zarr store or NetCDF file", "nothing there")
    try:
        if path.is_file():
            # chunks=None keeps NetCDF variables lazily indexed; they are chunked one time step
            # at a time after selection, so a contiguous file is never loaded whole.
            ds = xr.open_dataset(path, engine="h5netcdf", chunks=None)
        else:
            with warnings.catch_warnings():
                # Unconsolidated stores are fine here; only the fallback is being announced.
                warnings.filterwarnings("ignore", "Failed to open Zarr store with consolidated")
                ds = xr.open_zarr(path, chunks={}, consolidated=None)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(source, "source", "a readable Zarr store or NetCDF file",
                        repr(exc)) from exc
    aliases = {k: v for k, v in COORD_ALIASES.items() if k in ds.variables or k in ds.dims}
    return ds.rename(aliases)


def normalise_grid(ds: xr.Dataset, source) -> tuple[xr.Dataset, dict]:
    """Latitude descending, longitude 0..360 ascending; returns the dataset and what was done."""
    for name in ("time", *SPATIAL_DIMS):
        if name not in ds.coords:
            alias = [k for k, v in COORD_ALIASES.items() if v == name]
            hint = f" (or '{alias[0]}')" if alias else ""
            raise DataError(source, name, f"a '{name}' coordinate{hint}",
                            f"coordinates {sorted(map(str, ds.coords))}")
    lat = np.asarray(ds["latitude"].values, dtype=np.float64)
    steps = np.diff(lat)
    if not (np.all(steps < 0) or np.all(steps > 0)):
        raise DataError(source, "latitude", "strictly monotonic latitudes")
    source_order = "ascending" if lat[0] < lat[-1] else "descending"
    if source_order == "ascending":
        ds = ds.isel(latitude=slice(None, None, -1))

    lon = np.asarray(ds["longitude"].values, dtype=np.float64)
    convention = "-180..180" if lon.min() < 0 else "0..360"
    lon360 = np.mod(lon, 360.0)
    if np.unique(lon360).size != lon360.size:
        raise DataError(source, "longitude", "distinct longitudes modulo 360",
                        f"{lon360.size - np.unique(lon360).size} repeated")
    ds = ds.assign_coords(longitude=lon360).isel(longitude=np.argsort(lon360, kind="stable"))
    return ds, {"source_latitude_order": source_order, "source_longitude_convention": convention}


def check_times(times: np.ndarray, source) -> None:
    """Times must be datetime64 and strictly increasing (no duplicates)."""
    if not np.issubdtype(times.dtype, np.datetime64):
        raise DataError(source, "time", "datetime64 times", f"dtype {times.dtype}")
    diffs = np.diff(times)
    for bad, what in ((diffs == np.timedelta64(0), "duplicate"), (diffs < np.timedelta64(0),
                                                                   "decreasing")):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(source, "time", "strictly increasing times without duplicates",
                            f"{what} time {times[i + 1]} after {times[i]} at index {i + 1}")


def uniform_step_hours(times: np.ndarray, source) -> float:
    """The one step between consecutive times, in hours; DataError if there are several."""
    if times.size < 2:
        raise DataError(source, "time", "at least two times", f"{times.size}")
    diffs = np.diff(times)
    steps, counts = np.unique(diffs, return_counts=True)
    step = steps[np.argmax(counts)]
    hours = step / np.timedelta64(1, "h")
    bad = np.flatnonzero(diffs != step)
    if bad.size:
        i = int(bad[0])
        raise DataError(source, "time", f"a uniform step of {hours:g} h",
                        f"{diffs[i] / np.timedelta64(1, 'h'):g} h between {times[i]} and "
                        f"{times[i + 1]}")
    return float(hours)


def select_channel(ds: xr.Dataset, spec: str, source) -> xr.DataArray:
    """One channel as a lazy DataArray (time, latitude, longitude) with no extra coordinates."""
    name, level, _ = parse_channel(spec)
    if name not in ds.data_vars:
        raise DataError(source, name, "a data variable of that name",
                        f"variables {sorted(map(str, ds.data_vars))}")
    var = ds[name]
    surface = {"time", *SPATIAL_DIMS}
    if set(var.dims) not in (surface, surface | {"level"}):
        raise DataError(source, name, "dims (time, latitude, longitude) or "
                        "(time, level, latitude, longitude) in any order", f"{var.dims}")
    if "level" in var.dims and level is None:
        raise DataError(source, name, f"a surface variable; ask for one level as '{name}@<hPa>'",
                        f"dims {var.dims}")
    if level is not None:
        if "level" not in var.dims:
            raise DataError(source, spec, "a variable with a 'level' dim", f"dims {var.dims}")
        levels = np.asarray(var["level"].values)
        hits = np.flatnonzero(levels == level)
        if not hits.size:
            raise DataError(source, spec, f"level {level:g} hPa",
                            f"available levels {levels.tolist()}")
        var = var.isel(level=int(hits[0]))
    return var.reset_coords(drop=True).transpose("time", *SPATIAL_DIMS)


def prepare_weather(source, dest, *, variables, train_period, time_range=None,
                    overwrite=False) -> dict:
    """Check, normalise and write ``source``'s channels to the prepared store at ``dest``.

    variables: channel specs, in output order. train_period, time_range: (start, end) labels,
    both inclusive (partial strings like "2020-02-09T18" cover that hour). Returns a summary
    {dest, n_times, channels, shape, time_step_hours, seconds}. Nothing is left at ``dest`` on
    failure; FileExistsError if it exists and ``overwrite`` is False.
    """
    started = time.perf_counter()
    dest = Path(dest)
    if dest.exists() and not overwrite:
        raise FileExistsError(f"{dest} exists (pass overwrite=True to replace it)")
    names = [parse_channel(spec)[2] for spec in variables]
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"variables: expected distinct channel specs, got {list(variables)}")

    ds, grid_attrs = normalise_grid(open_source(source), source)
    check_times(np.asarray(ds["time"].values), source)
    if time_range is not None:
        ds = ds.sel(time=slice(*time_range))
        if ds.sizes["time"] == 0:
            raise DataError(source, "time_range", f"times inside {list(time_range)}", "none")
    times = np.asarray(ds["time"].values).astype("datetime64[ns]")
    step_hours = uniform_step_hours(times, source)
    train = pd.DatetimeIndex(times).slice_indexer(*train_period)  # a slice: times are sorted
    n_train = len(range(*train.indices(times.size)))
    if n_train < 2:
        raise DataError(source, "train_period", f"at least two times inside {list(train_period)}",
                        f"{n_train} (data covers {times[0]} .. {times[-1]})")

    channels = [select_channel(ds, spec, source) for spec in variables]
    data = (xr.concat(channels, dim=pd.Index(names, name="channel"), coords="minimal")
            .transpose("time", "channel", *SPATIAL_DIMS)
            .astype(np.float32)
            .chunk({"time": 1, "channel": -1, "latitude": -1, "longitude": -1})
            .assign_coords(time=times, channel=np.array(names, dtype=object),
                           latitude=ds["latitude"].values.astype(np.float64),
                           longitude=ds["longitude"].values.astype(np.float64)))
    attrs = {
        "channels": names,
        "latitude_order": "descending",
        **grid_attrs,
        "time_step_hours": step_hours,
        "train_period": [str(t) for t in train_period],
        "time_range": None if time_range is None else [str(t) for t in time_range],
        "source": os.fspath(source),
    }

    x = data.data  # [T, C, H, W] float32, lazy
    x_train = x[train].astype(np.float64)
    nan_counts = da.isnan(x).sum(axis=(2, 3))  # [T, C]
    mean = x_train.mean(axis=(0, 2, 3))
    std = x_train.std(axis=(0, 2, 3))
    diff_std = (x_train[1:] - x_train[:-1]).std(axis=(0, 2, 3))

    shape = tuple(data.shape)
    with atomic_directory(dest, overwrite=overwrite) as tmp:
        store = xr.Dataset({"data": data}, attrs=attrs).to_zarr(
            tmp, mode="w", zarr_format=3, consolidated=False, compute=False,
            encoding={"data": {"chunks": (1, *shape[1:])}, "time": TIME_ENCODING})
        # One graph: each source chunk is read once for both the store and the statistics.
        _, nan_counts, mean, std, diff_std = dask.compute(store, nan_counts, mean, std, diff_std)
        if nan_counts.any():
            t, c = (int(i[0]) for i in np.nonzero(nan_counts))
            raise DataError(source, variables[c], "no NaNs",
                            f"{int(nan_counts[:, c].sum())} NaNs, the first at {times[t]}")
        stats = {k: ("channel", v.astype(np.float32))
                 for k, v in (("mean", mean), ("std", std), ("diff_std", diff_std))}
        # attrs again: an append rewrites the group's attributes with the appended dataset's.
        xr.Dataset(stats, attrs=attrs).to_zarr(tmp, mode="a", zarr_format=3, consolidated=False)
    return {"dest": str(dest), "n_times": shape[0], "channels": names, "shape": shape,
            "time_step_hours": step_hours, "seconds": round(time.perf_counter() - started, 3)}


@dataclass(frozen=True)
class PreparedWeather:
    """A prepared store opened with plain zarr: cheap to open in every DataLoader worker."""

    data: zarr.Array  # [T, C, H, W] float32; data[i] → np.ndarray [C, H, W]
    times: np.ndarray  # [T] datetime64[ns]
    channels: tuple[str, ...]
    lat: np.ndarray  # [H] descending
    lon: np.ndarray  # [W] 0..360 ascending
    mean: np.ndarray  # [C] float32
    std: np.ndarray  # [C] float32
    diff_std: np.ndarray  # [C] float32
    time_step_hours: float
    attrs: dict


def open_prepared(path) -> PreparedWeather:
    """Open a store written by `prepare_weather` (no xarray, no dask)."""
    group = zarr.open_group(os.fspath(path), mode="r")
    if "data" not in group or "mean" not in group:
        raise DataError(path, "data", "a prepared weather store written by prepare_weather",
                        f"members {sorted(group.keys())}")
    attrs = dict(group.attrs)
    return PreparedWeather(
        data=group["data"],
        times=np.asarray(group["time"][:], dtype=np.int64).view("datetime64[ns]"),
        channels=tuple(attrs["channels"]),
        lat=np.asarray(group["latitude"][:]),
        lon=np.asarray(group["longitude"][:]),
        mean=np.asarray(group["mean"][:]),
        std=np.asarray(group["std"][:]),
        diff_std=np.asarray(group["diff_std"][:]),
        time_step_hours=float(attrs["time_step_hours"]),
        attrs=attrs,
    )
