"""Descent-side leftovers of the `index` fuzz mode's first campaign (tests/fuzz_s28.py index,
seed 29900001; docs/fuzz_long_run.md, "Session 29 (helper-224)"). Each case runs the same code
in descent and in torch 2.13: where torch raises, descent raises the same class (a subclass
counts, as in the fuzz); where it returns, the values, shapes and dtypes match."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent


def _outcome(m, fn):
    try:
        return None, fn(m)
    except Exception as e:  # noqa: BLE001 (the class is what is compared)
        return e, None


def _np(v):
    if isinstance(v, (tuple, list)):
        return [_np(u) for u in v]
    return v.detach().numpy()


def _check(fn):
    te, tv = _outcome(torch, fn)
    de, dv = _outcome(descent, fn)
    if te is not None:
        assert de is not None, f"torch raises {type(te).__name__}: {te}; descent returns {dv}"
        assert isinstance(de, type(te)), (
            f"descent {type(de).__name__}: {de} | torch {type(te).__name__}: {te}"
        )
        return
    assert de is None, f"descent raises {type(de).__name__}: {de}; torch returns"
    d, t = _np(dv), _np(tv)
    if not isinstance(t, list):
        d, t = [d], [t]
    for a, b in zip(d, t, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
        np.testing.assert_array_equal(a, b)


def _i(m, v):
    return m.tensor(v, dtype=m.int64)


# ---------------------------------------------------------------------------------------------
# 1. index_copy's checks in PyTorch's order and classes: the number of dimensions and of indices
# are IndexErrors, the dtype and the slices RuntimeErrors (index fuzz 29901578 and 20 more:
# a 0-d source with an empty index raised RuntimeError)

INDEX_COPY_CHECKS = {
    "scalar source, empty index": lambda m: m.tensor(1.0).index_copy(
        0, m.zeros(0, dtype=m.int64), m.tensor(2.0)
    ),
    "scalar source, two indices": lambda m: m.zeros(3).index_copy(0, _i(m, [0, 1]), m.tensor(2.0)),
    "dimensionality": lambda m: m.zeros(2, 3).index_copy(0, _i(m, [0]), m.zeros(3)),
    "number of indices": lambda m: m.zeros(2, 3).index_copy(0, _i(m, [0, 1]), m.zeros(1, 3)),
    "slice shapes": lambda m: m.zeros(2, 3).index_copy(0, _i(m, [0]), m.zeros(1, 2)),
    "dtype": lambda m: m.zeros(2, 3).index_copy(0, _i(m, [0]), m.zeros(1, 3, dtype=m.float64)),
    "2-d index": lambda m: m.zeros(2, 3).index_copy(0, _i(m, [[0]]), m.zeros(1, 3)),
    "out of range": lambda m: m.zeros(2).index_copy(0, _i(m, [5]), m.ones(1)),
    "negative": lambda m: m.zeros(2).index_copy(0, _i(m, [-1]), m.ones(1)),
    "0-d, one index": lambda m: m.tensor(1.0).index_copy(0, _i(m, [0]), m.tensor(2.0)),
}


@pytest.mark.parametrize("case", list(INDEX_COPY_CHECKS))
def test_index_copy_checks_classes(case):
    _check(INDEX_COPY_CHECKS[case])


# ---------------------------------------------------------------------------------------------
# 2. An index is not checked where the op has no element to write: PyTorch checks it inside its
# kernel's loop over the slices (index_copy, index_fill, index_put / setitem / getitem) or returns
# first (index_add_cpu_ with more than one dimension). Index fuzz 29909784, 29900581, 29914778,
# 29921782 and 14 more (descent refused the index).

EMPTY_SLICES = {
    "index_copy (3, 0, 3)": lambda m: m.empty(3, 0, 3, dtype=m.int64).index_copy(
        2, _i(m, [1, -3, -1]), m.empty(3, 0, 3, dtype=m.int64)
    ),
    "index_copy (2, 0) dim 0": lambda m: m.empty(2, 0).index_copy(0, _i(m, [5]), m.empty(1, 0)),
    "index_add (4, 0)": lambda m: m.empty(4, 0, dtype=m.int8).index_add(
        0, _i(m, [0, -4, -2]), m.empty(3, 0, dtype=m.int8), alpha=-1
    ),
    "index_add (0, 3) dim 1": lambda m: m.empty(0, 3).index_add(1, _i(m, [7]), m.empty(0, 1)),
    "index_add (2, 0) dim 1": lambda m: m.empty(2, 0).index_add(1, _i(m, [0, 5]), m.ones(2, 2)),
    "index_add 1-d (0,) still checks": lambda m: m.empty(0).index_add(0, _i(m, [0]), m.empty(1)),
    "index_add 1-d (2,) still checks": lambda m: m.zeros(2).index_add(0, _i(m, [5]), m.ones(1)),
    "index_fill (0, 2, 1)": lambda m: m.empty(0, 2, 1).index_fill(2, _i(m, [3, -1, 0]), 0.5),
    "index_fill (2, 0) dim 0": lambda m: m.empty(2, 0).index_fill(0, _i(m, [5]), 0.5),
    "index_fill (2, 3) still checks": lambda m: m.zeros(2, 3).index_fill(0, _i(m, [5]), 0.5),
    "index_put (4, 0)": lambda m: m.empty(4, 0, dtype=m.int8).index_put(
        (_i(m, [1, 7]),), m.tensor(3, dtype=m.int8)
    ),
    "index_put (4, 0) accumulate": lambda m: m.empty(4, 0, dtype=m.int8).index_put(
        (_i(m, [1, -7]),), m.tensor(3, dtype=m.int8), accumulate=True
    ),
    "index_put (4, 2) still checks": lambda m: m.zeros(4, 2, dtype=m.int8).index_put(
        (_i(m, [1, 7]),), m.tensor(3, dtype=m.int8)
    ),
    "getitem (3, 0, 3) [..., [-4]]": lambda m: m.empty(3, 0, 3)[..., _i(m, [-4])],
    "getitem (3, 0, 3) [[5, 1]]": lambda m: m.empty(3, 0, 3)[_i(m, [5, 1])],
    "getitem (0, 3) [[5]] still checks": lambda m: m.empty(0, 3)[_i(m, [5])],
}


def _setitem(m, shape, idx, value):
    y = m.zeros(*shape)
    y[idx(m)] = value
    return y


SETITEMS = {
    "(3, 0, 3) [..., [-4, 2, 1]]": ((3, 0, 3), lambda m: (..., _i(m, [-4, 2, 1])), 2.5),
    "(3, 0, 3) [[5]]": ((3, 0, 3), lambda m: _i(m, [5]), 2.5),
    "(3, 0) [[5]]": ((3, 0), lambda m: _i(m, [5]), 2.5),
    "(3, 2) [[5]] still checks": ((3, 2), lambda m: _i(m, [5]), 2.5),
}


@pytest.mark.parametrize("case", list(EMPTY_SLICES))
def test_empty_slices_do_not_check_indices(case):
    _check(EMPTY_SLICES[case])


@pytest.mark.parametrize("case", list(SETITEMS))
def test_setitem_empty_slices_do_not_check_indices(case):
    shape, idx, value = SETITEMS[case]
    _check(lambda m: _setitem(m, shape, idx, value))


@pytest.mark.parametrize("op", ["index_copy", "index_add", "index_fill", "getitem"])
def test_empty_slices_gradients(op):
    """The ops on an empty x stay differentiable: empty gradients of the right shapes. (PyTorch's
    index_copy / index_add backward gathers the source's gradient at the unchecked indices and
    refuses them; descent's gradient is the empty one, a superset.)"""
    outs = []
    for m in (descent,) if op in ("index_copy", "index_add") else (descent, torch):
        x = m.empty(2, 0, 3, dtype=m.float64, requires_grad=True)
        s = m.empty(2, 0, 2, dtype=m.float64, requires_grad=True)
        i = _i(m, [4, -9])
        if op == "index_copy":
            y, ins = x.index_copy(2, i, s), [x, s]
        elif op == "index_add":
            y, ins = x.index_add(2, i, s), [x, s]
        elif op == "index_fill":
            y, ins = x.index_fill(2, i, 1.5), [x]
        else:
            y, ins = x[:, :, i], [x]
        outs.append([_np(y)] + _np(list(m.autograd.grad(y.sum(), ins))))
    want = [(2, 0, 2) if op == "getitem" else (2, 0, 3), (2, 0, 3)]
    want += [(2, 0, 2)] if op in ("index_copy", "index_add") else []
    assert [a.shape for a in outs[0]] == want, [a.shape for a in outs[0]]
    for a, b in zip(outs[0], outs[-1], strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype


# ---------------------------------------------------------------------------------------------
# 3. index_put's dtype check comes before the indices' bounds (PyTorch's
# make_index_put_iterator; the bounds are its kernel's): index fuzz 29909444, 29914795


@pytest.mark.parametrize("idx", [[-5, 2], []])
@pytest.mark.parametrize("shape", [(4, 0), (4, 2), (0, 2), (0,)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put_dtype_before_bounds(shape, accumulate, idx):
    """...but after AdvancedIndex's IndexError for an index into a 0-size dimension (index
    fuzz 30009115, 30022440)."""
    _check(lambda m: m.zeros(*shape, dtype=m.int8).index_put(
        (_i(m, idx),), m.tensor(0), accumulate=accumulate))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 4. bool index_add takes alpha as a bool, self | (alpha & source) (index fuzz 29903263,
# 29912100, 29912468, 29917061: descent's 1 + (-1) * 1 cleared the entry)


@pytest.mark.parametrize("alpha", [-1, 0, 1, 2.5, True, False])
@pytest.mark.parametrize("two_d", [False, True])
def test_bool_index_add_alpha(alpha, two_d):
    def fn(m):
        x = m.tensor([[True, True, False, False]])
        s = m.tensor([[True, False, True, False]])
        if not two_d:
            x, s = x[0], s[0, :2]
            return x.index_add(0, _i(m, [0, 2]), s, alpha=alpha)
        return x.index_add(0, _i(m, [0]), s, alpha=alpha)

    _check(fn)


# ---------------------------------------------------------------------------------------------
# 5. unique with dim and a 0-size dimension: PyTorch's _unique_dim_cpu_impl refuses another
# 0-size dimension than dim, and two of them (index fuzz 29902337, 29921438, 29927554, 29934969)

UNIQUE = [((4, 0, 3), 0), ((4, 0, 3), -3), ((4, 0, 3), 1), ((4, 0, 0), 1), ((0, 3), 0),
          ((0, 3), 1), ((2, 3), 0)]  # fmt: skip


@pytest.mark.parametrize(("shape", "dim"), UNIQUE)
@pytest.mark.parametrize("dtype", ["float32", "bool"])
def test_unique_dim_zero_size(shape, dim, dtype):
    _check(lambda m: m.unique(m.zeros(*shape, dtype=getattr(m, dtype)), dim=dim,
                              return_inverse=True, return_counts=True))  # fmt: skip


@pytest.mark.parametrize(
    ("shape", "dim"), [((0, 0), -1), ((0, 0, 2), 0), ((0, 3), 0), ((4, 0, 3), 0)]
)
def test_unique_consecutive_dim_zero_size(shape, dim):
    """unique_consecutive refuses two 0-size dimensions too (index fuzz 29998412)."""
    _check(lambda m: m.unique_consecutive(m.zeros(*shape), dim=dim, return_counts=True))


# ---------------------------------------------------------------------------------------------
# 6. cumsum / cumprod with dtype=bool of a 0-d or empty tensor: PyTorch never reaches its kernel
# (which has no bool version) and returns the copy cast to bool (index fuzz 30030163, 30048930,
# 30057613, 30059158, 30102470, 30105522: descent refused them)

BOOL_SCANS = [("cumsum", (), "int32", 0), ("cumsum", (), "float32", -1),
              ("cumsum", (0,), "int32", 0),
              ("cumsum", (2, 0), "int64", 1), ("cumsum", (0, 2), "float32", None),
              ("cumsum", (1,), "int32", 0), ("cumsum", (2, 2), "int32", 1),
              ("cumsum", (), "int32", 1), ("cumprod", (), "int32", 0),
              ("cumprod", (), "float32", -1), ("cumprod", (0,), "int32", 0),
              ("cumprod", (2, 0), "int64", 1), ("cumprod", (1,), "int32", 0),
              ("cumprod", (2, 2), "int32", 1), ("cumprod", (), "int32", 1)]  # fmt: skip


@pytest.mark.parametrize(("op", "shape", "dtype", "dim"), BOOL_SCANS)
def test_bool_scan_of_0d_or_empty(op, shape, dtype, dim):
    def fn(m):
        x = m.full(shape, -5, dtype=getattr(m, dtype))
        if dim is None:  # (cumsum of the flattened tensor)
            return m.cumsum(x.flatten(), 0, dtype=m.bool)
        return getattr(m, op)(x, dim, dtype=m.bool)

    _check(fn)


# ---------------------------------------------------------------------------------------------
# 7. scatter_reduce 'amax' / 'amin' with include_self: a slot no index reaches passes x's value
# through, nan too, so its gradient is gy (descent gave 0: nan != nan; PyTorch gives nan, a KNOWN
# class of tests/fuzz_s28.py). Index fuzz 30087800.


@pytest.mark.parametrize("reduce", ["amax", "amin"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_scatter_reduce_minmax_untouched_nan_gradient(reduce, dtype):
    grads = []
    for m in (descent, torch):
        dt = getattr(m, dtype)
        x = m.tensor([-0.1, float("inf"), float("nan"), -0.48], dtype=dt, requires_grad=True)
        s = m.tensor([0.2, 0.3], dtype=dt, requires_grad=True)
        r = m.scatter_reduce(x, 0, m.tensor([3, 0]), s, reduce, include_self=True)
        w = m.arange(4, dtype=dt) + 1
        grads.append(_np(list(m.autograd.grad((r * w).sum(), [x, s]))))
    (dx, ds), (tx, ts) = grads
    assert dx[2] == 3  # x[2] = nan passes through: gy
    mask = np.arange(4) != 2  # (PyTorch's nan there)
    np.testing.assert_array_equal(dx[mask], tx[mask])
    np.testing.assert_array_equal(ds, ts)
