"""Triton kernels, each beside its PyTorch reference; see kernels/<op>.py."""

from .sigmoid_gate import sigmoid_gate

__all__ = ["sigmoid_gate"]
