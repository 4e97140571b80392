"""Property tests (hypothesis): random shapes and broadcasting pairs for elementwise and reduction
ops; values against NumPy, gradients against PyTorch (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import descent as ds

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "pow": (lambda a, b: a**b, lambda a, b: a**b),
    "maximum": (ds.maximum, torch.maximum),
    "minimum": (ds.minimum, torch.minimum),
    "where": (lambda a, b: ds.where(a > b, a * 2, b), lambda a, b: torch.where(a > b, a * 2, b)),
}


def _values(shape, seed, lo=0.5, hi=2.0):
    """Distinct values (no ties for maximum/minimum/where), positive for div and pow."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    v = lo + (hi - lo) * (rng.permutation(n) + rng.uniform(0.1, 0.9, n)) / max(n, 1)
    return v.reshape(shape)


def _compare_grads(ds_fn, t_fn, arrays):
    xs = [ds.tensor(a, dtype=ds.float64, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out, tout = ds_fn(*xs), t_fn(*ts)
    assert out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    w = np.random.default_rng(0).standard_normal(out.shape)
    (out * ds.tensor(w, dtype=ds.float64)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    for x, t in zip(xs, ts):
        assert x.grad.shape == x.shape
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(BINARY))
@SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_binary_elementwise_broadcasting(name, shapes, seed):
    sa, sb = shapes.input_shapes
    a = _values(sa, seed)
    b = _values(sb, seed + 1, 0.55, 1.95)  # different grid: a and b never tie
    ds_fn, t_fn = BINARY[name]
    out = ds_fn(ds.tensor(a, dtype=ds.float64), ds.tensor(b, dtype=ds.float64))
    assert out.shape == shapes.result_shape
    _compare_grads(ds_fn, t_fn, [a, b])


@st.composite
def shape_and_axis(draw, min_side=1):
    shape = draw(array_shapes(min_dims=0, max_dims=4, min_side=min_side, max_side=4))
    nd = len(shape)
    if nd == 0 or draw(st.booleans()):
        axis = None
    else:
        axes = draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
        axis = axes[0] if len(axes) == 1 and draw(st.booleans()) else tuple(axes)
    return shape, axis, draw(st.booleans())


REDUCTIONS = {
    "sum": (lambda x, ax, k: x.sum(ax, keepdims=k),
            lambda x, ax, k: x.sum(() if ax is None else ax, keepdim=k) if ax is not None
            else (x.sum() if not k else x.sum().reshape((1,) * x.ndim))),
    "mean": (lambda x, ax, k: x.mean(ax, keepdims=k),
             lambda x, ax, k: x.mean(ax, keepdim=k) if ax is not None
             else (x.mean() if not k else x.mean().reshape((1,) * x.ndim))),
    "max": (lambda x, ax, k: x.amax(ax, keepdims=k),
            lambda x, ax, k: torch.amax(x, ax if ax is not None else tuple(range(x.ndim)),
                                        keepdim=k)),
    "min": (lambda x, ax, k: ds.amin(x, ax, keepdims=k),
            lambda x, ax, k: torch.amin(x, ax if ax is not None else tuple(range(x.ndim)),
                                        keepdim=k)),
    "logsumexp": (lambda x, ax, k: ds.logsumexp(x, ax, keepdims=k),
                  lambda x, ax, k: torch.logsumexp(x, ax if ax is not None
                                                   else tuple(range(x.ndim)), keepdim=k)),
    "var0": (lambda x, ax, k: x.var(ax, correction=0, keepdims=k),
             lambda x, ax, k: torch.var(x, ax, correction=0, keepdim=k)),
    # p=2: torch.norm's default 'fro' over more than two dims is matrix_norm's error (as torch)
    "norm": (lambda x, ax, k: ds.norm(x, 2, axis=ax, keepdims=k),
             lambda x, ax, k: torch.linalg.vector_norm(x, dim=ax, keepdim=k)),
    "prod": (lambda x, ax, k: x.prod(ax, keepdims=k),
             lambda x, ax, k: _torch_prod(x, ax, k)),
}  # fmt: skip


def _torch_prod(x, ax, k):
    axes = tuple(range(x.ndim)) if ax is None else ((ax,) if isinstance(ax, int) else ax)
    out = x
    for a in sorted(axes, reverse=True):
        out = out.prod(a, keepdim=True)
    if not k:
        out = out.reshape([n for i, n in enumerate(x.shape) if i not in axes])
    return out


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@SETTINGS
@given(case=shape_and_axis(), seed=st.integers(0, 2**16))
def test_reductions_over_random_axes(name, case, seed):
    shape, axis, keep = case
    ds_fn, t_fn = REDUCTIONS[name]
    x = _values(shape, seed, -1.5, 1.5) if name not in ("prod", "norm") else _values(shape, seed)
    out = ds_fn(ds.tensor(x, dtype=ds.float64), axis, keep)
    expected = getattr(np, {"var0": "var", "logsumexp": "sum", "norm": "sum"}.get(name, name))
    if name not in ("logsumexp", "norm", "var0"):
        np.testing.assert_allclose(out.numpy(), expected(x, axis=axis, keepdims=keep), rtol=1e-12)
    _compare_grads(lambda t: ds_fn(t, axis, keep), lambda t: t_fn(t, axis, keep), [x])


@SETTINGS
@given(shape=array_shapes(min_dims=1, max_dims=4, max_side=5), data=st.data())
def test_softmax_log_softmax_random_axis(shape, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = _values(shape, 3, -3, 3)
    _compare_grads(lambda t: ds.softmax(t, axis) * ds.log_softmax(t, dim=axis),
                   lambda t: torch.softmax(t, axis) * torch.log_softmax(t, axis), [x])  # fmt: skip
    s = ds.softmax(ds.tensor(x, dtype=ds.float64), axis).numpy()
    np.testing.assert_allclose(s.sum(axis), 1.0, rtol=1e-12)


@SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
def test_python_scalars_and_broadcast_keep_float32(shapes):
    sa, sb = shapes.input_shapes
    a = ds.tensor(_values(sa, 0), dtype=ds.float32)
    b = ds.tensor(_values(sb, 1), dtype=ds.float32)
    for y in (a + b, a * 2.5, 1.5 - b, a / b, ds.maximum(a, 0.7), a**2, 2.0**a):
        assert y.dtype == ds.float32
