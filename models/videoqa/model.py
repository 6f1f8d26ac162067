"""GSMT-style multimodal transformer for multiple-choice video QA, and a mean-pool baseline.

    frames  f [B, T, F]  ──Linear+GELU+LN──▶ [B, T, d] ──slot × L (GatedSequenceLayer)──▶ [B, T, d]
            ──segment mean over each video's valid frames──▶ video tokens [B, P, d]
    words   q [B, Q] ──embedding + word positions──▶ [B, Q, d]
    fusion  N transformer layers over [CLS ; video tokens ; words] (a part embedding on each;
            CLS = a learned vector + the mean question-word embedding)
    answers a [B, 5, La] ──mean of word embeddings──▶ [B, 5, d]
    score_k = ⟨W LN(fused CLS), answer_k⟩                                        logits [B, 5]

GSMT's scoring: the fused video-question representation against each answer's embedding. (We
tried fusing each candidate with the video and question and scoring its CLS: from scratch it sat
at chance far longer, the answer being one token among ~75 for the CLS to find.) C³ is taken on
the fused video tokens and question words; the authors' text side is the labelled answer's
words from their answer encoder, which this model does not have.

Video tokens carry no position of their own: the order of events reaches the fusion only
through what the slot layer wrote into the frames before pooling (a causal SSL or attention
with rotary positions can; a local convolution only within its receptive field). That is what
makes the slot swap decide whether a model can answer order questions about distant events.

``MeanPoolQA`` is the order-agnostic baseline: the mean of all frame projections, of the
question's and of the candidate's word embeddings, through an MLP to a score.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.videoqa.gss import MIXERS, GatedSequenceLayer

SLOTS = (*MIXERS, "meanpool")


@dataclass(frozen=True)
class VideoQAConfig:
    feature_dim: int
    vocab_size: int
    slot: str = "ssl"  # ssl | attention | conv | meanpool
    d_model: int = 64
    slot_layers: int = 2
    expansion: int = 2
    hidden: int = 64
    ssm_modes: int = 64
    dt_min: float = 1e-4
    dt_max: float = 1e-1
    heads: int = 4
    conv_kernel: int = 15
    video_tokens: int = 64
    fusion_layers: int = 2
    fusion_heads: int = 4
    max_words: int = 32  # longest question or answer, in words
    n_answers: int = 5
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.slot not in SLOTS:
            raise ValueError(f"slot {self.slot!r} is not one of {SLOTS}")

    def to_dict(self) -> dict:
        return asdict(self)


def segment_mean(x: torch.Tensor, lengths: torch.Tensor, parts: int) -> tuple[torch.Tensor,
                                                                               torch.Tensor]:
    """Mean of x [B, T, d] over ``parts`` equal segments of each video's first ``lengths[b]``
    frames → ([B, parts, d], valid [B, parts]); padded frames never enter a mean."""
    b, t, d = x.shape
    pos = torch.arange(t, device=x.device)[None, :]
    n = lengths[:, None].clamp_min(1)
    seg = torch.div(pos * parts, n, rounding_mode="floor").clamp_max(parts - 1)  # [B, T]
    valid = pos < lengths[:, None]
    seg = torch.where(valid, seg, parts)  # padded frames go to a discarded bin
    sums = x.new_zeros(b, parts + 1, d).scatter_add_(1, seg[..., None].expand(b, t, d), x)
    counts = x.new_zeros(b, parts + 1).scatter_add_(1, seg, valid.to(x.dtype))
    tokens = sums[:, :parts] / counts[:, :parts, None].clamp_min(1)
    return tokens, counts[:, :parts] > 0


class FusionLayer(nn.Module):
    """Pre-LN transformer layer that also returns its head-averaged attention. (GSMT's is
    post-LN, BERT's, as it starts from BERT's weights; trained from scratch, pre-LN trains
    reliably where post-LN stalls.)"""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> tuple[torch.Tensor,
                                                                         torch.Tensor]:
        h = self.norm1(x)
        y, weights = self.attn(h, h, h, key_padding_mask=~key_mask, need_weights=True,
                               average_attn_weights=True)
        x = x + self.drop(y)
        return x + self.drop(self.ff(self.norm2(x))), weights


def block_attention(weights: torch.Tensor, rows: slice, cols: slice) -> torch.Tensor:
    """A block of an attention map, rows renormalised to sum to 1."""
    block = weights[:, rows, cols]
    return block / block.sum(-1, keepdim=True).clamp_min(1e-12)


class TextEncoder(nn.Module):
    """Word embeddings shared by questions and answers (token 0 is padding)."""

    def __init__(self, cfg: VideoQAConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model, padding_idx=0)
        self.position = nn.Embedding(cfg.max_words, cfg.d_model)

    def words(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [..., Q] → word embeddings + positions [..., Q, d]."""
        pos = torch.arange(tokens.shape[-1], device=tokens.device)
        return self.embed(tokens) + self.position(pos)

    def bag(self, tokens: torch.Tensor) -> torch.Tensor:
        """Mean embedding of the non-padding tokens along the last axis."""
        mask = (tokens > 0).to(self.position.weight.dtype)[..., None]
        return (self.embed(tokens) * mask).sum(-2) / mask.sum(-2).clamp_min(1)


class VideoQAModel(nn.Module):
    def __init__(self, cfg: VideoQAConfig) -> None:
        super().__init__()
        if cfg.slot == "meanpool":
            raise ValueError("slot 'meanpool' is MeanPoolQA (build_videoqa_model picks it)")
        self.cfg = cfg
        d = cfg.d_model
        self.frame_proj = nn.Sequential(nn.Linear(cfg.feature_dim, d), nn.GELU(), nn.LayerNorm(d))
        self.slot = nn.ModuleList(
            GatedSequenceLayer(d, cfg.slot, cfg.expansion, cfg.hidden, cfg.ssm_modes, cfg.heads,
                               cfg.conv_kernel, cfg.dt_min, cfg.dt_max)
            for _ in range(cfg.slot_layers))
        self.text = TextEncoder(cfg)
        self.cls = nn.Parameter(torch.zeros(d))
        self.part = nn.Embedding(2, d)  # video, question
        self.fusion = nn.ModuleList(FusionLayer(d, cfg.fusion_heads, cfg.dropout)
                                    for _ in range(cfg.fusion_layers))
        self.out_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, d)
        init_text(self)

    def encode_video(self, frames: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor,
                                                                                  torch.Tensor]:
        mask = torch.arange(frames.shape[1], device=frames.device)[None] < lengths[:, None]
        x = self.frame_proj(frames) * mask[..., None]
        for layer in self.slot:
            x = layer(x, mask)
        return segment_mean(x, lengths, self.cfg.video_tokens)

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor, question: torch.Tensor,
                answers: torch.Tensor) -> dict[str, torch.Tensor]:
        """frames [B, T, F] (padded), lengths [B], question [B, Q], answers [B, 5, La]."""
        b = frames.shape[0]
        video, video_mask = self.encode_video(frames, lengths)  # [B, P, d], [B, P]
        nv = video.shape[1]
        words, word_mask = self.text.words(question) + self.part.weight[1], question > 0
        # The CLS starts as the question's summary, so the first fusion layer already asks a
        # question-dependent query of the video (as GSMT's selector queries with the question
        # feature); a constant CLS left the four question types at chance together.
        cls = self.cls + self.text.bag(question)  # [B, d]
        x = torch.cat([cls[:, None], video + self.part.weight[0], words], 1)
        key_mask = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=x.device), video_mask,
                              word_mask], 1)
        for layer in self.fusion:
            x, weights = layer(x, key_mask)
        h = self.head(self.out_norm(x[:, 0]))  # [B, d]
        logits = (h[:, None, :] * self.text.bag(answers)).sum(-1) / math.sqrt(h.shape[-1])
        v, w = slice(1, 1 + nv), slice(1 + nv, None)
        return {"logits": logits, "video": x[:, v], "words": x[:, w], "video_mask": video_mask,
                "word_mask": word_mask, "g_vv": block_attention(weights, v, v),
                "g_ww": block_attention(weights, w, w)}


class MeanPoolQA(nn.Module):
    """Order-agnostic baseline: score_k = MLP([mean frame, mean question word, mean answer_k
    word])."""

    def __init__(self, cfg: VideoQAConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.frame_proj = nn.Sequential(nn.Linear(cfg.feature_dim, d), nn.GELU(), nn.LayerNorm(d))
        self.text = TextEncoder(cfg)
        self.mlp = nn.Sequential(nn.Linear(3 * d, 4 * d), nn.GELU(), nn.Linear(4 * d, 1))
        init_text(self)

    def forward(self, frames, lengths, question, answers) -> dict[str, torch.Tensor]:
        mask = (torch.arange(frames.shape[1], device=frames.device)[None]
                < lengths[:, None]).to(frames.dtype)[..., None]
        video = (self.frame_proj(frames) * mask).sum(1) / mask.sum(1).clamp_min(1)  # [B, d]
        b, k = answers.shape[:2]
        parts = [video[:, None].expand(b, k, -1),
                 self.text.bag(question)[:, None].expand(b, k, -1), self.text.bag(answers)]
        return {"logits": self.mlp(torch.cat(parts, -1)).squeeze(-1)}  # [B, 5]


def init_text(model: nn.Module) -> None:
    """BERT's initialisation of embeddings (N(0, 0.02²)): at PyTorch's N(0, 1) the word,
    position and part embeddings dwarf the LayerNormed video tokens and the answer scores start
    with a spread of several nats."""
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
            if module.padding_idx is not None:
                nn.init.zeros_(module.weight[module.padding_idx])


def build_videoqa_model(cfg: VideoQAConfig) -> nn.Module:
    return MeanPoolQA(cfg) if cfg.slot == "meanpool" else VideoQAModel(cfg)


def answer_loss(out: dict[str, torch.Tensor], label: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out["logits"].float(), label)
