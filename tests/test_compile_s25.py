"""descent.compile: session 25 (helper-178).

* A guarded op (nonzero, where(condition), unique, bincount, x[mask], ...) whose result only
  leaves the call (returned or dropped: no later op reads it, and the function's Python code
  does not read its size) replays at every size: before, a size new at every call recorded
  every call (eager's values, no replay). A size read in Python (`.shape`, `len()`) keeps the
  guard, a program per size.
* `optimizer.step(closure)` (every optimizer but LBFGS and SparseAdam): the closure runs as
  the function's own ops, the step as a recorded call without it.
* A tensor learning rate: the step's `.item()` of it is read inside the recorded step call.
* sgn's known-zero gradient where a real gradient meets it (the engine's real one replaces it):
  the pass without it. Alone (a leaf gets zeros) it still runs eagerly.

Protocol (tests/compile_harness.py): every call compared bitwise with eager (values and
gradients), calls 0 and 1 with the same data, later calls with other data. Each case except
the size read and the lone known zero ran eagerly (or recorded at every call) at the commit
before.
"""

import contextlib

import numpy as np
import pytest

import descent
from compile_harness import compare_calls as _compare_calls
from descent.compiler import get_default_backend, set_default_backend


def compare_calls(*args, **kwargs):
    """compare_calls with the "eager" backend (eager's kernels, no fused chains or fused
    optimizer steps): the cases are about what is recorded, and each numba compile of a fused
    kernel costs ~1 s."""
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


# the count of positive entries in call k's data: the same in calls 0 and 1, new afterwards
_COUNTS = (5, 5, 2, 7, 9, 1)


def _data(k, shape=(3, 4)):
    rng = np.random.default_rng(250 + max(k - 1, 0))
    x = -np.abs(rng.standard_normal(shape)).astype(np.float32) - 0.5
    flat = x.reshape(-1)
    flat[rng.permutation(flat.size)[: _COUNTS[k]]] *= -1
    return x


def _replayed(compiled, warned, at_least=3):
    assert not warned, warned
    assert compiled.stats["fallbacks"] == 0, compiled.stats
    assert compiled.stats["replays"] >= at_least, compiled.stats


# -- a guarded result that only leaves the call ----------------------------------------------------

_W = descent.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3), requires_grad=True)


def test_free_guards_replay_at_every_size():
    """nonzero, where(condition), unique and bincount results and an x[mask] read that the
    step only returns: their sizes change at calls 2-5, and calls 3-5 replay (before: six
    recordings, no replay)."""

    def step(x):
        pos = x > 0
        idx = pos.nonzero()
        rows = descent.where(pos)[0]
        vals, counts = (x * 2).round().unique(return_counts=True)
        bins = (x.abs() * _COUNTS[0]).long().flatten().bincount()
        picked = x[pos]
        loss = (x @ _W).tanh().sum()
        loss.backward()
        return loss.detach(), idx, rows, vals, counts, bins, picked

    compiled, warned = compare_calls(step, _data, leaves=[_W])
    _replayed(compiled, warned)


@pytest.mark.parametrize(
    "size",
    [lambda i: i.shape[0], len, lambda i: i.untyped_storage().nbytes() // 16],
    ids=["shape", "len", "storage"],
)
def test_size_read_in_python_keeps_the_guard(size):
    """The size of a returned nonzero result read in Python (min(n, 6) scales x): a program
    per size, never one program for every size (calls 3 and 4 both give 6: without the watch
    on Tensor's size readers the program they make would give x * 6 at call 5, whose count
    is 1)."""

    def f(x):
        idx = (x > 0).nonzero()
        return idx, x * min(size(idx), 6)

    compiled, warned = compare_calls(f, _data)
    assert not warned, warned


# -- optimizer.step(closure), tensor learning rates ---------------------------------------------


def _twin(make_opt):
    """A linear model and its optimizer (the same initial weights for each twin)."""
    w = descent.tensor(np.linspace(-0.5, 0.5, 12, dtype=np.float32).reshape(3, 4))
    model = descent.nn.Linear(4, 3, bias=False)
    with descent.no_grad():
        model.weight.copy_(w)
    return model, make_opt(model.parameters())


def _batch(k):
    rng = np.random.default_rng(260 + max(k - 1, 0))
    x = rng.standard_normal((5, 4)).astype(np.float32)
    return descent.tensor(x), descent.tensor(x[:, :3] * 0.5)


def _steps(make_opt, make_step):
    """compare_calls over a training step built twice (eager's twin and the compiled one);
    each call returns the loss and the weight after the step."""
    fns = []
    for _ in range(2):
        model, opt = _twin(make_opt)
        fns.append(make_step(model, opt))
    return compare_calls(fns[1], _batch, eager=fns[0])


def test_step_closure_replays():
    """SGD's step(closure) with the closure made at each call over that call's batch: the
    closure's forward and backward are recorded as the function's own ops, the step a call
    without it (before: the closure, a new object in each recording, made it run eagerly)."""

    def make_step(model, opt):
        def step(x, y):
            def closure():
                opt.zero_grad()
                loss = ((model(x) - y) ** 2).mean()
                loss.backward()
                return loss

            loss = opt.step(closure)
            return loss.detach(), model.weight.detach()

        return step

    compiled, warned = _steps(lambda ps: descent.optim.SGD(ps, lr=0.1, momentum=0.9), make_step)
    _replayed(compiled, warned)


def test_tensor_lr_replays():
    """Adam with a tensor learning rate that a scheduler inside the step halves at each call:
    the step reads the rate (.item()) inside its recorded call, which the replay runs again
    (before: the read made the function run eagerly)."""

    def make_step(model, opt):
        sched = descent.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)

        def step(x, y):
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            sched.step()
            return loss.detach(), model.weight.detach(), opt.param_groups[0]["lr"] * 1

        return step

    compiled, warned = _steps(lambda ps: descent.optim.Adam(ps, lr=descent.tensor(0.05)), make_step)
    _replayed(compiled, warned)


# -- sgn's known-zero gradient -------------------------------------------------------------------

_V = descent.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), requires_grad=True)
# -0.0 coefficients: h's real gradient holds -0.0, which a 0.0 known-zero gradient added to it
# (0.0 + -0.0 = 0.0) would turn into +0.0; the engine's real gradient replaces the known zero
_NEG = np.array([[-0.0, 1.0, -0.0, 2.0]] * 3, np.float32)


def test_sgn_known_zero_replays_where_a_real_gradient_meets_it():
    """h.sgn()'s backward gives h PyTorch's zero tensor, and h's other use gives it a real
    gradient, which replaces the known zero: the pass is the pass without it (before: eager).
    Compared with the sign bits of the gradient too."""

    def f(x):
        h = _V * x
        loss = (h.sgn() * 3).sum() + (h * descent.tensor(_NEG)).sum()
        loss.backward()
        return loss.detach()

    def signs():
        return [descent.tensor(np.signbit(_V.grad._data))]

    compiled, warned = compare_calls(f, _data, leaves=[_V], after=signs)
    _replayed(compiled, warned)


def test_sgn_known_zero_alone_runs_eagerly():
    """A known-zero gradient that no real gradient meets (the leaf gets zeros): still eager,
    with eager's values."""

    def f(x):
        loss = (_V * x).sgn().sum()
        loss.backward()
        return loss.detach()

    compiled, warned = compare_calls(f, _data, leaves=[_V])
    assert compiled.stats["replays"] == 0 and any("known-zero" in w for w in warned), warned


# -- the mixture-of-experts Grok with dropout (helper-183) -----------------------------------------


def test_moe_grok_with_dropout_replays_with_eagers_masks():
    """Grok with a mixture of experts and dropout 0.1: the experts' dropout is one mask of fixed
    shape drawn before the fused experts' op, in the composite form's order (before: the
    composite form, whose per-expert row counts are data, so two recordings differed and the
    step ran eagerly with a warning). Losses, gradients and weights bitwise eager's; the third
    call replays (redrawing the masks)."""
    import warnings

    from descent.compiler import CompileWarning
    from descent.models.grok import Grok, GrokConfig

    cfg = GrokConfig(vocab_size=48, block_size=8, n_layer=2, n_head=2, n_kv_head=1, head_dim=16,
                     n_embd=32, num_experts=4, num_selected_experts=2, dropout=0.1)  # fmt: skip
    rng = np.random.default_rng(183)
    batches = [(descent.tensor(rng.integers(0, 48, (2, 8))),
                descent.tensor(rng.integers(0, 48, (2, 8)))) for _ in range(3)]  # fmt: skip

    def train(compiled):
        descent.manual_seed(0)
        model = Grok(cfg)
        opt = descent.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)

        def step(x, y):
            loss = model(x, y)[1]
            loss.backward()
            opt.step()
            return loss.detach()

        f = descent.compile(step) if compiled else step
        out = []
        for x, y in batches:
            opt.zero_grad(set_to_none=True)  # outside the step: every call has the same key
            out.append(f(x, y).numpy())
            out += [p.grad for p in model.parameters()]
        out += list(model.parameters())
        return [None if t is None else np.asarray(t).tobytes() for t in out], f

    eager, _ = train(False)
    with _eager_backend(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CompileWarning)
        compiled, f = train(True)
    warned = [str(w.message) for w in caught if issubclass(w.category, CompileWarning)]
    assert eager == compiled
    _replayed(f, warned, at_least=1)
