"""descent.compile's generated replay (session 21, `compiler/codegen.py`): from its second replay
a program runs one generated Python function instead of the interpreter (`Program._run`).

Every program here runs three ways: eager, compiled with the interpreter only
(`program.CODEGEN[0] = False`) and compiled with the generated replay; losses, outputs,
gradients, parameters and optimizer state must be the same bits, and the generated function
must be the one that ran (`Program.generated_runs`)."""

from __future__ import annotations

import numpy as np
import pytest

import descent
from descent import nn
from descent.compiler import codegen
from descent.compiler import program as P
from descent.compiler.fusion import FusedChain
from descent.compiler.recorder import Backward, Forward, View, Write
from descent.models import GPT, MLP, GPTConfig, LeNet

STEPS = 7


def _bits(a):
    a = np.ascontiguousarray(np.atleast_1d(np.asarray(a)))
    return a.view(np.uint8)


def _same(a, b):
    assert len(a) == len(b)
    for k, (u, v) in enumerate(zip(a, b, strict=True)):
        assert u.shape == v.shape and u.dtype == v.dtype, k
        np.testing.assert_array_equal(_bits(u), _bits(v), err_msg=f"value {k}")


def _train(make, batches, mode, monkeypatch, clip=None):
    """Values of a training step over the batches: mode 'eager', 'interp' or 'codegen'."""
    monkeypatch.setattr(P, "CODEGEN", [mode == "codegen"])
    descent.manual_seed(0)
    model, opt, loss_fn = make()

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model, x, y)
        loss.backward()
        if clip is not None:
            descent.optim.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss

    f = step if mode == "eager" else descent.compile(step)
    out = []
    for x, y in batches:
        out.append(f(x, y)._data.copy())
        out += [p.grad._data.copy() for p in model.parameters() if p.grad is not None]
    out += [p._data.copy() for p in model.parameters()]
    for st in opt.state.values():
        out += [np.asarray(v._data).copy() for v in st.values() if isinstance(v, descent.Tensor)]
    return out, (None if mode == "eager" else f)


def _three_ways(make, batches, monkeypatch, clip=None):
    """Eager, interpreted and generated replays compared bitwise; the compiled functions."""
    eager, _ = _train(make, batches, "eager", monkeypatch, clip)
    interp, fi = _train(make, batches, "interp", monkeypatch, clip)
    gen, fg = _train(make, batches, "codegen", monkeypatch, clip)
    _same(eager, interp)
    _same(eager, gen)
    assert fi.stats["replays"] >= 2 and fg.stats["replays"] == fi.stats["replays"]
    assert fg.stats["fallbacks"] == fi.stats["fallbacks"] == 0
    # the interpreter's programs never ran generated code; the generated replay ran on every
    # replay of the codegen programs but each one's first (which decides the plans)
    assert all(p.generated_runs == 0 and not p.generated for p in fi.programs())
    runs = sum(p.generated_runs for p in fg.programs())
    assert runs == fg.stats["replays"] - len([p for p in fg.programs() if p._replays])
    assert runs > 0
    for p in fg.programs():
        assert p.codegen_error is None
    return fi, fg


def _steps_of(f, kind):
    return [ins for p in f.programs() for ins, _, _ in p.steps if type(ins) is kind]


def _gpt_batches(vocab=40, B=4, T=16, seed=0, n=STEPS):
    rng = np.random.default_rng(seed)
    return [tuple(descent.tensor(rng.integers(0, vocab, (B, T))) for _ in range(2))
            for _ in range(n)]  # fmt: skip


def _gpt(dropout=0.0, bias=True):
    def make():
        cfg = GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=32,
                        dropout=dropout, bias=bias)  # fmt: skip
        m = GPT(cfg)
        return m, m.configure_optimizers(0.1, 1e-3, (0.9, 0.99)), lambda m, x, y: m(x, y)[1]

    return make


@pytest.mark.parametrize("bias", [True, False])
def test_gpt_step_generated_equals_interpreted_and_eager(monkeypatch, bias):
    """baby-gpt's step (AdamW, clip to norm 1): attention's kernels, layer norm's, GELU's, the
    Linear products and the unrolled backward with its slice and reshape rewrites."""
    fi, fg = _three_ways(_gpt(bias=bias), _gpt_batches(), monkeypatch, clip=1.0)
    assert _steps_of(fg, View) and _steps_of(fg, Backward)
    (prog,) = [p for p in fg.programs() if p.generated]
    src = prog.generated.source
    assert "def backward_" in src  # the pass unrolled, not the interpreter's
    assert "prog._backward(" in src  # (its fallback for a seed that is not a NumPy array)
    # the residual adds: their ufunc with its out= buffer, written in
    assert "out=_get(" in src
    kinds = [type(ins.op).__name__ for ins in _steps_of(fg, Forward)]
    assert "ScaledDotProductAttention" in kinds and "Gelu" in kinds and "LayerNorm" in kinds


def test_gpt_step_with_dropout(monkeypatch):
    """Dropout's masks drawn by the generator's real calls, in eager's order."""
    _three_ways(_gpt(dropout=0.1), _gpt_batches(seed=1), monkeypatch, clip=1.0)


def _mlp(sizes, dtype=np.float32, opt=descent.optim.Adam):
    def make():
        m = MLP(sizes, activation="relu")
        if dtype == np.float64:
            m = m.double()
        return m, opt(m.parameters(), lr=1e-2), lambda m, x, y: nn.functional.cross_entropy(m(x), y)

    return make


def _dense_batches(shape, n_cls, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [(descent.tensor(rng.standard_normal(shape).astype(dtype)),
             descent.tensor(rng.integers(0, n_cls, shape[:1]))) for _ in range(STEPS)]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mlp_step_with_relu_pairs_and_twins(monkeypatch, dtype):
    """MLP 24-32-48-7 ReLU with Adam: each Linear with its ReLU as one step
    (`_pair_linear_relu`), the transposed twins (`linear_t`) where this CPU gives their bits;
    the generated code hands both to the interpreter's own methods."""
    fi, fg = _three_ways(_mlp([24, 32, 48, 7], dtype), _dense_batches((64, 24), 7, dtype),
                         monkeypatch)  # fmt: skip
    (prog,) = [p for p in fg.programs() if p.generated]
    paired = [extra for ins, _, extra in prog.steps if type(ins) is Forward and extra[2]]
    assert paired, "no Linear+ReLU pair in the MLP program"
    assert "prog._forward(" in prog.generated.source


def test_mlp_step_sgd_on_the_benchmark_shape(monkeypatch):
    _three_ways(
        _mlp([784, 256, 256, 10], opt=descent.optim.SGD),
        _dense_batches((128, 784), 10, seed=3),
        monkeypatch,
    )


def test_lenet_step_sgd_momentum(monkeypatch):
    def make():
        m = LeNet()
        opt = descent.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
        return m, opt, lambda m, x, y: nn.functional.cross_entropy(m(x), y)

    _three_ways(make, _dense_batches((8, 1, 28, 28), 10, seed=2)[:5], monkeypatch)


def test_fused_chain_and_views(monkeypatch):
    """Elementwise chains (one fused kernel), a view made outside the ops, scalar ops."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(descent.randn(6, 5))

        def forward(self, x):
            h = (x * 2.0 + 1.0).tanh() * self.w - 0.5
            v = h.reshape(5, 6)
            return ((v.exp() / 3.0) - v.t().sum(1)).pow(2).mean()

    def make():
        m = Net()
        return m, descent.optim.SGD(m.parameters(), lr=0.1), lambda m, x, y: m(x) + y.sum() * 0

    rng = np.random.default_rng(4)
    batches = [(descent.tensor(rng.standard_normal((6, 5)).astype(np.float32)),
                descent.zeros(1)) for _ in range(STEPS)]  # fmt: skip
    _, fg = _three_ways(make, batches, monkeypatch)
    if P.fusion._HAVE_NUMBA:
        assert _steps_of(fg, FusedChain)


def test_write_into_an_argument_and_a_buffer(monkeypatch):
    """Unrecorded in-place writes (recorder.Write) replayed from generated code."""

    def fn(x, o):
        with descent.no_grad():
            descent.add(x, x.flip(0), out=o)
            descent.mul(o, 3.0, out=o)
            return o * 2 + x

    got = {}
    for mode in ("eager", "interp", "codegen"):
        monkeypatch.setattr(P, "CODEGEN", [mode == "codegen"])
        f = fn if mode == "eager" else descent.compile(fn)
        vals = []
        for k in range(STEPS):
            rng = np.random.default_rng(k // 2)
            o = descent.zeros(4, 5)
            r = f(descent.tensor(rng.standard_normal((4, 5)).astype(np.float32)), o)
            vals += [r._data.copy(), o._data.copy()]
        got[mode] = (vals, f)
    _same(got["eager"][0], got["interp"][0])
    _same(got["eager"][0], got["codegen"][0])
    fg = got["codegen"][1]
    assert _steps_of(fg, Write)
    assert sum(p.generated_runs for p in fg.programs()) > 0


def test_switching_to_the_interpreter_mid_run(monkeypatch):
    """`Program.codegen = False` after generated replays: the interpreter continues on the same
    program with the same bits; back on, the generated function continues."""
    monkeypatch.setattr(P, "CODEGEN", [True])
    batches = _gpt_batches(seed=5, n=9)
    eager, _ = _train(_gpt(), batches, "eager", monkeypatch, clip=1.0)
    monkeypatch.setattr(P, "CODEGEN", [True])
    descent.manual_seed(0)
    model, opt, loss_fn = _gpt()()

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model, x, y)
        loss.backward()
        descent.optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    f = descent.compile(step)
    out, runs = [], []
    for k, (x, y) in enumerate(batches):
        for p in f.programs():
            p.codegen = k not in (5, 6)
        out.append(f(x, y)._data.copy())
        out += [p.grad._data.copy() for p in model.parameters() if p.grad is not None]
        runs.append(sum(p.generated_runs for p in f.programs()))
    out += [p._data.copy() for p in model.parameters()]
    for st in opt.state.values():
        out += [np.asarray(v._data).copy() for v in st.values() if isinstance(v, descent.Tensor)]
    _same(eager, out)
    # calls 0-2 record (the third: .grad None -> set), 3 is the first replay (interpreted)
    assert runs[:5] == [0, 0, 0, 0, 1] and runs[6] == 1 and runs[8] == 3, runs


def test_a_generator_failure_leaves_the_interpreter(monkeypatch):
    """A program the generator cannot write keeps the interpreter (same bits), and says why."""

    def broken(prog, debug=False):
        raise RuntimeError("generator broken on purpose")

    monkeypatch.setattr(codegen, "build", broken)
    eager, _ = _train(_gpt(), _gpt_batches(seed=6), "eager", monkeypatch, clip=1.0)
    got, f = _train(_gpt(), _gpt_batches(seed=6), "codegen", monkeypatch, clip=1.0)
    _same(eager, got)
    progs = [p for p in f.programs() if p._replays > 1]
    assert progs and all(p.generated is False and p.generated_runs == 0 for p in progs)
    assert all("on purpose" in str(p.codegen_error) for p in progs)


def test_generated_step_is_what_runs(monkeypatch):
    """The generated function, not the interpreter, computes the replay: a generated function
    replaced by one that writes nothing makes the result wrong (the check can fail)."""
    monkeypatch.setattr(P, "CODEGEN", [True])

    def fn(x):
        return (x + 1.0) * x

    f = descent.compile(fn)
    xs = [descent.tensor(np.full((3, 4), k, np.float32)) for k in range(4)]
    for x in xs:
        np.testing.assert_array_equal(f(x).numpy(), (x.numpy() + 1) * x.numpy())
    (prog,) = f.programs()
    assert prog.generated and prog.generated_runs == 1
    calls = []
    real = prog.generated
    prog.generated = lambda prog, env, pool: calls.append(real(prog, env, pool))
    np.testing.assert_array_equal(f(xs[2]).numpy(), (xs[2].numpy() + 1) * xs[2].numpy())
    assert calls and prog.generated_runs == 2
    prog.generated = lambda prog, env, pool: None  # computes nothing: the result stays empty
    with pytest.raises(Exception):  # noqa: B017,PT011 - whatever a missing value raises
        f(xs[1]).numpy()


# -- session 18's backward-plan programs (tests/test_compile_s18_backward.py), generated -----


@pytest.mark.parametrize(
    "kw",
    [{}, {"dropout": 0.1}, {"tie": False, "bias": True}, {"zero_grad": False}, {"twice": True}],
    ids=["plain", "dropout", "untied", "accumulate", "twice"],
)
def test_s18_gpt_cases_generated(monkeypatch, kw):
    """Dropout (attention's in-place plan declines), untied weights with biases, .grad
    accumulated across steps, two passes per step (the first retains its graph): the
    generated passes give eager's and the interpreter's bits."""
    from test_compile_s18_backward import _gpt_run

    eager, _ = _gpt_run("eager", **kw)
    monkeypatch.setattr(P, "CODEGEN", [False])
    interp, _ = _gpt_run("plan", **kw)
    monkeypatch.setattr(P, "CODEGEN", [True])
    gen, f = _gpt_run("plan", **kw)
    _same(eager, interp)
    _same(eager, gen)
    (prog,) = f.programs()
    assert prog.generated_runs == f.stats["replays"] - 1 > 0
    src = prog.generated.source
    assert src.count("def backward_") == (2 if kw.get("twice") else 1)


@pytest.mark.parametrize("name", ["_two_consumers", "_reshaped_heads", "_shared_gradient"])
def test_s18_slice_programs_generated(monkeypatch, name):
    """Slices read by two ops, a reshape of a slice (the view rewrite), a partition of a
    gradient into slices, a permutation's inverse, a gradient shared by two deliveries."""
    import test_compile_s18_backward as s18

    model = getattr(s18, name)
    eager, _ = s18._slices_run(False, model)
    monkeypatch.setattr(P, "CODEGEN", [True])
    got, f = s18._slices_run(True, model)
    _same(eager, got)
    (prog,) = f.programs()
    assert prog.generated_runs == f.stats["replays"] - 1 > 0


def test_gradient_sums_in_place_in_the_generated_pass(monkeypatch):
    """The generated pass adds into the gradient already received, or into a layer norm's
    fresh gradient (session 28), where nothing else holds it (the residual stream's sums, 2 a
    layer, and the tied embedding's), as the interpreter's plan does (s18's count)."""
    from test_compile_s18_backward import _gpt_run

    in_place = []
    add = np.add

    class _Np:  # codegen's np with add recorded (bound into the generated code)
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def add(a, b, out=None):
            in_place.append(out is a or out is b)
            return add(a, b, out=out)

    monkeypatch.setattr(P, "CODEGEN", [True])
    monkeypatch.setattr(codegen, "np", _Np())
    gpt, f = _gpt_run("plan")
    monkeypatch.undo()
    _same(_gpt_run("eager")[0], gpt)
    (prog,) = f.programs()
    assert prog.generated_runs == 1 and sum(in_place) == (2 * 2 + 1) * prog.generated_runs


def test_on_by_default():
    """A program made with the default settings replays generated code from its second
    replay."""
    assert P.CODEGEN == [True]
    f = descent.compile(lambda x: (x * 3.0).exp() + x)
    x = descent.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    for _ in range(5):
        np.testing.assert_array_equal(f(x).numpy(), (x * 3.0).exp().numpy() + x.numpy())
    (prog,) = f.programs()
    assert prog.codegen and prog.generated_runs == 2


def _freed(train: bool) -> bool:
    """Whether a compiled function's replaying programs go with it by reference counting."""
    import gc
    import weakref

    gc.collect()
    gc.disable()
    try:
        if train:
            descent.manual_seed(0)
            model = MLP([6, 8, 3], activation="relu")
            opt = descent.optim.Adam(model.parameters(), lr=1e-2)

            def fn(x, y):
                opt.zero_grad(set_to_none=True)
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                return loss

            args = (descent.randn(4, 6), descent.tensor(np.array([0, 1, 2, 1])))
        else:

            def fn(x):
                return (x * 3.0).exp().sum(0) + x

            args = (descent.tensor(np.ones((2, 3), np.float32)),)
        f = descent.compile(fn)
        for _ in range(6):
            f(*args)
        progs = [p for p in f.programs() if p._replays > 1]
        assert progs and all(bool(p.generated) == P.CODEGEN[0] for p in progs)
        refs = [weakref.ref(p) for p in progs]
        del progs, f, fn
        if train:
            del model, opt
        return all(r() is None for r in refs)
    finally:
        gc.enable()


@pytest.mark.parametrize("train", [False, True])
def test_program_freed_without_the_cycle_collector(monkeypatch, train):
    """The generated function's namespace holds no reference to its program (the program is
    an argument): a dropped compiled function frees its program, and its pool's buffers, by
    reference counting alone, as the interpreter's does."""
    freed = {}
    for flag in (False, True):
        monkeypatch.setattr(P, "CODEGEN", [flag])
        freed[flag] = _freed(train)
    assert freed[True] == freed[False], freed
    if not train:
        assert freed[True]
