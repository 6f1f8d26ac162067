"""GSMT-style multimodal transformer for multiple-choice video QA, and a mean-pool baseline.

    frames  f [B, T, F] ──φ = Linear+GELU+LN──▶ c [B, T, d] ──slot × L (GatedSequenceLayer)──▶ h
    tokens  segment means over each video's valid frames, P parts:
            content C = mean(c) [B, P, d] (what is there), video V = mean(h) [B, P, d] (what the
            slot layers wrote there: order, context)
    words   q [B, Q] ──embedding + word positions──▶ [B, Q, d]
    answers e_k [B, 5, d]: φ(answer features) when the input supplies them (a vector per option
            in the frame features' space, as CLIP text features sit beside CLIP frame
            features: the same φ maps both), else the mean of the option's word embeddings
    ground  α_k = softmax_p(β ⟨n(e_k), n(C_p)⟩ / √d)  [B, 5, P]   (n: LayerNorm without affine)
            a_k = e_k + W_r Σ_p α_kp V_p                           each option reads the video
                                                                   where its content appears
    fusion  N pre-LN transformer layers over [V ; words ; a_1..a_5] (a part embedding on each)
    score_k = w · LN(fused a_k)                                                   logits [B, 5]

Each option is a token of the fusion and is scored from its own output, so an order question
becomes "read, where option k appears, what the slot layers wrote there" (how much came
before, whether the bell has rung) and compare across the five — the softmax over options does
the comparison. GSMT scores each question-answer pair with BERT's pretrained text encoder over
CLIP features; from scratch, a single fused CLS scored against the answer embeddings (our first
design) and options as plain fusion tokens both sat at chance on the four-type synthetic
mixture for thousands of steps: the grounding of an answer in the frames is a saddle that
attention with random W_q, W_k leaves slowly. The grounding pooling α starts grounded when the
answers come as features in the frames' space (docs/results.md has the probes).

Video tokens carry no position of their own: the order of events reaches the fusion only
through what the slot layer wrote into the frames before pooling (a causal SSL or attention
with rotary positions can; a local convolution only within its receptive field). The grounding
pooling reads content only to decide *where* to look. That is what makes the slot swap decide
whether a model can answer order questions about distant events.

C³ is taken on the fused video tokens and question words; the authors' text side is the labelled
answer's words from their answer encoder, which this model does not have.

``MeanPoolQA`` is the order-agnostic baseline: the mean of all frame projections, the
question's mean word embedding and the option's vector e_k, through an MLP to a score.
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
    """Word embeddings shared by questions and answers (token 0 is padding); word positions
    only for a model that reads words in order (a parameter no loss reaches stops DDP)."""

    def __init__(self, cfg: VideoQAConfig, positions: bool = True) -> None:
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model, padding_idx=0)
        self.position = nn.Embedding(cfg.max_words, cfg.d_model) if positions else None

    def words(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [..., Q] → word embeddings + positions [..., Q, d]."""
        pos = torch.arange(tokens.shape[-1], device=tokens.device)
        return self.embed(tokens) + self.position(pos)

    def bag(self, tokens: torch.Tensor) -> torch.Tensor:
        """Mean embedding of the non-padding tokens along the last axis."""
        mask = (tokens > 0).to(self.embed.weight.dtype)[..., None]
        return (self.embed(tokens) * mask).sum(-2) / mask.sum(-2).clamp_min(1)


class VideoQAModel(nn.Module):
    def __init__(self, cfg: VideoQAConfig) -> None:
        super().__init__()
        if cfg.slot == "meanpool":
            raise ValueError("slot 'meanpool' is MeanPoolQA (build_videoqa_model picks it)")
        self.cfg = cfg
        d = cfg.d_model
        self.frame_proj = frame_projection(cfg)
        self.slot = nn.ModuleList(
            GatedSequenceLayer(d, cfg.slot, cfg.expansion, cfg.hidden, cfg.ssm_modes, cfg.heads,
                               cfg.conv_kernel, cfg.dt_min, cfg.dt_max)
            for _ in range(cfg.slot_layers))
        self.text = TextEncoder(cfg)
        self.part = nn.Embedding(3, d)  # video, question, answer
        # β: sharpness of the grounding pooling; n(·)·n(·)/√d is √d·cos, so β = 4 puts an option
        # whose content matches one token (cos ≈ 1) e^{~30} above an unrelated token.
        self.ground_beta = nn.Parameter(torch.tensor(4.0))
        self.ground_read = nn.Linear(d, d)
        self.fusion = nn.ModuleList(FusionLayer(d, cfg.fusion_heads, cfg.dropout)
                                    for _ in range(cfg.fusion_layers))
        self.out_norm = nn.LayerNorm(d)
        self.score = nn.Linear(d, 1)
        init_text(self)

    def encode_video(self, frames: torch.Tensor, lengths: torch.Tensor) -> tuple[
            torch.Tensor, torch.Tensor, torch.Tensor]:
        """→ video tokens V [B, P, d], content tokens C [B, P, d], valid [B, P]."""
        mask = torch.arange(frames.shape[1], device=frames.device)[None] < lengths[:, None]
        content = self.frame_proj(frames) * mask[..., None]
        x = content
        for layer in self.slot:
            x = layer(x, mask)
        video, valid = segment_mean(x, lengths, self.cfg.video_tokens)
        return video, segment_mean(content, lengths, self.cfg.video_tokens)[0], valid

    def ground(self, options: torch.Tensor, content: torch.Tensor, video: torch.Tensor,
               valid: torch.Tensor) -> torch.Tensor:
        """Σ_p α_kp V_p for options [B, 5, d] (α from content [B, P, d]) → [B, 5, d]."""
        sim = unit_scale(options) @ unit_scale(content).transpose(1, 2) / math.sqrt(
            options.shape[-1])
        alpha = (self.ground_beta * sim).masked_fill(~valid[:, None, :], float("-inf"))
        return alpha.softmax(-1) @ video

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor, question: torch.Tensor,
                answers: torch.Tensor, answer_features: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """frames [B, T, F] (padded), lengths [B], question [B, Q], answers [B, 5, La],
        answer_features [B, 5, F] or None."""
        b = frames.shape[0]
        video, content, video_mask = self.encode_video(frames, lengths)  # [B, P, d] ×2, [B, P]
        nv, nw = video.shape[1], question.shape[1]
        words, word_mask = self.text.words(question) + self.part.weight[1], question > 0
        options = answer_vectors(self, answers, answer_features)  # [B, 5, d]
        options = (options + self.ground_read(self.ground(options, content, video, video_mask))
                   + self.part.weight[2])
        x = torch.cat([video + self.part.weight[0], words, options], 1)
        key_mask = torch.cat([video_mask, word_mask, torch.ones(
            b, options.shape[1], dtype=torch.bool, device=x.device)], 1)
        for layer in self.fusion:
            x, weights = layer(x, key_mask)
        logits = self.score(self.out_norm(x[:, nv + nw:])).squeeze(-1)  # [B, 5]
        v, w = slice(0, nv), slice(nv, nv + nw)
        return {"logits": logits, "video": x[:, v], "words": x[:, w], "video_mask": video_mask,
                "word_mask": word_mask, "g_vv": block_attention(weights, v, v),
                "g_ww": block_attention(weights, w, w)}


def frame_projection(cfg: VideoQAConfig) -> nn.Module:
    """φ: frame features (and answer features, in the same space) → d."""
    d = cfg.d_model
    return nn.Sequential(nn.Linear(cfg.feature_dim, d), nn.GELU(), nn.LayerNorm(d))


def unit_scale(x: torch.Tensor) -> torch.Tensor:
    """LayerNorm without affine parameters: zero mean, unit variance over the last axis."""
    return F.layer_norm(x, x.shape[-1:])


def answer_vectors(model: nn.Module, answers: torch.Tensor,
                   answer_features: torch.Tensor | None) -> torch.Tensor:
    """e_k [B, 5, d]: φ(answer features) when given (the frames' space), else the mean of the
    option's word embeddings."""
    if answer_features is not None:
        return model.frame_proj(answer_features)
    return model.text.bag(answers)


class MeanPoolQA(nn.Module):
    """Order-agnostic baseline: score_k = MLP([mean φ(frame), mean question word, e_k])."""

    def __init__(self, cfg: VideoQAConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.frame_proj = frame_projection(cfg)
        self.text = TextEncoder(cfg, positions=False)  # bags of words only
        self.mlp = nn.Sequential(nn.Linear(3 * d, 4 * d), nn.GELU(), nn.Linear(4 * d, 1))
        init_text(self)

    def forward(self, frames, lengths, question, answers,
                answer_features=None) -> dict[str, torch.Tensor]:
        mask = (torch.arange(frames.shape[1], device=frames.device)[None]
                < lengths[:, None]).to(frames.dtype)[..., None]
        video = (self.frame_proj(frames) * mask).sum(1) / mask.sum(1).clamp_min(1)  # [B, d]
        b, k = answers.shape[:2]
        parts = [video[:, None].expand(b, k, -1),
                 self.text.bag(question)[:, None].expand(b, k, -1),
                 answer_vectors(self, answers, answer_features)]
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
