"""Regression tests for what tests/opinfo_higher_harness.py found (forward-mode AD and double
backward on PyTorch's OpInfo samples), and for custom Functions' jvp staticmethod in forward
mode; each differential against torch 2.13 (float64), new derivatives also against finite
differences."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import descent.autograd.forward_ad as dfwad  # noqa: E402
import torch.autograd.forward_ad as tfwad  # noqa: E402

import descent  # noqa: E402


def _d(t, rg=False):
    return descent.tensor(t.detach().numpy().copy(), requires_grad=rg)


def _close(a, b, tol=1e-9):
    if a is None or b is None:
        assert (a is None or not a.detach().numpy().any()) and (
            b is None or not np.any(b.detach().numpy())
        ), (a, b)
        return
    np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=tol, atol=tol)


# ---------------------------------------------------------------------------------------------
# scatter_reduce / index_reduce 'prod' with zero factors: the second derivative was missing
# (the co-products were constants under create_graph; torch's OpInfo gradgrad, samples with a
# zero in a slot: descent gave None where torch's d2/dx2 is nonzero).

PROD_CASES = [
    # (x, index, src): slots with 0, 1, 2 and 3 zero factors
    ([1.5, 0.0, 2.0, -1.0], [0, 1, 1, 2, 3, 3], [2.0, 0.5, 3.0, 0.0, 0.0, 4.0]),
    ([0.0, 1.0, 2.0], [0, 0, 1, 2], [3.0, 0.0, 0.0, 0.0]),
    ([2.0, 3.0], [0, 0, 0, 1], [0.0, 2.0, -1.5, 0.0]),
    ([0.0, 0.0], [0, 1, 1], [0.0, 0.0, 2.0]),
]


def _gradgrad(lib, fn, xs, seed=0):
    """[d<g, v>/d(inputs), d<g, v>/dw] for g = d<fn(*xs), w>/d(inputs) (create_graph)."""
    out = fn(*xs)
    gen = np.random.default_rng(seed)
    w = lib.tensor(gen.standard_normal(tuple(out.shape)), requires_grad=True)
    gs = lib.autograd.grad([out], list(xs), [w], create_graph=True, allow_unused=True)
    vs = [lib.tensor(gen.standard_normal(tuple(g.shape))) for g in gs]
    pairs = [(g, v) for g, v in zip(gs, vs) if g is not None and g.requires_grad]
    return lib.autograd.grad([g for g, _ in pairs], list(xs) + [w], [v for _, v in pairs],
                             allow_unused=True)  # fmt: skip


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("case", range(len(PROD_CASES)))
def test_scatter_reduce_prod_zeros_gradgrad(case, include_self):
    x, idx, src = PROD_CASES[case]
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ts = torch.tensor(src, dtype=torch.float64, requires_grad=True)
    ti = torch.tensor(idx)
    tgg = _gradgrad(
        torch,
        lambda a, b: torch.scatter_reduce(a, 0, ti, b, "prod", include_self=include_self),
        (tx, ts),
    )
    dx, ds, di = _d(tx, True), _d(ts, True), descent.tensor(idx)
    dgg = _gradgrad(descent, lambda a, b: descent.scatter_reduce(a, 0, di, b, "prod",
                                                                 include_self=include_self),
                    (dx, ds))  # fmt: skip
    assert any(g is not None and g.detach().numpy().any() for g in tgg[:2])  # not vacuous
    for a, b in zip(tgg, dgg):
        _close(a, b)


def test_scatter_reduce_prod_zeros_gradgradcheck():
    """Finite differences of the first derivative (the new one), float64."""
    x, idx, src = PROD_CASES[0]
    di = descent.tensor(idx)

    def f(a, b):
        return descent.scatter_reduce(a, 0, di, b, "prod")

    a = descent.tensor(x, dtype=descent.float64, requires_grad=True)
    b = descent.tensor(src, dtype=descent.float64, requires_grad=True)
    assert descent.autograd.gradgradcheck(f, (a, b))


def test_index_reduce_prod_zeros_gradgrad():
    tx = torch.tensor([[1.0, 0.0], [2.0, 3.0], [0.5, -1.0]], dtype=torch.float64,
                      requires_grad=True)  # fmt: skip
    ts = torch.tensor([[0.0, 2.0], [1.5, 0.0], [3.0, 4.0], [0.0, 0.0]], dtype=torch.float64,
                      requires_grad=True)  # fmt: skip
    ti = torch.tensor([0, 0, 2, 1])
    tgg = _gradgrad(torch, lambda a, b: a.index_reduce(0, ti, b, "prod"), (tx, ts))
    dx, ds, di = _d(tx, True), _d(ts, True), descent.tensor([0, 0, 2, 1])
    dgg = _gradgrad(descent, lambda a, b: a.index_reduce(0, di, b, "prod"), (dx, ds))
    for a, b in zip(tgg, dgg):
        _close(a, b)


def test_scatter_reduce_prod_first_order_unchanged():
    """The fast (array) backward with zeros still gives torch's first derivative."""
    for x, idx, src in PROD_CASES:
        tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        ts = torch.tensor(src, dtype=torch.float64, requires_grad=True)
        torch.scatter_reduce(tx, 0, torch.tensor(idx), ts, "prod").sum().backward()
        dx, ds = _d(tx, True), _d(ts, True)
        descent.scatter_reduce(dx, 0, descent.tensor(idx), ds, "prod").sum().backward()
        _close(tx.grad, dx.grad)
        _close(ts.grad, ds.grad)


# ---------------------------------------------------------------------------------------------
# A custom Function's jvp staticmethod is what forward mode uses (PyTorch's rule): duals,
# func.jvp, jacfwd. The Functions below have a jvp that differs from backward's derivative on
# purpose, so only a call of jvp gives torch's tangent.


def _scaled_fn(lib):
    """y = x * s (s a float); backward: gy * s; jvp: x_t * s + 100 * s (not the derivative)."""

    class Scaled(lib.autograd.Function):
        generate_vmap_rule = True  # (torch's jacfwd vmaps the jvp)

        @staticmethod
        def forward(x, s):
            return x * s

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.s = inputs[1]
            ctx.save_for_forward(inputs[0])

        @staticmethod
        def backward(ctx, gy):
            return gy * ctx.s, None

        @staticmethod
        def jvp(ctx, x_t, s_t):
            assert s_t is None  # a non-Tensor argument's tangent
            (x,) = ctx.saved_tensors  # save_for_forward's
            return x_t * ctx.s + 0 * x + 100 * ctx.s

    return Scaled


def _two_fn(lib):
    """(x * y, x + y) with jvp (x_t * y + x * y_t, 2 * (x_t + y_t)) (the second doubled)."""

    class Two(lib.autograd.Function):
        generate_vmap_rule = True  # (torch's jacfwd vmaps the jvp)

        @staticmethod
        def forward(x, y):
            return x * y, x + y

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(*inputs)
            ctx.save_for_forward(*inputs)

        @staticmethod
        def backward(ctx, g1, g2):
            x, y = ctx.saved_tensors
            return g1 * y + g2, g1 * x + g2

        @staticmethod
        def jvp(ctx, x_t, y_t):
            x, y = ctx.saved_tensors
            return x_t * y + x * y_t, 2 * (x_t + y_t)

    return Two


def _vals(seed, *shapes):
    gen = np.random.default_rng(seed)
    return [gen.standard_normal(s) for s in shapes]


def test_jvp_staticmethod_dual():
    x, v = _vals(0, (3,), (3,))
    outs = []
    for lib, fw in ((torch, tfwad), (descent, dfwad)):
        with fw.dual_level():
            d = fw.make_dual(lib.tensor(x), lib.tensor(v))
            y = _scaled_fn(lib).apply(d.sin(), 2.0).exp()
            outs.append(fw.unpack_dual(y).tangent)
    _close(*outs)
    assert np.abs(outs[0].numpy()).max() > 10  # jvp's +100 * s reached the tangent


def _func_jvp_two(lib, x, y, vx, vy=None):
    """func.jvp of Two: both tangents, or only x's (y a plain argument)."""
    fn = _two_fn(lib)
    t = lib.tensor
    if vy is None:
        return lib.func.jvp(lambda a: fn.apply(a, t(y)), (t(x),), (t(vx),))
    return lib.func.jvp(lambda a, b: fn.apply(a, b), (t(x), t(y)), (t(vx), t(vy)))


def test_jvp_staticmethod_func_jvp_two_inputs_two_outputs():
    x, y, vx, vy = _vals(1, (2, 3), (2, 3), (2, 3), (2, 3))
    (_, (ta, tb)), (_, (da, db)) = (_func_jvp_two(lib, x, y, vx, vy) for lib in (torch, descent))
    _close(ta, da)
    _close(tb, db)  # 2 (vx + vy): jvp's, not backward's vx + vy
    # one input's tangent only (the other Tensor argument gets zeros, as in PyTorch)
    (_, (ta, tb)), (_, (da, db)) = (_func_jvp_two(lib, x, y, vx) for lib in (torch, descent))
    _close(ta, da)
    _close(tb, db)


def test_jvp_staticmethod_jacfwd():
    """jacfwd of Two's second output: jvp's 2 I (backward's derivative would give I)."""
    x, y = _vals(2, (4,), (4,))
    jt = torch.func.jacfwd(lambda a: _two_fn(torch).apply(a, torch.tensor(y))[1])(torch.tensor(x))
    fn = _two_fn(descent)
    jd = descent.func.jacfwd(lambda a: fn.apply(a, descent.tensor(y))[1])(descent.tensor(x))
    _close(jt, jd)
    np.testing.assert_allclose(jd.numpy(), 2 * np.eye(4))


def test_jvp_staticmethod_reverse_over_forward():
    """The tangent carries a graph back to a primal that requires grad (jvp's ops recorded)."""
    x, y, vx, vy = _vals(3, (3,), (3,), (3,), (3,))
    grads = []
    for lib, fw in ((torch, tfwad), (descent, dfwad)):
        a = lib.tensor(x, requires_grad=True)
        with fw.dual_level():
            d = fw.make_dual(a, lib.tensor(vx))
            p, _ = _two_fn(lib).apply(d, lib.tensor(y))
            tan = fw.unpack_dual(p).tangent
        (g,) = lib.autograd.grad(tan.sum(), [a])
        grads.append(g)
    _close(*grads)


def test_jvp_staticmethod_double_backward_unchanged():
    """Outside forward mode the Function's backward is differentiated (jvp is not used)."""
    x, y = _vals(4, (3,), (3,))
    res = []
    for lib in (torch, descent):
        a, b = lib.tensor(x, requires_grad=True), lib.tensor(y, requires_grad=True)
        p, s = _two_fn(lib).apply(a, b)
        (ga,) = lib.autograd.grad((p * s).sum(), [a], create_graph=True)
        res.append(lib.autograd.grad(ga.sum(), [a, b]))
    for a, b in zip(*res):
        _close(a, b)


def _seen_fn(lib, materialize, seen):
    """x * y whose jvp records what it is given: saved tensors and y's tangent."""

    class Seen(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)  # not for forward: jvp's saved_tensors stay empty
            ctx.set_materialize_grads(materialize)
            return x * y

        @staticmethod
        def backward(ctx, g):
            x, y = ctx.saved_tensors
            return g * y, g * x

        @staticmethod
        def jvp(ctx, x_t, y_t):
            seen.append((len(ctx.saved_tensors), None if y_t is None else y_t.tolist()))
            return x_t * 2

    return Seen


@pytest.mark.parametrize("materialize", [True, False])
def test_jvp_staticmethod_ctx_as_pytorch(materialize):
    """Inside jvp: saved_tensors is save_for_forward's (empty here), and a Tensor argument
    without a tangent gets zeros, or None after set_materialize_grads(False)."""
    seen = {}
    for lib, fw in ((torch, tfwad), (descent, dfwad)):
        seen[lib] = []
        with fw.dual_level():
            d = fw.make_dual(lib.tensor([1.0, 2.0]), lib.tensor([1.0, 1.0]))
            y = _seen_fn(lib, materialize, seen[lib]).apply(d, lib.tensor([3.0, 4.0]))
            tan = fw.unpack_dual(y).tangent
        assert tan.tolist() == [2.0, 2.0]
    assert seen[torch] == seen[descent][:1]


def _once_fn(lib):
    """exp with a once_differentiable backward and a jvp: forward mode needs only jvp."""
    from_fn = lib.autograd.function.once_differentiable

    class OnceExp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            ctx.save_for_forward(y)
            return y

        @staticmethod
        @from_fn
        def backward(ctx, gy):
            (y,) = ctx.saved_tensors
            return gy * y

        @staticmethod
        def jvp(ctx, x_t):
            (y,) = ctx.saved_tensors
            return x_t * y

    return OnceExp


def test_jvp_staticmethod_with_once_differentiable_backward():
    """Forward mode through a Function whose backward cannot be differentiated: PyTorch calls
    jvp; descent did not before (it differentiated backward, which once_differentiable stops)."""
    x, v = _vals(5, (4,), (4,))
    tans = []
    for lib, fw in ((torch, tfwad), (descent, dfwad)):
        with fw.dual_level():
            d = fw.make_dual(lib.tensor(x), lib.tensor(v))
            y = _once_fn(lib).apply(d * 2).sum()
            tans.append(fw.unpack_dual(y).tangent)
    _close(*tans)
    np.testing.assert_allclose(tans[1].item(), float(np.sum(np.exp(2 * x) * 2 * v)), rtol=1e-12)


def test_once_differentiable_without_jvp_raises_in_forward_mode():
    """Without a jvp the tangent was silently 0 (the once_differentiable backward records
    nothing to differentiate); torch raises, and so does descent now."""

    def make(lib):
        class OnceExp(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                y = x.exp()
                ctx.save_for_backward(y)
                return y

            @staticmethod
            @lib.autograd.function.once_differentiable
            def backward(ctx, gy):
                (y,) = ctx.saved_tensors
                return gy * y

        return OnceExp

    x = np.array([0.5, 1.0])
    with tfwad.dual_level(), pytest.raises(NotImplementedError, match="jvp"):
        d = tfwad.make_dual(torch.tensor(x), torch.ones(2, dtype=torch.float64))
        tfwad.unpack_dual(make(torch).apply(d))
    fn = make(descent)
    with dfwad.dual_level(), pytest.raises(RuntimeError, match="jvp staticmethod"):
        d = dfwad.make_dual(descent.tensor(x), descent.ones(2, dtype=descent.float64))
        dfwad.unpack_dual(fn.apply(d))
    with pytest.raises(RuntimeError, match="jvp staticmethod"):
        descent.func.jvp(fn.apply, (descent.tensor(x),), (descent.tensor(x),))
    # reverse mode is unchanged
    a = descent.tensor(x, requires_grad=True)
    fn.apply(a).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.exp(x))
