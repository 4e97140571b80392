"""PyTorch's keyword names on descent's top-level functions: `descent.sum(input=x)`,
`descent.mm(input=a, mat2=b)`, `descent.where(cond, input=a, other=b)`.

descent's functions name their positional parameters `x`, `a`, `b`; PyTorch calls them
`input`, `other`, `mat2`, ... and programs pass them by keyword. A wrapper that maps names
would add a Python call to every positional call, so instead each function in `RENAMES` is
re-made once, at import, with its code object's parameter names replaced (`code.replace`):
the body reads its arguments by slot, not by name, so the new function runs the same
bytecode, and a positional call costs exactly what it did. Only the function bound in the
`descent` namespace is renamed; descent's own modules keep calling the originals.

The table was made by comparing each function's parameters with the first line of
`torch.<name>.__doc__` (a hand-run survey, see tests/test_torch_keywords.py) and checked by
hand. A name is renamed only where descent has no parameter of PyTorch's name already (the
`dim=` / `keepdim=` keyword aliases exist on the reductions).
"""

from __future__ import annotations

import functools
import inspect
import types

from .ops.elementwise import clone as _clone

__all__ = [
    "NUMPY_ALIASES",
    "NUMPY_ALIASES_TENSOR",
    "RENAMES",
    "apply_numpy_aliases",
    "apply_torch_names",
    "clone",
    "numpy_aliases",
    "torch_names",
]

_X = {"x": "input"}
_AB = {"a": "input", "b": "other"}

#: top-level function name -> {descent's parameter name: PyTorch's}
RENAMES: dict[str, dict[str, str]] = {
    **dict.fromkeys(
        """abs absolute acos all amax amin aminmax any argmax argmin argsort asin atan
        broadcast_to ceil chunk clamp clip cos cosh count_nonzero cummax cumprod cumsum
        diag diagonal empty_like erf exp exp2 expm1 flatten flip floor frac full_like gather
        index_select isfinite isinf isnan kthvalue log log10 log1p log2 logcumsumexp
        logical_not logsumexp max mean median min mode movedim msort nan_to_num narrow neg
        negative nonzero numel ones_like permute prod rand_like randint_like randn_like
        repeat_interleave reshape roll round rsqrt scatter sigmoid sign sin sinh softmax sort
        sqrt square squeeze std std_mean sum take tanh tile topk trace transpose tril triu trunc
        unique unsqueeze var var_mean zeros_like
        acosh arccos arccosh arcsin arcsinh arctan arctanh asinh atanh bitwise_not cummin fix
        index_add is_floating_point isneginf isposinf masked_select moveaxis scatter_add
        scatter_reduce tan unflatten norm""".split(),
        _X,
    ),
    **dict.fromkeys(
        """allclose bitwise_and bitwise_or bitwise_xor div eq equal ge gt isclose le logical_and
        logical_or logical_xor lt matmul maximum minimum mul ne remainder where
        bitwise_left_shift bitwise_right_shift divide floor_divide greater greater_equal less
        less_equal multiply not_equal""".split(),
        _AB,
    ),
    "bmm": {"a": "input", "b": "mat2"},
    "mm": {"a": "input", "b": "mat2"},
    "dot": {"a": "input", "b": "tensor"},
    "outer": {"a": "input", "b": "vec2"},
    "pow": {"a": "input", "b": "exponent"},
    "swapaxes": {"x": "input", "a": "axis0", "b": "axis1"},
    "split": {"x": "tensor"},
    "einsum": {"subscripts": "equation"},
    "full": {"shape": "size"},
}


def torch_names(fn, renames: dict[str, str], module: str | None = None, name: str | None = None):
    """fn re-made with its positional-or-keyword parameters renamed (old -> new); fn itself
    when it is not a plain Python function or a new name would clash with one of its locals.

    `module` and `name` say where the new function is bound (`descent`, `sum`): pickle finds
    a function by its `__module__` and `__qualname__` and checks it is the same object, so the
    copy must name its own place, not the original's."""
    rewrap = getattr(fn, "__out_rewrap__", None)
    if rewrap is not None:  # an out= wrapper (ops/out_arg.py): rename the function inside
        return rewrap(torch_names(fn.__wrapped_for_out__, renames, module, name))
    if getattr(fn, "__values_self__", None) is fn:  # ops/nested_values.on_values: the same
        return fn.__values_rewrap__(torch_names(fn.__wrapped__, renames, module, name))
    if getattr(fn, "__float32_self__", None) is fn:  # amp._float32_op: the same
        return fn.__float32_rewrap__(torch_names(fn.__wrapped__, renames, module, name))
    code = getattr(fn, "__code__", None)
    if code is None:
        return fn
    params = code.co_varnames[: code.co_argcount]
    taken = set(code.co_varnames) | set(code.co_cellvars) | set(code.co_freevars)
    renames = {old: new for old, new in renames.items() if old in params and new not in taken}
    if not renames:
        return fn
    # A parameter captured by an inner function is also a cell variable: rename both, or the
    # two would become separate slots.
    code = code.replace(
        co_varnames=tuple([renames.get(n, n) for n in code.co_varnames]),
        co_cellvars=tuple([renames.get(n, n) for n in code.co_cellvars]),
    )
    new = types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__qualname__ = fn.__qualname__ if name is None else name
    new.__module__ = fn.__module__ if module is None else module
    new.__doc__ = fn.__doc__
    new.__dict__.update(fn.__dict__)
    new.__annotations__ = {renames.get(k, k): v for k, v in fn.__annotations__.items()}
    return new


def clone(input, *, memory_format=None):  # noqa: A002 - PyTorch's name
    """torch.clone: a copy of input, in `memory_format` (by default the input's own layout:
    C-contiguous or channels-last, as Tensor.clone)."""
    if hasattr(input, "_data"):  # a Tensor
        return input.clone(memory_format=memory_format)
    return _clone(input)


def apply_torch_names(namespace: dict) -> None:
    """Rebind each function of RENAMES in `namespace` (descent's) with PyTorch's names, and
    `clone` with PyTorch's signature."""
    namespace["clone"] = clone
    module = namespace["__name__"]
    for name, renames in RENAMES.items():
        fn = namespace.get(name)
        if fn is not None:
            namespace[name] = torch_names(fn, renames, module, name)


# PyTorch's argument parser also takes NumPy's names for four parameters
# (python_arg_parser.cpp's numpy_compatibility_arg_names): `axis` for `dim`, `keepdims` for
# `keepdim`, `x` / `a` / `x1` for `input`, `x2` for `other`; only on functions its parser binds
# (not on torch.unique / split / norm / stft, which are Python functions there). descent's
# reductions, cat / stack, softmax, sort, cumsum, flip and squeeze take `axis` / `keepdims` in
# their own signatures. The functions below have a `dim` (or `keepdim`) and no `axis` (or
# `keepdims`); one slot has one name, so each is wrapped once, at import, by `numpy_aliases`:
# the wrapper renames the alias keywords and calls the function. A function that would need
# the wrapper only for `input`'s names (the elementwise ops, add, mul, exp, ...) is not wrapped:
# that is the hot path, and no call there would use the aliases. Tensor.size / stride (a
# metadata call of ~0.1 us) are not wrapped either. The list was made by
# /work/notes/s29/h223/gen.py against torch 2.13 (each function's aten schema) and is checked
# call by call in tests/test_numpy_aliases_s29.py.
_DIM = {"axis": "dim"}
_DIM_IN = {"axis": "dim", "x": "input", "a": "input", "x1": "input"}
_DIM_KEEP = {"axis": "dim", "keepdims": "keepdim"}
_DIM_KEEP_IN = {**_DIM_KEEP, "x": "input", "a": "input", "x1": "input"}

#: top-level function name -> {NumPy's name: descent's (PyTorch's) parameter}
NUMPY_ALIASES: dict[str, dict[str, str]] = {
    **dict.fromkeys(
        """aminmax frobenius_norm hash_tensor kthvalue mode nanmedian nanquantile nuclear_norm
        quantile""".split(),
        _DIM_KEEP_IN,
    ),
    **dict.fromkeys(
        "cosine_similarity cumulative_trapezoid index_fill norm_except_dim trapezoid trapz".split(),
        _DIM,
    ),
    **dict.fromkeys(
        """diff gradient index_copy index_reduce narrow narrow_copy renorm repeat_interleave
        scatter scatter_reduce select select_copy select_scatter slice_copy slice_scatter
        split_copy split_with_sizes split_with_sizes_copy squeeze_copy take_along_dim
        tensor_split topk unbind unbind_copy unflatten unsafe_chunk unsafe_split
        unsafe_split_with_sizes unsqueeze_copy""".split(),
        _DIM_IN,
    ),
    **dict.fromkeys(
        "median nanmean nansum".split(),
        {"keepdims": "keepdim", "x": "input", "a": "input", "x1": "input"},
    ),
    "cross": {**_DIM_IN, "x2": "other"},
    "pairwise_distance": {"keepdims": "keepdim"},
}

#: Tensor method name -> {NumPy's name: the parameter}
NUMPY_ALIASES_TENSOR: dict[str, dict[str, str]] = {
    **dict.fromkeys(
        """aminmax kthvalue mode nanmean nanmedian nanquantile nansum quantile""".split(),
        _DIM_KEEP,
    ),
    **dict.fromkeys(
        """count_nonzero cumprod_ cumsum_ diff index_add_ index_copy index_copy_ index_fill
        index_fill_ index_reduce index_reduce_ narrow narrow_copy renorm renorm_
        repeat_interleave scatter scatter_ scatter_add_ scatter_reduce scatter_reduce_ select
        select_scatter slice_scatter split_with_sizes squeeze_ take_along_dim topk unbind
        unsafe_chunk unsafe_split unsafe_split_with_sizes unsqueeze_""".split(),
        _DIM,
    ),
    "cross": {"axis": "dim", "x2": "other"},
    "median": {"keepdims": "keepdim"},
}


_MISSING = object()


def numpy_aliases(fn, aliases: dict[str, str], module: str, qualname: str):
    """fn wrapped to take NumPy's keyword names (`aliases`: NumPy's name -> fn's parameter), as
    PyTorch's parser does. Giving both spellings is PyTorch's error ("got multiple values").

    The wrapper has fn's own parameters (each required one defaulting to a sentinel), the
    aliases as keyword-only ones, and calls fn with its arguments by position when no alias
    (and no `out=`) is given: one plain call (~0.1 us) where a `*args, **kwargs` wrapper costs
    2.5 times that. Other calls take the general path (`_numpy_aliases_call`), which also
    raises fn's own TypeError for a missing argument."""
    return _make_aliased([(fn, aliases, module, qualname)])[0]


_TEMPLATES: dict[tuple, types.CodeType] = {}


def template_source(n_pos: int, n_kw: int, n_extra: int, required: tuple[int, ...]) -> str:
    """The source of a wrapper with generic parameter names (p0.., k0.., e0..) for one shape
    (positional / keyword-only / alias counts, the indices of the required parameters)."""
    pos = [f"p{i}" for i in range(n_pos)]
    kw = [f"k{i}" for i in range(n_kw)]
    extra = [f"e{i}" for i in range(n_extra)]
    sig = [f"{n}=_M" for n in pos] + ["*"] + [f"{n}=_M" for n in kw + extra]
    names = pos + kw
    checks = [f"{n} is not _M" for n in extra] + [f"{names[i]} is _M" for i in required]
    tag = "_".join(map(str, (n_pos, n_kw, n_extra, *required)))
    return (
        f"def _w_{tag}({', '.join(sig)}):\n"
        f"    if {' or '.join(checks)}:\n"
        f"        return _slow(_fn, _al, _name, _names, ({', '.join(names + extra)},), _d)\n"
        f"    return _fn({', '.join(pos + [f'{n}={n}' for n in kw])})\n"
    )


def _template(n_pos: int, n_kw: int, n_extra: int, required: tuple[int, ...]) -> types.CodeType:
    """The code of the wrapper of one shape; each function's wrapper is this code with its own
    names (`code.replace`). The shapes of the tables above are in numpy_alias_templates.py
    (made by `write_alias_templates`; loaded from its .pyc, where compiling them at import
    took ~7 ms); another is compiled once here."""
    key = (n_pos, n_kw, n_extra, required)
    code = _TEMPLATES.get(key)
    if code is None:
        from . import numpy_alias_templates

        tag = "_".join(map(str, (n_pos, n_kw, n_extra, *required)))
        fn = getattr(numpy_alias_templates, f"_w_{tag}", None)
        if fn is None:
            scope: dict = {}
            src = template_source(*key)
            exec(compile(src, "<descent numpy_aliases>", "exec"), {"_M": _MISSING}, scope)  # noqa: S102
            fn = scope[f"_w_{tag}"]
        code = _TEMPLATES[key] = fn.__code__
    return code


def write_alias_templates() -> None:
    """Rewrite numpy_alias_templates.py with the shapes the tables need now (run after
    `import descent`, which fills _TEMPLATES)."""
    import pathlib

    path = pathlib.Path(__file__).with_name("numpy_alias_templates.py")
    text = path.read_text()
    head = text.split("\n# fmt: off\n", 1)[0]
    tail = text.split("\n# fmt: on\n", 1)[1]
    body = "\n\n".join(template_source(*key) for key in sorted(_TEMPLATES))
    path.write_text(f"{head}\n# fmt: off\n{body}\n# fmt: on\n{tail}")


def _exact_wrapper(fn, aliases, name, qualname):
    """fn's exact-signature wrapper, or None where fn has *args / **kwargs / positional-only
    parameters (a generic wrapper then). The parameters are read from the code object of the
    function under any functools.wraps wrappers (inspect.signature's answer, cheaper)."""
    inner = inspect.unwrap(fn)
    code = getattr(inner, "__code__", None)
    if code is None or code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS):
        return None
    if code.co_posonlyargcount:
        return None
    n_pos, n_kw = code.co_argcount, code.co_kwonlyargcount
    pos = list(code.co_varnames[:n_pos])
    kw = list(code.co_varnames[n_pos : n_pos + n_kw])
    if any(a in pos or a in kw for a in aliases) or "out" in pos + kw:
        return None
    defaults = dict(zip(pos[n_pos - len(inner.__defaults__ or ()) :], inner.__defaults__ or ()))
    defaults.update(inner.__kwdefaults__ or {})
    takes_out = hasattr(fn, "__wrapped_for_out__")  # ops/out_arg.with_out hides out=
    extra = list(aliases) + (["out"] if takes_out else [])
    names = pos + kw
    required = tuple(i for i, n in enumerate(names) if n not in defaults)
    template = _template(n_pos, n_kw, len(extra), required)
    rename = {f"p{i}": n for i, n in enumerate(pos)}
    rename.update({f"k{i}": n for i, n in enumerate(kw)})
    rename.update({f"e{i}": n for i, n in enumerate(extra)})
    consts = tuple(
        tuple(rename.get(c, c) for c in const)
        if isinstance(const, tuple) and all(isinstance(c, str) for c in const)
        else const
        for const in template.co_consts
    )
    code = template.replace(
        co_varnames=tuple(rename.get(n, n) for n in template.co_varnames),
        co_consts=consts,
        co_name=name,
        co_qualname=qualname,
    )
    scope = {
        "__builtins__": __builtins__,
        "_M": _MISSING,
        "_slow": _numpy_aliases_call,
        "_fn": fn,
        "_al": aliases,
        "_name": name,
        "_names": tuple(names + extra),
        "_d": defaults,
    }
    wrapper = types.FunctionType(code, scope, name, tuple(defaults.get(n, _MISSING) for n in pos))
    wrapper.__kwdefaults__ = {n: defaults.get(n, _MISSING) for n in kw + extra}
    return wrapper


def _make_aliased(items):
    """The wrappers of [(fn, aliases, module, qualname), ...]."""
    out = []
    for fn, aliases, module, qualname in items:
        name = qualname.rpartition(".")[2]
        wrapper = _exact_wrapper(fn, aliases, name, qualname)
        if wrapper is None:
            wrapper = _generic_aliases(fn, aliases, name)
        wrapper.__wrapped__ = fn
        wrapper.__name__ = name
        wrapper.__qualname__ = qualname
        wrapper.__module__ = module
        wrapper.__doc__ = fn.__doc__
        wrapper.__numpy_aliases__ = dict(aliases)
        out.append(wrapper)
    return out


def _numpy_aliases_call(fn, aliases, name, names, values, defaults):
    """The general path of a numpy_aliases wrapper: the given arguments (sentinels dropped) by
    keyword, each alias under its parameter's name. A parameter that holds its default object
    counts as not given when its alias is (`dim=None, axis=0` is taken as `axis=0`)."""
    given = dict(zip(names, values))
    kwargs = {k: v for k, v in given.items() if v is not _MISSING and k not in aliases}
    for alias, target in aliases.items():
        value = given[alias]
        if value is _MISSING:
            continue
        if target in kwargs and kwargs[target] is not defaults.get(target, _MISSING):
            raise TypeError(
                f"{name}() got multiple values for argument '{target}' (given as "
                f"'{target}' and as NumPy's '{alias}'): pass one of them"
            )
        kwargs[target] = value
    return fn(**kwargs)


def _generic_aliases(fn, aliases, name):
    names = frozenset(aliases)

    def wrapper(*args, **kwargs):
        if kwargs and not names.isdisjoint(kwargs):
            for alias in names.intersection(kwargs):
                target = aliases[alias]
                if target in kwargs:
                    raise TypeError(
                        f"{name}() got multiple values for argument '{target}' (given as "
                        f"'{target}' and as NumPy's '{alias}'): pass one of them"
                    )
                kwargs[target] = kwargs.pop(alias)
        return fn(*args, **kwargs)

    return wrapper


def apply_numpy_aliases(namespace: dict, tensor_class) -> None:
    """Wrap the functions of NUMPY_ALIASES in `namespace` (descent's) and the methods of
    NUMPY_ALIASES_TENSOR on `tensor_class` to take NumPy's keyword names."""
    module = namespace["__name__"]
    items, places = [], []
    for name, aliases in NUMPY_ALIASES.items():
        fn = namespace.get(name)
        if fn is not None:
            items.append((fn, aliases, module, name))
            places.append((namespace.__setitem__, name))
    for name, aliases in NUMPY_ALIASES_TENSOR.items():
        # wrapped where it is defined (Tensor or one of its method bases), so no base's
        # method is shadowed by one on Tensor itself
        owner = next((c for c in tensor_class.__mro__ if name in vars(c)), None)
        fn = None if owner is None else vars(owner)[name]
        if callable(fn) and not isinstance(fn, (staticmethod, classmethod)):
            items.append((fn, aliases, fn.__module__, f"{owner.__name__}.{name}"))
            places.append((functools.partial(setattr, owner), name))
    for (put, name), wrapper in zip(places, _make_aliased(items)):
        put(name, wrapper)
