"""The eager step's per-call Python (session 30, helper-227): the fast paths of the view ops
(view, reshape, transpose, split through `autograd._apply_view`), of nn.functional's
layer_norm, linear and scaled_dot_product_attention (the common call without the argument
checks it passes), of `Function.apply` with two inputs and of `Module.__getattr__`.

Each test checks that the fast path ran (a spy on the engine's view path, or on a check only
the full path makes) and that it keeps what the full path gives: values and gradients (float32
against PyTorch, float64 against finite differences), grad_fn names, view bases and version
counters, in-place writes through the views and their errors, op hooks (descent.compile's
recorder and anomaly mode attach there), bfloat16 and the errors of the calls it must leave to
the full path.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent
import descent.nn.functional as F
from descent import autograd, hooks
from descent.nn import functional as nnf
from descent.nn.functional import _attention, _linear, _normalization
from descent.ops import shape as shape_ops


@pytest.fixture
def views(monkeypatch):
    """Count the view ops that took the engine's view path (autograd._apply_view)."""
    calls: list = []
    orig = shape_ops._apply_view

    def spy(fn, x):
        t = orig(fn, x)
        calls.append((type(fn).__name__, t is not None))
        return t

    monkeypatch.setattr(shape_ops, "_apply_view", spy)
    return calls


def _pair(shape, dtype=np.float32, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return (descent.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True))


# -- transpose ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [(1, 2), (2, 1), (-1, -3), (0, 0), (-2, 3)])
def test_transpose_fast_values_grads_and_names(views, dims):
    x, tx = _pair((2, 3, 4, 5))
    y, ty = x.transpose(*dims), tx.transpose(*dims)
    assert views == [("Transpose", True)]
    assert y.shape == ty.shape and y.stride() == ty.stride()
    assert y.grad_fn.name() == ty.grad_fn.name() == "TransposeBackward0"
    g = np.random.default_rng(1).standard_normal(ty.shape).astype(np.float32)
    y.backward(descent.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_transpose_fast_2d_and_cache():
    x = descent.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(x.transpose(0, 1).numpy(), np.arange(6.0).reshape(2, 3).T)
    np.testing.assert_array_equal(x.transpose(1, 1).numpy(), x.numpy())
    assert shape_ops._SWAPS[(2, 0, 1)] == (1, 0) and shape_ops._SWAPS[(2, 1, 1)] == (0, 1)


def test_transpose_full_path_errors(views):
    x = descent.randn(2, 3, 4)
    with pytest.raises(IndexError):  # out of range: the checked path raises
        x.transpose(1, 3)
    with pytest.raises(TypeError):  # a float dim: never cached as the int it hashes like
        x.transpose(1.0, 2)
    assert views == []  # neither took the view path
    v = descent.randn(5)
    assert v.transpose(0, -1).shape == (5,)  # 1-d: the checked path (PyTorch's no-op view)
    np.testing.assert_array_equal(x.transpose(np.int64(1), 2).numpy(),
                                  x.numpy().swapaxes(1, 2))  # fmt: skip


def test_transpose_fast_view_semantics(views):
    """The base, the shared version counter, writes through the view, view-of-view bases."""
    a, ta = _pair((2, 3, 4))
    base, tbase = a * 1.0, ta * 1.0
    v, tv = base.view(2, 3, 2, 2), tbase.view(2, 3, 2, 2)
    t, tt = v.transpose(1, 2), tv.transpose(1, 2)
    assert t._base is base and v._base is base
    assert t._version == base._version
    t.mul_(2.0)  # in place through a view of a view: base sees it, the versions move together
    tt.mul_(2.0)
    assert t._version == base._version == v._version == tt._version
    assert t.grad_fn.name() == tt.grad_fn.name() and base.grad_fn.name() == tbase.grad_fn.name()
    np.testing.assert_array_equal(base.detach().numpy(), tbase.detach().numpy())
    g = np.random.default_rng(5).standard_normal((2, 3, 4)).astype(np.float32)
    (base * descent.tensor(g)).sum().backward()
    (tbase * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())
    leaf = descent.randn(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):  # a view of a leaf that requires grad
        leaf.transpose(0, 1).add_(1.0)


def test_transpose_fast_under_no_grad_and_plain(views):
    x = descent.randn(2, 3, 4, requires_grad=True)
    with descent.no_grad():
        t = x.transpose(1, 2)
    assert t.grad_fn is None and t._base is x and t.requires_grad
    with pytest.raises(RuntimeError, match="no_grad"):
        t.mul_(2.0)  # PyTorch's error for a view made under no_grad, written with grad mode on
    p = descent.randn(2, 3, 4)  # requires no grad: an unrecorded view that writes through
    pt = p.transpose(1, 2)
    pt.zero_()
    assert float(p.abs().sum()) == 0.0 and pt._version == p._version == 1


def test_transpose_fast_saved_value_check(views):
    """A node that saved the base raises at backward after a write through the fast view."""
    x = descent.randn(2, 3, requires_grad=True)
    b = x * 1.0
    y = b.sin()  # saves b
    b.transpose(0, 1).mul_(3.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation|in place"):
        y.sum().backward()


def test_view_ops_fast_op_hooks(views):
    """Op hooks (descent.compile's recorder, anomaly mode, vmap) see the view ops."""
    seen = []
    h = hooks.add_op_hook(forward=lambda op, ins, out: seen.append((type(op).__name__, out)))
    try:
        x = descent.randn(2, 3, 4, requires_grad=True)
        t = x.transpose(1, 2)
        v = x.view(6, 4)
        r = x.reshape(4, 6)
        a, b = x.split(2, dim=2)
    finally:
        h.remove()
    assert [s[0] for s in seen] == ["Transpose", "Reshape", "Reshape", "GetItem", "GetItem"]
    assert seen[0][1] is t and seen[1][1] is v and seen[2][1] is r and seen[3][1] is a
    assert len(views) == 5


def test_view_ops_fast_anomaly_mode():
    with descent.autograd.detect_anomaly():
        x = descent.randn(2, 3, 4, requires_grad=True)
        y = x.transpose(1, 2).reshape(2, 12).sum()
        y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 3, 4), np.float32))


def test_view_ops_fast_bfloat16_dispatch(views):
    """bfloat16 goes to apply's low-precision dispatch (the view path declines it)."""
    x = descent.randn(2, 3, 4).to(descent.bfloat16).requires_grad_()
    t = x.transpose(1, 2)
    v = x.view(6, 4)
    a, _ = x.split(2, dim=2)
    assert t.dtype == v.dtype == a.dtype == descent.bfloat16
    assert t._base is x and v._base is x and a._base is x
    assert all(not ok for _, ok in views)  # each declined, then took apply
    (t.float().sum() + v.float().sum() + a.float().sum()).backward()
    assert x.grad.dtype == descent.bfloat16
    np.testing.assert_array_equal(x.grad.float().numpy()[..., :2], np.full((2, 3, 2), 3.0))


# -- view and reshape --------------------------------------------------------------------------


def test_view_fast_values_grads_strides(views):
    x, tx = _pair((1, 4, 8))
    for shape in [(1, 4, 2, 4), (4, 8), (-1,), (2, 2, 8)]:
        y, ty = x.view(*shape), tx.view(*shape)
        assert y.shape == ty.shape and y.stride() == ty.stride()
        assert y.grad_fn.name() == "ViewBackward0" and y._base is x
    assert views == [("Reshape", True)] * 4
    r = x.reshape(8, 4)
    assert r.grad_fn.name() == ty.grad_fn.name()
    (r * descent.arange(32.0).reshape(8, 4)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy().ravel(), np.arange(32.0))


def test_view_fast_errors():
    x = descent.randn(2, 3, 4)
    with pytest.raises(RuntimeError, match="invalid"):
        x.view(5, 5)
    with pytest.raises(RuntimeError):  # needs a copy: PyTorch's view error
        x.transpose(0, 2).view(-1)
    with pytest.raises(descent.errors.DescentError, match="cannot reshape"):
        x.reshape(5, 5)


def test_reshape_size_one_strides_as_torch():
    """Reshape.forward's reordered stride test: PyTorch's strides on size-1 dims."""
    for shape, new in [((3, 1), (1, 3)), ((4, 8), (1, 4, 2, 4)), ((3,), (3, 1)), ((1, 1), (1,))]:
        a = np.arange(float(np.prod(shape)), dtype=np.float32).reshape(shape)
        x, tx = descent.tensor(a), torch.tensor(a)
        for xs, ts in [(x, tx), (x.t() if x.ndim == 2 else x, tx.t() if tx.ndim == 2 else tx)]:
            try:
                want = ts.view(new).stride()
            except RuntimeError:
                continue
            assert xs.view(new).stride() == want, (shape, new)
            assert xs.reshape(new).stride() == ts.reshape(new).stride(), (shape, new)


# -- split -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [2, -1, 0])
def test_split_fast_values_grads_names(views, dim):
    x, tx = _pair((3, 4, 6))
    ps, tps = x.split(2, dim=dim), tx.split(2, dim=dim)
    assert len(views) == len(ps) == len(tps)
    for p, tp in zip(ps, tps):
        np.testing.assert_array_equal(p.numpy(), tp.detach().numpy())
        assert p.stride() == tp.stride() and p._base is x
        assert p.grad_fn.name() == tp.grad_fn.name() == "SplitBackward0"
    assert ps[0].grad_fn is ps[1].grad_fn and ps[1].output_nr == 1
    w = [np.random.default_rng(k).standard_normal(p.shape).astype(np.float32)
         for k, p in enumerate(ps)]  # fmt: skip
    sum((p * descent.tensor(a)).sum() for p, a in zip(ps, w)).backward()
    sum((p * torch.tensor(a)).sum() for p, a in zip(tps, w)).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=0, atol=0)


def test_split_fast_multi_output_error(views):
    x = descent.randn(2, 6, requires_grad=True) * 1.0
    a, b = x.split(3, dim=1)
    with pytest.raises(RuntimeError, match="split"):  # PyTorch: in place on a multi-output view
        a.mul_(2.0)
    assert b._multi_output == ("split", 1)


def test_split_full_path_cases(views):
    x = descent.randn(4, 6, requires_grad=True)
    a, b = x.split([2, 4], dim=1)  # sizes: the full path's checks, then the view path too
    assert a.grad_fn.name() == "SplitWithSizesBackward0" and b.shape == (4, 4)
    with pytest.raises(descent.errors.DescentError, match="positive"):
        x.split(0, dim=1)
    with pytest.raises(IndexError):
        x.split(2, dim=2)
    with pytest.raises(descent.errors.DescentError, match="1-dimensional"):
        descent.tensor(1.0).split(1)
    assert [p.shape for p in x.split(4, dim=1)] == [(4, 4), (4, 2)]
    assert [p.shape for p in x.split(4, dim=True)] == [(4, 4), (4, 2)]  # a bool dim: full path


def test_split_float64_gradcheck():
    x = descent.randn(3, 7, dtype=descent.float64, requires_grad=True)
    w = descent.randn(3, 7, dtype=descent.float64)

    def f(t):
        p = t.split(3, dim=1)
        return (p[0] * w[:, :3]).sum() + (p[2] * p[2]).sum() + p[1].exp().sum()

    assert descent.autograd.gradcheck(f, (x,))


# -- layer_norm --------------------------------------------------------------------------------


@pytest.fixture
def full_ln(monkeypatch):
    """Count layer_norm calls that took the full (checked) path."""
    calls: list = []
    orig = _normalization._refuse_int_shape
    monkeypatch.setattr(_normalization, "_refuse_int_shape",
                        lambda op, s: (calls.append(op), orig(op, s))[1])  # fmt: skip
    return calls


@pytest.mark.parametrize("affine", ["none", "w", "wb", "b"])
def test_layer_norm_fast_vs_torch(full_ln, affine):
    x, tx = _pair((2, 5, 8))
    w, tw = _pair((8,), seed=1) if "w" in affine else (None, None)
    b, tb = _pair((8,), seed=2) if "b" in affine else (None, None)
    y = F.layer_norm(x, (8,), w, b)
    ty = torch.nn.functional.layer_norm(tx, (8,), tw, tb)
    assert full_ln == []
    assert y.grad_fn.name() == ty.grad_fn.name() == "NativeLayerNormBackward0"
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    g = np.random.default_rng(3).standard_normal((2, 5, 8)).astype(np.float32)
    y.backward(descent.tensor(g))
    ty.backward(torch.tensor(g))
    for a, ta in [(x, tx), (w, tw), (b, tb)]:
        if a is not None:
            np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_layer_norm_fast_same_node_as_full(full_ln):
    """The fast call makes the op the full path makes: the same parameters, the same bits."""
    x = descent.randn(3, 4, 6, requires_grad=True)
    w = descent.randn(4, 6, requires_grad=True)
    fast = F.layer_norm(x, (4, 6), w, None, eps=1e-3)
    full = F.layer_norm(x, [4, 6], w, None, eps=1e-3)  # a list: the full path
    assert full_ln == ["layer_norm"]
    for k in ("k", "eps", "has_w", "has_b", "low"):
        assert getattr(fast.grad_fn, k) == getattr(full.grad_fn, k), k
    np.testing.assert_array_equal(fast.detach().numpy(), full.detach().numpy())


def test_layer_norm_fast_float64_gradcheck():
    x = descent.randn(3, 5, dtype=descent.float64, requires_grad=True)
    w = descent.randn(5, dtype=descent.float64, requires_grad=True)
    b = descent.randn(5, dtype=descent.float64, requires_grad=True)
    assert descent.autograd.gradcheck(lambda x, w, b: F.layer_norm(x, (5,), w, b), (x, w, b))


def test_layer_norm_full_path_errors(full_ln):
    x = descent.randn(2, 8)
    with pytest.raises(descent.errors.DescentError, match="mixed dtypes"):
        F.layer_norm(x, (8,), descent.randn(8, dtype=descent.float64))
    with pytest.raises(descent.errors.DescentError, match="same shape"):
        F.layer_norm(x, (8,), descent.randn(4))
    with pytest.raises(descent.errors.DescentError, match="normalized_shape"):
        F.layer_norm(x, (4,))
    with pytest.raises(TypeError, match="tuple of ints"):
        F.layer_norm(x, 8)
    with pytest.raises(TypeError):
        F.layer_norm(descent.tensor([[1, 2]]), (2,))  # an integer input
    assert F.layer_norm(descent.zeros(0, 8), (8,)).shape == (0, 8)  # empty: the full path
    h = F.layer_norm(x.half(), (8,))  # float16: computed in float32, rounded once
    assert h.dtype == descent.float16
    with descent.autocast("cpu", dtype=descent.bfloat16):
        assert F.layer_norm(x, (8,)).dtype == descent.float32
    assert len(full_ln) == 8  # every call above (the int input raises after the shape check)


# -- linear ------------------------------------------------------------------------------------


@pytest.fixture
def full_linear(monkeypatch):
    calls: list = []
    orig = _linear.as_tensor
    monkeypatch.setattr(_linear, "as_tensor", lambda t, *a: (calls.append(1), orig(t, *a))[1])
    return calls


@pytest.mark.parametrize("bias", [False, True])
def test_linear_fast_vs_torch(full_linear, bias):
    x, tx = _pair((2, 3, 8))
    w, tw = _pair((5, 8), seed=1)
    b, tb = _pair((5,), seed=2) if bias else (None, None)
    y, ty = F.linear(x, w, b), torch.nn.functional.linear(tx, tw, tb)
    assert full_linear == []
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    y.sum().backward()
    ty.sum().backward()
    for a, ta in [(x, tx), (w, tw), (b, tb)]:
        if a is not None:
            np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_linear_fast_float64_gradcheck():
    x = descent.randn(4, 3, dtype=descent.float64, requires_grad=True)
    w = descent.randn(2, 3, dtype=descent.float64, requires_grad=True)
    b = descent.randn(2, dtype=descent.float64, requires_grad=True)
    assert descent.autograd.gradcheck(F.linear, (x, w, b))


def test_linear_full_path_cases(full_linear):
    x = descent.randn(2, 8)
    with pytest.raises(descent.errors.DescentError, match="mixed|dtype"):
        F.linear(x, descent.randn(3, 8, dtype=descent.float64))
    with pytest.raises(descent.errors.DescentError, match="features"):
        F.linear(x, descent.randn(3, 4))
    with pytest.raises(TypeError):
        F.linear(descent.tensor([[True]]), descent.tensor([[True]]))
    y = F.linear(x, descent.randn(3, 8), descent.randn(2, 3))  # a (2, 3) bias: broadcast add
    assert y.shape == (2, 3)
    assert F.linear(x, np.ones((3, 8), np.float32)).shape == (2, 3)  # an array weight
    assert len(full_linear) >= 5


# -- scaled_dot_product_attention --------------------------------------------------------------


@pytest.fixture
def full_sdpa(monkeypatch):
    calls: list = []
    orig = _attention._check_dtypes
    monkeypatch.setattr(_attention, "_check_dtypes", lambda *a: (calls.append(1), orig(*a))[1])
    return calls


@pytest.mark.parametrize("causal,scale", [(True, None), (False, None), (True, 0.3)])
def test_sdpa_fast_vs_torch(full_sdpa, causal, scale):
    q, tq = _pair((2, 3, 5, 4))
    k, tk = _pair((2, 3, 6, 4), seed=1)
    v, tv = _pair((2, 3, 6, 7), seed=2)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
    ty = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal,
                                                          scale=scale)  # fmt: skip
    assert full_sdpa == []
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    g = np.random.default_rng(4).standard_normal(ty.shape).astype(np.float32)
    y.backward(descent.tensor(g))
    ty.backward(torch.tensor(g))
    for a, ta in [(q, tq), (k, tk), (v, tv)]:
        np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_sdpa_fast_float64_gradcheck():
    q, k, v = (descent.randn(1, 2, 3, 4, dtype=descent.float64, requires_grad=True)
               for _ in range(3))  # fmt: skip
    assert descent.autograd.gradcheck(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), (q, k, v)
    )


def test_sdpa_full_path_cases(full_sdpa):
    q = descent.randn(1, 2, 3, 4)
    with pytest.raises(descent.errors.DescentError, match="same dtype"):
        F.scaled_dot_product_attention(q, q, q.double())
    with pytest.raises(descent.errors.DescentError, match="do not fit"):
        F.scaled_dot_product_attention(q, descent.randn(1, 2, 3, 5), q)
    m = descent.ones(3, 3, dtype=descent.bool).tril()
    np.testing.assert_allclose(F.scaled_dot_product_attention(q, q, q, attn_mask=m).numpy(),
                               F.scaled_dot_product_attention(q, q, q, is_causal=True).numpy(),
                               rtol=1e-6, atol=1e-6)  # fmt: skip
    with pytest.raises(descent.errors.DescentError, match="either"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=m, is_causal=True)
    h = F.scaled_dot_product_attention(q.half(), q.half(), q.half(), is_causal=True)
    assert h.dtype == descent.float16
    assert len(full_sdpa) == 4  # all but the shape error, which raises before the dtypes


# -- apply with two inputs, Module.__getattr__ -------------------------------------------------


def test_apply_two_inputs_parents():
    """apply's two-input branch: parents as the general path records them."""
    x = descent.randn(3, 4, requires_grad=True)
    w = descent.randn(5, 4)  # no grad
    y = F.linear(x, w)
    assert y.grad_fn.parents == (x, None)
    y2 = F.linear(x * 1.0, w.requires_grad_())
    assert y2.grad_fn.parents[0] is not None and y2.grad_fn.parents[1] is w
    with descent.no_grad():
        assert F.linear(x, w).grad_fn is None
    z = F.linear(descent.randn(3, 4), descent.randn(5, 4))
    assert z.grad_fn is None and not z.requires_grad
    y2.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.tile(x.detach().numpy().sum(0), (5, 1)),
                               rtol=1e-6)  # fmt: skip
    x.grad = None
    w2 = descent.randn(5, 4, requires_grad=True)
    out = F.linear(x, w2)
    with descent.no_grad():
        w2.mul_(2.0)  # the saved weight's version moved
    with pytest.raises(RuntimeError):
        out.sum().backward()


def test_module_getattr_registries():
    m = descent.nn.Linear(3, 2)
    m.register_buffer("scale", descent.ones(2))
    m.sub = descent.nn.ReLU()
    assert m.weight is m._parameters["weight"] and m.scale is m._buffers["scale"]
    assert m.sub is m._modules["sub"]
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        m.nothing  # noqa: B018
    assert isinstance(nnf, object) and autograd._apply_view is not None


# -- the view rules' memo and view's check by layout -------------------------------------------


def test_view_strides_memo_matches_the_rule(monkeypatch):
    from descent.ops import view_rules

    monkeypatch.setattr(view_rules, "_MEMO_MAX", 3)  # cleared often: results must not depend
    cases = [
        ((2, 3, 4), (12, 4, 1), (6, 4)),
        ((2, 3, 4), (1, 2, 6), (6, 4)),  # a transpose: needs a copy
        ((4, 1, 3), (3, 3, 1), (4, 3)),
        ((3, 4), (4, 1), (2, -1)),
        ((2, 0, 3), (3, 3, 1), (0, 6)),
        ((), (), (1, 1)),
    ]
    for _ in range(3):
        for old, st, new in cases:
            if -1 in new:
                continue
            assert view_rules.view_strides(old, st, new) == view_rules._view_strides(old, st, new)
    assert view_rules.view_strides([2, 3], [3, 1], [6]) == (1,)  # lists: computed, not kept


def test_view_check_by_layout_keeps_errors(views):
    """A non-contiguous view that is allowed is kept by layout; one of the same shape with
    other strides still raises, each time (PyTorch's view error)."""
    base = descent.randn(4, 12, requires_grad=True)
    for _ in range(2):
        q = base[:, :8]  # non-contiguous rows of 8
        v = q.view(4, 2, 4)
        tq = torch.tensor(base.detach().numpy())[:, :8]
        assert v.stride() == tq.view(4, 2, 4).stride() and v._base is base
        assert q.view(4, -1, 2).shape == (4, 4, 2)  # the -1 resolved from the kept entry too
        s = descent.randn(4, 16)[:, ::2]  # (4, 8) as q, strides (16, 2): merges into one dim
        assert s.view(32).stride() == (2,)
        with pytest.raises(RuntimeError, match="view"):
            q.view(32)  # q's strides (12, 1) do not
    with pytest.raises(RuntimeError, match="invalid"):
        base[:, :8].view(5, -1)


def test_mark_view_copies_and_many_views():
    """mark_view's written-out common case: a reshape that copies is no view (PyTorch's
    `_base` None); past 64 live views of one tensor (register's pruning) every view still
    shares the version counter and sees a write into the base."""
    x = descent.randn(3, 4, requires_grad=True) * 1.0
    r = x.t().reshape(-1)
    assert r._base is None and torch.randn(3, 4).t().reshape(-1)._base is None
    b = descent.randn(100, requires_grad=True) * 1.0
    vs = [b.view(10, 10) for _ in range(80)] + [b.transpose(0, 0) for _ in range(10)]
    b.mul_(2.0)
    assert all(v._version == b._version == 1 for v in vs)
    assert all(v._base is b for v in vs)
    np.testing.assert_array_equal(vs[79].numpy().ravel(), b.detach().numpy())
    del vs[:70]
    w = b.view(100)
    b.add_(1.0)
    assert w._version == vs[0]._version == b._version == 2
