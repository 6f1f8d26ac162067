"""Self-describing training checkpoints.

A checkpoint is a directory:

- ``meta.json``: format, task, step, sampler position (seed, epoch, cursor), world size, the full
  config, model config, channel list, normalisation stats, graph spec hash, code fingerprint.
- ``state.pt``: model, optimizer and LR-scheduler state dicts (rank 0 writes it; DDP keeps
  every rank's copy identical).
- ``rng_rank{r}.pt``: each rank's torch / numpy / python RNG states, so dropout after a resume
  draws exactly what it would have drawn without the interruption.

Everything loads with ``torch.load(..., weights_only=True)``: only tensors and plain containers.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.errors import UserError

FORMAT = "sluice-checkpoint/1"


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
         n["cached_gaussian"])
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_write_text(text: str, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_checkpoint(
    directory: Path,
    *,
    rank: int,
    meta: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
) -> None:
    """Write this rank's part of a checkpoint into ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    _atomic_torch_save(rng_state(), directory / f"rng_rank{rank}.pt")
    if rank == 0:
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
        }
        _atomic_torch_save(state, directory / "state.pt")
        # meta.json last: a directory without it is not a checkpoint.
        meta_json = json.dumps({"format": FORMAT, **meta}, indent=1)
        _atomic_write_text(meta_json, directory / "meta.json")


def read_meta(directory: Path) -> dict[str, Any]:
    path = Path(directory) / "meta.json"
    if not path.is_file():
        raise UserError(f"{directory}: not a Sluice checkpoint (no meta.json)")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise UserError(f"{path}: field 'format': expected {FORMAT}, found {meta.get('format')}")
    return meta


def load_state(directory: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    return torch.load(Path(directory) / "state.pt", map_location=map_location, weights_only=True)


def load_rng(directory: Path, rank: int) -> dict[str, Any] | None:
    path = Path(directory) / f"rng_rank{rank}.pt"
    return torch.load(path, weights_only=True) if path.is_file() else None


def check_compatible(meta: dict[str, Any], *, channels: list[str], graph_spec_hash: str | None,
                     where: str) -> None:
    """A checkpoint only fits data with the same channels and grid/graph; say which differ."""
    if list(meta.get("channels") or []) != list(channels):
        raise UserError(
            f"checkpoint channels {meta.get('channels')} do not match {where} channels {channels}"
        )
    if graph_spec_hash is not None and meta.get("graph_spec_hash") != graph_spec_hash:
        raise UserError(
            f"checkpoint graph/grid spec {meta.get('graph_spec_hash')} does not match "
            f"{where} graph spec {graph_spec_hash}"
        )
