"""Tensor methods of `descent.ops.gaps_math` (docs/torch_gaps_math.md), one line each through
Tensor's ops table `_ops` (see `tensor_methods.py`). A mixin of `Tensor`; no name here is
defined by an earlier group."""

from __future__ import annotations

from .tensor_methods import _ops  # noqa: F401


class MathGapMethods2:
    """PyTorch's math Tensor methods added 2026-12-04."""

    __slots__ = ()
