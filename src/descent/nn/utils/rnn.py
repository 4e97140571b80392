"""torch.nn.utils.rnn: variable-length sequences for the recurrent layers.

A batch of sequences of different lengths travels either padded, (T, B, *) with the shorter
ones filled with a padding value, or packed: a `PackedSequence` whose `data` holds, time step
by time step, only the sequences still running,

    lengths 3, 2, 1 (sorted)  ->  data = [a0 b0 c0 | a1 b1 | a2],  batch_sizes = [3, 2, 1]

so an RNN over it computes nothing for the padding (descent's RNN, LSTM and GRU accept it,
see `descent.nn.rnn_packed`). Sequences are packed in decreasing length; `sorted_indices`
records the permutation when the input was not sorted (`enforce_sorted=False`) and
`unsorted_indices` undoes it.

Every function is differentiable: packing and padding are one gather each (the padding
positions read a constant row), so gradients reach the original sequences.
"""

from __future__ import annotations

from collections import namedtuple as _namedtuple
from collections.abc import Sequence as _Sequence

import numpy as _np

from ... import backend as _backend
from ... import creation as _creation
from ...errors import DescentError as _DescentError
from ...ops import shape as _shape
from ...ops._common import as_tensor as _as_tensor
from ...ops.indexing import index_select as _index_select
from ...ops.tie_order import fix_sort as _fix_sort
from ...tensor import Tensor

__all__ = [
    "PackedSequence",
    "invert_permutation",
    "pad_sequence",
    "unpad_sequence",
    "pack_padded_sequence",
    "pad_packed_sequence",
    "pack_sequence",
    "unpack_sequence",
]

_PackedSequenceBase = _namedtuple(
    "PackedSequence_", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"]
)


def _int64(values) -> Tensor:
    return _creation.tensor(_np.asarray(values, dtype=_np.int64))


class PackedSequence(_PackedSequenceBase):
    """A packed batch of sequences (a named tuple, as PyTorch's).

    Attributes:
        data: (sum of lengths, *) the steps of every running sequence, time-major.
        batch_sizes: int64 (T,): how many sequences run at each time step (non-increasing).
        sorted_indices: int64 (B,): the original batch index of each packed sequence, or None
            when the input was already sorted by decreasing length.
        unsorted_indices: the inverse permutation (None with sorted_indices).

    Build one with `pack_padded_sequence` or `pack_sequence`, not by hand.
    """

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            raise ValueError("PackedSequence: batch_sizes is required (use pack_sequence)")
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs) -> PackedSequence:
        """`data` moved/cast with Tensor.to; the index tensors stay int64 (on data's device)."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        return type(self)(data, self.batch_sizes, self.sorted_indices, self.unsorted_indices)

    def float(self) -> PackedSequence:
        return self.to(_np.float32)

    def double(self) -> PackedSequence:
        return self.to(_np.float64)

    def cpu(self) -> PackedSequence:
        return self.to("cpu")

    @property
    def is_cuda(self) -> bool:
        return str(self.data.device).startswith("cuda")


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of an int64 permutation (None stays None)."""
    if permutation is None:
        return None
    p = _backend.as_numpy(_as_tensor(permutation)._data).astype(_np.int64)
    inv = _np.empty_like(p)
    inv[p] = _np.arange(p.size, dtype=_np.int64)
    return _int64(inv)


def pad_sequence(
    sequences: Tensor | _Sequence[Tensor],
    batch_first: bool = False,
    padding_value: float = 0.0,
    padding_side: str = "right",
) -> Tensor:
    """Stack sequences (L_i, *) into (T, B, *) (or (B, T, *) with batch_first), T = max L_i,
    filling the missing steps with `padding_value` after (padding_side='right') or before
    ('left') each sequence. A tensor is taken as the sequence of its rows (PyTorch).

    Raises:
        RuntimeError: no sequences, trailing shapes that differ, or a bad padding_side.
    """
    if padding_side not in ("left", "right"):
        raise _DescentError(
            f"pad_sequence: Expected padding_side to be one of left or right, but got "
            f"{padding_side}."
        )
    seqs = list(sequences.unbind(0)) if isinstance(sequences, Tensor) else list(sequences)
    if not seqs:
        raise _DescentError("pad_sequence: received an empty list of sequences")
    seqs = [_as_tensor(s) for s in seqs]
    tails = {tuple(s.shape[1:]) for s in seqs}
    if len(tails) != 1 or any(s.ndim == 0 for s in seqs):
        raise _DescentError(
            f"pad_sequence: every sequence must be (L_i, *) with the same trailing shape, got "
            f"shapes {[tuple(s.shape) for s in seqs]}"
        )
    longest = max(s.shape[0] for s in seqs)
    padded = []
    for s in seqs:
        missing = longest - s.shape[0]
        # (0, 0) for every trailing dim, then (before, after) for dim 0 (pad lists from the end)
        amounts = (0, 0) * (s.ndim - 1) + ((0, missing) if padding_side == "right" else
                                           (missing, 0))  # fmt: skip
        padded.append(_shape.pad(s, amounts, value=padding_value) if missing else s)
    return _shape.stack(padded, axis=0 if batch_first else 1)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list[Tensor]:
    """The inverse of pad_sequence (right padding): the first lengths[i] steps of sequence i,
    as new tensors (PyTorch selects them by a boolean mask: copies, not views).

    As PyTorch's, a time-major (batch_first=False) Tensor argument is transposed IN PLACE to
    (B, T, *) and stays so: code that reads `padded_sequences` afterwards sees that shape."""
    if isinstance(padded_sequences, Tensor):
        x = padded_sequences
        if not batch_first:
            x.transpose_(0, 1)  # PyTorch: `padded_sequences.transpose_(0, 1)`
    else:
        x = _as_tensor(padded_sequences)
        if not batch_first:
            x = _shape.swapaxes(x, 0, 1)  # (B, T, *)
    lens = _backend.as_numpy(_as_tensor(lengths)._data).astype(_np.int64).reshape(-1)
    return [x[i, : int(n)].clone() for i, n in enumerate(lens)]


def _batch_sizes(lengths: _np.ndarray) -> _np.ndarray:
    """batch_sizes[t] = how many (sorted) lengths exceed t."""
    steps = _np.arange(int(lengths.max()))
    return (lengths[None, :] > steps[:, None]).sum(axis=1).astype(_np.int64)


def pack_padded_sequence(
    input: Tensor, lengths, batch_first: bool = False, enforce_sorted: bool = True
) -> PackedSequence:
    """Pack a padded batch (T, B, *) (or (B, T, *)) of sequences of the given lengths.

    Args:
        input: the padded batch.
        lengths: a list or 1-D tensor of the B lengths (each in 1..T).
        batch_first: input is (B, T, *).
        enforce_sorted: require lengths in decreasing order; False sorts the batch (and
            records the permutation in sorted_indices).

    Raises:
        RuntimeError: a length <= 0 or > T, a lengths count other than B, or unsorted lengths
            with enforce_sorted.
    """
    x = _as_tensor(input)
    if isinstance(lengths, Tensor):
        lengths = _backend.as_numpy(lengths._data)
    lens = _np.asarray(lengths).astype(_np.int64).reshape(-1)
    if not batch_first:
        x = _shape.swapaxes(x, 0, 1)  # (B, T, *): one gather below serves both layouts
    if x.ndim < 2:
        raise ValueError(f"pack_padded_sequence: input must be at least 2-D, got {tuple(x.shape)}")
    b, t = x.shape[0], x.shape[1]
    if lens.size != b:
        raise _DescentError(
            f"pack_padded_sequence: Expected `len(lengths)` to be equal to batch_size, but got "
            f"{lens.size} (batch_size={b})"
        )
    if lens.size and lens.min() <= 0:
        raise _DescentError(
            "pack_padded_sequence: Length of all samples has to be greater than 0, but found an "
            "element in 'lengths' that is <= 0"
        )
    if lens.size and lens.max() > t:
        raise _DescentError(
            f"pack_padded_sequence: a length ({int(lens.max())}) exceeds the padded length {t}"
        )
    if enforce_sorted:
        if _np.any(_np.diff(lens) > 0):
            raise _DescentError(
                "pack_padded_sequence: `lengths` array must be sorted in decreasing order when "
                "`enforce_sorted` is True. You can pass `enforce_sorted=False` to "
                "pack_padded_sequence and/or pack_sequence to sidestep this requirement"
            )
        order, sorted_indices = _np.arange(b), None
    else:
        # longest first, equal lengths in the order of PyTorch's torch.sort(descending=True)
        order = _fix_sort(lens, _np.argsort(-lens, kind="stable"), 0, True)
        sorted_indices = _int64(order)
    lens = lens[order]
    batch_sizes = _batch_sizes(lens)
    # Row (sequence order[j], step s) for each packed row, time-major: one gather.
    steps = _np.repeat(_np.arange(batch_sizes.size), batch_sizes)
    seqs = _np.concatenate([_np.arange(n) for n in batch_sizes])
    flat_rows = order[seqs] * t + steps  # rows of x viewed as (B * T, *)
    xp = _backend.get_array_module(x._data)
    flat = x.reshape(b * t, *x.shape[2:])
    data = _index_select(flat, 0, xp.asarray(flat_rows))
    return PackedSequence(data, _int64(batch_sizes), sorted_indices, None)


def pad_packed_sequence(
    sequence: PackedSequence,
    batch_first: bool = False,
    padding_value: float = 0.0,
    total_length: int | None = None,
) -> tuple[Tensor, Tensor]:
    """The inverse of pack_padded_sequence: (padded batch, lengths int64 (B,)), in the batch
    order before packing; total_length pads to that many steps.

    Raises:
        ValueError: total_length shorter than the longest sequence.
    """
    data = _as_tensor(sequence.data)
    batch_sizes = _backend.as_numpy(_as_tensor(sequence.batch_sizes)._data).astype(_np.int64)
    steps_max = int(batch_sizes.size)
    b = int(batch_sizes[0]) if steps_max else 0
    if total_length is not None:
        if total_length < steps_max:
            raise ValueError(
                f"pad_packed_sequence: Expected total_length to be at least the length of the "
                f"longest sequence in input, but got total_length={total_length} and max "
                f"sequence length being {steps_max}"
            )
        steps_max = int(total_length)
    # Packed row of (step s, sequence j); the padding reads an extra constant row at the end.
    table = _np.full((steps_max, b), data.shape[0], dtype=_np.int64)  # (T, B)
    start = 0
    for s, n in enumerate(batch_sizes):
        table[s, :n] = _np.arange(start, start + n)
        start += n
    lengths = (table < data.shape[0]).sum(axis=0)  # (B,) in packed (sorted) order
    unsorted = sequence.unsorted_indices
    if unsorted is not None:
        perm = _backend.as_numpy(_as_tensor(unsorted)._data).astype(_np.int64)
        table, lengths = table[:, perm], lengths[perm]
    xp = _backend.get_array_module(data._data)
    pad_row = Tensor._wrap(xp.full((1, *data.shape[1:]), padding_value, dtype=data._data.dtype))
    rows = _shape.concatenate([data, pad_row], axis=0)
    if batch_first:
        table = table.T
    out = _index_select(rows, 0, xp.asarray(table.reshape(-1)))
    return out.reshape(*table.shape, *data.shape[1:]), _int64(lengths)


def pack_sequence(sequences: _Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences (L_i, *): pad_sequence then pack_padded_sequence."""
    seqs = list(sequences)
    lengths = [_as_tensor(s).shape[0] for s in seqs]
    return pack_padded_sequence(pad_sequence(seqs), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The list of sequences a PackedSequence holds, in their original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
