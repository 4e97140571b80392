"""Tensor: one backend array, `requires_grad`, `grad`, and a link to the node that made it.

Operators and methods delegate to the functions in `descent.ops`; nothing is patched onto the
class from outside. dtype rules: floating data defaults to float32 (even float64 NumPy arrays and
Python floats, unless `dtype=` says otherwise); a Python scalar never upcasts a tensor.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from . import autograd, backend

_FLOAT_KINDS = "f"


def _default_dtype_for(arr) -> Any:
    """descent's default dtype for data whose dtype was not given."""
    kind = arr.dtype.kind
    if kind == "f":
        return np.float32
    if kind in "iu":
        return np.int64 if arr.dtype.itemsize >= 4 or kind == "i" else arr.dtype
    if kind == "b":
        return np.bool_
    if kind == "c":
        raise TypeError("complex tensors are not supported by descent")
    raise TypeError(f"cannot make a tensor from data of dtype {arr.dtype}")


def _to_array(data, dtype=None, device=None):
    """Backend array for `data` with descent's dtype defaults (float32 for floating data)."""
    if isinstance(data, Tensor):
        arr = data.data
    elif backend.is_cupy_array(data):
        arr = data
    else:
        if isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) for d in _flat(data)):
            data = _nested_to_numpy(data)
        arr = np.asarray(data)
    if dtype is None:
        dt = _default_dtype_for(arr)
        if arr.dtype != dt:
            arr = arr.astype(dt)
    else:
        dt = np.dtype(dtype)
        if arr.dtype != dt:
            arr = arr.astype(dt)
    if device is not None:
        arr = backend.to_device(arr, backend.normalize_device(device))
    return arr


def _flat(data):
    for d in data:
        if isinstance(d, (list, tuple)):
            yield from _flat(d)
        else:
            yield d


def _nested_to_numpy(data):
    if isinstance(data, Tensor):
        return backend.as_numpy(data.data)
    if isinstance(data, (list, tuple)):
        return [_nested_to_numpy(d) for d in data]
    return data


def _check_grad_dtype(arr, op: str = "requires_grad") -> None:
    if arr.dtype.kind != "f":
        raise RuntimeError(
            f"{op}: only floating-point tensors can require gradients, got dtype {arr.dtype}. "
            "Convert first, e.g. tensor(data, dtype=descent.float32, requires_grad=True)"
        )


class Tensor:
    """An n-dimensional array that records the operations applied to it for backward.

    Args:
        data: array-like (nested lists, NumPy/CuPy array, scalar, or Tensor).
        dtype: a descent/NumPy dtype; floating data defaults to float32.
        requires_grad: record operations on this tensor so that `backward()` fills `.grad`.
        device: 'cpu' (default) or 'cuda'.

    Gradients ACCUMULATE into `.grad` across backward calls, as in PyTorch: call
    `zero_grad()` on the optimizer or module (or set `.grad = None`) between steps.
    """

    __slots__ = ("data", "_rg", "grad", "_node", "_version", "_hooks", "name", "__weakref__")

    # NumPy must defer to our reflected operators (ndarray + Tensor -> Tensor.__radd__).
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __init__(self, data, dtype=None, requires_grad: bool = False, device=None) -> None:
        arr = _to_array(data, dtype, device)
        if requires_grad:
            _check_grad_dtype(arr)
        self.data = arr
        self._rg = bool(requires_grad)
        self.grad = None
        self._node = None
        self._version = 0
        self._hooks = None
        self.name = None

    # -- fast constructors used by the engine --------------------------------------------
    @staticmethod
    def _wrap(arr) -> Tensor:
        if type(arr) is not np.ndarray and isinstance(arr, np.generic):
            arr = np.asarray(arr)  # NumPy returns scalars for 0-d results: keep arrays
        t = object.__new__(Tensor)
        t.data = arr
        t._rg = False
        t.grad = None
        t._node = None
        t._version = 0
        t._hooks = None
        t.name = None
        return t

    @staticmethod
    def _from_node(arr, node) -> Tensor:
        if type(arr) is not np.ndarray and isinstance(arr, np.generic):
            arr = np.asarray(arr)
        t = object.__new__(Tensor)
        t.data = arr
        t._rg = True
        t.grad = None
        t._node = node
        t._version = 0
        t._hooks = None
        t.name = None
        return t

    def _alias(self) -> Tensor:
        """A second Tensor object for the same value and graph position (not for users).

        Recorded in-place ops compute on an alias and then rebind `self`, so nodes that saved
        the alias keep the old value, while nodes that saved `self` see its version change."""
        t = object.__new__(Tensor)
        t.data = self.data
        t._rg = self._rg
        t.grad = None
        t._node = self._node
        t._version = 0
        t._hooks = None
        t.name = None
        return t

    # -- properties ----------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value:
            _check_grad_dtype(self.data)
        elif self._node is not None:
            raise RuntimeError(
                "requires_grad=False on a non-leaf tensor: use .detach() to get a tensor "
                "without history"
            )
        self._rg = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def numel(self) -> int:
        return int(self.data.size)

    def dim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        """The node that produced this tensor (None for leaves)."""
        return self._node

    @property
    def is_cuda(self) -> bool:
        return backend.is_cupy_array(self.data)

    @property
    def T(self) -> Tensor:  # noqa: N802 - NumPy's name
        return _shape.transpose(self)

    @property
    def mT(self) -> Tensor:  # noqa: N802 - PyTorch's name
        return _shape.swapaxes(self, -1, -2)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __hash__(self) -> int:
        return id(self)

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(self.data.shape[0]):
            yield self[i]

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous: use "
                ".any() or .all()"
            )
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError("only integer tensors with one element can be used as an index")
        return int(self.item())

    # -- conversion ------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (a copy from the GPU; shares memory on the CPU)."""
        return backend.as_numpy(self.data)

    def item(self):
        if self.data.size != 1:
            raise ValueError(
                f"item() needs a tensor with one element, got shape {self.shape}; index it first"
            )
        return backend.as_numpy(self.data).reshape(()).item()

    def tolist(self):
        return backend.as_numpy(self.data).tolist()

    def __array__(self, dtype=None, copy=None):
        a = backend.as_numpy(self.data)
        if dtype is not None:
            a = a.astype(dtype)
        return a

    def detach(self) -> Tensor:
        """A tensor sharing this one's data, cut from the graph (requires_grad=False)."""
        return Tensor._wrap(self.data)

    def detach_(self) -> Tensor:
        self._node = None
        self._rg = False
        return self

    def clone(self) -> Tensor:
        return _ew.clone(self)

    def contiguous(self) -> Tensor:
        return self

    def astype(self, dtype) -> Tensor:
        return _ew.cast(self, dtype)

    def type(self, dtype) -> Tensor:
        return _ew.cast(self, dtype)

    def float(self) -> Tensor:
        return _ew.cast(self, np.float32)

    def double(self) -> Tensor:
        return _ew.cast(self, np.float64)

    def half(self) -> Tensor:
        return _ew.cast(self, np.float16)

    def long(self) -> Tensor:
        return _ew.cast(self, np.int64)

    def int(self) -> Tensor:
        return _ew.cast(self, np.int32)

    def bool(self) -> Tensor:
        return _ew.cast(self, np.bool_)

    def to(self, *args, **kwargs) -> Tensor:
        """`to(device)`, `to(dtype)` or `to(device, dtype)`; differentiable."""
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        if kwargs:
            raise TypeError(f"to(): unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, str) or (a is not None and type(a).__name__ == "device"):
                device = a
            elif isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            else:
                dtype = a
        out = self
        if dtype is not None and np.dtype(dtype) != self.dtype:
            out = _ew.cast(out, dtype)
        if device is not None:
            out = _shape.to_device(out, device)
        return out

    def cuda(self, device: int | str = 0) -> Tensor:
        return self.to(device if isinstance(device, str) else f"cuda:{device}")

    def cpu(self) -> Tensor:
        return self.to("cpu")

    # -- autograd ----------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph: bool = False, create_graph: bool = False):
        """Accumulate d(self)/d(leaf) into the `.grad` of every leaf that requires grad.

        Args:
            gradient: d(loss)/d(self) when self is not a scalar (same shape as self).
            retain_graph: keep saved values so that backward can run through the graph again.
            create_graph: record the backward pass, for gradients of gradients.
        """
        seed = autograd._seed(self, gradient, create_graph, "backward")
        autograd.run_backward([self], [seed], retain_graph or create_graph, create_graph)

    def register_hook(self, hook):
        """Call `hook(grad)` when this tensor's gradient is computed; a return value replaces it.

        Returns a handle with `.remove()`.
        """
        if not self._rg:
            raise RuntimeError(
                "register_hook on a tensor that does not require grad: it never gets a gradient"
            )
        if self._node is not None:
            node = self._node
            if node.hooks is None:
                node.hooks = []
            hooks = node.hooks
        else:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def retain_grad(self) -> None:
        """Keep the gradient of this non-leaf tensor in `.grad` after backward."""
        if self._node is None:
            return  # leaves keep their grad anyway
        self._node.retained = weakref.ref(self)

    def zero_(self) -> Tensor:
        return _ew.fill_(self, 0)

    # -- operators ---------------------------------------------------------------------------
    def __add__(self, other):
        t = type(other)  # fast paths: a Python number, or a tensor of the same shape
        if (t is float or t is int) and self.data.dtype.kind == "f":
            return _ew.AddScalar.apply_scalar(self, c=other)
        if (t is Tensor or isinstance(other, Tensor)) and type(self.data) is type(other.data):
            if self.data.shape == other.data.shape:
                return _ew.Add.apply2(self, other)
        return _ew.add(self, other)

    def __radd__(self, other):
        t = type(other)  # fast path: a Python number with a floating tensor
        if (t is float or t is int) and self.data.dtype.kind == "f":
            return _ew.AddScalar.apply_scalar(self, c=other)
        return _ew.add(other, self)

    def __sub__(self, other):
        t = type(other)
        if (t is float or t is int) and self.data.dtype.kind == "f":
            return _ew.AddScalar.apply_scalar(self, c=-other)
        if (t is Tensor or isinstance(other, Tensor)) and type(self.data) is type(other.data):
            if self.data.shape == other.data.shape:
                return _ew.Sub.apply2(self, other)
        return _ew.sub(self, other)

    def __rsub__(self, other):
        return _ew.sub(other, self)

    def __mul__(self, other):
        t = type(other)  # fast paths: a Python number, or a tensor of the same shape
        if (t is float or t is int) and self.data.dtype.kind == "f":
            return _ew.MulScalar.apply_scalar(self, c=other)
        if (t is Tensor or isinstance(other, Tensor)) and type(self.data) is type(other.data):
            if self.data.shape == other.data.shape:
                return _ew.Mul.apply2(self, other)
        return _ew.mul(self, other)

    def __rmul__(self, other):
        t = type(other)  # fast path: a Python number with a floating tensor
        if (t is float or t is int) and self.data.dtype.kind == "f":
            return _ew.MulScalar.apply_scalar(self, c=other)
        return _ew.mul(other, self)

    def __truediv__(self, other):
        return _ew.div(self, other)

    def __rtruediv__(self, other):
        return _ew.div(other, self)

    def __floordiv__(self, other):
        return _ew.floor_divide(self, other)

    def __mod__(self, other):
        return _ew.remainder(self, other)

    def __pow__(self, other):
        return _ew.pow(self, other)

    def __rpow__(self, other):
        return _ew.pow(other, self)

    def __matmul__(self, other):
        return _linalg.matmul(self, other)

    def __rmatmul__(self, other):
        return _linalg.matmul(other, self)

    def __neg__(self):
        return _ew.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ew.abs(self)

    def __invert__(self):
        return _ew.logical_not(self)

    def __and__(self, other):
        return _ew.logical_and(self, other)

    def __or__(self, other):
        return _ew.logical_or(self, other)

    def __xor__(self, other):
        return _ew.logical_xor(self, other)

    def __eq__(self, other):  # type: ignore[override]
        return _ew.eq(self, other)

    def __ne__(self, other):  # type: ignore[override]
        return _ew.ne(self, other)

    def __lt__(self, other):
        return _ew.lt(self, other)

    def __le__(self, other):
        return _ew.le(self, other)

    def __gt__(self, other):
        return _ew.gt(self, other)

    def __ge__(self, other):
        return _ew.ge(self, other)

    def __getitem__(self, index):
        return _index.getitem(self, index)

    def __setitem__(self, index, value) -> None:
        _index.setitem(self, index, value)

    # in-place arithmetic operators: x += y
    def __iadd__(self, other):
        return _ew.add_(self, other)

    def __isub__(self, other):
        return _ew.sub_(self, other)

    def __imul__(self, other):
        return _ew.mul_(self, other)

    def __itruediv__(self, other):
        return _ew.div_(self, other)

    # -- methods delegating to ops (PyTorch names) -------------------------------------------
    def exp(self):
        return _ew.exp(self)

    def log(self):
        return _ew.log(self)

    def log1p(self):
        return _ew.log1p(self)

    def expm1(self):
        return _ew.expm1(self)

    def sqrt(self):
        return _ew.sqrt(self)

    def rsqrt(self):
        return _ew.rsqrt(self)

    def abs(self):
        return _ew.abs(self)

    def sign(self):
        return _ew.sign(self)

    def sin(self):
        return _ew.sin(self)

    def cos(self):
        return _ew.cos(self)

    def tan(self):
        return _ew.tan(self)

    def tanh(self):
        return _act.tanh(self)

    def sigmoid(self):
        return _act.sigmoid(self)

    def relu(self):
        return _act.relu(self)

    def erf(self):
        return _act.erf(self)

    def square(self):
        return _ew.square(self)

    def pow(self, exponent):
        return _ew.pow(self, exponent)

    def maximum(self, other):
        return _ew.maximum(self, other)

    def minimum(self, other):
        return _ew.minimum(self, other)

    def clamp(self, min=None, max=None):  # noqa: A002 - PyTorch's names
        return _ew.clamp(self, min, max)

    clip = clamp

    def clamp_(self, min=None, max=None):  # noqa: A002
        return _ew.clamp_(self, min, max)

    def add_(self, other, alpha=1):
        return _ew.add_(self, other if alpha == 1 else other * alpha)

    def sub_(self, other, alpha=1):
        return _ew.sub_(self, other if alpha == 1 else other * alpha)

    def mul_(self, other):
        return _ew.mul_(self, other)

    def div_(self, other):
        return _ew.div_(self, other)

    def copy_(self, src):
        return _ew.copy_(self, src)

    def fill_(self, value):
        return _ew.fill_(self, value)

    def masked_fill(self, mask, value):
        return _ew.masked_fill(self, mask, value)

    def masked_fill_(self, mask, value):
        return _ew.masked_fill_(self, mask, value)

    def where(self, condition, other):
        return _ew.where(condition, self, other)

    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None):
        return _reduce.sum(self, axis, keepdims, dim=dim, keepdim=keepdim, dtype=dtype)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None):
        return _reduce.mean(self, axis, keepdims, dim=dim, keepdim=keepdim, dtype=dtype)

    def prod(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _reduce.prod(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _reduce.max(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def min(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _reduce.min(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def amax(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _reduce.max(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def amin(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _reduce.min(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def argmax(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _reduce.argmax(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def argmin(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _reduce.argmin(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def var(self, axis=None, correction=1, keepdims=False, *, dim=None, keepdim=None,
            unbiased=None):  # fmt: skip
        return _reduce.var(self, axis, correction, keepdims, dim=dim, keepdim=keepdim,
                           unbiased=unbiased)  # fmt: skip

    def std(self, axis=None, correction=1, keepdims=False, *, dim=None, keepdim=None,
            unbiased=None):  # fmt: skip
        return _reduce.std(self, axis, correction, keepdims, dim=dim, keepdim=keepdim,
                           unbiased=unbiased)  # fmt: skip

    def logsumexp(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _reduce.logsumexp(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def norm(self, ord=2, axis=None, keepdims=False, *, dim=None, keepdim=None, p=None):  # noqa: A002
        return _reduce.norm(self, p if p is not None else ord, axis, keepdims, dim=dim,
                            keepdim=keepdim)  # fmt: skip

    def softmax(self, axis=None, *, dim=None):
        return _reduce.softmax(self, axis, dim=dim)

    def log_softmax(self, axis=None, *, dim=None):
        return _reduce.log_softmax(self, axis, dim=dim)

    def all(self, axis=None, keepdims=False, *, dim=None):
        return _reduce.all(self, axis if dim is None else dim, keepdims)

    def any(self, axis=None, keepdims=False, *, dim=None):
        return _reduce.any(self, axis if dim is None else dim, keepdims)

    def cumsum(self, axis=None, *, dim=None):
        return _reduce.cumsum(self, axis if dim is None else dim)

    def reshape(self, *shape):
        return _shape.reshape(self, *shape)

    def view(self, *shape):
        return _shape.reshape(self, *shape)

    def flatten(self, start_dim=0, end_dim=-1):
        return _shape.flatten(self, start_dim, end_dim)

    def transpose(self, *axes):
        return _shape.transpose(self, *axes)

    def permute(self, *axes):
        return _shape.permute(self, *axes)

    def swapaxes(self, a, b):
        return _shape.swapaxes(self, a, b)

    def expand(self, *shape):
        return _shape.expand(self, *shape)

    def broadcast_to(self, shape):
        return _shape.broadcast_to(self, shape)

    def expand_as(self, other):
        return _shape.broadcast_to(self, other.shape)

    def squeeze(self, axis=None, *, dim=None):
        return _shape.squeeze(self, axis if dim is None else dim)

    def unsqueeze(self, axis=None, *, dim=None):
        return _shape.unsqueeze(self, axis if dim is None else dim)

    def split(self, split_size_or_sections, axis=0, *, dim=None):
        return _shape.split(self, split_size_or_sections, axis if dim is None else dim)

    def chunk(self, chunks, axis=0, *, dim=None):
        return _shape.chunk(self, chunks, axis if dim is None else dim)

    def flip(self, axis=None, *, dims=None):
        return _shape.flip(self, axis if dims is None else dims)

    def roll(self, shifts, axis=None, *, dims=None):
        return _shape.roll(self, shifts, axis if dims is None else dims)

    def repeat(self, *reps):
        return _shape.repeat(self, *reps)

    def tile(self, *reps):
        return _shape.tile(self, *reps)

    def tril(self, k=0, *, diagonal=None):
        return _shape.tril(self, k if diagonal is None else diagonal)

    def triu(self, k=0, *, diagonal=None):
        return _shape.triu(self, k if diagonal is None else diagonal)

    def gather(self, axis, index, *, dim=None):
        return _index.gather(self, axis if dim is None else dim, index)

    def take_along_axis(self, index, axis):
        return _index.take_along_axis(self, index, axis)

    def index_select(self, axis, index, *, dim=None):
        return _index.index_select(self, axis if dim is None else dim, index)

    def scatter_add(self, axis, index, src, *, dim=None):
        return _index.scatter_add(self, axis if dim is None else dim, index, src)

    def index_add(self, axis, index, source, *, dim=None, alpha=1):
        return _index.index_add(self, axis if dim is None else dim, index, source, alpha=alpha)

    def matmul(self, other):
        return _linalg.matmul(self, other)

    def dot(self, other):
        return _linalg.dot(self, other)

    def __repr__(self) -> str:
        body = np.array2string(
            backend.as_numpy(self.data), separator=", ", precision=4, prefix="tensor(",
            threshold=200, edgeitems=3,
        )  # fmt: skip
        extras = [f"dtype={self.data.dtype}"]
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node.name}>")
        elif self._rg:
            extras.append("requires_grad=True")
        return f"tensor({body}, {', '.join(extras)})"

    __str__ = __repr__


class _HookHandle:
    def __init__(self, hooks: list, hook) -> None:
        self._hooks = hooks
        self._hook = hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


autograd.Tensor = Tensor
autograd._wrap = Tensor._wrap
autograd._from_node = Tensor._from_node
autograd._Tensor = Tensor

# The ops modules import this one; they are bound here, after Tensor exists.
from .ops import activation as _act  # noqa: E402
from .ops import elementwise as _ew  # noqa: E402
from .ops import indexing as _index  # noqa: E402
from .ops import linalg as _linalg  # noqa: E402
from .ops import reduce as _reduce  # noqa: E402
from .ops import shape as _shape  # noqa: E402
