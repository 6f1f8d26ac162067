"""AdamW with linear warm-up then cosine decay to ``min_lr_ratio * lr``."""

from __future__ import annotations

import math

import torch


def warmup_cosine(step: int, *, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """LR multiplier at optimizer step ``step`` (0-based: the multiplier for the first step).

    warm-up:  m = (step + 1) / warmup_steps                       for step < warmup_steps
    cosine:   m = r + (1 - r) * (1 + cos(pi * p)) / 2,  p = (step - warmup) / (max - warmup)
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(max_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(model: torch.nn.Module, train_cfg: dict):
    """AdamW (no decay on biases and norms, as is usual) with the warm-up/cosine LambdaLR."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": train_cfg["weight_decay"]},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=train_cfg["lr"],
        betas=tuple(train_cfg["betas"]),
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: warmup_cosine(
            s,
            warmup_steps=train_cfg["warmup_steps"],
            max_steps=train_cfg["max_steps"],
            min_lr_ratio=train_cfg["min_lr_ratio"],
        ),
    )
    return opt, sched
