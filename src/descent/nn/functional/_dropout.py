"""Dropout: zero random elements while training, scaled so the expected value is unchanged.

Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from Overfitting" (2014);
the "inverted" form (scale at training time, identity at evaluation) as PyTorch. The mask is a
constant multiplier, so the gradient needs no op of its own: d(x * m)/dx = m.
"""

from __future__ import annotations

from ...creation import rand
from ...ops._common import as_tensor
from ...tensor import Tensor

__all__ = ["dropout"]


def dropout_mask(shape, p: float, dtype, device, generator):
    """Inverted-dropout mask: 0 with probability p, else 1/(1-p) (so E[mask] = 1).

    Shared with scaled_dot_product_attention's dropout on the attention probabilities. A raw
    array of `dtype` on `device`: the caller multiplies it in as a constant.
    """
    u = rand(*shape, dtype=dtype, device=device, generator=generator)._data
    keep = u >= dtype.type(p)
    return keep * dtype.type(1.0 / (1.0 - p))


def dropout(
    input,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    generator=None,
) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (when training).

    The mask is drawn from `generator` (a descent.Generator) or descent's default generator.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability must lie in [0, 1], got {p}")
    x = as_tensor(input)
    if not training or p == 0.0:
        return x
    if p == 1.0:  # all dropped: the 1/(1-p) scale would divide by zero
        return x * 0.0
    mask = dropout_mask(x.shape, p, x._data.dtype, x.device, generator)
    return x * Tensor._wrap(mask)
