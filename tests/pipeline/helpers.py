"""Small shared builders for pipeline tests."""

from __future__ import annotations

import torch

from pipeline.config import Config


def parity_cfg(**train) -> dict:
    base = {"task": "parity", "num_workers": 1, "batch_size": 8, "max_steps": 6, "lr": 0.01,
            "warmup_steps": 2, "checkpoint_every": 3, "loader_workers": 0,
            "parity": {"seq_len": 4, "hidden": 8, "n_train": 64, "n_val": 16}}
    parity = {**base["parity"], **train.pop("parity", {})}
    return Config.model_validate({"train": {**base, **train, "parity": parity}}).model_dump(
        mode="json")


def assert_states_equal(a: dict, b: dict, path: str = "") -> None:
    """Bitwise equality of nested state dicts (tensors compared with torch.equal)."""
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_states_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_states_equal(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"tensor differs at {path}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"
