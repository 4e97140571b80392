"""NestedTensor: the Tensor subclass of jagged nested tensors (layout `descent.jagged`).

A nested tensor IS a `descent.Tensor` (the same slots and engine fields) whose `_data` is a
`JaggedStorage` (storage.py). The engine gives every tensor made around such a storage this
class (`autograd.register_storage_class`), so op outputs, leaf gradients and `detach()` of
nested tensors are nested tensors too.

Autograd runs through two view ops, `NestedViewFromJagged` (values Tensor -> nested tensor) and
`NestedGetValues` (nested tensor -> its values Tensor), each the other's backward. A structural or
per-sequence op (linear, the norms, softmax over the ragged dim, attention, ragged sums) is a
composite: it takes the values as a dense Tensor, runs descent's dense differentiable ops on them
(per token on the packed values, or per sequence on their slices), and wraps the result back.
Its gradients therefore are those of the dense computation, sequence by sequence.
"""

from __future__ import annotations

import numpy as np

from .. import autograd
from ..autograd import Function
from ..tensor import Size, Tensor, _new_size
from ..tensor_gap_methods_tensor import jagged
from .storage import JaggedStorage, NestedInt, NestedUnsupportedError, _fmt, unsupported

# offsets Tensor -> its nested int, so nested tensors built on one offsets tensor share `j`
# (PyTorch's registry); kept in the offsets tensor's own __dict__, so it dies with it.
_J_ATTR = "_descent_nested_int"


def nested_int_for(offsets: Tensor) -> NestedInt:
    j = offsets.__dict__.get(_J_ATTR)
    if j is None:
        j = offsets.__dict__[_J_ATTR] = NestedInt()
    return j


class NestedViewFromJagged(Function):
    """values -> nested tensor (a view, PyTorch's NestedViewFromJaggedBackward0): the gradient
    of the values is the nested gradient's values."""

    __slots__ = ("offsets", "lengths", "ragged_idx", "j")
    differentiable_backward = True

    def forward(self, values):
        return JaggedStorage(values, self.offsets, self.lengths, self.ragged_idx, self.j)

    def backward(self, gy, ops):
        if ops.is_graph:
            return NestedGetValues.apply(gy)
        return gy.values


class NestedGetValues(Function):
    """nested tensor -> its values (PyTorch's NestedGetValuesBackward0): the gradient of the
    nested tensor is the values' gradient with its structure."""

    __slots__ = ("offsets", "lengths", "ragged_idx", "j")
    differentiable_backward = True

    def forward(self, st):
        self.offsets, self.lengths, self.ragged_idx, self.j = (
            st.offsets, st.lengths, st.ragged_idx, st.j)  # fmt: skip
        return st.values

    def backward(self, gy, ops):
        if ops.is_graph:
            return NestedViewFromJagged.apply(
                gy, offsets=self.offsets, lengths=self.lengths, ragged_idx=self.ragged_idx,
                j=self.j)  # fmt: skip
        return JaggedStorage(gy, self.offsets, self.lengths, self.ragged_idx, self.j)


def wrap_values(values: Tensor, like, ragged_idx: int | None = None) -> NestedTensor:
    """A nested tensor with `like`'s structure (a NestedTensor or a JaggedStorage) around the
    dense Tensor `values` (recorded: gradients reach `values`)."""
    st = like._data if isinstance(like, Tensor) else like
    r = st.ragged_idx if ragged_idx is None else ragged_idx
    return NestedViewFromJagged.apply(values, offsets=st.offsets, lengths=st.lengths, ragged_idx=r,
                                j=st.j)  # fmt: skip


class NestedTensor(Tensor):
    """A jagged nested tensor: B sequences of shape (length_b, *rest) packed into one values
    tensor; make one with `descent.nested.nested_tensor([...], layout=descent.jagged)`
    (docs/nested.md)."""

    __slots__ = ()
    _nested_layout = True

    # -- what a nested tensor is -----------------------------------------------------------
    @property
    def layout(self):
        return jagged

    @property
    def is_nested(self) -> bool:
        return True

    @property
    def _ragged_idx(self) -> int:
        return self._data.ragged_idx

    @property
    def shape(self):
        return _new_size(Size, self._data.shape)

    def size(self, dim: int | None = None):
        shape = self._data.shape
        if dim is None:
            return _new_size(Size, shape)
        if not -len(shape) <= dim < len(shape):
            raise IndexError(
                f"Dimension out of range (expected to be in range of [{-len(shape)}, "
                f"{len(shape) - 1}], but got {dim})"
            )
        return shape[dim]

    def numel(self) -> int:
        st = self._data
        return int(np.prod(st.values.shape)) if st.lengths is None else int(
            st._valid_values().size)  # fmt: skip

    def is_contiguous(self, memory_format=None) -> bool:
        # PyTorch: contiguous when there are no holes (no lengths) and the values are
        # contiguous (a transpose of the ragged dim is not)
        st = self._data
        return st.lengths is None and bool(st.values.flags.c_contiguous)

    def values(self) -> Tensor:
        """The packed values (a view, differentiable: the gradient reaches this tensor)."""
        return NestedGetValues.apply(self)

    def offsets(self) -> Tensor:
        return Tensor._wrap(self._data.offsets)

    def lengths(self):
        st = self._data
        return None if st.lengths is None else Tensor._wrap(st.lengths)

    def unbind(self, dim: int = 0) -> tuple:
        """The sequences as dense tensors (views of the values; differentiable)."""
        if dim != 0:
            raise RuntimeError("unbind(): only supported for NestedTensor on dim=0 currently")
        from . import functional  # noqa: PLC0415 - functional.py imports this module

        return tuple(functional.sequences(self))

    def to_padded_tensor(self, padding: float, output_size=None) -> Tensor:
        from . import functional  # noqa: PLC0415

        return functional.to_padded_tensor(self, padding, output_size)

    def contiguous(self, memory_format=None) -> NestedTensor:
        from . import functional  # noqa: PLC0415

        return functional.contiguous(self)

    def numpy(self, *, force: bool = False):
        raise TypeError(
            "numpy(): a jagged nested tensor has no dense array; use nt.values().numpy() or "
            "nt.to_padded_tensor(0.0).numpy()"
        )

    def tolist(self):
        return [s.tolist() for s in self.unbind()]

    def item(self):
        raise unsupported(self._data, "item()")

    def __repr__(self) -> str:
        st = self._data
        shape = "(" + ", ".join(str(d) for d in st.shape) + ")"
        grad = ", requires_grad=True" if self._rg else ""
        return (f"NestedTensor(size={shape}, offsets={self.offsets()!r}{grad}, "
                f"contiguous={self.is_contiguous()})")  # fmt: skip

    __str__ = __repr__

    def __len__(self) -> int:
        return len(self._data.offsets) - 1

    def __getitem__(self, index):
        if isinstance(index, int):
            return self.unbind()[index]
        raise unsupported(self._data, f"indexing with {index!r}")

    # -- the structural and per-sequence ops (functional.py) -------------------------------
    def transpose(self, dim0, dim1):
        from . import functional  # noqa: PLC0415

        return functional.transpose(self, dim0, dim1)

    swapaxes = swapdims = transpose

    def permute(self, *dims, **kwargs):
        from . import functional  # noqa: PLC0415

        dims = kwargs.get("dims", dims[0] if len(dims) == 1 and not isinstance(dims[0], int)
                          else dims)  # fmt: skip
        return functional.permute(self, tuple(dims))

    def view(self, *shape):
        from . import functional  # noqa: PLC0415

        return functional.view(self, shape)

    reshape = view

    def sum(self, dim=None, keepdim: bool = False, *, dtype=None, axis=None, keepdims=None):
        from . import functional  # noqa: PLC0415

        dim = axis if dim is None else dim
        keepdim = keepdims if keepdims is not None else keepdim
        return functional.reduce(self, "sum", dim, keepdim, dtype)

    def mean(self, dim=None, keepdim: bool = False, *, dtype=None, axis=None, keepdims=None):
        from . import functional  # noqa: PLC0415

        dim = axis if dim is None else dim
        keepdim = keepdims if keepdims is not None else keepdim
        return functional.reduce(self, "mean", dim, keepdim, dtype)

    def softmax(self, dim, dtype=None):
        from . import functional  # noqa: PLC0415

        return functional.softmax(self, dim, dtype, log=False)

    def log_softmax(self, dim, dtype=None):
        from . import functional  # noqa: PLC0415

        return functional.softmax(self, dim, dtype, log=True)

    def matmul(self, other):
        from . import functional  # noqa: PLC0415

        return functional.matmul(self, other)

    __matmul__ = matmul

    # torch.cat / torch.matmul reach these (descent.ops calls a method: it never imports
    # descent.nested, which sits above it)
    def _nested_cat(self, tensors, dim):
        from . import functional  # noqa: PLC0415

        return functional.cat(tensors, dim)

    def _nested_matmul(self, a, b):
        from . import functional  # noqa: PLC0415

        return functional.matmul(a, b)

    def chunk(self, chunks: int, dim: int = 0):
        from . import functional  # noqa: PLC0415

        return functional.chunk(self, chunks, dim)

    def split(self, split_size, dim: int = 0):
        from . import functional  # noqa: PLC0415

        return functional.split(self, split_size, dim)

    def unsqueeze(self, dim):
        raise unsupported(self._data, "unsqueeze")

    def flatten(self, *args, **kwargs):
        raise unsupported(self._data, "flatten")

    # -- in place --------------------------------------------------------------------------
    # The elementwise in-place ops (`mul_`, `add_`, `relu_`, `exp_`, `clamp_`, `fill_`, `zero_`,
    # `x += y`, ...) are the dense ones: they write into the storage (storage.py's out= and
    # `st[...] = v`) or, when recorded, rebind the tensor, as for any tensor. These differ.
    def copy_(self, src, non_blocking: bool = False) -> NestedTensor:
        """Copy another jagged nested tensor's values in, as PyTorch: its sequences must have
        these lengths (its offsets may be another tensor); a dense source is refused."""
        from ..ops.elementwise import cast, clone  # noqa: PLC0415
        from ..ops.inplace import _check_leaf_inplace, _rebind, _records  # noqa: PLC0415
        from ..ops.inplace import copy_ as dense_copy_  # noqa: PLC0415

        if not isinstance(src, NestedTensor):
            raise ValueError(
                "NestedTensor copy_default(self: jt_all, src: jt_all, non_blocking: any?): "
                "expected src to be a jagged layout NestedTensor (descent, as PyTorch, copies "
                "only another nested tensor in; for a dense one: nt.values().copy_(...))"
            )
        _check_leaf_inplace(self, "copy_")
        st, other = self._data, src._data
        if _records(self, src):  # src's values in this structure (the lengths checked first)
            st.check_lengths(other)
            new = wrap_values(clone(cast(src.values(), self.dtype)), self)
            return _rebind(self, new)
        return dense_copy_(self, src) if st.same_structure(other) else _copy_values(self, src)

    def fill_(self, value) -> NestedTensor:
        if isinstance(value, Tensor):
            raise _refused(self, "fill_", "Tensor")
        from ..ops.inplace import fill_ as dense_fill_  # noqa: PLC0415

        return dense_fill_(self, value)

    def xlogy_(self, other) -> NestedTensor:
        if not isinstance(other, Tensor):
            raise _refused(self, "xlogy_", "Scalar_Other")
        from ..special_torch import xlogy_  # noqa: PLC0415

        return xlogy_(self, other)

    def masked_fill_(self, mask, value) -> NestedTensor:
        raise _refused(self, "masked_fill_", "Tensor" if isinstance(value, Tensor) else "Scalar")

    def bernoulli_(self, p=0.5, *, generator=None) -> NestedTensor:
        raise _refused(self, "bernoulli_", "Tensor" if isinstance(p, Tensor) else "float")

    def scatter_(self, dim, index, src=None, *, value=None, reduce=None) -> NestedTensor:
        raise _refused(self, "scatter_", "src" if isinstance(src, Tensor) else "value")

    def detach_(self) -> NestedTensor:
        raise RuntimeError(
            "Can't detach views in-place. Use detach() instead (a jagged nested tensor is a "
            "view of its values, as in PyTorch)"
        )


def _values_call(self, fn, args, kwargs) -> NestedTensor:
    """fn(*args, **kwargs) over the packed values of the nested arguments, with self's structure
    (ops/nested_values.py, and the methods below). Recorded: NestedGetValues /
    NestedViewFromJagged carry the gradient. Nested arguments must share self's structure;
    dense ones must broadcast over the trailing dims, where the values and the nested tensor
    agree."""
    st = self._data
    name = getattr(fn, "__name__", "op")

    def values_of(a):
        if isinstance(a, NestedTensor):
            if not st.same_structure(a._data):
                raise RuntimeError(
                    f"cannot call binary pointwise function {name} with inputs of shapes "
                    f"{_fmt(st.shape)} and {_fmt(a._data.shape)} (two nested structures)")
            return a.values()
        if isinstance(a, Tensor) and a.dim() and (st.ragged_idx != 1 or a.dim() >= st.ndim):
            raise unsupported(st, f"{name} with a dense tensor of shape {tuple(a.shape)} "
                                  "(one broadcasting over the trailing dims is)")
        return a

    out = fn(*[values_of(a) for a in args], **{k: values_of(v) for k, v in kwargs.items()})
    return wrap_values(out, self)


NestedTensor._values_call = _values_call


def _per_values(name: str, dense_ok: bool = False):
    """A method running the dense op on the packed values (torch's jagged layout has it as a
    pointwise op; descent's kernel takes dense arrays only: np.asarray, ravel, its element
    count). dense_ok: without a nested argument the dense method (the storage's ufuncs) runs,
    as before (`nt.pow(2)`)."""
    dense = getattr(Tensor, name)

    def method(self, *args, **kwargs):
        if dense_ok and not any(isinstance(a, NestedTensor) for a in (*args, *kwargs.values())):
            return dense(self, *args, **kwargs)
        return self._values_call(dense, (self, *args), kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"Tensor.{name} on the packed values (a jagged nested tensor)."
    return method


# The elementwise ops whose kernels need dense arrays; their in-place forms (erfc_, lgamma_,
# igamma_, ...) run these methods (inplace_unary.py), so they work too.
for _name in ("erf", "erfc", "erfinv", "lgamma", "digamma", "i0", "polygamma", "mvlgamma",
              "igamma", "igammac", "nextafter", "heaviside"):  # fmt: skip
    setattr(NestedTensor, _name, _per_values(_name))
for _name in ("pow", "float_power"):  # nested exponents only
    setattr(NestedTensor, _name, _per_values(_name, dense_ok=True))
del _name


def _refused(t: NestedTensor, op: str, overload: str = "default") -> NestedUnsupportedError:
    """PyTorch's NotImplementedError for an in-place op its jagged layout lacks (its message
    first: `aten.abs_.default`), with the fix."""
    if op in _STRUCTURAL:
        fix = "use the out-of-place op, or work on nt.unbind()"
    else:
        fix = f"apply it to the packed values, which the nested tensor views: nt.values().{op}(...)"
    return NestedUnsupportedError(
        f"aten.{op}.{overload}: not supported for a jagged nested tensor (shape "
        f"{_fmt(t._data.shape)}), as in PyTorch 2.13; {fix}"
    )


# (in-place ops that change the shape or the memory: nt.values() is no way around them)
_STRUCTURAL = frozenset({"squeeze_", "unsqueeze_", "t_", "transpose_", "resize_", "resize_as_",
                         "set_"})  # fmt: skip


def _copy_values(t: NestedTensor, src: NestedTensor) -> NestedTensor:
    """copy_ from another structure of the same lengths, unrecorded: its values written in."""
    from ..ops.inplace import _written  # noqa: PLC0415

    t._data[...] = src._data  # (checks the lengths)
    _written(t)
    return t


def _refusing(op: str, overload: str = "default", by_arg: bool = False):
    """A method raising `_refused` (by_arg: the overload is .Tensor for a tensor argument,
    .Scalar otherwise, as PyTorch names them)."""

    def method(self, *args, **kwargs):
        ov = overload
        if by_arg:
            ov = "Tensor" if args and isinstance(args[0], Tensor) else "Scalar"
        raise _refused(self, op, ov)

    method.__name__ = op
    method.__doc__ = f"Refused for a jagged nested tensor, as PyTorch's aten.{op}."
    return method


# PyTorch 2.13's jagged layout has no kernel for these in-place ops (its NotImplementedError);
# descent's dense ones would run on the storage, so they are refused here to match.
for _name, _op, _ov, _by_arg in (
    [(n, "abs_", "default", False) for n in ("abs_", "absolute_")]
    + [(n, n, "default", False) for n in ("addcmul_", "addcdiv_", "cauchy_", "exponential_",
                                          "geometric_", "log_normal_", "normal_", "uniform_",
                                          "random_", "heaviside_", "gcd_", "lcm_", "index_add_",
                                          "squeeze_", "unsqueeze_", "t_", "tril_", "triu_",
                                          "resize_", "resize_as_", "set_")]  # fmt: skip
    + [(n, "transpose_", "default", False) for n in ("transpose_", "swapaxes_", "swapdims_")]
    + [(n, "floor_divide_", "Tensor", False) for n in ("floor_divide_",)]
    + [(n, "copysign_", None, True) for n in ("copysign_",)]
    + [(n, c, None, True) for c, names in (
        ("eq_", ("eq_",)), ("ne_", ("ne_", "not_equal_")), ("lt_", ("lt_", "less_")),
        ("le_", ("le_", "less_equal_")), ("gt_", ("gt_", "greater_")),
        ("ge_", ("ge_", "greater_equal_"))) for n in names]  # fmt: skip
):
    setattr(NestedTensor, _name, _refusing(_op, _ov, _by_arg))
del _name, _op, _ov, _by_arg


autograd._register_storage_class(JaggedStorage, NestedTensor)
