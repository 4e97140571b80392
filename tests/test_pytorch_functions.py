"""PyTorch's autograd extension points and top-level functions, each checked against PyTorch:
custom `autograd.Function`s written PyTorch's way (ctx, several outputs, `Variable`,
`amp.custom_fwd/custom_bwd`), and torch's functions that descent composes from its ops
(`hstack`, `addcmul`, `baddbmm`, `tensordot`, `kron`, `searchsorted`, ...).

tests/test_pytorch_surface_extra.py holds the rest of the audit's names.
"""

from __future__ import annotations

import numpy as np
import pytest

import descent as ds

torch = pytest.importorskip("torch")


def close(d, t, rtol=1e-6, atol=1e-6):
    assert str(d.dtype) == str(t.dtype).replace("torch.", "descent."), (d.dtype, t.dtype)
    assert tuple(d.shape) == tuple(t.shape)
    np.testing.assert_allclose(d.numpy(), t.detach().numpy(), rtol=rtol, atol=atol)


def pair(a, requires_grad=False):
    """The same values as a descent and a torch tensor (dtype kept)."""
    a = np.asarray(a)
    return (
        ds.tensor(a, requires_grad=requires_grad),
        torch.tensor(a, requires_grad=requires_grad),
    )


# ---------------------------------------------------------------------------------------------
# custom autograd functions, PyTorch's way (forward(ctx, ...) / backward(ctx, grad))


def _legendre3(lib):
    """The custom function of PyTorch's "Learning PyTorch with Examples", as written there."""

    class LegendrePolynomial3(lib.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return 0.5 * (5 * input**3 - 3 * input)

        @staticmethod
        def backward(ctx, grad_output):
            (input,) = ctx.saved_tensors
            return grad_output * 1.5 * (5 * input**2 - 1)

    return LegendrePolynomial3


def _scaled_mul(lib):
    class ScaledMul(lib.autograd.Function):  # two tensors and a number; PyTorch 2's form
        @staticmethod
        def forward(a, b, scale):
            return a * b * scale

        @staticmethod
        def setup_context(ctx, inputs, output):
            a, b, scale = inputs
            ctx.save_for_backward(a, b)
            ctx.scale = scale

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            ga = g * b * ctx.scale if ctx.needs_input_grad[0] else None
            gb = g * a * ctx.scale if ctx.needs_input_grad[1] else None
            return ga, gb, None

    return ScaledMul


def test_custom_function_tutorial_training_matches_torch():
    xs = np.linspace(-np.pi, np.pi, 200, dtype=np.float32)
    ys = np.sin(xs)
    losses, params = [], []
    for lib in (ds, torch):
        P3 = _legendre3(lib)
        x, y = lib.tensor(xs), lib.tensor(ys)
        a, b, c, d = (lib.full((), v, requires_grad=True) for v in (0.0, -1.0, 0.0, 0.3))
        run = []
        for _ in range(30):
            y_pred = a + b * P3.apply(c + d * x)
            loss = ((y_pred - y) ** 2).sum()
            run.append(loss.item())
            loss.backward()
            with lib.no_grad():
                for p in (a, b, c, d):
                    p -= 5e-6 * p.grad
                    p.grad = None
        losses.append(run)
        params.append([p.item() for p in (a, b, c, d)])
        assert "LegendrePolynomial3Backward" in str(P3.apply(x.requires_grad_()).grad_fn)
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    np.testing.assert_allclose(params[0], params[1], rtol=1e-5, atol=1e-6)


def test_custom_function_arguments_needs_input_grad_and_second_order_match_torch():
    a0 = np.array([0.5, -1.0, 2.0], np.float32)
    b0 = np.array([1.5, 0.25, -0.5], np.float32)
    results = []
    for lib in (ds, torch):
        f = _scaled_mul(lib)
        a = lib.tensor(a0, requires_grad=True)
        b = lib.tensor(b0)  # needs no gradient: backward sees needs_input_grad[1] False
        y = f.apply(a, b, 3.0)
        (ga,) = lib.autograd.grad((y * y).sum(), a, create_graph=True)
        ga.sum().backward()  # second order through the custom backward
        with lib.no_grad():
            assert f.apply(a, b, 3.0).grad_fn is None
        results.append((y, ga, a.grad))
    for d_t, t_t in zip(*results, strict=True):
        close(d_t, t_t, rtol=1e-5)


def test_custom_function_errors_match_torch():
    for lib in (ds, torch):
        P3 = _legendre3(lib)
        x = lib.tensor([0.5, 1.0], requires_grad=True)
        y = P3.apply(x)
        y.sum().backward()
        with pytest.raises(RuntimeError, match="second time|freed"):
            y.sum().backward()  # its saved values were released by the first backward
        h = x * 1.0
        z = P3.apply(h)
        h.mul_(2.0)  # the saved input changed in place
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.sum().backward()


def test_variable_is_the_legacy_wrapper_like_torch():
    from torch.autograd import Variable as TVariable

    from descent.autograd import Variable

    for lib, V in ((ds, Variable), (torch, TVariable)):
        t = lib.ones(2)
        v = V(t)
        assert v is not t and not v.requires_grad and isinstance(v, lib.Tensor)
        w = V(t, requires_grad=True)
        assert w.requires_grad and not t.requires_grad and w.grad_fn is None
        (w * 3).sum().backward()
        assert w.grad.tolist() == [3.0, 3.0]
        with lib.no_grad():
            w.data.mul_(2)  # shares t's values
        assert t.tolist() == [2.0, 2.0]
        assert isinstance(t, V) and not isinstance(3, V)
        with pytest.warns(UserWarning, match="volatile"):
            V(t, volatile=True)


def _amp_matmul(lib, cast_inputs):
    class MatMul(lib.autograd.Function):
        @staticmethod
        @lib.amp.custom_fwd(device_type="cpu", cast_inputs=cast_inputs)
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a @ b

        @staticmethod
        @lib.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return g @ b.t(), a.t() @ g

    return MatMul


@pytest.mark.parametrize("cast", [None, "float32"])
def test_amp_custom_fwd_bwd_dtypes_match_torch(cast):
    a0 = np.random.default_rng(3).standard_normal((4, 3)).astype(np.float32)
    b0 = np.random.default_rng(4).standard_normal((3, 2)).astype(np.float32)
    results = []
    for lib in (ds, torch):
        fn = _amp_matmul(lib, None if cast is None else getattr(lib, cast))
        a = lib.tensor(a0, requires_grad=True)
        b = lib.tensor(b0, requires_grad=True)
        with lib.autocast("cpu", dtype=lib.float16):
            y = fn.apply(a, b)
        y.float().sum().backward()
        results.append((y, a.grad, b.grad))
    for d_t, t_t in zip(*results, strict=True):
        close(d_t, t_t, rtol=2e-3, atol=2e-3)  # float16 products when not cast
    assert results[0][0].dtype == (ds.float16 if cast is None else ds.float32)
    with pytest.warns(FutureWarning, match="custom_fwd"):
        ds.cuda.amp.custom_fwd(lambda ctx, x: x)


def _sin_cos_argmax(lib):
    class SinCos(lib.autograd.Function):  # three outputs, one of them an integer
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.sin(), x.cos(), x.argmax()

        @staticmethod
        def backward(ctx, grad_sin, grad_cos, grad_index):
            (x,) = ctx.saved_tensors
            return grad_sin * x.cos() - grad_cos * x.sin()

    return SinCos


@pytest.mark.parametrize("use", ["both", "sin only", "cos only"])
def test_custom_function_with_several_outputs_matches_torch(use):
    a = np.array([[0.5, 1.0], [2.0, -1.0]], np.float32)
    w = np.array([[1.0, -2.0], [0.5, 3.0]], np.float32)
    results = []
    for lib in (ds, torch):
        x = lib.tensor(a, requires_grad=True)
        s, c, i = _sin_cos_argmax(lib).apply(x)
        assert not i.requires_grad and i.item() == 2
        loss = {"both": (s * lib.tensor(w)).sum() + (c * c).sum(),
                "sin only": (s * lib.tensor(w)).sum(), "cos only": c.sum()}[use]  # fmt: skip
        loss.backward()  # an unused output's gradient is zeros, as in PyTorch
        results.append((s, c, x.grad))
    for d_t, t_t in zip(*results, strict=True):
        close(d_t, t_t, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# more top-level functions (compositions of descent's ops)

_R = np.random.default_rng(7)
_A = _R.standard_normal((2, 3)).astype(np.float32)
_B = _R.standard_normal((2, 3)).astype(np.float32)
_C = (np.abs(_R.standard_normal((2, 3))) + 0.5).astype(np.float32)
_BATCH = (_R.standard_normal((2, 3, 4)).astype(np.float32),
          _R.standard_normal((2, 4, 5)).astype(np.float32),
          _R.standard_normal((2, 3, 5)).astype(np.float32))  # fmt: skip

_FUNCTIONS = {
    "clamp_min": lambda lib, a, b, c: lib.clamp_min(a, 0.1),
    "clamp_max": lambda lib, a, b, c: lib.clamp_max(a, 0.1),
    "reciprocal": lambda lib, a, b, c: lib.reciprocal(c),
    "ravel": lambda lib, a, b, c: lib.ravel(a.t()),
    "logit": lambda lib, a, b, c: lib.logit(lib.sigmoid(a)),
    "logit eps": lambda lib, a, b, c: lib.logit(lib.sigmoid(a * 3), eps=0.1),
    "hstack": lambda lib, a, b, c: lib.hstack([a, b, c]),
    "hstack 1-d": lambda lib, a, b, c: lib.hstack((a[0], b[1])),
    "vstack": lambda lib, a, b, c: lib.vstack([a, b[0], c]),
    "row_stack": lambda lib, a, b, c: lib.row_stack((a, b)),
    "column_stack": lambda lib, a, b, c: lib.column_stack([a[0], b.t(), c[1]]),
    "atleast_2d": lambda lib, a, b, c: lib.atleast_2d(a[0, 0]) * lib.atleast_1d(b[0, 1]),
    "addcmul": lambda lib, a, b, c: lib.addcmul(a, b, c, value=0.5),
    "addcdiv": lambda lib, a, b, c: lib.addcdiv(a, b, c, value=-2),
    "broadcast_tensors": lambda lib, a, b, c: lib.stack(lib.broadcast_tensors(a, b[0], c[:1])),
    "take_along_dim": lambda lib, a, b, c: lib.take_along_dim(a, lib.argsort(b, dim=1), dim=1),
    "take_along_dim flat": lambda lib, a, b, c: lib.take_along_dim(a, lib.argsort(b.flatten())),
}


@pytest.mark.parametrize("name", list(_FUNCTIONS))
def test_composed_functions_values_and_gradients_match_torch(name):
    results = []
    for lib in (ds, torch):
        a, b, c = (lib.tensor(v, requires_grad=True) for v in (_A, _B, _C))
        y = _FUNCTIONS[name](lib, a, b, c)
        w = lib.tensor(np.arange(1.0, 1 + y.numel(), dtype=np.float32).reshape(tuple(y.shape)))
        (y * w).sum().backward()
        results.append((y, *(t.grad if t.grad is not None else t * 0 for t in (a, b, c))))
    for d_t, t_t in zip(*results, strict=True):
        close(d_t, t_t, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("beta, alpha", [(1, 1), (0.5, -2.0), (0, 1)])
def test_baddbmm_matches_torch(beta, alpha):
    results = []
    for lib in (ds, torch):
        b1, b2, inp = (lib.tensor(v, requires_grad=True) for v in _BATCH)
        y = lib.baddbmm(inp, b1, b2, beta=beta, alpha=alpha)
        y.sum().backward()
        results.append((y, b1.grad, b2.grad, inp.grad if beta else inp * 0))
    for d_t, t_t in zip(*results, strict=True):
        close(d_t, t_t, rtol=1e-5, atol=1e-5)


def test_small_functions_and_constants_match_torch():
    for name in ("inf", "nan", "pi", "e"):
        assert str(getattr(ds, name)) == str(getattr(torch, name))
    assert ds.broadcast_shapes((2, 1), (3,), 1) == tuple(torch.broadcast_shapes((2, 1), (3,), 1))
    for lib in (ds, torch):
        with pytest.raises(RuntimeError):
            lib.broadcast_shapes((2,), (3,))
    for args in ((3, 3), (4, 5, 1), (5, 4, -1)):
        close(ds.triu_indices(*args), torch.triu_indices(*args))
        close(ds.tril_indices(*args), torch.tril_indices(*args))
    for fn in ("relu_", "sigmoid_", "tanh_"):
        x, tx = pair(_A.copy())
        assert getattr(ds, fn)(x) is x and getattr(torch, fn)(tx) is tx
        close(x, tx)


_M = _R.standard_normal((3, 4)).astype(np.float32)
_FUNCTIONS_2 = {
    "mv": lambda lib, a, b, m: lib.mv(m, b[0].repeat(2)[:4]),
    "inner": lambda lib, a, b, m: lib.inner(a, b),
    "inner 1-d": lambda lib, a, b, m: lib.inner(a[0], b[1]),
    "tensordot 1": lambda lib, a, b, m: lib.tensordot(a, m, 1),
    "tensordot pairs": lambda lib, a, b, m: lib.tensordot(a, b, dims=([0], [0])),
    "tensordot 2": lambda lib, a, b, m: lib.tensordot(a, b, 2),
    "ger": lambda lib, a, b, m: lib.ger(a[0], b[1]),
    "kron 2-d": lambda lib, a, b, m: lib.kron(a, b),
    "kron mixed": lambda lib, a, b, m: lib.kron(a[0], m),
    "dist": lambda lib, a, b, m: lib.dist(a, b),
    "dist p1": lambda lib, a, b, m: lib.dist(a, b, p=1),
    "diff": lambda lib, a, b, m: lib.diff(m, dim=1),
    "diff n=2 dim0": lambda lib, a, b, m: lib.diff(m, n=2, dim=0),
    "diff prepend": lambda lib, a, b, m: lib.diff(a, prepend=b[:, :1], append=b),
    "deg2rad": lambda lib, a, b, m: lib.deg2rad(a),
    "rad2deg": lambda lib, a, b, m: lib.rad2deg(a),
}


@pytest.mark.parametrize("name", list(_FUNCTIONS_2))
def test_more_composed_functions_values_and_gradients_match_torch(name):
    results = []
    for lib in (ds, torch):
        a, b, m = (lib.tensor(v, requires_grad=True) for v in (_A, _B, _M))
        y = _FUNCTIONS_2[name](lib, a, b, m)
        w = lib.tensor(np.arange(1.0, 1 + y.numel(), dtype=np.float32).reshape(tuple(y.shape)))
        (y * w).sum().backward()
        results.append((y, *(t.grad if t.grad is not None else t * 0 for t in (a, b, m))))
    for d_t, t_t in zip(*results, strict=True):
        close(d_t, t_t, rtol=1e-5, atol=1e-5)


def test_searchsorted_bucketize_isin_match_torch():
    seq = np.array([[1.0, 3.0, 5.0, 7.0], [2.0, 4.0, 6.0, 8.0]], np.float32)
    vals = np.array([[3.0, 6.0, 9.0], [1.0, 4.0, 8.0]], np.float32)
    s, ts = pair(seq)
    v, tv = pair(vals)
    for right in (False, True):
        close(ds.searchsorted(s, v, right=right), torch.searchsorted(ts, tv, right=right))
        close(ds.searchsorted(s[0], v), torch.searchsorted(ts[0], tv))
        close(ds.bucketize(v, s[0], right=right), torch.bucketize(tv, ts[0], right=right))
    close(ds.searchsorted(s[0], v, out_int32=True), torch.searchsorted(ts[0], tv, out_int32=True))
    i, ti = pair(np.array([[1, 2], [3, 4]]))
    close(ds.isin(i, ds.tensor([2, 3])), torch.isin(ti, torch.tensor([2, 3])))
    close(
        ds.isin(i, ds.tensor([2, 3]), invert=True),
        torch.isin(ti, torch.tensor([2, 3]), invert=True),
    )


@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_with_nan_in_the_sequence_follows_torch(right):
    # NumPy sorts nan last and answers accordingly; PyTorch's bisection moves right at every
    # comparison with a nan ([1, 2, nan] and 5.0: torch 3, NumPy 2). Random sequences with
    # trailing and misplaced nans, nan values, 1-d and 2-d, against torch.
    rng = np.random.default_rng(0)
    for _ in range(150):
        n = int(rng.integers(1, 9))
        seq = np.sort(rng.integers(0, 5, n).astype(np.float32))
        seq[n - int(rng.integers(0, n + 1)) :] = np.nan
        if rng.random() < 0.3:
            seq[rng.integers(0, n)] = np.nan
        vals = rng.integers(-1, 6, 5).astype(np.float32)
        vals[rng.integers(0, 5)] = np.nan
        for s, v in ((seq, vals), (np.stack([seq, seq[::-1].copy()]), np.stack([vals, vals]))):
            got = ds.searchsorted(ds.tensor(s), ds.tensor(v), right=right)
            want = torch.searchsorted(torch.tensor(s), torch.tensor(v), right=right)
            assert got.tolist() == want.tolist(), (s, v)
    assert ds.searchsorted(ds.tensor([1.0, 2.0, float("nan")]), ds.tensor([5.0])).tolist() == [3]
