"""Regressions found by the session-19 fuzz campaigns (docs/fuzz_long_run.md, "Session 19 fuzz
campaign"): each case compares descent with torch 2.13 (the oracle), float32/float64 only."""

import math

import numpy as np
import torch

import descent as ds


def _pair(vals, dtype, requires_grad=True):
    a = ds.tensor(vals, dtype=getattr(ds, dtype), requires_grad=requires_grad)
    return a, torch.tensor(vals, dtype=getattr(torch, dtype), requires_grad=requires_grad)


def _same(a, b, rtol):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.allclose(a, b, rtol=rtol, atol=0, equal_nan=True), (a, b)


def test_mvlgamma_below_its_domain_computes_as_torch():
    # torch 2.13 no longer checks a > (p - 1)/2: lgamma's poles give inf, the rest is finite;
    # descent raised "all elements must be greater than (p-1)/2"
    vals = [0.2, 1.0, 0.5, -0.3, -5.0, math.nan, 3.0]
    for dtype, rtol in (("float64", 1e-12), ("float32", 1e-5)):
        for p in (1, 2, 3):
            x, t = _pair(vals, dtype)
            y, z = ds.mvlgamma(x, p), torch.mvlgamma(t, p)
            _same(y.detach().numpy(), z.detach().numpy(), rtol)
            y.sum().backward()
            z.sum().backward()
            _same(x.grad.numpy(), t.grad.numpy(), rtol)
    x, t = _pair([1.7, 3.25, 9.0], "float64", requires_grad=False)
    _same(ds.special.multigammaln(x, 5).numpy(), torch.special.multigammaln(t, 5).numpy(), 1e-12)
    x.mvlgamma_(4)
    t.mvlgamma_(4)
    _same(x.numpy(), t.numpy(), 1e-12)
