"""The lazy layers against PyTorch's: the first input fixes the size, the module becomes the
plain class with PyTorch's parameter names and shapes, and loaded weights give the same
outputs; a state_dict loads before the first call (its shapes fix the size). Also the legacy
names Container, NLLLoss2d and DataParallel."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import descent
import descent.nn as nn

CASES = [
    ("LazyLinear", (5,), (4, 7)),
    ("LazyLinear", (3,), (2, 4, 6)),
    ("LazyConv1d", (4, 3), (2, 3, 9)),
    ("LazyConv1d", (4, 3), (3, 9)),  # unbatched: channels are dim 0
    ("LazyConv2d", (4, 3), (2, 3, 8, 8)),
    ("LazyConv3d", (2, 2), (1, 3, 4, 4, 4)),
    ("LazyConvTranspose1d", (4, 3), (2, 3, 5)),
    ("LazyConvTranspose2d", (4, 3), (2, 3, 5, 5)),
    ("LazyConvTranspose3d", (2, 2), (1, 3, 3, 3, 3)),
    ("LazyBatchNorm1d", (), (4, 3)),
    ("LazyBatchNorm2d", (), (4, 3, 2, 2)),
    ("LazyBatchNorm3d", (), (2, 3, 2, 2, 2)),
    ("LazyInstanceNorm1d", (), (3, 5, 6)),
    ("LazyInstanceNorm2d", (), (2, 3, 4, 4)),
    ("LazyInstanceNorm3d", (), (2, 3, 2, 3, 4)),
]


@pytest.mark.parametrize(("name", "args", "shape"), CASES, ids=[str(i) for i in range(15)])
def test_lazy_layers_match_torch(name, args, shape):
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns that lazy modules are experimental
        theirs(torch.tensor(x))
    ours(descent.tensor(x))
    assert type(ours).__name__ == type(theirs).__name__ == name[4:]
    sd = theirs.state_dict()
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in sd.items()
    ]
    ours.load_state_dict({k: v.detach().numpy() for k, v in sd.items()})
    ours.eval(), theirs.eval()
    expected = theirs(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(ours(descent.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_lazy_keeps_parameter_objects_and_loads_before_the_first_call():
    lin = nn.LazyLinear(3)
    w = lin.weight
    assert lin.has_uninitialized_params() and lin.weight.shape == (3, 0)
    lin(descent.randn(2, 5))
    assert lin.weight is w and w.shape == (3, 5) and np.abs(w.numpy()).max() > 0
    assert np.abs(w.numpy()).max() <= 1 / np.sqrt(5)  # Linear's initialisation
    fresh = nn.LazyConv2d(4, 3)
    theirs = torch.nn.Conv2d(6, 4, 3)
    fresh.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert type(fresh) is nn.Conv2d and fresh.in_channels == 6
    x = np.random.default_rng(1).standard_normal((1, 6, 5, 5)).astype(np.float32)
    expected = theirs(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(fresh(descent.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-6)
    # An unbatched first input: descent reads its channel dim (PyTorch's lazy norms read dim 1
    # and then fail on that input).
    norm = nn.LazyInstanceNorm3d()
    assert norm(descent.randn(3, 2, 3, 4)).shape == (3, 2, 3, 4) and norm.num_features == 3


def test_legacy_names():
    with pytest.warns(FutureWarning, match="Container"):
        c = nn.Container(a=nn.Linear(2, 2))
    assert list(c.state_dict()) == ["a.weight", "a.bias"]
    with pytest.warns(FutureWarning, match="NLLLoss2d"):
        loss = nn.NLLLoss2d(ignore_index=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.nn.NLLLoss2d(ignore_index=1)
    x = np.log(np.random.default_rng(0).dirichlet(np.ones(3), size=(2, 2, 2))).astype(np.float32)
    x = np.moveaxis(x, -1, 1).copy()  # (N, C, H, W) log-probabilities
    t = np.array([[[0, 1], [2, 2]], [[1, 0], [0, 2]]])
    expected = theirs(torch.tensor(x), torch.tensor(t)).numpy()
    np.testing.assert_allclose(
        loss(descent.tensor(x), descent.tensor(t)).numpy(), expected, rtol=1e-6
    )
    model = nn.Linear(2, 3)
    dp = nn.DataParallel(model)
    t_dp = torch.nn.DataParallel(torch.nn.Linear(2, 3))
    assert list(dp.state_dict()) == list(t_dp.state_dict()) == ["module.weight", "module.bias"]
    x2 = descent.randn(4, 2)
    np.testing.assert_array_equal(dp(x2).numpy(), model(x2).numpy())
    with pytest.raises(NotImplementedError):
        nn.DataParallel(model, device_ids=[0, 1])
