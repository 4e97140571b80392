"""benchmarks/eager_ops.py: the per-op profile of the eager step against PyTorch's groups each
op into the step's parts, and its timing wrappers leave descent's ops as they were."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

import descent
from descent.autograd import Function
from descent.models import GPT, GPTConfig

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def eager_ops(monkeypatch):
    monkeypatch.setenv("DESCENT_BENCH_REEXEC", "1")  # never re-execute the test process
    monkeypatch.syspath_prepend(str(BENCH))
    mod = importlib.import_module("eager_ops")
    yield mod
    for name in ("eager_ops", "_common"):
        sys.modules.pop(name, None)


def test_group_times_puts_each_op_in_its_part(eager_ops):
    ours = {
        "Linear.forward": 4.0,
        "Linear.backward": 8.0,
        "Gelu.forward": 0.5,
        "[engine] _Slices.value": 0.7,
        "Transpose.backward": 0.1,
    }
    theirs = {
        "aten::mm": 11.0,
        "aten::gelu": 0.6,
        "aten::gelu_backward": 1.0,
        "aten::cat": 0.2,
        "aten::_scaled_dot_product_flash_attention_for_cpu": 0.9,
        "aten::view": 0.3,
    }
    rows = {name: (d, t) for name, d, t in eager_ops.group_times(ours, theirs)}
    assert rows["matrix products (Linear)"] == (12.0, 11.0)
    assert rows["GELU"] == (0.5, 1.6)
    assert rows["qkv gradient's assembly"] == (0.7, 0.2)
    assert rows["attention"] == (0.0, 0.9)
    assert rows["other ops"] == pytest.approx((0.1, 0.3))
    # every op counted once
    assert sum(d for d, _ in rows.values()) == pytest.approx(sum(ours.values()))
    assert sum(t for _, t in rows.values()) == pytest.approx(sum(theirs.values()))


def test_descent_op_times_times_the_step_and_removes_its_wrappers(eager_ops):
    cfg = GPTConfig(
        vocab_size=11, block_size=4, n_layer=1, n_head=2, n_embd=8, dropout=0.0, bias=False
    )
    descent.manual_seed(0)
    model = GPT(cfg)
    x = descent.tensor(np.arange(8).reshape(2, 4) % 11)
    before = {}
    stack = [Function]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            before[sub] = (sub.__dict__.get("forward"), sub.__dict__.get("backward"))

    def step(i):
        model.zero_grad(set_to_none=True)
        model(x, x)[1].backward()

    times = eager_ops.descent_op_times(step, 2)
    assert times["Linear.forward"] > 0 and times["Linear.backward"] > 0
    assert times["LayerNorm.forward"] > 0 and times["SoftmaxCrossEntropy.backward"] > 0
    for sub, (fwd, bwd) in before.items():
        assert sub.__dict__.get("forward") is fwd and sub.__dict__.get("backward") is bwd, sub
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    step(0)  # unwrapped: the same gradients
    for g, p in zip(grads, model.parameters(), strict=True):
        np.testing.assert_array_equal(g, p.grad.numpy())
