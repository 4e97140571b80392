"""torch.fx.node: `Node`, one operation of a `Graph`, and `map_arg` / `map_aggregate`.

A node is one of six kinds (`op`): `placeholder` (an input of the function), `get_attr` (a
parameter, buffer or attribute of the root module), `call_function` (a free function such as
`operator.add` or `descent.relu`), `call_method` (a method of the first argument: `x.view`),
`call_module` (a submodule, by its dotted path) and `output` (the return value). Nodes live
in a doubly linked list owned by the graph; each knows its inputs (`all_input_nodes`) and its
`users` (the nodes that read it), kept consistent whenever `args` / `kwargs` are assigned.
"""

from __future__ import annotations

import builtins
import keyword
import operator
from collections.abc import Callable
from typing import Any

from ._names import pretty_target
from .immutable_collections import immutable_dict, immutable_list

__all__ = ["Argument", "Node", "Target", "map_aggregate", "map_arg"]

Target = Any  # a str (placeholder / get_attr / call_method / call_module) or a callable
Argument = Any  # a Node, a base value, or a tuple / list / dict / slice of Arguments

_OPS = ("placeholder", "call_method", "call_module", "call_function", "get_attr", "output", "root")

# Calls that must survive dead-code elimination although nothing reads their result.
_side_effectful_functions: set = {operator.setitem}


def _format_arg(arg, max_list_len: float = float("inf")) -> str:
    """torch's `_format_arg`: how `print(graph)` shows an argument (`%x` for a node)."""
    if isinstance(arg, list):
        items = ", ".join(_format_arg(a) for i, a in enumerate(arg) if i < max_list_len)
        more = "" if len(arg) < max_list_len + 1 else f", ...[total_len={len(arg)}]"
        return f"[{items}{more}]"
    if isinstance(arg, tuple):
        items = ", ".join(_format_arg(a) for i, a in enumerate(arg) if i < max_list_len)
        more = "" if len(arg) < max_list_len + 1 else f", ...[total_len={len(arg)}]"
        comma = "," if len(arg) == 1 else ""
        return f"({items}{comma}{more})"
    if isinstance(arg, dict):
        items = ", ".join(f"{k}: {_format_arg(v)}" for k, v in arg.items())
        return f"{{{items}}}"
    if isinstance(arg, Node):
        return "%" + str(arg)
    return str(arg)


class Node:
    """One operation of a Graph (see the module docstring for the six `op` kinds).

    Attributes:
        graph: the owning Graph.
        name: the unique name (also the variable in the generated code).
        op: the opcode. target: what it calls (see `Target`).
        meta: a free dict for passes (ShapeProp writes `meta["tensor_meta"]`).
        users: dict (ordered set) of the nodes that read this one.
        type: an optional type annotation.
    """

    def __init__(self, graph, name: str, op: str, target: Target, args: tuple,
                 kwargs: dict, return_type: Any = None) -> None:  # fmt: skip
        if op not in _OPS:
            raise ValueError(f"Node: op {op!r} is none of {', '.join(_OPS[:-1])}")
        if op == "call_function" and not callable(target):
            raise ValueError(
                f"Node [graph = {graph}, name = '{name}'] target {target} has type "
                f"{type(target).__name__} but a Callable is expected"
            )
        if op in ("placeholder", "call_method", "call_module", "get_attr") and not isinstance(
            target, str
        ):
            raise ValueError(
                f"Node [graph = {graph}, name = '{name}'] target {target} has type "
                f"{type(target).__name__} but a str is expected"
            )
        self.graph = graph
        self.name = name
        self.op = op
        self._target = target
        self._input_nodes: dict[Node, None] = {}
        self.users: dict[Node, None] = {}
        self.type = return_type
        self._prev = self
        self._next = self
        self._erased = False
        self._repr_fn: Callable | None = None
        # The public path the traced program called a descent function by (`descent.cat`
        # for descent.concatenate's alias): what printing and the generated code use.
        self._public_path: str | None = None
        self.meta: dict[str, Any] = {}
        self._args: tuple = ()
        self._kwargs: dict = immutable_dict()
        self._update_args_kwargs(args, kwargs)

    @property
    def target(self) -> Target:
        """What the node calls or reads (see `Target`); assignable (`node.target = descent.mul`)."""
        return self._target

    @target.setter
    def target(self, value: Target) -> None:
        self._target = value
        self._public_path = None  # the name it was traced by belongs to the old target

    # -- list links ------------------------------------------------------------------------
    @property
    def next(self) -> Node:
        """The node after this one in the graph's order."""
        return self._next

    @property
    def prev(self) -> Node:
        """The node before this one."""
        return self._prev

    def _remove_from_list(self) -> None:
        p, n = self._prev, self._next
        p._next, n._prev = n, p

    def prepend(self, x: Node) -> None:
        """Move `x` just before this node (the users are untouched: keep the order valid)."""
        if self.graph is not x.graph:
            raise RuntimeError("Attempting to move a Node into a different Graph")
        if self is x:
            return
        x._remove_from_list()
        p = self._prev
        p._next, x._prev = x, p
        x._next, self._prev = self, x

    def append(self, x: Node) -> None:
        """Move `x` just after this node."""
        self._next.prepend(x)

    def __gt__(self, other: Node) -> bool:  # order in the graph (torch has these)
        return self._position() > other._position()

    def __lt__(self, other: Node) -> bool:
        return self._position() < other._position()

    def _position(self) -> int:
        for i, n in enumerate(self.graph.nodes):
            if n is self:
                return i
        raise RuntimeError(f"node {self.name} is not in its graph")

    # -- arguments -------------------------------------------------------------------------
    @property
    def args(self) -> tuple:
        """The positional arguments; assigning updates the users of the old and new inputs."""
        return self._args

    @args.setter
    def args(self, a: tuple) -> None:
        self._update_args_kwargs(a, self._kwargs)

    @property
    def kwargs(self) -> dict:
        """The keyword arguments; assigning updates the users likewise."""
        return self._kwargs

    @kwargs.setter
    def kwargs(self, k: dict) -> None:
        self._update_args_kwargs(self._args, k)

    @property
    def all_input_nodes(self) -> list[Node]:
        """Every node this one reads, in first-use order."""
        return list(self._input_nodes)

    def _update_args_kwargs(self, new_args, new_kwargs) -> None:
        def freeze(a):
            if isinstance(a, Node):
                return a
            if isinstance(a, list):
                return immutable_list(freeze(x) for x in a)
            if isinstance(a, dict):
                return immutable_dict((k, freeze(v)) for k, v in a.items())
            if isinstance(a, tuple) and hasattr(a, "_fields"):  # a NamedTuple
                return type(a)(*(freeze(x) for x in a))
            if isinstance(a, tuple):
                return tuple(freeze(x) for x in a)
            if isinstance(a, slice):
                return slice(freeze(a.start), freeze(a.stop), freeze(a.step))
            return a

        self._args = freeze(tuple(new_args))
        self._kwargs = freeze(dict(new_kwargs))
        for old in self._input_nodes:
            old.users.pop(self, None)
        self._input_nodes = {}
        map_arg(self._args, self._input_nodes.setdefault)
        map_arg(self._kwargs, self._input_nodes.setdefault)
        for new in self._input_nodes:
            new.users.setdefault(self)

    def update_arg(self, idx: int, arg: Argument) -> None:
        """Set `args[idx]` (users updated)."""
        args = list(self.args)
        args[idx] = arg
        self.args = tuple(args)

    def insert_arg(self, idx: int, arg: Argument) -> None:
        """Insert a positional argument at `idx`."""
        args = list(self.args)
        args.insert(idx, arg)
        self.args = tuple(args)

    def update_kwarg(self, key: str, arg: Argument) -> None:
        """Set `kwargs[key]` (users updated)."""
        self.kwargs = {**self.kwargs, key: arg}

    def replace_all_uses_with(self, replace_with: Node, delete_user_cb: Callable | None = None,
                              *, propagate_meta: bool = False) -> list[Node]:  # fmt: skip
        """Make every user of this node read `replace_with` instead.

        Args:
            replace_with: the new input.
            delete_user_cb: called with each user; users for which it is False keep this node.
            propagate_meta: copy this node's `meta` onto `replace_with` (which must have none).

        Returns:
            The users that were changed.
        """
        if propagate_meta:
            if replace_with.meta:
                raise RuntimeError(
                    "Called node.replace_all_uses_with(replace_with, propagate_meta=True), "
                    "but replace_with already has .meta keys"
                )
            replace_with.meta.update(self.meta)
        changed = []
        for user in list(self.users):
            if delete_user_cb is not None and not delete_user_cb(user):
                continue
            user.replace_input_with(self, replace_with)
            changed.append(user)
        return changed

    def replace_input_with(self, old_input: Node, new_input: Node) -> None:
        """Replace every occurrence of `old_input` among this node's arguments."""

        def swap(n: Node) -> Node:
            return new_input if n is old_input else n

        self._update_args_kwargs(map_arg(self._args, swap), map_arg(self._kwargs, swap))

    # -- properties ------------------------------------------------------------------------
    @property
    def stack_trace(self) -> str | None:
        """Where the traced code made this node (descent does not record it: None)."""
        return self.meta.get("stack_trace")

    @stack_trace.setter
    def stack_trace(self, trace: str | None) -> None:
        self.meta["stack_trace"] = trace

    def is_impure(self, impure_random: bool = True) -> bool:
        """Whether dead-code elimination must keep this node although nothing reads it."""
        if self.op in ("placeholder", "output"):
            return True
        if self.op == "call_function":
            return self.target in _side_effectful_functions
        if self.op == "call_module":
            module = self.graph.owning_module
            if module is None:  # torch's message: a free graph cannot say what a module does
                raise AssertionError("self.graph.owning_module not set for purity check")
            sub = module.get_submodule(self.target)
            return bool(getattr(sub, "_is_impure", False))
        return False

    def __repr__(self) -> str:
        if self._repr_fn is not None:
            return self._repr_fn(self)
        return self.name

    @staticmethod
    def _pretty_print_target(target) -> str:
        return pretty_target(target)

    def format_node(self, placeholder_names: list[str] | None = None,
                    maybe_return_typename: list[str] | None = None) -> str | None:  # fmt: skip
        """One line of `print(graph)`, in torch's format:
        `%relu : [num_users=1] = call_function[target=descent.relu](args = (%x,), kwargs = {})`.

        `placeholder_names` (internal, used by Graph.__str__) collects the signature instead of
        returning the placeholder's line."""
        typename = f"{_type_repr(self.type)} " if self.type is not None else ""
        if self.op == "placeholder":
            arg_str = self.target
            if placeholder_names:  # torch tests truthiness: print(graph) lists them as lines
                placeholder_names.append(arg_str)
                return None
            default = "(default=" + str(self.args[0]) + ")" if self.args else ""
            return (
                f"%{self.name} : {typename}[num_users={len(self.users)}] = "
                f"{self.op}[target={self.target}]{default}"
            )
        if self.op == "get_attr":
            return (
                f"%{self.name} : {typename}[num_users={len(self.users)}] = "
                f"{self.op}[target={pretty_target(self.target)}]"
            )
        if self.op == "output":
            if self.type is not None and maybe_return_typename:
                maybe_return_typename[0] = f" -> {_type_repr(self.type)}"
            return f"return {self.args[0]}"
        return (
            f"%{self.name} : {typename}[num_users={len(self.users)}] = "
            f"{self.op}[target={self._public_path or pretty_target(self.target)}]("
            f"args = {_format_arg(self.args)}, kwargs = {_format_arg(self.kwargs)})"
        )


def _type_repr(obj) -> str:
    if isinstance(obj, type):
        if obj.__module__ == "builtins":
            return obj.__qualname__
        return f"{obj.__module__}.{obj.__qualname__}"
    if obj is ...:
        return "..."
    return repr(obj)


def map_arg(a: Argument, fn: Callable[[Node], Argument]) -> Argument:
    """Apply `fn` to every Node inside `a` (tuples, lists, dicts, slices are walked)."""
    if not callable(fn):
        raise TypeError("map_arg(a, fn): fn must be a callable")
    return map_aggregate(a, lambda x: fn(x) if isinstance(x, Node) else x)


def map_aggregate(a: Argument, fn: Callable[[Argument], Argument]) -> Argument:
    """Apply `fn` to every leaf of `a`, rebuilding its containers (their types are kept)."""
    if isinstance(a, tuple):
        items = [map_aggregate(x, fn) for x in a]
        return type(a)(*items) if hasattr(a, "_fields") else type(a)(items)
    if isinstance(a, list):
        return (
            immutable_list(map_aggregate(x, fn) for x in a)
            if isinstance(a, immutable_list)
            else [map_aggregate(x, fn) for x in a]
        )
    if isinstance(a, dict):
        out = {k: map_aggregate(v, fn) for k, v in a.items()}
        return immutable_dict(out) if isinstance(a, immutable_dict) else out
    if isinstance(a, slice):
        return slice(map_aggregate(a.start, fn), map_aggregate(a.stop, fn),
                     map_aggregate(a.step, fn))  # fmt: skip
    return fn(a)


# Names a generated variable may not take (it would shadow what the code calls).
_illegal_names = {k: object() for k in keyword.kwlist}
_illegal_names.update(vars(builtins))
# torch's custom builtins (inf, nan, NoneType, device, pytree, fx_pytree) and the library itself
_illegal_names.update(
    {
        name: object()
        for name in ("inf", "nan", "NoneType", "device", "pytree", "fx_pytree", "descent")
    }
)
