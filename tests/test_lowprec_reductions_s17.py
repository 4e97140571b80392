"""float16 and bfloat16 reductions, scans and normalisations as PyTorch's CPU kernels round them.

PyTorch's CPU kernels for the reduced-precision dtypes compute in float32, but not always with
one rounding at the end: logsumexp is a composite of float16/bfloat16 ops (each rounded),
log_softmax along the last dim keeps its sum and log in low-precision buffers, softmax across
an inner dim stores exp(x - max) in its output outside the kernel's vector loop, and backward
formulas (derivatives.yaml) are chains of low-precision ops. Each test compares descent with
torch 2.13 bit for bit (or, where the order of a float32 accumulation differs, within the
difference one rounding allows) on random data with long rows.
"""

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")

DTYPES = {
    "float16": (torch.float16, descent.float16),
    "bfloat16": (torch.bfloat16, descent.bfloat16),
}


def _pair(a, dn):
    """a rounded to the dtype, as a torch and a descent leaf needing gradients."""
    tdt, ddt = DTYPES[dn]
    t = torch.tensor(np.asarray(a, np.float32)).to(tdt).requires_grad_(True)
    d = descent.tensor(t.detach().float().numpy()).to(ddt).requires_grad_(True)
    return t, d


def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().float().numpy().astype(np.float64)
    return np.asarray(x.detach().to(descent.float32).numpy(), np.float64)


def _compare(fn, a, dn, bad=0, seed=1):
    """fn(torch, t) against fn(descent, d): the values and the gradient of sum(out * w), at
    most `bad` elements apart (each within two units in the last place)."""
    t, d = _pair(a, dn)
    # the oracle at descent's thread count: PyTorch's softmax across an inner dim splits its
    # positions per thread, and descent follows get_num_threads (softmax._vector_lanes)
    threads = torch.get_num_threads()
    torch.set_num_threads(descent.get_num_threads())
    try:
        ty = fn(torch, t)
        w = np.random.default_rng(seed).standard_normal(tuple(ty.shape)).astype(np.float32)
        tg = torch.autograd.grad(ty, t, torch.tensor(w).to(t.dtype))[0]
    finally:
        torch.set_num_threads(threads)
    dy = fn(descent, d)
    assert str(dy.dtype).endswith(dn)
    dg = descent.autograd.grad(dy, d, descent.tensor(w).to(d.dtype))[0]
    assert str(dg.dtype).endswith(dn)
    for a_, b_ in ((_np(ty), _np(dy)), (_np(tg), _np(dg))):
        assert a_.shape == b_.shape
        off = ~((a_ == b_) | (np.isnan(a_) & np.isnan(b_)))
        assert off.sum() <= bad, (int(off.sum()), a_.size)
        if off.any():
            eps = 2.0**-10 if dn == "float16" else 2.0**-7
            np.testing.assert_allclose(b_[off], a_[off], rtol=2 * eps, atol=2 * eps)


def _data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape) * 2 + 0.5


SHAPES_DIMS = [((3000,), 0), ((5, 1000), 1), ((1000, 5), 0), ((1000, 5), 1), ((4, 6, 33), 1)]


@pytest.mark.parametrize("dn", ["float16", "bfloat16"])
@pytest.mark.parametrize(("shape", "dim"), SHAPES_DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
def test_logsumexp_is_pytorchs_composite(dn, shape, dim, keepdim):
    # x - max, exp, the float32 sum and log each rounded to the low dtype (ReduceOps.cpp); the
    # backward grad * (x - y).exp() in low-precision ops. Was 4/19 (float16) and 9/19
    # (bfloat16) cases off in values (float16 up to 12x PyTorch's error), 18/19 in bfloat16
    # gradients.
    _compare(lambda m, x: m.logsumexp(x, dim, keepdim=keepdim), _data(shape), dn)


@pytest.mark.parametrize("dn", ["float16", "bfloat16"])
def test_logsumexp_all_dims_and_zero_d(dn):
    _compare(lambda m, x: m.logsumexp(x, (0, 1)), _data((40, 50)), dn)
    _compare(lambda m, x: m.logsumexp(x, 0), _data(()), dn)


@pytest.mark.parametrize("dn", ["float16", "bfloat16"])
@pytest.mark.parametrize(
    ("shape", "dim"),
    [((5, 1000), 0), ((1000, 5), 0), ((4, 6, 33), 0), ((4, 6, 33), 1), ((7, 64, 3), 1),
     ((3, 40, 70), 0), ((3, 50, 37), 1)],
)  # fmt: skip
def test_softmax_across_an_inner_dim_vector_and_scalar_loops(dn, shape, dim):
    # SoftMaxKernel.cpp's _vec_softmax: exp(x - max) * (1 / sum) rounded once in its vector
    # loop, exp(x - max) rounded first in its scalar loop (the tail of each inner row, and where
    # a thread's range ends). float16 rounded once everywhere (up to 958 of 5,000 off).
    _compare(lambda m, x: m.softmax(x, dim), _data(shape), dn, bad=2)


@pytest.mark.parametrize("dn", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(3000,), (5, 1000), (1000, 5), (4, 6, 33)])
def test_log_softmax_last_dim_keeps_sum_and_log_in_low_precision(dn, shape):
    # _vec_log_softmax_lastdim keeps the sum and its log in float16 buffers as in bfloat16
    # (float16 was rounded once: up to 1,138 of 5,000 values off)
    _compare(lambda m, x: m.log_softmax(x, -1), _data(shape), dn, bad=2)


@pytest.mark.parametrize("dn", ["float16", "bfloat16"])
def test_soft_cross_entropy_spatial_takes_log_softmax_along_the_class_dim(dn):
    # probability targets with spatial dims: log_softmax along dim 1 (an inner dim), as
    # PyTorch, not along the last dim of the flattened (N*d, C) rows
    rng = np.random.default_rng(2)
    p = rng.random((8, 10, 7))
    p = p / p.sum(1, keepdims=True)
    tp = torch.tensor(p).to(DTYPES[dn][0])
    dp = descent.tensor(tp.float().numpy()).to(DTYPES[dn][1])

    def ce(m, x):
        f = torch.nn.functional if m is torch else descent.nn.functional
        return f.cross_entropy(x, tp if m is torch else dp, reduction="none")

    _compare(ce, _data((8, 10, 7)), dn, bad=1)


@pytest.mark.parametrize("dn", ["float16", "bfloat16"])
@pytest.mark.parametrize("op", ["var", "std", "var_mean", "std_mean"])
@pytest.mark.parametrize(
    "kw",
    [{}, {"dim": 0}, {"dim": 1, "keepdim": True}, {"dim": 0, "correction": 0}],
)
def test_var_std_backward_rounds_as_pytorchs_formula(dn, op, kw):
    # var_backward: (2 / dof) * grad (the scale in float32, not rounded to float16 as NumPy's
    # weak scalar was) times (x - x.mean()), each op rounded; std_backward divides grad by
    # result * 2 first. Was 9/24 (float16) and 23/24 (bfloat16) cases off.
    def f(m, x):
        out = getattr(m, op)(x, **kw)
        return out[0] if isinstance(out, tuple) else out

    _compare(f, _data((1000, 5)), dn, bad=1)
    _compare(f, _data((5, 700)), dn, bad=1)


@pytest.mark.parametrize("kw", [{}, {"dim": 0}, {"dim": 1, "keepdim": True}])
def test_mean_backward_divides_float16_by_n(kw):
    # PyTorch's grad / n in float32, rounded once; gy * (1 / n) took 1 / n to float16 first
    # (10/19 cases off, one unit each)
    _compare(lambda m, x: m.mean(x, **kw), _data((1000, 7)), "float16")
    _compare(lambda m, x: m.mean(x, **kw), _data((3, 3001)), "float16")


@pytest.mark.parametrize("dn", ["float16", "bfloat16"])
@pytest.mark.parametrize("p", [2, 3, 1.5, 0.5])
@pytest.mark.parametrize("kw", [{}, {"dim": 0}, {"dim": 1, "keepdim": True}])
def test_vector_norm_backward_rounds_as_pytorchs_norm_backward(dn, p, kw):
    # norm_backward's low-precision ops each rounded (bfloat16 was 18/19 cases off for p = 2
    # and 3), and for p < 1 in its order (self_scaled * grad) * norm^(1 - p) (float16: 9/19)
    bad = 40 if (dn, p) == ("bfloat16", 0.5) else 1  # a few bfloat16 units at p = 0.5
    _compare(lambda m, x: m.linalg.vector_norm(x, p, **kw), _data((1000, 5)), dn, bad=bad)


@pytest.mark.parametrize("dn", ["float16", "bfloat16"])
@pytest.mark.parametrize("kw", [{}, {"dim": 1}])
def test_tensor_norm_backward(dn, kw):
    _compare(lambda m, x: x.norm(**kw), _data((5, 700)), dn, bad=1)


@pytest.mark.parametrize("dn", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(64, 10), (8, 10, 7), (4, 5, 3, 6)])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_cross_entropy_class_targets_as_log_softmax_then_nll_loss(dn, shape, reduction):
    # PyTorch runs log_softmax (along dim 1) and nll_loss: float16 ran descent's fused op in
    # float16 (up to 3,104 of 4,800 gradient elements off), bfloat16 with spatial dims took
    # log_softmax along the flattened rows' last dim (50 of 360)
    t = np.random.default_rng(4).integers(0, shape[1], (shape[0],) + shape[2:])

    def ce(m, x):
        f = torch.nn.functional if m is torch else descent.nn.functional
        return f.cross_entropy(x, m.tensor(t), reduction=reduction)

    # the mean's value: PyTorch sums the rows in the low dtype (one unit apart at most)
    _compare(ce, _data(shape) * 1.5, dn, bad=1 if reduction == "mean" else 0)


@pytest.mark.parametrize(
    ("shape", "dim", "seed"), [((1000, 5), 0, 2), ((1000, 5), 0, 6), ((3000,), 0, 0),
                               ((4, 6, 33), 1, 0)]
)  # fmt: skip
def test_cumsum_float16_accumulates_in_float32(shape, dim, seed):
    # PyTorch's float16 scan accumulates in float32 (acc_type) and rounds each output; a
    # float64 accumulator put 1-2 of 5,000 values a unit apart (seeds 2 and 6), and some of
    # the backward's (a reversed cumsum of a cancelling gradient)
    _compare(lambda m, x: m.cumsum(x, dim), _data(shape, seed), "float16")


@pytest.mark.parametrize("dn", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(3000,), (5, 1000), (1000, 5), (4, 6, 33)])
def test_layer_norm_input_gradient_reads_the_rounded_statistics(dn, shape):
    # PyTorch saves mean and 1/std in the input's dtype and its backward kernel reads those:
    # descent's float32 statistics put 1,352-2,281 of 3,000-5,000 gradient elements apart
    # (PyTorch's error up to 8x one rounding's)
    _compare(lambda m, x: m.nn.functional.layer_norm(x, x.shape[-1:]), _data(shape), dn, bad=5)
