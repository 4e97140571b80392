"""PyTorch's `torch._foreach_*` functions: one op over every tensor of a list (EMA updates such
as timm's `torch._foreach_lerp_(ema_params, params, 1 - decay)`, hand-written optimizers,
gradient scaling). docs/foreach.md.

PyTorch fuses the loop into few kernels; here each is a plain loop over the same Tensor
methods a user would call one by one (the same values, the same in-place rules: a leaf that
requires grad is changed only under no_grad). The second operand may be a list of tensors, a
list of Python numbers (one per tensor), one number, or one tensor (for all), as PyTorch's
overloads allow. The lists are checked first, with PyTorch's RuntimeErrors: an empty list, or
lists of different lengths, are refused before any tensor changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import DescentError, DtypeError
from .ops.out_arg import can_cast
from .tensor import Tensor


def _check(name: str, tensors: Sequence[Tensor], *others: Sequence) -> None:
    """PyTorch's checks on the tensor lists (check_foreach_api_restrictions): none empty, all
    of one length. A list of numbers has its own message, as PyTorch's."""
    if len(tensors) == 0:
        raise DescentError(f"{name}: Tensor list must have at least one tensor.")
    for other in others:
        if len(other) == len(tensors):
            continue
        if any(not isinstance(o, Tensor) for o in other):
            raise DescentError(
                f"{name}: Tensor list must have same number of elements as scalar list "
                f"({len(tensors)} tensors, {len(other)} numbers: one per tensor)."
            )
        raise DescentError(
            f"{name}: Tensor lists must have the same number of tensors, got "
            f"{len(tensors)} and {len(other)}"
        )


def _operands(name: str, tensors: Sequence[Tensor], other) -> list:
    """`other` spread over `tensors`: a list/tuple (one each, same length) or one value."""
    if isinstance(other, (list, tuple)):
        _check(name, tensors, other)
        return list(other)
    _check(name, tensors)
    return [other] * len(tensors)


def _binary(name: str, method: str, inplace: bool):
    def fn(self, other, *, alpha=None):
        kwargs = {} if alpha is None else {"alpha": alpha}
        ops = _operands(name, self, other)
        out = [getattr(t, method + ("_" if inplace else ""))(o, **kwargs) for t, o in
               zip(self, ops, strict=True)]  # fmt: skip
        return self if inplace else tuple(out)

    fn.__name__ = name
    fn.__doc__ = f"torch.{name}: `{method}` of each tensor with its operand."
    return fn


def _unary(name: str, method: str, inplace: bool):
    def fn(self):
        _check(name, self)
        out = [getattr(t, method + ("_" if inplace else ""))() for t in self]
        return self if inplace else tuple(out)

    fn.__name__ = name
    fn.__doc__ = f"torch.{name}: `{method}` of each tensor."
    return fn


# The binary ops (second operand: tensors, numbers, one number or one tensor).
for _m in ("add", "sub", "mul", "div", "pow", "clamp_min", "clamp_max"):
    globals()[f"_foreach_{_m}"] = _binary(f"_foreach_{_m}", _m, False)
    globals()[f"_foreach_{_m}_"] = _binary(f"_foreach_{_m}_", _m, True)

_pow_of_tensors = _foreach_pow  # noqa: F821 - defined by the loop above


def _foreach_pow(self, exponent) -> tuple:
    """torch._foreach_pow: each tensor to the power of its operand (a list of tensors or
    numbers, one number or one tensor), or one number to the power of each tensor of a list
    (`_foreach_pow(2.0, exponents)`, PyTorch's ScalarAndTensor overload)."""
    if isinstance(self, (list, tuple)):
        return _pow_of_tensors(self, exponent)
    _check("_foreach_pow", exponent)
    return tuple(self**e for e in exponent)


# The unary ops PyTorch has a foreach form of (foreach_unary_op_db), each with its `_` twin.
_UNARY = (
    "abs", "acos", "asin", "atan", "ceil", "cos", "cosh", "erf", "erfc", "exp", "expm1", "floor",
    "frac", "lgamma", "log", "log10", "log1p", "log2", "neg", "reciprocal", "round", "rsqrt",
    "sigmoid", "sign", "sin", "sinh", "sqrt", "tan", "tanh", "trunc",
)  # fmt: skip
for _m in _UNARY:
    globals()[f"_foreach_{_m}"] = _unary(f"_foreach_{_m}", _m, False)
    globals()[f"_foreach_{_m}_"] = _unary(f"_foreach_{_m}_", _m, True)
del _m


def _foreach_clone(self, *, memory_format=None) -> tuple:
    """torch._foreach_clone: a copy of each tensor (differentiable, as Tensor.clone)."""
    _check("_foreach_clone", self)
    kwargs = {} if memory_format is None else {"memory_format": memory_format}
    return tuple(t.clone(**kwargs) for t in self)


def _extreme(t: Tensor, o, upper: bool) -> Tensor:
    """max(t, o) (or min with upper=False); a number bounds the whole tensor."""
    if isinstance(o, Tensor):
        return t.maximum(o) if upper else t.minimum(o)
    return t.clamp_min(o) if upper else t.clamp_max(o)


def _foreach_maximum(self, other) -> tuple:
    """torch._foreach_maximum: elementwise maxima (a number is a tensor-wide bound)."""
    ops = _operands("_foreach_maximum", self, other)
    return tuple(_extreme(t, o, True) for t, o in zip(self, ops, strict=True))


def _write(name: str, t: Tensor, result: Tensor) -> None:
    """result written into t, with PyTorch's in-place cast rule (no float into an integer
    tensor, no int into a bool one: copy_ alone would convert silently)."""
    if not can_cast(result._data.dtype, t._data.dtype):
        raise DescentError(
            f"{name}: result type {result._data.dtype} can't be cast to the desired output type "
            f"{t._data.dtype} (shape {tuple(t.shape)}), as in PyTorch"
        )
    t.copy_(result)


def _foreach_maximum_(self, other):
    ops = _operands("_foreach_maximum_", self, other)
    results = [_extreme(t, o, True) for t, o in zip(self, ops, strict=True)]
    for t, r in zip(self, results, strict=True):
        _write("_foreach_maximum_", t, r)
    return self


def _foreach_minimum(self, other) -> tuple:
    """torch._foreach_minimum: elementwise minima (a number is a tensor-wide bound)."""
    ops = _operands("_foreach_minimum", self, other)
    return tuple(_extreme(t, o, False) for t, o in zip(self, ops, strict=True))


def _foreach_minimum_(self, other):
    ops = _operands("_foreach_minimum_", self, other)
    results = [_extreme(t, o, False) for t, o in zip(self, ops, strict=True)]
    for t, r in zip(self, results, strict=True):
        _write("_foreach_minimum_", t, r)
    return self


def _weights(name: str, self, tensors1, weight) -> list:
    _check(name, self, tensors1)
    return _operands(name, self, weight)


def _foreach_lerp(self, tensors1, weight=None, *, weights=None) -> tuple:
    """torch._foreach_lerp: self + weight (end - self) per tensor (weight one number, a list
    of numbers or a list of tensors; `weights=` is the keyword of PyTorch's tensor-list
    overload)."""
    ws = _weights("_foreach_lerp", self, tensors1, weight if weights is None else weights)
    return tuple(s.lerp(e, w) for s, e, w in zip(self, tensors1, ws, strict=True))


def _foreach_lerp_(self, tensors1, weight=None, *, weights=None):
    ws = _weights("_foreach_lerp_", self, tensors1, weight if weights is None else weights)
    for s, e, w in zip(self, tensors1, ws, strict=True):
        s.lerp_(e, w)
    return self


def _values(name: str, self, tensor1, tensor2, value, scalars) -> list:
    """addcmul/addcdiv's multipliers: `value` (one number) or `scalars` (a list of numbers or
    a 1-d tensor holding one per tensor, PyTorch's Tensor overload)."""
    _check(name, self, tensor1, tensor2)
    if scalars is None:
        return _operands(name, self, value)
    if isinstance(scalars, Tensor):
        if scalars.ndim != 1 or scalars.shape[0] != len(self):
            raise DescentError(
                f"{name}: scalars must be a 1-D tensor of {len(self)} numbers (one per tensor), "
                f"got shape {tuple(scalars.shape)}"
            )
        scalars = scalars.tolist()
    return _operands(name, self, list(scalars))


def _foreach_addcmul(self, tensor1, tensor2, value=1, *, scalars=None) -> tuple:
    """torch._foreach_addcmul: self + value * tensor1 * tensor2 (`value` a number or a list,
    or `scalars=`)."""
    vs = _values("_foreach_addcmul", self, tensor1, tensor2, value, scalars)
    zipped = zip(self, tensor1, tensor2, vs, strict=True)
    return tuple(s.addcmul(a, b, value=v) for s, a, b, v in zipped)


def _foreach_addcmul_(self, tensor1, tensor2, value=1, *, scalars=None):
    vs = _values("_foreach_addcmul_", self, tensor1, tensor2, value, scalars)
    for s, a, b, v in zip(self, tensor1, tensor2, vs, strict=True):
        s.addcmul_(a, b, value=v)
    return self


def _foreach_addcdiv(self, tensor1, tensor2, value=1, *, scalars=None) -> tuple:
    """torch._foreach_addcdiv: self + value * tensor1 / tensor2 (`value` a number or a list,
    or `scalars=`)."""
    vs = _values("_foreach_addcdiv", self, tensor1, tensor2, value, scalars)
    zipped = zip(self, tensor1, tensor2, vs, strict=True)
    return tuple(s.addcdiv(a, b, value=v) for s, a, b, v in zipped)


def _foreach_addcdiv_(self, tensor1, tensor2, value=1, *, scalars=None):
    vs = _values("_foreach_addcdiv_", self, tensor1, tensor2, value, scalars)
    for s, a, b, v in zip(self, tensor1, tensor2, vs, strict=True):
        s.addcdiv_(a, b, value=v)
    return self


def _foreach_copy_(self, src, non_blocking: bool = False):
    """torch._foreach_copy_: copy each src tensor into the matching self tensor."""
    _check("_foreach_copy_", self, src)
    for s, o in zip(self, src, strict=True):
        s.copy_(o)
    return self


def _foreach_zero_(self):
    """torch._foreach_zero_: zero every tensor in place."""
    _check("_foreach_zero_", self)
    for t in self:
        t.zero_()
    return self


def _foreach_norm(self, ord=2, dtype=None) -> tuple:
    """torch._foreach_norm: the vector norm of each tensor (0-d tensors)."""
    from .ops.linalg_norm import vector_norm  # noqa: PLC0415 - only when used

    _check("_foreach_norm", self)
    return tuple(vector_norm(t, ord, dtype=dtype) for t in self)


def _foreach_powsum(self, ord=2, dtype=None) -> tuple:
    """torch._foreach_powsum: sum |x|^ord of each tensor (0-d tensors; the p-norm before its
    root, as `pow` counts 0^0 as 1; `dtype` casts first). Floating and complex tensors only,
    as PyTorch's (a complex tensor gives its real dtype); PyTorch has no derivative for it,
    descent's is that of the composition."""
    _check("_foreach_powsum", self)
    out = []
    for t in self:
        x = t if dtype is None else t.to(dtype)
        if x.dtype.kind in "biu":
            raise DtypeError(
                f"_foreach_powsum: not implemented for {x.dtype} tensors (shape "
                f"{tuple(x.shape)}), as in PyTorch; convert them first, e.g. .float()"
            )
        out.append((x.abs() ** ord).sum())
    return tuple(out)


def _foreach_max(self) -> tuple:
    """torch._foreach_max: the largest entry of each tensor (0-d tensors; an empty tensor
    raises, as PyTorch's)."""
    _check("_foreach_max", self)
    for t in self:
        if t.numel() == 0:
            raise DescentError(
                "_foreach_max cannot compute the maximum of an empty tensor; max over zero "
                "elements is undefined."
            )
    return tuple(t.max() for t in self)


def _foreach_mm(self, mat2) -> tuple:
    """torch._foreach_mm: the matrix product of each pair (self[i] @ mat2[i])."""
    if len(self) == 0 or len(mat2) == 0:
        raise DescentError("_foreach_mm requires non-empty tensor lists")
    _check("_foreach_mm", self, mat2)
    return tuple(a.mm(b) for a, b in zip(self, mat2, strict=True))


# Every public function above; descent/__init__.py keeps the same names in _FOREACH_NAMES (its
# lazy index, read without importing this module; tests/test_foreach_names.py keeps them equal).
__all__ = sorted(n for n in globals() if n.startswith("_foreach_"))
