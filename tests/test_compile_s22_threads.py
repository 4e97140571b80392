"""descent.compile and autograd under Python threads (session 22).

Recording is per thread (compiler/attach.py): two compiled training steps recording and replaying
at once in two threads both replay, with eager's values, and restore every patched attribute;
calls of one compiled function run one at a time (its lock); saved_tensors_hooks, the stale-view
check's "in backward" flag and the replay's thread plan are per thread, as PyTorch's state is.
Every thread is joined with a timeout, so that a deadlock fails instead of hanging.
"""

import threading
import warnings

import numpy as np
import pytest

import descent
from descent import creation, hooks, nn
from descent.compiler import CompileWarning, threads
from descent.tensor import Tensor
from descent.tensor_methods import _ops as _ops_table

TIMEOUT = 30


def _run_threads(*targets):
    """Run each target in its own thread; re-raise the first error; fail on a hang."""
    errors: list = []

    def wrap(fn):
        def run():
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - reported by the main thread
                errors.append(e)

        return run

    ts = [threading.Thread(target=wrap(fn), daemon=True) for fn in targets]
    for t in ts:
        t.start()
    for t in ts:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in ts), "a thread did not finish (deadlock?)"
    if errors:
        raise errors[0]


def _mlp(seed: int, width: int = 16):
    descent.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, 1))
    opt = descent.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return model, opt


def _step_fn(model, opt, gate=None):
    def step(x, y):
        opt.zero_grad()
        loss = (model(x) - y).pow(2).mean()
        if gate is not None:  # Python: runs while recording (and eagerly), never in a replay
            gate()
        loss.backward()
        opt.step()
        return loss

    return step


def _data(seed: int, n: int = 6):
    rng = np.random.default_rng(seed)
    return [(descent.tensor(rng.standard_normal((12, 8)).astype(np.float32)),
             descent.tensor(rng.standard_normal((12, 1)).astype(np.float32)))
            for _ in range(n)]  # fmt: skip


def _originals():
    gen = creation.default_generator()
    return dict(
        item=Tensor.item, bool=Tensor.__bool__, getitem=_ops_table.getitem,
        finish=creation._finish, data_made=creation._from_data_made, rng=gen._rng,
        clip=descent.optim.clip_grad_norm_, hooks=(list(hooks._forward_hooks),
                                                   list(hooks._pass_hooks)),
    )  # fmt: skip


def test_two_steps_record_and_replay_in_two_threads():
    """Two compiled training steps, each on its own model, called from two threads from their
    first call, with both recordings running at once (a barrier inside the step's Python, which
    only recordings run). Before: each recording saw the other thread's ops and parameter
    updates (op hooks and in-place changes of captured tensors: warnings, no replay)."""
    calls = 20
    data = [_data(1, calls), _data(2, calls)]
    ref = []  # eager, one thread
    for k in range(2):
        model, opt = _mlp(10 + k)
        step = _step_fn(model, opt)
        losses = [step(x, y)._data.copy() for x, y in data[k]]
        ref.append((losses, [p._data.copy() for p in model.parameters()]))
    before = _originals()
    barrier = threading.Barrier(2)

    def gate():
        barrier.wait(TIMEOUT)  # both threads are inside a recording here

    runs = []
    for k in range(2):
        model, opt = _mlp(10 + k)
        runs.append([model, descent.compile(_step_fn(model, opt, gate)), [], opt])

    def worker(k):
        def run():
            model, f, losses, _ = runs[k]
            for x, y in data[k]:
                losses.append(f(x, y)._data.copy())

        return run

    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        _run_threads(worker(0), worker(1))
    for k in range(2):
        model, f, losses, opt = runs[k]
        assert "step" not in vars(opt) and "zero_grad" not in vars(opt)
        assert f.stats["fallbacks"] == 0 and f.stats["eager"] == 0, f.stats
        assert f.stats["replays"] == calls - f.stats["recordings"] >= calls - 3, f.stats
        for a, b in zip(ref[k][0], losses):
            np.testing.assert_array_equal(a, b)
        for a, p in zip(ref[k][1], model.parameters()):
            np.testing.assert_array_equal(a, p._data)
    assert _originals() == before  # every patched attribute and hook list is back


def test_other_threads_reads_draws_and_writes_do_not_break_a_recording():
    """While thread A records (held inside its recording), thread B runs eager code through
    every patched path: .item(), bool(), a random draw, x[mask], an in-place write under
    no_grad, descent.tensor(list), clip_grad_norm_, another optimizer's step. A's function
    still replays, and B's values are eager's. Before: B's reads, draws and writes were
    counted against A's recording (it ran eagerly with a warning naming them)."""
    model, opt = _mlp(3)
    inside, done = threading.Event(), threading.Event()

    def gate():
        if not inside.is_set():
            inside.set()
            assert done.wait(TIMEOUT)

    f = descent.compile(_step_fn(model, opt, gate))
    data = _data(4, 5)
    other, other_opt = _mlp(5)
    got = {}

    def a():
        for x, y in data:
            f(x, y)

    def b():
        assert inside.wait(TIMEOUT)
        try:
            descent.manual_seed(7)
            x = descent.randn(4, 3)
            got["item"] = x.sum().item()
            got["bool"] = bool((x > 0).any())
            got["mask"] = x[x > 0]._data.copy()
            with descent.no_grad():
                x.mul_(2)
            got["tensor"] = descent.tensor([1.0, 2.0])._data.copy()
            loss = other(descent.ones(2, 8)).sum()
            loss.backward()
            descent.nn.utils.clip_grad_norm_(other.parameters(), 0.1)
            other_opt.step()
            got["x"] = x._data.copy()
        finally:
            done.set()

    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        _run_threads(a, b)
    assert f.stats["fallbacks"] == 0 and f.stats["replays"] >= 2, f.stats
    descent.manual_seed(7)
    x = descent.randn(4, 3)
    assert got["item"] == x.sum().item()
    np.testing.assert_array_equal(got["mask"], x[x > 0]._data)
    np.testing.assert_array_equal(got["x"], 2 * x._data)
    np.testing.assert_array_equal(got["tensor"], [1.0, 2.0])
    assert not hooks._forward_hooks and not hooks._pass_hooks


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(16, 32)
        self.norm = nn.LayerNorm(32)
        self.b = nn.Linear(32, 8)

    def forward(self, x):
        h = nn.functional.gelu(self.norm(self.a(x)))
        return (self.b(h).relu() * 0.5 + x[:, :8]).softmax(-1)


def test_one_inference_function_from_four_threads_gives_eager_values():
    """One compiled no_grad function called from 4 threads with different inputs, 60 calls
    each: every result equals eager's for its input (a replay's pooled buffers, op objects and
    plans belong to its program: the function's lock runs one call at a time)."""
    descent.manual_seed(0)
    net = _Net()
    xs = [descent.randn(24, 16) for _ in range(4)]
    with descent.no_grad():
        want = [net(x)._data.copy() for x in xs]

    def infer(x):
        return net(x)

    f = descent.compile(infer)
    bad: list = []

    def worker(k):
        def run():
            with descent.no_grad():
                for _ in range(60):
                    out = f(xs[k])._data
                    if not np.array_equal(out, want[k]):
                        bad.append(k)

        return run

    _run_threads(*[worker(k) for k in range(4)])
    assert not bad, f"{len(bad)} torn results"
    assert f.stats["replays"] == 240 - f.stats["recordings"] >= 237, f.stats


def test_compiled_model_inside_a_compiled_step_is_recorded_by_the_step():
    """A compiled model called by a compiled step: while the step records, the model runs
    eagerly and its ops are the step's, without the "op hooks are active" warning it gave
    before (the recorder's hooks were taken for a profiler's)."""
    model, opt = _mlp(1)
    cmodel = descent.compile(model)

    def step(x, y):
        opt.zero_grad()
        loss = (cmodel(x) - y).pow(2).mean()
        loss.backward()
        opt.step()
        return loss

    f = descent.compile(step)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        for x, y in _data(3, 5):
            f(x, y)
    assert f.stats["replays"] >= 2 and f.stats["fallbacks"] == 0, f.stats


def test_saved_tensors_hooks_are_per_thread():
    """PyTorch's saved_tensors_hooks (and disable_saved_tensors_hooks) act on the thread that
    opened them (its SavedTensorDefaultHooks state is thread-local). Before: another thread's
    saved tensors were packed, and its compiled functions ran eagerly."""
    graph = descent.autograd.graph
    packed: list = []
    inside, done = threading.Event(), threading.Event()
    seen = {}

    def a():
        with graph.saved_tensors_hooks(lambda t: packed.append(threading.get_ident()) or t,
                                       lambda t: t):  # fmt: skip
            inside.set()
            assert done.wait(TIMEOUT)
            x = descent.ones(3, requires_grad=True)
            (x * x).sum().backward()
            seen["a_grad"] = x.grad._data.copy()

    def b():
        assert inside.wait(TIMEOUT)
        try:
            x = descent.ones(3, requires_grad=True)
            (x * x).sum().backward()
            seen["b_grad"] = x.grad._data.copy()
            with warnings.catch_warnings():
                warnings.simplefilter("error", CompileWarning)
                f = descent.compile(lambda t: (t * 2).sum())
                with descent.no_grad():
                    for _ in range(4):
                        f(descent.ones(3))
            seen["replays"] = f.stats["replays"]
            with graph.disable_saved_tensors_hooks("no hooks here"):
                seen["b_disabled"] = True
        finally:
            done.set()

    _run_threads(a, b)
    assert len(packed) == 2 and set(packed) == {packed[0]}  # A's two saved tensors only
    np.testing.assert_array_equal(seen["a_grad"], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(seen["b_grad"], [2.0, 2.0, 2.0])
    assert seen["replays"] == 2
    # disable_saved_tensors_hooks in one thread does not refuse another thread's hooks
    inside.clear()
    done.clear()
    entered = []

    def c():
        with graph.disable_saved_tensors_hooks("disabled in c"):
            inside.set()
            assert done.wait(TIMEOUT)

    def d():
        assert inside.wait(TIMEOUT)
        try:
            with graph.saved_tensors_hooks(lambda t: t, lambda t: t):
                entered.append(True)
        finally:
            done.set()

    _run_threads(c, d)
    assert entered == [True]
    assert descent.autograd._saved_hooks is None


def test_a_backward_in_another_thread_keeps_the_stale_view_check():
    """Using a stale view raises at once (test_views_s17), except inside a backward pass of
    the same thread. Before: the engine's "in backward" flag was process-wide, so a backward
    running in another thread switched the check off (and two overlapping passes could leave
    it off for good)."""
    inside, done = threading.Event(), threading.Event()
    errors = []

    def a():
        x = descent.ones(2, requires_grad=True)
        y = x * 2

        def hold(g):
            inside.set()
            assert done.wait(TIMEOUT)
            return g

        y.register_hook(hold)
        y.sum().backward()

    def b():
        assert inside.wait(TIMEOUT)
        try:
            y = descent.tensor([1.0, 2.0, 3.0], dtype=descent.float64, requires_grad=True) * 1
            v = y.split(1)[0]
            y.add_(1)
            try:
                v * 3
            except RuntimeError as e:
                errors.append(str(e))
        finally:
            done.set()

    _run_threads(a, b)
    assert errors and "modified" in errors[0], errors


def test_a_replay_beside_another_runs_one_thread_and_is_not_timed():
    """threads.ThreadPlan: a replay that begins while another one runs (in another thread)
    takes the one-thread plan and puts the running one on it too (every plan gives the same
    bits), and the running one does not count that call as a timing. Before: thread B ran its
    kernels on every core beside A's, and B's end() switched A's plan off mid-call."""
    plan_a, plan_b = threads.ThreadPlan(), threads.ThreadPlan()
    plan_a.fix(True)
    plan_b.fix(True)
    timing = threads.ThreadPlan()  # still timing its two plans
    seen = {}
    s1, c1, s2, c2 = (threading.Event() for _ in range(4))

    def a():
        t0 = plan_a.begin()
        seen["a"] = threads._state["parallel"]
        s1.set()
        assert c1.wait(TIMEOUT)
        seen["a_after"] = threads._state["parallel"]
        plan_a.end(t0)
        # each plan's first call and a pair's first (untimed, session 30), then the timed one
        for _ in range(len(timing._plans()) + 1):
            timing.end(timing.begin())
        t0 = timing.begin()
        seen["k"] = timing.trial
        s2.set()
        assert c2.wait(TIMEOUT)
        timing.end(t0)

    def b():
        assert s1.wait(TIMEOUT)
        try:
            t0 = plan_b.begin()
            seen["b"] = threads._state["parallel"]
            plan_b.end(t0)
        finally:
            c1.set()
        assert s2.wait(TIMEOUT)
        try:
            plan_b.end(plan_b.begin())  # during A's timed call
        finally:
            c2.set()

    _run_threads(a, b)
    assert seen == {"a": True, "b": False, "a_after": False, "k": 0}, seen  # (0: timed)
    assert timing.times == ([], [], []) and timing.queue[:2] == [(0, False), (0, True)]
    assert not threads._running and threads._state["parallel"] is False


def test_split_worker_hands_each_caller_its_own_error():
    """threads.run_halves from two threads at once: the worker's exception goes to the caller
    whose half raised. Before: one shared list, so the other caller could pop it (and raise an
    error of a call not its own while the failing one returned as if done)."""
    a_started, b2_started, b_done = threading.Event(), threading.Event(), threading.Event()
    results = {}

    def fa(lo, hi):
        if lo == 0:  # A's first half, on A's thread: wait until B's call has returned
            a_started.set()
            assert b_done.wait(TIMEOUT)
        else:  # A's second half, on the worker (A is busy): raises
            raise ValueError("A's half")

    def fb(lo, hi):
        if lo == 0:  # B's first half: wait until the worker runs B's second (after A's)
            assert b2_started.wait(TIMEOUT)
        else:
            b2_started.set()

    def a():
        try:
            threads.run_halves(((0, 1), (1, 2)), fa)
            results["a"] = None
        except ValueError as e:
            results["a"] = str(e)

    def b():
        assert a_started.wait(TIMEOUT)
        try:
            threads.run_halves(((0, 1), (1, 2)), fb)
            results["b"] = None
        except ValueError as e:
            results["b"] = str(e)
        finally:
            b_done.set()

    _run_threads(a, b)
    assert results == {"a": "A's half", "b": None}, results


@pytest.mark.parametrize("n", [2])
def test_one_training_step_from_two_threads_stays_consistent(n):
    """One compiled training step called from two threads (their calls serialised by the
    function's lock): no error, every call replays or records, and the parameters equal an
    eager run of the same number of steps on the same batch (each step is the same update,
    whichever thread runs it)."""
    x, y = _data(8, 1)[0]
    model, opt = _mlp(2)
    step = _step_fn(model, opt)
    for _ in range(2 * 15):
        step(x, y)
    ref = [p._data.copy() for p in model.parameters()]
    model, opt = _mlp(2)
    f = descent.compile(_step_fn(model, opt))

    def run():
        for _ in range(15):
            f(x, y)

    _run_threads(*[run] * n)
    assert f.stats["calls"] == 30 and f.stats["fallbacks"] == 0, f.stats
    for a, p in zip(ref, model.parameters()):
        np.testing.assert_array_equal(a, p._data)


def test_a_compiled_function_deep_copies_with_a_lock_of_its_own():
    """copy.deepcopy of a compiled function before its first call (which worked before it held
    a lock; after calls its programs do not copy, as before) gives one with its own lock."""
    import copy  # noqa: PLC0415

    f = descent.compile(lambda x: x * 2 + 1)
    g = copy.deepcopy(f)
    assert g._lock is not f._lock
    with descent.no_grad():
        for _ in range(3):
            np.testing.assert_array_equal(g(descent.ones(2))._data, [3.0, 3.0])
    assert g.stats["replays"] == 1 and f.stats["calls"] == 0
