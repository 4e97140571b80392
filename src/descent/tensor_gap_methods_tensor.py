"""Tensor methods of `descent.ops.gaps_tensor` (docs/torch_gaps_tensor.md), one line each
through Tensor's ops table `_ops` (see `tensor_methods.py`), and PyTorch's tensor-object
properties. A mixin of `Tensor`; no name here is defined by an earlier group."""

from __future__ import annotations

from .tensor_methods import _ops  # noqa: F401


class TensorGapMethods2:
    """PyTorch's shape, indexing and object Tensor methods added 2026-12-04."""

    __slots__ = ()
