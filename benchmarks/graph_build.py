"""Graph build time and memory: 0.25 deg / level 6 (GraphCast) and 1.5 deg / level 5 nested.

    python benchmarks/graph_build.py [--repeat 3] [--baseline-rev REV | --no-baseline]

Builds the full graph (multi-mesh, grid->mesh, mesh->grid, features) with ``build_graph``;
seconds are the best of ``--repeat`` runs; peak memory is the process's peak RSS
(``ru_maxrss``) minus its RSS after imports. The baseline is the same 0.25 deg build by the
``graphs`` package of git revision ``--baseline-rev`` (default: the commit before the
vectorised point location), run once in a subprocess from ``git show`` copies of its files.
The last line is one JSON object for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphs import GraphSpec, build_graph  # noqa: E402

BASELINE_REV = "10710f7"
ONEFORECAST_BOXES = ((0.0, 30.0, 105.0, 160.0), (10.0, 30.0, -95.0, -35.0))
QUARTER = {"lat": tuple(np.linspace(90, -90, 721)), "lon": tuple(np.arange(1440) * 0.25)}
ONE_AND_HALF = {"lat": tuple(np.linspace(90, -90, 121)), "lon": tuple(np.arange(240) * 1.5)}

_TIMER = """
import json, resource, sys, time
import numpy as np
from graphs import GraphSpec, build_graph
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()
spec = GraphSpec(lat=tuple(np.linspace(90, -90, 721)), lon=tuple(np.arange(1440) * 0.25),
                 mesh_levels=6)
base = rss()
t = time.perf_counter()
build_graph(spec)
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
print(json.dumps({"seconds": seconds, "peak_gb": peak / 1e9}))
"""


def rss_bytes() -> int:
    """Current resident set size (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def best_of(spec: GraphSpec, repeat: int) -> tuple[float, object]:
    best, data = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        data = build_graph(spec)
        best = min(best, time.perf_counter() - t)
    return best, data


def baseline(rev: str) -> dict | None:
    """The 0.25 deg build by revision ``rev``'s graphs package, or None if unavailable."""
    try:
        names = subprocess.run(
            ["git", "-C", str(ROOT), "ls-tree", "--name-only", rev, "graphs/"],
            check=True, capture_output=True, text=True,
        ).stdout.split()
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "graphs").mkdir()
            for name in names:
                source = subprocess.run(
                    ["git", "-C", str(ROOT), "show", f"{rev}:{name}"],
                    check=True, capture_output=True, text=True,
                ).stdout
                (Path(tmp) / name).write_text(source)
            out = subprocess.run(
                [sys.executable, "-c", _TIMER], cwd=tmp, check=True, capture_output=True,
                text=True, env={**os.environ, "PYTHONPATH": tmp},
            ).stdout
        return json.loads(out.strip().splitlines()[-1])
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-rev", default=BASELINE_REV)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()

    after_imports = rss_bytes()
    quarter = GraphSpec(**QUARTER, mesh_levels=6)
    seconds_quarter, data = best_of(quarter, args.repeat)
    peak_gb = (peak_rss_bytes() - after_imports) / 1e9
    quarter_counts = {t: data[t].num_edges for t in data.edge_types}
    del data

    nested = {}
    for mode, orientation in (("conforming", "sluice"), ("oneforecast", "graphcast")):
        spec = GraphSpec(**ONE_AND_HALF, mesh_levels=5, regions=ONEFORECAST_BOXES,
                         region_levels=1, region_mode=mode, mesh_orientation=orientation)
        seconds, data = best_of(spec, args.repeat)
        nested[mode] = (seconds, data["mesh"].num_nodes, data["mesh", "to", "mesh"].num_edges)

    base = None if args.no_baseline else baseline(args.baseline_rev)

    print("0.25 deg / level 6: mesh 40,962 nodes; edges "
          + ", ".join(f"{'->'.join((t[0], t[2]))} {n:,}" for t, n in quarter_counts.items()))
    print(f"{'build':<54} {'baseline':>10} {'now':>10} {'ratio':>7}")
    if base is None:
        print(f"{'0.25 deg / L6 seconds':<54} {'none':>10} {seconds_quarter:>10.2f} {'':>7}")
        print(f"{'0.25 deg / L6 peak GB':<54} {'none':>10} {peak_gb:>10.2f} {'':>7}")
    else:
        for label, old, new in (
            ("0.25 deg / L6 seconds", base["seconds"], seconds_quarter),
            ("0.25 deg / L6 peak GB", base["peak_gb"], peak_gb),
        ):
            print(f"{label:<54} {old:>10.2f} {new:>10.2f} {old / new:>6.1f}x")
    for mode, (seconds, nodes, edges) in nested.items():
        label = f"1.5 deg / L5 + 2 boxes, {mode} ({nodes:,} / {edges:,})"
        print(f"{label:<54} {'none':>10} {seconds:>10.2f} {'':>7}")
    print(f"(best of {args.repeat}; baseline: "
          + (f"git {args.baseline_rev}, one run)" if base else "none)"))
    print(json.dumps({"benchmark": "graph_build", "figures": {
        "seconds_0p25deg_l6": round(seconds_quarter, 3),
        "peak_gb_0p25deg_l6": round(peak_gb, 3),
        "seconds_1p5deg_l5_nested": round(nested["conforming"][0], 3),
    }}))


if __name__ == "__main__":
    main()
