"""Verification metrics with WeatherBench2 conventions (they live here once; workflows call them).

Latitude weights (WB2): w(φ_i) ∝ cos φ_i normalised to mean 1 over the grid's latitudes.
RMSE (WB2):  sqrt( 1/T Σ_t  1/(I J) Σ_i Σ_j w(φ_i) (f_tij − o_tij)² )   — time mean inside the root.
Bias:        1/T Σ_t 1/(I J) Σ_ij w(φ_i) (f_tij − o_tij)
"""

from __future__ import annotations

import numpy as np


def lat_weights(lat_deg: np.ndarray) -> np.ndarray:
    """cos-latitude weights, mean 1: [H] float64."""
    w = np.cos(np.deg2rad(np.asarray(lat_deg, dtype=np.float64)))
    w = np.clip(w, 0.0, None)
    return w / w.mean()


class WeightedErrorAccumulator:
    """Accumulates per-channel weighted squared error and error over forecasts [C, H, W]."""

    def __init__(self, lat_deg: np.ndarray, n_channels: int):
        self.w = lat_weights(lat_deg)[:, None]  # [H, 1]
        self.sq = np.zeros(n_channels)
        self.err = np.zeros(n_channels)
        self.count = 0

    def add(self, forecast: np.ndarray, truth: np.ndarray) -> None:
        d = forecast.astype(np.float64) - truth.astype(np.float64)  # [C, H, W]
        self.sq += (self.w * d**2).mean(axis=(-2, -1))
        self.err += (self.w * d).mean(axis=(-2, -1))
        self.count += 1

    def rmse(self) -> np.ndarray:
        return np.sqrt(self.sq / self.count)

    def bias(self) -> np.ndarray:
        return self.err / self.count
