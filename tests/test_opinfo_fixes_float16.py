"""float16 fixes found by running PyTorch's OpInfo database in float16 (tests/opinfo_harness.py).

PyTorch computes most float16 CPU ops in float32 and rounds once; NumPy's float16 loops round
every step. Each test runs the same function in torch float16, descent float16 and torch
float64 (the float16 inputs taken exactly), and checks that descent's values and gradients are
float16, agree with PyTorch's, and are no further from the float64 truth than PyTorch's.
"""

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # opinfo_harness imports PyTorch's test utilities

from opinfo_harness import _closer_to_truth  # noqa: E402


def _run(mod, fn, arrays, dtype, weights):
    """fn's output and the gradients of sum(out * weights) for the inputs, as float64 arrays."""
    ts = [mod.tensor(a.astype(dtype)).requires_grad_(True) for a in arrays]
    out = fn(mod, *ts)
    assert str(out.dtype).endswith(str(np.dtype(dtype)))
    w = mod.tensor(weights.astype(dtype))
    grads = mod.autograd.grad([out], ts, [w])
    for g in grads:
        assert str(g.dtype).endswith(str(np.dtype(dtype)))
    as64 = [np.asarray(t.detach().numpy(), np.float64) for t in (out, *grads)]
    return as64[0], as64[1:]


def _ulps(b, a, scale):
    """The largest distance between float16 arrays, in units of the last place of a (at least
    of 2^-4 scale: below, float32's own rounding of a cancellation shows); equal values,
    infinities included, are 0 apart."""
    floor = np.float16(min(2.0**-4 * scale, 65504))
    sp = np.spacing(np.maximum(np.abs(a), floor).astype(np.float16)).astype(np.float64)
    with np.errstate(invalid="ignore"):
        d = np.where(a == b, 0.0, np.abs(b - a) / sp)
    return float(np.max(d)) if a.size else 0.0


def _check(fn, arrays, out_shape, slack=1.0, rtol=1e-2, ulps=None, vs_torch=True):
    """descent float16 against torch float16 (rtol, atol scaled by the largest value; with
    `ulps`, elementwise within that many units in the last place) and against the float64 truth
    (its max error at most `slack` times torch's, plus 2^-14 of the largest value)."""
    arrays = [np.asarray(a, np.float16) for a in arrays]
    w = np.random.default_rng(1).standard_normal(out_shape).astype(np.float16)
    # PyTorch's float16 kernels split rows per thread (layer_norm's weight sums, softmax) and
    # descent follows its own thread count (get_num_threads): the oracle runs at that count, so
    # that a one-thread xdist worker compares like with like
    threads = torch.get_num_threads()
    torch.set_num_threads(descent.get_num_threads())
    try:
        ref, rg = _run(torch, fn, arrays, np.float64, w)
        t, tg = _run(torch, fn, arrays, np.float16, w)
    finally:
        torch.set_num_threads(threads)
    d, dg = _run(descent, fn, arrays, np.float16, w)
    for r, a, b in zip([ref, *rg], [t, *tg], [d, *dg], strict=True):
        scale = max(1.0, float(np.abs(r).max()))
        if vs_torch:
            np.testing.assert_allclose(b, a, rtol=rtol, atol=1e-3 * scale)
        if ulps is not None:
            assert _ulps(b, a, scale) <= ulps, _ulps(b, a, scale)
        err_t, err_d = np.abs(a - r).max(), np.abs(b - r).max()
        assert err_d <= slack * err_t + 2.0**-14 * np.abs(r).max(), (err_d, err_t)


def _f(mod):
    return torch.nn.functional if mod is torch else descent.nn.functional


def test_log_softmax_float16_computes_in_float32_and_rounds_once():
    x = np.random.default_rng(0).standard_normal((16, 300)) * 4
    _check(lambda m, a: m.log_softmax(a, 1), [x], (16, 300))


def test_linear_cross_entropy_float16_probability_targets():
    # OpInfo sample 41's shapes: K-dimensional logits (N, C, 1, 2, 1) from a (C, 1, 2, 1, in)
    # weight; the target's class probabilities. The gradient of the input was 15% off at
    # -0.0103 (log_softmax's float16 backward).
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((4, 2)) * 2, rng.standard_normal((2, 1, 2, 1, 2)) * 2
    p = rng.random((4, 2, 1, 2, 1))
    p = p / p.sum(1, keepdims=True)

    def lce(m, a, b, t):
        return _f(m).linear_cross_entropy(a, b, t, reduction="none")

    _check(lce, [x, w, p], (4, 1, 2, 1))


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [False, True])
def test_grid_sample_bicubic_float16_grid_gradient(padding_mode, align):
    # descent's float16 chain of cubic weights put the grid's gradient 0.24 from float64 where
    # PyTorch's is 0.02 off; in float32 descent is 10-100x closer than PyTorch. Compared with
    # torch at the float16 tolerance OpInfo uses, and against float64.
    rng = np.random.default_rng(3)
    x, g = rng.standard_normal((2, 3, 5, 5)), rng.uniform(-1.1, 1.1, (2, 5, 5, 2))

    def gs(m, a, b):
        return _f(m).grid_sample(a, b, mode="bicubic", padding_mode=padding_mode,
                                 align_corners=align)  # fmt: skip

    w = np.random.default_rng(1).standard_normal((2, 3, 5, 5)).astype(np.float16)
    arrays = [x.astype(np.float16), g.astype(np.float16)]
    ref, rg = _run(torch, gs, arrays, np.float64, w)
    t, tg = _run(torch, gs, arrays, np.float16, w)
    d, dg = _run(descent, gs, arrays, np.float16, w)
    for r, a, b in zip([ref, *rg], [t, *tg], [d, *dg], strict=True):
        scale = float(np.abs(r).max())
        assert np.abs(b - r).max() <= 2.0**-10 * scale  # within an ulp of the largest value
        assert np.abs(b - r).max() <= np.abs(a - r).max()


def test_cumsum_float16_backward_accumulates_in_float32():
    # the gradient is a reversed running sum of 4096 terms: NumPy's float16 one was 30x
    # further from float64 than PyTorch's
    x = np.random.default_rng(4).standard_normal((8, 4096))
    _check(lambda m, a: m.cumsum(a, 1), [x], (8, 4096))


def test_softplus_float16_in_float32():
    x = np.random.default_rng(5).standard_normal((64, 512)) * 6
    _check(lambda m, a: _f(m).softplus(a, beta=0.7, threshold=5.0), [x], (64, 512), ulps=1)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_float16_gradient_in_float32(reduction):
    # 'mean' over 2^18 elements: g / N alone is a float16 subnormal (PyTorch scales in float32)
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((64, 4096)), rng.standard_normal((64, 4096))
    shape = (64, 4096) if reduction == "none" else ()
    _check(
        lambda m, a, b: _f(m).mse_loss(a, b, reduction=reduction), [x, y], shape, rtol=2e-2, ulps=2
    )


def test_float32_paths_unchanged():
    # the float16 branches sit behind a dtype test: float32 stays float32 end to end
    x = descent.randn(4, 6, requires_grad=True)
    g = descent.randn(1, 5, 5, 2, requires_grad=True)
    outs = [
        x.log_softmax(1), x.cumsum(1), descent.nn.functional.softplus(x),
        descent.nn.functional.mse_loss(x, x.detach() * 0.5),
        descent.nn.functional.grid_sample(x.reshape(1, 1, 4, 6), g, mode="bicubic",
                                          align_corners=False),
    ]  # fmt: skip
    for o in outs:
        assert o.dtype == descent.float32
        (gx,) = descent.autograd.grad([o.sum()], [x])
        assert gx.dtype == descent.float32


def test_harness_float16_referee():
    # tests/opinfo_harness.py accepts a float16 value that differs from torch's when it is no
    # further from the float64 result than torch's (torch's overflow to inf, its half steps)
    ref = np.array([178.15, 0.0, 2.5, 1e5, -3.0])
    torch16 = np.array([np.inf, 0.0039, 2.5, np.nan, -3.0], np.float16)
    good = np.array([178.1, 0.0, 2.5, np.inf, -3.0], np.float16)  # 1e5 rounds to inf
    bad = np.array([170.0, 0.5, 2.0, 65504.0, np.nan], np.float16)
    assert _closer_to_truth(torch16, good, ref, 1e-2, 1e-3).all()
    assert not _closer_to_truth(torch16, bad, ref, 1e-2, 1e-3)[1:].any()


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_soft_margin_loss_float16_no_overflow(reduction):
    # OpInfo's sample: y x down to -30, where float16's exp(-y x) overflows: PyTorch's float16
    # loss is inf and its gradient nan/inf at 40 of 125 entries; descent's (float32, rounded
    # once) is finite and within float16's rounding of the float64 values
    rng = np.random.default_rng(7)
    x = rng.uniform(-9, 9, (5, 5, 5)).astype(np.float16)
    y = rng.uniform(-9, 9, (5, 5, 5)).astype(np.float16)
    shape = (5, 5, 5) if reduction == "none" else ()
    w = np.random.default_rng(1).standard_normal(shape).astype(np.float16)

    def sml(m, a):  # the target takes no gradient (PyTorch refuses one)
        return _f(m).soft_margin_loss(a, m.tensor(y).to(a.dtype), reduction=reduction)

    ref, (rgx,) = _run(torch, sml, [x], np.float64, w)
    t, (tgx,) = _run(torch, sml, [x], np.float16, w)
    d, (dgx,) = _run(descent, sml, [x], np.float16, w)
    assert not np.isfinite(tgx).all()  # PyTorch's float16 gradient overflows
    with np.errstate(over="ignore"):
        ref16, rg16 = ref.astype(np.float16), rgx.astype(np.float16)
    np.testing.assert_allclose(d, ref16.astype(np.float64), rtol=2e-3)
    np.testing.assert_allclose(dgx, rg16.astype(np.float64), rtol=2e-3, atol=1e-6)
    fin = np.isfinite(t)
    np.testing.assert_allclose(d[fin], t[fin], rtol=1e-2, atol=1e-3)  # where torch is finite


@pytest.mark.parametrize("affine", [False, True])
def test_layer_norm_float16_in_float32(affine):
    # float16 statistics and backward sums were an ulp off where PyTorch's are within half
    rng = np.random.default_rng(8)
    x = rng.standard_normal((64, 512)) * 3 + 2
    if not affine:
        _check(lambda m, a: _f(m).layer_norm(a, (512,)), [x], (64, 512))
        return
    w, b = rng.standard_normal(512), rng.standard_normal(512)
    _check(lambda m, a, c, d: _f(m).layer_norm(a, (512,), c, d), [x, w, b], (64, 512))


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_float16_in_float32(training):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((32, 8, 64)) * 3 + 2
    w, b = rng.standard_normal(8), rng.standard_normal(8)
    stats = {}

    def bn(m, a, c, d):
        rm = m.tensor(np.linspace(-1, 1, 8)).to(a.dtype)
        rv = m.tensor(np.linspace(0.5, 2, 8)).to(a.dtype)
        stats[m] = (rm, rv)
        return _f(m).batch_norm(a, rm, rv, c, d, training=training)

    _check(bn, [x, w, b], (32, 8, 64))
    # the running statistics (descent's and torch's float16 runs: the last two) stay float16
    (drm, drv), (trm, trv) = stats[descent], stats[torch]
    assert drm.dtype == descent.float16 and drv.dtype == descent.float16
    np.testing.assert_allclose(drm.numpy(), trm.numpy(), rtol=2e-3, atol=1e-3)
    np.testing.assert_allclose(drv.numpy(), trv.numpy(), rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize("loss", ["smooth_l1_loss", "huber_loss"])
def test_smooth_l1_and_huber_float16_gradient_in_float32(loss):
    # 'mean' over 2^18 elements: the float16 chain's g / N lies in float16's subnormals (its
    # gradient 2.2x further from float64 than PyTorch's, which scales in float32)
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((64, 4096)) * 2, rng.standard_normal((64, 4096))
    _check(lambda m, a, b: getattr(_f(m), loss)(a, b), [x, y], ())


def test_cummax_and_gather_float16_backward_scatter_adds_in_float32():
    # a running maximum collects the gradients of every later position: NumPy's float16
    # add.at rounded each one in (50x further from float64 than PyTorch's)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((8, 4096))
    x[:, 0] = 9.0  # the first element is the running maximum of its whole row
    _check(lambda m, a: m.cummax(a, 1)[0], [x], (8, 4096))
    idx = rng.integers(0, 3, (8, 4096))

    def gather(m, a):
        return m.gather(a, 1, m.tensor(idx))

    # gather and indexing with 4096 repeats of 3 positions: PyTorch's float16 scatter-add
    # rounds each repeat too (0.47 from descent's at |g| 27): compared with float64 only
    _check(gather, [x], (8, 4096), vs_torch=False)
    _check(lambda m, a: a[:, m.tensor(idx[0])], [x], (8, 4096), vs_torch=False)


@pytest.mark.parametrize("act", ["sigmoid", "silu", "mish", "gelu", "gelu_tanh"])
def test_activations_float16_in_float32(act):
    # float16 steps put silu's gradient 7x, mish's 4.5x, gelu's 2.6x and sigmoid's output and
    # gradient ~2.5x further from float64 than PyTorch's (which computes in float32)
    x = np.random.default_rng(12).standard_normal((64, 1024)) * 4

    def fn(m, a):
        if act == "sigmoid":
            return m.sigmoid(a)
        if act == "gelu_tanh":
            return _f(m).gelu(a, approximate="tanh")
        return getattr(_f(m), act)(a)

    _check(fn, [x], (64, 1024))


@pytest.mark.parametrize("width", [8, 24])  # both column layouts (batch-last below 16)
def test_conv2d_float16_backward_in_float32(width):
    # col2im's overlapping patches and the per-image weight products summed in float16: the
    # input gradient 3x further from float64 than PyTorch's
    rng = np.random.default_rng(13)
    x, w = rng.standard_normal((4, 16, width, width)), rng.standard_normal((8, 16, 3, 3))
    b = rng.standard_normal(8)
    shape = (4, 8, width - 2, width - 2)
    _check(lambda m, a, c, d: _f(m).conv2d(a, c, d), [x, w, b], shape)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_interpolate_float16_in_float32(mode):
    # float16 interpolation weights and products: ~1.7x further from float64 than PyTorch's
    x = np.random.default_rng(14).standard_normal((2, 16, 32, 32)) * 3

    def up(m, a):
        return _f(m).interpolate(a, scale_factor=1.7, mode=mode, recompute_scale_factor=False)

    _check(up, [x], (2, 16, 54, 54))
