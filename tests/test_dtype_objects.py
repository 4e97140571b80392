"""descent.dtype: torch.dtype's face over a NumPy dtype. Prints and answers as torch's does,
and works wherever NumPy expects a dtype (arrays, promotion, finfo, dict keys, copies)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

import descent as ds

NAMES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"]


@pytest.mark.parametrize("name", NAMES)
def test_dtype_attributes_match_torch(name):
    d, t = getattr(ds, name), getattr(torch, name)
    assert repr(d) == repr(t).replace("torch.", "descent.") == str(d)
    assert (d.is_floating_point, d.is_complex, d.is_signed, d.itemsize) == (
        t.is_floating_point, t.is_complex, t.is_signed, t.itemsize)  # fmt: skip
    assert ds.zeros(2, dtype=d).dtype is d and isinstance(d, ds.dtype)
    assert d.to_real() is d


@pytest.mark.parametrize("name", NAMES)
def test_dtype_is_a_numpy_dtype_to_numpy(name):
    d, n = getattr(ds, name), np.dtype(name)
    assert d == n and n == d and d == name and d == n.type and hash(d) == hash(n)
    assert {n: 1}[d] == 1 and {d: 2}[n] == 2
    assert np.zeros(2, dtype=d).dtype == n and np.ones(2).astype(d).dtype == n
    assert np.dtype(d) is n and (d.kind, d.name, d.type, d.char) == (n.kind, n.name, n.type, n.char)
    assert d != (np.float64 if name != "float64" else np.float32)
    assert copy.deepcopy(d) is d and copy.copy(d) is d
    assert np.can_cast(d, np.float64) == np.can_cast(n, np.float64)


def test_tensor_dtype_promotion_and_default_dtype_are_descent_dtypes():
    x = ds.tensor([1.0, 2.0])
    assert isinstance(x.dtype, ds.dtype) and x.dtype.is_floating_point
    assert repr(ds.result_type(x, 1)) == "descent.float32"
    assert ds.promote_types(ds.int32, ds.float16) is ds.float16
    assert repr(ds.get_default_dtype()) == "descent.float32"
    assert ds.finfo(x.dtype).eps == torch.finfo(torch.float32).eps
    assert ds.iinfo(ds.int16).max == torch.iinfo(torch.int16).max
    assert x.to(ds.float64).dtype is ds.float64 and x.to(np.float64).dtype is ds.float64
    assert ds.tensor([1], dtype="int32").dtype is ds.int32
    assert x.dtype != "bfloat16" and x.dtype in (ds.float16, ds.float32)
    with pytest.raises(AttributeError):
        ds.float32.is_floating_point = False
    # complex dtypes exist now (docs/complex.md): torch's float32.to_complex() is complex64
    assert ds.float32.to_complex() is ds.complex64
    assert str(torch.float32.to_complex()) == "torch.complex64"


@pytest.mark.parametrize(
    "make",
    [
        lambda: [np.float64(1.0), np.float64(2.0)],
        lambda: [np.arange(4.0).mean(), np.arange(4.0).std()],  # NumPy reductions: float64
        lambda: [np.float64(1.0), 2.0],
        lambda: [np.float32(1), np.float64(2)],
        lambda: [np.int32(1), np.int32(2)],  # int32 stays int32 (cross_entropy refuses it)
        lambda: [np.int32(1), 2],
        lambda: [[np.float64(1.0)], [2.0]],
        lambda: [np.float16(1), np.float16(2)],
        lambda: [np.bool_(True), np.bool_(False)],
        lambda: [np.zeros(2), np.ones(2)],
        lambda: [np.zeros(2, np.float32), np.ones(2, np.float32)],
        lambda: [np.int8(1), np.uint8(2)],
        lambda: [1.0, 2.0],
        lambda: [1, 2],
        lambda: [],
    ],
)
def test_tensor_of_a_list_of_numpy_scalars_keeps_their_dtype_as_torch(make):
    # torch.tensor infers the dtype from each element: a list of NumPy float64 scalars is
    # float64 (descent made float32, as for Python floats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: a list of ndarrays is slow
        expected = str(torch.tensor(make()).dtype).replace("torch.", "descent.")
    assert str(ds.tensor(make()).dtype) == expected
    assert str(ds.as_tensor(make()).dtype) == expected
