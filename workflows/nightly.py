"""``sluice nightly``: forecast, publish atomically, verify, report — safe to re-run and to kill.

One run, for the init time D (``--date``; default: the newest cycle time the analysis store
holds), under ROOT's lock (`workflows.lock`):

1. bootstrap what is missing (`workflows.bootstrap`: checkpoint, climatology, analysis store);
2. forecast every cycle time from the first one (``cycle.first``, else the earliest forecast
   already published, else D) to D that has no published forecast yet, oldest first (a missed
   night is caught up in order), each published atomically at ROOT/forecasts/<init>.zarr
   (`pipeline.forecast`); an analysis that has not arrived is `AnalysisPending` (exit 75);
3. verify every published forecast at each lead whose valid time the analyses now cover and
   that the scorecard does not hold yet (`workflows.verify`), and upsert the rows into
   ROOT/scorecard.csv (`workflows.scoretable`: one row per (init, lead, variable, level));
4. draw the maps and lead-time curves and write the report for D (`workflows.report`);
5. write the run record ROOT/records/<init>/<start UTC>.json (inputs, checkpoint hash, timings,
   outputs, status) — outside the published stores, the one place a wall-clock time appears.

Published outputs are functions of (checkpoint, analyses, config): a re-run skips the forecasts
already published and rewrites identical bytes elsewhere. Every write goes to a temporary name
first; a run killed anywhere (`workflows.faults`) leaves at most temporaries, which the next run
removes before it starts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import traceback
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pipeline.errors import AnalysisPending, UserError
from workflows.bootstrap import analysis_store, bootstrap_checkpoint
from workflows.faults import fault_point
from workflows.lock import exclusive_lock

FORECASTS, REPORTS, RECORDS, SCORECARD = "forecasts", "reports", "records", "scorecard.csv"


def init_label(init) -> str:
    """2026-11-29T00 → '20261129T00' (file and directory names)."""
    return str(np.datetime64(init, "h")).replace("-", "")


def label_time(label: str) -> np.datetime64:
    return np.datetime64(f"{label[:4]}-{label[4:6]}-{label[6:8]}T{label[9:11]}", "ns")


def cycle_times(first, last, hours) -> list[np.datetime64]:
    """Init times at ``hours`` (UTC) of each day, first ≤ t ≤ last, in order."""
    day, out = np.datetime64(first, "D"), []
    while day <= np.datetime64(last, "D"):
        for h in hours:
            t = (day + np.timedelta64(h, "h")).astype("datetime64[ns]")
            if np.datetime64(first, "ns") <= t <= np.datetime64(last, "ns"):
                out.append(t)
        day += np.timedelta64(1, "D")
    return out


def newest_cycle_time(times: np.ndarray, hours) -> np.datetime64:
    on_cycle = [t for t in times if int((t - t.astype("datetime64[D]")) / np.timedelta64(1, "h"))
                in hours and t == t.astype("datetime64[h]")]
    if not on_cycle:
        raise UserError(f"the analysis store holds no time at the cycle hours {list(hours)} UTC")
    return np.datetime64(on_cycle[-1], "ns")


def published_forecasts(root: Path) -> dict[np.datetime64, Path]:
    folder = root / FORECASTS
    if not folder.is_dir():
        return {}
    # Only our names (YYYYMMDDTHH.zarr); temporaries start with a dot, anything else is not ours.
    return {label_time(p.name.removesuffix(".zarr")): p for p in sorted(folder.glob("*.zarr"))
            if re.fullmatch(r"\d{8}T\d{2}\.zarr", p.name)}


def remove_temporaries(root: Path) -> list[str]:
    """Delete what a killed run left under temporary names (never a published path)."""
    gone = []
    for folder in (root, root / FORECASTS, *sorted((root / REPORTS).glob("*"))):
        if not folder.is_dir():
            continue
        for p in folder.glob(".*"):
            if ".tmp" in p.name:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
                gone.append(str(p))
    return gone


def _target(date, times: np.ndarray, hours, source) -> np.datetime64:
    if date is None:
        return newest_cycle_time(times, hours)
    try:
        d = np.datetime64(date, "ns")
    except ValueError:
        raise UserError(f"--date {date!r}: expected a date or time like 2026-11-29 or "
                        "2026-11-29T00") from None
    hour = int((d - d.astype("datetime64[D]")) / np.timedelta64(1, "h"))
    if d != d.astype("datetime64[h]") or hour not in hours:
        raise UserError(f"--date {date}: not a cycle time (hours {list(hours)} UTC)")
    if d > times[-1]:
        raise AnalysisPending(source, d, times[-1])
    return d


def run_nightly(cfg, date=None, console=None) -> dict:
    """One nightly run (module docstring); returns its run record."""
    from rich.console import Console

    console = console or Console(stderr=True)
    root = cfg.root
    started = datetime.now(UTC)
    record: dict = {"format": "sluice.nightly_run/1", "config": cfg.model_dump(mode="json"),
                    "started_utc": started.isoformat(timespec="seconds"), "timings_s": {},
                    "status": "running"}
    with exclusive_lock(root):
        fault_point("locked")
        record["removed_temporaries"] = remove_temporaries(root)
        try:
            _run(cfg, date, console, record)
            record["status"] = "ok"
        except BaseException as exc:
            record["status"] = "pending" if isinstance(exc, AnalysisPending) else "failed"
            record["error"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            raise
        finally:
            _write_record(root, record)
    return record


@contextmanager
def _timed(record: dict, name: str):
    t0 = time.perf_counter()
    try:
        yield
    finally:
        record["timings_s"][name] = round(time.perf_counter() - t0, 3)


def _run(cfg, date, console, record: dict) -> None:
    from pipeline.analysis import analysis_times
    from pipeline.forecast import Forecaster, make_forecast, parse_lead, write_forecast

    root = cfg.root
    with _timed(record, "bootstrap"):
        checkpoint, climatology_path = bootstrap_checkpoint(cfg, console)
        forecaster = Forecaster.from_checkpoint(checkpoint, root / ".graph_cache")
        data = forecaster.meta["config"]["data"]
        source = analysis_store(cfg, forecaster.meta["config"])
        reads = {"name_map": data.get("name_map") or None, "regrid": data.get("regrid"),
                 "fill_nan": data.get("fill_nan")}
        times = analysis_times(source, reads["name_map"])
    fault_point("bootstrapped")
    hours = cfg.cycle.hours
    target = _target(date, times, hours, source)
    record["inputs"] = {"analysis": source, "analysis_newest": str(times[-1]),
                        "checkpoint": str(checkpoint), "checkpoint_sha256":
                        forecaster.checkpoint_sha256, "climatology": str(climatology_path)
                        if climatology_path else None}
    record["init_time"] = str(target)
    n_steps = parse_lead(f"{cfg.forecast.lead_hours}h", forecaster.step_hours,
                         name="forecast.lead_hours")

    published = published_forecasts(root)
    first = (np.datetime64(cfg.cycle.first, "ns") if cfg.cycle.first is not None
             else min(published, default=target))
    pending = [t for t in cycle_times(min(first, target), target, hours) if t not in published]
    record["forecasts"] = {"published_now": [], "already_published": len(published)}
    with _timed(record, "forecast"):
        for init in pending:  # oldest first: a missed night is caught up in order
            dest = root / FORECASTS / f"{init_label(init)}.zarr"
            ds = make_forecast(forecaster, source, init, n_steps, **reads)
            write_forecast(ds, dest, before_publish=lambda: fault_point("forecast_written"))
            fault_point("forecast_published")
            record["forecasts"]["published_now"].append(str(dest))
            console.print(f"forecast {init} → {dest}")
            published[init] = dest

    with _timed(record, "verify"):
        verified = _verify(cfg, published, source, forecaster, climatology_path, times[-1],
                           reads, record)
    with _timed(record, "report"):
        record["report"] = _report(cfg, target, published[target], forecaster, source, verified,
                                   reads)
    record["outputs"] = {"forecast": str(published[target]), "scorecard": str(root / SCORECARD),
                         "report": record["report"]}


def _verify(cfg, published, source, forecaster, climatology_path, newest, reads, record):
    from pipeline.climatology import open_climatology
    from workflows.scoretable import ScoreTable
    from workflows.verify import verify_forecast

    path = cfg.root / SCORECARD
    table = ScoreTable.read(path)
    climatology = open_climatology(climatology_path) if climatology_path else None
    done, rows = table.pairs(), []
    for init in sorted(published):
        rows += verify_forecast(published[init], source, forecaster.variables, newest=newest,
                                done=done, climatology=climatology, **reads)
    table.upsert(rows)
    record["verification"] = {"new_rows": len(rows), "rows": len(table.rows),
                              "pairs": len(table.pairs())}
    if rows or not path.exists():
        table.write(path, before_publish=lambda: fault_point("scorecard_written"))
    fault_point("scorecard_published")
    return table


def _report(cfg, target, forecast_path, forecaster, source, table, reads) -> str:
    from pipeline.analysis import read_analysis
    from pipeline.plots import plot_lead_curves
    from pipeline.scorecard import atomic_write_bytes
    from workflows.report import MapPanel, plot_maps, report_markdown
    from workflows.verify import forecast_values, iso, open_forecast

    out = cfg.root / REPORTS / init_label(target)
    out.mkdir(parents=True, exist_ok=True)
    channels = [c for c in cfg.report.variables if c in forecaster.task.channels]
    missing = [c for c in cfg.report.variables if c not in forecaster.task.channels]
    lat = forecaster.task.lat
    lead = cfg.report.map_lead_hours
    ds = open_forecast(forecast_path)
    leads = (ds["prediction_timedelta"].values / np.timedelta64(1, "h")).astype(int).tolist()
    if lead not in leads:
        raise UserError(f"report.map_lead_hours {lead}: not a lead of the forecast {leads}")
    k = leads.index(lead)
    new = forecast_values(ds, channels, lat, forecast_path)[k]  # [C, H, W]
    verified = sorted(init for init, h in table.pairs() if h == lead)
    error, error_init = None, None
    if verified:
        error_init = verified[-1]
        old = open_forecast(cfg.root / FORECASTS / f"{init_label(error_init)}.zarr")
        valid = np.datetime64(error_init, "ns") + np.timedelta64(lead, "h")
        specs = [forecaster.variables[forecaster.task.channels.index(c)] for c in channels]
        truth = read_analysis(source, [valid], specs, **reads).values[0]
        error = forecast_values(old, channels, lat, error_init)[k] - truth
    panels = [MapPanel(c, new[i], None if error is None else error[i], error_init)
              for i, c in enumerate(channels)]
    plot_maps(out / "maps.png", panels, lat, forecaster.task.lon, iso(target), lead)
    curves = table.lead_curves(channels)
    if curves["lead_time_hours"]:
        plot_lead_curves(out / "scores_by_lead.png", curves, channels)
    fault_point("plots_written")
    text = report_markdown(init=iso(target), lead_hours=lead,
                           checkpoint_sha256=forecaster.checkpoint_sha256,
                           forecast_path=os.path.relpath(forecast_path, out), curves=curves,
                           channels=channels, missing=missing)
    atomic_write_bytes(out / "report.md", text.encode())
    fault_point("report_published")
    return str(out / "report.md")


def _write_record(root: Path, record: dict) -> None:
    from pipeline.scorecard import atomic_write_bytes

    label = init_label(record["init_time"]) if record.get("init_time") else "unknown"
    name = record["started_utc"].replace(":", "").replace("-", "").replace("+0000", "Z")
    record["seconds"] = round(sum(record["timings_s"].values()), 3)
    atomic_write_bytes(root / RECORDS / label / f"{name}.json",
                       json.dumps(record, indent=1, default=str).encode())
