"""OneForecast's gated processor layer: a gated edge update, then a multi-head attention node
update (the released code's MeshEdgeBlockMultiHeadGated + MeshNodeBlockMultiHeadAttn).

For an edge i -> j with latent e_ij in R^D and nodes v_i, v_j in R^D; H heads:

    x_ij   = [e_ij || v_i || v_j]                                              [E, 3D]
    g_ij   = sigmoid(W_g2 SiLU(W_g1 x_ij + b_g1) + b_g2)    in (0, 1)^{H x 3}  [E, H, 3]
    (g_e, g_s, g_d) = (1/H) sum_h g^h_ij                   edge, source, destination gates
    mean:    e'_ij = e_ij + (g_e + g_s + g_d)/3 * MLP_e(x_ij)
    streams: e'_ij = e_ij + MLP_e([g_e e_ij || g_s v_i || g_d v_j])

    a_ij   = W_a2 SiLU(W_a1 e'_ij + b_a1) + b_a2            in R^H             [E, H]
    alpha^h_ij = softmax of a^h over the in-edges of j                          [E, H]
    m_j    = ||_h sum_{i -> j} alpha^h_ij e'_ij             in R^{H D}          [N, H D]
    v'_j   = v_j + MLP_v([m_j || v_j])                      MLP_v: (H+1) D -> D

Heads do not split D: each head weights the full e'_ij and the H weighted sums are concatenated
(H*D wide), then projected back to D by MLP_v's first linear layer, as the released code does
(its node MLP takes input_dim_nodes + input_dim_edges * num_heads). A node without in-edges gets
m_j = 0. The gate's hidden width is max(16, D/8) in the released code; the attention's is
configurable (64 by default, which is also the released max(16, D/8) at D = 512).
"""

import torch
from torch import Tensor, nn

from kernels import gated_aggregation

from .layers import edge_inputs, mlp

STREAMS = 3  # edge, source node, destination node


class GatedEdgeUpdate(nn.Module):
    """e'_ij from e_ij, v_i, v_j with H-head gates averaged over heads (see module docstring)."""

    def __init__(self, hidden: int, heads: int, gate_hidden: int, gate_mode: str = "mean"):
        super().__init__()
        self.heads, self.gate_mode = heads, gate_mode
        self.edge_mlp = mlp(3 * hidden, hidden, hidden)
        self.gate = nn.Sequential(
            nn.Linear(3 * hidden, gate_hidden), nn.SiLU(), nn.Linear(gate_hidden, STREAMS * heads)
        )

    def gates(self, x: Tensor) -> Tensor:
        """x = [e || v_i || v_j]: [..., E, 3D] -> g: [..., E, H, 3] in (0, 1)."""
        # head-major, as the released view(-1, num_heads, 3): logits h*3 + s are head h, stream s
        return torch.sigmoid(self.gate(x)).unflatten(-1, (self.heads, STREAMS))

    def forward(self, e: Tensor, v_i: Tensor, v_j: Tensor) -> Tensor:
        """e, v_i, v_j: [..., E, D] (sender and receiver of each edge) -> e': [..., E, D]."""
        x = torch.cat([e, v_i, v_j], dim=-1)  # [..., E, 3D]
        g = self.gates(x).mean(dim=-2)  # [..., E, 3]: (g_e, g_s, g_d) averaged over heads
        if self.gate_mode == "mean":
            return e + g.mean(dim=-1, keepdim=True) * self.edge_mlp(x)
        g_e, g_s, g_d = g.split(1, dim=-1)  # [..., E, 1] each
        return e + self.edge_mlp(torch.cat([g_e * e, g_s * v_i, g_d * v_j], dim=-1))


class AttentionNodeUpdate(nn.Module):
    """v'_j from v_j and the attention-weighted in-edges e'_ij (see module docstring)."""

    def __init__(self, hidden: int, heads: int, attention_hidden: int, dropout: float = 0.0):
        super().__init__()
        self.attention = nn.Sequential(
            nn.Linear(hidden, attention_hidden), nn.SiLU(), nn.Linear(attention_hidden, heads)
        )
        self.node_mlp = mlp((heads + 1) * hidden, hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, v: Tensor, e: Tensor, receivers: Tensor) -> Tensor:
        """v: [..., N, D], e: [..., E, D] (updated edges), receivers: [E] -> v': [..., N, D]."""
        logits = self.attention(e)  # [..., E, H]
        m = gated_aggregation(e, logits, receivers, v.shape[-2]).flatten(-2)  # [..., N, H*D]
        return v + self.dropout(self.node_mlp(torch.cat([m, v], dim=-1)))


class GatedLayer(nn.Module):
    """One OneForecast processor step src -> dst; batched [B, N, D] over one shared graph."""

    def __init__(
        self,
        hidden: int,
        heads: int = 4,
        gate_hidden: int = 16,
        attention_hidden: int = 64,
        gate_mode: str = "mean",
        dropout: float = 0.0,
    ):
        super().__init__()
        self.edge_update = GatedEdgeUpdate(hidden, heads, gate_hidden, gate_mode)
        self.node_update = AttentionNodeUpdate(hidden, heads, attention_hidden, dropout)

    def forward(
        self, v_src: Tensor, v_dst: Tensor, edge_index: Tensor, e: Tensor
    ) -> tuple[Tensor, Tensor]:
        """v_src: [..., N_src, D], v_dst: [..., N_dst, D], edge_index: [2, E], e: [E, D] or
        [..., E, D]. Returns v'_dst [..., N_dst, D] and e' [..., E, D]."""
        e = self.edge_update(*edge_inputs(e, v_src, v_dst, edge_index))  # [..., E, D]
        return self.node_update(v_dst, e, edge_index[1]), e
