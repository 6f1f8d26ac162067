"""The sigmoid-gate reference against hand-computed values; runs in any process."""

import math

import torch

from kernels import sigmoid_gate
from kernels.sigmoid_gate import sigmoid_gate_reference


def test_reference_hand_values():
    # x = 2, g = 0:    2 * 1/2         = 1.0
    # x = 1, g = ln 3: 1 * 3/(1 + 3)   = 0.75
    x = torch.tensor([2.0, 1.0], dtype=torch.float64)
    g = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64)
    torch.testing.assert_close(sigmoid_gate_reference(x, g), torch.tensor([1.0, 0.75]).double())


def test_reference_gradcheck():
    torch.manual_seed(0)
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    g = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(sigmoid_gate_reference, (x, g))


def test_public_function_matches_reference_on_cpu():
    torch.manual_seed(0)
    x, g = torch.randn(4, 9), torch.randn(4, 9)
    torch.testing.assert_close(sigmoid_gate(x, g), sigmoid_gate_reference(x, g))
