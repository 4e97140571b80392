"""Adagrad (Duchi, Hazan & Singer, 2011)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor
from .optimizer import (
    Optimizer,
    _add_scaled,
    _Arrays,
    _check_range,
    _impl_options,
    _scalar_dtype,
)


class Adagrad(Optimizer):
    r"""Adagrad: per-coordinate steps shrinking with the sum of all past squared gradients.

    Matches `torch.optim.Adagrad`. For each parameter θ with gradient g at step t (learning
    rate γ, learning-rate decay η, weight decay λ):

        g  ← -g                                  if maximize
        g  ← g + λ θ
        γₜ ← γ / (1 + (t - 1) η)
        s  ← s + g²                              state "sum", starting at initial_accumulator_value
        θ  ← θ - γₜ g / (√s + ε)

    Args:
        params: Parameters or parameter groups (dicts).
        lr: learning rate γ.
        lr_decay: learning-rate decay η.
        weight_decay: L2 penalty λ.
        initial_accumulator_value: starting value of the sum of squares.
        eps: ε added to the denominator.
        maximize: ascend the objective instead of descending.
        foreach, fused, capturable: PyTorch's kernel choices; accepted and recorded, no effect
            (descent runs one rule over a flat buffer per group).
        differentiable: must be False (a differentiable step is not supported).
    """

    #: PyTorch's order of the options in a group (`param_groups`, `state_dict()`)
    _group_keys = (
        "lr",
        "lr_decay",
        "eps",
        "weight_decay",
        "initial_accumulator_value",
        "foreach",
        "maximize",
        "differentiable",
        "fused",
    )

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
            **_impl_options("Adagrad", foreach, fused, False, differentiable, omit=("capturable",)),
        )
        super().__init__(params, defaults)
        # PyTorch's Adagrad creates its state at construction, not at the first step:
        # "step" 0 and "sum" full of initial_accumulator_value (re and im for complex ones).
        for group in self.param_groups:
            value = group["initial_accumulator_value"]
            for p in group["params"]:
                xp = backend.get_array_module(p._data)
                fill = complex(value, value) if p._data.dtype.kind == "c" else value
                self.state[p] = {
                    "step": Tensor._wrap(np.array(0.0, _scalar_dtype(group))),
                    "sum": Tensor._wrap(xp.full(p._data.shape, fill, p._data.dtype)),
                }

    def _check(self, group: dict[str, Any]) -> None:
        for key in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            _check_range("Adagrad", group, key)

    def _state_init(self, group: dict[str, Any]) -> dict[str, float]:
        return {"sum": group["initial_accumulator_value"]}

    def _sparse_grad(self, group: dict[str, Any], g: Tensor):
        # PyTorch's sparse rule updates the coalesced entries' rows only: the dense rule on the
        # dense form leaves the other rows as they are too (0 / (√s + ε) = 0)
        if group["weight_decay"] != 0:
            raise RuntimeError("weight_decay option is not compatible with sparse gradients")
        return g.to_dense()

    def _update(self, group: dict[str, Any], a: _Arrays, step: int) -> None:
        xp, p, g, tmp = a.xp, a.param, a.grad, a.tmp  # g is a private copy: overwrite it freely
        state_sum = a.state["sum"]
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        k = backend.fused("adagrad_update", p, g, state_sum)
        if k is not None:  # NumPy float32/float64: this sequence in one numba pass, bitwise
            k(p, g, state_sum, clr=clr, eps=group["eps"], weight_decay=group["weight_decay"],
              maximize=group["maximize"])  # fmt: skip
            return
        if group["maximize"]:
            xp.negative(g, out=g)
        if group["weight_decay"] != 0:
            _add_scaled(xp, g, group["weight_decay"], p, tmp)
        xp.multiply(g, g, out=tmp)
        state_sum += tmp
        denom = xp.sqrt(state_sum, out=tmp)
        denom += group["eps"]
        xp.divide(g, denom, out=tmp)
        _add_scaled(xp, p, -clr, tmp, tmp)
