"""torch.fx.graph: `Graph`, the ordered list of Nodes a trace produces, and its editing API.

The nodes form a doubly linked list closed by a sentinel (`_root`, op "root"): appending is
O(1), moving a node is O(1), and iterating `graph.nodes` tolerates erasing the node being
visited (the iterator reads `_next` after the yield, and an erased node keeps its links).
Names come from a namespace that gives each node a unique Python identifier, numbered as
torch numbers them (`add`, `add_1`, `getattr_1` since `getattr` is a builtin).
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable
from typing import Any

from ._names import public_name
from .codegen import PythonCode, gen_python_code
from .node import Argument, Node, Target, _illegal_names, map_arg

__all__ = ["Graph", "PythonCode"]

_snake_case_sub = re.compile(r"(?<=[a-z])([A-Z])")
_illegal_char_regex = re.compile("[^0-9a-zA-Z_]+")
_name_regex = re.compile(r"^([a-zA-Z_][0-9a-zA-Z_]*?)(?:_(\d+))?$")


def _snake_case(s: str) -> str:
    """`pascalCase` -> `pascal_case`, `ALL` -> `all` (torch's node-name normalisation)."""
    return _snake_case_sub.sub(r"_\1", s).lower()


def _is_magic(x: str) -> bool:
    return x.startswith("__") and x.endswith("__")


class _Namespace:
    """Unique identifiers: `add`, then `add_1`, `add_2`; builtins and keywords are never
    shadowed (`sum` becomes `sum_1`), as in torch's namespace of the same name."""

    def __init__(self) -> None:
        self._obj_to_name: dict[Any, str] = {}
        self._used_names: set[str] = set()
        self._base_count: dict[str, int] = {}

    def create_name(self, candidate: str, obj: Any) -> str:
        if obj is not None and obj in self._obj_to_name:
            return self._obj_to_name[obj]
        match = _name_regex.match(candidate)
        if match is None:
            candidate = _illegal_char_regex.sub("_", candidate) or "_unnamed"
            if candidate[0].isdigit():
                candidate = f"_{candidate}"
            match = _name_regex.match(candidate)
        base, num = match.group(1, 2)
        if num is None or candidate in self._used_names:
            num = self._base_count.get(base, 0)
            if _illegal_names.get(candidate, obj) is not obj:
                num += 1
                candidate = f"{base}_{num}"
        else:
            num = int(num)
        while candidate in self._used_names:
            num += 1
            candidate = f"{base}_{num}"
        self._used_names.add(candidate)
        self._base_count[base] = num
        if obj is not None:
            self._obj_to_name[obj] = candidate
        return candidate

    def associate_name_with_obj(self, name: str, obj: Any) -> None:
        self._obj_to_name.setdefault(obj, name)


class _NodeList:
    """`graph.nodes`: a live, ordered view (len, iteration, reversed)."""

    def __init__(self, graph: Graph, direction: str = "_next") -> None:
        self._graph = graph
        self._direction = direction

    def __len__(self) -> int:
        return self._graph._len

    def __iter__(self):
        root = self._graph._root
        cur = getattr(root, self._direction)
        while cur is not root:
            if not cur._erased:
                yield cur
            cur = getattr(cur, self._direction)

    def __reversed__(self):
        return iter(_NodeList(self._graph, "_prev" if self._direction == "_next" else "_next"))

    def __repr__(self) -> str:
        return repr(list(self))


class _InsertPoint:
    """Sets the graph's insertion point at once; as a context manager, restores it on exit."""

    def __init__(self, graph: Graph, new_insert: Callable[[Node], None]) -> None:
        self.graph = graph
        self.orig_insert, graph._insert = graph._insert, new_insert

    def __enter__(self):
        return None

    def __exit__(self, *exc) -> None:
        self.graph._insert = self.orig_insert


class Graph:
    """The intermediate representation of torch.fx: an ordered list of Nodes.

    Build one by tracing (`symbolic_trace(model).graph`) or by hand (`placeholder`,
    `call_function`, ..., `output`); edit it with `inserting_before/after`, `erase_node`,
    `Node.replace_all_uses_with`; turn it into a module with `GraphModule(root, graph)`.
    """

    def __init__(self, owning_module=None, tracer_cls=None, tracer_extras=None) -> None:
        self._root = Node(self, "", "root", "", (), {})
        self._insert = self._root.prepend
        self._len = 0
        self._graph_namespace = _Namespace()
        self._owning_module = owning_module
        self._tracer_cls = tracer_cls
        self._tracer_extras = tracer_extras

    @property
    def owning_module(self):
        """The GraphModule this graph belongs to (None for a free graph)."""
        return self._owning_module

    @owning_module.setter
    def owning_module(self, mod) -> None:
        self._owning_module = mod

    @property
    def nodes(self) -> _NodeList:
        """The nodes in order (a live view: it sees later edits)."""
        return _NodeList(self)

    def find_nodes(self, *, op: str, target: Target | None = None, sort: bool = True):
        """The nodes with this `op` (and `target`, if given), in graph order."""
        return [n for n in self.nodes if n.op == op and (target is None or n.target == target)]

    # -- construction ----------------------------------------------------------------------
    def create_node(self, op: str, target: Target, args: tuple | None = None,
                    kwargs: dict | None = None, name: str | None = None,
                    type_expr: Any = None) -> Node:  # fmt: skip
        """Create a node of kind `op` at the insertion point (the end, unless moved with
        `inserting_before` / `inserting_after`). `name` is a hint: it is made unique."""
        args = () if not args else args
        kwargs = {} if not kwargs else kwargs
        if not isinstance(args, tuple):
            raise TypeError(f"Graph.create_node: args must be a tuple, got {type(args)}")
        if not isinstance(kwargs, dict):
            raise TypeError(f"Graph.create_node: kwargs must be a dict, got {type(kwargs)}")
        candidate = name if name is not None else self._target_to_str(target)
        name = self._graph_namespace.create_name(candidate, None)
        n = Node(self, name, op, target, args, kwargs, type_expr)
        self._graph_namespace.associate_name_with_obj(name, n)
        self._insert(n)
        self._len += 1
        return n

    def placeholder(self, name: str, type_expr: Any = None,
                    default_value: Any = inspect.Signature.empty) -> Node:  # fmt: skip
        """An input of the function (`default_value` gives the generated `forward` a
        default)."""
        args = () if default_value is inspect.Signature.empty else (default_value,)
        return self.create_node("placeholder", name, args=args, type_expr=type_expr)

    def get_attr(self, qualified_name: str, type_expr: Any = None) -> Node:
        """Read `root.<qualified_name>` (a parameter, buffer, submodule or attribute)."""
        return self.create_node("get_attr", qualified_name, type_expr=type_expr)

    def call_module(self, module_name: str, args: tuple | None = None,
                    kwargs: dict | None = None, type_expr: Any = None) -> Node:  # fmt: skip
        """Call the submodule at `module_name` (a dotted path in the owning module)."""
        return self.create_node("call_module", module_name, args, kwargs, type_expr=type_expr)

    def call_method(self, method_name: str, args: tuple | None = None,
                    kwargs: dict | None = None, type_expr: Any = None) -> Node:  # fmt: skip
        """Call `args[0].<method_name>(*args[1:], **kwargs)`."""
        return self.create_node("call_method", method_name, args, kwargs, type_expr=type_expr)

    def call_function(self, the_function: Callable, args: tuple | None = None,
                      kwargs: dict | None = None, type_expr: Any = None) -> Node:  # fmt: skip
        """Call a free function (`operator.add`, `descent.relu`, a wrapped function)."""
        return self.create_node("call_function", the_function, args, kwargs,
                                type_expr=type_expr)  # fmt: skip

    def output(self, result: Argument, type_expr: Any = None) -> Node:
        """The return value (a node, or a tuple / list / dict of them)."""
        return self.create_node("output", "output", (result,), type_expr=type_expr)

    def _target_to_str(self, target: Target) -> str:
        if callable(target):
            op = public_name(target) or target.__name__  # `cat`, as torch's torch.cat
        else:
            op = target
            if _is_magic(op):
                op = op[2:-2]
        return _snake_case(op)

    # -- editing ---------------------------------------------------------------------------
    def erase_node(self, to_erase: Node) -> None:
        """Remove a node that nothing reads any more."""
        if to_erase.users:
            raise RuntimeError(
                f"Tried to erase Node {to_erase} but it still had {len(to_erase.users)} "
                f"users in the graph: {to_erase.users}!"
            )
        if to_erase.graph is not self:
            raise RuntimeError(f"Attempting to remove {to_erase} from wrong graph!")
        if to_erase._erased:
            return
        to_erase._remove_from_list()
        to_erase._erased = True
        self._len -= 1
        to_erase._update_args_kwargs((), {})  # the inputs forget this user

    def inserting_before(self, n: Node | None = None) -> _InsertPoint:
        """New nodes go before `n` (before everything if None); a context manager."""
        if n is None:
            return self.inserting_after(self._root)
        if n.graph is not self:
            raise RuntimeError("Node to insert before is not in graph.")
        return _InsertPoint(self, n.prepend)

    def inserting_after(self, n: Node | None = None) -> _InsertPoint:
        """New nodes go after `n` (at the end if None); a context manager."""
        if n is None:
            return self.inserting_before(self._root)
        if n.graph is not self:
            raise RuntimeError("Node to insert after is not in graph.")
        return _InsertPoint(self, n.append)

    def node_copy(self, node: Node, arg_transform: Callable[[Node], Argument] = lambda x: x
                  ) -> Node:  # fmt: skip
        """Copy `node` (from any graph) into this one; `arg_transform` maps its input nodes to
        this graph's."""
        args = map_arg(node.args, arg_transform)
        kwargs = map_arg(node.kwargs, arg_transform)
        result = self.create_node(node.op, node.target, args, kwargs, node.name, node.type)
        result.meta = copy.copy(node.meta)
        result._public_path = node._public_path
        return result

    def graph_copy(self, g: Graph, val_map: dict[Node, Node], return_output_node: bool = False):
        """Append every node of `g` to this graph (filling `val_map`, old -> new) except its
        output; return the value the output returned (mapped), or None."""
        for node in g.nodes:
            if node in val_map:
                continue
            if node.op == "output":
                rv = map_arg(node.args[0], lambda n: val_map[n])
                return (rv, node) if return_output_node else rv
            val_map[node] = self.node_copy(node, lambda n: val_map[n])
        return None

    def __deepcopy__(self, memo=None) -> Graph:
        g = Graph(tracer_cls=self._tracer_cls)
        result = g.graph_copy(self, val_map={}, return_output_node=True)
        if result is not None:
            rv, out = result
            g.output(rv, type_expr=out.type)
        return g

    def eliminate_dead_code(self, is_impure_node: Callable[[Node], bool] | None = None) -> bool:
        """Erase the nodes whose value nothing reads (placeholders, the output and impure
        calls stay). Returns whether anything changed."""
        self.lint()
        changed = False
        for node in reversed(self.nodes):
            impure = is_impure_node(node) if is_impure_node is not None else node.is_impure()
            if not impure and not node.users:
                self.erase_node(node)
                changed = True
        return changed

    def lint(self) -> None:
        """Check the invariants: every node belongs here, inputs come before their users, the
        users maps agree with the arguments, names are unique, and get_attr / call_module
        targets exist in the owning module."""
        seen_names: set[str] = set()
        seen: set[Node] = set()
        for node in self.nodes:
            if node.graph is not self:
                raise RuntimeError(f"Node '{node}' does not belong to this Graph!")
            for arg in node._input_nodes:
                if arg.graph is not self:
                    raise RuntimeError(f"Arg '{arg}' of node '{node}' is in another Graph!")
                if arg not in seen:
                    raise RuntimeError(f"Argument '{arg}' of Node '{node}' was used before it "
                                       "has been defined! Please check that Nodes in the graph "
                                       "are topologically ordered")  # fmt: skip
                if node not in arg.users:
                    raise RuntimeError(f"Node '{node}' is not among the users of '{arg}'")
            if node.name in seen_names:
                raise RuntimeError(f"Node redefined name {node.name}!")
            seen_names.add(node.name)
            seen.add(node)
        module = self.owning_module
        if module is None:
            return
        for node in self.nodes:
            if node.op in ("get_attr", "call_module"):
                obj = module
                for i, atom in enumerate(node.target.split(".")):
                    if not hasattr(obj, atom):
                        path = ".".join(node.target.split(".")[:i])
                        raise RuntimeError(
                            f"Node {node} target {node.target} references "
                            f"nonexistent attribute {atom} of {path or 'root'}"
                        )
                    obj = getattr(obj, atom)
                if node.op == "call_module" and not hasattr(obj, "forward"):
                    raise RuntimeError(
                        f"Node {node} target {node.target} {atom} of "
                        f"{node.target} does not reference an nn.Module"
                    )

    # -- output ----------------------------------------------------------------------------
    def python_code(self, root_module: str = "self", **kwargs) -> PythonCode:
        """The Python source of `forward` and the globals it needs."""
        return gen_python_code(self, root_module)

    def __str__(self) -> str:
        placeholder_names: list[str] = []
        maybe_return_typename = [""]
        lines = [n.format_node(placeholder_names, maybe_return_typename) for n in self.nodes]
        s = f"graph({', '.join(placeholder_names)}){maybe_return_typename[0]}:"
        for line in lines:
            if line:
                s += "\n    " + line
        return s

    def print_tabular(self) -> None:
        """Print the nodes as a table (needs the `tabulate` package, as torch's does)."""
        try:
            from tabulate import tabulate  # noqa: PLC0415
        except ImportError:
            print(
                "`print_tabular` relies on the library `tabulate`, which could not be "
                "found on this machine. Run `pip install tabulate` to install the library."
            )
            raise
        rows = [[n.op, n.name, n.target, n.args, n.kwargs] for n in self.nodes]
        print(tabulate(rows, headers=["opcode", "name", "target", "args", "kwargs"]))
