"""descent.special against torch.special (values, gradients, dtypes, edges), mpmath (accuracy of
the new kernels: erfcx, ndtr, log_ndtr, ndtri, i0/i0e/i1/i1e, gammainc/gammaincc, zeta,
J0/J1/Y0/Y1, K0/K1) and central finite differences in float64; plus the in-place forms
(`x.erfinv_()`, `x.xlogy_(y)`, ...), PyTorch's top-level names (torch.i0, torch.igamma, ...)
and the orthogonal polynomials.
"""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest
import torch

import descent as ds

F32, F64 = np.float32, np.float64
TDT = {F32: torch.float32, F64: torch.float64}

# torch.special names descent leaves out (docs/special.md says why).
LEFT_OUT: set[str] = set()
NOT_FUNCTIONS = {"Tensor", "torch", "common_args", "multi_dim_common"}

EDGES = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, np.inf, -np.inf, np.nan, 1e-30, -1e-30,
         3.5, -3.5, 40.0, -40.5, 1e-8, 5.0, 27.0, 0.25, 0.75, 1e-3, 0.999, 700.0, -720.0,
         1e5, -1e5, 24.9, 25.1, 1.9, 2.1, 0.9, 0.1]  # fmt: skip

# Unary functions: (float64 rtol, float32 rtol, float32 atol) against torch. J, Y and the
# float32 kernels of some torch functions are less accurate than descent's (checked against
# mpmath below), hence the wider float32 / J / Y tolerances.
UNARY = {
    "erfcx": (1e-13, 5e-6, 0), "ndtr": (1e-13, 2e-6, 2e-8), "log_ndtr": (1e-13, 2e-5, 0),
    "ndtri": (1e-13, 2e-6, 0), "entr": (1e-14, 2e-6, 0), "i0": (1e-13, 2e-6, 0),
    "i0e": (1e-13, 2e-6, 0), "i1": (1e-13, 2e-6, 0), "i1e": (1e-13, 2e-6, 0),
    "modified_bessel_i0": (1e-13, 2e-6, 0), "modified_bessel_i1": (1e-13, 2e-6, 0),
    "modified_bessel_k0": (1e-13, 2e-6, 0), "modified_bessel_k1": (1e-13, 2e-6, 0),
    "scaled_modified_bessel_k0": (1e-13, 2e-6, 0), "scaled_modified_bessel_k1": (1e-13, 2e-6, 0),
    "spherical_bessel_j0": (1e-14, 2e-6, 1e-7), "bessel_j0": (1e-7, 1e-5, 1e-5),
    "bessel_j1": (1e-7, 1e-5, 1e-5), "bessel_y0": (1e-7, 1e-5, 1e-5),
    "bessel_y1": (1e-7, 1e-5, 1e-5), "airy_ai": (1e-4, 1e-4, 1e-6), "erf": (1e-15, 2e-6, 0),
    "erfc": (1e-15, 2e-7, 0),
    "erfinv": (1e-14, 2e-7, 0), "expit": (1e-15, 2e-7, 0), "exp2": (1e-15, 2e-7, 0),
    "expm1": (1e-15, 2e-7, 0), "log1p": (1e-15, 2e-7, 0), "gammaln": (1e-13, 2e-6, 0),
    "psi": (1e-12, 4e-6, 0), "digamma": (1e-12, 4e-6, 0), "sinc": (1e-15, 2e-7, 1e-7),
}  # fmt: skip
# Inputs where torch's own kernel is off (checked against mpmath): sigmoid(-720) is a
# subnormal torch flushes; J/Y at |x| = 1e5 in float32 lose digits in torch's argument
# reduction (Ai below -100 too); digamma(-0.5) in float32; ndtr(-3.5) in float32
# ((1 + erf) / 2 in torch).
SKIP = {("expit", -720.0), ("psi", -0.5), ("digamma", -0.5)}
SKIP_FLOAT32_ABOVE = {"airy_ai": 100.0, "bessel_j0": 30.0, "bessel_j1": 30.0,
                      "bessel_y0": 30.0, "bessel_y1": 30.0}  # fmt: skip


def td(x, requires_grad=False):
    return ds.tensor(np.asarray(x), requires_grad=requires_grad)


def tt(x, requires_grad=False):
    return torch.tensor(np.asarray(x), requires_grad=requires_grad)


def assert_same(got, want, rtol, atol=0.0):
    g = got.numpy() if isinstance(got, ds.Tensor) else np.asarray(got)
    w = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert g.shape == w.shape, (g.shape, w.shape)
    assert g.dtype == w.dtype, (g.dtype, w.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True)


def test_namespace_covers_torch_special():
    names = {n for n in dir(torch.special) if not n.startswith("_")} - NOT_FUNCTIONS
    missing = {n for n in names if not hasattr(ds.special, n)}
    assert missing == LEFT_OUT
    assert set(ds.special.__all__) == names - LEFT_OUT


def _same(f, g) -> bool:
    """f is g, or g is f re-made with PyTorch's parameter names (descent.torch_keywords: the
    same bytecode, constants and globals, only the parameters renamed). An out= wrapper
    (descent/out_functions.py) is looked through."""
    f = getattr(f, "__wrapped_for_out__", f)
    g = getattr(g, "__wrapped_for_out__", g)
    if f is g:
        return True
    a, b = f.__code__, g.__code__
    return (a.co_code == b.co_code and a.co_consts == b.co_consts
            and f.__globals__ is g.__globals__)  # fmt: skip


def test_aliases_are_the_existing_functions():
    sp = ds.special
    assert _same(sp.gammaln, ds.lgamma) and _same(sp.psi, ds.digamma)
    assert _same(sp.digamma, ds.digamma) and _same(sp.expit, ds.sigmoid)
    assert _same(sp.erf, ds.erf) and _same(sp.erfinv, ds.erfinv)
    assert _same(sp.xlogy, ds.xlogy) and _same(sp.sinc, ds.sinc)
    assert _same(sp.polygamma, ds.polygamma)
    sigmoid = getattr(ds.sigmoid, "__wrapped_for_out__", ds.sigmoid)  # through out='s wrapper
    assert sigmoid.__code__.co_varnames[0] == "input"  # PyTorch's name on the top level
    assert ds.i0 is sp.i0 and ds.igamma(ds.tensor(2.0), ds.tensor(1.0)).item() == pytest.approx(
        sp.gammainc(ds.tensor(2.0), ds.tensor(1.0)).item()
    )


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", [F64, F32])
def test_unary_values_match_torch(name, dtype):
    rtol64, rtol32, atol32 = UNARY[name]
    values = [v for v in EDGES if (name, v) not in SKIP]
    if dtype == F32 and name in SKIP_FLOAT32_ABOVE:
        values = [v for v in values if not abs(v) > SKIP_FLOAT32_ABOVE[name] or np.isinf(v)]
    if dtype == F32 and name == "ndtr":
        values = [v for v in values if v != -3.5]
    rng = np.random.default_rng(0)
    x = np.concatenate([np.array(values), rng.uniform(-30, 30, 200), rng.uniform(0, 1, 50)])
    x = x.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = getattr(ds.special, name)(td(x))
        want = getattr(torch.special, name)(tt(x))
    if dtype == F64:
        # torch's float64 J, Y are 3e-7 off (absolute, against mpmath); its ndtr
        # (1 + erf(x / sqrt 2)) / 2 is 0 below -8.3, where descent's keeps its digits.
        atol = {"ndtr": 1e-16}.get(name, 1e-6 if name.startswith("bessel") else 0.0)
        assert_same(got, want, rtol64, atol)
    else:
        assert_same(got, want, rtol32, atol32)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_dtypes_empty_and_0d(name):
    fd, ft = getattr(ds.special, name), getattr(torch.special, name)
    for x in (np.array([0, 1, 3]), np.array(True), np.zeros((0, 3), F64), np.array(0.7, F32),
              np.array([[0.3]], F64)):  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert_same(fd(td(x)), ft(tt(x)), 1e-6, 1e-6)


BINARY = ["xlogy", "xlog1py", "gammainc", "gammaincc", "zeta"]
B = [0.0, 0.5, 1.0, 2.0, 10.0, -1.0, np.inf, np.nan, 100.0, -0.5, 1e-3, 3.7, -2.0, 0.999]


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("dtype", [F64, F32])
def test_binary_values_and_edges_match_torch(name, dtype):
    a, b = (v.ravel().astype(dtype) for v in np.meshgrid(B, B))
    rng = np.random.default_rng(1)
    a = np.concatenate([a, rng.uniform(0.05, 30, 100).astype(dtype)])
    b = np.concatenate([b, (a[-100:] * rng.uniform(0.5, 1.5, 100)).astype(dtype)])
    if name == "zeta":
        a[-100:] += 1
    got = getattr(ds.special, name)(td(a), td(b))
    want = getattr(torch.special, name)(tt(a), tt(b))
    if dtype == F64:
        # torch's float64 igamma is 2e-9 off at a, x ~ 10-30 (descent's: mpmath test below)
        assert_same(got, want, 1e-8 if name.startswith("gamma") else 1e-12)
    else:  # torch's float32 kernels underflow early and lose digits near a = 0
        assert_same(got, want, 2e-4, 1e-30)


def test_binary_scalars_broadcasting_and_dtypes():
    sp = ds.special
    x = np.array([[0.5, 1.0, 2.0]], F32)
    y = np.array([[1.5], [3.0]], F64)
    for name in BINARY:
        fd, ft = getattr(sp, name), getattr(torch.special, name)
        assert_same(fd(td(x), td(y)), ft(tt(x), tt(y)), 1e-9)  # promoted to float64
        if not name.startswith("gamma"):  # torch.special.gammainc takes no scalar input
            assert_same(fd(2.0, td(x)), ft(2.0, tt(x)), 2e-6)  # a Python scalar stays weak
            assert_same(fd(td(x), 3), ft(tt(x), 3), 2e-6)
        ints = np.array([1, 2, 3])
        if name.startswith("gamma"):  # PyTorch: "igamma_cpu" not implemented for 'Long'
            with pytest.raises(RuntimeError, match="floating"):
                fd(td(ints), td(ints))
        else:
            assert_same(fd(td(ints), td(ints + 1)), ft(tt(ints), tt(ints + 1)), 2e-6)
        assert fd(td(np.zeros((0, 2))), td(np.ones(2))).shape == (0, 2)


def test_wrappers_with_torch_signatures():
    sp, x = ds.special, np.array([[1.2345, -2.5, 0.25], [3.0, 0.0, -1.0]], F32)
    assert_same(sp.softmax(td(x), 1), torch.special.softmax(tt(x), 1), 1e-6)
    assert_same(sp.softmax(td(x), 0, dtype=ds.float64),
                torch.special.softmax(tt(x), 0, dtype=torch.float64), 1e-12)  # fmt: skip
    assert_same(sp.log_softmax(td(x), -1), torch.special.log_softmax(tt(x), -1), 1e-6)
    assert_same(sp.logsumexp(td(x), 1, keepdim=True),
                torch.special.logsumexp(tt(x), 1, keepdim=True), 1e-6)  # fmt: skip
    assert_same(sp.round(td(x), decimals=2), torch.special.round(tt(x), decimals=2), 1e-6)
    assert_same(sp.logit(td(x / 4 + 0.5), eps=0.2), torch.special.logit(tt(x / 4 + 0.5), eps=0.2),
                1e-6)  # fmt: skip
    m = np.array([1.7, 3.25, 9.0])
    assert_same(sp.multigammaln(td(m), 3), torch.special.multigammaln(tt(m), 3), 1e-13)
    assert_same(ds.mvlgamma(td(m.astype(F32)), 2), torch.mvlgamma(tt(m.astype(F32)), 2), 1e-6)
    assert_same(td(m).mvlgamma(1), tt(m).mvlgamma(1), 1e-13)
    assert_same(sp.multigammaln(td(np.array([2, 3])), 2),
                torch.special.multigammaln(tt(np.array([2, 3])), 2), 1e-6)  # fmt: skip
    # 1.7 <= (5 - 1) / 2: computed, as torch 2.13 does (older versions raised)
    assert_same(sp.multigammaln(td(m), 5), torch.special.multigammaln(tt(m), 5), 1e-13)
    with pytest.raises(RuntimeError, match="p has to be"):
        sp.multigammaln(td(m), 0)


# ---------------------------------------------------------------------------------------------
# Gradients


DIFFERENTIABLE = {  # name -> input domain for the gradient checks
    "erfcx": (-3, 8), "ndtr": (-6, 6), "log_ndtr": (-30, 6), "ndtri": (1e-6, 1 - 1e-6),
    "entr": (0.01, 5), "i0": (-30, 30), "i0e": (-30, 30), "i1": (-30, 30), "i1e": (-30, 30),
    "erf": (-3, 3), "erfc": (-3, 3), "erfinv": (-0.99, 0.99), "gammaln": (0.1, 10),
    "psi": (0.1, 10), "expit": (-10, 10), "exp2": (-5, 5), "sinc": (-3, 3),
}  # fmt: skip


def _projected_grads(fd, ft, x, dtype, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=x.shape).astype(dtype)
    a, b = td(x.astype(dtype), True), tt(x.astype(dtype), True)
    (fd(a) * td(w)).sum().backward()
    (ft(b) * tt(w)).sum().backward()
    return a.grad, b.grad


@pytest.mark.parametrize("name", sorted(DIFFERENTIABLE))
@pytest.mark.parametrize("dtype", [F64, F32])
def test_unary_gradients_match_torch(name, dtype):
    lo, hi = DIFFERENTIABLE[name]
    x = np.random.default_rng(2).uniform(lo, hi, (4, 25))
    if name in ("i1", "i1e"):
        x[0, 0] = 0.0  # the 1/2 at 0
    if name in ("i0e", "i1e"):
        x[0, 1] = -0.0
    gd, gt = _projected_grads(getattr(ds.special, name), getattr(torch.special, name), x, dtype)
    # torch's float64 trigamma (psi's gradient) is 5e-10 off; its float32 log_ndtr gradient
    # exp(-(log Phi + x^2/2)) cancels to 1e-4 at x = -30 (descent's: sqrt(2/pi) / erfcx).
    rtol = {F64: 1e-9 if name == "psi" else 1e-11, F32: 2e-4 if name == "log_ndtr" else 2e-5}
    assert_same(gd, gt, rtol[dtype], 1e-6 if dtype == F32 else 1e-13)


@pytest.mark.parametrize("name", sorted(DIFFERENTIABLE))
def test_unary_gradients_central_differences(name):
    lo, hi = DIFFERENTIABLE[name]
    x = np.random.default_rng(3).uniform(lo, hi, 40)
    fd = getattr(ds.special, name)
    a = td(x, True)
    fd(a).sum().backward()
    h = 1e-6 * np.maximum(1.0, np.abs(x))
    if name == "ndtri":
        h = 1e-6 * np.minimum(x, 1 - x)
    num = (fd(td(x + h)).numpy() - fd(td(x - h)).numpy()) / (2 * h)
    np.testing.assert_allclose(a.grad.numpy(), num, rtol=2e-6, atol=1e-9)


def test_second_order_gradients():
    """create_graph: the backward of each new op differentiates again (i0'' = i1')."""
    x = np.array([0.3, 1.7, -2.2, 6.0])
    for fd, ft in [(ds.special.i0, torch.special.i0), (ds.special.i1e, torch.special.i1e),
                   (ds.special.erfcx, torch.special.erfcx),
                   (ds.special.log_ndtr, torch.special.log_ndtr),
                   (ds.special.entr, torch.special.entr)]:  # fmt: skip
        xx = np.abs(x) if fd is ds.special.entr else x
        b = tt(xx, True)
        (gb,) = torch.autograd.grad(ft(b).sum(), b, create_graph=True)
        (gbb,) = torch.autograd.grad(gb.sum(), b)
        second = ds.grad(lambda t, f=fd: ds.grad(lambda u: f(u).sum())(t).sum())
        assert_same(second(td(xx)), gbb, 1e-10, 1e-14)


@pytest.mark.parametrize("name", ["xlogy", "xlog1py", "gammainc", "gammaincc", "zeta"])
@pytest.mark.parametrize("dtype", [F64, F32])
def test_binary_gradients_match_torch(name, dtype):
    rng = np.random.default_rng(4)
    a = rng.uniform(0.2, 5, (3, 8))
    b = rng.uniform(0.2, 5, (3, 8))
    if name == "zeta":
        a += 1.0
    if name in ("xlogy", "xlog1py"):
        a[0, :3] = 0.0
        b[0, 1] = -1.0 if name == "xlog1py" else 0.0
    fd, ft = getattr(ds.special, name), getattr(torch.special, name)
    w = rng.normal(size=a.shape).astype(dtype)
    second_only = name in ("gammainc", "gammaincc", "zeta")
    ad, bd = td(a.astype(dtype), not second_only), td(b.astype(dtype), True)
    at, bt = tt(a.astype(dtype), not second_only), tt(b.astype(dtype), True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (fd(ad, bd) * td(w)).sum().backward()
        (ft(at, bt) * tt(w)).sum().backward()
    rtol, atol = (1e-10, 1e-14) if dtype == F64 else (5e-5, 1e-6)
    assert_same(bd.grad, bt.grad, rtol, atol)
    if not second_only:
        assert_same(ad.grad, at.grad, rtol, atol)
    # central differences in float64 for the second argument
    bb = b.copy()
    h = 1e-6 * np.maximum(1.0, np.abs(bb))
    num = (fd(td(a), td(bb + h)).numpy() - fd(td(a), td(bb - h)).numpy()) / (2 * h)
    bg = td(bb, True)
    fd(td(a), bg).sum().backward()
    ok = ~((a == 0) | (bb <= 0.0 + h))
    np.testing.assert_allclose(bg.grad.numpy()[ok], num[ok], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["gammainc", "gammaincc", "zeta"])
def test_first_argument_derivative_raises_as_torch(name):
    a = td(np.array([2.5, 3.0]), True)
    y = getattr(ds.special, name)(a, td(np.array([1.5, 2.0])))
    assert y.requires_grad
    with pytest.raises(ds.DescentError, match=f"{name}: the derivative with respect to the first"):
        y.sum().backward()
    at = tt(np.array([2.5, 3.0]), True)
    with pytest.raises(NotImplementedError):
        getattr(torch.special, name)(at, tt(np.array([1.5, 2.0]))).sum().backward()


@pytest.mark.parametrize("name", ["bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1",
                                  "modified_bessel_i0", "modified_bessel_i1",
                                  "modified_bessel_k0", "modified_bessel_k1",
                                  "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
                                  "spherical_bessel_j0", "airy_ai"])  # fmt: skip
def test_functions_without_gradient_as_torch(name):
    x = np.array([0.5, 3.0])
    assert not getattr(torch.special, name)(tt(x, True)).requires_grad
    assert not getattr(ds.special, name)(td(x, True)).requires_grad


# ---------------------------------------------------------------------------------------------
# Accuracy against mpmath (40 digits; the Bessel functions 25, see _bessel_ref)


def _mp_vec(fn, *arrays):
    mpmath.mp.dps = 40
    out = []
    for vals in zip(*arrays, strict=True):
        try:
            out.append(float(fn(*(mpmath.mpf(float(v)) for v in vals))))
        except (ValueError, ZeroDivisionError):
            out.append(np.nan)
    return np.array(out)


def _bessel_ref(fn, nu):
    """mpmath's Bessel ``fn`` of order ``nu`` at 25 digits: mpmath's Bessel functions raise
    their working precision where their series cancel, so 25 digits give the same float64 and
    float32 values as 40 on every input here (checked: notes/s24/h170/mp_dps*.py) at half the
    time (besselk's large arguments: 4.3 s of k1's test at 40)."""

    def ref(v):
        mpmath.mp.dps = 25
        return fn(nu, v)

    return ref


def _hurwitz(s, q):
    """zeta(s, q) by 200 terms and the Euler-Maclaurin tail (mpmath's zeta loses digits for
    large s and q, e.g. zeta(31.2, 497.5) at 40 digits is 1e-9 off)."""
    mpmath.mp.dps = 50
    z = q + 200
    head = mpmath.fsum((q + k) ** -s for k in range(200))
    tail = z ** (1 - s) / (s - 1) + z**-s / 2
    rising, fact = s, 2
    bern = [mpmath.bernoulli(2 * j) for j in range(1, 8)]
    for j, b in enumerate(bern, start=1):
        tail += b / fact * rising * z ** (-s - 2 * j + 1)
        rising *= (s + 2 * j - 1) * (s + 2 * j)
        fact *= (2 * j + 1) * (2 * j + 2)
    return head + tail


def _ndtri_ref(p):
    """The root of log Phi(x) = log min(p, 1 - p), from the tail's leading term."""
    mpmath.mp.dps = 60
    q = min(p, 1 - p)
    start = -mpmath.sqrt(-2 * mpmath.log(q)) if q < 0.1 else -1.0
    x = mpmath.findroot(lambda t: mpmath.log(mpmath.ncdf(t)) - mpmath.log(q), start)
    return x if p < 0.5 else -x


R = np.random.default_rng(5)
ACCURACY = [
    # name, fn, mpmath reference, inputs, float64 rtol, float32 ulp (away from zeros)
    ("erfcx", lambda x: ds.special.erfcx(x), lambda v: mpmath.erfc(v) * mpmath.exp(v * v),
     [np.concatenate([R.uniform(-26, 30, 200), np.exp(R.uniform(-30, 60, 60))])], 2e-15, 1),
    ("log_ndtr", lambda x: ds.special.log_ndtr(x), lambda v: mpmath.log(mpmath.ncdf(v)),
     [R.uniform(-60, 9, 300)], 2e-14, 1),
    ("ndtri", lambda x: ds.special.ndtri(x), _ndtri_ref,
     [np.concatenate([R.uniform(0, 1, 150), np.exp(R.uniform(-700, -1, 60)),
                      1 - np.exp(R.uniform(-36, -1, 40))])], 2e-15, 1),
    ("i0", lambda x: ds.special.i0(x), lambda v: mpmath.besseli(0, v),
     [np.concatenate([R.uniform(-60, 60, 200), R.uniform(-2, 2, 40), R.uniform(600, 700, 10)])],
     4e-15, 1),
    ("i0e", lambda x: ds.special.i0e(x), lambda v: mpmath.besseli(0, v) * mpmath.exp(-abs(v)),
     [np.concatenate([R.uniform(-60, 60, 200), np.exp(R.uniform(4, 40, 30))])], 4e-15, 1),
    ("i1", lambda x: ds.special.i1(x), lambda v: mpmath.besseli(1, v),
     [np.concatenate([R.uniform(-60, 60, 200), np.exp(R.uniform(-40, 0, 30))])], 4e-15, 1),
    ("i1e", lambda x: ds.special.i1e(x), lambda v: mpmath.besseli(1, v) * mpmath.exp(-abs(v)),
     [np.concatenate([R.uniform(-60, 60, 200), np.exp(R.uniform(4, 40, 30))])], 4e-15, 1),
    ("k0", ds.special.modified_bessel_k0, _bessel_ref(mpmath.besselk, 0),
     [np.concatenate([R.uniform(0, 25, 60), R.uniform(25, 60, 8), np.exp(R.uniform(-40, 0, 15))])],
     4e-15, 1),
    ("k1", ds.special.modified_bessel_k1, _bessel_ref(mpmath.besselk, 1),
     [np.concatenate([R.uniform(0, 25, 60), R.uniform(25, 60, 8), np.exp(R.uniform(-40, 0, 15))])],
     4e-15, 1),
    ("k0e", ds.special.scaled_modified_bessel_k0, lambda v: mpmath.besselk(0, v) * mpmath.exp(v),
     [np.concatenate([np.exp(R.uniform(-10, 3.3, 60)), R.uniform(25, 1e4, 8)])], 4e-15, 1),
    ("k1e", ds.special.scaled_modified_bessel_k1, lambda v: mpmath.besselk(1, v) * mpmath.exp(v),
     [np.concatenate([np.exp(R.uniform(-10, 3.3, 60)), R.uniform(25, 1e4, 8)])], 4e-15, 1),
    ("gammainc", ds.special.gammainc,
     lambda a, x: mpmath.gammainc(a, 0, x, regularized=True),
     [np.exp(R.uniform(-5, 6, 200)), None], 1e-13, 1),
    ("gammaincc", ds.special.gammaincc,
     lambda a, x: mpmath.gammainc(a, x, mpmath.inf, regularized=True),
     [np.exp(R.uniform(-5, 6, 200)), None], 1e-13, 1),
    ("zeta", ds.special.zeta, _hurwitz,
     [1 + np.exp(R.uniform(-8, 4, 200)), np.exp(R.uniform(-5, 7, 200))], 1e-14, 1),
]  # fmt: skip


@pytest.mark.parametrize("case", ACCURACY, ids=[c[0] for c in ACCURACY])
def test_accuracy_against_mpmath(case):
    """float64 within the stated relative error; float32 correctly rounded (0.5 ulp of the
    exact value at the float32 input, plus float64's error: <= 0.51 ulp)."""
    name, fn, ref, inputs, rtol64, _ = case
    if inputs[-1] is None:  # x around a for the incomplete gamma functions
        inputs = [inputs[0], inputs[0] * np.exp(np.random.default_rng(6).normal(0, 0.5, 200))]
    want = _mp_vec(ref, *inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = fn(*(td(v) for v in inputs)).numpy()
    ok = np.isfinite(want) & (want != 0)
    rel = np.abs(got[ok] - want[ok]) / np.abs(want[ok])
    assert rel.max() <= rtol64, (name, rel.max())
    x32 = [v.astype(F32) for v in inputs]
    want32 = _mp_vec(ref, *x32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got32 = fn(*(td(v) for v in x32)).numpy()
    assert got32.dtype == F32
    ok = np.isfinite(want32) & (np.abs(want32) > np.finfo(F32).tiny) & (
        np.abs(want32) < np.finfo(F32).max)
    ulp = np.abs(got32[ok] - want32[ok]) / np.spacing(np.abs(want32[ok]).astype(F32))
    assert ulp.max() <= 0.51, (name, ulp.max())


@pytest.mark.parametrize("nu", [0, 1])
@pytest.mark.parametrize("kind", ["j", "y"])
def test_bessel_j_y_accuracy_against_mpmath(kind, nu):
    """J and Y: 3e-15 absolute everywhere (relative where |Y| > 1), 1e-14 relative where
    |value| > 0.3 (near the zeros only the absolute error is meaningful); float32 within 1 ulp
    where |value| > 0.05."""
    x = np.concatenate([R.uniform(0, 2, 100), R.uniform(2, 25, 300), R.uniform(25, 300, 100),
                        np.exp(R.uniform(-20, 0, 30)), np.exp(R.uniform(6, 20, 20))])  # fmt: skip
    fn = getattr(ds.special, f"bessel_{kind}{nu}")
    mp = _bessel_ref(mpmath.besselj if kind == "j" else mpmath.bessely, nu)
    want = _mp_vec(mp, x)
    got = fn(td(x)).numpy()
    err = np.abs(got - want) / np.maximum(1.0, np.abs(want))  # Y is large at tiny x
    assert err.max() <= 3e-15
    big = np.abs(want) > 0.3  # away from the zeros: relative
    assert (err[big] / np.abs(want[big])).max() <= 1e-14
    x32 = x.astype(F32)
    want32 = _mp_vec(mp, x32)
    got32 = fn(td(x32)).numpy()
    big = np.abs(want32) > 0.05
    ulp = np.abs(got32[big] - want32[big]) / np.spacing(np.abs(want32[big]).astype(F32))
    assert ulp.max() <= 1.0


# ---------------------------------------------------------------------------------------------
# In-place forms and top-level names


INPLACE = [  # (method, args, input domain)
    ("erf_", (), (-2, 2)), ("erfc_", (), (-2, 2)), ("erfinv_", (), (-0.9, 0.9)),
    ("lgamma_", (), (0.2, 5)), ("digamma_", (), (0.2, 5)), ("polygamma_", (2,), (0.2, 5)),
    ("sinc_", (), (-2, 2)), ("logit_", (), (0.1, 0.9)), ("logit_", (0.25,), (0.1, 0.9)),
    ("sgn_", (), (-2, 2)), ("i0_", (), (-5, 5)), ("exp2_", (), (-3, 3)),
    ("round_", (), (-3, 3)), ("xlogy_", ("other",), (0.1, 3)),
    ("heaviside_", ("values",), (-2, 2)), ("mvlgamma_", (2,), (1, 5)),
    ("igamma_", ("other",), (0.5, 3)), ("igammac_", ("other",), (0.5, 3)),
]  # fmt: skip


def _args(args, lib, dtype):
    out = []
    for a in args:
        if a == "other":
            v = np.linspace(0.5, 2.0, 6).astype(dtype)
            out.append(td(v) if lib == "ds" else tt(v))
        elif a == "values":
            v = np.array([0.5], dtype)
            out.append(td(v) if lib == "ds" else tt(v))
        else:
            out.append(a)
    return out


@pytest.mark.parametrize("method,args,dom", INPLACE, ids=[f"{m}{a}" for m, a, _ in INPLACE])
@pytest.mark.parametrize("dtype", [F32, F64])
def test_inplace_values_match_torch(method, args, dom, dtype):
    x = np.random.default_rng(7).uniform(*dom, 6).astype(dtype)
    if method in ("round_", "heaviside_"):
        x[0] = 0.0
    a, b = td(x.copy()), tt(x.copy())
    view = a[1:]
    ra = getattr(a, method)(*_args(args, "ds", dtype))
    rb = getattr(b, method)(*_args(args, "torch", dtype))
    assert ra is a
    assert_same(a, rb, 2e-6 if dtype == F32 else 1e-12)
    assert_same(view, rb[1:], 2e-6 if dtype == F32 else 1e-12)  # written into the array


@pytest.mark.parametrize("method,args,dom", [c for c in INPLACE if c[0] not in (
    "sgn_", "round_", "heaviside_")], ids=lambda c: str(c))  # fmt: skip
def test_inplace_is_recorded_and_version_checked(method, args, dom):
    x = np.random.default_rng(8).uniform(*dom, 6)
    # recorded: the gradient flows through the in-place op
    a, b = td(x, True), tt(x, True)
    ya, yb = a * 1.0, b * 1.0
    getattr(ya, method)(*_args(args, "ds", F64))
    getattr(yb, method)(*_args(args, "torch", F64))
    if method in ("igamma_", "igammac_"):  # x is the a of P(a, y): no derivative in torch
        with pytest.raises(ds.DescentError, match="first argument"):
            (ya * ya).sum().backward()
        with pytest.raises(NotImplementedError):
            (yb * yb).sum().backward()
    else:
        (ya * ya).sum().backward()
        (yb * yb).sum().backward()
        assert_same(a.grad, b.grad, 1e-9)  # torch's trigamma (digamma_'s gradient): 5e-10
    # a value saved for backward and then changed in place: the version check raises
    c = td(x, True)
    z = c * 1.0
    w = z * z  # Mul saved z
    getattr(z, method)(*_args(args, "ds", F64))
    with pytest.raises(RuntimeError, match="modified in place"):
        w.sum().backward()
    # a leaf that requires grad may not be changed in place under grad mode
    with pytest.raises(RuntimeError, match="leaf"):
        getattr(td(x, True), method)(*_args(args, "ds", F64))


def test_inplace_errors_match_torch():
    with pytest.raises(RuntimeError, match="can't be cast"):
        td(np.array([1, 2])).i0_()
    with pytest.raises(RuntimeError):
        tt(np.array([1, 2])).i0_()
    with pytest.raises(RuntimeError, match="broadcast shape"):
        td(np.array([1.0, 2.0])).xlogy_(td(np.ones((3, 2))))
    x = td(np.array([1.0, 2.0], F32))
    x.xlogy_(td(np.array([2.0, 3.0], F64)))  # a float64 result written into float32
    assert x.dtype == ds.float32
    np.testing.assert_allclose(x.numpy(), [np.log(2.0), 2 * np.log(3.0)], rtol=1e-6)


def test_top_level_names_match_torch():
    x = np.array([0.3, 1.5, 2.5], F32)
    assert_same(ds.i0(td(x)), torch.i0(tt(x)), 1e-6)
    assert_same(td(x).i0(), tt(x).i0(), 1e-6)
    assert_same(ds.igamma(td(x), td(x + 1)), torch.igamma(tt(x), tt(x + 1)), 1e-5)
    assert_same(ds.igammac(td(x), td(x + 1)), torch.igammac(tt(x), tt(x + 1)), 1e-5)
    assert_same(td(x).igamma(td(x)), tt(x).igamma(tt(x)), 1e-5)
    assert_same(td(x).igammac(td(x)), tt(x).igammac(tt(x)), 1e-5)
    for name in ("erf_", "erfc_", "exp2_", "i0_", "sinc_", "round_"):
        a, b = td(x.copy()), tt(x.copy())
        getattr(ds, name)(a)
        getattr(torch, name)(b)
        assert_same(a, b, 1e-6)
    a, b = td(x / 3), tt(x / 3)
    ds.logit_(a, 0.1)
    torch.logit_(b, 0.1)
    assert_same(a, b, 1e-6)
    a, b = td(x.copy()), tt(x.copy())
    ds.xlogy_(a, 2.0)
    torch.xlogy_(b, 2.0)
    assert_same(a, b, 1e-6)


# ---------------------------------------------------------------------------------------------
# Orthogonal polynomials


POLYNOMIALS = sorted(n for n in dir(torch.special) if "polynomial" in n)


@pytest.mark.parametrize("name", POLYNOMIALS)
@pytest.mark.parametrize("dtype", [F64, F32])
def test_polynomials_match_torch(name, dtype):
    """Degrees -1 .. 20, non-integer (truncated) and nan degrees, x inside and outside
    [-1, 1] and at +-inf. Not at a nan x: there torch's Laguerre, Legendre, U and W return a
    neighbouring element's value (descent gives nan)."""
    rng = np.random.default_rng(10)
    x = np.concatenate([[-2.0, -1.0, -0.5, 0.0, 0.3, 1.0, 1.5, 0.9999, np.inf, -np.inf, 1e-20],
                        rng.uniform(-1.5, 1.5, 30), rng.uniform(-0.2, 1.2, 30)]).astype(dtype)
    fd, ft = getattr(ds.special, name), getattr(torch.special, name)
    for n in [-1, 0, 1, 2, 3, 5, 7, 9, 12, 20, 2.9, -0.5, np.nan]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rtol, atol = (1e-9, 1e-12) if dtype == F64 else (1e-4, 1e-5)
            assert_same(fd(td(x), n), ft(tt(x), n), rtol, atol)
    # n as a tensor: broadcast against x, promoted with it; ints compute in float32
    n = np.array([[3], [9]])
    assert_same(fd(td(x[:8]), td(n)), ft(tt(x[:8]), tt(n)), 1e-4, 1e-5)
    assert_same(fd(0.5, td(n)), ft(0.5, tt(n)), 1e-6, 1e-6)
    assert_same(fd(td(np.array([1, 2])), td(np.array([2.0]))),
                ft(tt(np.array([1, 2])), tt(np.array([2.0]))), 1e-12)  # fmt: skip
    assert not fd(td(x[:4], True), 3).requires_grad


def test_airy_accuracy_against_mpmath():
    """Ai: 1e-14 relative on [-2, 10] away from the zeros; beyond, the rounding of
    zeta = 2/3 |x|^(3/2) (exact to 1 ulp) sets the error: 2e-13 relative for x up to 100,
    1e-13 of |x|^-1/4 (the amplitude) absolute for x down to -100. float32: 1 ulp where
    |Ai| > 0.05 (torch's own float64 Ai is 3e-5 off)."""
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.uniform(-2, 10, 200), rng.uniform(10, 100, 40),
                        rng.uniform(-100, -2, 100)])  # fmt: skip
    want = _mp_vec(mpmath.airyai, x)
    got = ds.special.airy_ai(td(x)).numpy()
    err = np.abs(got - want)
    inner = (x >= -2) & (x <= 10)
    assert (err[inner] / np.abs(want[inner])).max() <= 1e-14
    far = x > 10
    assert (err[far] / np.abs(want[far])).max() <= 2e-13
    neg = x < -2
    assert (err[neg] / np.abs(x[neg]) ** -0.25).max() <= 1e-13
    x32 = x.astype(F32)
    want32 = _mp_vec(mpmath.airyai, x32)
    got32 = ds.special.airy_ai(td(x32)).numpy()
    big = (np.abs(want32) > 0.05) & (np.abs(x32) < 30)
    ulp = np.abs(got32[big] - want32[big]) / np.spacing(np.abs(want32[big]).astype(F32))
    assert ulp.max() <= 1.0


@pytest.mark.parametrize("dtype", [F64, F32])
def test_multigammaln_gradient_matches_torch(dtype):
    x = np.random.default_rng(12).uniform(2.0, 6.0, (3, 5))
    gd, gt = _projected_grads(lambda t: ds.special.multigammaln(t, 3),
                              lambda t: torch.special.multigammaln(t, 3), x, dtype)  # fmt: skip
    assert_same(gd, gt, 1e-12 if dtype == F64 else 2e-5)


@pytest.mark.parametrize("eps", [None, 0.2, 0.0])
@pytest.mark.parametrize("gy", [1.0, 0.0, -2.0, float("nan")])
def test_logit_gradient_at_edges_nan_and_inf_like_torch(eps, gy):
    """Regression: with eps, a nan x had gradient 0 (torch 2.13: nan).

    torch's reference is its scalar kernel, element by element (one-element tensors): its
    vectorized kernel differs at two of these points (the sign of inf at x = -0.0, and 0 for a
    nan x with eps), and which kernel an element meets depends on the length and the CPU
    (AVX2 runs 8 float64 values a pass, AVX-512 16: this 11-value case met the scalar kernel
    on an AVX-512 host and the vectorized one on an AVX2 host, session 20)."""
    x = [0.0, -0.0, 1.0, 0.5, -0.5, 1.5, float("nan"), 0.2, 0.8, 0.19999, float("inf")]
    a = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    ds.logit(a, eps).backward(ds.full((len(x),), gy, dtype=ds.float64))
    want = []
    for v in x:
        t = torch.tensor([v], dtype=torch.float64, requires_grad=True)
        torch.logit(t, eps).backward(torch.full((1,), gy, dtype=torch.float64))
        want.append(t.grad.item())
    np.testing.assert_allclose(a.grad.numpy(), want, rtol=1e-12, equal_nan=True)
