"""The engine's deferred slice gradients (autograd_backward._Slices, session 20): the pieces of
split / chunk deliver their gradients to the sliced node lazily, and the node's gradient is
summed in one pass. These tests check the result bit for bit against the engine's plain path
(zeros with each piece at its index, added in delivery order), which a backward op hook forces
(the fast path stays off while a tool watches the nodes' gradients)."""

from __future__ import annotations

import numpy as np
import pytest

import descent
from descent import autograd_backward as ab
from descent import hooks


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view({2: np.int16, 4: np.int32, 8: np.int64}[a.dtype.itemsize])


def _grads(fn, x_np, plain: bool):
    """fn's gradient with respect to x (through a node y = x * 1), on the plain path or not."""
    handle = hooks.add_op_hook(backward=lambda node, gy, gxs: None) if plain else None
    try:
        x = descent.tensor(x_np, requires_grad=True)
        y = x * 1.0
        fn(y).backward()
        return x.grad.numpy().copy()
    finally:
        if handle is not None:
            handle.remove()


def _weights(shape, seed, dtype=np.float32):
    """Gradient values with -0.0, NaN, inf and subnormals among them."""
    w = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    flat = w.reshape(-1)
    flat[::7] = -0.0
    flat[3::11] = np.nan
    flat[5::13] = -np.inf
    flat[6::17] = np.finfo(dtype).smallest_subnormal * -3
    return w


CASES = {
    # name: (input shape, function of y giving a scalar)
    "split3_last": (
        (3, 4, 12),
        lambda y, w: sum(
            (p * descent.tensor(w[..., 4 * i : 4 * i + 4])).sum()
            for i, p in enumerate(y.split(4, dim=2))
        ),
    ),
    "split2_of3_used": (
        (3, 4, 12),
        lambda y, w: sum(
            (p * descent.tensor(w[..., 4 * i : 4 * i + 4])).sum()
            for i, p in enumerate(y.split(4, dim=2))
            if i != 1
        ),
    ),
    "one_piece": (
        (3, 4, 12),
        lambda y, w: (y.split(4, dim=2)[2] * descent.tensor(w[..., 8:])).sum(),
    ),
    "chunk_axis0_uneven": (
        (7, 5),
        lambda y, w: sum(
            (p * descent.tensor(w[3 * i : 3 * i + p.shape[0]])).sum()
            for i, p in enumerate(y.chunk(3, dim=0))
        ),
    ),
    "overlapping": (
        (4, 10),
        lambda y, w: (
            (y[:, 2:7] * descent.tensor(w[:, 2:7])).sum()
            + (y[:, 5:] * descent.tensor(w[:, 5:])).sum()
            + (y[:, :3] * descent.tensor(w[:, :3])).sum()
        ),
    ),
    "two_axes": (
        (6, 8),
        lambda y, w: (
            (y[:3] * descent.tensor(w[:3])).sum() + (y[:, 4:] * descent.tensor(w[:, 4:])).sum()
        ),
    ),
    "dense_after": (
        (4, 9),
        lambda y, w: (
            sum(
                (p * descent.tensor(w[:, 3 * i : 3 * i + 3])).sum()
                for i, p in enumerate(y.split(3, 1))
            )
            + (y * descent.tensor(w[::-1].copy())).sum()
        ),
    ),
    "dense_before": (
        (4, 9),
        lambda y, w: (
            (y * descent.tensor(w[::-1].copy())).sum()
            + sum(
                (p * descent.tensor(w[:, 3 * i : 3 * i + 3])).sum()
                for i, p in enumerate(y.split(3, 1))
            )
        ),
    ),
    "step2_and_int": (
        (4, 9),
        lambda y, w: (
            (y[:, ::2] * descent.tensor(w[:, ::2])).sum() + (y[1] * descent.tensor(w[1])).sum()
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_slice_gradients_bitwise_the_plain_paths(name, dtype):
    shape, f = CASES[name]
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    w = _weights(shape, 2, dtype)
    fast = _grads(lambda y: f(y, w), x, plain=False)
    plain = _grads(lambda y: f(y, w), x, plain=True)
    assert fast.dtype == plain.dtype == dtype
    np.testing.assert_array_equal(_bits(fast), _bits(plain))


def test_minus_zero_becomes_plus_zero_where_pieces_are_summed():
    """The sum of two or more slices adds +0.0 to each value (the engine's zeros), so a -0.0
    gradient comes out +0.0; a lone piece keeps its -0.0 (no sum). One split's pieces are
    PyTorch's cat (session 30): their -0.0 stays -0.0, on both paths."""
    w = np.full((2, 6), -0.0, np.float32)

    def f(y):
        a, b = y[:, :3], y[:, 3:]
        return (a * descent.tensor(w[:, :3])).sum() + (b * descent.tensor(w[:, 3:])).sum()

    g = _grads(f, np.ones((2, 6), np.float32), plain=False)
    assert not np.signbit(g).any()
    g1 = _grads(lambda y: (y[:, :3] * descent.tensor(w[:, :3])).sum(), np.ones((2, 6),
                np.float32), plain=False)  # fmt: skip
    assert np.signbit(g1[:, :3]).all() and not np.signbit(g1[:, 3:]).any()

    def split(y):
        a, b = y.split(3, dim=1)
        return (a * descent.tensor(w[:, :3])).sum() + (b * descent.tensor(w[:, 3:])).sum()

    for plain in (False, True):
        assert np.signbit(_grads(split, np.ones((2, 6), np.float32), plain=plain)).all()


def test_slices_deferred_then_summed_once(monkeypatch):
    """The fast path runs for slices of one node (one _Slices per sliced node, its value read
    once) and not while a backward op hook watches. One split's pieces are one step of their
    own (run_group, session 30), not a _Slices."""
    made = []
    real = ab._Slices.value

    def value(self):
        made.append(len(self.parts))
        return real(self)

    monkeypatch.setattr(ab._Slices, "value", value)
    x = descent.randn(2, 3, 12, requires_grad=True)
    y = x * 2.0
    q, k, v = y[:, :, 0:4], y[:, :, 4:8], y[:, :, 8:12]
    (q.sum() + (k * k).sum() + v.exp().sum()).backward()
    assert made == [3]
    made.clear()
    q, k, v = (x * 2.0).split(4, dim=2)
    (q.sum() + (k * k).sum() + v.exp().sum()).backward()
    assert made == []
    h = hooks.add_op_hook(backward=lambda node, gy, gxs: None)
    try:
        x.grad = None
        y = x * 2.0
        q, k, v = y[:, :, 0:4], y[:, :, 4:8], y[:, :, 8:12]
        (q.sum() + (k * k).sum() + v.exp().sum()).backward()
    finally:
        h.remove()
    assert made == []


def test_retain_graph_capture_and_create_graph_agree():
    x = descent.randn(3, 8, requires_grad=True)
    y = x.tanh()
    a, b = y.split(4, dim=1)
    loss = (a * a).sum() + b.sin().sum()
    (g1,) = descent.autograd.grad(loss, [y], retain_graph=True)
    loss.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    loss.backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad.numpy(), 2 * first)
    a_np, b_np = y.detach().numpy()[:, :4], y.detach().numpy()[:, 4:]
    np.testing.assert_allclose(g1.numpy(), np.concatenate([2 * a_np, np.cos(b_np)], 1),
                               rtol=1e-6)  # fmt: skip
    x.grad = None
    (gx,) = descent.autograd.grad(loss, [x], create_graph=True)
    np.testing.assert_allclose(gx.detach().numpy(), first, rtol=1e-6)


def test_retain_grad_and_hook_on_the_sliced_node_see_the_sum():
    x = descent.randn(2, 6, requires_grad=True)
    y = x * 3.0
    y.retain_grad()
    seen = []
    y.register_hook(lambda g: seen.append(g.numpy().copy()))
    a, b = y.split(3, dim=1)
    (a.sum() * 2 + b.sum() * 5).backward()
    want = np.concatenate([np.full((2, 3), 2.0), np.full((2, 3), 5.0)], 1).astype(np.float32)
    np.testing.assert_array_equal(y.grad.numpy(), want)
    np.testing.assert_array_equal(seen[0], want)
    np.testing.assert_array_equal(x.grad.numpy(), 3 * want)


def _heads(y, w, b=2, t=5, h=3, d=4, twice=False):
    """nanoGPT's head split: qkv.split -> view(B, T, nh, hs) -> transpose(1, 2); the
    gradients reaching the views are transposed (not contiguous)."""
    pieces = y.split(h * d, dim=2)
    q, k, v = (p.view(b, t, h, d).transpose(1, 2) for p in pieces)
    wt = descent.tensor(w[..., : h * d].reshape(b, t, h, d).transpose(0, 2, 1, 3).copy())
    out = ((q * k).sum(-1, keepdim=True) * v * wt).sum()
    if twice:  # pieces read again: k's slice directly (two gradients), v's view twice
        out = out + (pieces[1] * 0.5).sum() + (v * wt).sum()
    return out


@pytest.mark.parametrize("twice", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_head_split_views_bitwise_the_plain_path(twice, dtype):
    x = np.random.default_rng(3).standard_normal((2, 5, 36)).astype(dtype)
    w = _weights((2, 5, 36), 4, dtype)
    fast = _grads(lambda y: _heads(y, w, twice=twice), x, plain=False)
    plain = _grads(lambda y: _heads(y, w, twice=twice), x, plain=True)
    np.testing.assert_array_equal(_bits(fast), _bits(plain))


def test_head_split_reshape_copy_skipped_and_pieces_hooked():
    """A view's transposed gradient reaches the slices' sum without the reshape's copy
    (_Reshaped); a hook or retain_grad on a piece sees the piece's gradient as before."""
    seen = []
    real = ab._Reshaped.value

    def value(self):
        seen.append(self.g.flags.c_contiguous)
        return real(self)

    w = _weights((2, 5, 36), 5)
    x = np.random.default_rng(6).standard_normal((2, 5, 36)).astype(np.float32)
    ab._Reshaped.value = value
    try:
        fast = _grads(lambda y: _heads(y, w), x, plain=False)
    finally:
        ab._Reshaped.value = real
    assert seen == []  # all three written in place, none copied
    np.testing.assert_array_equal(_bits(fast), _bits(_grads(lambda y: _heads(y, w), x, True)))

    xt = descent.tensor(x, requires_grad=True)
    q, k, v = (xt * 1.0).split(12, dim=2)
    k.retain_grad()
    got = []
    v.register_hook(lambda g: got.append(g.numpy().copy()))
    qh, kh, vh = (p.view(2, 5, 3, 4).transpose(1, 2) for p in (q, k, v))
    (qh * kh * vh * 2.0).sum().backward()
    want_k = (qh * vh * 2.0).detach().numpy().transpose(0, 2, 1, 3).reshape(2, 5, 12)
    np.testing.assert_array_equal(k.grad.numpy(), want_k)
    want_v = (qh * kh * 2.0).detach().numpy().transpose(0, 2, 1, 3).reshape(2, 5, 12)
    np.testing.assert_array_equal(got[0], want_v)
