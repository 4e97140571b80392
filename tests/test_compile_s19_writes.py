"""descent.compile replays writes that fell back to eager (or froze values) before session 19.

* `out=`: the copy of the result into `out` is a recorded Write (view_write.redo_assign), into a
  tensor the call computed, a view of one, or a tensor a factory (descent.empty/zeros/...) made
  inside the call: the recorder notes those (recorder.Recorder.fresh) and each replay starts
  from a copy of the recorded initial value (Recording.copies), so no two calls share memory.
  (out= into a captured tensor or a resized out replay since session 20.)
* `fill_diagonal_` (a masked copy with a mask from the shape), `masked_scatter(_)` without a
  gradient (one kernel through untracked.computed: the count and places come from each call's
  mask), boolean-mask `x[mask] = v` and `index_put_((mask,), v)` (the write repeats the mask
  itself, which NumPy expands as eager's positions; a value whose length no longer fits the
  count of Trues raises eager's error on the replay too).
* histogramdd with edge tensors, linalg.matrix_rank with tensor atol/rtol/tol, and
  linalg.cholesky_ex on a matrix that is not positive-definite on a later call (info, the
  failing matrices and their partial factors recomputed per call; it raised LinAlgError).

Protocol: calls 0 and 1 see the same data, later calls other data (a frozen value shows), and
every call is compared bitwise with eager; values and gradients against torch 2.13.
"""

import warnings

import numpy as np
import pytest
import torch

import descent
from compile_harness import assert_replayed, compare_calls, no_grad
from descent.compiler import CompileWarning


def _data(k, shape=(4, 5), dtype=np.float32):
    rng = np.random.default_rng(max(k - 1, 0) + 100)
    return rng.standard_normal(shape).astype(dtype)


# -- 1. out= ---------------------------------------------------------------------------------


def _out_empty(x):
    o = descent.empty(4, 5)
    descent.add(x, x * 2, out=o)
    return o * 1, o


def _out_computed(x):
    o = x * 0
    descent.mul(x, 3.0, out=o)
    return o + 1


def _out_matmul(x):
    o = descent.empty(4, 4)
    descent.matmul(x, x.t(), out=o)
    return o


def _out_sum(x):
    o = descent.zeros(4)
    descent.sum(x, 1, out=o)
    return o - 1


def _out_view_of_computed(x):
    h = x * 1
    descent.add(x[:2], 1.0, out=h[1:3])
    return h


def _out_view_of_fresh(x):
    z = descent.zeros(4, 5)
    descent.mul(x[:, :2], 2.0, out=z[:, 3:])
    return z


def _out_where(x):
    o = descent.empty_like(x)
    descent.where(x > 0, x, -x * 2, out=o)
    return o


def _out_cast(x):
    o = descent.zeros(4, 5, dtype=descent.float64)  # float32 result into float64: a cast
    descent.sub(x, 0.5, out=o)
    return o


def _out_twice(x):
    o = descent.empty(4, 5)
    descent.add(x, 1.0, out=o)
    descent.mul(o, x, out=o)
    return o


OUT = [_out_empty, _out_computed, _out_matmul, _out_sum, _out_view_of_computed,
       _out_view_of_fresh, _out_where, _out_cast, _out_twice]  # fmt: skip


@pytest.mark.parametrize("grad", ["no_grad", "plain"])
@pytest.mark.parametrize("body", OUT, ids=lambda f: f.__name__.strip("_"))
def test_out_arg_replays(body, grad):
    assert_replayed(*compare_calls(no_grad(body) if grad == "no_grad" else body, _data))


def test_out_results_do_not_share_memory_between_calls():
    """A factory's tensor written by out= and returned is a new array on every replay."""
    compiled = descent.compile(no_grad(_out_empty))
    outs = [compiled(descent.tensor(_data(k)))[1] for k in range(5)]
    firsts = [o.numpy().copy() for o in outs]
    compiled(descent.tensor(_data(9)))
    for o, f in zip(outs, firsts, strict=True):
        assert np.array_equal(o.numpy(), f)
    assert not np.shares_memory(outs[3].numpy(), outs[4].numpy())


def test_out_tensor_kept_on_a_module_is_each_calls():
    """A factory's tensor written by out= and kept on a captured module (`self.last = o`):
    the replay sets the attribute to its own new array, as eager's call does."""

    class Keep(descent.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = descent.nn.Linear(5, 3)
            self.last = None

        def forward(self, x):
            with descent.no_grad():
                o = descent.empty(4, 3)
                descent.matmul(x, self.lin.weight.t(), out=o)
                self.last = o
                return o * 2

    descent.manual_seed(0)
    m = Keep()
    compiled = descent.compile(m.forward)
    for k in range(5):
        want = m(descent.tensor(_data(k))).numpy()
        m.last = None
        got = compiled(descent.tensor(_data(k))).numpy()
        assert np.array_equal(got, want)
        assert np.array_equal(m.last.numpy() * 2, got)
    assert compiled.stats["replays"] == 3


FRESH = {
    "add_": lambda x: descent.zeros(4, 5).add_(x) * 2,
    "setitem_rows": lambda x: _set(descent.ones(4, 5), slice(1, 3), x[0]),
    "index_then_read": lambda x: _fresh_read_then_write(x),
}


def _fresh_read_then_write(x):
    z = descent.full((4, 5), 0.5)
    y = x + z  # read before the write: the replay starts from the value at creation
    z[x > 0] = -1.0
    return y, z


@pytest.mark.parametrize("name", sorted(FRESH))
def test_writes_into_a_factory_tensor_replay(name):
    assert_replayed(*compare_calls(no_grad(FRESH[name]), _data))


_BUFFER = descent.zeros(4, 5)


def _out_captured(x):
    descent.add(x, 1.0, out=_BUFFER)  # the caller's tensor: its state, not the call's
    return _BUFFER * 2


def _out_resized(x):
    o = descent.empty(3)
    descent.add(x, 1.0, out=o)  # resized (a new array: a replay could not follow it)
    return o * 2


@pytest.mark.parametrize("body", [_out_captured, _out_resized], ids=["captured", "resized"])
def test_out_arg_captured_or_resized_replays(body):
    """These fell back until session 20 (tests/test_compile_s20_writes.py covers them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # (the resize's own warning)
        assert_replayed(*compare_calls(no_grad(body), _data))


def test_out_arg_values_match_torch():
    for k in range(3):
        a = _data(k)
        o = descent.empty(4, 4)
        descent.matmul(descent.tensor(a), descent.tensor(a).t(), out=o)
        t = torch.empty(4, 4)
        torch.matmul(torch.tensor(a), torch.tensor(a).t(), out=t)
        np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-5, atol=1e-6)


# -- 2. fill_diagonal_, masked_scatter_ ---------------------------------------------------------

WRITES = {
    "fill_diagonal": lambda x: (x * 1).fill_diagonal_(2.5) + 1,
    "fill_diagonal_tall_wrap": lambda x: descent.cat([x, x, x]).fill_diagonal_(-1.0, wrap=True),
    "fill_diagonal_tall": lambda x: descent.cat([x, x]).fill_diagonal_(7.0) * 2,
    "fill_diagonal_cube": lambda x: x[:2, :4].reshape(2, 2, 2).exp().fill_diagonal_(0.0),
    "fill_diagonal_fresh": lambda x: descent.zeros(4, 5).fill_diagonal_(1.0) + x,
    "masked_scatter_": lambda x: (x * 1).masked_scatter_(x > 0, x * 3) - 1,
    "masked_scatter_broadcast_mask": lambda x: (x * 1).masked_scatter_(x[0] > 0, -x),
    "masked_scatter": lambda x: descent.masked_scatter(x, x < 0.3, x.flip(0) * 2),
    "masked_scatter_into_fresh": lambda x: descent.zeros(4, 5).masked_scatter_(x > 0, x * 5),
    # boolean-mask setitem: a scalar, a 0-d tensor, a broadcast row, a fresh tensor
    "mask_scalar": lambda x: _set(x * 1, x > 0, 0.5),
    "mask_0d": lambda x: _set(x * 1, x > 0.2, x.sum()),
    "mask_broadcast": lambda x: _set(x * 1, x[:, 0] > 0, x[0] * 2),
    "mask_and_int": lambda x: _set(x * 1, (x[:, 1] > 0, 2), -3.0),
    "mask_into_fresh": lambda x: _set(descent.zeros(4, 5), x > 0, 1.0) * x,
    "mask_int_dtype": lambda x: _set((x * 10).long(), x > 0, 7),
    "mask_exact_count": lambda x: _set(x * 1, x.argsort(1) < 2, (x * 3)[:, :2].flatten()),
    "index_put_mask": lambda x: (x * 1).index_put_((x > 0,), x.amax() * 2) + 1,
    "index_put_mask_rows": lambda x: (x * 1).index_put_((x[:, 0] > 0,), -x[1]),
    "copy_broadcast_into_view": lambda x: _copy_rows(x),
}


def _set(h, index, v):
    h[index] = v
    return h


def _copy_rows(x):
    h = x * 1
    h[1:3].copy_(x[0] * 2)
    h.t()[0].copy_(x[:, 4])
    return h


@pytest.mark.parametrize("grad", ["no_grad", "plain"])
@pytest.mark.parametrize("name", sorted(WRITES))
def test_writes_replay(name, grad):
    body = WRITES[name]
    assert_replayed(*compare_calls(no_grad(body) if grad == "no_grad" else body, _data))


def test_writes_match_torch():
    """The eager values these replays repeat, against torch 2.13."""
    for k in range(3):
        a = _data(k)
        x, t = descent.tensor(a), torch.tensor(a)
        pairs = [
            ((x * 1).fill_diagonal_(2.5), (t * 1).fill_diagonal_(2.5)),
            (descent.cat([x, x, x]).fill_diagonal_(-1.0, wrap=True),
             torch.cat([t, t, t]).fill_diagonal_(-1.0, wrap=True)),
            ((x * 1).masked_scatter_(x > 0, x * 3), (t * 1).masked_scatter_(t > 0, t * 3)),
            ((x * 1).masked_scatter_(x[0] > 0, -x), (t * 1).masked_scatter_(t[0] > 0, -t)),
            (_set(x * 1, x[:, 0] > 0, x[0] * 2), _set(t * 1, t[:, 0] > 0, t[0] * 2)),
            (_set(x * 1, (x[:, 1] > 0, 2), -3.0), _set(t * 1, (t[:, 1] > 0, 2), -3.0)),
            ((x * 1).index_put_((x > 0,), x.amax() * 2),
             (t * 1).index_put_((t > 0,), t.amax() * 2)),
        ]  # fmt: skip
        for d, w in pairs:
            np.testing.assert_array_equal(d.numpy(), w.numpy())


@pytest.mark.parametrize("mask_dims", [2, 1])
def test_masked_scatter_with_gradient_replays_and_matches_torch(mask_dims):
    """With a gradient masked_scatter is the MaskedScatter op, whose mask is a parameter the
    replay binds to each call's: the gradients to the input and to the source follow it
    (it ran eagerly before: SetItem's positions came from the mask's values)."""
    w0 = _data(0, (4, 5))

    def step(x, w):
        w.grad = None
        mask = x > 0 if mask_dims == 2 else x[0] > 0
        loss = (w.masked_scatter(mask, x * w) ** 2).sum()
        loss.backward()
        return loss, w.grad

    w = descent.tensor(w0, requires_grad=True)
    compiled = descent.compile(step)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(6):
            a = _data(k)
            want = [v.numpy().copy() for v in step(descent.tensor(a), w)]
            got = [v.numpy().copy() for v in compiled(descent.tensor(a), w)]
            for p, q in zip(want, got, strict=True):
                assert np.array_equal(p, q), k
            tw = torch.tensor(w0, requires_grad=True)
            ta = torch.tensor(a)
            tm = ta > 0 if mask_dims == 2 else ta[0] > 0
            (tw.masked_scatter(tm, ta * tw) ** 2).sum().backward()
            np.testing.assert_allclose(got[1], tw.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert not [m for m in caught if issubclass(m.category, CompileWarning)]
    assert compiled.stats["replays"] == 4


def test_masked_scatter_gradient_of_a_zero_dim_input():
    for k in range(3):
        a = _data(k)
        x = descent.tensor(a[0, 0], requires_grad=True)
        s = descent.tensor(a[1], requires_grad=True)
        (descent.masked_scatter(x, descent.tensor(a[2, 0] > 0), s) * 3).backward()
        tx = torch.tensor(a[0, 0], requires_grad=True)
        ts = torch.tensor(a[1], requires_grad=True)
        (torch.masked_scatter(tx, torch.tensor(a[2, 0] > 0), ts) * 3).backward()
        np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
        np.testing.assert_array_equal(s.grad.numpy(), ts.grad.numpy())


def _counts(k):
    """Calls 0-1 the same 8 Trues, call 2 and 3 8 Trues elsewhere, call 4 ten, call 5 eight."""
    rng = np.random.default_rng(max(k - 1, 0) + 50)
    a = -np.abs(_data(k)) - 0.1
    pos = rng.permutation(20)[: 10 if k == 4 else 8]
    a.flat[pos] = np.abs(a.flat[pos])
    return a


def test_mask_value_length_checked_on_every_replay():
    """x[mask] = t with t's length the count of Trues: the replay writes at each call's mask,
    and where the count no longer fits it raises eager's error (not a frozen write)."""

    def body(x):
        h = x * 1
        h[x > 0.0] = (x * 3).flatten()[:8]
        return h

    fn = no_grad(body)
    compiled = descent.compile(fn)
    fits = [0, 1, 2, 3, 5]
    for k in range(6):
        x = descent.tensor(_counts(k))
        if k in fits:
            assert np.array_equal(fn(x).numpy(), compiled(x).numpy())
            continue
        with pytest.raises(RuntimeError) as eager_error:
            fn(x)
        with pytest.raises(RuntimeError) as compiled_error:
            compiled(x)
        assert str(eager_error.value) == str(compiled_error.value)
    assert compiled.stats["replays"] >= 1 and compiled.stats["fallbacks"] == 0


def test_masked_scatter_short_source_raises_on_replay():
    """masked_scatter's source must hold the count of Trues: checked on each replay."""

    def fn(x):
        with descent.no_grad():
            return (x * 1).masked_scatter_(x > 0, x[0] * 2)  # 5 source elements

    def make(k):
        a = _data(k)
        a[a > 0] = -a[a > 0]
        a[0, : (4 if k < 4 else 1)] = 1.0 + k  # later calls: 1 True, then all 5 + more
        if k >= 4:
            a[1:3] = 1.0
        return a

    compiled = descent.compile(fn)
    for k in range(6):
        x = descent.tensor(make(k))
        if k < 4:
            assert np.array_equal(fn(x).numpy(), compiled(x).numpy())
            continue
        with pytest.raises(RuntimeError, match="source has 5 elements"):
            compiled(x)
    assert compiled.stats["replays"] >= 2


# -- 4. histogramdd edges, matrix_rank tolerances, cholesky_ex ----------------------------------


def _hist_edges(x):
    e0 = descent.sort(x[0]).values
    e1 = descent.sort(x[1, :3]).values
    h = descent.histogramdd(x[:, :2].reshape(-1, 2) * 0.9, bins=[e0, e1])
    return h.hist, h.bin_edges[0] * 1, h.bin_edges[1]


def _hist_edges_density(x):
    e0 = descent.sort(x[2]).values
    h = descent.histogramdd(x[:, 1:2] * 0.5, bins=[e0], weight=x[:, 0].abs(), density=True)
    return h.hist


def _diag(x):
    return descent.diag_embed(x[:, :4]) + 0.0  # singular values |x[i, j]|


RANK = {
    "atol": lambda x: descent.linalg.matrix_rank(_diag(x), atol=x[0, 4].abs()),
    "rtol": lambda x: descent.linalg.matrix_rank(_diag(x), rtol=x[1, 4].abs() * 0.5),
    "atol_rtol_batch": lambda x: descent.linalg.matrix_rank(
        _diag(x), atol=x[:, 4].abs() * 0.5, rtol=x[2, 4].abs() * 0.3),
    "tol": lambda x: descent.linalg.matrix_rank(_diag(x), tol=x[3, 4].abs()),
    "tol_positional_hermitian": lambda x: descent.linalg.matrix_rank(
        _diag(x), x[3, 4].abs(), True),
}


@pytest.mark.parametrize("name", ["hist_edges", "hist_edges_density", *sorted(RANK)])
def test_tensor_arguments_follow_each_call(name):
    fn = {"hist_edges": _hist_edges, "hist_edges_density": _hist_edges_density}.get(name)
    assert_replayed(*compare_calls(fn or RANK[name], _data))


def test_matrix_rank_tolerances_match_torch_and_change_between_calls():
    ranks = set()
    for k in range(6):
        a = _data(k)
        d = descent.diag_embed(descent.tensor(a[:, :4]))
        t = torch.diag_embed(torch.tensor(a[:, :4]))
        tol = np.abs(a[:, 4])
        for kw in ({"atol": tol}, {"rtol": tol * 0.5}, {"atol": tol * 0.5, "rtol": tol[2] * 0.3},
                   {"tol": tol[3]}):  # fmt: skip
            mine = descent.linalg.matrix_rank(
                d, **{n: descent.tensor(v) for n, v in kw.items()}).numpy()
            want = torch.linalg.matrix_rank(t, **{n: torch.tensor(v) for n, v in kw.items()})
            np.testing.assert_array_equal(mine, want.numpy())
            ranks.add(tuple(mine.reshape(-1)))
    assert len(ranks) > 3  # (the data change the ranks: a frozen count would show)


def test_histogramdd_edge_tensors_match_torch():
    for k in range(3):
        a = _data(k)
        x, t = descent.tensor(a), torch.tensor(a)
        mine = _hist_edges(x)
        e0, e1 = torch.sort(t[0]).values, torch.sort(t[1, :3]).values
        want = torch.histogramdd(t[:, :2].reshape(-1, 2) * 0.9, bins=[e0, e1])
        np.testing.assert_array_equal(mine[0].numpy(), want.hist.numpy())
        np.testing.assert_array_equal(mine[2].numpy(), want.bin_edges[1].numpy())


def _spd_then_not(k):
    """Calls 0-2: A = x x^T / 5 + I (positive-definite); later calls: one matrix of the batch
    is not (a negative diagonal entry, at another place each call)."""
    rng = np.random.default_rng(max(k - 1, 0) + 7)
    x = rng.standard_normal((3, 4, 4))
    a = x @ x.transpose(0, 2, 1) / 5 + np.eye(4)
    if k >= 3:
        j = k % 4
        a[k % 3, j, j] = -1.0
    return a


def test_cholesky_ex_not_positive_definite_on_a_later_call():
    """Recorded on positive-definite matrices, replayed on one that is not: eager's L (its
    partial factor there) and info, bitwise; before, the replay raised LinAlgError."""

    def fn(a):
        low, info = descent.linalg.cholesky_ex(a)
        up, info_u = descent.linalg.cholesky_ex(a, upper=True)
        return low * 1, info + 0, up, info_u

    assert_replayed(*compare_calls(fn, _spd_then_not))
    for k in (3, 4):
        a = _spd_then_not(k)
        low, info = descent.linalg.cholesky_ex(descent.tensor(a))
        tl, ti = torch.linalg.cholesky_ex(torch.tensor(a))
        np.testing.assert_array_equal(info.numpy(), ti.numpy())
        ok = ti.numpy() == 0
        np.testing.assert_allclose(low.numpy()[ok], tl.numpy()[ok], rtol=1e-12)


def test_cholesky_ex_gradient_replays_through_a_failing_matrix():
    """A training step through cholesky_ex: the failing matrix's factor is its partial one
    (gradient 0 there, as eager's), the others' gradients are torch's."""
    w0 = np.ones((4, 4)) + 0.1 * np.eye(4)  # A * w stays positive-definite (Schur product)
    w = descent.tensor(w0, requires_grad=True)

    def step(a):
        w.grad = None
        low, info = descent.linalg.cholesky_ex(a * w)
        loss = (low * low.tril(-1).exp()).sum()
        loss.backward()
        return loss, w.grad, info

    compiled = descent.compile(step)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(6):
            a0 = _spd_then_not(k)
            want = [v.numpy().copy() for v in step(descent.tensor(a0))]
            got = [v.numpy().copy() for v in compiled(descent.tensor(a0))]
            for p, q in zip(want, got, strict=True):
                assert np.array_equal(p, q), k
            tw = torch.tensor(w0, requires_grad=True)
            tl, ti = torch.linalg.cholesky_ex(torch.tensor(a0) * tw)
            ok = torch.tensor(ti.numpy() == 0)
            (tl[ok] * tl[ok].tril(-1).exp()).sum().backward()
            np.testing.assert_allclose(got[1], tw.grad.numpy(), rtol=1e-9, atol=1e-12)
            assert (got[2] != 0).sum() == (k >= 3)
    assert not [m for m in caught if issubclass(m.category, CompileWarning)]
    assert compiled.stats["replays"] == 4


# -- boolean-mask setitem recorded by autograd (a training step) --------------------------------

GRAPH_MASK = {
    "scalar": lambda M, h, x, b: _set(h, x > 0, 0.0),
    "broadcast_value": lambda M, h, x, b: _set(h, x[:, 0] > 0, b * 2),
    "zero_dim_value": lambda M, h, x, b: _set(h, x > 0.3, b.sum()),
    "mask_and_int": lambda M, h, x, b: _set(h, (x[:, 1] > 0, 2), b[0]),
}


@pytest.mark.parametrize("name", sorted(GRAPH_MASK))
def test_mask_setitem_in_a_training_step_replays(name):
    """h[mask] = v where h (or v) requires grad: SetItem holds the mask itself while a
    recording listens, a parameter bound to each call's mask (it ran eagerly before: its
    positions were computed from the values); gradients bitwise eager's, close to torch's."""
    write = GRAPH_MASK[name]
    w0 = _data(0, (5, 5))
    w = descent.tensor(w0, requires_grad=True)
    b = descent.tensor(w0[0], requires_grad=True)

    def step(x):
        w.grad = b.grad = None
        h = write(descent, x @ w, x, b)
        loss = (h**2).sum()
        loss.backward()
        return loss, w.grad, b.grad if b.grad is not None else w.grad * 0

    compiled = descent.compile(step)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(6):
            a = _data(k)
            want = [v.numpy().copy() for v in step(descent.tensor(a))]
            got = [v.numpy().copy() for v in compiled(descent.tensor(a))]
            for p, q in zip(want, got, strict=True):
                assert np.array_equal(p, q), k
            tw = torch.tensor(w0, requires_grad=True)
            tb = torch.tensor(w0[0], requires_grad=True)
            ta = torch.tensor(a)
            (write(torch, ta @ tw, ta, tb) ** 2).sum().backward()
            np.testing.assert_allclose(got[1], tw.grad.numpy(), rtol=1e-5, atol=1e-5)
            if tb.grad is not None:
                np.testing.assert_allclose(got[2], tb.grad.numpy(), rtol=1e-5, atol=1e-5)
    assert not [m for m in caught if issubclass(m.category, CompileWarning)]
    assert compiled.stats["replays"] == 4


PINV = {
    "atol": lambda x: descent.linalg.pinv(_diag(x), atol=x[0, 4].abs()),
    "rtol_batch": lambda x: descent.linalg.pinv(_diag(x), rtol=x[:, 4].abs() * 0.5),
    "atol_float_rtol_tensor": lambda x: descent.linalg.pinv(_diag(x), atol=0.2,
                                                            rtol=x[1, 4].abs()),
}


@pytest.mark.parametrize("name", sorted(PINV))
def test_pinv_tensor_tolerances_follow_each_call(name):
    """linalg.pinv's tensor atol/rtol are Pinv's parameters, computed through
    untracked.computed so that a replay binds each call's (they were frozen)."""
    assert_replayed(*compare_calls(PINV[name], _data))


def test_pinv_tensor_tolerance_gradient_replays_and_matches_torch():
    w0 = np.linspace(0.5, 1.5, 16).reshape(4, 4)
    w = descent.tensor(w0, requires_grad=True)

    def step(x):
        w.grad = None
        loss = descent.linalg.pinv(x * w, atol=x[0].abs().amax() * 0.2).sum()
        loss.backward()
        return loss, w.grad

    def make(k):
        return _data(k, (4, 4), np.float64)

    compiled = descent.compile(step)
    for k in range(6):
        a = make(k)
        want = [v.numpy().copy() for v in step(descent.tensor(a))]
        got = [v.numpy().copy() for v in compiled(descent.tensor(a))]
        for p, q in zip(want, got, strict=True):
            assert np.array_equal(p, q), k
        tw = torch.tensor(w0, requires_grad=True)
        ta = torch.tensor(a)
        torch.linalg.pinv(ta * tw, atol=ta[0].abs().amax() * 0.2).sum().backward()
        np.testing.assert_allclose(got[1], tw.grad.numpy(), rtol=1e-7, atol=1e-9)
    assert compiled.stats["replays"] == 4
