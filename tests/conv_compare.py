"""Shared by the convolution fast-path tests (tests/test_conv_speed_s13.py,
tests/test_cnn_speed_s14.py): the numba kernels switched on or off, and one op's output and
input gradients compared between descent and PyTorch."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

import descent as ds
from descent.kernels import cpu


@contextlib.contextmanager
def kernels(flag: bool):
    previous = cpu.set_enabled(flag)
    try:
        yield
    finally:
        cpu.set_enabled(previous)


def grads(lib, fn, arrays, need, dtype, gy_seed=5):
    """fn's output and the gradients of the inputs flagged in `need`, in library lib."""
    ts = [lib.tensor(np.asarray(a, dtype=dtype), requires_grad=r) for a, r in zip(arrays, need)]
    y = fn(*ts)
    gy = np.random.default_rng(gy_seed).standard_normal(tuple(y.shape)).astype(dtype)
    y.backward(lib.tensor(gy))
    out = [np.asarray(y.detach().numpy())]
    return out + [t.grad.numpy() if r else None for t, r in zip(ts, need)]


def compare(dfn, tfn, arrays, need=None, dtype=np.float32):
    """descent's dfn against PyTorch's tfn: output, then each flagged input's gradient."""
    need = need or [True] * len(arrays)
    got = grads(ds, dfn, arrays, need, dtype)
    want = grads(torch, tfn, arrays, need, dtype)
    for name, a, b in zip(("y", "gx", "gw", "gb"), got, want):
        if b is None:
            assert a is None
            continue
        assert a.dtype == b.dtype and a.shape == b.shape, name
        # absolute tolerance relative to the array's largest value: a weight gradient sums
        # thousands of products, and an entry near 0 keeps float32 rounding of the large ones
        # (Winograd regroups them too: not the same rounding as PyTorch's)
        scale = max(1.0, float(np.abs(b).max(initial=0.0)))
        if dtype == np.float32:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale, err_msg=name)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-11 * scale, err_msg=name)
