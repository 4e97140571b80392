"""Resampling: interpolate (nearest, nearest-exact, linear, bilinear, bicubic, trilinear, area),
pixel_shuffle / pixel_unshuffle, grid_sample and affine_grid, with PyTorch's coordinate rules.

interpolate is separable: along each resized dimension the output is a fixed linear map of the
input, y = M x with M (out, in) built on the host from PyTorch's source-index rule
(`area_pixel_compute_source_index` in ATen's UpSample.h); each of M's rows holds the tap weights
of one output position (2 for linear, 4 for bicubic, clamped taps adding up at the borders).
Applying M is one matmul, so gradients of every order come from matmul. Nearest modes gather
instead (a matmul would turn an inf into nan through 0 * inf).

grid_sample is a composite too: the four corner values are gathered with take_along_axis and
weighted by the fractional coordinates (Tensors), so the gradient reaches both the input and
the grid, to second order.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ... import amp, backend
from ...creation_integer import float_space
from ...errors import DescentError, UnsupportedError
from ...grad_fn import show_as
from ...opmath import is_reduced
from ...ops import shape as _shape
from ...ops._common import as_tensor
from ...ops.elementwise import clamp, where
from ...ops.half import in_float32
from ...ops.indexing import index_select, take_index
from ...ops.linalg import FixedMatmul
from ...ops.untracked import computed
from ...tensor import Tensor
from ._inputs import float_tensor
from ._pooling import adaptive_avg_pool2d

__all__ = [
    "interpolate",
    "upsample",
    "upsample_nearest",
    "upsample_bilinear",
    "pixel_shuffle",
    "pixel_unshuffle",
    "channel_shuffle",
    "grid_sample",
    "affine_grid",
]

_LINEAR = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")
_CUBIC_A = -0.75  # PyTorch's (and OpenCV's) bicubic convolution constant (Keys 1981 uses -0.5)


def _source_scale(n_in: int, n_out: int, align_corners: bool, scale) -> float:
    """The step in input coordinates per output position (ATen's area_pixel_compute_scale)."""
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return 1.0 / scale if scale is not None and scale > 0 else n_in / n_out


def _linear_taps(n_in, n_out, align_corners, scale, cubic: bool) -> list:
    """[(index (n_out,), weight (n_out,) float64)] per tap of each output position: 2 for the
    linear modes, 4 for bicubic (clamped at the borders), as ATen's kernels read them."""
    step = _source_scale(n_in, n_out, align_corners, scale)
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = step * dst
    else:
        # step * (dst + 0.5) - 0.5 rounded once, as ATen's compiled fused multiply-add (a
        # long double holds the product of a double and a short half-integer): for 5 -> 15,
        # output 1's source is -2.8e-17, not 0, so bicubic's taps stop before row 2 (an inf
        # there made 0 * inf = nan where PyTorch gives a number)
        ld = np.longdouble
        src = (ld(step) * (dst.astype(ld) + ld(0.5)) - ld(0.5)).astype(np.float64)
    if not cubic and n_in == n_out:
        # ATen's compute_source_index_and_lambda: an unchanged size copies, whatever the scale
        # (both taps at the output's own index, weights 1 and 0: an inf there gives
        # inf * 1 + inf * 0 = nan, and scale_factor=1.1 on 5 values still copies)
        i = np.arange(n_out, dtype=np.int64)
        return [(i, np.ones(n_out)), (i, np.zeros(n_out))]
    if not cubic:
        src = np.maximum(src, 0.0)  # linear modes clamp a negative source to 0 (cubic does not)
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        lam = src - i0
        i1 = np.minimum(i0 + 1, n_in - 1)
        return [(i0, 1.0 - lam), (i1, lam)]
    i0 = np.floor(src).astype(np.int64)
    t = src - i0
    a = _CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = (far(t + 1), near(t), near(1 - t), far(2 - t))
    return [(np.clip(i0 + off, 0, n_in - 1), w)
            for off, w in zip((-1, 0, 1, 2), weights, strict=True)]  # fmt: skip


def _linear_matrix(n_in, n_out, align_corners, scale, cubic: bool) -> np.ndarray:
    """M (n_out, n_in): row i holds the weights of output i's taps (float64; clamped taps
    add up)."""
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    for idx, w in _linear_taps(n_in, n_out, align_corners, scale, cubic):
        np.add.at(m, (rows, idx), w)
    return m


def _tap_sum(y: Tensor, axis: int, taps: list) -> Tensor:
    """sum over taps of y[..., idx, ...] * weight along `axis`: each output reads its own taps
    only (for an input with inf or nan, where the matrix product's 0 * inf made nan in every
    output of the row, as PyTorch's kernels do not)."""
    xp = backend.get_array_module(y._data)
    tail = (1,) * (y.ndim - axis - 1)
    out = None
    for idx, w in taps:
        term = take_index(y, (slice(None),) * axis + (xp.asarray(idx),))
        term = term * Tensor._wrap(xp.asarray(w.astype(y._data.dtype).reshape(-1, *tail)))
        out = term if out is None else out + term
    return out


def _antialias_matrix(n_in, n_out, align_corners, scale, cubic: bool) -> np.ndarray:
    """M (n_out, n_in) of PyTorch's antialiased resampling (ATen's _compute_weights_aa, as
    Pillow's): when shrinking, the filter (triangle, or Keys' cubic with a = -0.5) is
    stretched by the scale, so each output averages every input it covers; the taps of each
    row are normalised to sum to 1. Enlarging uses the unstretched filter."""
    step = _source_scale(n_in, n_out, align_corners, scale)
    support = (4.0 if cubic else 2.0) * 0.5 * (step if step >= 1.0 else 1.0)
    invscale = 1.0 / step if step >= 1.0 else 1.0

    def filt(x):
        x = np.abs(x)
        if not cubic:
            return np.where(x < 1.0, 1.0 - x, 0.0)
        a = -0.5
        near = ((a + 2) * x - (a + 3)) * x * x + 1
        far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))

    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = step * (i + 0.5)
        # int() truncates toward zero, as the C++ cast does
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        w = filt((np.arange(lo, hi) - center + 0.5) * invscale)
        total = w.sum()
        m[i, lo:hi] = w / total if total != 0.0 else w
    return m


def _nearest_index(n_in, n_out, scale, exact: bool) -> np.ndarray:
    """Source index of each output position: floor(dst * step) ('nearest', PyTorch's legacy
    rule) or floor((dst + 0.5) * step) ('nearest-exact'), capped at n_in - 1."""
    step = _source_scale(n_in, n_out, False, scale)
    dst = np.arange(n_out, dtype=np.float64)
    # float32 as ATen computes it, so that the floor lands where PyTorch's does.
    src = (np.float32(dst + 0.5) if exact else np.float32(dst)) * np.float32(step)
    return np.minimum(np.floor(src).astype(np.int64), n_in - 1)


def _sizes(x: Tensor, nd: int, size, scale_factor, recompute_scale_factor):
    """Output sizes and the scales used for the coordinate mapping (None: in/out)."""
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    spatial = tuple(x.shape[2:])
    if size is not None:
        out = (int(size),) * nd if isinstance(size, (int, np.integer)) else tuple(size)
        if len(out) != nd:
            raise ValueError(f"interpolate: size {size} must have {nd} entries for input "
                             f"{tuple(x.shape)}")  # fmt: skip
        return tuple(int(v) for v in out), (None,) * nd
    sf = (float(scale_factor),) * nd if np.isscalar(scale_factor) else tuple(scale_factor)
    if len(sf) != nd:
        raise ValueError(f"interpolate: scale_factor {scale_factor} must have {nd} entries for "
                         f"input {tuple(x.shape)}")  # fmt: skip
    out = tuple(int(math.floor(n * float(s))) for n, s in zip(spatial, sf, strict=True))
    # recompute_scale_factor=True maps coordinates with in/out, as if `size` had been given.
    scales = (None,) * nd if recompute_scale_factor else tuple(float(s) for s in sf)
    return out, scales


def interpolate(
    input,
    size=None,
    scale_factor=None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resize (N, C, *S) with 1-3 spatial dimensions to `size` or by `scale_factor`.

    Modes as PyTorch: 'nearest' (floor(i * in/out), its legacy rule), 'nearest-exact',
    'linear' (3-d input), 'bilinear' / 'bicubic' (4-d), 'trilinear' (5-d), 'area'
    (adaptive average pooling). align_corners (linear modes only) maps the corner pixels'
    centres onto each other. A scale_factor sets the output to floor(in * scale) and, unless
    recompute_scale_factor, maps coordinates with 1/scale. antialias=True (bilinear and
    bicubic) low-pass filters when shrinking, as PyTorch's (Pillow's filters).

    A uint8 input (an image or a label mask) resizes with 'nearest' and 'nearest-exact', which
    only pick pixels, as in PyTorch; other integer and bool inputs raise NotImplementedError as
    PyTorch's (which has no kernel for them).

    Raises:
        ValueError: a mode that does not fit the input's dimensions, align_corners with a
            non-interpolating mode, both or neither of size and scale_factor, antialias=True
            with a mode other than bilinear / bicubic.
        NotImplementedError: an integer or bool input other than uint8 with a nearest mode.
    """
    if mode not in _MODES:
        raise UnsupportedError(f"interpolate: mode must be one of {_MODES}, got {mode!r}")
    x = as_tensor(input)
    if x._data.dtype.kind not in "fV" and not (
        x._data.dtype == np.uint8 and mode in ("nearest", "nearest-exact")
    ):
        # PyTorch also has a uint8 bilinear kernel, in fixed point: its values differ from
        # round(float result) by 1 here and there, so descent does not imitate it
        raise NotImplementedError(
            f"interpolate: mode {mode!r} is not implemented for dtype {x.dtype} (integer input "
            f"resizes with mode 'nearest' or 'nearest-exact' when uint8); use .float()"
        )
    nd = x.ndim - 2
    if nd not in (1, 2, 3):
        raise UnsupportedError(f"interpolate: expected a 3-, 4- or 5-d input (N, C, *S), got "
                               f"{tuple(x.shape)}")  # fmt: skip
    if mode in _LINEAR and _LINEAR[mode] != nd:
        raise _ModeRankError(f"interpolate: mode {mode!r} needs a {_LINEAR[mode] + 2}-d input, "
                             f"got {tuple(x.shape)}")  # fmt: skip
    if align_corners is not None and mode not in _LINEAR:
        raise ValueError("interpolate: align_corners can only be set with the interpolating "
                         "modes linear, bilinear, bicubic and trilinear")  # fmt: skip
    if antialias and mode not in ("bilinear", "bicubic"):
        raise ValueError(
            f"interpolate: anti-alias option is restricted to bilinear and bicubic modes and "
            f"requires a 4-D tensor as input, got mode {mode!r}"
        )
    out, scales = _sizes(x, nd, size, scale_factor, recompute_scale_factor)
    area_empty = mode == "area" and min(out) == 0  # PyTorch: an empty adaptive average
    if (any(o < 1 for o in out) and not area_empty) or any(n < 1 for n in x.shape[2:]):
        # PyTorch's RuntimeError (a DescentError is one, and a ValueError as before)
        raise DescentError(f"interpolate: input and output sizes should be greater than 0, "
                           f"got input {tuple(x.shape)} and output size {out}")  # fmt: skip
    if mode == "area":
        if nd == 2:
            return adaptive_avg_pool2d(x, out)
        # 1-d: as a height-1 image; 3-d: adaptive average pooling over the volume.
        if nd == 1:
            y = adaptive_avg_pool2d(_shape.unsqueeze(x, 2), (1, out[0]))
            return _shape.squeeze(y, 2)
        from ._pooling_extra import adaptive_avg_pool3d  # noqa: PLC0415

        return adaptive_avg_pool3d(x, out)
    if is_reduced(x._data.dtype) and mode in _LINEAR:  # float16, bfloat16
        # The interpolation matrices applied in float32 and the result rounded once (recorded
        # casts), as PyTorch's kernels (opmath): float16 weights and products were ~1.7x
        # further from float64 than PyTorch's
        return in_float32(interpolate, x, size, scale_factor, mode, align_corners,
                          recompute_scale_factor, antialias)  # fmt: skip
    xp = backend.get_array_module(x._data)
    y = x
    for i in range(nd):
        axis, n_in, n_out = 2 + i, x.shape[2 + i], out[i]
        if mode in ("nearest", "nearest-exact"):
            idx = _nearest_index(n_in, n_out, scales[i], mode == "nearest-exact")
            # (PyTorch's upsample_nearest node saves no index: take_index frees none)
            y = take_index(y, (slice(None),) * axis + (xp.asarray(idx),))
            continue
        if not antialias and not bool(xp.isfinite(y._data).all()):
            taps = _linear_taps(n_in, n_out, bool(align_corners), scales[i], mode == "bicubic")
            y = _tap_sum(y, axis, taps)
            continue
        matrix = _antialias_matrix if antialias else _linear_matrix
        m = matrix(n_in, n_out, bool(align_corners), scales[i], mode == "bicubic")
        mt = xp.asarray(m.T.astype(x._data.dtype))  # (in, out)
        # The resized axis last, one matmul, and back. (FixedMatmul: the weights are a
        # constant that PyTorch's upsample nodes do not save; a second backward runs again)
        y = _shape.swapaxes(FixedMatmul.apply(_shape.swapaxes(y, axis, -1), m=mt), axis, -1)
    return y


class _ModeRankError(ValueError, NotImplementedError):
    """A mode that does not fit the input's rank: PyTorch raises NotImplementedError, descent
    raised ValueError; both `except` clauses catch this one."""


def upsample(input, size=None, scale_factor=None, mode: str = "nearest", align_corners=None):
    """Deprecated name of interpolate (kept for PyTorch code that still calls it)."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """interpolate(..., mode='nearest') (deprecated in PyTorch)."""
    return interpolate(input, size, scale_factor, "nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """interpolate(..., mode='bilinear', align_corners=True) (deprecated in PyTorch)."""
    return interpolate(input, size, scale_factor, "bilinear", True)


def pixel_shuffle(input, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r): sub-pixel convolution's rearrangement
    (Shi et al. 2016)."""
    x = as_tensor(input)
    r = int(upscale_factor)
    if x.ndim < 3 or r < 1 or x.shape[-3] % (r * r):  # RuntimeError as torch's, a ValueError
        raise DescentError(f"pixel_shuffle: input {tuple(x.shape)} needs >= 3 dims and channels "
                         f"divisible by upscale_factor^2 = {r * r}")  # fmt: skip
    *lead, c, h, w = x.shape
    b = len(lead)
    y = x.reshape(*lead, c // (r * r), r, r, h, w)
    y = _shape.permute(y, *range(b), b, b + 3, b + 1, b + 4, b + 2)  # (*, C, H, r, W, r)
    return show_as(y.reshape(*lead, c // (r * r), h * r, w * r), "PixelShuffleBackward0", (x,))


def pixel_unshuffle(input, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r^2, H, W): the inverse of pixel_shuffle."""
    x = as_tensor(input)
    r = int(downscale_factor)
    if x.ndim < 3 or r < 1 or x.shape[-2] % r or x.shape[-1] % r:
        raise DescentError(f"pixel_unshuffle: input {tuple(x.shape)} needs >= 3 dims and H, W "
                         f"divisible by downscale_factor = {r}")  # fmt: skip
    *lead, c, hr, wr = x.shape
    b = len(lead)
    y = x.reshape(*lead, c, hr // r, r, wr // r, r)
    y = _shape.permute(y, *range(b), b, b + 2, b + 4, b + 1, b + 3)  # (*, C, r, r, H, W)
    return show_as(y.reshape(*lead, c * r * r, hr // r, wr // r), "PixelUnshuffleBackward0",
                   (x,))  # fmt: skip


def channel_shuffle(input, groups: int) -> Tensor:
    """(N, C, *) with C = g k: channel i k + j moves to j g + i (ShuffleNet, Zhang et al. 2018):
    reshape to (N, g, k, *), swap g and k, flatten back. Channels are dim 1 (as PyTorch, even
    for an unbatched input)."""
    x = as_tensor(input)
    g = int(groups)
    if x.ndim <= 2:
        raise DescentError(f"channel_shuffle: expects input with > 2 dims, but got input with "
                         f"sizes {list(x.shape)}")  # fmt: skip
    if g <= 0:
        raise DescentError(f"channel_shuffle: Number of groups to divide channels in must be "
                         f"positive. Value of groups:{g}")  # fmt: skip
    n, c, *rest = x.shape
    if c % g:
        raise DescentError(f"channel_shuffle: Number of channels must be divisible by groups. "
                         f"Got {c} channels and {g} groups.")  # fmt: skip
    y = x.reshape(n, g, c // g, *rest)
    return show_as(_shape.swapaxes(y, 1, 2).reshape(tuple(x.shape)), "ChannelShuffleBackward0",
                   (x,))  # fmt: skip


def _unnormalize(g: Tensor, n: int, align_corners: bool) -> Tensor:
    """Grid coordinates in [-1, 1] to pixel coordinates (-1 and 1 are the corner pixels'
    centres with align_corners, their outer edges without)."""
    if align_corners:
        return (g + 1.0) * ((n - 1) / 2.0)
    return ((g + 1.0) * n - 1.0) / 2.0


def _clip_strict(x: Tensor, hi: float) -> Tensor:
    """x clamped to [0, hi], derivative 1 strictly inside only (ATen's clip_coordinates)."""
    inside = (x > 0) & (x < hi)
    return where(inside, x, clamp(x, 0.0, hi).detach())


def _reflect(x: Tensor, lo2: float, hi2: float) -> Tensor:
    """ATen's reflect_coordinates: fold x into [lo2/2, hi2/2] by reflecting at the ends. The
    folds come from x's values through untracked.computed (descent.compile replays them)."""
    if lo2 == hi2:
        return x * 0.0
    lo, span = lo2 / 2.0, (hi2 - lo2) / 2.0
    # |x - lo| = flips * span + extra; even flips keep the direction, odd ones reverse it.
    # The value: lo + extra (even) or lo + span - extra (odd); written with x itself so that
    # the derivative (+-1) flows: extra = sign_in * (x - lo) - flips * span.
    sign_in = computed(_reflect_sign, (x,), (lo,))
    folds = computed(_reflect_folds, (x,), (lo, span))
    even = computed(_reflect_even, (x,), (lo, span))
    extra_t = (x - lo) * sign_in - folds
    return where(even, extra_t + lo, (lo + span) - extra_t)


def _reflect_sign(a, lo):
    """-1 below lo, 1 above, in a's dtype (untracked.computed's kernel, as those below)."""
    return backend.get_array_module(a).where(a - lo < 0, -1.0, 1.0).astype(a.dtype)


def _reflect_flips(a, lo, span):
    xp = backend.get_array_module(a)
    return xp.floor(xp.abs(a - lo) / span)


def _reflect_folds(a, lo, span):
    return (_reflect_flips(a, lo, span) * span).astype(a.dtype)


def _reflect_even(a, lo, span):
    return (_reflect_flips(a, lo, span) % 2) == 0


def _reflect_array(a, lo2, hi2):
    """_reflect's values on an array (bicubic's integer taps)."""
    if lo2 == hi2:
        return a * 0.0
    lo, span = lo2 / 2.0, (hi2 - lo2) / 2.0
    extra = (a - lo) * _reflect_sign(a, lo) - _reflect_folds(a, lo, span)
    xp = backend.get_array_module(a)
    return xp.where(_reflect_even(a, lo, span), extra + lo, (lo + span) - extra)


def _floor(a):
    return backend.get_array_module(a).floor(a)


def _floor_int64(a, bit):
    return backend.get_array_module(a).floor(a).astype(np.int64) + bit


def _rint_int64(a):
    return backend.get_array_module(a).rint(a).astype(np.int64)


def _grid_tap(a, offset, size, padding_mode, align):
    """bicubic's integer tap coordinates floor(a) + offset after padding (ATen's
    compute_coordinates)."""
    xp = backend.get_array_module(a)
    coord = xp.floor(a) + offset
    if padding_mode == "reflection":
        lo2, hi2 = (0, 2 * (size - 1)) if align else (-1, 2 * size - 1)
        coord = _reflect_array(coord, lo2, hi2)
    if padding_mode in ("border", "reflection"):
        coord = xp.clip(coord, 0, size - 1)
    return coord.astype(np.int64)


def _grid_rows(*a):
    """The rows (N*prod(S),) read at integer coordinates a[:-2] (one per axis, (N, *out_sp)),
    clipped; a[-2:] = (spatial, n) (untracked.computed's kernel)."""
    ints, (spatial, n) = a[:-2], a[-2:]
    xp = backend.get_array_module(ints[0])
    volume = math.prod(spatial)
    idx = (xp.arange(n) * volume).reshape((n,) + (1,) * (ints[0].ndim - 1))
    for k, (i, size) in enumerate(zip(ints, spatial, strict=True)):
        idx = idx + xp.clip(i, 0, size - 1) * math.prod(spatial[k + 1 :])
    return idx.reshape(-1)


def _grid_inside(*a):
    """(N, *out_sp, 1) mask (a[-1]'s dtype) of the coordinates inside a[-2] = spatial."""
    ints, (spatial, dtype) = a[:-2], a[-2:]
    xp = backend.get_array_module(ints[0])
    inside = True
    for i, size in zip(ints, spatial, strict=True):
        inside = inside & (i >= 0) & (i < size)
    return xp.asarray(inside[..., None], dtype=dtype)


@amp._float32_op  # on PyTorch's autocast float32 list
def grid_sample(
    input,
    grid,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool | None = None,
) -> Tensor:
    """Sample (N, C, H, W) at the points of grid (N, Ho, Wo, 2), (x, y) in [-1, 1]
    (spatial transformer networks, Jaderberg et al. 2015), or a volume (N, C, D, H, W) at
    grid (N, Do, Ho, Wo, 3), (x, y, z) (trilinear, as PyTorch's 5-d 'bilinear'). mode
    'bilinear', 'nearest' or 'bicubic' (images only; Keys' cubic, A = -0.75); padding_mode
    'zeros' (outside reads 0), 'border' (clamped to the edge) or 'reflection'; align_corners
    as PyTorch (default False). Gradients flow to the input and (bilinear, bicubic) to the
    grid."""
    x, g = float_tensor(input, "grid_sample"), float_tensor(grid, "grid_sample")
    if is_reduced(x._data.dtype) and g._data.dtype == x._data.dtype:  # float16, bfloat16
        # Computed in float32 and rounded once (recorded casts: the gradients come back
        # float16): rounding each of the cubic weights' and taps' steps to float16 put the
        # grid's gradient up to 0.24 from the float64 value where PyTorch's is 0.02 off
        return in_float32(grid_sample, x, g, mode, padding_mode, align_corners)
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"grid_sample: mode must be 'bilinear', 'nearest' or 'bicubic', got "
                         f"{mode!r}")  # fmt: skip
    if mode == "bicubic" and x.ndim != 4:
        raise ValueError(f"grid_sample: bicubic interpolation only supports 4D input, got "
                         f"input {tuple(x.shape)}")  # fmt: skip
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"grid_sample: padding_mode must be 'zeros', 'border' or 'reflection', "
                         f"got {padding_mode!r}")  # fmt: skip
    nd = x.ndim - 2  # 2 (images) or 3 (volumes)
    if nd not in (2, 3) or g.ndim != x.ndim or g.shape[-1] != nd or g.shape[0] != x.shape[0]:
        raise DescentError(
            f"grid_sample: expected input (N, C, H, W) and grid (N, Ho, Wo, 2), or input "
            f"(N, C, D, H, W) and grid (N, Do, Ho, Wo, 3), with the same N, got "
            f"{tuple(x.shape)} and {tuple(g.shape)}"
        )
    align = bool(align_corners)
    n, c, spatial = x.shape[0], x.shape[1], tuple(x.shape[2:])  # spatial (H, W) or (D, H, W)
    out_sp = tuple(g.shape[1:-1])
    xp = backend.get_array_module(x._data)
    # Pixel coordinates per spatial axis, in the input's order: the grid's first component
    # (x) indexes the last axis (W), y the one before, z (volumes) the first.
    coords = []
    for k, size in enumerate(spatial):
        ic = _unnormalize(g[..., nd - 1 - k], size, align)  # (N, *out_sp)
        if padding_mode == "reflection":
            ic = _reflect(ic, 0, 2 * (size - 1)) if align else _reflect(ic, -1, 2 * size - 1)
        if padding_mode in ("border", "reflection"):
            ic = _clip_strict(ic, size - 1.0)
        coords.append(ic)
    # Voxels as rows (N*prod(S), C): each sample point reads whole rows, so the gather and its
    # backward (a row scatter-add) move C values per index instead of one.
    volume = math.prod(spatial)
    rows = _shape.permute(x, 0, *range(2, x.ndim), 1).reshape(n * volume, c)

    def gather(ints):
        """Values at integer coordinate tensors (one per axis, (N, *out_sp)), 0 outside:
        (N, *out_sp, C), and the inside mask (N, *out_sp, 1). Both through
        untracked.computed: descent.compile replays them on each call's grid."""
        idx = computed(_grid_rows, tuple(ints), (spatial, n))
        vals = index_select(rows, 0, idx).reshape(n, *out_sp, c)
        return vals, computed(_grid_inside, tuple(ints), (spatial, x._data.dtype))

    # (N, *out_sp, C) -> (N, C, *out_sp), then contiguous as PyTorch's output (.view works)
    to_channels_first = (0, nd + 1, *range(1, nd + 1))
    if mode == "bicubic":
        return _grid_bicubic(g, spatial, padding_mode, align, gather, to_channels_first)
    if mode == "nearest":
        # Round half to even, as ATen's nearbyint; the grid's gradient is zeros (a step
        # function), as PyTorch's: a 0-d -0.0 linked to the grid with derivative 0 is added.
        vals, mask = gather([computed(_rint_int64, (ic,), ()) for ic in coords])
        out = _shape.permute(vals * mask, *to_channels_first).contiguous()
        if g.requires_grad:
            from ...ops.gaps_math_inplace import ZeroGradient  # noqa: PLC0415

            out = out + ZeroGradient.apply(g, value=xp.full((), -0.0, dtype=out._data.dtype))
        return out
    # Fractional parts as Tensors: the grid's gradient flows through them.
    fracs = [_shape.unsqueeze(ic - computed(_floor, (ic,), ()), -1) for ic in coords]
    out = None
    # The 2^nd corners, first axis outermost (PyTorch's order of the terms)
    for corner in itertools.product((0, 1), repeat=nd):
        weight = None
        for bit, f in zip(corner, fracs, strict=True):
            wk = f if bit else 1.0 - f
            weight = wk if weight is None else weight * wk
        vals, mask = gather([computed(_floor_int64, (ic,), (bit,))
                             for ic, bit in zip(coords, corner, strict=True)])  # fmt: skip
        term = vals * (weight * mask)
        out = term if out is None else out + term
    return _shape.permute(out, *to_channels_first).contiguous()  # (N, C, *out_sp)


def _cubic_weights(t: Tensor) -> list[Tensor]:
    """Keys' cubic convolution weights (A = -0.75, as PyTorch) of the 4 taps at offsets
    -1, 0, 1, 2 from floor(x), t = x - floor(x) (ATen's get_cubic_upsample_coefficients)."""
    a = -0.75

    def near(d):  # |d| <= 1
        return ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a

    return [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]


def _grid_bicubic(g, spatial, padding_mode, align, gather, to_channels_first) -> Tensor:
    """grid_sample's bicubic mode, as ATen's grid_sampler_2d: the 4x4 taps around the
    unpadded point, each tap's integer coordinate mapped by padding_mode on its own (border:
    clamped, reflection: folded), then cubic convolution along x for each of the 4 rows and
    along y. Gradients reach the input (through the gathered rows) and the grid (through the
    fractional parts)."""
    h, w = spatial
    ix = _unnormalize(g[..., 0], w, align)  # (N, Ho, Wo); padding is applied per tap below
    iy = _unnormalize(g[..., 1], h, align)
    wx = [_shape.unsqueeze(c, -1) for c in _cubic_weights(ix - computed(_floor, (ix,), ()))]
    wy = [_shape.unsqueeze(c, -1) for c in _cubic_weights(iy - computed(_floor, (iy,), ()))]

    def tap(coord, offset, size):
        """Integer tap coordinates after padding, through untracked.computed (replayed)."""
        return computed(_grid_tap, (coord,), (offset, size, padding_mode, align))

    out = None
    for i in range(4):
        rows_y = tap(iy, i - 1, h)
        row = None
        for j in range(4):
            vals, mask = gather([rows_y, tap(ix, j - 1, w)])
            term = vals * (wx[j] * mask)
            row = term if row is None else row + term
        out = row * wy[i] if out is None else out + row * wy[i]
    return _shape.permute(out, *to_channels_first).contiguous()  # (N, C, Ho, Wo)


def affine_grid(theta, size, align_corners: bool | None = None) -> Tensor:
    """The sampling grid (N, H, W, 2) of the 2-D affine maps theta (N, 2, 3) for an output of
    size (N, C, H, W): grid[n, i, j] = theta[n] @ (x_j, y_i, 1) with x, y the normalised
    pixel centres (corner centres at +-1 with align_corners); or the grid (N, D, H, W, 3) of
    3-D maps theta (N, 3, 4) for size (N, C, D, H, W), with (x, y, z, 1)."""
    t = as_tensor(theta)
    if t._data.dtype.kind not in "fV":  # PyTorch's ValueError (not a missing kernel)
        raise ValueError(f"affine_grid: Expected theta to have floating point type, but got "
                         f"{t.dtype} (shape {tuple(t.shape)}); use theta.float()")  # fmt: skip
    size = tuple(int(v) for v in size)
    nd = len(size) - 2
    if (
        nd not in (2, 3)
        or t.ndim != 3
        or tuple(t.shape[1:]) != (nd, nd + 1)
        or t.shape[0] != size[0]
    ):
        raise ValueError(f"affine_grid: expected theta (N, 2, 3) and size (N, C, H, W), or "
                         f"theta (N, 3, 4) and size (N, C, D, H, W), got {tuple(t.shape)} and "
                         f"{size}")  # fmt: skip
    n, spatial = size[0], size[2:]

    dt = np.dtype(t._data.dtype)

    def axis(m):
        # PyTorch's linspace_from_neg_one in theta's dtype: linspace(-1, 1, m) (its kernel,
        # value for value), then * (m - 1) / m without align_corners; a grid one ulp off moves
        # grid_sample's floor at pixel centres, and with it the gradient
        if m <= 1:
            return np.zeros(1, dt)
        r = float_space(-1.0, 1.0, m, dt)
        return r if align_corners else r * dt.type(m - 1) / dt.type(m)

    # Coordinate arrays over the output's axes, first axis outermost; the grid lists x first
    mesh = np.meshgrid(*[axis(m) for m in spatial], indexing="ij")
    base = np.stack([*mesh[::-1], np.ones_like(mesh[0])], axis=-1).reshape(1, -1, nd + 1)
    xp = backend.get_array_module(t._data)
    base_t = Tensor._wrap(xp.asarray(base.astype(dt)))
    return (base_t @ _shape.swapaxes(t, 1, 2)).reshape(n, *spatial, nd)
