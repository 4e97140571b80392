"""NAdam: Adam with Nesterov momentum (Dozat, 2016, "Incorporating Nesterov Momentum into
Adam", ICLR workshop), with the momentum schedule of the paper as PyTorch implements it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import backend
from .optimizer import (
    Optimizer,
    _add_scaled,
    _Arrays,
    _check_betas,
    _check_range,
    _impl_options,
    _lerp,
)


class NAdam(Optimizer):
    r"""NAdam: Adam whose step looks ahead along the momentum (Nesterov's trick).

    Matches `torch.optim.NAdam`. For each parameter θ with gradient g at step t (learning
    rate γ, betas (β₁, β₂), momentum decay ψ, weight decay λ):

        g   ← -g                                 if maximize
        g   ← g + λ θ          (or θ ← θ (1 - γ λ) with decoupled_weight_decay)
        μₜ  = β₁ (1 - ½ · 0.96^(t ψ)),   μₜ₊₁ = β₁ (1 - ½ · 0.96^((t + 1) ψ))
        Π   ← Π · μₜ                             state "mu_product" (one number per parameter)
        m   ← m + (1 - β₁)(g - m)                state "exp_avg"
        v   ← β₂ v + (1 - β₂) g²                 state "exp_avg_sq"
        d   = √(v / (1 - β₂ᵗ)) + ε
        θ   ← θ - γ (1 - μₜ) / (1 - Π) · g / d - γ μₜ₊₁ / (1 - Π μₜ₊₁) · m / d

    "mu_product" is a 0-d Tensor of PyTorch's scalar dtype (float32; float64 when the default
    dtype is) and is rounded to it after each product, as PyTorch's.

    Args:
        params: Parameters or parameter groups (dicts).
        lr: learning rate γ.
        betas: (β₁, β₂), each in [0, 1).
        eps: ε added to the denominator.
        weight_decay: weight decay λ.
        momentum_decay: ψ, the speed of the momentum schedule.
        decoupled_weight_decay: decay the parameter directly (NAdamW) instead of adding λθ to g.
        foreach, capturable: PyTorch's kernel choices; accepted and recorded, no effect.
        maximize: ascend the objective instead of descending.
        differentiable: must be False (a differentiable step is not supported).
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
            **_impl_options("NAdam", foreach, None, capturable, differentiable, omit=("fused",)),
        )
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        for key in ("lr", "eps", "weight_decay", "momentum_decay"):
            _check_range("NAdam", group, key)
        _check_betas("NAdam", group)

    def _state_init(self, group: dict[str, Any]) -> dict[str, float]:
        return {"exp_avg": 0.0, "exp_avg_sq": 0.0}

    def _scalar_state_init(self, group: dict[str, Any]) -> dict[str, float]:
        return {"mu_product": 1.0}

    def _update(self, group: dict[str, Any], a: _Arrays, step: int) -> None:
        xp, p, g, tmp = a.xp, a.param, a.grad, a.tmp  # g is a private copy: overwrite it freely
        m, v = a.state["exp_avg"], a.state["exp_avg_sq"]
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        psi = group["momentum_decay"]
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * psi))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
        # PyTorch's `mu_product *= mu` on a 0-d tensor of its scalar dtype (float32, float64
        # when the default dtype is): the product is rounded to that precision each step
        real = a.scalar_type
        mu_product = float(real(a.scalars["mu_product"]) * real(mu))
        a.scalars["mu_product"] = mu_product
        c1 = -lr * (1.0 - mu) / (1.0 - mu_product)  # the step sizes of g / d and of m / d
        c2 = -lr * mu_next / (1.0 - mu_product * mu_next)
        k = backend.fused("nadam_update", p, g, m, v)
        if k is not None:  # NumPy float32/float64: this sequence in one numba pass, bitwise
            k(p, g, m, v, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=wd,
              decoupled=group["decoupled_weight_decay"], maximize=group["maximize"],
              step=step, c1=c1, c2=c2)  # fmt: skip
            return
        if group["maximize"]:
            xp.negative(g, out=g)
        if wd != 0:
            if group["decoupled_weight_decay"]:
                p *= 1 - lr * wd
            else:
                _add_scaled(xp, g, wd, p, tmp)
        _lerp(xp, m, g, 1 - beta1, tmp)
        v *= beta2
        xp.multiply(g, 1 - beta2, out=tmp)  # PyTorch's addcmul order: ((1 - β₂) g) g
        tmp *= g
        v += tmp
        denom = xp.divide(v, 1 - beta2**step, out=tmp)
        xp.sqrt(denom, out=denom)
        denom += eps
        # Two addcdiv steps, θ += c · (x / d), in PyTorch's order; g is scratch from here on.
        xp.divide(g, denom, out=g)
        _add_scaled(xp, p, c1, g, g)
        xp.divide(m, denom, out=g)
        _add_scaled(xp, p, c2, g, g)
