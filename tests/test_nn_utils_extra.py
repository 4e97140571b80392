"""descent.nn.utils' fusion (fuse_conv_bn_*, fuse_linear_bn_*), get_total_norm,
clip_grads_with_norm_, skip_init and the memory-format no-ops, against torch.nn.utils."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent
import descent.nn as nn


def _twins(kind, *args):
    theirs = getattr(torch.nn, kind)(*args)
    ours = getattr(nn, kind)(*args)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def _trained_bn(kind, n, shape):
    """A BatchNorm with non-trivial running statistics and affine parameters, in both."""
    ours, theirs = _twins(kind, n)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.uniform_(-0.5, 0.5)
    x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    theirs(torch.tensor(x))
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours.eval(), theirs.eval()


@pytest.mark.parametrize(
    ("conv", "args", "bn", "shape", "transpose"),
    [
        ("Conv2d", (3, 4, 3), "BatchNorm2d", (2, 3, 6, 6), False),
        ("Conv1d", (2, 5, 3), "BatchNorm1d", (2, 2, 8), False),
        ("ConvTranspose2d", (3, 4, 3), "BatchNorm2d", (2, 3, 4, 4), True),
    ],
)
def test_fuse_conv_bn_matches_torch(conv, args, bn, shape, transpose):
    c_ours, c_theirs = _twins(conv, *args)
    c_ours.eval(), c_theirs.eval()
    bn_shape = (4, args[1], 5, 5) if bn == "BatchNorm2d" else (4, args[1], 7)
    b_ours, b_theirs = _trained_bn(bn, args[1], bn_shape)
    fused = nn.utils.fuse_conv_bn_eval(c_ours, b_ours, transpose=transpose)
    t_fused = torch.nn.utils.fuse_conv_bn_eval(c_theirs, b_theirs, transpose=transpose)
    np.testing.assert_allclose(fused.weight.numpy(), t_fused.weight.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(fused.bias.numpy(), t_fused.bias.detach().numpy(), rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    reference = b_ours(c_ours(descent.tensor(x))).numpy()
    np.testing.assert_allclose(fused(descent.tensor(x)).numpy(), reference, rtol=1e-4, atol=1e-5)
    assert fused is not c_ours and isinstance(fused.weight, nn.Parameter)
    with pytest.raises(AssertionError, match="eval"):
        nn.utils.fuse_conv_bn_eval(c_ours.train(), b_ours)


def test_fuse_linear_bn_matches_torch():
    l_ours, l_theirs = _twins("Linear", 3, 4)
    l_ours.eval(), l_theirs.eval()
    b_ours, b_theirs = _trained_bn("BatchNorm1d", 4, (8, 4))
    fused = nn.utils.fuse_linear_bn_eval(l_ours, b_ours)
    t_fused = torch.nn.utils.fuse_linear_bn_eval(l_theirs, b_theirs)
    np.testing.assert_allclose(fused.weight.numpy(), t_fused.weight.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(fused.bias.numpy(), t_fused.bias.detach().numpy(), rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    x = descent.randn(5, 3)
    np.testing.assert_allclose(fused(x).numpy(), b_ours(l_ours(x)).numpy(), rtol=1e-4, atol=1e-5)
    no_bias = nn.Linear(3, 4, bias=False).eval()
    assert nn.utils.fuse_linear_bn_eval(no_bias, b_ours).bias.shape == (4,)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf"), "inf"])
def test_get_total_norm_and_clip_grads_with_norm_match_torch(norm_type):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (5,), (2, 2, 2))]
    ours = [descent.tensor(a) for a in arrays]
    theirs = [torch.tensor(a) for a in arrays]
    total = nn.utils.get_total_norm(ours, norm_type)
    t_total = torch.nn.utils.get_total_norm(theirs, norm_type)
    np.testing.assert_allclose(total.numpy(), t_total.numpy(), rtol=1e-5)
    params = [descent.zeros(*a.shape, requires_grad=True) for a in arrays]
    t_params = [torch.zeros(a.shape, requires_grad=True) for a in arrays]
    for p, tp, a in zip(params, t_params, arrays, strict=True):
        p.grad, tp.grad = descent.tensor(a.copy()), torch.tensor(a.copy())
    nn.utils.clip_grads_with_norm_(params, 0.5, total)
    torch.nn.utils.clip_grads_with_norm_(t_params, 0.5, t_total)
    for p, tp in zip(params, t_params, strict=True):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-5)
    assert float(nn.utils.get_total_norm([]).item()) == 0.0
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.get_total_norm([descent.tensor([np.inf])], error_if_nonfinite=True)


def test_skip_init_and_memory_format():
    lin = nn.utils.skip_init(nn.Linear, 3, 4, bias=False)
    assert lin.weight.shape == (4, 3) and lin.bias is None

    class NoDevice(nn.Module):
        def __init__(self, n):
            super().__init__()

    with pytest.raises(RuntimeError, match="device"):
        nn.utils.skip_init(NoDevice, 3)
    conv = nn.Conv2d(2, 2, 3)
    # lays the weight out as channels_last (session 20; a no-op before), as PyTorch's
    assert nn.utils.convert_conv2d_weight_memory_format(conv, descent.channels_last) is conv
    assert conv.weight.is_contiguous(memory_format=descent.channels_last)
