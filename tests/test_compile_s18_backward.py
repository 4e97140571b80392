"""descent.compile's backward pass from a plan made once (`compiler/program._plain_plan`,
session 18): the GPT step's passes (slices, reshapes of slices, attention's gradients written
into qkv's, the GELU and layer norm sites, transposes, embeddings, cross-entropy) run from a
flat list with gradients indexed by node instead of the general path's per-node checks and
dicts. Each case is compared bit for bit with eager and with the general path
(`Program.plain = False`), and checks that the plan ran."""

from __future__ import annotations

import numpy as np
import pytest

import descent
from descent.compiler import program as program_mod

pytest.importorskip("numba")

STEPS = 5


@pytest.fixture(autouse=True)
def _interpreter():
    """These cases pin the interpreter's plan pass (`_plain_backward`, counted through its
    module global); from their second replay programs run generated code instead
    (`compiler/codegen.py`), which tests/test_compile_s21_codegen.py runs on these programs.
    (Not through monkeypatch: some cases call its undo() halfway.)"""
    saved = program_mod.CODEGEN[0]
    program_mod.CODEGEN[0] = False
    yield
    program_mod.CODEGEN[0] = saved


def _bits(arrays):
    return [np.ascontiguousarray(a).reshape(-1).view(np.uint8) for a in arrays]


def _assert_bitwise(ref, got):
    assert len(ref) == len(got)
    for a, b in zip(ref, got, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(*_bits([a, b]))


def _count_plain(monkeypatch) -> list:
    """Calls of the plan's pass (`_plain_backward`), counted through the module global that
    `Program._backward` calls."""
    calls = []
    orig = program_mod._plain_backward

    def spy(*args):
        calls.append(1)
        return orig(*args)

    monkeypatch.setattr(program_mod, "_plain_backward", spy)
    return calls


def _gpt_run(mode: str, steps: int = STEPS, dropout: float = 0.0, tie: bool = True,
             zero_grad: bool = True, twice: bool = False, bias: bool = False,
             **options):  # fmt: skip
    """Losses, every gradient after each step and the parameters at the end of a small GPT
    trained with AdamW and clipping. mode: eager, plan (the default replay) or general."""
    from descent.models import GPT, GPTConfig

    cfg = GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=32,
                    dropout=dropout, tie_weights=tie, bias=bias)  # fmt: skip
    descent.manual_seed(0)
    m = GPT(cfg)
    opt = m.configure_optimizers(0.1, 1e-3, (0.9, 0.99))

    def step(x, y):
        if zero_grad:
            opt.zero_grad(set_to_none=True)
        _, loss = m(x, y)
        if twice:  # two passes through one graph: .grad accumulates, the first retains
            loss.backward(retain_graph=True)
            (loss * 0.5).backward()
        else:
            loss.backward()
        descent.optim.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        return loss

    f = descent.compile(step, options=options) if mode != "eager" else step
    rng = np.random.default_rng(0)
    out = []
    for _ in range(steps):
        if mode == "general":  # the plan is made at the first replay, then not used
            for prog in f.programs():
                prog.plain = False
        x, y = (descent.tensor(rng.integers(0, 40, (4, 16))) for _ in range(2))
        out.append(f(x, y)._data.copy())
        out += [p.grad._data.copy() for p in m.parameters()]
    return out + [p._data.copy() for p in m.parameters()], f


@pytest.mark.parametrize(("case", "exact"), [("plain", False), ("plain", True),
                                             ("dropout", False), ("untied", True),
                                             ("accumulate", False), ("twice", True)])
def test_gpt_step_from_the_plan_is_bitwise_eager(monkeypatch, case, exact):
    """Five AdamW steps: the plan's pass (every replayed pass) gives eager's bits and the
    general path's, with dropout (attention's in-place plan declines, so the transposes,
    reshapes and slices it skips run), untied weights with biases, .grad accumulated across
    steps (no zero_grad) and two backward passes per step (retain_graph=True, then a second)."""
    kw = {"dropout": 0.1} if case == "dropout" else {}
    kw.update({"untied": {"tie": False, "bias": True}, "accumulate": {"zero_grad": False},
               "twice": {"twice": True}}.get(case, {}))  # fmt: skip
    eager, _ = _gpt_run("eager", **kw)
    general, _ = _gpt_run("general", exact=exact, **kw)
    calls = _count_plain(monkeypatch)
    plan, f = _gpt_run("plan", exact=exact, **kw)
    _assert_bitwise(eager, general)
    _assert_bitwise(eager, plan)
    passes = 2 if case == "twice" else 1
    assert f.stats["replays"] >= 2 and len(calls) == passes * f.stats["replays"]  # every pass
    (prog,) = f.programs()
    plans = [p for p in prog._plain_backward.values() if p]
    assert len(plans) == passes
    kinds = {entry[1] for entry in plans[0][0]}
    assert {program_mod._SDPA, program_mod._GELU, program_mod._LN, program_mod._LINEAR,
            program_mod._TRANSPOSE, program_mod._CE} <= kinds  # fmt: skip


def test_gpt_pass_skips_exactly_attentions_nodes(monkeypatch):
    """Attention's plan writes gq, gk, gv into the qkv gradient; the 9 nodes of each head split
    (transpose, reshape, slice) then receive nothing and are skipped, and every other node
    runs: counted per node kind against the pass's nodes."""
    from descent.ops import shape as shape_ops

    _, f = _gpt_run("plan")
    (prog,) = f.programs()
    (plan,) = [p for p in prog._plain_backward.values() if p]
    nodes = plan[0]
    skippable = [e for e in nodes if e[6]]
    assert len(skippable) == 9 * 2  # 2 layers
    runs = []
    orig = shape_ops.Reshape.backward

    def spy(self, gy, ops):
        runs.append(self)
        return orig(self, gy, ops)

    monkeypatch.setattr(shape_ops.Reshape, "backward", spy)
    rng = np.random.default_rng(5)
    x, y = (descent.tensor(rng.integers(0, 40, (4, 16))) for _ in range(2))
    f(x, y)
    reshapes = [e[0] for e in nodes if type(e[0]) is shape_ops.Reshape]
    skipped = {id(e[0]) for e in skippable}
    # each reshape that is not one of attention's ran once (the join, the logits' view)
    assert sorted(map(id, runs)) == sorted(id(r) for r in reshapes if id(r) not in skipped)


def _slices_run(compiled: bool, model):
    rng = np.random.default_rng(3)
    w = descent.tensor(rng.standard_normal((8, 12)).astype(np.float32), requires_grad=True)
    v = descent.tensor(rng.standard_normal((12,)).astype(np.float32), requires_grad=True)
    f = descent.compile(lambda x: model(x, w, v)) if compiled else (lambda x: model(x, w, v))
    out = []
    for _ in range(STEPS):
        x = descent.tensor(rng.standard_normal((4, 5, 8)).astype(np.float32))
        out.append(f(x)._data.copy())
        out += [w.grad._data.copy(), v.grad._data.copy()]  # accumulated: no zero_grad
    return out, f


def _two_consumers(x, w, v):
    h = x @ w  # (4, 5, 12)
    a = h[..., :6]  # read by two ops: its reshape rewrite must not apply
    b = a.reshape(4, 5, 2, 3).transpose(1, 2)  # a reshape of the slice, transposed
    c = h[..., 6:].permute(2, 0, 1)  # a permutation: the plan's inverse
    d = v[2:9]  # a slice of a leaf: the node's own backward
    loss = (b.sin() * 1.5).sum() + (a * a).sum() + (c.tanh() * 0.5).sum() + (d * d).sum()
    loss.backward()
    return loss


def _reshaped_heads(x, w, v):
    h = x @ w + v  # (4, 5, 12): read by slices only (a partition)
    q, k = h.split(6, dim=-1)
    q = q.reshape(4, 5, 2, 3).transpose(1, 2)  # not contiguous gradient: the view rewrite
    k = k.reshape(4, 5, 2, 3).transpose(1, 2)
    loss = ((q @ k.transpose(-1, -2)).tanh()).sum() + h.mT.mT.sum() * 0.0
    loss.backward()
    return loss


def _shared_gradient(x, w, v):
    a = x @ w  # (4, 5, 12)
    b = (a * 0.5).tanh() + v
    first = (a * a).sum() + b.exp().sum()
    s = a + b  # made last, so its backward runs first: the same gy to a's and b's nodes
    loss = (s * s).sum() + first
    loss.backward()  # b's and a's other gradients then add to that shared array: out of place
    return loss


@pytest.mark.parametrize("model", [_two_consumers, _reshaped_heads, _shared_gradient])
def test_slices_and_transposes_from_the_plan_are_bitwise_eager(monkeypatch, model):
    calls = _count_plain(monkeypatch)
    eager, _ = _slices_run(False, model)
    got, f = _slices_run(True, model)
    _assert_bitwise(eager, got)
    assert f.stats["replays"] >= 2 and len(calls) == f.stats["replays"]
    (prog,) = f.programs()
    (plan,) = [p for p in prog._plain_backward.values() if p]
    kinds = [e[1] for e in plan[0]]
    if model is not _shared_gradient:
        assert program_mod._SLICE in kinds or program_mod._RESHAPE in kinds
        assert program_mod._TRANSPOSE in kinds


def test_gradient_sums_in_place_only_into_unshared_arrays(monkeypatch):
    """The plan adds a gradient into the array already received (or into a layer norm's fresh
    gradient: tests/test_compile_s28_overhead.py) where nothing else holds it;
    with a shared one (the Add's gy, delivered to both inputs) it adds into a new buffer. Both
    ways give eager's bits, and switching the in-place sums off changes no bit."""
    eager, _ = _slices_run(False, _shared_gradient)
    got, _ = _slices_run(True, _shared_gradient)
    _assert_bitwise(eager, got)
    monkeypatch.setattr(program_mod, "_IN_PLACE", [False])
    off, _ = _slices_run(True, _shared_gradient)
    _assert_bitwise(eager, off)
    monkeypatch.undo()
    in_place = []
    add = np.add

    class _Np:  # program.py's np with add recorded
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def add(a, b, out=None):
            in_place.append(out is a or out is b)  # (b: a layer norm's fresh gradient)
            return add(a, b, out=out)

    monkeypatch.setattr(program_mod, "np", _Np())
    gpt, f = _gpt_run("plan")
    monkeypatch.undo()
    _assert_bitwise(_gpt_run("eager")[0], gpt)
    # the residual stream's sums, 2 a layer (into the layer norm's fresh gradient since
    # session 28; the first of them went to a new buffer before, its operand a reshape view),
    # and the tied embedding's
    assert sum(in_place) == (2 * 2 + 1) * f.stats["replays"]


def test_reshaped_slice_rewrite_runs_in_the_plan(monkeypatch):
    """With attention's plan switched off, the head split's gradients go through
    `_reshaped_slice_gradient` (a view of the slice) from the plan: eager's bits."""
    from descent.compiler import replay_kernels

    monkeypatch.setattr(replay_kernels, "sdpa_grad_plan", lambda *a: {})
    results = []
    orig = program_mod._reshaped_slice_gradient

    def spy(*args):
        ok = orig(*args)
        results.append(ok)
        return ok

    monkeypatch.setattr(program_mod, "_reshaped_slice_gradient", spy)
    eager, _ = _gpt_run("eager")
    calls = _count_plain(monkeypatch)
    plan, f = _gpt_run("plan", exact=True)
    _assert_bitwise(eager, plan)
    assert f.stats["replays"] >= 2 and len(calls) == f.stats["replays"]
    assert len(results) == 3 * 2 * f.stats["replays"] and all(results)  # q, k, v x 2 layers


def test_linear_grads_on_3d_inputs_equal_the_ops():
    """`_linear_grads` folds (B, T, C) as `Linear._grads` does: the same bits."""
    from descent.array_backward import array_namespace
    from descent.ops.linear import Linear

    rng = np.random.default_rng(7)
    x = descent.tensor(rng.standard_normal((3, 5, 6)).astype(np.float32), requires_grad=True)
    w = descent.tensor(rng.standard_normal((4, 6)).astype(np.float32), requires_grad=True)
    b = descent.tensor(rng.standard_normal((4,)).astype(np.float32), requires_grad=True)
    y = descent.nn.functional.linear(x, w, b)
    node = y.grad_fn
    assert node.op_class is Linear
    gy = rng.standard_normal((3, 5, 4)).astype(np.float32)
    ref = node._grads(gy, x._data, w._data, array_namespace(np))
    got = program_mod._linear_grads(node, gy, x._data, w._data)
    _assert_bitwise(list(ref), list(got))
