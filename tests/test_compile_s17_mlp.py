"""descent.compile, session 17: Linear's replayed forward in the transposed layout
(`compiler.linear_t`: y^T = W @ x^T, the NN product, and the next Linear reading the previous
one's transposed output). Every case must give eager's bits: losses, gradients, parameters and
Adam's state over several steps; the fallback where the bits check fails; NaN/inf/-0.0; float64;
3-D inputs; a Linear without bias; a layer output with other readers."""

from __future__ import annotations

import numpy as np
import pytest

import descent
from descent import nn
from descent.compiler import linear_t, threads
from descent.kernels import cpu
from descent.models import MLP
from descent.nn import functional as F

pytestmark = pytest.mark.skipif(
    not cpu.enabled() or linear_t.kernels(np.float32) is None,
    reason="needs the CPU kernels, numba and OpenBLAS's somatcopy")

STEPS = 6


@pytest.fixture
def spy(monkeypatch):
    """Counts of linear_t.Site.run calls: (with the input's transposed twin, without)."""
    counts = {"twin": 0, "copy": 0}
    orig = linear_t.Site.run

    def run(self, x2, w, b, xt, pool):
        counts["twin" if xt is not None else "copy"] += 1
        return orig(self, x2, w, b, xt, pool)

    monkeypatch.setattr(linear_t.Site, "run", run)
    monkeypatch.setattr(linear_t, "MIN_WORK", 0)  # the small test shapes too
    monkeypatch.setattr(linear_t.Site, "TRIALS", 0)  # no timed choice: copy x where needed
    return counts


def _bits(a):
    a = np.ascontiguousarray(np.atleast_1d(a))
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64 if a.dtype.itemsize == 8
                  else np.uint8)  # fmt: skip


def _train(model, compiled, xs, ys, dtype=np.float32):
    opt = descent.optim.Adam(model.parameters(), lr=1e-2)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        out = model(x)
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        loss.backward()
        opt.step()
        return loss

    f = descent.compile(step) if compiled else step
    res = []
    for x, y in zip(xs, ys, strict=True):
        res.append(f(descent.tensor(x), descent.tensor(y))._data.copy())
    for p in model.parameters():
        res += [p._data.copy(), p.grad._data.copy()]
    for st in opt.state.values():
        res += [np.asarray(v._data).copy() for v in st.values() if isinstance(v, descent.Tensor)]
    return res


def _same(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b, strict=True):
        assert u.shape == v.shape and u.dtype == v.dtype
        np.testing.assert_array_equal(_bits(u), _bits(v))


def _data(shape, n_cls, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal(shape).astype(dtype) for _ in range(STEPS)]
    ys = [rng.integers(0, n_cls, shape[:-1]) for _ in range(STEPS)]
    return xs, ys


def _ok(m, k, n, dtype=np.float32):
    """Whether W @ xT gives x @ W.T's bits for this shape under this process's OpenBLAS
    kernels (with OPENBLAS_CORETYPE=Haswell float32 never does: every site falls back)."""
    rng = np.random.default_rng(5)
    return linear_t.same_bits(rng.standard_normal((m, k)).astype(dtype),
                              rng.standard_normal((n, k)).astype(dtype))  # fmt: skip


def _mlp(sizes, dtype=np.float32):
    descent.manual_seed(0)
    m = MLP(sizes, activation="relu")
    return m.double() if dtype == np.float64 else m


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mlp_transposed_equals_eager(spy, dtype):
    sizes, rows = [24, 32, 48, 7], 64
    xs, ys = _data((rows, 24), 7, dtype)
    eager = _train(_mlp(sizes, dtype), False, xs, ys)
    comp = _train(_mlp(sizes, dtype), True, xs, ys)
    _same(eager, comp)
    # per replay: layer 1 copies x, layer 2 reads layer 1's twin, layer 3 (no ReLU) layer 2's
    ok1, ok2, ok3 = (_ok(rows, k, n, dtype) for k, n in zip(sizes, sizes[1:]))
    per_copy = int(ok1) + int(ok2 and not ok1)
    per_twin = int(ok1 and ok2) + int(ok2 and ok3)
    if per_copy:
        replays = spy["copy"] // per_copy
        assert replays >= STEPS - 4 and spy == {"copy": per_copy * replays,
                                                "twin": per_twin * replays}
    else:
        assert spy == {"twin": 0, "copy": 0}


def test_mlp_real_shape_sites(monkeypatch):
    """The benchmark's MLP shape (784-256-256-10, batch 128): every layer in the transposed
    layout with the default MIN_WORK, five steps, eager's bits."""
    sizes = [784, 256, 256, 10]
    xs, ys = _data((128, 784), 10)
    xs, ys = xs[:5], ys[:5]
    eager = _train(_mlp(sizes), False, xs, ys)
    sites = []
    orig = linear_t.plan

    def plan(*a):
        s = orig(*a)
        sites.append(s)
        return s

    monkeypatch.setattr(linear_t, "plan", plan)
    comp = _train(_mlp(sizes), True, xs, ys)
    _same(eager, comp)
    oks = [_ok(128, k, n) for k, n in zip(sizes, sizes[1:])]
    # the last Linear (no ReLU) is planned only when its input comes transposed
    assert [s is not None for s in sites] == (oks if oks[1] else oks[:2])


def test_fallback_when_bits_differ(spy, monkeypatch):
    monkeypatch.setattr(linear_t, "_nn_equal", lambda x2, w, view=False: False)
    monkeypatch.setattr(linear_t, "_SAME", {})
    sizes = [24, 32, 48, 7]
    xs, ys = _data((64, 24), 7)
    _same(_train(_mlp(sizes), False, xs, ys), _train(_mlp(sizes), True, xs, ys))
    assert spy == {"twin": 0, "copy": 0}


def test_same_bits_checks_the_site_arrays(monkeypatch):
    """A shape that passes on random values still fails on the site's own arrays."""
    monkeypatch.setattr(linear_t, "_SAME", {})
    calls = []

    def nn_equal(x2, w, view=False):
        calls.append(x2.shape)
        return len(calls) == 1  # random values pass, the site's arrays do not

    monkeypatch.setattr(linear_t, "_nn_equal", nn_equal)
    x, w = np.ones((4, 3), np.float32), np.ones((5, 3), np.float32)
    assert not linear_t.same_bits(x, w) and len(calls) == 2


class _Net(nn.Module):
    """Linear -> ReLU -> Linear (no bias) -> ReLU -> Linear; `residual` adds the first ReLU's
    output to the second Linear's (a second reader of a twinned slot)."""

    def __init__(self, n_in, h, n_out, residual=False):
        super().__init__()
        self.l1 = nn.Linear(n_in, h)
        self.l2 = nn.Linear(h, h, bias=False)
        self.l3 = nn.Linear(h, n_out)
        self.residual = residual

    def forward(self, x):
        h = F.relu(self.l1(x))
        g = self.l2(h)
        if self.residual:
            g = g + h
        return self.l3(F.relu(g))


@pytest.mark.parametrize("residual", [False, True])
def test_no_bias_and_other_readers(spy, residual):
    xs, ys = _data((64, 24), 6)

    def model():
        descent.manual_seed(1)
        return _Net(24, 32, 6, residual)

    _same(_train(model(), False, xs, ys), _train(model(), True, xs, ys))
    # l2 (no bias) reads l1's twin
    assert (spy["twin"] > 0) == (_ok(64, 24, 32) and _ok(64, 32, 32))


def test_three_d_input(spy):
    xs, ys = _data((4, 16, 24), 6)

    def model():
        descent.manual_seed(2)
        return MLP([24, 32, 32, 6], activation="relu")

    _same(_train(model(), False, xs, ys), _train(model(), True, xs, ys))
    assert (spy["copy"] > 0) == _ok(64, 24, 32)
    assert (spy["twin"] > 0) == (_ok(64, 24, 32) and _ok(64, 32, 32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_inf_negative_zero(spy, dtype):
    """Forward only (no_grad): NaN, inf and -0.0 in the input and in a bias."""
    descent.manual_seed(3)
    model = MLP([24, 32, 32, 6], activation="relu")
    if dtype == np.float64:
        model = model.double()
    b = model.layers[0].bias._data
    b[:4] = [np.nan, np.inf, -np.inf, -0.0]
    model.layers[1].bias._data[:] = -0.0
    rng = np.random.default_rng(4)
    xs = []
    for _ in range(STEPS):
        x = rng.standard_normal((64, 24)).astype(dtype)
        x[0, 0], x[1, 1], x[2, 2], x[3, :] = np.nan, np.inf, -np.inf, -0.0
        x[4, 3] = np.inf
        x[4, 5] = -np.inf  # inf - inf in a dot product: NaN
        xs.append(x)

    def f(x):
        with descent.no_grad():
            return model(x)

    eager = [f(descent.tensor(x))._data.copy() for x in xs]
    g = descent.compile(f)
    comp = [g(descent.tensor(x))._data.copy() for x in xs]
    _same(eager, comp)
    assert (spy["copy"] > 0) == _ok(64, 24, 32, dtype)


def test_timed_choice_alternates_then_keeps():
    rng = np.random.default_rng(6)
    x, w = (rng.standard_normal(s).astype(np.float32) for s in ((64, 24), (32, 24)))
    site = linear_t.plan(x, w, np.zeros(32, np.float32), True, descent.compiler.program.Pool())
    if site is None:
        pytest.skip("this OpenBLAS's kernels give other bits for W @ xT here")
    assert site.copy_ok is None
    seen = []
    for _ in range(2 * linear_t.Site.TRIALS):
        mine = site.copies()
        seen.append(mine)
        site.timed(mine, 2.0 if mine else 1.0)  # the copy path slower
    assert seen == [True, False] * linear_t.Site.TRIALS
    assert site.copy_ok is False and not site.copies()


@pytest.mark.parametrize("copy_wins", [False, True])
def test_timed_choice_in_the_step(spy, monkeypatch, copy_wins):
    """With the choice timed (2 trials a path), eager's bits whichever path wins; once eager's
    product wins at layer 1, layer 1 no longer copies x."""
    monkeypatch.setattr(linear_t.Site, "TRIALS", 2)
    monkeypatch.setattr(threads, "_cores", lambda: 1)  # the thread plan settles at once
    orig = linear_t.Site.timed

    def timed(self, transposed, seconds):
        orig(self, transposed, 1.0 if transposed == copy_wins else 2.0)

    monkeypatch.setattr(linear_t.Site, "timed", timed)
    sizes, rows = [24, 32, 48, 7], 64
    if not _ok(rows, 24, 32):
        pytest.skip("layer 1 keeps eager's product with this OpenBLAS's kernels")
    global STEPS
    steps = STEPS
    try:
        STEPS = 12
        xs, ys = _data((rows, 24), 7)
    finally:
        STEPS = steps
    _same(_train(_mlp(sizes), False, xs, ys), _train(_mlp(sizes), True, xs, ys))
    if copy_wins:
        assert spy["copy"] >= 6
    else:  # layer 1 copied on its 2 trials; layer 2 timed too once it lost layer 1's twin
        assert spy["copy"] <= 2 + 2 + 1


@pytest.mark.parametrize("frozen", ["layers.0.weight", "layers.1.bias", "layers.2.weight"])
def test_frozen_parameter_backward(spy, frozen):
    """The replayed Linear backward (program._linear_grads) skips exactly the gradients eager
    skips: a frozen weight or bias gets none, the others eager's bits."""
    xs, ys = _data((64, 24), 7)

    def run(compiled):
        m = _mlp([24, 32, 48, 7])
        dict(m.named_parameters())[frozen].requires_grad_(False)
        opt = descent.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-2)

        def step(x, y):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            return loss

        f = descent.compile(step) if compiled else step
        out = [f(descent.tensor(x), descent.tensor(y))._data.copy() for x, y in zip(xs, ys)]
        for p in m.parameters():
            out.append(p._data.copy())
            out.append(np.array([]) if p.grad is None else p.grad._data.copy())
        return out

    _same(run(False), run(True))


def test_site_trials_wait_for_the_thread_plan(spy, monkeypatch):
    """While the program's ThreadPlan times its plans (its first 4 * TRIALS calls, where more
    than one core may run), a site copying x runs transposed untimed."""
    monkeypatch.setattr(linear_t.Site, "TRIALS", 2)
    monkeypatch.setattr(threads, "_cores", lambda: 2)
    sites = []
    orig = linear_t.plan

    def plan(*a):
        sites.append(orig(*a))
        return sites[-1]

    monkeypatch.setattr(linear_t, "plan", plan)
    xs, ys = _data((64, 24), 7)
    _same(_train(_mlp([24, 32, 48, 7]), False, xs, ys), _train(_mlp([24, 32, 48, 7]), True, xs, ys))
    for site in sites:
        if site is not None:
            assert site.copy_ok is None and site.times == ([], [])


@pytest.mark.parametrize("view_ok", [False, True])
def test_first_layer_reads_x_transposed_or_copies(spy, monkeypatch, view_ok):
    """Without a twin a site runs W @ x.T where that gives eager's bits (its own check), else
    W @ xT on a copy of x; eager's bits either way."""
    monkeypatch.setattr(linear_t, "_SAME", {})
    orig = linear_t._nn_equal
    monkeypatch.setattr(linear_t, "_nn_equal",
                        lambda x2, w, view=False: orig(x2, w, view) and (view_ok or not view))
    sites = []
    orig_plan = linear_t.plan

    def plan(*a):
        sites.append(orig_plan(*a))
        return sites[-1]

    monkeypatch.setattr(linear_t, "plan", plan)
    sizes = [24, 32, 48, 7]
    xs, ys = _data((64, 24), 7)
    _same(_train(_mlp(sizes), False, xs, ys), _train(_mlp(sizes), True, xs, ys))
    if sites[0] is not None:
        assert sites[0].view == view_ok and spy["copy"] > 0
