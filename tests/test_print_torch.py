"""Tensors print as PyTorch prints them (torch 2.13's torch/_tensor_str.py layout), the module
name aside ("descent.int32" for "torch.int32"): random values of every magnitude, integral and
special floats, every dtype, empty and 0-d tensors, summarized and wrapped ones, each
`set_printoptions` setting, and the suffixes (dtype, requires_grad)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

RNG = np.random.default_rng(7)
DTYPES = ["float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"]


def _same(arr, requires_grad=False):
    d = ds.tensor(arr.copy(), requires_grad=requires_grad)
    t = torch.tensor(arr.copy(), requires_grad=requires_grad)
    ours, theirs = repr(d), repr(t).replace("torch.", "descent.")
    if ours != theirs:  # "descent." is 2 characters longer: a suffix may wrap where torch's did not
        assert _unwrapped(ours) == _unwrapped(theirs), f"\n{ours}\n!=\n{theirs}"
        width = 80 if ds.print_options._options["linewidth"] == 80 else None
        assert width is None or max(len(line) for line in ours.splitlines()) <= width
    assert str(d) == ours


def _unwrapped(text: str) -> str:
    """The repr with its suffixes' line breaks removed (", dtype=..." on one line)."""
    for suffix in ("dtype=", "requires_grad=", "size=", "device="):
        text = text.replace(",\n       " + suffix, ", " + suffix)
    return text


def _values(kind: str, shape, dtype: str) -> np.ndarray:
    if dtype == "bool":
        return RNG.random(shape) < 0.5
    if dtype[0] in "iu":
        info = np.iinfo(dtype)
        lo, hi = (
            (max(info.min, -1000), min(info.max, 1000)) if kind == "small" else (info.min, info.max)
        )
        return RNG.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    scale = {"unit": 1.0, "small": 1e-6, "big": 1e9, "wide": None, "int": None}[kind]
    if kind == "wide":
        x = RNG.standard_normal(shape) * 10.0 ** RNG.integers(-8, 8, size=shape)
    elif kind == "int":
        x = RNG.integers(-50, 50, size=shape).astype(np.float64)
    else:
        x = RNG.standard_normal(shape) * scale
    return x.astype(dtype)


SHAPES = [(), (1,), (5,), (3, 4), (2, 3, 4), (2, 1, 3, 2), (40,), (7, 13)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["unit", "small", "big", "wide", "int"])
def test_random_values_print_as_torch(dtype, kind):
    for shape in SHAPES:
        _same(_values(kind, shape, dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_special_values_print_as_torch(dtype):
    f = np.array
    for vals in ([np.nan, 1.0], [np.inf, -np.inf, 0.0], [0.0, -0.0], [np.nan], [0.0], [-0.0, 2.5],
                 [1e-5, 1.0], [1e8, 1.0], [1e9, 1.0], [1e-4, 0.5], [123456.5, 1.0],
                 [np.nan, 3.0, 1e-9], [2.0, 2000.0], [2.0, 3000.0], [1.0, 1001.0],
                 [-1.5, np.inf]):  # fmt: skip
        _same(f(vals, dtype=dtype))
        _same(f(vals[0], dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0), (1, 0, 2)])
def test_empty_tensors_print_as_torch(dtype, shape):
    _same(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize("shape", [(1001,), (2000,), (40, 40), (3, 400), (11, 12, 13), (1, 1500)])
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_summarized_tensors_print_as_torch(shape, dtype):
    _same(_values("unit", shape, dtype))


def test_requires_grad_and_wrapped_suffixes_print_as_torch():
    _same(RNG.standard_normal((3, 3)).astype(np.float32), requires_grad=True)
    _same(RNG.standard_normal((3, 3)), requires_grad=True)  # float64: dtype then requires_grad
    _same(RNG.standard_normal((12,)) * 1e5, requires_grad=True)  # past 80 columns: new line


@pytest.fixture
def printoptions():
    yield
    ds.set_printoptions(profile="default")
    torch.set_printoptions(profile="default")


@pytest.mark.parametrize("opts", [
    {"precision": 2}, {"precision": 0}, {"precision": 8}, {"threshold": 5}, {"edgeitems": 1},
    {"edgeitems": 0, "threshold": 3}, {"linewidth": 30}, {"linewidth": 200}, {"sci_mode": True},
    {"sci_mode": False}, {"profile": "short"}, {"profile": "full"},
])  # fmt: skip
def test_printoptions_print_as_torch(opts, printoptions):
    ds.set_printoptions(**opts)
    torch.set_printoptions(**opts)
    for shape in [(), (6,), (4, 5), (3, 2, 4), (30,)]:
        for kind in ["unit", "wide", "int"]:
            _same(_values(kind, shape, "float32"))
        _same(_values("small", shape, "int32"))
    _same(np.array([np.nan, 0.0], dtype=np.float32))  # sci_mode set, no finite nonzero value


def test_parameter_prints_as_torch():
    w = RNG.standard_normal((2, 3)).astype(np.float32)
    assert repr(ds.nn.Parameter(ds.tensor(w))) == repr(torch.nn.Parameter(torch.tensor(w)))


def test_format_of_0d_and_printing_of_integral_float_tensors():
    assert f"{ds.tensor(2.5):.3f}" == "2.500"
    assert repr(ds.arange(3.0)) == "tensor([0., 1., 2.])"
    assert repr(ds.tensor([True, False])) == "tensor([ True, False])"


@pytest.mark.parametrize(
    "call",
    [
        lambda lib, x: lib.max(x, dim=1), lambda lib, x: lib.min(x, 0, keepdim=True),
        lambda lib, x: lib.sort(x, dim=1), lambda lib, x: lib.topk(x, 2),
        lambda lib, x: lib.kthvalue(x, 2), lambda lib, x: lib.median(x, 1),
        lambda lib, x: lib.mode(x, 1), lambda lib, x: lib.cummax(x, 1),
        lambda lib, x: lib.cummin(x, 0), lambda lib, x: lib.aminmax(x, dim=1),
    ],
)  # fmt: skip
def test_return_types_print_as_torch(call):
    x = np.array([[3.0, 1.0, 2.0], [0.5, 4.0, 4.0]], dtype=np.float32)
    ours, theirs = call(ds, ds.tensor(x)), call(torch, torch.tensor(x))
    assert repr(ours) == repr(theirs).replace("torch.", "descent.")
    assert len(ours) == len(theirs) and type(ours).__name__ == type(theirs).__name__
