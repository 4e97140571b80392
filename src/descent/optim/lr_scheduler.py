"""Learning-rate schedules with PyTorch's interface; every schedule is a pure function of the step.

A scheduler sets `group["lr"]` for each parameter group of its optimizer. Unlike PyTorch, whose
schedulers mostly multiply the CURRENT lr by a factor each step (so rounding errors and any
hand-made change of `group["lr"]` carry forward), each scheduler here computes the lr from the
step count in closed form (`lr_at(step)`), so resuming from a checkpoint only needs `last_epoch`.
The values agree with PyTorch's to rounding (tests compare 50+ steps at rtol 1e-12).

Usage (call `scheduler.step()` after `optimizer.step()`, as in PyTorch):

    opt = descent.optim.AdamW(model.parameters(), lr=1e-3)
    sched = descent.optim.lr_scheduler.WarmupCosineLR(opt, warmup_iters=100,
                                                      lr_decay_iters=2000, min_lr=1e-4)
    for it in range(max_iters):
        ...; opt.step(); sched.step()
"""

from __future__ import annotations

import copy
import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .optimizer import Optimizer

__all__ = [
    "LRScheduler",
    "LambdaLR",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "LinearLR",
    "OneCycleLR",
    "SequentialLR",
    "WarmupCosineLR",
    "warmup_cosine_lr",
]


def warmup_cosine_lr(
    it: int, warmup_iters: int, lr_decay_iters: int, max_lr: float, min_lr: float
) -> float:
    """nanoGPT's learning rate at iteration `it`: linear warmup, cosine decay, then a floor.

        it < warmup_iters:                 max_lr · (it + 1) / (warmup_iters + 1)
        it > lr_decay_iters:               min_lr
        otherwise, with r = (it - warmup_iters) / (lr_decay_iters - warmup_iters):
                                           min_lr + ½ (1 + cos(π r)) (max_lr - min_lr)

    Args:
        it: the iteration (0-based).
        warmup_iters: iterations of linear warmup.
        lr_decay_iters: the iteration at which the cosine reaches min_lr.
        max_lr: the peak learning rate (reached at it = warmup_iters).
        min_lr: the final learning rate.

    Returns:
        The learning rate, a float.
    """
    if it < warmup_iters:
        return max_lr * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters or lr_decay_iters == warmup_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)  # in [0, 1]
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (max_lr - min_lr)


def _per_group(name: str, optimizer: Optimizer, value) -> list:
    """One value per parameter group: a scalar repeated, or a list/tuple of the right length."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(
                f"expected {len(optimizer.param_groups)} values for {name} (one per parameter "
                f"group), got {len(value)}"
            )
        return list(value)
    return [value] * len(optimizer.param_groups)


class LRScheduler:
    """Base class: sets each group's lr to `lr_at(last_epoch)` on every `step()`.

    Args:
        optimizer: the optimizer whose `param_groups` it drives.
        last_epoch: the index of the last step taken; -1 starts a fresh schedule (and records
            each group's current lr as "initial_lr"); a value >= 0 resumes, which needs
            "initial_lr" in every group (it is saved in the optimizer's state_dict).

    Attributes:
        base_lrs: each group's "initial_lr", the lr the schedule scales.
        last_epoch: the step count the current lrs belong to (0 after construction).
    """

    _not_saved: tuple[str, ...] = ("optimizer",)

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not a descent Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param_groups[{i}] has no 'initial_lr': resuming a schedule with "
                        f"last_epoch={last_epoch} needs the optimizer's state_dict loaded first"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self.step()

    def lr_at(self, epoch: int) -> list[float]:
        """The learning rate of every group at step `epoch` (a pure function of `epoch`)."""
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        """The learning rates at `last_epoch`."""
        return self.lr_at(self.last_epoch)

    def get_last_lr(self) -> list[float]:
        """The learning rates the last `step()` set."""
        return self._last_lr

    def step(self, epoch: int | None = None) -> None:
        """Advance one step (or jump to `epoch`) and set every group's lr."""
        self._step_count += 1
        self.last_epoch = self.last_epoch + 1 if epoch is None else int(epoch)
        self._apply(self.last_epoch)

    def _apply(self, epoch: int) -> None:
        """Write the schedule's values at `epoch` into the optimizer's groups."""
        lrs = self.lr_at(epoch)
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's attributes except the optimizer (and functions): plain values."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k not in self._not_saved}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore attributes saved by `state_dict()` (group lrs follow at the next step)."""
        self.__dict__.update(copy.deepcopy(dict(state_dict)))


class LambdaLR(LRScheduler):
    """lr = base_lr · lr_lambda(epoch).

    Args:
        optimizer: the optimizer.
        lr_lambda: a function of the step, or a list with one per parameter group. Functions are
            not part of `state_dict()`.
        last_epoch: see `LRScheduler`.
    """

    _not_saved = ("optimizer", "lr_lambdas")

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        self.lr_lambdas = _per_group("lr_lambda", optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        return [b * f(epoch) for f, b in zip(self.lr_lambdas, self.base_lrs, strict=True)]


class StepLR(LRScheduler):
    """lr = base_lr · gamma^⌊epoch / step_size⌋ (decay by gamma every step_size steps)."""

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        if int(step_size) <= 0:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size = int(step_size)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        return [b * self.gamma ** (epoch // self.step_size) for b in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr = base_lr · gamma^(number of milestones <= epoch) (a repeated milestone counts twice)."""

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        return [b * self.gamma ** bisect_right(self.milestones, epoch) for b in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr = base_lr · gamma^epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        return [b * self.gamma**epoch for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) · (1 + cos(π · epoch / T_max)) / 2.

    SGDR without restarts (Loshchilov & Hutter, 2017): from base_lr down to eta_min over T_max
    steps; past T_max the cosine continues (rises again), as PyTorch's does.
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:  # noqa: N803 - PyTorch's name
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        cos = 1 + math.cos(math.pi * epoch / self.T_max)
        return [self.eta_min + (b - self.eta_min) * cos / 2 for b in self.base_lrs]


class LinearLR(LRScheduler):
    """lr = base_lr · (start_factor + (end_factor - start_factor) · min(epoch, total_iters) /
    total_iters): a linear ramp of the factor, then constant (a common warmup)."""

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor!r}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor!r}")
        if total_iters <= 0:
            raise ValueError(f"LinearLR: total_iters must be positive, got {total_iters!r}")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        frac = min(self.total_iters, epoch) / self.total_iters
        factor = self.start_factor + (self.end_factor - self.start_factor) * frac
        return [b * factor for b in self.base_lrs]


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
        self.anneal_strategy = anneal_strategy
        # Phases: (end step, group key of the start lr, of the end lr, momentum start, end).
        n = self.total_steps
        if three_phase:
            self._phases = [
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
            self._phases = [
                (float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        max_lrs = _per_group("max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for m, group in zip(max_lrs, optimizer.param_groups, strict=True):
                group["initial_lr"] = m / div_factor
                group["max_lr"] = m
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        self.use_beta1 = "betas" in optimizer.defaults
        if cycle_momentum:
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

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
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
        for i, (end_step, lr0, lr1, m0, m1) in enumerate(self._phases):
            if epoch <= end_step or i == len(self._phases) - 1:
                pct = (epoch - start_step) / (end_step - start_step)
                lr = self._anneal(group[lr0], group[lr1], pct)
                mom = self._anneal(group[m0], group[m1], pct) if self.cycle_momentum else None
                return lr, mom
            start_step = end_step
        raise AssertionError("unreachable: the last phase always matches")

    def lr_at(self, epoch: int) -> list[float]:
        return [self._at(epoch, group)[0] for group in self.optimizer.param_groups]

    def _apply(self, epoch: int) -> None:
        super()._apply(epoch)
        if self.cycle_momentum:
            for group in self.optimizer.param_groups:
                mom = self._at(epoch, group)[1]
                if self.use_beta1:
                    group["betas"] = (mom, *group["betas"][1:])
                else:
                    group["momentum"] = mom


class SequentialLR(LRScheduler):
    """Run `schedulers[i]` from `milestones[i-1]` on, each restarted at its own step 0.

    Args:
        optimizer: the optimizer all the schedulers drive.
        schedulers: the schedules, in order (each made on `optimizer`).
        milestones: the steps at which the next schedule takes over (len(schedulers) - 1).
        last_epoch: see `LRScheduler`.
    """

    _not_saved = ("optimizer", "_schedulers")

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: Sequence[LRScheduler],
        milestones: Sequence[int],
        last_epoch: int = -1,
    ) -> None:
        if len(schedulers) < 1:
            raise ValueError("SequentialLR expects at least one scheduler")
        for i, s in enumerate(schedulers):
            if getattr(s, "optimizer", None) is not optimizer:
                raise ValueError(
                    f"SequentialLR: scheduler {i} ({type(s).__name__}) belongs to a different "
                    "optimizer; make every scheduler on the same one"
                )
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"SequentialLR: expected {len(schedulers) - 1} milestones for "
                f"{len(schedulers)} schedulers, got {len(milestones)}"
            )
        self._schedulers = list(schedulers)
        self._milestones = [int(m) for m in milestones]
        super().__init__(optimizer, last_epoch)

    def _locate(self, epoch: int) -> tuple[LRScheduler, int]:
        """The scheduler in charge at `epoch` and its own step count there."""
        idx = bisect_right(self._milestones, epoch)
        start = self._milestones[idx - 1] if idx > 0 else 0
        return self._schedulers[idx], epoch - start

    def lr_at(self, epoch: int) -> list[float]:
        sched, local = self._locate(epoch)
        return sched.lr_at(local)

    def _apply(self, epoch: int) -> None:
        sched, local = self._locate(epoch)
        sched.last_epoch = local
        sched._apply(local)  # also a child's side effects (OneCycleLR's momentum)
        self._last_lr = list(sched.get_last_lr())

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        sd["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        sd = dict(state_dict)
        children = sd.pop("_schedulers", None)
        super().load_state_dict(sd)
        if children is not None:
            for s, child in zip(self._schedulers, children, strict=True):
                s.load_state_dict(child)


class WarmupCosineLR(LRScheduler):
    """nanoGPT's schedule: linear warmup, cosine decay to min_lr, then min_lr.

    lr = `warmup_cosine_lr(epoch, warmup_iters, lr_decay_iters, base_lr, min_lr)` for each
    group, where base_lr is the group's initial lr (the peak).

    Args:
        optimizer: the optimizer.
        warmup_iters: iterations of linear warmup.
        lr_decay_iters: the iteration at which the lr reaches min_lr.
        min_lr: the final lr, one value or one per group.
        last_epoch: see `LRScheduler`.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_iters: int,
        lr_decay_iters: int,
        min_lr: float | list[float] = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if warmup_iters < 0:
            raise ValueError(f"WarmupCosineLR: warmup_iters must be >= 0, got {warmup_iters!r}")
        if lr_decay_iters < warmup_iters:
            raise ValueError(
                f"WarmupCosineLR: lr_decay_iters ({lr_decay_iters}) must be >= warmup_iters "
                f"({warmup_iters})"
            )
        self.warmup_iters = int(warmup_iters)
        self.lr_decay_iters = int(lr_decay_iters)
        self.min_lrs = _per_group("min_lr", optimizer, min_lr)
        for m in self.min_lrs:
            if m < 0:
                raise ValueError(f"WarmupCosineLR: min_lr must be >= 0, got {m!r}")
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        return [
            warmup_cosine_lr(epoch, self.warmup_iters, self.lr_decay_iters, b, m)
            for b, m in zip(self.base_lrs, self.min_lrs, strict=True)
        ]
