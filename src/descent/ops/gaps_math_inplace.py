"""PyTorch's in-place math methods that descent lacked until 2026-12-04: `x.acos_()`,
`x.pow_(2)`, `x.eq_(y)`, `x.addcmul_(a, b)`, ... (docs/torch_gaps_math.md), and torch's
top-level in-place functions (`torch.exp_(x)`, `torch.clamp_(x, 0, 1)`: `TOPLEVEL_INPLACE`,
exported by `gaps_math`).

Each runs the out-of-place op and follows the rules of `descent.ops.inplace` (`x += y`) with
its pieces, as `descent.inplace_unary` does for `exp_`:

* recorded (grad mode on, and x or a tensor argument requires grad): the op runs on an alias of
  x's old value and x is rebound to the result, so the graph gets one node for the update;
* otherwise the result is written into x's array, so views of x see it;
* either way x's version counter goes up (a node that saved x then raises at backward);
* a leaf that requires grad may not be changed in place under grad mode (RuntimeError).

The result is stored in x's dtype when PyTorch's `canCast` allows it: never a floating result
into an integer or bool tensor, nor a non-bool result into a bool tensor (RuntimeError, as
PyTorch); a bool result (the comparisons, `x.eq_(y)`) becomes 1/0 in x's dtype, and its
derivative is 0 (`ZeroGradient`), so x stays in the graph as in PyTorch.

The functions reach the out-of-place ops through Tensor's ops table at call time: several of
them (`deg2rad`, `addcmul`, `baddbmm`) are registered there by modules above this layer.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..errors import DtypeError
from ..tensor import Tensor
from ..tensor_methods import _ops
from .elementwise import cast
from .inplace import (
    _check_leaf_inplace,
    _rebind,
    _records,
    _write_failed,
    _written,
    check_overlap,
)
from .overlap_rounds import internal_overlap
from .overlap_rounds import once as overlap_once
from .overlap_rounds import recorded as overlap_recorded
from .overlap_rounds import write as overlap_write


class ZeroGradient(Function):
    """A value computed by the caller from x, whose derivative is 0 everywhere: d/dx = 0 (real
    angle's, PyTorch's `angle_backward` for real inputs; the comparisons written in place; the
    old value of a tensor that fill_/copy_ overwrite). Zeros of gy's shape, as PyTorch's
    zeros_like(grad), not `gy * 0`: an infinite or nan upstream gradient still gives 0, and under
    create_graph the zeros are a constant (a leaf reached by them alone gets a gradient that
    does not require grad, and its second-order .grad stays None). Real zeros, not the engine's
    ZERO_GRAD: the ops below still run their backward (a saved value's version check, hooks)."""

    __slots__ = ("value", "masks")  # masks: a False array per input's shape (zeros' templates)

    def forward(self, *xs):
        xp = backend.get_array_module(*xs)
        self.masks = [xp.zeros_like(x, dtype=bool) for x in xs]  # (a nested tensor's too)
        return self.value

    def backward(self, gy, ops):
        # where(False, gy, 0) has gy's shape; the engine sums it to each input's shape. Under
        # create_graph it is detached: a constant
        if ops.is_graph:
            gxs = tuple(ops.where(m, gy, 0).detach() for m in self.masks)
        else:
            gxs = tuple(ops.where(m, gy, 0) for m in self.masks)
        return gxs[0] if len(gxs) == 1 else gxs


def _fit(t: Tensor, out: Tensor, op: str) -> Tensor:
    """out checked and cast to be stored in t (t's shape; t's dtype where PyTorch's canCast
    allows: not floating -> integer/bool, not complex -> real, not non-bool -> bool)."""
    if tuple(out.shape) != tuple(t.shape):
        raise RuntimeError(
            f"{op}: output with shape {tuple(t.shape)} doesn't match the broadcast shape "
            f"{tuple(out.shape)}; use the out-of-place {op[:-1]}()"
        )
    if out.dtype == t.dtype:
        return out
    src, dst = out.dtype.kind, t.dtype.kind
    if (src in "fV" and dst in "iub") or (src == "c" and dst != "c") or (dst == "b" and src != "b"):
        raise RuntimeError(
            f"{op}: result type {out.dtype} can't be cast to the desired output type "
            f"{t.dtype} (shape {tuple(t.shape)}); use the out-of-place {op[:-1]}() or convert "
            "the tensor first, e.g. x = x.float()"
        )
    return cast(out, t.dtype)


def _apply_inplace(t: Tensor, op: str, fn, *args, **kwargs) -> Tensor:
    """Replace t's values by `fn(t, *args, **kwargs)` in place (see the module docstring).

    Raises:
        RuntimeError: t is a leaf that requires grad under grad mode; the result has another
            shape than t (an argument broadcasts t) or a dtype t cannot hold.
    """
    _check_leaf_inplace(t, op)
    for a in args:  # (PyTorch's TensorIterator: an operand overlapping t in part refuses)
        if isinstance(a, Tensor):
            check_overlap(t, a, op)
    # (an unfold's shared elements: ops/overlap_rounds)
    overlap = t._data.base is not None and internal_overlap(t._data)
    if _records(t, *args, *kwargs.values()):
        alias = t._alias()  # keeps t's old value and node for what the op saves for backward
        if overlap:
            alias = overlap_once(alias, t._data)
        out = _fit(t, fn(alias, *args, **kwargs), op)
        if not out._rg:  # a comparison: x stays in the graph with derivative 0, as in PyTorch
            others = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor) and a._rg]
            out = ZeroGradient.apply(alias, *others, value=out._data)
        if overlap:
            return _rebind(t, overlap_recorded(t, out, lambda: _fit(
                t, fn(t, *args, **kwargs), op)._data, args), overlap_ok="copy")  # fmt: skip
        return _rebind(t, out)
    if overlap:
        return overlap_write(t, lambda: _fit(t, fn(t, *args, **kwargs), op)._data, args)
    out = _fit(t, fn(t, *args, **kwargs), op)  # not recorded: nothing here requires grad
    try:
        t._data[...] = out._data
    except ValueError:  # a read-only (expanded) array: PyTorch's error, or an empty no-op
        _write_failed(t, out._data, op)
    _written(t)
    return t


def _by_name(name: str):
    """The out-of-place function `_ops.<name>`, looked up at call time."""

    def call(x, *args, **kwargs):
        method = getattr(type(x), name, None)
        if method is not None and method is not getattr(Tensor, name, None):
            # a Tensor subclass's own form (a jagged nested tensor's igamma, pow, nextafter, ...
            # run on its packed values: descent/nested/tensor.py)
            return method(x, *args, **kwargs)
        return getattr(_ops, name)(x, *args, **kwargs)

    return call


# x.<key>(...) = x.<value>(...) written into x. One-argument and n-argument forms alike: the
# arguments pass through to the out-of-place function.
_SIMPLE = {
    "acos_": "acos", "acosh_": "acosh", "arccos_": "arccos", "arccosh_": "arccosh",
    "arcsin_": "arcsin", "arcsinh_": "arcsinh", "arctan_": "arctan", "arctanh_": "arctanh",
    "asin_": "asin", "asinh_": "asinh", "atan_": "atan", "atanh_": "atanh", "cosh_": "cosh",
    "sinh_": "sinh", "tan_": "tan", "log10_": "log10", "log2_": "log2", "frac_": "frac",
    "fix_": "fix", "deg2rad_": "deg2rad", "rad2deg_": "rad2deg",
    "logical_not_": "logical_not", "bitwise_not_": "bitwise_not",
    "arctan2_": "atan2", "atan2_": "atan2", "pow_": "pow", "remainder_": "remainder",
    "fmod_": "fmod", "hypot_": "hypot", "copysign_": "copysign", "floor_divide_": "floor_divide",
    "multiply_": "mul", "true_divide_": "div", "nan_to_num_": "nan_to_num", "clip_": "clamp",
    "lerp_": "lerp", "ldexp_": "ldexp", "gcd_": "gcd", "lcm_": "lcm", "nextafter_": "nextafter",
    "logical_and_": "logical_and", "logical_or_": "logical_or", "logical_xor_": "logical_xor",
    "bitwise_and_": "bitwise_and", "bitwise_or_": "bitwise_or", "bitwise_xor_": "bitwise_xor",
    "bitwise_left_shift_": "bitwise_left_shift", "bitwise_right_shift_": "bitwise_right_shift",
    "eq_": "eq", "ne_": "ne", "lt_": "lt", "le_": "le", "gt_": "gt", "ge_": "ge",
    "greater_": "gt", "greater_equal_": "ge", "less_": "lt", "less_equal_": "le",
    "not_equal_": "ne", "addcdiv_": "addcdiv", "addcmul_": "addcmul", "addmv_": "addmv",
    "addr_": "addr", "baddbmm_": "baddbmm", "addbmm_": "addbmm", "addmm_": "addmm",
}  # fmt: skip


def _make(op: str, name: str):
    fn = _by_name(name)

    def method_(t: Tensor, *args, **kwargs) -> Tensor:
        return _apply_inplace(t, op, fn, *args, **kwargs)

    method_.__name__ = method_.__qualname__ = op
    method_.__doc__ = f"x.{op}(...): x.{name}(...) written into x (descent.ops.gaps_math_inplace)."
    return method_


for _op, _name in _SIMPLE.items():
    globals()[_op] = _make(_op, _name)


def absolute_(t: Tensor) -> Tensor:
    """x.abs_() (torch's alias): a complex x raises, as PyTorch's "In-place abs is not
    supported for complex tensors" (|z| is real; through the generic path it was written into
    the complex tensor)."""
    return t.abs_()


def divide_(t: Tensor, other, *, rounding_mode=None) -> Tensor:
    """x / other written into x; rounding_mode 'floor' or 'trunc' rounds (torch's divide_)."""
    if rounding_mode is None:
        return _apply_inplace(t, "divide_", _by_name("div"), other)
    return _apply_inplace(t, "divide_", _by_name("divide_rounded"), other, rounding_mode)


def subtract_(t: Tensor, other, *, alpha=1) -> Tensor:
    """x - alpha * other written into x (torch's subtract_)."""
    return _apply_inplace(t, "subtract_", _by_name("sub"), other if alpha == 1 else other * alpha)


def float_power_(t: Tensor, exponent) -> Tensor:
    """x ** exponent in float64 (complex128 when x or the exponent is complex), written into
    x, which must have that dtype (PyTorch's rule).

    Raises:
        RuntimeError: x is not float64 (complex128).
    """
    cplx = t._data.dtype.kind == "c" or (
        exponent._data.dtype.kind == "c" if isinstance(exponent, Tensor)
        else isinstance(exponent, complex))  # fmt: skip
    want, conv = ("complex128", "x.cdouble()") if cplx else ("float64", "x.double()")
    if t.dtype != want:
        raise RuntimeError(
            f"the base given to float_power_ has dtype {t.dtype} but the operation's result "
            f"requires dtype {want} (shape {tuple(t.shape)}); convert it with x = {conv}"
        )
    return _apply_inplace(t, "float_power_", _by_name("float_power"), exponent)


def _check_dtype(t: Tensor, op: str, dtype) -> None:
    if dtype is not None and np.dtype(dtype) != t.dtype:
        raise RuntimeError(
            f"Bad in-place call: input tensor dtype {t.dtype} and output tensor dtype "
            f"{np.dtype(dtype)} should match ({op}, shape {tuple(t.shape)}); use the "
            f"out-of-place {op[:-1]}(dtype=...)"
        )


def cumsum_(t: Tensor, dim: int, *, dtype=None) -> Tensor:
    """The running sum along dim written into x (torch's cumsum_; dtype must be x's)."""
    if t._data.dtype == np.bool_ and dtype is None:  # PyTorch: no bool kernel, except where
        if t.ndim == 0 or t._data.size == 0:  # a 0-d or empty tensor never reaches it
            return t
        raise DtypeError(f"cumsum_: \"cumsum_out_cpu\" not implemented for 'Bool' (shape "
                         f"{tuple(t.shape)}); use the out-of-place t.cumsum(dim)")  # fmt: skip
    _check_dtype(t, "cumsum_", dtype)
    fn = _by_name("cumsum")
    return _apply_inplace(t, "cumsum_", lambda x, d: fn(x, dim=d), dim)


def cumprod_(t: Tensor, dim: int, *, dtype=None) -> Tensor:
    """The running product along dim written into x (torch's cumprod_; dtype must be x's)."""
    _check_dtype(t, "cumprod_", dtype)
    return _apply_inplace(t, "cumprod_", _by_name("cumprod"), dim)


def _function_form(name: str):
    """torch.<name>(input, ...): input.<name>(...) (torch's top-level in-place functions)."""

    def function_(input: Tensor, *args, **kwargs) -> Tensor:
        return getattr(input, name)(*args, **kwargs)

    function_.__name__ = function_.__qualname__ = name
    function_.__doc__ = f"torch.{name}(x, ...): x.{name}(...), in place; returns x."
    return function_


# torch's top-level in-place functions that descent lacked (torch.exp_(x) and friends); not
# registered in the ops table (they are not module globals here): `gaps_math` exports them.
TOPLEVEL_INPLACE = {
    name: _function_form(name)
    for name in (
        "abs_", "acos_", "acosh_", "addmv_", "arccos_", "arccosh_", "arcsin_", "arcsinh_",
        "arctan_", "arctanh_", "asin_", "asinh_", "atan_", "atanh_", "ceil_", "clamp_",
        "clamp_max_", "clamp_min_", "clip_", "cos_", "cosh_", "deg2rad_", "exp_", "expm1_",
        "fix_", "floor_", "frac_", "gcd_", "lcm_", "ldexp_", "log10_", "log1p_", "log2_",
        "log_", "nan_to_num_", "neg_", "negative_", "rad2deg_", "reciprocal_", "rsqrt_",
        "sin_", "sinh_", "sqrt_", "square_", "tan_", "trunc_",
    )
}  # fmt: skip
