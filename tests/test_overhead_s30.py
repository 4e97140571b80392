"""Session 30's per-call work (helper-230) keeps the values and semantics of the paths it changed.

- cat / stack check their common case (NumPy arrays of one dtype and shape apart from the axis,
  an int dim) on the arrays' plain shape tuples (`ops/shape._join_fast`) and record the join
  directly: the same values, gradients, dtypes and errors as the full path.
- binary_cross_entropy's range checks of input and target are a min and a max
  (`_loss._outside_unit`) where a mask made five passes: the same refusals (nan, inf, -tiny,
  1 + ulp) and acceptances (-0.0, 0, 1).
- nll_loss's gather index (`ops/loss._nll_index`) with every target a class and an
  ignore_index outside the classes is one uint64 maximum and a copy; its 'mean' count
  (`_loss._nll_count`) is a count_nonzero: bitwise the arrays of the general path.
- cross_entropy's NumPy range check of int64 targets is one uint64 maximum: the same errors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds
import descent.nn.functional as F
from descent.errors import DescentError, DimensionError
from descent.nn.functional import _loss, _pooling
from descent.ops import loss as _ops_loss
from descent.ops import shape as _shape


def _bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert a.tobytes() == b.tobytes()


# ---------------------------------------------------------------------------------------------
# cat / stack


def _join_cases():
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    return [
        ("cat", [f(2, 3), f(4, 3), f(1, 3)], 0),
        ("cat", [f(2, 3), f(2, 5)], 1),
        ("cat", [f(2, 3), f(2, 5)], -1),
        ("cat", [f(2, 3, 4), f(2, 1, 4), f(2, 2, 4)], -2),
        ("cat", [f(5), f(3), f(0)], 0),
        ("cat", [f(2, 0), f(2, 3)], 1),
        ("cat", [f(3, 4)], 0),
        ("stack", [f(2, 3), f(2, 3), f(2, 3)], 0),
        ("stack", [f(2, 3), f(2, 3)], 2),
        ("stack", [f(2, 3), f(2, 3)], -1),
        ("stack", [f(2, 3), f(2, 3)], -3),
        ("stack", [f(4), f(4)], 1),
        ("stack", [np.float32(1.5) * np.ones((), np.float32), np.zeros((), np.float32)], 0),
    ]


@pytest.mark.parametrize("case", range(len(_join_cases())))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_join_fast_path_agrees_with_torch(case, dtype):
    op, arrays, dim = _join_cases()[case]
    arrays = [a.astype(dtype) for a in arrays]
    ts = [ds.tensor(a, requires_grad=True) for a in arrays]
    assert _shape._join_fast(ts, dim, int(op == "stack")) is not None  # the path under test
    tt = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = getattr(ds, op)(ts, dim=dim)
    yt = getattr(torch, op)(tt, dim=dim)
    _bits(y.detach().numpy(), yt.detach().numpy())
    assert y.grad_fn.name() == yt.grad_fn.name()
    gy = np.random.default_rng(1).standard_normal(tuple(yt.shape)).astype(dtype)
    y.backward(ds.tensor(gy))
    yt.backward(torch.tensor(gy))
    for a, b in zip(ts, tt):
        _bits(a.grad.numpy(), b.grad.numpy())


@pytest.mark.parametrize("op", ["cat", "stack"])
def test_join_fast_path_gradcheck_float64(op):
    rng = np.random.default_rng(2)
    a = ds.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = ds.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    w = ds.tensor(rng.standard_normal((4, 3) if op == "cat" else (2, 2, 3)))
    assert ds.autograd.gradcheck(lambda a, b: (getattr(ds, op)([a, b], 0) * w).sum(), (a, b))


def test_join_fast_path_keeps_partial_requires_grad_and_non_contiguous():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((4, 6)).astype(np.float32)
    a = ds.tensor(base, requires_grad=True)
    b = ds.tensor(rng.standard_normal((3, 4)).astype(np.float32))  # no grad
    at = torch.tensor(base, requires_grad=True)
    bt = torch.tensor(b.numpy())
    y = ds.cat([a[:, ::2].transpose(0, 1), b], 0)  # (3, 4) strided view + (3, 4)
    yt = torch.cat([at[:, ::2].transpose(0, 1), bt], 0)
    _bits(y.detach().numpy(), yt.detach().numpy())
    y.sum().backward()
    yt.sum().backward()
    _bits(a.grad.numpy(), at.grad.numpy())
    assert b.grad is None
    with ds.no_grad():
        assert not ds.stack([a, a]).requires_grad


@pytest.mark.parametrize(
    "op, arrays, dim",
    [
        ("cat", [np.zeros((2, 3), np.int64), np.ones((1, 3), np.int64)], 0),
        ("cat", [np.zeros((2, 3), bool), np.ones((2, 1), bool)], 1),
        ("stack", [np.arange(3), np.arange(3)], 1),
    ],
)
def test_join_fast_path_integer_and_bool(op, arrays, dim):
    y = getattr(ds, op)([ds.tensor(a) for a in arrays], dim=dim)
    yt = getattr(torch, op)([torch.tensor(a) for a in arrays], dim=dim)
    _bits(y.numpy(), yt.numpy())


@pytest.mark.parametrize(
    "op, arrays, dim",
    [
        ("cat", [np.zeros((2, 3), np.float32), np.ones((1, 3), np.float64)], 0),  # promotes
        ("cat", [np.zeros((2, 3), np.float32), np.ones((1, 3), np.int64)], 0),
        ("cat", [np.zeros((2, 3), np.float32), np.zeros((0,), np.float32)], 1),  # legacy empty
        ("cat", [np.zeros((0,), np.float32), np.zeros((2, 3), np.float32)], 0),
        ("stack", [np.zeros(3, np.float16), np.ones(3, np.float32)], 0),
    ],
)
def test_join_full_path_still_serves_the_rest(op, arrays, dim):
    ts = [ds.tensor(a) for a in arrays]
    assert _shape._join_fast(ts, dim, int(op == "stack")) is None
    y = getattr(ds, op)(ts, dim=dim)
    yt = getattr(torch, op)([torch.tensor(a) for a in arrays], dim=dim)
    _bits(y.numpy(), yt.numpy())


_JOIN_ERRORS = (DescentError, DimensionError)


@pytest.mark.parametrize(
    "op, shapes, dim",
    [
        ("cat", [(2, 3), (2, 4)], 0),  # sizes differ off the axis
        ("cat", [(2, 3), (2, 3, 1)], 0),  # ranks differ
        ("cat", [(2, 3), (2, 3)], 2),  # dim out of range
        ("cat", [(2, 3), (2, 3)], -3),
        ("cat", [(), ()], 0),  # 0-d
        ("stack", [(2, 3), (3, 2)], 0),
        ("stack", [(2, 3), (2, 3)], 3),
        ("stack", [(2, 3), (2, 3)], -4),
    ],
)
def test_join_errors_unchanged(op, shapes, dim, monkeypatch):
    ts = [ds.tensor(np.zeros(s, np.float32)) for s in shapes]
    with pytest.raises(_JOIN_ERRORS) as e:
        getattr(ds, op)(ts, dim=dim)
    with pytest.raises((RuntimeError, IndexError)):
        getattr(torch, op)([torch.zeros(s) for s in shapes], dim=dim)
    assert op in str(e.value)
    monkeypatch.setattr(_shape, "_join_fast", lambda *a: None)  # the full path's error
    with pytest.raises(_JOIN_ERRORS) as full:
        getattr(ds, op)(ts, dim=dim)
    assert type(full.value) is type(e.value) and str(full.value) == str(e.value)


def test_join_dim_keyword_numpy_int_and_bool_take_the_full_path():
    a = ds.ones(2, 3)
    assert _shape._join_fast([a, a], np.int64(1), 0) is None
    _bits(ds.cat([a, a], np.int64(1)).numpy(), np.ones((2, 6), np.float32))
    assert _shape._join_fast([a, a], True, 0) is None


# ---------------------------------------------------------------------------------------------
# binary_cross_entropy's range checks


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_outside_unit_is_the_mask(dtype):
    one = dtype(1)
    specials = [
        [0.0], [-0.0], [1.0], [0.5, 0.25], [np.nan], [0.5, np.nan], [np.inf], [-np.inf],
        [-np.finfo(dtype).smallest_subnormal], [np.nextafter(one, dtype(2))], [2.0], [-1.0],
        [],
    ]  # fmt: skip
    for v in specials:
        a = np.array(v, dtype=dtype)
        mask = bool((~((a >= 0) & (a <= 1))).any())
        assert _loss._outside_unit(a) is mask, v
        assert _loss._outside_unit(a.reshape(-1, 1)[::-1]) is mask, v  # strided


@pytest.mark.parametrize("bad", ["input nan", "input 1+", "input -0.1", "target nan", "target 2"])
def test_bce_refusals_unchanged(bad):
    p = np.full((2, 3), 0.5, np.float32)
    y = np.full((2, 3), 0.25, np.float32)
    arr = p if bad.startswith("input") else y
    arr[1, 2] = {"nan": np.nan, "1+": np.nextafter(np.float32(1), 2), "-0.1": -0.1, "2": 2.0}[
        bad.split()[1]
    ]
    with pytest.raises(ds.DescentError, match="between 0 and 1"):
        F.binary_cross_entropy(ds.tensor(p), ds.tensor(y))
    with pytest.raises(RuntimeError):
        torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(y))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_edges_agree_with_torch(reduction):
    p = np.array([[0.0, -0.0, 1.0], [0.3, 0.7, 1e-30]], np.float32)
    y = np.array([[0.0, 1.0, 1.0], [0.5, -0.0, 0.0]], np.float32)
    pd_, pt = ds.tensor(p, requires_grad=True), torch.tensor(p, requires_grad=True)
    ld = F.binary_cross_entropy(pd_, ds.tensor(y), reduction=reduction)
    lt = torch.nn.functional.binary_cross_entropy(pt, torch.tensor(y), reduction=reduction)
    np.testing.assert_allclose(ld.detach().numpy(), lt.detach().numpy(), rtol=1e-6)
    ld.sum().backward()
    lt.sum().backward()
    np.testing.assert_allclose(pd_.grad.numpy(), pt.grad.numpy(), rtol=1e-6)
    empty = F.binary_cross_entropy(ds.zeros(0), ds.zeros(0), reduction=reduction)
    empty_t = torch.nn.functional.binary_cross_entropy(
        torch.zeros(0), torch.zeros(0), reduction=reduction
    )
    np.testing.assert_array_equal(empty.numpy(), empty_t.numpy())


# ---------------------------------------------------------------------------------------------
# nll_loss's index and count, cross_entropy's range check


def _index_general(t, ignore_index, n_cls):
    """_nll_index's general path (the mask, where, min and max)."""
    valid = t != ignore_index
    index = np.where(valid, t, 0)
    if index.size and (
        (valid & ((t < 0) | (t >= n_cls))).any()
        if n_cls == 0
        else (index.min() < 0 or index.max() >= n_cls)
    ):
        raise IndexError
    return index.reshape(index.shape[:1] + (1,) + index.shape[1:]).astype(np.int64, copy=False)


_TARGETS = [
    (np.array([3, 0, 4, 4]), -100, 5),
    (np.array([3, 0, 4, -100]), -100, 5),  # ignored rows: the general path
    (np.array([3, 0, 4, 4]), 0, 5),  # ignore_index a class: the general path
    (np.array([3, 255, 4]), 255, 5),  # ignore_index above the classes
    (np.array([[1, 2], [0, 2]]), -100, 3),  # spatial (N, d)
    (np.array([[1, 2], [0, 2]])[:, ::-1], -100, 3),  # strided
    (np.array(2), -100, 3),  # 0-d
    (np.zeros(0, np.int64), -100, 3),  # empty
    (np.array([1, 5]), -100, 5),  # out of range: IndexError
    (np.array([1, -1]), -100, 5),
    (np.array([1, -(2**63)]), -100, 5),
    (np.array([1, 2], np.uint8), -100, 5),
    (np.array([1, 7], np.uint8), -100, 5),
    (np.array([-100, -100]), -100, 0),
]


@pytest.mark.parametrize("case", range(len(_TARGETS)))
def test_nll_index_is_the_general_path(case):
    t, ii, n_cls = _TARGETS[case]
    try:
        want = _index_general(t, ii, n_cls)
    except IndexError:
        with pytest.raises(IndexError, match="out of range"):
            _ops_loss._nll_index(t, ii, n_cls)
        return
    got = _ops_loss._nll_index(t, ii, n_cls)
    _bits(got, want)
    assert got.flags.c_contiguous and not np.shares_memory(got, t)


@pytest.mark.parametrize("case", range(len(_TARGETS)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nll_count_is_the_summed_weights(case, dtype):
    t, ii, _ = _TARGETS[case]
    dt = np.dtype(dtype)
    _bits(_loss._nll_count(t, ii, dt), _loss._nll_total(_loss._nll_weights(t, ii, dt)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [-100, 0, 2, 9])
@pytest.mark.parametrize("shape", [(6, 5), (5,), (3, 5, 2)])
def test_nll_loss_agrees_with_torch(shape, ignore_index, reduction):
    rng = np.random.default_rng(4)
    x = np.log(rng.dirichlet(np.ones(5), size=int(np.prod(shape)) // 5)).astype(np.float32)
    x = x.reshape((shape[0], *shape[2:], 5)) if len(shape) > 1 else x.reshape(5)
    if len(shape) == 3:
        x = np.moveaxis(x, -1, 1)
    tshape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    t = rng.integers(0, 5, tshape)
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    kw = dict(ignore_index=ignore_index, reduction=reduction)
    ld = F.nll_loss(xd, ds.tensor(t), **kw)
    lt = torch.nn.functional.nll_loss(xt, torch.tensor(t), **kw)
    np.testing.assert_allclose(ld.detach().numpy(), lt.detach().numpy(), rtol=1e-6)
    gy = rng.standard_normal(tuple(lt.shape)).astype(np.float32)
    ld.backward(ds.tensor(gy))
    lt.backward(torch.tensor(gy))
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-6)


def test_nll_loss_float64_gradcheck_and_errors():
    rng = np.random.default_rng(5)
    x = ds.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    t = ds.tensor(np.array([2, 0, 1, 1]))
    assert ds.autograd.gradcheck(lambda x: F.nll_loss(x, t), (x,))
    assert ds.autograd.gradgradcheck(lambda x: F.nll_loss(x * x, t), (x,))
    for bad in ([2, 0, 3, 1], [2, -1, 1, 1]):
        with pytest.raises(IndexError, match="nll_loss: a target is out of range for 3"):
            F.nll_loss(x, ds.tensor(np.array(bad)))
    with pytest.raises(ds.DescentError, match="does not match input"):
        F.nll_loss(x, ds.tensor(np.array([1, 2])))
    with pytest.raises(ds.DescentError, match="Long or Byte"):
        F.nll_loss(x, ds.tensor(np.array([1, 2, 0, 1], np.int32)))


@pytest.mark.parametrize("bad", [5, -1, -(2**63)])
def test_cross_entropy_range_errors_unchanged(bad):
    x = ds.zeros(3, 5)
    t = np.array([1, bad, 0])
    with pytest.raises(IndexError, match=f"cross_entropy: target {bad} is out of range for 5"):
        F.cross_entropy(x, ds.tensor(t))
    with pytest.raises(IndexError):
        torch.nn.functional.cross_entropy(torch.zeros(3, 5), torch.tensor(t))


@pytest.mark.parametrize("tdtype", [np.int64, np.uint8])
@pytest.mark.parametrize("ignore_index", [-100, 1, 200])
def test_cross_entropy_ignored_and_uint8_targets_agree_with_torch(tdtype, ignore_index):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    t = np.array([1, 4, 0, 1, 3, 2]).astype(tdtype)
    if tdtype == np.int64 and ignore_index != 1:
        t[2] = ignore_index
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ld = F.cross_entropy(xd, ds.tensor(t), ignore_index=ignore_index)
    lt = torch.nn.functional.cross_entropy(xt, torch.tensor(t), ignore_index=ignore_index)
    np.testing.assert_allclose(ld.detach().numpy(), lt.detach().numpy(), rtol=1e-6)
    ld.backward()
    lt.backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# the losses' 'mean' (ops/loss._mean_all: NumPy's _mean without its Python layers)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7,), (8, 16), (3, 5, 7), (129,), (1000, 17), (70001,)])
def test_mean_all_is_numpys_mean(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    a = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(dtype)
    _bits(_ops_loss._mean_all(a), a.mean())
    _bits(_ops_loss._mean_all(a.T), a.T.mean())  # strided
    b = a.copy()
    b.flat[0] = np.inf
    _bits(_ops_loss._mean_all(b), b.mean())
    b.flat[-1] = np.nan
    _bits(_ops_loss._mean_all(b), b.mean())
    big = np.full(shape, np.finfo(dtype).max / 2, dtype)
    with np.errstate(over="ignore"):
        _bits(_ops_loss._mean_all(big), big.mean())


def test_mean_all_other_arrays_are_mean():
    h = np.arange(10, dtype=np.float16)
    _bits(_ops_loss._mean_all(h), h.mean())
    z = np.array(2.5, np.float32)
    _bits(_ops_loss._mean_all(z), z.mean())


@pytest.mark.parametrize(
    "name",
    ["mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "l1_loss",
     "smooth_l1_loss", "huber_loss"],
)  # fmt: skip
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mean_losses_agree_with_torch(name, dtype):
    rng = np.random.default_rng(7)
    x = rng.random((33, 7)).astype(dtype)
    y = rng.random((33, 7)).astype(dtype)
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ld = getattr(F, name)(xd, ds.tensor(y))
    lt = getattr(torch.nn.functional, name)(xt, torch.tensor(y))
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(ld.detach().numpy(), lt.detach().numpy(), rtol=tol)
    ld.backward()
    lt.backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=tol, atol=tol * 1e-3)
    if dtype == np.float64:
        x64 = ds.tensor(x, requires_grad=True)
        assert ds.autograd.gradcheck(lambda v: getattr(F, name)(v, ds.tensor(y)), (x64,))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("spatial", [False, True])
def test_nll_loss_node_replays_each_calls_target(reduction, spatial):
    """NllLoss makes its index, mask and count from the target in forward: descent.compile
    rebinds the target parameter to each call's, so every call replays with eager's bits
    (ignored rows, all ignored, targets of other classes)."""
    from compile_harness import compare_calls  # noqa: PLC0415 - tests/ on the path

    rng = np.random.default_rng(8)
    w = ds.tensor(np.linspace(-1, 1, 6, dtype=np.float32), requires_grad=True)
    shape = (4, 6, 3) if spatial else (4, 6)
    xs = [rng.standard_normal(shape).astype(np.float32) for _ in range(5)]
    targets = [[1, 2, 0, 5], [1, 2, 0, 5], [3, -100, 4, 4], [0, 0, 1, 2], [-100] * 4]
    targets = [np.array(t) if not spatial else np.tile(np.array(t)[:, None], (1, 3))
               for t in targets]  # fmt: skip
    wv = w.reshape(1, 6, 1) if spatial else w

    def step(x, y):
        loss = F.nll_loss(F.log_softmax(x * wv, 1), y, reduction=reduction)
        (loss.sum() if reduction == "none" else loss).backward()
        return loss

    c, warned = compare_calls(
        step, lambda k: (ds.tensor(xs[k]), ds.tensor(targets[k])), calls=5, leaves=[w]
    )
    assert not warned
    assert c.stats["replays"] == 3 and c.stats["fallbacks"] == 0


# ---------------------------------------------------------------------------------------------
# the 2-D pools' geometry (_pooling._pool_geom on the plain shape tuple; ceil_mode's extra
# rows only computed with ceil_mode)


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize(
    "shape, k, s, p",
    [((2, 3, 8, 8), 3, 2, 1), ((1, 2, 5, 7), 2, 2, 0), ((1, 1, 4, 6), (3, 2), (2, 3), (1, 1)),
     ((2, 3, 16), 2, 2, 0), ((2, 3, 9), 3, 2, 1), ((3, 7, 7), 3, 3, 1)],
)  # fmt: skip
def test_pool_geometry_agrees_with_torch(shape, k, s, p, ceil_mode):
    rng = np.random.default_rng(9)
    x = rng.standard_normal(shape).astype(np.float32)
    one_d = len(shape) == 3 and not isinstance(k, tuple) and shape[-1] in (16, 9)
    for name in ("max_pool", "avg_pool"):
        fn = name + ("1d" if one_d else "2d")
        xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yd = getattr(F, fn)(xd, k, s, p, ceil_mode=ceil_mode)
        yt = getattr(torch.nn.functional, fn)(xt, k, s, p, ceil_mode=ceil_mode)
        np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-6)
        gy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
        yd.backward(ds.tensor(gy))
        yt.backward(torch.tensor(gy))
        np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("fn", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("hw, k", [((2, 5), 3), ((1, 5), 3), ((4, 4), 5), ((3, 3), (2, 4))])
def test_pool_kernel_larger_than_input_as_torch(fn, ceil_mode, hw, k):
    try:
        want = tuple(getattr(torch.nn.functional, fn)(torch.zeros(1, 1, *hw), k,
                                                      ceil_mode=ceil_mode).shape)  # fmt: skip
    except RuntimeError:
        with pytest.raises(ds.DescentError, match="larger than the input"):
            getattr(F, fn)(ds.zeros(1, 1, *hw), k, ceil_mode=ceil_mode)
        return
    assert tuple(getattr(F, fn)(ds.zeros(1, 1, *hw), k, ceil_mode=ceil_mode).shape) == want


# ---------------------------------------------------------------------------------------------
# the 1-D pools' common call (_pooling._geom_1d: the 2-D node's geometry without the checks)

_POOL1D = [
    ("max_pool1d", dict(kernel_size=2)),
    ("max_pool1d", dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool1d", dict(kernel_size=3, stride=1, padding=1, dilation=2)),
    ("max_pool1d", dict(kernel_size=4, stride=3)),
    ("avg_pool1d", dict(kernel_size=2)),
    ("avg_pool1d", dict(kernel_size=3, stride=2, padding=1)),
    ("avg_pool1d", dict(kernel_size=5, stride=1, padding=2, count_include_pad=True)),
    ("avg_pool1d", dict(kernel_size=3, stride=2, padding=0, count_include_pad=False)),
]


@pytest.mark.parametrize("case", range(len(_POOL1D)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pool1d_fast_path_bitwise_full_path_and_torch(case, dtype, monkeypatch):
    name, kw = _POOL1D[case]
    rng = np.random.default_rng(10)
    x = (rng.standard_normal((2, 3, 16)) * 10).astype(dtype)
    x[0, 0, 3] = np.nan
    x[1, 2, 5:7] = -0.0
    x[1, 1, 8] = np.inf
    gy = None
    res = []
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(_pooling, "_geom_1d", lambda *a: None)
        else:
            k, d = kw["kernel_size"], kw.get("dilation", 1)
            assert _pooling._geom_1d(ds.tensor(x), k, kw.get("stride"), kw.get("padding", 0), d)
        xd = ds.tensor(x, requires_grad=True)
        y = getattr(F, name)(xd, **kw)
        if gy is None:
            gy = rng.standard_normal(tuple(y.shape)).astype(dtype)
        y.backward(ds.tensor(gy))
        res.append((y.detach().numpy(), xd.grad.numpy(), y.grad_fn.name()))
    _bits(res[0][0], res[1][0])
    _bits(res[0][1], res[1][1])
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(torch.nn.functional, name)(xt, **kw)
    yt.backward(torch.tensor(gy))
    assert res[0][2] == res[1][2] == yt.grad_fn.name()
    np.testing.assert_allclose(res[0][0], yt.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(res[0][1], xt.grad.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["max_pool1d", "avg_pool1d"])
def test_pool1d_fast_path_float64_gradcheck(name):
    x = ds.tensor(np.random.default_rng(11).standard_normal((2, 2, 7)), requires_grad=True)
    assert ds.autograd.gradcheck(lambda v: getattr(F, name)(v, 3, 2, 1), (x,))


@pytest.mark.parametrize(
    "args",
    [(3, 1, 2), (0,), (2, 0), (2, 1, -1), (20,), ((2,),), (2, (2,))],
)
@pytest.mark.parametrize("name", ["max_pool1d", "avg_pool1d"])
def test_pool1d_uncommon_calls_take_the_checked_path(name, args):
    x = ds.tensor(np.arange(12, dtype=np.float32).reshape(1, 2, 6))
    xt = torch.tensor(x.numpy())
    k, s, p = (list(args) + [None, 0])[:3]
    assert _pooling._geom_1d(x, k, s, p, 1) is None
    try:
        want = getattr(torch.nn.functional, name)(xt, *args).numpy()
    except RuntimeError:
        with pytest.raises(ds.DescentError):
            getattr(F, name)(x, *args)
        return
    _bits(getattr(F, name)(x, *args).numpy(), want)


def test_pool1d_other_inputs_take_the_checked_path():
    for x in (ds.zeros(2, 8), ds.zeros(0, 2, 8), ds.zeros(1, 2, 8, dtype=ds.float16),
              ds.zeros(1, 2, 8, dtype=ds.int64)):  # fmt: skip
        assert _pooling._geom_1d(x, 2, None, 0, 1) is None
    assert tuple(F.max_pool1d(ds.zeros(3, 8), 2).shape) == (3, 4)  # unbatched
    assert tuple(F.avg_pool1d(ds.zeros(3, 8), 2).shape) == (3, 4)
