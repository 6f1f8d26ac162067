"""The nightly workflow's config (``configs/nightly.yaml``), validated before anything runs.

    name: nightly
    root: runs/nightly            # everything the workflow writes (layout: workflows/nightly.py)
    model:
      checkpoint: null            # a Sluice checkpoint; null: train one as fingerprinted stages
      train_config: configs/nightly_model.yaml   # what to train when checkpoint is null
      overrides: []               # key.sub=value for that config
    analysis:
      store: null                 # ERA5-style store of analyses; null: the training config's
                                  # synthetic source, written to ROOT/analysis.zarr
      climatology: null           # for ACC and the climatology forecast; null: the bootstrap's
    cycle:
      hours: [0]                  # init hours (UTC) of a day that get a forecast
      first: null                 # first init to forecast; null: the first night run
    forecast:
      lead_hours: 240
      regional: false             # the regional model is not built yet: true is refused
    report:
      variables: [geopotential_500, temperature_850, 2m_temperature, 10m_u_component_of_wind]
      map_lead_hours: 24

Paths are relative to the current directory, as in the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator

from pipeline.config import Section, Timestamp, load_yaml_model


class ModelSection(Section):
    checkpoint: Path | None = None
    train_config: Path = Path("configs/nightly_model.yaml")
    overrides: tuple[str, ...] = ()


class AnalysisSection(Section):
    store: str | None = None  # a path, or an fsspec URL the ingest reads
    climatology: Path | None = None


class CycleSection(Section):
    hours: tuple[Annotated[int, Field(ge=0, le=23)], ...] = (0,)
    first: Timestamp | None = None

    @field_validator("hours")
    @classmethod
    def _distinct_sorted(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or len(set(v)) != len(v):
            raise ValueError("expected one or more distinct hours of the day")
        return tuple(sorted(v))


class ForecastSection(Section):
    lead_hours: Annotated[int, Field(gt=0, le=24 * 30)] = 240
    regional: bool = False

    @field_validator("regional")
    @classmethod
    def _no_regional_yet(cls, v: bool) -> bool:
        if v:
            raise ValueError("the regional nested model is not part of Sluice yet; set false")
        return v


class ReportSection(Section):
    variables: tuple[str, ...] = ("geopotential_500", "temperature_850", "2m_temperature",
                                  "10m_u_component_of_wind")
    map_lead_hours: Annotated[int, Field(gt=0)] = 24


class NightlyConfig(Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] = "nightly"
    root: Path = Path("runs/nightly")
    model: ModelSection = ModelSection()
    analysis: AnalysisSection = AnalysisSection()
    cycle: CycleSection = CycleSection()
    forecast: ForecastSection = ForecastSection()
    report: ReportSection = ReportSection()


def load_nightly_config(path, overrides: list[str] | None = None) -> NightlyConfig:
    """Read, override (``key.sub=value``) and validate; ConfigError naming file and key."""
    return load_yaml_model(path, overrides, NightlyConfig)
