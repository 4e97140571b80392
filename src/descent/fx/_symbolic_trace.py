"""torch.fx's symbolic tracer: `Tracer`, `symbolic_trace`, `wrap` and `PH`.

`symbolic_trace(model)` runs `model.forward` once with Proxies as inputs and records what
happens. PyTorch intercepts `torch.relu(proxy)` through `__torch_function__`; descent has no
such dispatch, so for the length of a trace (and only then) the tracer installs wrappers:

* over every public function of `descent`, `descent.nn.functional`, `descent.linalg`,
  `descent.special` and `descent.fft`; over the entries that name one of them (or a `math`
  function) in the traced code's globals, in the globals of every Python function that starts
  during the trace (a profile hook: helpers in other modules) and in the traced modules'
  instance dicts (`self.act = F.gelu`). A wrapper records a call_function node whose target is
  the ORIGINAL function when any argument is a Proxy, and calls the original otherwise;
* over `Module.__call__` (a leaf module becomes one call_module node, any other is traced
  through) and `Module.__getattr__` (a parameter read becomes a get_attr node);
* over Tensor's binary operators, `__getitem__` and public methods, which record torch's
  call_method (`buffer.add(proxy)`) when an argument is a Proxy;
* over the functions registered with `wrap` (recorded as leaves, never traced into).

Everything is put back when the trace ends, also when it fails (`_Patcher`).
"""

from __future__ import annotations

import builtins
import collections
import functools
import inspect
import math
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

import descent

from . import _names
from .graph import Graph
from .node import _side_effectful_functions
from .proxy import ParameterProxy, Proxy, TracerBase, find_proxy

__all__ = ["PH", "Tracer", "has_side_effect", "is_fx_symbolic_tracing", "is_fx_tracing",
           "symbolic_trace", "wrap"]  # fmt: skip

# (id of a globals dict, name) -> that dict: the functions `wrap` registered.
_wrapped_fns_to_patch: dict[tuple[int, str], dict] = {}

# Tensor's operators, and the method torch records when the right operand is a Proxy
# (`buffer + proxy` is `buffer.add(proxy)` in torch's graphs, through __torch_function__).
_TENSOR_OPERATORS = {
    "__add__": "add", "__sub__": "sub", "__mul__": "mul", "__truediv__": "div",
    "__floordiv__": "__floordiv__", "__mod__": "remainder", "__pow__": "pow",
    "__matmul__": "matmul", "__and__": "__and__", "__or__": "__or__", "__xor__": "__xor__",
    "__lshift__": "__lshift__", "__rshift__": "__rshift__", "__eq__": "eq", "__ne__": "ne",
    "__lt__": "lt", "__le__": "le", "__gt__": "gt", "__ge__": "ge",
    "__getitem__": "__getitem__",  # buffer[proxy_index]
}  # fmt: skip

# torch's Python-level functionals forward some of their defaults into the recorded call
# (`F.relu(x)` is recorded as relu(x, inplace=False)); to print the same graphs, these are
# recorded alike: public path -> (parameters with torch's defaults, how many stay positional).
_RECORDED_DEFAULTS: dict[str, tuple[tuple[tuple[str, Any], ...], int]] = {
    "descent.nn.functional.relu": ((("input", None), ("inplace", False)), 1),
    "descent.nn.functional.silu": ((("input", None), ("inplace", False)), 1),
    "descent.nn.functional.dropout": (
        (("input", None), ("p", 0.5), ("training", True), ("inplace", False)), 1),
    "descent.nn.functional.softmax": (
        (("input", None), ("dim", None), ("_stacklevel", 3), ("dtype", None)), 1),
    "descent.nn.functional.log_softmax": (
        (("input", None), ("dim", None), ("_stacklevel", 3), ("dtype", None)), 1),
    "descent.nn.functional.layer_norm": (
        (("input", None), ("normalized_shape", None), ("weight", None), ("bias", None),
         ("eps", 1e-5)), 2),
    "descent.nn.functional.max_pool2d": (
        (("input", None), ("kernel_size", None), ("stride", None), ("padding", 0),
         ("dilation", 1), ("ceil_mode", False), ("return_indices", False)), 2),
}  # fmt: skip


def _as_recorded(public: str | None, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    spec = _RECORDED_DEFAULTS.get(public) if public else None
    if spec is None:
        return args, kwargs
    params, n_positional = spec
    names = [p for p, _ in params]
    if len(args) > len(names) or any(k not in names for k in kwargs):
        return args, kwargs  # an unusual call: record it as written
    values = dict(params)
    values.update(zip(names, args))
    values.update(kwargs)
    positional = tuple(values[n] for n in names[:n_positional])
    return positional, {n: values[n] for n in names[n_positional:]}


_wrapper_cache: dict[tuple, tuple[Callable, Callable]] = {}


def _recording_wrapper(orig: Callable, public: str | None, is_wrapped: bool = False) -> Callable:
    """A function that records `orig` when a Proxy is among its arguments and calls it
    otherwise (cached: one wrapper per original)."""
    key = (id(orig), public, is_wrapped)
    hit = _wrapper_cache.get(key)
    if hit is not None and hit[0] is orig:
        return hit[1]

    def wrapper(*args, **kwargs):
        proxy = find_proxy(args, kwargs)
        if proxy is None:
            return orig(*args, **kwargs)
        args, kwargs = _as_recorded(public, args, kwargs)
        # The name it was called by: descent.cat and descent.concatenate are one function,
        # torch's are two, and torch's graphs say which one the program called.
        hint = public.rsplit(".", 1)[1] if public else None
        result = proxy.tracer.create_proxy("call_function", orig, args, kwargs, name=hint)
        result.node._public_path = public
        if is_wrapped:
            result.node.meta["is_wrapped"] = True
        return result

    try:
        functools.update_wrapper(wrapper, orig)
    except (AttributeError, TypeError):
        pass
    # inspect.unwrap must not walk from the wrapper to the original during a trace
    wrapper.__dict__.pop("__wrapped__", None)
    wrapper.__fx_wrapper_of__ = orig
    _wrapper_cache[key] = (orig, wrapper)
    return wrapper


class _Patcher:
    """Replaces attributes for the length of a trace and puts every one back (in reverse
    order) on exit, error or not."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any, bool]] = []
        self._seen_globals: set[int] = set()
        self._profile_installed = False
        self._previous_profile: Callable | None = None

    def setattr(self, obj, name: str, value) -> None:
        had = name in vars(obj)
        self._undo.append((obj, name, vars(obj).get(name), had))
        setattr(obj, name, value)

    def setitem(self, d: dict, name: str, value) -> None:
        self._undo.append((d, name, d.get(name), name in d))
        d[name] = value

    def autowrap_globals(self, fn_globals: dict, originals: dict[int, str | None]) -> None:
        """Wrap the entries of a globals (or instance) dict that name a descent function or a
        math one."""
        if id(fn_globals) in self._seen_globals:
            return
        self._seen_globals.add(id(fn_globals))
        for name, value in list(fn_globals.items()):
            if not name.startswith("__") and id(value) in originals and callable(value):
                public = originals[id(value)]
                # math's functions are recorded as torch's autowrap records them (wrapped);
                # descent's as torch's __torch_function__ records its own (not wrapped)
                wrapper = _recording_wrapper(value, public, is_wrapped=public is None)
                self.setitem(fn_globals, name, wrapper)

    def __enter__(self):
        return self

    def autowrap_every_caller(self, originals: dict[int, str | None]) -> None:
        """Wrap the module globals of every Python function that runs during the trace, when
        it starts (a profile hook on this thread): a helper in another module that calls
        `relu(x)` after `from descent import relu` records it, as torch's relu would through
        its own dispatch. descent's own modules are skipped (no Proxy legitimately reaches
        them) and the previous profile function is put back on exit."""

        def on_event(frame, event, arg):
            if event == "call":
                g = frame.f_globals
                if id(g) not in self._seen_globals and not g.get("__name__", "").startswith(
                    "descent."
                ):
                    self.autowrap_globals(g, originals)

        self._previous_profile = sys.getprofile()
        sys.setprofile(on_event)
        self._profile_installed = True

    def __exit__(self, *exc) -> None:
        if self._profile_installed:
            sys.setprofile(self._previous_profile)
            self._profile_installed = False
        while self._undo:
            obj, name, old, had = self._undo.pop()
            if isinstance(obj, dict):
                if had:
                    obj[name] = old
                else:
                    obj.pop(name, None)
            elif had:
                setattr(obj, name, old)
            else:
                delattr(obj, name)
        self._seen_globals.clear()


_is_fx_tracing_flag = False


def is_fx_tracing() -> bool:
    """Whether a symbolic trace is running (timm-style code skips its checks then)."""
    return _is_fx_tracing_flag


def is_fx_symbolic_tracing() -> bool:
    """Whether `symbolic_trace` is running (descent has no torch.export, so: is_fx_tracing)."""
    return _is_fx_tracing_flag


class PHBase:
    """A placeholder marker for `concrete_args` (`PH`): that input stays a Proxy."""

    def __repr__(self) -> str:
        return "PH"


PH = PHBase()


def _assert_is_none(value, msg: str) -> None:
    """The check a `concrete_args` value of None leaves in the graph."""
    if value is not None:
        raise AssertionError(msg)


# torch._assert is kept by dead-code elimination (torch's _assert_is_none is not: as torch)
_side_effectful_functions.add(descent._assert)


class Tracer(TracerBase):
    """Records a Module's (or a function's) forward as a Graph; subclass it to change what a
    leaf is (`is_leaf_module`) or how values become arguments (`create_arg`).

    Args:
        autowrap_modules: modules whose functions, when the traced code's globals name them,
            are recorded as calls (default: `math`).
        autowrap_functions: more functions recorded so when named by those globals.
        param_shapes_constant: answer `param.shape`, `size()`, `dim()` and `numel()` from the
            real parameter instead of recording them.
    """

    def __init__(self, autowrap_modules: tuple = (math,), autowrap_functions: tuple = (),
                 param_shapes_constant: bool = False) -> None:  # fmt: skip
        super().__init__()
        self._autowrap_modules = autowrap_modules
        self._autowrap_functions = autowrap_functions
        self.param_shapes_constant = param_shapes_constant
        self.submodule_paths: dict[int, str] | None = None
        # The module calls in progress: path (with `@n` for the n-th repeated call) ->
        # (path, type), copied into each node's meta["nn_module_stack"].
        self.module_stack: collections.OrderedDict[str, tuple[str, type]] = (
            collections.OrderedDict()
        )
        self.num_calls: dict[str, int] = {}
        self.tensor_attrs: dict[int, str] = {}
        self.root = None
        self.graph = None

    # -- what a value becomes --------------------------------------------------------------
    def create_arg(self, a: Any):
        """Parameters, buffers and submodules of the root become get_attr nodes; another tensor
        becomes a constant attribute of the root (`_tensor_constant0`)."""
        import descent  # noqa: PLC0415

        if isinstance(a, descent.nn.Parameter):
            for n, p in self.root.named_parameters():
                if a is p:
                    return self.create_node("get_attr", n, (), {})
            raise NameError("parameter is not a member of this module")
        if isinstance(a, descent.Tensor):
            for n, b in self.root.named_buffers():
                if a is b:
                    return self.create_node("get_attr", n, (), {})
            qualname = self.tensor_attrs.get(id(a))
            if not qualname:
                i = 0
                while hasattr(self.root, f"_tensor_constant{i}"):
                    i += 1
                qualname = f"_tensor_constant{i}"
                self.tensor_attrs[id(a)] = qualname
                setattr(self.root, qualname, a)
            return self.create_node("get_attr", qualname, (), {})
        if isinstance(a, descent.nn.Module):
            for n, m in self.root.named_modules():
                if a is m:
                    return self.create_node("get_attr", n, (), {})
        return super().create_arg(a)

    def is_leaf_module(self, m, module_qualified_name: str) -> bool:
        """descent.nn's own layers are leaves (one call_module node); Sequential and user
        modules are traced through."""
        import descent  # noqa: PLC0415

        module = type(m).__module__
        return module.startswith("descent.nn") and not isinstance(m, descent.nn.Sequential)

    def path_of_module(self, mod) -> str:
        """The dotted path of `mod` in the root (`layer1.0.conv1`)."""
        if self.submodule_paths is not None:
            path = self.submodule_paths.get(id(mod))
            if path is None:
                raise NameError("module is not installed as a submodule")
            return path
        for n, p in self.root.named_modules():
            if mod is p:
                return n
        raise NameError("module is not installed as a submodule")

    def call_module(self, m, forward: Callable, args: tuple, kwargs: dict):
        """A leaf becomes a call_module node; any other module's forward is traced."""
        module_qualified_name = self.path_of_module(m)
        num_calls = self.num_calls.get(module_qualified_name, 0)
        key = f"{module_qualified_name}@{num_calls}" if num_calls else module_qualified_name
        self.module_stack[key] = (module_qualified_name, type(m))
        self.num_calls[module_qualified_name] = num_calls + 1
        if not self.is_leaf_module(m, module_qualified_name):
            result = forward(*args, **kwargs)
        else:
            result = self.create_proxy("call_module", module_qualified_name, args, kwargs)
        self.module_stack.popitem(last=True)
        return result

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict):
        """A parameter read through a module attribute becomes a get_attr node (cached)."""
        import descent  # noqa: PLC0415

        if isinstance(attr_val, descent.nn.Parameter):
            for n, p in self.root.named_parameters():
                if attr_val is p:
                    if n not in parameter_proxy_cache:
                        node = self.create_node("get_attr", n, (), {})
                        parameter_proxy_cache[n] = (
                            ParameterProxy(self, node, n, attr_val)
                            if self.param_shapes_constant  # shapes answered, not recorded
                            else Proxy(node, self)
                        )
                    return parameter_proxy_cache[n]
        return attr_val

    # -- the trace -------------------------------------------------------------------------
    def create_args_for_root(self, root_fn: Callable, is_module: bool, concrete_args=None):
        """One placeholder per parameter of `root_fn` (after `self`); `concrete_args` values
        are passed as they are, behind a placeholder and a guard, as torch does."""
        fn = inspect.unwrap(root_fn)
        co = fn.__code__
        total_args = co.co_argcount + co.co_kwonlyargcount
        names = list(co.co_varnames[:total_args])
        args: list[Any] = []
        if is_module:
            if not names:
                raise RuntimeError("``self`` argument cannot be part of *args expansion!")
            names = names[1:]
            args.append(self.root)
        sig = inspect.signature(fn)
        if isinstance(concrete_args, tuple):
            if len(concrete_args) != len(names):
                raise RuntimeError(f"Tracing expected {len(names)} arguments but got "
                                   f"{len(concrete_args)} concrete arguments")  # fmt: skip
            concrete_args = dict(zip(names, concrete_args))
        for name in names:
            param = sig.parameters[name]
            default = () if param.default is inspect.Parameter.empty else (param.default,)
            if concrete_args is not None and name in concrete_args:
                args.append(self._concrete_placeholder(name, concrete_args[name], default))
                continue
            args.append(self.create_proxy("placeholder", name, default, {},
                                          type_expr=fn.__annotations__.get(name)))  # fmt: skip
        has_varstuff = co.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)
        if co.co_kwonlyargcount or has_varstuff:
            # `*args` and `**kwargs` become one placeholder each (a Proxy of the tuple / dict),
            # keyword-only parameters positional ones; the function is called through a copy
            # whose code takes them all positionally, as torch does.
            extra = iter(co.co_varnames[total_args:])
            if co.co_flags & inspect.CO_VARARGS:
                args.append(self.create_proxy("placeholder", "*" + next(extra), (), {}))
            if co.co_flags & inspect.CO_VARKEYWORDS:
                args.append(self.create_proxy("placeholder", "**" + next(extra), (), {}))
            root_fn = _positional_copy(root_fn, len(args))
        return root_fn, args

    def _concrete_placeholder(self, name: str, value: Any, default: tuple):
        import descent  # noqa: PLC0415

        out = self.create_proxy("placeholder", f"{name}_1", default, {})
        if isinstance(value, PHBase):
            return out
        if type(value) in (bool, int, float, str, complex):
            check = out == value  # an `eq` node
            msg = f"{name} has been specialized to have value {value} but got another value"
            self.create_proxy("call_function", descent._assert, (check, msg), {})
        elif value is None:
            msg = f"{name} has been specialized to have value None but got another value"
            self.create_proxy("call_function", _assert_is_none, (out, msg), {})
        else:
            warnings.warn(
                f"Was not able to add assertion to guarantee correct input {name} to "
                "specialized function. It is up to the user to make sure that your inputs match "
                "the inputs you specialized the function with.",
                stacklevel=3,
            )
        return value

    def trace(self, root, concrete_args: dict | tuple | None = None) -> Graph:
        """Trace `root` (a Module or a function) and return its Graph."""
        import descent  # noqa: PLC0415

        if isinstance(root, descent.nn.Module):
            self.root = root
            fn = type(root).forward
            self.submodule_paths = {id(m): n for n, m in root.named_modules()}
        else:
            self.root = descent.nn.Module()
            fn = root
        self.graph = Graph(tracer_cls=type(self))
        self.tensor_attrs = {}
        self.module_stack.clear()
        self.num_calls = {}
        # Plain tensor attributes of the modules (not registered) are read as get_attr too.
        if isinstance(root, descent.nn.Module):
            for mod_name, mod in root.named_modules():
                for k, v in vars(mod).items():
                    if isinstance(v, descent.Tensor) and not isinstance(v, descent.nn.Parameter):
                        self.tensor_attrs.setdefault(id(v), f"{mod_name}.{k}" if mod_name else k)
        fn_globals = getattr(inspect.unwrap(fn), "__globals__", {})
        fn, args = self.create_args_for_root(fn, isinstance(root, descent.nn.Module),
                                             concrete_args)  # fmt: skip
        global _is_fx_tracing_flag
        was_tracing, _is_fx_tracing_flag = _is_fx_tracing_flag, True
        try:
            with _Patcher() as patcher:
                self._install(patcher, fn_globals)
                result = fn(*args)
                returns = getattr(fn, "__annotations__", {}).get("return")
                self.create_node("output", "output", (self.create_arg(result),), {},
                                 type_expr=returns)  # fmt: skip
        finally:
            _is_fx_tracing_flag = was_tracing
        self.submodule_paths = None
        return self.graph

    def _install(self, patcher: _Patcher, fn_globals: dict) -> None:
        import descent  # noqa: PLC0415

        entries = _names.public_callables()
        originals: dict[int, str | None] = {id(obj): public for _, _, obj, public in entries}
        for module in self._autowrap_modules:
            for name, obj in vars(module).items():
                if not name.startswith("_") and callable(obj) and _names.is_wrappable(obj):
                    originals.setdefault(id(obj), None)
        for fn in self._autowrap_functions:
            originals.setdefault(id(fn), None)
        for module, name, obj, public in entries:
            if vars(module).get(name) is obj:
                patcher.setattr(module, name, _recording_wrapper(obj, public))
        patcher.autowrap_globals(fn_globals, originals)
        # A function kept as a module attribute (`self.activation = descent.relu`) is
        # reached through the instance, not a namespace: wrap it there too (torch's functions
        # dispatch on their arguments wherever they are called from).
        patcher.autowrap_globals(vars(self.root), originals)
        for module in self._autowrap_modules:  # `math.sqrt(n)` too, as torch patches math
            patcher.autowrap_globals(vars(module), originals)
        patcher.autowrap_every_caller(originals)
        # Registered leaf functions (`wrap`), where their module defines them.
        for (_, name), frame_globals in list(_wrapped_fns_to_patch.items()):
            if name not in frame_globals and hasattr(builtins, name):
                orig = getattr(builtins, name)
            else:
                orig = frame_globals[name]
            orig = getattr(orig, "__fx_wrapper_of__", orig)
            patcher.setitem(frame_globals, name, _recording_wrapper(orig, None, is_wrapped=True))

        tracer = self
        parameter_proxy_cache: dict[str, Proxy] = {}
        orig_call = descent.nn.Module.__call__
        orig_getattr = descent.nn.Module.__getattr__

        def module_call_wrapper(mod, *args, **kwargs):
            def forward(*args, **kwargs):
                return orig_call(mod, *args, **kwargs)

            patcher.autowrap_globals(
                getattr(getattr(mod, "forward", mod), "__globals__", {}), originals
            )
            patcher.autowrap_globals(vars(mod), originals)  # `self.act = F.relu`
            return tracer.call_module(mod, forward, args, kwargs)

        def module_getattr_wrapper(mod, attr):
            return tracer.getattr(attr, orig_getattr(mod, attr), parameter_proxy_cache)

        patcher.setattr(descent.nn.Module, "__call__", module_call_wrapper)
        patcher.setattr(descent.nn.Module, "__getattr__", module_getattr_wrapper)
        for op, method in _TENSOR_OPERATORS.items():
            orig_op = getattr(descent.Tensor, op, None)
            if orig_op is not None:
                patcher.setattr(descent.Tensor, op, _tensor_operator(orig_op, method))
        for name, orig_method in _tensor_methods():
            patcher.setattr(descent.Tensor, name, _tensor_method(orig_method, name))


def _positional_copy(fn: Callable, nargs: int) -> Callable:
    """`fn` with a code object that takes `nargs` plain positional parameters (its `*args` /
    `**kwargs` / keyword-only ones included), so a Proxy can stand for each."""
    fn = inspect.unwrap(fn)
    co = fn.__code__
    flags = co.co_flags & ~(inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)
    code = co.replace(co_argcount=nargs, co_posonlyargcount=0, co_kwonlyargcount=0,
                      co_flags=flags)  # fmt: skip
    return types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


_tensor_method_cache: list[tuple[str, Callable]] | None = None


def _tensor_methods() -> list[tuple[str, Callable]]:
    """Tensor's public methods (plain functions, found once, before any patching)."""
    global _tensor_method_cache
    if _tensor_method_cache is None:
        import descent  # noqa: PLC0415

        found = []
        for name in dir(descent.Tensor):
            obj = inspect.getattr_static(descent.Tensor, name, None)
            if not name.startswith("_") and isinstance(obj, types.FunctionType):
                found.append((name, obj))
        _tensor_method_cache = found
    return _tensor_method_cache


def _tensor_method(orig: Callable, name: str) -> Callable:
    """A Tensor method that records `tensor.<name>(..., proxy, ...)` as torch's call_method
    when an argument is a Proxy (`self.buffer.expand(batch, -1)` with a traced batch)."""

    def method(self, *args, **kwargs):
        proxy = find_proxy(args, kwargs) if (args or kwargs) else None
        if proxy is None:
            return orig(self, *args, **kwargs)
        return proxy.tracer.create_proxy("call_method", name, (self, *args), kwargs)

    method.__name__ = name
    method.__fx_wrapper_of__ = orig
    return method


def _tensor_operator(orig_op: Callable, method: str) -> Callable:
    """A Tensor operator that records `tensor.<method>(proxy)` when its operand is a Proxy."""

    def op(self, other):
        # an index may hold the Proxy inside a tuple: buffer[:, proxy]
        proxy = other if isinstance(other, Proxy) else find_proxy((other,), {})
        if proxy is not None:
            return proxy.tracer.create_proxy("call_method", method, (self, other), {})
        return orig_op(self, other)

    op.__name__ = orig_op.__name__
    return op


def symbolic_trace(root, concrete_args: dict | tuple | None = None):
    """Trace a Module or a function into a GraphModule (torch.fx.symbolic_trace).

    Args:
        root: a descent.nn.Module or a plain function of tensors.
        concrete_args: inputs to fix rather than trace (`{"flag": False}`); the graph keeps a
            placeholder for each and a guard that checks the value.

    Returns:
        A GraphModule whose `graph` is the trace and whose `forward` is its generated code.
    """
    from .graph_module import GraphModule  # noqa: PLC0415

    tracer = Tracer()
    graph = tracer.trace(root, concrete_args)
    import descent  # noqa: PLC0415

    is_module = isinstance(root, descent.nn.Module)
    name = type(root).__name__ if is_module else getattr(root, "__name__", "GraphModule")
    return GraphModule(tracer.root, graph, name)


def has_side_effect(fn: Callable) -> Callable:
    """Mark `fn` as side-effectful: dead-code elimination keeps its call_function nodes even
    when nothing reads their value (torch.fx.has_side_effect; usable as a decorator)."""
    _side_effectful_functions.add(fn)
    return fn


def wrap(fn_or_name: str | Callable):
    """Make a module-level function a leaf of every trace (torch.fx.wrap): its calls with a
    Proxy argument are recorded as one call_function node instead of being traced into.

    Call it at the top level of the module that defines (or imports) the function:
    `descent.fx.wrap("my_fn")` or `descent.fx.wrap(my_fn)`; it returns its argument, so it
    works as a decorator.
    """
    if not callable(fn_or_name) and not isinstance(fn_or_name, str):
        raise RuntimeError("Unsupported type for global function! Must be either a callable or "
                           "string name")  # fmt: skip
    if callable(fn_or_name):
        if isinstance(fn_or_name, str):
            raise AssertionError("fn_or_name must be a global function or string name")
        fn_name = fn_or_name.__name__
    else:
        fn_name = fn_or_name
    frame = inspect.currentframe()
    caller = frame.f_back if frame is not None else None
    if caller is None or caller.f_code.co_name != "<module>":
        raise NotImplementedError("wrap must be called at the top level of a module")
    _wrapped_fns_to_patch[(id(caller.f_globals), fn_name)] = caller.f_globals
    return fn_or_name
