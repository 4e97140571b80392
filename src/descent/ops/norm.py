"""Fused normalisation kernels: layer norm and RMS norm in one op each.

Both normalise over the trailing `k` dimensions and keep an affine weight/bias of those
dimensions' shape. Forward and backward are single passes over the data with the statistics
saved; under `create_graph=True` the backward rebuilds the statistics from the saved input with
differentiable ops, so higher-order gradients work (see docs/functional.md).
"""

from __future__ import annotations

from .. import backend
from ..autograd import Function


def _affine_grads(self, gy, xhat, F):
    """Gradients of weight and bias: gy * xhat and gy summed over the leading dimensions."""
    lead = tuple(range(gy.ndim - self.k))
    gw = gb = None
    if self.has_w and self.parents[1] is not None:
        gw = (gy * xhat).sum(axis=lead) if lead else gy * xhat
    if self.has_b and self.parents[1 + self.has_w] is not None:
        gb = gy.sum(axis=lead) if lead else gy
    grads = ()
    if self.has_w:
        grads += (gw,)
    if self.has_b:
        grads += (gb,)
    return grads


class LayerNorm(Function):
    """y = (x - mean) * rstd * w + b over the last k dims, rstd = 1/sqrt(var + eps).

    Backward (xhat = (x - mean) rstd, gh = gy * w, means over the normalised dims):
        dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)),  dw = sum(gy xhat),  db = sum(gy).
    Saves xhat and rstd (fast path); the input too, for the create_graph path.
    """

    __slots__ = ("k", "eps", "has_w", "has_b", "xhat", "rstd")
    save_inputs = True
    saved_slots = ("xhat", "rstd")

    def forward(self, x, *affine):
        xp = backend.get_array_module(x)
        axes = tuple(range(x.ndim - self.k, x.ndim))
        mu = x.mean(axis=axes, keepdims=True)
        xc = x - mu  # (..., *normalized_shape), a fresh array we may overwrite
        var = (xc * xc).mean(axis=axes, keepdims=True)
        rstd = 1 / xp.sqrt(var + x.dtype.type(self.eps))
        xc *= rstd  # xc is now xhat
        self.xhat, self.rstd = xc, rstd
        y = xc
        if self.has_w:
            y = y * affine[0]
        if self.has_b:
            y = y + affine[-1]  # the bias is the last input when present
        if y is xc:
            y = xc.copy()  # never hand out the saved xhat itself
        return y

    def backward(self, gy, F):
        ins = self.inputs(F)
        axes = tuple(range(gy.ndim - self.k, gy.ndim))
        if F.is_graph:
            # Rebuild the statistics from x with recorded ops so the result is differentiable.
            x = ins[0]
            mu = x.mean(axis=axes, keepdims=True)
            xc = x - mu
            rstd = ((xc * xc).mean(axis=axes, keepdims=True) + self.eps) ** -0.5
            xhat = xc * rstd
        else:
            xhat, rstd = self.xhat, self.rstd
        gx = None
        if self.parents[0] is not None:
            gh = gy * ins[1] if self.has_w else gy
            m1 = gh.mean(axis=axes, keepdims=True)
            m2 = (gh * xhat).mean(axis=axes, keepdims=True)
            gx = (gh - m1 - xhat * m2) * rstd
        grads = (gx,) + _affine_grads(self, gy, xhat, F)
        return grads


class RMSNorm(Function):
    """y = x * rstd * w over the last k dims, rstd = 1/sqrt(mean(x^2) + eps) (Zhang & Sennrich,
    2019).

    Backward (xhat = x rstd, gh = gy * w): dx = rstd * (gh - xhat * mean(gh * xhat)),
    dw = sum(gy xhat). Saves the input and rstd.
    """

    __slots__ = ("k", "eps", "has_w", "has_b", "rstd")
    save_inputs = True
    saved_slots = ("rstd",)

    def forward(self, x, *affine):
        xp = backend.get_array_module(x)
        axes = tuple(range(x.ndim - self.k, x.ndim))
        rstd = 1 / xp.sqrt((x * x).mean(axis=axes, keepdims=True) + x.dtype.type(self.eps))
        self.rstd = rstd
        y = x * rstd
        if self.has_w:
            y *= affine[0]
        return y

    def backward(self, gy, F):
        ins = self.inputs(F)
        x = ins[0]
        axes = tuple(range(gy.ndim - self.k, gy.ndim))
        if F.is_graph:
            rstd = ((x * x).mean(axis=axes, keepdims=True) + self.eps) ** -0.5
        else:
            rstd = self.rstd
        xhat = x * rstd
        gx = None
        if self.parents[0] is not None:
            gh = gy * ins[1] if self.has_w else gy
            gx = (gh - xhat * (gh * xhat).mean(axis=axes, keepdims=True)) * rstd
        grads = (gx,) + _affine_grads(self, gy, xhat, F)
        return grads
