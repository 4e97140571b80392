"""torch.autograd.forward_ad: dual tensors for forward-mode AD (JVPs), PyTorch's API.

    >>> import descent as ds
    >>> import descent.autograd.forward_ad as fwAD
    >>> with fwAD.dual_level():
    ...     x = fwAD.make_dual(ds.tensor([1.0, 2.0]), ds.tensor([1.0, 0.0]))
    ...     y = (x * x).sum()
    ...     fwAD.unpack_dual(y).tangent  # d/dx sum(x^2) . v = 2 x . v
    tensor(2.)

How it works. descent's engine is reverse mode only, so a dual tensor is not a (primal, tangent)
pair that every op propagates; it rides on the reverse-mode graph instead (no per-op JVP rule,
and nothing added to any op's path):

* `make_dual(primal, tangent)` returns `_MakeDual(primal, z)`: the primal's values (a view, as
  PyTorch's), recorded as a graph node whose second input `z` is a private leaf that requires
  grad. Every op on a dual therefore records a graph, as any op on a tensor requiring grad does.
  The level remembers the node and its tangent.
* `unpack_dual(y)` computes J v by the double-vjp trick (the one `descent.func.jvp` uses): the
  vjp u -> J^T u is linear in u, so d<J^T u, v>/du = J v. Pass 1 backpropagates a `u` (ones) from
  y to the duals with create_graph=True (giving g_i = J_i^T u as functions of u); pass 2
  backpropagates the tangents v_i from the g_i to u, giving sum_i J_i v_i. Both passes stop as
  soon as every asked-for node has its gradient (the engine's capture), and both retain y's
  graph, so y can be unpacked again or backpropagated later.
* Leaving the level forgets the duals: unpack_dual then gives tangent None, as in PyTorch.

Differences from PyTorch (docs/forward_ad.md): every op on the path needs a differentiable
backward (the fused kernels without one raise, naming the op); inside a level, tensors computed
from a dual report `requires_grad=True` (they carry the graph the tangent is read from); and
ops run under `no_grad()` record nothing, so their results carry no tangent (PyTorch's forward
AD ignores no_grad). Only one level at a time, as in PyTorch ("Nested forward mode AD is not
supported at the moment").
"""

from __future__ import annotations

import contextlib as _contextlib
from typing import NamedTuple

from . import autograd as _autograd
from .autograd import Function as _Function
from .autograd import enable_grad as _enable_grad
from .autograd_custom_jvp import forward_mode_pass as _forward_mode_pass
from .creation import ones_like as _ones_like
from .creation import zeros_like as _zeros_like
from .ops.elementwise import Clone as _Clone
from .tensor import Tensor as _Tensor

__all__ = ["UnpackedDualTensor", "dual_level", "enter_dual_level", "exit_dual_level",
           "make_dual", "unpack_dual"]  # fmt: skip


class UnpackedDualTensor(NamedTuple):
    """unpack_dual's result (torch.autograd.forward_ad.UnpackedDualTensor)."""

    primal: _Tensor
    tangent: _Tensor | None


class _MakeDual(_Function):
    """y = primal; the second input is the dual's private leaf. d/dprimal = d/dleaf = identity:
    the gradient reaching the leaf is d(output)/d(dual), which unpack_dual reads."""

    zero_passes = True

    def forward(self, primal, leaf):
        return primal.view()  # a view, as PyTorch's make_dual: in-place changes reach primal

    def backward(self, gy, ops):
        return gy, gy


# The one level's state: None outside a level, else {dual node: its tangent}. A dict keeps the
# duals in creation order (the order pass 2 seeds them in).
_level: dict | None = None


def enter_dual_level() -> int:
    """Enter the (only) forward-AD level and return its index, 0 (PyTorch's numbering).

    Raises:
        RuntimeError: a level is already active (PyTorch does not nest them either).
    """
    global _level
    if _level is not None:
        raise RuntimeError("Nested forward mode AD is not supported at the moment")
    _level = {}
    return 0


def exit_dual_level(*, level: int | None = None) -> None:
    """Leave the level: its duals are forgotten (unpack_dual gives tangent None after).

    Raises:
        RuntimeError: no level is active, or `level` is not the active one (0).
    """
    global _level
    if level is None:
        level = 0 if _level is not None else -1
    if level < 0:
        raise RuntimeError("Dual level must be a positive number.")
    if _level is None or level != 0:
        raise RuntimeError(
            f"Trying to exit a forward AD level ({level}) that was not the last one created "
            "(no level is active, or enter_dual_level() returned another one)."
        )
    _level = None


class dual_level(_contextlib.ContextDecorator):
    """Context manager (or decorator) for a forward-AD level: duals made inside are valid until
    it exits. `with dual_level() as level:` gives the level's index (0)."""

    def __enter__(self) -> int:
        return enter_dual_level()

    def __exit__(self, *exc) -> None:
        exit_dual_level()


def make_dual(tensor: _Tensor, tangent: _Tensor, *, level: int | None = None) -> _Tensor:
    """A dual tensor: `tensor`'s values (a view) carrying `tangent` in the active level.

    Args:
        tensor: the primal, a floating-point or complex Tensor. If it requires grad, reverse
            mode through the dual reaches it (as in PyTorch).
        tangent: the direction, same shape as the primal (cast to its dtype).
        level: the level (only 0, the active one).

    Returns:
        A Tensor whose results' tangents `unpack_dual` returns.

    Raises:
        RuntimeError: no level is active, the shapes differ, or the primal already carries a
            tangent in this level.
        ValueError: the primal or the tangent is neither floating point nor complex.
    """
    if _level is None or level not in (None, 0):
        raise RuntimeError(
            "Trying to create a dual Tensor for forward AD but no level exists, make sure to "
            "enter_dual_level() first."
        )
    for what, t in (("primal", tensor), ("tangent", tangent)):
        if not isinstance(t, _Tensor):
            raise TypeError(f"make_dual: expected the {what} to be a Tensor, got {type(t)}")
        if not (t.is_floating_point() or t.is_complex()):
            raise ValueError(f"Expected {what} to be floating point or complex, but got: {t.dtype}")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise RuntimeError(
            "Trying to set a forward gradient that has a different size than that of the "
            f"original Tensor, this is not supported. Tensor is of size {list(tensor.shape)} "
            f"while the given forward gradient is of size {list(tangent.shape)}."
        )
    if _duals_reached(tensor):
        raise RuntimeError(
            "Making a dual Tensor based on a Tensor that already has a forward gradient at the "
            "same level 0 is not supported."
        )
    if tangent.dtype != tensor.dtype:
        tangent = tangent.to(tensor.dtype)  # no silent upcast of the results (STYLE.md)
    leaf = _autograd._new_tensor(tensor._data, True)  # private: only its gradient is read
    with _enable_grad():  # a dual made under no_grad still records (PyTorch's does too)
        dual = _MakeDual.apply(tensor, leaf)
    _level[dual._node] = tangent
    return dual


def unpack_dual(tensor: _Tensor, *, level: int | None = None) -> UnpackedDualTensor:
    """(primal, tangent) of `tensor`: the tangent is J v summed over the level's duals (None
    when no dual reaches `tensor`, or outside a level), the primal `tensor`'s values.

    Raises:
        RuntimeError: an op between the duals and `tensor` has a backward that cannot be
            differentiated (a fused kernel); the message names it.
    """
    if not isinstance(tensor, _Tensor):
        raise TypeError(f"unpack_dual: expected a Tensor, got {type(tensor)}")
    duals = _duals_reached(tensor) if _level is not None and level in (None, 0) else []
    if not duals:
        return UnpackedDualTensor(tensor, None)
    real = _has_outside_leaf(tensor)
    primal = tensor if real else tensor.detach()
    if tensor._node in _level:  # a dual itself: its own tangent
        return UnpackedDualTensor(primal, _level[tensor._node])
    if not (tensor.is_floating_point() or tensor.is_complex()):
        return UnpackedDualTensor(primal, None)
    tangents = [_level[d] for d in duals]
    # The tangent carries a graph (reverse mode over forward mode) when something outside the
    # level needs gradients: the primal, a tangent or a model parameter requires grad.
    create_graph = _autograd._is_grad_enabled() and (real or any(t.requires_grad for t in tangents))
    try:
        tangent = _jvp(tensor, duals, tangents, create_graph)
    except RuntimeError as e:
        if "create_graph" not in str(e):
            raise
        raise RuntimeError(
            f"forward_ad.unpack_dual: the tangent of a tensor of shape {tuple(tensor.shape)} "
            f"cannot be computed: {e} descent's forward mode differentiates backward passes "
            "(docs/forward_ad.md), so every op between make_dual and unpack_dual needs a "
            "differentiable backward; use the op's composite (non-fused) form, or "
            "descent.func.jacrev for reverse mode."
        ) from None
    return UnpackedDualTensor(primal, tangent)


def _jvp(y: _Tensor, duals: list, tangents: list, create_graph: bool) -> _Tensor:
    """sum_i J_i v_i for y = f(duals) by the double-vjp trick (see the module docstring)."""
    from .autograd_torch import grad as _grad  # torch.autograd.grad, loaded on first use

    with _enable_grad():
        # u's value does not matter (linear), but not zeros: some backward formulas branch on a
        # zero gradient (xlogy's PyTorch rule, eigh/svd skip an unused output).
        u_leaf = _ones_like(y, requires_grad=True)
        # A node, not the leaf, is captured in pass 2: the engine stops at it instead of
        # walking the forward graph below (it would only compute unused second derivatives).
        u = _Clone.apply(u_leaf)
    # The dual tensors stand for their nodes as the captured inputs (pass 1 stops there too).
    # (d.parents[1] is the dual's private leaf: same shape and dtype as the dual.)
    inputs = [_autograd._new_tensor(d.parents[1]._data, True, d) for d in duals]
    with _forward_mode_pass():  # a custom Function's jvp staticmethod is used (autograd_custom_jvp)
        gs = _grad([y], inputs, [u], retain_graph=True, create_graph=True, allow_unused=True)
    pairs = [(g, v) for g, v in zip(gs, tangents) if g is not None and g.requires_grad]
    if not pairs:  # y depends on the duals with a zero derivative (sign, round, ...)
        return _zeros_like(y)
    (jv,) = _grad([g for g, _ in pairs], [u], [v for _, v in pairs], retain_graph=True,
                  create_graph=create_graph, allow_unused=True)  # fmt: skip
    return _zeros_like(y) if jv is None else jv


def _walk(t: _Tensor):
    """Every parent (node or leaf tensor) in t's graph, once each, by an explicit stack."""
    node = t._node
    if node is None:
        return
    stack, seen = [node], {node}
    while stack:
        node = stack.pop()
        yield node
        for p in node.parents:
            if p is None or p in seen:
                continue
            seen.add(p)
            if isinstance(p, _Function):
                stack.append(p)
            else:
                yield p


def _duals_reached(t: _Tensor) -> list:
    """The active level's dual nodes that t's graph reaches, in creation order."""
    if not _level or t._node is None:
        return []
    found = {p for p in _walk(t) if p in _level}
    return [d for d in _level if d in found]


def _has_outside_leaf(t: _Tensor) -> bool:
    """Whether t's graph reaches a leaf requiring grad that is not a dual's private leaf."""
    private = {id(d.parents[1]) for d in _level}
    return any(not isinstance(p, _Function) and id(p) not in private for p in _walk(t))
