"""PyTorch's signatures for a few `descent.*` functions whose ops take fewer arguments:
`descent.add(input, other, alpha=)`, `descent.sub(input, other, alpha=)` and `descent.t`.

The ops (`descent.ops.arithmetic.add`/`sub`) stay the two-operand functions that the `+` and `-`
operators and Tensor methods call on the hot path; these wrappers are what `descent.add` and
`descent.sub` name, and only scale `other` first when `alpha` is not 1 (one extra node, as in
PyTorch's `add(x, y, alpha=a)` = `x + a * y`).
"""

from __future__ import annotations

import numpy as np

from .ops.arithmetic import add as _add
from .ops.arithmetic import sub as _sub
from .tensor import Tensor

__all__ = ["add", "sub", "t"]


def _integral(v) -> bool:
    """Whether an operand is integer-valued (an int/bool tensor or Python int/bool)."""
    if isinstance(v, Tensor):
        return v.dtype.kind in "iub"
    return np.asarray(v).dtype.kind in "iub"


def _scaled(name: str, input, other, alpha):
    """`other * alpha`, refusing a fractional alpha for integer operands as PyTorch does."""
    if alpha == 1:
        return other
    if isinstance(alpha, (float, np.floating)) and _integral(input) and _integral(other):
        raise RuntimeError(
            f"{name}: for integral input tensors, argument alpha must not be a floating point "
            f"number (got alpha={alpha}); convert the tensors to a float dtype first"
        )
    return other * alpha


def add(input, other, *, alpha=1) -> Tensor:
    """input + alpha * other (torch.add); `alpha` scales `other` only."""
    return _add(input, _scaled("add", input, other, alpha))


def sub(input, other, *, alpha=1) -> Tensor:
    """input - alpha * other (torch.sub)."""
    return _sub(input, _scaled("sub", input, other, alpha))


def t(input: Tensor) -> Tensor:
    """The transpose of a matrix; a 0-d or 1-D tensor is returned as it is (torch.t).

    Raises:
        RuntimeError: input has more than 2 dimensions (use transpose or mT).
    """
    return input.t()
