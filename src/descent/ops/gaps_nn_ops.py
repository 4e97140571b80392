"""hardshrink and prelu as ops (docs/torch_gaps_nn.md): the functions behind `torch.hardshrink`,
`torch.prelu` and the Tensor methods `x.hardshrink()` / `x.prelu(weight)`.

They live in the ops layer because Tensor reaches its methods through the ops table and may not
import descent.nn; both are composites of `where` (no backward of their own), with the same
rules as torch.nn.functional.hardshrink / prelu in descent.nn.functional._activation_extra.
"""

from __future__ import annotations

from .. import amp
from ..errors import DescentError
from ..grad_fn import show_as
from ..tensor import Tensor
from ._common import as_tensor
from .activation import float_kernel_input
from .elementwise import where


def hardshrink(input, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0. d/dx = 1 outside [-lambd, lambd], 0 inside.

    The zeroed piece is the constant +0 (so its derivative is exactly 0, as PyTorch's); nan
    stays nan (it fails both comparisons).
    """
    x = float_kernel_input(input, "hardshrink", empty_ok=False)  # PyTorch: no int kernel
    return show_as(where((x >= -lambd) & (x <= lambd), 0.0, x), "HardshrinkBackward0", (x,))


def prelu(input, weight) -> Tensor:
    """max(0, x) + weight * min(0, x), one slope per channel (dim 1) or one shared slope (He et
    al. 2015). d/dx = 1 for x > 0, else the slope (PyTorch's choice at 0); d/dweight = x there.

    Raises:
        RuntimeError: the weight has neither 1 element nor one per channel of dim 1, or its
            dtype is not the input's.
        NotImplementedError: integer or bool input and weight (PyTorch has no such kernel).
    """
    x, w = as_tensor(input), as_tensor(weight)
    if amp._depth:  # on PyTorch's autocast list: both in the low dtype
        x, w = amp._lower(x, w)
    if x._data.dtype != w._data.dtype:
        raise DescentError(
            f"prelu: Type promoting not supported: got input {x.dtype} {tuple(x.shape)} and "
            f"weight {w.dtype} {tuple(w.shape)} (as PyTorch); give the weight the input's "
            "floating dtype"
        )
    float_kernel_input(x, "prelu", empty_ok=False)  # PyTorch: "prelu_cpu" for Long
    channels = x.shape[1] if x.ndim >= 2 else 1
    if w.numel() != 1 and (w.ndim != 1 or w.numel() != channels):
        raise DescentError(
            f"prelu: Mismatch of parameter numbers and input channel size. Found parameter "
            f"numbers = {w.numel()} and channel size = {channels} (input {tuple(x.shape)}; the "
            "channels are dim 1, a 1-D input has one channel; pass one slope or one per channel)"
        )
    if w.numel() == 1:
        w = w.reshape(())
    else:  # (C,) -> (C, 1, ...): the slope of channel c multiplies x[:, c]
        w = w.reshape((channels,) + (1,) * (x.ndim - 2))
    return where(x > 0, x, w * x)
