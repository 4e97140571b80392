"""Fused scaled dot-product attention (Vaswani et al., 2017) in one op.

softmax(q k^T * scale + mask) v with the causal/boolean/additive mask applied in place on the
score matrix, one softmax pass, and a fused backward. The matrix products go through NumPy's
batched matmul (BLAS). The attention probabilities are the only (L, S) array kept for backward.
"""

from __future__ import annotations

import numpy as np

from .. import backend, blas, halves
from ..autograd import Function
from ..tensor import Tensor
from . import nt_product
from .nt_product import matmul_nt
from .shape import swapaxes
from .softmax import softmax

# (L, S, dtype, module) -> additive causal bias, 0 on and below the diagonal, -inf above it.
_causal_cache: dict = {}


def causal_bias(xp, n_q: int, n_k: int, dtype):
    """The (L, S) additive causal mask (top-left aligned, as PyTorch's is_causal)."""
    key = (n_q, n_k, np.dtype(dtype).str, xp.__name__)
    bias = _causal_cache.get(key)
    if bias is None:
        upper = xp.triu(xp.ones((n_q, n_k), dtype=bool), k=1)
        bias = xp.where(upper, -xp.inf, 0).astype(dtype)
        if backend.is_meta(bias):  # costs nothing to make; a cached one would keep meta alive
            return bias
        if len(_causal_cache) > 64:
            _causal_cache.clear()
        _causal_cache[key] = bias
    return bias


def _cpu():
    from ..kernels import cpu  # noqa: PLC0415 - the CPU kernels' wrappers (numba on first use)

    return cpu


def _output(q, p, v):
    """An empty (B, H, L, Ev) output laid out as (B, L, H, Ev) when q is the heads of a
    (B, L, H, E) array (nanoGPT's q.view(B, T, nh, hs).transpose(1, 2)), else None (a fresh
    C-contiguous product). PyTorch's CPU attention lays its output out as the query's
    (`empty_like(q)`), and the heads' join y.transpose(1, 2).reshape(B, T, C) is then a view,
    not a copy. The same product written with another leading dimension: the same values."""
    if type(q) is not np.ndarray or q.ndim != 4 or type(p) is not np.ndarray or p.dtype != v.dtype:
        return None
    st, sh = q.strides, q.shape
    if min(sh) < 2 or not (st[0] >= st[2] * sh[2] and st[2] > st[1] > st[3] > 0):
        return None
    return np.empty((sh[0], p.shape[-2], sh[1], v.shape[-1]), p.dtype).transpose(0, 2, 1, 3)


def _dead_rows(xp, row_max):
    """(..., L, 1) bool: the rows whose scores are all -inf (fully masked), or None if none."""
    dead = xp.isneginf(row_max)
    return dead if dead.any() else None


class ScaledDotProductAttention(Function):
    """o = P' v, P = softmax(s), s = q k^T * scale + mask, P' = P * dropout_mask.

    Backward (gs the score gradient, rows of P summing to one):
        gv = P'^T go,  gP' = go v^T,  gP = gP' * dropout_mask,
        gs = P * (gP - sum_j(gP * P)),  gq = gs k * scale,  gk = gs^T q * scale.
    Saves P (and the dropout mask); under create_graph P is rebuilt from q and k with recorded
    ops, so the backward is differentiable. A boolean mask is a constant; an additive float
    mask is a fourth input `bias` (s = q k^T * scale + bias), whose gradient is gs itself
    (learned attention biases train through it, as in PyTorch), summed back to its broadcast
    shape by the engine.
    """

    __slots__ = ("scale", "causal", "mask", "drop", "probs")
    save_inputs = True
    saved_slots = ("probs", "drop")  # the dropout mask, too: both are only read by backward

    def _scores(self, xp, s, bias):
        """Apply the causal and user masks to the scores `s` (..., L, S) in place."""
        if self.causal:
            s += causal_bias(xp, s.shape[-2], s.shape[-1], s.dtype)
        if bias:
            s += bias[0]  # the additive mask (an input: it gets a gradient)
        if self.mask is not None:
            # -inf added where masked, as PyTorch's boolean mask turned into an additive one
            # (an infinite or nan score there gives nan, not a finite row; copyto replaced it)
            xp.add(s, s.dtype.type(-np.inf), out=s, where=xp.logical_not(self.mask))
        return s

    def forward(self, q, k, v, *bias):
        if self._halves(q, k, v, bias):
            return self._forward_halves(q, k, v)
        xp = backend.get_array_module(q)
        # (..., L, S), a fresh array: masked and exp'd in place; an NN product where that
        # gives the NT product's bits (nt_product)
        s = matmul_nt(q, k) if xp is np else q @ xp.swapaxes(k, -1, -2)
        masked = self.mask is not None or bias
        kern = None if masked else backend.fused("softmax_forward", s)
        if kern is not None:
            # scale, causal mask and softmax in one kernel, in place. The CPU kernel's `safe`:
            # a row of -inf scores gives 0, as below (CuPy's kernel still gives nan there)
            if kern is _cpu().softmax_forward:
                s = kern(s, scale=self.scale, causal=self.causal, safe=True, out=s)
            else:
                s = kern(s, scale=self.scale, causal=self.causal, out=s)
        else:
            s *= q.dtype.type(self.scale)
            s = self._scores(xp, s, bias)
            mx = s.max(axis=-1, keepdims=True)
            # A row whose scores are all -inf (masked everywhere, or -inf scores from an
            # infinite key, causal or not) attends to nothing: PyTorch's _safe_softmax gives it
            # zero probabilities (and zero output), where exp(-inf - -inf) is nan.
            dead = _dead_rows(xp, mx)
            if dead is not None:
                mx[dead] = 0
            s -= mx
            xp.exp(s, out=s)
            if s.dtype.itemsize >= 4:
                # Row sums as one matrix-vector product (BLAS), several times faster than
                # sum(axis=-1) over short rows; then one multiply by the reciprocals.
                sums = s @ xp.ones(s.shape[-1], dtype=s.dtype)
                if dead is not None:
                    sums[dead[..., 0]] = 1  # 0 / 1: the dead rows stay 0
                s *= (1 / sums)[..., None]  # s is now P
            else:  # float16: NumPy's sum accumulates in float32, its matmul would not
                sums = s.sum(axis=-1, keepdims=True)
                if dead is not None:
                    sums[dead] = 1
                s /= sums
        self.probs = s
        p = s if self.drop is None else s * self.drop
        if xp is not np:
            return p @ v  # (..., L, Ev)
        return blas.matmul(p, v, out=_output(q, p, v))  # laid out as q's heads (`_output`)

    def backward(self, go, ops, out=None):
        """The gradients of q, k, v (and the bias). `out`: arrays path only, three arrays of
        gq's, gk's and gv's shapes (any strides BLAS takes, e.g. views into the gradient of the
        qkv tensor they were split from) that receive the three products: the same products,
        so the same values (descent.compile's replay, `compiler/replay_kernels.py`)."""
        q, k, v, *bias = self.inputs(ops)
        if ops.is_graph:
            return self._graph_backward(go, q, k, v, bias, ops)
        xp = backend.get_array_module(go)
        p = self.probs
        need_q, need_k, need_v = (par is not None for par in self.parents[:3])
        if (out is None and need_q and need_k and need_v and not bias
                and self._halves(q, k, v, bias) and type(go) is np.ndarray
                and go.shape == q.shape[:-1] + v.shape[-1:] and go.dtype == p.dtype):  # fmt: skip
            return self._backward_halves(go, q, k, v)
        need_b = bool(bias) and self.parents[3] is not None
        oq, ok, ov = (None, None, None) if out is None else out
        pd = p if self.drop is None else p * self.drop
        gq = gk = gv = gb = None
        if need_q or need_k or need_b:
            # (..., L, S), fresh: updated in place below
            gp = matmul_nt(go, v) if xp is np else go @ xp.swapaxes(v, -1, -2)
            if self.drop is not None:
                gp *= self.drop
            kern = backend.fused("softmax_backward", p, gp)
            if kern is not None:
                gp = kern(p, gp, scale=self.scale, out=gp)  # gs * scale in one kernel
            else:
                if p.dtype.itemsize >= 4:
                    gp -= xp.einsum("...ij,...ij->...i", gp, p)[..., None]  # no temporary
                else:  # float16: accumulate the row dots in float32 (sum does)
                    gp -= (gp * p).sum(axis=-1, keepdims=True)
                gp *= p
                if need_b:
                    gb = gp.copy()  # gs, the score gradient: the additive mask's gradient
                gp *= p.dtype.type(self.scale)  # gs * scale
            if need_b and gb is None:  # the fused kernel gave gs * scale
                gb = gp * p.dtype.type(1.0 / self.scale)
        mm = blas.matmul if xp is np else xp.matmul  # NumPy's: on the BLAS set_blas chose
        if need_v:
            # gv = P'^T go after the softmax backward, which has just read P: P's second read
            # then hits the cache (the replay's order since session 16; independent products,
            # so the same values)
            gv = mm(xp.swapaxes(pd, -1, -2), go, out=ov)  # (..., S, Ev)
        if need_q or need_k or need_b:
            if need_q:
                gq = mm(gp, k, out=oq)  # (..., L, E)
            if need_k:
                gk = mm(xp.swapaxes(gp, -1, -2), q, out=ok)  # (..., S, E)
        if bias:
            return gq, gk, gv, gb
        return gq, gk, gv

    # -- two halves of the batch at once (descent/halves.py): the same per-matrix BLAS calls and
    # softmax rows as the whole call, so the same bits ----------------------------------------

    def _halves(self, q, k, v, bias) -> bool:
        """Whether this call (no mask, bias or dropout; numba's softmax) runs in halves."""
        if bias or self.mask is not None or self.drop is not None:
            return False
        if not halves.attention_ok(q, k, v):
            return False
        return backend.fused("softmax_forward", q) is _cpu().softmax_forward

    def _forward_halves(self, q, k, v):
        s = np.empty(q.shape[:-1] + k.shape[-2:-1], q.dtype)  # P, written in place
        nn = nt_product.usable(q, k)  # the whole call's choice (`matmul_nt`)
        kt = np.empty(k.shape[:-2] + (k.shape[-1], k.shape[-2]), k.dtype) if nn else None
        out = _output(q, s, v)
        if out is None:
            out = np.empty(q.shape[:-1] + v.shape[-1:], q.dtype)
        n_q = s.shape[-2] if self.causal else 1
        sm, scale, causal = _cpu()._k().softmax_fwd32, np.float32(self.scale), bool(self.causal)

        a = (q, k, v, s, kt, out, nn, sm, scale, n_q, causal)
        tr = nt_product.transpose_last2

        def part(i0, i1):
            halves.sdpa_forward_part(i0, i1, a, np.matmul, tr)

        b = q.shape[0]
        halves.run(((0, b // 2), (b // 2, b)), part)
        self.probs = s
        return out

    def _backward_halves(self, go, q, k, v):
        p = self.probs
        gq, gk, gv = (np.empty(a.shape, a.dtype) for a in (q, k, v))
        gp = np.empty(go.shape[:-1] + v.shape[-2:-1], go.dtype)
        nn = nt_product.usable(go, v)  # the whole call's choice (`matmul_nt`)
        vt = np.empty(v.shape[:-2] + (v.shape[-1], v.shape[-2]), v.dtype) if nn else None
        scale, sb = np.float32(self.scale), _cpu()._k().softmax_bwd32_inplace

        a = (go, q, k, v, p, gp, vt, gq, gk, gv, nn, sb, scale)
        tr = nt_product.transpose_last2

        def part(i0, i1):
            halves.sdpa_backward_part(i0, i1, a, np.matmul, tr)

        b = q.shape[0]
        halves.run(((0, b // 2), (b // 2, b)), part)
        return gq, gk, gv

    def _graph_backward(self, go, q, k, v, bias, ops):
        """The same formulas with recorded ops; P rebuilt from q, k (and the bias)."""
        xp = backend.get_array_module(q._data)
        s = (q @ swapaxes(k, -1, -2)) * self.scale
        n_q, n_k = s.shape[-2], s.shape[-1]
        if self.causal:
            s = s + Tensor._wrap(causal_bias(xp, n_q, n_k, s._data.dtype))
        if bias:
            s = s + bias[0]
        if self.mask is not None:  # -inf added where masked (`_scores`)
            s = s + Tensor._wrap(xp.where(self.mask, 0, -np.inf).astype(s._data.dtype))
        dead = _dead_rows(xp, s._data.max(axis=-1, keepdims=True))
        if dead is not None:  # rows attending to nothing: P = 0 there, no nan in the gradient
            dead = Tensor._wrap(dead)
            s = s.masked_fill(dead, 0.0)
        p = softmax(s, axis=-1)
        if dead is not None:
            p = p.masked_fill(dead, 0.0)
        drop = None if self.drop is None else Tensor._wrap(self.drop)
        pd = p if drop is None else p * drop
        gv = swapaxes(pd, -1, -2) @ go
        gp = go @ swapaxes(v, -1, -2)
        if drop is not None:
            gp = gp * drop
        gs = p * (gp - (gp * p).sum(axis=-1, keepdims=True))
        gss = gs * self.scale
        if bias:
            return gss @ k, swapaxes(gss, -1, -2) @ q, gv, gs
        return gss @ k, swapaxes(gss, -1, -2) @ q, gv
