"""torch.nested with the jagged layout: variable-length batches as one packed values tensor plus
offsets (docs/nested.md). Loaded on first use of `descent.nested`.

    >>> import descent as torch
    >>> nt = torch.nested.nested_tensor([torch.randn(2, 4), torch.randn(3, 4)],
    ...                                 layout=torch.jagged)
    >>> nt.shape
    descent.Size([2, j1, 4])
"""

from __future__ import annotations

import numpy as _np

from .. import autograd as _autograd
from ..tensor import Tensor
from ..tensor_gap_methods_tensor import jagged as _jagged
from ..tensor_gap_methods_tensor import strided as _strided
from . import functional as _f
from .storage import JaggedStorage as _JaggedStorage
from .storage import NestedInt, NestedUnsupportedError
from .tensor import NestedTensor
from .tensor import nested_int_for as _nested_int_for
from .tensor import wrap_values as _wrap_values

__all__ = ["to_padded_tensor", "as_nested_tensor", "nested_tensor", "nested_tensor_from_jagged",
           "narrow", "masked_select", "NestedTensor", "NestedInt",
           "NestedUnsupportedError"]  # fmt: skip


def _check_layout(layout, op: str) -> None:
    if layout is None or layout is _strided:
        raise NotImplementedError(
            f"{op}: descent has no strided nested tensors (PyTorch's default layout); pass "
            "layout=torch.jagged (the layout PyTorch recommends for new code)"
        )
    if layout is not _jagged:
        raise RuntimeError(f"{op}: Specified layout is unsupported for nested tensors: {layout}")


def _offsets_from_lengths(lengths) -> _np.ndarray:
    return _np.concatenate([[0], _np.cumsum(lengths)]).astype(_np.int64)


def _from_list(ts, dtype, device, op: str) -> tuple:
    """The values Tensor (cat of the components, recorded) and the offsets array."""
    from .. import ops  # noqa: PLC0415

    if isinstance(ts, tuple):
        ts = list(ts)
    if not isinstance(ts, list):
        raise TypeError(f"{op}(): Expected first argument to be a tensor or a list / tuple of "
                        f"tensors, got {type(ts).__name__}")  # fmt: skip
    if not ts:
        raise RuntimeError("Cannot construct a nested tensor from an empty tensor list")
    ts = [t if isinstance(t, Tensor) else ops.shape.as_tensor(t) for t in ts]
    shapes = [tuple(t.shape) for t in ts]
    if any(len(s) == 0 for s in shapes) or len({s[1:] for s in shapes}) != 1 or len(
            {len(s) for s in shapes}) != 1:  # fmt: skip
        raise RuntimeError(
            "Cannot represent given tensor list as a nested tensor with the jagged layout. Note "
            "that the jagged layout only allows for a single ragged dimension. For example: "
            "(B, *, D_0, D_1, ..., D_N), with ragged * dim."
        )
    if dtype is not None:
        ts = [t.to(dtype) for t in ts]
    if device is not None:
        ts = [t.to(device) for t in ts]
    values = ops.shape.cat(ts, 0)
    return values, _offsets_from_lengths([s[0] for s in shapes])


def _make(values: Tensor, offsets: _np.ndarray, lengths=None, ragged_idx: int = 1,
          j: NestedInt | None = None) -> NestedTensor:  # fmt: skip
    st = _JaggedStorage(None, offsets, lengths, ragged_idx, j or NestedInt())
    return _wrap_values(values, st, ragged_idx)


def nested_tensor(tensor_list, *, dtype=None, layout=None, device=None, requires_grad=False,
                  pin_memory=False) -> NestedTensor:  # fmt: skip
    """A nested tensor holding copies of the tensors in `tensor_list` (a leaf: no history)."""
    _check_layout(layout, "nested_tensor")
    values, offsets = _from_list(tensor_list, dtype, device, "nested_tensor")
    st = _JaggedStorage(values._data.copy(), offsets, None, 1, NestedInt())
    return _autograd._new_tensor(st, bool(requires_grad))


def as_nested_tensor(ts, dtype=None, device=None, layout=None) -> NestedTensor:
    """A nested tensor from a list of tensors (gradients flow back to them) or from a dense
    tensor (B, S, ...) (a view: each of its B rows is a sequence of length S)."""
    if isinstance(ts, Tensor) and ts.is_nested:
        if layout is None or layout is ts.layout:
            return ts if dtype is None else ts.to(dtype)
        raise RuntimeError(
            "as_nested_tensor(): Converting between nested tensor layouts is not supported"
        )
    _check_layout(layout, "as_nested_tensor")
    if isinstance(ts, Tensor):
        if ts.dim() < 2:
            raise RuntimeError("as_nested_tensor(): Expected tensor argument to have dim() > 1")
        x = ts if dtype is None else ts.to(dtype)
        B, S = x.shape[0], x.shape[1]
        return _make(x.reshape(B * S, *x.shape[2:]), _np.arange(B + 1, dtype=_np.int64) * S)
    values, offsets = _from_list(ts, dtype, device, "as_nested_tensor")
    return _make(values, offsets)


def nested_tensor_from_jagged(values, offsets=None, lengths=None, jagged_dim=None,
                              min_seqlen=None, max_seqlen=None) -> NestedTensor:  # fmt: skip
    """A nested tensor viewing `values` (a view: gradients reach `values`) with `offsets`
    (B + 1,) and optional `lengths` (B,) (sequences with holes between them)."""
    if offsets is None:
        if lengths is None:
            raise RuntimeError(
                "nested_tensor_from_jagged(): At least one of offsets or lengths is required."
            )
        offsets, lengths = _offsets_from_lengths(_np.asarray(lengths._data)), None
        j = NestedInt()
    else:
        j = _nested_int_for(offsets) if isinstance(offsets, Tensor) else NestedInt()
        offsets = _np.asarray(offsets._data if isinstance(offsets, Tensor) else offsets)
    if jagged_dim is None:
        jagged_dim = 1
    elif jagged_dim < 1:
        raise ValueError(f"Expected jagged_dim >=1, but got {jagged_dim}.")
    if lengths is not None:
        lengths = _np.asarray(lengths._data if isinstance(lengths, Tensor) else lengths, _np.int64)
    if not isinstance(values, Tensor):
        raise TypeError("nested_tensor_from_jagged(): values must be a Tensor")
    if jagged_dim > values.ndim:
        raise ValueError(f"nested_tensor_from_jagged(): jagged_dim {jagged_dim} is out of "
                         f"range for values of shape {tuple(values.shape)}")  # fmt: skip
    return _make(values, offsets.astype(_np.int64), lengths, jagged_dim, j)


def narrow(tensor, dim, start, length, layout=_strided) -> NestedTensor:
    """A non-contiguous nested tensor viewing the dense `tensor` (B, S, ...): sequence b is
    tensor[b, start[b] : start[b] + length[b]] (start, length: ints or (B,) tensors)."""
    if not isinstance(start, (int, Tensor)):
        raise RuntimeError("start must be an integer or a tensor")
    if not isinstance(length, (int, Tensor)):
        raise RuntimeError("length must be an integer or a tensor")
    if layout is _strided:
        _check_layout(layout, "narrow")
    if layout is not _jagged:
        raise RuntimeError(f"Specified layout is unsupported for nested narrow: {layout}")
    if dim != 1:
        raise RuntimeError("jagged layout only supports dim=1")
    B, S = tensor.shape[0], tensor.shape[1]
    start = _np.broadcast_to(_np.asarray(start._data if isinstance(start, Tensor) else start), (B,))
    length = _np.broadcast_to(
        _np.asarray(length._data if isinstance(length, Tensor) else length), (B,))  # fmt: skip
    offsets = (_np.arange(B, dtype=_np.int64) * S + start).astype(_np.int64)
    offsets = _np.concatenate([offsets, [offsets[-1] + length[-1]]]).astype(_np.int64)
    values = tensor.reshape(B * S, *tensor.shape[2:])
    return _make(values, offsets, _np.array(length, dtype=_np.int64))


def to_padded_tensor(input, padding: float, output_size=None) -> Tensor:
    """The dense (B, max_len, ...) tensor of a nested tensor, holes filled with `padding`."""
    if not isinstance(input, NestedTensor):
        raise RuntimeError("to_padded_tensor(): expected a nested tensor")
    return _f.to_padded_tensor(input, padding, output_size)


def masked_select(tensor: Tensor, mask: Tensor) -> NestedTensor:
    """A nested tensor of the entries of `tensor` (B, S) where `mask` is True, row by row."""
    if tensor.layout is not _strided:
        raise RuntimeError(
            f"torch.nested.masked_select requires a strided tensor, given {tensor.layout}"
        )
    if mask.layout is not _strided:
        raise RuntimeError(f"torch.nested.masked_select requires a strided mask, given: "
                           f"{mask.layout}")  # fmt: skip
    values = tensor.masked_select(mask)
    m = _np.broadcast_to(_np.asarray(mask._data, dtype=bool), tuple(tensor.shape))
    lengths = m.sum(axis=tensor.ndim - 1).reshape(-1)
    return _make(values, _offsets_from_lengths(lengths))
