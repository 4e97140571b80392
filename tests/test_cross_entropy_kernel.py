"""Float32 cross-entropy on the CPU runs numba kernels (`kernels/_cpu_jit.ce_fwd32/ce_bwd32`,
the CUDA kernels' contract: per-row losses and (max, log-sum-exp), no saved probabilities):
values and gradients against PyTorch, across reductions, ignored rows, label smoothing, a
GPT-2-sized vocabulary, huge and infinite logits and empty batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds
import descent.nn.functional as F
from descent.kernels import cpu

pytestmark = pytest.mark.skipif(not cpu.enabled(), reason="numba kernels off")


def _both(x, t, **kw):
    xd = ds.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ld = F.cross_entropy(xd, ds.tensor(t), **kw)
    lt = torch.nn.functional.cross_entropy(xt, torch.tensor(t), **kw)
    gy = np.random.default_rng(5).standard_normal(ld.shape).astype(np.float32)
    ld.backward(ds.tensor(gy))
    lt.backward(torch.tensor(gy))
    return ld, lt, xd.grad.numpy(), xt.grad.numpy()


def test_the_kernel_runs_and_keeps_no_probabilities(monkeypatch):
    from descent.ops.loss import SoftmaxCrossEntropy

    seen = {}
    orig = SoftmaxCrossEntropy._fused_forward

    def spy(self, xp, x, k):
        out = orig(self, xp, x, k)
        seen["probs"], seen["lse"] = self.probs, self.lse
        return out

    monkeypatch.setattr(SoftmaxCrossEntropy, "_fused_forward", spy)
    x = np.random.default_rng(0).standard_normal((6, 7)).astype(np.float32)
    F.cross_entropy(ds.tensor(x, requires_grad=True), ds.tensor(np.arange(6)))
    assert seen["probs"] is None and seen["lse"].shape == (6, 2)
    # float64 keeps the NumPy path (exact, for gradient checks)
    seen.clear()
    F.cross_entropy(ds.tensor(x.astype(np.float64)), ds.tensor(np.arange(6)))
    assert not seen


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_matches_torch(reduction, smoothing):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((40, 65)) * 3).astype(np.float32)
    t = rng.integers(0, 65, 40)
    t[[3, 17]] = -100  # ignored rows
    ld, lt, gd, gt = _both(x, t, reduction=reduction, label_smoothing=smoothing)
    assert ld.dtype == ds.float32
    np.testing.assert_allclose(ld.numpy(), lt.detach().numpy(), rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(gd, gt, rtol=1e-5, atol=1e-7)
    assert not gd[[3, 17]].any()  # ignored rows: zero gradient


def test_large_vocabulary_stays_accurate():
    """Row sums in float64: a 50,257-way softmax keeps float32 accuracy."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 50257)).astype(np.float32)
    t = rng.integers(0, 50257, 8)
    ld, _, gd, _ = _both(x, t)
    x64 = x.astype(np.float64)
    lse = np.log(np.exp(x64 - x64.max(1, keepdims=True)).sum(1)) + x64.max(1)
    ref = np.mean(lse - x64[np.arange(8), t])
    assert abs(float(ld.item()) - ref) <= 4e-7 * abs(ref)


def test_extreme_logits_and_edge_batches():
    x = np.array([[1e4, -1e4, 1e4], [0.0, -np.inf, 1.0], [5.0, 5.0, 5.0]], np.float32)
    t = np.array([0, 2, 1])
    ld, lt, gd, gt = _both(x, t)
    np.testing.assert_allclose(ld.numpy(), lt.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(gd, gt, atol=1e-7)
    # every row ignored: nan (PyTorch's 0 / 0), zero gradients
    ld, lt, gd, gt = _both(x, np.array([-100, -100, -100]))
    assert np.isnan(ld.item()) and np.isnan(lt.item())
    assert not gd.any()
    # an empty batch
    x0 = np.zeros((0, 4), np.float32)
    ld, lt, gd, gt = _both(x0, np.zeros(0, np.int64), reduction="sum")
    assert ld.item() == lt.item() == 0.0 and gd.shape == (0, 4)
    # nan logits propagate
    xn = x.copy()
    xn[1, 0] = np.nan
    ld, lt, _, _ = _both(xn, t, reduction="none")
    np.testing.assert_array_equal(np.isnan(ld.numpy()), np.isnan(lt.detach().numpy()))
