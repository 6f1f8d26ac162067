"""A deterministic synthetic long-video QA source (frame features, not pixels).

Each video is T frames of D-dimensional features: background noise N(0, σ²I) plus *events*, an
event being ``amplitude · p_k`` added to ``duration`` consecutive frames, with p_k the unit
prototype of object k (16 objects, plus two cues: ``bell`` and ``flash``). Per video:

- 5 *option* objects, each appearing exactly once, and the ``bell``, at 6 times at least
  ``gap = T // 8`` frames apart (the bell is never last, so an option follows it);
- a ``flash`` ending 1–3 frames before one option starts (a local cue; nothing in between);
- 3 *distractor* objects, 1–2 times each, anywhere free; the other 8 objects never appear.

Four questions per video (5 options each, answer position uniform):

    presence     "which object appears in the video ?"  one distractor + 4 absent objects
    cue_next     "what appears right after the flash ?" the option ≤ 7 frames after the flash
    after_cue    "what appears first after the bell ?"  the first option ≥ gap frames later
    first_event  "which of these appears first ?"        the earliest option

``presence`` needs content only. ``cue_next`` needs local order (a few frames). ``after_cue`` and
``first_event`` need order across ≥ T/8 frames (256 at T = 2048, thousands at T ≥ 8192). For
the three order questions the multiset of frames — so any order-agnostic summary of the video —
has the same distribution whatever the answer: every option appears once, with durations and
amplitudes drawn independently of its role. A mean-pooled model is at chance (20 %) on them by
construction; only a model that sees order can do better.

Answer features, as a CLIP-style text encoder would give them beside CLIP frame features: the
text vector of object k is ``amplitude · normalise(p_k + text_noise · g_k)`` with g_k a fixed
random unit vector (a deterministic encoder: one vector per word; cosine to the prototype
≈ 1/√(1 + text_noise²), 0.89 at the default 0.5) — close to the frames of that object, not equal.

Written as the field stores such data: one ``<video_id>.npy`` per video ([T, D] float32) in
``DEST/features/``, ``DEST/qa_{train,val,test}.csv`` (``video_id, qid, type, question,
a0..a4, answer``), disjoint videos per split, and one ``<qid>.npy`` per question ([5, D]
float32, the options' text vectors in a0..a4 order) in ``DEST/answer_features/``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OBJECTS = ("cup", "knife", "plate", "phone", "book", "key", "bottle", "towel", "pan", "spoon",
           "lamp", "box", "shoe", "bag", "chair", "clock")
CUES = ("bell", "flash")
QUESTION_TYPES = {
    "presence": "which object appears in the video ?",
    "cue_next": "what appears right after the flash ?",
    "after_cue": "what appears first after the bell ?",
    "first_event": "which of these appears first ?",
}
LONG_RANGE_TYPES = ("after_cue", "first_event")
N_OPTIONS, N_DISTRACTORS = 5, 3
QA_FIELDS = ["video_id", "qid", "type", "question", "a0", "a1", "a2", "a3", "a4", "answer"]


@dataclass(frozen=True)
class VideoQASpec:
    """What to generate. ``frames`` is (min, max) frames per video, drawn uniformly."""

    n_train: int = 1000
    n_val: int = 100
    n_test: int = 300
    frames: tuple[int, int] = (2048, 2048)
    feature_dim: int = 32
    noise: float = 0.5
    amplitude: float = 2.0
    duration: tuple[int, int] = (2, 4)
    text_noise: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        lo, hi = self.frames
        if not 128 <= lo <= hi:  # T/8 must exceed a flash and its option
            raise ValueError(f"frames {self.frames}: need 128 <= min <= max")


def prototypes(spec: VideoQASpec) -> dict[str, np.ndarray]:
    """Unit feature vectors [D] of every object and cue (fixed by the spec's seed)."""
    rng = np.random.default_rng([spec.seed, 0])
    vecs = rng.standard_normal((len(OBJECTS) + len(CUES), spec.feature_dim))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return dict(zip(OBJECTS + CUES, vecs, strict=True))


def text_vectors(spec: VideoQASpec, protos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each object's answer feature [D]: amplitude · normalise(p_k + text_noise · g_k)."""
    rng = np.random.default_rng([spec.seed, 2])
    out = {}
    for name in OBJECTS:
        g = rng.standard_normal(spec.feature_dim)
        v = protos[name] + spec.text_noise * g / np.linalg.norm(g)
        out[name] = (spec.amplitude * v / np.linalg.norm(v)).astype(np.float32)
    return out


def _spread_times(rng, n: int, length: int, gap: int, margin: int) -> np.ndarray:
    """n sorted times in [margin, length - margin) at least ``gap`` apart, uniformly spread."""
    slack = length - 2 * margin - (n - 1) * gap
    return margin + np.sort(rng.integers(0, slack, n)) + gap * np.arange(n)


def make_video(spec: VideoQASpec, index: int, protos: dict[str, np.ndarray]):
    """(features [T, D] float32, questions: list of (type, options[5], answer index))."""
    rng = np.random.default_rng([spec.seed, 1, index])
    length = int(rng.integers(spec.frames[0], spec.frames[1] + 1))
    d_lo, d_hi = spec.duration
    x = (spec.noise * rng.standard_normal((length, spec.feature_dim))).astype(np.float32)
    busy = np.zeros(length + 1, dtype=bool)

    def put(name: str, t: int, dur: int | None = None) -> None:
        dur = int(rng.integers(d_lo, d_hi + 1)) if dur is None else dur
        x[t:t + dur] += spec.amplitude * protos[name]
        busy[max(t - 1, 0):t + dur + 1] = True  # a frame of space on each side

    order = rng.permutation(len(OBJECTS))
    options = [OBJECTS[i] for i in order[:N_OPTIONS]]
    distractors = [OBJECTS[i] for i in order[N_OPTIONS:N_OPTIONS + N_DISTRACTORS]]
    absent = [OBJECTS[i] for i in order[N_OPTIONS + N_DISTRACTORS:]]

    times = _spread_times(rng, N_OPTIONS + 1, length, length // 8, margin=d_hi + 8)
    bell = int(rng.integers(0, N_OPTIONS))  # slot of the bell among the 6; never the last
    option_times = np.delete(times, bell)
    placed = [str(o) for o in rng.permutation(options)]  # placed[k] at option_times[k]
    put("bell", int(times[bell]))
    for name, t in zip(placed, option_times, strict=True):
        put(name, int(t))
    # The flash ends 1-3 frames before one option starts; nothing else goes in between.
    flashed = int(rng.integers(0, N_OPTIONS))
    flash_dur = int(rng.integers(d_lo, d_hi + 1))
    t_flash = int(option_times[flashed]) - flash_dur - int(rng.integers(1, 4))
    put("flash", t_flash, flash_dur)
    busy[t_flash:int(option_times[flashed])] = True
    for name in distractors:
        for _ in range(int(rng.integers(1, 3))):
            # free to start at t: [t - 1, t + d_hi + 1) holds no other event
            window = np.lib.stride_tricks.sliding_window_view(busy, d_hi + 3)
            free = np.flatnonzero(~window.any(axis=1)) + 1
            put(name, int(rng.choice(free[free < length - d_hi])))

    def question(kind: str, answer: str, pool: list[str]):
        opts = [str(o) for o in rng.permutation(pool)]
        return kind, opts, opts.index(answer)

    present = str(rng.choice(distractors))
    # option_times with the bell's slot deleted: the option after the bell is placed[bell]
    return x, [question("presence", present,
                        [present, *rng.choice(absent, N_OPTIONS - 1, replace=False)]),
               question("cue_next", placed[flashed], options),
               question("after_cue", placed[bell], options),
               question("first_event", placed[0], options)]


def write_synthetic_videoqa(dest, spec: VideoQASpec) -> dict[str, Path]:
    """Write features, QA tables and answer features under ``dest``; returns {"features": dir,
    "answer_features": dir, split: csv}."""
    dest = Path(dest)
    for sub in ("features", "answer_features"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    protos = prototypes(spec)
    texts = text_vectors(spec, protos)
    out: dict[str, Path] = {"features": dest / "features",
                            "answer_features": dest / "answer_features"}
    index = 0
    for split, n in (("train", spec.n_train), ("val", spec.n_val), ("test", spec.n_test)):
        rows = []
        for _ in range(n):
            vid = f"{split}{index:06d}"
            x, qs = make_video(spec, index, protos)
            np.save(dest / "features" / f"{vid}.npy", x)
            for kind, opts, ans in qs:
                qid = f"{vid}_{kind}"
                np.save(dest / "answer_features" / f"{qid}.npy",
                        np.stack([texts[o] for o in opts]))
                rows.append({"video_id": vid, "qid": qid, "type": kind,
                             "question": QUESTION_TYPES[kind],
                             **{f"a{k}": o for k, o in enumerate(opts)}, "answer": ans})
            index += 1
        path = dest / f"qa_{split}.csv"
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, QA_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        out[split] = path
    return out
