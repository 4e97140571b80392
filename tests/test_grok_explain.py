"""Gradients of a mixture of experts in `gradient_report`: token shares, router entropy, aux
losses, per-expert gradient norms, experts without gradient, the router's gradient, and the
collapse / starved flags firing on a constructed collapse (and not on a healthy layer)."""

from __future__ import annotations

import json
import math

import numpy as np

import descent
from descent.explain import gradient_report
from descent.explain.moe import MoEThresholds
from descent.models import Grok, GrokConfig


def _model(seed=0):
    descent.manual_seed(seed)
    cfg = GrokConfig(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_kv_head=1,
                     head_dim=8, n_embd=16, widening_factor=2.0, num_experts=4,
                     num_selected_experts=2)
    return Grok(cfg)


def _step(model):
    rng = np.random.default_rng(0)
    x = descent.tensor(rng.integers(0, 40, (4, 16)))
    y = descent.tensor(rng.integers(0, 40, (4, 16)))
    model.zero_grad()
    _, loss = model(x, y)
    loss.backward()


def test_report_describes_each_moe_layer():
    model = _model()
    rng = np.random.default_rng(1)
    with descent.no_grad():  # a decisive router (logits of order 1): tokens spread over experts
        for moe in model.moe_layers():
            moe.router.linear.weight.copy_(descent.tensor(rng.standard_normal((4, 16)),
                                                          dtype=np.float32))  # fmt: skip
    _step(model)
    rep = gradient_report(model)
    assert [m.name for m in rep.moe] == ["h.0.moe", "h.1.moe"]
    m = rep.moe[0]
    assert m.num_tokens == 64 and m.num_experts == 4 and m.num_selected == 2
    assert math.isclose(sum(m.token_share), 2.0)  # each token uses k = 2 experts
    assert 0 < m.router_entropy <= math.log(4) + 1e-9
    assert m.load_balance is not None and m.router_z is not None
    assert m.router_grad_norm is not None and m.router_grad_norm > 0
    assert all(g is not None and g > 0 for g in m.expert_grad_norms)
    assert not m.flags  # layer 0 spreads its tokens (72% at most): no flag
    text = str(rep)
    assert "mixture of experts" in text and "router entropy" in text and "MoE flags" in text
    json.loads(rep.to_json())  # serialisable for gradients.jsonl


def test_collapse_and_starved_experts_are_flagged():
    model = _model()
    with descent.no_grad():
        for moe in model.moe_layers():
            w = np.zeros((4, 16), np.float32)
            moe.router.linear.weight.copy_(descent.tensor(w))
            # All-zero router logits: every token's probabilities tie, so the stable top-2
            # picks experts 0 and 1 for everyone; experts 2 and 3 never run.
    _step(model)
    rep = gradient_report(model)
    m = rep.moe[0]
    assert m.token_share == [1.0, 1.0, 0.0, 0.0]
    assert m.experts_without_grad == [2, 3]
    # The fused experts' op gives an unchosen expert a zero gradient (MoE(fused=False): None).
    assert m.expert_grad_norms[2] == 0.0 and m.expert_grad_norms[3] == 0.0
    assert any(f.startswith("collapse") for f in m.flags)
    assert "starved experts [2, 3]" in m.flags
    assert not rep.healthy and "h.0.moe" in rep.flagged
    assert "no gradient" in str(rep) and "collapse" in str(rep)
    assert "90%" in MoEThresholds().describe()  # the stated threshold


def test_dense_grok_has_no_moe_section():
    descent.manual_seed(0)
    cfg = GrokConfig(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_kv_head=1,
                     head_dim=8, n_embd=16, num_experts=1, num_selected_experts=1)
    model = Grok(cfg)
    _step(model)
    rep = gradient_report(model)
    assert rep.moe == [] and "mixture of experts" not in str(rep)
