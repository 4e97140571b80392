"""Curvature of the loss: Hessian-vector products, the top eigenvalues, the trace, the spectrum.

The gradient says which way the loss goes down; the Hessian H (the matrix of second partial
derivatives d^2 L / dw_i dw_j) says how fast that slope changes, and so how large a step can be
before it overshoots. On a quadratic, gradient descent with learning rate lr converges only if
every eigenvalue of H is below 2 / lr; the largest eigenvalue, the *sharpness*, is therefore the
number that explains "why does lr 1e-2 blow up when 3e-3 does not" (curvature_stability.py
compares it with each optimizer's threshold).

H has (number of parameters)^2 entries and is never formed. Everything here is built on the
product H v, computed by double backward (Pearlmutter, 1994, "Fast exact multiplication by the
Hessian"): one backward pass with `create_graph=True` gives the gradient g(w) as a graph, and
each product is one more backward pass of that graph with v as the upstream gradient,
d/dw <g(w), v> = H v. The first pass is done once per call and kept (`retain_graph=True`):
each further product costs about one backward pass of the gradient graph (2-3x a plain backward).

* `hvp`: one product, in the order of `flatten_parameters` (1 HVP);
* `sharpness`: the top-k eigenvalues and eigenvectors, by Lanczos with full reorthogonalisation
  (Golub & Van Loan, "Matrix Computations", 10.1) or by power iteration (as PyHessian, Yao,
  Gholami, Keutzer and Mahoney, 2020), with the number of products spent and the residuals
  ||H u - lambda u|| as the convergence estimate;
* `hessian_trace`: tr(H) = E[z^T H z] for Rademacher z (Hutchinson, 1990), with its standard error;
* `spectral_density`: the eigenvalue density by stochastic Lanczos quadrature (Ubaru, Chen and
  Saad, 2017; Ghorbani, Krishnan and Xiao, 2019, "An investigation into neural net optimization
  via Hessian eigenvalue density"), with the extreme eigenvalues and the mass below zero.

The loss is `loss_fn(model, batch)` as everywhere in descent.explain; parameters that do not
require grad are left out (they are not trained, so they have no curvature to explain). The
graph of the first pass is built once, so a dropout mask drawn in it stays fixed for all the
products of one call (the Hessian of that one loss); call `model.eval()` for the dropout-free
loss. `dtype="float64"` computes on a float64 copy of the model and batch, in eval mode as
`check_model_gradients` (the user's model is never touched); the Lanczos and power arithmetic is
float64 in any case.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import autograd, backend
from ..tensor import Tensor
from .landscape import _named_params
from .model_check import _float64_copy, _to_float64

__all__ = [
    "HessianOperator",
    "Sharpness",
    "SpectralDensity",
    "TraceEstimate",
    "hessian_trace",
    "hvp",
    "sharpness",
    "spectral_density",
]


# ---------------------------------------------------------------------------------------------
# The Hessian as an operator


class HessianOperator:
    """v -> H v for `loss_fn(model, batch)` at the current parameters (flat float64 vectors).

    Building it runs the forward pass and one backward pass with `create_graph=True`; each
    `matvec` is one more backward pass of that graph (`count` counts them).

    Attributes:
        names, shapes, sizes: the differentiated parameters, in `named_parameters()` order.
        n: the number of parameters (the length of the vectors).
        loss: the loss value; gradient: the flat gradient (float64).
        count: the Hessian-vector products computed so far.
    """

    def __init__(self, loss_fn: Callable, model, batch: Any, *, dtype=None) -> None:
        if dtype is not None:
            if np.dtype(dtype) != np.float64:
                raise ValueError(f"curvature: dtype must be None or float64, got {dtype!r}")
            model, batch = _float64_copy(model), _to_float64(batch)
        named = [(n, p) for n, p in _named_params(model) if p.requires_grad]
        if not named:
            raise ValueError("curvature: the model has no parameters that require grad")
        self.model = model
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.shapes = [tuple(p.shape) for p in self.params]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.n = int(sum(self.sizes))
        self.count = 0
        # A BatchNorm in training mode updates its running statistics in every forward pass;
        # measuring the curvature must not change the model: its buffers are put back.
        buffers = list(model.named_buffers()) if hasattr(model, "named_buffers") else []
        saved = [(b, b._data, b._data.copy()) for _, b in buffers if b is not None]
        try:
            with autograd.enable_grad():
                loss = loss_fn(model, batch)
        finally:
            for b, arr, values in saved:  # BatchNorm writes in place: write the values back
                arr[...] = values
                b._data = arr
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise TypeError(
                f"curvature: loss_fn must return a scalar Tensor, got {type(loss).__name__} "
                f"{tuple(getattr(loss, 'shape', ()))}"
            )
        self.loss = float(loss.item())
        if not np.isfinite(self.loss):
            raise ValueError(
                f"curvature: the loss is {self.loss} at these parameters; the curvature of a "
                "non-finite loss means nothing (descent.explain.detect_anomaly finds the op)"
            )
        grads = autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
        self.gradient = self._flat([None if g is None else g._data for g in grads])
        # Only gradients that depend on the parameters have a second derivative; the others
        # (unused parameters, a loss linear in a parameter) contribute zero rows of H.
        self._live = [(i, g) for i, g in enumerate(grads) if g is not None and g.requires_grad]

    def _flat(self, arrays: list) -> np.ndarray:
        """Concatenate per-parameter arrays (None = zeros) into one float64 vector."""
        parts = [
            np.zeros(s) if a is None else backend.as_numpy(a).astype(np.float64).ravel()
            for a, s in zip(arrays, self.sizes)
        ]
        return np.concatenate(parts)

    def split(self, vec: np.ndarray) -> list[np.ndarray]:
        """A flat vector as one array per parameter (views, shaped like the parameters)."""
        out, i = [], 0
        for s, n in zip(self.shapes, self.sizes):
            out.append(vec[i : i + n].reshape(s))
            i += n
        return out

    def as_dict(self, vec: np.ndarray) -> dict[str, np.ndarray]:
        """A flat vector as {parameter name: array shaped like the parameter}."""
        return dict(zip(self.names, (a.copy() for a in self.split(vec))))

    def flatten(self, v) -> np.ndarray:
        """A flat vector from a flat array, a {name: array} dict or a list of arrays/Tensors."""
        if isinstance(v, dict):
            missing = [n for n in self.names if n not in v]
            if missing:
                raise ValueError(f"curvature: the vector has no entry for {missing}")
            v = [v[n] for n in self.names]
        if isinstance(v, Tensor):
            v = backend.as_numpy(v._data)
        if isinstance(v, np.ndarray) and v.ndim == 1 and v.size == self.n:
            return v.astype(np.float64)
        if isinstance(v, (list, tuple)) and len(v) == len(self.params):
            arrs = [backend.as_numpy(a._data if isinstance(a, Tensor) else np.asarray(a))
                    for a in v]  # fmt: skip
            for a, s, name in zip(arrs, self.shapes, self.names):
                if tuple(a.shape) != s:
                    raise ValueError(f"curvature: the vector's entry for {name} has shape "
                                     f"{tuple(a.shape)}, the parameter {s}")  # fmt: skip
            return self._flat(arrs)
        raise ValueError(
            f"curvature: a vector must be flat with {self.n} entries (the parameters in "
            f"named_parameters() order), a dict name -> array or a list of {len(self.params)} "
            f"arrays; got {type(v).__name__} of shape {getattr(v, 'shape', None)}"
        )

    def matvec(self, v: np.ndarray) -> np.ndarray:
        """H v for a flat float64 vector v (one backward pass of the gradient's graph)."""
        self.count += 1
        if not self._live:
            return np.zeros(self.n)
        parts = self.split(v)
        outs = [g for _, g in self._live]
        # d/dw <g(w), v>: the gradients g are the outputs, v their upstream gradient
        ups = []
        for i, _ in self._live:
            data = self.params[i]._data  # v in the parameter's dtype, on its device
            ups.append(Tensor._wrap(backend.to_device(parts[i].astype(data.dtype),
                                                      backend.device_of(data))))  # fmt: skip
        hv = autograd.grad(outs, self.params, grad_outputs=ups, retain_graph=True,
                           allow_unused=True)  # fmt: skip
        out = self._flat([None if h is None else h._data for h in hv])
        if not np.isfinite(out).all():
            bad = [n for n, a in zip(self.names, self.split(out)) if not np.isfinite(a).all()]
            raise FloatingPointError(
                f"curvature: the Hessian-vector product is not finite for {bad} (a second "
                "derivative overflowed; try dtype='float64', or detect_anomaly() around hvp)"
            )
        return out


def hvp(loss_fn: Callable, model, batch: Any, v, *, dtype=None) -> np.ndarray:
    """The Hessian-vector product H v of `loss_fn(model, batch)` at the current parameters.

    Args:
        loss_fn: `loss_fn(model, batch) -> scalar Tensor`.
        model: a Module (or a dict/list of parameter tensors).
        batch: passed to loss_fn.
        v: a flat vector in `flatten_parameters` order (parameters that require grad), a dict
            name -> array, or a list of arrays shaped like the parameters.
        dtype: None (the model's dtype) or "float64" (on a float64 copy of model and batch).

    Returns:
        H v as a flat NumPy vector (float64 when dtype is float64, else the parameters' dtype).
        Cost: one forward, one backward with create_graph and one backward of that graph.
    """
    op = HessianOperator(loss_fn, model, batch, dtype=dtype)
    out = op.matvec(op.flatten(v))
    return out if dtype is not None else out.astype(op.params[0]._data.dtype)


# ---------------------------------------------------------------------------------------------
# Lanczos


def _lanczos(matvec, n: int, steps: int, rng, *, v0=None, k: int = 0, tol: float = 0.0,
             restart: bool = True):  # fmt: skip
    """Lanczos tridiagonalisation with full reorthogonalisation.

    Returns (alphas, betas, Q, last_beta): T = tridiag(betas, alphas, betas) (m x m), Q the m
    orthonormal basis vectors (m, n). With k > 0 it stops early once the top-k Ritz pairs have
    residuals |beta_m s_{m,i}| <= tol * max(|theta_i|, 1e-30). At a breakdown (an invariant
    subspace: beta ~ 0) it continues from a random vector orthogonal to the basis when
    `restart` (a repeated eigenvalue has one copy per Krylov block: restarting finds the
    others), or stops (stochastic Lanczos quadrature wants the Krylov space of its probe).
    """
    steps = min(steps, n)
    q = rng.standard_normal(n) if v0 is None else np.asarray(v0, np.float64).copy()
    q /= np.linalg.norm(q)
    Q = np.zeros((steps, n))
    alphas: list[float] = []
    betas: list[float] = []  # betas[j] couples Q[j] and Q[j + 1]
    beta = 0.0
    scale = 0.0  # the largest |alpha| or beta seen: what "beta ~ 0" is relative to
    for j in range(steps):
        Q[j] = q
        w = matvec(q)
        alpha = float(q @ w)
        w -= alpha * q
        if j > 0:
            w -= beta * Q[j - 1]
        # Full reorthogonalisation, twice ("twice is enough": Parlett, The Symmetric Eigenvalue
        # Problem, 6.9): rounding makes plain Lanczos vectors lose orthogonality as soon as one
        # Ritz value converges, and then duplicate eigenvalues appear ("ghosts").
        for _ in range(2):
            w -= Q[: j + 1].T @ (Q[: j + 1] @ w)
        alphas.append(alpha)
        beta = float(np.linalg.norm(w))
        scale = max(scale, abs(alpha), beta)
        broke = beta <= 1e-10 * max(scale, 1e-300)
        if j + 1 == steps:
            break
        if broke:
            if not restart:
                beta = 0.0
                break
            r = rng.standard_normal(n)
            for _ in range(2):
                r -= Q[: j + 1].T @ (Q[: j + 1] @ r)
            q = r / np.linalg.norm(r)
            beta = 0.0  # the new block is decoupled: T gets a zero off-diagonal
        else:
            q = w / beta
            if k and j + 1 >= k and tol > 0:
                theta, s = np.linalg.eigh(_tridiag(alphas, betas))
                res = beta * np.abs(s[-1, -k:])
                if np.all(res <= tol * np.maximum(np.abs(theta[-k:]), 1e-30)):
                    break
        betas.append(beta)
    m = len(alphas)
    return np.asarray(alphas), np.asarray(betas[: m - 1]), Q[:m], beta


def _tridiag(alphas, betas) -> np.ndarray:
    m = len(alphas)
    return np.diag(alphas) + np.diag(betas[: m - 1], 1) + np.diag(betas[: m - 1], -1)


# ---------------------------------------------------------------------------------------------
# Top eigenvalues


@dataclass
class Sharpness:
    """The top-k eigenvalues of the Hessian (largest first) and what they cost.

    Attributes:
        eigenvalues: the top-k eigenvalues, largest first; `value` is the first (the sharpness).
        eigenvectors: one {parameter name: array} per eigenvalue (unit norm over all parameters).
        residuals: ||H u - lambda u|| of each pair (the convergence estimate: the eigenvalue's
            error is at most this, and about residual^2 / gap once converged).
        converged: every residual <= tol * |lambda|.
        hvps: Hessian-vector products spent; method: "lanczos" or "power".
        min_eigenvalue: the smallest Ritz value seen (Lanczos only; converges from above:
            negative means the point is not a minimum).
        loss: the loss at the point.
    """

    eigenvalues: list[float]
    eigenvectors: list[dict[str, np.ndarray]] = field(repr=False)
    residuals: list[float]
    converged: bool
    hvps: int
    method: str
    n_params: int
    min_eigenvalue: float | None = None
    loss: float = float("nan")

    @property
    def value(self) -> float:
        return self.eigenvalues[0]

    def where(self, i: int = 0) -> list[tuple[str, float]]:
        """Which parameters eigenvector i lives in: (name, share of its squared norm), largest
        first (the shares sum to 1). The sharpest direction's layers are where a too-large
        lr first overshoots."""
        return direction_shares(self.eigenvectors[i])

    def __str__(self) -> str:
        ev = ", ".join(f"{e:.6g}" for e in self.eigenvalues)
        worst = max(self.residuals) if self.residuals else 0.0
        state = "converged" if self.converged else "NOT converged (raise iters)"
        lines = [
            f"sharpness (top Hessian eigenvalue) {self.value:.6g} ({self.method}, "
            f"{self.hvps} Hessian-vector products, {self.n_params} parameters; {state}, largest "
            f"residual |Hu - lambda u| = {worst:.2g})"
        ]
        if len(self.eigenvalues) > 1:
            lines.append(f"top {len(self.eigenvalues)} eigenvalues: {ev}")
        if self.eigenvectors:
            lines.append("the sharpest direction lies in " + describe_shares(self.where(0)))
        # A Ritz value lies within [lambda_min, lambda_max]: a clearly negative one proves a
        # negative eigenvalue (the 1e-5 margin is rounding, float32 included).
        if self.min_eigenvalue is not None and self.min_eigenvalue < -1e-5 * abs(self.value):
            lines.append(
                f"smallest Ritz value {self.min_eigenvalue:.4g} < 0: negative curvature, so this "
                "point is not a minimum (the loss curves down along some direction)"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"eigenvalues": self.eigenvalues, "residuals": self.residuals,
                "converged": self.converged, "hvps": self.hvps, "method": self.method,
                "n_params": self.n_params, "min_eigenvalue": self.min_eigenvalue,
                "loss": self.loss}  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def direction_shares(vec: dict[str, np.ndarray]) -> list[tuple[str, float]]:
    """(name, share of the squared norm) of a direction given per parameter, largest first."""
    sq = {n: float(np.sum(np.square(a))) for n, a in vec.items()}
    total = sum(sq.values()) or 1.0
    return sorted(((n, v / total) for n, v in sq.items()), key=lambda t: -t[1])


def describe_shares(shares: list[tuple[str, float]], top: int = 3) -> str:
    """'fc2.weight (71%), fc1.weight (20%), ...': the largest shares, those of 1% or more."""
    shown = [f"{n} ({100 * v:.0f}%)" for n, v in shares[:top] if v >= 0.01] or [shares[0][0]]
    rest = len([v for _, v in shares if v >= 0.01]) - len(shown)
    return ", ".join(shown) + (f" and {rest} more" if rest > 0 else "")


def top_eigen(matvec, n: int, k: int = 1, *, method: str = "lanczos", iters: int | None = None,
              tol: float = 1e-6, seed: int = 0) -> tuple:  # fmt: skip
    """The top-k (largest algebraic) eigenpairs of a symmetric operator on R^n.

    Returns (eigenvalues (k,), vectors (k, n), residuals (k,), min_ritz or None).
    Used by `sharpness` and, on the preconditioned operator, by `stability`.
    """
    if k < 1 or k > n:
        raise ValueError(f"sharpness: k must be in 1..{n} (the number of parameters), got {k}")
    rng = np.random.default_rng(seed)
    if method == "lanczos":
        steps = iters if iters is not None else min(n, max(2 * k + 20, 40))
        a, b, Q, last = _lanczos(matvec, n, max(steps, k), rng, k=k, tol=tol)
        theta, s = np.linalg.eigh(_tridiag(a, b))
        top = np.argsort(theta)[::-1][:k]
        vecs = s[:, top].T @ Q  # (k, n) Ritz vectors
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        # The Lanczos residual estimate |beta_m s_{m,i}| equals ||H u - theta u|| in exact
        # arithmetic (with full reorthogonalisation, also in practice): no extra products.
        res = np.abs(last * s[-1, top])
        if len(top) < k:
            raise RuntimeError(f"sharpness: Lanczos found only {len(top)} of {k} eigenvalues")
        return theta[top], vecs, res, float(theta.min())
    if method == "power":
        return _power(matvec, n, k, iters if iters is not None else 200, tol, rng) + (None,)
    raise ValueError(f"sharpness: method must be 'lanczos' or 'power', got {method!r}")


def _power(matvec, n: int, k: int, iters: int, tol: float, rng):
    """Power iteration with deflation for the top-k (largest algebraic) eigenpairs.

    Power iteration finds the eigenvalue of largest *magnitude*; when that is negative the
    operator is shifted by it (H - sigma I has its largest eigenvalue on top and is positive
    semi-definite), and the search is repeated. Each pair is deflated by orthogonalising
    against the pairs already found (H is symmetric).
    """
    vals, vecs, res = [], [], []
    shift, shifts = 0.0, 0
    while len(vals) < k:
        found = np.asarray(vecs).reshape(len(vecs), n)
        v = rng.standard_normal(n)
        lam, r = 0.0, np.inf
        for _ in range(iters):
            v -= found.T @ (found @ v)
            v /= np.linalg.norm(v)
            w = matvec(v) - shift * v
            w -= found.T @ (found @ w)
            lam = float(v @ w)
            r = float(np.linalg.norm(w - lam * v))
            if r <= tol * max(abs(lam), 1e-30):
                break
            nw = np.linalg.norm(w)
            if nw == 0:
                break
            v = w / nw
        # The dominant eigenvalue is negative: shift it to zero and search again. After one
        # shift by the most negative eigenvalue the operator is positive semi-definite; the
        # bound on shifts only guards against rounding-level negatives looping.
        if lam < 0 and shifts < 3:
            shift += lam
            shifts += 1
            continue
        vals.append(lam + shift)
        vecs.append(v)
        res.append(r)
    return np.asarray(vals), np.asarray(vecs), np.asarray(res)


def sharpness(
    model,
    loss_fn: Callable,
    batch: Any,
    k: int = 1,
    *,
    method: str = "lanczos",
    iters: int | None = None,
    tol: float = 1e-6,
    seed: int = 0,
    dtype=None,
) -> Sharpness:
    """The top-k eigenvalues of the loss's Hessian (the sharpness is the largest).

    Args:
        model, loss_fn, batch: the loss `loss_fn(model, batch)` at the current parameters.
        k: how many of the largest eigenvalues (and eigenvectors).
        method: "lanczos" (default; full reorthogonalisation, converges in far fewer products)
            or "power" (power iteration with deflation and a shift for negative eigenvalues).
        iters: at most this many Lanczos steps (default min(n, max(2k + 20, 40))) or power
            iterations per eigenvalue (default 200); each costs one Hessian-vector product.
        tol: stop when every residual ||H u - lambda u|| <= tol * |lambda|.
        seed: seed of the starting vector.
        dtype: None or "float64" (computed on a float64 copy; see the module docstring).

    Returns:
        A Sharpness: `.value`, `.eigenvalues`, `.eigenvectors` (dicts name -> array),
        `.residuals`, `.converged`, `.hvps`.
    """
    op = HessianOperator(loss_fn, model, batch, dtype=dtype)
    vals, vecs, res, lo = top_eigen(op.matvec, op.n, k, method=method, iters=iters, tol=tol,
                                    seed=seed)  # fmt: skip
    return Sharpness(
        [float(x) for x in vals], [op.as_dict(u) for u in vecs], [float(r) for r in res],
        bool(np.all(res <= tol * np.maximum(np.abs(vals), 1e-30))), op.count, method, op.n,
        lo, op.loss,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Trace


@dataclass
class TraceEstimate:
    """Hutchinson's estimate of tr(H) = sum of the eigenvalues = sum of the diagonal of H.

    Attributes:
        trace: the mean of z^T H z over the probes (unbiased: E[z z^T] = I for Rademacher z).
        stderr: its standard error, std(z^T H z) / sqrt(probes) (the true trace lies within
            about 2 standard errors of the estimate 95% of the time).
        probes: the number of probes (= Hessian-vector products); samples: each z^T H z.
        n_params: the number of parameters (trace / n_params is the mean curvature).
        per_parameter: {name: (trace, stderr)} of each parameter's diagonal block of H, from
            the same probes (z_b^T (H z)_b is unbiased for tr(H_bb)): where the curvature is.
    """

    trace: float
    stderr: float
    probes: int
    n_params: int
    samples: list[float] = field(repr=False, default_factory=list)
    per_parameter: dict[str, tuple[float, float]] = field(repr=False, default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"Hessian trace {self.trace:.6g} +- {self.stderr:.2g} (Hutchinson, {self.probes} "
            f"Rademacher probes = {self.probes} Hessian-vector products); mean curvature per "
            f"parameter {self.trace / self.n_params:.4g}"
        ]
        blocks = sorted(self.per_parameter.items(), key=lambda t: -abs(t[1][0]))[:3]
        if blocks:
            lines.append("largest blocks: " + ", ".join(
                f"{n} {t:.4g} +- {e:.2g}" for n, (t, e) in blocks))  # fmt: skip
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"trace": self.trace, "stderr": self.stderr, "probes": self.probes,
                "n_params": self.n_params, "samples": self.samples,
                "per_parameter": {n: list(v) for n, v in self.per_parameter.items()}}  # fmt: skip


def hessian_trace(
    model, loss_fn: Callable, batch: Any, *, probes: int = 100, seed: int = 0, dtype=None
) -> TraceEstimate:
    """tr(H) by Hutchinson's estimator with Rademacher probes, and its standard error.

    For z with independent entries +-1, E[z^T H z] = sum_ij H_ij E[z_i z_j] = tr(H); the
    variance is 2 (||H||_F^2 - sum_i H_ii^2), the smallest among i.i.d. probe distributions
    (Hutchinson, 1990; Avron and Toledo, 2011). Cost: `probes` Hessian-vector products.
    """
    if probes < 2:
        raise ValueError(f"hessian_trace: probes must be >= 2 (for a standard error), got {probes}")
    op = HessianOperator(loss_fn, model, batch, dtype=dtype)
    rng = np.random.default_rng(seed)
    blocks = np.zeros((probes, len(op.sizes)))  # z_b^T (H z)_b per probe and parameter
    for i in range(probes):
        z = rng.choice(np.array([-1.0, 1.0]), op.n)
        zhz = z * op.matvec(z)
        blocks[i] = [float(b.sum()) for b in op.split(zhz)]
    s = blocks.sum(axis=1)
    se = blocks.std(axis=0, ddof=1) / np.sqrt(probes)
    per = {n: (float(t), float(e)) for n, t, e in zip(op.names, blocks.mean(axis=0), se)}
    return TraceEstimate(float(s.mean()), float(s.std(ddof=1) / np.sqrt(probes)), probes, op.n,
                         s.tolist(), per)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Spectral density


@dataclass
class SpectralDensity:
    """The Hessian's eigenvalue density by stochastic Lanczos quadrature.

    Each probe v (a random unit vector) gives, from m Lanczos steps, a quadrature rule: nodes
    theta_j (the Ritz values) and weights tau_j (the squared first entries of T's eigenvectors,
    summing to 1) with sum_j tau_j f(theta_j) ~ v^T f(H) v = sum_i (v.u_i)^2 f(lambda_i). Averaged
    over probes, sum tau_j delta(t - theta_j) approximates the spectral density
    (1/n) sum_i delta(t - lambda_i); each delta is drawn as a Gaussian of width `sigma`.

    Attributes:
        grid, density: the density on a grid (integrates to 1).
        nodes, weights: the quadrature nodes and weights of each probe.
        lambda_min, lambda_max: the smallest and largest Ritz values of all probes (the extreme
            eigenvalues converge first: after m steps they are usually accurate).
        negative_mass: the share of the eigenvalues below -negative_tol * |lambda_max|.
        trace: n * the mean of the quadrature's sum tau_j theta_j (a trace estimate).
        sigma: the Gaussian width; hvps: products spent (probes x steps).
    """

    grid: list[float]
    density: list[float]
    nodes: list[list[float]]
    weights: list[list[float]]
    lambda_min: float
    lambda_max: float
    negative_mass: float
    trace: float
    sigma: float
    hvps: int
    n_params: int
    negative_tol: float = 1e-3

    @property
    def is_minimum(self) -> bool:
        """No eigenvalue clearly below zero (below -negative_tol * |lambda_max|)."""
        return self.lambda_min >= -self.negative_tol * abs(self.lambda_max)

    def __str__(self) -> str:
        lines = [
            f"Hessian spectrum (stochastic Lanczos quadrature, {len(self.nodes)} probes, "
            f"{self.hvps} Hessian-vector products, {self.n_params} parameters): eigenvalues from "
            f"{self.lambda_min:.4g} to {self.lambda_max:.4g}; trace ~ {self.trace:.4g}"
        ]
        if self.is_minimum:
            lines.append("no negative curvature found: the point looks like a minimum (locally "
                         "convex up to the quadrature's resolution)")  # fmt: skip
        else:
            lines.append(
                f"negative eigenvalues (down to {self.lambda_min:.4g}; "
                f"{100 * self.negative_mass:.2g}% of the spectrum): this point is NOT a minimum, "
                "the loss still curves down along some directions (a saddle, or a slope)"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (
            "grid", "density", "nodes", "weights", "lambda_min", "lambda_max", "negative_mass",
            "trace", "sigma", "hvps", "n_params", "negative_tol")}  # fmt: skip


def spectral_density(
    model,
    loss_fn: Callable,
    batch: Any,
    *,
    probes: int = 3,
    steps: int = 40,
    grid_points: int = 400,
    sigma: float | None = None,
    negative_tol: float = 1e-3,
    seed: int = 0,
    dtype=None,
) -> SpectralDensity:
    """The eigenvalue density of the Hessian by stochastic Lanczos quadrature.

    Args:
        model, loss_fn, batch: the loss at the current parameters.
        probes: random starting vectors (Gaussian, normalised); the density averages them.
        steps: Lanczos steps per probe (at most the number of parameters); each is one product.
        grid_points: points of the returned density's grid (spanning the extreme Ritz values
            plus 5 sigma on each side, so that the density integrates to 1).
        sigma: Gaussian width of each node (default 1% of the spectrum's extent).
        negative_tol: eigenvalues below -negative_tol * |lambda_max| count as negative.
        seed, dtype: as for `sharpness`.

    Returns:
        A SpectralDensity (cost: probes x steps Hessian-vector products).
    """
    op = HessianOperator(loss_fn, model, batch, dtype=dtype)
    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    for _ in range(probes):
        a, b, _, _ = _lanczos(op.matvec, op.n, steps, rng, v0=rng.standard_normal(op.n),
                              restart=False)  # fmt: skip
        theta, s = np.linalg.eigh(_tridiag(a, b))
        nodes.append(theta)
        weights.append(s[0] ** 2)  # Gauss quadrature weights (sum to 1: s is orthogonal)
    allnodes = np.concatenate(nodes)
    allw = np.concatenate(weights) / probes
    lo, hi = float(allnodes.min()), float(allnodes.max())
    if sigma is None:
        sigma = max(0.01 * (hi - lo), 1e-6 * max(abs(lo), abs(hi), 1e-30))
    grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, grid_points)
    dens = allw[None, :] * np.exp(-0.5 * ((grid[:, None] - allnodes[None, :]) / sigma) ** 2)
    dens = dens.sum(axis=1) / (sigma * np.sqrt(2 * np.pi))
    neg = float(allw[allnodes < -negative_tol * abs(hi)].sum())
    trace = float(op.n * sum(float(w @ t) for w, t in zip(weights, nodes)) / probes)
    return SpectralDensity(
        grid.tolist(), dens.tolist(), [t.tolist() for t in nodes], [w.tolist() for w in weights],
        lo, hi, neg, trace, float(sigma), op.count, op.n, negative_tol,
    )  # fmt: skip
