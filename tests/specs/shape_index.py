"""Specs of the shape and index ops of issue 13: diag, diagonal, trace, unfold, unflatten,
repeat_interleave, masked_select, meshgrid, scatter, scatter_reduce, index_put, index_fill,
take, narrow, movedim, gather by keyword (see tests/specs/__init__.py for the format)."""

from __future__ import annotations

import numpy as np
import torch

import descent as ds

from . import Spec

SPECS: list[Spec] = []


def add(**kw) -> None:
    SPECS.append(Spec(**kw))


R3 = (3, 4, 5)
_IDX = np.array([[0, 1, 0, 3], [2, 2, 2, 0], [1, 1, 1, 1]])  # repeats: slots met several times
_MASK = np.array([[True, False, True, False], [False, False, True, True],
                  [True, True, False, False]])  # fmt: skip


def distinct(*shapes, scale=0.37):
    def sampler(rng, dtype):
        out = []
        for shape in shapes:
            n = int(np.prod(shape))
            v = (rng.permutation(n) - n / 2) * scale + rng.uniform(-0.05, 0.05, n)
            out.append(v.reshape(shape))
        return out

    return sampler


def _np_unfold(x, d, size, step):
    n = x.shape[d]
    win = [np.take(x, np.arange(s, s + size), axis=d) for s in range(0, n - size + 1, step)]
    return np.moveaxis(np.stack(win, axis=d), d + 1, -1)


def _np_diag_embed(v, k):
    return np.diag(v, k)


def _np_scatter_reduce(x, dim, idx, src, reduce, include_self=True):
    out = x.copy()
    groups: dict = {}
    for pos in np.ndindex(idx.shape):
        tgt = list(pos)
        tgt[dim] = idx[pos]
        groups.setdefault(tuple(tgt), []).append(src[pos])
    for tgt, vals in groups.items():
        vals = ([x[tgt]] if include_self else []) + vals
        out[tgt] = {"sum": np.sum, "prod": np.prod, "mean": np.mean, "amax": np.max,
                    "amin": np.min}[reduce](vals)  # fmt: skip
    return out


for nm, f, r, tf, shape, cov in [
    ("diagonal", lambda x: ds.diagonal(x, 1, 0, 2), lambda x: np.diagonal(x, 1, 0, 2),
     lambda x: torch.diagonal(x, 1, 0, 2), R3, "GetItem"),
    ("diagonal_method_neg", lambda x: x.diagonal(-1, -1, 1),
     lambda x: np.diagonal(x, -1, -1, 1), lambda x: x.diagonal(-1, -1, 1), R3, "GetItem"),
    ("diag_matrix", lambda x: x.diag(1), lambda x: np.diag(x, 1), lambda x: x.diag(1), (4, 5),
     "GetItem"),
    ("diag_vector", lambda x: ds.diag(x, -1) * 2.0, lambda x: _np_diag_embed(x, -1) * 2.0,
     lambda x: torch.diag(x, -1) * 2.0, (4,), "IndexGrad"),
    ("trace", lambda x: x.trace(), np.trace, torch.trace, (4, 5), "GetItem"),
    ("unfold", lambda x: x.unfold(2, 3, 1), lambda x: _np_unfold(x, 2, 3, 1),
     lambda x: x.unfold(2, 3, 1), R3, "GetItem"),
    ("unfold_step", lambda x: ds.unfold(x, 1, 2, 2), lambda x: _np_unfold(x, 1, 2, 2),
     lambda x: x.unfold(1, 2, 2), R3, "GetItem"),
    ("unflatten", lambda x: x.unflatten(1, (2, 2)), lambda x: x.reshape(3, 2, 2, 5),
     lambda x: x.unflatten(1, (2, 2)), R3, "Reshape"),
    ("repeat_interleave", lambda x: x.repeat_interleave(2, 1),
     lambda x: np.repeat(x, 2, 1), lambda x: x.repeat_interleave(2, 1), R3, "GetItem"),
    ("repeat_interleave_counts", lambda x: ds.repeat_interleave(x, ds.tensor([1, 0, 3]), 0),
     lambda x: np.repeat(x, [1, 0, 3], 0),
     lambda x: torch.repeat_interleave(x, torch.tensor([1, 0, 3]), 0), R3, "GetItem"),
    ("repeat_interleave_flat", lambda x: ds.repeat_interleave(x, 2), lambda x: np.repeat(x, 2),
     lambda x: torch.repeat_interleave(x, 2), (3, 4), "GetItem"),
    ("narrow", lambda x: x.narrow(2, 1, 3), lambda x: x[:, :, 1:4], lambda x: x.narrow(2, 1, 3),
     R3, "GetItem"),
    ("movedim", lambda x: ds.movedim(x, (0, 1), (2, 0)), lambda x: np.moveaxis(x, (0, 1), (2, 0)),
     lambda x: torch.movedim(x, (0, 1), (2, 0)), R3, "Transpose"),
    ("movedim_method", lambda x: x.movedim(0, -1), lambda x: np.moveaxis(x, 0, -1),
     lambda x: x.movedim(0, -1), R3, "Transpose"),
    ("take", lambda x: x.take(ds.tensor([[0, 5], [59, 5]])), lambda x: x.reshape(-1)[[[0, 5],
     [59, 5]]], lambda x: x.take(torch.tensor([[0, 5], [59, 5]])), R3, "GetItem"),
    ("index_fill", lambda x: x.index_fill(1, ds.tensor([0, 2]), -1.5) * x,
     lambda x: np.where(np.isin(np.arange(4), [0, 2])[:, None], -1.5, x) * x,
     lambda x: x.index_fill(1, torch.tensor([0, 2]), -1.5) * x, R3, "MaskedFill"),
    ("gather_keywords", lambda x: ds.gather(x, dim=1, index=ds.tensor(_IDX[:, :3] % 3)),
     lambda x: np.take_along_axis(x[:, :3], _IDX[:, :3] % 3, 1),
     lambda x: torch.gather(x, dim=1, index=torch.tensor(_IDX[:, :3] % 3)), (3, 4),
     "TakeAlongAxis"),
    ("masked_select", lambda x: ds.masked_select(x, ds.tensor(_MASK)), lambda x: x[_MASK],
     lambda x: torch.masked_select(x, torch.tensor(_MASK)), (3, 4), "GetItem"),
    ("masked_select_broadcast", lambda x: x.masked_select(ds.tensor(_MASK[0])),
     lambda x: x[np.broadcast_to(_MASK[0], x.shape)],
     lambda x: x.masked_select(torch.tensor(_MASK[0])), (3, 4), "GetItem"),
]:  # fmt: skip
    add(name=nm, fn=f, ref=r, torch_fn=tf, shapes=[shape], covers=(cov,))

add(name="index_fill_tensor_value", fn=lambda x, v: ds.index_fill(x, 2, ds.tensor([4]), v),
    ref=lambda x, v: np.where(np.arange(5) == 4, v, x),
    torch_fn=lambda x, v: torch.index_fill(x, 2, torch.tensor([4]), v), shapes=[R3, ()],
    covers=("Where",))  # fmt: skip
add(name="meshgrid_ij", fn=lambda a, b: ds.stack(ds.meshgrid(a, b, indexing="ij")) * 2.0,
    ref=lambda a, b: np.stack(np.meshgrid(a, b, indexing="ij")) * 2.0,
    torch_fn=lambda a, b: torch.stack(torch.meshgrid(a, b, indexing="ij")) * 2.0,
    shapes=[(3,), (4,)], covers=("BroadcastTo",))  # fmt: skip
add(name="meshgrid_xy", fn=lambda a, b, c: ds.stack(ds.meshgrid(a, b, c, indexing="xy")),
    ref=lambda a, b, c: np.stack(np.meshgrid(a, b, c, indexing="xy")),
    torch_fn=lambda a, b, c: torch.stack(torch.meshgrid(a, b, c, indexing="xy")),
    shapes=[(3,), (4,), (2,)], covers=("BroadcastTo",))  # fmt: skip

# scatter_reduce: every reduction, with and without the input's own values; amax/amin on
# distinct values (a tie is a kink), prod on values away from 0.
for red in ("sum", "prod", "mean", "amax", "amin"):
    for inc in (True, False):
        smp = distinct((3, 5), (3, 4)) if red in ("amax", "amin") else None
        add(name=f"scatter_reduce_{red}{'' if inc else '_exclude_self'}",
            fn=lambda x, s, _r=red, _i=inc: x.scatter_reduce(1, ds.tensor(_IDX), s, _r,
                                                             include_self=_i),
            ref=lambda x, s, _r=red, _i=inc: _np_scatter_reduce(x, 1, _IDX, s, _r, _i),
            torch_fn=lambda x, s, _r=red, _i=inc: x.scatter_reduce(1, torch.tensor(_IDX), s, _r,
                                                                   include_self=_i),
            shapes=[(3, 5), (3, 4)], domain=(0.5, 1.5) if red == "prod" else (-2.0, 2.0),
            inputs=smp, covers=("ScatterReduce",))  # fmt: skip

# selection.py's scatter and index_put (PyTorch's names), checked here with the others.
_SC = np.array([[0, 1, 2], [2, 0, 1]])  # no repeats: scatter's overwrite is then well defined


def _np_scatter(x, dim, idx, src):
    out = x.copy()
    for pos in np.ndindex(idx.shape):
        tgt = list(pos)
        tgt[dim] = idx[pos]
        out[tuple(tgt)] = src[pos]
    return out


add(name="scatter_src", fn=lambda x, s: x.scatter(1, ds.tensor(_SC), s),
    ref=lambda x, s: _np_scatter(x, 1, _SC, s),
    torch_fn=lambda x, s: x.scatter(1, torch.tensor(_SC), s), shapes=[(2, 4), (2, 3)],
    covers=("Where", "GetItem"))  # fmt: skip
add(name="index_put_accumulate",
    fn=lambda x, v: ds.index_put(x, (ds.tensor([0, 2, 0]), ds.tensor([1, 3, 1])), v,
                                 accumulate=True),
    ref=lambda x, v: _np_index_put(x, v),
    torch_fn=lambda x, v: x.index_put((torch.tensor([0, 2, 0]), torch.tensor([1, 3, 1])), v,
                                      accumulate=True),
    shapes=[(3, 4), (3,)], covers=("IndexAdd",))  # fmt: skip


def _np_index_put(x, v):
    out = x.copy()
    np.add.at(out, (np.array([0, 2, 0]), np.array([1, 3, 1])), v)
    return out


# index_put with a boolean mask (selection.MaskIndexPut, session 20): rows 0 and 2 written
_ROWS_MASK = np.array([True, False, True])


def _np_mask_put(x, v, accumulate):
    out = x.copy()
    if accumulate:
        out[_ROWS_MASK] += v
    else:
        out[_ROWS_MASK] = v
    return out


add(name="index_put_mask",
    fn=lambda x, v: ds.index_put(x, (ds.tensor(_ROWS_MASK),), v),
    ref=lambda x, v: _np_mask_put(x, v, False),
    torch_fn=lambda x, v: x.index_put((torch.tensor(_ROWS_MASK),), v),
    shapes=[(3, 4), (4,)], covers=("MaskIndexPut",))  # fmt: skip
add(name="index_put_mask_accumulate",
    fn=lambda x, v: ds.index_put(x, (ds.tensor(_ROWS_MASK),), v, accumulate=True),
    ref=lambda x, v: _np_mask_put(x, v, True),
    torch_fn=lambda x, v: x.index_put((torch.tensor(_ROWS_MASK),), v, accumulate=True),
    shapes=[(3, 4), (2, 4)], covers=("MaskIndexPut",))  # fmt: skip

# scatter / scatter_reduce with an empty index: x's copy (EmptyScatter; src's gradient is a
# known zero, checked in tests/test_fuzz_regressions_s29.py: PyTorch's backward refuses a
# src that requires grad here, "got [3, 0] but expected shape compatible with [3, 4]")
_EMPTY_IDX = np.zeros((3, 0), dtype=np.int64)


def _empty_scatter(lib, x):
    src = lib.ones((3, 4), dtype=x.dtype)
    return x.scatter_reduce(1, lib.tensor(_EMPTY_IDX), src, "sum") * 2.0


add(name="scatter_reduce_empty_index", fn=lambda x: _empty_scatter(ds, x), ref=lambda x: x * 2.0,
    torch_fn=lambda x: _empty_scatter(torch, x), shapes=[(3, 5)],
    covers=("EmptyScatter",))  # fmt: skip
