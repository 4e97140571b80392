"""descent.nn.utils.prune against torch.nn.utils.prune: the same masks (distinct magnitudes,
so no ties), parameter/buffer names, forward values, gradients reaching weight_orig, repeated
pruning (PruningContainer), global pruning, custom masks and remove()."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as tprune

import descent as ds
import descent.nn.utils.prune as dprune

RNG = np.random.default_rng(5)


def _pair(shape=(4, 6)):
    w = RNG.permutation(np.prod(shape)).reshape(shape).astype(np.float32) - 11.5  # distinct
    w *= np.where(RNG.random(shape) < 0.5, -1, 1).astype(np.float32)
    b = RNG.standard_normal(shape[0]).astype(np.float32)
    d, t = ds.nn.Linear(shape[1], shape[0]), torch.nn.Linear(shape[1], shape[0])
    with ds.no_grad():
        d.weight.copy_(ds.tensor(w))
        d.bias.copy_(ds.tensor(b))
    with torch.no_grad():
        t.weight.copy_(torch.tensor(w))
        t.bias.copy_(torch.tensor(b))
    return d, t


def _same(d, t):
    assert [n for n, _ in d.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in d.named_buffers()] == [n for n, _ in t.named_buffers()]
    np.testing.assert_array_equal(d.weight_mask.numpy(), t.weight_mask.numpy())
    x = RNG.standard_normal((3, d.in_features)).astype(np.float32)
    yd, yt = d(ds.tensor(x)), t(torch.tensor(x))
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    yd.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(d.weight_orig.grad.numpy(), t.weight_orig.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("amount", [0, 3, 0.25, 0.5, 1.0])
def test_l1_unstructured(amount):
    d, t = _pair()
    dprune.l1_unstructured(d, "weight", amount=amount)
    tprune.l1_unstructured(t, "weight", amount=amount)
    _same(d, t)


@pytest.mark.parametrize("n,dim,amount", [(1, 0, 2), (2, 0, 0.5), (2, 1, 0.34),
                                          (float("inf"), 1, 2), (-float("inf"), 0, 1)])  # fmt: skip
def test_ln_structured(n, dim, amount):
    d, t = _pair()
    dprune.ln_structured(d, "weight", amount=amount, n=n, dim=dim)
    tprune.ln_structured(t, "weight", amount=amount, n=n, dim=dim)
    _same(d, t)


def test_repeated_pruning_combines_masks():
    d, t = _pair()
    for lib, mod in ((dprune, d), (tprune, t)):
        lib.l1_unstructured(mod, "weight", amount=0.3)
        lib.ln_structured(mod, "weight", amount=1, n=1, dim=0)
        lib.l1_unstructured(mod, "weight", amount=2)
    _same(d, t)
    assert isinstance(next(h for h in d._forward_pre_hooks.values()), dprune.PruningContainer)


def test_global_and_custom_mask():
    (d1, t1), (d2, t2) = _pair((3, 4)), _pair((5, 3))
    dprune.global_unstructured([(d1, "weight"), (d2, "weight")],
                               pruning_method=dprune.L1Unstructured, amount=0.4)  # fmt: skip
    tprune.global_unstructured([(t1, "weight"), (t2, "weight")],
                               pruning_method=tprune.L1Unstructured, amount=0.4)  # fmt: skip
    _same(d1, t1)
    _same(d2, t2)
    d3, t3 = _pair((2, 3))
    mask = np.array([[1, 0, 1], [0, 1, 1]], np.float32)
    dprune.custom_from_mask(d3, "bias", mask=ds.tensor(mask[0, :2]))
    tprune.custom_from_mask(t3, "bias", mask=torch.tensor(mask[0, :2]))
    np.testing.assert_array_equal(d3.bias.detach().numpy(), t3.bias.detach().numpy())


def test_remove_and_is_pruned():
    d, t = _pair()
    for lib, mod in ((dprune, d), (tprune, t)):
        lib.l1_unstructured(mod, "weight", amount=5)
        assert lib.is_pruned(mod)
        lib.remove(mod, "weight")
        assert not lib.is_pruned(mod)
    assert [n for n, _ in d.named_parameters()] == [n for n, _ in t.named_parameters()]
    np.testing.assert_array_equal(d.weight.detach().numpy(), t.weight.detach().numpy())
    assert isinstance(d.weight, ds.nn.Parameter) and d.weight.requires_grad
    with pytest.raises(ValueError, match="has to be pruned"):
        dprune.remove(d, "weight")


def test_random_methods_prune_the_right_counts_and_errors():
    d, _ = _pair()
    dprune.random_unstructured(d, "weight", amount=7)
    assert int((d.weight_mask == 0).sum().item()) == 7
    d2, _ = _pair()
    dprune.random_structured(d2, "weight", amount=2, dim=0)
    rows_zero = (d2.weight_mask.sum(dim=1) == 0).sum().item()
    assert rows_zero == 2
    with pytest.raises(ValueError, match="amount"):
        dprune.l1_unstructured(_pair()[0], "weight", amount=1.5)
    with pytest.raises(ValueError, match="smaller than"):
        dprune.l1_unstructured(_pair()[0], "weight", amount=100)
    with pytest.raises(TypeError):
        dprune.global_unstructured([(d, "bias")], pruning_method=dprune.LnStructured, amount=1,
                                   n=1, dim=0)  # fmt: skip


def test_pruned_model_trains_and_keeps_zeros():
    d, _ = _pair()
    dprune.l1_unstructured(d, "weight", amount=0.5)
    opt = ds.optim.SGD(d.parameters(), lr=0.1)
    x = ds.randn(8, d.in_features)
    for _ in range(3):
        opt.zero_grad()
        d(x).pow(2).mean().backward()
        opt.step()
    assert int((d.weight == 0).sum().item()) >= 12  # forward recomputes weight from the mask
