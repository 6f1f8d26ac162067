"""Skill or activity? Issue 9's arms scored after a linear calibration towards the climatology.

    python benchmarks/regional_calibration.py [--run-root runs/regional] [--seeds 0 1 2]
                                              [--variants nested no_boundary]

Past the box's predictability (docs/results.md: q700 from 54 h) every forecast of the
reproduction is worse than the regional climatology. Its RMSE there then measures how active a
forecast is as much as what it knows. Model output statistics (MOS) separate the two: for each
lead k and channel c, a regression of the truth's anomaly on the forecast's over the
validation year's forecasts and the box's nodes (latitude weights w, as in the scores),

    f' = f − clim, o' = o − clim (clim at the valid time),
    a_kc = cov_w(f', o') / var_w(f'),   b_kc = mean_w(o') − a_kc mean_w(f'),

and on the test year f_cal = clim + a_kc f' + b_kc: the forecast's anomaly scaled by how much
of it verified a year earlier, its mean error removed. Nothing is fitted on the test year. The
same calibration applies to both arms and to the interpolated global forecast alike.

Reads the reproduction's runs (`benchmarks/reproduce_regional.py`: RUN_ROOT/ARM/seedN with
their train checkpoint), rolls each out over the validation and test years as its evaluate
stage does (`WeatherRegionalTask.box_fields`), and prints per arm the calibrated RMSE
inside the box (mean ± std over seeds), the uncalibrated RMSE's largest relative difference
from the run's own scores.json (the same forecasts: it should be 0), the reproduction's claim
checks on the calibrated forecasts, and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reproduce import sd
from benchmarks.reproduce_regional import LEADS, REPORTED, claim_checks, metric
from pipeline.metrics import lat_weights


class LinearCalibration:
    """Per lead and channel, the weighted least-squares line o' ≈ a f' + b, accumulated
    forecast by forecast (``add``), then applied (``apply``). Fields [B, C, H, W] with the
    latitude weights of ``lat_deg`` [H] (mean 1, `pipeline.metrics.lat_weights`)."""

    def __init__(self, lat_deg: np.ndarray, n_leads: int, n_channels: int):
        self.w = lat_weights(lat_deg)[:, None]  # [H, 1]
        # Σw, Σw f', Σw o', Σw f'², Σw f'o' per lead and channel
        self.sums = np.zeros((5, n_leads, n_channels))

    def add(self, k: int, forecast: np.ndarray, truth: np.ndarray, clim: np.ndarray) -> None:
        f = np.asarray(forecast, np.float64) - clim
        o = np.asarray(truth, np.float64) - clim
        w = np.broadcast_to(self.w, f.shape)
        for i, v in enumerate((w, w * f, w * o, w * f * f, w * f * o)):
            self.sums[i, k] += v.sum(axis=(0, 2, 3))

    def coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """(a, b): [K, C] each. A forecast with no anomaly variance gets a = 0 (climatology
        plus the mean anomaly)."""
        n, sf, so, sff, sfo = self.sums
        var = sff - sf * sf / n
        cov = sfo - sf * so / n
        a = np.where(var > 0, cov / np.where(var > 0, var, 1.0), 0.0)
        return a, (so - a * sf) / n

    def apply(self, k: int, forecast: np.ndarray, clim: np.ndarray) -> np.ndarray:
        a, b = self.coefficients()
        shape = (1, -1, 1, 1)
        f = np.asarray(forecast, np.float64) - clim
        return clim + a[k].reshape(shape) * f + b[k].reshape(shape)


def run_inputs(run_dir: Path) -> dict[str, str]:
    """The paths the run's tasks read, from its stage directories."""
    from pipeline.stages import task_inputs

    stages = {name: run_dir / name for name in ("ingest", "graph", "boundary")
              if (run_dir / name).is_dir()}
    return task_inputs(stages)


def calibrated_scores(run_dir: Path, fit_split: str = "val") -> dict:
    """One run: calibration fitted on the forecasts from ``data.periods[fit_split]`` (the
    validation year; "train" or "test", in-sample, for tests), scored on the test year.
    Returns {"scores": {"scores": {forecaster: {channel: {lead: {"rmse", "acc"}}}}},
    "raw_vs_stored": the largest relative RMSE difference from its scores.json}, forecasters
    ``model`` and ``global_interpolated`` calibrated, as `reproduce_regional.metric` reads."""
    from pipeline.climatology import open_climatology
    from pipeline.evaluate import load_checkpoint_task
    from pipeline.metrics import LeadTimeScores
    from pipeline.stages import CHECKPOINT

    task, model = load_checkpoint_task(run_dir / "train" / CHECKPOINT, run_inputs(run_dir))
    clim = open_climatology(task.inputs["regional_climatology"])
    max_samples = task.cfg["evaluate"]["max_samples"]
    k_max, n_c = task.cfg["evaluate"]["lead_steps"], len(task.channels)
    box_lat = task.lat[task.box_rows]
    names = ("model", "global_interpolated")
    fits = {n: LinearCalibration(box_lat, k_max, n_c) for n in names}
    raw = {n: LeadTimeScores(box_lat, k_max, n_c) for n in names}
    cal = {n: LeadTimeScores(box_lat, k_max, n_c) for n in names}

    def fields(split: str):
        """(lead k, forecaster, f, o, c) inside the box, as the evaluation scores them."""
        windows = task.forecast_windows(split, max_samples)
        for k, o, c, forecasts in task.box_fields(model, windows, clim):
            for name in names:
                yield k, name, forecasts[name], o, c

    for k, name, f, o, c in fields(fit_split):
        fits[name].add(k, f, o, c)
    for k, name, f, o, c in fields("test"):
        raw[name].add(k, f, o, c)
        cal[name].add(k, fits[name].apply(k, f, c), o, c)
    leads = [f"{task.step_hours * (k + 1):g}" for k in range(k_max)]

    def as_dict(scores: dict) -> dict:
        out = {}
        for n, s in scores.items():
            rmse, acc = s.rmse(), s.acc()  # [K, C]
            out[n] = {ch: {lead: {"rmse": float(rmse[k, i]), "acc": float(acc[k, i])}
                           for k, lead in enumerate(leads)}
                      for i, ch in enumerate(task.channels)}
        return out

    stored = json.loads((run_dir / "evaluate" / "scores.json").read_text())["scores"]
    unc = as_dict(raw)
    diff = max(abs(unc[n][ch][lead]["rmse"] / stored[n][ch][lead]["rmse"] - 1)
               for n in names for ch in task.channels for lead in leads)
    a, _ = fits["model"].coefficients()
    return {"scores": {"scores": as_dict(cal)}, "raw_vs_stored": diff,
            "slope": {ch: {lead: float(a[k, i]) for k, lead in enumerate(leads)}
                      for i, ch in enumerate(task.channels)}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run-root", type=Path, default=Path("runs/regional"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=["nested", "no_boundary"])
    args = p.parse_args()
    results: dict[str, list[dict]] = {}
    for name in args.variants:
        results[name] = []
        for seed in args.seeds:
            run_dir = args.run_root / name / f"seed{seed}"
            if not (run_dir / "train").is_dir():
                raise SystemExit(f"{run_dir}: no train stage (run benchmarks/"
                                 f"reproduce_regional.py first)")
            t0 = time.perf_counter()
            results[name].append(calibrated_scores(run_dir))
            print(f"{name} seed {seed}: {time.perf_counter() - t0:.0f} s, uncalibrated RMSE vs "
                  f"its scores.json: max relative difference "
                  f"{results[name][-1]['raw_vs_stored']:.2g}", flush=True)
    any_runs = next(iter(results.values()))
    channels = [c for c in REPORTED if c in any_runs[0]["scores"]["scores"]["model"]]
    figures: dict[str, float] = {"seeds": len(args.seeds), "raw_vs_stored_max": max(
        r["raw_vs_stored"] for runs in results.values() for r in runs)}
    print(f"\nCalibrated RMSE inside the box, test year; fitted on the validation year; "
          f"mean ± std over seeds {args.seeds}")
    print("| variable | forecast | " + " | ".join(f"{lead} h" for lead in LEADS) + " |")
    print("|---|---|" + "---|" * len(LEADS))
    for c in channels:
        rows = [(name, runs, "model") for name, runs in results.items()]
        rows.append(("global_interpolated (calibrated)", any_runs, "global_interpolated"))
        for label, runs, f in rows:
            cells = []
            for lead in LEADS:
                v = metric(runs, f, c, lead, "rmse")
                cells.append(f"{v.mean():.4g} ± {sd(v):.2g}" if f == "model"
                             else f"{v.mean():.4g}")
                figures[f"{label.split()[0]}_cal_rmse{lead}_{c}"] = float(v.mean())
            print(f"| {c} | {label} | " + " | ".join(cells) + " |")
    for name, runs in results.items():
        slope = np.array([r["slope"]["specific_humidity_700"]["72"] for r in runs])
        print(f"{name}: q700 72 h slope a = {slope.mean():.3f} ± {sd(slope):.2g}")
    if "nested" in results:
        print("\nClaim checks on the calibrated forecasts (benchmarks/reproduce_regional.py):")
        for k, v in claim_checks(results, channels).items():
            print(f"  {k}: {v}")
            if isinstance(v, int | float):
                figures[k] = v
    print(json.dumps({"benchmark": "regional_calibration", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
