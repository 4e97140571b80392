"""Rotary position embedding as one op (the rotation of channel pairs (i, i + D/2)).

`descent.nn.apply_rotary_emb` used to be built from two slices, four multiplies, an add, a
subtract and a concatenation: nine graph nodes and as many temporaries per call, twice per
attention layer (queries and keys). This op does the same arithmetic in one node:

    y1 = x1 * cos - x2 * sin            y2 = x2 * cos + x1 * sin      (x1, x2 = the two halves)

The forward is bitwise the composite's (the same products, the same sum order; a + b == b + a
exactly). The backward is the inverse rotation, gx = rotate(gy, cos, -sin), which under
`create_graph=True` is this op again, so derivatives of every order exist.
"""

from __future__ import annotations

from .. import backend
from ..autograd import Function


def _rotate(xp, x, cos, sin):
    """The rotation of x's channel pairs on arrays: a new array of x's shape and dtype.

    Computed as y = x * [cos, cos] + swap(x) * [-sin, sin] with swap(x) = [x2, x1]: three
    passes whose inner loops run over whole (T, D) rows. The half-width form (x1 * cos on the
    strided halves) makes NumPy's inner loop D / 2 values long and took 3x as long (660 vs
    210 us on (24, 4, 64, 32) float32). Negating sin is exact and a + b == b + a, so every
    value is bitwise x1 cos - x2 sin and x2 cos + x1 sin.
    """
    half = x.shape[-1] // 2
    cos_full = xp.concatenate([cos, cos], axis=-1)  # (T, D): small tables
    sin_full = xp.concatenate([-sin, sin], axis=-1)
    swapped = xp.empty(x.shape, dtype=x.dtype)
    swapped[..., :half] = x[..., half:]
    swapped[..., half:] = x[..., :half]
    swapped *= sin_full
    y = x * cos_full
    y += swapped
    return y


class Rotary(Function):
    """y = rotate(x): (..., T, D) -> (..., T, D) with constant cos/sin tables broadcastable to
    (..., T, D / 2) (arrays of x's dtype and device). Saves nothing but the tables."""

    __slots__ = ("cos", "sin")

    def forward(self, x):
        return _rotate(backend.get_array_module(x), x, self.cos, self.sin)

    def backward(self, gy, ops):
        if ops.is_graph:  # a Tensor: the inverse rotation, recorded (higher-order grads)
            return Rotary.apply(gy, cos=self.cos, sin=-self.sin)
        return _rotate(backend.get_array_module(gy), gy, self.cos, -self.sin)


def rotary(x, cos, sin):
    """Rotate x (a Tensor, (..., T, D), D even) by the angles of the tables cos, sin (arrays
    broadcastable to (..., T, D / 2), x's dtype); validation is the caller's
    (`descent.nn.apply_rotary_emb`)."""
    return Rotary.apply(x, cos=cos, sin=sin)
