"""SequentialLR: one schedule after another, each restarted at its own step 0."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from ..optimizer import Optimizer
from ._base import LRScheduler, _copy_lr, set_lr, warn_step_order
from ._plateau import ReduceLROnPlateau

__all__ = ["SequentialLR"]


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
            if isinstance(s, ReduceLROnPlateau):  # PyTorch's refusal
                raise ValueError(
                    "SequentialLR does not support `ReduceLROnPlateau` scheduler as it requires "
                    f"additional kwargs to be specified when calling `step`, but got one at index "
                    f"{i} in the given schedulers sequence."
                )
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
        # PyTorch redoes the construction step of the schedule in charge at step 0 only (its
        # step count restarts at 1); the others' construction steps are undone (last_epoch - 1).
        first = self._locate(0)[0]
        first._step_count = 0
        for sched in self._schedulers:
            if sched is not first:
                _undo(sched)
        super().__init__(optimizer, last_epoch)
        # PyTorch's SequentialLR saves only these (and _schedulers): drop the base's counters.
        for key in ("base_lrs", "_step_count", "_is_initial", "_get_lr_called_within_step"):
            self.__dict__.pop(key, None)

    def step(self, epoch: int | None = None) -> None:
        """Advance one step. The schedule in charge counts it, except at its milestone, where
        PyTorch restarts it at 0 without counting a step."""
        self.last_epoch = self.last_epoch + 1 if epoch is None else int(epoch)
        sched, local = self._locate(self.last_epoch)
        if local != 0 or sched is self._schedulers[0]:
            warn_step_order(sched)  # PyTorch's: the child's step() checks
            sched._step_count += 1
        self._apply(self.last_epoch)

    def _locate(self, epoch: int) -> tuple[LRScheduler, int]:
        """The scheduler in charge at `epoch` and its own step count there."""
        idx = bisect_right(self._milestones, epoch)
        start = self._milestones[idx - 1] if idx > 0 else 0
        return self._schedulers[idx], epoch - start

    def lr_at(self, epoch: int) -> list[float]:
        sched, local = self._locate(epoch)
        return sched.lr_at(local)

    def _apply(self, epoch: int, closed_form: bool = False) -> None:
        sched, local = self._locate(epoch)
        sched.last_epoch = local
        if self.__dict__.get("_is_initial", False):  # dropped after __init__ (not PyTorch's)
            # PyTorch's construction: every group back at its initial_lr, then the construction
            # step of the schedule in charge (its recursive form from there)
            for group in self.optimizer.param_groups:
                set_lr(group, _copy_lr(group["initial_lr"]))
            sched._is_initial = True
            try:
                sched._apply(local, closed_form)
            finally:
                sched._is_initial = False
        else:
            # at its milestone a schedule restarts at 0 in closed form (PyTorch's _update_lr(0));
            # otherwise it takes its own step, recursive for the chainable ones
            restart = local == 0 and sched is not self._schedulers[0]
            sched._apply(local, closed_form or restart)  # also side effects (momentum)
        self._last_lr = list(sched.get_last_lr())

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        sd["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """PyTorch's, and the groups' lrs set to the saved `_last_lr`: the children's steps
        are recursive (from the current lrs), and this scheduler's construction reset them to
        initial_lr, so a resume that loads the optimizer's state first continues here too."""
        sd = dict(state_dict)
        children = sd.pop("_schedulers", None)
        super().load_state_dict(sd)
        if children is not None:
            for s, child in zip(self._schedulers, children, strict=True):
                s.load_state_dict(child)
        if "_last_lr" in sd:
            for group, lr in zip(self.optimizer.param_groups, self._last_lr, strict=True):
                set_lr(group, lr)


def _undo(sched) -> None:
    """PyTorch's recursive_undo: one step back on a schedule (on each child of a composite)."""
    children = getattr(sched, "_schedulers", None)
    if children is not None:
        for child in children:
            _undo(child)
    elif hasattr(sched, "last_epoch"):
        sched.last_epoch -= 1
