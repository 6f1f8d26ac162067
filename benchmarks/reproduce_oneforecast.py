"""Reproduce issue 5's OneForecast claims at small scale on the 5.625° synthetic atmosphere.

    python benchmarks/reproduce_oneforecast.py [--seeds 0 1 2] [--variants gated ungated ...]
                                               [--run-root runs/oneforecast]

Each variant is `configs/oneforecast_small.yaml` plus a few overrides, trained through the real
pipeline (`sluice run`: 2 Ray Train workers, DDP over gloo, one core each) and scored on the
test year (2004) by the pipeline's WeatherBench2-style scorecard. The 4-year data and the graph
are made once (`sluice graph ... --run-dir RUN_ROOT/shared`, ≈ 10–30 min on 2 cores) and each
run directory links them, so every variant trains and scores on the same bytes.

Printed: per variant the parameter count, training seconds (the train stage, Ray Train start-up
included) and, at the 24 h lead, RMSE mean ± std over seeds for the reported variables, with
persistence, climatology and the linear AR beside it; the claim checks of issue 5; one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "configs/oneforecast_small.yaml"
# name: (overrides, what it is)
VARIANTS = {
    "gated": ([], "OneForecast layer as released (mean gate), residual target"),
    "ungated": (["model.processor=interaction"],
                "GraphCast interaction network, same width 64 and depth 4"),
    "ungated_matched": (["model.processor=interaction", "model.hidden=75"],
                        "GraphCast interaction network widened to the gated parameter count"),
    "direct": (["train.target=direct"], "gated, direct target (OneForecast's released code)"),
    "streams": (["model.gate_mode=streams"], "gated, per-stream gates (the paper's figure)"),
}
# WeatherBench2's headline variables and a few more levels/quantities.
REPORTED = ("geopotential_500", "temperature_850", "2m_temperature", "10m_u_component_of_wind",
            "mean_sea_level_pressure", "u_component_of_wind_850", "specific_humidity_700",
            "temperature_250")
BASELINES = ("persistence", "climatology", "linear_ar")
LEAD = "24"


def parameter_count(checkpoint: Path) -> int:
    import torch

    state = torch.load(checkpoint / "state.pt", map_location="cpu", weights_only=True)
    return int(sum(t.numel() for t in state["model"].values()))


def link_shared(run_dir: Path, shared: Path) -> None:
    """Point the run's ingest and graph stages at the shared ones (same config, same code →
    same fingerprints, so `sluice run` skips them after checking every output's hash)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for stage in ("ingest", "graph"):
        link = run_dir / stage
        if not link.is_symlink():
            if link.exists():
                raise SystemExit(f"{link} exists and is not a link to {shared / stage}")
            link.symlink_to((shared / stage).resolve(), target_is_directory=True)


def sluice(args: list[str], env: dict, log: Path) -> None:
    with open(log, "w") as f:
        done = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=ROOT, env=env,
                              stdout=f, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"sluice {' '.join(args)} failed ({done.returncode}); see {log}")


def sd(a: np.ndarray) -> float:
    return float(a.std(ddof=1)) if len(a) > 1 else 0.0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--run-root", type=Path, default=ROOT / "runs" / "oneforecast")
    p.add_argument("--report-only", action="store_true",
                   help="only read the run directories already there")
    args = p.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    root = args.run_root.resolve()
    shared = root / "shared"
    if not args.report_only:
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        sluice(["graph", CONFIG, "--run-dir", str(shared)], env, root / "shared.log")
        print(f"data and graph ready ({time.perf_counter() - t0:.0f} s)", flush=True)

    results: dict[str, dict] = {}
    for name in args.variants:
        overrides, _ = VARIANTS[name]
        runs = []
        for seed in args.seeds:
            run_dir = root / name / f"seed{seed}"
            if not args.report_only:
                link_shared(run_dir, shared)
                t0 = time.perf_counter()
                sluice(["run", CONFIG, f"seed={seed}", *overrides, "--run-dir", str(run_dir)],
                       env, run_dir.with_suffix(".log"))
                print(f"{name} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
            manifest = json.loads((run_dir / "manifest.json").read_text())
            for stage in ("ingest", "graph"):  # the shared data, not a fresh copy
                if manifest["stages"][stage]["status"] != "skipped":
                    raise SystemExit(f"{run_dir}: stage {stage} re-ran; the shared data in "
                                     f"{shared} is stale (code changed?)")
            scores = json.loads((run_dir / "evaluate" / "scores.json").read_text())
            runs.append({"scores": scores["scores"], "n_forecasts": scores["n_forecasts"],
                         "train_s": manifest["stages"]["train"]["seconds"],
                         "params": parameter_count(run_dir / "train" / "checkpoint")})
        results[name] = runs
    report(results, args.seeds)
    return 0


def rmse(runs: list[dict], forecaster: str, channel: str, lead: str = LEAD) -> np.ndarray:
    return np.array([r["scores"][forecaster][channel][lead]["rmse"] for r in runs])


def report(results: dict[str, list[dict]], seeds: list[int]) -> None:
    any_runs = next(iter(results.values()))
    channels = [c for c in REPORTED if c in any_runs[0]["scores"]["model"]]
    all_channels = list(any_runs[0]["scores"]["model"])
    figures: dict[str, float] = {"seeds": len(seeds), "cores": os.cpu_count() or 0,
                                 "n_forecasts": any_runs[0]["n_forecasts"]}
    print(f"\n24 h RMSE on the test year, mean ± std over seeds {seeds} "
          f"({any_runs[0]['n_forecasts']} initial times)")
    print(f"{'variant':<17}{'params':>9}{'train s':>9}  " + "".join(f"{c[:16]:>22}" for c in
                                                                  channels))
    for name, runs in results.items():
        train_s = np.array([r["train_s"] for r in runs])
        cells = [f"{rmse(runs, 'model', c).mean():>12.4g} ± {sd(rmse(runs, 'model', c)):<7.2g}"
                 for c in channels]
        print(f"{name:<17}{runs[0]['params']:>9,}{train_s.mean():>9.0f}  " + "".join(cells))
        figures[f"{name}_parameters"] = runs[0]["params"]
        figures[f"{name}_train_seconds_max"] = float(train_s.max())
        for c in channels:
            figures[f"{name}_rmse24_{c}"] = float(rmse(runs, "model", c).mean())
            figures[f"{name}_rmse24_std_{c}"] = sd(rmse(runs, "model", c))
        # channels of all 69 at which the model is >= 20 % below persistence at 24 h
        skill = np.array([(1 - rmse(runs, "model", c) / rmse(runs, "persistence", c)).mean()
                          for c in all_channels])
        figures[f"{name}_channels_20pct_below_persistence"] = int((skill >= 0.2).sum())
    for b in BASELINES:
        print(f"{b:<17}{'':>18}  " + "".join(f"{rmse(any_runs, b, c).mean():>22.4g}"
                                             for c in channels))
        for c in channels:
            figures[f"{b}_rmse24_{c}"] = float(rmse(any_runs, b, c).mean())

    print("\nSkill vs persistence at 24 h (1 − RMSE/RMSE_persistence), mean ± std over seeds")
    for name, runs in results.items():
        cells = []
        for c in channels:
            s = 1 - rmse(runs, "model", c) / rmse(runs, "persistence", c)
            cells.append(f"{s.mean():>14.3f} ± {sd(s):<5.3f}")
            figures[f"{name}_skill24_{c}"] = float(s.mean())
        print(f"{name:<17}" + "".join(cells))

    if "gated" in results:
        runs = results["gated"]
        checks = {
            "gated_20pct_below_persistence_every_variable": all(
                (1 - rmse(runs, "model", c) / rmse(runs, "persistence", c)).mean() >= 0.2
                for c in channels),
            "gated_below_linear_ar_every_variable": all(
                rmse(runs, "model", c).mean() < rmse(runs, "linear_ar", c).mean()
                for c in channels),
            "gated_below_climatology_every_variable": all(
                rmse(runs, "model", c).mean() < rmse(runs, "climatology", c).mean()
                for c in channels),
        }
        for other in ("ungated", "ungated_matched", "direct", "streams"):
            if other in results:
                wins = sum(rmse(runs, "model", c).mean() < rmse(results[other], "model", c).mean()
                           for c in channels)
                checks[f"gated_beats_{other}_variables"] = f"{wins}/{len(channels)}"
        print("\nClaims:")
        for k, v in checks.items():
            print(f"  {k}: {v}")
            if isinstance(v, bool):
                figures[k] = int(v)
    print(json.dumps({"benchmark": "oneforecast_reproduction", "figures": figures}))


if __name__ == "__main__":
    raise SystemExit(main())
