"""Score forecasters over lead times with WeatherBench2 conventions, and write the scorecard.

Driver (`score_forecasters`). A map-style dataset yields (inputs [h, C, H, W], targets
[K, C, H, W], time_ns) — `pipeline.datasets.WeatherWindows(prepared, period, history=h,
lead_steps=K)` — in physical units. Each forecaster (interface: `pipeline.baselines`) is rolled
out autoregressively from every sample's initial state x_0 = inputs[-1] (x_prev = inputs[-2]
when h ≥ 2):

    x̂_k = step(x̂_{k-1}, x̂_{k-2}, t_0 + (k − 1) Δt),   x̂_0 = x_0, x̂_{-1} = x_{-1},  k = 1..K

and x̂_k is scored against targets[k − 1] with the climatology at t_0 + k Δt
(`pipeline.metrics.LeadTimeScores`: RMSE, bias, ACC per lead and channel). Nothing but the
running sums and each forecaster's last two states is kept.

Outputs (`write_scorecard`), each written to a temporary file in the same directory then
renamed: ``scores.json`` (forecaster → channel → lead hours → {rmse, acc, bias}, with the
conventions, channels' variable/level, init times and climatology provenance), ``scorecard.csv``
(one row per forecaster, channel, lead: the same numbers, full precision) and
``scores_by_lead.png`` (RMSE and ACC against lead time for the headline variables, one line per
forecaster).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich.progress import track
from torch.utils.data import DataLoader, default_collate

from pipeline.baselines import step_ns
from pipeline.climatology import Climatology
from pipeline.errors import DataError
from pipeline.ingest import channel_variable_level
from pipeline.metrics import LeadTimeScores

FORMAT = "sluice.scores/1"
# WB2's headline variables (z500, t850, t2m, u10, msl), plotted when present.
HEADLINE_CHANNELS = ("geopotential_500", "temperature_850", "2m_temperature",
                     "10m_u_component_of_wind", "mean_sea_level_pressure")
CONVENTIONS = {
    "latitude_weights": "WeatherBench2 cell areas sin(phi_upper) - sin(phi_lower), mean 1",
    "rmse": "WeatherBench2: sqrt(mean over init times of the latitude-weighted spatial MSE)",
    "bias": "mean over init times of the latitude-weighted spatial mean of forecast - truth",
    "acc": "WeatherBench2 ACC: per init time sum(w f'o') / sqrt(sum(w f'^2) sum(w o'^2)), "
           "f' = forecast - clim, o' = truth - clim (uncentred), then the mean over init times",
    "lead_time": "valid time - init time, hours; lead k is the k-th autoregressive step",
    "units": "physical units of each channel (bias and RMSE); ACC dimensionless",
}
CSV_COLUMNS = ("forecaster", "channel", "variable", "level_hpa", "lead_time_hours", "rmse", "acc",
               "bias", "n_forecasts")


class StepForecaster:
    """Any step function as a forecaster: ``fn(x_t, x_prev, time_ns) → x_{t+1}`` (e.g. a
    model: ``StepForecaster("model", lambda x, prev, t: task.forecast(model, x, t))``)."""

    def __init__(self, name: str, fn, *, history: int = 1, description: str = ""):
        self.name, self.fn, self.history = name, fn, history
        self.description = description or name

    def step(self, x_t, x_prev, time_ns):
        return self.fn(x_t, x_prev, time_ns)


@dataclass
class Scores:
    """Scores [F, K, C] of F forecasters at K lead times for C channels."""

    forecasters: list[str]
    channels: list[str]
    lead_hours: list[float]
    rmse: np.ndarray
    acc: np.ndarray
    bias: np.ndarray
    n_forecasts: int
    init_times: list[str]
    descriptions: dict[str, str] = field(default_factory=dict)
    climatology: dict = field(default_factory=dict)

    def value(self, metric: str, forecaster: str, channel: str, lead_index: int) -> float | None:
        v = float(getattr(self, metric)[self.forecasters.index(forecaster), lead_index,
                                        self.channels.index(channel)])
        return None if math.isnan(v) else v

    def rows(self) -> list[dict]:
        """One row per forecaster, channel, lead (CSV_COLUMNS); NaN → None."""
        rows = []
        for f in self.forecasters:
            for c in self.channels:
                variable, level = channel_variable_level(c)
                for k, hours in enumerate(self.lead_hours):
                    rows.append({"forecaster": f, "channel": c, "variable": variable,
                                 "level_hpa": level, "lead_time_hours": hours,
                                 **{m: self.value(m, f, c, k) for m in ("rmse", "acc", "bias")},
                                 "n_forecasts": self.n_forecasts})
        return rows

    def to_json(self, meta: dict | None = None) -> dict:
        lead_keys = [f"{h:g}" for h in self.lead_hours]
        scores = {f: {c: {key: {m: self.value(m, f, c, k) for m in ("rmse", "acc", "bias")}
                          for k, key in enumerate(lead_keys)}
                      for c in self.channels}
                  for f in self.forecasters}
        out = {
            "format": FORMAT,
            "conventions": CONVENTIONS,
            "lead_time_hours": list(self.lead_hours),
            "n_forecasts": self.n_forecasts,
            "init_times": {"first": self.init_times[0], "last": self.init_times[-1]},
            "climatology": self.climatology,
            "forecasters": {f: self.descriptions.get(f, f) for f in self.forecasters},
            "channels": {c: dict(zip(("variable", "level_hpa"), channel_variable_level(c),
                                     strict=True)) for c in self.channels},
            "scores": scores,
            "variables": self._first_lead_summary(),
        }
        if meta:
            out["run"] = meta
        return out

    def _first_lead_summary(self) -> dict:
        """Per channel, each forecaster's scores at the first lead (the layout `sluice run`,
        the smoke test and benchmarks/reproduce_smoke.py read), with skill vs persistence."""
        out = {}
        for c in self.channels:
            v = {m: {f: self.value(m, f, c, 0) for f in self.forecasters}
                 for m in ("rmse", "acc", "bias")}
            model, persist = v["rmse"].get("model"), v["rmse"].get("persistence")
            if model is not None and persist:
                v["skill_vs_persistence"] = 1.0 - model / persist
            out[c] = v
        return out


def _check_grid(sample, channels: list[str], lat: np.ndarray, climatology: Climatology,
                where) -> tuple[int, int]:
    """(history h, leads K) of the dataset's samples; DataError where shapes or grids differ."""
    inputs, targets, _ = sample
    c, n_lat = len(channels), len(lat)
    if inputs.ndim != 4 or tuple(inputs.shape[1:3]) != (c, n_lat):
        raise DataError(where, "inputs", f"[h, C={c}, H={n_lat}, W] (channels and latitudes "
                        "given to the driver)", f"shape {tuple(inputs.shape)}")
    if targets.ndim != 4 or tuple(targets.shape[1:]) != tuple(inputs.shape[1:]):
        raise DataError(where, "targets", f"[K, {', '.join(map(str, inputs.shape[1:]))}]",
                        f"shape {tuple(targets.shape)}")
    grid = (len(climatology.lat), len(climatology.lon))
    if grid != tuple(inputs.shape[2:]) or not np.allclose(climatology.lat, lat, atol=1e-6):
        raise DataError(climatology.source, "latitude/longitude",
                        f"the evaluation grid {n_lat} x {inputs.shape[3]} with latitudes "
                        f"{lat[0]:g}..{lat[-1]:g}", f"{grid[0]} x {grid[1]} with latitudes "
                        f"{climatology.lat[0]:g}..{climatology.lat[-1]:g}")
    return int(inputs.shape[0]), int(targets.shape[0])


def score_forecasters(dataset, forecasters, channels, lat, climatology: Climatology, *,
                      step_hours: float, max_samples: int | None = None, init_stride: int = 1,
                      batch_size: int = 4, progress: bool = False) -> Scores:
    """Roll every forecaster out from every ``init_stride``-th sample (the first ``max_samples``
    of them; default: all) and score each lead (module docstring). lat: [H] degrees (either
    order); channels: the names of the dataset's C channels, all of which the climatology must
    hold.
    """
    channels, lat = list(channels), np.asarray(lat, dtype=np.float64)
    names = [f.name for f in forecasters]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"forecasters: expected at least one, with distinct names; got {names}")
    where = getattr(dataset, "prepared_path", type(dataset).__name__)
    if init_stride < 1:
        raise ValueError(f"init_stride must be >= 1, got {init_stride}")
    inits = range(0, len(dataset), init_stride)
    inits = inits if max_samples is None else inits[:max_samples]
    n = len(inits)
    if n == 0:
        raise DataError(where, "period", "at least one forecast window (history + lead steps) "
                        f"inside {getattr(dataset, 'period', 'the period')}", "none")
    climatology.channel_index(channels)
    history, n_leads = _check_grid(dataset[0], channels, lat, climatology, where)
    for f in forecasters:
        if f.history > history:
            raise ValueError(f"forecaster '{f.name}' needs {f.history} input states; the "
                             f"dataset gives {history} (build it with history={f.history})")
    dt = step_ns(step_hours)
    scores = {name: LeadTimeScores(lat, n_leads, len(channels)) for name in names}
    loader = DataLoader(dataset, batch_size=batch_size, sampler=inits,
                        collate_fn=getattr(dataset, "collate", None) or default_collate)
    first = last = None
    for inputs, targets, t0 in track(loader, description="scoring", disable=not progress):
        t0 = np.asarray(t0, dtype=np.int64)  # [B] init times
        first = t0.min() if first is None else min(first, t0.min())
        last = t0.max() if last is None else max(last, t0.max())
        states = {name: (inputs[:, -1], inputs[:, -2] if history >= 2 else None)
                  for name in names}
        for k in range(n_leads):
            clim = climatology.at(t0 + (k + 1) * dt, channels)  # [B, C, H, W] at valid time
            truth = targets[:, k].numpy()
            for f in forecasters:
                x_t, x_prev = states[f.name]
                with torch.no_grad():
                    x_next = f.step(x_t, x_prev, torch.from_numpy(t0 + k * dt))
                x_next = torch.as_tensor(x_next).detach().to("cpu", torch.float32)
                if tuple(x_next.shape) != tuple(x_t.shape):
                    raise ValueError(f"forecaster '{f.name}': step returned shape "
                                     f"{tuple(x_next.shape)}, expected {tuple(x_t.shape)}")
                scores[f.name].add(k, x_next.numpy(), truth, clim)
                states[f.name] = (x_next, x_t)
    stack = lambda m: np.stack([getattr(scores[f], m)() for f in names])  # noqa: E731
    to_str = lambda t: str(np.int64(t).astype("datetime64[ns]"))  # noqa: E731
    return Scores(
        forecasters=names, channels=channels,
        lead_hours=[float(step_hours) * (k + 1) for k in range(n_leads)],
        rmse=stack("rmse"), acc=stack("acc"), bias=stack("bias"), n_forecasts=n,
        init_times=[to_str(first), to_str(last)],
        descriptions={f.name: getattr(f, "description", f.name) for f in forecasters},
        climatology={k: climatology.attrs.get(k) for k in (
            "window_days", "window", "train_period", "source", "source_data_sha256")
            if k in climatology.attrs} | {"path": climatology.source},
    )


# -- writing ------------------------------------------------------------------------------------
def atomic_write_bytes(path, data: bytes, *, before_publish=None) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place
    (``before_publish()``, if given, runs between the two: a fault-injection point)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory (so the rename is atomic); the pid keeps concurrent writers apart, and a
    # plain open() gives the file the usual umask permissions (mkstemp's are 0600).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        if before_publish is not None:
            before_publish()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_scores_json(path, scores: Scores, meta: dict | None = None) -> Path:
    # allow_nan=False: NaN is not JSON; every undefined score is already None (null).
    text = json.dumps(scores.to_json(meta), indent=1, allow_nan=False)
    return atomic_write_bytes(path, text.encode())


def write_scorecard_csv(path, scores: Scores) -> Path:
    """One row per (forecaster, channel, lead); undefined values (NaN) as empty cells."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in scores.rows():
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return atomic_write_bytes(path, buf.getvalue().encode())


def headline_channels(channels: list[str], limit: int = 5) -> list[str]:
    """The WB2 headline channels present, else the first ``limit`` channels."""
    present = [c for c in HEADLINE_CHANNELS if c in channels]
    return present or list(channels[:limit])


def write_scorecard(out_dir, scores: Scores, meta: dict | None = None, *,
                    plot: bool = True) -> dict[str, Path]:
    """scores.json, scorecard.csv and (if ``plot``) scores_by_lead.png in ``out_dir``."""
    out_dir = Path(out_dir)
    paths = {"json": write_scores_json(out_dir / "scores.json", scores, meta),
             "csv": write_scorecard_csv(out_dir / "scorecard.csv", scores)}
    if plot:
        from pipeline.plots import plot_lead_curves

        paths["png"] = plot_lead_curves(out_dir / "scores_by_lead.png", scores.to_json(),
                                        headline_channels(scores.channels))
    return paths
