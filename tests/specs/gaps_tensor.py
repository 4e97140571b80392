"""Specs of the ops defined by descent/ops/gaps_tensor.py (docs/torch_gaps_tensor.md): AsStrided,
and the differentiable compositions (the *_scatter family, index_copy, index_reduce,
masked_scatter, put, diagflat, sum_to_size), so each gets the table's float64 gradcheck,
gradgradcheck and float32 comparison with PyTorch."""

from __future__ import annotations

import numpy as np
import torch

import descent as ds

from . import Spec


def _as_strided_ref(a):
    flat = a.reshape(-1)
    idx = 1 + np.arange(3)[:, None] * 2 + np.arange(4)[None, :] * 1  # overlapping windows
    return flat[idx]


def _diag_scatter_ref(a, b):
    out = a.copy()
    i = np.arange(3)
    out[i, i + 1] = b
    return out


def _masked_scatter_ref(a, b):
    out = a.copy()
    m = _MASK_NP
    out[m] = b.reshape(-1)[: int(m.sum())]
    return out


_MASK_NP = np.array([[True, False, True, False], [False, False, True, True], [True] * 4])
_IDX = [2, 0]


def _diag_embed_ref(a, offset):
    n = a.shape[-1] + abs(offset)
    out = np.zeros(a.shape[:-1] + (n, n), a.dtype)
    i = np.arange(a.shape[-1])
    rows, cols = (i, i + offset) if offset >= 0 else (i - offset, i)
    out[..., rows, cols] = a
    return out


def _index_reduce_inputs(rng, dtype):
    # distinct values: amax/amin ties would make the function non-differentiable
    x = rng.permutation(12).reshape(3, 4).astype(dtype) / 3 - 2
    s = rng.permutation(8).reshape(2, 4).astype(dtype) / 3 - 1.1
    return [x, s]


SPECS = [
    Spec(
        name="as_strided_overlapping",
        fn=lambda a: ds.as_strided(a, (3, 4), (2, 1), 1),
        ref=_as_strided_ref,
        torch_fn=lambda a: torch.as_strided(a, (3, 4), (2, 1), 1),
        shapes=[(3, 4)],
        covers=("AsStrided",),
    ),
    Spec(
        name="select_scatter",
        covers=("SetItem",),
        fn=lambda a, b: ds.select_scatter(a, b, 1, -1),
        ref=lambda a, b: np.concatenate([a[:, :3], b[:, None]], 1),
        torch_fn=lambda a, b: torch.select_scatter(a, b, 1, -1),
        shapes=[(3, 4), (3,)],
    ),
    Spec(
        name="slice_scatter",
        covers=("SetItem",),
        fn=lambda a, b: ds.slice_scatter(a, b, 1, 0, None, 2),
        ref=lambda a, b: np.stack([b[:, 0], a[:, 1], b[:, 1], a[:, 3]], 1),
        torch_fn=lambda a, b: torch.slice_scatter(a, b, 1, 0, None, 2),
        shapes=[(3, 4), (3, 2)],
    ),
    Spec(
        name="diagonal_scatter_offset",
        covers=("SetItem",),
        fn=lambda a, b: ds.diagonal_scatter(a, b, 1),
        ref=_diag_scatter_ref,
        torch_fn=lambda a, b: torch.diagonal_scatter(a, b, 1),
        shapes=[(3, 4), (3,)],
    ),
    Spec(
        name="diagflat",
        covers=("SetItem",),
        fn=lambda a: ds.diagflat(a, -1),
        ref=lambda a: np.diagflat(a, -1),
        torch_fn=lambda a: torch.diagflat(a, -1),
        shapes=[(2, 2)],
    ),
    Spec(
        name="index_copy",
        covers=("SetItem",),
        fn=lambda a, b: ds.index_copy(a, 0, ds.tensor(_IDX), b),
        ref=lambda a, b: np.stack([b[1], a[1], b[0]]),
        torch_fn=lambda a, b: torch.index_copy(a, 0, torch.tensor(_IDX), b),
        shapes=[(3, 4), (2, 4)],
    ),
    Spec(
        name="index_reduce_amax",
        covers=("ScatterReduce",),
        fn=lambda a, b: ds.index_reduce(a, 0, ds.tensor(_IDX), b, "amax"),
        ref=lambda a, b: np.stack([np.maximum(a[0], b[1]), a[1], np.maximum(a[2], b[0])]),
        torch_fn=lambda a, b: torch.index_reduce(a, 0, torch.tensor(_IDX), b, "amax"),
        shapes=[(3, 4), (2, 4)],
        inputs=_index_reduce_inputs,
    ),
    Spec(
        name="index_reduce_prod",
        covers=("ScatterReduce",),
        fn=lambda a, b: ds.index_reduce(a, 0, ds.tensor(_IDX), b, "prod"),
        ref=lambda a, b: np.stack([a[0] * b[1], a[1], a[2] * b[0]]),
        torch_fn=lambda a, b: torch.index_reduce(a, 0, torch.tensor(_IDX), b, "prod"),
        shapes=[(3, 4), (2, 4)],
    ),
    Spec(
        name="masked_scatter",
        covers=("MaskedScatter",),
        fn=lambda a, b: ds.masked_scatter(a, ds.tensor(_MASK_NP), b),
        ref=_masked_scatter_ref,
        torch_fn=lambda a, b: torch.masked_scatter(a, torch.tensor(_MASK_NP), b),
        shapes=[(3, 4), (3, 4)],
    ),
    Spec(
        name="put_accumulate",
        covers=("IndexAdd",),
        fn=lambda a, b: ds.put(a, ds.tensor([0, 5, 0]), b, accumulate=True),
        ref=lambda a, b: a + np.bincount([0, 5, 0], b, minlength=12).reshape(3, 4),
        torch_fn=lambda a, b: a.put(torch.tensor([0, 5, 0]), b, accumulate=True),
        shapes=[(3, 4), (3,)],
    ),
    # composites over a constant condition (FixedWhere: PyTorch's nodes save nothing)
    Spec(
        name="fill_tensor_value",
        covers=("FixedWhere",),
        fn=lambda a, b: ds.fill(a, b.sum()),
        ref=lambda a, b: np.full_like(a, b.sum()),
        torch_fn=lambda a, b: torch.fill(a, b.sum()),
        shapes=[(3, 4), (2,)],
    ),
    Spec(
        name="diag_embed_offset",
        covers=("FixedWhere",),
        fn=lambda a: ds.diag_embed(a, -1),
        ref=lambda a: _diag_embed_ref(a, -1),
        torch_fn=lambda a: torch.diag_embed(a, -1),
        shapes=[(2, 3)],
    ),
    Spec(
        name="sum_to_size",
        covers=("Sum",),
        fn=lambda a: a.sum_to_size(3, 1),
        ref=lambda a: a.sum(axis=(0, 2)).reshape(3, 1),
        torch_fn=lambda a: a.sum_to_size(3, 1),
        shapes=[(2, 3, 4)],
    ),
]
