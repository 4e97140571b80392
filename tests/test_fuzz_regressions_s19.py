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


def test_igamma_at_huge_a_near_x_equal_a():
    # P(a, x) and Q(a, x) for a >= 1e8 near x = a: descent's series and continued fraction
    # stopped at their term caps (P(1e10, 1e10) was 0.34, not 0.5); now Temme's uniform
    # expansion, as PyTorch's (Cephes') kernel within |x - a| < 4.5 sqrt(a), where it applies
    # it (beyond, PyTorch's capped series is off: P(1e8, 1e8 - 5e4) is 1.86e-7 there, 2.85e-7
    # by the expansion and by the normal approximation); far from a, P is 0 or 1
    f = np.array([-4.0, -2.0, -0.5, 0.0, 0.5, 2.0, 4.0])
    for a0 in (1e8, 1e9, 1e10, 1e12):
        a = np.full(f.shape, a0)
        x = a * (1 + f / math.sqrt(a0))
        ta, tx = torch.tensor(a), torch.tensor(x)
        da, dx = ds.tensor(a), ds.tensor(x)
        _same(ds.igamma(da, dx).numpy(), torch.igamma(ta, tx).numpy(), 1e-9)
        _same(ds.igammac(da, dx).numpy(), torch.igammac(ta, tx).numpy(), 1e-9)
    a, x = ds.tensor([1e9, 1e9, 1e9]), ds.tensor([1.0, 1e30, 2e9])
    _same(ds.special.gammainc(a, x).numpy(), np.array([0.0, 1.0, 1.0], np.float32), 0)


def test_frac_passes_sgns_known_zero_gradient():
    # main fuzz, seed 19137008: prod > frac > sgn with an inf. PyTorch's frac backward is grad
    # itself (sgn's zero tensor passes on to prod's backward, which keeps it: x.grad 0);
    # descent's frac, x - trunc(x), materialized it at trunc (zeros), and prod's backward made
    # 0 * inf = nan. trunc alone still materializes it, as PyTorch's zeros_like(grad).
    for dtype in ("float32", "float64"):
        for chain in (lambda m, x: m.prod(x, 0).frac().sgn(),
                      lambda m, x: m.prod(x, 0).trunc().sgn(),
                      lambda m, x: (x.frac() * 3).sum()):  # fmt: skip
            x, t = _pair([[1.0, 1.5, 1.0], [2.0, 1.0, math.inf]], dtype)
            chain(ds, x).sum().backward()
            chain(torch, t).sum().backward()
            _same(x.grad.numpy(), t.grad.numpy(force=True), 0)  # (a ZeroTensor in torch)


def test_threshold_of_an_integer_tensor_keeps_its_dtype():
    # probe, session 19: F.threshold(int tensor, 0.5, -2.0) was float32; PyTorch casts the
    # threshold and the value to the tensor's dtype (toward zero) and refuses an overflow
    vals = [-2, -1, 0, 1, 2, 100]
    for dtype in ("int64", "int32", "int16", "int8", "uint8"):
        v = [abs(e) for e in vals] if dtype == "uint8" else vals
        x, t = _pair(v, dtype, requires_grad=False)
        for thr, val in ((0.5, 7.9), (-1.5, 3.0), (1, 5), (2.0, 0.0)):
            if dtype == "uint8" and thr < 0:
                continue
            y = ds.nn.functional.threshold(x, thr, val)
            z = torch.nn.functional.threshold(t, thr, val)
            _same(y.numpy(), z.numpy(), 0)
            x2, t2 = x.clone(), t.clone()
            ds.nn.functional.threshold(x2, thr, val, inplace=True)
            torch.nn.functional.threshold(t2, thr, val, inplace=True)
            _same(x2.numpy(), t2.numpy(), 0)
    x, t = _pair([1, 2], "int8", requires_grad=False)
    for thr, val in ((1000.0, 0.0), (1.0, 300.0)):
        for lib, a in ((ds, x), (torch, t)):
            try:
                lib.nn.functional.threshold(a, thr, val)
                raise AssertionError(f"{lib.__name__}: no overflow error")
            except RuntimeError as e:
                assert "without overflow" in str(e)


def test_vander_keeps_a_floating_dtype():
    # probe, session 19: torch.vander of float32 was float64 in descent (NumPy's
    # promote_types(float32, int64)); PyTorch keeps a floating dtype, integers go to int64
    for dtype, rtol in (("float32", 1e-5), ("float64", 1e-12)):
        for n, inc in ((None, False), (4, True)):
            x, t = _pair([2.0, -3.0, 0.5], dtype)
            y = ds.vander(x, n, increasing=inc)
            _same(y.detach().numpy(), torch.vander(t.detach(), n, increasing=inc).numpy(), 0)
            # torch.vander's own backward raises in torch 2.13 (its cumprod_ writes a saved
            # tensor); linalg.vander is the same matrix, columns reversed
            y.sum().backward()
            torch.linalg.vander(t, N=n).sum().backward()
            _same(x.grad.numpy(), t.grad.numpy(), rtol)
    x, t = _pair([1, 0], "uint8", requires_grad=False)
    _same(ds.vander(x).numpy(), torch.vander(t).numpy(), 0)


def test_losses_with_a_bool_mask_operand():
    # integer/bool probe, session 19: F.mse_loss(pred, bool_mask) (and smooth_l1_loss, either
    # side; huber_loss with a bool target) work in PyTorch, which promotes the pair; descent's
    # input - target refused the bool tensor
    cases = [("mse_loss", True), ("smooth_l1_loss", True), ("huber_loss", False)]
    for name, bool_input_too in cases:
        for dtype, rtol in (("float32", 1e-6), ("float64", 1e-13)):
            orders = (False, True) if bool_input_too else (False,)
            for bool_first in orders:
                x, t = _pair([1.0, 0.5, -2.0, 3.0], dtype)
                mb, mt = _pair([True, False, True, False], "bool", requires_grad=False)
                a, b = (mb, x) if bool_first else (x, mb)
                c, d = (mt, t) if bool_first else (t, mt)
                y = getattr(ds.nn.functional, name)(a, b)
                z = getattr(torch.nn.functional, name)(c, d)
                _same(y.detach().numpy(), z.detach().numpy(), rtol)
                if name == "huber_loss":  # torch 2.13's huber backward raises on the bool
                    continue
                y.backward()
                z.backward()
                _same(x.grad.numpy(), t.grad.numpy(), rtol)


def test_poisson_nll_loss_with_a_bool_input():
    # integer/bool probe, session 19: a bool log-rate raised "expected a floating tensor";
    # PyTorch computes exp(x) - t x in float32 (log_input=False raises in both: bool - float)
    for kw in ({}, {"full": True}, {"reduction": "none"}):
        mb, mt = _pair([True, False, True, True], "bool", requires_grad=False)
        y, z = _pair([1.0, 0.5, 3.0, 0.0], "float32", requires_grad=False)
        _same(ds.nn.functional.poisson_nll_loss(mb, y, **kw).numpy(),
              torch.nn.functional.poisson_nll_loss(mt, z, **kw).numpy(), 1e-6)  # fmt: skip
