"""descent.compile on every optimizer and model the library ships: each compiled training step
gives eager's losses, gradients and parameters bitwise (options={"exact": True}) and replays,
or, where a step cannot be recorded, falls back to eager with its warning and still gives
eager's numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import descent
from descent import nn
from descent.compiler import CompileWarning
from descent.models import GPT, MLP, GPTConfig
from descent.models.grok import Grok, GrokConfig
from test_compile import _train  # tests/ is on sys.path (conftest)

STEPS = 6
EXACT = {"options": {"exact": True}}


def _run(make, batches, loss_fn, compiled, clip=None):
    """test_compile's training loop, with the compile warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CompileWarning)
        out = _train(make, loss_fn, batches, compiled, clip, **(EXACT if compiled else {}))
    return (*out, [str(w.message) for w in caught])


def _same(make, batches, loss_fn, clip=None):
    e = _run(make, batches, loss_fn, False, clip)
    c = _run(make, batches, loss_fn, True, clip)
    for a, b in zip(e[0], c[0]):
        np.testing.assert_array_equal(a, b)
    for sa, sb in zip(e[1], c[1]):
        assert len(sa) == len(sb)
        for a, b in zip(sa, sb):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(e[2], c[2]):
        np.testing.assert_array_equal(a, b)
    return c[3], c[4]


def _mlp_batches(seed=0):
    rng = np.random.default_rng(seed)
    return [(descent.tensor(rng.standard_normal((8, 12)).astype(np.float32)),
             descent.tensor(rng.integers(0, 4, 8))) for _ in range(STEPS)]  # fmt: skip


def _ce(model, x, y):
    return nn.functional.cross_entropy(model(x), y)


OPTIMIZERS = {
    "SGD": lambda ps: descent.optim.SGD(ps, lr=0.05),
    "SGD-momentum-wd": lambda ps: descent.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-2),
    "Adam": lambda ps: descent.optim.Adam(ps, lr=1e-2),
    "Adam-amsgrad": lambda ps: descent.optim.Adam(ps, lr=1e-2, amsgrad=True),
    "AdamW": lambda ps: descent.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    "Adamax": lambda ps: descent.optim.Adamax(ps, lr=1e-2),
    "NAdam": lambda ps: descent.optim.NAdam(ps, lr=1e-2),
    "RAdam": lambda ps: descent.optim.RAdam(ps, lr=1e-2),
    "RMSprop": lambda ps: descent.optim.RMSprop(ps, lr=1e-3, momentum=0.5),
    "Adagrad": lambda ps: descent.optim.Adagrad(ps, lr=1e-2),
    "Adadelta": lambda ps: descent.optim.Adadelta(ps, lr=1.0),
    "Lion": lambda ps: descent.optim.Lion(ps, lr=1e-3),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_compiled_equals_eager(name):
    def make():
        m = MLP([12, 16, 16, 4])
        return m, OPTIMIZERS[name](m.parameters())

    f, caught = _same(make, _mlp_batches(), _ce, clip=1.0)
    assert f.stats["replays"] >= STEPS - 3 and f.stats["fallbacks"] == 0, (f.stats, caught)


def test_muon_on_its_own_compiled_equals_eager():
    def make():
        m = MLP([12, 16, 16, 4], bias=False)
        return m, descent.optim.Muon(m.parameters(), lr=0.02)

    f, caught = _same(make, _mlp_batches(), _ce)
    assert f.stats["replays"] >= STEPS - 3 and f.stats["fallbacks"] == 0, (f.stats, caught)


def test_lbfgs_needs_a_closure_and_so_runs_eagerly_with_a_warning():
    """LBFGS.step(closure) re-evaluates the loss inside the step (Python control flow on its
    values): compiled, it must give eager's numbers, by falling back."""

    def run(compiled):
        descent.manual_seed(0)
        m = MLP([12, 16, 4])
        opt = descent.optim.LBFGS(m.parameters(), lr=0.5, max_iter=3)
        x, y = _mlp_batches()[0]

        def step():
            def closure():
                opt.zero_grad()
                loss = _ce(m, x, y)
                loss.backward()
                return loss

            return opt.step(closure)

        f = descent.compile(step) if compiled else step
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CompileWarning)
            out = [float(np.asarray(f()._data)) for _ in range(3)]
        return out, [p._data.copy() for p in m.parameters()], f, caught

    le, pe, _, _ = run(False)
    lc, pc, f, caught = run(True)
    assert le == lc
    for a, b in zip(pe, pc):
        np.testing.assert_array_equal(a, b)
    assert f.stats["replays"] == 0 and f.stats["fallbacks"] >= 1
    assert caught and all(issubclass(w.category, CompileWarning) for w in caught)


def _tokens(vocab, shape, seed=0):
    rng = np.random.default_rng(seed)
    def t():
        return descent.tensor(rng.integers(0, vocab, shape))

    return [(t(), t()) for _ in range(STEPS)]


def _lm(model, x, y):
    return model(x, y)[1]


def test_speedrun_gpt_features_compiled_equal_eager():
    """RoPE, QK-norm, ReLU^2, logit soft-cap, zero-initialised projections, untied head,
    trained with Muon + AdamW: the speedrun-cpu recipe's model, small."""
    cfg = GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=32, bias=False,
                    rope=True, qk_norm=True, relu2=True, logit_softcap=15.0,
                    zero_init_proj=True, tie_weights=False)  # fmt: skip

    def make():
        m = GPT(cfg)
        return m, m.configure_optimizers(0.0, 3e-3, (0.9, 0.95), optimizer="muon")

    f, caught = _same(make, _tokens(40, (4, 16)), _lm, clip=1.0)
    assert f.stats["replays"] >= STEPS - 3 and f.stats["fallbacks"] == 0, (f.stats, caught)


@pytest.mark.parametrize("experts", [1, 4])  # dense and mixture of experts
def test_grok_compiled_equals_eager(experts):
    cfg = GrokConfig(vocab_size=48, block_size=16, n_layer=2, n_head=4, n_kv_head=2,
                     head_dim=8, n_embd=32, num_experts=experts,
                     num_selected_experts=min(2, experts))  # fmt: skip

    def make():
        m = Grok(cfg)
        return m, descent.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.1)

    f, caught = _same(make, _tokens(48, (2, 16)), _lm, clip=1.0)
    # Both replay: the mixture of experts' data-dependent routing (tokens per expert) happens
    # inside one op of fixed shapes (ops/moe.py's MoEExperts and LoadBalance).
    assert f.stats["replays"] >= STEPS - 3 and f.stats["fallbacks"] == 0, (f.stats, caught)


def test_moe_composite_form_still_falls_back():
    # MoE(fused=False) runs one Linear op per expert on a data-dependent number of rows: the
    # two recordings differ, so the step runs eagerly (docs/compile.md), with eager's values.
    cfg = GrokConfig(vocab_size=48, block_size=16, n_layer=1, n_head=4, n_kv_head=2,
                     head_dim=8, n_embd=32, num_experts=4, num_selected_experts=2)  # fmt: skip

    def make():
        m = Grok(cfg)
        for moe in m.moe_layers():
            moe.fused = False
        return m, descent.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.1)

    f, caught = _same(make, _tokens(48, (2, 16)), _lm, clip=1.0)
    assert f.stats["replays"] == 0 and f.stats["fallbacks"] >= 1, f.stats
    assert any("recordings" in m for m in caught), caught


class _Noted(nn.Module):
    """A module that stores tensors it computed on itself during forward (as Grok's
    `aux_losses` and MoE's `last_aux`): a captured tensor, a nested container and a plain one."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 3)
        self.fixed = descent.ones(2)
        self.notes: dict = {}
        self.last = None

    def forward(self, x):
        y = self.fc(x)
        self.last = y.mean()
        self.notes = {"sq": (y * y).sum(), "pair": [y.max(), 7], "fixed": self.fixed}
        return y


def test_attributes_set_by_the_call_are_set_again_on_replay():
    m = _Noted()
    opt = descent.optim.SGD(m.parameters(), lr=0.1)

    @descent.compile
    def step(x):
        opt.zero_grad()
        y = m(x)
        loss = (y * y).mean()
        loss.backward()
        opt.step()
        return y

    rng = np.random.default_rng(3)
    for _ in range(6):
        x = descent.tensor(rng.standard_normal((4, 5)).astype(np.float32))
        y = step(x).numpy()
        np.testing.assert_array_equal(m.last.numpy(), y.mean(dtype=np.float32))
        np.testing.assert_allclose(m.notes["sq"].numpy(), (y * y).sum(), rtol=1e-6)
        np.testing.assert_array_equal(m.notes["pair"][0].numpy(), y.max())
        assert m.notes["pair"][1] == 7 and m.notes["fixed"] is m.fixed
    assert step.stats["replays"] >= 3 and step.stats["fallbacks"] == 0, step.stats


def test_grok_aux_losses_follow_each_replayed_step():
    cfg = GrokConfig(vocab_size=48, block_size=16, n_layer=1, n_head=4, n_kv_head=2,
                     head_dim=8, n_embd=32, num_experts=1, num_selected_experts=1)  # fmt: skip
    descent.manual_seed(0)
    m = Grok(cfg)
    opt = descent.optim.AdamW(m.parameters(), lr=1e-3)

    @descent.compile
    def step(x, y):
        opt.zero_grad()
        _, loss = m(x, y)
        loss.backward()
        opt.step()
        return loss

    for x, y in _tokens(48, (2, 16)):
        loss = step(x, y)
        assert m.aux_losses["lm"].item() == loss.item()  # eager's lm loss is the loss here
    assert step.stats["replays"] >= 3, step.stats
