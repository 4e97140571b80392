"""Integer class indices to vectors: `embedding` (rows of a learned table), `embedding_bag`
(the sum, mean or max of bags of rows) and `one_hot`."""

from __future__ import annotations

import numpy as np

from ... import backend
from ...errors import DescentError, DtypeError
from ...grad_mode import check_inference_saved
from ...inplace_unary import write_values
from ...ops._common import as_tensor
from ...ops.elementwise import where
from ...ops.embedding import Embedding
from ...ops.indexing import index_add, take_along_axis
from ...ops.indexing import one_hot as _one_hot
from ...ops.untracked import computed, guarded
from ...ops.view_write import written
from ...tensor import Tensor

__all__ = ["embedding", "embedding_bag", "one_hot"]

_I64 = np.dtype(np.int64)  # (embedding's common call)


def embedding(
    input,
    weight,
    padding_idx: int | None = None,
    max_norm=None,
    norm_type=2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of `weight` (num_embeddings, dim) picked by the integer tensor `input`.

    `padding_idx` rows receive no gradient. `max_norm`: first, in place and outside autograd
    (as PyTorch), every row named in `input` whose `norm_type`-norm exceeds max_norm is scaled
    to norm max_norm (by max_norm / (norm + 1e-7)). `scale_grad_by_freq`: each row's gradient
    is divided by how often its index occurs in `input`. `sparse=True`: the weight's gradient is
    a sparse COO tensor, as PyTorch's (uncoalesced: one entry per looked-up position, in input
    order, padding_idx positions dropped), for optim.SparseAdam, SGD or Adagrad; with
    scale_grad_by_freq, backward raises as PyTorch's does.
    """
    # The common call (int64 NumPy indices of a plain Tensor, all in range, into a 2-D NumPy
    # weight; no padding_idx, max_norm, frequency scaling or sparse gradient) goes to the op
    # call the checked path below makes, its range check in one reduction (~5 us a call less).
    if (type(input) is Tensor and isinstance(weight, Tensor) and padding_idx is None
            and max_norm is None and not scale_grad_by_freq and not sparse):  # fmt: skip
        idx, wd = input._data, weight._data
        if (type(idx) is np.ndarray and idx.dtype is _I64 and type(wd) is np.ndarray
                and wd.ndim == 2 and not weight._nested_layout):  # fmt: skip
            # (int64: a negative index is above the row count too, as a uint64)
            if not idx.size or idx.view(np.uint64).max() < wd.shape[0]:
                check_inference_saved(input, weight)
                return Embedding.apply(weight, idx=idx, padding_idx=None, freq_scale=None,
                                       sparse=False)  # fmt: skip
    if getattr(input, "_nested_layout", False):  # nested token ids: rows for their values
        from ...nested import functional as _nf  # noqa: PLC0415 - descent.nested is lazy

        args = (padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse)
        return _nf.wrap_values(embedding(input.values(), weight, *args), input)
    w = as_tensor(weight)
    check_inference_saved(input, w)  # (the indices are saved as a parameter: grad_mode.py)
    if w.ndim != 2:
        raise DescentError(
            f"embedding: 'weight' must be 2-D (num_embeddings, dim), got shape {tuple(w.shape)}; "
            f"note the order embedding(indices, weight)"
        )
    index = as_tensor(input)
    idx = index._data
    if idx.dtype != np.int64 and idx.dtype != np.int32:  # (PyTorch: "Long, Int"; uint8 too)
        raise DtypeError(
            f"embedding: indices must be integers (int64 or int32), got dtype {idx.dtype}; "
            "use indices.long()"
        )
    n_rows = w.shape[0]

    # Range-checked here, before the gather: CuPy wraps out-of-range indices silently instead of
    # raising, and NumPy's own IndexError would not name the function.
    # Negative indices are refused as PyTorch refuses them: a token id of -1 is a bug upstream
    # (a padding sentinel, an unmapped character), and wrapping it to the last row would train
    # that row silently.
    # On a GPU the check is deferred (backend.defer_check): reading the range at once would
    # synchronise the host with the device on every forward.
    def error(lo, hi):
        return IndexError(
            f"embedding: index {lo if lo < 0 else hi} out of range for {n_rows} embeddings "
            f"(indices must be in [0, {n_rows}); negative indices are not allowed, as in PyTorch)"
        )

    if backend.is_cupy_array(idx):
        if idx.size:
            backend.defer_check(((idx < 0) | (idx >= n_rows)).any(),
                                lambda: error(int(idx.min()), int(idx.max())))  # fmt: skip
    elif not backend.is_meta(idx):  # meta indices have no values to check
        lo, hi = (int(idx.min()), int(idx.max())) if idx.size else (0, 0)
        if lo < 0 or hi >= n_rows:
            raise error(lo, hi)
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n_rows
    if max_norm is not None:
        _renorm_rows_(w, (_redo_renorm, idx, max_norm, norm_type))
    if sparse and scale_grad_by_freq:
        # PyTorch refuses at backward (a forward alone works): a hook that raises
        y = Embedding.apply(w, idx=idx, padding_idx=padding_idx)
        if y.requires_grad:
            y.register_hook(_refuse_sparse_freq)
        return y
    freq_scale = None
    if scale_grad_by_freq:
        # Through untracked.computed: a replay of descent.compile recomputes the counts from
        # each call's indices (computed on arrays, they were a constant the replay froze when
        # the first two calls agreed: session 19's fuzzer).
        src = index if idx is index._data else Tensor._wrap(idx)
        freq_scale = computed(_freq_scale, (src,), (n_rows,))._data
    return Embedding.apply(w, idx=idx, padding_idx=padding_idx, freq_scale=freq_scale,
                           sparse=bool(sparse))  # fmt: skip


def _freq_scale(idx, n_rows: int):
    """1 / (how often each position's index occurs in idx), shape (*idx.shape, 1)."""
    counts = backend.get_array_module(idx).bincount(idx.reshape(-1), minlength=n_rows)
    return (1.0 / counts[idx])[..., None]


def _refuse_sparse_freq(grad):
    raise RuntimeError("embedding_backward: scale_grad_by_freq not supported with sparse gradients")


def _renorm_rows_(w: Tensor, redo: tuple) -> None:
    """torch.embedding_renorm_ (`redo` is `(_redo_renorm, idx, max_norm, norm_type)` or
    embedding_bag's `_redo_bag_renorm`): rows of `w` named in the indices with a norm over
    max_norm are scaled, in place and unrecorded, by max_norm / (norm + 1e-7) (PyTorch's
    constant). The version goes up on every call, as PyTorch's in-place op (also when no row
    changes), so a graph that saved the old weight refuses to backpropagate. The write is
    `redo` on w's array (ops/view_write.written), which descent.compile replays: each replay
    renorms from that call's indices and weight."""
    fn, *operands = redo
    if fn is _redo_bag_renorm:
        src, offsets, include_last_offset, *operands = operands
        operands[:0] = [backend.get_array_module(w._data).asarray(
            _bag_indices(src, offsets, include_last_offset))]  # fmt: skip
    new = _renormed(w._data, *operands)
    if new is not None:
        write_values(w, new)
    written(w, redo)


def _renormed(weight, idx, max_norm: float, norm_type: float):
    """A copy of the array `weight` with the rows named in `idx` renormed (see _renorm_rows_),
    or None when no row's norm is over max_norm."""
    xp = backend.get_array_module(weight)
    rows = xp.unique(idx.reshape(-1))
    if rows.size == 0:
        return None
    sel = weight[rows]  # (R, dim)
    if norm_type == float("inf"):
        norms = xp.abs(sel).max(axis=1)
    else:
        norms = (xp.abs(sel) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    over = norms > max_norm
    if not bool(over.any()):
        return None
    scale = (max_norm / (norms[over] + 1e-7)).astype(sel.dtype)
    new = weight.copy()
    new[rows[over]] = sel[over] * scale[:, None]
    return new


def _redo_renorm(weight, idx, max_norm: float, norm_type: float) -> None:
    """embedding's renorm written into the array `weight` (a write's redo: descent.compile)."""
    new = _renormed(weight, idx, max_norm, norm_type)
    if new is not None:
        weight[...] = new


def _redo_bag_renorm(weight, src, offsets, include_last_offset: bool, max_norm: float,
                     norm_type: float) -> None:  # fmt: skip
    """embedding_bag's renorm of the rows its bags use (every index up to the last bag's end),
    written into the array `weight` (a write's redo: descent.compile)."""
    idx = backend.get_array_module(weight).asarray(_bag_indices(src, offsets, include_last_offset))
    _redo_renorm(weight, idx, max_norm, norm_type)


def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding with a new last axis of size num_classes (inferred when -1)."""
    t = as_tensor(tensor)
    if t._data.dtype != np.int64:
        # PyTorch's one_hot takes int64 only ("one_hot is only applicable to index tensor of
        # type LongTensor", a RuntimeError): a DtypeError is one, and still the TypeError
        # descent raised for float and bool indices (it read int32/int8/uint8 ones)
        raise DtypeError(
            f"one_hot: is only applicable to an index tensor of type LongTensor (int64 integer "
            f"class indices), got {t.dtype} of shape {tuple(t.shape)}; convert with .long()"
        )
    # (t._data.size: `t.size` is the method, always true, so an empty index raised NumPy's
    # "zero-size array" error; PyTorch returns the (0, C) result)
    if t._data.size == 0 and num_classes < 0:
        raise DescentError("one_hot: can not infer the number of classes from an empty tensor")
    if num_classes >= 0:
        # The result is data computed from the values: `computed` shows descent.compile how
        # (ops/untracked.py); the class check runs in the kernel, on every call
        return computed(_one_hot_of, (t,), (int(num_classes),))
    # (its width is the largest class + 1: a guarded op, a program per width: ops/untracked.py)
    return guarded(_one_hot_width, (t,), (), "one_hot without num_classes")[0]


def _one_hot_width(a):
    """(F.one_hot of an array of classes, checked, with the largest class + 1 classes,)."""
    _check_classes(a, -1)
    return (_one_hot(Tensor._wrap(a), -1)._data,)


def _one_hot_of(a, num_classes: int):
    """F.one_hot of an array of classes, checked, with a known number of classes."""
    _check_classes(a, num_classes)
    return _one_hot(Tensor._wrap(a), num_classes)._data


def _check_classes(a, num_classes: int) -> None:
    if a.size and not backend.is_meta(a) and (  # (meta: no values to check)
        int(a.min()) < 0 or (num_classes >= 0 and int(a.max()) >= num_classes)
    ):
        raise DescentError(
            f"one_hot: class values must lie in [0, {num_classes}), got min {int(a.min())} "
            f"and max {int(a.max())}"
        )


def _bags(idx: np.ndarray, offsets, include_last_offset: bool) -> tuple[np.ndarray, np.ndarray]:
    """The bag of each index and each bag's [start, end): (bag ids (M,), bounds (B, 2)), from a
    2-D input (one bag per row) or a 1-D input with `offsets` (PyTorch's checks)."""
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError(
                "embedding_bag: if input is 2D, then offsets has to be None, as input is "
                "treated is a mini-batch of fixed length sequences. However, found offsets of "
                f"type {type(offsets).__name__}"
            )
        b, length = idx.shape
        starts = np.arange(b, dtype=np.int64) * length
        ends = starts + length
    elif idx.ndim == 1:
        if offsets is None:
            raise ValueError("embedding_bag: offsets has to be a 1D Tensor but got None")
        off = backend.as_numpy(as_tensor(offsets)._data)
        if off.ndim != 1 or off.dtype.kind not in "iu":
            raise ValueError(
                f"embedding_bag: offsets has to be a 1D integer Tensor, got dtype {off.dtype} "
                f"and shape {tuple(off.shape)}"
            )
        off = off.astype(np.int64)
        if off.size and off[0] != 0:
            raise DescentError(
                f"embedding_bag: offsets[0] has to be 0, i.e., the first sequence in the "
                f"mini-batch has to start from position 0. However, got {int(off[0])}"
            )
        bounds = np.append(off, idx.shape[0]) if not include_last_offset else off
        if np.any(np.diff(bounds) < 0) or (bounds.size and bounds[-1] > idx.shape[0]):
            raise DescentError(
                f"embedding_bag: offsets {off.tolist()} must be non-decreasing and within the "
                f"input's length {idx.shape[0]}"
            )
        starts, ends = bounds[:-1], bounds[1:]
    else:
        raise ValueError(
            f"embedding_bag: input has to be 1D or 2D Tensor, but got Tensor of dimension "
            f"{idx.ndim}"
        )
    bag = np.repeat(np.arange(starts.size, dtype=np.int64), ends - starts)
    return bag, np.stack([starts, ends], axis=1)


def embedding_bag(
    input,
    weight,
    offsets=None,
    max_norm=None,
    norm_type: float = 2,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights=None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> Tensor:
    """The sum, mean or max of bags of `weight`'s rows, without materialising the lookups per
    bag: (B, dim).

    Bags: the rows of a 2-D `input` (B, L), or slices input[offsets[i]:offsets[i+1]] of a
    1-D input (the last bag runs to the end, or to offsets[-1] with include_last_offset).
    Indices equal to `padding_idx` are left out (not counted by the mean); an empty bag gives
    zeros. `per_sample_weights` (mode 'sum' only) scales each row; it is differentiable.
    max_norm renormalises the rows used first, in place, as `embedding`; scale_grad_by_freq
    divides each row's gradient by its index's count in the input (mode 'max' refuses it, as
    PyTorch). sparse=True: a sparse COO gradient as `embedding`'s, one entry per index used
    in a bag, in input order (padding_idx excepted), its value the bag's gradient times the
    index's weight (divided by the bag's size for 'mean'), as PyTorch's; mode 'max' refuses it.

    Raises:
        ValueError: a bad mode or input/offsets combination.
        NotImplementedError: per_sample_weights with mode 'mean' or 'max'.
        RuntimeError: an index out of range, or offsets not starting at 0.
    """
    if sparse and mode == "max":
        raise ValueError("max mode does not support sparse weights")  # PyTorch's words
    if scale_grad_by_freq and mode == "max":
        raise ValueError("max mode does not support scaling the gradient by the frequency")
    if mode not in ("sum", "mean", "max"):
        raise ValueError("embedding_bag: mode has to be one of sum, mean or max")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(
            f"embedding_bag: per_sample_weights was not None. per_sample_weights is only "
            f"supported for mode='sum' (got mode='{mode}')"
        )
    w = as_tensor(weight)
    inp = as_tensor(input)
    src = inp._data
    if src.dtype.kind not in "iu":
        raise DescentError(
            f"embedding_bag: indices must be an integer tensor (int64 or int32), got {src.dtype}"
        )
    if src.ndim == 2 and offsets is not None:
        _bags(src, offsets, include_last_offset)  # (PyTorch's error, naming offsets' type)
    n_rows, dim = w.shape
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n_rows
    xp = backend.get_array_module(w._data)
    # The bags, the kept indices, their positions, counts and scales are computed from the
    # input's and offsets' values in one kernel, a guarded op: descent.compile replays it on
    # each call's values and keeps a program per number of kept indices (and of empty bags).
    half = w._data.dtype.itemsize == 2
    out_dt = np.dtype(np.float32) if half else np.dtype(w._data.dtype)
    inputs = (inp,) if offsets is None else (inp, as_tensor(offsets))
    plan = guarded(_bag_plan, inputs, (len(inputs), n_rows, include_last_offset, padding_idx,
                                       mode, bool(scale_grad_by_freq), out_dt,
                                       str(w.device)), "embedding_bag")  # fmt: skip
    flat_idx, bag, kept, freq_scale, divisor, empty_bags, empty = plan
    if max_norm is not None:
        # torch renorms the rows used before the bags (every index up to the last bag's end)
        off = None if offsets is None else inputs[1]._data
        _renorm_rows_(w, (_redo_bag_renorm, src, off, include_last_offset, max_norm, norm_type))
    n_bags = empty.shape[0]
    zeros = Tensor._wrap(xp.zeros((n_bags, dim), dtype=w._data.dtype))
    sparse = bool(sparse)
    if flat_idx.shape[0] == 0:  # (a shape: guarded)
        # every bag empty: zeros, still connected to weight (through an empty lookup, so that a
        # sparse gradient has no entry, as PyTorch's)
        none = Embedding.apply(w, idx=flat_idx._data, padding_idx=None, sparse=sparse)
        return zeros + 0.0 * none.sum()
    rows = Embedding.apply(w, idx=flat_idx._data, padding_idx=None,
                           freq_scale=freq_scale._data if scale_grad_by_freq else None,
                           sparse=sparse)  # fmt: skip
    if sparse and scale_grad_by_freq and rows.requires_grad:
        rows.register_hook(_refuse_sparse_freq)  # PyTorch refuses at backward
    if mode == "max":
        # Per bag and column the first maximum (on the arrays, a kernel that descent.compile
        # replays), then one differentiable gather of those rows: the gradient goes to the
        # winning row of each column.
        win = computed(_bag_winners, (rows, bag), (n_bags,))
        picked = take_along_axis(rows, win, axis=0)  # (B, dim)
        if not empty_bags.shape[0]:  # (a shape: guarded)
            return picked
        return where(empty, zeros, picked)
    # Half precision: weighted rows, bag sums and means in float32, rounded once, as PyTorch (a
    # float16 sum of thousands of rows drifted by about 1 on values near 3; bfloat16 products
    # rounded before the sum were 3 ulps off)
    if half:
        zeros, rows = zeros.float(), rows.float()
    if per_sample_weights is not None:
        psw = as_tensor(per_sample_weights)
        if tuple(psw.shape) != tuple(inp.shape):
            raise ValueError(
                f"embedding_bag: per_sample_weights {tuple(psw.shape)} must have the input's "
                f"shape {tuple(inp.shape)}"
            )
        psw = psw.reshape(-1)[kept]  # the kept indices' weights
        rows = rows * psw.reshape(-1, 1)  # (float32 for half weights: promotion)
    out = index_add(zeros, 0, bag, rows)  # (B, dim) bag sums
    if mode == "mean":
        out = out / divisor  # (an empty bag stays 0)
    return out.to(w.dtype) if half else out


def _bag_indices(idx, offsets, include_last_offset: bool):
    """The indices that fall in a bag (int64, flat), checked against nothing."""
    idx = backend.as_numpy(idx).astype(np.int64)
    bag, _ = _bags(idx, offsets, include_last_offset)
    return idx.reshape(-1)[: bag.size]


def _bag_plan(*arrays) -> tuple:
    """embedding_bag's arrays from the input's (and offsets') values, checked: the kept
    indices (M,), their bags (M,) and positions in the flat input (M,), each one's gradient
    scale (M, 1) (scale_grad_by_freq; else (0, 1)), the mean's divisors (B, 1), the empty
    bags' positions and an empty-bag mask (B, 1)."""
    k = arrays[-8]
    src, offsets = arrays[0], (arrays[1] if k == 2 else None)
    n_rows, include_last_offset, padding_idx, mode, freq, out_dt, device = arrays[-7:]
    xp = backend.xp_for_device(device)
    idx = backend.as_numpy(src).astype(np.int64)
    bag, bounds = _bags(idx, offsets, include_last_offset)
    flat = idx.reshape(-1)[: bag.size]  # indices past include_last_offset's end are unused
    if flat.size and (flat.min() < 0 or flat.max() >= n_rows):
        pos = int(np.flatnonzero((flat < 0) | (flat >= n_rows))[0])
        raise DescentError(
            f"embedding_bag: Index {pos} of input takes value {int(flat[pos])} which is not in "
            f"the valid range [0, {n_rows})"
        )
    keep = np.ones(flat.size, bool) if padding_idx is None else flat != padding_idx
    n_bags = bounds.shape[0]
    scale = np.zeros((0, 1))
    if freq:
        # each row's gradient divided by its index's count in the whole input (PyTorch's
        # documented rule, as F.embedding's; torch 2.13's CPU bag kernel divides some rows by
        # another index's count: docs/nn_extra.md)
        counts = np.bincount(idx.reshape(-1), minlength=n_rows)
        scale = (1.0 / counts[flat[keep]])[:, None]  # (M, 1)
    flat, bag = flat[keep], bag[keep]
    counts = np.bincount(bag, minlength=n_bags)
    divisor = np.maximum(counts, 1).reshape(-1, 1).astype(out_dt)  # an empty bag stays 0
    empty = counts == 0
    # (the empty bags' positions decide mode 'max''s form only: a guard on them elsewhere would
    # record a program per number of empty bags for nothing)
    empty_at = np.flatnonzero(empty) if mode == "max" else np.zeros(0, np.int64)
    return tuple(xp.asarray(a) for a in (flat, bag, np.flatnonzero(keep), scale, divisor,
                                         empty_at, empty[:, None]))  # fmt: skip


def _bag_winners(rows, bag, n_bags: int):
    """Per bag and column the position (in rows) of the first maximum, 0 for an empty bag:
    (B, dim) int64 (embedding_bag's mode 'max')."""
    xp = backend.get_array_module(rows)
    bag = backend.as_numpy(bag)
    order = np.arange(bag.size)
    counts = np.bincount(bag, minlength=n_bags)
    longest = int(counts.max())
    slot = order - np.repeat(np.cumsum(counts) - counts, counts)  # position inside the bag
    table = np.full((n_bags, longest), -1, np.int64)  # (B, longest) row numbers, -1 = none
    table[bag, slot] = order
    vals = backend.as_numpy(rows)[np.maximum(table, 0)]  # (B, longest, dim)
    vals = np.where((table >= 0)[..., None], vals, -np.inf)
    win = np.take_along_axis(table, vals.argmax(axis=1), axis=1)  # (B, dim)
    return xp.asarray(np.maximum(win, 0))
