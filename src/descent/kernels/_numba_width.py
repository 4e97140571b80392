"""descent's numba kernels use 512-bit vectors on AVX-512 cores whose LLVM tuning prefers 256.

LLVM tunes its Intel AVX-512 targets (skylake-avx512 onwards: icelake, sapphirerapids,
emeraldrapids, ...) with `prefer-256-bit`: the loop vectoriser then uses ymm registers, 8
float32 lanes, although zmm (16 lanes) exist. The tuning dates from Skylake-SP, whose 512-bit
instructions lowered the core's clock for the whole program. numba compiles for the host with
LLVM's tuning, so on such a host descent's float32 loops (exact GELU, the causal softmax, layer
norm, the fused optimizers) ran 8 lanes wide while AMD's Zen 4 got 16 (docs/compile.md,
"Session 27 (helper-193)": GELU's forward 214 -> 152 us on baby-gpt's 393k values, one core of
an Emerald Rapids host, with 16 lanes).

`install()` (run when `descent.kernels` is first imported, like `_numba_cache` and
`_numba_startup`) sets the LLVM function attribute `"prefer-vector-width"="512"` on the functions
of every LLVM module numba builds for a function defined in descent's own modules, where the
codegen's target has AVX-512F. It is a per-function attribute: the rest of the process (another
library's numba functions, numba's own helpers) keeps LLVM's tuning, and so does every host
without AVX-512 (the attribute is not set there, so nothing changes, not even the cache keys).

The vector width is part of the machine code, not of a function's meaning, but the kernels are
compiled with fastmath's `reassoc` (kernels/_cpu_jit.py): a reduction vectorised 16 lanes wide
adds in another order than 8 lanes wide, so the last bits of a sum (softmax's row sums, layer
norm's statistics, a gradient norm) differ between the two widths, as they already differ between
an AVX2 host and an AVX-512 one. Eager and the compiled replay call the same kernels, so they
still agree bit for bit. The on-disk cache keeps the two apart: `install()` adds the preferred
width to the cache key of descent's functions on such a host, so a cache written before (8
lanes) is not loaded for the 16-lane code, and `WIDE[0] = False` (before a process's first
kernel compiles or loads) gives LLVM's own choice and its cache entries back (the A/B switch).
"""

from __future__ import annotations

_MARK = "_descent_vector_width"
_ATTRIBUTE = '"prefer-vector-width"="512"'
_MANGLED = "_ZN7descent"  # numba's mangled name of a function in a module named descent.*

#: Whether descent's kernels prefer 512-bit vectors on an AVX-512 target (read at each compile
#: and cache look-up; switch it before the process's first kernel call).
WIDE = [True]


def _wide_target(codegen) -> bool:
    features = getattr(codegen, "_tm_features", "") or ""
    return WIDE[0] and "+avx512f" in features.split(",")


def _is_descent_function(py_func) -> bool:
    module = getattr(py_func, "__module__", None) or ""
    return module == "descent" or module.startswith("descent.")


def install() -> bool:
    """Install the attribute and the cache key's mark (once). True when installed (now or
    before); nothing without numba or where numba's classes have changed."""
    try:
        from numba.core import caching, codegen  # noqa: PLC0415 - only where numba is used
    except ImportError:
        return False
    lib = getattr(codegen, "CPUCodeLibrary", None)
    add = getattr(lib, "add_ir_module", None)
    cache = getattr(caching, "Cache", None)
    index_key = getattr(cache, "_index_key", None)
    if not (callable(add) and callable(index_key)):
        return False
    if getattr(add, _MARK, False):
        return True

    def add_ir_module(self, ir_module):
        if _wide_target(getattr(self, "codegen", None)):
            defined = [f for f in ir_module.functions if f.blocks]
            if any(_MANGLED in f.name for f in defined):
                for f in defined:
                    # llvmlite's FunctionAttributes accepts only enum attributes by name; a
                    # string attribute is written as it is into the function's definition
                    set.add(f.attributes, _ATTRIBUTE)
        return add(self, ir_module)

    def _index_key_wide(self, sig, target_codegen):
        key = index_key(self, sig, target_codegen)
        if _wide_target(target_codegen) and _is_descent_function(getattr(self, "_py_func", None)):
            key = (*key, _ATTRIBUTE)
        return key

    for f, orig in ((add_ir_module, add), (_index_key_wide, index_key)):
        f.__doc__, f.__wrapped__ = orig.__doc__, orig
        setattr(f, _MARK, True)
    lib.add_ir_module = add_ir_module
    cache._index_key = _index_key_wide
    return True
