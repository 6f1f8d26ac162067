"""Every shipped config validates (a typo in configs/ fails here, not in a user's run)."""

from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.stages import pipeline_stages

ROOT = Path(__file__).resolve().parents[1]
NIGHTLY = ("nightly.yaml",)  # workflow configs (workflows/config.py), not pipeline configs
CONFIGS = sorted(p for p in (ROOT / "configs").glob("*.yaml") if p.name not in NIGHTLY)


def test_configs_are_shipped():
    assert {"smoke.yaml", "parity.yaml"} <= {p.name for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_validates_and_plans_its_stages(path):
    cfg = load_config(path)
    stages = pipeline_stages(cfg.model_dump(mode="json"))
    assert list(stages)[-1] == "evaluate"
    assert cfg.name == path.stem


@pytest.mark.parametrize("name", NIGHTLY)
def test_shipped_nightly_config_validates_with_a_training_config_that_does(name):
    from workflows.config import load_nightly_config

    cfg = load_nightly_config(ROOT / "configs" / name)
    assert cfg.model.checkpoint is None  # bootstraps from nothing
    train = load_config(ROOT / cfg.model.train_config, list(cfg.model.overrides))
    assert train.train.task == "weather_global"
    assert cfg.forecast.lead_hours % 6 == 0
