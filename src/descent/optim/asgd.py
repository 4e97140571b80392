"""ASGD, averaged stochastic gradient descent (Polyak & Juditsky, 1992, "Acceleration of
Stochastic Approximation by Averaging"; the step-size schedule of Bottou, 2012, as PyTorch)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import backend
from .optimizer import Optimizer, _add_scaled, _Arrays, _check_range, _impl_options


class ASGD(Optimizer):
    r"""ASGD: SGD with a decaying step and a running average of the iterates.

    Matches `torch.optim.ASGD`. For each parameter θ with gradient g at step t (state "eta" = η,
    first lr; "mu" = μ, first 1; "ax" = the average):

        g  ← -g                                  if maximize
        g  ← g + λ_wd θ
        θ  ← θ (1 - λ η)                         (λ = lambd)
        θ  ← θ - η g
        ax ← ax + μ (θ - ax)                     (ax ← θ while μ = 1)
        η  ← lr / (1 + λ lr t)^α
        μ  ← 1 / max(1, t - t0)

    η and μ are one number per parameter, 0-d Tensors of PyTorch's scalar dtype (float32;
    float64 when the default dtype is), as PyTorch's state. The average "ax" is what ASGD offers for
    evaluation (copy it into the parameters yourself, as with PyTorch).

    Args:
        params: Parameters or parameter groups (dicts).
        lr: learning rate.
        lambd: decay term λ.
        alpha: power α of the η schedule.
        t0: the step from which averaging starts.
        weight_decay: L2 penalty λ_wd.
        foreach, capturable: PyTorch's kernel choices; accepted and recorded, no effect.
        maximize: ascend the objective instead of descending.
        differentiable: must be False.
    """

    #: PyTorch's order of the options in a group (`param_groups`, `state_dict()`)
    _group_keys = (
        "lr",
        "lambd",
        "alpha",
        "t0",
        "weight_decay",
        "foreach",
        "maximize",
        "differentiable",
        "capturable",
    )

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            lambd=lambd,
            alpha=alpha,
            t0=t0,
            weight_decay=weight_decay,
            maximize=maximize,
            **_impl_options("ASGD", foreach, None, capturable, differentiable, omit=("fused",)),
        )
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        for key in ("lr", "weight_decay"):
            _check_range("ASGD", group, key)

    def _state_init(self, group: dict[str, Any]) -> dict[str, float]:
        return {"ax": 0.0}

    def _scalar_state_init(self, group: dict[str, Any]) -> dict[str, float]:
        return {"eta": group["lr"], "mu": 1.0}

    def _update(self, group: dict[str, Any], a: _Arrays, step: int) -> None:
        xp, p, g, tmp, ax = a.xp, a.param, a.grad, a.tmp, a.state["ax"]
        lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
        # η and μ are PyTorch's 0-d tensors of its scalar dtype (stored rounded to it); they
        # meet the parameter in its own dtype, as a 0-d tensor does in PyTorch's ops
        real, keep = p.dtype.type, a.scalar_type
        eta, mu = a.scalars["eta"], a.scalars["mu"]
        k = backend.fused("asgd_update", p, g, ax)
        if k is not None:  # NumPy float32/float64: this sequence in one numba pass, bitwise
            k(p, g, ax, eta=eta, mu=mu, lambd=lambd, weight_decay=group["weight_decay"],
              maximize=group["maximize"])  # fmt: skip
        else:
            if group["maximize"]:
                xp.negative(g, out=g)
            if group["weight_decay"] != 0:
                _add_scaled(xp, g, group["weight_decay"], p, tmp)
            p *= 1 - lambd * eta  # the decay term
            _add_scaled(xp, p, -eta, g, tmp)
            if mu != 1:
                xp.subtract(p, ax, out=tmp)
                tmp *= real(mu)
                ax += tmp
            else:
                ax[...] = p
        # torch.as_tensor(x) (the default dtype), then copied into the 0-d state tensor
        a.scalars["eta"] = float(keep(lr / ((1 + lambd * lr * step) ** alpha)))
        a.scalars["mu"] = float(keep(1 / max(1, step - t0)))
