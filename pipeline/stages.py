"""The pipeline's stages: ingest → graph → train → evaluate (weather), train → evaluate (others).

Each is a plain function ``fn(cfg, inputs, out, work)`` writing into ``out`` (see runner.py).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.runner import Stage
from pipeline.train import train_code

PREPARED, GRAPH, CHECKPOINT = "prepared.zarr", "graph.pt", "checkpoint"
VIDEO = "videoqa"  # the prepared video-QA directory (pipeline/ingest/video.py)
CLIMATOLOGY = "climatology.zarr"  # the verification climatology of the training period
# weather_regional (pipeline/regional_stages.py): the regional truth, its climatology, and the
# frozen global model's forecasts on the regional grid
REGIONAL, REGIONAL_CLIMATOLOGY = "regional.zarr", "regional_climatology.zarr"
BOUNDARY = "boundary.zarr"


def ingest(cfg: dict, inputs: dict[str, Path], out: Path, work: Path) -> None:
    from pipeline.climatology import compute_climatology
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
    # WB2's day-of-year x hour climatology of the training period: evaluation (ACC, the
    # climatology baseline) and the nightly workflow read it beside the prepared store.
    compute_climatology(out / PREPARED, out / CLIMATOLOGY,
                        train_period=tuple(str(t) for t in data["periods"]["train"]))


def video_ingest(cfg: dict, inputs: dict[str, Path], out: Path, work: Path | str) -> None:
    """Frame features + QA tables → RUN/ingest/videoqa (the synthetic source, when configured,
    is generated into the stage's work directory: deterministic, so not kept)."""
    import tempfile

    from pipeline.ingest.video import prepare_video

    data = cfg["video"]["data"]
    features, qa, answer_features = data["source"], data["qa"], data["answer_features"]
    if features == "synthetic":
        from pipeline.synthetic_video import VideoQASpec, write_synthetic_videoqa

        s = data["synthetic"]
        source = work if isinstance(work, Path) else Path(tempfile.mkdtemp(dir=out.parent))
        written = write_synthetic_videoqa(source / "source", VideoQASpec(
            n_train=s["n_train"], n_val=s["n_val"], n_test=s["n_test"],
            frames=tuple(s["frames"]), feature_dim=s["feature_dim"], noise=s["noise"],
            amplitude=s["amplitude"], text_noise=s["text_noise"], seed=s["seed"]))
        features, qa = written["features"], {k: written[k] for k in ("train", "val", "test")}
        answer_features = written["answer_features"] if s["answer_features"] else None
    summary = prepare_video(features, qa, out / VIDEO, answer_features=answer_features,
                            frames=data["frames"],
                            chunk_frames=data["chunk_frames"], partitions=data["partitions"],
                            skip_bad=data["skip_bad"], max_words=data["max_words"])
    (out / "ingest_summary.json").write_text(json.dumps(summary, indent=1, default=str))


def write_synthetic_source(data: dict, path: Path, native_crop=None) -> Path:
    """The configured synthetic ERA5-layout store, holding what ``data.variables`` asks for;
    ``native_crop`` (atmosphere only): ``(path, box)``, the native-grid fields in the box too
    (`pipeline.atmosphere.writer.NativeCrop`)."""
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
        levels=sorted({int(float(level)) for _, _, level in specs if level}), config=config,
        native_crop=native_crop)


def graph_spec(cfg: dict, lat, lon):
    """The ``graphs.GraphSpec`` of the config's ``graph`` section on a grid."""
    from graphs import GraphSpec

    g = cfg["graph"]
    return GraphSpec(lat=tuple(float(v) for v in lat), lon=tuple(float(v) for v in lon),
                     mesh_levels=g["mesh_levels"], radius_fraction=g["radius_fraction"],
                     regions=tuple(tuple(box) for box in g.get("regions", ())),
                     region_levels=g.get("region_levels", 0),
                     region_mode=g.get("region_mode", "conforming"),
                     max_neighbours=g.get("max_neighbours"),
                     mesh_orientation=g.get("mesh_orientation", "sluice"))


def graph(cfg: dict, inputs: dict[str, Path], out: Path, work: Path) -> None:
    from graphs import graph_cache, save_graph
    from pipeline.ingest import open_prepared
    from pipeline.runstore import cache_root

    store = open_prepared(inputs["ingest"] / PREPARED)
    spec = graph_spec(cfg, store.lat, store.lon)
    try:
        # Keyed by the spec's hash in RUN/.graph_cache (work is RUN/.work/graph-FINGERPRINT,
        # emptied after the stage), so going back to an earlier graph config reuses its build.
        # A run on an object store keeps that cache on the node instead.
        cache = (work.parent.parent if isinstance(work, Path) else cache_root()) / ".graph_cache"
        g = graph_cache(spec, cache)
    except ValueError as e:  # e.g. graph.mesh_levels too fine for this grid: a config problem
        raise ConfigError(f"graph (grid {len(spec.lat)}x{len(spec.lon)}): {e}") from None
    save_graph(g, out / GRAPH)
    counts = {"nodes": {t: int(g[t].num_nodes) for t in g.node_types},
              "edges": {"__".join(t): int(g[t].edge_index.shape[1]) for t in g.edge_types},
              "mesh_nodes_per_level": [int(n) for n in g["mesh"].level.bincount()],
              "mesh_nodes_in_region": int(g["mesh"].in_region.sum()),
              "spec_hash": g.spec_hash}
    (out / "graph_summary.json").write_text(json.dumps(counts, indent=1))


def graph_plot(graph_path: Path, png: Path) -> Path:
    """Draws the graph stage's output (``graphs.plot.plot_graph``) into ``png``."""
    from graphs import load_graph
    from graphs.plot import plot_graph

    png.parent.mkdir(parents=True, exist_ok=True)
    plot_graph(load_graph(graph_path), png)
    return png


def task_inputs(inputs: dict[str, Path]) -> dict[str, str]:
    """Map stage directories to the paths a task reads."""
    if "ingest" in inputs and (inputs["ingest"] / VIDEO).is_dir():  # the video-QA ingest
        return {"video": str(inputs["ingest"] / VIDEO)}
    mapping = {}
    if "ingest" in inputs:
        mapping["prepared"] = str(inputs["ingest"] / PREPARED)
        if (inputs["ingest"] / CLIMATOLOGY).exists():
            mapping["climatology"] = str(inputs["ingest"] / CLIMATOLOGY)
        for key, name in (("regional", REGIONAL), ("regional_climatology", REGIONAL_CLIMATOLOGY)):
            if (inputs["ingest"] / name).exists():
                mapping[key] = str(inputs["ingest"] / name)
    if "graph" in inputs:
        mapping["graph"] = str(inputs["graph"] / GRAPH)
    if "boundary" in inputs:
        mapping["boundary"] = str(inputs["boundary"] / BOUNDARY)
    return mapping


def train(cfg: dict, inputs: dict[str, Path], out: Path, work: Path | str) -> None:
    from pipeline.runstore import origins
    from pipeline.train import fit

    loop_config = {"cfg": cfg, "inputs": task_inputs(inputs)}
    # Inputs fetched from an object store: workers on other nodes fetch them again from there.
    loop_config["origins"] = origins(loop_config["inputs"])
    # The same file drives `torchrun -m pipeline.train` (machines without Ray).
    (out / "train_loop_config.json").write_text(json.dumps(loop_config, indent=1, default=str))
    final = fit(cfg, loop_config["inputs"], storage_path=work, name="ray_train",
                origins=loop_config["origins"])
    final.to_directory(str(out / CHECKPOINT))
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


def _train_section(cfg: dict) -> dict:
    """What a trained model depends on, per task (the train stage's fingerprinted section)."""
    if cfg["train"]["task"] == "videoqa":
        return {"seed": cfg["seed"], "model": cfg["video"]["model"], "train": cfg["train"]}
    return {"seed": cfg["seed"], "model": cfg["model"], "train": cfg["train"],
            "periods": cfg["data"]["periods"]}


def pipeline_stages(cfg: dict) -> dict[str, Stage]:
    """The stage graph for this config, in dependency order."""
    task = cfg["train"]["task"]
    if task == "weather_regional":
        from pipeline.regional_stages import regional_stages

        return regional_stages(cfg)
    weather = _weather(cfg)
    data_inputs = ["ingest", "graph"] if weather else ["ingest"] if task == "videoqa" else []
    stages = []
    if weather:
        stages += [
            Stage("ingest", ingest, lambda c: c["data"],
                  ["pipeline.stages", "pipeline.ingest.weather", "pipeline.publish",
                   "pipeline.names", "pipeline.regrid", "pipeline.synthetic",
                   "pipeline.atmosphere", "pipeline.climatology", "pipeline.timeblocks",
                   "pipeline.moments"],
                  main_output=PREPARED),
            Stage("graph", graph, lambda c: c["graph"], ["pipeline.stages", "graphs"],
                  inputs=["ingest"], main_output=GRAPH),
        ]
    elif task == "videoqa":
        stages.append(Stage("ingest", video_ingest, lambda c: c["video"]["data"],
                            ["pipeline.stages", "pipeline.ingest.video",
                             "pipeline.synthetic_video"], main_output=VIDEO))
    train_cpus = 0  # it only drives Ray Train; its workers hold the CPUs (2 on 2 cores)
    code = train_code(task)
    stages += [
        Stage("train", train, _train_section, ["pipeline.stages", *code],
              inputs=data_inputs, num_cpus=train_cpus, main_output=CHECKPOINT),
        Stage("evaluate", evaluate, lambda c: c["evaluate"],
              ["pipeline.stages", "pipeline.evaluate", "pipeline.plots", "pipeline.scorecard",
               "pipeline.baselines", "pipeline.climatology", *code],
              inputs=["train", *data_inputs], main_output="scores.json"),
    ]
    return {s.name: s for s in stages}
