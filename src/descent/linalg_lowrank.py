"""Randomised low-rank SVD and PCA: torch.svd_lowrank and torch.pca_lowrank (docs/linalg.md).

The algorithms are PyTorch's (torch/_lowrank.py), from N. Halko, P.-G. Martinsson and
J. Tropp, "Finding structure with randomness: probabilistic algorithms for constructing
approximate matrix decompositions", arXiv:0909.4061 (2009):

* `_approximate_basis` is their Algorithm 4.4 (randomised subspace iteration): Q with q
  orthonormal columns whose span approximates the range of A - M, from a Gaussian test matrix
  R (n, q) drawn with descent's generator (`descent.manual_seed` makes it repeatable), and
  `niter` rounds of QR-orthonormalised power iteration with A^H and A;
* `svd_lowrank` is their Algorithm 5.1: B = Q^H (A - M) is small (q, n), its exact SVD
  B = U' S Vh gives A - M ~ (Q U') S Vh. A wide matrix (m < n) is handled through A^H, so that
  Q is the short side.

Everything is a composition of differentiable ops (matmul, linalg.qr, linalg.svd), so the
results have the gradients of those compositions: for a fixed draw of R the gradient of the
approximation, as PyTorch's. M is never added to A: the products (A - M) X are formed as
A X - M X (PyTorch's rule, which keeps a sparse A sparse there).
"""

from __future__ import annotations

from . import creation
from .errors import DescentError
from .linalg import qr, svd
from .ops._common import as_tensor
from .ops.linalg import matmul
from .tensor import Tensor

__all__ = ["pca_lowrank", "svd_lowrank"]


def _check_matrix(op: str, A: Tensor) -> None:
    if A.ndim < 2:
        raise DescentError(f"{op}: A must have at least 2 dimensions (..., m, n), got shape "
                           f"{tuple(A.shape)}")  # fmt: skip
    if A._data.dtype.kind not in "fc":
        raise DescentError(f"{op}: A must be floating point or complex, got {A._data.dtype}; "
                           "convert it with A.float()")  # fmt: skip


def _approximate_basis(A: Tensor, q: int, niter: int, M: Tensor | None) -> Tensor:
    """Q (..., m, q) with orthonormal columns such that Q Q^H (A - M) ~ A - M (Halko et al.,
    Algorithm 4.4). The test matrix R is (n, q), shared by every matrix of a batch, as
    PyTorch's."""
    R = creation.randn(A.shape[-1], q, dtype=A.dtype, device=A.device)  # (n, q)

    def times(X):  # (A - M) X without forming A - M
        return matmul(A, X) if M is None else matmul(A, X) - matmul(M, X)

    def adjoint_times(X):  # (A - M)^H X
        return matmul(A.mH, X) if M is None else matmul(A.mH, X) - matmul(M.mH, X)

    Q = qr(times(R)).Q  # (..., m, q)
    for _ in range(niter):
        Q = qr(adjoint_times(Q)).Q  # (..., n, q)
        Q = qr(times(Q)).Q  # (..., m, q)
    return Q


def _svd_lowrank(A: Tensor, q: int, niter: int, M: Tensor | None):
    m, n = A.shape[-2:]
    if M is not None:
        M = as_tensor(M, A).expand(*A.shape)  # broadcast to A's size, as PyTorch
    if m < n:  # work on the tall A^H: Q then spans the short side
        A = A.mH
        M = None if M is None else M.mH
    Q = _approximate_basis(A, q, niter, M)
    B = matmul(Q.mH, A)  # (..., q, n)
    if M is not None:
        B = B - matmul(Q.mH, M)
    U, S, Vh = svd(B, full_matrices=False)
    U, V = matmul(Q, U), Vh.mH
    if m < n:
        U, V = V, U
    return U, S, V


def svd_lowrank(A, q: int | None = 6, niter: int | None = 2, M=None):
    """(U, S, V) with A - M ~ U diag(S) V^H, U (..., m, q), S (..., q), V (..., n, q)
    (torch.svd_lowrank): Halko et al.'s randomised SVD, exact (to rounding) when rank(A - M)
    <= q. Note V, not Vh. Random: seed with `descent.manual_seed` for repeatable results.

    Args:
        A: a matrix or a batch of matrices (..., m, n), floating point or complex.
        q: a slight overestimate of A's rank (default 6).
        niter: the number of subspace iterations (default 2).
        M: a mean to subtract from A, broadcast to A's shape (never added into A).

    Returns:
        (U, S, V), differentiable as the composition of matmuls, qr and svd it is.
    """
    A = as_tensor(A)
    _check_matrix("svd_lowrank", A)
    q = 6 if q is None else int(q)
    niter = 2 if niter is None else int(niter)
    return _svd_lowrank(A, q, niter, M)


def pca_lowrank(A, q: int | None = None, center: bool = True, niter: int = 2):
    """(U, S, V) of the (centred) data matrix A (m samples x n features) by `svd_lowrank`
    (torch.pca_lowrank): V's columns are the principal directions, S^2 / (m - 1) the variances
    along them; q defaults to min(6, m, n). center=True subtracts the column means first.

    Raises:
        ValueError: q outside [0, min(m, n)] or a negative niter (PyTorch's errors).
    """
    A = as_tensor(A)
    _check_matrix("pca_lowrank", A)
    m, n = A.shape[-2:]
    if q is None:
        q = min(6, m, n)
    elif not 0 <= q <= min(m, n):
        raise ValueError(f"q(={q}) must be non-negative integer and not greater than "
                         f"min(m, n)={min(m, n)}")  # fmt: skip
    if not niter >= 0:
        raise ValueError(f"niter(={niter}) must be non-negative integer")
    if center:
        A = A - A.mean(dim=-2, keepdim=True)  # (..., 1, n): the column means
    return _svd_lowrank(A, int(q), int(niter), None)
