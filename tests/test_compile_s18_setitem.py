"""descent.compile replays advanced-index writes that autograd does not record (recorder.Write
with an index tuple holding arrays).

`h[idx] = v` with an integer index tensor, `h[descent.arange(n), y] = 0.0` under no_grad or on a
tensor that does not require grad writes into h's array without a graph node. The write's redo
(`view_write.redo_setitem`) carries the index tuple; the recorder rebinds each array in it to
its slot (recorder._items: an index the call took as an argument or computed follows its slot,
one from a Python list is a constant compared between the recordings), so the replay writes at
the positions of each call's index. A boolean mask's positions (computed from its values outside
the ops) still run the function eagerly. The first two calls share their data and later calls
differ, so a replay that froze the recorded index would differ from eager.
"""

import numpy as np
import pytest

import descent
from compile_harness import assert_replayed, compare_calls, no_grad


def _data(k, n=4, c=5, dtype=np.float32):
    """Call k's arguments: calls 0 and 1 the same, later ones different (a frozen index shows)."""
    rng = np.random.default_rng(max(k - 1, 0))
    x = descent.tensor(rng.standard_normal((n, c)).astype(dtype))
    y = descent.tensor(rng.integers(0, c, n))
    return x, y


def _row_col(x, y):  # the one-hot correction of a softmax gradient: h[arange(n), y] -= 1
    h = x.softmax(-1)
    h[descent.arange(x.shape[0]), y] = 0.0
    return h * 2


def _int_index(x, y):  # h[idx] = v with an index tensor argument and a computed value
    h = x * 1.5
    h[y % 4] = x[0] + 1
    return h


def _computed_index(x, y):  # an index computed by ops inside the call, and a column index
    h = x.exp()
    idx = (y + 1) % x.shape[1]
    h[:, idx[:3]] = -x[:, :3]
    h[1:, [0, 2]] = 7.0  # (a Python list: a constant index)
    return h.sum(1), h


def _tensor_value(x, y):  # the written values are a tensor the call computed, per call
    h = x.tanh()
    h[descent.arange(x.shape[0]), y] = x.sum(1)
    return h


def _twice(x, y):  # two writes, the second reading the first's result
    h = x + 0
    h[y % 4, y] = 1.0
    h[descent.arange(4), (y + 2) % 5] = h[:, 0] * 3
    return h.relu()


CASES = [_row_col, _int_index, _computed_index, _tensor_value, _twice]


@pytest.mark.parametrize("body", CASES, ids=lambda f: f.__name__.strip("_"))
def test_setitem_advanced_no_grad(body):
    assert_replayed(*compare_calls(no_grad(body), _data))


@pytest.mark.parametrize("body", [_row_col, _int_index], ids=["row_col", "int_index"])
def test_setitem_advanced_without_requires_grad(body):
    # (grad mode on; nothing requires grad: unrecorded too)
    assert_replayed(*compare_calls(body, _data))


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int64])
def test_setitem_advanced_dtypes(dtype):
    def body(x, y):
        h = x * 2
        h[descent.arange(4), y] = 3
        return h

    assert_replayed(*compare_calls(no_grad(body), lambda k: _data(k, dtype=dtype)))


def test_setitem_advanced_in_training_step():
    """A no-grad advanced write inside a step that also runs backward (a masked target)."""
    rng = np.random.default_rng(0)
    w = descent.tensor(rng.standard_normal((5, 5)).astype(np.float32), requires_grad=True)

    def step(x, y):
        w.grad = None
        logits = x @ w
        with descent.no_grad():
            target = logits.softmax(-1)
            target[descent.arange(4), y] = 1.0
        loss = ((logits.softmax(-1) - target) ** 2).sum()
        loss.backward()
        return loss, w.grad

    assert_replayed(*compare_calls(step, _data))


def test_mask_index_replays():
    """A boolean mask is repeated as the mask (indexing._mask_index), not its positions, so
    the replay writes at each call's places (session 19; it ran eagerly before)."""

    def body(x, y):
        h = x * 1
        h[x > 0] = 0.0
        h[y > 1, 0] = 5.0
        return h

    assert_replayed(*compare_calls(no_grad(body), _data))


def test_write_into_argument_replays():
    """An advanced write into an argument's array (the caller's state) ran eagerly until
    session 20; the replay writes into the same memory, as eager does."""

    def body(x, y):
        x[descent.arange(4), y] = 0.0
        return x * 1

    assert_replayed(*compare_calls(no_grad(body), _data))


# -- the in-place index ops under no_grad: the out-of-place op is recorded, the copy repeated --

INDEX_OPS = {
    "index_put_": lambda h, x, y: h.index_put_((y[:3] % 4, y[1:]), x[0, :3]),
    "index_put_accumulate": lambda h, x, y: h.index_put_((y[:3] % 4,), x[:3], accumulate=True),
    "index_fill_": lambda h, x, y: h.index_fill_(1, y[:2], -1.0),
    "index_copy_": lambda h, x, y: h.index_copy_(0, (y[:1] + 2) % 4, x[:1] * 2),
    "index_add_": lambda h, x, y: h.index_add_(0, y % 4, x, alpha=0.5),
    "scatter_": lambda h, x, y: h.scatter_(1, y.reshape(4, 1), x[:, :1]),
    "scatter_value": lambda h, x, y: h.scatter_(1, y.reshape(4, 1), 2.0),
    "scatter_add_": lambda h, x, y: h.scatter_add_(0, (y % 4).reshape(4, 1).expand(4, 5), x),
    "scatter_reduce_": lambda h, x, y: h.scatter_reduce_(
        0, (y % 4).reshape(4, 1).expand(4, 5), x, "amax"),
    "put_": lambda h, x, y: h.put_(y * 3, x[0, :4]),
}


@pytest.mark.parametrize("name", sorted(INDEX_OPS))
def test_index_op_in_place_no_grad(name):
    op = INDEX_OPS[name]

    def body(x, y):
        h = x * 1.5
        op(h, x, y)
        return h.exp()

    assert_replayed(*compare_calls(no_grad(body), _data))


def test_masked_scatter_replays():
    """masked_scatter_ takes the source's first values in the mask's places (a data-dependent
    count): one kernel through untracked.computed recomputes both per call (session 19)."""

    def body(x, y):
        h = x * 1
        h.masked_scatter_(x > 0, x * 3)
        return h

    assert_replayed(*compare_calls(no_grad(body), _data))


def test_zero_dim_index_tensor_falls_back():
    """A 0-d integer index tensor is read as a Python int (a basic index, as PyTorch's): the
    recording would keep the first call's int, so the call runs eagerly (it replayed the first
    recording's position before, wrong from the third call on)."""

    def body(x, y):
        h = x * 1
        t0 = y[0] % 4
        h[t0, y[1:3]] = 9.0
        return h, x[t0, y[1:3]], x[t0]

    compiled, warned = compare_calls(no_grad(body), _data)
    assert warned and compiled.stats["replays"] == 0
