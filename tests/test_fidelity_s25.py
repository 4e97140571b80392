"""Session 25's fidelity fixes at the edges (helper-175; the probe is
/work/notes/s25/h175/probe.py): results, dtypes, gradients and error classes where descent
differed from PyTorch 2.13 (the oracle), each case compared with torch computed here."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import descent
from fidelity_helpers import results_or_same_error

torch = pytest.importorskip("torch")


def _same(fn, rtol=1e-6):
    """fn(torch) raises X => fn(descent) raises an X; fn(torch) computes => fn(descent)
    computes the same dtype, shape and values (nan where torch's is nan)."""
    pair = results_or_same_error(fn, torch, descent)
    if pair is None:
        return
    tr, dr = pair
    assert str(dr.dtype).split(".")[-1] == str(tr.dtype).split(".")[-1], (tr.dtype, dr.dtype)
    assert tuple(dr.shape) == tuple(tr.shape)
    np.testing.assert_allclose(dr.detach().numpy(), tr.detach().resolve_conj().numpy(), rtol=rtol)


def _grad(fn, m):
    """The gradient fn(m) leaves in its leaf, as float64 values (a known zero as zeros)."""
    x = m.tensor(1.0, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fn(m, x).sum().backward()
    return np.asarray((x.grad + m.zeros(x.shape)).detach().numpy(), np.float64)


# -- the differential fuzz's var > ** > sgn class: pow's base takes real zeros ------------------
@pytest.mark.parametrize(
    "name",
    ["var_pow_sgn", "var_base_sgn", "var_exponent_sgn", "sqrt_pow0_sgn", "sqrt_pow_t_sgn"],
)
def test_known_zero_through_pow_as_torch(name):
    fn = {
        # sgn's zero tensor: PyTorch's pow_backward_self materializes it (where(...)), the
        # exponent's product keeps it; var of one element then makes nan of real zeros
        "var_pow_sgn": lambda m, x: m.sgn(m.var(x, dim=0) ** x),
        "var_base_sgn": lambda m, x: m.sgn(m.var(x, dim=0) ** m.tensor(2.0)),
        "var_exponent_sgn": lambda m, x: m.sgn(m.tensor(2.0) ** m.var(x, dim=0)),
        "sqrt_pow0_sgn": lambda m, x: m.sgn((x - 1).sqrt() ** 0),  # zeros_like at c = 0
        "sqrt_pow_t_sgn": lambda m, x: m.sgn((x - 1).sqrt() ** m.tensor(0.0)),
    }[name]
    np.testing.assert_array_equal(_grad(fn, descent), _grad(fn, torch))


def test_pow_base_zero_gradient_is_zero_where_its_formula_is_nan():
    # b ** var(x): the base's gradient is where(e == 0, 0, zero * ...) = 0, not 0 * nan
    for m in (torch, descent):
        b, x = m.tensor(2.0, requires_grad=True), m.tensor(1.0, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.sgn(b ** m.var(x, dim=0)).backward()
        assert float(b.grad + 0) == 0.0


def _r(m, *shape):
    return m.arange(float(np.prod(shape))).reshape(shape).sin()


_I = lambda m, *v: m.tensor(list(v), dtype=m.int64)  # noqa: E731
_EDGES = {
    # session 24's probe leftovers and session 23's "left as they are"
    "sum_to_size_no_size": lambda m: m.ones(2, 3).sum_to_size(),
    "sum_to_size_empty_tuple": lambda m: m.ones(2, 3).sum_to_size(()),
    "norm_p-1_empty": lambda m: m.zeros(0, 3).norm(-1, keepdim=True),
    "norm_p-2_empty_dim": lambda m: m.norm(m.zeros(0, 3), -2, dim=0),
    "softmax_complex": lambda m: m.ones(2, 3, dtype=m.complex64).softmax(0),
    "log_softmax_complex": lambda m: m.nn.functional.log_softmax(m.ones(3, dtype=m.complex64), 0),
    "softmax_dtype_complex": lambda m: m.softmax(m.ones(2), 0, dtype=m.complex64),
    "softmax_complex_empty": lambda m: m.softmax(m.ones(0, 3, dtype=m.complex64), 0),
    "batch_norm_momentum_none": lambda m: m.nn.functional.batch_norm(
        _r(m, 4, 3), None, None, training=True, momentum=None),
    "instance_norm_momentum_none": lambda m: m.nn.functional.instance_norm(
        _r(m, 1, 3, 4), momentum=None),
    "layer_norm_int_shape": lambda m: m.nn.functional.layer_norm(_r(m, 2, 3), 3),
    "rms_norm_int_shape": lambda m: m.nn.functional.rms_norm(_r(m, 2, 3), 3),
    "lrn_int64": lambda m: m.nn.functional.local_response_norm(
        (m.arange(30).reshape(1, 5, 6) % 7) - 2, 2),
    "lrn_int32": lambda m: m.nn.functional.local_response_norm(m.ones(1, 4, 3, dtype=m.int32), 2),
    "lrn_bool": lambda m: m.nn.functional.local_response_norm(m.ones(1, 4, 3, dtype=m.bool), 2),
    "take_along_dim_int32_flat": lambda m: m.take_along_dim(
        _r(m, 2, 3), m.tensor([0, 5], dtype=m.int32)),
    # linalg
    "cond_empty": lambda m: m.linalg.cond(m.zeros(2, 0, 0)),
    "cond_empty_nonsquare": lambda m: m.linalg.cond(m.zeros(0, 3)),
    "cond_empty_fro_nonsquare": lambda m: m.linalg.cond(m.zeros(0, 3), "fro"),
    "eigvalsh_int": lambda m: m.linalg.eigvalsh(m.eye(2, dtype=m.int64)),
    "lu_factor_int": lambda m: m.linalg.lu_factor(m.eye(2, dtype=m.int64))[0],
    "solve_triangular_int": lambda m: m.linalg.solve_triangular(
        m.eye(2, dtype=m.int64), m.eye(2, dtype=m.int64), upper=True),
    "cholesky_solve_int": lambda m: m.cholesky_solve(
        m.ones(2, 1, dtype=m.int64), m.eye(2, dtype=m.int64)),
    "cholesky_solve_nonsquare": lambda m: m.cholesky_solve(m.ones(0, 1), m.ones(0, 3)),
    "cholesky_inverse_nonsquare": lambda m: m.cholesky_inverse(m.ones(2, 0, 3)),
    "cholesky_inverse_int": lambda m: m.cholesky_inverse(m.eye(2, dtype=m.int64)),
    "geqrf_half": lambda m: m.geqrf(m.eye(2, dtype=m.float16))[0],
    "householder_half": lambda m: m.linalg.householder_product(
        m.eye(2, dtype=m.float16), m.ones(1, dtype=m.float16)),
    "vecdot_int": lambda m: m.linalg.vecdot(_I(m, 1, 2), _I(m, 3, 4)),
    "vander_half": lambda m: m.linalg.vander(m.ones(3, dtype=m.float16)),
    "matrix_norm_2_half_empty": lambda m: m.linalg.matrix_norm(m.zeros(0, 0, dtype=m.float16), 2),
    "tensordot_dims_past_ndim": lambda m: m.tensordot(m.ones(3), m.ones(3), dims=2),
    "tensordot_negative_dims": lambda m: m.tensordot(m.ones(3), m.ones(3), dims=-1),
    "fftfreq_0": lambda m: m.fft.fftfreq(0),
    "rfftfreq_0": lambda m: m.fft.rfftfreq(0, dtype=m.float64),
    "rfftfreq_negative_empty": lambda m: m.fft.rfftfreq(-2),
    "fftfreq_negative": lambda m: m.fft.fftfreq(-1),
    "fftfreq_int_dtype": lambda m: m.fft.fftfreq(3, dtype=m.int64),
    "fftfreq_d0": lambda m: m.fft.fftfreq(3, 0.0),
    # special
    "bessel_j0_half": lambda m: m.special.bessel_j0(m.ones(2, dtype=m.float16)),
    "ndtri_bfloat16": lambda m: m.special.ndtri(m.ones(2, dtype=m.bfloat16) / 2),
    "zeta_half": lambda m: m.special.zeta(m.ones(2, dtype=m.float16) * 2, 2.0),
    "chebyshev_t_half": lambda m: m.special.chebyshev_polynomial_t(m.ones(2, dtype=m.float16), 2),
    "special_round_int": lambda m: m.special.round(_I(m, 1, 2)),
    "gammainc_number": lambda m: m.special.gammainc(m.ones(2), 2.0),
    "igammac_number_first": lambda m: m.igammac(2.0, m.ones(2)),
    "gammainc_int": lambda m: m.special.gammainc(_I(m, 1, 2), _I(m, 1, 2)),
    "polygamma_subnormal": lambda m: m.special.polygamma(
        2, m.tensor([1e-310, -1e-310, 1e-101, 0.25], dtype=m.float64)),
    "gammainc_huge_a": lambda m: m.special.gammainc(m.tensor([1e38, 1e20, 1e10], dtype=m.float64),
                                                    m.tensor([3.5, 1e300, 1.0], dtype=m.float64)),
    "gammaincc_huge_a": lambda m: m.special.gammaincc(m.tensor([1e38]), m.tensor([3.5])),
    # searching
    "searchsorted_float_in_ints": lambda m: m.searchsorted(_I(m, -1, 0, 1, 1, 2), 1.5),
    "bucketize_float_in_uint8": lambda m: m.bucketize(1.5, m.tensor([0, 1, 1, 2], dtype=m.uint8)),
    "searchsorted_0d_boundaries": lambda m: m.searchsorted(m.tensor(1.0), m.ones(3)),
    "searchsorted_rows_mismatch": lambda m: m.searchsorted(m.ones(2, 3), m.ones(3)),
    "searchsorted_scalar_2d": lambda m: m.searchsorted(m.ones(2, 3), 1.0),
    "searchsorted_bool_empty": lambda m: m.searchsorted(
        m.zeros(0, dtype=m.bool), m.tensor([True])),
    # indexing
    "index_int16": lambda m: _r(m, 3, 4)[m.tensor([0, 2], dtype=m.int16)],
    "index_int8_setitem": lambda m: _r(m, 3, 4).__setitem__(m.tensor([0], dtype=m.int8), 1.0),
    "index_int16_0d": lambda m: _r(m, 3, 4)[m.tensor(1, dtype=m.int16)],
    "index_put_float_index": lambda m: _r(m, 3, 4).index_put_((m.tensor([0.0]),), m.ones(4)),
    "index_put_empty_accumulate": lambda m: m.ones(3, 0).index_put_(
        (m.zeros(0, dtype=m.int64),), m.tensor(1.0), accumulate=True),
    "index_fill_1d_value": lambda m: _r(m, 3, 4).index_fill_(1, _I(m, 0), m.tensor([1.0])),
    "scatter_reduce_mean_complex": lambda m: m.ones(2, 3, dtype=m.complex64).scatter_reduce_(
        1, _I(m, 0, 0).reshape(1, 2), m.tensor([[9 + 1j, -9]]), "mean"),
    "scatter_reduce_amax_complex": lambda m: m.ones(2, 3, dtype=m.complex64).scatter_reduce_(
        1, _I(m, 0, 0).reshape(1, 2), m.tensor([[9 + 1j, -9]]), "amax"),
    "scatter_reduce_mean_bool": lambda m: m.ones(2, 3, dtype=m.bool).scatter_reduce(
        1, _I(m, 0).reshape(1, 1), m.zeros(1, 1, dtype=m.bool), "mean"),
    # Python scalars
    "atan2_number": lambda m: m.ones(2).atan2(2),
    "atan2_number_first": lambda m: m.atan2(1.0, m.ones(2)),
    "add_bool_alpha": lambda m: _I(m, 1, 2).add(1, alpha=True),
    "sub_bool_alpha_float": lambda m: m.ones(2).sub(m.ones(2), alpha=False),
    "add_alpha_int32_overflow": lambda m: _I(m, 1, 2).int().add(1, alpha=2**40),
    "add_alpha_float32_overflow": lambda m: m.ones(2).add(m.ones(2), alpha=1e300),
    "add__alpha_uint8_overflow": lambda m: m.ones(2, dtype=m.uint8).add_(1, alpha=2**40),
    "add__bool_alpha": lambda m: m.ones(2).add_(1, alpha=True),
    "sub__float_alpha_int": lambda m: _I(m, 1, 2).sub_(1, alpha=0.5),
    "add_complex_alpha": lambda m: m.ones(2, dtype=m.complex64).sub(1, alpha=1 + 2j),
    "addcmul_value_overflow": lambda m: m.ones(2).addcmul(m.ones(2), m.ones(2), value=1e300),
    "addcmul_value_int8": lambda m: m.ones(2, dtype=m.int8).addcmul(
        m.ones(2, dtype=m.int8), m.ones(2, dtype=m.int8), value=300),
    "lerp_weight_overflow": lambda m: m.ones(2).lerp(m.zeros(2), 1e300),
    "float_power_huge_int": lambda m: m.ones(2).float_power(2**70),
    "float_power_complex_zero": lambda m: m.tensor([0j, 1 + 1j, math.nan]).float_power(0),
    "float_power__complex_zero": lambda m: m.tensor([0j, 2j], dtype=m.complex128).float_power_(
        -0.0),
    "fill_complex64_overflow": lambda m: m.ones(2, dtype=m.complex64).fill_(1e300),
    "full_complex64_overflow": lambda m: m.full((2,), 1e300j, dtype=m.complex64),
    "where_complex128_number": lambda m: m.where(
        m.tensor([True, False]), m.ones(2, dtype=m.complex128), 1e300),
    "add_complex128_number": lambda m: m.ones(2, dtype=m.complex128) + 1e300,
    "tensor_nan_int64": lambda m: m.tensor([math.nan], dtype=m.int64),
    "tensor_huge_int64": lambda m: m.tensor([1e300], dtype=m.int64),
    "tensor_complex_float32": lambda m: m.tensor([1 + 2j], dtype=m.float32),
    "tensor_complex_int8": lambda m: m.tensor([1 + 2j], dtype=m.int8),
}  # fmt: skip


@pytest.mark.parametrize("name", list(_EDGES))
def test_edges_as_torch(name):
    _same(_EDGES[name])


def test_batch_norm_modules_still_take_momentum_none():
    # the modules' cumulative average passes a number to F.batch_norm (PyTorch's too)
    for m in (torch, descent):
        bn = m.nn.BatchNorm1d(3, momentum=None)
        bn(_r(m, 4, 3))
        assert float(bn.num_batches_tracked) == 1
        m.nn.LayerNorm(3)(_r(m, 2, 3))
