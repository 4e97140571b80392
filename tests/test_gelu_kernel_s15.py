"""Session 15's kernel changes: the float32 GELU computes the same bits in every lane, in the
scalar remainder and on every core (explicit FMAs, no fast-math contraction), and layer norm's
backward (gw, gb accumulated in the row-sum pass) agrees with PyTorch's in float64.

Accuracy of the GELU itself: tests/test_gelu_accuracy.py.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

_EDGE = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-40, -3e-39, 14.4, -14.4,
                  14.5, -14.5, 13.2, -13.2, -0.7518, 3e38, -3e38], np.float32)  # fmt: skip


def _inputs(n: int = 4099) -> np.ndarray:
    rng = np.random.default_rng(15)
    x = (rng.standard_normal(n) * 4).astype(np.float32)
    x[: _EDGE.size] = _EDGE
    return x


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    na, nb = np.isnan(a), np.isnan(b)
    return np.array_equal(na, nb) and np.array_equal(a[~na].view(np.int32), b[~nb].view(np.int32))


def test_gelu_lanes_remainder_and_cores_give_the_same_bits():
    from descent.kernels import _cpu_fast as k

    x = _inputs()
    y, d = np.empty_like(x), np.empty_like(x)
    k.gelu_fwd_d32(x, y, d)  # 16-wide lanes and a scalar remainder (4099 = 256 * 16 + 3)
    ys, ds = np.empty_like(x), np.empty_like(x)
    one_y, one_d = np.empty(1, np.float32), np.empty(1, np.float32)
    for i in range(x.size):  # one value per call: the scalar loop only
        k.gelu_fwd_d32(x[i : i + 1], one_y, one_d)
        ys[i], ds[i] = one_y[0], one_d[0]
    assert _same_bits(y, ys) and _same_bits(d, ds)
    for shift in (1, 5, 13):  # each value in another lane
        y2, d2 = np.empty(x.size - shift, np.float32), np.empty(x.size - shift, np.float32)
        k.gelu_fwd_d32(x[shift:], y2, d2)
        assert _same_bits(y2, y[shift:]) and _same_bits(d2, d[shift:])
    yp, dp = np.empty_like(x), np.empty_like(x)
    k.gelu_fwd_d32_par(x, yp, dp)
    assert _same_bits(yp, y) and _same_bits(dp, d)
    yf = np.empty_like(x)
    k.gelu_fwd32(x, yf)
    assert _same_bits(yf, y)
    k.gelu_fwd32_par(x, yf)
    assert _same_bits(yf, y)
    gy = np.random.default_rng(1).standard_normal(x.size).astype(np.float32)
    gx, gxp = np.empty_like(x), np.empty_like(x)
    k.gelu_bwd32(x, gy, gx)
    k.gelu_bwd32_par(x, gy, gxp)
    assert _same_bits(gx, gy * d) and _same_bits(gxp, gx)


def test_gelu_clamp_edge_is_zero_density_and_exact_cdf():
    """Beyond |x| = 14.4 the CDF is exactly 0 or 1 in float32 and the density 0: the clamp
    (which keeps 2^(n + 24) a normal float) changes no value."""
    from descent.kernels import _cpu_fast as k

    x = np.array([14.4, 14.5, 20.0, 1e30, -14.4, -14.5, -20.0, -1e30], np.float32)
    y, d = np.empty_like(x), np.empty_like(x)
    k.gelu_fwd_d32(x, y, d)
    np.testing.assert_array_equal(y, np.where(x > 0, x, -0.0))
    np.testing.assert_array_equal(d, np.where(x > 0, 1.0, 0.0).astype(np.float32))
    assert np.signbit(y[4:]).all()


@pytest.mark.parametrize("has_w", [True, False])
@pytest.mark.parametrize("need_wb", [True, False])
@pytest.mark.parametrize("d", [128, 65, 7])
def test_layer_norm_backward_matches_torch_float64(has_w, need_wb, d):
    torch = pytest.importorskip("torch")
    from descent.kernels import _cpu_jit as jit

    rng = np.random.default_rng(d)
    x = (rng.standard_normal((37, d)) * 3 + 1).astype(np.float32)
    gy = rng.standard_normal((37, d)).astype(np.float32)
    w = (1 + 0.3 * rng.standard_normal(d)).astype(np.float32)
    b = (0.3 * rng.standard_normal(d)).astype(np.float32)
    eps = np.float32(1e-5)
    y, mean, rstd = np.empty_like(x), np.empty(37, np.float32), np.empty(37, np.float32)
    jit.layer_norm_fwd32(x, w, b, y, mean, rstd, eps, has_w, True, 0, 37)
    gx, gw, gb = np.empty_like(x), np.zeros(d, np.float32), np.zeros(d, np.float32)
    jit.layer_norm_bwd32(x, w, gy, mean, rstd, gx, gw, gb, has_w, True, need_wb, 0, 37)
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    wt = torch.from_numpy(w.astype(np.float64)).requires_grad_()
    bt = torch.from_numpy(b.astype(np.float64)).requires_grad_()
    yt = torch.nn.functional.layer_norm(xt, (d,), wt if has_w else None, bt, float(eps))
    yt.backward(torch.from_numpy(gy.astype(np.float64)))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-4, atol=5e-6)
    if need_wb:
        np.testing.assert_allclose(gw, wt.grad.numpy() if has_w else (gy * (y - b)).sum(0),
                                   rtol=1e-4, atol=5e-5)  # fmt: skip
        np.testing.assert_allclose(gb, bt.grad.numpy(), rtol=1e-5, atol=5e-6)
    # gw, gb alone (no gx): the row loop without the sums
    gw2, gb2 = np.zeros(d, np.float32), np.zeros(d, np.float32)
    jit.layer_norm_bwd32(x, w, gy, mean, rstd, x, gw2, gb2, has_w, False, True, 0, 37)
    np.testing.assert_allclose(gw2, gw if need_wb else gw2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gb2, bt.grad.numpy(), rtol=1e-5, atol=5e-6)
