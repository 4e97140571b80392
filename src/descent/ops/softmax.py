"""Softmax, log-softmax and log-sum-exp: the normalising reductions (split from ops/reduce.py,
which re-exports them). Each reuses its saved output in backward.
"""

from __future__ import annotations

import numpy as np

from .. import amp, backend
from ..autograd import Function
from ..errors import DtypeError
from ..opmath import HALF, in_float32
from ..tensor import Tensor, get_default_dtype
from ._common import as_tensor, axis_arg, conj_if_complex, normalize_axis
from .elementwise import cast, clone
from .reduce import _prep


class LogSumExp(Function):
    """d/dx logsumexp(x) = softmax(x) = exp(x - y) (reuses the output); complex x: gy times
    its conjugate (PyTorch's convention and formula), the maximum taken of the real parts."""

    __slots__ = ("axis", "keepdims", "bfloat16")
    save_inputs = True
    save_output = True
    zero_passes = True  # PyTorch's grad * exp(x - y) keeps its zero tensor
    # bfloat16 inputs (ops/bfloat16.py): the dispatch sets `bfloat16` to the dtype
    bfloat16_param = "bfloat16"

    def forward(self, x):
        xp = backend.get_array_module(x)
        # Subtract the maximum so exp cannot overflow; where the maximum is +-inf subtracting it
        # would make nan (inf - inf), so those rows keep 0 and give the right +-inf result.
        if x.size == 0:
            # log(sum of nothing) = log 0 = -inf (PyTorch); max() would raise on an empty axis.
            return xp.full_like(x.sum(axis=self.axis, keepdims=self.keepdims), -np.inf)
        if x.dtype == HALF:  # PyTorch's composite of float16 ops, in float32 (below)
            return in_float32(self._generic, x, xp, HALF)
        return self._generic(x, xp, getattr(self, "bfloat16", None))

    def _generic(self, x, xp, low):
        """The forward on float32/float64 (or float16/bfloat16 values as float32, `low`)."""
        m = (x.real if x.dtype.kind == "c" else x).max(axis=self.axis, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        if low is None:
            s = xp.log(xp.exp(x - m).sum(axis=self.axis, keepdims=True)) + m
        else:
            # PyTorch's CPU logsumexp is a composite (ReduceOps.cpp, logsumexp_out_impl): in
            # float16/bfloat16 x - max, exp, the sum (accumulated in float32) and log are each
            # rounded to the low dtype; the caller rounds the final + max
            e = _rnd(xp.exp(_rnd(x - m, low)), low)
            s = _rnd(xp.log(_rnd(e.sum(axis=self.axis, keepdims=True), low)), low) + m
        if not self.keepdims:
            s = s.reshape([n for i, n in enumerate(s.shape) if i not in self.axis])
        return s

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        shape = self.in_shapes[0]
        y = ops.expand_reduced(self.output(ops), shape, self.axis, self.keepdims)
        gy = ops.expand_reduced(gy, shape, self.axis, self.keepdims)
        low = getattr(self, "bfloat16", None)
        if low is not None and not ops.is_graph:
            # bfloat16 (float32 arrays here): PyTorch's grad * (x - y).exp() in bfloat16 ops,
            # each rounded (the product by the cast's backward); float16 runs in float16 already
            return gy * _rnd(ops.exp(_rnd(x - y, low)), low)
        # exp(x - y) is the softmax over the reduced axes, computed from the saved output.
        return gy * conj_if_complex(ops, ops.exp(x - y))


def _rnd(a, low):
    """A float32 array's values rounded to `low` (float16 or bfloat16), kept as float32."""
    return a.astype(low).astype(a.dtype)


def _contiguous(y):
    """y in C order: PyTorch's softmax / log_softmax output is contiguous whatever the input's
    strides (host_softmax writes into a contiguous empty_like), so `softmax(x.unfold(...), 1)
    .view(-1)` works there. Same values (a copy of y where it is not C-contiguous already)."""
    if y.flags.c_contiguous:
        return y
    return backend.get_array_module(y).ascontiguousarray(y)


class Softmax(Function):
    """y = softmax(x); dx = y (gy - sum(gy y)) along the axis (reuses the output)."""

    __slots__ = ("axis", "bfloat16")
    save_output = True
    # bfloat16 inputs (ops/bfloat16.py): the dispatch sets `bfloat16` to the dtype
    bfloat16_param = "bfloat16"

    def forward(self, x):
        return _contiguous(self._forward(x))

    def _forward(self, x):
        xp = backend.get_array_module(x)
        if x.size == 0:  # nothing to normalise (max() would raise on an empty axis)
            return x.copy()
        # Max-subtracted (stable for any finite logits); e is fresh, so it is normalised in place.
        low = getattr(self, "bfloat16", None)
        if self.axis == x.ndim - 1 and low is None:
            k = backend.fused("softmax_forward", x)  # CuPy float32/float16: one kernel
            if k is not None:
                return k(x)
        if x.dtype == HALF:  # in float32, rounded as PyTorch's CPU kernel (opmath; across an
            return in_float32(self._generic, x, xp, HALF)  # inner dim as its bfloat16, below)
        return self._generic(x, xp, low)

    def _generic(self, x, xp, low):
        """The NumPy/CuPy forward (no fused kernel)."""
        m = x.max(axis=self.axis, keepdims=True)
        e = xp.exp(x - m)
        s = e.sum(axis=self.axis, keepdims=True)
        if low is not None and self.axis < x.ndim - 1:
            # PyTorch's bfloat16 and float16 kernel across an inner dim (SoftMaxKernel.cpp,
            # _vec_softmax) multiplies by 1 / sum in float32 where its vector loop runs, and
            # elsewhere (its scalar loop) stores exp(x - max) in the low-precision output first
            r = 1 / s
            once = (e * r).astype(low).astype(x.dtype)
            twice = e.astype(low).astype(x.dtype) * r
            return xp.where(_vector_lanes(xp, x.shape, self.axis), once, twice)
        e /= s
        return e

    def backward(self, gy, ops):
        y = self.output(ops)
        if not ops.is_graph and self.axis == y.ndim - 1 and y.size:  # (the kernel needs data)
            k = backend.fused("softmax_backward", y, gy)
            if k is not None:
                return k(y, gy)
        if not ops.is_graph and y.dtype == HALF:
            # float16 in float32, rounded once, as PyTorch's CPU kernel (y (gy - sum(gy y)) in
            # its acc_type): rounding gy y and the sum to float16 first lost ~1e-3 absolute
            return in_float32(self._half_vjp, gy, y)
        # The softmax Jacobian-vector product without the (n, n) Jacobian:
        # dx = y * gy - y * sum(y * gy) = gyy - y * sum(gyy).
        gyy = gy * y
        return gyy - y * gyy.sum(axis=self.axis, keepdims=True)

    def _half_vjp(self, gy, y):
        """float16's backward in float32: PyTorch's kernel's order, y (gy - sum(gy y))."""
        return y * (gy - (gy * y).sum(axis=self.axis, keepdims=True))


def _vector_lanes(xp, shape, axis):
    """Where PyTorch's low-precision softmax across an inner dim (SoftMaxKernel.cpp,
    _vec_softmax) takes its vector loop: a bool array broadcasting against `shape` (size 1 on
    `axis`). The kernel splits the outer x inner positions evenly over its threads; each thread
    walks its range in vectors of 32 lanes (16 below AVX512) while one fits in the rest of the
    inner row and of its range, and finishes that row one position at a time."""
    from ..backends.cpu import get_cpu_capability  # noqa: PLC0415
    from ..runtime import get_num_threads  # noqa: PLC0415

    inner = int(np.prod(shape[axis + 1 :]))
    total = int(np.prod(shape[:axis])) * inner
    lanes = 32 if get_cpu_capability() == "AVX512" else 16
    chunk = -(-total // get_num_threads()) if total else 1
    p = xp.arange(total)
    start = p // chunk * chunk  # this position's thread range [start, end)
    end = xp.minimum(start + chunk, total)
    row = p // inner * inner
    row_start = xp.maximum(start, row)  # where this thread began this inner row
    block = row_start + (p - row_start) // lanes * lanes
    vector = block + lanes <= xp.minimum(end, row + inner)
    return vector.reshape(shape[:axis] + (1,) + shape[axis + 1 :])


class LogSoftmax(Function):
    """y = x - logsumexp(x); dx = gy - exp(y) sum(gy) along the axis (reuses the output)."""

    __slots__ = ("axis", "bfloat16")
    save_output = True
    # bfloat16 inputs (ops/bfloat16.py): the dispatch sets `bfloat16` to the dtype
    bfloat16_param = "bfloat16"

    def forward(self, x):
        return _contiguous(self._forward(x))

    def _forward(self, x):
        xp = backend.get_array_module(x)
        if x.size == 0:
            return x.copy()
        low = getattr(self, "bfloat16", None)
        if self.axis == x.ndim - 1 and low is None:
            k = backend.fused("softmax_forward", x)
            if k is not None:
                return k(x, log=True)
        if x.dtype == HALF:  # in float32, rounded as PyTorch's CPU kernel (opmath; along the
            return in_float32(self._generic, x, xp, HALF)  # last dim as its bfloat16, below)
        return self._generic(x, xp, low)

    def _generic(self, x, xp, low):
        """The NumPy/CuPy forward (no fused kernel)."""
        # log-sum-exp with the maximum taken out: log_softmax(x) = z - log(sum(exp(z))), z = x -
        # max, finite even where softmax itself underflows to 0.
        m = x.max(axis=self.axis, keepdims=True)
        z = x - m
        s = xp.exp(z).sum(axis=self.axis, keepdims=True)
        if low is not None and self.axis == x.ndim - 1:
            # PyTorch's bfloat16 and float16 kernel along the last dim keeps the sum and its log
            # in low-precision buffers (SoftMaxKernel.cpp, _vec_log_softmax_lastdim): rounded
            # twice, as there
            return z - xp.log(s.astype(low).astype(x.dtype)).astype(low).astype(x.dtype)
        return z - xp.log(s)

    def backward(self, gy, ops):
        y = self.output(ops)
        if not ops.is_graph and self.axis == y.ndim - 1 and y.size:  # (the kernel needs data)
            k = backend.fused("softmax_backward", y, gy)
            if k is not None:
                return k(y, gy, log=True)
        if not ops.is_graph and y.dtype == HALF:
            # float16 in float32, rounded once, as PyTorch's CPU kernel (its acc_type): rounding
            # exp(y) and the product to float16 first doubled the error of the gradient
            return in_float32(self._vjp, gy, y, ops)
        return self._vjp(gy, y, ops)

    def _vjp(self, gy, y, ops):
        """The backward formula (arrays, or Tensors under create_graph)."""
        # exp(y) is the softmax; the saved log-probabilities give it back without a new max pass.
        return gy - ops.exp(y) * gy.sum(axis=self.axis, keepdims=True)


def logsumexp(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """log(sum(exp(x))) over `axis`, computed stably (max subtracted first)."""
    x, axis, keepdims = _prep(x, axis, keepdims, dim, keepdim, op="logsumexp")
    if x._data.dtype.kind not in "fcV":  # integers: computed in the default float dtype (PyTorch)
        x = cast(x, get_default_dtype())
    if axis is None:
        axis = tuple(range(x.ndim))
    return LogSumExp.apply(x, axis=axis, keepdims=keepdims)


def _axis1(x, axis, dim, op):
    axis = axis_arg(axis, dim)
    if axis is None:
        axis = -1  # the last axis, as both NumPy-style code and PyTorch users expect
    return normalize_axis(axis, x.ndim, op)[0]


def _softmax_input(x, dtype, op):
    """x cast to `dtype` (torch.softmax's dtype=); without it an integer or bool x raises, as
    PyTorch has no integer kernel (NumPy's exp would silently compute in float64); an empty
    one is returned as it is, as PyTorch's (no kernel runs). The error is a DtypeError, a
    NotImplementedError as PyTorch's ("softmax_lastdim_kernel_impl" not implemented for 'Long')."""
    x = as_tensor(x)
    if dtype is not None:
        x = cast(x, dtype)
        if x._data.dtype.kind not in "cbiu":  # an integer dtype= has no kernel either
            return x
    if x._data.dtype.kind == "c" and x._data.size:  # PyTorch has no complex kernel either
        raise DtypeError(
            f"{op}: not implemented for complex tensors ({x._data.dtype}, shape "
            f"{tuple(x.shape)}), as in PyTorch; take .abs() or .real first"
        )
    if x._data.dtype.kind not in "fcV" and x._data.size:
        raise DtypeError(
            f"{op}: not implemented for {x._data.dtype} tensors (shape {tuple(x.shape)}), as in "
            f"PyTorch; pass dtype=descent.float32 or convert first with .float()"
        )
    return x


def softmax(x, axis=None, *, dim=None, dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis` (`dim`; the last axis by default), computed stably;
    in `dtype` when given."""
    if getattr(x, "_nested_layout", False):  # a jagged nested tensor: its method
        return x.softmax(axis if dim is None else dim, dtype)
    x = _softmax_input(x, dtype, "softmax")
    if x._data.dtype.kind in "biu":  # empty (a non-empty one raised): returned as it is
        _axis1(x, axis, dim, "softmax")
        return clone(x)
    # Under autocast the probabilities are computed in float32 (exp overflows float16 at 11).
    if amp._depth:  # inside descent.autocast: softmax in float32 (CPU bfloat16: as it is)
        x = amp._upper(x, cpu=False)
    return Softmax.apply(x, axis=_axis1(x, axis, dim, "softmax"))


def log_softmax(x, axis=None, *, dim=None, dtype=None) -> Tensor:
    """x - logsumexp(x) along `axis`, computed stably; in `dtype` when given."""
    if getattr(x, "_nested_layout", False):  # a jagged nested tensor: its method
        return x.log_softmax(axis if dim is None else dim, dtype)
    x = _softmax_input(x, dtype, "log_softmax")
    if x._data.dtype.kind in "biu":  # empty (a non-empty one raised): returned as it is
        _axis1(x, axis, dim, "log_softmax")
        return clone(x)
    if amp._depth:
        x = amp._upper(x, cpu=False)
    return LogSoftmax.apply(x, axis=_axis1(x, axis, dim, "log_softmax"))
