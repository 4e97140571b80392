"""Loss landscapes: the loss along lines and over planes through the current parameters.

A network's loss is a function of millions of numbers; we look at it along a line
`theta + a * d` (a 1-D slice) or over a plane `theta + a * d1 + b * d2` (a 2-D grid). Directions:

* the negative gradient: the way one gradient-descent step goes;
* random Gaussian directions with *filter normalisation* (Li, Xu, Taylor, Studer and Goldstein,
  2018, "Visualizing the Loss Landscape of Neural Nets", section 4): each filter (row of a
  weight, i.e. each output unit) of the direction is rescaled to the norm of the same filter of
  the weights, so that `a = 1` means "a step as large as the weights themselves" in every layer
  regardless of its scale. Following the paper, 1-D parameters (biases, norm gains) get a zero
  direction unless `include_1d=True`;
* the first two principal components of the training trajectory (`trajectory_projection`, the
  paper's section 7), to draw the path taken by training on the contour plot.

The parameters are restored exactly afterwards: each evaluation assigns fresh arrays
`theta + a d` and the original array objects are put back at the end (bit for bit, the same
objects).

For 2-parameter toy problems `surface_grid` and `descent_path` give the classic picture: the
contour of the loss and the steps of gradient descent with their gradient arrows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .. import autograd, backend
from ..autograd import no_grad
from ..tensor import Tensor

__all__ = [
    "DescentPath",
    "LossLandscape",
    "LossSlice",
    "LossGrid",
    "Trajectory",
    "descent_path",
    "flatten_parameters",
    "loss_landscape",
    "surface_grid",
    "trajectory_landscape",
    "trajectory_projection",
]


# ---------------------------------------------------------------------------------------------
# Data objects


@dataclass
class LossSlice:
    """The loss along one line theta + alpha * d.

    Attributes:
        direction: "negative gradient" or "random 1", "random 2", ...
        alphas: the step sizes along the (normalised) direction, 0 = current parameters.
        losses: the loss at each alpha.
    """

    direction: str
    alphas: list[float]
    losses: list[float]

    def __str__(self) -> str:
        i = int(np.nanargmin(self.losses)) if np.isfinite(self.losses).any() else 0
        at0 = self.losses[int(np.argmin(np.abs(np.asarray(self.alphas))))]
        return (
            f"slice along {self.direction}: loss {at0:.4g} at alpha 0, lowest "
            f"{self.losses[i]:.4g} at alpha {self.alphas[i]:+.3g} "
            f"(alphas {self.alphas[0]:+.3g}..{self.alphas[-1]:+.3g})"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LossGrid:
    """The loss over a plane theta + a * d1 + b * d2; losses[i][j] is at (alphas[j], betas[i])."""

    alphas: list[float]
    betas: list[float]
    losses: list[list[float]]
    directions: tuple[str, str] = ("random 1", "random 2")

    def __str__(self) -> str:
        z = np.asarray(self.losses, dtype=float)
        return (
            f"grid {len(self.betas)}x{len(self.alphas)} over ({self.directions[0]}, "
            f"{self.directions[1]}): loss {np.nanmin(z):.4g}..{np.nanmax(z):.4g}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Trajectory:
    """Training path projected on the plane of its first two principal components.

    Attributes:
        coords: one (x, y) per snapshot, relative to the last snapshot (which is at (0, 0)).
        explained: share of the variance of the path explained by each component.
        steps: the training step of each snapshot (when known).
    """

    coords: list[list[float]]
    explained: list[float]
    steps: list[int] = field(default_factory=list)
    directions: Any = field(default=None, repr=False)  # (2, D) array, not serialised

    def __str__(self) -> str:
        return (
            f"trajectory of {len(self.coords)} snapshots on the PCA plane (explains "
            f"{100 * sum(self.explained):.1f}% of the path's variance)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"coords": self.coords, "explained": self.explained, "steps": self.steps}


@dataclass
class LossLandscape:
    """Result of loss_landscape: 1-D slices and an optional 2-D grid."""

    slices: list[LossSlice]
    grid: LossGrid | None = None
    normalization: str = "filter"
    trajectory: Trajectory | None = None

    def __str__(self) -> str:
        lines = [f"loss landscape ({self.normalization} normalisation)"]
        lines += ["  " + str(s) for s in self.slices]
        if self.grid is not None:
            lines.append("  " + str(self.grid))
        if self.trajectory is not None:
            lines.append("  " + str(self.trajectory))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "slices": [s.to_dict() for s in self.slices],
            "grid": None if self.grid is None else self.grid.to_dict(),
            "normalization": self.normalization,
            "trajectory": None if self.trajectory is None else self.trajectory.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LossLandscape:
        grid = d.get("grid")
        traj = d.get("trajectory")
        return cls(
            [LossSlice(**s) for s in d.get("slices", [])],
            None if grid is None else LossGrid(**{**grid, "directions": tuple(grid["directions"])}),
            d.get("normalization", "filter"),
            None if traj is None else Trajectory(**traj),
        )


# ---------------------------------------------------------------------------------------------
# Parameters as a list


def _named_params(model) -> list[tuple[str, Tensor]]:
    if hasattr(model, "named_parameters"):
        return list(model.named_parameters())
    if isinstance(model, dict):
        return list(model.items())
    return [(f"param{i}", p) for i, p in enumerate(model)]


def flatten_parameters(model, dtype=np.float32) -> np.ndarray:
    """All parameters of `model` (in `named_parameters()` order) as one flat NumPy vector."""
    parts = [backend.as_numpy(p._data).ravel().astype(dtype) for _, p in _named_params(model)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def _unflatten(vec: np.ndarray, params: list[Tensor]) -> list[np.ndarray]:
    out, i = [], 0
    for p in params:
        n = int(np.prod(p.shape))
        out.append(vec[i : i + n].reshape(p.shape))
        i += n
    if i != vec.size:
        raise ValueError(
            f"a flat direction of {vec.size} entries does not match the model's {i} parameters"
        )
    return out


def _filter_normalize(d: list[np.ndarray], params: list[Tensor], include_1d: bool) -> None:
    """Li et al. 2018: rescale each filter (row along axis 0) of d to the norm of the weight's."""
    for k, (dk, p) in enumerate(zip(d, params)):
        w = backend.as_numpy(p._data).astype(np.float64)
        if w.ndim <= 1:
            if include_1d:
                dk *= np.linalg.norm(w) / (np.linalg.norm(dk) + 1e-10)
            else:
                d[k] = np.zeros_like(dk)
            continue
        # (out, rest): one norm per output unit (filter)
        dn = np.linalg.norm(dk.reshape(dk.shape[0], -1), axis=1)
        wn = np.linalg.norm(w.reshape(w.shape[0], -1), axis=1)
        scale = (wn / (dn + 1e-10)).reshape((-1,) + (1,) * (dk.ndim - 1))
        d[k] = dk * scale


def _total_norm(d: list[np.ndarray]) -> float:
    return float(np.sqrt(sum(float(np.sum(x * x)) for x in d)))


class _Perturber:
    """Sets parameters to theta + sum(c_i d_i) and restores the original arrays afterwards."""

    def __init__(self, params: list[Tensor]) -> None:
        self.params = params
        self.orig = [p._data for p in params]  # the original array objects, put back at the end

    def set(self, coeffs: Sequence[float], dirs: Sequence[list[np.ndarray]]) -> None:
        for k, p in enumerate(self.params):
            base = self.orig[k]
            xp = backend.get_array_module(base)
            delta = 0.0
            for c, d in zip(coeffs, dirs):
                if c != 0.0:
                    delta = delta + c * d[k]
            if isinstance(delta, float):
                p._data = base.copy()
            else:
                p._data = base + xp.asarray(delta, dtype=base.dtype)

    def restore(self) -> None:
        for p, a in zip(self.params, self.orig):
            p._data = a


def _loss_value(loss_fn, model, batch) -> float:
    with no_grad():
        out = loss_fn(model, batch)
    return float(out.item() if isinstance(out, Tensor) else out)


def _gradient(loss_fn, model, batch, params) -> list[np.ndarray]:
    with autograd.enable_grad():
        loss = loss_fn(model, batch)
    grads = autograd.grad(loss, params, allow_unused=True)
    return [
        np.zeros(p.shape) if g is None else backend.as_numpy(g._data).astype(np.float64)
        for g, p in zip(grads, params)
    ]


def _random_direction(params, rng) -> list[np.ndarray]:
    return [rng.standard_normal(p.shape) for p in params]


# ---------------------------------------------------------------------------------------------
# Model landscapes


def loss_landscape(
    model,
    loss_fn: Callable,
    batch: Any,
    *,
    steps: int = 21,
    span: float = 1.0,
    num_random: int = 2,
    gradient_slice: bool = True,
    grid: bool = False,
    grid_steps: int = 11,
    directions: tuple[Any, Any] | None = None,
    normalization: str = "filter",
    include_1d: bool = False,
    seed: int = 0,
) -> LossLandscape:
    """The loss around the current parameters, along lines and (optionally) over a plane.

    Args:
        model: a Module (or a list/dict of parameter tensors).
        loss_fn: `loss_fn(model, batch) -> scalar Tensor` (evaluated under no_grad except for the
            one gradient computation).
        batch: passed through to `loss_fn`.
        steps: points per 1-D slice (alphas evenly spaced in [-span, span]).
        span: the extent of the slices and of the grid (1.0 = a step as large as the weights,
            under filter normalisation).
        num_random: random directions for 1-D slices (the grid uses the first two, or two more).
        gradient_slice: add the slice along the negative gradient.
        grid: also compute a 2-D grid of `grid_steps` x `grid_steps` points.
        directions: optional pair of directions for the grid (lists of arrays shaped like the
            parameters, flat vectors, or dicts name -> array such as the eigenvectors of
            `curvature.sharpness`); used as given (no normalisation).
        normalization: "filter" (Li et al. 2018) or "none" (unit total norm).
        include_1d: give biases and norm gains a direction too (the paper leaves them at zero).
        seed: seed of the random directions.

    Returns:
        A LossLandscape with `.slices` and `.grid`. The parameters are restored bit-exactly.

    Note:
        Call `model.eval()` first when the model has dropout: the landscape assumes the loss is
        a deterministic function of the weights.
    """
    if normalization not in ("filter", "none"):
        raise ValueError(
            f"loss_landscape: normalization must be 'filter' or 'none', got {normalization!r}"
        )
    named = _named_params(model)
    params = [p for _, p in named]
    if not params:
        raise ValueError("loss_landscape: the model has no parameters")
    rng = np.random.default_rng(seed)

    def normalize(d):
        if normalization == "filter":
            _filter_normalize(d, params, include_1d)
        else:
            n = _total_norm(d)
            d[:] = [x / (n + 1e-30) for x in d]
        return d

    alphas = np.linspace(-span, span, steps)
    pert = _Perturber(params)
    slices: list[LossSlice] = []
    result_grid = None
    try:
        if gradient_slice:
            g = _gradient(loss_fn, model, batch, params)
            d = normalize([-x for x in g])
            slices.append(_slice("negative gradient", alphas, pert, d, loss_fn, model, batch))
        rand_dirs = [normalize(_random_direction(params, rng)) for _ in range(num_random)]
        for i, d in enumerate(rand_dirs):
            slices.append(_slice(f"random {i + 1}", alphas, pert, d, loss_fn, model, batch))
        if grid:
            if directions is not None:
                pnames = [n for n, _ in named]
                d1, d2 = (_as_direction(x, params, pnames) for x in directions)
                names = ("direction 1", "direction 2")
            else:
                while len(rand_dirs) < 2:
                    rand_dirs.append(normalize(_random_direction(params, rng)))
                d1, d2 = rand_dirs[0], rand_dirs[1]
                names = ("random 1", "random 2")
            ga = np.linspace(-span, span, grid_steps)
            result_grid = _grid(ga, ga, pert, d1, d2, loss_fn, model, batch, names)
    finally:
        pert.restore()
    return LossLandscape(slices, result_grid, normalization)


def _as_direction(x, params, names=None) -> list[np.ndarray]:
    if isinstance(x, dict):  # {name: array}, e.g. sharpness(...).eigenvectors[i]; absent: 0
        unknown = sorted(set(x) - set(names or []))
        if unknown:
            raise ValueError(f"loss_landscape: the direction names unknown parameters {unknown}")
        return [
            np.asarray(backend.as_numpy(x[n]._data if isinstance(x[n], Tensor) else x[n]),
                       np.float64).reshape(p.shape) if n in x else np.zeros(p.shape)
            for n, p in zip(names, params)
        ]  # fmt: skip
    if isinstance(x, np.ndarray) and x.ndim == 1:
        return [np.asarray(a, np.float64) for a in _unflatten(x, params)]
    return [
        np.asarray(backend.as_numpy(a._data if isinstance(a, Tensor) else a), np.float64) for a in x
    ]


def _slice(name, alphas, pert, d, loss_fn, model, batch) -> LossSlice:
    losses = []
    for a in alphas:
        pert.set([float(a)], [d])
        losses.append(_loss_value(loss_fn, model, batch))
    return LossSlice(name, [float(a) for a in alphas], losses)


def _grid(alphas, betas, pert, d1, d2, loss_fn, model, batch, names) -> LossGrid:
    rows = []
    for b in betas:
        row = []
        for a in alphas:
            pert.set([float(a), float(b)], [d1, d2])
            row.append(_loss_value(loss_fn, model, batch))
        rows.append(row)
    return LossGrid([float(a) for a in alphas], [float(b) for b in betas], rows, names)


# ---------------------------------------------------------------------------------------------
# Trajectories


def trajectory_projection(
    snapshots: Sequence[Any], steps: Sequence[int] | None = None
) -> Trajectory:
    """Project a training path onto the plane of its two main directions (Li et al. 2018, s. 7).

    With theta_0..theta_n the recorded parameters, the matrix of differences
    M = [theta_i - theta_n] goes through PCA; its first two components span the plane, and each
    snapshot's coordinates are (theta_i - theta_n) projected on them. The last snapshot is the
    origin, where a landscape grid would be centred.

    Args:
        snapshots: flat parameter vectors (e.g. `flatten_parameters(model)` at each eval), or
            models / lists of tensors (flattened here). At least 2.
        steps: the training step of each snapshot (kept for labels).

    Returns:
        A Trajectory; `.directions` holds the two unit directions (2, D) as a NumPy array.
    """
    if len(snapshots) < 2:
        raise ValueError(f"trajectory_projection needs at least 2 snapshots, got {len(snapshots)}")
    vecs = [
        np.asarray(s, np.float64).ravel()
        if isinstance(s, np.ndarray)
        else flatten_parameters(s, np.float64)
        for s in snapshots
    ]
    sizes = {v.size for v in vecs}
    if len(sizes) != 1:
        raise ValueError(f"trajectory_projection: snapshots have different sizes {sorted(sizes)}")
    final = vecs[-1]
    diffs = np.stack([v - final for v in vecs[:-1]])  # (n, D)
    centred = diffs - diffs.mean(axis=0, keepdims=True)
    # thin SVD of an (n, D) matrix with n << D: rows of vt are the principal directions
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    if vt.shape[0] < 2:  # two snapshots: one difference; second direction orthogonal to it
        d1 = diffs[0] / (np.linalg.norm(diffs[0]) + 1e-30)
        rng = np.random.default_rng(0)
        r = rng.standard_normal(d1.size)
        r -= r.dot(d1) * d1
        dirs = np.stack([d1, r / np.linalg.norm(r)])
        explained = [1.0, 0.0]
    else:
        dirs = vt[:2]
        var = s**2
        explained = [float(v / var.sum()) if var.sum() > 0 else 0.0 for v in var[:2]]
    coords = np.concatenate([diffs @ dirs.T, np.zeros((1, 2))])  # (n + 1, 2)
    return Trajectory(
        coords.tolist(), explained, list(steps) if steps is not None else [], directions=dirs
    )


def trajectory_landscape(
    model,
    loss_fn: Callable,
    batch: Any,
    trajectory: Trajectory,
    grid_steps: int = 15,
    margin: float = 0.3,
) -> LossLandscape:
    """The loss over the trajectory's PCA plane, centred on the current (final) parameters.

    The grid covers the projected path plus `margin` of its extent on every side; the result's
    `.trajectory` is the path, ready for `plot.plot_contour`.
    """
    if trajectory.directions is None:
        raise ValueError("trajectory_landscape: the trajectory has no directions (made from JSON?)")
    params = [p for _, p in _named_params(model)]
    c = np.asarray(trajectory.coords)
    lo, hi = c.min(axis=0), c.max(axis=0)
    ext = np.maximum(hi - lo, 1e-3)
    lo, hi = lo - margin * ext, hi + margin * ext
    alphas = np.linspace(lo[0], hi[0], grid_steps)
    betas = np.linspace(lo[1], hi[1], grid_steps)
    d1, d2 = (_as_direction(trajectory.directions[i], params) for i in range(2))
    pert = _Perturber(params)
    try:
        g = _grid(alphas, betas, pert, d1, d2, loss_fn, model, batch, ("PCA 1", "PCA 2"))
    finally:
        pert.restore()
    return LossLandscape([], g, "none", trajectory)


# ---------------------------------------------------------------------------------------------
# Two-parameter toy problems


@dataclass
class DescentPath:
    """Gradient descent on a function of 2 numbers: the points, losses and gradients per step."""

    points: list[list[float]]
    losses: list[float]
    gradients: list[list[float]]
    lr: float

    def __str__(self) -> str:
        p0, p1 = self.points[0], self.points[-1]
        return (
            f"{len(self.points) - 1} steps of lr {self.lr}: loss {self.losses[0]:.4g} at "
            f"({p0[0]:.3g}, {p0[1]:.3g}) -> {self.losses[-1]:.4g} at ({p1[0]:.3g}, {p1[1]:.3g})"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def descent_path(
    f: Callable, start: Sequence[float], lr: float = 0.1, steps: int = 20
) -> DescentPath:
    """Run plain gradient descent x <- x - lr * grad f(x) on a 2-parameter function.

    Args:
        f: maps a Tensor of shape (2,) (float64) to a scalar Tensor.
        start: the starting point (x, y).
        lr: the step size.
        steps: the number of steps.
    """
    x = np.asarray(start, dtype=np.float64)
    points, losses, grads = [], [], []
    for i in range(steps + 1):
        t = Tensor(x.copy(), dtype=np.float64, requires_grad=True)
        loss = f(t)
        (g,) = autograd.grad(loss, [t])
        gv = backend.as_numpy(g._data).astype(np.float64)
        points.append(x.tolist())
        losses.append(float(loss.item()))
        grads.append(gv.tolist())
        if i < steps:
            x = x - lr * gv
    return DescentPath(points, losses, grads, lr)


def surface_grid(
    f: Callable, xlim: tuple[float, float], ylim: tuple[float, float], steps: int = 60
) -> LossGrid:
    """Evaluate a 2-parameter function on a grid: `losses[i][j] = f((xs[j], ys[i]))`."""
    xs = np.linspace(xlim[0], xlim[1], steps)
    ys = np.linspace(ylim[0], ylim[1], steps)
    rows = []
    with no_grad():
        for y in ys:
            rows.append([float(f(Tensor(np.array([x, y]), dtype=np.float64)).item()) for x in xs])
    return LossGrid(xs.tolist(), ys.tolist(), rows, ("x", "y"))
