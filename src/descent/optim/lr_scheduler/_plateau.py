"""ReduceLROnPlateau: the one schedule that follows a metric rather than the step."""

from __future__ import annotations

import math
import warnings

from ..optimizer import Optimizer
from ._base import EPOCH_DEPRECATION_WARNING, LRScheduler, _copy_lr, _per_group, set_lr

__all__ = ["ReduceLROnPlateau"]


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
        self.last_epoch = 0  # no step count: PyTorch's state_dict has none
        self._last_lr = [_copy_lr(group["lr"]) for group in optimizer.param_groups]
        # (this order of the attributes is PyTorch's, so its state_dict's key order)
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
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
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
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
        self._last_lr = [_copy_lr(group["lr"]) for group in self.optimizer.param_groups]

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
                set_lr(group, new_lr)
