"""Layer norm's rows in two parts at once, and its weight/bias gradient sums in fixed blocks
(session 29, helper-215).

descent.kernels.cpu.layer_norm_rows_forward / _backward run float32 layer norm (eager's fused
CPU path and descent.compile's replay both call them) over the rows, in two parts at once on the
split worker at two BLAS threads above descent.halves' sizes. Each row of y, mean, rstd and gx
goes through the same loop either way. gw and gb are summed in LN_BLOCKS fixed blocks of
ceil(M / LN_BLOCKS) rows, each added row after row into its own float32 accumulator, then the
blocks left to right, so one thread and two, eager and the replay give the same bits. These tests
check those bits against the whole call (every split point, edge values), the blocks' order,
where the parts run and where they must not, compiled against eager on the halves plan, and the
values against PyTorch (float32) and a float64 reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent
import descent.nn.functional as F
from descent import halves
from descent.compiler import threads
from descent.kernels import cpu

pytestmark = pytest.mark.skipif(not cpu.enabled(), reason="numba kernels off")

_E = np.float32(1e-5)


def _bits(a):
    return np.ascontiguousarray(a).view(np.int32)


def _data(m, d, seed=0, edges=True):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((m, d)) * 3 + 1).astype(np.float32)
    gy = rng.standard_normal((m, d)).astype(np.float32)
    w = (1 + 0.3 * rng.standard_normal(d)).astype(np.float32)
    b = (0.3 * rng.standard_normal(d)).astype(np.float32)
    if edges and m > 4 and d > 3:
        gy.reshape(-1)[::7] = -0.0
        x[1, 2] = np.finfo(np.float32).tiny / 8  # subnormal
        x[2, 0], gy[3, 1] = 1e30, 1e-30
        x[m - 1, :] = 5.0  # a constant row: rstd = 1/sqrt(eps)
        x[m - 2, 1], gy[m - 3, 2] = np.nan, np.inf
    return x, gy, w, b


def _forward(x, w, b, run=None, has_w=True, has_b=True):
    m = x.shape[0]
    y, mean, rstd = np.empty_like(x), np.empty(m, np.float32), np.empty(m, np.float32)
    cpu.layer_norm_rows_forward(x, w, b, y, mean, rstd, _E, has_w, has_b, run)
    return y, mean, rstd


def _backward(x, w, gy, mean, rstd, run=None, has_w=True, need_x=True, need_wb=True):
    gx = np.empty_like(x) if need_x else None
    gw, gb = cpu.layer_norm_rows_backward(x, w, gy, mean, rstd, gx, has_w, need_x, need_wb, run)
    return gx, gw, gb


@pytest.mark.parametrize("shape", [(1, 7), (7, 5), (8, 3), (9, 5), (37, 65), (300, 128)])
@pytest.mark.parametrize("share", [1, 4, 5, 7])
def test_parts_give_the_whole_calls_bits(monkeypatch, shape, share):
    """Two parts at once on the split worker (the caller's share of the 8 blocks: 1, 4, 5 or 7)
    against one call: y, mean, rstd, gx, gw, gb bit for bit, with and without w, with need_x
    or need_wb alone; -0.0, nan, inf, a subnormal and a constant row among the values. (The
    blocked sums from 0 values here, from 2^17 in use.)"""
    monkeypatch.setattr(cpu, "layer_norm_caller_blocks", lambda values: share)
    monkeypatch.setattr(cpu, "LN_BLOCKED_MIN", 0)
    x, gy, w, b = _data(*shape)
    for has_w in (True, False):
        one = _forward(x, w, b, None, has_w)
        two = _forward(x, w, b, halves.run, has_w)
        for a, c in zip(one, two, strict=True):
            np.testing.assert_array_equal(_bits(a), _bits(c))
        mean, rstd = one[1:]
        for need_x, need_wb in ((True, True), (True, False), (False, True)):
            g1 = _backward(x, w, gy, mean, rstd, None, has_w, need_x, need_wb)
            g2 = _backward(x, w, gy, mean, rstd, halves.run, has_w, need_x, need_wb)
            for a, c in zip(g1, g2, strict=True):
                assert (a is None) == (c is None)
                if a is not None:
                    np.testing.assert_array_equal(_bits(a), _bits(c))


def _one_pass(x, w, gy, mean, rstd, r0, r1):
    """gw, gb of rows [r0, r1), one accumulator each, row after row (the kernel below
    LN_BLOCKED_MIN values, and each block's loop)."""
    d = x.shape[1]
    aw, ab = np.zeros(d, np.float32), np.zeros(d, np.float32)
    cpu._k().layer_norm_bwd32(x, w, gy, mean, rstd, np.empty_like(x), aw, ab, True, True, True,
                              r0, r1)  # fmt: skip
    return aw, ab


@pytest.mark.parametrize(("m", "d"), [(1, 33), (5, 33), (8, 33), (9, 33), (100, 33), (1024, 128)])
def test_weight_and_bias_sums_are_fixed_blocks_left_to_right(m, d):
    """From LN_BLOCKED_MIN values (2^17: (1024, 128); the smaller ones with it patched to 0):
    gw and gb are each block of ceil(M / 8) rows summed alone (the kernel over those rows into
    a zeroed accumulator), then the blocks added left to right in float32. (Until session 29
    one pass over all rows: other bits for most inputs.)"""
    x, gy, w, b = _data(m, d, seed=m, edges=False)
    _, mean, rstd = _forward(x, w, b)
    old = cpu.LN_BLOCKED_MIN
    cpu.LN_BLOCKED_MIN = min(old, m * d)
    try:
        _, gw, gb = _backward(x, w, gy, mean, rstd)
    finally:
        cpu.LN_BLOCKED_MIN = old
    rows = -(-m // cpu.LN_BLOCKS)
    want_w, want_b = np.zeros(d, np.float32), np.zeros(d, np.float32)
    for r0 in range(0, cpu.LN_BLOCKS * rows, rows):
        aw, ab = _one_pass(x, w, gy, mean, rstd, r0, min(r0 + rows, m))
        want_w, want_b = want_w + aw, want_b + ab
    np.testing.assert_array_equal(_bits(gw), _bits(want_w))
    np.testing.assert_array_equal(_bits(gb), _bits(want_b))
    # within float32's bound of the exact (float64) sums
    x64, g64 = x.astype(np.float64), gy.astype(np.float64)
    xhat = (x64 - mean[:, None]) * rstd[:, None].astype(np.float64)
    np.testing.assert_allclose(gw, (g64 * xhat).sum(0), rtol=1e-5, atol=2e-6 * m)
    np.testing.assert_allclose(gb, g64.sum(0), rtol=1e-5, atol=2e-6 * m)


def test_below_the_blocked_size_one_pass_and_never_in_parts():
    """Below LN_BLOCKED_MIN values (baby-gpt's 98,304) gw and gb are one pass over the rows,
    as before session 29, and a `run` is not used for them; every size that may run in parts
    (descent.halves) has the blocked sums."""
    assert halves.LN_MIN_VALUES >= cpu.LN_BLOCKED_MIN
    x, gy, w, b = _data(768, 128, edges=False)
    _, mean, rstd = _forward(x, w, b)
    calls = []
    _, gw, gb = _backward(x, w, gy, mean, rstd, run=lambda parts, fn: calls.append(parts))
    assert calls == []
    want = _one_pass(x, w, gy, mean, rstd, 0, 768)
    np.testing.assert_array_equal(_bits(gw), _bits(want[0]))
    np.testing.assert_array_equal(_bits(gb), _bits(want[1]))


@pytest.fixture
def two(monkeypatch):
    """Two BLAS threads on two cores (forced); returns the list of halves.run calls."""
    calls: list = []
    orig = halves.run

    def run(parts, fn):
        calls.append(parts)
        return orig(parts, fn)

    monkeypatch.setattr(halves, "two_blas_threads", lambda: True)
    monkeypatch.setattr(halves, "run", run)
    monkeypatch.setitem(halves.EAGER_HALVES, "on", True)
    monkeypatch.setitem(halves.LN_HALVES, "on", True)
    return calls


def _eager(xv, gv, wv, bv):
    x = descent.tensor(xv, requires_grad=True)
    w = descent.tensor(wv, requires_grad=True)
    b = descent.tensor(bv, requires_grad=True)
    y = F.layer_norm(x, (xv.shape[-1],), w, b, 1e-5)
    y.backward(descent.tensor(gv))
    return [a.numpy().copy() for a in (y, x.grad, w.grad, b.grad)]


@pytest.mark.parametrize(
    ("shape", "parts"),
    [
        ((4, 512, 128), [((0, 1280), (1280, 2048)), ((0, 1280), (1280, 2048))]),  # 2^18
        ((2, 768, 128), [((0, 960), (960, 1536))]),  # 196,608: the backward only
        ((12, 64, 128), []),  # baby-gpt's 98,304: whole
    ],
)
def test_eager_parts_where_and_bits(two, shape, parts):
    """Eager at two BLAS threads: the forward in parts from 2^18 values, the backward from
    2^17, the caller's share 5 of 8 blocks (below 2^19 values); the same bits as with the parts
    off (one thread's path)."""
    rng = np.random.default_rng(1)
    xv = rng.standard_normal(shape).astype(np.float32)
    gv = rng.standard_normal(shape).astype(np.float32)
    wv, bv = (
        rng.standard_normal(128).astype(np.float32),
        rng.standard_normal(128).astype(np.float32),
    )
    halves.LN_HALVES["on"] = False
    one = _eager(xv, gv, wv, bv)
    assert two == []
    halves.LN_HALVES["on"] = True
    got = _eager(xv, gv, wv, bv)
    assert two == parts
    for a, c in zip(one, got, strict=True):
        np.testing.assert_array_equal(_bits(a), _bits(c))


def test_no_parts_without_two_blas_threads(two, monkeypatch):
    """Pinned or at one BLAS thread (`two_blas_threads` False), inside a replay (its plan
    decides), for float64 or with EAGER_HALVES off: the whole call."""
    xv = np.random.default_rng(2).standard_normal((4, 512, 128)).astype(np.float32)
    gv = np.ones_like(xv)
    wv, bv = np.ones(128, np.float32), np.zeros(128, np.float32)
    monkeypatch.setattr(halves, "two_blas_threads", lambda: False)
    _eager(xv, gv, wv, bv)
    monkeypatch.setattr(halves, "two_blas_threads", lambda: True)
    monkeypatch.setitem(halves.REPLAY_STATE, "split", True)
    _eager(xv, gv, wv, bv)
    monkeypatch.setitem(halves.REPLAY_STATE, "split", False)
    _eager(xv.astype(np.float64), gv.astype(np.float64), wv.astype(np.float64),
           bv.astype(np.float64))  # fmt: skip
    monkeypatch.setitem(halves.EAGER_HALVES, "on", False)
    _eager(xv, gv, wv, bv)
    assert two == []


@pytest.fixture
def halves_plan(monkeypatch):
    """Every program on the halves plan with two BLAS threads assumed; counts the replay's
    layer norm parts (threads.run_halves from replay_kernels)."""
    from descent.compiler import replay_kernels as rk

    monkeypatch.setattr(threads, "_two_blas_threads", lambda: True)
    monkeypatch.setattr(halves, "two_blas_threads", lambda: True)
    init0 = threads.ThreadPlan.__init__

    def init(self):
        init0(self)
        self.fix(threads.HALVES_PLAN)

    monkeypatch.setattr(threads.ThreadPlan, "__init__", init)
    seen: list = []
    run0 = rk.run_halves

    def run_halves(parts, fn):
        seen.append(parts)
        return run0(parts, fn)

    monkeypatch.setattr(rk, "run_halves", run_halves)
    return seen


@pytest.mark.parametrize("exact", [False, True])
def test_compiled_on_the_halves_plan_is_eager(halves_plan, exact):
    """A LayerNorm + Linear step of 2^18 values a layer norm call compiled on the halves plan
    (forward and backward in parts in the replay) against eager at one thread: loss and
    gradients bit for bit, three calls."""
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal((4, 512, 128)).astype(np.float32) for _ in range(3)]

    def model():
        descent.manual_seed(0)
        return descent.nn.Sequential(descent.nn.LayerNorm(128), descent.nn.Linear(128, 64),
                                     descent.nn.LayerNorm(64))  # fmt: skip

    def step(m, x):
        loss = (m(x) ** 2).mean()
        loss.backward()
        return loss

    def train(compiled):
        m = model()
        f = descent.compile(lambda x: step(m, x), options={"exact": exact}) if compiled \
            else (lambda x: step(m, x))  # fmt: skip
        out = []
        for xv in xs:
            for p in m.parameters():
                p.grad = None
            out.append(f(descent.tensor(xv)).numpy().copy())
            out += [p.grad.numpy().copy() for p in m.parameters()]
        return out

    halves.LN_HALVES["on"] = False
    try:
        eager = train(False)
    finally:
        halves.LN_HALVES["on"] = True
    compiled = train(True)
    assert len(halves_plan) >= 2  # the first layer norm's forward and backward, replayed
    assert all(p[0][1] == 1280 for p in halves_plan)
    for a, c in zip(eager, compiled, strict=True):
        np.testing.assert_array_equal(_bits(a), _bits(c))


def test_parts_against_torch_float32_and_float64(two):
    """Eager float32 in parts against PyTorch float32 and a float64 reference (PyTorch's
    float64 layer norm): y, the input, weight and bias gradients."""
    rng = np.random.default_rng(5)
    xv = (rng.standard_normal((4, 512, 128)) * 2 + 0.5).astype(np.float32)
    gv = rng.standard_normal(xv.shape).astype(np.float32)
    wv = (1 + 0.2 * rng.standard_normal(128)).astype(np.float32)
    bv = (0.2 * rng.standard_normal(128)).astype(np.float32)
    got = _eager(xv, gv, wv, bv)
    assert len(two) == 2
    for dtype in (torch.float32, torch.float64):
        x = torch.tensor(xv, dtype=dtype, requires_grad=True)
        w = torch.tensor(wv, dtype=dtype, requires_grad=True)
        b = torch.tensor(bv, dtype=dtype, requires_grad=True)
        y = torch.nn.functional.layer_norm(x, (128,), w, b, 1e-5)
        y.backward(torch.tensor(gv, dtype=dtype))
        want = [t.detach().numpy() for t in (y, x.grad, w.grad, b.grad)]
        np.testing.assert_allclose(got[0], want[0], rtol=2e-5, atol=2e-5)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-4, atol=5e-5)
        # column sums over 2,048 rows: float32's error grows with the row count
        np.testing.assert_allclose(got[2], want[2], rtol=1e-4, atol=2e-3)
        np.testing.assert_allclose(got[3], want[3], rtol=1e-4, atol=2e-3)


def test_layer_norm_float64_finite_differences():
    """The op's float64 gradients (x, w, b) against central differences, as in every
    layer norm test (float64 takes NumPy's path; the kernels above are float32's)."""
    rng = np.random.default_rng(6)
    x = descent.tensor(rng.standard_normal((3, 5, 8)), requires_grad=True)
    w = descent.tensor(1 + 0.3 * rng.standard_normal(8), requires_grad=True)
    b = descent.tensor(0.3 * rng.standard_normal(8), requires_grad=True)
    from descent.explain import gradcheck

    assert gradcheck(lambda x, w, b: F.layer_norm(x, (8,), w, b, 1e-5), (x, w, b))
