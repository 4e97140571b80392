"""torch.stft and torch.istft: short-time Fourier transforms over descent.fft (docs/complex.md).

Both are compositions of differentiable ops (padding, frame gathering by an index array, a
window product, the one-sided or full FFT, and for istft an overlap-add by index_add and the
division by the summed squared window), so their gradients follow from those ops' rules. The
framing and normalisation are PyTorch's (aten/src/ATen/native/SpectralOps.cpp).
"""

from __future__ import annotations

import numpy as np

from . import backend, fft, tensor_methods
from .ops._common import as_tensor
from .ops.complex import view_as_complex, view_as_real
from .ops.indexing import index_add
from .ops.shape import pad as _pad
from .tensor import Tensor

__all__ = ["istft", "stft"]


def _window(window, win_length: int, n_fft: int, like: Tensor, op: str) -> Tensor:
    """The window zero-padded to n_fft, centred (PyTorch's rule); ones when None."""
    xp = backend.get_array_module(like._data)
    real = like._data.real.dtype if like._data.dtype.kind == "c" else like._data.dtype
    if window is None:
        window = Tensor._wrap(xp.ones(win_length, dtype=real))
    window = as_tensor(window)
    if window.ndim != 1 or window.shape[0] != win_length:
        raise RuntimeError(
            f"{op}: expected a 1D window tensor of size equal to win_length={win_length}, but "
            f"got window with size {list(window.shape)}"
        )
    if win_length < n_fft:
        left = (n_fft - win_length) // 2
        window = _pad(window, (left, n_fft - win_length - left))
    return window


def _frame_index(xp, n_frames: int, n_fft: int, hop: int):
    """(n_frames, n_fft) sample positions of the frames."""
    return xp.arange(n_frames)[:, None] * hop + xp.arange(n_fft)[None, :]


def stft(
    input,
    n_fft: int,
    hop_length: int | None = None,
    win_length: int | None = None,
    window=None,
    center: bool = True,
    pad_mode: str = "reflect",
    normalized: bool = False,
    onesided: bool | None = None,
    return_complex: bool | None = None,
) -> Tensor:
    """The short-time Fourier transform, as torch.stft: frames of n_fft samples every
    hop_length (n_fft // 4), times the window (ones of win_length = n_fft, zero-padded to n_fft
    and centred), transformed: (n_fft // 2 + 1 or n_fft, n_frames) per signal.

    Args:
        input: (L,) or (B, L), real or complex.
        center: pad n_fft // 2 on both sides first (pad_mode: 'reflect', 'constant', ...).
        normalized: multiply by n_fft ** -0.5.
        onesided: the n_fft // 2 + 1 non-negative frequencies (default for a real input and
            window).
        return_complex: True for a complex result (required for real inputs, as PyTorch);
            False gives its real view (..., 2).

    Raises:
        RuntimeError: return_complex not given for a real input, or sizes out of range.
    """
    x = as_tensor(input)
    if x._data.dtype.kind in "biu":
        raise RuntimeError(f"stft: expected a floating or complex input, got {x.dtype}")
    win_is_complex = window is not None and as_tensor(window)._data.dtype.kind == "c"
    complex_in = x._data.dtype.kind == "c" or win_is_complex
    if return_complex is None:
        if not complex_in:
            raise RuntimeError(
                "stft requires the return_complex parameter be given for real inputs, and will "
                "further require that return_complex=True in a future PyTorch release."
            )
        return_complex = True
    if x.ndim not in (1, 2):
        raise RuntimeError(f"stft: expected a 1D or 2D tensor, but got {x.ndim}D")
    hop = n_fft // 4 if hop_length is None else int(hop_length)
    win_length = n_fft if win_length is None else int(win_length)
    batched = x.ndim == 2
    if not batched:
        x = x.reshape(1, -1)
    if center:
        half = n_fft // 2
        x = _pad(x, (half, half), mode=pad_mode)
    length = x.shape[-1]
    if not 0 < n_fft <= length:
        raise RuntimeError(f"stft: expected 0 < n_fft <= {length}, but got n_fft={n_fft}")
    if hop <= 0:
        raise RuntimeError(f"stft: expected hop_length > 0, but got hop_length={hop}")
    if not 0 < win_length <= n_fft:
        raise RuntimeError(
            f"stft: expected 0 < win_length <= n_fft, but got win_length={win_length}"
        )
    w = _window(window, win_length, n_fft, x, "stft")
    n_frames = 1 + (length - n_fft) // hop
    xp = backend.get_array_module(x._data)
    frames = x[:, Tensor._wrap(_frame_index(xp, n_frames, n_fft, hop))] * w  # (B, F, n_fft)
    norm = "ortho" if normalized else "backward"
    if onesided is None:
        onesided = not complex_in
    if onesided:
        if complex_in:
            raise RuntimeError(
                "Cannot have onesided output if window or input is complex"
            )  # fmt: skip
        spec = fft.rfft(frames, dim=-1, norm=norm)
    else:
        spec = fft.fft(frames, dim=-1, norm=norm)
    spec = spec.transpose(1, 2)  # (B, n_freq, n_frames)
    if not batched:
        spec = spec[0]
    return spec if return_complex else view_as_real(spec)


def istft(
    input,
    n_fft: int,
    hop_length: int | None = None,
    win_length: int | None = None,
    window=None,
    center: bool = True,
    normalized: bool = False,
    onesided: bool | None = None,
    length: int | None = None,
    return_complex: bool = False,
) -> Tensor:
    """The inverse of stft, as torch.istft: each frame inverse-transformed, windowed and
    overlap-added, then divided by the overlap-added squared window (least-squares inverse).

    Raises:
        RuntimeError: a real input, or a window whose overlap-add has zeros in the kept range
            (PyTorch's "window overlap add min" check).
    """
    z = as_tensor(input)
    if z._data.dtype.kind != "c":
        if z.ndim >= 1 and z.shape[-1] == 2:
            z = view_as_complex(z)  # the older real (..., 2) form
        else:
            raise RuntimeError("istft requires a complex-valued input tensor")
    hop = n_fft // 4 if hop_length is None else int(hop_length)
    win_length = n_fft if win_length is None else int(win_length)
    batched = z.ndim == 3
    if not batched:
        z = z.reshape((1,) + tuple(z.shape))
    n_freq, n_frames = z.shape[1], z.shape[2]
    if onesided is None:
        onesided = n_freq != n_fft
    if onesided and n_freq != n_fft // 2 + 1:
        raise RuntimeError(
            f"istft: expected the frequency dimension (3rd to the last) of the input tensor to "
            f"match n_fft / 2 + 1 when onesided=True, but got {n_freq}"
        )
    norm = "ortho" if normalized else "backward"
    z = z.transpose(1, 2)  # (B, n_frames, n_freq)
    if return_complex:
        frames = fft.ifft(z, n=n_fft, dim=-1, norm=norm)
    else:
        if not onesided:
            z = z[..., : n_fft // 2 + 1]
        frames = fft.irfft(z, n=n_fft, dim=-1, norm=norm)
    w = _window(window, win_length, n_fft, frames, "istft")
    frames = frames * w  # (B, F, n_fft)
    xp = backend.get_array_module(frames._data)
    expected = n_fft + hop * (n_frames - 1)
    idx = Tensor._wrap(_frame_index(xp, n_frames, n_fft, hop).reshape(-1))
    batch = frames.shape[0]
    y = Tensor._wrap(xp.zeros((batch, expected), dtype=frames._data.dtype))
    y = index_add(y, 1, idx, frames.reshape(batch, -1))
    w2 = w * w  # PyTorch's window.pow(2): the window's gradient flows through it too
    envelope = index_add(
        Tensor._wrap(xp.zeros(expected, dtype=w2._data.dtype)),
        0,
        idx,
        w2.reshape(1, -1).expand(n_frames, n_fft).reshape(-1),
    )
    start = n_fft // 2 if center else 0
    if length is not None:
        end = start + int(length)
    else:
        end = expected - n_fft // 2 if center else expected
    y, env = y[:, start:end], envelope[start:end]
    if env.numel() and float(np.abs(backend.as_numpy(env._data)).min()) < 1e-11:
        raise RuntimeError(
            "istft(...): window overlap add min: the window's overlap-add has zeros in the "
            "kept range (NOLA condition); use a window and hop_length that overlap"
        )
    y = y / env
    if end > expected:
        y = _pad(y, (0, end - expected))
    return y if batched else y[0]


# x.stft(...) / x.istft(...): Tensor's methods reach these through the ops table.
tensor_methods.register_ops({"stft": stft, "istft": istft})
