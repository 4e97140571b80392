"""descent.compile: fallbacks of session 22 that replay now (helper-164).

* A guarded op (nonzero, unique, bincount, x[mask], ...) after a random draw, dropout's mask,
  a backward pass or a write into the caller's memory: a replay that its guard stops puts the
  generators' states, the leaves' `.grad` and the written memory back (program._undo_plan)
  before another program or a recording runs the call. After an optimizer's step it still
  runs eagerly, with a warning.
* `F.one_hot` without num_classes and `repeat_interleave` with a tensor of counts: guarded
  ops, a program per result shape.
* `nn.init`'s random fills, `poisson` and the `distributions`' samples: Draw ops, replayed on
  the same generator in eager's order.
* `embedding_bag` and `ctc_loss`: their arrays computed from the indices', offsets', targets'
  and lengths' values come from one guarded kernel each, recomputed at every replay.
* A fused elementwise chain over a strided (F-ordered) operand runs its ops one by one, so
  the result has eager's layout (a later mean summed in another order: fuzz seed 23001470).

Protocol (tests/compile_harness.py): every call compared bitwise with eager (values, gradients,
and for draws the generator's state after the call), calls 0 and 1 with the same data, later
calls with other data. Each case ran eagerly with a warning (or, for the fused chain, gave a
value 1 ulp off) at the commit before.
"""

import numpy as np

import descent
from compile_harness import compare_calls


def _data(k, shape=(3, 4), seed=230):
    rng = np.random.default_rng(max(k - 1, 0) + seed)
    return rng.standard_normal(shape).astype(np.float32)


class _Sides:
    """compare_calls' before/after for draws: the compiled side of call k starts from the
    generator states the eager side started from; both sides' states after it are compared."""

    def __init__(self, gen=None) -> None:
        self.gen = gen
        self.n = 0
        descent.manual_seed(23)
        if gen is not None:
            gen.manual_seed(24)

    def _state(self):
        return [descent.get_rng_state()] + ([self.gen.get_state()] if self.gen else [])

    def before(self, k) -> None:
        if self.n % 2 == 0:
            self.start = self._state()
        else:
            descent.set_rng_state(self.start[0])
            if self.gen is not None:
                self.gen.set_state(self.start[1])
        self.n += 1

    def after(self):
        return self._state()


def _replayed(compiled, warned, at_least=3):
    assert not warned, warned
    assert compiled.stats["fallbacks"] == 0, compiled.stats
    assert compiled.stats["replays"] >= at_least, compiled.stats


# -- a fused chain over a strided operand ---------------------------------------------------------


def test_fused_chain_on_an_f_ordered_operand_keeps_eagers_layout():
    """z.t().reshape(...) is an F-ordered view; eager's elementwise results keep that order
    and the mean sums in it. The fused kernel wrote a C-ordered result: the mean's rounding
    differed (1 ulp; fuzz seed 23001470)."""

    def fn(z):
        v = z.t().reshape(64, -1)  # (64, 4), F-ordered
        h = v.abs() + 0.1
        return (((v - h) / h + h.log()) * 0.5).mean()

    _replayed(*compare_calls(fn, lambda k: _data(k, (4, 64), 244), 8), at_least=6)
