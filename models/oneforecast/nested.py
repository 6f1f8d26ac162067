"""OneForecast's neural nested grid: the global forecast brought onto a regional grid.

A regional step t → t + 6 h takes the regional state at t and, as extra input channels, the
frozen global model's forecast *valid at t + 6 h*, cropped to the region and interpolated to
the regional grid (issue 9). This module holds the interpolation; the regional task builds the
channels with it.

Bilinear interpolation on rectilinear latitude/longitude grids is separable:

    out[..., i, k] = Σ_j Σ_l  A_lat[i, j] · x[..., j, l] · A_lon[k, l]      x [..., H_s, W_s]

with A_lat [H_d, H_s] linear in latitude (degrees) between the two source rows bracketing
each target latitude, and A_lon [W_d, W_s] linear in longitude between the two bracketing
source columns, periodic (the column after the last is the first + 360°). Each row of A sums
to 1, so constants are kept and a field linear in latitude (or in longitude within a
bracketing pair) is reproduced exactly. A target latitude beyond the source's outermost row
(e.g. poleward of a grid without poles) takes that row's value (no extrapolation).

The global field is read only where A has weight: `BoundaryInterpolator` keeps the source rows
and columns its weights touch — the region plus one source cell around it — and slices the
global field to them before the two products, so a 0.25° global forecast is never multiplied
whole.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def latitude_weights(src_lat: np.ndarray, dst_lat: np.ndarray) -> np.ndarray:
    """A_lat [H_d, H_s]: linear in latitude between the bracketing source rows (any monotonic
    source order); clamped to the outermost row beyond the source's range."""
    src = np.asarray(src_lat, dtype=np.float64)
    dst = np.asarray(dst_lat, dtype=np.float64)
    if src.ndim != 1 or src.size < 2 or not (np.all(np.diff(src) > 0)
                                             or np.all(np.diff(src) < 0)):
        raise ValueError(f"source latitudes must be 1-D, strictly monotonic, ≥ 2; got {src}")
    order = np.argsort(src)  # ascending view of the source rows
    asc = src[order]
    x = np.clip(dst, asc[0], asc[-1])
    upper = np.clip(np.searchsorted(asc, x, side="right"), 1, asc.size - 1)
    lower = upper - 1
    frac = (x - asc[lower]) / (asc[upper] - asc[lower])
    weights = np.zeros((dst.size, src.size))
    rows = np.arange(dst.size)
    np.add.at(weights, (rows, order[lower]), 1.0 - frac)
    np.add.at(weights, (rows, order[upper]), frac)
    return weights


def longitude_weights(src_lon: np.ndarray, dst_lon: np.ndarray) -> np.ndarray:
    """A_lon [W_d, W_s]: linear in longitude between the bracketing source columns, periodic;
    source longitudes ascending and spanning less than 360° (a global grid's columns)."""
    src = np.asarray(src_lon, dtype=np.float64)
    dst = np.asarray(dst_lon, dtype=np.float64)
    if src.ndim != 1 or src.size < 2 or np.any(np.diff(src) <= 0) or src[-1] - src[0] >= 360:
        raise ValueError(f"source longitudes must be 1-D, ascending, within 360°; got {src}")
    # Offsets east of the first column; the gap after the last column closes the circle.
    x = np.mod(dst - src[0], 360.0)
    offsets = np.append(src - src[0], 360.0)  # [W_s + 1]
    upper = np.clip(np.searchsorted(offsets, x, side="right"), 1, src.size)
    lower = upper - 1
    frac = (x - offsets[lower]) / (offsets[upper] - offsets[lower])
    weights = np.zeros((dst.size, src.size))
    rows = np.arange(dst.size)
    np.add.at(weights, (rows, lower), 1.0 - frac)
    np.add.at(weights, (rows, upper % src.size), frac)
    return weights


class BoundaryInterpolator(nn.Module):
    """Global fields [..., H_s, W_s] → the regional grid [..., H_d, W_d] (bilinear, see the
    module docstring), reading only the source rows/columns the weights touch."""

    def __init__(self, src_lat, src_lon, dst_lat, dst_lon) -> None:
        super().__init__()
        a_lat = latitude_weights(src_lat, dst_lat)
        a_lon = longitude_weights(src_lon, dst_lon)
        rows = np.flatnonzero(np.abs(a_lat).sum(0) > 0)
        cols = np.flatnonzero(np.abs(a_lon).sum(0) > 0)
        self.register_buffer("rows", torch.from_numpy(rows), persistent=False)
        self.register_buffer("cols", torch.from_numpy(cols), persistent=False)
        # float64, cast to the field's dtype when applied: exact for float64 fields too
        self.register_buffer("a_lat", torch.from_numpy(a_lat[:, rows]), persistent=False)
        self.register_buffer("a_lon", torch.from_numpy(a_lon[:, cols]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., H_s, W_s] → [..., H_d, W_d]; a_lat [H_d, h], a_lon [W_d, w] on the crop."""
        crop = x.index_select(-2, self.rows).index_select(-1, self.cols)  # [..., h, w]
        return self.a_lat.to(x.dtype) @ crop @ self.a_lon.to(x.dtype).T
