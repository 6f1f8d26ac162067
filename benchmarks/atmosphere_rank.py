"""atmosphere_rank: is a prepared store's channel set low-rank? (issue 3's rank criterion)

    python benchmarks/atmosphere_rank.py RUN/ingest/prepared.zarr [--stride 4] [--period A B]

Reads ``data[time, channel, lat, lon]`` of a store written by `sluice ingest` (e.g. for
configs/global_atmosphere.yaml: 4 simulated years, 69 channels), every ``stride``-th time step
inside ``period`` (default: all), flattens each channel over time and space (as
tests/pipeline/test_atmosphere_fields.py does on its 20-day T21 run) and prints

  - the eigenvalues of the channels' correlation matrix (they sum to C), how many exceed 1 % of
    the variance (criterion: ≥ 10 of 69),
  - the most correlated channel pairs (criterion: no |r| ≥ 0.999, no affine copies),

ending with one JSON line {"benchmark": "atmosphere_rank", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from pipeline.ingest import open_prepared


def channel_matrix(store, stride: int, period) -> np.ndarray:
    """[C, N] float64: each channel flattened over the selected times and the grid."""
    times = pd.DatetimeIndex(store.times)
    index = np.arange(times.size)
    if period is not None:
        index = index[times.slice_indexer(*period)]
    index = index[::stride]
    if index.size < 2:
        raise SystemExit(f"atmosphere_rank: {index.size} time steps selected; need at least 2")
    x = np.stack([store.data[int(t)] for t in index])  # [T, C, H, W] float32
    return np.moveaxis(x, 1, 0).reshape(x.shape[1], -1).astype(np.float64)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("prepared", help="a prepared store (sluice ingest's prepared.zarr)")
    p.add_argument("--stride", type=int, default=4, help="every stride-th time step (4: daily)")
    p.add_argument("--period", nargs=2, default=None, metavar=("START", "END"))
    args = p.parse_args()
    store = open_prepared(args.prepared)
    x = channel_matrix(store, args.stride, args.period)
    corr = np.corrcoef(x)
    eig = np.linalg.eigvalsh(corr)[::-1]
    above = int((eig > 0.01 * eig.sum()).sum())
    off = np.abs(corr - np.eye(corr.shape[0]))
    pairs = sorted(((off[i, j], i, j) for i in range(len(off)) for j in range(i)), reverse=True)
    n_times = x.shape[1] // (store.data.shape[2] * store.data.shape[3])
    print(f"{len(store.channels)} channels, {n_times} time steps (stride {args.stride})")
    print(f"eigenvalues > 1 % of the variance: {above} (of {eig.size}; threshold "
          f"{0.01 * eig.sum():.2f})")
    print("leading eigenvalues:", " ".join(f"{e:.2f}" for e in eig[:14]))
    print("most correlated pairs:")
    for r, i, j in pairs[:8]:
        print(f"  {store.channels[i]:>28} {store.channels[j]:>28}  {r:.5f}")
    figures = {"eigenvalues_above_1pct": above,
               "max_pair_correlation": round(float(pairs[0][0]), 6),
               "leading_eigenvalue": round(float(eig[0]), 3), "channels": len(store.channels)}
    print(json.dumps({"benchmark": "atmosphere_rank", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
