"""The float32 elementwise kernels that eager and the replay share stay vectorised.

The exact GELU (`kernels/_cpu_fast.gelu_*32`) and the softmax loop (`kernels/_cpu_jit`) are
written so that LLVM turns them into packed float32 code (docs/compile.md, "Session 18
(helper-122)"): on an AVX-512 core the GELU forward with its derivative runs 23 multiplies or
FMAs and one division per 16 values, at the FMA units' throughput (188 us over baby-gpt's 393k
values, one core). A float64 literal, a libm call or a branch that LLVM cannot turn into a
select would silently make them scalar (several times slower) without changing a single bit, so no
value test would notice; these tests read the machine code instead. Not timed: they look for
packed instructions.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

numba = pytest.importorskip("numba")
binding = pytest.importorskip("llvmlite.binding")

_FEATURES = binding.get_host_cpu_features()
pytestmark = pytest.mark.skipif(
    not (_FEATURES.get("avx2") and _FEATURES.get("fma")),
    reason="the packed forms looked for are x86-64 AVX2/FMA (or AVX-512) instructions",
)

# a packed float32 FMA on a 256- or 512-bit register (vfmadd213ps %zmm1, %zmm2, %zmm3)
_PACKED_FMA = re.compile(r"^\s*vf(n)?m(add|sub)\w*ps\s[^\n]*%[yz]mm", re.M)
_PACKED_DIV = re.compile(r"^\s*vdivps\s[^\n]*%[yz]mm", re.M)
# double-precision arithmetic or a float -> double conversion (a float64 literal's promotion)
_DOUBLE = re.compile(r"^\s*v(add|sub|mul|div|f\w*m(add|sub)\w*|sqrt)[sp]d\s|cvtss2sd|cvtps2pd",
                     re.M)  # fmt: skip


def _asm(kernel, *args) -> str:
    """The machine code of a fresh (uncached) compile of `kernel` for these arguments: numba
    returns nothing to inspect for a kernel loaded from its cache."""
    options = {k: v for k, v in kernel.targetoptions.items() if k not in ("cache", "nopython")}
    fresh = numba.njit(**options)(kernel.py_func)
    fresh(*args)
    return fresh.inspect_asm(fresh.signatures[0])


@pytest.fixture(scope="module")
def fast():
    from descent.kernels import _cpu_fast

    return _cpu_fast


def _vector(n=64):
    return np.linspace(-5, 5, n, dtype=np.float32)


@pytest.mark.parametrize("name", ["gelu_fwd_d32", "gelu_bwd32"])
def test_gelu_kernels_are_packed_float32(fast, name):
    x = _vector()
    args = (x, np.empty_like(x), np.empty_like(x))
    asm = _asm(getattr(fast, name), *args)
    assert len(_PACKED_FMA.findall(asm)) >= 15, "the Phi/phi polynomials did not vectorise"
    assert _PACKED_DIV.search(asm), "Mills' ratio's division did not vectorise"
    assert not _DOUBLE.search(asm), "float64 arithmetic in a float32 kernel"


def test_softmax_loop_is_packed_float32():
    """Eager's and the replay's softmax (`_cpu_jit.softmax_fwd32`): its exponential, all
    float32, vectorises (the causal rows' scalar remainders are measured in the docs)."""
    from descent.kernels import _cpu_jit

    x = np.zeros((8, 64), np.float32)
    asm = _asm(_cpu_jit.softmax_fwd32, x, np.float32(0.5), 8, True, False)
    assert len(_PACKED_FMA.findall(asm)) >= 6, "the exponential's polynomial did not vectorise"
    assert not _DOUBLE.search(asm), "float64 arithmetic in the float32 softmax"
