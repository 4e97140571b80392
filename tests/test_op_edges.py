"""Ops at the edges (issue 13): the wrong answers found by a peer project's suite, zero-size and
0-d tensors, integer dtypes. Each test compares values, gradients and dtypes with PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds
import descent.nn.functional as F

DT = {ds.float32: torch.float32, ds.float64: torch.float64}


def _both(arrays, dtype=ds.float64, grad=True):
    """The same values as descent and torch leaves."""
    xs = [ds.tensor(a, dtype=dtype, requires_grad=grad) for a in arrays]
    ts = [torch.tensor(np.asarray(a), dtype=DT[dtype], requires_grad=grad) for a in arrays]
    return xs, ts


def _check(y, ty, xs=(), ts=(), atol=1e-6, rtol=1e-5):
    """Values, shape and dtype; then the gradients of a weighted sum (nan and inf compared as
    values: PyTorch's conventions at the edges are what is tested)."""
    assert tuple(y.shape) == tuple(ty.shape), (y.shape, ty.shape)
    assert str(y.dtype) == str(ty.dtype).replace("torch.", "descent."), (y.dtype, ty.dtype)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), atol=atol, rtol=rtol)
    if not xs:
        return
    w = np.random.default_rng(0).uniform(0.5, 1.5, tuple(y.shape))
    (y * ds.tensor(w, dtype=y.dtype)).sum().backward()
    (ty * torch.tensor(w, dtype=ty.dtype)).sum().backward()
    for x, t in zip(xs, ts, strict=True):
        tg = t.grad if t.grad is not None else torch.zeros_like(t)
        assert x.grad is not None, "no gradient reached an input"
        assert x.grad.dtype == x.dtype
        np.testing.assert_allclose(x.grad.numpy(), tg.numpy(), atol=atol, rtol=rtol)


# ---------------------------------------------------------------------------------------------
# scaled_dot_product_attention: a float mask is differentiated


@pytest.mark.parametrize("mshape", [(4, 5), (2, 1, 4, 5), (2, 3, 4, 5)])
@pytest.mark.parametrize("dtype", [ds.float32, ds.float64], ids=str)
def test_sdpa_float_mask_gets_a_gradient(mshape, dtype):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s) for s in [(2, 3, 4, 6), (2, 3, 5, 6), (2, 3, 5, 2), mshape]]
    xs, ts = _both(arrays, dtype)
    y = F.scaled_dot_product_attention(*xs[:3], attn_mask=xs[3])
    ty = torch.nn.functional.scaled_dot_product_attention(*ts[:3], attn_mask=ts[3])
    _check(y, ty, xs, ts, atol=1e-5 if dtype == ds.float32 else 1e-10)
    assert xs[3].grad.shape == mshape


def test_sdpa_float_mask_second_order():
    rng = np.random.default_rng(2)
    q, k, v = (ds.tensor(rng.standard_normal((1, 3, 4)), dtype=ds.float64) for _ in range(3))
    m = ds.tensor(rng.standard_normal((3, 3)), dtype=ds.float64, requires_grad=True)
    tq, tk, tv = (torch.tensor(t.numpy()) for t in (q, k, v))
    tm = torch.tensor(m.numpy(), requires_grad=True)
    (g,) = ds.autograd.grad(F.scaled_dot_product_attention(q, k, v, attn_mask=m).pow(2).sum(),
                            m, create_graph=True)  # fmt: skip
    (tg,) = torch.autograd.grad(
        torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm).pow(2).sum(),
        tm, create_graph=True,
    )  # fmt: skip
    np.testing.assert_allclose(g.numpy(), tg.detach().numpy(), atol=1e-10)
    (gg,) = ds.autograd.grad(g.sum(), m)
    (tgg,) = torch.autograd.grad(tg.sum(), tm)
    np.testing.assert_allclose(gg.numpy(), tgg.numpy(), atol=1e-10)


# ---------------------------------------------------------------------------------------------
# pow at the edges (PyTorch's pow_backward_self / pow_backward_exponent)


@pytest.mark.parametrize("dtype", [ds.float32, ds.float64], ids=str)
def test_pow_tensor_tensor_edges(dtype):
    base = [-2.0, -1.5, 0.0, 0.0, 0.0, 2.0, 0.0, 3.0]
    expo = [0.5, 2.0, 1.5, 0.0, -0.3, 0.0, 2.0, -1.0]
    xs, ts = _both([base, expo], dtype)
    _check(xs[0] ** xs[1], ts[0] ** ts[1], xs, ts)
    # the exponent's gradient: nan for a negative base, 0 for 0 ** (x >= 0), -inf for 0 ** -0.3
    assert np.isnan(xs[1].grad.numpy()[:2]).all()
    assert xs[1].grad.numpy()[2] == 0 and xs[1].grad.numpy()[3] == 0
    assert xs[1].grad.numpy()[4] == -np.inf
    assert xs[0].grad.numpy()[3] == 0  # 0 ** 0: base gradient 0, not nan


@pytest.mark.parametrize("dtype", [ds.float32, ds.float64], ids=str)
@pytest.mark.parametrize("base", [0.0, -2.0, 2.5])
def test_pow_scalar_base_edges(base, dtype):
    xs, ts = _both([[1.5, 0.0, -0.3, 2.0]], dtype)
    _check(base ** xs[0], base ** ts[0], xs, ts)


@pytest.mark.parametrize("dtype", [ds.float32, ds.float64], ids=str)
@pytest.mark.parametrize("expo", [0.0, -0.3, 0.5, 2.0, 3.0, -1.0])
def test_pow_scalar_exponent_edges(expo, dtype):
    xs, ts = _both([[0.0, -2.0, 3.0, 0.5]], dtype)
    _check(xs[0] ** expo, ts[0] ** expo, xs, ts)


# ---------------------------------------------------------------------------------------------
# Bitwise and logical ops

_INT_DTYPES = [(ds.int64, torch.int64), (ds.int32, torch.int32), (ds.int16, torch.int16),
               (ds.uint8, torch.uint8), (ds.int8, torch.int8)]  # fmt: skip
_BITWISE = [
    ("and", lambda a, b: a & b), ("or", lambda a, b: a | b), ("xor", lambda a, b: a ^ b),
    ("invert", lambda a, b: ~a), ("lshift", lambda a, b: a << 2), ("rshift", lambda a, b: a >> 1),
    ("shift_tensor", lambda a, b: a << (b & 3)), ("rand", lambda a, b: 6 & a),
    ("ror", lambda a, b: 9 | a), ("rxor", lambda a, b: 5 ^ a),
    ("fn_and", lambda a, b: (ds if isinstance(a, ds.Tensor) else torch).bitwise_and(a, b)),
    ("fn_or", lambda a, b: (ds if isinstance(a, ds.Tensor) else torch).bitwise_or(a, 3)),
    ("fn_xor", lambda a, b: (ds if isinstance(a, ds.Tensor) else torch).bitwise_xor(a, b)),
    ("fn_not", lambda a, b: (ds if isinstance(a, ds.Tensor) else torch).bitwise_not(a)),
    ("fn_left_shift", lambda a, b: (ds if isinstance(a, ds.Tensor) else torch)
     .bitwise_left_shift(a, 1)),
    ("fn_right_shift", lambda a, b: (ds if isinstance(a, ds.Tensor) else torch)
     .bitwise_right_shift(a, b & 1)),
    ("method_and", lambda a, b: a.bitwise_and(b)),
]  # fmt: skip


@pytest.mark.parametrize("dts", _INT_DTYPES, ids=lambda d: str(d[0]))
@pytest.mark.parametrize("name,fn", _BITWISE, ids=[n for n, _ in _BITWISE])
def test_bitwise_on_integers_keeps_the_dtype(name, fn, dts):
    dt, tdt = dts
    a = np.array([[5, 3, 12], [0, 7, 1]])
    b = np.array([3, 6, 1])
    if dt.kind == "i":
        a[0, 1] = -3
    y = fn(ds.tensor(a, dtype=dt), ds.tensor(b, dtype=dt))
    ty = fn(torch.tensor(a, dtype=tdt), torch.tensor(b, dtype=tdt))
    assert str(y.dtype) == str(ty.dtype).replace("torch.", "descent.")
    assert y.tolist() == ty.tolist()


def test_bitwise_mixed_and_bool():
    a, b = np.array([5, -3, 12]), np.array([True, False, True])
    for fa, fb in [(np.int32, np.int64), (np.bool_, np.int64), (np.bool_, np.bool_)]:
        y = ds.tensor(a.astype(fa)) & ds.tensor(b.astype(fb))
        ty = torch.tensor(a.astype(fa)) & torch.tensor(b.astype(fb))
        assert str(y.dtype) == str(ty.dtype).replace("torch.", "descent.")
        assert y.tolist() == ty.tolist()
    m = ds.tensor(b)
    for f in [lambda m: ~m, lambda m: m | False, lambda m: m ^ True, lambda m: m & m]:
        y, ty = f(m), f(torch.tensor(b))
        assert y.dtype == ds.bool and y.tolist() == ty.tolist()
    with pytest.raises(TypeError, match="bitwise_and.*float32.*logical_and"):
        ds.ones(2) & ds.ones(2)
    with pytest.raises(TypeError, match="bitwise_not"):
        ~ds.ones(2)


@pytest.mark.parametrize("name", ["logical_and", "logical_or", "logical_xor"])
def test_logical_ops_on_any_dtype(name):
    for a, b in [([0.0, 1.5, -0.0, 2.0], [1.0, 0.0, 0.0, 3.0]), ([0, 2, 3, 0], [1, 0, 5, 0])]:
        y = getattr(ds, name)(ds.tensor(a), ds.tensor(b))
        ty = getattr(torch, name)(torch.tensor(a), torch.tensor(b))
        assert y.dtype == ds.bool and y.tolist() == ty.tolist()
        assert getattr(ds.tensor(a), name)(ds.tensor(b)).tolist() == ty.tolist()


def test_logical_not_on_floats_and_ints():
    for a in ([0.0, 1.5, -0.0, float("nan")], [0, 3, -1]):
        y, ty = ds.logical_not(ds.tensor(a)), torch.logical_not(torch.tensor(a))
        assert y.dtype == ds.bool and y.tolist() == ty.tolist()
        assert ds.tensor(a).logical_not().tolist() == ty.tolist()


# ---------------------------------------------------------------------------------------------
# Advanced indexing: PyTorch's placement of the advanced dimensions

_I = np.array([[0, 1], [1, 0]])
_J = np.array([1, 0, 1])
_INDEX_CASES = [
    lambda i, j: (1, slice(None), slice(3, 11, 2), i, slice(0, 2)),
    lambda i, j: (slice(None), 1, slice(None), i),
    lambda i, j: (None, 1, i),
    lambda i, j: (1, Ellipsis, i),
    lambda i, j: (Ellipsis, 1, i),
    lambda i, j: (i, 1, i),
    lambda i, j: (1, i, 2),
    lambda i, j: (1, slice(None), i, slice(None), i),
    lambda i, j: (j, slice(None), 1, j),
    lambda i, j: (slice(None), j, slice(None), 2, j),
    lambda i, j: (0, slice(None), None, i, 1),
    lambda i, j: (0, None, slice(None), i),
    lambda i, j: (j, Ellipsis, 2),
    lambda i, j: (1, slice(None), slice(None), slice(None), i),
    lambda i, j: (slice(None), slice(None), i, j[:2, None] if j.ndim == 1 else j),
    lambda i, j: (1, slice(None), i),
    lambda i, j: (i, slice(None), 0),
    lambda i, j: (slice(1, 2), 0, slice(None), j, slice(None)),
]


@pytest.mark.parametrize("case", range(len(_INDEX_CASES)))
def test_advanced_index_placement_follows_torch(case):
    make = _INDEX_CASES[case]
    x = np.random.default_rng(3).standard_normal((2, 3, 12, 5, 4))
    xs, ts = _both([x])
    idx = make(ds.tensor(_I), ds.tensor(_J))
    tidx = make(torch.tensor(_I), torch.tensor(_J))
    _check(xs[0][idx], ts[0][tidx], xs, ts, atol=1e-12)
    # assignment takes the value in the same (PyTorch's) layout
    v = np.random.default_rng(4).standard_normal(tuple(ts[0][tidx].shape))
    d2, t2 = ds.tensor(x, dtype=ds.float64), torch.tensor(x)
    d2[idx] = ds.tensor(v, dtype=ds.float64)
    t2[tidx] = torch.tensor(v)
    np.testing.assert_array_equal(d2.numpy(), t2.numpy())


def test_setitem_torch_layout_is_differentiable():
    x = np.random.default_rng(5).standard_normal((2, 3, 4))
    v = np.random.default_rng(6).standard_normal((3, 2))
    xs, ts = _both([x, v])
    z, tz = xs[0] * 1.0, ts[0] * 1.0
    z[1, :, torch.tensor([0, 2]).numpy()] = xs[1]
    tz[1, :, torch.tensor([0, 2])] = ts[1]
    _check(z * z, tz * tz, xs, ts, atol=1e-12)


@pytest.mark.parametrize("mask,shape", [([True, False], (10, 11, 12)), ([True] * 3, (2, 3)),
                                        ([[True, False]], (2, 2))])  # fmt: skip
def test_wrong_length_bool_mask_raises(mask, shape):
    with pytest.raises(IndexError):
        torch.ones(shape)[torch.tensor(mask)]
    with pytest.raises(IndexError, match="shape of the mask"):
        ds.ones(shape)[ds.tensor(mask)]
    with pytest.raises(IndexError):
        ds.ones(shape)[ds.tensor(mask)] = 0.0


def test_bool_masks_in_later_dims():
    x = np.arange(24.0).reshape(2, 3, 4)
    for idx in [(slice(None), [True, False, True]), (Ellipsis, [True, False, True, True]),
                (0, [True, True, False], slice(1, 3))]:  # fmt: skip
        ti = tuple(torch.tensor(i) if isinstance(i, list) else i for i in idx)
        di = tuple(ds.tensor(i) if isinstance(i, list) else i for i in idx)
        xs, ts = _both([x])
        _check(xs[0][di], ts[0][ti], xs, ts)


# ---------------------------------------------------------------------------------------------
# Division by a Python zero; 0-d and zero-size tensors


@pytest.mark.parametrize("dtype", [ds.float32, ds.float64], ids=str)
@pytest.mark.parametrize("zero", [0, 0.0, -0.0])
def test_division_by_python_zero(zero, dtype):
    xs, ts = _both([[1.5, 0.0, -2.0]], dtype)
    _check(xs[0] / zero, ts[0] / zero, xs, ts)
    y, ty = ds.tensor([1, 0, -3]) / zero, torch.tensor([1, 0, -3]) / zero
    _check(y, ty)


_ZERO_D = [
    ("sum0", lambda x, m: x.sum(0)), ("sum_neg1_keep", lambda x, m: x.sum(-1, keepdim=True)),
    ("prod0", lambda x, m: x.prod(0)), ("logsumexp0", lambda x, m: m.logsumexp(x, 0)),
    ("mean0", lambda x, m: x.mean(0)), ("amax0", lambda x, m: x.amax(0)),
    ("cumsum0", lambda x, m: m.cumsum(x, 0)), ("cumsum_neg1", lambda x, m: x.cumsum(-1)),
    ("softmax0", lambda x, m: x.softmax(0)), ("var0", lambda x, m: x.var(0)),
    ("std0_c0", lambda x, m: x.std(0, correction=0)), ("norm0", lambda x, m: x.norm(dim=0)),
]  # fmt: skip


@pytest.mark.parametrize("name,fn", _ZERO_D, ids=[n for n, _ in _ZERO_D])
def test_zero_d_reductions(name, fn):
    xs, ts = _both([2.0])
    xs = [xs[0].detach().reshape(()).requires_grad_()]  # 0-d leaves on both sides
    ts = [ts[0].detach().reshape(()).requires_grad_()]
    with np.errstate(invalid="ignore"):
        _check(fn(xs[0], ds), fn(ts[0], torch), xs, ts)


def test_cumsum_of_0d_keeps_its_shape():
    assert ds.cumsum(ds.tensor(3.0), 0).shape == ()
    assert ds.tensor(3.0).cumsum(dim=-1).shape == ()


_EMPTY = [
    ("mean", lambda x, m: x.mean(1)), ("var", lambda x, m: x.var(1)),
    ("std", lambda x, m: x.std(1)), ("mean_all", lambda x, m: x.mean()),
    ("logsumexp", lambda x, m: m.logsumexp(x, 1)), ("softmax", lambda x, m: m.softmax(x, 1)),
    ("log_softmax", lambda x, m: x.log_softmax(1)), ("sum", lambda x, m: x.sum(1)),
    ("prod", lambda x, m: x.prod(1)),
]  # fmt: skip


@pytest.mark.parametrize("name,fn", _EMPTY, ids=[n for n, _ in _EMPTY])
def test_reductions_over_an_empty_axis(name, fn):
    xs, ts = _both([np.zeros((3, 0))])
    with np.errstate(invalid="ignore"):
        _check(fn(xs[0], ds), fn(ts[0], torch), xs, ts)
    assert xs[0].grad.shape == (3, 0)


def test_max_of_an_empty_tensor():
    x, t = ds.zeros(0, 3), torch.zeros(0, 3)
    _check(x.amax(1), t.amax(1))
    _check(x.amin(dim=1), t.amin(dim=1))
    v, i = x.max(1)
    tv, ti = t.max(1)
    _check(v, tv)
    _check(i, ti)
    with pytest.raises(IndexError):
        x.amax(0)
    with pytest.raises(RuntimeError):
        x.max()
    with pytest.raises(IndexError):
        x.max(0)


@pytest.mark.parametrize("p", [0, 1, 2, 3.0])
def test_normalize_any_p(p):
    x = np.array([[0.0, 2.0, -1.0], [0.0, 0.0, 0.0], [1.0, -3.0, 0.5]])
    xs, ts = _both([x])
    _check(F.normalize(xs[0], p=p, dim=1), torch.nn.functional.normalize(ts[0], p=p, dim=1),
           xs, ts)  # fmt: skip
    xs, ts = _both([x])
    _check(ds.norm(xs[0], p, axis=1), torch.linalg.vector_norm(ts[0], p, dim=1), xs[:0], ts[:0])


# ---------------------------------------------------------------------------------------------
# Math ops: dtypes of integer inputs, edge values, value tests


_INT_MATH = ["asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "exp2", "log2",
             "log10", "floor", "ceil", "trunc", "round", "nan_to_num"]  # fmt: skip


@pytest.mark.parametrize("name", _INT_MATH)
def test_math_on_integer_tensors_follows_torch_dtypes(name):
    a = np.array([0, 1, 2, -1])
    with np.errstate(all="ignore"):
        y = getattr(ds, name)(ds.tensor(a))
    ty = getattr(torch, name)(torch.tensor(a))
    _check(y, ty)


@pytest.mark.parametrize("mode", ["floor", "trunc"])
@pytest.mark.parametrize("dtype", [ds.int64, ds.float32], ids=str)
def test_div_rounding_modes(mode, dtype):
    a = np.array([7, -7, 5, -5, 0])
    b = np.array([2, 2, -3, -3, 4])
    tdt = torch.int64 if dtype == ds.int64 else torch.float32
    y = ds.div(ds.tensor(a, dtype=dtype), ds.tensor(b, dtype=dtype), rounding_mode=mode)
    ty = torch.div(torch.tensor(a, dtype=tdt), torch.tensor(b, dtype=tdt), rounding_mode=mode)
    _check(y, ty)
    _check(ds.tensor(a, dtype=dtype).div(2, rounding_mode=mode),
           torch.tensor(a, dtype=tdt).div(2, rounding_mode=mode))  # fmt: skip
    # 1 // 0.1 is 9 (floor division is exact), not floor(1 / 0.1) = 10
    _check(ds.div(ds.tensor([1.0]), 0.1, rounding_mode="floor"),
           torch.div(torch.tensor([1.0]), 0.1, rounding_mode="floor"))  # fmt: skip
    with pytest.raises(ValueError, match="rounding_mode"):
        ds.div(ds.tensor([1.0]), 2.0, rounding_mode="round")


def test_rounded_division_gradient_is_zero():
    xs, ts = _both([[1.5, -2.5], [0.7, 0.3]])
    _check(ds.div(xs[0], xs[1], rounding_mode="floor"),
           torch.div(ts[0], ts[1], rounding_mode="floor"), xs, ts)  # fmt: skip


def test_xlogy_and_copysign_edges():
    xs, ts = _both([[0.0, 0.0, 1.0, 2.0, 0.0], [0.0, 2.0, 0.0, -1.0, float("nan")]])
    with np.errstate(all="ignore"):
        _check(ds.xlogy(xs[0], xs[1]), torch.xlogy(ts[0], ts[1]), xs, ts)
    xs, ts = _both([[0.0, -0.0, 1.5, -2.0], [-1.0, 1.0, -0.0, 3.0]])
    _check(ds.copysign(xs[0], xs[1]), torch.copysign(ts[0], ts[1]), xs, ts)


def test_logaddexp_with_infinities():
    xs, ts = _both([[-np.inf, 0.0, np.inf, 1.0], [0.0, -np.inf, 1.0, 1.0]])
    _check(ds.logaddexp(xs[0], xs[1]), torch.logaddexp(ts[0], ts[1]), xs, ts)


def test_round_half_to_even_and_decimals():
    a = [0.5, 1.5, 2.5, -0.5, -1.5, 0.125, 1.2345, -2.675]
    for d in (0, 1, 2, -1):
        _check(ds.round(ds.tensor(a), decimals=d), torch.round(torch.tensor(a), decimals=d))


def test_isclose_isposinf_isneginf():
    a = [1.0, np.inf, -np.inf, np.nan, 1e-9, 2.0]
    b = [1.0 + 1e-7, np.inf, np.inf, np.nan, 0.0, 2.1]
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.1, "atol": 0.0}):
        y = ds.isclose(ds.tensor(a), ds.tensor(b), **kw)
        assert y.tolist() == torch.isclose(torch.tensor(a), torch.tensor(b), **kw).tolist()
    assert ds.tensor(a).isposinf().tolist() == torch.tensor(a).isposinf().tolist()
    assert ds.isneginf(ds.tensor(a)).tolist() == torch.isneginf(torch.tensor(a)).tolist()


# ---------------------------------------------------------------------------------------------
# Scans and order statistics: ties, NaN, zeros, 0-d


def _pair(out, tout, xs, ts):
    """(values, indices) results: indices equal, values and gradients as `_check`."""
    assert out.indices.tolist() == tout.indices.tolist()
    assert out.indices.dtype == ds.int64
    _check(out.values, tout.values, xs, ts)


_TIES = np.array([[1.0, 1.0, 0.0, 2.0, 2.0, np.nan, 3.0, np.nan, 0.0],
                  [3.0, 1.0, 1.0, 0.0, 5.0, 5.0, 2.0, 2.0, 1.0]])  # fmt: skip


@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin_ties_and_nan(name):
    xs, ts = _both([_TIES])
    _pair(getattr(ds, name)(xs[0], 1), getattr(torch, name)(ts[0], 1), xs, ts)


def test_mode_with_repeats_follows_torch():
    m = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, 1.0, 1.0], [2.0, 2.0, 5.0, 5.0, 0.0, 0.0, 7.0]])
    xs, ts = _both([m])
    _pair(ds.mode(xs[0], 1), torch.mode(ts[0], 1), xs, ts)
    xs, ts = _both([m.T])
    _pair(xs[0].mode(0, keepdim=True), ts[0].mode(0, keepdim=True), xs, ts)


def test_median_ties_nan_and_all():
    m = np.array([[3.0, 1.0, 2.0, 4.0], [1.0, 1.0, 1.0, 0.0], [np.nan, 1.0, 2.0, 0.0]])
    xs, ts = _both([m])
    _pair(ds.median(xs[0], 1), torch.median(ts[0], 1), xs, ts)
    xs, ts = _both([m[:2]])
    _check(xs[0].median(), ts[0].median(), xs, ts)  # ties share the gradient evenly


def test_cumprod_with_zeros_second_order():
    x = np.array([[2.0, 0.0, 3.0, 0.0, 1.5], [0.5, -1.0, 0.0, 2.0, 3.0]])
    xs, ts = _both([x])
    _check(ds.cumprod(xs[0], 1), torch.cumprod(ts[0], 1), xs, ts)
    xs, ts = _both([x])
    (g,) = ds.autograd.grad(ds.cumprod(xs[0], 1).sum(), xs[0], create_graph=True)
    (tg,) = torch.autograd.grad(torch.cumprod(ts[0], 1).sum(), ts[0], create_graph=True)
    _check(g, tg)
    (gg,) = ds.autograd.grad((g * g).sum(), xs[0])
    (tgg,) = torch.autograd.grad((tg * tg).sum(), ts[0])
    _check(gg, tgg)


def test_logcumsumexp_extreme_range():
    xs, ts = _both([[-1000.0, 0.0, 800.0, -np.inf, 3.0]])
    _check(ds.logcumsumexp(xs[0], 0), torch.logcumsumexp(ts[0], 0), xs, ts)


@pytest.mark.parametrize("name", ["cumprod", "logcumsumexp", "cumsum"])
def test_scans_of_0d(name):
    xs, ts = _both([2.0])
    xs = [xs[0].detach().reshape(()).requires_grad_()]  # 0-d leaves on both sides
    ts = [ts[0].detach().reshape(()).requires_grad_()]
    _check(getattr(ds, name)(xs[0], 0), getattr(torch, name)(ts[0], 0), xs, ts)


def test_unique_variants():
    a = np.array([[3, 1], [3, 2], [1, 1]])
    for kw in [{}, {"return_inverse": True}, {"return_counts": True},
               {"return_inverse": True, "return_counts": True}, {"dim": 0},
               {"dim": 1, "return_counts": True}]:  # fmt: skip
        r, t = ds.unique(ds.tensor(a), **kw), torch.unique(torch.tensor(a), **kw)
        r, t = (r if isinstance(r, tuple) else (r,)), (t if isinstance(t, tuple) else (t,))
        assert [u.tolist() for u in r] == [u.tolist() for u in t]
        assert [str(u.dtype) for u in r] == [str(u.dtype).replace("torch.", "descent.") for u in t]


def test_unique_keeps_each_nan():
    # NumPy's unique merges nans (equal_nan=True); PyTorch keeps each one, last in the order,
    # and the inverse and counts follow (a column with missing values, label-encoded)
    a = np.array([np.nan, 1.0, np.nan, -0.0, 1.0, 0.0, np.inf], dtype=np.float32)
    kw = {"return_inverse": True, "return_counts": True}
    r, t = ds.unique(ds.tensor(a), **kw), torch.unique(torch.tensor(a), **kw)
    np.testing.assert_array_equal(r[0].numpy(), t[0].numpy())
    assert r[1].tolist() == t[1].tolist() and r[2].tolist() == t[2].tolist()
    assert ds.tensor(a).unique().shape == (5,)


# ---------------------------------------------------------------------------------------------
# Shape and index ops: ties and zeros in scatter_reduce, keywords, empty and 0-d shapes


@pytest.mark.parametrize("bad", [-1, 3, -4])
@pytest.mark.parametrize(
    "call",
    [
        lambda m, x, i: x.scatter(0, i, m.ones(2)),
        lambda m, x, i: x.scatter(0, i, 2.0),
        lambda m, x, i: x.scatter_(0, i, m.ones(2), reduce="add"),
        lambda m, x, i: x.scatter_add(0, i, m.ones(2)),
        lambda m, x, i: x.scatter_add_(0, i, m.ones(2)),
        lambda m, x, i: x.scatter_reduce(0, i, m.ones(2), "amax"),
        lambda m, x, i: x.index_add(0, i, m.ones(2)),
        lambda m, x, i: x.index_add_(0, i, m.ones(2), alpha=2),
        lambda m, x, i: x.unsqueeze(0).index_add(1, i, m.ones(1, 2)),
    ],
)
def test_scatter_and_index_add_refuse_out_of_range_indices_as_torch(call, bad):
    # a negative index was counted from the end by NumPy and wrote the wrong slot silently;
    # PyTorch raises (RuntimeError, or IndexError for a 1-D index_add): descent's error is both
    for m in (torch, ds):
        with pytest.raises((IndexError, RuntimeError)) as info:
            call(m, m.zeros(3), m.tensor([0, bad]))
        if m is ds:
            assert isinstance(info.value, IndexError) and isinstance(info.value, RuntimeError)
            assert f"index {bad} is out of bounds" in str(info.value)
    # in range and empty indices still work
    y = ds.zeros(3).scatter_add(0, ds.tensor([2, 0, 2]), ds.ones(3))
    assert (
        y.tolist() == torch.zeros(3).scatter_add(0, torch.tensor([2, 0, 2]), torch.ones(3)).tolist()
    )
    assert (
        ds.zeros(3).index_add(0, ds.tensor([], dtype=ds.int64), ds.zeros(0)).tolist() == [0.0] * 3
    )


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin", "prod"])
def test_scatter_reduce_ties_and_zeros(reduce, include_self):
    rng = np.random.default_rng(7)
    idx = np.array([[0, 1, 0, 3], [2, 2, 2, 0], [1, 1, 1, 1]])
    src, base = rng.standard_normal((3, 4)), rng.standard_normal((3, 5))
    src[0, 2] = src[0, 0]  # two sources tie in slot (0, 0)
    base[1, 2] = src[1, 0]  # the input ties with a source in slot (1, 2)
    if reduce == "prod":
        src[0, 0] = src[1, 1] = src[1, 2] = 0.0
        base[2, 1] = 0.0
    xs, ts = _both([base, src])
    _check(xs[0].scatter_reduce(1, ds.tensor(idx), xs[1], reduce, include_self=include_self),
           ts[0].scatter_reduce(1, torch.tensor(idx), ts[1], reduce, include_self=include_self),
           xs, ts, atol=1e-12)  # fmt: skip


def test_gather_by_keyword_and_index_fill_negative():
    x = np.arange(12.0).reshape(3, 4)
    xs, ts = _both([x])
    i = np.array([[0], [3], [1]])
    _check(ds.gather(xs[0], dim=1, index=ds.tensor(i)),
           torch.gather(ts[0], dim=1, index=torch.tensor(i)), xs, ts)  # fmt: skip
    _check(ds.tensor(x).index_fill(0, ds.tensor([-1]), 9.0),
           torch.tensor(x).index_fill(0, torch.tensor([-1]), 9.0))  # fmt: skip


@pytest.mark.parametrize("name,fn", [
    ("diagonal_empty", lambda x, m: m.diagonal(x, 5)),
    ("unfold_whole", lambda x, m: x.unfold(1, 4, 1)),
    ("narrow_empty", lambda x, m: x.narrow(0, 3, 0)),
    ("repeat_interleave_zero", lambda x, m: x.repeat_interleave(0, 0)),
    ("take_empty", lambda x, m: x.take((ds if m is ds else torch).tensor([], dtype=ds.int64
                                       if m is ds else torch.int64))),
    ("movedim_same", lambda x, m: x.movedim(1, 1)),
])  # fmt: skip
def test_shape_index_edge_shapes(name, fn):
    xs, ts = _both([np.arange(12.0).reshape(3, 4)])
    _check(fn(xs[0], ds), fn(ts[0], torch), xs, ts)


# ---------------------------------------------------------------------------------------------
# Reductions without gradient, and the pairs


@pytest.mark.parametrize("kw", [{}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"dim": -1}])
@pytest.mark.parametrize("name", ["all", "any", "count_nonzero"])
def test_logical_and_counting_reductions(name, kw):
    if name == "count_nonzero":
        kw = {k: v for k, v in kw.items() if k != "keepdim"}
    for a in (np.array([[1.0, 0.0, 3.0], [2.0, 2.0, -1.0]]), np.array([[0, 0], [0, 5]]),
              np.zeros((2, 0))):  # fmt: skip
        _check(getattr(ds, name)(ds.tensor(a), **kw), getattr(torch, name)(torch.tensor(a), **kw))
        _check(getattr(ds.tensor(a), name)(**kw), getattr(torch.tensor(a), name)(**kw))


def test_all_any_of_0d():
    for v in (0.0, 2.0):
        _check(ds.tensor(v).all(0), torch.tensor(v).all(0))
        _check(ds.any(ds.tensor(v), dim=-1, keepdim=True),
               torch.any(torch.tensor(v), dim=-1, keepdim=True))  # fmt: skip


def test_aminmax_ties_share_the_gradient():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    xs, ts = _both([x])
    y, ty = ds.aminmax(xs[0], dim=1), torch.aminmax(ts[0], dim=1)
    _check(y.min * 2.0 + y.max, ty.min * 2.0 + ty.max, xs, ts)


def test_var_mean_std_mean_over_an_empty_axis():
    xs, ts = _both([np.zeros((3, 0))])
    with np.errstate(invalid="ignore"):
        v, m = ds.var_mean(xs[0], 1)
        tv, tm = torch.var_mean(ts[0], 1)
    _check(v + m, tv + tm, xs, ts)


# ---------------------------------------------------------------------------------------------
# Found by sweeping ops over (), (0,), (3, 0), (0, 3) and integer inputs against PyTorch


@pytest.mark.parametrize("call", [lambda x: x.argmax(), lambda x: x.argmin(0),
                                  lambda x: x.mode(0)])  # fmt: skip
def test_arg_reductions_of_empty_raise_index_error(call):
    with pytest.raises(IndexError):
        call(torch.zeros(0, 3))
    with pytest.raises(IndexError):
        call(ds.zeros(0, 3))


def test_zero_size_and_0d_sweep_fixes():
    xs, ts = _both([2.0])
    xs = [xs[0].detach().reshape(()).requires_grad_()]  # 0-d leaves on both sides
    ts = [ts[0].detach().reshape(()).requires_grad_()]
    _check(xs[0].flip(0) * 3.0, ts[0].flip(0) * 3.0, xs, ts)
    xs, ts = _both([np.zeros((3, 0))])
    with np.errstate(invalid="ignore"):
        _check(xs[0].median(), ts[0].median(), xs, ts)


def test_integer_inputs_sweep_fixes():
    a = np.array([-2, 0, 3])
    _check(ds.relu(ds.tensor(a)), torch.relu(torch.tensor(a)))
    _check(ds.logsumexp(ds.tensor(a), 0), torch.logsumexp(torch.tensor(a), 0))
    _check(2 ** ds.tensor([-1, 0, 3]), 2 ** torch.tensor([-1, 0, 3]))
    _check((-2) ** ds.tensor([-1, -2, 3]), (-2) ** torch.tensor([-1, -2, 3]))
    for f in (lambda t: t.var(), lambda t: t.std(0)):
        with pytest.raises(RuntimeError):
            f(torch.tensor(a))
        with pytest.raises(TypeError, match="integer"):
            f(ds.tensor(a))


# ---------------------------------------------------------------------------------------------
# The names issue 13 asks for: descent.X, and a Tensor method wherever torch.Tensor has one

_ISSUE_13_NAMES = """
acos asin atan atan2 sinh cosh asinh acosh atanh floor ceil trunc round frac exp2 log2 log10
lerp logaddexp logaddexp2 fmod remainder copysign hypot xlogy nan_to_num isclose isposinf
isneginf div floor_divide cumprod cummax cummin logcumsumexp sort argsort topk kthvalue msort
median mode unique diag diagonal trace unflatten repeat_interleave masked_select nonzero
meshgrid scatter scatter_reduce index_put index_fill take narrow movedim gather std_mean
var_mean amax amin aminmax all any count_nonzero einsum bitwise_and bitwise_or bitwise_xor
bitwise_not bitwise_left_shift bitwise_right_shift logical_and logical_or logical_xor
logical_not
""".split()


@pytest.mark.parametrize("name", _ISSUE_13_NAMES + ["unfold"])
def test_issue_13_names_exist(name):
    if name != "unfold":  # torch.unfold is Tensor.unfold only (F.unfold is im2col)
        assert callable(getattr(ds, name))
    if hasattr(torch.Tensor, name):
        assert callable(getattr(ds.Tensor, name))


def test_floor_divide_python_semantics():
    for a, b in [([7.0, -7.0, 7.5, -0.5], [2.0, 2.0, -2.0, 0.25]), ([7, -7, 5, 0], [2, 2, -3, 4])]:
        _check(ds.floor_divide(ds.tensor(a), ds.tensor(b)),
               torch.floor_divide(torch.tensor(a), torch.tensor(b)))  # fmt: skip
        _check(ds.tensor(a) // 2, torch.tensor(a) // 2)


@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_mean_of_integers_floor_divides_as_torch(include_self):
    args = ([1, 2, -3, 7], [0, 0, 2, 2], [-4, 5, -6, 1])
    d = ds.scatter_reduce(ds.tensor(args[0]), 0, ds.tensor(args[1]), ds.tensor(args[2]), "mean",
                          include_self=include_self)  # fmt: skip
    t = torch.scatter_reduce(torch.tensor(args[0]), 0, torch.tensor(args[1]),
                             torch.tensor(args[2]), "mean", include_self=include_self)  # fmt: skip
    assert d.tolist() == t.tolist() and d.dtype == ds.int64


def test_index_add_on_a_0d_tensor_as_torch():
    x = ds.tensor(1.0, requires_grad=True)
    s = ds.tensor(2.0, requires_grad=True)
    y = ds.index_add(x, 0, ds.tensor([0]), s, alpha=3)
    tx, ts = torch.tensor(1.0, requires_grad=True), torch.tensor(2.0, requires_grad=True)
    ty = torch.index_add(tx, 0, torch.tensor([0]), ts, alpha=3)
    assert y.shape == () and y.item() == ty.item()
    y.backward()
    ty.backward()
    assert (x.grad.item(), s.grad.item()) == (tx.grad.item(), ts.grad.item())


@pytest.mark.parametrize(
    "layer,channels,ndim",
    [
        (lambda m: m.nn.Conv2d(2, 3, 3, padding=1), 2, 2),
        (lambda m: m.nn.Conv2d(4, 4, 3, groups=2, bias=False), 4, 2),
        (lambda m: m.nn.Conv1d(2, 3, 3), 2, 1),
        (lambda m: m.nn.Sequential(m.nn.Conv2d(2, 4, 1), m.nn.GroupNorm(2, 4)), 2, 2),
        (lambda m: m.nn.GroupNorm(1, 2), 2, 1),
        (lambda m: m.nn.InstanceNorm1d(2), 2, 1),  # (affine: PyTorch itself fails on N = 0)
        (lambda m: m.nn.Sequential(m.nn.Conv2d(2, 2, 3), m.nn.MaxPool2d(2)), 2, 2),
        (lambda m: m.nn.AdaptiveMaxPool2d(2), 2, 2),
        (lambda m: m.nn.MaxPool1d(2, return_indices=False), 2, 1),
        (lambda m: m.nn.BatchNorm2d(2), 2, 2),  # training mode
    ],
)
@pytest.mark.parametrize("width", [6, 40])  # both conv layouts (batch-last below width 16)
def test_layers_take_an_empty_batch_as_torch(layer, channels, ndim, width):
    # a detector's second stage with no proposals feeds (0, C, H, W): conv raised
    # ZeroDivisionError, GroupNorm/InstanceNorm an ambiguous reshape; PyTorch returns empties
    # and zero parameter gradients
    shapes = []
    for m in (torch, ds):
        mod = layer(m)
        x = m.zeros(0, channels, *((6, width) if ndim == 2 else (width,)), requires_grad=True)
        y = mod(x)
        y.sum().backward()
        shapes.append((tuple(y.shape), tuple(x.grad.shape)))
        for p in mod.parameters():
            assert not np.asarray(p.grad.tolist()).any()
    assert shapes[0] == shapes[1]


def test_batch_norm_training_on_an_empty_batch_leaves_the_statistics_as_torch():
    for m in (torch, ds):
        bn = m.nn.BatchNorm2d(2)
        y = bn(m.zeros(0, 2, 3, 3))
        assert tuple(y.shape) == (0, 2, 3, 3)
        assert bn.running_mean.tolist() == [0.0, 0.0] and bn.running_var.tolist() == [1.0, 1.0]
        assert int(bn.num_batches_tracked) == 1
