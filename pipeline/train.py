"""The one training loop every task goes through (torchtitan-style: one loop, small components).

``run_training(cfg, inputs, session)`` is the per-worker loop. It runs

- under Ray Train V2's ``TorchTrainer`` (``fit`` below launches it; ``train_loop_per_worker`` is
  the entry), which sets up the process group (gloo on CPU, NCCL on GPU) and restarts the worker
  group from the latest reported checkpoint after a failure (``FailureConfig(max_failures)``);
- under plain ``torchrun`` (``python -m pipeline.train RUN.json OUT_DIR``), with no Ray at all.

What makes a resume exact (bitwise on CPU): the checkpoint holds model, optimizer, scheduler,
step, the sampler's (seed, epoch, cursor) and every rank's RNG states; the DataLoader draws its
worker seeds from a private generator, so creating a loader mid-epoch does not advance the
global RNG that dropout uses.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset

from pipeline import checkpoint as ckpt_io
from pipeline.fingerprint import code_fingerprint
from pipeline.sampler import ResumableDistributedSampler
from pipeline.schedule import build_optimizer
from pipeline.tasks import build_task

# Modules whose source decides what training produces (see pipeline/fingerprint.py).
# Modules whose source makes a trained model what it is (the train stage's code fingerprint):
# the loop's own, plus the task's. Per task, so editing the video model does not re-train a
# weather model.
LOOP_CODE = ["pipeline.train", "pipeline.session", "pipeline.sampler", "pipeline.schedule",
             "pipeline.checkpoint", "pipeline.tasks.__init__"]
TASK_CODE = {
    "weather_global": ["pipeline.tasks.weather", "pipeline.datasets", "pipeline.metrics",
                       "models.oneforecast", "kernels"],
    "weather_regional": ["pipeline.tasks.weather_regional", "pipeline.tasks.weather",
                         "pipeline.datasets", "pipeline.metrics", "pipeline.boundary",
                         "models.oneforecast", "kernels"],
    "parity": ["pipeline.tasks.parity", "models.gated_rnn"],
    "videoqa": ["pipeline.tasks.videoqa", "pipeline.ingest.video", "models.videoqa"],
}


def train_code(task: str) -> list[str]:
    return [*LOOP_CODE, *TASK_CODE[task]]


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_loader(dataset, sampler, batch_size: int, workers: int, collate_fn=None) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=True,  # equal batches on every rank, so DDP's mean gradient is the global mean
        num_workers=workers,
        # Zarr v3 stores are not fork-safe; spawned workers open the store themselves.
        multiprocessing_context="spawn" if workers > 0 else None,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(0),
        collate_fn=collate_fn,
    )


def spread_subset(dataset, n: int | None):
    """``n`` samples of ``dataset`` evenly spaced over it, first and last included (all of it
    when n is None or not smaller): a validation set that spans the whole period."""
    if n is None or n >= len(dataset):
        return dataset
    index = np.unique(np.linspace(0, len(dataset) - 1, n).round().astype(int))
    return Subset(dataset, index.tolist())


def task_loss(task, model, batch, device, step: int | None):
    """``task.loss`` at global step ``step`` (the optimizer steps already taken), passed as the
    keyword ``step`` to a task whose ``loss`` declares it (a curriculum: the weather task's
    rollout length); a task without it (parity) is called as ``loss(model, batch, device)``."""
    if step is not None and "step" in inspect.signature(task.loss).parameters:
        return task.loss(model, batch, device, step=step)
    return task.loss(model, batch, device)


def train_step(model, task, batch, optimizer, scheduler, grad_clip: float, device,
               step: int | None = None) -> dict:
    """One optimizer step: forward/backward (bf16 autocast on GPU), clip, step, schedule.
    ``step``: the optimizer steps already taken (see `task_loss`)."""
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
        loss, metrics = task_loss(task, model, batch, device, step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    scheduler.step()
    return {"loss": loss.detach(), "grad_norm": grad_norm.detach(), **metrics}


@torch.no_grad()
def validate(model, task, dataset, rank: int, world: int, device,
             step: int | None = None) -> dict:
    """Mean validation loss over this rank's share, all-reduced into the global mean; the loss
    is the one of training step ``step`` (`task_loss`)."""
    if len(dataset) < world:
        return {}
    sampler = ResumableDistributedSampler(len(dataset), world, rank, shuffle=False)
    loader = make_loader(dataset, sampler, 1, 0, getattr(task, "collate_fn", None))
    model.eval()
    totals = None
    for batch in loader:
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16,
                            enabled=device.type == "cuda"):
            loss, metrics = task_loss(task, model, batch, device, step)
        values = torch.stack([loss.float(), *(m.float() for m in metrics.values())])
        totals = values if totals is None else totals + values
    model.train()
    count = torch.tensor(float(sampler.num_samples), device=device)
    totals = torch.cat([totals, count.view(1)]) if totals is not None else None
    if dist.is_initialized():
        dist.all_reduce(totals)
    names = ["val_loss", *(f"val_{k}" for k in metrics)]
    return {n: (totals[i] / totals[-1]).item() for i, n in enumerate(names)}


class InjectedFault(RuntimeError):
    pass


def _mean_over_ranks(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """This step's metrics averaged over ranks (each rank saw a different part of the batch)."""
    stacked = torch.stack([v.float() for v in values.values()])
    if dist.is_initialized():
        dist.all_reduce(stacked)
        stacked /= dist.get_world_size()
    return dict(zip(values, stacked.tolist(), strict=True))


def _maybe_inject_fault(fault: dict | None, rank: int, step: int) -> None:
    """Test hook (``cfg["_fault"]``): kill this worker once at ``step``.

    ``{"rank": r, "step": s, "marker": path, "how": "sigkill"|"raise"}``; the marker file makes
    it happen once, so the restarted worker group runs through.
    """
    if not fault or fault["rank"] != rank or fault["step"] != step:
        return
    marker = Path(fault["marker"])
    if marker.exists():
        return
    marker.write_text(str(os.getpid()))
    if fault.get("how", "sigkill") == "raise":
        raise InjectedFault(f"injected fault at step {step} on rank {rank}")
    os.kill(os.getpid(), signal.SIGKILL)


def _trace(trace: dict | None, rank: int, step: int, task, batch) -> None:
    """Debug hook (``cfg["_trace"] = {"dir": path}``): log which samples each rank trained on."""
    if not trace:
        return
    line = json.dumps({"step": step, "rank": rank, "ids": task.sample_ids(batch)})
    with open(Path(trace["dir"]) / f"trace_rank{rank}.jsonl", "a") as f:
        f.write(line + "\n")


def run_training(cfg: dict, inputs: dict[str, str], session) -> dict:
    tcfg = cfg["train"]
    rank, world = session.rank, session.world_size
    device = session.device
    seed_everything(cfg["seed"])  # same on every rank: identical initial weights

    task = build_task(cfg, inputs)
    task.to(device)
    model = task.build_model().to(device)
    ddp = DistributedDataParallel(model) if dist.is_initialized() and world > 1 else model
    optimizer, scheduler = build_optimizer(model, tcfg)
    train_ds, val_ds = task.train_dataset(), spread_subset(task.val_dataset(),
                                                           tcfg.get("val_samples"))

    per_rank = tcfg["batch_size"] // world
    sampler = ResumableDistributedSampler(
        len(train_ds), world, rank, seed=cfg["seed"], shuffle=tcfg["shuffle"]
    )
    if sampler.num_samples < per_rank:
        raise ValueError(
            f"train.batch_size {tcfg['batch_size']} is larger than the {len(train_ds)} "
            f"training samples allow on {world} workers"
        )
    meta_static = {"task": task.name, "config": cfg, "world_size": world,
                   "code_fingerprint": code_fingerprint(train_code(cfg["train"]["task"])),
                   **task.checkpoint_meta()}

    step, rng = 0, None
    with session.latest_checkpoint() as resume:
        if resume is not None:
            meta = ckpt_io.read_meta(resume)
            ckpt_io.check_compatible(meta, channels=meta_static.get("channels", []),
                                     graph_spec_hash=meta_static.get("graph_spec_hash"),
                                     where="training")
            state = ckpt_io.load_state(resume, map_location=device)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            sampler.load_state_dict(meta["sampler"])
            step = meta["step"]
            rng = ckpt_io.load_rng(resume, rank)
            if rank == 0:
                sys.stdout.write(f"[train] resumed from {resume.name} at step {step}\n")
                sys.stdout.flush()

    loader = make_loader(train_ds, sampler, per_rank, tcfg["loader_workers"],
                         getattr(task, "collate_fn", None))
    if rng is not None:
        ckpt_io.set_rng_state(rng)  # after building everything that may draw random numbers

    model.train()
    last: dict[str, Any] = {}
    while step < tcfg["max_steps"]:
        for batch in loader:
            out = train_step(ddp, task, batch, optimizer, scheduler, tcfg["grad_clip"], device,
                             step=step)  # a function of the global step: a resume repeats it
            step += 1
            sampler.cursor += per_rank
            _trace(cfg.get("_trace"), rank, step, task, batch)
            _maybe_inject_fault(cfg.get("_fault"), rank, step)
            if step % tcfg["checkpoint_every"] == 0 or step == tcfg["max_steps"]:
                metrics = {"step": step, "epoch": sampler.epoch,
                           "lr": scheduler.get_last_lr()[0], **_mean_over_ranks(out),
                           **validate(ddp, task, val_ds, rank, world, device, step=step - 1)}
                meta = {**meta_static, "step": step, "sampler": sampler.state_dict()}
                with session.checkpoint_dir(step) as d:
                    ckpt_io.save_checkpoint(d, rank=rank, meta=meta, model=model,
                                            optimizer=optimizer, scheduler=scheduler)
                    session.report(metrics, d)
                last = metrics
            if step >= tcfg["max_steps"]:
                break
        else:
            sampler.set_epoch(sampler.epoch + 1)  # the epoch ran out (not a max_steps break)
    return last


def train_loop_per_worker(loop_config: dict) -> None:
    """Ray Train entry point (module level so it pickles by reference)."""
    from pipeline.runstore import relocalize
    from pipeline.session import RaySession

    torch.set_num_threads(1)  # one core per worker: 2 workers on 2 cores do not oversubscribe
    inputs = relocalize(loop_config["inputs"], loop_config.get("origins", {}))
    run_training(loop_config["cfg"], inputs,
                 RaySession(local_dir=loop_config.get("local_dir")))


def fit(cfg: dict, inputs: dict[str, str], storage_path, name: str,
        origins: dict | None = None):
    """Train with Ray Train V2 on the connected Ray cluster; return the final
    ``ray.train.Checkpoint`` (``.to_directory(DIR)`` copies it out).

    ``storage_path`` is a directory (shared by every node of a multi-node run) or an fsspec URL
    (`pipeline.runstore.train_storage`). Re-running with the same ``storage_path``/``name``
    resumes from the checkpoints already there (Ray Train V2 restores its checkpoint manager
    from run storage). ``origins`` (`pipeline.runstore.origins`) lets workers on another node
    fetch inputs that were fetched from an object store.
    """
    from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from pipeline.runstore import run_url, scratch_dir, train_storage

    tcfg = cfg["train"]
    loop_config = {"cfg": cfg, "inputs": inputs, "origins": origins or {}}
    if tcfg["num_workers"] == 0:  # Ray Train local mode: the loop runs in this process
        # Checkpoints go to a directory of their own (on an object store: node-local scratch,
        # so a local-mode run there does not resume after a killed driver).
        local = scratch_dir(f"{name}-") if run_url(storage_path) else Path(storage_path)
        loop_config["local_dir"] = str(Path(local) / name)
    path, filesystem = train_storage(storage_path)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop_config,
        torch_config=TorchConfig(backend="nccl" if tcfg["use_gpu"] else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=tcfg["num_workers"],
            use_gpu=tcfg["use_gpu"],
            resources_per_worker=None if tcfg["use_gpu"] else {"CPU": 1},
        ),
        run_config=RunConfig(
            name=name,
            storage_path=path,
            storage_filesystem=filesystem,
            failure_config=FailureConfig(max_failures=tcfg["max_failures"]),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            worker_runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
            # Our own one-line progress (rank 0) replaces Ray Train's per-report INFO lines.
            logging_config=LoggingConfig(log_level="WARNING"),
        ),
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"training run {name} finished without a checkpoint")
    return result.checkpoint


def main(argv: list[str] | None = None) -> int:
    """``torchrun --nproc-per-node N -m pipeline.train RUN.json OUT_DIR``.

    RUN.json holds ``{"cfg": <validated config dict>, "inputs": {...}}`` (``sluice`` writes one
    beside every training run as ``train_loop_config.json``).
    """
    from pipeline.session import TorchrunSession

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m pipeline.train RUN.json OUT_DIR", file=sys.stderr)
        return 2
    loop_config = json.loads(Path(argv[0]).read_text())
    session = TorchrunSession(argv[1])
    with contextlib.ExitStack() as stack:
        stack.callback(session.close)
        run_training(loop_config["cfg"], loop_config["inputs"], session)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
