"""Parameter counts: the shipped OneForecast configs against the figures their comments state,
and the model's count against a layer-by-layer formula written out here."""

import re
from pathlib import Path

import pytest

from models.oneforecast import GatedGNNConfig, count_parameters, parameter_breakdown
from pipeline.config import load_config
from pipeline.tasks.weather import WeatherGlobalTask

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def mlp(n_in: int, hidden: int, n_out: int, layer_norm: bool = True) -> int:
    return linear(n_in, hidden) + linear(hidden, n_out) + (2 * n_out if layer_norm else 0)


def expected_count(c: GatedGNNConfig) -> int:
    """GraphCast layout with OneForecast's gated processor, from the shapes in the docstrings."""
    d, h = c.hidden, c.heads
    interaction = mlp(3 * d, d, d) + mlp(2 * d, d, d)
    if c.processor == "gated":
        gate = linear(3 * d, c.gate_width) + linear(c.gate_width, 3 * h)
        attention = linear(d, c.attention_hidden) + linear(c.attention_hidden, h)
        layer = mlp(3 * d, d, d) + gate + attention + mlp((h + 1) * d, d, d)
    else:
        layer = interaction
    embedders = (mlp(c.in_channels + c.node_features, d, d) + mlp(c.node_features, d, d)
                 + 3 * mlp(c.edge_features, d, d))  # grid, mesh; g2m, m2m, m2g edges
    encoder = interaction + mlp(d, d, d)  # grid -> mesh step + grid node update
    decoder = interaction + mlp(d, d, c.out_channels, layer_norm=False)
    return embedders + encoder + c.processor_layers * layer + decoder


def shipped_model_config(name: str) -> tuple[GatedGNNConfig, int]:
    """The GatedGNNConfig the weather task builds for configs/NAME.yaml, and the parameter count
    its comment states."""
    path = CONFIGS / f"{name}.yaml"
    cfg = load_config(path)
    # model_config needs only the config and the channel list, not the prepared store
    task = WeatherGlobalTask.__new__(WeatherGlobalTask)
    task.cfg, task.channels = cfg.model_dump(mode="json"), list(cfg.data.variables)
    stated = re.search(r"^#.*Parameters: ([\d,]+)", path.read_text(), re.MULTILINE)
    return task.model_config(), int(stated.group(1).replace(",", ""))


def test_paper_config_is_the_papers_scale_and_matches_its_stated_count():
    config, stated = shipped_model_config("oneforecast_1p5deg")
    # 69 channels + the 5 default forcings (train.forcings)
    assert (config.in_channels, config.out_channels) == (69 + 5, 69)
    assert (config.hidden, config.processor_layers, config.heads) == (512, 16, 4)
    assert (config.gate_width, config.attention_hidden) == (64, 64)
    count = count_parameters(config)
    assert abs(count - stated) <= 0.03 * stated, (count, stated)
    assert abs(count - 50e6) <= 0.03 * 50e6  # the paper's "about 50 M"


def test_small_config_matches_its_stated_count():
    config, stated = shipped_model_config("oneforecast_small")
    assert abs(count_parameters(config) - stated) <= 0.03 * stated


@pytest.mark.parametrize(
    "overrides",
    [{}, {"gate_mode": "streams", "heads": 3, "gate_hidden": 7, "attention_hidden": 5},
     {"processor": "interaction"}],
)
def test_count_matches_layer_by_layer_formula(overrides):
    paper, _ = shipped_model_config("oneforecast_1p5deg")
    config = GatedGNNConfig.from_dict(paper.to_dict() | overrides)
    assert count_parameters(config) == expected_count(config)
    small = GatedGNNConfig(in_channels=7, out_channels=5, hidden=24, processor_layers=3,
                           **overrides)
    assert count_parameters(small) == expected_count(small)
    assert sum(parameter_breakdown(small).values()) == count_parameters(small)
