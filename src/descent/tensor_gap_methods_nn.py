"""Tensor methods of `descent.ops.gaps_nn_ops` (docs/torch_gaps_nn.md), one line each through
Tensor's ops table `_ops` (see `tensor_methods.py`). A mixin of `Tensor`."""

from __future__ import annotations

from .tensor_methods import _ops


class NNGapMethods:
    """PyTorch's neural-network Tensor methods added 2026-12-04: hardshrink and prelu."""

    __slots__ = ()

    def hardshrink(self, lambd=0.5):
        return _ops.hardshrink(self, lambd)

    def prelu(self, weight):
        return _ops.prelu(self, weight)
