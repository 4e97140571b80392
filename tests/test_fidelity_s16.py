"""PyTorch-fidelity follow-ups of session 16, differential against torch 2.13: Module.zero_grad
keeps the gradient object (dense, sparse COO, create_graph) as torch's, and so does
Optimizer.zero_grad."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

W0 = np.random.default_rng(0).normal(size=(5, 3))


def _grad_after_zero(lib, sparse):
    m = lib.nn.Embedding(5, 3, sparse=sparse)
    with lib.no_grad():
        m.weight.copy_(lib.tensor(W0, dtype=lib.float32))
    m(lib.tensor([1, 2, 1])).sum().backward()
    before = m.weight.grad
    m.zero_grad(set_to_none=False)
    g = m.weight.grad
    return g is before, g


@pytest.mark.parametrize("sparse", [False, True])
def test_module_zero_grad_keeps_the_gradient_object(sparse):
    same_d, gd = _grad_after_zero(ds, sparse)
    same_t, gt = _grad_after_zero(torch, sparse)
    assert same_d and same_t
    assert gd.is_sparse == gt.is_sparse == sparse
    assert gd.requires_grad is gt.requires_grad is False
    if sparse:
        assert gd._nnz() == gt._nnz() == 0
        assert gd.is_coalesced() and gt.is_coalesced()
        assert tuple(gd.shape) == tuple(gt.shape)
        gd, gt = gd.to_dense(), gt.to_dense()
    np.testing.assert_array_equal(gd.numpy(), gt.numpy())


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph:UserWarning")
def test_module_zero_grad_detaches_a_create_graph_gradient_in_place():
    out = {}
    for lib in (ds, torch):
        lin = lib.nn.Linear(2, 1)
        lin(lib.ones(1, 2)).pow(2).sum().backward(create_graph=True)
        g = lin.weight.grad
        assert g.grad_fn is not None
        lin.zero_grad(set_to_none=False)
        g2 = lin.weight.grad
        out[lib.__name__] = (g2 is g, g2.requires_grad, g2.grad_fn is None, g2.detach().numpy())
    d, t = out["descent"], out["torch"]
    assert d[:3] == t[:3] == (True, False, True)
    np.testing.assert_array_equal(d[3], t[3])


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph:UserWarning")
@pytest.mark.parametrize("sparse", [False, True])
def test_optimizer_zero_grad_keeps_the_gradient_object(sparse):
    """Optimizer.zero_grad(set_to_none=False) as Module's: the same object, detached in place
    (a create_graph gradient was replaced by a new tensor before) or emptied (sparse)."""
    out = {}
    for lib in (ds, torch):
        if sparse:
            m = lib.nn.Embedding(5, 3, sparse=True)
            m(lib.tensor([1, 2, 1])).sum().backward()
            opt = lib.optim.SparseAdam(m.parameters())
        else:
            m = lib.nn.Linear(2, 1)
            m(lib.ones(1, 2)).pow(2).sum().backward(create_graph=True)
            opt = lib.optim.SGD(m.parameters(), lr=0.1)
        g = m.weight.grad
        opt.zero_grad(set_to_none=False)
        g2 = m.weight.grad
        dense = g2.to_dense() if sparse else g2
        out[lib.__name__] = (g2 is g, g2.requires_grad, g2.grad_fn is None, g2.is_sparse,
                             dense.detach().numpy().copy())  # fmt: skip
    d, t = out["descent"], out["torch"]
    assert d[:4] == t[:4] == (True, False, True, sparse)
    np.testing.assert_array_equal(d[4], t[4])


@pytest.mark.parametrize(
    "call",
    [
        lambda lib, x, i, v: lib.index_put(x, i, v),
        lambda lib, x, i, v: x.index_put(i, v),
        lambda lib, x, i, v: lib.index_put(x, i, v, accumulate=True),
        lambda lib, x, i, v: x.clone().index_put_(i, v),
    ],
    ids=["torch.index_put", "Tensor.index_put", "accumulate", "index_put_"],
)
@pytest.mark.parametrize(
    "values", [np.array([1.0, 2.0]), np.array(1.0), np.array([1, 2]), np.array(3)],
    ids=["float64", "float64-0d", "int64", "int64-0d"],
)
def test_index_put_refuses_a_value_of_another_dtype(call, values):
    for lib in (ds, torch):
        x, i = lib.zeros(3), (lib.tensor([0, 2]),)
        with pytest.raises(RuntimeError, match="Index put requires the source and destination "
                           "dtypes match, got .*float32|Float for the destination"):
            call(lib, x, i, lib.tensor(values))


def test_index_put_of_the_same_dtype_as_torch():
    out = []
    for lib in (ds, torch):
        x = lib.tensor(W0)
        i = (lib.tensor([0, 2, 0]), lib.tensor([1, 1, 1]))
        v = lib.tensor([1.5, -2.0, 4.0], dtype=lib.float64)
        out.append((lib.index_put(x, i, v, accumulate=True).numpy(),
                    x.index_put(i[:1], lib.tensor(7.0, dtype=lib.float64)).numpy()))
    for d, t in zip(*out):
        np.testing.assert_array_equal(d, t)
