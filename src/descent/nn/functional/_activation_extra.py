"""The rest of torch.nn.functional's activations: the hard (piecewise-linear) family, the shrink
family, SELU/CELU/Mish, softsign, softmin and GLU.

All are composites of descent ops (where, clamp, exp, softplus, tanh), so their gradients and
second derivatives come from those ops. PyTorch's derivative conventions at the kinks are kept:
the piecewise-linear functions (hardtanh, relu6, hardsigmoid, hardswish, softshrink,
hardshrink, threshold) have the derivative of the outer piece AT each breakpoint, i.e. the
slope of the middle piece only strictly inside it (PyTorch's `hardtanh_backward` tests
`min < x < max`). `inplace=True` stores the result in the input, as in `_activation`.
"""

from __future__ import annotations

import warnings

import numpy as np

from ... import backend
from ...creation import rand
from ...creation_random import draws_through_ops
from ...errors import DescentError, DtypeError
from ...grad_fn import show_as
from ...ops import activation as _act
from ...ops import shape as _shape
from ...ops import softmax as _sm
from ...ops._common import as_tensor
from ...ops.elementwise import abs as _abs
from ...ops.elementwise import clamp, expm1, log, where
from ...ops.gaps_nn_ops import hardshrink, prelu  # noqa: F401 - F's names, one implementation
from ...ops.half import rounds_once
from ...ops.untracked import computed
from ...tensor import Tensor
from ._activation import _implicit_dim
from ._inplace_apply import apply_inplace

__all__ = [
    "hardtanh",
    "relu6",
    "hardsigmoid",
    "hardswish",
    "selu",
    "celu",
    "mish",
    "softsign",
    "softmin",
    "glu",
    "tanhshrink",
    "softshrink",
    "hardshrink",
    "threshold",
    "prelu",
    "gumbel_softmax",
    "rrelu",
]

# SELU's constants (Klambauer et al. 2017, "Self-Normalizing Neural Networks", eq. 14), to the
# digits PyTorch uses.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _clip_strict(x: Tensor, lo: float, hi: float, name: str = "hardtanh") -> Tensor:
    """clamp(x, lo, hi) whose gradient is 1 only strictly inside (lo, hi), as PyTorch's
    hardtanh (descent's clamp passes the gradient at the bounds too); 0 at a nan, as PyTorch's
    vectorized loop (its scalar loop for a tensor's last elements passes gy there).
    An integer tensor stays integer (the bounds truncated, as PyTorch's); bool raises."""
    kind = x._data.dtype.kind
    if kind == "b":
        raise DescentError(
            f"{name}: bool inputs are not supported (shape {tuple(x.shape)}), as in PyTorch; "
            "convert with .int() or .float() first"
        )
    if kind in "iu":  # (untracked.computed: descent.compile replays it; it was frozen)
        return computed(_clip_int, (x,), (int(lo), int(hi)))
    inside = (x > lo) & (x < hi)
    # The clamped value is a constant where it is used: outside and at the bounds.
    return where(inside, x, clamp(x, lo, hi).detach())


def _clip_int(a, lo: int, hi: int):
    """An integer array clipped to [lo, hi] in its dtype (hardtanh's kernel, computed)."""
    return backend.get_array_module(a).clip(a, lo, hi).astype(a.dtype)


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clamped to [min_val, max_val]; derivative 1 strictly inside, 0 at and beyond the
    bounds (PyTorch)."""
    if inplace:
        return apply_inplace(input, lambda t: hardtanh(t, min_val, max_val), "hardtanh_")
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    x = as_tensor(input)
    if x._data.dtype.kind == "u" and (min_val < 0 or max_val < 0):
        raise DescentError(
            "hardtanh: cannot do hardtanh on an unsigned type with negative limits (a "
            f"{x.dtype} tensor of shape {tuple(x.shape)}, limits [{min_val}, {max_val}]), as "
            "in PyTorch; convert with .int() or .float() first, or use limits >= 0"
        )
    # descent's where over clips, shown as PyTorch's one node
    return show_as(_clip_strict(x, min_val, max_val), "HardtanhBackward0", (x,))


def relu6(input, inplace: bool = False) -> Tensor:
    """hardtanh(x, 0, 6): derivative 0 at x = 0 and at x = 6 (PyTorch)."""
    if inplace:
        return apply_inplace(input, relu6, "relu6_")
    x = as_tensor(input)
    return show_as(_clip_strict(x, 0.0, 6.0, "relu6"), "HardtanhBackward0", (x,))


def hardsigmoid(input, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6: 0 below -3, 1 above 3, x/6 + 1/2 between (derivative 1/6 strictly
    inside)."""
    if inplace:  # outside rounds_once: its bfloat16 path would work on an upcast copy
        return apply_inplace(input, _hardsigmoid, "hardsigmoid_")
    return show_as(_hardsigmoid(input), "HardsigmoidBackward0", (input,))


@rounds_once  # one kernel in PyTorch: bfloat16 rounds the result once
def _hardsigmoid(input) -> Tensor:
    return _clip_strict(_act.float_kernel_input(input, "hardsigmoid") / 6.0 + 0.5, 0.0, 1.0)


def hardswish(input, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6 (Howard et al. 2019, MobileNetV3): 0 for x <= -3, x for x >= 3,
    x (x + 3) / 6 between; derivative 0 / 1 at -3 / 3 as PyTorch."""
    if inplace:
        return apply_inplace(input, hardswish, "hardswish_")
    return _act.hardswish(as_tensor(input))


def selu(input, inplace: bool = False) -> Tensor:
    """scale * (x if x > 0 else alpha (e^x - 1)) with SELU's fixed alpha and scale."""
    if inplace:
        return apply_inplace(input, _selu, "selu_")
    return show_as(_selu(input), "EluBackward0", (input,))  # (PyTorch's selu is an elu)


@rounds_once  # one kernel in PyTorch: bfloat16 rounds the result once
def _selu(input) -> Tensor:
    return _act.elu(as_tensor(input), _SELU_ALPHA) * _SELU_SCALE


def celu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x if x > 0 else alpha (e^(x/alpha) - 1) (Barron 2017), i.e. alpha * elu(x / alpha)."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (it divides the input)")
    if inplace:
        return apply_inplace(input, lambda t: _celu(t, alpha), "celu_")
    return show_as(_celu(input, alpha), "CeluBackward0", (input,))


@rounds_once  # one kernel in PyTorch: bfloat16 rounds the result once
def _celu(input, alpha) -> Tensor:
    x = _act.float_kernel_input(input, "celu", empty_ok=False)  # PyTorch: "elu_cpu" for Long
    if alpha < 0:  # PyTorch's elu(x, alpha, input_scale=1/alpha): the branch is still x > 0
        return where(x > 0, x, expm1(where(x > 0, 0.0, x) / alpha) * alpha)
    return _act.elu(x / alpha, 1.0) * alpha


def mish(input, inplace: bool = False) -> Tensor:
    """x tanh(softplus(x)) (Misra 2019)."""
    if inplace:
        return apply_inplace(input, mish, "mish_")
    return _act.mish(as_tensor(input))


def softsign(input) -> Tensor:
    """x / (1 + |x|); for integers the denominator is computed in the integer dtype, as
    PyTorch's Python-level softsign does (so 1 + |int32 max| wraps to the minimum: -1.0)."""
    x = as_tensor(input)
    return x / (_abs(x) + 1)


def softmin(input, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """softmax(-x) along `dim` (PyTorch's implicit dim when None: 0 for 0-, 1- and 3-d
    inputs, else 1)."""
    # Negated before the cast, as torch's (-input).softmax(dim, dtype): a uint8 input wraps
    # (-x = 256 - x) before it becomes floating (negating after the cast gave other values).
    x = -as_tensor(input)
    if dim is None:  # PyTorch's legacy dim and its deprecation warning, as softmax
        dim = _implicit_dim("softmin", x.ndim, _stacklevel)
    if dtype is not None:
        x = x.astype(dtype)
    return _sm.softmax(x, axis=dim)


@rounds_once  # PyTorch's glu kernel: float16/bfloat16 a * sigmoid(b) rounded once
def glu(input, dim: int = -1) -> Tensor:
    """a * sigmoid(b), where a and b are the two halves of the input along `dim`
    (Dauphin et al. 2017)."""
    x = _act.float_kernel_input(input, "glu")  # PyTorch: "glu_cpu" not implemented for 'Long'
    if x.ndim == 0:
        raise DescentError("glu: does not support scalars because halving size must be even "
                           "(a 0-d tensor); give it a dimension of even size")  # fmt: skip
    n = x.shape[dim]
    if n % 2:
        raise DescentError(
            f"glu: halving dimension {dim} of {tuple(x.shape)} needs an even size, got {n}"
        )
    # an empty halving dim: both halves are x itself (split would take a 0-size section)
    a, b = (x, x) if n == 0 else _shape.split(x, n // 2, axis=dim)
    return show_as(a * _act.sigmoid(b), "GluBackward0", (x,))


def tanhshrink(input) -> Tensor:
    """x - tanh(x)."""
    x = as_tensor(input)
    return x - _act.tanh(x)


@rounds_once  # PyTorch's kernel: float16/bfloat16 compared and shifted by lambd in float32
def softshrink(input, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, 0 between (derivative 0 at +-lambd)."""
    if lambd < 0:
        raise DescentError(f"softshrink: lambda must be in range [0, inf), found {lambd}")
    x = _act.float_kernel_input(input, "softshrink", empty_ok=False)  # PyTorch: no int kernel
    # The middle piece is the constant +0 (derivative exactly 0), as PyTorch's vectorized loop
    # (its scalar tail gives x * 0 = -0 for a negative x); a nan takes the outer pieces (value
    # nan, gradient gy), as PyTorch's (self >= -lambd && self <= lambd) ? 0 : grad.
    zero = (x >= -lambd) & (x <= lambd)
    return show_as(where(zero, 0.0, where(x > lambd, x - lambd, x + lambd)),
                   "SoftshrinkBackward0", (x,))  # fmt: skip


def threshold(input, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else `value`."""
    if inplace:
        return apply_inplace(input, lambda t: _threshold_fn(t, threshold, value), "threshold_")
    x = as_tensor(input)
    if x._data.dtype == np.bool_:  # PyTorch: "threshold_cpu" not implemented for 'Bool'
        raise DtypeError(
            f"threshold: not implemented for bool tensors (shape {tuple(x.shape)}), as in "
            "PyTorch; convert first with .int() or .float()"
        )
    if x._data.dtype.kind in "iu":
        # PyTorch casts both numbers to the integer dtype (toward zero: -1.5 is -1) and keeps
        # it; one beyond the dtype's range raises its overflow error
        info = np.iinfo(x._data.dtype)
        for v in (threshold, value):
            if not info.min <= v <= info.max:
                raise RuntimeError(
                    f"threshold: value cannot be converted to type {x.dtype} without overflow "
                    f"(got {v!r} for a tensor of shape {tuple(x.shape)})"
                )
        threshold, value = int(threshold), int(value)
    # nan stays nan, as PyTorch
    return show_as(where(x <= threshold, value, x), "ThresholdBackward0", (x,))


@draws_through_ops  # (descent.compile replays its draw: the noise goes through ops only)
def gumbel_softmax(
    logits, tau: float = 1, hard: bool = False, eps: float = 1e-10, dim: int = -1
) -> Tensor:
    """A sample of the Gumbel-softmax (concrete) distribution (Jang et al. 2017, Maddison et al.
    2017): softmax((logits + g) / tau) with g = -log(E), E ~ Exponential(1) drawn from descent's
    default generator (seed it with `descent.manual_seed`).

    hard=True returns the one-hot vector of the sample's argmax in the forward pass and the
    soft sample's gradient in the backward pass (straight-through: y_hard - sg(y_soft) + y_soft).
    `eps` is deprecated and unused, as in PyTorch.
    """
    if eps != 1e-10:
        warnings.warn("gumbel_softmax: `eps` is deprecated and has no effect", stacklevel=2)
    x = as_tensor(logits)
    # E = -log(1 - U), U in [0, 1); U = 0 would give E = 0 and g = inf, so E is kept above
    # the smallest normal number (a 2^-24 event in float32).
    # (E and the one-hot below through untracked.computed: descent.compile recomputes them at
    # each replay instead of freezing the recorded ones.)
    e = computed(_gumbel_e, (rand(*x.shape, dtype=x.dtype, device=x.device),), ())
    gumbels = -log(e)
    y_soft = _sm.softmax((x + gumbels) / tau, dim=dim)
    if not hard:
        return y_soft
    # One-hot of the argmax along dim, built on the arrays (a constant of the graph).
    axis = dim % y_soft.ndim if y_soft.ndim else 0
    y_hard = computed(_one_hot_argmax, (y_soft,), (axis,))
    return y_hard - y_soft.detach() + y_soft


def _gumbel_e(u):
    """-log(1 - u), at least the smallest normal number (untracked.computed's kernel)."""
    xp = backend.get_array_module(u)
    return xp.maximum(-xp.log1p(-u), np.finfo(u.dtype).tiny)


def _one_hot_argmax(ys, axis):
    """One-hot (ys's dtype) of the first maximum along axis (untracked.computed's kernel)."""
    xp = backend.get_array_module(ys)
    idx = xp.expand_dims(ys.argmax(axis=axis), axis)
    positions = xp.arange(ys.shape[axis]).reshape([-1 if i == axis else 1 for i in range(ys.ndim)])
    return (positions == idx).astype(ys.dtype)


@draws_through_ops  # (descent.compile replays its draw: the slope is computed through an op)
def rrelu(
    input, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
    inplace: bool = False,
) -> Tensor:  # fmt: skip
    """Randomized leaky ReLU (Xu et al. 2015): x where x > 0, else a x with a ~ U(lower,
    upper) per element when training (descent's generator), a = (lower + upper) / 2 otherwise.
    The slope is a constant of the graph, as in PyTorch (whose x <= 0 branch gives the slope
    as the gradient at 0)."""
    if lower > upper:
        raise DescentError(
            f"rrelu: Lower bound should be less than or equal to the upper bound, got lower="
            f"{lower} > upper={upper}"
        )
    if inplace:
        return apply_inplace(input, lambda t: rrelu(t, lower, upper, training), "rrelu_")
    x = _act.float_kernel_input(input, "rrelu", empty_ok=False)  # PyTorch: "leaky_relu_cpu"
    if not training:
        return where(x > 0, x, x * ((lower + upper) / 2))
    u = rand(*x.shape, dtype=x.dtype, device=x.device)
    slope = computed(_rrelu_slope, (u,), (float(lower), float(upper)))
    return where(x > 0, x, x * slope)


def _rrelu_slope(u, lower, upper):
    """u * (upper - lower) + lower in u's dtype (rrelu's slope; untracked.computed's kernel)."""
    return u * u.dtype.type(upper - lower) + u.dtype.type(lower)


_threshold_fn = threshold  # `threshold` is also the argument's name inside threshold()
