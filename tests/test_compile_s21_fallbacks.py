"""descent.compile: fallbacks of session 20 that replay now, and a wrong value fixed (helper-150).

* `h.clamp_(min=b)` with tensor bounds under no_grad: clamp_'s array path read the bounds with
  `np.clip` through `Tensor.__array__`, whose read guard made the call run eagerly (all 56 of
  the 4,000 session-20 fuzz programs that fell back on `Tensor.__array__()`).
* `x[mask]` with a boolean mask tensor: a guarded op (compiler/mask_read.MaskRead) whose
  forward computes the positions from each call's mask and checks the count of Trues against
  the recording's; another count records (or reuses) a program for that count.
* `out=` an argument that must be resized: resized before the replay as eager's out= does.
* `ldexp(x, e)` with an integer exponent tensor that changes between calls.
* a write into an argument raises the caller's tensor's version as eager's write does.
* a recorded in-place op on an argument (`x.add_(w)` with w requiring grad) rebinds the
  caller's tensor: the replay left the caller's tensor as it was (wrong values from call 2);
  it runs eagerly now, with a warning.

Protocol (tests/compile_harness.py): calls 0 and 1 see the same data, later calls other data
(a frozen value shows from call 2), every call compared bitwise with eager; for the mask reads
the count of Trues changes between calls and comes back.
"""

import warnings

import numpy as np
import pytest

import descent
from compile_harness import assert_replayed, assert_same, compare_calls, no_grad
from descent.compiler import CompileWarning


def _data(k, shape=(4, 5), dtype=np.float32, seed=300):
    rng = np.random.default_rng(max(k - 1, 0) + seed)
    return rng.standard_normal(shape).astype(dtype)


def _pair(k, shape=(4, 5)):
    return descent.tensor(_data(k, shape)), descent.tensor(_data(k, shape, seed=400))


# -- (a) clamp_ with tensor bounds -------------------------------------------------------------


@pytest.mark.parametrize(
    "write",
    [
        lambda h, b: h.clamp_(min=b),
        lambda h, b: h.clamp_(max=b),
        lambda h, b: h.clamp_(b - 0.5, b + 0.5),
        lambda h, b: h.clamp_(min=b.mean()),  # a 0-d bound
        lambda h, b: h.clamp_(min=b[0]),  # a broadcast row
        lambda h, b: h.clamp_(max=b.amax() * 0.0),  # a zero bound: -0.0 kept, per call
    ],
)
def test_clamp_with_tensor_bounds_replays(write):
    def fn(a, b):
        h = a.detach().clone()
        with descent.no_grad():
            write(h, b)
        return h * 2, h.sum(0)

    assert_replayed(*compare_calls(fn, _pair))


def test_clamp_with_tensor_bounds_in_a_training_step_replays():
    w = descent.tensor(_data(0, (5,), seed=9), requires_grad=True)

    def step(a, b):
        h = a * w
        with descent.no_grad():
            lo = b.detach().clone()
            lo.clamp_(min=b.mean(0), max=b.amax(0))
        loss = (h * lo).sum()
        loss.backward()
        return loss, lo

    assert_replayed(*compare_calls(step, _pair, leaves=[w]))


# -- (b) x[mask] reads ---------------------------------------------------------------------------

# the count of Trues per call: 0 and 1 the same, then others, then back
_COUNTS = [7, 7, 11, 7, 3, 11, 7, 20, 0, 7]


def _masked(k, shape=(4, 5)):
    """x and a mask with _COUNTS[k] Trues at positions that move with k (other values too)."""
    rng = np.random.default_rng(max(k - 1, 0) + 500)
    x = rng.standard_normal(shape).astype(np.float32)
    m = np.zeros(x.size, bool)
    m[rng.permutation(x.size)[: _COUNTS[k]]] = True
    return descent.tensor(x), descent.tensor(m.reshape(shape))


def _calls(compiled):
    return compiled.stats["recordings"], compiled.stats["replays"], compiled.stats["fallbacks"]


def test_mask_read_replays_with_changing_counts():
    def fn(x, m):
        y = x[m]
        return y * 2, y.sum(), (x * 3)[m].exp()

    compiled, warned = compare_calls(fn, _masked, len(_COUNTS))
    assert not warned, warned
    # counts 7, 11, 3, 20, 0: two recordings each for 7 and 11 (they come back), one for the
    # others (no program: recorded again when seen); the rest replay
    recordings, replays, fallbacks = _calls(compiled)
    assert fallbacks == 0 and replays >= 3, compiled.stats
    assert recordings + replays == len(_COUNTS)


def test_mask_read_in_a_training_step_replays_gradients():
    w = descent.tensor(_data(0, (4, 5), seed=11), requires_grad=True)

    def step(x, m):
        y = (x * w)[m]
        loss = (y * y).sum() + y.mean().nan_to_num()
        loss.backward()
        return loss, y

    compiled, warned = compare_calls(step, _masked, len(_COUNTS), leaves=[w])
    assert not warned, warned
    assert compiled.stats["replays"] >= 3, compiled.stats


def test_mask_read_of_rows_and_columns_replays():
    def make(k):
        x, _ = _masked(k)
        return x, x[:, 0] > 0.1, x[0] > 0.1  # a row mask (4,), a column mask (5,)

    def fn(x, rows, cols):
        a = x[rows] + 1
        b = x[:, cols] * 2
        c = x.t()[cols, 1:]
        d = x[None, rows]
        return a, b, c, d, (a.sum() + b.sum()) * c.mean()

    compiled, warned = compare_calls(fn, make, calls=10)
    assert not warned, warned
    assert compiled.stats["fallbacks"] == 0 and compiled.stats["replays"] >= 1, compiled.stats


def test_masked_select_replays_per_count():
    compiled, warned = compare_calls(lambda x, m: x.masked_select(m) * 2, _masked, len(_COUNTS))
    assert not warned, warned
    assert compiled.stats["replays"] >= 3, compiled.stats


def test_mask_made_outside_the_ops_falls_back():
    # (masked_select's broadcast mask is a copy made on the arrays: a replay would freeze it)
    compiled, warned = compare_calls(lambda x: x.masked_select(x[:1] > 0) * 2, lambda k: _data(k))
    assert any("boolean mask's positions" in w for w in warned), warned


def test_mask_read_count_that_never_repeats_falls_back_with_eagers_values():
    def make(k):
        x = descent.tensor(_data(k, (6, 7)))
        m = np.zeros(42, bool)
        m[: 2 * k + 1] = True  # a new count on every call
        return x, descent.tensor(m.reshape(6, 7))

    # (since session 26 `x[m] * 2` replays at every count, compiler/dynamic_sizes.py; a count
    # read by the function's Python keeps a program per count)
    compiled, warned = compare_calls(lambda x, m: x[m] * len(x[m]), make, calls=16)
    assert any("count of Trues keeps changing" in w for w in warned), warned
    assert compiled.stats["eager"] > 0


def test_mask_read_after_a_write_into_an_argument_replays():
    """Since session 23 a replay that the guard stops puts the written memory back first
    (tests/test_compile_s23_fallbacks.py); before, such a call ran eagerly."""

    def fn(x, m):
        with descent.no_grad():
            x.mul_(2)
        return x[m] + 1, x

    compiled, warned = compare_calls(fn, _masked, calls=6)
    assert not warned and compiled.stats["fallbacks"] == 0, (compiled.stats, warned)


# -- (c) a resized out= argument -----------------------------------------------------------------


@pytest.mark.parametrize("shape0", [(3,), (0,), (2, 5), (1,)])
def test_resized_out_argument_replays_as_eager(shape0):
    def fn(x, o):
        descent.add(x, 1.0, out=o)
        return o * 2, o.sum()

    compiled = descent.compile(fn)
    for k in range(6):
        x = _data(k)
        oe, oc = descent.zeros(shape0), descent.zeros(shape0)
        with warnings.catch_warnings(record=True) as we:
            warnings.simplefilter("always")
            want = fn(descent.tensor(x), oe)
        with warnings.catch_warnings(record=True) as wc:
            warnings.simplefilter("always")
            got = compiled(descent.tensor(x), oc)
        assert_same(want, got, f"call {k}")
        assert_same(oe, oc, f"call {k}, out")
        assert oc._version == oe._version, (k, oc._version, oe._version)
        resize = [str(w.message) for w in we if "resized" in str(w.message)]
        assert [str(w.message) for w in wc if "resized" in str(w.message)] == resize
        assert not [w for w in wc if issubclass(w.category, CompileWarning)]
    assert compiled.stats["replays"] == 4, compiled.stats


def test_resized_out_argument_with_room_in_its_storage_runs_that_call_eagerly():
    def fn(x, o):
        descent.add(x, 1.0, out=o)
        return o * 2

    compiled = descent.compile(fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(6):
            n = 3 if k < 3 else 40  # later calls: o views a storage with room for 20 elements
            be, bc = descent.zeros(n), descent.zeros(n)
            want = fn(descent.tensor(_data(k)), be[:3])
            got = compiled(descent.tensor(_data(k)), bc[:3])
            assert_same(want, got, f"call {k}")
            assert_same(be, bc, f"call {k}, storage")
    assert compiled.stats["replays"] == 1 and compiled.stats["eager"] == 3, compiled.stats


# -- (d) ldexp with an integer exponent tensor -----------------------------------------------------


def test_ldexp_with_changing_integer_exponents_replays():
    w = descent.tensor(_data(0, (5,), seed=13), requires_grad=True)

    def make(k):  # exponents that differ from the first call on (the recordings compared
        # LdexpInt's int32 copy of them, so two calls with other exponents ran eagerly)
        rng = np.random.default_rng(k + 600)
        return descent.tensor(_data(k, (3, 5))), descent.tensor(rng.integers(-4, 5, (3, 5)))

    def step(x, e):
        y = descent.ldexp(x * w, e)
        y.sum().backward()
        return y.detach(), descent.ldexp(x, e.int())

    assert_replayed(*compare_calls(step, make, leaves=[w]))


# -- (e) versions of written arguments -------------------------------------------------------------


@pytest.mark.parametrize(
    "write",
    [
        lambda x: x.mul_(2),
        lambda x: (x.add_(1), x.clamp_(-0.5, 0.5)),  # two writes: two versions
        lambda x: x[0:2].fill_(3.0),  # through a view made in the call
        lambda x: descent.add(x, x, out=x),
    ],
)
def test_write_into_an_argument_raises_its_version_as_eager(write):
    def fn(x):
        with descent.no_grad():
            write(x)
        return x.sum(0)

    compiled = descent.compile(fn)
    for k in range(6):
        xe, xc = descent.tensor(_data(k)), descent.tensor(_data(k))
        view_e, view_c = xe[1], xc[1]  # the caller's view: the same counter
        want = fn(xe)
        got = compiled(xc)
        assert_same(want, got, f"call {k}")
        assert_same(xe, xc, f"call {k}, argument")
        assert (xc._version, view_c._version) == (xe._version, view_e._version), k
    assert compiled.stats["replays"] == 4, compiled.stats


def test_recorded_inplace_op_on_an_argument_runs_eagerly_with_eagers_values():
    w = descent.tensor(np.ones(5, np.float32), requires_grad=True)

    def fn(x):
        x.add_(w * 2)  # autograd records it: x becomes the add's result
        loss = (x * x).sum()
        loss.backward()
        return loss

    compiled = descent.compile(fn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(5):
            xe, xc = descent.tensor(_data(k, (5,))), descent.tensor(_data(k, (5,)))
            w.grad = None
            want = fn(xe)
            ge = w.grad
            w.grad = None
            got = compiled(xc)
            assert_same(want, got, f"call {k}")
            assert_same(xe, xc, f"call {k}, argument")
            assert_same(ge, w.grad, f"call {k}, w.grad")
            assert xc.requires_grad == xe.requires_grad
    assert any("rebinds its argument 0" in str(w.message) for w in caught)


def test_no_grad_writes_stay_replayed():
    # (the check of rebound arguments must not catch writes into their memory)
    fn = no_grad(lambda x: (x.mul_(2), x[1:3].add_(1), x.relu_(), x * 1)[-1])
    assert_replayed(*compare_calls(fn, lambda k: _data(k)))


def test_mask_read_while_recording_names_its_node_as_eager():
    """x[mask] recorded as compiler.mask_read.MaskRead: its grad_fn is PyTorch's (and eager
    descent's) IndexBackward0 on the recording calls too, not MaskReadBackward0."""
    x = descent.randn(3, 4, requires_grad=True)
    m = x > 0
    eager = (x[m] * 2).grad_fn.next_functions[0][0].name()
    f = descent.compile(lambda x, m: x[m] * 2)
    names = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            names.append(f(x, m).grad_fn.next_functions[0][0].name())
    assert eager == "IndexBackward0"
    assert names == ["IndexBackward0"] * 3


def test_mask_read_replays_after_inference_mode_ran_elsewhere_in_the_process():
    """Once inference_mode had run anywhere in the process, every x[mask] read fell back
    (the recorder declined MaskRead on grad_mode._inference_seen alone), so these tests passed
    or failed by which tests the pytest worker ran before (the fresh-clone make test failed 7).
    Only an inference tensor in the read declines it now."""
    with descent.inference_mode():
        descent.ones(2) * 2
    f = descent.compile(lambda x: x[x > 0] * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        for k in range(4):  # (the same signs, so the same count of Trues: replays)
            x = descent.tensor(np.abs(_data(k)) * np.sign(_data(0)))
            assert np.array_equal(f(x).numpy(), (x[x > 0] * 2).numpy())
    assert f.stats["replays"] >= 1, f.stats
