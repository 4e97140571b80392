"""Regression tests for what PyTorch's foreach databases found in descent
(tests/foreachinfo_harness.py): each differential against torch 2.13."""

import numpy as np
import pytest

import descent as ds

torch = pytest.importorskip("torch")


def _pair(shapes, dtype="float32", seed=0, requires_grad=False, low=0.1, high=0.9):
    rng = np.random.default_rng(seed)
    arrs = [rng.uniform(low, high, s).astype(dtype) for s in shapes]
    ts = [torch.tensor(a, requires_grad=requires_grad) for a in arrs]
    dt = [ds.tensor(a, requires_grad=requires_grad) for a in arrs]
    return ts, dt


def _close(t_out, d_out, tol=1e-6):
    assert len(t_out) == len(d_out)
    for a, b in zip(t_out, d_out, strict=True):
        assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=tol, atol=tol)


SHAPES = [(3, 2), (0,), (4,), ()]

# - 24 of foreach_unary_op_db's functions, _foreach_clone, _foreach_max and _foreach_mm were
#   missing (AttributeError).
UNARY = ["acos", "asin", "atan", "ceil", "cos", "cosh", "erf", "erfc", "expm1", "floor", "frac",
         "lgamma", "log10", "log1p", "log2", "round", "rsqrt", "sigmoid", "sin", "sinh", "tan",
         "tanh", "trunc"]  # fmt: skip


@pytest.mark.parametrize("name", UNARY + ["clone"])
def test_new_unary_values_and_gradients(name):
    ts, dt = _pair(SHAPES, requires_grad=True)
    t_out = getattr(torch, f"_foreach_{name}")(ts)
    d_out = getattr(ds, f"_foreach_{name}")(dt)
    _close(t_out, d_out)
    ws = [np.random.default_rng(1).standard_normal(t.shape).astype("float32") for t in t_out]
    tg = torch.autograd.grad(t_out, ts, [torch.tensor(w) for w in ws], allow_unused=True)
    dg = ds.autograd.grad(list(d_out), dt, [ds.tensor(w) for w in ws], allow_unused=True)
    for a, b, x in zip(tg, dg, ts, strict=True):
        a = torch.zeros_like(x) if a is None else a
        b = np.zeros(x.shape, "float32") if b is None else b.numpy()
        np.testing.assert_allclose(b, a.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", UNARY)
def test_new_unary_inplace(name):
    ts, dt = _pair(SHAPES, dtype="float64")
    assert getattr(torch, f"_foreach_{name}_")(ts) is ts
    assert getattr(ds, f"_foreach_{name}_")(dt) is dt
    _close(ts, dt)


def test_foreach_max_and_mm():
    ts, dt = _pair([(3, 2), (4,), ()], requires_grad=True)
    _close(torch._foreach_max(ts), ds._foreach_max(dt))
    ta, da = _pair([(2, 3), (4, 5)], seed=1, requires_grad=True)
    tb, db = _pair([(3, 2), (5, 1)], seed=2, requires_grad=True)
    t_out, d_out = torch._foreach_mm(ta, tb), ds._foreach_mm(da, db)
    _close(t_out, d_out)
    sum(o.sum() for o in t_out).backward()
    sum(o.sum() for o in d_out).backward()
    for a, b in zip(ta + tb, da + db, strict=True):
        np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-5)
    with pytest.raises(RuntimeError, match="empty tensor"):
        torch._foreach_max([torch.ones(2), torch.ones(0)])
    with pytest.raises(RuntimeError, match="empty tensor"):
        ds._foreach_max([ds.ones(2), ds.ones(0)])


# - An empty list, or lists of different lengths, are PyTorch's RuntimeErrors (descent looped
#   over nothing, or raised ValueError / zip's error after changing some tensors in place).
@pytest.mark.parametrize(
    "call",
    [
        lambda m, xs: m._foreach_exp([]),
        lambda m, xs: m._foreach_add([], 1.0),
        lambda m, xs: m._foreach_zero_([]),
        lambda m, xs: m._foreach_norm([]),
        lambda m, xs: m._foreach_mm([], []),
        lambda m, xs: m._foreach_add_(xs, xs[:1]),
        lambda m, xs: m._foreach_mul_(xs, [2.0]),
        lambda m, xs: m._foreach_addcmul_(xs, xs, xs[:1]),
        lambda m, xs: m._foreach_addcdiv(xs, xs, xs, [1.0]),
        lambda m, xs: m._foreach_lerp_(xs, xs[:1], 0.5),
        lambda m, xs: m._foreach_copy_(xs, xs[:1]),
    ],
)
def test_list_checks_raise_runtime_error_before_any_change(call):
    ts, dt = _pair([(2,), (3,)], dtype="float64")
    before = [d.numpy().copy() for d in dt]
    with pytest.raises(RuntimeError):
        call(torch, ts)
    with pytest.raises(RuntimeError):
        call(ds, dt)
    for b, d in zip(before, dt, strict=True):
        np.testing.assert_array_equal(d.numpy(), b)


# - addcmul/addcdiv take `scalars=` (a list of numbers or a 1-d tensor, PyTorch's ScalarList and
#   Tensor overloads); lerp takes a list of numbers and PyTorch's `weights=` keyword.
def test_pointwise_scalars_keyword_and_lerp_weights():
    ts, dt = _pair([(2, 2), (3,)], dtype="float64")
    t1, d1 = _pair([(2, 2), (3,)], dtype="float64", seed=1)
    for name in ("_foreach_addcmul", "_foreach_addcdiv"):
        for sc in ([0.5, -2.0], "tensor"):
            tsc = torch.tensor([0.5, -2.0], dtype=torch.float64) if sc == "tensor" else sc
            dsc = ds.tensor([0.5, -2.0], dtype=ds.float64) if sc == "tensor" else sc
            _close(getattr(torch, name)(ts, t1, t1, scalars=tsc),
                   getattr(ds, name)(dt, d1, d1, scalars=dsc))  # fmt: skip
    _close(torch._foreach_lerp(ts, t1, [0.25, 2.0]), ds._foreach_lerp(dt, d1, [0.25, 2.0]))
    _close(torch._foreach_lerp(ts, t1, weights=t1), ds._foreach_lerp(dt, d1, weights=d1))


# - A Python complex scalar met a float64 tensor as a complex64 tensor: the result was
#   complex128 but 2e-8 off (torch keeps the exact number).
def test_complex_scalar_keeps_float64_precision():
    c = 0.9093563935832981 + 0.05746523336120701j
    x = np.array([0.3, -0.7, 2.5])
    for f in (lambda m, t: t + c, lambda m, t: c - t, lambda m, t: t * c, lambda m, t: t**c,
              lambda m, t: m._foreach_add([t], [c])[0]):  # fmt: skip
        a, b = f(torch, torch.tensor(x)), f(ds, ds.tensor(x))
        assert str(b.dtype).endswith("complex128")
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-15, atol=0)
    # the dtype still follows PyTorch's rule for each tensor dtype
    for dt in ("float32", "int64", "bool", "complex64"):
        tt, dd = torch.ones(2, dtype=getattr(torch, dt)), ds.ones(2, dtype=getattr(ds, dt))
        assert str((tt + c).dtype).split(".")[-1] == str((dd + c).dtype).split(".")[-1]


# - Ops PyTorch has no kernel for at these dtypes ran in descent (NumPy's meaning: an order on
#   complex numbers, ceil of bools, the fraction of an integer). PyTorch raises
#   NotImplementedError (descent's DtypeError now derives from it) or RuntimeError.
C, B, I = "complex64", "bool", "int64"
REFUSED = [
    ("max", C, lambda x: x.max()), ("min", C, lambda x: x.min()), ("amax", C, lambda x: x.amax()),
    ("max dim", C, lambda x: x.max(0)), ("maximum", C, lambda x: x.maximum(x)),
    ("clamp", C, lambda x: x.clamp(min=0)), ("clamp_min tensor", C, lambda x: x.clamp_min(x)),
    ("ceil", C, lambda x: x.ceil()), ("floor", C, lambda x: x.floor()),
    ("round", C, lambda x: x.round()), ("trunc", C, lambda x: x.trunc()),
    ("sign", C, lambda x: x.sign()), ("ceil", B, lambda x: x.ceil()),
    ("floor", B, lambda x: x.floor()), ("round", B, lambda x: x.round()),
    ("trunc", B, lambda x: x.trunc()), ("abs", B, lambda x: x.abs()),
    ("abs_", B, lambda x: x.abs_()),
    ("frac", B, lambda x: x.frac()), ("frac", I, lambda x: x.frac()),
    ("lerp", I, lambda x: x.lerp(x, 0.5)), ("lerp tensor", I, lambda x: x.lerp(x, x)),
    ("lerp", B, lambda x: x.lerp(x, 0.5)), ("addcmul", B, lambda x: x.addcmul(x, x)),
    ("addcdiv", I, lambda x: x.addcdiv(x, x)), ("addcdiv", B, lambda x: x.addcdiv(x, x)),
    ("mm", B, lambda x: x.reshape(1, 2).mm(x.reshape(2, 1))), ("matmul", B, lambda x: x @ x),
    ("clamp_min bool bound", B, lambda x: x.clamp_min(True)),
    ("clamp_min_ bool bound", B, lambda x: x.clamp_min_(True)),
    ("clamp_min_ int bound", B, lambda x: x.clamp_min_(8)),
    ("pow bool", B, lambda x: x.pow(x)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "dtype", "fn"), REFUSED, ids=[f"{n}-{d}" for n, d, _ in REFUSED])
def test_refused_as_pytorch(name, dtype, fn):
    vals = {C: [1 + 2j, 3 - 1j], B: [True, False], I: [3, -4]}[dtype]
    with pytest.raises(RuntimeError) as te:
        fn(torch.tensor(vals))
    with pytest.raises(type(te.value)):
        fn(ds.tensor(vals))


# - addcmul/addcdiv/lerp with a complex value on a real tensor made a complex result (or a
#   TypeError); float ** complex in place dropped the imaginary part silently.
@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: m.addcmul(x, x, x, value=0.5 + 1j),
        lambda m, x: m.addcdiv(x, x, x, value=1j),
        lambda m, x: m.lerp(x, x, 0.5 + 1j),
        lambda m, x: x.clone().pow_(1 + 1j),
        lambda m, x: x.clone().addcmul_(x, x, value=2j),
        lambda m, x: x.clamp_min(1 + 1j),
        lambda m, x: m._foreach_lerp([x], [x], 0.5 + 0.5j),
    ],
)
def test_complex_value_on_real_tensor_raises(fn):
    x = [1.5, -2.0]
    with pytest.raises(RuntimeError) as te:
        fn(torch, torch.tensor(x))
    with pytest.raises(type(te.value)):
        fn(ds, ds.tensor(x))


# - An integer addcmul truncates a float value to an integer, as PyTorch (descent gave a float32
#   result, and in place raised a cast error); bool add/sub with an int alpha stays bool.
@pytest.mark.parametrize("value", [0.88, 1.9, -1.9, 3, 2.0])
def test_integer_addcmul_truncates_the_value(value):
    a, b, c = ([3, 4, -5], [5, 6, 7], [2, -1, 3])
    for inplace in (False, True):
        res = []
        for m in (torch, ds):
            x, y, z = (m.tensor(v) for v in (a, b, c))
            res.append(
                x.addcmul_(y, z, value=value) if inplace else m.addcmul(x, y, z, value=value)
            )
        assert str(res[1].dtype).endswith("int64")
        np.testing.assert_array_equal(res[1].numpy(), res[0].numpy())


def test_bool_add_with_int_alpha_stays_bool():
    a, b = [True, False, False], [True, True, False]
    for alpha in (3, 0, 1, True):
        out = []
        for m in (torch, ds):
            x, y = m.tensor(a), m.tensor(b)
            out.append(
                (m.add(x, y, alpha=alpha), x.add(y, alpha=alpha), x.clone().add_(y, alpha=alpha))
            )
        for t, d in zip(*out, strict=True):
            assert str(d.dtype).endswith("bool")
            np.testing.assert_array_equal(d.numpy(), t.numpy())
    # Tensor.add/sub now share descent.add's alpha check (a fractional alpha on integers)
    for m in (torch, ds):
        with pytest.raises(RuntimeError):
            m.tensor([1, 2]).add(m.tensor([1, 1]), alpha=0.5)


# - A bound or source that does not broadcast raised NumPy's ValueError, not PyTorch's
#   RuntimeError; copy_ of a (1, 3) source into a (3,) tensor worked (NumPy drops leading 1s).
@pytest.mark.parametrize(
    ("shape", "fn"),
    [((3, 3), lambda x, y: x.clamp_min(y)), ((3, 3), lambda x, y: x.clamp(y, y)),
     ((3, 3), lambda x, y: x.copy_(y)), ((1, 2), lambda x, y: x[0].copy_(y)),
     ((2, 1), lambda x, y: x[0].copy_(y))],
)  # fmt: skip
def test_non_broadcastable_is_runtime_error(shape, fn):
    for m in (torch, ds):
        with pytest.raises(RuntimeError):
            fn(m.ones(2, 2), m.ones(*shape))


def test_foreach_inplace_extremes_keep_the_cast_rule():
    for other in (8, 0.5, [8, 8]):
        for m in (torch, ds):
            with pytest.raises(RuntimeError):
                m._foreach_maximum_([m.tensor([True, False]), m.tensor([False])], other)
    ti, di = [torch.tensor([1, 5])], [ds.tensor([1, 5])]
    torch._foreach_minimum_(ti, 3)
    ds._foreach_minimum_(di, 3)
    np.testing.assert_array_equal(di[0].numpy(), ti[0].numpy())


# - A negative-order vector norm of nothing was inf; PyTorch refuses it as it refuses the inf
#   norm (no identity: a power mean of 1/|x|). Found by the foreach database's zero-size samples.
@pytest.mark.parametrize("ord", [-1, -2, -0.5, float("-inf"), float("inf")])
@pytest.mark.parametrize(("shape", "dim"), [((0,), None), ((0, 3), 0), ((2, 0), 1)])
def test_negative_norm_of_nothing_raises(ord, shape, dim):
    for m in (torch, ds):
        with pytest.raises(RuntimeError, match="identity"):
            m.linalg.vector_norm(m.ones(*shape), ord, dim=dim)
        if dim is None:
            with pytest.raises(RuntimeError):
                m._foreach_norm([m.ones(2), m.ones(*shape)], ord)
    # a reduction over non-empty dims of an empty tensor is an empty result, as in PyTorch
    if dim is not None:
        other = 1 - dim
        a = torch.linalg.vector_norm(torch.ones(*shape), ord, dim=other)
        b = ds.linalg.vector_norm(ds.ones(*shape), ord, dim=other)
        assert tuple(a.shape) == tuple(b.shape)


# - torch._foreach_pow(2.5, exponents), a number as the base of every tensor (PyTorch's
#   ScalarAndTensor overload), raised TypeError.
@pytest.mark.parametrize("base", [3, 2.5, True])
def test_foreach_pow_number_base(base):
    ts, dt = _pair([(3, 2), (0,), ()], requires_grad=True)
    t_out, d_out = torch._foreach_pow(base, ts), ds._foreach_pow(base, dt)
    _close(t_out, d_out)
    with pytest.raises(RuntimeError):
        ds._foreach_pow(2.0, [])
    if base is True:  # torch's backward fails here ("INTERNAL ASSERT FAILED ... unknown ivalue
        return  # tag 4", PyTorch 2.13): nothing to compare the gradient with
    sum(o.sum() for o in t_out).backward()
    sum(o.sum() for o in d_out).backward()
    for a, b in zip(ts, dt, strict=True):
        np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-5, atol=1e-7)


# - torch._foreach_powsum (sum |x|^ord per tensor, in torch's namespace but not in its foreach
#   database) was missing.
@pytest.mark.parametrize("ord", [2, 1, 0, 3, 0.5, -1, float("inf")])
def test_foreach_powsum(ord):
    vals = [[1.5, -2.0, 0.0], [0.5], [], [[0.25, -3.0]]]
    t_out = torch._foreach_powsum([torch.tensor(v) for v in vals], ord)
    d_out = ds._foreach_powsum([ds.tensor(v) for v in vals], ord)
    _close(t_out, d_out)
    c = [1.5 + 1j, -2.0]
    _close(torch._foreach_powsum([torch.tensor(c)], ord), ds._foreach_powsum([ds.tensor(c)], ord))
    t64 = torch._foreach_powsum([torch.tensor(vals[0])], ord, dtype=torch.float64)
    _close(t64, ds._foreach_powsum([ds.tensor(vals[0])], ord, dtype=ds.float64))
    for m in (torch, ds):
        with pytest.raises(NotImplementedError):
            m._foreach_powsum([m.tensor([1, 2])], ord)


@pytest.mark.parametrize(
    "sa, sb",
    [((0,), (0,)), ((3,), (3,)), ((2, 0), (0, 3)), ((0, 3), (3, 2)), ((0, 2, 3), (0, 3, 3)),
     ((4, 2, 0), (4, 0, 3)), ((2, 3), (3,)), ((2, 0), (0,)), ((2, 3), (3, 4))],
)  # fmt: skip
def test_bool_matmul_refused_unless_the_product_is_empty(sa, sb):
    """PyTorch refuses a bool product, but an empty one never reaches its kernel (zeros where
    the inner size is 0, an empty result), except the dot of two vectors."""
    ta, tb = torch.zeros(sa, dtype=torch.bool), torch.zeros(sb, dtype=torch.bool)
    da, db = ds.zeros(sa, dtype=ds.bool), ds.zeros(sb, dtype=ds.bool)
    try:
        want = ta @ tb
    except NotImplementedError:
        with pytest.raises(NotImplementedError):
            da @ db
        return
    got = da @ db
    assert got.dtype == ds.bool and tuple(got.shape) == tuple(want.shape)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
