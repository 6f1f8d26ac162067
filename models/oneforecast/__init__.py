"""OneForecast-style gated GNN: encoder, gated message-passing processor, decoder."""

from .config import GatedGNNConfig
from .model import GatedGNN

__all__ = ["GatedGNN", "GatedGNNConfig"]
