"""descent.compile, session 31 (helper-231): no adam kernel compiles late in a run.

The replayed AdamW step runs `_cpu_optim.adam_grads_scaled` (clipping's scaling folded in) while
the gradients' norm is over clip_grad_norm_'s max_norm and `adam_grads` from the first step
under it; each compiles per argument signature (the number of parameters of the buffer, or of
a half on the halves plan). The one not run yet on a plan compiled at the step where the norm
crossed max_norm, tens of steps in: the ~0.4-1.1 s calls at replays 52 and 55 of
benchmarks/compile.py's GPT step (session 30, both trees). `fusion._paired` compiles the twin's
signature with the kernel's, at a plan's first call.
"""

from __future__ import annotations

import numpy as np
import pytest

import descent
from descent.compiler import fusion, threads

pytest.importorskip("numba")


def _pairs():
    from descent.kernels import _cpu_optim

    k = _cpu_optim.adam_grads_kernel
    return [(k(par, False), k(par, True)) for par in (False, True)]


def _compiled_signatures():
    return [len(d.overloads) for pair in _pairs() for d in pair]


def _twins_match():
    """Each kernel's signatures are its twin's, without clipping's coef (argument 5)."""
    return all({s[:5] + s[6:] for s in scaled.signatures} == set(plain.signatures)
               for plain, scaled in _pairs())  # fmt: skip


@pytest.mark.parametrize("clipped_first", [True, False])
@pytest.mark.parametrize("plan", [0, 1, 2])
def test_no_adam_kernel_compiles_when_clipping_starts_or_stops(plan, clipped_first, monkeypatch):
    """A GPT trained with clip_grad_norm_ and AdamW, the loss scaled so that the first 5 steps
    clip and the next 3 do not (or the other way round); the first 4 steps on the one-thread
    plan, then `plan` (as a ThreadPlan's trials switch plans). The layer count differs per case:
    parameter counts no other case has, so the kernels' signatures are new to the process.
    After every step each adam kernel's signatures are its twin's, and nothing compiles at the
    step where clipping starts or stops or after it (before: the scaled kernel compiled only
    where a step clipped and the plain one where it did not, on each plan and half: at the
    change on the plan switched to); the parameters are eager's bits."""
    from descent.models import GPT, GPTConfig

    monkeypatch.setattr(threads, "_two_blas_threads", lambda: True)
    monkeypatch.setattr(fusion, "SPLIT_MIN", 1)  # the small model's buffers split in two runs
    monkeypatch.setattr(fusion, "PARALLEL_MIN", 1)  # and their every-core twins made
    init0 = threads.ThreadPlan.__init__

    def init(self):
        init0(self)
        self.fix(0)

    monkeypatch.setattr(threads.ThreadPlan, "__init__", init)

    def train(compiled):
        cfg = GPTConfig(vocab_size=40, block_size=16, n_layer=2 + 2 * plan + clipped_first,
                        n_head=2, n_embd=32, dropout=0.0, bias=True)  # fmt: skip
        descent.manual_seed(0)
        m = GPT(cfg)
        params = list(m.parameters())
        opt = m.configure_optimizers(0.1, 1e-3, (0.9, 0.99))

        def step(x, y, s):
            opt.zero_grad(set_to_none=True)
            _, loss = m(x, y)
            (loss * s).backward()
            norm = descent.optim.clip_grad_norm_(params, 1.0)
            opt.step()
            return loss, norm

        f = descent.compile(step) if compiled else step
        rng = np.random.default_rng(0)
        counts, norms, match = [], [], []
        for i in range(8):
            if compiled and i == 4:
                (prog,) = f.programs()
                prog.threads.fix(plan)
            x, y = (descent.tensor(rng.integers(0, 40, (4, 16))) for _ in range(2))
            big = (i < 5) == clipped_first
            _, norm = f(x, y, descent.tensor(100.0 if big else 1e-3))
            norms.append(float(norm))
            counts.append(_compiled_signatures())
            match.append(_twins_match())
        return [p._data.copy() for p in params], counts, norms, match, f

    ref, _, _, _, _ = train(False)
    got, counts, norms, match, f = train(True)
    assert [n > 1.0 for n in norms] == [(i < 5) == clipped_first for i in range(8)]
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))
    (prog,) = f.programs()
    (ins,) = [ins for ins, _, _ in prog.steps if getattr(ins, "kind", None) == "step"]
    assert ins.fused.fast.hits >= 4  # the fast step ran before the change
    assert all(match), match
    assert counts[4] == counts[5] == counts[7], counts  # nothing compiled at or after it
