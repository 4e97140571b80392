"""descent.compile's replay kernels, session 21 (helper-148): attention's forward (q k^T, the
softmax, P v) and backward (go v^T, the softmax's backward, the three gradient products) in two
halves of the batch at once at two BLAS threads (`replay_kernels._halves`, `threads.HALVES`,
off by default: no gain in the whole step on the Zen 3 host).
Each half makes the whole call's per-matrix BLAS calls, so the bits are the whole call's, which
are eager's: checked here kernel by kernel against the whole call (float32 with -0.0, nan, inf
and subnormals, odd sizes, the replay's non-contiguous head views) and on compiled GPT steps
against eager."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from test_compile_gpt_s14 import _assert_bitwise, _gpt_train  # noqa: E402


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view(np.int32 if a.dtype == np.float32 else np.int64)


def _specials(x, rng):
    """-0.0, nan, inf, -inf and subnormals at random places of x (in place)."""
    flat = x.reshape(-1)
    tiny = np.finfo(x.dtype).smallest_subnormal
    for v in (-0.0, np.nan, np.inf, -np.inf, tiny, -tiny * 3, 0.0):
        flat[rng.integers(0, flat.size, max(1, flat.size // 211))] = v


def _heads(shape, rng, special):
    """q, k, v as the replay gets them: (B, H, T, D) views of one (B, T, 3 H D) array."""
    B, H, T, D = shape
    qkv = rng.standard_normal((B, T, 3 * H * D)).astype(np.float32)
    if special:
        _specials(qkv, rng)
    return [qkv[..., i * H * D:(i + 1) * H * D].reshape(B, T, H, D).transpose(0, 2, 1, 3)
            for i in range(3)]  # fmt: skip


@pytest.fixture
def halves(monkeypatch):
    """A replay's state with the halves on (whatever this machine's cores and BLAS threads)
    and no minimum size; yields a counter of the halved calls."""
    from descent.compiler import replay_kernels as rk
    from descent.compiler import threads

    monkeypatch.setattr(rk, "HALVES_MIN", 0)
    monkeypatch.setattr(threads, "_two_blas_threads", lambda: True)
    monkeypatch.setitem(threads.HALVES, "on", True)
    calls = []
    f0, b0 = rk._sdpa_forward_halves, rk._sdpa_backward_halves

    def fwd(*a):
        calls.append("f")
        return f0(*a)

    def bwd(*a):
        calls.append("b")
        return b0(*a)

    monkeypatch.setattr(rk, "_sdpa_forward_halves", fwd)
    monkeypatch.setattr(rk, "_sdpa_backward_halves", bwd)
    yield calls
    threads._state["halves"] = False


class _Op:
    """The attributes of ScaledDotProductAttention that the replay's kernels read."""

    def __init__(self, scale, causal):
        self.scale, self.causal, self.mask, self.drop = scale, causal, None, None
        self.probs = None


def _forward(rk, q, k, v, causal, on):
    from descent.compiler import threads
    from descent.compiler.program import Pool

    threads._state["halves"] = on
    op = _Op(1 / np.sqrt(q.shape[-1]), causal)
    with np.errstate(all="ignore"):
        out = rk.sdpa_forward(op, q, k, v, (0, 2, 1, 3), Pool())
    threads._state["halves"] = False
    return op, out


class _Box:
    def __init__(self, a):
        self._data = a


class _Node(_Op):
    def __init__(self, op, q, k, v):
        super().__init__(op.scale, op.causal)
        self.probs, self.saved, self.parents = op.probs, (_Box(q), _Box(k), _Box(v)), (1, 1, 1)


def _backward(rk, op, q, k, v, go, on):
    from descent.compiler import threads
    from descent.compiler.program import Pool

    outs = [np.full(q.shape[:-1] + (n,), np.nan, np.float32) for n in
            (q.shape[-1], k.shape[-1], v.shape[-1])]  # fmt: skip
    node = _Node(op, q, k, v)
    node.probs = op.probs.copy()
    threads._state["halves"] = on
    with np.errstate(all="ignore"):
        assert rk._sdpa_backward_nn(node, go, outs, Pool())
    threads._state["halves"] = False
    return outs


@pytest.mark.parametrize("special", [False, True])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("shape", [(12, 4, 64, 32), (2, 3, 16, 8), (3, 2, 7, 5), (5, 1, 33, 17)])
def test_attention_halves_give_the_whole_calls_bits(halves, shape, causal, special):
    """Forward output, the saved probabilities and the three gradients: halves == whole, bit for
    bit, with special values in q, k, v and go, odd batch and head sizes, strided views."""
    from descent.compiler import replay_kernels as rk

    rng = np.random.default_rng(sum(shape) + 2 * causal + special)
    q, k, v = _heads(shape, rng, special)
    go = rng.standard_normal(q.shape).astype(np.float32)
    if special:
        _specials(go, rng)
    go = np.ascontiguousarray(go.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)  # replay's layout
    op_w, out_w = _forward(rk, q, k, v, causal, False)
    op_h, out_h = _forward(rk, q, k, v, causal, True)
    assert halves == ["f"]
    np.testing.assert_array_equal(_bits(out_h), _bits(out_w))
    np.testing.assert_array_equal(_bits(op_h.probs), _bits(op_w.probs))
    for gh, gw in zip(_backward(rk, op_h, q, k, v, go, True),
                      _backward(rk, op_w, q, k, v, go, False)):  # fmt: skip
        np.testing.assert_array_equal(_bits(gh), _bits(gw))
    assert halves == ["f", "b"]


def test_attention_halves_only_below_openblas_threading_threshold(halves):
    """A head product above OpenBLAS's one-thread size (M N K > 65536 * 4) might run on
    another number of threads in a half than in the whole call: such calls run whole, and so
    do calls with one batch entry or below HALVES_MIN scores."""
    from descent.compiler import replay_kernels as rk
    from descent.compiler import threads

    rng = np.random.default_rng(7)
    threads._state["halves"] = True
    q, k, v = _heads((2, 2, 64, 32), rng, False)
    assert rk._halves(q, k, v)
    q, k, v = _heads((2, 2, 128, 32), rng, False)  # 128 * 128 * 32 = 524288
    assert not rk._halves(q, k, v)
    q, k, v = _heads((1, 4, 64, 32), rng, False)
    assert not rk._halves(q, k, v)
    threads._state["halves"] = False
    q, k, v = _heads((2, 2, 64, 32), rng, False)
    assert not rk._halves(q, k, v)  # not inside a replay that allows them


def test_halves_follow_the_thread_plan(monkeypatch):
    """`ThreadPlan.begin` turns the halves on only with two BLAS threads on two cores, the
    one-thread plan and HALVES on; `end` turns them off."""
    from descent.compiler import threads

    assert not threads.HALVES["on"]  # off by default (docs/compile.md, session 21)
    plan = threads.ThreadPlan()
    plan.fix(False)
    for two, on, want in ((True, True, True), (False, True, False), (True, False, False)):
        monkeypatch.setattr(threads, "_two_blas_threads", lambda two=two: two)
        monkeypatch.setitem(threads.HALVES, "on", on)
        t0 = plan.begin()
        assert threads._state["halves"] is want
        plan.end(t0)
        assert threads._state["halves"] is False
    plan.fix(True)  # the every-core plan has its own kernels
    monkeypatch.setattr(threads, "_two_blas_threads", lambda: True)
    monkeypatch.setitem(threads.HALVES, "on", True)
    plan.end(plan.begin())
    t0 = plan.begin()
    assert threads._state["halves"] is False
    plan.end(t0)


def _train(compiled, steps=6, **options):
    # (heads of 64 x 32: attention's products under OpenBLAS's one-thread size, as baby-gpt's)
    sizes = dict(vocab_size=65, block_size=64, n_layer=1, n_head=4, n_embd=128)
    return _gpt_train(compiled, steps, config=sizes, batch=3, **options)


@pytest.mark.parametrize("exact", [False, True])
def test_gpt_step_with_attention_halves_is_bitwise_eager(halves, exact):
    """Six compiled AdamW steps of a GPT at the benchmark's head size (T 64, 4 heads of 32)
    with attention's forward and backward in halves: losses, gradients and parameters are
    eager's bits."""
    eager, _ = _train(False)
    assert not halves  # eager never halves
    compiled, f = _train(True, exact=exact)
    _assert_bitwise(eager, compiled)
    assert f.stats["replays"] >= 2
    # (replays timing the every-core plan run whole: threads.ThreadPlan's trials)
    assert halves.count("f") == halves.count("b") >= 1
