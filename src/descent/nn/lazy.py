"""Lazy layers (torch.nn's LazyLinear, LazyConv*, LazyConvTranspose*, LazyBatchNorm*,
LazyInstanceNorm*): the input size (in_features, in_channels, num_features) is read from the
first input.

Until then the parameters and buffers exist with a 0 in place of the unknown size (the
parameters as `nn.parameter.UninitializedParameter`, as PyTorch's). The first
forward (or a load_state_dict carrying the real shapes) gives them their shapes, keeping the
same Parameter objects, runs the layer's reset_parameters (PyTorch's initialisation), and
turns the module into the plain class (`cls_to_become`: a LazyLinear becomes a Linear), as
PyTorch does. As in PyTorch, build the optimizer after that first forward (a "dry run"): before
it, the parameters have no elements.
"""

from __future__ import annotations

from .. import backend
from .conv import Conv1d, Conv2d
from .conv_transpose import Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .instancenorm import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d
from .linear import Linear
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d
from .normalization_extra import BatchNorm3d
from .parameter import Parameter

__all__ = [
    "LazyLinear",
    "LazyConv1d",
    "LazyConv2d",
    "LazyConv3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
    "LazyInstanceNorm1d",
    "LazyInstanceNorm2d",
    "LazyInstanceNorm3d",
]


class LazyModuleMixin:
    """Shape inference on the first call. Subclasses say which attribute holds the inferred
    size (`_size_attr`), how to read it from the input (`_infer`) and the shapes of their
    tensors given it (`_shapes`)."""

    cls_to_become: type | None = None
    _size_attr = ""

    def has_uninitialized_params(self) -> bool:
        return getattr(self, self._size_attr) == 0

    def _mark_uninitialized(self) -> None:
        """Until the first input, the parameters are PyTorch's UninitializedParameter (the
        same objects: `isinstance(p, nn.parameter.UninitializedParameter)` holds, as in
        PyTorch), Parameters again once materialised."""
        from .buffer import UninitializedParameter  # noqa: PLC0415 - buffer imports nn modules

        if self.has_uninitialized_params():
            for p in self._parameters.values():
                if p is not None and type(p) is Parameter:
                    p.__class__ = UninitializedParameter

    def _shapes(self, size: int) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def _infer(self, input) -> int:
        return int(input.shape[1] if input.ndim > self._no_batch_ndim() else input.shape[0])

    def _no_batch_ndim(self) -> int:
        return 1

    def _materialize(self, size: int) -> None:
        setattr(self, self._size_attr, size)
        for name, shape in self._shapes(size).items():
            t = self._parameters.get(name)
            if t is None:
                t = self._buffers.get(name)
            if t is None:
                continue
            xp = backend.get_array_module(t._data)
            t._data = xp.zeros(shape, dtype=t._data.dtype)  # the same object, new shape
            t._version += 1
        for p in self._parameters.values():
            if p is not None and isinstance(p, Parameter) and type(p) is not Parameter:
                p.__class__ = Parameter  # UninitializedParameter's cls_to_become
        self.reset_parameters()
        self.__class__ = self.cls_to_become

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params():  # nothing to initialise before the shapes
            super().reset_parameters()

    def initialize_parameters(self, input) -> None:
        """Give the parameters their shapes from `input` (what the first forward does)."""
        if self.has_uninitialized_params():
            self._materialize(self._infer(input))

    def forward(self, input, *args, **kwargs):
        self.initialize_parameters(input)
        return self.forward(input, *args, **kwargs)  # now the plain class's forward

    def load_state_dict(self, state_dict, strict: bool = True):
        # The checkpoint's shapes say the inferred size: materialize before loading.
        if self.has_uninitialized_params():
            for name, (axis, _) in self._size_from.items():
                value = state_dict.get(name)
                if value is not None:
                    self._materialize(int(value.shape[axis]))
                    break
        return Module.load_state_dict(self, state_dict, strict)  # the class may have changed


class LazyLinear(LazyModuleMixin, Linear):
    """A Linear whose in_features is the last dim of its first input."""

    cls_to_become = Linear
    _size_attr = "in_features"
    _size_from = {"weight": (1, None)}

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(0, out_features, bias, device, dtype)
        self._mark_uninitialized()

    def _infer(self, input) -> int:
        return int(input.shape[-1])

    def _shapes(self, size: int):
        return {"weight": (self.out_features, size)}


class _LazyConvMixin(LazyModuleMixin):
    _size_attr = "in_channels"
    _size_from = {"weight": (1, None)}
    _transposed = False

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, *args, **kwargs):
        super().__init__(0, out_channels, kernel_size, stride, padding, *args, **kwargs)
        self._mark_uninitialized()

    def _no_batch_ndim(self) -> int:
        return self._n + 1

    def _shapes(self, size: int):
        if self._transposed:
            return {"weight": (size, self.out_channels // self.groups, *self.kernel_size)}
        return {"weight": (self.out_channels, size // self.groups, *self.kernel_size)}


class _LazyConvTransposeMixin(_LazyConvMixin):
    _size_from = {"weight": (0, None)}
    _transposed = True


class LazyConv1d(_LazyConvMixin, Conv1d):
    """A Conv1d whose in_channels is read from its first input."""

    cls_to_become = Conv1d


class LazyConv2d(_LazyConvMixin, Conv2d):
    """A Conv2d whose in_channels is read from its first input."""

    cls_to_become = Conv2d


class LazyConv3d(_LazyConvMixin, Conv3d):
    """A Conv3d whose in_channels is read from its first input."""

    cls_to_become = Conv3d


class LazyConvTranspose1d(_LazyConvTransposeMixin, ConvTranspose1d):
    """A ConvTranspose1d whose in_channels is read from its first input."""

    cls_to_become = ConvTranspose1d


class LazyConvTranspose2d(_LazyConvTransposeMixin, ConvTranspose2d):
    """A ConvTranspose2d whose in_channels is read from its first input."""

    cls_to_become = ConvTranspose2d


class LazyConvTranspose3d(_LazyConvTransposeMixin, ConvTranspose3d):
    """A ConvTranspose3d whose in_channels is read from its first input."""

    cls_to_become = ConvTranspose3d


class _LazyNormMixin(LazyModuleMixin):
    _size_attr = "num_features"
    _size_from = {"weight": (0, None), "running_mean": (0, None)}

    def __init__(self, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None) -> None:  # fmt: skip
        super().__init__(0, eps, momentum, affine, track_running_stats, device, dtype)
        self._mark_uninitialized()

    def _shapes(self, size: int):
        return {name: (size,) for name in ("weight", "bias", "running_mean", "running_var")}


class LazyBatchNorm1d(_LazyNormMixin, BatchNorm1d):
    """A BatchNorm1d whose num_features is dim 1 of its first input."""

    cls_to_become = BatchNorm1d

    def _infer(self, input) -> int:
        return int(input.shape[1])


class LazyBatchNorm2d(_LazyNormMixin, BatchNorm2d):
    """A BatchNorm2d whose num_features is dim 1 of its first input."""

    cls_to_become = BatchNorm2d

    def _infer(self, input) -> int:
        return int(input.shape[1])


class LazyBatchNorm3d(_LazyNormMixin, BatchNorm3d):
    """A BatchNorm3d whose num_features is dim 1 of its first input."""

    cls_to_become = BatchNorm3d

    def _infer(self, input) -> int:
        return int(input.shape[1])


class _LazyInstanceNormMixin(_LazyNormMixin):
    # PyTorch's lazy instance norms default to affine=True, track_running_stats=True (its lazy
    # norm base class), unlike InstanceNorm1d/2d/3d.

    def _no_batch_ndim(self) -> int:
        return self._no_batch_dim


class LazyInstanceNorm1d(_LazyInstanceNormMixin, InstanceNorm1d):
    """An InstanceNorm1d whose num_features is the channel dim of its first input."""

    cls_to_become = InstanceNorm1d


class LazyInstanceNorm2d(_LazyInstanceNormMixin, InstanceNorm2d):
    """An InstanceNorm2d whose num_features is the channel dim of its first input."""

    cls_to_become = InstanceNorm2d


class LazyInstanceNorm3d(_LazyInstanceNormMixin, InstanceNorm3d):
    """An InstanceNorm3d whose num_features is the channel dim of its first input."""

    cls_to_become = InstanceNorm3d
