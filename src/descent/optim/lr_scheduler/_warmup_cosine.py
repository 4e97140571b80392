"""nanoGPT's schedule: linear warmup, cosine decay, then a floor (a function and a scheduler)."""

from __future__ import annotations

import math

from ..optimizer import Optimizer
from ._base import LRScheduler, _per_group

__all__ = ["warmup_cosine_lr", "WarmupCosineLR"]


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
