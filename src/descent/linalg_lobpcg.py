"""torch.lobpcg: a few extreme eigenpairs of a symmetric positive-definite (generalized) problem.

    E, X = descent.lobpcg(A, k=2)                   # the 2 largest eigenpairs of A
    E, X = descent.lobpcg(A, k=2, largest=False)     # the 2 smallest
    E, X = descent.lobpcg(A, k=2, B=B)               # A x = lambda B x

The method is LOBPCG, the Locally Optimal Block Preconditioned Conjugate Gradient method of
A. V. Knyazev, "Toward the optimal preconditioned eigensolver", SIAM J. Sci. Comput. 23(2),
2001: each step does a Rayleigh-Ritz projection of A onto the span of the current block X
(m, n), the (preconditioned: iK R) residuals R = A X - B X diag(E) and the previous search
directions P, and keeps the n extreme Ritz pairs. The basis [X, W, P] is made B-orthonormal by
an eigendecomposition of its Gram matrix that drops nearly dependent directions (SVQB, from
Stathopoulos and Wu, SIAM J. Sci. Comput. 23(6), 2002), which is what makes the method robust
(PyTorch's "ortho"); "basic" is accepted and runs the same robust step here.

Convergence is PyTorch's backward-stable criterion (Duersch et al., SIAM J. Sci. Comput. 40(5),
2018, Sec. 4.3): pair j has converged when ||R_j|| / (||X_j|| (||A|| + |E_j| ||B||)) < tol, and
the count is of the leading converged pairs. `tracker(worker)` is called after each step with
the worker's state (`ivars["istep"]`, `ivars["converged_count"]`, `X`, `E`, `R`,
`tvars["rerr"]`; setting `bvars["force_stop"] = True` stops).

Gradient (PyTorch's, B = None only): for the returned pairs (D, U) of A (symmetrised as
(A + A^T) / 2 first, so the gradient is symmetric), with V the eigenvectors of A outside span(U)
and L their eigenvalues,

    dA = U (diag(dD) + (U^T dU) * F) U^T + V [(V^T dU)_cj / (D_j - L_c)] U^T,
    F_ij = 1 / (D_j - D_i) (i != j), F_ii = 0,

the exact derivative of the extreme eigenpairs (distinct eigenvalues assumed). PyTorch reaches
the second term through a Sylvester equation in a random basis of span(U)'s complement; descent
takes that complement from `linalg.eigh` of A in backward (O(m^3), as PyTorch's).
"""

from __future__ import annotations

import numpy as np

from . import autograd, creation_random
from .tensor import Tensor

__all__ = ["lobpcg"]


class LOBPCG:
    """The iteration's state, as PyTorch's worker: parameters (`iparams`, `fparams`, `bparams`),
    variables (`ivars`, `fvars`, `bvars`, `tvars`), the inputs `A`, `B`, `iK` and the current
    `X`, `E`, `R` (Tensors; the arrays behind them are replaced at each step)."""

    def __init__(self, A, B, X, iK, iparams, fparams, bparams, method, tracker) -> None:
        self._a, self._b, self._ik = A, B, iK  # arrays (B, iK may be None)
        self.iparams, self.fparams, self.bparams = iparams, fparams, bparams
        self.method, self.tracker = method, tracker
        self._x = X
        n = X.shape[1]
        self._e = np.zeros(n, X.dtype)
        self._r = np.zeros_like(X)
        self._p = None
        self.tvars: dict = {}
        self.ivars: dict = {"istep": 0}
        self.fvars: dict = {"_": 0.0}
        self.bvars: dict = {"_": False}

    # the Tensor views a tracker reads
    A = property(lambda self: autograd._new_tensor(self._a))
    B = property(lambda self: None if self._b is None else autograd._new_tensor(self._b))
    iK = property(lambda self: None if self._ik is None else autograd._new_tensor(self._ik))
    X = property(lambda self: autograd._new_tensor(self._x))
    E = property(lambda self: autograd._new_tensor(self._e))
    R = property(lambda self: autograd._new_tensor(self._r))

    def _bmul(self, x):
        return x if self._b is None else self._b @ x

    def _orthonormal(self, s):
        """Columns spanning span(s), B-orthonormal, nearly dependent directions dropped (SVQB)."""
        g = s.T @ self._bmul(s)
        d = np.sqrt(np.abs(np.diag(g)))
        d[d == 0] = 1
        w, v = np.linalg.eigh(g / d[:, None] / d[None, :])
        keep = w > max(w.max(), 0) * self.fparams["tol"] ** 2 * 1e-2
        return (s / d) @ (v[:, keep] / np.sqrt(w[keep]))

    def _rayleigh_ritz(self, s):
        """The n extreme Ritz pairs of A on span(s) (s B-orthonormal)."""
        n = self.iparams["n"]
        h = s.T @ self._a @ s
        w, z = np.linalg.eigh((h + h.T) / 2)
        idx = np.arange(len(w) - 1, len(w) - 1 - n, -1) if self.bparams["largest"] else np.arange(n)
        return w[idx].astype(self._x.dtype), (s @ z[:, idx]).astype(self._x.dtype)

    def update(self) -> None:
        """One LOBPCG step (the first: the Rayleigh-Ritz pairs of the initial block)."""
        if self.ivars["istep"] == 0:
            x_norm = float(np.linalg.norm(self._x))
            self.fvars["X_norm"] = x_norm
            self.fvars["A_norm"] = float(np.linalg.norm(self._a @ self._x)) / x_norm
            self.fvars["B_norm"] = float(np.linalg.norm(self._bmul(self._x))) / x_norm
            self.ivars["iterations_left"] = self.iparams["niter"]
            self.ivars["converged_count"] = 0
            self.ivars["converged_end"] = 0
            self._e, self._x = self._rayleigh_ritz(self._orthonormal(self._x))
        else:
            w = self._r if self._ik is None else self._ik @ self._r
            blocks = [self._x, w] + ([] if self._p is None else [self._p])
            e, x = self._rayleigh_ritz(self._orthonormal(np.concatenate(blocks, axis=1)))
            # the new search directions: the part of the step outside the old block
            self._p = x - self._x @ (self._x.T @ self._bmul(x))
            self._e, self._x = e, x
        self.update_residual()
        self.update_converged_count()
        self.ivars["iterations_left"] -= 1
        self.ivars["istep"] += 1

    def update_residual(self) -> None:
        self._r = self._a @ self._x - self._bmul(self._x) * self._e

    def update_converged_count(self) -> int:
        """Count the leading pairs that meet PyTorch's backward-stable criterion."""
        a_norm, b_norm = self.fvars["A_norm"], self.fvars["B_norm"]
        rerr = np.linalg.norm(self._r, axis=0) / (
            np.linalg.norm(self._x, axis=0) * (a_norm + np.abs(self._e) * b_norm)
        )
        count = 0
        for ok in rerr < self.fparams["tol"]:
            if not ok:
                break  # later pairs wait, to keep the pairs strictly ordered
            count += 1
        self.ivars["converged_count"] = max(count, self.ivars["converged_count"])
        self.tvars["rerr"] = autograd._new_tensor(rerr.astype(self._x.dtype))
        return count

    def stop_iteration(self) -> bool:
        return (
            self.bvars.get("force_stop", False)
            or self.ivars["iterations_left"] == 0
            or self.ivars["converged_count"] >= self.iparams["k"]
        )

    def run(self) -> None:
        self.update()
        if self.tracker is not None:
            self.tracker(self)
        while not self.stop_iteration():
            self.update()
            if self.tracker is not None:
                self.tracker(self)


def _solve(A, k, B, X, n, iK, niter, tol, largest, method, tracker):
    """(E, X) arrays for a (..., m, m) array A: one LOBPCG run per matrix."""
    if A.shape[-2] != A.shape[-1]:
        raise AssertionError(f"A must be square, got shape {tuple(A.shape)}")
    if B is not None and B.shape != A.shape:
        raise AssertionError(
            f"A and B must have same shape, got {tuple(A.shape)} vs {tuple(B.shape)}"
        )
    if A.dtype not in (np.float32, np.float64):
        raise ValueError(f"lobpcg: A must be float32 or float64, got {A.dtype}")
    if method not in ("ortho", "basic"):
        raise ValueError(f"lobpcg: method must be 'ortho' or 'basic', got {method!r}")
    if tol is None:
        tol = (1.2e-07 if A.dtype == np.float32 else 2.23e-16) ** 0.5
    m = A.shape[-1]
    k = (1 if X is None else X.shape[-1]) if k is None else k
    n = (k if n is None else n) if X is None else X.shape[-1]
    if m < 3 * n:
        raise ValueError(
            f"LOBPCG algorithm is not applicable when the number of A rows (={m}) is smaller "
            f"than 3 x the number of requested eigenpairs (={n})"
        )
    iparams = {"m": m, "n": n, "k": k, "niter": 1000 if niter is None else niter}
    fparams = {"tol": tol}
    bparams = {"largest": True if largest is None else largest}
    batch = A.shape[:-2]
    count = int(np.prod(batch, dtype=np.int64))
    a3 = A.reshape((count, m, m))
    b3 = None if B is None else B.reshape((count, m, m))
    x3 = None if X is None else X.reshape((count, m, n))
    es, xs = [], []
    for i in range(count):
        if x3 is None:  # PyTorch's: a Gaussian block from the default generator
            x0 = creation_random.randn(m, n, dtype=A.dtype)._data
        else:
            x0 = x3[i].astype(A.dtype)
        iparams["batch_index"] = i
        worker = LOBPCG(a3[i], None if b3 is None else b3[i], x0, iK, iparams, fparams,
                        bparams, method, tracker)  # fmt: skip
        worker.run()
        es.append(worker._e[:k])
        xs.append(worker._x[:, :k])
    return (np.stack(es).reshape(batch + (k,)).astype(A.dtype),
            np.stack(xs).reshape(batch + (m, k)).astype(A.dtype))  # fmt: skip


class LOBPCGAutogradFunction(autograd.Function):
    """lobpcg with PyTorch's gradient for A (the module docstring's formula); B must be None
    for backward, as in PyTorch."""

    @staticmethod
    def forward(ctx, A, k, B, X, n, iK, niter, tol, largest, method, tracker):
        e, x = _solve(A._data, k, None if B is None else B._data,
                      None if X is None else X._data, n, None if iK is None else iK._data,
                      niter, tol, largest, method, tracker)  # fmt: skip
        D, U = autograd._new_tensor(e), autograd._new_tensor(x)
        ctx.save_for_backward(A, B, D, U)
        return D, U

    @staticmethod
    def backward(ctx, dD, dU):
        from .linalg import eigh  # differentiable: create_graph works through it

        A, B, D, U = ctx.saved_tensors
        if B is not None:
            raise ValueError("lobpcg.backward does not support backward with B != I yet.")
        if dD is None:
            dD = D * 0
        if dU is None:
            dU = U * 0
        Ut = U.mT
        # inside span(U): PyTorch's _symeig_backward_complete_eigenspace on the k pairs
        F = D.unsqueeze(-2) - D.unsqueeze(-1)  # F_ij = D_j - D_i
        k = D.shape[-1]
        eye = np.eye(k, dtype=bool)
        F = 1 / (F + autograd._new_tensor(np.where(eye, np.inf, 0).astype(F._data.dtype)))
        inner = U @ ((dD.diag_embed() + (Ut @ dU) * F) @ Ut)
        # outside span(U): the eigenvectors V of A orthogonal to U, eigenvalues L
        L, V = eigh(A)
        overlap = (V.mT @ U).abs().sum(-1)  # (..., m): ~1 for the returned pairs' vectors
        m = A.shape[-1]
        order = np.argsort(overlap._data, axis=-1)[..., : m - k]  # the m - k least aligned
        Vc = V.gather(
            -1,
            autograd._new_tensor(
                np.broadcast_to(order[..., None, :], V.shape[:-1] + (m - k,)).copy()
            ),
        )
        Lc = L.gather(-1, autograd._new_tensor(order))
        denom = D.unsqueeze(-2) - Lc.unsqueeze(-1)  # (..., m - k, k): D_j - L_c
        outer = Vc @ (((Vc.mT @ dU) / denom) @ Ut)
        return (inner + outer,) + (None,) * 10


def lobpcg(A, k=None, B=None, X=None, n=None, iK=None, niter=None, tol=None, largest=None,
           method=None, tracker=None, ortho_iparams=None, ortho_fparams=None,
           ortho_bparams=None):  # fmt: skip
    """The k largest (or smallest) eigenpairs of the symmetric positive-definite problem
    A x = lambda B x (B = I when None), by LOBPCG (torch.lobpcg; see the module docstring).

    Args:
        A: (..., m, m) symmetric, float32 or float64 (dense).
        k: how many pairs (default: X's columns, or 1).
        B: (..., m, m) symmetric positive-definite, or None for the identity.
        X: (..., m, n) initial block (k <= n <= m); default a random normal block of n columns.
        n: the block size when X is not given (default k).
        iK: (m, m) preconditioner applied to the residuals.
        niter: at most this many steps (default 1000; -1: until convergence).
        tol: residual tolerance (default sqrt of the dtype's epsilon, as PyTorch's).
        largest: True (default) for the largest eigenvalues, False for the smallest.
        method: "ortho" (default) or "basic" (both run the robust step here).
        tracker: called with the worker after each step.
        ortho_iparams, ortho_fparams, ortho_bparams: accepted (PyTorch's "ortho" tuning).

    Returns:
        (E (..., k), X (..., m, k)): eigenvalues (descending for largest, ascending otherwise)
        and B-orthonormal eigenvectors.

    Raises:
        ValueError: m < 3 n, an unknown method, a non-floating A; in backward, B given.
        AssertionError: A not square or B of another shape (PyTorch's).
    """
    method = "ortho" if method is None else method
    A = A if isinstance(A, Tensor) else autograd._new_tensor(np.asarray(A))
    if A.requires_grad or (B is not None and B.requires_grad):
        # symmetrise first, so that A.grad is symmetric (PyTorch's rule)
        A_sym = (A + A.mT) / 2
        B_sym = (B + B.mT) / 2 if B is not None else None
        return LOBPCGAutogradFunction.apply(A_sym, k, B_sym, X, n, iK, niter, tol, largest,
                                            method, tracker)  # fmt: skip
    arr = [None if t is None else t._data for t in (B, X, iK)]
    e, x = _solve(A._data, k, arr[0], arr[1], n, arr[2], niter, tol, largest, method, tracker)
    return autograd._new_tensor(e), autograd._new_tensor(x)
