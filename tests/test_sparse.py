"""descent.sparse against torch 2.13: sparse COO (and CSR) tensors, their products, sums and
softmax, values and gradients (float32 vs torch, float64 vs finite differences), uncoalesced
inputs with duplicates, empty nnz, hybrid tensors, integer values, and the loud failure of
every op that does not support sparse tensors (docs/sparse.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds
from descent.sparse import SparseUnsupportedError

pytestmark = pytest.mark.filterwarnings(
    "ignore:Sparse invariant checks",
    "ignore:Sparse CSR tensor support is in beta",
    "ignore:torch.sparse.SparseTensor",
)


def _coo(rng, shape, nnz, dense=(), dup=True):
    """Random COO parts with duplicates (the first entries repeated at the end)."""
    sd = len(shape)
    idx = np.stack([rng.integers(0, n, nnz) for n in shape]).astype(np.int64)
    if dup and nnz >= 2:
        idx[:, -1] = idx[:, 0]
    vals = rng.standard_normal((nnz,) + dense).astype(np.float32)
    return idx.reshape(sd, nnz), vals


def _pair(idx, vals, size=None, requires_grad=False, dtype=None):
    """The same sparse tensor in both libraries; values are leaves when requires_grad."""
    tv = torch.tensor(vals, requires_grad=requires_grad, dtype=dtype)
    dv = ds.tensor(vals, requires_grad=requires_grad, dtype=dtype)
    size = () if size is None else (size,)
    t = torch.sparse_coo_tensor(torch.tensor(idx), tv, *size)
    d = ds.sparse_coo_tensor(ds.tensor(idx), dv, *size)
    return (t, tv), (d, dv)


def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return x.detach().numpy()


def _same_sparse(d, t, atol=1e-6):
    """Equal layout, shape, dtype, and equal coalesced indices and values."""
    assert d.layout is ds.sparse_coo and t.layout == torch.sparse_coo
    assert tuple(d.shape) == tuple(t.shape)
    assert str(d.dtype).split(".")[1] == str(t.dtype).split(".")[1]
    dc, tc = d.detach().coalesce(), t.detach().coalesce()
    np.testing.assert_array_equal(_np(dc.indices()), tc.indices().numpy())
    np.testing.assert_allclose(_np(dc.values()), tc.values().numpy(), atol=atol, rtol=1e-5)


def _dense_grad(g):
    """A gradient as a dense array (sparse gradients through to_dense)."""
    if g.layout != torch.strided and g.layout is not ds.strided:
        g = g.to_dense()
    return _np(g)


# ---------------------------------------------------------------------------------------------
# Construction, coalesce, indices/values, to_dense


@pytest.mark.parametrize("shape,nnz,dense", [((4, 5), 7, ()), ((3, 4, 2), 6, ()),
                                              ((5,), 4, ()), ((4, 3), 5, (2,)),
                                              ((3, 3), 0, ()), ((2, 3), 1, (2, 2))])  # fmt: skip
def test_construct_coalesce_to_dense_match_torch(shape, nnz, dense):
    rng = np.random.default_rng(0)
    idx, vals = _coo(rng, shape, nnz, dense)
    (t, _), (d, _) = _pair(idx, vals, shape + dense)
    assert isinstance(d, ds.Tensor) and d.is_sparse and not d.is_sparse_csr
    assert d.sparse_dim() == t.sparse_dim() and d.dense_dim() == t.dense_dim()
    assert d._nnz() == t._nnz() and d.is_coalesced() == t.is_coalesced()
    assert d.numel() == t.numel() and d.dim() == t.dim() and d.size() == tuple(t.size())
    np.testing.assert_array_equal(_np(d._indices()), t._indices().numpy())
    np.testing.assert_array_equal(_np(d._values()), t._values().numpy())
    c, tc = d.coalesce(), t.coalesce()
    assert c.is_coalesced() and c._nnz() == tc._nnz()
    np.testing.assert_array_equal(_np(c.indices()), tc.indices().numpy())
    np.testing.assert_allclose(_np(c.values()), tc.values().numpy(), rtol=1e-6)
    np.testing.assert_allclose(_np(d.to_dense()), t.to_dense().numpy(), rtol=1e-6)
    assert c.coalesce() is c  # PyTorch returns a coalesced tensor itself


def test_size_inference_and_constructor_errors_match_torch():
    i = [[1, 0, 1, 0], [2, 0, 2, 1]]
    v = [1.0, 2.0, 3.0, 4.0]
    (t, _), (d, _) = _pair(np.array(i), np.array(v, np.float32))
    assert tuple(d.shape) == tuple(t.shape) == (2, 3)
    h = ds.sparse_coo_tensor(i, ds.ones(4, 5))
    assert tuple(h.shape) == tuple(torch.sparse_coo_tensor(i, torch.ones(4, 5)).shape)
    assert ds.sparse_coo_tensor(i, [1, 2, 3, 4]).dtype == ds.int64  # integer values kept
    assert ds.sparse_coo_tensor(i, v).dtype == ds.float32
    assert ds.sparse_coo_tensor(i, v, dtype=ds.float64).dtype == ds.float64
    e = ds.sparse_coo_tensor(ds.zeros(2, 0, dtype=ds.int64), ds.zeros(0))
    assert tuple(e.shape) == (0, 0) and e._nnz() == 0
    for args in [(i, v[:3], (2, 3)), (i, v, (2, 3, 4)), ([1, 0, 1, 0], v, (2, 3)),
                 (i, v, (1, 3))]:  # fmt: skip
        with pytest.raises(RuntimeError) as te:
            torch.sparse_coo_tensor(*args, check_invariants=True)
        with pytest.raises(RuntimeError) as de:
            ds.sparse_coo_tensor(*args)
        key = str(te.value).split(":")[0][:20]
        assert key in str(de.value), (str(de.value), str(te.value))
    with pytest.raises(RuntimeError, match="negative index"):
        ds.sparse_coo_tensor([[0, -1]], [1.0, 2.0], (3,))


def test_indices_of_uncoalesced_raises_as_torch():
    d = ds.sparse_coo_tensor([[0, 0]], [1.0, 2.0], (2,))
    with pytest.raises(RuntimeError, match="uncoalesced"):
        d.indices()
    with pytest.raises(RuntimeError, match="uncoalesced"):
        d.values()
    assert d._values().grad_fn is None


@pytest.mark.parametrize("sparse_dim", [None, 1, 2])
@pytest.mark.parametrize("dtype", ["float32", "int64", "float64"])
def test_to_sparse_round_trip_matches_torch(sparse_dim, dtype):
    a = np.array([[[0, 1.5], [0, 0]], [[2, 0], [0, -3]], [[0, 0], [0, 0]]]).astype(dtype)
    t = torch.tensor(a).to_sparse(*(() if sparse_dim is None else (sparse_dim,)))
    d = ds.tensor(a).to_sparse(*(() if sparse_dim is None else (sparse_dim,)))
    assert d.is_coalesced() and d.sparse_dim() == t.sparse_dim()
    np.testing.assert_array_equal(_np(d.indices()), t.indices().numpy())
    np.testing.assert_array_equal(_np(d.values()), t.values().numpy())
    np.testing.assert_array_equal(_np(d.to_dense()), a)
    z = ds.zeros(2, 3).to_sparse()
    assert z._nnz() == 0 and tuple(z.indices().shape) == (2, 0)
    s0 = ds.tensor(3.0).to_sparse()
    assert tuple(s0._indices().shape) == (0, 1) and s0.to_dense().item() == 3.0


def test_repr_matches_torch():
    i = [[1, 0, 1, 0], [2, 0, 2, 1]]
    for v, size, grad in [([1.0, 2.0, 3.0, 4.0], (2, 3), True), ([1, 2, 3, 4], (2, 3), False)]:
        tv, dv = torch.tensor(v), ds.tensor(v)
        if grad:
            tv.requires_grad_(), dv.requires_grad_()
        t, d = torch.sparse_coo_tensor(i, tv, size), ds.sparse_coo_tensor(i, dv, size)
        for a, b in [(d, t), (d.coalesce(), t.coalesce()), (d.t(), t.t()),
                     (d.transpose(0, 1), t.transpose(0, 1)), (d.detach().double(),
                     t.detach().double())]:  # fmt: skip
            assert repr(a) == repr(b).replace("dtype=torch.", "dtype=descent."), (a, b)
    assert repr(ds.zeros(2, 3).to_sparse()) == repr(torch.zeros(2, 3).to_sparse())


# ---------------------------------------------------------------------------------------------
# Products: values and gradients against torch (float32)

PRODUCTS = {
    "sparse.mm": (lambda s, x: ds.sparse.mm(s, x), lambda s, x: torch.sparse.mm(s, x)),
    "spmm": (lambda s, x: ds.spmm(s, x), lambda s, x: torch.spmm(s, x)),
    "mm": (lambda s, x: ds.mm(s, x), lambda s, x: torch.mm(s, x)),
    "matmul": (lambda s, x: ds.matmul(s, x), lambda s, x: torch.matmul(s, x)),
    "@": (lambda s, x: s @ x, lambda s, x: s @ x),
    "addmm": (lambda s, x: ds.addmm(x[:1] * 0.5, s, x, beta=0.5, alpha=2.0),
              lambda s, x: torch.addmm(x[:1] * 0.5, s, x, beta=0.5, alpha=2.0)),
    "sparse.addmm": (lambda s, x: ds.sparse.addmm(x[:1], s, x, alpha=3.0),
                     lambda s, x: torch.sparse.addmm(x[:1], s, x, alpha=3.0)),
}  # fmt: skip


@pytest.mark.parametrize("name", list(PRODUCTS))
@pytest.mark.parametrize("nnz", [9, 0])
def test_product_values_and_gradients_match_torch(name, nnz):
    rng = np.random.default_rng(1)
    idx, vals = _coo(rng, (5, 4), nnz)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    (t, tv), (d, dv) = _pair(idx, vals, (5, 4), requires_grad=True)
    tx, dx = torch.tensor(x, requires_grad=True), ds.tensor(x, requires_grad=True)
    fd, ft = PRODUCTS[name]
    out_t, out_d = ft(t, tx), fd(d, dx)
    assert out_d.layout is ds.strided
    np.testing.assert_allclose(_np(out_d), out_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    w = rng.standard_normal(out_t.shape).astype(np.float32)
    (out_t * torch.tensor(w)).sum().backward()
    (out_d * ds.tensor(w)).sum().backward()
    np.testing.assert_allclose(_np(dx.grad), tx.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(dv.grad), tv.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sparse.mm", "mm", "@"])
def test_sparse_leaf_gradient_layout_matches_torch(name):
    """torch.sparse.mm gives a sparse leaf a sparse gradient (its coalesced pattern); mm and @
    a dense one, as torch 2.13."""
    rng = np.random.default_rng(2)
    idx, vals = _coo(rng, (4, 3), 6)
    t = torch.sparse_coo_tensor(idx, vals, (4, 3), requires_grad=True)
    d = ds.sparse_coo_tensor(idx, vals, (4, 3), requires_grad=True)
    x = rng.standard_normal((3, 2)).astype(np.float32)
    fd, ft = PRODUCTS[name]
    ft(t, torch.tensor(x)).sum().backward()
    fd(d, ds.tensor(x)).sum().backward()
    assert (d.grad.layout is ds.sparse_coo) == (t.grad.layout == torch.sparse_coo)
    if t.grad.layout == torch.sparse_coo:
        _same_sparse(d.grad, t.grad, atol=1e-5)
    np.testing.assert_allclose(_dense_grad(d.grad), t.grad.to_dense().numpy(), rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    # accumulation across two backward calls (sparse + sparse, or dense + dense)
    fd(d, ds.tensor(x)).sum().backward()
    np.testing.assert_allclose(_dense_grad(d.grad), 2 * t.grad.to_dense().numpy(), rtol=1e-5,
                               atol=1e-6)  # fmt: skip


def test_matrix_vector_and_dense_times_sparse_match_torch():
    rng = np.random.default_rng(3)
    idx, vals = _coo(rng, (4, 3), 5)
    (t, tv), (d, dv) = _pair(idx, vals, (4, 3), requires_grad=True)
    v = rng.standard_normal(3).astype(np.float32)
    np.testing.assert_allclose(
        _np(ds.matmul(d, ds.tensor(v))),
        torch.matmul(t, torch.tensor(v)).detach().numpy(),
        rtol=1e-5,
    )
    m = rng.standard_normal((2, 4)).astype(np.float32)
    out_t, out_d = torch.mm(torch.tensor(m), t), ds.mm(ds.tensor(m), d)
    np.testing.assert_allclose(_np(out_d), out_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    out_t.sum().backward(), out_d.sum().backward()
    np.testing.assert_allclose(_np(dv.grad), tv.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_product_errors():
    d = ds.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2.0], (2, 2))
    with pytest.raises(RuntimeError, match="align"):
        ds.sparse.mm(d, ds.ones(3, 2))
    with pytest.raises(RuntimeError, match="same dtype"):
        ds.sparse.mm(d, ds.ones(2, 2, dtype=ds.float64))
    assert ds.sparse.mm(d, d).is_sparse  # sparse @ sparse: tests/test_sparse_more.py
    h = ds.sparse_coo_tensor([[0, 1]], ds.ones(2, 3))
    with pytest.raises(SparseUnsupportedError, match="dense dims"):
        ds.sparse.mm(h, ds.ones(3, 2))


# ---------------------------------------------------------------------------------------------
# float64 gradients against finite differences


def _fd_check(fn, arrays, eps=1e-6, tol=1e-6):
    """Central differences of sum(fn(*arrays) * w) against descent's gradients (float64)."""
    tensors = [ds.tensor(a, dtype=ds.float64, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out = out.to_dense() if out.is_sparse else out
    w = np.random.default_rng(9).standard_normal(tuple(out.shape))
    (out * ds.tensor(w)).sum().backward()
    for k, a in enumerate(arrays):
        num = np.zeros_like(a, dtype=np.float64)
        for j in np.ndindex(a.shape):
            vals = []
            for s in (eps, -eps):
                b = [np.array(x, dtype=np.float64) for x in arrays]
                b[k][j] += s
                o = fn(*[ds.tensor(x, dtype=ds.float64) for x in b])
                o = o.to_dense() if o.is_sparse else o
                vals.append(float((_np(o) * w).sum()))
            num[j] = (vals[0] - vals[1]) / (2 * eps)
        np.testing.assert_allclose(_np(tensors[k].grad), num, atol=tol, rtol=1e-5)


IDX = np.array([[0, 2, 1, 0, 2], [1, 0, 2, 1, 1]])  # (0, 1) twice: an uncoalesced input


@pytest.mark.parametrize("case", ["sparse.mm", "mm", "to_dense", "sum_dim", "sum_all",
                                  "softmax", "log_softmax", "t_mm", "coalesce_values",
                                  "add_scale", "csr_mm"])  # fmt: skip
def test_gradients_match_finite_differences_float64(case):
    rng = np.random.default_rng(4)
    v = rng.standard_normal(5)
    x = rng.standard_normal((3, 2))

    def sp(v):
        return ds.sparse_coo_tensor(IDX, v, (3, 3))

    fns = {
        "sparse.mm": (lambda v, x: ds.sparse.mm(sp(v), x), [v, x]),
        "mm": (lambda v, x: sp(v) @ x, [v, x]),
        "to_dense": (lambda v: sp(v).to_dense() * 1.0, [v]),
        "sum_dim": (lambda v: ds.sparse.sum(sp(v), 1), [v]),
        "sum_all": (lambda v: ds.sparse.sum(sp(v)) + sp(v).sum(), [v]),
        "softmax": (lambda v: ds.sparse.softmax(sp(v), 1), [v]),
        "log_softmax": (lambda v: ds.sparse.log_softmax(sp(v), 0), [v]),
        "t_mm": (lambda v, x: ds.sparse.mm(sp(v).t(), x), [v, x]),
        "coalesce_values": (lambda v: sp(v).coalesce().values() * 2.0, [v]),
        "add_scale": (lambda v: (sp(v) * 3.0 + (-sp(v)) / 2.0 - sp(v)).to_dense(), [v]),
        "csr_mm": (lambda v, x: sp(v).to_sparse_csr() @ x, [v, x]),
    }
    fn, arrays = fns[case]
    _fd_check(fn, arrays)


# ---------------------------------------------------------------------------------------------
# Sums, elementwise ops, conversions: values and gradients against torch


@pytest.mark.parametrize("dim", [None, 0, 1, (0, 1), 2, (1, 2), -1])
def test_sparse_sum_matches_torch(dim):
    rng = np.random.default_rng(5)
    idx, vals = _coo(rng, (4, 3), 6, dense=(2,))
    (t, tv), (d, dv) = _pair(idx, vals, requires_grad=True)
    args = () if dim is None else (dim,)
    out_t, out_d = torch.sparse.sum(t, *args), ds.sparse.sum(d, *args)
    if out_t.layout == torch.sparse_coo:
        _same_sparse(out_d, out_t)
        out_t, out_d = out_t.to_dense(), out_d.to_dense()
    else:
        assert out_d.layout is ds.strided
    np.testing.assert_allclose(_np(out_d), out_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    w = rng.standard_normal(tuple(out_t.shape)).astype(np.float32)
    (out_t * torch.tensor(w)).sum().backward()
    (out_d * ds.tensor(w)).sum().backward()
    np.testing.assert_allclose(_np(dv.grad), tv.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_sum_method_and_integer_values_match_torch():
    i = [[0, 1, 1], [2, 0, 0]]
    t, d = torch.sparse_coo_tensor(i, [1, 2, 3]), ds.sparse_coo_tensor(i, [1, 2, 3])
    assert d.sum().item() == t.sum().item() and d.sum().dtype == ds.int64
    assert ds.sum(d).item() == torch.sum(t).item()
    _same_sparse(d.sum(0), t.sum(0))
    _same_sparse(ds.sparse.sum(d, 1), torch.sparse.sum(t, 1))
    np.testing.assert_array_equal(_np(d.to_dense()), t.to_dense().numpy())
    _same_sparse(d * 2, t * 2)
    _same_sparse(-d, -t)


def test_elementwise_and_conversions_match_torch():
    rng = np.random.default_rng(6)
    idx, vals = _coo(rng, (3, 4), 6)
    idx2, vals2 = _coo(rng, (3, 4), 4)
    (t, tv), (d, dv) = _pair(idx, vals, (3, 4), requires_grad=True)
    (t2, tv2), (d2, dv2) = _pair(idx2, vals2, (3, 4), requires_grad=True)
    pairs = [(d + d2, t + t2), (d - d2, t - t2), (d * 2.5, t * 2.5), (0.5 * d, 0.5 * t),
             (d / 4, t / 4), (-d, -t), (d.t(), t.t()), (d.transpose(1, 0), t.transpose(1, 0)),
             (d.coalesce() + d2.coalesce(), t.coalesce() + t2.coalesce()), (d.clone(), t.clone()),
             (d.double(), t.double()), (d.to(ds.float64), t.to(torch.float64)), (d.T, t.T),
             (d.detach(), t.detach())]  # fmt: skip
    for a, b in pairs:
        _same_sparse(a, b)
    assert (d.coalesce() + d2.coalesce()).is_coalesced()
    loss_t = sum((b.to_dense() * (k + 1)).sum() for k, (_, b) in enumerate(pairs[:-1]))
    loss_d = sum((a.to_dense() * (k + 1)).sum() for k, (a, _) in enumerate(pairs[:-1]))
    loss_t.backward(), loss_d.backward()
    np.testing.assert_allclose(_np(dv.grad), tv.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(dv2.grad), tv2.grad.numpy(), rtol=1e-5, atol=1e-5)
    assert d.detach().requires_grad is False and d.detach().is_sparse


def test_to_dense_and_to_sparse_backward_match_torch():
    a = np.array([[0, 1.5, 0], [2, 0, -1]], np.float32)
    ta, da = torch.tensor(a, requires_grad=True), ds.tensor(a, requires_grad=True)
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    out_t = torch.sparse.mm(ta.to_sparse(), torch.tensor(x))
    out_d = ds.sparse.mm(da.to_sparse(), ds.tensor(x))
    out_t.sum().backward(), out_d.sum().backward()
    np.testing.assert_allclose(_np(da.grad), ta.grad.numpy(), rtol=1e-6)
    # to_dense of a sparse leaf: a sparse gradient with the leaf's coalesced pattern
    i = [[1, 0, 1], [2, 0, 2]]
    t = torch.sparse_coo_tensor(i, [1.0, 2.0, 3.0], (2, 3), requires_grad=True)
    d = ds.sparse_coo_tensor(i, [1.0, 2.0, 3.0], (2, 3), requires_grad=True)
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    (t.to_dense() * torch.tensor(w)).sum().backward()
    (d.to_dense() * ds.tensor(w)).sum().backward()
    _same_sparse(d.grad, t.grad)


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
@pytest.mark.parametrize("log", [False, True])
def test_sparse_softmax_matches_torch(dim, log):
    rng = np.random.default_rng(7)
    idx, vals = _coo(rng, (3, 4), 7, dense=(2,) if dim == 2 else ())
    (t, tv), (d, dv) = _pair(idx, vals, requires_grad=True)
    dim = dim if dim != -1 else 1
    ft = torch.sparse.log_softmax if log else torch.sparse.softmax
    fd = ds.sparse.log_softmax if log else ds.sparse.softmax
    out_t, out_d = ft(t.coalesce(), dim), fd(d, dim)
    _same_sparse(out_d, out_t)
    w = rng.standard_normal(tuple(out_t.shape)).astype(np.float32)
    (out_t.to_dense() * torch.tensor(w)).sum().backward()
    (out_d.to_dense() * ds.tensor(w)).sum().backward()
    np.testing.assert_allclose(_np(dv.grad), tv.grad.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# CSR


def test_csr_matches_torch():
    crow, col, v = [0, 2, 2, 3], [0, 2, 1], [1.0, 2.0, 3.0]
    tv, dv = torch.tensor(v, requires_grad=True), ds.tensor(v, requires_grad=True)
    t = torch.sparse_csr_tensor(torch.tensor(crow), torch.tensor(col), tv, (3, 3))
    d = ds.sparse_csr_tensor(ds.tensor(crow), ds.tensor(col), dv, (3, 3))
    assert d.layout is ds.sparse_csr and d.is_sparse_csr and not d.is_sparse
    assert d._nnz() == t._nnz() == 3 and tuple(d.shape) == tuple(t.shape)
    np.testing.assert_array_equal(_np(d.crow_indices()), t.crow_indices().numpy())
    np.testing.assert_array_equal(_np(d.col_indices()), t.col_indices().numpy())
    np.testing.assert_allclose(_np(d.to_dense()), t.to_dense().detach().numpy())
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    tx, dx = torch.tensor(x, requires_grad=True), ds.tensor(x, requires_grad=True)
    out_t, out_d = t @ tx, d @ dx
    np.testing.assert_allclose(_np(out_d), out_t.detach().numpy(), rtol=1e-6)
    out_t.sum().backward(), out_d.sum().backward()
    np.testing.assert_allclose(_np(dx.grad), tx.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(_np(dv.grad), tv.grad.numpy(), rtol=1e-6)
    a = np.array([[0, 1.0], [2, 0], [0, 0]], np.float32)
    tc, dc = torch.tensor(a).to_sparse_csr(), ds.tensor(a).to_sparse_csr()
    np.testing.assert_array_equal(_np(dc.crow_indices()), tc.crow_indices().numpy())
    np.testing.assert_array_equal(_np(dc.col_indices()), tc.col_indices().numpy())
    _same_sparse(dc.to_sparse(), tc.to_sparse())
    with pytest.raises(RuntimeError, match="crow_indices"):
        ds.sparse_csr_tensor([0, 2, 1], [0, 1], [1.0, 2.0])


# ---------------------------------------------------------------------------------------------
# Everything else fails loudly


def _loud_cases(s):
    w = ds.ones(3, 3)
    return {
        "exp": lambda: s.exp(), "reshape": lambda: s.reshape(9),
        "view": lambda: s.view(-1), "nonzero": lambda: s.nonzero(), "div_dense": lambda: s / w,
        "div_sparse": lambda: s / s, "mean": lambda: s.mean(), "add_scalar": lambda: s + 1,
        "linear": lambda: ds.nn.functional.linear(s, w), "roll": lambda: ds.roll(s, 1),
        "where": lambda: ds.where(w > 0, s, w), "gt": lambda: s > 0,
        "max": lambda: s.max(), "softmax": lambda: ds.softmax(s, 0), "cos": lambda: s.cos(),
        "eq": lambda: s == s, "module": lambda: ds.nn.Linear(3, 2)(s), "tolist": lambda: s.tolist(),
        "cumsum": lambda: s.cumsum(0), "clamp": lambda: s.clamp(0, 1), "inv": lambda: s**-1,
        "sum_keepdim": lambda: s.sum(0, keepdim=True), "dense_sum_dim": lambda: ds.sum(s, 0),
        "sigmoid": lambda: ds.sigmoid(s), "rsub": lambda: 1 - s,
        "logical_not": lambda: ds.logical_not(s),
    }  # fmt: skip


@pytest.mark.parametrize("case", list(_loud_cases(None)))
def test_unsupported_ops_fail_loudly(case):
    s = ds.sparse_coo_tensor([[0, 1, 2], [1, 2, 0]], [1.0, 2.0, 3.0], (3, 3))
    with pytest.raises(SparseUnsupportedError) as e:  # a NotImplementedError, as PyTorch's
        _loud_cases(s)[case]()
    msg = str(e.value)
    assert "(3, 3)" in msg and ".to_dense()" in msg and "sparse COO" in msg
    assert not msg.startswith("this operation"), msg  # the op is named
    assert s._nnz() == 3  # unchanged


def test_loud_error_names_the_op():
    s = ds.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2.0], (2, 2))
    with pytest.raises(SparseUnsupportedError, match=r"^Exp: .*shape \(2, 2\)"):
        s.exp()
    with pytest.raises(SparseUnsupportedError, match=r"^Reshape: "):
        s.reshape(4)
    with pytest.raises(TypeError, match="to_dense"):
        s.numpy()


def test_checkpoints_refuse_sparse_tensors(tmp_path):
    s = ds.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2.0], (2, 2))
    with pytest.raises(TypeError, match="sparse tensor.*to_dense"):
        ds.save({"adj": s}, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_dense_tensors_keep_their_layout():
    x = ds.ones(2)
    assert x.layout is ds.strided and not x.is_sparse and not x.is_sparse_csr
    assert x.to_dense() is x
    assert repr(ds.sparse_coo) == "torch.sparse_coo" and repr(ds.sparse_csr) == "torch.sparse_csr"


def test_legacy_constructor_and_graph_release():
    i, v = ds.tensor([[0, 1], [1, 0]]), ds.tensor([1.0, 2.0], requires_grad=True)
    s = ds.sparse.FloatTensor(i, v, ds.Size([2, 2]))
    assert s.dtype == ds.float32 and s.is_sparse
    assert ds.sparse.DoubleTensor(i, v.detach().double(), (2, 2)).dtype == ds.float64
    out = ds.sparse.mm(s, ds.ones(2, 1)).sum()
    out.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        out.backward()
    np.testing.assert_array_equal(_np(v.grad), [1.0, 1.0])
    with pytest.raises(RuntimeError, match="create_graph"):  # sparse.mm's: test_sparse_more
        ds.autograd.grad(ds.sparse.softmax(s, 1).to_dense().sum(), v, create_graph=True)


def test_legacy_type_with_one_int_is_a_shape():
    """torch.FloatTensor(16) is a (16,) tensor (pygcn's bias): descent made a 0-d tensor 16."""
    for n in (0, 1, 16):
        assert tuple(ds.FloatTensor(n).shape) == tuple(torch.FloatTensor(n).shape) == (n,)
    assert ds.LongTensor(3).dtype == ds.int64 and tuple(ds.LongTensor(3).shape) == (3,)
    assert tuple(ds.DoubleTensor(2, 3).shape) == (2, 3)
    assert ds.FloatTensor([16]).tolist() == [16.0]


def test_empty_constructors_match_torch():
    cases = [
        (ds.sparse.FloatTensor(2, 3), torch.sparse.FloatTensor(2, 3)),
        (ds.sparse.FloatTensor(ds.Size([4])), torch.sparse.FloatTensor(torch.Size([4]))),
        (ds.sparse_coo_tensor(size=(2, 3)), torch.sparse_coo_tensor(size=(2, 3))),
        (ds.sparse.DoubleTensor(3, 1), torch.sparse.DoubleTensor(3, 1)),
    ]
    for d, t in cases:
        assert repr(d) == repr(t).replace("dtype=torch.", "dtype=descent.")
        np.testing.assert_array_equal(_np(d.to_dense()), t.to_dense().numpy())
    leaf = torch.sparse_coo_tensor([[0, 1]], [1.0, 2.0], (3,), requires_grad=True)
    dleaf = ds.sparse_coo_tensor([[0, 1]], [1.0, 2.0], (3,), requires_grad=True)
    assert repr(dleaf) == repr(leaf)


def test_complex_values_gradients_match_torch():
    rng = np.random.default_rng(8)
    i = np.array([[0, 1, 2, 0], [1, 0, 2, 1]])
    v = (rng.standard_normal(4) + 1j * rng.standard_normal(4)).astype(np.complex64)
    x = (rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))).astype(np.complex64)
    grads = []
    for lib in (torch, ds):
        vv, xx = lib.tensor(v, requires_grad=True), lib.tensor(x, requires_grad=True)
        s = lib.sparse_coo_tensor(lib.tensor(i), vv, (3, 3))
        (lib.sparse.mm(s, xx).abs().sum() + (s @ xx).abs().sum()).backward()
        grads.append((vv.grad.detach().numpy(), xx.grad.detach().numpy()))
    for a, b in zip(grads[0], grads[1]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    x = ds.tensor(x, requires_grad=True)
    with pytest.raises(RuntimeError, match="complex dtype"):  # PyTorch's refusal
        x.to_sparse()


def test_dense_and_sparse_gradients_meeting_at_a_leaf_add_up():
    """A sparse leaf used by torch.sparse.mm (sparse gradient) and torch.mm (dense) gets the
    dense sum, in either order, as in PyTorch."""
    i, v = [[0, 1, 1], [1, 0, 2]], [1.0, 2.0, 3.0]
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    for order in (0, 1):
        res = []
        for lib in (torch, ds):
            s = lib.sparse_coo_tensor(i, v, (2, 3), requires_grad=True)
            a, b = lib.sparse.mm(s, lib.tensor(x)), lib.mm(s, lib.tensor(x))
            ((a * 2).sum() + (b * 3).sum() if order else (b * 3).sum() + (a * 2).sum()).backward()
            res.append(_dense_grad(s.grad))
        np.testing.assert_allclose(res[1], res[0], rtol=1e-6)


def test_like_factories_match_torch():
    """zeros_like/empty_like of a sparse tensor are empty sparse tensors; fills raise (PyTorch
    has no sparse fill); a hybrid keeps its sparse_dim."""
    i, v = [[0, 1], [1, 0]], [1.0, 2.0]
    t, d = torch.sparse_coo_tensor(i, v, (2, 2)), ds.sparse_coo_tensor(i, v, (2, 2))
    for fd, ft in [(ds.zeros_like, torch.zeros_like), (ds.empty_like, torch.empty_like)]:
        a, b = fd(d), ft(t)
        assert a.is_sparse and a._nnz() == b._nnz() == 0 and tuple(a.shape) == tuple(b.shape)
    h = ds.zeros_like(ds.sparse_coo_tensor([[0, 1]], ds.ones(2, 3)))
    assert (h.sparse_dim(), h.dense_dim()) == (1, 1)
    assert ds.zeros_like(d, dtype=ds.float64).dtype == ds.float64
    for f in (ds.ones_like, ds.rand_like, ds.randn_like, lambda x: ds.full_like(x, 2.0)):
        with pytest.raises(SparseUnsupportedError, match="_like"):
            f(d)
    with pytest.raises(RuntimeError, match="data pointer"):
        d.data_ptr()
    assert d.storage_offset() == t.storage_offset() == 0


def test_new_factories_and_type_name_match_torch():
    i, v = [[0, 1], [1, 0]], [1.0, 2.0]
    t, d = torch.sparse_coo_tensor(i, v, (2, 2)), ds.sparse_coo_tensor(i, v, (2, 2))
    assert d.type() == t.type().replace("torch.", "descent.")
    assert d.double().type() == t.double().type().replace("torch.", "descent.")
    for a, b in [(d.new_zeros(3), t.new_zeros(3)), (d.new_empty((2, 2)), t.new_empty((2, 2)))]:
        assert a.is_sparse and b.is_sparse and a._nnz() == b._nnz() == 0
        assert tuple(a.shape) == tuple(b.shape)
    for f in (lambda x: x.new_ones(2), lambda x: x.new_full((2,), 1.0)):
        with pytest.raises(NotImplementedError):
            f(t)
        with pytest.raises(SparseUnsupportedError, match="new_"):
            f(d)
    assert not d.new_tensor([1.0]).is_sparse


def test_bool_values_and_optimizers_on_sparse_parameters():
    i = [[0, 0, 1] * 100, [1, 1, 0] * 100]  # 200 duplicates of (0, 1): still True, not wrapped
    t = torch.sparse_coo_tensor(i, [True] * 300, (2, 2))
    d = ds.sparse_coo_tensor(i, [True] * 300, (2, 2))
    np.testing.assert_array_equal(_np(d.to_dense()), t.to_dense().numpy())
    np.testing.assert_array_equal(_np(d.coalesce().values()), t.coalesce().values().numpy())
    s = ds.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2.0], (2, 2), requires_grad=True)
    opt = ds.optim.SGD([s], lr=0.1)
    ds.sparse.mm(s, ds.ones(2, 1)).sum().backward()
    with pytest.raises(SparseUnsupportedError, match=r"^Optimizer\.step: .*\(2, 2\)"):
        opt.step()
    assert s.to_dense().tolist() == [[0.0, 1.0], [2.0, 0.0]]  # untouched


def test_add_promotes_and_refuses_mixed_density_as_torch():
    for lib in (torch, ds):
        a = lib.sparse_coo_tensor([[0, 1], [1, 0]], [1, 2], (2, 2))
        b = lib.sparse_coo_tensor([[0, 1], [1, 1]], [1.5, 2.5], (2, 2))
        assert str((a + b).dtype).endswith("float32") and str((a * 2.5).dtype).endswith("float32")
        h = lib.sparse_coo_tensor([[0, 1]], lib.ones(2, 2))
        with pytest.raises(RuntimeError, match="same density"):
            a.double() + h.double()


def test_compiled_step_with_sparse_ops_matches_eager():
    """descent.compile records and replays a step through sparse_coo_tensor (values requiring
    grad), torch.sparse.softmax, sparse.sum and sparse.mm: the same losses as eager."""
    rng = np.random.default_rng(0)
    idx = ds.tensor(np.stack([rng.integers(0, 8, 20), rng.integers(0, 8, 20)]))
    x = ds.tensor(rng.standard_normal((8, 4)), dtype=ds.float32)  # float32 @ float32, as torch
    y = ds.tensor(rng.integers(0, 2, 8))

    def run(compiled):
        ds.manual_seed(0)
        lin, a = ds.nn.Linear(4, 2), ds.nn.Parameter(ds.randn(4))
        opt = ds.optim.Adam([*lin.parameters(), a], lr=0.1)

        def step(x, y):
            opt.zero_grad()
            e = ds.exp(-(x @ a)[idx[0]].abs())
            att = ds.sparse.softmax(ds.sparse_coo_tensor(idx, e, (8, 8)), 1)
            out = ds.sparse.mm(att, lin(x)) + ds.sparse.sum(att, 1).to_dense()[:, None]
            loss = ds.nn.functional.cross_entropy(out, y)
            loss.backward()
            opt.step()
            return loss

        step = ds.compile(step) if compiled else step
        return [float(step(x, y)) for _ in range(5)]

    eager = run(False)
    assert eager[-1] < eager[0]
    assert run(True) == eager


def test_every_torch_sparse_layout_name_exists():
    for name in ("sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc"):
        assert repr(getattr(ds, name)) == repr(getattr(torch, name))
    assert ds.ones(2).to_sparse().layout not in (ds.sparse_csr, ds.sparse_csc, ds.strided)


ZERO_PRESERVING = ["abs", "sqrt", "sin", "tan", "asin", "atan", "sinh", "tanh", "asinh", "atanh",
                   "expm1", "log1p", "floor", "ceil", "trunc", "round", "deg2rad", "rad2deg",
                   "square", "neg", "relu"]  # fmt: skip


@pytest.mark.parametrize("name", ZERO_PRESERVING)
def test_zero_preserving_functions_match_torch(name):
    """f(0) = 0: applied to the coalesced stored values, the pattern kept (PyTorch's kernels)."""
    i, v = [[1, 0, 1, 0, 2], [2, 0, 2, 1, 0]], [0.3, -0.2, 0.4, 0.5, -0.7]
    t, d = torch.sparse_coo_tensor(i, v, (3, 3)), ds.sparse_coo_tensor(i, v, (3, 3))
    if name == "sqrt":
        t, d = t * t, d * d
    a, b = getattr(ds, name)(d), getattr(torch, name)(t)
    _same_sparse(a, b)
    assert a.is_coalesced() or name in ("neg", "deg2rad", "rad2deg")  # linear: as stored


@pytest.mark.parametrize("case", ["square", "pow3", "neg", "mul_dense", "dense_mul",
                                  "mul_sparse", "abs"])  # fmt: skip
def test_elementwise_products_and_powers_gradients_match_torch(case):
    i, v = [[1, 0, 1, 0, 2], [2, 0, 2, 1, 0]], [0.3, -0.2, 0.4, 0.5, -0.7]
    w = np.arange(9, dtype=np.float32).reshape(3, 3) - 4
    fns = {
        "square": lambda lib, s, x: s**2, "pow3": lambda lib, s, x: s.pow(3),
        "neg": lambda lib, s, x: -s, "mul_dense": lambda lib, s, x: s * x,
        "dense_mul": lambda lib, s, x: x * s, "mul_sparse": lambda lib, s, x: s * (s * 2).detach(),
        "abs": lambda lib, s, x: s.abs(),
    }  # fmt: skip
    res = []
    for lib in (torch, ds):
        vv, x = lib.tensor(v, requires_grad=True), lib.tensor(w, requires_grad=True)
        out = fns[case](lib, lib.sparse_coo_tensor(i, vv, (3, 3)), x)
        assert out.layout == lib.sparse_coo
        res.append((out, vv, x))
    _same_sparse(res[1][0], res[0][0])
    for out, _, _ in res:
        (out.to_dense() * out.to_dense().detach()).sum().backward()
    np.testing.assert_allclose(_np(res[1][1].grad), res[0][1].grad.numpy(), rtol=1e-5)
    tg, dg = res[0][2].grad, res[1][2].grad
    assert (tg is None) == (dg is None)
    if tg is not None:  # the dense operand's gradient is sparse, as PyTorch's
        assert dg.layout is ds.sparse_coo and tg.layout == torch.sparse_coo
        _same_sparse(dg, tg)


def test_factories_take_layout_as_torch():
    """zeros/empty(layout=sparse_coo) are empty sparse tensors; strided is accepted everywhere;
    the filling factories refuse a sparse layout (PyTorch's do too)."""
    for fd, ft in [(ds.zeros, torch.zeros), (ds.empty, torch.empty)]:
        a, b = fd(2, 3, layout=ds.sparse_coo), ft(2, 3, layout=torch.sparse_coo)
        assert repr(a) == repr(b)
        assert not fd(2, layout=ds.strided).is_sparse
    assert ds.ones(2, layout=ds.strided).tolist() == [1.0, 1.0]
    assert ds.full((2,), 3.0, layout=ds.strided).tolist() == [3.0, 3.0]
    assert ds.arange(3, layout=ds.strided).tolist() == [0, 1, 2]
    assert tuple(ds.rand(2, layout=ds.strided).shape) == tuple(ds.randn(2, layout=ds.strided).shape)
    coo, csr = ds.sparse_coo, ds.sparse_csr
    refused = [lambda: ds.ones(2, layout=coo), lambda: ds.full((2,), 1.0, layout=coo),
               lambda: ds.rand(2, layout=coo), lambda: ds.zeros(2, layout=csr)]  # fmt: skip
    for f in refused:
        with pytest.raises(NotImplementedError, match="layout"):
            f()
