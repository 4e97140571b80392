"""torch.autograd.graph: hooks on the tensors that ops save for backward.

    with descent.autograd.graph.saved_tensors_hooks(pack, unpack):
        y = (x * w).sin()          # each saved tensor t is kept as pack(t)
    y.sum().backward()             # ... and read back as unpack(packed) when backward uses it

`save_on_cpu()` is the pair that moves saved tensors to host memory (pack: `t.to("cpu")` with
the tensor's device remembered; unpack: back to that device); on the CPU it changes nothing.
`disable_saved_tensors_hooks(message)` makes entering `saved_tensors_hooks` raise
`RuntimeError(message)` inside it, as in PyTorch.

How it attaches to the engine, at no cost when no hooks are active: `autograd.record_node`
tests one module-level variable (`autograd._saved_hooks`, the innermost active context or
None) and, when set, calls its `pack_node`, which replaces what the node saved (`node.saved`,
the inputs; `node.out_data`, the output) by `autograd.PackedSaved` tuples of `_Slot`s. The
node's `inputs()` / `output()` unpack them each time backward reads them (one type test there).
Unpack belongs to the slot, so a backward after the `with` block still unpacks. A ctx-style
custom function's `ctx.save_for_backward` packs the same way (autograd_torch.py).

What descent saves differs from PyTorch's in places (descent's Mul saves both inputs where
PyTorch saves only the one the other's gradient needs; arrays an op keeps in `saved_slots` are
not tensors and are not packed), so hook call counts match PyTorch's for the common ops
(products, unary math, matmul, outputs of exp/tanh/sigmoid), not for every op.
"""

from __future__ import annotations

from collections.abc import Callable

from . import autograd

__all__ = [
    "Node",
    "disable_saved_tensors_hooks",
    "increment_version",
    "save_on_cpu",
    "saved_tensors_hooks",
]

_stack: list = []  # the active saved_tensors_hooks contexts, innermost last
_disabled: list = []  # messages of the active disable_saved_tensors_hooks blocks


class _Slot:
    """One saved tensor under hooks: what pack returned, the unpack to apply, and what
    create_graph needs to put the unpacked value back at the tensor's place in the graph."""

    __slots__ = ("packed", "unpack_hook", "version", "node", "leaf", "shape")

    def __init__(self, t, pack_hook, unpack_hook) -> None:
        self.version = t._version
        self.shape = t.shape  # for the engine's in-place error message
        self.node = t._node
        self.leaf = t if (t._node is None and t._rg) else None  # a leaf: its gradient's target
        self.unpack_hook = unpack_hook
        self.packed = pack_hook(t)

    @property
    def _version(self):
        """The engine's in-place check: the tensor's own version while pack kept the tensor
        itself (a change after saving raises, as in PyTorch), else the version at save time."""
        p = self.packed
        return p._version if isinstance(p, autograd._tensor_class) else self.version

    def unpack(self, graph: bool = False):
        t = self.unpack_hook(self.packed)
        if not isinstance(t, autograd._tensor_class):
            raise TypeError(
                f"saved_tensors_hooks: unpack_hook returned {type(t).__name__}; it must return "
                "a Tensor (the saved tensor's value)"
            )
        if graph:  # create_graph: the value at the saved tensor's place in the graph
            if self.leaf is not None:
                return self.leaf  # a leaf's gradient must reach the leaf object itself
            if self.node is not None and t._node is not self.node:
                return autograd.new_tensor(t._data, True, self.node)
        return t


class saved_tensors_hooks:  # noqa: N801 - PyTorch's name
    """Context manager: ops recorded inside save `pack_hook(t)` instead of each tensor t they
    keep for backward, and backward reads `unpack_hook(packed)`.

    Args:
        pack_hook: Tensor -> anything (it must not modify the tensor in place).
        unpack_hook: what pack returned -> a Tensor of the same value.

    Raises:
        RuntimeError: on entering, inside `disable_saved_tensors_hooks`.
    """

    def __init__(self, pack_hook: Callable, unpack_hook: Callable) -> None:
        self.pack_hook = pack_hook
        self.unpack_hook = unpack_hook

    def __enter__(self):
        if _disabled:
            raise RuntimeError(_disabled[-1])
        _stack.append(self)
        autograd._saved_hooks = self
        return self

    def __exit__(self, *exc) -> None:
        _stack.remove(self)
        autograd._saved_hooks = _stack[-1] if _stack else None

    def pack_node(self, node, out) -> None:
        """Called by autograd.record_node: pack the node's saved inputs and saved output."""
        pack, unpack = self.pack_hook, self.unpack_hook
        saved = node.saved
        if saved is not None:
            node.saved = autograd.PackedSaved([_Slot(t, pack, unpack) for t in saved])
        if node.out_data is not None and out is not None:
            node.out_data = autograd.PackedSaved([_Slot(out, pack, unpack)])

    def pack_tensors(self, tensors) -> tuple:
        """ctx.save_for_backward's tensors, packed (None stays None)."""
        pack, unpack = self.pack_hook, self.unpack_hook
        return tuple(None if t is None else _Slot(t, pack, unpack) for t in tensors)


class save_on_cpu(saved_tensors_hooks):  # noqa: N801 - PyTorch's name
    """Saved tensors are kept in host memory and moved back to their device when backward
    reads them (PyTorch's `save_on_cpu`). On the CPU both moves are no-ops.

    Args:
        pin_memory: accepted for PyTorch compatibility (descent has no pinned memory).
        device_type: accepted for PyTorch compatibility.
    """

    def __init__(self, pin_memory: bool = False, device_type: str = "cuda") -> None:
        def pack(t):
            return (t.device, t.to("cpu"))

        def unpack(packed):
            device, t = packed
            return t.to(device)

        super().__init__(pack, unpack)


class disable_saved_tensors_hooks:  # noqa: N801 - PyTorch's name
    """Inside it, entering `saved_tensors_hooks` raises `RuntimeError(error_message)` (for
    code whose saved tensors must not be intercepted)."""

    def __init__(self, error_message: str) -> None:
        self.error_message = error_message

    def __enter__(self) -> None:
        _disabled.append(self.error_message)

    def __exit__(self, *exc) -> None:
        _disabled.remove(self.error_message)


class _NodeMeta(type):
    def __instancecheck__(cls, obj) -> bool:
        from .grad_fn import AccumulateGrad

        return isinstance(obj, (autograd.Function, AccumulateGrad))


class Node(metaclass=_NodeMeta):
    """torch.autograd.graph.Node, for isinstance checks: `isinstance(t.grad_fn, Node)` holds
    for descent's graph nodes (the ops' Function objects, custom functions' nodes) and for the
    AccumulateGrad objects of `next_functions`, as in PyTorch."""


def increment_version(tensor) -> None:
    """Mark tensor (or each tensor of an iterable) as modified in place: a backward that saved
    it before then raises, as after any in-place op."""
    tensors = [tensor] if isinstance(tensor, autograd._tensor_class) else list(tensor)
    for t in tensors:
        t._version += 1
