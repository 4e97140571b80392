"""Complex tensors (docs/complex.md): dtypes, creation, parts, printing, promotion, errors, and
gradients with PyTorch's convention, against torch 2.13 and against finite differences."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import descent as ds

RNG = np.random.default_rng(0)


def _c(*shape):
    return RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)


def _r(*shape):
    return RNG.standard_normal(shape)


def _np(t):
    """NumPy values of a torch or descent tensor (torch's lazy conjugate resolved)."""
    if isinstance(t, torch.Tensor):
        return t.detach().resolve_conj().numpy()
    return t.detach().numpy()


# ---------------------------------------------------------------------------------------------
# dtypes and creation


def test_dtype_objects():
    assert ds.complex64 is ds.cfloat and ds.complex128 is ds.cdouble
    assert repr(ds.complex64) == "descent.complex64"
    assert ds.complex64.is_complex and not ds.complex64.is_floating_point
    assert ds.complex64.to_real() == ds.float32 and ds.complex128.to_real() == ds.float64
    assert ds.float32.to_complex() == ds.complex64 and ds.float64.to_complex() == ds.complex128
    assert ds.complex64.to_complex() is ds.complex64 and ds.float32.to_real() is ds.float32
    assert ds.complex64.itemsize == torch.complex64.itemsize == 8
    with pytest.raises(TypeError):
        ds.int64.to_complex()
    assert ds.finfo(ds.complex64).eps == torch.finfo(torch.complex64).eps


@pytest.mark.parametrize(
    "make",
    [
        lambda T: T.tensor([1 + 2j, 3.0]),
        lambda T: T.tensor(1j),
        lambda T: T.tensor([[1, 2j]]),
        lambda T: T.tensor(np.array([1j, 2])),  # complex128 NumPy arrays keep their dtype
        lambda T: T.tensor(np.array([1j], dtype=np.complex64)),
        lambda T: T.tensor([1.0, 2.0], dtype=T.complex128),
        lambda T: T.zeros(2, 3, dtype=T.cfloat),
        lambda T: T.ones(0, dtype=T.cdouble),
        lambda T: T.tensor([1.5, -2.0]).to(T.complex64),
        lambda T: T.tensor([1, 2]).to(T.complex64),
        lambda T: T.tensor([1.5, -2.0], dtype=T.float64).type_as(T.tensor([1j])),
        lambda T: T.tensor([1 + 2j]).float(),  # the real part, as torch (which warns)
        lambda T: T.tensor([1 + 2j]).to(T.int64),
    ],
)
def test_creation_and_casts_match_torch(make):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "discards the imaginary part"
        t, d = make(torch), make(ds)
    assert str(d.dtype).split(".")[1] == str(t.dtype).split(".")[1]
    assert tuple(d.shape) == tuple(t.shape)
    np.testing.assert_array_equal(_np(d), _np(t))
    assert d.is_complex() == t.is_complex()
    assert d.is_floating_point() == t.is_floating_point()


def test_default_complex_dtype_follows_default_float_dtype():
    ds.set_default_dtype(ds.float64)
    try:
        assert ds.tensor([1j]).dtype == ds.complex128
        assert repr(ds.tensor([1j])) == "tensor([0.+1.j])"
    finally:
        ds.set_default_dtype(ds.float32)
    assert ds.tensor([1j]).dtype == ds.complex64


def test_complex_leaf_requires_grad_and_int_does_not():
    z = ds.tensor([1 + 1j], requires_grad=True)
    assert z.requires_grad
    with pytest.raises(RuntimeError, match="floating-point and complex"):
        ds.tensor([1, 2], requires_grad=True)


# ---------------------------------------------------------------------------------------------
# parts, views, conj, abs, angle


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_parts_and_unary_values(dtype):
    a = _c(3, 4).astype(dtype)
    a[0, 0] = 0
    t, d = torch.tensor(a), ds.tensor(a)
    for name in ("real", "imag"):
        np.testing.assert_array_equal(_np(getattr(d, name)), _np(getattr(t, name)))
        assert (
            str(getattr(d, name).dtype).split(".")[1] == str(getattr(t, name).dtype).split(".")[1]
        )
    for f in (
        lambda T, x: x.conj(),
        lambda T, x: T.conj_physical(x),
        lambda T, x: x.abs(),
        lambda T, x: x.angle(),
        lambda T, x: T.view_as_real(x),
        lambda T, x: x.sum(0),
        lambda T, x: x.mean(),
        lambda T, x: x.exp(),
        lambda T, x: x * 2.5 + 1j,
        lambda T, x: x / (1 - 2j),
        lambda T, x: x @ x.mT,
        lambda T, x: T.cat([x, x.conj()], 1)[:, 1:3].reshape(-1),
    ):
        want, got = f(torch, t), f(ds, d)
        assert str(got.dtype).split(".")[1] == str(want.dtype).split(".")[1]
        tol = 1e-5 if dtype == "complex64" else 1e-12
        np.testing.assert_allclose(_np(got), _np(want), rtol=tol, atol=tol)


def test_real_and_imag_are_views_and_real_of_a_real_tensor_is_itself():
    z = ds.tensor([1 + 2j, 3 - 4j])
    z.real.mul_(10)  # a view of z's memory, as in PyTorch
    np.testing.assert_array_equal(z.numpy(), [10 + 2j, 30 - 4j])
    r = ds.tensor([1.0, 2.0])
    assert ds.real(r) is r
    with pytest.raises(RuntimeError, match="imag is not implemented for tensors with non-complex"):
        _ = r.imag


def test_view_as_complex_shares_memory_and_view_as_real_round_trips():
    a = ds.tensor(_r(3, 2), dtype=ds.float64)
    z = ds.view_as_complex(a)
    assert z.dtype == ds.complex128 and tuple(z.shape) == (3,)
    a.data.mul_(2)
    np.testing.assert_array_equal(ds.view_as_real(z).numpy(), a.numpy())
    assert ds.view_as_complex(ds.zeros(0, 2)).shape == (0,)
    assert ds.view_as_real(ds.tensor(1 + 2j)).tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    "make",
    [
        lambda T: T.view_as_complex(T.zeros(3)),
        lambda T: T.view_as_complex(T.zeros(3, 3)),
        lambda T: T.view_as_complex(T.zeros(())),
        lambda T: T.view_as_complex(T.zeros(2, 4).T),
        lambda T: T.view_as_complex(T.zeros(4, 3)[:, :2]),
        lambda T: T.view_as_complex(T.zeros(3, 2, dtype=T.int64)),
        lambda T: T.view_as_real(T.zeros(3)),
        lambda T: T.complex(T.ones(2), T.ones(2, dtype=T.float64)),
        lambda T: T.complex(T.ones(2, dtype=T.int64), T.ones(2, dtype=T.int64)),
        lambda T: T.polar(T.ones(2), T.ones(2, dtype=T.float64)),
        lambda T: T.ones(2).imag,
    ],
)
def test_errors_are_torchs(make):
    with pytest.raises(RuntimeError) as theirs:
        make(torch)
    with pytest.raises(RuntimeError) as ours:
        make(ds)
    # the same first words (descent may add a hint after PyTorch's sentence)
    head = str(theirs.value).split(",")[0].split(" but ")[0][:40]
    assert head.lower() in str(ours.value).lower(), (str(ours.value), str(theirs.value))


# ---------------------------------------------------------------------------------------------
# promotion and printing


_DTYPES = ["float32", "float64", "int64", "complex64", "complex128"]


@pytest.mark.parametrize("a", _DTYPES)
@pytest.mark.parametrize("b", _DTYPES)
@pytest.mark.parametrize("b_dims", [(), (2,)])
def test_promotion_matches_torch(a, b, b_dims):
    def go(T):
        x = T.ones(2, dtype=getattr(T, a))
        y = T.ones(b_dims, dtype=getattr(T, b))
        return (x * y).dtype, (x + y).dtype, (y - x).dtype

    assert [str(d).split(".")[1] for d in go(ds)] == [str(d).split(".")[1] for d in go(torch)]


@pytest.mark.parametrize("a", _DTYPES)
@pytest.mark.parametrize("scalar", [2, 2.5, 1j, 1 + 0j])
def test_python_scalar_promotion_matches_torch(a, scalar):
    got = (ds.ones(2, dtype=getattr(ds, a)) * scalar).dtype
    want = (torch.ones(2, dtype=getattr(torch, a)) * scalar).dtype
    assert str(got).split(".")[1] == str(want).split(".")[1]
    assert ds.result_type(ds.ones(2, dtype=getattr(ds, a)), scalar) == got


@pytest.mark.parametrize(
    "make",
    [
        lambda T: T.tensor([1 + 2j, -3.5 - 0.25j]),
        lambda T: T.tensor(1 + 2j),
        lambda T: T.tensor(-0.5j, dtype=T.complex128),
        lambda T: T.tensor([[1e-5 + 2j, 100j], [0, 1]]),
        lambda T: T.tensor([1j], dtype=T.complex128),
        lambda T: T.zeros(0, dtype=T.cfloat),
        lambda T: T.zeros(2, 0, dtype=T.cdouble),
        lambda T: T.tensor([float("nan") + 1j, float("inf") - 2j]),
        lambda T: T.arange(40).to(T.cfloat) * 1.5j,
        lambda T: T.arange(3000).to(T.cfloat) * (1 - 1j),
        lambda T: T.tensor([1 + 2j], requires_grad=True),
    ],
)
def test_print_matches_torch(make):
    want = repr(make(torch)).replace("torch.", "descent.")
    assert repr(make(ds)) == want


# ---------------------------------------------------------------------------------------------
# gradients: torch's convention


def _both(fn, arrays, dtype):
    """fn's value and its inputs' gradients, in torch and in descent, from the same arrays."""
    out = {}
    for lib in (torch, ds):
        ts = [
            lib.tensor(np.asarray(a).astype(d), requires_grad=True) for a, d in zip(arrays, dtype)
        ]
        y = fn(lib, *ts)
        y.backward()
        out[lib] = (
            _np(y),
            [_np(t.grad) for t in ts],
            [str(t.grad.dtype).split(".")[1] for t in ts],
        )
    return out[torch], out[ds]


# Each: (name, real loss of complex computations, input makers). Inputs are complex or real.
GRAD_CASES = [
    ("mul", lambda T, a, b: (a * b).abs().sum(), [_c(3), _c(3)]),
    (
        "mul_real_by_complex",
        lambda T, a, b: (a * b).real.sum() + (a * b).imag.pow(2).sum(),
        [_r(3), _c(3)],
    ),  # fmt: skip
    ("div", lambda T, a, b: (a / b).abs().sum(), [_c(3), _c(3)]),
    ("add_sub_broadcast", lambda T, a, b: (a + b - a * 2).abs().sum(), [_c(3), _c(2, 3)]),
    (
        "scalars",
        lambda T, a: ((a * 2.5 + 1) / 3 - 0.5).abs().sum() + (a * (1 + 2j)).real.sum(),
        [_c(4)],
    ),  # fmt: skip
    (
        "python_complex_on_real",
        lambda T, a: (a * (1 + 2j)).imag.sum() + (a + 1j).abs().sum(),
        [_r(4)],
    ),  # fmt: skip
    (
        "exp_log",
        lambda T, a: a.exp().abs().sum() + a.log().imag.sum() + a.log().real.sum(),
        [_c(4)],
    ),  # fmt: skip
    ("sqrt_rsqrt", lambda T, a: a.sqrt().abs().pow(3).sum() + a.rsqrt().real.sum(), [_c(4)]),
    ("trig", lambda T, a: a.sin().real.sum() + a.cos().imag.sum() + a.tan().abs().sum(), [_c(4)]),
    ("tanh", lambda T, a: a.tanh().abs().sum(), [_c(4)]),
    ("log1p_expm1", lambda T, a: a.log1p().imag.sum() + a.expm1().real.sum(), [_c(4)]),
    ("pow", lambda T, a: (a**2).abs().sum() + (a**3).real.sum() + (a**0.5).imag.sum(), [_c(4)]),
    ("reciprocal", lambda T, a: (1 / a).abs().sum() + (2 / a).imag.sum(), [_c(4)]),
    ("conj", lambda T, a: (a.conj() * a).real.sum() + (a.conj() * 1j).real.sum(), [_c(4)]),
    ("abs_angle", lambda T, a: a.abs().sum() + a.angle().sum(), [_c(4)]),
    ("matmul", lambda T, a, b: (a @ b).abs().sum() + (a[0] @ b[:, 0]).real, [_c(3, 4), _c(4, 2)]),
    (
        "matmul_real_complex",
        lambda T, a, b: (a.to(b.dtype) @ b).abs().sum(),
        [_r(3, 4), _c(4, 2)],
    ),  # fmt: skip
    ("polar", lambda T, a, b: (T.polar(a, b) * T.polar(b.abs(), a)).real.sum(), [_r(3), _r(3)]),
    ("complex", lambda T, a, b: (T.complex(a, b) ** 2).imag.sum(), [_r(3), _r(3)]),
    ("view_as_complex", lambda T, a: (T.view_as_complex(a) * 1j).abs().sum(), [_r(3, 2)]),
    ("view_as_real", lambda T, a: (T.view_as_real(a * a) ** 2).sum(), [_c(3)]),
    (
        "shapes",
        lambda T, a: (
            T.cat([a.reshape(2, 3).permute(1, 0), a.reshape(3, 2)], 1).flatten()[1:5].abs().sum()
            + T.stack([a, a]).mean(0).real.sum()
        ),
        [_c(6)],
    ),  # fmt: skip
    ("reductions", lambda T, a: (a.sum(0) * a.mean(1)).abs().sum(), [_c(3, 3)]),
    (
        "transpose_unsqueeze",
        lambda T, a: (a.unsqueeze(0).transpose(0, 1)[:, 0] * a.conj()).real.sum(),
        [_c(4)],
    ),  # fmt: skip
    ("indexing", lambda T, a: (a[[0, 0, 2]] ** 2).abs().sum(), [_c(4)]),
    ("real_cast", lambda T, a: a.to(T.complex128).mul(1j).exp().real.sum(), [_r(4)]),
]


@pytest.mark.parametrize("name, fn, arrays", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradients_match_torch_float64(name, fn, arrays):
    dtypes = ["complex128" if np.iscomplexobj(a) else "float64" for a in arrays]
    (yt, gt, dt), (yd, gd, dd) = _both(fn, arrays, dtypes)
    np.testing.assert_allclose(yd, yt, rtol=1e-12, atol=1e-12)
    assert dd == dt  # a real input's gradient is real, a complex one's complex
    for a, b in zip(gd, gt):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, fn, arrays", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradients_match_torch_float32(name, fn, arrays):
    dtypes = ["complex64" if np.iscomplexobj(a) else "float32" for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)  # no silent casts
        (yt, gt, dt), (yd, gd, dd) = _both(fn, arrays, dtypes)
    np.testing.assert_allclose(yd, yt, rtol=1e-4, atol=1e-5)
    assert dd == dt
    for a, b in zip(gd, gt):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def _finite_difference_grad(f, z):
    """dL/dRe + i dL/dIm of a real function of a complex128 array, by central differences."""
    g = np.zeros_like(z)
    eps = 1e-6
    for idx in np.ndindex(z.shape):
        for unit in (1, 1j):
            zp, zm = z.copy(), z.copy()
            zp[idx] += eps * unit
            zm[idx] -= eps * unit
            g[idx] += unit * (f(zp) - f(zm)) / (2 * eps)
    return g


@pytest.mark.parametrize(
    "loss",
    [
        lambda T, z: (z * z.conj().exp()).abs().sum(),
        lambda T, z: T.view_as_real(z @ z.mT).pow(2).sum(),
        lambda T, z: (z.angle() * z.abs()).sum() + (1 / z).imag.sum(),
        lambda T, z: T.fft.fft(z, norm="ortho").abs().pow(3).sum(),
        lambda T, z: T.fft.irfft(z, n=5).pow(2).sum() + T.fft.rfft(z.real, n=4).abs().sum(),
    ],
)
def test_gradients_match_finite_differences(loss):
    z0 = _c(3, 3)

    def f(z):
        return loss(ds, ds.tensor(z)).item()

    z = ds.tensor(z0, requires_grad=True)
    loss(ds, z).backward()
    np.testing.assert_allclose(z.grad.numpy(), _finite_difference_grad(f, z0), rtol=1e-5,
                               atol=1e-6)  # fmt: skip


def test_real_leaf_gets_the_real_part_without_warnings():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (x * ds.tensor([1 + 2j, 3 - 1j])).abs().sum().backward()
    assert x.grad.dtype == ds.float32
    xt = torch.tensor([1.0, 2.0], requires_grad=True)
    (xt * torch.tensor([1 + 2j, 3 - 1j])).abs().sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-6)


def test_backward_from_a_complex_output_needs_a_gradient():
    z = ds.tensor([1 + 1j], requires_grad=True)
    y = (z * z).sum()
    yt = (torch.tensor([1 + 1j], requires_grad=True) ** 2).sum()
    with pytest.raises(RuntimeError):
        yt.backward()  # torch: grad can be implicitly created only for real scalar outputs
    y.backward(ds.tensor(1 + 0j))  # with an explicit gradient it runs
    np.testing.assert_allclose(z.grad.numpy(), [2 - 2j])


def test_empty_and_zero_d_complex():
    e = ds.zeros(0, 3, dtype=ds.cfloat, requires_grad=True)
    (e * 2j).abs().sum().backward()
    assert e.grad.shape == (0, 3) and e.grad.dtype == ds.complex64
    s = ds.tensor(3 + 4j, requires_grad=True)
    s.abs().backward()
    np.testing.assert_allclose(s.grad.numpy(), 0.6 + 0.8j, rtol=1e-6)
    z = ds.tensor(0j, requires_grad=True)
    (z.abs() + z.angle()).backward()  # 0 at 0, as torch
    assert z.grad.item() == 0


def test_second_order_through_complex_mul_matches_torch():
    a = _c(3)
    out = []
    for T in (torch, ds):
        z = T.tensor(a, requires_grad=True)
        (g,) = T.autograd.grad((z * z * z).abs().sum(), z, create_graph=True)
        g.abs().sum().backward()
        out.append(_np(z.grad))
    np.testing.assert_allclose(out[1], out[0], rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# reductions PyTorch defines for complex inputs, and ops that refuse them


MORE_GRAD_CASES = [
    ("var_std", lambda T, a: a.var() + a.std(1).sum() + a.var(0, correction=0).sum(), [_c(3, 4)]),
    ("norm", lambda T, a: a.norm() + T.linalg.vector_norm(a, 1, dim=0).sum(), [_c(3, 4)]),
    ("vdot", lambda T, a, b: T.vdot(a, b).real + T.vdot(b, a).imag, [_c(4), _c(4)]),
    ("pow_tensor", lambda T, a, b: (a**b).abs().sum(), [_c(4), _c(4)]),
    (
        "cfloat_cdouble",
        lambda T, a: (a.cdouble() * 1j).real.sum() + a.cfloat().imag.sum(),
        [_r(3)],
    ),  # fmt: skip
    (
        "prod_cumprod",
        lambda T, a: a.prod(1).abs().sum() + T.cumprod(a, 1).real.sum(),
        [_c(2, 3)],
    ),  # fmt: skip
    (
        "einsum_tensordot",
        lambda T, a, b: (
            T.einsum("ij,jk->ik", a, b).abs().sum() + T.tensordot(a, b, dims=([1], [0])).imag.sum()
        ),
        [_c(2, 3), _c(3, 2)],
    ),  # fmt: skip
    ("linear", lambda T, a, b: T.nn.functional.linear(a, b).abs().sum(), [_c(2, 3), _c(4, 3)]),
    (
        "mm_bmm_kron",
        lambda T, a, b: (
            T.mm(a, b).abs().sum() + T.bmm(a[None], b[None]).real.sum() + T.kron(a, a).abs().sum()
        ),
        [_c(2, 3), _c(3, 2)],
    ),  # fmt: skip
]


@pytest.mark.parametrize("name, fn, arrays", MORE_GRAD_CASES, ids=[c[0] for c in MORE_GRAD_CASES])
def test_more_gradients_match_torch(name, fn, arrays):
    dtypes = ["complex128" if np.iscomplexobj(a) else "float64" for a in arrays]
    (yt, gt, dt), (yd, gd, dd) = _both(fn, arrays, dtypes)
    np.testing.assert_allclose(yd, yt, rtol=1e-10, atol=1e-12)
    assert dd == dt
    for a, b in zip(gd, gt):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    "fn",
    [
        lambda z: z.relu(),
        lambda z: ds.nn.functional.softplus(z),
        lambda z: ds.nn.functional.elu(z),
        lambda z: ds.nn.functional.gelu(z),
        lambda z: ds.erf(z),
        lambda z: ds.logit(z),
    ],
)
def test_real_only_ops_refuse_complex_instead_of_dropping_the_imaginary_part(fn):
    with pytest.raises(TypeError, match="complex input"):
        fn(ds.tensor([1 + 1j, 2 - 1j]))


def test_real_and_imag_can_be_assigned():
    z, t = ds.tensor([1 + 2j, 3 + 4j]), torch.tensor([1 + 2j, 3 + 4j])
    z.real, t.real = ds.tensor([9.0, 8.0]), torch.tensor([9.0, 8.0])
    z.imag, t.imag = ds.tensor(0.5), torch.tensor(0.5)
    np.testing.assert_array_equal(z.numpy(), t.numpy())
    with pytest.raises(RuntimeError, match="not recorded"):
        ds.tensor([1j], requires_grad=True).real = ds.tensor([1.0])


def test_complex_creation_functions():
    assert str(ds.full((2,), 1 + 1j).dtype) == str(torch.full((2,), 1 + 1j).dtype).replace(
        "torch", "descent"
    )
    np.testing.assert_array_equal(ds.full((2,), 1 + 1j).numpy(), [1 + 1j, 1 + 1j])
    ds.manual_seed(0)
    z = ds.randn(100000, dtype=ds.cfloat)  # torch: each part N(0, 1/2), E|z|^2 = 1
    assert z.dtype == ds.complex64
    assert abs(float(z.real.var()) - 0.5) < 0.02 and abs(float(z.imag.var()) - 0.5) < 0.02
    u = ds.rand(100000, dtype=ds.cdouble)  # each part uniform in [0, 1)
    assert u.dtype == ds.complex128 and 0 <= float(u.imag.min()) and float(u.imag.max()) < 1
    assert abs(float(u.imag.mean()) - 0.5) < 0.01
    assert ds.randn_like(z[:3]).dtype == ds.complex64
    for make in (ds.zeros_like, ds.ones_like):
        assert make(z[:2]).dtype == ds.complex64


_HOLOMORPHIC = ["asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "exp2",
                "log2", "log10"]  # fmt: skip


@pytest.mark.parametrize("name", _HOLOMORPHIC)
def test_inverse_trig_hyperbolic_and_log_bases_match_torch(name):
    a = np.array([0.3 + 0.4j, -0.5 - 0.6j, 1.2 - 0.1j, -0.2 + 0.9j, 2.0 + 0.0j, -1.5 + 0.0j])
    res = []
    for T in (torch, ds):
        z = T.tensor(a, requires_grad=True)
        y = getattr(T, name)(z)
        (y.real * 1.3 + y.imag * 0.7).sum().backward()
        (g,) = T.autograd.grad(getattr(T, name)(z).abs().sum(), z, create_graph=True)
        g2 = T.autograd.grad(g.abs().sum(), z)[0]
        res.append([_np(y), _np(z.grad), _np(g2)])
    for got, want in zip(res[1], res[0]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"ord": "fro"},
        {"ord": 1},
        {"ord": float("inf")},
        {"dim": 1},
        {"dim": (0, 1)},
        {"ord": 3, "dim": 0},
        {"ord": "nuc"},  # the spectral norms: singular values of the complex matrix
        {"ord": 2},
        {"ord": -2, "dim": (1, 0)},
    ],  # fmt: skip
)
def test_linalg_norm_of_complex_matches_torch(kwargs):
    a = _c(3, 4)
    out = []
    for T in (torch, ds):
        z = T.tensor(a, requires_grad=True)
        n = T.linalg.norm(z, **kwargs)
        n.sum().backward()
        out.append((_np(n), _np(z.grad), str(n.dtype).split(".")[1]))
    np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-12)
    np.testing.assert_allclose(out[1][1], out[0][1], rtol=1e-10, atol=1e-12)
    assert out[1][2] == out[0][2] == "float64"


_TORCH_COMPLEX_FUNCTIONS = {
    "sigmoid": lambda T, z: T.sigmoid(z),
    "softsign": lambda T, z: T.nn.functional.softsign(z),
    "tanhshrink": lambda T, z: T.nn.functional.tanhshrink(z),
    "sinc": lambda T, z: T.sinc(z),
    "logsumexp": lambda T, z: T.logsumexp(z, 1),
    "logsumexp_all_keepdim": lambda T, z: T.logsumexp(z, (0, 1), keepdim=True),
    "logsumexp_large": lambda T, z: T.logsumexp(z * 50, 0),
}


@pytest.mark.parametrize("name", sorted(_TORCH_COMPLEX_FUNCTIONS))
def test_functions_torch_defines_for_complex_match_it(name):
    a = _c(3, 4)
    a[0, 0] = 0  # sinc's removable singularity
    a[1, 1] = -30 + 1j  # sigmoid's overflow side
    fn = _TORCH_COMPLEX_FUNCTIONS[name]
    out = []
    for T in (torch, ds):
        z = T.tensor(a, requires_grad=True)
        y = fn(T, z)
        (y.real + 0.3 * y.imag).sum().backward()
        out.append((_np(y), _np(z.grad), tuple(y.shape), str(y.dtype).split(".")[1]))
    (yt, gt, st, dt), (yd, gd, sd, dd) = out
    assert (sd, dd) == (st, dt)
    np.testing.assert_allclose(yd, yt, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gd, gt, rtol=1e-9, atol=1e-12)


def test_python_complex_and_legacy_type_names():
    z = ds.tensor(1 + 2j)
    assert complex(z) == complex(torch.tensor(1 + 2j)) == 1 + 2j
    assert complex(ds.tensor([3.0])) == 3 + 0j
    for make in (lambda T: T.tensor([1j]), lambda T: T.tensor([1j], dtype=T.complex128)):
        assert make(ds).type().split(".")[1] == make(torch).type().split(".")[1]
    assert ds.tensor([1.0]).type("torch.ComplexFloatTensor").dtype == ds.complex64


def test_einsum_of_real_and_complex_operands_after_a_cast():
    """torch.einsum refuses a real with a complex operand ("expected scalar type"), as descent
    does now; cast first, and the real operand's gradient is the real part."""
    a, b = _r(2, 3), _c(3, 2)
    x = ds.tensor(a, requires_grad=True)
    h = x.relu()  # a real intermediate: its backward must see a real gradient
    with pytest.raises(RuntimeError, match="einsum"):
        ds.einsum("ij,jk->ik", h, ds.tensor(b))
    y = ds.einsum("ij,jk->ik", h.to(ds.complex128), ds.tensor(b))
    assert y.dtype == ds.complex128
    y.abs().sum().backward()
    xt = torch.tensor(a, requires_grad=True)
    yt = torch.einsum("ij,jk->ik", xt.relu().to(torch.complex128), torch.tensor(b))
    yt.abs().sum().backward()
    assert x.grad.dtype == ds.float64
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10)


def test_nan_to_num_of_complex_replaces_each_part():
    a = np.array([complex(np.nan, np.inf), complex(-np.inf, 1), 1 + 2j], dtype=np.complex64)
    for kwargs in ({}, {"nan": 1.0, "posinf": 2.0, "neginf": -3.0}):
        got = ds.nan_to_num(ds.tensor(a), **kwargs)
        want = torch.nan_to_num(torch.tensor(a), **kwargs)
        assert got.dtype == ds.complex64
        np.testing.assert_array_equal(got.numpy(), want.numpy())
