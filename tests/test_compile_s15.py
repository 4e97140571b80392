"""descent.compile, session 15: the replayed Adam/AdamW step reads each gradient where it is
(`fusion.adam_step_buffer`, kernel `_cpu_optim.adam_grads`) instead of copying the gradients
into the optimizer's flat buffer first. Compared with eager bit for bit: losses, gradients,
parameters, optimizer state (step counts included), checkpoint resume, and the cases that must
take the optimizer's own path (a first step, a parameter without a gradient, amsgrad)."""

from __future__ import annotations

import numpy as np
import pytest

import descent
from descent.kernels import cpu
from descent.models import MLP
from descent.nn import functional as F

pytestmark = pytest.mark.skipif(not cpu.enabled(), reason="needs the CPU kernels")

STEPS = 10


def _batches(n_in=20, n_cls=5, rows=8, n=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    return [(descent.tensor(rng.standard_normal((rows, n_in), dtype=np.float32)),
             descent.tensor(rng.integers(0, n_cls, rows))) for _ in range(n)]  # fmt: skip


OPTS = {
    "adam": lambda ps: descent.optim.Adam(ps, lr=1e-2),
    "adam_wd_maximize": lambda ps: descent.optim.Adam(ps, lr=1e-2, weight_decay=0.1,
                                                      maximize=True),  # fmt: skip
    "adam_beta1_small": lambda ps: descent.optim.Adam(ps, lr=1e-2, betas=(0.3, 0.9)),
    "adamw": lambda ps: descent.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    "adamw_wd1": lambda ps: descent.optim.AdamW(ps, lr=1e-2, weight_decay=1.0),
    "amsgrad": lambda ps: descent.optim.Adam(ps, lr=1e-2, amsgrad=True),  # not fused
    "two_groups": lambda ps: descent.optim.AdamW(
        [{"params": ps[:2], "weight_decay": 0.1}, {"params": ps[2:], "weight_decay": 0.0}],
        lr=1e-2),  # fmt: skip
}


def _run(opt_fn, batches, compiled, clip=None, freeze=None, sizes=(20, 32, 32, 5)):
    descent.manual_seed(0)
    model = MLP(list(sizes), activation="relu")
    opt = opt_fn(list(model.parameters()))

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if clip is not None:
            descent.optim.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss

    f = descent.compile(step) if compiled else step
    losses, grads = [], []
    for i, (x, y) in enumerate(batches):
        if freeze is not None:
            freeze(model, i)
        losses.append(f(x, y)._data.copy())
        grads.append([None if p.grad is None else p.grad._data.copy()
                      for p in model.parameters()])  # fmt: skip
    state = [np.asarray(v._data).copy() for st in opt.state.values() for v in st.values()
             if isinstance(v, descent.Tensor)]  # fmt: skip
    return losses, grads, [p._data.copy() for p in model.parameters()], state, f, model, opt


def _same(a, b):
    for x, y in zip(a[:4], b[:4], strict=True):
        for u, v in zip(x, y, strict=True):
            for p, q in zip(u if isinstance(u, list) else [u], v if isinstance(v, list) else [v],
                            strict=True):  # fmt: skip
                if p is None or q is None:
                    assert p is None and q is None
                else:
                    np.testing.assert_array_equal(p, q)


def _flat_grad_is_stale(model, opt):
    """True when the flat gradient buffer no longer holds the last step's gradients (the
    replay read them in place instead of copying)."""
    buf = opt._layouts[0].buffers[0]
    return any(not np.array_equal(v, p.grad._data) for p, v in zip(buf.params, buf.grad_views))


@pytest.mark.parametrize("opt", sorted(OPTS))
def test_adam_reads_gradients_in_place_equal_eager(opt):
    batches = _batches()
    eager, comp = _run(OPTS[opt], batches, False), _run(OPTS[opt], batches, True)
    _same(eager, comp)
    f, model, o = comp[4], comp[5], comp[6]
    assert f.stats["replays"] >= STEPS - 3 and f.stats["fallbacks"] == 0
    assert _flat_grad_is_stale(model, o) == (opt != "amsgrad")
    # the step counts advanced as eager's
    for st in o.state.values():
        assert float(st["step"]._data) == STEPS


def test_adam_in_place_with_clipping_and_a_second_model_shape():
    batches = _batches(n_in=48, n_cls=7)
    kw = {"clip": 0.5, "sizes": (48, 64, 7)}
    _same(_run(OPTS["adamw"], batches, False, **kw), _run(OPTS["adamw"], batches, True, **kw))


def test_a_parameter_without_gradient_takes_the_optimizers_path():
    # the last layer's bias gets no gradient in steps 4-6 (requires_grad off): the step's own
    # per-parameter path runs there, the in-place one before and after
    def freeze(model, i):
        model.layers[-1].bias.requires_grad_(not 4 <= i <= 6)

    batches = _batches()
    _same(_run(OPTS["adam"], batches, False, freeze=freeze),
          _run(OPTS["adam"], batches, True, freeze=freeze))  # fmt: skip


def test_adam_in_place_checkpoint_resume_is_exact(tmp_path):
    batches = _batches(n=16)

    def fresh():
        descent.manual_seed(0)
        m = MLP([20, 32, 5], activation="relu")
        return m, descent.optim.Adam(m.parameters(), lr=1e-2)

    def steps(model, opt, bs, compiled):
        def step(x, y):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        f = descent.compile(step) if compiled else step
        return [f(x, y)._data.copy() for x, y in bs]

    m, o = fresh()
    ref = steps(m, o, batches, False)
    m2, o2 = fresh()
    first = steps(m2, o2, batches[:8], True)
    path = str(tmp_path / "ck")
    descent.save({"model": m2.state_dict(), "opt": o2.state_dict()}, path)
    m3, o3 = fresh()
    ck = descent.load(path)
    m3.load_state_dict(ck["model"])
    o3.load_state_dict(ck["opt"])
    rest = steps(m3, o3, batches[8:], True)
    for u, v in zip(ref, first + rest, strict=True):
        np.testing.assert_array_equal(u, v)
    for p, q in zip(m.parameters(), m3.parameters(), strict=True):
        np.testing.assert_array_equal(p._data, q._data)
    for a, b in zip(o.state.values(), o3.state.values(), strict=True):
        for k in a:
            np.testing.assert_array_equal(np.asarray(a[k]._data), np.asarray(b[k]._data))


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("wd_mode", [0, 1, 2])
def test_adam_grads_kernel_is_adam32(parallel, wd_mode):
    # the kernel against eager's adam32 on a flat buffer of odd-sized parts (edges: zeros,
    # tiny and huge gradients, a zero second moment), over three steps
    from descent.kernels import _cpu_jit, _cpu_optim

    rng = np.random.default_rng(wd_mode)
    sizes = [37, 1, 300, 16, 5]
    n = sum(sizes)
    p0 = rng.standard_normal(n).astype(np.float32)
    gs = [rng.standard_normal(s).astype(np.float32) for s in sizes]
    gs[0][:4] = [0.0, 1e-30, 3e30, -0.0]
    lo = np.cumsum([0] + sizes[:-1]).astype(np.int64)
    f = np.float32
    kernel = _cpu_optim.adam_grads_kernel(parallel)
    pa, ma, va = p0.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
    pb, mb, vb = p0.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
    for step in (1, 2, 3):
        args = (step == 2, wd_mode, f(1 - 1e-3), f(0.01), False, step != 3, f(0.1 if step != 3
                else 0.9), f(0.999), f(0.001), f((1 - 0.999**step) ** 0.5), f(1e-8),
                f(-1e-3 / (1 - 0.9**step)), False)  # fmt: skip
        kernel(pa, tuple(gs), lo, ma, va, *args)
        _cpu_jit.adam32(pb, np.concatenate(gs), mb, vb, *args)
        for a, b in ((pa, pb), (ma, mb), (va, vb)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_and_relu_into_pool_buffers_equal_eager(dtype):
    # Linear (3-D input, with and without bias) and ReLU forward/backward replayed with out=
    # pool buffers: eager's calls, so eager's bits; the replay's plans are checked to have run
    from descent.compiler import program as program_mod

    rng = np.random.default_rng(3)
    xs = [descent.tensor(rng.standard_normal((4, 6, 24)).astype(dtype)) for _ in range(6)]

    def run(compiled):
        descent.manual_seed(0)
        model = descent.nn.Sequential(descent.nn.Linear(24, 32, bias=False), descent.nn.ReLU(),
                                      descent.nn.Linear(32, 8), descent.nn.ReLU())  # fmt: skip
        model.to(dtype=descent.float64 if dtype == np.float64 else descent.float32)
        opt = descent.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step(x):
            opt.zero_grad(set_to_none=True)
            loss = (model(x) ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        f = descent.compile(step) if compiled else step
        out = []
        for x in xs:
            out.append(f(x)._data.copy())
            out += [p.grad._data.copy() for p in model.parameters()]
        return out + [p._data.copy() for p in model.parameters()], f

    (a, _), (b, f) = run(False), run(True)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert f.stats["replays"] >= 3
    prog = next(iter(f._cache.values())).program if len(f._cache) == 1 else [
        e.program for e in f._cache.values() if e.program is not None][-1]  # fmt: skip
    kinds = [extra[1] and extra[1][0] for ins, _, extra in prog.steps
             if isinstance(ins, program_mod.Forward)]  # fmt: skip
    assert kinds.count("linear") == 2 and kinds.count("relu") == 2


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_replay_kernel_equals_eager(smoothing):
    # the replay's cross-entropy (eager's kernels without the wrappers): ignored rows, label
    # smoothing, and a batch whose rows are all ignored (eager's path: nan loss, zero gradient)
    from descent.compiler import program as program_mod

    rng = np.random.default_rng(4)
    batches = []
    for i in range(7):
        y = rng.integers(0, 6, 16)
        y[::5] = -100
        if i == 5:
            y[:] = -100
        batches.append((descent.tensor(rng.standard_normal((16, 12), dtype=np.float32)),
                        descent.tensor(y)))  # fmt: skip

    def run(compiled):
        descent.manual_seed(0)
        model = MLP([12, 24, 6], activation="relu")
        opt = descent.optim.Adam(model.parameters(), lr=1e-2)

        def step(x, y):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y, label_smoothing=smoothing)
            loss.backward()
            opt.step()
            return loss

        f = descent.compile(step) if compiled else step
        out = []
        for x, y in batches:
            out.append(f(x, y)._data.copy())
            out += [p.grad._data.copy() for p in model.parameters()]
        return out + [p._data.copy() for p in model.parameters()], f

    (a, _), (b, f) = run(False), run(True)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    progs = [e.program for e in f._cache.values() if e.program is not None]
    kinds = [extra[1] and extra[1][0] for ins, _, extra in progs[-1].steps
             if isinstance(ins, program_mod.Forward)]  # fmt: skip
    assert "ce" in kinds


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_replay_kernel_keeps_maximums_bits(dtype):
    # NaN (both signs, its payload kept), -0.0 (kept, as PyTorch's relu: clamp_min(x, 0)
    # returns x on a tie; session 22), infinities; the same bits as eager's relu
    from descent.compiler import replay_kernels

    x = np.random.default_rng(5).standard_normal(300).astype(dtype)
    x[:7] = [np.nan, -np.nan, -0.0, 0.0, -np.inf, np.inf, -1e-40]
    f = descent.compile(lambda t: descent.nn.functional.relu(t))
    with descent.no_grad():
        outs = [f(descent.tensor(x))._data.copy() for _ in range(4)]  # 2 recordings, 2 replays
    ints = np.uint32 if dtype == np.float32 else np.uint64
    want = np.where(x < 0, dtype(0), x)
    assert np.signbit(want[2]) and np.isnan(want[:2]).all()
    eager = descent.nn.functional.relu(descent.tensor(x))._data
    np.testing.assert_array_equal(eager.view(ints), want.view(ints))
    for out in outs:
        np.testing.assert_array_equal(out.view(ints), want.view(ints))
    assert replay_kernels._relu_kernel() is not None
    progs = [e.program for e in f._cache.values() if e.program is not None]
    assert [extra[1][0] for ins, _, extra in progs[-1].steps if extra and extra[1]] == ["relu"]


def test_gelu_backward_into_its_derivative_buffer_equal_eager():
    # the replayed GELU backward writes gy * d into d's own buffer (nothing else holds it):
    # the same bits as eager's backward, through the compiled step and directly
    from descent.compiler import replay_kernels
    from descent.compiler.program import Pool

    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 130)).astype(np.float32) * 4
    x[0, :4] = [0.0, -0.0, 1e-30, -9.0]
    gy = rng.standard_normal(x.shape).astype(np.float32)
    t = descent.tensor(x, requires_grad=True)
    y = F.gelu(t)
    y.backward(descent.tensor(gy))
    site = replay_kernels._GeluSite(replay_kernels._fast().gelu_fwd_d32, Pool())
    out = site.forward(x)
    d = site.d
    gx = site.backward(x, gy)
    assert gx is d  # into the derivative's buffer
    np.testing.assert_array_equal(out.view(np.uint32), y._data.view(np.uint32))
    np.testing.assert_array_equal(gx.view(np.uint32), t.grad._data.view(np.uint32))

    def run(compiled):
        descent.manual_seed(0)
        model = MLP([20, 48, 5], activation="gelu")
        opt = descent.optim.AdamW(model.parameters(), lr=1e-2)

        def step(x, y):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        f = descent.compile(step) if compiled else step
        losses = [f(a, b)._data.copy() for a, b in _batches()]
        ps = list(model.parameters())
        return losses + [p.grad._data.copy() for p in ps] + [p._data.copy() for p in ps]

    for u, v in zip(run(False), run(True), strict=True):
        np.testing.assert_array_equal(np.atleast_1d(u).view(np.uint8),
                                      np.atleast_1d(v).view(np.uint8))  # fmt: skip
