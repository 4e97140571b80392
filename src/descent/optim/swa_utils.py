"""Stochastic weight averaging and EMA of a model's weights (torch.optim.swa_utils).

* `AveragedModel(model, avg_fn=None, multi_avg_fn=None, use_buffers=False)`: a copy of `model`
  whose `update_parameters(model)` folds the model's current weights into a running average:
  the equal-weight mean of every call (SWA, the default) or any rule given as `avg_fn(avg,
  current, n_averaged)` / `multi_avg_fn(avg_list, current_list, n_averaged)` (an exponential
  moving average: `get_ema_multi_avg_fn(0.999)`). Buffers are copied from the model unless
  `use_buffers=True` averages them too.
* `SWALR(optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos")`: anneals each group's
  learning rate from its current value to `swa_lr` over `anneal_epochs` steps, then holds it.
* `update_bn(loader, model)`: recompute BatchNorm running statistics with one pass over the
  data (momentum None: the plain average of the batches), as the averaged weights need.

The arithmetic follows PyTorch's: the SWA and EMA updates are `lerp(avg, current, w)` with
w = 1 / (n + 1) and 1 - decay on floating tensors.
"""

from __future__ import annotations

import copy as _copy
import itertools
import math
from collections.abc import Callable as _Callable
from collections.abc import Iterable as _Iterable

import numpy as _np

from ..autograd import no_grad as _no_grad
from ..creation import tensor as _tensor
from ..nn.module import Module
from ..ops.math import lerp as _lerp
from ..tensor import Tensor
from .lr_scheduler import LRScheduler
from .optimizer import Optimizer as _Optimizer

__all__ = [
    "SWALR",
    "AveragedModel",
    "get_ema_avg_fn",
    "get_ema_multi_avg_fn",
    "get_swa_avg_fn",
    "get_swa_multi_avg_fn",
    "update_bn",
]


def _assign(dst: Tensor, value) -> None:
    arr = value._data if isinstance(value, Tensor) else value
    dst._data[...] = arr
    dst._version += 1


def get_ema_multi_avg_fn(decay: float = 0.999) -> _Callable:
    """avg <- lerp(avg, current, 1 - decay) on each pair (PyTorch's _foreach_lerp_)."""

    def ema_update(ema_params: list, current_params: list, num_averaged) -> None:
        for e, c in zip(ema_params, current_params):
            if e._data.dtype.kind in "fV":
                _assign(e, _lerp(e, c, 1.0 - decay))
            else:
                _assign(e, e * decay + c * (1 - decay))

    return ema_update


def get_swa_multi_avg_fn() -> _Callable:
    """avg <- lerp(avg, current, 1 / (n + 1)): the running mean of every update."""

    def swa_update(avg_params: list, current_params: list, num_averaged) -> None:
        n = float(num_averaged.item() if isinstance(num_averaged, Tensor) else num_averaged)
        for a, c in zip(avg_params, current_params):
            if a._data.dtype.kind in "fV":
                w = a._data.dtype.type(1.0 / (n + 1.0))
                _assign(a, _lerp(a, c, float(w)))
            else:
                _assign(a, a + (c - a) / (n + 1.0))

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> _Callable:
    """`decay * ema + (1 - decay) * current` for one tensor."""

    def ema_update(ema_param: Tensor, current_param: Tensor, num_averaged):
        return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn() -> _Callable:
    """`avg + (current - avg) / (n + 1)` for one tensor."""

    def swa_update(averaged_param: Tensor, current_param: Tensor, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)

    return swa_update


class AveragedModel(Module):
    """A running average of a model's weights (SWA by default, or `avg_fn`/`multi_avg_fn`).

    Args:
        model: the model to average; a deep copy is kept in `self.module`.
        device: where the copy lives (None: the model's).
        avg_fn: `avg_fn(averaged, current, n_averaged)` -> the new average, per tensor.
        multi_avg_fn: `multi_avg_fn(averaged_list, current_list, n_averaged)`, in place.
        use_buffers: average the buffers too (else copy them from the model at each update).
    """

    def __init__(
        self,
        model: Module,
        device=None,
        avg_fn: _Callable | None = None,
        multi_avg_fn: _Callable | None = None,
        use_buffers: bool = False,
    ) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = _copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", _tensor(0, dtype=_np.int64, device=device))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _pairs(self, model: Module) -> tuple[list, list]:
        if self.use_buffers:
            mine = itertools.chain(self.module.parameters(), self.module.buffers())
            theirs = itertools.chain(model.parameters(), model.buffers())
        else:
            mine, theirs = self.module.parameters(), model.parameters()
        pairs = [(a.detach(), c.detach().to(a.device)) for a, c in zip(mine, theirs)]
        return [a for a, _ in pairs], [c for _, c in pairs]

    def update_parameters(self, model: Module) -> None:
        """Fold `model`'s current weights into the average (the first call copies them)."""
        avg, cur = self._pairs(model)
        n = int(self.n_averaged.item())
        with _no_grad():
            if n == 0:
                for a, c in zip(avg, cur):
                    _assign(a, c)
            elif self.avg_fn is not None:
                for a, c in zip(avg, cur):
                    _assign(a, self.avg_fn(a, c, self.n_averaged))
            else:
                fn = self.multi_avg_fn or get_swa_multi_avg_fn()
                groups: dict = {}
                for a, c in zip(avg, cur):  # PyTorch groups by device and dtype
                    groups.setdefault((a.device, a._data.dtype), ([], []))
                    groups[(a.device, a._data.dtype)][0].append(a)
                    groups[(a.device, a._data.dtype)][1].append(c)
                for a_list, c_list in groups.values():
                    fn(a_list, c_list, self.n_averaged)
            if not self.use_buffers:
                for b_avg, b_model in zip(self.module.buffers(), model.buffers()):
                    _assign(b_avg, b_model.detach().to(b_avg.device))
            self.n_averaged._data[...] += 1


def update_bn(loader: _Iterable, model: Module, device=None) -> None:
    """Recompute the BatchNorm running statistics of `model` with one pass over `loader`.

    Each batch is the loader's item, or its first element when it is a list or tuple.
    """
    from ..nn.normalization import _BatchNorm  # noqa: PLC0415

    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    with _no_grad():
        for batch in loader:
            if isinstance(batch, (list, tuple)):
                batch = batch[0]
            if device is not None:
                batch = batch.to(device)
            model(batch)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal every group's lr to `swa_lr` over `anneal_epochs` steps, then hold it.

    Args:
        optimizer: the wrapped optimizer.
        swa_lr: the target lr (one number, or one per group).
        anneal_epochs: steps of annealing (0: jump at once).
        anneal_strategy: "cos" or "linear".
    """

    _not_saved = ("optimizer", "anneal_func")

    def __init__(self, optimizer: _Optimizer, swa_lr, anneal_epochs: int = 10,
                 anneal_strategy: str = "cos", last_epoch: int = -1) -> None:  # fmt: skip
        lrs = (
            list(swa_lr)
            if isinstance(swa_lr, (list, tuple))
            else [swa_lr] * len(optimizer.param_groups)
        )
        if len(lrs) != len(optimizer.param_groups):
            raise ValueError(
                f"SWALR: {len(lrs)} swa_lr values for {len(optimizer.param_groups)} groups"
            )
        for lr, group in zip(lrs, optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}"
            )
        self._anneal_strategy = anneal_strategy  # PyTorch's attribute (a state_dict key)
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else self._linear_anneal
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t: float) -> float:
        return t

    @staticmethod
    def _cosine_anneal(t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def lr_at(self, epoch: int) -> list[float]:
        # Chained on the groups' current lrs, as PyTorch's get_lr (which reads _step_count).
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        groups = self.optimizer.param_groups
        prev = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in groups]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(groups, prev)]

    @property
    def anneal_strategy(self) -> str:
        return self._anneal_strategy

    def load_state_dict(self, state_dict) -> None:
        state = dict(state_dict)
        if "anneal_strategy" in state:  # a checkpoint of descent before PyTorch's key
            state["_anneal_strategy"] = state.pop("anneal_strategy")
        super().load_state_dict(state)
        self.anneal_func = (
            self._cosine_anneal if self._anneal_strategy == "cos" else self._linear_anneal
        )
