"""Cyclical schedules: the 1cycle policy (OneCycleLR), cosine annealing with warm restarts
(SGDR) and cyclical learning rates (CyclicLR); the first and last also cycle the momentum."""

from __future__ import annotations

import copy
import math
import types
from collections.abc import Callable
from typing import Any

from ..optimizer import Optimizer
from ._base import LRScheduler, _per_group, set_lr

__all__ = ["OneCycleLR", "CosineAnnealingWarmRestarts", "CyclicLR"]


_PHASE_KEYS = ("end_step", "start_lr", "end_lr", "start_momentum", "end_momentum")


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2018), as PyTorch's OneCycleLR.

    The lr rises from max_lr / div_factor to max_lr over the first pct_start of total_steps,
    then anneals to initial_lr / final_div_factor (cosine or linear); with three_phase=True it
    first comes back down to the initial lr, symmetric to the rise. With cycle_momentum the
    momentum (or Adam's beta1) moves opposite to the lr, between base_momentum and
    max_momentum. The per-group values "initial_lr", "max_lr", "min_lr" (and "max_momentum",
    "base_momentum") are stored in the optimizer's groups, as PyTorch does.

    Args:
        optimizer: the optimizer.
        max_lr: peak lr, one value or one per group.
        total_steps: number of steps in the cycle (or give epochs and steps_per_epoch).
        epochs, steps_per_epoch: total_steps = epochs · steps_per_epoch.
        pct_start: fraction of the cycle spent increasing the lr.
        anneal_strategy: "cos" or "linear".
        cycle_momentum: also schedule momentum / beta1.
        base_momentum, max_momentum: the momentum range.
        div_factor: initial_lr = max_lr / div_factor.
        final_div_factor: min_lr = initial_lr / final_div_factor.
        three_phase: add the symmetric descent back to initial_lr before the final anneal.
        last_epoch: see `LRScheduler`.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not a descent Optimizer")
        if total_steps is not None:
            if not isinstance(total_steps, int) or total_steps <= 0:
                raise ValueError(
                    f"OneCycleLR: expected a positive integer total_steps, got {total_steps!r}"
                )
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            if not isinstance(epochs, int) or epochs <= 0:
                raise ValueError(f"OneCycleLR: expected a positive integer epochs, got {epochs!r}")
            if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
                raise ValueError(
                    "OneCycleLR: expected a positive integer steps_per_epoch, got "
                    f"{steps_per_epoch!r}"
                )
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must be a float in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}"
            )
        # Phases: (end step, group key of the start lr, of the end lr, momentum start, end),
        # saved as PyTorch's _schedule_phases (one dict per phase; set before
        # _anneal_func_type, PyTorch's attribute, in PyTorch's state_dict key order).
        n = self.total_steps
        if three_phase:
            phases = [
                (float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (
                    float(2 * pct_start * n) - 2,
                    "max_lr",
                    "initial_lr",
                    "base_momentum",
                    "max_momentum",
                ),
                (n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            phases = [
                (float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        self._schedule_phases = [dict(zip(_PHASE_KEYS, phase, strict=True)) for phase in phases]
        self._anneal_func_type = anneal_strategy
        max_lrs = _per_group("max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for m, group in zip(max_lrs, optimizer.param_groups, strict=True):
                group["initial_lr"] = m / div_factor
                group["max_lr"] = m
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:  # use_beta1 only then, as PyTorch's (a state_dict key)
            self.use_beta1 = "betas" in optimizer.defaults
            if "momentum" not in optimizer.defaults and not self.use_beta1:
                raise ValueError(
                    f"OneCycleLR: cycle_momentum=True needs an optimizer with momentum or betas; "
                    f"{type(optimizer).__name__} has neither (pass cycle_momentum=False)"
                )
            max_ms = _per_group("max_momentum", optimizer, max_momentum)
            base_ms = _per_group("base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for mx, bs, group in zip(max_ms, base_ms, optimizer.param_groups, strict=True):
                    group["max_momentum"] = mx
                    group["base_momentum"] = bs
        super().__init__(optimizer, last_epoch)

    @property
    def anneal_strategy(self) -> str:
        return self._anneal_func_type

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _at(self, epoch: int, group: dict[str, Any]) -> tuple[float, float | None]:
        """(lr, momentum or None) of one group at step `epoch`."""
        if epoch > self.total_steps:
            raise ValueError(
                f"OneCycleLR: tried to step {epoch} times; the schedule has total_steps="
                f"{self.total_steps}"
            )
        start_step = 0.0
        phases = self._schedule_phases
        for i, phase in enumerate(phases):
            end_step, lr0, lr1, m0, m1 = (phase[k] for k in _PHASE_KEYS)
            if epoch <= end_step or i == len(phases) - 1:
                pct = (epoch - start_step) / (end_step - start_step)
                lr = self._anneal(group[lr0], group[lr1], pct)
                mom = self._anneal(group[m0], group[m1], pct) if self.cycle_momentum else None
                return lr, mom
            start_step = end_step
        raise AssertionError("unreachable: the last phase always matches")

    def lr_at(self, epoch: int) -> list[float]:
        return [self._at(epoch, group)[0] for group in self.optimizer.param_groups]

    def _apply(self, epoch: int, closed_form: bool = False) -> None:
        super()._apply(epoch, closed_form)
        if self.cycle_momentum:
            for group in self.optimizer.param_groups:
                mom = self._at(epoch, group)[1]
                if self.use_beta1:
                    group["betas"] = (mom, *group["betas"][1:])
                else:
                    group["momentum"] = mom


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov & Hutter, 2017, "SGDR: Stochastic Gradient Descent with Warm
    Restarts"): cosine annealing from base_lr to eta_min over T_i steps, then a restart, with
    T_i = T_0 · T_mult^i for the i-th cycle:

        lr = eta_min + (base_lr - eta_min) · (1 + cos(π · T_cur / T_i)) / 2

    where T_cur counts the steps since the last restart. `step(epoch)` also takes a
    fractional epoch (e.g. epoch + batch / batches_per_epoch), as PyTorch's does.

    Args:
        optimizer: the optimizer.
        T_0: the length of the first cycle (a positive integer).
        T_mult: each cycle is T_mult times longer than the previous (an integer >= 1).
        eta_min: the lowest lr.
        last_epoch: see `LRScheduler`.

    Attributes:
        T_cur, T_i: the position in the current cycle and its length (PyTorch's names).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        T_0: int,  # PyTorch's names
        T_mult: int = 1,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(
                f"CosineAnnealingWarmRestarts: T_0 must be a positive integer, got {T_0!r}"
            )
        if not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(
                f"CosineAnnealingWarmRestarts: T_mult must be an integer >= 1, got {T_mult!r}"
            )
        self.T_0 = T_0
        self.T_i = T_0  # PyTorch's order (state_dict's keys)
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def _cycle(self, epoch: float) -> tuple[float, int]:
        """(T_cur, T_i) at `epoch`: subtract whole cycles (exact for integer epochs, where
        PyTorch's closed form through a logarithm can land on the wrong side of a restart)."""
        if epoch < 0:
            raise ValueError(f"CosineAnnealingWarmRestarts: epoch must be >= 0, got {epoch!r}")
        if self.T_mult == 1:
            return epoch % self.T_0, self.T_0
        t_cur, t_i = epoch, self.T_0
        while t_cur >= t_i:
            t_cur -= t_i
            t_i *= self.T_mult
        return t_cur, t_i

    def lr_at(self, epoch: float) -> list[float]:
        t_cur, t_i = self._cycle(epoch)
        cos = 1 + math.cos(math.pi * t_cur / t_i)
        return [self.eta_min + (b - self.eta_min) * cos / 2 for b in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        """Advance one step, or jump to a (possibly fractional) epoch. As PyTorch's, it does not
        count steps (_step_count stays 0)."""
        exact = self.last_epoch + 1 if epoch is None else epoch
        self.T_cur, self.T_i = self._cycle(exact)
        self.last_epoch = math.floor(exact)
        lrs = self.lr_at(exact)
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            set_lr(group, lr)
        self._last_lr = list(lrs)


class CyclicLR(LRScheduler):
    """The cyclical learning rate policy (Smith, 2017, "Cyclical Learning Rates for Training
    Neural Networks", arXiv:1506.01186), as PyTorch's CyclicLR; step it after every batch.

    Within each cycle of step_size_up + step_size_down steps the lr rises linearly from
    base_lr to max_lr and falls back; the amplitude is scaled by scale_fn of the cycle number
    (scale_mode "cycle") or of the step (scale_mode "iterations"):

        triangular:  scale 1;   triangular2: 1 / 2^(cycle - 1);   exp_range: gamma^step

    With cycle_momentum the momentum (or Adam's beta1) moves inversely, between
    max_momentum (at base_lr) and base_momentum (at max_lr). Constructing it sets each
    group's lr to base_lr, as PyTorch does.

    Args:
        optimizer: the optimizer.
        base_lr, max_lr: the bounds of the cycle, one value or one per group.
        step_size_up: steps in the rising half of a cycle.
        step_size_down: steps in the falling half (default step_size_up).
        mode: "triangular", "triangular2" or "exp_range" (ignored when scale_fn is given).
        gamma: the base of exp_range's scaling.
        scale_fn: a custom scaling function of one argument (not saved in `state_dict()`).
        scale_mode: "cycle" or "iterations": what scale_fn receives (custom scale_fn only).
        cycle_momentum: also cycle momentum / beta1.
        base_momentum, max_momentum: the momentum bounds, one value or one per group.
        last_epoch: see `LRScheduler` (the number of batches seen).
    """


    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | list[float],
        max_lr: float | list[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.8,
        max_momentum: float | list[float] = 0.9,
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not a descent Optimizer")
        base_lrs = _per_group("base_lr", optimizer, base_lr)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups, strict=True):
                set_lr(group, lr)
        self.max_lrs = _per_group("max_lr", optimizer, max_lr)
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        if up <= 0 or down <= 0:
            raise ValueError(
                f"CyclicLR: step sizes must be positive, got up={step_size_up!r}, "
                f"down={step_size_down!r}"
            )
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        if scale_fn is None and mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(
                f"CyclicLR: mode must be 'triangular', 'triangular2' or 'exp_range' (or give "
                f"scale_fn), got {mode!r}"
            )
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(
                f"CyclicLR: scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}"
            )
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        # The built-in modes fix what their scale function receives (PyTorch's rule).
        if scale_fn is None:
            scale_mode = "iterations" if mode == "exp_range" else "cycle"
        self.scale_mode = scale_mode
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(
                    f"CyclicLR: cycle_momentum=True needs an optimizer with momentum or betas; "
                    f"{type(optimizer).__name__} has neither (pass cycle_momentum=False)"
                )
            self.use_beta1 = "betas" in optimizer.defaults
            self.base_momentums = _per_group("base_momentum", optimizer, base_momentum)
            self.max_momentums = _per_group("max_momentum", optimizer, max_momentum)
            if last_epoch == -1:
                for mx, bs, group in zip(
                    self.max_momentums, self.base_momentums, optimizer.param_groups, strict=True
                ):
                    self._set_momentum(group, mx)
                    group["max_momentum"] = mx
                    group["base_momentum"] = bs
        self._base_lrs = base_lrs  # the construction step's bases (base_lrs is initial_lr then)
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs
        del self._base_lrs

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's: a custom scale_fn is saved as None when a plain function, as its
        attributes (`__dict__`) when a callable object."""
        fn = self._scale_fn_custom
        self._scale_fn_custom = None
        try:
            state = super().state_dict()
        finally:
            self._scale_fn_custom = fn
        del state["_scale_fn_custom"]  # the last key, as PyTorch's
        state["_scale_fn_custom"] = None
        if fn is not None and not isinstance(fn, types.FunctionType):
            state["_scale_fn_custom"] = copy.deepcopy(fn.__dict__)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        attrs = state.pop("_scale_fn_custom", None)
        super().load_state_dict(state)
        if attrs is not None and self._scale_fn_custom is not None:
            self._scale_fn_custom.__dict__.update(attrs)

    def scale_fn(self, x: float) -> float:
        """The amplitude's scale at x (a cycle number or a step; see scale_mode)."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x

    def _position(self, epoch: int) -> tuple[float, float]:
        """(amplitude fraction in [0, 1], scale) at step `epoch`."""
        cycle = math.floor(1 + epoch / self.total_size)
        x = 1.0 + epoch / self.total_size - cycle  # position within the cycle, in [0, 1)
        if x <= self.step_ratio:
            fraction = x / self.step_ratio
        else:
            fraction = (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else epoch)
        return fraction, scale

    def lr_at(self, epoch: int) -> list[float]:
        fraction, scale = self._position(epoch)
        # base_lrs is set after LRScheduler.__init__ (which would record initial_lr there).
        bases = self.__dict__.get("_base_lrs", self.base_lrs)
        return [b + (m - b) * fraction * scale for b, m in zip(bases, self.max_lrs, strict=True)]

    def _set_momentum(self, group: dict[str, Any], momentum: float) -> None:
        if self.use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum

    def _apply(self, epoch: int, closed_form: bool = False) -> None:
        super()._apply(epoch, closed_form)
        if self.cycle_momentum:
            fraction, scale = self._position(epoch)
            for group, bs, mx in zip(
                self.optimizer.param_groups, self.base_momentums, self.max_momentums, strict=True
            ):
                self._set_momentum(group, mx - (mx - bs) * fraction * scale)
