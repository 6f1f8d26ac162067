"""GSMT's pieces against hand computations and their reference forms."""

from __future__ import annotations

import math

import pytest
import torch

from models.videoqa.c3 import c3_loss, kl_rows, masked_softmax
from models.videoqa.gss import GatedSequenceLayer, LocalConv, rotary
from models.videoqa.model import VideoQAConfig, build_videoqa_model, segment_mean
from models.videoqa.ssm import DiagonalSSM


def test_ssm_fft_convolution_equals_the_diagonal_recurrence():
    torch.manual_seed(0)
    ssm = DiagonalSSM(8, n_modes=16, dt_min=1e-3, dt_max=0.5)
    with torch.no_grad():  # a spread of decay rates, some fast, some slow
        ssm.log_dt.copy_(torch.linspace(math.log(2e-3), math.log(1.4), 16))
    v = torch.randn(2, 300, 8)
    # In float64 the two agree to rounding (the 1e-5 of the issue, with room to spare) ...
    fft, rec = ssm.double()(v.double()), ssm.recurrence(v.double())
    torch.testing.assert_close(fft, rec, rtol=0, atol=1e-10)
    # ... in float32 to float32 FFT rounding: 1e-5 of the output's scale (outputs reach ~20
    # here, where one float32 ulp is 2e-6).
    fft, rec = ssm.float()(v), ssm.recurrence(v)
    assert (fft - rec).abs().max() <= 1e-5 * rec.abs().max()


def test_ssm_kernel_by_hand_for_one_real_mode():
    # One mode, Λ = -a (ω = 0), step Δ, C = c: K[l] = c (e^{-aΔ} - 1)/(-a) e^{-aΔ l}.
    ssm = DiagonalSSM(1, n_modes=1).double()
    a, dt, c = 0.25, 0.5, 2.0
    with torch.no_grad():
        ssm.log_a.fill_(math.log(a)), ssm.log_dt.fill_(math.log(dt))
        ssm.omega.zero_(), ssm.c_re.fill_(c), ssm.c_im.zero_()
    expected = [c * (math.exp(-a * dt) - 1) / -a * math.exp(-a * dt * step) for step in range(4)]
    torch.testing.assert_close(ssm.kernel(4)[:, 0], torch.tensor(expected, dtype=torch.float64))


def test_a_slow_mode_does_not_amplify_a_constant_input():
    # DC gain of a mode = Σ_l |K[l]| → c/a as L → ∞ (here 2/0.5 = 4), whatever Δ: the released
    # parameterisation (Δ folded into Λ) would give c/(aΔ), 40,000 at Δ = 1e-4.
    ssm = DiagonalSSM(1, n_modes=1).double()
    with torch.no_grad():
        ssm.log_dt.fill_(math.log(1e-4)), ssm.omega.zero_(), ssm.c_re.fill_(2.0)
        ssm.c_im.zero_()
    total = ssm.kernel(400_000)[:, 0].sum().item()
    assert abs(total - 4.0) < 0.05


def test_ssm_is_causal():
    torch.manual_seed(1)
    ssm = DiagonalSSM(4, n_modes=8)
    v = torch.randn(1, 64, 4)
    w = v.clone()
    w[:, 40:] += 5.0  # the future changes ...
    # ... the past does not (LN is per frame, so frames < 40 are untouched)
    torch.testing.assert_close(ssm(v)[:, :40], ssm(w)[:, :40], rtol=0, atol=1e-5)


def test_initial_decay_times_span_the_configured_range():
    ssm = DiagonalSSM(4, n_modes=256, dt_min=1e-4, dt_max=1e-1,
                      seed_generator=torch.Generator().manual_seed(0))
    tau = 1 / (ssm.log_a.exp() * ssm.log_dt.exp())  # frames for the state to decay by e
    assert tau.min() < 30 and tau.max() > 5_000


@pytest.mark.parametrize("mixer", ["ssl", "attention", "conv"])
def test_padding_does_not_reach_valid_frames(mixer):
    torch.manual_seed(2)
    layer = GatedSequenceLayer(16, mixer, hidden=16, ssm_modes=8, heads=2, conv_kernel=5)
    x = torch.randn(1, 40, 16)
    mask = torch.arange(40)[None] < 30
    a = layer(x, mask)
    garbage = x.clone()
    garbage[:, 30:] = torch.randn(1, 10, 16) * 100
    b = layer(garbage, mask)
    torch.testing.assert_close(a[:, :30], b[:, :30], rtol=0, atol=1e-5)
    assert a[:, 30:].abs().max() == 0
    # ... and a padded video gives what the unpadded one gives
    torch.testing.assert_close(a[:, :30], layer(x[:, :30], mask[:, :30]), rtol=0, atol=1e-5)


def test_local_conv_reaches_exactly_its_kernel():
    torch.manual_seed(3)
    conv = LocalConv(4, kernel_size=5)
    v = torch.zeros(1, 21, 4)
    v[0, 10] = torch.tensor([1.0, -2.0, 0.5, 3.0])  # not constant: LN would zero that
    touched = (conv(v, None) - conv(torch.zeros_like(v), None)).abs().sum(-1)[0] > 1e-7
    assert touched.nonzero().flatten().tolist() == [8, 9, 10, 11, 12]


def test_rotary_scores_depend_only_on_relative_position():
    torch.manual_seed(4)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    seq_q = q.expand(1, 1, 12, 8).clone()
    seq_k = k.expand(1, 1, 12, 8).clone()
    s = rotary(seq_q) @ rotary(seq_k).transpose(-1, -2)  # [12, 12]
    torch.testing.assert_close(s[0, 0, 3, 1], s[0, 0, 9, 7])  # both: query 2 after key
    assert not torch.isclose(s[0, 0, 3, 1], s[0, 0, 3, 5])


def test_segment_mean_by_hand_and_padding_ignored():
    x = torch.arange(10, dtype=torch.float32).view(1, 10, 1).repeat(2, 1, 1)
    x[1, 6:] = 1e6  # padding of the second video
    tokens, valid = segment_mean(x, torch.tensor([10, 6]), 3)
    # video 0: frames {0,1,2,3} {4,5,6} {7,8,9} → floor(t·3/10); video 1: {0,1} {2,3} {4,5}
    assert tokens[0, :, 0].tolist() == [1.5, 5.0, 8.0]
    assert tokens[1, :, 0].tolist() == [0.5, 2.5, 4.5]
    assert valid.all()
    short, valid = segment_mean(x[:1, :2], torch.tensor([2]), 3)
    # 2 frames in 3 segments: floor(t·3/2) = 0, 1; the third segment is empty
    assert valid.tolist() == [[True, True, False]] and short[0, :, 0].tolist() == [0, 1, 0]


def test_c3_is_a_divergence_zero_only_when_the_distributions_match():
    torch.manual_seed(5)
    v, w = torch.randn(2, 6, 8), torch.randn(2, 4, 8)
    g_ww = torch.rand(2, 4, 4).softmax(-1)
    scale = 1 / math.sqrt(8)
    g_vw = (v @ w.transpose(1, 2) * scale).softmax(-1)
    g_wv = (w @ v.transpose(1, 2) * scale).softmax(-1)
    p = (g_vw @ g_ww @ g_wv / 0.01).softmax(-1)  # the composed distribution, by hand
    assert c3_loss(v, w, p, g_ww).abs() < 1e-6  # G_vv = P → 0
    for _ in range(5):
        other = torch.rand(2, 6, 6).softmax(-1)
        expected = (other * (other.log() - p.log())).sum(-1).mean()
        loss = c3_loss(v, w, other, g_ww)
        torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
        assert loss > 0


def test_c3_ignores_padded_words_and_frames():
    torch.manual_seed(6)
    v, w = torch.randn(1, 5, 8), torch.randn(1, 3, 8)
    g_vv, g_ww = torch.rand(1, 5, 5).softmax(-1), torch.rand(1, 3, 3).softmax(-1)
    base = c3_loss(v, w, g_vv, g_ww)
    v_pad = torch.cat([v, torch.randn(1, 2, 8) * 50], 1)
    w_pad = torch.cat([w, torch.randn(1, 1, 8) * 50], 1)
    g_vv_pad = torch.zeros(1, 7, 7)
    g_vv_pad[:, :5, :5] = g_vv
    g_vv_pad[:, 5:, :] = 1 / 7
    g_ww_pad = torch.zeros(1, 4, 4)
    g_ww_pad[:, :3, :3] = g_ww
    g_ww_pad[:, 3, :] = 0.25
    padded = c3_loss(v_pad, w_pad, g_vv_pad, g_ww_pad,
                     video_mask=torch.tensor([[1, 1, 1, 1, 1, 0, 0]]).bool(),
                     word_mask=torch.tensor([[1, 1, 1, 0]]).bool())
    torch.testing.assert_close(padded, base)


def test_kl_rows_by_hand():
    p = torch.tensor([[[0.5, 0.5, 0.0]]])
    q = torch.tensor([[[0.25, 0.25, 0.5]]])
    assert torch.isclose(kl_rows(p, q.log(), None), torch.tensor(math.log(2.0)))
    assert masked_softmax(torch.zeros(1, 1, 3), torch.tensor([[True, False, True]])).tolist() \
        == [[[0.5, 0.0, 0.5]]]


@pytest.mark.parametrize("features", [False, True])
@pytest.mark.parametrize("slot", ["ssl", "attention", "conv", "meanpool"])
def test_models_score_five_answers_and_ignore_padding(slot, features):
    torch.manual_seed(7)
    cfg = VideoQAConfig(feature_dim=12, vocab_size=30, slot=slot, d_model=16, hidden=16,
                        ssm_modes=8, heads=2, fusion_heads=2, video_tokens=4, conv_kernel=3)
    model = build_videoqa_model(cfg).eval()
    frames = torch.randn(2, 50, 12)
    lengths = torch.tensor([50, 33])
    q = torch.tensor([[3, 4, 5, 0], [6, 7, 0, 0]])
    a = torch.randint(1, 30, (2, 5, 2))
    af = torch.randn(2, 5, 12) if features else None
    out = model(frames, lengths, q, a, af)
    assert out["logits"].shape == (2, 5)
    if slot != "meanpool":  # what C³ needs: fused tokens and row-normalised attention blocks
        assert out["g_vv"].shape == (2, 4, 4) and out["g_ww"].shape == (2, 4, 4)
        torch.testing.assert_close(out["g_vv"].sum(-1), torch.ones(2, 4))
        assert c3_loss(out["video"], out["words"], out["g_vv"], out["g_ww"], out["video_mask"],
                       out["word_mask"]) >= 0
    noisy = frames.clone()
    noisy[1, 33:] = 1e3
    torch.testing.assert_close(model(noisy, lengths, q, a, af)["logits"], out["logits"])
    alone = model(frames[1:, :33], lengths[1:], q[1:, :2], a[1:],
                  None if af is None else af[1:])["logits"]
    torch.testing.assert_close(alone, out["logits"][1:], rtol=1e-4, atol=1e-5)
    # options carry no position: permuting them permutes the scores
    perm = torch.tensor([3, 0, 4, 1, 2])
    permuted = model(frames, lengths, q, a[:, perm], None if af is None else af[:, perm])
    torch.testing.assert_close(permuted["logits"], out["logits"][:, perm], rtol=1e-4,
                               atol=1e-5)
    if features:  # the options come from their features, not their words
        other = model(frames, lengths, q, torch.randint(1, 30, (2, 5, 2)), af)["logits"]
        torch.testing.assert_close(other, out["logits"])


def test_grounding_pools_the_video_tokens_where_an_option_content_appears():
    torch.manual_seed(3)
    cfg = VideoQAConfig(feature_dim=8, vocab_size=10, d_model=16, hidden=16, ssm_modes=4,
                        heads=2, fusion_heads=2, video_tokens=3)
    model = build_videoqa_model(cfg).eval()
    content = torch.randn(1, 3, 16)
    video = torch.tensor([[[1.0] * 16, [2.0] * 16, [3.0] * 16]])
    valid = torch.tensor([[True, True, True]])
    # an option equal to token 1's content (up to scale), β large: it reads token 1's V
    with torch.no_grad():
        model.ground_beta.fill_(100.0)
        read = model.ground(2.5 * content[:, 1:2], content, video, valid)
    torch.testing.assert_close(read, video[:, 1:2])
    # by hand at β = 1 for a second option: α = softmax_p(⟨n(e), n(C_p)⟩ / √d)
    e = torch.randn(1, 1, 16)
    with torch.no_grad():
        model.ground_beta.fill_(1.0)
        read = model.ground(e, content, video, valid)
    def n(x):  # LayerNorm without affine
        return (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False,
                                                                 keepdim=True) + 1e-5)

    alpha = torch.softmax((n(e) * n(content)).sum(-1) / 4.0, -1)  # √16 = 4
    torch.testing.assert_close(read[0, 0, 0], (alpha * torch.tensor([1.0, 2.0, 3.0])).sum())
    # a padded token is never read, however well it matches
    video[0, 1] = 1e6
    with torch.no_grad():
        masked = model.ground(2.5 * content[:, 1:2], content, video,
                              torch.tensor([[True, False, True]]))
    assert 1.0 <= masked.min() and masked.max() <= 3.0


@pytest.mark.parametrize("features", [False, True])
@pytest.mark.parametrize("slot", ["ssl", "attention", "conv", "meanpool"])
def test_every_parameter_gets_a_gradient(slot, features):
    """DDP stops on a parameter no loss reaches (the mean-pool baseline once held unused word
    positions and failed its first DDP step)."""
    torch.manual_seed(1)
    cfg = VideoQAConfig(feature_dim=6, vocab_size=12, slot=slot, d_model=8, hidden=8,
                        ssm_modes=4, heads=2, fusion_heads=2, video_tokens=3, conv_kernel=3,
                        max_words=4)
    model = build_videoqa_model(cfg)
    af = torch.randn(2, 5, 6) if features else None
    out = model(torch.randn(2, 20, 6), torch.tensor([20, 14]), torch.tensor([[3, 4, 0, 0]] * 2),
                torch.randint(1, 12, (2, 5, 2)), af)
    out["logits"].logsumexp(-1).sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert missing == []
