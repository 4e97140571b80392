"""The eigendecomposition of a general square matrix with gradients: linalg.eig and
linalg.eigvals (PyTorch's torch.linalg.eig / eigvals). See `linalg_decomp.py` for the shared
conventions (packed outputs, backward passes written once for arrays and Tensors).

A = V diag(L) V^{-1} for a diagonalisable A. The outputs are complex whatever the input
(complex64 for float32 / complex64 A, complex128 for float64 / complex128 A), as PyTorch's:
a real matrix can have complex-conjugate pairs of eigenvalues. The forward pass is LAPACK's geev
through NumPy, as PyTorch's CPU one, so the eigenvectors come normalised as geev returns them
(each column of Euclidean norm 1, its largest component real); the order of the eigenvalues is
geev's (not sorted).

The backward pass is PyTorch's linalg_eig_backward (FunctionsManual.cpp; derived in
docs/linalg.md): with E_ij = conj(L_j) - conj(L_i),

    gA = V^{-H} (diag(gL) + (V^H gV - V^H V Re diag(V^H gV)) / E) V^H,

where the subtracted term projects gV onto the directions that keep each column's norm at 1
(the normalisation is part of the output), and the division by E is taken off the diagonal
only. Each eigenvector is defined up to a phase e^{i phi} (geev's normalisation is a
convention, not a property of A), so a loss must not depend on it: Im diag(V^H gV) must be ~0,
checked with PyTorch's tolerance and error. For a real A the gradient is the real part, as
PyTorch's. Repeated eigenvalues make E zero off the diagonal: the eigenvector gradient is then
inf / nan, as PyTorch's; a loss of the eigenvalues alone has no division.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from .linalg_decomp import (
    _solve,
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
from .linalg_spectral import check_gauge, conj, imag_data, real_part
from .untracked import computed

__all__ = ["eig", "eigvals"]

_EIG_FIX = ("An input that holds nan or inf is the usual cause; check it (e.g. with "
            "descent.isfinite(A).all()).")  # fmt: skip


def _complex_dtype(dtype):
    """complex64 for float32 / complex64, complex128 for float64 / complex128."""
    return np.result_type(dtype, np.complex64)


def _geev(a, vectors: bool = True):
    """(L, V) of every matrix of the array a (L alone without `vectors`), complex, on a's
    device. CuPy has no general eigensolver: there the matrices go through the host (PyTorch's
    CUDA eig also runs geev on the CPU, via MAGMA)."""
    xp = backend.get_array_module(a)
    host = backend.as_numpy(a) if xp is not np else a
    op, fn = ("linalg.eig", np.linalg.eig) if vectors else ("linalg.eigvals", np.linalg.eigvals)
    out = lapack_call(op, fn, host, fix=_EIG_FIX)
    dt = _complex_dtype(a.dtype)
    out = [x.astype(dt, copy=False) for x in (out if vectors else (out,))]
    if xp is not np:
        out = [xp.asarray(x) for x in out]
    return tuple(out) if vectors else out[0]


class Eig(Function):
    """A = V diag(L) V^{-1}: gA = V^{-H} (diag(gL) + P(V^H gV) / E) V^H with E_ij =
    conj(L_j) - conj(L_i) and P the projection that keeps V's columns of norm 1 (PyTorch's
    linalg_eig_backward); the real part for a real A. Saves the packed output (L, V)."""

    __slots__ = ("real_input",)
    save_output = True

    def forward(self, a):
        self.real_input = a.dtype.kind != "c"
        w, v = _geev(a)
        return pack(backend.get_array_module(a), [w, v], a.shape[:-2])

    def backward(self, gy, ops):
        batch, n = self.in_shapes[0][:-2], self.in_shapes[0][-1]
        w, v = unpack(self.output(ops), batch, [(n,), (n, n)])
        gw, gv = unpack(gy, batch, [(n,), (n, n)])
        ga = eig_grad(ops, w, v, gw, None if is_zero(gv) else gv)
        return real_part(ops, ga) if self.real_input else ga


def eig_grad(ops, w, v, gw, gv):
    """gA of A = V diag(w) V^{-1} from gw (and gV, or None when the loss does not use V)."""
    vh = mH(ops, v)
    if gv is None:
        # gA = V^{-H} diag(gL) V^H
        return _solve(ops, vh, gw.reshape(tuple(gw.shape) + (1,)) * vh)
    n = w.shape[-1]
    batch = tuple(w.shape[:-1])
    xp = array_module(w)
    vhgv = vh @ gv
    d = xp.diagonal(imag_data(vhgv), 0, -2, -1)
    im = abs(d)
    # V -> V diag(e^{i phi}) changes the loss by phi . Im diag(V^H gV): it must be ~0.
    check_gauge("linalg_eig_backward", ~(im <= 1e-2), v.shape, im.max() if im.size else 0.0)
    # Keep only the part of gV that moves V's columns along their unit spheres: subtract
    # V^H V Re diag(V^H gV) (the diagonal of the result is then i Im diag(V^H gV) ~ 0).
    re = real_part(ops, diag_part(ops, vhgv))
    vhgv = vhgv - vh @ (v * re.reshape(batch + (1, n)))
    wc = conj(ops, w)
    eye = xp.eye(n, dtype=bool)
    e = ops.where(eye, 1.0, wc.reshape(batch + (1, n)) - wc.reshape(batch + (n, 1)))
    inner = ops.where(eye, diag_embed(gw), vhgv / e)
    # V^{-H} inner V^H: a solve with V^H, as PyTorch's
    return _solve(ops, vh, inner @ vh)


def eig(a):
    """(eigenvalues, eigenvectors as columns) of a square (batch of) matrix, both complex
    (torch.linalg.eig); the eigenvectors have norm 1, as LAPACK's geev returns them."""
    a = prepare("linalg.eig", a, complex_ok=True)
    n = a.shape[-1]
    return unpack(Eig.apply(a), a.shape[:-2], [(n,), (n, n)])


def eigvals(a) -> Tensor:
    """The eigenvalues (complex) of a square (batch of) matrix (torch.linalg.eigvals); with a
    gradient those of `eig` (gA = V^{-H} diag(gL) V^H)."""
    a = prepare("linalg.eigvals", a, complex_ok=True)
    if a.requires_grad:
        return eig(a)[0]
    return computed(_geev, (a,), (False,))  # (replayed by descent.compile)
