"""The weather_regional stage graph: ingest → graph → boundary → train → evaluate.

- ingest (`pipeline.ingest.regional`): one core run → the global store and the native-grid
  regional truth on the box plus margin, each with its statistics and climatology;
- graph: the limited-area graph (``graphs.regional``) on the regional domain;
- boundary (`pipeline.boundary`): the frozen global model's forecasts on the regional grid,
  one-step ones or rollouts (``regional.train_boundary``; only with ``regional.boundary``);
- train, evaluate: the pipeline's own (`pipeline.stages`), on the weather_regional task.

The ingest and boundary outputs do not depend on ``regional.boundary``, so the two arms of the
boundary ablation can share them (benchmarks/reproduce_regional.py does).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.runner import Stage
from pipeline.stages import BOUNDARY, CHECKPOINT, GRAPH, REGIONAL, evaluate, graph_spec, train
from pipeline.train import train_code

GLOBAL = "global"  # the frozen global checkpoint inside a regional one


def _cache(work) -> Path:
    from pipeline.runstore import cache_root

    return (work.parent.parent if isinstance(work, Path) else cache_root()) / ".graph_cache"


def regional_graph_spec(cfg: dict, lat, lon):
    """The graph section's spec on the regional store's grid (lat [H], lon [W]), cropped to the
    domain: grid nodes = the domain's points, ``domain`` = the box plus margin, mesh refined
    ``graph.region_levels`` more times there (GraphSpec.regions = the domain)."""
    from graphs.regions import box_indices
    from pipeline.config import RegionalConfig

    domain = RegionalConfig.model_validate(cfg["regional"]).domain()
    rows, cols = box_indices(lat, lon, domain)
    spec = graph_spec(cfg, lat[rows], lon[cols])
    return dataclasses.replace(spec, domain=domain, regions=(domain,))


def regional_graph(cfg: dict, inputs: dict[str, Path], out: Path, work: Path) -> None:
    from graphs import graph_cache, save_graph
    from pipeline.ingest import open_prepared

    store = open_prepared(inputs["ingest"] / REGIONAL)
    spec = regional_graph_spec(cfg, store.lat, store.lon)
    try:
        g = graph_cache(spec, _cache(work))
    except ValueError as e:
        raise ConfigError(f"graph (regional grid {len(spec.lat)}x{len(spec.lon)}): {e}"
                          ) from None
    save_graph(g, out / GRAPH)
    (out / "graph_summary.json").write_text(json.dumps(
        {"nodes": {t: int(g[t].num_nodes) for t in g.node_types},
         "edges": {"__".join(t): int(g[t].edge_index.shape[1]) for t in g.edge_types},
         "domain": list(spec.domain), "spec_hash": g.spec_hash}, indent=1))


def boundary(cfg: dict, inputs: dict[str, Path], out: Path, work: Path) -> None:
    import torch

    from pipeline.boundary import GlobalDriver, write_boundary, write_boundary_rollouts
    from pipeline.ingest import open_prepared
    from pipeline.stages import PREPARED

    torch.set_num_threads(2)
    regional, r = inputs["ingest"] / REGIONAL, cfg["regional"]
    store = open_prepared(regional)
    driver = GlobalDriver(r["global_checkpoint"], inputs["ingest"] / PREPARED,
                          store.lat, store.lon, _cache(work))
    if r["train_boundary"] == "rollout":  # the periods training and validation read
        periods = [cfg["data"]["periods"][split] for split in ("train", "val")]
        write_boundary_rollouts(driver, regional, out / BOUNDARY, periods=periods,
                                leads=r["boundary_leads"], init_stride=r["boundary_init_stride"])
    else:
        write_boundary(driver, regional, out / BOUNDARY)


def train_regional(cfg: dict, inputs: dict[str, Path], out: Path, work) -> None:
    """The pipeline's train stage, then the frozen global model copied into the checkpoint
    (``checkpoint/global``): a regional checkpoint carries what `sluice forecast` needs."""
    import shutil

    train(cfg, inputs, out, work)
    source = Path(cfg["regional"]["global_checkpoint"])
    shutil.copytree(source, out / CHECKPOINT / GLOBAL,
                    ignore=shutil.ignore_patterns("rng_*", "optimizer*"))


def global_checkpoint_hash(cfg: dict) -> str | None:
    """The frozen global model's state.pt sha256 (None when absent: the stage then fails with
    a DataError naming the path)."""
    from pipeline.fingerprint import file_sha256

    state = Path(cfg["regional"]["global_checkpoint"]) / "state.pt"
    return file_sha256(state) if state.is_file() else None


def _boundary_section(cfg: dict) -> dict:
    r = cfg["regional"]
    section = {"box": list(r["box"]), "margin": r["margin"], "grid": r["grid"],
               "global_checkpoint_sha256": global_checkpoint_hash(cfg),
               "train_boundary": r["train_boundary"]}
    if r["train_boundary"] == "rollout":
        section.update(leads=r["boundary_leads"], init_stride=r["boundary_init_stride"],
                       periods=[cfg["data"]["periods"][s] for s in ("train", "val")])
    return section


def _train_section(cfg: dict) -> dict:
    return {"seed": cfg["seed"], "model": cfg["model"], "train": cfg["train"],
            "periods": cfg["data"]["periods"], "regional": cfg["regional"],
            "global_checkpoint_sha256": global_checkpoint_hash(cfg)}


def regional_stages(cfg: dict) -> dict[str, Stage]:
    from pipeline.ingest.regional import ingest_regional, ingest_section

    use_boundary = cfg["regional"]["boundary"]
    data_inputs = ["ingest", "graph", *(["boundary"] if use_boundary else [])]
    code = train_code("weather_regional")
    stages = [
        Stage("ingest", ingest_regional, ingest_section,
              ["pipeline.stages", "pipeline.ingest.regional", "pipeline.ingest.weather",
               "pipeline.publish", "pipeline.names", "pipeline.regrid", "pipeline.atmosphere",
               "pipeline.climatology", "pipeline.timeblocks", "pipeline.moments"],
              main_output=REGIONAL),
        Stage("graph", regional_graph, lambda c: {"graph": c["graph"],
                                                  "regional": c["regional"]},
              ["pipeline.regional_stages", "graphs"], inputs=["ingest"], main_output=GRAPH),
    ]
    if use_boundary:
        stages.append(Stage("boundary", boundary, _boundary_section,
                            ["pipeline.regional_stages", "pipeline.boundary", "pipeline.forecast",
                             "models.oneforecast"], inputs=["ingest"], num_cpus=2,
                            main_output=BOUNDARY))
    stages += [
        Stage("train", train_regional, _train_section,
              ["pipeline.stages", "pipeline.regional_stages", *code],
              inputs=data_inputs, num_cpus=0, main_output=CHECKPOINT),
        Stage("evaluate", evaluate, lambda c: {"evaluate": c["evaluate"],
                                               "global": global_checkpoint_hash(c)},
              ["pipeline.stages", "pipeline.evaluate", "pipeline.scorecard", "pipeline.plots",
               "pipeline.climatology", *code],
              inputs=["train", *data_inputs], main_output="scores.json"),
    ]
    return {s.name: s for s in stages}
