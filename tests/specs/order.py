"""Specs of the scans and order ops of issue 13: cumprod, cummax, cummin, logcumsumexp, sort,
argsort, topk, kthvalue, msort, median, mode (see tests/specs/__init__.py for the format).

The ops that select values (sort, topk, kthvalue, median, mode, cummax/cummin) are gathers at
indices computed on the arrays: their inputs have distinct values where a tie would make the
function non-differentiable (or PyTorch's tie order implementation-defined)."""

from __future__ import annotations

import numpy as np
import torch

import descent as ds

from . import Spec

SPECS: list[Spec] = []


def add(**kw) -> None:
    SPECS.append(Spec(**kw))


R = (3, 5)


def distinct(shape, scale=0.37):
    def sampler(rng, dtype):
        n = int(np.prod(shape))
        v = (rng.permutation(n) - n / 2) * scale + rng.uniform(-0.05, 0.05, n)
        return [v.reshape(shape)]

    return sampler


def with_zeros(rng, dtype):
    x = rng.uniform(0.5, 1.5, R) * rng.choice([-1, 1], R)
    x[0, 1] = 0.0
    x[1, 0] = x[1, 3] = 0.0  # two zeros in one row
    return [x]


def _np_cummax(x, axis, fn=np.maximum):
    return fn.accumulate(x, axis=axis)


def _np_logcumsumexp(x, axis):
    return np.logaddexp.accumulate(x, axis=axis)


def _kth(x, k, axis):
    return np.sort(x, axis=axis).take(k - 1, axis=axis)


def _median(x, axis):
    n = x.shape[axis]
    return np.sort(x, axis=axis).take((n - 1) // 2, axis=axis)


def _mode_values(x, axis):
    def row(v):
        vals, counts = np.unique(v, return_counts=True)
        return vals[np.argmax(counts)]

    return np.apply_along_axis(row, axis, x)


for nm, f, r, tf, shape, cov, smp in [
    ("cumprod", lambda x: ds.cumprod(x, 1), lambda x: np.cumprod(x, 1),
     lambda x: torch.cumprod(x, 1), R, "CumProd", None),
    ("cumprod_method_dim0", lambda x: x.cumprod(0), lambda x: np.cumprod(x, 0),
     lambda x: x.cumprod(0), R, "CumProd", None),
    ("cumprod_zeros", lambda x: x.cumprod(dim=-1), lambda x: np.cumprod(x, -1),
     lambda x: x.cumprod(-1), R, "CumProd", with_zeros),
    ("logcumsumexp", lambda x: ds.logcumsumexp(x, 1), lambda x: _np_logcumsumexp(x, 1),
     lambda x: torch.logcumsumexp(x, 1), R, "LogCumSumExp", None),
    ("logcumsumexp_wide_range", lambda x: (x * 40.0).logcumsumexp(0),
     lambda x: _np_logcumsumexp(x * 40.0, 0), lambda x: (x * 40.0).logcumsumexp(0), R,
     "LogCumSumExp", None),
    ("cummax", lambda x: ds.cummax(x, 1).values, lambda x: _np_cummax(x, 1),
     lambda x: torch.cummax(x, 1).values, R, "TakeAlongAxis", distinct(R)),
    ("cummin_method", lambda x: x.cummin(0).values, lambda x: _np_cummax(x, 0, np.minimum),
     lambda x: x.cummin(0).values, R, "TakeAlongAxis", distinct(R)),
    ("sort", lambda x: ds.sort(x, 1).values, lambda x: np.sort(x, 1),
     lambda x: torch.sort(x, 1).values, R, "SelectedValues", distinct(R)),
    ("sort_descending_method", lambda x: x.sort(dim=0, descending=True).values,
     lambda x: -np.sort(-x, 0), lambda x: x.sort(dim=0, descending=True).values, R,
     "SelectedValues", distinct(R)),
    ("argsort_gather", lambda x: x.gather(1, ds.argsort(x, 1)),
     lambda x: np.take_along_axis(x, np.argsort(x, 1), 1),
     lambda x: x.gather(1, torch.argsort(x, 1)), R, "TakeAlongAxis", distinct(R)),
    ("topk", lambda x: ds.topk(x, 2, 1).values, lambda x: -np.sort(-x, 1)[:, :2],
     lambda x: torch.topk(x, 2, 1).values, R, "SelectedValues", distinct(R)),
    ("topk_smallest_method", lambda x: x.topk(2, dim=0, largest=False).values,
     lambda x: np.sort(x, 0)[:2], lambda x: x.topk(2, dim=0, largest=False).values, R,
     "SelectedValues", distinct(R)),
    ("kthvalue", lambda x: ds.kthvalue(x, 2, 1).values, lambda x: _kth(x, 2, 1),
     lambda x: torch.kthvalue(x, 2, 1).values, R, "SelectedValues", distinct(R)),
    ("kthvalue_keepdim_method", lambda x: x.kthvalue(3, 0, keepdim=True).values,
     lambda x: np.expand_dims(_kth(x, 3, 0), 0), lambda x: x.kthvalue(3, 0, True).values, R,
     "SelectedValues", distinct(R)),
    ("median_dim", lambda x: ds.median(x, 1).values, lambda x: _median(x, 1),
     lambda x: torch.median(x, 1).values, (3, 6), "SelectedValues", distinct((3, 6))),
    ("median_all", lambda x: x.median(), lambda x: _median(x.reshape(-1), 0),
     lambda x: x.median(), R, "EvenlyShared", distinct(R)),
    # Distinct values: every count is 1, so the mode is the smallest value (a repeated mode is
    # not differentiable: moving one copy changes the counts; tests/test_op_edges.py checks it
    # against PyTorch instead).
    ("mode", lambda x: ds.mode(x, 1).values * 2.0, lambda x: _mode_values(x, 1) * 2.0,
     lambda x: torch.mode(x, 1).values * 2.0, (3, 8), "SelectedValues", distinct((3, 8))),
    ("msort", ds.msort, lambda x: np.sort(x, 0), torch.msort, R, "SelectedValues",
     distinct(R)),
]:  # fmt: skip
    add(name=nm, fn=f, ref=r, torch_fn=tf, shapes=[shape], covers=(cov,), inputs=smp)
