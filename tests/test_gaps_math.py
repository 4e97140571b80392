"""The torch math names added by docs/torch_gaps_math.md against torch 2.13: values, dtypes,
errors (the same exception class), 0-d/empty/broadcast inputs, gradients against torch in
float32 and float64 finite differences. The in-place forms: tests/test_gaps_math_inplace.py."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import descent as ds
from descent.autograd_gradcheck import gradcheck
from gaps_math_helpers import _both, _check, _name, _raises_like  # noqa: F401

RNG = np.random.default_rng(0)
NAN, INF = math.nan, math.inf


# ---------------------------------------------------------------------------------------------
# The names exist

TOP = """gcd lcm greater greater_equal less less_equal not_equal nextafter frexp angle nanmedian
vdot addmv addr unique_consecutive isreal logspace range scalar_tensor trapezoid trapz
cumulative_trapezoid gradient unravel_index chain_matmul frobenius_norm nuclear_norm matrix_rank
hann_window hamming_window blackman_window bartlett_window kaiser_window abs_ acos_ exp_ sqrt_
clamp_ neg_ gcd_ lcm_ addmv_ clip_ deg2rad_ nan_to_num_""".split()
METHODS = """gcd lcm greater greater_equal less less_equal not_equal nextafter frexp angle
nanmedian vdot addmv addr unique_consecutive isreal addcdiv addcmul baddbmm allclose diff dist ger
inner kron mv outer deg2rad rad2deg true_divide absolute acos_ pow_ eq_ addmm_ cumsum_
float_power_ divide_ subtract_ bitwise_left_shift_ logical_not_""".split()


def test_names_exist():
    assert [n for n in TOP if not hasattr(ds, n)] == []
    assert [n for n in METHODS if not hasattr(ds.Tensor, n)] == []
    # every method of the mixin is the one Tensor uses (no earlier base defines it)
    from descent.tensor_gap_methods_math import MathGapMethods2

    mine = {n: f for n, f in vars(MathGapMethods2).items() if not n.startswith("_")}
    assert len(mine) > 100
    assert [n for n, f in mine.items() if getattr(ds.Tensor, n) is not f] == []


# ---------------------------------------------------------------------------------------------
# Elementwise


@pytest.mark.parametrize("name", ["greater", "greater_equal", "less", "less_equal", "not_equal"])
def test_comparison_aliases(name):
    (a, ta), (b, tb) = _both([1.0, NAN, 3.0, -0.0]), _both([[2.0], [0.0]])
    _check(getattr(ds, name)(a, b), getattr(torch, name)(ta, tb))
    _check(getattr(a, name)(2.0), getattr(ta, name)(2.0))


INT_EDGES = [-(2**63), 2**63 - 1, 0, -4, 6, 1, -1, 2**62, 3]


@pytest.mark.parametrize("name", ["gcd", "lcm"])
def test_gcd_lcm_values_and_edges(name):
    a = np.array(INT_EDGES)
    b = np.array(INT_EDGES[::-1])
    (da, ta), (db, tb) = _both(a), _both(b)
    _check(getattr(ds, name)(da, db), getattr(torch, name)(ta, tb))
    # all pairs, broadcast (9, 1) x (9,) (torch's lcm(2^63 - 1, -2^63) divides -2^63 by -1: a
    # SIGFPE there, so lcm gets the pairs without the largest value)
    keep = slice(None) if name == "gcd" else slice(2, None)
    (da2, ta2), (db2, tb2) = _both(a[keep].reshape(-1, 1)), _both(b[:-2] if name == "lcm" else b)
    _check(getattr(da2, name)(db2), getattr(ta2, name)(tb2))
    for dt in ("int32", "int16", "int8", "uint8"):
        x = RNG.integers(0 if dt == "uint8" else -50, 50, (4, 5)).astype(dt)
        y = RNG.integers(0 if dt == "uint8" else -50, 50, (5,)).astype(dt)
        (dx, tx), (dy, ty) = _both(x), _both(y)
        _check(getattr(ds, name)(dx, dy), getattr(torch, name)(tx, ty))
    (dx, tx), (dy, ty) = _both(np.int32([4])), _both(np.int64([6]))
    _check(getattr(ds, name)(dx, dy), getattr(torch, name)(tx, ty))  # promoted to int64
    (e, te) = _both(np.zeros(0, np.int64))
    _check(getattr(ds, name)(e, e), getattr(torch, name)(te, te))
    (z, tz) = _both(np.int64(12))
    _check(getattr(ds, name)(z, z), getattr(torch, name)(tz, tz))


@pytest.mark.parametrize("name", ["gcd", "lcm", "nextafter"])
@pytest.mark.parametrize("dtype", ["float32", "bool", "int64"])
def test_integer_or_float_only_refusals(name, dtype):
    (a, ta) = _both([1, 0], dtype)
    if name == "nextafter" and dtype == "float32":
        _check(ds.nextafter(a, a), torch.nextafter(ta, ta))
        return
    if name != "nextafter" and dtype == "int64":
        return
    _raises_like(lambda: getattr(ds, name)(a, a), lambda: getattr(torch, name)(ta, ta))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nextafter_values_and_gradient(dtype):
    x = [0.0, -0.0, 1.0, -1.0, INF, -INF, NAN, 1e-45, 3.4e38]
    y = [1.0, -1.0, 0.0, INF, 0.0, -INF, 0.0, NAN, INF]
    (a, ta), (b, tb) = _both(x, dtype, rg=True), _both(y, dtype, rg=True)
    out, tout = ds.nextafter(a, b), torch.nextafter(ta, tb)
    _check(out, tout)
    out.sum().backward()
    tout.sum().backward()
    _check(a.grad, ta.grad)
    _check(b.grad, tb.grad)
    if dtype == "float64":
        a0 = ds.tensor(np.ones((2, 3), dtype), requires_grad=True)
        assert gradcheck(lambda t: ds.nextafter(t, ds.tensor(5.0, dtype=dtype)), (a0,))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_frexp(dtype):
    x = [0.0, -0.0, 1.0, -3.5, 1e-40, 6e5, INF, -INF, NAN]
    (a, ta) = _both(x, dtype, rg=True)
    m, e = ds.frexp(a)
    tm, te = torch.frexp(ta)
    _check(m, tm)
    _check(e, te)
    assert type(ds.frexp(a)).__name__ == "frexp" and a.frexp().mantissa is not None
    g = RNG.standard_normal(len(x)).astype(dtype)
    m.backward(ds.tensor(g))
    tm.backward(torch.tensor(g))
    _check(a.grad, ta.grad, rtol=1e-6)
    _raises_like(lambda: ds.frexp(ds.tensor([1, 2])), lambda: torch.frexp(torch.tensor([1, 2])))
    p = ds.tensor(RNG.uniform(-9, 9, (3, 2)), requires_grad=True)
    assert gradcheck(lambda t: ds.frexp(t).mantissa, (p,))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "bool"])
def test_angle_and_isreal(dtype):
    vals = [-1, 0, 2, 1] if dtype != "bool" else [True, False]
    if dtype.startswith("float"):
        vals = [-1.0, 0.0, -0.0, 2.0, NAN, -INF, INF]
    (a, ta) = _both(vals, dtype)
    _check(ds.angle(a), torch.angle(ta))
    _check(a.angle(), ta.angle())
    _check(ds.isreal(a), torch.isreal(ta))
    _check(a.isreal(), ta.isreal())


def test_angle_gradient_is_zero():
    (a, ta) = _both([-1.0, 2.0, 0.0], rg=True)
    ds.angle(a).sum().backward()
    torch.angle(ta).sum().backward()
    _check(a.grad, ta.grad)


# ---------------------------------------------------------------------------------------------
# nanmedian


NANMED = [
    [[1.0, NAN, 3.0, 2.0], [NAN, NAN, NAN, NAN], [5.0, 4.0, NAN, 4.0]],
    [[2.0, 2.0, 1.0, 1.0], [0.0, -0.0, 7.0, NAN], [INF, -INF, NAN, 1.0]],
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_nanmedian(dtype, dim, keepdim):
    # Not here: a row of nans along dim, whose index PyTorch takes from its selection algorithm
    # (0, 0, 0, 2, 2, 3, 5 for lengths 1 to 7) and descent at the first nan (test below).
    for rows in NANMED:
        if dim is not None and dim % 2 == 1 and np.isnan(rows).all(axis=1).any():
            rows = [r for r in rows if not np.isnan(r).all()]
        (a, ta) = _both(rows, dtype, rg=True)
        if dim is None:
            got, want = ds.nanmedian(a), torch.nanmedian(ta)
            _check(got, want)
        else:
            got, want = ds.nanmedian(a, dim, keepdim), torch.nanmedian(ta, dim, keepdim)
            _check(tuple(got), tuple(want))
            assert type(got).__name__ == "nanmedian"
            _check(a.nanmedian(dim, keepdim=keepdim).values, ta.nanmedian(dim, keepdim).values)
            got, want = got.values, want.values
        got.sum().backward()
        want.sum().backward()
        _check(a.grad, ta.grad)


def test_nanmedian_edges():
    for vals in ([], [NAN], [NAN, NAN], 3.0, [[]]):
        (a, ta) = _both(vals, "float32")
        _check(ds.nanmedian(a), torch.nanmedian(ta))
    (a, ta) = _both(5.0)
    _check(tuple(ds.nanmedian(a, 0)), tuple(torch.nanmedian(ta, 0)))
    (a, ta) = _both([[NAN, NAN, NAN], [1.0, NAN, 2.0]], "float32")
    _check(ds.nanmedian(a, 1).values, torch.nanmedian(ta, 1).values)  # nan for the nan row
    _check(ds.nanmedian(a, 1).indices[1], torch.nanmedian(ta, 1).indices[1])
    (a, ta) = _both([3, 1, 2, 7], "int64")
    _check(ds.nanmedian(a), torch.nanmedian(ta))
    _check(tuple(ds.nanmedian(a, 0)), tuple(torch.nanmedian(ta, 0)))
    (a, ta) = _both(np.zeros((0, 3), "float32"))
    _raises_like(lambda: ds.nanmedian(a, 0), lambda: torch.nanmedian(ta, 0))
    _raises_like(lambda: ds.nanmedian(a, 2), lambda: torch.nanmedian(ta, 2))
    p = ds.tensor(RNG.permutation(12).reshape(3, 4).astype("float64"), requires_grad=True)
    assert gradcheck(lambda t: ds.nanmedian(t, 1).values, (p,))
    assert gradcheck(lambda t: ds.nanmedian(t), (p,))


# ---------------------------------------------------------------------------------------------
# Products, norms


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vdot_addmv_addr_values_and_gradients(dtype):
    tol = 1e-5 if dtype == "float32" else 1e-12
    v1, v2 = RNG.standard_normal(4).astype(dtype), RNG.standard_normal(4).astype(dtype)
    m, inp = RNG.standard_normal((3, 4)).astype(dtype), RNG.standard_normal(3).astype(dtype)
    mat = RNG.standard_normal((4, 4)).astype(dtype)
    d = [ds.tensor(x, requires_grad=True) for x in (v1, v2, m, inp, mat)]
    t = [torch.tensor(x, requires_grad=True) for x in (v1, v2, m, inp, mat)]
    for f in (
        lambda L, A: L.vdot(A[0], A[1]),
        lambda L, A: A[0].vdot(A[1]),
        lambda L, A: L.addmv(A[3], A[2], A[0]),
        lambda L, A: L.addmv(A[3], A[2], A[0], beta=0.5, alpha=-2),
        lambda L, A: A[3].addmv(A[2], A[0], alpha=3),
        lambda L, A: L.addr(A[4], A[0], A[1], beta=2, alpha=0.5),
        lambda L, A: A[4].addr(A[0], A[1]),
        lambda L, A: L.addr(L.tensor(1.0, dtype=A[0].dtype), A[0], A[1]),  # broadcast input
    ):
        got, want = f(ds, d), f(torch, t)
        _check(got, want, rtol=tol, atol=tol)
        got.sum().backward()
        want.sum().backward()
        for x, tx in zip(d, t):
            if tx.grad is not None:
                _check(x.grad, tx.grad, rtol=tol, atol=tol)
            x.grad, tx.grad = None, None
    if dtype == "float64":
        assert gradcheck(lambda a, b: ds.vdot(a, b), (d[0], d[1]))
        assert gradcheck(lambda i, a, b: ds.addmv(i, a, b, beta=2, alpha=3), (d[3], d[2], d[0]))
        assert gradcheck(lambda i, a, b: ds.addr(i, a, b, beta=2, alpha=3), (d[4], d[0], d[1]))


def test_beta_zero_ignores_nan_input_and_errors():
    (i, ti), (m, tm) = _both([NAN, NAN], "float32"), _both(np.ones((2, 3), "float32"))
    (v, tv) = _both([1.0, 2, 3], "float32")
    _check(ds.addmv(i, m, v, beta=0), torch.addmv(ti, tm, tv, beta=0), rtol=1e-6)
    (i2, ti2) = _both(np.full((2, 3), NAN, "float32"))
    (w, tw) = _both([1.0, 2.0], "float32")
    _check(ds.addr(i2, w, v, beta=0), torch.addr(ti2, tw, tv, beta=0), rtol=1e-6)
    # beta=0: input's nans are not read, and its gradient is 0 (not None), as torch's
    (g, tg) = _both([NAN, 1.0], "float32", rg=True)
    ds.addmv(g, m, v, beta=0).sum().backward()
    torch.addmv(tg, tm, tv, beta=0).sum().backward()
    _check(g.grad, tg.grad)
    _raises_like(lambda: ds.vdot(v, v.double()), lambda: torch.vdot(tv, tv.double()))
    _raises_like(lambda: ds.vdot(m, m), lambda: torch.vdot(tm, tm))
    _raises_like(lambda: ds.vdot(v, w), lambda: torch.vdot(tv, tw))
    _raises_like(lambda: ds.addmv(i, m, m), lambda: torch.addmv(ti, tm, tm))
    _raises_like(lambda: ds.addr(i2, m, v), lambda: torch.addr(ti2, tm, tv))
    (e, te) = _both(np.zeros(0, "float32"))
    _check(ds.vdot(e, e), torch.vdot(te, te))
    (a, ta), (b, tb) = _both([1, 2, 3]), _both([4, 5, 6])
    _check(ds.vdot(a, b), torch.vdot(ta, tb))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_chain_matmul_norms_and_matrix_rank(dtype):
    tol = 1e-5 if dtype == "float32" else 1e-12
    mats = [RNG.standard_normal(s).astype(dtype) for s in ((2, 3), (3, 4), (4, 2))]
    d = [ds.tensor(x, requires_grad=True) for x in mats]
    t = [torch.tensor(x, requires_grad=True) for x in mats]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = torch.chain_matmul(*t)
    _check(ds.chain_matmul(*d), want, rtol=tol, atol=tol)
    _check(ds.chain_matmul(d[0]), t[0], rtol=0)
    x = RNG.standard_normal((2, 3, 4)).astype(dtype)
    (a, ta) = _both(x, rg=True)
    for dim, keep in (((1, 2), False), ((0,), True), (-1, False)):
        _check(ds.frobenius_norm(a, dim, keep), torch.frobenius_norm(ta, dim, keep), tol, tol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _check(ds.nuclear_norm(a), torch.nuclear_norm(ta), tol, tol)
        _check(ds.nuclear_norm(a, True), torch.nuclear_norm(ta, True), tol, tol)
        _check(ds.nuclear_norm(a, (0, 2)), torch.nuclear_norm(ta, (0, 2)), tol, tol)
        _check(ds.nuclear_norm(a, (0, 2), True), torch.nuclear_norm(ta, (0, 2), True), tol, tol)
        ds.nuclear_norm(a).sum().backward()
        torch.nuclear_norm(ta).sum().backward()
    _check(a.grad, ta.grad, 10 * tol, 10 * tol)
    _raises_like(lambda: ds.matrix_rank(a), lambda: torch.matrix_rank(ta))
    _raises_like(lambda: ds.chain_matmul(a), lambda: torch.chain_matmul(ta))
    if dtype == "float64":
        assert gradcheck(lambda *m: ds.chain_matmul(*m), tuple(d))
        assert gradcheck(lambda m: ds.frobenius_norm(m, (0, 2)), (a,))
        assert gradcheck(lambda m: ds.nuclear_norm(m), (a,))


# ---------------------------------------------------------------------------------------------
# unique_consecutive, unravel_index


@pytest.mark.parametrize(
    "vals, dim",
    [
        ([1, 1, 2, 2, 3, 1, 1], None),
        ([[1, 1], [1, 1], [2, 3], [2, 3]], None),
        ([[1, 1], [1, 1], [2, 3], [2, 3]], 0),
        ([[1, 1], [1, 1], [2, 3], [2, 3]], 1),
        ([[1, 1], [1, 1], [2, 3], [2, 3]], -1),
        ([1.0, NAN, NAN, 2.0, 2.0], None),
        ([], None),
        (5, None),
        (np.zeros((0, 3)), 0),
        (np.zeros((0, 3)), 1),
    ],
)
def test_unique_consecutive(vals, dim):
    (a, ta) = _both(vals)
    if dim is not None and 0 in np.shape(vals) and np.shape(vals)[dim] != 0:
        _raises_like(
            lambda: ds.unique_consecutive(a, dim=dim), lambda: torch.unique_consecutive(ta, dim=dim)
        )
        return
    for inv in (False, True):
        for cnt in (False, True):
            got = ds.unique_consecutive(a, return_inverse=inv, return_counts=cnt, dim=dim)
            want = torch.unique_consecutive(ta, return_inverse=inv, return_counts=cnt, dim=dim)
            _check(got, want)
            _check(a.unique_consecutive(inv, cnt, dim), ta.unique_consecutive(inv, cnt, dim))


def test_unravel_index():
    (i, ti) = _both([0, 5, 11, -1, -12])
    _check(ds.unravel_index(i, (3, 4)), torch.unravel_index(ti, (3, 4)))
    _check(
        ds.unravel_index(ds.tensor(7), (2, 2, 2)), torch.unravel_index(torch.tensor(7), (2, 2, 2))
    )
    _check(ds.unravel_index(i[:1], 12), torch.unravel_index(ti[:1], 12))
    _check(
        ds.unravel_index(ds.tensor([[1, 2]]), (3,)),
        torch.unravel_index(torch.tensor([[1, 2]]), (3,)),
    )
    # Out of bounds: PyTorch 2.13 checks nothing (12 in (3, 4) gives (0, 0)); descent raises.
    with pytest.raises(RuntimeError, match="must be in range"):
        ds.unravel_index(i, (2, 2))
    _raises_like(
        lambda: ds.unravel_index(ds.tensor([1.0]), (2,)),
        lambda: torch.unravel_index(torch.tensor([1.0]), (2,)),
    )


# ---------------------------------------------------------------------------------------------
# Creation


def test_logspace_range_scalar_tensor():
    cases = [((0, 2, 3), {}), ((-1, 1, 5), {"base": 2.0}), ((0, 3, 4), {"dtype": "float64"}),
             ((0, 1, 0), {}), ((1, 1, 1), {}), ((0, 3, 4), {"base": 2, "dtype": "int64"}),
             ((2.5, -1.5, 7), {"base": 3.0})]  # fmt: skip
    for args, kw in cases:
        tkw = {k: getattr(torch, v) if k == "dtype" else v for k, v in kw.items()}
        _check(ds.logspace(*args, **kw), torch.logspace(*args, **tkw), rtol=2e-6)
    assert ds.logspace(0, 1, 3, requires_grad=True).requires_grad
    _raises_like(lambda: ds.logspace(0, 1, -1), lambda: torch.logspace(0, 1, -1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for args, kw in [((0, 4), {}), ((0, 1, 0.3), {}), ((3, 1, -1), {}),
                         ((0, 4), {"dtype": "int64"}), ((0.5, 3), {"dtype": "float64"}),
                         ((2, 2), {})]:  # fmt: skip
            tkw = {k: getattr(torch, v) for k, v in kw.items()}
            _check(ds.range(*args, **kw), torch.range(*args, **tkw), rtol=1e-6)
        _raises_like(lambda: ds.range(0, -1), lambda: torch.range(0, -1))
        _raises_like(lambda: ds.range(0, 1, 0), lambda: torch.range(0, 1, 0))
    with pytest.warns(UserWarning, match="deprecated"):
        ds.range(0, 1)
    for s, kw in [(3, {}), (True, {}), (2.5, {"dtype": "float64"}), (7, {"dtype": "int64"})]:
        tkw = {k: getattr(torch, v) for k, v in kw.items()}
        _check(ds.scalar_tensor(s, **kw), torch.scalar_tensor(s, **tkw))
    assert ds.scalar_tensor(1.0, requires_grad=True).requires_grad


@pytest.mark.parametrize("name", ["hann_window", "hamming_window", "blackman_window",
                                  "bartlett_window", "kaiser_window"])  # fmt: skip
def test_windows(name):
    fd, ft = getattr(ds, name), getattr(torch, name)
    for n in (0, 1, 2, 5, 16):
        for periodic in (True, False):
            _check(fd(n, periodic), ft(n, periodic), rtol=1e-5, atol=1e-6)
            _check(fd(n, periodic, dtype=ds.float64), ft(n, periodic, dtype=torch.float64),
                   rtol=1e-12, atol=1e-12)  # fmt: skip
    _check(fd(7), ft(7), rtol=1e-5, atol=1e-6)
    if name == "hamming_window":
        _check(fd(6, True, 0.5, 0.4), ft(6, True, 0.5, 0.4), rtol=1e-5, atol=1e-6)
    if name == "kaiser_window":
        _check(fd(6, False, 5.0), ft(6, False, 5.0), rtol=1e-5, atol=1e-6)
        _check(fd(6, True, 3.0), ft(6, True, 3.0), rtol=1e-5, atol=1e-6)
    _raises_like(lambda: fd(3, dtype=ds.int64), lambda: ft(3, dtype=torch.int64))
    _raises_like(lambda: fd(-1), lambda: ft(-1))
    assert fd(4, requires_grad=True).requires_grad


# ---------------------------------------------------------------------------------------------
# Integration and differentiation of samples


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_trapezoid_family(dtype):
    tol = 1e-6 if dtype != "float64" else 1e-12
    y = RNG.integers(-5, 5, (3, 4)).astype(dtype)
    x = np.cumsum(RNG.uniform(0.1, 1, 4)).astype("float32" if dtype == "int64" else dtype)
    (a, ta), (xs, txs) = _both(y), _both(x)
    for name in ("trapezoid", "trapz", "cumulative_trapezoid"):
        fd, ft = getattr(ds, name), getattr(torch, name)
        _check(fd(a), ft(ta), tol, tol)
        _check(fd(a, dim=0), ft(ta, dim=0), tol, tol)
        _check(fd(a, dx=0.5), ft(ta, dx=0.5), tol, tol)
        _check(fd(a, xs), ft(ta, txs), tol, tol)
        _check(fd(a, xs[:3], dim=0), ft(ta, txs[:3], dim=0), tol, tol)
        (x2, tx2) = _both(np.cumsum(np.ones((3, 4)), axis=1).astype(x.dtype))
        _check(fd(a, x2), ft(ta, tx2), tol, tol)
        for shape in ((0,), (1,), (3, 0), (2, 1)):
            (e, te) = _both(np.zeros(shape, "float32"))
            _check(fd(e), ft(te), tol)
        _raises_like(lambda fd=fd: fd(a, dim=2), lambda ft=ft: ft(ta, dim=2))


def test_trapezoid_gradients():
    y = ds.tensor(RNG.standard_normal((3, 4)), requires_grad=True)
    x = ds.tensor(np.cumsum(RNG.uniform(0.1, 1, 4)), requires_grad=True)
    assert gradcheck(lambda a, b: ds.trapezoid(a, b), (y, x))
    assert gradcheck(lambda a, b: ds.cumulative_trapezoid(a, b), (y, x))
    assert gradcheck(lambda a: ds.trapz(a, dx=0.3, dim=0), (y,))
    (a, ta) = _both(RNG.standard_normal((3, 4)).astype("float32"), rg=True)
    ds.cumulative_trapezoid(a, dx=2.0).sum().backward()
    torch.cumulative_trapezoid(ta, dx=2.0).sum().backward()
    _check(a.grad, ta.grad, 1e-6, 1e-6)


@pytest.mark.parametrize("edge_order", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradient(edge_order, dtype):
    tol = 1e-5 if dtype == "float32" else 1e-11
    f = RNG.standard_normal((4, 5)).astype(dtype)
    c0 = np.cumsum(RNG.uniform(0.2, 1.0, 4)).astype(dtype)
    c1 = np.cumsum(RNG.uniform(0.2, 1.0, 5)).astype(dtype)
    (a, ta), (d0, t0), (d1, t1) = _both(f, rg=True), _both(c0), _both(c1)
    for kw, tkw in (
        ({}, {}),
        ({"spacing": 2.0}, {"spacing": 2.0}),
        ({"spacing": [2.0, 0.5]}, {"spacing": [2.0, 0.5]}),
        ({"dim": 1}, {"dim": 1}),
        ({"dim": [0], "spacing": [0.5]}, {"dim": [0], "spacing": [0.5]}),
        ({"spacing": [d0, d1]}, {"spacing": [t0, t1]}),
        ({"spacing": [d1], "dim": -1}, {"spacing": [t1], "dim": -1}),
    ):
        got = ds.gradient(a, edge_order=edge_order, **kw)
        want = torch.gradient(ta, edge_order=edge_order, **tkw)
        assert isinstance(got, tuple)
        _check(got, want, tol, tol)
        sum(g.sum() * (i + 1) for i, g in enumerate(got)).backward()
        sum(w.sum() * (i + 1) for i, w in enumerate(want)).backward()
        _check(a.grad, ta.grad, 10 * tol, 10 * tol)
        a.grad, ta.grad = None, None
    (i, ti) = _both([1, 2, 4, 8])
    _check(ds.gradient(i, edge_order=edge_order), torch.gradient(ti, edge_order=edge_order))
    (s, ts) = _both(np.ones((2, 5)))
    if edge_order == 2:
        _raises_like(lambda: ds.gradient(s, edge_order=2), lambda: torch.gradient(ts, edge_order=2))
    _raises_like(
        lambda: ds.gradient(a, spacing=[1.0, 2.0, 3.0]),
        lambda: torch.gradient(ta, spacing=[1.0, 2.0, 3.0]),
    )
    _raises_like(lambda: ds.gradient(a, edge_order=3), lambda: torch.gradient(ta, edge_order=3))
    if dtype == "float64":
        assert gradcheck(lambda t: ds.gradient(t, edge_order=edge_order), (a,))
        assert gradcheck(lambda t: ds.gradient(t, spacing=[d0, d1], edge_order=edge_order), (a,))


# ---------------------------------------------------------------------------------------------
# Methods of existing functions


def test_method_only_names():
    (a, ta) = _both(RNG.standard_normal((2, 3)).astype("float32"), rg=True)
    (b, tb) = _both(RNG.standard_normal((2, 3)).astype("float32"))
    (c, tc) = _both(RNG.uniform(1, 2, (3,)).astype("float32"))
    (v, tv) = _both(RNG.standard_normal(3).astype("float32"))
    (b1, tb1) = _both(RNG.standard_normal((4, 2, 5)).astype("float32"))
    (b2, tb2) = _both(RNG.standard_normal((4, 5, 3)).astype("float32"))
    cases = [
        lambda x, y, z, w, p, q: x.addcdiv(y, z, value=0.5),
        lambda x, y, z, w, p, q: x.addcmul(y, z),
        lambda x, y, z, w, p, q: x.baddbmm(p, q, beta=0.5, alpha=2.0),
        lambda x, y, z, w, p, q: x.diff(),
        lambda x, y, z, w, p, q: x.diff(n=1, dim=0, prepend=y),
        lambda x, y, z, w, p, q: x.dist(y),
        lambda x, y, z, w, p, q: x.dist(y, 1),
        lambda x, y, z, w, p, q: w.ger(z),
        lambda x, y, z, w, p, q: x.inner(y),
        lambda x, y, z, w, p, q: x.kron(y),
        lambda x, y, z, w, p, q: x.mv(w),
        lambda x, y, z, w, p, q: w.outer(z),
        lambda x, y, z, w, p, q: x.deg2rad(),
        lambda x, y, z, w, p, q: x.rad2deg(),
        lambda x, y, z, w, p, q: x.true_divide(z),
        lambda x, y, z, w, p, q: x.absolute(),
    ]
    for f in cases:
        got, want = f(a, b, c, v, b1, b2), f(ta, tb, tc, tv, tb1, tb2)
        _check(got, want, 1e-5, 1e-5)
        if want.grad_fn is None:  # a function of the constants only
            assert not got.requires_grad
            continue
        got.sum().backward()
        want.sum().backward()
        _check(a.grad, ta.grad, 1e-5, 1e-5)
        a.grad, ta.grad = None, None
    assert a.allclose(a + 1e-9) and not a.allclose(b)
    assert ta.allclose(ta + 1e-9) and not ta.allclose(tb)
    (n, tn) = _both([1.0, NAN])
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.1, "atol": 0.0, "equal_nan": True}):
        assert n.allclose(n * 1.01, **kw) == tn.allclose(tn * 1.01, **kw)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_histogramdd(dtype):
    pts = RNG.standard_normal((50, 3)).astype(dtype)
    pts[3] = [NAN, 0.0, 0.0]
    (a, ta) = _both(pts)
    (w, tw) = _both(RNG.uniform(0, 1, 50).astype(dtype))
    e = [np.array(v, dtype) for v in ([-1.0, 0.0, 1.0], [-2.0, 2.0], [-1.0, -0.5, 0.5, 3.0])]
    for kw, tkw in (
        ({"bins": 4}, {"bins": 4}),
        ({"bins": [2, 3, 4]}, {"bins": [2, 3, 4]}),
        ({"bins": [2, 3, 4], "density": True}, {"bins": [2, 3, 4], "density": True}),
        ({"bins": 3, "weight": w}, {"bins": 3, "weight": tw}),
        ({"bins": 2, "range": [-1, 1, 0, 1, -2, 2]}, {"bins": 2, "range": [-1, 1, 0, 1, -2, 2]}),
        ({"bins": [ds.tensor(x) for x in e]}, {"bins": [torch.tensor(x) for x in e]}),
        (
            {"bins": [ds.tensor(x) for x in e], "weight": w, "density": True},
            {"bins": [torch.tensor(x) for x in e], "weight": tw, "density": True},
        ),
    ):
        # the nan point (row 3) only where the edges are given: a nan min/max raises (both)
        bins = kw["bins"]
        edges_given = "range" in kw or (isinstance(bins, list) and isinstance(bins[0], ds.Tensor))
        rows = slice(None) if edges_given else slice(4, None)
        if "weight" in kw:
            kw, tkw = {**kw, "weight": w[rows]}, {**tkw, "weight": tw[rows]}
        got, want = ds.histogramdd(a[rows], **kw), torch.histogramdd(ta[rows], **tkw)
        assert type(got).__name__ == "histogramdd"
        _check(got.hist, want.hist, rtol=1e-5, atol=1e-6)
        _check(tuple(got.bin_edges), tuple(want.bin_edges), rtol=1e-6, atol=1e-7)
    (b, tb) = _both(np.ones((2, 4, 2), dtype))  # (..., D) points, equal values: widened range
    _check(ds.histogramdd(b, bins=2).hist, torch.histogramdd(tb, bins=2).hist)
    (i, ti) = _both([[1, 2]])
    _raises_like(lambda: ds.histogramdd(i, bins=2), lambda: torch.histogramdd(ti, bins=2))
    _raises_like(lambda: ds.histogramdd(a, bins=[2, 2]), lambda: torch.histogramdd(ta, bins=[2, 2]))
    _raises_like(lambda: ds.histogramdd(a, bins=0), lambda: torch.histogramdd(ta, bins=0))
    _raises_like(lambda: ds.histogramdd(a, bins=2), lambda: torch.histogramdd(ta, bins=2))  # nan


@pytest.mark.parametrize("shape", [(), (0,), (0, 3)])
def test_zero_d_and_empty(shape):
    x = np.full(shape, 0.5, "float32")
    (a, ta) = _both(x)
    (i, ti) = _both(np.full(shape, 6, "int64"))
    for f in (
        lambda L, a, i: L.angle(a),
        lambda L, a, i: L.isreal(a),
        lambda L, a, i: L.nextafter(a, a + 1),
        lambda L, a, i: L.frexp(a),
        lambda L, a, i: L.gcd(i, i - 2),
        lambda L, a, i: L.lcm(i, i - 2),
        lambda L, a, i: L.not_equal(a, 0.5),
        lambda L, a, i: a.clone().acos_(),
        lambda L, a, i: a.clone().pow_(2),
        lambda L, a, i: a.clone().eq_(0.5),
        lambda L, a, i: a.clone().lerp_(a + 1, 0.5),
        lambda L, a, i: a.clone().nan_to_num_(),
        lambda L, a, i: i.clone().lcm_(i - 2),
        lambda L, a, i: i.clone().bitwise_left_shift_(1),
        lambda L, a, i: L.exp_(a.clone()),
        lambda L, a, i: L.clamp_(a.clone(), 0.0, 0.2),
    ):
        _check(f(ds, a, i), f(torch, ta, ti), rtol=1e-6)
    if shape == (0, 3):
        _check(ds.nanmedian(a, 1).values, torch.nanmedian(ta, 1).values)
        _check(ds.trapezoid(a, dim=0), torch.trapezoid(ta, dim=0))
