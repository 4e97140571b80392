"""torch.fx.interpreter: run a Graph node by node (`Interpreter`), or rebuild it while doing
so (`Transformer`).

An Interpreter keeps an environment from each node to its value, calls one method per opcode
(`placeholder`, `get_attr`, `call_function`, `call_method`, `call_module`, `output`), and
drops each value after its last use. Subclasses override those methods to observe or change
execution (ShapeProp records shapes in `run_node`). A Transformer runs the same methods on
Proxies, so what it returns is a new GraphModule.
"""

from __future__ import annotations

import inspect
from typing import Any

from ._symbolic_trace import Tracer
from .graph import Graph
from .graph_module import GraphModule
from .node import Node, map_aggregate, map_arg
from .proxy import Proxy

__all__ = ["Interpreter", "Transformer"]


class Interpreter:
    """Execute a GraphModule's graph one node at a time.

    Args:
        module: the GraphModule (or a Module with a `graph`) to run.
        garbage_collect_values: drop each value after its last use.
        graph: run this graph instead of `module.graph` (attributes still come from
            `module`).
    """

    def __init__(self, module, garbage_collect_values: bool = True, graph: Graph | None = None):
        self.module = module
        self.submodules = dict(module.named_modules())
        self.graph = graph if graph is not None else module.graph
        self.env: dict[Node, Any] = {}
        self.name = "Interpreter"
        self.garbage_collect_values = garbage_collect_values
        self.extra_traceback = True
        self.user_to_last_uses: dict[Node, list[Node]] = {}
        if garbage_collect_values:
            seen: set[Node] = set()
            for node in reversed(self.graph.nodes):
                for inp in node._input_nodes:
                    if inp not in seen:
                        seen.add(inp)
                        self.user_to_last_uses.setdefault(node, []).append(inp)

    def run(self, *args, initial_env: dict[Node, Any] | None = None,
            enable_io_processing: bool = True) -> Any:  # fmt: skip
        """Run the graph on `args` (one per placeholder) and return the output's value."""
        self.env = initial_env if initial_env is not None else {}
        self.args_iter = iter(args)
        for node in self.graph.nodes:
            if node in self.env:
                continue  # given in initial_env: not recomputed
            try:
                self.env[node] = self.run_node(node)
            except Exception as e:
                if self.extra_traceback:
                    msg = f"While executing {node.format_node()}"
                    e.args = (f"{e.args[0]}\n\n{msg}" if e.args else msg, *e.args[1:])
                raise
            if self.garbage_collect_values:
                for to_delete in self.user_to_last_uses.get(node, []):
                    del self.env[to_delete]
            if node.op == "output":
                return self.env[node]
        return None

    def run_node(self, n: Node) -> Any:
        """Fetch `n`'s argument values and call the method named by its opcode."""
        self.current_node = n  # what the opcode methods below are running (torch's name)
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        return getattr(self, n.op)(n.target, args, kwargs)

    # -- one method per opcode ---------------------------------------------------------------
    def placeholder(self, target: str, args: tuple, kwargs: dict) -> Any:
        if target.startswith("*"):
            return list(self.args_iter)
        try:
            return next(self.args_iter)
        except StopIteration as si:
            if args:
                return args[0]  # the default value
            raise RuntimeError(
                f"Expected positional argument for parameter {target}, but one was not passed in!"
            ) from si

    def get_attr(self, target: str, args: tuple, kwargs: dict) -> Any:
        return self.fetch_attr(target)

    def call_function(self, target, args: tuple, kwargs: dict) -> Any:
        return target(*args, **kwargs)

    def call_method(self, target: str, args: tuple, kwargs: dict) -> Any:
        self_obj, *args_tail = args
        return getattr(self_obj, target)(*args_tail, **kwargs)

    def call_module(self, target: str, args: tuple, kwargs: dict) -> Any:
        return self.fetch_attr(target)(*args, **kwargs)

    def output(self, target, args: tuple, kwargs: dict) -> Any:
        return args[0]

    # -- helpers ---------------------------------------------------------------------------
    def fetch_attr(self, target: str) -> Any:
        """`module.<target>` along a dotted path."""
        atoms = target.split(".")
        obj = self.module
        for i, atom in enumerate(atoms):
            if not hasattr(obj, atom):
                raise RuntimeError(f"Node referenced nonexistent target {'.'.join(atoms[: i + 1])}")
            obj = getattr(obj, atom)
        return obj

    def fetch_args_kwargs_from_env(self, n: Node) -> tuple[tuple, dict]:
        return self.map_nodes_to_values(n.args, n), self.map_nodes_to_values(n.kwargs, n)

    def map_nodes_to_values(self, args, n: Node):
        def load_arg(n_arg: Node):
            if n_arg not in self.env:
                raise RuntimeError(f"Node {n} referenced nonexistent value {n_arg}! Run "
                                   "Graph.lint() to diagnose such issues")  # fmt: skip
            return self.env[n_arg]

        return map_arg(args, load_arg)


class _TransformerTracer(Tracer):
    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph
        self.tensor_attrs = {}

    def is_leaf_module(self, m, module_qualified_name: str) -> bool:
        return True  # a Transformer copies call_module nodes, never traces into them


class Transformer(Interpreter):
    """An Interpreter whose values are Proxies: `transform()` returns the GraphModule that the
    (overridden) opcode methods build. Override `call_function` & co. to rewrite nodes."""

    def __init__(self, module) -> None:
        super().__init__(module)
        self.new_graph = Graph()
        self.tracer = _TransformerTracer(self.new_graph)
        self.tracer.root = module

    def placeholder(self, target: str, args: tuple, kwargs: dict) -> Proxy:
        default = next(iter(args)) if args else inspect.Signature.empty
        return Proxy(self.new_graph.placeholder(target, default_value=default), self.tracer)

    def get_attr(self, target: str, args: tuple, kwargs: dict) -> Proxy:
        return self.tracer.create_proxy("get_attr", target, args, kwargs)

    def call_module(self, target: str, args: tuple, kwargs: dict) -> Any:
        submod = self.fetch_attr(target)
        return self.tracer.call_module(submod, submod.forward, args, kwargs)

    def call_function(self, target, args: tuple, kwargs: dict) -> Any:
        # Keep the public name the original node was traced by (descent.concatenate, not its
        # alias descent.cat) when the target is unchanged.
        current = getattr(self, "current_node", None)
        public = current._public_path if current is not None and current.target is target else None
        hint = public.rsplit(".", 1)[1] if public else None
        proxy = self.tracer.create_proxy("call_function", target, args, kwargs, name=hint)
        proxy.node._public_path = public
        return proxy

    def transform(self) -> GraphModule:
        """Run the graph through the overridden methods and return the new GraphModule."""
        result = super().run(enable_io_processing=False)
        if result is not None:
            self.new_graph.output(map_aggregate(result, lambda a: a.node if isinstance(a, Proxy)
                                                else a))  # fmt: skip
        return GraphModule(self.module, self.new_graph, type(self.module).__name__)
