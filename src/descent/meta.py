"""The "meta" device: arrays with a shape and a dtype but no data (PyTorch's meta tensors).

A meta array is a `MetaArray`, a NumPy array subclass whose every stride is 0 over a single
element: it has any shape at no memory cost, and because it IS an ndarray, the ops run their
ordinary code on it (views, broadcasting, dtype promotion and shape errors all come from the
same code as on the CPU). What keeps it cheap:

- ufuncs (elementwise ops, `matmul`, reductions, which is also what `.sum()` / `.mean()` call)
  go through `MetaArray.__array_ufunc__`, which works out the result's shape by the ufunc's
  rule and its dtype on 0-d stand-ins, and computes nothing: a 10^9-element meta matmul costs
  microseconds and no memory;
- NumPy functions (`concatenate`, `where`, `zeros_like`, ...) go through `__array_function__`:
  the creation-like ones make a meta array directly, the others run on the zero-stride data
  and their result is shrunk back to a meta array (a temporary the size of the result);
- copies (`copy`, `astype`, `ravel`, `flatten`) and writes (`a[i] = v`, `fill`) do nothing
  but make or keep a meta array.

Tensors made from a meta array are meta tensors: `Tensor.device` is `device('meta')` (its
NumPy fast path tests `type(x) is np.ndarray`, which a subclass fails, so normal tensors pay
nothing), and the engine's tensor maker shrinks a full-size MetaArray (an op that allocated
its result) back to zero strides. An op whose forward builds a plain NumPy result from meta
inputs (`np.array(x)`, `np.zeros(shape)` then writes) is caught by an op hook that makes the
output meta and refuses a meta/CPU mix as PyTorch does; the hook is attached while meta arrays
exist (`_live` counts them) and detached when the last one is freed, so a program that never
uses the meta device pays nothing, and one that did pays nothing once it let them go.

This module imports NumPy only (the backend layer): `backend.normalize_device` accepts 'meta',
`backend.xp_for_device('meta')` is `meta.xp` (creation and random draws without allocation) and
`backend.to_device` moves to and refuses to move out of the meta device. The shape rules
live in meta_rules.py. docs/meta_device.md.
"""

from __future__ import annotations

import weakref

import numpy as np

# PyTorch's messages (torch 2.13) for reading the values of a meta tensor.
NO_DATA = "Cannot copy out of meta tensor; no data!"  # .to('cpu'), .cpu(), .tolist()
NO_ITEM = "Tensor.item() cannot be called on meta tensors"  # .item(), bool(), float()
NO_NUMPY = (
    "can't convert meta device type tensor to numpy. Use Tensor.cpu() to copy the tensor to "
    "host memory first."
)


class MetaArray(np.ndarray):
    """An ndarray with zero strides over one element: a shape and a dtype, no data.

    Made by `empty(shape, dtype)`; values are never read (`item`, `tolist`, `bool` raise
    PyTorch's errors) and writes do nothing.
    """

    # -- the ops: shapes and dtypes without computing -------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        try:
            result = _ufunc_result(ufunc, method, inputs, kwargs)
        except _Fallback:
            result = _shrink(getattr(ufunc, method)(*_plain_all(inputs), **kwargs))
        if out is not None:
            # `np.add(a, b, out=a)`: nothing to write. A CPU `out` that an op allocated
            # (np.empty, then np.add(..., out=out)) is left as it is: the op hook (or the
            # tensor maker) makes that op's output meta.
            out = out if isinstance(out, tuple) else (out,)
            return out[0] if len(out) == 1 else out
        return result

    def __array_function__(self, func, types, args, kwargs):
        make = _CREATION_LIKE.get(func)
        if make is not None:
            return make(*args, **kwargs)
        rule = _FUNCTION_RULES.get(func)
        if rule is not None:
            try:
                return rule(*args, **kwargs)
            except _NoRule:
                pass
        if func in _NO_DATA_FUNCTIONS:
            raise _NO_DATA_FUNCTIONS[func]()
        if func is np.copyto:  # a write into a meta array: nothing to write
            if type(args[0]) is MetaArray:
                return None
            raise NotImplementedError(NO_DATA)  # meta values into a CPU array
        return _shrink(func(*_plain_all(args), **{k: _plain(v) for k, v in kwargs.items()}))

    # -- copies and writes --------------------------------------------------------------------
    def copy(self, order="C"):
        return empty(self.shape, self.dtype)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        dtype = np.dtype(dtype)
        if not copy and dtype == self.dtype:
            return self
        np.zeros((), self.dtype).astype(dtype, casting=casting)  # NumPy's casting errors
        return empty(self.shape, dtype)

    # ndarray's own methods of these compute in C without asking __array_function__: the
    # same shape rules as the NumPy functions.
    def cumsum(self, axis=None, dtype=None, out=None):
        return _FUNCTION_RULES[np.cumsum](self, axis=axis, dtype=dtype)

    def cumprod(self, axis=None, dtype=None, out=None):
        return _FUNCTION_RULES[np.cumprod](self, axis=axis, dtype=dtype)

    def argsort(self, axis=-1, kind=None, order=None, *, stable=None):
        return _FUNCTION_RULES[np.argsort](self, axis=axis)

    def sort(self, axis=-1, kind=None, order=None, *, stable=None) -> None:
        pass  # in place: nothing to order

    def argmax(self, axis=None, out=None, *, keepdims=False):
        return _FUNCTION_RULES[np.argmax](self, axis, keepdims=keepdims)

    def argmin(self, axis=None, out=None, *, keepdims=False):
        return _FUNCTION_RULES[np.argmin](self, axis, keepdims=keepdims)

    def ravel(self, order="C"):
        return self.reshape(-1)  # a zero-stride view (ndarray.ravel would copy)

    def flatten(self, order="C"):
        return empty((self.size,), self.dtype)

    def __getitem__(self, key):
        if _has_mask(key):  # the result's length is the count of True values: data
            raise _data_dependent_error()
        shape = _advanced_index_shape(self.shape, key)
        if shape is not None:  # a gather: its shape without gathering
            return empty(shape, self.dtype)
        out = super().__getitem__(_plain(key))
        if not isinstance(out, np.ndarray):  # an element: a 0-d meta array, not a number
            return empty((), self.dtype)
        if type(out) is not MetaArray or any(out.strides):
            return empty(out.shape, out.dtype)  # advanced indexing gathered a copy
        return out

    def __setitem__(self, key, value) -> None:
        pass  # no data to write; the tensor-level op has checked the shapes

    def fill(self, value) -> None:
        pass

    def __copy__(self):
        return empty(self.shape, self.dtype)

    def __deepcopy__(self, memo):
        return empty(self.shape, self.dtype)

    def __reduce__(self):  # pickle the shape and dtype, not shape-many zeros
        return (empty, (self.shape, self.dtype))

    # -- reading values: PyTorch's errors -----------------------------------------------------
    def __bool__(self) -> bool:
        # The ops' own value checks see no bad values, as PyTorch's meta kernels skip them:
        # `if bad.any(): raise` and `if nan.any(): <slow path>` see False, `if not
        # ok.all(): raise` sees True (an `all` reduction's result says True). bool() of a meta
        # tensor still raises PyTorch's error (Tensor.__bool__).
        return self.__dict__.get("_truth", False)

    def __float__(self) -> float:
        # A value an op folds into its (meta) result, e.g. a mean's denominator: nan, which
        # never reaches a user (Tensor.__float__ raises). int() raises: a size taken from data
        # must not be invented.
        return float("nan")

    def __int__(self):
        raise RuntimeError(NO_ITEM)

    def __index__(self):
        raise RuntimeError(NO_ITEM)

    def item(self, *args):
        raise RuntimeError(NO_ITEM)

    def tolist(self):
        raise NotImplementedError(NO_DATA)

    def tobytes(self, order="C"):
        raise NotImplementedError(NO_DATA)

    def __repr__(self) -> str:
        return f"MetaArray(shape={self.shape}, dtype={self.dtype})"

    __str__ = __repr__


# ---------------------------------------------------------------------------------------------
# Making meta arrays, and the op hook that lives as long as they do

_live = 0  # meta arrays (their one-element bases) alive now
_hook_handle = None
_attach_hook = None  # set by the engine (descent.autograd): attach(fn) -> handle


def register_hook_attacher(attach) -> None:
    """Called once by the engine: `attach(forward_hook)` adds an op hook, returns a handle."""
    global _attach_hook
    _attach_hook = attach


def empty(shape, dtype=np.float32) -> MetaArray:
    """A meta array of `shape` and `dtype`: zero strides over one element (no memory)."""
    global _live, _hook_handle
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(n) for n in shape)
    # The one element is owned by a MetaArray, so that NumPy's views of views stop there:
    # `np.asarray(m)` (a plain ndarray, which ops often wrap their results in) keeps a
    # MetaArray as its `.base`, by which the engine's tensor maker recognises it.
    base = np.ndarray.__new__(MetaArray, (1,), dtype)
    np.ndarray.__setitem__(base, 0, 0)  # a defined value (no stray nan warnings)
    arr = np.ndarray.__new__(MetaArray, shape, base.dtype, buffer=base, strides=(0,) * len(shape))
    _live += 1
    weakref.finalize(base, _freed)  # the base lives as long as any view of it
    if _hook_handle is None and _attach_hook is not None:
        _hook_handle = _attach_hook(_op_hook)
    return arr


def _freed() -> None:
    global _live, _hook_handle
    _live -= 1
    if _live == 0 and _hook_handle is not None:
        handle, _hook_handle = _hook_handle, None
        handle.remove()


def is_meta(a) -> bool:
    return type(a) is MetaArray


def _op_hook(op, inputs, out) -> None:
    """After each op while meta arrays exist: an op with a meta input gives a meta output
    (its forward may have built a plain array), and meta does not mix with CPU tensors."""
    meta = other = None
    for t in inputs:
        d = getattr(t, "_data", None)
        if d is None:
            continue
        if type(d) is MetaArray:
            meta = t
        elif d.ndim and other is None:  # a 0-d CPU tensor is a scalar: PyTorch allows it
            other = t
    if meta is None:
        return
    if other is not None:
        first, second = (meta, other) if inputs[0] is meta else (other, meta)
        raise RuntimeError(
            f"Tensor on device {second.device} is not on the expected device {first.device}!"
        )
    for t in out if isinstance(out, (tuple, list)) else (out,):
        d = getattr(t, "_data", None)
        if d is not None and type(d) is not MetaArray and isinstance(d, np.ndarray):
            t._data = empty(d.shape, d.dtype)


# ---------------------------------------------------------------------------------------------
# `xp` for the meta device: what `backend.xp_for_device('meta')` returns


class _MetaRandomGenerator:
    """A random generator whose draws are meta arrays (nothing is drawn)."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def random(self, size=None, dtype=np.float64, out=None):
        return empty(() if size is None else size, dtype)

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        return empty(() if size is None else size, dtype)

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        return empty(() if size is None else size, dtype)

    def uniform(self, low=0.0, high=1.0, size=None):
        return empty(() if size is None else size, np.float64)

    normal = uniform
    exponential = random

    def permutation(self, x):
        n = x if isinstance(x, (int, np.integer)) else len(x)
        return empty((n,), np.int64)

    def __getattr__(self, name):  # any other draw: NumPy's on a throwaway generator, shrunk
        fn = getattr(np.random.default_rng(0), name)
        return lambda *args, **kwargs: _shrink(fn(*args, **kwargs))


class _MetaRandom:
    Generator = _MetaRandomGenerator

    @staticmethod
    def XORWOW(seed=None):  # noqa: N802  (CuPy's bit generator's name, as backend uses it)
        return None

    PCG64 = XORWOW


class _MetaNamespace:
    """NumPy's namespace for the meta device: creation functions return meta arrays without
    allocating; any other function runs NumPy's and shrinks its array results."""

    __name__ = "descent.meta"  # (caches key on `xp.__name__`: never numpy's entries)
    random = _MetaRandom()

    @staticmethod
    def empty(shape, dtype=np.float64, **kwargs):
        return empty(shape, dtype)

    zeros = ones = empty

    @staticmethod
    def full(shape, fill_value, dtype=None, **kwargs):
        if dtype is None:
            dtype = np.asarray(fill_value).dtype
        return empty(shape, dtype)

    @staticmethod
    def asarray(a, dtype=None, **kwargs):
        if type(a) is MetaArray:
            return a if dtype is None else a.astype(dtype)
        a = np.asarray(a, dtype=dtype)
        return empty(a.shape, a.dtype)

    # copies keep only the shape and dtype (np.ascontiguousarray of an im2col view would
    # allocate the whole unfolded input)
    array = ascontiguousarray = asfortranarray = copy = asarray

    def __getattr__(self, name):
        fn = getattr(np, name)
        if not callable(fn) or isinstance(fn, type):
            return fn  # dtypes, constants
        return lambda *args, **kwargs: _shrink(fn(*args, **kwargs))


xp = _MetaNamespace()


# The shape rules (meta_rules.py) make MetaArrays with `empty` above: imported last.
from .meta_rules import (  # noqa: E402
    _CREATION_LIKE,
    _FUNCTION_RULES,
    _NO_DATA_FUNCTIONS,
    _advanced_index_shape,
    _data_dependent_error,
    _Fallback,
    _has_mask,
    _NoRule,
    _plain,
    _plain_all,
    _shrink,
    _ufunc_result,
)
