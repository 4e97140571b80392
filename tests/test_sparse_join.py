"""torch.cat / stack / hstack / vstack of sparse COO tensors, and the function forms of the
sparse selections (torch.transpose / permute / unsqueeze / select / index_select / narrow_copy /
swapaxes of a sparse tensor), against torch 2.13 (docs/sparse.md). The gradients, which torch's
CatBackward0 / StackBackward0 cannot compute for sparse inputs, by float64 finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks")

# an uncoalesced 2x3 matrix ((0, 1) twice) and a coalesced one
IA, VA = [[0, 1, 0, 1], [1, 0, 1, 2]], [1.5, -2.0, 0.25, 3.0]
IB, VB = [[1, 0], [1, 2]], [5.0, -1.0]


def _pair(i, v, size, dtype="float32"):
    """The same sparse tensor in both libraries."""
    return (ds.sparse_coo_tensor(ds.tensor(i), ds.tensor(v, dtype=getattr(ds, dtype)), size),
            torch.sparse_coo_tensor(torch.tensor(i), torch.tensor(v, dtype=getattr(torch, dtype)),
                                    size))  # fmt: skip


def _same(d, t, flag=True):
    """Same layout, shape, dtype, stored entries (in order, uncoalesced) and coalesced flag
    (`flag=False`: torch's flag after a selection depends on its kernel's path, e.g. True after
    select(1, i) of a 3-d tensor, False after select(0, i) or select(2, i); not compared)."""
    assert str(d.layout).endswith("sparse_coo") and t.layout == torch.sparse_coo
    assert tuple(d.shape) == tuple(t.shape)
    assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    assert not flag or d.is_coalesced() == t.is_coalesced()
    np.testing.assert_array_equal(d._indices().numpy(), t._indices().numpy())
    np.testing.assert_array_equal(d._values().numpy(), t._values().numpy())


@pytest.mark.parametrize("dim", [0, 1, -1, -2])
def test_cat_matches_torch(dim):
    (a, ta), (b, tb) = _pair(IA, VA, (2, 3)), _pair(IB, VB, (2, 3))
    _same(ds.cat([a, b, a], dim), torch.cat([ta, tb, ta], dim))
    _same(ds.concat([a], dim=dim), torch.concat([ta], dim=dim))


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack_matches_torch(dim):
    (a, ta), (b, tb) = _pair(IA, VA, (2, 3)), _pair(IB, VB, (2, 3))
    _same(ds.stack([a, b], dim), torch.stack([ta, tb], dim))


def test_hstack_vstack_and_dtype_promotion_match_torch():
    (a, ta), (b, tb) = _pair(IA, VA, (2, 3)), _pair(IB, VB, (2, 3), "float64")
    _same(ds.hstack([a, b]), torch.hstack([ta, tb]))
    _same(ds.vstack([a, b]), torch.vstack([ta, tb]))
    (c, tc) = _pair([[0, 2]], [1.0, 2.0], (4,))
    _same(ds.hstack([c, c]), torch.hstack([tc, tc]))  # 1-d: along dim 0


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_hybrid_tensors_along_sparse_and_dense_dims(dim):
    vals = np.arange(6.0).reshape(2, 3).tolist()
    h = ds.sparse_coo_tensor(ds.tensor([[0, 1]]), ds.tensor(vals), (2, 3))
    th = torch.sparse_coo_tensor(torch.tensor([[0, 1]]), torch.tensor(vals), (2, 3))
    g = ds.sparse_coo_tensor(ds.tensor([[1]]), ds.ones(1, 2), (2, 2))
    tg = torch.sparse_coo_tensor(torch.tensor([[1]]), torch.ones(1, 2), (2, 2))
    if dim < 2:
        _same(ds.stack([h, h], dim), torch.stack([th, th], dim))
    if dim == 1:
        _same(ds.cat([h, g], 1), torch.cat([th, tg], 1))  # a dense dim: values widened
    _same(ds.stack([h, h], -1), torch.stack([th, th], -1))


def test_errors_match_torch():
    (a, ta), _ = _pair(IA, VA, (2, 3)), None
    b, tb = _pair(IA, VA, (2, 4))
    cases = [
        (lambda m, x, y: m.cat([x, y.to_dense()]), RuntimeError, "a dense tensor was found at "
                                                                 "position 1"),
        (lambda m, x, y: m.cat([x, y]), RuntimeError, "All tensors must have the same shape"),
        (lambda m, x, y: m.stack([x, y]), RuntimeError, "stack expects each tensor to be equal"),
        (lambda m, x, y: m.cat([x], 2), IndexError, "Dimension out of range"),
    ]  # fmt: skip
    for f, exc, words in cases:
        with pytest.raises(exc, match=words):
            f(torch, ta, tb)
        with pytest.raises(exc, match=words):
            f(ds, a, b)


def _fd_check(fn, i, v, size):
    """fn(sparse leaf) -> scalar: the sparse gradient (the input's pattern) against central
    differences of each stored value, float64."""
    x = ds.sparse_coo_tensor(ds.tensor(i), ds.tensor(v, dtype=ds.float64), size,
                             requires_grad=True)  # fmt: skip
    fn(x).backward()
    g = x.grad
    assert str(g.layout).endswith("sparse_coo")
    # the input's pattern (once per use of x: the engine adds sparse gradients unsummed)
    gi = g._indices().numpy()
    assert {tuple(c) for c in gi.T} == {tuple(c) for c in np.array(i).T}
    gd = g.to_dense().numpy()
    vals = np.array(v, dtype=np.float64)
    eps = 1e-6

    def at(vv):
        return fn(ds.sparse_coo_tensor(ds.tensor(i), ds.tensor(vv), size)).item()

    for k in np.ndindex(vals.shape):  # each stored scalar: entry k[0], dense position k[1:]
        vp, vm = vals.copy(), vals.copy()
        vp[k] += eps
        vm[k] -= eps
        coord = tuple(np.array(i)[:, k[0]]) + k[1:]  # d/dv is the gradient at v's coordinates
        np.testing.assert_allclose(gd[coord], (at(vp) - at(vm)) / (2 * eps), rtol=1e-6, atol=1e-6)


W = np.random.default_rng(0).standard_normal((5, 4, 3))


@pytest.mark.parametrize("how", ["cat0", "cat1", "stack0", "stack2", "hybrid_dense"])
def test_gradients_by_finite_differences(how):
    b = ds.sparse_coo_tensor(ds.tensor(IB), ds.tensor(VB, dtype=ds.float64), (2, 3))
    if how == "hybrid_dense":
        i, v, size = [[0, 1, 1]], [[1.0, -2.0], [0.5, 3.0], [2.0, 1.0]], (2, 2)
        other = ds.sparse_coo_tensor(ds.tensor([[0]]), ds.ones(1, 3, dtype=ds.float64), (2, 3))

        def fn(x):
            d = ds.cat([other, x, x], 1).to_dense()
            return (d**2 * ds.tensor(W.reshape(-1)[:14].reshape(2, 7))).sum()
    else:
        i, v, size = IA, VA, (2, 3)
        dim = int(how[-1])
        join = ds.cat if how.startswith("cat") else ds.stack

        def fn(x):
            d = join([x, b, x], dim).to_dense()
            w = ds.tensor(W.reshape(-1)[: d.numel()].reshape(d.shape))
            return (d**3 * w).sum()

    _fd_check(fn, i, v, size)


def test_double_backward_through_cat():
    x = ds.sparse_coo_tensor(ds.tensor(IA), ds.tensor(VA, dtype=ds.float64), (2, 3),
                             requires_grad=True)  # fmt: skip
    (g,) = ds.autograd.grad((ds.cat([x, x], 1).to_dense() ** 3).sum(), x, create_graph=True)
    (gg,) = ds.autograd.grad(g.to_dense().sum(), x)
    # d/dv_k of sum over the dense entries of 3 d^2 (twice: x appears twice), d the summed value
    dense = np.zeros((2, 3))
    for (r, c), val in zip(np.array(IA).T, VA, strict=True):
        dense[r, c] += val
    # g = 6 X^2 at each stored coordinate, so d(sum g)/dX = 12 X there (0 elsewhere)
    want = np.where(dense != 0, 12 * dense, 0.0)
    np.testing.assert_allclose(gg.to_dense().numpy(), want, rtol=1e-12)


def test_function_forms_equal_the_methods_and_torch():
    (a, ta) = _pair(IA, VA, (2, 3))
    ca, cta = a.coalesce(), ta.coalesce()
    idx, tidx = ds.tensor([2, 0, 2]), torch.tensor([2, 0, 2])
    _same(ds.transpose(ca, 0, 1), torch.transpose(cta, 0, 1), False)
    _same(ds.swapaxes(ca, 0, 1), torch.swapaxes(cta, 0, 1), False)
    _same(ds.swapdims(ca, 1, 0), torch.swapdims(cta, 1, 0), False)
    _same(ds.permute(ca, (1, 0)), torch.permute(cta, (1, 0)), False)
    _same(ds.unsqueeze(ca, 1), torch.unsqueeze(cta, 1), False)
    _same(ds.index_select(ca, 1, idx), torch.index_select(cta, 1, tidx), False)
    _same(ds.narrow_copy(ca, 1, 1, 2), torch.narrow_copy(cta, 1, 1, 2), False)
    s3, ts3 = _pair([[0, 1], [1, 0], [2, 2]], [1.0, 2.0], (2, 2, 3))
    _same(ds.select(s3.coalesce(), 0, 1), torch.select(ts3.coalesce(), 0, 1), False)
