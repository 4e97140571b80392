"""Session 26's fidelity fixes at the edges (helper-186; the probes are
/work/notes/s25/h175/probe.py --grad and /work/notes/s26/h186/probe2.py): gradients, results,
dtypes and error classes where descent differed from PyTorch 2.13 (the oracle), each case
compared with torch computed here."""

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
    computes the same dtype, shape and values (nan and the sign of a zero where torch's)."""
    pair = results_or_same_error(fn, torch, descent)
    if pair is None:
        return
    tr, dr = pair
    assert str(dr.dtype).split(".")[-1] == str(tr.dtype).split(".")[-1], (tr.dtype, dr.dtype)
    assert tuple(dr.shape) == tuple(tr.shape)
    t, d = tr.detach().resolve_conj().numpy(), dr.detach().numpy()
    np.testing.assert_allclose(d, t, rtol=rtol)
    d, t = d.real, t.real  # (complex: the real parts' zeros)
    assert np.array_equal(np.signbit(d[d == 0]), np.signbit(t[t == 0]))


def _grads(fn, m, *arrays, dtype="float64"):
    """The result of fn(m, *leaves) and the leaves' gradients under weights cos(i)."""
    xs = [m.tensor(a, dtype=getattr(m, dtype), requires_grad=True) for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = fn(m, *xs)
        w = m.arange(float(y.numel()), dtype=y.dtype).reshape(y.shape).cos()
        (y * w).sum().backward()
    return [y.detach().numpy()] + [x.grad.numpy() for x in xs]


def _same_grads(fn, *arrays, dtype="float64"):
    for t, d in zip(_grads(fn, torch, *arrays, dtype=dtype),
                    _grads(fn, descent, *arrays, dtype=dtype), strict=True):  # fmt: skip
        np.testing.assert_allclose(d, t, rtol=1e-5, atol=1e-6)  # nan where torch's, inf too


# -- gradients: triangular factors solved without an error (PyTorch's trsm: inf / nan) --------
WIDE0 = [[0.0, 0.72, 1.35]]  # R's (and U's) 1x1 leading block is 0
ONES = np.ones((3, 3)).tolist()  # rank 1: zeros on U's diagonal
# rank 1 with R's zeros exact under every BLAS: ONES's R[1, 1] is 0 or ~1e-16 by the kernel's
# rounding (OpenBLAS's Haswell kernels on an Intel host: 0, torch's MKL: not), a 3x3 whose only
# nonzero row is the first leaves Householder's trailing block exactly 0
ROW1 = [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
RANK1 = [[1.0, 2.0], [2.0, 4.0]]


@pytest.mark.parametrize(
    "name,a",
    [(n, a) for n in ("qr_R", "qr_Q") for a in (WIDE0, ROW1)]  # (a rank-1 2x2 QR: R's zero
    + [(n, a) for n in ("lu_U", "lu_L") for a in (WIDE0, ONES, RANK1)],  # is ~1e-16, not 0)
)
def test_qr_lu_backward_at_singular_factors_as_torch(name, a):
    # descent raised LinAlgError from the general solve of its backward pass; PyTorch's
    # triangular solves return infinities and nans
    fn = {
        "qr_R": lambda m, x: m.linalg.qr(x)[1],
        "qr_Q": lambda m, x: m.linalg.qr(x, mode="complete")[0],
        "lu_U": lambda m, x: m.linalg.lu(x)[2],
        "lu_L": lambda m, x: m.linalg.lu(x)[1],
    }[name]
    _same_grads(fn, a)


@pytest.mark.parametrize(
    "a,b,kw",
    [
        ([[1.0, 2.0], [0.0, 0.0]], [[1.0], [0.0]], dict(upper=True)),  # 0 / 0
        (
            [[0.0, 2.0, 1.0], [0.0, 1.0, 3.0], [0, 0, 2.0]],
            [[1.0, 1], [1, 1], [0, 1]],
            dict(upper=True),
        ),
        ([[0.0, 0.0], [1.0, 3.0]], [[1.0, 2.0]], dict(upper=False, left=False)),
        ([[0.0, 5.0], [1.0, 3.0]], [[1.0, 2.0]], dict(upper=False, left=False, unitriangular=True)),
    ],
)
def test_solve_triangular_of_a_singular_triangle_as_torch(a, b, kw):
    # descent's composite raised LinAlgError in the forward pass
    _same_grads(lambda m, x, y: m.linalg.solve_triangular(x, y, **kw), a, b, dtype="float32")


def test_solve_triangular_gradient_finite_differences():
    # the triangular Solve node's backward (the transposed triangle solved the other way)
    a = np.triu(np.arange(1.0, 10.0).reshape(3, 3)) + np.eye(3)
    b = np.cos(np.arange(6.0)).reshape(3, 2)
    for upper, left in [(True, True), (False, False)]:
        A = descent.tensor(a if upper else a.T, dtype=descent.float64, requires_grad=True)
        B = descent.tensor(b if left else b.T, dtype=descent.float64, requires_grad=True)
        assert descent.autograd.gradcheck(
            lambda x, y, u=upper, lf=left: descent.linalg.solve_triangular(x, y, upper=u, left=lf),
            (A, B),
        )


@pytest.mark.parametrize("op", ["xlogy", "xlog1py"])
def test_xlogy_gradient_at_zero_with_a_nan_number_as_torch(op):
    # PyTorch's Scalar_Other formula masks x = 0 unless the number is > 0 (> -1): a nan
    # Python number gives 0 there (descent: nan); a nan tensor keeps nan in both
    x = [0.0, -0.0, 1.5, 0.0]
    _same_grads(lambda m, t: getattr(m.special, op)(t, math.nan), x)
    _same_grads(lambda m, t: getattr(m.special, op)(t, m.full_like(t, math.nan)), x)
    _same_grads(lambda m, t: getattr(m, op if op == "xlogy" else "xlogy")(t, -1.0), x)


# -- losses: keyword arguments ----------------------------------------------------------------
def _x(m, dt="float32"):
    return (m.arange(12.0) * 0.37).sin().reshape(4, 3).to(getattr(m, dt))


@pytest.mark.parametrize(
    "name",
    ["ce_w64", "ce_w16", "ce_x64_w32", "nll_w64", "mm_w64", "ce_prob_w64", "ce_kdim_w64"],
)
def test_class_weight_dtype_as_torch(name):
    # the index kernels take a weight of the input's dtype only (descent cast it); the
    # probability path's composite promotes (descent kept float32)
    t = lambda m: m.tensor([0, 2, 1, 2])  # noqa: E731
    w = lambda m, dt="float64": m.ones(3, dtype=getattr(m, dt))  # noqa: E731
    F = lambda m: m.nn.functional  # noqa: E731
    fn = {
        "ce_w64": lambda m: F(m).cross_entropy(_x(m), t(m), weight=w(m)),
        "ce_w16": lambda m: F(m).cross_entropy(_x(m), t(m), weight=w(m, "float16")),
        "ce_x64_w32": lambda m: F(m).cross_entropy(_x(m, "float64"), t(m), weight=w(m, "float32")),
        "nll_w64": lambda m: F(m).nll_loss(_x(m), t(m), weight=w(m)),
        "mm_w64": lambda m: F(m).multi_margin_loss(_x(m), t(m), weight=w(m)),
        "ce_prob_w64": lambda m: F(m).cross_entropy(_x(m), _x(m).softmax(1), weight=w(m) * 2),
        "ce_kdim_w64": lambda m: F(m).cross_entropy(_x(m).reshape(2, 3, 2),
                                                   m.tensor([[0, 1], [2, 0]]), weight=w(m)),
    }[name]  # fmt: skip
    _same(fn, rtol=1e-6)


@pytest.mark.parametrize("ls", [-0.3, -2.0, 1.5])
@pytest.mark.parametrize("target", ["index", "prob"])
def test_label_smoothing_out_of_range_as_torch(ls, target):
    # PyTorch smooths only when label_smoothing > 0 (a negative value: none) and checks
    # <= 1 at the call; descent raised for any value outside [0, 1], the module at __init__
    def fn(m):
        tgt = m.tensor([0, 2, 1, 2]) if target == "index" else _x(m).flip(0).softmax(1)
        w = m.tensor([0.5, 2.0, 1.0])
        return m.nn.CrossEntropyLoss(weight=w, label_smoothing=ls, reduction="none")(_x(m), tgt)

    _same(fn, rtol=1e-6)


@pytest.mark.parametrize(
    "name", ["t_over", "t_neg", "t_nan", "x_nan", "mse_c", "huber_c", "smooth_l1_c", "empty_sum"]
)
def test_loss_input_checks_as_torch(name):
    F = lambda m: m.nn.functional  # noqa: E731
    p = lambda m: _x(m).sigmoid()  # noqa: E731
    c = lambda m: _x(m).to(m.complex64)  # noqa: E731
    fn = {
        "t_over": lambda m: F(m).binary_cross_entropy(p(m), p(m) + 1),  # descent computed
        "t_neg": lambda m: F(m).binary_cross_entropy(p(m), -p(m)),
        "t_nan": lambda m: F(m).binary_cross_entropy(p(m), p(m) * math.nan),
        "x_nan": lambda m: F(m).binary_cross_entropy(p(m) * math.nan, p(m)),  # (nan: outside)
        "mse_c": lambda m: F(m).mse_loss(c(m), c(m)),  # descent: a complex loss
        "huber_c": lambda m: F(m).huber_loss(c(m), c(m), reduction="none"),
        "smooth_l1_c": lambda m: F(m).smooth_l1_loss(c(m), c(m)),
        # a probability target's sum is -(x t).sum(): -0.0 for an empty batch
        "empty_sum": lambda m: F(m).cross_entropy(m.zeros(0, 3), m.zeros(0, 3), reduction="sum"),
    }[name]
    _same(fn)


# -- reductions: dtype=, out=, other=, dims ----------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "norm_f64", "norm_p1_dim_f64", "tnorm_kd_f64", "norm_nuc_f64", "norm_f16", "norm_int_dtype",
        "vnorm_f16", "vnorm_f64_to_f32", "norm_fro_3dims", "norm_fro_3dims_0d", "norm_p2_3dims",
        "norm_int_dim9", "norm_inf_empty", "mean_int_dim9", "std_int_dim9", "softmax_int_dtype",
        "log_softmax_int_dtype", "max_other", "min_other", "sum_str_dim", "sum_float_dim",
        "nansum_c64", "nansum_c64_empty",
    ],
)  # fmt: skip
def test_reduction_arguments_as_torch(name):
    x = lambda m: (m.arange(24.0) * 0.37).sin().reshape(2, 3, 4)  # noqa: E731
    i = lambda m: m.arange(6).reshape(2, 3)  # noqa: E731
    fn = {
        "norm_f64": lambda m: m.norm(x(m), dtype=m.float64),  # descent: no dtype= keyword
        "norm_p1_dim_f64": lambda m: m.norm(x(m), p=1, dim=1, dtype=m.float64),
        "tnorm_kd_f64": lambda m: x(m).norm(2, -1, True, dtype=m.float64),
        "norm_nuc_f64": lambda m: m.norm(x(m)[0], p="nuc", dtype=m.float64),
        "norm_f16": lambda m: m.norm(x(m), dtype=m.float16),  # narrowing: PyTorch raises
        "norm_int_dtype": lambda m: m.norm(x(m), dtype=m.int64),
        "vnorm_f16": lambda m: m.linalg.vector_norm(x(m), dtype=m.float16),
        "vnorm_f64_to_f32": lambda m: m.linalg.vector_norm(x(m).double(), dtype=m.float32),
        "norm_fro_3dims": lambda m: m.norm(x(m), dim=(0, 1, 2)),  # 'fro': a matrix norm's error
        "norm_fro_3dims_0d": lambda m: m.norm(m.tensor(2.0), dim=(0, 1, 2)),
        "norm_p2_3dims": lambda m: m.norm(x(m), p=2, dim=(0, 1, 2)),  # (the vector norm)
        "norm_int_dim9": lambda m: i(m).norm(dim=9),  # the dtype error first
        "norm_inf_empty": lambda m: m.zeros(3, 0).norm(math.inf, -1),
        "mean_int_dim9": lambda m: i(m).mean(9),
        "std_int_dim9": lambda m: i(m).std(9),
        "softmax_int_dtype": lambda m: x(m).softmax(-1, dtype=m.int64),  # descent computed
        "log_softmax_int_dtype": lambda m: x(m).log_softmax(0, dtype=m.int32),
        "max_other": lambda m: m.max(x(m), other=x(m).flip(0)),  # descent: no other=
        "min_other": lambda m: m.min(x(m), other=x(m).flip(0)),
        "sum_str_dim": lambda m: x(m).sum(dim=("a",)),  # a name: TypeError (ValueError)
        "sum_float_dim": lambda m: x(m).sum(1.0),
        "nansum_c64": lambda m: x(m).nansum(dtype=m.complex64),  # no complex kernel
        "nansum_c64_empty": lambda m: m.zeros(0, 2).nansum(dtype=m.complex64),
    }[name]
    _same(fn, rtol=1e-6)


@pytest.mark.parametrize("op", ["sum", "cumsum", "cumprod", "prod", "nansum"])
def test_dtype_and_out_must_agree_as_torch(op):
    # descent cast the result into out
    def fn(m, dt="float32"):
        return getattr(m, op)(
            m.ones(2, 3), 0, dtype=getattr(m, dt), out=m.empty(0, dtype=m.float64)
        )

    _same(fn)
    _same(lambda m: fn(m, "float64"))


# -- nn.functional on 0-d, empty and integer inputs ---------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["glu_empty0", "glu_empty_last", "pdist_0d", "pdist_0d_p1_kd", "elu_int_empty",
     "gelu_bool_empty", "softplus_int_0d", "glu_int_empty", "max_pool1d_stride_empty"],
)  # fmt: skip
def test_functional_edges_as_torch(name):
    F = lambda m: m.nn.functional  # noqa: E731
    fn = {
        "glu_empty0": lambda m: F(m).glu(m.zeros(0, 3), 0),  # descent: a ValueError in split
        "glu_empty_last": lambda m: F(m).glu(m.zeros(3, 0)),
        "pdist_0d": lambda m: F(m).pairwise_distance(m.tensor(1.5), m.tensor(-0.4)),
        "pdist_0d_p1_kd": lambda m: F(m).pairwise_distance(m.tensor(1.5), m.tensor(0.2), 1,
                                                           keepdim=True),
        # an empty integer input raises too (descent returned an empty float32 tensor)
        "elu_int_empty": lambda m: F(m).elu(m.zeros(0, 3, dtype=m.int64)),
        "gelu_bool_empty": lambda m: F(m).gelu(m.zeros(0, dtype=m.bool)),
        "softplus_int_0d": lambda m: F(m).softplus(m.tensor(2)),
        "glu_int_empty": lambda m: F(m).glu(m.zeros(0, 2, dtype=m.int64)),
        # stride=[] is the kernel size (descent's max_pool1d alone raised)
        "max_pool1d_stride_empty": lambda m: F(m).max_pool1d(_x(m)[None], 2, []),
    }[name]  # fmt: skip
    _same(fn)


def test_glu_and_pairwise_distance_gradients_as_torch():
    _same_grads(lambda m, a: m.nn.functional.glu(a, 0), np.zeros((0, 3)))
    _same_grads(lambda m, a, b: m.nn.functional.pairwise_distance(a, b), 1.5, -0.4)
