"""torch.fx.graph_module: `GraphModule`, a Module whose forward is generated from a Graph.

`GraphModule(root, graph)` copies from `root` what the graph reads (the submodules of its
call_module nodes, the parameters / buffers / attributes of its get_attr nodes, with plain
`Module`s standing in for the intermediate paths), then generates `forward`'s source from the
graph (`gm.code`) and compiles it. Each instance gets its own subclass (as in torch), so the
compiled forward is a method of that class and `type(gm).__name__` is the traced class's name.
The generated source is registered with `linecache`, so tracebacks show its lines.
"""

from __future__ import annotations

import copy
import itertools
import linecache
from typing import Any

import descent
from descent import nn

from .graph import Graph

__all__ = ["GraphModule"]

_next_id = itertools.count()


def _copy_attr(from_module, to_module, target: str) -> None:
    """Copy `from_module.<target>` onto `to_module`, making empty Modules along the path."""
    *prefix, field = target.split(".")
    for item in prefix:
        f = getattr(from_module, item)
        t = getattr(to_module, item, None)
        if f is t:
            return  # a parent is already installed: its children come with it
        if t is None:
            t = nn.Module()
            setattr(to_module, item, t)
        from_module, to_module = f, t
    orig = getattr(from_module, field)
    if isinstance(orig, descent.Tensor) and not isinstance(orig, nn.Parameter):
        to_module.register_buffer(field, orig)  # a plain tensor attribute becomes a buffer
    else:
        setattr(to_module, field, orig)


def _assign_attr(from_obj, to_module, target: str) -> None:
    *prefix, field = target.split(".")
    for item in prefix:
        t = getattr(to_module, item, None)
        if t is None:
            t = nn.Module()
            setattr(to_module, item, t)
        to_module = t
    if isinstance(from_obj, descent.Tensor) and not isinstance(from_obj, nn.Parameter):
        to_module.register_buffer(field, from_obj)
    else:
        setattr(to_module, field, from_obj)


def _exec_with_source(src: str, globals_: dict, key: str) -> None:
    linecache.cache[key] = (len(src), None, src.splitlines(True), key)
    exec(compile(src, key, "exec"), globals_)  # noqa: S102  (our own generated source)


class GraphModule(nn.Module):
    """A Module made of a root's attributes and a Graph (see the module docstring).

    Args:
        root: the Module to copy submodules and attributes from, or a dict from each
            get_attr / call_module target to its object.
        graph: the Graph to generate `forward` from.
        class_name: the name `repr` and `print_readable` show.
    """

    def __new__(cls, *args, **kwargs):
        # One class per instance, so each has its own compiled forward (as in torch).
        for t in cls.__mro__:
            if t.__qualname__.split(".")[-1] != "GraphModuleImpl":
                cls = t
                break

        class GraphModuleImpl(cls):  # type: ignore[misc, valid-type]
            pass

        return super().__new__(GraphModuleImpl)

    def __init__(self, root, graph: Graph, class_name: str = "GraphModule") -> None:
        super().__init__()
        self.__class__.__name__ = class_name
        if isinstance(root, nn.Module):
            self.training = root.training
            for node in graph.nodes:
                if node.op in ("get_attr", "call_module"):
                    _copy_attr(root, self, node.target)
        elif isinstance(root, dict):
            targets = []
            for node in graph.nodes:
                if node.op in ("get_attr", "call_module"):
                    if node.target not in root:
                        raise RuntimeError(f"Node {node} referenced target {node.target} but "
                                           "that target was not provided in ``root``!")  # fmt: skip
                    targets.append(node.target)
            for target in sorted(targets, key=lambda t: t.count(".")):
                _assign_attr(root[target], self, target)
        else:
            raise RuntimeError("Unsupported type " + str(root) + " passed for root!")
        self._tracer_cls = graph._tracer_cls
        self.meta: dict[str, Any] = {}  # free for passes, as torch's GraphModule.meta
        self.graph = graph  # generates and compiles forward

    # -- the graph and its code ------------------------------------------------------------
    @property
    def graph(self) -> Graph:
        """The Graph; assigning one regenerates the code."""
        return self._graph

    @graph.setter
    def graph(self, g: Graph) -> None:
        if not isinstance(g, Graph):
            raise TypeError(f"GraphModule.graph must be an fx.Graph, got {type(g).__name__}")
        object.__setattr__(self, "_graph", g)
        g.owning_module = self
        self.recompile()

    @property
    def code(self) -> str:
        """The Python source of `forward`, as torch prints it."""
        if not hasattr(self, "_code"):
            raise RuntimeError("Code has not been generated! Please report a bug to PyTorch")
        return self._code

    def recompile(self):
        """Regenerate and recompile `forward` after editing `graph` in place."""
        python_code = self._graph.python_code(root_module="self")
        object.__setattr__(self, "_code", python_code.src)
        key = f"<eval_with_key>.{next(_next_id)}"
        globals_ = dict(python_code.globals)
        _exec_with_source(python_code.src, globals_, key)
        type(self).forward = globals_["forward"]
        return python_code

    def print_readable(self, print_output: bool = True, include_stride: bool = False,
                       include_device: bool = False, colored: bool = False) -> str:  # fmt: skip
        """The module as a class definition (`class Net(descent.nn.Module): def forward...`)."""
        out = self._readable(type(self).__name__)
        if print_output:
            print(out)
        return out

    def _readable(self, name: str) -> str:
        lines = self._code.lstrip("\n").split("\n")
        body = []
        # torch's verbose code notes the missing stack traces once, before the first node
        noted = all(n.op in ("placeholder", "output") for n in self._graph.nodes)
        for line in lines:
            if not noted and line.startswith("    ") and line.strip():
                body.append("    # No stacktrace found for following nodes")
                noted = True
            body.append(line)
        subs = []
        for sub_name, sub in self.named_children():
            if isinstance(sub, GraphModule):
                subs.append(sub._readable(sub_name))
        text = "\n".join("    " + line if line.strip() else "" for line in body)
        nested = "".join("\n" + "\n".join("    " + s for s in sub.split("\n")) for sub in subs)
        return f"class {name}(descent.nn.Module):{nested}\n{text}"

    def __str__(self) -> str:
        return "\n".join(
            [
                super().__str__(),
                self._code,
                "# To see more debug info, please use `graph_module.print_readable()`",
            ]
        )

    # -- submodules ------------------------------------------------------------------------
    def add_submodule(self, target: str, m) -> bool:
        """Install `m` at the dotted path `target` (empty Modules along the way); False if a
        step of the path is not a Module."""
        *prefix, field = target.split(".")
        mod = self
        for item in prefix:
            sub = getattr(mod, item, None)
            if sub is None:
                sub = nn.Module()
                setattr(mod, item, sub)
            if not isinstance(sub, nn.Module):
                return False
            mod = sub
        mod.add_module(field, m)
        return True

    def delete_submodule(self, target: str) -> bool:
        """Remove the submodule at `target`; False if `target` names no submodule."""
        *path, leaf = target.split(".")
        mod = self
        for item in path:
            if not hasattr(mod, item):
                return False
            mod = getattr(mod, item)
            if not isinstance(mod, nn.Module):
                return False
        if not isinstance(getattr(mod, leaf, None), nn.Module):
            return False
        delattr(mod, leaf)
        return True

    def delete_all_unused_submodules(self) -> None:
        """Remove every submodule that no call_module / get_attr node reaches (a module is used
        if it is called, holds a used attribute, or is inside or above a used one)."""
        used: set[str] = set()
        for node in self._graph.nodes:
            if node.op in ("call_module", "get_attr") and isinstance(node.target, str):
                atoms = node.target.split(".")
                used.update(".".join(atoms[: i + 1]) for i in range(len(atoms)))
                if node.op == "call_module":
                    try:
                        sub = self.get_submodule(node.target)
                    except AttributeError:
                        continue
                    used.update(f"{node.target}.{n}" for n, _ in sub.named_modules() if n)
        for name in [n for n, _ in self.named_modules() if n and n not in used]:
            self.delete_submodule(name)

    # -- copies ----------------------------------------------------------------------------
    def __deepcopy__(self, memo) -> GraphModule:
        res = nn.Module()
        memo[id(self)] = res
        fake = nn.Module()
        for name, mod in self._modules.items():
            setattr(fake, name, copy.deepcopy(mod, memo))
        for name, p in self._parameters.items():
            setattr(fake, name, copy.deepcopy(p, memo))
        for name, b in self._buffers.items():
            fake.register_buffer(name, copy.deepcopy(b, memo))
        graph = copy.deepcopy(self._graph, memo)
        targets = {n.target: _resolve(fake, n.target) for n in graph.nodes
                   if n.op in ("get_attr", "call_module")}  # fmt: skip
        new = GraphModule(targets, graph, type(self).__name__)
        new.training = self.training
        new.meta = copy.deepcopy(self.meta, memo)
        memo[id(self)] = new
        return new

    def __copy__(self) -> GraphModule:
        new = GraphModule(self, self._graph, type(self).__name__)
        return new

    def __reduce__(self):
        raise TypeError("descent.fx.GraphModule cannot be pickled (descent saves no pickles); "
                        "save its state_dict and trace the model again")  # fmt: skip


def _resolve(module, target: str) -> Any:
    obj = module
    for atom in target.split("."):
        obj = getattr(obj, atom)
    return obj
