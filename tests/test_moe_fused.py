"""The fused experts' op of nn.MoE (ops/moe.py): the composite form's bits, finite differences,
the cases that keep the composite form, and descent.compile replaying a mixture of experts."""

from __future__ import annotations

import numpy as np
import pytest

import descent
from descent import nn
from descent.autograd import gradcheck
from descent.ops.moe import LoadBalance, MoEExperts, route


def _moe(fused, act="gelu_tanh", k=2, e=4, dtype=np.float32, seed=0):
    descent.manual_seed(seed)
    m = nn.MoE(16, 24, e, k, activation=act, fused=fused)
    return m.double() if dtype == np.float64 else m


def _run(m, x_np, starve=None):
    if starve is not None:  # positive inputs and a negative router row: never chosen
        x_np = np.abs(x_np) + 0.1
        with descent.no_grad():
            w = m.router.linear.weight
            w.copy_(descent.tensor(np.abs(w.numpy())))
            w[starve] = -1.0
    x = descent.tensor(x_np, requires_grad=True)
    y = m(x)
    loss = (y * y).sum() + m.last_aux["load_balance"] + m.last_aux["router_z"]
    loss.backward()
    grads = {n: None if p.grad is None else p.grad.numpy() for n, p in m.named_parameters()}
    return y.numpy(), x.grad.numpy(), grads, m.last_stats, loss.numpy()


@pytest.mark.parametrize("act", ["gelu_tanh", "silu", "relu"])
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_equals_composite_bitwise(act, k, dtype):
    x = np.random.default_rng(1).standard_normal((3, 20, 16)).astype(dtype)
    a = _run(_moe(True, act, k, dtype=dtype), x)
    b = _run(_moe(False, act, k, dtype=dtype), x)
    for u, v in zip(a[:2], b[:2]):
        assert u.dtype == dtype
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(a[4], b[4])
    assert a[2].keys() == b[2].keys()
    for name in a[2]:
        np.testing.assert_array_equal(a[2][name], b[2][name], err_msg=name)
    np.testing.assert_array_equal(a[3].tokens_per_expert, b[3].tokens_per_expert)
    assert a[3].router_entropy == b[3].router_entropy


def test_starved_expert_zero_gradient_fused_none_composite():
    x = np.random.default_rng(2).standard_normal((40, 16)).astype(np.float32)
    a = _run(_moe(True, k=2), x, starve=3)
    b = _run(_moe(False, k=2), x, starve=3)
    assert a[3].tokens_per_expert[3] == 0 and b[3].tokens_per_expert[3] == 0
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    for name, g in a[2].items():
        if name.startswith("experts.3."):
            assert b[2][name] is None and g is not None and not g.any(), name
        else:
            np.testing.assert_array_equal(g, b[2][name], err_msg=name)


@pytest.mark.parametrize("k", [2, 3])
def test_dropout_fused_draws_the_composites_masks(monkeypatch, k):
    """Active dropout (p = 0.5, every expert) runs the fused op with one (N*k, D) mask drawn in
    the composite form's order (expert after expert): outputs, gradients (a starved expert's
    zeros there, None in the composite form) and the generator's state after bitwise the
    composite's, over two steps. p = 0.5 zeros many elements of every slot of a token: their
    sum is +0.0 in the composite form (NumPy's sum starts from +0.0). Before: the composite
    form (MoEExperts did not run)."""
    drops = []
    orig = MoEExperts.forward

    def spy(self, *a):
        drops.append(getattr(self, "drop", None) is not None)
        return orig(self, *a)

    monkeypatch.setattr(MoEExperts, "forward", spy)
    x_np = np.abs(np.random.default_rng(7).standard_normal((24, 16)).astype(np.float32)) + 0.1
    runs = []
    for fused in (True, False):
        descent.manual_seed(0)
        m = nn.MoE(16, 24, 4, k, dropout=0.5, fused=fused)
        with descent.no_grad():  # expert 3 never chosen (positive inputs, negative router row)
            w = m.router.linear.weight
            w.copy_(descent.tensor(np.abs(w.numpy())))
            w[3] = -1.0
        x = descent.tensor(x_np, requires_grad=True)
        out = []
        for _ in range(2):
            y = m(x)
            ((y * y).sum() + m.last_aux["load_balance"]).backward()
            out.append(y.numpy().tobytes())
        out += [x.grad.numpy().tobytes(), descent.rand(3).numpy().tobytes()]
        out += [None if q.grad is None or not q.grad.numpy().any() else q.grad.numpy().tobytes()
                for q in m.parameters()]  # fmt: skip
        runs.append(out)
    assert drops == [True, True]
    assert runs[0] == runs[1]


def test_op_gradients_match_finite_differences_float64():
    rng = np.random.default_rng(3)
    n, d, h, e, k = 7, 5, 6, 3, 2
    x = descent.tensor(rng.standard_normal((n, d)), requires_grad=True)
    # Well separated probabilities: a small step never changes the routing.
    p = np.stack([rng.permutation([0.6, 0.3, 0.1]) for _ in range(n)])
    probs = descent.tensor(p, requires_grad=True)
    ws = []
    for _ in range(e):
        for shape in ((h, d), (h, d), (d, h)):
            ws.append(descent.tensor(rng.standard_normal(shape) * 0.5, requires_grad=True))
    for act in ("gelu_tanh", "silu", "relu"):

        def f(x, probs, *ws, act=act):
            return MoEExperts.apply(x, probs, *ws, k=k, act=act)

        assert gradcheck(f, (x, probs, *ws), eps=1e-6, atol=1e-6, rtol=1e-5)

    def lb(probs):
        return LoadBalance.apply(probs, k=k)

    assert gradcheck(lb, (probs,), eps=1e-6, atol=1e-7)


def test_route_is_stable_top_k_and_load_balance_values():
    p = np.array([[0.25, 0.25, 0.5, 0.0], [0.1, 0.2, 0.3, 0.4]], np.float32)
    np.testing.assert_array_equal(route(p, 2), [[2, 0], [3, 2]])
    # f = (1/4, 0, 2/4, 1/4) of the 4 assignments; P = mean rows; E sum f P
    val = LoadBalance.apply(descent.tensor(p), k=2).numpy()
    f = np.array([0.25, 0.0, 0.5, 0.25], np.float32)
    assert val.dtype == np.float32
    np.testing.assert_allclose(val, 4 * (f * p.mean(0)).sum(), rtol=1e-6)
    empty = LoadBalance.apply(descent.zeros(0, 4), k=2)
    assert empty.shape == () and empty.item() == 0.0


def test_empty_batch_runs():
    m = _moe(True)
    x = descent.zeros(0, 16, requires_grad=True)
    y = m(x)
    assert tuple(y.shape) == (0, 16)
    y.sum().backward()
    assert tuple(x.grad.shape) == (0, 16)


def test_create_graph_needs_the_composite_form():
    x_np = np.random.default_rng(4).standard_normal((6, 16))
    m = _moe(True, dtype=np.float64)
    x = descent.tensor(x_np, requires_grad=True)
    with pytest.raises(RuntimeError, match="create_graph"):
        descent.autograd.grad(m(x).sum(), [x], create_graph=True)
    m = _moe(False, dtype=np.float64)
    x = descent.tensor(x_np, requires_grad=True)
    (gx,) = descent.autograd.grad((m(x) ** 2).sum(), [x], create_graph=True)
    (ggx,) = descent.autograd.grad(gx.sum(), [x])
    assert np.isfinite(ggx.numpy()).all()


def test_hooks_bias_dropout_and_dtype_keep_the_composite_form(monkeypatch):
    calls = []
    orig = MoEExperts.forward

    def spy(self, *a):
        calls.append(1)
        return orig(self, *a)

    monkeypatch.setattr(MoEExperts, "forward", spy)
    x = descent.randn(5, 16)
    m = _moe(True)
    m(x)
    assert len(calls) == 1
    seen = []
    h = m.experts[1].linear_v.register_forward_hook(lambda mod, i, o: seen.append(o.shape))
    m(x)
    assert len(calls) == 1 and seen  # the hook ran: the composite form
    h.remove()
    m.experts[0].dropout.p = 0.5
    m(x)
    assert len(calls) == 1
    m.eval()
    m(x)  # dropout inactive in eval mode: fused again
    assert len(calls) == 2
    m = nn.MoE(16, 24, 4, 2, activation="gelu")  # exact GELU: the composite form
    m(x)
    assert len(calls) == 2


def test_compiled_moe_replays_and_last_stats_follow_each_step():
    def make():
        m = _moe(True)
        return m, descent.optim.AdamW(m.parameters(), lr=1e-2)

    def step_fn(m, opt):
        def step(x):
            opt.zero_grad(set_to_none=True)
            y = m(x)
            loss = (y * y).mean() + 0.01 * m.last_aux["load_balance"]
            loss.backward()
            opt.step()
            return loss

        return step

    (me, oe), (mc, oc) = make(), make()
    eager, compiled = step_fn(me, oe), descent.compile(step_fn(mc, oc))
    rng = np.random.default_rng(5)
    for _ in range(7):
        x = descent.tensor(rng.standard_normal((32, 16)).astype(np.float32))
        np.testing.assert_array_equal(eager(x).numpy(), compiled(x).numpy())
        # last_probs is set again by each replayed call; last_stats routes it as eager's did.
        np.testing.assert_array_equal(me.last_probs.numpy(), mc.last_probs.numpy())
        np.testing.assert_array_equal(me.last_aux["load_balance"].numpy(),
                                      mc.last_aux["load_balance"].numpy())  # fmt: skip
        se, sc = me.last_stats, mc.last_stats
        np.testing.assert_array_equal(se.tokens_per_expert, sc.tokens_per_expert)
        assert se.router_entropy == sc.router_entropy
    for (n, a), b in zip(me.named_parameters(), mc.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=n)
    assert compiled.stats["replays"] >= 4 and compiled.stats["fallbacks"] == 0, compiled.stats


def test_grok_fused_and_composite_take_the_same_adamw_steps():
    # The load-balancing loss's gradient reaches the router through LoadBalance's backward,
    # which must round as the composite form's chain (x E, x f, x 1/n) for the steps to agree.
    from descent.models import Grok, GrokConfig

    cfg = GrokConfig(vocab_size=48, block_size=16, n_layer=2, n_head=4, n_kv_head=2,
                     head_dim=8, n_embd=32, num_experts=4, num_selected_experts=2)  # fmt: skip
    rng = np.random.default_rng(6)
    batches = [(descent.tensor(rng.integers(0, 48, (3, 16))),
                descent.tensor(rng.integers(0, 48, (3, 16)))) for _ in range(4)]  # fmt: skip
    runs = []
    for fused in (True, False):
        descent.manual_seed(0)
        m = Grok(cfg)
        for moe in m.moe_layers():
            moe.fused = fused
        opt = m.configure_optimizers(0.1, 1e-2, (0.9, 0.99))
        losses = []
        for x, y in batches:
            _, loss = m(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert all(s.tokens_per_expert.min() > 0 for s in (q.last_stats for q in m.moe_layers()))
        runs.append((losses, [p.numpy().copy() for p in m.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


def _gelu_tanh_ref(a):
    """float64 gelu_tanh(a) and its derivative, with (1 + tanh u)/2 as a stable sigmoid."""
    u = np.sqrt(2 / np.pi) * (a + 0.044715 * a**3)
    s = 0.5 * (1 + np.tanh(u))
    neg = u < 0
    e = np.exp(2 * u[neg])
    s[neg] = e / (1 + e)  # no cancellation where tanh u -> -1
    du = np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * a**2)
    return a * s, s + a * 2 * s * (1 - s) * du


def test_gated_gelu_tanh_float32_kernel_accuracy_and_specials():
    from descent.kernels import cpu as kcpu
    from descent.ops.moe import gelu_tanh_gate, gelu_tanh_gate_backward

    if not kcpu.enabled():
        pytest.skip("CPU kernels off")
    a = np.concatenate([np.linspace(-12, 12, 200_001), [0.0, -0.0, 1e-30, -1e-30]])
    a = a.astype(np.float32)
    b = np.random.default_rng(7).uniform(0.5, 2.0, a.shape).astype(np.float32)
    gh = np.random.default_rng(8).uniform(-2.0, 2.0, a.shape).astype(np.float32)
    h, aux = gelu_tanh_gate(a, b)
    assert aux == ("k", None) and h.dtype == np.float32  # nothing saved for the backward
    ga, gb = gelu_tanh_gate_backward(a, b, aux, gh)
    g64, d64 = _gelu_tanh_ref(a.astype(np.float64))
    b64, gh64 = b.astype(np.float64), gh.astype(np.float64)
    # Relative to each value's own size, also where a << 0 and the value is tiny (NumPy's
    # 1 + tanh u form is 10x off at a = -5.4): within float32's conditioning there (u's
    # rounding, 6e-8 relative, times exp's 2|u|: 3e-6 at a = -5), a few ulp elsewhere; the
    # derivative's zero near a = -0.75 cancels (absolute 1e-7).
    normal = np.abs(a) <= 9.0  # beyond, values fall into float32's subnormals
    mid = np.abs(a) <= 2.0
    for name, got, ref in (("h", h, g64 * b64), ("gb", gb, gh64 * g64),
                           ("ga", ga, gh64 * b64 * d64)):  # fmt: skip
        zero = ref == 0  # a = +-0: exactly 0
        assert not got[zero].any(), name
        err = np.abs(got - ref) / np.where(zero, 1.0, np.abs(ref))
        # ga: the derivative Phi-like term and x phi-like term cancel near a = -0.75
        near_zero = np.abs(d64) < 0.05 if name == "ga" else np.zeros(a.shape, bool)
        assert (np.abs(got - ref) / np.abs(gh64 * b64))[near_zero].max(initial=0) < 2e-7, name
        ok = normal & ~near_zero
        assert err[ok & mid].max() < 1e-6, (name, err[ok & mid].max())
        u = np.abs(np.sqrt(2 / np.pi) * (a + 0.044715 * a.astype(np.float64) ** 3))
        bound = 2.5e-7 * (1 + 2 * u)  # the exponential's conditioning, 2|u| times u's rounding
        if name == "ga":  # plus the cancellation of the derivative's two terms
            bound = bound + 1e-7 / np.maximum(np.abs(d64), 1e-30)
        assert (err[ok] / bound[ok]).max() < 1, (name, (err[ok] / bound[ok]).max())
        assert np.abs(got - ref)[normal].max() < 3e-6 * np.abs(ref[normal]).max(), name
    # Specials as PyTorch's gelu(approximate='tanh') * b: inf -> inf, -inf -> nan, nan -> nan.
    sp = np.array([np.inf, -np.inf, np.nan], np.float32)
    hs, _ = gelu_tanh_gate(sp, np.ones(3, np.float32))
    assert hs[0] == np.inf and np.isnan(hs[1]) and np.isnan(hs[2])
    # The kernels turned off between forward and backward: the NumPy form of the same formula.
    prev = kcpu.set_enabled(False)
    try:
        ga2, gb2 = gelu_tanh_gate_backward(a, b, aux, gh)
    finally:
        kcpu.set_enabled(prev)
    np.testing.assert_allclose(ga2, ga, rtol=1e-5, atol=1e-5)  # NumPy: 1 + t cancels
    np.testing.assert_allclose(gb2, gb, rtol=1e-5, atol=1e-5)
