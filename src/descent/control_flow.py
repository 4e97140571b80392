"""Control flow as functions: `torch.cond` and `torch._higher_order_ops`' `while_loop`, `scan`,
`map` and `associative_scan`.

PyTorch offers these so that `torch.compile` and `torch.export` can capture data-dependent
branches and loops as one graph node. descent runs them eagerly, with PyTorch's signatures and
results, so code written with them runs unchanged; gradients flow through the branch taken and
every loop step as through any Python code:

    y = descent.cond(x.sum() > 0, lambda x: x.cos(), lambda x: x.sin(), (x,))
    i, h = while_loop(lambda i, h: i < 3, lambda i, h: (i + 1, h.tanh()), (descent.tensor(0), h0))
    last, ys = scan(lambda c, x: (c @ W + x, c), init, xs)     # an RNN over xs' first dim

One difference: PyTorch traces both branches of `cond` and checks that they return the same
structure, shapes and dtypes; descent runs only the branch `pred` picks, so a mismatch in the
other branch goes unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .tensor import Tensor

__all__ = ["cond", "while_loop", "scan", "map", "associative_scan"]


def _truth(value, what: str) -> bool:
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise RuntimeError(f"Expected {what} to be bool or single-element tensor, but got "
                               f"{value}.")  # fmt: skip
        return bool(value.item())
    if isinstance(value, (bool, int, float)):
        return bool(value)
    raise RuntimeError(f"Expected {what} to be bool or single-element tensor, but got "
                       f"{type(value).__name__}.")  # fmt: skip


def cond(pred, true_fn: Callable, false_fn: Callable, operands: tuple | list = ()) -> Any:
    """`true_fn(*operands)` if `pred` (a bool or one-element tensor), else `false_fn(*operands)`."""
    if not isinstance(operands, (tuple, list)):
        raise RuntimeError(f"Expect operands to be a tuple of possibly nested dict/list/tuple "
                           f"that only consists of tensor leaves, but got {operands}.")  # fmt: skip
    if not (callable(true_fn) and callable(false_fn)):
        raise RuntimeError("Expect both branches to be callable.")
    return (true_fn if _truth(pred, "pred") else false_fn)(*operands)


def while_loop(cond_fn: Callable, body_fn: Callable, carried_inputs: tuple | list) -> tuple:
    """Run `carried = body_fn(*carried)` while `cond_fn(*carried)`; returns the final tuple."""
    if not isinstance(carried_inputs, (tuple, list)):
        raise RuntimeError(f"carried_inputs must be a tuple or list, got "
                           f"{type(carried_inputs).__name__}")  # fmt: skip
    carried = tuple(carried_inputs)
    while _truth(cond_fn(*carried), "cond_fn's output"):
        out = body_fn(*carried)
        out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        if len(out) != len(carried):
            raise RuntimeError(f"body_fn returned {len(out)} values for {len(carried)} carried "
                               "inputs: it must return one per carried input")  # fmt: skip
        carried = out
    return carried


def _length(leaves: list, dim: int, what: str) -> int:
    if not leaves:
        raise RuntimeError(f"{what}: xs must hold at least one tensor")
    sizes = {int(t.shape[dim]) for t in leaves}
    if len(sizes) != 1:
        raise RuntimeError(f"{what}: every tensor of xs must have the same size along dim {dim}, "
                           f"got {sorted(sizes)}")  # fmt: skip
    return sizes.pop()


def _stack_trees(trees: list, dim: int):
    from .ops.shape import stack  # noqa: PLC0415
    from .utils._pytree import tree_flatten, tree_unflatten  # noqa: PLC0415

    leaves0, spec = tree_flatten(trees[0])
    per_leaf = [[] for _ in leaves0]
    for t in trees:
        leaves, s = tree_flatten(t)
        if s != spec:
            raise RuntimeError(f"the function's outputs changed structure between steps: {spec} "
                               f"then {s}")  # fmt: skip
        for i, v in enumerate(leaves):
            per_leaf[i].append(v)
    return tree_unflatten([stack(vs, dim) for vs in per_leaf], spec)


def scan(combine_fn: Callable, init: Any, xs: Any, *, dim: int = 0,
         reverse: bool = False) -> tuple[Any, Any]:  # fmt: skip
    """`carry, y = combine_fn(carry, x)` over the slices of `xs` along `dim` (from the end with
    reverse=True); returns (final carry, the ys stacked along `dim` at their slices' places)."""
    from .utils._pytree import tree_flatten, tree_unflatten  # noqa: PLC0415

    leaves, spec = tree_flatten(xs)
    n = _length(leaves, dim, "scan")
    order = range(n - 1, -1, -1) if reverse else range(n)
    carry, ys = init, [None] * n
    for i in order:
        x = tree_unflatten([t.select(dim, i) for t in leaves], spec)
        out = combine_fn(carry, x)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise RuntimeError("scan: combine_fn must return a tuple (next_carry, y)")
        carry, ys[i] = out
    return carry, _stack_trees(ys, dim) if n else ys


def map(f: Callable, xs: Any, *args) -> Any:  # noqa: A001 - PyTorch's name
    """`f(x, *args)` for each slice `x` of `xs` along its first dimension, stacked."""
    from .utils._pytree import tree_flatten, tree_unflatten  # noqa: PLC0415

    leaves, spec = tree_flatten(xs)
    n = _length(leaves, 0, "map")
    outs = [f(tree_unflatten([t[i] for t in leaves], spec), *args) for i in range(n)]
    return _stack_trees(outs, 0)


def associative_scan(combine_fn: Callable, xs: Any, dim: int, reverse: bool = False,
                     combine_mode: str = "pointwise") -> Any:  # fmt: skip
    """The inclusive scan of `xs` along `dim` under `combine_fn` (associative): out[i] =
    combine_fn(out[i-1], xs[i]) (from the end with reverse=True). `combine_mode` is accepted
    ("pointwise" or "generic"; PyTorch runs "pointwise" on GPUs only, descent in both modes)."""
    from .utils._pytree import tree_flatten, tree_unflatten  # noqa: PLC0415

    if combine_mode not in ("pointwise", "generic"):
        raise ValueError(f"Combine_mode must either 'pointwise' or 'generic', but got "
                         f"{combine_mode}")  # fmt: skip
    leaves, spec = tree_flatten(xs)
    n = _length(leaves, dim, "associative_scan")
    order = list(range(n - 1, -1, -1) if reverse else range(n))
    outs: list = [None] * n
    acc = None
    for i in order:
        x = tree_unflatten([t.select(dim, i) for t in leaves], spec)
        acc = x if acc is None else combine_fn(acc, x)
        outs[i] = acc
    return _stack_trees(outs, dim)
