import math

import pytest
import torch

from pipeline.schedule import build_optimizer, warmup_cosine


def test_warmup_then_cosine_hand_values():
    kw = dict(warmup_steps=4, max_steps=14, min_lr_ratio=0.1)
    assert warmup_cosine(0, **kw) == pytest.approx(0.25)
    assert warmup_cosine(3, **kw) == pytest.approx(1.0)
    assert warmup_cosine(4, **kw) == pytest.approx(1.0)  # cosine starts at its peak
    # halfway through the cosine: 0.1 + 0.9 * (1 + cos(pi/2)) / 2 = 0.55
    assert warmup_cosine(9, **kw) == pytest.approx(0.55)
    assert warmup_cosine(14, **kw) == pytest.approx(0.1)
    assert warmup_cosine(100, **kw) == pytest.approx(0.1)
    assert warmup_cosine(6, **kw) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.2)))


def test_optimizer_groups_and_scheduler_follow_the_schedule():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    cfg = dict(lr=0.5, weight_decay=0.1, betas=(0.9, 0.95), warmup_steps=2, max_steps=4,
               min_lr_ratio=0.0)
    opt, sched = build_optimizer(model, cfg)
    decay, no_decay = opt.param_groups
    assert [p.ndim for p in decay["params"]] == [2] and decay["weight_decay"] == 0.1
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0
    lrs = []
    for _ in range(4):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.25, 0.5, 0.5, 0.25])
