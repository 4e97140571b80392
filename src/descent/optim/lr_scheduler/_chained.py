"""MultiplicativeLR (the lr multiplied by a factor each step) and ChainedScheduler (several
schedules applied one after the other at every step), PyTorch's classes."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from ..optimizer import Optimizer
from ._base import (
    EPOCH_DEPRECATION_WARNING,
    LRScheduler,
    _copy_lr,
    _per_group,
    set_lr,
    warn_step_order,
)
from ._cyclic import CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR
from ._decay import CosineAnnealingLR, LambdaLR
from ._plateau import ReduceLROnPlateau
from ._sequential import SequentialLR
from ._warmup_cosine import WarmupCosineLR

__all__ = ["ChainedScheduler", "MultiplicativeLR"]


class MultiplicativeLR(LRScheduler):
    """lr = base_lr · f(1) · f(2) · ... · f(epoch) (torch.optim.lr_scheduler.MultiplicativeLR).

    `step()` multiplies the current lr by f(epoch), as PyTorch's; `lr_at(epoch)` (used by
    ChainedScheduler) computes the same product from base_lr, the running product cached so
    that stepping costs one call of f.

    Args:
        optimizer: the optimizer.
        lr_lambda: a function of the step giving the factor, or one per parameter group.
            Functions are not part of `state_dict()`.
        last_epoch: see `LRScheduler`.
    """

    _closed_form = False  # PyTorch's has no _get_closed_form_lr: step(epoch) is recursive

    _not_saved = ("optimizer", "lr_lambdas", "_cache")

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        self.lr_lambdas = _per_group("lr_lambda", optimizer, lr_lambda)
        self._cache: tuple[int, list[float]] | None = None
        super().__init__(optimizer, last_epoch)

    def _chainable_lr(self, epoch: int, lrs: list) -> list:
        """PyTorch's recursive get_lr on the current lrs (see LRScheduler.get_lr)."""
        if self._is_initial:
            return list(lrs)
        return [lr * fn(epoch) for lr, fn in zip(lrs, self.lr_lambdas, strict=True)]

    def step(self, epoch: int | None = None) -> None:
        """Advance one step; `step(epoch)` (deprecated in PyTorch) multiplies the current lrs by
        f(epoch) once, as PyTorch's does (it has no closed form to jump with)."""
        if epoch is None or self._is_initial:
            super().step(epoch)
            return
        warn_step_order(self)
        warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._step_count += 1
        self.last_epoch = int(epoch)
        lrs = self._chainable_lr(self.last_epoch, [g["lr"] for g in self.optimizer.param_groups])
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            set_lr(group, lr)
        self._last_lr = list(lrs)
        self._cache = (self.last_epoch, list(lrs))  # later steps multiply on from here

    def lr_at(self, epoch: int) -> list[float]:
        cache = getattr(self, "_cache", None)
        if cache is not None and cache[0] <= epoch:
            start, lrs = cache[0], list(cache[1])
        else:
            start, lrs = 0, list(self.base_lrs)
        for k in range(start + 1, epoch + 1):
            lrs = [lr * f(k) for lr, f in zip(lrs, self.lr_lambdas, strict=True)]
        self._cache = (max(epoch, 0), lrs)
        return lrs

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._cache = None  # base_lrs may have changed


# How PyTorch's step of each schedule changes the CURRENT lr, which ChainedScheduler composes:
# most multiply it by the ratio of their closed form between two steps; these set it outright.
_SETS_LR = (LambdaLR, OneCycleLR, CyclicLR, CosineAnnealingWarmRestarts, WarmupCosineLR,
            SequentialLR)  # fmt: skip


def _chain_step(sched: LRScheduler, lrs: list[float], epoch: int) -> list[float]:
    """One PyTorch step of `sched` applied to the current lrs at `epoch` (>= 1)."""
    now = sched.lr_at(epoch)
    if isinstance(sched, _SETS_LR):
        return list(now)
    before = sched.lr_at(epoch - 1)
    floor = getattr(sched, "eta_min", 0.0) if isinstance(sched, CosineAnnealingLR) else 0.0
    out = []
    for lr, a, b in zip(lrs, now, before, strict=True):
        # (lr - floor) scaled by the schedule's own ratio; a zero denominator sets the value
        out.append(a if b == floor else floor + (lr - floor) * ((a - floor) / (b - floor)))
    return out


class ChainedScheduler(LRScheduler):
    """Step several schedulers together: at each step every one of them changes the lr in turn,
    as PyTorch's ChainedScheduler (`ConstantLR` warm-up times `ExponentialLR` decay, ...).

    The composition is PyTorch's recursive update of the groups' current lrs: a chainable
    schedule (Exponential, Step, MultiStep, Constant, Linear, Polynomial, Multiplicative,
    Cosine) applies its own recursive formula (`_chainable_lr`, PyTorch's get_lr) to the lrs
    the previous one left, another the ratio of its closed form between two steps; LambdaLR
    and the cyclic ones set it. As PyTorch's, it keeps no step count of its own:
    its state_dict is `_last_lr` and the children's state_dicts, and resuming needs the
    optimizer's state (its groups' lrs) too.

    Args:
        schedulers: the schedulers, all on one optimizer, made before this one.
        optimizer: that optimizer (taken from the schedulers when None).
    """

    _not_saved = ("optimizer", "_schedulers")

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None):
        schedulers = list(schedulers)
        if len(schedulers) < 1:
            raise ValueError(f"{type(self).__name__} expects at least one scheduler to be "
                             "chained, but got no scheduler.")  # fmt: skip
        optimizer = optimizer or schedulers[0].optimizer
        for i, s in enumerate(schedulers):
            if isinstance(s, ReduceLROnPlateau):
                raise ValueError(
                    "ChainedScheduler: ReduceLROnPlateau steps on a metric; step it separately"
                )
            if getattr(s, "optimizer", None) is not optimizer:
                raise ValueError(
                    f"{type(self).__name__} expects all schedulers to belong to the same "
                    f"optimizer, but got scheduler {type(s).__name__} at index {i} with a "
                    "different one"
                )
        self._schedulers = schedulers
        self.optimizer = optimizer
        # PyTorch's: the groups' lrs as the children's construction steps left them (each
        # child's step 0 ran on the lrs the previous one left), not changed here. (Before
        # session 20 they were recomputed from "initial_lr", which undid any change made
        # before the children, e.g. by a scheduler made earlier on the same optimizer.)
        self._last_lr = [_copy_lr(g["lr"]) for g in optimizer.param_groups]

    def step(self, epoch: int | None = None) -> None:
        """One step of every child in turn, each on the lrs the previous one left."""
        if epoch is not None:
            raise TypeError("ChainedScheduler.step() takes no epoch (PyTorch's neither)")
        groups = self.optimizer.param_groups
        lrs = [float(g["lr"]) for g in groups]
        for s in self._schedulers:
            warn_step_order(s)  # PyTorch's: each child's step() checks
            s.last_epoch += 1
            s._step_count += 1
            if isinstance(s, _SETS_LR):
                s._apply(s.last_epoch)  # the lr it sets, and its side effects (momentum)
                lrs = list(s.get_last_lr())
            elif getattr(s, "_chainable_lr", None) is not None:
                lrs = s._chainable_lr(s.last_epoch, lrs)  # PyTorch's get_lr: its rounding
            else:
                lrs = _chain_step(s, lrs, s.last_epoch)
            for group, lr in zip(groups, lrs, strict=True):
                set_lr(group, lr)
            s._last_lr = list(lrs)
        self._last_lr = list(lrs)

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        sd["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """PyTorch's, and the groups' lrs set to the saved `_last_lr` (PyTorch leaves them as
        they are: resuming there needs the optimizer's state loaded after the schedulers were
        made; here either order works)."""
        sd = dict(state_dict)
        children = sd.pop("_schedulers", None)
        super().load_state_dict(sd)
        if children is not None:
            for s, child in zip(self._schedulers, children, strict=True):
                s.load_state_dict(child)
        if "_last_lr" in sd:
            for group, lr in zip(self.optimizer.param_groups, self._last_lr, strict=True):
                set_lr(group, lr)
