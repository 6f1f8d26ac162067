"""Every shipped config validates (a typo in configs/ fails here, not in a user's run)."""

from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.stages import pipeline_stages

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_configs_are_shipped():
    assert {"smoke.yaml", "parity.yaml"} <= {p.name for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_validates_and_plans_its_stages(path):
    cfg = load_config(path)
    stages = pipeline_stages(cfg.model_dump(mode="json"))
    assert list(stages)[-1] == "evaluate"
    assert cfg.name == path.stem
