"""Ops at the edges, second sweep: the disagreements with PyTorch found by running a peer
project's op suite against descent (docs/pytorch.md, "Peer op suite"). Each test compares
values, gradients, dtypes or the exception type with PyTorch 2.x."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

# ---------------------------------------------------------------------------------------- roll


@pytest.mark.parametrize(
    "shifts,dims",
    [
        (1, None),
        ((1,), None),
        (-3, 0),
        ((2, 1), (0, 1)),
        ([2, -3], [0, 2]),
        ((1, 1), (1, 1)),
        (5, -1),
    ],
)
def test_roll_matches_torch_values_and_gradients(shifts, dims):
    a = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
    x = ds.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    y = x.roll(shifts, dims) if dims is not None else x.roll(shifts)
    ty = t.roll(shifts, dims) if dims is not None else t.roll(shifts)
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    w = np.arange(a.size, dtype=np.float32).reshape(a.shape)
    (y * ds.tensor(w)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


def test_roll_gradient_float64_finite_differences():
    x = ds.tensor(np.random.default_rng(1).standard_normal((3, 4)), requires_grad=True)
    assert ds.autograd.gradcheck(lambda v: v.roll((1, -2), (0, 1)) * v, (x,))


@pytest.mark.parametrize(
    "shifts,dims",
    [((1, 2), None), (1, (0, 1)), ((1, 2), 0), ((), ()), ([1, 2, 3], [0, 1])],
)
def test_roll_refuses_unaligned_shifts_and_dims_as_torch(shifts, dims):
    # NumPy broadcasts a scalar shift over the axes or adds several shifts on one axis; PyTorch
    # refuses both, and so must descent (it returned a rolled tensor before).
    t = torch.zeros(2, 4)
    x = ds.zeros(2, 4)
    with pytest.raises(RuntimeError):
        t.roll(shifts, dims) if dims is not None else t.roll(shifts)
    with pytest.raises(RuntimeError, match="roll"):
        x.roll(shifts, dims) if dims is not None else x.roll(shifts)
    with pytest.raises(RuntimeError, match="roll"):
        ds.roll(x, shifts, dims)


def test_roll_of_empty_and_0d_as_torch():
    for shape in [(0, 3), ()]:
        t = torch.zeros(shape)
        x = ds.zeros(shape)
        assert tuple(x.roll(1).shape) == tuple(t.roll(1).shape)
