"""Regression cases for the bugs the differential fuzz found (tests/test_fuzz_differential.py):
each is a small chain of steps run in descent and in PyTorch by the fuzz's own machinery
(tests/fuzz_ops.py), which compares which step raises, types, shapes, dtypes, values,
requires_grad and the gradients of every leaf for an all-ones or a random cotangent. Where
PyTorch raises, descent must raise an exception of a class PyTorch's is (RuntimeError,
IndexError), so `except RuntimeError` in ported code still catches it.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import fuzz_check as fc  # noqa: E402
import fuzz_ops as fz  # noqa: E402

F32, F64, I32, I64, B = "float32", "float64", "int32", "int64", "bool"
INF, NAN = math.inf, math.nan

# (id, inputs {name: (values, dtype)}: floats require grad, steps, cotangent seed or None for
# all ones). A step refers to x, y and the earlier results v1, v2, ...
CASES = [
    # bool arithmetic: PyTorch refuses - on bool; ** and square keep its integer/bool types
    ("bool_minus_float", {"x": ([True, False], B), "y": ([1.0, 2.0], F32)}, ["x - y"]),
    ("bool_minus_scalar", {"x": ([True, False], B)}, ["x - 1", ]),
    ("scalar_minus_bool", {"x": ([True, False], B)}, ["1.5 - x"]),
    ("neg_bool", {"x": ([True, False], B)}, ["-x"]),
    ("square_bool", {"x": ([True, False], B)}, ["m.square(x)"]),
    ("bool_pow_true", {"x": ([True, False], B)}, ["x ** True"]),
    ("int_pow_negative_scalar", {"x": ([2, 3], I64)}, ["x ** -1"]),
    ("int_pow_negative_tensor", {"x": ([0, 1, -1, 2, -2, 0, 3], I64),
                                 "y": ([-1, -1, -1, -1, -3, 0, -2], I64)}, ["x ** y"]),
    # integer division: a zero divisor raises (not on an empty result); floor_divide has no
    # derivative; number % tensor neither; % and fmod follow Python's and C's signs
    ("int_floor_divide_by_zero", {"x": ([5, 3], I64), "y": ([0, 2], I64)}, ["x // y"]),
    ("int_remainder_by_zero", {"x": ([5, 3], I32)}, ["x % 0"]),
    ("int_fmod_by_zero", {"x": ([5, 3], I64), "y": ([1, 0], I64)}, ["m.fmod(x, y)"]),
    ("int_divide_empty_result", {"x": ([], I64), "y": ([[False]], B)}, ["x.reshape(0, 2) // y"]),
    ("int_fmod_keeps_dtype", {"x": ([5, -5], I32), "y": ([3, 3], I64)}, ["m.fmod(x, y)"]),
    ("floor_divide_requires_grad", {"x": ([1.0, -3.0], F32)}, ["x // 2.0"]),
    ("number_remainder_tensor", {"x": ([1.0, 2.0], F32)}, ["1 % x"]),
    ("remainder_infinite_divisor", {"x": ([1.0, -1.5, 2.0, -1e30], F32),
                                    "y": ([-INF, -INF, INF, 2.8787], F32)}, ["x % y"]),
    ("remainder_bool_by_tiny", {"x": ([True, True], B)}, ["x % 1e-45"]),
    # division by a Python number: a true division (no overflowing reciprocal)
    ("div_by_tiny_scalar", {"x": ([1.0, 0.0], F32)}, ["x / 1e-45"]),
    ("div_by_zero_scalar", {"x": ([1.0, 0.0, -1.0], F32)}, ["x / 0"]),
    # sign, rounding, abs: PyTorch's sign(nan) = 0, bool sign, zero gradients whatever gy is
    ("sign_nan_and_bool", {"x": ([1.0, NAN, -0.0, -2.0], F32)}, ["m.sign(x)"]),
    ("sign_of_bool", {"x": ([True, False], B)}, ["m.sign(x)"]),
    ("sign_gradient_with_inf", {"x": ([1.0, 2.0], F32)}, ["m.sign(x) * math.inf"]),
    ("round_gradient_with_nan", {"x": ([1.4, 2.0], F32)}, ["m.round(x) * math.nan"]),
    ("floor_gradient_with_inf", {"x": ([1.4, 2.0], F64)}, ["m.floor(x)", "m.rsqrt(v1 - v1)"]),
    ("abs_gradient_at_nan", {"x": ([1.0, NAN, 0.0, -2.0], F64)}, ["x.abs()"]),
    ("copysign_other_gradient", {"x": ([1.0, 2.0], F32), "y": ([1.0, -1.0], F32)},
     ["m.copysign(x, y) * math.inf"]),
    # selections at nan and ties
    ("maximum_with_nan", {"x": ([1.0, NAN, 0.0, -2.0], F32), "y": ([2.0, 1.0, NAN, -2.0], F32)},
     ["m.maximum(x, y)"]),
    ("minimum_self_with_nan", {"x": ([1.0, NAN], F32)}, ["x.minimum(x)"]),
    ("max_all_with_nan", {"x": ([NAN, 0.3, NAN], F32)}, ["x.max()"]),
    ("min_all_with_nan", {"x": ([[NAN, 0.5], [NAN, 1.0]], F32)}, ["x.min()"]),
    # inverse trigonometric gradients where 1 - x^2 overflows; atan2 at the origin
    ("asin_gradient_overflow", {"x": ([3e38, 0.5, 1.0], F32)}, ["m.asin(x)"]),
    ("acos_gradient_overflow", {"x": ([3e38, -3e38, 0.5], F32)}, ["m.acos(x)"]),
    ("acosh_gradient_overflow", {"x": ([3e38, 0.5, 1.0, INF], F32)}, ["m.acosh(x)"]),
    ("atan2_gradient_at_origin", {"x": ([0.0, 1e-30, 3e38, INF, 1.0, -3.0], F32),
                                  "y": ([0.0, 1e-30, 3e38, 1.0, INF, -3.0], F32)},
     ["m.atan2(x, y)"]),
    # activations: nan passes relu/hardtanh's gradient; integer relu6/hardtanh; bool refused
    ("relu_gradient_at_nan", {"x": ([1.0, NAN, 0.0, -2.0], F32)}, ["m.relu(x)"]),
    ("relu6_of_ints", {"x": ([1, 7, -2], I64)}, ["F.relu6(x)"]),
    ("hardtanh_of_ints", {"x": ([1, 7, -2], I32)}, ["F.hardtanh(x, -2.5, 2.5)"]),
    ("relu_of_bool", {"x": ([True], B)}, ["m.relu(x)"]),
    ("relu6_of_bool", {"x": ([True], B)}, ["F.relu6(x)"]),
    ("tanhshrink_of_bool", {"x": ([True], B)}, ["F.tanhshrink(x)"]),
    ("hardswish_gradient_at_minus_inf", {"x": ([[1.0, -INF], [1.0, 2.0]], F32)},
     ["F.hardswish(x)", "v1 @ v1.mT"]),
    # reductions, order statistics and scans
    ("norm_p_keyword", {"x": ([[1.0, 0.0], [3.0, 4.0]], F32)}, ["m.norm(x, p=1, dim=0)"]),
    ("norm_of_ints", {"x": ([1, 0, 3], I64)}, ["m.norm(x)"]),
    ("argmax_of_bool", {"x": ([True, False], B)}, ["m.argmax(x)"]),
    ("topk_of_bool", {"x": ([True, False], B)}, ["m.topk(x, 1).values"]),
    ("max_dim_of_bool", {"x": ([True, False], B)}, ["m.max(x, 0).values"]),
    ("sort_of_0d_bool", {"x": (True, B)}, ["m.sort(x).values"]),
    ("mode_of_bool", {"x": ([True, False, False], B)}, ["m.mode(x).values"]),
    ("cummin_of_bool", {"x": ([True, False], B)}, ["m.cummin(x, 0).values"]),
    ("median_of_int32", {"x": ([1, 2, 3], I32)}, ["m.median(x)"]),
    ("median_of_empty_ints", {"x": ([], I64)}, ["m.median(x)"]),
    ("median_with_inf", {"x": ([INF, 1.0, 1.0], F32)}, ["x.median()"]),
    ("median_gradient_nan_cotangent", {"x": ([1.0, 1.9], F32)}, ["x.median()",
                                                                 "m.xlogy(v1, -2.5)"]),
    ("prod_of_one_denormal", {"x": ([[-1e-45], [1.0]], F32)}, ["m.prod(x, -1)"]),
    ("lerp_far_weight_with_inf", {"x": ([1.0, INF, -INF], F64), "y": ([1.0, 1.0, 1.0], F64)},
     ["m.lerp(x, y, 2.0)"]),
    ("copysign_int_with_float64_0d", {"x": ([[1, -1]], I64), "y": (1.0, F64)},
     ["x.copysign(y)"]),
    ("xlogy_gradient_zero_cotangent", {"x": ([1.0, 1.0], F32), "y": ([True, False], B)},
     ["x.xlogy(y)", "m.atanh(v1)"]),
    ("maximum_tie_then_inf_gradient", {"x": ([1.0, 0.0], F32), "y": (1.0, F32)},
     ["x.maximum(y)", "m.acosh(v1)"]),
    ("minimum_loser_nan_gradient", {"x": ([0.0, 1.37], F32), "y": ([-1.9, 1.0], F32)},
     ["x.asin()", "m.minimum(y, v1)"]),
    ("div_gradient_tiny_divisor", {"x": ([1.0, -1e-45], F32)}, ["x / x", "m.ceil(v1)"]),
    ("erf_of_tiny", {"x": ([-1e-30, 1e-3, 0.05], F32)}, ["m.erf(x)", "m.xlogy(x, v1)"]),
    ("flatten_empty", {"x": ([], B)}, ["x.reshape(0, 4, 2).flatten(-2, -1)"]),
    ("cummax_empty_any_dim", {"x": ([], F32)}, ["m.cummax(x.reshape(2, 0), 2).values"]),
    ("cumprod_0d_inf", {"x": (-INF, F32)}, ["m.cumprod(x, -1)"]),
    ("logcumsumexp_0d_inf", {"x": (-INF, F32)}, ["m.logcumsumexp(x, 0)"]),
    ("cumprod_gradient_zeros_then_nan", {"x": ([0.0, 0.0, NAN], F64)}, ["m.cumprod(x, 0)"]),
    ("cumprod_gradient_overflow", {"x": ([1.0, -INF, -INF, 1.0], F32)},
     ["m.nan_to_num(x)", "m.cumprod(v1, -1)"]),
    ("softmax_of_empty", {"x": ([], F32)}, ["m.softmax(x.reshape(0, 0), -1)"]),
    ("hypot_gradient_denormal", {"x": ([1e-45, 1.0], F32)}, ["x.hypot(x)"]),
    ("norm_0_counts_nan", {"x": ([1.0, 0.0, NAN], F32)}, ["m.norm(x, p=0, dim=0, keepdim=True)"]),
    ("prod_0d_inf", {"x": (-INF, F32)}, ["x.prod(dim=-1, keepdim=True)"]),
    ("zero_pow_gradient_nan_cotangent", {"x": ([1.0, 1.0], F32)}, ["0 ** x", "m.acosh(v1)"]),
    ("cumsum_of_negative_zero", {"x": ([[-0.0, 1.0]], F32)}, ["m.cumsum(x, -2)",
                                                             "m.atan2(v1, v1)"]),
    ("cosh_gradient_at_tiny", {"x": ([1e-30, 1.0], F64)}, ["m.sqrt(x)", "m.cosh(v1)"]),
    ("copysign_zero_times_nan_gradient", {"x": ([1.0, -INF], F32)},
     ["x.frac()", "v1.copysign(v1)", "m.logcumsumexp(v2, -1)"]),
    ("pow_self_denormal", {"x": ([1.0, 1e-45, 2.0], F32)}, ["m.pow(x, x)"]),
    ("mish_gradient_inf_at_zero", {"x": ([1.0, 0.0], F64)}, ["F.mish(x)", "m.log(v1)"]),
    ("topk_nan_before_inf", {"x": ([[1.0, INF, NAN], [1.0, 2.0, 3.0]], F32)},
     ["m.topk(x, 2, dim=1).values"]),
    ("sort_descending_nan_before_inf", {"x": ([INF, NAN, 1.0, NAN], F32)},
     ["m.sort(x, descending=True).values"]),
    ("norm_0_sends_no_gradient", {"x": ([[1.0, 3e38], [0.0, 1.0]], F32)},
     ["x.cosh()", "m.norm(v1, p=0, dim=-2)"]),
    ("cat_skips_empty_vectors", {"x": ([], F64), "y": ([[1.0, 2.0]], F32)},
     ["m.cat([x, y], -2)"]),
    ("cat_only_empty_vectors", {"x": ([], F64), "y": ([], F32)}, ["m.cat([x, y], -2)"]),
    ("topk_int64_minimum", {"x": ([[-2**63, 1, 1], [1, 1, 1]], I64)},
     ["m.topk(x, 2, dim=-2).values"]),
    ("sort_descending_uint8", {"x": ([3, 0, 255, 7], "uint8")},
     ["m.sort(x, descending=True).values"]),
    ("hardshrink_positive_zero", {"x": ([1.0, -0.49], F32)}, ["F.hardshrink(x)", "2 / v1"]),
    # (16 elements: PyTorch's vectorized loop gives +0; its scalar tail x * 0 = -0)
    ("softshrink_positive_zero", {"x": ([1.0, -0.39] * 8, F64)}, ["F.softshrink(x)",
                                                                 "v1.reciprocal()"]),
    ("tanh_gradient_inf_cotangent", {"x": ([1.0, 0.0], F32)}, ["m.tanh(x)", "v1.mul(math.inf)"]),
    ("tanh_gradient_at_zero_output", {"x": ([[0.0]], F32)}, ["x.tanh()", "v1.log10()"]),
    ("log10_gradient_constant", {"x": ([1.0, 1e-45, 1.0], F64)}, ["m.div(x, x)",
                                                                 "m.log10(v1)"]),
    ("remainder_keeps_fmods_zero_sign", {"x": ([1.0, -3e38], F32)}, ["x % 2", "m.rsqrt(v1)"]),
    ("var_correction_above_n", {"x": ([1.0], F32)}, ["m.var(x, dim=-1, correction=2)"]),
    ("hardshrink_zero_gradient", {"x": ([0.0, 1.0], F32)}, ["F.hardshrink(x)", "v1 / v1"]),
    ("reciprocal_gradient_overflow", {"x": ([[1.0, 1e-30], [2.0, 3.0]], F32)},
     ["x.reciprocal()", "m.narrow(v1, 0, 1, 1)"]),
    ("rdiv_as_reciprocal_times_c", {"x": ([3.0, 7.0, 0.1], F32)}, ["2.5 / x"]),
    ("logcumsumexp_inf_gradient", {"x": ([1.0, 3e38, 1.0, 1.0], F32)},
     ["m.logcumsumexp(x, -1)", "m.expm1(v1)"]),
    ("norm_inf_with_nan", {"x": ([[1.0, 1.0], [1.0, NAN]], F32)},
     ["m.norm(x, p=math.inf, dim=1)"]),
    ("roll_empty_any_dim", {"x": ([], F32)}, ["m.roll(x, 1, 1)"]),
    ("hardswish_through_rsqrt", {"x": ([[True], [False]], B), "y": ([[[1.0], [0.0]]], F64)},
     ["m.maximum(x, y)", "F.hardswish(v1)", "m.rsqrt(v2)"]),
    ("hardswish_overflow", {"x": ([1.0, 3e38, -3.0, 3.0, -4.0], F32)}, ["F.hardswish(x)"]),
    ("softshrink_gradient_at_nan", {"x": ([1.0, NAN, 0.2, -1.0], F32)}, ["F.softshrink(x)"]),
    ("prod_gradient_inf", {"x": ([[1.0], [INF]], F32)}, ["m.prod(x, -1, keepdim=True)"]),
    ("logcumsumexp_inf_cotangent", {"x": ([[1.0, 1.0]], F32)},
     ["m.logcumsumexp(x, -1)", "v1.asin()"]),
    ("copysign_gradient_denormal", {"x": ([1e-45, 1.0], F32), "y": ([1.0, -1.0], F32)},
     ["x.copysign(y)"]),
    ("log_softmax_of_empty", {"x": ([], F32)}, ["m.log_softmax(x, -1)"]),
    ("var_gradient_with_inf", {"x": ([[1.0], [-INF]], F32)}, ["m.var(x)"]),
    ("std_gradient_overflowing", {"x": ([1.0, 1.0, -2.0], F64)},
     ["m.std(x, dim=0, correction=2, keepdim=True)", "v1 ** 3e38"]),
    ("std_without_float32_overflow", {"x": ([[1.0, 2.0], [-3e38, 1.0]], F32)},
     ["m.std(x, dim=0, correction=0)"]),
    ("cumsum_accumulates_in_double", {"x": ([1e8, 1.0, -1e8], F32)}, ["m.cumsum(x, 0)"]),
    ("cumprod_accumulates_in_double", {"x": ([1e30, 1e30, 1e-30, 0.0], F32)},
     ["m.cumprod(x, 0)"]),
    ("cumprod_gradient_inf_and_zero", {"x": ([1.0, 0.0, 1.0, 1.0, 1.0, INF], F32)},
     ["m.cumprod(x.reshape(2, 3), 1)"]),
    ("logcumsumexp_drops_nan_gradient", {"x": ([[0.0, 1.0, 1.0, 1.0]], F32)},
     ["m.logcumsumexp(x, -1)", "v1.xlogy(v1)"]),
    ("logcumsumexp_0d_keeps_nan_gradient", {"x": (-1.14, F64)},
     ["m.logcumsumexp(x, -1)", "v1.acos()"]),
    # shapes: 0-d tensors, empty dims, PyTorch's refusals, cat's promotion
    ("transpose_0d", {"x": (0, I64)}, ["m.transpose(x, 0, -1)"]),
    ("transpose_bad_dim", {"x": ([[[1.0]]], F32)}, ["m.transpose(x, 0, -4)"]),
    ("transpose_2d_bad_dim", {"x": ([[1.0]], F32)}, ["m.transpose(x, 0, 2)"]),
    ("gather_0d", {"x": (1.0, F32)}, ["m.gather(x, -1, m.argsort(x, dim=-1))"]),
    ("squeeze_0d", {"x": (1.0, F32)}, ["x.squeeze(-1)"]),
    ("movedim_0d", {"x": (1.0, F32)}, ["m.movedim(x, 0, -1)"]),
    ("chunk_empty_dim", {"x": ([1.0], F64)}, ["m.chunk(x[:0].reshape(1, 0, 1), 2, 1)[1]"]),
    ("split_empty_dim", {"x": ([1.0], F32)}, ["m.split(x[:0], 1, 0)[-1]"]),
    ("triu_of_a_vector", {"x": ([1.0, 2.0], F32)}, ["m.triu(x)"]),
    ("tril_of_0d", {"x": (1.0, F32)}, ["m.tril(x)"]),
    ("flatten_bad_dims", {"x": ([[[1.0]]], F32)}, ["x.flatten(3, -1)"]),
    ("flatten_start_after_end", {"x": ([[[1.0]]], F32)}, ["x.flatten(2, 1)"]),
    ("cat_float32_int32", {"x": ([1.0], F32), "y": ([2], I32)}, ["m.cat([x, y])"]),
    ("cat_bool_int32", {"x": ([True], B), "y": ([2], I32)}, ["m.cat([x, y])"]),
]


def _case(inputs: dict, steps: list, seed) -> fz.Case:
    ins = [fz.Input(name, np.array(v, dtype=dt), dt.startswith("float"))
           for name, (v, dt) in inputs.items()]  # fmt: skip
    ops = [s.split("(")[0] for s in steps]
    return fz.Case(ins, list(steps), ops, cotangent_seed=seed or 0, ones_cotangent=seed is None)


@pytest.mark.parametrize("inputs,steps", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("seed", [None, 7], ids=["ones", "random"])
def test_matches_torch(inputs, steps, seed):
    case = _case(inputs, steps, seed)
    m = fc.compare(case)
    assert m is None, f"{m.kind}: {m.detail}\n{case.source()}"
    tr, dr = fz.run_chain("torch", case), fz.run_chain("descent", case)
    if tr.error is not None and not isinstance(tr.error, NotImplementedError):
        assert isinstance(dr.error, type(tr.error)), (
            f"torch raises {type(tr.error).__name__}, descent {type(dr.error).__name__}: "
            f"{dr.error}"
        )


@pytest.mark.parametrize("name", ["hardtanh", "relu6", "elu", "celu", "selu", "hardswish"])
def test_activation_gradient_at_nan_follows_torchs_vectorized_loop(name):
    """At a nan input PyTorch's backward gives 0 (hardtanh, relu6) or nan (elu family) in its
    vectorized loop and gy in the scalar loop that finishes a tensor: descent follows the
    vectorized answer, compared here on the first 16 elements of 32 (all vectorized)."""
    import torch

    import descent as ds

    x = np.ones(32, np.float32)
    x[[1, 7, 12]] = np.nan
    d = ds.tensor(x, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    getattr(ds.nn.functional, name)(d).sum().backward()
    getattr(torch.nn.functional, name)(t).sum().backward()
    np.testing.assert_array_equal(d.grad.numpy()[:16], t.grad.numpy()[:16])
