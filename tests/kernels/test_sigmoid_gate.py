"""Triton sigmoid gate against its reference, run on CPU by the Triton interpreter.

TRITON_INTERPRET is read when kernels are defined, so it must be set for the whole process:
    TRITON_INTERPRET=1 python -m pytest tests/kernels
"""

import os

import pytest
import torch

if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("needs TRITON_INTERPRET=1 for the whole process", allow_module_level=True)
pytest.importorskip("triton")

from kernels import sigmoid_gate
from kernels.sigmoid_gate import last_path, sigmoid_gate_reference

SHAPES = [(63,), (7, 500), (3, 5, 33)]
# bf16 keeps 8 mantissa bits (relative rounding 2**-9 ~ 2e-3); float32 agrees to rounding.
TOLERANCE = {torch.float32: 1e-6, torch.bfloat16: 1e-2}


def relative_rms(ref: torch.Tensor, tri: torch.Tensor) -> float:
    ref, tri = ref.double(), tri.double()
    return ((ref - tri).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt()).item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES)
def test_triton_matches_reference_outputs_and_gradients(shape, dtype):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=dtype)
    g = 3 * torch.randn(shape, dtype=dtype)
    dy = torch.randn(shape, dtype=dtype)

    x_ref, g_ref = x.clone().requires_grad_(), g.clone().requires_grad_()
    y_ref = sigmoid_gate_reference(x_ref, g_ref)
    y_ref.backward(dy)

    x_tri, g_tri = x.clone().requires_grad_(), g.clone().requires_grad_()
    y_tri = sigmoid_gate(x_tri, g_tri)
    assert last_path() == "triton"
    y_tri.backward(dy)

    assert y_tri.dtype == dtype and x_tri.grad.dtype == dtype and g_tri.grad.dtype == dtype
    assert y_tri.shape == shape
    tol = TOLERANCE[dtype]
    assert relative_rms(y_ref, y_tri) < tol
    assert relative_rms(x_ref.grad, x_tri.grad) < tol
    assert relative_rms(g_ref.grad, g_tri.grad) < tol


def test_triton_handles_non_contiguous_input():
    torch.manual_seed(0)
    x = torch.randn(33, 7).t()  # [7, 33], strides (1, 7)
    g = torch.randn(7, 33)
    y = sigmoid_gate(x, g)
    assert last_path() == "triton"
    assert relative_rms(sigmoid_gate_reference(x, g), y) < 1e-6
