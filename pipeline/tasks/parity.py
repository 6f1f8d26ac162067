"""Parity of bit sequences with a gated RNN: a tiny non-graph task.

It exists to prove the training loop is task-agnostic: nothing in pipeline/train.py knows about
graphs or weather. Label = (Σ_t x_t) mod 2 for x ∈ {0,1}^T; a GRU-style gate must carry one bit
across the whole sequence, which a plain linear model cannot do.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from models.gated_rnn import GatedRNN


def parity_data(n: int, seq_len: int, seed: int) -> TensorDataset:
    """Deterministic bit sequences x [n, T, 1] float, labels y [n] int64 and sample ids [n]."""
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(0, 2, (n, seq_len), generator=g)
    return TensorDataset(bits.float().unsqueeze(-1), bits.sum(1) % 2, torch.arange(n))


class ParityTask:
    name = "parity"

    def __init__(self, cfg: dict, inputs: dict[str, str]):
        self.cfg, self.p = cfg, cfg["train"]["parity"]

    def build_model(self) -> torch.nn.Module:
        return GatedRNN(1, self.p["hidden"], 2, dropout=self.p["dropout"])

    def train_dataset(self):
        return parity_data(self.p["n_train"], self.p["seq_len"], self.cfg["seed"])

    def val_dataset(self):
        return parity_data(self.p["n_val"], self.p["seq_len"], self.cfg["seed"] + 1)

    def to(self, device) -> None:
        pass

    def loss(self, model, batch, device):
        x, y = batch[0].to(device), batch[1].to(device)
        logits = model(x)  # [B, 2]
        acc = (logits.argmax(-1) == y).float().mean()
        return F.cross_entropy(logits.float(), y), {"accuracy": acc}

    def sample_ids(self, batch) -> list[int]:
        return batch[2].tolist()

    def checkpoint_meta(self) -> dict:
        return {"model_config": dict(self.p), "channels": [], "graph_spec_hash": None}

    @torch.no_grad()
    def evaluate(self, model, out_dir: Path, max_samples: int) -> dict:
        x, y, _ = parity_data(min(max_samples, 1024), self.p["seq_len"],
                              self.cfg["seed"] + 2).tensors
        model.eval()
        acc = (model(x).argmax(-1) == y).float().mean().item()
        scores = {"test_accuracy": acc, "chance": 0.5}
        (Path(out_dir) / "scores.json").write_text(json.dumps(scores, indent=1))
        return scores
