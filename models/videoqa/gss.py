"""The gated sequence layer of GSMT (GSS, Mehta et al. 2022, as the GSMT authors released it),
with its sequence operator swappable for the ablations.

    x_n = LN(x)                          x: [B, L, d]
    u   = GELU(W_u x_n)                  u: [B, L, E]   (E = expansion · d)
    v   = GELU(W_v x_n)                  v: [B, L, H]
    v   = MIX(v)                         SSL: DiagonalSSM (causal FFT convolution)
                                         attention: multi-head self-attention, rotary positions
                                         conv: depthwise convolution, kernel k, centred
    out = W_o((W_g v) ⊙ u) + x           W_g: H → E, W_o: E → d

Only MIX changes between the ablation arms; the gate, widths and residual are the same, so a
difference in accuracy is the sequence operator's. Padded frames (``mask`` False) are zeroed
before MIX and in the output: the SSL is causal, so frames after a video's end cannot reach it;
attention masks them as keys; the convolution sees them as its zero padding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.videoqa.ssm import DiagonalSSM

MIXERS = ("ssl", "attention", "conv")


def rotary(x: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding (RoFormer) of x [B, heads, L, Dh] (Dh even): relative order
    for attention without adding positions to the tokens."""
    length, dh = x.shape[-2], x.shape[-1]
    inv = 1.0 / (10000 ** (torch.arange(0, dh, 2, device=x.device, dtype=x.dtype) / dh))
    ang = torch.arange(length, device=x.device, dtype=x.dtype)[:, None] * inv[None, :]
    cos, sin = ang.cos(), ang.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class RotarySelfAttention(nn.Module):
    """Full (bidirectional) multi-head self-attention over frames, v [B, L, H] → [B, L, H]."""

    def __init__(self, dim: int, heads: int = 4) -> None:
        super().__init__()
        if dim % heads or (dim // heads) % 2:
            raise ValueError(f"attention width {dim} must split into {heads} even-sized heads")
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def forward(self, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, length, dim = v.shape
        q, k, w = self.qkv(self.norm(v)).view(b, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        q, k = rotary(q), rotary(k)
        attn_mask = None if mask is None else mask[:, None, None, :]  # keys only
        y = F.scaled_dot_product_attention(q, k, w, attn_mask=attn_mask)
        return self.out(y.transpose(1, 2).reshape(b, length, dim))


class LocalConv(nn.Module):
    """Depthwise 1-D convolution over frames (kernel ``k``, centred, zero padding), D skip."""

    def __init__(self, dim: int, kernel_size: int = 15) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"conv kernel size {kernel_size} must be odd (centred)")
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.d = nn.Parameter(torch.ones(dim))

    def forward(self, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        u = self.norm(v)
        if mask is not None:
            u = u * mask[..., None]
        return self.conv(u.transpose(1, 2)).transpose(1, 2) + u * self.d


class GatedSequenceLayer(nn.Module):
    def __init__(self, dim: int, mixer: str = "ssl", expansion: int = 2, hidden: int = 64,
                 ssm_modes: int = 64, heads: int = 4, conv_kernel: int = 15,
                 dt_min: float = 1e-4, dt_max: float = 1e-1) -> None:
        super().__init__()
        if mixer not in MIXERS:
            raise ValueError(f"mixer {mixer!r} is not one of {MIXERS}")
        self.mixer_name = mixer
        inner = expansion * dim
        self.norm = nn.LayerNorm(dim)
        self.to_u = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, hidden, bias=False)
        if mixer == "ssl":
            self.mix = DiagonalSSM(hidden, ssm_modes, dt_min=dt_min, dt_max=dt_max)
        elif mixer == "attention":
            self.mix = RotarySelfAttention(hidden, heads)
        else:
            self.mix = LocalConv(hidden, conv_kernel)
        self.to_gate = nn.Linear(hidden, inner, bias=False)
        self.to_out = nn.Linear(inner, dim)
        # Variance-preserving (std 1/√E), not GPT's small residual init (0.02/√(E/d)): with the
        # slot's output at ~1 % of the stream, the fusion never learned to read what the
        # sequence operator wrote (order questions stayed at chance; docs/results.md).
        nn.init.normal_(self.to_out.weight, std=1 / math.sqrt(inner))
        nn.init.zeros_(self.to_out.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        xn = self.norm(x)
        u = F.gelu(self.to_u(xn))
        v = F.gelu(self.to_v(xn))
        if mask is not None:
            v = v * mask[..., None]
        v = self.mix(v) if self.mixer_name == "ssl" else self.mix(v, mask)
        out = self.to_out(self.to_gate(v) * u) + x
        return out * mask[..., None] if mask is not None else out
