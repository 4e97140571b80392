"""The eager GPT step's once-a-step Python (session 31, helper-233): the common calls of
nn.functional's cross_entropy and embedding and of `descent.arange` go to the op (or the array)
the checked path makes, without the argument checks they pass; the target and index range
checks run as one reduction.

Each test checks that the fast path ran (a spy on a check only the checked path makes) and that
it gives what the checked path gives: values and gradients (float32 against PyTorch, float64
against finite differences), the node's parameters and bits, grad_fn names, the inference-tensor
error, and the errors and results of the calls it must leave to the checked path.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent
import descent.nn.functional as F
from descent import creation
from descent.nn.functional import _embedding, _loss


def _logits(shape, dtype=np.float32, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return descent.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def _targets(n, classes, seed=1):
    t = np.random.default_rng(seed).integers(0, classes, size=n)
    return descent.tensor(t), torch.tensor(t)


# -- cross_entropy -----------------------------------------------------------------------------


@pytest.fixture
def full_ce(monkeypatch):
    """Count cross_entropy calls that took the checked path (its `_reduction` call)."""
    calls: list = []
    orig = _loss._reduction
    monkeypatch.setattr(_loss, "_reduction", lambda *a: (calls.append(a[-1]), orig(*a))[1])
    return calls


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [-100, -1, 2])
def test_cross_entropy_fast_vs_torch(full_ce, reduction, ignore_index):
    x, tx = _logits((6, 5))
    t, tt = _targets(6, 5)
    y = F.cross_entropy(x, t, ignore_index=ignore_index, reduction=reduction)
    ty = torch.nn.functional.cross_entropy(tx, tt, ignore_index=ignore_index, reduction=reduction)
    assert full_ce == []  # every target in range: the fast path (ignore_index 2 too)
    assert y.shape == tuple(ty.shape)
    if reduction != "none":  # ('none': the checked path's reshape to (N,) shows ViewBackward0)
        assert y.grad_fn.name() == ty.grad_fn.name() == "NllLossBackward0"
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-6, atol=1e-6)
    g = np.random.default_rng(2).standard_normal(tuple(ty.shape)).astype(np.float32)
    y.backward(descent.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_cross_entropy_fast_same_node_and_bits_as_full(full_ce):
    """The fast call makes the op the checked path makes: the same parameters, the same bits
    of the loss and the gradient (a NumPy int ignore_index takes the checked path)."""
    x = descent.randn(7, 11, requires_grad=True)
    t = descent.tensor(np.random.default_rng(3).integers(0, 11, size=7))
    fast = F.cross_entropy(x, t, ignore_index=-1)
    full = F.cross_entropy(x, t, ignore_index=np.int64(-1))
    assert full_ce == ["cross_entropy"]
    a, b = fast.grad_fn, full.grad_fn
    assert type(a) is type(b)
    for k in ("weight", "ignore_index", "smoothing", "reduction"):
        assert getattr(a, k) == getattr(b, k) and type(getattr(a, k)) is type(getattr(b, k)), k
    np.testing.assert_array_equal(a.target, b.target)
    assert fast.numpy().tobytes() == full.numpy().tobytes()
    (gf,) = descent.autograd.grad(fast, [x])
    (gc,) = descent.autograd.grad(full, [x])
    assert gf.numpy().tobytes() == gc.numpy().tobytes()


def test_cross_entropy_fast_float64_gradcheck(full_ce):
    x = descent.randn(4, 6, dtype=descent.float64, requires_grad=True)
    t = descent.tensor(np.array([0, 5, 2, 2]))
    assert descent.autograd.gradcheck(lambda x: F.cross_entropy(x, t), (x,))
    assert descent.autograd.gradcheck(lambda x: F.cross_entropy(x, t, reduction="none"), (x,))
    assert full_ce == []


def test_cross_entropy_fast_inference_target_raises(full_ce):
    with descent.inference_mode():
        t = descent.tensor(np.array([1, 0, 2]))
    x = descent.randn(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved"):
        F.cross_entropy(x, t)
    assert full_ce == []  # raised by the fast path's own check
    with descent.no_grad():
        assert F.cross_entropy(x, t).shape == ()  # nothing saved: allowed, as PyTorch


def test_cross_entropy_checked_path_cases(full_ce):
    x, tx = _logits((4, 3))
    t = descent.tensor(np.array([0, 3, 1, 2]))  # 3 is out of range
    with pytest.raises(IndexError, match="target 3 is out of range for 3 classes"):
        F.cross_entropy(x, t)
    with pytest.raises(IndexError, match="target -2 is out of range"):
        F.cross_entropy(x, descent.tensor(np.array([0, -2, 1, 2])))
    with pytest.raises(descent.errors.DescentError, match="Long or Byte"):
        F.cross_entropy(x, descent.tensor(np.array([0, 1, 1, 2], np.int32)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(x, descent.tensor(np.array([0, 1, 1, 2])), reduction="avg")
    with pytest.raises(ValueError, match="does not match"):
        F.cross_entropy(x, descent.tensor(np.array([0, 1, 1])))
    # ignored rows (a target -1 reads as a huge index in the one-reduction check)
    tt = torch.tensor([0, -1, 1, -1])
    y = F.cross_entropy(x, descent.tensor(tt.numpy()), ignore_index=-1)
    ty = torch.nn.functional.cross_entropy(tx, tt, ignore_index=-1)
    np.testing.assert_allclose(y.item(), ty.item(), rtol=1e-6)
    t4 = np.array([0, 2, 1, 2])
    w = np.array([0.5, 2.0, 1.0], np.float32)
    for kw, tkw in [({"weight": descent.tensor(w)}, {"weight": torch.tensor(w)}),
                    ({"label_smoothing": 0.1}, {"label_smoothing": 0.1})]:  # fmt: skip
        y = F.cross_entropy(x, descent.tensor(t4), **kw)
        ty = torch.nn.functional.cross_entropy(tx, torch.tensor(t4), **tkw)
        np.testing.assert_allclose(y.item(), ty.item(), rtol=1e-6)
    x3 = descent.randn(2, 3, 4)  # (N, C, d): the checked path
    assert F.cross_entropy(x3, descent.tensor(np.zeros((2, 4), np.int64))).shape == ()
    assert F.cross_entropy(descent.randn(3), descent.tensor(np.int64(1))).shape == ()
    assert F.cross_entropy(x.half(), descent.tensor(t4)).dtype == descent.float16
    with descent.autocast("cpu", dtype=descent.bfloat16):
        assert F.cross_entropy(x, descent.tensor(t4)).dtype == descent.float32
    assert F.cross_entropy(x, descent.tensor(t4), size_average=False).shape == ()
    assert len(full_ce) == 13  # every call above


# -- embedding ---------------------------------------------------------------------------------


@pytest.fixture
def full_emb(monkeypatch):
    """Count the checked path's `as_tensor` calls (of the weight, then of the indices)."""
    calls: list = []
    orig = _embedding.as_tensor
    monkeypatch.setattr(_embedding, "as_tensor", lambda t, *a: (calls.append(1), orig(t, *a))[1])
    return calls


def test_embedding_fast_vs_torch(full_emb):
    w, tw = _logits((10, 4))
    idx = np.array([[1, 3, 3], [9, 0, 1]])  # repeated rows accumulate
    y = F.embedding(descent.tensor(idx), w)
    ty = torch.nn.functional.embedding(torch.tensor(idx), tw)
    assert full_emb == []
    assert y.grad_fn.name() == ty.grad_fn.name() == "EmbeddingBackward0"
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    g = np.random.default_rng(4).standard_normal((2, 3, 4)).astype(np.float32)
    y.backward(descent.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-6, atol=1e-7)
    m = descent.nn.Embedding(10, 4)  # the module's call (a Parameter weight) too
    assert m(descent.tensor(idx)).shape == (2, 3, 4) and full_emb == []


def test_embedding_fast_float64_gradcheck(full_emb):
    w = descent.randn(5, 3, dtype=descent.float64, requires_grad=True)
    idx = descent.tensor(np.array([4, 0, 4, 2]))
    assert descent.autograd.gradcheck(lambda w: F.embedding(idx, w), (w,))
    assert full_emb == []


def test_embedding_fast_inference_indices_raise(full_emb):
    with descent.inference_mode():
        idx = descent.tensor(np.array([1, 2]))
    w = descent.randn(4, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved"):
        F.embedding(idx, w)
    assert full_emb == []


def test_embedding_checked_path_cases(full_emb):
    w, tw = _logits((6, 2))
    with pytest.raises(IndexError, match="index 6 out of range for 6 embeddings"):
        F.embedding(descent.tensor(np.array([0, 6])), w)
    with pytest.raises(IndexError, match="index -1 out of range"):
        F.embedding(descent.tensor(np.array([0, -1])), w)
    with pytest.raises(descent.errors.DtypeError, match="int64 or int32"):
        F.embedding(descent.tensor(np.array([0.0, 1.0])), w)
    with pytest.raises(descent.errors.DescentError, match="must be 2-D"):
        F.embedding(descent.tensor(np.array([0, 1])), descent.randn(6))
    i32 = np.array([5, 0], np.int32)
    np.testing.assert_array_equal(F.embedding(descent.tensor(i32), w).detach().numpy(),
                                  w.detach().numpy()[i32])  # fmt: skip
    idx = np.array([0, 2, 2, 5])
    y = F.embedding(descent.tensor(idx), w, padding_idx=2)
    ty = torch.nn.functional.embedding(torch.tensor(idx), tw, padding_idx=2)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), tw.grad.numpy())  # row 2 gets none
    assert F.embedding(descent.tensor(idx), w, scale_grad_by_freq=True).shape == (4, 2)
    assert F.embedding(descent.tensor(np.zeros((0,), np.int64)), w).shape == (0, 2)  # fast
    # every call above but the empty one: two as_tensor calls each (weight, indices), one for
    # the 1-D weight (it raises first)
    assert len(full_emb) == 13


def test_embedding_gather_is_take(monkeypatch):
    """The op's NumPy gather is np.take along the rows: the bytes of weight[idx], C-contiguous,
    for C- and F-ordered and strided weights, index shapes of 1+ dims (a 0-d one keeps w[idx]),
    negative (wrapped) indices and bfloat16, and NumPy's IndexError out of range (the op called
    directly)."""
    from descent.ops.embedding import Embedding

    taken: list = []
    orig = np.take
    monkeypatch.setattr(np, "take", lambda *a, **k: (taken.append(1), orig(*a, **k))[1])
    base = np.arange(96.0, dtype=np.float32).reshape(8, 12)
    import ml_dtypes

    for w in (
        base[:, :5],
        np.asfortranarray(base),
        base[::2, ::3],
        base.astype(ml_dtypes.bfloat16),
    ):
        for idx in (np.array([[1, 3], [3, 0]]), np.array(2), np.array([-1, 0, 2])):
            idx = idx % w.shape[0] if idx.ndim == 0 else idx
            wt = descent.tensor(w)
            y = Embedding.apply(wt, idx=idx, padding_idx=None, freq_scale=None, sparse=False)
            ref = wt._data[idx]
            assert y._data.tobytes() == ref.tobytes() and y._data.strides == ref.strides
    assert len(taken) == 8  # (not the 0-d index)
    with pytest.raises(IndexError, match="index 8 is out of bounds for axis 0 with size 8"):
        Embedding.apply(descent.tensor(base), idx=np.array([0, 8]), padding_idx=None,
                        freq_scale=None, sparse=False)  # fmt: skip


# -- arange ------------------------------------------------------------------------------------


@pytest.fixture
def full_arange(monkeypatch):
    """Count arange calls that took the checked path (its `_check_layout` call)."""
    calls: list = []
    orig = creation._check_layout
    monkeypatch.setattr(creation, "_check_layout", lambda *a: (calls.append(a[1]), orig(*a))[1])
    return calls


@pytest.mark.parametrize("args", [(0, 5), (2, 11, 3), (0, 0), (4, 4), (-3, 2), (0, 7, 10)])
def test_arange_fast_vs_torch(full_arange, args):
    for kw in ({}, {"dtype": descent.int64}, {"device": "cpu"}, {"device": descent.device("cpu")}):
        y = descent.arange(*args, **kw)
        ty = torch.arange(*args)
        assert y.dtype == descent.int64 and not y.requires_grad and y.grad_fn is None
        np.testing.assert_array_equal(y.numpy(), ty.numpy())
        assert y.numpy().flags.owndata and y.numpy().flags.writeable
    assert full_arange == []


def test_arange_checked_path_cases(full_arange):
    np.testing.assert_array_equal(descent.arange(4).numpy(), [0, 1, 2, 3])
    assert descent.arange(0, 3, dtype=descent.float32).dtype == descent.float32
    np.testing.assert_array_equal(descent.arange(5, 0, -2).numpy(), [5, 3, 1])
    np.testing.assert_allclose(descent.arange(0, 1, 0.25).numpy(), [0, 0.25, 0.5, 0.75])
    assert descent.arange(0.0, 3, requires_grad=True).requires_grad
    assert descent.arange(np.int64(0), 3).dtype == descent.int64
    with pytest.raises(descent.errors.DescentError, match="step must be nonzero"):
        descent.arange(0, 3, 0)
    with pytest.raises(descent.errors.DescentError, match="inconsistent with step sign"):
        descent.arange(3, 0)
    with pytest.raises(descent.errors.DtypeError, match="Bool"):
        descent.arange(0, 3, dtype=descent.bool)
    assert len(full_arange) == 9


# -- the GPT step --------------------------------------------------------------------------------


def test_gpt_step_takes_the_fast_paths(full_ce, full_emb, full_arange):
    from descent.models import GPT, GPTConfig

    descent.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=13, block_size=5, n_layer=1, n_head=2, n_embd=8, dropout=0.0,
                      bias=False))  # fmt: skip
    idx = descent.tensor(np.random.default_rng(5).integers(0, 13, size=(2, 5)))
    tgt = descent.tensor(np.random.default_rng(6).integers(0, 13, size=(2, 5)))
    loss = m(idx, tgt)[1]
    loss.backward()
    assert full_ce == [] and full_emb == [] and full_arange == []
    assert loss.grad_fn.name() == "NllLossBackward0" or loss.grad_fn.name().endswith("Backward0")
    assert all(p.grad is not None for p in m.parameters())


# -- Module.parameters -----------------------------------------------------------------------


@pytest.fixture
def named_walks(monkeypatch):
    """Count the named walks (Module.named_modules calls) that parameters() makes."""
    from descent.nn.module import Module

    calls: list = []
    orig = Module.named_modules

    def spy(self, *a, **k):
        calls.append(type(self).__name__)
        return orig(self, *a, **k)

    monkeypatch.setattr(Module, "named_modules", spy)
    return calls


def _ids(it):
    return [id(p) for p in it]


def test_parameters_walk_same_as_named(named_walks):
    from descent.models import GPT, GPTConfig

    nn = descent.nn
    shared = nn.Linear(3, 3)
    m = nn.Sequential(
        nn.Linear(2, 3),
        nn.ModuleDict({"a": shared, "gone": None, "b": nn.Sequential(shared, nn.ReLU())}),
        nn.ModuleList([nn.LayerNorm(3), nn.Linear(3, 4, bias=False)]),
    )
    m[0].register_parameter("extra", None)  # a None entry of the registry
    m[2][1].register_parameter("late", descent.nn.Parameter(descent.randn(2)))
    cfg = GPTConfig(vocab_size=11, block_size=4, n_layer=2, n_head=2, n_embd=4, dropout=0.0)
    gpt = GPT(cfg)  # tied weights: wte.weight is lm_head.weight, yielded once
    named_walks.clear()  # (GPT's initialisation walks its modules by name)
    for mod in (m, gpt, shared, nn.ReLU()):
        fast = _ids(mod.parameters())
        assert named_walks == []  # the walk without names ran
        named = _ids(p for _, p in mod.named_parameters())
        assert fast == named and len(set(fast)) == len(fast)
        named_walks.clear()
    tn = torch.nn  # PyTorch's order for the same structure (shapes; the shared Linear once)
    tshared = tn.Linear(3, 3)
    tm = tn.Sequential(tn.Linear(2, 3),
                       tn.ModuleDict({"a": tshared, "b": tn.Sequential(tshared, tn.ReLU())}),
                       tn.ModuleList([tn.LayerNorm(3), tn.Linear(3, 4, bias=False)]))  # fmt: skip
    tm[2][1].register_parameter("late", tn.Parameter(torch.randn(2)))
    assert [tuple(p.shape) for p in m.parameters()] == [tuple(p.shape) for p in tm.parameters()]
    assert _ids(m.parameters(recurse=False)) == []  # a Sequential's own: none
    assert _ids(m[0].parameters(recurse=False)) == [id(m[0].weight), id(m[0].bias)]


def test_parameters_lazy_as_the_named_walk(named_walks):
    """A parameter registered on a later module while the walk runs is seen, as by the named
    walk (both read each module's registry when they reach it)."""
    nn = descent.nn
    m = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    for walk in (m.parameters, lambda: (p for _, p in m.named_parameters())):
        it = walk()
        first = next(it)
        m[1].register_parameter("added", nn.Parameter(descent.randn(1)))
        rest = list(it)
        assert first is m[0].weight and rest[-1] is m[1].added and len(rest) == 4
        del m[1]._parameters["added"]


def test_parameters_overrides_are_honoured(named_walks):
    """A class overriding named_parameters, _named_members or named_modules keeps its walk."""
    nn = descent.nn

    class OnlyWeights(nn.Sequential):
        def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
            for name, p in super().named_parameters(prefix, recurse, remove_duplicate):
                if name.endswith("weight"):
                    yield name, p

    class NoChildren(nn.Sequential):
        def named_modules(self, memo=None, prefix="", remove_duplicate=True):
            yield prefix, self

    a = OnlyWeights(nn.Linear(2, 3), nn.Linear(3, 1))
    assert _ids(a.parameters()) == [id(a[0].weight), id(a[1].weight)]
    b = NoChildren(nn.Linear(2, 3))
    assert list(b.parameters()) == []
    assert named_walks == ["OnlyWeights"]  # (NoChildren's own named_modules is not the spy)


def test_clip_grad_norm_with_parameters_vs_torch():
    lin, tlin = descent.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    with torch.no_grad():
        tlin.weight.copy_(torch.tensor(lin.weight.detach().numpy()))
        tlin.bias.copy_(torch.tensor(lin.bias.detach().numpy()))
    x = np.random.default_rng(7).standard_normal((5, 4)).astype(np.float32)
    (lin(descent.tensor(x)) ** 2).sum().backward()
    (tlin(torch.tensor(x)) ** 2).sum().backward()
    n = descent.nn.utils.clip_grad_norm_(lin.parameters(), 0.5)
    tn_ = torch.nn.utils.clip_grad_norm_(tlin.parameters(), 0.5)
    np.testing.assert_allclose(n.item(), tn_.item(), rtol=1e-5)
    np.testing.assert_allclose(lin.weight.grad.numpy(), tlin.weight.grad.numpy(), rtol=1e-5)
    np.testing.assert_allclose(lin.bias.grad.numpy(), tlin.bias.grad.numpy(), rtol=1e-5)
