"""Global medium-range weather: predict the 6-hour change of the prepared channels.

Sample t: input X_t [C, H, W] and target X_{t+1}. The network sees normalised inputs
(X_t − μ)/σ plus two forcing channels (sin, cos of local solar time, which drives the diurnal
cycle) on the grid nodes and predicts the normalised change Δ̂ ≈ (X_{t+1} − X_t)/σ_Δ, where σ_Δ is
the standard deviation of one-step differences (GraphCast's residual normalisation). The forecast
is X̂_{t+1} = X_t + σ_Δ ⊙ Δ̂. The loss is the latitude-weighted MSE of Δ̂ over nodes and channels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from graphs import load_graph
from models.oneforecast import GatedGNN, GatedGNNConfig
from pipeline.datasets import WeatherWindows, collate_windows
from pipeline.ingest import open_prepared
from pipeline.metrics import lat_weights

N_FORCINGS = 2


def local_solar_time_features(time_ns: torch.Tensor, lon_deg: torch.Tensor) -> torch.Tensor:
    """sin/cos of local solar hour angle: time_ns [B] int64, lon [N] → [B, N, 2] float32."""
    hours = (time_ns.double() / 3.6e12) % 24.0  # UTC hour of day
    angle = 2 * torch.pi * (hours[:, None] / 24.0 + lon_deg.double()[None, :] / 360.0)
    return torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).float()


class WeatherGlobalTask:
    name = "weather_global"
    collate_fn = staticmethod(collate_windows)  # a batch read as one block, no extra copy

    def __init__(self, cfg: dict, inputs: dict[str, str]):
        self.cfg, self.inputs = cfg, inputs
        store = open_prepared(inputs["prepared"])
        self.channels = list(store.channels)
        self.lat, self.lon = np.asarray(store.lat), np.asarray(store.lon)
        self.step_hours = store.time_step_hours
        self.stats = {k: np.asarray(getattr(store, k), dtype=np.float32)
                      for k in ("mean", "std", "diff_std")}
        self.graph = load_graph(inputs["graph"])
        n_lat, n_lon = len(self.lat), len(self.lon)
        if self.graph["grid"].num_nodes != n_lat * n_lon:
            raise ValueError(
                f"graph {inputs['graph']} has {self.graph['grid'].num_nodes} grid nodes, "
                f"prepared data {inputs['prepared']} has {n_lat}x{n_lon}"
            )
        self._tensors(torch.device("cpu"))

    def _tensors(self, device) -> None:
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        self.mean, self.std, self.diff_std = (as_t(self.stats[k]) for k in ("mean", "std",
                                                                             "diff_std"))
        w = np.repeat(lat_weights(self.lat), len(self.lon))  # grid node order: lat-major
        self.node_weight = as_t(w)  # [N]
        self.grid_lon = torch.as_tensor(self.graph["grid"].lon, device=device)
        self.device_graph = self.graph.to(device)

    def to(self, device) -> None:
        self._tensors(torch.device(device))

    def model_config(self) -> GatedGNNConfig:
        m = self.cfg["model"]
        return GatedGNNConfig(
            in_channels=len(self.channels) + N_FORCINGS, out_channels=len(self.channels),
            hidden=m["hidden"], processor_layers=m["processor_layers"], dropout=m["dropout"],
            gradient_checkpointing=m["gradient_checkpointing"], processor=m["processor"],
            gate_mode=m["gate_mode"], heads=m["heads"], gate_hidden=m["gate_hidden"],
            attention_hidden=m["attention_hidden"],
        )

    def build_model(self) -> torch.nn.Module:
        return GatedGNN(self.model_config())

    def _windows(self, split: str) -> WeatherWindows:
        """(X_t, X_{t+1}) windows with both times inside the split's period."""
        period = tuple(str(t) for t in self.cfg["data"]["periods"][split])
        return WeatherWindows(self.inputs["prepared"], period, history=1, lead_steps=1)

    def train_dataset(self):
        return self._windows("train")

    def val_dataset(self):
        return self._windows("val")

    def test_dataset(self):
        return self._windows("test")

    # -- model input / output in physical units ------------------------------------------------
    def predict_delta(self, model, x0: torch.Tensor, time_ns: torch.Tensor) -> torch.Tensor:
        """x0 [B, C, H, W] physical → normalised 6-hour change [B, N, C]."""
        b, c = x0.shape[:2]
        x = ((x0 - self.mean[:, None, None]) / self.std[:, None, None]).reshape(b, c, -1)
        forcing = local_solar_time_features(time_ns.cpu(), self.grid_lon.cpu()).to(x.device)
        inputs = torch.cat([x.transpose(1, 2), forcing], dim=-1)  # [B, N, C + 2]
        return model(inputs, self.device_graph)

    def forecast(self, model, x0: torch.Tensor, time_ns: torch.Tensor) -> torch.Tensor:
        """One 6-hour step in physical units: [B, C, H, W]."""
        delta = self.predict_delta(model, x0, time_ns).float()  # [B, N, C]
        return x0 + (delta * self.diff_std).transpose(1, 2).reshape(x0.shape)

    def loss(self, model, batch, device):
        inputs, targets, t = (v.to(device) for v in batch)
        x0, x1 = inputs[:, -1], targets[:, 0]  # [B, C, H, W]
        b, c = x0.shape[:2]
        target = ((x1 - x0) / self.diff_std[:, None, None]).reshape(b, c, -1).transpose(1, 2)
        pred = self.predict_delta(model, x0, t).float()  # [B, N, C]
        mse = (((pred - target) ** 2) * self.node_weight[None, :, None]).mean()
        return mse, {}

    def sample_ids(self, batch) -> list[int]:
        return batch[2].tolist()  # the initial time (ns since epoch) names the sample

    def checkpoint_meta(self) -> dict:
        return {
            "model_config": self.model_config().to_dict(),
            "channels": self.channels,
            "normalisation": {k: v.tolist() for k, v in self.stats.items()},
            "graph_spec_hash": self.graph.spec_hash,
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
            StepForecaster("model", lambda x, prev, t: self.forecast(model, x, t),
                           description=f"model: the trained {self.name} network, rolled out"),
            Persistence(),
            ClimatologyForecast(clim, self.channels, self.step_hours),
            LinearAR.fit(prepared, clim, train_period=train, channels=self.channels),
        ]
        scores = score_forecasters(ds, forecasters, self.channels, self.lat, clim,
                                   step_hours=self.step_hours, max_samples=max_samples)
        meta = {"task": self.name, "train_period": list(train), "test_period": list(test)}
        write_scorecard(out_dir, scores, meta)  # scores.json, scorecard.csv, scores_by_lead.png
        doc = scores.to_json(meta)
        inputs, targets, t = ds[0]  # the one-step example maps
        x0, x1 = inputs[-1], targets[0]
        pred = self.forecast(model, x0[None], t[None])[0]
        plot_weather_scores(out_dir / "scores.png", doc, (x0.numpy(), x1.numpy(), pred.numpy(),
                            int(t)), self.channels, ev["plot_variable"] or self.channels[0],
                            self.lat, self.lon)
        return doc
