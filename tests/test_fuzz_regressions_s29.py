"""Descent-side leftovers of session 28's second-order / complex fuzz (tests/fuzz_s28.py;
docs/fuzz_long_run.md, "Session 29 (helper-218)"). Each case runs the same code in descent and
in torch 2.13 and compares values and gradients (nan positions exact)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import descent


def _np(t):
    t = t.detach()
    return t.resolve_conj().numpy() if isinstance(t, torch.Tensor) else t.numpy()


def _same(d, t, rtol=1e-12, atol=1e-12):
    a, b = _np(d), _np(t)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    if a.dtype.kind == "c":
        a, b = np.stack([a.real, a.imag]), np.stack([b.real, b.imag])
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


# ---------------------------------------------------------------------------------------------
# 1. imag's backward: d Im(z) / d Re(z) is 0, so the gradient is 0 + i gy exactly, also where
# gy is nan or inf (complex fuzz 28611071: descent multiplied by 1j, (nan + 0i) * i = nan + nan i)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("gy", [math.nan, math.inf, -math.inf, 2.5])
def test_imag_backward_keeps_the_real_part_zero(dtype, create_graph, gy):
    outs = []
    for m in (descent, torch):
        z = m.tensor([0.5 - 0.25j, -1.0 + 2.0j], dtype=getattr(m, dtype), requires_grad=True)
        y = m.imag(z)
        g = m.full((2,), gy, dtype=y.dtype)
        (gz,) = m.autograd.grad(y, z, g, create_graph=create_graph)
        outs.append(gz)
    _same(*outs)


def test_imag_backward_second_order():
    outs = []
    for m in (descent, torch):
        z = m.tensor([0.5 - 0.25j, -1.0 + 2.0j], dtype=m.complex128, requires_grad=True)
        (gz,) = m.autograd.grad((m.imag(z) ** 3).sum(), z, create_graph=True)
        (gzz,) = m.autograd.grad(m.imag(gz).sum(), z)
        outs.append((gz, gzz))
    for d, t in zip(*outs, strict=True):
        _same(d, t)


def test_imag_of_a_nan_power_the_fuzz_program():
    """complex fuzz 28611071: (imag(x) * 0.5) ** 0.5 of negative parts is nan, and so is its
    gradient, but only in the imaginary part of x's gradient."""
    outs = []
    for m in (descent, torch):
        x = m.tensor([[0.078 - 0.104j, 0.0 - 0.289j, -0.133 - 0.355j]], dtype=m.complex64,
                     requires_grad=True)  # fmt: skip
        v3 = (m.imag(x) * 0.5) ** 0.5
        ct = m.tensor([[-1.3, 0.95, -0.12]], dtype=m.float64)
        outs.append(m.autograd.grad((v3 * ct).sum(), [x])[0])
    _same(*outs)


# ---------------------------------------------------------------------------------------------
# 2. irfftn's gradient: the output does not depend on the imaginary parts of the bins that are
# their own mirror image (index 0 and n/2 along each axis), so their gradient is exactly 0, also
# where the output gradient holds nan / inf (complex fuzz 28604337: the c2c passes of descent's
# n-d rfftn of the gradient spread the nan into them). An output gradient that is nan (or
# +-inf) everywhere makes every other bin nan in both libraries; with one nan, which bins it
# reaches depends on the FFT algorithm (the fuzz's KNOWN non-finite class), so finite gradients
# are compared by value.


_IRFFTN_CASES = [
    ((5,), None, None),
    ((2, 4), (7,), None),
    ((4, 4), None, None),
    ((3, 4), (3, 6), None),
    ((2, 4, 3), None, (0, 2)),
    ((4, 3), (4, 5), (0, 1)),
]


@pytest.mark.parametrize("shape, s, dim", _IRFFTN_CASES)
@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("fill", [None, math.nan, math.inf])
def test_irfftn_gradient_of_self_mirrored_imaginary_parts(shape, s, dim, create_graph, fill):
    rng = np.random.default_rng(5)
    x0 = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    outs = []
    for m in (descent, torch):
        x = m.tensor(x0, dtype=m.complex128, requires_grad=True)
        y = m.fft.irfftn(x, s=s, dim=dim)
        g = np.arange(y.numel(), dtype=np.float64).reshape(tuple(y.shape))
        if fill is not None:
            g[...] = fill
        (gx,) = m.autograd.grad(y, x, m.tensor(g), create_graph=create_graph)
        outs.append(gx)
    _same(*outs)


def test_irfftn_nan_power_the_fuzz_program():
    rng = np.random.default_rng(28604337)
    x0 = rng.standard_normal((4, 4)) + 1j * rng.standard_normal((4, 4))
    ct = rng.standard_normal((4, 6))
    outs = []
    for m in (descent, torch):
        x = m.tensor(x0, dtype=m.complex128, requires_grad=True)
        v3 = m.fft.irfftn(x).neg() ** 0.5
        outs.append(m.autograd.grad((v3 * m.tensor(ct)).sum(), [x])[0])
    _same(*outs)


# ---------------------------------------------------------------------------------------------
# 3. 0 ** z for a complex z: PyTorch's pow_backward_exponent gives 0 where z is real and >= 0,
# also at z = 0 where 0 ** 0j is nan (C's cpow); descent gave nan there (complex fuzz 28607141).
# For Re z > 0, Im z != 0 PyTorch's 0 * log(0) is nan, descent keeps the limit 0 (KNOWN class
# of the fuzz: 0 ** z is 0 there)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("create_graph", [False, True])
def test_zero_base_power_gradient_at_zero_exponent(dtype, create_graph):
    z0 = [0j, 1 + 0j, 2.5 + 0j, -0.5 + 0j, -0.5 + 2j, 2j, 0j]
    outs = []
    for m in (descent, torch):
        z = m.tensor(z0, dtype=getattr(m, dtype), requires_grad=True)
        y = 0**z
        (g,) = m.autograd.grad((y.real * 1.5 + y.imag * 0.5).sum(), z, create_graph=create_graph)
        outs.append((y, g))
    for d, t in zip(*outs, strict=True):
        _same(d, t)


def test_zero_base_power_gradient_off_the_real_axis_is_the_limit():
    z = descent.tensor([0.5 + 1j, 2 - 3j], dtype=descent.complex128, requires_grad=True)
    y = 0**z
    (g,) = descent.autograd.grad((y.real + y.imag).sum(), z)
    assert (y.detach().numpy() == 0).all() and (g.numpy() == 0).all()


# ---------------------------------------------------------------------------------------------
# 4. det's second derivative at a singular real matrix (det = 0): descent raised (the grad2
# fuzz's KNOWN class "det: create_graph=True"); PyTorch differentiates its SVD form of the
# cofactor matrix, and so does descent now. The cofactor matrix is a polynomial in A, so central
# differences of the first derivative are a third opinion.

_SINGULAR = [
    [[1.0, 2.0], [2.0, 4.0]],
    [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]],
    [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [0.0, 1.0, 5.0]],
    [[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0],
                                                            [0.0, 0.0, 3.0]]],
]  # fmt: skip


def _cofactor_np(a):
    """det(A) A^{-T} by minors (any A)."""
    n = a.shape[-1]
    out = np.zeros_like(a)
    for i in range(n):
        for j in range(n):
            minor = np.delete(np.delete(a, i, -2), j, -1)
            out[..., i, j] = (-1) ** (i + j) * (np.linalg.det(minor) if n > 1 else 1.0)
    return out


@pytest.mark.parametrize("k", range(len(_SINGULAR)))
def test_det_second_derivative_at_a_singular_matrix(k):
    a0 = np.array(_SINGULAR[k])
    rng = np.random.default_rng(k)
    ct1, ct2 = rng.standard_normal(a0.shape[:-2]), rng.standard_normal(a0.shape)
    outs = []
    for m in (descent, torch):
        a = m.tensor(a0, requires_grad=True)
        d = m.linalg.det(a)
        (g,) = m.autograd.grad((d * m.tensor(ct1)).sum(), a, create_graph=True)
        (h,) = m.autograd.grad((g * m.tensor(ct2)).sum(), a)
        outs.append((d, g, h))
    for d, t in zip(*outs, strict=True):
        _same(d, t, rtol=1e-10, atol=1e-10)
    ct1b = ct1[..., None, None]
    fd = np.zeros_like(a0)
    for i in np.ndindex(a0.shape):
        p, q = a0.copy(), a0.copy()
        p[i] += 1e-5
        q[i] -= 1e-5
        fd[i] = (((_cofactor_np(p) - _cofactor_np(q)) * ct1b * ct2).sum()) / 2e-5
    np.testing.assert_allclose(_np(outs[0][2]), fd, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(_np(outs[0][1]), _cofactor_np(a0) * ct1b, rtol=1e-12, atol=1e-12)


def test_det_second_derivative_through_a_zero_incoming_gradient():
    """grad2 fuzz 28528275: cos(det(A)) at det(A) = 0. Its first derivative is -sin(det) cof(A)
    = 0, its second -cos(det) cof(A) (x) cof(A) is not: PyTorch's gives 0 (its singular
    formula drops the term through the incoming gradient); central differences of PyTorch's
    own first derivative agree with descent."""
    a0 = np.array([[0.0, 0.0], [1.0, 0.0]])
    ct = np.array([[-0.42, 0.60], [-1.58, -1.14]])

    def first(m, a, create_graph):
        (g,) = m.autograd.grad(m.cos(m.linalg.det(a)) * -5.45, a, create_graph=create_graph)
        return g

    a = descent.tensor(a0, requires_grad=True)
    (h,) = descent.autograd.grad((first(descent, a, True) * descent.tensor(ct)).sum(), a)
    fd = np.zeros_like(a0)
    for i in np.ndindex(a0.shape):
        p, q = a0.copy(), a0.copy()
        p[i] += 1e-6
        q[i] -= 1e-6
        gp = first(torch, torch.tensor(p, requires_grad=True), False).numpy()
        gq = first(torch, torch.tensor(q, requires_grad=True), False).numpy()
        fd[i] = ((gp - gq) * ct).sum() / 2e-6
    np.testing.assert_allclose(h.numpy(), fd, rtol=1e-8, atol=1e-8)
    assert abs(h.numpy()[0, 1] - 5.45 * 0.60) < 1e-9


def test_det_second_derivative_at_the_zero_matrix():
    """grad2 fuzz 28553580: det of 3x3 zeros; the cofactor matrix is quadratic, so the second
    derivative at 0 is 0 (PyTorch's SVD backward divides by equal singular values: nan)."""
    a = descent.zeros((3, 3), dtype=descent.float64, requires_grad=True)
    (g,) = descent.autograd.grad(descent.linalg.det(a) * 1.3, a, create_graph=True)
    (h,) = descent.autograd.grad((g * descent.arange(9.0).reshape(3, 3)).sum(), a)
    assert (g.detach().numpy() == 0).all() and (h.numpy() == 0).all()


# ---------------------------------------------------------------------------------------------
# 5. complex x / c for a Python number c: a true complex division, as PyTorch's. descent folded
# x / -1 into x * -1, whose imaginary zero is +0 where the quotient's is -0, and pow / log read
# the sign as the side of the branch cut ((x / -1) ** 1j: 0.014 vs 7.56; complex fuzz 29663773)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("c", [-1, -1.0, 0.5, 2, -4.0])
def test_complex_divided_by_a_power_of_two_keeps_signed_zeros(dtype, c):
    z0 = [0.29 + 0j, -1.0 - 0j, 2j, -0.0 - 3j, 0j]
    outs = []
    for m in (descent, torch):
        x = m.tensor(z0, dtype=getattr(m, dtype), requires_grad=True)
        y = x / c
        (g,) = m.autograd.grad(((x / c) ** 1j).real.sum(), x)
        outs.append((y, m.atan2(y.imag, y.real), g))
    for d, t in zip(*outs, strict=True):
        _same(d, t, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# 6. autograd.grad of a complex leaf reached only by a known-zero gradient through a real op
# (abs(x).sgn(): sgn's zero passes abs unchanged, as float32): the captured gradient is
# complex64, as PyTorch's engine casts each gradient to its input's dtype (backward()'s .grad
# was cast already; complex fuzz 29676600)


@pytest.mark.parametrize("create_graph", [False, True])
def test_known_zero_gradient_of_a_complex_leaf_is_complex(create_graph):
    outs = []
    for m in (descent, torch):
        x = m.tensor([[0.5 - 5.7j, -0.39 - 0.81j]], dtype=m.complex64, requires_grad=True)
        v = m.abs(x.conj().mul(2)).sgn()
        ct = m.tensor([[1.0, 2.0]], dtype=m.float64)
        (g,) = m.autograd.grad((v * ct).sum(), [x], create_graph=create_graph)
        outs.append(g)
    _same(*outs)


# ---------------------------------------------------------------------------------------------
# 7. xlogy / xlog1py second order through a zero first-order gradient: PyTorch's backward is
# xlogy(gy, y), whose derivative in gy is log(y) also where gy = 0; descent's masked product
# had 0 there (grad2 fuzz 28517631, 28532130, 28535807: xlogy(x, 2) ** 2 at x = 0 lost
# 2 log(2)^2; central differences agree with PyTorch)


@pytest.mark.parametrize("op", ["xlogy", "xlog1py"])
def test_xlogy_second_order_through_a_zero_gradient(op):
    outs = []
    for m in (descent, torch):
        f = m.xlogy if op == "xlogy" else m.special.xlog1py
        x = m.tensor([0.0, 2.0, 0.0, 0.0, 0.5], dtype=m.float64, requires_grad=True)
        y = m.tensor([2.0, 2.0, -1.0, -2.0, 0.0], dtype=m.float64, requires_grad=True)
        v = f(x, y)
        g = m.autograd.grad((v * v).sum(), [x, y], create_graph=True)
        h = m.autograd.grad(g[0].sum() + g[1].sum(), [x, y])
        outs.append((*g, *h))
    for d, t in zip(*outs, strict=True):
        _same(d, t)


def test_xlogy_second_order_central_differences():
    c = 2.0

    def first(x0):
        x = torch.tensor(x0, requires_grad=True)
        (g,) = torch.autograd.grad((torch.xlogy(x, c) ** 2).sum(), x)
        return g.numpy()

    x = descent.tensor([0.0], dtype=descent.float64, requires_grad=True)
    (g,) = descent.autograd.grad((descent.xlogy(x, c) ** 2).sum(), x, create_graph=True)
    (h,) = descent.autograd.grad(g.sum(), x)
    fd = (first(np.array([1e-6])) - first(np.array([-1e-6]))) / 2e-6
    np.testing.assert_allclose(h.numpy(), fd, rtol=1e-8)
    assert abs(h.numpy()[0] - 2 * math.log(2) ** 2) < 1e-12


# ---------------------------------------------------------------------------------------------
# 8. scatter's value into an integer tensor: PyTorch's checked conversion (uint8 takes -1 as
# 255, refuses 300 and -256; int8 refuses 200), where NumPy raised OverflowError for -1 (index
# fuzz 392, session 29's new mode)


@pytest.mark.parametrize("dtype, value", [("uint8", -1), ("uint8", -255), ("uint8", 300),
                                          ("uint8", -256), ("int8", 200), ("int8", -128),
                                          ("int16", -1), ("bool", 1)])  # fmt: skip
def test_scatter_value_into_an_integer_tensor(dtype, value):
    outs = []
    for m in (descent, torch):
        x = m.tensor([[5], [1]], dtype=getattr(m, dtype))
        try:
            outs.append(x.scatter(1, m.tensor([[0], [0]]), value))
        except RuntimeError as e:  # descent's DescentError is a RuntimeError
            outs.append(type(e))
    d, t = outs
    if isinstance(t, type):
        assert d is not None and isinstance(d, type) and issubclass(d, RuntimeError), d
    else:
        _same(d, t)


# ---------------------------------------------------------------------------------------------
# 9. scatter / scatter_reduce with an empty index: out is x's copy, and src is still an input
# of the node, so autograd.grad gives it zeros (descent: None, src was left out of the graph;
# index fuzz 29900166, 29903841); grad_fn named as PyTorch's


@pytest.mark.parametrize("op", ["scatter", "sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("create_graph", [False, True])
def test_empty_index_scatter_gives_src_a_zero_gradient(op, create_graph):
    outs = []
    for m in (descent, torch):
        x = m.tensor([[0.15, -0.46]], dtype=m.float64, requires_grad=True)
        s = m.tensor([[-0.6, -0.8]], dtype=m.float64, requires_grad=True)
        i = m.tensor([], dtype=m.int64).reshape(0, 2)
        if op == "scatter":
            r = m.scatter(x, 0, i, s)
        else:
            r = m.scatter_reduce(x, 0, i, s, op, include_self=op != "mean")
        g = m.autograd.grad((r * 3).sum(), [x, s], allow_unused=True, create_graph=create_graph)
        outs.append((type(r.grad_fn).__name__, r, *g))
    assert outs[0][0] == outs[1][0]
    for d, t in zip(outs[0][1:], outs[1][1:], strict=True):
        assert d is not None
        _same(d, t)
