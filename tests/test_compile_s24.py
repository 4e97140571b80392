"""descent.compile: fallbacks of session 23 that replay now (helper-173).

* Gamma, Beta, Dirichlet (through `standard_gamma`: Chi2, StudentT, ...), Binomial and Poisson
  samples: their NumPy draws are `_replayable` functions of the parameters' tensors (Draw ops),
  and Gamma's implicit-reparameterisation gradient an op over alpha and the drawn sample.
* `validate_args` (on by default): the checks read `ok.all()` as a guarded op's shape, not
  with bool(); a replay whose values fail stops at the guard and the call runs eagerly, which
  raises eager's ValueError.
* `nn.Embedding(max_norm=)`, `F.embedding(max_norm=)`, `F.embedding_bag(max_norm=)`: the renorm
  is a write with a redo (ops/view_write.written), replayed into the weight from each call's
  indices; the weight's version goes up on every call, as PyTorch's embedding_renorm_.

Protocol (tests/compile_harness.py): every call compared bitwise with eager (values,
gradients, the generator's state after the call), calls 0 and 1 with the same data, later calls
with other data. Each case ran eagerly with a warning at the commit before.
"""

import contextlib

import numpy as np
import pytest

import descent
import descent.distributions as D
import descent.nn.functional as F
from compile_harness import compare_calls as _compare_calls
from descent.compiler import get_default_backend, set_default_backend


def compare_calls(*args, **kwargs):
    """compare_calls with the "eager" backend (eager's kernels, no fused chains): the cases
    are about draws, guards and writes, and a fused chain's numba compile costs ~1 s each."""
    with _eager_backend():
        return _compare_calls(*args, **kwargs)


@contextlib.contextmanager
def _eager_backend():
    old = get_default_backend()
    set_default_backend("eager")
    try:
        yield
    finally:
        set_default_backend(old)


def _data(k, shape=(3, 4), seed=240):
    rng = np.random.default_rng(max(k - 1, 0) + seed)
    return rng.standard_normal(shape).astype(np.float32)


class _Sides:
    """compare_calls' before/after for draws: the compiled side of call k starts from the
    generator state the eager side started from; both sides' states after it are compared."""

    def __init__(self) -> None:
        self.n = 0
        descent.manual_seed(24)

    def before(self, k) -> None:
        if self.n % 2 == 0:
            self.start = descent.get_rng_state()
        else:
            descent.set_rng_state(self.start)
        self.n += 1

    def after(self):
        return [descent.get_rng_state()]


def _replayed(compiled, warned, at_least=3):
    assert not warned, warned
    assert compiled.stats["fallbacks"] == 0, compiled.stats
    assert compiled.stats["replays"] >= at_least, compiled.stats


# -- Gamma, Beta, Dirichlet, Binomial, Poisson: Draw ops ------------------------------------------

_W = descent.tensor(_data(0, seed=241), requires_grad=True)


def _samplers_step(x):
    c = x.abs() * _W.abs() + 0.5  # (alpha depends on _W: Gamma's gradient reaches it)
    g = D.Gamma(c, x.abs() + 1, validate_args=False).rsample((2,))
    b = D.Beta(c, 2.0, validate_args=False).rsample()
    d = D.Dirichlet(c, validate_args=False).rsample()
    loss = (g * g).sum() + b.sum() + (d * x).sum()
    loss.backward()
    p = x.sigmoid()
    return (loss, g, b, d, D.Binomial(5, p, validate_args=False).sample(),
            D.Binomial(x.abs().round() + 1, logits=x, validate_args=False).sample((2,)),
            D.Poisson(x.abs() * 3, validate_args=False).sample((2,)))  # fmt: skip


def test_gamma_beta_dirichlet_binomial_poisson_samples_replay():
    sides = _Sides()
    c, warned = compare_calls(_samplers_step, _data, leaves=[_W], before=sides.before,
                              after=sides.after)  # fmt: skip
    _replayed(c, warned)


# -- validate_args --------------------------------------------------------------------------------

_V = descent.tensor(_data(0, (3,), seed=242), requires_grad=True)


def _validated_step(x):
    on = {"validate_args": True}  # (the default, given: whatever another test left)
    n = D.Normal(x * _V, x.abs(), **on)  # scale > 0
    s = n.rsample()
    lp = n.log_prob(s)  # the sample's support check, after the draw
    u = D.Uniform(x - 1, x + 1, **on).rsample()  # low < high
    b = D.Bernoulli(probs=x.sigmoid(), **on).sample()
    loss = lp.sum() + (u * _V).sum() + D.Poisson(x.abs(), **on).log_prob(b).sum()
    loss.backward()
    return loss, s, u, b


_VALID = [_data(k, (3,), 243) for k in range(7)]
_INVALID = _VALID[:5] + [np.array([1.0, 0.0, 2.0], np.float32)] + _VALID[5:]  # scale 0 at call 5


def test_validate_args_replays_and_a_failing_call_raises_eagers_error():
    sides = _Sides()
    c, warned = compare_calls(_validated_step, _VALID, leaves=[_V], before=sides.before,
                              after=sides.after)  # fmt: skip
    _replayed(c, warned, 5)
    # a call whose values fail the check: the replay stops at the guard, and the call runs
    # eagerly, raising eager's error with the generator where eager's leaves it
    errors, states = [], []
    for f in (_validated_step, c):
        descent.manual_seed(5)
        _V.grad = None
        with pytest.raises(ValueError, match="satisfy the constraint") as e:
            f(descent.tensor(_INVALID[5]))
        errors.append(str(e.value))
        states.append(descent.get_rng_state()._data.copy())
    assert errors[0] == errors[1]
    assert np.array_equal(states[0], states[1])
    replays = c.stats["replays"]
    got = c(descent.tensor(_VALID[6]))  # and replays again
    assert c.stats["replays"] == replays + 1, c.stats
    assert got[0].shape == ()


def _matrix_and_rejection_step(x):
    on = {"validate_args": True}
    cov = descent.eye(3) * (x * _V).abs() + 0.5  # (validated: symmetric, positive-definite)
    m = D.MultivariateNormal(x * _V, covariance_matrix=cov, **on)
    s = m.rsample((2,))
    loss = m.log_prob(s).sum()
    loss.backward()
    # (VonMises: rejection rounds until every draw is accepted: a guarded count of rounds)
    return loss, s, D.VonMises(x, x.abs() + 20, **on).sample()


def test_positive_definite_check_and_von_mises_rounds_replay():
    """The positive-definite check's factorisations are a computed kernel (they were NumPy on
    the arrays: a constant the recording would freeze) behind the symmetric check's guard;
    VonMises.sample's `while not all accepted` reads a guarded shape and its draws replay."""
    sides = _Sides()
    c, warned = compare_calls(_matrix_and_rejection_step, _VALID, leaves=[_V],
                              before=sides.before, after=sides.after)  # fmt: skip
    _replayed(c, warned, 2)


# -- embedding's max_norm: a replayed write -------------------------------------------------------


def _embedding_step():
    descent.manual_seed(3)
    emb = descent.nn.Embedding(6, 3, max_norm=1.0)
    w = descent.tensor(_data(0, (6, 3), seed=244), requires_grad=True)
    opt = descent.optim.SGD([emb.weight, w], lr=0.5)

    def step(i):
        opt.zero_grad()
        h = emb(i)
        g = F.embedding(i, w, max_norm=0.8, norm_type=1.0)
        b = F.embedding_bag(i.reshape(-1), w, descent.tensor([0, 3]), max_norm=1.5, mode="mean")
        loss = (h * h).sum() + (g * 3).sum() + b.sum()
        loss.backward()
        opt.step()
        return loss, h, g, b, emb.weight * 1, w * 1

    step.weights = (emb.weight, w)
    return step


def _indices(k):
    return (descent.tensor(np.random.default_rng(max(k - 1, 0) + 245).integers(0, 6, (2, 3))),)


def test_embedding_max_norm_renorm_replays():
    fn, eager = _embedding_step(), _embedding_step()
    _replayed(*compare_calls(fn, _indices, eager=eager))
    # the weights' versions: +1 per renorm (every call) and per optimizer step, as eager's
    assert [t._version for t in fn.weights] == [t._version for t in eager.weights]


# -- a guarded op on what an optimizer's step, clipping or a scheduler changed --------------------

# the count of positive entries per call: calls 1 and 2 the same (call 0, without .grad yet,
# has a key of its own), then others, then back
_SIZES = [5, 5, 5, 8, 5, 8, 5, 2, 5, 5]


def _positives(k):
    rng = np.random.default_rng(k + 248)
    x = -np.abs(rng.standard_normal((3, 4))).astype(np.float32)
    pos = rng.permutation(12)[: _SIZES[k]]
    x.reshape(-1)[pos] = np.abs(x.reshape(-1)[pos]) + 0.5
    return (descent.tensor(x),)


def _step_reading_the_update():
    w = descent.tensor(np.abs(_data(0, seed=246)) + 1, requires_grad=True)  # (stays > 0)
    opt = descent.optim.Adam([w], lr=0.1)
    lrs = descent.optim.lr_scheduler
    # (ChainedScheduler steps its children: their counters are put back too)
    sched = lrs.ChainedScheduler([lrs.StepLR(opt, 2, 0.5), lrs.ExponentialLR(opt, 0.9)])

    def step(x):
        opt.zero_grad()
        loss = (x * w * w).sum()
        loss.backward()
        descent.nn.utils.clip_grad_norm_([w], 0.5)
        opt.step()
        sched.step()
        # (read from the updated weight, after the step by its nature; x's positives decide
        # the counts)
        v = w.detach() * x
        return loss, (v > 0).nonzero(), v[v > 0], w.detach() * 1, w.grad * 1

    step.opt = opt
    return step


def test_guarded_op_after_an_optimizer_step_reading_what_it_changed_replays():
    """A replay stopped by the guard puts back the parameter, its gradient, Adam's state and
    step count, the group's lr and the scheduler's counters (program._steps_snapshot), so the
    call that runs next (another program, or a recording) starts where eager's did."""
    fn, eager = _step_reading_the_update(), _step_reading_the_update()
    # (the eager backend: the fused Adam step's numba kernel costs ~2 s to compile; with it,
    # AdamFastStep's plan survives the snapshot's put-back: checked by hand)
    c, warned = compare_calls(fn, lambda k: _positives(k)[:1], len(_SIZES), eager=eager)
    _replayed(c, warned)
    assert c.stats["recordings"] > 3, c.stats  # (some replays stopped at a guard: undone)
    (p,), (q,) = fn.opt.param_groups[0]["params"], eager.opt.param_groups[0]["params"]
    assert p._version == q._version
    assert fn.opt.param_groups[0]["lr"] == eager.opt.param_groups[0]["lr"]
    for k, v in eager.opt.state[q].items():
        assert np.array_equal(fn.opt.state[p][k]._data, v._data), k


def test_an_optimizer_step_with_a_closure_before_a_guard_is_not_undoable():
    """The snapshot covers an optimizer's step without a closure (checked on the recorder's
    rule: a closure runs the model again, which the snapshot does not cover)."""
    from descent.compiler.recorder import Call, _undoable

    opt = descent.optim.SGD([descent.zeros(2, requires_grad=True)], lr=0.1)
    assert _undoable([Call("step", opt.step, (), {})])
    assert not _undoable([Call("step", opt.step, (lambda: None,), {})])


# -- found by the fuzz (seeds 24000001-24001000) ----------------------------------------------


_W43 = descent.tensor(_data(0, (4, 3), seed=249), requires_grad=True)
_CLASS_WEIGHTS = descent.tensor([0.5, 1.0, 2.0])


def _weighted_cross_entropy(x, y):
    loss = F.cross_entropy(x @ _W43, y, weight=_CLASS_WEIGHTS)
    loss.backward()
    return loss


def _batches(k):
    rng = np.random.default_rng(k + 250)  # (calls 0 and 1 differ: every call has other targets)
    return descent.tensor(rng.standard_normal((5, 4)).astype(np.float32)), descent.tensor(
        rng.integers(0, 3, 5)
    )


def test_cross_entropy_with_class_weights_replays_with_other_targets():
    """'mean' divides by the targets' summed weight, a number forward computes (CrossEntropy's
    `scale`): compared between the two recordings, so two batches with other targets ran
    eagerly ("two recordings differ"; fuzz seed 24000512). It is a computed slot now."""
    _replayed(*_compare_calls(_weighted_cross_entropy, _batches, leaves=[_W43]))


_W33 = descent.tensor(np.eye(3, dtype=np.float32), requires_grad=True)
_NORMS = [1, 1, 20, 1, 50, 20, 0.1, 20, 1]  # (scales: 0, 3 or 4 squarings)


def _matrix_exp_step(x):
    y = descent.linalg.matrix_exp(x @ _W33)
    loss = (y * y).sum()
    loss.backward()
    return loss, y


def test_matrix_exp_replays_a_program_per_count_of_squarings():
    """The count of squarings (from the largest 1-norm) is a guarded op's length, not a float()
    read (fuzz seeds 24000266, 24000289, 24000306, 24000385, 24000792, 24000830)."""
    c, warned = compare_calls(_matrix_exp_step, lambda k: _data(k, (3, 3), 251) * _NORMS[k],
                              len(_NORMS), leaves=[_W33])  # fmt: skip
    _replayed(c, warned, 2)
