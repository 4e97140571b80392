"""PyTorch's deprecated and single-machine names, kept so programs that use them run:
Container and NLLLoss2d (deprecated; they warn, as PyTorch's), and DataParallel, which on one
device (descent's case: one process drives one device) calls the wrapped module, as PyTorch's
does when it finds no GPUs. For several devices use `nn.parallel.DistributedDataParallel`.
"""

from __future__ import annotations

import warnings

from .loss import NLLLoss
from .module import Module

__all__ = ["Container", "NLLLoss2d", "DataParallel"]


class Container(Module):
    """Deprecated: a Module whose keyword arguments become child modules."""

    def __init__(self, **kwargs) -> None:
        super().__init__()
        warnings.warn(
            "`nn.Container` is deprecated. All of its functionality is now implemented in "
            "`nn.Module`. Subclass that instead.",
            FutureWarning,
            stacklevel=2,
        )
        for key, value in kwargs.items():
            self.add_module(key, value)


class NLLLoss2d(NLLLoss):
    """Deprecated: NLLLoss (which already takes (N, C, H, W) inputs)."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean") -> None:  # fmt: skip
        warnings.warn(
            "`NLLLoss2d` has been deprecated. Please use `NLLLoss` instead as a drop-in "
            "replacement",
            FutureWarning,
            stacklevel=2,
        )
        super().__init__(weight, size_average, ignore_index, reduce, reduction)


class DataParallel(Module):
    """torch.nn.DataParallel on one device: `forward` calls `module` (the batch is not split);
    state_dict keys carry the `module.` prefix, as PyTorch's.

    Raises:
        NotImplementedError: device_ids naming more than one device.
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0):
        super().__init__()
        if device_ids is not None and len(list(device_ids)) > 1:
            raise NotImplementedError(
                "DataParallel: descent drives one device per process; use "
                "nn.parallel.DistributedDataParallel (MPI) for several"
            )
        self.module = module
        self.dim = dim
        self.device_ids = [] if device_ids is None else list(device_ids)
        self.output_device = output_device

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)
