"""torch.segment_reduce (descent.segment_reduce): values and gradients against torch for every
reduce, with and without `initial`, empty segments, batched lengths along a later axis,
offsets, float64, and torch's errors. It was missing (AttributeError)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

DATA = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 5.0], dtype=np.float32)


def _both(fn, data, dtype=np.float32):
    out = []
    for lib in (ds, torch):
        x = lib.tensor(data.astype(dtype), requires_grad=True)
        y = fn(lib, x)
        w = lib.arange(1, y.numel() + 1, dtype=y.dtype).reshape(tuple(y.shape))
        (g,) = lib.autograd.grad((y.nan_to_num(0.0, 0.0, 0.0) * w).sum(), x)
        out.append((y.detach().numpy(), g.numpy()))
    return out


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "prod"])
@pytest.mark.parametrize("initial", [None, 10.0, -3.0])
def test_segment_reduce_lengths_as_torch(reduce, initial):
    lengths = [2, 0, 4]  # an empty segment; the last one holds a tie (5, 5)
    (y, g), (ty, tg) = _both(
        lambda lib, x: lib.segment_reduce(x, reduce, lengths=lib.tensor(lengths), initial=initial),
        DATA,
    )
    np.testing.assert_allclose(y, ty, rtol=1e-6)
    np.testing.assert_allclose(g, tg, rtol=1e-6)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "prod"])
def test_segment_reduce_batched_axis_offsets_and_float64_as_torch(reduce):
    data = np.arange(24, dtype=np.float64).reshape(2, 4, 3) % 7 - 2.5
    lengths = np.array([[1, 3, 0], [2, 0, 2]])
    (y, g), (ty, tg) = _both(
        lambda lib, x: lib.segment_reduce(x, reduce, lengths=lib.tensor(lengths), axis=1),
        data,
        np.float64,
    )
    np.testing.assert_allclose(y, ty, rtol=1e-12)
    np.testing.assert_allclose(g, tg, rtol=1e-12)
    assert y.dtype == np.float64
    offsets = np.array([0, 1, 1, 4])  # the same segments as lengths [1, 0, 3]
    (y, g), (ty, tg) = _both(
        lambda lib, x: lib.segment_reduce(x, reduce, offsets=lib.tensor(offsets), axis=-2),
        data[0],
    )
    np.testing.assert_allclose(y, ty, rtol=1e-6)
    np.testing.assert_allclose(g, tg, rtol=1e-6)


def test_segment_reduce_errors_as_torch():
    for lib in (ds, torch):
        x = lib.ones(2, 3)
        with pytest.raises(RuntimeError, match="last dimension of lengths"):
            lib.segment_reduce(x, "max", lengths=lib.tensor([1, 1]), axis=1)
        with pytest.raises(RuntimeError, match="sum to"):
            lib.segment_reduce(x, "max", lengths=lib.tensor([1, 2]))
        with pytest.raises(RuntimeError):
            lib.segment_reduce(x, "median", lengths=lib.tensor([1, 1]))
    # unsafe skips the sum check (descent's result is then its own: PyTorch's is undefined)
    assert ds.segment_reduce(ds.ones(3), "sum", lengths=ds.tensor([1, 2]), unsafe=True).shape == (
        2,
    )
