"""torch.signal.windows: the window functions of SciPy's `scipy.signal.windows`, with
PyTorch's signatures (`M`, then keywords `sym=True`, `dtype`, `layout`, `device`,
`requires_grad`) and checks.

Each window follows PyTorch's formula (torch/signal/windows/windows.py): a `linspace` of M
points `k`, then a closed form in `k`. `sym=True` gives the symmetric window (filter design);
`sym=False` the periodic one (spectral analysis), whose spacing divides by M instead of M - 1.
The values are computed in float64 and stored in `dtype` (float32 or float64, the default dtype
when None); PyTorch computes in `dtype`, so float32 agrees to rounding (~1e-7), not bit for bit.

A window is a constant (no input is differentiable): `requires_grad=True` gives a leaf that
requires grad (PyTorch's result is the output of its internal ops, a non-leaf).

Formulas: Harris, "On the use of windows for harmonic analysis with the discrete Fourier
transform", Proc. IEEE 66(1), 1978; Nuttall, IEEE Trans. ASSP 29(1), 1981 (nuttall's
coefficients); Kaiser & Schafer, IEEE Trans. ASSP 28(1), 1980 (kaiser).
"""

from __future__ import annotations

import math as _math
from collections.abc import Iterable as _Iterable

import numpy as _np

from ..creation import _finish, _float_dtype, _xp

__all__ = [
    "bartlett", "blackman", "cosine", "exponential", "gaussian", "general_cosine",
    "general_hamming", "hamming", "hann", "kaiser", "nuttall",
]  # fmt: skip


def _checks(op: str, M: int, dtype, layout) -> _np.dtype:
    """PyTorch's common checks (all ValueError); returns the NumPy dtype of the window."""
    dt = _float_dtype(dtype)
    if M < 0:
        raise ValueError(f"{op} requires non-negative window length, got M={M}")
    if layout is not None and str(layout).rpartition(".")[2] != "strided":
        raise ValueError(f"{op} is implemented for strided tensors only, got: {layout}")
    if dt not in (_np.float32, _np.float64):
        raise ValueError(f"{op} expects float32 or float64 dtypes, got: {dt}")
    return dt


def _out(values, dt, device, requires_grad):
    """The float64 `values` stored as a window tensor of dtype `dt`."""
    arr = _np.asarray(values, dtype=_np.float64).astype(dt)
    return _finish(_xp(device).asarray(arr), dt, requires_grad, None)


def _linspace(start: float, end: float, M: int):
    """`M` points from start to end in float64 (np.linspace: the ends are exact)."""
    return _np.linspace(float(start), float(end), int(M), dtype=_np.float64)


def exponential(M: int, *, center: float | None = None, tau: float = 1.0, sym: bool = True,
                dtype=None, layout=None, device=None, requires_grad: bool = False):  # fmt: skip
    """The exponential (Poisson) window exp(-|n - c| / tau), c = `center`, by default the
    middle: (M - 1) / 2, or M / 2 when `sym=False`.

    Raises:
        ValueError: M < 0, tau <= 0, a `center` with `sym=True`, or a non-float dtype.
    """
    dt = _checks("exponential", M, dtype, layout)
    if tau <= 0:
        raise ValueError(f"Tau must be positive, got: {tau} instead.")
    if sym and center is not None:
        raise ValueError("Center must be None for symmetric windows")
    if M == 0:
        return _out([], dt, device, requires_grad)
    if center is None:
        center = (M if not sym and M > 1 else M - 1) / 2.0
    k = _linspace(-center / tau, (-center + (M - 1)) / tau, M)
    return _out(_np.exp(-_np.abs(k)), dt, device, requires_grad)


def cosine(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
           requires_grad: bool = False):  # fmt: skip
    """The cosine (sine) window sin(pi (n + 0.5) / M) (M + 1 when `sym=False`)."""
    dt = _checks("cosine", M, dtype, layout)
    if M == 0:
        return _out([], dt, device, requires_grad)
    step = _math.pi / (M + 1 if not sym and M > 1 else M)
    k = _linspace(0.5 * step, (0.5 + (M - 1)) * step, M)
    return _out(_np.sin(k), dt, device, requires_grad)


def gaussian(M: int, *, std: float = 1.0, sym: bool = True, dtype=None, layout=None,
             device=None, requires_grad: bool = False):  # fmt: skip
    """The Gaussian window exp(-((n - c) / std)^2 / 2), centred as `exponential`.

    Raises:
        ValueError: M < 0, std <= 0, or a non-float dtype.
    """
    dt = _checks("gaussian", M, dtype, layout)
    if std <= 0:
        raise ValueError(f"Standard deviation must be positive, got: {std} instead.")
    if M == 0:
        return _out([], dt, device, requires_grad)
    start = -(M if not sym and M > 1 else M - 1) / 2.0
    scale = 1 / (std * _math.sqrt(2))
    k = _linspace(start * scale, (start + (M - 1)) * scale, M)
    return _out(_np.exp(-(k**2)), dt, device, requires_grad)


def kaiser(M: int, *, beta: float = 12.0, sym: bool = True, dtype=None, layout=None,
           device=None, requires_grad: bool = False):  # fmt: skip
    """The Kaiser window I0(beta sqrt(1 - (2 n / (M - 1) - 1)^2)) / I0(beta), I0 the modified
    Bessel function of order 0 (M instead of M - 1 when `sym=False`).

    Raises:
        ValueError: M < 0, beta < 0, or a non-float dtype.
    """
    dt = _checks("kaiser", M, dtype, layout)
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got: {beta} instead.")
    if M <= 1:
        return _out(_np.ones(M), dt, device, requires_grad)
    beta = float(beta)
    step = 2.0 * beta / (M if not sym else M - 1)
    k = _linspace(-beta, min(beta, -beta + (M - 1) * step), M)
    # |k| <= beta, but rounding may leave beta^2 - k^2 a hair below 0 at the ends
    return _out(_np.i0(_np.sqrt(_np.maximum(beta * beta - k * k, 0.0))) / _np.i0(beta), dt, device,
                requires_grad)  # fmt: skip


def bartlett(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
             requires_grad: bool = False):  # fmt: skip
    """The triangular Bartlett window 1 - |2 n / (M - 1) - 1| (M instead of M - 1 when
    `sym=False`)."""
    dt = _checks("bartlett", M, dtype, layout)
    if M <= 1:
        return _out(_np.ones(M), dt, device, requires_grad)
    step = 2 / (M if not sym else M - 1)
    k = _linspace(-1, -1 + (M - 1) * step, M)
    return _out(1 - _np.abs(k), dt, device, requires_grad)


def general_cosine(M: int, *, a: _Iterable, sym: bool = True, dtype=None, layout=None,
                   device=None, requires_grad: bool = False):  # fmt: skip
    """The generalised cosine window sum_i (-1)^i a_i cos(2 pi i n / (M - 1)) (M instead of
    M - 1 when `sym=False`); Hann, Hamming, Blackman and Nuttall are instances.

    Raises:
        TypeError: `a` is not a list or tuple of coefficients.
        ValueError: `a` is empty, M < 0, or a non-float dtype.
    """
    dt = _checks("general_cosine", M, dtype, layout)
    if M <= 1:
        return _out(_np.ones(M), dt, device, requires_grad)
    if not isinstance(a, _Iterable):
        raise TypeError("Coefficients must be a list/tuple")
    coeffs = [float(c) for c in a]
    if not coeffs:
        raise ValueError("Coefficients cannot be empty")
    step = 2 * _math.pi / (M if not sym else M - 1)
    k = _linspace(0, (M - 1) * step, M)  # (M,)
    w = sum((-1) ** i * c * _np.cos(i * k) for i, c in enumerate(coeffs))
    return _out(w, dt, device, requires_grad)


def general_hamming(M: int, *, alpha: float = 0.54, sym: bool = True, dtype=None, layout=None,
                    device=None, requires_grad: bool = False):  # fmt: skip
    """alpha - (1 - alpha) cos(2 pi n / (M - 1)): general_cosine with a = [alpha, 1 - alpha]."""
    return general_cosine(M, a=[alpha, 1.0 - alpha], sym=sym, dtype=dtype, layout=layout,
                          device=device, requires_grad=requires_grad)  # fmt: skip


def hamming(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
            requires_grad: bool = False):  # fmt: skip
    """The Hamming window 0.54 - 0.46 cos(2 pi n / (M - 1))."""
    return general_hamming(M, sym=sym, dtype=dtype, layout=layout, device=device,
                           requires_grad=requires_grad)  # fmt: skip


def hann(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
         requires_grad: bool = False):  # fmt: skip
    """The Hann window 0.5 - 0.5 cos(2 pi n / (M - 1))."""
    return general_hamming(M, alpha=0.5, sym=sym, dtype=dtype, layout=layout, device=device,
                           requires_grad=requires_grad)  # fmt: skip


def blackman(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
             requires_grad: bool = False):  # fmt: skip
    """The Blackman window 0.42 - 0.5 cos(2 pi n / (M - 1)) + 0.08 cos(4 pi n / (M - 1))."""
    return general_cosine(M, a=[0.42, 0.5, 0.08], sym=sym, dtype=dtype, layout=layout,
                          device=device, requires_grad=requires_grad)  # fmt: skip


def nuttall(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
            requires_grad: bool = False):  # fmt: skip
    """Nuttall's minimum 4-term Blackman-Harris window (Nuttall 1981, his coefficients)."""
    return general_cosine(M, a=[0.3635819, 0.4891775, 0.1365995, 0.0106411], sym=sym,
                          dtype=dtype, layout=layout, device=device,
                          requires_grad=requires_grad)  # fmt: skip
