"""Comparison masks of sparse COO storages, for the backward formulas of elementwise ops.

The dense ops' backward passes are written once for arrays (STYLE.md, "The op contract"), and a
few of them compare their saved input or output: relu's `where(y <= 0, 0, gy)`, abs's
`gy * sign(x)` whose sign maps nan to 0 with `where(s == s, s, 0)`. On a sparse tensor such a
comparison is a `CooMask`: the booleans at the tensor's stored coordinates plus ONE boolean for
every unstored coordinate (`0 <op> c`), so `y <= 0` is True almost everywhere and still costs
nnz booleans. `where(mask, a, b)` is then sparse whenever it is zero at every unstored
coordinate, which is the case in those formulas: the gradient keeps the tensor's pattern, as
PyTorch's does, and nothing n x m is formed. Any other `where` refuses loudly.

Users never see a mask: their comparisons (`S > 0`) reach the storage as NumPy ufuncs
(`descent.ops.comparison`), which raise as PyTorch's do (aten::gt has no sparse kernel).
"""

from __future__ import annotations

import operator

import numpy as np

from .. import backend
from .kernels import coalesce, gather
from .storage import CooStorage, is_number, unsupported

_OPS = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
        "gt": operator.gt, "ge": operator.ge}  # fmt: skip


class CooMask:
    """A boolean tensor known at a COO pattern: `values` (nnz,) at `indices` (sparse_dim, nnz)
    (coalesced), and `fill` at every other coordinate. Internal to backward formulas."""

    __slots__ = ("indices", "values", "shape", "fill")

    def __init__(self, indices, values, shape, fill: bool) -> None:
        self.indices, self.values, self.shape, self.fill = indices, values, shape, bool(fill)

    @property
    def dtype(self):
        return np.dtype(bool)

    def __array_function__(self, func, types, args, kwargs):
        if func is np.where:
            return where(*args, **kwargs)
        raise unsupported(_as_storage(self), f"NumPy's {func.__name__} of a comparison mask")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raise unsupported(_as_storage(self), f"NumPy's {ufunc.__name__} of a comparison mask")


def _as_storage(mask: CooMask) -> CooStorage:
    """The mask's stored part as a storage (for the error message's shape and nnz)."""
    return CooStorage(mask.indices, mask.values, mask.shape, True)


def compare(st: CooStorage, other, op: str):
    """`st <op> other` as a CooMask, for a number `other` or `st` itself (the nan test
    `s == s`); None for anything else (the caller raises)."""
    if st.dense_dim:  # a hybrid tensor's unstored rows are whole blocks: not handled
        return None
    c = coalesce(st)
    fn = _OPS[op]
    if other is st:
        return CooMask(c.indices, fn(c.values, c.values), st.shape, fn(0, 0))
    if is_number(other):
        with np.errstate(invalid="ignore"):
            return CooMask(c.indices, fn(c.values, other), st.shape, bool(fn(0, other)))
    return None


def _at(x, mask: CooMask, what: str):
    """The values of a `where` branch at the mask's coordinates, and its unstored value (None
    when it has no single one: a dense array)."""
    if is_number(x):
        return x, x
    if isinstance(x, CooStorage):
        if x.shape != mask.shape or x.dense_dim:
            raise unsupported(x, f"where() with a {what} of another shape or with dense dims")
        return gather(x, mask.indices), 0
    if isinstance(x, np.ndarray) or backend.is_cupy_array(x):
        full = backend.get_array_module(x).broadcast_to(x, mask.shape)
        return full[tuple(mask.indices)], None
    raise unsupported(_as_storage(mask), f"where() with a {type(x).__name__} {what}")


def where(cond, a, b):
    """np.where with a sparse operand: `where(True, 0, g)` (zeros of g's layout: the gradient
    of a piecewise-constant op) or a CooMask condition whose result is zero at every unstored
    coordinate (a sparse result with the mask's pattern)."""
    if cond is True or cond is False or (getattr(cond, "shape", None) == ()
                                         and getattr(cond, "dtype", None) == np.bool_):  # fmt: skip
        cond = bool(cond)  # a Python bool, or the 0-d array descent's where op makes of it
        keep = a if cond else b
        other = b if cond else a
        if is_number(keep) and keep == 0 and isinstance(other, CooStorage):
            # zeros_like(grad), PyTorch's gradient of sign and the roundings: empty, sparse
            return other.empty_like(other.dtype)
    if not isinstance(cond, CooMask):
        st = next(x for x in (cond, a, b) if isinstance(x, CooStorage))
        raise unsupported(st, "where() with a dense condition")
    av, a_fill = _at(a, cond, "first branch")
    bv, b_fill = _at(b, cond, "second branch")
    fill = a_fill if cond.fill else b_fill
    if fill is None or fill != 0:
        raise unsupported(_as_storage(cond), "where() whose result is not zero where the "
                                             "tensor stores nothing (a dense result)")  # fmt: skip
    xp = backend.get_array_module(cond.values)
    values = xp.where(cond.values, av, bv)
    if not is_number(a) or not is_number(b):  # the branches' dtype, as NumPy's where
        dt = np.result_type(*[x.dtype for x in (a, b) if not is_number(x)])
        values = values.astype(dt, copy=False)
    return CooStorage(cond.indices, values, cond.shape, True)
