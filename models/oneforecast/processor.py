"""Processor: a stack of message-passing steps on the mesh (unshared weights), gated
(OneForecast) or ungated (GraphCast's interaction network) by config."""

from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .config import GatedGNNConfig
from .gated_layer import GatedLayer
from .interaction import InteractionNetwork
from .layers import mlp


def processor_layer(config: GatedGNNConfig) -> nn.Module:
    """One mesh -> mesh step of the configured kind; both map (v_src, v_dst, edge_index, e) to
    (v'_dst, e')."""
    c = config
    if c.processor == "interaction":
        return InteractionNetwork(c.hidden, c.dropout)
    return GatedLayer(c.hidden, c.heads, c.gate_width, c.attention_hidden, c.gate_mode, c.dropout)


class Processor(nn.Module):
    def __init__(self, config: GatedGNNConfig):
        super().__init__()
        self.edge_embed = mlp(config.edge_features, config.hidden, config.hidden)
        self.layers = nn.ModuleList(
            processor_layer(config) for _ in range(config.processor_layers)
        )
        self.gradient_checkpointing = config.gradient_checkpointing

    def forward(self, h_mesh: Tensor, mesh_edges: Tensor, mesh_attr: Tensor) -> Tensor:
        """h_mesh: [B, N_mesh, D], mesh_edges: [2, E], mesh_attr: [E, F_e] -> [B, N_mesh, D]."""
        e = self.edge_embed(mesh_attr)  # [E, D], then [B, E, D] after the first step
        for layer in self.layers:
            if self.gradient_checkpointing and self.training:
                # keep only each step's inputs; recompute its activations in backward
                h_mesh, e = checkpoint(layer, h_mesh, h_mesh, mesh_edges, e, use_reentrant=False)
            else:
                h_mesh, e = layer(h_mesh, h_mesh, mesh_edges, e)
        return h_mesh
