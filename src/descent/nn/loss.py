"""Loss modules: the layer forms of `descent.nn.functional`'s losses, with torch.nn's names,
constructor arguments and buffers (`weight`, `pos_weight` are registered buffers, as in
PyTorch, so they follow `.to()` and appear in `state_dict()`).

    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    loss = criterion(logits, targets)

The legacy `size_average` / `reduce` flags are accepted and mapped onto `reduction` as
PyTorch does (and the result is stored in `self.reduction`).
"""

from __future__ import annotations

from ..ops._common import as_tensor
from ..tensor import Tensor
from . import functional as F
from .module import Module

__all__ = [
    "L1Loss",
    "MSELoss",
    "CrossEntropyLoss",
    "NLLLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "KLDivLoss",
    "HuberLoss",
    "SmoothL1Loss",
]

_REDUCTIONS = ("mean", "sum", "none")


def _legacy_reduction(size_average, reduce, reduction: str, name: str, extra=()) -> str:
    """PyTorch's rule: either legacy flag given -> 'none' unless reduce, else mean or sum."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else ("mean" if size_average else "sum")
    if reduction not in _REDUCTIONS + tuple(extra):
        raise ValueError(
            f"{name}: reduction must be one of {_REDUCTIONS + tuple(extra)}, got {reduction!r}"
        )
    return reduction


class _Loss(Module):
    """Base of the loss modules: holds `reduction`. No extra_repr: PyTorch's losses print as
    `MSELoss()` whatever their settings, and printed models must read the same."""

    _extra_reductions: tuple[str, ...] = ()

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _legacy_reduction(
            size_average, reduce, reduction, type(self).__name__, self._extra_reductions
        )


class _WeightedLoss(_Loss):
    """A loss with an optional per-class `weight` buffer."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", None if weight is None else _as_buffer(weight))


def _as_buffer(value) -> Tensor:
    """A constant tensor to register as a buffer (a Tensor is kept as it is, as PyTorch)."""
    t = as_tensor(value)
    return t.detach() if t.requires_grad else t


class L1Loss(_Loss):
    """Mean (or sum) absolute error |input - target|; see `functional.l1_loss`."""

    def forward(self, input, target):  # PyTorch's names
        return F.l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean (or sum) squared error (input - target)^2; see `functional.mse_loss`."""

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy of logits against class indices or class probabilities.

    Args:
        weight: per-class weights (C,), a buffer.
        size_average, reduce: PyTorch's legacy flags (prefer `reduction`).
        ignore_index: index targets equal to it contribute nothing.
        reduction: 'mean' (weighted mean over counted targets), 'sum' or 'none'.
        label_smoothing: mix this much of the uniform distribution into the target.
    """

    def __init__(
        self,
        weight=None,
        size_average=None,
        ignore_index: int = -100,
        reduce=None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        # (label_smoothing is checked by cross_entropy at the call, as PyTorch: > 1 raises
        # there, a negative value means no smoothing)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities at class indices (pair with LogSoftmax).

    Args:
        weight: per-class weights (C,), a buffer.
        size_average, reduce: PyTorch's legacy flags.
        ignore_index: index targets equal to it contribute nothing.
        reduction: 'mean' (divided by the summed weight of counted targets), 'sum' or 'none'.
    """

    def __init__(
        self,
        weight=None,
        size_average=None,
        ignore_index: int = -100,
        reduce=None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(
            input, target, weight=self.weight, ignore_index=self.ignore_index,
            reduction=self.reduction,
        )  # fmt: skip


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities in [0, 1] (logs clamped at -100, as PyTorch).

    Args:
        weight: a rescaling weight broadcast against the loss, a buffer.
        size_average, reduce: PyTorch's legacy flags.
        reduction: 'mean', 'sum' or 'none'.
    """

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy in one numerically stable expression.

    Args:
        weight: a rescaling weight broadcast against the loss, a buffer.
        size_average, reduce: PyTorch's legacy flags.
        reduction: 'mean', 'sum' or 'none'.
        pos_weight: weight of the positive examples (per class, broadcast), a buffer.
    """

    def __init__(
        self,
        weight=None,
        size_average=None,
        reduce=None,
        reduction: str = "mean",
        pos_weight=None,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", None if weight is None else _as_buffer(weight))
        self.register_buffer("pos_weight", None if pos_weight is None else _as_buffer(pos_weight))

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(
            input, target, weight=self.weight, reduction=self.reduction, pos_weight=self.pos_weight
        )


class KLDivLoss(_Loss):
    """Kullback-Leibler divergence KL(target || input) with `input` as log-probabilities.

    Args:
        size_average, reduce: PyTorch's legacy flags.
        reduction: 'mean' (over all elements, as PyTorch), 'batchmean' (the true KL: sum
            divided by the batch size), 'sum' or 'none'.
        log_target: `target` holds log-probabilities too.
    """

    _extra_reductions = ("batchmean",)

    def __init__(
        self, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class HuberLoss(_Loss):
    """0.5 d^2 where |d| < delta, else delta (|d| - delta / 2), for d = input - target.

    Args:
        reduction: 'mean', 'sum' or 'none'.
        delta: where the quadratic turns linear (> 0).
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        if delta <= 0:
            raise ValueError(f"HuberLoss: delta must be positive, got {delta}")
        self.delta = delta

    def forward(self, input, target):
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(_Loss):
    """0.5 d^2 / beta where |d| < beta, else |d| - beta / 2 (HuberLoss divided by beta).

    Args:
        size_average, reduce: PyTorch's legacy flags.
        reduction: 'mean', 'sum' or 'none'.
        beta: where the quadratic turns linear (>= 0; 0 is the L1 loss).
    """

    def __init__(
        self, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        if beta < 0:
            raise ValueError(f"SmoothL1Loss: beta must be >= 0, got {beta}")
        self.beta = beta

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)
