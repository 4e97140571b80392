"""Eager's two-thread sites and attention's output layout (session 28, helper-207).

At two BLAS threads eager attention (forward and backward) and GELU's forward run in two halves
at once, the second on descent.compile's split worker (descent/halves.py): the same per-matrix BLAS
calls, softmax rows and elementwise loops as the whole call, so the same bits. Attention's
output is laid out as its query's heads (PyTorch's CPU attention does the same), so nanoGPT's
y.transpose(1, 2).reshape(B, T, C) is a view. These tests force the two-thread check (the
machine's BLAS may run one thread) and compare with the whole call bit for bit, check the
halves ran, where they must not run, the output's strides against PyTorch's, gradients
(float32 vs PyTorch, float64 vs finite differences) and a GPT trained a few AdamW steps.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent
import descent.nn.functional as F
from descent import halves
from descent.models import GPT, GPTConfig
from descent.ops import attention
from descent.optim import adam, clip_grad_norm_


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view(np.int32 if a.dtype == np.float32 else np.int64)


@pytest.fixture
def two(monkeypatch):
    """Two BLAS threads on two cores (forced); returns the list of halves.run calls."""
    calls: list = []
    orig = halves.run

    def run(parts, fn):
        calls.append(parts)
        return orig(parts, fn)

    monkeypatch.setattr(halves, "two_blas_threads", lambda: True)
    monkeypatch.setattr(halves, "run", run)
    monkeypatch.setitem(halves.EAGER_HALVES, "on", True)
    return calls


def _heads(x, nh):
    """nanoGPT's q, k, v: split(C) -> view(B, T, nh, hs) -> transpose(1, 2)."""
    b, t, c3 = x.shape
    c = c3 // 3
    return [p.view(b, t, nh, c // nh).transpose(1, 2) for p in x.split(c, dim=2)]


def _attention(xv, gv, causal=True, on=True):
    """Output, its strides and the input's gradient of attention over the heads of xv."""
    halves.EAGER_HALVES["on"] = on
    try:
        x = descent.tensor(xv, requires_grad=True)
        q, k, v = _heads(x * 1.0, 4)  # of a node, as c_attn's output: the engine's _Slices
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        y.backward(descent.tensor(gv))
        return y.numpy().copy(), y.stride(), x.grad.numpy().copy()
    finally:
        halves.EAGER_HALVES["on"] = True


@pytest.mark.parametrize("causal", [True, False])
def test_attention_halves_bits(two, causal):
    rng = np.random.default_rng(3)
    xv = rng.standard_normal((12, 64, 384)).astype(np.float32)
    gv = rng.standard_normal((12, 4, 64, 32)).astype(np.float32)
    gv.reshape(-1)[::11] = -0.0
    gv.reshape(-1)[5::97] = np.nan
    gv.reshape(-1)[7::89] = np.inf
    y1, _, g1 = _attention(xv, gv, causal, on=False)
    assert not two
    y2, _, g2 = _attention(xv, gv, causal, on=True)
    # forward, backward, the qkv gradient's assembly (autograd_backward._heads_in_halves)
    assert len(two) == 3 and all(parts == ((0, 6), (6, 12)) for parts in two)
    np.testing.assert_array_equal(_bits(y1), _bits(y2))
    np.testing.assert_array_equal(_bits(g1), _bits(g2))


def test_attention_halves_not_where_they_must_not(two, monkeypatch):
    rng = np.random.default_rng(4)
    xv = rng.standard_normal((12, 64, 384)).astype(np.float32)
    x = descent.tensor(xv)
    q, k, v = _heads(x, 4)
    mask = descent.tensor(rng.random((64, 64)) > 0.3)
    F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # a mask: whole
    F.scaled_dot_product_attention(q[:1], k[:1], v[:1], is_causal=True)  # batch of one
    F.scaled_dot_product_attention(q[:, :, :8], k[:, :, :8], v[:, :, :8])  # few scores
    F.scaled_dot_product_attention(q.double(), k.double(), v.double())  # float64
    assert not two
    monkeypatch.setattr(halves, "two_blas_threads", lambda: False)  # pinned / one BLAS thread
    F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert not two
    monkeypatch.setattr(halves, "two_blas_threads", lambda: True)
    F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert len(two) == 1


def _gelu_values(n, seed):
    w = (np.random.default_rng(seed).standard_normal(n) * 3).astype(np.float32)
    w[::7] = -0.0
    w[3::29] = np.nan
    w[5::31] = -np.inf
    w[8::37] = np.inf
    w[6::17] = np.finfo(np.float32).smallest_subnormal * -3
    w[9::23] = 1e30
    return w


@pytest.mark.parametrize("n", [1 << 17, (1 << 17) + 4096 * 3 + 5, 393_216])
def test_gelu_forward_halves_bits(two, n):
    xv = _gelu_values(n, n).reshape(-1, 1 if n % 2 else 128)
    gv = _gelu_values(n, n + 1).reshape(xv.shape)
    out = {}
    for on in (False, True):
        halves.EAGER_HALVES["on"] = on
        x = descent.tensor(xv, requires_grad=True)
        y = F.gelu(x)
        y.backward(descent.tensor(gv))
        out[on] = (y.numpy().copy(), x.grad.numpy().copy())
    halves.EAGER_HALVES["on"] = True
    assert len(two) == 1
    (i0, h), (h2, end) = two[0]
    assert i0 == 0 and h == h2 and end == n and h % halves.GRAIN == 0
    for a, b in zip(out[False], out[True]):
        np.testing.assert_array_equal(_bits(a), _bits(b))


def test_gelu_small_runs_whole(two):
    F.gelu(descent.randn(64, 512, requires_grad=True))  # 32k values: under MIN_VALUES
    F.gelu(descent.randn(64, 4096, dtype=descent.float64, requires_grad=True))  # float64
    assert not two


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["heads", "contiguous", "transposed"])
def test_attention_output_strides_as_torch(layout, dtype):
    rng = np.random.default_rng(5)
    if layout == "heads":
        xv = rng.standard_normal((3, 16, 96)).astype(dtype)
        tq = [p.view(3, 16, 4, 8).transpose(1, 2) for p in torch.from_numpy(xv).split(32, 2)]
        dq = _heads(descent.tensor(xv), 4)
    elif layout == "contiguous":
        xv = rng.standard_normal((3, 3, 4, 16, 8)).astype(dtype)
        tq = list(torch.from_numpy(xv))
        dq = list(descent.tensor(xv))
    else:
        xv = rng.standard_normal((3, 3, 16, 4, 8)).astype(dtype)
        tq = [t.transpose(1, 2) for t in torch.from_numpy(xv)]
        dq = [t.transpose(1, 2) for t in descent.tensor(xv)]
    for causal in (False, True):
        ty = torch.nn.functional.scaled_dot_product_attention(*tq, is_causal=causal)
        dy = F.scaled_dot_product_attention(*dq, is_causal=causal)
        assert dy.stride() == ty.stride(), (layout, causal)
        np.testing.assert_allclose(
            dy.numpy(), ty.numpy(), rtol=2e-6 if dtype == "float32" else 1e-12, atol=1e-6
        )
        joined = dy.transpose(1, 2).reshape(3, 16, 32)
        if layout != "contiguous":  # the heads' join is a view of the output
            assert np.shares_memory(joined.numpy(), dy.numpy())


def test_attention_heads_layout_gradients():
    rng = np.random.default_rng(6)
    xv = rng.standard_normal((2, 8, 48)).astype(np.float32)
    gv = rng.standard_normal((2, 8, 48)).astype(np.float32)
    x = descent.tensor(xv, requires_grad=True)
    y = (
        F.scaled_dot_product_attention(*_heads(x, 2), is_causal=True)
        .transpose(1, 2)
        .reshape(2, 8, 16)
    )
    (y * descent.tensor(gv[..., :16])).sum().backward()
    tx = torch.tensor(xv, requires_grad=True)
    tq = [p.view(2, 8, 2, 8).transpose(1, 2) for p in tx.split(16, 2)]
    ty = (
        torch.nn.functional.scaled_dot_product_attention(*tq, is_causal=True)
        .transpose(1, 2)
        .reshape(2, 8, 16)
    )
    (ty * torch.tensor(gv[..., :16])).sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)

    def f(x):
        return (
            F.scaled_dot_product_attention(*_heads(x, 2), is_causal=True)
            .transpose(1, 2)
            .reshape(2, 8, 16)
        )

    x64 = descent.tensor(xv.astype(np.float64), requires_grad=True)
    assert descent.autograd.gradcheck(f, (x64,))


def _gpt_steps(on, steps=3):
    halves.EAGER_HALVES["on"] = on
    try:
        descent.manual_seed(7)
        cfg = GPTConfig(
            vocab_size=65, block_size=64, n_layer=1, n_head=4, n_embd=128, dropout=0.0, bias=False
        )
        m = GPT(cfg)
        opt = m.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
        rng = np.random.default_rng(8)
        losses = []
        for _ in range(steps):
            x = descent.tensor(rng.integers(0, 65, size=(12, 64)))
            y = descent.tensor(rng.integers(0, 65, size=(12, 64)))
            opt.zero_grad(set_to_none=True)
            loss = m(x, y)[1]
            loss.backward()
            clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
        return losses, [p.detach().numpy().copy() for p in m.parameters()]
    finally:
        halves.EAGER_HALVES["on"] = True


def test_gpt_adamw_steps_bitwise(two):
    l0, p0 = _gpt_steps(False)
    assert not two
    l1, p1 = _gpt_steps(True)
    # per step: attention forward and backward, GELU's forward, the qkv gradient's assembly
    assert len(two) == 3 * 4
    assert l0 == l1
    for a, b in zip(p0, p1):
        np.testing.assert_array_equal(_bits(a), _bits(b))


def test_gpt_attention_join_is_a_view():
    """nanoGPT's heads' join copies nothing: the attention output is laid out as (B, T, C)."""
    seen = []
    orig = attention._output

    def spy(q, p, v):
        o = orig(q, p, v)
        seen.append(o is not None)
        return o

    attention._output = spy
    try:
        _gpt_steps(True, steps=1)
    finally:
        attention._output = orig
    assert seen == [True]


# -- Adam / AdamW: the gradients read where they are ------------------------------------------

_FROM_GRADS = adam._step_from_grads  # before any test patches it


def _adam_run(cls, steps, seed=9, from_grads=True, monkeypatch=None, **kw):
    """Parameters, state and the calls of the fast path after `steps` steps of a 3-layer MLP
    (~100k parameters in the decayed group) on fixed gradients."""
    calls = []
    orig = _FROM_GRADS

    def spy(opt, group, buf):
        ok = orig(opt, group, buf)
        calls.append(ok)
        return ok

    monkeypatch.setattr(adam, "_step_from_grads", spy if from_grads else (lambda *a: False))
    rng = np.random.default_rng(seed)
    shapes = [(256, 200), (256,), (128, 256), (128,), (10, 128)]
    ps = [
        descent.nn.Parameter(descent.tensor(rng.standard_normal(s).astype(np.float32)))
        for s in shapes
    ]
    opt = cls([{"params": ps[0::2], **kw}, {"params": ps[1::2], "weight_decay": 0.0}], lr=1e-2)
    for t in range(steps):
        for p in ps:
            g = rng.standard_normal(p.shape).astype(np.float32)
            g.reshape(-1)[:: 13 + t] = -0.0
            p.grad = descent.tensor(g)
        opt.step()
    st = [opt.state[p][k].numpy().copy() for p in ps for k in ("exp_avg", "exp_avg_sq", "step")]
    return [p.detach().numpy().copy() for p in ps], st, calls


@pytest.mark.parametrize(
    "cls, kw",
    [
        (descent.optim.AdamW, {"weight_decay": 0.1}),
        (descent.optim.Adam, {"weight_decay": 0.01}),
        (descent.optim.Adam, {"maximize": True}),
        (descent.optim.AdamW, {"weight_decay": 1.0, "betas": (0.3, 0.9)}),
    ],
)
@pytest.mark.parametrize("threads2", [False, True])
def test_adam_from_grads_bits(two, monkeypatch, cls, kw, threads2):
    if not threads2:
        monkeypatch.setattr(halves, "two_blas_threads", lambda: False)
    p0, s0, c0 = _adam_run(cls, 4, from_grads=False, monkeypatch=monkeypatch, **kw)
    assert not two
    p1, s1, c1 = _adam_run(cls, 4, monkeypatch=monkeypatch, **kw)
    # the first step creates the state (the flat path); the small group stays on it
    assert c1 == [False, False] + [True, False] * 3
    assert not two  # 85k values: below HALVES_MIN
    for a, b in zip(p0 + s0, p1 + s1):
        np.testing.assert_array_equal(_bits(a), _bits(b))


def test_adam_from_grads_halves(two, monkeypatch):
    monkeypatch.setattr(adam, "HALVES_MIN", 1 << 16)
    monkeypatch.setattr(halves, "MIN_VALUES", 1 << 16)
    p0, s0, _ = _adam_run(
        descent.optim.AdamW, 3, from_grads=False, monkeypatch=monkeypatch, weight_decay=0.1
    )
    p1, s1, c1 = _adam_run(descent.optim.AdamW, 3, monkeypatch=monkeypatch, weight_decay=0.1)
    assert c1 == [False, False, True, False, True, False] and len(two) == 2
    (a0, a1), (b0, b1) = two[0]
    assert a0 == 0 and a1 == b0 and b1 == 3  # runs of whole parameters
    for a, b in zip(p0 + s0, p1 + s1):
        np.testing.assert_array_equal(_bits(a), _bits(b))


def test_adam_from_grads_falls_back(monkeypatch):
    _, _, calls = _adam_run(descent.optim.Adam, 3, monkeypatch=monkeypatch, amsgrad=True)
    assert not any(calls)

    rng = np.random.default_rng(1)
    p = descent.nn.Parameter(descent.tensor(rng.standard_normal((300, 300)).astype(np.float32)))
    opt = descent.optim.AdamW([p], lr=1e-3)
    seen = []
    orig = _FROM_GRADS
    monkeypatch.setattr(adam, "_step_from_grads", lambda *a: seen.append(orig(*a)) or seen[-1])
    for g in (
        rng.standard_normal((300, 300)),
        rng.standard_normal((300, 300)),
        rng.standard_normal((300, 300)).T,
    ):
        p.grad = descent.tensor(g.astype(np.float32))  # the last one is transposed (F order)
        opt.step()
    assert seen == [False, True, False]


def test_adamw_from_grads_vs_torch():
    rng = np.random.default_rng(2)
    w = [rng.standard_normal(s).astype(np.float32) for s in ((300, 256), (256,))]
    dp = [descent.nn.Parameter(descent.tensor(a.copy())) for a in w]
    tp = [torch.nn.Parameter(torch.tensor(a.copy())) for a in w]
    dopt = descent.optim.AdamW(dp, lr=1e-2, weight_decay=0.1)
    topt = torch.optim.AdamW(tp, lr=1e-2, weight_decay=0.1)
    for _ in range(5):
        gs = [rng.standard_normal(a.shape).astype(np.float32) for a in w]
        for p, q, g in zip(dp, tp, gs):
            p.grad, q.grad = descent.tensor(g), torch.tensor(g)
        dopt.step()
        topt.step()
    for p, q in zip(dp, tp):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-6, atol=1e-6)
