"""float16 computed in float32 and rounded once (PyTorch's CPU "opmath"): one mechanism.

descent/opmath.py (`in_float32` on arrays, for primitives) and ops/half.py (`in_float32` and
`rounds_once` on Tensors, for composites) are the only places that cast; each op calls them
behind one dtype test. These tests check the mechanism's contract: a float16 result is the
float32 result on the same (exactly widened) inputs, rounded once; float32 and float64 never
reach it; a float16 input gets a float16 gradient.
"""

import numpy as np
import pytest

import descent
import descent.nn.functional as F
from descent import array_backward, opmath
from descent.nn.functional import _attention, _loss, _loss_margin, _normalization, _vision
from descent.ops import activation, conv, elementwise, half, linear, softmax, special

RNG = np.random.default_rng(0)
X = (RNG.standard_normal((3, 41)) * 4).astype(np.float16)
X[0, :4] = [0, 12, -12, 3]

# Ops whose forward keeps its input for backward: both passes are the float32 pass, rounded.
INPUT_SAVING = {
    "silu": F.silu,
    "softplus": lambda x: F.softplus(x, beta=2.0, threshold=5.0),
    "hardswish": F.hardswish,
    "elu": lambda x: F.elu(x, alpha=0.7),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.1),
    "linear": lambda x: F.linear(x, x.detach()[:2], x.detach()[0, :2]),
    "sinc": descent.sinc,
    "mish": F.mish,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "cumsum": lambda x: descent.cumsum(x, 1),
    "gather": lambda x: descent.gather(x, 1, descent.tensor(np.array([[0, 0, 7, 7, 7]] * 3))),
    "index": lambda x: x[:, [0, 1, 1, 3, 3, 3]],
    "cummax": lambda x: descent.cummax(x, 1)[0],
    "mse": lambda x: F.mse_loss(x, x.flip(1)),
    # (layer_norm's forward is; its backward reads PyTorch's float16-rounded mean and 1/std:
    # tests/test_lowprec_reductions_s17.py)
    "interpolate": lambda x: F.interpolate(x[None], scale_factor=1.5, mode="linear"),
}
# Ops that keep their output: the forward is the float32 one rounded; backward reads the
# rounded (float16) output, as PyTorch's kernels do.
OUTPUT_SAVING = {
    "sigmoid": descent.sigmoid,
    "tanh": descent.tanh,
    "rsqrt": lambda x: descent.rsqrt(x.abs()),
    "softmax": lambda x: descent.softmax(x, 1),
    "log_softmax": lambda x: descent.log_softmax(x, 0),
}


# The float32 reference's gradient comes from the fused CPU kernel's derivative (numba), the
# float16 path's from the formula: they differ in float32's last bit, which can move a float16
# rounding by one unit.
ONE_ULP = {"gelu"}


def _value_and_grad(fn, x, gy):
    t = descent.tensor(x).requires_grad_(True)
    y = fn(t)
    (g,) = descent.autograd.grad([y], [t], [descent.tensor(gy.astype(x.dtype))])
    return y.detach().numpy(), g.detach().numpy()


def _bits(a):
    return np.ascontiguousarray(a).view(np.uint8)


@pytest.mark.parametrize("name", sorted(INPUT_SAVING))
def test_float16_is_float32_rounded_once(name):
    fn = INPUT_SAVING[name]
    gy = RNG.standard_normal(fn(descent.tensor(X)).shape).astype(np.float16)
    with np.errstate(all="ignore"):
        y16, g16 = _value_and_grad(fn, X, gy)
        y32, g32 = _value_and_grad(fn, X.astype(np.float32), gy.astype(np.float32))
    assert y16.dtype == g16.dtype == np.float16
    np.testing.assert_array_equal(_bits(y16), _bits(y32.astype(np.float16)))
    if name in ONE_ULP:
        ulps = np.abs(g16.view(np.int16).astype(int) - g32.astype(np.float16).view(np.int16))
        assert ulps.max() <= 1
    else:
        np.testing.assert_array_equal(_bits(g16), _bits(g32.astype(np.float16)))


@pytest.mark.parametrize("name", sorted(OUTPUT_SAVING))
def test_float16_output_saving_ops_round_once(name):
    fn = OUTPUT_SAVING[name]
    y16, g16 = _value_and_grad(fn, X, np.ones(X.shape, np.float16))
    y32, _ = _value_and_grad(fn, X.astype(np.float32), np.ones(X.shape, np.float32))
    np.testing.assert_array_equal(_bits(y16), _bits(y32.astype(np.float16)))
    assert g16.dtype == np.float16


def test_conv2d_float16_is_float32_rounded_once():
    x = RNG.standard_normal((2, 3, 6, 7)).astype(np.float16)
    w = (RNG.standard_normal((4, 3, 3, 3)) * 0.5).astype(np.float16)
    outs = {}
    for dt in (np.float16, np.float32):
        xt, wt = (descent.tensor(a.astype(dt)).requires_grad_(True) for a in (x, w))
        y = F.conv2d(xt, wt, padding=1)
        gy = descent.tensor(np.ones(y.shape, dt))
        outs[dt] = [
            y.detach().numpy(),
            *(g.numpy() for g in descent.autograd.grad([y], [xt, wt], [gy])),
        ]
    for a16, a32 in zip(outs[np.float16], outs[np.float32], strict=True):
        assert a16.dtype == np.float16
        np.testing.assert_array_equal(_bits(a16), _bits(a32.astype(np.float16)))


def test_float32_and_float64_never_reach_the_mechanism(monkeypatch):
    """The float32/float64 paths pay one dtype test: the casting helpers are never called."""

    def refuse(*args, **kwargs):
        raise AssertionError("a float32/float64 op went through in_float32")

    for mod in (activation, softmax, conv, special, array_backward, elementwise, linear):
        monkeypatch.setattr(mod, "in_float32", refuse)
    for mod in (_loss, _loss_margin, _vision, _normalization, _attention):
        monkeypatch.setattr(mod, "in_float32", refuse)
    for dt in (np.float32, np.float64):
        x = descent.tensor(X.astype(dt)).requires_grad_(True)
        outs = [fn(x) for fn in (*INPUT_SAVING.values(), *OUTPUT_SAVING.values())]
        outs.append(descent.sinc(x) + descent.erf(x))
        outs.append(F.conv2d(x[None, None], descent.ones((1, 1, 2, 2), dtype=dt)))
        outs.append(F.smooth_l1_loss(x, x.flip(0)) + F.huber_loss(x, x.flip(0)))
        outs.append(F.soft_margin_loss(x, x.sign()))
        outs.append(F.batch_norm(x, None, None, training=True))
        g = descent.tensor(RNG.random((1, 2, 2, 2)).astype(dt))
        outs.append(F.grid_sample(x[None, None, :, :6], g, align_corners=False))
        q = x[None, :, :8]
        outs.append(F.scaled_dot_product_attention(q, q, q))
        sum(o.sum() for o in outs).backward()
        assert x.grad.dtype == dt


def test_the_helpers():
    """Array level: float16 arrays up, float32 results down once, the rest untouched."""
    a = np.array([1, 1024], np.float16)  # float16's spacing at 1024 is 1
    out = opmath.in_float32(lambda u, c: (u + c + c + c, u.astype(np.int64), None), a, 0.25)
    assert out[0].dtype == np.float16 and out[1].dtype == np.int64 and out[2] is None
    np.testing.assert_array_equal(out[0], np.array([1.75, 1025], np.float16))  # float16: 1024
    # Tensor level: recorded casts, one rounding, float16 gradients; a float32 argument
    # stays float32 (its gradient too)
    x = descent.tensor(a).requires_grad_(True)
    w = descent.tensor(np.full(2, 0.25, np.float32)).requires_grad_(True)
    y = half.in_float32(lambda u, v: u + v + v + v, x, w)
    assert y.dtype == descent.float16
    np.testing.assert_array_equal(y.numpy(), np.array([1.75, 1025], np.float16))
    y.sum().backward()
    assert x.grad.dtype == descent.float16 and w.grad.dtype == descent.float32
    np.testing.assert_array_equal(w.grad.numpy(), [3, 3])


# -- float16 gradients as PyTorch's kernels compute them ------------------------------------
# Every finite float16 value through PyTorch's float16 CPU op and descent's, with one random
# cotangent: where descent reproduces PyTorch's rounding (its kernel's float32 formula, or its
# derivative formula's float16 ops), values and gradients are equal bit for bit.

torch = pytest.importorskip("torch")

ALL = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
ALL = ALL[np.isfinite(ALL)]
GY = np.random.default_rng(2).standard_normal(ALL.shape).astype(np.float16)

EVERY_VALUE = {
    # name: (function of a module and a tensor, input transform, forward and backward units in
    # the last place allowed; None: the forward is not PyTorch's)
    "tanh": (lambda m, x: m.tanh(x), None, 0, 0),  # tanh_backward kernel
    "hardswish": (lambda m, x: m.nn.functional.hardswish(x), None, 0, 0),  # hardswish_backward
    # elu_backward's kernel; PyTorch's exp and expm1 (Sleef) and NumPy's differ in float32's
    # last bit, which moves a few of the 63,488 float16 results (near a tie) by one unit
    "elu": (lambda m, x: m.nn.functional.elu(x), None, 1, 1),
    "elu_alpha": (lambda m, x: m.nn.functional.elu(x, alpha=0.7), None, 1, 1),
    "leaky_relu": (lambda m, x: m.nn.functional.leaky_relu(x, 0.1), None, 0, 0),
    "rsqrt": (lambda m, x: m.rsqrt(x), np.abs, 0, 0),  # -0.5 gy y.pow(3): float16 ops
    # 2/sqrt(pi) exp(-x^2) gy as float16 ops; PyTorch's float16 erf is 0 for the smallest
    # subnormal inputs (erf(6e-8) = 0) where descent's is rounded from float32's
    "erf": (lambda m, x: m.erf(x), None, None, 0),
    # PyTorch's derivative formulas as float16 ops, their constants kept in float32
    "erfc": (lambda m, x: m.special.erfc(x), None, None, 0),
    "log2": (lambda m, x: m.log2(x), np.abs, 0, 0),
    "log10": (lambda m, x: m.log10(x), np.abs, 1, 0),  # (NumPy's log10 and PyTorch's: 6 ulps)
    "exp2": (lambda m, x: m.exp2(x), None, 0, 0),
    "rpow": (lambda m, x: 2.5**x, lambda a: np.clip(a, -14, 14), 0, 0),  # gy * (y * log 2.5)
    # gy * cosh(x): cosh(1/32) is a float16 tie in float32 (PyTorch's 1) and just above it in
    # float64 (NumPy's float16 cosh, 1 + 2^-10): two values, two units apart
    "sinh": (lambda m, x: m.sinh(x), None, 0, 2),
}


def _run_all(mod, fn, x):
    t = mod.tensor(x).requires_grad_(True)
    y = fn(mod, t)
    y.backward(mod.tensor(GY))
    return y.detach().numpy(), t.grad.numpy()


def _ulps(a, b):
    """Units in the last place between float16 arrays (equal bits, nan with nan: 0)."""
    ia, ib = a.view(np.int16).astype(np.int64), b.view(np.int16).astype(np.int64)
    ia = np.where(ia < 0, -(ia & 0x7FFF), ia)  # sign-magnitude to a monotonic integer
    ib = np.where(ib < 0, -(ib & 0x7FFF), ib)
    d = np.abs(ia - ib)
    return np.where(np.isnan(a) & np.isnan(b), 0, d)


@pytest.mark.parametrize("name", sorted(EVERY_VALUE))
def test_float16_gradient_as_torch_over_every_value(name):
    fn, transform, fwd_ulps, bwd_ulps = EVERY_VALUE[name]
    x = ALL if transform is None else transform(ALL)
    with np.errstate(all="ignore"):
        ty, tg = _run_all(torch, fn, x)
        dy, dg = _run_all(descent, fn, x)
    assert dy.dtype == dg.dtype == np.float16
    if fwd_ulps is not None:
        assert _ulps(dy, ty).max() <= fwd_ulps
    assert _ulps(dg, tg).max() <= bwd_ulps
    assert (_ulps(dg, tg) > 0).sum() <= 8  # near-ties only


def _errors(fn, arrays, w_seed=3):
    """max and mean |error| from float64 (PyTorch's float64 on the same float16 inputs) of
    PyTorch's float16 result and descent's, for the output and each input gradient."""
    out = []
    arrays = [np.asarray(a, np.float16) for a in arrays]
    for mod, dt in ((torch, np.float64), (torch, np.float16), (descent, np.float16)):
        ts = [mod.tensor(a.astype(dt)).requires_grad_(True) for a in arrays]
        y = fn(mod, *ts)
        w = np.random.default_rng(w_seed).standard_normal(tuple(y.shape)).astype(np.float16)
        gs = mod.autograd.grad([y], ts, [mod.tensor(w.astype(dt))])
        assert y.dtype == (mod.float16 if dt == np.float16 else mod.float64)
        out.append([np.asarray(t.detach().numpy(), np.float64) for t in (y, *gs)])
    ref, t16, d16 = out
    return [(r, np.abs(t - r), np.abs(d - r)) for r, t, d in zip(ref, t16, d16, strict=True)]


R = np.random.default_rng(4)
PRODUCTS = {
    "addmm": (lambda m, c, a, b: m.addmm(c, a, b), [(32, 24), (32, 300), (300, 24)]),
    "addmm_scaled": (
        lambda m, c, a, b: m.addmm(c, a, b, beta=0.5, alpha=0.3),
        [(32, 24), (32, 300), (300, 24)],
    ),
    "addmv": (lambda m, c, a, b: m.addmv(c, a, b, beta=0.5, alpha=0.3), [(32,), (32, 300), (300,)]),
    "addr": (lambda m, c, a, b: m.addr(c, a, b, beta=0.5, alpha=0.3), [(32, 24), (32,), (24,)]),
    "baddbmm": (
        lambda m, c, a, b: m.baddbmm(c, a, b, beta=0.5, alpha=0.3),
        [(3, 16, 24), (3, 16, 200), (3, 200, 24)],
    ),
    "addbmm": (lambda m, c, a, b: m.addbmm(c, a, b), [(16, 24), (3, 16, 200), (3, 200, 24)]),
    "linear": (
        lambda m, x, w, b: m.nn.functional.linear(x, w, b),
        [(4, 16, 300), (24, 300), (24,)],
    ),
    "glu": (lambda m, x: m.nn.functional.glu(x, -1), [(64, 256)]),
    "conv3d": (lambda m, x, w: m.nn.functional.conv3d(x, w), [(2, 4, 6, 6, 6), (8, 4, 3, 3, 3)]),
    "conv_transpose2d": (
        lambda m, x, w, b: m.nn.functional.conv_transpose2d(x, w, b, stride=2),
        [(2, 16, 6, 6), (16, 8, 3, 3), (8,)],
    ),
    "conv_transpose1d": (
        lambda m, x, w: m.nn.functional.conv_transpose1d(x, w),
        [(2, 16, 30), (16, 8, 5)],
    ),
    # ldexp's exponent gradient (gy y) ln 2: ln 2 kept in float32 (NumPy rounded it: 1.45x)
    "ldexp": (lambda m, x, e: m.ldexp(x, e), [(64, 64), np.round(R.standard_normal((64, 64)) * 3)]),
    # NumPy's float16 einsum accumulates in float16 (8-12x PyTorch's error)
    "einsum": (lambda m, a, b: m.einsum("ij,jk->ik", a, b), [(32, 300), (300, 24)]),
    "einsum_batched": (lambda m, a, b: m.einsum("bij,bkj->bik", a, b), [(3, 8, 100), (3, 6, 100)]),
    "bce_with_logits": (
        lambda m, x, y: m.nn.functional.binary_cross_entropy_with_logits(x, y),
        [(64, 64), R.random((64, 64))],
    ),
    "bce_with_logits_sum": (
        lambda m, x, y: m.nn.functional.binary_cross_entropy_with_logits(
            x, y, reduction="sum", pos_weight=m.ones(64, dtype=x.dtype) * 2
        ),
        [(64, 64), R.random((64, 64))],
    ),
    "cdist": (lambda m, x, y: m.cdist(x, y), [(32, 16), (24, 16)]),  # (p != 2: no float16 there)
    "adaptive_avg_pool2d": (
        lambda m, x: m.nn.functional.adaptive_avg_pool2d(x, 3),
        [(2, 4, 31, 31)],
    ),
    # PyTorch's index_add and scatter_add accumulate float16 in float32 (NumPy's add.at
    # rounded each of the 29 repeats: 4x PyTorch's error)
    "index_add": (
        lambda m, x, y: x.index_add(0, m.tensor(np.arange(200) % 7), y, alpha=0.3),
        [(7, 16), (200, 16)],
    ),
    "scatter_add": (
        lambda m, x, y: x.scatter_add(0, m.tensor(np.arange(3200).reshape(200, 16) % 7), y),
        [(7, 16), (200, 16)],
    ),
}


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_float16_products_round_once(name):
    """Products (and glu) in float32, rounded once: each value within half a float16 unit of
    the float64 result (plus float32's accumulation error), whatever the BLAS kernel's order
    (so not bitwise against PyTorch), and no further from float64 than PyTorch's."""
    fn, shapes = PRODUCTS[name]
    arrays = [R.standard_normal(s) if isinstance(s, tuple) else s for s in shapes]
    for i, (ref, err_t, err_d) in enumerate(_errors(fn, arrays)):
        scale = max(1.0, float(np.abs(ref).max()))
        half_ulp = np.spacing(np.abs(ref).astype(np.float16)).astype(np.float64) / 2
        if i == 0 or name not in ("glu", "ldexp"):  # their gradients: PyTorch's order
            assert (err_d <= half_ulp + 1e-5 * scale).all(), (i, float(err_d.max()))
        assert err_d.max() <= err_t.max() + 1e-5 * scale, (i, err_d.max(), err_t.max())
        assert err_d.mean() <= err_t.mean() * 1.02 + 1e-7, (i, err_d.mean(), err_t.mean())


@pytest.mark.parametrize("lambd", [0.3, 0.5, 1.7])
def test_float16_softshrink_as_torch(lambd):
    """softshrink's kernel compares and shifts by lambd in float32 (NumPy rounded lambd to
    float16 first: x - 0.3 was 0 at x = float16(0.3) = 0.30005, PyTorch's 4.9e-5). PyTorch's
    backward compares with lambd rounded to float16: at x = +-float16(lambd) its gradient is 0
    where its forward took the outer piece; descent's follows its forward (gy) there."""
    f = lambda m, x: m.nn.functional.softshrink(x, lambd)  # noqa: E731
    ty, tg = _run_all(torch, f, ALL)
    dy, dg = _run_all(descent, f, ALL)
    np.testing.assert_array_equal(dy.view(np.uint16), ty.view(np.uint16))
    edge = np.abs(ALL) == np.float16(lambd)
    np.testing.assert_array_equal(dg[~edge].view(np.uint16), tg[~edge].view(np.uint16))
    if np.float16(lambd) > lambd:  # the edge lies outside in float32: gradient gy
        np.testing.assert_array_equal(dg[edge], GY[edge])
