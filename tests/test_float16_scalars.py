"""float16 tensors with Python scalars, as PyTorch 2.13's CPU kernels compute them (bitwise).

PyTorch multiplies and divides a half tensor by a Python number in float32 ("opmath": the
scalar kept in float32, one rounding to half), where NumPy 2 rounds the scalar to float16 first
(NEP 50): `(1 - mask) * -1e9` was nan at the kept positions, `x * 0.1` off in the last bit.
add/sub round the scalar to half as PyTorch does; a value written into a float16 tensor (fill_,
masked_fill, full, clamp bounds, pow exponents, add's alpha) beyond 65504 raises PyTorch's
overflow error; addcmul, addcdiv and lerp compute in float32 and round once. Every comparison is
bitwise (dtype, shape and bytes: -0.0, inf and nan included); no matmul is involved.
"""

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")

# Every finite float16 value (positive and negative, subnormals and +-0), plus inf and nan.
_ALL = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
# A small row for ops that are slower per call (gradients, fused ops, errors).
_ROW = [0.0, -0.0, 1.0, -1.5, 0.1, 3.0, 65504.0, -65504.0, 6e-8, 1e-5, 1000.0, 0.333,
        float("inf"), float("-inf"), float("nan")]  # fmt: skip
# Scalars float16 cannot hold (tiny, huge, 0.1, 1/3), near its limit, and exact ones.
_SCALARS = [1e-8, 0.1, 1 / 3, 2.5, 70000.0, -1e9, 1e5, 3e38, 65520.0, 65519.0, 1e-30, 2, -3,
            70000, 7.0e-6]  # fmt: skip
_HUGE = [70000.0, -1e9, 1e5, 3e38, 65520.0, 65519.0, 70000]  # beyond float16's 65504


def _same(d, t, any_nan=False):
    """Bitwise equal; with `any_nan`, a nan matches a nan of any payload (pow's nan inputs)."""
    d = d.numpy() if isinstance(d, descent.Tensor) else np.asarray(d)
    t = t.numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    assert d.dtype == t.dtype and d.shape == t.shape
    bad = d.view(np.uint16) != t.view(np.uint16) if d.dtype == np.float16 else d != t
    if any_nan:
        bad &= ~(np.isnan(d) & np.isnan(t))
    if bad.any():
        i = np.flatnonzero(bad.reshape(d.size, -1).any(axis=1))[:5]
        raise AssertionError(f"{len(i)}+ differ, e.g. at {i}: {d.ravel()[i]} vs {t.ravel()[i]}")


def _both(values):
    return (descent.tensor(np.asarray(values, dtype=np.float16)),
            torch.tensor(np.asarray(values, dtype=np.float16)))  # fmt: skip


_BINARY = {
    "x*c": lambda x, c: x * c,
    "c*x": lambda x, c: c * x,
    "x/c": lambda x, c: x / c,
    "c/x": lambda x, c: c / x,
    "x+c": lambda x, c: x + c,
    "x-c": lambda x, c: x - c,
    "c-x": lambda x, c: c - x,
    "x<c": lambda x, c: x < c,
    "x==c": lambda x, c: x == c,
    "x>=c": lambda x, c: x >= c,
}


@pytest.mark.parametrize("c", _SCALARS, ids=repr)
@pytest.mark.parametrize("op", list(_BINARY))
def test_every_float16_value_with_a_scalar(op, c):
    xd, xt = _both(_ALL)
    with np.errstate(all="ignore"):
        _same(_BINARY[op](xd, c), _BINARY[op](xt, c))


_ROUNDED = {
    "x**c": lambda x, c: x ** (c if abs(c) < 65504 else 0.5),  # (|c| > 65504: an error, below)
    "abs(c)**x": lambda x, c: abs(c) ** x,
    "x//c": lambda x, c: x // c,
    "floor": lambda x, c: x.div(c, rounding_mode="floor"),
    "trunc": lambda x, c: x.div(c, rounding_mode="trunc"),
    "c//x": lambda x, c: (c // x) if c != 70000 else x,  # (PyTorch: floor in float16 steps)
    "trunc(c/x)": lambda x, c: (x * 0 + c).div(x, rounding_mode="trunc"),
}


@pytest.mark.parametrize("c", _SCALARS + [0.5, -0.5], ids=repr)
@pytest.mark.parametrize("op", ["x**c", "abs(c)**x", "x//c", "floor", "trunc", "trunc(c/x)"])
def test_every_float16_value_pow_and_rounded_division(op, c):
    """pow rounds the exponent to float16 (x ** 0.5 is C's pow there: 0 at -0., inf at -inf);
    x // c and div(x, c, rounding_mode=) divide in float32 with c in float32 (x // 0.1 is 0 at
    x = 0.1). NaN inputs give NaNs whose payload NumPy and PyTorch choose differently, and
    signaling NaNs (quiet bit clear) are left out: NumPy's nan ** 0 is nan for them, PyTorch's 1.
    """
    xd, xt = _both(_ALL[~np.isnan(_ALL) | (_ALL.view(np.uint16) & 0x0200 != 0)])
    with np.errstate(all="ignore"):
        _same(_ROUNDED[op](xd, c), _ROUNDED[op](xt, c), any_nan=True)


@pytest.mark.parametrize("c", _SCALARS, ids=repr)
@pytest.mark.parametrize("op", ["imul", "itruediv", "mul_", "div_", "iadd", "isub"])
def test_in_place_with_a_scalar(op, c):
    xd, xt = _both(_ALL)
    name = op if op.endswith("_") else f"__{op}__"
    with np.errstate(all="ignore"):
        _same(getattr(xd.clone(), name)(c), getattr(xt.clone(), name)(c))


@pytest.mark.parametrize("c", [0.1, 1 / 3, -1e9, 70000.0, 1e-8, 3.0])
def test_in_place_recorded_with_a_scalar(c):
    """x *= c inside a graph (the out-of-place op rebinds x) and its gradient."""
    grads = []
    for lib in (descent, torch):
        leaf = lib.tensor(np.asarray(_ROW[:12], dtype=np.float16), requires_grad=True)
        y = leaf * 1
        y *= c
        y.sum().backward()
        grads.append((y.detach(), leaf.grad))
    _same(grads[0][0], grads[1][0])
    _same(grads[0][1], grads[1][1])


_GRADS = {
    "x*c": lambda x, c: x * c,
    "x/c": lambda x, c: x / c,
    "c/x": lambda x, c: c / x,
    "x+c": lambda x, c: x + c,
    "c-x": lambda x, c: c - x,
    "x**c": lambda x, c: x**c,
}


@pytest.mark.parametrize("c", [c for c in _SCALARS if c not in _HUGE] + [0.5, -0.5], ids=repr)
@pytest.mark.parametrize("op", list(_GRADS))
def test_gradient_with_a_scalar(op, c):
    """The backward of x * c is gy * c in float32, rounded once (x / 70000: 1.43e-05, was 0)."""
    out = []
    for lib in (descent, torch):
        x = lib.tensor(np.asarray(_ROW, dtype=np.float16), requires_grad=True)
        y = _GRADS[op](x, c)
        y.backward(lib.ones_like(y) * 3)
        out.append((y.detach(), x.grad))
    with np.errstate(all="ignore"):
        _same(out[0][0], out[1][0])
        _same(out[0][1], out[1][1])
        assert out[0][1].dtype == descent.float16


@pytest.mark.parametrize("c", [c for c in _SCALARS if c not in _HUGE] + [-1e9, 1e5], ids=repr)
def test_gradient_of_a_scaled_product_create_graph(c):
    """Under create_graph the backward runs through Tensor ops, the same roundings."""
    out = []
    for lib in (descent, torch):
        x = lib.tensor(np.asarray(_ROW[:12], dtype=np.float16), requires_grad=True)
        (g,) = lib.autograd.grad((x * x * c).sum(), x, create_graph=True)
        (h,) = lib.autograd.grad(g.sum(), x)
        out.append((g.detach(), h))
    _same(out[0][0], out[1][0])
    _same(out[0][1], out[1][1])


_FILLS = {
    "clamp_min": lambda lib, x, c: lib.clamp(x, min=c),
    "clamp_max": lambda lib, x, c: lib.clamp(x, max=c),
    "clamp_": lambda lib, x, c: x.clone().clamp_(min=-abs(c)),
    "masked_fill": lambda lib, x, c: x.masked_fill(x > 0.5, c),
    "masked_fill_": lambda lib, x, c: x.clone().masked_fill_(x > 0.5, c),
    "fill_": lambda lib, x, c: x.clone().fill_(c),
    "full": lambda lib, x, c: lib.full((2,), c, dtype=lib.float16),
    "pow": lambda lib, x, c: x**c,
    "add_alpha": lambda lib, x, c: lib.add(x, x, alpha=c),
    "sub_alpha": lambda lib, x, c: lib.sub(x, x, alpha=c),
    "where": lambda lib, x, c: lib.where(x > 0.5, x, c),
    "where_first": lambda lib, x, c: lib.where(x > 0.5, c, x),
    "setitem": lambda lib, x, c: x.clone().__setitem__(0, c),
    "addcmul": lambda lib, x, c: lib.addcmul(x, x, x, value=c),
    "addcdiv": lambda lib, x, c: lib.addcdiv(x, x, x + 7, value=c),
    "lerp": lambda lib, x, c: lib.lerp(x, x * 0 + 1, c),
}


@pytest.mark.parametrize("c", _SCALARS, ids=repr)
@pytest.mark.parametrize("op", list(_FILLS))
def test_values_written_and_fused_ops(op, c):
    """Values written into float16 (PyTorch refuses |c| > 65504 there, not in where or x[i] = c);
    addcmul/addcdiv/lerp in float32 with one rounding."""
    xd, xt = _both(_ROW)
    try:
        expected = _FILLS[op](torch, xt, c)
    except RuntimeError as e:
        assert "without overflow" in str(e)
        with pytest.raises(RuntimeError, match="without overflow"):
            _FILLS[op](descent, xd, c)
        return
    with np.errstate(all="ignore"):
        got = _FILLS[op](descent, xd, c)
    if expected is None:  # setitem
        return
    _same(got, expected)


def test_overflow_errors_are_refusals_not_inf():
    """The cases the measurement found (docs/pytorch.md used to list them as differences)."""
    x = descent.zeros(3, dtype=descent.float16)
    for f in (lambda: x.masked_fill(x == 0, -1e9), lambda: x.clone().fill_(1e5),
              lambda: descent.clamp(x, min=-1e9), lambda: x**70000.0,
              lambda: descent.full((2,), 1e9, dtype=descent.float16)):  # fmt: skip
        with pytest.raises(RuntimeError, match="float16 without overflow"):
            f()
    # inf itself and float32 tensors are fine
    assert descent.isinf(x.masked_fill(x == 0, float("-inf"))).all()
    assert float(descent.zeros(2).masked_fill(descent.zeros(2) == 0, -1e9)[0]) == -1e9


def test_mask_times_minus_1e9_is_minus_zero_not_nan():
    """The regression of docs/pytorch.md: (1 - mask) * -1e9 on a float16 mask."""
    mask = descent.tensor([1.0, 0.0, 1.0], dtype=descent.float16)
    bias = (1 - mask) * -1e9
    assert bias.dtype == descent.float16
    assert not descent.isnan(bias).any()
    assert np.signbit(bias.numpy()[0]) and bias.numpy()[0] == 0
    assert np.isneginf(bias.numpy()[1])


@pytest.mark.parametrize("form", ["additive", "masked_fill_inf", "masked_fill_min", "where"])
def test_attention_mask_softmax_end_to_end(form):
    """The attention-mask idiom in half precision: scores masked then softmax, and its gradient
    (elementwise ops and softmax only: no matmul, so no BLAS rounding in the comparison). The
    masked scores are bitwise PyTorch's; softmax itself computes in float16 where PyTorch's
    kernel uses float32 (docs/pytorch.md), so its values and gradient are compared to a few
    float16 ulps, and the masked positions to exact zeros."""
    rng = np.random.default_rng(0)
    scores = (rng.standard_normal((2, 4, 6)) * 3).astype(np.float16)
    keep = np.tril(np.ones((6, 6), dtype=np.float16))[:4]  # (T, S) causal-like keep mask
    upstream = rng.standard_normal((2, 4, 6)).astype(np.float16)
    out = []
    for lib in (descent, torch):
        s = lib.tensor(scores, requires_grad=True)
        m = lib.tensor(keep)
        if form == "additive":
            z = s + (1 - m) * -1e9
        elif form == "masked_fill_inf":
            z = s.masked_fill(m == 0, float("-inf"))
        elif form == "masked_fill_min":
            z = s.masked_fill(m == 0, lib.finfo(lib.float16).min)
        else:
            z = lib.where(m == 0, -1e9, s)
        p = lib.softmax(z, dim=-1)
        p.backward(lib.tensor(upstream))
        out.append((z.detach(), p.detach(), s.grad))
    _same(out[0][0], out[1][0])  # the masked scores: -inf, -1e9 rounded, or finfo.min
    for a, b in zip(out[0][1:], out[1][1:]):
        assert a.dtype == descent.float16
        np.testing.assert_allclose(a.numpy().astype(np.float32), b.numpy().astype(np.float32),
                                   rtol=4e-3, atol=2e-4)  # fmt: skip
    p, g = out[0][1].numpy(), out[0][2].numpy()
    assert not np.isnan(p).any() and not np.isnan(g).any()
    hidden = np.broadcast_to(keep == 0, p.shape)
    assert (p[hidden] == 0).all() and (g[hidden] == 0).all()


def test_float32_and_float64_unchanged():
    """The float16 branch leaves wider dtypes to NumPy's arithmetic (the scalar in the tensor's
    dtype), which is PyTorch's there too."""
    for dt, tdt in ((descent.float32, torch.float32), (descent.float64, torch.float64)):
        v = np.linspace(-3, 3, 101)
        xd, xt = descent.tensor(v, dtype=dt), torch.tensor(v, dtype=tdt)
        for c in (0.1, 1 / 3, -1e9, 1e-8):
            _same(xd * c, xt * c)
            _same(xd / c, xt / c)
            _same(c / xd, c / xt)


_FINITE = _ALL[np.isfinite(_ALL)]


@pytest.mark.parametrize("name", ["hardsigmoid", "celu", "selu"])
def test_fused_activations_round_once(name):
    """Composites that PyTorch computes as one float32 kernel round once on float16 too (the
    `rounds_once` decorator, shared with bfloat16): hardsigmoid and celu bitwise with their
    gradients; selu within one ulp at a handful of the 63,490 finite values."""
    out = []
    for lib in (descent, torch):
        x = lib.tensor(_FINITE, requires_grad=True)
        y = getattr(lib.nn.functional, name)(x)
        y.backward(lib.ones_like(y))
        out.append((y.detach().numpy(), x.grad.numpy()))
    for d, t in zip(out[0], out[1]):
        assert d.dtype == np.float16
        if name == "selu":
            ulps = np.abs(d.view(np.int16).astype(np.int32) - t.view(np.int16).astype(np.int32))
            assert ulps.max() <= 1 and (ulps > 0).sum() <= 8
        else:
            _same(d, t)


def test_addcmul_and_lerp_with_tensors_round_once():
    w = np.linspace(-2, 2, _FINITE.size).astype(np.float16)
    rev = _FINITE[::-1].copy()
    got, want = (lib.addcmul(lib.tensor(_FINITE), lib.tensor(w), lib.tensor(rev))
                 for lib in (descent, torch))  # fmt: skip
    with np.errstate(all="ignore"):
        _same(got, want)
    got, want = (lib.lerp(lib.tensor(_FINITE), lib.tensor(rev), lib.tensor(w))
                 for lib in (descent, torch))  # fmt: skip
    d, t = got.numpy(), want.numpy()
    assert d.dtype == np.float16
    assert (d.view(np.uint16) != t.view(np.uint16)).sum() <= 4  # was 16,644 before rounds_once
