"""pad: PyTorch's padding modes mapped onto descent's pad op (NumPy's mode names), with
PyTorch's checks (which input ranks each mode pads, reflection narrower than the input,
circular padding wrapping at most once) and negative padding (cropping)."""

from __future__ import annotations

from collections.abc import Sequence

from ... import amp
from ...errors import DescentError, DtypeError
from ...ops import shape as _shape
from ...ops._common import as_tensor
from ...tensor import Tensor

__all__ = ["pad"]


def _check_mode(x: Tensor, pad: tuple, mode: str) -> None:
    """PyTorch's rules for the non-constant modes: `k` padded dims need a (k+1)- or (k+2)-d
    input (an optional batch and the channels), k in 1..3; reflection needs each pad smaller
    than the padded dim, circular at most the dim's size (one wrap)."""
    k = len(pad) // 2
    if k not in (1, 2, 3) or x.ndim not in (k + 1, k + 2):
        raise NotImplementedError(
            f"pad: padding size {len(pad)} is not supported for {x.ndim}D input tensor in "
            f"mode {mode!r}; non-constant padding supports 2D or 3D input with padding size "
            "2, 3D or 4D input with 4, and 4D or 5D input with 6"
        )
    if mode in ("reflect", "replicate") and any(n == 0 for n in x.shape[x.ndim - k - 1 :]):
        raise DescentError(
            f"pad: mode {mode!r} expects non-zero channel and spatial dimensions, got input "
            f"of shape {list(x.shape)}"
        )
    if mode in ("reflect", "replicate") and x._data.dtype.kind == "b":
        raise DtypeError(f"pad: mode {mode!r} is not implemented for bool tensors (PyTorch's "
                         f"{mode}ion_pad has no Bool kernel); pad x.to(torch.uint8) or use "
                         f"mode 'constant' or 'circular'")  # fmt: skip
    for i in range(k):
        dim = x.ndim - 1 - i
        left, right = pad[2 * i], pad[2 * i + 1]
        size = x.shape[dim]
        if mode in ("reflect", "replicate") and size + left + right < 1:
            raise DescentError(
                f"pad: input (dimension {dim} of {list(x.shape)}) is too small for padding "
                f"({left}, {right}). Calculated output size: {size + left + right}"
            )
        if mode == "circular" and size + min(left, 0) + min(right, 0) < 0:
            raise DescentError(
                f"pad: Negative padding value is resulting in an empty dimension: padding "
                f"({left}, {right}) at dimension {dim} of input {list(x.shape)}"
            )
        if mode == "reflect" and (left >= size or right >= size):
            raise DescentError(
                f"pad: Argument #4: Padding size should be less than the corresponding input "
                f"dimension, but got: padding ({left}, {right}) at dimension {dim} of input "
                f"{list(x.shape)} (reflection cannot reach past the opposite edge)"
            )
        if mode == "circular" and (left > size or right > size):
            raise DescentError(
                f"pad: Padding value causes wrapping around more than once: padding "
                f"({left}, {right}) at dimension {dim} of input {list(x.shape)}"
            )


class UnknownPadMode(NotImplementedError, ValueError):
    """An unknown pad mode: PyTorch's NotImplementedError, still the ValueError descent raised
    before."""


def pad(input, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last len(pad)//2 dimensions; `pad` = (left, right, top, bottom, ...) as PyTorch.

    Modes: 'constant' (any rank), 'reflect', 'replicate' and 'circular' (2-D to 5-D inputs,
    as PyTorch); every mode is differentiable. A negative amount crops that side (after the
    positive padding, as PyTorch's index formula).

    Raises:
        NotImplementedError: an unknown mode (also a ValueError).
        ValueError: an odd-length `pad`.
        RuntimeError: more padded dims than the input has, or (reflect / circular) padding
            too large for the input.
        NotImplementedError: a non-constant mode on an input rank PyTorch does not pad.
    """
    np_mode = {
        "constant": "constant",
        "reflect": "reflect",
        "replicate": "edge",
        "circular": "wrap",
    }.get(mode)
    if np_mode is None:
        raise UnknownPadMode(
            f"pad: unknown mode {mode!r}; use constant, reflect, replicate, circular"
        )
    x = as_tensor(input)
    if amp._depth and mode in ("reflect", "replicate") and amp._current() is not None:
        # (the argument `pad` hides this function: globals() has it)
        return amp._float32_op(globals()["pad"])(x, pad, mode, value)
    amounts = tuple(int(p) for p in pad)
    if not amounts:  # nothing to pad: PyTorch returns a copy
        return x.clone()
    if len(amounts) % 2:
        raise DescentError(f"pad: padding length must be divisible by 2, got {amounts}")
    if len(amounts) // 2 > x.ndim:
        raise DescentError(
            f"pad: Padding length should be less than or equal to two times the input "
            f"dimension but got padding length {len(amounts)} and input of dimension {x.ndim}"
        )
    if mode != "constant":
        _check_mode(x, amounts, mode)
    else:  # PyTorch crops with narrow() first: a length below zero raises (0 is empty)
        for i in range(len(amounts) // 2):
            size = x.shape[x.ndim - 1 - i] + min(amounts[2 * i], 0) + min(amounts[2 * i + 1], 0)
            if size < 0:
                raise DescentError(
                    f"pad: padding {amounts[2 * i: 2 * i + 2]} of dimension {x.ndim - 1 - i} of "
                    f"input {list(x.shape)} crops to {size} elements: narrow(): length must be "
                    f"non-negative"
                )
    positive = tuple(max(p, 0) for p in amounts)
    if mode == "circular" and any(p < 0 for p in amounts):
        # ATen's circular pad crops first and wraps the cropped tensor: (-1, 1) on [a, b, c, d]
        # gives [b, c, d, b], not [b, c, d, a] (cropping after the wrap).
        x = _crop(x, amounts)
        return _shape.pad(x, positive, mode=np_mode, value=0.0)
    y = _shape.pad(x, positive, mode=np_mode, value=0.0 if value is None else value)
    if any(p < 0 for p in amounts):
        y = _crop(y, amounts)
    return y


def _crop(y: Tensor, amounts: tuple) -> Tensor:
    """The negative amounts of `amounts` as a slice: pad (left, right) of dim d, counted from
    the last, crops -left / -right elements of that side."""
    index = [slice(None)] * y.ndim
    for i in range(len(amounts) // 2):
        left, right = amounts[2 * i], amounts[2 * i + 1]
        size = y.shape[y.ndim - 1 - i]
        index[y.ndim - 1 - i] = slice(-min(left, 0), size + min(right, 0))
    return y[tuple(index)]
