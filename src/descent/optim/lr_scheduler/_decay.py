"""Decays of the lr: lambda, step, multi-step, exponential, cosine, linear, constant and
polynomial schedules (PyTorch's classes of the same names). Each has its closed form (`lr_at`,
PyTorch's `_get_closed_form_lr`, used by `step(epoch)`) and, except LambdaLR, PyTorch's
recursive form (`_chainable_lr`, its `get_lr`), which `step()` applies to the current lrs."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from ..optimizer import Optimizer
from ._base import LRScheduler, _per_group

__all__ = [
    "LambdaLR",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "LinearLR",
    "ConstantLR",
    "PolynomialLR",
]


class LambdaLR(LRScheduler):
    """lr = base_lr · lr_lambda(epoch).

    Args:
        optimizer: the optimizer.
        lr_lambda: a function of the step, or a list with one per parameter group. In
            `state_dict()` a function is None and a callable object its `__dict__` (PyTorch's
            rule), restored into the new scheduler's objects by `load_state_dict`.
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
        if not step_size > 0:
            raise ValueError(f"StepLR: step_size must be positive, got {step_size!r}")
        # kept as given, as PyTorch's: a float step_size (epochs / 3) decays where
        # last_epoch % step_size == 0 (before session 20 it was cut to an int)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _chainable_lr(self, epoch: int, lrs: list) -> list:
        """PyTorch's recursive get_lr on the current lrs (see LRScheduler.get_lr)."""
        if epoch == 0 or epoch % self.step_size != 0:
            return list(lrs)
        return [lr * self.gamma for lr in lrs]

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
        # a Counter {milestone: times listed}, as PyTorch's (`sched.milestones`, state_dict):
        # code that reads or replaces it, and checkpoints of either library, work unchanged
        self.milestones = Counter(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _chainable_lr(self, epoch: int, lrs: list) -> list:
        """PyTorch's recursive get_lr on the current lrs (see LRScheduler.get_lr)."""
        ms = self.milestones  # int(): keys of a JSON round trip are strings
        counts = ms.items() if isinstance(ms, Mapping) else Counter(ms).items()
        k = sum(n for m, n in counts if int(m) == epoch)
        if k == 0:
            return list(lrs)
        return [lr * self.gamma**k for lr in lrs]

    def lr_at(self, epoch: int) -> list[float]:
        ms = self.milestones  # a Counter; a list from an older descent checkpoint also works
        counts = ms.items() if isinstance(ms, Mapping) else Counter(ms).items()
        k = sum(n for m, n in counts if int(m) <= epoch)  # int(): keys of a JSON round trip
        return [b * self.gamma**k for b in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr = base_lr · gamma^epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _chainable_lr(self, epoch: int, lrs: list) -> list:
        """PyTorch's recursive get_lr on the current lrs (see LRScheduler.get_lr)."""
        return list(lrs) if self._is_initial else [lr * self.gamma for lr in lrs]

    def lr_at(self, epoch: int) -> list[float]:
        return [b * self.gamma**epoch for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) · (1 + cos(π · epoch / T_max)) / 2.

    SGDR without restarts (Loshchilov & Hutter, 2017): from base_lr down to eta_min over T_max
    steps; past T_max the cosine continues (rises again), as PyTorch's does.
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:  # PyTorch's name
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def _chainable_lr(self, epoch: int, lrs: list) -> list:
        """PyTorch's recursive get_lr on the current lrs (see LRScheduler.get_lr)."""
        if self._is_initial:
            return list(lrs)
        if self._step_count == 1 and epoch > 0:
            return self.lr_at(epoch)
        if (epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            rise = (1 - math.cos(math.pi / self.T_max)) / 2
            return [lr + (b - self.eta_min) * rise for lr, b in zip(lrs, self.base_lrs)]
        ratio = (1 + math.cos(math.pi * epoch / self.T_max)) / (
            1 + math.cos(math.pi * (epoch - 1) / self.T_max))
        return [ratio * (lr - self.eta_min) + self.eta_min for lr in lrs]

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

    def _chainable_lr(self, epoch: int, lrs: list) -> list:
        """PyTorch's recursive get_lr on the current lrs (see LRScheduler.get_lr)."""
        if epoch == 0:
            return [lr * self.start_factor for lr in lrs]
        if self._is_initial or epoch > self.total_iters:
            return list(lrs)
        step = self.end_factor - self.start_factor
        factor = 1.0 + step / (self.total_iters * self.start_factor + (epoch - 1) * step)
        return [lr * factor for lr in lrs]

    def lr_at(self, epoch: int) -> list[float]:
        frac = min(self.total_iters, epoch) / self.total_iters
        factor = self.start_factor + (self.end_factor - self.start_factor) * frac
        return [b * factor for b in self.base_lrs]


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

    def _chainable_lr(self, epoch: int, lrs: list) -> list:
        """PyTorch's recursive get_lr on the current lrs (see LRScheduler.get_lr)."""
        if epoch == 0:
            return [lr * self.factor for lr in lrs]
        if epoch != self.total_iters:
            return list(lrs)
        return [lr * (1.0 / self.factor) for lr in lrs]

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

    def _chainable_lr(self, epoch: int, lrs: list) -> list:
        """PyTorch's recursive get_lr on the current lrs (see LRScheduler.get_lr)."""
        if self._is_initial or epoch > self.total_iters:
            return list(lrs)
        factor = ((1.0 - epoch / self.total_iters)
                  / (1.0 - (epoch - 1) / self.total_iters)) ** self.power
        return [lr * factor for lr in lrs]

    def lr_at(self, epoch: int) -> list[float]:
        factor = (1.0 - min(self.total_iters, epoch) / self.total_iters) ** self.power
        return [b * factor for b in self.base_lrs]


def _get_closed_form_lr(self) -> list[float]:
    """PyTorch's name for the closed form at last_epoch (what step(epoch) jumps with)."""
    return self.lr_at(self.last_epoch)


# The classes that have PyTorch's `_get_closed_form_lr` (a subclass overriding get_lr() and
# code that calls the method find it, as in PyTorch).
for _cls in (StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR, ConstantLR,
             PolynomialLR):  # fmt: skip
    _cls._get_closed_form_lr = _get_closed_form_lr
del _cls
