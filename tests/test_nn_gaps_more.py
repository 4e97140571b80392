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


# -- layers: BatchNorm3d, LocalResponseNorm, Softmax2d, 3-d adaptive pools, LPPool -------------
def _module_pair(name, *args, dtype=np.float32, **kw):
    ours, theirs = getattr(nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)
    sd = theirs.state_dict()
    assert list(ours.state_dict()) == list(sd)
    ours.load_state_dict({k: v.detach().numpy() for k, v in sd.items()})
    ours.to(dtype)
    theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    return ours, theirs


def _check(ours, theirs, arr, dtype, seed=1):
    x, tx = _pair(arr.astype(dtype))
    y, ty = ours(x), theirs(tx)
    _close(y, ty, dtype, "output")
    assert y.dtype == dtype
    w = _rand(tuple(ty.shape), dtype, seed)
    (y * descent.tensor(w, dtype=dtype)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    _close(x.grad, tx.grad, dtype, "input grad")


LAYERS = [
    ("BatchNorm3d", (3,), {}, (2, 3, 2, 3, 2)),
    ("BatchNorm3d", (3,), dict(affine=False, momentum=None), (2, 3, 2, 2, 2)),
    ("LocalResponseNorm", (3,), {}, (2, 6, 4)),
    ("LocalResponseNorm", (2,), dict(alpha=0.1, beta=0.5, k=2.0), (2, 5, 3, 3)),
    ("LocalResponseNorm", (5,), dict(alpha=0.3), (1, 4, 2, 2, 2)),  # window wider than C
    ("Softmax2d", (), {}, (2, 4, 3, 3)),
    ("Softmax2d", (), {}, (4, 3, 3)),
    ("AdaptiveAvgPool3d", ((2, 3, 1),), {}, (2, 2, 4, 6, 5)),
    ("AdaptiveAvgPool3d", ((3, None, 2),), {}, (2, 5, 4, 3)),  # unbatched, None keeps a size
    ("AdaptiveAvgPool3d", (2,), {}, (1, 2, 4, 4, 4)),  # divisible: one avg_pool3d
    ("AdaptiveMaxPool3d", ((2, 3, 2),), {}, (2, 2, 5, 6, 3)),
    ("LPPool1d", (2, 3), {}, (2, 3, 9)),
    ("LPPool1d", (3, 2), dict(stride=1), (2, 3, 7)),
    ("LPPool2d", (2, (2, 3)), dict(stride=2, ceil_mode=True), (2, 2, 7, 7)),
    ("LPPool2d", (float("inf"), 2), {}, (1, 2, 4, 4)),
    ("LPPool3d", (2, 2), {}, (1, 2, 4, 4, 4)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "args", "kw", "shape"), LAYERS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(LAYERS)])  # fmt: skip
def test_layers_match_torch(name, args, kw, shape, dtype):
    ours, theirs = _module_pair(name, *args, dtype=dtype, **kw)
    arr = _rand(shape, dtype)
    if name.startswith("LPPool") and args[0] not in (2, float("inf")):
        arr = np.abs(arr) + 0.1  # odd powers of negatives: PyTorch's formula gives nan
    _check(ours, theirs, arr, dtype)
    if name == "BatchNorm3d":
        _close(ours.running_var, theirs.running_var, dtype)
        ours.eval(), theirs.eval()
        _check(ours, theirs, _rand(shape, dtype, 5), dtype)


def test_with_indices_spellings_and_adaptive_max3d_indices():
    x = _rand((2, 2, 5, 6, 4))
    y, i = nn.AdaptiveMaxPool3d((2, 3, 2), return_indices=True)(descent.tensor(x))
    ty, ti = torch.nn.AdaptiveMaxPool3d((2, 3, 2), return_indices=True)(torch.tensor(x))
    _close(y, ty)
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    tf = torch.nn.functional
    for ours, theirs, a, args in (
        (F.max_pool1d_with_indices, tf.max_pool1d_with_indices, x[:, :, 0, 0], (2,)),
        (F.max_pool2d_with_indices, tf.max_pool2d_with_indices, x[:, :, 0], (2,)),
        (F.max_pool3d_with_indices, tf.max_pool3d_with_indices, x, (2,)),
        (F.adaptive_max_pool1d_with_indices, tf.adaptive_max_pool1d_with_indices,
         x[:, :, 0, 0], (3,)),
        (F.adaptive_max_pool2d_with_indices, tf.adaptive_max_pool2d_with_indices, x[:, :, 0],
         (3,)),
    ):  # fmt: skip
        (y, i), (ty, ti) = ours(descent.tensor(a), *args), theirs(torch.tensor(a), *args)
        _close(y, ty)
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
    with pytest.raises(ValueError, match="3D or higher"):
        F.local_response_norm(descent.ones(2, 3), 2)
    with pytest.raises(ValueError):
        nn.Softmax2d()(descent.ones(2, 3))


def test_new_functions_gradcheck():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 3, 3))
    assert gradcheck(lambda t: F.local_response_norm(t, 3, alpha=0.5), [x])
    x5 = np.repeat(x[..., None], 3, axis=4) + rng.standard_normal((2, 4, 3, 3, 3))
    assert gradcheck(lambda t: F.adaptive_avg_pool3d(t, (2, 2, 1)), [x5])
    assert gradcheck(lambda t: F.lp_pool2d(t, 3, 2), [np.abs(x) + 0.5])
    assert gradcheck(lambda t: F.pdist(t, 1.5), [rng.standard_normal((4, 3))])
    w = rng.standard_normal((2, 3, 4))
    assert gradcheck(F.bilinear, [rng.standard_normal((5, 3)), rng.standard_normal((5, 4)), w])


# -- pdist, bilinear, RReLU --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [2, 1, 3.5, float("inf"), 0])
def test_pdist_matches_torch(p, dtype):
    x, tx = _pair(_rand((5, 3), dtype))
    y, ty = F.pdist(x, p), torch.nn.functional.pdist(tx, p)
    _close(y, ty, dtype)
    if p != 0:
        w = _rand(tuple(ty.shape), dtype, 2)
        (y * descent.tensor(w, dtype=dtype)).sum().backward()
        (ty * torch.tensor(w)).sum().backward()
        _close(x.grad, tx.grad, dtype)
    with pytest.raises(RuntimeError, match="2D"):
        F.pdist(descent.ones(3))


@pytest.mark.parametrize("dtype", DTYPES)
def test_bilinear_matches_torch(dtype):
    ours, theirs = _module_pair("Bilinear", 3, 4, 2, dtype=dtype)
    a, ta = _pair(_rand((2, 5, 3), dtype, 1))
    b, tb = _pair(_rand((2, 5, 4), dtype, 2))
    y = F.bilinear(a, b, ours.weight, ours.bias)
    ty = torch.nn.functional.bilinear(ta, tb, theirs.weight, theirs.bias)
    _close(y, ty, dtype)
    _close(y, ours(a, b), dtype)
    y.sum().backward()
    ty.sum().backward()
    _close(a.grad, ta.grad, dtype)
    _close(ours.weight.grad, theirs.weight.grad, dtype)


def test_rrelu():
    x = _rand((4, 50), np.float32)
    ours, theirs = nn.RReLU(0.1, 0.3).eval(), torch.nn.RReLU(0.1, 0.3).eval()
    _check(ours, theirs, x, np.float32)
    ours.train()
    descent.manual_seed(0)
    y = ours(descent.tensor(x)).numpy()
    neg = x < 0
    np.testing.assert_array_equal(y[~neg], x[~neg])
    slopes = y[neg] / x[neg]
    assert slopes.min() >= 0.1 - 1e-6 and slopes.max() <= 0.3 + 1e-6 and slopes.std() > 0.03
    descent.manual_seed(0)
    np.testing.assert_array_equal(ours(descent.tensor(x)).numpy(), y)


# -- dropout family ----------------------------------------------------------------------------
def test_channel_dropout_functions():
    x = descent.tensor(np.ones((4, 6, 3, 2, 2), np.float32))
    descent.manual_seed(0)
    y = F.dropout3d(x, 0.5).numpy()
    per_channel = y.reshape(4, 6, -1)
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert (per_channel.min(-1) == per_channel.max(-1)).all()  # whole channels
    assert 0 < (per_channel[..., 0] == 0).mean() < 1
    np.testing.assert_array_equal(nn.Dropout3d(0.5).eval()(x).numpy(), x.numpy())
    y1 = F.dropout1d(descent.ones(3, 8, 5), 0.5).numpy()
    assert (y1.min(-1) == y1.max(-1)).all()
    with pytest.raises(RuntimeError, match="2D or 3D"):
        F.dropout1d(descent.ones(2, 2, 2, 2))
    with pytest.warns(UserWarning, match="3D input"):
        F.dropout2d(descent.ones(2, 3, 4))
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout3d(x, 1.5)


def test_alpha_dropout_keeps_selu_statistics():
    descent.manual_seed(0)
    x = descent.randn(200_000)
    assert F.alpha_dropout(x, 0.2) is x  # training=False by default, as PyTorch
    np.testing.assert_array_equal(nn.AlphaDropout(0.2).eval()(x).numpy(), x.numpy())
    y = nn.AlphaDropout(0.2)(x).numpy()
    p, alpha = 0.2, 1.7580993408473766
    a = 1 / np.sqrt((alpha**2 * p + 1) * (1 - p))
    dropped = np.isclose(y, -alpha * a + alpha * a * p)
    kept = np.isclose(y, a * x.numpy() + alpha * a * p, rtol=1e-5, atol=1e-6)
    assert (dropped | kept).all() and abs(dropped.mean() - p) < 0.01
    assert abs(y.mean()) < 0.01 and abs(y.std() - 1) < 0.01  # mean 0, variance 1 kept
    f = nn.FeatureAlphaDropout(0.5)(descent.randn(8, 16, 10)).numpy()
    low = -alpha / np.sqrt((alpha**2 * 0.5 + 1) * 0.5) * 0.5
    per = np.isclose(f, low).reshape(8, 16, 10)
    assert (per.all(-1) | ~per.any(-1)).all()  # whole channels dropped


# -- in-place activations ----------------------------------------------------------------------
INPLACE = [
    ("relu_", ()), ("elu_", (0.7,)), ("leaky_relu_", (0.2,)), ("hardtanh_", (-0.5, 0.8)),
    ("threshold_", (0.1, -2.0)), ("celu_", (1.3,)), ("selu_", ()), ("rrelu_", (0.1, 0.3)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "args"), INPLACE, ids=[n for n, _ in INPLACE])
def test_inplace_activations_match_torch(name, args):
    x = _rand((3, 4), np.float64)
    # Unrecorded: the input's own array changes, views see it, the input is returned.
    ours, theirs = descent.tensor(x.copy(), dtype=np.float64), torch.tensor(x.copy())
    view = ours[0]
    out = getattr(F, name)(ours, *args)
    getattr(torch.nn.functional, name)(theirs, *args)
    assert out is ours
    _close(ours, theirs, np.float64)
    _close(view, theirs[0], np.float64)
    # Recorded: through a non-leaf, the gradient is the function's.
    a, ta = _pair(x)
    h, th = a * 1.0, ta * 1.0
    getattr(F, name)(h, *args)
    getattr(torch.nn.functional, name)(th, *args)
    _close(h, th, np.float64)
    (h * h).sum().backward()
    (th * th).sum().backward()
    # PyTorch's celu_ backward divides 1 / alpha in float32 (`1.0/alpha.toFloat()` in
    # derivatives.yaml, out-of-place celu does not): 4e-8 relative off in float64.
    tol = dict(rtol=1e-7, atol=1e-9) if name == "celu_" else TOL[np.float64]
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), **tol)
    with pytest.raises(RuntimeError, match="leaf"):
        getattr(F, name)(descent.ones(2, requires_grad=True), *args)
