"""``sluice``: the pipeline's commands (`pipeline.cli`) and the forecast workflow's.

    sluice forecast --init-time 2026-11-29T00 --checkpoint PATH --lead 240h
                    [--analysis STORE] [--out DEST] [--overwrite] [--graph-cache DIR]
    sluice nightly [--config configs/nightly.yaml] [--date 2026-11-29] [key.sub=value ...]
    sluice extend-synthetic STORE --to 2020-03-02T00    (a synthetic analysis store, later)
    sluice submit [--address URL] [--wait] [...] -- sluice run CONFIG ...   (workflows/jobs.py)
    sluice jobs list | status ID | logs ID | stop ID  [--address URL]

Exit codes: 0 ok, 2 bad config or input, 75 the analysis has not arrived yet (retry later),
1 any other failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from pipeline.cli import add_stage_commands, normalise_argv, run_command
from pipeline.errors import AnalysisPending, UserError

WORKFLOW_COMMANDS = ("forecast", "nightly", "extend-synthetic", "submit", "jobs")
EPILOG = ("exit codes: 0 ok, 2 bad config or input, 75 analysis not there yet (retry), "
          "1 any other failure")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sluice", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a Sluice pipeline or one stage of it on Ray, or forecast from a "
                    "trained checkpoint.", epilog=EPILOG)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_stage_commands(sub)
    f = sub.add_parser("forecast", help="roll a checkpoint out from one analysis into a "
                       "WeatherBench2-layout forecast Zarr", epilog=EPILOG,
                       description="Roll a checkpoint out from the analysis at --init-time and "
                                   "publish the forecast Zarr atomically.")
    f.add_argument("--init-time", required=True, help="analysis time, e.g. 2026-11-29T00")
    f.add_argument("--checkpoint", required=True, type=Path,
                   help="a Sluice checkpoint directory (RUN/train/checkpoint)")
    f.add_argument("--lead", required=True, help="how far ahead: '240h' or '10d'")
    f.add_argument("--analysis", default=None,
                   help="ERA5-style store holding the analysis (default: the checkpoint's "
                        "data.source)")
    f.add_argument("--out", default=None,
                   help="forecast store, a path or an object-store URL (default: "
                        "forecasts/<init>.zarr)")
    f.add_argument("--regional-analysis", default=None,
                   help="a regional checkpoint (weather_regional): the store holding the "
                        "regional analysis on its native grid (e.g. RUN/ingest/"
                        "regional_raw.zarr); --analysis is then the global one")
    f.add_argument("--regional-out", default=None,
                   help="the regional forecast store (default: forecasts/<init>_regional.zarr)")
    f.add_argument("--overwrite", action="store_true", help="replace an existing forecast")
    f.add_argument("--graph-cache", type=Path, default=Path("runs") / ".graph_cache",
                   help="where graphs rebuilt from checkpoints are kept")
    n = sub.add_parser("nightly", help="forecast, publish, verify and report for one night "
                       "(catching up missed ones); safe to re-run", epilog=EPILOG,
                       description="The nightly forecasting workflow (workflows/nightly.py).")
    n.add_argument("--config", type=Path, default=Path("configs/nightly.yaml"),
                   help="nightly config (default: configs/nightly.yaml)")
    n.add_argument("--date", default=None,
                   help="init time to forecast, e.g. 2026-11-29 (00 UTC) or 2026-11-29T12 "
                        "(default: the newest cycle time in the analysis store)")
    n.add_argument("overrides", nargs="*", metavar="key.sub=value",
                   help="config overrides, e.g. forecast.lead_hours=120")
    e = sub.add_parser("extend-synthetic", help="extend a synthetic analysis store to a later "
                       "time (what a real store does as analyses arrive)", epilog=EPILOG)
    e.add_argument("store", type=Path, help="a store written by the synthetic source")
    e.add_argument("--to", required=True, help="its new last time, e.g. 2020-03-02T00")
    address_help = "the cluster's Jobs API, e.g. http://HEAD:8265 (default: $RAY_ADDRESS)"
    s = sub.add_parser("submit", help="submit a command to a Ray cluster as a Ray job",
                       epilog=EPILOG, description="Submit a command (after '--') through "
                       "Ray's Jobs API with this repository as its working directory.")
    s.add_argument("--address", default=None, help=address_help)
    s.add_argument("--wait", action="store_true",
                   help="follow the logs and exit with the job's exit code")
    s.add_argument("--working-dir", type=Path, default=Path("."),
                   help="directory uploaded as the job's working dir (default: .)")
    s.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment variable for the job (repeatable)")
    s.add_argument("--pip", action="append", default=[], metavar="REQUIREMENT",
                   help="pip requirement installed for the job (clusters with network)")
    s.add_argument("--uv", action="append", default=[], metavar="REQUIREMENT",
                   help="the same, installed with uv (faster; not together with --pip)")
    s.add_argument("--entrypoint-num-cpus", type=float, default=None)
    s.add_argument("--entrypoint-num-gpus", type=float, default=None)
    s.add_argument("--submission-id", default=None)
    s.add_argument("entrypoint", nargs=argparse.REMAINDER,
                   help="-- then the command, e.g. -- sluice run configs/smoke.yaml")
    j = sub.add_parser("jobs", help="list, inspect, follow or stop Ray jobs", epilog=EPILOG)
    j.add_argument("action", choices=("list", "status", "logs", "stop"))
    j.add_argument("job_id", nargs="?", default=None, help="submission id (not for list)")
    j.add_argument("--address", default=None, help=address_help)
    return p


def parse_init_time(text: str) -> np.datetime64:
    try:
        t = np.datetime64(text, "ns")
    except ValueError:
        raise UserError(f"--init-time {text!r}: expected an ISO time like 2026-11-29T00") from None
    if np.isnat(t):
        raise UserError(f"--init-time {text!r}: expected an ISO time like 2026-11-29T00")
    return t


def forecast_command(args) -> int:
    from rich.console import Console

    from pipeline.forecast import Forecaster, make_forecast, parse_lead, write_forecast
    from workflows.nightly import init_label

    console = Console(stderr=True)
    init = parse_init_time(args.init_time)
    from pipeline.regional_forecast import is_regional

    if is_regional(args.checkpoint):
        return regional_forecast_command(args, init, console)
    if args.regional_analysis or args.regional_out:
        raise UserError(f"--regional-analysis/--regional-out: {args.checkpoint} is a global "
                        "checkpoint (no regional model)")
    forecaster = Forecaster.from_checkpoint(args.checkpoint, args.graph_cache)
    n_steps = parse_lead(args.lead, forecaster.step_hours)
    data = forecaster.meta["config"]["data"]
    source = args.analysis or data.get("source")
    if source in (None, "synthetic"):
        raise UserError("--analysis: the checkpoint was trained on a synthetic source; name "
                        "the analysis store (e.g. RUN/ingest/raw.zarr)")
    out = args.out or str(Path("forecasts") / f"{init_label(init)}.zarr")
    ds = make_forecast(forecaster, source, init, n_steps, name_map=data.get("name_map") or None,
                       regrid=data.get("regrid"), fill_nan=data.get("fill_nan"))
    try:
        write_forecast(ds, out, overwrite=args.overwrite)
    except FileExistsError as e:
        raise UserError(f"--out {out}: {e}") from None
    console.print(f"forecast {init} + {n_steps} x {forecaster.step_hours:g} h → {out}")
    print(out)
    return 0


def regional_forecast_command(args, init, console) -> int:
    """`sluice forecast` of a weather_regional checkpoint: the global and the regional
    forecast (pipeline/regional_forecast.py), each published atomically."""
    from pipeline.forecast import parse_lead, write_forecast
    from pipeline.regional_forecast import RegionalForecaster, make_regional_forecast
    from workflows.nightly import init_label

    if args.analysis is None or args.regional_analysis is None:
        raise UserError("a regional checkpoint forecasts from two analyses: --analysis (the "
                        "global one) and --regional-analysis (the regional one on its native "
                        "grid, e.g. RUN/ingest/raw.zarr and RUN/ingest/regional_raw.zarr)")
    forecaster = RegionalForecaster.from_checkpoint(args.checkpoint, args.graph_cache)
    n_steps = parse_lead(args.lead, forecaster.task.step_hours)
    label = init_label(init)
    out = args.out or str(Path("forecasts") / f"{label}.zarr")
    regional_out = args.regional_out or str(Path("forecasts") / f"{label}_regional.zarr")
    if out == regional_out:
        raise UserError(f"--out and --regional-out are the same store: {out}")
    from pipeline.publish import refuse_existing

    for flag, dest in (("--out", out), ("--regional-out", regional_out)):
        try:  # both refused before either is written: no half of a forecast pair is published
            refuse_existing(dest, args.overwrite)
        except FileExistsError as e:
            raise UserError(f"{flag} {e}") from None
    g, r = make_regional_forecast(forecaster, args.analysis, args.regional_analysis, init,
                                  n_steps)
    for ds, dest in ((g, out), (r, regional_out)):
        write_forecast(ds, dest, overwrite=args.overwrite)
    console.print(f"forecast {init} + {n_steps} x {forecaster.task.step_hours:g} h → {out} "
                  f"(global), {regional_out} (regional)")
    print(out)
    print(regional_out)
    return 0


def nightly_command(args) -> int:
    from rich.console import Console

    from workflows.config import load_nightly_config
    from workflows.nightly import run_nightly

    cfg = load_nightly_config(args.config, args.overrides)
    record = run_nightly(cfg, args.date, Console(stderr=True))
    print(json.dumps({k: record.get(k) for k in ("init_time", "outputs", "forecasts",
                                                 "verification", "timings_s")}, indent=1))
    return 0


def extend_command(args) -> int:
    from pipeline.synthetic import extend_synthetic_era5

    end = parse_init_time(args.to)
    print(extend_synthetic_era5(args.store, end))
    return 0


def submit_command(args) -> int:
    from workflows import jobs

    entrypoint = args.entrypoint[1:] if args.entrypoint[:1] == ["--"] else args.entrypoint
    client, job_id = jobs.submit(entrypoint, address=args.address,
                                 working_dir=args.working_dir, env=jobs.parse_env(args.env),
                                 pip=args.pip, uv=args.uv,
                                 num_cpus=args.entrypoint_num_cpus,
                                 num_gpus=args.entrypoint_num_gpus,
                                 submission_id=args.submission_id)
    print(job_id, flush=True)
    if not args.wait:
        return 0
    status = jobs.wait(client, job_id)
    print(f"job {job_id}: {status}", file=sys.stderr)
    return jobs.exit_code(client, job_id)


def jobs_command(args) -> int:
    from workflows import jobs

    client = jobs.client(args.address)
    if args.action == "list":
        for info in sorted(client.list_jobs(), key=lambda i: i.start_time or 0):
            print(f"{info.submission_id}\t{info.status.value}\t{info.entrypoint}")
        return 0
    if not args.job_id:
        raise UserError(f"jobs {args.action}: give the job's submission id")
    if args.action == "status":
        print(client.get_job_status(args.job_id).value)
    elif args.action == "logs":
        print(client.get_job_logs(args.job_id), end="")
    else:
        print("stopped" if client.stop_job(args.job_id) else "not running")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(normalise_argv(list(sys.argv[1:] if argv is None else argv)))
    if args.command not in WORKFLOW_COMMANDS:
        return run_command(args)
    commands = {"forecast": forecast_command, "nightly": nightly_command,
                "extend-synthetic": extend_command, "submit": submit_command,
                "jobs": jobs_command}
    from workflows.lock import WorkflowBusy

    try:
        return commands[args.command](args)
    except WorkflowBusy as e:
        print(f"busy: {e}", file=sys.stderr)
        return e.exit_code
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except AnalysisPending as e:
        print(f"not yet: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
