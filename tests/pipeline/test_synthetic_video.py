"""The synthetic long-video QA source: its answers are what the events say, read back from the
features themselves (noise off, so each event is exactly where a prototype fires)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from pipeline.synthetic_video import (
    OBJECTS,
    QUESTION_TYPES,
    VideoQASpec,
    make_video,
    prototypes,
    text_vectors,
    write_synthetic_videoqa,
)


def events(x: np.ndarray, protos: dict[str, np.ndarray], amplitude: float) -> dict[str, list]:
    """{name: [(start, end), ...]} of each prototype's runs of frames (noise-free video)."""
    out = {}
    for name, p in protos.items():
        on = np.concatenate([[False], x @ p > 0.9 * amplitude, [False]])
        edges = np.flatnonzero(np.diff(on.astype(int)))
        out[name] = list(zip(edges[::2], edges[1::2], strict=True))
    return out


@pytest.mark.parametrize("index", range(12))
def test_answers_follow_from_the_event_timeline(index):
    spec = VideoQASpec(frames=(300, 1200), noise=0.0, seed=3)
    protos = prototypes(spec)
    x, questions = make_video(spec, index, protos)
    ev = events(x, protos, spec.amplitude)
    asked = {kind: (opts, opts[ans]) for kind, opts, ans in questions}
    options = asked["first_event"][0]
    assert sorted(options) == sorted(asked["after_cue"][0]) == sorted(asked["cue_next"][0])
    assert all(len(ev[o]) == 1 for o in options) and len(ev["bell"]) == len(ev["flash"]) == 1
    start = {o: ev[o][0][0] for o in options}
    starts = sorted([*start.values(), ev["bell"][0][0]])
    assert min(np.diff(starts)) >= len(x) // 8  # long-range events are T/8 apart

    assert asked["first_event"][1] == min(options, key=start.get)
    bell = ev["bell"][0][0]
    assert asked["after_cue"][1] == min((o for o in options if start[o] > bell), key=start.get)
    flash_end = ev["flash"][0][1]
    follower = asked["cue_next"][1]
    assert 1 <= start[follower] - flash_end <= 3
    assert not any(flash_end <= s < start[follower] for runs in ev.values() for s, _ in runs)

    shown, present = asked["presence"]
    assert len(ev[present]) >= 1 and present not in options
    assert all(len(ev[o]) == 0 for o in shown if o != present)
    assert len(set(shown)) == 5 and set(shown) <= set(OBJECTS)


def test_answer_positions_are_uniform_and_the_source_is_deterministic(tmp_path):
    spec = VideoQASpec(n_train=150, n_val=2, n_test=2, frames=(128, 160), seed=1)
    written = write_synthetic_videoqa(tmp_path / "a", spec)
    rows = list(csv.DictReader(open(written["train"])))
    assert len(rows) == 4 * 150 and {r["type"] for r in rows} == set(QUESTION_TYPES)
    counts = np.bincount([int(r["answer"]) for r in rows], minlength=5)
    assert counts.min() > 0.6 * len(rows) / 5  # 600 draws: each position near 120
    again = write_synthetic_videoqa(tmp_path / "b", spec)
    assert again["train"].read_bytes() == written["train"].read_bytes()
    a, b = (np.load(w["features"] / "train000007.npy") for w in (written, again))
    assert a.shape[1] == 32 and np.array_equal(a, b)
    test_rows = list(csv.DictReader(open(written["test"])))
    assert {r["video_id"] for r in test_rows}.isdisjoint({r["video_id"] for r in rows})


def test_answer_features_are_each_option_text_vector_in_table_order(tmp_path):
    spec = VideoQASpec(n_train=3, n_val=1, n_test=1, frames=(128, 160), text_noise=0.5, seed=5)
    written = write_synthetic_videoqa(tmp_path, spec)
    protos = prototypes(spec)
    texts = text_vectors(spec, protos)
    with open(written["train"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12
    for row in rows:
        vectors = np.load(written["answer_features"] / f"{row['qid']}.npy")
        assert vectors.shape == (5, spec.feature_dim) and vectors.dtype == np.float32
        for k in range(5):
            np.testing.assert_array_equal(vectors[k], texts[row[f"a{k}"]])
    for name in OBJECTS:  # near its frames' prototype, not equal: cos = 1/√(1 + 0.5²) ± noise
        v = texts[name]
        assert np.isclose(np.linalg.norm(v), spec.amplitude, rtol=1e-5)
        cos = v @ protos[name] / spec.amplitude
        assert 0.8 < cos < 0.99
        others = max(abs(v @ protos[o]) / spec.amplitude for o in OBJECTS if o != name)
        assert others < cos
