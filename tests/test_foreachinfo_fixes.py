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
