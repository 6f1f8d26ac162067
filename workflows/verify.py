"""Verify a published forecast against the analyses that have arrived since it was made.

For a forecast store (WB2 layout, `pipeline.forecast`) initialised at t_0, each lead τ whose
valid time t_0 + τ is at or before the newest analysis is scored per channel with the
evaluation's own metrics (`pipeline.metrics`, WeatherBench2 conventions; no second
implementation): for the forecast f, the analysis o at t_0 + τ (read through the ingest's door,
`pipeline.analysis`) and the climatology c at t_0 + τ,

    RMSE = sqrt(⟨(f − o)²⟩),  bias = ⟨f − o⟩,  ACC = ⟨f'o'⟩ / sqrt(⟨f'²⟩⟨o'²⟩),  f' = f − c, …

⟨·⟩ the latitude-weighted spatial mean (one init time: no time mean). Persistence (the analysis
at t_0) and the climatology are scored at the same valid time beside it.
"""

from __future__ import annotations

import numpy as np

from pipeline.analysis import read_analysis
from pipeline.errors import DataError
from pipeline.ingest import channel_variable_level
from pipeline.metrics import WeightedErrorAccumulator, anomaly_correlation


def iso(t) -> str:
    return str(np.datetime64(t, "s"))


def open_forecast(path):
    """A published forecast store as an xarray Dataset (object stores: only once complete)."""
    import xarray as xr

    from pipeline.publish import object_store_url, require_complete

    url = object_store_url(path)
    if url is not None:
        require_complete(url)
    return xr.open_zarr(url or path, consolidated=False)


def forecast_values(ds, channels, lat_order: np.ndarray, where) -> np.ndarray:
    """The forecast's channels as [K, C, H, W] with latitudes in ``lat_order``'s order."""
    lat = ds["latitude"].values
    flip = (lat[0] < lat[-1]) != (lat_order[0] < lat_order[-1])
    if lat.size != lat_order.size or not np.allclose(lat[::-1] if flip else lat, lat_order,
                                                     atol=1e-6):
        raise DataError(where, "latitude", f"the analysis grid's {lat_order.size} latitudes",
                        f"{lat.size} latitudes {lat.min():g}..{lat.max():g}")
    out = []
    for c in channels:
        variable, level = channel_variable_level(c)
        if variable not in ds:
            raise DataError(where, variable, "a variable of the forecast", "absent")
        v = ds[variable].isel(time=0)
        if level is not None:
            v = v.sel(level=level)
        out.append(v.values)  # [K, H, W]
    x = np.stack(out, axis=1)
    return x[:, :, ::-1] if flip else x


def verify_forecast(path, source, variables, *, newest, done: set, climatology=None,
                    name_map=None, regrid=None, fill_nan=None) -> list[dict]:
    """Scorecard rows (`workflows.scoretable.COLUMNS`) for every lead of the forecast at
    ``path`` with a valid time ≤ ``newest`` and (init, lead hours) not in ``done``."""
    from pipeline.ingest import parse_channel

    ds = open_forecast(path)
    init = ds["time"].values[0].astype("datetime64[ns]")
    leads = ds["prediction_timedelta"].values.astype("timedelta64[ns]")
    hours = (leads / np.timedelta64(1, "h")).astype(int)
    todo = [k for k, h in enumerate(hours)
            if init + leads[k] <= newest and (iso(init), int(h)) not in done]
    if not todo:
        return []
    channels = [parse_channel(s)[2] for s in variables]
    valid = init + leads[todo]
    reads = dict(name_map=name_map, regrid=regrid, fill_nan=fill_nan)
    # One read of the store: the analysis at t_0 (persistence) and at every valid time.
    analyses = read_analysis(source, np.concatenate([[init], valid]), variables, **reads)
    x0, truth_values = analyses.values[0], analyses.values[1:]
    lat = analyses.lat
    f = forecast_values(ds, channels, lat, path)[todo]  # [K', C, H, W]
    rows = []
    for j, k in enumerate(todo):
        o = truth_values[j]
        clim = climatology_at(climatology, valid[j], channels)
        scores = {"": error_scores(f[j], o, lat), "persistence_": error_scores(x0, o, lat)}
        if clim is not None:
            scores["climatology_"] = error_scores(clim, o, lat)
            acc = {"acc": anomaly_correlation(f[j], o, clim, lat),
                   "persistence_acc": anomaly_correlation(x0, o, clim, lat)}
        for ci, c in enumerate(channels):
            variable, level = channel_variable_level(c)
            row = {"init_time": iso(init), "lead_hours": int(hours[k]), "variable": variable,
                   "level_hpa": "" if level is None else f"{level:g}",
                   "valid_time": iso(valid[j]), "acc": None, "persistence_acc": None,
                   "climatology_rmse": None}
            for prefix, (rmse, bias) in scores.items():
                row[f"{prefix}rmse"] = float(rmse[ci])
                if prefix == "":
                    row["bias"] = float(bias[ci])
            if clim is not None:
                row.update({m: _finite(v[ci]) for m, v in acc.items()})
            rows.append(row)
    return rows


def climatology_at(climatology, valid, channels) -> np.ndarray | None:
    """The climatology [C, H, W] at one valid time, or None where it has none (no climatology,
    or no training sample within its window of that day of year: a climatology of a short
    training period does not cover the whole year). Those rows leave ACC and the climatology's
    RMSE empty rather than stopping the night's verification."""
    if climatology is None:
        return None
    try:
        return climatology.at(np.asarray([valid]).astype("datetime64[ns]").astype(np.int64),
                              channels)[0]
    except DataError as exc:
        if exc.field == "mean" and str(exc.found).startswith("NaN"):  # no sample there
            return None
        raise


def error_scores(forecast: np.ndarray, truth: np.ndarray, lat) -> tuple[np.ndarray, np.ndarray]:
    """(RMSE [C], bias [C]) of one forecast [C, H, W] (`WeightedErrorAccumulator`)."""
    acc = WeightedErrorAccumulator(lat, forecast.shape[0])
    acc.add(forecast, truth)
    return acc.rmse(), acc.bias()


def _finite(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x
