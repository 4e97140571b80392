"""descent.compile: a recorded and replayed step gives eager's numbers (bitwise: replay runs the
same array code in the same order), records again on a new shape, keeps a bounded cache, falls
back to eager with one warning per reason, and reuses its buffers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import descent
from descent import nn
from descent.compiler import CompiledFunction, CompileWarning, Unrecordable
from descent.models import GPT, MLP, GPTConfig, LeNet

STEPS = 6


def _batches(shape_x, n_classes, n=STEPS, seed=0, x_int=None):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        if x_int is not None:
            x = descent.tensor(rng.integers(0, x_int, shape_x))
        else:
            x = descent.tensor(rng.standard_normal(shape_x).astype(np.float32))
        y = descent.tensor(rng.integers(0, n_classes, shape_x if x_int else shape_x[:1]))
        out.append((x, y))
    return out


def _train(make, loss_fn, batches, compiled: bool, clip: float | None = None, **kw):
    """Run a full training step per batch; returns (losses, grads per step, final params)."""
    descent.manual_seed(0)
    model, opt = make()

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model, x, y)
        loss.backward()
        if clip is not None:
            descent.optim.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss

    f = descent.compile(step, **kw) if compiled else step
    losses, grads = [], []
    for x, y in batches:
        losses.append(f(x, y)._data.copy())
        grads.append([p.grad._data.copy() for p in model.parameters() if p.grad is not None])
    params = [p._data.copy() for p in model.parameters()]
    return losses, grads, params, f


def _assert_same(a, b):
    la, ga, pa, _ = a
    lb, gb, pb, f = b
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(x, y)
    for step_a, step_b in zip(ga, gb):
        for x, y in zip(step_a, step_b):
            np.testing.assert_array_equal(x, y)
    for x, y in zip(pa, pb):
        np.testing.assert_array_equal(x, y)
    # Two recordings, then replays; a third recording when the parameters' .grad went from
    # None (first call) to set (later calls; zero_grad runs inside the step): a new cache key.
    assert f.stats["replays"] >= STEPS - 3, f.stats
    assert f.stats["fallbacks"] == 0


def _gpt_loss(model, x, y):
    return model(x, y)[1]


def _ce(model, x, y):
    return nn.functional.cross_entropy(model(x), y)


def _gpt_maker(dropout=0.0):
    cfg = GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=dropout)

    def make():
        m = GPT(cfg)
        return m, m.configure_optimizers(0.1, 1e-3, (0.9, 0.99))

    return make


# GPT's GELU and attention softmax run float32 replay kernels by default (compared with eager to
# a tolerance in test_compile_kernels.py); {"exact": True} keeps eager's bits, checked here.
EXACT = {"options": {"exact": True}}


def test_gpt_adamw_clip_equals_eager():
    batches = _batches((4, 16), 40, x_int=40)
    make = _gpt_maker()
    _assert_same(*(_train(make, _gpt_loss, batches, c, clip=0.5, **EXACT) for c in (False, True)))


def test_gpt_dropout_matches_eager_for_the_same_generator_state():
    batches = _batches((4, 16), 40, x_int=40)
    make = _gpt_maker(dropout=0.2)
    _assert_same(*(_train(make, _gpt_loss, batches, c, clip=1.0, **EXACT) for c in (False, True)))


def test_mlp_adam_equals_eager():
    def make():
        m = MLP([20, 32, 32, 5])
        return m, descent.optim.Adam(m.parameters(), lr=1e-2)

    batches = _batches((8, 20), 5)
    _assert_same(*(_train(make, _ce, batches, c) for c in (False, True)))


def test_lenet_sgd_momentum_equals_eager():
    def make():
        m = LeNet()
        return m, descent.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True)

    batches = _batches((4, 1, 28, 28), 10)
    _assert_same(*(_train(make, _ce, batches, c) for c in (False, True)))


def test_dropout_module_and_mlp_equal_eager():
    def make():
        m = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 5))
        return m, descent.optim.AdamW(m.parameters(), lr=1e-2)

    batches = _batches((8, 20), 5)
    _assert_same(*(_train(make, _ce, batches, c) for c in (False, True)))


def test_inference_under_no_grad():
    descent.manual_seed(0)
    m = MLP([10, 16, 3])
    f = descent.compile(lambda x: m(x).softmax(-1))
    xs = [t for t, _ in _batches((5, 10), 3)]
    with descent.no_grad():
        for x in xs:
            np.testing.assert_array_equal(f(x)._data, m(x).softmax(-1)._data)
    assert f.stats["replays"] == STEPS - 2


def test_new_shape_records_again_and_cache_is_bounded():
    descent.manual_seed(0)
    m = MLP([6, 8, 2])
    f = descent.compile(lambda x: m(x) * 2.0, cache_size=2)
    with descent.no_grad():
        for n in (1, 2, 3, 1, 2, 3):
            for _ in range(3):
                x = descent.randn(n, 6)
                np.testing.assert_array_equal(f(x)._data, (m(x) * 2.0)._data)
    # Each batch size records twice, then replays; the cache keeps the 2 most recent programs.
    assert len(f.programs()) <= 2
    assert f.stats["recordings"] == 12  # 6 rounds x 2: an evicted signature records again
    assert f.stats["replays"] == 6


def _eager_and_compiled(fn_factory, xs, match):
    """Run fn eagerly and compiled; the compiled one must warn once (matching) and agree."""
    eager = [fn_factory()(x)._data for x in xs]
    compiled = descent.compile(fn_factory())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = [compiled(x)._data for x in xs]
    ours = [w for w in caught if issubclass(w.category, CompileWarning)]
    assert len(ours) == 1, [str(w.message) for w in ours]
    assert match in str(ours[0].message)
    for a, b in zip(eager, got):
        np.testing.assert_array_equal(a, b)
    return compiled


def test_item_inside_falls_back_once():
    def factory():
        descent.manual_seed(0)
        w = descent.randn(4, 4)

        def f(x):
            y = x @ w
            return y * 2 if y.sum().item() > 0 else y * 3  # data-dependent control flow

        return f

    xs = [descent.randn(3, 4) for _ in range(5)]
    compiled = _eager_and_compiled(factory, xs, "item()")
    assert compiled.stats["replays"] == 0


def test_random_draw_outside_dropout_replays():
    """Since session 22 a draw the function makes (descent.randn) replays as a Draw op, with
    eager's samples and generator state (before, it ran eagerly: tests/test_compile_s22_*)."""

    def factory():
        def f(x):
            return x + descent.randn(*x.shape)

        return f

    xs = [descent.randn(3, 4) for _ in range(4)]
    descent.manual_seed(5)
    eager = [factory()(x)._data for x in xs]
    descent.manual_seed(5)
    compiled = descent.compile(factory())
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        got = [compiled(x)._data for x in xs]
    assert compiled.stats["replays"] == 2, compiled.stats
    for a, b in zip(eager, got):
        np.testing.assert_array_equal(a, b)


def test_random_draw_of_nn_init_replays():
    """nn.init's draws are Draw ops since session 23 (they ran eagerly before): eager's
    values on every call, the generator advanced as eager's."""

    def f(x):
        w = descent.empty(3, 4)
        descent.nn.init.normal_(w)
        return x + w

    xs = [descent.randn(3, 4) for _ in range(4)]
    descent.manual_seed(5)
    eager = [f(x)._data for x in xs]
    descent.manual_seed(5)
    compiled = descent.compile(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        got = [compiled(x)._data for x in xs]
    assert compiled.stats["replays"] == 2, compiled.stats
    for a, b in zip(eager, got):
        np.testing.assert_array_equal(a, b)


def test_data_dependent_constant_falls_back():
    """An array computed from the data outside descent's ops differs between the two
    recordings: the function runs eagerly. (Comparisons were such arrays until session 18;
    they are recorded ops now, ops/untracked.py, and `x * (x > 0).float()` replays.)"""

    def factory():
        def f(x):
            # descent.tensor(...) copies x's values into a new tensor: no op computed it
            return x * descent.tensor(x.detach()).sign()

        return f

    xs = [descent.randn(3, 4) for _ in range(4)]
    # (since session 20 the copy itself is the reason, at the first recording; before, the
    # two recordings differed)
    _eager_and_compiled(factory, xs, "copies a tensor's values outside the ops")


def test_comparison_mask_replays():
    f = descent.compile(lambda x: x * (x > 0).float())
    for _ in range(4):
        x = descent.randn(3, 4)
        np.testing.assert_array_equal(f(x)._data, (x * (x > 0).float())._data)
    assert f.stats["replays"] == 2


def test_boolean_mask_index_replays_per_count():
    """x[x > 0]: the output's shape is the count of Trues. Until session 21 the function ran
    eagerly; now a guarded op (compiler/mask_read.py) replays while the count is a recorded one
    (tests/test_compile_s21_fallbacks.py), with the positions of each call's mask."""
    f = descent.compile(lambda x: x[x > 0] * 2)
    rng = np.random.default_rng(0)
    for _ in range(5):  # six positive values of 12 on every call, at other places
        x = np.abs(rng.standard_normal(12)).astype(np.float32)
        x[rng.permutation(12)[:6]] *= -1
        x = descent.tensor(x.reshape(3, 4))
        with warnings.catch_warnings():
            warnings.simplefilter("error", CompileWarning)
            np.testing.assert_array_equal(f(x)._data, (x[x > 0] * 2)._data)
    assert f.stats["replays"] == 3, f.stats


def test_in_place_change_of_captured_state_falls_back():
    descent.manual_seed(0)
    bn = nn.BatchNorm1d(4)
    f = descent.compile(lambda x: bn(x).sum())
    with pytest.warns(CompileWarning, match="in-place change"), descent.no_grad():
        for _ in range(3):
            f(descent.randn(5, 4))
    assert f.stats["replays"] == 0


def test_anomaly_mode_forces_eager_and_says_so():
    descent.manual_seed(0)
    w = descent.randn(3, 3, requires_grad=True)

    def step(x):
        loss = (x @ w).tanh().sum()
        loss.backward()
        return loss

    f = descent.compile(step)
    with descent.explain.anomaly.detect_anomaly():
        with pytest.warns(CompileWarning, match="anomaly mode"):
            for _ in range(3):
                f(descent.randn(2, 3))
    assert f.stats["eager"] == 3


def test_graph_needed_outside_falls_back_and_fullgraph_raises():
    w = descent.randn(3, 3, requires_grad=True)
    f = descent.compile(lambda x: x @ w)
    with pytest.warns(CompileWarning, match="requires grad"):
        out = f(descent.randn(2, 3))
    out.sum().backward()  # eager's graph: usable
    assert w.grad is not None
    g = descent.compile(lambda x: (x @ w).sum().item(), fullgraph=True)
    with pytest.raises(Unrecordable, match="item"):
        g(descent.randn(2, 3))


def test_memory_plan_reuses_buffers():
    descent.manual_seed(0)
    m = MLP([32, 64, 64, 10])
    opt = descent.optim.SGD(m.parameters(), lr=0.1)

    def step(x, y):
        h = m(x)
        loss = ((h - y) * (h - y)).mean() + (h * 0.5 + 1.0).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    f = descent.compile(step)
    for _ in range(8):
        f(descent.randn(16, 32), descent.randn(16, 10))
    (program,) = f.programs()
    pool = program.pool
    assert pool.handed > 0
    # Values written into pooled buffers vs distinct buffers ever allocated: reused.
    assert pool.allocated < pool.handed
    assert pool.allocated <= pool.handed / 3, (pool.allocated, pool.handed)


def test_compile_api_accepts_torch_arguments():
    @descent.compile(mode="reduce-overhead", fullgraph=False, dynamic=False)
    def f(x):
        return x * 3.0

    assert isinstance(f, CompiledFunction)
    with descent.no_grad():
        np.testing.assert_array_equal(f(descent.ones(2))._data, np.full(2, 3.0, np.float32))
    assert descent.compile(f.fn, disable=True) is f.fn
    with pytest.raises(ValueError, match="mode"):
        descent.compile(f.fn, mode="fastest")


def test_trainer_compile_resume_is_exact(tmp_path):
    from descent.train import Trainer
    from test_resume import TEXT, step_losses, tiny_config

    corpus = tmp_path / "tiny.txt"
    corpus.write_text(TEXT)
    common = dict(max_iters=12, eval_interval=6, checkpoint_interval=6, lr_decay_iters=12)
    eager = Trainer(tiny_config(corpus, tmp_path / "eager", **common))
    eager.train()
    whole = Trainer(tiny_config(corpus, tmp_path / "whole", **common), compile=True)
    whole.train()
    assert whole.compiled_step.stats["replays"] == 10
    first = Trainer(tiny_config(corpus, tmp_path / "part", **{**common, "max_iters": 6}),
                    compile=True)  # fmt: skip
    first.train()
    resumed = Trainer(tiny_config(corpus, tmp_path / "part", resume=True, **common), compile=True)
    resumed.train()
    assert step_losses(tmp_path / "eager") == step_losses(tmp_path / "whole")
    assert step_losses(tmp_path / "part") == step_losses(tmp_path / "whole")


@pytest.mark.parametrize("n", [64, 1 << 18])  # serial and parallel (prange) kernels
def test_elementwise_chain_is_fused_and_bitwise(n):
    pytest.importorskip("numba")

    def f(x, y):
        return ((x * 0.5 + y) * 3.0 - y) / (x + 2.0) - 1.0

    g = descent.compile(f)
    with descent.no_grad():
        for _ in range(4):
            x, y = descent.randn(n), descent.randn(n)
            np.testing.assert_array_equal(g(x, y)._data, f(x, y)._data)
    (program,) = g.programs()
    assert program.fused, "no chain was fused"
    assert max(len(c.ops) for c in program.fused) >= 4


def test_fused_chain_inside_a_training_step_keeps_gradients():
    pytest.importorskip("numba")
    descent.manual_seed(0)
    w = descent.randn(8, 8, requires_grad=True)

    def step(x):
        w.grad = None
        h = x @ w
        loss = ((h * 0.5 + 1.0) * 2.0 - 3.0).tanh().sum()  # MulScalar/AddScalar save nothing
        loss.backward()
        return loss, w.grad

    eager = [step(descent.randn(4, 8)) for _ in range(1)]
    del eager
    g = descent.compile(step)
    xs = [descent.randn(4, 8) for _ in range(4)]
    for x in xs:
        loss, grad = g(x)
        ref_loss, ref_grad = step(x)
        np.testing.assert_array_equal(loss._data, ref_loss._data)
        np.testing.assert_array_equal(grad._data, ref_grad._data)
    assert g.programs()[0].fused


def test_scheduler_inside_the_step_is_replayed_and_python_changes_fall_back():
    def make(with_scheduler: bool):
        descent.manual_seed(0)
        m = MLP([6, 8, 3])
        opt = descent.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        sched = descent.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)

        def step(x, y):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            if with_scheduler:
                sched.step()  # a Call instruction: replayed, lr halves every 2 steps
            else:
                opt.param_groups[0]["lr"] *= 0.9  # plain Python: cannot be replayed
            return loss

        return m, opt, step

    batches = _batches((4, 6), 3, n=7)
    for with_scheduler in (True, False):
        m1, opt1, eager = make(with_scheduler)
        ref = [eager(x, y)._data for x, y in batches]
        m2, opt2, step = make(with_scheduler)
        f = descent.compile(step)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = [f(x, y)._data for x, y in batches]
        for a, b in zip(ref, got):
            np.testing.assert_array_equal(a, b)
        assert opt1.param_groups[0]["lr"] == opt2.param_groups[0]["lr"]
        messages = [str(w.message) for w in caught if issubclass(w.category, CompileWarning)]
        if with_scheduler:
            assert f.stats["replays"] >= 3 and not messages, (f.stats, messages)
        else:
            assert len(messages) == 1 and "Python attributes" in messages[0], messages


@pytest.mark.parametrize(
    "options",
    [
        dict(momentum=0.9, nesterov=True),
        dict(momentum=0.8, dampening=0.1, weight_decay=1e-2),
        dict(momentum=0.0, weight_decay=1.0, maximize=True),
        dict(momentum=1.0, nesterov=True, weight_decay=0.5),
    ],
)
def test_sgd_update_fused_per_group_is_bitwise(options):
    pytest.importorskip("numba")

    def make():
        m = MLP([12, 16, 4])
        return m, descent.optim.SGD(m.parameters(), lr=0.05, **options)

    batches = _batches((8, 12), 4)
    eager = _train(make, _ce, batches, False)
    compiled = _train(make, _ce, batches, True)
    _assert_same(eager, compiled)
    (program,) = compiled[3].programs()
    steps = [ins for ins, _, _ in program.steps if getattr(ins, "kind", "") == "step"]
    assert steps and all(ins.fused for ins in steps)


def test_gpt_with_muon_equals_eager():
    cfg = GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=32)

    def make():
        m = GPT(cfg)
        return m, m.configure_optimizers(0.0, 3e-3, (0.9, 0.99), optimizer="muon")

    batches = _batches((4, 16), 40, x_int=40)
    _assert_same(*(_train(make, _gpt_loss, batches, c, clip=1.0, **EXACT) for c in (False, True)))


def test_every_core_kernels_are_bitwise_the_one_thread_ones(monkeypatch):
    """With PARALLEL_MIN lowered, GELU, the fused chains and SGD's update take the Tuned
    one-thread/every-core pairs: the first calls alternate both, so both are compared."""
    pytest.importorskip("numba")
    from descent.compiler import fusion

    monkeypatch.setattr(fusion, "PARALLEL_MIN", 1)
    batches = _batches((4, 16), 40, n=10, x_int=40)
    make = _gpt_maker()
    eager = _train(make, _gpt_loss, batches, False, clip=1.0)
    compiled = _train(make, _gpt_loss, batches, True, clip=1.0, **EXACT)
    _assert_same(eager, compiled)
    (program,) = compiled[3].programs()
    assert program.gelu_backward, "GELU did not take the tuned path"

    def make_sgd():
        m = MLP([12, 16, 4])
        return m, descent.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=0.1)

    batches = _batches((8, 12), 4, n=10)
    _assert_same(_train(make_sgd, _ce, batches, False), _train(make_sgd, _ce, batches, True))


def test_compile_a_module_and_a_method():
    descent.manual_seed(0)
    model = MLP([6, 8, 3])
    ref = MLP([6, 8, 3])
    ref.load_state_dict(model.state_dict())
    compiled = descent.compile(model)  # PyTorch's OptimizedModule; `model` stays eager
    assert compiled is not model and compiled._orig_mod is model
    xs = [descent.randn(4, 6) for _ in range(4)]
    with descent.no_grad():
        for x in xs:
            np.testing.assert_array_equal(compiled(x)._data, ref(x)._data)
            np.testing.assert_array_equal(model(x)._data, ref(x)._data)
    assert compiled.forward.stats["replays"] == 2
    assert not isinstance(model.forward, CompiledFunction)
    model.compile()  # Module.compile: in place, no wrapper
    assert isinstance(model.forward, CompiledFunction)

    class Stepper:
        def __init__(self, scale):
            self.scale = scale

        @descent.compile
        def run(self, x):
            return x * self.scale

    a, b = Stepper(2.0), Stepper(3.0)
    with descent.no_grad():
        for x in xs:
            np.testing.assert_array_equal(a.run(x)._data, (x * 2.0)._data)
            np.testing.assert_array_equal(b.run(x)._data, (x * 3.0)._data)
    assert a.run is a.run and a.run is not b.run  # one cache per instance
    assert a.run.stats["replays"] == 2 and b.run.stats["replays"] == 2


@pytest.mark.parametrize("cls", ["Adam", "AdamW"])
def test_adam_update_tuned_every_core_is_bitwise(monkeypatch, cls):
    pytest.importorskip("numba")
    from descent.compiler import fusion

    monkeypatch.setattr(fusion, "PARALLEL_MIN", 1)  # both versions run on the first calls

    def make():
        m = MLP([12, 16, 4])
        opt = getattr(descent.optim, cls)(m.parameters(), lr=1e-2, weight_decay=0.1)
        return m, opt

    batches = _batches((8, 12), 4, n=10)
    eager = _train(make, _ce, batches, False)
    compiled = _train(make, _ce, batches, True)
    _assert_same(eager, compiled)
    (program,) = compiled[3].programs()
    steps = [ins for ins, _, _ in program.steps if getattr(ins, "kind", "") == "step"]
    assert steps and all(ins.fused for ins in steps)


def test_non_contiguous_argument_records_its_own_program():
    descent.manual_seed(0)
    m = MLP([6, 4])
    f = descent.compile(lambda x, y: nn.functional.cross_entropy(m(x), y.view(-1)))
    with descent.no_grad():
        for i in range(6):
            base = np.random.default_rng(i).standard_normal((6, 5)).astype(np.float32).T
            # (5, 6): a strided view, or the same values laid out contiguously
            x = descent.from_numpy(base if i % 2 else np.ascontiguousarray(base))
            y = descent.tensor(np.arange(5) % 4)
            ref = nn.functional.cross_entropy(m(x), y.view(-1))
            np.testing.assert_array_equal(f(x, y)._data, ref._data)
    assert len(f.programs()) == 2


def test_trainer_compile_with_gradient_accumulation(tmp_path):
    from descent.train import Trainer
    from test_resume import TEXT, step_losses, tiny_config

    corpus = tmp_path / "tiny.txt"
    corpus.write_text(TEXT)
    common = dict(max_iters=6, eval_interval=6, checkpoint_interval=6, lr_decay_iters=6,
                  gradient_accumulation_steps=2)  # fmt: skip
    Trainer(tiny_config(corpus, tmp_path / "eager", **common)).train()
    compiled = Trainer(tiny_config(corpus, tmp_path / "compiled", **common), compile=True)
    compiled.train()
    # Micro-batch 1 starts without .grad, micro-batch 2 adds to it: two keys, each recorded
    # twice, then replayed.
    assert compiled.compiled_step.stats["recordings"] == 4
    assert compiled.compiled_step.stats["replays"] == 8
    assert step_losses(tmp_path / "eager") == step_losses(tmp_path / "compiled")


def test_module_forward_hooks_force_eager_and_say_so():
    descent.manual_seed(0)
    m = MLP([4, 3])
    seen = []
    handle = m.register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
    f = descent.compile(lambda x: m(x).sum())
    with pytest.warns(CompileWarning, match="forward hooks"), descent.no_grad():
        for _ in range(4):
            f(descent.randn(2, 4))
    assert len(seen) == 4 and f.stats["eager"] == 4
    handle.remove()
    with descent.no_grad():
        for _ in range(3):
            f(descent.randn(2, 4))
    assert f.stats["replays"] == 1


def test_fullgraph_compiled_model_trains_as_torch():
    """torch.compile(model, fullgraph=True) then a training step: PyTorch compiles the forward
    (no graph break); descent runs it eagerly (its output needs autograd's graph) and must not
    raise Unrecordable. Losses and gradients equal the uncompiled model's."""
    torch = pytest.importorskip("torch")
    # torch.compile turns off torch.distributions' argument validation for the whole process
    # (torch/_dynamo/eval_frame.py): restore it, or later tests comparing errors with torch fail
    validate = torch.distributions.Distribution._validate_args
    try:
        _fullgraph_run(torch)
    finally:
        torch.distributions.Distribution.set_default_validate_args(validate)


def _fullgraph_run(torch):
    results = []
    for lib, compiled in ((descent, False), (descent, True), (torch, True)):
        lin = lib.nn.Linear(3, 2)
        with lib.no_grad():
            lin.weight.copy_(lib.tensor([[0.1, -0.2, 0.3], [0.5, 0.4, -0.6]]))
            lin.bias.fill_(0.1)
        model = lib.compile(lin, fullgraph=True) if compiled else lin
        opt = lib.optim.SGD(model.parameters(), lr=0.1)
        losses = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for step in range(3):
                x = lib.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]]) * (step + 1)
                loss = model(x).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
        results.append(losses)
    np.testing.assert_allclose(results[0], results[1], rtol=0, atol=0)
    np.testing.assert_allclose(results[1], results[2], rtol=1e-6)
    g = descent.compile(lambda x: (x * 2).sum().item(), fullgraph=True)
    with pytest.raises(Unrecordable):  # a real graph break still raises
        g(descent.ones(3))


def test_compiled_module_has_orig_mod():
    """compile(module) is PyTorch's OptimizedModule (torch._dynamo.eval_frame): the original
    is its one child `_orig_mod` (state_dict keys "_orig_mod.<name>", as scripts strip), its
    parameters are the original's, other attributes read and write the original's, and
    /work/notes/s15/optmod.py printed the same lines for both libraries."""
    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    before = list(m.state_dict())
    c = descent.compile(m)
    assert isinstance(c, descent._dynamo.eval_frame.OptimizedModule)
    assert c._orig_mod is m
    assert list(c._orig_mod.state_dict()) == before == ["0.weight", "0.bias"]
    assert list(c.state_dict()) == ["_orig_mod.0.weight", "_orig_mod.0.bias"]
    assert len(list(c.modules())) == 4 and len(list(c.parameters())) == 2
    assert [p is q for p, q in zip(c.parameters(), m.parameters())] == [True, True]
    assert len(c) == 2 and c.training
    c.eval()
    assert not m.training and not c.training
    c.tag = "x"  # set on the original
    assert m.tag == "x" and "tag" not in c.__dict__
    with pytest.raises(RuntimeError, match="Missing key"):
        c.load_state_dict(m.state_dict())  # as PyTorch: the wrapper's keys carry the prefix
    c.load_state_dict({"_orig_mod." + k: v for k, v in m.state_dict().items()})
