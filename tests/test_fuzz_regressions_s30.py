"""Descent-side leftovers of session 29's complex fuzz and session 30's campaigns
(tests/fuzz_s28.py; docs/fuzz_long_run.md, "Session 30 (helper-229)"). Each case runs the same
code in descent and in torch 2.13 and compares values and gradients (nan positions exact)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import descent

inf, nan = math.inf, math.nan


def _np(t):
    t = t.detach()
    return t.resolve_conj().numpy() if isinstance(t, torch.Tensor) else t.numpy()


def _same(d, t, rtol=1e-12, atol=1e-12):
    a, b = _np(d), _np(t)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    if a.dtype.kind == "c":
        a, b = np.stack([a.real, a.imag]), np.stack([b.real, b.imag])
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


# ---------------------------------------------------------------------------------------------
# 1. irfft's gradient doubles bins 1 .. n - (n//2 + 1) as PyTorch's fft_c2r_backward,
# gI.narrow(-1, 1, d).mul_(2): a complex product by 2 + 0i, so an infinite part makes the other
# nan (inf + 0i -> inf + nan i); descent weighted each part alone (inf + 0i). Complex fuzz
# 29620662, 29632393, 29634777, 29687107 (irfft2 / irfftn, then 3 ** v, 0 ** v, v ** v).


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("n", [4, 5, 6])
@pytest.mark.parametrize("g0", [inf, -inf, nan, 2.0])
def test_irfft_gradient_doubles_by_a_complex_product(dtype, create_graph, n, g0):
    outs = []
    for m in (descent, torch):
        x = m.tensor([[0.5 - 0.25j, -1.0 + 2.0j, 0.25 + 1.0j, 1.5 - 0.5j]], dtype=getattr(m, dtype))
        x.requires_grad_(True)
        y = m.fft.irfft(x, n=n)
        w = m.ones(y.shape, dtype=y.dtype)
        w[0, 0] = g0
        (gx,) = m.autograd.grad(y, x, w, create_graph=create_graph)
        outs.append(gx)
    _same(*outs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fn", ["irfft2", "irfftn"])
@pytest.mark.parametrize("norm", [None, "forward", "ortho"])
def test_irfft2_gradient_with_infinities(fn, norm):
    outs = []
    for m in (descent, torch):
        x = m.tensor(
            [[1.0 + 1.2j, 1.0 - 0.7j, -1.0 - 1.0j], [2.0 + 0.5j, 1000.0 - 0.1j, -1.0 - 1.4j]],
            dtype=m.complex128,
            requires_grad=True,
        )
        y = getattr(m.fft, fn)(x, norm=norm)
        w = m.tensor([[-4.0, -2.7, -5.0, 2.6], [2.2, -2.5, -0.1, -5.8]], dtype=m.float64)
        (gx,) = m.autograd.grad(((3**y) * w).sum(), x)
        outs.append(gx)
    _same(*outs, rtol=1e-9)


def test_irfft2_then_pow_the_fuzz_program():
    # complex fuzz 29620662 (shrunk): -inf vs nan in x's gradient
    outs = []
    for m in (descent, torch):
        x = m.tensor(
            [
                [
                    [1.0 + 1.1652653364178294j, 1.0 - 0.7362809079488479j, -1.0 - 1.03538820j],
                    [2.0 + 0.5323907004060923j, 1000.0 - 0.13995418685497354j, -1.0 - 1.3938821j],
                    [1.0 - 1.4855178181649296j, -2.0 + 0.489566124207763j, 1.0 + 0.14640561j],
                ]
            ],
            dtype=m.complex128,
            requires_grad=True,
        )
        v2 = 3 ** m.fft.irfft2(x, s=None, norm="forward")
        w = m.tensor(
            [[[-4.04, -2.76, -4.98, 2.62], [2.26, -2.52, -0.136, -5.8], [-0.32, 0.3, -4.6, -0.7]]],
            dtype=m.float64,
        )
        outs.append(m.autograd.grad((v2 * w).sum(), [x])[0])
    _same(*outs, rtol=1e-9)


def test_irfft_gradient_finite_unchanged():
    # control: finite gradients still equal PyTorch's and central differences' (float64)
    xd = descent.tensor([[0.5 - 0.25j, -1.0 + 2.0j, 0.25 + 1.0j]], dtype=descent.complex128)
    xd.requires_grad_(True)
    xt = torch.tensor([[0.5 - 0.25j, -1.0 + 2.0j, 0.25 + 1.0j]], dtype=torch.complex128)
    xt.requires_grad_(True)
    w = np.array([[0.3, -1.2, 2.0, 0.7, -0.4]])
    (gd,) = descent.autograd.grad((descent.fft.irfft(xd, n=5) * descent.tensor(w)).sum(), xd)
    (gt,) = torch.autograd.grad((torch.fft.irfft(xt, n=5) * torch.tensor(w)).sum(), xt)
    _same(gd, gt)


# ---------------------------------------------------------------------------------------------
# 2. scaled_dot_product_attention: a row whose scores are all -inf without a mask (an infinite
# key, causal or not) attends to nothing, as PyTorch 2.13's _safe_softmax: output 0, gradients 0
# (descent handled only rows a mask emptied: nan). nn fuzz 30709016 (float32 there: the numba
# softmax kernel's path, open; the NumPy path of float64 / float16 is fixed).


def _sdpa_case(m, dtype, causal, all_inf, create_graph):
    k = [[30.0, inf], [0.0, 5.8], [-1.17, -1e-8], [-0.31, 1e-8]]
    if all_inf:
        k = [[30.0, inf], [0.0, inf], [-1.17, inf], [-0.31, inf]]
    q = m.tensor([[[0.88, -0.466], [0.355, -0.33]]], dtype=dtype, requires_grad=True)
    k = m.tensor([k], dtype=dtype, requires_grad=True)
    v = m.tensor(
        [[[-2.98, -3.82], [-3.98, 1.09], [2.67, -1.67], [-1.62, -5.94]]],
        dtype=dtype,
        requires_grad=True,
    )
    y = m.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=2.0)
    w = m.tensor([[[0.5, -1.5], [2.0, 0.25]]], dtype=dtype)
    gq, gk, gv = m.autograd.grad((y * w).sum(), [q, k, v], create_graph=create_graph)
    return y, gq, gk, gv


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("causal, all_inf", [(True, False), (True, True), (False, True)])
def test_sdpa_row_of_infinite_scores_is_zero_float64(causal, all_inf, create_graph):
    d = _sdpa_case(descent, descent.float64, causal, all_inf, create_graph)
    t = _sdpa_case(torch, torch.float64, causal, all_inf, create_graph)
    for a, b in zip(d, t, strict=True):
        _same(a, b)


def test_sdpa_finite_rows_unchanged_float64():
    # control: without an infinite score the values and gradients still match PyTorch's
    outs = []
    for m in (descent, torch):
        g = np.random.default_rng(3)
        q, k, v = (m.tensor(g.standard_normal((2, 3, 4)), requires_grad=True) for _ in range(3))
        y = m.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        outs.append((y, *m.autograd.grad(y.sum(), [q, k, v])))
    for a, b in zip(*outs, strict=True):
        _same(a, b)


# ---------------------------------------------------------------------------------------------
# 3. svd / svdvals / pinv of a matrix holding an inf: NumPy's OpenBLAS gesdd (vectors computed)
# never returns, float32 and float64 (grad2 fuzz 30500201: svdvals hung the run). As torch's:
# nan U and S for that matrix (the other batch elements computed), and a matrix holding a nan
# raises LinAlgError. Run in a child process, so that a regression fails instead of hanging.

_SVD_CHILD = r"""
import json, math, sys
import numpy as np
import descent as m
out = {}
for dt in ("float32", "float64"):
    for bad in ("inf", "-inf", "nan"):
        a = [[0.567, 0.84, 0.167], [float(bad), 0.797, 0.668], [0.391, -1e-8, 1.32]]
        x = m.tensor([a, [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.5]]],
                     dtype=getattr(m, dt), requires_grad=True)
        r = {}
        for name, f in (("svdvals", lambda: m.linalg.svdvals(x)),
                        ("svd_S", lambda: m.linalg.svd(x)[1]),
                        ("svd_U", lambda: m.linalg.svd(x, full_matrices=False)[0]),
                        ("pinv", lambda: m.linalg.pinv(x))):
            try:
                r[name] = np.asarray(f().detach().numpy(), np.float64).tolist()
            except m.linalg.LinAlgError as e:
                r[name] = "LinAlgError: " + str(e)
        out[dt + bad] = r
print(json.dumps(out).replace("NaN", '"nan"'))
"""


def test_svd_of_a_matrix_with_an_inf_returns():
    import json
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-c", _SVD_CHILD], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads(p.stdout.strip().splitlines()[-1])
    for dt in ("float32", "float64"):
        for bad in ("inf", "-inf", "nan"):
            r = res[dt + bad]
            a = [[0.567, 0.84, 0.167], [float(bad), 0.797, 0.668], [0.391, -1e-8, 1.32]]
            x = torch.tensor(
                [a, [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.5]]],
                dtype=getattr(torch, dt),
            )
            if bad == "nan":  # torch: "linalg.svd: (Batch element 0): The algorithm failed..."
                with pytest.raises(RuntimeError, match="non-finite values"):
                    torch.linalg.svdvals(x)
                for name in ("svdvals", "svd_S", "svd_U", "pinv"):
                    assert "non-finite values" in r[name], (dt, name, r[name])
                continue
            ts = torch.linalg.svdvals(x).double().numpy()
            tu = torch.linalg.svd(x, full_matrices=False)[0].double().numpy()
            for name, want in (("svdvals", ts), ("svd_S", ts), ("svd_U", tu)):
                got = np.array(r[name], dtype=float)  # json's "nan" strings become nan
                np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=name)
                np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)
            assert np.isnan(np.array(r["pinv"], dtype=float)[0]).all()


# ---------------------------------------------------------------------------------------------
# 4. matrix_exp of a matrix holding an inf raised OverflowError (log2 of an infinite norm) and
# one holding a nan skipped the scaling of the whole batch: nan for that matrix, the others as
# torch's (seen while checking 3).


@pytest.mark.parametrize("bad", [inf, -inf, nan])
def test_matrix_exp_with_a_non_finite_entry(bad):
    outs = []
    for m in (descent, torch):
        a = m.tensor([[0.5, 0.8, 0.1], [bad, 0.7, 0.6], [0.3, -1e-8, 1.3]], dtype=m.float64)
        outs.append((m.linalg.matrix_exp(a), m.linalg.matrix_exp(m.stack([a, 30 * m.eye(3)]))))
    _same(outs[0][0], outs[1][0])
    _same(outs[0][1], outs[1][1], rtol=1e-13)


# ---------------------------------------------------------------------------------------------
# 5. hardswish's second order: PyTorch's double backward is where(-3 < x < 3, grad * gy / 3, 0),
# so outside (-3, 3) the x-derivative is 0 even for a nan or inf gy (hypot(0, 0) after
# hardswish gives 0 / 0 = nan); descent's gy * (x / 3 + 1/2) under a where gave 0 * nan = nan.
# Session 29's grad2 programs 28540288 and 28543444 (the "torch right" hardswish -> hypot).


@pytest.mark.parametrize("gy", [nan, inf, -inf, 1.5])
def test_hardswish_second_order_with_a_non_finite_cotangent(gy):
    xs = [-5.0, -3.5, -3.0, -1.0, -0.0, 0.5, 2.9, 3.0, 3.5, 7.0]
    outs = []
    for m in (descent, torch):
        x = m.tensor(xs, dtype=m.float64, requires_grad=True)
        g = m.full((len(xs),), gy, dtype=m.float64, requires_grad=True)
        (gx,) = m.autograd.grad(m.nn.functional.hardswish(x), x, g, create_graph=True)
        w = m.tensor(np.linspace(0.3, 1.1, len(xs)), dtype=m.float64)
        outs.append((gx, *m.autograd.grad((gx * w).sum(), [x, g])))
    for d, t in zip(*outs, strict=True):
        _same(d, t)


def test_hardswish_hypot_the_fuzz_program():
    # grad2 fuzz 28543444 (float64): nan vs 0.0 in the second-order gradient
    outs = []
    for m in (descent, torch):
        x = m.tensor(
            [[[0.6325552866050985, 1e-08, -30.0], [-1.0, -1.0, 0.06515009445116782]]],
            dtype=m.float64,
            requires_grad=True,
        )
        v2 = m.nn.functional.hardswish(m.minimum(x, x))
        v3 = m.hypot(v2, v2)
        w = m.tensor([[[-0.27, 1.77, 0.1], [-0.16, -0.18, -0.32]]], dtype=m.float64)
        (g,) = m.autograd.grad((v3 * w).sum(), [x], create_graph=True)
        w2 = m.tensor([[[0.0, -0.5, -1.0], [1.0, 1.0, -1.0]]], dtype=m.float64)
        (h,) = m.autograd.grad((g * w2).sum() + (v3 * 0).sum(), [x])
        outs.append((g, h))
    for d, t in zip(*outs, strict=True):
        _same(d, t)


def test_hardswish_second_order_finite_differences():
    # control: away from the kinks the second derivative is 1/3 gy (central differences)
    x = descent.tensor([-2.0, -0.5, 1.0, 2.5], dtype=descent.float64, requires_grad=True)
    (gx,) = descent.autograd.grad(descent.nn.functional.hardswish(x).sum(), x, create_graph=True)
    (h,) = descent.autograd.grad(gx.sum(), x)
    xv, eps = np.array([-2.0, -0.5, 1.0, 2.5]), 1e-5

    def d1(v):
        return np.where(v <= -3, 0.0, np.where(v >= 3, 1.0, v / 3 + 0.5))

    np.testing.assert_allclose(h.numpy(), (d1(xv + eps) - d1(xv - eps)) / (2 * eps), rtol=1e-6)
