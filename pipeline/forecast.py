"""A forecast from one analysis: checkpoint → rollout → WeatherBench2 forecast Zarr.

`Forecaster.from_checkpoint` rebuilds the model from a self-describing checkpoint alone
(meta.json: config, channels, grid, time step, normalisation; the graph rebuilt from the
config's graph section on that grid and checked against the checkpoint's graph spec hash).
`Forecaster.check_analysis` compares an analysis with it (channels, grid, time step) and
`Forecaster.rollout` steps it autoregressively from the initial state,

    x̂_0 = x(t_0), x̂_{-1} = x(t_0 − Δt) when the model takes two states,
    x̂_k = f(x̂_{k-1}, x̂_{k-2}, t_0 + (k − 1) Δt),  k = 1..K,   K = lead / Δt,

exactly as the evaluation scores it (`pipeline.scorecard.score_forecasters`).

`forecast_dataset` lays the K states out as WeatherBench2 forecasts are laid out, so WB2's
own evaluation reads them: dims ``time`` (the init time, length 1), ``prediction_timedelta``
(Δt..K Δt), ``level`` (hPa, ascending), ``latitude`` (ascending, −90 → 90, as WB2's ERA5
stores), ``longitude`` (0..360); one variable per WB2 name, pressure-level variables
[time, prediction_timedelta, level, latitude, longitude] and surface variables without
``level``; physical units with CF attributes (`pipeline.names.CF_ATTRIBUTES`, or the analysis
source's own). Times are encoded with fixed units (hours since 1970-01-01, int64), and nothing
in the store depends on when or where it was written (no wall-clock time, host or run id), so
the same checkpoint and analysis give the same bytes. `write_forecast` publishes it atomically
(`pipeline.ingest.publish_destination`: rename on a local disk, a completion marker written last
on an object store).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import DataError, UserError
from pipeline.fingerprint import file_sha256

FORMAT = "sluice.forecast/1"
TIME_UNITS = "hours since 1970-01-01"
# A channel whose analysis mean is this many normalisation stds from the training mean is in
# other units (the smallest such error, °C for K, is ≈ 14 std for 2 m temperature).
UNITS_SIGMA = 10.0


def parse_lead(text: str, step_hours: float, name: str = "--lead") -> int:
    """'240h' / '10d' / '240' (hours) → the number of model steps; UserError (naming the
    argument or config key ``name``) unless a positive multiple of the step."""
    s = str(text).strip().lower()
    scale = 24.0 if s.endswith("d") else 1.0
    try:
        hours = float(s.rstrip("hd")) * scale
    except ValueError:
        raise UserError(f"{name} {text!r}: expected hours like '240h' or days like '10d'"
                        ) from None
    steps = hours / step_hours
    if hours <= 0 or abs(steps - round(steps)) > 1e-9:
        raise UserError(f"{name} {text!r}: expected a positive multiple of the model's "
                        f"{step_hours:g} h step")
    return int(round(steps))


@dataclass
class Forecaster:
    """A trained global weather model, ready to roll out (`from_checkpoint`)."""

    task: object  # pipeline.tasks.weather.WeatherGlobalTask
    model: object  # torch.nn.Module, eval mode
    meta: dict
    checkpoint: Path
    checkpoint_sha256: str
    device: str = "cpu"

    @classmethod
    def from_checkpoint(cls, checkpoint, graph_cache_dir, device: str | None = None
                        ) -> Forecaster:
        """device: "cpu", "cuda", ...; default CUDA when there is one."""
        from graphs import graph_cache
        from pipeline import checkpoint as ckpt_io
        from pipeline.stages import graph_spec
        from pipeline.tasks.weather import WeatherGlobalTask

        checkpoint = Path(checkpoint)
        meta = ckpt_io.read_meta(checkpoint)
        if meta.get("task") not in (None, "weather_global"):
            raise DataError(checkpoint / "meta.json", "task", "a weather_global checkpoint",
                            repr(meta.get("task")))
        if "grid" not in meta:
            raise DataError(checkpoint / "meta.json", "grid", "a checkpoint that records its "
                            "grid (Sluice writes one since the forecast command; retrain)",
                            "absent")
        lat, lon = (np.asarray(meta["grid"][k], dtype=np.float64)
                    for k in ("latitude", "longitude"))
        graph = graph_cache(graph_spec(meta["config"], lat, lon), graph_cache_dir)
        if graph.spec_hash != meta.get("graph_spec_hash"):
            raise DataError(checkpoint / "meta.json", "graph_spec_hash",
                            f"the graph its config builds on its grid ({graph.spec_hash})",
                            f"{meta.get('graph_spec_hash')} (graph code or spec changed since "
                            "training)")
        task = WeatherGlobalTask.from_checkpoint_meta(meta, graph)
        check_normalisation(meta, checkpoint / "meta.json")
        model = task.build_model()
        model.load_state_dict(ckpt_io.load_state(checkpoint)["model"])
        import torch

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        task.to(device)
        model.to(device).eval()
        return cls(task=task, model=model, meta=meta, checkpoint=checkpoint,
                   checkpoint_sha256=file_sha256(checkpoint / "state.pt"), device=device)

    @property
    def variables(self) -> list[str]:
        """The channel specs the model reads and writes (config ``data.variables``)."""
        return list(self.meta["config"]["data"]["variables"])

    @property
    def step_hours(self) -> float:
        return self.task.step_hours

    @property
    def input_states(self) -> int:
        return self.task.input_states

    def check_analysis(self, analysis, where) -> None:
        """DataError naming the analysis and the checkpoint where channels or grid differ, or
        where a channel's spatial mean lies more than `UNITS_SIGMA` of the checkpoint's
        standard deviations from its normalisation mean: the analysis is in other units
        (hPa for Pa, geopotential height for geopotential, °C for K) and the model would see
        nonsense."""
        ckpt = self.checkpoint / "meta.json"
        if list(analysis.channels) != list(self.task.channels):
            raise DataError(where, "channels", f"the checkpoint's channels {self.task.channels} "
                            f"({ckpt})", f"{list(analysis.channels)}")
        for name, ours, theirs in (("latitude", self.task.lat, analysis.lat),
                                   ("longitude", self.task.lon, analysis.lon)):
            if ours.shape != theirs.shape or not np.allclose(ours, theirs, atol=1e-6):
                raise DataError(where, name, f"the checkpoint's grid: {ours.size} {name}s "
                                f"{ours[0]:g}..{ours[-1]:g} ({ckpt})",
                                f"{theirs.size} {name}s {theirs[0]:g}..{theirs[-1]:g}")
        mean, std = (np.asarray(self.meta["normalisation"][k], np.float64) for k in ("mean",
                                                                                     "std"))
        spatial = analysis.values.astype(np.float64).mean(axis=(0, 2, 3))  # [C]
        z = np.abs(spatial - mean) / std
        if (z > UNITS_SIGMA).any():
            c = int(np.argmax(z))
            raise DataError(where, self.task.channels[c], f"values like the checkpoint's "
                            f"normalisation (mean {mean[c]:.6g}, std {std[c]:.4g}; {ckpt})",
                            f"a mean of {spatial[c]:.6g}, {z[c]:.0f} std away: other units?")

    def rollout(self, states: np.ndarray, init_ns: int, n_steps: int) -> np.ndarray:
        """states [S, C, H, W] (the last S ≥ input_states analyses, the last at init_ns) →
        forecasts [n_steps, C, H, W] float32 at init + Δt .. init + n_steps Δt."""
        import torch

        def tensor(a):
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(self.device)

        x = tensor(states[-1:])
        prev = tensor(states[-2:-1]) if self.input_states == 2 else None
        dt = round(self.step_hours * 3.6e12)
        out = np.empty((n_steps, *states.shape[1:]), dtype=np.float32)
        with torch.no_grad():
            for k in range(n_steps):
                t = torch.tensor([init_ns + k * dt], dtype=torch.int64)
                x_next = self.task.forecast(self.model, x, t, prev).float()
                out[k] = x_next[0].cpu().numpy()
                prev, x = (x if self.input_states == 2 else None), x_next
        return out


def check_normalisation(meta: dict, where) -> None:
    """The checkpoint's normalisation: [C] finite values per statistic, std and diff_std > 0."""
    n = len(meta["channels"])
    for key in ("mean", "std", "diff_std"):
        v = np.asarray(meta["normalisation"].get(key, []), dtype=np.float64)
        positive = key != "mean"
        if v.shape != (n,) or not np.isfinite(v).all() or (positive and (v <= 0).any()):
            raise DataError(where, f"normalisation.{key}", f"{n} finite values"
                            + (" > 0" if positive else "") + " (one per channel)",
                            f"shape {v.shape}, min {v.min() if v.size else None}")


def forecast_dataset(forecasts: np.ndarray, channels, lat, lon, init, step_hours: float, *,
                     variable_attrs: dict[str, dict] | None = None, attrs: dict | None = None):
    """forecasts [K, C, H, W] (lat as given, any order) → an xarray Dataset in WB2's forecast
    layout (module docstring). Pressure-level variables share one ``level`` axis, the union of
    their levels; a level a variable lacks is NaN there."""
    import xarray as xr

    from pipeline.ingest import channel_variable_level
    from pipeline.names import CF_ATTRIBUTES

    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    order = np.argsort(lat, kind="stable")  # latitude ascending (WB2)
    forecasts = forecasts[:, :, order]
    k = forecasts.shape[0]
    leads = (np.arange(1, k + 1) * step_hours * 3600e9).astype("timedelta64[ns]")
    parsed = [channel_variable_level(c) for c in channels]
    levels = sorted({lv for _, lv in parsed if lv is not None})
    variables: dict[str, dict] = {}
    for c, (name, level) in enumerate(parsed):
        variables.setdefault(name, {})[level] = c
    data_vars = {}
    for name, by_level in variables.items():
        units, long_name, standard_name = CF_ATTRIBUTES.get(name, (None, name, None))
        var_attrs = {"long_name": long_name, "units": units, "standard_name": standard_name}
        var_attrs.update((variable_attrs or {}).get(name, {}))
        var_attrs = {a: v for a, v in var_attrs.items() if v is not None}
        if None in by_level:  # a surface variable
            values = forecasts[None, :, by_level[None]]
            dims = ("time", "prediction_timedelta", "latitude", "longitude")
        else:
            values = np.full((1, k, len(levels), *forecasts.shape[2:]), np.nan, np.float32)
            for level, c in by_level.items():
                values[0, :, levels.index(level)] = forecasts[:, c]
            dims = ("time", "prediction_timedelta", "level", "latitude", "longitude")
        data_vars[name] = (dims, values.astype(np.float32), var_attrs)
    coords = {
        "time": ("time", np.asarray([init], dtype="datetime64[ns]"),
                 {"long_name": "initial time of the forecast",
                  "standard_name": "forecast_reference_time"}),
        "prediction_timedelta": ("prediction_timedelta", leads,
                                 {"long_name": "lead time", "standard_name": "forecast_period"}),
        "latitude": ("latitude", lat[order], {"units": "degrees_north", "long_name": "latitude",
                                              "standard_name": "latitude"}),
        "longitude": ("longitude", lon, {"units": "degrees_east", "long_name": "longitude",
                                         "standard_name": "longitude"}),
    }
    if levels:
        coords["level"] = ("level", np.asarray(levels, dtype=np.int64 if all(
            float(v).is_integer() for v in levels) else np.float64),
            {"units": "hPa", "long_name": "pressure level", "positive": "down"})
    return xr.Dataset(data_vars, coords=coords,
                      attrs={"Conventions": "CF-1.8", "format": FORMAT, **(attrs or {})})


def forecast_encoding(ds) -> dict:
    """Fixed time units and dtypes, and one chunk per lead time, so bytes never depend on the
    run (xarray would otherwise pick the units from the values)."""
    enc = {"time": {"units": TIME_UNITS, "calendar": "proleptic_gregorian", "dtype": "int64"},
           "prediction_timedelta": {"units": "hours", "dtype": "int64"}}
    for name, var in ds.data_vars.items():
        enc[name] = {"chunks": (1, 1, *var.shape[2:]), "dtype": "float32"}
    return enc


def write_forecast(ds, dest, *, overwrite: bool = False, before_publish=None):
    """Publish ``ds`` at ``dest`` (a path or an object-store URL) atomically; returns dest.
    ``before_publish()``, if given, runs once the store is written, before it is published."""
    from pipeline.ingest import publish_destination

    with publish_destination(dest, overwrite=overwrite) as tmp:
        ds.to_zarr(os.fspath(tmp) if isinstance(tmp, Path) else tmp, mode="w", zarr_format=3,
                   consolidated=False, encoding=forecast_encoding(ds))
        if before_publish is not None:
            before_publish()
    return dest


def make_forecast(forecaster: Forecaster, source, init, n_steps: int, *,
                  name_map=None, regrid=None, fill_nan=None):
    """The analysis at ``init`` (and Δt before, for a two-state model) from ``source`` →
    the forecast Dataset (`forecast_dataset`). AnalysisPending while the analysis is not there."""
    from pipeline.analysis import read_analysis

    init = np.datetime64(init, "ns")
    dt = np.timedelta64(round(forecaster.step_hours * 3600), "s").astype("timedelta64[ns]")
    times = init - dt * np.arange(forecaster.input_states - 1, -1, -1)
    analysis = read_analysis(source, times, forecaster.variables, name_map=name_map,
                             regrid=regrid, fill_nan=fill_nan)
    forecaster.check_analysis(analysis, source)
    forecasts = forecaster.rollout(analysis.values, int(init.astype(np.int64)), n_steps)
    attrs = {"checkpoint_sha256": forecaster.checkpoint_sha256,
             "model": forecaster.meta["config"]["model"].get("processor", "gated"),
             "time_step_hours": forecaster.step_hours,
             "input_states": forecaster.input_states}
    return forecast_dataset(forecasts, forecaster.task.channels, analysis.lat, analysis.lon,
                            init, forecaster.step_hours, variable_attrs=analysis.attrs,
                            attrs=attrs)
