"""Fractional max pooling (Graham 2014, "Fractional Max-Pooling"): fractional_max_pool2d/3d
and their `_with_indices` forms; plus the two torch.nn.functional names that are torch's
top-level functions (conv_tbc, native_channel_shuffle; docs/torch_gaps_nn.md).

Each output cell takes the max of a kernel-sized window whose start follows a pseudo-random
sequence per (sample, channel) plane: for one spatial dim of input size n, output size m and
kernel k, with u in [0, 1) drawn per plane,

    start[i] = int((i + u) alpha) - int(u alpha),  alpha = (n - k) / (m - 1),  i < m - 1
    start[m - 1] = n - k

computed in the input's dtype (as PyTorch's CPU kernel, so that a given `_random_samples`
picks the same windows). The windows are gathered and reduced with descent ops (gather, max),
so the gradient flows to each window's maximum.
"""

from __future__ import annotations

import numpy as np

from ... import amp, backend
from ...creation import rand
from ...creation_random import draws_through_ops
from ...ops.indexing import gather
from ...ops.untracked import computed
from ._inputs import float_tensor, int_tuple

__all__ = [
    "fractional_max_pool2d",
    "fractional_max_pool2d_with_indices",
    "fractional_max_pool3d",
    "fractional_max_pool3d_with_indices",
]


def _starts(u: np.ndarray, n: int, m: int, k: int) -> np.ndarray:
    """Window starts (..., m) for samples u (...,) in u's dtype (PyTorch's generate_intervals)."""
    out = np.empty(u.shape + (m,), np.int64)
    if m > 1:
        alpha = u.dtype.type(n - k) / u.dtype.type(m - 1)
        i = np.arange(m - 1, dtype=u.dtype)
        first = ((i + u[..., None]) * alpha).astype(np.int64)  # (..., m - 1)
        out[..., :-1] = first - (u * alpha).astype(np.int64)[..., None]
    if m > 0:
        out[..., -1] = n - k
    return out


@draws_through_ops  # (descent.compile replays its draw: the windows are computed by ops)
def _fractional_max_pool(input, kernel_size, output_size, output_ratio, samples, dims: int,
                         op: str):  # fmt: skip
    x = float_tensor(input, op)
    if x.ndim not in (dims + 1, dims + 2):
        raise ValueError(f"{op}: expected a {dims + 1}-d or {dims + 2}-d input, got shape "
                         f"{tuple(x.shape)}")  # fmt: skip
    batched = x.ndim == dims + 2
    if not batched:
        x = x.unsqueeze(0)
    n_, c_ = x.shape[:2]
    size = tuple(x.shape[2:])
    k = int_tuple(kernel_size, dims, "kernel_size", op)
    if output_size is None:
        if output_ratio is None:
            raise ValueError(f"{op}: fractional_max_pool requires specifying either an "
                             "output_size or an output_ratio")  # fmt: skip
        ratio = (output_ratio,) * dims if np.isscalar(output_ratio) else tuple(output_ratio)
        out = tuple(int(s * r) for s, r in zip(size, ratio))
    else:
        out = int_tuple(output_size, dims, "output_size", op)
    for d in range(dims):
        if out[d] + k[d] - 1 > size[d]:
            raise RuntimeError(
                f"{op}: output size {out[d]} + kernel size {k[d]} - 1 is too large for input "
                f"size {size[d]} in spatial dim {d} (input {tuple(x.shape)}); use a smaller "
                "output_size or kernel_size"
            )
    if samples is None:  # one u per (plane, spatial dim), in the input's dtype
        samples = rand(n_, c_, dims, dtype=x.dtype, device=x.device)
    elif samples.dtype != x.dtype:  # PyTorch's check (no silent conversion of the draws)
        raise RuntimeError(
            f"{op}: Expect _random_samples to have the same dtype as input "
            f"({x.dtype}), got {samples.dtype}; convert them with .to(x.dtype)"
        )
    if tuple(samples.shape) != (n_, c_, dims):
        raise ValueError(f"{op}: _random_samples must have shape {(n_, c_, dims)}, got "
                         f"{tuple(samples.shape)}")  # fmt: skip
    # (the windows and the picked positions through untracked.computed: descent.compile
    # recomputes them from each call's samples and maxima instead of freezing them)
    kk = int(np.prod(k))
    index = computed(_window_index, (samples.detach(),), (x._data.dtype, size, out, k, dims))
    # the spatial size spelled out: a -1 is ambiguous for an empty batch (N = 0)
    windows = gather(x.reshape(n_, c_, int(np.prod(size))), 2, index)
    windows = windows.reshape(n_, c_, int(np.prod(out)), kk)
    values, arg = windows.max(dim=-1)  # the first maximum on ties, as PyTorch's `>`
    indices = computed(_picked, (index, arg), (out, kk))
    values = values.reshape((n_, c_) + out)
    if not batched:
        values, indices = values.squeeze(0), indices.squeeze(0)
    return values, indices


def _window_index(samples, dt, size: tuple, out: tuple, k: tuple, dims: int):
    """(N, C, cells * kernel) int64 input positions of the windows that the samples (N, C,
    dims) pick (untracked.computed's kernel)."""
    u = np.asarray(backend.as_numpy(samples), dtype=dt)
    n_, c_ = u.shape[:2]
    # PyTorch's kernels read the samples W, H in 2-d but T, H, W in 3-d.
    order = (1, 0) if dims == 2 else (0, 1, 2)
    strides = np.cumprod((1,) + size[::-1])[:-1][::-1]  # row-major strides of the spatial dims
    flat = np.zeros((n_, c_) + out + k, np.int64)  # (N, C, *out, *kernel): input positions
    for d in range(dims):
        st = _starts(u[:, :, order[d]], size[d], out[d], k[d])  # (N, C, out_d)
        pos = st[..., :, None] + np.arange(k[d])  # (N, C, out_d, k_d)
        shape = [n_, c_] + [1] * (2 * dims)
        shape[2 + d], shape[2 + dims + d] = out[d], k[d]
        flat = flat + (pos * strides[d]).reshape(shape)
    cells, kk = int(np.prod(out)), int(np.prod(k))
    return backend.get_array_module(samples).asarray(flat.reshape(n_, c_, cells * kk))


def _picked(index, arg, out: tuple, kk: int):
    """The input position of each window's maximum, (N, C, *out) (untracked.computed's kernel:
    `arg` is the maximum's place in its window)."""
    n_, c_ = index.shape[:2]
    flat = backend.as_numpy(index).reshape(n_, c_, int(np.prod(out)), kk)  # (no -1: N may be 0)
    picked = np.take_along_axis(flat, backend.as_numpy(arg)[..., None], -1)[..., 0]
    return backend.get_array_module(index).asarray(picked.reshape((n_, c_) + out))


@amp._float32_op  # on PyTorch's autocast float32 list
def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):  # fmt: skip
    """(values, indices) of fractional max pooling over (N, C, H, W) or (C, H, W); indices
    are flat positions h W + w, as PyTorch's. `_random_samples` (N, C, 2) in [0, 1) fixes
    the windows (drawn from descent's generator otherwise).

    Raises:
        ValueError: neither output_size nor output_ratio, or a bad input rank.
        RuntimeError: output_size + kernel_size - 1 exceeds the input size.
    """
    return _fractional_max_pool(input, kernel_size, output_size, output_ratio, _random_samples,
                                2, "fractional_max_pool2d")  # fmt: skip


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):  # fmt: skip
    """Fractional max pooling over (N, C, H, W); (values, indices) when return_indices."""
    out = fractional_max_pool2d_with_indices(input, kernel_size, output_size, output_ratio,
                                             return_indices, _random_samples)  # fmt: skip
    return out if return_indices else out[0]


@amp._float32_op  # on PyTorch's autocast float32 list
def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):  # fmt: skip
    """(values, indices) of fractional max pooling over (N, C, T, H, W) or (C, T, H, W);
    indices are flat positions t H W + h W + w; `_random_samples` is (N, C, 3)."""
    return _fractional_max_pool(input, kernel_size, output_size, output_ratio, _random_samples,
                                3, "fractional_max_pool3d")  # fmt: skip


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):  # fmt: skip
    """Fractional max pooling over (N, C, T, H, W); (values, indices) when return_indices."""
    out = fractional_max_pool3d_with_indices(input, kernel_size, output_size, output_ratio,
                                             return_indices, _random_samples)  # fmt: skip
    return out if return_indices else out[0]
