"""descent.compile against eager where an op computed an array from a tensor's values outside
the autograd Functions (session 19, helper-138's audit of `Tensor._wrap(` sites).

The recorder cannot see such an array: when the first two calls agree it keeps it as a
constant, and the replay returns the first recording's values from the third call on. Each
case runs six calls (0 and 1 with the same data, 2-5 with new data) compiled and eagerly and
compares them bitwise; each failed before its fix.
"""

import numpy as np
import pytest

import descent
import descent.nn.functional as F
from compile_harness import compare_calls

T = descent
_RNG = np.random.default_rng(1)
_A0 = _RNG.standard_normal((4, 6)).astype(np.float32)
_XS = [_A0, _A0.copy()] + [_RNG.standard_normal((4, 6)).astype(np.float32) * 3 for _ in range(4)]


def _target(x):
    return (x[:, 0].abs() * 2).long().clamp(0, 5)  # (4,) classes from the data


CASES = {
    # Tensor.view(dtype): the bit view was made on the array (a constant to the recorder)
    "view_dtype": lambda x: x.view(T.int32) + 1,
    # float16/bfloat16 cross_entropy (ops/loss._nll_rounded_once): the safe targets, row
    # weights and the mean's total weight were computed from the target's array
    "ce_bf16_none": lambda x: F.cross_entropy(x.bfloat16(), _target(x), ignore_index=1,
                                              reduction="none"),
    "ce_bf16_mean": lambda x: F.cross_entropy(x.bfloat16(), _target(x), ignore_index=1),
    "ce_f16_weight": lambda x: F.cross_entropy(x.half(), _target(x), ignore_index=2,
                                               weight=T.arange(1.0, 7.0).half()),
    "ce_f16_spatial": lambda x: F.cross_entropy(
        x.half().reshape(2, 6, 2), (x[:2, :2].abs() * 2).long().clamp(0, 5), ignore_index=2,
        reduction="sum"),
    # cross_entropy's class weights computed from the data: cast on the array (a copy), they
    # were a constant (the float32 op's parameter, the soft and half paths' factor)
    "ce_weight_hard": lambda x: F.cross_entropy(x, _target(x), weight=x[0].abs()),
    "ce_weight_soft": lambda x: F.cross_entropy(x, x.softmax(1), weight=x[0].abs()),
    "ce_weight_bf16": lambda x: F.cross_entropy(x.bfloat16(), _target(x),
                                                weight=x[0].abs().bfloat16()),
    # results made on arrays, used by a later op (returned directly, the call fell back)
    "pow_bool": lambda x: ((x > 0) ** True).float() * x,
    "addr_bool": lambda x: T.addr(x[0] > 0, x[1, :4] > 0, x[2] > 0).float() * x,
    "unravel_index": lambda x: T.unravel_index((x.abs() * 3).long().clamp(0, 23),
                                               (4, 6))[1].float() * x,
    "nonzero_static": lambda x: T.nonzero_static(x > 0, size=5).float().sum() * x,
    "fake_quantize_tensor": lambda x: T.fake_quantize_per_tensor_affine(x, 0.1, 0, -128, 127) * x,
    "fake_quantize_channel": lambda x: T.fake_quantize_per_channel_affine(
        x, x[:, 0].abs() + 0.1, T.zeros(4, dtype=T.int32), 0, -128, 127) * x,
    # linalg.lstsq's singular values, rank and the residuals' branch on the rank
    "lstsq_svals": lambda x: T.linalg.lstsq(x[:, :3], x[:, 3:],
                                            driver="gelsd").singular_values.sum() * x,
    "lstsq_rank": lambda x: T.linalg.lstsq(x[:, :3] * (x[0, 0] > 0), x[:, 3:],
                                           driver="gelsy").rank.float() * x[:1],
    "lstsq_residuals": lambda x: T.linalg.lstsq(x[:, :3] * (x[0, 0] > 0), x[:, 3:],
                                                driver="gelsd").residuals * 1,
    # torch._scaled_mm of float8 matrices (the product was made on the arrays)
    "scaled_mm": lambda x: T._scaled_mm(
        x[:, :4].to(T.float8_e4m3fn), x[:, :4].t().contiguous().to(T.float8_e4m3fn).t(),
        T.tensor(1.0), T.tensor(1.0), out_dtype=T.float32) * x[:, :4],
    # inv_ex / solve_ex chose their path from getrf's info read on the array: a replay of a
    # non-singular recording ran linalg.inv / solve on a singular A and raised
    "inv_ex": lambda x: T.linalg.inv_ex(x[:, :4] * (x[0, 0] > 0)).inverse * x[:, :4],
    "solve_ex": lambda x: T.linalg.solve_ex(x[:, :4] * (x[0, 0] > 0), x[:, 4:]).result * 1,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_replay_matches_eager(name):
    compare_calls(CASES[name], _XS)
