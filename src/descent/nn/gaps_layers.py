"""torch.nn layers that descent lacked until 2026-12-04 (docs/torch_gaps_nn.md):
FractionalMaxPool2d/3d, CrossMapLRN2d and SyncBatchNorm."""

from __future__ import annotations

from .. import creation
from ..grad_mode import no_grad
from ..ops.indexing import index_select
from ..ops.reduce import cumsum
from ..ops.shape import cat
from . import functional as F
from .module import Module
from .normalization import _BatchNorm

__all__ = ["FractionalMaxPool2d", "FractionalMaxPool3d", "CrossMapLRN2d", "SyncBatchNorm"]


class _FractionalMaxPoolNd(Module):
    _dims = 2

    def __init__(self, kernel_size, output_size=None, output_ratio=None,
                 return_indices: bool = False, _random_samples=None) -> None:  # fmt: skip
        super().__init__()
        name, n = type(self).__name__, self._dims

        def ntuple(v):
            return None if v is None else (tuple(v) if isinstance(v, (list, tuple)) else (v,) * n)

        self.kernel_size = ntuple(kernel_size)
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        self.output_size = ntuple(output_size)
        self.output_ratio = ntuple(output_ratio)
        if output_size is None and output_ratio is None:
            raise ValueError(f"{name} requires specifying either an output size, or a pooling "
                             "ratio")  # fmt: skip
        if output_size is not None and output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        if self.output_ratio is not None and not all(0 < r < 1 for r in self.output_ratio):
            raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")

    def forward(self, input):
        fn = F.fractional_max_pool2d if self._dims == 2 else F.fractional_max_pool3d
        return fn(input, self.kernel_size, self.output_size, self.output_ratio,
                  self.return_indices, _random_samples=self._random_samples)  # fmt: skip


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """Fractional max pooling over (N, C, H, W) (Graham 2014): pseudo-random kernel-sized
    windows, one draw per (sample, channel) plane and call; see F.fractional_max_pool2d.

    Args:
        kernel_size: the window (int or pair).
        output_size: the output (H, W); or
        output_ratio: the output as a fraction of the input, each in (0, 1).
        return_indices: also return the flat h W + w position of each maximum.
        _random_samples: fixed (N, C, 2) samples in [0, 1) (a buffer), else drawn per call.
    """

    _dims = 2


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """Fractional max pooling over (N, C, T, H, W); `_random_samples` is (N, C, 3)."""

    _dims = 3


class CrossMapLRN2d(Module):
    """Local response normalisation across channels of a 4-d input, PyTorch's legacy form
    (torch.nn.CrossMapLRN2d): out = x (k + alpha / size * s)^-beta, s a sum of squares over a
    window of channels.

    The window is PyTorch's running sum, which its forward builds as: channels
    [max(c - pre + 1, 0), min(c + pre - 1, C - 1)] with pre = (size - 1) // 2 + 1, where
    channel 0's square is never subtracted (it stays in every channel's sum). descent computes
    that sum exactly, so the values match PyTorch; the gradient is the true derivative of these
    values. PyTorch's hand-written backward uses another window (it is not the derivative of
    its own forward), so PyTorch's gradients differ from these.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        x = input
        if x.ndim != 4:
            raise ValueError(f"CrossMapLRN2d: Expected input to be 4D, got {x.ndim}D instead "
                             f"(shape {tuple(x.shape)})")  # fmt: skip
        n, c, h, w = x.shape
        pre = (self.size - 1) // 2 + 1
        sq = x * x  # (N, C, H, W)
        # prefix[j] = sum of the squares of channels < j: (N, C + 1, H, W)
        prefix = cat([creation.zeros(n, 1, h, w, dtype=x.dtype, device=x.device),
                      cumsum(sq, dim=1)], 1)  # fmt: skip
        lo = [0 if ch <= pre else ch - pre + 1 for ch in range(c)]
        hi = [min(ch + pre - 1, c - 1) + 1 for ch in range(c)]
        idx = creation.tensor
        s = index_select(prefix, 1, idx(hi)) - index_select(prefix, 1, idx(lo))
        keep0 = idx([[[float(v > 0)]] for v in lo], dtype=x.dtype)  # (C, 1, 1)
        s = s + sq[:, :1] * keep0  # channel 0's square, never taken out
        return x * (s * (self.alpha / self.size) + self.k) ** (-self.beta)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over inputs (N, C, ...) of any rank >= 2, whose statistics PyTorch reduces
    across the processes of a distributed group. descent runs one process here: the statistics
    are the local batch's, exactly BatchNorm's (PyTorch does the same when no process group is
    initialised). `process_group` is kept for compatibility.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, process_group=None,
                 device=None, dtype=None, *, bias: bool = True) -> None:  # fmt: skip
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias)  # fmt: skip
        self.process_group = process_group

    def _check_input_dim(self, x) -> None:
        if x.ndim < 2:
            raise ValueError(f"SyncBatchNorm: expected at least 2D input (got {x.ndim}D input, "
                             f"shape {tuple(x.shape)})")  # fmt: skip
        if x.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm({self.num_features}): input has {x.shape[1]} "
                             f"channels in dimension 1 (shape {tuple(x.shape)})")  # fmt: skip

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """`module` with every BatchNorm*d replaced by a SyncBatchNorm that shares its
        parameters and buffers (PyTorch's helper); other modules are kept, recursively."""
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, cls):
            out = cls(module.num_features, module.eps, module.momentum, module.affine,
                      module.track_running_stats, process_group)  # fmt: skip
            with no_grad():
                if module.affine:
                    out.weight, out.bias = module.weight, module.bias
                out.running_mean = module.running_mean
                out.running_var = module.running_var
                out.num_batches_tracked = module.num_batches_tracked
            out.training = module.training
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return out
