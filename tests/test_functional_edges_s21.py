"""nn.functional losses and activations at their edges against PyTorch 2.13, session 21
(helper-154): each case failed before its fix (sweep: /work/notes/s21/h154/sweep.py).

Each case runs the same function with `m` bound to torch and to descent and compares the value
and the gradients of the float leaves (nan where torch has nan, the sign of zero ignored), in
float32 and float64; `warns` cases compare the UserWarning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import descent as ds

DTYPES = ["float32", "float64"]


def _leaf(m, a, dt):
    return m.tensor(np.asarray(a, dtype=dt), dtype=getattr(m, dt), requires_grad=True)


def _value_and_grads(m, fn, arrays, dt):
    leaves = [_leaf(m, a, dt) for a in arrays]
    out = fn(m, *leaves)
    grads = m.autograd.grad(out.sum(), leaves, allow_unused=True)
    return out.detach().numpy(), [None if g is None else g.numpy() for g in grads]


def _close(a, b, dt):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    tol = 1e-6 if dt == "float32" else 1e-12
    np.testing.assert_allclose(b, a, rtol=tol, atol=tol, equal_nan=True)


def _compare(fn, arrays, dt):
    tv, tg = _value_and_grads(torch, fn, arrays, dt)
    dv, dg = _value_and_grads(ds, fn, arrays, dt)
    _close(tv, dv, dt)
    for a, b in zip(tg, dg, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            _close(a, b, dt)


INF = np.inf


# smooth_l1_loss / huber_loss at an infinite difference: the quadratic branch's gradient
# (0 * inf) leaked nan through `where`; PyTorch's is the linear branch's sign.
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(
    "loss",
    [
        lambda m, x, y, r: m.nn.functional.smooth_l1_loss(x, y, reduction=r),
        lambda m, x, y, r: m.nn.functional.smooth_l1_loss(x, y, reduction=r, beta=2.0),
        lambda m, x, y, r: m.nn.functional.huber_loss(x, y, reduction=r),
        lambda m, x, y, r: m.nn.functional.huber_loss(x, y, reduction=r, delta=2.0),
    ],
    ids=["smooth_l1", "smooth_l1_beta2", "huber", "huber_delta2"],
)
def test_smooth_l1_huber_gradient_at_infinite_difference(loss, reduction, dt):
    x = [INF, -INF, 1e30, 0.5, 3.0, INF]
    y = [1.0, 0.0, -1e30, 0.0, 0.0, -INF]
    _compare(lambda m, a, b: loss(m, a, b, reduction), [x, y], dt)


# hinge_embedding_loss at x = +-inf: its zeros were x * 0 (nan at inf), PyTorch's are zeros.
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_hinge_embedding_loss_infinite_input(reduction, dt):
    x = [INF, -INF, INF, 0.5, -1.0]
    y = [-1.0, 1.0, 1.0, -1.0, 1.0]
    tv = torch.nn.functional.hinge_embedding_loss(
        torch.tensor(x, dtype=getattr(torch, dt)),
        torch.tensor(y, dtype=getattr(torch, dt)),
        reduction=reduction,
    )
    dv = ds.nn.functional.hinge_embedding_loss(
        ds.tensor(x, dtype=getattr(ds, dt)),
        ds.tensor(y, dtype=getattr(ds, dt)),
        reduction=reduction,
    )
    _close(tv.numpy(), dv.numpy(), dt)
    # the gradient where the value is finite
    _compare(
        lambda m, a, b: m.nn.functional.hinge_embedding_loss(a, b, reduction="none"),
        [[INF, 0.5, -1.0, 2.0], [-1.0, -1.0, 1.0, -1.0]],
        dt,
    )


# multi_margin_loss of an empty batch raised (reshape of 0 elements to (0, -1)). PyTorch 2.13's
# reduced value of an empty batch is uninitialised memory (e.g. -1.45e15), so 'sum' and 'mean'
# are checked against the definition (0 and 0 / 0 = nan, as mse_loss's empty mean) and torch's
# shape and dtype; 'none' against torch.
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_multi_margin_loss_empty_batch(weighted, reduction, dt):
    def fn(m, x):
        w = m.tensor([1.0, 2.0, 0.5, 3.0], dtype=getattr(m, dt)) if weighted else None
        y = m.zeros(0, dtype=m.int64)
        return m.nn.functional.multi_margin_loss(x, y, weight=w, reduction=reduction)

    if reduction == "none":
        _compare(fn, [np.zeros((0, 4))], dt)
        return
    tv, tg = _value_and_grads(torch, fn, [np.zeros((0, 4))], dt)
    dv, dg = _value_and_grads(ds, fn, [np.zeros((0, 4))], dt)
    assert dv.shape == tv.shape == () and dv.dtype == tv.dtype
    assert np.isnan(dv) if reduction == "mean" else dv == 0
    _close(tg[0], dg[0], dt)


def _user_warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [w for w in caught if issubclass(w.category, UserWarning)]


# softmin without dim: PyTorch warns (implicit dimension choice), as descent's softmax did.
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 3, 4)])
def test_softmin_implicit_dim_warns(shape):
    x = np.asarray(np.random.RandomState(0).randn(*shape), "float32")
    tv, tw = _user_warnings(lambda: torch.nn.functional.softmin(torch.tensor(x)))
    dv, dw = _user_warnings(lambda: ds.nn.functional.softmin(ds.tensor(x)))
    assert len(tw) == 1 and len(dw) == 1, (tw, dw)
    assert "softmin" in str(dw[0].message) and "dim" in str(dw[0].message)
    _close(tv.numpy(), dv.numpy(), "float32")
    _, none = _user_warnings(lambda: ds.nn.functional.softmin(ds.tensor(x), dim=0))
    assert not none


# kl_div(reduction='mean'): PyTorch warns that 'mean' divides by the support size too (and only
# for 'mean': 'batchmean', 'sum' and 'none' stay silent).
def test_kl_div_mean_warns():
    lp = np.log(np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]], "float32"))
    q = np.array([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]], "float32")
    for reduction in ["mean", "batchmean", "sum", "none"]:
        tv, tw = _user_warnings(
            lambda r=reduction: torch.nn.functional.kl_div(
                torch.tensor(lp), torch.tensor(q), reduction=r
            )
        )
        dv, dw = _user_warnings(
            lambda r=reduction: ds.nn.functional.kl_div(ds.tensor(lp), ds.tensor(q), reduction=r)
        )
        assert len(tw) == len(dw) == (1 if reduction == "mean" else 0), (reduction, tw, dw)
        if dw:
            assert "batchmean" in str(dw[0].message)
        _close(tv.numpy(), dv.numpy(), "float32")


# cosine_embedding_loss with a zero vector in float64: ATen's EPSILON is float32(1e-12), and the
# gradient there (~1 / sqrt(EPSILON)) showed the difference (2e-9 relative with 1e-12).
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_cosine_embedding_loss_zero_vector_float64(reduction):
    rs = np.random.RandomState(1)
    a, b = rs.randn(4, 3), rs.randn(4, 3)
    b[0] = 0.0
    a[1] = b[1]

    def fn(m, x1, x2):
        y = m.tensor([1, -1, -1, 1])
        return m.nn.functional.cosine_embedding_loss(x1, x2, y, margin=0.1, reduction=reduction)

    _compare(fn, [a, b], "float64")


# nll_loss(reduction='none') at ignore_index: PyTorch's loss is +0.0, descent's was -0.0
# (the sign of zero is compared bitwise here).
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kdim", [False, True])
def test_nll_loss_ignored_element_is_positive_zero(kdim, dt):
    x = np.array([[1.0, -2.0], [-3.0, 4.0], [0.5, 0.5]], dt)
    t = [1, 0, -100]
    if kdim:
        x = np.stack([x.T, x.T[::-1]], axis=-1)[None]  # (1, 2, 3, 2)
        t = [[[1, -100], [0, 1], [-100, -100]]]
    tv = torch.nn.functional.nll_loss(torch.tensor(x), torch.tensor(t), reduction="none")
    dv = ds.nn.functional.nll_loss(ds.tensor(x), ds.tensor(t), reduction="none")
    _close(tv.numpy(), dv.numpy(), dt)
    np.testing.assert_array_equal(np.signbit(dv.numpy()), np.signbit(tv.numpy()))


# celu with a negative alpha: PyTorch's branch is still x > 0 (elu with input_scale 1/alpha);
# descent's alpha * elu(x / alpha) flipped the branches.
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("alpha", [-1.0, -0.5])
def test_celu_negative_alpha(alpha, dt):
    x = [-1.0, 1.0, 0.0, -0.0, 2.0, -2.0, 0.5, INF, -INF, -30.0, 100.0]
    _compare(lambda m, a: m.nn.functional.celu(a, alpha=alpha), [x], dt)


def _both_raise(fn):
    with pytest.raises(RuntimeError) as te:
        fn(torch)
    with pytest.raises(RuntimeError) as de:
        fn(ds)
    return str(te.value), str(de.value)


# cross_entropy with probability targets and a non-negative ignore_index: PyTorch raises,
# descent ignored the argument (a negative one passes in both).
@pytest.mark.parametrize("ignore_index", [0, 3])
def test_cross_entropy_probability_target_ignore_index_raises(ignore_index):
    x = np.random.RandomState(0).randn(3, 4).astype("float32")
    t = np.full((3, 4), 0.25, "float32")
    _, msg = _both_raise(
        lambda m: m.nn.functional.cross_entropy(m.tensor(x), m.tensor(t), ignore_index=ignore_index)
    )
    assert "ignore_index" in msg
    _compare(
        lambda m, a, b: m.nn.functional.cross_entropy(a, b, ignore_index=-5), [x, t], "float32"
    )


# binary cross-entropies with a weight (or pos_weight) larger than the input: PyTorch raises
# (its in-place product can't grow the output); descent broadcast the loss to the weight.
@pytest.mark.parametrize(
    "call",
    [
        lambda m, x, y, w: m.nn.functional.binary_cross_entropy(x, y, weight=w),
        lambda m, x, y, w: m.nn.functional.binary_cross_entropy_with_logits(x, y, weight=w),
        lambda m, x, y, w: m.nn.functional.binary_cross_entropy_with_logits(
            x, y, pos_weight=w, reduction="none"
        ),
    ],
    ids=["bce", "bce_logits_weight", "bce_logits_pos_weight"],
)
def test_bce_weight_larger_than_input_raises(call):
    _, msg = _both_raise(lambda m: call(m, m.full((3,), 0.3), m.ones(3), m.ones(2, 3)))
    assert "(2, 3)" in msg and "(3,)" in msg
    # a weight that broadcasts to the input still works
    w = np.array([1.0, 2.0, 3.0], "float32")
    _compare(
        lambda m, a, b: call(m, a, b, m.tensor(w)).sum(),
        [np.full((2, 3), 0.3, "float32"), np.ones((2, 3), "float32")],
        "float32",
    )
