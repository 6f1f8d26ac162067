"""Ingest an ERA5-style Zarr (v2 or v3) or NetCDF source into the prepared weather store.

The prepared store (Zarr v3, a directory or an object-store prefix) holds

    data      [T, C, H, W] float32, chunks (1, C, H, W)   one chunk per sample, read by workers
    time      [T] int64, nanoseconds since 1970-01-01     (CF units attribute, so xarray decodes)
    latitude  [H] float64, descending (90 → -90)          longitude [W] float64, 0..360 ascending
    mean, std, diff_std   [C] float32, over the train period only (float64 accumulation):

        mean_c = ⟨x⟩,   std_c = sqrt(⟨(x - mean_c)²⟩),
        diff_std_c = std over t of (x[t+1] - x[t]), both t and t+1 in the train period

    where ⟨·⟩ averages over train times and all grid points (unweighted, ddof = 0), computed on
    the data as written (after time striding and regridding).
    attrs: channels (the channel names: there is no string array, so no variable-length
    strings in the store), latitude_order, level_order, source_latitude_order,
    source_longitude_convention, time_step_hours, train_period, time_range, source, selection.
    sluice_manifest: source, selection, shape, and a sha256 per array (`write_manifest`).

Published atomically: into a temporary sibling directory renamed into place (a path or file://
URL), or, on an object store (an fsspec URL: s3://, gs://, memory://, ...), which has no
rename, with a completion marker object written last (`pipeline.publish`), which
`open_prepared` requires there.

Channels are named by spec: "2m_temperature" (a surface variable) or "geopotential@500"
(variable@level in hPa, WeatherBench2 long names), written as "2m_temperature" and
"geopotential_500". `pipeline.names.channel_specs` expands the compact form (pressure variables
× levels, then surface variables) in this order: each pressure variable with all its levels in
the order listed (z50, z100, …, z1000, q50, …), then the surface variables.

Canonical orientation. Every source is normalised on read, so every store layout gives the same
prepared data:
  * names: ERA5 short names (t2m, z, …), `lat`/`lon`, CDS's `valid_time`/`pressure_level` and a
    user `name_map` become WeatherBench2 names (`pipeline/names.py`);
  * `expver` (ERA5 final vs ERA5T in CDS downloads) is combined: each time takes the final ERA5
    value where it is not NaN, else ERA5T (`combine_expver`);
  * latitude 90 → -90 (descending, the ERA5/WB2 order), longitude 0..360 ascending, levels
    ascending in hPa (Pa converted), each variable transposed to (time, [level,] lat, lon);
  * optionally strided in time (`time_step_hours`, aligned to 00 UTC) and regridded
    conservatively (`pipeline/regrid.py`).
Then everything is checked at the door, each failure a `DataError` naming the file, the field and
what was expected, and nothing is left at the destination.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
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
from pipeline.moments import TrainStatistics
from pipeline.names import normalise_names
from pipeline.publish import (
    local_path,
    object_store_url,
    publish_objects,
    refuse_existing,
    require_complete,
)
from pipeline.regrid import equiangular_grid, regrid_conservative_array
from pipeline.timeblocks import (
    SourceBlocks,
    check_no_nans,
    time_blocks,
    time_interpolation_patch,
)

SPATIAL_DIMS = ("latitude", "longitude")
TIME_ENCODING = {"units": "nanoseconds since 1970-01-01", "dtype": "int64"}
MANIFEST = "sluice_manifest"
FILL_POLICIES = (None, "error", "interpolate_time")  # or a float: fill NaNs with that constant
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # NetCDF-4 files are HDF5 files


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


def publish_destination(dest, *, overwrite: bool = False):
    """Context manager yielding where to write the store at ``dest``, published on success:
    a temporary sibling directory renamed into place for a path or file:// URL
    (`atomic_directory`), ``dest`` itself with a completion marker written last for an
    object-store URL (`pipeline.publish.publish_objects`)."""
    url = object_store_url(dest)
    if url is None:
        return atomic_directory(local_path(dest), overwrite=overwrite)
    return publish_objects(url, overwrite=overwrite)


def channel_variable_level(channel: str) -> tuple[str, float | None]:
    """'geopotential_500' → ('geopotential', 500.0); '2m_temperature' → ('2m_temperature',
    None): the inverse of `parse_channel`'s names."""
    name, sep, level = channel.rpartition("_")
    try:
        return (name, float(level)) if sep else (channel, None)
    except ValueError:
        return channel, None


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


def source_format(path: Path, source) -> str:
    """'zarr', 'netcdf4' or 'netcdf3' from what is on disk (not the name); DataError otherwise."""
    expected = "a Zarr store (v2 or v3) or a NetCDF file"
    if not path.exists():
        raise DataError(source, "source", expected, "nothing there")
    if path.is_dir():
        if any((path / marker).exists() for marker in ("zarr.json", ".zgroup", ".zmetadata")):
            return "zarr"
        found = sorted(p.name for p in path.iterdir())[:5]
        raise DataError(source, "source", expected,
                        f"a directory without zarr.json/.zgroup (entries {found})")
    with open(path, "rb") as f:
        head = f.read(8)
    if head == HDF5_SIGNATURE:
        return "netcdf4"
    if head[:3] == b"CDF":
        return "netcdf3"
    raise DataError(source, "source", expected, f"a file starting with {head!r}")


def open_source(source, name_map: dict[str, str] | None = None) -> xr.Dataset:
    """Open a Zarr store or NetCDF file lazily (dask, one time step per chunk for NetCDF), with
    dims and variables renamed to WB2 names (`pipeline.names.normalise_names`)."""
    path = Path(source)
    kind = source_format(path, source)
    try:
        if kind == "zarr":
            with warnings.catch_warnings():
                # Unconsolidated stores are fine here; only the fallback is being announced.
                warnings.filterwarnings("ignore", "Failed to open Zarr store with consolidated")
                ds = xr.open_zarr(path, chunks={}, consolidated=None)
        else:
            # chunks=None keeps variables lazily indexed (packed ints decoded lazily too); they
            # are chunked one time step at a time below, so a file is never loaded whole.
            engine = "h5netcdf" if kind == "netcdf4" else "scipy"
            ds = xr.open_dataset(path, engine=engine, chunks=None)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(source, "source", "a readable Zarr store or NetCDF file",
                        repr(exc)) from exc
    ds = normalise_names(ds, name_map, source)
    if kind != "zarr":
        ds = ds.chunk({"time": 1} if "time" in ds.dims else {})
    return ds


def combine_expver(ds: xr.Dataset, source) -> xr.Dataset:
    """Merge ERA5 (expver 1, final) and ERA5T (expver 5, preliminary) into one time series.

    CDS downloads spanning the last months carry `expver` either as a dimension (old format: a
    value per expver, NaN where that version has none) or as a variable along time (new
    format; times repeat when files of both versions are concatenated). Each time takes the
    final ERA5 value where it is not NaN, else the next version's (lowest expver code first).
    """
    if "expver" not in ds.variables and "expver" not in ds.dims:
        return ds
    codes = np.asarray(ds["expver"].values)
    order = sorted(np.unique(codes), key=lambda c: int(str(c).strip() or 0))
    if "expver" in ds.dims:
        parts = [ds.sel(expver=c, drop=True) for c in order]
    elif ds["expver"].dims == ("time",):
        parts = [ds.isel(time=np.flatnonzero(codes == c)).drop_vars("expver") for c in order]
    else:
        raise DataError(source, "expver", "an expver dimension or a variable along time",
                        f"dims {ds['expver'].dims}")
    combined = parts[0]
    for part in parts[1:]:
        combined = combined.combine_first(part)  # outer join on time; NaNs filled from `part`
    return combined.assign_attrs(ds.attrs)


def normalise_grid(ds: xr.Dataset, source) -> tuple[xr.Dataset, dict]:
    """Latitude descending, longitude 0..360 ascending, levels ascending in hPa.

    Returns the dataset and what was done (source_latitude_order, source_longitude_convention).
    """
    for name in ("time", *SPATIAL_DIMS):
        if name not in ds.coords:
            hint = {"latitude": " (or 'lat')", "longitude": " (or 'lon')",
                    "time": " (or 'valid_time')"}[name]
            raise DataError(source, name, f"a '{name}' coordinate{hint}",
                            f"coordinates {sorted(map(str, ds.coords))}")
    lat = np.asarray(ds["latitude"].values, dtype=np.float64)
    steps = np.diff(lat)
    if lat.ndim != 1 or not (np.all(steps < 0) or np.all(steps > 0)):
        raise DataError(source, "latitude", "strictly monotonic 1-D latitudes")
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

    if "level" in ds.coords:
        level = np.asarray(ds["level"].values, dtype=np.float64)
        if str(ds["level"].attrs.get("units", "")).strip() == "Pa":
            ds = ds.assign_coords(level=level / 100.0)  # channel specs are in hPa
        if np.any(np.diff(level) < 0):  # no re-indexing (a dask take per chunk) when sorted
            ds = ds.sortby("level")
    return ds, {"source_latitude_order": source_order, "source_longitude_convention": convention}


def check_global(lat: np.ndarray, lon: np.ndarray, source) -> None:
    """DataError unless (lat [H], lon [W] 0..360 ascending) cover the globe to within a step.

    Latitude must span ≥ min(178°, 180° − one step) (so grids with poles, and offset grids
    whose outer centres sit half a step from the poles, pass); longitude must have no gap
    larger than its own step, around the wrap too.
    """
    lat_step = float(np.abs(np.diff(lat)).max())
    span = float(np.abs(lat[-1] - lat[0]))
    if span < min(178.0, 180.0 - lat_step) - 1e-6:
        raise DataError(source, "latitude", "a global grid spanning 90°S..90°N within one step "
                        "(data.require_global)", f"{lat.min():g}..{lat.max():g}")
    gaps = np.diff(np.concatenate([lon, [lon[0] + 360.0]]))
    if gaps.max() > 1.01 * gaps.min():
        raise DataError(source, "longitude", "a global grid covering 360° at a uniform step "
                        "(data.require_global)",
                        f"{lon.min():g}..{lon.max():g} with a gap of {gaps.max():g}°")


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


def stride_time(times: np.ndarray, step_hours: int, source) -> np.ndarray:
    """Indices [T'] of ``times`` [T] (sorted) on the ``step_hours`` grid aligned to 00 UTC.

    E.g. hourly ERA5 with step 6 keeps 00, 06, 12, 18 UTC. DataError if the source's step
    (its most common spacing) does not divide ``step_hours``. Gaps are left for the caller's
    uniform-step check, which then names them.
    """
    if times.size < 2:
        raise DataError(source, "time", "at least two times", f"{times.size}")
    diffs, counts = np.unique(np.diff(times), return_counts=True)
    source_step = diffs[np.argmax(counts)]
    step = np.timedelta64(int(step_hours), "h")
    if step % source_step != np.timedelta64(0):
        raise DataError(source, "time_step_hours",
                        f"a source step that divides {step_hours} h",
                        f"{source_step / np.timedelta64(1, 'h'):g} h")
    since_midnight = times - times.astype("datetime64[D]")
    return np.flatnonzero(since_midnight % step == np.timedelta64(0))


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


def channel_pick(ds: xr.Dataset, spec: str) -> tuple[str, int | None]:
    """(source variable, index of the level or None) of a channel `select_channel` accepted."""
    name, level, _ = parse_channel(spec)
    if level is None:
        return name, None
    return name, int(np.flatnonzero(np.asarray(ds[name]["level"].values) == level)[0])


def dask_workers() -> int:
    """CPUs for Dask's threads: the Ray task's assigned CPUs inside one, else os.cpu_count()."""
    ray = sys.modules.get("ray")  # never imported here: without it we cannot be in a Ray task
    if ray is not None and ray.is_initialized():
        ctx = ray.get_runtime_context()
        if ctx.get_task_id() is not None:
            cpus = ctx.get_assigned_resources().get("CPU")
            if cpus:
                return max(1, int(cpus))
    return os.cpu_count() or 1


def dask_scheduler(kind: str = "threads"):
    """dask.config.set(...) for the compute: threads sized by `dask_workers`, or Ray's.

    Never a distributed LocalCluster: inside a Ray task it would oversubscribe the node. With
    'ray', each Dask task becomes a Ray task (needs free CPUs beyond the ingest task's own).
    """
    if kind == "ray":
        from ray.util.dask import ray_dask_get

        return dask.config.set(scheduler=ray_dask_get)
    if kind != "threads":
        raise ConfigError(f"data.dask_scheduler: expected 'threads' or 'ray', got {kind!r}")
    return dask.config.set(scheduler="threads", num_workers=dask_workers())


def array_sha256(array: zarr.Array) -> str:
    """sha256 of an array's values as little-endian C-order bytes, read one outer index at a
    time (the data: one chunk per step; so memory stays at one chunk)."""
    h = hashlib.sha256()
    dtype = array.dtype.newbyteorder("<")
    if array.ndim == 0 or array.shape[0] == 0:
        h.update(np.ascontiguousarray(array[...], dtype=dtype).tobytes())
    else:
        step = max(1, array.chunks[0])
        for i in range(0, array.shape[0], step):
            h.update(np.ascontiguousarray(array[i:i + step], dtype=dtype).tobytes())
    return h.hexdigest()


def write_manifest(store: Path, manifest: dict) -> dict:
    """Add hashes of every array in the (not yet published) store; store it as the group
    attribute MANIFEST (an attribute, not a file: zarr warns about foreign files in a store).

    Cost: one more read of the output (the prepared store, float32) — trivial at test sizes,
    ~1 s per GB on local disk at scale; it lets a reader verify data without the run record.
    """
    group = zarr.open_group(os.fspath(store), mode="r+")
    hashes = {name: array_sha256(arr) for name, arr in sorted(group.arrays())}
    manifest = {**manifest, "hashes": hashes,
                "hash_method": "sha256 of each array's values, little-endian, C order"}
    group.attrs[MANIFEST] = manifest
    return manifest


def read_manifest(path) -> dict:
    """The manifest of a prepared store ({} for stores written before manifests existed)."""
    return dict(zarr.open_group(os.fspath(path), mode="r").attrs.get(MANIFEST, {}))


def select_times(ds: xr.Dataset, time_range, time_step_hours, source) -> tuple[xr.Dataset, float]:
    """Check times, cut ``time_range`` (inclusive labels), stride; returns (ds, step hours)."""
    check_times(np.asarray(ds["time"].values), source)
    if time_range is not None:
        ds = ds.sel(time=slice(*time_range))
        if ds.sizes["time"] == 0:
            raise DataError(source, "time_range", f"times inside {list(time_range)}", "none")
    if time_step_hours is not None:
        keep = stride_time(np.asarray(ds["time"].values), time_step_hours, source)
        if keep.size == 0:
            raise DataError(source, "time_step_hours",
                            f"times at multiples of {time_step_hours} h after 00 UTC", "none")
        ds = ds.isel(time=keep)
    step_hours = uniform_step_hours(np.asarray(ds["time"].values), source)
    if time_step_hours is not None and step_hours != time_step_hours:
        raise DataError(source, "time", f"a uniform step of {time_step_hours} h after striding",
                        f"{step_hours:g} h")
    return ds, step_hours


def prepare_weather(source, dest, *, variables, train_period, time_range=None,
                    overwrite=False, name_map=None, time_step_hours=None, regrid=None,
                    fill_nan=None, require_global=True, dask_scheduler_kind="threads") -> dict:
    """Check, normalise and write ``source``'s channels to the prepared store at ``dest``.

    variables: channel specs (WB2 names), in output order. train_period, time_range: (start,
    end) labels, both inclusive (partial strings like "2020-02-09T18" cover that hour).
    name_map: {source name: WB2 name}. time_step_hours: keep every time on this step aligned
    to 00 UTC (None: the source's own step). regrid: {"n_lat", "n_lon"} for WB2's equiangular
    grid with poles, or None. fill_nan: None/"error" (NaNs are a DataError), a number, or
    "interpolate_time". require_global: DataError for a regional grid.
    dask_scheduler_kind: "threads" (sized to the Ray task's CPUs) or "ray".

    dest: a directory path, or an fsspec URL (s3://..., gs://..., memory://...) for an object
    store, where the store is marked complete last (`pipeline.publish`).

    Returns a summary {dest, n_times, channels, shape, time_step_hours, seconds}. Nothing is
    left at ``dest`` on failure; FileExistsError if it exists and ``overwrite`` is False.
    """
    started = time.perf_counter()
    dest = object_store_url(dest) or local_path(dest)
    refuse_existing(dest, overwrite)  # before any reading: the publish checks again
    variables = list(variables)
    names = [parse_channel(spec)[2] for spec in variables]
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"variables: expected distinct channel specs, got {variables}")
    if fill_nan not in FILL_POLICIES and not isinstance(fill_nan, int | float):
        raise ConfigError(f"data.fill_nan: expected one of {FILL_POLICIES} or a number, "
                          f"got {fill_nan!r}")

    ds = combine_expver(open_source(source, name_map), source)
    ds, grid_attrs = normalise_grid(ds, source)
    lat = np.asarray(ds["latitude"].values, dtype=np.float64)
    lon = np.asarray(ds["longitude"].values, dtype=np.float64)
    if require_global:
        check_global(lat, lon, source)
    ds, step_hours = select_times(ds, time_range, time_step_hours, source)
    times = np.asarray(ds["time"].values).astype("datetime64[ns]")
    train = pd.DatetimeIndex(times).slice_indexer(*train_period)  # a slice: times are sorted
    n_train = len(range(*train.indices(times.size)))
    if n_train < 2:
        raise DataError(source, "train_period", f"at least two times inside {list(train_period)}",
                        f"{n_train} (data covers {times[0]} .. {times[-1]})")

    for spec in variables:
        select_channel(ds, spec, source)  # a DataError for a missing variable, level or dim
    out_lat, out_lon = lat, lon
    if regrid is not None:
        out_lat, out_lon = equiangular_grid(int(regrid["n_lat"]), int(regrid["n_lon"]))
    levels = sorted({lv for _, lv, _ in map(parse_channel, variables) if lv is not None})
    selection = {
        "variables": variables,
        "levels": levels,
        "time_range": None if time_range is None else [str(t) for t in time_range],
        "time_step_hours": time_step_hours,
        "regrid": None if regrid is None else {"n_lat": int(regrid["n_lat"]),
                                               "n_lon": int(regrid["n_lon"]),
                                               "method": "conservative"},
        "fill_nan": fill_nan,
        "name_map": dict(name_map or {}),
    }
    attrs = {
        "channels": names,
        "latitude_order": "descending",
        "level_order": "ascending",
        **grid_attrs,
        "time_step_hours": step_hours,
        "train_period": [str(t) for t in train_period],
        "time_range": None if time_range is None else [str(t) for t in time_range],
        "source": os.fspath(source),
        "selection": selection,
    }

    shape = (times.size, len(names), out_lat.size, out_lon.size)
    # Only the store's layout goes through xarray (a lazy template, never computed); the values
    # are read, checked, regridded and written one time block at a time (`time_blocks`), so
    # memory holds a block, not the series, and the Dask graph a block's tasks.
    template = xr.DataArray(
        da.zeros(shape, chunks=(1, *shape[1:]), dtype=np.float32),
        dims=("time", "channel", *SPATIAL_DIMS),
        coords={"time": times, "latitude": out_lat, "longitude": out_lon})
    blocks = time_blocks(times.size, len(names) * max(lat.size * lon.size,
                                                      out_lat.size * out_lon.size))
    load = SourceBlocks(ds, [channel_pick(ds, spec) for spec in variables], dask_scheduler_kind)
    patch = (time_interpolation_patch(load, blocks)
             if fill_nan == "interpolate_time" else None)
    statistics = TrainStatistics(len(names), train.start, train.start + n_train)
    with publish_destination(dest, overwrite=overwrite) as tmp:  # a Path or a URL
        xr.Dataset({"data": template}, attrs=attrs).to_zarr(
            tmp, mode="w", zarr_format=3, consolidated=False, compute=False,
            encoding={"data": {"chunks": (1, *shape[1:])}, "time": TIME_ENCODING})
        array = zarr.open_group(os.fspath(tmp), mode="r+")["data"]
        for a, b in blocks:
            x = load(a, b)  # [b - a, C, H, W] source grid, float64 or the source's float
            if patch is not None:
                patch.apply(x, a, b)
            elif fill_nan not in (None, "error"):
                x = np.where(np.isnan(x), float(fill_nan), x)
            check_no_nans(x, a, b, times, variables, source)  # before regridding spreads them
            if regrid is not None:
                try:
                    x = regrid_conservative_array(x, lat, lon, out_lat, out_lon)
                except ValueError as exc:
                    raise DataError(source, "regrid", "a global regular source grid",
                                    str(exc)) from exc
            x = x.astype(np.float32)
            array[a:b] = x
            statistics.add(a, x)  # of the data as written
        moments = statistics.result()
        stats = {k: ("channel", v.astype(np.float32)) for k, v in moments.items()}
        # attrs again: an append rewrites the group's attributes with the appended dataset's.
        xr.Dataset(stats, attrs=attrs).to_zarr(tmp, mode="a", zarr_format=3, consolidated=False)
        write_manifest(tmp, {
            "format": "sluice.prepared_weather/1",
            "source": os.fspath(source),
            "channels": names,
            "selection": selection,
            "train_period": attrs["train_period"],
            "shape": list(shape),
            "dtype": "float32",
            "chunks": [1, *shape[1:]],
            "time": {"first": str(times[0]), "last": str(times[-1]), "count": int(times.size),
                     "step_hours": step_hours},
            "grid": {"n_lat": shape[2], "n_lon": shape[3], "latitude_order": "descending",
                     "longitude": "0..360 ascending"},
        })
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
    group: zarr.Group  # the whole store, for optional members (e.g. ``static``)


def open_prepared(path) -> PreparedWeather:
    """Open a store written by `prepare_weather` (no xarray, no dask): a directory, or an
    object-store URL, only once its publish finished (its completion marker is there)."""
    url = object_store_url(path)
    if url is not None:
        require_complete(url)
    group = zarr.open_group(url or os.fspath(local_path(path)), mode="r")
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
        group=group,
    )
