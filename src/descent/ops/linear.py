"""The fused linear map y = x W^T + b: one op, one matrix product each way.

`descent.nn.functional.linear` (and so `nn.Linear`) calls it. A composite
`matmul(x, w.T) + b` would record three nodes and, for a batched x (B, T, in), run a batched
product per sample; folding the leading dimensions into one (M, in) matrix lets BLAS do a
single large product, which is where an MLP or a transformer spends most of its time.
"""

from __future__ import annotations

import numpy as np

from .. import blas
from ..autograd import Function
from ..opmath import HALF, in_float32
from ._common import conj_if_complex


def _fold(a):
    """(..., k) -> (M, k). reshape(-1, k) cannot infer M when k is 0 (nn.Linear(0, n), an empty
    feature group), so that case names M; one int test on the common path."""
    k = a.shape[-1]
    if k:
        return a.reshape((-1, k))
    m = 1
    for d in a.shape[:-1]:
        m *= d
    return a.reshape((m, 0))


def _mm(a, b):
    """a @ b: NumPy arrays on the BLAS chosen by descent.backends.set_blas (descent/blas.py),
    CuPy arrays and Tensors (create_graph) by their own @."""
    if type(a) is np.ndarray:
        return blas.matmul(a, b)
    return a @ b


class Linear(Function):
    """y = x W^T + b in one op, x (..., in) folded to (M, in) for ONE matrix product.

    Backward: gx = gy W, gW = gy^T x (directly in W's (out, in) layout), gb = sum of gy rows.
    Written once for arrays and Tensors, so it is differentiable under create_graph.
    """

    __slots__ = ("has_b",)  # whether a bias (out,) is the third input
    # Backward needs x for gW and W for gx; they are saved as the input Tensors (versioned, so an
    # in-place change between forward and backward raises) and released after backward.
    save_inputs = True
    cross_saved = True  # x is read for gW, W for gx (autograd_backward._needed)

    def forward(self, x, w, *b):
        if x.dtype == HALF and type(x) is np.ndarray:
            # float16 on the CPU: product and bias in float32, rounded once, as PyTorch's addmm
            # (the product rounded, then the bias added: 1.35x PyTorch's error from float64)
            return in_float32(self.forward, x, w, *b)
        x2 = _fold(x)  # (M, in), a view for contiguous x
        y = _mm(x2, w.T)  # (M, out); BLAS reads the transposed view without a copy
        if self.has_b:
            y += b[0]  # in place on a fresh product: no second (M, out) array
        return y.reshape(x.shape[:-1] + (w.shape[0],))

    def backward(self, gy, ops):
        # `ops` is the backward namespace: arrays in the fast pass, Tensors under create_graph,
        # so the same lines below also build a differentiable graph of the gradient.
        ins = self.inputs(ops)
        x, w = ins[0], ins[1]
        if not ops.is_graph and gy.dtype == HALF and type(gy) is np.ndarray:
            # in float32, rounded once: NumPy's float16 sum of the bias gradient's rows was 7x
            # further from float64 than PyTorch's
            return in_float32(self._grads, gy, x, w, ops)
        return self._grads(gy, x, w, ops)

    def _grads(self, gy, x, w, ops):
        """gx, gW (and gb) from gy and the saved inputs (arrays, or Tensors under
        create_graph)."""
        if w.dtype.kind == "c" or x.dtype.kind == "c":  # complex: gy times the conjugates
            x, w = conj_if_complex(ops, x), conj_if_complex(ops, w)
        gy2 = _fold(gy)  # (M, out)
        gx = gw = gb = None
        # An input that needs no gradient (parents[i] is None) costs no matrix product.
        if self.parents[0] is not None:
            gx = _mm(gy2, w).reshape(tuple(x.shape))
        if self.parents[1] is not None:
            gw = _mm(gy2.swapaxes(-1, -2), _fold(x))  # (out, in)
        if self.has_b and self.parents[2] is not None:
            gb = gy2.sum(axis=0)
        return (gx, gw, gb) if self.has_b else (gx, gw)
