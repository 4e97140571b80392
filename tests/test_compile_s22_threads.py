"""descent.compile and autograd under Python threads (session 22).

saved_tensors_hooks and the stale-view check's "in backward" flag are per thread, as PyTorch's
state is; a replay beside another runs one thread; the split worker's errors go to their caller.
Every thread is joined with a timeout, so that a deadlock fails instead of hanging.
"""

import threading

import numpy as np

import descent
from descent.compiler import threads

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


def test_saved_tensors_hooks_are_per_thread():
    """PyTorch's saved_tensors_hooks (and disable_saved_tensors_hooks) act on the thread that
    opened them (its SavedTensorDefaultHooks state is thread-local). Before: another thread's
    saved tensors were packed."""
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
            with graph.disable_saved_tensors_hooks("no hooks here"):
                seen["b_disabled"] = True
        finally:
            done.set()

    _run_threads(a, b)
    assert len(packed) == 2 and set(packed) == {packed[0]}  # A's two saved tensors only
    np.testing.assert_array_equal(seen["a_grad"], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(seen["b_grad"], [2.0, 2.0, 2.0])
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
        t0 = timing.begin()  # the first call of a pair (untimed), then the timed one
        timing.end(t0)
        t0 = timing.begin()
        seen["k"] = timing.k
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
    assert seen == {"a": True, "b": False, "a_after": False, "k": 2}, seen
    assert timing.times == ([], []) and timing.k == 0  # that pair runs again
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
