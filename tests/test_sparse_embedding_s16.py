"""Sparse COO gradients of nn.Embedding / F.embedding / EmbeddingBag(sparse=True) against torch
2.13: indices, values, coalescing and accumulation of the gradient itself, the optimizers that
take it (SparseAdam, SGD, Adagrad, LBFGS) over several steps, PyTorch's refusals and their
words, clipping, GradScaler, double backward, descent.compile; EmbeddingBag's
scale_grad_by_freq."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import descent as ds

pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks:UserWarning")

W0 = np.random.default_rng(0).normal(size=(7, 3))
IDX = np.array([[3, 1, 3, 6], [0, 5, 2, 3]])  # duplicates (3 three times)


def _pair(dtype=np.float32):
    return (
        ds.tensor(W0.astype(dtype), requires_grad=True),
        torch.tensor(W0.astype(dtype), requires_grad=True),
    )


def _same_sparse(d, t, exact=True):
    """The same sparse COO tensor as stored (uncoalesced entries in the same order)."""
    assert d.is_sparse and t.is_sparse and d.layout is ds.sparse_coo
    assert tuple(d.shape) == tuple(t.shape)
    assert d.is_coalesced() == t.is_coalesced()
    # (torch's arrays copied: a NumPy view of a gradient's storage makes it unresizable, and
    # the next accumulation into it raises "Trying to resize storage that is not resizable")
    np.testing.assert_array_equal(d._indices().numpy(), t._indices().clone().numpy())
    dv, tv = d._values().detach().numpy(), t._values().detach().clone().numpy()
    assert dv.dtype == tv.dtype
    if exact:
        np.testing.assert_array_equal(dv, tv)
    else:
        np.testing.assert_allclose(dv, tv, rtol=1e-6, atol=1e-6)


def _weights(lib, shape):
    return lib.tensor(np.arange(np.prod(shape), dtype=np.float32).reshape(shape) * 0.1 - 0.5)


@pytest.mark.parametrize("padding_idx", [None, 5, -2])
@pytest.mark.parametrize("idx", [IDX, IDX[0, :1], np.zeros(0, np.int64), np.array([5, 5])])
def test_embedding_sparse_gradient_as_torch(padding_idx, idx):
    (wd, wt) = _pair()
    for lib, w in ((ds, wd), (torch, wt)):
        y = lib.nn.functional.embedding(lib.tensor(idx), w, padding_idx=padding_idx, sparse=True)
        (y * _weights(lib, y.shape)).sum().backward()
    _same_sparse(wd.grad, wt.grad)
    assert type(wd.grad) is ds.sparse.SparseTensor
    # (duplicates summed in another order: 1 ulp apart at most)
    np.testing.assert_allclose(wd.grad.to_dense().numpy(), wt.grad.to_dense().numpy(), rtol=1e-6)
    cd, ct = wd.grad.coalesce(), wt.grad.coalesce()
    _same_sparse(cd, ct, exact=False)
    np.testing.assert_array_equal(cd.indices().numpy(), ct.indices().numpy())


def _same_entries(d, t):
    """The same uncoalesced tensor up to the order of its entries: torch 2.13's in-place add
    of two uncoalesced gradients stores the new entries at a place that depends on the
    process's history (the same program gives [3, 1, 3, 6, 0, 5, 2, 3, 4, 1] or [3, 1, 3, 4,
    1, 6, 0, 5, 2, 3]); descent appends them (old entries, then new)."""
    assert d._nnz() == t._nnz() and d.is_coalesced() == t.is_coalesced()
    np.testing.assert_array_equal(np.sort(d._indices().numpy()),
                                  np.sort(t._indices().clone().numpy()))  # fmt: skip
    _same_sparse(d.coalesce(), t.coalesce(), exact=False)


def test_accumulation_concatenates_and_zero_grad_empties():
    d, t = ds.nn.Embedding(7, 3, sparse=True), torch.nn.Embedding(7, 3, sparse=True)
    first = None
    for b in [IDX, np.array([4, 1]), np.array([2])]:  # three passes
        for lib, m in ((ds, d), (torch, t)):
            y = m(lib.tensor(b))
            (y * _weights(lib, y.shape)).sum().backward()
        _same_entries(d.weight.grad, t.weight.grad)
        if first is None:
            first = d.weight.grad._indices().numpy()[0].tolist()
    assert d.weight.grad._nnz() == t.weight.grad._nnz() == 11
    assert d.weight.grad._indices().numpy()[0].tolist() == first + [4, 1, 2]  # appended
    # coalesced + coalesced merges, as PyTorch's add (torch 2.13 appends instead when the new
    # gradient's values are an expanded tensor, as y.sum()'s are: weighted losses here)
    d.weight.grad, t.weight.grad = d.weight.grad.coalesce(), t.weight.grad.coalesce()
    for lib, m in ((ds, d), (torch, t)):
        y = m(lib.tensor([6]))
        (y * _weights(lib, y.shape)).sum().backward()
    assert d.weight.grad.is_coalesced()
    _same_sparse(d.weight.grad, t.weight.grad, exact=False)
    # a dense gradient meeting the sparse one makes it dense (tied weights)
    for lib, m in ((ds, d), (torch, t)):
        m.zero_grad()
        (m(lib.tensor([1, 2])).sum() + (m.weight * 2).sum()).backward()
        assert not m.weight.grad.is_sparse
    np.testing.assert_allclose(d.weight.grad.numpy(), t.weight.grad.numpy())


def test_zero_grad_keeps_an_empty_sparse_gradient():
    d, t = ds.nn.Embedding(7, 3, sparse=True), torch.nn.Embedding(7, 3, sparse=True)
    od, ot = ds.optim.SGD(d.parameters(), lr=0.1), torch.optim.SGD(t.parameters(), lr=0.1)
    for lib, m in ((ds, d), (torch, t)):
        m(lib.tensor([1, 2])).sum().backward()
    od.zero_grad(set_to_none=False)
    ot.zero_grad(set_to_none=False)
    _same_sparse(d.weight.grad, t.weight.grad)
    assert d.weight.grad._nnz() == 0
    for lib, m in ((ds, d), (torch, t)):
        m(lib.tensor([3, 3])).sum().backward()
    _same_sparse(d.weight.grad, t.weight.grad)
    d.zero_grad(set_to_none=False)
    assert d.weight.grad.is_sparse and d.weight.grad._nnz() == 0


def test_accumulation_with_padding_idx():
    d = ds.nn.Embedding(7, 3, sparse=True, padding_idx=0)
    t = torch.nn.Embedding(7, 3, sparse=True, padding_idx=0)
    for b in [IDX, np.array([4, 1]), np.array([2, 0])]:
        for lib, m in ((ds, d), (torch, t)):
            y = m(lib.tensor(b))
            (y * _weights(lib, y.shape)).sum().backward()
        _same_entries(d.weight.grad, t.weight.grad)
    assert d.weight.grad._nnz() == 10


def test_non_leaf_weight_and_double_backward():
    wd, wt = _pair(np.float64)
    for lib, w in ((ds, wd), (torch, wt)):
        lib.nn.functional.embedding(lib.tensor(IDX), w * 2, sparse=True).sum().backward()
    _same_sparse(wd.grad, wt.grad)
    # create_graph: the sparse gradient is differentiable again (PyTorch's composite backward)
    out = []
    for lib, w in ((ds, wd), (torch, wt)):
        y = lib.nn.functional.embedding(lib.tensor(IDX), w, padding_idx=5, sparse=True)
        (g,) = lib.autograd.grad((y**3).sum(), w, create_graph=True)
        assert g.is_sparse and g.requires_grad
        (g2,) = lib.autograd.grad((g.coalesce().values() ** 2).sum(), w)
        out.append((g, g2))
    (gd, g2d), (gt, g2t) = out
    _same_sparse(gd, gt, exact=False)
    assert g2d.is_sparse == g2t.is_sparse
    np.testing.assert_allclose(g2d.to_dense().numpy(), g2t.to_dense().numpy(), rtol=1e-12)

    # the second derivative against float64 finite differences (descent alone)
    def f(w):
        y = ds.nn.functional.embedding(ds.tensor(IDX), w, padding_idx=5, sparse=True)
        (g,) = ds.autograd.grad((y**3).sum(), w, create_graph=True)
        return (g.coalesce().values() ** 2).sum()

    w = ds.tensor(W0, requires_grad=True)
    (analytic,) = ds.autograd.grad(f(w), w)
    num = np.zeros_like(W0)
    for i, j in np.ndindex(*W0.shape):
        e = np.zeros_like(W0)
        e[i, j] = 1e-6
        hi, lo = (ds.tensor(W0 + s * e, requires_grad=True) for s in (1, -1))
        num[i, j] = (f(hi).item() - f(lo).item()) / 2e-6
    np.testing.assert_allclose(analytic.to_dense().numpy(), num, rtol=1e-6, atol=1e-6)


def _bag_inputs(lib, two_d):
    if two_d:
        return lib.tensor([[1, 2, 4], [4, 3, 6], [0, 6, 6]]), None
    return lib.tensor([1, 2, 4, 6, 4, 3, 2, 0]), lib.tensor([0, 3, 3, 6])


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("two_d", [False, True])
@pytest.mark.parametrize("padding_idx", [None, 6])
def test_embedding_bag_sparse_gradient_as_torch(mode, two_d, padding_idx):
    (wd, wt) = _pair()
    for lib, w in ((ds, wd), (torch, wt)):
        inp, off = _bag_inputs(lib, two_d)
        psw = None
        if mode == "sum":
            psw = lib.tensor(np.linspace(-1, 2, inp.numel(), dtype=np.float32).reshape(inp.shape))
        kw = dict(mode=mode, sparse=True, per_sample_weights=psw, padding_idx=padding_idx)
        y = lib.nn.functional.embedding_bag(inp, w, off, **kw)
        (y * _weights(lib, y.shape)).sum().backward()
    _same_sparse(wd.grad, wt.grad, exact=False)


def test_embedding_bag_sparse_gradient_by_finite_differences():
    inp, off = ds.tensor([1, 2, 4, 6, 4, 3, 2, 0]), ds.tensor([0, 3, 3, 6])
    psw0 = np.linspace(-1, 2, 8)
    g = _weights(ds, (4, 3)).double()

    def f(w):
        kw = dict(mode="sum", sparse=True, per_sample_weights=ds.tensor(psw0), padding_idx=2)
        y = ds.nn.functional.embedding_bag(inp, w, off, **kw)
        return (y * y * g).sum()

    w = ds.tensor(W0, requires_grad=True)
    f(w).backward()
    num = np.zeros_like(W0)
    for i, j in np.ndindex(*W0.shape):
        e = np.zeros_like(W0)
        e[i, j] = 1e-6
        num[i, j] = (f(ds.tensor(W0 + e)).item() - f(ds.tensor(W0 - e)).item()) / 2e-6
    assert w.grad.is_sparse
    np.testing.assert_allclose(w.grad.to_dense().numpy(), num, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize(
    "idx", [[[1, 2, 4], [4, 3, 1]], [[1, 1, 1], [4, 3, 1]], [[0, 5, 4], [4, 3, 5]]]
)
def test_embedding_bag_scale_grad_by_freq(mode, idx):
    # PyTorch's rule, as its F.embedding applies it: each row's gradient divided by its index's
    # count in the input (torch 2.13's CPU bag kernel divides some rows by another index's
    # count; it agrees on the third input only), so the oracle is torch's embedding + sum/mean
    (wd, wt) = _pair()
    bag = ds.nn.EmbeddingBag(7, 3, mode=mode, scale_grad_by_freq=True, _weight=wd)
    kw = dict(max_norm=2.0, norm_type=3.0, scale_grad_by_freq=True, sparse=True, padding_idx=1)
    assert repr(ds.nn.EmbeddingBag(7, 3, **kw)) == repr(torch.nn.EmbeddingBag(7, 3, **kw))
    y = bag(ds.tensor(idx))
    (y * _weights(ds, y.shape)).sum().backward()
    wd = bag.weight
    e = torch.nn.functional.embedding(torch.tensor(idx), wt, scale_grad_by_freq=True)
    yt = e.sum(1) if mode == "sum" else e.mean(1)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-6)
    (yt * _weights(torch, yt.shape)).sum().backward()
    np.testing.assert_allclose(wd.grad.numpy(), wt.grad.numpy(), rtol=1e-6, atol=1e-7)
    if idx[0][0] == 0:  # where torch's bag kernel is right: the bag against the bag
        wt.grad = None
        yb = torch.nn.functional.embedding_bag(torch.tensor(idx), wt, mode=mode,
                                               scale_grad_by_freq=True)  # fmt: skip
        (yb * _weights(torch, yb.shape)).sum().backward()
        np.testing.assert_allclose(wd.grad.numpy(), wt.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_embedding_bag_scale_grad_by_freq_refusals():
    for lib in (ds, torch):
        with pytest.raises(ValueError, match="max mode does not support scaling the gradient"):
            lib.nn.EmbeddingBag(5, 3, mode="max", scale_grad_by_freq=True)(lib.tensor([[1, 2]]))
        e = lib.nn.EmbeddingBag(5, 3, mode="sum", scale_grad_by_freq=True, sparse=True)
        y = e(lib.tensor([[1, 2, 1]]))  # the forward works; backward refuses
        with pytest.raises(RuntimeError, match="scale_grad_by_freq not supported with sparse"):
            y.sum().backward()


def _train(lib, make, steps=5, padding_idx=0, bag=False):
    """A few steps of `make(params)` on an Embedding(sparse=True) whose batches repeat rows."""
    rng = np.random.default_rng(1)
    if bag:
        m = lib.nn.EmbeddingBag(9, 4, mode="sum", sparse=True, padding_idx=padding_idx)
    else:
        m = lib.nn.Embedding(9, 4, sparse=True, padding_idx=padding_idx)
    with lib.no_grad():
        m.weight.copy_(lib.tensor(np.random.default_rng(2).normal(size=(9, 4)).astype(np.float32)))
    opt = make(m.parameters())
    for _ in range(steps):
        opt.zero_grad()
        idx = lib.tensor(rng.integers(0, 9, size=(3, 4)))
        y = m(idx)
        ((y * _weights(lib, y.shape)).sum() ** 2 / 10).backward()
        opt.step()
    return m.weight.detach().numpy(), opt


OPTIMIZERS = {
    "SparseAdam": lambda lib: lambda p: lib.optim.SparseAdam(p, lr=0.05, betas=(0.8, 0.9)),
    "SparseAdam-max": lambda lib: lambda p: lib.optim.SparseAdam(p, lr=0.05, maximize=True),
    "SGD": lambda lib: lambda p: lib.optim.SGD(p, lr=0.01),
    "SGD-momentum": lambda lib: lambda p: lib.optim.SGD(p, lr=0.01, momentum=0.9, dampening=0.3),
    "SGD-nesterov": lambda lib: lambda p: lib.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True),
    "SGD-maximize": lambda lib: lambda p: lib.optim.SGD(p, lr=0.01, momentum=0.5, maximize=True),
    "Adagrad": lambda lib: lambda p: lib.optim.Adagrad(p, lr=0.1),
    "Adagrad-decay": lambda lib: (
        lambda p: lib.optim.Adagrad(
            p, lr=0.1, lr_decay=0.1, initial_accumulator_value=0.2, eps=1e-6, maximize=True
        )
    ),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("bag", [False, True])
def test_optimizers_step_sparse_gradients_as_torch(name, bag):
    wd, od = _train(ds, OPTIMIZERS[name](ds), bag=bag)
    wt, ot = _train(torch, OPTIMIZERS[name](torch), bag=bag)
    np.testing.assert_allclose(wd, wt, rtol=2e-6, atol=2e-6)
    assert len(od.state) == len(ot.state)
    if not ot.state:  # (SGD without momentum keeps no state)
        return
    (sd,), (st,) = od.state.values(), ot.state.values()
    assert list(sd) == list(st)
    for key in sd:
        if key == "step":
            assert float(sd[key]) == float(st[key]) == 5
            continue
        # PyTorch's SGD momentum buffer is a sparse tensor; descent's is dense (same numbers)
        tv = st[key].to_dense() if st[key].is_sparse else st[key]
        np.testing.assert_allclose(sd[key].numpy(), tv.numpy(), rtol=2e-6, atol=2e-6)


def test_lbfgs_steps_the_dense_form():
    make = lambda lib: lambda p: lib.optim.LBFGS(p, lr=0.5, max_iter=4)  # noqa: E731
    out = []
    for lib in (ds, torch):
        m = lib.nn.Embedding(6, 3, sparse=True)
        with lib.no_grad():
            m.weight.copy_(lib.tensor(W0[:6].astype(np.float32)))
        opt = make(lib)(m.parameters())
        idx = lib.tensor(IDX % 6)

        def closure(lib=lib, m=m, opt=opt, idx=idx):
            opt.zero_grad()
            loss = ((m(idx) - 1) ** 2).sum()
            loss.backward()
            return loss

        for _ in range(2):
            opt.step(closure)
        out.append(m.weight.detach().numpy())
    np.testing.assert_allclose(out[0], out[1], rtol=1e-5, atol=1e-6)


REFUSED = {
    "Adam": "Adam does not support sparse gradients, please consider SparseAdam instead",
    "AdamW": "Adam does not support sparse gradients, please consider SparseAdam instead",
    "Adamax": "Adamax does not support sparse gradients",
    "Adadelta": "Adadelta does not support sparse gradients",
    "RMSprop": "RMSprop does not support sparse gradients",
    "NAdam": "NAdam does not support sparse gradients",
    "RAdam": "RAdam does not support sparse gradients",
    "ASGD": "ASGD does not support sparse gradients",
    "Rprop": "Rprop does not support sparse gradients",
    "Adafactor": "Adafactor does not support sparse gradients",
    "Muon": "Muon does not support sparse gradients",
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_other_optimizers_refuse_with_torch_words(name):
    for lib in (ds, torch):
        m = lib.nn.Embedding(6, 3, sparse=True)
        w0 = m.weight.detach().clone()
        opt = getattr(lib.optim, name)(m.parameters(), lr=0.1)
        m(lib.tensor([1, 2, 1])).sum().backward()
        with pytest.raises(RuntimeError) as info:
            opt.step()
        assert str(info.value) == REFUSED[name]
        assert m.weight.detach().tolist() == w0.tolist()


@pytest.mark.parametrize(
    "make, msg",
    [
        (lambda lib, p: lib.optim.SGD(p, lr=0.1, weight_decay=0.1),
         "add(sparse, dense) is not supported. Use add(dense, sparse) instead."),
        (lambda lib, p: lib.optim.SGD(p, lr=0.1, fused=True),
         "`_fused_sgd` does not support sparse gradients"),
        (lambda lib, p: lib.optim.Adagrad(p, lr=0.1, weight_decay=0.1),
         "weight_decay option is not compatible with sparse gradients"),
    ],
)  # fmt: skip
def test_sgd_and_adagrad_refusals(make, msg):
    for lib in (ds, torch):
        m = lib.nn.Embedding(6, 3, sparse=True)
        opt = make(lib, m.parameters())
        m(lib.tensor([1, 2])).sum().backward()
        with pytest.raises(RuntimeError) as info:
            opt.step()
        assert str(info.value) == msg


def test_sparse_adam_refuses_dense_before_any_update():
    for lib in (ds, torch):
        e, lin = lib.nn.Embedding(6, 3, sparse=True), lib.nn.Linear(3, 1)
        w0 = e.weight.detach().clone()
        opt = lib.optim.SparseAdam(list(e.parameters()) + list(lin.parameters()))
        lin(e(lib.tensor([1, 2]))).sum().backward()
        with pytest.raises(RuntimeError, match="^SparseAdam does not support dense gradients, "
                                               "please consider Adam instead$"):  # fmt: skip
            opt.step()
        assert e.weight.detach().tolist() == w0.tolist()


def test_clipping_refuses_sparse_gradients_as_torch():
    # torch 2.13 has no sparse kernel for vector_norm or clamp: NotImplementedError in both
    for lib in (ds, torch):
        for clip in (
            lambda ps, lib=lib: lib.nn.utils.clip_grad_norm_(ps, 1.0),
            lambda ps, lib=lib: lib.nn.utils.clip_grad_norm_(ps, 1.0, norm_type=float("inf")),
            lambda ps, lib=lib: lib.nn.utils.clip_grad_value_(ps, 0.5),
            lambda ps, lib=lib: lib.nn.utils.get_total_norm([p.grad for p in ps]),
        ):
            e = lib.nn.Embedding(6, 3, sparse=True)
            e(lib.tensor([1, 2])).sum().backward()
            with pytest.raises(NotImplementedError):
                clip(list(e.parameters()))


def test_grad_scaler_unscales_sparse_gradients():
    out = []
    for lib in (ds, torch):
        m = lib.nn.Embedding(6, 3, sparse=True)
        with lib.no_grad():
            m.weight.copy_(lib.tensor(W0[:6].astype(np.float32)))
        opt = lib.optim.SGD(m.parameters(), lr=0.1)
        scaler = lib.amp.GradScaler("cpu", init_scale=8.0)
        for step in range(3):
            opt.zero_grad()
            loss = (m(lib.tensor(IDX % 6)) ** 2).sum()
            if step == 1:
                loss = loss * float("inf")  # a skipped step
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            assert m.weight.grad.is_sparse
            scaler.step(opt)
            scaler.update()
        out.append((m.weight.detach().numpy(), scaler.get_scale()))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-6)
    assert out[0][1] == out[1][1]


def test_compiled_step_replays_the_sparse_gradient_bitwise():
    def run(compiled):
        ds.manual_seed(0)
        emb, lin = ds.nn.Embedding(10, 4, sparse=True, padding_idx=0), ds.nn.Linear(4, 1)
        opt = ds.optim.SparseAdam(list(emb.parameters()), lr=0.1)
        opt2 = ds.optim.SGD(lin.parameters(), lr=0.1)

        def step(idx):
            opt.zero_grad()
            opt2.zero_grad()
            loss = (lin(emb(idx)) ** 2).mean()
            loss.backward()
            opt.step()
            opt2.step()
            return loss

        fn = ds.compile(step) if compiled else step
        rng = np.random.default_rng(0)
        losses = [fn(ds.tensor(rng.integers(0, 10, size=(3, 5)))).item() for _ in range(6)]
        return losses, emb.weight.detach().numpy(), getattr(fn, "stats", None)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning
        eager, compiled = run(False), run(True)
    assert eager[0] == compiled[0]
    np.testing.assert_array_equal(eager[1], compiled[1])
    assert compiled[2]["replays"] >= 3 and compiled[2]["fallbacks"] == 0


def test_torch_embedding_function_sparse_and_scaled():
    # torch.embedding(weight, indices, padding_idx, scale_grad_by_freq, sparse): F.embedding's
    (wd, wt) = _pair(np.float64)
    for lib, w in ((ds, wd), (torch, wt)):
        y = lib.embedding(w, lib.tensor(IDX), 5, False, True)
        (y * _weights(lib, y.shape).double()).sum().backward()
    _same_sparse(wd.grad, wt.grad)
    wd.grad = wt.grad = None
    outs = []
    for lib, w in ((ds, wd), (torch, wt)):
        y = lib.embedding(w, lib.tensor(IDX), -1, True, False)
        (g,) = lib.autograd.grad((y**2).sum(), w, create_graph=True)
        (g2,) = lib.autograd.grad((g * g).sum(), w)  # the unscaled double backward, as torch
        outs.append((g.detach().numpy(), g2.numpy()))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-12)
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-12)


def test_in_place_ops_of_a_custom_optimizer_sparse_branch():
    # p.add_(grad, alpha=-lr) (dense += sparse, each entry at its row), grad.mul_(c),
    # grad.div_(c), grad.add_(sparse), grad.zero_(): PyTorch's in-place ops on sparse tensors
    out = []
    for lib in (ds, torch):
        w = lib.tensor(W0.astype(np.float32), requires_grad=True)
        y = lib.nn.functional.embedding(lib.tensor(IDX), w, sparse=True)
        (y * _weights(lib, y.shape)).sum().backward()
        g = w.grad
        assert g.mul_(3.0) is g and g.div_(2.0) is g
        other = lib.sparse_coo_tensor(lib.tensor([[0, 6]]), lib.ones(2, 3), (7, 3))
        assert g.add_(other) is g  # (torch stores 9 entries here, descent 10: the same sum)
        with lib.no_grad():
            p = w.detach().clone()
            p.add_(g, alpha=-0.1)
            p.sub_(g.coalesce() * 0.5)
        vals = g.to_dense()
        version = g._version
        assert g.zero_() is g and g._nnz() == 0 and g.is_coalesced()
        assert lib is torch or g._version > version
        out.append((p.numpy(), vals.numpy()))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-6)


def test_zero_grad_keeps_the_sparse_gradient_object():
    for lib in (ds, torch):
        m = lib.nn.Embedding(6, 3, sparse=True)
        opt = lib.optim.SGD(m.parameters(), lr=0.1)
        m(lib.tensor([1, 2])).sum().backward()
        g = m.weight.grad
        opt.zero_grad(set_to_none=False)
        assert m.weight.grad is g and g._nnz() == 0
