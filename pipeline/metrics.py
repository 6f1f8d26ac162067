"""Verification metrics with WeatherBench2 conventions (they live here once; workflows call them).

Latitude weights (WB2's `get_lat_weights`): w(φ_i) ∝ ∫ cos φ dφ over cell i = sin φ⁺_i − sin φ⁻_i,
cell edges halfway between latitudes and ±90° outside, normalised to mean 1. On grids with
poles the pole rows are half cells with a small, non-zero weight (cos φ_i alone would give 0).
With ⟨·⟩ = 1/(I J) Σ_i Σ_j w(φ_i) (·)_ij the weighted spatial mean over a field [H=I, W=J]
(a weighted *mean*: the weights have mean 1), forecast f, truth o, climatology c at the valid
time, anomalies f' = f − c, o' = o − c, and T forecasts (init times) per lead time:

RMSE (WB2):  sqrt( 1/T Σ_t ⟨(f_t − o_t)²⟩ )                          — time mean inside the root
Bias:        1/T Σ_t ⟨f_t − o_t⟩
ACC  (WB2):  1/T Σ_t  ⟨f'_t o'_t⟩ / sqrt( ⟨f'_t²⟩ ⟨o'_t²⟩ )          — per init time, then mean

ACC follows `weatherbench2.metrics.ACC`: anomalies are *not* re-centred on their spatial mean
(the uncentred form), the normalisation of the weights cancels in the ratio, and the time mean
is taken over the per-init-time values (not of the sums). A forecast whose anomaly is zero
everywhere (the climatology itself) has no ACC: 0/0 is NaN, as in WB2.
"""

from __future__ import annotations

import numpy as np

from pipeline.regrid import area_weights


def lat_weights(lat_deg: np.ndarray) -> np.ndarray:
    """Cell-area latitude weights, mean 1: [H] float64 (the regridder's cells, so scores and
    conservative regridding agree on what a grid cell is)."""
    w = area_weights(np.asarray(lat_deg, dtype=np.float64))
    return w / w.mean()


def anomaly_correlation(forecast: np.ndarray, truth: np.ndarray, climatology: np.ndarray,
                        lat_deg: np.ndarray) -> np.ndarray:
    """WB2's ACC of each field: [..., H, W] (three arrays of one shape) → [...] float64.

        ACC = Σ_ij w_i f'_ij o'_ij / sqrt( Σ_ij w_i f'_ij² · Σ_ij w_i o'_ij² ),
        f' = forecast − climatology, o' = truth − climatology, w = `lat_weights` [H].

    NaN where either anomaly is zero everywhere (the correlation is undefined).
    """
    w = lat_weights(lat_deg)[:, None]  # [H, 1]
    clim = np.asarray(climatology, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64) - clim
    o = np.asarray(truth, dtype=np.float64) - clim
    cov = (w * f * o).sum(axis=(-2, -1))
    norm = np.sqrt((w * f**2).sum(axis=(-2, -1)) * (w * o**2).sum(axis=(-2, -1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, cov / np.where(norm > 0, norm, 1.0), np.nan)


class WeightedErrorAccumulator:
    """Accumulates per-channel weighted squared error and error over forecasts [..., C, H, W]
    (one forecast [C, H, W] or a batch [B, C, H, W]; every leading index counts as one)."""

    def __init__(self, lat_deg: np.ndarray, n_channels: int):
        self.w = lat_weights(lat_deg)[:, None]  # [H, 1]
        self.sq = np.zeros(n_channels)
        self.err = np.zeros(n_channels)
        self.count = 0

    def add(self, forecast: np.ndarray, truth: np.ndarray) -> None:
        d = np.asarray(forecast, np.float64) - np.asarray(truth, np.float64)  # [..., C, H, W]
        d = d.reshape(-1, *d.shape[-3:])  # [B, C, H, W]
        self.sq += (self.w * d**2).mean(axis=(-2, -1)).sum(axis=0)
        self.err += (self.w * d).mean(axis=(-2, -1)).sum(axis=0)
        self.count += d.shape[0]

    def rmse(self) -> np.ndarray:
        return np.sqrt(self.sq / self.count)

    def bias(self) -> np.ndarray:
        return self.err / self.count


class LeadTimeScores:
    """RMSE, bias and ACC per lead time and channel, accumulated forecast by forecast.

    Memory: a few [n_leads, C] float64 sums; no forecast is kept. ``add(k, f, o, c)`` takes a
    batch of forecasts at lead index k (0-based): f, o, c [B, C, H, W] (c: the climatology at
    each forecast's valid time). Results are [n_leads, C]; a lead with no forecasts is NaN.
    """

    def __init__(self, lat_deg: np.ndarray, n_leads: int, n_channels: int):
        self.lat = np.asarray(lat_deg, dtype=np.float64)
        self.errors = [WeightedErrorAccumulator(self.lat, n_channels) for _ in range(n_leads)]
        self.acc_sum = np.zeros((n_leads, n_channels))

    def add(self, lead_index: int, forecast: np.ndarray, truth: np.ndarray,
            climatology: np.ndarray) -> None:
        self.errors[lead_index].add(forecast, truth)
        acc = anomaly_correlation(forecast, truth, climatology, self.lat)  # [B, C]
        self.acc_sum[lead_index] += acc.reshape(-1, acc.shape[-1]).sum(axis=0)

    @property
    def count(self) -> np.ndarray:
        """Forecasts scored per lead: [n_leads] int."""
        return np.array([e.count for e in self.errors])

    def _per_lead(self, values: list[np.ndarray]) -> np.ndarray:
        out = np.full((len(self.errors), self.acc_sum.shape[1]), np.nan)
        for k, (e, v) in enumerate(zip(self.errors, values, strict=True)):
            if e.count:
                out[k] = v
        return out

    def rmse(self) -> np.ndarray:
        return self._per_lead([e.rmse() if e.count else None for e in self.errors])

    def bias(self) -> np.ndarray:
        return self._per_lead([e.bias() if e.count else None for e in self.errors])

    def acc(self) -> np.ndarray:
        return self._per_lead([s / max(e.count, 1) for e, s in zip(self.errors, self.acc_sum,
                                                                   strict=True)])
