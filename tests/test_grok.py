"""Grok (a Grok-1-shaped mixture of experts) against a PyTorch twin written here from Grok-1's
model.py: logits, the loss with its auxiliary parts and every gradient, in float32 and float64,
with grouped-query attention, rotary positions, soft-capped logits and near-tied top-2 routing.
Plus sparse == dense dispatch, the key/value cache and the building blocks."""

from __future__ import annotations

import math

import numpy as np
import pytest

import descent
from descent import nn
from descent.models import Grok, GrokConfig
from descent.models.grok import grok1_config
from descent.nn.gated_mlp import ffn_size

torch = pytest.importorskip("torch")
TF = torch.nn.functional


# ------------------------------------------------------------------------------------------
# The twin: Grok-1's arithmetic in PyTorch, functional over a dict of descent's parameter names.


def _rms(x, w, eps=1e-5):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def _rope(x, base):
    # Grok-1's RotaryEmbedding: rotate_half layout, phase tiled over both halves.
    t, d = x.shape[-2], x.shape[-1]
    inv = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    phase = torch.outer(torch.arange(t, dtype=torch.float64), inv).repeat(1, 2).to(x.dtype)
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return x * torch.cos(phase) + torch.cat([-x2, x1], -1) * torch.sin(phase)


def _expert(p, pre, x):
    h = TF.gelu(x @ p[pre + "linear.weight"].T, approximate="tanh") * (
        x @ p[pre + "linear_v.weight"].T
    )
    return h @ p[pre + "linear_1.weight"].T


def torch_grok(p, cfg, idx, targets, aux_w=0.01, z_w=0.001):
    """Returns logits, loss (with aux), lm, load_balance, router_z, chosen experts per layer."""
    b, t = idx.shape
    d, h, hk, hd = cfg.n_embd, cfg.n_head, cfg.n_kv_head, cfg.head_dim
    x = p["wte.weight"][idx] * cfg.embedding_multiplier_scale
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    lbs, zs, chosen = [], [], []
    for i in range(cfg.n_layer):
        pre = f"h.{i}."
        a = _rms(x, p[pre + "pre_attn_norm.weight"])
        q = (a @ p[pre + "attn.query.weight"].T).view(b, t, h, hd).transpose(1, 2)
        k = (a @ p[pre + "attn.key.weight"].T).view(b, t, hk, hd).transpose(1, 2)
        v = (a @ p[pre + "attn.value.weight"].T).view(b, t, hk, hd).transpose(1, 2)
        q, k = _rope(q, cfg.rope_base), _rope(k, cfg.rope_base)
        k = k.repeat_interleave(h // hk, dim=1)  # GQA: query head j reads kv head j // rep
        v = v.repeat_interleave(h // hk, dim=1)
        s = (q @ k.transpose(-2, -1)) * cfg.attn_output_multiplier
        s = cfg.attn_logit_cap * torch.tanh(s / cfg.attn_logit_cap)
        s = torch.where(causal, s, torch.tensor(-1e30, dtype=s.dtype))
        y = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(b, t, h * hd)
        x = x + _rms(y @ p[pre + "attn.linear.weight"].T, p[pre + "post_attn_norm.weight"])
        m = _rms(x, p[pre + "pre_moe_norm.weight"]).reshape(b * t, d)
        if cfg.num_experts == 1:
            out = _expert(p, pre + "moe.", m)
        else:
            logits = m @ p[pre + "moe.router.linear.weight"].T
            probs = torch.softmax(logits, -1)
            gates, experts = torch.topk(probs, cfg.num_selected_experts, dim=-1)
            chosen.append(experts)
            out = torch.zeros_like(m)
            for e in range(cfg.num_experts):
                tok, slot = torch.nonzero(experts == e, as_tuple=True)
                if len(tok):
                    ye = _expert(p, pre + f"moe.experts.{e}.", m[tok]) * gates[tok, slot, None]
                    out = out.index_add(0, tok, ye)
            frac = torch.bincount(experts.reshape(-1), minlength=cfg.num_experts).to(m.dtype)
            frac = frac / experts.numel()
            lbs.append(cfg.num_experts * (frac * probs.mean(0)).sum())
            zs.append((torch.logsumexp(logits, -1) ** 2).mean())
        x = x + _rms(out.reshape(b, t, d), p[pre + "post_moe_norm.weight"])
    x = _rms(x, p["ln_f.weight"])
    logits = (x @ p["wte.weight"].T) * cfg.output_multiplier_scale
    lm = TF.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    loss, lb, z = lm, None, None
    if lbs:
        lb, z = sum(lbs) / len(lbs), sum(zs) / len(zs)
        loss = lm + aux_w * lb + z_w * z
    return logits, loss, lm, lb, z, chosen


def _twin_params(model):
    return {
        n: torch.tensor(p.numpy(), requires_grad=True) for n, p in model.named_parameters()
    }


def _config(**kw):
    base = dict(vocab_size=37, block_size=16, n_layer=2, n_head=4, n_kv_head=2, head_dim=8,
                n_embd=24, widening_factor=2.0, num_experts=4, num_selected_experts=2,
                attn_logit_cap=30.0, embedding_multiplier_scale=2.5,
                output_multiplier_scale=0.6, rope_base=10000.0)  # fmt: skip
    base.update(kw)
    return GrokConfig(**base)


def _model(cfg, dtype=np.float32, seed=0):
    descent.manual_seed(seed)
    model = Grok(cfg)
    if dtype == np.float64:
        model.double()
    return model


def _batch(cfg, b=3, t=None, seed=1):
    rng = np.random.default_rng(seed)
    t = cfg.block_size if t is None else t
    x = rng.integers(0, cfg.vocab_size, (b, t))
    y = rng.integers(0, cfg.vocab_size, (b, t))
    return x, y


def _near_tie(model, gap):
    """Make experts 1 and 2 of every router nearly equal: their logits differ by about `gap`
    for every token, so wherever they compete for the second slot the choice is a near tie."""
    rng = np.random.default_rng(7)
    for moe in model.moe_layers():
        w = moe.router.linear.weight
        with descent.no_grad():
            arr = w.numpy().copy()
            arr *= 20.0  # large logits: a confident router whose top-2 is still near-tied
            direction = rng.standard_normal(arr.shape[1])
            arr[2] = arr[1] + gap * direction / np.linalg.norm(direction)
            w.copy_(descent.tensor(arr, dtype=w.dtype))


def _tols(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("variant", ["moe", "dense", "mha", "mqa"])
def test_grok_matches_torch_twin(dtype, variant):
    kw = {
        "dense": dict(num_experts=1, num_selected_experts=1),
        "mha": dict(n_kv_head=4),
        "mqa": dict(n_kv_head=1, num_experts=3, num_selected_experts=2),
    }.get(variant, {})
    cfg = _config(**kw)
    model = _model(cfg, dtype)
    model.train()
    x, y = _batch(cfg)
    logits, loss = model(descent.tensor(x), descent.tensor(y))
    loss.backward()
    tdt = torch.float32 if dtype == np.float32 else torch.float64
    p = _twin_params(model)
    assert all(t.dtype == tdt for t in p.values())
    tl, tloss, tlm, tlb, tz, _ = torch_grok(p, cfg, torch.tensor(x), torch.tensor(y))
    tloss.backward()
    tol = _tols(dtype)
    np.testing.assert_allclose(logits.numpy(), tl.detach().numpy(), **tol)
    np.testing.assert_allclose(loss.item(), tloss.item(), **tol)
    np.testing.assert_allclose(model.aux_losses["lm"].item(), tlm.item(), **tol)
    if cfg.num_experts > 1:
        np.testing.assert_allclose(model.aux_losses["load_balance"].item(), tlb.item(), **tol)
        np.testing.assert_allclose(model.aux_losses["router_z"].item(), tz.item(), **tol)
    else:
        assert "load_balance" not in model.aux_losses and tlb is None
    for name, par in model.named_parameters():
        assert par.grad is not None, f"{name} got no gradient"
        np.testing.assert_allclose(
            par.grad.numpy(), p[name].grad.numpy(), err_msg=f"gradient of {name}", **tol
        )


@pytest.mark.parametrize("dtype,gap", [(np.float32, 3e-5), (np.float64, 1e-9)])
def test_grok_near_tied_top2_matches_torch(dtype, gap):
    """Experts 1 and 2 tie to within `gap` in logit for every token; where they compete for the
    second slot, both libraries must pick the same expert, and every gradient must agree."""
    cfg = _config(n_layer=2)
    model = _model(cfg, dtype, seed=3)
    _near_tie(model, gap)
    x, y = _batch(cfg, b=4, seed=5)
    _, loss = model(descent.tensor(x), descent.tensor(y))
    loss.backward()
    p = _twin_params(model)
    _, tloss, _, _, _, tchosen = torch_grok(p, cfg, torch.tensor(x), torch.tensor(y))
    tloss.backward()
    n_contested = 0
    for tc in tchosen:  # a different choice would change the loss and the expert gradients
        n_contested += int(((tc == 1) ^ (tc == 2)).any(-1).sum())
    assert n_contested > 0, "no token had experts 1 and 2 competing for a slot"
    tol = _tols(dtype)
    np.testing.assert_allclose(loss.item(), tloss.item(), **tol)
    for name, par in model.named_parameters():
        np.testing.assert_allclose(
            par.grad.numpy(), p[name].grad.numpy(), err_msg=f"gradient of {name}", **tol
        )


def test_router_choice_equals_torch_topk_on_near_ties():
    rng = np.random.default_rng(0)
    router = nn.Router(16, 4, 2).double()
    w = rng.standard_normal((4, 16))
    w[2] = w[1] + 1e-9 * rng.standard_normal(16)
    with descent.no_grad():
        router.linear.weight.copy_(descent.tensor(w, dtype=np.float64))
    x = rng.standard_normal((200, 16))
    r = router(descent.tensor(x, dtype=np.float64))
    tprobs = torch.softmax(torch.tensor(x) @ torch.tensor(w).T, -1)
    tg, ti = torch.topk(tprobs, 2, -1)
    np.testing.assert_array_equal(r.indices, ti.numpy())
    np.testing.assert_allclose(r.gates.numpy(), tg.numpy(), rtol=1e-12)
    assert (((ti == 1) ^ (ti == 2)).any(-1)).sum() > 10


# ------------------------------------------------------------------------------------------
# Sparse dispatch equals dense dispatch.


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_dispatch_equals_dense(dtype, k):
    descent.manual_seed(0)
    moe = nn.MoE(16, 24, num_experts=4, num_selected_experts=k)
    if dtype == np.float64:
        moe.double()
    x_np = np.random.default_rng(0).standard_normal((2, 9, 16))
    _check_sparse_equals_dense(moe, x_np, dtype)
    _check_sparse_equals_dense(moe, x_np[:1, :1], dtype)  # one token: the decoding path


def _check_sparse_equals_dense(moe, x_np, dtype):
    outs, grads = [], []
    for mode in ("sparse", "dense"):
        moe.dispatch = mode
        moe.zero_grad()
        x = descent.tensor(x_np, dtype=dtype, requires_grad=True)
        y = moe(x)
        loss = (y * y).sum() + moe.last_aux["load_balance"] + moe.last_aux["router_z"]
        loss.backward()
        outs.append(y.numpy())
        grads.append([x.grad.numpy()] + [np.zeros(p.shape) if p.grad is None else p.grad.numpy()
                                         for p in moe.parameters()])  # fmt: skip
    tol = _tols(dtype)
    np.testing.assert_allclose(outs[0], outs[1], **tol)
    for gs, gd in zip(grads[0], grads[1]):
        np.testing.assert_allclose(gs, gd, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gated_gelu_tanh_matches_torch_to_second_order(dtype):
    from descent.nn.gated_mlp import gated_gelu_tanh

    rng = np.random.default_rng(0)
    a_np, b_np, w_np = (rng.standard_normal((5, 6)) * 3 for _ in range(3))
    a = descent.tensor(a_np, dtype=dtype, requires_grad=True)
    b = descent.tensor(b_np, dtype=dtype, requires_grad=True)
    ta = torch.tensor(a_np.astype(dtype), requires_grad=True)
    tb = torch.tensor(b_np.astype(dtype), requires_grad=True)
    y = gated_gelu_tanh(a, b)
    ty = torch.nn.functional.gelu(ta, approximate="tanh") * tb
    assert y.dtype == dtype
    # float32: near a = -4 the derivative (1 + t)/2 + ... cancels to ~1e-3 of its terms, and
    # two float32 orders of evaluation differ by ~1e-5 absolute on gradients of size ~10 (the
    # unfused F.gelu(a, 'tanh') * b gives the same float32 values as this op there).
    tol = _tols(dtype) if dtype == np.float64 else dict(rtol=1e-5, atol=5e-5)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **tol)
    w, tw = descent.tensor(w_np, dtype=dtype), torch.tensor(w_np.astype(dtype))
    ga, gb = descent.autograd.grad((w * y).sum(), [a, b], create_graph=True)
    tga, tgb = torch.autograd.grad((tw * ty).sum(), [ta, tb], create_graph=True)
    np.testing.assert_allclose(ga.numpy(), tga.detach().numpy(), **tol)
    np.testing.assert_allclose(gb.numpy(), tgb.detach().numpy(), **tol)
    if dtype == np.float64:  # second order: float32 rounding compounds past any fair tolerance
        gga, ggb = descent.autograd.grad((ga * ga).sum() + gb.sum(), [a, b])
        tgga, tggb = torch.autograd.grad((tga * tga).sum() + tgb.sum(), [ta, tb])
        np.testing.assert_allclose(gga.numpy(), tgga.numpy(), **tol)
        np.testing.assert_allclose(ggb.numpy(), tggb.numpy(), **tol)
    # the plain (fast, in-place) backward gives the same first derivatives
    a.grad = b.grad = None
    (w * gated_gelu_tanh(a, b)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), tga.detach().numpy(), **tol)
    np.testing.assert_allclose(b.grad.numpy(), tgb.detach().numpy(), **tol)


def test_fused_rotary_equals_apply_rotary_emb_to_second_order():
    from descent.nn.gqa_attention import RotaryRotation
    from descent.nn.rotary import RotaryEmbedding, apply_rotary_emb

    rope = RotaryEmbedding(8, 32)
    x_np = np.random.default_rng(0).standard_normal((2, 3, 5, 8))
    w_np = np.random.default_rng(1).standard_normal((2, 3, 5, 8))
    outs = []
    for fused in (True, False):
        x = descent.tensor(x_np, dtype=np.float64, requires_grad=True)
        cos, sin = rope.cos_sin(5, 7, x.dtype, x.device)  # positions 7..11
        y = (RotaryRotation.apply(x, cos=cos._data, sin=sin._data) if fused
             else apply_rotary_emb(x, cos, sin))  # fmt: skip
        (g,) = descent.autograd.grad((descent.tensor(w_np) * y * y).sum(), [x],
                                     create_graph=True)  # fmt: skip
        (gg,) = descent.autograd.grad((g * g).sum(), [x])
        outs.append((y.numpy(), g.numpy(), gg.numpy()))
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_permute_rows_values_gradient_and_second_order():
    from descent.nn.moe import permute_rows

    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((7, 3))
    w_np = rng.standard_normal((7, 3))
    perm = rng.permutation(7)
    x = descent.tensor(x_np, dtype=np.float64, requires_grad=True)
    y = permute_rows(x, perm)
    np.testing.assert_array_equal(y.numpy(), x_np[perm])
    # A loss with a second derivative: sum(w * y^3); d/dx = 3 w[inv] x^2, then d(sum)/dx = 6 w x
    (gx,) = descent.autograd.grad((descent.tensor(w_np) * y**3).sum(), [x], create_graph=True)
    inv = np.argsort(perm)
    np.testing.assert_allclose(gx.numpy(), 3 * w_np[inv] * x_np**2, rtol=1e-12)
    (ggx,) = descent.autograd.grad(gx.sum(), [x])
    np.testing.assert_allclose(ggx.numpy(), 6 * w_np[inv] * x_np, rtol=1e-12)


@pytest.mark.parametrize("fused", [True, False])
def test_unchosen_expert_gets_no_gradient_and_stats_count_tokens(fused):
    descent.manual_seed(0)
    moe = nn.MoE(8, 16, num_experts=4, num_selected_experts=1, fused=fused)
    x_pos = descent.rand(40, 8) + 0.1  # positive inputs
    with descent.no_grad():
        w = np.zeros((4, 8), np.float32)
        w[:3] = 1.0
        w[0, 0] = 2.0
        w[3] = -1.0  # with positive inputs expert 3's logit is always the lowest
        moe.router.linear.weight.copy_(descent.tensor(w))
    moe(x_pos).sum().backward()
    st = moe.last_stats
    assert st.tokens_per_expert.sum() == 40 and st.tokens_per_expert[3] == 0
    if fused:  # the fused op: a zero gradient (JAX's, Grok-1's), so compiled steps replay
        assert all(p.grad is not None and not p.grad.numpy().any()
                   for p in moe.experts[3].parameters())  # fmt: skip
    else:  # the composite form: no gradient at all (PyTorch's module loop)
        assert all(p.grad is None for p in moe.experts[3].parameters())
    assert all(p.grad.numpy().any() for p in moe.experts[0].parameters())
    assert moe.router.linear.weight.grad is not None
    np.testing.assert_allclose(st.token_share.sum(), 1.0)


def test_load_balance_loss_is_one_when_balanced_and_e_when_collapsed():
    moe = nn.MoE(4, 8, num_experts=4, num_selected_experts=1)
    with descent.no_grad():
        moe.router.linear.weight.copy_(descent.zeros(4, 4))
    moe(descent.randn(10, 4))  # uniform probabilities, all ties -> expert 0 for everyone
    # f = (1, 0, 0, 0), P = 1/4 each: E * sum f P = 4 * 1/4 = 1; z = log(4)^2.
    np.testing.assert_allclose(moe.last_aux["load_balance"].item(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(moe.last_aux["router_z"].item(), math.log(4) ** 2, rtol=1e-6)
    with descent.no_grad():
        w = np.zeros((4, 4), np.float32)
        w[0] = 50.0
        moe.router.linear.weight.copy_(descent.tensor(w))
    moe(descent.rand(10, 4) + 0.5)  # every token certain of expert 0: E * 1 * 1 = 4
    np.testing.assert_allclose(moe.last_aux["load_balance"].item(), 4.0, rtol=1e-5)


# ------------------------------------------------------------------------------------------
# Generation with the key/value cache.


@pytest.mark.parametrize("temperature,top_k", [(0.0, None), (1.0, None), (0.8, 5)])
def test_generate_with_cache_equals_without(temperature, top_k):
    cfg = _config(block_size=24, n_kv_head=1)
    model = _model(cfg)
    prompt = descent.tensor(_batch(cfg, b=2, t=5)[0])
    outs = []
    for use_cache in (False, True):
        g = descent.Generator().manual_seed(11)
        outs.append(model.generate(prompt, 19, temperature, top_k, generator=g,
                                   use_cache=use_cache).numpy())  # fmt: skip
    np.testing.assert_array_equal(outs[0], outs[1])
    assert outs[0].shape == (2, 24)


def test_cached_logits_equal_full_forward():
    cfg = _config(block_size=12)
    model = _model(cfg, np.float64)
    model.eval()
    x = descent.tensor(_batch(cfg, b=2, t=12)[0])
    full, _ = model(x, x)  # (B, T, V)
    cache = nn.KVCache(cfg.n_layer, cfg.block_size)
    rows = [model(x[:, :4], kv_cache=cache)[0]]
    for t in range(4, 12):
        rows.append(model(x[:, t : t + 1], kv_cache=cache)[0])
    np.testing.assert_allclose(rows[0].numpy()[:, 0], full.numpy()[:, 3], rtol=1e-10, atol=1e-12)
    got = np.concatenate([r.numpy() for r in rows[1:]], 1)
    np.testing.assert_allclose(got, full.numpy()[:, 4:], rtol=1e-10, atol=1e-12)


def test_generate_past_block_size_shifts_the_cache():
    cfg = _config(block_size=8)
    model = _model(cfg)
    out = model.generate(descent.tensor([[1, 2, 3]]), 30, temperature=0.0)
    assert out.shape == (1, 33)
    with pytest.raises(ValueError, match="block_size"):
        model(descent.tensor(np.zeros((1, 9), np.int64)))


# ------------------------------------------------------------------------------------------
# Building blocks and configuration.


def test_ffn_size_follows_grok1():
    assert ffn_size(6144, 8) == 32768
    assert ffn_size(128, 4) == 344  # int(512) * 2 // 3 = 341 -> 344
    assert ffn_size(24, 2.0) == 32
    assert _config().ffn_size == 32


def test_grok1_config_counts_about_314b():
    cfg = grok1_config()
    assert cfg.n_head == 48 and cfg.n_kv_head == 8 and cfg.num_experts == 8
    assert 3.1e11 < cfg.num_parameters() < 3.2e11


def test_parameter_count_and_tied_embedding():
    cfg = _config()
    model = _model(cfg)
    assert model.num_parameters() == cfg.num_parameters()
    names = [n for n, _ in model.named_parameters()]
    assert "wte.weight" in names and not any("lm_head" in n for n in names)
    expert = sum(p.numel() for p in model.h[0].moe.experts[0].parameters())
    assert model.num_parameters(active=True) == model.num_parameters() - 2 * 2 * expert


def test_soft_cap_bounds_and_gradient():
    x = descent.tensor([-1e4, -30.0, 0.0, 3.0, 1e4], dtype=np.float64, requires_grad=True)
    y = nn.soft_cap(x, 30.0)
    assert np.all(np.abs(y.numpy()) <= 30.0)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1 - np.tanh(x.numpy() / 30) ** 2)
    assert nn.soft_cap(x, None) is x
    # second order: d2/dx2 cap tanh(x / cap) = -2/cap tanh (1 - tanh^2)
    z = descent.tensor([-40.0, -3.0, 0.5, 12.0], dtype=np.float64, requires_grad=True)
    (g,) = descent.autograd.grad(nn.soft_cap(z, 30.0).sum(), [z], create_graph=True)
    (gg,) = descent.autograd.grad(g.sum(), [z])
    th = np.tanh(z.numpy() / 30)
    np.testing.assert_allclose(g.numpy(), 1 - th**2, rtol=1e-12)
    np.testing.assert_allclose(gg.numpy(), -2 / 30 * th * (1 - th**2), rtol=1e-10, atol=1e-15)
    with pytest.raises(ValueError, match="positive"):
        nn.soft_cap(x, -1.0)


def test_gqa_attention_without_cap_uses_sdpa_and_matches_capped_limit():
    """A huge cap is the identity on the logits: the fused (uncapped) path must agree."""
    descent.manual_seed(0)
    a = nn.GroupedQueryAttention(16, 4, 2, 8, attn_logit_cap=None,
                                 rotary=nn.RotaryEmbedding(8, 10))  # fmt: skip
    b = nn.GroupedQueryAttention(16, 4, 2, 8, attn_logit_cap=1e9,
                                 rotary=nn.RotaryEmbedding(8, 10))  # fmt: skip
    b.load_state_dict(a.state_dict())
    x = descent.randn(2, 10, 16)
    np.testing.assert_allclose(a(x).numpy(), b(x).numpy(), rtol=1e-5, atol=1e-6)


def test_config_errors_are_explained():
    with pytest.raises(ValueError, match="must divide n_head"):
        GrokConfig(n_head=4, n_kv_head=3)
    with pytest.raises(ValueError, match="num_selected_experts"):
        GrokConfig(num_experts=2, num_selected_experts=3)
    with pytest.raises(ValueError, match="even"):
        GrokConfig(head_dim=7)
    assert GrokConfig(head_dim=64).attn_output_multiplier == pytest.approx(1 / 8)
    cfg = GrokConfig.from_dict({**_config().to_dict(), "batch_size": 3})
    assert cfg == _config()


def test_eval_loss_is_the_language_model_loss():
    cfg = _config()
    model = _model(cfg)
    x, y = (descent.tensor(a) for a in _batch(cfg))
    model.eval()
    _, loss = model(x, y)
    assert loss.item() == model.aux_losses["lm"].item()
    model.train()
    _, loss = model(x, y)
    expected = (model.aux_losses["lm"].item() + 0.01 * model.aux_losses["load_balance"].item()
                + 0.001 * model.aux_losses["router_z"].item())  # fmt: skip
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-6)


# ------------------------------------------------------------------------------------------
# GPT's key/value cache (the same KVCache, learned or rotary positions).


@pytest.mark.parametrize("options", [{}, {"rope": True}, {"rope": True, "qk_norm": True}])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_gpt_generate_with_cache_equals_without(options, temperature):
    from descent.models import GPT, GPTConfig

    descent.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=29, block_size=20, n_layer=2, n_head=2, n_embd=16,
                          **options))  # fmt: skip
    prompt = descent.tensor(np.random.default_rng(0).integers(0, 29, (2, 4)))
    outs = []
    for use_cache in (False, True):
        g = descent.Generator().manual_seed(3)
        outs.append(model.generate(prompt, 16, temperature, 7, generator=g,
                                   use_cache=use_cache).numpy())  # fmt: skip
    np.testing.assert_array_equal(outs[0], outs[1])
    long = model.generate(prompt[:1], 40, 0.0)  # past block_size: the cache shifts its window
    assert long.shape == (1, 44)


def test_grok_generate_refuses_bad_arguments():
    model = _model(_config())
    prompt = descent.tensor([[1, 2]])
    for bad in (-1.0, float("nan"), True):
        with pytest.raises(ValueError, match="temperature"):
            model.generate(prompt, 2, temperature=bad)
    with pytest.raises(ValueError, match="at least one"):
        model.generate(descent.tensor(np.zeros((1, 0), np.int64)), 2)
    with pytest.raises(ValueError, match="token ids"):
        model.generate(descent.tensor([[99]]), 2)
    with pytest.raises(ValueError, match="top_k"):
        model.generate(prompt, 2, top_k=0)


def test_state_shapes_and_from_checkpoint():
    for kw in ({}, {"num_experts": 1, "num_selected_experts": 1}):
        cfg = _config(**kw)
        model = _model(cfg)
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert shapes == cfg.state_shapes()
        assert GrokConfig.from_checkpoint(cfg.to_dict(), shapes) == cfg
    d = cfg.to_dict()
    with pytest.raises(ValueError, match="n_layer"):
        GrokConfig.from_checkpoint({**d, "n_layer": "2"}, shapes)
    with pytest.raises(ValueError, match="disagree"):
        GrokConfig.from_checkpoint({**d, "n_layer": 3}, shapes)
    with pytest.raises(ValueError, match="no rope_base"):
        GrokConfig.from_checkpoint({k: v for k, v in d.items() if k != "rope_base"}, shapes)
    from descent.models import build_model, config_from_dict

    assert isinstance(build_model(config_from_dict(d)), Grok)
