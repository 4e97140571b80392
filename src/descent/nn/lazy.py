"""Lazy layers (torch.nn's LazyLinear, LazyConv*, LazyConvTranspose*, LazyBatchNorm*,
LazyInstanceNorm*): the input size (in_features, in_channels, num_features) is read from the
first input.

Until then the parameters are `nn.parameter.UninitializedParameter` and the running statistics
`nn.parameter.UninitializedBuffer` (`nn.parameter.is_lazy` holds), as PyTorch's: 0-element
placeholders (PyTorch's refuse every operation; descent's read as empty tensors). The first
forward's `initialize_parameters(input)` (or a load_state_dict carrying the real shapes) gives
them their shapes, keeping the same Parameter objects, and runs the layer's reset_parameters
(PyTorch's initialisation); the forward then turns the module into the plain class
(`cls_to_become`: a LazyLinear becomes a Linear), as PyTorch does. As in PyTorch, build the
optimizer after that first forward (a "dry run"): before it, the parameters have no elements.
"""

from __future__ import annotations

from .. import backend
from ..tensor import Tensor
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
    size (`_size_attr`), how to read it from the input (`_infer`), the shapes of their
    tensors given it (`_shapes`) and which buffers wait for it (`_lazy_buffers`)."""

    cls_to_become: type | None = None
    _size_attr = ""
    _lazy_buffers: tuple[str, ...] = ()

    def has_uninitialized_params(self) -> bool:
        """Whether a parameter or buffer is still a placeholder (PyTorch's: `is_lazy`)."""
        from .buffer import is_lazy  # noqa: PLC0415 - buffer imports nn modules

        return any(is_lazy(t) for t in (*self._parameters.values(), *self._buffers.values()))

    def _mark_uninitialized(self) -> None:
        """Until the first input, the parameters are PyTorch's UninitializedParameter (the
        same objects: `isinstance(p, nn.parameter.UninitializedParameter)` holds, as in
        PyTorch), the running statistics UninitializedBuffer; plain Parameters and tensors
        once materialised."""
        from .buffer import UninitializedBuffer, UninitializedParameter  # noqa: PLC0415

        for p in self._parameters.values():
            if p is not None and type(p) is Parameter:
                p.__class__ = UninitializedParameter
        for name in self._lazy_buffers:
            b = self._buffers.get(name)
            if b is not None:
                self._buffers[name] = UninitializedBuffer(device=b.device, dtype=b.dtype)

    def _shapes(self, size: int) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def _infer(self, input) -> int:
        return int(input.shape[1] if input.ndim > self._no_batch_ndim() else input.shape[0])

    def _no_batch_ndim(self) -> int:
        return 1

    def _materialize(self, size: int) -> None:
        """The tensors get their shapes (the parameters stay the same objects, as PyTorch's
        materialize), then reset_parameters initialises them. The class stays the lazy one
        until forward, as PyTorch's."""
        from .buffer import is_lazy  # noqa: PLC0415

        setattr(self, self._size_attr, size)
        for name, shape in self._shapes(size).items():
            t = self._parameters.get(name)
            if t is None and self._buffers.get(name) is not None:
                b = self._buffers[name]
                xp = backend.get_array_module(b._data)
                if is_lazy(b):  # an UninitializedBuffer becomes a plain tensor
                    self._buffers[name] = Tensor._wrap(xp.zeros(shape, dtype=b._data.dtype))
                else:
                    b._data = xp.zeros(shape, dtype=b._data.dtype)
                    b._version += 1
                continue
            if t is None:
                continue
            xp = backend.get_array_module(t._data)
            t._data = xp.zeros(shape, dtype=t._data.dtype)  # the same object, new shape
            t._version += 1
        for p in self._parameters.values():  # (a bias's shape was known: it keeps it)
            if p is not None and is_lazy(p):
                p.__class__ = Parameter  # UninitializedParameter's cls_to_become
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nothing to initialise before the shapes (the constructor's call included)
        if getattr(self, self._size_attr) != 0 and not self.has_uninitialized_params():
            super().reset_parameters()

    def initialize_parameters(self, input) -> None:
        """Give the parameters their shapes from `input` (what the first forward does); the
        module keeps its lazy class until forward, as PyTorch's. A lazy norm without
        parameters or running statistics reads its num_features too (PyTorch's stays 0;
        descent's norms check the input's channels against it)."""
        if self.has_uninitialized_params() or getattr(self, self._size_attr) == 0:
            self._materialize(self._infer(input))

    def forward(self, input, *args, **kwargs):
        self.initialize_parameters(input)
        if self.has_uninitialized_params():  # PyTorch's words
            raise RuntimeError(f"module {type(self).__name__} has not been fully initialized")
        self.__class__ = self.cls_to_become
        return self.forward(input, *args, **kwargs)  # now the plain class's forward

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        # A placeholder is saved as one (detached), as PyTorch's state_dict of a lazy module
        from .buffer import UninitializedBuffer, UninitializedParameter, is_lazy  # noqa: PLC0415

        super()._save_to_state_dict(destination, prefix, keep_vars)
        if keep_vars:
            return
        for name, t in (*self._parameters.items(), *self._buffers.items()):
            if prefix + name in destination and is_lazy(t):
                cls = UninitializedParameter if isinstance(t, Parameter) else UninitializedBuffer
                saved = cls(False, t.device, t.dtype)
                saved._data = t._data  # the 0-element placeholder's shape: loads into a lazy twin
                destination[prefix + name] = saved

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        # The checkpoint's shapes say the inferred size: materialize before loading.
        from .buffer import is_lazy  # noqa: PLC0415

        if self.has_uninitialized_params():
            for name, (axis, _) in self._size_from.items():
                value = state_dict.get(name)
                if value is not None and not is_lazy(value):
                    self._materialize(int(value.shape[axis]))
                    break
        return Module.load_state_dict(self, state_dict, strict, assign)


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
    _lazy_buffers = ("running_mean", "running_var")  # num_batches_tracked stays a tensor
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
