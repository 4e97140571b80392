"""The base class: `step()` (recursive or closed form), state_dict and resuming are here."""

from __future__ import annotations

import copy
import types
import warnings
from typing import Any

from ...tensor import Tensor
from ..optimizer import Optimizer

__all__ = ["LRScheduler"]

# PyTorch's warnings, word for word (programs and tests filter on their text)
STEP_ORDER_WARNING = (
    "Detected call of `lr_scheduler.step()` before `optimizer.step()`. "
    "In PyTorch 1.1.0 and later, you should call them in the opposite order: "
    "`optimizer.step()` before `lr_scheduler.step()`.  Failure to do this "
    "will result in PyTorch skipping the first value of the learning rate schedule. "
    "See more details at "
    "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate"
)
EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being "
    "deprecated where possible. Please use `scheduler.step()` to step the "
    "scheduler. During the deprecation, if epoch is different from None, the "
    "closed form is used instead of the new chainable form, where available. "
    "Please open an issue if you are unable to replicate your use case: "
    "https://github.com/pytorch/pytorch/issues/new/choose."
)


def _track_optimizer_steps(optimizer) -> None:
    """From now on the optimizer's step() sets `optimizer._opt_called` (PyTorch patches the
    optimizer's step for this; descent's Optimizer.step sets the flag itself once it exists,
    optimizer_hooks.hooked_step). A flag set by an earlier scheduler stays."""
    if "_opt_called" not in optimizer.__dict__:
        optimizer.__dict__["_opt_called"] = False


def warn_step_order(sched, stacklevel: int = 3) -> None:
    """PyTorch's warning on a scheduler's first step() before any optimizer.step() since the
    scheduler was made (the first value of the schedule is then skipped)."""
    if sched._step_count == 1 and not sched.optimizer.__dict__.get("_opt_called", True):
        warnings.warn(STEP_ORDER_WARNING, UserWarning, stacklevel=stacklevel)


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
    """Base class: sets each group's lr on every `step()` (see `_closed_form` below).

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
    # Polynomial, Multiplicative) define `_chainable_lr(epoch, lrs)`: their `get_lr()`, which
    # `step()` applies to each group's CURRENT lr (so a hand-made change of group["lr"] carries
    # forward, and the rounding is PyTorch's); `step(epoch)` uses the closed form `lr_at` (its
    # `_get_closed_form_lr`) where the class has one (`_closed_form`; MultiplicativeLR has not).
    _closed_form: bool = True

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not a descent Optimizer")
        self.optimizer = optimizer
        _track_optimizer_steps(optimizer)
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
        self.last_epoch = last_epoch
        self._step_count = 0
        # PyTorch's two flags, kept as instance attributes so that state_dict() has its keys:
        # _is_initial is True during the construction step only; _get_lr_called_within_step
        # is True while step() calls a subclass's get_lr(). (_is_initial first: PyTorch's
        # state_dict key order.)
        self._is_initial = True
        self._get_lr_called_within_step = False
        try:
            self.step()
        finally:
            self._is_initial = False

    def lr_at(self, epoch: int) -> list[float]:
        """The learning rate of every group at step `epoch` in closed form (from base_lrs)."""
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
        """Advance one step (or jump to `epoch`) and set every group's lr: PyTorch's recursive
        formula on the current lrs for a chainable schedule, the closed form for a jump."""
        warn_step_order(self)
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            self._apply(self.last_epoch)
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
            self.last_epoch = int(epoch)
            self._apply(self.last_epoch, closed_form=True)

    def _apply(self, epoch: int, closed_form: bool = False) -> None:
        """Write the schedule's values at `epoch` into the optimizer's groups: the recursive
        form (`_chainable_lr`) unless `closed_form` (a jump) and the class has one."""
        if type(self).get_lr is not LRScheduler.get_lr:
            # A PyTorch-style subclass: its get_lr() reads self.last_epoch (already set); a
            # jump (step(epoch)) uses its _get_closed_form_lr() where it has one (its own, or
            # that of the descent class it extends), as PyTorch's _update_lr.
            self._get_lr_called_within_step = True
            try:
                closed = getattr(self, "_get_closed_form_lr", None) if closed_form else None
                lrs = closed() if closed is not None else self.get_lr()
            finally:
                self._get_lr_called_within_step = False
        else:
            chained = getattr(self, "_chainable_lr", None)
            if chained is not None and not (closed_form and self._closed_form):
                lrs = chained(epoch, [g["lr"] for g in self.optimizer.param_groups])
            else:
                lrs = self.lr_at(epoch)
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            set_lr(group, lr)
        # copies of the groups' lrs, as PyTorch's (a tensor lr is filled in place later)
        self._last_lr = [_copy_lr(g["lr"]) for g in self.optimizer.param_groups]

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
