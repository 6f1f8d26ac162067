"""Reproduce issue 5's OneForecast claims at small scale on the 5.625° synthetic atmosphere.

    python benchmarks/reproduce_oneforecast.py [--seeds 0 1 2] [--variants gated ungated ...]
                                               [--run-root runs/oneforecast] [--report-only]

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

import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reproduce import parser, run_variants, sd

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


def main() -> int:
    args = parser(list(VARIANTS), "oneforecast").parse_args()
    results = run_variants(args, CONFIG, VARIANTS, "graph", ("ingest", "graph"))
    runs = {name: [{"scores": r["scores"]["scores"], "n_forecasts": r["scores"]["n_forecasts"],
                    "train_s": r["train_s"], "params": r["params"]} for r in seeds]
            for name, seeds in results.items()}
    report(runs, args.seeds)
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
