"""In-place elementwise math, PyTorch's trailing-underscore methods: `x.exp_()`, `x.relu_()`,
`x.sigmoid_()`, `x.clamp_min_(0)`, ...

Each runs the out-of-place op (`x.exp()`) and follows the rules of `descent.ops.inplace` (the
in-place arithmetic `x += y`), using its pieces:

* recorded (grad mode on and x requires grad): the op runs on an alias of x's old value and x is
  rebound to the result, so the graph gets one node for the update and gradients flow through it;
* otherwise the result is written into x's array, so views of x see it;
* either way x's version counter goes up: a node that saved x as an input (Mul saves both
  inputs, Log its input) then raises PyTorch's "modified by an inplace operation" error
  instead of using the new value;
* when x is the output of a node that saved its output array (Exp, Sqrt, Tanh, Sigmoid do),
  the unrecorded path gives x a new array instead of overwriting that one, so the node's
  backward stays right (PyTorch raises there instead: descent's result is correct, not an error);
* a leaf that requires grad may not be changed in place under grad mode (RuntimeError).

A result dtype that x cannot hold (`exp_` of an int64 tensor gives float32) raises, as in
PyTorch, instead of truncating. The functions are registered in Tensor's ops table when this
module is imported (by `descent/__init__.py`), as `descent.creation` registers the random fills.
"""

from __future__ import annotations

from . import tensor_methods
from .autograd import _overwrote_saved_output as overwrote_saved_output
from .errors import DescentError
from .grad_mode import no_grad
from .ops.inplace import _check_leaf_inplace, _rebind, _records, _write_failed, _written
from .ops.overlap_rounds import internal_overlap
from .ops.overlap_rounds import once as overlap_once
from .ops.overlap_rounds import recorded as overlap_recorded
from .ops.overlap_rounds import write as overlap_write
from .ops.view_write import redo_assign
from .tensor import Tensor

# Tensor method -> the in-place method made from it (`exp` -> `exp_`).
_UNARY = (
    "exp", "log", "sqrt", "rsqrt", "abs", "neg", "relu", "sigmoid", "tanh", "sin", "cos",
    "log1p", "expm1", "reciprocal", "sign", "floor", "ceil", "trunc", "square",
)  # fmt: skip


def unary_(t: Tensor, name: str, *args, **kwargs) -> Tensor:
    """Replace t's values by `getattr(t, name)(*args, **kwargs)`, in place (see the module
    docstring). Tensor arguments (`x.xlogy_(y)`) take part in the decision to record.

    Raises:
        RuntimeError: t is a leaf that requires grad and grad mode is on, the op's result
            dtype cannot be stored in t (an integer tensor and a floating result), or an
            argument would broadcast t to a larger shape.
    """
    op = f"{name}_"
    try:
        _check_leaf_inplace(t, op)
    except DescentError:  # an expanded t: the op's own dtype check comes first in PyTorch
        _dtype_error_first(t, name, args, kwargs)
        raise
    # (an unfold's shared elements: ops/overlap_rounds)
    if t._data.base is not None and internal_overlap(t._data):
        return _overlapping(t, name, op, args, kwargs)
    if _records(t, *args):
        # The alias keeps t's old value and node for whatever the op saves for backward.
        out = getattr(t._alias(), name)(*args, **kwargs)
        return _rebind(t, _fit(t, out, op, name))
    out = getattr(t, name)(*args, **kwargs)  # not recorded: no input of it requires grad
    values = _fit(t, out, op, name)._data
    write_values(t, values)
    _written(t, (redo_assign, values))  # t's version, and its views' and base's (one counter)
    return t


def _overlapping(t: Tensor, name: str, op: str, args, kwargs) -> Tensor:
    """unary_ of a t whose elements share memory: PyTorch's visits (ops/overlap_rounds)."""

    def values():  # the op's result from t's current values
        return _fit(t, getattr(t, name)(*args, **kwargs), op, name)._data

    if _records(t, *args):
        out = getattr(overlap_once(t._alias(), t._data), name)(*args, **kwargs)
        out = overlap_recorded(t, _fit(t, out, op, name), values, args)
        return _rebind(t, out, overlap_ok="copy")
    return overlap_write(t, values, args)


def _dtype_error_first(t: Tensor, name: str, args, kwargs) -> None:
    """Raise the op's refusal of t's dtype, if any (relu_ of a complex tensor: PyTorch's
    NotImplementedError), which PyTorch checks before the written-to tensor's memory overlap.
    Only on the error path."""
    try:
        with no_grad():
            getattr(t.detach(), name)(*args, **kwargs)
    except NotImplementedError as e:  # (DtypeError, UnsupportedError)
        raise e from None
    except Exception:  # noqa: BLE001, S110 - any other error: the overlap error stands
        pass


def _fit(t: Tensor, out: Tensor, op: str, name: str) -> Tensor:
    """out checked (and cast) to be stored in t: t's shape, and t's dtype when both are
    floating (PyTorch writes a float64 result into a float32 tensor; never a float into an
    integer one)."""
    if out.shape != t.shape:
        raise RuntimeError(
            f"{op}: output with shape {tuple(t.shape)} doesn't match the broadcast shape "
            f"{tuple(out.shape)}; use the out-of-place {name}()"
        )
    if out.dtype != t.dtype:
        if out.dtype.kind in "fV" and t.dtype.kind in "fV":
            return out.to(t.dtype)
        raise RuntimeError(
            f"{op}: result type {out.dtype} can't be cast to the desired output type "
            f"{t.dtype} (shape {tuple(t.shape)}); use the out-of-place {name}() or convert "
            "the tensor first, e.g. x = x.float()"
        )
    return out


def write_values(t: Tensor, values) -> None:
    """Write `values` (an array, broadcastable to t) into t's array, the unrecorded in-place
    path: in place, so views of t see the new values. When t's array is the output its op saved
    for backward (Exp, Tanh, ...), backward through that op then raises as PyTorch's does
    (autograd.overwrote_saved_output) instead of giving a wrong gradient without an error."""
    try:
        t._data[...] = values
    except ValueError:  # an expanded t: PyTorch's error, not NumPy's
        _write_failed(t, values, "in-place op")
    overwrote_saved_output(t)


def _make(name: str):
    def method_(t: Tensor) -> Tensor:
        return unary_(t, name)

    method_.__name__ = method_.__qualname__ = f"{name}_"
    method_.__doc__ = f"x.{name}_(): x.{name}() written into x (see descent.inplace_unary)."
    return method_


tensor_methods.register_ops({f"{name}_": _make(name) for name in _UNARY})
