"""ReLU² (So et al. 2021, "Primer") as one op: y = relu(x)².

The speedrun GPT's MLP (`GPTConfig(relu2=True)`) used `F.relu(h)` then `h * h`: two nodes, each
with a full-size backward pass over (B, T, 4C) values (the product's backward even runs twice,
once per operand). One op saves r = relu(x) and computes gx = 2 r gy in two passes:

- forward: bitwise relu(x) * relu(x);
- backward: gx = (r * gy) * 2, bitwise the composite's gy r + gy r wherever gy is finite (a
  doubling is exact). Where x <= 0 the composite's ReLU backward writes 0 whatever gy is; here
  0 * gy is also 0, except for an infinite or NaN gy, which gives NaN — an upstream gradient
  that is already broken.
- under `create_graph=True` the backward is built from differentiable ops (relu, multiply), so
  second derivatives exist (d²y/dx² = 2 where x > 0).
"""

from __future__ import annotations

from .. import backend
from ..autograd import Function


class ReluSquared(Function):
    """y = max(x, 0)²; saves r = max(x, 0) (the square's root), not x."""

    __slots__ = ("r",)
    save_inputs = True  # for the create_graph path only (the array path reads `r`)
    saved_slots = ("r",)  # forward's saved array: freed after backward, not a parameter

    def forward(self, x):
        xp = backend.get_array_module(x)
        r = xp.maximum(x, 0)
        self.r = r
        return r * r

    def backward(self, gy, ops):
        if ops.is_graph:  # Tensors: d/dx relu(x)^2 = 2 relu(x), recorded
            (x,) = self.inputs(ops)
            return ops.maximum(x, 0) * gy * 2
        gx = self.r * gy
        gx *= 2
        return gx


def relu_squared(x):
    """relu(x)² of a Tensor, as one op (float dtypes; see the module's notes)."""
    return ReluSquared.apply(x)
