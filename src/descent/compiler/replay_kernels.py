"""Replay kernels: eager's own loops called without the ops' wrappers, so bitwise eager's (exact
mode too): GELU's, attention's softmax and layer norm's.

* exact GELU, forward and backward (float32, C-contiguous NumPy arrays): `_cpu_fast.gelu_*`,
  eager's float32 kernels, one thread or every core (`threads.Tuned`, above
  `fusion.PARALLEL_MIN` elements; the same bits); output into a pool buffer, the forward
  storing the derivative for the backward;
* scaled dot-product attention's forward without a user mask, an additive bias or dropout
  (the causal mask is fine): eager's code (the same two products and eager's softmax loop,
  `_cpu_jit.softmax_fwd32`, called directly instead of through `backend.fused`).

Until 2026-12-04 the replay's softmax had its own all-float32 exponential and rounded
differently from eager's; eager took that exponential (within 1.5 ulp of float64's on [-20, 0]),
so there is one loop and the same bits. tests/test_compile_kernels.py compares compiled with
eager on a GPT step (bitwise) and checks the paths ran.
"""

from __future__ import annotations

import numpy as np

from . import fusion
from .threads import Tuned

_f32 = np.dtype(np.float32)


def _fast():
    from ..kernels import _cpu_fast  # noqa: PLC0415 - imports numba

    return _cpu_fast


def _jit():
    from ..kernels import _cpu_jit  # noqa: PLC0415 - imports numba

    return _cpu_jit


def _ok(x) -> bool:
    return type(x) is np.ndarray and x.dtype == _f32 and x.flags.c_contiguous


def plan(op, arrays, pool, node: bool = True):
    """("gelu", forward site, backward site) or ("sdpa", forward) for this op, else None.
    node: the op is a graph node (its backward runs); else GELU skips storing its derivative.
    Every kernel here gives eager's bits, so `exact` mode runs them too."""
    from ..kernels import cpu  # noqa: PLC0415

    if not fusion._HAVE_NUMBA or not cpu.enabled():
        return None
    name = type(op).__name__
    if name == "Gelu" and op.approximate != "tanh" and len(arrays) == 1 and _ok(arrays[0]):
        return ("gelu", *gelu_sites(pool, arrays[0].size, node))
    if (name == "ScaledDotProductAttention" and len(arrays) == 3 and op.mask is None
            and op.drop is None
            and all(type(a) is np.ndarray and a.dtype == _f32 for a in arrays)):  # fmt: skip
        return ("sdpa", sdpa_forward)
    return None


class _GeluSite:
    """Exact float32 GELU of one op: the forward also writes the derivative Phi(x) + x phi(x)
    (one more store per element), so the backward is one multiply gy * d instead of a second
    evaluation of Phi: 0.39 -> 0.11 ms over baby-gpt's 393k values. The same float32 values
    as `_cpu_fast.gelu_bwd32` (the same expression). d is held from forward to backward, as a
    saved tensor would be, and dropped after it."""

    __slots__ = ("fwd_kernel", "pool", "d", "x")

    def __init__(self, fwd_kernel, pool) -> None:
        self.fwd_kernel, self.pool = fwd_kernel, pool
        self.d = self.x = None

    def _get(self, x):
        return self.pool.get(x.shape, x.dtype) if self.pool is not None else np.empty_like(x)

    def forward(self, x):
        out, d = self._get(x), self._get(x)
        self.fwd_kernel(x.reshape(-1), out.reshape(-1), d.reshape(-1))
        self.d, self.x = d, x
        return out

    def backward(self, x, gy):
        d, seen = self.d, self.x
        self.d = self.x = None
        if d is None or x is not seen:  # the forward ran elsewhere (eager's kernel)
            d, y = self._get(x), self._get(x)
            self.fwd_kernel(np.ascontiguousarray(x).reshape(-1), y.reshape(-1), d.reshape(-1))
        return np.multiply(gy, d, out=self._get(x))


def gelu_sites(pool, size: int, node: bool = True):
    """(forward(x), backward(x, gy)) for exact float32 GELU; `Tuned` above PARALLEL_MIN.
    Without a backward to come (`node` False) the forward writes no derivative."""
    k = _fast()
    if node:
        one, every = _GeluSite(k.gelu_fwd_d32, pool), _GeluSite(k.gelu_fwd_d32_par, pool)
        sites = (one.forward, every.forward), (one.backward, every.backward)
    else:
        sites = (_plain(k.gelu_fwd32, pool), _plain(k.gelu_fwd32_par, pool)), (None, None)
    if size < fusion.PARALLEL_MIN:
        return sites[0][0], sites[1][0]
    return Tuned(*sites[0]), (Tuned(*sites[1]) if node else None)


def _plain(kernel, pool):
    def forward(x):
        out = pool.get(x.shape, x.dtype) if pool is not None else np.empty_like(x)
        kernel(x.reshape(-1), out.reshape(-1))
        return out

    return forward


def sdpa_forward(op, q, k, v):
    """`ScaledDotProductAttention.forward` (no mask, bias, dropout), its kernel called directly."""
    s = q @ k.swapaxes(-1, -2)  # (..., L, S), fresh: softmax'd in place
    if s.size:
        n_q = s.shape[-2] if op.causal else 1
        _jit().softmax_fwd32(s.reshape(-1, s.shape[-1]), np.float32(op.scale), n_q,
                             bool(op.causal), False)  # fmt: skip
    op.probs = s
    return s @ v


# -- layer norm: eager's kernels, called without the op's wrappers -----------------------------
# Bitwise eager's (the same `_cpu_jit` loops on the same arrays), so these run in exact mode
# too: the op's forward and fused backward go through `backend.fused`, `kernels.cpu`'s wrappers
# (contiguity checks, dtype casts of w and b) and fresh allocations each call, ~0.6 ms of the
# baby-gpt step's 1.5 ms of layer norm; here the checks ran once (at `ln_plan`), the output
# and the gradient come from the pool.


def ln_plan(op, arrays, pool):
    """("ln", forward, backward) for a float32 LayerNorm whose kernels eager runs, else None."""
    from ..kernels import cpu  # noqa: PLC0415

    if not fusion._HAVE_NUMBA or not cpu.enabled() or type(op).__name__ != "LayerNorm":
        return None
    n_in = 1 + op.has_w + op.has_b
    if len(arrays) != n_in or not all(type(a) is np.ndarray and a.dtype == _f32 for a in arrays):
        return None
    x = arrays[0]
    if not x.flags.c_contiguous or not all(a.flags.c_contiguous for a in arrays[1:]):
        return None
    d = 1
    for n in x.shape[x.ndim - op.k :]:
        d *= n
    if any(a.size != d for a in arrays[1:]) or x.size == 0:
        return None
    from ..kernels import _cpu_jit as jit  # noqa: PLC0415

    eps = np.float32(op.eps)
    has_w, has_b = bool(op.has_w), bool(op.has_b)

    def get(shape, dtype=_f32):
        return pool.get(shape, dtype) if pool is not None else np.empty(shape, dtype)

    def forward(op, x, *affine):
        x2 = x.reshape(-1, d)
        m = x2.shape[0]
        y = get(x2.shape)
        mean, rstd = np.empty(m, _f32), np.empty(m, _f32)
        w = affine[0].reshape(-1) if has_w else x2[0]
        b = affine[-1].reshape(-1) if has_b else x2[0]
        jit.layer_norm_fwd32(x2, w, b, y, mean, rstd, eps, has_w, has_b)
        op.mean, op.rstd, op.xhat = mean, rstd, None
        return y.reshape(x.shape)

    def backward(node, gy):
        ins = [box._data for box in node.saved]
        x2 = ins[0].reshape(-1, d)
        need_x = node.parents[0] is not None
        need_w = has_w and node.parents[1] is not None
        need_b = has_b and node.parents[-1] is not None
        need_wb = need_w or need_b
        if gy.dtype != _f32 or not gy.flags.c_contiguous:
            gy = np.ascontiguousarray(gy, dtype=_f32)
        gy2 = gy.reshape(x2.shape)
        gx = get(x2.shape) if need_x else None
        gw = np.zeros(d, _f32) if need_wb else None
        gb = np.zeros(d, _f32) if need_wb else None
        w = ins[1].reshape(-1) if has_w else x2[0]
        jit.layer_norm_bwd32(x2, w, gy2, node.mean, node.rstd,
                             x2 if gx is None else gx, x2[0] if gw is None else gw,
                             x2[0] if gb is None else gb, has_w, need_x, need_wb)  # fmt: skip
        grads = (None if gx is None else gx.reshape(gy.shape),)
        if has_w:
            grads += (gw.reshape(node.in_shapes[1]) if need_w else None,)
        if has_b:
            grads += (gb.reshape(node.in_shapes[-1]) if need_b else None,)
        return grads

    return ("ln", forward, backward)

