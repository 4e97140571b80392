"""Reductions and statistics: disagreements with PyTorch found by its own operator database
(tests/opinfo_harness.py, op_db). Each test compares with torch 2.13 in float32 (values and
gradients) on the case that failed; new or changed derivatives are also checked against finite
differences in float64 (descent.autograd.gradcheck).

- var/std/var_mean/std_mean: `var(x, True)` (unbiased passed where the dim goes) reduced over
  dim 1 with correction 1; `correction=None` raised a TypeError (it means 1).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds


def _rand(shape, seed=0, dtype=np.float32, low=-2.0, high=2.0):
    """Reproducible uniform samples (complex when `dtype` is)."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(low, high, shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.uniform(low, high, shape)
    return a.astype(dtype)


def _np(t):
    """A tensor of either library as a NumPy array."""
    if isinstance(t, torch.Tensor):
        return t.detach().resolve_conj().numpy()
    return np.asarray(t.detach().numpy())


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def compare(fn, *arrays, grad=True, rtol=1e-5, atol=1e-6):
    """Run fn(lib, *tensors) with torch and descent on the same arrays: compare dtype, shape and
    values of every output, and (with `grad`) the gradients of sum(w * out) w.r.t. every
    floating input, w a fixed ramp (complex for complex outputs)."""
    results = []
    for lib in (torch, ds):
        ts = [
            lib.tensor(a, requires_grad=grad and a.dtype.kind in "fc") if a is not None else None
            for a in arrays
        ]
        outs = _outputs(fn(lib, *ts))
        grads = []
        if grad:
            loss = 0
            for o in outs:
                if not o.dtype.is_floating_point and not o.dtype.is_complex:
                    continue
                w = np.linspace(-1.0, 1.5, max(o.numel(), 1))[: o.numel()].reshape(o.shape)
                if o.dtype.is_complex:
                    w = w + 0.5j * w[::-1] if w.ndim else w + 0.5j
                    loss = loss + (o * lib.tensor(w.astype(np.complex64))).real.sum()
                else:
                    loss = loss + (o * lib.tensor(w.astype(np.float32))).sum()
            leaves = [t for t in ts if t is not None and t.requires_grad]
            if leaves:
                grads = list(lib.autograd.grad(loss, leaves, allow_unused=True))
        results.append((outs, grads))
    (t_outs, t_grads), (d_outs, d_grads) = results
    assert len(t_outs) == len(d_outs)
    for t, d in zip(t_outs, d_outs, strict=True):
        assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        assert tuple(d.shape) == tuple(t.shape)
        np.testing.assert_allclose(_np(d), _np(t), rtol=rtol, atol=atol, equal_nan=True)
    for t, d in zip(t_grads, d_grads, strict=True):
        if t is None:
            assert d is None or not np.any(_np(d))
            continue
        np.testing.assert_allclose(_np(d), _np(t), rtol=rtol * 10, atol=atol * 10)


def gradcheck64(fn, *arrays):
    """Finite differences in float64 (complex128 for complex arrays) through descent's
    gradcheck."""
    ts = [
        ds.tensor(a.astype(np.complex128 if a.dtype.kind == "c" else np.float64),
                  requires_grad=True)
        for a in arrays
    ]  # fmt: skip
    assert ds.autograd.gradcheck(fn, ts)


# ---- var / std / var_mean / std_mean: PyTorch's overloads -----------------------------------


@pytest.mark.parametrize("name", ["var", "std", "var_mean", "std_mean"])
@pytest.mark.parametrize("unbiased", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_var_unbiased_positional_reduces_everything(name, unbiased, dtype):
    x = _rand((5, 5), dtype=dtype)
    compare(lambda lib, t: getattr(lib, name)(t, unbiased), x)
    if name in ("var", "std"):  # the method too
        compare(lambda lib, t: getattr(t, name)(unbiased), x)


@pytest.mark.parametrize("name", ["var", "std", "var_mean", "std_mean"])
def test_var_correction_none_is_one(name):
    x = _rand((5, 5, 5))
    compare(lambda lib, t: getattr(lib, name)(t, dim=None, correction=None), x)
    compare(lambda lib, t: getattr(lib, name)(t, dim=1, correction=None, keepdim=True), x)
    compare(lambda lib, t: getattr(lib, name)(t, 1, False, True), x)  # dim, unbiased, keepdim


# ---- quantile / nanquantile: the gradient with respect to a tensor q ------------------------


@pytest.mark.parametrize("name", ["quantile", "nanquantile"])
@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
@pytest.mark.parametrize(("shape", "dim"), [((2,), None), ((3, 5), 0), ((3, 5), -1),
                                            ((3, 2, 1, 2), None)])  # fmt: skip
def test_quantile_q_gradient(name, interpolation, shape, dim):
    x = _rand(shape, seed=1)
    q = np.array([0.0, 0.3, 0.61, 1.0], np.float32)
    compare(lambda lib, t, qt: getattr(lib, name)(t, qt, dim=dim, interpolation=interpolation),
            x, q)  # fmt: skip
    compare(lambda lib, t, qt: getattr(lib, name)(t, qt, dim=dim, keepdim=True), x, q[1:3])
    compare(lambda lib, t, qt: getattr(lib, name)(t, qt), x, np.array(0.3, np.float32))  # 0-d q


@pytest.mark.parametrize("name", ["quantile", "nanquantile"])
def test_quantile_q_gradient_with_nan(name):
    # a NaN slice overwrites the rank (quantile) and an all-NaN row has count 0 (nanquantile):
    # PyTorch's masked_fill sends 0 to q there, not NaN
    x = np.array([[1.0, np.nan, 3.0, 0.5], [2.0, 5.0, -1.0, 4.0], [np.nan] * 4], np.float32)
    compare(lambda lib, t, qt: getattr(lib, name)(t, qt, dim=1), x,
            np.array([0.0, 0.3, 0.8, 1.0], np.float32))  # fmt: skip


@pytest.mark.parametrize("name", ["quantile", "nanquantile"])
def test_quantile_q_gradcheck(name):
    x = _rand((3, 6), seed=2)
    q = np.array([0.13, 0.52, 0.87])  # ranks away from the integers (the kinks)
    gradcheck64(lambda t, qt: getattr(ds, name)(t, qt, dim=1), x, q)
    gradcheck64(lambda t, qt: getattr(ds, name)(t, qt), x, q)


# ---- diff, gradient, trapezoid: n=0, spacing=None, complex samples ---------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.complex64, np.int64, np.bool_])
def test_diff_n0_ignores_prepend_append(dtype):
    x, pre, app = (_rand(s, seed=i, dtype=np.float32 if dtype is np.bool_ else dtype)
                   for i, s in enumerate([(5, 5), (1, 5), (2, 5)]))  # fmt: skip
    if dtype is np.bool_:
        x, pre, app = x > 0, pre > 0, app > 0
    compare(lambda lib, t, p, a: lib.diff(t, 0, 0, p, a), x, pre, app)
    compare(lambda lib, t, a: lib.diff(t, 0, 0, None, a), x, app)
    compare(lambda lib, t, a: lib.diff(t, 1, 0, None, a), x, app)  # n=1 still appends


def test_diff_n0_is_a_copy_and_negative_n_raises():
    x = ds.tensor([1.0, 2.0])
    y = ds.diff(x, n=0)
    assert y is not x
    y[0] = 5.0
    assert x.tolist() == [1.0, 2.0]
    with pytest.raises(RuntimeError, match="non-negative"):
        ds.diff(x, -1)
    with pytest.raises(RuntimeError, match="non-negative"):
        torch.diff(torch.tensor([1.0, 2.0]), -1)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64, np.int64])
@pytest.mark.parametrize("edge_order", [1, 2])
def test_gradient_spacing_none(dtype, edge_order):
    x = _rand((5, 5), dtype=dtype) if dtype is not np.int64 else np.arange(25).reshape(5, 5) ** 2
    compare(lambda lib, t: lib.gradient(t, dim=None, spacing=None, edge_order=edge_order), x)
    compare(lambda lib, t: lib.gradient(t, dim=1, spacing=None, edge_order=edge_order), x)


@pytest.mark.parametrize("spacing", [2.0, [2.0, 2.1], "tensors"])
def test_gradient_complex(spacing):
    x = _rand((4, 4), dtype=np.complex64)
    c = np.array([0.0, 1.0, 2.5, 3.0], np.float32)

    def fn(lib, t, ct):
        return lib.gradient(t, spacing=[ct, ct * 2] if spacing == "tensors" else spacing)

    compare(fn, x, c)
    gradcheck64(lambda t, ct: ds.gradient(t, spacing=[ct, ct * 2], edge_order=2), x, c)


def test_gradient_coordinates_promote():
    y, c = np.array([1.0, 4.0, 9.0, 16.0], np.float32), np.array([0.0, 1.0, 2.5, 3.0])
    compare(lambda lib, t, ct: lib.gradient(t, spacing=[ct]), y, c)  # float32 at float64 points
    compare(lambda lib, t, ct: lib.gradient(t, spacing=[ct]), y, c.astype(np.complex64))
    compare(lambda lib, t, ct: lib.gradient(t, spacing=[ct]), np.array([1, 4, 9, 16]), c)


@pytest.mark.parametrize("name", ["trapezoid", "trapz", "cumulative_trapezoid"])
@pytest.mark.parametrize(
    ("ydt", "xdt"),
    [(np.complex64, np.complex64), (np.float32, np.complex64),
     (np.complex64, np.float32), (np.complex64, None)],
)  # fmt: skip
def test_trapezoid_complex(name, ydt, xdt):
    y = _rand((2, 3), seed=3, dtype=ydt)
    if xdt is None:
        compare(lambda lib, t: getattr(lib, name)(t, dx=2.0), y)
        return
    x = _rand((2, 3), seed=4, dtype=xdt)
    compare(lambda lib, t, xt: getattr(lib, name)(t, xt), y, x)
    compare(lambda lib, t, xt: getattr(lib, name)(t, xt[0], dim=1), y, x)
    gradcheck64(lambda t, xt: getattr(ds, name)(t, xt), y, x)


# ---- prod(dtype=bool), sum_to_size of bool -------------------------------------------------


@pytest.mark.parametrize("dtype", [np.bool_, np.float32, np.int64])
def test_prod_dtype_bool_is_logical_and(dtype):
    x = (_rand((5, 5, 5), seed=5) > -1.5).astype(dtype)
    for kwargs in ({}, {"keepdim": True}):
        compare(lambda lib, t, kw=kwargs: lib.prod(t, 1, dtype=lib.bool, **kw), x, grad=False)
    compare(lambda lib, t: t.prod(dtype=lib.bool), x, grad=False)
    compare(lambda lib, t: lib.prod(t), x, grad=False)  # bool without dtype: int64


@pytest.mark.parametrize("size", [(), (1, 1), (2, 1), (1, 3), (3,), (2, 3)])
@pytest.mark.parametrize("dtype", [np.bool_, np.float32, np.int64])
def test_sum_to_size(size, dtype):
    x = (_rand((2, 3), seed=6) > 0).astype(dtype) if dtype is not np.float32 else _rand((2, 3))
    compare(lambda lib, t: t.sum_to_size(size), x)
    if not size:  # a 0-d tensor summed to [] (bool: int64)
        compare(lambda lib, t: t.sum_to_size([]), x[0, 0])


# ---- cov / corrcoef of complex variables: x x^H, parts clipped ------------------------------


# (no correction >= n: x / 0 there, and the signs of the infinities follow the rounding of
# an imaginary part that is 0 in exact arithmetic)
@pytest.mark.parametrize(
    ("shape", "correction"),
    [(s, c) for s in [(2,), (3, 2), (2, 3), (1, 4)] for c in (0, 1, 2) if c < s[-1]],
)
def test_cov_complex(shape, correction):
    n = shape[-1]
    x = _rand(shape, seed=7, dtype=np.complex64)
    compare(lambda lib, t: lib.cov(t, correction=correction), x)
    fw, aw = np.arange(1, n + 1), _rand((n,), seed=8, low=0.5, high=2.0)
    compare(lambda lib, t, a: lib.cov(t, correction=correction, fweights=lib.tensor(fw),
                                      aweights=a), x, aw)  # fmt: skip
    gradcheck64(lambda t: ds.cov(t, correction=correction), x)


@pytest.mark.parametrize("shape", [(2,), (3, 2), (2, 3), (4, 5)])
def test_corrcoef_complex(shape):
    x = _rand(shape, seed=9, dtype=np.complex64)
    compare(lambda lib, t: lib.corrcoef(t), x)
    if len(shape) == 2:
        compare(lambda lib, t: t.corrcoef(), x)
        gradcheck64(lambda t: ds.corrcoef(t), x)


# ---- logcumsumexp: float64 accumulation (PyTorch's acc_type) and complex input -------------


def test_logcumsumexp_gradient_accumulates_wide():
    # OpInfo's sample: a 1e4 entry leads each column; float32 logaddexp steps at 1e4 lose
    # ~5e-4 each. PyTorch's scans accumulate in float64 and round once (and its float32
    # gradient is the closer one to the exact value: 0.934291 for the worst element).
    x = _rand((5, 5, 5), seed=10, low=-5, high=5)
    x[0, :, :] = 1e4
    compare(lambda lib, t: lib.logcumsumexp(t, 0), x, rtol=1e-6, atol=1e-6)
    w = np.array([-0.25289845, 1.57974112, 1.1150142, -1.04754615, -0.46001938], np.float32)
    col = np.array([1e4, -6.25506783, 7.46849918, -6.45877218, 6.87291479], np.float32)
    t = ds.tensor(col, requires_grad=True)
    (ds.logcumsumexp(t, 0) * ds.tensor(w)).sum().backward()
    assert abs(float(t.grad[0]) - 0.9342913329601288) < 2e-6  # exact (mpmath): sum(w)


@pytest.mark.parametrize("shape, dim", [((5, 4), 0), ((3, 6), 1), ((), 0), ((7,), -1)])
def test_logcumsumexp_complex(shape, dim):
    x = _rand(shape, seed=11, dtype=np.complex64, low=-3, high=3)
    compare(lambda lib, t: lib.logcumsumexp(t, dim), x)
    compare(lambda lib, t: t.logcumsumexp(dim), x)
    gradcheck64(lambda t: ds.logcumsumexp(t, dim), x)


def test_logcumsumexp_complex_special_values():
    nan, inf = float("nan"), float("inf")
    rows = [
        [1 + 1j, complex(nan, 0), 2 + 0j],
        [complex(-inf, 0), complex(-inf, 1), 1 - 2j],
        [complex(inf, 0), complex(inf, 0), 0j],
        [complex(-inf, 0), 3 + 4j, 30 - 1j],
    ]
    x = np.array(rows, np.complex64)
    compare(lambda lib, t: lib.logcumsumexp(t, 1), x, grad=False)


def test_logcumsumexp_complex_second_order():
    x = _rand((3, 4), seed=12, dtype=np.complex64)
    results = []
    for lib in (torch, ds):
        t = lib.tensor(x, requires_grad=True)
        (g,) = lib.autograd.grad(lib.logcumsumexp(t, 1).abs().sum(), t, create_graph=True)
        (gg,) = lib.autograd.grad((g * g.conj()).real.sum(), t)
        results.append((_np(g), _np(gg)))
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


# ---- logsumexp of complex input: PyTorch's backward formula gy * conj(exp(x - y)) -----------


@pytest.mark.parametrize(("shape", "dim", "keepdim"), [((), [0], True), ((5, 5), [1], True),
                                                       ((5, 5), [-2], False),
                                                       ((5, 5), [0, 1], False)])  # fmt: skip
@pytest.mark.parametrize("scale", [1.0, 1.5e6])
def test_logsumexp_complex(shape, dim, keepdim, scale):
    # at |x| ~ 1e6 (OpInfo's sample) float32 wraps the phase of y into (-pi, pi], so
    # exp(x - y) carries a rounding error of ~1e-2 that PyTorch's gradient has: so does ours
    x = _rand(shape, seed=13, dtype=np.complex64, low=0.7 * scale, high=scale)
    compare(lambda lib, t: lib.logsumexp(t, dim, keepdim), x)
    if scale == 1.0:
        gradcheck64(lambda t: ds.logsumexp(t, dim, keepdim), x)


def test_logsumexp_complex_second_order_and_empty():
    x = _rand((3, 4), seed=14, dtype=np.complex64)
    results = []
    for lib in (torch, ds):
        t = lib.tensor(x, requires_grad=True)
        (g,) = lib.autograd.grad(lib.logsumexp(t, 1).abs().sum(), t, create_graph=True)
        (gg,) = lib.autograd.grad((g * g.conj()).real.sum(), t)
        results.append((_np(g), _np(gg)))
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    compare(lambda lib, t: lib.logsumexp(t, 1), np.zeros((2, 0), np.complex64))


# ---- complex elementwise: sgn's gradient, isreal, float_power, ldexp, logaddexp, c ** z -----


def test_sgn_complex_gradient():
    x = _rand((20, 20), seed=15, dtype=np.complex64)
    x[0, :3] = [0, 1e-30, -2.0]  # sgn(0) = 0 with gradient 0; a real negative entry
    compare(lambda lib, t: lib.sgn(t), x)
    compare(lambda lib, t: t.sgn(), x)
    gradcheck64(lambda t: ds.sgn(t), _rand((3, 4), seed=16, dtype=np.complex64))
    special = np.array(
        [complex(np.inf, 0), complex(np.nan, 1), complex(1, np.inf), 0], np.complex64
    )
    compare(lambda lib, t: lib.sgn(t), special, grad=False)


def test_sgn_complex_second_order():
    x = _rand((3, 4), seed=17, dtype=np.complex64)
    results = []
    for lib in (torch, ds):
        t = lib.tensor(x, requires_grad=True)
        (g,) = lib.autograd.grad((lib.sgn(t) * t).real.sum(), t, create_graph=True)
        (gg,) = lib.autograd.grad((g * g.conj()).real.sum(), t)
        results.append((_np(g), _np(gg)))
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_isreal_complex():
    x = _rand((20,), seed=18, dtype=np.complex64)
    x.imag[::3] = 0
    x[1] = complex(np.nan, 0)
    x[2] = complex(0, np.nan)
    compare(lambda lib, t: lib.isreal(t), x, grad=False)
    compare(lambda lib, t: t.isreal(), x[4], grad=False)  # 0-d
    compare(lambda lib, t: lib.isreal(t), _rand((3,)), grad=False)


@pytest.mark.parametrize(
    ("adt", "edt"),
    [(np.complex64, np.complex64), (np.float32, np.complex64), (np.complex64, np.float32),
     (np.int64, np.complex64)],
)  # fmt: skip
def test_float_power_complex(adt, edt):
    a = _rand((10, 1, 5), seed=19, dtype=adt if adt is not np.int64 else np.float32)
    if adt is np.int64:
        a = (a * 3).astype(np.int64)
    e = _rand((10, 5), seed=20, dtype=edt)
    compare(lambda lib, t, et: lib.float_power(t, et), a, e, rtol=1e-6)
    compare(lambda lib, t: lib.float_power(t, 2.5j), a, rtol=1e-6)
    compare(lambda lib, t: t.float_power(1.5), a, rtol=1e-6)
    gradcheck64(lambda t, et: ds.float_power(t, et), _rand((3,), seed=21, dtype=np.complex64),
                _rand((3,), seed=22, dtype=np.complex64))  # fmt: skip


@pytest.mark.parametrize(
    ("adt", "edt"),
    [(np.complex64, np.complex64), (np.float32, np.complex64), (np.complex64, np.float32),
     (np.complex64, np.int64)],
)  # fmt: skip
def test_ldexp_complex(adt, edt):
    a = _rand((5, 10, 5), seed=23, dtype=adt)
    e = _rand((10, 5), seed=24, dtype=edt if edt is not np.int64 else np.float32)
    if edt is np.int64:
        e = (e * 3).astype(np.int64)
    # Values only where torch's own backward fails: a real operand with a complex one raises,
    # and an integer exponent gets pow(2, e) in integers (0 for e < 0; descent's 2^e is exact,
    # as its real LdexpInt's)
    compare(lambda lib, t, et: lib.ldexp(t, et), a, e, grad=adt == edt)
    gradcheck64(lambda t, et: ds.ldexp(t, et), _rand((3,), seed=25, dtype=np.complex64),
                _rand((3,), seed=26, dtype=np.complex64))  # fmt: skip


@pytest.mark.parametrize("base", [2.0, -1.5, 3, 1 + 1j, 0.5])
def test_scalar_to_complex_power_gradient(base):
    # d/dz c^z = c^z log c: the gradient is gy * conj(c^z log c) (descent missed the conj)
    z = _rand((6,), seed=27, dtype=np.complex64)
    compare(lambda lib, t: lib.pow(base, t), z)
    compare(lambda lib, t: base**t, z)
    gradcheck64(lambda t: ds.pow(base, t), z)


def test_logaddexp_complex():
    a = _rand((10, 1, 5), seed=28, dtype=np.complex64, low=-4, high=4)
    b = _rand((1, 10, 5), seed=29, dtype=np.complex64, low=-4, high=4)
    compare(lambda lib, s, t: lib.logaddexp(s, t), a, b)
    # complex with real: values (torch's own backward raises for the mixed pair)
    compare(lambda lib, s, t: lib.logaddexp(s, t), a[:, 0], _rand((5,), seed=30), grad=False)
    gradcheck64(lambda s, t: ds.logaddexp(s, t), a[:2, 0], b[0, :2])
    nan, inf = float("nan"), float("inf")
    sa = np.array([complex(nan, 0), complex(-inf, 0), complex(inf, 1), complex(-inf, 2), 1 + 1j],
                  np.complex64)  # fmt: skip
    sb = np.array(
        [1 + 0j, complex(-inf, 1), complex(inf, 0), 3 - 1j, complex(0, nan)], np.complex64
    )
    compare(lambda lib, s, t: lib.logaddexp(s, t), sa, sb, grad=False)


@pytest.mark.parametrize("name", ["logaddexp2", "hypot", "atan2", "copysign", "xlogy"])
def test_real_only_binary_ops_refuse_complex(name):
    # (they cast complex operands to float, dropping the imaginary parts, without a word)
    z = np.array([0.5 + 1j], np.complex64)
    for lib in (torch, ds):
        with pytest.raises(RuntimeError, match="not implemented"):
            getattr(lib, name)(lib.tensor(z), lib.tensor(z))
        with pytest.raises(RuntimeError, match="not implemented"):
            getattr(lib, name)(lib.tensor([1.0]), lib.tensor(z))


# ---- renorm of complex input: the norms of the moduli, real factors ------------------------


@pytest.mark.parametrize(
    ("p", "dim", "maxnorm"), [(2, 1, 0.5), (2, -1, 0.5), (1, 2, 3), (3, 0, 1.0)]
)
def test_renorm_complex(p, dim, maxnorm):
    x = _rand((5, 5, 5), seed=31, dtype=np.complex64)
    compare(lambda lib, t: lib.renorm(t, p, dim, maxnorm), x)
    compare(lambda lib, t: t.renorm(p, dim, maxnorm), x)
    gradcheck64(lambda t: ds.renorm(t, p, dim, maxnorm), x[:2, :3, :2])


def test_renorm_complex_inf_norm():
    # torch 2.13's complex64 gradient is nan everywhere here (its complex128 one is finite and
    # passes gradcheck): compare the float32 result with torch's complex128 gradient
    x = _rand((5, 5, 5), seed=32, dtype=np.complex64)
    compare(lambda lib, t: lib.renorm(t, float("inf"), 2, 0.5), x, grad=False)
    t = torch.tensor(x.astype(np.complex128), requires_grad=True)
    (tg,) = torch.autograd.grad(torch.renorm(t, float("inf"), 2, 0.5).abs().sum(), t)
    d = ds.tensor(x, requires_grad=True)
    (dg,) = ds.autograd.grad(ds.renorm(d, float("inf"), 2, 0.5).abs().sum(), d)
    np.testing.assert_allclose(_np(dg), tg.numpy(), rtol=1e-4, atol=1e-5)
    gradcheck64(lambda u: ds.renorm(u, float("inf"), 2, 0.5), x[:2, :3, :2])


# ---- istft's window gradient: OpInfo's finding is torch's ----------------------------------


@pytest.mark.parametrize("complex_window", [True, False])
def test_istft_window_gradient_strided_window(complex_window):
    # OpInfo's window is make_tensor(noncontiguous=True, requires_grad=True): a stride-2 view,
    # made without grad, of a base that requires grad. torch's istft output has no path to it
    # (grad None: zeros in the harness), while the same values as an ordinary leaf get a
    # gradient. descent's gradient for a strided window equals that one.
    w = _rand((16,), seed=34, dtype=np.complex64 if complex_window else np.float32, low=0.5)
    if complex_window:  # (a two-sided spectrum: n_fft bins)
        x = _rand((10, 10, 10), seed=33, dtype=np.complex64)
        kw = {"n_fft": 10, "win_length": 8, "center": True, "return_complex": True}
    else:
        x = _rand((10, 5, 6), seed=33, dtype=np.complex64)
        kw = {"n_fft": 8, "center": True}
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w[::2].copy(), requires_grad=True)
    out = torch.istft(tx, window=tw, **kw)
    g = _rand(tuple(out.shape), seed=35, dtype=np.complex64 if out.is_complex() else np.float32)
    t_grads = torch.autograd.grad(out, [tx, tw], torch.tensor(g))
    dx, dw = ds.tensor(x, requires_grad=True), ds.tensor(w)[::2].requires_grad_()
    out = ds.istft(dx, window=dw, **kw)
    d_grads = ds.autograd.grad(out, [dx, dw], ds.tensor(g))
    for t, d in zip(t_grads, d_grads, strict=True):
        np.testing.assert_allclose(_np(d), _np(t), rtol=1e-4, atol=1e-5)
