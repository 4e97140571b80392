"""descent.compile: fallbacks of session 22 that replay now (helper-164).

* A guarded op (nonzero, unique, bincount, x[mask], ...) after a random draw, dropout's mask,
  a backward pass or a write into the caller's memory: a replay that its guard stops puts the
  generators' states, the leaves' `.grad` and the written memory back (program._undo_plan)
  before another program or a recording runs the call. After an optimizer's step it runs
  before the step when it reads nothing the step changes (since session 24 also otherwise:
  tests/test_compile_s24.py).
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
import pytest

import descent
import descent.distributions as D
import descent.nn.functional as F
from compile_harness import compare_calls
from descent.nn import init


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


# -- a guarded op after a draw, a backward pass or a write ----------------------------------------

# the count of positive entries per call: 0 and 1 the same, then others, then back
_SIZES = [5, 5, 8, 5, 2, 8, 5, 1, 5]


def _positives(k, sizes=_SIZES):
    rng = np.random.default_rng(max(k - 1, 0) + 231)
    x = -np.abs(rng.standard_normal((3, 4))).astype(np.float32)
    pos = rng.permutation(12)[: sizes[k]]
    x.reshape(-1)[pos] = np.abs(x.reshape(-1)[pos]) + 0.5
    return descent.tensor(x), descent.tensor(_data(k, seed=232))


_W = descent.tensor(_data(0, seed=233), requires_grad=True)


def _after_draw(x, y):
    return descent.rand(3, 4) * y, (x > 0).nonzero(), descent.randn(2)


def _after_dropout(x, y):
    return F.dropout(y, 0.5, training=True), x[x > 0] * 2


def _after_write_into_argument(x, y):
    with descent.no_grad():
        y.mul_(2)  # (a replay stopped below must not leave y doubled: the call runs again)
    return descent.unique((x > 0).long() * descent.arange(1, 13).reshape(3, 4)), y


def _after_write_into_captured():
    buf = descent.zeros(3, 4)  # (a twin per side: eager's and the compiled function's)

    def fn(x, y):
        with descent.no_grad():
            buf.add_(y)
        return descent.bincount((x > 0).long().flatten() * 3) * 2, buf * 1

    return fn


def _after_backward(x, y):
    loss = (y * _W).sum()
    loss.backward()
    return loss, descent.where(x > 0)[1]


AFTER = {
    "draw": (lambda: _after_draw, True, ()),
    "dropout": (lambda: _after_dropout, True, ()),
    "write_into_argument": (lambda: _after_write_into_argument, False, ()),
    "write_into_captured": (_after_write_into_captured, False, ()),
    "backward": (lambda: _after_backward, False, (_W,)),
}


@pytest.mark.parametrize("name", sorted(AFTER))
def test_guarded_op_after_an_effect_replays(name):
    make, draws, leaves = AFTER[name]
    sides = _Sides() if draws else None
    kw = dict(before=sides.before, after=sides.after) if draws else {}
    c, warned = compare_calls(make(), _positives, len(_SIZES), eager=make(), leaves=leaves, **kw)
    _replayed(c, warned)


def _training_step(reads_w: bool):
    def make():
        w = descent.tensor(_data(0, seed=234), requires_grad=True)
        opt = descent.optim.SGD([w], lr=0.1, momentum=0.9)

        def step(x, y):
            opt.zero_grad()
            pred = y * w
            loss = (pred * pred).sum()
            loss.backward()
            descent.nn.utils.clip_grad_norm_([w], 0.5)
            opt.step()
            if reads_w:  # (the updated weight's positives: after the step by its nature)
                return loss, (w > 0).nonzero(), w.detach() * 1
            return loss, (x > 0).nonzero(), pred.detach()[x > 0], w.detach() * 1

        return step

    return make


# (call 0 records alone: its key has no .grad yet; a size needs two recordings in a row)
_STEP_SIZES = [5, 5, 5, 8, 8, 5, 5, 8, 5]


def test_guarded_op_after_an_optimizer_step_runs_before_it():
    """A guarded op after clipping and an optimizer's step that reads nothing they change (the
    step's inputs, an argument) runs before them at replay (recorder._hoist): eager's values,
    parameters and gradients on every call."""
    make = _training_step(reads_w=False)
    c, warned = compare_calls(make(), lambda k: _positives(k, _STEP_SIZES), len(_STEP_SIZES),
                              eager=make())  # fmt: skip
    _replayed(c, warned)


# (a guarded op on what the step changed ran eagerly until session 24; it replays now:
# tests/test_compile_s24.py)


def test_a_gpu_dropout_mask_before_a_guard_is_not_undoable():
    """The undo record puts CPU generators back only: a dropout mask drawn on a GPU before a
    guarded op keeps the call eager (checked on the recorder's rule: no GPU here)."""
    from descent.compiler.recorder import Call, _has_effects

    def mask(device):
        return Call("dropout_mask", None, ((2,), 0.5, np.dtype(np.float32), device, None), {})

    assert not _has_effects([mask(descent.zeros(1).device)])
    assert _has_effects([mask("cuda:0")])


# -- one_hot without num_classes, repeat_interleave with tensor counts ----------------------------


def _counts(k):
    """4 counts summing to _SIZES[k] (spread differently each call), 4 values, 8 classes
    whose largest is _SIZES[k] - 1."""
    rng = np.random.default_rng(max(k - 1, 0) + 235)
    c = rng.multinomial(_SIZES[k], [0.25] * 4).astype(np.int64)
    cls = np.concatenate([[_SIZES[k] - 1], rng.integers(0, _SIZES[k], 7)])
    return descent.tensor(c), descent.tensor(_data(k, (4,), 236)), descent.tensor(cls)


_W4 = descent.tensor(_data(0, (4,), seed=237), requires_grad=True)


def _shapes_step(c, y, cls):
    h = (y * _W4).repeat_interleave(c)  # (sum(c),)
    hot = F.one_hot(cls) * 2  # (8, max + 1)
    loss = (h * h).sum()
    loss.backward()
    return loss, h, hot, descent.repeat_interleave(c) + 1, y.reshape(4, 1).repeat_interleave(c, 0)


def test_one_hot_and_repeat_interleave_replay_per_shape():
    _replayed(*compare_calls(_shapes_step, _counts, len(_SIZES), leaves=[_W4]))


# -- nn.init, poisson, distributions: Draw ops ----------------------------------------------------

_GEN = descent.Generator()


def _inits(x):
    w = descent.empty(3, 4)
    init.uniform_(w, -1, 1)
    a = w * x
    init.normal_(w, 0.5, 2.0)
    b = w + x
    init.trunc_normal_(w, std=0.5)
    c = w * 1
    init.kaiming_uniform_(w, a=5**0.5)
    d = w - x
    init.xavier_normal_(w, generator=_GEN)
    e = w * 2
    init.orthogonal_(w)
    f = w + 0
    init.sparse_(w, 0.5)
    return a, b, c, d, e, f, w * 1, descent.poisson(x.abs() * 3), descent.poisson(x.abs(), _GEN)


def test_nn_init_and_poisson_replay_with_eager_values_and_state():
    sides = _Sides(_GEN)
    _replayed(*compare_calls(_inits, _data, before=sides.before, after=sides.after))


_W34 = descent.tensor(_data(0, seed=238), requires_grad=True)


def _distributions_step(x):
    n = D.Normal(x * _W34, x.abs() + 0.5, validate_args=False)
    s = n.rsample()
    loss = (s * s).sum() + n.log_prob(s).sum()
    loss.backward()
    return (loss, s, D.Bernoulli(logits=x, validate_args=False).sample(),
            D.Categorical(logits=x, validate_args=False).sample((5,)))  # fmt: skip


def test_distribution_samples_replay_with_eager_values_and_state():
    sides = _Sides()
    c, warned = compare_calls(_distributions_step, _data, leaves=[_W34], before=sides.before,
                              after=sides.after)  # fmt: skip
    _replayed(c, warned)


# -- embedding_bag, ctc_loss ----------------------------------------------------------------------

# the number of padding indices in the 1-D input per call
_PADS = [3, 3, 5, 3, 1, 5, 3, 0, 3]
_W63 = descent.tensor(_data(0, (6, 3), seed=239), requires_grad=True)


def _bags(k):
    rng = np.random.default_rng(max(k - 1, 0) + 240)
    i1 = rng.integers(0, 5, 8)
    i1[rng.permutation(8)[: _PADS[k]]] = 5
    off = np.array([0, 2 + k % 2, 5])
    return (descent.tensor(i1), descent.tensor(off), descent.tensor(rng.integers(0, 5, (3, 4))),
            descent.tensor(_data(k, (8,), 241)))  # fmt: skip


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_training_step_replays(mode):
    def step(i1, off, i2, psw):
        a = F.embedding_bag(i1, _W63, off, mode=mode, padding_idx=5,
                            scale_grad_by_freq=mode != "max")  # fmt: skip
        b = F.embedding_bag(i2, _W63, mode=mode)
        outs = [a, b]
        if mode == "sum":
            outs.append(F.embedding_bag(i1, _W63, off, per_sample_weights=psw, padding_idx=5,
                                        mode="sum"))  # fmt: skip
        loss = sum((o * o).sum() for o in outs)
        loss.backward()
        return loss, *outs

    _replayed(*compare_calls(step, _bags, len(_PADS), leaves=[_W63]), at_least=1)


# the longest target per call (the extended labels' count 2 S + 1 is a guarded shape)
_SMAX = [3, 3, 2, 3, 4, 2, 3, 2, 3]
_W635 = descent.tensor(np.ones((6, 3, 5), np.float32), requires_grad=True)


def _ctc_data(k):
    rng = np.random.default_rng(max(k - 1, 0) + 242)
    s = _SMAX[k]
    tl = rng.permutation(np.array([s, min(s, 6 - s), 6 - s - min(s, 6 - s)]))  # (sum 6)
    tg = rng.integers(1, 5, (3, 4))
    il = rng.integers(3, 7, 3)
    il[2] = 0 if k % 3 == 2 else il[2]  # (a sample without frames every third call)
    cat = np.concatenate([tg[i, : tl[i]] for i in range(3)])
    return (descent.tensor(_data(k, (6, 3, 5), 243)), descent.tensor(tg), descent.tensor(il),
            descent.tensor(tl), descent.tensor(cat))  # fmt: skip


@pytest.mark.parametrize("concat", [False, True], ids=["padded", "concatenated"])
def test_ctc_loss_training_step_replays(concat):
    def step(x, tg, il, tl, cat):
        lp = (x * _W635).log_softmax(2)
        loss = F.ctc_loss(lp, cat if concat else tg, il, tl, zero_infinity=concat)
        loss.backward()
        return loss

    _replayed(*compare_calls(step, _ctc_data, len(_SMAX), leaves=[_W635]), at_least=2)


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
