"""PyTorch's view of a graph node (`tensor.grad_fn`): `name()` and `next_functions`.

descent's nodes (`descent.autograd.Function`) record their parents as they are: per input,
the node that produced it, the leaf tensor itself, or None. PyTorch shows the same graph
through two names that programs written for it read:

* `grad_fn.name()` is a METHOD there ("SumBackward0"), while descent's own code reads
  `node.name` as an attribute. `NodeName` is a `str` that can also be called, so both spellings
  give the name (descent's names have no trailing digit: "SumBackward").
* `grad_fn.next_functions` is a tuple of `(node, 0)` pairs, one per input: the producing node,
  an `AccumulateGrad` for a leaf that requires grad (its `.variable` is the leaf), or None for an
  input that gets no gradient. It is computed when asked for, from `node.parents`: recording a
  node costs nothing more.

This module sits below the engine and imports nothing from descent.
"""

from __future__ import annotations


class NodeName(str):
    """A node's name: a `str` (descent's `node.name`) that is also callable (`grad_fn.name()`,
    PyTorch's spelling), returning the plain string."""

    __slots__ = ()

    def __call__(self) -> str:
        return str.__str__(self)


class AccumulateGrad:
    """PyTorch's node for a leaf in `next_functions`: `.variable` is the leaf tensor.

    descent delivers a leaf's gradient into `.grad` in the engine itself and has no such node
    in its graph; this stand-in is made when `next_functions` is read. Two stand-ins for the same
    leaf compare equal (PyTorch returns the same object for them).
    """

    __slots__ = ("variable",)

    def __init__(self, variable) -> None:
        self.variable = variable

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    @property
    def next_functions(self) -> tuple:
        return ()

    def __eq__(self, other) -> bool:
        return isinstance(other, AccumulateGrad) and other.variable is self.variable

    def __hash__(self) -> int:
        return hash((AccumulateGrad, id(self.variable)))

    def __repr__(self) -> str:
        return f"<AccumulateGrad of a leaf of shape {tuple(self.variable.shape)}>"


def next_functions(parents, node_class) -> tuple:
    """PyTorch's `next_functions` for a node whose recorded parents are `parents`: per input
    `(node, 0)`, `(AccumulateGrad(leaf), 0)` or `(None, 0)`; `node_class` is the engine's
    Function (passed in: this module sits below the engine)."""
    return tuple(
        (p if p is None or isinstance(p, node_class) else AccumulateGrad(p), 0) for p in parents
    )


# -- node hooks (grad_fn.register_prehook / register_hook) ------------------------------------
# They live in the node's `hooks` list, next to the tensor hooks of its output (which are
# pre-hooks of the node already): a pre-hook is wrapped to look like one, a post-hook is a
# _PostHook the tensor-hook loop skips and the engine calls after the node's backward.


class _PostHook:
    __slots__ = ("fn",)

    def __init__(self, fn) -> None:
        self.fn = fn


def _add(node, entry, handle_class):
    if node.hooks is None:
        node.hooks = []
    node.hooks.append(entry)
    return handle_class(node.hooks, entry)


def register_prehook(node, hook, handle_class):
    """`grad_fn.register_prehook(hook)`: `hook(grad_outputs)` before the node's backward; a
    returned tuple replaces grad_outputs (descent's nodes have one output)."""

    def as_tensor_hook(g):
        r = hook((g,))
        return None if r is None else r[0]

    as_tensor_hook.__wrapped_prehook__ = hook
    return _add(node, as_tensor_hook, handle_class)


def register_hook(node, hook, handle_class):
    """`grad_fn.register_hook(hook)`: `hook(grad_inputs, grad_outputs)` after the node's
    backward; a returned tuple replaces grad_inputs (the gradients sent to its inputs)."""
    return _add(node, _PostHook(hook), handle_class)


def run_post_hooks(node, gy, gxs, create_graph: bool, wrap, zero_marker):
    """The engine's call after `node.backward`: gxs (a tuple or one gradient) through the
    node's post-hooks, as Tensors (`wrap` makes one; known-zero gradients show as None)."""
    posts = [h for h in node.hooks if type(h) is _PostHook]
    if not posts:
        return gxs
    bare = type(gxs) is not tuple
    items = (gxs,) if bare else gxs
    ins = tuple(None if g is None or g is zero_marker else (g if create_graph else wrap(g))
                for g in items)  # fmt: skip
    outs = (gy if create_graph else wrap(gy),)
    for h in posts:
        r = h.fn(ins, outs)
        if r is not None:
            if len(r) != len(ins):
                raise RuntimeError(
                    f"hook of {node.name} returned {len(r)} gradients; the node has {len(ins)} "
                    "inputs"
                )
            ins = tuple(r)
    new = tuple(None if g is None else (g if create_graph else g._data) for g in ins)
    return new[0] if bare else new
