"""`torch.library`: user-defined operators (`custom_op`) with their own gradients.

PyTorch 2.4+'s recommended way to wrap code autograd cannot see (NumPy, SciPy, a C extension)
is a custom operator:

    @descent.library.custom_op("mylib::numpy_sin", mutates_args=())
    def numpy_sin(x: Tensor) -> Tensor:
        return descent.from_numpy(np.sin(x.numpy(force=True)))

    def setup_context(ctx, inputs, output):
        (x,) = inputs
        ctx.save_for_backward(x)

    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x.cos()

    numpy_sin.register_autograd(backward, setup_context=setup_context)
    numpy_sin(x)                        # also descent.ops.mylib.numpy_sin(x)

As in PyTorch: the function's parameters and return need type annotations (the schema is
inferred from them, `infer_schema`); the body runs without autograd; an output may not alias an
input; `mutates_args` names the arguments the body changes in place ("unknown": any tensor);
without `register_autograd` an output of inputs that require grad still requires grad, and
backward through it raises "no autograd formula was registered". `register_fake` is stored
(descent has no fake-tensor tracing: `opcheck` uses it to check the fake outputs' shapes and
dtypes against the real ones), `register_kernel(device_types)` adds a per-device body
('cpu', 'cuda'), `register_vmap` and `register_torch_dispatch` are stored (descent's vmap runs the
op per sample). `opcheck(op, args)` runs descent's checks of the op: schema (no undeclared
mutation, no aliasing output), autograd registration, the fake implementation, and gradients
against finite differences for float64 inputs.
"""

from __future__ import annotations

import contextlib
import inspect
import types as _types
import typing as _typing
from collections.abc import Callable, Sequence

import numpy as _np

from .autograd_function import Function as _Function
from .grad_mode import is_grad_enabled as _is_grad_enabled
from .grad_mode import no_grad as _no_grad
from .tensor import Tensor as _Tensor

__all__ = ["custom_op", "CustomOpDef", "infer_schema", "register_autograd", "register_fake",
           "register_kernel", "register_vmap", "register_torch_dispatch", "opcheck",
           "get_ctx"]  # fmt: skip
# (and, loaded on first use, _SCHEMA_API's names at the end of this module)

_OPS: dict[str, CustomOpDef] = {}  # "namespace::name" -> op
_NAMESPACES: dict[str, dict[str, CustomOpDef]] = {}  # namespace -> {name: op}


# -- schema ---------------------------------------------------------------------------------------


def _type_name(annotation, where: str) -> str:
    from .devices import device as device_cls  # noqa: PLC0415
    from .dtypes import dtype as dtype_cls  # noqa: PLC0415

    simple = {_Tensor: "Tensor", float: "float", int: "SymInt", bool: "bool", str: "str",
              dtype_cls: "ScalarType", device_cls: "Device", type(None): "()"}  # fmt: skip
    if annotation in simple:
        return simple[annotation]
    origin = _typing.get_origin(annotation)
    args = _typing.get_args(annotation)
    if origin in (_typing.Union, _types.UnionType) and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        return _type_name(inner, where) + "?"
    if origin in (list, Sequence, _typing.Sequence) and len(args) == 1:
        return _type_name(args[0], where) + "[]"
    raise ValueError(f"infer_schema(func): {where} has unsupported type {annotation}. The valid "
                     "types are Tensor, float, int, bool, str, dtype, device, their Optional[...] "
                     "and list[...] / Sequence[...] forms, and tuple[...] of them for the "
                     "return.")  # fmt: skip


def infer_schema(prototype_function: Callable, /, *, mutates_args,
                 op_name: str | None = None) -> str:  # fmt: skip
    """The operator schema PyTorch infers from `prototype_function`'s type annotations, e.g.
    "(Tensor x, float s=2.0) -> (Tensor, Tensor)"; mutated tensors are marked "Tensor(a0!)"."""
    sig = inspect.signature(prototype_function)
    hints = _typing.get_type_hints(prototype_function)
    names = list(sig.parameters)
    if mutates_args != "unknown":
        missing = set(mutates_args) - set(names)
        if missing:
            raise ValueError(f"infer_schema(func): {missing} in mutates_args were not found in "
                             "the custom op's signature. mutates_args should contain the names of "
                             "all args that the custom op mutates.")  # fmt: skip
    parts, kw_started = [], False
    for i, (name, p) in enumerate(sig.parameters.items()):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ValueError("infer_schema(func): Parameters of kind *args / **kwargs are not "
                             "supported.")  # fmt: skip
        if name not in hints:
            raise ValueError(f"infer_schema(func): Parameter {name} must have a type "
                             "annotation.")  # fmt: skip
        t = _type_name(hints[name], f"Parameter {name}")
        mutated = mutates_args == "unknown" and t.startswith("Tensor") or (
            mutates_args != "unknown" and name in mutates_args)  # fmt: skip
        if mutated:
            t = t.replace("Tensor", f"Tensor(a{i}!)", 1)
        if p.kind == p.KEYWORD_ONLY and not kw_started:
            parts.append("*")
            kw_started = True
        default = "" if p.default is p.empty else f"={p.default!r}"
        parts.append(f"{t} {name}{default}")
    if "return" not in hints:
        raise ValueError("infer_schema(func): No return type annotation was provided. Please add "
                         "one.")  # fmt: skip
    ret = hints["return"]
    if _typing.get_origin(ret) is tuple:
        out = "(" + ", ".join(_type_name(a, "Return") for a in _typing.get_args(ret)) + ")"
    else:
        out = _type_name(ret, "Return")
    return f"({', '.join(parts)}) -> {out}"


# -- the operator ---------------------------------------------------------------------------------


class CustomOpDef:
    """A custom operator (what `custom_op` returns). Call it like the function it wraps."""

    def __init__(self, namespace: str, name: str, schema: str, fn: Callable,
                 mutates_args) -> None:  # fmt: skip
        self._namespace, self._name = namespace, name
        self._schema = schema
        self._init_fn = fn
        self._mutates = mutates_args
        self._kernels: dict[str, Callable] = {}
        self._disabled: set[str] = set()
        self._fake: Callable | None = None
        self._backward: Callable | None = None
        self._setup_context: Callable | None = None
        self._vmap: Callable | None = None
        self._dispatch: dict = {}
        self._signature = inspect.signature(fn)
        self._function: type | None = None
        self.__name__ = name
        self.__doc__ = fn.__doc__

    @property
    def _qualname(self) -> str:
        return f"{self._namespace}::{self._name}"

    @property
    def default(self) -> CustomOpDef:
        """`torch.ops.ns.name.default`: the op itself (descent keeps one overload)."""
        return self

    def __repr__(self) -> str:
        return f"<CustomOpDef({self._qualname})>"

    # registration -------------------------------------------------------------------------------
    def register_fake(self, fn: Callable, /) -> Callable:
        self._fake = fn
        return fn

    def register_kernel(self, device_types, fn: Callable | None = None, /):
        kinds = [device_types] if isinstance(device_types, str) or device_types is None else \
            list(device_types)  # fmt: skip

        def register(f: Callable) -> Callable:
            for d in kinds:
                self._kernels[str(d or "default").split(":")[0]] = f
            return f

        return register if fn is None else register(fn)

    def register_autograd(self, backward: Callable, /, *,
                          setup_context: Callable | None = None) -> None:  # fmt: skip
        self._backward, self._setup_context = backward, setup_context
        self._function = None

    def register_vmap(self, func: Callable | None = None, /):
        def register(f):
            self._vmap = f
            return f

        return register if func is None else register(func)

    def register_torch_dispatch(self, torch_dispatch_class, fn: Callable | None = None, /):
        def register(f):
            self._dispatch[torch_dispatch_class] = f
            return f

        return register if fn is None else register(fn)

    @contextlib.contextmanager
    def set_kernel_enabled(self, device_type: str, enabled: bool = True):
        """Turn off (or back on) the kernel registered for `device_type` within the block."""
        was = device_type in self._disabled
        (self._disabled.discard if enabled else self._disabled.add)(device_type)
        try:
            yield
        finally:
            (self._disabled.add if was else self._disabled.discard)(device_type)

    # calling ------------------------------------------------------------------------------------
    def _kernel_for(self, args) -> Callable:
        devices = [a.device.type for a in _tensors(args)]
        kind = devices[0] if devices else "cpu"
        if kind in self._kernels and kind not in self._disabled:
            return self._kernels[kind]
        if "default" in self._kernels and "default" not in self._disabled:
            return self._kernels["default"]
        return self._init_fn

    def _run(self, args: tuple, kwargs: dict):
        kernel = self._kernel_for(args)
        with _no_grad():
            out = kernel(*args, **kwargs)
        ins = _tensors(args) + _tensors(tuple(kwargs.values()))
        for o in _tensors(out if isinstance(out, (tuple, list)) else (out,)):
            for t in ins:
                if o is t or _np.may_share_memory(o._data, t._data):
                    raise RuntimeError(
                        f"{self._name} (with implementation in {kernel!r}): The output of this "
                        "custom operator (1) must not also be an input to this custom operator "
                        "and (2) may not alias any inputs to this custom operator or other "
                        "returns. Please instead return a clone of the offending output "
                        "tensor(s) (e.g. return x.clone())."
                    )
        return out

    def __call__(self, *args, **kwargs):
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        pos = tuple(bound.args)
        kw = dict(bound.kwargs)
        needs_grad = _is_grad_enabled() and any(t.requires_grad for t in _tensors(pos))
        if not needs_grad:
            return self._run(pos, kw)
        return _run_with_autograd(self, pos, kw)


def _tensors(values) -> list:
    out = []
    for v in values:
        if isinstance(v, _Tensor):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            out.extend(x for x in v if isinstance(x, _Tensor))
    return out


def _run_with_autograd(op: CustomOpDef, pos: tuple, kw: dict):
    """Run `op` through an autograd Function over its inputs' tensors, flattened: a list input
    (`xs: Sequence[Tensor]`) contributes each tensor, and the outputs (a tensor, a tuple, lists,
    ints) are flattened too, so every tensor in and out is a node input or output."""
    from .utils._pytree import tree_flatten, tree_unflatten  # noqa: PLC0415

    if op._function is None:
        op._function = _make_function(op)
    flat_in, in_spec = tree_flatten(pos)
    call = {"op": op, "kw": kw, "in_spec": in_spec, "n_pos": len(pos)}
    flat_out = op._function.apply(call, *flat_in)
    flat_out = flat_out if isinstance(flat_out, tuple) else (flat_out,)
    leaves, it = [], iter(flat_out)
    for leaf in call["out_leaves"]:
        leaves.append(next(it) if leaf is _TENSOR else leaf)
    return tree_unflatten(leaves, call["out_spec"])


_TENSOR = object()  # marks an output leaf that is a tensor (the node's outputs)


def _make_function(op: CustomOpDef) -> type:
    """The autograd Function through which `op` runs when an input requires grad."""
    from .utils._pytree import tree_flatten, tree_unflatten  # noqa: PLC0415

    def forward(ctx, call, *flat_in):
        pos = tree_unflatten(list(flat_in), call["in_spec"])
        kw = call["kw"]
        out = op._run(pos, kw)
        out_leaves, out_spec = tree_flatten(out)
        call["out_spec"] = out_spec
        call["out_leaves"] = [_TENSOR if isinstance(v, _Tensor) else v for v in out_leaves]
        ctx._call = call
        # per original input: does it (or, for a list, any of its tensors) need a gradient?
        needs = []
        for v in pos:
            ts = _tensors((v,))
            needs.append(any(t.requires_grad for t in ts) if ts else False)
        ctx._op_needs = tuple(needs)
        if op._setup_context is not None:
            flat_needs, ctx.needs_input_grad = ctx.needs_input_grad, ctx._op_needs
            try:
                if len(inspect.signature(op._setup_context).parameters) == 4:
                    op._setup_context(ctx, pos, kw, out)
                else:
                    op._setup_context(ctx, pos, out)
            finally:
                ctx.needs_input_grad = flat_needs
        tensors = tuple(v for v in out_leaves if isinstance(v, _Tensor))
        return tensors if len(tensors) != 1 or not isinstance(out, _Tensor) else tensors[0]

    def backward(ctx, *grads):
        call = ctx._call
        if op._backward is None:
            raise RuntimeError(
                f"Trying to backward through {op._namespace}.{op._name}.default but no autograd "
                f"formula was registered. Please use register_autograd to add one."
            )
        it = iter(grads)
        leaves = [next(it) if leaf is _TENSOR else None for leaf in call["out_leaves"]]
        grad_out = tree_unflatten(leaves, call["out_spec"])
        args = grad_out if isinstance(grad_out, tuple) else (grad_out,)
        flat_needs, ctx.needs_input_grad = ctx.needs_input_grad, ctx._op_needs
        try:
            res = op._backward(ctx, *args)
        finally:
            ctx.needs_input_grad = flat_needs
        res = res if isinstance(res, tuple) else (res,)
        if len(res) != call["n_pos"]:
            raise RuntimeError(
                f"{op._qualname}: the backward registered with register_autograd returned "
                f"{len(res)} gradients; it must return one per positional input "
                f"({call['n_pos']}), None for an input without a gradient"
            )
        flat: list = []
        for g, spec in zip(res, call["in_spec"].children(), strict=True):
            if spec.is_leaf():
                flat.append(g)
            elif g is None:
                flat.extend([None] * spec.num_leaves)
            else:
                flat.extend(spec.flatten_up_to(g))
        return (None, *flat)

    name = f"GeneratedBackwardFor_{op._namespace}_{op._name}_default"
    return type(name, (_Function,), {"forward": staticmethod(forward),
                                    "backward": staticmethod(backward)})  # fmt: skip


def custom_op(name: str, fn: Callable | None = None, /, *, mutates_args,
              device_types=None, schema: str | None = None):  # fmt: skip
    """Wrap `fn` as the operator `name` ("namespace::opname"); usable as a decorator.

    Args:
        name: "namespace::opname" (PyTorch's form).
        mutates_args: the names of the arguments `fn` changes in place, () for none, or
            "unknown".
        device_types: register `fn` for these device types only ('cpu', 'cuda').
        schema: an explicit schema string (otherwise inferred from the annotations).
    """
    if not isinstance(name, str) or name.count("::") != 1 or not all(name.split("::")):
        raise ValueError(f"custom_op: expected a name of the form 'namespace::opname', got "
                         f"{name!r}")  # fmt: skip
    if mutates_args != "unknown" and isinstance(mutates_args, str):
        raise ValueError("custom_op: mutates_args must be an iterable of argument names, () or "
                         f"'unknown', got the string {mutates_args!r}")  # fmt: skip

    def wrap(f: Callable) -> CustomOpDef:
        sch = schema if schema is not None else infer_schema(f, mutates_args=mutates_args)
        namespace, opname = name.split("::")
        op = CustomOpDef(namespace, opname, sch, f, mutates_args)
        if device_types is not None:
            op._init_fn = _no_kernel(op)
            op.register_kernel(device_types, f)
        _OPS[name] = op
        _NAMESPACES.setdefault(namespace, {})[opname] = op
        return op

    return wrap if fn is None else wrap(fn)


def _no_kernel(op: CustomOpDef) -> Callable:
    def missing(*args, **kwargs):
        devices = sorted({t.device.type for t in _tensors(args)}) or ["cpu"]
        raise NotImplementedError(f"{op._qualname}: no kernel registered for device type "
                                  f"{devices[0]!r}; register one with "
                                  f"register_kernel({devices[0]!r})")  # fmt: skip

    return missing


def _lookup(op) -> CustomOpDef:
    if isinstance(op, CustomOpDef):
        return op
    if isinstance(op, str) and op in _OPS:
        return _OPS[op]
    raise ValueError(f"torch.library: {op!r} is not a custom op defined with custom_op "
                     "(descent has no other operator registry)")  # fmt: skip


def register_autograd(op, backward: Callable, /, *, setup_context: Callable | None = None,
                      lib=None) -> None:  # fmt: skip
    """`torch.library.register_autograd("ns::op", backward, setup_context=...)`."""
    _lookup(op).register_autograd(backward, setup_context=setup_context)


def register_fake(op, func: Callable | None = None, /, *, lib=None, _stacklevel: int = 1):
    target = _lookup(op)
    return target.register_fake if func is None else target.register_fake(func)


def register_kernel(op, device_types, func: Callable | None = None, /, *, lib=None):
    return _lookup(op).register_kernel(device_types, func)


def register_vmap(op, func: Callable | None = None, /, *, lib=None):
    return _lookup(op).register_vmap(func)


def register_torch_dispatch(op, torch_dispatch_class, func: Callable | None = None, /, *,
                            lib=None):  # fmt: skip
    return _lookup(op).register_torch_dispatch(torch_dispatch_class, func)


def get_ctx():
    """`torch.library.get_ctx()` inside a fake implementation: descent runs fakes only from
    `opcheck`, where no dynamic-shape context exists."""
    raise RuntimeError("descent.library.get_ctx: there is no fake-tensor tracing in descent, so "
                       "a fake implementation runs without a context")  # fmt: skip


def opcheck(op, args: tuple, kwargs: dict | None = None, *, test_utils=None,
            raise_exception: bool = True, rtol: float | None = None,
            atol: float | None = None) -> dict[str, str]:  # fmt: skip
    """Check a custom op on sample inputs (see the module docstring); returns PyTorch's shape
    of result, {test name: "SUCCESS" | "SKIPPED: why" | the error}, raising on the first
    failure unless raise_exception=False."""
    target = _lookup(op)
    kwargs = dict(kwargs or {})
    results: dict[str, str] = {}

    def record(test: str, check: Callable[[], str | None]) -> None:
        try:
            note = check()
            results[test] = "SUCCESS" if note is None else f"SKIPPED: {note}"
        except Exception as e:  # noqa: BLE001 - reported (and re-raised) below
            if raise_exception:
                raise _OpCheckError(f"opcheck(op, ...): {test} failed with {e}") from e
            results[test] = str(e)

    def schema() -> None:
        copies = [(t, t._data.copy()) for t in _tensors(tuple(args) + tuple(kwargs.values()))]
        with _no_grad():
            target(*_detached(args), **kwargs)  # runs _run's aliasing check
        names = list(target._signature.parameters)
        bound = target._signature.bind(*args, **kwargs)
        for (t, before), name in zip(copies, _tensor_names(bound, names), strict=False):
            changed = not _np.array_equal(before, t._data, equal_nan=True)
            allowed = target._mutates == "unknown" or name in target._mutates
            if changed and not allowed:
                raise RuntimeError(f"{target._qualname}: argument {name!r} was mutated but is "
                                   "not in mutates_args")  # fmt: skip
            if changed:
                t._data[...] = before  # put the sample back for the next checks

    def autograd_registration() -> str | None:
        if not any(t.requires_grad for t in _tensors(args)):
            return "no input requires grad"
        if target._backward is None:
            raise RuntimeError(f"{target._qualname}: an input requires grad but no autograd "
                               "formula is registered (register_autograd)")  # fmt: skip
        return None

    def fake() -> str | None:
        if target._fake is None:
            raise RuntimeError(f"There was no fake impl registered for {target!r}. Please use "
                               f"`{target._name}.register_fake` to add an fake impl.")  # fmt: skip
        with _no_grad():
            real = target(*_detached(args), **kwargs)
            fk = target._fake(*_detached(args), **kwargs)
        for r, f in zip(_as_list(real), _as_list(fk), strict=True):
            if isinstance(r, _Tensor) and (tuple(r.shape) != tuple(f.shape) or r.dtype != f.dtype):
                raise RuntimeError(
                    f"{target._qualname}: the fake impl gives {tuple(f.shape)} {f.dtype}, the "
                    f"real one {tuple(r.shape)} {r.dtype}"
                )
        return None

    def gradients() -> str | None:
        ins = [t for t in _tensors(args) if t.requires_grad]
        if not ins or target._backward is None:
            return "no input requires grad, or no autograd formula"
        if any(str(t.dtype) != "descent.float64" for t in ins):
            return "gradients are checked for float64 inputs only"
        from .autograd_gradcheck import gradcheck  # noqa: PLC0415
        from .utils._pytree import tree_flatten, tree_unflatten  # noqa: PLC0415

        flat, spec = tree_flatten(tuple(args))  # a list argument's tensors are checked too

        def run(*leaves):
            return target(*tree_unflatten(list(leaves), spec), **kwargs)

        gradcheck(run, tuple(flat), rtol=rtol or 1e-3, atol=atol or 1e-5)
        return None

    record("test_schema", schema)
    record("test_autograd_registration", autograd_registration)
    record("test_faketensor", fake)
    record("test_gradients", gradients)
    return results


class _OpCheckError(Exception):
    """A check of `opcheck` failed (PyTorch's is torch.testing._internal.optests'
    OpCheckError, not a name of torch.library)."""


def _detached(args):
    return tuple(a.detach() if isinstance(a, _Tensor) else a for a in args)


def _as_list(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _tensor_names(bound, names) -> list[str]:
    out = []
    for name in names:
        v = bound.arguments.get(name)
        if isinstance(v, _Tensor):
            out.append(name)
        elif isinstance(v, (list, tuple)):
            out.extend(name for x in v if isinstance(x, _Tensor))
    return out


class _OpNamespace:
    """`torch.ops.<namespace>`: the custom ops defined in it."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, opname: str) -> CustomOpDef:
        ops = _NAMESPACES.get(self._name, {})
        if opname in ops:
            return ops[opname]
        raise AttributeError(f"'_OpNamespace' '{self._name}' object has no attribute "
                             f"'{opname}'")  # fmt: skip


def _namespace(name: str) -> _OpNamespace | None:
    """The namespace object for `descent.ops.<name>`, or None if no custom op uses it."""
    return _OpNamespace(name) if name in _NAMESPACES else None


_SCHEMA_API = ("Library", "define", "impl", "impl_abstract", "fallthrough_kernel")


def __getattr__(name: str):
    """The schema-string API (library_define.py) builds on this module: loaded on first use."""
    if name in _SCHEMA_API:
        from . import library_define  # noqa: PLC0415

        return getattr(library_define, name)
    raise AttributeError(f"module 'descent.library' has no attribute {name!r}")
