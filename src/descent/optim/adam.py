"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019): one rule, two decays."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import backend, halves
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

    def _step_buffer(self, group, buf, state_init, scalar_init) -> None:
        if not _step_from_grads(self, group, buf):
            super()._step_buffer(group, buf, state_init, scalar_init)

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


_F32 = np.dtype(np.float32)
#: Buffers with fewer values take `_step_buffer`'s path (one kernel call over the flat copy of
#: the gradients: cheaper than a call per parameter for small ones)
FROM_GRADS_MIN = 1 << 16
#: Buffers with at least this many values run as two runs of parameters at once at two BLAS
#: threads (the second on descent.compile's split worker: descent/halves.py)
HALVES_MIN = 1 << 18


def _step_from_grads(opt, group, buf) -> bool:
    """The common float32 Adam/AdamW step of one flat buffer without copying the gradients into
    the flat gradient buffer first: `kernels.cpu.adam_update`'s loop (`_cpu_jit.adam32`) run on
    each parameter's slice of the flat parameter and state buffers with the gradient where it
    is. Elementwise, with the same float32 operations (no fast-math), so the same bits as the
    one call over the copied gradients; the flat gradient buffer (the rule's private copy,
    which nothing reads after the rule) is left as it was. At two BLAS threads a large buffer
    runs as two runs of parameters at once. The step counts and the parameters' versions
    advance as `Optimizer._step_buffer` advances them. False (nothing changed) for anything
    else: amsgrad, a missing, sparse, non-float32 or non-contiguous gradient, a first step,
    per-parameter step counts, a parameter listed twice, numba off; the caller then runs
    `_step_buffer`. baby-gpt's AdamW step (803k values): docs/compile.md, session 28."""
    a = buf.whole
    p_flat = a.param
    if (type(p_flat) is not np.ndarray or p_flat.dtype != _F32 or p_flat.size < FROM_GRADS_MIN
            or group["amsgrad"] or not opt._counts_steps or getattr(opt, "_repeats", None)
            or list(buf.scalars) != ["step"]):  # fmt: skip
        return False
    m, v = a.state.get("exp_avg"), a.state.get("exp_avg_sq")
    if m is None or v is None or len(a.state) != 2:
        return False
    fast = buf.fast
    if fast is None:  # the layout's constants: its views' shapes and layout, the halves' cut
        bounds = buf.bounds
        n = len(bounds)
        cut = min(n - 1, max(1, int(np.searchsorted([b[0] for b in bounds], p_flat.size / 2))))
        contiguous = all(view.flags.c_contiguous for view in buf.views)
        fast = buf.fast = ([view.shape for view in buf.views], contiguous, cut)
    shapes, contiguous, cut = fast
    if not contiguous:
        return False
    gs = []
    # (the step's `layout.is_current` has just checked that each parameter's state dict is
    # `opt.state[p]`: buf.state_dicts[i]; an empty or missing one is a first step)
    for p, shape, st in zip(buf.params, shapes, buf.state_dicts):
        g = p.grad
        if g is None or not st:
            return False
        d = g._data
        if (type(d) is not np.ndarray or d.dtype != _F32 or d.shape != shape
                or not d.flags.c_contiguous):  # fmt: skip
            return False
        gs.append(d.reshape(-1))
    steps = buf.scalars["step"].tolist()
    if steps.count(steps[0]) != len(steps):
        return False
    kernel = backend.fused("adam_update", p_flat, gs[0], m, v)
    if kernel is None:  # numba not installed or switched off
        return False
    from ..kernels import _cpu_jit  # noqa: PLC0415 - loaded by backend.fused's kernels
    from ..kernels.cpu import adam_args  # noqa: PLC0415

    step = int(steps[0]) + 1
    args = adam_args(lr=group["lr"], beta1=group["betas"][0], beta2=group["betas"][1],
                     eps=group["eps"], weight_decay=group["weight_decay"],
                     decoupled=group.get("decoupled_weight_decay", opt._decoupled),
                     maximize=group["maximize"], step=step)  # fmt: skip
    adam32, bounds = _cpu_jit.adam32, buf.bounds

    def run(j0, j1):
        for j in range(j0, j1):
            lo, hi = bounds[j]
            adam32(p_flat[lo:hi], gs[j], m[lo:hi], v[lo:hi], *args)

    n = len(gs)
    if n >= 2 and p_flat.size >= HALVES_MIN and halves.allowed(p_flat.size):
        halves.run(((0, cut), (cut, n)), run)
    else:
        run(0, n)
    a.scalars = {}
    buf.scalars["step"] += 1
    for p in buf.params:
        p._version += 1  # in-place change: backward through old graphs errs
    opt._all_had_state = True
    return True


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
