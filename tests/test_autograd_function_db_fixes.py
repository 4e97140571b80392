"""Regression tests for what tests/autograd_function_harness.py found (custom Functions
written PyTorch 2's way), each differential against torch 2.13."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import descent  # noqa: E402


def _exp_fn(lib, save_for_forward=True):
    """exp as a ctx-less forward + setup_context that saves its output (lib: torch/descent)."""

    class Exp(lib.autograd.Function):
        @staticmethod
        def forward(x):
            return x.exp()

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(output)
            if save_for_forward:
                ctx.save_for_forward(output)

        @staticmethod
        def backward(ctx, gy):
            (y,) = ctx.saved_tensors
            return gy * y

    return Exp


def _cube_fn(lib):
    """(x^3, 3x^2) with the second output saved and used by backward (two outputs)."""

    class Cube(lib.autograd.Function):
        @staticmethod
        def forward(x):
            return x**3, 3 * x**2

        @staticmethod
        def setup_context(ctx, inputs, outputs):
            ctx.save_for_backward(inputs[0], outputs[1])

        @staticmethod
        def backward(ctx, g0, g1):
            x, d = ctx.saved_tensors
            return g0 * d + g1 * 6 * x

    return Cube


X = np.array([0.3, -1.2, 2.0], dtype=np.float32)


def _both(x=X):
    return torch.tensor(x, requires_grad=True), descent.tensor(x, requires_grad=True)


def test_save_for_forward_exists_and_values_match():
    tx, dx = _both()
    ty, dy = _exp_fn(torch).apply(tx), _exp_fn(descent).apply(dx)
    ty.sum().backward()
    dy.sum().backward()
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("make", [_exp_fn, _cube_fn])
def test_saved_output_carries_graph_in_double_backward(make):
    """A saved output is the node's output under create_graph (descent saved the constant
    forward returned: the second derivative lost the path through it)."""
    tx, dx = _both()
    tout, dout = make(torch).apply(tx), make(descent).apply(dx)
    tout = tout if isinstance(tout, tuple) else (tout,)
    dout = dout if isinstance(dout, tuple) else (dout,)
    (tg,) = torch.autograd.grad(sum(o.sum() for o in tout), tx, create_graph=True)
    (dg,) = descent.autograd.grad(sum(o.sum() for o in dout), dx, create_graph=True)
    np.testing.assert_allclose(dg.detach().numpy(), tg.detach().numpy(), rtol=1e-5)
    (tgg,) = torch.autograd.grad(tg.sum(), tx)
    (dgg,) = descent.autograd.grad(dg.sum(), dx)
    np.testing.assert_allclose(dgg.numpy(), tgg.numpy(), rtol=1e-5)


def test_saved_output_double_backward_float64_finite_differences():
    x = descent.tensor(np.array([0.5, -0.7], dtype=np.float64), requires_grad=True)
    Exp = _exp_fn(descent)
    assert descent.autograd.gradgradcheck(lambda t: Exp.apply(t), (x,))


def _default_args_fn(lib, seen):
    class Pick(lib.autograd.Function):
        @staticmethod
        def forward(x, idx=(2,), scale=2.0):
            return x[idx] * scale

        @staticmethod
        def setup_context(ctx, inputs, output):
            seen.append(len(inputs))
            x, idx, scale = inputs
            ctx.shape, ctx.idx, ctx.scale = x.shape, idx, scale

        @staticmethod
        def backward(ctx, gy):
            g = gy.new_zeros(ctx.shape)
            g[ctx.idx] = gy * ctx.scale
            return g, None, None

    return Pick


@pytest.mark.parametrize(("args", "kwargs"), [((), {}), (((1,),), {}), ((), {"scale": 3.0})])
def test_forward_default_args_reach_setup_context(args, kwargs):
    """setup_context's inputs hold every argument, defaults included, keywords positional
    (PyTorch binds the call to forward's signature; descent passed only what was given)."""
    x = np.arange(15, dtype=np.float32).reshape(3, 5)
    tx, dx = _both(x)
    tseen, dseen = [], []
    ty = _default_args_fn(torch, tseen).apply(tx, *args, **kwargs)
    dy = _default_args_fn(descent, dseen).apply(dx, *args, **kwargs)
    assert tseen == dseen == [3]
    ty.sum().backward()
    dy.sum().backward()
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy())
    np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy())


def _exp_inplace_fn(lib):
    class Exp_(lib.autograd.Function):
        @staticmethod
        def forward(x):
            x.numpy()[...] = np.exp(x.numpy())  # NumPy writes it: no recorded in-place op
            return x

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.mark_dirty(inputs[0])
            ctx.save_for_backward(output)

        @staticmethod
        def backward(ctx, gy):
            (y,) = ctx.saved_tensors
            return gy * y

    return Exp_


def test_mark_dirty_output_saved_is_not_a_later_inplace_write():
    """Saving the dirty input (the output) then returning it: backward used to raise
    'modified by an inplace operation (version 0 -> 1)'."""
    tx, dx = _both()
    tc, dc = tx.clone(), dx.clone()
    ty, dy = _exp_inplace_fn(torch).apply(tc), _exp_inplace_fn(descent).apply(dc)
    assert ty is tc and dy is dc
    ty.sum().backward()
    dy.sum().backward()
    np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("fn", ["sort", "argsort"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_sort_argsort_accept_numpy_axis(fn, axis):
    x = np.array([[3.0, 1.0, 2.0], [0.5, 0.25, 9.0]], dtype=np.float32)
    t = getattr(torch, fn)(torch.tensor(x), axis=axis)
    d = getattr(descent, fn)(descent.tensor(x), axis=axis)
    tm = getattr(torch.tensor(x), fn)(axis=axis)
    dm = getattr(descent.tensor(x), fn)(axis=axis)
    for a, b in ((t, d), (tm, dm)):
        a = a.values if fn == "sort" else a
        b = b.values if fn == "sort" else b
        np.testing.assert_array_equal(b.numpy(), a.numpy())


def test_func_jvp_integer_output_gets_zero_tangent():
    """func.jvp of a function with an integer output (sort's indices): torch gives int64
    zeros; descent raised (it asked the integer output for a gradient)."""
    x = np.array([[3.0, 1.0, 2.0], [0.5, 0.25, 9.0]], dtype=np.float32)
    v = np.ones_like(x)
    (tv, ti), (ttv, tti) = torch.func.jvp(
        lambda a: torch.sort(a, 1), (torch.tensor(x),), (torch.tensor(v),)
    )
    (dv, di), (dtv, dti) = descent.func.jvp(
        lambda a: tuple(descent.sort(a, 1)), (descent.tensor(x),), (descent.tensor(v),)
    )
    np.testing.assert_array_equal(dtv.numpy(), ttv.numpy())
    assert str(dti.dtype).endswith("int64") and tti.dtype == torch.int64
    np.testing.assert_array_equal(dti.numpy(), tti.numpy())
