"""Long-form video QA (GSMT) on the one training loop.

A sample is one question: the video's frames [T, D] (float16 in the store, float32 here), the
question's word ids [Q], the five answers' word ids [5, La] and, when the store has them, their
precomputed features [5, D] (the model then encodes the options from those), the answer index
and its type. A batch pads frames to its longest video (``lengths`` says how many are real;
every model masks the rest). Loss: cross-entropy over the five answers, plus ``c3_weight · L_C3``
(models/videoqa/c3.py) when ``video.model.c3`` is on and the slot model exposes its attention.

Frames are read from the prepared store once, into memory (float16: 1,000 videos of 1,024
frames × 32 features is 64 MB); a store that does not fit is read per sample instead
(``IN_MEMORY_BYTES``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from models.videoqa import VideoQAConfig, build_videoqa_model, c3_loss
from models.videoqa.model import answer_loss

IN_MEMORY_BYTES = 4 << 30
MODEL_KEYS = ("slot", "d_model", "slot_layers", "expansion", "hidden", "ssm_modes", "dt_min",
              "dt_max", "heads", "conv_kernel", "video_tokens", "fusion_layers", "fusion_heads",
              "dropout")


class VideoQADataset(Dataset):
    """The questions of one split of a prepared video-QA store."""

    def __init__(self, prepared, split: str, frames: np.ndarray | None) -> None:
        self.prepared, self.split, self.frames = prepared, split, frames
        self.qa = prepared.qa[split]

    def __len__(self) -> int:
        return len(self.qa["answer"])

    def video(self, index: int) -> np.ndarray:
        if self.frames is None:
            return self.prepared.video(index)
        start, end = self.prepared.offsets[index], self.prepared.offsets[index + 1]
        return self.frames[start:end].astype(np.float32)

    def __getitem__(self, i: int) -> dict:
        qa = self.qa
        return {"frames": torch.from_numpy(self.video(int(qa["video_index"][i]))),
                "question": torch.from_numpy(qa["question"][i].astype(np.int64)),
                "answers": torch.from_numpy(qa["answers"][i].astype(np.int64)),
                "answer": int(qa["answer"][i]), "type": int(qa["type"][i]), "id": i,
                **({"answer_features": torch.from_numpy(qa["answer_features"][i].astype(
                    np.float32))} if "answer_features" in qa else {})}


def collate(samples: list[dict]) -> dict[str, torch.Tensor]:
    lengths = torch.tensor([s["frames"].shape[0] for s in samples])
    frames = torch.zeros(len(samples), int(lengths.max()), samples[0]["frames"].shape[1])
    for row, s in enumerate(samples):
        frames[row, : s["frames"].shape[0]] = s["frames"]
    return {"frames": frames, "lengths": lengths,
            "question": torch.stack([s["question"] for s in samples]),
            "answers": torch.stack([s["answers"] for s in samples]),
            "answer": torch.tensor([s["answer"] for s in samples]),
            "type": torch.tensor([s["type"] for s in samples]),
            "id": torch.tensor([s["id"] for s in samples]),
            **({"answer_features": torch.stack([s["answer_features"] for s in samples])}
               if "answer_features" in samples[0] else {})}


class VideoQATask:
    name = "videoqa"
    collate_fn = staticmethod(collate)

    def __init__(self, cfg: dict, inputs: dict[str, str]) -> None:
        from pipeline.ingest.video import open_prepared_video

        self.cfg, self.mcfg = cfg, cfg["video"]["model"]
        self.prepared = open_prepared_video(inputs["video"])
        feats = self.prepared.features
        size = int(np.prod(feats.shape)) * feats.dtype.itemsize
        self.frames = np.asarray(feats[:]) if size <= IN_MEMORY_BYTES else None

    def model_config(self) -> VideoQAConfig:
        train = self.prepared.qa["train"]
        words = max(train["question"].shape[1], train["answers"].shape[2])
        return VideoQAConfig(feature_dim=self.prepared.feature_dim,
                             vocab_size=len(self.prepared.vocab), max_words=words,
                             **{k: self.mcfg[k] for k in MODEL_KEYS})

    def build_model(self) -> torch.nn.Module:
        return build_videoqa_model(self.model_config())

    def dataset(self, split: str) -> VideoQADataset:
        return VideoQADataset(self.prepared, split, self.frames)

    def train_dataset(self):
        return self.dataset("train")

    def val_dataset(self):
        return self.dataset("val" if "val" in self.prepared.qa else "train")

    def to(self, device) -> None:
        pass

    def forward(self, model, batch, device) -> dict[str, torch.Tensor]:
        features = batch.get("answer_features")
        return model(batch["frames"].to(device), batch["lengths"].to(device),
                     batch["question"].to(device), batch["answers"].to(device),
                     None if features is None else features.to(device))

    def loss(self, model, batch, device):
        label = batch["answer"].to(device)
        out = self.forward(model, batch, device)
        loss = answer_loss(out, label)
        metrics = {"accuracy": (out["logits"].argmax(-1) == label).float().mean()}
        if self.mcfg["c3"] and "g_vv" in out:
            c3 = c3_loss(out["video"], out["words"], out["g_vv"], out["g_ww"],
                         out["video_mask"], out["word_mask"], tau=self.mcfg["c3_tau"])
            loss = loss + self.mcfg["c3_weight"] * c3
            metrics["c3"] = c3.detach()
        return loss, metrics

    def sample_ids(self, batch) -> list[int]:
        return batch["id"].tolist()

    def checkpoint_meta(self) -> dict:
        vocab = json.dumps(self.prepared.vocab).encode()
        return {"model_config": self.model_config().to_dict(), "channels": [],
                "graph_spec_hash": None, "vocab_sha256": hashlib.sha256(vocab).hexdigest()}

    @torch.no_grad()
    def evaluate(self, model, out_dir: Path, max_samples: int, batch_size: int = 16) -> dict:
        """Accuracy on the test split, overall and per question type → scores.json."""
        split = "test" if "test" in self.prepared.qa else "val"
        data = self.dataset(split)
        n = min(len(data), max_samples)
        model.eval()
        correct, types = [], []
        for start in range(0, n, batch_size):
            batch = collate([data[i] for i in range(start, min(start + batch_size, n))])
            logits = self.forward(model, batch, torch.device("cpu"))["logits"]
            correct.append((logits.argmax(-1) == batch["answer"]).numpy())
            types.append(batch["type"].numpy())
        correct, types = np.concatenate(correct), np.concatenate(types)
        names = self.prepared.types[split]
        by_type = {name: {"accuracy": float(correct[types == k].mean()),
                          "questions": int((types == k).sum())}
                   for k, name in enumerate(names) if (types == k).any()}
        scores = {"test_accuracy": float(correct.mean()), "chance": 0.2, "questions": int(n),
                  "split": split, "by_type": by_type,
                  "parameters": sum(p.numel() for p in model.parameters()),
                  "slot": self.mcfg["slot"], "c3": bool(self.mcfg["c3"])}
        (Path(out_dir) / "scores.json").write_text(json.dumps(scores, indent=1))
        return scores
