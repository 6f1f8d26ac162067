"""Stage caching by fingerprint, on the real stages and the session's Ray cluster.

Training runs in Ray Train's local mode (num_workers=0) so these tests exercise the task logic
and the runner without paying for a worker group.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import Config
from pipeline.runner import run_stages
from pipeline.stages import pipeline_stages

STAGES = ["ingest", "graph", "train", "evaluate"]


def tiny_cfg(**overrides) -> dict:
    raw = {
        "name": "tiny",
        "data": {"synthetic": {"start": "2020-01-01", "end": "2020-01-06T18", "n_lat": 16,
                               "n_lon": 32},
                 "variables": ["geopotential@500", "2m_temperature"],
                 "periods": {"train": ["2020-01-01", "2020-01-03T18"],
                             "val": ["2020-01-04", "2020-01-04T18"],
                             "test": ["2020-01-05", "2020-01-06T18"]}},
        "graph": {"mesh_levels": 1},
        "model": {"hidden": 8, "processor_layers": 1},
        "train": {"num_workers": 0, "batch_size": 2, "max_steps": 3, "checkpoint_every": 3,
                  "warmup_steps": 1, "loader_workers": 0},
    }
    for key, value in overrides.items():
        section, field = key.split(".")
        raw.setdefault(section, {})[field] = value
    return Config.model_validate(raw).model_dump(mode="json")


def run(cfg, run_dir, cluster) -> dict:
    return run_stages(pipeline_stages(cfg), cfg, run_dir, STAGES, cluster)


def statuses(manifest) -> dict:
    return {name: rec["status"] for name, rec in manifest["stages"].items()}


@pytest.fixture(scope="module")
def first_run(ray_cluster, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    manifest = run(tiny_cfg(), run_dir, ray_cluster)
    return run_dir, manifest


def test_first_run_produces_every_output_and_a_manifest(first_run, ray_cluster):
    run_dir, manifest = first_run
    assert statuses(manifest) == dict.fromkeys(STAGES, "done")
    assert manifest["cluster"]["gcs_address"] == ray_cluster["gcs_address"]
    recorded = {"fingerprint", "status", "seconds", "node_id", "outputs", "main_output"}
    for name in STAGES:
        rec = manifest["stages"][name]
        assert recorded <= set(rec) and rec["node_id"] and rec["outputs"]
    on_disk = json.loads((run_dir / "manifest.json").read_text())
    assert statuses(on_disk) == statuses(manifest)
    scores = json.loads((run_dir / "evaluate" / "scores.json").read_text())
    assert set(scores["variables"]) == {"geopotential_500", "2m_temperature"}
    assert (run_dir / "evaluate" / "scores.png").stat().st_size > 0
    assert (run_dir / "train" / "checkpoint" / "meta.json").is_file()
    assert not list(run_dir.glob(".*.tmp")) and not list((run_dir / ".work").iterdir())


def copy_run(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst


def test_rerun_skips_every_stage(first_run, ray_cluster, tmp_path):
    run_dir = copy_run(first_run[0], tmp_path)
    assert statuses(run(tiny_cfg(), run_dir, ray_cluster)) == dict.fromkeys(STAGES, "skipped")


@pytest.mark.parametrize(
    "change, expected_rerun",
    [
        ({"graph.radius_fraction": 0.7}, ["graph", "train", "evaluate"]),
        ({"train.max_steps": 4}, ["train", "evaluate"]),
        ({"evaluate.max_samples": 3}, ["evaluate"]),
    ],
)
def test_a_changed_value_reruns_its_stage_and_downstream(first_run, ray_cluster, tmp_path,
                                                          change, expected_rerun):
    run_dir = copy_run(first_run[0], tmp_path)
    got = statuses(run(tiny_cfg(**change), run_dir, ray_cluster))
    assert got == {s: "done" if s in expected_rerun else "skipped" for s in STAGES}


@pytest.mark.parametrize("damage", ["delete", "corrupt"])
def test_damaged_output_reruns_its_stage(first_run, ray_cluster, tmp_path, damage):
    run_dir = copy_run(first_run[0], tmp_path)
    target = run_dir / "graph" / "graph.pt"
    if damage == "delete":
        target.unlink()
    else:
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    got = statuses(run(tiny_cfg(), run_dir, ray_cluster))
    # The rebuilt graph has the same fingerprint, so nothing downstream needs to run again.
    assert got == {"ingest": "skipped", "graph": "done", "train": "skipped",
                   "evaluate": "skipped"}
    assert (run_dir / "graph" / "graph.pt").read_bytes() == (
        first_run[0] / "graph" / "graph.pt").read_bytes()


def test_half_written_stage_directory_never_counts(first_run, ray_cluster, tmp_path):
    run_dir = copy_run(first_run[0], tmp_path)
    shutil.move(run_dir / "evaluate", run_dir / ".evaluate.tmp")  # as if killed mid-publish
    got = statuses(run(tiny_cfg(), run_dir, ray_cluster))
    assert got["evaluate"] == "done" and not (run_dir / ".evaluate.tmp").exists()


def test_user_error_inside_a_stage_surfaces_as_itself(ray_cluster, tmp_path):
    from pipeline.errors import DataError

    cfg = tiny_cfg(**{"data.variables": ["geopotential@300"]})
    with pytest.raises(DataError, match="level"):
        run(cfg, tmp_path / "run", ray_cluster)
    assert not (tmp_path / "run" / "ingest").exists()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"]["ingest"]["status"] == "failed"


def test_checkpoint_refuses_data_with_other_channels(first_run, tmp_path):
    from pipeline.errors import UserError
    from pipeline.evaluate import evaluate_checkpoint
    from pipeline.ingest import prepare_weather

    run_dir = first_run[0]
    other = tmp_path / "other.zarr"
    prepare_weather(run_dir / "ingest" / "raw.zarr", other, variables=["2m_temperature"],
                    train_period=("2020-01-01", "2020-01-03T18"))
    inputs = {"prepared": str(other), "graph": str(run_dir / "graph" / "graph.pt")}
    with pytest.raises(UserError) as e:
        evaluate_checkpoint(run_dir / "train" / "checkpoint", inputs, tmp_path, max_samples=2)
    assert "['geopotential_500', '2m_temperature']" in str(e.value)
    assert "['2m_temperature']" in str(e.value)


def test_mesh_too_fine_for_the_grid_is_a_config_error(first_run, ray_cluster, tmp_path):
    from pipeline.errors import ConfigError

    run_dir = copy_run(first_run[0], tmp_path)
    with pytest.raises(ConfigError, match="mesh_levels"):
        run(tiny_cfg(**{"graph.mesh_levels": 4}), run_dir, ray_cluster)
    assert (run_dir / "graph" / "graph.pt").read_bytes() == (
        first_run[0] / "graph" / "graph.pt").read_bytes()  # the old output is left alone


def test_weather_task_trains_on_a_nested_graph(ray_cluster, tmp_path):
    cfg = tiny_cfg(**{"graph.regions": [[0, 30, 105, 160]], "graph.region_levels": 1})
    manifest = run(cfg, tmp_path / "run", ray_cluster)
    assert statuses(manifest) == dict.fromkeys(STAGES, "done")
    summary = json.loads((tmp_path / "run" / "graph" / "graph_summary.json").read_text())
    assert summary["mesh_nodes_in_region"] > 0
    assert summary["nodes"]["mesh"] > 42  # level 1 has 42 nodes; the box added more
    scores = json.loads((tmp_path / "run" / "evaluate" / "scores.json").read_text())
    assert all(np.isfinite(v["rmse"]["model"]) for v in scores["variables"].values())
