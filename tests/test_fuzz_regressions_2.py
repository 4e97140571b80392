"""Regression cases for the second batch of differential-fuzz findings (a 900 s run from case
200000): each chain runs in descent and in PyTorch through the fuzz's own comparison
(tests/fuzz_check.py: raising step, types, shapes, dtypes, values, requires_grad and every
leaf's gradient for an all-ones and a random cotangent), as in tests/test_fuzz_regressions.py.
The cases whose gradient PyTorch gets wrong (ldexp with integer exponents) compare values
and the gradients where PyTorch's are right, directly.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))

import descent as ds  # noqa: E402
import fuzz_check as fc  # noqa: E402
import fuzz_ops as fz  # noqa: E402
from test_fuzz_regressions import _case  # noqa: E402

F32, F64, I32, I64, B = "float32", "float64", "int32", "int64", "bool"
INF, NAN = math.inf, math.nan
I32_MAX, I32_MIN, I64_MAX, I64_MIN = 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)

# (id, inputs {name: (values, dtype)}: floats require grad, steps). A step refers to x, y and
# the earlier results v1, v2, ...
# fmt: off
CASES = [
    # forward values and dtypes
    ("softsign_int32_extremes", {"x": ([I32_MAX, I32_MIN, 1, -3, 0], I32)}, ["F.softsign(x)"]),
    ("softsign_int64_extremes", {"x": ([I64_MAX, I64_MIN, 5], I64)}, ["F.softsign(x)"]),
    ("int_scalar_pow_wraps", {"x": ([1, I32_MAX, 31, 32, 33, -2], I32)}, ["2 ** x"]),
    ("int_scalar_pow_wraps_int64", {"x": ([63, 64, 65, -1, 3], I64)}, ["3 ** x"]),
    ("norm_of_one_tiny_element", {"x": ([[[-1e-30]], [[1.0]], [[1e-45]]], F32)},
     ["m.norm(x, p=2, dim=1, keepdim=False)"]),
    ("norm_of_one_element_all_dims", {"x": ([[-1e-30]], F32)}, ["m.norm(x)"]),
    ("norm_p0_empty_by_dim", {"x": (np.zeros((0, 3)), F32)},
     ["m.norm(x, p=0, dim=1, keepdim=False)"]),
    ("ldexp_int_input_int_exponent", {"x": ([1, 1, I64_MAX], I64)}, ["x.ldexp(x)"]),
    ("ldexp_float_exponent_broadcast", {"x": ([[1.0, 0.0]], F32), "y": ([[3e38], [1.0]], F32)},
     ["m.ldexp(x, y)"]),
    ("ldexp_float_exponent_gradient_from_output",
     {"x": ([[1.0, 1.0], [1.0, -3e38]], F32)}, ["x.ldexp(x)"]),
    ("tiny_base_pow_gradient_overflows", {"x": ([-0.8284470438957214, 2.0], F32)},
     ["1e-45 ** x"]),
    ("ldexp_int_input_0d_float64_exponent", {"x": ([[1, 1]], I64), "y": (1.0, F64)},
     ["x.ldexp(y)"]),
    ("pow_zero_gradient_with_inf_cotangent", {"x": (1.0, F32)}, ["m.pow(x, -0.0)", "v1.logit()"]),
    ("pow_minus_half_at_minus_inf", {"x": ([-INF, 4.0, 0.0, -0.0, 3.0], F32)}, ["x ** -0.5"]),
    # gradients
    ("nansum_gradient_is_a_product", {"x": ([[1.0, NAN, 1.0], [-INF, 1.0, 1.0]], F32)},
     ["m.nansum(x)", "m.square(v1)"]),
    ("nanmean_gradient_all_nan", {"x": (NAN, F64)}, ["m.nanmean(x, -1, keepdim=True)"]),
    ("nanmean_gradient_all_nan_row", {"x": ([[NAN, NAN], [1.0, 2.0]], F32)},
     ["m.nanmean(x, 1)"]),
    ("prod_gradient_accumulates_in_float64",
     {"x": ([[-1.76, 3e38, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], [1e30, 1e30, 0.0, 1.0]], F32)},
     ["m.prod(x, 1, keepdim=True)"]),
    ("prod_gradient_all_dims_two_zeros_and_nan",
     {"x": ([[1.0, 0.0, NAN], [1.0, 0.0, INF]], F32)}, ["m.prod(x)"]),
    ("prod_gradient_all_dims_with_zero", {"x": ([-1.76, 3e38, 0.0, 1.0], F32)}, ["m.prod(x)"]),
    ("float_power_half_at_minus_inf", {"x": ([1.0, -INF, 4.0, 0.0], F32)},
     ["m.float_power(x, 0.5)"]),
    ("pow_half_gradient_at_minus_inf", {"x": ([-INF, 4.0, 0.0, -0.0], F64)}, ["x ** 0.5"]),
    ("xlogy_gradient_masked_after_product", {"x": ([[1.0], [1.0], [0.0]], F32)},
     ["m.xlogy(x, -1)", "(v1 % v1)"]),
    # sgn's gradient is a known zero: leaves get zeros, no nan from the ops before it
    ("sgn_after_div", {"x": ([1.0, 0.0], F32), "y": ([0.0, 2.0], F32)}, ["x / y", "m.sgn(v1)"]),
    ("sgn_after_log2_index", {"x": ([[1.0, 0.0, 2.0]], F32)},
     ["x.log2()", "v1[..., -2:]", "v2.sgn()"]),
    ("sgn_after_acosh", {"x": ([1.0, 2.0], F32)}, ["m.acosh(x)", "m.sgn(v1)"]),
    ("sgn_after_softmax", {"x": ([[1.0, INF], [0.0, 1.0]], F32)}, ["m.softmax(x, 1)", "v1.sgn()"]),
    ("sgn_after_log10_lgamma_atanh", {"x": ([0.0, 1.0, 2.0], F32)},
     ["x.log10()", "m.lgamma(v1)", "m.atanh(v2)", "v3.sgn()"]),
    ("sgn_after_xlogy_hypot", {"x": ([0.0, 1.0], F64), "y": ([0.0, 2.0], F64)},
     ["m.xlogy(x, y)", "m.hypot(v1, y)", "m.sgn(v2)"]),
    ("sgn_after_sinc_at_inf", {"x": ([[1.0, INF], [0.0, 2.5]], F32)}, ["m.sinc(x)", "m.sgn(v1)"]),
    ("sgn_after_ldexp_and_cat", {"x": ([NAN, 1.0, 0.0], F64)},
     ["x.ldexp(x)", "m.cat([v1, v1], -1)", "m.sgn(v2)"]),
    ("sgn_after_i0_cat", {"x": ([1.0, NAN], F32)}, ["x.i0()", "m.cat([v1, v1], -1)", "m.sgn(v2)"]),
    ("sgn_plus_x", {"x": ([1.0, -2.0, 0.0], F32)}, ["m.sgn(x) + x"]),
    ("sgn_twice", {"x": ([1.0, -2.0], F64)}, ["m.sgn(x)", "m.sgn(v1)"]),
    ("sgn_after_norm_softshrink", {"x": ([[1.0, INF], [1.0, 1.0]], F32)},
     ["m.norm(x, p=2, dim=1, keepdim=True)", "F.softshrink(v1)", "v2.sgn()"]),
    # ... and an op with no derivative before it still raises in backward, as in PyTorch
    ("sgn_after_floor_divide", {"x": ([1.0, 2.0], F64)}, ["x // x", "v1.sgn()"]),
    ("sgn_after_floor_divide_fn", {"x": ([[1.0, 3.0]], F32), "y": ([[1.0, 2.0]], F32)},
     ["x.floor_divide(y)", "m.sgn(v1)"]),
    ("sgn_after_heaviside", {"x": ([1.0, 0.0, -1.0], F32), "y": ([0.5, 0.5, 0.5], F32)},
     ["m.heaviside(x, y)", "m.sgn(v1)"]),
    ("sgn_after_number_remainder", {"x": ([1.0, 3.0], F64)}, ["2.0 % x", "m.sgn(v1)"]),
    ("sgn_after_remainder", {"x": ([1.0, 3.0], F32), "y": ([2.0, 2.0], F32)},
     ["x % y", "m.sgn(v1)"]),
    # third batch (the "Left open" list of docs/fuzz_long_run.md)
    ("cat_empty_requires_grad_with_int64", {"x": ([], F32), "y": ([1, 2], I64)},
     ["m.cat([x, y])"]),
    ("cat_empty_requires_grad_skipped_shape", {"x": ([], F64), "y": ([[1, 2]], I32)},
     ["m.cat([y, x], 1)"]),
    ("norm_p3_of_one_tiny_element", {"x": ([1e-30], F32)}, ["m.norm(x, p=3)"]),
    ("norm_p3_of_one_tiny_element_float64", {"x": ([[1e-300], [1e-120]], F64)},
     ["m.norm(x, p=3, dim=1, keepdim=True)"]),
    ("norm_p3_one_element_per_row", {"x": ([[1e-15], [1e-30], [2.0], [3e38]], F32)},
     ["m.norm(x, p=3, dim=1, keepdim=False)"]),
    ("norm_p3_0d_named_dim_computes_the_power", {"x": (1e-30, F32)},
     ["m.norm(x, p=3, dim=0, keepdim=False)"]),
    ("norm_p2_0d_named_dim_computes_the_square", {"x": (-1e-30, F32)}, ["m.norm(x, dim=-1)"]),
    ("norm_p3_0d_whole", {"x": (1e-30, F32)}, ["m.norm(x, p=3)"]),
    ("vector_norm_0d", {"x": (1e-30, F32)},
     ["m.linalg.vector_norm(x, 3.0)", "v1 + m.linalg.vector_norm(x, 3.0, dim=0)"]),
    ("vector_norm_p2_one_element", {"x": ([[1e-30, 1e-15, 0.0, -2.0]], F32)},
     ["m.linalg.vector_norm(x, 2.0, dim=0)"]),
    ("vector_norm_p4_one_element", {"x": ([[1e-30, 1e-15, 0.0, -2.0]], F32)},
     ["m.linalg.vector_norm(x, 4.0, dim=0)"]),
    ("var_of_0d_then_sgn", {"x": (1.0, F32)}, ["m.var(x)", "m.sgn(v1)"]),
    ("var_one_element_rows_then_sgn", {"x": ([[1.0], [INF]], F64)},
     ["m.var(x, 1, keepdim=True)", "v1.sgn()"]),
    ("clamp_keeps_the_sign_of_a_zero_at_a_zero_bound", {"x": ([-0.0, 0.0, 1.0, -2.0], F32)},
     ["m.clamp(x, min=0.0)", "m.eq(v1, 0.0)", "m.xlogy(v2, v1)"]),
    ("clamp_max_minus_zero_bound", {"x": ([0.0, -0.0, 1.0, -2.0], F64)},
     ["m.clamp(x, max=-0.0)", "1.0 / v1"]),
    ("rdiv_infinite_scalar_then_sgn", {"x": ([1.0, -2.0, 0.0, INF, 3e38], F32)},
     ["math.inf / x", "m.sgn(v1)"]),
    ("rdiv_nan_scalar_then_sgn_sqrt", {"x": ([1.0, -0.0, 1e-30], F64)},
     ["math.nan / x", "v1.sgn()", "m.sqrt(v2)"]),
    ("div_by_zero_scalar_then_sgn", {"x": ([[True], [False]], B), "y": ([[1.0], [0.0]], F32)},
     ["m.maximum(x, y)", "(v1 / 0.0)", "m.sgn(v2)"]),
    ("div_by_zero_scalar_then_sgn_float64", {"x": ([1.0, 0.0, INF], F64)}, ["x / 0.0", "v1.sgn()"]),
    # fourth batch: vector_norm's 1- and inf-norm gradients at a nan use sgn(nan) = 0
    ("vector_norm_p1_gradient_at_nan", {"x": ([[NAN, 2.0], [-3.0, 0.0]], F32)},
     ["m.linalg.vector_norm(x, 1.0)"]),
    ("vector_norm_p1_gradient_at_nan_by_dim", {"x": ([[NAN, 2.0], [-3.0, 0.0]], F64)},
     ["m.linalg.vector_norm(x, 1, dim=0)"]),
    ("vector_norm_inf_gradient_at_nan", {"x": ([[NAN, 2.0], [-3.0, 1.0]], F64)},
     ["m.linalg.vector_norm(x, math.inf)"]),
    ("vector_norm_inf_gradient_at_nan_by_dim", {"x": ([[NAN, 2.0], [-3.0, 1.0]], F32)},
     ["m.linalg.vector_norm(x, math.inf, dim=1, keepdim=True)"]),
    # ... and norm(x, p, dim=()) reduces every dimension, as PyTorch's (NumPy's axis=() none)
    ("norm_p2_empty_dim_tuple", {"x": ([[1.0, -2.0], [3.0, 4.0]], F32)},
     ["m.norm(x, p=2, dim=())"]),
    ("norm_p1_empty_dim_list_keepdim", {"x": ([[[1.0, -2.0]], [[3.0, 0.0]]], F64)},
     ["m.norm(x, p=1, dim=[], keepdim=True)"]),
    ("norm_inf_empty_dim_tuple_method", {"x": ([[1.0, -4.0], [4.0, 2.0]], F32)},
     ["x.norm(p=math.inf, dim=())"]),
    ("norm_p3_empty_dim_tuple_method_keepdim", {"x": ([1.0, -2.0, 0.0], F64)},
     ["x.norm(p=3, dim=(), keepdim=True)"]),
    ("norm_p0_empty_dim_tuple", {"x": ([[1.0, 0.0], [NAN, 2.0]], F32)}, ["m.norm(x, p=0, dim=())"]),
    ("norm_fro_empty_dim_tuple", {"x": ([[1.0, -2.0], [3.0, 4.0]], F64)},
     ["m.norm(x, 'fro', dim=())"]),
]
# fmt: on


@pytest.mark.parametrize("inputs,steps", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("seed", [None, 7], ids=["ones", "random"])
def test_matches_torch(inputs, steps, seed):
    case = _case(inputs, steps, seed)
    m = fc.compare(case)
    assert m is None, f"{m.kind}: {m.detail}\n{case.source()}"


def test_sgn_chain_leaf_gets_zeros_and_floor_divide_raises():
    x = ds.tensor([1.0, 0.0], requires_grad=True)
    ds.sgn(ds.acosh(x + 1)).sum().backward()
    assert x.grad is not None and x.grad.tolist() == [0.0, 0.0]  # torch: a zero tensor
    y = ds.tensor([1.0, 2.0], requires_grad=True)
    z = ds.sgn(y // 2.0) + y  # the real gradient meets sgn's zero: only y's own flows
    with pytest.raises(RuntimeError, match="floor_divide"):
        z.sum().backward()


def test_matmul_two_dtypes_raise_as_torch():
    """torch.matmul refuses operands of two dtypes (float32 @ int64, float32 @ float64): so
    does descent (it promoted them before)."""
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    for b in (np.arange(6, dtype=np.int64).reshape(3, 2), a.T.astype(np.float64)):
        for x, y in ((a, b), (b.T.copy(), a.T.copy())):
            with pytest.raises(RuntimeError):
                torch.matmul(torch.tensor(x), torch.tensor(y))
            with pytest.raises(RuntimeError, match="same dtype"):
                ds.matmul(ds.tensor(x), ds.tensor(y))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ldexp_integer_exponent_values_and_gradient(dtype):
    """Values as torch.ldexp (exact, the exponent cast to a C int); the gradient 2^e, which is
    PyTorch's too for exponents >= 0 (its backward forms 2^e in the integer dtype: 0 below)."""
    x = np.array([0.0278, 1.0, 1.0, 1.0, 3.0, -2.5], dtype)
    for e in (np.array([130, I32_MAX, I32_MIN, 200, -150, 3], np.int32),
              np.array([I64_MIN, 2**32 + 3, 2**62, 1100, -1, 0], np.int64)):  # fmt: skip
        d = ds.ldexp(ds.tensor(x), ds.tensor(e))
        t = torch.ldexp(torch.tensor(x), torch.tensor(e))
        assert str(d.dtype) == str(t.dtype).replace("torch.", "descent.")
        np.testing.assert_array_equal(d.numpy(), t.numpy())
    e = np.array([[0, 1, 5]], np.int64)
    xd = ds.tensor(x[:2].reshape(2, 1), requires_grad=True)
    xt = torch.tensor(x[:2].reshape(2, 1), requires_grad=True)
    ds.ldexp(xd, ds.tensor(e)).sum().backward()
    torch.ldexp(xt, torch.tensor(e)).sum().backward()
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())
    xd.grad = None
    ds.ldexp(xd, ds.tensor(np.array([[-4]]))).sum().backward()
    np.testing.assert_array_equal(xd.grad.numpy(), np.full((2, 1), 2.0**-4, dtype))


def test_hardshrink_softshrink_nan_gradient_is_torchs_own_ambiguity():
    """At a nan PyTorch's vectorized loop gives 0, its scalar tail gy: the fuzz does not
    compare them there (fuzz_check.NAN_GRAD_OPS); a case with a nan is not a mismatch."""
    for fn in ("F.hardshrink(x)", "F.softshrink(x)"):
        case = _case({"x": ([[1.0, 1.0], [NAN, 1.0]], F64)}, [fn], None)
        assert fc.compare(case) is None
    assert fz  # (the harness's generating half, imported for _case)


def test_backward_namespaces_agree_on_sign_at_nan():
    """ops.sign is 0 at a nan in the array namespace too (NumPy's sign(nan) is nan), as the
    differentiable one's (descent's sign, PyTorch's sgn): vector_norm's 1-norm gradient at a
    nan is 0 with and without create_graph."""
    from descent import array_backward

    a = np.array([NAN, -0.0, -2.0, 3.0])
    got = array_backward.array_namespace(np).sign(a)
    np.testing.assert_array_equal(got, ds.sign(ds.tensor(a)).numpy())
    for create_graph in (False, True):
        x = ds.tensor(a, requires_grad=True)
        ds.linalg.vector_norm(x, 1).backward(create_graph=create_graph)
        np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, -1.0, 1.0])
