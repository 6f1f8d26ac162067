"""The YAML `model:` section reaches GatedGNNConfig whole, and bad values fail at the door."""

from pathlib import Path

import pytest

from pipeline.config import ConfigError, ModelConfig, load_config
from pipeline.tasks.weather import WeatherGlobalTask

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"

NON_DEFAULT = {"hidden": 24, "processor_layers": 5, "dropout": 0.25,
               "gradient_checkpointing": True, "processor": "interaction",
               "gate_mode": "streams", "heads": 3, "gate_hidden": 11, "attention_hidden": 13}


def test_every_model_key_reaches_the_network_config():
    assert set(NON_DEFAULT) == set(ModelConfig.model_fields)  # a new key must be added here
    cfg = load_config(SMOKE, [f"model.{k}={v}" for k, v in NON_DEFAULT.items()])
    # model_config needs only the config and the channel list, not the prepared store
    task = WeatherGlobalTask.__new__(WeatherGlobalTask)
    task.cfg, task.channels = cfg.model_dump(mode="json"), list(cfg.data.variables)
    config = task.model_config()
    assert {k: getattr(config, k) for k in NON_DEFAULT} == NON_DEFAULT


def test_defaults_are_the_released_gated_processor():
    m = ModelConfig()
    assert (m.processor, m.gate_mode, m.heads, m.gate_hidden, m.attention_hidden) == (
        "gated", "mean", 4, None, 64)


@pytest.mark.parametrize("override, message", [
    ("model.processor=gat", "interaction"),
    ("model.gate_mode=sum", "streams"),
    ("model.heads=0", "heads"),
    ("model.attention_hidden=0", "attention_hidden"),
])
def test_bad_model_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(SMOKE, [override])
