"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019): one rule, two decays."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import backend
from ..tensor import Tensor
from .optimizer import (
    Optimizer,
    _add_alpha,
    _add_scaled,
    _Arrays,
    _check_betas,
    _check_range,
    _impl_options,
    _lerp,
)


class Adam(Optimizer):
    r"""Adam: per-coordinate steps scaled by running moments of the gradient.

    Matches `torch.optim.Adam`. For each parameter θ with gradient g at step t (learning rate
    γ, betas (β₁, β₂), weight decay λ):

        g  ← -g                                  if maximize
        g  ← g + λ θ                             (Adam: L2 penalty inside the gradient)
        θ  ← θ (1 - γ λ)                         (AdamW instead: decoupled weight decay)
        m  ← m + (1 - β₁)(g - m)                 state "exp_avg"
        v  ← β₂ v + (1 - β₂) g²                  state "exp_avg_sq"
        v̂  ← max(v̂, v)                           if amsgrad (state "max_exp_avg_sq"); else v̂ = v
        θ  ← θ - γ / (1 - β₁ᵗ) · m / (√v̂ / √(1 - β₂ᵗ) + ε)

    Args:
        params: Parameters or parameter groups (dicts).
        lr: learning rate γ.
        betas: decay rates (β₁, β₂) of the first and second moment, each in [0, 1).
        eps: ε added to the denominator for numerical stability.
        weight_decay: λ (an L2 penalty for Adam; decoupled for AdamW).
        amsgrad: use the running maximum of v (Reddi et al., 2018).
        maximize: ascend the objective instead of descending.
        foreach, fused, capturable: PyTorch's kernel choices; accepted and recorded, no effect
            (descent runs one rule over a flat buffer per group).
        differentiable: must be False (a differentiable step is not supported).
        decoupled_weight_decay: decay the parameter directly, as AdamW (PyTorch's flag).
    """

    #: PyTorch's order of the options in a group (`param_groups`, `state_dict()`)
    _group_keys = (
        "lr",
        "betas",
        "eps",
        "weight_decay",
        "amsgrad",
        "maximize",
        "foreach",
        "capturable",
        "differentiable",
        "fused",
        "decoupled_weight_decay",
    )

    _decoupled = False

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        betas = _tensor_hyperparameters(type(self).__name__, lr, betas, foreach, capturable)
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=bool(decoupled_weight_decay or self._decoupled),
            **_impl_options(type(self).__name__, foreach, fused, capturable, differentiable),
        )
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        for key in ("lr", "eps", "weight_decay"):
            _check_range(name, group, key)
        _check_betas(name, group)

    def _state_init(self, group: dict[str, Any]) -> dict[str, float]:
        names = {"exp_avg": 0.0, "exp_avg_sq": 0.0}
        if group["amsgrad"]:
            names["max_exp_avg_sq"] = 0.0
        return names

    def _update(self, group: dict[str, Any], a: _Arrays, step: int) -> None:
        xp, p, g, tmp = a.xp, a.param, a.grad, a.tmp  # g is a private copy: overwrite it freely
        m, v = a.state["exp_avg"], a.state["exp_avg_sq"]
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]  # numbers (tensor betas: converted by Optimizer.step)
        decoupled = group.get("decoupled_weight_decay", self._decoupled)
        # bfloat16 parameters: float32 arrays rounded where PyTorch's ops end (optimizer.py)
        rnd = a.round or _no_round
        k = None if group["amsgrad"] or a.round else backend.fused("adam_update", p, g, m, v)
        if k is not None:  # CuPy: the whole rule in one kernel over the flat buffers
            k(p, g, m, v, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=wd,
              decoupled=decoupled, maximize=group["maximize"], step=step)  # fmt: skip
            return
        if group["amsgrad"] and not a.round:
            v_hat = a.state["max_exp_avg_sq"]
            k = backend.fused("adam_amsgrad_update", p, g, m, v, v_hat)
            if k is not None:  # float32/float64 NumPy: the sequence below in one pass, bitwise
                k(p, g, m, v, v_hat, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                  weight_decay=wd, decoupled=decoupled, maximize=group["maximize"],
                  step=step)  # fmt: skip
                return
        if group["maximize"]:
            xp.negative(g, out=g)
        if wd != 0:
            if decoupled:
                p *= 1 - lr * wd
                rnd(p)
            else:
                _add_scaled(xp, g, _add_alpha(a, wd), p, tmp)  # grad.add(param, alpha=wd)
                rnd(g)
        _lerp(xp, m, g, 1 - beta1, tmp)
        rnd(m)
        v *= beta2
        rnd(v)
        xp.multiply(g, g, out=tmp)
        tmp *= 1 - beta2
        v += tmp
        rnd(v)
        # Bias corrections are Python floats: no float64 arrays for float32 parameters.
        step_size = lr / (1 - beta1**step)
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        if group["amsgrad"]:
            v_hat = a.state["max_exp_avg_sq"]
            xp.maximum(v_hat, v, out=v_hat)
        else:
            v_hat = v
        denom = xp.sqrt(v_hat, out=tmp)
        rnd(denom)
        denom /= bias_correction2_sqrt
        rnd(denom)
        denom += eps
        rnd(denom)
        xp.divide(m, denom, out=tmp)
        _add_scaled(xp, p, -step_size, tmp, tmp)
        rnd(p)


def _no_round(x) -> None:
    """The rounding step of a rule on float32/float64 parameters: nothing to do."""


class AdamW(Adam):
    r"""Adam with decoupled weight decay: θ ← θ (1 - γ λ) before the Adam step.

    Matches `torch.optim.AdamW`; the rule is `Adam`'s with the decay applied to the parameter
    instead of being added to the gradient, so it is not rescaled by √v̂. Default
    weight_decay=1e-2.
    """

    _decoupled = True

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
        )


def _tensor_hyperparameters(opt: str, lr, betas, foreach, capturable) -> tuple:
    """PyTorch's rules for a Tensor lr and Tensor betas (torch/optim/adam.py): 1-element each,
    both betas floats or both Tensors, none of them with foreach=True unless capturable.
    Returns the betas as a tuple (Tensors squeezed to 0-d, as PyTorch's `_to_scalar`)."""
    foreach_only = foreach and not capturable
    if isinstance(lr, Tensor):
        if foreach_only:
            raise ValueError(
                f"{opt}: lr as a Tensor is not supported for capturable=False and foreach=True"
            )
        if lr.numel() != 1:
            raise ValueError(f"{opt}: Tensor lr must be 1-element, got shape {tuple(lr.shape)}")
    betas = tuple(betas)
    if len(betas) != 2:
        raise ValueError(f"{opt}: betas must be a pair (beta1, beta2), got {betas!r}")
    kinds = [isinstance(b, Tensor) for b in betas]
    if kinds[0] != kinds[1] or not (kinds[0] or all(isinstance(b, float) for b in betas)):
        # PyTorch's rule, ints included: betas=(0, 0.999) is refused, write (0.0, 0.999)
        raise ValueError(f"{opt}: betas must be either both floats or both Tensors, got {betas!r}")
    if not kinds[0]:
        return betas
    for i, b in enumerate(betas):
        if foreach_only:
            raise ValueError(
                f"{opt}: betas[{i}] as a Tensor is not supported for capturable=False and "
                "foreach=True"
            )
        if b.numel() != 1:
            raise ValueError(f"{opt}: Tensor betas[{i}] must be 1-element, got {tuple(b.shape)}")
    return tuple(b.reshape(()) for b in betas)
