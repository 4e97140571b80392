"""LDL^T factorisation with Bunch-Kaufman pivoting: torch.linalg.ldl_factor, ldl_factor_ex and
ldl_solve (docs/linalg.md).

NumPy has no LAPACK sytrf / sytrs, so this module writes them out: `_sytf2` is LAPACK's
unblocked dsytf2 / zsytf2 / zhetf2 with uplo='L' (Bunch & Kaufman, "Some stable methods for
calculating inertia and solving symmetric linear systems", Math. Comp. 31, 1977; the
partial-pivoting variant with alpha = (1 + sqrt(17)) / 8), and `_sytrs` LAPACK's dsytrs /
zhetrs. The results are LAPACK's compact form, as PyTorch's: L (unit lower triangular, its
multipliers below the diagonal) and the 1x1 / 2x2 blocks of D share one matrix LD (upper
triangle zeroed), and `pivots` (int32, 1-based) holds k for a 1x1 block whose row k was
swapped with row pivots[k], and -p twice for a 2x2 block whose second row was swapped with
row p. PyTorch's sytrf is LAPACK's blocked version for n > 64 (OpenBLAS): the same pivot
choices, in another order of operations (the same values to rounding).

The loops are Python loops over the columns (and over the matrices of a batch, whose pivots
differ) of vectorised row updates: fine for the small systems these functions are used for,
slow for large ones. No gradient, as PyTorch's (whose outputs raise at backward).
"""

from __future__ import annotations

import math

import numpy as np

from . import backend
from .errors import DescentError
from .ops._common import as_tensor
from .ops._common import return_type as _return_type
from .ops.linalg_decomp import LinAlgError
from .ops.untracked import computed, seen
from .tensor import Tensor

__all__ = ["ldl_factor", "ldl_factor_ex", "ldl_solve"]

_ALPHA = (1.0 + math.sqrt(17.0)) / 8.0  # Bunch-Kaufman's growth bound


# torch.return_types.linalg_ldl_factor
LDLFactorResult = _return_type("linalg_ldl_factor", ["LD", "pivots"])


# torch.return_types.linalg_ldl_factor_ex
LDLFactorExResult = _return_type("linalg_ldl_factor_ex", ["LD", "pivots", "info"])


def _abs1(z):
    """LAPACK's cabs1 for complex (|Re| + |Im|, izamax's measure), |x| for real."""
    return np.abs(z.real) + np.abs(z.imag) if np.iscomplexobj(z) else np.abs(z)


def _sytf2(a: np.ndarray, hermitian: bool):
    """LAPACK's ?sytf2 / ?hetf2 (uplo='L') on one n x n matrix, in place: (pivots, info)."""
    n = a.shape[0]
    herm = hermitian and np.iscomplexobj(a)
    conj = np.conj if herm else (lambda x: x)
    ipiv = np.zeros(n, dtype=np.int32)
    info = 0
    if herm:
        a[np.diag_indices(n)] = a.diagonal().real
    k = 0
    while k < n:
        kstep = 1
        absakk = abs(a[k, k].real) if herm else float(_abs1(a[k, k]))
        if k < n - 1:
            col = _abs1(a[k + 1 :, k])
            imax = k + 1 + int(np.argmax(col))
            colmax = float(col.max())
        else:
            imax, colmax = k, 0.0
        if max(absakk, colmax) == 0.0 or math.isnan(absakk):
            info = info or k + 1  # D(k, k) is exactly zero: LAPACK carries on
            kp = k
        else:
            if absakk >= _ALPHA * colmax:
                kp = k  # a 1x1 pivot, no interchange
            else:
                # the largest off-diagonal entry of row / column imax
                rowmax = float(_abs1(a[imax, k:imax]).max())
                if imax < n - 1:
                    rowmax = max(rowmax, float(_abs1(a[imax + 1 :, imax]).max()))
                aii = abs(a[imax, imax].real) if herm else float(_abs1(a[imax, imax]))
                if absakk >= _ALPHA * colmax * (colmax / rowmax):
                    kp = k
                elif aii >= _ALPHA * rowmax:
                    kp = imax  # a 1x1 pivot after swapping k and imax
                else:
                    kp, kstep = imax, 2  # a 2x2 pivot block (k, imax -> k + 1)
            kk = k + kstep - 1
            if kp != kk:  # swap rows and columns kk and kp of the trailing lower triangle
                a[kp + 1 :, [kk, kp]] = a[kp + 1 :, [kp, kk]]
                seg = a[kk + 1 : kp, kk].copy()
                a[kk + 1 : kp, kk] = conj(a[kp, kk + 1 : kp])
                a[kp, kk + 1 : kp] = conj(seg)
                if herm:
                    a[kp, kk] = np.conj(a[kp, kk])
                a[kk, kk], a[kp, kp] = a[kp, kp], a[kk, kk]
                if kstep == 2:
                    a[k + 1, k], a[kp, k] = a[kp, k], a[k + 1, k]
            if kstep == 1:
                if k < n - 1:  # A22 -= x x^T / d (lower triangle), then x / d: L's column
                    d11 = 1.0 / (a[k, k].real if herm else a[k, k])
                    x = a[k + 1 :, k].copy()
                    a[k + 1 :, k + 1 :] -= np.tril(d11 * np.outer(x, conj(x)))
                    a[k + 1 :, k] = d11 * x
                    if herm:
                        tail = np.arange(k + 1, n)
                        a[tail, tail] = a[tail, tail].real
            elif k < n - 2:  # the 2x2 block's update (dsytf2 / zhetf2, lines for KSTEP = 2)
                if herm:
                    d = abs(a[k + 1, k])
                    d11 = a[k + 1, k + 1].real / d
                    d22 = a[k, k].real / d
                    d21 = a[k + 1, k] / d
                    scale = 1.0 / (d11 * d22 - 1.0) / d
                    wk = scale * (d11 * a[k + 2 :, k] - d21 * a[k + 2 :, k + 1])
                    wkp1 = scale * (d22 * a[k + 2 :, k + 1] - np.conj(d21) * a[k + 2 :, k])
                else:
                    d21 = a[k + 1, k]
                    d11 = a[k + 1, k + 1] / d21
                    d22 = a[k, k] / d21
                    t = 1.0 / (d11 * d22 - 1.0)
                    d21 = t / d21
                    wk = d21 * (d11 * a[k + 2 :, k] - a[k + 2 :, k + 1])
                    wkp1 = d21 * (d22 * a[k + 2 :, k + 1] - a[k + 2 :, k])
                upd = np.outer(a[k + 2 :, k], conj(wk)) + np.outer(a[k + 2 :, k + 1], conj(wkp1))
                a[k + 2 :, k + 2 :] -= np.tril(upd)
                a[k + 2 :, k] = wk
                a[k + 2 :, k + 1] = wkp1
                if herm:
                    tail = np.arange(k + 2, n)
                    a[tail, tail] = a[tail, tail].real
        if kstep == 1:
            ipiv[k] = kp + 1
        else:
            ipiv[k] = ipiv[k + 1] = -(kp + 1)
        k += kstep
    return ipiv, info


def _sytrs(ld: np.ndarray, ipiv: np.ndarray, b: np.ndarray, hermitian: bool) -> np.ndarray:
    """LAPACK's ?sytrs / ?hetrs (uplo='L'): X with A X = B from A's factor; b (n, nrhs) in
    place."""
    n = ld.shape[0]
    herm = hermitian and np.iscomplexobj(ld)
    conj = np.conj if herm else (lambda x: x)
    k = 0
    while k < n:  # L D Y = P B, one pivot block at a time
        if ipiv[k] > 0:
            kp = ipiv[k] - 1
            if kp != k:
                b[[k, kp]] = b[[kp, k]]
            b[k + 1 :] -= np.outer(ld[k + 1 :, k], b[k])
            b[k] = b[k] / (ld[k, k].real if herm else ld[k, k])
            k += 1
        else:
            kp = -ipiv[k] - 1
            if kp != k + 1:
                b[[k + 1, kp]] = b[[kp, k + 1]]
            b[k + 2 :] -= np.outer(ld[k + 2 :, k], b[k]) + np.outer(ld[k + 2 :, k + 1], b[k + 1])
            akm1k = ld[k + 1, k]
            akm1 = ld[k, k] / conj(akm1k)
            ak = ld[k + 1, k + 1] / akm1k
            denom = akm1 * ak - 1.0
            bkm1, bk = b[k] / conj(akm1k), b[k + 1] / akm1k
            b[k] = (ak * bkm1 - bk) / denom
            b[k + 1] = (akm1 * bk - bkm1) / denom
            k += 2
    k = n - 1
    while k >= 0:  # L^T X = Y (L^H when Hermitian), undoing the interchanges
        if ipiv[k] > 0:
            b[k] -= conj(ld[k + 1 :, k]) @ b[k + 1 :]
            kp = ipiv[k] - 1
            if kp != k:
                b[[k, kp]] = b[[kp, k]]
            k -= 1
        else:
            b[k] -= conj(ld[k + 1 :, k]) @ b[k + 1 :]
            b[k - 1] -= conj(ld[k + 1 :, k - 1]) @ b[k + 1 :]
            kp = -ipiv[k] - 1
            if kp != k:
                b[[k, kp]] = b[[kp, k]]
            k -= 2
    return b


def _check(op: str, A: Tensor) -> None:
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise DescentError(f"{op}: A must be batches of square matrices, but they are "
                           f"{tuple(A.shape)}")  # fmt: skip
    if A._data.dtype.kind not in "fc":
        raise DescentError(f"{op}: Expected a floating point or complex tensor as input. Got "
                           f"{A._data.dtype}")  # fmt: skip


def ldl_factor_ex(A, *, hermitian: bool = False, check_errors: bool = False):
    """(LD, pivots, info) of the symmetric (Hermitian with hermitian=True) matrices A, only
    their lower triangles read (torch.linalg.ldl_factor_ex, LAPACK's sytrf / hetrf with
    uplo='L'). info (int32, batch shape) is k > 0 where D's k-th diagonal entry is exactly
    zero (the factorisation completes; solving with it divides by zero). No gradient."""
    A = as_tensor(A)
    _check("torch.linalg.ldl_factor_ex", A)
    if backend.is_cupy_array(A._data):
        raise DescentError("torch.linalg.ldl_factor: CPU only (LAPACK's sytrf is not in CuPy); "
                           "move A with A.cpu()")  # fmt: skip
    parts = _ldl_arrays(A._data, hermitian)
    if check_errors and (parts[2] > 0).any():
        _raise("torch.linalg.ldl_factor_ex", parts[2])
    # `seen` results: descent.compile replays each part on the call's A (they were frozen when
    # the first two calls agreed).
    return LDLFactorExResult(*[seen(_ldl_part, (A,), (hermitian, k), Tensor._wrap(p))
                               for k, p in enumerate(parts)])  # fmt: skip


def _ldl_arrays(a, hermitian):
    """(LD, pivots, info) of the arrays a (..., n, n) (sytf2 per matrix)."""
    n = a.shape[-1]
    batch = tuple(a.shape[:-2])
    ld = np.tril(np.array(a, copy=True))  # (..., n, n); the upper triangle is not read
    flat = ld.reshape((math.prod(batch), n, n))  # (count, n, n): -1 fails for n = 0
    pivots = np.zeros((flat.shape[0], n), dtype=np.int32)
    info = np.zeros(flat.shape[0], dtype=np.int32)
    for i in range(flat.shape[0]):
        pivots[i], info[i] = _sytf2(flat[i], hermitian)
    return flat.reshape(ld.shape), pivots.reshape(batch + (n,)), info.reshape(batch)


def _ldl_part(a, hermitian, part):
    """_ldl_arrays(a, hermitian)[part] (untracked.seen's kernel)."""
    return _ldl_arrays(a, hermitian)[part]


def _raise(op: str, infos: np.ndarray) -> None:
    where = np.argwhere(infos > 0)[0] if infos.ndim else ()
    k = int(infos[tuple(where)])
    at = f" (Batch element {tuple(int(j) for j in where)})" if infos.ndim else ""
    raise LinAlgError(f"{op}{at}: The factorization could not be completed because the input "
                      f"is not invertible: D[{k - 1}, {k - 1}] is exactly zero. Use "
                      "ldl_factor_ex to get info instead, or add a multiple of the "
                      "identity")  # fmt: skip


def ldl_factor(A, *, hermitian: bool = False) -> LDLFactorResult:
    """(LD, pivots): ldl_factor_ex that raises LinAlgError where a diagonal entry of D is
    exactly zero (torch.linalg.ldl_factor)."""
    LD, pivots, info = ldl_factor_ex(A, hermitian=hermitian)
    if (info._data > 0).any():
        _raise("torch.linalg.ldl_factor", info._data)
    return LDLFactorResult(LD, pivots)


def ldl_solve(LD, pivots, B, *, hermitian: bool = False) -> Tensor:
    """X with A X = B, from ldl_factor's (LD, pivots) (torch.linalg.ldl_solve, LAPACK's sytrs
    / hetrs); B (..., n, k), batch dimensions broadcast. No gradient."""
    LD, pivots, B = as_tensor(LD), as_tensor(pivots), as_tensor(B)
    op = "torch.linalg.ldl_solve"
    _check(op, LD)
    if backend.is_cupy_array(LD._data) or backend.is_cupy_array(B._data):
        raise DescentError(f"{op}: CPU only (LAPACK's sytrs is not in CuPy); move LD, pivots "
                           "and B with .cpu()")  # fmt: skip
    if B.ndim < 2:
        raise DescentError(f"{op}: B must have at least 2 dimensions, got shape "
                           f"{tuple(B.shape)}")  # fmt: skip
    if pivots._data.dtype.kind not in "iu":
        raise DescentError(f"{op}: Expected pivots to be integers (int32, as ldl_factor "
                           f"returns them), got {pivots._data.dtype}")  # fmt: skip
    if tuple(pivots.shape) != tuple(LD.shape[:-1]):
        raise DescentError(f"{op}: Expected pivots of shape {tuple(LD.shape[:-1])} (LD's "
                           f"without its last dimension), got {tuple(pivots.shape)}")  # fmt: skip
    if B._data.dtype != LD._data.dtype:
        raise DescentError(f"{op}: Expected LD and B to have the same dtype, but got LD of "
                           f"type {LD._data.dtype} and B of type {B._data.dtype}")  # fmt: skip
    n = LD.shape[-1]
    if B.shape[-2] != n:
        raise DescentError(f"Incompatible matrix sizes for {op}: each A matrix is {n} by {n} "
                           f"but each b matrix is {B.shape[-2]} by {B.shape[-1]}")  # fmt: skip
    # (through untracked.computed: descent.compile replays the solve on each call's arrays)
    return computed(_ldl_solve_arrays, (LD, pivots, B), (hermitian,))


def _ldl_solve_arrays(LD, pivots, B, hermitian):
    """ldl_solve on arrays (sytrs per matrix of the broadcast batch)."""
    n = LD.shape[-1]
    batch = np.broadcast_shapes(tuple(LD.shape[:-2]), tuple(B.shape[:-2]))
    count = math.prod(batch)  # explicit: reshape(-1, ...) fails for n = 0
    ld = np.broadcast_to(np.asarray(LD), batch + (n, n)).reshape((count, n, n))
    piv = np.broadcast_to(np.asarray(pivots), batch + (n,)).reshape((count, n))
    x = np.array(np.broadcast_to(np.asarray(B), batch + tuple(B.shape[-2:])), copy=True)
    flat = x.reshape((count,) + tuple(B.shape[-2:]))
    for i in range(flat.shape[0]):
        _sytrs(ld[i], piv[i], flat[i], hermitian)
    return flat.reshape(x.shape)
