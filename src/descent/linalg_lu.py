"""LU factorisations with gradients: torch.linalg's lu_factor, lu_factor_ex, lu, lu_solve and
torch.lu_unpack (reached through descent.linalg and descent.lu_unpack; see docs/linalg.md).

    >>> import descent as ds
    >>> A = ds.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> LU, pivots = ds.linalg.lu_factor(A)
    >>> pivots  # 1-based row interchanges, as LAPACK's and PyTorch's
    tensor([2, 2], dtype=descent.int32)
    >>> ds.linalg.lu_solve(LU, pivots, ds.tensor([[1.0], [1.0]]))
    tensor([[-1.0000],
            [ 1.0000]])

The factorisation. NumPy has no LU (and SciPy is not a dependency), so `_factor` is the
textbook right-looking Doolittle elimination with partial pivoting (Golub & Van Loan, "Matrix
Computations", 4th ed., Algorithm 3.4.1), vectorised over the batch: one Python step per
column, NumPy operations over every matrix of the batch and every row at once. For column j
it picks the row of largest |a_ij| at or below the diagonal (the first one on a tie, as
LAPACK's idamax), swaps it up, divides the column below the pivot by it (the multipliers, L's
column) and subtracts the outer product from the trailing block. Results follow LAPACK's getrf
conventions, as PyTorch's: LU holds L's strict lower part and U (L's unit diagonal is
implicit); pivots[i] = the 1-based row swapped with row i at step i; info = the first 1-based
j with U[j, j] exactly zero (0 when none). A zero pivot column is skipped, as getrf skips it
(everything below the diagonal is zero then). The cost is (m n min(m, n)) flops in numpy calls
of the batch size, so it suits the small to medium matrices descent is used with.

Gradients. `LUFactor` is one node from A to the packed LU (pivots and info are integers, with
no gradient); `linalg.lu` and `lu_unpack` are views of it (tril / triu), and `lu_solve` is a
composition of general solves with the triangular factors, so all of them differentiate
through the same backward and its create_graph form. The backward is PyTorch's
`linalg_lu_backward` (FunctionsManual.cpp), for A = P L U with k = min(m, n):

* square: gA = P L^{-T} (tril(L^T gL, -1) + triu(gU U^T)) U^{-T};
* wide (m < n, U = [U1 U2]): gA = P L^{-T} [tril(L^T gL - triu(gU) U^T, -1) U1^{-T} + triu(gU1),
  gU2];
* tall (m > n, L = [L1; L2]): gA = P [L1^{-T} triu(gU U^T - L^T gL) + tril(gL1, -1); gL2]
  U^{-T}.

It needs full-rank (leading k x k) factors, as PyTorch's: at a singular matrix the gradient is
not finite (no error is raised, as in PyTorch).

Complex input. The pivot is the row of largest |Re| + |Im| (LAPACK's izamax compares that,
not the modulus), so the pivots are PyTorch's. L and U are rational, hence holomorphic,
functions of A's entries for fixed pivots, so the backward is the real formula with the
derivative conjugated (`@holomorphic`: the transposes become conjugate transposes, as in
PyTorch's formula). lu_solve's adjoint=True solves with A^H.
"""

from __future__ import annotations

import numpy as np

from . import autograd, backend
from .autograd import Function
from .errors import DescentError
from .ops._common import as_tensor, check_devices, holomorphic
from .ops._common import return_type as _return_type
from .ops.linalg_decomp import LinAlgError, _solve, check_float, concat, mH, mT, prepare
from .ops.linalg_decomp import solve_matrix as _solve_matrix
from .ops.shape import expand, triu
from .ops.untracked import computed, seen
from .tensor import Tensor

__all__ = ["LUFactorExResult", "LUFactorResult", "LUResult", "LUUnpackResult", "lu", "lu_factor",
           "lu_factor_ex", "lu_solve", "lu_unpack"]  # fmt: skip


# PyTorch's named tuples (torch.return_types.linalg_lu_factor, ...), printed as PyTorch's
LUFactorResult = _return_type("linalg_lu_factor", ["LU", "pivots"])
LUFactorExResult = _return_type("linalg_lu_factor_ex", ["LU", "pivots", "info"])
LUResult = _return_type("linalg_lu", ["P", "L", "U"])
LUUnpackResult = _return_type("lu_unpack", ["P", "L", "U"])


# ---------------------------------------------------------------------------------------------
# The factorisation on arrays


def _factor(a, pivot: bool = True):
    """(lu, pivots, perm, info) of a (..., m, n) array: see the module docstring. pivots are
    1-based int32 (..., k); perm (..., m) is the row order, P^T A = A[perm] = L U; info int32
    of the batch shape. pivot=False: no row swaps (pivots 1..k), info still flags zeros."""
    xp = backend.get_array_module(a)
    *batch, m, n = a.shape
    k = min(m, n)
    nb = int(np.prod(batch, dtype=np.int64))
    lu = a.reshape(nb, m, n).copy()  # (B, m, n), factorised in place
    rows = xp.arange(nb)
    perm = xp.broadcast_to(xp.arange(m), (nb, m)).copy()  # (B, m)
    pivots = xp.broadcast_to(xp.arange(1, k + 1, dtype=np.int32), (nb, k)).copy()  # (B, k)
    info = xp.zeros(nb, dtype=np.int32)
    for j in range(k):
        if pivot:
            col = lu[:, j:, j]
            # |a| for real, |Re a| + |Im a| for complex (LAPACK's izamax/icamax)
            size = xp.abs(col.real) + xp.abs(col.imag) if col.dtype.kind == "c" else xp.abs(col)
            p = j + xp.argmax(size, axis=1)  # (B,): first largest, as idamax
            pivots[:, j] = p + 1
            # Swap rows j and p of every matrix (and of the row order); p == j swaps nothing.
            row_j, row_p = lu[rows, j].copy(), lu[rows, p]
            lu[rows, j], lu[rows, p] = row_p, row_j
            perm_j = perm[rows, j].copy()
            perm[rows, j], perm[rows, p] = perm[rows, p], perm_j
        d = lu[:, j, j]  # (B,)
        zero = d == 0
        info = xp.where(zero & (info == 0), j + 1, info).astype(np.int32)
        # Multipliers: the column below the pivot over the pivot. A zero pivot leaves the
        # column as it is (it is all zero with pivoting; getrf skips the scaling too).
        col = lu[:, j + 1 :, j] / xp.where(zero, 1, d)[:, None]  # (B, m - j - 1)
        lu[:, j + 1 :, j] = col
        lu[:, j + 1 :, j + 1 :] -= col[:, :, None] * lu[:, j, None, j + 1 :]
    return (lu.reshape(*batch, m, n), pivots.reshape(*batch, k), perm.reshape(*batch, m),
            info.reshape(batch))  # fmt: skip


def _perm_from_pivots(pivots, m: int):
    """The row order perm (..., m) that LAPACK's pivots (..., k) (1-based swaps) describe."""
    xp = backend.get_array_module(pivots)
    *batch, k = pivots.shape
    nb = int(np.prod(batch, dtype=np.int64))
    piv = pivots.reshape(nb, k).astype(np.int64) - 1
    rows = xp.arange(nb)
    perm = xp.broadcast_to(xp.arange(m), (nb, m)).copy()
    for j in range(k):
        p = piv[:, j]
        perm_j = perm[rows, j].copy()
        perm[rows, j], perm[rows, p] = perm[rows, p], perm_j
    return perm.reshape(*batch, m)


def _perm_matrix(perm, dtype):
    """P with A = P (L U), i.e. P[perm[i], i] = 1, for a (..., m) row order."""
    xp = backend.get_array_module(perm)
    m = perm.shape[-1]
    return (perm[..., None, :] == xp.arange(m)[:, None]).astype(dtype)  # (..., m, m)


def _apply_p(ops, perm, x):
    """P x for the row order perm (..., m): (P x)[perm[i]] = x[i], a row gather by the inverse
    order (arrays or Tensors; perm is a constant with no gradient)."""
    xp = backend.get_array_module(perm)
    inv = xp.argsort(perm, axis=-1)  # (..., m)
    idx = xp.broadcast_to(inv[..., None], tuple(x.shape))
    if ops.is_graph:
        idx = autograd._new_tensor(xp.ascontiguousarray(idx))
    return ops.take_along_axis(x, idx, -2)


def _unit_lower(ops, lu, k):
    """L (..., m, k): LU's strict lower part with ones on the diagonal."""
    m = lu.shape[-2]
    data = lu._data if isinstance(lu, Tensor) else lu
    eye = backend.get_array_module(data).eye(m, k, dtype=data.dtype)
    return ops.tril(lu[..., :, :k], -1) + (autograd._new_tensor(eye) if ops.is_graph else eye)


# ---------------------------------------------------------------------------------------------
# The op


@holomorphic  # complex: the transposes of the formula become conjugate transposes
class LUFactor(Function):
    """LU = packed(L, U) of A = P L U (pivots and info: no gradient). gA is PyTorch's
    linalg_lu_backward (module docstring) with gL = tril(gLU, -1), gU = triu(gLU). Saves the
    output (L and U) and the row order (the `perm` slot)."""

    __slots__ = ("lu", "perm", "pivot")
    save_output = True
    saved_slots = ("perm",)

    def forward(self, a):
        if self.lu is None:  # a replay by descent.compile: factorise this call's A
            self.lu, _, self.perm, _ = _factor(a, self.pivot)
        out, self.lu = self.lu, None  # computed by `_factor` before apply (pivots, info too)
        return out

    def backward(self, gy, ops):
        packed = self.output(ops)
        m, n = packed.shape[-2], packed.shape[-1]
        k = min(m, n)
        L, U = _unit_lower(ops, packed, k), ops.triu(packed[..., :k, :])  # (m, k), (k, n)
        gL, gU = ops.tril(gy[..., :, :k], -1), ops.triu(gy[..., :k, :])
        Lt, Ut = mT(ops, L), mT(ops, U)
        if m == n:
            phi = ops.tril(Lt @ gL, -1) + ops.triu(gU @ Ut)
            # L^{-T} phi U^{-T} (triangular solves: a singular U gives PyTorch's infs / nans)
            ga = _right_solve(ops, Ut, _solve(ops, Lt, phi, upper=True))
        elif m < n:  # wide: U = [U1 U2], U1 (k, k)
            phi = ops.tril(Lt @ gL - gU @ Ut, -1)
            left = _right_solve(ops, mT(ops, U[..., :, :k]), phi) + gU[..., :, :k]
            ga = _solve(ops, Lt, concat(ops, [left, gU[..., :, k:]], -1), upper=True)
        else:  # tall: L = [L1; L2], L1 (k, k)
            phi = ops.triu(gU @ Ut - Lt @ gL)
            top = _solve(ops, mT(ops, L[..., :k, :]), phi, upper=True) + gL[..., :k, :]
            ga = _right_solve(ops, Ut, concat(ops, [top, gL[..., k:, :]], -2))
        return _apply_p(ops, self.perm, ga)


def _right_solve(ops, a, b):
    """b a^{-1}, as (a^{-T} b^T)^T, for a lower triangular a (the transpose of LU's U)."""
    return mT(ops, _solve(ops, mT(ops, a), mT(ops, b), upper=True))


# ---------------------------------------------------------------------------------------------
# torch.linalg's functions


def _singular_error(op: str, info, batch) -> LinAlgError:
    """PyTorch's message for lu_factor of a matrix with an exactly zero pivot."""
    flat = backend.as_numpy(info).reshape(-1)
    bad = int(np.flatnonzero(flat)[0])  # the first failing matrix, in row-major batch order
    i = int(flat[bad])
    where = f"(Batch element {bad}): " if batch else ""
    return LinAlgError(
        f"{op}: {where}U[{i},{i}] is zero and using it on lu_solve would result in a division by "
        "zero. If you still want to perform the factorization, consider calling "
        "linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)"
    )


def lu_factor_ex(A, *, pivot: bool = True, check_errors: bool = False,
                 out=None) -> LUFactorExResult:  # fmt: skip
    """(LU, pivots, info) of a (batch of) m x n matrix (torch.linalg.lu_factor_ex): A = P L U
    with L's strict lower part and U packed in LU, pivots 1-based int32 (..., min(m, n)),
    info int32 (...): 0, or the first 1-based j with U[j, j] exactly zero. Differentiable in
    A (LU only). pivot=False factorises without row swaps (PyTorch: CUDA only).

    Raises:
        LinAlgError: check_errors=True and a matrix has a zero pivot.
    """
    if out is not None:
        raise DescentError("linalg.lu_factor_ex: out= is not supported; use the return value")
    A = prepare("linalg.lu_factor", A, square=False, complex_ok=True)
    lu_data, pivots, perm, info = _factor(A._data, pivot)
    if check_errors and bool(info.any()):
        raise _singular_error("torch.linalg.lu_factor_ex", info, A.ndim > 2)
    LU = LUFactor.apply(A, lu=lu_data, perm=perm, pivot=pivot)
    # pivots and info as `seen` results: a replay by descent.compile recomputes them from that
    # call's A (they were frozen, and the replayed LU was None: LUFactor's forward had used
    # its precomputed array up).
    piv = seen(_lu_part, (A,), (pivot, 1), autograd._new_tensor(pivots))
    return LUFactorExResult(LU, piv, seen(_lu_part, (A,), (pivot, 3), autograd._new_tensor(info)))


def _lu_part(a, pivot, part):
    """_factor(a, pivot)[part] (untracked.seen's kernel)."""
    return _factor(a, pivot)[part]


def lu_factor(A, *, pivot: bool = True, out=None) -> LUFactorResult:
    """(LU, pivots) of a (batch of) matrix (torch.linalg.lu_factor): lu_factor_ex's first two
    results, for use with lu_solve.

    Raises:
        LinAlgError: a matrix has an exactly zero pivot (PyTorch's error; linalg.lu and
            lu_factor_ex factorise it anyway).
    """
    if out is not None:
        raise DescentError("linalg.lu_factor: out= is not supported; use the return value")
    LU, pivots, info = lu_factor_ex(A, pivot=pivot)
    if bool(info._data.any()):
        raise _singular_error("torch.linalg.lu_factor", info._data, LU.ndim > 2)
    return LUFactorResult(LU, pivots)


def lu(A, *, pivot: bool = True, out=None) -> LUResult:
    """(P, L, U) with A = P L U (torch.linalg.lu): P (..., m, m) a permutation matrix (empty
    with pivot=False), L (..., m, k) unit lower triangular, U (..., k, n) upper triangular,
    k = min(m, n). Differentiable in A through L and U."""
    if out is not None:
        raise DescentError("linalg.lu: out= is not supported; use the return value")
    LU, pivots, _ = lu_factor_ex(A, pivot=pivot)
    P, L, U = lu_unpack(LU, pivots, unpack_pivots=pivot)
    return LUResult(P, L, U)


def _pivots_matrix(piv, m, dtype):
    """The permutation matrix of LAPACK's pivots (untracked.computed's kernel)."""
    return _perm_matrix(_perm_from_pivots(piv, m), dtype)


def lu_unpack(LU_data, LU_pivots, unpack_data: bool = True, unpack_pivots: bool = True, *,
              out=None) -> LUUnpackResult:  # fmt: skip
    """(P, L, U) from lu_factor's packed result (torch.lu_unpack); an unpacked part is an empty
    tensor when its flag is False. Differentiable in LU_data."""
    if out is not None:
        raise DescentError("lu_unpack: out= is not supported; use the return value")
    LU = prepare("lu_unpack", LU_data, square=False, complex_ok=True)
    piv = _check_pivots("lu_unpack", LU_pivots, LU)
    m, n = LU.shape[-2], LU.shape[-1]
    k = min(m, n)
    xp = backend.get_array_module(LU._data)
    empty = autograd._new_tensor(xp.zeros((0,), LU._data.dtype))
    if unpack_data:
        L = _unit_lower(autograd._graph_namespace, LU, k)
        U = triu(LU[..., :k, :])
    else:
        L = U = empty
    if unpack_pivots:
        # (through untracked.computed: descent.compile replays it on each call's pivots)
        P = computed(_pivots_matrix, (piv,), (m, LU._data.dtype))
    else:
        P = empty
    return LUUnpackResult(P, L, U)


def _check_pivots(op: str, pivots, LU: Tensor) -> Tensor:
    """pivots as an integer Tensor of shape LU's batch + (min(m, n),) with values in 1..m."""
    pivots = as_tensor(pivots)
    m, n = LU.shape[-2], LU.shape[-1]
    want = tuple(LU.shape[:-2]) + (min(m, n),)
    if pivots._data.dtype.kind not in "iu":
        raise DescentError(
            f"{op}: pivots must be an integer tensor (int32, as lu_factor returns), got "
            f"{pivots._data.dtype}"
        )
    if tuple(pivots.shape) != want:
        raise DescentError(
            f"{op}: pivots of shape {tuple(pivots.shape)} do not fit LU of shape "
            f"{tuple(LU.shape)}: expected {want} (pass lu_factor's two results unchanged)"
        )
    d = pivots._data
    if d.size and (int(d.min()) < 1 or int(d.max()) > m):
        raise DescentError(
            f"{op}: pivots must hold 1-based row numbers in 1..{m} (LAPACK's convention), got "
            f"values in {int(d.min())}..{int(d.max())}"
        )
    return pivots


def lu_solve(LU, pivots, B, *, left: bool = True, adjoint: bool = False, out=None) -> Tensor:
    """The solution X of A X = B for A = P L U given by lu_factor (torch.linalg.lu_solve);
    left=False solves X A = B, adjoint=True uses A^H (A^T for real A). LU and pivots
    (..., n, n), (..., n); B (..., n, k) (or (..., k, n) with left=False); batch dimensions
    broadcast.
    Differentiable in B and in LU (through its triangular factors)."""
    if out is not None:
        raise DescentError("linalg.lu_solve: out= is not supported; use the return value")
    LU = prepare("linalg.lu_solve", LU, complex_ok=True)
    B = as_tensor(B)
    check_float("linalg.lu_solve", B, complex_ok=True)
    check_devices("linalg.lu_solve", LU, B)
    piv = _check_pivots("linalg.lu_solve", pivots, LU)
    ops = autograd._graph_namespace  # the differentiable namespace: Tensor ops with graph
    n = LU.shape[-1]
    if B.ndim < 2 or B.shape[-2 if left else -1] != n:
        raise DescentError(
            f"linalg.lu_solve: B of shape {tuple(B.shape)} does not fit A of shape "
            f"{tuple(LU.shape)}: B must be (..., {n}, k) with left=True, (..., k, {n}) with "
            "left=False (a vector b: pass b.unsqueeze(-1))"
        )
    if LU._data.dtype != B._data.dtype:
        raise DescentError(
            f"linalg.lu_solve: LU and B must have the same dtype, got {LU.dtype} and {B.dtype}"
        )
    if not left:  # X A = B  <=>  A^H X^H = B^H (^T for real)
        return _mH(lu_solve(LU, piv, _mH(B), adjoint=not adjoint))
    batch = tuple(np.broadcast_shapes(tuple(LU.shape[:-2]), tuple(B.shape[:-2])))
    LU = expand(LU, batch + (n, n))
    B = expand(B, batch + tuple(B.shape[-2:]))
    # The row gather of P^T (or P) from the pivots' values through untracked.computed:
    # descent.compile replays it on each call's pivots (it was frozen when two calls agreed).
    idx = computed(_lu_solve_index, (piv,), (n, batch, tuple(B.shape), adjoint))
    # The triangular factors as differentiable views of LU (general LAPACK solves with them:
    # simple, and their backward is the solve's, create_graph included).
    L = _unit_lower(ops, LU, n)
    U = triu(LU)
    if not adjoint:  # A^{-1} B = U^{-1} L^{-1} P^T B, and P^T B = B[perm]
        pb = ops.take_along_axis(B, idx, -2)
        return _solve_matrix(U, _solve_matrix(L, pb))
    # A^{-H} B = P L^{-H} U^{-H} B (P is real)
    return ops.take_along_axis(_solve_matrix(_mH(L), _solve_matrix(_mH(U), B)), idx, -2)


def _lu_solve_index(piv, n, batch, shape, adjoint):
    """_apply_p's gather index of P (adjoint) or P^T for the pivots (untracked.computed)."""
    xp = backend.get_array_module(piv)
    perm = xp.broadcast_to(_perm_from_pivots(piv, n), batch + (n,))
    order = perm if adjoint else xp.argsort(perm, axis=-1)
    inv = xp.argsort(order, axis=-1)  # (..., m)
    return xp.ascontiguousarray(xp.broadcast_to(inv[..., None], shape))


def _mH(x: Tensor) -> Tensor:
    """x's conjugate transpose (the transpose for real x; a Tensor)."""
    return mH(autograd._graph_namespace, x)
