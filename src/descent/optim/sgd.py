"""Stochastic gradient descent with momentum (Polyak or Nesterov)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import backend
from .optimizer import (
    Optimizer,
    _add_alpha,
    _add_scaled,
    _Arrays,
    _check_range,
    _impl_options,
)


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with momentum; matches `torch.optim.SGD`.

    State, as PyTorch's: "momentum_buffer" once a parameter has been updated with momentum,
    nothing else (no "step"; no state at all without momentum).

    For each parameter θ with gradient g at step t (learning rate γ, momentum μ, dampening τ,
    weight decay λ):

        g  ← -g                          if maximize
        g  ← g + λ θ                     weight decay enters the gradient (L2 penalty)
        b₁ ← g,   b_t ← μ b_{t-1} + (1 - τ) g        if μ ≠ 0 (state "momentum_buffer")
        g  ← g + μ b_t  if nesterov,  else  g ← b_t  if μ ≠ 0
        θ  ← θ - γ g

    Args:
        params: Parameters or parameter groups (dicts).
        lr: learning rate γ.
        momentum: momentum factor μ (0 disables momentum and its state).
        dampening: dampening τ of the momentum.
        weight_decay: L2 penalty λ.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0).
        maximize: ascend the objective instead of descending.
        foreach, fused, capturable: PyTorch's kernel choices; accepted and recorded, no effect
            (descent runs one rule over a flat buffer per group).
        differentiable: must be False (a differentiable step is not supported).
    """

    #: PyTorch's order of the options in a group (`param_groups`, `state_dict()`)
    _group_keys = (
        "lr",
        "momentum",
        "dampening",
        "weight_decay",
        "nesterov",
        "maximize",
        "foreach",
        "differentiable",
        "fused",
    )

    _counts_steps = False  # PyTorch's SGD keeps no step count

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
            **_impl_options("SGD", foreach, fused, False, differentiable, omit=("capturable",)),
        )
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        for key in ("lr", "momentum", "dampening", "weight_decay"):
            _check_range("SGD", group, key)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "SGD: nesterov=True needs momentum > 0 and dampening = 0, got "
                f"momentum={group['momentum']!r}, dampening={group['dampening']!r}"
            )

    def _state_init(self, group: dict[str, Any]) -> dict[str, float]:
        return {"momentum_buffer": 0.0} if group["momentum"] != 0 else {}

    def _sparse_grad(self, group: dict[str, Any], g):
        # PyTorch's SGD takes sparse gradients (its momentum buffer is then a sparse tensor;
        # descent's stays dense, the same numbers), except where its rule adds a dense tensor
        if group.get("fused"):
            raise RuntimeError("`_fused_sgd` does not support sparse gradients")
        if group["weight_decay"] != 0:
            raise RuntimeError(
                "add(sparse, dense) is not supported. Use add(dense, sparse) instead."
            )
        return g.to_dense()

    def _update(self, group: dict[str, Any], a: _Arrays, step: int) -> None:
        xp, p, g, tmp = a.xp, a.param, a.grad, a.tmp  # g is a private copy: overwrite it freely
        mu = group["momentum"]
        # bfloat16 parameters: float32 arrays rounded where PyTorch's ops end (optimizer.py)
        rnd = a.round or _no_round
        buf = a.state["momentum_buffer"] if mu != 0 else None
        k = None if a.round else backend.fused("sgd_update", p, g, buf)
        if k is not None:  # NumPy float32/float64: this sequence in one numba pass, bitwise
            k(p, g, buf, lr=group["lr"], momentum=mu, dampening=group["dampening"],
              weight_decay=group["weight_decay"], nesterov=group["nesterov"],
              maximize=group["maximize"], first=step == 1)  # fmt: skip
            return
        if group["maximize"]:
            xp.negative(g, out=g)
        if group["weight_decay"] != 0:
            _add_scaled(xp, g, _add_alpha(a, group["weight_decay"]), p, tmp)
            rnd(g)
        if mu != 0:
            if step == 1:
                buf[...] = g  # PyTorch starts the buffer at the first gradient, not at zero
            else:
                # PyTorch's foreach kernel (_foreach_mul_) multiplies by the momentum rounded
                # to the parameters' dtype, its single-tensor mul_ by the float32 number; the
                # foreach rule uses mul_ too in a step where some buffer is new
                foreach = a.round and group["foreach"] and self._all_had_state
                buf *= a.round.alpha(mu) if foreach else mu
                rnd(buf)
                _add_scaled(xp, buf, _add_alpha(a, 1 - group["dampening"]), g, tmp)
                rnd(buf)
            if group["nesterov"]:
                _add_scaled(xp, g, _add_alpha(a, mu), buf, tmp)
                rnd(g)
            else:
                g = buf
        _add_scaled(xp, p, _add_alpha(a, -group["lr"]), g, tmp)
        rnd(p)


def _no_round(x) -> None:
    """The rounding step of a rule on float32/float64 parameters: nothing to do."""
