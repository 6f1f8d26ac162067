import random

import numpy as np
import pytest
import torch

from pipeline import checkpoint as ck
from pipeline.errors import UserError
from pipeline.schedule import build_optimizer


def test_rng_state_round_trip_through_weights_only_files(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    torch.save(ck.rng_state(), tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(3))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ck.set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    got = (random.random(), np.random.rand(), torch.rand(3))
    assert got[0] == expected[0] and got[1] == expected[1]
    assert torch.equal(got[2], expected[2])


def test_checkpoint_is_self_describing_and_loads_weights_only(tmp_path):
    model = torch.nn.Linear(3, 2)
    cfg = dict(lr=0.1, weight_decay=0.0, betas=(0.9, 0.99), warmup_steps=1, max_steps=5,
               min_lr_ratio=0.0)
    opt, sched = build_optimizer(model, cfg)
    model(torch.randn(4, 3)).sum().backward()
    opt.step(), sched.step()
    meta = {"task": "t", "step": 1, "channels": ["a", "b"], "graph_spec_hash": "abc",
            "sampler": {"seed": 0, "epoch": 0, "cursor": 4}}
    for rank in (0, 1):
        ck.save_checkpoint(tmp_path, rank=rank, meta=meta, model=model, optimizer=opt,
                           scheduler=sched)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "meta.json", "rng_rank0.pt", "rng_rank1.pt", "state.pt"]
    assert ck.read_meta(tmp_path)["sampler"]["cursor"] == 4
    state = ck.load_state(tmp_path)
    fresh = torch.nn.Linear(3, 2)
    fresh.load_state_dict(state["model"])
    assert torch.equal(fresh.weight, model.weight)
    opt2, sched2 = build_optimizer(fresh, cfg)
    opt2.load_state_dict(state["optimizer"])
    sched2.load_state_dict(state["scheduler"])
    assert sched2.last_epoch == 1
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"],
                       opt.state_dict()["state"][0]["exp_avg"])


def test_incompatible_data_is_refused_naming_both(tmp_path):
    meta = {"channels": ["a", "b"], "graph_spec_hash": "abc"}
    with pytest.raises(UserError, match=r"\['a', 'b'\].*\['a', 'c'\]"):
        ck.check_compatible(meta, channels=["a", "c"], graph_spec_hash="abc", where="test")
    with pytest.raises(UserError, match="abc.*xyz"):
        ck.check_compatible(meta, channels=["a", "b"], graph_spec_hash="xyz", where="test")
    ck.check_compatible(meta, channels=["a", "b"], graph_spec_hash="abc", where="test")
    with pytest.raises(UserError, match="not a Sluice checkpoint"):
        ck.read_meta(tmp_path)
