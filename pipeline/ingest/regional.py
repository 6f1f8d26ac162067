"""The weather_regional ingest: one core run, the global data and the regional truth beside it.

The synthetic atmosphere is simulated once; from the same states the ingest writes

- ``raw.zarr``: the global source on ``data.synthetic``'s grid (5.625° for OneForecast's small
  configuration), the conservative coarsening of the core's native fields, prepared into
  ``prepared.zarr`` with its ``climatology.zarr`` exactly as the weather_global ingest does (the
  frozen global model's data);
- ``regional_raw.zarr``: the native T42 Gauss–Legendre fields (2.8125°) inside the regional
  domain (``regional.box`` plus ``regional.margin``), prepared into ``regional.zarr`` with
  statistics of its own (mean, std, std of 6-hour changes over the domain and the training
  period) and ``regional_climatology.zarr``.

So the global data is the regional truth coarsened, point for point in time: a regional model
can be compared with the global forecast on the ground both describe.
"""

from __future__ import annotations

from pathlib import Path


def ingest_regional(cfg: dict, inputs: dict[str, Path], out: Path, work: Path) -> None:
    from pipeline.climatology import compute_climatology
    from pipeline.config import RegionalConfig
    from pipeline.ingest import prepare_weather
    from pipeline.stages import (
        CLIMATOLOGY,
        PREPARED,
        REGIONAL,
        REGIONAL_CLIMATOLOGY,
        write_synthetic_source,
    )

    data = cfg["data"]
    domain = RegionalConfig.model_validate(cfg["regional"]).data_domain()
    raw, regional_raw = out / "raw.zarr", out / "regional_raw.zarr"
    write_synthetic_source(data, raw, native_crop=(regional_raw, domain))
    train = tuple(str(t) for t in data["periods"]["train"])
    time_range = data.get("time_range")
    time_range = None if time_range is None else tuple(str(t) for t in time_range)
    for source, dest, climatology, whole_globe in ((raw, PREPARED, CLIMATOLOGY, True),
                                                   (regional_raw, REGIONAL, REGIONAL_CLIMATOLOGY,
                                                    False)):
        prepare_weather(source, out / dest, variables=list(data["variables"]),
                        train_period=train, time_range=time_range,
                        time_step_hours=data.get("time_step_hours"),
                        require_global=whole_globe,
                        dask_scheduler_kind=data.get("dask_scheduler", "threads"))
        compute_climatology(out / dest, out / climatology, train_period=train)


def ingest_section(cfg: dict) -> dict:
    """What the regional ingest's output depends on: the data section and the domain (not the
    boundary switch or the global checkpoint, so every arm shares one ingest)."""
    r = cfg["regional"]
    return {**cfg["data"], "regional_domain": {"box": list(r["box"]), "margin": r["margin"],
                                               "grid": r["grid"]}}
