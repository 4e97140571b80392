"""The lazy layers against PyTorch's: the first input fixes the size, the module becomes the
plain class with PyTorch's parameter names and shapes, and loaded weights give the same
outputs; a state_dict loads before the first call (its shapes fix the size). Also the legacy
names Container, NLLLoss2d and DataParallel, and AdaptiveLogSoftmaxWithLoss."""

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
    # materialised and loaded; the class changes at the first forward, as PyTorch's
    assert type(fresh) is nn.LazyConv2d and not fresh.has_uninitialized_params()
    assert fresh.in_channels == 6
    x = np.random.default_rng(1).standard_normal((1, 6, 5, 5)).astype(np.float32)
    expected = theirs(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(fresh(descent.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert type(fresh) is nn.Conv2d
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


# -- AdaptiveLogSoftmaxWithLoss ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", [dict(), dict(div_value=2.0, head_bias=True)])
def test_adaptive_log_softmax_matches_torch(kw, dtype):
    torch.manual_seed(0)
    theirs = torch.nn.AdaptiveLogSoftmaxWithLoss(16, 20, [5, 12], **kw)
    ours = nn.AdaptiveLogSoftmaxWithLoss(16, 20, [5, 12], **kw)
    sd = theirs.state_dict()
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in sd.items()
    ]
    ours.load_state_dict({k: v.detach().numpy() for k, v in sd.items()})
    ours.to(dtype)
    theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 16)).astype(dtype)
    target = np.array([0, 4, 5, 11, 12, 19, 3])  # every cluster, both edges of each
    xs, xt = descent.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, loss = ours(xs, descent.tensor(target))
    t_out, t_loss = theirs(xt, torch.tensor(target))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.numpy(), t_out.detach().numpy(), **tol)
    np.testing.assert_allclose(loss.numpy(), t_loss.detach().numpy(), **tol)
    (loss + out[2]).backward()
    (t_loss + t_out[2]).backward()
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy(), **tol)
    t_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), **tol)
    lp, t_lp = ours.log_prob(descent.tensor(x)), theirs.log_prob(torch.tensor(x))
    np.testing.assert_allclose(lp.numpy(), t_lp.detach().numpy(), **tol)
    np.testing.assert_allclose(np.exp(lp.numpy()).sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(ours.predict(descent.tensor(x)).numpy(),
                                  theirs.predict(torch.tensor(x)).numpy())  # fmt: skip
    o1, l1 = ours(descent.tensor(x[0]), descent.tensor(np.array(11)))  # unbatched
    t1, tl1 = theirs(torch.tensor(x[0]), torch.tensor(11))
    np.testing.assert_allclose(o1.numpy(), t1.detach().numpy(), **tol)


def test_adaptive_log_softmax_errors():
    for cutoffs in ([], [5, 3], [0, 4], [4, 20], [4, 4]):
        with pytest.raises(ValueError, match="cutoffs"):
            nn.AdaptiveLogSoftmaxWithLoss(8, 20, cutoffs)
    asm = nn.AdaptiveLogSoftmaxWithLoss(8, 20, [4])
    with pytest.raises(RuntimeError, match="Target values"):
        asm(descent.randn(2, 8), descent.tensor([0, 20]))
    with pytest.raises(RuntimeError, match="batch dimension"):
        asm(descent.randn(3, 8), descent.tensor([0, 1]))
