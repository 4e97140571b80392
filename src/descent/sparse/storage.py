"""The storage of a sparse tensor: what a sparse Tensor's `_data` holds instead of an array.

A dense Tensor's `_data` is a NumPy/CuPy array, and every op computes on it. A sparse tensor's
`_data` is one of the small objects below: the COO storage (`indices` (sparse_dim, nnz) int64,
`values` (nnz, *dense_dims), the dense `shape`) or the CSR storage (`crow`, `col`, `values`).
They answer the metadata that generic code reads (`shape`, `ndim`, `dtype`, `size`) and the few
array operations whose sparse meaning is unambiguous (`astype`, `copy`, adding two sparse
gradients, negation, scaling by a number, a full `sum`), so that the engine accumulates sparse
gradients and the generic ops `neg`, `mul`/`div` by a number, `to(dtype)`, `clone`, `detach`
and `sum()` run on them through the ordinary op machinery.

Everything else FAILS LOUDLY: NumPy's protocols (`__array__`, `__array_ufunc__`,
`__array_function__`), indexing, comparisons, `@` and any other attribute raise
`SparseUnsupportedError`, naming the op that reached the storage, the tensor's shape and the
fix (`.to_dense()`). An op that does not know sparse tensors therefore raises instead of
computing a silently wrong result, and the dense hot paths carry no sparse check at all
(docs/sparse.md, "Design").
"""

from __future__ import annotations

import math
import sys
from numbers import Number

import numpy as np

from .. import backend
from ..tensor_gap_methods_tensor import sparse_coo, sparse_csr


class SparseUnsupportedError(NotImplementedError):
    """An operation that descent's sparse tensors do not support (PyTorch raises
    NotImplementedError for an op without a sparse kernel, too)."""


# What the message lists as supported (docs/sparse.md has the full table).
_SUPPORTED = (
    "to_dense, coalesce, indices/values, t/transpose/permute/unsqueeze, select/index_select/"
    "narrow_copy, cat/stack of sparse tensors, sparse + sparse, * by a number, a dense "
    "or a sparse tensor, / by a number, positive powers, functions with f(0) = 0 (abs, sqrt, "
    "sin, tanh, relu, ...), isnan/isinf, sum, torch.sparse.sum/mm/addmm/softmax/log_softmax, "
    "mm/matmul/@ with a dense or a sparse matrix"
)


# Function names of decorators' inner functions: never the name of an op
_WRAPPERS = {"wrapper", "inner", "decorate_context", "_fn", "<lambda>", "<genexpr>",
             "<listcomp>", "<dictcomp>", "fn"}  # fmt: skip


def _op_name() -> str:
    """The descent op whose code touched the storage: the nearest frame running a Function
    method (its class name), else the outermost descent function outside descent.sparse (the
    one the user called). Only computed when an error is raised."""
    from ..autograd import Function  # noqa: PLC0415 - only on the error path

    frame = sys._getframe(2)
    fallback = None
    while frame is not None:
        self = frame.f_locals.get("self")
        if isinstance(self, Function):
            return type(self).__name__
        module = frame.f_globals.get("__name__", "")
        name = frame.f_code.co_qualname
        if (module.startswith("descent.") and not module.startswith("descent.sparse")
                and name.rpartition(".")[2] not in _WRAPPERS):  # fmt: skip
            cls, _, meth = name.rpartition(".")
            # Tensor's mixin groups (ReductionMethods, TorchMethods, ...) are Tensor's methods
            fallback = f"Tensor.{meth}" if cls.rstrip("0123456789").endswith("Methods") else name
        frame = frame.f_back
    return fallback or "this operation"


def unsupported(storage, what: str, op: str | None = None) -> SparseUnsupportedError:
    """The loud error: the op, what it asked of the storage, the shape and the fix."""
    op = op or _op_name()
    kind = storage.layout.name.split("_", 1)[1].upper()  # COO, CSR, CSC, BSR
    return SparseUnsupportedError(
        f"{op}: not supported for a sparse {kind} tensor (shape {tuple(storage.shape)}, nnz "
        f"{storage.nnz}, layout=torch.{storage.layout.name}; the op asked for {what}). descent's "
        f"sparse tensors support {_SUPPORTED}. Convert first with .to_dense() (and back with "
        ".to_sparse() if needed)"
    )


def is_number(c) -> bool:
    """A Python/NumPy number or a 0-d array: what a sparse tensor may be scaled by."""
    if isinstance(c, (Number, np.generic)) and not isinstance(c, bool):
        return True
    return getattr(type(c), "__module__", "").startswith(("numpy", "cupy")) and c.ndim == 0


# NumPy's unary ufuncs with f(0) = 0: on a sparse tensor they apply to the stored values (after
# coalescing, since f(a + b) is not f(a) + f(b)) and keep the pattern, as PyTorch's sparse
# kernels do. Any other function of a sparse tensor (exp, cos, sigmoid: f(0) != 0) raises.
ZERO_PRESERVING = frozenset({
    "absolute", "fabs", "positive", "sqrt", "cbrt", "sin", "tan", "arcsin", "arctan", "sinh",
    "tanh", "arcsinh", "arctanh", "expm1", "log1p", "sign", "floor", "ceil", "trunc", "rint",
    "deg2rad", "rad2deg", "square", "conjugate",
    # the value tests with f(0) = False: a sparse bool tensor, as PyTorch's
    "isnan", "isinf", "signbit",
})  # fmt: skip
# NumPy functions (not ufuncs) with f(0) = 0 (or False) whatever their keywords: applied to the
# coalesced stored values the same way (torch.isposinf / isneginf / nan_to_num on sparse).
ZERO_PRESERVING_FUNCTIONS = frozenset({np.isposinf, np.isneginf, np.nan_to_num})


class _Flags:
    """`flags` as NumPy's: read by the engine (backend.owns_data) before storing a gradient;
    not writeable, so the engine stores a copy, never an object another gradient shares."""

    __slots__ = ()
    writeable = False
    c_contiguous = True
    f_contiguous = False
    owndata = True


_FLAGS = _Flags()


class _Storage:
    """What both layouts share: the metadata, and the loud refusal of everything else."""

    __slots__ = ()
    base = None  # never a view of another array (backend.owns_data, autograd.mark_view read it)
    flags = _FLAGS
    __hash__ = object.__hash__  # __eq__ raises below; storages are hashed by identity

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def dtype(self):
        return self.values.dtype

    @property
    def size(self) -> int:
        """The dense element count (PyTorch's numel of a sparse tensor)."""
        return math.prod(self.shape)

    @property
    def device(self) -> str:
        return backend.device_of(self.values)

    # -- the loud refusal ---------------------------------------------------------------
    def __getattr__(self, name: str):
        if name.startswith("__"):  # protocol probes (NumPy's __array_interface__, ...)
            raise AttributeError(name)
        raise unsupported(self, f"the array attribute {name!r}")

    def __array__(self, *args, **kwargs):
        raise unsupported(self, "its values as a dense NumPy array")

    def __array_function__(self, func, types, args, kwargs):
        if func is np.zeros_like and self.layout is sparse_coo:  # a known-zero gradient
            return self.empty_like(kwargs.get("dtype") or self.dtype)
        if func is np.where and self.layout is sparse_coo:
            from .masks import where  # noqa: PLC0415 - backward formulas' masks (masks.py)

            return where(*args, **kwargs)
        if (func in ZERO_PRESERVING_FUNCTIONS or func in (np.round, np.around)) and (
            self.layout is sparse_coo and args[0] is self
        ):
            from .kernels import coalesce  # noqa: PLC0415 - round(0) = 0: the stored values

            c = coalesce(self)
            return CooStorage(c.indices, func(c.values, *args[1:], **kwargs), c.shape, True)
        raise unsupported(self, f"NumPy's {func.__name__}")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        if method == "__call__" and out is not None and self.layout is sparse_coo:
            done = _inplace(self, ufunc.__name__, inputs, out[0])
            if done is not None:
                return done
        if method == "__call__" and not kwargs and self.layout is sparse_coo:
            name = ufunc.__name__
            if len(inputs) == 1:
                if name == "negative":
                    return -self
                if name in ZERO_PRESERVING:  # f(0) = 0: f of the (summed) stored values
                    from .kernels import coalesce  # noqa: PLC0415

                    c = coalesce(self)
                    return CooStorage(c.indices, ufunc(c.values), c.shape, True)
            a, b = inputs if len(inputs) == 2 else (None, None)
            other = b if a is self else a
            if name == "add" and a is not None:
                return a.__add__(b) if a is self else self.__radd__(a)
            if name == "multiply" and a is not None:
                return self * other
            if name in ("true_divide", "divide") and a is self:
                return self / b
            if name == "power" and a is self and is_number(b) and b > 0:  # 0 ** b = 0
                from .kernels import coalesce  # noqa: PLC0415

                c = coalesce(self)
                return CooStorage(c.indices, c.values**b, c.shape, True)
            if name in ("maximum", "minimum") and is_number(other) and other == 0:  # relu
                from .kernels import coalesce  # noqa: PLC0415

                c = coalesce(self)
                return CooStorage(c.indices, ufunc(c.values, other), c.shape, True)
        raise unsupported(self, f"NumPy's {ufunc.__name__}")

    def _refuse(self, *args, **kwargs):
        raise unsupported(self, "an elementwise or indexing operation")

    def _compare(self, other, op):
        """`storage <op> c`: a comparison MASK (masks.py) for backward formulas such as relu's
        where(y <= 0, 0, gy). PyTorch has no sparse comparison, so only two callers get one:
        a backward pass (an op's `backward` or a helper of descent.array_backward), and the
        nan test `s == s` (sign's). The user's comparisons reach the storage as NumPy ufuncs
        (descent.ops.comparison) and raise there; a forward such as leaky_relu's
        where(x > 0, ...) raises here, as PyTorch's does."""
        caller = sys._getframe(2)  # the code that wrote `storage <op> c`
        if self.layout is sparse_coo and (
            other is self or caller.f_code.co_name == "backward"
            or caller.f_globals.get("__name__") == "descent.array_backward"
        ):  # fmt: skip
            from .masks import compare  # noqa: PLC0415

            mask = compare(self, other, op)
            if mask is not None:
                return mask
        raise unsupported(self, f"a comparison with a {type(other).__name__}")

    __getitem__ = __setitem__ = __iter__ = __len__ = _refuse

    def __eq__(self, other):  # type: ignore[override]
        return self._compare(other, "eq")

    def __ne__(self, other):  # type: ignore[override]
        return self._compare(other, "ne")

    def __lt__(self, other):
        return self._compare(other, "lt")

    def __le__(self, other):
        return self._compare(other, "le")

    def __gt__(self, other):
        return self._compare(other, "gt")

    def __ge__(self, other):
        return self._compare(other, "ge")

    __matmul__ = __rmatmul__ = __rpow__ = __mod__ = __floordiv__ = _refuse
    __and__ = __or__ = __xor__ = __invert__ = __abs__ = __rtruediv__ = _refuse
    __bool__ = __float__ = __int__ = __index__ = __complex__ = _refuse

    def __add__(self, other):
        raise unsupported(self, f"+ with a {type(other).__name__}")

    __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __add__

    def __neg__(self):
        raise unsupported(self, "negation")

    def __pow__(self, c):
        if self.layout is sparse_coo and is_number(c) and c > 0:  # 0 ** c = 0
            return np.power(self, c)
        raise unsupported(self, f"** {c!r} (only a positive power keeps zeros zero)")


def _inplace(storage, name: str, inputs, out):
    """The in-place ops PyTorch has for sparse COO tensors, as the in-place ops reach them
    (`ufunc(t, other, out=t)`), or None: a dense tensor plus or minus a sparse one
    (`p.add_(grad, alpha=-lr)` in an optimizer's sparse branch: each stored entry added at its
    coordinates, in order, as PyTorch's add_out_dense_sparse), a sparse tensor scaled by a
    number (`grad.mul_(c)`, `div_`), a sparse tensor plus or minus a sparse one (concatenated,
    or merged when both are coalesced, as `+`)."""
    if len(inputs) != 2 or out is not inputs[0]:
        return None
    a, b = inputs
    if b is storage and (isinstance(a, np.ndarray) or backend.is_cupy_array(a)):
        if name not in ("add", "subtract") or a.shape != storage.shape:
            return None
        vals = storage.values if name == "add" else -storage.values
        vals = vals.astype(a.dtype, copy=False)
        if storage.sparse_dim == 1:
            backend.scatter_add(a, storage.indices[0], vals)
        else:
            backend.scatter_add(a, tuple(storage.indices), vals)
        return a
    if a is not storage:
        return None
    if name in ("multiply", "true_divide", "divide") and is_number(b):
        new = storage * b if name == "multiply" else storage / b
    elif name in ("add", "subtract") and isinstance(b, CooStorage):
        new = storage + b if name == "add" else storage - b
    else:
        return None
    storage.indices, storage.coalesced = new.indices, new.coalesced
    storage.values = new.values.astype(storage.values.dtype, copy=False)
    return storage


class CooStorage(_Storage):
    """A sparse COO tensor's storage (PyTorch's SparseTensorImpl).

    Attributes:
        indices: int64 array (sparse_dim, nnz): the coordinates of the stored entries in the
            first sparse_dim dimensions (duplicates allowed until coalesced).
        values: array (nnz, *dense_dims): the stored entries (rows of a hybrid tensor).
        shape: the dense shape, sparse dims first: shape[:sparse_dim] + values.shape[1:].
        coalesced: True when indices are sorted lexicographically without duplicates.
    """

    __slots__ = ("indices", "values", "shape", "coalesced")
    layout = sparse_coo

    def __init__(self, indices, values, shape, coalesced: bool = False) -> None:
        self.indices = indices
        self.values = values
        self.shape = tuple(int(s) for s in shape)
        self.coalesced = bool(coalesced)

    @property
    def sparse_dim(self) -> int:
        return self.indices.shape[0]

    @property
    def dense_dim(self) -> int:
        return self.values.ndim - 1

    @property
    def nnz(self) -> int:
        return self.indices.shape[1]

    def __repr__(self) -> str:
        return f"CooStorage(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype})"

    # -- the array operations with an unambiguous sparse meaning --------------------------
    def copy(self) -> CooStorage:
        return CooStorage(self.indices.copy(), self.values.copy(), self.shape, self.coalesced)

    def astype(self, dtype, copy: bool = True) -> CooStorage:
        return CooStorage(self.indices, self.values.astype(dtype), self.shape, self.coalesced)

    def conj(self) -> CooStorage:
        return CooStorage(self.indices, self.values.conj(), self.shape, self.coalesced)

    def empty_like(self, dtype) -> CooStorage:
        """The same shape with no stored entry (a zero sparse tensor)."""
        xp = backend.get_array_module(self.values)
        idx = xp.zeros((self.sparse_dim, 0), dtype=np.int64)
        vals = xp.zeros((0,) + self.values.shape[1:], dtype=dtype)
        return CooStorage(idx, vals, self.shape, True)

    def __add__(self, other):
        from .kernels import add_coo, to_dense  # noqa: PLC0415 - kernels import this module

        if isinstance(other, CooStorage):
            if other.shape != self.shape:
                raise unsupported(self, f"+ with a sparse tensor of shape {other.shape}")
            if other.sparse_dim != self.sparse_dim:  # PyTorch's words
                raise RuntimeError(
                    f"add: expected 'self' and 'other' to have same density, but 'self' has "
                    f"{self.sparse_dim} sparse dimensions while 'other' has {other.sparse_dim} "
                    "sparse dimensions"
                )
            return add_coo(self, other)
        if isinstance(other, np.ndarray) or backend.is_cupy_array(other):
            # sparse + dense is dense (PyTorch's add(dense, sparse)); the engine meets it when
            # a sparse input gets a dense gradient from one consumer and a sparse from another
            return to_dense(self) + other
        raise unsupported(self, f"+ with a {type(other).__name__} (PyTorch: add(sparse, dense) "
                                "is not supported either)")  # fmt: skip

    def __radd__(self, other):
        return self.__add__(other)

    def __sub__(self, other):
        if isinstance(other, CooStorage):
            return self + (-other)
        raise unsupported(self, f"- with a {type(other).__name__}")

    def __neg__(self):
        if self.values.dtype.kind == "b":
            raise unsupported(self, "negation of bool values")
        return CooStorage(self.indices, -self.values, self.shape, self.coalesced)

    def __mul__(self, c):
        if not is_number(c):
            from .kernels import mul_dense, mul_sparse  # noqa: PLC0415

            if isinstance(c, CooStorage):  # the product of the dense forms: the intersection
                return mul_sparse(self, c)
            if isinstance(c, np.ndarray) or backend.is_cupy_array(c):
                return mul_dense(self, c)  # masked by this tensor's pattern (PyTorch's)
            raise unsupported(self, f"* with a {type(c).__name__}")
        return CooStorage(self.indices, self.values * c, self.shape, self.coalesced)

    __rmul__ = __mul__

    def __truediv__(self, c):
        if not is_number(c):
            raise unsupported(self, f"/ by a {type(c).__name__}")
        return CooStorage(self.indices, self.values / c, self.shape, self.coalesced)

    def sum(self, axis=None, keepdims=False, dtype=None):
        """The full sum (a dense 0-d array), as the generic Sum op asks: torch.sum(S) and
        S.sum() are dense. A sum over dims is torch.sparse.sum's (sparse) one."""
        if axis is not None and (not isinstance(axis, tuple) or len(axis) != self.ndim):
            raise unsupported(self, "a sum over some dimensions (use torch.sparse.sum(x, dim) "
                                    "or x.sum(dim), which keep it sparse)")  # fmt: skip
        total = self.values.sum(dtype=dtype)
        xp = backend.get_array_module(self.values)
        total = xp.asarray(total, dtype=dtype or total.dtype)
        return total.reshape((1,) * self.ndim) if keepdims else total


class CsrStorage(_Storage):
    """A sparse CSR matrix's storage (2-d, no dense dims): row pointers `crow` (n + 1,), column
    indices `col` (nnz,), `values` (nnz,), as PyTorch's SparseCsrTensorImpl."""

    __slots__ = ("crow", "col", "values", "shape")
    layout = sparse_csr

    def __init__(self, crow, col, values, shape) -> None:
        self.crow, self.col, self.values = crow, col, values
        self.shape = tuple(int(s) for s in shape)

    @property
    def nnz(self) -> int:
        return self.col.shape[0]

    def __repr__(self) -> str:
        return f"CsrStorage(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype})"

    def copy(self) -> CsrStorage:
        return CsrStorage(self.crow.copy(), self.col.copy(), self.values.copy(), self.shape)

    def astype(self, dtype, copy: bool = True) -> CsrStorage:
        return CsrStorage(self.crow, self.col, self.values.astype(dtype), self.shape)
