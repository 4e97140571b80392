"""descent.compile: fallbacks of session 21 that replay now (helper-157).

* Random draws inside the function (`randn`, `rand_like`, `randint`, `normal`, `bernoulli`,
  `multinomial`, the fills `normal_`/`uniform_`/`bernoulli_`/`exponential_`/`random_` on a
  tensor made inside, `generator=`, and `rrelu`/`alpha_dropout`/`gumbel_softmax`): recorded as
  `creation_random.Draw` ops, which a replay runs again on the same generator in eager's
  order. Each call's values and the generator's state after it are eager's.
* Results whose shape depends on the values (`nonzero`, `argwhere`, `where(cond)`, `unique`,
  `unique_consecutive`, `bincount`): guarded ops (`ops/untracked.guarded`), a program per
  result shape, as helper-150's `x[mask]`; and `x[mask]` with a uint8 mask, several masks, an
  int or an index tensor beside the mask, a bfloat16 x (compiler/mask_read.MaskRead).

Each of these ran eagerly with a warning before. Protocol (tests/compile_harness.py): every
call compared bitwise with eager (values, gradients, and for draws the generator's state after
the call), calls 0 and 1 with the same data, later calls with other data; the draws' generator
is not re-seeded between calls, so the compiled calls continue eager's sequence.
"""

import warnings

import numpy as np
import pytest

import descent
import descent.nn.functional as F
from compile_harness import assert_replayed, compare_calls, no_grad


def _data(k, shape=(3, 4), seed=700):
    rng = np.random.default_rng(max(k - 1, 0) + seed)
    return rng.standard_normal(shape).astype(np.float32)


class _Sides:
    """compare_calls' before/after for draws: the compiled side of call k starts from the
    generator state the eager side started from, and both sides' states after the call are
    compared (so the compiled calls draw eager's numbers and leave the generator where eager
    leaves it; the sequence goes on across calls, never re-seeded)."""

    def __init__(self, gen=None) -> None:
        self.gen = gen
        self.n = 0
        self.start = None
        descent.manual_seed(22)
        if gen is not None:
            gen.manual_seed(23)

    def _state(self):
        return [descent.get_rng_state()] + ([self.gen.get_state()] if self.gen else [])

    def before(self, k) -> None:
        if self.n % 2 == 0:  # eager's side: note where it starts
            self.start = self._state()
        else:  # the compiled side: from the same state
            descent.set_rng_state(self.start[0])
            if self.gen is not None:
                self.gen.set_state(self.start[1])
        self.n += 1

    def after(self):
        return self._state()


def _draws(fn, args=None, gen=None, leaves=()):
    sides = _Sides(gen)
    return compare_calls(fn, args or (lambda k: _data(k)), leaves=leaves, before=sides.before,
                         after=sides.after)  # fmt: skip


# -- (a) random draws ----------------------------------------------------------------------------

_GEN = descent.Generator()

DRAWS = {
    "randn_rand_like": lambda x: x * descent.randn(3, 4) + descent.rand_like(x),
    "randn_like_size": lambda x: x + descent.randn_like(x) + descent.rand(size=(4,)),
    "randint": lambda x: x + descent.randint(0, 5, (3, 4)) + descent.randint_like(x, 3, 9),
    "randperm": lambda x: x[:, descent.randperm(4)],
    "normal_tensor_mean": lambda x: descent.normal(x, 0.5) + descent.normal(0.0, 2.0, (3, 4)),
    "normal_tensor_std": lambda x: descent.normal(1.0, x.abs()),
    "bernoulli": lambda x: descent.bernoulli(x.sigmoid()) * x + x.sigmoid().bernoulli(0.3),
    "multinomial": lambda x: (
        descent.multinomial(x.exp(), 2) * 2,
        x.exp().multinomial(5, replacement=True),
    ),
    "float64": lambda x: x.double() * descent.randn(3, 4, dtype=descent.float64),
    "bfloat16": lambda x: x.bfloat16() + descent.randn(3, 4, dtype=descent.bfloat16),
    "float16_rand": lambda x: x.half() * descent.rand(3, 4, dtype=descent.float16),
    "complex": lambda x: descent.randn(3, 4, dtype=descent.complex64) * x,
    "generator": lambda x: x + descent.randn(3, 4, generator=_GEN) + descent.rand(4),
    "generator_fill": lambda x: x * descent.empty(3, 4).uniform_(-1, 1, generator=_GEN),
    "generator_rrelu": lambda x: descent.rrelu(x, training=True, generator=_GEN),
    "fills": lambda x: _fills(x),
    # (draws whose values nothing reads: the generator still moves as eager's)
    "unused": lambda x: (descent.randn(3), descent.empty(2).normal_(), x * 2)[-1],
    "torch_keywords": lambda x: descent.rand_like(input=x) + descent.bernoulli(input=x.sigmoid()),
    "fill_bernoulli_tensor_p": lambda x: descent.empty(3, 4).bernoulli_(x.sigmoid()) * x,
    "fill_int": lambda x: x + descent.zeros(3, 4, dtype=descent.int32).random_(2, 9),
}


def _fills(x):
    t = descent.empty(3, 4)
    t.normal_(0.5, 2.0)
    u = descent.empty(3, 4).uniform_(-1, 1)
    b = descent.zeros(3, 4).bernoulli_(0.4)
    e = descent.empty(3, 4).exponential_(2.0)
    r = descent.empty(3, 4).random_(10)
    return x * t + u, b + e, r


@pytest.mark.parametrize("name", sorted(DRAWS))
def test_random_draw_replays_with_eager_values_and_state(name):
    gen = _GEN if name.startswith("generator") else None
    assert_replayed(*_draws(DRAWS[name], gen=gen))


def test_fractional_max_pool_with_given_samples_replays_each_calls_windows():
    """`_random_samples` passed in: its windows (computed from the samples on arrays) were a
    constant of the recording, which equal first two calls froze; each call's now."""

    def fn(x, u):
        v, i = F.fractional_max_pool2d(x.reshape(1, 1, 3, 4), 2, output_size=2,
                                       return_indices=True, _random_samples=u)  # fmt: skip
        return v * 2, i

    def args(k):
        return descent.tensor(_data(k)), descent.tensor(_data(k, (1, 1, 2), 77) % 1.0)

    assert_replayed(*compare_calls(fn, args))


def test_random_draws_under_no_grad_replay():
    fn = no_grad(lambda x: (x + descent.randn(3, 4)).relu_() * descent.rand(1))
    assert_replayed(*_draws(fn))


@pytest.mark.parametrize(
    "noise",
    [
        lambda h: F.rrelu(h, training=True),
        lambda h: F.alpha_dropout(h, 0.3, training=True),
        lambda h: F.feature_alpha_dropout(h.reshape(3, 2, 2), 0.5, training=True),
        lambda h: F.gumbel_softmax(h, tau=0.7),
        lambda h: F.gumbel_softmax(h, hard=True),
        lambda h: h * descent.randn_like(h) + F.dropout(h, 0.5),  # (beside dropout's Call)
        lambda h: F.fractional_max_pool2d(h.reshape(1, 1, 3, 4), 2, output_size=2),
    ],
)
def test_random_draws_in_a_training_step_replay_gradients(noise):
    w = descent.tensor(_data(0, seed=9), requires_grad=True)

    def step(x):
        h = noise(x * w)
        loss = (h * h).sum()
        loss.backward()
        return loss, h

    assert_replayed(*_draws(step, leaves=[w]))


# -- (b) results whose shape depends on the values ------------------------------------------------

# the size of the data-dependent result per call: 0 and 1 the same, then others, then back
_SIZES = [5, 5, 8, 5, 2, 8, 5, 1, 5]


def _positives(k, sizes=_SIZES):
    """x with sizes[k] positive entries at positions that move with k (other values too)."""
    rng = np.random.default_rng(max(k - 1, 0) + 800)
    x = -np.abs(rng.standard_normal((3, 4))).astype(np.float32)
    pos = rng.permutation(12)[: sizes[k]]
    x.reshape(-1)[pos] = np.abs(x.reshape(-1)[pos]) + 0.5
    return descent.tensor(x), descent.tensor(_data(k, (3, 4), 801))


def _levels(k):
    """12 integers with exactly _SIZES[k] distinct values 0 .. _SIZES[k] - 1, shuffled."""
    rng = np.random.default_rng(max(k - 1, 0) + 900)
    n = _SIZES[k]
    v = np.concatenate([np.arange(n), rng.integers(0, n, 12 - n)])
    return descent.tensor(rng.permutation(v)), descent.tensor(_data(k, (12,), 901))


def _guarded(fn, make):
    compiled, warned = compare_calls(fn, make, len(_SIZES))
    assert not warned, warned
    st = compiled.stats
    assert st["fallbacks"] == 0 and st["replays"] >= 3, st  # (sizes 5 and 8 come back)
    return compiled


SHAPES = {
    "nonzero": (lambda x, y: ((x > 0).nonzero() * 2, y[(x > 0).nonzero()[:, 0]]), _positives),
    "argwhere": (lambda x, y: descent.argwhere(x > 0) + 1, _positives),
    "nonzero_tuple": (lambda x, y: y[(x > 0).nonzero(as_tuple=True)] * 2, _positives),
    "where_cond": (lambda x, y: descent.where(x > 0)[1] + y[descent.where(x > 0)], _positives),
    "unique": (lambda v, y: v.unique() * 2, _levels),
    "unique_inverse_counts": (
        lambda v, y: descent.unique(v, sorted=True, return_inverse=True, return_counts=True),
        _levels,
    ),
    "unique_dim": (lambda v, y: descent.unique(v.reshape(12, 1) * 3, dim=0) + 1, _levels),
    "unique_consecutive": (
        lambda v, y: descent.unique_consecutive(
            v.sort().values, return_inverse=True, return_counts=True
        ),  # fmt: skip
        _levels,
    ),
    "bincount": (lambda v, y: descent.bincount(v) * 2, _levels),
    "bincount_weights": (lambda v, y: descent.bincount(v, weights=y, minlength=3), _levels),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_data_dependent_shape_replays_per_size(name):
    fn, make = SHAPES[name]
    _guarded(fn, make)


def test_nonzero_in_a_training_step_replays_gradients():
    w = descent.tensor(_data(0, seed=12), requires_grad=True)

    def step(x, y):
        r, c = descent.where(x > 0)
        h = (y * w)[r, c]
        loss = (h * h).sum() + h.sum()
        loss.backward()
        return loss, h

    compiled, warned = compare_calls(step, _positives, len(_SIZES), leaves=[w])
    assert not warned and compiled.stats["replays"] >= 3, (compiled.stats, warned)


def test_nonzero_after_zero_grad_in_an_optimizer_step_replays():
    """A guarded op may follow an optimizer's zero_grad (idempotent: a replay stopped by the
    guard runs it again); before the draws and the step, as in a training step."""

    def make():
        w = descent.tensor(_data(0, seed=14), requires_grad=True)
        opt = descent.optim.SGD([w], lr=0.1, momentum=0.9)

        def step(x, y):
            opt.zero_grad()
            r, c = descent.where(x > 0)
            h = (y * w)[r, c]
            loss = (h * h).sum() + h.sum()
            loss.backward()
            opt.step()
            return loss, h, w.detach() * 1

        return step

    # (call 0 records alone: its key has no .grad yet; a size needs two recordings in a row)
    sizes = [5, 5, 5, 8, 8, 5, 5, 8, 5]
    compiled, warned = compare_calls(
        make(), lambda k: _positives(k, sizes), len(sizes), eager=make()
    )
    assert not warned and compiled.stats["replays"] >= 4, (compiled.stats, warned)


def test_guarded_read_after_a_write_into_the_calls_own_tensor_replays():
    """A no-grad write into a tensor the call computed leaves nothing behind when a replay stops
    at a later guard (`Write.local`); one into an argument does (below)."""

    def fn(x, y):
        h = y.detach().clone()
        with descent.no_grad():
            h[0] = 0.0
            h.mul_(2)
        return descent.where(x > 0)[0] * 2, h, (x > 0).nonzero()

    _guarded(fn, _positives)


def test_guarded_read_after_a_write_into_an_argument_replays():
    """Since session 23 (it ran eagerly before): a replay stopped by the guard puts the
    argument's memory back (tests/test_compile_s23_fallbacks.py)."""

    def fn(x, y):
        with descent.no_grad():
            y.mul_(2)
        return (x > 0).nonzero(), y

    _guarded(fn, _positives)


# x[mask] forms beyond one bool mask: counts per call as above
def _masks(k):
    rng = np.random.default_rng(max(k - 1, 0) + 600)
    n = min(_SIZES[k], 4)
    m = np.zeros(4, bool)
    m[rng.permutation(4)[:n]] = True
    m2 = np.zeros(5, bool)
    m2[rng.permutation(5)[:n]] = True
    return descent.tensor(_data(k, (4, 5, 3), 601)), descent.tensor(m), descent.tensor(m2)


MASKS = {
    "uint8": lambda x, m, m2: x[m.to(descent.uint8)],
    "two_masks": lambda x, m, m2: x[m, m2],
    "int_and_mask": lambda x, m, m2: x[1, m2],
    "mask_slice_int": lambda x, m, m2: x[m, :, 0],
    "index_tensor_and_mask": lambda x, m, m2: x[:, m2, descent.tensor([2])],
    "bfloat16": lambda x, m, m2: x.bfloat16()[m],
    "ellipsis": lambda x, m, m2: x[m, ...] + x[..., m2, :].sum(),
}


@pytest.mark.parametrize("name", sorted(MASKS))
def test_wider_mask_reads_replay_gradients(name):
    read = MASKS[name]
    w = descent.tensor(_data(0, (4, 5, 3), seed=13), requires_grad=True)

    def step(x, m, m2):
        h = read(x * w, m, m2).float()
        loss = (h * h).sum()
        loss.backward()
        return loss, h

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "indexing with dtype torch.uint8")
        compiled, warned = compare_calls(step, _masks, len(_SIZES), leaves=[w])
    assert not [w for w in warned if "uint8" not in w], warned
    assert compiled.stats["fallbacks"] == 0 and compiled.stats["replays"] >= 3, compiled.stats


def test_guarded_shape_after_a_draw_replays():
    """A replay stopped by a guard must leave nothing behind; a draw before it has moved the
    generator, which such a replay puts back since session 23 (it ran eagerly before)."""
    fn = lambda x, y: (descent.rand(2) + 1, (x > 0).nonzero())  # noqa: E731
    sides = _Sides()
    compiled, warned = compare_calls(fn, _positives, len(_SIZES), before=sides.before,
                                     after=sides.after)  # fmt: skip
    assert not warned and compiled.stats["replays"] >= 3, (compiled.stats, warned)
