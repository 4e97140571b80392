"""Convolution and pooling of descent.nn.functional against PyTorch (float32) and finite
differences (float64): every stride/padding/dilation/groups option, 'same'/'valid', unbatched
inputs, pooling variants, ties, higher-order gradients and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import descent as ds
import descent.nn.functional as F
from specs.nn import gradcheck64, np_conv2d, torch_compare

RNG = np.random.default_rng(0)


def rnd(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


CONV2D = [
    # (input shape, weight shape, stride, padding, dilation, groups)
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, 0, 1, 1),
    ((2, 3, 7, 6), (4, 3, 3, 2), (2, 1), (1, 0), 1, 1),
    ((1, 4, 8, 8), (6, 2, 3, 3), 2, 1, 1, 2),
    ((1, 4, 9, 7), (4, 1, 3, 3), 1, 2, 2, 4),  # depthwise, dilated
    ((2, 2, 6, 9), (3, 2, 2, 4), (1, 3), (0, 2), (2, 1), 1),
    ((2, 1, 5, 5), (2, 1, 5, 5), 1, 0, 1, 1),  # kernel as large as the image
    ((3, 2, 6, 6), (4, 2, 1, 1), 1, 0, 1, 1),  # 1x1
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, "same", 1, 1),
    ((2, 3, 7, 6), (4, 3, 2, 4), 1, "same", (1, 2), 1),  # asymmetric 'same' padding
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, "valid", 1, 1),
    # wide images (Wo >= 16): the (N, Ho, Wo) column layout instead of the batch-last one
    ((1, 4, 5, 21), (4, 2, 3, 3), 1, (1, 2), (1, 2), 2),
    ((2, 3, 4, 40), (2, 3, 2, 3), (1, 2), (0, 1), 1, 1),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONV2D)
def test_conv2d_matches_torch(xs, ws, stride, padding, dilation, groups, bias):
    arrays = [rnd(*xs), rnd(*ws)] + ([rnd(ws[0])] if bias else [])

    def fn(x, w, *b):
        return F.conv2d(x, w, b[0] if b else None, stride, padding, dilation, groups)

    def tfn(x, w, *b):
        return TF.conv2d(x, w, b[0] if b else None, stride, padding, dilation, groups)

    torch_compare(fn, tfn, arrays, fwd_atol=1e-5)


def test_conv2d_unbatched_and_input_without_grad():
    torch_compare(
        lambda x, w: F.conv2d(x, w, padding=1),
        lambda x, w: TF.conv2d(x, w, padding=1),
        [rnd(2, 5, 5), rnd(3, 2, 3, 3)],
        fwd_atol=1e-5,
    )
    torch_compare(
        lambda x, w: F.conv2d(x, w, stride=2),
        lambda x, w: TF.conv2d(x, w, stride=2),
        [rnd(2, 2, 5, 5), rnd(3, 2, 3, 3)],
        diff=[1],
        fwd_atol=1e-5,
    )


def test_conv2d_float64_matches_direct_sum():
    x, w, b = RNG.standard_normal((2, 4, 6, 5)), RNG.standard_normal((6, 2, 2, 3)), RNG.random(6)
    out = F.conv2d(
        ds.tensor(x, dtype=ds.float64),
        ds.tensor(w, dtype=ds.float64),
        ds.tensor(b, dtype=ds.float64),
        (2, 1),
        (1, 1),
        (2, 1),
        2,
    )
    assert out.dtype == ds.float64
    np.testing.assert_allclose(
        out.numpy(), np_conv2d(x, w, b, (2, 1), (1, 1), (2, 1), 2), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONV2D[:5] + CONV2D[-1:])
def test_conv2d_gradcheck_and_second_order(xs, ws, stride, padding, dilation, groups):
    small = (1,) + xs[1:]
    gradcheck64(
        lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups),
        [RNG.standard_normal(small), RNG.standard_normal(ws), RNG.standard_normal(ws[0])],
        second_order=True,
    )


def test_conv2d_double_backward_matches_torch():
    """Gradient penalty style: d/dw ||d loss / d x||^2 through the conv's backward."""
    x0, w0 = rnd(2, 2, 6, 6), rnd(3, 2, 3, 3)
    x = ds.tensor(x0, requires_grad=True)
    w = ds.tensor(w0, requires_grad=True)
    (gx,) = ds.autograd.grad(
        (F.conv2d(x, w, stride=2, padding=1) ** 2).sum(), [x], create_graph=True
    )
    (gw,) = ds.autograd.grad((gx * gx).sum(), [w])
    xt = torch.tensor(x0, requires_grad=True)
    wt = torch.tensor(w0, requires_grad=True)
    (gxt,) = torch.autograd.grad(
        (TF.conv2d(xt, wt, stride=2, padding=1) ** 2).sum(), [xt], create_graph=True
    )
    (gwt,) = torch.autograd.grad((gxt * gxt).sum(), [wt])
    np.testing.assert_allclose(gx.numpy(), gxt.detach().numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(gw.numpy(), gwt.numpy(), atol=1e-2, rtol=1e-4)


@pytest.mark.parametrize(
    "stride,padding,dilation,groups", [(1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 2), (3, "same", 1, 1)]
)
def test_conv1d_matches_torch(stride, padding, dilation, groups):
    if padding == "same":
        stride = 1
    torch_compare(
        lambda x, w, b: F.conv1d(x, w, b, stride, padding, dilation, groups),
        lambda x, w, b: TF.conv1d(x, w, b, stride, padding, dilation, groups),
        [rnd(2, 4, 11), rnd(6, 4 // groups, 3), rnd(6)],
        fwd_atol=1e-5,
    )


def test_conv1d_unbatched_and_gradcheck():
    torch_compare(
        lambda x, w: F.conv1d(x, w),
        lambda x, w: TF.conv1d(x, w),
        [rnd(3, 8), rnd(2, 3, 3)],
        fwd_atol=1e-5,
    )
    gradcheck64(
        lambda x, w: F.conv1d(x, w, stride=2, padding=1),
        [RNG.standard_normal((2, 2, 7)), RNG.standard_normal((3, 2, 3))],
    )


def test_conv_errors_name_shapes():
    with pytest.raises(ValueError, match="channels"):
        F.conv2d(ds.ones(1, 3, 5, 5), ds.ones(4, 2, 3, 3))
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.conv2d(ds.ones(1, 1, 2, 2), ds.ones(1, 1, 3, 3))
    with pytest.raises(ValueError, match="stride 1"):
        F.conv2d(ds.ones(1, 1, 5, 5), ds.ones(1, 1, 3, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        F.conv2d(ds.ones(5, 5), ds.ones(1, 1, 3, 3))


# ---------------------------------------------------------------------------------------------
# Pooling

MAXPOOL = [
    # kernel, stride, padding, dilation
    (2, None, 0, 1),
    (3, 2, 1, 1),
    ((2, 3), (1, 2), (1, 1), 1),
    (2, 1, 0, 2),
    (3, 1, 1, (1, 2)),
]


def distinct(*shape):
    n = int(np.prod(shape))
    return (RNG.permutation(n).reshape(shape) * 0.1).astype(np.float32)


@pytest.mark.parametrize("kernel,stride,padding,dilation", MAXPOOL)
def test_max_pool2d_matches_torch(kernel, stride, padding, dilation):
    torch_compare(
        lambda x: F.max_pool2d(x, kernel, stride, padding, dilation),
        lambda x: TF.max_pool2d(x, kernel, stride, padding, dilation),
        [distinct(2, 3, 7, 8)],
    )


def test_max_pool2d_ties_send_the_gradient_to_the_first_maximum():
    x = np.zeros((1, 1, 4, 4), np.float32)  # every window is a tie
    x[0, 0, 3, 3] = -1.0
    torch_compare(lambda t: F.max_pool2d(t, 2), lambda t: TF.max_pool2d(t, 2), [x])
    torch_compare(lambda t: F.max_pool2d(t, 3, 1), lambda t: TF.max_pool2d(t, 3, 1), [x])


def test_max_pool2d_gradcheck_second_order_and_unbatched():
    gradcheck64(lambda x: F.max_pool2d(x, 3, 2, 1), [distinct(1, 2, 5, 5)], second_order=True)
    torch_compare(lambda x: F.max_pool2d(x, 2), lambda x: TF.max_pool2d(x, 2), [distinct(2, 4, 4)])


def test_max_pool1d_matches_torch():
    torch_compare(
        lambda x: F.max_pool1d(x, 3, 2, 1), lambda x: TF.max_pool1d(x, 3, 2, 1), [distinct(2, 3, 9)]
    )


@pytest.mark.parametrize(
    "kernel,stride,padding,count_include_pad,divisor",
    [
        (2, None, 0, True, None),
        (3, 2, 1, True, None),
        (3, 2, 1, False, None),
        ((2, 3), (1, 2), (1, 1), False, None),
        (2, 1, 1, True, 3),
    ],
)
def test_avg_pool2d_matches_torch(kernel, stride, padding, count_include_pad, divisor):
    torch_compare(
        lambda x: F.avg_pool2d(x, kernel, stride, padding, False, count_include_pad, divisor),
        lambda x: TF.avg_pool2d(x, kernel, stride, padding, False, count_include_pad, divisor),
        [rnd(2, 3, 7, 6)],
    )


def test_avg_pool_gradcheck_second_order_and_1d():
    gradcheck64(
        lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
        [RNG.standard_normal((1, 2, 5, 5))],
        second_order=True,
    )
    torch_compare(
        lambda x: F.avg_pool1d(x, 3, 2, 1), lambda x: TF.avg_pool1d(x, 3, 2, 1), [rnd(2, 3, 9)]
    )


@pytest.mark.parametrize(
    "size,out", [((8, 6), (4, 3)), ((7, 5), (3, 2)), ((5, 5), 1), ((6, 7), (None, 3))]
)
def test_adaptive_avg_pool2d_matches_torch(size, out):
    torch_compare(
        lambda x: F.adaptive_avg_pool2d(x, out),
        lambda x: TF.adaptive_avg_pool2d(x, out),
        [rnd(2, 3, *size)],
    )


def test_adaptive_avg_pool2d_gradcheck():
    gradcheck64(lambda x: F.adaptive_avg_pool2d(x, (2, 3)), [RNG.standard_normal((1, 2, 5, 7))])


@pytest.mark.parametrize(
    "size,kernel,stride,padding,dilation",
    [
        ((7, 8), 2, 2, 0, 1),
        ((7, 7), 3, 2, 1, 1),
        ((6, 9), (2, 3), (2, 2), (1, 0), 1),
        ((8, 8), 2, 3, 1, (1, 2)),
        ((5, 5), 3, 3, 1, 1),
    ],
)
def test_max_pool2d_ceil_mode_matches_torch(size, kernel, stride, padding, dilation):
    torch_compare(
        lambda x: F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode=True),
        lambda x: TF.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode=True),
        [distinct(2, 2, *size)],
    )


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize(
    "size,kernel,stride,padding",
    [((7, 8), 2, 2, 0), ((7, 7), 3, 2, 1), ((6, 9), (2, 3), (2, 2), (1, 0)), ((5, 5), 3, 3, 1)],
)
def test_avg_pool2d_ceil_mode_matches_torch(size, kernel, stride, padding, count_include_pad):
    torch_compare(
        lambda x: F.avg_pool2d(x, kernel, stride, padding, True, count_include_pad),
        lambda x: TF.avg_pool2d(x, kernel, stride, padding, True, count_include_pad),
        [rnd(2, 2, *size)],
    )


@pytest.mark.parametrize(
    "kernel,stride,padding,dilation,ceil",
    [(2, None, 0, 1, False), (3, 2, 1, 1, True), (2, 1, 0, 2, False), ((2, 3), 2, (1, 1), 1, True)],
)
def test_max_pool2d_return_indices_match_torch(kernel, stride, padding, dilation, ceil):
    x = distinct(2, 3, 7, 6)
    x[0, 0, :2, :2] = 5.0  # a tie: the first maximum's index, as PyTorch
    y, idx = F.max_pool2d(ds.tensor(x), kernel, stride, padding, dilation, ceil, True)
    ty, tidx = TF.max_pool2d(torch.tensor(x), kernel, stride, padding, dilation, ceil, True)
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    assert idx.dtype == ds.int64
    y1, i1 = F.max_pool1d(ds.tensor(x[0]), 3, 2, 1, return_indices=True)
    ty1, ti1 = TF.max_pool1d(torch.tensor(x[0]), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(i1.numpy(), ti1.numpy())


def test_pool_errors():
    with pytest.raises(ValueError, match="at most half the kernel"):
        F.max_pool2d(ds.ones(1, 1, 4, 4), 2, padding=2)
    with pytest.raises(ValueError, match="larger than the input"):
        F.avg_pool2d(ds.ones(1, 1, 2, 2), 3)


def test_lenet_step_matches_torch():
    """conv-relu-pool-conv-relu-pool-linear-cross_entropy, forward and every gradient."""
    w1, b1, w2, b2 = rnd(6, 1, 5, 5) * 0.3, rnd(6), rnd(16, 6, 5, 5) * 0.1, rnd(16)
    wf, bf = rnd(10, 16 * 4 * 4) * 0.05, rnd(10)
    x, t = rnd(4, 1, 28, 28), RNG.integers(0, 10, 4)

    def net(f, tensor, x, w1, b1, w2, b2, wf, bf):
        h = f.max_pool2d(f.relu(f.conv2d(x, w1, b1)), 2)
        h = f.max_pool2d(f.relu(f.conv2d(h, w2, b2)), 2)
        return f.cross_entropy(f.linear(h.reshape(4, -1), wf, bf), tensor(t))

    torch_compare(
        lambda *a: net(F, ds.tensor, *a),
        lambda *a: net(TF, torch.tensor, *a),
        [x, w1, b1, w2, b2, wf, bf],
        diff=[1, 2, 3, 4, 5, 6],
        fwd_atol=1e-5,
    )
