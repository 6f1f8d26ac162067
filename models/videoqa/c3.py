"""Cross-modal compositional congruence (C³, GSMT §3.3).

From the fused video tokens V [B, Nv, d] and word tokens W [B, Nw, d]:

    G_vw = softmax_rows(V Wᵀ / √d)       [B, Nv, Nw]  video → word attention (valid words)
    G_wv = softmax_rows(W Vᵀ / √d)       [B, Nw, Nv]  word → video attention (valid frames)
    G_ww                                  [B, Nw, Nw]  the words' self-attention (rows sum to 1)
    G_vv                                  [B, Nv, Nv]  the video's self-attention (rows sum to 1)

    P    = softmax_rows(G_vw G_ww G_wv / τ)                         [B, Nv, Nv]
    L_C3 = mean over valid rows i of KL(G_vv[i] ‖ P[i])
         = mean_i Σ_j G_vv[i, j] (log G_vv[i, j] - log P[i, j])      ≥ 0, 0 iff P = G_vv

The video's own attention is pulled towards the attention the question composes through the
words. The authors' code calls ``-F.kl_div(P, G_vv)``: ``kl_div`` wants log-probabilities as its
first argument and got probabilities, and the sign is flipped, so what it minimises is not a
divergence (it is unbounded below). Here log P comes from ``log_softmax`` and the sign is KL's.
The authors take G_wv as G_vwᵀ; we use the word → video attention the equation names.
τ = 0.01 and weight 0.005 as in the paper.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

TAU = 0.01
WEIGHT = 0.005


def masked_softmax(scores: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[:, None, :], float("-inf"))
    return scores.softmax(-1)


def kl_rows(p: torch.Tensor, log_q: torch.Tensor, row_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over (valid) rows of KL(p_i ‖ q_i); 0·log 0 = 0."""
    kl = torch.where(p > 0, p * (torch.log(p.clamp_min(1e-30)) - log_q), 0.0).sum(-1)
    if row_mask is None:
        return kl.mean()
    kl = torch.where(row_mask > 0, kl, 0.0)  # a padded row may hold inf (its columns are -inf)
    return kl.sum() / row_mask.sum().clamp_min(1)


def c3_loss(video: torch.Tensor, words: torch.Tensor, g_vv: torch.Tensor, g_ww: torch.Tensor,
            video_mask: torch.Tensor | None = None, word_mask: torch.Tensor | None = None,
            tau: float = TAU) -> torch.Tensor:
    """L_C3 for video [B, Nv, d], words [B, Nw, d] and their self-attentions (see module)."""
    scale = 1.0 / math.sqrt(video.shape[-1])
    g_vw = masked_softmax(video @ words.transpose(1, 2) * scale, word_mask)
    g_wv = masked_softmax(words @ video.transpose(1, 2) * scale, video_mask)
    composed = g_vw @ g_ww @ g_wv / tau
    if video_mask is not None:
        composed = composed.masked_fill(~video_mask[:, None, :], float("-inf"))
    return kl_rows(g_vv, F.log_softmax(composed, dim=-1),
                   None if video_mask is None else video_mask.float())
