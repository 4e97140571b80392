"""PyTorch's `torch._foreach_*` functions: one op over every tensor of a list (EMA updates such
as timm's `torch._foreach_lerp_(ema_params, params, 1 - decay)`, hand-written optimizers,
gradient scaling). docs/foreach.md.

PyTorch fuses the loop into few kernels; here each is a plain loop over the same Tensor
methods a user would call one by one (the same values, the same in-place rules: a leaf that
requires grad is changed only under no_grad). The second operand may be a list of tensors, a
list of Python numbers (one per tensor), one number, or one tensor (for all), as PyTorch's
overloads allow.
"""

from __future__ import annotations

from collections.abc import Sequence

from .tensor import Tensor


def _operands(name: str, tensors: Sequence[Tensor], other) -> list:
    """`other` spread over `tensors`: a list/tuple (one each, same length) or one value."""
    tensors = list(tensors)
    if isinstance(other, (list, tuple)):
        if len(other) != len(tensors):
            raise ValueError(
                f"{name}: expected {len(tensors)} operands (one per tensor), got {len(other)}"
            )
        return list(other)
    return [other] * len(tensors)


def _binary(name: str, method: str, inplace: bool):
    def fn(self, other, *, alpha=None):
        out = []
        for t, o in zip(self, _operands(name, self, other), strict=True):
            kwargs = {} if alpha is None else {"alpha": alpha}
            out.append(getattr(t, method + ("_" if inplace else ""))(o, **kwargs))
        return self if inplace else tuple(out)

    fn.__name__ = name
    fn.__doc__ = f"torch.{name}: `{method}` of each tensor with its operand."
    return fn


def _unary(name: str, method: str, inplace: bool):
    def fn(self):
        out = [getattr(t, method + ("_" if inplace else ""))() for t in self]
        return self if inplace else tuple(out)

    fn.__name__ = name
    fn.__doc__ = f"torch.{name}: `{method}` of each tensor."
    return fn


_foreach_add = _binary("_foreach_add", "add", False)
_foreach_add_ = _binary("_foreach_add_", "add", True)
_foreach_sub = _binary("_foreach_sub", "sub", False)
_foreach_sub_ = _binary("_foreach_sub_", "sub", True)
_foreach_mul = _binary("_foreach_mul", "mul", False)
_foreach_mul_ = _binary("_foreach_mul_", "mul", True)
_foreach_div = _binary("_foreach_div", "div", False)
_foreach_div_ = _binary("_foreach_div_", "div", True)
_foreach_pow = _binary("_foreach_pow", "pow", False)
_foreach_pow_ = _binary("_foreach_pow_", "pow", True)
_foreach_clamp_min = _binary("_foreach_clamp_min", "clamp_min", False)
_foreach_clamp_min_ = _binary("_foreach_clamp_min_", "clamp_min", True)
_foreach_clamp_max = _binary("_foreach_clamp_max", "clamp_max", False)
_foreach_clamp_max_ = _binary("_foreach_clamp_max_", "clamp_max", True)
_foreach_abs = _unary("_foreach_abs", "abs", False)
_foreach_abs_ = _unary("_foreach_abs_", "abs", True)
_foreach_exp = _unary("_foreach_exp", "exp", False)
_foreach_exp_ = _unary("_foreach_exp_", "exp", True)
_foreach_log = _unary("_foreach_log", "log", False)
_foreach_log_ = _unary("_foreach_log_", "log", True)
_foreach_neg = _unary("_foreach_neg", "neg", False)
_foreach_neg_ = _unary("_foreach_neg_", "neg", True)
_foreach_sqrt = _unary("_foreach_sqrt", "sqrt", False)
_foreach_sqrt_ = _unary("_foreach_sqrt_", "sqrt", True)
_foreach_sign = _unary("_foreach_sign", "sign", False)
_foreach_sign_ = _unary("_foreach_sign_", "sign", True)
_foreach_reciprocal = _unary("_foreach_reciprocal", "reciprocal", False)
_foreach_reciprocal_ = _unary("_foreach_reciprocal_", "reciprocal", True)


def _extreme(t: Tensor, o, upper: bool) -> Tensor:
    """max(t, o) (or min with upper=False); a number bounds the whole tensor."""
    if isinstance(o, Tensor):
        return t.maximum(o) if upper else t.minimum(o)
    return t.clamp_min(o) if upper else t.clamp_max(o)


def _foreach_maximum(self, other) -> tuple:
    """torch._foreach_maximum: elementwise maxima (a number is a tensor-wide bound)."""
    ops = _operands("_foreach_maximum", self, other)
    return tuple(_extreme(t, o, True) for t, o in zip(self, ops, strict=True))


def _foreach_maximum_(self, other):
    for t, o in zip(self, _operands("_foreach_maximum_", self, other), strict=True):
        t.copy_(_extreme(t, o, True))
    return self


def _foreach_minimum(self, other) -> tuple:
    """torch._foreach_minimum: elementwise minima (a number is a tensor-wide bound)."""
    ops = _operands("_foreach_minimum", self, other)
    return tuple(_extreme(t, o, False) for t, o in zip(self, ops, strict=True))


def _foreach_minimum_(self, other):
    for t, o in zip(self, _operands("_foreach_minimum_", self, other), strict=True):
        t.copy_(_extreme(t, o, False))
    return self


def _foreach_lerp(self, tensors1, weight) -> tuple:
    """torch._foreach_lerp: self + weight (end - self) per tensor (weight one number or a
    list of tensors)."""
    ws = _operands("_foreach_lerp", self, weight)
    return tuple(s.lerp(e, w) for s, e, w in zip(self, tensors1, ws, strict=True))


def _foreach_lerp_(self, tensors1, weight):
    ws = _operands("_foreach_lerp_", self, weight)
    for s, e, w in zip(self, tensors1, ws, strict=True):
        s.lerp_(e, w)
    return self


def _foreach_addcmul(self, tensor1, tensor2, value=1) -> tuple:
    """torch._foreach_addcmul: self + value * tensor1 * tensor2 (value a number or a list)."""
    vs = _operands("_foreach_addcmul", self, value)
    zipped = zip(self, tensor1, tensor2, vs, strict=True)
    return tuple(s.addcmul(a, b, value=v) for s, a, b, v in zipped)


def _foreach_addcmul_(self, tensor1, tensor2, value=1):
    vs = _operands("_foreach_addcmul_", self, value)
    for s, a, b, v in zip(self, tensor1, tensor2, vs, strict=True):
        s.addcmul_(a, b, value=v)
    return self


def _foreach_addcdiv(self, tensor1, tensor2, value=1) -> tuple:
    """torch._foreach_addcdiv: self + value * tensor1 / tensor2 (value a number or a list)."""
    vs = _operands("_foreach_addcdiv", self, value)
    zipped = zip(self, tensor1, tensor2, vs, strict=True)
    return tuple(s.addcdiv(a, b, value=v) for s, a, b, v in zipped)


def _foreach_addcdiv_(self, tensor1, tensor2, value=1):
    vs = _operands("_foreach_addcdiv_", self, value)
    for s, a, b, v in zip(self, tensor1, tensor2, vs, strict=True):
        s.addcdiv_(a, b, value=v)
    return self


def _foreach_copy_(self, src, non_blocking: bool = False):
    """torch._foreach_copy_: copy each src tensor into the matching self tensor."""
    for s, o in zip(self, src, strict=True):
        s.copy_(o)
    return self


def _foreach_zero_(self):
    """torch._foreach_zero_: zero every tensor in place."""
    for t in self:
        t.zero_()
    return self


def _foreach_norm(self, ord=2, dtype=None) -> tuple:
    """torch._foreach_norm: the vector norm of each tensor (0-d tensors)."""
    from .ops.linalg_norm import vector_norm  # noqa: PLC0415 - only when used

    return tuple(vector_norm(t, ord, dtype=dtype) for t in self)


# Every public function above; descent/__init__.py keeps the same names in _FOREACH_NAMES (its
# lazy index, read without importing this module; tests/test_foreach_names.py keeps them equal).
__all__ = sorted(n for n in globals() if n.startswith("_foreach_"))
