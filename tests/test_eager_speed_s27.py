"""GELU's backward into its saved derivative (session 27, helper-200).

Eager's exact float32 GELU keeps the derivative d = Phi(x) + x phi(x) that its forward kernel
wrote (`Gelu.d`), so its backward is gy * d. When the pass frees the node's saved values right
after its backward (no retain_graph) and nothing watches the pass (no create_graph, backward
op hooks, pass hooks, post-hooks on the node), the engine says so (`_backward_state.consume`)
and the product goes into d itself instead of a fresh array: the same multiply, so the same
bits. These tests check that the path is taken where it may be, is not taken where d must
survive or be seen, and gives the fresh path's bits (-0.0, NaN, inf and subnormal values
included), and that a GPT trained a few AdamW steps ends bitwise where the fresh path ends.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent
import descent.nn.functional as F
from descent.autograd import _backward_state
from descent.models import GPT, GPTConfig
from descent.ops.activation import Gelu
from descent.optim import clip_grad_norm_


def _bits(a):
    return np.ascontiguousarray(a).view(np.int32)


def _values(shape, seed):
    """float32 values with -0.0, NaN, +-inf, subnormals and large values among them."""
    w = (np.random.default_rng(seed).standard_normal(shape) * 3).astype(np.float32)
    flat = w.reshape(-1)
    flat[::7] = -0.0
    flat[3::29] = np.nan
    flat[5::31] = -np.inf
    flat[8::37] = np.inf
    flat[6::17] = np.finfo(np.float32).smallest_subnormal * -3
    flat[9::23] = 1e30
    return w


@pytest.fixture
def into_d(monkeypatch):
    """Record, per GELU backward, whether its gradient is the saved d array itself."""
    seen: list[bool] = []
    orig = Gelu.backward

    def backward(self, gy, ops):
        d = self.d
        out = orig(self, gy, ops)
        seen.append(d is not None and out is d)
        return out

    monkeypatch.setattr(Gelu, "backward", backward)
    return seen


def _grad(xv, gv, **backward_kwargs):
    x = descent.tensor(xv, requires_grad=True)
    y = F.gelu(x * 1.0)  # a node before GELU: its gradient goes on through the engine
    y.backward(descent.tensor(gv), **backward_kwargs)
    return x.grad.numpy().copy()


def test_plain_pass_writes_into_d(into_d):
    _grad(_values((6, 50), 0), _values((6, 50), 1))
    assert into_d == [True]
    assert _backward_state.consume is False  # restored after the pass


def test_same_bits_as_fresh_product(into_d):
    xv, gv = _values((8, 96), 2), _values((8, 96), 3)
    fast = _grad(xv, gv)
    kept = _grad(xv, gv, retain_graph=True)  # d must survive: the fresh product
    assert into_d == [True, False]
    assert np.array_equal(_bits(fast), _bits(kept))
    # and the definition: gy * (Phi(x) + x phi(x)) from the forward kernel's d
    x = descent.tensor(xv, requires_grad=True)
    d = F.gelu(x).grad_fn.d.copy()
    assert np.array_equal(_bits(fast), _bits(np.multiply(gv, d)))


def test_retain_graph_keeps_d_for_a_second_backward(into_d):
    xv, gv = _values((4, 33), 4), _values((4, 33), 5)
    x = descent.tensor(xv, requires_grad=True)
    y = F.gelu(x)
    d0 = y.grad_fn.d.copy()
    y.backward(descent.tensor(gv), retain_graph=True)
    first = x.grad.numpy().copy()
    assert np.array_equal(_bits(y.grad_fn.d), _bits(d0))
    y.backward(descent.tensor(gv))  # the last pass frees d: it may write into it
    assert into_d == [False, True]
    assert np.array_equal(_bits(x.grad.numpy()), _bits(first + first))


def test_watched_passes_keep_the_fresh_product(into_d):
    xv, gv = _values((5, 40), 6), _values((5, 40), 7)
    ref = _grad(xv, gv, retain_graph=True)
    # a post-hook on the GELU node sees its gradient before the release
    x = descent.tensor(xv, requires_grad=True)
    y = F.gelu(x)
    seen = []
    y.grad_fn.register_hook(lambda gxs, gys: seen.append(gxs[0].numpy().copy()))
    d0 = y.grad_fn.d
    y.backward(descent.tensor(gv))
    assert np.array_equal(_bits(x.grad.numpy()), _bits(ref))
    assert np.array_equal(_bits(seen[0]), _bits(ref))
    assert not np.shares_memory(seen[0], d0)
    # create_graph: the recorded formula, not the saved d
    x = descent.tensor(xv.astype(np.float64), requires_grad=True)
    y = F.gelu(x)
    (g,) = descent.autograd.grad(y.sum(), x, create_graph=True)
    assert g.requires_grad
    assert into_d == [False, False, False]  # retain_graph, the post-hook, create_graph


def test_float32_gradient_matches_pytorch():
    xv = (np.random.default_rng(8).standard_normal((7, 64)) * 3).astype(np.float32)
    gv = np.random.default_rng(9).standard_normal((7, 64)).astype(np.float32)
    ours = _grad(xv, gv)
    tx = torch.tensor(xv, requires_grad=True)
    torch.nn.functional.gelu(tx).backward(torch.tensor(gv))
    np.testing.assert_allclose(ours, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_float64_gradient_matches_finite_differences():
    rng = np.random.default_rng(10)
    xv, gv = rng.standard_normal((3, 11)) * 2, rng.standard_normal((3, 11))
    ours = _grad(xv, gv)
    h = 1e-6
    fd = (_gelu64(xv + h) - _gelu64(xv - h)) / (2 * h) * gv
    np.testing.assert_allclose(ours, fd, rtol=1e-7, atol=1e-9)


def _gelu64(x):
    from math import erf

    return x * 0.5 * (1 + np.vectorize(erf)(x / np.sqrt(2)))


def _train(retain: bool, steps: int = 3):
    descent.manual_seed(7)
    cfg = GPTConfig(vocab_size=17, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.0,
                    bias=False)  # fmt: skip
    model = GPT(cfg)
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    rng = np.random.default_rng(11)
    losses = []
    for _ in range(steps):
        x = descent.tensor(rng.integers(0, 17, (3, 8)))
        y = descent.tensor(rng.integers(0, 17, (3, 8)))
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)[1]
        loss.backward(retain_graph=retain)
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    return losses, [p.numpy().copy() for p in model.parameters()]


def test_gpt_steps_bitwise_as_the_fresh_path(into_d):
    fast_losses, fast = _train(retain=False)
    assert all(into_d) and len(into_d) == 6  # 2 layers x 3 steps, all into d
    into_d.clear()
    ref_losses, ref = _train(retain=True)  # retain_graph: the fresh product everywhere
    assert not any(into_d)
    assert fast_losses == ref_losses
    assert len(fast) == len(ref)
    for a, b in zip(fast, ref, strict=True):
        assert np.array_equal(_bits(a), _bits(b))
