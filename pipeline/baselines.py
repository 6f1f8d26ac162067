"""Reference forecasters scored beside the model: persistence, climatology, a pointwise linear AR.

Every forecaster has the interface `pipeline.scorecard.score_forecasters` rolls out:

    name: str;  history: int (states it needs: 1 → x_t, 2 → also x_{t-1});  description: str
    step(x_t [B, C, H, W], x_prev [B, C, H, W] | None, time_ns [B] int64) → x_{t+1} [B, C, H, W]

in physical units (float32 tensors), time_ns the valid time of x_t, one time step (the store's
``time_step_hours``) per call; x_prev is the previous state (observed for the first step, then
the forecaster's own), None when the dataset carries no history.

Linear autoregression (``LinearAR``), per channel c and grid point (i, j), in anomalies about
the verification climatology (`pipeline.climatology`), x' = x − clim(valid time):

    x'_{t+1} = a x'_t + b x'_{t-1}          a, b: [C, H, W], least squares over the training period

Why anomalies and no intercept: the climatology carries the seasonal and diurnal cycles the
linear model cannot, and a rollout then relaxes to the climatology (a damped persistence) rather
than to the training-period mean; the training anomalies have mean ≈ 0 by construction (the
climatology is their own windowed mean), so an intercept would add nothing in-sample and only a
spurious offset c/(1 − a − b) at long leads. Normal equations, with sums over training triples:

    [Σ x'_t²        Σ x'_t x'_{t-1}] [a]   [Σ x'_{t+1} x'_t    ]
    [Σ x'_t x'_{t-1} Σ x'_{t-1}²    ] [b] = [Σ x'_{t+1} x'_{t-1}]

Where the two regressors are collinear (det ≤ 1e-8 · Σx'_t² Σx'_{t-1}², e.g. a point whose
anomaly is constant) the fit falls back to AR(1), b = 0, a = Σ x'_{t+1}x'_t / Σ x'_t² (0 where
Σ x'_t² = 0: the forecast is the climatology).
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.climatology import Climatology, train_slice
from pipeline.errors import DataError
from pipeline.ingest import open_prepared

COLLINEAR = 1e-8  # 1 − r² below which x'_t and x'_{t-1} carry one regressor, not two


def step_ns(step_hours: float) -> int:
    return int(round(float(step_hours) * 3600e9))


class Persistence:
    """x_{t+k} = x_t at every lead."""

    name = "persistence"
    history = 1
    description = "persistence: the initial state at every lead"

    def step(self, x_t, x_prev, time_ns):
        return x_t


class ClimatologyForecast:
    """x_{t+1} = clim(valid time of x_{t+1}), whatever the initial state."""

    name = "climatology"
    history = 1
    description = ("climatology: the verification climatology at the valid time "
                   "(its ACC is undefined: its anomaly is zero)")

    def __init__(self, climatology: Climatology, channels, step_hours: float):
        self.climatology, self.channels = climatology, list(channels)
        self.climatology.channel_index(self.channels)  # a missing channel fails here, not later
        self.step_ns = step_ns(step_hours)

    def step(self, x_t, x_prev, time_ns):
        valid = np.asarray(time_ns, dtype=np.int64) + self.step_ns
        return torch.from_numpy(self.climatology.at(valid, self.channels))


class AR2Moments:
    """Sums over (x'_{t-1}, x'_t, x'_{t+1}) triples of values [*shape] (float64) for `LinearAR`."""

    def __init__(self, shape: tuple[int, ...]):
        self.tt, self.pp, self.tp, self.nt, self.np_ = (np.zeros(shape) for _ in range(5))
        self.count = 0

    def add(self, prev: np.ndarray, now: np.ndarray, nxt: np.ndarray) -> None:
        self.tt += now * now
        self.pp += prev * prev
        self.tp += now * prev
        self.nt += nxt * now
        self.np_ += nxt * prev
        self.count += 1

    def coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """Least-squares (a, b) [*shape] of x'_{t+1} = a x'_t + b x'_{t-1} (module docstring)."""
        det = self.tt * self.pp - self.tp**2
        scale = self.tt * self.pp
        two = det > COLLINEAR * scale
        safe = np.where(two, det, 1.0)
        a = np.where(two, (self.nt * self.pp - self.np_ * self.tp) / safe, 0.0)
        b = np.where(two, (self.np_ * self.tt - self.nt * self.tp) / safe, 0.0)
        one = ~two & (self.tt > 0)
        a = np.where(one, self.nt / np.where(self.tt > 0, self.tt, 1.0), a)
        return a, b


def fit_linear_ar(anomalies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) [*shape] from a series of consecutive anomalies [T ≥ 3, *shape]."""
    x = np.asarray(anomalies, dtype=np.float64)
    if x.shape[0] < 3:
        raise ValueError(f"anomalies: expected at least 3 consecutive times, got {x.shape[0]}")
    moments = AR2Moments(x.shape[1:])
    for t in range(1, x.shape[0] - 1):
        moments.add(x[t - 1], x[t], x[t + 1])
    return moments.coefficients()


class LinearAR:
    """Pointwise AR(2) in anomalies about the climatology (module docstring)."""

    name = "linear_ar"
    history = 2
    description = ("linear_ar: per channel and grid point x'(t+1) = a x'(t) + b x'(t-1) in "
                   "anomalies about the climatology, least squares on the training period")

    def __init__(self, a: np.ndarray, b: np.ndarray, climatology: Climatology, channels,
                 step_hours: float):
        self.channels = list(channels)
        if np.shape(a) != np.shape(b) or np.shape(a)[0] != len(self.channels):
            raise ValueError(f"a, b: expected [C={len(self.channels)}, H, W] each, got "
                             f"{np.shape(a)} and {np.shape(b)}")
        self.a = torch.as_tensor(np.asarray(a), dtype=torch.float32)
        self.b = torch.as_tensor(np.asarray(b), dtype=torch.float32)
        self.climatology = climatology
        self.climatology.channel_index(self.channels)
        self.step_ns = step_ns(step_hours)

    @classmethod
    def fit(cls, prepared_path, climatology: Climatology, *, train_period=None,
            channels=None) -> LinearAR:
        """Least squares over consecutive triples inside the training period of a prepared
        store (default: the store's own ``train_period``), read once, time step by step."""
        store = open_prepared(prepared_path)
        channels = list(channels or store.channels)
        missing = [c for c in channels if c not in store.channels]
        if missing:
            raise DataError(prepared_path, "channels", f"the channels to fit, e.g. {missing}",
                            f"only {list(store.channels)}")
        index = [store.channels.index(c) for c in channels]
        period = tuple(str(t) for t in (train_period or store.attrs["train_period"]))
        start, stop, _ = train_slice(store.times, period, prepared_path).indices(
            store.times.size)
        if stop - start < 3:
            raise DataError(prepared_path, "train_period", "at least 3 consecutive times to "
                            "fit the linear AR", f"{stop - start} inside {list(period)}")
        moments = AR2Moments((len(channels), *store.data.shape[2:]))
        window: list[np.ndarray] = []
        for t in range(start, stop):
            x = np.asarray(store.data[t], dtype=np.float64)[index]
            window.append(x - climatology.at(store.times[t:t + 1], channels)[0])
            if len(window) == 3:
                moments.add(*window)
                window.pop(0)
        a, b = moments.coefficients()
        return cls(a, b, climatology, channels, store.time_step_hours)

    def step(self, x_t, x_prev, time_ns):
        if x_prev is None:
            raise ValueError("linear_ar needs the previous state: build the dataset with "
                             "history=2")
        t = np.asarray(time_ns, dtype=np.int64)
        clim = {k: torch.from_numpy(self.climatology.at(t + k * self.step_ns, self.channels))
                for k in (-1, 0, 1)}
        return clim[1] + self.a * (x_t - clim[0]) + self.b * (x_prev - clim[-1])
