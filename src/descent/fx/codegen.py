"""The Python source of a Graph (torch.fx's CodeGen), in torch's layout:

    def forward(self, x):
        linear = self.linear(x);  x = None
        relu = descent.relu(linear);  linear = None
        return relu

Each line assigns one node; a value is dropped (`= None`) right after its last use, so the
generated function frees memory as eagerly as torch's. Functions of descent's public
namespaces are called by their public path through the `descent` global (so a later trace of
the GraphModule records them again); operators print as operators (`a + b`); any other callable
is bound into the globals under a unique name.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

from ._names import qualified_name
from .node import Node

__all__ = ["PythonCode", "gen_python_code", "magic_methods", "reflectable_magic_methods"]

reflectable_magic_methods = {
    "add": "{} + {}", "sub": "{} - {}", "mul": "{} * {}", "floordiv": "{} // {}",
    "truediv": "{} / {}", "div": "{} / {}", "mod": "{} % {}", "pow": "{} ** {}",
    "lshift": "{} << {}", "rshift": "{} >> {}", "and_": "{} & {}", "or_": "{} | {}",
    "xor": "{} ^ {}", "getitem": "{}[{}]", "matmul": "{} @ {}",
}  # fmt: skip
magic_methods = {
    "eq": "{} == {}", "ne": "{} != {}", "lt": "{} < {}", "gt": "{} > {}", "le": "{} <= {}",
    "ge": "{} >= {}", "pos": "+{}", "neg": "-{}", "invert": "~{}", **reflectable_magic_methods,
}  # fmt: skip


@dataclass
class PythonCode:
    """The source of `forward` (`src`) and the globals its exec needs."""

    src: str
    globals: dict[str, Any]
    _lineno_map: dict[int, int | None] | None = field(default=None)


def _format_target(base: str, target: str) -> str:
    """`self.layer1.0.conv` -> `getattr(self.layer1, "0").conv` (digits are not attributes)."""
    r = base
    for e in target.split("."):
        r = f'getattr({r}, "{e}")' if not e.isidentifier() else f"{r}.{e}"
    return r


def _resolves(path: str, obj: Any) -> bool:
    """Whether the dotted public path names `obj` (then the code may call it by that path)."""
    import importlib  # noqa: PLC0415

    parts = path.split(".")
    if parts[0] != "descent":
        return False
    cur: Any = importlib.import_module("descent")
    for p in parts[1:]:
        cur = getattr(cur, p, None)
        cur = getattr(cur, "__fx_wrapper_of__", None) or cur  # during a trace: the original
        if cur is None:
            return False
    return cur is obj


def gen_python_code(graph, root_module: str = "self") -> PythonCode:
    """The source and globals of `graph`'s forward (see the module docstring)."""
    import descent  # noqa: PLC0415

    from ._symbolic_trace import wrap as _wrap  # noqa: PLC0415
    from .graph import _Namespace  # noqa: PLC0415

    namespace = _Namespace()
    free_vars: list[str] = []
    body: list[str] = []
    globals_: dict[str, Any] = {}
    wrapped_fns: dict[str, None] = {}

    def add_global(name_hint: str, obj: Any) -> str:
        if name_hint.startswith("descent.") and _resolves(name_hint, obj):
            return name_hint  # reached through the `descent` global
        global_name = namespace.create_name(name_hint, obj)
        if global_name in globals_ and globals_[global_name] is not obj:
            raise RuntimeError(f"fx codegen: global {global_name} bound twice")
        globals_[global_name] = obj
        return global_name

    # torch's "custom builtins": always bound, under their own names
    for name, obj in (("inf", math.inf), ("nan", math.nan), ("NoneType", type(None)),
                      ("device", descent.device), ("descent", descent)):  # fmt: skip
        globals_[name] = obj
        namespace.create_name(name, obj)

    def get_repr(arg: Any) -> str:
        if isinstance(arg, Node):
            return repr(arg)
        if isinstance(arg, tuple) and hasattr(arg, "_fields"):  # a NamedTuple
            name = add_global(qualified_name(type(arg)), type(arg))
            return f"{name}{tuple(arg)!r}"
        if isinstance(arg, enum.Enum):
            cls = add_global(type(arg).__name__, type(arg))
            return f"{cls}.{arg.name}"
        if isinstance(arg, descent.Tensor):
            return f"descent.Tensor(size={list(arg.shape)}, dtype={str(arg.dtype).split('.')[-1]})"
        if isinstance(arg, tuple):
            if len(arg) == 1:
                return f"({get_repr(arg[0])},)"
            return "(" + ", ".join(get_repr(a) for a in arg) + ")"
        if isinstance(arg, list):
            return "[" + ", ".join(get_repr(a) for a in arg) + "]"
        if isinstance(arg, slice):
            return f"slice({get_repr(arg.start)}, {get_repr(arg.stop)}, {get_repr(arg.step)})"
        if isinstance(arg, type):
            return add_global(qualified_name(arg), arg)
        if isinstance(arg, descent.dtype):
            return add_global(f"descent.{str(arg).split('.')[-1]}", arg)
        text = repr(arg)
        # descent's memory formats and layouts print as torch's (torch.contiguous_format)
        if text.startswith("torch.") and _resolves("descent." + text[6:], arg):
            return "descent." + text[6:]
        return text

    def format_args(args: tuple, kwargs: dict) -> str:
        parts = [get_repr(a) for a in args]
        parts.extend(f"{k} = {get_repr(v)}" for k, v in kwargs.items())
        return ", ".join(parts)

    nodes = list(graph.nodes)
    # The first use of a value met walking backwards is its LAST use walking forwards: the
    # line after which the generated code drops it.
    node_to_last_use: dict[Node, Node] = {}
    user_to_last_uses: dict[Node, list[Node]] = {}
    for node in reversed(nodes):
        for inp in node._input_nodes:
            if inp not in node_to_last_use:
                node_to_last_use[inp] = node
                user_to_last_uses.setdefault(node, []).append(inp)

    def delete_unused_values(user: Node) -> None:
        if user.op == "placeholder":
            return
        if user.op == "output":
            body.append("\n")
            return
        to_delete = list(user_to_last_uses.get(user, []))
        if not user.users:  # a value kept only for its side effect: free it at once
            to_delete.append(user)
        if to_delete:
            body.append(f";  {' = '.join([repr(n) for n in to_delete] + ['None'])}\n")
        else:
            body.append("\n")

    def emit_node(node: Node) -> None:
        annotation = "" if node.type is None else f" : {get_repr(node.type)}"
        if node.op == "placeholder":
            default = "" if not node.args else f" = {get_repr(node.args[0])}"
            free_vars.append(f"{node.target}{annotation}{default}")
            raw_name = node.target.replace("*", "")
            if raw_name != repr(node):
                body.append(f"{node!r} = {raw_name}\n")
            return
        if node.op == "call_method":
            method = _format_target(get_repr(node.args[0]), node.target)
            body.append(
                f"{node!r}{annotation} = {method}({format_args(node.args[1:], node.kwargs)})"
            )
            return
        if node.op == "call_function":
            target = node.target
            if (
                getattr(target, "__module__", "") == "_operator"
                and target.__name__ in magic_methods
            ):
                text = magic_methods[target.__name__].format(*(get_repr(a) for a in node.args))
                body.append(f"{node!r}{annotation} = {text}")
                return
            global_name = add_global(node._public_path or qualified_name(target), target)
            if (global_name == "getattr" and len(node.args) == 2
                    and isinstance(node.args[1], str) and node.args[1].isidentifier()):  # fmt: skip
                body.append(f"{node!r}{annotation} = "
                            f"{_format_target(get_repr(node.args[0]), node.args[1])}")  # fmt: skip
                return
            body.append(
                f"{node!r}{annotation} = {global_name}({format_args(node.args, node.kwargs)})"
            )
            if node.meta.get("is_wrapped", False):
                wrapped_fns.setdefault(global_name)
            return
        if node.op == "call_module":
            body.append(f"{node!r}{annotation} = {_format_target(root_module, node.target)}"
                        f"({format_args(node.args, node.kwargs)})")  # fmt: skip
            return
        if node.op == "get_attr":
            body.append(f"{node!r}{annotation} = {_format_target(root_module, node.target)}")
            return
        if node.op == "output":
            body.append(f"return {get_repr(node.args[0])}")
            return
        raise NotImplementedError(f"node: {node.op} {node.target}")

    for node in nodes:
        emit_node(node)
        delete_unused_values(node)
    if not body:
        body.append("pass\n")  # a graph of placeholders only
    wrap_stmts = ""
    if wrapped_fns:
        wrap_name = add_global(qualified_name(_wrap), _wrap)
        wrap_stmts = "\n".join(f'{wrap_name}("{name}")' for name in wrapped_fns)
    if not free_vars or free_vars[0] != "self":
        free_vars.insert(0, "self")
    prologue = f"def forward({', '.join(free_vars)}):"
    code = "".join(body).lstrip("\n")
    code = "\n".join("    " + line for line in code.split("\n"))
    src = f"\n{wrap_stmts}\n\n{prologue}\n{code}"
    return PythonCode(src, globals_)
