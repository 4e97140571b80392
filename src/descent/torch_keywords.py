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

import types

from .ops.elementwise import clone as _clone

__all__ = ["RENAMES", "apply_torch_names", "clone", "torch_names"]

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
