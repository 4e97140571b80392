"""PyTorch's creation functions of the math gaps (docs/torch_gaps_math.md): `logspace`, the
deprecated `range` (inclusive end), `scalar_tensor` and the signal windows `hann_window`,
`hamming_window`, `blackman_window`, `bartlett_window` and `kaiser_window`.

They sit beside `descent.creation` (whose `_finish` they use for device and requires_grad)
and are exported at the top level through `__all__`. The windows are computed in float64 and
stored in the requested floating dtype (float32 by default); PyTorch computes in that dtype,
so float32 values agree to rounding (~1e-7), not bit for bit.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .creation import _check_space_args, _finish, _float_dtype, _xp
from .creation_integer import integer_space

__all__ = [
    "logspace", "range", "scalar_tensor", "hann_window", "hamming_window", "blackman_window",
    "bartlett_window", "kaiser_window",
]  # fmt: skip


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, layout=None,
             device=None, requires_grad: bool = False):  # fmt: skip
    """`steps` values from base^start to base^end, evenly spaced in the exponent
    (torch.logspace). An integer dtype truncates the values, as PyTorch.

    Raises:
        RuntimeError: steps < 0.
    """
    del layout  # strided only
    _check_space_args("logspace", start, end, steps)
    if steps < 0:
        raise RuntimeError(f"logspace: number of steps must be non-negative, got {steps}")
    dt = _float_dtype(dtype)
    if np.dtype(dt).kind in "iu":  # PyTorch's kernel: bounds truncated to the dtype first
        start, end = (v.item() if hasattr(v, "item") else v for v in (start, end))
        arr = integer_space(start, end, int(steps), np.dtype(dt), base=base)
        return _finish(_xp(device).asarray(arr), dtype, requires_grad, None)
    exponents = np.linspace(float(start), float(end), int(steps))
    arr = _xp(device).asarray(np.power(float(base), exponents).astype(dt))
    return _finish(arr, dtype, requires_grad, None)


def scalar_tensor(s, *, dtype=None, layout=None, device=None, requires_grad: bool = False):
    """A 0-d tensor holding the number s, of the default float dtype unless `dtype` is given
    (torch.scalar_tensor: an int or a bool gives a float tensor too)."""
    del layout
    dt = _float_dtype(dtype)
    try:
        arr = _xp(device).asarray(s, dtype=dt)
    except OverflowError:
        # PyTorch's checked conversion: an unsigned dtype takes -max..-1 wrapped (-5 in uint8
        # is 251); any other value out of range is refused
        info = np.iinfo(dt)
        if info.min != 0 or not -info.max <= s < 0:
            raise RuntimeError(
                f"scalar_tensor: value {s} cannot be converted to type {np.dtype(dt)} without "
                "overflow"
            ) from None
        arr = _xp(device).asarray(np.asarray(s, dtype=np.int64).astype(dt))
    return _finish(arr, dtype, requires_grad, None)


def _range(start=0, end=None, step=1, *, dtype=None, layout=None, device=None,
           requires_grad: bool = False):  # fmt: skip
    """Values from start to end INCLUSIVE in steps of `step`, of the default float dtype
    (torch.range, deprecated there: it warns, as PyTorch's, and arange is the replacement).

    Raises:
        RuntimeError: step is 0, or its sign does not lead from start to end.
    """
    del layout
    warnings.warn(
        "torch.range is deprecated and will be removed in a future release because its "
        "behavior is inconsistent with Python's range builtin. Instead, use torch.arange, "
        "which produces values in [start, end).",
        UserWarning,
        stacklevel=2,
    )
    if end is None:
        start, end = 0, start
    start, end, step = float(start), float(end), float(step)
    if step == 0:
        raise RuntimeError("range: step must be nonzero")
    if (step > 0 and end < start) or (step < 0 and end > start):
        raise RuntimeError(
            f"range: upper bound and lower bound inconsistent with step sign (start={start}, "
            f"end={end}, step={step})"
        )
    n = math.floor((end - start) / step) + 1
    arr = (start + np.arange(n, dtype=np.float64) * step).astype(_float_dtype(dtype))
    return _finish(_xp(device).asarray(arr), dtype, requires_grad, None)


# ---------------------------------------------------------------------------------------------
# Signal windows. Each takes (window_length, periodic=True, ...); periodic windows are the
# symmetric window of length N + 1 without its last value (for spectral analysis), as
# PyTorch's. Formulas: Oppenheim & Schafer, Discrete-Time Signal Processing, 3rd ed., 7.5.


def _window(op: str, n: int, periodic: bool, dtype, device, requires_grad, symmetric):
    """The window from `symmetric(m)` (a float64 array of m values, m >= 2), periodic or not,
    in dtype; lengths 0 and 1 give [] and [1.] (PyTorch's)."""
    dt = _float_dtype(dtype)
    if dt.kind not in "fV":
        raise RuntimeError(f"{op} expects floating point dtypes, got: {dt}")
    if n < 0:
        raise RuntimeError(f"{op} requires non-negative window_length, got window_length={n}")
    if n <= 1:
        arr = np.ones(n, np.float64)
    else:
        arr = symmetric(n + 1)[:-1] if periodic else symmetric(n)
    return _finish(_xp(device).asarray(arr.astype(dt)), dtype, requires_grad, None)


def _cosine_sum(coeffs):
    """sum_k (-1)^k a_k cos(2 pi k i / (m - 1)), i = 0 .. m - 1 (the generalized cosine
    window: Hann, Hamming, Blackman)."""

    def symmetric(m):
        phase = 2 * math.pi * np.arange(m) / (m - 1)
        return sum((-1) ** k * a * np.cos(k * phase) for k, a in enumerate(coeffs))

    return symmetric


def hann_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None,
                device=None, requires_grad: bool = False):  # fmt: skip
    """0.5 - 0.5 cos(2 pi n / (N - 1)) (torch.hann_window)."""
    del layout
    return _window("hann_window", window_length, periodic, dtype, device, requires_grad,
                   _cosine_sum((0.5, 0.5)))  # fmt: skip


def hamming_window(window_length: int, periodic: bool = True, alpha: float = 0.54,
                   beta: float = 0.46, *, dtype=None, layout=None, device=None,
                   requires_grad: bool = False):  # fmt: skip
    """alpha - beta cos(2 pi n / (N - 1)) (torch.hamming_window)."""
    del layout
    return _window("hamming_window", window_length, periodic, dtype, device, requires_grad,
                   _cosine_sum((alpha, beta)))  # fmt: skip


def blackman_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None,
                    device=None, requires_grad: bool = False):  # fmt: skip
    """0.42 - 0.5 cos(2 pi n / (N - 1)) + 0.08 cos(4 pi n / (N - 1)) (torch.blackman_window)."""
    del layout
    return _window("blackman_window", window_length, periodic, dtype, device, requires_grad,
                   _cosine_sum((0.42, 0.5, 0.08)))  # fmt: skip


def bartlett_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None,
                    device=None, requires_grad: bool = False):  # fmt: skip
    """The triangle 1 - |2 n / (N - 1) - 1| (torch.bartlett_window)."""
    del layout

    def symmetric(m):
        return 1 - np.abs(2 * np.arange(m) / (m - 1) - 1)

    return _window("bartlett_window", window_length, periodic, dtype, device, requires_grad,
                   symmetric)  # fmt: skip


def kaiser_window(window_length: int, periodic: bool = True, beta: float = 12.0, *,
                  dtype=None, layout=None, device=None, requires_grad: bool = False):  # fmt: skip
    """I0(beta sqrt(1 - (2 n / (N - 1) - 1)^2)) / I0(beta), I0 the modified Bessel function
    of order 0 (torch.kaiser_window; Kaiser & Schafer 1980)."""
    del layout
    return _window("kaiser_window", window_length, periodic, dtype, device, requires_grad,
                   lambda m: np.kaiser(m, float(beta)))  # fmt: skip


# Bound last under torch's name: this module's own code never calls Python's range.
range = _range  # noqa: A001
_range.__name__ = _range.__qualname__ = "range"
