"""The gated SSL layer against full attention in the same slot, as videos get long.

    python benchmarks/videoqa_ssl.py                  # T = 1k, 4k, 16k on this machine's device
    python benchmarks/videoqa_ssl.py --lengths 256 1024 --repeats 1   # a quick look

One ``GatedSequenceLayer`` (models/videoqa/gss.py; d 64, H 64, 64 SSM modes, 4 heads) per
operator, batch 1, fp32: a step is forward + backward of ``out.sum()`` (training cost), timed as
the median of ``--repeats`` after one warm-up. Time per frame = step seconds / T. Peak memory is
what torch allocates during one step beyond what was live before it (CUDA allocator statistics;
on CPU the profiler's allocation events; `benchmarks.oneforecast_step.step_peak_mb`).

Attention is skipped at a length where its predicted peak memory exceeds ``--budget-gb``: the
prediction extends the two longest lengths measured so far by the power law they follow (T² for
the math kernel, ~T for a flash kernel), so nothing is run that would exhaust the machine.

Figures (keys of the last line): ``ssl_seconds_16k``, ``ssl_peak_gb_16k``,
``ssl_per_frame_16k_vs_1k`` (goal ≤ 2: the SSL's cost per frame barely grows with T, being
O(T log T)), ``attention_vs_ssl_per_frame`` at the longest T both ran (goal ≥ 8).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.oneforecast_step import step_peak_mb  # noqa: E402
from models.videoqa.gss import GatedSequenceLayer  # noqa: E402

WIDTH = 64


def measure(mixer: str, length: int, repeats: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    layer = GatedSequenceLayer(WIDTH, mixer, hidden=WIDTH, ssm_modes=64, heads=4).to(device)
    x = torch.randn(1, length, WIDTH, device=device, requires_grad=True)

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x).sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step()  # warm-up: kernel selection, allocator
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    return {"seconds": seconds, "per_frame_us": 1e6 * seconds / length,
            "peak_gb": step_peak_mb(step, device) / 1e3}


def predicted_gb(runs: dict[int, dict], length: int) -> float:
    """Peak memory at ``length`` from the power law through the two longest runs so far."""
    (t1, r1), (t2, r2) = sorted(runs.items())[-2:]
    slope = math.log(max(r2["peak_gb"], 1e-9) / max(r1["peak_gb"], 1e-9)) / math.log(t2 / t1)
    return r2["peak_gb"] * (length / t2) ** max(slope, 1.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--budget-gb", type=float, default=None,
                   help="attention's memory budget (default: 80%% of the GPU, 8 GB on CPU)")
    args = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    budget = args.budget_gb or (0.8 * torch.cuda.get_device_properties(device).total_memory / 1e9
                                if device.type == "cuda" else 8.0)
    threads = torch.get_num_threads()
    print(f"device {device} ({threads} CPU threads); layer d={WIDTH} H={WIDTH}; "
          f"attention budget {budget:.1f} GB")
    results: dict[str, dict[int, dict]] = {"ssl": {}, "attention": {}}
    for length in args.lengths:
        for mixer in ("ssl", "attention"):
            runs = results[mixer]
            if mixer == "attention" and len(runs) >= 2 and predicted_gb(runs, length) > budget:
                print(f"  T={length:>6} attention skipped: predicted "
                      f"{predicted_gb(runs, length):.1f} GB > budget {budget:.1f} GB")
                continue
            r = measure(mixer, length, args.repeats, device)
            runs[length] = r
            print(f"  T={length:>6} {mixer:<9} {r['seconds']:8.3f} s  {r['per_frame_us']:8.2f} "
                  f"µs/frame  peak {r['peak_gb']:.3f} GB")
    ssl, attn = results["ssl"], results["attention"]
    both = max(set(ssl) & set(attn))
    first, last = min(ssl), max(ssl)
    figures = {"ssl_seconds_16k": ssl[last]["seconds"], "ssl_peak_gb_16k": ssl[last]["peak_gb"],
               "ssl_per_frame_16k_vs_1k": ssl[last]["per_frame_us"] / ssl[first]["per_frame_us"],
               "attention_vs_ssl_per_frame": attn[both]["per_frame_us"]
               / ssl[both]["per_frame_us"],
               "attention_vs_ssl_at_frames": both}
    print(f"SSL per frame, T={last} vs T={first}: {figures['ssl_per_frame_16k_vs_1k']:.2f}x "
          "(goal <= 2)")
    print(f"attention vs SSL per frame at T={both}: {figures['attention_vs_ssl_per_frame']:.1f}x "
          "(goal >= 8)")
    if last != 16384 or first != 1024:
        print(f"note: lengths {args.lengths}, so the *_16k keys hold T={last} and the ratio is "
              f"against T={first}")
    print(json.dumps({"benchmark": "videoqa_ssl", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
