"""Spectral matrix functions with gradients: eigh, eigvalsh, svd, svdvals, pinv. See
`linalg_decomp.py` for the conventions (packed outputs, backward passes shared by arrays and
Tensors, LinAlgError).

The eigenvector and singular-vector gradients divide by differences of eigenvalues (squared
singular values): they are exact for distinct values and infinite (nan) for repeated ones, as
PyTorch's, because the vectors themselves are not determined there. A loss that depends on the
vectors only through a quantity that is well defined (a projector, the gauge-invariant part)
still has a finite gradient in exact arithmetic, but not in this formula. The eigenvalue and
singular-value gradients alone (eigvalsh, svdvals, a loss that uses only S) have no division.

Complex inputs (complex64 / complex128) follow PyTorch: transposes become conjugate transposes
(`mH`), eigenvalues and singular values are real, and since each complex eigenvector (singular
vector pair) is defined only up to a phase e^{i phi}, a loss must not depend on that phase:
backward checks Im diag(V^H gV) ~ 0 (eigh) or Im diag(U^H gU) ~ -Im diag(V^H gV) (svd) with
PyTorch's tolerance (1e-2) and raises its error otherwise (`check_gauge`). The complex SVD
gradient has one extra diagonal term, i Im diag(U^H gU) / s (PyTorch's svd_backward; derived
in docs/linalg.md). The packed output of a complex op is complex: the real eigenvalues /
singular values are taken back out with `real` (a view), so their gradient is real.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..errors import DescentError
from ..tensor import Tensor
from ._common import conj_if_complex
from .complex import real as _real_tensor
from .linalg_decomp import (
    array_module,
    diag_embed,
    diag_part,
    is_zero,
    lapack_call,
    mH,
    pack,
    prepare,
    unpack,
)
from .untracked import computed

_SVD_FIX = ("An input that holds nan or inf is the usual cause; check it (e.g. with "
            "descent.isfinite(A).all()).")  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Complex helpers: the same code on arrays and on Tensors (create_graph)


def is_complex(x) -> bool:
    """True for a complex array or Tensor."""
    return (x._data if isinstance(x, Tensor) else x).dtype.kind == "c"


conj = conj_if_complex  # conj(ops, x): conj(x) of a complex array or Tensor, x when real


def real_part(ops, x):
    """Re(x) of a complex array or Tensor; x itself when real."""
    if not is_complex(x):
        return x
    return _real_tensor(x) if ops.is_graph else x.real


def imag_data(x):
    """Im(x) as a plain array (for the gauge checks, which read values only)."""
    data = x._data if isinstance(x, Tensor) else x
    return data.imag


_GAUGE = {
    "linalg_eigh_backward": ("eigenvectors", "so it is ill-defined", "V^H gV",
                             "|V|, V diag(w) V^H or the projectors V[..., :, i] V[..., :, i]^H"),
    "linalg_eig_backward": ("eigenvectors", "so it is ill-defined", "V^H gV",
                            "|V|, or V diag(L) V^-1"),
    "svd_backward": ("singular vectors", "making it ill-defined",
                     "2 (U^H gU + V^H gV)", "|U|, |V|, U diag(S) Vh or U U^H"),
}  # fmt: skip


def check_gauge(op: str, bad, shape, worst) -> None:
    """Raise PyTorch's error when a loss depends on the phases of complex eigenvectors or
    singular vectors (`bad` any True), naming the op, the input shape and the fix."""
    if not bool(bad.any()):
        return
    what, tail, diag, fix = _GAUGE[op]
    term = "phase term" if op == "svd_backward" else "quantity"
    raise DescentError(
        f"{op}: The {what} in the complex case are specified up to multiplication by "
        f"e^{{i phi}}. The specified loss function depends on this {term}, {tail}. (input of "
        f"shape {tuple(shape)}: |Im diag({diag})| reaches {float(worst):.3g}, above PyTorch's "
        f"tolerance 1e-2.) Make the loss depend on the {what} only through phase-invariant "
        f"quantities such as {fix}."
    )


# ---------------------------------------------------------------------------------------------
# eigh, eigvalsh


class Eigh(Function):
    """A = V diag(w) V^H (Hermitian A): gA = V (diag(gw) + skewh(V^H gV) / E) V^H with
    E_ij = w_j - w_i off the diagonal and skewh(X) = (X - X^H) / 2, as PyTorch's
    linalg_eig_backward (a Hermitian gradient). Saves the packed output (w, V); complex input
    packs w as complex (its real part is the eigenvalue)."""

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
        return eigh_grad(ops, real_part(ops, w), v, real_part(ops, gw),
                         None if is_zero(gv) else gv)  # fmt: skip


def eigh_grad(ops, w, v, gw, gv):
    """gA of A = V diag(w) V^H from gw (and gV, or None when the loss does not use V); w and gw
    real, V and gV complex for a complex A."""
    inner = diag_embed(gw)
    if gv is not None:
        n = w.shape[-1]
        batch = tuple(w.shape[:-1])
        eye = array_module(w).eye(n, dtype=bool)
        e = w.reshape(batch + (1, n)) - w.reshape(batch + (n, 1))  # E_ij = w_j - w_i
        vgv = mH(ops, v) @ gv
        if is_complex(vgv):
            # V -> V diag(e^{i phi}) leaves A unchanged and changes the loss by
            # phi . Im diag(V^H gV): that must be ~0 for the gradient to exist.
            im = abs(array_module(vgv).diagonal(imag_data(vgv), 0, -2, -1))
            check_gauge("linalg_eigh_backward", ~(im <= 1e-2), v.shape, _max(im))
        # Off the diagonal skewh(V^H gV)_ij / (w_j - w_i), skewh(X) = (X - X^H) / 2: V's
        # columns stay orthonormal, so only the skew-Hermitian part of V^H gV is a direction
        # the eigenvectors can move in (PyTorch projects the same way; the result is
        # Hermitian). On the diagonal gw (the 1 only avoids 0 / 0).
        inner = ops.where(eye, inner, 0.5 * (vgv - mH(ops, vgv)) / ops.where(eye, 1.0, e))
    return v @ inner @ mH(ops, v)


def _max(x):
    """The largest entry of an array, 0 when empty (for error messages)."""
    return x.max() if x.size else 0.0


def eigh(a, UPLO: str = "L"):
    """(eigenvalues ascending, eigenvectors as columns) of a Hermitian (symmetric) (batch of)
    matrix (torch.linalg.eigh); only the UPLO ('L' or 'U') triangle is read. The eigenvalues
    are real; the eigenvectors are complex for a complex A."""
    a = prepare("linalg.eigh", a, complex_ok=True)
    uplo = _uplo("linalg.eigh", UPLO)
    n = a.shape[-1]
    w, v = unpack(Eigh.apply(a, uplo=uplo), a.shape[:-2], [(n,), (n, n)])
    return (_real_tensor(w) if is_complex(w) else w), v


def _uplo(op, UPLO):
    if UPLO not in ("L", "U", "l", "u"):
        raise DescentError(f"{op}: Expected UPLO argument to be 'L' or 'U', but got {UPLO!r}")
    return UPLO.upper()


class Eigvalsh(Function):
    """Eigenvalues of a Hermitian matrix: gA = V diag(gw) V^H. Saves the eigenvectors (and the
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
        return (v * gy.reshape(tuple(gy.shape[:-1]) + (1, gy.shape[-1]))) @ mH(ops, v)


def eigvalsh(a, UPLO: str = "L") -> Tensor:
    """Eigenvalues (ascending, real) of a Hermitian (batch of) matrix (torch.linalg.eigvalsh)."""
    a = prepare("linalg.eigvalsh", a, complex_ok=True)
    return Eigvalsh.apply(a, uplo=_uplo("linalg.eigvalsh", UPLO))


# ---------------------------------------------------------------------------------------------
# svd, svdvals


def _svd_cores(full, m, n):
    k = min(m, n)
    return [(m, m if full else k), (k,), (n if full else k, n)]


def _svd(a, full_matrices: bool = True):
    """xp.linalg.svd(a) (U, S, Vh) as torch's: a matrix holding a nan fails (LinAlgError, its
    message; lapack_call names the op, shape and batch element), one holding an inf (no nan)
    gives nan U, S and Vh while the other batch elements are computed. NumPy's OpenBLAS float32
    gesdd never returns for a matrix with an inf (grad2 fuzz 30500201: svdvals hung), so such a
    matrix is not handed to LAPACK; the isfinite check costs O(m n) beside the O(m n k) SVD."""
    xp = backend.get_array_module(a)
    if xp is not np or a.size == 0:
        return xp.linalg.svd(a, full_matrices=full_matrices)
    fin = np.isfinite(a).all(axis=(-2, -1))
    if fin.all():
        return np.linalg.svd(a, full_matrices=full_matrices)
    if np.isnan(a).any():
        raise np.linalg.LinAlgError(
            "The algorithm failed to converge because the input matrix contained non-finite "
            "values"
        )
    bad = ~fin
    u, s, vh = np.linalg.svd(np.where(bad[..., None, None], 0, a), full_matrices=full_matrices)
    u[bad], s[bad], vh[bad] = np.nan, np.nan, np.nan
    return u, s, vh


class SVD(Function):
    """A = U diag(S) Vh. gA as PyTorch's svd_backward: U [(skew(U^H gU) S + S skew(V^H gV)) / E
    + diag(gS)] Vh with E_ij = s_j^2 - s_i^2 and skew(X) = X - X^H, plus i Im diag(U^H gU) / S
    on the diagonal for complex A, plus the projections onto the complement of U (m > n) or V
    (m < n). With full_matrices the extra columns get no gradient (PyTorch narrows them).
    Saves the packed output (complex for complex A: S is its real part)."""

    __slots__ = ("full_matrices",)
    save_output = True

    def forward(self, a):
        xp = backend.get_array_module(a)
        u, s, vh = lapack_call("linalg.svd", _svd, a, full_matrices=self.full_matrices,
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
        return svd_grad(ops, u, real_part(ops, s), vh, None if is_zero(gu) else gu,
                        real_part(ops, gs), None if is_zero(gvh) else gvh)  # fmt: skip


def svd_grad(ops, u, s, vh, gu, gs, gvh):
    """gA of the reduced SVD A = U diag(S) Vh (gu / gvh None when unused; S and gS real)."""
    m, n = u.shape[-2], vh.shape[-1]
    if gu is None and gvh is None:
        return (u * _row(s)) @ vh if gs is None else (u * _row(gs)) @ vh
    k = s.shape[-1]
    xp = array_module(s)
    eye = xp.eye(k, dtype=bool)
    s2 = s * s
    e = ops.where(eye, 1.0, _row(s2) - _col(s2))  # E_ij = s_j^2 - s_i^2, 1 on the diagonal
    if gu is not None:
        uhgu = mH(ops, u) @ gu
        uhgu = uhgu - mH(ops, uhgu)
    if gvh is not None:
        vhgv = vh @ mH(ops, gvh)  # V^H gV with V = Vh^H
        vhgv = vhgv - mH(ops, vhgv)
    complex_ = is_complex(u)
    if complex_:
        # (U, V) -> (U D, V D), D = diag(e^{i phi}), leaves A unchanged and changes the loss by
        # phi . (Im diag(U^H gU) + Im diag(V^H gV)): PyTorch's check that this is ~0 (its
        # skew(X) = X - X^H doubles both sides). The diagonals are read from the values only.
        zeros = xp.zeros(tuple(s.shape), dtype=(s._data if isinstance(s, Tensor) else s).dtype)
        im_u = xp.diagonal(imag_data(uhgu), 0, -2, -1) if gu is not None else zeros
        im_v = xp.diagonal(imag_data(vhgv), 0, -2, -1) if gvh is not None else zeros
        gap = abs(im_u + im_v)
        check_gauge("svd_backward", ~(gap <= 1e-2 + 1e-2 * abs(im_v)), u.shape[:-1]
                    + vh.shape[-1:], _max(gap))  # fmt: skip
    if gu is not None and gvh is not None:
        ga = (uhgu * _row(s) + _col(s) * vhgv) / e
    elif gu is not None:
        ga = uhgu / e * _row(s)
    else:
        ga = _col(s) * vhgv / e
    if gs is not None:
        ga = ga + diag_embed(gs)
    if complex_ and gu is not None:
        # The diagonal of dP = U^H dA V is ds_i + i s_i Im (U^H dU - V^H dV)_ii: only the
        # difference of the phase rotations is determined, and fixing Im (V^H dV)_ii = 0 (any
        # choice gives the same gradient for a phase-invariant loss) makes U's rotation
        # Im(dP_ii) / s_i. Its gradient term is i Im diag(U^H gU) / s = diag(uhgu) / (2 s),
        # uhgu's diagonal being 2i Im diag(U^H gU) (PyTorch adds the same).
        ga = ga + diag_embed(diag_part(ops, uhgu) * 0.5 / s)
    if m > n and gu is not None:
        # gA = [U ga + (I - U U^H) gU S^{-1}] Vh
        ga = u @ ga
        gus = gu / _row(s)
        ga = (ga + gus - u @ (mH(ops, u) @ gus)) @ vh
    elif m < n and gvh is not None:
        # gA = U [ga Vh + S^{-1} gVh (I - V V^H)]
        ga = ga @ vh
        sgvh = gvh / _col(s)
        ga = u @ (ga + sgvh - (sgvh @ mH(ops, vh)) @ vh)
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
    """(U, S, Vh) with A = U diag(S) Vh (torch.linalg.svd); S real and descending, U and Vh
    complex for a complex A."""
    a = prepare("linalg.svd", a, square=False, complex_ok=True)
    m, n = a.shape[-2:]
    out = SVD.apply(a, full_matrices=bool(full_matrices))
    u, s, vh = unpack(out, a.shape[:-2], _svd_cores(bool(full_matrices), m, n))
    return u, (_real_tensor(s) if is_complex(s) else s), vh


class Svdvals(Function):
    """Singular values: gA = U diag(gS) Vh. Saves U and Vh (and the input, from which
    create_graph recomputes them as a differentiable svd)."""

    __slots__ = ("u", "vh")
    save_inputs = True
    saved_slots = ("u", "vh")

    def forward(self, a):
        self.u, s, self.vh = lapack_call("linalg.svdvals", _svd, a,
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
    """Singular values (descending, real) of a (batch of) matrix (torch.linalg.svdvals)."""
    a = prepare("linalg.svdvals", a, square=False, complex_ok=True)
    return Svdvals.apply(a)


# ---------------------------------------------------------------------------------------------
# pinv


class Pinv(Function):
    """The pseudo-inverse P = A^+ (real or complex A). Its gradient for constant rank (Golub &
    Pereyra 1973), in PyTorch's pinv_backward arrangement (smallest intermediate products; ^H
    for complex A); only matmuls, so create_graph differentiates it again. Saves the input and
    the output."""

    __slots__ = ("atol", "rtol", "hermitian")
    save_inputs = True
    save_output = True

    def forward(self, a):
        xp = backend.get_array_module(a)
        if self.hermitian:  # A = V diag(w) V^T: the singular values are |w|
            w, v = xp.linalg.eigh(a)
            keep = xp.abs(w) > self._tol(xp, largest(xp.abs(w)))
            winv = xp.where(keep, 1 / xp.where(keep, w, 1), 0).astype(a.dtype)
            return (v * winv[..., None, :]) @ _adjoint(xp, v)
        u, s, vh = lapack_call("linalg.pinv", _svd, a, full_matrices=False,
                               fix=_SVD_FIX)  # fmt: skip
        keep = s > self._tol(xp, largest(s))
        sinv = xp.where(keep, 1 / xp.where(keep, s, 1), 0).astype(a.dtype)
        # A^+ = V diag(1/s) U^H
        return (_adjoint(xp, vh) * sinv[..., None, :]) @ _adjoint(xp, u)

    def _tol(self, xp, smax):
        """max(atol, rtol * sigma_max), per matrix, shaped to compare with the values."""
        return xp.maximum(self.atol, self.rtol * smax)[..., None]

    def backward(self, gy, ops):
        (a,) = self.inputs(ops)
        p = self.output(ops)
        m, n = a.shape[-2], a.shape[-1]
        ph, gh = mH(ops, p), mH(ops, gy)  # conjugate transposes (transposes when real)
        if m <= n:
            k = gh @ p
            kph = k @ ph
            return -mH(ops, p @ k) + kph - (a @ p) @ kph + (ph @ p) @ (gh - k @ a)
        k = p @ gh
        phk = ph @ k
        return -mH(ops, k @ p) + (gh - a @ k) @ p @ ph + phk - (phk @ p) @ a


def _adjoint(xp, x):
    """The conjugate transpose of the arrays' matrices (a transposed view when real)."""
    xt = xp.swapaxes(x, -1, -2)
    return xp.conj(xt) if xt.dtype.kind == "c" else xt


def largest(s):
    """The largest value along the last axis, 0 for an empty one (sigma_max of a matrix with
    no singular values); written without NumPy's `initial=`, which CuPy lacks."""
    if s.shape[-1] == 0:
        return array_module(s).zeros(s.shape[:-1], dtype=s.dtype)
    return s.max(axis=-1)


def tolerances(op: str, a: Tensor, atol, rtol):
    """PyTorch's (atol, rtol) rule for pinv and matrix_rank, as float64 arrays that broadcast
    against A's batch shape: atol defaults to 0; rtol to eps * max(m, n), or to 0 where an
    atol > 0 is given. Either may be a float or a (real) Tensor of batch shape."""
    xp = array_module(a)
    m, n = a.shape[-2:]
    real = xp.zeros((), dtype=a._data.dtype).real.dtype
    default = float(xp.finfo(real).eps) * max(m, n)

    def as_array(name, tol):
        if isinstance(tol, Tensor):
            if tol._data.dtype.kind == "c":
                raise DescentError(f"{op}: {name} tensor of complex type is not supported. Got "
                                   f"{tol._data.dtype}; pass its real part or abs()")  # fmt: skip
            return tol._data.astype(xp.float64)
        return xp.asarray(float(tol), dtype=xp.float64)

    atol_a = xp.zeros((), dtype=xp.float64) if atol is None else as_array("atol", atol)
    if rtol is not None:
        rtol_a = as_array("rtol", rtol)
    elif atol is None:
        rtol_a = xp.asarray(default, dtype=xp.float64)
    else:
        rtol_a = xp.where(atol_a > 0, 0.0, default)
    return atol_a, rtol_a


_TOL_INPUT = "<a tolerance tensor>"  # `_tolerance_kernel`: this tolerance is an input


def _tolerance_kernel(a, *rest):
    """`tolerances`' atol (which = 0) or rtol (1) array from A's array and the Tensor
    tolerances' arrays, `spec` giving (atol, rtol) with `_TOL_INPUT` in the place of each
    Tensor (untracked.computed's kernel)."""
    *given, spec, which = rest
    given = iter(given)
    atol, rtol = (Tensor._wrap(next(given)) if isinstance(t, str) else t for t in spec)
    return tolerances("linalg.pinv", Tensor._wrap(a), atol, rtol)[which]


def pinv(a, *, atol=None, rtol=None, hermitian: bool = False) -> Tensor:
    """The Moore-Penrose pseudo-inverse (torch.linalg.pinv): singular values at or below
    max(atol, rtol * sigma_max) are treated as zero; rtol defaults to eps * max(m, n) when
    atol is not given (0 when it is), as PyTorch. atol and rtol may be Tensors that broadcast
    against A's batch dimensions (the result takes the broadcast batch shape)."""
    a = prepare("linalg.pinv", a, square=hermitian, complex_ok=True)
    atol_a, rtol_a = tolerances("linalg.pinv", a, atol, rtol)
    if isinstance(atol, Tensor) or isinstance(rtol, Tensor):
        batch = np.broadcast_shapes(tuple(a.shape[:-2]), atol_a.shape, rtol_a.shape)
        # The tolerance arrays through untracked.computed: Pinv's parameters are then arrays
        # descent.compile binds to each call's (converted outside, they were constants that a
        # replay froze when the first two calls agreed)
        tols = tuple(t for t in (atol, rtol) if isinstance(t, Tensor))
        spec = tuple(_TOL_INPUT if isinstance(t, Tensor) else t for t in (atol, rtol))
        atol_a, rtol_a = (computed(_tolerance_kernel, (a, *tols), (spec, which))._data
                          for which in (0, 1))  # fmt: skip
        if batch != tuple(a.shape[:-2]):  # a differentiable expand: the gradient sums back
            a = a.expand(*(batch + tuple(a.shape[-2:])))
        return Pinv.apply(a, atol=atol_a, rtol=rtol_a, hermitian=bool(hermitian))
    return Pinv.apply(a, atol=float(atol_a), rtol=float(rtol_a), hermitian=bool(hermitian))
