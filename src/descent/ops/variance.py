"""Variance and standard deviation: var, std (one op, Var, with Bessel's `correction`) and
PyTorch's pairs var_mean and std_mean.

Split out of ops/reduce.py, whose axis handling (`_prep`, `_reduced_size`) these share;
descent.ops.reduce still answers every name here (`descent.ops.reduce.var`), through its module
`__getattr__`, as it does for the softmax family (this module imports reduce, so reduce cannot
import it back at load time).
"""

from __future__ import annotations

import builtins
import math
import warnings

import numpy as np

from .. import backend
from ..autograd import Function
from ..errors import DtypeError
from ..grad_fn import show_as
from ..opmath import FLOAT, HALF
from ..tensor import Tensor
from ._common import as_tensor, axis_arg, user_stacklevel
from .complex import imag as _imag
from .complex import real as _real
from .reduce import _prep, _reduced_size, mean


def var(x, axis=None, correction=1, keepdims=False, *, dim=None, keepdim=None,
        unbiased=None) -> Tensor:  # fmt: skip
    """Variance with Bessel's `correction` (1 by default, as PyTorch; 0 for the population)."""
    return _variance(x, axis, correction, keepdims, dim, keepdim, unbiased, "var")


def _variance(x, axis, correction, keepdims, dim, keepdim, unbiased, op: str, root=False):
    """var (std with `root`), `op` naming the function in PyTorch's warning."""
    axis, correction = _var_args(axis, correction, unbiased)
    x = as_tensor(x)
    if x._data.dtype.kind != "c":  # (the dtype before the dims, as PyTorch's checks)
        _check_floating_var(x)
    x, axes, keepdims = _prep(x, axis, keepdims, dim, keepdim, op=op.split("_")[0])
    if x._data.dtype.kind == "c":  # |z - mean|^2 summed: the real parts' plus the imaginary's
        _warn_dof(op, x, _reduced_size(x.shape, axes) - correction)
        out = _var_complex(x, axes, keepdims, correction)
        return out.sqrt() if root else out
    _check_floating_var(x)
    dof = _reduced_size(x.shape, axes) - correction
    _warn_dof(op, x, dof)
    return Var.apply(x, axis=axes, keepdims=keepdims, dof=dof, root=root)


def _warn_dof(op: str, x: Tensor, dof) -> None:
    """PyTorch's UserWarning for a variance with no degrees of freedom left (one element with
    correction=1, an empty reduction, a 0-d tensor): the result is nan or inf, as PyTorch's.
    (An empty x counts no element per output, whatever the dims: PyTorch's input numel over
    output numel.)"""
    if x._data.size == 0 and dof > 0:
        dof = -1
    if dof <= 0:
        warnings.warn(
            f"{op}(): degrees of freedom is <= 0. Correction should be strictly less than the "
            "reduction factor (input numel divided by output numel).",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def _var_args(axis, correction, unbiased):
    """(axis, correction) from PyTorch's overloads: `var(x, True)` passes `unbiased` where the
    dim goes (a bool is never a dim there), `correction=None` means the default 1, and
    `unbiased` (when given) sets correction 1 or 0."""
    if isinstance(axis, bool):
        axis, unbiased = None, axis
    if unbiased is not None:
        return axis, 1 if unbiased else 0
    return axis, 1 if correction is None else correction


def _var_complex(x, axes, keepdims, correction) -> Tensor:
    """var of a complex tensor (a real result, PyTorch's): var(Re z) + var(Im z)."""
    dof = _reduced_size(x.shape, axes) - correction
    parts = [Var.apply(p, axis=axes, keepdims=keepdims, dof=dof, root=False)
             for p in (_real(x), _imag(x))]  # fmt: skip
    return parts[0] + parts[1]


def _check_floating_var(x) -> None:
    if x._data.dtype.kind not in "fV":
        raise DtypeError(
            f"var/std of an integer tensor (dtype {x.dtype}): convert first with .float()"
        )


class Var(Function):
    """sum((x - mean)^2) / dof: d/dx = 2 (x - mean) / dof, PyTorch's var_backward (the mean's
    own dependence on x cancels out, so it is not differentiated: an inf or nan in one element
    does not spread to the others of its row). With `root`, the standard deviation s = sqrt of
    that: d/dx = (x - mean) / (dof s), 0 where s = 0 (PyTorch's std_backward)."""

    zero_passes = True  # var_backward multiplies it (std's raises in PyTorch: INTENDED)
    __slots__ = ("axis", "keepdims", "dof", "root", "bfloat16")
    save_inputs = True
    # bfloat16 inputs (ops/bfloat16.py): the dispatch sets `bfloat16` to the dtype
    bfloat16_param = "bfloat16"
    # std's backward reads s; var's reads no output and PyTorch's saves none, so an in-place
    # change of a var's result (var.add_(eps)) must not make backward raise (ops/inplace._rebind)
    save_output = property(lambda self: self.root)

    def forward(self, x):
        # Two passes (mean, then squared deviations), accumulated in float64 for the narrower
        # floats and rounded once, as PyTorch's CPU var (Welford in its acc_type): no overflow
        # of float32 squares. dof <= 0 (e.g. one element, correction=1): divided by 0, so 0 / 0
        # = nan and s / 0 = inf, as PyTorch's max(0, n - correction).
        xa = x.astype(np.float64) if x.dtype.itemsize < 8 else x
        if x.size:
            m = _mean_kept(xa, self.axis)
        else:  # (an empty reduction: nan, without NumPy's "Mean of empty slice" warning)
            with np.errstate(invalid="ignore"):
                m = xa.sum(axis=self.axis, keepdims=True) / 0.0
        if x.dtype == np.float32 and m.size == 1 and x.size and not (
            abs(float(m.flat[0])) * x.size < 3e38  # the float32 sum stays in range (cheap test)
        ):
            # one output (PyTorch's std_var_all_cpu): the mean is x.mean() in float32, so a
            # sum past float32's range makes it inf and the variance inf, as there
            m = x.mean(axis=self.axis, keepdims=True, dtype=np.float32).astype(np.float64)
        d = xa - m
        ss = (d * d).sum(axis=self.axis, keepdims=self.keepdims)
        if self.dof > 0 and not self.root:  # (no 0 / 0 to silence: no errstate context)
            return (ss / self.dof).astype(x.dtype, copy=False)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = ss / builtins.max(self.dof, 0)
            return (v**0.5 if self.root else v).astype(x.dtype, copy=False)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        low = HALF if x.dtype == HALF else getattr(self, "bfloat16", None)
        if low is not None and not ops.is_graph:
            return self._low_backward(gy, x, low, ops)
        if self.root:  # through the square root first: gy / (2 s), 0 where s = 0
            s = self.output(ops)
            with np.errstate(divide="ignore", invalid="ignore"):
                gy = ops.where(s == 0, 0, gy / (ops.where(s == 0, 1, s) * 2))
        g = ops.expand_reduced(gy, self.in_shapes[0], self.axis, self.keepdims)
        if self.axis is None and self.dof <= 0:
            return g * self._no_dof_factor(x, ops)
        # 2 / (n - correction), as PyTorch's (a negative dof gives a finite scale there too)
        scale = 2.0 / self.dof if self.dof else math.inf
        m = x.mean(axis=self.axis, keepdims=True) if ops.is_graph else _mean_kept(x, self.axis)
        with np.errstate(invalid="ignore", over="ignore"):
            return (g * scale) * (x - m)

    def _no_dof_factor(self, x, ops):
        """PyTorch's var_backward over all elements (or of a 0-d tensor) when n - correction
        <= 0: grad times nan where x equals the mean (inf * 0), inf elsewhere; along a dim it
        keeps 2 / (n - correction) (a 0-d var with correction=2 has a nan gradient there,
        -0.0 by the formula: found by fuzz_extra_dtypes half, seed 18124001)."""
        mean = x.mean(axis=None, keepdims=True)
        # in x's dtype: the Python numbers made it float64, a float32 gradient's second order
        # came out float64 (session 28's grad2 fuzz)
        dt = x._data.dtype if ops.is_graph else x.dtype
        return ops.cast(ops.where(x == mean, math.nan, math.inf), dt)

    def _low_backward(self, gy, x, low, ops):
        """float16/bfloat16 arrays (bfloat16's as float32): PyTorch's var_backward and
        std_backward as its low-precision ops run them, each computed in float32 (the scale
        too, where NumPy would round it to float16) and rounded to `low`."""
        def r(a):
            return a.astype(low).astype(FLOAT)

        xp = backend.get_array_module(x)
        x, gy = x.astype(FLOAT), gy.astype(FLOAT)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.root:  # (grad / (result * 2)).masked_fill_(result == 0, 0)
                s = self.output(ops).astype(FLOAT)
                gy = xp.where(s == 0, 0, r(gy / r(s * 2))).astype(FLOAT)
            g = ops.expand_reduced(gy, self.in_shapes[0], self.axis, self.keepdims)
            if self.axis is None and self.dof <= 0:
                out = r(g * self._no_dof_factor(x, ops).astype(FLOAT))
                return out.astype(HALF) if low == HALF else out
            scale = np.float32(2.0 / self.dof if self.dof else math.inf)
            d = r(x - r(x.mean(axis=self.axis, keepdims=True, dtype=FLOAT)))
            out = r(r(g * scale) * d)
        return out.astype(HALF) if low == HALF else out


_MEAN_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _mean_kept(a, axis):
    """a.mean(axis, keepdims=True) of an array. For a non-empty NumPy float32/float64 one
    of one or more dimensions (a 0-d one's add.reduce gives a scalar, not an array),
    the two calls of NumPy's own `_mean` (its add.reduce, then true_divide by the count as
    intp, unsafe cast into the sum): the same bits without its Python layers (~3 us of a
    small var(x, dim) each way); anything else: a.mean itself."""
    if type(a) is not np.ndarray or a.dtype not in _MEAN_DTYPES or not a.size or not a.ndim:
        return a.mean(axis=axis, keepdims=True)
    n = 1
    for ax in range(a.ndim) if axis is None else axis:
        n *= a.shape[ax]
    s = np.add.reduce(a, axis=axis, keepdims=True)
    return np.true_divide(s, np.intp(n), out=s, casting="unsafe")


def std(x, axis=None, correction=1, keepdims=False, *, dim=None, keepdim=None,
        unbiased=None) -> Tensor:  # fmt: skip
    """Standard deviation: sqrt(var(x, axis, correction)), the root taken before the result
    is rounded to x's dtype (PyTorch's); gradient 0 where it is 0 (PyTorch's std_backward)."""
    return _variance(x, axis, correction, keepdims, dim, keepdim, unbiased, "std", root=True)


def var_mean(x, dim=None, correction=1, keepdim=False, *, axis=None, keepdims=None,
             unbiased=None):  # fmt: skip
    """(var, mean) over `dim` (torch.var_mean); both differentiable."""
    keep = keepdim if keepdims is None else keepdims
    d, correction = _var_args(axis_arg(axis, dim), correction, unbiased)
    v = _variance(x, d, correction, keep, None, None, None, "var_mean")
    # PyTorch's one node gives both; descent's var node shows its name (mean's is its own)
    return show_as(v, "VarMeanBackward0", (x,)), mean(x, d, keep)


def std_mean(x, dim=None, correction=1, keepdim=False, *, axis=None, keepdims=None,
             unbiased=None):  # fmt: skip
    """(std, mean) over `dim` (torch.std_mean); both differentiable."""
    keep = keepdim if keepdims is None else keepdims
    d, correction = _var_args(axis_arg(axis, dim), correction, unbiased)
    s = _variance(x, d, correction, keep, None, None, None, "std_mean", root=True)
    return show_as(s, "StdMeanBackward0", (x,)), mean(x, d, keep)
