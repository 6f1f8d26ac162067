"""Reproduce the smoke result over seeds: does the gated GNN beat persistence at 6 h?

    python benchmarks/reproduce_smoke.py --seeds 0 1 2 [--run-root runs/repro]

Runs `sluice run configs/smoke.yaml seed=S` per seed (each its own run directory, on an embedded
local Ray cluster), then prints per-variable test RMSE as mean ± std over seeds for the model and
persistence, the model's parameter count, and one JSON line.
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


def parameter_count(checkpoint: Path) -> int:
    import torch

    state = torch.load(checkpoint / "state.pt", map_location="cpu", weights_only=True)
    return int(sum(t.numel() for t in state["model"].values()))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--run-root", type=Path, default=ROOT / "runs" / "repro")
    p.add_argument("--config", default="configs/smoke.yaml")
    args = p.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    scores, seconds = [], []
    for seed in args.seeds:
        run_dir = args.run_root / f"seed{seed}"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline.cli", "run", args.config, f"seed={seed}",
                        "--run-dir", str(run_dir)], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        seconds.append(time.perf_counter() - t0)
        scores.append(json.loads((run_dir / "evaluate" / "scores.json").read_text()))
    n_params = parameter_count(args.run_root / f"seed{args.seeds[0]}" / "train" / "checkpoint")
    figures = {"parameters": n_params, "seeds": len(args.seeds),
               "seconds_per_run": float(np.mean(seconds))}
    print(f"{'variable':<26}{'model RMSE':>22}{'persistence RMSE':>20}{'skill':>16}")
    for var in scores[0]["variables"]:
        model = np.array([s["variables"][var]["rmse"]["model"] for s in scores])
        persist = np.array([s["variables"][var]["rmse"]["persistence"] for s in scores])
        skill = 1 - model / persist
        sd = (lambda a: a.std(ddof=1) if len(a) > 1 else 0.0)  # noqa: E731
        print(f"{var:<26}{model.mean():>12.4g} ± {sd(model):<7.2g}"
              f"{persist.mean():>20.4g}{skill.mean():>9.3f} ± {sd(skill):.3f}")
        figures[f"skill_{var}"] = float(skill.mean())
        figures[f"rmse_model_{var}"] = float(model.mean())
        figures[f"rmse_persistence_{var}"] = float(persist.mean())
    print(f"parameters: {n_params:,}; {np.mean(seconds):.0f} s per run on {os.cpu_count()} cores")
    print(json.dumps({"benchmark": "smoke_skill", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
