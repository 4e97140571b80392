"""Cumulative ops along one dimension: cumprod, cummax / cummin, logcumsumexp (cumsum lives in
reduce.py with the sums).

cummax / cummin are compositions: their running-extreme indices are computed on the arrays
(piecewise constant) and the values gathered with `take_along_axis`, so the gradient goes to
the element each output copies, as in PyTorch. cumprod and logcumsumexp are ops of their own,
with exact backward passes (cumprod with zeros in the input, logcumsumexp without overflow).
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import Function
from ..errors import DtypeError
from ..grad_fn import show_as
from ..tensor import Tensor
from ..tensor import as_dtype as _as_dtype
from ._common import (
    as_tensor,
    axis_arg,
    c_ordered,
    conj_if_complex,
    holomorphic,
    normalize_axis,
    refuse_kinds,
    return_type,
)
from .elementwise import cast, clone, saved_clone
from .indexing import take_along_axis
from .math import log_add_exp_complex
from .shape import reshape
from .untracked import computed

# torch.return_types.cummax / .cummin: `values, indices = x.cummax(0)`.
CummaxResult = return_type("cummax", ["values", "indices"])
CumminResult = return_type("cummin", ["values", "indices"])


def _scan_axis(x: Tensor, dim, name: str) -> int:
    if dim is None:
        raise TypeError(f"{name}: pass the dimension to scan along (dim=)")
    return normalize_axis(dim, x.ndim, name)[0]


def _upper(xp, n):
    """(n, n) bool: True where i <= j (output j depends on input i)."""
    return xp.triu(xp.ones((n, n), dtype=bool))


def _rev_cumsum(g, ax, ops):
    """sum_{j >= i} g_j along ax: a cumulative sum from the end (accumulated in float64 for
    the narrower floats on arrays, as PyTorch's CPU cumsum)."""
    if ops.is_graph:
        return ops.flip(ops.cumsum(ops.flip(g, ax), ax), ax)
    xp = backend.get_array_module(g)
    r = xp.flip(xp.cumsum(xp.flip(g, ax), axis=ax, dtype=_acc(g.dtype)), ax)
    return r.astype(g.dtype, copy=False)


def _flip_cumsum(w, ax):
    """sum_{j >= i} w_j along ax on arrays, accumulated in w's dtype (float32 for bfloat16)."""
    xp = backend.get_array_module(w)
    return xp.flip(xp.cumsum(xp.flip(w, ax), axis=ax), ax)


def _acc(dtype):
    """The accumulation dtype of a scan (PyTorch's CPU acc_type): float32 for float16 and
    bfloat16, float64 for float32 (the result is cast back), the dtype itself otherwise
    (NumPy's uint8 cumprod would be uint64; PyTorch's wraps in uint8); bool as NumPy's."""
    if dtype.kind in "fV" and dtype.itemsize < 8:
        return np.float32 if dtype.itemsize == 2 else np.float64
    return None if dtype.kind == "b" else dtype


# ---------------------------------------------------------------------------------------------
# cumprod


@holomorphic  # complex: gy * conj(d cumprod / dx)
class CumProd(Function):
    """y_j = prod_{i<=j} x_i; dx_i = sum_{j>=i} gy_j prod_{k<=j, k!=i} x_k.

    Without zeros that is rev_cumsum(gy * y)_i / x_i (O(n)). With a zero on the axis, the
    products that leave x_i out are formed directly, as cumprods of x with x_i replaced by 1
    (O(n^2) along the axis, no division), exact to every order."""

    __slots__ = ("axis", "low")
    save_inputs = True
    save_output = True
    # bfloat16 inputs (ops/bfloat16.py): the dispatch sets `low` to the dtype (the forward
    # accumulates in float32 for it, and backward rounds where PyTorch's formula does)
    bfloat16_param = "low"

    @property
    def zero_passes(self) -> bool:
        """A known-zero gradient passes for one element (or none): PyTorch's cumprod_backward
        returns grad itself there, so sgn's zero tensor reaches the ops before it
        (`(x * -inf).cumprod(0).sgn()` of a 0-d x: x.grad 0, not 0 * inf)."""
        return math.prod(self.in_shapes[0]) <= 1

    def forward(self, x):
        # C-ordered, as PyTorch's result (see CumSum)
        return c_ordered(self._scan(x))

    def _scan(self, x):
        # Accumulated in PyTorch's CPU acc_type and rounded once per output: float64 for
        # float32 (a product that passes through a float32 overflow or underflow comes back),
        # float32 for float16 and bfloat16 (whose values come here in float32 arrays).
        if getattr(self, "low", None) is not None:
            return backend.get_array_module(x).cumprod(x, axis=self.axis, dtype=np.float32)
        y = _scan_kernel("cumprod_axis1", x, self.axis)
        if y is not None:
            return y
        y = backend.get_array_module(x).cumprod(x, axis=self.axis, dtype=_acc(x.dtype))
        return y.astype(x.dtype, copy=False) if x.dtype.kind in "fV" else y

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        ax = self.axis
        xd = x._data if ops.is_graph else x
        if xd.shape[ax] == 1:  # y = x along the axis (PyTorch returns gy as it is)
            return gy
        if not (xd == 0).any():
            low = getattr(self, "low", None)
            if low is not None and not ops.is_graph:
                # bfloat16: PyTorch's reversed_cumsum(y gy) / x as bfloat16 ops, each rounded
                # (the sum in float32, each output rounded)
                def r(a):
                    return a.astype(low).astype(np.float32)

                w = r(gy * self.output(ops))
                return r(r(_flip_cumsum(w, ax)) / x)
            if not ops.is_graph:
                gx = _scan_kernel("cumprod_backward_axis1", x, ax, self.output(ops), gy)
                if gx is not None:  # the formula below in one pass
                    return gx
            # sum over j >= i: a cumulative sum taken from the end (in float64 for float32, as
            # PyTorch's CPU cumsum)
            return _rev_cumsum(gy * self.output(ops), ax, ops) / x
        xp = backend.get_array_module(xd)
        if ops.is_graph:  # differentiable again: the exact products (PyTorch's O(n^2) too)
            n = xd.shape[ax]
            eye = xp.eye(n, dtype=bool)  # (n_i, n_k): the element left out of row i
            xs, gs = ops.swapaxes(x, ax, -1), ops.swapaxes(gy, ax, -1)  # (..., n)
            # rows[..., i, k] = x_k, or 1 at k = i; its cumprod along k is
            # prod_{k<=j, k!=i} x_k.
            rows = ops.where(eye, 1, ops.expand_dims(xs, -2))  # (..., n_i, n_k)
            others = cumprod(rows, -1)
            w = ops.where(_upper(xp, n), others * ops.expand_dims(gs, -2), 0)  # j >= i only
            return ops.swapaxes(w.sum(axis=-1), ax, -1)
        # PyTorch's first-order split (cumprod_backward): before the first zero z of a slice the
        # division formula; at z, y_{z-1} (1 at z = 0) times sum_{z <= j < z2} gy_j
        # prod_{z < i <= j} x_i, up to the second zero z2 (the terms from it on are 0); exactly
        # 0 after it. PyTorch's order: the prefix multiplies the sum (an inf prefix times
        # gy_z + gy_{z+1} x_{z+1} is inf, where inf * gy_z + inf * gy_{z+1} x_{z+1} was nan).
        # O(n) (all n rows of the (n, n) form took 32 GiB for 256 x 4096 with a zero per
        # row). The products in float64 for the narrower floats, as the forward.
        # bfloat16 (float32 arrays): each of PyTorch's ops rounded to bfloat16, as its kernels
        low = getattr(self, "low", None)

        def r(a):
            return a if low is None else a.astype(low).astype(np.float32)

        acc = np.float32 if low is not None else _acc(x.dtype)
        zero = xd == 0
        nz = xp.cumsum(zero, axis=ax)
        first = zero & (nz == 1)
        mid = (nz == 1) & ~first  # z < j < z2
        after = r(xp.cumprod(xp.where(mid, x, 1), axis=ax, dtype=acc).astype(x.dtype))
        terms = r(after * xp.where(nz == 1, gy, 0))
        z = xp.expand_dims(xp.argmax(first, axis=ax), ax)  # 0 where the slice has no zero
        y = self.output(ops)
        prefix = xp.where(z == 0, 1, xp.take_along_axis(y, xp.maximum(z - 1, 0), axis=ax))
        total = r(terms.sum(axis=ax, keepdims=True))
        exact = xp.squeeze(r(total * prefix.astype(x.dtype)), ax)
        before = nz == 0
        wb = xp.where(before, r(gy * self.output(ops)), 0)
        rev = r(_flip_cumsum(wb, ax)) if low is not None else _rev_cumsum(wb, ax, ops)
        g_before = r(rev / xp.where(before, x, 1))
        return xp.where(before, g_before, xp.where(first, xp.expand_dims(exact, ax), 0))


def _scan_kernel(name, x, axis, *more):
    """kernels/_cpu_misc.<name>(x, *more, out) along `axis` for NumPy float32/float64 arrays of
    one dtype, the result in a new array of x's shape; None when the kernels are off or the
    arrays do not qualify (then the NumPy formula runs; both give the same bits)."""
    arrays = (x, *more)
    if any(type(a) is not np.ndarray or a.dtype != x.dtype or a.shape != x.shape
           for a in arrays) or x.dtype not in _KERNEL_DTYPES[:2] or not x.size:  # fmt: skip
        return None
    from ..kernels import cpu as _kcpu  # noqa: PLC0415 - numba only when a kernel runs

    if not _kcpu.enabled():
        return None
    from ..kernels import _cpu_misc  # noqa: PLC0415

    lead = int(np.prod(x.shape[:axis], dtype=np.int64))
    shape3 = (lead, x.shape[axis], -1)  # (P, N, Q): the scan along N
    out = np.empty(x.shape, x.dtype)
    getattr(_cpu_misc, name)(*(np.ascontiguousarray(a).reshape(shape3) for a in arrays),
                             out.reshape(shape3))  # fmt: skip
    return out


def _refuse_bool_scan(x, dtype, op: str) -> None:
    """cumsum / cumprod with dtype=bool: PyTorch has no bool scan kernel ("cumsum_out_cpu" not
    implemented for 'Bool'); descent summed in int64 (cumsum) or in bool. A 0-d or empty x
    never reaches its kernel (a copy cast to bool, an empty result): no refusal there."""
    if np.dtype(_as_dtype(dtype)) == np.bool_ and x.ndim and x._data.size:
        raise DtypeError(
            f"{op}: not implemented for dtype=bool (input {x.dtype} of shape {tuple(x.shape)}), "
            f"as in PyTorch; scan in an integer dtype and compare with != 0"
        )


def cumprod(x, dim=None, *, axis=None, dtype=None) -> Tensor:
    """Cumulative product along `dim` (torch.cumprod); exact gradient with zeros."""
    x0 = x = as_tensor(x)
    if dtype is not None:
        _refuse_bool_scan(x, dtype, "cumprod")
        x = cast(x, dtype)
    elif x._data.dtype.kind in "iu" and x._data.dtype.itemsize < 8:
        x = cast(x, np.int64)  # narrower integers multiply in int64, as in PyTorch
    dim = axis_arg(axis, dim)
    if x._data.dtype == np.bool_ and dtype is not None:  # a 0-d or empty x to bool
        normalize_axis(0 if dim is None else dim, x.ndim, "cumprod")  # (_refuse_bool_scan):
        return x if x is not x0 else x.clone()  # PyTorch's copy, no kernel
    if x.ndim == 0:  # dim 0 / -1 of a 0-d tensor: the value itself
        normalize_axis(0 if dim is None else dim, 0, "cumprod")
        return reshape(CumProd.apply(reshape(x, 1), axis=0), ())
    return CumProd.apply(x, axis=_scan_axis(x, dim, "cumprod"))


# ---------------------------------------------------------------------------------------------
# cummax / cummin


def _running_index_of(a, axis, is_min):
    """`_running_index` of an array (bool counted as int8), on its own device."""
    if a.dtype == np.bool_:
        a = a.astype(np.int8)
    # C-ordered: PyTorch's cummax / cummin return contiguous values and indices whatever the
    # input's layout (the values gather along this index and take its order)
    return c_ordered(_running_index(a, axis, is_min, backend.get_array_module(a)))


def _running_index(a, axis, is_min, xp):
    """Index of the running maximum (minimum) along `axis`: the latest position holding it (ties
    go to the later element, PyTorch's rule); NaN propagates and keeps its index.

    Computed with NumPy on the host (CuPy has no ufunc.accumulate but cumsum/cumprod), then
    moved to `a`'s device: an index is data, computed once per call."""
    out_xp, xp, a = xp, np, backend.as_numpy(a)
    idx = _running_index_kernel(a, axis, is_min)
    if idx is not None:
        return out_xp.asarray(idx)
    run = (xp.minimum if is_min else xp.maximum).accumulate(a, axis=axis)
    shape = [1] * a.ndim
    shape[axis] = a.shape[axis]
    pos = xp.arange(a.shape[axis]).reshape(shape)
    # PyTorch's scan: element j takes over when x_j >= the running max (<= for min) or is NaN;
    # after a NaN the running value is NaN, which only another NaN takes over from.
    new = a == run
    if a.dtype.kind in "fV":
        nan = xp.isnan(a)
        new = (new | nan) & ~(xp.logical_or.accumulate(nan, axis=axis) & ~nan)
    idx = xp.maximum.accumulate(xp.where(new, pos, 0), axis=axis).astype(np.int64)
    return out_xp.asarray(idx)


_KERNEL_DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64))


def _running_index_kernel(a, axis, is_min):
    """`_running_index` of a NumPy array in one numba pass (kernels/_cpu_misc.py), or None when
    the kernels are off or the dtype is not float32/float64/int32/int64 (the NumPy path's six
    passes took 3.7x PyTorch's time for cummax of 256 x 4096 floats)."""
    from ..kernels import cpu as _kcpu  # noqa: PLC0415 - numba only when a kernel runs

    if a.dtype not in _KERNEL_DTYPES or not a.size or not _kcpu.enabled():
        return None
    from ..kernels import _cpu_misc  # noqa: PLC0415

    lead = int(np.prod(a.shape[:axis], dtype=np.int64))
    a3 = np.ascontiguousarray(a).reshape(lead, a.shape[axis], -1)  # (P, N, Q)
    idx = np.empty(a3.shape, np.int64)
    _cpu_misc.running_extreme_index(a3, idx, bool(is_min))
    return idx.reshape(a.shape)


def _cum_extreme(x, dim, is_min, result, name):
    x = as_tensor(x)
    if x.ndim and x.numel():  # (PyTorch returns a 0-d or empty complex input as it is)
        refuse_kinds(name, x, "c", "compare .real or .abs() instead")  # no complex kernel
    if x.numel() == 0 and x.ndim:  # PyTorch checks no dim for an empty input
        return result(clone(x), Tensor._wrap(backend.get_array_module(x._data).zeros(
            x.shape, np.int64)))  # fmt: skip
    if x.ndim == 0:
        normalize_axis(dim, 0, name)
        zero = Tensor._wrap(backend.get_array_module(x._data).zeros((), np.int64))
        # (CummaxBackward0 saves self and the index 0 even here: a second backward raises)
        return result(saved_clone(x, name.capitalize() + "Backward0"), zero)
    ax = _scan_axis(x, dim, name)
    if x.shape[ax] == 0:
        return result(clone(x), Tensor._wrap(backend.get_array_module(x._data).zeros(
            x.shape, np.int64)))  # fmt: skip
    # The index is data computed from the values: `computed` shows descent.compile how
    # (ops/untracked.py), and take_along_axis takes its array as a parameter a replay rebinds
    idx = computed(_running_index_of, (x,), (ax, is_min))
    # The values are a gather: the gradient flows to the element each output copies.
    values = show_as(take_along_axis(x, idx, ax), "CumminBackward0" if is_min else
                     "CummaxBackward0", (x,))  # fmt: skip
    return result(values, idx)


def cummax(x, dim=None, *, axis=None):
    """Running maximum along `dim` and its indices (torch.cummax)."""
    return _cum_extreme(x, axis_arg(axis, dim), False, CummaxResult, "cummax")


def cummin(x, dim=None, *, axis=None):
    """Running minimum along `dim` and its indices (torch.cummin)."""
    return _cum_extreme(x, axis_arg(axis, dim), True, CumminResult, "cummin")


# ---------------------------------------------------------------------------------------------
# logcumsumexp


class LogCumSumExp(Function):
    """y_j = log sum_{i<=j} e^(x_i); dx_i = sum_{j>=i} gy_j conj(e^(x_i - y_j)).

    For j >= i, Re y_j >= Re x_i, so every weight e^(x_i - y_j) has modulus in (0, 1]: the
    graph path computes them directly over the (i, j) pairs of the axis (O(n^2) along it), and
    nothing overflows, with any range of x. The array path is PyTorch's O(n) one in log space."""

    __slots__ = ("axis", "drop_nan", "low")
    save_inputs = True
    save_output = True
    # bfloat16 inputs (ops/bfloat16.py): the dispatch sets `low` to the dtype (backward rounds
    # where PyTorch's chain of bfloat16 ops does)
    bfloat16_param = "low"

    def forward(self, x):  # (C-ordered, as PyTorch's result: see CumSum)
        return c_ordered(_log_add_exp_scan(x, self.axis))

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        y = self.output(ops)
        ax = self.axis
        # PyTorch's backward (in log space, split by the sign of gy) drops a nan in gy: so
        # does this; a 0-d input's gradient PyTorch passes through as it is.
        if not self.drop_nan:
            return gy
        if not ops.is_graph:
            return _logcumsumexp_grad(x, y, gy, self.axis, getattr(self, "low", None))
        gy = ops.where(gy != gy, 0, gy)
        xs, ys, gs = (ops.swapaxes(t, ax, -1) for t in (x, y, gy))  # (..., n)
        xp = backend.get_array_module(x._data if ops.is_graph else x)
        n = x.shape[ax]
        d = ops.expand_dims(xs, -1) - ops.expand_dims(ys, -2)  # (..., n_i, n_j): x_i - y_j
        # Pairs j < i are masked to -inf before exp (weight 0, and a zero derivative too), and
        # their terms selected away (an inf gy_j times the weight 0 would be nan).
        upper = _upper(xp, n)
        w = ops.exp(ops.where(upper, d, -np.inf))
        if x.dtype.kind == "c":  # holomorphic: the conjugate weight (PyTorch's convention)
            w = conj_if_complex(ops, w)
        terms = ops.where(upper, w * ops.expand_dims(gs, -2), 0)
        return ops.swapaxes(terms.sum(axis=-1), ax, -1)


def _log_add_exp_scan(x, ax):
    """log(cumsum(exp(x))) along ax on arrays, as PyTorch's CPU kernel: accumulated in float64
    (complex128 for complex) and rounded once to x's dtype. On the host (CuPy has no
    ufunc.accumulate), then back to x's device."""
    xh = backend.as_numpy(x)
    if xh.dtype.kind != "c":
        y = np.logaddexp.accumulate(xh.astype(np.float64, copy=False), axis=ax)
        y += 0.0  # the first step is logaddexp(-inf, x): +0.0 at x = -0.0, as PyTorch
        return backend.get_array_module(x).asarray(y.astype(xh.dtype, copy=False))
    # complex: PyTorch's _log_add_exp_helper step by step along the axis (NumPy has no complex
    # logaddexp.accumulate)
    z = np.moveaxis(xh.astype(np.complex128), ax, 0)
    out = np.empty_like(z)
    acc = np.full(z.shape[1:], -np.inf, np.complex128)
    for k in range(z.shape[0]):
        out[k] = acc = log_add_exp_complex(z[k], acc)
    y = np.moveaxis(out, 0, ax).astype(xh.dtype)
    return backend.get_array_module(x).asarray(y)


def _logcumsumexp_grad(x, y, gy, ax, low=None):
    """PyTorch's O(n) logcumsumexp backward on arrays: sum_{j>=i} gy_j e^(x_i - y_j) summed in
    log space, the positive and the negative parts of gy apart (a nan gy_j drops out; an inf one
    gives inf, not inf * 0 = nan); complex: exp(x + reversed scan of log(conj gy) - y), then
    conjugated. Each step rounds to x's dtype as PyTorch's do (the scans accumulate wider).
    `low` (bfloat16 values in float32 arrays): every step rounded to it, the scans
    accumulated in float32 (PyTorch's bfloat16 ops)."""
    xp = backend.get_array_module(x)
    xh, yh, gh = (backend.as_numpy(t) for t in (x, y, gy))
    if low is not None:
        return xp.asarray(_logcumsumexp_grad_low(xh, yh, gh, ax, low))

    def rev_scan(t):
        return np.flip(_log_add_exp_scan(np.flip(t, ax), ax), ax)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if xh.dtype.kind == "c":
            out = np.conj(np.exp(rev_scan(np.log(np.conj(gh)) - yh) + xh))
        else:
            low = np.finfo(xh.dtype).min
            log_abs = np.log(np.abs(gh))

            def part(mask):
                return np.exp(rev_scan(np.where(mask, log_abs, low) - yh) + xh)

            out = part(gh > 0) - part(gh < 0)
    return xp.asarray(out.astype(xh.dtype, copy=False))


def _logcumsumexp_grad_low(x, y, gy, ax, low):
    """PyTorch's logcumsumexp_backward as bfloat16 ops on float32 arrays holding bfloat16
    values: log|gy|, (log|gy| or lowest) - y, the reversed scan (a float32 accumulator, each
    output rounded), + x, exp, and the difference of the two signs' parts, each rounded."""
    f32 = np.float32

    def r(a):
        return np.asarray(a, f32).astype(low).astype(f32)

    lowest = float(np.finfo(low).min)  # PyTorch's numeric_limits<BFloat16>::lowest()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_abs = r(np.log(np.abs(gy)))

        def part(mask):
            t = np.flip(r(np.where(mask, log_abs, lowest) - y), ax)
            scan = r(np.flip(np.logaddexp.accumulate(t.astype(f32), axis=ax), ax))
            return r(np.exp(r(scan + x)))

        return r(part(gy > 0) - part(gy < 0))


def logcumsumexp(x, dim=None, *, axis=None) -> Tensor:
    """log(cumsum(exp(x))) along `dim`, computed stably (torch.logcumsumexp)."""
    x = as_tensor(x)
    dim = axis_arg(axis, dim)
    refuse_kinds("logcumsumexp", x, "biu")  # PyTorch has floating and complex kernels only
    if x.ndim == 0:  # a copy, as PyTorch (-0.0 stays; the gradient passes as it is)
        normalize_axis(0 if dim is None else dim, 0, "logcumsumexp")
        # (LogcumsumexpBackward0 saves self and result even here: a second backward raises)
        return saved_clone(x, "LogcumsumexpBackward0")
    return LogCumSumExp.apply(x, axis=_scan_axis(x, dim, "logcumsumexp"), drop_nan=True)
