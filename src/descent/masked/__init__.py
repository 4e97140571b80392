"""torch.masked: reductions and normalisations that skip masked-out elements.

Each function takes a strided tensor `input` and a boolean `mask=` (broadcastable to input's
shape; None keeps every element) and follows torch/masked/_ops.py for strided tensors: the
masked-out elements are replaced by the operation's identity (0 for sum, 1 for prod, -inf for
amax/argmax/logsumexp/softmax, +inf for amin/argmin/softmin, nan for median), then the ordinary
op runs. So the masked-out elements never contribute, their gradient is 0, and a position
whose elements are all masked out gets what torch gives there: the identity (sum 0, prod 1,
amax -inf, argmax 0), nan for mean/median/var/std and softmax, -inf for logsumexp.

These are composites over descent's differentiable ops (`where`, `sum`, `amax`, ...), so the
gradients, double gradients included, are theirs. MaskedTensor and the sparse layouts are not
provided (descent holds strided tensors only).
"""

from __future__ import annotations

from ._ops import _input_mask as _input_mask  # torch.masked's helpers, which its tests use
from ._ops import _output_mask as _output_mask
from ._ops import (
    amax,
    amin,
    argmax,
    argmin,
    cumprod,
    cumsum,
    log_softmax,
    logaddexp,
    logsumexp,
    mean,
    median,
    norm,
    normalize,
    prod,
    softmax,
    softmin,
    std,
    sum,
    var,
)

__all__ = [
    "amax", "amin", "argmax", "argmin", "cumprod", "cumsum", "log_softmax", "logaddexp",
    "logsumexp", "mean", "median", "norm", "normalize", "prod", "softmax", "softmin", "std",
    "sum", "var",
]  # fmt: skip
