"""torch.fx.proxy: `Proxy`, the stand-in value that records what a traced program does.

During `symbolic_trace` the inputs of `forward` are Proxies. Every operator applied to one
(`x + 1`, `x[0]`, `-x`), every method call (`x.view(2, -1)`) and every call of a descent
function with one among its arguments appends a Node to the graph and returns a new Proxy for
the result. A Proxy has no value, so Python control flow that needs one (`if x.sum() > 0`,
`for row in x`, `len(x)`) raises torch's TraceError / RuntimeError.
"""

from __future__ import annotations

import copy
import dis
import inspect
import operator
from bisect import bisect_left
from typing import Any

from .codegen import magic_methods, reflectable_magic_methods
from .graph import Graph
from .node import Node, map_aggregate

__all__ = ["Attribute", "GraphAppendingTracer", "ParameterProxy", "Proxy", "TraceError",
           "TracerBase"]  # fmt: skip


# The attributes NumPy looks for when converting an object (a Proxy must not claim them).
_NUMPY_PROTOCOL = frozenset(("__array_struct__", "__array_interface__", "__array_priority__",
                             "__array_function__", "__array_ufunc__", "__buffer__"))  # fmt: skip


class TraceError(ValueError):
    """A traced program needed a Proxy's value (control flow, iteration)."""


class TracerBase:
    """What a Proxy asks of its tracer: make nodes, lower arguments, and decide what
    `bool(proxy)` / `iter(proxy)` mean (both refuse, by default)."""

    graph: Graph
    trace_asserts = False
    check_mutable_operations = False
    scope = None
    record_stack_traces = False

    def create_node(self, kind: str, target, args: tuple, kwargs: dict, name: str | None = None,
                    type_expr: Any = None) -> Node:  # fmt: skip
        node = self.graph.create_node(kind, target, args, kwargs, name, type_expr)
        stack = getattr(self, "module_stack", None)
        if stack:  # the modules being called, outermost first (torch's nn_module_stack)
            node.meta["nn_module_stack"] = copy.copy(stack)
        return node

    def proxy(self, node: Node) -> Proxy:
        return Proxy(node, self)

    def create_proxy(self, kind: str, target, args: tuple, kwargs: dict, name: str | None = None,
                     type_expr: Any = None, proxy_factory_fn=None) -> Proxy:  # fmt: skip
        """Lower `args` / `kwargs` with `create_arg`, add the node, return its Proxy."""
        args_ = self.create_arg(args)
        kwargs_ = self.create_arg(kwargs)
        node = self.create_node(kind, target, args_, kwargs_, name, type_expr)
        return proxy_factory_fn(node) if proxy_factory_fn else self.proxy(node)

    def create_arg(self, a: Any):
        """Turn a traced value into a graph argument: a Proxy becomes its node, containers are
        walked, base values stay; anything else is refused."""
        if isinstance(a, Proxy):
            return a.node
        if hasattr(a, "__fx_create_arg__"):
            return a.__fx_create_arg__(self)
        if isinstance(a, tuple):
            items = [self.create_arg(x) for x in a]
            return type(a)(*items) if hasattr(a, "_fields") else type(a)(items)
        if isinstance(a, list):
            return [self.create_arg(x) for x in a]
        if isinstance(a, dict):
            out = {}
            for k, v in a.items():
                if not isinstance(k, str):
                    k = self.create_arg(k)
                    if isinstance(k, Node):
                        raise RuntimeError("Keys for dictionaries used as an argument cannot "
                                           f"contain a Node. Got key: {k}")  # fmt: skip
                out[k] = self.create_arg(v)
            return out
        if isinstance(a, slice):
            return slice(self.create_arg(a.start), self.create_arg(a.stop),
                         self.create_arg(a.step))  # fmt: skip
        if isinstance(a, range):
            return range(self.create_arg(a.start), self.create_arg(a.stop),
                         self.create_arg(a.step))  # fmt: skip
        if a is None or a is ... or isinstance(a, _base_types()):
            return a
        raise NotImplementedError(f"argument of type: {type(a)}")

    def to_bool(self, obj: Proxy) -> bool:
        raise TraceError("symbolically traced variables cannot be used as inputs to control flow")

    def iter(self, obj: Proxy):
        raise TraceError(
            "Proxy object cannot be iterated. This can be attempted when the Proxy is used in "
            "a loop or as a *args or **kwargs function argument. See the torch.fx docs on "
            "pytorch.org for a more detailed explanation of what types of control flow can be "
            "traced, and check out the Proxy docstring for help troubleshooting Proxy "
            "iteration errors"
        )

    def keys(self, obj: Proxy) -> Proxy:
        return Attribute(obj, "keys")()


def _base_types() -> tuple:
    import enum  # noqa: PLC0415

    import descent  # noqa: PLC0415

    return (str, int, float, bool, complex, enum.Enum, descent.dtype, descent.device,
            descent.memory_format if isinstance(getattr(descent, "memory_format", None), type)
            else str)  # fmt: skip


class GraphAppendingTracer(TracerBase):
    """The tracer of a Proxy made around a node by hand: it appends to that node's graph."""

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph
        self.tensor_attrs: dict = {}


class Proxy:
    """A Node in disguise: operations on it append nodes to the graph (see the module
    docstring). `Proxy(node)` around a node of a graph being built lets a pass write
    `Proxy(a) + Proxy(b)` to add nodes."""

    def __init__(self, node: Node, tracer: TracerBase | None = None) -> None:
        if tracer is None:
            tracer = GraphAppendingTracer(node.graph)
        self.tracer = tracer
        self.node = node

    def __repr__(self) -> str:
        return f"Proxy({self.node.name})"

    def __getattr__(self, k: str) -> Attribute:
        # The node is made lazily: `x.view(...)` becomes ONE call_method node, not a getattr
        # followed by a call.
        if k in _NUMPY_PROTOCOL:  # NumPy probing a Proxy: answer "no", then __array__ explains
            raise AttributeError(k)
        return Attribute(self, k)

    def __array__(self, *args, **kwargs):
        raise TraceError(
            f"descent.fx: {self!r} reached a descent function that the tracer did not replace: "
            "one called through a reference taken outside descent's namespaces and the traced "
            "code's globals (an alias kept in a container, an import from a descent "
            "submodule). Call it as descent.<name> / descent.nn.functional.<name>, or make it "
            "a leaf with descent.fx.wrap (docs/fx.md)"
        )

    def __getstate__(self):
        return self.__dict__

    def __setstate__(self, d) -> None:
        self.__dict__ = d

    def __deepcopy__(self, memo):
        return Proxy(self.node, self.tracer)

    def __call__(self, *args, **kwargs) -> Proxy:
        return self.tracer.create_proxy("call_method", "__call__", (self,) + args, kwargs)

    def __iter__(self):
        # `a, b = proxy` is allowed: the caller's bytecode says how many values it unpacks,
        # and each becomes proxy[i] (as in torch). Any other iteration has no length.
        frame = inspect.currentframe()
        calling = frame.f_back if frame is not None else None
        if calling is not None:
            insts = list(dis.get_instructions(calling.f_code))
            idx = bisect_left(insts, calling.f_lasti, key=lambda x: x.offset)
            if idx < len(insts) and insts[idx].opname == "UNPACK_SEQUENCE":
                return (self[i] for i in range(insts[idx].argval))
        return self.tracer.iter(self)

    def __abs__(self) -> Proxy:
        return self.tracer.create_proxy("call_function", operator.abs, (self,), {})

    def __bool__(self) -> bool:
        return self.tracer.to_bool(self)

    def keys(self):
        return self.tracer.keys(self)

    def __len__(self) -> int:
        raise RuntimeError(
            "'len' is not supported in symbolic tracing by default. If you want this call to "
            "be recorded, please call torch.fx.wrap('len') at module scope"
        )

    __hash__ = object.__hash__  # __eq__ below records a node; identity hashing stays


class Attribute(Proxy):
    """`proxy.name`: a call_method node when called, otherwise a `getattr` node on first use."""

    def __init__(self, root: Proxy, attr: str) -> None:
        self.root = root
        self.attr = attr
        self.tracer = root.tracer
        self._node: Node | None = None

    @property
    def node(self) -> Node:  # type: ignore[override]
        if self._node is None:
            self._node = self.tracer.create_proxy(
                "call_function", getattr, (self.root, self.attr), {}
            ).node
        return self._node

    def __call__(self, *args, **kwargs) -> Proxy:
        return self.tracer.create_proxy("call_method", self.attr, (self.root,) + args, kwargs)


class ParameterProxy(Proxy):
    """A parameter's proxy: `shape`, `size()`, `dim()`, `ndim`, `numel()` answer from the real
    parameter, so shape checks in `forward` still trace."""

    def __init__(self, tracer: TracerBase, node: Node, name: str, param) -> None:
        super().__init__(node, tracer)
        self.param = param
        self.name = name

    def __repr__(self) -> str:
        return f"ParameterProxy({self.name})"

    @property
    def shape(self):
        return self.param.shape

    def size(self, dim=None):
        return self.param.size() if dim is None else self.param.size(dim)

    def dim(self) -> int:
        return self.param.dim()

    @property
    def ndim(self) -> int:
        return self.param.ndim

    def numel(self) -> int:
        return self.param.numel()

    def nelement(self) -> int:
        return self.param.numel()


def _define_magic(method: str) -> None:
    def impl(*args, **kwargs):
        return args[0].tracer.create_proxy("call_function", getattr(operator, method), args,
                                           kwargs)  # fmt: skip

    impl.__name__ = method
    setattr(Proxy, f"__{method.strip('_')}__", impl)


def _define_reflectable(method: str) -> None:
    def impl(self, rhs):
        return self.tracer.create_proxy("call_function", getattr(operator, method), (rhs, self),
                                        {})  # fmt: skip

    impl.__name__ = f"__r{method.strip('_')}__"
    setattr(Proxy, impl.__name__, impl)


for _method in magic_methods:
    _define_magic(_method)
for _method in reflectable_magic_methods:
    _define_reflectable(_method)


def find_proxy(args: tuple, kwargs: dict) -> Proxy | None:
    """The first Proxy inside `args` / `kwargs` (containers walked), or None."""
    found: list[Proxy] = []

    def look(x):
        if not found and isinstance(x, Proxy):
            found.append(x)
        return x

    map_aggregate((args, kwargs), look)
    return found[0] if found else None
