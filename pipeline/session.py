"""Where the training loop runs: under Ray Train, or under plain ``torchrun``.

The loop needs four things from its launcher: its rank and world size, the device, the latest
checkpoint to resume from, and a way to publish a checkpoint. ``RaySession`` maps them onto
Ray Train V2 (``ray.train.get_context``, ``get_checkpoint``, ``report``); ``TorchrunSession``
onto ``torch.distributed`` env:// and a checkpoint directory on disk. Ray is imported only by
``RaySession``, so the loop also runs on a machine without Ray.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.distributed as dist


def format_metrics(metrics: dict) -> str:
    shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in metrics.items())
    return f"[train] {shown}"


def _latest_on_disk(directory: Path) -> Path | None:
    done = sorted(p for p in directory.glob("checkpoint_*") if (p / "meta.json").is_file())
    return done[-1] if done else None


class RaySession:
    """Ray Train V2 worker. ``local_dir`` is set in local mode (``num_workers=0``), where Ray
    Train keeps only a reference to reported checkpoints, so they are written there for good."""

    def __init__(self, local_dir: str | None = None) -> None:
        import ray.train

        self._train = ray.train
        self.local_dir = Path(local_dir) if local_dir else None
        ctx = ray.train.get_context()
        self.rank, self.world_size = ctx.get_world_rank(), ctx.get_world_size()
        self.local_rank = ctx.get_local_rank()

    @property
    def device(self) -> torch.device:
        if torch.cuda.is_available():
            import ray.train.torch

            return ray.train.torch.get_device()
        return torch.device("cpu")

    @contextlib.contextmanager
    def latest_checkpoint(self) -> Iterator[Path | None]:
        ckpt = self._train.get_checkpoint()
        if ckpt is None:
            yield _latest_on_disk(self.local_dir) if self.local_dir else None
            return
        with ckpt.as_directory() as d:
            yield Path(d)

    @contextlib.contextmanager
    def checkpoint_dir(self, step: int) -> Iterator[Path]:
        if self.local_dir:
            yield self.local_dir / f"checkpoint_{step:09d}"
            return
        with tempfile.TemporaryDirectory(prefix=f"sluice-ckpt-{step}-") as d:
            yield Path(d)

    def report(self, metrics: dict, checkpoint: Path | None) -> None:
        from ray.train import Checkpoint

        if self.rank == 0:
            # Not print(): Ray Train patches it to go to both the console and its logger, which
            # shows every line twice.
            sys.stdout.write(format_metrics(metrics) + "\n")
            sys.stdout.flush()
        # Every rank reports its part (its RNG state; rank 0 also the weights); Ray Train merges
        # the parts into one checkpoint directory in run storage.
        self._train.report(
            metrics,
            checkpoint=Checkpoint.from_directory(str(checkpoint)) if checkpoint else None,
            checkpoint_dir_name=f"checkpoint_{metrics['step']:09d}" if checkpoint else None,
        )


class TorchrunSession:
    """``torchrun`` (or a single plain process): checkpoints go to ``out_dir/checkpoint_*``."""

    def __init__(self, out_dir: str | Path, backend: str | None = None) -> None:
        self.out_dir = Path(out_dir)
        if "WORLD_SIZE" in os.environ and not dist.is_initialized():
            backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
            dist.init_process_group(backend=backend)
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.world_size = dist.get_world_size() if dist.is_initialized() else 1
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))

    @property
    def device(self) -> torch.device:
        if torch.cuda.is_available():
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    @contextlib.contextmanager
    def latest_checkpoint(self) -> Iterator[Path | None]:
        yield _latest_on_disk(self.out_dir)

    @contextlib.contextmanager
    def checkpoint_dir(self, step: int) -> Iterator[Path]:
        final = self.out_dir / f"checkpoint_{step:09d}"
        yield final

    def report(self, metrics: dict, checkpoint: Path | None) -> None:
        if dist.is_initialized():
            dist.barrier()  # every rank's part is written before anyone resumes from it
        if self.rank == 0:
            print(format_metrics(metrics), flush=True)

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


