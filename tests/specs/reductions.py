"""Specs of issue 13's reductions and einsum notation: std_mean, var_mean, aminmax, amax/amin
by keyword, and einsum with '...' and repeated letters (traces, diagonals). all, any and
count_nonzero have no gradient; tests/test_op_edges.py checks them against PyTorch."""

from __future__ import annotations

import numpy as np
import torch

import descent as ds

from . import Spec

SPECS: list[Spec] = []


def add(**kw) -> None:
    SPECS.append(Spec(**kw))


R3 = (2, 3, 4)


def distinct(shape, scale=0.37):
    def sampler(rng, dtype):
        n = int(np.prod(shape))
        v = (rng.permutation(n) - n / 2) * scale + rng.uniform(-0.05, 0.05, n)
        return [v.reshape(shape)]

    return sampler


for nm, f, r, tf, cov, smp in [
    ("var_mean", lambda x: ds.stack(ds.var_mean(x, 1)), lambda x: np.stack([x.var(1, ddof=1),
     x.mean(1)]), lambda x: torch.stack(torch.var_mean(x, 1)), ("Mean", "Var"), None),
    ("std_mean_keepdim_c0", lambda x: ds.cat(ds.std_mean(x, (0, 2), correction=0,
     keepdim=True)), lambda x: np.concatenate([x.std((0, 2), keepdims=True),
     x.mean((0, 2), keepdims=True)]), lambda x: torch.cat(torch.std_mean(x, (0, 2),
     correction=0, keepdim=True)), ("Var", "Mean"), None),
    ("std_mean_all", lambda x: ds.stack(ds.std_mean(x)), lambda x: np.stack([x.std(ddof=1),
     x.mean()]), lambda x: torch.stack(torch.std_mean(x)), ("Var", "Mean"), None),
    ("aminmax_dim", lambda x: ds.stack(ds.aminmax(x, dim=1)), lambda x: np.stack([x.min(1),
     x.max(1)]), lambda x: torch.stack(torch.aminmax(x, dim=1)), ("Max",), distinct(R3)),
    ("aminmax_all_method", lambda x: ds.stack(x.aminmax()), lambda x: np.stack([x.min(),
     x.max()]), lambda x: torch.stack(x.aminmax()), ("Max",), distinct(R3)),
]:  # fmt: skip
    add(name=nm, fn=f, ref=r, torch_fn=tf, shapes=[R3], covers=cov, inputs=smp)

for nm, spec, shapes in [
    ("einsum_trace", "ii", [(4, 4)]),
    ("einsum_diagonal", "ii->i", [(4, 4)]),
    ("einsum_batch_trace", "bii->b", [(2, 3, 3)]),
    ("einsum_diag_times", "ii,i->i", [(3, 3), (3,)]),
    ("einsum_triple_repeat", "iij->ij", [(3, 3, 2)]),
    ("einsum_ellipsis_matmul", "...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),
    ("einsum_ellipsis_broadcast", "...ij,...jk", [(2, 1, 3, 4), (5, 4, 2)]),
    ("einsum_ellipsis_sum_lead", "i...->...", [(3, 2, 4)]),
    ("einsum_ellipsis_middle", "b...i,b...i->b...", [(2, 3, 4), (2, 1, 4)]),
    ("einsum_ellipsis_trailing", "ij...,jk...->ik...", [(2, 3, 4), (3, 5, 4)]),
    ("einsum_ellipsis_diagonal", "...ii->...i", [(2, 3, 3)]),
]:
    add(name=nm, fn=lambda *ops, _s=spec: ds.einsum(_s, *ops),
        ref=lambda *ops, _s=spec: np.einsum(_s, *ops),
        torch_fn=lambda *ops, _s=spec: torch.einsum(_s, *ops), shapes=shapes,
        covers=("Einsum",))  # fmt: skip
