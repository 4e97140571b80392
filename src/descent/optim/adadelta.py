"""Adadelta (Zeiler, 2012, "ADADELTA: An Adaptive Learning Rate Method", arXiv:1212.5701)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import backend
from .optimizer import Optimizer, _add_scaled, _Arrays, _check_range, _impl_options


class Adadelta(Optimizer):
    r"""Adadelta: steps scaled by the ratio of running RMS of past updates and of gradients.

    Matches `torch.optim.Adadelta`. For each parameter θ with gradient g (learning rate γ,
    decay ρ, weight decay λ):

        g  ← -g                                  if maximize
        g  ← g + λ θ
        s  ← ρ s + (1 - ρ) g²                    state "square_avg"
        Δ  ← √(u + ε) / √(s + ε) · g
        u  ← ρ u + (1 - ρ) Δ²                    state "acc_delta"
        θ  ← θ - γ Δ

    The paper has no γ (it is PyTorch's addition; γ = 1 is the paper's rule).

    Args:
        params: Parameters or parameter groups (dicts).
        lr: learning rate γ that scales Δ.
        rho: decay ρ of both running averages, in [0, 1].
        eps: ε inside both square roots.
        weight_decay: L2 penalty λ.
        foreach, capturable: PyTorch's kernel choices; accepted and recorded, no effect.
        maximize: ascend the objective instead of descending.
        differentiable: must be False (a differentiable step is not supported).
    """

    #: PyTorch's order of the options in a group (`param_groups`, `state_dict()`)
    _group_keys = (
        "lr",
        "rho",
        "eps",
        "weight_decay",
        "maximize",
        "capturable",
        "foreach",
        "differentiable",
    )

    def __init__(
        self,
        params: Iterable,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            rho=rho,
            eps=eps,
            weight_decay=weight_decay,
            maximize=maximize,
            **_impl_options("Adadelta", foreach, None, capturable, differentiable, omit=("fused",)),
        )
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        for key in ("lr", "eps", "weight_decay"):
            _check_range("Adadelta", group, key)
        _check_range("Adadelta", group, "rho", 0.0, 1.0)

    def _state_init(self, group: dict[str, Any]) -> dict[str, float]:
        return {"square_avg": 0.0, "acc_delta": 0.0}

    def _update(self, group: dict[str, Any], a: _Arrays, step: int) -> None:
        xp, p, g, tmp = a.xp, a.param, a.grad, a.tmp  # g is a private copy: overwrite it freely
        square_avg, acc_delta = a.state["square_avg"], a.state["acc_delta"]
        rho, eps = group["rho"], group["eps"]
        k = backend.fused("adadelta_update", p, g, square_avg, acc_delta)
        if k is not None:  # NumPy float32/float64: this sequence in one numba pass, bitwise
            k(p, g, square_avg, acc_delta, lr=group["lr"], rho=rho, eps=eps,
              weight_decay=group["weight_decay"], maximize=group["maximize"])  # fmt: skip
            return
        if group["maximize"]:
            xp.negative(g, out=g)
        if group["weight_decay"] != 0:
            _add_scaled(xp, g, group["weight_decay"], p, tmp)
        # s ← ρ s + ((1 - ρ) g) g, in PyTorch's addcmul order (value · t1 · t2).
        square_avg *= rho
        xp.multiply(g, 1 - rho, out=tmp)
        tmp *= g
        square_avg += tmp
        std = xp.add(square_avg, eps, out=tmp)
        xp.sqrt(std, out=std)
        # Δ = (√(u + ε) / std) · g: one extra array, since std, Δ and g are all live here.
        delta = xp.add(acc_delta, eps)
        xp.sqrt(delta, out=delta)
        delta /= std
        delta *= g
        acc_delta *= rho
        xp.multiply(delta, 1 - rho, out=tmp)
        tmp *= delta
        acc_delta += tmp
        _add_scaled(xp, p, -group["lr"], delta, tmp)
