"""Losses of descent.nn.functional against PyTorch (float32) and finite differences (float64),
for every option; stability at logits of +-1e4; higher-order gradients through the fused
cross-entropy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import descent as ds
import descent.nn.functional as F
from specs.nn import gradcheck64, np_cross_entropy, torch_compare

RNG = np.random.default_rng(0)


def logits(*shape, scale=2.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# cross_entropy with class indices (the fused op)

T6 = np.array([0, 4, 2, 1, 1, 3])
T6_IGN = np.array([0, 4, -100, 1, -100, 3])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("target", [T6, T6_IGN], ids=["all", "ignored"])
def test_cross_entropy_indices_match_torch(reduction, smoothing, weighted, target):
    w = np.linspace(0.3, 2.0, 5).astype(np.float32) if weighted else None
    torch_compare(
        lambda x: F.cross_entropy(
            x,
            ds.tensor(target),
            None if w is None else ds.tensor(w),
            reduction=reduction,
            label_smoothing=smoothing,
        ),
        lambda x: TF.cross_entropy(
            x,
            torch.tensor(target),
            None if w is None else torch.tensor(w),
            reduction=reduction,
            label_smoothing=smoothing,
        ),
        [logits(6, 5)],
        fwd_atol=1e-5,
    )


def test_cross_entropy_custom_ignore_index_and_spatial_dims():
    t = RNG.integers(0, 4, (2, 3, 5))
    t[0, 1, 2] = 7
    t[1, 0, 0] = 7
    for red in ("mean", "sum", "none"):
        torch_compare(
            lambda x, red=red: F.cross_entropy(
                x, ds.tensor(t), ignore_index=7, reduction=red, label_smoothing=0.1
            ),
            lambda x, red=red: TF.cross_entropy(
                x, torch.tensor(t), ignore_index=7, reduction=red, label_smoothing=0.1
            ),
            [logits(2, 4, 3, 5)],
            fwd_atol=1e-5,
        )


def test_cross_entropy_unbatched_input():
    for red in ("mean", "none"):
        torch_compare(
            lambda x, red=red: F.cross_entropy(x, ds.tensor(np.array(2)), reduction=red),
            lambda x, red=red: TF.cross_entropy(x, torch.tensor(2), reduction=red),
            [logits(5)],
        )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_probability_targets_match_torch(reduction, smoothing):
    p = RNG.random((4, 5))
    p = (p / p.sum(1, keepdims=True)).astype(np.float32)
    w = np.linspace(0.5, 1.5, 5).astype(np.float32)
    torch_compare(
        lambda x, y: F.cross_entropy(
            x, y, ds.tensor(w), reduction=reduction, label_smoothing=smoothing
        ),
        lambda x, y: TF.cross_entropy(
            x, y, torch.tensor(w), reduction=reduction, label_smoothing=smoothing
        ),
        [logits(4, 5), p],
        fwd_atol=1e-5,
    )


def test_cross_entropy_probability_targets_spatial():
    p = RNG.random((2, 3, 4))
    p = (p / p.sum(1, keepdims=True)).astype(np.float32)
    torch_compare(
        lambda x, y: F.cross_entropy(x, y),
        lambda x, y: TF.cross_entropy(x, y),
        [logits(2, 3, 4), p],
    )


def test_cross_entropy_matches_definition_in_float64():
    x = RNG.standard_normal((6, 5))
    w = np.linspace(0.3, 2.0, 5)
    out = F.cross_entropy(
        ds.tensor(x, dtype=ds.float64),
        ds.tensor(T6_IGN),
        ds.tensor(w, dtype=ds.float64),
        label_smoothing=0.3,
    )
    assert out.dtype == ds.float64
    np.testing.assert_allclose(out.item(), np_cross_entropy(x, T6_IGN, w, eps=0.3), rtol=1e-12)


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cross_entropy_gradcheck_and_second_order(smoothing, reduction):
    gradcheck64(
        lambda x: F.cross_entropy(
            x, ds.tensor(T6_IGN), reduction=reduction, label_smoothing=smoothing
        ),
        [RNG.standard_normal((6, 5))],
        second_order=True,
    )


def test_cross_entropy_hessian_vector_product_matches_torch():
    """create_graph=True through the fused op: d/dx <grad, v> equals PyTorch's."""
    x0 = logits(6, 5)
    v = RNG.standard_normal((6, 5)).astype(np.float32)
    x = ds.tensor(x0, requires_grad=True)
    (g,) = ds.autograd.grad(
        F.cross_entropy(x, ds.tensor(T6), label_smoothing=0.1), [x], create_graph=True
    )
    (h,) = ds.autograd.grad((g * ds.tensor(v)).sum(), [x])
    xt = torch.tensor(x0, requires_grad=True)
    (gt,) = torch.autograd.grad(
        TF.cross_entropy(xt, torch.tensor(T6), label_smoothing=0.1), [xt], create_graph=True
    )
    (ht,) = torch.autograd.grad((gt * torch.tensor(v)).sum(), [xt])
    np.testing.assert_allclose(g.numpy(), gt.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(h.numpy(), ht.numpy(), atol=1e-5, rtol=1e-3)


def test_cross_entropy_all_ignored_is_nan_like_torch():
    t = np.array([-100, -100])
    out = F.cross_entropy(ds.tensor(logits(2, 3)), ds.tensor(t))
    assert np.isnan(out.item())
    assert np.isnan(TF.cross_entropy(torch.tensor(logits(2, 3)), torch.tensor(t)).item())


def test_cross_entropy_retain_graph_backward_twice():
    x = ds.tensor(logits(4, 3), requires_grad=True)
    loss = F.cross_entropy(x, ds.tensor(np.array([0, 1, 2, 0])))
    loss.backward(retain_graph=True)
    g1 = x.grad.numpy().copy()
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * g1, rtol=1e-6)
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()


def test_cross_entropy_errors():
    x = ds.tensor(logits(3, 4))
    with pytest.raises(IndexError, match="out of range for 4 classes"):
        F.cross_entropy(x, ds.tensor(np.array([0, 4, 1])))
    with pytest.raises(ValueError, match="does not match"):
        F.cross_entropy(x, ds.tensor(np.array([0, 1])))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, ds.tensor(np.array([0, 1, 2])), reduction="avg")
    with pytest.raises(ValueError, match="weight"):
        F.cross_entropy(x, ds.tensor(np.array([0, 1, 2])), weight=ds.ones(3))


# ---------------------------------------------------------------------------------------------
# Stability: logits of +-1e4 in float32


def test_losses_finite_for_huge_logits():
    x0 = (np.sign(RNG.standard_normal((8, 5))) * 1e4).astype(np.float32)
    t = RNG.integers(0, 5, 8)
    y = (RNG.random((8, 5)) > 0.5).astype(np.float32)
    cases = [
        (
            lambda x: F.cross_entropy(x, ds.tensor(t)),
            lambda x: TF.cross_entropy(x, torch.tensor(t)),
        ),
        (
            lambda x: F.cross_entropy(x, ds.tensor(t), label_smoothing=0.1),
            lambda x: TF.cross_entropy(x, torch.tensor(t), label_smoothing=0.1),
        ),
        (
            lambda x: F.cross_entropy(x, ds.tensor(y / np.maximum(y.sum(1, keepdims=True), 1))),
            lambda x: TF.cross_entropy(x, torch.tensor(y / np.maximum(y.sum(1, keepdims=True), 1))),
        ),
        (
            lambda x: F.nll_loss(F.log_softmax(x, 1), ds.tensor(t)),
            lambda x: TF.nll_loss(TF.log_softmax(x, 1), torch.tensor(t)),
        ),
        (
            lambda x: F.binary_cross_entropy_with_logits(x, ds.tensor(y)),
            lambda x: TF.binary_cross_entropy_with_logits(x, torch.tensor(y)),
        ),
        (
            lambda x: F.binary_cross_entropy_with_logits(
                x, ds.tensor(y), pos_weight=ds.full((5,), 3.0)
            ),
            lambda x: TF.binary_cross_entropy_with_logits(
                x, torch.tensor(y), pos_weight=torch.full((5,), 3.0)
            ),
        ),
        (
            lambda x: F.binary_cross_entropy(F.sigmoid(x), ds.tensor(y)),
            lambda x: TF.binary_cross_entropy(torch.sigmoid(x), torch.tensor(y)),
        ),
        (
            lambda x: F.kl_div(
                F.log_softmax(x, 1),
                ds.tensor(np.full((8, 5), 0.2, np.float32)),
                reduction="batchmean",
            ),
            lambda x: TF.kl_div(
                TF.log_softmax(x, 1), torch.full((8, 5), 0.2), reduction="batchmean"
            ),
        ),
    ]
    for fn, tfn in cases:
        x = ds.tensor(x0, requires_grad=True)
        loss = fn(x)
        loss.backward()
        assert np.isfinite(loss.item()), "loss is not finite at +-1e4"
        assert np.isfinite(x.grad.numpy()).all(), "gradient is not finite at +-1e4"
        xt = torch.tensor(x0, requires_grad=True)
        lt = tfn(xt)
        lt.backward()
        np.testing.assert_allclose(loss.item(), lt.item(), rtol=1e-5)
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# nll_loss


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_matches_torch(reduction, weighted):
    w = np.linspace(0.5, 2.0, 4).astype(np.float32) if weighted else None
    t = np.array([[0, 3, 1], [2, -100, 3]])
    lp = np.log(RNG.dirichlet(np.ones(4), (2, 3))).transpose(0, 2, 1).astype(np.float32)
    torch_compare(
        lambda x: F.nll_loss(
            x, ds.tensor(t), None if w is None else ds.tensor(w), reduction=reduction
        ),
        lambda x: TF.nll_loss(
            x, torch.tensor(t), None if w is None else torch.tensor(w), reduction=reduction
        ),
        [lp],
    )


def test_nll_loss_legacy_flags_and_gradcheck():
    t = np.array([1, 0, 2])
    out = F.nll_loss(ds.tensor(logits(3, 3)), ds.tensor(t), reduce=False)
    assert out.shape == (3,)
    gradcheck64(
        lambda x: F.nll_loss(x, ds.tensor(t), ignore_index=0), [RNG.standard_normal((3, 3))]
    )


# ---------------------------------------------------------------------------------------------
# Regression losses

REG = [
    (
        "mse",
        lambda a, b, r: F.mse_loss(a, b, reduction=r),
        lambda a, b, r: TF.mse_loss(a, b, reduction=r),
    ),
    (
        "l1",
        lambda a, b, r: F.l1_loss(a, b, reduction=r),
        lambda a, b, r: TF.l1_loss(a, b, reduction=r),
    ),
    (
        "smooth_l1",
        lambda a, b, r: F.smooth_l1_loss(a, b, reduction=r, beta=0.5),
        lambda a, b, r: TF.smooth_l1_loss(a, b, reduction=r, beta=0.5),
    ),
    (
        "smooth_l1_beta0",
        lambda a, b, r: F.smooth_l1_loss(a, b, reduction=r, beta=0.0),
        lambda a, b, r: TF.smooth_l1_loss(a, b, reduction=r, beta=0.0),
    ),
    (
        "huber",
        lambda a, b, r: F.huber_loss(a, b, reduction=r, delta=0.7),
        lambda a, b, r: TF.huber_loss(a, b, reduction=r, delta=0.7),
    ),
]


@pytest.mark.parametrize("name,fn,tfn", REG, ids=[r[0] for r in REG])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_losses_match_torch(name, fn, tfn, reduction):
    a, b = logits(3, 4), logits(3, 4)
    torch_compare(lambda x, y: fn(x, y, reduction), lambda x, y: tfn(x, y, reduction), [a, b])


@pytest.mark.parametrize("name,fn,tfn", REG, ids=[r[0] for r in REG])
def test_regression_losses_gradcheck(name, fn, tfn):
    a = RNG.standard_normal((3, 4))
    b = a + np.where(RNG.random((3, 4)) > 0.5, 1.3, -0.2)  # away from the kinks at |d| = beta
    gradcheck64(lambda x, y: fn(x, y, "mean"), [a, b])


def test_regression_loss_shape_error():
    with pytest.raises(ValueError, match="cannot be broadcast"):
        F.mse_loss(ds.ones(3, 4), ds.ones(2, 4))


# ---------------------------------------------------------------------------------------------
# Binary cross-entropy


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_matches_torch(reduction):
    p = RNG.uniform(0.05, 0.95, (3, 4)).astype(np.float32)
    y = RNG.random((3, 4)).astype(np.float32)
    w = RNG.uniform(0.5, 2, (3, 4)).astype(np.float32)
    torch_compare(
        lambda a, b: F.binary_cross_entropy(a, b, ds.tensor(w), reduction=reduction),
        lambda a, b: TF.binary_cross_entropy(a, b, torch.tensor(w), reduction=reduction),
        [p, y],
        diff=[0],
    )


def test_binary_cross_entropy_clamps_logs_at_exact_zero_and_one():
    p = np.array([0.0, 1.0, 0.5], np.float32)
    y = np.array([1.0, 0.0, 1.0], np.float32)
    out = F.binary_cross_entropy(ds.tensor(p), ds.tensor(y), reduction="none")
    ref = TF.binary_cross_entropy(torch.tensor(p), torch.tensor(y), reduction="none")
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        F.binary_cross_entropy(ds.tensor([1.5]), ds.tensor([1.0]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("pos_weight", [None, "vector"])
def test_bce_with_logits_matches_torch(reduction, pos_weight):
    y = (RNG.random((3, 4)) > 0.4).astype(np.float32)
    w = RNG.uniform(0.5, 2, (4,)).astype(np.float32)
    pw = RNG.uniform(0.5, 3, (4,)).astype(np.float32) if pos_weight else None
    torch_compare(
        lambda a, b: F.binary_cross_entropy_with_logits(
            a,
            b,
            ds.tensor(w),
            reduction=reduction,
            pos_weight=None if pw is None else ds.tensor(pw),
        ),
        lambda a, b: TF.binary_cross_entropy_with_logits(
            a,
            b,
            torch.tensor(w),
            reduction=reduction,
            pos_weight=None if pw is None else torch.tensor(pw),
        ),
        [logits(3, 4, scale=4.0), y],
    )


def test_bce_gradchecks():
    y = RNG.random((3, 4))
    gradcheck64(
        lambda x: F.binary_cross_entropy(x, ds.tensor(y, dtype=ds.float64)),
        [RNG.uniform(0.1, 0.9, (3, 4))],
        second_order=True,
    )
    gradcheck64(
        lambda x, t: F.binary_cross_entropy_with_logits(
            x, t, pos_weight=ds.tensor(np.full(4, 2.5), dtype=ds.float64)
        ),
        [RNG.standard_normal((3, 4)), y],
        second_order=True,
    )


# ---------------------------------------------------------------------------------------------
# KL divergence


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")  # PyTorch's notice, not ours
@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(reduction, log_target):
    inp = np.log(RNG.dirichlet(np.ones(5), 3)).astype(np.float32)
    tgt = RNG.dirichlet(np.ones(5), 3)
    tgt[0, 1] = 0.0  # 0 log 0 = 0
    tgt = (np.log(tgt + 1e-30) if log_target else tgt).astype(np.float32)
    torch_compare(
        lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target),
        lambda a, b: TF.kl_div(a, b, reduction=reduction, log_target=log_target),
        [inp, tgt],
        diff=[0] if not log_target else [0, 1],
    )


def test_kl_div_gradcheck():
    tgt = RNG.dirichlet(np.ones(4), 3)
    gradcheck64(
        lambda x: F.kl_div(x, ds.tensor(tgt, dtype=ds.float64), reduction="batchmean"),
        [RNG.standard_normal((3, 4))],
        second_order=True,
    )
    gradcheck64(
        lambda x, t: F.kl_div(x, t, log_target=True),
        [RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))],
    )
