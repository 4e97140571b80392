"""torch.nn.Buffer, UninitializedParameter and UninitializedBuffer (docs/torch_gaps_nn.md).

`Buffer(tensor)` marks a tensor as module state: `module.x = nn.Buffer(t)` registers it as a
buffer (`persistent=False` keeps it out of `state_dict()`), as `register_buffer` does.

`UninitializedParameter` / `UninitializedBuffer` are PyTorch's placeholders for a tensor whose
shape is not known yet: a 0-element tensor until `materialize(shape)` gives it its shape (zeros;
PyTorch leaves it uninitialised) and turns it into a plain `Parameter` / `Tensor`-backed
`Buffer`; `is_lazy(t)` tells a placeholder. descent's Lazy modules (nn/lazy.py) hold their
parameters as UninitializedParameter and their running statistics as UninitializedBuffer until
the first input, as PyTorch's.
"""

from __future__ import annotations

from .. import creation
from ..tensor import Tensor
from .parameter import Parameter

# is_lazy is torch.nn.parameter's only (nn/parameter.py), not torch.nn's
__all__ = ["Buffer", "UninitializedParameter", "UninitializedBuffer"]


class Buffer(Tensor):
    """A tensor that a Module registers as a buffer on attribute assignment.

    Args:
        data: a Tensor (its memory shared and its requires_grad kept, as PyTorch's detach) or
            array-like data; None gives an empty tensor.
        persistent: whether the buffer appears in `state_dict()`.
    """

    __slots__ = ("persistent",)

    def __init__(self, data=None, *, persistent: bool = True) -> None:
        requires_grad = False
        dtype = None
        if data is None:
            data = []
        if isinstance(data, Tensor):
            requires_grad, dtype = data.requires_grad, data.dtype
            data = data._data
        super().__init__(data, dtype=dtype, requires_grad=requires_grad)
        self.persistent = bool(persistent)


class _Uninitialized:
    """The shared part: `materialize` gives the placeholder its shape and its plain class."""

    __slots__ = ()
    cls_to_become: type = Tensor

    def materialize(self, shape, device=None, dtype=None) -> None:
        """Give the tensor `shape` (filled with zeros), on `device` with `dtype` when given,
        and turn it into `cls_to_become`."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        dtype = self.dtype if dtype is None else dtype
        device = self.device if device is None else device
        self._data = creation.zeros(*shape, dtype=dtype, device=device)._data
        self.__class__ = self.cls_to_become

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    __str__ = __repr__


class UninitializedParameter(_Uninitialized, Parameter):
    """A Parameter whose shape is not known yet (PyTorch's lazy placeholder); `materialize`
    turns it into a Parameter."""

    __slots__ = ()
    cls_to_become = Parameter

    def __init__(self, requires_grad: bool = True, device=None, dtype=None) -> None:
        Parameter.__init__(self, creation.empty(0, device=device, dtype=dtype), requires_grad)


class UninitializedBuffer(_Uninitialized, Buffer):
    """A Buffer whose shape is not known yet; `materialize` turns it into a Buffer."""

    __slots__ = ()
    cls_to_become = Buffer

    def __init__(self, requires_grad: bool = False, device=None, dtype=None,
                 persistent: bool = True) -> None:  # fmt: skip
        Buffer.__init__(self, creation.empty(0, device=device, dtype=dtype), persistent=persistent)
        self.requires_grad = requires_grad


def is_lazy(param) -> bool:
    """torch.nn.parameter.is_lazy: whether `param` is an UninitializedParameter or
    UninitializedBuffer (a placeholder whose shape is not known yet)."""
    return isinstance(param, _Uninitialized)
