"""The same training loop under plain torchrun (no Ray): 2 gloo processes on the parity task."""

import json
import os
import subprocess
import sys

import pytest

from pipeline import checkpoint as ck
from tests.pipeline.helpers import parity_cfg

pytestmark = pytest.mark.ddp


def test_torchrun_two_processes_train_and_checkpoint(tmp_path):
    cfg = parity_cfg(num_workers=2, max_steps=4, checkpoint_every=2)
    run_json = tmp_path / "run.json"
    run_json.write_text(json.dumps({"cfg": cfg, "inputs": {}}))
    # A `ray` that cannot be imported, first on the path: the loop must not need Ray here.
    blocker = tmp_path / "no_ray" / "ray"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('ray is not on this machine')\n")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join([str(blocker.parent), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "pipeline.train", str(run_json), str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[train] step=4" in proc.stdout
    last = tmp_path / "out" / "checkpoint_000000004"
    meta = ck.read_meta(last)
    assert meta["world_size"] == 2 and meta["step"] == 4
    assert (last / "rng_rank0.pt").is_file() and (last / "rng_rank1.pt").is_file()
