"""The causal softmax in 16-lane chunks (`kernels/_cpu_simd`, called by `_cpu_jit.softmax_fwd32`).

Session 30 (helper-226; docs/compile.md): attention's causal rows (1..T long) ran their
exponentials in LLVM's scalar remainder loop; they now run in explicit `<16 x float>` vectors
whose lanes past the row's limit are masked, and the row sum is lane k over its chunks, then the
16 lanes by halves. Eager and descent.compile's replay call the same kernel, so they agree bit
for bit (tests/test_compile_s21_kernels.py); here: the vector exponential's error, the stated
summation order (bitwise), the values against float64 and PyTorch over rows of 1..130 columns,
log and scaled forms, NaN/inf inputs (masked garbage never read), and gradients (float64 finite
differences, float32 against PyTorch).
"""

from __future__ import annotations

import numpy as np
import pytest

numba = pytest.importorskip("numba")

import descent  # noqa: E402
import descent.nn.functional as F  # noqa: E402

_F32 = np.float32
_COLS = [1, 2, 3, 15, 16, 17, 31, 32, 33, 48, 64, 65, 100, 127, 128, 130]


@pytest.fixture(scope="module")
def k():
    from descent.kernels import _cpu_jit, _cpu_simd

    @numba.njit
    def exp16(x, out):
        _cpu_simd.exp_chunks(x, out)

    return _cpu_jit, exp16


def _causal_ref64(x, scale, n_q, log):
    """float64 softmax (or log-softmax) of scale * x with key j > query r % n_q masked."""
    n_rows, n_cols = x.shape
    lim = np.minimum(np.arange(n_rows) % n_q + 1, n_cols)
    keep = np.arange(n_cols)[None, :] < lim[:, None]
    z = np.where(keep, float(_F32(scale)) * x.astype(np.float64), -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    return (z - np.log(s)) if log else e / s, keep


def test_vector_exponential_error_and_specials(k):
    _, exp16 = k
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-87, 88, 200_003), rng.uniform(-20, 0, 200_000)])
    x = x.astype(_F32)[None, :]
    out = np.full((1, x.size + 5), 7.0, _F32)  # the masked tail writes nothing past the row
    exp16(x, out[:, : x.size])
    assert (out[0, x.size :] == 7.0).all()
    got = out[0, : x.size].astype(np.float64)
    ref = np.exp(x[0].astype(np.float64))
    ulp = np.abs(got - ref) / np.spacing(ref.astype(_F32)).astype(np.float64)
    assert ulp.max() <= 5.0
    assert ulp[-200_000:].max() <= 1.5  # [-20, 0]: the softmax's range
    special = np.array([[np.nan, np.inf, -np.inf, 100.0, -100.0, 0.0, -0.0, 88.8, -87.4]], _F32)
    got = np.empty_like(special)
    exp16(special, got)
    np.testing.assert_array_equal(got[0], [np.nan, np.inf, 0.0, np.inf, 0.0, 1.0, 1.0, np.inf, 0.0])


def _lanes_then_halves(e):
    """The stated order: lane j % 16 adds its values in chunk order, then the lanes by halves."""
    lanes = np.zeros(16, _F32)
    for j in range(e.size):
        lanes[j % 16] = _F32(lanes[j % 16] + e[j])
    w = 16
    while w > 1:
        w //= 2
        lanes = (lanes[:w] + lanes[w : 2 * w]).astype(_F32)
    return lanes[0]


@pytest.mark.parametrize("scale", [1.0, 0.5])
@pytest.mark.parametrize("n_cols", [5, 16, 33, 64, 130])
def test_causal_rows_sum_in_the_stated_order(k, n_cols, scale):
    """Bitwise: p_j = e_j * (1 / s), e_j = the vector exponential of z_j = x_j scale - m (exact
    products for these scales, one rounding as the kernel's FMA), s summed as stated. Fails for
    the order before (one running sum, session 29)."""
    jit, exp16 = k
    rng = np.random.default_rng(n_cols)
    n_q = n_cols
    x = (rng.standard_normal((n_q, n_cols)) * 3).astype(_F32)
    got = x.copy()
    jit.softmax_fwd32(got, _F32(scale), n_q, True, False)
    for r in range(n_q):
        lim = min(n_cols, r + 1)
        v = x[r, :lim].astype(np.float64) * scale  # exact
        z = (v - v.max()).astype(_F32)[None, :]  # exact in float64, then one rounding
        e = np.empty_like(z)
        exp16(z, e)
        s = _lanes_then_halves(e[0])
        want = e[0] * (_F32(1.0) / s)
        np.testing.assert_array_equal(got[r, :lim], want, err_msg=f"row {r}")
        assert (got[r, lim:] == 0).all()


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("scale", [0.17, 1.0, -0.5])
def test_causal_rows_against_float64(k, scale, log):
    jit, _ = k
    rng = np.random.default_rng(7)
    for n_cols in _COLS:
        for n_q in sorted({n_cols, max(1, n_cols // 2), n_cols + 3}):
            x = (rng.standard_normal((2 * n_q, n_cols)) * 4).astype(_F32)
            got = x.copy()
            jit.softmax_fwd32(got, _F32(scale), n_q, True, log)
            ref, keep = _causal_ref64(x, scale, n_q, log)
            if log:
                assert (got[~keep] == -np.inf).all()
                np.testing.assert_allclose(got[keep], ref[keep], rtol=5e-7, atol=5e-7)
            else:
                assert (got[~keep] == 0).all()
                np.testing.assert_allclose(got, ref, rtol=8e-7, atol=1e-12)
                np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("log", [False, True])
def test_causal_rows_with_nan_and_inf(k, log):
    """A visible NaN or +inf makes its row NaN (PyTorch's result) and the masked columns stay
    0 (-inf for log); a visible -inf is probability 0; a row whose visible values are all -inf
    is NaN. What the masked columns held is never read."""
    jit, _ = k
    n_q = n_cols = 37
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((n_q, n_cols)) * 2).astype(_F32)
    x[np.triu_indices(n_q, 1)] = np.nan  # masked garbage
    x[20, 3] = np.nan
    x[25, 0] = np.inf
    x[30, 7] = -np.inf
    x[5, :6] = -np.inf  # all visible -inf
    x[33, 34:] = np.inf  # masked inf
    got = x.copy()
    jit.softmax_fwd32(got, _F32(0.3), n_q, True, log)
    clean = np.where(np.tril(np.ones((n_q, n_cols), bool)), x, 0).astype(_F32)
    want = clean.copy()
    jit.softmax_fwd32(want, _F32(0.3), n_q, True, log)
    np.testing.assert_array_equal(got, want)  # masked NaN/inf changed nothing
    fill = -np.inf if log else 0.0
    for r in (5, 20, 25):
        assert np.isnan(got[r, : r + 1]).all(), r
        assert (got[r, r + 1 :] == fill).all(), r
    assert got[30, 7] == fill
    row = x[30, :31].astype(np.float64) * float(_F32(0.3))
    e = np.exp(row - row.max())
    want30 = (row - row.max() - np.log(e.sum())) if log else e / e.sum()
    np.testing.assert_allclose(got[30, :31], want30, rtol=1e-6, atol=1e-7)


def test_split_rows_give_the_whole_calls_bits(k):
    """Any split at a multiple of n_q gives the whole call's bits (eager's and the replay's
    halves)."""
    jit, _ = k
    rng = np.random.default_rng(5)
    n_q = n_cols = 64
    x = (rng.standard_normal((6 * n_q, n_cols)) * 3).astype(_F32)
    for log in (False, True):
        whole, parts = x.copy(), x.copy()
        jit.softmax_fwd32(whole, _F32(0.125), n_q, True, log)
        for i0, i1 in ((0, 2 * n_q), (2 * n_q, 6 * n_q)):
            jit.softmax_fwd32(parts[i0:i1], _F32(0.125), n_q, True, log)
        np.testing.assert_array_equal(parts, whole)


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("t", [1, 5, 16, 17, 64, 130])
def test_causal_attention_float32_matches_pytorch(t):
    rng = np.random.default_rng(t)
    q, kk, v = (rng.standard_normal((2, 3, t, 8)).astype(_F32) for _ in range(3))
    go = rng.standard_normal((2, 3, t, 8)).astype(_F32)
    dq, dk, dv = (descent.tensor(a, requires_grad=True) for a in (q, kk, v))
    out = F.scaled_dot_product_attention(dq, dk, dv, is_causal=True)
    out.backward(descent.tensor(go))
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, kk, v))
    tout = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
    tout.backward(torch.tensor(go))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    for a, b in ((dq, tq), (dk, tk), (dv, tv)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("t", [5, 33, 130])
def test_causal_softmax_and_log_softmax_scores_match_pytorch(k, t):
    """The kernel's causal rows against PyTorch's softmax / log_softmax of the masked scores
    (float32), scaled."""
    jit, _ = k
    rng = np.random.default_rng(t)
    x = (rng.standard_normal((3 * t, t)) * 5).astype(_F32)
    mask = torch.tril(torch.ones(t, t, dtype=torch.bool)).repeat(3, 1)
    scores = torch.tensor(x) * float(_F32(0.7))
    scores = scores.masked_fill(~mask, float("-inf"))
    for log in (False, True):
        got = x.copy()
        jit.softmax_fwd32(got, _F32(0.7), t, True, log)
        want = (torch.log_softmax if log else torch.softmax)(scores, dim=-1).numpy()
        keep = mask.numpy()
        np.testing.assert_allclose(got[keep], want[keep], rtol=2e-6, atol=1e-6 if log else 1e-9)
        np.testing.assert_array_equal(got[~keep], want[~keep])


@pytest.mark.parametrize("t", [3, 17])
def test_causal_attention_float64_finite_differences(t):
    rng = np.random.default_rng(11 + t)
    args = [descent.tensor(rng.standard_normal((1, 2, t, 4)), dtype=descent.float64,
                           requires_grad=True) for _ in range(3)]  # fmt: skip
    assert descent.autograd.gradcheck(
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True, scale=0.7), args
    )


def test_causal_rows_run_packed_masked_vectors():
    """The chunks compile to packed masked loads (AVX-512: zmm under a k mask; AVX2:
    vmaskmovps), not to a scalar loop: a change that scalarised them would keep every
    value (so no test above would notice) and lose the speed."""
    binding = pytest.importorskip("llvmlite.binding")
    features = binding.get_host_cpu_features()
    if not (features.get("avx2") and features.get("fma")):
        pytest.skip("looks for x86-64 AVX2/FMA (or AVX-512) instructions")
    import re

    from descent.kernels import _cpu_jit

    kernel = _cpu_jit.softmax_fwd32
    opts = {k: v for k, v in kernel.targetoptions.items() if k not in ("cache", "nopython")}
    fresh = numba.njit(**opts)(kernel.py_func)  # numba shows no code for a cached kernel
    fresh(np.zeros((8, 64), _F32), _F32(0.5), 8, True, False)
    asm = fresh.inspect_asm(fresh.signatures[0])
    # masked vector loads (HEAD before session 30 had none: LLVM's loops load unmasked)
    if features.get("avx512f"):
        masked = re.findall(
            r"^\s*vmov(ups|aps)\s+[^\n]*\([^\n]*\),\s*%zmm\d+\s*\{%k\d\}", asm, re.M
        )
        fmas = re.findall(r"^\s*vfmadd\w*ps\s[^\n]*%zmm", asm, re.M)
    else:
        masked = re.findall(r"^\s*vmaskmovps\s+[^\n]*\(", asm, re.M)
        fmas = re.findall(r"^\s*vfmadd\w*ps\s[^\n]*%ymm", asm, re.M)
    assert len(masked) >= 4, "the causal rows' masked loads are not packed"
    assert len(fmas) >= 8, "the 16-lane exponential's FMAs are not packed"
