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
