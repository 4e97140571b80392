"""The torch names added by docs/torch_gaps.md (argwhere, bincount, combinations, pdist,
diag_embed, quantile/nanquantile, dstack/atleast_3d, tensor_split/hsplit/vsplit/dsplit, cov,
corrcoef, histogram, asarray, poisson, can_cast, set_printoptions) against torch 2.13: values,
dtypes, gradients, errors; float64 finite differences for the differentiable ones."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import descent as ds
from descent.autograd_gradcheck import gradcheck

RNG = np.random.default_rng(0)
FLOATS = ["float32", "float64"]


def _both(arr, dtype=None, rg=False):
    """The same values as a descent and a torch tensor."""
    a = np.asarray(arr) if dtype is None else np.asarray(arr, dtype=dtype)
    d = ds.tensor(a.copy(), requires_grad=rg)
    t = torch.tensor(a.copy(), requires_grad=rg)
    return d, t


def _check(got, want, rtol=None, atol=0.0):
    """Same shape, dtype and values (exact unless rtol is given; NaN equal to NaN)."""
    assert tuple(got.shape) == tuple(want.shape)
    assert str(got.dtype) == str(want.dtype).replace("torch.", "descent.")
    g, w = got.detach().numpy(), want.detach().numpy()
    if rtol is None:
        np.testing.assert_array_equal(g, w)
    else:
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True)


def _grad_pair(fd, ft, arrays, dtype="float64", rtol=1e-10, atol=1e-12):
    """Gradients of sum(f(x) * u) for descent and torch, compared."""
    ins = [_both(a, dtype, rg=True) for a in arrays]
    out_d = fd(*[p[0] for p in ins])
    out_t = ft(*[p[1] for p in ins])
    u = RNG.standard_normal(tuple(out_t.shape))
    (out_d * ds.tensor(u.astype(dtype))).sum().backward()
    (out_t * torch.tensor(u.astype(dtype))).sum().backward()
    for d, t in ins:
        gt = np.zeros(t.shape, dtype) if t.grad is None else t.grad.numpy()
        gd = np.zeros(t.shape, dtype) if d.grad is None else d.grad.numpy()
        np.testing.assert_allclose(gd, gt, rtol=rtol, atol=atol)


def _raises_like(fd, ft):
    """descent raises the exception type torch raises, with torch's message start in its
    message (descent's may begin with the op's name: "diag_embed: dimension out of range")."""
    with pytest.raises(Exception) as want:
        ft()
    with pytest.raises(type(want.value)) as got:
        fd()
    assert str(want.value)[:30].lower() in str(got.value).lower(), (str(got.value),
                                                                    str(want.value))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# argwhere, bincount, histogram


@pytest.mark.parametrize(
    "arr",
    [np.array(1.0), np.array(0.0), np.zeros((0, 3)), np.array([[0, 1, 2], [3, 0, 0]]),
     np.array([True, False, True]), RNG.integers(0, 2, (2, 3, 4)).astype(np.float32)],
)  # fmt: skip
def test_argwhere(arr):
    d, t = _both(arr)
    _check(ds.argwhere(d), torch.argwhere(t))
    _check(d.argwhere(), t.argwhere())


def test_bincount():
    x = np.array([0, 1, 1, 3, 7])
    d, t = _both(x)
    _check(ds.bincount(d), torch.bincount(t))
    _check(d.bincount(minlength=10), t.bincount(minlength=10))
    for wd in ["float32", "float64", "int64"]:
        w = np.array([0.5, 1.25, 2, 3, 4]).astype(wd)
        _check(ds.bincount(d, ds.tensor(w)), torch.bincount(t, torch.tensor(w)))
    e = np.array([], np.int64)
    _check(ds.bincount(ds.tensor(e), minlength=3), torch.bincount(torch.tensor(e), minlength=3))
    _check(ds.bincount(ds.tensor(e)), torch.bincount(torch.tensor(e)))
    u8 = x.astype(np.uint8)
    _check(ds.bincount(ds.tensor(u8)), torch.bincount(torch.tensor(u8)))
    for bad in [np.array([-1, 2]), np.array([[1]]), np.array([1.0]), np.array([True])]:
        _raises_like(lambda b=bad: ds.bincount(ds.tensor(b)),
                     lambda b=bad: torch.bincount(torch.tensor(b)))  # fmt: skip


@pytest.mark.parametrize("dtype", FLOATS)
def test_histogram(dtype):
    x = RNG.standard_normal(50).astype(dtype)
    d, t = _both(x)
    for bins, kw in [(5, {}), (7, {"range": (-1.0, 2.0)}), (4, {"density": True}),
                     (3, {"weight": True}), (6, {"weight": True, "density": True})]:  # fmt: skip
        kd, kt = dict(kw), dict(kw)
        if kw.get("weight"):
            w = RNG.uniform(0, 2, 50).astype(dtype)
            kd["weight"], kt["weight"] = ds.tensor(w), torch.tensor(w)
        hd, ed = ds.histogram(d, bins, **kd)
        ht, et = torch.histogram(t, bins, **kt)
        _check(ed, et)
        _check(hd, ht, rtol=1e-6 if "weight" in kw or "density" in kw else None)
    edges = np.array([-3, -0.5, 0, 0.25, 3]).astype(dtype)
    hd = d.histogram(ds.tensor(edges), density=True)
    ht = t.histogram(torch.tensor(edges), density=True)
    _check(hd.hist, ht.hist, rtol=1e-6)
    _check(hd.bin_edges, ht.bin_edges)
    for arr in [np.array([1.0, 1.0]), np.array([]), np.array([2.0, 4.0, 4.0])]:
        dd, tt = _both(arr, dtype)
        for a, b in zip(ds.histogram(dd, 4), torch.histogram(tt, 4)):
            _check(a, b)
    _raises_like(lambda: ds.histogram(ds.tensor([1, 2]), 2),
                 lambda: torch.histogram(torch.tensor([1, 2]), 2))  # fmt: skip
    _raises_like(lambda: ds.histogram(ds.tensor([1.0, np.nan]), 2),
                 lambda: torch.histogram(torch.tensor([1.0, np.nan]), 2))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# quantile / nanquantile

MODES = ["linear", "lower", "higher", "midpoint", "nearest"]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("mode", MODES)
def test_quantile_values(dtype, mode):
    x = RNG.standard_normal((3, 5, 4)).astype(dtype)
    d, t = _both(x)
    q1 = np.array([0.0, 0.1, 0.25, 0.5, 0.77, 1.0]).astype(dtype)
    tol = ()  # bit-equal, also for linear (PyTorch's lerp is a fused multiply-add)
    for q in [0.3, 0.5, 1.0, ds.tensor(np.array(0.62, dtype)), ds.tensor(q1)]:
        qt = torch.tensor(q.numpy()) if isinstance(q, ds.Tensor) else q
        for dim, keep in [(None, False), (None, True), (0, False), (1, True), (-1, False)]:
            for fd, ft in [(ds.quantile, torch.quantile), (ds.nanquantile, torch.nanquantile)]:
                _check(fd(d, q, dim, keep, interpolation=mode),
                       ft(t, qt, dim, keep, interpolation=mode), *tol)  # fmt: skip
    _check(d.quantile(0.4, 1, interpolation=mode), t.quantile(0.4, 1, interpolation=mode), *tol)


@pytest.mark.parametrize("mode", MODES)
def test_quantile_nan_and_small(mode):
    x = np.array([[1.0, np.nan, 3.0, 0.5], [np.nan] * 4, [4.0, 2.0, 2.5, 1.0]], np.float32)
    d, t = _both(x)
    q = np.array([0.25, 0.5, 0.9], np.float32)
    for fd, ft in [(ds.quantile, torch.quantile), (ds.nanquantile, torch.nanquantile)]:
        _check(fd(d, ds.tensor(q), 1, interpolation=mode), ft(t, torch.tensor(q), 1,
                                                              interpolation=mode))  # fmt: skip
        _check(fd(d, 0.5, interpolation=mode), ft(t, 0.5, interpolation=mode))
    for arr in [np.array(3.0, np.float32), np.array([2.0], np.float32)]:
        dd, tt = _both(arr)
        _check(ds.quantile(dd, 0.3, 0, True), torch.quantile(tt, 0.3, 0, True))
        _check(ds.quantile(dd, 0.3), torch.quantile(tt, 0.3))


@pytest.mark.parametrize("mode", MODES)
def test_quantile_gradient(mode):
    x = RNG.permutation(24).reshape(4, 6) / 7.0  # distinct values: no ties to split
    q = np.array([0.2, 0.5, 0.95])
    qd, qt = ds.tensor(q), torch.tensor(q)
    _grad_pair(lambda a: ds.quantile(a, qd, 1, interpolation=mode),
               lambda a: torch.quantile(a, qt, 1, interpolation=mode), [x])  # fmt: skip
    _grad_pair(lambda a: ds.nanquantile(a, 0.3, interpolation=mode),
               lambda a: torch.nanquantile(a, 0.3, interpolation=mode), [x])  # fmt: skip
    xd = ds.tensor(x, requires_grad=True)
    assert gradcheck(lambda a: ds.quantile(a, 0.37, 0, interpolation=mode), (xd,))


def test_quantile_errors():
    x = np.array([1.0, 2.0], np.float32)
    cases = [
        (lambda lib: lib.quantile(lib.tensor([1, 2]), 0.5)),
        (lambda lib: lib.quantile(lib.tensor(x), 1.5)),
        (lambda lib: lib.quantile(lib.tensor(x), lib.tensor([0.5], dtype=lib.float64))),
        (lambda lib: lib.quantile(lib.tensor(np.zeros(0, np.float32)), 0.5)),
        (lambda lib: lib.nanquantile(lib.tensor(x), lib.tensor([[0.5]]))),
    ]
    for case in cases:
        _raises_like(lambda c=case: c(ds), lambda c=case: c(torch))


# ---------------------------------------------------------------------------------------------
# cov, corrcoef, pdist


@pytest.mark.parametrize("dtype", FLOATS + ["int64"])
def test_cov_corrcoef_values(dtype):
    rtol = 1e-12 if dtype == "float64" else 1e-5  # int64 inputs give float32
    for shape in [(5,), (3, 6), (1, 4), (4, 1), (2, 2)]:
        x = (RNG.standard_normal(shape) * 3).astype(dtype)
        d, t = _both(x)
        for corr in [0, 1, 2]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _check(ds.cov(d, correction=corr), torch.cov(t, correction=corr), rtol, 1e-12)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (4, 1): one observation, no degrees of freedom
            _check(d.cov(), t.cov(), rtol, 1e-12)
            _check(d.corrcoef(), t.corrcoef(), rtol, 1e-6)
    x = RNG.standard_normal((3, 6)).astype(dtype if dtype != "int64" else "float32")
    d, t = _both(x)
    fw = np.array([1, 2, 0, 3, 1, 1])
    for awd in ["float32", "float64"]:
        aw = RNG.uniform(0.1, 2, 6).astype(awd)
        for kw in [{"fweights": fw}, {"aweights": aw}, {"fweights": fw, "aweights": aw}]:
            for corr in [0, 1]:
                got = ds.cov(d, correction=corr, **{k: ds.tensor(v) for k, v in kw.items()})
                want = torch.cov(t, correction=corr, **{k: torch.tensor(v) for k, v in kw.items()})
                _check(got, want, 1e-5, 1e-6)


def test_cov_warnings_and_errors():
    d, t = _both(np.array([[1.0, 2.0]], np.float32))
    with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
        got = ds.cov(d, correction=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _check(got, torch.cov(t, correction=2))
    x = np.ones((2, 3), np.float32)
    cases = [
        lambda lib: lib.cov(lib.ones(2, 2, 2)),
        lambda lib: lib.cov(lib.tensor([True, False])),
        lambda lib: lib.cov(lib.tensor(x), fweights=lib.tensor([1.0, 2.0, 3.0])),
        lambda lib: lib.cov(lib.tensor(x), fweights=lib.tensor([1, 2])),
        lambda lib: lib.cov(lib.tensor(x), fweights=lib.tensor([1, -2, 1])),
        lambda lib: lib.cov(lib.tensor(x), aweights=lib.tensor([1, 2, 1])),
        lambda lib: lib.cov(lib.tensor(x), aweights=lib.tensor([1.0, -2.0, 1.0])),
        lambda lib: lib.cov(lib.tensor(x), fweights=lib.tensor([0, 0, 0])),
    ]
    for case in cases:
        _raises_like(lambda c=case: c(ds), lambda c=case: c(torch))


def test_cov_corrcoef_gradients():
    x = RNG.standard_normal((3, 6))
    aw = RNG.uniform(0.1, 2, 6)
    fw = np.array([1, 2, 1, 3, 1, 1])
    _grad_pair(lambda a: ds.cov(a), lambda a: torch.cov(a), [x])
    fd, ft = ds.tensor(fw), torch.tensor(fw)
    _grad_pair(lambda a, w: ds.cov(a, fweights=fd, aweights=w),
               lambda a, w: torch.cov(a, fweights=ft, aweights=w), [x, aw])  # fmt: skip
    _grad_pair(lambda a: ds.corrcoef(a), lambda a: torch.corrcoef(a), [x])
    xd = ds.tensor(x, requires_grad=True)
    assert gradcheck(lambda a: ds.cov(a, correction=0), (xd,))
    assert gradcheck(ds.corrcoef, (xd,))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("p", [0, 1, 2, 3.5, float("inf")])
def test_pdist(dtype, p):
    for shape in [(5, 3), (1, 3), (0, 3), (4, 0), (30, 2)]:
        x = RNG.standard_normal(shape).astype(dtype)
        d, t = _both(x)
        _check(ds.pdist(d, p), torch.pdist(t, p), 1e-5 if dtype == "float32" else 1e-12, 1e-6)
    if p == 0:
        return
    x = RNG.standard_normal((5, 3))
    x[3] = x[1]  # coincident rows: PyTorch's zero gradient
    _grad_pair(lambda a: ds.pdist(a, p), lambda a: torch.pdist(a, p), [x], atol=1e-10)
    assert gradcheck(lambda a: ds.pdist(a, p), (ds.tensor(RNG.standard_normal((4, 3)),
                                                          requires_grad=True),))  # fmt: skip


def test_pdist_errors():
    for case in [lambda lib: lib.pdist(lib.tensor([[1, 2]])),
                 lambda lib: lib.pdist(lib.ones(3)),
                 lambda lib: lib.pdist(lib.ones(2, 2), -1.0)]:  # fmt: skip
        _raises_like(lambda c=case: c(ds), lambda c=case: c(torch))


# ---------------------------------------------------------------------------------------------
# combinations, diag_embed, dstack, tensor_split


def test_combinations():
    for arr in [np.array([1.5, 2.0, 3.0, -1.0]), np.array([4, 5, 6]), np.array([], np.float32)]:
        d, t = _both(arr)
        for r in [0, 1, 2, 3, 5]:
            for rep in [False, True]:
                _check(ds.combinations(d, r, rep), torch.combinations(t, r, rep))
    _grad_pair(lambda a: ds.combinations(a, 3, True), lambda a: torch.combinations(a, 3, True),
               [np.array([1.0, 2.0, 3.0, 4.0])])  # fmt: skip
    _raises_like(lambda: ds.combinations(ds.tensor(1.0)),
                 lambda: torch.combinations(torch.tensor(1.0)))  # fmt: skip


@pytest.mark.parametrize("dtype", FLOATS + ["int64"])
def test_diag_embed(dtype):
    for shape in [(3,), (2, 3), (2, 3, 4)]:
        x = (RNG.standard_normal(shape) * 4).astype(dtype)
        d, t = _both(x)
        nd = len(shape) + 1
        for offset in [0, 1, -2]:
            for d1, d2 in [(-2, -1), (-1, -2), (0, nd - 1), (nd - 1, 0), (0, 1)]:
                _check(ds.diag_embed(d, offset, d1, d2), torch.diag_embed(t, offset, d1, d2))
        _check(d.diag_embed(1), t.diag_embed(1))
    d, t = _both(np.array([1.0, np.inf, np.nan]))
    _check(ds.diag_embed(d, -1), torch.diag_embed(t, -1))
    _grad_pair(lambda a: ds.diag_embed(a, 1, 0, 2), lambda a: torch.diag_embed(a, 1, 0, 2),
               [RNG.standard_normal((2, 3))])  # fmt: skip
    _raises_like(lambda: ds.diag_embed(ds.tensor(1.0)), lambda: torch.diag_embed(torch.tensor(1.0)))
    _raises_like(lambda: ds.diag_embed(ds.ones(3), 0, 1, 1),
                 lambda: torch.diag_embed(torch.ones(3), 0, 1, 1))  # fmt: skip


def test_dstack_atleast_3d():
    shapes = [(), (3,), (2, 3), (2, 3, 4), (1, 2, 3, 1)]
    for shape in shapes:
        d, t = _both(RNG.standard_normal(shape).astype(np.float32))
        _check(ds.atleast_3d(d), torch.atleast_3d(t))
    parts = [np.ones(3, np.float32), np.arange(3, dtype=np.float32)]
    _check(ds.dstack([ds.tensor(p) for p in parts]), torch.dstack([torch.tensor(p) for p in parts]))
    mats = [RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3, 2))]
    _grad_pair(lambda a, b: ds.dstack([a, b]), lambda a, b: torch.dstack([a, b]), mats)
    a, b = ds.atleast_3d(ds.ones(2), ds.ones(2, 2))
    assert tuple(a.shape) == (1, 2, 1) and tuple(b.shape) == (2, 2, 1)


def test_tensor_split():
    x = np.arange(7 * 4).reshape(7, 4).astype(np.float32)
    d, t = _both(x)
    specs = [3, 1, 7, 9, [1, 5], [2, 2, 6], [5, 2], [-2], [0, 10], [], 2]
    for ios in specs:
        for dim in [0, 1, -1]:
            got = ds.tensor_split(d, ios, dim)
            want = torch.tensor_split(t, ios, dim)
            assert len(got) == len(want)
            for a, b in zip(got, want):
                _check(a, b)
    for ios in [ds.tensor(3), ds.tensor([1, 4])]:
        tios = torch.tensor(ios.numpy())
        for a, b in zip(d.tensor_split(ios, 1), t.tensor_split(tios, 1)):
            _check(a, b)
    _raises_like(lambda: ds.tensor_split(ds.tensor(1.0), 2),
                 lambda: torch.tensor_split(torch.tensor(1.0), 2))  # fmt: skip
    _raises_like(lambda: ds.tensor_split(d, 0), lambda: torch.tensor_split(t, 0))
    _grad_pair(lambda a: ds.cat(ds.tensor_split(a, [1, 3], 1)[::-1], 1),
               lambda a: torch.cat(torch.tensor_split(a, [1, 3], 1)[::-1], 1), [x])  # fmt: skip


def test_hsplit_vsplit_dsplit():
    x = np.arange(4 * 6 * 4).reshape(4, 6, 4).astype(np.float32)
    d, t = _both(x)
    for name in ["hsplit", "vsplit", "dsplit"]:
        for ios in [2, [1, 3]]:
            got, want = getattr(ds, name)(d, ios), getattr(torch, name)(t, ios)
            for a, b in zip(got, want):
                _check(a, b)
            for a, b in zip(getattr(d, name)(ios), getattr(t, name)(ios)):
                _check(a, b)
        _raises_like(lambda n=name: getattr(ds, n)(d, 5), lambda n=name: getattr(torch, n)(t, 5))
    v, tv = _both(np.arange(6.0))
    for a, b in zip(ds.hsplit(v, 3), torch.hsplit(tv, 3)):
        _check(a, b)
    _raises_like(lambda: ds.vsplit(v, 2), lambda: torch.vsplit(tv, 2))
    _raises_like(lambda: ds.dsplit(d[0], 2), lambda: torch.dsplit(t[0], 2))


# ---------------------------------------------------------------------------------------------
# asarray, poisson, can_cast, set_printoptions


def test_asarray():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    with pytest.warns(UserWarning, match="unspecified requires_grad"):
        assert ds.asarray(x) is x
    assert not ds.asarray(x, requires_grad=False).requires_grad
    y = x * 2
    assert ds.asarray(y, requires_grad=True) is y
    z = ds.asarray(x, dtype=ds.float64, requires_grad=True)
    assert z.dtype == ds.float64 and z.grad_fn is not None
    n = np.array([1.0, 2.0])
    a = ds.asarray(n)
    n[0] = 5.0
    assert a.dtype == ds.float64 and a[0].item() == 5.0  # shares NumPy's memory, as torch
    b = ds.asarray(n, copy=True)
    n[1] = 7.0
    assert b[1].item() == 2.0
    with pytest.raises(ValueError, match="can't alias"):
        ds.asarray(n, dtype=ds.float32, copy=False)
    for obj in [[1, 2], [1.0, 2.5], 3.5, [True], [[1, 2], [3, 4]]]:
        _check(ds.asarray(obj), torch.asarray(obj))
    _check(ds.asarray([1, 2], dtype=ds.float64), torch.asarray([1, 2], dtype=torch.float64))
    assert ds.asarray([1.0], requires_grad=True).requires_grad


@pytest.mark.parametrize("dtype", FLOATS)
def test_poisson(dtype):
    rates = np.array([0.0, 0.5, 3.0, 40.0], dtype)
    ds.manual_seed(0)
    draws = ds.poisson(ds.tensor(np.tile(rates, (4000, 1))))
    assert draws.dtype == np.dtype(dtype)
    v = draws.numpy()
    assert (v == np.round(v)).all() and (v[:, 0] == 0).all()
    np.testing.assert_allclose(v.mean(0), rates, rtol=0.05, atol=0.02)
    x = ds.tensor(rates, requires_grad=True)
    out = ds.poisson(x, generator=ds.Generator(1))
    assert out.requires_grad
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(4, dtype))  # PyTorch's zero gradient
    again = ds.poisson(ds.tensor(rates), generator=ds.Generator(1))
    np.testing.assert_array_equal(again.numpy(), out.detach().numpy())
    _raises_like(lambda: ds.poisson(ds.tensor([-1.0])), lambda: torch.poisson(torch.tensor([-1.0])))
    _raises_like(lambda: ds.poisson(ds.tensor([1, 2])), lambda: torch.poisson(torch.tensor([1, 2])))


def test_can_cast_table():
    names = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"]
    for a in names:
        for b in names:
            want = torch.can_cast(getattr(torch, a), getattr(torch, b))
            assert ds.can_cast(getattr(ds, a), getattr(ds, b)) == want, (a, b)


@pytest.fixture
def printoptions():
    yield
    ds.set_printoptions(profile="default")


def test_set_printoptions(printoptions):
    x = ds.tensor([1.123456789, 2.5, -3.0])
    assert "1.1235" in repr(x)
    ds.set_printoptions(precision=2)
    assert "1.12," in repr(x) and "1.123" not in repr(x)
    big = ds.arange(2000)
    assert "..." in repr(big) and "1997" in repr(big) and "1996" not in repr(big)
    ds.set_printoptions(edgeitems=1)
    assert "1998" not in repr(big) and "1999" in repr(big)
    ds.set_printoptions(profile="full")
    assert "..." not in repr(big)
    ds.set_printoptions(profile="default", threshold=5)
    assert "..." in repr(ds.arange(7)) and "..." not in repr(ds.arange(5))
    ds.set_printoptions(profile="short")
    assert "1.12" in repr(x) and "1.123" not in repr(x)
    ds.set_printoptions(sci_mode=True)
    assert "e+00" in repr(x)
    ds.set_printoptions(sci_mode=False)
    assert "e-" not in repr(ds.tensor([1e-5, 1.0]))
    ds.set_printoptions(profile="default", linewidth=40)
    lines = repr(ds.arange(30.0)).splitlines()  # the last line also holds ", dtype=...)"
    assert len(lines) > 3 and max(len(line) for line in lines[:-1]) <= 40
    with pytest.raises(ValueError, match="profile"):
        ds.set_printoptions(profile="long")


GRADCHECKS = {
    "combinations": lambda a: ds.combinations(a.reshape(-1), 2, True),
    "diag_embed": lambda a: ds.diag_embed(a, -1, 0, 2),
    "dstack": lambda a: ds.dstack([a, a * a]),
    "tensor_split": lambda a: ds.tensor_split(a, [1, 3], 1)[1],
    "hsplit": lambda a: a.hsplit([2])[1] * 3,
    "quantile": lambda a: a.quantile(ds.tensor([0.1, 0.8], dtype=ds.float64), 1),
    "nanquantile": lambda a: ds.nanquantile(a, 0.6, interpolation="midpoint"),
    "cov": lambda a: a.cov(correction=0),
    "corrcoef": lambda a: a.corrcoef(),
    "pdist": lambda a: ds.pdist(a, 1.5),
}


@pytest.mark.parametrize("name", sorted(GRADCHECKS))
def test_float64_finite_differences(name):
    x = ds.tensor(RNG.permutation(12).reshape(3, 4) / 5.0 + 0.1, requires_grad=True)
    assert gradcheck(GRADCHECKS[name], (x,))


_F32 = np.float32
EDGES = {
    "tensor_split empty": lambda L: L.tensor_split(L.tensor(np.zeros(0, _F32)), 3),
    "cov (2, 0)": lambda L: L.cov(L.tensor(np.zeros((2, 0), _F32))),
    "cov 0-d": lambda L: L.cov(L.tensor(_F32(3.0))),
    "corrcoef constant row": lambda L: L.corrcoef(L.tensor(np.array([[1, 2, 3], [1, 1, 1]], _F32))),
    "diag_embed empty": lambda L: L.diag_embed(L.tensor(np.zeros((2, 0), _F32)), 1),
    "diag_embed int": lambda L: L.diag_embed(L.tensor(np.array([[1, 2]]))),
    "dstack int+float": lambda L: L.dstack([L.tensor([1, 2]), L.tensor(np.ones(2, _F32))]),
    "quantile 0-d, 1-D q": lambda L: L.quantile(L.tensor(_F32(2)), L.tensor(_F32([0.1, 0.9]))),
    "quantile dim out of range": lambda L: L.quantile(L.tensor(np.ones(2)), 0.5, dim=3),
    "quantile float16": lambda L: L.quantile(L.tensor(np.ones(2, np.float16)), 0.5),
    "quantile bad mode": lambda L: L.quantile(L.tensor(np.ones(2)), 0.5, interpolation="bad"),
    "pdist float16": lambda L: L.pdist(L.tensor(np.ones((3, 2), np.float16))),
    "combinations r < 0": lambda L: L.combinations(L.tensor(np.arange(3.0)), -1),
    "histogram int edges": lambda L: L.histogram(L.tensor(np.ones(3)), L.tensor(np.array([0, 2]))),
    "histogram bins 0": lambda L: L.histogram(L.tensor(np.ones(2)), 0),
    "histogram reversed range": lambda L: L.histogram(L.tensor(np.ones(2)), 2, range=(3.0, 1.0)),
    "bincount minlength < 0": lambda L: L.bincount(L.tensor(np.array([1])), minlength=-1),
    "bincount weights length": lambda L: L.bincount(L.tensor(np.array([1, 2])), L.tensor([1.0])),
    "tensor_split float indices": lambda L: L.tensor_split(L.tensor([0.0, 1.0]), L.tensor([1.0])),
    "hsplit 0-d": lambda L: L.hsplit(L.tensor(1.0), 1),
    "asarray int": lambda L: L.asarray(7),
}  # fmt: skip


def _outcome(fn, lib):
    """Values (shape, dtype, list) of the result(s), or the error's type and message start."""
    try:
        out = fn(lib)
    except Exception as e:  # noqa: BLE001 - the comparison is the point
        return ("error", type(e).__name__, str(e)[:40])
    outs = out if isinstance(out, tuple) else (out,)
    return [(tuple(o.shape), str(o.dtype).replace("torch.", "descent."),
             repr(np.asarray(o.detach().numpy()).tolist())) for o in outs]  # fmt: skip


@pytest.mark.parametrize("name", sorted(EDGES))
def test_edge_cases_match_torch(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _outcome(EDGES[name], ds) == _outcome(EDGES[name], torch)


@pytest.mark.parametrize("equal_nan", [False, True])
def test_allclose_equal_nan_matches_torch(equal_nan):
    a = np.array([1.0, np.nan, np.inf, -0.0], dtype=np.float32)
    b = np.array([1.0 + 1e-7, np.nan, np.inf, 0.0], dtype=np.float32)
    d = ds.allclose(ds.tensor(a), ds.tensor(b), equal_nan=equal_nan)
    t = torch.allclose(torch.tensor(a), torch.tensor(b), equal_nan=equal_nan)
    assert d is t
