"""The training loop called directly (one process, no Ray): task logic and exact resume."""

import json

import pytest

from pipeline import checkpoint as ck
from pipeline.session import TorchrunSession
from pipeline.train import InjectedFault, run_training
from tests.pipeline.helpers import assert_states_equal, parity_cfg


def test_parity_is_learned_through_the_generic_loop(tmp_path):
    cfg = parity_cfg(max_steps=300, batch_size=16, lr=0.05, warmup_steps=10,
                     checkpoint_every=150, parity={"seq_len": 4, "hidden": 32, "n_train": 1024,
                                                   "n_val": 128})
    last = run_training(cfg, {}, TorchrunSession(tmp_path))
    assert last["step"] == 300
    assert last["val_accuracy"] == 1.0  # chance is 0.5; a non-gated linear model stays there
    meta = ck.read_meta(tmp_path / "checkpoint_000000300")
    assert meta["task"] == "parity" and meta["sampler"]["seed"] == 0


def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path):
    """Dropout, shuffling and a spawned DataLoader worker on; crash at a non-checkpoint step."""
    cfg = parity_cfg(max_steps=11, checkpoint_every=4, loader_workers=1,
                     parity={"dropout": 0.3, "n_train": 40})  # 5 steps per epoch
    straight = tmp_path / "straight"
    run_training(cfg, {}, TorchrunSession(straight))

    crashed = tmp_path / "crashed"
    marker = tmp_path / "fault"
    faulty = {**cfg, "_fault": {"rank": 0, "step": 7, "marker": str(marker), "how": "raise"}}
    with pytest.raises(InjectedFault):
        run_training(faulty, {}, TorchrunSession(crashed))
    assert marker.exists()
    assert sorted(p.name for p in crashed.glob("checkpoint_*")) == [
        "checkpoint_000000004"]  # step 7 is mid-epoch 1 and not a checkpoint step
    run_training(faulty, {}, TorchrunSession(crashed))  # resumes from step 4

    a, b = straight / "checkpoint_000000011", crashed / "checkpoint_000000011"
    assert_states_equal(ck.load_state(a), ck.load_state(b))
    assert ck.read_meta(a)["step"] == ck.read_meta(b)["step"] == 11
    assert ck.read_meta(a)["sampler"] == ck.read_meta(b)["sampler"]


def test_trace_records_what_each_step_trained_on(tmp_path):
    cfg = {**parity_cfg(max_steps=5, shuffle=False), "_trace": {"dir": str(tmp_path)}}
    run_training(cfg, {}, TorchrunSession(tmp_path / "out"))
    lines = [json.loads(x) for x in (tmp_path / "trace_rank0.jsonl").read_text().splitlines()]
    assert [x["ids"] for x in lines] == [list(range(8 * k, 8 * k + 8)) for k in range(5)]
