"""Evaluate a checkpoint on the test period: ``scores.json`` and a PNG beside it."""

from __future__ import annotations

from pathlib import Path

from pipeline import checkpoint as ckpt_io
from pipeline.tasks import build_task


def evaluate_checkpoint(checkpoint: Path, inputs: dict[str, str], out: Path, *,
                        max_samples: int, evaluate_cfg: dict | None = None) -> dict:
    """Rebuild the task from the checkpoint's own config, check it fits the data, score it."""
    task, model = load_checkpoint_task(checkpoint, inputs, evaluate_cfg)
    return task.evaluate(model, out, max_samples)


def load_checkpoint_task(checkpoint: Path, inputs: dict[str, str],
                         evaluate_cfg: dict | None = None):
    """(task, model): the task rebuilt from the checkpoint's own config (its ``evaluate``
    section replaced by ``evaluate_cfg`` if given) on ``inputs``, checked to fit the data,
    and the model with the checkpoint's weights."""
    meta = ckpt_io.read_meta(checkpoint)
    cfg = dict(meta["config"])
    if evaluate_cfg is not None:
        cfg["evaluate"] = evaluate_cfg
    task = build_task(cfg, inputs)
    own = task.checkpoint_meta()
    ckpt_io.check_compatible(meta, channels=own["channels"],
                             graph_spec_hash=own["graph_spec_hash"], where=f"data {inputs}")
    model = task.build_model()
    model.load_state_dict(ckpt_io.load_state(checkpoint)["model"])
    return task, model
