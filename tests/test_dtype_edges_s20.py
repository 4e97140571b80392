"""Dtype edges against PyTorch 2.13 (session 20 sweep, /work/notes/s20/h143/): the twelve dtypes
bool, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64, complex64 and
complex128, dimensioned and 0-d, with Python numbers, through binary ops with an extra scalar
(`alpha`, `value`), addcmul/addcdiv, clamp with tensor bounds, `out=` and in-place forms.

Each case runs the same source with `m` bound to torch and to descent: the dtype, shape and
values must agree, or both must raise (descent's error an instance of torch's class). The
known differences at the end are PyTorch's own (rounding or bugs in its backward formulas) or
deliberate (descent accepts more), each with its reason."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch

import descent as ds

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
          "float64", "complex64", "complex128"]  # fmt: skip
A = [3, -2, 1, 5]
B = [2, 3, 255, 2]  # 255: a uint8 operand whose product or multiple overflows uint8


def _t(m, dt, vals, shape=(4,)):
    return m.tensor(vals if shape else vals[2]).to(getattr(m, dt))


def _run(m, fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(m), None
    except Exception as e:  # noqa: BLE001 - which error is raised is compared
        return None, e


def _np(x):
    if str(x.dtype).endswith("bfloat16"):
        x = x.float()
    return np.asarray(x.detach().numpy())


def _same(fn, rtol=None):
    t, te = _run(torch, fn)
    if "ComplexHalf" in str(te) or getattr(t, "dtype", None) == torch.complex32:
        return  # float16 with complex: complex32 in PyTorch, none in descent (known, below)
    d, de = _run(ds, fn)
    if te is not None or de is not None:
        assert te is not None and de is not None, (te, de)
        base = RuntimeError if isinstance(te, (NotImplementedError, RuntimeError)) else type(te)
        assert isinstance(de, base), (type(te), type(de), de)
        return
    for tv, dv in zip(t, d) if isinstance(t, tuple) else [(t, d)]:
        assert str(dv.dtype).split(".")[-1] == str(tv.dtype).split(".")[-1]
        assert tuple(dv.shape) == tuple(tv.shape)
        a, b = _np(tv), _np(dv)
        if a.dtype.kind in "fc":
            tol = rtol or {"float16": 2e-3, "bfloat16": 1e-2, "float32": 2e-6,
                           "complex64": 2e-6}.get(str(tv.dtype).split(".")[-1], 1e-12)  # fmt: skip
            np.testing.assert_allclose(b, a, rtol=tol, atol=0, equal_nan=True)
        else:
            np.testing.assert_array_equal(b, a)


PAIRS = list(itertools.product(DTYPES, DTYPES))

# ---------------------------------------------------------------------------------------------
# add/sub with alpha: PyTorch scales `other` in the result's dtype (descent scaled it in its own:
# uint8 255 * 2 wrapped to 254 beside a float input; a bool other with alpha=2 became int64).

ALPHA = {
    "add2": lambda m, a, b: m.add(a, b, alpha=2),
    "sub3": lambda m, a, b: m.sub(a, b, alpha=3),
    "add_method": lambda m, a, b: a.add(b, alpha=2),
}


@pytest.mark.parametrize("op", list(ALPHA))
def test_alpha_scales_in_the_result_dtype(op):
    f = ALPHA[op]
    for da, db in PAIRS:
        for sa, sb in [((4,), (4,)), ((), (4,)), ((4,), ())]:
            _same(lambda m, da=da, db=db, sa=sa, sb=sb: f(m, _t(m, da, A, sa), _t(m, db, B, sb)))


@pytest.mark.parametrize("src", [
    "m.add(2.5, m.tensor([2, 255], dtype=m.uint8), alpha=2)",
    "m.add(1 + 2j, m.tensor([2, 255], dtype=m.uint8), alpha=2)",
    "m.add(m.tensor([2, 255], dtype=m.uint8), m.tensor([True, False]), alpha=2)",
    "m.tensor([2, 255], dtype=m.uint8).add(m.tensor([True, True]), alpha=2)",
    "m.sub(m.tensor([2, 255], dtype=m.uint8), m.tensor([True, False]), alpha=2)",
    "m.add(m.tensor([1.5]), m.tensor(1e-8, dtype=m.float64), alpha=3)",
    "m.add(m.tensor([100], dtype=m.int8), m.tensor(100, dtype=m.int64), alpha=3)",
])  # fmt: skip
def test_alpha_examples(src):
    _same(lambda m: eval(src, {"m": m}))  # noqa: S307 - the test's own source


def test_alpha_gradient_reaches_the_float_leaf():
    grads = []
    for m in (torch, ds):
        x = m.tensor([0.5, 1.5], requires_grad=True)
        y = m.add(m.tensor([2, 255], dtype=m.uint8), x, alpha=2) * m.tensor([1.0, -3.0])
        y = y + m.sub(x, m.tensor([True, False]).int(), alpha=3)
        y.sum().backward()
        assert str(x.grad.dtype).endswith("float32")
        grads.append(x.grad.tolist())
    assert grads[0] == grads[1]


# ---------------------------------------------------------------------------------------------
# addcmul/addcdiv: one kernel in PyTorch, the product in the dtype of all three operands (an
# int16 input + uint8 255 * 255 is 65025 wrapped to int16, not 1 from a uint8 product; a float64
# input with float32 tensors divides in float64).

ADDC = {
    "addcmul": lambda m, a, b: m.addcmul(a, b, b),
    "addcmul_v": lambda m, a, b: m.addcmul(a, b, b, value=2),
    "addcdiv": lambda m, a, b: m.addcdiv(a, a, b),
    "addcmul_": lambda m, a, b: a.addcmul_(b, b),
    "addcdiv_": lambda m, a, b: a.addcdiv_(b, b, value=0.5),
}


@pytest.mark.parametrize("op", list(ADDC))
def test_addcmul_addcdiv_compute_in_the_result_dtype(op):
    f = ADDC[op]
    for da, db in PAIRS:
        for sb in [(4,), ()]:
            _same(lambda m, da=da, db=db, sb=sb: f(m, _t(m, da, A), _t(m, db, B, sb)))


@pytest.mark.parametrize("src", [
    "m.addcmul(m.tensor([1], dtype=m.int16), m.tensor([255], dtype=m.uint8), "
    "m.tensor([255], dtype=m.uint8))",
    "m.tensor([1], dtype=m.int64).addcmul_(m.tensor([255], dtype=m.uint8), "
    "m.tensor([255], dtype=m.uint8))",
    "m.addcdiv(m.tensor([1.0], dtype=m.float64), m.tensor([1.0]), m.tensor([3.0]))",
    "m.addcmul(m.tensor([1.0], dtype=m.float64), m.tensor([0.1]), m.tensor([0.3]))",
])  # fmt: skip
def test_addcmul_addcdiv_examples(src):
    _same(lambda m: eval(src, {"m": m}), rtol=1e-16)  # noqa: S307 - the test's own source


def test_addcmul_gradient_with_a_wider_input():
    grads = []
    for m in (torch, ds):
        t1 = m.tensor([0.1, -0.7], requires_grad=True)
        y = m.addcmul(m.tensor([1.0, 2.0], dtype=m.float64), t1, m.tensor([3, 255], dtype=m.uint8))
        assert str(y.dtype).endswith("float64")
        (y * m.tensor([1.0, -2.0], dtype=m.float64)).sum().backward()
        assert str(t1.grad.dtype).endswith("float32")
        grads.append(t1.grad.tolist())
    assert grads[0] == grads[1]


# ---------------------------------------------------------------------------------------------
# clamp: a bool tensor with two bool bounds has no kernel in PyTorch (one bool tensor bound is its
# clamp_min/clamp_max, maximum/minimum, which take bool); clamp(out=) with a tensor bound casts
# as any binary op (descent wanted out of the result's dtype exactly, the number-bound rule).

CLAMP = [
    "m.clamp(m.tensor([True, False]), m.tensor([True, True]), m.tensor([False, True]))",
    "m.clamp(m.tensor([True, False]), m.tensor(True), m.tensor([False, True]))",
    "m.clamp(m.tensor([True, False]), m.tensor([True, True]))",
    "m.clamp(m.tensor([True, False]), None, m.tensor([False, True]))",
    "m.clamp(m.tensor([True, False]), True)",
    "m.clamp(m.tensor([True, False]), m.tensor(True), m.tensor([1, 2]))",
    "m.tensor([True, False]).clamp_(m.tensor([True, True]), m.tensor([True, True]))",
    "m.tensor([True, False]).clamp_(m.tensor([True, True]))",
]


@pytest.mark.parametrize("src", CLAMP)
def test_clamp_of_bool(src):
    _same(lambda m: eval(src, {"m": m}))  # noqa: S307 - the test's own source


@pytest.mark.parametrize("bound", ["tensor", "number"])
def test_clamp_out_dtype_rules(bound):
    for da, do in itertools.product(DTYPES, DTYPES):

        def f(m, da=da, do=do):
            x = _t(m, da, A)
            lo = _t(m, "int64", B) if bound == "tensor" else 2
            out = m.empty(4, dtype=getattr(m, do))
            r = m.clamp(x, lo, None, out=out)
            assert r is out
            return out

        _same(f)


# ---------------------------------------------------------------------------------------------
# In-place forms of dtype-changing ops

INPLACE = [
    # float_power_ wants complex128 where the result is complex (it refused complex128 x)
    "m.tensor([1 + 1j, 2], dtype=m.complex128).float_power_(m.tensor([2, 3]))",
    "m.tensor([1 + 1j, 2], dtype=m.complex128).float_power_(2)",
    "m.tensor([1.0, 2], dtype=m.float64).float_power_(1j)",
    "m.tensor([1.0, 2], dtype=m.float64).float_power_(m.tensor([1j, 2]))",
    "m.tensor([1 + 1j, 2], dtype=m.complex64).float_power_(2)",
    "m.tensor([1.0, 2]).float_power_(2)",
    # absolute_ is abs_: complex refused (|z| was written into the complex tensor)
    "m.tensor([1 + 1j, -2]).absolute_()",
    "m.tensor(3 - 4j, dtype=m.complex128).absolute_()",
    "m.tensor([-1.0, 2]).absolute_()",
    "m.tensor([-1, 2], dtype=m.int8).absolute_()",
]


@pytest.mark.parametrize("src", INPLACE)
def test_inplace_dtype_rules(src):
    _same(lambda m: eval(src, {"m": m}))  # noqa: S307 - the test's own source


@pytest.mark.parametrize("name", ["abs_", "absolute_", "neg_", "sign_", "sqrt_", "floor_",
                                  "float_power_", "square_", "reciprocal_"])  # fmt: skip
def test_inplace_unary_over_every_dtype(name):
    for dt in DTYPES:

        def f(m, dt=dt):
            x = _t(m, dt, A)
            r = getattr(x, name)(2) if name == "float_power_" else getattr(x, name)()
            assert r is x
            return x

        _same(f)


# ---------------------------------------------------------------------------------------------
# Known differences, kept (each reproduced here so that a change on either side shows)


def test_known_torch_refuses_numbers_where_descent_takes_them():
    """torch.maximum(x, 2), torch.atan2(2, x), torch.eq(True, x), torch.hypot(x, 2.5), ...:
    PyTorch's bindings want a Tensor there (TypeError); descent accepts a Python number (a
    superset that no PyTorch program depends on). 3000+ such cases in the sweep."""
    with pytest.raises(TypeError):
        torch.maximum(torch.tensor([1, 2]), 2)
    assert ds.maximum(ds.tensor([1, 2]), 2).tolist() == [2, 2]


def test_known_no_complex32():
    """float16 with a complex number is complex32 (ComplexHalf) in PyTorch; descent has no
    complex32 (docs/complex.md) and gives complex64."""
    assert (torch.tensor([1.0], dtype=torch.float16) * 1j).dtype == torch.complex32
    assert (ds.tensor([1.0], dtype=ds.float16) * 1j).dtype == ds.complex64


def test_known_addcdiv_backward_rounds_in_tensor2_dtype():
    """PyTorch's addcdiv backward forms value / tensor2 in tensor2's dtype (float16 1/3 =
    0.33325) before the product with the float32 gradient; descent's gradient rounds once. And
    with a bool or integer tensor2 its backward raises ("result type Float can't be cast to
    the desired output type Bool"), a PyTorch bug: descent differentiates."""
    g = []
    for m in (torch, ds):
        a = m.tensor([1.0], requires_grad=True)
        m.addcdiv(a, a, m.tensor([3.0], dtype=m.float16)).sum().backward()
        g.append(a.grad.item())
    assert g[0] == 1 + float(np.float16(1 / 3)) and g[1] == pytest.approx(1 + 1 / 3, rel=1e-7)
    a = torch.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="can't be cast"):
        torch.addcdiv(a, a, torch.tensor([True])).sum().backward()
    a = ds.tensor([1.0], requires_grad=True)
    ds.addcdiv(a, a, ds.tensor([True])).sum().backward()
    assert a.grad.tolist() == [2.0]


def test_known_bfloat16_with_complex_number_division():
    """(1+2j) / bfloat16 tensor: PyTorch's complex64 result carries the bfloat16 rounding of
    1/3 (0.333984375); descent divides in complex64 (0.33333334)."""
    t = (1 + 2j) / torch.tensor([3.0], dtype=torch.bfloat16)
    d = (1 + 2j) / ds.tensor([3.0], dtype=ds.bfloat16)
    assert t.dtype == torch.complex64 and d.dtype == ds.complex64
    assert t.real.item() == 0.333984375 and d.real.item() == pytest.approx(1 / 3, rel=1e-7)


# ---------------------------------------------------------------------------------------------
# Python ints beyond [-2**63, 2**64): PyTorch's argument parser raises OverflowError before any
# op runs; descent checked them in + - * / only (x == 2**64 was False, x & 2**64 and x / 2**64
# computed, x // 2**64 said "division by zero").

BIG = [2**64, -(2**63) - 1, 2**70]
BIG_OPS = {
    "eq": lambda a, b: a == b, "lt": lambda a, b: a < b, "ne": lambda a, b: a != b,
    "and": lambda a, b: a & b, "xor": lambda a, b: a ^ b, "shl": lambda a, b: a << b,
    "div": lambda a, b: a / b, "floordiv": lambda a, b: a // b, "mod": lambda a, b: a % b,
    "pow": lambda a, b: a**b, "add": lambda a, b: a + b,
}  # fmt: skip


@pytest.mark.parametrize("op", list(BIG_OPS))
def test_python_int_out_of_range_raises_overflow(op):
    f = BIG_OPS[op]
    for dt in ["uint8", "int32", "int64", "float32", "bool"]:
        for big in BIG:
            _same(lambda m, dt=dt, big=big: f(_t(m, dt, A), big))
            if op != "pow" or dt != "bool":
                _same(lambda m, dt=dt, big=big: f(big, _t(m, dt, A)))


@pytest.mark.parametrize("src", [
    "m.fmod(m.tensor([1, 2]), 2**64)", "m.remainder(m.tensor([1, 2]), 2**64)",
    "m.xlogy(m.tensor([1.0]), 2**64)", "m.copysign(m.tensor([1.0]), -(2**63) - 1)",
    "m.bitwise_right_shift(m.tensor([1]), 2**64)", "m.div(2**64, m.tensor([1, 2]))",
    "m.tensor([1, 2]) == 2**64 - 1", "m.tensor([1.0]) < -(2**63)",
])  # fmt: skip
def test_python_int_range_edges(src):
    _same(lambda m: eval(src, {"m": m}))  # noqa: S307 - the test's own source


def test_known_torch_sigfpe_on_int_min_trunc_division():
    """torch.div(tensor([-2**31], dtype=int32), tensor([-1], dtype=int32),
    rounding_mode='trunc') kills the process with SIGFPE in torch 2.13 (also int64, and a
    scalar -2**63 divided by -1), so the sweep skips it; descent wraps, as floor division and
    PyTorch's floor mode do."""
    for dt in ("int32", "int64"):
        lo = ds.tensor([np.iinfo(dt).min], dtype=getattr(ds, dt))
        q = ds.div(lo, ds.tensor([-1], dtype=getattr(ds, dt)), rounding_mode="trunc")
        assert q.tolist() == [np.iinfo(dt).min]
        f = torch.div(torch.tensor([np.iinfo(dt).min]).to(getattr(torch, dt)),
                      torch.tensor([-1]).to(getattr(torch, dt)), rounding_mode="floor")  # fmt: skip
        assert f.tolist() == q.tolist()


FILLS = ["x.fill_(v)", "x.masked_fill_(m.tensor([True, False]), v)",
         "x = m.full((2,), v, dtype=x.dtype)", "x.index_fill_(0, m.tensor([1]), v)",
         "x.clamp_(min=v)", "x = m.clamp(x, None, v)", "x = m.where(x > 1, x, v)",
         "x = m.where(x > 1, v, x)"]  # fmt: skip


@pytest.mark.parametrize("src", FILLS)
def test_python_int_out_of_range_written_raises_overflow(src):
    """fill_/full/masked_fill/index_fill/clamp/where with an int beyond 64 bits: PyTorch's
    OverflowError for every dtype (descent wrote inf into float32 or complained about the
    float16 range)."""
    for dt in ["bool", "uint8", "int64", "float16", "bfloat16", "float32", "float64"]:
        for v in BIG:

            def f(m, dt=dt, v=v):
                env = {"m": m, "x": m.tensor([3, 1]).to(getattr(m, dt)), "v": v}
                exec(src, env)  # noqa: S102 - the test's own source
                return env["x"]

            _same(f)


@pytest.mark.parametrize("src", [
    "x.sum(1, dtype=m.bool)", "x.sum(dtype=m.bool)", "m.nansum(x, 1, dtype=m.bool)",
    "x.bool().sum(0, dtype=m.bool)", "x.prod(1, dtype=m.bool)", "x.float().sum(1, dtype=m.bool)",
    "m.zeros(0, 3).sum(0, dtype=m.bool)",
])  # fmt: skip
def test_sum_with_bool_dtype_stays_bool(src):
    """sum(dtype=bool) adds in bool in PyTorch (True where any element is nonzero); descent
    counted in int64."""
    _same(lambda m: eval(src, {"m": m, "x": m.tensor([[3, -2, 1], [5, 0, 7], [0, 0, 0]])}))  # noqa: S307


@pytest.mark.parametrize("src", [
    "x.index_select(-1, m.tensor([-1]))", "x.index_select(0, m.tensor([-3]))",
    "x.index_select(-1, m.tensor([3]))", "x.index_select(0, m.tensor([0, 2]))",
    "x.index_select(1, m.tensor([2, 0]))", "x.index_select(0, m.tensor([], dtype=m.int64))",
])  # fmt: skip
def test_index_select_out_of_range_is_a_runtime_error(src):
    """PyTorch's index_select raises RuntimeError ("INDICES element is out of DATA bounds")
    for a negative or too-large index; descent's IndexError is now both (IndexOutOfBounds)."""
    _same(lambda m: eval(src, {"m": m, "x": m.zeros(2, 3)}))  # noqa: S307
