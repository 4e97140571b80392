"""Tensor's dtype-conversion methods: `x.float()`, `x.long()`, `x.bool()`, ...

Each is `x.to(dtype)` under PyTorch's name and takes PyTorch's keyword `memory_format`
(`preserve_format` by default: the cast keeps the input's layout, as NumPy's `astype` does).
`.float()` runs in every training loop, so a call without `memory_format` costs one test on
top of the cast; the layout work lives in `_cast_as`. Differentiable between floating and
complex dtypes (the cast's derivative casts the gradient back, ops/elementwise.py's Cast).
"""

from __future__ import annotations

import numpy as np

from . import memory_layout as _layout
from .tensor_methods import _ops


def _cast_as(x, dtype, memory_format):
    """`x` cast to `dtype`, then laid out in `memory_format`. contiguous_format and
    channels_last copy only where the layout differs (PyTorch returns `x` itself when nothing
    changes); channels_last on a tensor that is not 4-d raises, as there."""
    name = _layout.format_name(memory_format)
    if name not in ("contiguous_format", "preserve_format"):
        _layout.check_rank(x._data, name)
    out = _ops.cast(x, dtype)
    return out if name == "preserve_format" else out._to_layout(memory_format)


class ConversionMethods:
    """`x.float()`, `x.double()`, ...: PyTorch's dtype shorthands (docs/dtypes.md)."""

    __slots__ = ()  # mixins of a slotted class must not add a __dict__

    def float(self, *, memory_format=None):
        if memory_format is None:  # the hot path: one test
            return _ops.cast(self, np.float32)
        return _cast_as(self, np.float32, memory_format)

    def double(self, *, memory_format=None):
        if memory_format is None:  # the hot path: one test
            return _ops.cast(self, np.float64)
        return _cast_as(self, np.float64, memory_format)

    def cfloat(self, *, memory_format=None):  # complex64 (docs/complex.md)
        if memory_format is None:  # the hot path: one test
            return _ops.cast(self, np.complex64)
        return _cast_as(self, np.complex64, memory_format)

    def cdouble(self, *, memory_format=None):
        if memory_format is None:  # the hot path: one test
            return _ops.cast(self, np.complex128)
        return _cast_as(self, np.complex128, memory_format)

    def half(self, *, memory_format=None):
        if memory_format is None:  # the hot path: one test
            return _ops.cast(self, np.float16)
        return _cast_as(self, np.float16, memory_format)

    def bfloat16(self, *, memory_format=None):  # ml_dtypes' bfloat16 (docs/bfloat16.md)
        if memory_format is None:  # the hot path: one test
            return _ops.cast(self, "bfloat16")
        return _cast_as(self, "bfloat16", memory_format)

    def long(self, *, memory_format=None):
        if memory_format is None:  # the hot path: one test
            return _ops.cast(self, np.int64)
        return _cast_as(self, np.int64, memory_format)

    def int(self, *, memory_format=None):
        if memory_format is None:  # the hot path: one test
            return _ops.cast(self, np.int32)
        return _cast_as(self, np.int32, memory_format)

    def bool(self, *, memory_format=None):
        if memory_format is None:  # the hot path: one test
            return _ops.cast(self, np.bool_)
        return _cast_as(self, np.bool_, memory_format)

    def short(self, *, memory_format=None):
        if memory_format is None:  # the hot path: one test
            return _ops.cast(self, np.int16)
        return _cast_as(self, np.int16, memory_format)

    def char(self, *, memory_format=None):
        if memory_format is None:  # the hot path: one test
            return _ops.cast(self, np.int8)
        return _cast_as(self, np.int8, memory_format)

    def byte(self, *, memory_format=None):
        if memory_format is None:  # the hot path: one test
            return _ops.cast(self, np.uint8)
        return _cast_as(self, np.uint8, memory_format)

    def chalf(self, *, memory_format=None):
        """PyTorch's complex32. NumPy (and CuPy) have no complex half dtype, so descent cannot
        hold one: this raises rather than hand back another dtype under complex32's name."""
        raise RuntimeError(
            f"chalf(): descent has no complex32 (NumPy has no complex half dtype), so a "
            f"{self._data.dtype} tensor cannot be converted to it; use x.cfloat() (complex64) "
            "instead"
        )

    def dequantize(self):
        """The float32 values of a quantized tensor (descent.quantization's QuantizedTensor
        overrides this); a float32 tensor is returned as it is, another dtype cast to float32,
        as PyTorch's dequantize."""
        return self if self._data.dtype == np.float32 else _ops.cast(self, np.float32)

    def to_sparse(self, *args, **kwargs):
        """The sparse COO copy storing the nonzero entries (descent.sparse, docs/sparse.md);
        `to_sparse(sparse_dim)` keeps the trailing dims dense (a hybrid tensor)."""
        return _ops.to_sparse(self, *args, **kwargs)

    def to_sparse_coo(self):
        return _ops.to_sparse(self)

    def to_sparse_csr(self, dense_dim=None):
        """The sparse CSR copy of a 2-d tensor (descent.sparse, docs/sparse.md)."""
        return _ops.to_sparse_csr(self, dense_dim)

    def to_sparse_csc(self, dense_dim=None):
        """The sparse CSC copy of a 2-d tensor (descent.sparse, docs/sparse.md)."""
        return _ops.to_sparse_csc(self, dense_dim)

    def to_sparse_bsr(self, blocksize, dense_dim=None):
        """The sparse BSR copy of a 2-d tensor with (bh, bw) blocks (docs/sparse.md)."""
        return _ops.to_sparse_bsr(self, blocksize, dense_dim)

    def sparse_mask(self, mask):
        """This tensor's entries at a sparse COO mask's coordinates, as a sparse tensor with the
        mask's pattern (docs/sparse.md)."""
        return _ops.sparse_mask(self, mask)

    def to_dense(self, dtype=None, *, masked_grad=None):
        """A dense tensor is its own dense form (PyTorch returns the tensor itself)."""
        return self if dtype is None else self.to(dtype)
