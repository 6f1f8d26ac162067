"""One DDP training step of the smoke model, launched by torchrun; Ray-free.

    torchrun --nproc-per-node 1 benchmarks/gpu_ddp_step.py --backend nccl
    torchrun --nproc-per-node 2 benchmarks/gpu_ddp_step.py --backend gloo   # 2 ranks, 1 GPU

Uses the real pieces (graphs.build_graph, models.oneforecast.GatedGNN, pipeline.train.train_step
with bf16 autocast on CUDA, pipeline.schedule) on random inputs shaped like the smoke data, so it
needs only torch, torch-geometric, numpy (and triton for the fused gate). Rank 0 prints one line:
backend, world size, device, loss, step time, and whether all ranks hold identical weights.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from graphs import GraphSpec, build_graph
from models.oneforecast import GatedGNN, GatedGNNConfig
from pipeline.schedule import build_optimizer
from pipeline.train import train_step

N_LAT, N_LON, CHANNELS, FORCINGS = 32, 64, 5, 2


class RandomStepTask:
    """The weather task's loss shape (normalised 6-h change, MSE) on random tensors."""

    def __init__(self, graph):
        self.graph = graph

    def loss(self, model, batch, device):
        x, target = (t.to(device) for t in batch)
        pred = model(x, self.graph).float()
        return ((pred - target) ** 2).mean(), {}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=["nccl", "gloo"], required=True)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=4)
    args = p.parse_args()

    dist.init_process_group(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % max(
        torch.cuda.device_count(), 1)) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    torch.manual_seed(0)
    spec = GraphSpec(lat=tuple(np.linspace(90, -90, N_LAT)),
                     lon=tuple(np.arange(N_LON) * 360 / N_LON), mesh_levels=2)
    graph = build_graph(spec).to(device)
    model = GatedGNN(GatedGNNConfig(in_channels=CHANNELS + FORCINGS, out_channels=CHANNELS,
                                    hidden=48, processor_layers=3)).to(device)
    ddp = DistributedDataParallel(model)
    opt, sched = build_optimizer(model, {"lr": 1e-3, "weight_decay": 0.01, "betas": (0.9, 0.95),
                                         "warmup_steps": 1, "max_steps": args.steps,
                                         "min_lr_ratio": 0.1})
    task = RandomStepTask(graph)
    g = torch.Generator().manual_seed(rank)
    n = N_LAT * N_LON
    batch = (torch.randn(args.batch, n, CHANNELS + FORCINGS, generator=g),
             torch.randn(args.batch, n, CHANNELS, generator=g))
    times = []
    for _ in range(args.steps):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = train_step(ddp, task, batch, opt, sched, 1.0, device)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    flat = torch.cat([p.detach().float().flatten() for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    same = all(torch.equal(gathered[0], t) for t in gathered)
    if rank == 0:
        print(f"ddp_step backend={args.backend} world={world} device={device} "
              f"autocast={'bf16' if cuda else 'off'} loss={out['loss'].item():.4f} "
              f"step_ms={1e3 * min(times):.1f} ranks_identical={same}", flush=True)
    dist.destroy_process_group()
    return 0 if same and torch.isfinite(out["loss"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
