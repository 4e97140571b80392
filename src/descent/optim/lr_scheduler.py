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
    "ConstantLR",
    "PolynomialLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ReduceLROnPlateau",
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


class ConstantLR(LRScheduler):
    """lr = base_lr · factor for the first total_iters steps, then base_lr.

    Args:
        optimizer: the optimizer.
        factor: the multiplier in [0, 1] applied until total_iters.
        total_iters: the number of steps at the reduced lr.
        last_epoch: see `LRScheduler`.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 1.0 / 3,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if not 0 <= factor <= 1:
            raise ValueError(f"ConstantLR: factor must be in [0, 1], got {factor!r}")
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        factor = self.factor if epoch < self.total_iters else 1.0
        return [b * factor for b in self.base_lrs]


class PolynomialLR(LRScheduler):
    """lr = base_lr · (1 - min(epoch, total_iters) / total_iters)^power: down to 0 at
    total_iters (power = 1 is a linear decay), then 0.

    Args:
        optimizer: the optimizer.
        total_iters: the step at which the lr reaches 0.
        power: the exponent of the decay.
        last_epoch: see `LRScheduler`.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        total_iters: int = 5,
        power: float = 1.0,
        last_epoch: int = -1,
    ) -> None:
        if total_iters <= 0:
            raise ValueError(f"PolynomialLR: total_iters must be positive, got {total_iters!r}")
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        factor = (1.0 - min(self.total_iters, epoch) / self.total_iters) ** self.power
        return [b * factor for b in self.base_lrs]


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
        T_0: int,  # noqa: N803 - PyTorch's names
        T_mult: int = 1,  # noqa: N803
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
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_i = T_0
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
        """Advance one step, or jump to a (possibly fractional) epoch."""
        self._step_count += 1
        exact = self.last_epoch + 1 if epoch is None else epoch
        self.T_cur, self.T_i = self._cycle(exact)
        self.last_epoch = math.floor(exact)
        lrs = self.lr_at(exact)
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
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

    _not_saved = ("optimizer", "_scale_fn_custom")

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
                group["lr"] = lr
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
        self._base_lrs = base_lrs
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

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
        bases = getattr(self, "base_lrs", None) or self._base_lrs
        return [b + (m - b) * fraction * scale for b, m in zip(bases, self.max_lrs, strict=True)]

    def _set_momentum(self, group: dict[str, Any], momentum: float) -> None:
        if self.use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum

    def _apply(self, epoch: int) -> None:
        super()._apply(epoch)
        if self.cycle_momentum:
            fraction, scale = self._position(epoch)
            for group, bs, mx in zip(
                self.optimizer.param_groups, self.base_momentums, self.max_momentums, strict=True
            ):
                self._set_momentum(group, mx - (mx - bs) * fraction * scale)


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by `factor` once a metric has stopped improving for `patience` steps.

    Not a function of the step: `step(metric)` takes the monitored value (a validation loss,
    say). A value improves on the best so far when, with mode "min", it is below
    best · (1 - threshold) (threshold_mode "rel") or best - threshold ("abs"); with mode
    "max", above best · (1 + threshold) or best + threshold. After more than `patience`
    steps without improvement each group's lr becomes max(lr · factor, min_lr) (changes
    smaller than eps are skipped), then `cooldown` steps pass before counting again.

    Args:
        optimizer: the optimizer.
        mode: "min" (a loss) or "max" (an accuracy).
        factor: the multiplier, < 1.
        patience: steps without improvement tolerated before reducing.
        threshold: the margin that counts as an improvement.
        threshold_mode: "rel" or "abs".
        cooldown: steps to wait after a reduction before counting bad steps again.
        min_lr: the lowest lr, one value or one per group.
        eps: the smallest change of lr that is applied.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0,
        eps: float = 1e-8,
    ) -> None:
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1.0, got {factor!r}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not a descent Optimizer")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(
                f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}"
            )
        self.factor = factor
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            self.default_min_lr = None
            self.min_lrs = _per_group("min_lr", optimizer, min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._step_count = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self._reset()

    def _reset(self) -> None:
        """Forget the best value and the counters."""
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def is_better(self, a: float, best: float) -> bool:
        """Whether `a` improves on `best` under mode, threshold and threshold_mode."""
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return a < best * (1.0 - self.threshold)
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def lr_at(self, epoch: int) -> list[float]:
        raise TypeError(
            "ReduceLROnPlateau's lr depends on the metrics passed to step(), not only on the "
            "step; read get_last_lr()"
        )

    def get_lr(self) -> list[float]:
        return list(self._last_lr)

    def step(self, metrics, epoch: int | None = None) -> None:  # type: ignore[override]
        """Record one value of the monitored metric; reduce the lr if it has plateaued.

        Args:
            metrics: the monitored value (a number or a 1-element Tensor).
            epoch: the step number (default: the previous one + 1).
        """
        current = float(metrics)
        self._step_count += 1
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad steps during a cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"ReduceLROnPlateau: the optimizer has {len(groups)} parameter groups, "
                    f"min_lr has {len(self.min_lrs)} values (a group was added); set "
                    "scheduler.min_lrs to one value per group"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs, strict=True):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr
