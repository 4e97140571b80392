"""Review of session 20's engine fast path for split/chunk gradients (autograd_backward._Slices,
_Reshaped; helper-153, session 21): the edges its own tests (tests/test_eager_speed_s20.py)
left out. Each case compares the fast path bit for bit with the engine's plain path (which a
backward op hook forces) and, where the values are not bitwise questions, with PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent
from descent import autograd_backward as ab
from test_eager_speed_s20 import _bits, _grads, _heads, _weights


def _same_both_paths(f, x, dtype=np.float32):
    fast = _grads(f, x.astype(dtype), plain=False)
    plain = _grads(f, x.astype(dtype), plain=True)
    assert fast.dtype == plain.dtype == dtype
    np.testing.assert_array_equal(_bits(fast), _bits(plain))
    return fast


def _wsum(p, w):
    """p's weighted sum with weights w (a NumPy array of p's shape)."""
    return (p * descent.tensor(w)).sum()


# -- empty pieces, repeated ranges, strided parents -------------------------------------------

EDGES = {
    # split sizes with empty pieces: a zero-size part among the disjoint ones
    "empty_pieces": lambda y, w: sum(
        _wsum(p, w[:, : p.shape[1]]) for p in y.split([0, 4, 0, 5, 0], dim=1)
    ),
    # the same as separate slices (split's pieces are one step since session 30, no _Slices)
    "empty_slices": lambda y, w: sum(
        _wsum(p, w[:, : p.shape[1]])
        for p in (y[:, 0:0], y[:, 0:4], y[:, 4:4], y[:, 4:9], y[:, 9:9])
    ),
    # an empty range inside another piece's range: not disjoint, the plain sum
    "empty_inside": lambda y, w: _wsum(y[:, 1:7], w[:, 1:7]) + y[:, 4:4].sum(),
    # every piece empty (a (4, 0) parent's slices would be, too)
    "only_empty": lambda y, w: y[:, 3:3].sum() + y[:, 9:].sum(),
    # the same range read through two slices: overlapping, summed in order
    "same_range_twice": lambda y, w: _wsum(y[:, :3], w[:, :3]) + _wsum(y[:, :3], w[:, 3:6]),
    # slices of a transposed (non-contiguous) parent output
    "strided_parent": lambda y, w: sum(
        _wsum(p, w.T[3 * i : 3 * i + 3]) for i, p in enumerate(y.t().split(3, dim=0))
    ),
    # a slice read past the end and one with a negative start
    "clipped_bounds": lambda y, w: _wsum(y[:, 6:99], w[:, 6:]) + _wsum(y[:, -9:-3], w[:, :6]),
    # one piece's gradient known to be zero (sign's), the others real
    "zero_gradient_piece": lambda y, w: (
        y[:, :3].sign().sum() + _wsum(y[:, 3:6], w[:, 3:6]) + _wsum(y[:, 6:], w[:, 6:])
    ),
}


@pytest.mark.parametrize("name", sorted(EDGES))
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_slice_edges_bitwise_the_plain_path(name, dtype):
    x = np.random.default_rng(21).standard_normal((4, 9))
    w = _weights((4, 9), 22, dtype)
    _same_both_paths(lambda y: EDGES[name](y, w), x, dtype)


def test_empty_piece_gradients_match_torch():
    x = np.random.default_rng(23).standard_normal((3, 8)).astype(np.float32)
    xd = descent.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    for t in (xd, xt):
        pieces = (t * 2.0).split([0, 3, 0, 5], dim=1)
        sum((p.exp() * (i + 1)).sum() for i, p in enumerate(pieces)).backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-6)


# -- views of pieces (_Reshaped) --------------------------------------------------------------


@pytest.mark.parametrize("twice", [False, True])
def test_head_split_views_float16_bitwise_the_plain_path(twice):
    x = np.random.default_rng(24).standard_normal((2, 5, 36))
    w = _weights((2, 5, 36), 25, np.float16)
    _same_both_paths(lambda y: _heads(y, w, twice=twice), x, np.float16)


def _axis1_views(y, w):
    """Pieces on a middle axis, their last axis split and transposed: views of their places
    in the sum."""
    a, b = y.split(2, dim=1)  # (3, 2, 6) each
    a = a.reshape(3, 2, 2, 3).transpose(1, 3)
    b = b.reshape(3, 2, 3, 2).transpose(0, 2)
    return (a * descent.tensor(w[:, :2].reshape(3, 2, 2, 3).transpose(0, 3, 2, 1).copy())).sum() + (
        b.exp() * 0.5
    ).sum()


def _merged_views(y, w):
    """A piece on axis 1 viewed with axes 0 and 1 merged (no view of its place in the sum:
    the copy), the other with axes 1 and 2 merged (a view: written in place)."""
    a, b = y.split(2, dim=1)  # (3, 2, 6) each
    a = a.reshape(6, 6).t()
    b = b.reshape(3, 12).t()
    return _wsum(a, w[:, :2].reshape(6, 6).T.copy()) + (b * b).sum()


def _empty_head(y, w):
    """A zero-size piece viewed as heads."""
    a, e, b = y.split([6, 0, 6], dim=2)
    a = a.view(2, 3, 2, 3).transpose(1, 2)
    e = e.view(2, 3, 2, 0).transpose(1, 2)
    b = b.view(2, 3, 3, 2).transpose(1, 2)
    return (a * a).sum() + e.sum() + _wsum(b, w[..., 6:].reshape(2, 3, 3, 2).transpose(0, 2, 1, 3))


@pytest.mark.parametrize("f", [_axis1_views, _merged_views, _empty_head], ids=lambda f: f.__name__)
def test_views_of_pieces_bitwise_the_plain_path(f):
    shape = (2, 3, 12) if f is _empty_head else (3, 4, 6)
    x = np.random.default_rng(26).standard_normal(shape)
    w = _weights(shape, 27)
    _same_both_paths(lambda y: f(y, w), x)


# -- hooks, retain_graph, create_graph ----------------------------------------------------------


def test_hook_changing_a_pieces_gradient_reaches_the_sum():
    """A tensor hook on a piece returns a new gradient: the deferred piece is the hook's."""

    def run(lib, x):
        t = lib.tensor(x, requires_grad=True)
        a, b, c = (t * 3.0).split(2, dim=1)
        b.register_hook(lambda g: g * 10.0)
        c.register_hook(lambda g: g.flip(0))
        ((a * a).sum() + (b * c).sum() + c.sum()).backward()
        return t.grad.numpy()

    x = np.random.default_rng(28).standard_normal((3, 6)).astype(np.float32)
    got = run(descent, x)
    np.testing.assert_allclose(got, run(torch, x), rtol=1e-6)
    plain = _grads(lambda y: _hooked(y), x, plain=True)
    np.testing.assert_array_equal(_grads(lambda y: _hooked(y), x, plain=False), plain)


def _hooked(y):
    a, b = y.split(3, dim=1)
    b.register_hook(lambda g: g * -2.0)
    return (a.sin()).sum() + (b * b).sum()


def test_grad_fn_post_hook_on_a_piece_keeps_the_plain_path():
    """grad_fn.register_hook on the node split's pieces share sees (and may replace) its input
    gradient: x's whole gradient, the cat of the pieces' (session 30: descent runs the pieces
    as that one node, as PyTorch's; a hook on a piece's own descent node is the same node's)."""
    got = {}
    for lib in (descent, torch):
        x = lib.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(2, 6), requires_grad=True)
        a, b = (x * 1.0).split(3, dim=1)
        seen = []

        def post(gxs, gys, seen=seen):
            seen.append((tuple(gxs[0].shape), [tuple(g.shape) for g in gys]))
            return (gxs[0] * 2.0,)

        (b._node if lib is descent else b.grad_fn).register_hook(post)
        (a.sum() + b.sum()).backward()
        got[lib.__name__] = (seen, x.grad.numpy().tolist())
    assert got["descent"] == got["torch"]
    assert got["torch"][0] == [((2, 6), [(2, 3), (2, 3)])]


def test_second_backward_through_pieces_as_torch():
    """retain_graph=True twice, then a backward through a freed graph: both libraries raise
    where a node saved values (the pieces' products), and neither where only slices ran."""
    x = np.random.default_rng(29).standard_normal((3, 6)).astype(np.float32)
    outcomes = {}
    for lib in (descent, torch):
        t = lib.tensor(x, requires_grad=True)
        a, b = (t * 2.0).split(3, dim=1)
        loss = (a * b).sum()
        loss.backward(retain_graph=True)
        loss.backward()
        first = t.grad.numpy().copy()
        with pytest.raises(RuntimeError):
            loss.backward()
        only_slices = sum(p.sum() for p in (t + 1.0).split(2, dim=1))
        only_slices.backward()
        only_slices.backward()
        outcomes[lib.__name__] = (first, t.grad.numpy().copy())
    for a, b in zip(outcomes["descent"], outcomes["torch"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_double_backward_through_pieces_matches_torch():
    """create_graph=True: the first pass takes the plain path (its gradient is a graph); the
    second pass, through that graph, is plain as well; values as PyTorch's."""
    x = np.random.default_rng(30).standard_normal((2, 3, 12)).astype(np.float32)
    got = {}
    for lib in (descent, torch):
        t = lib.tensor(x, requires_grad=True)
        q, k, v = (t.tanh() * 1.5).split(4, dim=2)
        q = q.reshape(2, 3, 2, 2).transpose(1, 2)
        k = k.reshape(2, 3, 2, 2).transpose(1, 2)
        loss = ((q * k).sum(-1) ** 2).sum() + (v**3).sum()
        (g,) = lib.autograd.grad(loss, [t], create_graph=True)
        (g * g).sum().backward()
        got[lib.__name__] = (g.detach().numpy(), t.grad.numpy())
    for a, b in zip(got["descent"], got["torch"], strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-5)


def test_grad_of_pieces_and_parent_without_accumulating():
    """descent.autograd.grad asking for a piece and the sliced tensor: the piece's own
    gradient, and the parent's the sum of all pieces (captured when read)."""
    x = descent.randn(2, 6, requires_grad=True)
    y = x * 1.0
    a, b = y.split(3, dim=1)
    loss = (a * 2.0).sum() + (b * b).sum()
    ga, gy = descent.autograd.grad(loss, [a, y])
    np.testing.assert_array_equal(ga.numpy(), np.full((2, 3), 2.0, np.float32))
    want = np.concatenate([np.full((2, 3), 2.0), 2 * b.detach().numpy()], 1).astype(np.float32)
    np.testing.assert_array_equal(gy.numpy(), want)
    assert x.grad is None


def test_deferred_pieces_counted_on_the_edges():
    """The fast path does run for the edge cases above that are disjoint (so the bitwise checks
    compare two paths, not one with itself)."""
    made = []
    real = ab._Slices.value

    def value(self):
        made.append((len(self.parts), self.disjoint))
        return real(self)

    ab._Slices.value = value
    try:
        x = np.random.default_rng(31).standard_normal((4, 9))
        w = _weights((4, 9), 32)
        _grads(lambda y: EDGES["empty_slices"](y, w), x.astype(np.float32), plain=False)
        _grads(lambda y: EDGES["empty_inside"](y, w), x.astype(np.float32), plain=False)
    finally:
        ab._Slices.value = real
    assert made == [(5, True), (2, False)], made


def test_recorder_holds_the_captured_tensors_for_the_recording():
    """The recorder tells the caller's tensors from the call's own by id (recorder._write); a
    captured tensor that died during the call could hand its id to one the call made. So the
    walk holds the tensors themselves, not their ids (helper-153's review, session 21)."""
    import gc
    import weakref

    from descent.compiler.recorder import _captured_tensors

    pool = [descent.zeros(2) for _ in range(3)]

    def fn(x):
        return x + pool[0]

    found = _captured_tensors(fn, (descent.ones(2),), {})
    refs = [weakref.ref(t) for t in pool]
    assert {id(t) for t in pool} <= set(found)
    pool.clear()
    gc.collect()
    assert all(r() is not None for r in refs)  # alive while the recording holds them
    del found
    gc.collect()
    assert all(r() is None for r in refs)
