"""The storage of a jagged nested tensor: what a NestedTensor's `_data` holds instead of an array.

A jagged nested tensor of logical shape (B, j, *rest) (or (B, *lead, j, *rest) after a transpose
of the ragged dim) packs its B sequences into one `values` array whose dim `ragged_idx - 1` is
the packed one (sum of the lengths), exactly as PyTorch's `nt.values()`; sequence b occupies
values[offsets[b] : offsets[b] + length_b] along that dim, where length_b = offsets[b+1] -
offsets[b], or lengths[b] for a non-contiguous tensor (`torch.nested.narrow`: the packed dim
then also holds rows that belong to no sequence).

The storage answers the metadata generic code reads (`shape` with the symbolic ragged size `j`,
`ndim`, `dtype`) and NumPy's ufunc protocol for per-token elementwise work: a ufunc over
storages of the same structure, Python numbers and dense arrays that broadcast over the
non-ragged trailing dims (or (B, 1, ...) arrays, one row per sequence) runs on `values` and gives
a storage. That is how `torch.exp(nt)`, `nt * 2`, `F.gelu(nt)`, `nt + bias` and their backward
passes run through descent's ordinary op classes. With `out=` a storage (the in-place ops' array
path: `nt.mul_(2)`, `nt.add_(other)`) a ufunc writes into that storage's values, and `st[...] = v`
(fill_, zero_, relu_, copy_, ...) writes v (a storage of the same lengths, a number or a dense
array broadcasting as above) into them, so `nt.values()` and its views see it, as in PyTorch.
Sums over the batch and ragged dims (the engine's unbroadcast of a dense operand's gradient) are
answered too. Anything else raises,
naming what was asked and the fix.
"""

from __future__ import annotations

import itertools
from numbers import Number

import numpy as np

from .. import backend

_counter = itertools.count(1)


class NestedInt:
    """The symbolic size of the ragged dim (PyTorch prints it `j1`, `j2`, ...): one per offsets
    tensor, shared by every nested tensor with that structure. Equal only to itself; not an int
    (the lengths differ per sequence: ask `nt.offsets().diff()` or `nt.lengths()`)."""

    __slots__ = ("id",)

    def __init__(self) -> None:
        self.id = next(_counter)

    def __repr__(self) -> str:
        return f"j{self.id}"

    def __int__(self):
        raise RuntimeError(
            f"the ragged size {self!r} of a jagged nested tensor is not an int (each sequence "
            "has its own length); use nt.offsets().diff() or nt.lengths()"
        )

    __index__ = __int__

    def __mul__(self, other):
        if other == 1:
            return self
        raise RuntimeError(f"the ragged size {self!r} of a jagged nested tensor has no value")

    __rmul__ = __mul__


class NestedUnsupportedError(NotImplementedError):
    """An operation that descent's jagged nested tensors do not support."""


class JaggedStorage:
    """values + offsets (+ lengths) of a jagged nested tensor (see the module docstring)."""

    __slots__ = ("values", "offsets", "lengths", "ragged_idx", "j")
    layout_name = "jagged"

    def __init__(self, values, offsets, lengths, ragged_idx: int, j: NestedInt) -> None:
        self.values = values  # backend array; dim ragged_idx - 1 packed
        self.offsets = offsets  # int64 NumPy array (B + 1,)
        self.lengths = lengths  # None (contiguous) or int64 NumPy array (B,)
        self.ragged_idx = ragged_idx
        self.j = j

    def like(self, values, ragged_idx: int | None = None) -> JaggedStorage:
        """Another storage with this structure around `values`."""
        r = self.ragged_idx if ragged_idx is None else ragged_idx
        return JaggedStorage(values, self.offsets, self.lengths, r, self.j)

    # -- metadata ------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        rest = list(self.values.shape)
        rest[self.ragged_idx - 1] = self.j
        return (len(self.offsets) - 1, *rest)

    @property
    def ndim(self) -> int:
        return self.values.ndim + 1

    @property
    def dtype(self):
        return self.values.dtype

    @property
    def size(self) -> int:
        raise unsupported(self, "its element count (the ragged dim has no single size)")

    @property
    def device(self) -> str:
        return backend.device_of(self.values)

    def seq_lengths(self) -> np.ndarray:
        return np.diff(self.offsets) if self.lengths is None else self.lengths

    @property
    def flags(self):
        return self.values.flags

    @property
    def base(self):
        """Not None: the engine copies a storage before keeping it as a leaf's .grad (its
        values may be shared with another gradient)."""
        return self.values

    def same_structure(self, other: JaggedStorage) -> bool:
        return other.j is self.j and other.ragged_idx == self.ragged_idx

    def token_rows(self) -> np.ndarray:
        """The batch index of each row of the packed dim (-1 for rows of no sequence)."""
        n = self.values.shape[self.ragged_idx - 1]
        rows = np.full(n, -1, dtype=np.int64)
        for b, (o, n_b) in enumerate(zip(self.offsets[:-1], self.seq_lengths())):
            rows[o : o + n_b] = b
        return rows

    # -- what the engine and the generic ops ask -----------------------------------------------
    def copy(self) -> JaggedStorage:
        return self.like(self.values.copy())

    def astype(self, dtype, copy: bool = True) -> JaggedStorage:
        return self.like(self.values.astype(dtype, copy=copy))

    def _operand(self, x, ufunc_name: str):
        """x as an array that broadcasts against `values`."""
        if not isinstance(x, JaggedStorage) and isinstance(getattr(x, "_data", None),
                                                           JaggedStorage):  # fmt: skip
            x = x._data  # a nested Tensor passed through as is (clamp_'s bounds)
        if isinstance(x, JaggedStorage):
            if not self.same_structure(x):
                raise RuntimeError(
                    f"cannot call binary pointwise function {ufunc_name} with inputs of shapes "
                    f"{_fmt(self.shape)} and {_fmt(x.shape)} (nested tensors of different "
                    "structures: they must share their offsets)"
                )
            return x.values
        if x is None or isinstance(x, (Number, np.generic)):
            return x
        x = np.asarray(x) if not hasattr(x, "ndim") else x
        # x aligns with the logical shape (B, ..., j, ...) at the right (NumPy's rule): its dim at
        # the ragged position must be 1; a batch dim of size B gives each sequence its own row.
        nd, r, k = self.ndim, self.ragged_idx, x.ndim
        first = nd - k  # the logical dim of x's first dim
        if k > nd or (first <= r and x.shape[r - first] != 1):
            raise _broadcast_error(self, x, ufunc_name)
        if first > 0:  # no batch dim: x lines up with the values' trailing dims
            return x
        if x.shape[0] == 1:
            return x[0]
        if x.shape[0] != len(self.offsets) - 1:
            raise _broadcast_error(self, x, ufunc_name)
        # (B, ..., 1, ...): row b of x for every token of sequence b, the tokens along the
        # values' packed dim (rows of no sequence take row 0: they are never read)
        per_token = x[np.maximum(self.token_rows(), 0)].squeeze(axis=r)  # (T, ...)
        return np.moveaxis(per_token, 0, r - 1)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__":
            raise unsupported(self, f"np.{ufunc.__name__}.{method}")
        out = kwargs.pop("out", None)
        if out is not None:  # an in-place op's array path: write into the out storage's values
            dst = out[0] if isinstance(out, tuple) and len(out) == 1 else out
            if not isinstance(dst, JaggedStorage):
                raise unsupported(self, f"np.{ufunc.__name__} into a dense out=")
            op = f"{_INPLACE_NAMES.get(ufunc.__name__, ufunc.__name__)}_.Tensor"  # PyTorch's
            args = [dst._operand(x, op) if x is not dst else dst.values for x in inputs]
            ufunc(*args, out=dst.values, **kwargs)
            return dst
        args = [self._operand(x, ufunc.__name__) if x is not self else self.values
                for x in inputs]  # fmt: skip
        for x in inputs:  # the structure comes from the storage operands
            if isinstance(x, JaggedStorage):
                self_like = x
                break
        out = ufunc(*args, **kwargs)
        if isinstance(out, tuple):
            return tuple(self_like.like(o) for o in out)
        return self_like.like(out)

    def __array_function__(self, func, types, args, kwargs):
        name = func.__name__
        if name in ("where", "clip", "maximum", "minimum", "copysign", "nan_to_num", "isfinite",
                    "round", "around"):
            storages = [a for a in args if isinstance(a, JaggedStorage)]
            first = storages[0]
            arrs = [first._operand(a, name) if a is not first else first.values for a in args]
            return first.like(func(*arrs, **kwargs))
        if name in ("zeros_like", "ones_like", "empty_like", "full_like", "copy"):
            st = args[0]
            return st.like(func(st.values, *args[1:], **kwargs))
        if name == "sum":
            return args[0].sum(*args[1:], **kwargs)
        raise unsupported(self, f"np.{name}")

    def __array__(self, dtype=None, copy=None):
        raise unsupported(self, "a dense array (np.asarray)")

    def sum(self, axis=None, dtype=None, keepdims: bool = False, **kwargs):
        """Sums that the engine's unbroadcast asks for (dense operands' gradients)."""
        nd, r = self.ndim, self.ragged_idx
        axes = set(range(nd)) if axis is None else {a % nd for a in np.atleast_1d(axis)}
        # values dims: logical dim k >= 1 is values dim k - 1
        vaxes = tuple(sorted(a - 1 for a in axes if a != 0))
        if 0 in axes and r in axes:  # over all the tokens: the valid rows of the packed dim
            v = self.values if self.lengths is None else self._valid_values()
            out = v.sum(axis=vaxes, dtype=dtype, keepdims=keepdims)
            return out[None] if keepdims else out
        if r in axes:  # per sequence: (B, ...)
            seqs = [s.sum(axis=vaxes, dtype=dtype, keepdims=keepdims) for s in self.sequences()]
            out = np.stack(seqs)
            return out.sum(axis=0, keepdims=True) if 0 in axes else out
        if 0 in axes:
            raise unsupported(self, "a sum over the batch dim without the ragged dim")
        return self.like(self.values.sum(axis=vaxes, dtype=dtype, keepdims=keepdims))

    def any(self, axis=None):
        """Whole-tensor tests (kernels branch on them: erf's small-argument series)."""
        if axis is not None:
            raise unsupported(self, "any over an axis")
        return bool(self.values.any())

    def all(self, axis=None):
        if axis is not None:
            raise unsupported(self, "all over an axis")
        return bool(self.values.all())

    def _valid_values(self):
        """The rows of the packed dim that belong to a sequence (a non-contiguous storage)."""
        keep = self.token_rows() >= 0
        return np.compress(keep, self.values, axis=self.ragged_idx - 1)

    def sequences(self) -> list:
        """Each sequence's array (views into `values`), the packed dim at ragged_idx - 1."""
        ax = self.ragged_idx - 1
        out = []
        for o, n in zip(self.offsets[:-1], self.seq_lengths()):
            idx = [slice(None)] * self.values.ndim
            idx[ax] = slice(int(o), int(o) + int(n))
            out.append(self.values[tuple(idx)])
        return out

    def __setitem__(self, key, value) -> None:
        """`st[...] = value`: the whole tensor written in place (see the module docstring)."""
        if key is not Ellipsis:
            raise unsupported(self, f"assignment to [{key!r}]")
        if isinstance(value, JaggedStorage):
            self.check_lengths(value)
            self.values[...] = value.values
            return
        self.values[...] = self._operand(value, "copy_")

    def check_lengths(self, other: JaggedStorage) -> None:
        """PyTorch's copy_ takes another structure whose sequences have these lengths (its
        values in order); anything else raises its error."""
        if other.ragged_idx != self.ragged_idx or other.values.shape != self.values.shape \
                or not np.array_equal(other.seq_lengths(), self.seq_lengths()):  # fmt: skip
            raise RuntimeError(
                f"copy_(): expected compatible input and src shapes, but got: "
                f"{_fmt(self.shape)} and {_fmt(other.shape)} (nested tensors whose sequences "
                "have different lengths)"
            )

    def reshape(self, *shape):
        shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
        if tuple(shape) == self.shape:
            return self
        raise unsupported(self, f"reshape to {shape}")

    # Python operators: the ufuncs (gradient accumulation is `prev + gx`)
    def __add__(self, other):
        return np.add(self, other)

    __radd__ = __add__

    def __mul__(self, other):
        return np.multiply(self, other)

    __rmul__ = __mul__

    def __sub__(self, other):
        return np.subtract(self, other)

    def __rsub__(self, other):
        return np.subtract(other, self)

    def __truediv__(self, other):
        return np.true_divide(self, other)

    def __rtruediv__(self, other):
        return np.true_divide(other, self)

    def __floordiv__(self, other):  # remainder's gradient for the divisor: -(a // b)
        return np.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return np.floor_divide(other, self)

    def __neg__(self):
        return np.negative(self)

    def __pow__(self, other):
        return np.power(self, other)

    def __and__(self, other):
        return np.logical_and(self, other) if self.dtype == bool else np.bitwise_and(self, other)

    def __or__(self, other):
        return np.logical_or(self, other) if self.dtype == bool else np.bitwise_or(self, other)

    def __rpow__(self, other):
        return np.power(other, self)

    def __rand__(self, other):
        return self.__and__(other)

    def __ror__(self, other):
        return self.__or__(other)

    def __invert__(self):
        return np.invert(self)

    def __abs__(self):
        return np.absolute(self)

    def __gt__(self, other):
        return np.greater(self, other)

    def __lt__(self, other):
        return np.less(self, other)

    def __ge__(self, other):
        return np.greater_equal(self, other)

    def __le__(self, other):
        return np.less_equal(self, other)

    # elementwise, as NumPy's (torch.remainder's `(b < 0) != (m < 0)` compared two storages by
    # identity before: always True, so remainder(nt, nt) added b everywhere)
    def __eq__(self, other):
        return np.equal(self, other)

    def __ne__(self, other):
        return np.not_equal(self, other)

    __hash__ = object.__hash__  # identity, as before (__eq__ alone would unset it)

    def __getattr__(self, name):
        if name.startswith("__"):  # protocol probes (hasattr, copy, NumPy): plainly absent
            raise AttributeError(name)
        raise unsupported(self, f"the array attribute {name!r}")

    def __repr__(self) -> str:
        return f"JaggedStorage(shape={_fmt(self.shape)}, offsets={self.offsets.tolist()})"


# NumPy's ufunc names -> PyTorch's (its error names the in-place overload: `mul_.Tensor`)
_INPLACE_NAMES = {"multiply": "mul", "subtract": "sub", "true_divide": "div"}


def _fmt(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def unsupported(storage, what: str) -> NestedUnsupportedError:
    return NestedUnsupportedError(
        f"not supported for a jagged nested tensor (shape {_fmt(storage.shape)}): {what}. "
        "Supported: per-token elementwise ops, linear/matmul and norms over the last dim, "
        "softmax, sum/mean over dims 1 and -1, transpose(1, 2), view of the last dims, cat/"
        "chunk/split on the last dim, scaled_dot_product_attention (docs/nested.md); or work "
        "on nt.values() / nt.unbind() / nt.to_padded_tensor(0.0)"
    )


def _broadcast_error(st, x, op: str) -> RuntimeError:
    return RuntimeError(
        f"{op}: cannot broadcast a dense tensor of shape {tuple(x.shape)} with a jagged nested "
        f"tensor of shape {_fmt(st.shape)}: a dense operand must broadcast over the dims after "
        "the ragged one, or be (B, 1, ...) with one row per sequence"
    )
