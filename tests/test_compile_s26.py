"""descent.compile: session 26 (helper-189).

* A guarded op (x[mask], nonzero, ...) whose result later ops read, with a size new at every
  call (a masked loss): one program for every size of 2 or more (compiler/dynamic_sizes.py).
  Before, every call was recorded (eager's values, no replay) and the function then ran eagerly
  ("x[mask]'s count of Trues keeps changing"). Sizes 0 and 1 keep a program per size.
* `LBFGS.step(closure)` with a closure made at each call over the call's arguments
  (compiler/closures.py): before, "two recordings ... differ" and eager.
* A no-grad write whose operand is a captured tensor first read there (`h.clamp_(min=lo)`, an
  EMA's `add_(src)`): before, "an operand ... was made outside descent's ops" and eager.

Protocol (tests/compile_harness.py): every call compared bitwise with eager (values and
gradients), calls 0 and 1 with the same data, later calls with other data. Each case ran
eagerly, or recorded at every call, at the commit before.
"""

import contextlib

import numpy as np

import descent
import descent.nn.functional as F
from compile_harness import compare_calls as _compare_calls
from descent.compiler import get_default_backend, set_default_backend


@contextlib.contextmanager
def _eager_backend():
    old = get_default_backend()
    set_default_backend("eager")  # (no numba compiles of fused kernels: ~1 s each)
    try:
        yield
    finally:
        set_default_backend(old)


def compare_calls(*args, **kwargs):
    with _eager_backend():
        return _compare_calls(*args, **kwargs)


# the count of Trues in call k's mask: the same in calls 0 and 1, new afterwards (1: a size a
# program per size serves)
_COUNTS = (5, 5, 7, 3, 9, 1, 4, 11, 6, 2)


def _masked(k, shape=(3, 4)):
    rng = np.random.default_rng(260 + max(k - 1, 0))
    x = rng.standard_normal(shape).astype(np.float32)
    m = np.zeros(x.size, bool)
    m[rng.permutation(x.size)[: _COUNTS[k]]] = True
    return x, m.reshape(shape)


def _args(k):
    x, m = _masked(k)
    return descent.tensor(x), descent.tensor(m)


def test_masked_mean_replays_at_every_count():
    """`x[m].mean()` and `(x[m] * 2).sum()` with a new count at calls 2-9: one program for every
    count >= 2 (before: a recording per call, then eager)."""

    def f(x, m):
        return x[m].mean(), (x[m] * 2).sum(), x[m].square()

    compiled, warned = compare_calls(f, _args, calls=len(_COUNTS))
    assert not warned, warned
    assert compiled.stats["replays"] >= 6, compiled.stats


def test_masked_token_loss_trains_with_eagers_steps():
    """A masked cross-entropy in an AdamW step (an embedding, a head, the padding masked out):
    the losses, gradients and weights equal eager's at every call, which replay from call 3
    on but at count 1 (before: a recording per call, then eager)."""

    def twin():
        descent.manual_seed(26)
        emb, head = descent.nn.Embedding(10, 4), descent.nn.Linear(4, 10)
        opt = descent.optim.AdamW([*emb.parameters(), *head.parameters()], lr=0.05)

        def step(tok, tgt, keep):
            opt.zero_grad()
            logits = head(emb(tok))
            loss = F.cross_entropy(logits[keep], tgt[keep])
            loss.backward()
            opt.step()
            return loss.detach(), head.weight.detach().clone(), emb.weight.grad

        return step

    def make(k):
        rng = np.random.default_rng(26 + max(k - 1, 0))
        _, keep = _masked(k)
        return (descent.tensor(rng.integers(0, 10, (3, 4))),
                descent.tensor(rng.integers(0, 10, (3, 4))), descent.tensor(keep))  # fmt: skip

    compiled, warned = compare_calls(twin(), make, calls=len(_COUNTS), eager=twin())
    assert not warned, warned
    assert compiled.stats["replays"] >= 5, compiled.stats


def test_lbfgs_closure_made_at_each_call_replays():
    """LBFGS with a closure over the call's batch (its line search runs it several times, with
    Python control flow on the losses): the step call replays with a closure over each call's
    arguments, eager's losses and weights (before: 'two recordings ... differ', eager)."""

    def twin():
        descent.manual_seed(27)
        model = descent.nn.Linear(4, 2)
        opt = descent.optim.LBFGS(model.parameters(), lr=0.5, max_iter=3)

        def step(x, y):
            def closure():
                opt.zero_grad()
                loss = F.mse_loss(model(x), y)
                loss.backward()
                return loss

            return opt.step(closure).detach(), model.weight.detach().clone()

        return step

    def make(k):
        rng = np.random.default_rng(27 + max(k - 1, 0))
        return (descent.tensor(rng.standard_normal((5, 4)).astype(np.float32)),
                descent.tensor(rng.standard_normal((5, 2)).astype(np.float32)))  # fmt: skip

    compiled, warned = compare_calls(twin(), make, calls=5, eager=twin())
    assert not warned, warned
    assert compiled.stats["replays"] >= 2, compiled.stats


def test_write_with_a_captured_operand_read_first_there_replays():
    """A no-grad write whose operand is a captured tensor the call reads first there
    (`h.clamp_(min=lo)`, an EMA's `ema.mul_(0.5).add_(src)`): the operand is read at each
    replay, so a change between calls reaches it (before: 'an operand ... was made outside
    descent's ops', eager; fuzz seed 26000885)."""

    def twin():
        lo = descent.tensor(np.full((3, 4), -0.25, np.float32))
        src = descent.zeros(3, 4)
        ema = descent.zeros(3, 4)

        def f(x):
            h = x * 2
            with descent.no_grad():
                h.clamp_(min=lo)
                ema.mul_(0.5).add_(src, alpha=0.5)
            return h, ema.clone()

        return f, src

    (fa, src_a), (fb, src_b) = twin(), twin()
    sources = {id(fa): src_a, id(fb): src_b}

    def make(k):
        return _masked(k)[0]

    def before(k):  # (each side's captured source changes between calls)
        for src in sources.values():
            src.fill_(float(k))

    compiled, warned = compare_calls(fa, make, calls=5, eager=fb, before=before)
    assert not warned, warned
    assert compiled.stats["replays"] >= 2, compiled.stats
