"""Shared machinery of the reproduction scripts: variants × seeds through `sluice run`, each
run directory linking one shared copy of the data stages, so every variant trains and scores
on the same bytes."""

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


def link_shared(run_dir: Path, shared: Path, stages=("ingest", "graph")) -> None:
    """Point the run's data stages at the shared ones (same config, same code → same
    fingerprints, so `sluice run` skips them after checking every output's hash)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for stage in stages:
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


def parser(variants: list[str], run_root: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=variants, choices=variants)
    p.add_argument("--run-root", type=Path, default=ROOT / "runs" / run_root)
    p.add_argument("--overrides", nargs="*", default=[],
                   help="extra config overrides for every variant and the shared data")
    p.add_argument("--report-only", action="store_true",
                   help="only read the run directories already there")
    return p


def run_variants(args, config: str, variants: dict[str, tuple[list[str], str]],
                 data_stage: str, shared_stages: tuple[str, ...] | dict[str, tuple[str, ...]],
                 ) -> dict[str, list[dict]]:
    """Make the shared data (`sluice DATA_STAGE`), then every variant × seed; returns per
    variant a list over seeds of {scores, train_s, params, run_dir}. ``shared_stages``: the
    stages every run links, or per variant."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    root = args.run_root.resolve()
    shared = root / "shared"
    if not args.report_only:
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        sluice([data_stage, config, *args.overrides, "--run-dir", str(shared)], env,
               root / "shared.log")
        print(f"shared data ready ({time.perf_counter() - t0:.0f} s)", flush=True)
    results: dict[str, list[dict]] = {}
    for name in args.variants:
        overrides, _ = variants[name]
        linked = shared_stages[name] if isinstance(shared_stages, dict) else shared_stages
        runs = []
        for seed in args.seeds:
            run_dir = root / name / f"seed{seed}"
            if not args.report_only:
                link_shared(run_dir, shared, linked)
                t0 = time.perf_counter()
                sluice(["run", config, f"seed={seed}", *args.overrides, *overrides,
                        "--run-dir", str(run_dir)], env, run_dir.with_suffix(".log"))
                print(f"{name} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
            manifest = json.loads((run_dir / "manifest.json").read_text())
            for stage in linked:  # the shared data, not a fresh copy
                if manifest["stages"][stage]["status"] != "skipped":
                    raise SystemExit(f"{run_dir}: stage {stage} re-ran; the shared data in "
                                     f"{shared} is stale (code or overrides changed?)")
            runs.append({"scores": json.loads((run_dir / "evaluate" / "scores.json").read_text()),
                         "train_s": manifest["stages"]["train"]["seconds"],
                         "params": parameter_count(run_dir / "train" / "checkpoint"),
                         "run_dir": run_dir})
        results[name] = runs
    return results
