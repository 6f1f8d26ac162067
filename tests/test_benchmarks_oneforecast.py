"""benchmarks/oneforecast_step.py: its paper settings are the shipped config's, its
re-implementation of the released processor step equals our gated layer, and the --paper-size
path runs end to end on CPU (--dry-run) without the pipeline's dependencies, as it must on a bare
GPU machine."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from benchmarks.oneforecast_step import (
    ONE_AND_HALF,
    PAPER_GRAPH,
    PAPER_MODEL,
    ReleasedGatedStep,
    degree_bucketed_sum,
    in_edges,
)
from graphs import GraphSpec
from models.oneforecast.gated_layer import GatedLayer
from pipeline.config import load_config
from pipeline.stages import graph_spec

ROOT = Path(__file__).resolve().parents[1]


def test_paper_settings_are_the_shipped_config():
    cfg = load_config(ROOT / "configs" / "oneforecast_1p5deg.yaml").model_dump(mode="json")
    spec = graph_spec(cfg, ONE_AND_HALF["lat"], ONE_AND_HALF["lon"])
    assert spec == GraphSpec(**ONE_AND_HALF, **PAPER_GRAPH)
    assert {k: cfg["model"][k] for k in PAPER_MODEL} == PAPER_MODEL


def test_degree_bucketed_sum_is_the_sum_into_receivers():
    g = torch.Generator().manual_seed(0)
    receivers = torch.tensor([3, 0, 3, 1, 3, 0, 5])  # node 2 and 4 have no in-edges
    edge_index = torch.stack([torch.zeros_like(receivers), receivers])
    messages = torch.randn(7, 2, 5, generator=g, dtype=torch.float64)
    got = degree_bucketed_sum(messages, in_edges(edge_index, 6))
    want = torch.zeros(6, 2, 5, dtype=torch.float64).index_add_(0, receivers, messages)
    torch.testing.assert_close(got, want)


def test_released_step_equals_gated_layer():
    torch.manual_seed(0)
    layer = GatedLayer(24, heads=4, gate_hidden=16, attention_hidden=8).double()
    step = ReleasedGatedStep.from_layer(layer)
    rng = np.random.default_rng(0)
    edge_index = torch.as_tensor(rng.integers(0, 11, size=(2, 63)))
    v = torch.randn(1, 11, 24, dtype=torch.float64)
    e = torch.randn(63, 24, dtype=torch.float64)
    (v_ours, e_ours), (v_theirs, e_theirs) = layer(v, v, edge_index, e), step(v, v, edge_index, e)
    torch.testing.assert_close(v_theirs, v_ours)
    torch.testing.assert_close(e_theirs, e_ours.reshape(63, 24))


def test_paper_size_dry_run_without_pipeline_dependencies(tmp_path):
    # what a bare GPU machine lacks; --budget-s 0 takes the extrapolation branch
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\nfor name in ('ray', 'zarr', 'dask', 'pydantic', 'yaml'):\n"
        "    sys.modules[name] = None\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "benchmarks/oneforecast_step.py", "--paper-size", "--dry-run",
         "--budget-s", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "oneforecast_step.dry_run"
    figures = result["figures"]
    assert figures["released_max_rel_rms"] < 1e-9
    assert figures["released_extrapolated"] == 1
    assert {"paper_s_per_sample_bf16", "paper_s_per_sample_fp32", "vs_released_algorithm"} <= set(
        figures
    )
