"""descent.compile's replay outside its products, session 28 (helper-206).

* A program without a guarded op keeps no undo record (`program._undo_plan`): before, its
  `program[:last]` with no guard (last = -1) read every step but the last, so a step ending in
  clipping and the optimizer's step snapshotted every clipped gradient at the start of each
  replay (~0.9 ms a baby-gpt step), for a guard that cannot fail.
* A layer norm's input gradient is summed into its own fresh buffer (`program._INTO_FRESH`)
  rather than into the residual stream's gradient that the products before it read on both
  cores: the same addition, so eager's bits.
"""

from __future__ import annotations

import numpy as np
import pytest

import descent
from descent.compiler import program as program_mod

pytest.importorskip("numba")


def _bits(a):
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def _assert_bitwise(ref, got):
    assert len(ref) == len(got)
    for a, b in zip(ref, got, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(_bits(a), _bits(b))


def _gpt_run(mode, steps=5, dtype=None, bias=False, n_layer=2):
    """Losses, every gradient after each step and the parameters at the end of a small GPT
    trained with AdamW and clipping (eager, or compiled)."""
    from descent.models import GPT, GPTConfig

    cfg = GPTConfig(vocab_size=40, block_size=16, n_layer=n_layer, n_head=2, n_embd=32,
                    dropout=0.0, bias=bias)  # fmt: skip
    descent.manual_seed(0)
    m = GPT(cfg)
    if dtype is not None:
        m.to(dtype)
    opt = m.configure_optimizers(0.1, 1e-3, (0.9, 0.99))

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        _, loss = m(x, y)
        loss.backward()
        descent.optim.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        return loss

    f = descent.compile(step) if mode != "eager" else step
    rng = np.random.default_rng(0)
    out = []
    for _ in range(steps):
        x, y = (descent.tensor(rng.integers(0, 40, (4, 16))) for _ in range(2))
        out.append(f(x, y)._data.copy())
        out += [p.grad._data.copy() for p in m.parameters()]
    return out + [p._data.copy() for p in m.parameters()], f


# -- no undo record without a guard ----------------------------------------------------------


def test_a_step_without_guards_keeps_no_undo_record(monkeypatch):
    """The GPT step (backward, clipping, AdamW, no guarded op) replays without snapshots: no
    undo plan, `_steps_snapshot` never called, eager's bits."""
    snaps = []
    orig = program_mod._steps_snapshot
    monkeypatch.setattr(program_mod, "_steps_snapshot", lambda *a: snaps.append(1) or orig(*a))
    eager, _ = _gpt_run("eager")
    got, f = _gpt_run("compiled")
    _assert_bitwise(eager, got)
    (prog,) = f.programs()
    assert f.stats["replays"] >= 2
    assert prog.undo is None
    assert snaps == []


def test_undo_plan_only_before_a_guard():
    """`_undo_plan`: None for a program without a guarded op, whatever it does; the steps
    before the last guard only, where there is one."""
    from descent.compiler.recorder import Call, Forward
    from descent.ops.untracked import Guarded

    class _Opt:
        param_groups = ()

        def step(self):
            pass

    opt = _Opt()
    step = Call("step", opt.step, (), {})
    guard = Forward(object.__new__(Guarded), (), 0, [], False)
    assert program_mod._undo_plan([step, step]) is None
    assert program_mod._undo_plan([step, guard]) is not None
    assert program_mod._undo_plan([guard, step]) is None  # (a step after the guard: not undone)


def test_a_guard_after_the_step_still_undoes_it():
    """x[mask] after backward, clipping and the step: a call with another count of Trues
    records again from the caller's state (the undo record put it back), as eager."""

    def make():
        descent.manual_seed(0)
        lin = descent.nn.Linear(4, 3)
        opt = descent.optim.AdamW(lin.parameters(), lr=0.1)

        def step(x):
            opt.zero_grad(set_to_none=True)
            loss = lin(x).square().mean()
            loss.backward()
            descent.optim.clip_grad_norm_(lin.parameters(), 0.01)
            opt.step()
            return loss, x[x > 0].sum()

        return lin, step

    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((5, 4)).astype(np.float32) for _ in range(6)]
    lin_e, step_e = make()
    ref = [[t._data.copy() for t in step_e(descent.tensor(x))] for x in xs]
    ref.append([p._data.copy() for p in lin_e.parameters()])
    lin_c, step_c = make()
    f = descent.compile(step_c)
    got = [[t._data.copy() for t in f(descent.tensor(x))] for x in xs]
    got.append([p._data.copy() for p in lin_c.parameters()])
    for a, b in zip(ref, got, strict=True):
        _assert_bitwise(a, b)
    assert all(p.undo is not None for p in f.programs())


# -- a layer norm's gradient sum into its fresh buffer ---------------------------------------


def _spy_add(monkeypatch):
    """np.add as program.py calls it, recording where each sum with out= lands."""
    where = []
    add = np.add

    class _Np:
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def add(a, b, out=None):
            if out is not None:
                where.append("prev" if out is a else "fresh" if out is b else "other")
            return add(a, b, out=out)

    monkeypatch.setattr(program_mod, "np", _Np())
    return where


@pytest.mark.parametrize("codegen", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_layer_norm_gradient_sums_into_its_fresh_buffer(monkeypatch, codegen, bias):
    """Each block's two layer norms' input gradients are added into their own buffers (the
    interpreter's plan pass and the generated replay alike): eager's bits, and the same bits
    with the sums into the residual stream's gradient (_INTO_FRESH off)."""
    monkeypatch.setattr(program_mod, "CODEGEN", [codegen])
    eager, _ = _gpt_run("eager", bias=bias)
    if codegen:  # (the generated replay binds numpy's add itself: spy on its namespace)
        from descent.compiler import codegen as codegen_mod

        where = []
        orig_build = codegen_mod.build

        def build(prog, debug=False):
            fn = orig_build(prog, debug)
            if fn:
                real = fn.namespace["_np_add"]

                def spy(a, b, out=None):
                    where.append("prev" if out is a else "fresh" if out is b else "other")
                    return real(a, b, out=out)

                fn.namespace["_np_add"] = spy
            return fn

        monkeypatch.setattr(codegen_mod, "build", build)
    else:
        where = _spy_add(monkeypatch)
    got, f = _gpt_run("compiled", bias=bias)
    (prog,) = f.programs()
    assert (prog.generated_runs > 0) == codegen
    _assert_bitwise(eager, got)
    # 2 layers x 2 layer norms a replayed step; the final layer norm's gradient has no sum
    replays = prog.generated_runs if codegen else f.stats["replays"]
    assert where.count("fresh") == 2 * 2 * replays
    assert where.count("other") == 0
    monkeypatch.setattr(program_mod, "_INTO_FRESH", [False])
    off, _ = _gpt_run("compiled", bias=bias)
    _assert_bitwise(eager, off)


def test_layer_norm_gradient_sum_float64_is_bitwise_eager():
    """float64 (the layer norm's kernel declines: the general backward, then the same sum
    into its fresh gradient): the replay equals eager bit for bit."""
    eager, _ = _gpt_run("eager", dtype=descent.float64, steps=3, n_layer=1)
    got, _ = _gpt_run("compiled", dtype=descent.float64, steps=3, n_layer=1)
    _assert_bitwise(eager, got)


# -- a ufunc's result into an operand that dies at its step ------------------------------------


def _spy_ufuncs(monkeypatch):
    """Where the generated replays' ufuncs write: into an operand ('a0', 'a1') or elsewhere."""
    from descent.compiler import codegen as codegen_mod

    where = []
    orig_build = codegen_mod.build

    def build(prog, debug=False):
        fn = orig_build(prog, debug)
        if fn:
            ns = fn.namespace
            for name in [k for k in ns if k.startswith("uf")]:
                u = ns[name]

                def spy(*a, out=None, u=u):
                    where.append("a0" if out is a[0] else "a1" if out is a[-1] else "new")
                    return u(*a, out=out)

                ns[name] = spy
        return fn

    monkeypatch.setattr(codegen_mod, "build", build)
    return where


def test_residual_adds_write_into_the_dying_operand(monkeypatch):
    """The GPT step's residual adds write into the attention's or MLP's projection (a
    Linear's reshaped pool buffer that dies there), the embeddings' sum into the token
    embedding's output: eager's bits, and the same with the switch off."""
    eager, _ = _gpt_run("eager", steps=6)
    where = _spy_ufuncs(monkeypatch)
    got, f = _gpt_run("compiled", steps=6)
    (prog,) = f.programs()
    _assert_bitwise(eager, got)
    runs = prog.generated_runs
    assert runs >= 2
    # 2 layers x 2 residual adds into the projection's output, 1 embeddings' sum into a0
    assert where.count("a1") == 2 * 2 * runs and where.count("a0") == runs
    assert where.count("new") == 0
    monkeypatch.setattr(program_mod, "_INTO_DEAD", [False])
    where.clear()
    off, _ = _gpt_run("compiled", steps=6)
    _assert_bitwise(eager, off)
    assert set(where) == {"new"}


@pytest.mark.parametrize("fuse", [True, False])
def test_an_operand_read_later_or_held_elsewhere_keeps_its_values(monkeypatch, fuse):
    """Only an operand whose slot dies at the step and that nothing else holds takes the
    result: not one a later op reads, one its own op saves for its backward (x * w saves
    both), a view of a live array, the caller's argument, a captured tensor. Values and
    gradients as eager's."""
    where = _spy_ufuncs(monkeypatch)
    w = descent.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), requires_grad=True)
    c = descent.tensor(np.arange(12, dtype=np.float32).reshape(3, 4))

    def fn(x):
        a = x * 2.0  # x: the caller's argument (its Tensor holds the array)
        b = a + c  # c: captured; a: read again below
        d = a - b  # a and b die here: one of them takes the result
        v = d.reshape(4, 3).T  # a view of d's buffer
        e = v + v  # the same slot twice: never in place
        g = e * w  # w's gradient needs e: saved
        h = g + 1.0  # g dies here: into g (held by no one: Mul saves its inputs only)
        k = (x * 3.0) * w  # x * 3.0 dies at the Mul, which saves it for w's gradient after
        (h.sum() + k.sum()).backward()  # the ufunc: never its output (dropout's x * mask)
        return h, b, d, e

    f = descent.compile(fn, options={"fuse": fuse})
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    ref = []
    for _ in range(4):
        w.grad = None
        ref.append([t._data.copy() for t in fn(descent.tensor(x))] + [w.grad._data.copy()])
    for k in range(4):
        w.grad = None
        xt = descent.tensor(x)
        got = [t._data.copy() for t in f(xt)] + [w.grad._data.copy()]
        for a, b in zip(ref[k], got, strict=True):
            _assert_bitwise([a], [b])
        np.testing.assert_array_equal(xt._data, x)  # the argument untouched
    np.testing.assert_array_equal(c._data, np.arange(12, dtype=np.float32).reshape(3, 4))
    assert f.stats["replays"] >= 2
    # (x * 2.0 and a + c: the argument and the captured tensor are held; a - b, g + 1.0: in a0)
    assert "new" in where and "a0" in where
