"""Tensor's PyTorch-named methods, and the table through which Tensor reaches the ops layer.

The layers run engine -> tensor -> ops: the ops are written against Tensor, so `tensor.py` (and
this module, its method groups) cannot import them. Instead every Tensor operator and method
calls a function of the ops table `_ops`, which `descent.ops` fills when it is imported
(`register_ops`, called once from `descent/ops/__init__.py`; importing any part of descent
imports `descent.ops`). The table holds every public function of the op modules under its own
name: `x.exp()` is `_ops.exp(x)`, `x[i]` is `_ops.getitem(x, i)`.

The method groups live in mixin classes that `Tensor` inherits (math, reductions, shape,
indexing, in-place here; PyTorch's thin extras such as `eq`, `new_zeros`, `mm`, `topk` in
`tensor_torch_methods.py`), so `tensor.py` keeps the data model, the autograd entry points and
the Python operators. Methods that only forward to one op are one line each.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from . import memory_layout as _layout
from .dtypes import SCALAR_TYPES, as_dtype


class _OpsTable(SimpleNamespace):
    """The ops table. A name not registered yet may belong to a module that loads on first use
    (`register_lazy`: descent.linalg_torch's `x.det()`, descent.special's `x.i0()`): asking for
    it imports that module, whose `register_ops` call fills it in."""

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
        # preserve_format (the default) keeps a channels-last layout, as PyTorch's clone does
        name = "preserve_format" if memory_format is None else _layout.format_name(memory_format)
        if name == "preserve_format":
            name = _layout.layout_of(self._data)
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
        out = arr.view(dt)
    except ValueError as e:
        raise RuntimeError(
            f"view({dt}) of a {arr.dtype} tensor of shape {tuple(t.shape)}: {e}"
        ) from None
    return type(t)._wrap(out.reshape(()) if t._data.ndim == 0 else out)


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

    def norm(self, ord=2, axis=None, keepdims=False, *, dim=None, keepdim=None, p=None):
        return _ops.norm(self, p if p is not None else ord, axis, keepdims, dim=dim,
                         keepdim=keepdim)  # fmt: skip

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


class ShapeMethods:
    """Reshaping, transposing, broadcasting, splitting and the triangles."""

    __slots__ = ()

    def reshape(self, *sizes, shape=None):
        if shape is not None:  # PyTorch's keyword: x.reshape(shape=(2, 3))
            sizes = (shape,)
        return _ops.reshape(self, *sizes)

    def view(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer, tuple, list)):
            return _view_as_dtype(self, shape[0])  # x.view(torch.int32): the bits reinterpreted
        return _ops.view(self, *shape)  # never a copy: raises where PyTorch's view does

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops.flatten(self, start_dim, end_dim)

    def transpose(self, *axes, dim0=None, dim1=None):
        if dim0 is None and dim1 is None:
            return _ops.transpose(self, *axes)
        return _ops.transpose(self, *axes, dim0=dim0, dim1=dim1)  # PyTorch's keywords

    def permute(self, *axes, dims=None):
        if dims is not None:  # PyTorch's keyword: x.permute(dims=(1, 0))
            axes = (dims,)
        return _ops.permute(self, *axes)

    def swapaxes(self, axis0, axis1):
        return _ops.swapaxes(self, axis0, axis1)

    def expand(self, *sizes, size=None):
        if size is not None:  # PyTorch's keyword: x.expand(size=(3, 4))
            sizes = (size,)
        return _ops.expand(self, *sizes)

    def broadcast_to(self, shape):
        return _ops.broadcast_to(self, shape)

    def expand_as(self, other):
        return _ops.expand(self, *other.shape)

    def squeeze(self, axis=None, *, dim=None):
        return _ops.squeeze(self, axis if dim is None else dim)

    def unsqueeze(self, axis=None, *, dim=None):
        return _ops.unsqueeze(self, axis if dim is None else dim)

    def split(self, split_size, axis=0, *, dim=None):  # PyTorch's name: split_size
        return _ops.split(self, split_size, axis if dim is None else dim)

    def chunk(self, chunks, axis=0, *, dim=None):
        return _ops.chunk(self, chunks, axis if dim is None else dim)

    def flip(self, *axis, dims=None):
        # PyTorch's Tensor.flip(*dims): x.flip(0, 1), x.flip([0, 1]) and x.flip(dims=...)
        if dims is not None and axis:
            raise TypeError("flip() got multiple values for argument 'dims'")
        if dims is None and axis:
            dims = axis[0] if len(axis) == 1 else axis
        return _ops.flip(self, dims)

    def roll(self, shifts, axis=None, *, dims=None):
        return _ops.roll(self, shifts, axis if dims is None else dims)

    def repeat(self, *reps):
        return _ops.repeat(self, *reps)

    def tile(self, *reps, dims=None):
        if dims is not None:  # PyTorch's keyword: x.tile(dims=(2, 1))
            reps = (dims,)
        return _ops.tile(self, *reps)

    def diagonal(self, offset=0, dim1=0, dim2=1):
        return _ops.diagonal(self, offset, dim1, dim2)

    def diag(self, diagonal=0):
        return _ops.diag(self, diagonal)

    def trace(self):
        return _ops.trace(self)

    def unfold(self, dimension, size, step):
        return _ops.unfold(self, dimension, size, step)

    def unflatten(self, dim, sizes):
        return _ops.unflatten(self, dim, sizes)

    def repeat_interleave(self, repeats, dim=None, *, output_size=None):
        return _ops.repeat_interleave(self, repeats, dim, output_size=output_size)

    def narrow(self, dim, start, length):
        return _ops.narrow(self, dim, start, length)

    def movedim(self, source, destination):
        return _ops.movedim(self, source, destination)

    moveaxis = movedim

    def tril(self, k=0, *, diagonal=None):
        return _ops.tril(self, k if diagonal is None else diagonal)

    def triu(self, k=0, *, diagonal=None):
        return _ops.triu(self, k if diagonal is None else diagonal)


class IndexingMethods:
    """`x[i]`, `x[i] = v`, and PyTorch's gather/scatter family."""

    __slots__ = ()

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    def __setitem__(self, index, value) -> None:
        _ops.setitem(self, index, value)

    def gather(self, dim=None, index=None, *, axis=None, sparse_grad=False):
        return _ops.gather(self, dim, index, axis=axis)

    def take(self, index):
        return _ops.take(self, index)

    def index_fill(self, dim, index, value):
        return _ops.index_fill(self, dim, index, value)

    def scatter_reduce(self, dim, index, src, reduce, *, include_self=True):
        return _ops.scatter_reduce(self, dim, index, src, reduce, include_self=include_self)

    def take_along_axis(self, index, axis):
        return _ops.take_along_axis(self, index, axis)

    def index_select(self, axis=None, index=None, *, dim=None):
        return _ops.index_select(self, axis if dim is None else dim, index)

    def scatter_add(self, axis=None, index=None, src=None, *, dim=None):
        return _ops.scatter_add(self, axis if dim is None else dim, index, src)

    def index_add(self, axis=None, index=None, source=None, *, dim=None, alpha=1):
        return _ops.index_add(self, axis if dim is None else dim, index, source, alpha=alpha)


class InPlaceMethods:
    """In-place updates (`x += y`, `x.add_(y)`, ...); see `descent.ops.inplace` for how they
    interact with the graph (version counters, rebinding)."""

    __slots__ = ()

    def __iadd__(self, other):
        return _ops.add_(self, other)

    def __isub__(self, other):
        return _ops.sub_(self, other)

    def __imul__(self, other):
        return _ops.mul_(self, other)

    def __itruediv__(self, other):
        return _ops.div_(self, other)

    __idiv__ = __itruediv__  # Python 2's name, which PyTorch's Tensor still has

    # The other augmented assignments run the in-place methods, as PyTorch's do (so `x **= 2`
    # keeps x's identity and its views see the change).
    def __ipow__(self, other):
        return self.pow_(other)

    def __imod__(self, other):
        return self.remainder_(other)

    def __ifloordiv__(self, other):
        return self.floor_divide_(other)

    def __iand__(self, other):
        return self.bitwise_and_(other)

    def __ior__(self, other):
        return self.bitwise_or_(other)

    def __ixor__(self, other):
        return self.bitwise_xor_(other)

    def __ilshift__(self, other):
        return self.bitwise_left_shift_(other)

    def __irshift__(self, other):
        return self.bitwise_right_shift_(other)

    def __reversed__(self):
        """reversed(x): x flipped along dim 0 (a 0-d tensor is returned as it is)."""
        return self if self._data.ndim == 0 else _ops.flip(self, (0,))

    def add_(self, other, alpha=1):
        if type(alpha) is int and self._data.dtype.kind == "b":
            alpha = bool(alpha)  # PyTorch casts alpha to the bool result (see descent.add)
        return _ops.add_(self, other if alpha == 1 else other * alpha)

    def sub_(self, other, alpha=1):
        return _ops.sub_(self, other if alpha == 1 else other * alpha)

    def mul_(self, other):
        return _ops.mul_(self, other)

    def div_(self, other, *, rounding_mode=None):
        return _ops.div_(self, other, rounding_mode=rounding_mode)

    def clamp_(self, min=None, max=None):
        return _ops.clamp_(self, min, max)

    def copy_(self, src, non_blocking: bool = False):
        # non_blocking: PyTorch's asynchronous host-device copy; descent's copies are synchronous
        return _ops.copy_(self, src)

    def fill_(self, value):
        return _ops.fill_(self, value)

    def zero_(self):
        return _ops.fill_(self, 0)

    def masked_fill_(self, mask, value):
        return _ops.masked_fill_(self, mask, value)
