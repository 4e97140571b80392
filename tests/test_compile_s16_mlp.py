"""descent.compile, session 16: the replayed Adam/AdamW step without the optimizer's Python
(`fusion.AdamFastStep`) when nothing `step()` decides from has changed, and its guards: every
change a user can make between compiled calls (a scheduler's lr, hyperparameters edited in
`param_groups`, `load_state_dict`, a frozen parameter, a replaced `.data` or state tensor,
cleared state, per-parameter step counts, amsgrad switched on, a Tensor lr) must give eager's
bits. Also: a channels-last parameter (its flat slice is in memory order) with Adam."""

from __future__ import annotations

import numpy as np
import pytest

import descent
from descent.kernels import cpu
from descent.models import MLP
from descent.nn import functional as F

pytestmark = pytest.mark.skipif(not cpu.enabled(), reason="needs the CPU kernels")

from test_compile_s15 import STEPS, _batches  # noqa: E402 - tests/ is on sys.path (conftest)


def _fast_of(f):
    """The AdamFastStep of a compiled function's program (None when it has none)."""
    for prog in f.programs():
        for ins, _, _ in prog.steps:
            fused = getattr(ins, "fused", None)
            if fused:
                return getattr(fused, "fast", None)
    return None


def _run(compiled, change=None, opt_cls=descent.optim.Adam, **opt_kw):
    descent.manual_seed(0)
    model = MLP([20, 32, 32, 5], activation="relu")
    opt = opt_cls(model.parameters(), **{"lr": 1e-2, **opt_kw})
    ctx: dict = {}

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    f = descent.compile(step) if compiled else step
    losses, grads = [], []
    for i, (x, y) in enumerate(_batches()):
        if change is not None:
            change(model, opt, i, ctx)
        losses.append(f(x, y)._data.copy())
        grads.append([None if p.grad is None else p.grad._data.copy()
                      for p in model.parameters()])  # fmt: skip
        if "after" in ctx:
            ctx["after"](i)
    state = [(k, np.asarray(v._data).copy()) for st in opt.state.values() for k, v in st.items()
             if isinstance(v, descent.Tensor)]  # fmt: skip
    return losses, grads, [p._data.copy() for p in model.parameters()], state, f


def _same(a, b):
    for u, v in zip(a[0], b[0], strict=True):
        np.testing.assert_array_equal(u, v)
    for gu, gv in zip(a[1], b[1], strict=True):
        for u, v in zip(gu, gv, strict=True):
            assert (u is None) == (v is None)
            if u is not None:
                np.testing.assert_array_equal(u, v)
    for u, v in zip(a[2], b[2], strict=True):
        np.testing.assert_array_equal(u, v)
    assert [k for k, _ in a[3]] == [k for k, _ in b[3]]
    for (_, u), (_, v) in zip(a[3], b[3], strict=True):
        np.testing.assert_array_equal(u, v)


def _scheduler(model, opt, i, ctx):
    if i == 0:
        sched = descent.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        ctx["after"] = lambda i: sched.step()


def _lr_edit(model, opt, i, ctx):
    if i == 4:
        opt.param_groups[0]["lr"] = 0.05
    if i == 7:
        opt.param_groups[0]["lr"] = 1e-3


def _hyper_edit(model, opt, i, ctx):
    g = opt.param_groups[0]
    edits = {4: ("betas", (0.5, 0.9)), 5: ("eps", 1e-3), 6: ("weight_decay", 0.1),
             7: ("maximize", True), 8: ("decoupled_weight_decay", True)}  # fmt: skip
    if i in edits:
        g[edits[i][0]] = edits[i][1]


def _load_state_dict(model, opt, i, ctx):
    if i == 3:
        ctx["saved"] = opt.state_dict()
    if i == 6:
        opt.load_state_dict(ctx["saved"])


def _frozen(model, opt, i, ctx):
    model.layers[-1].bias.requires_grad_(not 4 <= i <= 6)


def _data_replaced(model, opt, i, ctx):
    if i == 4:
        w = model.layers[1].weight
        w.data = descent.tensor(w._data * 0.5)


def _data_written(model, opt, i, ctx):
    if i == 4:
        model.layers[0].weight.data.mul_(0.5)  # in place through .data: no version bump
    if i == 6:
        model.layers[0].bias.numpy()[...] = 0.25


def _state_swapped(model, opt, i, ctx):
    if i == 4:
        p = model.layers[0].weight
        opt.state[p]["exp_avg"] = descent.zeros_like(p)


def _state_cleared(model, opt, i, ctx):
    if i == 5:
        opt.state[model.layers[1].bias].clear()


def _step_count_edited(model, opt, i, ctx):
    if i == 6:
        opt.state[model.layers[0].weight]["step"].fill_(1.0)  # in place: counts now differ


def _amsgrad_on(model, opt, i, ctx):
    if i == 5:
        opt.param_groups[0]["amsgrad"] = True


def _tensor_lr(model, opt, i, ctx):
    if i == 6:
        opt.param_groups[0]["lr"] = descent.tensor(5e-3)


def _params_reordered(model, opt, i, ctx):
    if i == 4:
        g = opt.param_groups[0]
        g["params"] = list(reversed(g["params"]))


def _groups_replaced(model, opt, i, ctx):
    if i == 4:
        opt.param_groups = [{**g, "lr": 0.02} for g in opt.param_groups]


CHANGES = {f.__name__.strip("_"): f for f in (
    _scheduler, _lr_edit, _hyper_edit, _load_state_dict, _frozen, _data_replaced, _data_written,
    _state_swapped, _state_cleared, _step_count_edited, _amsgrad_on, _tensor_lr,
    _params_reordered, _groups_replaced)}  # fmt: skip


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_fast_step_follows_changes_between_calls(change):
    eager, comp = _run(False, CHANGES[change]), _run(True, CHANGES[change])
    _same(eager, comp)
    f = comp[4]
    assert f.stats["fallbacks"] == 0
    fast = _fast_of(f)
    # it ran before and/or after the change (a frozen parameter records new programs: its
    # requires_grad is in the cache key)
    assert fast is not None and (fast.hits >= 1 or change == "frozen")


@pytest.mark.parametrize("opt_cls", [descent.optim.Adam, descent.optim.AdamW])
def test_fast_step_runs_every_replay_and_equals_eager(opt_cls):
    eager, comp = _run(False, opt_cls=opt_cls), _run(True, opt_cls=opt_cls)
    _same(eager, comp)
    f = comp[4]
    fast = _fast_of(f)
    # calls 1 and 2 record (.grad is None before the first: another key), the first replay
    # takes the optimizer's own step (and learns), the rest the fast one
    assert f.stats["replays"] == STEPS - 3 and fast.hits == STEPS - 4 and fast.learned == 1


def test_fast_step_two_groups_and_a_closure_free_step():
    def groups(model):
        ps = list(model.parameters())
        return [{"params": ps[:2], "weight_decay": 0.1}, {"params": ps[2:], "lr": 3e-3}]

    def run(compiled):
        descent.manual_seed(0)
        model = MLP([20, 32, 32, 5], activation="relu")
        opt = descent.optim.AdamW(groups(model), lr=1e-2)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        f = descent.compile(step) if compiled else step
        out = [f(x, y)._data.copy() for x, y in _batches()]
        return out, [p._data.copy() for p in model.parameters()], f

    a, b = run(False), run(True)
    for u, v in zip(a[0] + a[1], b[0] + b[1], strict=True):
        np.testing.assert_array_equal(u, v)
    assert _fast_of(b[2]).hits == STEPS - 4


def test_step_hook_added_between_calls_runs():
    # compile checks step hooks before each call (eager then); the hook must run either way
    seen = []

    def change(model, opt, i, ctx):
        if i == 5:
            opt.register_step_post_hook(lambda o, a, k: seen.append(i))

    eager, comp = _run(False, change), _run(True, change)
    _same(eager, comp)
    assert len(seen) == 2 * (STEPS - 5)


def test_channels_last_parameter_with_adam_equals_eager():
    # a channels-last conv weight's flat slice is in memory order and its gradient C-contiguous
    # in index order: the replayed step must not read the gradient in place (it did before
    # session 16: the parameters drifted from eager's at the third replay)
    nn = descent.nn

    def run(compiled):
        descent.manual_seed(0)
        m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
        m = m.to(memory_format=descent.channels_last)
        opt = descent.optim.Adam(m.parameters(), lr=1e-2)
        rng = np.random.default_rng(0)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            return loss

        f = descent.compile(step) if compiled else step
        out = []
        for _ in range(6):
            x = descent.tensor(rng.standard_normal((2, 3, 8, 8), dtype=np.float32))
            x = x.to(memory_format=descent.channels_last)
            out.append(f(x, descent.tensor(rng.integers(0, 5, 2)))._data.copy())
        return out + [p._data.copy() for p in m.parameters()]

    for u, v in zip(run(False), run(True), strict=True):
        np.testing.assert_array_equal(u, v)


# -- the plain backward pass (program._plain_backward) ------------------------------------------


def _plain_used(f) -> bool:
    return any(v for prog in f.programs() for v in prog._plain_backward.values())


def test_plain_backward_accumulates_shares_and_broadcasts_as_eager():
    # no zero_grad (.grad accumulates across calls), one gradient delivered to two leaves
    # (a + b: the same array, so one .grad is a copy), a broadcast (sum_to) into a (1, n) leaf,
    # a weight used twice (two deliveries summed into a pool buffer)
    def run(compiled):
        rng = np.random.default_rng(1)
        w = descent.tensor(rng.standard_normal((6, 6), dtype=np.float32), requires_grad=True)
        a = descent.tensor(rng.standard_normal((4, 6), dtype=np.float32), requires_grad=True)
        b = descent.tensor(rng.standard_normal((4, 6), dtype=np.float32), requires_grad=True)
        c = descent.tensor(rng.standard_normal((1, 6), dtype=np.float32), requires_grad=True)

        def step(x):
            h = descent.relu(x @ w) @ w + c
            loss = ((h + a + b) * (h + a + b)).mean()
            loss.backward()
            return loss

        f = descent.compile(step) if compiled else step
        out = []
        for _ in range(5):
            x = descent.tensor(rng.standard_normal((4, 6), dtype=np.float32))
            out.append(f(x)._data.copy())
            out += [t.grad._data.copy() for t in (w, a, b, c)]
        assert a.grad._data is not b.grad._data
        return out, f

    (ref, _), (got, f) = run(False), run(True)
    for u, v in zip(ref, got, strict=True):
        np.testing.assert_array_equal(u, v)
    assert f.stats["replays"] >= 2 and _plain_used(f)


def test_plain_backward_keeps_the_grads_fresh_and_retain_graph_off():
    # each call's .grad arrays are new (a caller keeping last step's sees no change) and the
    # nodes' saved arrays are released as eager's
    batches = _batches()
    descent.manual_seed(0)
    model = MLP([20, 32, 5], activation="relu")

    def step(x, y):
        model.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    f = descent.compile(step)
    kept = []
    for x, y in batches:
        f(x, y)
        kept.append([(p.grad._data, p.grad._data.copy()) for p in model.parameters()])
    for grads in kept:
        for arr, copy in grads:
            np.testing.assert_array_equal(arr, copy)
    assert _plain_used(f)
    for prog in f.programs():
        for ins, _, _ in prog.steps:
            if getattr(ins, "node", False):
                assert ins.op.saved is None or ins.op.saved is descent.autograd._FREED


# -- Linear's bias add and ReLU in one pass (program._linear_relu) --------------------------------


def _paired(f) -> int:
    """How many Linear steps ran their ReLU with them (their kernel chosen)."""
    return sum(1 for prog in f.programs() for _, _, extra in prog.steps
               if extra and isinstance(extra[2], list) and extra[2][1])  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_bias_relu_in_one_pass_keeps_eagers_bits(dtype):
    # special values through y + b and the ReLU: NaN and infinities in the bias (inf + -inf),
    # -0.0 (a zero input row with a -0.0 bias), a 3-D input; and a Linear whose output has a
    # second reader (not paired): losses, gradients and outputs bit for bit (no optimizer: the
    # NaN columns stay where they are)
    ints = np.uint32 if dtype == np.float32 else np.uint64
    rng = np.random.default_rng(11)
    xs = []
    for _ in range(5):
        x = rng.standard_normal((3, 5, 12)).astype(dtype)
        x[0, 0] = 0.0
        x[1, 2, 3] = np.inf
        xs.append(descent.tensor(x))

    def run(compiled):
        descent.manual_seed(0)
        nn = descent.nn
        l1, l2, l3 = nn.Linear(12, 16), nn.Linear(16, 16), nn.Linear(16, 4)
        for m in (l1, l2, l3):
            m.to(dtype=descent.float64 if dtype == np.float64 else descent.float32)
        b = l1.bias._data
        b[:4] = [np.nan, np.inf, -np.inf, -0.0]
        def step(x):
            for m in (l1, l2, l3):
                m.zero_grad()
            h = descent.relu(l1(x))  # paired
            z = l2(h)
            h2 = descent.relu(z) + z * 0.5  # z read twice: not paired
            out = l3(h2)
            loss = (out * out).mean()
            loss.backward()
            return loss, h

        f = descent.compile(step) if compiled else step
        res = []
        for x in xs:
            loss, h = f(x)
            res += [loss._data.copy(), h._data.copy()]
            res += [p.grad._data.copy() for m in (l1, l2, l3) for p in m.parameters()]
        return res + [p._data.copy() for m in (l1, l2, l3) for p in m.parameters()], f

    (a, _), (b, f) = run(False), run(True)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(u).view(ints), np.asarray(v).view(ints))
    assert f.stats["replays"] >= 2 and _paired(f) == 1


def test_linear_relu_in_the_mlp_step():
    # the benchmark's MLP shape family: both hidden layers paired, eager's bits
    eager, comp = _run(False), _run(True)
    _same(eager, comp)
    assert _paired(comp[4]) == 2


def test_fast_step_hyperparameters_of_other_types():
    # NumPy-float weight decay and eps (they compute in their own precision in adam_args), an
    # int lr, edited between calls: the fast step's kept arguments follow values and types
    def change(model, opt, i, ctx):
        g = opt.param_groups[0]
        if i == 4:
            g["weight_decay"] = np.float32(0.1)
        if i == 5:
            g["weight_decay"] = 0.1
        if i == 6:
            g["eps"] = np.float64(1e-3)
        if i == 7:
            g["lr"] = 0.7  # 1 - lr * wd: 0.475 in float64, 0.47500002 in float32
            g["weight_decay"] = np.float32(0.75)
            g["decoupled_weight_decay"] = True  # AdamW's decay: p *= 1 - lr wd
        if i == 8:
            g["weight_decay"] = 0.75  # the same value, another type
        if i == 9:
            g["lr"] = 1

    eager, comp = _run(False, change), _run(True, change)
    _same(eager, comp)
    assert _fast_of(comp[4]).hits >= 5
