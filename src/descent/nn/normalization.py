"""Normalisation layers: LayerNorm, RMSNorm, BatchNorm1d and BatchNorm2d.

Same arguments, parameter and buffer names (`running_mean`, `running_var`,
`num_batches_tracked`) and defaults as torch.nn, so PyTorch checkpoints load. The arithmetic is
in `descent.nn.functional` (fused ops); these classes hold the parameters and, for batch norm,
the running statistics and the train/eval switch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import creation
from ..errors import DescentError
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["LayerNorm", "RMSNorm", "BatchNorm1d", "BatchNorm2d"]


def _shape_tuple(normalized_shape) -> tuple[int, ...]:
    """`8` -> (8,); a sequence of ints -> a tuple (what the functional forms expect)."""
    if isinstance(normalized_shape, int):
        return (normalized_shape,)
    return tuple(int(s) for s in normalized_shape)


class LayerNorm(Module):
    """Normalise over the last `len(normalized_shape)` dimensions (Ba et al. 2016).

    y = (x - mean) / sqrt(var + eps) * weight + bias, with the biased variance.

    Args:
        normalized_shape: the trailing shape to normalise over (an int for the last dim).
        eps: added to the variance for stability.
        elementwise_affine: learn `weight` (ones) and `bias` (zeros).
        bias: learn the bias (False: weight only, as in nanoGPT's `bias=False` option).
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(
                creation.empty(*self.normalized_shape, device=device, dtype=dtype)
            )
            if bias:
                self.bias = Parameter(
                    creation.empty(*self.normalized_shape, device=device, dtype=dtype)
                )
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class RMSNorm(Module):
    """Root-mean-square normalisation (Zhang & Sennrich 2019): y = x / sqrt(mean(x^2) + eps) * w.

    Args:
        normalized_shape: the trailing shape to normalise over.
        eps: added to the mean square; None uses the input dtype's machine epsilon (PyTorch).
        elementwise_affine: learn `weight` (ones).
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float | None = None,
        elementwise_affine: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(
                creation.empty(*self.normalized_shape, device=device, dtype=dtype)
            )
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )


class _NormBase(Module):
    """The common base of batch and instance normalisation, as torch.nn.modules.batchnorm's
    (code that finds every such layer tests `isinstance(m, _NormBase)`). Its state-dict format
    is version 2 (num_batches_tracked), as PyTorch's."""

    _version = 2

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(creation.empty(num_features, device=device, dtype=dtype))
            if bias:
                self.bias = Parameter(creation.empty(num_features, device=device, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", creation.zeros(num_features, dtype=dtype,
                                                                device=device))  # fmt: skip
            self.register_buffer("running_var", creation.ones(num_features, dtype=dtype,
                                                              device=device))  # fmt: skip
            self.register_buffer(
                "num_batches_tracked", creation.zeros((), dtype=np.int64, device=device)
            )
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean._data[...] = 0
            self.running_var._data[...] = 1
            self.num_batches_tracked._data[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:  # fmt: skip
        """PyTorch's rule for checkpoints older than version 2 (no num_batches_tracked): the
        key is filled with the current count (0 when there is none), then the usual load.
        (descent's own load path does the same in module_state._fill_num_batches_tracked;
        this is the per-module form, for subclasses that override and call super().)"""
        version = local_metadata.get("version")
        if (version is None or version < 2) and getattr(self, "track_running_stats", False):
            key = prefix + "num_batches_tracked"
            if key not in state_dict:
                count = getattr(self, "num_batches_tracked", None)
                state_dict[key] = count if count is not None and not count.is_meta else \
                    np.zeros((), np.int64)  # fmt: skip
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)  # fmt: skip


class _BatchNorm(_NormBase):
    """Batch normalisation (Ioffe & Szegedy 2015) over the channel dimension 1.

    Training: normalise with the batch mean and biased variance, and update the running
    statistics `running = (1 - momentum) * running + momentum * batch` (the running variance uses
    the UNBIASED batch variance, as PyTorch). `momentum=None` gives a cumulative average.
    Evaluation: normalise with the running statistics.
    """

    _expected_dims: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias)  # fmt: skip

    def _check_input_dim(self, x) -> None:
        if x.ndim not in self._expected_dims:
            want = " or ".join(f"{d}D" for d in self._expected_dims)
            raise ValueError(
                f"{type(self).__name__}: expected {want} input (N, C, ...), got "
                f"{x.ndim}D input of shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.num_features:
            raise DescentError(
                f"{type(self).__name__}({self.num_features}): input has {x.shape[1]} channels "
                f"in dimension 1 (shape {tuple(x.shape)})"
            )

    def forward(self, input):
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked._data[...] += 1
            # A raw write to .data bypasses Tensor's in-place ops, which bump the version; bump
            # it here so that a backward that saved this buffer sees the change.
            self.num_batches_tracked._version += 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.item())
        # Batch statistics in training, or always when there are no running statistics.
        use_batch_stats = self.training or (self.running_mean is None)
        track = not self.training or self.track_running_stats
        return F.batch_norm(
            input,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.weight,
            self.bias,
            use_batch_stats,
            factor,
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """BatchNorm over (N, C) or (N, C, L) inputs; statistics per channel C."""

    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """BatchNorm over (N, C, H, W) inputs; statistics per channel C."""

    _expected_dims = (4,)
