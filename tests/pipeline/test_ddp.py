"""Real DDP: 2 gloo workers launched by Ray Train V2 on the session's local Ray cluster.

These are the few tests that need multi-worker semantics (each fit costs ~30 s before work).
"""

import json
from pathlib import Path

import pytest
import torch

from pipeline import checkpoint as ck
from pipeline.tasks.parity import ParityTask
from pipeline.train import fit, seed_everything
from tests.pipeline.helpers import assert_states_equal, parity_cfg

pytestmark = pytest.mark.ddp


def read_trace(directory: Path, rank: int) -> list[dict]:
    return [json.loads(x) for x in (directory / f"trace_rank{rank}.jsonl").read_text().splitlines()]


def test_two_workers_split_the_epoch_and_match_one_worker(ray_cluster, tmp_path):
    # n_train 32, global batch 8 → 4 steps an epoch; 6 steps cross into a reshuffled epoch 1.
    steps, batch = 6, 8
    common = dict(max_steps=steps, batch_size=batch, checkpoint_every=steps, shuffle=True,
                  lr=0.05, parity={"n_train": 32, "dropout": 0.0})
    (tmp_path / "t2").mkdir(), (tmp_path / "t1").mkdir()
    cfg2 = {**parity_cfg(num_workers=2, **common), "_trace": {"dir": str(tmp_path / "t2")}}
    cfg1 = {**parity_cfg(num_workers=0, **common), "_trace": {"dir": str(tmp_path / "t1")}}
    ddp = Path(fit(cfg2, {}, tmp_path / "s2", "ddp").path)
    single = Path(fit(cfg1, {}, tmp_path / "s1", "single").path)  # local mode: world size 1

    r0, r1 = read_trace(tmp_path / "t2", 0), read_trace(tmp_path / "t2", 1)
    one = read_trace(tmp_path / "t1", 0)
    assert [len(x["ids"]) for x in r0 + r1] == [batch // 2] * (2 * steps)
    epoch0 = [i for x in r0[:4] for i in x["ids"]], [i for x in r1[:4] for i in x["ids"]]
    assert set(epoch0[0]).isdisjoint(epoch0[1])  # disjoint ...
    assert sorted(epoch0[0] + epoch0[1]) == list(range(32))  # ... and covering the epoch
    for a, b, c in zip(r0, r1, one, strict=True):  # the same global batch at every step
        assert sorted(a["ids"] + b["ids"]) == sorted(c["ids"])

    assert ck.read_meta(ddp)["world_size"] == 2 and ck.read_meta(single)["world_size"] == 1
    m2, m1 = ck.load_state(ddp)["model"], ck.load_state(single)["model"]
    assert m2.keys() == m1.keys()
    for k in m1:
        torch.testing.assert_close(m2[k], m1[k], rtol=0, atol=1e-6, msg=f"parameter {k}")
    seed_everything(0)
    init = ParityTask(cfg1, {}).build_model().state_dict()
    assert max((m1[k] - init[k]).abs().max().item() for k in m1) > 1e-3  # it did train


def test_sigkilled_worker_resumes_bitwise(ray_cluster, tmp_path):
    """SIGKILL rank 1 mid-epoch at a non-checkpoint step, with shuffling, dropout and a spawned
    DataLoader worker; Ray Train restarts the group from the last checkpoint."""
    cfg = parity_cfg(num_workers=2, batch_size=8, max_steps=9, checkpoint_every=4,
                     loader_workers=1, max_failures=1, parity={"n_train": 40, "dropout": 0.3})
    straight = Path(fit(cfg, {}, tmp_path / "straight", "run").path)
    marker = tmp_path / "killed"
    faulty = {**cfg, "_fault": {"rank": 1, "step": 6, "marker": str(marker)}}
    resumed = Path(fit(faulty, {}, tmp_path / "faulty", "run").path)
    assert marker.exists()  # the kill really happened
    assert_states_equal(ck.load_state(straight), ck.load_state(resumed))
    for rank in (0, 1):
        assert_states_equal(ck.load_rng(straight, rank), ck.load_rng(resumed, rank))
    a, b = ck.read_meta(straight), ck.read_meta(resumed)
    assert a["step"] == b["step"] == 9 and a["sampler"] == b["sampler"]
