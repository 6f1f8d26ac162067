"""Global + regional forecast from one initial time: the nested grid run operationally.

A weather_regional checkpoint carries the frozen global model it was trained with
(``checkpoint/global``, `pipeline.regional_stages.train_regional`). From the global analysis at
t_0 (and t_0 − Δt for a two-state global model) and the regional analysis at t_0 on the regional
model's native grid (any store covering the domain on that grid):

    ĝ_k = G(ĝ_{k-1}, ĝ_{k-2}),  ĝ_0 = x_g(t_0)                 the global rollout, k = 1..K
    x̂_0 = [x_r(t_0) inside the box, P(x_g(t_0)) on the margin]
    x̂_k = R(x̂_{k-1}, P(ĝ_k), t_0 + (k − 1) Δt)                 the regional rollout

(P: bilinear interpolation onto the regional grid; R: the regional step of
`pipeline.tasks.weather_regional`, whose margin is P(ĝ_k)). Both rollouts are written in
WeatherBench2's forecast layout (`pipeline.forecast.forecast_dataset`), the regional one on the
domain grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.errors import DataError
from pipeline.fingerprint import file_sha256


def is_regional(checkpoint) -> bool:
    from pipeline import checkpoint as ckpt_io

    return ckpt_io.read_meta(Path(checkpoint)).get("task") == "weather_regional"


@dataclass
class RegionalForecaster:
    """A regional checkpoint with its global model (`from_checkpoint`)."""

    task: object  # pipeline.tasks.weather_regional.WeatherRegionalTask
    model: torch.nn.Module
    meta: dict
    checkpoint: Path
    global_forecaster: object  # pipeline.forecast.Forecaster
    interpolate: torch.nn.Module  # global grid → regional domain

    @classmethod
    def from_checkpoint(cls, checkpoint, graph_cache_dir) -> RegionalForecaster:
        from graphs import graph_cache
        from models.oneforecast.nested import BoundaryInterpolator
        from pipeline import checkpoint as ckpt_io
        from pipeline.forecast import Forecaster, check_normalisation
        from pipeline.regional_stages import GLOBAL, regional_graph_spec
        from pipeline.tasks.weather_regional import WeatherRegionalTask

        checkpoint = Path(checkpoint)
        meta = ckpt_io.read_meta(checkpoint)
        if not (checkpoint / GLOBAL / "meta.json").is_file():
            raise DataError(checkpoint, GLOBAL, "the frozen global checkpoint inside the "
                            "regional one (written by the weather_regional train stage)",
                            "absent")
        lat, lon = (np.asarray(meta["grid"][k], np.float64) for k in ("latitude", "longitude"))
        graph = graph_cache(regional_graph_spec(meta["config"], lat, lon), graph_cache_dir)
        if graph.spec_hash != meta.get("graph_spec_hash"):
            raise DataError(checkpoint / "meta.json", "graph_spec_hash", f"the graph its config "
                            f"builds on its grid ({graph.spec_hash})",
                            f"{meta.get('graph_spec_hash')}")
        check_normalisation(meta, checkpoint / "meta.json")
        task = WeatherRegionalTask.from_checkpoint_meta(meta, graph)
        model = task.build_model()
        model.load_state_dict(ckpt_io.load_state(checkpoint)["model"])
        model.eval()
        glob = Forecaster.from_checkpoint(checkpoint / GLOBAL, graph_cache_dir, device="cpu")
        if list(glob.task.channels) != list(task.channels):
            raise DataError(checkpoint / GLOBAL / "meta.json", "channels", f"the regional "
                            f"model's channels {task.channels}", f"{glob.task.channels}")
        interpolate = BoundaryInterpolator(glob.task.lat, glob.task.lon, task.lat, task.lon)
        return cls(task=task, model=model, meta=meta, checkpoint=checkpoint,
                   global_forecaster=glob, interpolate=interpolate)

    def regional_state(self, analysis, where) -> np.ndarray:
        """The regional analysis (`pipeline.analysis.Analysis`, one time) on the domain:
        [C, h, w]; DataError unless it holds the checkpoint's channels on its grid there."""
        from graphs.regions import box_indices

        task = self.task
        if list(analysis.channels) != list(task.channels):
            raise DataError(where, "channels", f"the checkpoint's channels {task.channels}",
                            f"{list(analysis.channels)}")
        rows, cols = box_indices(analysis.lat, analysis.lon, task.regional_cfg.domain())
        for name, ours, theirs in (("latitude", task.lat, analysis.lat[rows]),
                                   ("longitude", task.lon, analysis.lon[cols])):
            if ours.shape != theirs.shape or not np.allclose(ours, theirs, atol=1e-4):
                raise DataError(where, name, f"the regional model's {ours.size} {name}s "
                                f"{ours[0]:g}..{ours[-1]:g} inside its domain "
                                f"{list(task.regional_cfg.domain())}",
                                f"{theirs.size} {name}s there")
        return analysis.values[-1][:, rows][:, :, cols]

    @torch.no_grad()
    def rollout(self, global_states: np.ndarray, regional_state: np.ndarray, init_ns: int,
                n_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """global_states [S, C, H, W], regional_state [C, h, w] at init_ns → (global
        forecasts [K, C, H, W], regional forecasts [K, C, h, w]) float32 (module docstring)."""
        glob = self.global_forecaster.rollout(global_states, init_ns, n_steps)
        g = self.interpolate(torch.from_numpy(glob))  # [K, C, h, w]
        x0 = torch.from_numpy(np.ascontiguousarray(regional_state, np.float32))[None]
        g0 = self.interpolate(torch.from_numpy(np.asarray(global_states[-1:], np.float32)))
        regional = self.task.rollout(self.model, x0, g0, g[None],
                                     torch.tensor([init_ns], dtype=torch.int64))
        return glob, regional[0].numpy()


def make_regional_forecast(forecaster: RegionalForecaster, global_source, regional_source,
                           init, n_steps: int):
    """(global Dataset, regional Dataset) in WB2 forecast layout from the two analyses."""
    from pipeline.analysis import read_analysis
    from pipeline.forecast import forecast_dataset

    glob = forecaster.global_forecaster
    init = np.datetime64(init, "ns")
    dt = np.timedelta64(round(glob.step_hours * 3600), "s").astype("timedelta64[ns]")
    times = init - dt * np.arange(glob.input_states - 1, -1, -1)
    variables = list(forecaster.meta["config"]["data"]["variables"])
    g_analysis = read_analysis(global_source, times, variables)
    glob.check_analysis(g_analysis, global_source)
    r_analysis = read_analysis(regional_source, times[-1:], variables)
    regional_state = forecaster.regional_state(r_analysis, regional_source)
    g, r = forecaster.rollout(g_analysis.values, regional_state, int(init.astype(np.int64)),
                              n_steps)
    sha = file_sha256(forecaster.checkpoint / "state.pt")
    common = {"time_step_hours": glob.step_hours}
    return (forecast_dataset(g, glob.task.channels, g_analysis.lat, g_analysis.lon, init,
                             glob.step_hours, variable_attrs=g_analysis.attrs,
                             attrs={**common, "checkpoint_sha256": glob.checkpoint_sha256,
                                    "role": "global (drives the regional forecast)"}),
            forecast_dataset(r, forecaster.task.channels, forecaster.task.lat,
                             forecaster.task.lon, init, glob.step_hours,
                             variable_attrs=r_analysis.attrs,
                             attrs={**common, "checkpoint_sha256": sha,
                                    "role": "regional (neural nested grid)",
                                    "box": list(forecaster.task.regional_cfg.box)}))
