"""descent.compile's replay, session 17: GELU's forward, the causal softmax and the AdamW step
run in two halves at once (`compiler/threads.split`, the second half on a worker thread) where
NumPy's BLAS runs two threads. Each split is checked against the whole call bit for bit, and
the compiled GPT step with the splits forced on against eager."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from test_compile_gpt_s14 import _assert_bitwise, _gpt_train  # noqa: E402


def threads_at(n):
    threadpool_limits = pytest.importorskip("threadpoolctl").threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")


def _bits(a):
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


@pytest.fixture
def forced(monkeypatch):
    """Every replay splits (whatever the BLAS threads and the cores), from any size; the
    halves actually run on the worker (counted)."""
    from descent.compiler import fusion, threads

    monkeypatch.setattr(threads, "split_allowed", lambda: True)
    monkeypatch.setattr(threads, "SPLIT_MIN", 0)
    monkeypatch.setattr(fusion, "SPLIT_MIN", 0)
    calls = []
    run0 = threads.run_halves

    def spy(parts, fn):
        calls.append(parts)
        return run0(parts, fn)

    monkeypatch.setattr(threads, "run_halves", spy)
    monkeypatch.setattr(fusion, "run_halves", spy)
    monkeypatch.setitem(threads._state, "split", True)
    # every replay on the one-thread plan, which splits (the plan's trials run each plan's
    # first call before any pair since session 30: the second replay ran every core)
    init0 = threads.ThreadPlan.__init__

    def init(self):
        init0(self)
        self.fix(0)

    monkeypatch.setattr(threads.ThreadPlan, "__init__", init)
    return calls


def _odd_values(n, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 4).astype(np.float32)
    x[[0, 7, n // 2, n - 1]] = [np.nan, np.inf, -np.inf, -0.0]
    return x


@pytest.mark.parametrize("n", [2 * 4096, 3 * 4096 + 77, 5 * 4096 + 1])
def test_gelu_forward_split_gives_the_whole_calls_bits(forced, n):
    from descent.compiler import replay_kernels as rk
    from descent.kernels import _cpu_fast

    x = _odd_values(n, n)
    site = rk._GeluSite(_cpu_fast.gelu_fwd_d32, None, halves=True)
    y = site.forward(x)
    out, d = np.empty_like(x), np.empty_like(x)
    _cpu_fast.gelu_fwd_d32(x, out, d)
    np.testing.assert_array_equal(_bits(y), _bits(out))
    np.testing.assert_array_equal(_bits(site.d), _bits(d))
    assert len(forced) == 1 and forced[0][0][1] % rk.GRAIN == 0


@pytest.mark.parametrize("shape,causal", [((3, 2, 7, 7), True), ((5, 1, 9, 9), True),
                                          ((3, 33, 17), False)])  # fmt: skip
def test_softmax_forward_split_gives_the_whole_calls_bits(forced, shape, causal):
    """Halves of whole heads (the causal limit is the row index modulo the query count)."""
    from descent.compiler import replay_kernels as rk
    from descent.compiler.program import Pool

    class Op:
        scale = 0.37

    op = Op()
    op.causal = causal
    rng = np.random.default_rng(len(shape))
    q, k, v = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    q.reshape(-1)[[1, 5]] = [np.inf, np.nan]
    from descent.compiler import threads

    with np.errstate(invalid="ignore"):  # the inf and nan scores' rows
        got = rk.sdpa_forward(op, q, k, v, None, Pool())
        p_got = op.probs.copy()
        threads._state["split"] = False
        want = rk.sdpa_forward(op, q, k, v, None, Pool())
    threads._state["split"] = True
    np.testing.assert_array_equal(_bits(op.probs), _bits(p_got))
    np.testing.assert_array_equal(_bits(got), _bits(want))
    rows = int(np.prod(shape[:-1]))
    assert len(forced) == 1 and forced[0][1] == (forced[0][0][1], rows)
    if causal:
        assert forced[0][0][1] % shape[-2] == 0


def test_adam_split_by_parameters_gives_the_whole_calls_bits(forced):
    from descent.compiler import fusion
    from descent.kernels import _cpu_optim

    rng = np.random.default_rng(3)
    sizes = [5, 4099, 1, 700, 8192, 33]
    lo = np.cumsum([0] + sizes[:-1]).astype(np.int64)
    n = sum(sizes)
    gs = tuple(_odd_values(s + 8, s)[8:] if s > 8 else rng.standard_normal(s).astype(np.float32)
               for s in sizes)  # fmt: skip
    p0 = rng.standard_normal(n).astype(np.float32)
    m0, v0 = rng.standard_normal(n).astype(np.float32), rng.random(n).astype(np.float32)
    f = np.float32
    args = (False, 1, f(1 - 1e-3 * 0.1), f(0.1), False, True, f(0.1), f(0.99), f(0.01),
            f(0.3), f(1e-8), f(-1e-3), False)  # fmt: skip
    whole = [a.copy() for a in (p0, m0, v0)]
    _cpu_optim.adam_grads(whole[0], gs, lo, whole[1], whole[2], *args)
    k = fusion._split_adam(_cpu_optim.adam_grads, lo, n)
    split = [a.copy() for a in (p0, m0, v0)]
    k(split[0], gs, lo, split[1], split[2], *args)
    for a, b in zip(whole, split):
        np.testing.assert_array_equal(_bits(a), _bits(b))
    assert len(forced) == 1


def test_split_runs_whole_without_two_blas_threads(monkeypatch):
    """Outside a splitting replay (one BLAS thread, pinned, eager) the call is whole."""
    from descent.compiler import threads

    monkeypatch.setattr(threads, "SPLIT_MIN", 0)
    monkeypatch.setitem(threads._state, "split", False)
    seen = []
    threads.split(100, lambda i0, i1: seen.append((i0, i1)))
    assert seen == [(0, 100)]
    assert not threads.SPLIT["on"]  # off by default (docs/compile.md, session 17)
    assert not threads.split_allowed()
    monkeypatch.setitem(threads.SPLIT, "on", True)
    with threads_at(1):
        assert not threads.split_allowed()


def test_worker_errors_reach_the_caller(forced):
    from descent.compiler import threads

    def fn(i0, i1):
        if i0:
            raise ValueError("second half")

    for _ in range(3):  # whether the worker or the caller ran the second half
        with pytest.raises(ValueError, match="second half"):
            threads.run_halves(((0, 1), (1, 2)), fn)


@pytest.mark.parametrize("exact", [False, True])
def test_gpt_step_with_splits_is_bitwise_eager(forced, exact):
    """Losses, gradients and parameters of five compiled AdamW steps with every split site
    splitting: eager's bits."""
    eager, _ = _gpt_train(False)
    forced.clear()
    compiled, f = _gpt_train(True, exact=exact)
    _assert_bitwise(eager, compiled)
    # per replay: 2 GELU forwards, 2 softmax forwards, 1 or 2 AdamW buffers
    assert f.stats["replays"] >= 2 and len(forced) >= 5 * f.stats["replays"]
