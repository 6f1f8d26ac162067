"""Encoder: embed grid inputs and mesh nodes, then pass one gated step grid -> mesh."""

import torch
from torch import Tensor, nn

from .layers import GatedInteraction, mlp


class Encoder(nn.Module):
    def __init__(
        self, in_channels: int, node_features: int, edge_features: int, hidden: int, dropout: float
    ):
        super().__init__()
        self.grid_embed = mlp(in_channels + node_features, hidden, hidden)
        self.mesh_embed = mlp(node_features, hidden, hidden)
        self.edge_embed = mlp(edge_features, hidden, hidden)
        self.grid2mesh = GatedInteraction(hidden, dropout)

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
        h_mesh, _ = self.grid2mesh(h_grid, h_mesh, grid2mesh_edges, e)
        return h_grid, h_mesh
