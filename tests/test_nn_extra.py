"""The nn.functional additions of issue 13 and their modules, against PyTorch beyond the op
table (tests/specs/nn_extra.py): edge values (kinks, +-inf, nan, zero vectors), every mode of
interpolate and grid_sample, pooling indices and ties, CTC's infeasible and empty cases, the
layers' parameters and output_size, and the errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF

import descent as ds
import descent.nn as nn
import descent.nn.functional as F


def compare(fn, tfn, *arrays, atol=2e-5, rtol=1e-4, grads=True, grad_scale=False):
    """float32 forward and (one random cotangent) input gradients of fn vs tfn; a None
    descent gradient counts as zeros (inputs that get none, like nearest grid_sample's grid).
    grad_scale: the gradients' atol is relative to their largest magnitude (a gradient that is
    0 in exact arithmetic comes out of float32 sums of O(scale) terms as +-scale * 1e-6)."""
    arrays = [np.asarray(a, np.float32) for a in arrays]
    xs = [ds.tensor(a, requires_grad=grads) for a in arrays]
    ts = [torch.tensor(a, requires_grad=grads) for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y, yt = fn(*xs), tfn(*ts)
    assert tuple(y.shape) == tuple(yt.shape)
    assert y.dtype == ds.float32
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), atol=atol, rtol=rtol)
    if not grads:
        return
    w = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
    w = np.where(np.isfinite(yt.detach().numpy()), w, 0).astype(np.float32)
    (y * ds.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    for x, t in zip(xs, ts, strict=True):
        g = np.zeros(x.shape, np.float32) if x.grad is None else x.grad.numpy()
        tg = np.zeros(x.shape, np.float32) if t.grad is None else t.grad.numpy()
        finite = np.abs(tg[np.isfinite(tg)])
        scale = max(1.0, float(finite.max())) if grad_scale and finite.size else 1.0
        np.testing.assert_allclose(g, tg, atol=atol * scale, rtol=rtol)


rng = np.random.default_rng(7)
EDGES = np.array(
    [-np.inf, -8.0, -3.0, -1.5, -1.0, -0.7, -0.5, 0.0, 0.3, 0.5, 0.7, 1.0, 2.0, 3.0, 6.0, 9.0,
     np.inf]
)  # fmt: skip

ACTS = [
    ("hardtanh", {}), ("hardtanh", {"min_val": -1.5, "max_val": 2.0}), ("relu6", {}),
    ("hardsigmoid", {}), ("hardswish", {}), ("selu", {}), ("celu", {"alpha": 0.7}),
    ("softsign", {}), ("tanhshrink", {}), ("softshrink", {"lambd": 0.7}), ("hardshrink", {}),
    ("threshold", {"threshold": 0.3, "value": -2.0}), ("logsigmoid", {}), ("mish", {}),
]  # fmt: skip


@pytest.mark.parametrize("name,kw", ACTS, ids=[f"{n}-{len(k)}" for n, k in ACTS])
def test_activation_values_and_gradients_at_the_edges_match_torch(name, kw):
    # The breakpoints themselves, zero and +-inf: PyTorch's one-sided derivative conventions.
    finite = EDGES[np.isfinite(EDGES)]
    compare(lambda x: getattr(F, name)(x, **kw), lambda x: getattr(TF, name)(x, **kw), finite)
    # Values at +-inf and nan (gradients there are nan in PyTorch for some, so values only).
    with_inf = np.concatenate([EDGES, [np.nan]])
    y = getattr(F, name)(ds.tensor(with_inf, dtype=ds.float32), **kw).numpy()
    yt = getattr(TF, name)(torch.tensor(with_inf, dtype=torch.float32), **kw).numpy()
    np.testing.assert_allclose(y, yt, atol=1e-6, rtol=1e-5, equal_nan=True)


def test_glu_and_softmin_dims_and_errors():
    x = rng.standard_normal((2, 4, 6))
    for dim in (0, 1, 2, -1):
        compare(lambda a, d=dim: F.glu(a, d), lambda a, d=dim: TF.glu(a, d), x)
    for shape in [(5,), (3, 4), (2, 3, 4), (2, 3, 4, 5)]:
        compare(F.softmin, lambda a: TF.softmin(a, dim=TF._get_softmax_dim("softmin", a.dim(), 3)),
                rng.standard_normal(shape))  # fmt: skip
    with pytest.raises(ValueError, match="glu: halving dimension"):
        F.glu(ds.ones(2, 3))


def test_cosine_similarity_edges_match_torch():
    cases = [
        (np.zeros((2, 3)), np.ones((2, 3)), 1),  # a zero vector: gradient through ||x||
        (np.full((2, 3), 1e-9), np.full((2, 3), 1e-9), 1),  # both below eps
        (rng.standard_normal((4, 3)), rng.standard_normal((1, 3)), 1),  # broadcasting
        (rng.standard_normal(3), rng.standard_normal(3), 0),  # 1-d
        (rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 4)), -1),
    ]
    for a, b, d in cases:
        compare(lambda x, y, d=d: F.cosine_similarity(x, y, d),
                lambda x, y, d=d: TF.cosine_similarity(x, y, d), a, b, rtol=1e-3)  # fmt: skip


def test_pairwise_distance_equal_inputs_and_p():
    a = rng.standard_normal((4, 3))
    for p in (1.0, 2.0, 3.0, np.inf):
        compare(lambda x, y, p=p: F.pairwise_distance(x, y, p),
                lambda x, y, p=p: TF.pairwise_distance(x, y, p), a, a.copy())  # fmt: skip


def test_losses_reductions_and_legacy_flags():
    a, b = rng.standard_normal(6), rng.standard_normal(6)
    y = np.sign(rng.standard_normal(6)).astype(np.float32)
    for red in ("none", "sum", "mean"):
        compare(lambda u, v, r=red: F.margin_ranking_loss(u, v, ds.tensor(y), 0.2, reduction=r),
                lambda u, v, r=red: TF.margin_ranking_loss(u, v, torch.tensor(y), 0.2,
                                                          reduction=r), a, b)  # fmt: skip
    # inputs of different ranks: PyTorch raises a RuntimeError (no broadcasting of the ranks)
    with pytest.raises(RuntimeError):
        TF.margin_ranking_loss(torch.ones(3), torch.tensor(2.0), torch.tensor(1.0))
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        F.margin_ranking_loss(ds.ones(3), ds.tensor(2.0), ds.tensor(1.0))
    an, po, ne = (rng.standard_normal((5, 4)) for _ in range(3))
    for p, swap in ((1.0, False), (2.0, True), (3.0, True)):
        compare(lambda x, y, z, p=p, s=swap: F.triplet_margin_loss(x, y, z, 0.5, p, swap=s),
                lambda x, y, z, p=p, s=swap: TF.triplet_margin_loss(x, y, z, 0.5, p, swap=s),
                an, po, ne)  # fmt: skip
    t = rng.poisson(2.0, (3, 4)).astype(np.float32)
    for log_input in (True, False):
        x = rng.uniform(0.2, 2.0, (3, 4))
        compare(lambda u, li=log_input: F.poisson_nll_loss(u, t, li, True, reduce=False),
                lambda u, li=log_input: TF.poisson_nll_loss(u, torch.tensor(t), li, True,
                                                           reduce=False), x)  # fmt: skip
    mu, tg = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    for var in (rng.uniform(0, 1e-7, (3, 4)), rng.uniform(0.1, 2, (3, 1)), rng.uniform(0.1, 2, 3)):
        compare(lambda u, v, w: F.gaussian_nll_loss(u, v, w, True),
                lambda u, v, w: TF.gaussian_nll_loss(u, v, w, True), mu, tg, var)  # fmt: skip
    with pytest.raises(ValueError, match="gaussian_nll_loss: var"):
        F.gaussian_nll_loss(ds.ones(3, 4), ds.ones(3, 4), ds.ones(2))


@pytest.mark.parametrize(
    "var_shape", [(1, 3, 4, 5), (2, 1, 4, 5), (2, 3, 4, 1), (2, 3, 1, 5), (2, 3, 4), (2, 3, 4, 5)]
)
def test_gaussian_nll_loss_broadcasts_var_as_torch(var_shape):
    # PyTorch accepts a var of the input's rank that is 1 in the one dimension where it differs
    # (a variance shared by an image's channels: (N, 1, H, W)); descent took the last
    # dimension only and raised ValueError for the rest. Values and gradients vs torch.
    mu, tg = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 4, 5))
    var = rng.uniform(0.2, 2.0, var_shape)
    compare(lambda u, v, w: F.gaussian_nll_loss(u, v, w),
            lambda u, v, w: TF.gaussian_nll_loss(u, v, w), mu, tg, var)  # fmt: skip


@pytest.mark.parametrize("var_shape", [(1, 1, 4, 5), (2, 2, 4, 5), (3, 4, 5), (2, 3, 4, 5, 1)])
def test_gaussian_nll_loss_refuses_var_sizes_as_torch(var_shape):
    mu = np.zeros((2, 3, 4, 5), np.float32)
    with pytest.raises(ValueError, match="var is of incorrect size"):
        TF.gaussian_nll_loss(torch.tensor(mu), torch.tensor(mu), torch.ones(var_shape))
    with pytest.raises(ValueError, match="var is of incorrect size"):
        F.gaussian_nll_loss(ds.tensor(mu), ds.tensor(mu), ds.ones(*var_shape))


# ---------------------------------------------------------------------------------------------
# CTC


def _ctc_pair(logits, targets, in_len, tg_len, **kw):
    x = ds.tensor(logits, requires_grad=True)
    t = torch.tensor(logits, requires_grad=True)
    y = F.ctc_loss(F.log_softmax(x, -1), ds.tensor(targets), ds.tensor(in_len),
                   ds.tensor(tg_len), **kw)  # fmt: skip
    yt = TF.ctc_loss(TF.log_softmax(t, -1), torch.tensor(targets), torch.tensor(in_len),
                     torch.tensor(tg_len), **kw)  # fmt: skip
    return x, t, y, yt


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_ctc_matches_torch_with_repeats_empty_targets_and_short_inputs(reduction, zero_infinity):
    logits = rng.standard_normal((12, 4, 5)).astype(np.float32)
    targets = np.array([[1, 2, 2, 1], [3, 1, 1, 1], [4, 4, 4, 4], [2, 2, 2, 2]])
    tg_len, in_len = np.array([3, 2, 4, 0]), np.array([12, 9, 7, 5])
    x, t, y, yt = _ctc_pair(logits, targets, in_len, tg_len, reduction=reduction,
                            zero_infinity=zero_infinity)  # fmt: skip
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    y.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), atol=2e-5)


def test_ctc_infeasible_concatenated_and_unbatched():
    logits = rng.standard_normal((8, 3, 5)).astype(np.float32)
    concat, tg_len, in_len = np.array([4, 4, 4, 4, 1, 2, 3]), np.array([4, 2, 1]), [6, 8, 0]
    # 4 repeats need 7 frames (6 given), and no frame at all cannot emit a label: inf ...
    x, t, y, yt = _ctc_pair(logits, concat, in_len, tg_len, reduction="none")
    assert np.isinf(y.numpy()[[0, 2]]).all()
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-5)
    # ... and zero_infinity turns them into 0 with a zero gradient, as PyTorch.
    x, t, y, yt = _ctc_pair(logits, concat, in_len, tg_len, reduction="none", zero_infinity=True)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-5)
    y.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), atol=2e-5)
    # An unbatched (T, C) input with a 1-d target.
    x, t, y, yt = _ctc_pair(logits[:, 0], np.array([1, 2]), [8], [2])
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-5)
    assert y.shape == ()


def test_ctc_second_order_and_errors():
    from descent.explain import gradgradcheck

    lp = ds.tensor(rng.standard_normal((5, 2, 3)), dtype=ds.float64, requires_grad=True)
    gradgradcheck(lambda z: F.ctc_loss(F.log_softmax(z, -1), [[1, 2], [2, 0]], [5, 4], [2, 1]),
                  [lp], raise_on_failure=True)  # fmt: skip
    with pytest.raises(ValueError, match="ctc_loss: input_lengths"):
        F.ctc_loss(ds.zeros(3, 1, 4), [[1]], [4], [1])
    with pytest.raises(ValueError, match="ctc_loss: target classes"):
        F.ctc_loss(ds.zeros(3, 1, 4), [[7]], [3], [1])


# ---------------------------------------------------------------------------------------------
# Convolutions, pooling


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_conv_transpose_grid_matches_torch(nd):
    tf = getattr(TF, f"conv_transpose{nd}d")
    f = getattr(F, f"conv_transpose{nd}d")
    for stride, pad, opad, groups, dil in [(1, 0, 0, 1, 1), (2, 1, 1, 2, 1), (3, 2, 2, 1, 2),
                                           (1, 1, 1, 2, 2), (2, 0, 0, 4, 1)]:  # fmt: skip
        x = rng.standard_normal((2, 4) + (3,) * nd)
        w = rng.standard_normal((4, 3) + (2,) * nd)  # (C_in, C_out / groups, *k)
        b = rng.standard_normal(3 * groups)
        args = (stride, pad, opad, groups, dil)
        compare(lambda u, v, c, a=args: f(u, v, c, *a), lambda u, v, c, a=args: tf(u, v, c, *a),
                x, w, b, atol=1e-4)  # fmt: skip
    with pytest.raises(ValueError, match="output_padding"):
        f(ds.ones((1, 1) + (3,) * nd), ds.ones((1, 1) + (2,) * nd), output_padding=2, stride=2)


def test_max_pools_pick_the_first_maximum_among_ties_as_torch():
    x = np.maximum(rng.standard_normal((2, 3, 4, 6, 5)), 0)  # relu output: many tied zeros
    compare(lambda u: F.max_pool3d(u, 2, 1, 1), lambda u: TF.max_pool3d(u, 2, 1, 1), x)
    compare(lambda u: F.adaptive_max_pool2d(u[:, :, 0], (3, 2)),
            lambda u: TF.adaptive_max_pool2d(u[:, :, 0], (3, 2)), x)  # fmt: skip
    y, i = F.max_pool3d(ds.tensor(x), 3, 2, 1, ceil_mode=True, return_indices=True)
    yt, it = TF.max_pool3d(torch.tensor(x), 3, 2, 1, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(i.numpy(), it.numpy())
    np.testing.assert_allclose(y.numpy(), yt.numpy())
    # nan wins a window, as it propagates in PyTorch
    xn = x.copy()
    xn[0, 0, 1, 1, 1] = np.nan
    y, i = F.max_pool3d(ds.tensor(xn), 2, return_indices=True)
    yt, it = TF.max_pool3d(torch.tensor(xn), 2, return_indices=True)
    np.testing.assert_array_equal(i.numpy(), it.numpy())


def test_max_unpool_inverts_max_pool_indices():
    x = rng.standard_normal((2, 3, 6, 8)).astype(np.float32)
    yt, it = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    y, i = F.max_pool2d(ds.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(i.numpy(), it.numpy())
    compare(lambda v: F.max_unpool2d(v, i, 2), lambda v: TF.max_unpool2d(v, it, 2), yt.numpy())
    yt3, it3 = TF.max_pool3d(torch.tensor(x[:, None]), 2, return_indices=True)
    compare(lambda v: F.max_unpool3d(v, it3.numpy(), 2), lambda v: TF.max_unpool3d(v, it3, 2),
            yt3.numpy())  # fmt: skip
    with pytest.raises(ValueError, match="max_unpool2d: indices must lie"):
        F.max_unpool2d(ds.tensor(yt.numpy()), i.numpy() + 100, 2)


# ---------------------------------------------------------------------------------------------
# interpolate, grid_sample


INTERP = [
    (mode, shape, ac, kw)
    for mode, shape in [("nearest", (2, 3, 5)), ("nearest", (2, 3, 5, 7)),
                        ("nearest", (1, 2, 3, 4, 5)), ("nearest-exact", (2, 3, 5, 7)),
                        ("linear", (2, 3, 5)), ("bilinear", (2, 3, 5, 7)),
                        ("bicubic", (2, 3, 5, 7)), ("trilinear", (1, 2, 3, 4, 5)),
                        ("area", (2, 3, 6, 7)), ("area", (2, 3, 7))]
    for ac in ([None] if mode in ("nearest", "nearest-exact", "area") else [False, True])
    for kw in [{"scale_factor": 2}, {"scale_factor": 0.5}, {"scale_factor": 1.7},
               {"scale_factor": 1.3, "recompute_scale_factor": True}, {"size": 3},
               {"size": (11, 9, 4)[: len(shape) - 2]}]
    if not (mode == "area" and "scale_factor" in kw)
]  # fmt: skip


@pytest.mark.parametrize("mode,shape,ac,kw", INTERP, ids=[f"{m}-{len(s)}d-{a}-{k}"
                                                         for m, s, a, k in INTERP])  # fmt: skip
def test_interpolate_matches_torch(mode, shape, ac, kw):
    compare(lambda u: F.interpolate(u, mode=mode, align_corners=ac, **kw),
            lambda u: TF.interpolate(u, mode=mode, align_corners=ac, **kw),
            rng.standard_normal(shape))  # fmt: skip


def test_interpolate_errors_name_the_problem():
    x = ds.ones(1, 1, 4, 4)
    with pytest.raises(ValueError, match="mode 'linear' needs a 3-d input"):
        F.interpolate(x, scale_factor=2, mode="linear")
    with pytest.raises(ValueError, match="align_corners can only be set"):
        F.interpolate(x, scale_factor=2, mode="nearest", align_corners=True)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="anti-alias"):  # bilinear/bicubic work: test_compat_fixes
        F.interpolate(x, scale_factor=0.5, mode="nearest", antialias=True)


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize(
    "shape,size",
    [
        ((2, 3, 5), (8,)),
        ((1, 2, 3, 5), (7, 2)),
        ((1, 1, 2, 3, 2), (3, 5, 4)),
        ((0, 2, 3, 3), (2, 6)),
    ],
)
def test_interpolate_uint8_masks_with_nearest_modes(mode, shape, size):
    # label masks and images are uint8: PyTorch resizes them with the nearest modes, exactly
    a = np.random.default_rng(3).integers(0, 256, shape).astype(np.uint8)
    y = F.interpolate(ds.tensor(a), size=size, mode=mode)
    t = TF.interpolate(torch.tensor(a), size=size, mode=mode)
    assert y.dtype == ds.uint8 and y.shape == t.shape and y.tolist() == t.tolist()


def test_interpolate_empty_spatial_input_raises_runtime_error_as_torch():
    for kw in ({"size": (2, 6)}, {"scale_factor": 2}):
        with pytest.raises(RuntimeError, match="greater than 0"):
            TF.interpolate(torch.zeros(1, 1, 0, 3), **kw)
        with pytest.raises(RuntimeError, match="greater than 0"):  # was an IndexError
            F.interpolate(ds.zeros(1, 1, 0, 3), **kw)


@pytest.mark.parametrize(
    "dtype,mode",
    [("int64", "nearest"), ("int32", "nearest-exact"), ("bool", "nearest"), ("uint8", "bilinear")],
)
def test_interpolate_refuses_other_integer_inputs_as_torch(dtype, mode):
    # PyTorch: NotImplementedError ("not implemented for 'Long'"); its uint8 bilinear kernel
    # rounds in fixed point, which descent does not imitate (it refuses, naming .float())
    if dtype != "uint8":
        with pytest.raises(NotImplementedError):
            TF.interpolate(torch.zeros(1, 1, 2, 2, dtype=getattr(torch, dtype)), scale_factor=2,
                           mode=mode)  # fmt: skip
    with pytest.raises(NotImplementedError, match=r"use \.float\(\)"):
        F.interpolate(ds.zeros(1, 1, 2, 2, dtype=getattr(ds, dtype)), scale_factor=2, mode=mode)


GRID = [(m, p, a) for m in ("bilinear", "nearest") for p in ("zeros", "border", "reflection")
        for a in (False, True)]  # fmt: skip


# bicubic (images only) was refused with a ValueError; Keys' cubic with per-tap padding
GRID2 = GRID + [("bicubic", p, a) for p in ("zeros", "border", "reflection") for a in (False, True)]


@pytest.mark.parametrize(
    "mode,padding_mode,align", GRID2, ids=["-".join(map(str, g)) for g in GRID2]
)
def test_grid_sample_matches_torch(mode, padding_mode, align):
    x = rng.standard_normal((2, 3, 5, 6))
    g = rng.uniform(-1.7, 1.7, (2, 4, 3, 2))  # points outside [-1, 1] too
    # grad_scale: bicubic "border" at a point past the edge has a grid gradient that is 0 in
    # exact arithmetic (float64: 1e-14 in both libraries) but a float32 sum of +-17-sized taps,
    # +-2e-5 in either library (15 of 2,400 random draws failed a plain atol=2e-5)
    compare(lambda u, v: F.grid_sample(u, v, mode, padding_mode, align),
            lambda u, v: TF.grid_sample(u, v, mode, padding_mode, align), x, g,
            grad_scale=True)  # fmt: skip


@pytest.mark.parametrize("mode,padding_mode,align", GRID, ids=["-".join(map(str, g)) for g in GRID])
def test_grid_sample_volumes_match_torch(mode, padding_mode, align):
    # 5-d input (N, C, D, H, W) and grid (N, Do, Ho, Wo, 3): trilinear / nearest, as PyTorch's
    # (occupancy networks sample feature volumes at points); was a ValueError
    x = rng.standard_normal((2, 3, 4, 5, 6))
    g = rng.uniform(-1.5, 1.5, (2, 3, 2, 4, 3))
    compare(lambda u, v: F.grid_sample(u, v, mode, padding_mode, align),
            lambda u, v: TF.grid_sample(u, v, mode, padding_mode, align), x, g,
            grad_scale=True)  # fmt: skip


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_grid_sample_bicubic_gradients_and_refusals(padding_mode):
    # float64 central differences for the input and the grid (points away from integer
    # coordinates, where floor() would jump); a volume is refused as PyTorch refuses it
    from descent.autograd_gradcheck import gradcheck

    x = ds.tensor(rng.standard_normal((1, 2, 4, 5)), requires_grad=True)
    g = ds.tensor(rng.uniform(-1.4, 1.4, (1, 3, 2, 2)), requires_grad=True)
    assert gradcheck(lambda u, v: F.grid_sample(u, v, "bicubic", padding_mode, False), (x, g))
    # a 1x1 image: every tap reads the one pixel (border) or 0 outside (zeros)
    one = rng.standard_normal((1, 1, 1, 1))
    pts = rng.uniform(-1.5, 1.5, (1, 2, 2, 2))
    compare(lambda u, v: F.grid_sample(u, v, "bicubic", padding_mode, True),
            lambda u, v: TF.grid_sample(u, v, "bicubic", padding_mode, True), one, pts)  # fmt: skip
    with pytest.raises(RuntimeError, match="bicubic interpolation only supports 4D input"):
        TF.grid_sample(
            torch.zeros(1, 1, 2, 2, 2), torch.zeros(1, 1, 1, 1, 3), "bicubic", align_corners=False
        )
    with pytest.raises(ValueError, match="bicubic interpolation only supports 4D input"):
        F.grid_sample(ds.zeros(1, 1, 2, 2, 2), ds.zeros(1, 1, 1, 1, 3), mode="bicubic")


@pytest.mark.parametrize("align", [False, True])
def test_affine_grid_3d_and_area_resize_of_volumes_match_torch(align):
    theta = np.array([[[0.9, -0.2, 0.1, 0.05], [0.3, 1.1, -0.2, 0.0], [0.1, 0.0, 0.8, -0.3]]] * 2)
    x = rng.standard_normal((2, 3, 4, 5, 6))
    compare(lambda t: F.affine_grid(t, (2, 3, 3, 4, 2), align),
            lambda t: TF.affine_grid(t, (2, 3, 3, 4, 2), align), theta)  # fmt: skip
    compare(lambda u, t: F.grid_sample(u, F.affine_grid(t, (2, 3, 3, 4, 2), align),
                                       align_corners=align),
            lambda u, t: TF.grid_sample(u, TF.affine_grid(t, (2, 3, 3, 4, 2), align),
                                        align_corners=align), x, theta)  # fmt: skip
    compare(lambda u: F.interpolate(u, size=(3, 2, 4), mode="area"),
            lambda u: TF.interpolate(u, size=(3, 2, 4), mode="area"), x)  # fmt: skip
    with pytest.raises(ValueError, match="theta"):
        F.affine_grid(ds.zeros(2, 3, 4), (2, 3, 4, 5))


def test_affine_grid_then_grid_sample_is_a_spatial_transformer():
    theta = np.array([[[0.9, -0.2, 0.1], [0.3, 1.1, -0.2]]] * 2)
    x = rng.standard_normal((2, 3, 5, 6))
    compare(lambda u, t: F.grid_sample(u, F.affine_grid(t, (2, 3, 4, 7), False),
                                       align_corners=False),
            lambda u, t: TF.grid_sample(u, TF.affine_grid(t, (2, 3, 4, 7), False),
                                        align_corners=False), x, theta)  # fmt: skip


def test_pixel_shuffle_round_trip_and_batch_dims():
    x = rng.standard_normal((2, 3, 8, 3, 2))
    compare(lambda u: F.pixel_shuffle(u, 2), lambda u: TF.pixel_shuffle(u, 2), x)
    compare(lambda u: F.pixel_unshuffle(u, 2), lambda u: TF.pixel_unshuffle(u, 2), x[..., :2, :2])
    with pytest.raises(ValueError, match="pixel_shuffle"):
        F.pixel_shuffle(ds.ones(1, 3, 2, 2), 2)


def test_shape_errors_are_caught_by_torchs_exception_classes():
    # pixel_(un)shuffle raised ValueError where torch raises RuntimeError, interpolate with a
    # mode that does not fit the rank ValueError where torch raises NotImplementedError: an
    # `except` written for torch missed them (descent's still subclass ValueError)
    cases = [
        (RuntimeError, lambda m, f: f.pixel_shuffle(m.ones(1, 3, 2, 2), 2)),
        (RuntimeError, lambda m, f: f.pixel_unshuffle(m.ones(1, 1, 3, 3), 2)),
        (NotImplementedError, lambda m, f: f.interpolate(m.ones(1, 1, 2), scale_factor=2,
                                                         mode="bilinear")),
        (NotImplementedError, lambda m, f: f.interpolate(m.ones(1, 1, 2, 2, 2), scale_factor=2,
                                                         mode="bicubic")),
    ]  # fmt: skip
    for cls, fn in cases:
        for m, f in ((torch, TF), (ds, F)):
            with pytest.raises(cls):
                fn(m, f)
        with pytest.raises(ValueError):
            fn(ds, F)


# ---------------------------------------------------------------------------------------------
# Layers


def _copy_params(mod, tmod):
    with torch.no_grad():
        for (name, p), (tname, tp) in zip(mod.named_parameters(), tmod.named_parameters(),
                                          strict=True):  # fmt: skip
            assert name == tname and tuple(p.shape) == tuple(tp.shape), (name, tname)
            tp.copy_(torch.tensor(p.numpy()))


@pytest.mark.parametrize(
    "name,args,kwargs,shape",
    [
        ("ConvTranspose1d", (4, 6, 3), {"stride": 2, "padding": 1, "output_padding": 1,
                                        "groups": 2}, (2, 4, 5)),
        ("ConvTranspose2d", (3, 2, (3, 2)), {"stride": (2, 1), "dilation": 2}, (2, 3, 4, 5)),
        ("ConvTranspose3d", (2, 3, 2), {"bias": False}, (1, 2, 3, 2, 3)),
        ("Conv3d", (2, 4, 2), {"padding": 1, "groups": 2}, (1, 2, 3, 4, 3)),
    ],
)  # fmt: skip
def test_conv_layers_match_torch(name, args, kwargs, shape):
    ds.manual_seed(0)
    mod, tmod = getattr(nn, name)(*args, **kwargs), getattr(tnn, name)(*args, **kwargs)
    # PyTorch's initialisation bounds: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both tensors.
    fan_in = mod.weight.shape[1] * int(np.prod(mod.weight.shape[2:]))
    assert np.abs(mod.weight.numpy()).max() <= 1 / np.sqrt(fan_in) + 1e-7
    _copy_params(mod, tmod)
    x = rng.standard_normal(shape).astype(np.float32)
    compare(mod, tmod, x, atol=1e-4)
    assert repr(mod) == repr(tmod)


def test_conv_transpose_output_size_argument():
    ds.manual_seed(0)
    mod, tmod = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1), tnn.ConvTranspose2d(2, 3, 3, 2, 1)
    _copy_params(mod, tmod)
    x = rng.standard_normal((1, 2, 4, 5)).astype(np.float32)
    y = mod(ds.tensor(x), output_size=(8, 10))
    yt = tmod(torch.tensor(x), output_size=(8, 10))
    assert y.shape == (1, 3, 8, 10)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="not reachable"):
        mod(ds.tensor(x), output_size=(20, 20))


MODULES = [
    ("Upsample", {"scale_factor": 2, "mode": "bilinear", "align_corners": False}, (1, 2, 3, 4)),
    ("Upsample", {"size": (5, 3), "mode": "nearest"}, (1, 2, 3, 4)),
    ("UpsamplingNearest2d", {"scale_factor": 2}, (1, 2, 3, 4)),
    ("UpsamplingBilinear2d", {"size": (5, 7)}, (1, 2, 3, 4)),
    ("PixelShuffle", {"upscale_factor": 2}, (1, 8, 2, 3)),
    ("PixelUnshuffle", {"downscale_factor": 2}, (1, 2, 4, 6)),
    ("MaxPool3d", {"kernel_size": 2, "stride": 1}, (1, 2, 3, 4, 3)),
    ("AvgPool3d", {"kernel_size": 2, "padding": 1, "count_include_pad": False}, (1, 2, 3, 4, 3)),
    ("AdaptiveMaxPool2d", {"output_size": (2, 3)}, (1, 2, 5, 7)),
    ("AdaptiveMaxPool1d", {"output_size": 3}, (1, 2, 7)),
    ("Unfold", {"kernel_size": 2, "stride": 1}, (1, 2, 3, 4)),
    ("Fold", {"output_size": (3, 4), "kernel_size": 2}, (1, 8, 6)),
    ("Hardtanh", {"min_val": -0.5}, (3, 4)), ("ReLU6", {}, (3, 4)), ("Hardsigmoid", {}, (3, 4)),
    ("Hardswish", {}, (3, 4)), ("SELU", {}, (3, 4)), ("CELU", {"alpha": 0.5}, (3, 4)),
    ("Mish", {}, (3, 4)), ("Softsign", {}, (3, 4)), ("Softmin", {"dim": 1}, (3, 4)),
    ("GLU", {}, (3, 4)), ("Tanhshrink", {}, (3, 4)), ("Softshrink", {"lambd": 0.3}, (3, 4)),
    ("Hardshrink", {}, (3, 4)), ("Threshold", {"threshold": 0.1, "value": 2.0}, (3, 4)),
    ("LogSigmoid", {}, (3, 4)),
]  # fmt: skip


@pytest.mark.parametrize("name,kw,shape", MODULES, ids=[f"{m[0]}-{i}" for i, m in
                                                        enumerate(MODULES)])  # fmt: skip
def test_parameterless_layers_match_torch(name, kw, shape):
    mod, tmod = getattr(nn, name)(**kw), getattr(tnn, name)(**kw)
    compare(mod, tmod, rng.standard_normal(shape) * 4)
    assert repr(mod) == repr(tmod)


def test_loss_and_distance_layers_match_torch():
    a, b, c = (rng.standard_normal((4, 3)) for _ in range(3))
    y = ds.tensor(np.sign(rng.standard_normal(4)).astype(np.float32))
    ty = torch.tensor(y.numpy())
    compare(lambda u, v: nn.MarginRankingLoss(0.1)(u[:, 0], v[:, 0], y),
            lambda u, v: tnn.MarginRankingLoss(0.1)(u[:, 0], v[:, 0], ty), a, b)  # fmt: skip
    compare(nn.TripletMarginLoss(swap=True), tnn.TripletMarginLoss(swap=True), a, b, c)
    compare(nn.CosineSimilarity(), tnn.CosineSimilarity(), a, b)
    compare(nn.PairwiseDistance(p=1.0, keepdim=True), tnn.PairwiseDistance(1.0, keepdim=True),
            a, b)  # fmt: skip
    compare(lambda u, v: nn.PoissonNLLLoss(full=True)(u, v.abs()),
            lambda u, v: tnn.PoissonNLLLoss(full=True)(u, v.abs()), a, b)  # fmt: skip
    compare(lambda u, v: nn.GaussianNLLLoss()(u, v, v.abs() + 0.1),
            lambda u, v: tnn.GaussianNLLLoss()(u, v, v.abs() + 0.1), a, b)  # fmt: skip
    logits = rng.standard_normal((6, 2, 4))
    compare(lambda u: nn.CTCLoss(blank=3)(F.log_softmax(u, -1), [[0, 1], [2, 2]], [6, 5], [2, 2]),
            lambda u: tnn.CTCLoss(blank=3)(TF.log_softmax(u, -1), torch.tensor([[0, 1], [2, 2]]),
                                           torch.tensor([6, 5]), torch.tensor([2, 2])),
            logits)  # fmt: skip


def test_grid_sample_nearest_gives_the_grid_zero_gradient_as_torch():
    # PyTorch's nearest mode defines the grid's gradient as zeros (was None here)
    x0 = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    g0 = rng.uniform(-1.2, 1.2, (1, 3, 2, 2)).astype(np.float32)
    grads = []
    for lib, fn in ((torch, TF), (ds, F)):
        x = lib.tensor(x0, requires_grad=True)
        g = lib.tensor(g0, requires_grad=True)
        (fn.grid_sample(x, g, mode="nearest", align_corners=False) ** 2).sum().backward()
        grads.append((x.grad.numpy().copy(), g.grad.numpy().copy()))
    np.testing.assert_allclose(grads[1][0], grads[0][0], rtol=1e-6)
    np.testing.assert_array_equal(grads[1][1], grads[0][1])
    assert not grads[1][1].any()
