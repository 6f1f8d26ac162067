"""Triton kernels, each beside its PyTorch reference; see kernels/<op>.py."""

from .gated_aggregation import gated_aggregation
from .sigmoid_gate import sigmoid_gate

__all__ = ["gated_aggregation", "sigmoid_gate"]
