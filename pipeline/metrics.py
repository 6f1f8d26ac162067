"""Verification metrics with WeatherBench2 conventions (they live here once; workflows call them).

Latitude weights (WB2's `get_lat_weights`): w(φ_i) ∝ ∫ cos φ dφ over cell i = sin φ⁺_i − sin φ⁻_i,
cell edges halfway between latitudes and ±90° outside, normalised to mean 1. On grids with
poles the pole rows are half cells with a small, non-zero weight (cos φ_i alone would give 0).
RMSE (WB2):  sqrt( 1/T Σ_t  1/(I J) Σ_i Σ_j w(φ_i) (f_tij − o_tij)² )   — time mean inside the root.
Bias:        1/T Σ_t 1/(I J) Σ_ij w(φ_i) (f_tij − o_tij)
"""

from __future__ import annotations

import numpy as np

from pipeline.regrid import area_weights


def lat_weights(lat_deg: np.ndarray) -> np.ndarray:
    """Cell-area latitude weights, mean 1: [H] float64 (the regridder's cells, so scores and
    conservative regridding agree on what a grid cell is)."""
    w = area_weights(np.asarray(lat_deg, dtype=np.float64))
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
