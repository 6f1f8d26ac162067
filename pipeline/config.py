"""Experiment config: YAML validated by pydantic before Ray starts or any directory is made.

A config is one YAML file plus ``key.sub=value`` overrides from the command line. Each top-level
section feeds one stage (``data`` → ingest, ``graph`` → graph, ``model``+``train`` → train,
``evaluate`` → evaluate), and that section is what the stage's fingerprint hashes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.errors import ConfigError


class Section(BaseModel):
    # extra="forbid": a misspelt key fails loudly instead of silently taking a default.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _parse_time(value: Any) -> Any:
    """Accept what numpy accepts too ("2020-02-09T18", "2020-02-09 18:00"), as users write it."""
    if isinstance(value, str):
        import numpy as np

        try:
            return np.datetime64(value.strip(), "s").astype(dt.datetime)
        except ValueError:
            raise ValueError(f"'{value}' is not an ISO date/time such as 2020-02-09T18") from None
    return value


Timestamp = Annotated[dt.datetime, BeforeValidator(_parse_time)]
Period = tuple[Timestamp, Timestamp]


class SyntheticConfig(Section):
    # "rossby_haurwitz": analytic drifting waves (pipeline/synthetic.py), seconds to write.
    # "atmosphere": the forced spectral shallow-water core (pipeline/atmosphere), 13 levels +
    # surface, seasonal and diurnal cycles; its variables and levels follow data.variables.
    kind: Literal["rossby_haurwitz", "atmosphere"] = "rossby_haurwitz"
    spinup_days: Annotated[float, Field(ge=0)] | None = None  # atmosphere only; None = default
    start: Timestamp = dt.datetime(2020, 1, 1)
    end: Timestamp = dt.datetime(2020, 2, 29, 18)
    n_lat: Annotated[int, Field(ge=8, le=721)] = 32
    n_lon: Annotated[int, Field(ge=16, le=1440)] = 64
    levels: tuple[int, ...] = (500, 850)
    seed: int = 0


class PeriodsConfig(Section):
    train: Period = (dt.datetime(2020, 1, 1), dt.datetime(2020, 2, 9, 18))
    val: Period = (dt.datetime(2020, 2, 10), dt.datetime(2020, 2, 19, 18))
    test: Period = (dt.datetime(2020, 2, 20), dt.datetime(2020, 2, 29, 18))

    @model_validator(mode="after")
    def _ordered(self) -> PeriodsConfig:
        for name in ("train", "val", "test"):
            start, end = getattr(self, name)
            if end < start:
                raise ValueError(f"{name}: end {end} is before start {start}")
        return self


class RegridConfig(Section):
    # WeatherBench2's equiangular grid with poles: lat = linspace(90, -90, n_lat),
    # lon = arange(n_lon) * 360 / n_lon (e.g. 121 x 240 is 1.5°).
    n_lat: Annotated[int, Field(ge=3, le=2161)]
    n_lon: Annotated[int, Field(ge=4, le=4320)]


COMPACT_SELECTION = ("pressure_variables", "levels", "surface_variables")


class DataConfig(Section):
    # "synthetic" writes the deterministic synthetic ERA5-style store inside the ingest stage;
    # anything else is a path to an ERA5/WeatherBench2-style Zarr store or NetCDF file.
    source: str = "synthetic"
    synthetic: SyntheticConfig = SyntheticConfig()
    # Channel specs, WB2 long names: "var" (surface) or "var@level" (hPa), in output order.
    # Or the compact form (mutually exclusive with `variables`): each pressure variable at every
    # level in the order listed, then the surface variables; `variables` is then filled with
    # that expansion, so the rest of the pipeline sees one list.
    variables: tuple[str, ...] = (
        "geopotential@500",
        "temperature@850",
        "2m_temperature",
        "u_component_of_wind@500",
        "v_component_of_wind@500",
    )
    pressure_variables: tuple[str, ...] = ()
    levels: tuple[Annotated[float, Field(gt=0)], ...] = ()
    surface_variables: tuple[str, ...] = ()
    name_map: dict[str, str] = {}  # {source variable/dim name: WB2 name}
    time_range: Period | None = None  # inclusive; None = all the source has
    time_step_hours: Annotated[int, Field(ge=1, le=24 * 366)] | None = None  # None = source's
    regrid: RegridConfig | None = None
    fill_nan: Literal["error", "interpolate_time"] | float | None = None  # None = error
    require_global: bool = True
    dask_scheduler: Literal["threads", "ray"] = "threads"
    periods: PeriodsConfig = PeriodsConfig()

    @model_validator(mode="before")
    @classmethod
    def _expand_compact_selection(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or not any(raw.get(k) for k in COMPACT_SELECTION):
            return raw
        from pipeline.names import channel_specs

        if not raw.get("levels") and raw.get("pressure_variables"):
            raise ValueError("pressure_variables needs levels (hPa), e.g. levels: [500, 850]")
        if raw.get("levels") and not raw.get("pressure_variables"):
            raise ValueError("levels needs pressure_variables")
        expanded = tuple(channel_specs(*(tuple(raw.get(k) or ()) for k in COMPACT_SELECTION)))
        given = raw.get("variables")
        # A dumped config carries both (the expansion in `variables`): accept that, refuse a
        # user-given list that says something else.
        if given is not None and tuple(given) != expanded:
            raise ValueError("variables is mutually exclusive with pressure_variables/levels/"
                             "surface_variables: give either the explicit list or the compact "
                             "form")
        return {**raw, "variables": expanded}

    @field_validator("source")
    @classmethod
    def _source_exists(cls, v: str) -> str:
        if v != "synthetic" and "://" not in v and not Path(v).exists():
            raise ValueError(f"file or store not found: {v} (or use 'synthetic')")
        return v

    @field_validator("variables", "pressure_variables", "surface_variables")
    @classmethod
    def _wb2_names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from pipeline.names import ERA5_TO_WB2

        for spec in v:
            name = spec.partition("@")[0]
            if name in ERA5_TO_WB2:
                raise ValueError(f"'{spec}': channels use WeatherBench2 long names; write "
                                 f"'{ERA5_TO_WB2[name]}' (the source may still use '{name}')")
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate entries in {list(v)}")
        return v

    @field_validator("variables")
    @classmethod
    def _nonempty(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one variable is needed")
        return v

    @field_validator("levels")
    @classmethod
    def _distinct_levels(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate levels in {list(v)}")
        return v

    @field_validator("fill_nan", mode="before")
    @classmethod
    def _no_bool_fill(cls, v: Any) -> Any:
        if isinstance(v, bool):  # YAML `yes`/`true` would otherwise become 1.0
            raise ValueError("expected null, 'error', 'interpolate_time' or a number")
        return v


class GraphConfig(Section):
    """The grid/mesh graph (graphs.GraphSpec); defaults give the plain GraphCast multi-mesh."""

    mesh_levels: Annotated[int, Field(ge=0, le=6)] = 2
    radius_fraction: Annotated[float, Field(gt=0, le=2)] = 0.6
    # Nested mesh: [lat_min, lat_max, lon_min, lon_max] boxes in degrees (lon_min > lon_max
    # crosses the date line), refined region_levels more times (0: no refinement).
    regions: list[tuple[float, float, float, float]] = []
    region_levels: Annotated[int, Field(ge=0, le=6)] = 0
    region_mode: Literal["conforming", "oneforecast"] = "conforming"
    max_neighbours: Annotated[int, Field(ge=1)] | None = None  # grid->mesh cap per grid node
    mesh_orientation: Literal["sluice", "graphcast"] = "sluice"

    @field_validator("regions")
    @classmethod
    def _boxes(cls, boxes: list[tuple[float, float, float, float]]) -> list:
        for i, (lat_min, lat_max, _, _) in enumerate(boxes):
            if not -90.0 <= lat_min < lat_max <= 90.0:
                raise ValueError(f"box {i} {[lat_min, lat_max]}: expected latitudes with "
                                 f"-90 <= lat_min < lat_max <= 90")
        return boxes


class ModelConfig(Section):
    """models.oneforecast.GatedGNNConfig (docs/ARCHITECTURE.md, "Models and kernels")."""

    hidden: Annotated[int, Field(ge=2, le=1024)] = 32
    processor_layers: Annotated[int, Field(ge=1, le=32)] = 3
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    gradient_checkpointing: bool = False
    # "gated": OneForecast's layer (gated edge update + multi-head attention node update);
    # "interaction": GraphCast's ungated interaction network (the ablation's baseline)
    processor: Literal["gated", "interaction"] = "gated"
    # "mean": the released code (one gate per edge scales the edge MLP's output); "streams":
    # the paper's figure (the edge, source and destination gates scale their own inputs)
    gate_mode: Literal["mean", "streams"] = "mean"
    heads: Annotated[int, Field(ge=1, le=64)] = 4  # gate and attention heads
    gate_hidden: Annotated[int, Field(ge=1, le=4096)] | None = None  # None: max(16, hidden/8)
    attention_hidden: Annotated[int, Field(ge=1, le=4096)] = 64


class ParityConfig(Section):
    seq_len: Annotated[int, Field(ge=1, le=256)] = 8
    hidden: Annotated[int, Field(ge=1, le=1024)] = 16
    n_train: Annotated[int, Field(ge=1)] = 512
    n_val: Annotated[int, Field(ge=1)] = 128
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0


class VideoSyntheticConfig(Section):
    """pipeline.synthetic_video.VideoQASpec: the synthetic long-video QA source."""

    n_train: Annotated[int, Field(ge=1)] = 1000
    n_val: Annotated[int, Field(ge=1)] = 100
    n_test: Annotated[int, Field(ge=1)] = 300
    frames: tuple[Annotated[int, Field(ge=128)], Annotated[int, Field(ge=128)]] = (1024, 1024)
    feature_dim: Annotated[int, Field(ge=2, le=4096)] = 32
    noise: Annotated[float, Field(ge=0)] = 0.5
    amplitude: Annotated[float, Field(gt=0)] = 2.0
    text_noise: Annotated[float, Field(ge=0)] = 0.5  # answer feature = prototype + this · noise
    answer_features: bool = True  # ingest the source's answer features (false: word tokens only)
    seed: int = 0

    @model_validator(mode="after")
    def _frames_ordered(self) -> VideoSyntheticConfig:
        if self.frames[0] > self.frames[1]:
            raise ValueError(f"frames {list(self.frames)}: expected [min, max]")
        return self


class VideoDataConfig(Section):
    """Video-QA ingest (pipeline/ingest/video.py): frame features + QA tables → one store."""

    # "synthetic" (pipeline/synthetic_video.py, written at ingest), or the frame features: a
    # directory of <video_id>.npy / .npz, an HDF5 file or a Zarr group with one array per video
    source: str = "synthetic"
    qa: dict[Literal["train", "val", "test"], str] = {}  # split → CSV/JSON (not for synthetic)
    # precomputed answer features in the frames' space (one [5, D] array per qid, same four
    # layouts as the frames; e.g. CLIP text features beside CLIP frame features); None: the
    # options are read as word tokens only. Not for synthetic (synthetic.answer_features).
    answer_features: str | None = None
    synthetic: VideoSyntheticConfig = VideoSyntheticConfig()
    frames: Annotated[int, Field(ge=1)] | None = None  # uniform resampling to this many frames
    chunk_frames: Annotated[int, Field(ge=1)] = 1024
    partitions: Annotated[int, Field(ge=1)] | None = None  # Dask tasks (None: 4 per CPU)
    skip_bad: bool = False  # skip bad rows/videos, listed in skipped.json, instead of failing
    max_words: Annotated[int, Field(ge=4, le=512)] = 32

    @model_validator(mode="after")
    def _qa_given(self) -> VideoDataConfig:
        if self.source != "synthetic" and "train" not in self.qa:
            raise ValueError("video.data.qa.train: a QA table is needed for a features source")
        if self.source == "synthetic" and self.answer_features is not None:
            raise ValueError("video.data.answer_features: not for the synthetic source (it "
                             "writes its own; video.data.synthetic.answer_features switches "
                             "them off)")
        return self


class VideoModelConfig(Section):
    """models.videoqa.VideoQAConfig (feature width and vocabulary come from the data)."""

    # the sequence operator in the gated layer's slot; meanpool: the order-agnostic baseline
    slot: Literal["ssl", "attention", "conv", "meanpool"] = "ssl"
    d_model: Annotated[int, Field(ge=4, le=4096)] = 64
    slot_layers: Annotated[int, Field(ge=1, le=32)] = 2
    expansion: Annotated[int, Field(ge=1, le=8)] = 2
    hidden: Annotated[int, Field(ge=2, le=4096)] = 64  # H: width of the sequence operator
    ssm_modes: Annotated[int, Field(ge=1, le=4096)] = 64
    dt_min: Annotated[float, Field(gt=0)] = 1e-4
    dt_max: Annotated[float, Field(gt=0)] = 1e-1
    heads: Annotated[int, Field(ge=1, le=64)] = 4
    conv_kernel: Annotated[int, Field(ge=1, le=1025)] = 15
    video_tokens: Annotated[int, Field(ge=1, le=4096)] = 64
    fusion_layers: Annotated[int, Field(ge=1, le=32)] = 2
    fusion_heads: Annotated[int, Field(ge=1, le=64)] = 4
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    c3: bool = True  # the C³ objective (models/videoqa/c3.py)
    c3_weight: Annotated[float, Field(ge=0)] = 0.005
    c3_tau: Annotated[float, Field(gt=0)] = 0.01

    @model_validator(mode="after")
    def _slot_shapes(self) -> VideoModelConfig:
        if self.conv_kernel % 2 == 0:
            raise ValueError(f"conv_kernel {self.conv_kernel} must be odd (a centred kernel)")
        if self.slot == "attention" and (self.hidden % self.heads
                                         or (self.hidden // self.heads) % 2):
            raise ValueError(f"hidden {self.hidden} must split into {self.heads} even-sized "
                             "attention heads")
        if self.d_model % self.fusion_heads:
            raise ValueError(f"d_model {self.d_model} must divide by fusion_heads "
                             f"{self.fusion_heads}")
        return self


class VideoConfig(Section):
    data: VideoDataConfig = VideoDataConfig()
    model: VideoModelConfig = VideoModelConfig()


class RolloutConfig(Section):
    """Autoregressive rollout training with a curriculum (pipeline/tasks/weather.py).

    ``schedule`` is ``[[from_step, k], ...]``: the optimizer step s (0-based: the steps already
    taken) rolls the model out k(s) = the k of the last entry with from_step <= s steps, feeding
    it its own forecasts, and the loss is the mean over those k steps. k(s) depends only on the
    global step, which checkpoints store, so a resumed run trains on the same k.
    """

    schedule: list[tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=1, le=240)]]] = [
        (0, 1)]
    # torch.utils.checkpoint around each rollout step (when k > 1): activation memory of one
    # step instead of k, for one more forward pass per step (GraphCast, OneForecast do this)
    gradient_checkpointing: bool = True

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: list[tuple[int, int]]) -> list[tuple[int, int]]:
        if not v or v[0][0] != 0:
            raise ValueError("the first entry must start at step 0, e.g. [[0, 1], [1000, 2]]")
        starts = [s for s, _ in v]
        if any(b <= a for a, b in zip(starts, starts[1:], strict=False)):
            raise ValueError(f"from_step values must increase strictly, got {starts}")
        return v


class TrainConfig(Section):
    task: Literal["weather_global", "weather_regional", "parity", "videoqa"] = "weather_global"
    num_workers: Annotated[int, Field(ge=0, le=4096)] = 2
    use_gpu: bool = False
    batch_size: Annotated[int, Field(ge=1)] = 8  # global batch, split evenly over workers
    max_steps: Annotated[int, Field(ge=1)] = 200
    lr: Annotated[float, Field(gt=0, le=1)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: Annotated[int, Field(ge=0)] = 20
    min_lr_ratio: Annotated[float, Field(ge=0, le=1)] = 0.1
    grad_clip: Annotated[float, Field(gt=0)] = 1.0
    checkpoint_every: Annotated[int, Field(ge=1)] = 50
    # Validation at each checkpoint scores this many windows spread evenly over the validation
    # period (None: every window; a year of 6-hourly windows at the rollout length costs
    # minutes on a CPU, spent at every checkpoint).
    val_samples: Annotated[int, Field(ge=1)] | None = None
    loader_workers: Annotated[int, Field(ge=0, le=64)] = 1
    shuffle: bool = True
    max_failures: Annotated[int, Field(ge=-1)] = 1
    # What the weather network learns to output (pipeline/tasks/weather.py). "residual": the
    # 6-hour change normalised by the std of 6-hour differences, forecast X_t + σ_Δ·Δ̂
    # (GraphCast; the default: persistence is the zero output, and the loss sees the change on
    # its own scale); "direct": the normalised next state (X_{t+1} − μ)/σ (OneForecast's
    # released code).
    target: Literal["residual", "direct"] = "residual"
    # States the weather network sees: 1 (X_t; OneForecast's released code) or 2 (X_{t-1} and
    # X_t, GraphCast's 12-hour input): the second state carries the tendency, which a one-state
    # model cannot know (the phase of a travelling wave), and which even a pointwise linear AR
    # on two states exploits.
    input_states: Literal[1, 2] = 1
    # Weather input channels after the state, always in this order: sin/cos of local solar time,
    # sin/cos of the fraction of the year, sin latitude (the graph's grid nodes carry cos lat,
    # sin/cos lon already), the prepared store's static fields (none unless it has a `static`
    # array). A training period much shorter than a year cannot teach a seasonal dependence:
    # there, year_progress is only a clock the model may overfit to; leave it out.
    forcings: tuple[Literal["local_time", "year_progress", "latitude", "static"], ...] = (
        "local_time", "year_progress", "latitude", "static")
    # Weather loss (pipeline/tasks/weather.py). "mse": area-, level- and variable-weighted MSE
    # (GraphCast); "relative_l2": OneForecast's channel-wise ||ŷ − y||₂ / ||y||₂, mean over
    # samples and channels.
    loss: Literal["mse", "relative_l2"] = "mse"
    # Per-variable weights of the mse loss, on top of GraphCast's (2m_temperature 1; 10 m winds,
    # mean_sea_level_pressure, total_precipitation_6hr 0.1; every other variable 1), e.g.
    # {mean_sea_level_pressure: 1.0}. Keys are WB2 variable names of the data's channels.
    variable_weights: dict[str, Annotated[float, Field(ge=0)]] = {}
    rollout: RolloutConfig = RolloutConfig()
    parity: ParityConfig = ParityConfig()

    @field_validator("forcings")
    @classmethod
    def _distinct_forcings(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate entries in {list(v)}")
        return v

    @model_validator(mode="after")
    def _batch_divides(self) -> TrainConfig:
        workers = max(self.num_workers, 1)
        if self.batch_size % workers:
            raise ValueError(
                f"batch_size {self.batch_size} must be divisible by num_workers {workers}"
            )
        return self


class EvaluateConfig(Section):
    max_samples: Annotated[int, Field(ge=1)] = 10_000  # initial times scored (the first ones)
    # Every init_stride-th window of the test period is an initial time: 2 on 6-hourly data is
    # WeatherBench2's 00/12 UTC initialisations over the whole period, not its first days.
    init_stride: Annotated[int, Field(ge=1)] = 1
    lead_steps: Annotated[int, Field(ge=1, le=240)] = 4  # rollout length in time steps
    plot_variable: str | None = None  # default: the first channel


class RegionalConfig(Section):
    """OneForecast's neural nested grid (pipeline/tasks/weather_regional.py): a regional model
    on the synthetic atmosphere's native T42 Gaussian grid (2.8125°) inside ``box``, driven by a
    frozen global model on the coarser ``data.synthetic`` grid (its conservative coarsening)."""

    # [lat_min, lat_max, lon_min, lon_max] degrees; lon_min > lon_max crosses the date line
    box: tuple[float, float, float, float]
    # degrees of boundary zone around the box: nodes there hold the global forecast, never the
    # regional model's own state; the loss and the scores cover the box alone
    margin: Annotated[float, Field(ge=0, le=45)] = 10.0
    # False: the ablation without the global forecast (no boundary channels and no margin)
    boundary: bool = True
    # the frozen global model: a checkpoint directory written by `sluice run` (RUN/train/checkpoint)
    global_checkpoint: Annotated[str, Field(min_length=1)]
    grid: Literal["native"] = "native"  # the regional resolution: the core's own grid
    # how training meets the global forecasts (pipeline/tasks/weather_regional.py): "one_step",
    # each true state with the 6 h forecast from the analysis (near-perfect boundaries);
    # "rollout", as a forecast runs: global rollouts of boundary_leads steps from an analysis
    # every boundary_init_stride steps, the regional model's own rollout (no gradient) to a
    # random lead, then trained steps, each with the global forecast of its lead and that lead
    # as an input (the boundary's age). The ablation without boundary trains from the same
    # initial times without g
    train_boundary: Literal["one_step", "rollout"] = "one_step"
    boundary_leads: Annotated[int, Field(ge=1, le=240)] = 12
    boundary_init_stride: Annotated[int, Field(ge=1)] = 4
    # how the loss weighs a step by its lead ℓ from the analysis: "uniform", as is; "persistence",
    # divided by persistence's loss at ℓ over the training period (an MSE skill score per lead):
    # σ_Δ-normalised errors grow ~ℓ², so uniform weights let the longest leads drown the first
    # steps of a forecast (pipeline/tasks/weather_regional.py)
    lead_loss: Literal["uniform", "persistence"] = "uniform"
    # rollout training's start lead k0: None, uniform on 0..L−1; p, k0 = 0 (trained from the
    # analysis, as one-step training always is) with probability p, else uniform on 1..L−1
    # (a batch trains steps k0..min(k0+k, L)−1: every lead past k from k starts alike).
    # The first steps of a forecast need many samples to beat the global model's; the aged
    # ones learn mostly how far to trust g, and cost k0 forward passes each
    analysis_start_fraction: Annotated[float, Field(ge=0, lt=1)] | None = None
    # what the residual target (train.target: residual) adds the network's output to inside the
    # box: "state", the regional state x_t (x̂ = x_t + σ_Δ f, as the global model); "boundary",
    # the global forecast valid at the target time (x̂ = g_{t+Δt} + σ_Δ f: the network learns the
    # regional correction to g, and an untrained one forecasts g). The ablation without boundary
    # has no g and keeps the state. "gated": a learned gate per node and variable between the two
    # (b = x_t + γ ⊙ (g − x_t), γ = sigmoid of C more outputs). "tendency": two gates, the state
    # relaxed towards g_t and carried by g's change over the step (b = x_t + α ⊙ (g − g_t) +
    # γ ⊙ (g_t − x_t), 2C more outputs; g_t = the global forecast valid at the step's start)
    residual_base: Literal["state", "boundary", "gated", "tendency"] = "state"
    # the global forecast's change over the step, (g_{t+Δt} − g_t)/σ_Δ, as C more input channels:
    # the network sees g_{t+Δt} and the state, not how far g moves; the tendency base's gate on
    # that change needs it to close where g's change is poor. The ablation has no g
    tendency_input: bool = False

    @field_validator("box")
    @classmethod
    def _box(cls, box: tuple[float, float, float, float]) -> tuple:
        lat_min, lat_max, lon_min, lon_max = box
        if not -90.0 <= lat_min < lat_max <= 90.0:
            raise ValueError(f"box {list(box)}: expected -90 <= lat_min < lat_max <= 90")
        if not (-180.0 <= lon_min <= 360.0 and -180.0 <= lon_max <= 360.0) or lon_min == lon_max:
            raise ValueError(f"box {list(box)}: expected distinct longitudes in -180..360")
        return box

    def domain(self) -> tuple[float, float, float, float]:
        """The box plus the margin (latitudes clipped to ±90; the box alone without boundary)."""
        m = self.margin if self.boundary else 0.0
        lat_min, lat_max, lon_min, lon_max = self.box
        return (max(lat_min - m, -90.0), min(lat_max + m, 90.0),
                (lon_min - m) % 360.0, (lon_max + m) % 360.0)

    def data_domain(self) -> tuple[float, float, float, float]:
        """What the ingest writes: the box plus the margin whatever ``boundary`` says, so both
        arms of the ablation train on the same bytes."""
        return self.model_copy(update={"boundary": True}).domain()


class RayConfig(Section):
    num_cpus: Annotated[int, Field(ge=1)] | None = None  # embedded cluster size; None = all


class Config(Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] = "experiment"
    seed: int = 0
    # Where runs go: RUN = storage_path/name. A directory (shared by every node of a
    # multi-node cluster) or an fsspec URL such as s3://bucket/sluice (pipeline.runstore).
    storage_path: Annotated[str, Field(min_length=1)] = "runs"
    ray: RayConfig = RayConfig()
    data: DataConfig = DataConfig()
    graph: GraphConfig = GraphConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    video: VideoConfig = VideoConfig()  # the videoqa task's data and model
    regional: RegionalConfig | None = None  # the weather_regional task's region and global model

    @model_validator(mode="after")
    def _regional_complete(self) -> Config:
        if self.train.task != "weather_regional":
            return self
        if self.regional is None:
            raise ValueError("train.task weather_regional needs a regional section (box, "
                             "global_checkpoint)")
        s = self.data.synthetic
        if self.data.source != "synthetic" or s.kind != "atmosphere":
            raise ValueError("train.task weather_regional: the regional truth is the synthetic "
                             "atmosphere's native grid; expected data.source synthetic with "
                             "data.synthetic.kind atmosphere")
        if self.train.input_states != 1:
            raise ValueError("train.task weather_regional takes one input state (the global "
                             "forecast carries the tendency); expected train.input_states 1")
        margin = self.regional.margin if self.regional.boundary else 0.0
        lon_span = (self.regional.box[3] - self.regional.box[2]) % 360.0 + 2 * margin
        if lon_span >= 360.0:
            raise ValueError(f"regional.box with its margin spans {lon_span:g}° of longitude; "
                             "a regional domain must be narrower than the globe")
        longest = max(k for _, k in self.train.rollout.schedule)
        if self.regional.train_boundary == "rollout" and longest > self.regional.boundary_leads:
            raise ValueError(f"train.rollout.schedule rolls out {longest} steps but "
                             f"regional.boundary_leads is {self.regional.boundary_leads}; "
                             "expected boundary_leads >= the longest rollout")
        if self.regional.lead_loss == "persistence" and self.train.loss != "mse":
            raise ValueError(f"regional.lead_loss persistence divides each step's MSE by "
                             f"persistence's; expected train.loss mse, not {self.train.loss}")
        base = self.regional.residual_base
        if base != "state" and self.train.target != "residual":
            raise ValueError(f"regional.residual_base {base} is the base of the residual "
                             f"target; expected train.target residual, not {self.train.target}")
        return self

    @model_validator(mode="after")
    def _plot_variable_known(self) -> Config:
        pv = self.evaluate.plot_variable
        if pv is not None and pv not in channel_names(self.data.variables):
            raise ValueError(
                f"evaluate.plot_variable '{pv}' is not a channel; "
                f"choose from {channel_names(self.data.variables)}"
            )
        return self


def channel_names(variables: tuple[str, ...]) -> list[str]:
    """``geopotential@500`` → ``geopotential_500``: the prepared store's channel names."""
    return [v.replace("@", "_") for v in variables]


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings to a nested dict; values are parsed as YAML scalars."""
    out = dict(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}': expected key.sub=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override '{item}': empty key segment in '{key}'")
        node = out
        for p in parts[:-1]:
            child = node.get(p, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override '{item}': '{p}' is not a section")
            node[p] = dict(child)
            node = node[p]
        try:
            node[parts[-1]] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ConfigError(f"override '{item}': value is not valid YAML: {e}") from None
    return out


def _format_error(path: str, err: ValidationError, schema: type[BaseModel] = Config) -> str:
    lines = [f"{path}: invalid config"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            parent = e["loc"][:-1]
            allowed = _allowed_keys(parent, schema)
            lines.append(f"  {loc}: unknown key; allowed keys here: {', '.join(allowed)}")
        else:
            given = e.get("input")
            shown = "" if isinstance(given, dict) else f" (got {given!r})"
            lines.append(f"  {loc}: {e['msg']}{shown}")
    return "\n".join(lines)


def _allowed_keys(loc: tuple, schema: type[BaseModel] = Config) -> list[str]:
    model: type[BaseModel] = schema
    for part in loc:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return sorted(model.model_fields)


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read, override and validate. Raises ConfigError naming the file and key path."""
    return load_yaml_model(path, overrides, Config)


def load_yaml_model(path: str | Path, overrides: list[str] | None, schema: type[BaseModel]):
    """A YAML file plus ``key.sub=value`` overrides validated as ``schema`` (any config model
    of ours, e.g. `Config` or the nightly workflow's); ConfigError naming the file and key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides or [])
    try:
        return schema.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_error(str(path), e, schema)) from None
