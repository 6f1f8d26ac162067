"""The frozen global model's forecasts on the regional grid: the nested grid's boundary data.

OneForecast's regional step t → t + Δt reads the global forecast *valid at t + Δt*. For
training, `write_boundary` runs the frozen global model one step from every analysis time and
stores, for each time T_i of the regional store,

    B[i] = P( G(x_g(T_{i-1}), x_g(T_{i-2})) )      [C, h, w], valid at T_i (lead Δt)

with G the global model (its own one or two input states), x_g the global analysis (the
prepared global store) and P the bilinear interpolation onto the regional grid
(`models.oneforecast.nested.BoundaryInterpolator`). The first times, which lack the analyses G
needs, hold the interpolated analysis P(x_g(T_i)) (lead 0; attribute ``lead0_times``). The
store has the prepared layout (``data[time, channel, lat, lon]``, ``mean``/``std``/
``diff_std``: the regional store's, so `pipeline.datasets.WeatherWindows` reads it beside the
regional truth, index for index.

With ``regional.train_boundary: rollout``, `write_boundary_rollouts` stores instead the global
model's rollouts from every ``boundary_init_stride``-th analysis of the training and validation
periods, leads 0..L (``boundary_leads``),

    R[m, k] = P( G^k(x_g(T_{i_m}), …) )      [C, h, w], valid at T_{i_m + k} (lead k Δt)

(R[m, 0] = P(x_g(T_{i_m})), the interpolated analysis), so training sees boundaries of the age
a forecast feeds the regional model at each lead, not only one-step ones (``data[init, lead,
channel, lat, lon]``, coordinates ``init_time`` and ``lead``).

`GlobalDriver` is the frozen global model with its interpolator: it also rolls the global model
out from an analysis for the evaluation (`rollout_on_region`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from pipeline.errors import DataError
from pipeline.fingerprint import file_sha256

# A global checkpoint's normalisation must equal the prepared global store's to this relative
# tolerance: equal statistics mean the same trajectory (the data the model was trained on).
STATS_RTOL = 1e-5


class GlobalDriver:
    """The frozen global model (`pipeline.forecast.Forecaster`) and the interpolator from its
    grid to the regional grid (dst_lat [h], dst_lon [w])."""

    def __init__(self, checkpoint, prepared, dst_lat, dst_lon, graph_cache_dir,
                 device: str = "cpu"):
        from models.oneforecast.nested import BoundaryInterpolator
        from pipeline.forecast import Forecaster
        from pipeline.ingest import open_prepared

        self.checkpoint = Path(checkpoint)
        if not (self.checkpoint / "meta.json").is_file():
            raise DataError(self.checkpoint, "regional.global_checkpoint", "a checkpoint "
                            "directory with meta.json and state.pt (RUN/train/checkpoint of a "
                            "weather_global run)", "no meta.json there")
        self.forecaster = Forecaster.from_checkpoint(self.checkpoint, graph_cache_dir,
                                                     device=device)
        self.store = open_prepared(prepared)
        self.check_data(prepared)
        self.interpolate = BoundaryInterpolator(self.store.lat, self.store.lon, dst_lat, dst_lon
                                                ).to(device)
        self.device = device

    @property
    def sha256(self) -> str:
        return file_sha256(self.checkpoint / "state.pt")

    def check_data(self, prepared) -> None:
        """DataError unless the prepared global store is the data the model was trained on:
        same channels, grid and normalisation statistics."""
        from pipeline.analysis import Analysis

        first = Analysis(values=np.asarray(self.store.data[:1]), times=self.store.times[:1],
                         channels=self.store.channels, lat=self.store.lat, lon=self.store.lon,
                         attrs={})
        self.forecaster.check_analysis(first, prepared)  # channels, grid, units
        meta = self.forecaster.meta["normalisation"]
        for key in ("mean", "std", "diff_std"):
            ours = np.asarray(getattr(self.store, key), np.float64)
            theirs = np.asarray(meta[key], np.float64)
            if not np.allclose(ours, theirs, rtol=STATS_RTOL, atol=0):
                c = int(np.argmax(np.abs(ours - theirs) / np.abs(theirs)))
                raise DataError(prepared, key, f"the global checkpoint's {key} "
                                f"({self.checkpoint / 'meta.json'}): the same trajectory it was "
                                f"trained on", f"{self.store.channels[c]}: {ours[c]:.6g} vs "
                                f"{theirs[c]:.6g}")

    @torch.no_grad()
    def rollout_on_region(self, states: torch.Tensor, init_ns: torch.Tensor, n_steps: int
                          ) -> torch.Tensor:
        """Global analyses states [B, S, C, H, W] (the last valid at init_ns [B]; S ≥ the
        model's input states) → the global forecasts on the regional grid, leads 1..n_steps:
        [B, n_steps, C, h, w] float32."""
        task, model = self.forecaster.task, self.forecaster.model
        states = states.to(self.device, torch.float32)
        x = states[:, -1]
        prev = states[:, -2] if task.input_states == 2 else None
        dt = round(task.step_hours * 3.6e12)
        out = []
        for k in range(n_steps):
            x_next = task.forecast(model, x, init_ns + k * dt, prev).float()
            out.append(self.interpolate(x_next))
            prev, x = (x if task.input_states == 2 else None), x_next
        return torch.stack(out, dim=1).cpu()


def write_boundary(driver: GlobalDriver, regional, dest, *, batch_size: int = 8) -> Path:
    """The one-step boundary store B (module docstring) for every time of the regional store
    ``regional`` (a prepared store on the regional grid), at ``dest`` (atomic)."""
    from pipeline.ingest import publish_destination

    reg, glob = _same_times(driver, regional)
    s = driver.forecaster.task.input_states
    n = reg.times.size
    times_ns = torch.from_numpy(glob.times.astype(np.int64))
    attrs = {**_attrs(driver, reg), "layout": "one_step",
             "boundary": "the frozen global model's one-step forecast valid at each time, "
                         "bilinearly interpolated to this grid (pipeline/boundary.py)",
             "lead_hours": float(driver.forecaster.task.step_hours),
             "lead0_times": int(min(s, n))}
    with publish_destination(dest) as tmp:
        array = _create_store(tmp, reg, attrs, ("time",), {"time": reg.times})
        lead0 = torch.from_numpy(np.asarray(glob.data[:min(s, n)]))
        array[:min(s, n)] = driver.interpolate(lead0.to(driver.device)).cpu().numpy()
        for a in range(s, n, batch_size):  # forecasts valid at a .. b-1 from inits a-1 .. b-2
            b = min(a + batch_size, n)
            block = torch.from_numpy(np.asarray(glob.data[a - s:b - 1]))  # [b - a + s - 1, ...]
            states = torch.stack([block[j:j + s] for j in range(b - a)])  # [B, S, C, H, W]
            array[a:b] = driver.rollout_on_region(states, times_ns[a - 1:b - 1], 1)[:, 0].numpy()
    return Path(dest)


def _same_times(driver: GlobalDriver, regional):
    """(regional store, global store); DataError unless their times are the same."""
    from pipeline.ingest import open_prepared

    reg, glob = open_prepared(regional), driver.store
    if reg.times.shape != glob.times.shape or (reg.times != glob.times).any():
        raise DataError(regional, "time", f"the global store's times ({glob.times.size}, "
                        f"{glob.times[0]} .. {glob.times[-1]})", f"{reg.times.size} times")
    return reg, glob


def _attrs(driver: GlobalDriver, reg) -> dict:
    return {**{k: v for k, v in reg.attrs.items() if k != "selection"},
            "global_checkpoint": os.fspath(driver.checkpoint),
            "global_checkpoint_sha256": driver.sha256}


def _create_store(tmp, reg, attrs: dict, leading: tuple[str, ...], coords: dict):
    """An empty boundary store at ``tmp``: data[*leading, channel, lat, lon] float32 on the
    regional grid, one chunk per first index (what `pipeline.datasets.ChunkReader` reads), with
    the regional statistics; returns the zarr array to fill."""
    import dask.array as da
    import xarray as xr
    import zarr

    from pipeline.ingest.weather import TIME_ENCODING

    shape = tuple(len(coords[d]) for d in leading) + reg.data.shape[1:]
    chunks = (1, *shape[1:])
    template = xr.DataArray(da.zeros(shape, chunks=chunks, dtype=np.float32),
                            dims=(*leading, "channel", "latitude", "longitude"),
                            coords={**coords, "latitude": reg.lat, "longitude": reg.lon})
    stats = {k: ("channel", np.asarray(getattr(reg, k), np.float32))
             for k in ("mean", "std", "diff_std")}
    encoding = {"data": {"chunks": chunks}}
    encoding.update({d: TIME_ENCODING for d in coords if np.issubdtype(
        np.asarray(coords[d]).dtype, np.datetime64)})
    xr.Dataset({"data": template, **stats}, attrs=attrs).to_zarr(
        tmp, mode="w", zarr_format=3, consolidated=False, compute=False, encoding=encoding)
    return zarr.open_group(os.fspath(tmp), mode="r+")["data"]  # stats are written eagerly


def rollout_inits(times: np.ndarray, periods, input_states: int, leads: int, stride: int
                  ) -> np.ndarray:
    """Store indices i of the rollout store's initial times: every ``stride``-th index (from
    the store's first time) whose time lies in one of ``periods`` ([start, end] pairs), with
    the ``input_states`` analyses the global model needs and ``leads`` steps after it inside
    the same period."""
    out = []
    for start, end in periods:
        inside = np.flatnonzero((times >= np.datetime64(start, "ns"))
                                & (times <= np.datetime64(end, "ns")))
        if inside.size == 0:
            continue
        lo, hi = max(int(inside[0]), input_states - 1), int(inside[-1]) - leads
        out.extend(i for i in range(lo, hi + 1) if i % stride == 0)
    return np.asarray(sorted(set(out)), dtype=np.int64)


def write_boundary_rollouts(driver: GlobalDriver, regional, dest, *, periods, leads: int,
                            init_stride: int, batch_size: int = 16) -> Path:
    """The rollout store R (module docstring) at ``dest`` (atomic): the global model rolled
    out ``leads`` steps from every initial time of `rollout_inits`, on the regional grid."""
    from pipeline.ingest import publish_destination

    reg, glob = _same_times(driver, regional)
    s = driver.forecaster.task.input_states
    inits = rollout_inits(glob.times, periods, s, leads, init_stride)
    if inits.size == 0:
        raise DataError(regional, "time", f"an initial time with {leads} lead steps inside "
                        f"the periods {[list(map(str, p)) for p in periods]}", "none")
    times_ns = torch.from_numpy(glob.times.astype(np.int64))
    attrs = {**_attrs(driver, reg), "layout": "rollouts",
             "boundary": "the frozen global model's rollouts from initial analyses, leads "
                         "0..L steps, bilinearly interpolated to this grid (lead 0: the "
                         "analysis; pipeline/boundary.py)",
             "lead_hours": float(driver.forecaster.task.step_hours),
             "init_stride": int(init_stride)}
    coords = {"init_time": glob.times[inits], "lead": np.arange(leads + 1, dtype=np.int64)}
    with publish_destination(dest) as tmp:
        array = _create_store(tmp, reg, attrs, ("init_time", "lead"), coords)
        for a in range(0, inits.size, batch_size):
            idx = inits[a:a + batch_size]
            states = torch.stack([torch.from_numpy(np.asarray(glob.data[i - s + 1:i + 1]))
                                  for i in idx.tolist()])  # [B, S, C, H, W]
            g = driver.rollout_on_region(states, times_ns[idx], leads)  # [B, L, C, h, w]
            g0 = driver.interpolate(states[:, -1].to(driver.device)).cpu()[:, None]
            array[a:a + idx.size] = torch.cat([g0, g], dim=1).numpy()
    return Path(dest)
