"""Householder reflectors: torch.geqrf, torch.linalg.householder_product (torch.orgqr) and
torch.ormqr (docs/linalg.md).

LAPACK stores the Q of A = QR compactly (geqrf): below R's diagonal, column i holds the
reflection vector v_i (with an implicit 1 on the diagonal, zeros above), and tau_i its
scale, so that H_i = I - tau_i v_i v_i^H and Q = H_1 H_2 ... H_k (Golub & Van Loan, "Matrix
Computations", 4th ed., section 5.2). `householder_product` forms the first n columns of Q
(LAPACK's orgqr); `ormqr` multiplies a matrix by Q or Q^H without forming Q.

Both are compositions of differentiable ops: each reflector is applied as
X - tau_i v_i (v_i^H X), a rank-1 update that costs O(m n) (never an m x m matrix), so their
gradients (in the vectors, the scales and the other operand; complex ones too) come from the
engine and create_graph works. The vectors are read from the strictly lower triangle only, so
the entries on and above the diagonal get a zero gradient, as PyTorch's.

geqrf itself is NumPy's LAPACK call (`numpy.linalg.qr(mode='raw')`, which returns the factor
transposed: Fortran order); as PyTorch's it has no derivative (its outputs do not require
grad here; PyTorch's raise at backward). The Tensor methods x.geqrf(), x.orgqr(tau) and
x.ormqr(tau, other) call these functions.
"""

from __future__ import annotations

from . import backend, tensor_methods
from .errors import DescentError
from .ops._common import as_tensor
from .ops._common import return_type as _return_type
from .ops.linalg import matmul
from .ops.linalg_decomp import _LowPrecisionError
from .ops.shape import tril
from .ops.untracked import seen
from .tensor import Tensor

__all__ = ["geqrf", "householder_product", "orgqr", "ormqr"]


# torch.return_types.geqrf
GeqrfResult = _return_type("geqrf", ["a", "tau"])


def _check_float(op: str, *tensors: Tensor) -> None:
    dt = tensors[0]._data.dtype
    for t in tensors:
        if t._data.dtype.kind not in "fc" or t._data.dtype.itemsize < 4:
            # PyTorch's geqrf / orgqr kernels are missing for integers, float16 and bfloat16:
            # its NotImplementedError (this error is also a DescentError)
            raise _LowPrecisionError(f"{op}: Expected a floating point or complex tensor as "
                                     f"input (float32 or float64 and their complex types, as "
                                     f"PyTorch's kernels). Got {t._data.dtype}")  # fmt: skip
        if t._data.dtype != dt:
            raise DescentError(f"{op}: tau dtype {t._data.dtype} does not match input dtype "
                               f"{dt}")  # fmt: skip


def geqrf(input) -> GeqrfResult:
    """(a, tau): LAPACK's compact QR of a (batch of) m x n matrix (torch.geqrf): R on and
    above a's diagonal, the Householder vectors below it, tau (..., min(m, n)) their scales.
    No derivative (as PyTorch's)."""
    A = as_tensor(input)
    if A.ndim < 2:
        raise DescentError(f"geqrf: The input tensor A must have at least 2 dimensions, got "
                           f"shape {tuple(A.shape)}")  # fmt: skip
    _check_float("geqrf", A)
    # One QR; both parts `seen`: descent.compile replays each on the call's input (they were
    # frozen when the first two calls agreed).
    a, tau = _geqrf_arrays(A._data)
    return GeqrfResult(seen(_geqrf_part, (A,), (0,), Tensor._wrap(a)),
                       seen(_geqrf_part, (A,), (1,), Tensor._wrap(tau)))  # fmt: skip


def _geqrf_arrays(A):
    """(a, tau) of LAPACK's compact QR, in A's dtype."""
    xp = backend.get_array_module(A)
    h, tau = xp.linalg.qr(A, mode="raw")  # h: (..., n, m), Fortran order
    a = xp.ascontiguousarray(xp.swapaxes(h, -1, -2)).astype(A.dtype, copy=False)
    return a, tau.astype(A.dtype, copy=False)


def _geqrf_part(A, part):
    """geqrf's a (part 0) or tau (part 1) (untracked.seen's kernel)."""
    return _geqrf_arrays(A)[part]


def _reflectors(A: Tensor, k: int) -> Tensor:
    """The vectors v_1..v_k as columns (..., m, k): A's strictly lower triangle, ones on the
    diagonal (the rest of A is not read: no gradient reaches it)."""
    xp = backend.get_array_module(A._data)
    m = A.shape[-2]
    V = A[..., :, :k]
    return tril(V, -1) + Tensor._wrap(xp.eye(m, k, dtype=A._data.dtype))


def _apply(V: Tensor, tau: Tensor, X: Tensor, order, *, left: bool, adjoint: bool) -> Tensor:
    """X with the reflectors H_i (i in `order`) applied one by one: from the left,
    H X = X - tau v (v^H X); from the right, X H = X - tau (X v) v^H; with `adjoint`, H^H
    (conj(tau) in place of tau). V (..., m, k), tau (..., k)."""
    complex_ = V.is_complex()
    for i in order:
        v = V[..., :, i : i + 1]  # (..., m, 1)
        vh = v.mH if complex_ else v.mT  # (..., 1, m)
        t = tau[..., i : i + 1].unsqueeze(-1)  # (..., 1, 1)
        if adjoint and complex_:
            t = t.conj()
        if left:
            X = X - t * matmul(v, matmul(vh, X))
        else:
            X = X - t * matmul(matmul(X, v), vh)
    return X


def _check_batch(op: str, A: Tensor, tau: Tensor) -> None:
    if tau.ndim != A.ndim - 1:
        raise DescentError(f"{op}: Expected tau to have one dimension less than input, but got "
                           f"tau.ndim equal to {tau.ndim} and input.ndim is equal to "
                           f"{A.ndim}")  # fmt: skip
    if tuple(tau.shape[:-1]) != tuple(A.shape[:-2]):
        raise DescentError(f"{op}: Expected batch dimensions of tau to be equal to "
                           f"input.shape[:-2], but got {list(tau.shape[:-1])} (input "
                           f"{tuple(A.shape)})")  # fmt: skip


def householder_product(A, tau) -> Tensor:
    """The first n columns of H_1 H_2 ... H_k, H_i = I - tau_i v_i v_i^H, v_i column i of A
    below the diagonal with a 1 on it (torch.linalg.householder_product, LAPACK's orgqr):
    A (..., m, n) with m >= n, tau (..., k) with k <= n. Differentiable in A's strictly lower
    triangle and in tau (a composition of rank-1 updates)."""
    A, tau = as_tensor(A), as_tensor(tau)
    op = "torch.linalg.householder_product"
    if A.ndim < 2:
        raise DescentError(f"{op}: input must have at least 2 dimensions, got shape "
                           f"{tuple(A.shape)}")  # fmt: skip
    m, n = A.shape[-2:]
    if m < n:
        raise DescentError(f"{op}: input.shape[-2] must be greater than or equal to "
                           f"input.shape[-1] (shape {tuple(A.shape)})")  # fmt: skip
    if tau.ndim >= 1 and tau.shape[-1] > n:
        raise DescentError(f"{op}: input.shape[-1] must be greater than or equal to "
                           f"tau.shape[-1] ({n} < {tau.shape[-1]})")  # fmt: skip
    _check_batch(op, A, tau)
    _check_float(op, A, tau)
    k = tau.shape[-1]
    xp = backend.get_array_module(A._data)
    eye = xp.broadcast_to(xp.eye(m, n, dtype=A._data.dtype), tuple(A.shape))
    # Q E = H_1 (H_2 (... (H_k E))): the last reflector first
    X = Tensor._wrap(eye.copy())
    if k == 0:  # the identity, still an output of A and tau (zero gradients), as PyTorch's
        return X + A[..., :0, :].sum(-2, keepdim=True) + tau.sum(-1, keepdim=True).unsqueeze(-1)
    return _apply(_reflectors(A, k), tau, X, range(k - 1, -1, -1), left=True, adjoint=False)


def orgqr(input, tau) -> Tensor:
    """torch.orgqr: an alias of linalg.householder_product."""
    return householder_product(input, tau)


def ormqr(input, tau, other, left: bool = True, transpose: bool = False) -> Tensor:
    """op(Q) other (left=True) or other op(Q) (left=False), where Q = H_1 ... H_k is the
    square orthogonal (unitary) matrix of the reflectors stored in `input` and `tau` (geqrf's
    outputs) and op(Q) is Q^H with transpose=True (torch.ormqr, LAPACK's ormqr / unmqr).
    Q is never formed: the k reflectors are applied as rank-1 updates (differentiable in
    input's strictly lower triangle, tau and other)."""
    A, tau, C = as_tensor(input), as_tensor(tau), as_tensor(other)
    op = "torch.ormqr"
    if A.ndim < 2:
        raise DescentError(f"{op}: input must have at least 2 dimensions, got shape "
                           f"{tuple(A.shape)}")  # fmt: skip
    if C.ndim != A.ndim:
        raise DescentError(f"{op}: Expected other to have the same number of dimensions as "
                           f"input, but got other.ndim equal to {C.ndim} and input.ndim is "
                           f"equal to {A.ndim}")  # fmt: skip
    _check_batch(op, A, tau)
    if tuple(C.shape[:-2]) != tuple(A.shape[:-2]):
        raise DescentError(f"{op}: Expected batch dimensions of other to be equal to "
                           f"input.shape[:-2], but got {list(C.shape[:-2])} (input "
                           f"{tuple(A.shape)})")  # fmt: skip
    m = A.shape[-2]
    side = C.shape[-2] if left else C.shape[-1]
    if side != m:
        which = "other.shape[-2]" if left else "other.shape[-1]"
        raise DescentError(f"{op}: {which} must be equal to input.shape[-2] ({side} != "
                           f"{m})")  # fmt: skip
    k = tau.shape[-1]
    if k > min(side, A.shape[-1]):
        raise DescentError(f"{op}: tau.shape[-1] must be less than or equal to "
                           f"min(other.shape[{-2 if left else -1}], input.shape[-1]) "
                           f"({k} > {min(side, A.shape[-1])})")  # fmt: skip
    _check_float(op, A, tau, C)
    # Q C = H_1 (... (H_k C)); Q^H C = H_k^H (... (H_1^H C)); C Q = ((C H_1) ...) H_k;
    # C Q^H = ((C H_k^H) ...) H_1^H
    forward = range(k)
    backward = range(k - 1, -1, -1)
    order = backward if left != bool(transpose) else forward
    return _apply(_reflectors(A, k), tau, C, order, left=left, adjoint=bool(transpose))


# x.geqrf(), x.orgqr(tau), x.ormqr(tau, other): Tensor's methods call these through the ops
# table (descent/__init__.py registers the names lazily: this module loads on first use)
tensor_methods.register_ops({"geqrf": geqrf, "orgqr": orgqr, "ormqr": ormqr})


# PyTorch's out= on this module's functions (out_functions.py: one wrapper each).
from .out_functions import install as _install_out  # noqa: E402

_install_out(globals(), "linalg_householder")
