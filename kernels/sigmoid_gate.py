"""Sigmoid gate y = x * sigmoid(g): Triton kernels, PyTorch reference, autograd Function.

The elementwise gate behind gated message passing and gated recurrences. One op per file, as in
Liger-Kernel: forward and backward kernels over the flattened tensor, an autograd Function that
saves only the inputs (sigma(g) is cheap to recompute), and one public function that dispatches
to Triton on CUDA (or on CPU under ``TRITON_INTERPRET=1``) and to the reference elsewhere.

    y  = x * s,                 s = sigmoid(g)
    dx = dy * s
    dg = dy * x * s * (1 - s)
"""

import os

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # the package must import on machines without triton
    triton = None

# Triton reads TRITON_INTERPRET when a kernel is defined, so it is fixed for the whole process.
_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
_BLOCK = 1024
_last_path = None


def last_path():
    """Which path the latest ``sigmoid_gate`` call took: "triton", "reference" or None."""
    return _last_path


def sigmoid_gate_reference(x: Tensor, g: Tensor) -> Tensor:
    """y = x * sigmoid(g) in plain PyTorch; x, g: same shape."""
    return x * torch.sigmoid(g)


if triton is not None:

    @triton.jit
    def _sigmoid_gate_fwd_kernel(x_ptr, g_ptr, y_ptr, n, BLOCK: tl.constexpr):
        offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offsets < n
        x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        g = tl.load(g_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        # y = x * sigmoid(g)
        y = x * tl.sigmoid(g)
        tl.store(y_ptr + offsets, y.to(y_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def _sigmoid_gate_bwd_kernel(dy_ptr, x_ptr, g_ptr, dx_ptr, dg_ptr, n, BLOCK: tl.constexpr):
        offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offsets < n
        dy = tl.load(dy_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        g = tl.load(g_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        s = tl.sigmoid(g)
        # dx = dy * s ;  dg = dy * x * s * (1 - s)
        dx = dy * s
        dg = dy * x * s * (1.0 - s)
        tl.store(dx_ptr + offsets, dx.to(dx_ptr.dtype.element_ty), mask=mask)
        tl.store(dg_ptr + offsets, dg.to(dg_ptr.dtype.element_ty), mask=mask)


def _grid(n: int):
    return (triton.cdiv(n, _BLOCK),)


class SigmoidGateFunction(torch.autograd.Function):
    """Triton y = x * sigmoid(g); saves x and g only and recomputes sigmoid(g) in backward."""

    @staticmethod
    def forward(ctx, x: Tensor, g: Tensor) -> Tensor:
        x_flat, g_flat = x.contiguous().view(-1), g.contiguous().view(-1)  # [n]
        y = torch.empty_like(x_flat)
        n = x_flat.numel()
        _sigmoid_gate_fwd_kernel[_grid(n)](x_flat, g_flat, y, n, BLOCK=_BLOCK)
        ctx.save_for_backward(x_flat, g_flat)
        return y.view(x.shape)

    @staticmethod
    def backward(ctx, dy: Tensor):
        x_flat, g_flat = ctx.saved_tensors  # [n]
        dy_flat = dy.contiguous().view(-1)
        dx, dg = torch.empty_like(x_flat), torch.empty_like(g_flat)
        n = x_flat.numel()
        _sigmoid_gate_bwd_kernel[_grid(n)](dy_flat, x_flat, g_flat, dx, dg, n, BLOCK=_BLOCK)
        return dx.view(dy.shape), dg.view(dy.shape)


def sigmoid_gate(x: Tensor, gate_logits: Tensor) -> Tensor:
    """y = x * sigmoid(gate_logits); x, gate_logits: same shape (any), y: that shape.

    Triton on CUDA tensors (or on CPU under TRITON_INTERPRET=1), the PyTorch reference otherwise.
    Differing dtypes (e.g. a float32 LayerNorm output gated by bf16 autocast logits) are promoted
    as the reference's ``x * sigmoid(g)`` would.
    """
    global _last_path
    if x.shape != gate_logits.shape:
        raise ValueError(f"sigmoid_gate needs equal shapes, got {x.shape} and {gate_logits.shape}")
    if triton is not None and (x.is_cuda or _INTERPRET):
        _last_path = "triton"
        dtype = torch.promote_types(x.dtype, gate_logits.dtype)
        return SigmoidGateFunction.apply(x.to(dtype), gate_logits.to(dtype))
    _last_path = "reference"
    return sigmoid_gate_reference(x, gate_logits)
