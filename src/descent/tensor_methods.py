"""Tensor's PyTorch-named methods, and the table through which Tensor reaches the ops layer.

The layers run engine -> tensor -> ops: the ops are written against Tensor, so `tensor.py` (and
this module, its method groups) cannot import them. Instead every Tensor operator and method
calls a function of the ops table `_ops`, which `descent.ops` fills when it is imported
(`register_ops`, called once from `descent/ops/__init__.py`; importing any part of descent
imports `descent.ops`). The table holds every public function of the op modules under its own
name: `x.exp()` is `_ops.exp(x)`, `x[i]` is `_ops.getitem(x, i)`.

The method groups live in mixin classes that `Tensor` inherits (math and reductions here;
shape, indexing and in-place in `tensor_methods_shape.py`; PyTorch's thin extras such as `eq`,
`new_zeros`, `mm`, `topk` in `tensor_torch_methods.py`), so `tensor.py` keeps the data model,
the autograd entry points and the Python operators. Methods that only forward to one op are
one line each.
"""

from __future__ import annotations

import functools
import warnings
from types import SimpleNamespace

import numpy as np

from . import memory_layout as _layout
from .dtypes import SCALAR_TYPES, as_dtype, get_default_dtype


class _OpsTable(SimpleNamespace):
    """The ops table. A name not registered yet may belong to a module that loads on first use
    (`register_lazy`: descent.linalg_torch's `x.det()`, descent.special_torch's `x.i0()`):
    asking for it imports that module, whose `register_ops` call fills it in."""

    def __getattr__(self, name: str):
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"descent's ops table has no function {name!r}")
        import importlib  # noqa: PLC0415 - only when a lazily registered method is first used

        importlib.import_module(module)
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(f"{module} did not register {name!r}") from None


_ops = _OpsTable()
_LAZY: dict[str, str] = {}  # name -> the module that registers it when imported


def register_lazy(module: str, names) -> None:
    """Names whose functions `module` registers when it is imported (on first use)."""
    for name in names:
        _LAZY[name] = module


def register_ops(functions: dict) -> None:
    """Fill Tensor's ops table (called once, by `descent.ops` at import).

    Args:
        functions: name -> function. A name registered twice must name the same function.
    """
    for name, fn in functions.items():
        have = _ops.__dict__.get(name)
        if have is not None and have is not fn:
            raise RuntimeError(f"register_ops: two different functions are named {name!r}")
        setattr(_ops, name, fn)


def _is_tensor(a) -> bool:
    """A Tensor by what it holds: this module sits below tensor.py and may not import it."""
    return hasattr(a, "_data") and hasattr(a, "requires_grad")


def _deprecated_overload(name: str, form: str, scalars: tuple, tensors: tuple) -> list:
    """The scalars of one of PyTorch's deprecated scalar-first calls, checked as PyTorch's
    argument parser checks them (a 0-d tensor reads as its number), with its UserWarning.

    Raises:
        TypeError: a scalar is a tensor with dimensions, or a tensor argument is not a tensor.
    """
    if any(_is_tensor(v) and v.dim() != 0 for v in scalars) or not all(
        _is_tensor(a) for a in tensors
    ):
        raise TypeError(f"{name}(): no overload takes these positional arguments; the "
                        f"deprecated one is {name}({form})")  # fmt: skip
    warnings.warn(f"This overload of {name} is deprecated:\n\t{name}({form})\nuse the "
                  "keyword form instead", UserWarning, stacklevel=4)  # fmt: skip
    return [v.item() if _is_tensor(v) else v for v in scalars]


def legacy_scalar_first(name: str, first, args: tuple, n_tensors: int):
    """PyTorch's deprecated overloads that take the scalar first: `x.add_(alpha, other)`,
    `x.sub(alpha, other)`, `x.addcmul_(value, t1, t2)`, `x.addcdiv_(value, t1, t2)` (still
    accepted by torch 2.13, with a UserWarning; DARTS and pre-1.5 optimizers are written so).

    `first` is the method's first positional argument and `args` the positional ones after it;
    callers come here only when there are more positional arguments than the current form
    takes. Returns (scalar, tensors).

    Raises:
        TypeError: too many positional arguments, or the ones after the scalar are not tensors.
    """
    form = "Number, " + ", ".join(["Tensor"] * n_tensors)
    if len(args) != n_tensors:
        raise TypeError(f"{name}() got {1 + len(args)} positional arguments; the deprecated "
                        f"overload is {name}({form})")  # fmt: skip
    (scalar,) = _deprecated_overload(name, form, (first,), args)
    return scalar, args


def beta_alpha_first(method: bool):
    """Decorator: PyTorch's deprecated forms of addmm / addmv / addr / baddbmm / addbmm (and
    their in-place methods) that take beta, and optionally alpha, as leading positionals:
    `torch.addmm(beta, input, m1, m2)`, `torch.addmm(beta, input, alpha, m1, m2)`,
    `x.addmm(beta, m1, m2)`, `x.addmm_(beta, alpha, m1, m2)` (torch 2.13 still accepts them,
    with a UserWarning). The current form has 2 positionals after self (a method) or 3 (a
    function); one or two more select the deprecated form."""

    def wrap(fn):
        name = fn.__name__
        normal = 2 if method else 3

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            head, rest = (args[:1], args[1:]) if method else ((), args)
            if len(rest) <= normal:
                return fn(*args, **kwargs)
            if len(rest) == normal + 1:  # beta, [input,] m1, m2
                scalars, tensors = rest[:1], rest[1:]
                form = "Number beta, " + ", ".join(["Tensor"] * normal)
            elif len(rest) == normal + 2:  # beta, [input,] alpha, m1, m2
                alpha_at = 1 if method else 2
                scalars = (rest[0], rest[alpha_at])
                tensors = rest[1:alpha_at] + rest[alpha_at + 1:]
                form = "Number beta, " + ("" if method else "Tensor, ") + "Number alpha, " \
                    + "Tensor, Tensor"
            else:
                raise TypeError(f"{name}() takes at most {normal + 2} positional arguments")
            values = _deprecated_overload(name, form, scalars, tensors)
            kwargs["beta"] = values[0]
            if len(values) == 2:
                kwargs["alpha"] = values[1]
            return fn(*head, *tensors, **kwargs)

        return wrapper

    return wrap


# PyTorch's legacy type names: its ScalarType name + "Tensor" (FloatTensor, UInt16Tensor,
# Float8_e4m3fnTensor), from the one table of ScalarType names (dtypes.SCALAR_TYPES).
_LEGACY_NAMES = {name: scalar + "Tensor" for name, scalar in SCALAR_TYPES.items()}


def _legacy_dtype(dtype):
    """The dtype of `x.type(...)`'s argument: a legacy type (`descent.DoubleTensor`, which
    carries `_dtype`), a legacy name ('torch.DoubleTensor'), or any dtype spelling."""
    legacy = getattr(dtype, "_dtype", None)
    if legacy is not None:
        return legacy
    if isinstance(dtype, str) and dtype.endswith("Tensor"):
        name = dtype.rpartition(".")[2]
        for dt, legacy_name in _LEGACY_NAMES.items():
            if legacy_name == name:
                return as_dtype(dt)
        raise TypeError(f"type(): unknown tensor type {dtype!r}; pass a dtype such as "
                        "descent.float64")  # fmt: skip
    return dtype


class MathMethods:
    """Elementwise math and casts (`x.exp()`, `x.type(dtype)`; the dtype shorthands such as
    `x.float()` are in tensor_conversions.py)."""

    __slots__ = ()  # mixins of a slotted class must not add a __dict__

    # Python 2's names for true division, which PyTorch's Tensor still has (x.__rdiv__(2) is
    # 2 / x); Python 3 itself calls __truediv__ / __rtruediv__.
    def __div__(self, other):
        return _ops.div(self, other)

    def __rdiv__(self, other):
        return _ops.div(other, self)

    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def log1p(self):
        return _ops.log1p(self)

    def expm1(self):
        return _ops.expm1(self)

    def sqrt(self):
        return _ops.sqrt(self)

    def rsqrt(self):
        return _ops.rsqrt(self)

    def abs(self):
        return _ops.abs(self)

    def sign(self):
        return _ops.sign(self)

    def sin(self):
        return _ops.sin(self)

    def cos(self):
        return _ops.cos(self)

    def tan(self):
        return _ops.tan(self)

    def tanh(self):
        return _ops.tanh(self)

    def sigmoid(self):
        return _ops.sigmoid(self)

    def relu(self):
        return _ops.relu(self)

    def erf(self):
        return _ops.erf(self)

    def square(self):
        return _ops.square(self)

    def pow(self, exponent):
        return _ops.pow(self, exponent)

    def maximum(self, other):
        return _ops.maximum(self, other)

    def minimum(self, other):
        return _ops.minimum(self, other)

    def clamp(self, min=None, max=None):  # PyTorch's parameter names
        return _ops.clamp(self, min, max)

    clip = clamp

    def masked_fill(self, mask, value):
        return _ops.masked_fill(self, mask, value)

    def where(self, condition, other):
        return _ops.where(condition, self, other)

    def matmul(self, other):
        return _ops.matmul(self, other)

    def dot(self, tensor):
        return _ops.dot(self, tensor)

    # -- more math (descent.ops.math) ----------------------------------------------------------
    def asin(self):
        return _ops.asin(self)

    def acos(self):
        return _ops.acos(self)

    def atan(self):
        return _ops.atan(self)

    arcsin, arccos, arctan = asin, acos, atan

    def sinh(self):
        return _ops.sinh(self)

    def cosh(self):
        return _ops.cosh(self)

    def asinh(self):
        return _ops.asinh(self)

    def acosh(self):
        return _ops.acosh(self)

    def atanh(self):
        return _ops.atanh(self)

    arcsinh, arccosh, arctanh = asinh, acosh, atanh

    def exp2(self):
        return _ops.exp2(self)

    def log2(self):
        return _ops.log2(self)

    def log10(self):
        return _ops.log10(self)

    def floor(self):
        return _ops.floor(self)

    def ceil(self):
        return _ops.ceil(self)

    def trunc(self):
        return _ops.trunc(self)

    fix = trunc

    def round(self, decimals=0):
        return _ops.round(self, decimals)

    def frac(self):
        return _ops.frac(self)

    def atan2(self, other):
        return _ops.atan2(self, other)

    arctan2 = atan2

    def hypot(self, other):
        return _ops.hypot(self, other)

    def copysign(self, other):
        return _ops.copysign(self, other)

    def logaddexp(self, other):
        return _ops.logaddexp(self, other)

    def logaddexp2(self, other):
        return _ops.logaddexp2(self, other)

    def xlogy(self, other):
        return _ops.xlogy(self, other)

    def fmod(self, other):
        return _ops.fmod(self, other)

    def remainder(self, other):
        return _ops.remainder(self, other)

    def lerp(self, end, weight):
        return _ops.lerp(self, end, weight)

    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        return _ops.nan_to_num(self, nan, posinf, neginf)

    def div(self, other, *, rounding_mode=None):
        return _ops.div(self, other, rounding_mode=rounding_mode)

    divide = div

    def floor_divide(self, other):
        return _ops.floor_divide(self, other)

    # -- logic and bits (no gradient) ---------------------------------------------------------
    def logical_and(self, other):
        return _ops.logical_and(self, other)

    def logical_or(self, other):
        return _ops.logical_or(self, other)

    def logical_xor(self, other):
        return _ops.logical_xor(self, other)

    def logical_not(self):
        return _ops.logical_not(self)

    def bitwise_and(self, other):
        return _ops.bitwise_and(self, other)

    def bitwise_or(self, other):
        return _ops.bitwise_or(self, other)

    def bitwise_xor(self, other):
        return _ops.bitwise_xor(self, other)

    def bitwise_not(self):
        return _ops.bitwise_not(self)

    def bitwise_left_shift(self, other):
        return _ops.bitwise_left_shift(self, other)

    def bitwise_right_shift(self, other):
        return _ops.bitwise_right_shift(self, other)

    def isclose(self, other, rtol=1e-5, atol=1e-8, equal_nan=False):
        return _ops.isclose(self, other, rtol, atol, equal_nan)

    def isposinf(self):
        return _ops.isposinf(self)

    def isneginf(self):
        return _ops.isneginf(self)

    # -- dtype conversions (differentiable between floating dtypes) ----------------------------
    def clone(self, *, memory_format=None):
        # preserve_format (the default) keeps the input's strides where it is non-overlapping
        # and dense (a transpose, channels-last), as PyTorch's clone does: x.t().clone().view(-1)
        # raises there too (memory_layout.preserved)
        name = "preserve_format" if memory_format is None else _layout.format_name(memory_format)
        if name == "preserve_format":
            if self._data.flags.c_contiguous:
                return _ops.clone(self)
        elif name != "contiguous_format":
            _layout.check_rank(self._data, name)
        return _ops.clone(self, None if name == "contiguous_format" else name)

    def _to_layout(self, memory_format):
        """`to(memory_format=)`: self when its layout is already that one, else a copy in it."""
        name = _layout.format_name(memory_format)
        if name != "contiguous_format":
            _layout.check_rank(self._data, name)
        if _layout.layout_of(self._data) == name:
            return self
        return _ops.clone(self, None if name == "contiguous_format" else name)

    def contiguous(self, memory_format=None):
        # descent's ops accept any layout; a copy only where PyTorch's is_contiguous() says False,
        # so x.t().contiguous().is_contiguous() holds as in PyTorch (and .view works after it).
        if memory_format is None:
            return self if self._data.flags.c_contiguous else _ops.clone(self)
        name = _layout.format_name(memory_format)
        if name in ("contiguous_format", "preserve_format"):
            return self if self._data.flags.c_contiguous else _ops.clone(self)
        _layout.check_rank(self._data, name)  # channels_last(_3d): NHWC memory (memory_layout)
        return self if _layout.is_channels_last(self._data, name) else _ops.clone(self, name)

    def astype(self, dtype):
        return _ops.cast(self, dtype)

    def type(self, dtype=None, non_blocking=False):
        """`x.type()` is the legacy type name ('descent.FloatTensor'); `x.type(dtype)` casts,
        where dtype may also be a legacy type (`descent.DoubleTensor`) or its name
        ('torch.DoubleTensor', 'descent.DoubleTensor'), as in PyTorch."""
        if dtype is None:
            name = self._data.dtype.name
            return "descent." + _LEGACY_NAMES.get(name, name + "Tensor")
        if isinstance(dtype, type) and isinstance(self, dtype):
            # `x.type(torch.Tensor)`: the default tensor type, of the default dtype
            return _ops.cast(self, get_default_dtype())
        return _ops.cast(self, _legacy_dtype(dtype))


def _view_as_dtype(t, dtype):
    """t.view(dtype): the same bytes read as another dtype (PyTorch's bit view; the last
    dimension scales by the itemsizes' ratio). Not differentiable unless the dtype is t's own,
    as in PyTorch."""
    dt = np.dtype(as_dtype(dtype))
    if dt == t._data.dtype:
        return _ops.reshape(t, t.shape)
    arr = t._data if t._data.ndim else t._data.reshape(1)
    if t._data.ndim == 0 and dt.itemsize != arr.dtype.itemsize:
        raise RuntimeError(
            f"view({dt}): a 0-d tensor of {arr.dtype} can only be viewed as a dtype of the same "
            "size, as in PyTorch"
        )
    ratio = dt.itemsize // arr.dtype.itemsize
    if ratio > 1 and arr.size:  # PyTorch's alignment rules, which NumPy's byte strides skip
        item = arr.dtype.itemsize
        off = _ops.storage_offset_of(t)
        bad = [f"self.stride({d}) ({s // item})" for d, s in enumerate(arr.strides[:-1])
               if (s // item) % ratio]  # fmt: skip
        if off % ratio:
            bad.insert(0, f"self.storage_offset() ({off})")
        if bad:
            raise RuntimeError(
                f"view({dt}): {', '.join(bad)} must be divisible by {ratio} to view "
                f"{arr.dtype} as {dt} (different element sizes), as in PyTorch; call "
                ".contiguous() first"
            )
    try:
        res = _ops.dtype_view_of(t, dt)  # (seen by op hooks: descent.compile replays it)
    except ValueError as e:
        raise RuntimeError(
            f"view({dt}) of a {arr.dtype} tensor of shape {tuple(t.shape)}: {e}"
        ) from None
    # outside the graph, but one memory and version counter with t (PyTorch's view): tagged
    # as detach()'s result is (writes into either bump both; autograd_views)
    from .autograd_views import AliasRef, DetachedView, register  # noqa: PLC0415

    res._version = t._version
    res._view_base = DetachedView(t)
    register(t, res, AliasRef)
    return res


class ReductionMethods:
    """Reductions, softmax and cumulative sums; `dim`/`keepdim` are PyTorch's aliases of
    NumPy's `axis`/`keepdims`."""

    __slots__ = ()

    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None):
        return _ops.sum(self, axis, keepdims, dim=dim, keepdim=keepdim, dtype=dtype)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None):
        return _ops.mean(self, axis, keepdims, dim=dim, keepdim=keepdim, dtype=dtype)

    def prod(self, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None):
        return _ops.prod(self, axis, keepdims, dim=dim, keepdim=keepdim, dtype=dtype)

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None, other=None):
        """PyTorch's meaning: `x.max()` (0-d), `x.max(dim)` -> `(values, indices)`,
        `x.max(other)` (elementwise; also `other=`). `amax` gives values only."""
        if other is not None:
            return _ops.maximum(self, other)
        return _ops.max(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def min(self, axis=None, keepdims=False, *, dim=None, keepdim=None, other=None):
        """`x.min()`, `x.min(dim)` -> `(values, indices)`, `x.min(other)`; see `max`."""
        if other is not None:
            return _ops.minimum(self, other)
        return _ops.min(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def amax(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _ops.amax(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def amin(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _ops.amin(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def argmax(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _ops.argmax(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def argmin(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _ops.argmin(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def var(self, axis=None, correction=1, keepdims=False, *, dim=None, keepdim=None,
            unbiased=None):  # fmt: skip
        return _ops.var(self, axis, correction, keepdims, dim=dim, keepdim=keepdim,
                        unbiased=unbiased)  # fmt: skip

    def std(self, axis=None, correction=1, keepdims=False, *, dim=None, keepdim=None,
            unbiased=None):  # fmt: skip
        return _ops.std(self, axis, correction, keepdims, dim=dim, keepdim=keepdim,
                        unbiased=unbiased)  # fmt: skip

    def logsumexp(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _ops.logsumexp(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def norm(self, ord="fro", axis=None, keepdims=False, *, dim=None, keepdim=None, p=None,
             dtype=None):  # fmt: skip
        return _ops.norm(self, p if p is not None else ord, axis, keepdims, dim=dim,
                         keepdim=keepdim, dtype=dtype)  # fmt: skip

    def softmax(self, axis=None, *, dim=None, dtype=None):
        return _ops.softmax(self, axis, dim=dim, dtype=dtype)

    def log_softmax(self, axis=None, *, dim=None, dtype=None):
        return _ops.log_softmax(self, axis, dim=dim, dtype=dtype)

    def all(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _ops.all(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def any(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _ops.any(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def aminmax(self, *, dim=None, keepdim=False):
        return _ops.aminmax(self, dim=dim, keepdim=keepdim)

    def count_nonzero(self, dim=None):
        return _ops.count_nonzero(self, dim)

    def cumprod(self, dim=None, *, axis=None, dtype=None):
        return _ops.cumprod(self, dim, axis=axis, dtype=dtype)

    def cummax(self, dim=None, *, axis=None):
        return _ops.cummax(self, dim, axis=axis)

    def cummin(self, dim=None, *, axis=None):
        return _ops.cummin(self, dim, axis=axis)

    def logcumsumexp(self, dim=None, *, axis=None):
        return _ops.logcumsumexp(self, dim, axis=axis)

    def kthvalue(self, k, dim=-1, keepdim=False):
        return _ops.kthvalue(self, k, dim, keepdim)

    def median(self, dim=None, keepdim=False, *, axis=None):
        return _ops.median(self, dim, keepdim, axis=axis)

    def mode(self, dim=-1, keepdim=False):
        return _ops.mode(self, dim, keepdim)

    def msort(self):
        return _ops.msort(self)

    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
        return _ops.unique(self, sorted, return_inverse, return_counts, dim)

    def cumsum(self, axis=None, *, dim=None, dtype=None):
        return _ops.cumsum(self, axis if dim is None else dim, dtype=dtype)
