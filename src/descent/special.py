"""descent.special: PyTorch's `torch.special` namespace, plus the Tensor methods and top-level
names that PyTorch gives the same functions (`torch.i0`, `torch.mvlgamma`, `torch.igamma`,
`x.i0_()`, `x.erfinv_()`, `x.polygamma_(n)`, `x.xlogy_(y)`, ...).

The functions are descent's own ops under PyTorch's special names (`gammaln` is `lgamma`,
`expit` is `sigmoid`, `psi` is `digamma`) and the kernels of `descent.ops.special_functions`,
`descent.ops.bessel` and `descent.ops.polynomials`; see docs/special.md for their accuracy
and gradients.

The in-place forms run through `descent.inplace_unary.unary_`, the mechanism of `x.exp_()`:
recorded when a gradient can flow (so autograd's version checks apply), written into the
array otherwise. Importing this module (done by `import descent`) registers them in Tensor's
ops table.
"""

from __future__ import annotations

from . import tensor_methods
from .inplace_unary import unary_
from .ops._common import as_tensor
from .ops.activation import erf
from .ops.activation import sigmoid as expit
from .ops.bessel import (
    airy_ai,
    bessel_j0,
    bessel_j1,
    bessel_y0,
    bessel_y1,
    i0,
    i0e,
    i1,
    i1e,
    modified_bessel_i0,
    modified_bessel_i1,
    modified_bessel_k0,
    modified_bessel_k1,
    scaled_modified_bessel_k0,
    scaled_modified_bessel_k1,
    spherical_bessel_j0,
)
from .ops.elementwise import expm1, log1p
from .ops.math import exp2, xlogy
from .ops.math import round as _round
from .ops.polynomials import (
    chebyshev_polynomial_t,
    chebyshev_polynomial_u,
    chebyshev_polynomial_v,
    chebyshev_polynomial_w,
    hermite_polynomial_h,
    hermite_polynomial_he,
    laguerre_polynomial_l,
    legendre_polynomial_p,
    shifted_chebyshev_polynomial_t,
    shifted_chebyshev_polynomial_u,
    shifted_chebyshev_polynomial_v,
    shifted_chebyshev_polynomial_w,
)
from .ops.softmax import log_softmax as _log_softmax
from .ops.softmax import logsumexp as _logsumexp
from .ops.softmax import softmax as _softmax
from .ops.special import digamma, erfc, erfinv, polygamma, sinc
from .ops.special import lgamma as gammaln
from .ops.special import logit as _logit
from .ops.special_functions import (
    entr,
    erfcx,
    gammainc,
    gammaincc,
    log_ndtr,
    multigammaln,
    ndtr,
    ndtri,
    xlog1py,
    zeta,
)
from .tensor import Tensor

psi = digamma

__all__ = [
    "airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "chebyshev_polynomial_t",
    "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w",
    "hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l",
    "legendre_polynomial_p", "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u",
    "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w", "digamma", "entr",
    "erf", "erfc", "erfcx", "erfinv", "exp2", "expit", "expm1", "gammainc", "gammaincc",
    "gammaln", "i0", "i0e", "i1", "i1e", "log1p", "log_ndtr", "log_softmax", "logit", "logsumexp",
    "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0", "modified_bessel_k1",
    "multigammaln", "ndtr", "ndtri", "polygamma", "psi", "round", "scaled_modified_bessel_k0",
    "scaled_modified_bessel_k1", "sinc", "softmax", "spherical_bessel_j0", "xlog1py", "xlogy",
    "zeta",
]  # fmt: skip


def logit(input, eps: float | None = None) -> Tensor:
    """log(p / (1 - p)), p clamped to [eps, 1 - eps] when eps is given."""
    return _logit(input, eps)


def round(input, *, decimals: int = 0) -> Tensor:
    """Round half to even, to `decimals` decimal places (gradient 0)."""
    return _round(input, decimals)


def softmax(input, dim: int, *, dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along dim, computed in `dtype` when given."""
    x = input if dtype is None else as_tensor(input).to(dtype)
    return _softmax(x, dim=dim)


def log_softmax(input, dim: int, *, dtype=None) -> Tensor:
    """x - logsumexp(x) along dim, computed in `dtype` when given."""
    x = input if dtype is None else as_tensor(input).to(dtype)
    return _log_softmax(x, dim=dim)


def logsumexp(input, dim, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) over dim, computed stably."""
    return _logsumexp(input, dim=dim, keepdim=keepdim)


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


# PyTorch's out= on this module's functions (out_functions.py: one wrapper each).
from .out_functions import install as _install_out  # noqa: E402

_install_out(globals(), "special")
