"""F.linear_cross_entropy and nn.LinearCrossEntropyLoss (torch 2.13) against torch: losses and
gradients, class-index and probability targets, K-dimensional out_features, bias, weights,
label smoothing, ignore_index (None ignores nothing), reductions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

RNG = np.random.default_rng(4)


@pytest.mark.parametrize("out_features", [(), (3,)])
@pytest.mark.parametrize("kw", [
    {}, {"bias": True}, {"reduction": "sum", "label_smoothing": 0.1},
    {"reduction": "none", "ignore_index": 2}, {"weight": [1.0, 2.0, 0.5, 1.5, 1.0]},
])  # fmt: skip
def test_module_matches_torch(out_features, kw):
    kw = dict(kw)
    w = kw.pop("weight", None)
    dw = None if w is None else ds.tensor(w)
    tw = None if w is None else torch.tensor(w)
    d = ds.nn.LinearCrossEntropyLoss(6, 5, out_features=out_features, weight=dw, **kw)
    t = torch.nn.LinearCrossEntropyLoss(6, 5, out_features=out_features, weight=tw, **kw)
    assert list(d.state_dict()) == list(t.state_dict())
    t.load_state_dict({k: torch.tensor(v.numpy()) for k, v in d.state_dict().items()})
    x = RNG.standard_normal((4, 6)).astype(np.float32)
    y = RNG.integers(0, 5, (4, *out_features))
    dx, tx = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    dl, tl = d(dx, ds.tensor(y)), t(tx, torch.tensor(y))
    np.testing.assert_allclose(dl.detach().numpy(), tl.detach().numpy(), rtol=1e-5, atol=1e-6)
    dl.sum().backward()
    tl.sum().backward()
    np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(d.linear.weight.grad.numpy(), t.linear.weight.grad.numpy(),
                               rtol=1e-4, atol=1e-6)  # fmt: skip


def test_functional_with_probability_targets_and_errors():
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    w = RNG.standard_normal((5, 4)).astype(np.float32)
    p = RNG.random((3, 5)).astype(np.float32)
    p /= p.sum(1, keepdims=True)
    d = ds.nn.functional.linear_cross_entropy(ds.tensor(x), ds.tensor(w), ds.tensor(p))
    t = torch.nn.functional.linear_cross_entropy(torch.tensor(x), torch.tensor(w), torch.tensor(p))
    np.testing.assert_allclose(d.item(), t.item(), rtol=1e-5)
    with pytest.raises(RuntimeError, match="features"):
        ds.nn.functional.linear_cross_entropy(ds.tensor(x), ds.ones(5, 3), ds.tensor([0, 1, 2]))
    with pytest.raises(RuntimeError, match="label_smoothing"):
        ds.nn.LinearCrossEntropyLoss(4, 5, label_smoothing=2.0)
