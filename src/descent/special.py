"""descent.special: PyTorch's `torch.special` namespace, and nothing else (its public names are
torch.special's: tests/test_gaps_s12.py). The Tensor methods and top-level names PyTorch gives
the same functions (`torch.i0`, `torch.mvlgamma`, `torch.igamma`, `x.i0_()`, `x.erfinv_()`,
`x.polygamma_(n)`, `x.xlogy_(y)`, ...) are in descent.special_torch.

The functions are descent's own ops under PyTorch's special names (`gammaln` is `lgamma`,
`expit` is `sigmoid`, `psi` is `digamma`) and the kernels of `descent.ops.special_functions`,
`descent.ops.bessel` and `descent.ops.polynomials`; see docs/special.md for their accuracy
and gradients.
"""

from __future__ import annotations

import functools as _functools

from .errors import DtypeError as _DtypeError
from .ops._common import as_tensor as _as_tensor
from .ops._common import result_type as _result_type
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
from .tensor import Tensor as _Tensor
from .torch_keywords import torch_names as _torch_names

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


# `x` where PyTorch's schema says x (its parser refuses input= there): renamed before the
# float16 check below wraps them (torch_keywords.torch_names: the same code, new names)
for _name in ("airy_ai", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
              "spherical_bessel_j0"):  # fmt: skip
    globals()[_name] = _torch_names(globals()[_name], {"input": "x"}, __name__, _name)


def _no_half_kernel(fn):
    """fn, refusing a float16 / bfloat16 result: PyTorch's CPU kernels of the Bessel, Airy,
    erfcx, log_ndtr, ndtri, zeta functions and the orthogonal polynomials are float32 /
    float64 only (its NotImplementedError '"bessel_j0_cpu" not implemented for 'Half'', empty
    tensors included), where descent would compute in float64 and round: the dtype of the
    result (of the tensor and number arguments) is checked first."""

    @_functools.wraps(fn)
    def checked(*args, **kwargs):
        operands = [a for a in (*args, *kwargs.values()) if isinstance(a, (_Tensor, int, float))]
        dt = _result_type(*operands) if operands else None
        if dt is not None and dt.kind in "fV" and dt.itemsize == 2:
            raise _DtypeError(
                f"special.{fn.__name__}: not implemented for {dt} (PyTorch's CPU kernel is "
                f"float32 / float64 only); convert the input with .float()"
            )
        return fn(*args, **kwargs)

    return checked


for _name in (
    "airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "modified_bessel_i0",
    "modified_bessel_i1", "modified_bessel_k0", "modified_bessel_k1",
    "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "spherical_bessel_j0", "erfcx",
    "log_ndtr", "ndtri", "zeta", "chebyshev_polynomial_t", "chebyshev_polynomial_u",
    "chebyshev_polynomial_v", "chebyshev_polynomial_w", "hermite_polynomial_h",
    "hermite_polynomial_he", "laguerre_polynomial_l", "legendre_polynomial_p",
    "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u",
    "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w",
):  # fmt: skip
    globals()[_name] = _no_half_kernel(globals()[_name])
del _name


def logit(input, eps: float | None = None) -> _Tensor:
    """log(p / (1 - p)), p clamped to [eps, 1 - eps] when eps is given."""
    return _logit(input, eps)


def round(input, *, decimals: int = 0) -> _Tensor:
    """Round half to even, to `decimals` decimal places (gradient 0). Floating and complex
    tensors only: PyTorch's special.round has no integer kernel (torch.round has)."""
    x = _as_tensor(input)
    if x.dtype.is_floating_point is False and x.dtype.is_complex is False:
        raise _DtypeError(
            f"special.round: not implemented for {x.dtype} (shape {tuple(x.shape)}), as "
            f"PyTorch's; use descent.round or convert with .float()"
        )
    return _round(x, decimals)


def softmax(input, dim: int, *, dtype=None) -> _Tensor:
    """exp(x) / sum(exp(x)) along dim, computed in `dtype` when given."""
    x = input if dtype is None else _as_tensor(input).to(dtype)
    return _softmax(x, dim=dim)


def log_softmax(input, dim: int, *, dtype=None) -> _Tensor:
    """x - logsumexp(x) along dim, computed in `dtype` when given."""
    x = input if dtype is None else _as_tensor(input).to(dtype)
    return _log_softmax(x, dim=dim)


def logsumexp(input, dim, keepdim: bool = False) -> _Tensor:
    """log(sum(exp(x))) over dim, computed stably."""
    return _logsumexp(input, dim=dim, keepdim=keepdim)


# PyTorch's out= on this module's functions (out_functions.py: one wrapper each).
from .out_functions import install as _install_out  # noqa: E402

_install_out(globals(), "special")

# PyTorch's keyword name `input` where descent's functions say `x` (torch_keywords.torch_names:
# the same code under the new name): `special.erf(input=t)`
for _name in ("erf", "exp2", "expit", "expm1", "log1p"):
    globals()[_name] = _torch_names(globals()[_name], {"x": "input"}, __name__, _name)
del _name
