"""GatedGNN: encoder (grid -> mesh), processor (mesh -> mesh), decoder (mesh -> grid), output MLP.

The layout of GraphCast and of OneForecast's released model: embedders, one interaction step
grid -> mesh, `processor_layers` mesh steps (OneForecast's gated layer, or GraphCast's interaction
network for the ablation), one interaction step mesh -> grid, an output MLP without LayerNorm.
"""

from torch import Tensor, nn
from torch_geometric.data import HeteroData

from .config import GatedGNNConfig
from .decoder import Decoder
from .encoder import Encoder
from .processor import Processor

GRID2MESH = ("grid", "to", "mesh")
MESH2MESH = ("mesh", "to", "mesh")
MESH2GRID = ("mesh", "to", "grid")


class GatedGNN(nn.Module):
    """Maps grid inputs [B, N_grid, in_channels] to [B, N_grid, out_channels] on a grid/mesh graph.

    The graph is an argument of forward, not a buffer, so DDP does not broadcast it and one model
    runs on any graph with the configured feature sizes.
    """

    def __init__(self, config: GatedGNNConfig):
        super().__init__()
        self.config = config
        c = config
        self.encoder = Encoder(c.in_channels, c.node_features, c.edge_features, c.hidden, c.dropout)
        self.processor = Processor(c)
        self.decoder = Decoder(c.edge_features, c.hidden, c.out_channels, c.dropout)

    def forward(self, x: Tensor, graph: HeteroData) -> Tensor:
        """x: [B, N_grid, in_channels], grid node index i_lat * W + i_lon -> [B, N_grid, out]."""

        def features(t: Tensor) -> Tensor:
            return t.to(device=x.device, dtype=x.dtype)

        def edges(edge_type) -> Tensor:
            return graph[edge_type].edge_index.to(x.device)  # [2, E]

        h_grid, h_mesh = self.encoder(
            x,
            features(graph["grid"].x),
            features(graph["mesh"].x),
            edges(GRID2MESH),
            features(graph[GRID2MESH].edge_attr),
        )  # [B, N_grid, D], [B, N_mesh, D]
        h_mesh = self.processor(h_mesh, edges(MESH2MESH), features(graph[MESH2MESH].edge_attr))
        return self.decoder(h_mesh, h_grid, edges(MESH2GRID), features(graph[MESH2GRID].edge_attr))
