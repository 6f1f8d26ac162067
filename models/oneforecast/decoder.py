"""Decoder: one interaction step mesh -> grid, then the output MLP (no LayerNorm) per grid node."""

from torch import Tensor, nn

from .interaction import InteractionNetwork
from .layers import mlp


class Decoder(nn.Module):
    def __init__(self, edge_features: int, hidden: int, out_channels: int, dropout: float):
        super().__init__()
        self.edge_embed = mlp(edge_features, hidden, hidden)
        self.mesh2grid = InteractionNetwork(hidden, dropout)
        # no LayerNorm on the output (GraphCast, OneForecast): the target is not unit-normed
        self.head = mlp(hidden, hidden, out_channels, layer_norm=False)

    def forward(
        self, h_mesh: Tensor, h_grid: Tensor, mesh2grid_edges: Tensor, mesh2grid_attr: Tensor
    ) -> Tensor:
        """h_mesh: [B, N_mesh, D], h_grid: [B, N_grid, D], mesh2grid_edges: [2, E],
        mesh2grid_attr: [E, F_e] -> [B, N_grid, C_out]."""
        e = self.edge_embed(mesh2grid_attr)  # [E, D]
        h_grid, _ = self.mesh2grid(h_mesh, h_grid, mesh2grid_edges, e)  # [B, N_grid, D]
        return self.head(h_grid)
