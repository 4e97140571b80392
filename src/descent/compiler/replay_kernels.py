"""Replay kernels: eager's own loops called without the ops' wrappers, so bitwise eager's (exact
mode too): GELU's, attention's softmax and layer norm's.

* exact GELU, forward and backward (float32, C-contiguous NumPy arrays): `_cpu_fast.gelu_*`,
  eager's float32 kernels, one thread or every core (`threads.Tuned`, above
  `fusion.PARALLEL_MIN` elements; the same bits); output into a pool buffer, the forward
  storing the derivative for the backward;
* scaled dot-product attention's forward without a user mask, an additive bias or dropout
  (the causal mask is fine): eager's code (the same two products and eager's softmax loop,
  `_cpu_jit.softmax_fwd32`, called directly instead of through `backend.fused`), with q k^T
  (and the backward's go v^T) as an NN product on a transposed copy where that gives the NT
  product's bits (`matmul_nt`, checked once per shape pair).

Until 2026-12-04 the replay's softmax had its own all-float32 exponential and rounded
differently from eager's; eager took that exponential (within 1.5 ulp of float64's on [-20, 0]),
so there is one loop and the same bits. tests/test_compile_kernels.py compares compiled with
eager on a GPT step (bitwise) and checks the paths ran.
"""

from __future__ import annotations

import numpy as np

from .. import blas
from ..halves import (
    LN_FORWARD_MIN_VALUES,
    LN_HALVES,
    LN_MIN_VALUES,
    sdpa_backward_part,
    sdpa_forward_part,
)
from ..ops import nt_product
from . import fusion
from .threads import Tuned, run_halves, split
from .threads import _state as _tstate

#: Elementwise loops split at multiples of this many elements: the first half then has no
#: remainder loop and the second half's remainder is the whole call's (the same elements
#: through the same code, whatever the vector width).
GRAIN = 4096

_f32 = np.dtype(np.float32)


def _fast():
    from ..kernels import _cpu_fast  # noqa: PLC0415 - imports numba

    return _cpu_fast


def _jit():
    from ..kernels import _cpu_jit  # noqa: PLC0415 - imports numba

    return _cpu_jit


def _ok(x) -> bool:
    return type(x) is np.ndarray and x.dtype == _f32 and x.flags.c_contiguous


def plan(op, arrays, pool, node: bool = True, axes=None):
    """("gelu", forward site, backward site) or ("sdpa", forward) for this op, else None.
    node: the op is a graph node (its backward runs); else GELU skips storing its derivative.
    axes: attention's output is written in the layout of its transpose by these axes
    (`sdpa_layouts`). Every kernel here gives eager's bits, so `exact` mode runs them too."""
    from ..kernels import cpu  # noqa: PLC0415

    if not fusion._HAVE_NUMBA or not cpu.enabled():
        return None
    name = type(op).__name__
    if name == "Gelu" and op.approximate != "tanh" and len(arrays) == 1 and _ok(arrays[0]):
        return ("gelu", *gelu_sites(pool, arrays[0].size, node))
    if (name == "ScaledDotProductAttention" and len(arrays) == 3 and op.mask is None
            and op.drop is None
            and all(type(a) is np.ndarray and a.dtype == _f32 for a in arrays)):  # fmt: skip
        if axes is None or pool is None:
            return ("sdpa", sdpa_forward)
        return ("sdpa", lambda op, q, k, v: sdpa_forward(op, q, k, v, axes, pool))
    return None


class _GeluSite:
    """Exact float32 GELU of one op: the forward also writes the derivative Phi(x) + x phi(x)
    (one more store per element), so the backward is one multiply gy * d instead of a second
    evaluation of Phi: 0.39 -> 0.11 ms over baby-gpt's 393k values. The same float32 values
    as `_cpu_fast.gelu_bwd32` (the same expression). d is held from forward to backward, as a
    saved tensor would be, and dropped after it."""

    __slots__ = ("fwd_kernel", "pool", "d", "x", "halves")

    def __init__(self, fwd_kernel, pool, halves: bool = False) -> None:
        self.fwd_kernel, self.pool = fwd_kernel, pool
        self.d = self.x = None
        self.halves = halves  # the one-thread site: two halves at once where threads.split may

    def _get(self, x):
        return self.pool.get(x.shape, x.dtype) if self.pool is not None else np.empty_like(x)

    def forward(self, x):
        out, d = self._get(x), self._get(x)
        xf, of, df = x.reshape(-1), out.reshape(-1), d.reshape(-1)
        k = self.fwd_kernel
        if self.halves:
            split(xf.size, lambda i0, i1: k(xf[i0:i1], of[i0:i1], df[i0:i1]), GRAIN)
        else:
            k(xf, of, df)
        self.d, self.x = d, x
        return out

    def backward(self, x, gy):
        d, seen = self.d, self.x
        self.d = self.x = None
        if d is None or x is not seen:  # the forward ran elsewhere (eager's kernel)
            d, y = self._get(x), self._get(x)
            self.fwd_kernel(np.ascontiguousarray(x).reshape(-1), y.reshape(-1), d.reshape(-1))
        if gy.dtype != d.dtype or gy.shape != d.shape:
            return np.multiply(gy, d, out=self._get(x))
        # Into d itself (nothing else holds it: the pool hands it out again once the gradient
        # is dropped): two streams instead of three, 139 -> 88 us median on 393k values cold.
        return np.multiply(gy, d, out=d)


def gelu_sites(pool, size: int, node: bool = True):
    """(forward(x), backward(x, gy)) for exact float32 GELU; `Tuned` above PARALLEL_MIN.
    Without a backward to come (`node` False) the forward writes no derivative."""
    k = _fast()
    if node:
        one, every = _GeluSite(k.gelu_fwd_d32, pool, True), _GeluSite(k.gelu_fwd_d32_par, pool)
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


def sdpa_forward(op, q, k, v, axes=None, pool=None):
    """`ScaledDotProductAttention.forward` (no mask, bias, dropout), its kernel called directly.
    axes (with a pool): the product P v is written into a pool buffer laid out as its transpose
    by `axes` (`sdpa_layouts`), so that transpose is contiguous and the reshape after it a view.
    With a pool, q k^T runs as an NN product on a transposed copy of k (`matmul_nt`); at two
    BLAS threads, in two halves of the batch at once (`_halves`)."""
    if pool is not None and axes is not None and axes[0] == 0 and _halves(q, k, v):
        return _sdpa_forward_halves(op, q, k, v, axes, pool)
    if pool is None:  # (..., L, S), fresh: softmax'd in place; eager's product (an NN product
        # on k's transposed copy where usable: NumPy's NT runs syrk when q is k, other bits)
        s = nt_product.matmul_nt(q, k)
    else:
        s = matmul_nt(q, k, pool)
    if s.size:
        n_q = s.shape[-2] if op.causal else 1
        rows = s.reshape(-1, s.shape[-1])
        sm, scale, causal = _jit().softmax_fwd32, np.float32(op.scale), bool(op.causal)
        if pool is None:
            sm(rows, scale, n_q, causal, False, True)  # safe: -inf rows give 0
        else:  # halves of whole heads (the causal limit is the row's index modulo n_q)
            split(rows.shape[0], lambda i0, i1: sm(rows[i0:i1], scale, n_q, causal, False, True),
                  n_q, s.size)  # fmt: skip
    op.probs = s
    if axes is None:
        return blas.matmul(s, v)
    shape = s.shape[:-1] + v.shape[-1:]
    buf = pool.get(tuple(shape[a] for a in axes), s.dtype)  # (B, T, nh, hs) for (0, 2, 1, 3)
    # The same product into other strides (the last one still the item size, so BLAS writes
    # it with a leading dimension): the same values (tests/test_compile_gpt_s14.py).
    return blas.matmul(s, v, out=buf.transpose(np.argsort(axes)))


# -- attention in two halves of the batch (session 21, helper-148) -----------------------------
# At two BLAS threads OpenBLAS runs each of the heads' small products (M N K <= 65536 * 4) on the
# calling thread alone, so attention's products ran on one core: `threads.HALVES`. The replay
# runs the forward (q k^T, the softmax, P v) and the backward (go v^T, the softmax's backward,
# the three gradient products) as two halves of the leading (batch) axis at once, the second on
# `threads`' split worker. Each half makes the whole call's per-matrix BLAS calls (NumPy's
# matmul loops over the batch's matrices, one BLAS call each) and the softmax's rows go through
# the same loop (a half starts at a multiple of the query count: the causal limit is the row's
# index modulo it), so the bits are the whole call's, which are eager's
# (tests/test_compile_s21_kernels.py). Only where every product stays below OpenBLAS's
# threading threshold (a larger one would run on both of OpenBLAS's threads in the whole call
# and maybe on one in a half: other bits with some kernels) and the call has HALVES_MIN scores.

#: OpenBLAS's SMP_THRESHOLD_MIN (65536) x GEMM_MULTITHREAD_THRESHOLD (4): a ?gemm of
#: M N K <= this runs on the calling thread only (interface/gemm.c)
ONE_THREAD_MNK = 65536 * 4
#: Attention calls with fewer scores (batch x heads x queries x keys) run whole: the hand-off
#: costs ~20-70 us (docs/compile.md, session 17); the baby-gpt step's calls have 196,608.
HALVES_MIN = 1 << 17


def _halves(q, k, v) -> bool:
    """Whether this attention call runs in two halves of its batch (see above)."""
    if not _tstate["halves"] or not (q.ndim == k.ndim == v.ndim == 4) or q.shape[0] < 2:
        return False
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]) or k.shape[-2] != v.shape[-2]:
        return False
    t, s, d = q.shape[-2], k.shape[-2], max(q.shape[-1], v.shape[-1])
    return t * s * d <= ONE_THREAD_MNK and q.size // q.shape[-1] * s >= HALVES_MIN


def _sdpa_forward_halves(op, q, k, v, axes, pool):
    """`sdpa_forward` (a pool and axes whose first is 0) in two halves of the batch at once."""
    s = pool.get(q.shape[:-1] + k.shape[-2:-1], q.dtype)
    nn = nt_product.usable(q, k)  # the whole call's choice (`matmul_nt`)
    kt = pool.get(k.shape[:-2] + (k.shape[-1], k.shape[-2]), k.dtype) if nn else None
    n_q = s.shape[-2] if op.causal else 1
    sm, scale, causal = _jit().softmax_fwd32, np.float32(op.scale), bool(op.causal)
    shape = s.shape[:-1] + v.shape[-1:]
    buf = pool.get(tuple(shape[a] for a in axes), s.dtype)
    out = buf.transpose(np.argsort(axes))

    a = (q, k, v, s, kt, out, nn, sm, scale, n_q, causal)

    def part(i0, i1):
        sdpa_forward_part(i0, i1, a, blas.matmul, nt_product.transpose_last2)

    b = q.shape[0]
    run_halves(((0, b // 2), (b // 2, b)), part)
    op.probs = s
    return out


def _sdpa_backward_halves(node, go, outs, pool, q, k, v, p) -> None:
    """`_sdpa_backward_nn`'s products and softmax backward in two halves of the batch."""
    oq, ok, ov = outs
    gp = pool.get(go.shape[:-1] + v.shape[-2:-1], go.dtype)
    nn = nt_product.usable(go, v)  # the whole call's choice (`matmul_nt`)
    vt = pool.get(v.shape[:-2] + (v.shape[-1], v.shape[-2]), v.dtype) if nn else None
    scale, sb = np.float32(node.scale), _jit().softmax_bwd32_inplace

    a = (go, q, k, v, p, gp, vt, oq, ok, ov, nn, sb, scale)

    def part(i0, i1):
        sdpa_backward_part(i0, i1, a, blas.matmul, nt_product.transpose_last2)

    b = q.shape[0]
    run_halves(((0, b // 2), (b // 2, b)), part)


# -- attention's NT products as NN products ------------------------------------------------------
# q k^T (forward) and go v^T (backward) run as NN products on a transposed copy of k / v where a
# once-per-shape check shows the NT product's bits (ops/nt_product.py, shared with eager
# attention); here the copy and the product go into pool buffers.


def matmul_nt(a, b, pool):
    """a @ b^T (b^T = b.swapaxes(-1, -2)) into a pool buffer: an NN product on a pooled
    C-contiguous copy of b^T where that gives the NT product's bits (`nt_product.usable`),
    else NT."""
    shape = a.shape[:-1] + b.shape[-2:-1]
    if not nt_product.usable(a, b):
        return blas.matmul(a, b.swapaxes(-1, -2), out=pool.get(shape, a.dtype))
    bt = pool.get(b.shape[:-2] + (b.shape[-1], b.shape[-2]), b.dtype)
    nt_product.transpose_last2(b, bt)
    return blas.matmul(a, bt, out=pool.get(shape, a.dtype))


# -- attention's layouts: products written where the heads' reshapes need them ----------------
# nanoGPT's attention splits the heads with qkv.split -> view(B, T, nh, hs) -> transpose(1, 2)
# and joins them with y.transpose(1, 2).reshape(B, T, C). In eager the join's reshape copies the
# transposed output (a new (B, T, C) array), and in the backward each of gq, gk, gv is a fresh
# (B, nh, T, hs) product whose transposed, reshaped view is then copied into the qkv gradient.
# BLAS writes a product's output with any leading dimension, so the replay writes P v straight
# in the (B, T, nh, hs) layout (the reshape becomes a view) and gq, gk, gv straight into their
# column blocks of the qkv gradient (no copies; the transpose, reshape and slice nodes of the
# backward are skipped). The same products, so the same values: only where they are stored
# changes.


def sdpa_layouts(prog, readers: dict, keep) -> dict:
    """{id(Forward of attention): axes} for the attention outputs read once, by a transpose
    that keeps the last axis last and whose output only reshapes read: that output is
    written in the transposed layout (`sdpa_forward`)."""
    out = {}
    for ins in prog:
        op = getattr(ins, "op", None)
        if type(op).__name__ != "ScaledDotProductAttention" or ins.out in keep:
            continue
        rd = readers.get(ins.out, ())
        if len(rd) != 1:
            continue
        t = prog[rd[0]]
        t_op = getattr(t, "op", None)
        axes = getattr(t_op, "axes", None)
        if (not isinstance(t_op, _ops_shape().Transpose) or axes is None or not axes
                or axes[-1] != len(axes) - 1 or t.out in keep):  # fmt: skip
            continue
        after = readers.get(t.out, ())
        if after and all(type(getattr(prog[j], "op", None)) is _ops_shape().Reshape
                         for j in after):  # fmt: skip
            out[id(ins)] = tuple(axes)
    return out


def sdpa_grad_plan(order, received: dict, deliveries_of: dict, partition) -> dict:
    """{attention node: (parent, parent's shape, [(slice index, view shape, axes)] x 3, nodes
    to skip)} where each of q, k, v is transpose(reshape(parent[slice])) of one parent whose
    whole gradient they are (`program._partitions`): the backward writes gq, gk, gv into
    views of the parent's gradient (`sdpa_backward_into`) and skips those 9 nodes."""
    shape_ops = _ops_shape()
    from ..ops.indexing import GetItem  # noqa: PLC0415

    plans = {}
    for node, deliveries in order:
        if type(node).__name__ != "ScaledDotProductAttention" or len(deliveries) != 3:
            continue
        dests, skip, parents = [], [], set()
        for i, (pos, t, _) in enumerate(deliveries):
            if pos != i or not isinstance(t, shape_ops.Transpose) or received.get(t) != 1:
                break
            ((_, r, shape4),) = deliveries_of.get(t) or ((None, None, None),)
            if type(r) is not shape_ops.Reshape or received.get(r) != 1:
                break
            ((_, g, _),) = deliveries_of.get(r) or ((None, None, None),)
            if type(g) is not GetItem or not g.basic or received.get(g) != 1:
                break
            ((_, par, par_shape),) = deliveries_of.get(g) or ((None, None, None),)
            if par not in partition:
                break
            if t.axes[-1] != len(t.axes) - 1:  # BLAS needs the last stride to be 1 item
                break
            parents.add((par, par_shape))
            dests.append((g.idx, shape4, tuple(t.axes)))
            skip += [t, r, g]
        if len(dests) == 3 and len(parents) == 1:
            ((par, par_shape),) = parents
            plans[node] = (par, par_shape, dests, frozenset(skip))
    return plans


def sdpa_backward_into(node, go, plan, pool, ops):
    """Attention's backward (its own code) with gq, gk, gv written into views of the qkv
    gradient (`sdpa_grad_plan`); that gradient buffer, or None when this call cannot (dropout,
    another dtype, a view that needs a copy) and the node's usual backward runs."""
    _, shape, dests, _ = plan
    if (node.drop is not None or node.mask is not None or go.dtype != _f32
            or len(node.parents) != 3
            or any(box._data.dtype != _f32 for box in node.saved)):  # fmt: skip
        return None
    buf = pool.get(shape, go.dtype)  # every element is written: the slices cover it once
    outs = []
    for idx, shape4, axes in dests:
        v = buf[idx].view()
        try:
            v.shape = shape4  # NumPy refuses when the strides cannot express it
        except AttributeError:
            return None
        outs.append(v.transpose(axes))
    if not _sdpa_backward_nn(node, go, outs, pool):
        node.backward(go, ops, out=outs)
    return buf


def _sdpa_backward_nn(node, go, outs, pool) -> bool:
    """Eager's array backward of attention (`ScaledDotProductAttention.backward`: no dropout,
    mask or bias; q, k, v all wanted) with go v^T as `matmul_nt`'s NN product, gv taken after
    the softmax backward instead of first, and the softmax backward called directly
    (`_cpu_jit.softmax_bwd32_inplace`, what eager's `kernels.cpu.softmax_backward` runs in
    place); False, with nothing written, otherwise."""
    from .. import backend  # noqa: PLC0415
    from ..kernels import cpu  # noqa: PLC0415

    p = node.probs
    if (any(par is None for par in node.parents) or type(p) is not np.ndarray
            or not p.flags.c_contiguous or type(go) is not np.ndarray
            or p.dtype != _f32):  # fmt: skip
        return False
    q, k, v = (box._data for box in node.saved)
    oq, ok, ov = outs
    if backend.fused("softmax_backward", p, p) is not cpu.softmax_backward:
        return False
    if (_halves(q, k, v) and go.shape == q.shape[:-1] + v.shape[-1:]
            and p.shape == q.shape[:-1] + k.shape[-2:-1]
            and all(o.shape[0] == q.shape[0] for o in outs)):  # fmt: skip
        _sdpa_backward_halves(node, go, outs, pool, q, k, v, p)
        return True
    gp = matmul_nt(go, v, pool)  # go v^T (pooled: updated in place below)
    if p.size:
        n = p.shape[-1]
        _jit().softmax_bwd32_inplace(p.reshape(-1, n), gp.reshape(-1, n),
                                     np.float32(node.scale), False)  # fmt: skip
    # gv after the softmax's pass over P (eager takes it first; independent products, so the
    # same values): P, saved since the forward, is then read from the cache instead of memory
    blas.matmul(p.swapaxes(-1, -2), go, out=ov)  # gv = P^T go
    blas.matmul(gp, k, out=oq)  # gq = gs k (scale inside gs)
    blas.matmul(gp.swapaxes(-1, -2), q, out=ok)  # gk = gs^T q
    return True


def _ops_shape():
    from ..ops import shape  # noqa: PLC0415

    return shape


# -- layer norm: eager's kernels, called without the op's wrappers -----------------------------
# Bitwise eager's (the same `_cpu_jit` loops on the same arrays), so these run in exact mode
# too: the op's forward and fused backward go through `backend.fused`, `kernels.cpu`'s wrappers
# (contiguity checks, dtype casts of w and b) and fresh allocations each call, ~0.6 ms of the
# baby-gpt step's 1.5 ms of layer norm; here the checks ran once (at `ln_plan`), the output
# and the gradient come from the pool. Both call kernels.cpu.layer_norm_rows_forward/_backward,
# which run the rows in two parts at once above descent.halves' sizes (here: on the halves
# plan) and sum gw/gb in fixed blocks of rows, so eager, the replay and every plan agree.


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
    eps = np.float32(op.eps)
    has_w, has_b = bool(op.has_w), bool(op.has_b)
    # rows in two parts at once under the halves plan (descent/halves.py's sizes)
    parts_f, parts_b = x.size >= LN_FORWARD_MIN_VALUES, x.size >= LN_MIN_VALUES

    def run(big):
        return run_halves if big and _tstate["halves"] and LN_HALVES["on"] else None

    def get(shape, dtype=_f32):
        return pool.get(shape, dtype) if pool is not None else np.empty(shape, dtype)

    def forward(op, x, *affine):
        x2 = x.reshape(-1, d)
        m = x2.shape[0]
        y = get(x2.shape)
        mean, rstd = np.empty(m, _f32), np.empty(m, _f32)
        w = affine[0].reshape(-1) if has_w else x2[0]
        b = affine[-1].reshape(-1) if has_b else x2[0]
        cpu.layer_norm_rows_forward(x2, w, b, y, mean, rstd, eps, has_w, has_b, run(parts_f))
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
        # (a pool buffer in gy's shape, not a view of one: the gradient sum after it may then
        # write into it, program._INTO_FRESH)
        gx = get(gy.shape) if need_x else None
        w = ins[1].reshape(-1) if has_w else x2[0]
        gw, gb = cpu.layer_norm_rows_backward(x2, w, gy2, node.mean, node.rstd, gx, has_w,
                                              need_x, need_wb, run(parts_b))  # fmt: skip
        grads = (gx,)
        if has_w:
            grads += (gw.reshape(node.in_shapes[1]) if need_w else None,)
        if has_b:
            grads += (gb.reshape(node.in_shapes[-1]) if need_b else None,)
        return grads

    return ("ln", forward, backward)



# -- small ops into pool buffers ----------------------------------------------------------------
# ReLU's forward and backward and Linear's product make a fresh activation-sized array per call;
# at 128 x 256 float32 (128 KiB, glibc's mmap threshold) a fresh array can cost more than the
# arithmetic. The replay runs the same calls with `out=` a pool buffer: the same bits.


def relu_backward(node, gy, pool):
    """ReLU's backward (`ops/activation.Relu`) into a pool buffer: eager's one-pass kernel
    (`_cpu_jit.relu_bwd`, where eager's `backend.fused` picks it) on the same arrays; None for
    any other case (the node's own backward runs)."""
    from .. import backend  # noqa: PLC0415
    from ..kernels import cpu  # noqa: PLC0415

    y = node.out_data
    if (type(y) is not np.ndarray or y.shape != gy.shape or y.dtype != gy.dtype
            or not (y.flags.c_contiguous and gy.flags.c_contiguous) or not y.size):  # fmt: skip
        return None
    if backend.fused("relu_backward", y, gy) is not cpu.relu_backward:
        return None
    out = pool.get(y.shape, y.dtype)
    _jit().relu_bwd(y.reshape(-1), gy.reshape(-1), out.reshape(-1))
    return out


def linear_forward_plan(op, arrays, pool):
    """("linear", forward): a float32/float64 Linear's x @ W.T (+ b in place) into a pool
    buffer, eager's calls with `out=`; None for anything else (float16's float32 path,
    complex, a weight that is not 2-D)."""
    if pool is None or type(op).__name__ != "Linear" or len(arrays) != 2 + op.has_b:
        return None
    x, w = arrays[0], arrays[1]
    if not all(type(a) is np.ndarray and a.dtype.kind == "f" and a.dtype.itemsize >= 4
               for a in arrays) or w.ndim != 2 or x.ndim < 1:  # fmt: skip
        return None
    if x.shape[-1] != w.shape[1] or not x.shape[-1] or len({a.dtype for a in arrays}) != 1:
        return None
    n, k = w.shape
    has_b = bool(op.has_b)

    def forward(op, x, w, *b):
        x2 = x.reshape((-1, k))
        y = blas.matmul(x2, w.T, out=pool.get((x2.shape[0], n), x2.dtype))
        if has_b:
            y += b[0]  # eager's in-place bias add on its product
        return y.reshape(x.shape[:-1] + (n,))

    return ("linear", forward)


# -- cross-entropy (float32 logits, class indices, mean): eager's kernels without the wrappers ---
# The op's fused path (`ops/loss.SoftmaxCrossEntropy._fused_forward` / `_fused_backward`) goes
# through `kernels.cpu`'s wrappers (contiguity and dtype conversions, fresh arrays) and an
# errstate context: ~40 us for the MLP step's 128 x 10 logits, most of it Python. Here the
# same kernels (`_cpu_jit.ce_fwd32` / `ce_bwd32`) and the same NumPy expressions for the mean
# and the gradient's scale run directly, outputs in pool buffers: eager's bits.


def ce_plan(op, arrays, pool):
    """("ce", forward) for a SoftmaxCrossEntropy that eager runs on its fused CPU kernel with
    the mean reduction and no class weights, else None."""
    from .. import backend  # noqa: PLC0415
    from ..kernels import cpu  # noqa: PLC0415

    if (pool is None or type(op).__name__ != "SoftmaxCrossEntropy" or len(arrays) != 1
            or op.weight is not None or op.reduction != "mean"):  # fmt: skip
        return None
    x = arrays[0]
    if not _ok(x) or x.ndim != 2 or not x.shape[0] or not x.shape[1]:
        return None
    if backend.fused("cross_entropy_forward", x) is not cpu.cross_entropy_forward:
        return None
    jit = _jit()

    def forward(op, x):
        t = op.target
        if (type(t) is not np.ndarray or t.dtype != np.int64 or t.ndim != 1
                or not t.flags.c_contiguous or not x.flags.c_contiguous):  # fmt: skip
            return None
        valid = t != op.ignore_index
        n = valid.sum(dtype=np.float32)
        if not n > 0:  # every row ignored: eager's path (its nan and its errstate)
            return None
        m = x.shape[0]
        loss, stats = pool.get((m,), _f32), pool.get((m, 2), _f32)
        jit.ce_fwd32(x, t, loss, stats, np.int64(op.ignore_index), np.float32(op.smoothing))
        op.probs, op.lse, op.valid, op.wt = None, stats, valid, valid.astype(x.dtype)
        op.scale = np.where(n > 0, 1 / n, 0).astype(np.float32)
        return np.asarray(loss.sum() * (1 / n), dtype=x.dtype)

    return ("ce", forward)


def ce_backward(node, gy, pool):
    """`SoftmaxCrossEntropy._fused_backward` (mean, no weights) with its gradient in a pool
    buffer; None for any other case (the node's own backward runs)."""
    if (node.lse is None or node.reduction != "mean" or node.weight is not None
            or type(gy) is not np.ndarray or gy.dtype != _f32):  # fmt: skip
        return None
    saved = node.saved
    if type(saved) is not tuple or len(saved) != 1:
        return None
    x, t = saved[0]._data, node.target
    if (not _ok(x) or type(t) is not np.ndarray or t.dtype != np.int64
            or not t.flags.c_contiguous or t.ndim != 1):  # fmt: skip
        return None
    g = np.asarray(gy * node.scale, dtype=np.float32).reshape(-1)
    gx = pool.get(x.shape, _f32)
    _jit().ce_bwd32(x, t, node.lse, g, np.int64(0 if g.size == 1 else 1), gx,
                    np.int64(node.ignore_index), np.float32(node.smoothing))  # fmt: skip
    return gx



# -- ReLU's forward as one numba pass -------------------------------------------------------------
# NumPy's maximum(0, x) takes ~13 us for 128 x 256 float32 (its NaN-propagating loop), a
# plain select ~2. The select gives eager's values (backend.clamp_min_zero, PyTorch's
# clamp_min(x, 0)): +0.0 where x < 0, else x itself (-0.0 kept; a NaN keeps its sign and
# payload, as maximum returns the NaN operand).


def _relu_fwd_py(x, out):  # pragma: no cover - compiled
    for i in range(x.size):
        v = x[i]
        out[i] = 0 if v < 0 else v


_RELU: list = []  # [kernel] once compiled, [None] when unavailable


def _relu_kernel():
    if _RELU:
        return _RELU[0]
    k = None
    if fusion._HAVE_NUMBA:
        import numba  # noqa: PLC0415

        k = numba.njit(nogil=True, error_model="numpy", cache=False)(_relu_fwd_py)
    _RELU.append(k)
    return k


def relu_plan(op, arrays, pool):
    """("relu", forward) for ReLU on a C-contiguous float32/float64 array (out into a pool
    buffer), else None (NumPy's maximum runs)."""
    from ..kernels import cpu  # noqa: PLC0415

    if pool is None or type(op).__name__ != "Relu" or len(arrays) != 1 or not cpu.enabled():
        return None
    x = arrays[0]
    if (type(x) is not np.ndarray or x.dtype not in (_f32, np.dtype(np.float64))
            or not x.size or not x.flags.c_contiguous):  # fmt: skip
        return None
    k = _relu_kernel()
    if k is None:
        return None

    def forward(op, x):
        if not x.flags.c_contiguous:
            return None
        out = pool.get(x.shape, x.dtype)
        k(x.reshape(-1), out.reshape(-1))
        return out

    return ("relu", forward)
