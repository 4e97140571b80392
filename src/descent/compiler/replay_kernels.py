"""Replay-only kernels that round differently from eager (off with `options={"exact": True}`).

Eager's GELU and attention-softmax kernels (`kernels/_cpu_jit`) compute their exponentials
with a float64 range reduction (see `kernels/_cpu_fast`): on the baby-gpt step GELU's forward
and backward took 12 ms of a 76 ms replay on one core. A replay runs the all-float32 twins
instead:

* exact GELU, forward and backward (float32, C-contiguous NumPy arrays): `_cpu_fast.gelu_*`,
  one thread or every core (`threads.Tuned`, above `fusion.PARALLEL_MIN` elements); output
  into a pool buffer;
* scaled dot-product attention's forward without a user mask, an additive bias or dropout
  (the causal mask is fine): eager's code (the same two products), with the softmax pass
  `_cpu_fast.softmax_fwd32` in place of `_cpu_jit.softmax_fwd32`; the saved probabilities
  and so the backward follow from it.

Rounding against eager: exp within 1.4 ulp of the float64 exp on [-20, 0] (4.5 ulp at worst
near 88); GELU and its derivative within ~1e-6 absolute of eager's kernel, the softmax's
probabilities within ~1e-7. tests/test_compile_kernels.py compares compiled with eager on a
GPT step (losses, gradients and parameters to 1e-5 relative) and checks the paths ran.
"""

from __future__ import annotations

import numpy as np

from . import fusion
from .threads import Tuned

_f32 = np.dtype(np.float32)


def _fast():
    from ..kernels import _cpu_fast  # noqa: PLC0415 - imports numba

    return _cpu_fast


def _ok(x) -> bool:
    return type(x) is np.ndarray and x.dtype == _f32 and x.flags.c_contiguous


def plan(op, arrays, pool):
    """("gelu", forward site, backward site) or ("sdpa", forward) for this op, else None."""
    from ..kernels import cpu  # noqa: PLC0415

    if not fusion._HAVE_NUMBA or not cpu.enabled():
        return None
    name = type(op).__name__
    if name == "Gelu" and op.approximate != "tanh" and len(arrays) == 1 and _ok(arrays[0]):
        return ("gelu", *gelu_sites(pool, arrays[0].size))
    if (name == "ScaledDotProductAttention" and len(arrays) == 3 and op.mask is None
            and op.drop is None
            and all(type(a) is np.ndarray and a.dtype == _f32 for a in arrays)):  # fmt: skip
        return ("sdpa", sdpa_forward)
    return None


def gelu_sites(pool, size: int):
    """(forward(x), backward(x, gy)) for exact float32 GELU; `Tuned` above PARALLEL_MIN."""
    k = _fast()

    def get(x):
        return pool.get(x.shape, x.dtype) if pool is not None else np.empty_like(x)

    def fwd(kernel):
        def run(x):
            out = get(x)
            kernel(x.reshape(-1), out.reshape(-1))
            return out

        return run

    def bwd(kernel):
        def run(x, gy):
            if gy.shape != x.shape or gy.dtype != x.dtype or not gy.flags.c_contiguous:
                gy = np.ascontiguousarray(np.broadcast_to(gy, x.shape), dtype=x.dtype)
            out = get(x)
            kernel(x.reshape(-1), gy.reshape(-1), out.reshape(-1))
            return out

        return run

    if size < fusion.PARALLEL_MIN:
        return fwd(k.gelu_fwd32), bwd(k.gelu_bwd32)
    return (Tuned(fwd(k.gelu_fwd32), fwd(k.gelu_fwd32_par)),
            Tuned(bwd(k.gelu_bwd32), bwd(k.gelu_bwd32_par)))  # fmt: skip


def sdpa_forward(op, q, k, v):
    """`ScaledDotProductAttention.forward` (no mask, bias or dropout) with the float32 softmax."""
    s = q @ np.swapaxes(k, -1, -2)  # (..., L, S), fresh: softmax'd in place
    if s.size:
        n_q = s.shape[-2] if op.causal else 1
        _fast().softmax_fwd32(s.reshape(-1, s.shape[-1]), np.float32(op.scale), n_q,
                              bool(op.causal))  # fmt: skip
    op.probs = s
    return s @ v
