"""Type promotion and integer-scalar rules against PyTorch: small integer dtypes (uint8, int8,
int16) with Python scalars out of their range, bool operands torch refuses, in-place ops that
keep (or refuse to change) the tensor's dtype, and the result dtypes of integer reductions.

Each case is one line of source run with `m` bound to torch and to descent: the values, the
dtype and the shape must agree, or both must raise (descent's error a subclass of torch's)."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import torch

import descent as ds

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
VALUES = [3, -2, 1, 5]  # no zero: the integer divisions below must not divide by zero


def _tensor(m, dt, shape):
    v = np.array(VALUES[: max(1, int(np.prod(shape)))] if shape else VALUES[0]).reshape(shape)
    return m.tensor(v.tolist()).to(getattr(m, dt))


def _run(m, fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(m), None
    except Exception as e:  # noqa: BLE001 - which error is raised is compared
        return None, e


def _torch_base(e):
    # torch's NotImplementedError ("not implemented for 'Bool'") is a RuntimeError
    return RuntimeError if isinstance(e, (NotImplementedError, RuntimeError)) else type(e)


def _same(fn):
    t, te = _run(torch, fn)
    d, de = _run(ds, fn)
    if te is not None or de is not None:
        assert te is not None and de is not None, (te, de)
        assert isinstance(de, _torch_base(te)), (type(te), type(de), de)
        return
    if isinstance(t, torch.Tensor):
        assert str(d.dtype).replace("descent.", "") == str(t.dtype).replace("torch.", "")
        assert tuple(d.shape) == tuple(t.shape)
        if t.dtype.is_floating_point:  # 2.5 / x is reciprocal(x) * 2.5 in torch: 1 ulp apart
            np.testing.assert_allclose(d.numpy(), t.detach().numpy(), rtol=2e-7 if
                                       t.dtype != torch.float16 else 1e-3)  # fmt: skip
        else:
            np.testing.assert_array_equal(d.numpy(), t.detach().numpy())
    else:
        assert d == t


OPS = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "//": lambda a, b: a // b, "%": lambda a, b: a % b,
    "**": lambda a, b: a**b, "<": lambda a, b: a < b, "==": lambda a, b: a == b,
    "&": lambda a, b: a & b, "|": lambda a, b: a | b, "^": lambda a, b: a ^ b,
    "<<": lambda a, b: a << b, ">>": lambda a, b: a >> b,
}  # fmt: skip


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("scalar", [2, -2, -3, 300, -300, 2**40, 2.5, True, False], ids=repr)
@pytest.mark.parametrize("dt", ["bool", "uint8", "int8", "int16", "int32", "int64"])
def test_tensor_with_python_scalar(dt, scalar, op):
    """uint8 - 2 wraps (torch casts the scalar to the tensor's dtype modulo 2**bits), as do
    int8 + 300, uint8 < -3 and -3 ** uint8 (NumPy 2 raised OverflowError)."""
    f = OPS[op]
    if op == "**" and type(scalar) is int and (scalar < 0 or scalar > 5):
        return  # torch refuses negative or out-of-range integer exponents (both raise; checked
        # by the fuzz); the reflected form below still runs
    _same(lambda m: f(_tensor(m, dt, (4,)), scalar))
    _same(lambda m: f(scalar, _tensor(m, dt, (4,))))


@pytest.mark.parametrize("op", ["//", "%", "**", "-"])
@pytest.mark.parametrize("shapes", [((4,), (4,)), ((), (4,)), ((4,), ())], ids=str)
def test_bool_with_bool_raises_as_torch(op, shapes):
    """bool // bool, bool % bool and bool ** bool tensor have no kernel in torch (descent gave
    int8)."""
    f = OPS[op]
    _same(lambda m: f(_tensor(m, "bool", shapes[0]), _tensor(m, "bool", shapes[1])))
    _same(lambda m: f(_tensor(m, "bool", shapes[0]), True))
    _same(lambda m: f(True, _tensor(m, "bool", shapes[1])))


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("da,db", list(itertools.product(DTYPES, DTYPES)), ids=lambda v: str(v))
def test_tensor_with_tensor_dtypes(da, db, op):
    """Every pair of dtypes, dimensioned and 0-d (a 0-d tensor does not promote a dimensioned
    tensor of the same category)."""
    f = OPS[op]
    for sa, sb in [((4,), (4,)), ((), (4,)), ((4,), ())]:
        _same(lambda m, sa=sa, sb=sb: f(_tensor(m, da, sa), _tensor(m, db, sb)))


FILLS = [
    "m.full((2,), -1, dtype=m.uint8)",
    "m.full((2,), -255, dtype=m.uint8)",
    "m.full((2,), -256, dtype=m.uint8)",
    "m.full((2,), 256, dtype=m.uint8)",
    "m.full((2,), 128, dtype=m.int8)",
    "m.full((2,), -129, dtype=m.int8)",
    "m.masked_fill(m.tensor([1, 2], dtype=m.uint8), m.tensor([True, False]), -1)",
    "m.masked_fill(m.tensor([1, 2]), m.tensor([True, False]), 1.5)",
    "m.masked_fill(m.tensor([1, 2]), m.tensor([True, False]), -1.5)",
    "m.masked_fill(m.tensor([1, 2]), m.tensor([True, False]), m.tensor(2.7))",
    "m.clamp(m.tensor([1, 200], dtype=m.uint8), max=-1)",
    "m.clamp(m.tensor([1, 200], dtype=m.uint8), min=-3)",
    "m.clamp(m.tensor([1, 200], dtype=m.uint8), -1, 300)",
]


@pytest.mark.parametrize("src", FILLS)
def test_fill_values_take_the_tensor_dtype(src):
    """A Python int written into an integer tensor: signed dtypes check the range, unsigned
    ones let negatives down to -max wrap (uint8 -1 is 255), as torch's checked conversion."""
    _same(lambda m: eval(src, {"m": m}))  # noqa: S307 - the test's own source


INPLACE = [
    "x = m.tensor([1, 2]); x += 1.5",
    "x = m.tensor([1, 2]); x *= 2.5",
    "x = m.tensor([1, 2]); x /= 2",
    "x = m.tensor([True, False]); x += 1",
    "x = m.tensor([1, 2]); x.sub_(m.tensor([True, False]))",
    "x = m.tensor([1, 2]); x.clamp_(0.5, 2.5)",
    "x = m.tensor([1, 2]); x.clamp_(0, 1)",
    "x = m.tensor([-7, 7]); x.div_(2, rounding_mode='floor')",
    "x = m.tensor([-7.0, 7.0]); x.div_(2, rounding_mode='trunc')",
    "x = m.tensor([1, 2], dtype=m.uint8); x -= 4",
    "x = m.tensor([1, 2], dtype=m.uint8); x.fill_(-1)",
    "x = m.tensor([1, 2], dtype=m.uint8); x[0] = -1",
    "x = m.tensor([1, 2], dtype=m.int8); x[0] = 200",
    "x = m.tensor([1, 2]); x.masked_fill_(x > 1, 1.5)",
    # recorded (a gradient flows): the result keeps the tensor's dtype, or raises
    "w = m.tensor([0.1, 2.5], requires_grad=True); x = w * 1; x += m.tensor([0.1, 1e300], "
    "dtype=m.float64)",
    "w = m.tensor([0.1, 2.5], requires_grad=True); x = w * 1; x.add_(m.tensor(0.1, "
    "dtype=m.float64))",
    "w = m.tensor([0.1, 2.5], requires_grad=True); x = w * 1; x.clamp_(min=m.tensor([0.2], "
    "dtype=m.float64))",
    "w = m.tensor([0.1, 2.5], dtype=m.float64, requires_grad=True); x = m.tensor([1, 2]); x += w",
    "w = m.tensor([0.1, 2.5], dtype=m.float16, requires_grad=True); x = w * 1; "
    "x += m.tensor([1.0, 2.0])",
]


@pytest.mark.parametrize("src", INPLACE)
def test_inplace_keeps_the_dtype(src):
    """`int += float` raises RuntimeError (NumPy's casting TypeError before); a recorded
    float32 += float64 stays float32 (it became float64)."""

    def fn(m):
        env = {"m": m}
        exec(src.replace("; ", "\n"), env)  # noqa: S102 - the test's own source
        return env["x"]

    _same(fn)


def test_recorded_inplace_gradient_keeps_the_leaf_dtype():
    for m in (torch, ds):
        w = m.tensor([0.1, 2.5], requires_grad=True)
        x = w * 1
        x += m.tensor([0.1, 1.0], dtype=m.float64)
        x.sum().backward()
        assert str(x.dtype).endswith("float32") and str(w.grad.dtype).endswith("float32")
        np.testing.assert_array_equal(np.asarray(w.grad.tolist()), [1.0, 1.0])


REDUCTIONS = [
    "x.sum()", "x.sum(0)", "m.nansum(x)", "x.prod()", "x.prod(0)", "x.cumsum(0)",
    "x.cumprod(0)", "m.cumsum(x, 0)", "x.all()", "x.any()", "x.all(0)", "m.any(x, 0)",
    "x.sum(dtype=m.float64)", "x.prod(dtype=m.float32)", "m.prod(x, 0, dtype=m.float64)",
    "x.cumsum(0, dtype=m.float32)", "m.cumsum(x, 0, dtype=m.float64)",
    "x.cumprod(0, dtype=m.float64)", "m.softmax(x, 0)", "m.log_softmax(x, 0)",
    "m.softmax(x, 0, dtype=m.float64)", "x.softmax(0, dtype=m.float32)",
    "x.log_softmax(0, dtype=m.float64)", "m.nn.functional.softmax(x, 0)",
]  # fmt: skip


@pytest.mark.parametrize("dt", ["bool", "uint8", "int8", "int32", "int64", "float32"])
@pytest.mark.parametrize("src", REDUCTIONS)
def test_reduction_dtypes(src, dt):
    """uint8 sums, products and scans are int64 (NumPy: uint64); all/any of uint8 are uint8;
    softmax of integers raises unless dtype= is given; prod/cumsum/softmax take dtype=."""
    _same(lambda m: eval(src, {"m": m, "x": m.tensor([3, 7, 0, 255]).to(getattr(m, dt))}))  # noqa: S307


@pytest.mark.parametrize("value", [math.inf, -1.0, 0.5])
def test_float_dtype_argument_differentiates(value):
    """The dtype= casts are differentiable: gradients reach a float32 input in float32."""
    grads = []
    for m in (torch, ds):
        x = m.tensor([0.5, value, 2.0], requires_grad=True)
        y = m.cumsum(x, 0, dtype=m.float64).sum() + x.prod(dtype=m.float64)
        y = y + m.softmax(x, 0, dtype=m.float64)[0]
        y.backward()
        assert str(x.grad.dtype).endswith("float32")
        grads.append(np.asarray(x.grad.tolist()))
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6)


COMPARISONS = [
    "m.tensor([0.1, 0.2], dtype=m.float32) == m.tensor(0.1, dtype=m.float64)",
    "m.tensor([0.1, 0.2], dtype=m.float32) < m.tensor(0.1, dtype=m.float64)",
    "m.tensor([0.1], dtype=m.float16) == m.tensor(0.1, dtype=m.float32)",
    "m.tensor([0.1], dtype=m.float16) >= m.tensor(0.1)",
    "m.tensor([16777217], dtype=m.int32) == 16777216.0",
    "16777216.0 == m.tensor([16777217], dtype=m.int32)",
    "m.tensor([16777217]) == m.tensor(16777216.0)",
    "m.tensor([16777217]) > m.tensor(16777216.0, dtype=m.float64)",
    "m.tensor([0.1], dtype=m.float32) == m.tensor([0.1], dtype=m.float64)",
    "m.tensor([3, 7]) != 2.5",
    "m.tensor([True, False]) == 2",
    "m.tensor([True, False]) == 1.0",
    "m.logical_and(m.tensor([16777217]), m.tensor(0.5))",
    "m.where(m.tensor([True, False]), m.tensor([3, 7], dtype=m.uint8), -1)",
    "m.where(m.tensor([True, False]), -1, m.tensor([3, 7], dtype=m.uint8))",
    "m.where(m.tensor([True, False]), m.tensor([3, 7], dtype=m.int8), 1000)",
    "m.where(m.tensor([True, False]), m.tensor([3, 7], dtype=m.int8), 2.5)",
]


@pytest.mark.parametrize("src", COMPARISONS)
def test_comparisons_promote_as_torch(src):
    """Comparisons compute in torch.result_type: a float32 tensor against a float64 0-d tensor
    in float32 (NumPy compared in float64, so x == tensor(0.1, float64) was False at 0.1), an
    int tensor against a Python float in float32; where() checks an int against an integer
    tensor's range (uint8 -1 is 255)."""
    _same(lambda m: eval(src, {"m": m}))  # noqa: S307 - the test's own source


_INT_TO_FLOAT = ["exp", "expm1", "log", "log1p", "sqrt", "rsqrt", "sin", "cos", "tan", "sigmoid",
                 "tanh", "erf", "asinh", "atan", "reciprocal", "digamma", "lgamma"]  # fmt: skip


@pytest.mark.parametrize("default", ["float32", "float64"])
def test_integer_inputs_take_the_default_float_dtype_as_torch(default):
    """PyTorch computes exp, sqrt, sigmoid, tanh, ... of an integer tensor in the DEFAULT dtype
    (float64 after set_default_dtype(float64)); descent hard-coded float32 for its unary ops,
    activations, clamp with float bounds and logcumsumexp."""
    import torch

    got, want = {}, {}
    for lib, out in ((torch, want), (ds, got)):
        lib.set_default_dtype(getattr(lib, default))
        try:
            x = lib.tensor([1, 2, 3])
            for name in _INT_TO_FLOAT:
                out[name] = str(getattr(lib, name)(x).dtype).split(".")[-1]
            out["clamp"] = str(x.clamp(0.5, 2.5).dtype).split(".")[-1]
        finally:
            lib.set_default_dtype(lib.float32)
    assert got == want
    assert set(got.values()) == {default}
