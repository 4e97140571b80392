"""The `_ex` variants of torch.linalg's factorisations: cholesky_ex, inv_ex and solve_ex return
an `info` tensor instead of raising on a matrix that cannot be factorised, so that code such as
a Gaussian process's jitter loop (`L, info = cholesky_ex(K); if info.any(): K += eps * I`) runs
unchanged (docs/linalg.md).

info is int32 with the batch shape: 0 where the matrix was factorised, else LAPACK's code, as
PyTorch's: for Cholesky the order of the first leading minor that is not positive-definite, for
inv/solve the first 1-based j with U[j, j] exactly zero in A = P L U (getrf's).

Gradients flow to the matrices that succeeded (the failing ones are swapped for the identity
before the differentiable op, then their outputs are overwritten); a failing matrix's output
holds no gradient, as it holds no meaningful value: PyTorch's is LAPACK's partial state, which
descent reproduces for Cholesky (the unblocked algorithm, potf2: columns before the failure
factorised, the failing diagonal entry holding its non-positive pivot) and fills with nan for
inv and solve (PyTorch's holds nan / inf from the division by the zero pivot).
"""

from __future__ import annotations

import numpy as np

from . import autograd, backend
from .errors import DescentError
from .linalg_lu import lu_factor_ex
from .ops._common import as_tensor
from .ops._common import return_type as _return_type
from .ops.elementwise import where
from .ops.linalg_decomp import LinAlgError, cholesky_lapack, inv, potf2, prepare, solve
from .ops.linalg_decomp import cholesky as _cholesky
from .ops.untracked import computed
from .tensor import Tensor

__all__ = ["cholesky_ex", "inv_ex", "solve_ex"]


# torch.return_types.linalg_cholesky_ex
CholeskyExResult = _return_type("linalg_cholesky_ex", ["L", "info"])


# torch.return_types.linalg_inv_ex
InvExResult = _return_type("linalg_inv_ex", ["inverse", "info"])


# torch.return_types.linalg_solve_ex
SolveExResult = _return_type("linalg_solve_ex", ["result", "info"])


_potf2 = potf2  # (moved to ops/linalg_decomp.py: cholesky_lapack runs it on an inf)


def _swap_failed(A: Tensor, failed: np.ndarray) -> Tensor:
    """A with each failing matrix (failed: bool, A's batch shape) replaced by the identity."""
    xp = backend.get_array_module(A._data)
    mask = Tensor._wrap(xp.asarray(failed[..., None, None]))
    eye = Tensor._wrap(xp.eye(A.shape[-1], dtype=A._data.dtype))
    return where(mask, eye, A)


def _overwrite(out: Tensor, failed: np.ndarray, values: np.ndarray) -> Tensor:
    """`out` with the failing matrices' entries taken from `values` (same shape as out)."""
    xp = backend.get_array_module(out._data)
    mask = failed.reshape(failed.shape + (1,) * (out.ndim - failed.ndim))
    return where(Tensor._wrap(xp.asarray(mask)), Tensor._wrap(xp.asarray(values)), out)


def _nans(res: Tensor) -> np.ndarray:
    """nan in res's shape and dtype (nan + nan j for complex, as PyTorch's failed inverse)."""
    value = complex(np.nan, np.nan) if res._data.dtype.kind == "c" else np.nan
    return np.full(tuple(res.shape), value, res._data.dtype)


def cholesky_ex(A, *, upper: bool = False, check_errors: bool = False,
                out=None) -> CholeskyExResult:  # fmt: skip
    """(L, info) of a (batch of) symmetric matrix (torch.linalg.cholesky_ex): L as
    linalg.cholesky's where info == 0; info the order of the first leading minor that is not
    positive-definite. U = L^H with upper=True.

    Raises:
        LinAlgError: check_errors=True and a matrix is not positive-definite.
    """
    if out is not None:
        raise DescentError("linalg.cholesky_ex: out= is not supported; use the return value")
    A = prepare("linalg.cholesky_ex", A, complex_ok=True)
    xp = backend.get_array_module(A._data)
    # info, the failing matrices and their partial factors through untracked.computed, so that
    # descent.compile recomputes them on each call's A: a replay of a recording made on
    # positive-definite matrices gives eager's values and info on one that is not (it raised,
    # and the failing matrices of a recording were frozen). Where a matrix fails, L holds its
    # partial factor and the Cholesky op sees the identity instead (its gradient there is 0);
    # where none fails the two `where`s give A and L themselves.
    info = computed(_cholesky_info, (A,), (upper, check_errors))
    failed = computed(_failed_mask, (info,), ())  # (batch..., 1, 1) bool
    partial = computed(_cholesky_partial, (A,), (upper,))
    eye = Tensor._wrap(xp.eye(A.shape[-1], dtype=A._data.dtype))
    low = where(failed, partial, _cholesky(where(failed, eye, A), upper=upper))
    return CholeskyExResult(low, info)


def _factor_input(a, upper):
    """potrf('U') reads the upper triangle: it is potrf('L') of A^H, conjugate-transposed."""
    xp = backend.get_array_module(a)
    return xp.conj(xp.swapaxes(a, -1, -2)) if upper else a


def _cholesky_info(a, upper, check_errors=False):
    """cholesky_ex's info of the arrays a (untracked.computed's kernel); with check_errors,
    PyTorch's LinAlgError where a matrix is not positive-definite."""
    xp = backend.get_array_module(a)
    data = _factor_input(a, upper)
    batch = tuple(a.shape[:-2])
    info = np.zeros(batch, np.int32)
    try:
        cholesky_lapack(data)  # the common case: every matrix factorises
    except np.linalg.LinAlgError:
        host = backend.as_numpy(data)
        for idx in np.ndindex(batch):
            info[idx] = _potf2(host[idx])[1]
    if check_errors and info.any():
        bad = int(np.flatnonzero(info.reshape(-1))[0])
        where_ = f"(Batch element {bad}): " if batch else ""
        raise LinAlgError(
            f"linalg.cholesky_ex: {where_}The factorization could not be completed because the "
            f"input is not positive-definite (the leading minor of order "
            f"{int(info.reshape(-1)[bad])} is not positive-definite)."
        )
    return xp.asarray(info)


def _failed_mask(info):
    """The matrices whose factorisation failed (info != 0), as (batch..., 1, 1)."""
    return (info != 0)[..., None, None]


def _cholesky_partial(a, upper):
    """The partial factors of the matrices that are not positive-definite (potf2 stops at the
    failing column, as LAPACK's), zeros elsewhere (untracked.computed's kernel)."""
    xp = backend.get_array_module(a)
    data = _factor_input(a, upper)
    try:
        cholesky_lapack(data)
        return xp.zeros_like(a)
    except np.linalg.LinAlgError:
        pass
    host = backend.as_numpy(data)
    partial = np.zeros_like(host)
    for idx in np.ndindex(tuple(a.shape[:-2])):
        partial[idx] = _potf2(host[idx])[0]
    if upper:
        partial = np.conj(np.swapaxes(partial, -1, -2))
    return xp.asarray(partial)


def _lu_info(A: Tensor) -> np.ndarray:
    """getrf's info for each matrix of A (int32, A's batch shape)."""
    with autograd.no_grad():
        info = lu_factor_ex(A.detach()).info
    return backend.as_numpy(info._data).astype(np.int32)


def _singular_error(op: str, info: np.ndarray) -> LinAlgError:
    flat = info.reshape(-1)
    bad = int(np.flatnonzero(flat)[0])
    where_ = f"(Batch element {bad}): " if info.ndim else ""
    i = int(flat[bad])
    return LinAlgError(
        f"{op}: {where_}The diagonal element {i} is zero, the inversion could not be completed "
        "because the input matrix is singular."
    )


def inv_ex(A, *, check_errors: bool = False, out=None) -> InvExResult:
    """(inverse, info) of a (batch of) square matrix (torch.linalg.inv_ex): the inverse as
    linalg.inv's where info == 0 (nan where the matrix is singular).

    Raises:
        LinAlgError: check_errors=True and a matrix is singular.
    """
    if out is not None:
        raise DescentError("linalg.inv_ex: out= is not supported; use the return value")
    A = prepare("linalg.inv_ex", A, complex_ok=True)
    info = _lu_info(A)
    failed = info != 0
    if check_errors and failed.any():
        raise _singular_error("linalg.inv_ex", info)
    xp = backend.get_array_module(A._data)
    # Which path runs depends on A's values (Python control flow): read through a Tensor, so
    # that descent.compile's read guard runs the call eagerly (read on the array, a replay
    # kept the first recording's path: linalg.inv raised on a singular A of a later call)
    if not bool(Tensor._wrap(failed.any())):
        return InvExResult(inv(A), autograd._new_tensor(xp.asarray(info)))
    res = inv(_swap_failed(A, failed))
    res = _overwrite(res, failed, _nans(res))
    return InvExResult(res, autograd._new_tensor(xp.asarray(info)))


def solve_ex(A, B, *, left: bool = True, check_errors: bool = False, out=None) -> SolveExResult:
    """(result, info) of A X = B (torch.linalg.solve_ex): the result as linalg.solve's where
    info == 0 (nan for the systems of a singular A); info has A's batch shape.

    Raises:
        LinAlgError: check_errors=True and a matrix is singular.
    """
    if out is not None:
        raise DescentError("linalg.solve_ex: out= is not supported; use the return value")
    A = prepare("linalg.solve_ex", A, complex_ok=True)
    B = as_tensor(B)
    info = _lu_info(A)
    failed = info != 0
    if check_errors and failed.any():
        bad = int(np.flatnonzero(info.reshape(-1))[0])
        where_ = f"(Batch element {bad}): " if info.ndim else ""
        raise LinAlgError(
            f"torch.linalg.solve_ex: {where_}The solver failed because the input matrix is "
            "singular."
        )
    xp = backend.get_array_module(A._data)
    # Which path runs depends on A's values (Python control flow): read through a Tensor, so
    # that descent.compile's read guard runs the call eagerly (read on the array, a replay
    # kept the first recording's path: linalg.inv raised on a singular A of a later call)
    if not bool(Tensor._wrap(failed.any())):
        return SolveExResult(solve(A, B, left=left), autograd._new_tensor(xp.asarray(info)))
    res = solve(_swap_failed(A, failed), B, left=left)
    # the batch positions of res that come from a failing A (A's batch broadcast with B's)
    batch_nd = failed.ndim
    # a vector right-hand side (linalg.solve's rule): the result has one fewer dimension
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    res_batch = tuple(res.shape[: res.ndim - (1 if vector else 2)])
    pad = (1,) * (len(res_batch) - batch_nd)
    bad = np.broadcast_to(failed.reshape(pad + failed.shape), res_batch)
    nan = _nans(res)
    return SolveExResult(_overwrite(res, bad, nan), autograd._new_tensor(xp.asarray(info)))
