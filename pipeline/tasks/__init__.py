"""Tasks: what the one training loop trains.

A task binds data, model and objective for one trainable thing. The loop (pipeline/train.py)
knows only this interface:

- ``name``
- ``build_model() -> nn.Module``
- ``train_dataset()``, ``val_dataset()`` (map-style ``torch.utils.data.Dataset``), and optionally
  ``collate_fn``
- ``to(device)``: move static tensors (a graph, a mask) next to the model
- ``loss(model, batch, device) -> (scalar loss, {metric: scalar tensor})``: batch mean
- ``checkpoint_meta() -> dict``: what a checkpoint must carry to be used again (model config,
  channels, normalisation stats, graph spec hash)
- ``evaluate(model, out_dir, max_samples) -> dict``: test-period scores, written under out_dir
- ``sample_ids(batch) -> list[int]``: which samples a batch holds (for tracing data order)

``cfg`` is the validated config as a plain dict; ``inputs`` maps stage outputs to paths.
"""

from __future__ import annotations

import importlib

TASKS = {
    "weather_global": "pipeline.tasks.weather:WeatherGlobalTask",
    "weather_regional": "pipeline.tasks.weather_regional:WeatherRegionalTask",
    "parity": "pipeline.tasks.parity:ParityTask",
    "videoqa": "pipeline.tasks.videoqa:VideoQATask",
}


def build_task(cfg: dict, inputs: dict[str, str]):
    name = cfg["train"]["task"]
    if name not in TASKS:
        raise ValueError(f"train.task '{name}' is not one of {sorted(TASKS)}")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)(cfg, inputs)
