"""Reductions (sum, mean, max, ...); softmax, log-softmax and logsumexp are in ops/softmax.py.

Reductions take `axis` (int, tuple or None) with `dim` accepted as PyTorch's alias, and
`keepdims` (`keepdim`). `max`/`min` follow PyTorch (`max(x, dim)` returns `(values, indices)`);
`amax`/`amin` return values only, `argmax`/`argmin` the indices. var, std, var_mean and
std_mean are in ops/variance.py (reached from here too, through `__getattr__` below).
"""

from __future__ import annotations

import builtins
import warnings

import numpy as np

from .. import amp, backend
from ..autograd import Function
from ..errors import DescentError, DtypeError
from ..grad_fn import show_pieces
from ..opmath import FLOAT, HALF
from ..tensor import Tensor, as_dtype
from ._common import (
    as_tensor,
    axis_arg,
    c_ordered,
    holomorphic,
    keepdims_arg,
    normalize_axis,
    refuse_kinds,
    return_type,
    user_stacklevel,
)
from .elementwise import abs as _abs
from .elementwise import cast, clone, maximum, minimum, saved_clone, where
from .indexing import SelectedValues
from .linalg_norm import VectorNorm
from .order import EvenlyShared
from .out_arg import write_out, write_outs
from .scan import _refuse_bool_scan
from .shape import permute, reshape, squeeze
from .untracked import computed, seen


# Every reduction normalises its axis argument once, here: a sorted tuple of non-negative axes
# (or None for all), which is what the backward helpers (expand_reduced) expect.
def _prep(x, axis, keepdims, dim, keepdim, op=None):
    x = as_tensor(x)
    axis = axis_arg(axis, dim)
    if axis == () or axis == []:  # PyTorch: an empty dim list reduces every dimension
        axis = None
    axis = normalize_axis(axis, x.ndim, op)  # errors name the op
    # A 0-d tensor accepts dim 0 / -1 (PyTorch): there is nothing to reduce, so it is the
    # whole-tensor reduction (NumPy would raise an AxisError).
    if x.ndim == 0:
        axis = None
    return x, axis, keepdims_arg(keepdims, keepdim)


def _reduced_size(shape, axis) -> int:
    """How many elements each output of a reduction over `axis` combines."""
    n = 1
    for a in range(len(shape)) if axis is None else axis:
        n *= shape[a]
    return n


class Sum(Function):
    """d/dx sum(x) = 1, broadcast back over the reduced axes."""

    zero_passes = True  # PyTorch's grad.expand(sizes) keeps its zero tensor
    __slots__ = ("axis", "keepdims")

    def forward(self, x):
        # integers in their own dtype (sum(x, dtype=uint8) wraps in uint8 as PyTorch's; NumPy
        # would give uint64); the public sum casts the narrower ones to int64 first
        dt = x.dtype
        if dt.kind in "iu":
            return x.sum(axis=self.axis, keepdims=self.keepdims, dtype=dt)
        if dt.itemsize == 2 and dt.kind == "f":
            # float16 accumulates in float32 and rounds once (PyTorch's acc_type): NumPy's
            # float16 partial sums overflow at 65504 where the total need not
            return x.sum(axis=self.axis, keepdims=self.keepdims, dtype=np.float32).astype(dt)
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy, ops):
        # Every input element contributed once: the gradient is gy broadcast back (a view, no copy).
        return ops.expand_reduced(gy, self.in_shapes[0], self.axis, self.keepdims)


class Mean(Function):
    """d/dx mean(x) = 1/n, broadcast back over the reduced axes."""

    __slots__ = ("axis", "keepdims", "n")

    def forward(self, x):
        # n, the count averaged over, is a Python int kept for backward (no array is saved).
        self.n = _reduced_size(x.shape, self.axis)
        if self.n == 0:  # the mean of nothing: nan (0/0), as PyTorch, without NumPy's warning
            return x.sum(axis=self.axis, keepdims=self.keepdims) * x.dtype.type(np.nan)
        return x.mean(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy, ops):
        # Scale the small reduced gradient before broadcasting it: n times fewer multiplies.
        # (n = 0: the input is empty, and so is its gradient, whatever the scale.)
        if gy.dtype == HALF and self.n and not ops.is_graph:
            # PyTorch's grad / n: divided in float32 and rounded once (gy * (1 / n) rounded
            # 1 / n to float16 first, and a product is not the quotient: one unit off in 2)
            gy = (gy.astype(FLOAT) / self.n).astype(HALF)
            return ops.expand_reduced(gy, self.in_shapes[0], self.axis, self.keepdims)
        scale = 1.0 / self.n if self.n else 0.0
        return ops.expand_reduced(gy * scale, self.in_shapes[0], self.axis, self.keepdims)


@holomorphic  # complex: gy * conj(d prod / dx)
class Prod(Function):
    """d/dx_i prod(x) = prod_{j != i} x_j (computed as y / x_i; exact zeros handled)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    __slots__ = ("axis", "keepdims", "low")
    save_inputs = True
    save_output = True
    # bfloat16 inputs (ops/bfloat16.py): the dispatch sets `low` to the dtype, so the float32
    # forward rounds every product to it, as PyTorch's kernel multiplies in bfloat16
    bfloat16_param = "low"

    def forward(self, x):
        # integers in their own dtype (NumPy's uint8 prod is uint64; PyTorch's wraps in uint8)
        dt = x.dtype if x.dtype.kind in "iu" else None
        low = getattr(self, "low", None)
        if type(x) is np.ndarray and x.dtype.kind == "f" and x.size:
            return _vector_order_prod(x, self.axis, self.keepdims, low)
        return x.prod(axis=self.axis, keepdims=self.keepdims, dtype=dt)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        shape = self.in_shapes[0]
        y = ops.expand_reduced(self.output(ops), shape, self.axis, self.keepdims)
        g = ops.expand_reduced(gy, shape, self.axis, self.keepdims)
        if not shape:  # a 0-d input: y = x (PyTorch returns gy)
            return g
        # y / x is exact and cheap when no x is 0; with zeros it would give nan, so the product of
        # the others is formed without division instead.
        xd = x if not ops.is_graph else x._data
        if not (xd == 0).any():
            q = y / x  # PyTorch's order (y / x is exactly 1 for one denormal x)
            low = getattr(self, "low", None)
            if low is not None and not ops.is_graph:  # bfloat16: the quotient rounded first
                q = q.astype(low).astype(q.dtype)
            return g * q
        if ops.is_graph:
            return g * _prod_of_others(x, self.axis)
        if self.axis is None and int((xd == 0).sum()) > 1:
            # PyTorch's prod() of all with two zeros or more: zeros outright (beside a nan too)
            return backend.get_array_module(x).zeros_like(g)
        # Product of the others without dividing: exclusive cumulative products from both sides.
        # Move the reduced axes last and flatten them: then the exclusive products from the left and
        # from the right are two cumprods, and their product leaves out exactly x_i.
        xp = backend.get_array_module(x)
        axes = self.axis if self.axis is not None else tuple(range(x.ndim))
        moved = xp.moveaxis(x, axes, tuple(range(-len(axes), 0)))
        flat = moved.reshape(moved.shape[: moved.ndim - len(axes)] + (-1,))
        ones = xp.ones(flat.shape[:-1] + (1,), dtype=x.dtype)
        # Accumulated in float64 for narrower floats, each rounded to x's dtype (PyTorch's
        # cumprod): -1.76 * 3e38 * 0 is -0.0, not the float32 -inf * 0 = nan.
        acc = _ACC.get(x.dtype.itemsize) if x.dtype.kind in "fV" else None
        low = getattr(self, "low", None)  # bfloat16: PyTorch's cumprods accumulate in float32
        acc = np.float32 if low is not None else acc

        def r(a):  # each bfloat16 op's result rounded (identity otherwise)
            return a if low is None else a.astype(low).astype(np.float32)

        left = xp.cumprod(xp.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1, dtype=acc)
        right = xp.flip(xp.cumprod(xp.concatenate([ones, xp.flip(flat, -1)[..., :-1]], axis=-1),
                                   axis=-1, dtype=acc), -1)  # fmt: skip
        left, right = left.astype(x.dtype, copy=False), right.astype(x.dtype, copy=False)
        others = r(r(left) * r(right)).reshape(moved.shape)
        others = xp.moveaxis(others, tuple(range(-len(axes), 0)), axes)
        return g * others


# PyTorch's CPU prod (ReduceOpsKernel.cpp, binary_kernel_reduce_vec) multiplies in the input's
# dtype, each product rounded to it (float16/bfloat16 too: its Vectorized ops convert to float32
# and back per product), in an order of its own. Along a dim that is contiguous in memory
# (vectorized_inner_reduction) it keeps 4 vectors of L lanes (L = 32 bytes / itemsize: the
# kernel is dispatched at AVX2 width even on AVX512 machines), multiplies each successive block
# of 4 L values into them, combines them as (a0 a1)(a2 a3), then its L lanes one after
# another, then the tail (n mod 4 L values) one at a time. Along any other dim each output is
# a sequential product. A product of all elements over 32,768 or more is split over the
# threads (two_pass_reduction): each thread's contiguous share in that order, then the shares'
# products in thread order. Reproduced here on NumPy arrays, bit for bit with torch 2.13.
_GRAIN = 32768  # at::internal::GRAIN_SIZE


def _vector_order_prod(x, axis, keepdims, low):
    """prod of a floating NumPy array over `axis` (None or a tuple) in PyTorch's CPU order
    (above); `low` (bfloat16) when x holds bfloat16 values in float32."""
    itemsize = 2 if low is not None else x.dtype.itemsize
    if low is None and itemsize >= 4 and _reduced_size(x.shape, axis) < 128 // itemsize:
        # fewer values than 4 vectors hold: PyTorch's product is sequential, and so is NumPy's
        return x.prod(axis=axis, keepdims=keepdims)
    if axis is None and low is None and itemsize >= 4 and x.size < _GRAIN and x.flags.c_contiguous:
        kernel = _prod_kernel()  # the common whole-tensor product: straight to the loop
        if kernel is not None:
            out = np.empty(1, x.dtype)
            kernel(x.reshape(1, -1), 32 // itemsize, out)
            return out.reshape((1,) * x.ndim if keepdims else ())
    if axis is None or builtins.all(x.shape[d] == 1 for d in range(x.ndim) if d not in axis):
        # one output: PyTorch's two-pass reduction over the memory order
        flat = x.ravel(order="K")  # the memory order (TensorIterator sorts dims by stride)
        out = _prod_split(flat, itemsize, low)
        axes = range(x.ndim) if axis is None else axis
        kept = [1 if d in axes else x.shape[d] for d in range(x.ndim)]  # all ones, or size-1
        return out.reshape(kept if keepdims else [k for d, k in enumerate(kept) if d not in axes])
    if len(axis) > 1:  # (torch.prod takes one dim; a sequential product of the flattened ones)
        rest = tuple(a for a in range(x.ndim) if a not in axis)
        moved = x.transpose(axis + rest).reshape((-1,) + tuple(x.shape[a] for a in rest))
        out = _seq_prod(moved, low)
    else:
        (a,) = axis
        others = [x.strides[d] for d in range(x.ndim) if d != a and x.shape[d] > 1]
        inner = x.shape[a] > 1 and x.strides[a] == x.itemsize and builtins.all(
            abs(s) > x.itemsize for s in others)
        if inner:
            rows = x if a == x.ndim - 1 else x.transpose([d for d in range(x.ndim) if d != a] + [a])
            out = _inner_prod(rows.reshape(-1, x.shape[a]), itemsize, low)  # (M, n) rows
            out = out.reshape(rows.shape[:-1])
        elif low is None and x.dtype.itemsize >= 4:
            out = x.prod(axis=a)  # NumPy's is sequential there, as PyTorch's outer loops
        else:
            out = _seq_prod(np.moveaxis(x, a, 0), low)
    return np.expand_dims(out, axis) if keepdims else out


def _rounder(low, dtype):
    if low is not None:
        return lambda v: v.astype(low).astype(dtype)
    return lambda v: v


def _seq_prod(a, low):
    """Sequential product along axis 0, each product rounded to a's dtype (or `low`)."""
    if low is None and a.dtype.itemsize >= 4:
        return np.multiply.reduce(a, axis=0)  # NumPy's float32/float64 reduce is sequential
    # float16: NumPy's reduce along a contiguous axis accumulates in float32; bfloat16 values
    # in float32 arrays round each product explicitly
    r = _rounder(low, a.dtype)
    out = np.ones(a.shape[1:], a.dtype)
    for row in a:
        out = r(out * row)
    return out


def _inner_prod(rows, itemsize, low):
    """(M, n) -> (M,) products along contiguous rows, in vectorized_inner_reduction's order."""
    lanes = 32 // itemsize
    if low is None and itemsize >= 4:  # float32/float64: one numba pass, the same bits
        kernel = _prod_kernel()
        if kernel is not None:
            out = np.empty(rows.shape[0], rows.dtype)
            kernel(np.ascontiguousarray(rows), lanes, out)
            return out
    width = 4 * lanes
    m, n = rows.shape
    count = n // width
    r = _rounder(low, rows.dtype)
    out = np.ones(m, rows.dtype)
    if count:
        blocks = rows[:, : count * width].reshape(m, count, 4, lanes)
        acc = _seq_prod(np.moveaxis(blocks, 1, 0), low)  # (M, 4, L)
        acc = r(r(acc[:, 0] * acc[:, 1]) * r(acc[:, 2] * acc[:, 3]))  # (M, L)
        out = _seq_prod(acc.T, low)
    if count * width < n:
        tail = np.concatenate([out[:, None], rows[:, count * width :]], axis=1)
        out = _seq_prod(np.ascontiguousarray(tail.T), low)
    return out


# "cpu": kernels.cpu (its on/off switch), "prod_rows": the loop, once imported; "threads"
_KERNELS = {}


def _prod_kernel():
    """kernels/_cpu_prod.prod_rows when the numba kernels are on, else None (the modules are
    looked up once: an import statement per call cost ~5 us)."""
    kcpu = _KERNELS.get("cpu")
    if kcpu is None:
        from ..kernels import cpu as kcpu  # noqa: PLC0415 - numba only when a kernel runs

        _KERNELS["cpu"] = kcpu
    if not kcpu.enabled():
        return None
    if "prod_rows" not in _KERNELS:
        from ..kernels._cpu_prod import prod_rows  # noqa: PLC0415

        _KERNELS["prod_rows"] = prod_rows
    return _KERNELS["prod_rows"]


def _num_threads() -> int:
    """runtime.get_num_threads(), with the BLAS's count (when set_num_threads was not called)
    asked once per process: threadpoolctl's answer takes ~1.3 ms, more than the product of
    32,768 values it decides the split of."""
    from .. import runtime  # noqa: PLC0415

    if runtime._state["threads"] is not None:
        return runtime._state["threads"]
    if "threads" not in _KERNELS:
        _KERNELS["threads"] = runtime.get_num_threads()
    return _KERNELS["threads"]


def _prod_split(flat, itemsize, low):
    """The product of a 1-D array as PyTorch's parallel_reduce takes it: one share per thread
    (two_pass_reduction) from _GRAIN elements on, combined in thread order."""
    n = flat.size
    threads = 1 if n < _GRAIN else builtins.min(_num_threads(), -(-n // _GRAIN))
    if threads <= 1:
        return _inner_prod(flat[None, :], itemsize, low)[0]
    chunk = -(-n // threads)
    parts = [_inner_prod(flat[None, i : i + chunk], itemsize, low) for i in range(0, n, chunk)]
    return _seq_prod(np.concatenate(parts)[:, None], low)[0]


def _prod_of_others(x: Tensor, axis) -> Tensor:
    """Differentiable prod_{j != i} x_j over `axis` for every i, exact when x has zeros.

    Used under create_graph only: it builds, for n reduced elements, an (n, n) matrix whose row i
    is x with x_i replaced by 1, and takes its product along the rows (O(n^2), no division).
    """
    nd = x.ndim
    axes = tuple(range(nd)) if axis is None else tuple(axis)
    rest = [d for d in range(nd) if d not in axes]
    perm = rest + list(axes)
    xt = permute(x, perm) if perm != list(range(nd)) else x
    lead = tuple(xt.shape[: len(rest)])
    # O(n^2) memory, fine for the small reductions that higher-order products of zeros meet; the
    # array path above is O(n).
    n = int(np.prod([x.shape[a] for a in axes]))
    flat = reshape(xt, lead + (1, n))  # (..., 1, n)
    xp = backend.get_array_module(x._data)
    eye = Tensor._wrap(xp.eye(n, dtype=bool))  # (n, n): row i marks the element left out
    others = prod(where(eye, 1.0, flat), -1)  # (..., n)
    others = reshape(others, xt.shape)
    if perm != list(range(nd)):
        others = permute(others, [int(i) for i in np.argsort(perm)])
    return others


class Max(Function):
    """d max(x) = 1 at the maximum; ties share the gradient equally (as torch.amax). With
    `evenly` (max(x)/min(x) of all elements, PyTorch's evenly_distribute_backward) a nan
    maximum's gradient is shared by the nans, and nothing else gets a nan."""

    # A known-zero gradient passes (PyTorch's formula multiplies it), except through max(x) /
    # min(x) of all elements: evenly_distribute_backward materializes it (grad / count)
    zero_passes = property(lambda self: not self.evenly)

    __slots__ = ("axis", "keepdims", "is_min", "evenly", "nan_wins")
    save_inputs = True
    save_output = True

    def forward(self, x):
        # (`_check_nonempty` has ruled out reducing over an empty axis; an empty tensor reduced
        # over its non-empty axes gives an empty result.)
        if self.is_min:
            return x.min(axis=self.axis, keepdims=self.keepdims)
        return x.max(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        shape = self.in_shapes[0]
        y = ops.expand_reduced(self.output(ops), shape, self.axis, self.keepdims)
        # Compare the input with the broadcast maximum: every tie is a winner, and the gradient is
        # shared equally among them (torch.amax's rule), so it still sums to gy.
        g = ops.expand_reduced(gy, shape, self.axis, self.keepdims)
        # Half precision: count and share in float32, as PyTorch (in float16 65,520 ties or
        # more count as inf, and every share was 0)
        wide = np.dtype(np.float32) if gy.dtype.itemsize == 2 else gy.dtype
        if self.evenly:
            won = (x == y) | ((x != x) & (y != y))
            share = ops.cast(g, wide) / ops.cast(won, wide).sum()
            return ops.where(won, ops.cast(share, gy.dtype), 0)
        # With `nan_wins` (the inf-norm, PyTorch's linalg_vector_norm_backward) a nan shares
        # the gradient as a tie does, so a row with a nan gets no nan from 0 / 0.
        mask = ops.cast((x == y) | ((x != x) & self.nan_wins), wide)
        count = mask.sum(axis=self.axis, keepdims=True)
        return ops.cast(ops.cast(g, wide) * mask / count, gy.dtype)


class Norm2(Function):
    """d/dx ||x||_2 = x / ||x|| (0 where the norm is 0, as PyTorch)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    __slots__ = ("axis", "keepdims", "bfloat16")
    save_inputs = True
    save_output = True
    # bfloat16 inputs (ops/bfloat16.py): the dispatch sets `bfloat16` to the dtype
    bfloat16_param = "bfloat16"

    def forward(self, x):
        xp = backend.get_array_module(x)
        axes = range(x.ndim) if self.axis is None else np.atleast_1d(self.axis)
        if x.ndim and x.size and builtins.all(x.shape[a] == 1 for a in axes):
            # One element per norm: |x| exactly, as PyTorch (x * x underflows to 0 for float32
            # |x| < 1e-23, and the gradient x / ||x|| would be 0 instead of sign(x)).
            return xp.abs(x).sum(axis=self.axis, keepdims=self.keepdims)
        if x.dtype.itemsize == 2:  # half precision: squares and sum in float32, as PyTorch (in
            # float16 a square above 65,504, or a sum of 70,000 ones, is inf)
            xf = x.astype(np.float32)
            return xp.sqrt((xf * xf).sum(axis=self.axis, keepdims=self.keepdims)).astype(x.dtype)
        return xp.sqrt((x * x).sum(axis=self.axis, keepdims=self.keepdims))

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        shape = self.in_shapes[0]
        y = ops.expand_reduced(self.output(ops), shape, self.axis, self.keepdims)
        g = ops.expand_reduced(gy, shape, self.axis, self.keepdims)
        # PyTorch's grad * (x / ||x||).masked_fill_(norm == 0, 0), in that order (as
        # vector_norm's, ops/linalg_norm.py): the subgradient 0 at the origin, no nan from the
        # division in either pass, and a nan or inf gy stays nan there (0 * inf; it gave 0).
        safe = ops.where(y == 0, 1, y)
        q = x / safe  # x / y first: exact 1 at one denormal x
        low = getattr(self, "bfloat16", None)
        if low is not None and not ops.is_graph:  # bfloat16 (float32 arrays): x / y rounded
            q = q.astype(low).astype(q.dtype)  # as PyTorch's bfloat16 division
        return g * ops.where(y == 0, 0, q)


_ACC = {2: np.float64, 4: np.float64}  # itemsize -> accumulation dtype (float16/32 in float64)


class CumSum(Function):
    """d/dx cumsum(x) = reverse cumulative sum of the gradient."""

    __slots__ = ("axis",)

    def forward(self, x):
        # C-ordered, as PyTorch's result (NumPy's scan keeps a transposed x's order, whose
        # view() then failed where PyTorch's works)
        return c_ordered(self._scan(x))

    def _scan(self, x):
        # Accumulated in float64 for the narrower floats and rounded once, as PyTorch's CPU
        # scan (its acc_type), whose sum starts at +0 (so a -0.0 input sums to +0.0: + 0).
        xp = backend.get_array_module(x)
        y = _cumsum_kernel(x, self.axis, False)
        if y is not None:
            return y
        if x.dtype == HALF:  # float16: PyTorch's acc_type is float32 (a float64 sum put
            # 2 in 5,000 values, and the backward's cancelling sums, a unit apart)
            return (xp.cumsum(x, self.axis, FLOAT) + FLOAT.type(0)).astype(x.dtype)
        if x.dtype.kind in "fV":
            return (xp.cumsum(x, self.axis, _ACC.get(x.dtype.itemsize)) + 0.0).astype(x.dtype)
        # integers in their own dtype (NumPy's uint8 cumsum is uint64; PyTorch's wraps in uint8)
        return xp.cumsum(x, axis=self.axis, dtype=x.dtype if x.dtype.kind in "iu" else None)

    def backward(self, gy, ops):
        # y_j = sum_{i<=j} x_i, so dx_i = sum_{j>=i} gy_j: a cumulative sum taken from the end.
        if not ops.is_graph:
            gx = _cumsum_kernel(gy, self.axis, True)  # in one pass, accumulated in float64
            if gx is not None:
                return gx
        return ops.flip(ops.cumsum(ops.flip(gy, self.axis), axis=self.axis), self.axis)


_SCAN_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _cumsum_kernel(x, axis: int, reverse: bool):
    """The cumulative sum along `axis` (from the end when reverse) by the numba scan
    (kernels._cpu_extra.cumsum_axis1: float64 accumulator, one pass; the forward's bits are
    NumPy's float64 cumsum rounded once), or None: not a NumPy float32/float64 array, or the
    kernels are off. cumsum of (256, 4096) forward + backward was 2.9x PyTorch's time in
    three passes and a float64 temporary each way (benchmarks/op_sweep.py)."""
    if type(x) is not np.ndarray or x.dtype not in _SCAN_DTYPES or not x.size:
        return None
    from ..kernels import cpu as _kcpu

    if not _kcpu.enabled():
        return None
    from ..kernels import _cpu_extra

    lead = int(np.prod(x.shape[:axis], dtype=np.int64))
    x3 = np.ascontiguousarray(x).reshape(lead, x.shape[axis], -1)  # (P, N, Q)
    # out in x's shape, written through its (P, N, Q) view: an array that owns its memory
    # (as a leaf's gradient, the engine copies a view whole; backend.owns_data)
    out = np.empty(x.shape, x3.dtype)
    _cpu_extra.cumsum_axis1(x3, out.reshape(x3.shape), reverse)
    return out


# ---------------------------------------------------------------------------------------------
# Public functions


def sum(x, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None, out=None) -> Tensor:
    """Sum over `axis` (all axes when None); `out=` as PyTorch's."""
    if getattr(x, "_nested_layout", False):  # torch.sum(nested, dim): descent.nested
        return x.sum(axis if dim is None else dim, bool(keepdim or keepdims), dtype=dtype)
    if out is not None:
        # PyTorch sums in out's dtype when no dtype is given (sum(x, out=long) is in int64);
        # a dtype= that is not out's raises, as there
        if dtype is not None and isinstance(out, Tensor) and as_dtype(dtype) != out._data.dtype:
            raise DescentError(
                f"sum: Expected out tensor to have dtype {as_dtype(dtype)}, but got "
                f"{out._data.dtype} instead (dtype= and out= disagree), as in PyTorch"
            )
        dtype = out.dtype if dtype is None and isinstance(out, Tensor) else dtype
        result = sum(x, axis, keepdims, dim=dim, keepdim=keepdim, dtype=dtype)
        return write_out(result, out, "sum")
    x, axis, keepdims = _prep(x, axis, keepdims, dim, keepdim, op="sum")
    # Summing bools counts them, in int64 (NumPy and PyTorch agree); no gradient can flow there.
    # Unsigned tensors sum in int64 too in PyTorch (NumPy's uint8 sum is uint64).
    if dtype is not None:
        x = cast(x, dtype)
        if x._data.dtype.kind == "b":  # sum(dtype=bool): PyTorch adds in bool (any nonzero)
            return cast(Sum.apply(x, axis=axis, keepdims=keepdims), np.bool_)
    elif x._data.dtype.kind in "bui":
        x = _as_int64(x)
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def _as_int64(x: Tensor) -> Tensor:
    """bool, unsigned and integer tensors narrower than 64 bits as int64 (uint64 too, wrapping):
    PyTorch's sum/prod/cumsum/cumprod dtype for them."""
    dt = x._data.dtype
    if dt.kind in "bu" or (dt.kind == "i" and dt.itemsize < 8):
        return cast(x, np.int64)
    return x


def mean(x, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None, out=None) -> Tensor:
    """Arithmetic mean over `axis`; `out=` as PyTorch's."""
    if getattr(x, "_nested_layout", False):  # torch.mean(nested, dim): descent.nested
        return x.mean(axis if dim is None else dim, bool(keepdim or keepdims), dtype=dtype)
    if out is not None:
        if dtype is None and isinstance(x, Tensor) and isinstance(out, Tensor):
            x = _mean_in_out_dtype(x, out._data.dtype)
        result = mean(x, axis, keepdims, dim=dim, keepdim=keepdim, dtype=dtype)
        return write_out(result, out, "mean")
    # the dtype checks come before the dims', as PyTorch's
    x = as_tensor(x)
    if dtype is not None:
        x = cast(x, dtype)
        if x._data.dtype.kind not in "fcV":
            raise DtypeError(
                f"mean(): could not infer output dtype. Optional dtype must be either a floating "
                f"point or complex dtype, got {x.dtype}; pass dtype=descent.float32"
            )
    elif x._data.dtype.kind not in "fcV":
        raise DtypeError(
            f"mean of an integer tensor (dtype {x.dtype}): convert first with .float() or pass "
            "dtype=descent.float32"
        )
    x, axis, keepdims = _prep(x, axis, keepdims, dim, keepdim, op="mean")
    return Mean.apply(x, axis=axis, keepdims=keepdims)


def _mean_in_out_dtype(x: Tensor, odt) -> Tensor:
    """PyTorch's mean(x, out=o) sums in o's dtype (float32 for a float16 or bfloat16 o) and
    divides there (mean_out: sum_out(o, x, dtype).div_(n)): a floating x is cast to that dtype
    first, so a float16 x into a float64 out is not rounded to float16 on the way; a complex x
    too (complex64 into a complex128 out sums in complex128; into a real out its real part,
    with PyTorch's warning that the cast discards the imaginary part)."""
    xdt = x._data.dtype
    if xdt.kind not in "fVc" or odt.kind not in "fVc":
        return x  # (an integer x or out: mean's own errors)
    cdt = np.dtype(np.float32) if odt == HALF or odt.kind == "V" else odt
    if xdt.kind == "c" and cdt.kind != "c":
        warnings.warn("Casting complex values to real discards the imaginary part", UserWarning,
                      stacklevel=user_stacklevel())  # fmt: skip
    return x if cdt == xdt else cast(x, cdt)


@amp._float32_op  # on PyTorch's autocast float32 list
def prod(x, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None) -> Tensor:
    """Product over `axis` (all axes when None); `dtype` casts first (torch.prod's dtype=);
    bool and unsigned tensors multiply in int64, as in PyTorch."""
    x, axis, keepdims = _prep(x, axis, keepdims, dim, keepdim, op="prod")
    x = cast(x, dtype) if dtype is not None else _as_int64(x)
    if x._data.dtype == np.bool_:  # dtype=bool: a bool product (logical and), as PyTorch's
        return all(x, axis, keepdims)
    return Prod.apply(x, axis=axis, keepdims=keepdims)


def amax(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Maximum values over `axis` (an int, a tuple, or None for all); ties share the gradient."""
    _empty_dims_first("amax", x, dim if dim is not None else axis)
    x, axis, keepdims = _prep(x, axis, keepdims, dim, keepdim, op="amax")
    _check_nonempty("amax", x, axis)
    return Max.apply(x, axis=axis, keepdims=keepdims, is_min=False, evenly=False, nan_wins=False)


def amin(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Minimum values over `axis` (an int, a tuple, or None for all); ties share the gradient."""
    _empty_dims_first("amin", x, dim if dim is not None else axis)
    x, axis, keepdims = _prep(x, axis, keepdims, dim, keepdim, op="amin")
    _check_nonempty("amin", x, axis)
    return Max.apply(x, axis=axis, keepdims=keepdims, is_min=True, evenly=False, nan_wins=False)


def _empty_dims_first(name, x, dims) -> None:
    """amax/amin of an empty tensor over a list of dims: PyTorch checks each dim's size as it
    goes through the list, so an empty dim raises its IndexError before a later dim's range
    error or a repeated dim's error (amax(empty 1-d, (0, -1)))."""
    if not isinstance(dims, (tuple, list)) or len(dims) < 2 or not isinstance(x, Tensor):
        return
    shape = x._data.shape
    if x._data.size:
        return
    for a in dims:
        if not isinstance(a, int) or not -len(shape) <= a < len(shape):
            return  # (_prep's range error)
        if shape[a] == 0:
            raise IndexError(
                f"{name}(): Expected reduction dim {a} to have non-zero size (shape "
                f"{tuple(shape)}), as in PyTorch"
            )


def _check_nonempty(name, x, axis):
    """PyTorch's errors for a maximum of nothing (an empty tensor reduced over its non-empty
    axes is fine: the result is empty), and for one of complex numbers (no order; checked
    after the empty dims, as PyTorch: an empty complex dim is its IndexError)."""
    if axis is None and x._data.size == 0:
        raise RuntimeError(
            f"{name}(): the tensor of shape {tuple(x.shape)} is empty; a maximum/minimum of "
            "nothing is undefined. Specify the reduction dim (one of non-zero size)"
        )
    for a in axis or ():
        if x.shape[a] == 0:
            raise IndexError(
                f"{name}(): expected reduction dim {a} to have non-zero size (shape "
                f"{tuple(x.shape)})"
            )
    if x._data.size:  # (an empty result of an empty complex tensor is returned)
        refuse_kinds(name, x, "c", "compare .abs() or .real instead")


# torch.return_types.max / .min: `values, indices = x.max(dim)`.
MaxResult = return_type("max", ["values", "indices"])
MinResult = return_type("min", ["values", "indices"])


def max(x, axis=None, keepdims=False, *, dim=None, keepdim=None, out=None, other=None):
    """PyTorch's max, three functions under one name (PyTorch's meaning wins over NumPy's):

    * `max(x)`: the largest value, a 0-d tensor;
    * `max(x, dim, keepdim=False)`: the named tuple `(values, indices)` along `dim` (an int);
      the gradient goes to the element at `indices`, as in PyTorch;
    * `max(x, other)`: the elementwise maximum of two tensors (`maximum`).

    A tuple of dims reduces like `amax` (values only). `axis`/`keepdims` are accepted as
    aliases of `dim`/`keepdim`; `other=` by keyword is the elementwise form (PyTorch's).
    """
    if other is not None:
        axis = other
    return _max_or_min(x, axis, keepdims, dim, keepdim, out, is_min=False)


def min(x, axis=None, keepdims=False, *, dim=None, keepdim=None, out=None, other=None):
    """PyTorch's min: `min(x)` (0-d), `min(x, dim)` -> `(values, indices)`, `min(x, other)`
    (elementwise minimum, also `other=`); see `max`."""
    if other is not None:
        axis = other
    return _max_or_min(x, axis, keepdims, dim, keepdim, out, is_min=True)


def _max_or_min(x, axis, keepdims, dim, keepdim, out, is_min: bool):
    if out is not None:  # PyTorch's out=: a tuple (values, indices) for max(x, dim)
        result = _max_or_min(x, axis, keepdims, dim, keepdim, None, is_min)
        name = "min" if is_min else "max"
        if isinstance(result, tuple):
            return write_outs(result, out, name, same_dtype=True)
        return write_out(result, out, name)
    if isinstance(axis, Tensor) or isinstance(dim, Tensor):  # max(a, b): elementwise
        other = axis if isinstance(axis, Tensor) else dim
        return minimum(x, other) if is_min else maximum(x, other)
    a = axis_arg(axis, dim)
    if a is None:  # max(x): one value; a nan maximum's gradient goes to the nans (PyTorch)
        x, axes, keep = _prep(x, None, keepdims, None, keepdim, op="min" if is_min else "max")
        _check_nonempty("min" if is_min else "max", x, axes)
        return Max.apply(x, axis=axes, keepdims=keep, is_min=is_min, evenly=True, nan_wins=False)
    if isinstance(a, (tuple, list)):
        reduce_values = amin if is_min else amax
        return reduce_values(x, a, keepdims, keepdim=keepdim)
    x = as_tensor(x)
    keep = keepdims_arg(keepdims, keepdim)
    name = "min" if is_min else "max"
    if x.ndim == 0:  # PyTorch allows dim 0 / -1 on a 0-d tensor: the value and index 0
        refuse_kinds(name, x, "c", "compare .abs() or .real instead")
        if int(a) not in (0, -1):
            raise IndexError(
                f"{name}: dimension out of range (expected to be in range of [-1, 0], but got {a})"
            )
        zero = Tensor._wrap(backend.get_array_module(x._data).zeros((), dtype=np.int64))
        # (MaxBackward0 saves the index 0 even here: a second backward raises)
        value = saved_clone(x, "MinBackward0" if is_min else "MaxBackward0")
        return (MinResult if is_min else MaxResult)(value, zero)
    if not -x.ndim <= int(a) < x.ndim:
        raise IndexError(
            f"{name}: dimension out of range (expected to be in range of [{-x.ndim}, "
            f"{x.ndim - 1}], but got {a})"
        )
    a = int(a) % x.ndim
    if x.shape[a] == 0:
        raise IndexError(
            f"{name}(): cannot reduce over dimension {a} of shape {tuple(x.shape)}: it has size 0"
        )
    refuse_kinds(name, x, "c", "compare .abs() or .real instead")  # (after the empty dim)
    idx = _arg(x, a, True, None, None, "argmin" if is_min else "argmax")  # keepdim: (.., 1, ..)
    # the gradient flows to idx only, as in PyTorch
    values = (MinDim if is_min else MaxDim).apply(x, idx=idx._data, axis=a, keep=bool(keep))
    if not keep:
        idx = squeeze(idx, a)
    return (MinResult if is_min else MaxResult)(values, idx)


class MaxDim(SelectedValues):
    """max(x, dim).values: the values at argmax's indices (PyTorch's MaxBackward0)."""

    __slots__ = ()


class MinDim(SelectedValues):
    """min(x, dim).values: the values at argmin's indices (PyTorch's MinBackward0)."""

    __slots__ = ()


def _arg(x, axis, keepdims, dim, keepdim, name):
    x = as_tensor(x)
    axis = axis_arg(axis, dim)
    keepdims = keepdims_arg(keepdims, keepdim)
    if axis is not None:  # an out-of-range dim: PyTorch's IndexError, naming the op
        axis = normalize_axis(axis, x.ndim, name)[0]
    if x._data.size == 0:  # PyTorch's errors (NumPy raises a ValueError)
        if axis is None:
            raise IndexError(
                f"{name}(): the tensor of shape {tuple(x.shape)} is empty; specify the "
                "reduction dim (one of non-zero size)"
            )
        a = normalize_axis(axis, x.ndim, name)[0]
        if x.ndim and x.shape[a] == 0:
            raise IndexError(
                f"{name}(): expected reduction dim {a} to have non-zero size (shape "
                f"{tuple(x.shape)})"
            )
    axis = None if axis is None else int(axis)
    out = Tensor._wrap(_arg_kernel(x._data, name, axis, keepdims))
    return seen(_arg_kernel, (x,), (name, axis, keepdims), out)  # (descent.compile records it)


def _arg_kernel(a, name, axis, keepdims):
    """argmax/argmin's int64 indices of an array (ops/untracked.py)."""
    xp = backend.get_array_module(a)
    fn = getattr(xp, name)
    if axis is None:
        out = fn(a.reshape(-1))
        if keepdims:
            out = out.reshape((1,) * a.ndim)
    else:
        out = fn(a, axis=axis, keepdims=keepdims)
    return xp.asarray(out, dtype=np.int64)


def argmax(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Indices (int64) of the maxima; over the flattened tensor when axis is None."""
    return _arg(_no_bool(x, "argmax"), axis, keepdims, dim, keepdim, "argmax")


def argmin(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    return _arg(_no_bool(x, "argmin"), axis, keepdims, dim, keepdim, "argmin")


def _no_bool(x, name: str) -> Tensor:
    """PyTorch's argmax/argmin refuse bool input (max(x, dim) accepts it)."""
    x = as_tensor(x)
    refuse_kinds(name, x, "c", "compare .real or .abs() instead")  # PyTorch's RuntimeError
    if x._data.dtype.kind == "b":
        raise DescentError(
            f"{name}(): bool input (shape {tuple(x.shape)}) is not supported, as in PyTorch; "
            f"convert with .int() first, or use max/min(x, dim).indices"
        )
    return x


def norm(x, ord="fro", axis=None, keepdims=False, *, dim=None, keepdim=None, p=None,
         dtype=None) -> Tensor:  # fmt: skip
    """Vector p-norm over `axis` (all entries when None or (), as PyTorch, where NumPy's () is
    none): ord 'fro' / 2 (default), 1, inf, 0 (the count of nonzeros) or any p > 0; `p=` is
    PyTorch's name for `ord`. Floating tensors only, as in PyTorch. As torch.norm, 'fro' over
    more than two dims is a matrix norm's error, and `dtype` computes in that dtype
    (torch.linalg.vector_norm's, or matrix_norm's for 'nuc')."""
    ord, whole = ord if p is None else p, axis_arg(axis, dim) in (None, (), [])
    if isinstance(ord, str) and ord == "nuc":  # torch.norm(x, p='nuc'): the nuclear norm
        from ..linalg import matrix_norm  # noqa: PLC0415 - linalg builds on ops; a rare branch

        d = (-2, -1) if whole else axis_arg(axis, dim)
        return matrix_norm(x, "nuc", dim=d, keepdim=keepdims_arg(keepdims, keepdim),
                           dtype=dtype)  # fmt: skip
    if isinstance(ord, str) and ord == "fro" and not whole:
        d = axis_arg(axis, dim)
        if not isinstance(d, int) and len(d) > 2:  # PyTorch's torch.norm: matrix_norm then
            x = as_tensor(x)
            if x.ndim < 2:
                raise DescentError(
                    "linalg.matrix_norm: The input tensor A must have at least 2 dimensions "
                    f"(torch.norm with p='fro' over dims {tuple(d)}, shape {tuple(x.shape)})"
                )
            raise DescentError(
                f"linalg.matrix_norm: dim must be a 2-tuple. Got {' '.join(map(str, d))} "
                "(torch.norm's 'fro' over more than two dims; pass p=2 for the vector norm)"
            )
    if dtype is not None:  # torch.norm's dtype: linalg.vector_norm's cast and checks
        from .linalg_norm import vector_norm  # noqa: PLC0415 - linalg_norm imports this module

        return vector_norm(x, 2 if ord in ("fro", None) else ord,
                           None if whole else axis_arg(axis, dim),
                           keepdims_arg(keepdims, keepdim), dtype=dtype)  # fmt: skip
    axes = None if whole else axis_arg(axis, dim)
    x = as_tensor(x)
    if x._data.dtype.kind not in "fVc":  # (checked before the dims, as PyTorch)
        raise DescentError(
            f"norm: expected a floating point tensor, got {x._data.dtype} (shape "
            f"{tuple(x.shape)}), as PyTorch (linalg.vector_norm: Expected a floating point or "
            "complex tensor as input); convert first with .float()"
        )
    x, axes, keepdims = _prep(x, axes, keepdims, None, keepdim, op="norm")
    if x._data.dtype.kind == "c":  # the norm of the moduli (a real result, as PyTorch)
        return norm(_abs(x), ord, None if whole else axes, keepdims)
    if x.ndim == 0 and whole:  # |x| exactly, as a vector's (PyTorch's norm of a 0-d tensor
        return norm(reshape(x, (1,)), ord)  # computes the power if a dim is named; 0-d already)
    # The 2-norm has its own op (a safe gradient at 0); 0, 1 and inf are composites of abs.
    if ord in (2, "fro", None):
        return Norm2.apply(x, axis=axes, keepdims=keepdims)
    if ord == 0:
        # The count of nonzero entries (a nan counts, as PyTorch's x != 0): piecewise constant;
        # the result requires grad but sends none back (PyTorch's undefined gradient: x.grad
        # stays None, and no 0 * inf reaches the ops before it).
        # (the count is data: `computed` lets descent.compile replay it, ops/untracked.py)
        count = computed(_count_nonzero_as, (x,), (axes, keepdims))._data
        return EvenlyShared.apply(x, value=count, mask=None)
    if ord == 1:
        return sum(_abs(x), axes, keepdims)
    if ord in (np.inf, float("inf"), "inf"):
        if x._data.size == 0:
            if 0 in [x.shape[i] for i in (range(x.ndim) if axes is None else axes)]:
                raise DescentError(  # no identity: PyTorch's linalg.vector_norm error
                    f"linalg.vector_norm cannot compute the inf norm on an empty dimension "
                    f"(shape {tuple(x.shape)}, dims {axes}) because the operation does not "
                    "have an identity"
                )
            return max(_abs(x), axes, keepdims)
        return Max.apply(_abs(x), axis=axes, keepdims=keepdims, is_min=False, evenly=False,
                         nan_wins=True)  # fmt: skip
    # Any other p: one node with PyTorch's value (|x| for one element) and norm_backward.
    axes = tuple(range(x.ndim)) if axes is None else axes
    if float(ord) < 0 and 0 in [x.shape[i] for i in axes]:  # (`any` is the reduction here)
        # a negative p is a power mean of 1/|x|^p: no identity (PyTorch's linalg.vector_norm)
        raise DescentError(
            f"linalg.vector_norm cannot compute the {ord} norm on an empty tensor (shape "
            f"{tuple(x.shape)}) because the operation does not have an identity"
        )
    return VectorNorm.apply(x, ord=float(ord), axis=axes, keepdims=keepdims)


def cumsum(x, axis=None, *, dim=None, dtype=None) -> Tensor:
    """Cumulative sum along `axis` (flattened when None); `dtype` casts first (torch.cumsum's
    dtype=); bool and unsigned tensors accumulate in int64, as in PyTorch."""
    x0 = x = as_tensor(x)
    if dtype is not None:
        _refuse_bool_scan(x, dtype, "cumsum")
    x = cast(x, dtype) if dtype is not None else _as_int64(x)
    axis = axis_arg(axis, dim)
    if x._data.dtype == np.bool_:  # a 0-d or empty x to bool (_refuse_bool_scan): PyTorch's
        normalize_axis(0 if axis is None else axis, x.ndim, "cumsum")  # copy, no kernel
        y = x if axis is not None else reshape(x, -1)
        return clone(y) if y is x0 else y
    # NumPy's rule: no axis means the flattened tensor.
    if axis is None:
        return CumSum.apply(reshape(x, -1), axis=0)
    if x.ndim == 0:  # dim 0 / -1 of a 0-d tensor: a copy of the value (-0.0 stays), as PyTorch
        normalize_axis(axis, 0, "cumsum")
        return clone(x) if x is x0 else x
    return CumSum.apply(x, axis=normalize_axis(axis, x.ndim, "cumsum")[0])


# A pair of reductions under PyTorch's name (torch.aminmax; var_mean and std_mean: ops/variance.py).
AminmaxResult = return_type("aminmax", ["min", "max"])


def aminmax(x, *, dim=None, keepdim=False):
    """(min, max) over `dim` (all elements when None), as torch.aminmax; ties share the
    gradient as amin/amax do."""
    out = AminmaxResult(amin(x, dim, keepdim), amax(x, dim, keepdim))
    if isinstance(x, Tensor):  # PyTorch's one AminmaxBackward0, shared by both results
        show_pieces(out, "AminmaxBackward0", x)
    return out


def count_nonzero(x, dim=None, *, axis=None) -> Tensor:
    """The number of nonzero elements over `dim` (int64; no gradient)."""
    x, d, _ = _prep(x, axis, False, dim, None, op="count_nonzero")
    return computed(_count_nonzero, (x,), (d,))  # (descent.compile records it: untracked.py)


def _count_nonzero_as(a, axes, keepdims: bool):
    """norm(p=0)'s count of nonzero entries over axes, in a's dtype."""
    return (a != 0).sum(axis=axes, keepdims=keepdims).astype(a.dtype)


def _count_nonzero(a, d):
    """count_nonzero's int64 counts of an array over d."""
    xp = backend.get_array_module(a)
    return xp.asarray(xp.count_nonzero(a, axis=d), dtype=np.int64)


# Logical reductions: bool results, no gradient, so the arrays are wrapped without a node.
def all(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """True where every element over `axis` (all axes when None) is nonzero (bool tensor)."""
    none = (dim if dim is not None else axis) in ((), [])  # over no dims: elementwise, as torch
    x, axis, keepdims = _prep(x, axis, keepdims, dim, keepdim, op="all")
    axis = () if none else axis
    return computed(_logical_reduce, (x,), ("all", axis, keepdims))  # (see ops/untracked.py)


def any(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """True where some element over `axis` (all axes when None) is nonzero (bool tensor)."""
    none = (dim if dim is not None else axis) in ((), [])  # over no dims: elementwise, as torch
    x, axis, keepdims = _prep(x, axis, keepdims, dim, keepdim, op="any")
    axis = () if none else axis
    return computed(_logical_reduce, (x,), ("any", axis, keepdims))  # (see ops/untracked.py)


def _logical_reduce(a, name: str, axis, keepdims: bool):
    """all/any of an array over axis (`name`: "all" or "any")."""
    xp = backend.get_array_module(a)
    out = xp.asarray(getattr(xp, name)(a, axis=axis, keepdims=keepdims))
    # PyTorch keeps uint8 for a uint8 input (its pre-bool mask dtype); any other dtype gives bool
    return out.astype(np.uint8) if a.dtype == np.uint8 else out


_SOFTMAX_NAMES = ("softmax", "log_softmax", "logsumexp", "Softmax", "LogSoftmax", "LogSumExp")
_VARIANCE_NAMES = ("var", "std", "var_mean", "std_mean", "Var", "_var_args", "_var_complex",
                   "_check_floating_var")  # fmt: skip


def __getattr__(name: str):
    # softmax, log_softmax, logsumexp and their ops moved to ops/softmax.py, var, std and their
    # pairs to ops/variance.py (both import this module, so they are fetched on first use):
    # descent.ops.reduce.softmax and descent.ops.reduce.var keep working.
    if name in _SOFTMAX_NAMES:
        from . import softmax as _softmax  # noqa: PLC0415

        return getattr(_softmax, name)
    if name in _VARIANCE_NAMES:
        from . import variance as _variance  # noqa: PLC0415

        return getattr(_variance, name)
    raise AttributeError(f"module 'descent.ops.reduce' has no attribute {name!r}")
