"""Spectral matrix functions with gradients: eigh, eigvalsh, svd, svdvals, pinv. See
`linalg_decomp.py` for the conventions (packed outputs, backward passes shared by arrays and
Tensors, LinAlgError).

The eigenvector and singular-vector gradients divide by differences of eigenvalues (squared
singular values): they are exact for distinct values and infinite (nan) for repeated ones, as
PyTorch's, because the vectors themselves are not determined there. A loss that depends on the
vectors only through a quantity that is well defined (a projector, the gauge-invariant part)
still has a finite gradient in exact arithmetic, but not in this formula. The eigenvalue and
singular-value gradients alone (eigvalsh, svdvals, a loss that uses only S) have no division.
"""

from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..errors import DescentError
from ..tensor import Tensor
from .linalg_decomp import (
    array_module,
    diag_embed,
    is_zero,
    lapack_call,
    mT,
    pack,
    prepare,
    unpack,
)

_SVD_FIX = ("An input that holds nan or inf is the usual cause; check it (e.g. with "
            "descent.isfinite(A).all()).")  # fmt: skip

# ---------------------------------------------------------------------------------------------
# eigh, eigvalsh


class Eigh(Function):
    """A = V diag(w) V^T (symmetric A): gA = V (diag(gw) + skew(V^T gV) / E) V^T with
    E_ij = w_j - w_i off the diagonal and skew(X) = (X - X^T) / 2, as PyTorch's
    linalg_eig_backward (a symmetric gradient).
    Saves the packed output (w, V)."""

    __slots__ = ("uplo",)
    save_output = True

    def forward(self, a):
        xp = backend.get_array_module(a)
        w, v = xp.linalg.eigh(a, UPLO=self.uplo)
        return pack(xp, [w, v], a.shape[:-2])

    def backward(self, gy, ops):
        batch, n = self.in_shapes[0][:-2], self.in_shapes[0][-1]
        w, v = unpack(self.output(ops), batch, [(n,), (n, n)])
        gw, gv = unpack(gy, batch, [(n,), (n, n)])
        return eigh_grad(ops, w, v, gw, None if is_zero(gv) else gv)


def eigh_grad(ops, w, v, gw, gv):
    """gA of A = V diag(w) V^T from gw (and gV, or None when the loss does not use V)."""
    inner = diag_embed(gw)
    if gv is not None:
        n = w.shape[-1]
        batch = tuple(w.shape[:-1])
        eye = array_module(w).eye(n, dtype=bool)
        e = w.reshape(batch + (1, n)) - w.reshape(batch + (n, 1))  # E_ij = w_j - w_i
        # Off the diagonal skew(V^T gV)_ij / (w_j - w_i), skew(X) = (X - X^T) / 2: V's
        # columns stay orthonormal, so only the skew part of V^T gV is a direction the
        # eigenvectors can move in (PyTorch projects the same way; the result is symmetric).
        # On the diagonal gw (the 1 only avoids 0 / 0).
        vgv = mT(ops, v) @ gv
        inner = ops.where(eye, inner, 0.5 * (vgv - mT(ops, vgv)) / ops.where(eye, 1.0, e))
    return v @ inner @ mT(ops, v)


def eigh(a, UPLO: str = "L"):
    """(eigenvalues ascending, eigenvectors as columns) of a symmetric (batch of) matrix
    (torch.linalg.eigh); only the UPLO ('L' or 'U') triangle is read."""
    a = prepare("linalg.eigh", a)
    uplo = _uplo("linalg.eigh", UPLO)
    n = a.shape[-1]
    return unpack(Eigh.apply(a, uplo=uplo), a.shape[:-2], [(n,), (n, n)])


def _uplo(op, UPLO):
    if UPLO not in ("L", "U", "l", "u"):
        raise DescentError(f"{op}: Expected UPLO argument to be 'L' or 'U', but got {UPLO!r}")
    return UPLO.upper()


class Eigvalsh(Function):
    """Eigenvalues of a symmetric matrix: gA = V diag(gw) V^T. Saves the eigenvectors (and the
    input, from which create_graph recomputes them as a differentiable eigh)."""

    __slots__ = ("uplo", "vectors")
    save_inputs = True
    saved_slots = ("vectors",)

    def forward(self, a):
        xp = backend.get_array_module(a)
        w, self.vectors = xp.linalg.eigh(a, UPLO=self.uplo)
        return w

    def backward(self, gy, ops):
        if ops.is_graph:  # V depends on A: take it from a recorded eigh
            (a,) = self.inputs(ops)
            w, v = eigh(a, self.uplo)
        else:
            v = self.vectors
        return (v * gy.reshape(tuple(gy.shape[:-1]) + (1, gy.shape[-1]))) @ mT(ops, v)


def eigvalsh(a, UPLO: str = "L") -> Tensor:
    """Eigenvalues (ascending) of a symmetric (batch of) matrix (torch.linalg.eigvalsh)."""
    a = prepare("linalg.eigvalsh", a)
    return Eigvalsh.apply(a, uplo=_uplo("linalg.eigvalsh", UPLO))


# ---------------------------------------------------------------------------------------------
# svd, svdvals


def _svd_cores(full, m, n):
    k = min(m, n)
    return [(m, m if full else k), (k,), (n if full else k, n)]


class SVD(Function):
    """A = U diag(S) Vh. gA as PyTorch's svd_backward: U [(skew(U^T gU) S + S skew(V^T gV)) / E
    + diag(gS)] Vh with E_ij = s_j^2 - s_i^2 and skew(X) = X - X^T, plus the projections onto
    the complement of U (m > n) or V (m < n). With full_matrices the extra columns get no
    gradient (PyTorch narrows them). Saves the packed output."""

    __slots__ = ("full_matrices",)
    save_output = True

    def forward(self, a):
        xp = backend.get_array_module(a)
        u, s, vh = lapack_call("linalg.svd", xp.linalg.svd, a, full_matrices=self.full_matrices,
                               fix=_SVD_FIX)  # fmt: skip
        return pack(xp, [u, s, vh], a.shape[:-2])

    def backward(self, gy, ops):
        batch, (m, n) = self.in_shapes[0][:-2], self.in_shapes[0][-2:]
        k = min(m, n)
        cores = _svd_cores(self.full_matrices, m, n)
        u, s, vh = unpack(self.output(ops), batch, cores)
        gu, gs, gvh = unpack(gy, batch, cores)
        if self.full_matrices:
            u, gu = u[..., :, :k], gu[..., :, :k]
            vh, gvh = vh[..., :k, :], gvh[..., :k, :]
        return svd_grad(ops, u, s, vh, None if is_zero(gu) else gu, gs,
                        None if is_zero(gvh) else gvh)  # fmt: skip


def svd_grad(ops, u, s, vh, gu, gs, gvh):
    """gA of the reduced SVD A = U diag(S) Vh (gu / gvh None when unused)."""
    m, n = u.shape[-2], vh.shape[-1]
    if gu is None and gvh is None:
        return (u * _row(s)) @ vh if gs is None else (u * _row(gs)) @ vh
    k = s.shape[-1]
    eye = array_module(s).eye(k, dtype=bool)
    s2 = s * s
    e = ops.where(eye, 1.0, _row(s2) - _col(s2))  # E_ij = s_j^2 - s_i^2, 1 on the diagonal
    if gu is not None:
        uhgu = mT(ops, u) @ gu
        uhgu = uhgu - mT(ops, uhgu)
    if gvh is not None:
        vhgv = vh @ mT(ops, gvh)  # V^T gV with V = Vh^T
        vhgv = vhgv - mT(ops, vhgv)
    if gu is not None and gvh is not None:
        ga = (uhgu * _row(s) + _col(s) * vhgv) / e
    elif gu is not None:
        ga = uhgu / e * _row(s)
    else:
        ga = _col(s) * vhgv / e
    if gs is not None:
        ga = ga + diag_embed(gs)
    if m > n and gu is not None:
        # gA = [U ga + (I - U U^T) gU S^{-1}] Vh
        ga = u @ ga
        gus = gu / _row(s)
        ga = (ga + gus - u @ (mT(ops, u) @ gus)) @ vh
    elif m < n and gvh is not None:
        # gA = U [ga Vh + S^{-1} gVh (I - V V^T)]
        ga = ga @ vh
        sgvh = gvh / _col(s)
        ga = u @ (ga + sgvh - (sgvh @ mT(ops, vh)) @ vh)
    else:
        ga = u @ ga @ vh
    return ga


def _row(v):
    """(..., k) -> (..., 1, k)."""
    return v.reshape(tuple(v.shape[:-1]) + (1, v.shape[-1]))


def _col(v):
    """(..., k) -> (..., k, 1)."""
    return v.reshape(tuple(v.shape) + (1,))


def svd(a, full_matrices: bool = True):
    """(U, S, Vh) with A = U diag(S) Vh (torch.linalg.svd); S descending."""
    a = prepare("linalg.svd", a, square=False)
    m, n = a.shape[-2:]
    out = SVD.apply(a, full_matrices=bool(full_matrices))
    return unpack(out, a.shape[:-2], _svd_cores(bool(full_matrices), m, n))


class Svdvals(Function):
    """Singular values: gA = U diag(gS) Vh. Saves U and Vh (and the input, from which
    create_graph recomputes them as a differentiable svd)."""

    __slots__ = ("u", "vh")
    save_inputs = True
    saved_slots = ("u", "vh")

    def forward(self, a):
        xp = backend.get_array_module(a)
        self.u, s, self.vh = lapack_call("linalg.svdvals", xp.linalg.svd, a,
                                         full_matrices=False, fix=_SVD_FIX)  # fmt: skip
        return s

    def backward(self, gy, ops):
        if ops.is_graph:  # U and Vh depend on A: take them from a recorded svd
            (a,) = self.inputs(ops)
            u, _, vh = svd(a, full_matrices=False)
        else:
            u, vh = self.u, self.vh
        return (u * _row(gy)) @ vh


def svdvals(a) -> Tensor:
    """Singular values (descending) of a (batch of) matrix (torch.linalg.svdvals)."""
    a = prepare("linalg.svdvals", a, square=False)
    return Svdvals.apply(a)


# ---------------------------------------------------------------------------------------------
# pinv


class Pinv(Function):
    """The pseudo-inverse P = A^+. Its gradient for constant rank (Golub & Pereyra 1973), in
    PyTorch's pinv_backward arrangement (smallest intermediate products); only matmuls, so
    create_graph differentiates it again. Saves the input and the output."""

    __slots__ = ("atol", "rtol", "hermitian")
    save_inputs = True
    save_output = True

    def forward(self, a):
        xp = backend.get_array_module(a)
        if self.hermitian:  # A = V diag(w) V^T: the singular values are |w|
            w, v = xp.linalg.eigh(a)
            keep = xp.abs(w) > self._tol(xp, largest(xp.abs(w)))
            winv = xp.where(keep, 1 / xp.where(keep, w, 1), 0).astype(a.dtype)
            return (v * winv[..., None, :]) @ xp.swapaxes(v, -1, -2)
        u, s, vh = lapack_call("linalg.pinv", xp.linalg.svd, a, full_matrices=False,
                               fix=_SVD_FIX)  # fmt: skip
        keep = s > self._tol(xp, largest(s))
        sinv = xp.where(keep, 1 / xp.where(keep, s, 1), 0).astype(a.dtype)
        return (xp.swapaxes(vh, -1, -2) * sinv[..., None, :]) @ xp.swapaxes(u, -1, -2)

    def _tol(self, xp, smax):
        """max(atol, rtol * sigma_max), per matrix, shaped to compare with the values."""
        return xp.maximum(self.atol, self.rtol * smax)[..., None]

    def backward(self, gy, ops):
        a, = self.inputs(ops)
        p = self.output(ops)
        m, n = a.shape[-2], a.shape[-1]
        ph, gh = mT(ops, p), mT(ops, gy)
        if m <= n:
            k = gh @ p
            kph = k @ ph
            return (-mT(ops, p @ k) + kph - (a @ p) @ kph + (ph @ p) @ (gh - k @ a))
        k = p @ gh
        phk = ph @ k
        return (-mT(ops, k @ p) + (gh - a @ k) @ p @ ph + phk - (phk @ p) @ a)


def largest(s):
    """The largest value along the last axis, 0 for an empty one (sigma_max of a matrix with
    no singular values); written without NumPy's `initial=`, which CuPy lacks."""
    if s.shape[-1] == 0:
        return array_module(s).zeros(s.shape[:-1], dtype=s.dtype)
    return s.max(axis=-1)


def pinv(a, *, atol=None, rtol=None, hermitian: bool = False) -> Tensor:
    """The Moore-Penrose pseudo-inverse (torch.linalg.pinv): singular values at or below
    max(atol, rtol * sigma_max) are treated as zero; rtol defaults to eps * max(m, n) when
    atol is not given (0 when it is), as PyTorch."""
    a = prepare("linalg.pinv", a, square=hermitian)
    for name, tol in (("atol", atol), ("rtol", rtol)):
        if isinstance(tol, Tensor):
            raise DescentError(f"linalg.pinv: {name} as a Tensor is not supported; pass a float")
    m, n = a.shape[-2:]
    eps = float(array_module(a).finfo(a._data.dtype).eps)
    if rtol is None:
        rtol = eps * max(m, n) if atol is None or atol <= 0 else 0.0
    return Pinv.apply(a, atol=float(atol or 0.0), rtol=float(rtol), hermitian=bool(hermitian))
