"""Analysis states at chosen valid times, read through the ingest's door.

The nightly forecast starts from the newest analysis of an ERA5-style store (the store the
training data came from, growing as analyses arrive). It reads it the way `prepare_weather`
reads a source, applied to the few times asked for: the same name normalisation, expver
combination, grid orientation (latitude descending, longitude 0..360), channel selection, NaN
check and conservative regridding. So the initial state of a forecast is the value the prepared
store would hold at that time, whatever the store's layout.

A time the store does not hold yet is `AnalysisPending` (exit 75: retry later), not a DataError:
analyses arrive hours after their valid time, and a scheduler should simply come back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.errors import AnalysisPending, DataError


@dataclass(frozen=True)
class Analysis:
    values: np.ndarray  # [T, C, H, W] float32, physical units
    times: np.ndarray  # [T] datetime64[ns]
    channels: tuple[str, ...]
    lat: np.ndarray  # [H] descending
    lon: np.ndarray  # [W] 0..360 ascending
    attrs: dict[str, dict]  # per source variable (WB2 name): its units/long_name/standard_name


def _open(source, name_map):
    from pipeline.ingest import check_times, combine_expver, normalise_grid, open_source

    ds = combine_expver(open_source(source, name_map), source)
    ds, _ = normalise_grid(ds, source)
    check_times(np.asarray(ds["time"].values), source)
    return ds


def analysis_times(source, name_map: dict[str, str] | None = None) -> np.ndarray:
    """The valid times the store holds, [T] datetime64[ns], checked increasing."""
    return np.asarray(_open(source, name_map)["time"].values).astype("datetime64[ns]")


def read_analysis(source, times, variables, *, name_map: dict[str, str] | None = None,
                  regrid: dict | None = None, fill_nan=None) -> Analysis:
    """The channels ``variables`` (specs, e.g. "geopotential@500") at ``times`` [T] from
    ``source``, on the source grid or, with ``regrid`` {"n_lat", "n_lon"}, on WB2's equiangular
    grid. AnalysisPending for a time after the store's last; DataError for a missing one inside
    the store's span (a gap), a missing variable or level, or a NaN (``fill_nan``: a number to
    put in its place, as the ingest's constant policy)."""
    from pipeline.ingest import channel_pick, parse_channel, select_channel
    from pipeline.regrid import equiangular_grid, regrid_conservative_array
    from pipeline.timeblocks import SourceBlocks, check_no_nans

    ds = _open(source, name_map)
    held = np.asarray(ds["time"].values).astype("datetime64[ns]")
    wanted = np.asarray(times).astype("datetime64[ns]")
    index = np.searchsorted(held, wanted)
    for t, i in zip(wanted, index, strict=True):
        if i < held.size and held[i] == t:
            continue
        if held.size == 0 or t > held[-1]:
            raise AnalysisPending(source, t, held[-1] if held.size else "no times")
        raise DataError(source, "time", f"an analysis at {t}",
                        f"none (the store holds {held[0]} .. {held[-1]} with a gap there)")
    for spec in variables:
        select_channel(ds, spec, source)  # DataError for a missing variable, level or dim
    ds = ds.isel(time=index)
    x = SourceBlocks(ds, [channel_pick(ds, spec) for spec in variables], "threads")(
        0, wanted.size)
    if fill_nan not in (None, "error", "interpolate_time"):
        x = np.where(np.isnan(x), float(fill_nan), x)
    check_no_nans(x, 0, wanted.size, wanted, list(variables), source)
    lat = np.asarray(ds["latitude"].values, dtype=np.float64)
    lon = np.asarray(ds["longitude"].values, dtype=np.float64)
    if regrid is not None:
        out_lat, out_lon = equiangular_grid(int(regrid["n_lat"]), int(regrid["n_lon"]))
        x = regrid_conservative_array(x, lat, lon, out_lat, out_lon)
        lat, lon = out_lat, out_lon
    names = dict.fromkeys(parse_channel(s)[0] for s in variables)
    attrs = {n: {k: ds[n].attrs[k] for k in ("units", "long_name", "standard_name")
                 if k in ds[n].attrs} for n in names}
    return Analysis(values=x.astype(np.float32), times=wanted,
                    channels=tuple(parse_channel(s)[2] for s in variables), lat=lat, lon=lon,
                    attrs=attrs)
