"""torch's top-level neural-network names (gaps_nn.py, gaps_nn_more.py; docs/torch_gaps_nn.md)
against PyTorch: the same positional calls, values and gradients (float64 tight, float32 with
tolerances that hold on any BLAS kernel), float64 finite differences for the new code paths,
int reductions, training flags, dropout statistics and the errors torch raises."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import descent as ds
from descent.autograd_gradcheck import gradcheck

RNG = np.random.default_rng(7)


class G:
    """A differentiable float argument (an array given to both libraries with requires_grad)."""

    def __init__(self, arr):
        self.arr = np.asarray(arr)


def r(*shape, scale=1.0):
    return G(RNG.standard_normal(shape) * scale)


def pos(*shape):
    return G(RNG.uniform(0.2, 1.5, shape))


def ints(values):
    return np.asarray(values, dtype=np.int64)


def _to(lib, a, dtype):
    """One argument for torch (lib=torch) or descent."""
    if isinstance(a, G):
        arr = a.arr.astype(dtype)
        if lib is torch:
            return torch.tensor(arr, requires_grad=True)
        return ds.tensor(arr, requires_grad=True)
    if isinstance(a, np.ndarray):
        a = a.astype(dtype) if a.dtype.kind == "f" else a
        return torch.tensor(a) if lib is torch else ds.tensor(a)
    if isinstance(a, list) and a and isinstance(a[0], (G, np.ndarray)):
        return [_to(lib, b, dtype) for b in a]
    return a


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def run_both(name, args, dtype=np.float64, grad=True):
    """Call torch.<name> and descent.<name> on the same arguments; return the outputs and the
    gradients of sum(out0 * cotangent) with respect to every G argument."""
    res = []
    for lib in (torch, ds):
        call = [_to(lib, a, dtype) for a in args]
        outs = _outputs(getattr(lib, name)(*call))
        grads = []
        if grad and outs[0].requires_grad:
            cot = np.random.default_rng(1).standard_normal(tuple(outs[0].shape)).astype(dtype)
            w = torch.tensor(cot) if lib is torch else ds.tensor(cot)
            (outs[0] * w).sum().backward()
            flat = [c for c in call for c in (c if isinstance(c, list) else [c])]
            leaves = [c for c in flat if getattr(c, "requires_grad", False)]
            grads = [None if t.grad is None else t.grad.detach().numpy() for t in leaves]
        res.append(([o.detach().numpy() for o in outs], grads))
    return res


def _np(t):
    return np.asarray(t.detach().numpy())


def _k():
    return np.random.default_rng(3)


# name, positional arguments (torch's own top-level signature), grad?
CASES = [
    ("conv1d", [r(2, 3, 7), r(4, 3, 3), r(4), 1, 1]),
    ("conv1d", [r(1, 4, 9), r(4, 2, 3), None, 2, 0, 2, 2]),
    ("conv2d", [r(1, 2, 5, 5), r(3, 2, 3, 3), r(3), (1, 2), (1, 0)]),
    ("conv3d", [r(1, 2, 4, 4, 4), r(2, 2, 2, 2, 2)]),
    ("conv_transpose1d", [r(1, 3, 5), r(3, 2, 3), r(2), 2, 1, 1]),
    ("conv_transpose2d", [r(1, 2, 4, 4), r(2, 3, 3, 3), None, 2, 1, 1, 1, 1]),
    ("conv_transpose3d", [r(1, 2, 3, 3, 3), r(2, 1, 2, 2, 2)]),
    ("convolution", [r(1, 2, 5, 5), r(3, 2, 3, 3), r(3), [1, 1], [1, 1], [1, 1], False, [0, 0], 1]),
    ("convolution", [r(1, 2, 5), r(2, 3, 3), r(3), [2], [1], [1], True, [1], 1]),
    ("conv_tbc", [r(6, 2, 3), r(3, 3, 4), r(4), 1]),
    ("conv_tbc", [r(5, 1, 2), r(2, 2, 3), r(3)]),
    ("embedding", [r(10, 3), ints([[1, 2], [4, 9]])]),
    ("embedding", [r(10, 3), ints([[1, 2, 2], [4, 9, 1]]), 2, True]),
    ("layer_norm", [r(2, 3, 4), [3, 4], r(3, 4), r(3, 4), 1e-5, True]),
    ("layer_norm", [r(2, 5), [5]]),
    ("group_norm", [r(2, 4, 3), 2, r(4), r(4)]),
    ("group_norm", [r(3, 6, 2, 2), 3, None, None, 1e-3, False]),
    ("batch_norm", [r(4, 3, 2), r(3), r(3), None, None, True, 0.1, 1e-5, False]),
    (
        "batch_norm",
        [
            r(4, 3),
            None,
            None,
            RNG.standard_normal(3),
            RNG.uniform(0.5, 2, 3),
            False,
            0.1,
            1e-5,
            True,
        ],
    ),  # fmt: skip
    ("instance_norm", [r(2, 3, 5), r(3), r(3), None, None, True, 0.1, 1e-5, False]),
    ("rms_norm", [r(2, 5), [5], r(5)]),
    ("rms_norm", [r(2, 3, 4), [3, 4], None, 1e-3]),
    ("native_layer_norm", [r(2, 3, 4), [4], r(4), r(4), 1e-5]),
    ("native_layer_norm", [r(2, 3, 4), [3, 4], None, None, 1e-3]),
    ("native_batch_norm", [r(5, 3, 2), r(3), r(3), None, None, True, 0.1, 1e-5]),
    ("native_group_norm", [r(2, 4, 3), r(4), r(4), 2, 4, 3, 2, 1e-5]),
    ("cosine_similarity", [r(3, 4), r(3, 4)]),
    ("cosine_similarity", [r(3, 4), r(1, 4), 1, 1e-6]),
    ("pairwise_distance", [r(3, 4), r(3, 4)]),
    ("pairwise_distance", [r(3, 4), r(3, 4), 1.0, 1e-6, True]),
    ("pixel_shuffle", [r(1, 8, 2, 3), 2]),
    ("pixel_unshuffle", [r(1, 2, 4, 6), 2]),
    ("channel_shuffle", [r(2, 6, 2), 3]),
    ("native_channel_shuffle", [r(2, 6, 2), 2], False),  # torch has no derivative for it
    ("kl_div", [r(3, 4), pos(3, 4)]),
    ("kl_div", [r(3, 4), pos(3, 4), 0]),
    ("kl_div", [r(3, 4), pos(3, 4), 2]),
    ("kl_div", [r(3, 4), pos(3, 4), 1]),
    ("binary_cross_entropy_with_logits", [r(3, 4), G(RNG.uniform(0, 1, (3, 4)))]),
    (
        "binary_cross_entropy_with_logits",
        [r(3, 4), G(RNG.uniform(0, 1, (3, 4))), RNG.uniform(0.5, 2, 4), RNG.uniform(0.5, 2, 4), 1],
    ),  # fmt: skip
    ("binary_cross_entropy_with_logits", [r(3, 4), G(RNG.uniform(0, 1, (3, 4))), None, None, 2]),
    ("poisson_nll_loss", [r(3, 4), pos(3, 4), True, False, 1e-8, 1]),
    ("poisson_nll_loss", [pos(3, 4), G(RNG.uniform(1.5, 4, (3, 4))), False, True, 1e-8, 2]),
    ("cosine_embedding_loss", [r(4, 3), r(4, 3), np.array([1.0, -1, 1, -1]), 0.1]),
    ("cosine_embedding_loss", [r(4, 3), r(4, 3), np.array([1.0, -1, 1, -1]), 0.0, 0]),
    ("hinge_embedding_loss", [r(5), np.array([1.0, -1, 1, -1, -1]), 0.5, 2]),
    ("margin_ranking_loss", [r(5), r(5), np.array([1.0, -1, 1, -1, 1]), 0.2]),
    ("triplet_margin_loss", [r(4, 3), r(4, 3), r(4, 3)]),
    ("triplet_margin_loss", [r(4, 3), r(4, 3), r(4, 3), 0.5, 1.0, 1e-6, True, 0]),
    ("celu", [r(3, 4), 0.7]),
    ("selu", [r(3, 4)]),
    ("threshold", [r(3, 4), 0.1, -2.0]),
    ("hardshrink", [r(3, 4)]),
    ("hardshrink", [r(3, 4), 0.2]),
    ("prelu", [r(2, 3, 4), pos(3)]),
    ("prelu", [r(2, 3), pos(1)]),
    ("rrelu", [r(3, 4)]),
    ("rrelu", [r(3, 4), 0.2, 0.4, False]),
    ("bilinear", [r(3, 2), r(3, 4), r(5, 2, 4), r(5)]),
    ("max_pool1d", [r(2, 3, 9), 3]),
    ("max_pool1d", [r(2, 3, 9), 3, 2, 1, 1, True]),
    ("max_pool2d", [r(1, 2, 6, 6), 2]),
    ("max_pool2d", [r(1, 2, 7, 7), [3, 2], [2, 2], [1, 0]]),
    ("max_pool3d", [r(1, 2, 4, 4, 4), 2]),
    ("max_pool1d_with_indices", [r(2, 3, 9), 2]),
    ("avg_pool1d", [r(2, 3, 9), 3]),
    ("avg_pool1d", [r(2, 3, 9), 3, 2, 1, True, False]),
    ("adaptive_avg_pool1d", [r(2, 3, 10), 4]),
    ("adaptive_max_pool1d", [r(2, 3, 10), 4]),
    ("constant_pad_nd", [r(2, 3, 4), [1, 2]]),
    ("constant_pad_nd", [r(2, 3, 4), [-1, 2, 0, 1], 1.5]),
    ("lstm_cell", [r(3, 4), [r(3, 5), r(3, 5)], r(20, 4), r(20, 5), r(20), r(20)]),
    ("lstm_cell", [r(3, 4), [r(3, 5), r(3, 5)], r(20, 4), r(20, 5)]),
    ("gru_cell", [r(3, 4), r(3, 5), r(15, 4), r(15, 5), r(15), r(15)]),
    ("rnn_tanh_cell", [r(3, 4), r(3, 5), r(5, 4), r(5, 5), r(5), r(5)]),
    ("rnn_relu_cell", [r(3, 4), r(3, 5), r(5, 4), r(5, 5)]),
    ("affine_grid_generator", [r(2, 2, 3), [2, 3, 4, 5], False]),
    ("affine_grid_generator", [r(2, 2, 3), [2, 3, 4, 5], True]),
    ("grid_sampler", [r(2, 3, 5, 6), G(RNG.uniform(-1.1, 1.1, (2, 4, 3, 2))), 0, 0, False]),
    ("grid_sampler", [r(2, 3, 5, 6), G(RNG.uniform(-1.1, 1.1, (2, 4, 3, 2))), 0, 1, True]),
    ("grid_sampler_2d", [r(2, 3, 5, 6), G(RNG.uniform(-1.1, 1.1, (2, 4, 3, 2))), 0, 2, False]),
    ("grid_sampler_2d", [r(2, 3, 5, 6), G(RNG.uniform(-1.1, 1.1, (2, 4, 3, 2))), 2, 2, True]),
    ("norm_except_dim", [r(4, 3, 2)]),
    ("norm_except_dim", [r(4, 3, 2), 2, 1]),
    ("norm_except_dim", [r(4, 3), 3, -1]),
    ("dropout", [r(3, 4), 0.5, False]),
    ("alpha_dropout", [r(3, 4), 0.5, False]),
    ("feature_dropout", [r(3, 4), 0.5, False]),
    ("feature_alpha_dropout", [r(3, 4, 2), 0.5, False]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_float64_values_and_gradients_match_torch(case):
    name, args, grad = (*case, True)[:3]
    (t_out, t_grads), (d_out, d_grads) = run_both(name, args, grad=grad)
    assert len(t_out) == len(d_out)
    for a, b in zip(t_out, d_out):
        assert a.shape == b.shape and a.dtype == b.dtype, (name, a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-10, err_msg=name)
    assert len(t_grads) == len(d_grads)
    for a, b in zip(t_grads, d_grads):
        if a is None:  # torch gives no gradient (e.g. the target of a loss that ignores it)
            assert b is None or np.all(b == 0), name
            continue
        np.testing.assert_allclose(b, a, rtol=1e-7, atol=1e-9, err_msg=f"{name} gradient")


FLOAT32 = ["conv2d", "conv_tbc", "layer_norm", "group_norm", "kl_div", "lstm_cell", "bilinear",
           "binary_cross_entropy_with_logits", "native_layer_norm", "convolution"]  # fmt: skip


@pytest.mark.parametrize(("name", "args"), [c[:2] for c in CASES if c[0] in FLOAT32])
def test_float32_kept_and_close_to_torch(name, args):
    (t_out, t_grads), (d_out, d_grads) = run_both(name, args, dtype=np.float32)
    for a, b in zip(t_out + t_grads, d_out + d_grads):
        if a is None:
            continue
        assert b.dtype == a.dtype, (name, b.dtype)  # float32 stays float32
        np.testing.assert_allclose(b, a, rtol=2e-4, atol=2e-5, err_msg=name)


def test_batch_norm_updates_running_statistics_as_torch():
    x, w, b = RNG.standard_normal((6, 3, 2)), RNG.standard_normal(3), RNG.standard_normal(3)
    stats = {}
    for lib in (torch, ds):
        rm, rv = lib.tensor(np.zeros(3)), lib.tensor(np.ones(3))
        t = lib.tensor(x)
        out = lib.batch_norm(t, lib.tensor(w), lib.tensor(b), rm, rv, True, 0.3, 1e-5, True)
        stats[lib.__name__] = (_np(out), _np(rm), _np(rv))
        nat = lib.native_batch_norm(t, None, None, rm, rv, False, 0.1, 1e-5)
        assert tuple(nat[1].shape) == (0,) and tuple(nat[2].shape) == (0,)  # eval: empty
    for a, b in zip(stats["torch"], stats["descent"]):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


def test_embedding_bag_outputs_and_bookkeeping():
    w = RNG.standard_normal((10, 3))
    idx, off = ints([1, 2, 4, 5, 4, 3, 2, 9]), ints([0, 4, 4])
    for mode, wd in ((0, np.float64), (0, np.float32), (1, np.float64), (2, np.float32)):
        for extra in ((), (False, None, True), (False, None, False, 4)):
            w = w.astype(wd)
            # include_last_offset: the last offset closes the last bag (len(indices))
            o = np.append(off, idx.size) if len(extra) == 3 else off
            t = torch.embedding_bag(torch.tensor(w), torch.tensor(idx), torch.tensor(o), False,
                                    mode, *extra)  # fmt: skip
            d = ds.embedding_bag(ds.tensor(w), ds.tensor(idx), ds.tensor(o), False, mode,
                                 *extra)  # fmt: skip
            np.testing.assert_allclose(_np(d[0]), _np(t[0]), rtol=1e-12, atol=1e-12)
            for a, b in zip(t[1:], d[1:]):
                np.testing.assert_array_equal(_np(b), _np(a), err_msg=f"mode {mode} {extra}")
    # gradients of the bags (sum, mean, max) against torch
    for mode in (0, 1, 2):
        tw, dw = torch.tensor(w, requires_grad=True), ds.tensor(w, requires_grad=True)
        torch.embedding_bag(tw, torch.tensor(idx), torch.tensor(off), False, mode)[
            0
        ].sum().backward()
        ds.embedding_bag(dw, ds.tensor(idx), ds.tensor(off), False, mode)[0].sum().backward()
        np.testing.assert_allclose(_np(dw.grad), _np(tw.grad), rtol=1e-12)


def test_embedding_takes_the_weight_first_and_padding_row_gets_no_gradient():
    w = ds.tensor(RNG.standard_normal((6, 2)), requires_grad=True)
    out = ds.embedding(w, ds.tensor([[0, 3, 3]]), 3)
    assert tuple(out.shape) == (1, 3, 2)
    out.sum().backward()
    np.testing.assert_array_equal(_np(w.grad)[:, 0], [1, 0, 0, 0, 0, 0])


def test_gradcheck_float64_on_the_new_code_paths():
    def t(*shape):
        return ds.tensor(RNG.standard_normal(shape), requires_grad=True)

    assert gradcheck(lambda x, w, b: ds.conv_tbc(x, w, b, 1), (t(5, 2, 3), t(3, 3, 2), t(2)))
    assert gradcheck(
        lambda x, w: ds.convolution(x, w, None, [2], [1], [1], True, [1], 1),
        (t(1, 2, 4), t(2, 2, 3)),
    )
    assert gradcheck(
        lambda x, h, c, wi, wh: ds.lstm_cell(x, [h, c], wi, wh),
        (t(2, 3), t(2, 2), t(2, 2), t(8, 3), t(8, 2)),
    )
    assert gradcheck(
        lambda x, h, wi, wh: ds.gru_cell(x, h, wi, wh), (t(2, 3), t(2, 2), t(6, 3), t(6, 2))
    )
    assert gradcheck(lambda x: ds.native_layer_norm(x, [3], None, None, 1e-5)[0], (t(2, 3),))
    assert gradcheck(lambda x: x.hardshrink(0.3), (t(3, 4),))
    assert gradcheck(lambda x, w: x.prelu(w), (t(2, 3, 2), t(3)))
    assert gradcheck(lambda x: ds.constant_pad_nd(x, [1, -1], 2.0), (t(2, 3),))
    assert gradcheck(lambda v: ds.norm_except_dim(v, 2, 0), (t(3, 2),))
    w = ds.tensor(RNG.standard_normal((7, 2)), requires_grad=True)
    i, o = ds.tensor([1, 2, 4, 5, 3]), ds.tensor([0, 2])
    assert gradcheck(lambda w: ds.embedding_bag(w, i, o, False, 2)[0], (w,))


def test_tensor_methods_hardshrink_and_prelu_match_torch():
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    w = np.array([0.1, 0.2, 0.3], np.float32)
    tx, dx = torch.tensor(x), ds.tensor(x)
    np.testing.assert_array_equal(_np(dx.hardshrink()), _np(tx.hardshrink()))
    np.testing.assert_array_equal(_np(dx.hardshrink(0.1)), _np(tx.hardshrink(0.1)))
    got = dx.prelu(ds.tensor(w))
    assert got.dtype == ds.float32
    np.testing.assert_allclose(_np(got), _np(tx.prelu(torch.tensor(w))), rtol=1e-6)
    nan = ds.tensor([float("nan"), 0.5, -0.7]).hardshrink()
    assert np.isnan(_np(nan)[0]) and _np(nan)[1] == 0


def test_reduction_is_an_int_enum():
    x, t = ds.randn(3, 4), ds.rand(3, 4)
    with pytest.raises(TypeError):
        torch.kl_div(torch.randn(3, 4), torch.rand(3, 4), "mean")
    with pytest.raises(TypeError, match="int"):
        ds.kl_div(x, t, "mean")
    with pytest.raises(ValueError, match="0 .none"):
        ds.hinge_embedding_loss(x, t, 1.0, 5)
    assert ds.kl_div(x, t, 0).shape == (3, 4)


def test_ctc_loss_int_reduction_matches_torch():
    # Gradients through log_softmax: torch's ctc backward assumes normalised log-probabilities
    # (its gradient with respect to free log_probs is not the partial derivative), descent's is.
    lp = RNG.standard_normal((6, 2, 4))
    tg, il, tl = ints([[1, 2, 3], [2, 1, 0]]), [6, 5], [3, 2]
    for red in (0, 1, 2, None):
        a = torch.tensor(lp, requires_grad=True)
        b = ds.tensor(lp, requires_grad=True)
        extra = () if red is None else (0, red)  # left out: torch applies none (see gaps_nn)
        ta = torch.ctc_loss(a.log_softmax(-1), torch.tensor(tg), il, tl, *extra)
        tb = ds.ctc_loss(b.log_softmax(-1), ds.tensor(tg), il, tl, *extra)
        np.testing.assert_allclose(_np(tb), _np(ta), rtol=1e-10)
        ta.sum().backward()
        tb.sum().backward()
        np.testing.assert_allclose(_np(b.grad), _np(a.grad), rtol=1e-8, atol=1e-10)


def test_dropout_statistics_and_training_flags():
    x = ds.ones(200, 100)
    for p in (0.2, 0.5):
        y = _np(ds.dropout(x, p, True))
        assert y.shape == (200, 100) and y.dtype == np.float32
        assert abs((y == 0).mean() - p) < 0.02
        np.testing.assert_allclose(y[y != 0], 1 / (1 - p), rtol=1e-6)
    assert ds.dropout(x, 0.5, False) is x or np.array_equal(_np(ds.dropout(x, 0.5, False)), _np(x))
    f = _np(ds.feature_dropout(ds.ones(50, 40, 6), 0.5, True))
    assert np.all(f == f[:, :, :1])  # one draw per (sample, channel)
    assert abs((f[:, :, 0] == 0).mean() - 0.5) < 0.05
    a = _np(ds.alpha_dropout(ds.randn(400, 100), 0.3, True))
    assert abs(a.mean()) < 0.05 and abs(a.std() - 1) < 0.05  # alpha dropout keeps mean and var
    fa = _np(ds.feature_alpha_dropout(ds.randn(100, 50, 4), 0.3, True))
    dropped = fa.std(axis=-1) == 0  # a dropped channel is one constant (a alpha' + b)
    assert abs(dropped.mean() - 0.3) < 0.05
    out, mask = ds.native_dropout(x, 0.25, True)
    assert mask.dtype == ds.bool and abs(1 - _np(mask).mean() - 0.25) < 0.02
    np.testing.assert_allclose(_np(out), _np(mask) / 0.75, rtol=1e-6)
    out, mask = ds.native_dropout(x, 0.25, False)
    assert _np(mask).all() and np.array_equal(_np(out), _np(x))
    assert not _np(ds.native_dropout(x, 0.5, None)[1]).all()  # None trains, as torch
    with pytest.raises(TypeError):
        torch.dropout(torch.ones(3), 0.5)
    with pytest.raises(TypeError):
        ds.dropout(ds.ones(3), 0.5)


def test_dropout_gradient_is_the_mask():
    x = ds.ones(50, 20, requires_grad=True)
    y = ds.dropout(x, 0.4, True)
    y.sum().backward()
    np.testing.assert_allclose(_np(x.grad), _np(y), rtol=1e-6)


def test_inplace_variants_write_into_the_input():
    for lib in (torch, ds):
        x = lib.tensor([-2.0, -0.5, 0.3, 1.5])
        assert lib.celu_(x, 0.5) is x
    vals = {}
    for lib in (torch, ds):
        got = []
        for fn, extra in ((lib.celu_, (0.5,)), (lib.selu_, ()), (lib.threshold_, (0.0, -1.0)),
                          (lib.rrelu_, (0.1, 0.3, False))):  # fmt: skip
            x = lib.tensor([-2.0, -0.5, 0.3, 1.5], dtype=lib.float64)
            fn(x, *extra)
            got.append(_np(x))
        vals[lib.__name__] = got
    for a, b in zip(vals["torch"], vals["descent"]):
        np.testing.assert_allclose(b, a, rtol=1e-12)
    x = ds.ones(100, 10)
    assert ds.dropout_(x, 0.5, True) is x and (_np(x) == 0).any()
    y = ds.ones(4, 3)
    ds.feature_dropout_(y, 0.5, False)
    ds.alpha_dropout_(y, 0.5, False)
    ds.feature_alpha_dropout_(y, 0.5, False)
    assert _np(y).all()


def test_rrelu_training_draws_slopes_in_range():
    g = ds.Generator().manual_seed(0) if hasattr(ds, "Generator") else None
    x = -ds.ones(1000)
    y = _np(ds.rrelu(x, 0.1, 0.3, True, g))
    assert np.all((-y >= 0.1 - 1e-6) & (-y <= 0.3 + 1e-6)) and y.std() > 0.01
    y2 = _np(ds.rrelu(x, 0.1, 0.3, True))
    assert np.all((-y2 >= 0.1 - 1e-6) & (-y2 <= 0.3 + 1e-6))


def test_errors_where_torch_refuses():
    for lib, err in ((torch, RuntimeError), (ds, RuntimeError)):
        with pytest.raises(err):
            lib.feature_dropout(lib.ones(4), 0.5, True)
        with pytest.raises(err):
            lib.prelu(lib.ones(2, 3), lib.ones(2))
    for lib in (torch, ds):  # RuntimeError in both (descent's DescentError is one)
        with pytest.raises(RuntimeError):
            lib.dropout(lib.ones(2, 3), 1.5, True)
        with pytest.raises(RuntimeError):
            lib.feature_dropout(lib.ones(2, 3), -0.1, True)
        with pytest.raises(RuntimeError):
            lib.lstm_cell(lib.ones(2, 3), [lib.ones(2, 2)], lib.ones(8, 3), lib.ones(8, 2))
        with pytest.raises(RuntimeError):
            lib.conv_tbc(lib.ones(3, 2), lib.ones(2, 2, 2), lib.ones(2))
        with pytest.raises(RuntimeError):
            lib.convolution(lib.ones(1, 1, 2), lib.ones(2, 2), None, [1], [0], [1], False, [0], 1)
    with pytest.raises(ValueError, match="conv_tbc"):
        ds.conv_tbc(ds.ones(3, 2), ds.ones(2, 2, 2), ds.ones(2))
    with pytest.raises(ValueError, match="grid_sampler"):
        ds.grid_sampler(ds.ones(1, 1, 2, 2), ds.zeros(1, 1, 1, 2), 5, 0, False)
    with pytest.raises(ValueError, match="weight must have"):
        ds.convolution(ds.ones(1, 1, 2), ds.ones(2, 2), None, [1], [0], [1], False, [0], 1)


def test_import_descent_does_not_load_nn():
    # nor descent.sparse and control_flow, which load on first use (x.to_sparse(), torch.cond)
    code = (
        "import sys, descent\n"
        "for m in ('descent.nn', 'descent.sparse', 'descent.control_flow', 'descent.fx', "
        "'descent.nested'):\n"
        "    assert m not in sys.modules, f'import descent loaded {m}'\n"
        "descent.conv1d(descent.ones(1, 1, 3), descent.ones(1, 1, 2))\n"
        "assert 'descent.nn' in sys.modules\n"
        "assert not descent.ones(2).is_sparse and 'descent.sparse' not in sys.modules\n"
        "assert descent.ones(2, 2).to_sparse().is_sparse and 'descent.sparse' in sys.modules\n"
        "assert descent.cond(descent.tensor(True), lambda: 1, lambda: 0, ()) == 1\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("fn", "cls", "kw"),
    [
        ("lstm", torch.nn.LSTM, {}),
        ("lstm", torch.nn.LSTM, {"proj_size": 2}),
        ("gru", torch.nn.GRU, {}),
        ("rnn_tanh", torch.nn.RNN, {}),
        ("rnn_relu", torch.nn.RNN, {"nonlinearity": "relu"}),
    ],
)
@pytest.mark.parametrize(
    ("batch_first", "bidirectional", "bias"), [(False, False, True), (True, True, False)]
)
def test_whole_sequence_recurrences_match_torch(fn, cls, kw, batch_first, bidirectional, bias):
    torch.manual_seed(0)
    m = cls(3, 4, 2, bias=bias, batch_first=batch_first, bidirectional=bidirectional, **kw)
    m = m.double()
    dirs, n = (2 if bidirectional else 1), (2 if batch_first else 5)
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    h0 = torch.randn(2 * dirs, n, kw.get("proj_size") or 4, dtype=torch.float64)
    hx = [h0, torch.randn(2 * dirs, n, 4, dtype=torch.float64)] if fn == "lstm" else h0
    tps = [p.detach().clone().requires_grad_() for p in m._flat_weights]
    dps = [ds.tensor(p.detach().numpy(), requires_grad=True) for p in tps]
    dhx = [ds.tensor(h.numpy()) for h in hx] if fn == "lstm" else ds.tensor(hx.numpy())
    args = (bias, 2, 0.0, False, bidirectional, batch_first)
    t = getattr(torch, fn)(x, hx, tps, *args)
    d = getattr(ds, fn)(ds.tensor(x.numpy()), dhx, dps, *args)
    assert len(t) == len(d)
    for a, b in zip(t, d):
        np.testing.assert_allclose(_np(b), _np(a), rtol=1e-10, atol=1e-12)
    t[0].sum().backward()
    d[0].sum().backward()
    for a, b in zip(tps, dps):
        np.testing.assert_allclose(_np(b.grad), _np(a.grad), rtol=1e-9, atol=1e-11)


def test_embedding_renorm_in_place_as_torch():
    w = RNG.standard_normal((6, 3)) * 2
    tw, dw = torch.tensor(w), ds.tensor(w)
    assert torch.embedding_renorm_(tw, torch.tensor([1, 1, 4, 0]), 1.5, 2.0) is tw
    assert ds.embedding_renorm_(dw, ds.tensor([1, 1, 4, 0]), 1.5, 2.0) is dw
    np.testing.assert_allclose(_np(dw), _np(tw), rtol=1e-12)
    torch.embedding_renorm_(tw, torch.tensor([2, 3]), 0.5, 1.0)
    ds.embedding_renorm_(dw, ds.tensor([2, 3]), 0.5, 1.0)
    np.testing.assert_allclose(_np(dw), _np(tw), rtol=1e-12)
