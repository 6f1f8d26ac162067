"""Small shared builders for pipeline tests."""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.config import Config

WINDOW_SPECS = ["temperature@850", "2m_temperature", "geopotential@500", "u_component_of_wind@500"]
WINDOW_TIMES = ("2020-01-01", "2020-01-05T18")  # 20 six-hourly times


def small_prepared_store(root: Path, specs=tuple(WINDOW_SPECS), times=WINDOW_TIMES,
                         train=("2020-01-01", "2020-01-03T18")) -> Path:
    """A prepared store of ``specs`` over ``times`` (analytic synthetic ERA5, 8 x 16 grid,
    statistics over ``train``), written under ``root``; returns its path."""
    from pipeline.ingest import prepare_weather
    from pipeline.synthetic import write_synthetic_era5

    source = write_synthetic_era5(root / "era5.zarr", start=times[0], end=times[1], n_lat=8,
                                  n_lon=16)
    prepare_weather(source, root / "prepared.zarr", variables=list(specs), train_period=train)
    return root / "prepared.zarr"


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
