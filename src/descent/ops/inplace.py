"""In-place updates: x += y, x.add_(y), x.copy_(src), x.fill_(v), x.masked_fill_(m, v), ...

Two ways to run, chosen per call:

* Under no_grad (or on tensors outside any graph) they write into the existing array, so views
  and optimizer state see the change. This is how optimizers update parameters.
* When the result must be recorded (grad mode on, and the tensor or the operand requires grad),
  the out-of-place op runs on an alias of the tensor and the tensor is rebound to the result
  (`_rebind`): the old value stays available to the nodes that saved it, and the graph gets a
  node for the update, so gradients flow through it as through any op.

Either way the version counter goes up. Why: a node that saved the tensor for backward (Mul
saves both inputs) would otherwise use the new value in backward and silently produce a wrong
gradient; the engine compares the saved version with the current one and raises instead.
A leaf that requires grad may not be changed in place while grad mode is on (PyTorch's rule):
its gradient would no longer be the gradient of anything the user computed.
"""

from __future__ import annotations

from .. import backend
from ..autograd import overwrote_saved_output
from ..grad_mode import is_grad_enabled
from ..tensor import Tensor
from ._common import as_tensor, check_devices
from .arithmetic import add, div, mul, sub
from .elementwise import cast, clamp, clip_array, clone, masked_fill


# The version counter is what makes in-place changes safe: nodes record the versions of the
# inputs they saved (autograd.record_node) and backward compares them (run_backward).
def _bump(t: Tensor) -> None:
    t._version += 1


def _written(t: Tensor) -> None:
    # An unrecorded write into t's array (the array paths below). Besides the version bump: when
    # that array is the output its op saved for backward (Exp, Tanh, Sigmoid...), backward through
    # the op must raise as PyTorch's does, not read the new values as the op's output.
    _bump(t)
    overwrote_saved_output(t)


def _check_leaf_inplace(t: Tensor, op: str) -> None:
    # A leaf that requires grad is a parameter: changing it under grad mode would make its
    # gradient refer to a value that no longer exists. Optimizers update under no_grad.
    if t._rg and t._node is None and is_grad_enabled():
        raise RuntimeError(
            f"{op}: a leaf tensor that requires grad (shape {tuple(t.shape)}) is being "
            "modified in place "
            "while grad mode is on; wrap the update in `with descent.no_grad():`"
        )


def _records(t: Tensor, *others) -> bool:
    # Recorded when a gradient could flow through the update: grad mode on and t or an operand
    # requires grad. Otherwise the cheap path writes into the array.
    if not is_grad_enabled():
        return False
    return t._rg or any(isinstance(o, Tensor) and o._rg for o in others)


def _rebind(t: Tensor, result: Tensor) -> Tensor:
    """Make t the result of a recorded in-place op. The op was applied to `t._alias()` (a
    second Tensor object holding t's old value and node), so what it saved for backward is not
    changed by rebinding t here."""
    # Rebinding mutates t (the user's object), not the alias: every reference the user holds now
    # sees the new value and its node, as after PyTorch's in-place op.
    t._data = result._data
    t._node = result._node
    t._rg = result._rg
    _bump(t)
    return t


def _inplace(t: Tensor, other, outofplace, ufunc: str, op: str) -> Tensor:
    _check_leaf_inplace(t, op)
    if _records(t, other):
        return _rebind(t, outofplace(t._alias(), other))
    # The array path: one ufunc with out=t.data. casting="same_kind" refuses e.g. writing
    # float results into an int tensor instead of truncating silently.
    o = other._data if isinstance(other, Tensor) else other
    xp = backend.get_array_module(t._data)
    if isinstance(other, Tensor):
        check_devices(op, t, other)
    getattr(xp, ufunc)(t._data, o, out=t._data, casting="same_kind")
    _written(t)
    return t


def add_(t: Tensor, other) -> Tensor:
    return _inplace(t, other, add, "add", "add_")


def sub_(t: Tensor, other) -> Tensor:
    return _inplace(t, other, sub, "subtract", "sub_")


def mul_(t: Tensor, other) -> Tensor:
    return _inplace(t, other, mul, "multiply", "mul_")


def div_(t: Tensor, other) -> Tensor:
    return _inplace(t, other, div, "true_divide", "div_")


def clamp_(t: Tensor, min=None, max=None) -> Tensor:
    _check_leaf_inplace(t, "clamp_")
    if _records(t):
        return _rebind(t, clamp(t._alias(), min, max))
    t._data[...] = clip_array(t._data, min, max)
    _written(t)
    return t


def copy_(t: Tensor, src) -> Tensor:
    """Copy `src`'s values into t (broadcasting); differentiable with respect to src."""
    _check_leaf_inplace(t, "copy_")
    src = as_tensor(src, t)
    # t's old value is overwritten entirely, so the recorded form needs no alias: the result is a
    # copy of src in t's dtype and shape; the gradient flows to src only.
    if _records(t, src):
        b = src if src.shape == t.shape else src.broadcast_to(t.shape)
        return _rebind(t, clone(cast(b, t.dtype)))
    # copy_ moves data across devices (PyTorch's copy_ does), unlike arithmetic, which refuses.
    if src.device != t.device:
        t._data[...] = backend.to_device(src._data, t.device)
    else:
        t._data[...] = src._data
    _written(t)
    return t


def fill_(t: Tensor, value) -> Tensor:
    _check_leaf_inplace(t, "fill_")
    # x * 0 + value keeps x's dtype and shape in the graph, and gives a tensor value its gradient.
    if _records(t, value):
        return _rebind(t, t._alias() * 0 + value)
    t._data[...] = value._data if isinstance(value, Tensor) else value
    _written(t)
    return t


def masked_fill_(t: Tensor, mask, value) -> Tensor:
    _check_leaf_inplace(t, "masked_fill_")
    if _records(t, value):
        return _rebind(t, masked_fill(t._alias(), mask, value))
    mask = as_tensor(mask)
    xp = backend.get_array_module(t._data)
    # copyto with where= writes only the masked entries, in place, with broadcasting.
    xp.copyto(t._data, value._data if isinstance(value, Tensor) else value, where=mask._data)
    _written(t)
    return t
