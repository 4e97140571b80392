"""descent.compile's replay assembles the gradient of a tensor read by basic-index slices that
cover it exactly once (qkv.split, chunk, unbind) by copies into an unzeroed pool buffer
(compiler/program.py `_partitions`); any other set of slices keeps the zeros-and-add path.
The gradients must equal eager's on every step (pool buffers hold the previous step's values,
so a region left unwritten would show up as stale numbers, not zeros)."""

from __future__ import annotations

import numpy as np
import pytest

import descent

STEPS = 6


def _run(slicer, compiled: bool):
    descent.manual_seed(0)
    w = descent.randn(8, 12, requires_grad=True)
    rng = np.random.default_rng(1)
    xs = [descent.tensor(rng.standard_normal((4, 5, 8)).astype(np.float32)) for _ in range(STEPS)]

    def step(x):
        w.grad = None
        h = x @ w  # (4, 5, 12), a graph node: its gradient comes from the slices only
        loss = sum(((i + 1.5) * p.sin()).sum() for i, p in enumerate(slicer(h)))
        loss.backward()
        return loss

    f = descent.compile(step) if compiled else step
    grads = []
    for x in xs:
        f(x)
        grads.append(w.grad._data.copy())
    return grads, f


CASES = {
    "split": (lambda h: h.split(4, dim=-1), True),
    "chunk_uneven": (lambda h: h.chunk(5, dim=-1), True),  # 3,3,3,3 of 12: four pieces
    "unbind": (lambda h: h.unbind(1), True),
    "rows_and_cols": (lambda h: (h[:2], h[2:, :, :7], h[2:, :, 7:]), True),
    "reshaped_heads": (lambda h: [p.reshape(4, 5, 2, 2).transpose(1, 2) for p in h.split(4, -1)],
                       True),  # fmt: skip
    "gap": (lambda h: (h[..., :4], h[..., 8:]), False),  # the middle third gets no gradient
    "overlap": (lambda h: (h[..., :7], h[..., 5:]), False),  # 5:7 read twice
    "one_slice": (lambda h: (h[..., 2:],), False),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_slice_gradients_equal_eager(name):
    slicer, partitioned = CASES[name]
    eager, _ = _run(slicer, False)
    comp, f = _run(slicer, True)
    assert f.stats["replays"] >= 2
    for a, b in zip(eager, comp, strict=True):
        np.testing.assert_array_equal(a, b)
    prog = f.programs()[0]
    (meta,) = prog._backward_meta.values()
    assert bool(meta[2]) is partitioned, meta[2]


def test_partition_gradient_of_a_gpt_step_equals_eager():
    """The head split of attention (qkv.split(C, dim=2), each piece reshaped into heads): the
    case the copy path was written for, through the whole model."""
    from descent.models import GPT, GPTConfig

    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.0)
    rng = np.random.default_rng(0)
    batches = [tuple(descent.tensor(rng.integers(0, 11, (3, 8))) for _ in range(2))
               for _ in range(STEPS)]  # fmt: skip

    def run(compiled):
        descent.manual_seed(0)
        m = GPT(cfg)

        def step(x, y):
            for p in m.parameters():
                p.grad = None
            _, loss = m(x, y)
            loss.backward()
            return loss

        f = descent.compile(step) if compiled else step
        out = []
        for x, y in batches:
            f(x, y)
            out.append([p.grad._data.copy() for p in m.parameters()])
        return out, f

    eager, _ = run(False)
    comp, f = run(True)
    for ga, gb in zip(eager, comp, strict=True):
        for a, b in zip(ga, gb, strict=True):
            np.testing.assert_array_equal(a, b)
    (meta,) = f.programs()[0]._backward_meta.values()
    assert len(meta[2]) == cfg.n_layer  # the qkv projection's output, once per block
