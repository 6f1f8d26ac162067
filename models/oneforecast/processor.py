"""Processor: a stack of gated message-passing steps on the mesh (unshared weights)."""

from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .layers import GatedInteraction, mlp


class Processor(nn.Module):
    def __init__(
        self,
        edge_features: int,
        hidden: int,
        layers: int,
        dropout: float,
        gradient_checkpointing: bool = False,
    ):
        super().__init__()
        self.edge_embed = mlp(edge_features, hidden, hidden)
        self.layers = nn.ModuleList(GatedInteraction(hidden, dropout) for _ in range(layers))
        self.gradient_checkpointing = gradient_checkpointing

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
