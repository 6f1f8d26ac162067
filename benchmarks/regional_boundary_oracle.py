"""Diagnostic: how much of a nested-grid rollout's error comes from its boundary's quality?

    python benchmarks/regional_boundary_oracle.py RUN_DIR [RUN_DIR ...]

For each weather_regional run (its train and evaluate stages done), the trained regional model
is rolled out from the same test initial times as its evaluate stage, but driven at every lead
by the boundary store — the global model's *one-step* forecasts from the analysis, the boundary
quality it was trained with — instead of the global model's own rollout from the initial time
(what a real forecast has). Not a forecast anyone can make (it reads analyses after the initial
time); it separates the regional model's own error growth from what a degrading boundary adds.

Printed per run: box RMSE per lead for the reported variables, oracle vs the run's scores.json
(model driven by the global rollout) and the interpolated global forecast; one JSON line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPORTED = ("geopotential_500", "temperature_850", "2m_temperature", "mean_sea_level_pressure")


@torch.no_grad()
def oracle_scores(run: Path) -> dict:
    from pipeline import checkpoint as ckpt_io
    from pipeline.datasets import WeatherWindows
    from pipeline.metrics import LeadTimeScores
    from pipeline.stages import task_inputs
    from pipeline.tasks.weather_regional import RegionalWindows, WeatherRegionalTask

    ckpt = run / "train" / "checkpoint"
    meta = ckpt_io.read_meta(ckpt)
    cfg = meta["config"]
    inputs = task_inputs({s: run / s for s in ("ingest", "graph", "boundary")})
    task = WeatherRegionalTask(cfg, inputs)
    model = task.build_model()
    model.load_state_dict(ckpt_io.load_state(ckpt)["model"])
    model.eval()
    ev = cfg["evaluate"]
    k_max, test = ev["lead_steps"], tuple(str(t) for t in cfg["data"]["periods"]["test"])
    glob = WeatherWindows(inputs["prepared"], test, history=2, lead_steps=k_max)
    reg = RegionalWindows(inputs["regional"], inputs["boundary"], test, k_max, task.rows,
                          task.cols)
    position = {int(t): i for i, t in enumerate(reg.times.astype(np.int64))}
    inits = [position[int(glob.times[i].astype(np.int64))]
             for i in range(0, len(glob), ev.get("init_stride", 1))
             if int(glob.times[i].astype(np.int64)) in position][:ev["max_samples"]]
    box = lambda a: a[..., task.box_rows, :][..., task.box_cols]  # noqa: E731
    scores = LeadTimeScores(task.lat[task.box_rows], k_max, len(task.channels))
    dt = round(task.step_hours * 3.6e12)
    for a in range(0, len(inits), 8):
        samples = [reg[i] for i in inits[a:a + 8]]
        x0, truth, t0, b = (torch.stack([s[j] for s in samples]) for j in range(4))
        x = task.with_margin(x0[:, -1], b[:, 0])
        for k in range(k_max):
            # one-step boundaries: lead 1 at every step
            x = task.forecast(model, x, t0 + k * dt, b[:, k + 1], torch.ones_like(t0),
                              b[:, k]).float()
            o = box(truth[:, k]).numpy()
            scores.add(k, box(x).numpy(), o, o)  # ACC not used here
    rmse = scores.rmse()
    return {c: rmse[:, task.channels.index(c)].tolist() for c in REPORTED}, len(inits)


def main() -> int:
    figures = {}
    for arg in sys.argv[1:]:
        run = Path(arg)
        oracle, n = oracle_scores(run)
        doc = json.loads((run / "evaluate" / "scores.json").read_text())
        leads = [f"{h:g}" for h in doc["lead_time_hours"]]
        print(f"\n{run} ({n} initial times; scores.json: {doc['n_forecasts']})")
        for c in REPORTED:
            print(f"  {c}")
            for label, values in (
                    ("oracle boundary", oracle[c]),
                    ("global rollout", [doc["scores"]["model"][c][h]["rmse"] for h in leads]),
                    ("global interp.", [doc["scores"]["global_interpolated"][c][h]["rmse"]
                                        for h in leads])):
                print(f"    {label:<16}" + "".join(f"{v:>10.4g}" for v in values[1::2]))
            for h, v in zip(leads, oracle[c], strict=True):
                figures[f"{run.parent.name}_{run.name}_oracle_rmse{h}_{c}"] = v
    print(json.dumps({"benchmark": "regional_boundary_oracle", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
