"""`torch.utils._pytree`: nested containers flattened to a list of leaves and a spec, and back.

Libraries and training code use it to map a function over nested outputs (`tree_map(lambda t:
t.detach(), out)`), move batches between devices, or flatten a model's state. The containers are
PyTorch's: tuple, list, dict (insertion order), namedtuple, OrderedDict, defaultdict and deque;
everything else, None included, is a leaf. `register_pytree_node` adds a container type.

    leaves, spec = tree_flatten({"a": [x, y], "b": (z,)})   # [x, y, z], TreeSpec(dict, ...)
    tree_unflatten([2 * t for t in leaves], spec)           # the same dict of doubled tensors
    tree_map(lambda t: t + 1, batch)                        # one function over every leaf

`is_leaf=` (a predicate) stops the flattening at the containers it accepts, as in PyTorch.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict, defaultdict, deque, namedtuple
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

__all__ = [
    "TreeSpec", "LeafSpec", "treespec_leaf", "register_pytree_node", "tree_flatten",
    "tree_unflatten", "tree_leaves", "tree_iter", "tree_structure", "tree_map", "tree_map_",
    "tree_map_only", "tree_map_only_", "tree_all", "tree_any", "tree_all_only", "tree_any_only",
    "tree_is_leaf", "is_namedtuple", "is_namedtuple_class", "is_namedtuple_instance",
    "register_constant", "register_dataclass", "ConstantNode",
]  # fmt: skip


class _NodeDef(NamedTuple):
    flatten: Callable[[Any], tuple[list, Any]]  # node -> (children, context)
    unflatten: Callable[[Iterable, Any], Any]  # (children, context) -> node


_REGISTRY: dict[type, _NodeDef] = {}


def register_pytree_node(cls: type, flatten_fn: Callable, unflatten_fn: Callable, *,
                         serialized_type_name: str | None = None, to_dumpable_context=None,
                         from_dumpable_context=None,
                         flatten_with_keys_fn=None) -> None:  # fmt: skip
    """Make `cls` a container: `flatten_fn(node) -> (children, context)` and
    `unflatten_fn(children, context) -> node`. The keyword arguments are PyTorch's (for its
    serialisation and key paths) and are accepted."""
    del serialized_type_name, to_dumpable_context, from_dumpable_context, flatten_with_keys_fn
    if cls in _REGISTRY:
        raise ValueError(f"{cls} is already registered as pytree node.")
    _REGISTRY[cls] = _NodeDef(flatten_fn, unflatten_fn)


@dataclasses.dataclass(frozen=True, slots=True)
class ConstantNode:
    """The context of a constant node (`register_constant`): the instance itself."""

    value: Any


def register_constant(cls: type) -> None:
    """Make `cls` a node with no leaves: an instance flattens to `[]` and its spec holds it (as
    PyTorch's, for hashable configuration objects). `cls` needs its own `__eq__` and
    `__hash__` (specs compare by them), else TypeError as in PyTorch."""
    if cls.__eq__ is object.__eq__:
        raise TypeError(
            "register_constant(cls) expects `cls` to have a non-default `__eq__` implementation."
        )
    if cls.__hash__ is None:  # a class defining __eq__ without __hash__ is unhashable
        raise TypeError(
            "register_constant(cls) expects `cls` to have a non-default `__hash__` "
            "implementation."
        )
    register_pytree_node(cls, lambda x: ([], ConstantNode(x)), lambda _, c: c.value)


def register_dataclass(cls: type, *, field_names: list[str] | None = None,
                       drop_field_names: list[str] | None = None,
                       serialized_type_name: str | None = None) -> None:  # fmt: skip
    """Make a dataclass (or a class built from keyword fields) a container of its fields, as
    PyTorch's: the children are the `field_names` (a dataclass's init fields by default, less
    `drop_field_names`) whose values are not None; None fields stay None on unflatten.

    Raises:
        ValueError: `cls` is not a dataclass and no `field_names`, or `field_names` does not
            list exactly the dataclass's init fields less `drop_field_names`.
    """
    del serialized_type_name  # PyTorch's, for torch.export's serialisation
    drop = set(drop_field_names or [])
    if not dataclasses.is_dataclass(cls):
        if field_names is None:
            raise ValueError(
                "field_names must be specified with a list of all fields used to "
                f"initialize {cls}, as it is not a dataclass."
            )
    elif field_names is None:
        field_names = [f.name for f in dataclasses.fields(cls) if f.init]
    else:
        init = {f.name for f in dataclasses.fields(cls) if f.init} - drop
        if init != set(field_names):
            msg = "field_names does not include all dataclass fields.\n"
            if missing := init - set(field_names):
                msg += (f"Missing fields in `field_names`: {missing}. If you want to include "
                        "these fields in the pytree, please add them to `field_names`, "
                        "otherwise please add them to `drop_field_names`.\n")  # fmt: skip
            if unexpected := set(field_names) - init:
                msg += (f"Unexpected fields in `field_names`: {unexpected}. Please remove "
                        "these fields, or add them to `drop_field_names`.\n")  # fmt: skip
            raise ValueError(msg)
    names = list(field_names)

    def flatten(obj):
        # context: [names of the flattened fields, names of the None fields]
        values, flat, none = [], [], []
        for name in names:
            v = getattr(obj, name)
            (none if v is None else flat).append(name)
            if v is not None:
                values.append(v)
        return values, [flat, none]

    def unflatten(values, context):
        flat, none = context
        return cls(**dict(zip(flat, values, strict=True)), **dict.fromkeys(none))

    register_pytree_node(cls, flatten, unflatten)


def _dict_flatten(d):
    return list(d.values()), list(d.keys())


def _defaultdict_flatten(d):
    return list(d.values()), [d.default_factory, list(d.keys())]


register_pytree_node(tuple, lambda t: (list(t), None), lambda xs, _: tuple(xs))
register_pytree_node(list, lambda t: (list(t), None), lambda xs, _: list(xs))
register_pytree_node(dict, _dict_flatten, lambda xs, keys: dict(zip(keys, xs, strict=True)))
register_pytree_node(OrderedDict, _dict_flatten,
                     lambda xs, keys: OrderedDict(zip(keys, xs, strict=True)))  # fmt: skip
register_pytree_node(defaultdict, _defaultdict_flatten,
                     lambda xs, c: defaultdict(c[0], zip(c[1], xs, strict=True)))  # fmt: skip
register_pytree_node(deque, lambda d: (list(d), d.maxlen), lambda xs, m: deque(xs, maxlen=m))
# namedtuple: its own entry, keyed by the marker below (every namedtuple class is a container)
_NAMEDTUPLE = namedtuple
_REGISTRY[_NAMEDTUPLE] = _NodeDef(lambda t: (list(t), type(t)), lambda xs, cls: cls(*xs))


def is_namedtuple_class(cls) -> bool:
    """Whether `cls` is a namedtuple class (a tuple subclass with `_fields`)."""
    return isinstance(cls, type) and issubclass(cls, tuple) and isinstance(
        getattr(cls, "_fields", None), tuple) and hasattr(cls, "_make")  # fmt: skip


def is_namedtuple_instance(obj) -> bool:
    return is_namedtuple_class(type(obj))


def is_namedtuple(obj) -> bool:
    """A namedtuple class or instance."""
    return is_namedtuple_class(obj if isinstance(obj, type) else type(obj))


def _node_type(tree) -> type | None:
    """The registry key of `tree`'s container type, or None for a leaf."""
    cls = type(tree)
    if cls in _REGISTRY:
        return cls
    if is_namedtuple_class(cls):
        return _NAMEDTUPLE
    return None


class TreeSpec:
    """The structure of a pytree: its container type, context (keys, a namedtuple's class...)
    and one spec per child. A leaf's spec is `LeafSpec()` (printed `*`)."""

    __slots__ = ("type", "context", "_children", "num_leaves", "num_nodes")

    def __init__(self, type: type | None, context: Any, children_specs: list[TreeSpec]) -> None:  # noqa: A002
        self.type = type
        self.context = context
        self._children = list(children_specs)
        if type is None:
            self.num_leaves, self.num_nodes = 1, 1
        else:
            self.num_leaves = sum(c.num_leaves for c in self._children)
            self.num_nodes = 1 + sum(c.num_nodes for c in self._children)

    @property
    def num_children(self) -> int:
        return len(self._children)

    def children(self) -> list[TreeSpec]:
        return list(self._children)

    def child(self, index: int) -> TreeSpec:
        return self._children[index]

    def is_leaf(self) -> bool:
        return self.type is None

    def unflatten(self, leaves: Iterable) -> Any:
        leaves = list(leaves)
        if len(leaves) != self.num_leaves:
            raise ValueError(
                f"treespec.unflatten(leaves): `leaves` has length {len(leaves)} but the spec "
                f"refers to a pytree that holds {self.num_leaves} items ({self})."
            )
        return _build(iter(leaves), self)

    def flatten_up_to(self, tree) -> list:
        """The subtrees of `tree` at this spec's leaves (tree must have this spec's
        containers down to them)."""
        out: list = []
        stack = [(tree, self)]
        while stack:
            node, spec = stack.pop()
            if spec.type is None:
                out.append(node)
                continue
            kind = _node_type(node)
            if kind is not spec.type:
                raise ValueError(
                    f"Node type mismatch; expected {_type_name(spec)}, but got {type(node)}.")
            children, context = _REGISTRY[kind].flatten(node)
            if len(children) != spec.num_children:
                raise ValueError(f"Node arity mismatch; expected {spec.num_children}, but got "
                                 f"{len(children)}.")  # fmt: skip
            if context != spec.context:
                raise ValueError(f"Node context mismatch for custom node type {spec.type}.")
            stack.extend(reversed(list(zip(children, spec._children, strict=True))))
        return out

    def __eq__(self, other) -> bool:
        if not isinstance(other, TreeSpec):
            return NotImplemented
        stack = [(self, other)]
        while stack:
            a, b = stack.pop()
            if a.type is not b.type or a.context != b.context or len(a._children) != len(
                    b._children):  # fmt: skip
                return False
            stack.extend(zip(a._children, b._children, strict=True))
        return True

    def __hash__(self):
        return hash((self.type, repr(self.context), self.num_leaves, self.num_nodes))

    def __repr__(self, indent: int = 0) -> str:
        if self.type is None:
            return "*"
        inner = ""
        if self._children:
            indent += 2
            inner = self._children[0].__repr__(indent)
            for c in self._children[1:]:
                inner += ",\n" + " " * indent + c.__repr__(indent)
        return f"TreeSpec({_type_name(self)}, {self.context}, [{inner}])"


def _type_name(spec: TreeSpec) -> str:
    return "namedtuple" if spec.type is _NAMEDTUPLE else spec.type.__name__


def LeafSpec() -> TreeSpec:  # noqa: N802 - PyTorch's class name
    """The spec of a single leaf."""
    return TreeSpec(None, None, [])


treespec_leaf = LeafSpec


def tree_is_leaf(tree, is_leaf: Callable[[Any], bool] | None = None) -> bool:
    if is_leaf is not None and is_leaf(tree):
        return True
    return _node_type(tree) is None


def tree_flatten(tree, is_leaf: Callable[[Any], bool] | None = None) -> tuple[list, TreeSpec]:
    """(leaves in order, spec). Iterative: deep trees do not reach Python's recursion limit."""
    leaves: list = []
    root: list = []
    # Each frame: (node, the list its spec goes into). Specs are built after their children,
    # so the frames are processed in two phases: expand, then assemble.
    stack: list = [("visit", tree, root)]
    while stack:
        op, node, sink = stack.pop()
        if op == "build":
            kind, context, specs = node
            sink.append(TreeSpec(kind, context, specs))
            continue
        if tree_is_leaf(node, is_leaf):
            leaves.append(node)
            sink.append(LeafSpec())
            continue
        kind = _node_type(node)
        children, context = _REGISTRY[kind].flatten(node)
        specs: list = []
        stack.append(("build", (kind, context, specs), sink))
        for child in reversed(children):
            stack.append(("visit", child, specs))
    # children were pushed in reverse, so each specs list is filled in order; leaves too
    return leaves, root[0]


def _build(it, spec: TreeSpec):
    """Rebuild the containers of `spec` around the leaves from `it` (iteratively)."""
    results: list = []
    stack: list = [("visit", spec)]
    while stack:
        op, s = stack.pop()
        if op == "build":
            n = s.num_children
            children = results[len(results) - n:] if n else []
            del results[len(results) - n:]
            results.append(_REGISTRY[s.type].unflatten(children, s.context))
            continue
        if s.type is None:
            results.append(next(it))
            continue
        stack.append(("build", s))
        for c in reversed(s._children):
            stack.append(("visit", c))
    return results[0]


def tree_unflatten(leaves: Iterable, treespec: TreeSpec) -> Any:
    if not isinstance(treespec, TreeSpec):
        raise TypeError(f"tree_unflatten(leaves, treespec): Expected `treespec` to be instance "
                        f"of TreeSpec but got item of type {type(treespec)}.")  # fmt: skip
    return treespec.unflatten(leaves)


def tree_leaves(tree, is_leaf=None) -> list:
    return tree_flatten(tree, is_leaf)[0]


def tree_iter(tree, is_leaf=None):
    return iter(tree_flatten(tree, is_leaf)[0])


def tree_structure(tree, is_leaf=None) -> TreeSpec:
    return tree_flatten(tree, is_leaf)[1]


def tree_map(func: Callable, tree, *rests, is_leaf=None) -> Any:
    """`func` over the leaves of `tree` (and the matching leaves of `rests`, which must have
    tree's structure down to its leaves), in a tree of the same structure."""
    leaves, spec = tree_flatten(tree, is_leaf)
    others = [spec.flatten_up_to(r) for r in rests]
    return spec.unflatten(map(func, leaves, *others))


def tree_map_(func: Callable, tree, *rests, is_leaf=None) -> Any:
    """`func` over the leaves for its side effects (`tensor.add_(1)`); returns `tree`."""
    leaves, spec = tree_flatten(tree, is_leaf)
    others = [spec.flatten_up_to(r) for r in rests]
    for args in zip(leaves, *others, strict=True):
        func(*args)
    return tree


def _only(type_or_types, func: Callable) -> Callable:
    def wrapped(x):
        return func(x) if isinstance(x, type_or_types) else x

    return wrapped


def tree_map_only(type_or_types, func: Callable, tree, is_leaf=None) -> Any:
    """tree_map over the leaves that are instances of `type_or_types`; others unchanged."""
    return tree_map(_only(type_or_types, func), tree, is_leaf=is_leaf)


def tree_map_only_(type_or_types, func: Callable, tree, is_leaf=None) -> Any:
    return tree_map_(_only(type_or_types, func), tree, is_leaf=is_leaf)


def tree_all(pred: Callable, tree, is_leaf=None) -> bool:
    return all(map(pred, tree_iter(tree, is_leaf)))


def tree_any(pred: Callable, tree, is_leaf=None) -> bool:
    return any(map(pred, tree_iter(tree, is_leaf)))


def tree_all_only(type_or_types, pred: Callable, tree, is_leaf=None) -> bool:
    return all(pred(x) for x in tree_iter(tree, is_leaf) if isinstance(x, type_or_types))


def tree_any_only(type_or_types, pred: Callable, tree, is_leaf=None) -> bool:
    return any(pred(x) for x in tree_iter(tree, is_leaf) if isinstance(x, type_or_types))
