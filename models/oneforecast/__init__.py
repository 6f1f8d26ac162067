"""OneForecast-style gated GNN: encoder, gated message-passing processor, decoder."""

from .config import GatedGNNConfig
from .model import GatedGNN
from .size import count_parameters, parameter_breakdown

__all__ = ["GatedGNN", "GatedGNNConfig", "count_parameters", "parameter_breakdown"]
