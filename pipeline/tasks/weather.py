"""Global medium-range weather: the 6-hour step of the prepared channels, rolled out.

Sample t: input X_t [C, H, W] and targets X_{t+1..t+K} (K: the rollout curriculum's longest).
The network sees, on the grid nodes, the normalised state (X_t − μ)/σ and forcing channels
(``train.forcings``, `WeatherGlobalTask.forcings`): sin/cos of local solar time and of the
fraction of the year at the state's valid time, sin latitude, and the store's static fields when
it has any. Its output is, by ``train.target``,

- ``residual`` (default, GraphCast): the normalised change Δ̂ ≈ (X_{t+1} − X_t)/σ_Δ, σ_Δ the std
  of 6-hour differences; forecast X̂_{t+1} = X_t + σ_Δ ⊙ Δ̂. Persistence is the zero output and
  the loss sees the change on its own scale, which is what a 6-hour step mostly is: a small
  change of a large state (σ_Δ ≪ σ for the dynamical fields), so the network need not spend
  its precision on reproducing X_t.
- ``direct`` (OneForecast's released code): the normalised next state (X_{t+1} − μ)/σ;
  forecast X̂_{t+1} = μ + σ ⊙ ŷ.

The loss (``train.loss``) compares the output with the same quantity made from the truth:
``mse`` weights it by cell area, pressure level and variable (`channel_loss_weights`,
GraphCast); ``relative_l2`` is OneForecast's channel-wise relative L2 (`relative_l2`).

Rollout training (``train.rollout``): at optimizer step s the model is rolled out k(s)
steps (`rollout_steps`), each step fed its own previous forecast in physical units (then
renormalised), with the forcings of that step's valid time; the loss is the mean of the k
one-step losses, each against the truth at that lead, and gradients flow through the whole
rollout. With ``gradient_checkpointing`` each step's activations are recomputed in the
backward pass (`torch.utils.checkpoint`), so memory does not grow with k.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.checkpoint import checkpoint

from graphs import load_graph
from models.oneforecast import GatedGNN, GatedGNNConfig
from pipeline.datasets import WeatherWindows, collate_windows
from pipeline.errors import DataError
from pipeline.ingest import PreparedWeather, channel_variable_level, open_prepared
from pipeline.metrics import lat_weights

# GraphCast's per-variable loss weights (graphcast/graphcast.py, GraphCast.loss_and_predictions,
# passed to losses.weighted_mse_per_level); a variable not listed weighs 1.0, like every
# pressure-level variable. 2m_temperature stays at 1.0 as a headline variable; the other
# surface variables get 0.1 "to avoid hurting performance on other variables".
GRAPHCAST_VARIABLE_WEIGHTS = {
    "2m_temperature": 1.0,
    "10m_u_component_of_wind": 0.1,
    "10m_v_component_of_wind": 0.1,
    "mean_sea_level_pressure": 0.1,
    "total_precipitation_6hr": 0.1,
}
# GraphCast's year length for the year-progress forcing (graphcast/data_utils.py)
AVG_SECONDS_PER_YEAR = 86400.0 * 365.24219
# Forcing channels after the state channels, by ``train.forcings`` group, in input order; the
# store's static fields ("static") follow. The graph's grid node features already carry
# (cos lat, sin lon, cos lon) (graphs/features.py); sin lat is the one that tells the
# hemispheres apart.
FORCING_CHANNELS = {
    "local_time": ("local_time_sin", "local_time_cos"),
    "year_progress": ("year_progress_sin", "year_progress_cos"),
    "latitude": ("sin_latitude",),
}


# -- forcings ------------------------------------------------------------------------------------
def local_solar_time_features(time_ns: torch.Tensor, lon_deg: torch.Tensor) -> torch.Tensor:
    """sin/cos of local solar hour angle: time_ns [B] int64, lon [N] → [B, N, 2] float32.

    GraphCast's day progress: (UTC seconds of day / 86400 + lon / 360) mod 1; local noon is
    progress 1/2 (sin 0, cos −1).
    """
    hours = (time_ns.double() / 3.6e12) % 24.0  # UTC hour of day
    angle = 2 * torch.pi * (hours[:, None] / 24.0 + lon_deg.double()[None, :] / 360.0)
    return torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).float()


def year_progress_features(time_ns: torch.Tensor) -> torch.Tensor:
    """sin/cos of the fraction of the year: time_ns [B] int64 → [B, 2] float32.

    GraphCast's year progress: (seconds since 1970-01-01 / 365.24219 days) mod 1, so the phase
    is 0 near 1 January 00 UTC (−0.0003 in 2020) and does not jump at year ends.
    """
    progress = torch.remainder(time_ns.double() / 1e9 / AVG_SECONDS_PER_YEAR, 1.0)
    angle = 2 * torch.pi * progress
    return torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).float()


def read_static_fields(store: PreparedWeather, prepared,
                       ) -> tuple[tuple[str, ...], np.ndarray | None]:
    """The static fields of ``store`` (opened from the path or URL ``prepared``, which errors
    name): names (S) and values [S, H, W] float32, or ((), None).

    A prepared store may hold an array ``static[field, lat, lon]`` on its own grid (latitude
    descending, longitude 0..360, like ``data``) with the field names in its attribute
    ``channels`` (e.g. ``land_sea_mask``, ``geopotential_at_surface``). Ingest writes none today,
    so absence is the normal case.
    """
    group = store.group
    if "static" not in group:
        return (), None
    array = group["static"]
    names = tuple(array.attrs.get("channels", ()))
    _, _, n_lat, n_lon = group["data"].shape
    if array.ndim != 3 or array.shape != (len(names), n_lat, n_lon):
        raise DataError(prepared, "static", f"an array [field, lat, lon] of shape "
                        f"({len(names)}, {n_lat}, {n_lon}) with its field names in attribute "
                        f"'channels'", f"shape {array.shape}, channels {list(names)}")
    values = np.asarray(array[:], dtype=np.float32)
    if not np.isfinite(values).all():
        raise DataError(prepared, "static", "finite values", "NaN or inf")
    return names, values


def standardise_static(fields: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """Each field minus its area-weighted mean, over its area-weighted std (1 if constant):
    fields [S, H, W], lat [H] → [S, H, W] float32."""
    w = lat_weights(lat_deg)[None, :, None]  # [1, H, 1], mean 1
    x = fields.astype(np.float64)
    mean = (w * x).mean(axis=(1, 2), keepdims=True)
    std = np.sqrt((w * (x - mean) ** 2).mean(axis=(1, 2), keepdims=True))
    return ((x - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


# -- loss ------------------------------------------------------------------------------------------
def channel_loss_weights(channels, variable_weights: dict[str, float] | None = None) -> np.ndarray:
    """Per-channel weights of the mse loss, GraphCast's, normalised to mean 1: [C] float64.

    GraphCast (graphcast/losses.py, ``weighted_mse_per_level``) averages each variable over its
    levels with weights p / mean(p) (``normalized_level_weights``: pressure-proportional, mean 1
    over the levels present), then sums the variables with per-variable weights
    (`GRAPHCAST_VARIABLE_WEIGHTS`, updated by ``variable_weights``). Per channel (v, p) that is

        w_(v,p) = w_v · (p / mean_{p' ∈ P_v} p') / |P_v|,    w_v for a surface variable,

    so all levels of z together weigh as much as 2m_temperature alone. We divide by the mean
    over channels (the loss becomes GraphCast's divided by Σ w, a constant), so a loss of 1 is
    an error of one normalisation unit everywhere, whatever the channel count.
    """
    weights = {**GRAPHCAST_VARIABLE_WEIGHTS, **(variable_weights or {})}
    parsed = [channel_variable_level(c) for c in channels]
    levels: dict[str, list[float]] = {}
    for variable, level in parsed:
        if level is not None:
            levels.setdefault(variable, []).append(level)
    w = np.empty(len(parsed))
    for i, (variable, level) in enumerate(parsed):
        w[i] = weights.get(variable, 1.0)
        if level is not None:
            w[i] *= level / np.mean(levels[variable]) / len(levels[variable])
    if not w.sum() > 0:
        raise ValueError(f"train.variable_weights leave every channel of {list(channels)} at 0")
    return w / w.mean()


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, node_weight: torch.Tensor,
                 channel_weight: torch.Tensor) -> torch.Tensor:
    """mean_{b,n,c} a_n w_c (ŷ − y)²: pred, target [B, N, C], node_weight [N], channel_weight [C]
    (each of mean 1, so uniform unit errors give 1)."""
    return (((pred - target) ** 2) * node_weight[:, None] * channel_weight).mean()


def relative_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """OneForecast's channel-wise relative L2 (my_utils/darcy_loss.py, ``channel_wise_LpLoss``,
    p = 2, size_average, no scale): mean_{b,c} ||ŷ_bc − y_bc||₂ / ||y_bc||₂ with the norms over
    grid nodes, unweighted. pred, target [B, N, C] → scalar."""
    return ((pred - target).norm(dim=1) / target.norm(dim=1)).mean()


def rollout_steps(schedule, step: int) -> int:
    """k(s): the k of the last ``[from_step, k]`` entry of ``schedule`` with from_step <= s."""
    k = schedule[0][1]
    for from_step, steps in schedule:
        if from_step <= step:
            k = steps
    return int(k)


class WeatherGlobalTask:
    name = "weather_global"
    collate_fn = staticmethod(collate_windows)  # a batch read as one block, no extra copy
    static_channels: tuple[str, ...] = ()  # the store's static fields (`read_static_fields`)

    def __init__(self, cfg: dict, inputs: dict[str, str]):
        store = open_prepared(inputs["prepared"])
        static_names, static = (), None
        if "static" in cfg["train"]["forcings"]:
            static_names, static = read_static_fields(store, inputs["prepared"])
        self._bind(cfg, inputs, channels=list(store.channels), lat=store.lat, lon=store.lon,
                   step_hours=store.time_step_hours,
                   stats={k: getattr(store, k) for k in ("mean", "std", "diff_std")},
                   graph=load_graph(inputs["graph"]), static=(static_names, static),
                   where=f"graph {inputs['graph']}, prepared data {inputs['prepared']}")

    @classmethod
    def from_checkpoint_meta(cls, meta: dict, graph) -> WeatherGlobalTask:
        """The task a checkpoint was trained with, rebuilt from its meta.json alone (config,
        channels, grid, time step, normalisation) and the graph of its spec: what a forecast
        needs, with no prepared store. Static forcings are not in a checkpoint: DataError."""
        missing = [k for k in ("grid", "time_step_hours", "normalisation", "channels")
                   if k not in meta]
        if missing:
            raise DataError("checkpoint meta.json", ", ".join(missing),
                            "a checkpoint that describes its grid and time step (written by "
                            "Sluice since the forecast command; retrain to get one)", "absent")
        if any(f.startswith("static:") for f in meta.get("forcings", ())):
            raise DataError("checkpoint meta.json", "forcings", "no static fields (a forecast "
                            "from a checkpoint alone cannot rebuild them)", meta["forcings"])
        task = cls.__new__(cls)
        task._bind(meta["config"], {}, channels=list(meta["channels"]),
                   lat=np.asarray(meta["grid"]["latitude"]),
                   lon=np.asarray(meta["grid"]["longitude"]),
                   step_hours=float(meta["time_step_hours"]),
                   stats=meta["normalisation"], graph=graph, static=((), None),
                   where="checkpoint meta.json and its graph")
        return task

    def _bind(self, cfg: dict, inputs: dict[str, str], *, channels, lat, lon, step_hours,
              stats, graph, static, where: str) -> None:
        self.cfg, self.inputs = cfg, inputs
        self.channels = list(channels)
        self.lat, self.lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
        self.step_hours = float(step_hours)
        self.stats = {k: np.asarray(stats[k], dtype=np.float32) for k in ("mean", "std",
                                                                          "diff_std")}
        self.graph = graph
        n_lat, n_lon = len(self.lat), len(self.lon)
        if self.graph["grid"].num_nodes != n_lat * n_lon:
            raise ValueError(f"{where}: the graph has {self.graph['grid'].num_nodes} grid nodes, "
                             f"the data {n_lat}x{n_lon}")
        tcfg = cfg["train"]
        self.static_channels, static = static
        self.static = None if static is None else standardise_static(static, self.lat)
        self.target = tcfg["target"]
        self.loss_kind = tcfg["loss"]
        self.schedule = [tuple(entry) for entry in tcfg["rollout"]["schedule"]]
        self.max_rollout = max(k for _, k in self.schedule)
        self.rollout_checkpointing = tcfg["rollout"]["gradient_checkpointing"]
        variables = {channel_variable_level(c)[0] for c in self.channels}
        unknown = sorted(set(tcfg["variable_weights"]) - variables)
        if unknown:
            raise ValueError(f"train.variable_weights names {unknown}, not variables of the "
                             f"channels {self.channels}")
        self.channel_weights = channel_loss_weights(self.channels, tcfg["variable_weights"])
        self._tensors(torch.device("cpu"))

    @property
    def input_states(self) -> int:
        """States the network sees: 1 (x_t) or 2 (x_{t-1}, x_t); ``train.input_states``."""
        return self.cfg["train"].get("input_states", 1)

    @property
    def forcings(self) -> list[str]:
        """Names of the input channels after the state channels, in order."""
        groups = self.cfg["train"]["forcings"]
        names = [n for group, channels in FORCING_CHANNELS.items() if group in groups
                 for n in channels]
        return names + [f"static:{s}" for s in self.static_channels]

    def _tensors(self, device) -> None:
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        self.mean, self.std, self.diff_std = (as_t(self.stats[k]) for k in ("mean", "std",
                                                                             "diff_std"))
        w = np.repeat(lat_weights(self.lat), len(self.lon))  # grid node order: lat-major
        self.node_weight = as_t(w)  # [N]
        self.channel_weight = as_t(self.channel_weights)  # [C]
        self.grid_lon = torch.as_tensor(self.graph["grid"].lon)  # [N], host: phases in float64
        grid = [torch.zeros(len(self.grid_lon), 0, dtype=torch.float64)]
        if "latitude" in self.cfg["train"]["forcings"]:
            grid.append(torch.sin(torch.deg2rad(self.graph["grid"].lat.double()))[:, None])
        if self.static is not None:  # [S, H, W] → [N, S]
            grid.append(torch.from_numpy(self.static).reshape(len(self.static), -1).T.double())
        self.grid_forcing = as_t(torch.cat(grid, dim=1))  # [N, latitude + S]
        self.device_graph = self.graph.to(device)

    def to(self, device) -> None:
        self._tensors(torch.device(device))

    def model_config(self) -> GatedGNNConfig:
        m = self.cfg["model"]
        return GatedGNNConfig(
            in_channels=len(self.channels) * self.input_states + len(self.forcings),
            out_channels=len(self.channels),
            hidden=m["hidden"], processor_layers=m["processor_layers"], dropout=m["dropout"],
            gradient_checkpointing=m["gradient_checkpointing"], processor=m["processor"],
            gate_mode=m["gate_mode"], heads=m["heads"], gate_hidden=m["gate_hidden"],
            attention_hidden=m["attention_hidden"],
        )

    def build_model(self) -> torch.nn.Module:
        return GatedGNN(self.model_config())

    def _windows(self, split: str, lead_steps: int) -> WeatherWindows:
        """(X_t, X_{t+1..t+lead_steps}) windows with every time inside the split's period."""
        period = tuple(str(t) for t in self.cfg["data"]["periods"][split])
        return WeatherWindows(self.inputs["prepared"], period, history=self.input_states,
                              lead_steps=lead_steps)

    def train_dataset(self):
        return self._windows("train", self.max_rollout)

    def val_dataset(self):
        return self._windows("val", self.max_rollout)  # validated at the training step's k

    def test_dataset(self):
        return self._windows("test", 1)

    # -- model input / output in physical units ------------------------------------------------
    def forcing(self, time_ns: torch.Tensor) -> torch.Tensor:
        """Forcing channels at valid times time_ns [B] int64 → [B, N, F] float32 (`forcings`)."""
        groups = self.cfg["train"]["forcings"]
        time_ns = time_ns.cpu()  # float64 phases on the host: exact on every device type
        b, n = time_ns.shape[0], self.grid_forcing.shape[0]
        parts = []
        if "local_time" in groups:
            parts.append(local_solar_time_features(time_ns, self.grid_lon))  # [B, N, 2]
        if "year_progress" in groups:
            parts.append(year_progress_features(time_ns)[:, None, :].expand(b, n, 2))
        device = self.grid_forcing.device
        return torch.cat([*(p.to(device) for p in parts), self.grid_forcing.expand(b, -1, -1)],
                         dim=-1)

    def network_output(self, model, x0: torch.Tensor, time_ns: torch.Tensor,
                       x_prev: torch.Tensor | None = None) -> torch.Tensor:
        """x0 [B, C, H, W] physical, valid at time_ns [B] (and x_prev, one step earlier, when
        ``input_states`` is 2) → the network's output [B, N, C]: the normalised change
        (residual) or the normalised next state (direct). Input channels per grid node:
        [x_prev (if used), x0, forcings], each state normalised by (x − μ)/σ."""
        states = [x0] if self.input_states == 1 else [self._previous(x_prev, x0), x0]
        b, c = x0.shape[:2]
        normalised = [((x - self.mean[:, None, None]) / self.std[:, None, None])
                      .reshape(b, c, -1).transpose(1, 2) for x in states]
        inputs = torch.cat([*normalised, self.forcing(time_ns).to(x0.device)],
                           dim=-1)  # [B, N, S·C + F]
        return model(inputs, self.device_graph)

    def _previous(self, x_prev: torch.Tensor | None, x0: torch.Tensor) -> torch.Tensor:
        if x_prev is None or x_prev.shape != x0.shape:
            raise ValueError(f"train.input_states 2: the model needs the previous state "
                             f"[B, C, H, W] {tuple(x0.shape)}, got "
                             f"{None if x_prev is None else tuple(x_prev.shape)}")
        return x_prev

    def to_physical(self, output: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """The network's output [B, N, C] on the state x0 [B, C, H, W] → X̂_{t+1} [B, C, H, W]."""
        output = output.float()
        if self.target == "residual":
            state = x0.reshape(*x0.shape[:2], -1) + (output * self.diff_std).transpose(1, 2)
        else:
            state = (self.mean + output * self.std).transpose(1, 2)
        return state.reshape(x0.shape)

    def normalised_target(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """What the network should output on x0 when the truth is x1 (both [B, C, H, W]):
        (x1 − x0)/σ_Δ (residual) or (x1 − μ)/σ (direct), as [B, N, C]."""
        b, c = x0.shape[:2]
        if self.target == "residual":
            y = (x1 - x0) / self.diff_std[:, None, None]
        else:
            y = (x1 - self.mean[:, None, None]) / self.std[:, None, None]
        return y.reshape(b, c, -1).transpose(1, 2)

    def forecast(self, model, x0: torch.Tensor, time_ns: torch.Tensor,
                 x_prev: torch.Tensor | None = None) -> torch.Tensor:
        """One 6-hour step in physical units: [B, C, H, W] (x_prev: see `network_output`)."""
        return self.to_physical(self.network_output(model, x0, time_ns, x_prev), x0)

    def objective(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``train.loss`` of the output against the target, both [B, N, C] → scalar."""
        if self.loss_kind == "relative_l2":
            return relative_l2(pred, target)
        return weighted_mse(pred, target, self.node_weight, self.channel_weight)

    def rollout_step(self, model, x: torch.Tensor, truth: torch.Tensor, time_ns: torch.Tensor,
                     x_prev: torch.Tensor | None = None):
        """One step from x (physical, valid at time_ns; x_prev one step earlier if used)
        against the truth one step later: (loss, X̂ [B, C, H, W]). The truth target is taken
        relative to x, the model's own state, as GraphCast's autoregressive loss does."""
        output = self.network_output(model, x, time_ns, x_prev).float()  # [B, N, C]
        loss = self.objective(output, self.normalised_target(x, truth))
        return loss, self.to_physical(output, x)

    def loss(self, model, batch, device, step: int = 0):
        """Mean over k(step) rollout steps of the one-step loss (`rollout_step`)."""
        inputs, targets, t = batch
        inputs, targets = inputs.to(device), targets.to(device)
        k = rollout_steps(self.schedule, step)
        if k > targets.shape[1]:
            raise ValueError(f"rollout of {k} steps at step {step}, but the batch carries "
                             f"{targets.shape[1]} targets")
        step_ns = round(self.step_hours * 3.6e12)
        x, losses = inputs[:, -1], []  # [B, C, H, W]
        x_prev = inputs[:, -2] if self.input_states == 2 else None
        for j in range(k):
            args = (model, x, targets[:, j], t + j * step_ns, x_prev)
            step_loss, x_next = self.rollout_call(self.rollout_step, args, k)
            x_prev, x = (x if self.input_states == 2 else None), x_next
            losses.append(step_loss)
        loss = torch.stack(losses).mean()
        return loss, {"rollout_steps": torch.tensor(float(k), device=loss.device)}

    def rollout_call(self, step_fn, args: tuple, k: int):
        """``step_fn(*args)`` for one trained step of a k-step rollout: inside non-reentrant
        `torch.utils.checkpoint` when ``rollout.gradient_checkpointing`` applies (k > 1, with
        gradient), so only one step's activations are held at a time."""
        if self.rollout_checkpointing and k > 1 and torch.is_grad_enabled():
            return checkpoint(step_fn, *args, use_reentrant=False)
        return step_fn(*args)

    def sample_ids(self, batch) -> list[int]:
        return batch[2].tolist()  # the initial time (ns since epoch) names the sample

    def checkpoint_meta(self) -> dict:
        return {
            "model_config": self.model_config().to_dict(),
            "channels": self.channels,
            "input_states": self.input_states,
            "forcings": self.forcings,
            "normalisation": {k: v.tolist() for k, v in self.stats.items()},
            "graph_spec_hash": self.graph.spec_hash,
            # The grid and step make the checkpoint self-describing for `pipeline.forecast`.
            "grid": {"latitude": self.lat.tolist(), "longitude": self.lon.tolist()},
            "time_step_hours": self.step_hours,
        }

    # -- evaluation on the test period ---------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model, out_dir: Path, max_samples: int) -> dict:
        """Model and baselines (persistence, climatology, linear AR) scored per lead time on the
        test period (pipeline/scorecard.py), plus the one-step example figure scores.png."""
        from pipeline.baselines import ClimatologyForecast, LinearAR, Persistence
        from pipeline.climatology import ensure_climatology, open_climatology
        from pipeline.plots import plot_weather_scores
        from pipeline.scorecard import StepForecaster, score_forecasters, write_scorecard

        model.eval()
        out_dir = Path(out_dir)
        ev, periods = self.cfg["evaluate"], self.cfg["data"]["periods"]
        prepared = self.inputs["prepared"]
        train = tuple(str(t) for t in periods["train"])
        test = tuple(str(t) for t in periods["test"])
        if "climatology" in self.inputs:  # written by the ingest stage from the same train period
            clim = open_climatology(self.inputs["climatology"])
        else:  # computed here (once: reused while the store, period and window are unchanged)
            clim = ensure_climatology(prepared, out_dir / "climatology.zarr", train_period=train)
        # history=2: the linear AR needs x_{t-1}; the model uses inputs[-1] only
        ds = WeatherWindows(prepared, test, history=2, lead_steps=ev["lead_steps"])
        if len(ds) == 0:
            raise ValueError(f"the test period {list(test)} holds no window of 2 inputs and "
                             f"{ev['lead_steps']} lead steps")
        forecasters = [
            StepForecaster("model", lambda x, prev, t: self.forecast(model, x, t, prev),
                           history=self.input_states,
                           description=f"model: the trained {self.name} network, rolled out"),
            Persistence(),
            ClimatologyForecast(clim, self.channels, self.step_hours),
            LinearAR.fit(prepared, clim, train_period=train, channels=self.channels),
        ]
        scores = score_forecasters(ds, forecasters, self.channels, self.lat, clim,
                                   step_hours=self.step_hours, max_samples=max_samples,
                                   init_stride=ev.get("init_stride", 1))
        meta = {"task": self.name, "train_period": list(train), "test_period": list(test)}
        write_scorecard(out_dir, scores, meta)  # scores.json, scorecard.csv, scores_by_lead.png
        doc = scores.to_json(meta)
        inputs, targets, t = ds[0]  # the one-step example maps
        x0, x1 = inputs[-1], targets[0]
        prev = inputs[-2][None] if self.input_states == 2 else None
        pred = self.forecast(model, x0[None], t[None], prev)[0]
        plot_weather_scores(out_dir / "scores.png", doc, (x0.numpy(), x1.numpy(), pred.numpy(),
                            int(t)), self.channels, ev["plot_variable"] or self.channels[0],
                            self.lat, self.lon)
        return doc
