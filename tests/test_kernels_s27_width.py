"""descent's numba kernels prefer 512-bit vectors on an AVX-512 target (kernels/_numba_width).

LLVM's Intel AVX-512 tunings (skylake-avx512 onwards) prefer 256-bit vectors, so numba compiled
descent's float32 loops 8 lanes wide on such hosts; `_numba_width` sets the function attribute
`"prefer-vector-width"="512"` on descent's own functions only (docs/compile.md, "Session 27
(helper-193)"). These tests read a fresh compile's LLVM IR and machine code, compare the two
widths' results on edge values (elementwise kernels: the same bits; reductions: within a few
ulp, nan/inf where the other width has them), and check the cache key keeps the widths apart.
"""

from __future__ import annotations

import re
import sys
import types

import numpy as np
import pytest

numba = pytest.importorskip("numba")
binding = pytest.importorskip("llvmlite.binding")

from descent.kernels import _cpu_fast, _cpu_jit, _numba_width  # noqa: E402

_AVX512 = bool(binding.get_host_cpu_features().get("avx512f"))
needs_avx512 = pytest.mark.skipif(not _AVX512, reason="the attribute is set on AVX-512 targets")
_ATTR = '"prefer-vector-width"="512"'


@pytest.fixture
def narrow():
    """Compile with LLVM's own width inside the test (restored after)."""
    _numba_width.WIDE[0] = False
    yield
    _numba_width.WIDE[0] = True


def _fresh(kernel):
    """A fresh (uncached) compile of a descent kernel: the same function, compiled now."""
    options = {k: v for k, v in kernel.targetoptions.items() if k not in ("cache", "nopython")}
    return numba.njit(**options)(kernel.py_func)


def _gelu_args(x):
    return x, np.empty_like(x), np.empty_like(x)


def _edge_values():
    tiny = np.finfo(np.float32).tiny
    vals = [0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, tiny, -tiny, tiny / 8, -tiny / 8,
            1e-45, -1e-45, 1e-20, 3.4e38, -3.4e38, 5.0, -5.0, 10.0, -10.0, 0.5, -0.5]  # fmt: skip
    rng = np.random.default_rng(0)
    rest = rng.standard_normal(1000).astype(np.float32) * 4
    return np.concatenate([np.array(vals, np.float32), rest]).astype(np.float32)


def test_installed_with_the_kernels_package():
    from numba.core import caching, codegen

    assert getattr(codegen.CPUCodeLibrary.add_ir_module, "_descent_vector_width", False)
    assert getattr(caching.Cache._index_key, "_descent_vector_width", False)
    assert _numba_width.install() is True  # idempotent


@needs_avx512
def test_descent_kernel_gets_the_attribute_and_zmm_registers():
    x = np.linspace(-5, 5, 64, dtype=np.float32)
    fresh = _fresh(_cpu_fast.gelu_fwd_d32)
    fresh(*_gelu_args(x))
    sig = fresh.signatures[0]
    assert _ATTR in fresh.inspect_llvm(sig)
    asm = fresh.inspect_asm(sig)
    # the loop's packed FMAs on 512-bit registers (LLVM's Intel tuning alone gives ymm)
    assert re.search(r"^\s*vf(n)?m(add|sub)\w*ps\s[^\n]*%zmm", asm, re.M)


@needs_avx512
def test_switched_off_gives_llvms_choice(narrow):
    x = np.linspace(-5, 5, 64, dtype=np.float32)
    fresh = _fresh(_cpu_fast.gelu_fwd_d32)
    fresh(*_gelu_args(x))
    assert _ATTR not in fresh.inspect_llvm(fresh.signatures[0])


def test_other_modules_functions_keep_llvms_tuning():
    """A numba function defined outside descent gets no attribute (and no cache-key mark)."""
    mod = types.ModuleType("not_descent_h193")
    src = "def scale(x, out):\n    for i in range(x.size):\n        out[i] = x[i] * 2.5\n"
    exec(compile(src, "<not_descent_h193>", "exec"), mod.__dict__)
    sys.modules[mod.__name__] = mod
    try:
        f = numba.njit(mod.scale)
        x = np.ones(64, np.float32)
        f(x, np.empty_like(x))
        assert _ATTR not in f.inspect_llvm(f.signatures[0])
    finally:
        del sys.modules[mod.__name__]


def test_cache_key_marks_descent_functions_only_on_avx512():
    from numba.core.registry import cpu_target

    gen = cpu_target.target_context.codegen()
    sig = (numba.float32[::1],)
    ours = _cpu_fast.gelu_fwd_d32._cache
    key = ours._index_key(sig, gen)
    assert (key[-1] == _ATTR) is _AVX512
    _numba_width.WIDE[0] = False
    try:
        narrow_key = ours._index_key(sig, gen)
    finally:
        _numba_width.WIDE[0] = True
    assert _ATTR not in narrow_key
    assert key[:3] == narrow_key[:3]


def _both_widths(kernel, run):
    """run(compiled kernel) under the 512-bit preference and under LLVM's own."""
    wide = run(_fresh(kernel))
    _numba_width.WIDE[0] = False
    try:
        narrow = run(_fresh(kernel))
    finally:
        _numba_width.WIDE[0] = True
    return wide, narrow


@pytest.mark.parametrize("size", [1, 15, 16, 17, 1021])
def test_gelu_same_bits_at_both_widths_on_edge_values(size):
    """GELU's forward, its derivative and backward are elementwise: the lane count cannot
    change a value, including -0.0, nan, inf and subnormals."""
    x = _edge_values()[:size].copy()
    gy = np.resize(_edge_values()[::-1], x.size).astype(np.float32)

    def fwd(k):
        y, d = np.empty_like(x), np.empty_like(x)
        k(x, y, d)
        return y, d

    def bwd(k):
        out = np.empty_like(x)
        k(x, gy, out)
        return (out,)

    for kernel, run in ((_cpu_fast.gelu_fwd_d32, fwd), (_cpu_fast.gelu_bwd32, bwd)):
        wide, narrow = _both_widths(kernel, run)
        for a, b in zip(wide, narrow, strict=True):
            assert a.tobytes() == b.tobytes(), kernel.__name__


def test_softmax_and_layer_norm_close_at_both_widths_with_edge_values():
    """Reductions under fastmath's reassoc may add in another order 16 lanes wide: a few ulp
    apart, never a different nan/inf pattern."""
    rng = np.random.default_rng(1)
    s = rng.standard_normal((96, 64)).astype(np.float32) * 3
    s[3, 5], s[7, 0], s[9, :] = np.inf, np.nan, -np.inf
    s[11, 2], s[12, 4] = -0.0, np.finfo(np.float32).tiny / 4

    def softmax(k):
        y = s.copy()
        k(y, np.float32(0.25), 32, True, False)
        return y

    wide, narrow = _both_widths(_cpu_jit.softmax_fwd32, softmax)
    np.testing.assert_array_equal(np.isnan(wide), np.isnan(narrow))
    np.testing.assert_allclose(wide, narrow, rtol=4e-7, atol=0)

    x = rng.standard_normal((64, 128)).astype(np.float32)
    x[2, 3], x[5, 0], x[6, 1] = -0.0, np.finfo(np.float32).tiny / 8, np.inf
    w = rng.standard_normal(128).astype(np.float32)
    b = rng.standard_normal(128).astype(np.float32)

    def ln(k):
        y, mean, rstd = np.empty_like(x), np.empty(64, np.float32), np.empty(64, np.float32)
        k(x, w, b, y, mean, rstd, np.float32(1e-5), True, True, 0, 64)
        return y, mean, rstd

    (yw, mw, rw), (yn, mn, rn) = _both_widths(_cpu_jit.layer_norm_fwd32, ln)
    for a, c in ((yw, yn), (mw, mn), (rw, rn)):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(c))
        finite = np.isfinite(a) & np.isfinite(c)
        np.testing.assert_allclose(a[finite], c[finite], rtol=2e-6, atol=1e-6)
