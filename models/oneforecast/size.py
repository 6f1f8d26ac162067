"""Parameter counts of a GatedGNN configuration, without allocating its weights."""

import torch

from .config import GatedGNNConfig
from .model import GatedGNN


def _meta_model(config: GatedGNNConfig) -> GatedGNN:
    # the meta device gives shapes without memory or init time: the 50 M paper model is free
    with torch.device("meta"):
        return GatedGNN(config)


def count_parameters(config: GatedGNNConfig) -> int:
    """Number of trainable parameters of GatedGNN(config)."""
    return sum(p.numel() for p in _meta_model(config).parameters())


def parameter_breakdown(config: GatedGNNConfig) -> dict[str, int]:
    """Parameters per submodule two levels down ("encoder.grid_embed", "processor.layers", ...);
    the values sum to count_parameters(config)."""
    counts: dict[str, int] = {}
    for name, parameter in _meta_model(config).named_parameters():
        key = ".".join(name.split(".")[:2])
        counts[key] = counts.get(key, 0) + parameter.numel()
    return counts
