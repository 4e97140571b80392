"""Regression tests for the uint8 and float16 differences PyTorch's operator database (OpInfo,
run by tests/opinfo_harness.py --dtype uint8 / float16) found in descent: each test runs the
sample that differed against torch 2.13 (the oracle), comparing dtypes and values exactly for
integers; float16 results are compared against a float64 reference with float16 tolerances, so
that they pass under any BLAS kernel.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

RNG = np.random.default_rng(0)


def _u8(shape, lo=0, hi=256):
    a = RNG.integers(lo, hi, shape).astype(np.uint8)
    return ds.tensor(a), torch.tensor(a)


def _same(d, t):
    """Same shape, dtype and (exact) values."""
    assert tuple(d.shape) == tuple(t.shape), (tuple(d.shape), tuple(t.shape))
    assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], (d.dtype, t.dtype)
    np.testing.assert_array_equal(d.numpy(), t.numpy())


# ---------------------------------------------------------------------------------------------
# uint8 (and the other narrow integers): dtypes and wrap-around


@pytest.mark.parametrize("name", ["cumsum", "cumprod", "prod", "sum"])
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32"])
def test_integer_reductions_keep_an_explicit_dtype(name, dtype):
    # NumPy reduces uint8 in uint64 (int8 in int64); PyTorch keeps dtype= (wrapping)
    a = RNG.integers(0, 120, (5, 5, 5)).astype(dtype)
    d, t = ds.tensor(a), torch.tensor(a)
    dt, tt = getattr(ds, dtype), getattr(torch, dtype)
    _same(getattr(ds, name)(d, 1, dtype=dt), getattr(torch, name)(t, 1, dtype=tt))
    if name == "prod":
        _same(ds.prod(d, 1, dtype=dt, keepdim=True), torch.prod(t, 1, dtype=tt, keepdim=True))


@pytest.mark.parametrize("name", ["cumsum", "cumprod", "prod", "sum"])
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "int64", "bool"])
def test_integer_reductions_default_to_int64(name, dtype):
    a = RNG.integers(0, 120, (4, 3)).astype(dtype)
    d, t = ds.tensor(a), torch.tensor(a)
    _same(getattr(ds, name)(d, 0), getattr(torch, name)(t, 0))


@pytest.mark.parametrize(
    ("eq", "shapes"),
    [
        ("i->", [(3,)]),
        ("ij->i", [(2, 3)]),
        ("iji->j", [(1, 3, 1)]),
        ("i...->...", [(3, 3)]),
        ("...ik, ...j -> ij", [(1, 2, 3), (3,)]),
        ("ii", [(3, 3)]),
        ("ij->ji", [(2, 3)]),
        ("ii->i", [(3, 3)]),
        ("ij,jk->ik", [(2, 3), (3, 4)]),
        ("ij,j->i", [(2, 3), (3,)]),
        ("i,j->ij", [(2,), (3,)]),
        ("ij,jk->", [(2, 3), (3, 4)]),
        ("...ij,...jk", [(2, 2, 3), (3, 4)]),
    ],
)
@pytest.mark.parametrize("dtype", ["uint8", "bool"])
def test_einsum_uint8_sums_own_letters_in_int64(eq, shapes, dtype):
    # PyTorch sums the letters only one operand has with torch.sum first (int64 for uint8 and
    # bool); a contraction of uint8 operands stays uint8 and wraps
    pairs = [_u8(s) for s in shapes]
    if dtype == "bool":
        pairs = [(d > 100, t > 100) for d, t in pairs]
    try:
        want = torch.einsum(eq, *[t for _, t in pairs])
    except RuntimeError:  # "bmm" not implemented for 'Bool'
        assert dtype == "bool"
        return
    _same(ds.einsum(eq, *[d for d, _ in pairs]), want)


def test_index_add_negative_alpha_wraps_in_uint8():
    x, xt = _u8((5, 5))
    s, st = _u8((5, 5))
    idx = np.array([4, 0, 2, 2, 1])
    want = torch.index_add(xt, -1, torch.tensor(idx), st, alpha=-1)
    _same(ds.index_add(x, -1, ds.tensor(idx), s, alpha=-1), want)
    want = torch.index_add(xt, 0, torch.tensor(idx), st, alpha=3)
    _same(ds.index_add(x, 0, ds.tensor(idx), s, alpha=3), want)
    x0, xt0 = _u8(())
    s0, st0 = _u8(())
    _same(ds.index_add(x0, 0, ds.tensor([0]), s0, alpha=-1),
          torch.index_add(xt0, 0, torch.tensor([0]), st0, alpha=-1))  # fmt: skip


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("value", [-256, -255, -129, -128, -5, 7, 127, 128, 255, 256, 300])
def test_scalar_tensor_wraps_a_negative_int_into_unsigned(dtype, value):
    # PyTorch's checked conversion: -5 in uint8 is 251; 256 in uint8 or 128 in int8 refused
    try:
        want = torch.scalar_tensor(value, dtype=getattr(torch, dtype))
    except RuntimeError:
        with pytest.raises(RuntimeError, match="without overflow"):
            ds.scalar_tensor(value, dtype=getattr(ds, dtype))
        return
    _same(ds.scalar_tensor(value, dtype=getattr(ds, dtype)), want)


def test_scalar_tensor_float_default():
    _same(ds.scalar_tensor(-5), torch.scalar_tensor(-5))


@pytest.mark.parametrize(("inp", "alpha", "beta"), [((5, 10), 1, 1), ((1,), 0.2, 0.6), ((), 1, 1)])
def test_addbmm_uint8_stays_uint8(inp, alpha, beta):
    i, it = _u8(inp)
    a, at = _u8((5, 5, 5))
    b, bt = _u8((5, 5, 10))
    want = torch.addbmm(it, at, bt, beta=beta, alpha=alpha)
    _same(ds.addbmm(i, a, b, beta=beta, alpha=alpha), want)


def test_addbmm_int64_and_float_unchanged():
    a = RNG.uniform(-1, 1, (3, 2, 4))
    b = RNG.uniform(-1, 1, (3, 4, 5))
    i = RNG.uniform(-1, 1, (2, 5))
    got = ds.addbmm(ds.tensor(i), ds.tensor(a), ds.tensor(b)).numpy()
    np.testing.assert_allclose(got, i + np.einsum("bij,bjk->ik", a, b), rtol=1e-12)
    ai, bi = (RNG.integers(-9, 9, s) for s in ((3, 2, 4), (3, 4, 5)))
    want = torch.addbmm(torch.zeros(2, 5, dtype=torch.int64), torch.tensor(ai), torch.tensor(bi))
    _same(ds.addbmm(ds.zeros(2, 5, dtype=ds.int64), ds.tensor(ai), ds.tensor(bi)), want)


def test_tensordot_uint8_size_one_contraction_stays_uint8():
    a, at = _u8((1, 1, 1))
    b, bt = _u8((2, 1, 2))
    want = torch.tensordot(at, bt, dims=[[0, 1], [2, 0]])
    _same(ds.tensordot(a, b, dims=[[0, 1], [2, 0]]), want)
