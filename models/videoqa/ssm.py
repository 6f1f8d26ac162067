"""Diagonal state-space kernel (DSS, Gupta et al. 2022) as GSS and GSMT use it.

Per channel h and mode n (complex, diagonal), with the continuous-time eigenvalue
``Λ_n = -exp(log_a_n) + i·ω_n`` and step ``Δ_n = exp(log_dt_n)`` (zero-order hold):

    s_l[h, n] = exp(Δ_n Λ_n) · s_{l-1}[h, n] + u_l[h]                 (s_{-1} = 0)
    y_l[h]    = Re Σ_n C̃[h, n] · s_l[h, n]  +  D[h] · u_l[h],   C̃ = C · (exp(Δ_n Λ_n) - 1) / Λ_n

Unrolled, y = K ∗ u + D ⊙ u, a causal convolution with the kernel

    K[l, h] = Re Σ_n C̃[h, n] · exp(Δ_n Λ_n · l),   l = 0 … L-1       K: [L, H]

computed once per length and applied with FFTs of length 2L (no wrap-around), O(L log L) per
channel. ``recurrence`` is the step-by-step form above; a test holds the two equal.

As released (GSMT's ``DSS``), the input is layer-normed first and Λ is shared by all channels
while C is per channel. Two departures, both from the DSS paper itself: the step Δ is its own
parameter, and Λ starts at S4D-Lin's ``-1/2 + iπn`` with Δ_n log-uniform in [dt_min, dt_max],
so decay times span 2/dt_max … 2/dt_min frames. The released code folds Δ into Λ (Δ = 1) and
draws Λ from ``randn``: decay times of at most ~20 frames, too short for a video; and with Δ
folded in, a mode of decay time τ amplifies a slowly varying input by ~τ (the ZOH factor
(e^Λ - 1)/Λ → 1 instead of → Δ), so slow modes would swamp the residual stream. Here the DC gain
of every mode is 1/|Re Λ_n| = 2 at the start, whatever its Δ.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class DiagonalSSM(nn.Module):
    """v [B, L, H] → [B, L, H]: LN, then the causal DSS convolution plus D skip."""

    def __init__(self, dim: int, n_modes: int = 64, dt_min: float = 1e-4, dt_max: float = 1e-1,
                 seed_generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        g = seed_generator
        self.log_dt = nn.Parameter(torch.rand(n_modes, generator=g)
                                   * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.log_a = nn.Parameter(torch.full((n_modes,), math.log(0.5)))  # -Re Λ = 1/2
        self.omega = nn.Parameter(math.pi * torch.arange(n_modes, dtype=torch.float32))  # Im Λ
        scale = 1.0 / math.sqrt(n_modes)
        self.c_re = nn.Parameter(torch.randn(dim, n_modes, generator=g) * scale)
        self.c_im = nn.Parameter(torch.randn(dim, n_modes, generator=g) * scale)
        self.d = nn.Parameter(torch.ones(dim))

    def _lambda_and_c(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(ΔΛ [N], C̃ [H, N])."""
        lam = torch.complex(-self.log_a.exp(), self.omega)  # Λ (continuous time)
        dlam = lam * self.log_dt.exp()
        return dlam, torch.complex(self.c_re, self.c_im) * (dlam.exp() - 1) / lam

    def kernel(self, length: int) -> torch.Tensor:
        """K [L, H] (real)."""
        dlam, c = self._lambda_and_c()
        pos = torch.arange(length, device=dlam.device, dtype=dlam.real.dtype)
        powers = torch.exp(dlam[:, None] * pos[None, :])  # exp(ΔΛ_n l): [N, L]
        return (c @ powers).real.transpose(0, 1)  # [L, H]

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        u = self.norm(v)
        length = u.shape[1]
        k = self.kernel(length)
        n = 2 * length  # zero-padded: linear, not circular, convolution
        y = torch.fft.irfft(torch.fft.rfft(u, n=n, dim=1) * torch.fft.rfft(k, n=n, dim=0),
                            n=n, dim=1)[:, :length]
        return y + u * self.d

    @torch.no_grad()
    def recurrence(self, v: torch.Tensor) -> torch.Tensor:
        """The same map by the explicit diagonal recurrence (reference for tests; O(L·H·N))."""
        u = self.norm(v)
        dlam, c = self._lambda_and_c()
        decay = dlam.exp()  # [N]
        state = torch.zeros(u.shape[0], u.shape[2], dlam.shape[0], dtype=c.dtype,
                            device=u.device)  # [B, H, N]
        out = []
        for step in range(u.shape[1]):
            state = decay * state + u[:, step, :, None]
            out.append((state * c).sum(-1).real)
        return torch.stack(out, dim=1) + u * self.d
