"""Complex input to descent.linalg (det, slogdet, inv, solve, cholesky, qr, lu and their
compositions) against torch 2.13: complex64 values and gradients of real losses that use every
output (float32-level tolerances), complex128 gradients against central finite differences
(descent's gradcheck, which checks complex numbers as (real, imaginary) pairs, as PyTorch's),
second order where the real op claims it, forward-mode tangents, batched, empty and
non-contiguous inputs, errors; and the autograd tools with complex tensors (gradcheck, custom
Functions). See docs/linalg.md, "Complex matrices: det, inv, solve, cholesky, qr, lu"."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds
from descent.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(1234)


def crandn(*shape, dtype=np.complex128, rng=RNG):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


# ---------------------------------------------------------------------------------------------
# gradcheck with complex inputs and outputs


def test_gradcheck_checks_complex_inputs_and_outputs():
    z = ds.tensor(crandn(2, 3), requires_grad=True)
    w = ds.tensor(crandn(3, 2), requires_grad=True)
    r = ds.tensor(RNG.standard_normal((3, 2)), requires_grad=True)
    assert gradcheck(lambda a, b: a @ b, (z, w))
    # complex output of a real input (cast first: a matmul of mixed dtypes raises, as in torch)
    assert gradcheck(lambda a, b: a @ b.to(a.dtype), (z, r))
    assert gradcheck(lambda a: ds.exp(a).abs(), (z,))  # real output of a complex input
    assert gradgradcheck(lambda a, b: (a @ b).exp(), (z, w))


class _ForgetsConj(ds.autograd.Function):
    """z * z with the backward written for real input (2 z g, not 2 conj(z) g): wrong."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


def test_custom_functions_with_complex_outputs_are_differentiable():
    # (were not: a custom Function's complex output did not require grad, so its gradient was
    # silently missing; torch's is differentiable)
    class Square(ds.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x.conj() * g

    a = crandn(3)
    z = ds.tensor(a, requires_grad=True)
    y = Square.apply(z)
    assert y.requires_grad
    (y.abs() ** 2).sum().backward()
    tz = torch.tensor(a, requires_grad=True)
    ((tz * tz).abs() ** 2).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), tz.grad.numpy(), rtol=1e-12)
    assert gradcheck(Square.apply, (ds.tensor(a, requires_grad=True),))


def test_gradcheck_catches_a_missing_conjugate():
    z = ds.tensor(crandn(3), requires_grad=True)
    assert not gradcheck(_ForgetsConj.apply, (z,), raise_exception=False)
    with pytest.raises(RuntimeError, match="Jacobian mismatch for output 0"):
        gradcheck(_ForgetsConj.apply, (z,))
    # torch agrees on the verdict
    tz = torch.tensor(crandn(3), requires_grad=True)

    class TorchForgetsConj(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    assert not torch.autograd.gradcheck(TorchForgetsConj.apply, (tz,), raise_exception=False)


def test_explain_gradcheck_reports_complex_parts():
    from descent.explain import gradcheck as explain_gradcheck

    z = ds.tensor(crandn(2), requires_grad=True)
    res = explain_gradcheck(_ForgetsConj.apply, [z])
    assert not res.passed
    assert len(res.worst_index) == 2 and res.worst_index[-1] in (0, 1)  # (element, re/im)
    assert explain_gradcheck(lambda a: a * a, [z]).passed
    # the op that made the complex output is named, not the view as real pairs
    det = explain_gradcheck(ds.linalg.det, [ds.tensor(crandn(2, 2), requires_grad=True)])
    assert det.passed and "DetBackward" in det.name


# ---------------------------------------------------------------------------------------------
# The ops: values and gradients against torch (complex64), gradcheck (complex128)


def _square(rng, *batch, n=3):
    """A well-conditioned complex matrix: complex normal plus 2 I."""
    return crandn(*batch, n, n, rng=rng) + 2 * np.eye(n)


def _hpd(rng, *batch, n=3):
    """A Hermitian positive-definite matrix X X^H + n I."""
    x = crandn(*batch, n, n, rng=rng)
    return x @ np.conj(np.swapaxes(x, -1, -2)) + n * np.eye(n)


def _low(rng, *batch, n=3):
    """A Cholesky factor (lower triangular, real positive diagonal)."""
    return np.linalg.cholesky(_hpd(rng, *batch, n=n))


def _mh(T, x):
    """The conjugate transpose (Tensors of either library, or arrays with T = np)."""
    if T is np:
        return np.conj(np.swapaxes(x, -1, -2))
    return x.conj().transpose(-2, -1)


def _herm(T, x):
    """X X^H + 3 I: the Hermitian positive-definite matrix that gradcheck perturbs through
    (cholesky reads only one triangle, so its input must stay Hermitian)."""
    return x @ _mh(T, x) + 3 * T.eye(x.shape[-1], dtype=x.dtype)


# name: (f(T, *tensors) -> tensor or tuple, input makers rng -> arrays, wraps for gradcheck)
# A wrap makes the input the op needs from a free complex matrix (None: the input as it is).
CASES = {
    "det": (lambda T, a: T.linalg.det(a), [_square], None),
    "det_batched": (lambda T, a: T.linalg.det(a), [lambda r: _square(r, 2, 2)], None),
    "slogdet": (lambda T, a: tuple(T.linalg.slogdet(a)), [lambda r: _square(r, 2)], None),
    "logdet": (lambda T, a: T.logdet(a), [_square], None),
    "torch.det": (lambda T, a: T.det(a), [_square], None),
    "inv": (lambda T, a: T.linalg.inv(a), [lambda r: _square(r, 2)], None),
    "inverse": (lambda T, a: T.inverse(a), [_square], None),
    "inv_ex": (lambda T, a: T.linalg.inv_ex(a)[0], [_square], None),
    "solve": (lambda T, a, b: T.linalg.solve(a, b),
              [_square, lambda r: crandn(3, 2, rng=r)], None),
    "solve_vector_batched": (lambda T, a, b: T.linalg.solve(a, b),
                             [lambda r: _square(r, 2), lambda r: crandn(2, 3, rng=r)], None),
    "solve_broadcast": (lambda T, a, b: T.linalg.solve(a, b),
                        [_square, lambda r: crandn(2, 3, 2, rng=r)], None),
    "solve_left_false": (lambda T, a, b: T.linalg.solve(a, b, left=False),
                         [_square, lambda r: crandn(2, 3, rng=r)], None),
    "solve_ex": (lambda T, a, b: T.linalg.solve_ex(a, b)[0],
                 [_square, lambda r: crandn(3, 2, rng=r)], None),
    "cholesky": (lambda T, a: T.linalg.cholesky(a), [lambda r: _hpd(r, 2)], _herm),
    "cholesky_upper": (lambda T, a: T.linalg.cholesky(a, upper=True), [_hpd], _herm),
    "cholesky_ex": (lambda T, a: T.linalg.cholesky_ex(a)[0], [_hpd], _herm),
    "cholesky_ex_upper": (lambda T, a: T.linalg.cholesky_ex(a, upper=True)[0], [_hpd], _herm),
    "torch.cholesky": (lambda T, a: T.cholesky(a), [_hpd], _herm),
    "cholesky_solve": (lambda T, b, low: T.cholesky_solve(b, low),
                       [lambda r: crandn(3, 2, rng=r), _low], None),
    "cholesky_solve_upper": (lambda T, b, u: T.cholesky_solve(b, u, upper=True),
                             [lambda r: crandn(3, 2, rng=r), lambda r: _mh(np, _low(r))], None),
    # the factor's triangle taken inside, as PyTorch's gradcheck_wrapper_triangular_input: the
    # value reads only that triangle (LAPACK's potri), so finite differences see nothing else
    "cholesky_inverse": (lambda T, low: T.cholesky_inverse(low.tril()), [_low], None),
    "cholesky_inverse_upper": (lambda T, u: T.cholesky_inverse(u.triu(), upper=True),
                               [lambda r: _mh(np, _low(r))], None),
    "qr_tall": (lambda T, a: tuple(T.linalg.qr(a)), [lambda r: crandn(2, 4, 3, rng=r)], None),
    "qr_square": (lambda T, a: tuple(T.linalg.qr(a)), [lambda r: crandn(3, 3, rng=r)], None),
    "qr_wide": (lambda T, a: tuple(T.linalg.qr(a)), [lambda r: crandn(2, 3, 4, rng=r)], None),
    "qr_complete_wide": (lambda T, a: tuple(T.linalg.qr(a, mode="complete")),
                         [lambda r: crandn(2, 4, rng=r)], None),
    "torch.qr": (lambda T, a: tuple(T.qr(a)), [lambda r: crandn(4, 3, rng=r)], None),
    "lu_factor": (lambda T, a: T.linalg.lu_factor(a)[0], [lambda r: crandn(2, 3, 3, rng=r)],
                  None),
    "lu_factor_wide": (lambda T, a: T.linalg.lu_factor(a)[0], [lambda r: crandn(2, 4, rng=r)],
                       None),
    "lu_tall": (lambda T, a: tuple(T.linalg.lu(a)), [lambda r: crandn(4, 2, rng=r)], None),
    "lu_solve": (lambda T, a, b: T.linalg.lu_solve(*T.linalg.lu_factor(a), b),
                 [_square, lambda r: crandn(3, 2, rng=r)], None),
    "lu_solve_adjoint": (lambda T, a, b: T.linalg.lu_solve(*T.linalg.lu_factor(a), b,
                                                            adjoint=True),
                         [_square, lambda r: crandn(3, 2, rng=r)], None),
    "lu_solve_left_false_adjoint": (
        lambda T, a, b: T.linalg.lu_solve(*T.linalg.lu_factor(a), b, left=False, adjoint=True),
        [_square, lambda r: crandn(2, 3, rng=r)], None),
    "solve_triangular_upper": (lambda T, a, b: T.linalg.solve_triangular(a, b, upper=True),
                               [_square, lambda r: crandn(3, 2, rng=r)], None),
    "solve_triangular_lower_right_unit": (
        lambda T, a, b: T.linalg.solve_triangular(a, b, upper=False, left=False,
                                                  unitriangular=True),
        [_square, lambda r: crandn(2, 3, rng=r)], None),
    "matrix_exp": (lambda T, a: T.linalg.matrix_exp(a), [lambda r: crandn(2, 3, 3, rng=r)],
                   None),
    "matrix_exp_scaled": (lambda T, a: T.linalg.matrix_exp(a),  # norm > theta13: squarings
                          [lambda r: 4 * crandn(3, 3, rng=r)], None),
    "tensorinv": (lambda T, a: T.linalg.tensorinv(a, ind=1),
                  [lambda r: _square(r, n=4).reshape(4, 2, 2)], None),
    "tensorsolve": (lambda T, a, b: T.linalg.tensorsolve(a, b),
                    [lambda r: _square(r, n=4).reshape(2, 2, 4), lambda r: crandn(2, 2, rng=r)],
                    None),
    "matrix_power_neg": (lambda T, a: T.linalg.matrix_power(a, -2), [_square], None),
    "multi_dot": (lambda T, a, b, c: T.linalg.multi_dot([a, b, c]),
                  [lambda r: crandn(3, rng=r), lambda r: crandn(3, 4, rng=r),
                   lambda r: crandn(4, 2, rng=r)], None),
    "lstsq": (lambda T, a, b: T.linalg.lstsq(a, b).solution,
              [lambda r: crandn(2, 5, 3, rng=r), lambda r: crandn(2, 5, 2, rng=r)], None),
    "lstsq_gelsd_residuals": (lambda T, a, b: tuple(T.linalg.lstsq(a, b, driver="gelsd")[:2]),
                              [lambda r: crandn(5, 3, rng=r), lambda r: crandn(5, rng=r)], None),
    "vander": (lambda T, x: T.linalg.vander(x, N=4), [lambda r: crandn(2, 3, rng=r)], None),
    "vecdot": (lambda T, x, y: T.linalg.vecdot(x, y),
               [lambda r: crandn(2, 3, rng=r), lambda r: crandn(2, 3, rng=r)], None),
}  # fmt: skip


# Larger batched matrices (8 x 8, batch 3), compared with torch only (measured differences
# up to 1.2e-6 relative, matrix_exp's gradient)
BIG = {
    "det_8x8": (lambda T, a: T.linalg.slogdet(a)[1], [lambda r: _square(r, 3, n=8)], None),
    "inv_8x8": (lambda T, a: T.linalg.inv(a), [lambda r: _square(r, 3, n=8)], None),
    "solve_8x8": (lambda T, a, b: T.linalg.solve(a, b),
                  [lambda r: _square(r, 3, n=8), lambda r: crandn(3, 8, 4, rng=r)], None),
    "cholesky_8x8": (lambda T, a: T.linalg.cholesky(a), [lambda r: _hpd(r, 3, n=8)], None),
    "qr_10x8": (lambda T, a: tuple(T.linalg.qr(a)), [lambda r: crandn(3, 10, 8, rng=r)], None),
    "lu_factor_8x8": (lambda T, a: T.linalg.lu_factor(a)[0], [lambda r: crandn(3, 8, 8, rng=r)],
                      None),
    "matrix_exp_8x8": (lambda T, a: T.linalg.matrix_exp(a), [lambda r: crandn(3, 8, 8, rng=r)],
                       None),
}  # fmt: skip
CASES.update(BIG)
SMALL = sorted(set(CASES) - set(BIG))


def _inputs(name, seed=0):
    rng = np.random.default_rng(seed)
    return [np.asarray(make(rng)) for make in CASES[name][1]]


def _outputs(out):
    return out if isinstance(out, tuple) else (out,)


def _real_loss(T, outs, weights):
    """sum Re(conj(W) out) over every output (real outputs: sum W out): each output's
    gradient is its random weight."""
    loss = 0
    for o, w in zip(outs, weights):
        if o.is_complex():
            loss = loss + (o * T.tensor(w).to(o.dtype).conj()).real.sum()
        else:
            loss = loss + (o * T.tensor(w.real).to(o.dtype)).sum()
    return loss


def _to_numpy(t):
    t = t.detach()
    return t.resolve_conj().numpy() if isinstance(t, torch.Tensor) else t.numpy()


def _run(T, name, arrays, dtype):
    xs = [T.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    outs = _outputs(CASES[name][0](T, *xs))
    rng = np.random.default_rng(99)
    weights = [crandn(*o.shape, rng=rng) for o in outs]
    _real_loss(T, outs, weights).backward()
    return [_to_numpy(o) for o in outs], [_to_numpy(x.grad) for x in xs]


def _close(got, want, rtol, what):
    assert got.dtype == want.dtype, (what, got.dtype, want.dtype)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


@pytest.mark.parametrize("name", sorted(CASES))
def test_complex64_values_and_gradients_match_torch(name):
    arrays = _inputs(name)
    d_out, d_grad = _run(ds, name, arrays, np.complex64)
    t_out, t_grad = _run(torch, name, arrays, np.complex64)
    assert len(d_out) == len(t_out)
    for k, (g, w) in enumerate(zip(d_out, t_out)):
        _close(g, w, 2e-5, f"{name}: output {k}")
    for k, (g, w) in enumerate(zip(d_grad, t_grad)):
        _close(g, w, 2e-5, f"{name}: gradient of input {k}")


def _gradcheck_inputs(name, seed=1):
    wrap = CASES[name][2]
    arrays = _inputs(name, seed)
    if wrap is not None:  # a free complex matrix, made Hermitian positive-definite inside
        arrays = [crandn(*a.shape, rng=np.random.default_rng(seed)) for a in arrays]
    xs = [ds.tensor(a.astype(np.complex128), requires_grad=True) for a in arrays]

    def f(*ts):
        if wrap is not None:
            ts = [wrap(ds, t) for t in ts]
        return CASES[name][0](ds, *ts)

    return f, xs


@pytest.mark.parametrize("name", SMALL)
def test_complex128_gradients_match_finite_differences(name):
    f, xs = _gradcheck_inputs(name)
    assert gradcheck(f, xs, eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", SMALL)
def test_complex128_second_derivatives_match_finite_differences(name):
    f, xs = _gradcheck_inputs(name, seed=2)
    assert gradgradcheck(f, xs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_create_graph_second_derivatives_match_torch():
    # d/dA of <grad f(A), W> through the recorded complex backward, against torch (complex128)
    rng = np.random.default_rng(5)
    a, w = _square(rng), crandn(3, 3, rng=rng)
    fns = [lambda T, x: T.linalg.det(x).abs() ** 2,
           lambda T, x: T.linalg.slogdet(x)[1] + T.linalg.slogdet(x)[0].real,
           lambda T, x: (T.linalg.inv(x) ** 2).sum().real,
           lambda T, x: T.linalg.cholesky(_herm(T, x)).abs().sum(),
           lambda T, x: T.linalg.qr(x)[0].imag.sum() + T.linalg.qr(x)[1].real.sum()]  # fmt: skip
    for f in fns:
        grads = []
        for T in (ds, torch):
            x = T.tensor(a, requires_grad=True)
            (g,) = T.autograd.grad(f(T, x), [x], create_graph=True)
            (g * T.tensor(w).conj()).real.sum().backward()
            grads.append((_to_numpy(g), _to_numpy(x.grad)))
        np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-8, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# Edge cases: empty, 1x1, non-contiguous, singular


EDGE = {
    "det_0x0": (lambda T, a: T.linalg.det(a), [np.zeros((0, 0))]),
    "det_empty_batch": (lambda T, a: T.linalg.det(a), [np.zeros((0, 2, 2))]),
    "slogdet_0x0_batch": (lambda T, a: tuple(T.linalg.slogdet(a)), [np.zeros((2, 0, 0))]),
    "inv_0x0_batch": (lambda T, a: T.linalg.inv(a), [np.zeros((2, 0, 0))]),
    "solve_empty_batch": (lambda T, a, b: T.linalg.solve(a, b),
                          [np.zeros((0, 2, 2)), np.zeros((0, 2, 1))]),
    "cholesky_empty_batch": (lambda T, a: T.linalg.cholesky(a), [np.zeros((0, 2, 2))]),
    "qr_empty_batch": (lambda T, a: tuple(T.linalg.qr(a)), [np.zeros((0, 3, 2))]),
    "qr_no_columns": (lambda T, a: tuple(T.linalg.qr(a)), [np.zeros((3, 0))]),
    "lu_empty_batch": (lambda T, a: tuple(T.linalg.lu(a)), [np.zeros((0, 3, 2))]),
    "matrix_exp_empty_batch": (lambda T, a: T.linalg.matrix_exp(a), [np.zeros((0, 3, 3))]),
    "one_by_one": (lambda T, a: (T.linalg.det(a), T.linalg.inv(a), T.linalg.slogdet(a)[0],
                                 T.linalg.cholesky(a @ _mh(T, a)), *T.linalg.qr(a)),
                   [np.array([[1 + 2j]])]),
    # slogdet at a singular matrix: nan gradient (torch: nan too)
    "slogdet_singular": (lambda T, a: T.linalg.slogdet(a)[1],
                         [np.array([[1, 1j, 2], [1, 1j, 2], [0, 1, 1 + 1j]])]),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EDGE))
def test_edge_cases_match_torch(name):
    f, arrays = EDGE[name]
    results = []
    for T in (ds, torch):
        xs = [T.tensor(a.astype(np.complex64), requires_grad=True) for a in arrays]
        outs = _outputs(f(T, *xs))
        rng = np.random.default_rng(8)
        _real_loss(T, outs, [crandn(*o.shape, rng=rng) for o in outs]).backward()
        results.append([_to_numpy(o) for o in outs] + [_to_numpy(x.grad) for x in xs])
    for k, (g, w) in enumerate(zip(*results)):
        assert g.shape == w.shape and g.dtype == w.dtype, (k, g.shape, w.shape, g.dtype, w.dtype)
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, equal_nan=True)


def test_det_gradient_at_singular_complex_matrices_is_the_cofactor_matrix():
    # As for real input (test_linalg.py): torch's first-order backward gives 0 where det(A) is
    # exactly 0; its create_graph path, and descent always, give the cofactor matrix
    # conj(det(A) A^{-T}) from the SVD (finite, nonzero at rank n - 1).
    a = np.array([[[1, 1j, 2], [1, 1j, 2], [0, 1, 1 + 1j]],
                  [[0, 0, 0], [0, 1j, 0], [0, 0, 1 - 1j]]])  # fmt: skip
    w = crandn(2, rng=np.random.default_rng(6))
    xt = torch.tensor(a, requires_grad=True)
    lt = (torch.linalg.det(xt) * torch.tensor(w).conj()).real.sum()
    (gt,) = torch.autograd.grad(lt, [xt], create_graph=True)
    xd = ds.tensor(a, requires_grad=True)
    (ds.linalg.det(xd) * ds.tensor(w).conj()).real.sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), gt.detach().numpy(), atol=1e-12)
    assert np.abs(xd.grad.numpy()[0]).max() > 0.5  # rank n - 1: a nonzero cofactor matrix
    # = the limit of the gradient at nearby invertible matrices
    near = ds.tensor(a + 1e-7 * crandn(2, 3, 3, rng=np.random.default_rng(0)),
                     requires_grad=True)  # fmt: skip
    (ds.linalg.det(near) * ds.tensor(w).conj()).real.sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), near.grad.numpy(), atol=1e-5)


@pytest.mark.parametrize("op", ["det", "inv", "solve", "cholesky", "qr", "lu_factor"])
def test_non_contiguous_inputs(op):
    rng = np.random.default_rng(7)
    base = _hpd(rng, 2, n=6).astype(np.complex64)
    results = []
    for T in (ds, torch):
        x = T.tensor(base, requires_grad=True)
        a = x.transpose(-2, -1)[:, ::2, ::2]  # a strided, transposed view: Hermitian, HPD
        if op == "solve":
            out = T.linalg.solve(a, x[:, 1::2, :2])
        elif op == "qr":
            out = T.linalg.qr(a)[0]
        elif op == "lu_factor":
            out = T.linalg.lu_factor(a)[0]
        else:
            out = getattr(T.linalg, op)(a)
        (out.abs() ** 2).sum().backward()
        results.append((_to_numpy(out), _to_numpy(x.grad)))
    for g, w in zip(*results):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5)


# ---------------------------------------------------------------------------------------------
# Errors, the _ex variants' info, mixed dtypes, pivots


def test_singular_complex_matrix_raises_linalg_error():
    a = ds.tensor(np.array([[1, 1j], [1, 1j]], dtype=np.complex64))
    for f in (ds.linalg.inv, lambda x: ds.linalg.solve(x, x), ds.linalg.lu_factor):
        with pytest.raises(ds.linalg.LinAlgError, match="singular|zero"):
            f(a)
    with pytest.raises(torch.linalg.LinAlgError):  # torch raises there too
        torch.linalg.inv(torch.tensor(a.numpy()))
    not_pd = ds.tensor(np.array([[1, 2j], [-2j, 1]], dtype=np.complex128))
    with pytest.raises(ds.linalg.LinAlgError, match="positive-definite"):
        ds.linalg.cholesky(not_pd)
    with pytest.raises(RuntimeError):  # LinAlgError is a RuntimeError, as torch's
        ds.linalg.cholesky(not_pd)


def test_ex_variants_report_info_as_torch():
    rng = np.random.default_rng(3)
    a = _square(rng, 3).astype(np.complex64)
    a[1, :2] = 0  # batch element 1 singular
    b = crandn(3, 3, 2, rng=rng).astype(np.complex64)
    h = _hpd(rng, 2, n=4).astype(np.complex64)
    h[1, 2, 2] = -1.0  # batch element 1 not positive-definite from its 3rd leading minor
    for name, f, args in [("inv_ex", lambda T, x: T.linalg.inv_ex(x), [a]),
                          ("solve_ex", lambda T, x, y: T.linalg.solve_ex(x, y), [a, b]),
                          ("cholesky_ex", lambda T, x: T.linalg.cholesky_ex(x), [h])]:
        d = f(ds, *[ds.tensor(x) for x in args])
        t = f(torch, *[torch.tensor(x) for x in args])
        np.testing.assert_array_equal(d[1].numpy(), t[1].numpy(), err_msg=name)
        # the failed matrices: nan + nan j for inv/solve, LAPACK's partial factor for cholesky
        got, want = d[0].numpy(), t[0].resolve_conj().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, equal_nan=True, err_msg=name)
        for part in (np.real, np.imag):  # nan in both parts where torch has it (nan + nan j)
            np.testing.assert_array_equal(np.isnan(part(got)), np.isnan(part(want)), name)
        with pytest.raises(ds.linalg.LinAlgError):
            getattr(ds.linalg, name)(*[ds.tensor(x) for x in args], check_errors=True)


def test_mixed_dtypes_follow_torch():
    a = crandn(3, 3).astype(np.complex64) + 2 * np.eye(3, dtype=np.complex64)
    ar = np.real(a).astype(np.float32)
    b, br = crandn(3, 2).astype(np.complex64), np.ones((3, 2), np.float32)
    for x, y in [(ar, b), (a, br), (a, b.astype(np.complex128))]:
        with pytest.raises(RuntimeError, match="same dtype"):
            torch.linalg.solve(torch.tensor(x), torch.tensor(y))
        with pytest.raises(RuntimeError, match="same dtype"):
            ds.linalg.solve(ds.tensor(x), ds.tensor(y))
        with pytest.raises(RuntimeError, match="same dtype"):
            ds.linalg.lu_solve(*ds.linalg.lu_factor(ds.tensor(x)), ds.tensor(y))
    with pytest.raises(RuntimeError, match="same dtype"):
        ds.linalg.lstsq(ds.tensor(a), ds.tensor(br))
    # solve_triangular computes in A's dtype (torch's rule): complex A, real B -> complex64
    tri = np.triu(a)
    d = ds.linalg.solve_triangular(ds.tensor(tri), ds.tensor(br), upper=True)
    t = torch.linalg.solve_triangular(torch.tensor(tri), torch.tensor(br), upper=True)
    assert d.dtype == ds.complex64 and t.dtype == torch.complex64
    np.testing.assert_allclose(d.numpy(), t.numpy(), rtol=1e-5, atol=1e-6)


def test_lu_pivots_compare_re_plus_im_as_lapack():
    # |0.8 + 0.8i| = 1.13 < 1.2 but |Re| + |Im| = 1.6 > 1.2: LAPACK keeps row 1 as the pivot
    m = np.array([[0.8 + 0.8j, 1.0], [1.2, 2.0]])
    d = ds.linalg.lu_factor(ds.tensor(m))
    t = torch.linalg.lu_factor(torch.tensor(m))
    np.testing.assert_array_equal(d.pivots.numpy(), t.pivots.numpy())
    np.testing.assert_allclose(d.LU.numpy(), t.LU.numpy(), rtol=1e-12)


def test_slogdet_sign_is_complex_and_differentiable():
    a = ds.tensor(_square(np.random.default_rng(4), 2), requires_grad=True)
    sign, logabs = ds.linalg.slogdet(a)
    assert sign.dtype == ds.complex128 and logabs.dtype == ds.float64
    np.testing.assert_allclose(np.abs(sign.numpy()), 1.0, rtol=1e-12)
    assert sign.requires_grad
    # real input: the sign stays real; it requires grad with a zero gradient, as torch's
    sr, _ = ds.linalg.slogdet(ds.tensor(np.eye(2), requires_grad=True))
    st, _ = torch.linalg.slogdet(torch.eye(2, dtype=torch.float64, requires_grad=True))
    assert sr.dtype == ds.float64 and sr.requires_grad and st.requires_grad


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_lstsq_residuals_of_a_vector_keep_their_column(dtype):
    # torch: residuals (..., 1) for a vector b (descent returned (...) before, real input too)
    rng = np.random.default_rng(11)
    a, b = crandn(2, 5, 3, rng=rng), crandn(2, 5, rng=rng)
    if dtype == np.float64:
        a, b = a.real, b.real
    d = ds.linalg.lstsq(ds.tensor(a), ds.tensor(b), driver="gelsd")
    t = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver="gelsd")
    assert tuple(d.residuals.shape) == tuple(t.residuals.shape) == (2, 1)
    np.testing.assert_allclose(d.residuals.numpy(), t.residuals.numpy(), rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# Forward mode (descent.autograd.forward_ad) with complex primals and tangents


FORWARD = ["det", "slogdet", "inv", "solve", "cholesky_upper", "qr_wide", "lu_factor",
           "lstsq", "matrix_exp", "logdet"]  # fmt: skip


@pytest.mark.parametrize("name", FORWARD)
def test_forward_mode_tangents_match_torch(name):
    f, _, wrap = CASES[name]
    arrays = _inputs(name, seed=3)
    rng = np.random.default_rng(4)
    if wrap is not None:  # a free matrix made Hermitian inside, so the tangent is Hermitian too
        arrays = [crandn(*a.shape, rng=rng) for a in arrays]
    tangents = [crandn(*a.shape, rng=rng) for a in arrays]
    results = []
    for T, fw in ((ds, ds.autograd.forward_ad), (torch, torch.autograd.forward_ad)):
        with fw.dual_level():
            duals = [fw.make_dual(T.tensor(a), T.tensor(v)) for a, v in zip(arrays, tangents)]
            if wrap is not None:
                duals = [wrap(T, d) for d in duals]
            outs = _outputs(f(T, *duals))
            results.append([_to_numpy(fw.unpack_dual(o).tangent) for o in outs])
    for g, w in zip(*results):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-10)


class _DropsImaginaryGradient(ds.autograd.Function):
    """2 z with a backward that keeps only the real part of the gradient: right for the real
    part of the output (and, in forward mode, along real directions), wrong for the rest."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, g):
        return (2 * g).real.to(g.dtype)


def test_gradcheck_perturbs_imaginary_parts():
    z = ds.tensor(crandn(3), requires_grad=True)
    # reverse mode: the imaginary part of the output (a cotangent i) is checked too
    assert not gradcheck(_DropsImaginaryGradient.apply, (z,), raise_exception=False)
    # forward mode: the imaginary unit of each input element is a direction too
    assert gradcheck(lambda a: ds.linalg.det(ds.diag(a)), (z,), check_forward_ad=True)
    for fast in (False, True):
        with pytest.raises(RuntimeError, match="forward mode mismatch"):
            gradcheck(_DropsImaginaryGradient.apply, (z,), check_forward_ad=True,
                       check_backward_ad=False, fast_mode=fast)  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_reads_the_triangle_lapack_reads(dtype, upper):
    # upper=True reads A's upper triangle (potrf 'U'), as torch: descent read the lower one
    # before, so a matrix that is not exactly symmetric gave another factor (real input too)
    rng = np.random.default_rng(12)
    a = _hpd(rng, 2, n=4) + 0.5 * crandn(2, 4, 4, rng=rng)  # not Hermitian
    a = a.real if dtype == np.float64 else a
    w = crandn(2, 4, 4, rng=rng)
    w = w.real if dtype == np.float64 else w
    results = []
    for T in (ds, torch):
        x = T.tensor(a, requires_grad=True)
        out = [T.linalg.cholesky(x, upper=upper), T.linalg.cholesky_ex(x, upper=upper).L]
        _real_loss(T, out, [w, w]).backward()
        results.append([_to_numpy(o) for o in out] + [_to_numpy(x.grad)])
    for g, want in zip(*results):
        np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-12)
    # a failing matrix: info and LAPACK's partial factor from the triangle read
    bad = a.copy()
    bad[1, 2, 2] = -5.0
    d = ds.linalg.cholesky_ex(ds.tensor(bad), upper=upper)
    t = torch.linalg.cholesky_ex(torch.tensor(bad), upper=upper)
    np.testing.assert_array_equal(d.info.numpy(), t.info.numpy())
    np.testing.assert_allclose(d.L.numpy(), t.L.resolve_conj().numpy(), rtol=1e-10,
                               atol=1e-12)  # fmt: skip
