"""What a nightly run needs before it can forecast, made if it is not there.

- The checkpoint: ``model.checkpoint``, or, when that is null, the training config
  (``model.train_config`` + ``model.overrides``) run through the pipeline's own stages
  (ingest → graph → train, `pipeline.stages`) on Ray in ROOT/bootstrap. They are fingerprinted
  like any `sluice run`: the first night trains, every later night skips in milliseconds, and a
  killed bootstrap resumes from Ray Train's last checkpoint.
- The climatology (ACC and the climatology forecast): ``analysis.climatology``, else the
  bootstrap's (ROOT/bootstrap/ingest/climatology.zarr), else none (those columns stay empty).
- The analysis store: ``analysis.store``, else the synthetic source the checkpoint was trained
  on, written once to ROOT/analysis.zarr over its configured span. `extend_synthetic_era5`
  (``sluice extend-synthetic``) then moves it forward a night at a time, as real analyses
  arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ConfigError

BOOTSTRAP, FEED = "bootstrap", "analysis.zarr"


@dataclass(frozen=True)
class Inputs:
    checkpoint: Path
    climatology: Path | None
    analysis: str


def bootstrap_checkpoint(cfg, console) -> tuple[Path, Path | None]:
    """(checkpoint, climatology or None), training one first if the config names none."""
    if cfg.model.checkpoint is not None:
        return cfg.model.checkpoint, cfg.analysis.climatology
    from pipeline.cluster import connect
    from pipeline.config import load_config
    from pipeline.runner import run_stages
    from pipeline.stages import CHECKPOINT, CLIMATOLOGY, pipeline_stages

    train_cfg = load_config(cfg.model.train_config, list(cfg.model.overrides))
    if train_cfg.train.task != "weather_global":
        raise ConfigError(f"model.train_config {cfg.model.train_config}: train.task must be "
                          f"weather_global for a forecast, got {train_cfg.train.task}")
    cfg_dict = train_cfg.model_dump(mode="json")
    run_dir = cfg.root / BOOTSTRAP
    cluster = connect(None, train_cfg.ray.num_cpus)
    run_stages(pipeline_stages(cfg_dict), cfg_dict, run_dir, ["train"], cluster, console)
    climatology = cfg.analysis.climatology or run_dir / "ingest" / CLIMATOLOGY
    return run_dir / "train" / CHECKPOINT, climatology if climatology.exists() else None


def analysis_store(cfg, checkpoint_config: dict) -> str:
    """``analysis.store``, or the checkpoint's synthetic source written to ROOT/analysis.zarr."""
    if cfg.analysis.store is not None:
        return cfg.analysis.store
    data = checkpoint_config["data"]
    s = data.get("synthetic") or {}
    if data.get("source") != "synthetic" or s.get("kind", "rossby_haurwitz") != "rossby_haurwitz":
        raise ConfigError("analysis.store: null only works for a checkpoint trained on the "
                          "analytic synthetic source (data.synthetic.kind rossby_haurwitz); "
                          f"this one was trained on {data.get('source')!r}: name its store")
    feed = cfg.root / FEED
    if not feed.exists():
        from pipeline.synthetic import write_synthetic_era5

        write_synthetic_era5(feed, start=str(s["start"]), end=str(s["end"]), n_lat=s["n_lat"],
                             n_lon=s["n_lon"], levels=tuple(s["levels"]), seed=s["seed"])
    return str(feed)
