"""descent.compile: session 27 (helper-197), the replay at every size of a guarded result.

* A result computed from a changing guard (x[mask], nonzero, where(condition), ...) whose
  shape was the same in both recordings (`v[:3]` of a count >= 3) and whose size the
  function's Python or an op's wrapper read, or of which a view holds a part: its shape is
  checked at each replay (`_DynamicProgram.pinned`; another shape stops the replay as a
  guard does), so those reads need no review. Before, such a program recorded every call.
* kthvalue, median(dim) and gather of a changing size (their size checks run in the replayed
  kernels, or are reviewed); the reason a program for every size was refused is in the
  fallback's warning.
* The replay at every size runs the optimizer's fused step (fusion.fused_update) and refreshes
  only the graph nodes whose inputs change shape.

Protocol (tests/compile_harness.py): every call compared bitwise with eager (values and
gradients), calls 0 and 1 with the same data, later calls with other data.
"""

import warnings

import numpy as np
import pytest

import descent
import descent.nn.functional as F
from descent.compiler import CompileWarning, dynamic_sizes
from descent.compiler.recorder import Call
from test_compile_s26 import compare_calls

# the count of Trues in call k's mask; 2 (call 5) gives `v[:3]` another shape than recorded
_COUNTS = (4, 4, 6, 5, 7, 2, 8, 3, 9, 5)


def _masked(k, shape=(3, 4), counts=_COUNTS):
    rng = np.random.default_rng(270 + max(k - 1, 0))
    x = rng.standard_normal(shape).astype(np.float32)
    m = np.zeros(x.size, bool)
    m[rng.permutation(x.size)[: counts[k]]] = True
    return x, m.reshape(shape)


def _args(k):
    x, m = _masked(k)
    return descent.tensor(x), descent.tensor(m)


def _rows(k):
    """x (6, 4) with a mask of rows: x[m] is (count, 4)."""
    rng = np.random.default_rng(271 + max(k - 1, 0))
    x = rng.standard_normal((10, 4)).astype(np.float32)
    m = np.zeros(10, bool)
    m[rng.permutation(10)[: _COUNTS[k]]] = True
    return descent.tensor(x), descent.tensor(m)


def _dynamic(compiled) -> list:
    return [p for p in compiled.programs() if isinstance(p, dynamic_sizes._DynamicProgram)]


def test_a_fixed_size_selection_that_a_loss_reads_is_pinned():
    """multi_margin_loss of the first three selected rows: the loss's wrapper reads their size
    (a reader not reviewed). Their shape (3, 4) is the same in both recordings, so the replay
    checks it; at count 2 it is (2, 4), the replay stops and that call records, eager's values
    at every call (without the check: the recorded reshape to (3, 4) fails there)."""

    def f(x, m):
        v = x[m]
        t = v[:3]
        return F.multi_margin_loss(t, t.argmax(1)), v.sum(0)

    compiled, warned = compare_calls(f, _rows, calls=len(_COUNTS))
    assert not warned, warned
    assert _dynamic(compiled)
    assert compiled.stats["replays"] >= 5, compiled.stats


def test_a_size_the_function_reads_is_pinned_when_it_did_not_change():
    """`n = t.shape[0]` of `t = x[m][:3]`: the recorded n is right while t keeps its shape,
    which the replay checks (count 2: t has 2 rows, n = 2 in eager, the replay stops)."""

    def f(x, m):
        v = x[m]
        t = v[:3]
        n = t.shape[0]
        return t * n, v.mean()

    compiled, warned = compare_calls(f, _rows, calls=len(_COUNTS))
    assert not warned, warned
    assert _dynamic(compiled)
    assert compiled.stats["replays"] >= 5, compiled.stats


def test_a_view_of_part_of_a_fixed_size_result_is_pinned():
    """cross_entropy's target is a view of the last 3 of a `repeat` of the selected indices
    (its base (9,) is fixed while the count is 3 or more; count 2 makes it (6,), where the
    recorded view's offset points past the end). Fuzz seed 25000113 (the first 3 there)."""

    def f(x, logits):
        i = descent.where(x > 0)[0]
        tgt = (i % 3)[:3].repeat(3)[-3:]
        return F.cross_entropy(logits, tgt), i * 2

    def make(k):
        x, m = _masked(k)
        rng = np.random.default_rng(272 + max(k - 1, 0))
        logits = rng.standard_normal((3, 3)).astype(np.float32)
        return descent.tensor(np.where(m, np.abs(x) + 0.5, -np.abs(x) - 0.5)), descent.tensor(
            logits
        )

    compiled, warned = compare_calls(f, make, calls=len(_COUNTS))
    assert not warned, warned
    assert _dynamic(compiled)
    assert compiled.stats["replays"] >= 5, compiled.stats


def test_kthvalue_median_and_gather_of_a_changing_size():
    """kthvalue(2) and median over the selected values, gather at the largest's position, and
    their gradients: one program for every count >= 2 (before: a program per count)."""
    w = descent.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), requires_grad=True)

    def f(x, m):
        v = (x * w)[m]
        a = v.kthvalue(2, 0).values
        b = v.median(0).values
        c = v.gather(0, v.flip(0).argmax(0, keepdim=True))
        (a * 3 + b * 2 + c.sum()).backward()
        return a, b, c

    compiled, warned = compare_calls(f, _args, calls=len(_COUNTS), leaves=[w])
    assert not warned, warned
    assert _dynamic(compiled)
    assert compiled.stats["replays"] >= 6, compiled.stats


def test_kthvalue_past_the_size_raises_in_the_replay_as_in_eager():
    """kthvalue(3) at count 2: eager's wrapper raises RangeError; the replay (whose guard lets
    2 through) raises it from the index's kernel."""

    def f(x, m):
        return x[m].kthvalue(3, 0).values * 2

    compiled = descent.compile(f)
    for k in (0, 1, 2, 3, 4):
        x, m = _args(k)
        assert descent.equal(compiled(x, m), f(x, m))
    assert _dynamic(compiled)
    x, m = _args(5)  # count 2
    with pytest.raises(descent.errors.RangeError, match="out of range"):
        f(x, m)
    with pytest.raises(descent.errors.RangeError, match="out of range"):
        compiled(x, m)


def test_the_reason_a_program_for_every_size_was_refused_is_in_the_warning():
    """`n = v.shape[0]` of a size that changes, used in Python (`min(n, 6)`): no program for
    every size, a program per count up to four, then eager, the warning saying why."""

    def f(x, m):
        v = x[m]
        return v * min(v.shape[0], 6)

    compiled = descent.compile(f)
    counts = (4, 4, 5, 6, 7, 8, 9, 10, 11, 12, 3, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(len(counts)):
            x, m = _masked(k, counts=counts)
            x, m = descent.tensor(x), descent.tensor(m)
            assert descent.equal(compiled(x, m), f(x, m))
    msgs = [str(w.message) for w in caught if issubclass(w.category, CompileWarning)]
    assert any("the function's Python code read a changing size" in s for s in msgs), msgs


def test_the_dynamic_replay_runs_the_fused_optimizer_step():
    """A masked-token AdamW step replayed at every count: the step runs the fused update (as a
    fixed-size program's), every loss, gradient and weight bitwise eager's."""

    def twin():
        descent.manual_seed(27)
        emb, head = descent.nn.Embedding(10, 4), descent.nn.Linear(4, 10)
        opt = descent.optim.AdamW([*emb.parameters(), *head.parameters()], lr=0.05)

        def step(tok, tgt, keep):
            opt.zero_grad()
            logits = head(emb(tok))
            loss = F.cross_entropy(logits[keep], tgt[keep])
            loss.backward()
            opt.step()
            return loss.detach(), head.weight.detach().clone(), emb.weight.grad

        return step

    def make(k):
        rng = np.random.default_rng(27 + max(k - 1, 0))
        _, keep = _masked(k)
        return (descent.tensor(rng.integers(0, 10, (3, 4))),
                descent.tensor(rng.integers(0, 10, (3, 4))), descent.tensor(keep))  # fmt: skip

    step = twin()
    compiled = descent.compile(step)  # (the default backend: fused kernels)
    eager = twin()
    for k in range(len(_COUNTS)):
        a, b = compiled(*make(k)), eager(*make(k))
        for u, v in zip(a, b, strict=True):
            assert np.array_equal(u.numpy(), v.numpy())
    progs = _dynamic(compiled)
    assert progs and compiled.stats["replays"] >= 5, compiled.stats
    steps = [i for i in progs[0].rec.program if type(i) is Call and i.kind == "step"]
    assert steps and all(i.fused for i in steps)


def test_an_op_without_parameters_reads_a_changing_size():
    """nextafter (its only slots are masks forward computes, which the recordings' comparison
    skips) of a changing size, and its gradient: one program for every count (fuzz seed
    27000949; before: an op family not listed, a program per count)."""
    w = descent.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), requires_grad=True)

    def f(x, m):
        v = (x * w)[m]
        y = descent.nextafter(v, v.flip(0))
        y.sum().backward()
        return y

    compiled, warned = compare_calls(f, _args, calls=len(_COUNTS), leaves=[w])
    assert not warned, warned
    assert _dynamic(compiled)
    assert compiled.stats["replays"] >= 6, compiled.stats


def test_a_check_after_the_optimizer_step_puts_the_step_back():
    """The pinned result is read after the backward pass and an SGD step: at count 2 its check
    stops the replay there, the step and the gradients are put back (the program's undo plan
    reaches the check) and the call records; every weight and gradient is eager's."""

    def twin():
        w = descent.tensor(np.linspace(-1, 1, 10, dtype=np.float32), requires_grad=True)
        opt = descent.optim.SGD([w], lr=0.1, momentum=0.9)

        def step(x, m):
            opt.zero_grad()
            v = (x[:, 0] * w)[m]
            loss = (v * v).sum()
            loss.backward()
            opt.step()
            t = v[:3]
            return loss.detach(), t * t.shape[0], w.detach().clone(), w.grad

        return step

    compiled, warned = compare_calls(twin(), _rows, calls=len(_COUNTS), eager=twin())
    assert not warned, warned
    assert _dynamic(compiled)
    assert compiled.stats["replays"] >= 5, compiled.stats
