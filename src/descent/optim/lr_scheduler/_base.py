"""The base class: a schedule is `lr_at(step)`; `step()`, state_dict and resuming are here."""

from __future__ import annotations

import copy
import types
import warnings
from typing import Any

from ...tensor import Tensor
from ..optimizer import Optimizer

__all__ = ["LRScheduler"]


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
    # PyTorch's chainable schedules (Step, MultiStep, Exponential, Cosine, Linear, Constant,
    # Polynomial, Multiplicative) compute their construction step from each group's CURRENT lr
    # (`group["lr"]`, times start_factor / factor), not from initial_lr; the two differ when
    # initial_lr was already there: a scheduler made after optimizer.load_state_dict when
    # resuming, or a second scheduler made on the same optimizer. Those classes set this.
    _starts_from_current_lr: bool = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not a descent Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", _copy_lr(group["lr"]))
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param_groups[{i}] has no 'initial_lr': resuming a schedule with "
                        f"last_epoch={last_epoch} needs the optimizer's state_dict loaded first"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        current = [_copy_lr(group["lr"]) for group in optimizer.param_groups]  # a snapshot
        self.last_epoch = last_epoch
        self._step_count = 0
        # PyTorch's two flags, kept as instance attributes so that state_dict() has its keys:
        # _is_initial is True during the construction step only; _get_lr_called_within_step
        # is True while step() calls a subclass's get_lr().
        self._get_lr_called_within_step = False
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False
        if last_epoch == -1 and self._starts_from_current_lr:
            self._start_from(current)

    def _start_from(self, current: list[float]) -> None:
        """Rescale the construction step's lrs to start from the groups' `current` lrs, as
        PyTorch's chainable form does: lr_0 = current * (closed form at 0) / initial_lr."""
        lrs = [
            lr * (a / b) if b else a
            for lr, a, b in zip(current, self._last_lr, self.base_lrs, strict=True)
        ]
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            set_lr(group, lr)
        self._last_lr = lrs

    def lr_at(self, epoch: int) -> list[float]:
        """The learning rate of every group at step `epoch` (a pure function of `epoch`)."""
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        """The learning rates at `last_epoch`.

        Called outside `step()` on one of PyTorch's chainable schedules (StepLR, MultiStepLR,
        ExponentialLR, CosineAnnealingLR, MultiplicativeLR, LinearLR, ConstantLR,
        PolynomialLR), it returns what PyTorch's does, with its warning: the recursive
        formula applied once more to each group's current lr (`scheduler.get_lr()[0]` after
        `step()` in pre-1.4 code, e.g. DARTS, gives StepLR's lr x gamma at a boundary)."""
        if not self._get_lr_called_within_step:
            warnings.warn(
                "To get the last learning rate computed by the scheduler, please use "
                "`get_last_lr()`.",
                UserWarning,
                stacklevel=2,
            )
            chained = getattr(self, "_chainable_lr", None)
            if chained is not None:
                return chained(self.last_epoch, [g["lr"] for g in self.optimizer.param_groups])
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
        if type(self).get_lr is not LRScheduler.get_lr:
            # A PyTorch-style subclass: its get_lr() reads self.last_epoch (already set).
            self._get_lr_called_within_step = True
            try:
                lrs = self.get_lr()
            finally:
                self._get_lr_called_within_step = False
        else:
            lrs = self.lr_at(epoch)
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            set_lr(group, lr)
        self._last_lr = list(lrs)

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's attributes except the optimizer (and functions): plain values.

        LambdaLR's and MultiplicativeLR's `lr_lambdas` are saved as PyTorch saves them: None
        for a plain function, the attributes (`__dict__`) of a callable object, so that a
        stateful schedule object resumes where it was."""
        state = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k not in self._not_saved}
        fns = self.__dict__.get("lr_lambdas")
        if fns is not None:
            state["lr_lambdas"] = [
                None if isinstance(fn, types.FunctionType) else copy.deepcopy(fn.__dict__)
                for fn in fns
            ]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore attributes saved by `state_dict()` (group lrs follow at the next step)."""
        state = copy.deepcopy(dict(state_dict))
        saved_fns = state.pop("lr_lambdas", None)
        self.__dict__.update(state)
        if saved_fns is not None and "lr_lambdas" in self.__dict__:
            for fn, attrs in zip(self.lr_lambdas, saved_fns, strict=False):
                if attrs is not None:
                    fn.__dict__.update(attrs)


def set_lr(group: dict[str, Any], lr) -> None:
    """Write a scheduler's lr into a group: a tensor lr (PyTorch's `lr=torch.tensor(...)`) is
    filled in place, as PyTorch's schedulers do, so a reference to it sees the new value."""
    current = group.get("lr")
    if isinstance(current, Tensor):
        current.fill_(float(lr))
    else:
        group["lr"] = lr


def _copy_lr(lr):
    """The "initial_lr" to keep: a copy of a tensor lr (filled in place later), as PyTorch's."""
    return lr.clone() if isinstance(lr, Tensor) else lr
