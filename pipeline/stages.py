"""The pipeline's stages: ingest → graph → train → evaluate (weather), train → evaluate (others).

Each is a plain function ``fn(cfg, inputs, out, work)`` writing into ``out`` (see runner.py).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.runner import Stage
from pipeline.train import TRAIN_CODE

PREPARED, GRAPH, CHECKPOINT = "prepared.zarr", "graph.pt", "checkpoint"


def ingest(cfg: dict, inputs: dict[str, Path], out: Path, work: Path) -> None:
    from pipeline.ingest import prepare_weather

    data = cfg["data"]
    source = data["source"]
    if source == "synthetic":
        source = write_synthetic_source(data, out / "raw.zarr")
    # `variables` already holds the compact selection's expansion (config.DataConfig).
    time_range = data.get("time_range")
    prepare_weather(source, out / PREPARED, variables=list(data["variables"]),
                    train_period=tuple(str(t) for t in data["periods"]["train"]),
                    time_range=None if time_range is None else tuple(str(t) for t in time_range),
                    name_map=data.get("name_map") or None,
                    time_step_hours=data.get("time_step_hours"), regrid=data.get("regrid"),
                    fill_nan=data.get("fill_nan"),
                    require_global=data.get("require_global", True),
                    dask_scheduler_kind=data.get("dask_scheduler", "threads"))


def write_synthetic_source(data: dict, path: Path) -> Path:
    """The configured synthetic ERA5-layout store, holding what ``data.variables`` asks for."""
    s = data["synthetic"]
    if s["kind"] == "rossby_haurwitz":
        from pipeline.synthetic import write_synthetic_era5

        return write_synthetic_era5(path, start=str(s["start"]), end=str(s["end"]),
                                    n_lat=s["n_lat"], n_lon=s["n_lon"],
                                    levels=tuple(s["levels"]), seed=s["seed"])
    from pipeline.atmosphere import AtmosphereConfig, write_synthetic_atmosphere

    specs = [spec.partition("@") for spec in data["variables"]]
    config = AtmosphereConfig(seed=s["seed"])
    if s["spinup_days"] is not None:
        config = dataclasses.replace(config, spinup_days=s["spinup_days"])
    return write_synthetic_atmosphere(
        path, start=str(s["start"]), end=str(s["end"]), grid=(s["n_lat"], s["n_lon"]),
        variables=sorted({name for name, _, _ in specs}),
        levels=sorted({int(float(level)) for _, _, level in specs if level}), config=config)


def graph(cfg: dict, inputs: dict[str, Path], out: Path, work: Path) -> None:
    from graphs import GraphSpec, build_graph, save_graph
    from pipeline.ingest import open_prepared

    store = open_prepared(inputs["ingest"] / PREPARED)
    spec = GraphSpec(lat=tuple(float(v) for v in store.lat),
                     lon=tuple(float(v) for v in store.lon),
                     mesh_levels=cfg["graph"]["mesh_levels"],
                     radius_fraction=cfg["graph"]["radius_fraction"])
    try:
        g = build_graph(spec)
    except ValueError as e:  # e.g. graph.mesh_levels too fine for this grid: a config problem
        raise ConfigError(f"graph (grid {len(spec.lat)}x{len(spec.lon)}): {e}") from None
    save_graph(g, out / GRAPH)
    counts = {"nodes": {t: int(g[t].num_nodes) for t in g.node_types},
              "edges": {"__".join(t): int(g[t].edge_index.shape[1]) for t in g.edge_types},
              "spec_hash": g.spec_hash}
    (out / "graph_summary.json").write_text(json.dumps(counts, indent=1))


def task_inputs(inputs: dict[str, Path]) -> dict[str, str]:
    """Map stage directories to the paths a task reads."""
    mapping = {}
    if "ingest" in inputs:
        mapping["prepared"] = str(inputs["ingest"] / PREPARED)
    if "graph" in inputs:
        mapping["graph"] = str(inputs["graph"] / GRAPH)
    return mapping


def train(cfg: dict, inputs: dict[str, Path], out: Path, work: Path) -> None:
    from pipeline.train import fit

    loop_config = {"cfg": cfg, "inputs": task_inputs(inputs)}
    # The same file drives `torchrun -m pipeline.train` (machines without Ray).
    (out / "train_loop_config.json").write_text(json.dumps(loop_config, indent=1, default=str))
    final = fit(cfg, loop_config["inputs"], storage_path=work.resolve(), name="ray_train")
    shutil.copytree(final, out / CHECKPOINT)
    meta = json.loads((out / CHECKPOINT / "meta.json").read_text())
    (out / "train_summary.json").write_text(json.dumps(
        {"step": meta["step"], "world_size": meta["world_size"]}, indent=1))


def evaluate(cfg: dict, inputs: dict[str, Path], out: Path, work: Path) -> None:
    from pipeline.evaluate import evaluate_checkpoint

    evaluate_checkpoint(inputs["train"] / CHECKPOINT, task_inputs(inputs), out,
                        max_samples=cfg["evaluate"]["max_samples"],
                        evaluate_cfg=cfg["evaluate"])


def _weather(cfg: dict) -> bool:
    return cfg["train"]["task"].startswith("weather")


def pipeline_stages(cfg: dict) -> dict[str, Stage]:
    """The stage graph for this config, in dependency order."""
    weather = _weather(cfg)
    data_inputs = ["ingest", "graph"] if weather else []
    stages = []
    if weather:
        stages += [
            Stage("ingest", ingest, lambda c: c["data"],
                  ["pipeline.stages", "pipeline.ingest", "pipeline.names", "pipeline.regrid",
                   "pipeline.synthetic", "pipeline.atmosphere"],
                  main_output=PREPARED),
            Stage("graph", graph, lambda c: c["graph"], ["pipeline.stages", "graphs"],
                  inputs=["ingest"], main_output=GRAPH),
        ]
    train_cpus = 0  # it only drives Ray Train; its workers hold the CPUs (2 on 2 cores)
    stages += [
        Stage("train", train,
              lambda c: {"seed": c["seed"], "model": c["model"], "train": c["train"],
                         "periods": c["data"]["periods"]},
              ["pipeline.stages", *TRAIN_CODE],
              inputs=data_inputs, num_cpus=train_cpus, main_output=CHECKPOINT),
        Stage("evaluate", evaluate, lambda c: c["evaluate"],
              ["pipeline.stages", "pipeline.evaluate", "pipeline.plots", *TRAIN_CODE],
              inputs=["train", *data_inputs], main_output="scores.json"),
    ]
    return {s.name: s for s in stages}
