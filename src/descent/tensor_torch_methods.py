"""PyTorch's Tensor methods that are thin calls of the ops: `eq`/`gt`/... by name, `add(alpha=)`,
`view_as`/`type_as`, the in-place math (`exp_`, `relu_`, ...), the `new_*` constructors,
`mm`/`bmm`/`addmm`, ordering and selection, and the random fills (`normal_`, `bernoulli`, ...).

The group `TorchMethods` is one more mixin of `Tensor` (see `tensor_methods.py` for the ops table
`_ops` that every method calls and for the other groups). It comes last in Tensor's bases; no
name here is defined by an earlier group (`div` and `narrow` are in `tensor_methods.py`).
"""

from __future__ import annotations

import numpy as np

from . import autograd, backend, hooks
from . import memory_layout as _layout
from .errors import DescentError
from .tensor_methods import _ops, beta_alpha_first, legacy_scalar_first


class TorchMethods:
    """PyTorch's Tensor methods that are thin calls of the ops: comparisons by name, the new_*
    constructors, alpha forms, mm/bmm/addmm, ordering and selection, random fills."""

    __slots__ = ()

    # -- comparisons by name (bool tensors, no gradient) --------------------------------------
    def eq(self, other):
        return _ops.eq(self, other)

    def ne(self, other):
        return _ops.ne(self, other)

    def gt(self, other):
        return _ops.gt(self, other)

    def lt(self, other):
        return _ops.lt(self, other)

    def ge(self, other):
        return _ops.ge(self, other)

    def le(self, other):
        return _ops.le(self, other)

    def isnan(self):
        return _ops.isnan(self)

    def isinf(self):
        return _ops.isinf(self)

    def isfinite(self):
        return _ops.isfinite(self)

    def equal(self, other) -> bool:
        return (tuple(self.shape) == tuple(other.shape)) and bool(_ops.eq(self, other).all())

    def is_floating_point(self) -> bool:
        return self.dtype.kind in "fV"

    # -- storage facts ---------------------------------------------------------------------------
    def element_size(self) -> int:
        """Bytes per element (x.dtype.itemsize)."""
        return self._data.dtype.itemsize

    @property
    def itemsize(self) -> int:
        return self._data.dtype.itemsize

    @property
    def nbytes(self) -> int:
        """Bytes of the values (numel * element_size)."""
        return int(self._data.nbytes)

    @property
    def is_cpu(self) -> bool:
        return not backend.is_cupy_array(self._data)

    def get_device(self) -> int:
        """The GPU index of a CUDA tensor, -1 for a CPU tensor (as in PyTorch)."""
        if not backend.is_cupy_array(self._data):
            return -1
        return self.device.index or 0

    def stride(self, dim=None):
        """Elements (not bytes) to step in memory per index along each dimension, as in PyTorch:
        a tuple, or one int for `dim`. Views share their base's strides (x.t().stride() is
        (1, n)); a broadcast dimension has stride 0."""
        a = self._data
        if backend.is_meta(a) or (not a.size and not any(a.strides)):
            # no memory (meta), or an empty array with NumPy 2's all-zero strides (PyTorch
            # gives an empty tensor the contiguous layout of its shape)
            strides = _contiguous_strides(a.shape)
        else:
            strides = _layout.elem_strides(self._data)
        return strides if dim is None else strides[dim]

    def is_contiguous(self, memory_format=None) -> bool:
        """Whether the values are laid out C-contiguously, or in `memory_format`
        (torch.channels_last: NHWC memory, see memory_layout.py); ops accept any layout."""
        if memory_format is None:
            return bool(self._data.flags.c_contiguous) or backend.is_meta(self._data)
        return _layout.is_contiguous_as(self._data, memory_format)

    @property
    def grad_dtype(self):
        """The dtype the engine casts this leaf's incoming gradients to (PyTorch 2.13): the
        tensor's own dtype unless set; None accepts any dtype. Leaves only."""
        if self._node is not None:
            raise RuntimeError("grad_dtype can only be accessed on leaf tensors.")
        return hooks.get_grad_dtype(self)

    @grad_dtype.setter
    def grad_dtype(self, dtype) -> None:
        if self._node is not None:
            raise RuntimeError("grad_dtype can only be set on leaf tensors.")
        if dtype is not None and type(dtype).__name__ != "dtype":
            raise RuntimeError(
                f"grad_dtype must be a torch.dtype or None, but got {type(dtype).__name__}"
            )
        hooks.set_grad_dtype(self, dtype)

    @property
    def _base(self):
        """The tensor whose memory this view shares (PyTorch's `Tensor._base`: the root, never a
        view itself), or None for a tensor that owns its memory. A view made under no_grad has a
        base too; `detach()`'s result has none, as in PyTorch. Read by tools that draw graphs
        (torchviz's make_dot) and by code that checks aliasing."""
        return autograd._view_source(self, detached=False)

    def _is_view(self) -> bool:
        """Whether this tensor is a view of another's memory (`_base` is not None)."""
        return self._base is not None

    # -- arithmetic with PyTorch's keywords ------------------------------------------------------
    def add(self, other, *args, alpha=1):
        """self + alpha * other (alpha as descent.add takes it; `x.add(alpha, other)`, the
        deprecated scalar-first overload, too)."""
        if args:
            alpha, (other,) = legacy_scalar_first("add", other, args, 1)
        if alpha == 1 and type(alpha) is not bool:
            return _ops.add(self, other)
        return _ops.add_alpha(self, other, alpha=alpha)  # descent.add (torch_functions.py)

    def sub(self, other, *args, alpha=1):
        """self - alpha * other (alpha as descent.sub takes it; `x.sub(alpha, other)` too)."""
        if args:
            alpha, (other,) = legacy_scalar_first("sub", other, args, 1)
        if alpha == 1 and type(alpha) is not bool:
            return _ops.sub(self, other)
        return _ops.sub_alpha(self, other, alpha=alpha)  # descent.sub (torch_functions.py)

    def mul(self, other):
        return _ops.mul(self, other)

    def neg(self):
        return _ops.neg(self)

    def reciprocal(self):
        """1 / x (integer tensors give the default float dtype, as in PyTorch)."""
        return _ops.reciprocal(self)

    negative = neg
    multiply = mul
    subtract = sub

    # -- shapes and dtypes of another tensor -----------------------------------------------------
    def unbind(self, dim=0):
        """The slices along dim, as a tuple (torch.unbind; a dim out of range raises
        IndexError, where a modulo wrapped it)."""
        return _ops.unbind(self, dim)

    def ndimension(self) -> int:
        return self.ndim

    def clamp_min(self, min):
        return _ops.clamp(self, min, None)

    def clamp_max(self, max):
        return _ops.clamp(self, None, max)

    def view_as(self, other):
        return _ops.view(self, tuple(other.shape))

    def reshape_as(self, other):
        return _ops.reshape(self, tuple(other.shape))

    def type_as(self, other):
        return self if self.dtype == other.dtype else _ops.cast(self, other.dtype)

    def t(self):
        """Transpose of a matrix (of a 0-d or 1-D tensor a new view of it), as torch.t."""
        return _ops.matrix_t(self)

    # -- in-place elementwise math (descent.inplace_unary: graph, versions, leaf rule) ----------
    def exp_(self):
        return _ops.exp_(self)

    def log_(self):
        return _ops.log_(self)

    def sqrt_(self):
        return _ops.sqrt_(self)

    def rsqrt_(self):
        return _ops.rsqrt_(self)

    def abs_(self):
        return _ops.abs_(self)

    def neg_(self):
        return _ops.neg_(self)

    def relu_(self):
        return _ops.relu_(self)

    def sigmoid_(self):
        return _ops.sigmoid_(self)

    def tanh_(self):
        return _ops.tanh_(self)

    def sin_(self):
        return _ops.sin_(self)

    def cos_(self):
        return _ops.cos_(self)

    def log1p_(self):
        return _ops.log1p_(self)

    def expm1_(self):
        return _ops.expm1_(self)

    def reciprocal_(self):
        return _ops.reciprocal_(self)

    def sign_(self):
        return _ops.sign_(self)

    def floor_(self):
        return _ops.floor_(self)

    def ceil_(self):
        return _ops.ceil_(self)

    def trunc_(self):
        return _ops.trunc_(self)

    def square_(self):
        return _ops.square_(self)

    negative_ = neg_

    def clamp_min_(self, min):
        return _ops.clamp_(self, min, None)

    def clamp_max_(self, max):
        return _ops.clamp_(self, None, max)

    # -- new tensors with this one's dtype and device ------------------------------------------
    def _new(self, fill, size, dtype, device, requires_grad):
        if len(size) == 1 and isinstance(size[0], (tuple, list)):
            size = tuple(size[0])
        if any(n < 0 for n in size):  # PyTorch's RuntimeError (NumPy's ValueError leaked)
            raise DescentError(
                f"new_zeros/new_ones/new_empty/new_full: trying to create a tensor with "
                f"negative dimension {min(size)}: {list(size)}"
            )
        xp = _array_module(self)
        dt = self.dtype if dtype is None else np.dtype(dtype)
        if fill is None:
            arr = xp.empty(tuple(size), dtype=dt)
        elif type(fill) is int and fill in (0, 1):  # (new_zeros, new_ones)
            arr = xp.full(tuple(size), fill, dtype=dt)
        else:  # new_full: full's checks of the value (PyTorch's overflow errors)
            arr = _ops._full_like_new(self, tuple(size), fill, dt)._data
        out = type(self)._wrap(arr) if device is None else type(self)._wrap(arr).to(device)
        return out.requires_grad_(True) if requires_grad else out

    def new_zeros(self, *sizes, size=None, dtype=None, device=None, requires_grad=False):
        return self._new(0, sizes if size is None else (size,), dtype, device, requires_grad)

    def new_ones(self, *sizes, size=None, dtype=None, device=None, requires_grad=False):
        return self._new(1, sizes if size is None else (size,), dtype, device, requires_grad)

    def new_empty(self, *sizes, size=None, dtype=None, device=None, requires_grad=False):
        return self._new(None, sizes if size is None else (size,), dtype, device, requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
        return self._new(fill_value, (size,), dtype, device, requires_grad)

    def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
        """A new tensor from data (a copy), with this tensor's dtype and device by default."""
        xp = _array_module(self)
        raw = getattr(data, "_data", data)
        arr = xp.array(raw, dtype=self.dtype if dtype is None else np.dtype(dtype), copy=True)
        out = type(self)._wrap(arr) if device is None else type(self)._wrap(arr).to(device)
        if raw is not data:  # a Tensor's values copied: descent.compile's recorder sees it
            out = _ops._tensor_data_made(out, data)  # (creation._from_data_made)
        return out.requires_grad_(True) if requires_grad else out

    # -- linear algebra ----------------------------------------------------------------------
    def mm(self, mat2):
        return _ops.mm(self, mat2)

    def bmm(self, mat2):
        return _ops.bmm(self, mat2)

    @beta_alpha_first(method=True)
    def addmm(self, mat1, mat2, *, beta=1, alpha=1):
        return _ops.addmm(self, mat1, mat2, beta=beta, alpha=alpha)

    # -- ordering and selection --------------------------------------------------------------
    def sort(self, dim=-1, descending=False, stable=False, *, axis=None):
        return _ops.sort(self, dim, descending, stable, axis=axis)

    def argsort(self, dim=-1, descending=False, stable=False, *, axis=None):
        return _ops.argsort(self, dim, descending, stable, axis=axis)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        return _ops.topk(self, k, dim, largest, sorted)

    def nonzero(self, *, as_tuple=False):
        return _ops.nonzero(self, as_tuple=as_tuple)

    def masked_select(self, mask):
        return _ops.masked_select(self, mask)

    def scatter(self, dim, index, src=None, *, value=None, reduce=None):
        return _ops.scatter(self, dim, index, src, value=value, reduce=reduce)

    def scatter_(self, dim, index, src=None, *, value=None, reduce=None):
        return _ops.scatter_(self, dim, index, src, value=value, reduce=reduce)

    def index_put(self, indices, values, accumulate=False):
        return _ops.index_put(self, indices, values, accumulate)

    def index_put_(self, indices, values, accumulate=False):
        vd = getattr(values, "dtype", None)
        if vd is not None and vd != self.dtype:  # PyTorch's check (x[i] = v casts instead)
            raise DescentError(
                "Index put requires the source and destination dtypes match, got "
                f"{self.dtype} for the destination and {vd} for the source."
            )
        return _ops.index_put_(self, indices, values, accumulate)

    # -- random fills (in place) and samplers --------------------------------------------------
    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        return _ops.normal_(self, mean, std, generator=generator)

    def uniform_(self, a=0.0, b=1.0, *, generator=None, **bounds):
        if bounds:  # PyTorch's keywords: x.uniform_(**{"from": -1, "to": 1})
            a, b = _from_to("uniform_", bounds, a, b)
        return _ops.uniform_(self, a, b, generator=generator)

    def bernoulli_(self, p=0.5, *, generator=None):
        return _ops.bernoulli_(self, p, generator=generator)

    def random_(self, low=0, high=None, *, generator=None, **bounds):
        if bounds:  # PyTorch's keywords: x.random_(**{"from": 0, "to": 10})
            low, high = _from_to("random_", bounds, low, high)
        return _ops.random_(self, low, high, generator=generator)

    def exponential_(self, lambd=1.0, *, generator=None):
        return _ops.exponential_(self, lambd, generator=generator)

    def bernoulli(self, p=None, *, generator=None):
        return _ops.bernoulli(self, p, generator=generator)

    def multinomial(self, num_samples, replacement=False, *, generator=None):
        return _ops.multinomial(self, num_samples, replacement, generator=generator)

    # -- special functions and torch's extra elementwise, reduction and array functions -------
    # (descent.ops.special and descent.ops.torch_extra)
    def erfc(self):
        return _ops.erfc(self)

    def erfinv(self):
        return _ops.erfinv(self)

    def lgamma(self):
        return _ops.lgamma(self)

    def digamma(self):
        return _ops.digamma(self)

    def polygamma(self, n):
        return _ops.polygamma(n, self)

    def logit(self, eps=None):
        return _ops.logit(self, eps)

    def nansum(self, dim=None, keepdim=False, *, dtype=None):
        return _ops.nansum(self, dim, keepdim, dtype=dtype)

    def nanmean(self, dim=None, keepdim=False, *, dtype=None):
        return _ops.nanmean(self, dim, keepdim, dtype=dtype)

    def fmax(self, other):
        return _ops.fmax(self, other)

    def fmin(self, other):
        return _ops.fmin(self, other)

    def sgn(self):
        return _ops.sgn(self)

    def signbit(self):
        return _ops.signbit(self)

    def sinc(self):
        return _ops.sinc(self)

    def positive(self):
        return _ops.positive(self)

    def heaviside(self, values):
        return _ops.heaviside(self, values)

    # torch.special's Tensor methods and in-place forms (descent.special_torch registers them)
    def i0(self):
        return _ops.i0(self)

    def mvlgamma(self, p):
        return _ops.mvlgamma(self, p)

    def igamma(self, other):
        return _ops.igamma(self, other)

    def igammac(self, other):
        return _ops.igammac(self, other)

    def erf_(self):
        return _ops.erf_(self)

    def erfc_(self):
        return _ops.erfc_(self)

    def erfinv_(self):
        return _ops.erfinv_(self)

    def lgamma_(self):
        return _ops.lgamma_(self)

    def digamma_(self):
        return _ops.digamma_(self)

    def polygamma_(self, n):
        return _ops.polygamma_(self, n)

    def sinc_(self):
        return _ops.sinc_(self)

    def logit_(self, eps=None):
        return _ops.logit_(self, eps)

    def sgn_(self):
        return _ops.sgn_(self)

    def i0_(self):
        return _ops.i0_(self)

    def exp2_(self):
        return _ops.exp2_(self)

    def round_(self, decimals=0):
        return _ops.round_(self, decimals)

    def xlogy_(self, other):
        return _ops.xlogy_(self, other)

    def heaviside_(self, values):
        return _ops.heaviside_(self, values)

    def mvlgamma_(self, p):
        return _ops.mvlgamma_(self, p)

    def igamma_(self, other):
        return _ops.igamma_(self, other)

    def igammac_(self, other):
        return _ops.igammac_(self, other)

    def ldexp(self, other):
        return _ops.ldexp(self, other)

    def float_power(self, exponent):
        return _ops.float_power(self, exponent)

    def cross(self, other, dim=None):
        return _ops.cross(self, other, dim)

    def rot90(self, k=1, dims=(0, 1)):
        return _ops.rot90(self, k, dims)

    def fliplr(self):
        return _ops.fliplr(self)

    def flipud(self):
        return _ops.flipud(self)

    @beta_alpha_first(method=True)
    def addbmm(self, batch1, batch2, *, beta=1, alpha=1):
        return _ops.addbmm(self, batch1, batch2, beta=beta, alpha=alpha)

    def renorm(self, p, dim, maxnorm):
        return _ops.renorm(self, p, dim, maxnorm)

    def histc(self, bins=100, min=0, max=0):
        return _ops.histc(self, bins, min, max)

    # -- linear algebra (descent.linalg_torch) ----------------------------------------------
    def det(self):
        return _ops.det(self)

    def logdet(self):
        return _ops.logdet(self)

    def slogdet(self):
        return _ops.slogdet(self)

    def inverse(self):
        return _ops.inverse(self)

    def pinverse(self, rcond=1e-15):
        return _ops.pinverse(self, rcond)

    def matrix_power(self, n):
        return _ops.matrix_power(self, n)

    def svd(self, some=True, compute_uv=True):
        return _ops.svd(self, some, compute_uv)

    def qr(self, some=True):
        return _ops.qr(self, some)

    def cholesky(self, upper=False):
        return _ops.cholesky(self, upper)

    def cholesky_solve(self, input2, upper=False):
        return _ops.cholesky_solve(self, input2, upper)

    # -- Householder reflectors (descent.linalg_householder) --------------------------------
    def geqrf(self):
        return _ops.geqrf(self)

    def orgqr(self, input2):
        return _ops.orgqr(self, input2)

    def ormqr(self, input2, input3, left=True, transpose=False):
        return _ops.ormqr(self, input2, input3, left, transpose)

    def cholesky_inverse(self, upper=False):
        return _ops.cholesky_inverse(self, upper)

    def triangular_solve(self, A, upper=True, transpose=False, unitriangular=False):
        """b.triangular_solve(A): the deprecated torch.triangular_solve(b, A)."""
        return _ops.triangular_solve(self, A, upper, transpose, unitriangular)

    def matrix_exp(self):
        return _ops.matrix_exp(self)

    def lu(self, pivot=True, get_infos=False):
        return _ops.lu(self, pivot, get_infos)

    def lu_solve(self, LU_data, LU_pivots):
        return _ops.lu_solve(self, LU_data, LU_pivots)


def _contiguous_strides(shape) -> tuple:
    """C-order strides in elements: what a meta tensor reports (its array's are all 0)."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _array_module(t):
    """The namespace that makes new arrays on t's device: NumPy for CPU tensors, CuPy for GPU
    ones, `meta.xp` for meta tensors (new_empty & co. of a meta tensor are meta)."""
    return backend.creation_module(t._data)


def _from_to(name: str, bounds: dict, low, high):
    """PyTorch's `from=` / `to=` bounds of uniform_ and random_ (`from` is a Python keyword,
    so they arrive in **bounds)."""
    extra = set(bounds) - {"from", "to"}
    if extra:
        raise TypeError(f"{name}() got an unexpected keyword argument {sorted(extra)[0]!r}")
    return bounds.get("from", low), bounds.get("to", high)
