"""Why a learning rate diverges (the edge of stability) and how big a batch should be (noise).

`stability(model, loss_fn, batch, optimizer)` compares the loss's curvature with the largest
curvature the optimizer can follow at its learning rate. On a quadratic with Hessian H, along an
eigenvector with eigenvalue lambda each optimizer is a linear recurrence; it converges only if
lambda is below a threshold (a quadratic model of the loss around the current point, so the
verdict is about the next steps):

    plain gradient descent           lambda < 2 / lr
    heavy-ball momentum mu           lambda < 2 (1 + mu) / (lr (1 - dampening))
      (PyTorch's SGD: b <- mu b + (1 - dampening) g, w <- w - lr b)
    Nesterov momentum mu             lambda < (2 + 2 mu) / (lr (1 + 2 mu))
      (the root z = -1 of z^2 - (1 + mu)(1 - h) z + mu (1 - h), h = lr lambda)
    Adam / AdamW                     lambda_1(P^-1 H) < (2 + 2 beta1) / ((1 - beta1) lr)
      with Adam's diagonal preconditioner P = (1 - beta1^t) (sqrt(v_t / (1 - beta2^t)) + eps)
      (Cohen et al., 2022, "Adaptive gradient methods at the edge of stability", eq. 2-3:
      Adam is heavy-ball momentum with an EMA of the gradient, preconditioned by P)

Cohen, Kaur, Li, Kolter and Talwalkar (2021, "Gradient descent on neural networks typically
occurs at the edge of stability") observed that full-batch training raises the sharpness until it
reaches 2 / lr and then hovers there; above it, the loss oscillates along the top eigenvector
and, far above, blows up. The coupled L2 weight decay of SGD and Adam adds weight_decay to every
eigenvalue of the loss's Hessian and is included; AdamW's decoupled decay is not a gradient
and is left out. Parameter groups with different learning rates act as a preconditioner
diag(lr_group / lr) and are handled as one.

`gradient_noise_scale` estimates B_simple = tr(Sigma) / |G|^2 (McCandlish, Kaplan, Amodei and the
OpenAI Dota team, 2018, "An empirical model of large-batch training", section 2.2 and appendix
A.1): Sigma is the covariance of one example's gradient and G the true gradient. A batch of B
examples has E|G_B|^2 = |G|^2 + tr(Sigma) / B, so the noise and the signal are equal at B =
B_simple; below it, steps are mostly noise (more steps needed), above it extra examples are
mostly wasted. The paper's critical batch size B_crit ~ B_noise is estimated by B_simple (equal
when the Hessian is a multiple of the identity).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor
from .curvature import HessianOperator, describe_shares, direction_shares, top_eigen
from .landscape import _gradient, _named_params

__all__ = ["NoiseScale", "StabilityReport", "gradient_noise_scale", "stability"]


# ---------------------------------------------------------------------------------------------
# Stability


@dataclass
class StabilityReport:
    """The sharpness against an optimizer's stability threshold (see the module docstring).

    Attributes:
        optimizer: the optimizer's class name; lr: its learning rate (of the first group).
        sharpness: the top eigenvalue of the loss's Hessian H (+ coupled weight decay; of -H
            for an optimizer with maximize=True).
        measured: what is compared with the threshold: `sharpness`, or for Adam the
            preconditioned sharpness lambda_1(P^-1 H) (also for groups with different lrs).
        preconditioned: whether `measured` is preconditioned.
        threshold: the largest stable `measured` at this lr; formula: how it was computed.
        ratio: measured / threshold (> 1: above the edge of stability).
        max_stable_lr: the lr at which measured = threshold (None when measured <= 0).
        hvps: Hessian-vector products spent; converged: the eigenvalue(s) converged.
        note: anything the verdict assumed (an optimizer without a formula, no Adam state yet).
        direction: (parameter name, share of the squared norm) of the sharpest direction (of
            the compared operator), largest first: the layers where a too-large lr overshoots.
        quantity: `measured` in words (which operator's top eigenvalue).
    """

    optimizer: str
    lr: float
    sharpness: float
    measured: float
    preconditioned: bool
    threshold: float
    formula: str
    ratio: float
    max_stable_lr: float | None
    hvps: int
    converged: bool
    loss: float = float("nan")
    note: str = ""
    direction: list[tuple[str, float]] = field(default_factory=list)
    quantity: str = "sharpness (top eigenvalue of the loss's Hessian)"

    @property
    def above_edge(self) -> bool:
        """measured > threshold: the quadratic model says the next steps grow, not shrink."""
        return self.ratio > 1.0

    def __str__(self) -> str:
        lines = [
            f"{self.optimizer} at lr {self.lr:.4g}: the {self.quantity} is "
            f"{self.measured:.4g}; the optimizer is stable on a quadratic only below "
            f"{self.formula} = {self.threshold:.4g}."
        ]
        if self.measured <= 0:
            lines.append(
                "No direction curves upward here (the top eigenvalue is <= 0): curvature "
                "sets no limit on the lr at this point."
            )
        elif self.above_edge:
            lines.append(
                f"The lr is ABOVE the edge of stability ({self.ratio:.3g}x the largest "
                "stable value): along the top eigenvector each step overshoots the valley "
                "and lands higher on the other side, so expect the loss to oscillate or blow "
                f"up. The curvature allows lr < {self.max_stable_lr:.3g}."
            )
        else:
            lines.append(
                f"The lr is below the edge of stability (at {100 * self.ratio:.3g}% of it): "
                f"steps shrink along every direction. The curvature allows lr up to "
                f"{self.max_stable_lr:.3g} (training tends to sharpen until it meets that edge)."
            )
        if self.direction and self.measured > 0:
            lines.append("The sharpest direction lies in " + describe_shares(self.direction) + ".")
        cost = f"{self.hvps} Hessian-vector products"
        lines.append(cost + ("" if self.converged else "; the eigenvalue did NOT converge "
                                                       "(raise iters)"))  # fmt: skip
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["above_edge"] = self.above_edge
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def _optimizer_scaling(optimizer, op: HessianOperator, params: list):
    """(lr, s, wd, sign, formula, c, preconditioned, note): the operator compared is
    S^1/2 (sign H + diag(wd)) S^1/2 with S = diag(s), against the threshold c / lr.

    `params` are the optimizer's own tensors in the operator's order (the operator may work on
    a float64 copy); sign is -1 for `maximize=True` (ascending L descends -L)."""
    from ..optim import SGD, Adam

    groups = optimizer.param_groups
    lr = float(groups[0]["lr"])
    if lr <= 0:
        raise ValueError(f"stability: the optimizer's lr must be > 0, got {lr}")
    # per parameter: its group (parameters the optimizer does not update get s = 0)
    group_of = {}
    for g in groups:
        for p in g["params"]:
            group_of[p] = g
    s = np.zeros(op.n)
    wd = np.zeros(op.n)
    note = ""
    i = 0
    lrs = set()
    is_adam = isinstance(optimizer, Adam)
    for name, p, size in zip(op.names, params, op.sizes):
        g = group_of.get(p)
        if g is None:
            i += size
            continue
        lrs.add(float(g["lr"]))
        s[i : i + size] = float(g["lr"]) / lr
        decoupled = is_adam and g.get("decoupled_weight_decay", False)
        wd[i : i + size] = 0.0 if decoupled else float(g.get("weight_decay", 0.0))
        if is_adam:
            st = optimizer.state.get(p) or {}
            if "exp_avg_sq" not in st:
                raise ValueError(
                    "stability: Adam has no state for parameter "
                    f"{name!r} yet (its preconditioner comes from "
                    "exp_avg_sq): take at least one optimizer step first"
                )
            beta1, beta2 = (float(b) for b in g["betas"])
            t = float(backend.as_numpy(st["step"]._data if isinstance(st["step"], Tensor)
                                       else np.asarray(st["step"])))  # fmt: skip
            v = st["max_exp_avg_sq"] if g.get("amsgrad") else st["exp_avg_sq"]
            v = backend.as_numpy(v._data).astype(np.float64).ravel()
            # Cohen et al. 2022, eq. 3: P = (1 - beta1^t) (diag(sqrt(v / (1 - beta2^t))) + eps)
            pre = (1 - beta1**t) * (np.sqrt(v / (1 - beta2**t)) + float(g["eps"]))
            s[i : i + size] /= pre
        i += size
    g0 = groups[0]
    sign = -1.0 if g0.get("maximize") else 1.0
    if is_adam:
        beta1 = float(g0["betas"][0])
        c, formula = (2 + 2 * beta1) / (1 - beta1), "(2 + 2 beta1) / ((1 - beta1) lr)"
        decays = [float(g.get("weight_decay", 0)) for g in groups]
        if g0.get("decoupled_weight_decay") and any(decays):
            note = "AdamW's decoupled weight decay is not part of the gradient and is left out."
        return lr, s, wd, sign, formula, c, True, note
    if isinstance(optimizer, SGD):
        mu, damp = float(g0["momentum"]), float(g0["dampening"])
        if mu == 0:
            c, formula = 2.0, "2 / lr"
        elif g0["nesterov"]:
            c, formula = (2 + 2 * mu) / (1 + 2 * mu), "(2 + 2 mu) / ((1 + 2 mu) lr) (Nesterov)"
        else:
            c = 2 * (1 + mu) / (1 - damp)
            formula = "2 (1 + mu) / lr" if damp == 0 else "2 (1 + mu) / ((1 - dampening) lr)"
    else:
        c, formula = 2.0, "2 / lr"
        note = (
            f"{type(optimizer).__name__} has no stability formula here: the plain "
            "gradient-descent threshold 2 / lr is shown (a rough guide for this optimizer)."
        )
    return lr, s, wd, sign, formula, c, len(lrs) > 1, note


def stability(
    model,
    loss_fn: Callable,
    batch: Any,
    optimizer,
    *,
    iters: int | None = None,
    tol: float = 1e-4,
    seed: int = 0,
    dtype=None,
) -> StabilityReport:
    """Is the optimizer's learning rate above the edge of stability of the current loss?

    Args:
        model, loss_fn, batch: the loss `loss_fn(model, batch)` at the current parameters (the
            parameters must be those of `optimizer`; a float64 `dtype` copy is matched by order).
        optimizer: a descent.optim optimizer. SGD (plain, heavy-ball, Nesterov) and Adam/AdamW
            have exact thresholds (module docstring); others are compared with 2 / lr.
            Adam needs its state (at least one step taken).
        iters, tol, seed: of the Lanczos iteration (see `sharpness`).
        dtype: None or "float64".

    Returns:
        A StabilityReport whose str() says in words whether lr is above the edge and which lr
        the curvature allows. Cost: one or two Lanczos runs (`.hvps` products).
    """
    op = HessianOperator(loss_fn, model, batch, dtype=dtype)
    # the optimizer knows the model's own tensors (op's are a float64 copy with dtype=)
    own = [p for _, p in _named_params(model) if p.requires_grad]
    lr, s, wd, sign, formula, c, pre, note = _optimizer_scaling(optimizer, op, own)
    from ..optim import Adam

    is_adam = isinstance(optimizer, Adam)

    def signed(u):  # maximize=True ascends L: the curvature that matters is that of -L
        return sign * op.matvec(u)

    # the plain sharpness of the loss (+ coupled weight decay where all groups agree)
    vals, vecs, res, _ = top_eigen(signed, op.n, 1, iters=iters, tol=tol, seed=seed)
    top = vecs[0]
    uniform = not wd.size or np.all(wd == wd[0])
    sharp = float(vals[0]) + (float(wd[0]) if wd.size and uniform else 0.0)
    converged = bool(res[0] <= tol * max(abs(vals[0]), 1e-30))
    measured = sharp
    if is_adam:
        quantity = ("preconditioned sharpness (top eigenvalue of P^-1/2 H P^-1/2, P Adam's "
                    "preconditioner)")  # fmt: skip
    elif pre:
        quantity = ("preconditioned sharpness (top eigenvalue of L^1/2 H L^1/2, L the groups' "
                    "learning rates / lr)")  # fmt: skip
    else:
        quantity = "sharpness (top eigenvalue of the loss's Hessian" + (
            " + weight decay)" if wd.any() else ")"
        )
    if pre or not uniform:  # S^1/2 (H + diag(wd)) S^1/2: per-parameter lrs or decays
        root = np.sqrt(s)

        def scaled(u):
            x = root * u
            return root * (signed(x) + wd * x)

        pvals, pvecs, pres, _ = top_eigen(scaled, op.n, 1, iters=iters, tol=tol, seed=seed)
        top = root * pvecs[0]  # the direction in the parameters' own coordinates
        measured = float(pvals[0])
        converged = converged and bool(pres[0] <= tol * max(abs(pvals[0]), 1e-30))
        if not pre:
            quantity = (
                "sharpness (top eigenvalue of the loss's Hessian + each group's weight decay)"
            )
    if not pre and uniform and np.any(s == 0):
        note = (note + " " if note else "") + (
            "Parameters the optimizer does not update are included in the sharpness."
        )
    threshold = c / lr
    ratio = measured / threshold
    max_lr = c / measured if measured > 0 else None
    return StabilityReport(
        type(optimizer).__name__, lr, sharp, measured, pre, threshold, formula, ratio, max_lr,
        op.count, converged, op.loss, note, direction_shares(op.as_dict(top)), quantity,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Gradient noise scale


@dataclass
class NoiseScale:
    """The simple noise scale B_simple = tr(Sigma) / |G|^2 and the batch size it suggests.

    Attributes:
        b_simple: tr(Sigma) / |G|^2 (None when |G|^2 is not resolved: estimated <= 0).
        trace_sigma: the estimate of tr(Sigma), the summed per-example gradient variance.
        grad_sq_norm: the estimate of |G|^2, the true gradient's squared norm.
        batch_size: the size B of each gradient the estimate used (1 for per-example).
        gradients: how many gradients of that size (their mean is the big-batch gradient).
        method: "per-example" or "two batch sizes".
    """

    b_simple: float | None
    trace_sigma: float
    grad_sq_norm: float
    batch_size: int
    gradients: int
    method: str

    @property
    def critical_batch_size(self) -> float | None:
        """B_crit ~ B_noise ~ B_simple (McCandlish et al. 2018, eq. 2.11 and section 2.2)."""
        return self.b_simple

    def steps_and_examples(self, batch_size: float) -> tuple[float, float] | None:
        """(S / S_min, E / E_min) at this batch size: 1 + B_simple / B and 1 + B / B_simple
        (the paper's eq. 2.11: the steps and the examples needed, relative to the minimum)."""
        if not self.b_simple:
            return None
        return 1 + self.b_simple / batch_size, 1 + batch_size / self.b_simple

    def __str__(self) -> str:
        head = (
            f"gradient noise scale ({self.method}, {self.gradients} gradients of batch size "
            f"{self.batch_size}): tr(Sigma) = {self.trace_sigma:.4g}, |G|^2 = "
            f"{self.grad_sq_norm:.4g}"
        )
        if self.b_simple is None:
            big = self.batch_size * self.gradients
            return head + (
                f"\n|G|^2 is not resolved (the estimate is <= 0): the noise drowns the signal at "
                f"batch size {big}; the critical batch size is larger than that (use more or "
                "bigger batches to measure it)"
            )
        b = self.b_simple
        return head + (
            f"\nB_simple = tr(Sigma) / |G|^2 = {b:.4g}: a batch of about {b:.3g} examples has as "
            "much signal as noise; the critical batch size is about that. Far smaller batches "
            "need up to 1 + B_simple / B times the minimum number of steps; far larger ones "
            "up to 1 + B / B_simple times the minimum number of examples."
        )

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["critical_batch_size"] = self.critical_batch_size
        return d


def _batch_len(batch) -> int:
    """The size of a batch: the first dimension of its first array/Tensor."""
    if isinstance(batch, (Tensor, np.ndarray)):
        if not batch.shape:
            raise ValueError("gradient_noise_scale: a 0-d batch has no example dimension")
        return int(batch.shape[0])
    items = batch.values() if isinstance(batch, dict) else batch
    if isinstance(items, (list, tuple)) or isinstance(batch, dict):
        for b in items:
            if isinstance(b, (Tensor, np.ndarray, list, tuple, dict)):
                return _batch_len(b)
    raise ValueError("gradient_noise_scale: cannot find the batch size; pass batch_size=")


def _example(batch, i: int):
    """Example i of a batch as a batch of one (slices i:i+1 keep the batch dimension)."""
    if isinstance(batch, (Tensor, np.ndarray)):
        return batch[i : i + 1]
    if isinstance(batch, dict):
        return {k: _example(v, i) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_example(b, i) for b in batch)
    return batch  # not an array: passed through (e.g. a flag)


def gradient_noise_scale(
    model,
    loss_fn: Callable,
    batches: Sequence[Any] | Any,
    *,
    per_example: bool = False,
    batch_size: int | None = None,
) -> NoiseScale:
    """Estimate the simple gradient noise scale B_simple = tr(Sigma) / |G|^2.

    From k >= 2 gradients g_1..g_k, each the mean-loss gradient of a batch of B independent
    examples, with B_big = k B and G_big their mean, the paper's unbiased estimators (appendix
    A.1) are

        |G|^2     ~ (B_big |G_big|^2 - B mean_j |g_j|^2) / (B_big - B)
        tr(Sigma) ~ (mean_j |g_j|^2 - |G_big|^2) / (1 / B - 1 / B_big)

    (from E|G_B|^2 = |G|^2 + tr(Sigma) / B). With per-example gradients (B = 1) they are the
    unbiased sample variance and |mean|^2 - tr(Sigma) / k.

    Args:
        model, loss_fn: `loss_fn(model, batch)` must be the MEAN loss over the batch's examples.
        batches: a sequence of k >= 2 batches of equal size (two batch sizes: each batch, and
            all of them together), or with `per_example=True` one batch whose arrays have the
            examples along dimension 0 (each example is run alone, as a batch of one: a loop,
            k backward passes; descent's vmap is the same loop).
        per_example: split the one batch into examples.
        batch_size: the size of each batch when it cannot be read from the batch.

    Returns:
        A NoiseScale (`b_simple`, `critical_batch_size`, `trace_sigma`, `grad_sq_norm`).
    """
    named = [(n, p) for n, p in _named_params(model) if p.requires_grad]
    params = [p for _, p in named]
    if per_example:
        n = batch_size if batch_size is not None else _batch_len(batches)
        items = [_example(batches, i) for i in range(n)]
        size = 1
    else:
        items = list(batches)
        sizes = {_batch_len(b) for b in items} if batch_size is None else {batch_size}
        if len(sizes) != 1:
            raise ValueError(
                f"gradient_noise_scale: the batches must have one size, got {sorted(sizes)} "
                "(or pass per_example=True with one batch)"
            )
        size = sizes.pop()
    k = len(items)
    if k < 2:
        raise ValueError(f"gradient_noise_scale: needs at least 2 gradients, got {k}")
    # (k, n_params) float64: one flat gradient per batch (or example)
    grads = np.stack([np.concatenate([g.ravel() for g in _gradient(loss_fn, model, b, params)])
                      for b in items])  # fmt: skip
    small = float(np.mean(np.sum(grads * grads, axis=1)))  # mean_j |g_j|^2
    mean = grads.mean(axis=0)
    big = float(mean @ mean)  # |G_big|^2
    b_small, b_big = float(size), float(size * k)
    g2 = (b_big * big - b_small * small) / (b_big - b_small)
    tr = (small - big) / (1 / b_small - 1 / b_big)
    b_simple = tr / g2 if g2 > 0 and math.isfinite(tr / g2) else None
    method = "per-example" if per_example else "two batch sizes"
    return NoiseScale(b_simple, float(tr), float(g2), int(size), k, method)


# ---------------------------------------------------------------------------------------------
# A run's sharpness records (curvature.jsonl, written by ReportCallback(curvature_every=N))


def curvature_record_ok(rec: dict) -> bool:
    """A curvature.jsonl record the summary and the picture can read."""
    nums = ("measured", "threshold", "lr")
    return type(rec.get("step")) is int and all(
        isinstance(rec.get(k), (int, float)) and not isinstance(rec.get(k), bool) for k in nums
    )


def curvature_findings(records: list[dict]):
    """The summary's sentences about the sharpness over training (the edge-of-stability picture).

    * above the edge: the first recorded step whose measured sharpness exceeded the threshold
      (a warning: the quadratic model says the steps overshoot along the top eigenvector);
    * at the edge: the last record within 10% below it (Cohen et al. 2021: gradient descent
      typically sharpens until it meets 2 / lr and then hovers there);
    * otherwise the sharpness's range and the largest share of the threshold it reached.
    """
    from .report import Finding

    recs = [r for r in records if curvature_record_ok(r)]
    if not recs:
        return []
    what = "preconditioned sharpness" if recs[-1].get("preconditioned") else "sharpness"
    formula = recs[-1].get("formula", "the threshold")
    first, last = recs[0], recs[-1]
    above = [r for r in recs if r["measured"] > r["threshold"]]
    trend = (
        f"{what} {first['measured']:.4g} at step {first['step']} -> {last['measured']:.4g} at "
        f"step {last['step']}"
    )
    if above:
        r = above[0]
        return [
            Finding(
                "warning",
                f"{what} exceeded the edge of stability {formula} at step {r['step']} "
                f"({r['measured']:.4g} > {r['threshold']:.4g}, lr {r['lr']:.3g}; "
                f"{len(above)} of {len(recs)} records above it): {trend}",
            )
        ]
    top = max(recs, key=lambda r: r["measured"] / r["threshold"])
    share = top["measured"] / top["threshold"]
    if last["measured"] >= 0.9 * last["threshold"]:
        text = (
            f"training reached the edge of stability: {trend}, within 10% of {formula} = "
            f"{last['threshold']:.4g} (the sharpness rose until the lr allowed no more)"
        )
        return [Finding("info", text)]
    return [
        Finding(
            "good",
            f"{trend}; at most {100 * share:.3g}% of the edge of stability {formula} (step "
            f"{top['step']}): the lr is within what the curvature allows",
        )
    ]
