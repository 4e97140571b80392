"""descent.testing.assert_close against torch.testing.assert_close: the same pass/fail, the
same exception class and the same message (module names aside) over tensors of every dtype,
tolerances, nan, shape/dtype mismatches, numbers, sequences, mappings and custom messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

NAN = float("nan")


def _to(lib, v):
    """The same nested value with arrays turned into the library's tensors."""
    if isinstance(v, np.ndarray):
        return lib.tensor(v.copy()) if lib is ds else torch.tensor(v.copy())
    if isinstance(v, dict):
        return {k: _to(lib, x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_to(lib, x) for x in v)
    return v


def _outcome(lib, a, b, kw):
    fn = ds.testing.assert_close if lib is ds else torch.testing.assert_close
    try:
        fn(_to(lib, a), _to(lib, b), **kw)
    except Exception as e:  # noqa: BLE001
        text = str(e).replace("descent.tensor.Tensor", "descent.Tensor")
        return type(e).__name__, text.replace("torch.", "descent.")
    return "ok", ""


f32, f64, f16 = np.float32, np.float64, np.float16
CASES = [
    (np.array([1, 2, 3], f32), np.array([1, 2.1, 3], f32), {}),
    (np.array([1, 2, 3], f32), np.array([1, 2 + 1e-6, 3], f32), {}),
    (np.array([1, 2], f64), np.array([1, 2 + 1e-6], f64), {}),
    (np.array([1, 2], f16), np.array([1, 2.001], f16), {}),
    (np.array([1, 2], np.int64), np.array([1, 2], f32), {}),
    (np.array([1, 2], np.int64), np.array([1, 2], f32), {"check_dtype": False}),
    (np.array([1, 2], f32), np.array([1, 2, 3], f32), {}),
    (np.array([[1, 2], [3, 4]], f32), np.array([[1, 2], [3, 5]], f32), {}),
    (np.array([[1, 2], [3, 4]], f32), np.array([[1, 2], [3, 5]], f32), {"msg": "custom"}),
    (np.array([1, 2], f32), np.array([1, 2.5], f32), {"rtol": 0, "atol": 0}),
    (np.array([1, 2], f32), np.array([1, 2.5], f32), {"rtol": 0.3, "atol": 0}),
    (np.array([1, 2], f32), np.array([1, 2], f32), {"rtol": 1e-3}),
    (np.array([1, NAN], f32), np.array([1, NAN], f32), {}),
    (np.array([1, NAN], f32), np.array([1, NAN], f32), {"equal_nan": True}),
    (np.array(NAN, f32), np.array(NAN, f32), {}),
    (np.array(1.0, f32), np.array(1.5, f32), {}),
    (np.array([0, 1], f32), np.array([1e-9, 1], f32), {}),
    (np.array([0, 1], f32), np.array([1e-3, 1], f32), {}),
    (np.array([True, False]), np.array([True, True]), {}),
    (np.array([5, 7], np.int32), np.array([5, 9], np.int32), {}),
    (np.zeros((0, 3), f32), np.zeros((0, 3), f32), {}),
    (np.array([np.inf, -np.inf], f32), np.array([np.inf, -np.inf], f32), {}),
    (np.array([np.inf], f32), np.array([-np.inf], f32), {}),
    ([1.0, 2.0], [1.0, 2.5], {}),
    ([1.0, 2.0], [1.0, 2.0, 3.0], {}),
    ({"a": 1, "b": 2}, {"a": 1, "c": 2}, {}),
    ({"a": np.array([1.0], f32)}, {"a": np.array([2.0], f32)}, {}),
    ([np.array([1.0], f32), (np.array([2.0], f32),)],
     [np.array([1.0], f32), (np.array([3.0], f32),)], {}),
    (1, 1.0, {}),
    (1, 2, {}),
    (1.0, 1.0 + 1e-9, {}),
    (NAN, NAN, {"equal_nan": True}),
    (np.array([1.0], f32), 1.0, {}),
    (np.array([1.0], f32), np.array([1.0], f32), {"atol": 1e-3}),
]  # fmt: skip


@pytest.mark.parametrize("a,b,kw", CASES)
def test_assert_close_matches_torch(a, b, kw):
    assert _outcome(ds, a, b, kw) == _outcome(torch, a, b, kw)


def test_numpy_arrays_callable_msg_and_requires_grad():
    ds.testing.assert_close(np.ones(2), np.ones(2))
    x = ds.tensor([1.0], requires_grad=True)
    ds.testing.assert_close(x * 2, ds.tensor([2.0]))
    with pytest.raises(AssertionError, match="^wrapped: Tensor-likes"):
        ds.testing.assert_close(x, ds.tensor([3.0]), msg=lambda m: "wrapped: " + m)


@pytest.mark.parametrize(
    "dtype", ["float32", "float64", "float16", "int64", "int32", "uint8", "bool"]
)
def test_make_tensor_ranges_and_options(dtype):
    d = getattr(ds, dtype)
    t = ds.testing.make_tensor(3, 4, dtype=d, device="cpu")
    assert t.shape == (3, 4) and t.dtype == d
    if dtype != "bool":
        lo, hi = (0, 10) if dtype == "uint8" else (-9, 9)
        assert lo <= t.min().item() and t.max().item() <= hi
    t = ds.testing.make_tensor((2, 3), dtype=d, low=1, high=5, exclude_zero=True,
                               noncontiguous=True)  # fmt: skip
    assert not t.is_contiguous() and (t != 0).all()
    if dtype != "bool":
        assert 1 <= t.min().item() and t.max().item() <= 5
    if dtype.startswith("float"):
        assert ds.testing.make_tensor(2, dtype=d, requires_grad=True).requires_grad
