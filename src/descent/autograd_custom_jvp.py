"""A custom Function's `jvp` staticmethod in forward mode (docs/forward_ad.md).

descent's forward mode is the double-vjp trick over the reverse graph (autograd_forward_ad.py,
func.py): pass 1 backpropagates u with create_graph, pass 2 differentiates the result with
respect to u along the tangents, giving J v. PyTorch's forward mode calls a custom Function's
`jvp(ctx, *tangents)` instead of differentiating its backward. To do the same, pass 1 runs
inside `forward_mode_pass()`, and a custom function's node (autograd_torch.CustomFunctionNode)
whose class defines `jvp` answers with `jvp_backward`: the values of its backward, each recorded
as a `CustomJvpNode` of the incoming gradient whose own backward (what pass 2 runs) is `jvp`.
"""

from __future__ import annotations

import threading

from . import array_backward, autograd, backend

__all__ = ["CustomJvpNode", "forward_mode", "forward_mode_pass", "jvp_backward"]


class CustomJvpNode(autograd.Function):
    """gx = (the user's backward(ctx, gy))[arg], recorded in the first pass of forward mode
    through a custom function with a `jvp` staticmethod; d<gx, w>/dgy = jvp(ctx, w at argument
    `arg`, zeros at the other Tensor arguments), packed like gy (the function's outputs).

    The double-vjp trick (autograd_forward_ad.py) reads J v as the second pass's gradient of
    <J^T u, v> with respect to u: with this node in J^T u's graph, that pass runs jvp on the
    input tangent, PyTorch's forward mode for such functions (a jvp that disagrees with backward
    gives jvp's tangent, as there). Only forward mode records it: `create_graph=True` passes
    differentiate backward itself.
    """

    __slots__ = ("fn", "arg", "value", "out_dtype")

    def forward(self, gy):
        return self.value  # computed by _jvp_backward

    def backward(self, w, ops):
        fn = self.fn
        ctx = fn.ctx
        if ctx is None:
            raise RuntimeError(fn._freed_message())
        graph = ops.is_graph
        w = w if graph else autograd._new_tensor(w)
        xp = backend.get_array_module(self.value)
        tangents: list = [None] * fn.n_args
        for k, i in enumerate(fn.positions):
            if k == self.arg:
                tangents[i] = w
            elif ctx.materialize_grads:  # PyTorch gives the other Tensor inputs zero tangents
                tangents[i] = autograd._new_tensor(xp.zeros(fn.in_shapes[k], self.value.dtype))
        saved = (ctx._saved, ctx._versions, ctx._output_links)
        # jvp's ctx.saved_tensors: save_for_forward's (empty without it, as PyTorch's)
        fs = ctx._forward_saved or ()
        ctx._saved = fs
        ctx._versions = tuple(None if t is None else t._version for t in fs)
        ctx._output_links = None
        try:
            with autograd.set_grad_enabled(graph):
                outs = fn.fn_cls.jvp(ctx, *tangents)
        finally:
            ctx._saved, ctx._versions, ctx._output_links = saved
        gy = _pack_tangents(fn, outs, xp, self.out_dtype)
        return gy if graph else gy._data


def _pack_tangents(fn, outs, xp, dtype):
    """jvp's output tangents as the node's output: the one tensor, or the floating outputs'
    tangents raveled and concatenated (fn.layout; None: zeros)."""
    if fn.layout is None:
        t = outs[0] if isinstance(outs, (tuple, list)) else outs
        return t if isinstance(t, autograd._tensor_class) else autograd._new_tensor(xp.asarray(t))
    from .ops.shape import cat  # noqa: PLC0415 (ops sit above this module's engine imports)

    outs = outs if isinstance(outs, (tuple, list)) else (outs,)
    parts = []
    for i, _, shape in fn.layout:
        t = outs[i] if i < len(outs) else None
        if t is None:
            t = autograd._new_tensor(xp.zeros(shape, dtype))
        parts.append(t.reshape(-1))
    return cat(parts, 0)


# Forward mode's first pass is running (autograd_forward_ad.unpack_dual, func.jvp's
# _Linearized): custom functions with a jvp staticmethod record CustomJvpNodes then. Per thread,
# as grad mode: another thread's create_graph pass is not forward mode.
class _ForwardModeState(threading.local):
    def __init__(self) -> None:
        self.passes = 0


forward_mode = _ForwardModeState()


class forward_mode_pass:
    """Context manager around the first (create_graph) pass of the double-vjp trick."""

    def __enter__(self) -> None:
        forward_mode.passes += 1

    def __exit__(self, *exc) -> None:
        forward_mode.passes -= 1


def jvp_backward(node, gy, ops) -> tuple:
    """CustomFunctionNode `node`'s backward in the first pass of forward mode (inside
    `forward_mode_pass`) for a function with a `jvp` staticmethod: the user's backward gives the
    values, and each gradient is a CustomJvpNode of gy whose transpose (what the second pass
    runs) is the user's jvp, so the tangent is jvp's, as in PyTorch (where forward mode calls
    jvp)."""
    with autograd.no_grad():  # values only: the graph is the CustomJvpNodes'
        g = autograd._new_tensor(gy._data)
        grads = node.fn_cls.backward(node.ctx, *node._grad_outputs(g, ops))
    grads = checked_grads(node, grads)
    out = []
    for k, i in enumerate(node.positions):
        gx = grads[i]
        if gx is None:
            out.append(None)
            continue
        gx = gx._data if isinstance(gx, autograd._tensor_class) else gx
        if gx.shape != node.in_shapes[k]:  # a broadcast gradient: the engine's sum
            gx = array_backward.sum_to(backend.get_array_module(gx), gx, node.in_shapes[k])
        out.append(CustomJvpNode.apply(gy, fn=node, arg=k, value=gx, out_dtype=gy._data.dtype))
    return tuple(out)


def checked_grads(node, grads) -> tuple:
    """A custom Function's backward result as a tuple with one entry per forward argument;
    raises naming the Function when the count is wrong (both backward paths use it)."""
    if not isinstance(grads, tuple):
        grads = (grads,)
    if len(grads) > node.n_args and all(g is None for g in grads[node.n_args :]):
        # PyTorch drops trailing Nones past the arguments given: a forward with defaulted
        # parameters (`forward(ctx, x, p=0.5, training=True)` applied to x alone) may return a
        # gradient slot for each of them
        grads = grads[: node.n_args]
    if len(grads) != node.n_args:
        raise RuntimeError(
            f"{node.fn_cls.__name__}.backward returned {len(grads)} gradients; forward took "
            f"{node.n_args} arguments (return None for those that need none)"
        )
    return grads
