"""`torch.library`'s low-level API: `Library`, `define` and `impl` (operators from schema strings).

Older extensions and many serving libraries define operators this way instead of `custom_op`:

    lib = descent.library.Library("mylib", "DEF")
    lib.define("scale(Tensor x, float s=2.) -> Tensor")
    lib.impl("scale", lambda x, s=2.0: x * s, "CompositeImplicitAutograd")
    descent.ops.mylib.scale(x, 3.0)

or with the module-level functions:

    descent.library.define("mylib::twice", "(Tensor x) -> Tensor")

    @descent.library.impl("mylib::twice", "cpu")
    def twice(x):
        return x * 2

The schema string is parsed as PyTorch's (types, `Tensor(a!)` for a mutated argument, `*` before
keyword-only arguments, defaults) and gives the operator its Python signature. What each
dispatch key means here (descent has one dispatcher, in Python):

- "CompositeImplicitAutograd" (also the empty key ""): the implementation runs with autograd on,
  so its gradient comes from the descent ops it calls; used for every device.
- "CPU" / "cpu", "CUDA" / "cuda", "CompositeExplicitAutograd" ("default"): a kernel that runs
  without autograd (as a `custom_op`'s body does). Its gradient comes from `register_autograd` or
  an "Autograd" kernel; without either, backward through an output raises naming the operator
  (PyTorch 2.13 only warns and deprecates that silent case).
- "Autograd" / "AutogradCPU" / "AutogradCUDA": called when grad mode is on and an input requires
  grad; typically an `autograd.Function`'s `apply`, whose forward calls the operator again (with
  grad mode off inside a Function, so that call reaches the kernel).
- "Meta": the fake implementation (`opcheck` checks it; descent has no fake tensors).

Registrations belong to their `Library`: `lib._destroy()`, or the object being garbage-collected,
removes the operators it defined and the kernels it registered, as in PyTorch. Overriding
PyTorch's own operators (`Library("aten", "IMPL")`) is not possible in descent and raises.
"""

from __future__ import annotations

import ast
import inspect
import re
import weakref
from collections.abc import Callable

from .grad_mode import is_grad_enabled, no_grad
from .library import _NAMESPACES, _OPS, CustomOpDef, _lookup, _tensors, register_fake

__all__ = ["Library", "define", "impl", "impl_abstract", "fallthrough_kernel"]

_DEF_NAMESPACES: set[str] = set()  # namespaces a live Library("ns", "DEF") owns
_ARG_RE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:\([a-z0-9]+!?\))?(?:\[\d*\])?\??(?:\[\d*\])?)"
                     r"\s+(?P<name>\w+)(?:\s*=\s*(?P<default>.+))?$")  # fmt: skip
_KEYS = {"": "implicit", "compositeimplicitautograd": "implicit",
         "cpu": "cpu", "cuda": "cuda", "compositeexplicitautograd": "default",
         "default": "default", "autograd": "autograd", "autogradcpu": "autograd",
         "autogradcuda": "autograd", "meta": "meta"}  # fmt: skip


# -- schema strings -------------------------------------------------------------------------------


def _split_top(text: str) -> list[str]:
    """Split on the commas outside brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    last = text[start:].strip()
    return parts + [last] if last else parts


def _default(text: str, where: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if re.fullmatch(r"\w+", text):  # an enum-like default: contiguous_format, long, mean
            return text
        raise ValueError(f"{where}: cannot parse the default value {text!r}") from None


def parse_schema(schema: str, where: str) -> tuple[str | None, inspect.Signature, tuple, str]:
    """Parse "name(args) -> returns" (the name is optional) into (name, the Python signature,
    the names of the mutated arguments, the returns' text)."""
    m = re.fullmatch(r"\s*([\w.]*)\s*\((.*)\)\s*->\s*(.+?)\s*", schema, re.S)
    if m is None:
        raise ValueError(f"{where}: {schema!r} is not an operator schema; expected the form "
                         "'name(Tensor x, int n=2, *, float alpha=1.) -> Tensor'")  # fmt: skip
    name, args_text, returns = m.group(1) or None, m.group(2), m.group(3)
    params, mutated, kw_only = [], [], False
    for arg in _split_top(args_text):
        if arg == "*":
            kw_only = True
            continue
        a = _ARG_RE.match(arg)
        if a is None:
            raise ValueError(f"{where}: cannot parse the argument {arg!r} of {schema!r}; "
                             "expected 'Type name' or 'Type name=default'")  # fmt: skip
        if "!" in a.group("type"):
            mutated.append(a.group("name"))
        default = inspect.Parameter.empty
        if a.group("default") is not None:
            default = _default(a.group("default").strip(), where)
        kind = inspect.Parameter.KEYWORD_ONLY if kw_only else \
            inspect.Parameter.POSITIONAL_OR_KEYWORD  # fmt: skip
        params.append(inspect.Parameter(a.group("name"), kind, default=default))
    try:
        sig = inspect.Signature(params)
    except ValueError as e:
        raise ValueError(f"{where}: {schema!r}: {e}") from None
    return name, sig, tuple(mutated), returns


# -- operators defined from a schema --------------------------------------------------------------


class LibraryOpDef(CustomOpDef):
    """An operator made by `define`: its kernels come from `impl` (or `register_kernel`), its
    gradient from a CompositeImplicitAutograd implementation, an Autograd kernel or
    `register_autograd`."""

    def __init__(self, namespace: str, name: str, schema: str, signature: inspect.Signature,
                 mutated: tuple) -> None:  # fmt: skip
        def no_kernel(*args, **kwargs):
            devices = sorted({t.device.type for t in _tensors(args)}) or ["cpu"]
            raise NotImplementedError(
                f"{namespace}::{name}: no implementation for device type {devices[0]!r}. Give "
                f"one with impl('{namespace}::{name}', fn, 'CompositeImplicitAutograd') or "
                f"'{devices[0].upper()}' (Library.impl / descent.library.impl)"
            )

        super().__init__(namespace, name, schema, no_kernel, mutated)
        self._signature = signature
        self._implicit: Callable | None = None
        self._autograd_kernel: Callable | None = None

    def __repr__(self) -> str:
        return f"<OpOverload({self._qualname}.default)>"

    def __call__(self, *args, **kwargs):
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        pos, kw = tuple(bound.args), dict(bound.kwargs)
        if self._implicit is not None and not self._has_kernel(pos):
            return self._implicit(*pos, **kw)
        needs_grad = is_grad_enabled() and any(t.requires_grad for t in _tensors(pos))
        if needs_grad and self._autograd_kernel is not None:
            return self._autograd_kernel(*pos, **kw)
        return super().__call__(*pos, **kw)

    def _run(self, args: tuple, kwargs: dict):
        # no aliasing check: a schema may return a mutated input ("Tensor(a!) x) -> Tensor(a!)")
        kernel = self._kernel_for(args)
        with no_grad():
            return kernel(*args, **kwargs)

    def _has_kernel(self, args) -> bool:
        """Whether a backend kernel (cpu/cuda/default) is registered for these inputs."""
        kinds = {t.device.type for t in _tensors(args)} or {"cpu"}
        return any(k in self._kernels and k not in self._disabled for k in kinds | {"default"})


def _op_name(lib_ns: str, op_name) -> tuple[str, str]:
    if isinstance(op_name, CustomOpDef):
        return op_name._namespace, op_name._name
    text = str(op_name)
    ns, _, name = text.rpartition("::")
    name = name.split(".")[0]  # "foo.default" / "foo.out": descent keeps one overload
    return (ns or lib_ns), name


class Library:
    """`torch.library.Library(ns, kind, dispatch_key="")`: kind "DEF" (this library owns the
    namespace; one per namespace), "FRAGMENT" (adds to a namespace) or "IMPL" (only kernels)."""

    def __init__(self, ns: str, kind: str, dispatch_key: str = "") -> None:
        if kind not in ("DEF", "IMPL", "FRAGMENT"):
            raise ValueError(f"Unsupported kind: {kind}")
        if ns in ("aten", "prims", "_ops") and kind != "FRAGMENT":
            raise NotImplementedError(
                f"Library({ns!r}, {kind!r}): descent cannot override PyTorch's own operators "
                f"(its ops are Python classes, not dispatcher entries); define your operator in "
                f"a namespace of your own"
            )
        if kind == "DEF" and ns in _DEF_NAMESPACES:
            raise RuntimeError(
                f"Only a single TORCH_LIBRARY can be used to register the namespace {ns}; please "
                f"put all of your definitions in a single TORCH_LIBRARY block. If you were trying "
                f"to specify implementations, consider using TORCH_LIBRARY_IMPL (which can be "
                f"duplicated). If you really intended to define operators for a single namespace "
                f"in a distributed way, you can use TORCH_LIBRARY_FRAGMENT (Library(ns, "
                f"'FRAGMENT'))."
            )
        self.ns, self.kind, self.dispatch_key = ns, kind, dispatch_key
        self._defined: list[str] = []  # qualnames this library defined
        self._registered: list[tuple[str, str]] = []  # (qualname, key) of its kernels
        if kind == "DEF":
            _DEF_NAMESPACES.add(ns)
        self._finalizer = weakref.finalize(self, _remove, ns if kind == "DEF" else None,
                                           self._defined, self._registered)  # fmt: skip

    def __repr__(self) -> str:
        return f"Library(kind={self.kind}, ns={self.ns}, dispatch_key={self.dispatch_key})>"

    def define(self, schema: str, alias_analysis: str = "", *, tags=()) -> str:
        """Define the operator `schema` ("name(args) -> returns") in this library's namespace;
        returns its name."""
        if self.kind == "IMPL":
            raise RuntimeError(f"Library({self.ns!r}, 'IMPL') cannot define operators; use "
                               "'DEF' or 'FRAGMENT'")  # fmt: skip
        name, sig, mutated, returns = parse_schema(schema, "Library.define")
        if not name:
            raise ValueError(f"Library.define: the schema {schema!r} needs the operator's name "
                             "before its arguments: 'name(Tensor x) -> Tensor'")  # fmt: skip
        opname = name.split(".")[0]
        qualname = f"{self.ns}::{opname}"
        text = f"{qualname}{schema[schema.index('(') :]}"
        if qualname in _OPS:
            raise RuntimeError(
                f"Tried to register an operator ({text}) with the "
                f"same name and overload name multiple times. Each overload's schema should only "
                f"be registered with a single call to def()."
            )
        op = LibraryOpDef(self.ns, opname, text, sig, mutated)
        _OPS[qualname] = op
        _NAMESPACES.setdefault(self.ns, {})[opname] = op
        self._defined.append(qualname)
        return opname

    def impl(self, op_name, fn: Callable, dispatch_key: str = "", *, with_keyset: bool = False,
             allow_override: bool = False) -> None:  # fmt: skip
        """Register `fn` as `op_name`'s implementation for `dispatch_key` (see the module
        docstring for what each key means here)."""
        if with_keyset:
            raise NotImplementedError("Library.impl(with_keyset=True): descent has no dispatch "
                                      "key sets to pass")  # fmt: skip
        ns, name = _op_name(self.ns, op_name)
        key = dispatch_key or self.dispatch_key
        _register(f"{ns}::{name}", key, fn, "Library.impl")
        self._registered.append((f"{ns}::{name}", _key(key, "Library.impl")))

    def fallback(self, fn, dispatch_key: str = "", *, with_keyset: bool = False) -> None:
        raise NotImplementedError("Library.fallback: descent has no dispatcher fallbacks")

    def _destroy(self) -> None:
        """Remove this library's operators and kernels now (as garbage collection would)."""
        self._finalizer()


def _key(dispatch_key: str, where: str) -> str:
    kind = _KEYS.get(str(dispatch_key).lower())
    if kind is None:
        raise ValueError(f"{where}: the dispatch key {dispatch_key!r} is not one descent knows; "
                         f"use one of {sorted(k for k in _KEYS if k)}")  # fmt: skip
    return kind


def _register(qualname: str, dispatch_key: str, fn: Callable, where: str) -> None:
    kind = _key(dispatch_key, where)
    if qualname not in _OPS:
        raise RuntimeError(f"{where}: the operator {qualname} is not defined; define it first "
                           f"(Library.define / descent.library.define)")  # fmt: skip
    op = _OPS[qualname]
    if fn is fallthrough_kernel:
        return
    if kind == "meta":
        register_fake(op, fn)
    elif kind in ("implicit", "autograd"):
        if not isinstance(op, LibraryOpDef):
            raise RuntimeError(f"{where}: {qualname} was made by custom_op; give its gradient "
                               "with register_autograd")  # fmt: skip
        setattr(op, "_implicit" if kind == "implicit" else "_autograd_kernel", fn)
    else:
        op.register_kernel(kind, fn)


def _remove(ns: str | None, defined: list, registered: list) -> None:
    for qualname, kind in registered:
        op = _OPS.get(qualname)
        if op is None:
            continue
        if kind in ("cpu", "cuda", "default"):
            op._kernels.pop(kind, None)
        elif kind == "meta":
            op._fake = None
        elif isinstance(op, LibraryOpDef):
            setattr(op, "_implicit" if kind == "implicit" else "_autograd_kernel", None)
    for qualname in defined:
        op = _OPS.pop(qualname, None)
        if op is not None:
            _NAMESPACES.get(op._namespace, {}).pop(op._name, None)
            if not _NAMESPACES.get(op._namespace, True):
                del _NAMESPACES[op._namespace]
    if ns is not None:
        _DEF_NAMESPACES.discard(ns)


def fallthrough_kernel() -> None:
    """`torch.library.fallthrough_kernel`: registering it changes nothing in descent (there is no
    key to fall through)."""


_LIBS: dict[str, Library] = {}  # the libraries define()/impl() use when given no `lib`


def _lib_for(ns: str) -> Library:
    if ns not in _LIBS:
        _LIBS[ns] = Library(ns, "FRAGMENT")
    return _LIBS[ns]


def define(qualname: str, schema: str, *, lib: Library | None = None, tags=()) -> None:
    """`torch.library.define("ns::name", "(Tensor x) -> Tensor")`."""
    if not isinstance(qualname, str) or qualname.count("::") != 1:
        raise ValueError(f"define(qualname, schema): expected qualname of the form "
                         f"'namespace::name', got {qualname!r}")  # fmt: skip
    ns, name = qualname.split("::")
    (lib or _lib_for(ns)).define(name + schema.strip(), tags=tags)


def impl(qualname, types, func: Callable | None = None, *, lib: Library | None = None):
    """`torch.library.impl("ns::name", "cpu")` as a decorator, or with `func`: register an
    implementation for a device type ("cpu", "cuda") or a dispatch key."""
    keys = [types] if isinstance(types, str) else list(types)

    def register(f: Callable) -> Callable:
        ns, name = _op_name("", qualname)
        for key in keys:
            (lib or _lib_for(ns)).impl(f"{ns}::{name}", f, key)
        return f

    return register if func is None else register(func)


def impl_abstract(qualname, func: Callable | None = None, *, lib=None, _stacklevel: int = 1):
    """`torch.library.impl_abstract`: the older name of `register_fake`."""
    target = _lookup(qualname)
    return target.register_fake if func is None else target.register_fake(func)
