"""Per-channel mean and standard deviation of a [T, C, H, W] series read one time block at a
time, so memory holds one block, never the series.

Block b holds n_b values per channel with mean μ_b and M2_b = Σ (x − μ_b)² (two-pass inside the
block, float64). Merging it into the running (n, μ, M2) (Chan, Golub & LeVeque 1979):

    δ = μ_b − μ,   n' = n + n_b,   μ' = μ + δ n_b / n',   M2' = M2 + M2_b + δ² n n_b / n'

and std = sqrt(M2 / n) (population, ddof 0). Exact up to float64 rounding whatever the block
sizes; E[x²] − E[x]² would lose digits on geopotential (mean ~1e5, std ~1e3).

``TrainStatistics`` adds the 6-hour-difference std (x[t+1] − x[t] with both times in the
training period), carrying the last training step across block boundaries.
"""

from __future__ import annotations

import numpy as np


class ChannelMoments:
    """Running (count, mean, M2) per channel of blocks [T, C, H, W]."""

    def __init__(self, channels: int):
        self.n = 0
        self.mean = np.zeros(channels, dtype=np.float64)
        self.m2 = np.zeros(channels, dtype=np.float64)

    def add(self, block: np.ndarray) -> None:
        """block: [T, C, ...]; every value of channel c counts once."""
        if block.shape[0] == 0:
            return
        x = np.moveaxis(np.asarray(block, dtype=np.float64), 1, 0).reshape(block.shape[1], -1)
        n_b = x.shape[1]
        mean_b = x.mean(axis=1)
        m2_b = np.square(x - mean_b[:, None]).sum(axis=1)
        total = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / total)
        self.m2 = self.m2 + m2_b + np.square(delta) * (self.n * n_b / total)
        self.n = total

    def std(self) -> np.ndarray:
        if self.n == 0:
            raise ValueError("no values were added")
        return np.sqrt(self.m2 / self.n)


class TrainStatistics:
    """mean, std and diff_std over time indices [start, stop) of a series fed in time order as
    blocks ``add(first_index, block)``; blocks may straddle the training period."""

    def __init__(self, channels: int, start: int, stop: int):
        self.start, self.stop = start, stop
        self.state = ChannelMoments(channels)
        self.diff = ChannelMoments(channels)
        self._last: np.ndarray | None = None  # the previous training step [1, C, ...]
        self._next = start  # the time index the next training step must have

    def add(self, first: int, block: np.ndarray) -> None:
        lo, hi = max(first, self.start), min(first + block.shape[0], self.stop)
        if lo >= hi:
            return
        if lo != self._next:
            raise ValueError(f"blocks must arrive in time order: expected time index "
                             f"{self._next}, got {lo}")
        part = np.asarray(block[lo - first:hi - first], dtype=np.float64)
        self.state.add(part)
        steps = part if self._last is None else np.concatenate([self._last, part])
        self.diff.add(steps[1:] - steps[:-1])
        self._last, self._next = part[-1:], hi

    def result(self) -> dict[str, np.ndarray]:
        """{"mean", "std", "diff_std"}: [C] float64."""
        if self._next != self.stop:
            raise ValueError(f"training steps {self._next}..{self.stop - 1} were never added")
        return {"mean": self.state.mean, "std": self.state.std(), "diff_std": self.diff.std()}
