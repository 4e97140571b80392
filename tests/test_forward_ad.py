"""descent.autograd.forward_ad against torch.autograd.forward_ad (float32) and against central
finite differences (float64): tangents through a table of ops and nn modules, several duals,
unused duals, leaving the level, errors, and reverse mode left unchanged."""

from __future__ import annotations

import descent.autograd.forward_ad as fwAD
import numpy as np
import pytest
import torch
import torch.autograd.forward_ad as tfw
import torch.nn.functional as TF

import descent as ds
import descent.nn.functional as DF

# (name, f(lib, F, *xs), input shapes, domain): lib is descent or torch, F its nn.functional.
# "pos": inputs in (0.5, 2); "any": standard normal.
OPS = [
    ("sin", lambda lib, F, x: x.sin(), [(3, 4)], "any"),
    ("exp", lambda lib, F, x: lib.exp(x), [(3, 4)], "any"),
    ("log", lambda lib, F, x: lib.log(x), [(5,)], "pos"),
    ("sqrt", lambda lib, F, x: x.sqrt(), [(5,)], "pos"),
    ("tanh", lambda lib, F, x: lib.tanh(x), [(2, 3)], "any"),
    ("sigmoid", lambda lib, F, x: lib.sigmoid(x), [(2, 3)], "any"),
    ("pow", lambda lib, F, x: x**3 + x**0.5, [(4,)], "pos"),
    ("mul_div", lambda lib, F, x, y: x * y / (y + 3.0), [(3, 4), (4,)], "pos"),
    ("matmul", lambda lib, F, a, b: a @ b, [(2, 3, 4), (4, 5)], "any"),
    ("sum_mean", lambda lib, F, x: x.sum(1) + x.mean(0).sum(), [(3, 4)], "any"),
    ("softmax", lambda lib, F, x: lib.softmax(x, -1), [(3, 5)], "any"),
    ("log_softmax", lambda lib, F, x: F.log_softmax(x, dim=0), [(3, 5)], "any"),
    ("logsumexp", lambda lib, F, x: lib.logsumexp(x, 1), [(3, 5)], "any"),
    ("gelu", lambda lib, F, x: F.gelu(x), [(3, 5)], "any"),
    ("gelu_tanh", lambda lib, F, x: F.gelu(x, approximate="tanh"), [(3, 5)], "any"),
    ("silu", lambda lib, F, x: F.silu(x), [(6,)], "any"),
    (
        "layer_norm",
        lambda lib, F, x, w, b: F.layer_norm(x, (5,), w, b),
        [(3, 5), (5,), (5,)],
        "any",
    ),
    ("linear", lambda lib, F, x, w, b: F.linear(x, w, b), [(2, 4), (3, 4), (3,)], "any"),
    ("reshape_transpose", lambda lib, F, x: x.reshape(4, 3).t() * 2, [(3, 4)], "any"),
    ("index", lambda lib, F, x: x[1:, ::2] * x[0, 0], [(3, 4)], "any"),
    ("cat_stack", lambda lib, F, x, y: lib.cat([x, lib.stack([y, y])], 0), [(2, 3), (3,)], "any"),
    ("amax", lambda lib, F, x: x.amax(1), [(3, 4)], "any"),
    ("cumsum", lambda lib, F, x: x.cumsum(0), [(5,)], "any"),
    ("where", lambda lib, F, x, y: lib.where(x > 0, x * y, y.exp()), [(3, 4), (3, 4)], "any"),
    ("abs_clamp", lambda lib, F, x: x.abs() + x.clamp(-0.5, 0.5), [(7,)], "any"),
    ("var_std", lambda lib, F, x: x.var(0) + x.std(1).sum(), [(3, 4)], "any"),
    ("norm", lambda lib, F, x: lib.linalg.vector_norm(x), [(6,)], "any"),
    ("mse", lambda lib, F, x, y: F.mse_loss(x, y), [(3, 4), (3, 4)], "any"),
    ("cross_entropy", lambda lib, F, x: F.cross_entropy(x, lib.tensor([0, 2, 1])), [(3, 4)], "any"),
    ("einsum", lambda lib, F, a, b: lib.einsum("ij,jk->ik", a, b), [(2, 3), (3, 2)], "any"),
    ("conv2d", lambda lib, F, x, w: F.conv2d(x, w, padding=1), [(1, 2, 4, 4), (3, 2, 3, 3)], "any"),
    ("det_inv", lambda lib, F, a: lib.linalg.det(a) * lib.linalg.inv(a), [(3, 3)], "spd"),
    ("scalar_0d", lambda lib, F, x: (x * x).exp(), [()], "any"),
]


def _inputs(shapes, domain, dtype, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for s in shapes:
        if domain == "pos":
            a = rng.uniform(0.5, 2.0, s)
        elif domain == "spd":
            m = rng.standard_normal(s)
            a = m @ m.T + 3 * np.eye(s[0])
        else:
            a = rng.standard_normal(s)
            a = np.where(np.abs(a) < 0.05, 0.3, a)  # away from kinks (abs, clamp, relu)
        out.append(a.astype(dtype))
    return out


def _descent_jvp(f, primals, tangents):
    with fwAD.dual_level():
        xs = [fwAD.make_dual(ds.tensor(p), ds.tensor(t)) for p, t in zip(primals, tangents)]
        y = f(ds, DF, *xs)
        primal, tangent = fwAD.unpack_dual(y)
    return primal.numpy(), tangent.numpy()


@pytest.mark.parametrize("name,f,shapes,domain", OPS, ids=[o[0] for o in OPS])
def test_tangent_matches_torch_float32(name, f, shapes, domain):
    primals = _inputs(shapes, domain, np.float32)
    tangents = _inputs(shapes, "any", np.float32, seed=1)
    p, t = _descent_jvp(f, primals, tangents)
    with tfw.dual_level():
        xs = [tfw.make_dual(torch.tensor(a), torch.tensor(v)) for a, v in zip(primals, tangents)]
        tp, tt = tfw.unpack_dual(f(torch, TF, *xs))
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert t.shape == tuple(tt.shape) and t.dtype == np.float32
    np.testing.assert_allclose(t, tt.detach().numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name,f,shapes,domain", OPS, ids=[o[0] for o in OPS])
def test_tangent_matches_finite_differences_float64(name, f, shapes, domain):
    primals = _inputs(shapes, domain, np.float64)
    tangents = _inputs(shapes, "any", np.float64, seed=1)
    _, t = _descent_jvp(f, primals, tangents)
    eps = 1e-6

    def at(s):
        xs = [ds.tensor(p + s * v) for p, v in zip(primals, tangents)]
        return f(ds, DF, *xs).numpy()

    fd = (at(eps) - at(-eps)) / (2 * eps)
    np.testing.assert_allclose(t, fd, rtol=1e-5, atol=1e-6)


def _mlp(nn, norm: bool):
    mid = nn.LayerNorm(6) if norm else nn.Tanh()
    return nn.Sequential(nn.Linear(4, 6), nn.GELU(), mid, nn.Linear(6, 3))


def _tangent_objective(lib, fw, model, x, v):
    """sum(tangent * [0, 1, 2]) of model at x in direction v, and the tangent."""
    with fw.dual_level():
        tangent = fw.unpack_dual(model(fw.make_dual(lib.tensor(x), lib.tensor(v)))).tangent
        return (tangent * lib.arange(3.0, dtype=tangent.dtype)).sum(), tangent


@pytest.mark.parametrize("norm", [False, True], ids=["gelu_tanh", "gelu_layernorm"])
def test_nn_modules_tangent_and_reverse_over_forward(norm):
    """Tangents through Linear, GELU, LayerNorm match torch's; parameters that require grad
    make the tangent differentiable (reverse over forward), as in torch. Parameter gradients
    are compared with torch's where torch is right (without LayerNorm: torch 2.13's
    reverse-over-forward through LayerNorm is off by O(1) against finite differences) and with
    finite differences in float64 in both cases."""
    ds.manual_seed(0)
    dm = _mlp(ds.nn, norm)
    tm = _mlp(torch.nn, norm)
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in dm.state_dict().items()})
    x, v = np.random.default_rng(0).standard_normal((2, 2, 4)).astype(np.float32)
    obj, tangent = _tangent_objective(ds, fwAD, dm, x, v)
    tobj, ttangent = _tangent_objective(torch, tfw, tm, x, v)
    assert tangent.requires_grad and ttangent.requires_grad
    np.testing.assert_allclose(tangent.detach().numpy(), ttangent.detach().numpy(), atol=1e-5)
    obj.backward()
    tobj.backward()
    if not norm:
        dg = dict(dm.named_parameters())
        for name, p in tm.named_parameters():
            if name == "3.bias":  # it does not reach the tangent: no gradient in both
                assert dg[name].grad is None and p.grad is None
                continue
            np.testing.assert_allclose(dg[name].grad.numpy(), p.grad.numpy(), atol=1e-5,
                                       rtol=1e-4)  # fmt: skip
    # float64: d objective / d first weight against central differences
    dm = dm.to(ds.float64)
    x, v = x.astype(np.float64), v.astype(np.float64)
    w = dm[0].weight
    w.grad = None
    _tangent_objective(ds, fwAD, dm, x, v)[0].backward()
    fd = np.zeros(w.shape)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            vals = []
            for step in (1e-6, -1e-6):
                w._data[i, j] += step
                vals.append(_tangent_objective(ds, fwAD, dm, x, v)[0].item())
                w._data[i, j] -= step
            fd[i, j] = (vals[0] - vals[1]) / 2e-6
    np.testing.assert_allclose(w.grad.numpy(), fd, atol=1e-6, rtol=1e-5)


def test_several_duals_and_an_unused_one():
    a, b, c = (ds.randn(3, dtype=ds.float64) for _ in range(3))
    ta, tb, tc = (ds.randn(3, dtype=ds.float64) for _ in range(3))
    with fwAD.dual_level():
        xa, xb, xc = fwAD.make_dual(a, ta), fwAD.make_dual(b, tb), fwAD.make_dual(c, tc)
        y = xa * xb.exp()
        t = fwAD.unpack_dual(y).tangent.numpy()
        want = ta.numpy() * np.exp(b.numpy()) + a.numpy() * np.exp(b.numpy()) * tb.numpy()
        np.testing.assert_allclose(t, want, rtol=1e-12)
        # xc does not reach y; a tensor that no dual reaches has tangent None (torch's)
        assert fwAD.unpack_dual(xc.detach() * 2).tangent is None
        assert fwAD.unpack_dual(a).tangent is None
        assert fwAD.unpack_dual(xc).tangent is tc  # a dual's own tangent
        # unpacking twice, then reverse mode through y, still works (the graph is kept)
        np.testing.assert_allclose(fwAD.unpack_dual(y).tangent.numpy(), want, rtol=1e-12)


def test_zero_derivative_gives_zeros_like_torch():
    with fwAD.dual_level():
        x = fwAD.make_dual(ds.tensor([0.5, -2.0]), ds.tensor([1.0, 1.0]))
        t = fwAD.unpack_dual(x * 0).tangent
        assert t is not None and t.numpy().tolist() == [0.0, 0.0]
        assert fwAD.unpack_dual(x.argmax()).tangent is None  # integer output


@pytest.mark.parametrize("lib,fw", [(ds, fwAD), (torch, tfw)], ids=["descent", "torch"])
def test_empty_inf_nan_and_0d_like_torch(lib, fw):
    with fw.dual_level():
        x = fw.make_dual(lib.zeros(0), lib.zeros(0))
        assert fw.unpack_dual((x * 2).sum()).tangent.item() == 0.0
        assert tuple(fw.unpack_dual(x.exp()).tangent.shape) == (0,)
        x = fw.make_dual(lib.tensor([float("inf"), 1.0, float("nan")]), lib.tensor([1.0, 0.0, 1.0]))
        np.testing.assert_array_equal(fw.unpack_dual(x.exp()).tangent.numpy(), [np.inf, 0, np.nan])
        np.testing.assert_array_equal(fw.unpack_dual(x * 0).tangent.numpy(), [0.0, 0.0, 0.0])
        y = fw.make_dual(lib.tensor(2.0), lib.tensor(1.0))
        assert fw.unpack_dual(y**3).tangent.item() == 12.0


def test_leaving_the_level_drops_duals():
    with fwAD.dual_level() as level:
        assert level == 0
        x = fwAD.make_dual(ds.tensor([1.0, 2.0]), ds.tensor([1.0, 1.0]))
        y = x * 3
        assert fwAD.unpack_dual(y).tangent is not None
    assert fwAD.unpack_dual(y).tangent is None
    assert fwAD.unpack_dual(x).tangent is None
    assert fwAD.enter_dual_level() == 0
    fwAD.exit_dual_level()


def test_unpacked_primal_is_plain_and_named_tuple():
    with fwAD.dual_level():
        x = fwAD.make_dual(ds.tensor([1.0, 2.0]), ds.tensor([3.0, 4.0]))
        res = fwAD.unpack_dual(x * x)
        assert isinstance(res, fwAD.UnpackedDualTensor)
        assert res.primal.numpy().tolist() == [1.0, 4.0]
        assert not res.primal.requires_grad
        assert res.tangent.numpy().tolist() == [6.0, 16.0]
        assert fwAD.unpack_dual(res.primal).tangent is None  # the primal carries no tangent


def test_reverse_mode_through_a_dual_reaches_the_primal_and_in_place_ops():
    p = ds.tensor([1.0, 2.0], requires_grad=True)
    with fwAD.dual_level():
        x = fwAD.make_dual(p, ds.tensor([1.0, 0.0]))
        y = (x**2).sum()
        assert fwAD.unpack_dual(y).tangent.item() == 2.0
        y.backward()
    assert p.grad.numpy().tolist() == [2.0, 4.0]
    q = ds.tensor([1.0, 2.0])
    with fwAD.dual_level():
        x = fwAD.make_dual(q, ds.tensor([1.0, 1.0]))
        x.mul_(2)  # in place on the dual: recorded, the tangent follows
        assert fwAD.unpack_dual(x).tangent.numpy().tolist() == [2.0, 2.0]
    # (torch's dual is a view, so there q changes too; descent's in-place op on a tensor with a
    # graph writes a new array: docs/forward_ad.md)


def test_tangent_dtype_follows_primal_and_errors_match_torch():
    with fwAD.dual_level():
        x = fwAD.make_dual(ds.tensor([1.0]), ds.tensor([1.0], dtype=ds.float64))
        assert fwAD.unpack_dual(x * 2).tangent.dtype == ds.float32
        with pytest.raises(RuntimeError, match="different size"):
            fwAD.make_dual(ds.zeros(3), ds.zeros(2))
        with pytest.raises(ValueError, match="floating point"):
            fwAD.make_dual(ds.zeros(3, dtype=ds.int64), ds.zeros(3))
        with pytest.raises(ValueError, match="floating point"):
            fwAD.make_dual(ds.zeros(3), ds.zeros(3, dtype=ds.int64))
        with pytest.raises(RuntimeError, match="already has a forward gradient"):
            fwAD.make_dual(x * 2, ds.zeros(1))
        with pytest.raises(RuntimeError, match="Nested forward mode AD"):
            fwAD.enter_dual_level()
    with pytest.raises(RuntimeError, match="no level exists"):
        fwAD.make_dual(ds.zeros(1), ds.zeros(1))
    with pytest.raises(RuntimeError, match="positive number"):
        fwAD.exit_dual_level()


def test_fused_backward_raises_a_clear_error():
    class Fused(ds.autograd.Function):
        differentiable_backward = False

        def forward(self, x):
            return x * 2

        def backward(self, gy, ops):
            return gy * 2

    with fwAD.dual_level():
        y = Fused.apply(fwAD.make_dual(ds.tensor([1.0]), ds.tensor([1.0])))
        with pytest.raises(RuntimeError, match="unpack_dual.*FusedBackward.*differentiable"):
            fwAD.unpack_dual(y)


def test_descent_autograd_attribute_and_func_jvp_unchanged():
    import descent.autograd.forward_ad as again

    assert again is ds.autograd.forward_ad is fwAD
    x, v = ds.tensor([0.3, 0.7]), ds.tensor([1.0, 2.0])
    out, jv = ds.func.jvp(lambda a: a.sin(), (x,), (v,))
    np.testing.assert_allclose(jv.numpy(), np.cos([0.3, 0.7]) * [1.0, 2.0], rtol=1e-6)


def test_reverse_mode_outside_a_level_is_unchanged():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    assert fwAD.unpack_dual(y).tangent is None
    y.backward()
    assert x.grad.numpy().tolist() == [2.0, 4.0]
    z = ds.tensor([1.0]) * 2
    assert not z.requires_grad and z._node is None


# ---------------------------------------------------------------------------------------------
# Every op of the op table that supports double backward (tests/specs): J v by forward_ad
# against central differences in float64, one random tangent per differentiated input.

from specs import all_specs  # noqa: E402  (tests/ is on sys.path: conftest.py)

_SECOND_ORDER = [s for s in all_specs() if s.second_order]


@pytest.mark.parametrize("spec", _SECOND_ORDER, ids=[s.name for s in _SECOND_ORDER])
def test_every_second_order_op_of_the_op_table(spec):
    arrays = spec.make_inputs(seed=0, dtype=np.float64)
    rng = np.random.default_rng(1)
    diff = spec.diff_inputs()
    tangents = {i: rng.standard_normal(arrays[i].shape) for i in diff}

    def inputs(step=0.0, dual=False):
        return [(fwAD.make_dual(ds.tensor(a), ds.tensor(tangents[i])) if dual
                 else ds.tensor(a + step * tangents[i])) if i in tangents else ds.tensor(a)
                for i, a in enumerate(arrays)]  # fmt: skip

    with fwAD.dual_level():
        y = spec.fn(*inputs(dual=True))
        if "no_derivative" in spec.tags:  # heaviside: torch has no derivative either
            with pytest.raises(RuntimeError, match="not implemented"):
                fwAD.unpack_dual(y)
            return
        tangent = fwAD.unpack_dual(y).tangent
    got = np.zeros(tuple(y.shape)) if tangent is None else tangent.numpy()
    if spec.eps > 1e-4:
        # An op that rounds (a cast to float16): its finite differences need a large step and
        # are inexact, so check <u, J v> = <J^T u, v> against reverse mode instead.
        xs = [ds.tensor(a, requires_grad=i in tangents) for i, a in enumerate(arrays)]
        out = spec.fn(*xs)
        for k in range(3):
            u = np.random.default_rng(10 + k).standard_normal(tuple(out.shape))
            gs = ds.autograd.grad(out, [xs[i] for i in diff], ds.tensor(u), retain_graph=True,
                                  allow_unused=True)  # fmt: skip
            rev = sum(float((g.numpy() * tangents[i]).sum()) for g, i in zip(gs, diff)
                      if g is not None)  # fmt: skip
            # (rtol: the backward rounds its gradient to float16 as well)
            np.testing.assert_allclose((u * got).sum(), rev, rtol=1e-3, atol=1e-6)
        return
    fd = (spec.fn(*inputs(spec.eps)).numpy() - spec.fn(*inputs(-spec.eps)).numpy()) / (2 * spec.eps)
    np.testing.assert_allclose(got, fd, atol=spec.grad_atol, rtol=spec.grad_rtol)


# Regression: the double-backward jvp of descent.func, descent.autograd.functional and
# descent.jvp seeded u = 0, and backward formulas that branch on a zero gradient (xlogy's,
# eigh's unused eigenvectors) lost J v; logit's backward gave nan for d/d(gy) everywhere.
_BRANCHING = [
    ("logit", lambda x: ds.logit(x), (4,), (0.1, 0.9)),
    ("xlogy", lambda x: ds.xlogy(x, x + 1.5), (4,), (0.5, 2.0)),
    ("eigh_vectors", lambda a: ds.linalg.eigh(a + a.mT).eigenvectors ** 2, (3, 3), (-1.0, 1.0)),
    ("svd_vectors", lambda a: ds.linalg.svd(a)[0] ** 2, (3, 3), (-1.0, 1.0)),
]


@pytest.mark.parametrize("name,f,shape,dom", _BRANCHING, ids=[b[0] for b in _BRANCHING])
def test_every_jvp_api_on_ops_that_branch_on_a_zero_gradient(name, f, shape, dom):
    rng = np.random.default_rng(3)
    x, v = rng.uniform(*dom, shape), rng.standard_normal(shape)
    fd = (f(ds.tensor(x + 1e-6 * v)).numpy() - f(ds.tensor(x - 1e-6 * v)).numpy()) / 2e-6
    X, V = ds.tensor(x), ds.tensor(v)
    results = {
        "func.jvp": ds.func.jvp(f, (X,), (V,))[1],
        "func.linearize": ds.func.linearize(f, X)[1](V),
        "autograd.functional.jvp": ds.autograd.functional.jvp(f, X, V)[1],
        "descent.jvp": ds.jvp(f, (X,), (V,))[1],
    }
    with fwAD.dual_level():
        results["forward_ad"] = fwAD.unpack_dual(f(fwAD.make_dual(X, V))).tangent
    for api, jv in results.items():
        np.testing.assert_allclose(jv.numpy(), fd, atol=1e-6, rtol=1e-5, err_msg=api)


def test_hvp_of_logit_is_finite():
    x = ds.tensor([0.2, 0.7], dtype=ds.float64)
    v = ds.tensor([1.0, -1.0], dtype=ds.float64)
    _, hv = ds.autograd.functional.hvp(lambda a: ds.logit(a).sum(), x, v)
    want = (2 * x.numpy() - 1) / (x.numpy() * (1 - x.numpy())) ** 2 * v.numpy()
    np.testing.assert_allclose(hv.numpy(), want, rtol=1e-10)


@pytest.mark.parametrize("lib,fw", [(ds, fwAD), (torch, tfw)], ids=["descent", "torch"])
def test_reverse_over_forward_wrt_primal_and_tangent(lib, fw):
    """d/dx and d/dv of sum(J(x) v) for f = x^3 * sin(x): the same as torch's."""
    x = lib.tensor([0.3, -1.2, 2.0], dtype=lib.float64, requires_grad=True)
    v = lib.tensor([1.0, 0.5, -2.0], dtype=lib.float64, requires_grad=True)
    with fw.dual_level():
        y = fw.make_dual(x, v)
        tangent = fw.unpack_dual(y**3 * y.sin()).tangent
        assert tangent.requires_grad
        tangent.sum().backward()
    xs, vs = np.array([0.3, -1.2, 2.0]), np.array([1.0, 0.5, -2.0])
    d1 = 3 * xs**2 * np.sin(xs) + xs**3 * np.cos(xs)
    d2 = 6 * xs * np.sin(xs) + 6 * xs**2 * np.cos(xs) - xs**3 * np.sin(xs)
    np.testing.assert_allclose(tangent.detach().numpy(), d1 * vs, rtol=1e-12)
    np.testing.assert_allclose(v.grad.numpy(), d1, rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), d2 * vs, rtol=1e-12)


@pytest.mark.parametrize("lib,fw", [(ds, fwAD), (torch, tfw)], ids=["descent", "torch"])
def test_forward_over_reverse_hessian_vector_product(lib, fw):
    """The tangent of autograd.grad(f(x), x, create_graph=True) is H v."""
    p = lib.tensor([0.3, -1.2, 2.0], dtype=lib.float64, requires_grad=True)
    v = lib.tensor([1.0, 0.5, -2.0], dtype=lib.float64)
    with fw.dual_level():
        x = fw.make_dual(p, v)
        (g,) = lib.autograd.grad((x**3 * x.sin()).sum(), x, create_graph=True)
        hv = fw.unpack_dual(g).tangent
    xs = np.array([0.3, -1.2, 2.0])
    d2 = 6 * xs * np.sin(xs) + 6 * xs**2 * np.cos(xs) - xs**3 * np.sin(xs)
    np.testing.assert_allclose(hv.detach().numpy(), d2 * v.numpy(), rtol=1e-12)
