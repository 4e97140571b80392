"""The Tensor methods and top-level names PyTorch gives torch.special's functions: `torch.i0`,
`torch.mvlgamma`, `torch.igamma`, `torch.igammac`, and the in-place forms (`x.erf_()`,
`x.erfinv_()`, `x.polygamma_(n)`, `x.xlogy_(y)`, ...; those also at PyTorch's top level, such
as `torch.erf_(x)`, are exported by descent's __init__ too). Split from descent.special so that
namespace holds torch.special's names only.

The in-place forms run through `descent.inplace_unary.unary_`, the mechanism of `x.exp_()`:
recorded when a gradient can flow (so autograd's version checks apply), written into the
array otherwise. Importing this module (done on first use of one of these names: descent's
__init__ registers them lazily) registers them in Tensor's ops table.
"""

from __future__ import annotations

from . import tensor_methods
from .inplace_unary import unary_
from .special import gammainc, gammaincc, i0, multigammaln
from .tensor import Tensor

# ---------------------------------------------------------------------------------------------
# PyTorch's top-level and Tensor-method names for these functions


def mvlgamma(input, p: int) -> Tensor:
    """torch.mvlgamma: multigammaln(input, p)."""
    return multigammaln(input, p)


def igamma(input, other) -> Tensor:
    """torch.igamma: gammainc(input, other)."""
    return gammainc(input, other)


def igammac(input, other) -> Tensor:
    """torch.igammac: gammaincc(input, other)."""
    return gammaincc(input, other)


# The in-place forms PyTorch has as Tensor methods (`x.erf_()`); those also at PyTorch's top
# level (`torch.erf_(x)`) are exported by descent's __init__ too.
def erf_(input: Tensor) -> Tensor:
    """x.erf_(): erf written into x."""
    return unary_(input, "erf")


def erfc_(input: Tensor) -> Tensor:
    """x.erfc_(): erfc written into x."""
    return unary_(input, "erfc")


def erfinv_(input: Tensor) -> Tensor:
    """x.erfinv_(): erfinv written into x."""
    return unary_(input, "erfinv")


def lgamma_(input: Tensor) -> Tensor:
    """x.lgamma_(): lgamma written into x."""
    return unary_(input, "lgamma")


def digamma_(input: Tensor) -> Tensor:
    """x.digamma_(): digamma written into x."""
    return unary_(input, "digamma")


def polygamma_(input: Tensor, n: int) -> Tensor:
    """x.polygamma_(n): polygamma(n, x) written into x."""
    return unary_(input, "polygamma", n)


def sinc_(input: Tensor) -> Tensor:
    """x.sinc_(): sinc written into x."""
    return unary_(input, "sinc")


def logit_(input: Tensor, eps: float | None = None) -> Tensor:
    """x.logit_(eps): logit written into x."""
    return unary_(input, "logit", eps)


def sgn_(input: Tensor) -> Tensor:
    """x.sgn_(): sgn written into x."""
    return unary_(input, "sgn")


def i0_(input: Tensor) -> Tensor:
    """x.i0_(): i0 written into x."""
    return unary_(input, "i0")


def exp2_(input: Tensor) -> Tensor:
    """x.exp2_(): exp2 written into x."""
    return unary_(input, "exp2")


def round_(input: Tensor, decimals: int = 0) -> Tensor:
    """x.round_(decimals=0): round written into x."""
    return unary_(input, "round", decimals=decimals)


def xlogy_(input: Tensor, other) -> Tensor:
    """x.xlogy_(y): xlogy(x, y) written into x (y broadcasts to x's shape)."""
    return unary_(input, "xlogy", other)


def heaviside_(input: Tensor, values) -> Tensor:
    """x.heaviside_(values): heaviside written into x."""
    return unary_(input, "heaviside", values)


def mvlgamma_(input: Tensor, p: int) -> Tensor:
    """x.mvlgamma_(p): mvlgamma written into x."""
    return unary_(input, "mvlgamma", p)


def igamma_(input: Tensor, other) -> Tensor:
    """x.igamma_(other): igamma written into x."""
    return unary_(input, "igamma", other)


def igammac_(input: Tensor, other) -> Tensor:
    """x.igammac_(other): igammac written into x."""
    return unary_(input, "igammac", other)


tensor_methods.register_ops({
    "i0": i0, "mvlgamma": mvlgamma, "igamma": igamma, "igammac": igammac, "erf_": erf_,
    "erfc_": erfc_, "erfinv_": erfinv_, "lgamma_": lgamma_, "digamma_": digamma_,
    "polygamma_": polygamma_, "sinc_": sinc_, "logit_": logit_, "sgn_": sgn_, "i0_": i0_,
    "exp2_": exp2_, "round_": round_, "xlogy_": xlogy_, "heaviside_": heaviside_,
    "mvlgamma_": mvlgamma_, "igamma_": igamma_, "igammac_": igammac_,
})  # fmt: skip



# PyTorch's out= on the top-level forms (torch.igamma(x, y, out=o), torch.mvlgamma, ...)
from .out_functions import install as _install_out  # noqa: E402

_install_out(globals(), "special")
