"""Fixes found by session 15's new compat programs (tests/compat/programs), each differential
against PyTorch 2.13 (the oracle)."""

from __future__ import annotations

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")


def _pair(shape, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return descent.tensor(a), torch.from_numpy(a.copy())


# volumetric_3d: `F.avg_pool3d(x, k).view(N, -1)` raised in descent (its result had N and C
# swapped in memory); advanced indexing on a later axis, index_select, repeat_interleave,
# interpolate(mode="nearest"), F.unfold, grid_sample and topk along a middle dim returned
# non-contiguous arrays where PyTorch's results are contiguous, so a following .view failed.
LAYOUT_CASES = {
    "avg_pool3d": lambda F, t, x3, x2, x1: F.avg_pool3d(x3, 3),
    "avg_pool3d_stride_pad": lambda F, t, x3, x2, x1: F.avg_pool3d(
        x3, (3, 2, 2), stride=(1, 2, 2), padding=(1, 0, 0)),
    "adaptive_avg_pool3d": lambda F, t, x3, x2, x1: F.adaptive_avg_pool3d(x3, (1, 2, 3)),
    "adaptive_avg_pool3d_1": lambda F, t, x3, x2, x1: F.adaptive_avg_pool3d(x3, 1),
    "lp_pool3d": lambda F, t, x3, x2, x1: F.lp_pool3d(x3.abs(), 2, 2),
    "nearest_3d": lambda F, t, x3, x2, x1: F.interpolate(x3, scale_factor=(1, 2, 2)),
    "nearest_2d": lambda F, t, x3, x2, x1: F.interpolate(x2, size=(7, 5)),
    "unfold": lambda F, t, x3, x2, x1: F.unfold(x2, 3, padding=1),
    "grid_sample": lambda F, t, x3, x2, x1: F.grid_sample(
        x2, t.linspace(-1, 1, 50).reshape(2, 5, 5, 1).expand(2, 5, 5, 2).contiguous(),
        align_corners=False),
    "grid_sample_nearest": lambda F, t, x3, x2, x1: F.grid_sample(
        x2, t.linspace(-1, 1, 50).reshape(2, 5, 5, 1).expand(2, 5, 5, 2).contiguous(),
        mode="nearest", align_corners=True),
    "topk_dim1": lambda F, t, x3, x2, x1: t.topk(x3, 2, dim=1)[0],
    "topk_dim1_indices": lambda F, t, x3, x2, x1: t.topk(x3, 2, dim=1)[1],
    "index_select_dim1": lambda F, t, x3, x2, x1: x3.index_select(1, t.tensor([0, 2])),
    "advanced_index_last": lambda F, t, x3, x2, x1: x2[:, :, [1, 3]],
    "advanced_index_mid": lambda F, t, x3, x2, x1: x2[:, [0, 3, 3]],
    "repeat_interleave": lambda F, t, x3, x2, x1: x3.repeat_interleave(2, dim=1),
}


@pytest.mark.parametrize("name", sorted(LAYOUT_CASES))
def test_results_are_contiguous_as_torch_and_view_works(name):
    f = LAYOUT_CASES[name]
    d3, t3 = _pair((2, 4, 6, 6, 6), 1)
    d2, t2 = _pair((2, 4, 8, 8), 2)
    d1, t1 = _pair((2, 4, 12), 3)
    theirs = f(torch.nn.functional, torch, t3, t2, t1)
    ours = f(descent.nn.functional, descent, d3, d2, d1)
    assert ours.is_contiguous() == theirs.is_contiguous()
    assert ours.stride() == theirs.stride()
    flat = ours.view(ours.shape[0], -1)  # raised before for the swapped layouts
    np.testing.assert_allclose(flat.numpy(), theirs.reshape(theirs.shape[0], -1).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_avg_pool3d_gradient_through_the_contiguous_copy():
    d, t = _pair((2, 3, 4, 6, 6), 4)
    d.requires_grad_(True)
    t.requires_grad_(True)
    w = np.random.default_rng(5).standard_normal((2, 3 * 2 * 3 * 3)).astype(np.float32)
    (descent.nn.functional.avg_pool3d(d, 2).view(2, -1) * descent.tensor(w)).sum().backward()
    (torch.nn.functional.avg_pool3d(t, 2).view(2, -1) * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(d.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-7)


# hypernet_lazy: a lazy module's parameters were plain Parameters before the dry run, so
# `any(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters())`, the
# check scripts make before building the optimizer, was False where PyTorch's is True.
@pytest.mark.parametrize("make", [
    lambda nn: nn.LazyLinear(3),
    lambda nn: nn.LazyLinear(3, bias=False),
    lambda nn: nn.LazyConv2d(4, 3),
    lambda nn: nn.LazyConvTranspose1d(4, 3),
    lambda nn: nn.LazyBatchNorm1d(),
    lambda nn: nn.LazyInstanceNorm2d(),
], ids=["linear", "linear_nobias", "conv2d", "convT1d", "bn1d", "in2d"])
def test_lazy_parameters_are_uninitialized_until_the_dry_run(make):
    shapes = {"LazyLinear": (2, 5), "LazyConv2d": (2, 3, 6, 6), "LazyConvTranspose1d": (2, 3, 6),
              "LazyBatchNorm1d": (4, 5), "LazyInstanceNorm2d": (2, 3, 6, 6)}

    def kinds(lib, nn):
        m = make(nn)
        before = [(n, type(p).__name__,
                   isinstance(p, nn.parameter.UninitializedParameter),
                   isinstance(p, nn.Parameter)) for n, p in m.named_parameters()]
        m(lib.zeros(shapes[type(m).__name__]))
        after = [(n, type(p).__name__, isinstance(p, nn.parameter.UninitializedParameter),
                  tuple(p.shape)) for n, p in m.named_parameters()]
        return before, after, type(m).__name__

    assert kinds(descent, descent.nn) == kinds(torch, torch.nn)


def test_lazy_module_trains_after_materialising():
    m = descent.nn.LazyLinear(2)
    m(descent.zeros(1, 3))
    opt = descent.optim.SGD(m.parameters(), lr=0.1)
    m(descent.ones(4, 3)).sum().backward()
    opt.step()
    assert type(m.weight) is descent.nn.Parameter and m.weight.grad.shape == (2, 3)
