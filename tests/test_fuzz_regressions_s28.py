"""Fixes from session 28's fuzz campaigns (tests/fuzz_s28.py: second-order gradients and
nn.functional with random configurations; docs/fuzz_long_run.md, "Session 28 (helper-211)").
Each case runs the same code in descent and in torch 2.13 and compares the outcome (values,
gradients, or the exception class)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import descent


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.detach().numpy())


def _outcome(lib, f):
    try:
        return f(lib)
    except Exception as e:  # noqa: BLE001 - the class is compared
        return type(e)


def _same(f, rtol=1e-12, atol=1e-12):
    t, d = _outcome(torch, f), _outcome(descent, f)
    if isinstance(t, type):
        assert isinstance(d, type) and issubclass(d, t), (d, t)
        return
    assert not isinstance(d, type), d
    t, d = (t, d) if isinstance(t, (tuple, list)) else ((t,), (d,))
    assert len(t) == len(d)
    for a, b in zip(d, t, strict=True):
        np.testing.assert_allclose(_np(a), _np(b), rtol=rtol, atol=atol, equal_nan=True)


# ---------------------------------------------------------------------------------------------
# Second derivatives at a kink, as PyTorch's double backward formulas


def _second(name, **kw):
    def f(m):
        x = m.tensor([0.0, -2.0, 1.0, 0.5, -0.0], dtype=m.float64, requires_grad=True)
        y = getattr(m.nn.functional, name)(x, **kw)
        ct = m.tensor([1.0, 0.5, -1.0, 2.0, 1.5], dtype=m.float64)
        (g,) = m.autograd.grad((y * ct).sum(), [x], create_graph=True)
        (h,) = m.autograd.grad((g * m.tensor([0.3, 1.0, 2.0, -1.0, 1.0], dtype=m.float64)).sum(),
                               [x])  # fmt: skip
        return g, h

    return f


@pytest.mark.parametrize("name, kw", [("elu", {}), ("elu", {"alpha": 0.7}), ("selu", {}),
                                      ("celu", {}), ("celu", {"alpha": 2.0})])  # fmt: skip
def test_elu_family_second_derivative_at_zero_is_pytorchs(name, kw):
    # PyTorch's elu_double_backward masks with x < 0: 0 at x = 0 (descent gave alpha / 2, the
    # tie rule of the minimum in its backward)
    _same(_second(name, **kw))


@pytest.mark.parametrize("kw", [{"beta": 2.0, "threshold": 1.0}, {"beta": 1.0, "threshold": 0.5},
                                {"beta": 0.5, "threshold": -1.0}])  # fmt: skip
def test_softplus_second_derivative_at_the_threshold_is_pytorchs(kw):
    # beta x == threshold: first derivative sigmoid's (both), second 0 in PyTorch's
    # softplus_double_backward (mask beta x < threshold); descent gave sigmoid'(beta x) beta
    _same(_second("softplus", **kw))


@pytest.mark.parametrize("name, kw", [("elu", {}), ("selu", {}), ("softplus", {"beta": 2.0})])
def test_second_derivative_away_from_the_kink_matches_finite_differences(name, kw):
    fn = getattr(descent.nn.functional, name)

    def first(v):
        x = descent.tensor(v, dtype=descent.float64, requires_grad=True)
        (g,) = descent.autograd.grad(fn(x, **kw).sum(), [x])
        return g.numpy()

    v = np.array([-1.3, -0.2, 0.4, 2.2])
    x = descent.tensor(v, dtype=descent.float64, requires_grad=True)
    (g,) = descent.autograd.grad(fn(x, **kw).sum(), [x], create_graph=True)
    (h,) = descent.autograd.grad(g.sum(), [x])
    eps = 1e-6
    fd = (first(v + eps) - first(v - eps)) / (2 * eps)
    np.testing.assert_allclose(h.numpy(), fd, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# Pooling / interpolation of an input with inf or nan: each output reads its own window or taps
# (the window-matrix products gave 0 * inf = nan in every output of the row)


def _pool(fn, x_vals, *args, **kw):
    def f(m):
        x = m.tensor(x_vals, dtype=m.float64, requires_grad=True)
        y = fn(m)(x, *args, **kw)
        ct = m.tensor(np.arange(y.numel(), dtype=np.float64).reshape(tuple(y.shape)) - 2.0)
        (g,) = m.autograd.grad((y * ct).sum(), [x])
        return y, g

    return f


X2 = [[[[1.1, 1.8, 0.5], [1.39, -math.inf, 1.23], [1.79, 1.94, 0.27], [1.48, 0.82, 0.4]]]]
X2N = [[[[math.nan, -2.0], [0.0, 1e300], [1.0, -1.0]]]]


@pytest.mark.parametrize("out", [(4, 5), (3, 2), (5, 7), (None, 5)])
def test_adaptive_avg_pool2d_with_inf(out):
    _same(_pool(lambda m: m.nn.functional.adaptive_avg_pool2d, X2, out))


@pytest.mark.parametrize("out", [(1, 3, 2), (2, 3, 4)])
def test_adaptive_avg_pool3d_with_inf_and_nan(out):
    x = [[[[1.1, 1.8, 0.5], [1.39, -math.inf, 1.23]], [[0.1, math.nan, 2.0], [1.0, 2.0, 3.0]]]]
    _same(_pool(lambda m: m.nn.functional.adaptive_avg_pool3d, x, out))


@pytest.mark.parametrize("mode, ac", [("bilinear", True), ("bilinear", False), ("bicubic", True),
                                      ("bicubic", False), ("area", None),
                                      ("nearest", None)])  # fmt: skip
@pytest.mark.parametrize("x", [X2, X2N], ids=["inf", "nan"])
def test_interpolate_2d_with_inf_or_nan(mode, ac, x):
    kw = {} if ac is None else {"align_corners": ac}
    _same(_pool(lambda m: m.nn.functional.interpolate, x, size=(2, 4), mode=mode, **kw))


@pytest.mark.parametrize("mode", ["linear", "area"])
def test_interpolate_1d_with_inf(mode):
    _same(_pool(lambda m: m.nn.functional.interpolate, [[[1.0, math.inf, 2.0, 3.0]]], size=7,
                mode=mode))  # fmt: skip


def test_interpolate_trilinear_with_nan():
    x = [[[[[1.0, 2.0], [math.nan, 4.0]], [[5.0, 6.0], [7.0, 8.0]]]]]
    _same(_pool(lambda m: m.nn.functional.interpolate, x, size=(3, 3, 3), mode="trilinear",
                align_corners=False))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# torch.nn.functional's own argument checks


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.nn.functional.batch_norm(m.ones(1, 3), None, None, training=True),
        lambda m: m.nn.functional.batch_norm(m.ones(1, 3, 1), None, None, training=True),
        lambda m: m.nn.functional.batch_norm(m.ones(2, 3), None, None, training=True, eps=0.0),
        lambda m: m.nn.functional.batch_norm(m.ones(2, 3), m.zeros(3), m.ones(3), eps=-1.0),
        lambda m: m.nn.BatchNorm1d(3).train()(m.ones(1, 3)),
        lambda m: m.nn.BatchNorm2d(3, eps=0.0).train()(m.ones(2, 3, 2, 2)),
        lambda m: m.nn.functional.group_norm(m.ones(1, 3), 3),
        lambda m: m.nn.functional.group_norm(m.ones(1, 3), 2),
        lambda m: m.nn.functional.group_norm(m.ones(1, 2, 1), 2),
        lambda m: m.nn.functional.adaptive_avg_pool1d(m.ones(1, 2, 4), None),
        lambda m: m.nn.functional.adaptive_max_pool1d(m.ones(1, 2, 4), (None,)),
        lambda m: m.adaptive_avg_pool1d(m.ones(1, 2, 4), [None]),
        lambda m: m.nn.functional.avg_pool3d(m.ones(1, 1, 4, 1, 3), (5, 2, 3), padding=(2, 1, 0)),
        lambda m: m.nn.functional.avg_pool3d(m.ones(1, 2, 2, 2), (3, 1, 1), padding=(1, 0, 0)),
    ],
)  # fmt: skip
def test_functional_refuses_as_torch(call):
    t, d = _outcome(torch, call), _outcome(descent, call)
    assert isinstance(t, type), t
    assert isinstance(d, type) and issubclass(d, t), (d, t)


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.nn.functional.batch_norm(m.ones(2, 3), None, None, training=True),
        lambda m: m.nn.functional.batch_norm(m.ones(1, 3), m.zeros(3), m.ones(3), eps=0.0),
        lambda m: m.nn.functional.batch_norm(m.ones(1, 3, 2), None, None, training=True),
        lambda m: m.nn.functional.instance_norm(m.ones(1, 3, 2) * m.arange(2.0), eps=0.0),
        lambda m: m.batch_norm(m.ones(2, 3) * m.arange(2.0)[:, None], None, None, None, None,
                               True, 0.1, 0.0, False),
        lambda m: m.native_batch_norm(m.ones(2, 3) * m.arange(2.0)[:, None], None, None, None,
                                      None, True, 0.1, 0.0)[0],
        lambda m: m.nn.functional.group_norm(m.ones(1, 4), 2),
        lambda m: m.nn.functional.group_norm(m.ones(0, 3), 3),
        lambda m: m.nn.functional.adaptive_avg_pool1d(m.ones(1, 2, 4), [3]),
        lambda m: m.nn.functional.adaptive_max_pool2d(m.ones(1, 2, 4), (None, 3)),
        lambda m: m.nn.functional.avg_pool3d(m.ones(1, 1, 5, 2, 3), (5, 2, 3), padding=(2, 1, 0)),
    ],
)  # fmt: skip
def test_functional_accepts_as_torch(call):
    _same(call)


# ---------------------------------------------------------------------------------------------
# Second-order gradients found by the grad2 fuzz


@pytest.mark.parametrize("name", ["std", "var"])
@pytest.mark.parametrize("shape, kw", [((), {}), ((2,), {"correction": 2})])
def test_second_order_of_std_var_without_dof_keeps_the_dtype(name, shape, kw):
    # dof <= 0 over all elements: the factor nan / inf was float64 (Python numbers), so the
    # float32 input's second-order gradient came out float64
    def f(m):
        x = m.full(shape, -1.0, dtype=m.float32, requires_grad=True)
        (g,) = m.autograd.grad(getattr(m, name)(x, **kw) * 2, [x], create_graph=True)
        (h,) = m.autograd.grad(g.sum() * 3 + x.sum() * 0, [x])
        return g, h, str(g.dtype)[-7:], str(h.dtype)[-7:]

    t, d = f(torch), f(descent)
    assert d[2:] == t[2:] == ("float32", "float32")
    for a, b in zip(d[:2], t[:2], strict=True):
        np.testing.assert_allclose(_np(a), _np(b), equal_nan=True)


def test_sinc_second_derivative_at_zero():
    # -pi^2 / 3 (the branch at 0 was the constant 0: 0; PyTorch's double backward gives nan);
    # float64 against central differences of the first derivative, float32 beside PyTorch's
    # values elsewhere
    def first(v):
        x = descent.tensor(v, dtype=descent.float64, requires_grad=True)
        (g,) = descent.autograd.grad(descent.sinc(x).sum(), [x])
        return g.numpy()

    v = np.array([0.0, -0.0, 0.3, -1.7])
    x = descent.tensor(v, dtype=descent.float64, requires_grad=True)
    (g,) = descent.autograd.grad(descent.sinc(x).sum(), [x], create_graph=True)
    (h,) = descent.autograd.grad(g.sum(), [x])
    # (a step of 1e-3 at 0, where the first derivative's formula cancels for tiny x: the
    # central difference's own error there is ~eps^2 times the fourth derivative / 6, ~3e-6)
    eps = np.array([1e-3, 1e-3, 1e-6, 1e-6])
    fd = (first(v + eps) - first(v - eps)) / (2 * eps)
    np.testing.assert_allclose(h.numpy()[2:], fd[2:], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(h.numpy()[:2], fd[:2], rtol=1e-5)
    assert h.numpy()[0] == pytest.approx(-(math.pi**2) / 3, rel=1e-12)
    assert g.numpy()[0] == 0.0 and not np.signbit(g.numpy()[0])

    def f32(m):
        x = m.tensor([0.5, -1.2, 2.0], dtype=m.float32, requires_grad=True)
        (g,) = m.autograd.grad(m.sinc(x).sum(), [x], create_graph=True)
        (h,) = m.autograd.grad(g.sum(), [x])
        return g, h

    _same(f32, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# cholesky of a matrix whose pivot is nan: LAPACK's potrf fails there (PyTorch's MKL raises;
# OpenBLAS's blocked potrf, behind NumPy, returned nan factors)

NAN_MATRICES = [
    [[math.nan, 0.0], [0.0, 1.0]],
    [[1.0, 0.0], [0.0, math.nan]],
    [[1.0, math.nan], [math.nan, 1.0]],
    [[1.0, math.nan], [0.5, 1.0]],  # nan in the triangle potrf('L') does not read
    [[math.inf, 0.0], [0.0, 1.0]],  # inf is no failure
    [[4.0, 2.0], [2.0, 3.0]],
]


def _chol_outcome(m, a, upper):
    A = m.tensor(a, dtype=m.float64)
    try:
        r = ("L", m.linalg.cholesky(A, upper=upper).tolist())
    except Exception as e:  # noqa: BLE001 - the class is compared by name
        r = ("raises", type(e).__name__.lstrip("_"))
    low, info = m.linalg.cholesky_ex(A, upper=upper)
    return r, int(info), np.isnan(np.asarray(low.tolist())).tolist()


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("a", NAN_MATRICES)
def test_cholesky_nan_pivot_raises_as_torch(a, upper):
    t, d = _chol_outcome(torch, a, upper), _chol_outcome(descent, a, upper)
    assert d[0][0] == t[0][0] and d[1] == t[1] and d[2] == t[2], (d, t)
    if t[0][0] == "raises":
        assert d[0][1] == t[0][1] == "LinAlgError"
    else:
        np.testing.assert_allclose(d[0][1], t[0][1], rtol=1e-15)


def test_cholesky_batch_with_a_nan_pivot():
    b = [[[4.0, 2.0], [2.0, 3.0]], [[1.0, 0.0], [0.0, math.nan]]]
    for m in (torch, descent):
        with pytest.raises(m.linalg.LinAlgError):
            m.linalg.cholesky(m.tensor(b, dtype=m.float64))
    t = torch.linalg.cholesky_ex(torch.tensor(b, dtype=torch.float64)).info.tolist()
    d = descent.linalg.cholesky_ex(descent.tensor(b, dtype=descent.float64)).info.tolist()
    assert d == t == [0, 2]


# ---------------------------------------------------------------------------------------------
# A non-leaf reached only by a known-zero gradient (sgn's zero tensor through a reshape):
# autograd.grad, retain_grad and tensor hooks see zeros, as PyTorch's defined zero tensor (the
# engine's pass-through skipped them: None; found by the grad2 fuzz)


@pytest.mark.parametrize("shape", [(1, 2), (1, 0), (1, 1, 3)])
@pytest.mark.parametrize("create_graph", [False, True])
def test_nonleaf_known_zero_gradient_is_captured(shape, create_graph):
    def f(m):
        x0 = m.zeros(shape[1:], dtype=m.float64, requires_grad=True)
        x = x0.reshape(shape)
        y = m.exp(m.sgn(x)).sum()
        gx, gx0 = m.autograd.grad(y, [x, x0], create_graph=create_graph, allow_unused=True)
        return (tuple(gx.shape), str(gx.dtype)[-7:], float(gx.abs().sum()), tuple(gx0.shape))

    assert f(descent) == f(torch)


def test_nonleaf_known_zero_gradient_retain_grad_and_hook():
    def f(m):
        x0 = m.tensor([1.0, -2.0], dtype=m.float64, requires_grad=True)
        x = x0.reshape(1, 2)
        x.retain_grad()
        seen = []
        x.register_hook(lambda g: seen.append(tuple(g.shape)))
        m.exp(m.sgn(x)).sum().backward()
        return tuple(x.grad.shape), float(x.grad.abs().sum()), seen, tuple(x0.grad.shape)

    assert f(descent) == f(torch)
