"""The video-QA task through the one training loop (no Ray): ingest → train → evaluate."""

from __future__ import annotations

import json

import pytest
import torch

from pipeline import checkpoint as ck
from pipeline.config import load_config
from pipeline.ingest.video import prepare_video
from pipeline.session import TorchrunSession
from pipeline.synthetic_video import QUESTION_TYPES, VideoQASpec, write_synthetic_videoqa
from pipeline.tasks.videoqa import VideoQATask, collate
from pipeline.train import run_training
from tests.pipeline.helpers import assert_states_equal

REPO_CONFIG = "configs/videoqa.yaml"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("video")
    src = write_synthetic_videoqa(root / "src", VideoQASpec(n_train=12, n_val=4, n_test=6,
                                                            frames=(128, 200), feature_dim=8))
    prepare_video(src["features"], {k: src[k] for k in ("train", "val", "test")},
                  root / "videoqa", chunk_frames=64, answer_features=src["answer_features"])
    return root / "videoqa"


def tiny_cfg(**model) -> dict:
    overrides = ["train.max_steps=4", "train.checkpoint_every=2", "train.batch_size=4",
                 "train.num_workers=1", "train.warmup_steps=1", "video.model.d_model=16",
                 "video.model.hidden=16", "video.model.ssm_modes=8", "video.model.heads=2",
                 "video.model.fusion_heads=2", "video.model.video_tokens=8",
                 *(f"video.model.{k}={v}" for k, v in model.items())]
    return load_config(REPO_CONFIG, overrides).model_dump(mode="json")


def test_batches_pad_ragged_videos_and_carry_their_lengths(prepared):
    task = VideoQATask(tiny_cfg(), {"video": str(prepared)})
    data = task.train_dataset()
    assert len(data) == 12 * len(QUESTION_TYPES)
    batch = collate([data[i] for i in range(0, 48, 4)])  # questions of 12 different videos
    lengths = batch["lengths"]
    assert batch["frames"].shape == (12, int(lengths.max()), 8) and lengths.min() >= 128
    for row, i in enumerate(range(0, 48, 4)):
        n = int(lengths[row])
        video = task.prepared.video(int(task.prepared.qa["train"]["video_index"][i]))
        torch.testing.assert_close(batch["frames"][row, :n], torch.from_numpy(video))
        assert batch["frames"][row, n:].abs().sum() == 0
    # the options' precomputed features ride along, row for row ([B, 5, D] float32)
    stored = task.prepared.qa["train"]["answer_features"][list(range(0, 48, 4))]
    assert batch["answer_features"].dtype == torch.float32
    torch.testing.assert_close(batch["answer_features"], torch.from_numpy(stored).float())


@pytest.mark.parametrize("slot,c3", [("ssl", True), ("conv", False), ("meanpool", False)])
def test_the_loop_trains_resumes_exactly_and_evaluates_per_type(prepared, tmp_path, slot, c3):
    cfg = tiny_cfg(slot=slot, c3=c3)
    inputs = {"video": str(prepared)}
    last = run_training(cfg, inputs, TorchrunSession(tmp_path / "a"))
    assert last["step"] == 4 and ("c3" in last) == c3
    # a second run from its step-2 checkpoint ends where the straight run ended
    (tmp_path / "b").mkdir()
    import shutil
    shutil.copytree(tmp_path / "a" / "checkpoint_000000002", tmp_path / "b" /
                    "checkpoint_000000002")
    run_training(cfg, inputs, TorchrunSession(tmp_path / "b"))
    a, b = (ck.load_state(p / "checkpoint_000000004") for p in (tmp_path / "a", tmp_path / "b"))
    assert_states_equal(a, b)

    task = VideoQATask(cfg, inputs)
    model = task.build_model()
    model.load_state_dict(a["model"])
    scores = task.evaluate(model, tmp_path, max_samples=1000)
    assert scores["questions"] == 6 * len(QUESTION_TYPES) and scores["split"] == "test"
    assert set(scores["by_type"]) == set(QUESTION_TYPES)
    assert json.loads((tmp_path / "scores.json").read_text()) == scores
    meta = ck.read_meta(tmp_path / "a" / "checkpoint_000000004")
    assert meta["task"] == "videoqa" and meta["model_config"]["slot"] == slot


def test_c3_adds_its_weighted_term_to_the_answer_loss(prepared):
    on, off = tiny_cfg(c3=True, c3_weight=1.0), tiny_cfg(c3=False)
    task_on, task_off = VideoQATask(on, {"video": str(prepared)}), VideoQATask(off, {
        "video": str(prepared)})
    torch.manual_seed(0)
    model = task_on.build_model()
    batch = collate([task_on.train_dataset()[i] for i in range(4)])
    loss_on, m_on = task_on.loss(model, batch, torch.device("cpu"))
    loss_off, _ = task_off.loss(model, batch, torch.device("cpu"))
    torch.testing.assert_close(loss_on - loss_off, m_on["c3"])
    assert m_on["c3"] > 0


def test_the_videoqa_pipeline_runs_as_ray_stages(ray_cluster, tmp_path):
    """ingest (synthetic source written and packed by Dask) → train (Ray Train local mode) →
    evaluate, then a re-run that skips all three."""
    from pipeline.runner import run_stages
    from pipeline.stages import pipeline_stages

    cfg = load_config(REPO_CONFIG, [
        "video.data.synthetic.n_train=8", "video.data.synthetic.n_val=2",
        "video.data.synthetic.n_test=3", "video.data.synthetic.frames=[128, 160]",
        "video.data.chunk_frames=64", "train.num_workers=0", "train.max_steps=2",
        "train.checkpoint_every=2", "train.batch_size=4", "video.model.d_model=16",
        "video.model.hidden=16", "video.model.ssm_modes=8", "video.model.fusion_heads=2",
        "video.model.video_tokens=8"]).model_dump(mode="json")
    stages = pipeline_stages(cfg)
    assert list(stages) == ["ingest", "train", "evaluate"]
    manifest = run_stages(stages, cfg, tmp_path / "run", ["evaluate"], ray_cluster)
    assert {k: v["status"] for k, v in manifest["stages"].items()} == {
        "ingest": "done", "train": "done", "evaluate": "done"}
    scores = json.loads((tmp_path / "run" / "evaluate" / "scores.json").read_text())
    assert scores["questions"] == 3 * len(QUESTION_TYPES)
    summary = json.loads((tmp_path / "run" / "ingest" / "ingest_summary.json").read_text())
    assert summary["videos"] == 13 and summary["questions"]["train"] == 32
    again = run_stages(stages, cfg, tmp_path / "run", ["evaluate"], ray_cluster)
    assert {v["status"] for v in again["stages"].values()} == {"skipped"}
