"""Session 26's per-call overhead work (helper-185) keeps the results of the paths it
replaced: nll_loss without class weights is one NllLoss node (the composite of a gather, a
negation, a mask, a sum and a division before), bitwise the composite in the loss, the
gradient and the second derivative through log_softmax, and agrees with PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds
import descent.nn.functional as F
from descent.nn.functional import _loss


def _nll(fused, x, t, gy, reduction, ignore_index, monkeypatch):
    """(loss, gradient, second derivative of <gradient, w> through log_softmax) as arrays."""
    monkeypatch.setattr(_loss, "_NLL_FUSED_DTYPES", _loss._NLL_FUSED_DTYPES if fused else ())
    xt = ds.tensor(x, requires_grad=True)
    loss = F.nll_loss(
        F.log_softmax(xt, 1 if x.ndim > 1 else 0), ds.tensor(t), ignore_index=ignore_index,
        reduction=reduction,
    )  # fmt: skip
    assert (loss.grad_fn.op_class.__name__ == "NllLoss") == (fused and reduction != "none"
                                                          or fused and x.ndim > 1)  # fmt: skip
    (g,) = ds.autograd.grad(loss, [xt], ds.tensor(gy), create_graph=True)
    w = np.random.default_rng(3).standard_normal(x.shape).astype(x.dtype)
    (g2,) = ds.autograd.grad((g * ds.tensor(w)).sum(), [xt])
    return loss.detach().numpy(), g.detach().numpy(), g2.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(5,), (6, 5), (4, 5, 3)])
def test_nll_fused_node_bitwise_composite(shape, reduction, dtype, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[::7] = -np.inf  # a -inf log-probability (softmax's 0)
    tshape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    t = rng.integers(0, 5, tshape)
    if t.size > 1:
        t.reshape(-1)[::3] = 2  # ignored rows (ignore_index=2)
    lshape = tshape if reduction == "none" else ()
    gy = rng.standard_normal(lshape).astype(dtype)
    if gy.size > 1:
        gy.reshape(-1)[1] = 0.0  # a zero upstream gradient (a -0.0 must become +0.0)
    new = _nll(True, x, t, gy, reduction, 2, monkeypatch)
    old = _nll(False, x, t, gy, reduction, 2, monkeypatch)
    for a, b in zip(new, old, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_fused_node_agrees_with_torch(reduction):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4, 3)).astype(np.float32)
    t = rng.integers(0, 4, (6, 3))
    t[0, 0] = t[2, 1] = -100
    gy = rng.standard_normal((6, 3) if reduction == "none" else ()).astype(np.float32)
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ld = F.nll_loss(xd, ds.tensor(t), reduction=reduction)
    lt = torch.nn.functional.nll_loss(xt, torch.tensor(t), reduction=reduction)
    ld.backward(ds.tensor(gy))
    lt.backward(torch.tensor(gy))
    x2 = ds.tensor(x[:, :, 0], requires_grad=True)
    assert F.nll_loss(x2, ds.tensor(t[:, 0])).grad_fn.name() == "NllLossBackward0"
    if reduction != "none":  # (PyTorch's 'none' of a 3-D input ends in a view)
        assert ld.grad_fn.name() == lt.grad_fn.name() == "NllLoss2DBackward0"
    np.testing.assert_allclose(ld.detach().numpy(), lt.detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())
    with pytest.raises(IndexError, match="out of range"):
        F.nll_loss(xd, ds.tensor(np.where(t == -100, 4, t)))  # class 4 of 4
    with pytest.raises(RuntimeError):  # the target is saved, as PyTorch's: freed after backward
        ld.backward(ds.tensor(gy))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_adaptive_max_pool_window_table_agrees_with_torch(nd):
    """adaptive_max_poolNd's winners come from one remembered (cells, window) table of flat
    positions (was a gather per dimension and a rebuild of the flat index every call): indices,
    values and gradients equal PyTorch's, with ties (the first maximum), nans (the last nan),
    cells larger and smaller than their windows."""
    rng = np.random.default_rng(nd)
    fd = getattr(F, f"adaptive_max_pool{nd}d")
    ft = getattr(torch.nn.functional, f"adaptive_max_pool{nd}d")
    for sizes, out in [((7, 5, 3)[:nd], (3, 2, 3)[:nd]), ((4, 6, 5)[:nd], (5, 4, 2)[:nd])]:
        x = np.round(rng.standard_normal((2, 3) + sizes)).astype(np.float32)  # ties
        x.reshape(-1)[rng.integers(0, x.size, 4)] = np.nan
        xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        (yd, id_), (yt, it) = fd(xd, out, return_indices=True), ft(xt, out, return_indices=True)
        np.testing.assert_array_equal(id_.numpy(), it.numpy())
        np.testing.assert_array_equal(yd.detach().numpy(), yt.detach().numpy())
        gy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
        yd.backward(ds.tensor(gy))
        yt.backward(torch.tensor(gy))
        np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())


@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=2),
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
        dict(kernel_size=(2, 3, 2), stride=1, dilation=(1, 2, 1)),
    ],
)
def test_max_pool3d_window_table_agrees_with_torch(kw):
    """max_pool3d's winners through one remembered table of window positions (was im2col and
    a flat index rebuilt per call): indices, values, gradients equal PyTorch's, with ties,
    nans, padding, ceil_mode and dilation."""
    rng = np.random.default_rng(4)
    x = np.round(rng.standard_normal((2, 2, 5, 6, 5))).astype(np.float32)  # ties
    x.reshape(-1)[rng.integers(0, x.size, 6)] = np.nan
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (yd, id_) = F.max_pool3d(xd, return_indices=True, **kw)
    (yt, it) = torch.nn.functional.max_pool3d(xt, return_indices=True, **kw)
    np.testing.assert_array_equal(id_.numpy(), it.numpy())
    np.testing.assert_array_equal(yd.detach().numpy(), yt.detach().numpy())
    gy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yd.backward(ds.tensor(gy))
    yt.backward(torch.tensor(gy))
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("vocab", "rows", "dim", "kw"),
    [
        (10, 8, 16, {}),  # 128 values: np.add.at
        (10, 300, 64, {}),  # many repeats, the row loop
        (7, 200, 32, dict(padding_idx=3)),
    ],
)
def test_embedding_backward_is_pytorchs_bits(vocab, rows, dim, kw, dtype):
    """Embedding's weight gradient adds gy's rows in input order, as PyTorch's CPU kernel:
    the same bits (the one-hot BLAS product used before summed repeated rows in blocks; fails
    there). (scale_grad_by_freq scales gy before the sum, PyTorch after: close, not equal.)"""
    rng = np.random.default_rng(5)
    idx = rng.integers(0, vocab, rows)
    gy = rng.standard_normal((rows, dim)).astype(dtype)
    w = rng.standard_normal((vocab, dim)).astype(dtype)
    wd, wt = ds.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    F.embedding(ds.tensor(idx), wd, **kw).backward(ds.tensor(gy))
    torch.nn.functional.embedding(torch.tensor(idx), wt, **kw).backward(torch.tensor(gy))
    assert wd.grad.numpy().tobytes() == wt.grad.numpy().tobytes()
