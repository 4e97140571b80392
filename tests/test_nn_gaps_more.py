"""The second batch of torch.nn names the probe found missing, against PyTorch (the oracle):
the margin and soft-margin losses (HingeEmbeddingLoss, SoftMarginLoss,
MultiLabelSoftMarginLoss, MultiMarginLoss, MultiLabelMarginLoss,
TripletMarginWithDistanceLoss) and their functional forms. Values and gradients in float32
and float64, every reduction, PyTorch's errors, float64 finite-difference checks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent
import descent.nn as nn
import descent.nn.functional as F
from descent.explain import gradcheck

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}
DTYPES = [np.float32, np.float64]


def _np(t):
    if isinstance(t, np.ndarray):
        return t
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.numpy())


def _close(a, b, dtype=np.float32, what=""):
    np.testing.assert_allclose(_np(a), _np(b), **TOL[dtype], err_msg=what)


def _rand(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _pair(arr):
    if arr.dtype.kind != "f":
        return descent.tensor(arr), torch.tensor(arr)
    return (descent.tensor(arr, dtype=arr.dtype, requires_grad=True),
            torch.tensor(arr, requires_grad=True))  # fmt: skip


SIGNS = np.array([[1, -1, 1], [-1, -1, 1], [1, 0, -1], [1, 1, -1]])
MULTI = np.array([[0, 1, 0, 1, 1], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
CLASSES = np.array([2, 0, 4, 1])
LABELS = np.array([[3, 0, -1, 1, 2], [1, 2, 3, 4, 0], [-1, 0, 0, 0, 0], [4, -1, 2, 2, 2]])
W5 = np.array([0.5, 1.0, 2.0, 1.5, 0.7])

CASES = [
    ("HingeEmbeddingLoss", dict(), (4, 3), SIGNS),
    ("HingeEmbeddingLoss", dict(margin=0.3, reduction="sum"), (4, 3), SIGNS),
    ("HingeEmbeddingLoss", dict(reduction="none"), (4, 3), SIGNS),
    ("SoftMarginLoss", dict(), (4, 3), SIGNS),
    ("SoftMarginLoss", dict(reduction="none"), (4, 3), SIGNS),
    ("MultiLabelSoftMarginLoss", dict(), (4, 5), MULTI),
    ("MultiLabelSoftMarginLoss", dict(weight=W5, reduction="sum"), (4, 5), MULTI),
    ("MultiLabelSoftMarginLoss", dict(reduction="none"), (4, 5), MULTI),
    ("MultiMarginLoss", dict(), (4, 5), CLASSES),
    ("MultiMarginLoss", dict(p=2, margin=0.5, reduction="sum"), (4, 5), CLASSES),
    ("MultiMarginLoss", dict(weight=W5, reduction="none"), (4, 5), CLASSES),
    ("MultiMarginLoss", dict(), (5,), np.array(3)),  # unbatched
    ("MultiLabelMarginLoss", dict(), (4, 5), LABELS),
    ("MultiLabelMarginLoss", dict(reduction="none"), (4, 5), LABELS),
    ("MultiLabelMarginLoss", dict(reduction="sum"), (5,), LABELS[0]),  # unbatched
]


def _kw(kw, lib, dtype):
    conv = (lambda v: descent.tensor(v.astype(dtype), dtype=dtype)) if lib == "ours" else (
        lambda v: torch.tensor(v.astype(dtype)))  # fmt: skip
    return {k: conv(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "kw", "shape", "target"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])  # fmt: skip
def test_margin_losses_match_torch(name, kw, shape, target, dtype):
    ours, theirs = getattr(nn, name)(**_kw(kw, "ours", dtype)), getattr(torch.nn, name)(
        **_kw(kw, "torch", dtype))  # fmt: skip
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x, tx = _pair(_rand(shape, dtype))
    if name in ("SoftMarginLoss", "HingeEmbeddingLoss", "MultiLabelSoftMarginLoss"):
        target = target.astype(dtype)
    t, tt = descent.tensor(target, dtype=target.dtype), torch.tensor(target)  # no gradient
    y, ty = ours(x, t), theirs(tx, tt)
    _close(y, ty, dtype)
    w = _rand(tuple(ty.shape), dtype, 1)
    (y * descent.tensor(w, dtype=dtype)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    _close(x.grad, tx.grad, dtype, "input grad")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kw",
    [dict(), dict(margin=0.5, swap=True, reduction="sum"), dict(reduction="none", dist="cos")],
)
def test_triplet_margin_with_distance_matches_torch(kw, dtype):
    kw = dict(kw)
    dist = kw.pop("dist", None)
    ours_fn = (lambda a, b: 1.0 - F.cosine_similarity(a, b)) if dist else None
    theirs_fn = (lambda a, b: 1.0 - torch.nn.functional.cosine_similarity(a, b)) if dist else None
    ours = nn.TripletMarginWithDistanceLoss(distance_function=ours_fn, **kw)
    theirs = torch.nn.TripletMarginWithDistanceLoss(distance_function=theirs_fn, **kw)
    pairs = [_pair(_rand((5, 4), dtype, s)) for s in (1, 2, 3)]
    y = ours(*(p[0] for p in pairs))
    ty = theirs(*(p[1] for p in pairs))
    _close(y, ty, dtype)
    w = _rand(tuple(ty.shape), dtype, 4)
    (y * descent.tensor(w, dtype=dtype)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    for a, b in pairs:
        _close(a.grad, b.grad, dtype)


def test_margin_loss_errors():
    with pytest.raises(ValueError, match="p == 1"):
        nn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError):
        F.multi_margin_loss(descent.ones(2, 3), descent.tensor([0, 1]), p=3)
    with pytest.raises(RuntimeError):
        F.multi_margin_loss(descent.ones(2, 3), descent.tensor([0, 3]))  # out of range
    with pytest.raises(RuntimeError):
        F.multi_margin_loss(descent.ones(2, 3), descent.tensor([0, 1, 2]))
    with pytest.raises(RuntimeError):
        F.multilabel_margin_loss(descent.ones(2, 3), descent.tensor([0, 1]))
    with pytest.raises(ValueError, match="margin"):
        nn.TripletMarginWithDistanceLoss(margin=0.0)
    with pytest.raises(ValueError, match="reduction"):
        nn.SoftMarginLoss(reduction="avg")


def test_margin_losses_gradcheck():
    x = np.random.default_rng(0).standard_normal((4, 5))
    signs = descent.tensor(SIGNS.astype(np.float64))
    # Margins chosen to keep every hinge away from its kink (a finite difference across it
    # is meaningless).
    checks = [
        (lambda t: F.hinge_embedding_loss(t, signs, margin=5.0), x[:, :3]),
        (lambda t: F.soft_margin_loss(t, descent.tensor(np.sign(x))), x),
        (lambda t: F.multilabel_soft_margin_loss(t, descent.tensor(MULTI.astype(np.float64)),
                                                 weight=descent.tensor(W5)), x),
        (lambda t: F.multi_margin_loss(t, descent.tensor(CLASSES), p=2, margin=9.0), x),
        (lambda t: F.multilabel_margin_loss(t, descent.tensor(LABELS), reduction="none"), x),
    ]  # fmt: skip
    for f, arg in checks:
        assert gradcheck(f, [arg])
