"""descent.compile replays writes that fell back to eager until session 20 (helper-141).

* `out=` into a captured tensor (a module buffer, a global) or an argument: the replay writes
  into the same memory, as eager does; a captured tensor's version goes up on each replay too.
  An `out` of another shape is resized: one the call made or computed is a new array on each
  replay (eager's resize warning again), a captured one is resized by its first call only. An
  argument that must be resized still runs eagerly (a replay has the caller's array only).
* operands made by `descent.tensor(...)` inside the function (a constant list -> tensor per
  call), and an operand of another dtype that the write converts first (`h.add_(int_tensor)`).
* uint8 masks (converted through untracked.computed while recording, so the mask is a slot)
  and masks given as a NumPy array or a list (constants) in writes and reads.
* `index_put_` with two or more masks or a mask with index tensors, with and without
  `accumulate=True`, with a gradient too (selection.MaskIndexPut); accumulate=True with
  duplicate indices (eager's accumulation order: the same IndexAdd forward).

Protocol (as tests/test_compile_s19_writes.py): calls 0 and 1 see the same data, later calls
other data (a frozen value shows), every call is compared bitwise with eager; values and
gradients against torch 2.13.
"""

import warnings

import numpy as np
import pytest
import torch

import descent
from compile_harness import assert_fell_back, assert_replayed, assert_same, compare_calls, no_grad
from descent.compiler import CompileWarning


def _data(k, shape=(4, 5), dtype=np.float32):
    rng = np.random.default_rng(max(k - 1, 0) + 200)
    return rng.standard_normal(shape).astype(dtype)


# -- 1. out= into a captured tensor or an argument ---------------------------------------------


class _Buffered(descent.nn.Module):
    """A module whose buffers take results through out=: a running sum, the last product, a
    window of its rows (a view of a buffer)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("total", descent.zeros(4, 5))
        self.register_buffer("last", descent.zeros(4, 4))
        self.register_buffer("window", descent.zeros(6, 5))

    def forward(self, x):
        with descent.no_grad():
            descent.add(self.total, x * 0.5, out=self.total)  # reads and writes the buffer
            descent.matmul(x, x.t(), out=self.last)
            descent.mul(x[:2], 3.0, out=self.window[1:3])  # through a view of the buffer
            return self.total * 2, self.last.sum(1)


def test_out_into_module_buffers_replays_with_eagers_state_and_versions():
    mine, theirs = _Buffered(), _Buffered()
    compiled = descent.compile(mine.forward)
    versions = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(6):
            x = _data(k)
            before = [(b._version) for b in (mine.total, theirs.total, mine.last, theirs.last)]
            assert_same(theirs(descent.tensor(x)), compiled(descent.tensor(x)), f"call {k}")
            for a, b in ((mine.total, theirs.total), (mine.last, theirs.last),
                         (mine.window, theirs.window)):  # fmt: skip
                assert np.array_equal(a.numpy(), b.numpy()), k
            after = [(b._version) for b in (mine.total, theirs.total, mine.last, theirs.last)]
            versions.append([a - b for a, b in zip(after, before, strict=True)])
    assert not [m for m in caught if issubclass(m.category, CompileWarning)]
    assert compiled.stats["replays"] == 4
    for d in versions:  # each call raises the buffers' versions as eager's does
        assert d[0] == d[1] > 0 and d[2] == d[3] > 0, versions


_G = {"mine": descent.zeros(4, 5), "theirs": descent.zeros(4, 5)}


def _global_out(which):
    def fn(x):
        with descent.no_grad():
            g = _G[which]
            descent.mul(x, 3.0, out=g)
            descent.sub(g, x.exp(), out=g)
            return g * 2

    return fn


def test_out_into_a_global_replays():
    assert_replayed(*compare_calls(_global_out("mine"), _data, eager=_global_out("theirs")))
    assert np.array_equal(_G["mine"].numpy(), _G["theirs"].numpy())
    assert not np.shares_memory(_G["mine"].numpy(), _G["theirs"].numpy())


def test_out_into_an_argument_replays():
    def fn(x, o):
        with descent.no_grad():
            descent.add(x, x.flip(0), out=o)
            return o * 2

    compiled = descent.compile(fn)
    for k in range(6):
        o1, o2 = descent.zeros(4, 5), descent.zeros(4, 5)
        want = fn(descent.tensor(_data(k)), o1)
        assert_same(want, compiled(descent.tensor(_data(k)), o2), f"call {k}")
        assert np.array_equal(o1.numpy(), o2.numpy())
    assert compiled.stats["replays"] == 4


def test_out_buffer_in_a_training_step_with_an_optimizer():
    """A model that keeps its last logits in a buffer through out=, trained with Adam: loss,
    parameters and buffer bitwise eager's on every call."""

    class Net(descent.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = descent.nn.Linear(5, 3)
            self.register_buffer("seen", descent.zeros(4, 3))

        def forward(self, x):
            y = self.lin(x)
            with descent.no_grad():
                descent.add(self.seen, y.detach(), out=self.seen)
            return y

    def make():
        descent.manual_seed(3)
        net = Net()
        opt = descent.optim.Adam(net.parameters(), lr=1e-2)

        def step(x):
            opt.zero_grad()
            loss = (net(x) ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        return net, step

    net_e, step_e = make()
    net_c, step_c = make()
    compiled = descent.compile(step_c)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(7):
            want = step_e(descent.tensor(_data(k)))
            assert_same(want, compiled(descent.tensor(_data(k))), f"call {k}")
            for a, b in zip(net_e.state_dict().values(), net_c.state_dict().values(),
                            strict=True):  # fmt: skip
                assert np.array_equal(a.numpy(), b.numpy()), k
    assert not [m for m in caught if issubclass(m.category, CompileWarning)]
    assert compiled.stats["replays"] >= 4


def test_version_check_after_a_replayed_write_into_a_captured_tensor():
    """A graph that saved the buffer raises at backward once the replay wrote it, as eager."""
    buf = descent.ones(3)
    w = descent.tensor([1.0, 2.0, 3.0], requires_grad=True)

    def fn(x):
        with descent.no_grad():
            descent.mul(x, 2.0, out=buf)
            return buf + 1

    compiled = descent.compile(fn)
    for k in range(4):
        compiled(descent.tensor(_data(k)[0, :3]))
    loss = (w * buf).sum()  # saves buf (at its current version)
    compiled(descent.tensor(_data(5)[0, :3]))  # a replay writes buf
    assert compiled.stats["replays"] >= 1
    with pytest.raises(RuntimeError, match="modified in place after the op saved it"):
        loss.backward()


def test_write_into_a_tensor_the_call_made_outside_the_factories_falls_back():
    """descent.tensor(t) copies t's values: a tensor made in the call that is no factory's and
    no op's. Written in place and returned, it outlives the call, but it is not the caller's
    state: a replay would write the recorded tensor again (its values accumulating)."""

    def body(x):
        t = descent.tensor(x[0])
        t.add_(1.0)
        descent.mul(x[1], 2.0, out=t)
        return t

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # (torch.tensor(tensor)'s own warning)
        compiled, warned = compare_calls(no_grad(body), _data)
    # (the copy itself is the first reason now: descent.tensor(t) reads t's values outside
    # the ops, tests/test_fixes_s20_lead.py)
    assert_fell_back(compiled, warned, "copies a tensor's values outside the ops")


def _helper_writes(x):
    descent.add(x, 1.0, out=_G["helper"])


_G["helper"] = descent.zeros(4, 5)


def test_out_into_a_global_written_by_a_helper_function_replays():
    """The captured tensor is found through the functions the compiled one names."""

    def fn(x):
        with descent.no_grad():
            _helper_writes(x * 2)
            return _G["helper"] - x

    compiled = descent.compile(fn)
    for k in range(6):
        got = compiled(descent.tensor(_data(k)))
        mine = _G["helper"].numpy().copy()
        assert_same(fn(descent.tensor(_data(k))), got, f"call {k}")
        assert np.array_equal(mine, _G["helper"].numpy())
    assert compiled.stats["replays"] == 4


# -- 2. out= of another shape: resized ------------------------------------------------------------


def _resized_fresh(x):
    o = descent.empty(3)
    descent.add(x, 1.0, out=o)
    return o * 2, o


def _resized_empty(x):
    o = descent.empty(0)
    descent.mul(x, x, out=o)
    return o


def _resized_computed(x):
    o = x[0] * 1
    descent.matmul(x, x.t(), out=o)
    return o - 1


@pytest.mark.parametrize("body", [_resized_fresh, _resized_empty, _resized_computed],
                         ids=lambda f: f.__name__)  # fmt: skip
def test_resized_out_replays(body):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert_replayed(*compare_calls(no_grad(body), _data))


def test_resized_out_warns_on_every_replay_as_eager():
    compiled = descent.compile(no_grad(_resized_fresh))
    for k in range(5):
        with pytest.warns(UserWarning, match=r"had shape \[3\], which does not match the "
                                             r"required output shape \[4, 5\]"):  # fmt: skip
            compiled(descent.tensor(_data(k)))
    assert compiled.stats["replays"] == 3
    firsts = [compiled(descent.tensor(_data(k)))[1] for k in range(2)]
    assert not np.shares_memory(firsts[0].numpy(), firsts[1].numpy())


def test_resized_captured_out_replays_after_its_first_call():
    bufs = {"mine": descent.zeros(2), "theirs": descent.zeros(2)}

    def fn(which):
        def body(x):
            with descent.no_grad():
                descent.add(x, 2.0, out=bufs[which])
                return bufs[which] * x

        return body

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert_replayed(*compare_calls(fn("mine"), _data, eager=fn("theirs")))
    assert np.array_equal(bufs["mine"].numpy(), bufs["theirs"].numpy())


def test_resized_argument_replays():  # (it ran eagerly until session 21: helper-150)
    def fn(x, o):
        with descent.no_grad():
            descent.add(x, 1.0, out=o)
            return o * 2

    compiled = descent.compile(fn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(4):
            o1, o2 = descent.zeros(3), descent.zeros(3)
            want = fn(descent.tensor(_data(k)), o1)
            assert_same(want, compiled(descent.tensor(_data(k)), o2), f"call {k}")
            assert np.array_equal(o1.numpy(), o2.numpy())
    warned = [str(w.message) for w in caught if issubclass(w.category, CompileWarning)]
    assert compiled.stats["replays"] == 2 and compiled.stats["fallbacks"] == 0, warned
    assert not warned, warned  # (more: tests/test_compile_s21_fallbacks.py)


# -- 3. operands made by descent.tensor(...) in the call, converted operands ---------------------

TENSOR_OPERANDS = {
    "add_float_list": lambda x: (x * 1).add_(descent.tensor([1.0, 2.0, 3.0, 4.0, 5.0])),
    "add_int_list": lambda x: (x * 1).add_(descent.tensor([1, -2, 3, 4, 5])),  # (converted)
    "mul_numpy": lambda x: (x * 1).mul_(descent.tensor(np.arange(5, dtype=np.float32))),
    "div_0d": lambda x: (x * 1).div_(descent.tensor(3.0)),
    "setitem_value": lambda x: _set(x * 1, slice(1, 3), descent.tensor([0.5, 1, 2, 3, 4])),
    "masked_fill_value": lambda x: (x * 1).masked_fill_(x > 0, descent.tensor(-2.0)),
    "copy_": lambda x: (x * 1)[1:3].copy_(descent.tensor([[1.0] * 5, [2.0] * 5])) * x[:2],
    "out_into_it": lambda x: descent.mul(x, 2.0, out=descent.tensor([[0.0] * 5] * 4)),
    "written_then_read": lambda x: x + descent.tensor([1.0, 2, 3, 4, 5]).mul_(2),
    "as_tensor_list": lambda x: (x * 1).sub_(descent.as_tensor([[0.5], [1.0], [2.0], [3.0]])),
    "index_from_list": lambda x: _set(x * 1, descent.tensor([0, 2]), x[1] * 3),
    "converted_tensor_operand": lambda x: (x * 1).add_((x * 3).to(descent.int64)),
    "float16_times_int": lambda x: (x * 1).half().mul_((x * 100).to(descent.int32)),
}


def _set(h, index, v):
    h[index] = v
    return h


@pytest.mark.parametrize("grad", ["no_grad", "plain"])
@pytest.mark.parametrize("name", sorted(TENSOR_OPERANDS))
def test_tensor_made_in_the_call_replays(name, grad):
    body = TENSOR_OPERANDS[name]
    assert_replayed(*compare_calls(no_grad(body) if grad == "no_grad" else body, _data))


def test_tensor_copied_from_a_tensors_values_is_no_constant():
    """descent.tensor(t) copies t's values (data): no constant; the call runs eagerly (it would
    be frozen: the first two calls see the same data)."""

    def body(x):
        h = x * 1
        h.add_(descent.tensor(x[0]))
        return h

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # (torch.tensor(tensor)'s own warning)
        compiled, warned = compare_calls(no_grad(body), _data)
    # (the copy is the first reason now: tests/test_fixes_s20_lead.py)
    assert_fell_back(compiled, warned, "copies a tensor's values outside the ops")


_NP = np.arange(20, dtype=np.float32).reshape(4, 5)


def test_as_tensor_of_a_numpy_array_shares_its_memory_and_stays_eager():
    """as_tensor(array) shares the array's memory (no constant: the caller's NumPy array may
    change between calls), and a write into it writes the array: both run eagerly."""

    def operand(x):
        return (x * 1).add_(descent.as_tensor(_NP))

    compiled, warned = compare_calls(no_grad(operand), _data)
    assert compiled.stats["fallbacks"] == 1, warned
    assert any("a replay would freeze its value" in w for w in warned), warned


# -- 4. uint8 masks, NumPy and list masks ----------------------------------------------------------

_KEEP = np.array([True, False, True, True, False])

_COLUMN = descent.tensor([2])

# (a uint8 mask as the only index tensor with one value is PyTorch's masked_fill_ error since
# session 21: the scalar writes pair the mask with an index tensor, an index_put)
MASKS = {
    "uint8_scalar": lambda x: _set(x * 1, ((x[:, 0] > 0).to(descent.uint8), _COLUMN), 0.5),
    "uint8_0d_tensor": lambda x: _set(x * 1, ((x[:, 1] > 0.3).to(descent.uint8), _COLUMN),
                                      x.sum()),  # fmt: skip
    "uint8_rows_broadcast": lambda x: _set(x * 1, (x[:, 0] > 0).to(descent.uint8), x[0] * 2),
    "uint8_with_slice": lambda x: _set(x * 1, ((x[:, 1] > 0).to(descent.uint8), slice(2, 4)),
                                       x[0, :2] - 3),  # fmt: skip
    "numpy_columns": lambda x: _set(x * 1, (slice(None), _KEEP), x[:, :3] * 2),
    "numpy_rows_scalar": lambda x: _set(x * 1, np.array([True, False, False, True]), 7.0),
    "list_rows": lambda x: _set(x * 1, [True, False, True, True], x[0]),
    "numpy_read": lambda x: x[:, _KEEP] * 2,
    "list_read": lambda x: x[[False, True, True, False]].exp(),
    "numpy_read_and_write": lambda x: _set(x * 1, (slice(None), ~_KEEP), x[:, _KEEP][:, :2]),
}


@pytest.mark.parametrize("grad", ["no_grad", "plain"])
@pytest.mark.parametrize("name", sorted(MASKS))
def test_uint8_numpy_and_list_masks_replay(name, grad):
    body = MASKS[name]
    assert_replayed(*compare_calls(no_grad(body) if grad == "no_grad" else body, _data))


def test_masks_match_torch():
    for k in range(3):
        a = _data(k)
        x, t = descent.tensor(a), torch.tensor(a)
        pairs = [
            # (a one-element value with a lone uint8 mask is masked_fill_'s error in both)
            (_set(x * 1, ((x[:, 0] > 0).to(descent.uint8), _COLUMN), 0.5),
             _set(t * 1, ((t[:, 0] > 0).to(torch.uint8), torch.tensor([2])), 0.5)),
            (_set(x * 1, (x[:, 0] > 0).to(descent.uint8), x[0] * 2),
             _set(t * 1, (t[:, 0] > 0).to(torch.uint8), t[0] * 2)),
            (_set(x * 1, (slice(None), _KEEP), x[:, :3] * 2),
             _set(t * 1, (slice(None), torch.tensor(_KEEP)), t[:, :3] * 2)),
            (x[:, _KEEP] * 2, t[:, torch.tensor(_KEEP)] * 2),
            (_set(x * 1, [True, False, True, True], x[0]), _set(t * 1, torch.tensor(
                [True, False, True, True]), t[0])),
        ]  # fmt: skip
        for d, w in pairs:
            np.testing.assert_array_equal(d.numpy(), w.numpy())


def test_uint8_mask_read_is_guarded_per_count():
    """x[mask] with a uint8 mask tensor: the result's shape is the count of Trues; since
    session 22 a guarded read (a program per count), as a bool mask's (it ran eagerly)."""
    compiled, warned = compare_calls(lambda x: x[(x > 0).to(descent.uint8)] * 2, _data)
    assert not warned and compiled.stats["fallbacks"] == 0, (compiled.stats, warned)


def test_numpy_mask_from_the_data_falls_back():
    """A NumPy mask is a constant; one computed from x's values through np.asarray(x) would
    be frozen (the first two calls see the same data): np.asarray is guarded as .numpy()."""

    def body(x):
        h = x * 1
        h[np.asarray(x) > 0] = 0.0
        return h

    compiled, warned = compare_calls(no_grad(body), _data)
    assert_fell_back(compiled, warned, "Tensor.__array__()")


# -- 5. index_put_ with several masks or index tensors, accumulate=True ---------------------------


def _top2_rows(x):
    return x[:, 0].argsort() < 2  # two Trues, at places that change with the data


def _top2_cols(x):
    return x[0].argsort() < 2


INDEX_PUT = {
    "two_masks": lambda x: (x * 1).index_put_((_top2_rows(x), _top2_cols(x)), x[1, :2] * 3),
    "two_masks_scalar": lambda x: (x * 1).index_put_(
        (_top2_rows(x), _top2_cols(x)), descent.tensor(-1.0)
    ),
    "two_masks_accumulate": lambda x: (x * 1).index_put_(
        (_top2_rows(x), _top2_cols(x)), x[1, :2] * 3, accumulate=True
    ),
    "mask_accumulate": lambda x: (x * 1).index_put_((x[:, 0] > 0,), x[2] * 2, accumulate=True),
    "mask_2d_accumulate": lambda x: (x * 1).index_put_((x > 0,), x.sum() * 0.25, accumulate=True),
    # one True in the mask, five column indices of 0/1: duplicates, added in eager's order
    "mask_and_index_duplicates": lambda x: (x * 1).index_put_(
        (x[:, 0].argsort() < 1, (x[0] > 0).long()), x[2] * 1.5, accumulate=True
    ),
    "mask_and_index": lambda x: (x * 1).index_put_(
        (_top2_rows(x), (x[0, :2] > 0).long() + 3), x[3, :2]
    ),
    "index_duplicates_accumulate": lambda x: (x * 1).index_put_(
        ((x[:, 0] > 0).long(), (x[:, 1] > 0).long()), x[:, 2] * 7, accumulate=True
    ),
    "float16_accumulate": lambda x: (
        (x * 1).half().index_put_((x[:, 0] > 0,), (x[1] * 1000).half(), accumulate=True)
    ),
    "out_of_place": lambda x: descent.index_put(
        x, (_top2_rows(x), _top2_cols(x)), x[0, :2], accumulate=True
    ),
    "into_fresh": lambda x: descent.zeros(4, 5).index_put_(
        (x > 0,), descent.tensor(1.0), accumulate=True
    ),
}


@pytest.mark.parametrize("grad", ["no_grad", "plain"])
@pytest.mark.parametrize("name", sorted(INDEX_PUT))
def test_index_put_replays(name, grad):
    body = INDEX_PUT[name]
    assert_replayed(*compare_calls(no_grad(body) if grad == "no_grad" else body, _data))


def test_index_put_matches_torch():
    for k in range(4):
        a = _data(k)
        for name, body in INDEX_PUT.items():
            mine = body(descent.tensor(a))
            t = _torch_index_put(name, torch.tensor(a))
            if t is None:
                continue
            rtol = 1e-3 if "float16" in name else 1e-6
            np.testing.assert_allclose(mine.numpy().astype(np.float64),
                                       t.numpy().astype(np.float64), rtol=rtol, atol=1e-6,
                                       err_msg=name)  # fmt: skip


def _torch_index_put(name, t):
    r = (t[:, 0].argsort() < 2, t[0].argsort() < 2)
    table = {
        "two_masks": lambda: (t * 1).index_put_(r, t[1, :2] * 3),
        "two_masks_accumulate": lambda: (t * 1).index_put_(r, t[1, :2] * 3, accumulate=True),
        "mask_accumulate": lambda: (t * 1).index_put_((t[:, 0] > 0,), t[2] * 2, accumulate=True),
        "out_of_place": lambda: torch.index_put(t, r, t[0, :2], accumulate=True),
        "mask_and_index": lambda: (t * 1).index_put_((r[0], (t[0, :2] > 0).long() + 3), t[3, :2]),
        "mask_and_index_duplicates": lambda: (t * 1).index_put_(
            (t[:, 0].argsort() < 1, (t[0] > 0).long()), t[2] * 1.5, accumulate=True
        ),
        "index_duplicates_accumulate": lambda: (t * 1).index_put_(
            ((t[:, 0] > 0).long(), (t[:, 1] > 0).long()), t[:, 2] * 7, accumulate=True
        ),
        "float16_accumulate": lambda: (
            (t * 1).half().index_put_((t[:, 0] > 0,), (t[1] * 1000).half(), accumulate=True)
        ),
    }
    return table[name]() if name in table else None


def test_two_masks_whose_counts_differ_raise_on_the_replay_as_eager():
    def fn(x):
        with descent.no_grad():
            return (x * 1).index_put_((x[:, 0] > 0, x[0] > 0), descent.tensor(2.0))

    def make(k):  # calls 0-3: one True in each mask, then 3 and 2
        a = -np.abs(_data(k)) - 0.1
        if k < 4:
            a[k, 0] = a[0, k] = 1.0
        else:
            a[1:, 0] = a[0, 1] = a[0, 3] = 1.0
        return a

    compiled = descent.compile(fn)
    for k in range(6):
        x = descent.tensor(make(k))
        if k < 4:
            assert_same(fn(x), compiled(x), f"call {k}")
            continue
        with pytest.raises(IndexError, match="shape mismatch") as eager_error:
            fn(x)
        with pytest.raises(IndexError) as compiled_error:
            compiled(x)
        assert str(eager_error.value) == str(compiled_error.value)
    assert compiled.stats["replays"] >= 2


STEP_WRITES = {
    "mask_put": lambda h, x, b: h.index_put_((x[:, 0] > 0,), b * 2),
    "mask_accumulate": lambda h, x, b: h.index_put_((x[:, 0] > 0,), b * 2, accumulate=True),
    "two_masks": lambda h, x, b: h.index_put_((_top2_rows(x), _top2_cols(x)), b[:2]),
    "two_masks_accumulate": lambda h, x, b: h.index_put_(
        (_top2_rows(x), _top2_cols(x)), b[:2], accumulate=True
    ),
    "index_duplicates_accumulate": lambda h, x, b: h.index_put_(
        ((x[:, 0] > 0).long(), (x[:, 1] > 0).long()), b[:4] * 3, accumulate=True
    ),
    "uint8_setitem": lambda h, x, b: _set(h, (x[:, 0] > 0).to(descent.uint8), b * 2),
    "numpy_mask_setitem": lambda h, x, b: _set(h, (slice(None), _KEEP), b[:3] * 2),
}


@pytest.mark.parametrize("name", sorted(STEP_WRITES))
def test_writes_in_a_training_step_with_an_optimizer(name):
    """h (requires grad) written with a mask or duplicate indices, then backward and Adam:
    loss, gradients and parameters bitwise eager's on every call, gradients close to torch's
    (index_put with masks and a gradient ran eagerly before: its rows were derived)."""
    write = STEP_WRITES[name]
    w0, b0 = _data(0, (5, 5)), _data(1, (5, 5))[0]

    def make():
        w = descent.tensor(w0, requires_grad=True)
        b = descent.tensor(b0, requires_grad=True)
        opt = descent.optim.Adam([w, b], lr=1e-2)

        def step(x):
            opt.zero_grad()
            loss = (write(x @ w, x, b) ** 2).sum()
            loss.backward()
            grads = (w.grad * 1, b.grad * 1 if b.grad is not None else w.grad * 0)
            opt.step()
            return loss, *grads

        return w, b, step

    w_e, b_e, step_e = make()
    w_c, b_c, step_c = make()
    compiled = descent.compile(step_c)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(7):
            a = _data(k)
            got = compiled(descent.tensor(a))
            assert_same(step_e(descent.tensor(a)), got, f"call {k}")
            assert np.array_equal(w_e.detach().numpy(), w_c.detach().numpy()), k
            assert np.array_equal(b_e.detach().numpy(), b_c.detach().numpy()), k
            if k == 0:  # the first step's gradients against torch's (same start)
                tw = torch.tensor(w0, requires_grad=True)
                tb = torch.tensor(b0, requires_grad=True)
                ta = torch.tensor(a)
                (_torch_write(name, ta @ tw, ta, tb) ** 2).sum().backward()
                np.testing.assert_allclose(got[1].numpy(), tw.grad.numpy(), rtol=1e-5,
                                           atol=1e-5)  # fmt: skip
                if tb.grad is not None:
                    np.testing.assert_allclose(got[2].numpy(), tb.grad.numpy(), rtol=1e-5,
                                               atol=1e-5)  # fmt: skip
    assert not [m for m in caught if issubclass(m.category, CompileWarning)]
    assert compiled.stats["replays"] >= 4


def _torch_write(name, h, x, b):
    rows, cols = x[:, 0].argsort() < 2, x[0].argsort() < 2
    if name == "mask_put":
        return h.index_put_((x[:, 0] > 0,), b * 2)
    if name == "mask_accumulate":
        return h.index_put_((x[:, 0] > 0,), b * 2, accumulate=True)
    if name == "two_masks":
        return h.index_put_((rows, cols), b[:2])
    if name == "two_masks_accumulate":
        return h.index_put_((rows, cols), b[:2], accumulate=True)
    if name == "index_duplicates_accumulate":
        return h.index_put_(((x[:, 0] > 0).long(), (x[:, 1] > 0).long()), b[:4] * 3,
                            accumulate=True)  # fmt: skip
    if name == "uint8_setitem":
        return _set(h, (x[:, 0] > 0).to(torch.uint8), b * 2)
    return _set(h, (slice(None), torch.tensor(_KEEP)), b[:3] * 2)
