"""nn.Embedding(sparse=True) + optim.SparseAdam against PyTorch: the rows a sparse COO gradient
names (padding excepted, accumulated over passes, cleared by zero_grad), and the lazy Adam
update of exactly those rows, including rows whose gradient is zero."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

W0 = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)


def _pair(padding_idx=None, lib_kw=None):
    kw = dict(sparse=True, padding_idx=padding_idx, **(lib_kw or {}))
    d = ds.nn.Embedding(7, 3, **kw)
    t = torch.nn.Embedding(7, 3, **kw)
    with ds.no_grad():
        d.weight.copy_(ds.tensor(W0))
    with torch.no_grad():
        t.weight.copy_(torch.tensor(W0))
    return d, t


def rows_of(w):
    """The rows a descent sparse gradient names (its coalesced indices)."""
    assert w.grad.is_sparse
    return w.grad.coalesce().indices()[0]


def _torch_rows(t):
    return sorted(set(t.weight.grad.coalesce().indices()[0].tolist()))


def _loss(lib, emb, idx, mask):
    y = emb(lib.tensor(idx))  # (B, T, 3)
    w = lib.tensor(np.arange(3, dtype=np.float32) - 1.0)
    return ((y * w).sum(-1) ** 2 * lib.tensor(mask)).sum()


BATCHES = [
    (np.array([[1, 2, 2], [5, 0, 1]]), np.float32([[1, 1, 1], [1, 1, 0]])),
    (np.array([[3, 3, 0], [6, 2, 0]]), np.float32([[0, 1, 1], [1, 1, 1]])),  # row 3 half-masked
    (np.array([[4, 0, 0], [4, 1, 0]]), np.float32([[0, 0, 0], [0, 1, 0]])),  # row 4: zero grad
]


@pytest.mark.parametrize("padding_idx", [None, 0])
@pytest.mark.parametrize("maximize", [False, True])
def test_sparse_adam_matches_torch(padding_idx, maximize):
    d, t = _pair(padding_idx)
    kw = dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6, maximize=maximize)
    od, ot = ds.optim.SparseAdam(d.parameters(), **kw), torch.optim.SparseAdam(t.parameters(), **kw)
    for step in range(6):
        idx, mask = BATCHES[step % 3]
        for lib, emb, opt in ((ds, d, od), (torch, t, ot)):
            opt.zero_grad()
            _loss(lib, emb, idx, mask).backward()
        assert rows_of(d.weight).tolist() == _torch_rows(t)
        np.testing.assert_allclose(d.weight.grad.to_dense().numpy(),
                                   t.weight.grad.to_dense().numpy(),
                                   rtol=1e-6, atol=1e-6)  # fmt: skip
        od.step()
        ot.step()
        np.testing.assert_allclose(d.weight.detach().numpy(), t.weight.detach().numpy(),
                                   rtol=1e-6, atol=1e-7)  # fmt: skip
    assert od.state[d.weight]["step"] == ot.state[t.weight]["step"] == 6
    for key in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_allclose(od.state[d.weight][key].numpy(), ot.state[t.weight][key].numpy(),
                                   rtol=1e-6, atol=1e-8)  # fmt: skip


def test_rows_accumulate_over_passes_and_clear_with_zero_grad():
    d, t = _pair()
    od, ot = ds.optim.SparseAdam(d.parameters()), torch.optim.SparseAdam(t.parameters())
    for idx, mask in BATCHES[:2]:  # gradient accumulation: two passes, one step
        _loss(ds, d, idx, mask).backward()
        _loss(torch, t, idx, mask).backward()
    assert rows_of(d.weight).tolist() == _torch_rows(t) == [0, 1, 2, 3, 5, 6]
    od.step()
    ot.step()
    np.testing.assert_allclose(d.weight.detach().numpy(), t.weight.detach().numpy(), atol=1e-7)
    for set_to_none in (True, False):  # zeroed in place: the old rows are gone too
        od.zero_grad(set_to_none=set_to_none)
        ot.zero_grad(set_to_none=set_to_none)
        _loss(ds, d, *BATCHES[2]).backward()
        _loss(torch, t, *BATCHES[2]).backward()
        assert rows_of(d.weight).tolist() == _torch_rows(t) == [0, 1, 4]
        od.step()
        ot.step()
        np.testing.assert_allclose(d.weight.detach().numpy(), t.weight.detach().numpy(),
                                   atol=1e-7)  # fmt: skip


def test_dense_gradients_and_bad_options_raise_as_torch():
    lin = ds.nn.Linear(2, 2)
    opt = ds.optim.SparseAdam(lin.parameters())
    lin(ds.ones(1, 2)).sum().backward()
    with pytest.raises(RuntimeError, match="does not support dense gradients"):
        opt.step()
    d, _ = _pair()
    d(ds.tensor([1])).sum().backward()
    d.weight.grad = d.weight.grad.to_dense()  # a gradient the user made dense
    with pytest.raises(RuntimeError, match="does not support dense gradients"):
        ds.optim.SparseAdam([d.weight]).step()
    for kw, msg in (({"lr": 0.0}, "Invalid learning rate"), ({"eps": 0.0}, "Invalid epsilon")):
        with pytest.raises(ValueError, match=msg):
            torch.optim.SparseAdam(torch.nn.Embedding(2, 2).parameters(), **kw)
        with pytest.raises(ValueError, match=msg):
            ds.optim.SparseAdam(ds.nn.Embedding(2, 2).parameters(), **kw)
    with pytest.raises(ValueError):
        ds.optim.SparseAdam(ds.nn.Embedding(2, 2).parameters(), betas=(1.0, 0.9))


def test_sparse_embedding_gradient_values_and_other_optimizers_match_dense():
    # SGD and Adagrad treat a sparse gradient as its dense form: descent's dense one matches
    for make in (lambda ps, lib: lib.optim.SGD(ps, lr=0.1),
                 lambda ps, lib: lib.optim.Adagrad(ps, lr=0.1)):  # fmt: skip
        d, t = _pair(padding_idx=0)
        od, ot = make(d.parameters(), ds), make(t.parameters(), torch)
        for idx, mask in BATCHES:
            for lib, emb, opt in ((ds, d, od), (torch, t, ot)):
                opt.zero_grad()
                _loss(lib, emb, idx, mask).backward()
                opt.step()
        np.testing.assert_allclose(d.weight.detach().numpy(), t.weight.detach().numpy(),
                                   rtol=1e-6, atol=1e-7)  # fmt: skip
    # scale_grad_by_freq is refused with sparse gradients, at backward (forward works)
    for lib in (ds, torch):
        e = lib.nn.Embedding(4, 2, sparse=True, scale_grad_by_freq=True)
        y = e(lib.tensor([1, 1]))
        assert tuple(y.shape) == (2, 2)
        with pytest.raises(RuntimeError, match="scale_grad_by_freq not supported"):
            y.sum().backward()


def test_functional_embedding_sparse_and_empty_lookup():
    w = ds.tensor(W0, requires_grad=True)
    ds.nn.functional.embedding(ds.tensor([[2, 2]]), w, sparse=True).sum().backward()
    assert rows_of(w).tolist() == [2]
    np.testing.assert_allclose(w.grad.to_dense().numpy()[2], [2.0, 2.0, 2.0])
    # only padding looked up: no rows; SparseAdam counts the step but moves nothing
    d, t = _pair(padding_idx=0)
    od, ot = ds.optim.SparseAdam(d.parameters()), torch.optim.SparseAdam(t.parameters())
    d(ds.tensor([0, 0])).sum().backward()
    t(torch.tensor([0, 0])).sum().backward()
    assert rows_of(d.weight).tolist() == _torch_rows(t) == []
    od.step()
    ot.step()
    np.testing.assert_array_equal(d.weight.detach().numpy(), W0)
    np.testing.assert_array_equal(t.weight.detach().numpy(), W0)
    assert od.state[d.weight]["step"] == ot.state[t.weight]["step"] == 1


def test_state_dict_round_trip_keeps_the_update():
    d, t = _pair()
    od, ot = (
        ds.optim.SparseAdam(d.parameters(), lr=0.1),
        torch.optim.SparseAdam(t.parameters(), lr=0.1),
    )
    for lib, emb, opt in ((ds, d, od), (torch, t, ot)):
        _loss(lib, emb, *BATCHES[0]).backward()
        opt.step()
    od2 = ds.optim.SparseAdam(d.parameters(), lr=0.1)
    od2.load_state_dict(od.state_dict())
    for lib, emb, opt in ((ds, d, od2), (torch, t, ot)):
        opt.zero_grad()
        _loss(lib, emb, *BATCHES[1]).backward()
        opt.step()
    assert od2.state[d.weight]["step"] == 2 and isinstance(od2.state[d.weight]["step"], int)
    np.testing.assert_allclose(d.weight.detach().numpy(), t.weight.detach().numpy(), atol=1e-7)


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_embedding_bag_sparse_with_sparse_adam_matches_torch(mode):
    # fastText-style bags: the rows used (padding excepted; a zero per_sample_weight still
    # names its row) are the sparse gradient's; SparseAdam updates those only
    kw = dict(mode=mode, sparse=True, padding_idx=6)
    d, t = ds.nn.EmbeddingBag(7, 3, **kw), torch.nn.EmbeddingBag(7, 3, **kw)
    with ds.no_grad():
        d.weight.copy_(ds.tensor(W0))
    with torch.no_grad():
        t.weight.copy_(torch.tensor(W0))
    od, ot = (
        ds.optim.SparseAdam(d.parameters(), lr=0.1),
        torch.optim.SparseAdam(t.parameters(), lr=0.1),
    )
    inp, offsets = np.array([1, 2, 6, 2, 5, 0]), np.array([0, 3, 4])
    psw = np.float32([1.0, 0.0, 2.0, 0.5, -1.0, 1.0]) if mode == "sum" else None
    for step in range(3):
        for lib, emb, opt in ((ds, d, od), (torch, t, ot)):
            opt.zero_grad()
            w = None if psw is None else lib.tensor(psw[step:] * (step + 1))
            y = emb(lib.tensor(inp[step:]), lib.tensor(offsets[: 3 - step]), per_sample_weights=w)
            (y**2).sum().backward()
            opt.step()
        assert rows_of(d.weight).tolist() == _torch_rows(t)
        np.testing.assert_allclose(d.weight.detach().numpy(), t.weight.detach().numpy(),
                                   rtol=1e-6, atol=1e-7)  # fmt: skip
    for lib in (ds, torch):
        with pytest.raises(ValueError, match="max mode does not support sparse weights"):
            lib.nn.EmbeddingBag(7, 3, mode="max", sparse=True)(lib.tensor([[1, 2]]))


def test_embedding_bag_of_padding_only_names_no_row():
    # every index is padding: the sparse gradient has no entries; SparseAdam counts the step
    # and moves nothing (was: a dense zero gradient, which SparseAdam refused)
    for lib in (ds, torch):
        e = lib.nn.EmbeddingBag(5, 2, mode="sum", sparse=True, padding_idx=0)
        w0 = e.weight.detach().clone()
        y = e(lib.tensor([0, 0]), lib.tensor([0, 1]))
        assert y.tolist() == [[0.0, 0.0], [0.0, 0.0]]
        y.sum().backward()
        opt = lib.optim.SparseAdam(e.parameters())
        opt.step()
        assert int(opt.state[e.weight]["step"]) == 1
        assert e.weight.detach().tolist() == w0.tolist()
    d = ds.nn.EmbeddingBag(5, 2, mode="mean", sparse=True, padding_idx=0)
    d(ds.tensor([[0, 0]])).sum().backward()
    assert rows_of(d.weight).tolist() == []
