"""RMSprop (Hinton, Lecture 6e of "Neural Networks for Machine Learning", 2012)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import backend
from .optimizer import Optimizer, _add_scaled, _Arrays, _check_range, _impl_options, _lerp


class RMSprop(Optimizer):
    r"""RMSprop: divide each step by a running root mean square of the gradient.

    Matches `torch.optim.RMSprop`. For each parameter θ with gradient g (learning rate γ,
    smoothing α, momentum μ, weight decay λ):

        g  ← -g                                  if maximize
        g  ← g + λ θ
        s  ← α s + (1 - α) g²                    state "square_avg"
        ḡ  ← ḡ + (1 - α)(g - ḡ)                  if centered (state "grad_avg")
        d  ← √(s - ḡ²) + ε   if centered,  else  √s + ε
        b  ← μ b + g / d,  θ ← θ - γ b           if μ > 0 (state "momentum_buffer")
        θ  ← θ - γ g / d                         otherwise

    Args:
        params: Parameters or parameter groups (dicts).
        lr: learning rate γ.
        alpha: smoothing constant α of the running mean square.
        eps: ε added to the denominator.
        weight_decay: L2 penalty λ.
        momentum: momentum factor μ.
        centered: normalize by an estimate of the gradient's variance instead of its raw second
            moment.
        maximize: ascend the objective instead of descending.
        foreach, fused, capturable: PyTorch's kernel choices; accepted and recorded, no effect
            (descent runs one rule over a flat buffer per group).
        differentiable: must be False (a differentiable step is not supported).
    """

    #: PyTorch's order of the options in a group (`param_groups`, `state_dict()`)
    _group_keys = (
        "lr",
        "momentum",
        "alpha",
        "eps",
        "centered",
        "weight_decay",
        "capturable",
        "foreach",
        "maximize",
        "differentiable",
    )

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
            **_impl_options("RMSprop", foreach, None, capturable, differentiable, omit=("fused",)),
        )
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        for key in ("lr", "eps", "weight_decay", "momentum"):
            _check_range("RMSprop", group, key)
        _check_range("RMSprop", group, "alpha", 0.0, 1.0)

    def _state_init(self, group: dict[str, Any]) -> dict[str, float]:
        names = {"square_avg": 0.0}
        if group["momentum"] > 0:
            names["momentum_buffer"] = 0.0
        if group["centered"]:
            names["grad_avg"] = 0.0
        return names

    def _update(self, group: dict[str, Any], a: _Arrays, step: int) -> None:
        xp, p, g, tmp = a.xp, a.param, a.grad, a.tmp  # g is a private copy: overwrite it freely
        alpha, lr = group["alpha"], group["lr"]
        square_avg = a.state["square_avg"]
        grad_avg = a.state["grad_avg"] if group["centered"] else None
        buf = a.state["momentum_buffer"] if group["momentum"] > 0 else None
        k = backend.fused("rmsprop_update", p, g, square_avg, grad_avg, buf)
        if k is not None:  # NumPy float32/float64: this sequence in one numba pass, bitwise
            k(p, g, square_avg, grad_avg, buf, lr=lr, alpha=alpha, eps=group["eps"],
              weight_decay=group["weight_decay"], momentum=group["momentum"],
              centered=group["centered"], maximize=group["maximize"])  # fmt: skip
            return
        if group["maximize"]:
            xp.negative(g, out=g)
        if group["weight_decay"] != 0:
            _add_scaled(xp, g, group["weight_decay"], p, tmp)
        square_avg *= alpha
        xp.multiply(g, g, out=tmp)
        tmp *= 1 - alpha
        square_avg += tmp
        if group["centered"]:
            grad_avg = a.state["grad_avg"]
            _lerp(xp, grad_avg, g, 1 - alpha, tmp)
            xp.multiply(grad_avg, grad_avg, out=tmp)
            xp.subtract(square_avg, tmp, out=tmp)
            denom = xp.sqrt(tmp, out=tmp)
        else:
            denom = xp.sqrt(square_avg, out=tmp)
        denom += group["eps"]
        xp.divide(g, denom, out=tmp)  # tmp = g / d
        if group["momentum"] > 0:
            buf = a.state["momentum_buffer"]
            buf *= group["momentum"]
            buf += tmp
            _add_scaled(xp, p, -lr, buf, tmp)
        else:
            _add_scaled(xp, p, -lr, tmp, tmp)
