"""PyTorch's top-level linear-algebra names (torch.det, torch.inverse, the older torch.svd and
torch.qr, ...) and the Tensor methods of the same names (x.det(), x.inverse(), ...).

They are thin calls of descent.linalg. `descent/__init__.py` imports them; this module registers
them in Tensor's ops table (`tensor_methods.register_ops`), which the methods in
`tensor_torch_methods.py` call, as `creation_random.py` does for the random fills.
"""

from __future__ import annotations

import warnings

from . import amp, autograd, backend, tensor_methods
from . import linalg as _linalg
from . import linalg_lu as _lu
from .ops._common import as_tensor, return_type
from .ops.linalg import matmul
from .ops.linalg_decomp import check_float as _check_float
from .ops.linalg_decomp import check_matrix as _check_matrix
from .ops.linalg_decomp import cholesky as _cholesky
from .ops.linalg_decomp import det as _det
from .ops.linalg_decomp import inv, mH, solve
from .ops.linalg_spectral import pinv
from .tensor import Tensor
from .torch_keywords import torch_names

__all__ = ["cholesky", "cholesky_inverse", "cholesky_solve", "det", "inverse", "logdet", "lu",
           "lu_solve", "lu_unpack", "matrix_exp", "matrix_power", "pinverse", "qr", "slogdet",
           "svd"]  # fmt: skip

# torch.det(input) and torch.matrix_power(input, n): linalg's functions, which name the matrix
# A (as torch.linalg does), re-made with the top-level names (torch_keywords.py)
det = torch_names(_det, {"a": "input"}, __name__, "det")
matrix_power = torch_names(_linalg.matrix_power, {"A": "input"}, __name__, "matrix_power")
matrix_exp = _linalg.matrix_exp


# torch.return_types.slogdet
SlogdetResult = return_type("slogdet", ["sign", "logabsdet"])


# torch.return_types.svd
SVDResult = return_type("svd", ["U", "S", "V"])


# torch.return_types.qr
QRResult = return_type("qr", ["Q", "R"])


def inverse(input) -> Tensor:
    """torch.inverse: linalg.inv."""
    return inv(input)


def slogdet(input) -> SlogdetResult:
    """torch.slogdet: (sign, logabsdet) as linalg.slogdet."""
    return SlogdetResult(*_linalg.slogdet(input))


def logdet(input) -> Tensor:
    """log det(A): logabsdet where det > 0, -inf where det = 0 and nan where det < 0
    (torch.logdet; its gradient is slogdet's, 0 at the nan entries). For complex A, the
    complex log(sign) + logabsdet (PyTorch's), holomorphic with gradient g A^{-H}."""
    from .ops.elementwise import where

    sign, logabs = _linalg.slogdet(input)
    if sign.dtype.is_complex:
        return sign.log() + logabs
    return where(sign < 0, float("nan"), logabs)


def pinverse(input, rcond: float = 1e-15) -> Tensor:
    """torch.pinverse: linalg.pinv with singular values below rcond * sigma_max cut."""
    return pinv(input, rtol=rcond)


def cholesky(input, upper: bool = False) -> Tensor:
    """torch.cholesky (deprecated in PyTorch for linalg.cholesky, the same factor)."""
    return _cholesky(input, upper=upper)


@amp._float32_op  # on PyTorch's autocast float32 list
def cholesky_solve(B, L, upper: bool = False) -> Tensor:
    """The solution X of A X = B for A = L L^H (or U^H U with upper=True; ^H is ^T for real
    L), given the factor (torch.cholesky_solve). Composite: solve(L L^H, B), differentiable in
    B and L."""
    L = as_tensor(L)
    _check_matrix("cholesky_solve", L)  # (L L^H is square whatever L's shape)
    _check_float("cholesky_solve", L, as_tensor(B), complex_ok=True)
    A = matmul(_mH(L), L) if upper else matmul(L, _mH(L))
    return solve(A, B)


def cholesky_inverse(L, upper: bool = False) -> Tensor:
    """inv(A) for A = L L^H (or U^H U with upper=True; ^H is ^T for real L), given the factor
    (torch.cholesky_inverse). Composite: inv(L L^H), differentiable in L.

    As PyTorch (LAPACK's potri), the value reads only L's triangle. The gradient is PyTorch's,
    -R (G + G^H) R L with R the result and the whole L (-L R (G + G^H) R for upper): for a
    triangular L, the input this function is for, the derivative of inv(L L^H)."""
    L = as_tensor(L)
    _check_matrix("cholesky_inverse", L)  # (L L^H is square whatever L's shape)
    _check_float("cholesky_inverse", L, complex_ok=True)

    def f(m):
        return inv(matmul(_mH(m), m) if upper else matmul(m, _mH(m)))

    xp = backend.get_array_module(L._data)
    a = L._data
    tri = xp.triu(a) if upper else xp.tril(a)
    # Which formula runs depends on L's values (Python control flow): read through a Tensor, so
    # that descent.compile's read guard runs the call eagerly (a bool() of the array was
    # invisible to it: a replay kept the first recording's branch and its triangle, a constant
    # made from the data; session 19's fuzzer).
    if a.ndim < 2 or bool(Tensor._wrap((tri == a).all())):
        return f(L)
    # Not triangular: the triangle's value, and PyTorch's gradient through a surrogate
    # s(L) = -R L L^H R (R held constant), whose derivative is -R (G + G^H) R L.
    R = f(Tensor._wrap(tri)).detach()
    if not L.requires_grad:
        return R
    sur = -matmul(matmul(R, matmul(_mH(L), L) if upper else matmul(L, _mH(L))), R)
    return R + (sur - sur.detach())


def _mH(x: Tensor) -> Tensor:
    """The conjugate transpose of a (batch of) matrix (the transpose for real x)."""
    return mH(autograd._graph_namespace, x)


def svd(input, some: bool = True, compute_uv: bool = True) -> SVDResult:
    """torch.svd, the older API: (U, S, V) with A = U diag(S) V^T (V, not Vh); some=True is the
    reduced SVD. compute_uv=False returns zero-filled U (m, m) and V (n, n), as PyTorch. For a
    complex A, V = Vh^H and A = U diag(S) V^H."""
    a = as_tensor(input)
    if not compute_uv:
        s = _linalg.svdvals(a)
        xp = backend.get_array_module(a._data)
        m, n = a.shape[-2:]
        batch = tuple(a.shape[:-2])
        u = Tensor._wrap(xp.zeros(batch + (m, m), dtype=a._data.dtype))
        v = Tensor._wrap(xp.zeros(batch + (n, n), dtype=a._data.dtype))
        return SVDResult(u, s, v)
    u, s, vh = _linalg.svd(a, full_matrices=not some)
    return SVDResult(u, s, vh.mH)  # V = Vh^H (the conjugate transpose for complex A)


def qr(input, some: bool = True) -> QRResult:
    """torch.qr, the older API: some=True is mode 'reduced', some=False mode 'complete'."""
    return QRResult(*_linalg.qr(input, "reduced" if some else "complete"))


LUWithInfoResult = return_type("_lu_with_info", ["LU", "pivots", "info"])  # torch.lu's


_warned: set = set()  # the deprecated names that warned already (PyTorch warns once each)


def _deprecated(name: str, instead: str) -> None:
    if name not in _warned:
        _warned.add(name)
        warnings.warn(f"torch.{name} is deprecated in favor of {instead} and will be removed in "
                      "a future PyTorch release.", UserWarning, stacklevel=3)  # fmt: skip


def lu(A, pivot: bool = True, get_infos: bool = False, out=None):
    """torch.lu, the older API: (LU, pivots) as linalg.lu_factor, plus info with get_infos
    (as linalg.lu_factor_ex). A singular matrix is factorised without an error, as PyTorch's.
    Deprecated in PyTorch: warns once, as PyTorch does."""
    _deprecated("lu", "torch.linalg.lu_factor / torch.linalg.lu_factor_ex")
    res = _lu.lu_factor_ex(A, pivot=pivot, out=out)
    return LUWithInfoResult(*res) if get_infos else (res.LU, res.pivots)


def lu_solve(b, LU_data, LU_pivots, *, out=None) -> Tensor:
    """torch.lu_solve, the older API: linalg.lu_solve(LU_data, LU_pivots, b) (deprecated in
    PyTorch: warns once, as PyTorch does)."""
    _deprecated("lu_solve", "torch.linalg.lu_solve")
    return _lu.lu_solve(LU_data, LU_pivots, b, out=out)


lu_unpack = _lu.lu_unpack

_TriangularSolve = return_type("triangular_solve", ["solution", "cloned_coefficient"])


def triangular_solve(b, A, upper: bool = True, transpose: bool = False,
                     unitriangular: bool = False):  # fmt: skip
    """(solution X of A X = b, a copy of A): the deprecated torch.triangular_solve(b, A) and
    b.triangular_solve(A) (descent.triangular_solve warns, as PyTorch)."""
    A, b = as_tensor(A), as_tensor(b)
    M = A.transpose(-2, -1) if transpose else A
    up = (not upper) if transpose else upper
    x = _linalg.solve_triangular(M, b, upper=up, unitriangular=unitriangular)
    return _TriangularSolve(x, A.clone())


tensor_methods.register_ops(
    {"lu": lu, "lu_solve": lu_solve,
     "det": det, "logdet": logdet, "slogdet": slogdet, "inverse": inverse, "pinverse": pinverse,
     "matrix_power": matrix_power, "matrix_exp": matrix_exp, "svd": svd, "qr": qr,
     "cholesky": cholesky, "cholesky_solve": cholesky_solve, "cholesky_inverse": cholesky_inverse,
     "triangular_solve": triangular_solve}
)  # fmt: skip


# PyTorch's out= on this module's functions (out_functions.py: one wrapper each).
from .out_functions import install as _install_out  # noqa: E402

_install_out(globals(), "linalg_torch")
