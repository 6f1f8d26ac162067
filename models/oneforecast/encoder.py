"""Encoder: embed grid inputs, mesh nodes and grid -> mesh edges, then one interaction step
grid -> mesh (GraphCast's, as in OneForecast's released encoder)."""

import torch
from torch import Tensor, nn

from .interaction import InteractionNetwork
from .layers import mlp


class Encoder(nn.Module):
    def __init__(
        self, in_channels: int, node_features: int, edge_features: int, hidden: int, dropout: float
    ):
        super().__init__()
        self.grid_embed = mlp(in_channels + node_features, hidden, hidden)
        self.mesh_embed = mlp(node_features, hidden, hidden)
        self.edge_embed = mlp(edge_features, hidden, hidden)
        self.grid2mesh = InteractionNetwork(hidden, dropout)
        # grid nodes send but receive nothing here; GraphCast still updates them with an MLP of
        # their own, v'_grid = v_grid + MLP(v_grid), before the decoder reads them
        self.grid_update = mlp(hidden, hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        grid_features: Tensor,
        mesh_features: Tensor,
        grid2mesh_edges: Tensor,
        grid2mesh_attr: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """x: [B, N_grid, C_in], grid_features: [N_grid, F], mesh_features: [N_mesh, F],
        grid2mesh_edges: [2, E], grid2mesh_attr: [E, F_e]. Returns h_grid [B, N_grid, D] and
        h_mesh [B, N_mesh, D]."""
        batch = x.shape[0]
        grid_features = grid_features.expand(batch, -1, -1)  # [B, N_grid, F]
        h_grid = self.grid_embed(torch.cat([x, grid_features], dim=-1))  # [B, N_grid, D]
        h_mesh = self.mesh_embed(mesh_features).expand(batch, -1, -1)  # [B, N_mesh, D]
        e = self.edge_embed(grid2mesh_attr)  # [E, D], shared by the batch
        h_mesh, _ = self.grid2mesh(h_grid, h_mesh, grid2mesh_edges, e)  # [B, N_mesh, D]
        h_grid = h_grid + self.dropout(self.grid_update(h_grid))
        return h_grid, h_mesh
