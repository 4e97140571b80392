"""More activation layers around `descent.nn.functional`: the hard family,
the shrink family, SELU/CELU/Mish, Softsign, Softmin, GLU, Threshold, LogSigmoid and PReLU
(the only one with a parameter).
`inplace=True` stores the result in the input, as in `activation.py`."""

from __future__ import annotations

from .. import creation
from . import functional as F
from .module import Module
from .parameter import Parameter

__all__ = [
    "Hardtanh",
    "ReLU6",
    "Hardsigmoid",
    "Hardswish",
    "SELU",
    "CELU",
    "Mish",
    "Softsign",
    "Softmin",
    "GLU",
    "Tanhshrink",
    "Softshrink",
    "Hardshrink",
    "Threshold",
    "LogSigmoid",
    "PReLU",
    "Softmax2d",
    "RReLU",
]


def _inplace(module) -> str:
    """The ", inplace=True" tail of PyTorch's activation reprs."""
    return ", inplace=True" if module.inplace else ""


class Hardtanh(Module):
    """x clamped to [min_val, max_val]."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input):  # PyTorch's names
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        # ", inplace=True" as PyTorch's reprs (here and below: printed models read the same)
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace(self)}"


class ReLU6(Hardtanh):
    """x clamped to [0, 6]."""

    def __init__(self, inplace: bool = False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class _Elementwise(Module):
    """An activation without arguments: forward is `fn(input)`."""

    fn = staticmethod(F.relu)

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        if self.inplace:
            return type(self).fn(input, inplace=True)
        return type(self).fn(input)


class Hardsigmoid(_Elementwise):
    """relu6(x + 3) / 6."""

    fn = staticmethod(F.hardsigmoid)


class Hardswish(_Elementwise):
    """x relu6(x + 3) / 6."""

    fn = staticmethod(F.hardswish)


class SELU(_Elementwise):
    """Scaled ELU with the self-normalising constants."""

    fn = staticmethod(F.selu)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Mish(_Elementwise):
    """x tanh(softplus(x))."""

    fn = staticmethod(F.mish)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Softsign(_Elementwise):
    """x / (1 + |x|)."""

    fn = staticmethod(F.softsign)


class Tanhshrink(_Elementwise):
    """x - tanh(x)."""

    fn = staticmethod(F.tanhshrink)


class LogSigmoid(_Elementwise):
    """log(sigmoid(x))."""

    fn = staticmethod(F.logsigmoid)


class CELU(Module):
    """x if x > 0 else alpha (e^(x/alpha) - 1)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return F.celu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace(self)}"


class Softmin(Module):
    """softmax(-x) along `dim`."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmin(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class GLU(Module):
    """a * sigmoid(b) for the halves a, b of the input along `dim`."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softshrink(Module):
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""

    def __init__(self, lambd: float = 0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, input):
        return F.softshrink(input, self.lambd)

    def extra_repr(self) -> str:
        return str(self.lambd)


class Hardshrink(Softshrink):
    """x where |x| > lambd, else 0."""

    def forward(self, input):
        return F.hardshrink(input, self.lambd)


class Threshold(Module):
    """x where x > threshold, else value."""

    def __init__(self, threshold: float, value: float, inplace: bool = False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input):
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}{_inplace(self)}"


class PReLU(Module):
    """max(0, x) + a * min(0, x) with a learned slope `weight` (num_parameters,): one shared
    slope (num_parameters=1) or one per channel (dim 1 of the input), all starting at `init`.

    Args:
        num_parameters: 1, or the number of input channels.
        init: the initial slope (0.25 as PyTorch).
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None,
                 dtype=None) -> None:  # fmt: skip
        super().__init__()
        self.num_parameters = num_parameters
        self.init = init
        self.weight = Parameter(creation.empty(num_parameters, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.weight._data[...] = self.init
        self.weight._version += 1

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class Softmax2d(Module):
    """Softmax over the channels (dim -3) of (N, C, H, W) or (C, H, W) inputs."""

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise ValueError(
                f"Softmax2d: expected input of 3 or 4 dimensions, got {input.ndim}D input of "
                f"shape {tuple(input.shape)}"
            )
        return F.softmax(input, -3)


class RReLU(Module):
    """Randomized leaky ReLU: a random negative slope in [lower, upper] per element while
    training, (lower + upper) / 2 in evaluation."""

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False):
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input):
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}{_inplace(self)}"
