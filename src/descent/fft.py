"""descent.fft: discrete Fourier transforms, as torch.fft (docs/complex.md).

fft/ifft/fft2/ifft2/fftn/ifftn (complex to complex), rfft/rfft2/rfftn (real to the one-sided
complex half), irfft/irfft2/irfftn (the half back to real), hfft/ihfft (Hermitian signals),
fftfreq/rfftfreq and fftshift/ifftshift, with PyTorch's `n`/`s`, `dim` and `norm` arguments
("backward": the inverse divides by n, "ortho": both by sqrt(n), "forward": the forward does).

Dtypes are PyTorch's: float32 and complex64 inputs give complex64 (irfft: float32), float64 and
complex128 give complex128 (float64); integer inputs compute in the default float dtype.
NumPy's pocketfft does the work; results are cast to those dtypes.

Every transform is differentiable with PyTorch's complex convention (ops/complex.py). Each one
is three steps: a `Resize` (zero-pad or trim to `n`/`s`), the transform of fixed size, and for
real inputs the real part of the gradient. The backward of a transform is its adjoint:

* c2c with norm N: the inverse transform of the opposite direction with the "dual" norm
  (backward <-> forward, ortho <-> ortho): an unnormalized DFT's adjoint is the unnormalized
  inverse DFT;
* r2c (rfft): the gradient is zero-padded to the full length, inverse-transformed with the dual
  norm, and its real part taken;
* c2r (irfft): the one-sided input stands for a Hermitian full spectrum, so each bin whose
  mirror image lies outside the kept half counts twice: the gradient is rfft(gy) with the dual
  norm, with bins 1 .. n - (n//2 + 1) doubled (PyTorch's fft_c2r_backward).
"""

from __future__ import annotations

import numpy as _np

from . import backend as _backend
from .autograd import Function as _Function
from .dtypes import as_dtype as _as_dtype
from .dtypes import complex_of as _complex_of
from .dtypes import get_default_dtype as _get_default_dtype
from .ops._common import as_tensor as _as_tensor
from .ops.complex import _scalar_type
from .ops.complex import conj as _conj
from .ops.elementwise import cast as _cast
from .ops.shape import cat as _cat
from .ops.shape import roll as _roll
from .tensor import Tensor as _Tensor

__all__ = [
    "fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2",
    "rfftn", "irfftn", "hfft", "ihfft", "hfft2", "ihfft2", "hfftn", "ihfftn", "fftfreq",
    "rfftfreq", "fftshift", "ifftshift",
]  # fmt: skip

_NORMS = ("backward", "ortho", "forward")
_DUAL = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


def _norm(norm) -> str:
    if norm is None:
        return "backward"
    if norm not in _NORMS:
        raise RuntimeError(f'Invalid normalization mode: "{norm}"')
    return norm


# ---------------------------------------------------------------------------------------------
# The differentiable pieces


class Resize(_Function):
    """Zero-pad or trim along `axes` to `sizes`; d/dx: the gradient trimmed or padded back."""

    __slots__ = ("axes", "sizes", "in_shape")

    def forward(self, x):
        self.in_shape = x.shape
        return _resize(_backend.get_array_module(x), x, self.axes, self.sizes)

    def backward(self, gy, ops):
        back = [self.in_shape[a] for a in self.axes]
        if ops.is_graph:
            return _Resize.apply(gy, axes=self.axes, sizes=back)
        return _resize(_backend.get_array_module(gy), gy, self.axes, back)


def _resize(xp, x, axes, sizes):
    """x trimmed to `sizes` along `axes`, then zero-padded to them (NumPy's n/s rule)."""
    x = x[tuple(slice(0, sizes[axes.index(d)]) if d in axes else slice(None)
                for d in range(x.ndim))]  # fmt: skip
    pad = [(0, 0)] * x.ndim
    for a, n in zip(axes, sizes):
        pad[a] = (0, n - x.shape[a])
    if any(p[1] for p in pad):
        x = xp.pad(x, pad)
    return x


class FFTC2C(_Function):
    """y = DFT (or inverse DFT) of complex x over `axes`; d/dx: the adjoint transform, the
    opposite direction with the dual norm."""

    __slots__ = ("axes", "norm", "inverse", "real_in")

    def forward(self, x):
        xp = _backend.get_array_module(x)
        out = _laid_out(xp, _c2c(xp, x, self.axes, self.norm, self.inverse), x.strides, self.axes)
        if getattr(self, "real_in", None) is not None:
            _real_spectrum_zeros(out, self.axes, self.real_in)
        return out

    def backward(self, gy, ops):
        norm, inverse = _DUAL[self.norm], not self.inverse
        if ops.is_graph:
            return _FFTC2C.apply(gy, axes=self.axes, norm=norm, inverse=inverse)
        return _c2c(_backend.get_array_module(gy), gy, self.axes, norm, inverse)


class FFTR2CFull(FFTC2C):
    """fft.fft / fft.ifft of a real x (made complex first): FFTC2C, but PyTorch runs it as a
    two-sided r2c transform (FftR2CBackward0, which saves self; ifft's conjugates it after), so
    the node counts as saving: a second backward without retain_graph raises, as there.
    (fft2 / fftn of a real x are c2c transforms of a copy in PyTorch too: FFTC2C.)"""

    saves_params = True


def _real_spectrum_zeros(out, axes, zero: float, sizes=None) -> None:
    """The transform of a real signal as PyTorch's: the bins that are their own mirror image
    (index 0 and n/2 along every transformed axis) are real, their imaginary part exactly
    `zero` (PyTorch: +0, except fft.ifft's -0, the conjugate of its one-sided r2c transform).
    descent's complex transform in float64 leaves rounding there (1e-17), whose sign flips
    angle() between pi and -pi on a negative real bin. `sizes`: the signal's lengths along
    `axes` where `out` is one-sided (rfftn)."""
    import itertools

    sizes = [out.shape[a] for a in axes] if sizes is None else sizes
    choices = [(0, n // 2) if n % 2 == 0 and n > 1 else (0,) for n in sizes]
    for ks in itertools.product(*choices):
        idx = [slice(None)] * out.ndim
        for a, k in zip(axes, ks):
            idx[a] = k
        out.imag[tuple(idx)] = zero


def _laid_out(xp, out, strides, axes, keep_last=False):
    """out in PyTorch's layout for an FFT of an input with `strides`: its batch dims outermost,
    then the transformed dims, each group ordered by the input's strides (largest first;
    `keep_last`: the one-sided r2c / c2r axis stays innermost). PyTorch's _exec_fft allocates
    its output so; NumPy's pocketfft keeps the input's order, so `.view()` of a transposed
    input's spectrum raised. A copy only when out differs."""
    nd = out.ndim
    axes = [a % nd for a in axes]
    batch = sorted((d for d in range(nd) if d not in axes), key=lambda d: -strides[d])
    if keep_last:
        axes = sorted(axes[:-1], key=lambda d: -strides[d]) + axes[-1:]
    else:
        axes = sorted(axes, key=lambda d: -strides[d])
    perm = batch + axes
    if out.flags.c_contiguous and perm == list(range(nd)):
        return out
    buf = xp.ascontiguousarray(out.transpose(perm))
    inv = [0] * nd
    for i, d in enumerate(perm):
        inv[d] = i
    return buf.transpose(inv)


def _c2c(xp, x, axes, norm, inverse):
    f = xp.fft.ifftn if inverse else xp.fft.fftn
    return f(x, axes=axes, norm=norm).astype(x.dtype, copy=False)


class FFTR2C(_Function):
    """The one-sided DFT of real x over `axes` (the last one halved to n//2 + 1); d/dx:
    Re(inverse DFT, dual norm, of the gradient zero-padded to the full length)."""

    __slots__ = ("axes", "norm", "n_last")
    saves_params = True  # PyTorch's FftR2CBackward0 saves self: a second backward raises

    def forward(self, x):
        self.n_last = x.shape[self.axes[-1]]
        xp = _backend.get_array_module(x)
        out = xp.fft.rfftn(x, axes=self.axes, norm=self.norm)
        out = out.astype(_complex_of(x.dtype), copy=False)
        out = _laid_out(xp, out, x.strides, self.axes, keep_last=True)
        if len(self.axes) > 1:  # the c2c passes after the last axis's r2c leave rounding
            _real_spectrum_zeros(out, self.axes, 0.0, [x.shape[a] for a in self.axes])
        return out

    def backward(self, gy, ops):
        axes, last = self.axes, self.axes[-1]
        sizes = [gy.shape[a] for a in axes[:-1]] + [self.n_last]
        if ops.is_graph:
            full = _Resize.apply(gy, axes=(last,), sizes=(self.n_last,))
            g = _FFTC2C.apply(full, axes=axes, norm=_DUAL[self.norm], inverse=True)
            return g.real
        full = _resize(_backend.get_array_module(gy), gy, (last,), (sizes[-1],))
        return _c2c(_backend.get_array_module(gy), full, axes, _DUAL[self.norm], True).real


class FFTC2R(_Function):
    """Real x from the one-sided spectrum over `axes` (last axis n_last points out); d/dx:
    rfft of the gradient with the dual norm, bins 1 .. n - (n//2 + 1) doubled."""

    __slots__ = ("axes", "norm", "n_last")

    def forward(self, x):
        xp = _backend.get_array_module(x)
        s = [x.shape[a] for a in self.axes[:-1]] + [self.n_last]
        out = xp.fft.irfftn(x, s=s, axes=self.axes, norm=self.norm)
        return _laid_out(
            xp, out.astype(x.real.dtype, copy=False), x.strides, self.axes, keep_last=True)

    def backward(self, gy, ops):
        axes, last, norm = self.axes, self.axes[-1], _DUAL[self.norm]
        if ops.is_graph:
            g = _FFTR2C.apply(gy, axes=axes, norm=norm)
        else:
            g = (
                _backend.get_array_module(gy)
                .fft.rfftn(gy, axes=axes, norm=norm)
                .astype(_complex_of(gy.dtype))
            )
            if len(axes) > 1:  # (as FFTR2C's forward: the c2c passes spread a nan into them)
                _real_spectrum_zeros(g, axes, 0.0, [gy.shape[a] for a in axes])
        double = self.n_last - g.shape[last]  # bins whose mirror image was not kept
        if double <= 0:
            return g
        # Bins 1 .. double doubled as PyTorch's fft_c2r_backward, gI.narrow(last, 1,
        # double).mul_(2): a complex product by 2 + 0i, so a nan or infinite part spreads into
        # the other (inf + 0i -> inf + nan i); the bins kept once are left untouched.
        if ops.is_graph:
            rest = g.shape[last] - 1 - double
            parts = [g.narrow(last, 0, 1), g.narrow(last, 1, double) * complex(2.0)]
            return _cat(parts + ([g.narrow(last, 1 + double, rest)] if rest else []), last)
        index = (slice(None),) * last + (slice(1, 1 + double),)
        g[index] *= g.dtype.type(2)
        return g


# Private bindings (torch.fft has no such names); the classes keep their names, which grad_fn
# names are keyed by (grad_fn_names.py: FFTC2C -> FftC2CBackward0).
_Resize, _FFTC2C, _FFTR2C, _FFTC2R = Resize, FFTC2C, FFTR2C, FFTC2R
_FFTR2CFull = FFTR2CFull
del Resize, FFTC2C, FFTR2C, FFTC2R, FFTR2CFull


# ---------------------------------------------------------------------------------------------
# Argument handling shared by the public functions


def _input(x, op: str, complex_in: bool) -> _Tensor:
    """x as a tensor of a floating (or complex) dtype PyTorch's fft accepts; complex_in: make
    a real input complex first (c2c transforms)."""
    x = _as_tensor(x)
    kind = x._data.dtype.kind
    if x._data.dtype == _np.float16:
        raise RuntimeError(f"{op}: Unsupported dtype Half (descent computes the FFT on the "
                           "CPU; convert with .float())")  # fmt: skip
    if kind in "biu":
        x = _cast(x, _get_default_dtype())
        kind = "f"
    if complex_in and kind in "fV":
        x = _cast(x, _complex_of(x._data.dtype))
    return x


def _dims(x: _Tensor, s, dim, op: str, default_all: bool):
    """(axes, sizes) for an n-dimensional transform (torch's rule: s without dim means the
    last len(s) dims; neither means all dims, or the last two for the 2-d forms)."""
    ndim = x.ndim
    if dim is not None and not isinstance(dim, (list, tuple)):
        dim = (dim,)
    if s is not None and not isinstance(s, (list, tuple)):
        s = (s,)
    if s is not None and dim is not None and len(s) != len(dim):
        raise RuntimeError("When given, dim and shape arguments must have the same length")
    if dim is None:
        if s is not None:
            dim = tuple(range(ndim - len(s), ndim))
        else:
            dim = tuple(range(ndim)) if default_all else (-2, -1)
    axes = []
    for d in dim:
        d = int(d)
        if ndim == 0:
            raise IndexError(f"Dimension specified as {d} but tensor has no dimensions")
        if not -ndim <= d < ndim:
            raise IndexError(
                f"Dimension out of range (expected to be in range of [{-max(ndim, 1)}, "
                f"{max(ndim, 1) - 1}], but got {d})"
            )
        axes.append(d % ndim)
    if len(set(axes)) != len(axes):
        raise RuntimeError(f"{op}: FFT dims must be unique")
    if s is None:
        sizes = [x.shape[a] for a in axes]
    else:
        sizes = [x.shape[a] if int(n) == -1 else int(n) for a, n in zip(axes, s)]
    for n in sizes:
        if n < 1:
            raise RuntimeError(f"Invalid number of data points ({n}) specified")
    return tuple(axes), sizes


def _fitted(x: _Tensor, axes, sizes) -> _Tensor:
    if all(x.shape[a] == n for a, n in zip(axes, sizes)):
        return x
    return _Resize.apply(x, axes=tuple(axes), sizes=list(sizes))


def _c2c_n(x, s, dim, norm, inverse, op, default_all=True, one_d=False) -> _Tensor:
    # A real input's self-mirrored bins get an exact zero imaginary part (see
    # _real_spectrum_zeros): -0 for fft.ifft (PyTorch: the conjugate of an r2c transform),
    # +0 for the others (fftn / ifftn: a complex transform of the promoted input).
    real_in = None
    if _as_tensor(x)._data.dtype.kind != "c":
        real_in = -0.0 if one_d and inverse else 0.0
    x = _input(x, op, complex_in=True)
    axes, sizes = _dims(x, s, dim, op, default_all)
    if not axes:  # fftn of a 0-d tensor: nothing to transform (PyTorch returns the values)
        return x
    x = _fitted(x, axes, sizes)
    op = _FFTR2CFull if one_d and real_in is not None else _FFTC2C
    return op.apply(x, axes=axes, norm=_norm(norm), inverse=inverse, real_in=real_in)


def _r2c_n(x, s, dim, norm, op, default_all=True) -> _Tensor:
    x = _input(x, op, complex_in=False)
    if x._data.dtype.kind == "c":
        raise RuntimeError(f"{op} expects a real input tensor, but got {_scalar_type(x.dtype)}")
    axes, sizes = _dims(x, s, dim, op, default_all)
    x = _fitted(x, axes, sizes)
    return _FFTR2C.apply(x, axes=axes, norm=_norm(norm))


def _c2r_n(x, s, dim, norm, op, default_all=True) -> _Tensor:
    x = _input(x, op, complex_in=True)
    axes, sizes = _dims(x, s, dim, op, default_all)
    if s is None:  # the output's last length: 2 (m - 1) for m input bins
        sizes[-1] = 2 * (x.shape[axes[-1]] - 1)
    n_last = sizes[-1]
    if n_last < 1:
        raise RuntimeError(f"Invalid number of data points ({n_last}) specified")
    x = _fitted(x, axes, sizes[:-1] + [n_last // 2 + 1])
    return _FFTC2R.apply(x, axes=axes, norm=_norm(norm), n_last=n_last)


# ---------------------------------------------------------------------------------------------
# The public functions (torch.fft's names and signatures)


def fft(input, n=None, dim: int = -1, norm=None) -> _Tensor:
    """The 1-d discrete Fourier transform along `dim` (torch.fft.fft).

    Args:
        input: a real or complex tensor (real inputs are made complex).
        n: signal length: the input is zero-padded or trimmed to it along `dim`.
        dim: the dimension to transform.
        norm: "backward" (default: no scaling), "ortho" (1/sqrt(n)) or "forward" (1/n).
    """
    return _c2c_n(input, None if n is None else (n,), (dim,), norm, False, "fft", one_d=True)


def ifft(input, n=None, dim: int = -1, norm=None) -> _Tensor:
    """The 1-d inverse DFT along `dim` (torch.fft.ifft; "backward" divides by n)."""
    return _c2c_n(input, None if n is None else (n,), (dim,), norm, True, "ifft", one_d=True)


def fft2(input, s=None, dim=(-2, -1), norm=None) -> _Tensor:
    """The 2-d DFT over `dim` (the last two by default), torch.fft.fft2."""
    return _c2c_n(input, s, dim, norm, False, "fft2", default_all=False)


def ifft2(input, s=None, dim=(-2, -1), norm=None) -> _Tensor:
    """The 2-d inverse DFT over `dim`, torch.fft.ifft2."""
    return _c2c_n(input, s, dim, norm, True, "ifft2", default_all=False)


def fftn(input, s=None, dim=None, norm=None) -> _Tensor:
    """The n-d DFT over `dim` (all dims, or the last len(s), by default), torch.fft.fftn."""
    return _c2c_n(input, s, dim, norm, False, "fftn")


def ifftn(input, s=None, dim=None, norm=None) -> _Tensor:
    """The n-d inverse DFT over `dim`, torch.fft.ifftn."""
    return _c2c_n(input, s, dim, norm, True, "ifftn")


def rfft(input, n=None, dim: int = -1, norm=None) -> _Tensor:
    """The one-sided DFT of a real signal: n//2 + 1 bins along `dim` (torch.fft.rfft).

    Raises:
        RuntimeError: a complex input (PyTorch's rule: use fft).
    """
    return _r2c_n(input, None if n is None else (n,), (dim,), norm, "rfft")


def irfft(input, n=None, dim: int = -1, norm=None) -> _Tensor:
    """The real signal of a one-sided spectrum (torch.fft.irfft): n points along `dim`
    (2 (m - 1) for m input bins by default); the imaginary parts of the zero bin (and of the
    n/2 bin for an even n) are ignored, as a Hermitian spectrum's are zero."""
    return _c2r_n(input, None if n is None else (n,), (dim,), norm, "irfft")


def rfft2(input, s=None, dim=(-2, -1), norm=None) -> _Tensor:
    """The 2-d one-sided DFT of a real input (the last dim halved), torch.fft.rfft2."""
    return _r2c_n(input, s, dim, norm, "rfft2", default_all=False)


def irfft2(input, s=None, dim=(-2, -1), norm=None) -> _Tensor:
    """The inverse of rfft2, torch.fft.irfft2."""
    return _c2r_n(input, s, dim, norm, "irfft2", default_all=False)


def rfftn(input, s=None, dim=None, norm=None) -> _Tensor:
    """The n-d one-sided DFT of a real input (the last of `dim` halved), torch.fft.rfftn."""
    return _r2c_n(input, s, dim, norm, "rfftn")


def irfftn(input, s=None, dim=None, norm=None) -> _Tensor:
    """The inverse of rfftn, torch.fft.irfftn (last output length 2 (m - 1) by default)."""
    return _c2r_n(input, s, dim, norm, "irfftn")


def hfft(input, n=None, dim: int = -1, norm=None) -> _Tensor:
    """The real DFT of a Hermitian signal given by its first half (torch.fft.hfft):
    irfft(conj(input)) with the opposite norm, n = 2 (m - 1) points by default."""
    x = _input(input, "hfft", complex_in=True)
    return irfft(_conj(x), n, dim, _DUAL[_norm(norm)])


def ihfft(input, n=None, dim: int = -1, norm=None) -> _Tensor:
    """The inverse of hfft for a real input (torch.fft.ihfft): conj(rfft(input)) with the
    opposite norm."""
    x = _input(input, "ihfft", complex_in=False)
    if x._data.dtype.kind == "c":
        raise RuntimeError(f"ihfft expects a real input tensor, but got {_scalar_type(x.dtype)}")
    return _conj(rfft(x, n, dim, _DUAL[_norm(norm)]))


def hfft2(input, s=None, dim=(-2, -1), norm=None) -> _Tensor:
    """The 2-d real DFT of a Hermitian signal given by its half (torch.fft.hfft2)."""
    x = _input(input, "hfft2", complex_in=True)
    return _c2r_n(_conj(x), s, dim, _DUAL[_norm(norm)], "hfft2", default_all=False)


def ihfft2(input, s=None, dim=(-2, -1), norm=None) -> _Tensor:
    """The inverse of hfft2 for a real input (torch.fft.ihfft2)."""
    x = _input(input, "ihfft2", complex_in=False)
    if x._data.dtype.kind == "c":
        raise RuntimeError(f"ihfft2 expects a real input tensor, but got {_scalar_type(x.dtype)}")
    return _conj(_r2c_n(x, s, dim, _DUAL[_norm(norm)], "ihfft2", default_all=False))


def hfftn(input, s=None, dim=None, norm=None) -> _Tensor:
    """The n-d real DFT of a Hermitian signal given by its half along the last of `dim`
    (torch.fft.hfftn): irfftn of the conjugate with the opposite norm."""
    x = _input(input, "hfftn", complex_in=True)
    return _c2r_n(_conj(x), s, dim, _DUAL[_norm(norm)], "hfftn")


def ihfftn(input, s=None, dim=None, norm=None) -> _Tensor:
    """The inverse of hfftn for a real input (torch.fft.ihfftn)."""
    x = _input(input, "ihfftn", complex_in=False)
    if x._data.dtype.kind == "c":
        raise RuntimeError(f"ihfftn expects a real input tensor, but got {_scalar_type(x.dtype)}")
    return _conj(_r2c_n(x, s, dim, _DUAL[_norm(norm)], "ihfftn"))


# ---------------------------------------------------------------------------------------------
# Frequencies and shifts


def _freq_check(op: str, n, dtype, size: int) -> int:
    """PyTorch's checks of fftfreq / rfftfreq: a floating or complex dtype, and a result of
    `size` >= 0 elements (fftfreq(-1) raises; rfftfreq(-2) is empty)."""
    if dtype is not None and _np.dtype(_as_dtype(dtype)).kind not in "fcV":
        raise RuntimeError(f"{op} requires a floating point or complex dtype (got {dtype})")
    if size < 0:
        raise RuntimeError(f"{op}: Trying to create tensor with negative dimension {size}: "
                           f"[{size}] (n = {n})")  # fmt: skip
    return int(n)


def _freq_divide(k, n: int, d):
    """k / (n d) in float64 as NumPy's fftfreq computes it (k times 1 / (n d)), with PyTorch's
    values where n d is 0 (rfftfreq(0) is [nan]; d = 0 gives inf and nan)."""
    with _np.errstate(divide="ignore", invalid="ignore"):
        return k * (1.0 / _np.float64(n * d))


def _freq_tensor(values, dtype, device, requires_grad) -> _Tensor:
    from .creation import tensor  # noqa: PLC0415 - creation sits above this module's imports

    dt = _get_default_dtype() if dtype is None else dtype
    return tensor(values, dtype=dt, device=device, requires_grad=requires_grad)


def fftfreq(n: int, d: float = 1.0, *, dtype=None, device=None, requires_grad=False,
            layout=None, out=None) -> _Tensor:  # fmt: skip
    """The sample frequencies of an n-point fft: [0, 1, ..., -(n//2), ..., -1] / (d n)
    (torch.fft.fftfreq; the default float dtype)."""
    if out is not None:
        raise TypeError("fftfreq: out= is not supported by descent; assign the result")
    n = _freq_check("fftfreq", n, dtype, int(n))
    k = _np.concatenate([_np.arange((n + 1) // 2), _np.arange(-(n // 2), 0)]).astype(_np.float64)
    return _freq_tensor(_freq_divide(k, n, d), dtype, device, requires_grad)


def rfftfreq(n: int, d: float = 1.0, *, dtype=None, device=None, requires_grad=False,
             layout=None, out=None) -> _Tensor:  # fmt: skip
    """The sample frequencies of an n-point rfft: [0, 1, ..., n//2] / (d n)
    (torch.fft.rfftfreq)."""
    if out is not None:
        raise TypeError("rfftfreq: out= is not supported by descent; assign the result")
    n = _freq_check("rfftfreq", n, dtype, int(n) // 2 + 1)
    return _freq_tensor(_freq_divide(_np.arange(n // 2 + 1, dtype=_np.float64), n, d), dtype,
                        device, requires_grad)  # fmt: skip


def _shift(input, dim, sign: int) -> _Tensor:
    x = _as_tensor(input)
    if dim is None:
        dim = tuple(range(x.ndim))
    elif not isinstance(dim, (list, tuple)):
        dim = (dim,)
    if not dim:
        raise RuntimeError("`shifts` required (a 0-d tensor has no dimension to shift)")
    shifts = tuple(sign * (x.shape[d] // 2) for d in dim)
    return _roll(x, shifts, tuple(dim))


def fftshift(input, dim=None) -> _Tensor:
    """The zero frequency moved to the middle: a roll by n//2 along `dim` (all dims by
    default), torch.fft.fftshift."""
    return _shift(input, dim, 1)


def ifftshift(input, dim=None) -> _Tensor:
    """The inverse of fftshift: a roll by -(n//2), torch.fft.ifftshift."""
    return _shift(input, dim, -1)


# PyTorch's out= on this module's functions (out_functions.py: one wrapper each).
from .out_functions import install as _install_out  # noqa: E402

_install_out(globals(), "fft")
