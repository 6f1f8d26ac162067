"""sigmoid_gate: fused Triton forward+backward against the eager PyTorch reference.

Prints the baseline (reference), ours (Triton) and their ratio from one run, then one JSON line.
Needs CUDA for the Triton path; elsewhere it reports the reference alone and a ratio of null.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from kernels.sigmoid_gate import SigmoidGateFunction, sigmoid_gate_reference


def rel_rms(ref: torch.Tensor, got: torch.Tensor) -> float:
    ref, got = ref.float(), got.float()
    return ((ref - got).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt()).item()


def time_fwd_bwd(fn, x, g, dy, reps: int) -> float:
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    for _ in range(3):
        fn(x, g).backward(dy)
    sync()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn(x, g).backward(dy)
    sync()
    return (time.perf_counter() - t0) / reps


def main() -> int:
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    shape = (8, 6144, 48) if cuda else (2, 2048, 48)  # smoke-size edge tensors [B, E, D]
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(shape, device=device, dtype=dtype, requires_grad=True)
        g = torch.randn(shape, device=device, dtype=dtype, requires_grad=True)
        dy = torch.randn(shape, device=device, dtype=dtype)
        base = time_fwd_bwd(sigmoid_gate_reference, x, g, dy, 50)
        name = str(dtype).split(".")[-1]
        results[f"reference_ms_{name}"] = 1e3 * base
        if cuda:
            ours = time_fwd_bwd(SigmoidGateFunction.apply, x, g, dy, 50)
            results[f"triton_ms_{name}"] = 1e3 * ours
            results[f"speedup_{name}"] = base / ours
            x.grad = g.grad = None
            y_ref = sigmoid_gate_reference(x, g)
            y_ref.backward(dy)
            ref_grads = (x.grad.clone(), g.grad.clone())
            x.grad = g.grad = None
            y_tri = SigmoidGateFunction.apply(x, g)
            y_tri.backward(dy)
            results[f"rel_rms_{name}"] = max(rel_rms(y_ref, y_tri), rel_rms(ref_grads[0], x.grad),
                                             rel_rms(ref_grads[1], g.grad))
    print(f"{'dtype':<10}{'reference ms':>14}{'triton ms':>12}{'ratio':>8}{'rel-RMS':>10}")
    for name in ("float32", "bfloat16"):
        tri = results.get(f"triton_ms_{name}")
        print(f"{name:<10}{results[f'reference_ms_{name}']:>14.3f}"
              f"{tri if tri is not None else float('nan'):>12.3f}"
              f"{results.get(f'speedup_{name}', float('nan')):>8.2f}"
              f"{results.get(f'rel_rms_{name}', float('nan')):>10.1e}")
    if not cuda:
        print("no CUDA device: the Triton path runs only on GPU (or under TRITON_INTERPRET=1)")
    print(json.dumps({"benchmark": "sigmoid_gate", "figures": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
