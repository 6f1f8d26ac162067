"""A small trained weather checkpoint and its data, shared by the workflow tests."""

from __future__ import annotations

import pytest

from pipeline.config import Config

SPECS = ["geopotential@500", "temperature@850", "2m_temperature"]
PERIODS = {"train": ["2020-01-01", "2020-01-02T18"], "val": ["2020-01-03", "2020-01-03T18"],
           "test": ["2020-01-04", "2020-01-04T18"]}
SOURCE_END = "2020-01-04T18"


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A synthetic source (8 x 16, 2020-01-01 .. 01-04T18), its prepared store, climatology
    and graph, and a checkpoint trained 4 steps on them by the training loop (two input states,
    so a forecast needs the analysis 6 h before its init time too)."""
    from graphs import build_graph, save_graph
    from pipeline.climatology import compute_climatology
    from pipeline.ingest import open_prepared, prepare_weather
    from pipeline.session import TorchrunSession
    from pipeline.stages import graph_spec
    from pipeline.synthetic import write_synthetic_era5
    from pipeline.train import run_training

    root = tmp_path_factory.mktemp("trained")
    source = write_synthetic_era5(root / "era5.zarr", start="2020-01-01", end=SOURCE_END,
                                  n_lat=8, n_lon=16, levels=(500, 850))
    prepare_weather(source, root / "prepared.zarr", variables=SPECS,
                    train_period=tuple(PERIODS["train"]))
    compute_climatology(root / "prepared.zarr", root / "climatology.zarr")
    cfg = Config.model_validate({
        "data": {"variables": SPECS, "periods": PERIODS},
        "graph": {"mesh_levels": 1},
        "model": {"hidden": 8, "processor_layers": 1, "heads": 2, "attention_hidden": 8},
        "train": {"num_workers": 1, "batch_size": 2, "max_steps": 4, "checkpoint_every": 4,
                  "warmup_steps": 1, "loader_workers": 0, "input_states": 2,
                  "forcings": ["local_time", "year_progress", "latitude"]},
    }).model_dump(mode="json")
    store = open_prepared(root / "prepared.zarr")
    save_graph(build_graph(graph_spec(cfg, store.lat, store.lon)), root / "graph.pt")
    inputs = {"prepared": str(root / "prepared.zarr"), "graph": str(root / "graph.pt")}
    run_training(cfg, inputs, TorchrunSession(root / "train"))
    return {"root": root, "source": source, "inputs": inputs, "cfg": cfg,
            "climatology": root / "climatology.zarr",
            "checkpoint": root / "train" / "checkpoint_000000004"}
