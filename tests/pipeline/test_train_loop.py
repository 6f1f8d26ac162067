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


# -- the weather task through the loop: rollout curriculum by global step ------------------------
@pytest.fixture(scope="module")
def weather_inputs(tmp_path_factory):
    from graphs import GraphSpec, build_graph, save_graph
    from pipeline.ingest import open_prepared, prepare_weather
    from pipeline.synthetic import write_synthetic_era5

    root = tmp_path_factory.mktemp("weather_loop")
    source = write_synthetic_era5(root / "era5.zarr", start="2020-01-01", end="2020-01-04T18",
                                  n_lat=8, n_lon=16, levels=(500,))
    prepare_weather(source, root / "prepared.zarr",
                    variables=["geopotential@500", "2m_temperature"],
                    train_period=("2020-01-01", "2020-01-02T18"))
    store = open_prepared(root / "prepared.zarr")
    save_graph(build_graph(GraphSpec(lat=tuple(store.lat), lon=tuple(store.lon), mesh_levels=1)),
               root / "graph.pt")
    return {"prepared": str(root / "prepared.zarr"), "graph": str(root / "graph.pt")}


class RecordingSession(TorchrunSession):
    def __init__(self, out_dir):
        super().__init__(out_dir)
        self.reports = []

    def report(self, metrics, checkpoint):
        self.reports.append(metrics)
        super().report(metrics, checkpoint)


def test_weather_rollout_curriculum_follows_the_global_step_and_resumes_exactly(
        tmp_path, weather_inputs):
    from pipeline.config import Config

    cfg = Config.model_validate({
        "data": {"variables": ["geopotential@500", "2m_temperature"],
                 "periods": {"train": ["2020-01-01", "2020-01-02T18"],
                             "val": ["2020-01-03", "2020-01-03T18"],
                             "test": ["2020-01-04", "2020-01-04T18"]}},
        "model": {"hidden": 8, "processor_layers": 1, "heads": 2, "attention_hidden": 8,
                  "dropout": 0.2},
        "train": {"num_workers": 1, "batch_size": 2, "max_steps": 6, "checkpoint_every": 2,
                  "warmup_steps": 1, "loader_workers": 0,
                  "rollout": {"schedule": [[0, 1], [2, 2], [4, 3]]}},
    }).model_dump(mode="json")
    straight = RecordingSession(tmp_path / "straight")
    run_training(cfg, weather_inputs, straight)
    # reported at steps 2, 4, 6: the k of the step just taken (indices 1, 3, 5), train and val
    assert [(m["step"], m["rollout_steps"], m["val_rollout_steps"]) for m in straight.reports] \
        == [(2, 1, 1), (4, 2, 2), (6, 3, 3)]

    crashed = tmp_path / "crashed"
    faulty = {**cfg, "_fault": {"rank": 0, "step": 3, "marker": str(tmp_path / "fault"),
                                "how": "raise"}}
    with pytest.raises(InjectedFault):
        run_training(faulty, weather_inputs, TorchrunSession(crashed))
    run_training(faulty, weather_inputs, TorchrunSession(crashed))  # resumes at step 2: k = 2
    a, b = straight.out_dir / "checkpoint_000000006", crashed / "checkpoint_000000006"
    assert_states_equal(ck.load_state(a), ck.load_state(b))


def test_spread_subset_spans_the_period_evenly():
    from pipeline.train import spread_subset

    data = list(range(100))
    sub = spread_subset(data, 5)
    assert [sub[i] for i in range(len(sub))] == [0, 25, 50, 74, 99]  # round(99 * k / 4)
    assert spread_subset(data, None) is data and spread_subset(data, 100) is data
    assert len(spread_subset(data, 99)) == 99
