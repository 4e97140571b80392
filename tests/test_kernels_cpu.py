"""descent.kernels.cpu: the numba kernels agree with the pure-NumPy path they replace.

Each op runs twice on the same inputs, once with the CPU kernels and once with them turned off
(`kernels.cpu.set_enabled(False)`, what DESCENT_KERNELS=numpy does), and the values and
gradients must agree to float32 rounding (float64: to 1e-12). Without numba the kernels cannot
run; the NumPy path is then covered by every other test, and these comparisons are skipped with
that reason.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest

import descent
from descent import backend
from descent.kernels import cpu

needs_numba = pytest.mark.skipif(not cpu.available(), reason="numba (the 'fast' extra) missing")


@contextlib.contextmanager
def kernels(flag: bool):
    previous = cpu.set_enabled(flag) if (flag is False or cpu.available()) else None
    try:
        yield
    finally:
        if previous is not None:
            cpu.set_enabled(previous)


def _gelu_value_and_grad(x_np: np.ndarray, gy_np: np.ndarray):
    x = descent.tensor(x_np, dtype=x_np.dtype, requires_grad=True)
    y = descent.nn.functional.gelu(x)
    y.backward(descent.tensor(gy_np, dtype=gy_np.dtype))
    return y.numpy(), x.grad.numpy()


def test_dispatch_follows_switch():
    x = np.zeros(3, np.float32)
    with kernels(False):
        assert backend.fused("gelu_forward", x) is None
    if cpu.available():
        with kernels(True):
            assert backend.fused("gelu_forward", x) is cpu.gelu_forward
            assert backend.fused("no_such_kernel", x) is None
            assert backend.fused("gelu_forward", x.astype(np.float16)) is None
            assert backend.fused("gelu_backward", x, x.astype(np.float64)) is None


@needs_numba
@pytest.mark.parametrize("dtype, rtol, atol", [(np.float32, 1e-6, 2e-6), (np.float64, 1e-12, 0)])
@pytest.mark.parametrize("shape", [(0,), (7,), (3, 5, 64)])
def test_gelu_kernel_matches_numpy_path(dtype, rtol, atol, shape):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    if x.size:
        x.flat[0] = 0.0
    if x.size > 2:
        x.flat[1], x.flat[2] = -12.0, 12.0  # tails: Phi saturates at 0 and 1
    gy = rng.standard_normal(shape).astype(dtype)
    with kernels(True):
        y_k, g_k = _gelu_value_and_grad(x, gy)
    with kernels(False):
        y_n, g_n = _gelu_value_and_grad(x, gy)
    assert y_k.dtype == y_n.dtype == dtype and g_k.dtype == dtype
    np.testing.assert_allclose(y_k, y_n, rtol=rtol, atol=atol)
    np.testing.assert_allclose(g_k, g_n, rtol=rtol, atol=atol)


@needs_numba
def test_gelu_kernel_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((4, 33)).astype(np.float32) * 4
    gy = np.random.default_rng(2).standard_normal((4, 33)).astype(np.float32)
    with kernels(True):
        y, g = _gelu_value_and_grad(x, gy)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.gelu(tx)
    ty.backward(torch.tensor(gy))
    # |x| reaches ~14 here: float32 rounding of y ~ x alone is ~1e-6 (the NumPy path's too).
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(g, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


@needs_numba
def test_gelu_kernel_noncontiguous_and_broadcast_grad():
    x = np.random.default_rng(3).standard_normal((6, 8)).astype(np.float32)
    xt = x.T  # a non-contiguous view
    with kernels(True):
        y = cpu.gelu_forward(xt)
        g = cpu.gelu_backward(xt, np.float32(2.0))  # a scalar upstream gradient
    with kernels(False):
        y_n, g_n = _gelu_value_and_grad(np.ascontiguousarray(xt), np.full(xt.shape, 2, np.float32))
    np.testing.assert_allclose(y, y_n, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g, g_n, rtol=1e-6, atol=1e-6)


@needs_numba
def test_gelu_double_backward_takes_the_composite_path():
    # create_graph=True must not reach the array-only kernel: second derivatives still work.
    x = descent.tensor([0.3, -1.2], dtype=np.float64, requires_grad=True)
    with kernels(True):
        (g,) = descent.autograd.grad(descent.nn.functional.gelu(x).sum(), [x], create_graph=True)
        g.sum().backward()
    v = x._data
    pdf = np.exp(-v * v / 2) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(x.grad.numpy(), pdf * (2 - v * v), rtol=1e-10)


def test_env_switch_numpy_turns_kernels_off():
    env = dict(os.environ, DESCENT_KERNELS="numpy")
    code = (
        "import numpy as np; from descent import backend; from descent.kernels import cpu; "
        "assert not cpu.enabled(); "
        "assert backend.fused('gelu_forward', np.zeros(2, np.float32)) is None"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)


def test_env_switch_rejects_unknown_value():
    env = dict(os.environ, DESCENT_KERNELS="fortran")
    r = subprocess.run(
        [sys.executable, "-c", "import descent.kernels.cpu"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode != 0 and "DESCENT_KERNELS" in r.stderr


def _sdpa_value_and_grads(q, k, v, go, causal):
    ts = [descent.tensor(a, dtype=a.dtype, requires_grad=True) for a in (q, k, v)]
    y = descent.nn.functional.scaled_dot_product_attention(*ts, is_causal=causal)
    y.backward(descent.tensor(go, dtype=go.dtype))
    return [y.numpy()] + [t.grad.numpy() for t in ts]


U32 = 2.0**-24  # float32's unit roundoff


def _sdpa_rounding_bound(q, k, v, go, causal):
    """Elementwise bound on |kernel path - NumPy path| for (y, dq, dk, dv) of attention.

    The two paths share every matrix product's inputs and differ in the softmax: its exp (the
    kernel's `_exp32` is within 1.5 ulp for a <= 0, test_exp32_accuracy_and_specials; NumPy's 1),
    the rounding of exp's argument a = s - max(s) (an absolute error of u|a| there is a
    relative error of u|a| in exp(a)) and the order of the row sum (gamma_Lk). So each path's
    probabilities carry a relative error of at most rel = u (4 + max|a|) + gamma_Lk per row,
    and the two differ by at most 2 rel P. First-order propagation through y = P v,
    dv = P^T dy, dS = P (dP - rowsum(P dP)) and dq = scale dS k, dk = scale dS^T q, with each
    product's own rounding (gamma_n of its inner length n, in both paths: factor 2), bounds
    the differences by the magnitudes below, computed in float64.
    """
    q, k, v, go = (a.astype(np.float64) for a in (q, k, v, go))
    lq, lk = q.shape[-2], k.shape[-2]

    def gamma(n):
        return n * U32 / (1 - n * U32)

    def t(a):
        return a.swapaxes(-1, -2)

    scale = 1 / np.sqrt(q.shape[-1])
    s = scale * q @ t(k)
    if causal:  # top-left aligned, as the op (and PyTorch's is_causal)
        s = np.where(np.triu(np.ones((lq, lk), bool), 1), -np.inf, s)
    a = s - s.max(-1, keepdims=True)
    p = np.exp(a) / np.exp(a).sum(-1, keepdims=True)
    max_abs_a = np.where(np.isfinite(a), np.abs(a), 0).max(-1, keepdims=True)
    rel = U32 * (4 + max_abs_a) + gamma(lk)
    dp_err = 2 * rel * p  # |P_kernel - P_numpy|
    y = dp_err @ np.abs(v) + 2 * gamma(lk) * (p @ np.abs(v))
    dv = t(dp_err) @ np.abs(go) + 2 * gamma(lq) * (t(p) @ np.abs(go))
    dP = np.abs(go @ t(v))
    ds_mag = p * (dP + (p * dP).sum(-1, keepdims=True))  # what |dS| sums, term by term
    ds_err = 2 * (rel + gamma(lk + v.shape[-1])) * ds_mag
    dq = scale * (ds_err @ np.abs(k) + 2 * gamma(lk) * (ds_mag @ np.abs(k)))
    dk = scale * (t(ds_err) @ np.abs(q) + 2 * gamma(lq) * (t(ds_mag) @ np.abs(q)))
    return y, dq, dk, dv


@needs_numba
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("lq, lk", [(7, 7), (5, 9)])
def test_attention_softmax_kernel_matches_numpy_path(causal, lq, lk):
    rng = np.random.default_rng(4)
    q = rng.standard_normal((2, 3, lq, 8)).astype(np.float32) * 2
    k = rng.standard_normal((2, 3, lk, 8)).astype(np.float32) * 2
    v = rng.standard_normal((2, 3, lk, 4)).astype(np.float32)
    go = rng.standard_normal((2, 3, lq, 4)).astype(np.float32)
    with kernels(True):
        got = _sdpa_value_and_grads(q, k, v, go, causal)
    with kernels(False):
        want = _sdpa_value_and_grads(q, k, v, go, causal)
    # The tolerance is the rounding bound, plus one rounding of the stored result. (A fixed
    # rtol=1e-5 used to stand here: dq's elements, sums with cancellation in dS, came to 0.75
    # of it, the worst depending on OPENBLAS_CORETYPE. Measured against this bound, the
    # differences reach at most 0.15 of it, with every coretype tried: SkylakeX, Haswell,
    # Prescott.)
    bounds = _sdpa_rounding_bound(q, k, v, go, causal)
    for name, a, b, bound in zip(("y", "dq", "dk", "dv"), got, want, bounds, strict=True):
        err = np.abs(a.astype(np.float64) - b)
        tol = bound + U32 * np.abs(b)
        assert (err <= tol).all(), (name, (err / np.maximum(tol, 1e-300)).max())


@needs_numba
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_softmax_kernels_against_float64_reference(log, causal):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((3, 6, 6)) * 4).astype(np.float32)
    x[0, 0, 0] = 1e4  # a large logit: relative to the row max, still exact
    gy = rng.standard_normal(x.shape).astype(np.float32)
    scale = 0.7
    z = x.astype(np.float64) * scale
    if causal:
        z = np.where(np.triu(np.ones((6, 6), bool), 1), -np.inf, z)
    z = z - z.max(-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    y_ref = z - np.log(np.exp(z).sum(-1, keepdims=True)) if log else p
    y = cpu.softmax_forward(x, scale=scale, causal=causal, log=log)
    np.testing.assert_allclose(y, y_ref, rtol=2e-6, atol=1e-7)
    if causal and log:
        return  # log-softmax with a mask has no caller (the CUDA kernel assumes the same)
    g64 = gy.astype(np.float64)
    if log:
        g_ref = scale * (g64 - p * g64.sum(-1, keepdims=True))
    else:
        g_ref = scale * p * (g64 - (g64 * p).sum(-1, keepdims=True))
    np.testing.assert_allclose(cpu.softmax_backward(y, gy, scale=scale, log=log), g_ref,
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    g_in = gy.copy()  # in place, as the attention op calls it
    out = cpu.softmax_backward(y, g_in, scale=scale, log=log, out=g_in)
    assert out is g_in
    np.testing.assert_allclose(g_in, g_ref, rtol=1e-5, atol=1e-6)


@needs_numba
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_softmax_kernel_specials_match_torch(log, causal):
    """Rows holding NaN, +-inf, all -inf and huge values: the row maxima come from a loop
    compiled with 'nnan' (vectorised), so a NaN's row must still be all NaN, as in PyTorch."""
    torch = pytest.importorskip("torch")
    nan, inf = np.nan, np.inf
    rows = np.array([[1, 2, nan, 0, 5, 1, 0, 2], [inf, 1, 2, 3, 0, 0, 1, 1], [-inf] * 8,
                     [-inf, 1, -inf, 2, 0, -inf, 3, 1], [inf, inf, 0, 0, 1, 2, 3, 4],
                     [1e30, -1e30, 0, 3, 2, 1, 0, -1], [nan] * 8, [0, nan, 1, 2, 3, 4, 5, 6]],
                    np.float32)  # fmt: skip
    x = np.tile(rows, (5, 1, 5))[..., :40].reshape(5, 8, 40)[:, :, :8].copy()  # (5, 8, 8)
    x[1:] = np.roll(x[1:], 3, axis=-1)  # NaN / inf at other columns, some masked when causal
    scale = 0.5
    t = torch.tensor(x) * scale
    if causal:
        t = t.masked_fill(torch.ones(8, 8, dtype=torch.bool).triu(1), -inf)
    want = (torch.log_softmax(t, -1) if log else torch.softmax(t, -1)).numpy()
    got = cpu.softmax_forward(x, scale=scale, causal=causal, log=log)
    if causal:  # masked entries are never computed: 0 (-inf for log) even in a NaN row, where
        # PyTorch's are NaN; P v's row is NaN either way. Compare the visible entries.
        hide = np.broadcast_to(np.triu(np.ones((8, 8), bool), 1), x.shape)
        assert (got[hide] == (-inf if log else 0.0)).all()
        got, want = got[~hide], want[~hide]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    fin = np.isfinite(want)
    np.testing.assert_array_equal(got[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)])
    np.testing.assert_allclose(got[fin], want[fin], rtol=2e-6, atol=1e-7)


@needs_numba
def test_exp32_accuracy_and_specials():
    import numba

    from descent.kernels import _cpu_jit

    @numba.njit
    def exp_all(a, out):
        for i in range(a.size):
            out[i] = _cpu_jit._exp32(a[i])

    x = np.linspace(-87, 88, 200_001).astype(np.float32)
    out = np.empty_like(x)
    exp_all(x, out)
    ref = np.exp(x.astype(np.float64))
    ulp = np.abs(out - ref) / np.spacing(ref.astype(np.float32)).astype(np.float64)
    assert ulp.max() <= 5.0  # all float32: the reduction's error grows with |n|
    assert ulp[x <= 0][-20_000:].max() <= 1.5  # [-17, 0]: the softmax's range (z - max)
    special = np.array([np.nan, np.inf, -np.inf, -100.0, 100.0, 0.0], np.float32)
    out = np.empty_like(special)
    exp_all(special, out)
    np.testing.assert_array_equal(out, [np.nan, np.inf, 0.0, 0.0, np.inf, 1.0])


def _layer_norm_value_and_grads(x, w, b, gy):
    ts = [None if a is None else descent.tensor(a, dtype=a.dtype, requires_grad=True)
          for a in (x, w, b)]  # fmt: skip
    y = descent.nn.functional.layer_norm(ts[0], (x.shape[-1],), ts[1], ts[2], eps=1e-5)
    y.backward(descent.tensor(gy, dtype=gy.dtype))
    return [y.numpy()] + [t.grad.numpy() for t in ts if t is not None]


@needs_numba
@pytest.mark.parametrize("affine", ["none", "w", "wb"])
def test_layer_norm_kernel_matches_numpy_path(affine):
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((3, 5, 24)) * 3 + 1).astype(np.float32)
    w = rng.standard_normal(24).astype(np.float32) if affine != "none" else None
    b = rng.standard_normal(24).astype(np.float32) if affine == "wb" else None
    gy = rng.standard_normal(x.shape).astype(np.float32)
    with kernels(True):
        got = _layer_norm_value_and_grads(x, w, b, gy)
    with kernels(False):
        want = _layer_norm_value_and_grads(x, w, b, gy)
    for a, b_ in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b_, rtol=1e-5, atol=2e-6)


@needs_numba
def test_layer_norm_kernel_stats_and_partial_grads():
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((10, 16)) + 5).astype(np.float32)
    y, mean, rstd = cpu.layer_norm_forward(x, None, None, 1e-5)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean, x64.mean(1), rtol=1e-6)
    np.testing.assert_allclose(rstd, 1 / np.sqrt(x64.var(1) + 1e-5), rtol=1e-5)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    gx, gw, gb = cpu.layer_norm_backward(x, None, gy, mean, rstd, need_x=True, need_wb=False)
    assert gw is None and gb is None and gx.shape == x.shape
    gx2, gw2, gb2 = cpu.layer_norm_backward(x, None, gy, mean, rstd, need_x=False, need_wb=True)
    assert gx2 is None
    np.testing.assert_allclose(gb2, gy.astype(np.float64).sum(0), rtol=1e-5, atol=1e-5)
    xhat = (x64 - x64.mean(1, keepdims=True)) / np.sqrt(x64.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(gw2, (gy * xhat).sum(0), rtol=1e-4, atol=1e-5)


def _adam_run(cls, opts, steps=5):
    rng = np.random.default_rng(8)
    p = descent.nn.Parameter(descent.tensor(rng.standard_normal(1000).astype(np.float32)))
    q = descent.nn.Parameter(descent.tensor(rng.standard_normal((7, 3)).astype(np.float32)))
    opt = cls([p, q], **opts)
    for _ in range(steps):
        p.grad = descent.tensor(rng.standard_normal(p.shape).astype(np.float32))
        q.grad = descent.tensor(rng.standard_normal(q.shape).astype(np.float32))
        opt.step()
    return p.numpy().copy(), q.numpy().copy()


@needs_numba
@pytest.mark.parametrize(
    "cls, opts",
    [
        ("Adam", dict(lr=1e-2)),
        ("Adam", dict(lr=1e-2, weight_decay=0.1, maximize=True)),
        ("Adam", dict(lr=1e-2, weight_decay=1.0, betas=(0.3, 0.9))),  # lerp's second form
        ("AdamW", dict(lr=1e-3, weight_decay=0.1, betas=(0.9, 0.99))),
    ],
)
def test_adam_kernel_is_bitwise_the_numpy_path(cls, opts):
    cls = getattr(descent.optim, cls)
    with kernels(True):
        got = _adam_run(cls, opts)
    with kernels(False):
        want = _adam_run(cls, opts)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


@needs_numba
@pytest.mark.parametrize("name", ["erf", "erfc"])
def test_libm_erf_loops_give_pythons_bits(name):
    """descent.erfc and erfinv's Newton steps call erf/erfc per element: numba's loop over the
    C library gives Python's math.erf/erfc bits (signed zeros, nan, infinities, subnormals)."""
    import math

    from descent import backend
    from descent.ops import special

    rng = np.random.default_rng(4)
    x = np.concatenate([rng.standard_normal(20_000) * 4,
                        [np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, 27.0, -6.0]])
    fn = getattr(math, name)
    assert backend.fused(f"{name}_float64", x) is not None  # the loop, not Python calls
    got = special._elementwise(fn, x)
    ref = np.array([fn(v) for v in x])
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(ref))
    x0 = np.float64(-0.0).reshape(())  # 0-d stays 0-d
    assert special._elementwise(fn, x0).shape == ()


def test_float32_erf_is_rounded_from_the_c_library():
    # backend.erf: float32 through the float64 libm loop, rounded once (A&S 7.1.26 in float32
    # was up to 3e-7 off: 5 ulp at erf(0.5)). Within 1 ulp of the correctly rounded value.
    import math

    rng = np.random.default_rng(0)
    edges = [0.0, -0.0, 1e-30, -1e-38, 1e-45, 0.5, 3.9, -3.9]
    x = np.concatenate([rng.uniform(-6, 6, 20000), rng.normal(0, 1e-3, 2000), edges])
    x = x.astype(np.float32)
    got = descent.erf(descent.tensor(x)).numpy()
    assert got.dtype == np.float32
    want = np.array([math.erf(float(v)) for v in x], np.float64).astype(np.float32)
    ulps = np.abs(got.view(np.int32).astype(np.int64) - want.view(np.int32).astype(np.int64))
    assert ulps.max() <= 1, (x[ulps.argmax()], got[ulps.argmax()], want[ulps.argmax()])
    assert np.array_equal(np.signbit(got), np.signbit(want))
