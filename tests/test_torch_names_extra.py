"""Differential tests against PyTorch (and mpmath, installed with it) for the functions of
descent.ops.special and descent.ops.torch_extra: values and gradients in float32 and float64,
edge values (0, +-inf, nan, poles), empty and 0-d tensors, integer inputs' dtypes, Tensor
methods. The op table (tests/specs/special.py) covers finite differences and second order."""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest
import torch

import descent as ds

F32, F64 = np.float32, np.float64
TORCH_DT = {F32: torch.float32, F64: torch.float64}


def both(arrays, dtype=None, requires_grad=False):
    """The same values as descent and torch tensors."""
    out_d, out_t = [], []
    for a in arrays:
        a = np.asarray(a if dtype is None else np.asarray(a, dtype))
        out_d.append(ds.tensor(a, requires_grad=requires_grad))
        out_t.append(torch.tensor(a, requires_grad=requires_grad))
    return out_d, out_t


def same(out, expected, rtol=0.0, atol=0.0):
    """Equal values (nan where nan), dtype and shape."""
    o = out.numpy() if isinstance(out, ds.Tensor) else np.asarray(out)
    if isinstance(expected, torch.Tensor):  # force: a ZeroTensor gradient (sgn's) too
        e = expected.detach().numpy(force=True)
    else:
        e = np.asarray(expected)
    assert o.shape == e.shape, (o.shape, e.shape)
    assert o.dtype == e.dtype, (o.dtype, e.dtype)
    np.testing.assert_allclose(o, e, rtol=rtol, atol=atol, equal_nan=True)


def value_and_grads(fd, ft, arrays, dtype, rtol, atol=0.0, grad_rtol=None, seed=0):
    """fd on descent tensors and ft on torch tensors: values and the gradients of a random
    projection of the output agree."""
    td, tt = both(arrays, dtype, requires_grad=True)
    yd, yt = fd(*td), ft(*tt)
    same(yd, yt, rtol, atol)
    w = np.random.default_rng(seed).normal(size=tuple(yt.shape)).astype(dtype)
    (yd * ds.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    for a, b in zip(td, tt, strict=True):
        same(a.grad, b.grad, grad_rtol if grad_rtol is not None else rtol, atol)


EDGES = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, np.inf, -np.inf, np.nan, 1e-30, -1e-30,
         3.5, -3.5, 40.0, -40.5, 1e-8, 5.0, 27.0]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Special functions: accuracy against mpmath, values and gradients against torch


def _mp(fn):
    def f(x):
        try:
            return float(fn(mpmath.mpf(float(x))))
        except (ValueError, ZeroDivisionError):
            return np.nan

    return f


MP = {
    "erfc": _mp(mpmath.erfc),
    "erfinv": _mp(mpmath.erfinv),
    "lgamma": _mp(lambda x: mpmath.re(mpmath.loggamma(x))),
    "digamma": _mp(mpmath.digamma),
}
RANGES = {
    "erfc": [(-6, 6), (6, 26)],
    "erfinv": [(-0.999, 0.999), (1 - 1e-12, 1 - 1e-15)],
    "lgamma": [(1e-3, 4), (4, 200), (-8, -1e-3)],
    "digamma": [(1e-3, 4), (4, 200), (-8, -1e-3), (1.3, 1.6)],
}


@pytest.mark.parametrize("name", sorted(MP))
def test_special_accuracy_against_mpmath(name):
    """float64 within 1e-13 relative (PyTorch's own: 5e-14 for digamma); float32 correctly
    rounded (0.5 ulp of the exact value at the float32 input, plus float64's error)."""
    mpmath.mp.dps = 40
    rng = np.random.default_rng(0)
    fn = getattr(ds, name)
    for lo, hi in RANGES[name]:
        x = rng.uniform(lo, hi, 120)
        ref = np.array([MP[name](v) for v in x])
        got = fn(ds.tensor(x)).numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-13)
        x32 = x.astype(F32)
        ref32 = np.array([MP[name](v) for v in x32])
        got32 = fn(ds.tensor(x32)).numpy()
        assert got32.dtype == F32
        with np.errstate(invalid="ignore"):  # inf - inf where erfinv(1) = inf
            ulp = np.abs(got32 - ref32) / np.spacing(np.abs(ref32.astype(F32)))
        ulp = ulp[np.isfinite(ref32)]  # erfinv's inputs within 1e-12 of 1 round to 1 in float32
        if not ulp.size:
            continue
        assert np.nanmax(ulp) <= 0.51, (name, lo, hi, np.nanmax(ulp))


@pytest.mark.parametrize("name", ["erfc", "erfinv", "lgamma", "digamma"])
@pytest.mark.parametrize("dtype", [F32, F64])
def test_special_edges_match_torch(name, dtype):
    x = np.array(EDGES + [0.99999, -0.99999, 1.0, -1.0], dtype)
    if name == "erfinv":
        x = np.concatenate([x, np.array([0.3, -0.7, 1 - 1e-7, -(1 - 1e-7)], dtype)])
    d, t = both([x])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, exp = getattr(ds, name)(d[0]).numpy(), getattr(torch, name)(t[0]).numpy()
    assert out.dtype == exp.dtype
    # Non-finite entries (poles, +-inf, nan, |y| >= 1) exactly as PyTorch's, signs included.
    nonfinite = ~np.isfinite(exp)
    np.testing.assert_array_equal(out[nonfinite], exp[nonfinite])
    # Finite ones: PyTorch's float32 digamma is up to 1500 ulp off near its zero; ours is
    # correctly rounded, so compare with a tolerance that admits PyTorch's error.
    rtol = {F32: 2e-4 if name == "digamma" else 3e-7, F64: 1e-11}[dtype]
    np.testing.assert_allclose(out[~nonfinite], exp[~nonfinite], rtol=rtol, atol=1e-30)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize(
    "name,lo,hi",
    [("erfc", -4, 4), ("erfinv", -0.99, 0.99), ("lgamma", -3.9, 6), ("digamma", 0.1, 6)],
)
def test_special_gradients_match_torch(name, lo, hi, dtype):
    x = np.random.default_rng(1).uniform(lo, hi, (3, 5))
    x = np.where(np.abs(x - np.round(x)) < 0.05, x + 0.1, x)  # away from the poles
    rtol = 2e-4 if dtype == F32 else 1e-9  # PyTorch's trigamma (digamma's gradient): 4e-10
    value_and_grads(getattr(ds, name), getattr(torch, name), [x], dtype, rtol, 1e-6)


def test_special_methods_polygamma_and_integer_dtypes():
    x = ds.tensor([0.3, 1.7, 4.0])
    t = torch.tensor([0.3, 1.7, 4.0])
    for name in ["erfc", "erfinv", "lgamma", "digamma"]:
        same(getattr(x * 0.2, name)(), getattr(t * 0.2, name)(), 1e-5)  # PyTorch's digamma
        # integers compute in float32, as PyTorch's
        same(getattr(ds, name)(ds.tensor([0, 1, 2])), getattr(torch, name)(torch.tensor([0, 1, 2])),
             1e-6)  # fmt: skip
    for n in [1, 2, 3]:
        same(x.polygamma(n), t.polygamma(n), 1e-5)  # PyTorch's float32 trigamma: 1e-6
        same(ds.polygamma(n, x.double()), torch.polygamma(n, t.double()), 1e-9)
    same(ds.polygamma(0, x), torch.digamma(t), 1e-5)
    with pytest.raises(ValueError, match="polygamma"):
        ds.polygamma(-1, x)


def test_special_empty_and_0d():
    for name in ["erfc", "erfinv", "lgamma", "digamma", "sinc", "sgn", "signbit"]:
        same(getattr(ds, name)(ds.zeros(0, 3)), getattr(torch, name)(torch.zeros(0, 3)))
        same(getattr(ds, name)(ds.tensor(0.25)), getattr(torch, name)(torch.tensor(0.25)), 1e-6)


def test_lgamma_second_order_is_trigamma():
    """d2/dx2 lgamma = trigamma, through the differentiable backward (create_graph=True)."""
    v = [0.7, 2.5, -1.5]
    x = ds.tensor(v, dtype=ds.float64, requires_grad=True)
    ds.lgamma(x).sum().backward(create_graph=True)
    g = x.grad
    x.grad = None
    g.sum().backward()
    xt = torch.tensor(v, dtype=torch.float64, requires_grad=True)
    (gt,) = torch.autograd.grad(torch.lgamma(xt).sum(), xt, create_graph=True)
    (ggt,) = torch.autograd.grad(gt.sum(), xt)
    same(g.detach(), gt, 1e-12)
    same(x.grad, ggt, 1e-9)  # PyTorch's trigamma: 4e-10


# ---------------------------------------------------------------------------------------------
# nan-reductions, fmax/fmin and the other elementwise helpers


@pytest.mark.parametrize("dtype", [F32, F64])
def test_nansum_nanmean_values_and_gradients(dtype):
    x = np.random.default_rng(2).normal(size=(3, 4, 5))
    x[0, 1, 2] = x[2, 3, 0] = np.nan
    x[:, 2, :4] = np.nan
    for kw in [{}, {"dim": 1}, {"dim": (0, 2), "keepdim": True}, {"dim": -1}]:
        tol = 1e-5 if dtype == F32 else 1e-14  # the order of a float32 sum of 40 terms
        value_and_grads(lambda v, kw=kw: ds.nansum(v, **kw), lambda v, kw=kw: torch.nansum(v, **kw),
                        [x], dtype, tol)  # fmt: skip
        value_and_grads(lambda v, kw=kw: v.nanmean(**kw), lambda v, kw=kw: v.nanmean(**kw),
                        [x], dtype, tol)  # fmt: skip


def test_nan_reductions_dtypes_empty_0d():
    same(ds.nansum(ds.tensor([1, 2, 3])), torch.nansum(torch.tensor([1, 2, 3])))  # int64
    same(ds.nansum(ds.tensor([1.0, np.nan]), dtype=ds.float64),
         torch.nansum(torch.tensor([1.0, np.nan]), dtype=torch.float64))  # fmt: skip
    same(ds.nansum(ds.zeros(0)), torch.nansum(torch.zeros(0)))
    same(ds.nanmean(ds.zeros(0)), torch.nanmean(torch.zeros(0)))
    same(ds.nanmean(ds.tensor(np.nan)), torch.nanmean(torch.tensor(np.nan)))
    same(ds.nansum(ds.zeros(2, 0), 1), torch.nansum(torch.zeros(2, 0), 1))
    # An all-nan slice: nanmean is nan there; the gradient at nan entries is PyTorch's product
    # grad * ~isnan(x): 0 beside a number, nan in the all-nan row (the inf of 1 / count)
    x = ds.tensor([[1.0, np.nan], [np.nan, np.nan]], requires_grad=True)
    y = x.nanmean(1)
    same(y, torch.tensor([1.0, np.nan]))
    y.sum().backward()
    same(x.grad, torch.tensor([[1.0, 0.0], [np.nan, np.nan]]))
    with pytest.raises(TypeError, match="nanmean"):
        ds.nanmean(ds.tensor([1, 2]))


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("name", ["fmax", "fmin"])
def test_fmax_fmin_nan_ties_and_gradient_routing(name, dtype):
    a = np.array([1.0, np.nan, 2.0, np.nan, 3.0, -0.0, np.inf, 5.0])
    b = np.array([2.0, 1.0, np.nan, np.nan, 3.0, 0.0, 1.0, -np.inf])
    value_and_grads(getattr(ds, name), getattr(torch, name), [a, b], dtype, 0.0)
    # broadcasting, methods, a Python scalar, integer tensors keep their dtype
    x = np.random.default_rng(3).normal(size=(3, 1))
    y = np.random.default_rng(4).normal(size=(4,))
    value_and_grads(lambda p, q: getattr(p, name)(q), lambda p, q: getattr(p, name)(q),
                    [x, y], dtype, 0.0)  # fmt: skip
    same(getattr(ds, name)(ds.tensor([1, 5]), ds.tensor([3, 2])),
         getattr(torch, name)(torch.tensor([1, 5]), torch.tensor([3, 2])))  # fmt: skip


def test_sgn_signbit_positive_heaviside():
    x = np.array(EDGES, F32)
    d, t = both([x])
    same(ds.sgn(d[0]), torch.sgn(t[0]))
    same(d[0].signbit(), t[0].signbit())
    same(ds.signbit(ds.tensor([-1, 0, 2])), torch.signbit(torch.tensor([-1, 0, 2])))
    assert ds.positive(d[0]) is d[0]
    same(d[0].positive(), t[0].positive())
    with pytest.raises(TypeError, match="positive"):
        ds.positive(ds.tensor([True]))
    v = np.array([0.5], F32)
    same(ds.heaviside(d[0], ds.tensor(v)), torch.heaviside(t[0], torch.tensor(v)))
    same(d[0].heaviside(ds.tensor(x)), t[0].heaviside(torch.tensor(x)))
    same(ds.heaviside(ds.tensor([-2, 0, 3]), ds.tensor([7])),
         torch.heaviside(torch.tensor([-2, 0, 3]), torch.tensor([7])))  # fmt: skip
    with pytest.raises(RuntimeError, match="same dtype"):
        ds.heaviside(ds.tensor([1.0]), ds.tensor([1]))
    # sgn's gradient: PyTorch's zero tensor, descent's known zero (autograd's ZERO_GRAD): the
    # leaf gets zeros, and acosh's inf derivative at 1 never meets a 0 (zeros, not nan)
    xd = ds.tensor([1.0, 1.5], dtype=ds.float64, requires_grad=True)
    xt = torch.tensor([1.0, 1.5], dtype=torch.float64, requires_grad=True)
    yd, yt = ds.sgn(ds.acosh(xd)), torch.sgn(torch.acosh(xt))
    same(yd, yt)
    assert yd.requires_grad
    yd.sum().backward()
    yt.sum().backward()
    assert not xd.grad.numpy().any() and not xt.grad.any()


@pytest.mark.parametrize("dtype", [F32, F64])
def test_sinc_values_and_gradient(dtype):
    x = np.array([0.0, 1e-20, -0.3, 0.5, 1.0, 2.5, -7.25, 27.0])
    value_and_grads(ds.sinc, torch.sinc, [x], dtype, 2e-7 if dtype == F32 else 1e-15, 1e-7)
    d, t = both([np.array([np.inf, -np.inf, np.nan], dtype)])
    same(d[0].sinc(), t[0].sinc())
    same(ds.sinc(ds.tensor([0, 1, 2])), torch.sinc(torch.tensor([0, 1, 2])), 1e-7, 1e-7)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_ldexp_and_float_power(dtype):
    rng = np.random.default_rng(5)
    x, e = rng.normal(size=(3, 4)), rng.integers(-4, 5, (4,)).astype(float)
    value_and_grads(ds.ldexp, torch.ldexp, [x, e], dtype, 1e-6)
    same(ds.ldexp(ds.tensor([1, 2]), ds.tensor([3, -1])),
         torch.ldexp(torch.tensor([1, 2]), torch.tensor([3, -1])))  # fmt: skip
    same(ds.tensor(x.astype(dtype)).ldexp(ds.tensor([2])),
         torch.tensor(x.astype(dtype)).ldexp(torch.tensor([2])))  # fmt: skip
    b = np.abs(x) + 0.1
    value_and_grads(ds.float_power, torch.float_power, [b, e], dtype, 1e-12)
    value_and_grads(lambda v: v.float_power(2.5), lambda v: v.float_power(2.5), [b], dtype, 1e-12)
    same(ds.float_power(ds.tensor([2, 3]), 2), torch.float_power(torch.tensor([2, 3]), 2))


@pytest.mark.parametrize("dtype", [F32, F64])
def test_logit_values_gradients_and_edges(dtype):
    p = np.array([0.1, 0.5, 0.9, 0.0, 1.0, -0.5, 1.5, np.nan, 0.05, 0.97])
    for eps in [None, 1e-3, 0.1]:
        # (with eps, PyTorch's gradient at nan is 0 in float64 and nan in float32: not compared)
        q = p if eps is None else p[~np.isnan(p)]
        value_and_grads(lambda v, e=eps: v.logit(eps=e), lambda v, e=eps: v.logit(eps=e), [q],
                        dtype, 1e-6 if dtype == F32 else 1e-15)  # fmt: skip
    same(ds.logit(ds.tensor([0, 1])), torch.logit(torch.tensor([0, 1])))
    same(ds.logit(ds.tensor([True])), torch.logit(torch.tensor([True])))


# ---------------------------------------------------------------------------------------------
# torch_extra: arrays, distances, histograms


@pytest.mark.parametrize("dtype", [F32, F64])
def test_cross_values_gradients_broadcast_and_default_dim(dtype):
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(1, 3, 4))
    value_and_grads(lambda p, q: ds.cross(p, q, dim=1), lambda p, q: torch.cross(p, q, dim=1),
                    [a, b], dtype, 1e-6, 1e-6)  # fmt: skip
    c, e = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    value_and_grads(lambda p, q: p.cross(q), lambda p, q: torch.linalg.cross(p, q), [c, e], dtype,
                    1e-6, 1e-6)  # fmt: skip
    with pytest.raises(RuntimeError, match="size 3"):
        ds.cross(ds.zeros(4, 2), ds.zeros(4, 2))


@pytest.mark.parametrize("k", [-1, 0, 1, 2, 3, 5])
def test_rot90_fliplr_flipud(k):
    x = np.arange(24.0).reshape(2, 3, 4)
    for dims in [(0, 1), (1, 2), (2, 0), (-1, -2)]:
        value_and_grads(lambda v, dims=dims: ds.rot90(v, k, dims),
                        lambda v, dims=dims: torch.rot90(v, k, dims), [x], F32, 0.0)  # fmt: skip
    value_and_grads(lambda v: v.fliplr(), lambda v: v.fliplr(), [x], F64, 0.0)
    value_and_grads(lambda v: v.flipud(), lambda v: v.flipud(), [x], F64, 0.0)
    same(ds.flipud(ds.tensor([1, 2, 3])), torch.flipud(torch.tensor([1, 2, 3])))
    with pytest.raises(RuntimeError, match="fliplr"):
        ds.fliplr(ds.zeros(3))
    with pytest.raises(RuntimeError, match="rot90"):
        ds.rot90(ds.zeros(3))


def test_block_diag_cartesian_prod_vander():
    rng = np.random.default_rng(7)
    parts = [rng.normal(size=(2, 3)), rng.normal(size=(4,)), np.array(1.5), rng.normal(size=(1, 2))]
    value_and_grads(ds.block_diag, torch.block_diag, parts, F32, 0.0, grad_rtol=1e-6)
    same(ds.block_diag(ds.tensor([[1, 2]]), ds.tensor([3.0])),
         torch.block_diag(torch.tensor([[1, 2]]), torch.tensor([3.0])))  # fmt: skip
    vs = [rng.normal(size=3), rng.normal(size=2), rng.normal(size=4)]
    value_and_grads(ds.cartesian_prod, torch.cartesian_prod, vs, F64, 0.0, grad_rtol=1e-14)
    same(ds.cartesian_prod(ds.tensor([1, 2])), torch.cartesian_prod(torch.tensor([1, 2])))
    x = rng.normal(size=5)
    for n, inc in [(None, False), (3, True), (1, False), (0, False), (6, True)]:
        # values against PyTorch (whose vander backward fails on an in-place cumprod), the
        # gradient against d/dx sum_k w_k x^k = sum_k k w_k x^(k-1)
        xd = ds.tensor(x, requires_grad=True)
        y = ds.vander(xd, n, inc)
        yt = torch.vander(torch.tensor(x, requires_grad=True), n, inc)
        same(y, yt, 1e-14)
        assert y.requires_grad == yt.requires_grad  # N <= 1: ones, not connected (as PyTorch)
        if not y.requires_grad:
            continue
        k = np.arange(y.shape[1]) if inc else np.arange(y.shape[1])[::-1]
        w = rng.normal(size=tuple(y.shape))
        (y * ds.tensor(w)).sum().backward()
        expect = (w * k * np.where(k > 0, x[:, None] ** np.maximum(k - 1, 0), 0)).sum(1)
        np.testing.assert_allclose(xd.grad.numpy(), expect, rtol=1e-12, atol=1e-14)
    same(ds.vander(ds.tensor([1, 2, 3])), torch.vander(torch.tensor([1, 2, 3])))  # int64


@pytest.mark.parametrize("dtype", [F32, F64])
def test_addbmm_and_renorm(dtype):
    rng = np.random.default_rng(8)
    inp, b1, b2 = rng.normal(size=(3, 5)), rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 2, 5))
    for beta, alpha in [(1, 1), (0.5, 2.0), (0, 1)]:
        value_and_grads(lambda i, p, q, be=beta, al=alpha: i.addbmm(p, q, beta=be, alpha=al),
                        lambda i, p, q, be=beta, al=alpha: i.addbmm(p, q, beta=be, alpha=al),
                        [inp, b1, b2], dtype, 1e-5, 1e-5)  # fmt: skip
    nan_in = ds.full((3, 5), float("nan"))
    assert not np.isnan(ds.addbmm(nan_in, ds.tensor(b1), ds.tensor(b2), beta=0).numpy()).any()
    x = rng.normal(size=(3, 4, 2))
    for p, dim, maxnorm in [(2, 0, 1.0), (1, 1, 0.5), (3.0, -1, 2.0), (2, 2, 100.0)]:
        value_and_grads(lambda v, a=(p, dim, maxnorm): ds.renorm(v, *a),
                        lambda v, a=(p, dim, maxnorm): torch.renorm(v, *a),
                        [x], dtype, 1e-5, 1e-6)  # fmt: skip


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("p", [0.0, 1.0, 2.0, 3.0, 0.5, float("inf")])
def test_cdist_values_and_gradients(p, dtype):
    rng = np.random.default_rng(9)
    x1, x2 = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 5, 3))
    tol = 1e-5 if dtype == F32 else 1e-12
    value_and_grads(lambda a, b: ds.cdist(a, b, p), lambda a, b: torch.cdist(a, b, p), [x1, x2],
                    dtype, tol, tol)  # fmt: skip


@pytest.mark.parametrize("p", [0.5, 0.25, 1.5, 3.0])
def test_cdist_gradient_where_a_coordinate_coincides(p):
    # points sharing a coordinate (grid points, duplicated clouds): for p < 1, d|t|^p/dt at
    # t = 0 is inf * 0; PyTorch's backward counts such a coordinate as 0 (descent gave nan)
    x1 = np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0], [1.0, -1.0, 0.5]])
    x2 = np.array([[0.0, 3.0, 2.0], [0.0, 1.0, 2.0], [2.0, -1.0, -0.5], [4.0, 1.0, 2.0]])
    for dtype, tol in [(F32, 1e-5), (F64, 1e-12)]:
        value_and_grads(lambda a, b, q=p: ds.cdist(a, b, q), lambda a, b, q=p: torch.cdist(a, b, q),
                        [x1, x2], dtype, tol, tol)  # fmt: skip
    a = ds.tensor(x1, dtype=ds.float64, requires_grad=True)
    ds.cdist(a, ds.tensor(x2, dtype=ds.float64), p).sum().backward()
    assert np.isfinite(a.grad.numpy()).all()


@pytest.mark.parametrize("mode", ["use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                                  "donot_use_mm_for_euclid_dist"])  # fmt: skip
def test_cdist_matrix_product_form_and_coincident_points(mode):
    rng = np.random.default_rng(10)
    x1, x2 = rng.normal(size=(30, 4)), rng.normal(size=(7, 4))
    x2[0] = x1[0]  # a zero distance: gradient 0, not nan
    for dtype in [F32, F64]:
        tol = 2e-4 if dtype == F32 else 1e-9
        value_and_grads(lambda a, b: ds.cdist(a, b, compute_mode=mode),
                        lambda a, b: torch.cdist(a, b, compute_mode=mode), [x1, x2], dtype,
                        tol, tol)  # fmt: skip


def test_histc_matches_torch():
    rng = np.random.default_rng(11)
    x = rng.normal(size=1000).astype(F32)
    x[:5] = [0.0, 1.0, -1.0, np.nan, 2.0]
    for bins, lo, hi in [(100, 0, 0), (7, -1, 1), (10, 0, 2), (1, -3, 3), (13, -0.5, 0.25)]:
        xin = x if (lo, hi) != (0, 0) else x[~np.isnan(x)]
        same(ds.histc(ds.tensor(xin), bins, lo, hi), torch.histc(torch.tensor(xin), bins, lo, hi))
        same(ds.tensor(xin).double().histc(bins, lo, hi),
             torch.tensor(xin).double().histc(bins, lo, hi))  # fmt: skip
    same(ds.histc(ds.zeros(0), 4), torch.histc(torch.zeros(0), 4))
    same(ds.histc(ds.tensor([2.0, 2.0]), 4), torch.histc(torch.tensor([2.0, 2.0]), 4))
    same(ds.histc(ds.tensor(0.5), 3, 0, 1), torch.histc(torch.tensor(0.5), 3, 0, 1))
    with pytest.raises(RuntimeError, match="histc"):
        ds.histc(ds.tensor([1.0]), 3, 2, 1)


def test_every_name_is_exported_and_a_method_where_torch_has_one():
    names = ["nansum", "nanmean", "fmax", "fmin", "erfc", "erfinv", "lgamma", "digamma",
             "polygamma", "sgn", "signbit", "sinc", "positive", "heaviside", "ldexp",
             "float_power", "logit", "cross", "rot90", "fliplr", "flipud", "block_diag",
             "cartesian_prod", "vander", "addbmm", "renorm", "cdist", "histc"]  # fmt: skip
    for n in names:
        assert hasattr(ds, n), n
        assert hasattr(ds.Tensor, n) == hasattr(torch.Tensor, n), n
