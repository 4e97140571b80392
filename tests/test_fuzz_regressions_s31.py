"""Descent-side causes found triaging session 30's second-derivative fuzz campaign (seed
30510001, tests/fuzz_s28.py grad2; docs/fuzz_long_run.md, "Session 31 (helper-234)"). Each case
runs the same code in descent and in torch 2.13 and compares values and gradients (nan and inf
positions exact), or checks a float64 second derivative against central differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import descent

inf, nan = math.inf, math.nan


def _np(t):
    return t.detach().numpy()


def _same(d, t, rtol=1e-12, atol=1e-12):
    a, b = _np(d), _np(t)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_array_equal(np.isinf(a) & (a > 0), np.isinf(b) & (b > 0))
    np.testing.assert_array_equal(np.isinf(a) & (a < 0), np.isinf(b) & (b < 0))
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


# ---------------------------------------------------------------------------------------------
# 1. logit under create_graph: PyTorch's infinitely_differentiable_logit_backward,
# where(lo <= x <= hi, gy / (x (1 - x)), nan or 0): the division keeps the sign of a zero x
# (gy / -0.0 = -inf; the no-graph kernel's scalar path gives gy * inf), a nan x is outside
# (0 with eps), and sgn's known-zero gradient stays 0 inside (PyTorch's zero tensor divided).
# grad2 fuzz 30534550, 30521196, 30535597, ... (9 inf signs), 30512045, 30514516, 30527763,
# 30560611, ... (nan vs 0), 30542548, 30566286, 30510985 (sgn after logit).

LOGIT_X = [-0.0, 0.0, 1.0, nan, -0.5, 1.5, 1e-7, 0.3, 1 - 1e-7, 1e-8, inf, -inf]
LOGIT_GY = [1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 0.5, -2.0, 0.7, 1.0, 1.0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("eps", [None, 1e-6, 0.0])
def test_logit_create_graph_as_pytorch(dtype, eps):
    outs = []
    for m in (descent, torch):
        x = m.tensor(LOGIT_X, dtype=getattr(m, dtype), requires_grad=True)
        gy = m.tensor(LOGIT_GY, dtype=getattr(m, dtype), requires_grad=True)
        (g,) = m.autograd.grad(m.logit(x, eps), x, gy, create_graph=True)
        hx, hgy = m.autograd.grad((g * m.tensor(LOGIT_GY, dtype=g.dtype)).sum(), [x, gy])
        outs.append((g, hx, hgy))
    for d, t in zip(*outs, strict=True):
        _same(d, t, rtol=1e-6 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("eps", [None, 1e-6])
@pytest.mark.parametrize("create_graph", [False, True])
def test_logit_known_zero_gradient_from_sgn(eps, create_graph):
    outs = []
    for m in (descent, torch):
        x = m.tensor([0.0, 1.0, 0.5, 2.0, -0.0, nan, 1e-8], dtype=m.float64, requires_grad=True)
        (g,) = m.autograd.grad(m.sgn(m.logit(x, eps)).sum(), x, create_graph=create_graph)
        outs.append(g)
    _same(*outs)


def test_logit_fuzz_program_30534550():
    outs = []
    for m in (descent, torch):
        x = m.tensor(
            [[-2.66, 2.74], [0.0, -0.0], [1e-08, 0.0]], dtype=m.float64, requires_grad=True
        )
        ct = m.tensor([[0.43, -0.75], [0.29, 0.83], [0.56, 0.51]], dtype=m.float64)
        (g,) = m.autograd.grad((m.logit(x) * ct).sum(), [x], create_graph=True)
        outs.append(g)
    _same(*outs)


@pytest.mark.parametrize("eps", [None, 1e-3])
def test_logit_second_derivative_finite_differences(eps):
    x0 = np.array([0.1, 0.3, 0.5, 0.77, 0.95])
    x = descent.tensor(x0, dtype=descent.float64, requires_grad=True)
    (g,) = descent.autograd.grad(descent.logit(x, eps).sum(), x, create_graph=True)
    (h,) = descent.autograd.grad(g.sum(), x)
    e = 1e-4
    f = lambda v: np.log(v / (1 - v))  # noqa: E731
    fd = (f(x0 + e) - 2 * f(x0) + f(x0 - e)) / e**2
    np.testing.assert_allclose(h.numpy(), fd, rtol=1e-5, atol=1e-6)  # (x = 0.5: exactly 0)


# ---------------------------------------------------------------------------------------------
# 2. Second derivatives with a nan or infinite incoming gradient (session 30's activation check,
# /work/notes/s30/helper-229/p_act2.py): sigmoid's and gelu's backward are one node under
# create_graph (ActivationBackward), so d/dz is PyTorch's (gg gy) f''(z), +-inf for an infinite
# gy (the composite's product rule gave gy (1 - y) - gy y = inf - inf = nan); softplus's mask
# beta x < threshold is a product, as PyTorch's softplus_double_backward (nan above the threshold
# for a nan / inf gy; a where gave 0).

ACT_X = [-5.0, -3.5, -3.0, -1.0, -0.0, 0.0, 0.5, 3.0, 3.5, 7.0, 20.0, 25.0, 1.4142135623730951]
ACTS = {
    "sigmoid": lambda m, x: m.sigmoid(x),
    "gelu": lambda m, x: m.nn.functional.gelu(x),
    "gelu_tanh": lambda m, x: m.nn.functional.gelu(x, approximate="tanh"),
    "softplus": lambda m, x: m.nn.functional.softplus(x),
    "softplus_beta": lambda m, x: m.nn.functional.softplus(x, beta=2.0, threshold=1.0),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("gv", [nan, inf, -inf, 0.75])
@pytest.mark.parametrize("act", sorted(ACTS))
def test_activation_second_order_non_finite_gradient(act, gv, dtype):
    outs = []
    for m in (descent, torch):
        dt = getattr(m, dtype)
        x = m.tensor(ACT_X, dtype=dt, requires_grad=True)
        gy = m.full((len(ACT_X),), gv, dtype=dt, requires_grad=True)
        (g,) = m.autograd.grad(ACTS[act](m, x), [x], gy, create_graph=True)
        w = m.tensor(np.linspace(0.3, 1.1, len(ACT_X)), dtype=dt)
        hx, hgy = m.autograd.grad((g * w).sum(), [x, gy])
        outs.append((g, hx, hgy))
    for d, t in zip(*outs, strict=True):
        _same(
            d,
            t,
            rtol=1e-5 if dtype == "float32" else 1e-10,
            atol=1e-6 if dtype == "float32" else 1e-12,
        )


@pytest.mark.parametrize("act", sorted(ACTS))
def test_activation_second_and_third_order_finite_differences(act):
    x0 = np.array([-3.2, -1.1, -0.4, 0.05, 0.7, 1.6, 2.9])

    def first(v):  # float64 first derivative of the activation at v (the graph's own)
        x = descent.tensor(v, dtype=descent.float64, requires_grad=True)
        (g,) = descent.autograd.grad(ACTS[act](descent, x).sum(), x)
        return g.numpy()

    x = descent.tensor(x0, dtype=descent.float64, requires_grad=True)
    (g,) = descent.autograd.grad(ACTS[act](descent, x).sum(), x, create_graph=True)
    (h,) = descent.autograd.grad(g.sum(), x, create_graph=True)
    (h3,) = descent.autograd.grad(h.sum(), x)
    e = 1e-5
    np.testing.assert_allclose(
        h.detach().numpy(), (first(x0 + e) - first(x0 - e)) / (2 * e), rtol=1e-6, atol=1e-8
    )
    e = 1e-4
    fd3 = (first(x0 + e) - 2 * first(x0) + first(x0 - e)) / e**2
    np.testing.assert_allclose(h3.numpy(), fd3, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("act", ["sigmoid", "gelu", "gelu_tanh"])
def test_activation_third_order_as_pytorch_float32(act):
    outs = []
    for m in (descent, torch):
        x = m.tensor([-2.5, -0.7, 0.0, 0.3, 1.9], dtype=m.float32, requires_grad=True)
        gy = m.tensor([0.5, -1.0, 2.0, 1.5, -0.25], dtype=m.float32, requires_grad=True)
        (g,) = m.autograd.grad(ACTS[act](m, x), [x], gy, create_graph=True)
        hx, hgy = m.autograd.grad((g * g).sum(), [x, gy], create_graph=True)
        h3 = m.autograd.grad((hx * hx).sum() + hgy.sum(), [x, gy])
        outs.append((g, hx, hgy, *h3))
    for d, t in zip(*outs, strict=True):
        _same(d, t, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# 3. elu / celu / selu's second order at x = +inf: the masked negative branch was where(x < 0,
# x, x * 0), nan at inf, so the where's 0 times exp's derivative gave nan; PyTorch's
# elu_double_backward masks with x < 0 (0 there). grad2 fuzz 30532547, 30573014 (sgn after
# celu), 30558676, 30565983, 30563528, 30538373, 30566904.

ELUS = {
    "elu": lambda m, x: m.nn.functional.elu(x),
    "celu": lambda m, x: m.nn.functional.celu(x, alpha=0.7),
    "selu": lambda m, x: m.nn.functional.selu(x),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", sorted(ELUS))
def test_elu_family_second_order_at_infinity(act, dtype):
    outs = []
    for m in (descent, torch):
        dt = getattr(m, dtype)
        x = m.tensor(
            [inf, -inf, 2.0, -1.5, 0.0, -0.0, 1e300 if dtype == "float64" else 3e38],
            dtype=dt,
            requires_grad=True,
        )
        gy = m.tensor([0.5, -1.0, 2.0, 1.5, -0.25, 0.75, 1.0], dtype=dt)
        (g,) = m.autograd.grad(ELUS[act](m, x), [x], gy, create_graph=True)
        (h,) = m.autograd.grad((g * g).sum(), [x])
        outs.append((g, h))
    for d, t in zip(*outs, strict=True):
        _same(d, t, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-7)


@pytest.mark.parametrize("act", sorted(ELUS))
def test_elu_family_sgn_known_zero_at_infinity(act):
    outs = []
    for m in (descent, torch):
        x = m.tensor([inf, 1.07, -2.0], dtype=m.float64, requires_grad=True)
        (g,) = m.autograd.grad((m.sgn(ELUS[act](m, x)) * 2.5).sum(), [x], create_graph=True)
        (h,) = m.autograd.grad((g * 0.1).sum() + (x * 0).sum(), [x])
        outs.append(h)
    _same(*outs)


@pytest.mark.parametrize("act", sorted(ELUS))
def test_elu_family_second_derivative_finite_differences(act):
    x0 = np.array([-3.0, -1.2, -0.3, 0.4, 2.5])
    x = descent.tensor(x0, dtype=descent.float64, requires_grad=True)
    (g,) = descent.autograd.grad(ELUS[act](descent, x).sum(), x, create_graph=True)
    (h,) = descent.autograd.grad(g.sum(), x)
    f = lambda v: ELUS[act](descent, descent.tensor(v, dtype=descent.float64)).numpy()  # noqa: E731
    e = 1e-4
    np.testing.assert_allclose(
        h.numpy(), (f(x0 + e) - 2 * f(x0) + f(x0 - e)) / e**2, rtol=1e-5, atol=1e-6
    )


# ---------------------------------------------------------------------------------------------
# 4. cholesky of a matrix holding an inf: an infinite pivot makes the next column inf / inf =
# nan and the next pivot nan, so LAPACK's potrf (PyTorch's MKL) stops there; NumPy's OpenBLAS
# returned an inf diagonal and zeros. grad2 fuzz 30544416 (cholesky of matrix_exp(x x^T) @ ... +
# I, every entry inf).

CHOL_INF = [
    [[inf, inf], [inf, inf]],
    [[inf, 1.0], [1.0, 2.0]],
    [[2.0, 1.0], [1.0, inf]],
    [[4.0, 1.0, inf], [1.0, 3.0, 0.5], [inf, 0.5, 2.0]],
    [[4.0, 1.0], [1.0, 3.0]],
]


# (not [[inf, 1], [1, 2]] in float32: PyTorch's float32 MKL spotrf refuses it, where its float64
# dpotrf and potf2's steps give [[inf, 0], [0, sqrt 2]], descent's in both dtypes)
@pytest.mark.parametrize(
    "k, dtype",
    [
        (k, d)
        for k in range(len(CHOL_INF))
        for d in ("float32", "float64")
        if (k, d) != (1, "float32")
    ],
)
def test_cholesky_of_a_matrix_with_an_inf(k, dtype):
    res = []
    for m in (descent, torch):
        a = m.tensor(CHOL_INF[k], dtype=getattr(m, dtype))
        try:
            res.append(m.linalg.cholesky(a))
        except Exception as e:  # noqa: BLE001 - which one raises is compared
            res.append(type(e).__name__.lstrip("_"))
        res.append(m.linalg.cholesky_ex(a).info)
    d, dinfo, t, tinfo = res
    assert isinstance(d, str) == isinstance(t, str), (d, t)
    if isinstance(d, str):
        assert d == t == "LinAlgError"
    else:
        _same(d, t, rtol=1e-6)
    assert dinfo.tolist() == tinfo.tolist()


def test_cholesky_batch_with_an_infinite_matrix_raises():
    for m in (descent, torch):
        a = m.tensor([[[4.0, 1.0], [1.0, 3.0]], [[inf, inf], [inf, inf]]], dtype=m.float64)
        with pytest.raises(Exception, match="positive"):
            m.linalg.cholesky(a)


# ---------------------------------------------------------------------------------------------
# 5. det's second order at a nearly singular matrix: under create_graph PyTorch takes the SVD's
# cofactor matrix where |det| < 100 eps of the dtype (measured: the switch lies between det 2e-14
# and 6e-14 in float64), so det(x x^T) of a 3 x 2 x (det 1e-17, identically 0) has the true
# second derivative 0; descent's det A^{-T} gave O(1) noise. grad2 fuzz 30525462.


def _det_second(m, a0, w):
    x = m.tensor(a0, dtype=m.float64, requires_grad=True)
    (g,) = m.autograd.grad(m.linalg.det(x), x, create_graph=True)
    (h,) = m.autograd.grad((g * m.tensor(w, dtype=m.float64)).sum(), x)
    return h


@pytest.mark.parametrize("t", [1e-20, 1e-16, 3e-15, 1e-14, 1e-3, 0.5])
def test_det_second_order_nearly_singular_as_pytorch(t):
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    a0, w = q @ np.diag([1.0, 2.0, t]) @ q.T, rng.standard_normal((3, 3))
    _same(_det_second(descent, a0, w), _det_second(torch, a0, w), rtol=1e-9, atol=1e-12)


def test_det_of_a_rank_deficient_product_has_zero_second_derivative():
    v = np.array([[0.61, 0.72], [0.50, 0.65], [0.91, 0.33]])
    w = np.array([[-1.46, 1.47], [-0.32, -0.47], [-0.90, -0.19]])
    x = descent.tensor(v, dtype=descent.float64, requires_grad=True)
    (g,) = descent.autograd.grad(descent.linalg.det(x @ x.mT) * 1.97, x, create_graph=True)
    (h,) = descent.autograd.grad((g * descent.tensor(w, dtype=descent.float64)).sum(), x)
    np.testing.assert_allclose(h.numpy(), 0.0, atol=1e-13)  # det(x x^T) is identically 0


# ---------------------------------------------------------------------------------------------
# 6. floor / ceil / trunc / round under create_graph: PyTorch's zeros_like(grad) hangs on no
# graph; descent's where(True, 0, gy) passed a 0 back into gy's graph, where it met the infinite
# derivative of 0 ** y (0 * inf = nan). grad2 fuzz 30510099 (trunc -> float_power -> abs).


@pytest.mark.parametrize("fn", ["trunc", "floor", "ceil", "round"])
def test_rounding_gradient_hangs_on_no_graph(fn):
    outs = []
    for m in (descent, torch):
        x = m.tensor([0.5, 1.0, 0.97], dtype=m.float64, requires_grad=True)
        y = m.tensor([-0.17, 0.83, 0.0997], dtype=m.float64, requires_grad=True)
        v = m.abs(m.float_power(getattr(m, fn)(x), y))
        (v * m.tensor([0.26, 0.80, 1.62], dtype=m.float64)).sum().backward(create_graph=True)
        s = (x.grad * m.tensor([1.25, 1.97, 1.58], dtype=m.float64)).sum() + (v * 0).sum()
        hx, hy = m.autograd.grad(s, [x, y])
        outs.append((x.grad, hx, hy))
        assert not x.grad.requires_grad
    for d, t in zip(*outs, strict=True):
        _same(d, t)


# ---------------------------------------------------------------------------------------------
# 7. sinh's gradient under create_graph is gy * cosh(x) (PyTorch's; Cosh's already used sinh): the
# composite (e^x + e^-x) / 2 differentiated to a difference of two products, inf - inf = nan for
# an infinite gradient (exp(sinh(30)) overflows). grad2 fuzz 31540855, 31510275 (campaign
# 31510001).


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sinh_second_order_with_an_infinite_gradient(dtype):
    outs = []
    for m in (descent, torch):
        x = m.tensor([30.0, 1.0, -2.0, 1e-8, 0.0], dtype=getattr(m, dtype), requires_grad=True)
        (g,) = m.autograd.grad((m.exp(m.sinh(x)) * -0.21).sum(), [x], create_graph=True)
        (h,) = m.autograd.grad(g.sum(), [x], create_graph=True)
        (h3,) = m.autograd.grad(h.sum(), [x])
        outs.append((g, h, h3))
    for d, t in zip(*outs, strict=True):
        _same(d, t, rtol=1e-6 if dtype == "float32" else 1e-12)


def test_sinh_second_derivative_finite_differences():
    x0 = np.array([-2.5, -0.3, 1e-3, 0.8, 3.0])
    x = descent.tensor(x0, dtype=descent.float64, requires_grad=True)
    (g,) = descent.autograd.grad(descent.sinh(x).sum(), x, create_graph=True)
    (h,) = descent.autograd.grad(g.sum(), x)
    e = 1e-4
    np.testing.assert_allclose(
        h.numpy(),
        (np.sinh(x0 + e) - 2 * np.sinh(x0) + np.sinh(x0 - e)) / e**2,
        rtol=1e-6,
        atol=1e-8,
    )
