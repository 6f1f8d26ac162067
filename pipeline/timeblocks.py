"""Reading an ingest source one block of time steps at a time.

`prepare_weather` never builds the whole series as one Dask graph: at 5.625° × 69 channels ×
4 years that graph held ~300 tasks per time step and its scheduler kept every loaded chunk
until the writes ran (13 GB resident for a 3.3 GB series). Instead each block of
`time_blocks` steps is selected, computed (Dask only inside the block), checked, regridded
and written, so memory is one block whatever the length of the record.

NaN policy ``interpolate_time`` needs each grid point's whole series, which a block does not
have. `time_interpolation_patch` reads the source first to find the points with NaNs, then
reads the series of those points only (in groups that fit the block budget) and interpolates
linearly in time (the time coordinate, as ``xarray.interpolate_na(use_coordinate=True)``); the
write pass fills the block's NaNs from that patch. NaNs before a point's first or after its last
valid value stay NaN and are rejected like any other.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from pipeline.errors import DataError

BLOCK_BYTES = 64 << 20  # float64 bytes of one block on the larger grid (working set ≈ 5×)


def time_blocks(n_times: int, values_per_step: int,
                budget: int | None = None) -> list[tuple[int, int]]:
    """[(start, stop), ...] covering range(n_times), each block ≤ budget bytes of float64
    (default: `BLOCK_BYTES`, read at call time)."""
    budget = BLOCK_BYTES if budget is None else budget
    steps = max(1, budget // (8 * max(1, values_per_step)))
    return [(a, min(a + steps, n_times)) for a in range(0, n_times, steps)]


class SourceBlocks:
    """``load(a, b)`` → the source's channels at time steps [a, b) as numpy [b − a, C, H, W].

    picks: per channel, (source variable, level index or None). Each variable is read once per
    block (all its levels: a WB2 store chunks them together) and every variable of the block
    in one Dask compute: one task per source chunk, not one per channel and chunk.
    """

    def __init__(self, ds: xr.Dataset, picks: list[tuple[str, int | None]], scheduler: str):
        self.ds, self.picks, self.scheduler = ds, picks, scheduler
        self.names = list(dict.fromkeys(name for name, _ in picks))
        self.times = np.asarray(ds["time"].values)

    def __call__(self, a: int, b: int) -> np.ndarray:
        import dask

        from pipeline.ingest import dask_scheduler  # the ingest's scheduler choice

        lazy = [self.ds[n].isel(time=slice(a, b)).transpose("time", ..., "latitude",
                                                              "longitude").data
                for n in self.names]
        with dask_scheduler(self.scheduler):
            arrays = dict(zip(self.names, dask.compute(*lazy), strict=True))
        block = np.stack([arrays[n] if level is None else arrays[n][:, level]
                          for n, level in self.picks], axis=1)
        return block if block.dtype.kind == "f" else block.astype(np.float64)


def check_no_nans(x: np.ndarray, a: int, b: int, times, variables, source) -> None:
    """DataError naming the first channel with a NaN in block [a, b) and the first time."""
    counts = np.isnan(x).sum(axis=(2, 3))  # [b − a, C]
    if not counts.any():
        return
    t, c = (int(i[0]) for i in np.nonzero(counts))  # the earliest time, then the first channel
    stopped = "" if (a, b) == (0, len(times)) else \
        f" (counted in {times[a]} .. {times[b - 1]}, where reading stopped)"
    raise DataError(source, variables[c], "no NaNs (or a data.fill_nan policy)",
                    f"{int(counts[:, c].sum())} NaNs, the first at {times[a + t]}{stopped}")


class InterpolationPatch:
    """Values for NaN positions, sorted by time index: t [K], flat point index [K], value [K]."""

    def __init__(self, t: np.ndarray, point: np.ndarray, value: np.ndarray):
        order = np.argsort(t, kind="stable")
        self.t, self.point, self.value = t[order], point[order], value[order]

    def apply(self, x: np.ndarray, a: int, b: int) -> None:
        """Fill block x = steps [a, b) in place (x: [b − a, C, H, W])."""
        lo, hi = np.searchsorted(self.t, [a, b])
        if lo == hi:
            return
        flat = x.reshape(x.shape[0], -1)  # a view: x is a fresh C-contiguous block
        flat[self.t[lo:hi] - a, self.point[lo:hi]] = self.value[lo:hi]


def time_interpolation_patch(load: SourceBlocks, blocks,
                             budget: int = 8 * BLOCK_BYTES) -> InterpolationPatch:
    """Linear-in-time values for every interior NaN of the source (module docstring); NaNs
    left at a series' ends are the write pass's to report."""
    points = []
    for a, b in blocks:  # pass 1: which grid points (c, h, w) have any NaN
        x = load(a, b)
        points.append(np.unique(np.nonzero(np.isnan(x.reshape(x.shape[0], -1)))[1]))
    points = np.unique(np.concatenate(points)) if points else np.zeros(0, dtype=np.int64)
    n_times = blocks[-1][1] if blocks else 0
    t_coord = np.asarray(load.times).astype("datetime64[ns]").astype(np.int64).astype(np.float64)
    # series and the two index arrays: 24 bytes per (time, point)
    group = max(1, budget // (24 * max(1, n_times)))
    ts, ps, vs = [], [], []
    for g in range(0, points.size, group):  # pass 2 per group: the series of those points
        idx = points[g:g + group]
        series = np.empty((n_times, idx.size), dtype=np.float64)
        for a, b in blocks:
            series[a:b] = load(a, b).reshape(b - a, -1)[:, idx]
        valid = ~np.isnan(series)
        steps = np.arange(n_times)[:, None]
        # the last valid step at or before t, the first at or after t (−1, n_times: none)
        before = np.maximum.accumulate(np.where(valid, steps, -1), axis=0)
        after = np.minimum.accumulate(np.where(valid, steps, n_times)[::-1], axis=0)[::-1]
        t, j = np.nonzero(~valid & (before >= 0) & (after < n_times))  # interior NaNs only
        lo, hi = before[t, j], after[t, j]
        weight = (t_coord[t] - t_coord[lo]) / (t_coord[hi] - t_coord[lo])
        ts.append(t)
        ps.append(idx[j])
        vs.append(series[lo, j] + weight * (series[hi, j] - series[lo, j]))
    cat = lambda parts, dtype: np.concatenate(parts) if parts else np.zeros(0, dtype)  # noqa: E731
    return InterpolationPatch(cat(ts, np.int64), cat(ps, np.int64), cat(vs, np.float64))
