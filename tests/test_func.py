"""descent.func against torch.func (the oracle): grad, grad_and_value, vjp, jvp, jacrev, jacfwd,
hessian, vmap and functional_call, on the same float64 inputs, including nesting, has_aux,
argnums tuples, pytrees and the errors PyTorch raises.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent
import descent.nn as dnn
from descent import func as dfunc

tfunc = torch.func
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
rng = np.random.default_rng(1)


def arr(*shape):
    return rng.standard_normal(shape)


def to_d(tree):
    return _map(tree, lambda a: descent.tensor(a))


def to_t(tree):
    return _map(tree, lambda a: torch.tensor(a))


def _map(tree, fn):
    if isinstance(tree, tuple):
        return tuple(_map(x, fn) for x in tree)
    if isinstance(tree, list):
        return [_map(x, fn) for x in tree]
    if isinstance(tree, dict):
        return {k: _map(v, fn) for k, v in tree.items()}
    return fn(tree) if isinstance(tree, np.ndarray) else tree


def same(got, want, atol=1e-9):
    """Same pytree structure (tuple/list/dict) and values."""
    if isinstance(want, torch.Tensor):
        assert isinstance(got, descent.Tensor), type(got)
        assert tuple(got.shape) == tuple(want.shape), (got.shape, want.shape)
        np.testing.assert_allclose(got.numpy(), want.detach().numpy(), atol=atol, rtol=1e-7)
        return
    if isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want)
        for k in want:
            same(got[k], want[k], atol)
        return
    if isinstance(want, (tuple, list)):
        assert type(got) is type(want), (type(got), type(want))
        assert len(got) == len(want)
        for g, w in zip(got, want):
            same(g, w, atol)
        return
    assert got == want


def check(transform, fn, args, **kw):
    """transform(fn)(*args) in both libraries; fn(m, *args) is written against a namespace."""
    got = getattr(dfunc, transform)(lambda *a: fn(descent, *a), **kw)(*to_d(args))
    want = getattr(tfunc, transform)(lambda *a: fn(torch, *a), **kw)(*to_t(args))
    same(got, want)
    return got


def scalar_fn(m, x):
    return (x.sin() * x).sum() + (x**3).mean()


def two_arg_fn(m, x, y):
    return (x.exp() * y.sum()).sum() + (y**2).sum() * x.sum()


def vec_fn(m, x):
    return (x.sin() * x.sum()).exp()


def mat_fn(m, x, w):
    return m.tanh(x @ w)


# ---------------------------------------------------------------------------------------------
# grad, grad_and_value


@pytest.mark.parametrize("shape", [(), (4,), (2, 3)])
def test_grad_scalar_vector_matrix_inputs(shape):
    check("grad", scalar_fn, (arr(*shape),))


@pytest.mark.parametrize("argnums", [0, 1, (0, 1), (1, 0), -1, (-2,)])
def test_grad_argnums(argnums):
    check("grad", two_arg_fn, (arr(3), arr(2)), argnums=argnums)


def test_grad_and_value_and_has_aux():
    def f(m, x, y):
        loss = (x * y).sum()
        return loss, {"pred": x * 2, "n": x.sum()}

    got = check("grad_and_value", f, (arr(3), arr(3)), argnums=(0, 1), has_aux=True)
    assert not got[1][1]["pred"].requires_grad
    check("grad", f, (arr(3), arr(3)), has_aux=True)
    check("grad_and_value", two_arg_fn, (arr(3), arr(2)))


def test_grad_of_pytree_argument():
    def loss(m, params, x):
        h = m.tanh(x @ params["w"] + params["b"])
        return (h * params["extra"][0]).sum() + params["extra"][1].sum()

    params = {"w": arr(3, 2), "b": arr(2), "extra": (arr(2), arr(1))}
    got = check("grad", loss, (params, arr(4, 3)))
    assert isinstance(got, dict) and isinstance(got["extra"], tuple)


def test_grad_nested_matches_torch():
    def second(m, x):
        inner = (tfunc if m is torch else dfunc).grad(lambda y: (y.sin() * y**2).sum())
        return inner(x).sum()

    check("grad", second, (arr(3),))


def test_grad_of_grad_with_closure_over_outer_argument():
    # The inner function captures x from the outer transform: the inner grad must keep a graph
    # to it (functorch's levels), although the inner argument itself does not require grad.
    def f(m, x):
        g = (tfunc if m is torch else dfunc).grad(lambda y: (x * y.sin()).sum())
        return g(m.ones_like(x)).sum()

    check("grad", f, (arr(3),))


def test_grad_keeps_graph_to_captured_parameters():
    # A gradient penalty: grad of D w.r.t. its input, then backward reaches D's parameters.
    a, xa = arr(3), arr(3)
    wd = descent.tensor(a, requires_grad=True)
    wt = torch.tensor(a, requires_grad=True)
    gd = dfunc.grad(lambda x: (wd * x).tanh().sum())(descent.tensor(xa))
    gt = tfunc.grad(lambda x: (wt * x).tanh().sum())(torch.tensor(xa))
    assert gd.requires_grad == gt.requires_grad is True
    (gd**2).sum().backward()
    (gt**2).sum().backward()
    np.testing.assert_allclose(wd.grad.numpy(), wt.grad.numpy(), atol=1e-10)


def test_grad_results_detached_at_top_level():
    x = descent.tensor(arr(3))
    g = dfunc.grad(lambda a: (a**2).sum())(x)
    assert not g.requires_grad and g.grad_fn is None
    tg = tfunc.grad(lambda a: (a**2).sum())(torch.tensor(x.numpy()))
    assert not tg.requires_grad


def test_grad_unused_argument_gives_zeros():
    check("grad", lambda m, x, y: (x**2).sum(), (arr(3), arr(2)), argnums=(0, 1))


def test_grad_errors_like_torch():
    x = arr(3)
    for lib, ns in ((dfunc, descent), (tfunc, torch)):
        with pytest.raises(RuntimeError, match="scalar Tensor, got tensor with 1 dims"):
            lib.grad(lambda a: a * 2)(ns.tensor(x))
        with pytest.raises(RuntimeError, match="scalar Tensor, got tensor with 1 dims"):
            lib.grad(lambda a: a.sum().reshape(1))(ns.tensor(x))
        with pytest.raises(RuntimeError, match="to return a Tensor"):
            lib.grad(lambda a: 3.0)(ns.tensor(x))
        with pytest.raises(RuntimeError, match="only 1 positional inputs"):
            lib.grad(lambda a: a.sum(), argnums=1)(ns.tensor(x))
        with pytest.raises(RuntimeError, match="argnums must be non-empty"):
            lib.grad(lambda a: a.sum(), argnums=())(ns.tensor(x))
        with pytest.raises(RuntimeError, match="unique"):
            lib.grad(lambda a: a.sum(), argnums=(0, 0))(ns.tensor(x))
        with pytest.raises(RuntimeError, match=r"\(output, aux\)"):
            lib.grad(lambda a: a.sum(), has_aux=True)(ns.tensor(x))
        with pytest.raises(RuntimeError, match="floating point"):
            lib.grad(lambda a: a.sum())(ns.tensor([1, 2, 3]))
        with pytest.raises(ValueError, match="must be Tensor"):
            lib.grad(lambda a: a)(2.0)


def test_grad_leaves_user_grad_alone_and_float32_kept():
    x = descent.tensor(arr(3).astype(np.float32), requires_grad=True)
    g = dfunc.grad(lambda a: (a**2).sum())(x)
    assert x.grad is None and g.dtype == descent.float32


# ---------------------------------------------------------------------------------------------
# vjp, jvp


def test_vjp_tuple_outputs_and_pytree_primals():
    a, b = arr(3), arr(2, 3)

    def f(m, x, p):
        return (x.sin() * p["w"]).sum(0), [(p["w"] ** 2).sum()]

    results = []
    for lib, ns, conv in ((dfunc, descent, to_d), (tfunc, torch, to_t)):
        out, fn = lib.vjp(lambda x, p, ns=ns: f(ns, x, p), *conv((a, {"w": b})))
        ct = (ns.tensor(np.arange(3.0)), [ns.tensor(2.0, dtype=ns.float64)])
        results.append((out, fn(ct)))
    same(*results)


def test_vjp_has_aux_and_errors():
    a = arr(3)
    for lib, ns in ((dfunc, descent), (tfunc, torch)):
        out, fn, aux = lib.vjp(lambda x: (x * 2, x.sum()), ns.tensor(a), has_aux=True)
        (g,) = fn(ns.ones(3, dtype=ns.float64))
        np.testing.assert_allclose(np.asarray(g.tolist()), 2.0)
        assert float(aux) == pytest.approx(a.sum())
        with pytest.raises(RuntimeError, match="pytree structure of cotangents"):
            fn((ns.ones(3, dtype=ns.float64),))
        with pytest.raises(RuntimeError, match="floating-point"):
            lib.vjp(lambda x: (x > 0).long(), ns.tensor(a))


@pytest.mark.parametrize("has_aux", [False, True])
def test_jvp_matches_torch(has_aux):
    a, b, va, vb = arr(3), arr(3), arr(3), arr(3)

    def f(m, x, y):
        out = ((x * y).sin(), (x.exp() * y).sum())
        return (out, {"y": y}) if has_aux else out

    got = dfunc.jvp(lambda x, y: f(descent, x, y), to_d((a, b)), to_d((va, vb)), has_aux=has_aux)
    want = tfunc.jvp(lambda x, y: f(torch, x, y), to_t((a, b)), to_t((va, vb)), has_aux=has_aux)
    same(got, want)


def test_jvp_errors_like_torch():
    x = arr(3)
    for lib, ns in ((dfunc, descent), (tfunc, torch)):
        with pytest.raises(RuntimeError, match="Expected primals to be a tuple"):
            lib.jvp(lambda a: a, ns.tensor(x), (ns.tensor(x),))
        with pytest.raises(RuntimeError, match="same python structure"):
            lib.jvp(lambda a: a, (ns.tensor(x),), (ns.tensor(x), ns.tensor(x)))


# ---------------------------------------------------------------------------------------------
# jacrev, jacfwd, hessian


@pytest.mark.parametrize("transform", ["jacrev", "jacfwd"])
def test_jacobians_match_torch(transform):
    check(transform, vec_fn, (arr(4),))
    check(transform, mat_fn, (arr(2, 3), arr(3, 2)), argnums=(0, 1))
    check(transform, mat_fn, (arr(2, 3), arr(3, 2)), argnums=1)
    check(transform, scalar_fn, (arr(3),))
    check(transform, lambda m, x: {"a": x * 2, "b": (x.sum(), x**2)}, (arr(2),))


@pytest.mark.parametrize("transform", ["jacrev", "jacfwd"])
def test_jacobian_has_aux(transform):
    check(transform, lambda m, x: (x.sin(), {"aux": x.sum()}), (arr(3),), has_aux=True)


@pytest.mark.parametrize("outer", ["jacrev", "jacfwd"])
def test_nested_jacobians_match_torch(outer):
    def g(lib):
        return getattr(lib, outer)(lib.jacrev(lambda x: x.sin() * x.sum()))

    a = arr(3)
    same(g(dfunc)(descent.tensor(a)), g(tfunc)(torch.tensor(a)))


def test_hessian_matches_torch():
    check("hessian", scalar_fn, (arr(3),))
    check("hessian", lambda m, x: (x @ x.T).sin().sum(), (arr(2, 2),))
    check("hessian", two_arg_fn, (arr(2), arr(3)), argnums=(0, 1))


def test_jacobian_of_independent_output_is_zero():
    check("jacrev", lambda m, x, y: x * 2, (arr(2), arr(3)), argnums=(0, 1))
    check("jacfwd", lambda m, x, y: x * 2, (arr(2), arr(3)), argnums=(0, 1))


# ---------------------------------------------------------------------------------------------
# vmap


def vm(f, args, **kw):
    got = dfunc.vmap(lambda *a: f(descent, *a), **kw)(*to_d(args))
    want = tfunc.vmap(lambda *a: f(torch, *a), **kw)(*to_t(args))
    same(got, want)
    return got


def test_vmap_in_dims_out_dims():
    vm(lambda m, x: x.sin() * 2, (arr(4, 3),))
    vm(lambda m, x, y: x @ y, (arr(5, 2, 3), arr(3, 4)), in_dims=(0, None))
    vm(lambda m, x, y: x * y, (arr(3, 5), arr(5, 3)), in_dims=(1, 0))
    vm(lambda m, x: x.sum(), (arr(3, 5),), in_dims=-1)
    vm(lambda m, x: x * 2, (arr(4, 3),), out_dims=1)
    vm(lambda m, x: (x * 2, x.sum()), (arr(4, 3),), out_dims=(1, 0))
    vm(lambda m, x: x[:, None] * x[None], (arr(4, 3),), out_dims=-1)


def test_vmap_pytrees_and_kwargs():
    def f(m, d, t, scale=1.0):
        return {"s": (d["a"] * t[0]).sum() * scale, "l": [d["b"] + t[1]]}

    args = ({"a": arr(4, 3), "b": arr(2)}, (arr(4, 3), arr(4, 2)))
    vm(f, args, in_dims=({"a": 0, "b": None}, 0))
    got = dfunc.vmap(lambda d, t: f(descent, d, t, scale=2.0), in_dims=({"a": 0, "b": None}, 0))(
        *to_d(args)
    )
    assert tuple(got["s"].shape) == (4,)


def test_vmap_nested_and_none_out_dim():
    vm(
        lambda m, x, y: (tfunc if m is torch else dfunc).vmap(lambda a: a * y)(x),
        (arr(2, 3, 4), arr(4)),
        in_dims=(0, None),
    )

    # Nested over both dims: an outer product.
    def outer(m, x, y):
        lib = tfunc if m is torch else dfunc
        return lib.vmap(lib.vmap(lambda a, b: a * b, in_dims=(None, 0)), in_dims=(0, None))(x, y)

    a, b = arr(3), arr(4)
    got = outer(descent, *to_d((a, b)))
    assert tuple(got.shape) == (3, 4)
    same(got, outer(torch, *to_t((a, b))))
    c = arr(2)
    vm(lambda m, x, c: (x * 2, c), (arr(3, 2), c), in_dims=(0, None), out_dims=(0, None))


def test_vmap_per_sample_grads_match_torch():
    w, xs, ys = arr(3), arr(5, 3), arr(5)

    def loss(m, w, x, y):
        return ((x * w).sum() - y) ** 2

    got = dfunc.vmap(dfunc.grad(lambda *a: loss(descent, *a)), in_dims=(None, 0, 0))(
        *to_d((w, xs, ys))
    )
    want = tfunc.vmap(tfunc.grad(lambda *a: loss(torch, *a)), in_dims=(None, 0, 0))(
        *to_t((w, xs, ys))
    )
    same(got, want)


def test_gradients_flow_through_vmap():
    a = arr(4, 3)
    xd, xt = descent.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    dfunc.vmap(lambda r: (r.sin() * r).sum())(xd).sum().backward()
    tfunc.vmap(lambda r: (r.sin() * r).sum())(xt).sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), atol=1e-12)
    same(dfunc.jacrev(dfunc.vmap(lambda r: r.sin()))(descent.tensor(a)),
         tfunc.jacrev(tfunc.vmap(lambda r: r.sin()))(torch.tensor(a)))  # fmt: skip


def test_vmap_errors_like_torch():
    x = arr(3, 2)
    for lib, ns in ((dfunc, descent), (tfunc, torch)):
        with pytest.raises(ValueError, match="same size in the mapped dimension"):
            lib.vmap(lambda a, b: a + b)(ns.tensor(x), ns.tensor(arr(4, 2)))
        with pytest.raises(ValueError, match="in_dims is not compatible"):
            lib.vmap(lambda a, b: a, in_dims=(0, 0, 0))(ns.tensor(x), ns.tensor(x))
        with pytest.raises(ValueError, match="cannot vmap over non-Tensor"):
            lib.vmap(lambda a, b: a * b)(ns.tensor(x), 2.0)
        with pytest.raises(ValueError, match="expected in_dim to satisfy"):
            lib.vmap(lambda a: a, in_dims=2)(ns.tensor(x))
        with pytest.raises(ValueError, match="at least one Tensor"):
            lib.vmap(lambda a: a, in_dims=(None,))(ns.tensor(x))
        with pytest.raises(ValueError, match="must only return Tensors"):
            lib.vmap(lambda a: None)(ns.tensor(x))
        with pytest.raises(ValueError, match="expected `in_dims` to be int"):
            lib.vmap(lambda a: a, in_dims=[0])(ns.tensor(x))
        with pytest.raises(ValueError, match="got no inputs"):
            lib.vmap(lambda: 1)()
        with pytest.raises(ValueError, match="BatchedTensor when out_dim is None"):
            lib.vmap(lambda a: a * 2, out_dims=None)(ns.tensor(x))


def test_vmap_randomness():
    x = descent.zeros(3, 2)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        dfunc.vmap(lambda a: a + descent.randn(2))(x)
    same_rows = dfunc.vmap(lambda a: a + descent.randn(2), randomness="same")(x)
    np.testing.assert_array_equal(same_rows.numpy()[0], same_rows.numpy()[1])
    diff_rows = dfunc.vmap(lambda a: a + descent.randn(2), randomness="different")(x)
    assert not np.array_equal(diff_rows.numpy()[0], diff_rows.numpy()[1])
    with pytest.raises(RuntimeError, match="Only allowed values for randomness"):
        dfunc.vmap(lambda a: a, randomness="sometimes")


# ---------------------------------------------------------------------------------------------
# functional_call


def mlp_pair():
    """The same MLP in descent and torch (float64, equal weights)."""
    md = dnn.Sequential(dnn.Linear(3, 4), dnn.Tanh(), dnn.Linear(4, 2)).double()
    mt = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    for p, q in zip(md.parameters(), mt.parameters()):
        with torch.no_grad():
            q.copy_(torch.tensor(p.numpy()))
    return md, mt


def test_functional_call_mlp_values_and_gradients():
    md, mt = mlp_pair()
    new = {n: arr(*p.shape) for n, p in md.named_parameters()}
    x = arr(5, 3)
    pd = {n: descent.tensor(a, requires_grad=True) for n, a in new.items()}
    pt = {n: torch.tensor(a, requires_grad=True) for n, a in new.items()}
    yd = dfunc.functional_call(md, pd, (descent.tensor(x),))
    yt = tfunc.functional_call(mt, pt, (torch.tensor(x),))
    same(yd, yt)
    (yd**2).sum().backward()
    (yt**2).sum().backward()
    for n in new:
        np.testing.assert_allclose(pd[n].grad.numpy(), pt[n].grad.numpy(), atol=1e-10)
    assert all(p.grad is None for p in md.parameters())  # the module's own got nothing
    # The module's own parameters are back in place.
    same(md(descent.tensor(x)), mt(torch.tensor(x)))


def test_functional_call_with_grad_transform():
    md, mt = mlp_pair()
    x, y = arr(4, 3), arr(4, 2)

    def loss(lib, model, ns, params, x, y):
        return ((lib.functional_call(model, params, (x,)) - y) ** 2).mean()

    pd = {n: p.detach() for n, p in md.named_parameters()}
    pt = {n: p.detach() for n, p in mt.named_parameters()}
    gd = dfunc.grad(lambda p, a, b: loss(dfunc, md, descent, p, a, b))(pd, *to_d((x, y)))
    gt = tfunc.grad(lambda p, a, b: loss(tfunc, mt, torch, p, a, b))(pt, *to_t((x, y)))
    same(gd, gt)


def test_functional_call_batchnorm_buffers():
    bd = dnn.BatchNorm1d(3).double()
    bt = torch.nn.BatchNorm1d(3).double()
    x = arr(6, 3)
    state = {"weight": arr(3), "bias": arr(3), "running_mean": np.zeros(3),
             "running_var": np.ones(3), "num_batches_tracked": np.array(0)}  # fmt: skip
    sd = {k: descent.tensor(v) for k, v in state.items()}
    st = {k: torch.tensor(v) for k, v in state.items()}
    orig_mean = bd.running_mean
    same(
        dfunc.functional_call(bd, sd, descent.tensor(x)),
        tfunc.functional_call(bt, st, torch.tensor(x)),
    )
    # Training mode updated the given running statistics, not the module's own.
    same(sd["running_mean"], st["running_mean"])
    same(sd["running_var"], st["running_var"])
    assert int(sd["num_batches_tracked"].item()) == int(st["num_batches_tracked"].item()) == 1
    assert bd.running_mean is orig_mean and float(abs(orig_mean).sum()) == 0.0
    assert int(bd.num_batches_tracked.item()) == 0
    # eval mode uses the given buffers
    bd.eval()
    bt.eval()
    same(
        dfunc.functional_call(bd, sd, descent.tensor(x)),
        tfunc.functional_call(bt, st, torch.tensor(x)),
    )
    # A sequence of dicts (params, buffers)
    params = {k: sd[k] for k in ("weight", "bias")}
    buffers = {k: sd[k] for k in ("running_mean", "running_var", "num_batches_tracked")}
    same(dfunc.functional_call(bd, (params, buffers), (descent.tensor(x),)),
         tfunc.functional_call(bt, st, (torch.tensor(x),)))  # fmt: skip


class TiedD(dnn.Module):
    def __init__(self):
        super().__init__()
        self.emb = dnn.Embedding(5, 3)
        self.head = dnn.Linear(3, 5, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, idx):
        return self.head(self.emb(idx))


class TiedT(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(5, 3)
        self.head = torch.nn.Linear(3, 5, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, idx):
        return self.head(self.emb(idx))


def test_functional_call_tied_weights():
    md, mt = TiedD().double(), TiedT().double()
    with torch.no_grad():
        mt.emb.weight.copy_(torch.tensor(md.emb.weight.numpy()))
    w = arr(5, 3)
    idx = np.array([0, 3, 4])
    wd, wt = descent.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    yd = dfunc.functional_call(md, {"emb.weight": wd}, (descent.tensor(idx),))
    yt = tfunc.functional_call(mt, {"emb.weight": wt}, (torch.tensor(idx),))
    same(yd, yt)
    yd.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(wd.grad.numpy(), wt.grad.numpy(), atol=1e-12)
    # Without tying, the head keeps the module's own weight.
    yd2 = dfunc.functional_call(md, {"emb.weight": wd}, (descent.tensor(idx),), tie_weights=False)
    yt2 = tfunc.functional_call(mt, {"emb.weight": wt}, (torch.tensor(idx),), tie_weights=False)
    same(yd2, yt2)
    for lib, m, ns in ((dfunc, md, descent), (tfunc, mt, torch)):
        with pytest.raises(ValueError, match="which are tied"):
            lib.functional_call(m, {"emb.weight": ns.tensor(w), "head.weight": ns.tensor(w)},
                                (ns.tensor(idx),))  # fmt: skip


def test_functional_call_restores_on_error_and_strict():
    md, mt = mlp_pair()
    before = {n: p for n, p in md.named_parameters()}
    bad = {"0.weight": descent.tensor(arr(4, 3))}
    with pytest.raises((ValueError, RuntimeError)):
        dfunc.functional_call(md, bad, (descent.tensor(arr(2, 7)),))  # wrong input width
    assert {n: p for n, p in md.named_parameters()} == before
    assert all(isinstance(p, dnn.Parameter) for p in md.parameters())
    for lib, m, ns in ((dfunc, md, descent), (tfunc, mt, torch)):
        with pytest.raises(RuntimeError, match="Missing key"):
            lib.functional_call(
                m, {"0.weight": ns.tensor(arr(4, 3))}, (ns.tensor(arr(2, 3)),), strict=True
            )
        with pytest.raises(RuntimeError, match="Unexpected key"):
            full = {n: p.detach() for n, p in m.named_parameters()}
            full["extra"] = ns.tensor(arr(1))
            lib.functional_call(m, full, (ns.tensor(arr(2, 3)),), strict=True)
        with pytest.raises(ValueError, match="multiple dictionaries"):
            d = {"0.bias": ns.tensor(arr(4))}
            lib.functional_call(m, (d, d), (ns.tensor(arr(2, 3)),))


def test_namespace_access():
    import descent.func as f2

    assert descent.func is f2 is dfunc
    assert descent.vmap is dfunc.vmap  # torch.vmap
    assert set(dfunc.__all__) >= {"grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd",
                                  "hessian", "vmap", "functional_call"}  # fmt: skip


def test_vmap_unmapped_python_scalar_and_dict_out_dims():
    vm(lambda m, x, c: x * c, (arr(3, 2), 2.0), in_dims=(0, None))
    vm(lambda m, x: {"a": x * 2, "b": x.sum()}, (arr(3, 2),), out_dims={"a": 1, "b": 0})


def test_transforms_work_under_no_grad():
    a = arr(3)
    with descent.no_grad():
        gd = dfunc.grad(lambda x: (x**3).sum())(descent.tensor(a))
        jd = dfunc.jacfwd(lambda x: x.sin())(descent.tensor(a))
    with torch.no_grad():
        gt = tfunc.grad(lambda x: (x**3).sum())(torch.tensor(a))
        jt = tfunc.jacfwd(lambda x: x.sin())(torch.tensor(a))
    same((gd, jd), (gt, jt))


def test_hessian_vector_product_against_central_differences():
    # d/dx of grad f along v, by central differences of grad (float64), vs jvp(grad(f)).
    a, v, eps = arr(4), arr(4), 1e-6

    def f(x):
        return (x.sin() * x.exp()).sum() + (x**4).sum()

    g = dfunc.grad(f)
    _, hv = dfunc.jvp(g, (descent.tensor(a),), (descent.tensor(v),))
    fd = (g(descent.tensor(a + eps * v)).numpy() - g(descent.tensor(a - eps * v)).numpy()) / (
        2 * eps
    )
    np.testing.assert_allclose(hv.numpy(), fd, rtol=1e-6, atol=1e-7)


def test_float32_kept_and_0d_slices():
    a = arr(4, 3).astype(np.float32)
    x = descent.tensor(a)
    assert dfunc.jacrev(lambda t: t.sin())(x[0]).dtype == descent.float32
    assert dfunc.jacfwd(lambda t: t.sin())(x[0]).dtype == descent.float32
    assert dfunc.vmap(lambda t: t * 2)(x).dtype == descent.float32
    # Mapping a vector gives 0-d slices; a 0-d output stacks to a vector.
    vm(lambda m, t: t * t + 1, (arr(5),))
    vm(lambda m, t: (t**2).sum(), (arr(5, 2),))
    check("grad", lambda m, t: t.sin() * 3, (np.array(0.7),))
    check("jacrev", lambda m, t: t.sin() * 3, (np.array(0.7),))


def _graph_flags(ns, F):
    """Which results carry a graph, in every situation that decides it (table vs torch)."""
    a = np.linspace(-1.0, 1.0, 3)
    x, xf, w = ns.tensor(a, requires_grad=True), ns.tensor(a), ns.tensor(a, requires_grad=True)
    one = ns.ones(3, dtype=ns.float64)
    flags = {
        "grad x.rg": F.grad(lambda t: (t**3).sum())(x),
        "grad plain": F.grad(lambda t: (t**3).sum())(xf),
        "grad closure": F.grad(lambda t: (t * w).sum())(xf),
        "jvp x.rg": F.jvp(lambda t: t.sin(), (x,), (one,))[1],
        "jvp plain": F.jvp(lambda t: t.sin(), (xf,), (one,))[1],
        "jacrev x.rg": F.jacrev(lambda t: t.sin())(x),
        "jacfwd x.rg": F.jacfwd(lambda t: t.sin())(x),
        "jacrev plain": F.jacrev(lambda t: t.sin())(xf),
        "hessian x.rg": F.hessian(lambda t: (t**3).sum())(x),
        "vmap x.rg": F.vmap(lambda t: t * 2)(x.reshape(3, 1)),
        "aux plain": F.grad(lambda t: ((t**2).sum(), t * 2), has_aux=True)(xf)[1],
        "aux x.rg": F.grad(lambda t: ((t**2).sum(), t * 2), has_aux=True)(x)[1],
        "jacrev(grad) x.rg": F.jacrev(F.grad(lambda t: (t**3).sum()))(x),
    }
    for name, arg in (("x.rg", x), ("plain", xf)):
        out, fn = F.vjp(lambda t: t.sin(), arg)
        flags[f"vjp out {name}"] = out
        flags[f"vjp res {name}"] = fn(one)[0]
    with ns.no_grad():
        flags["grad x.rg no_grad"] = F.grad(lambda t: (t**3).sum())(x)
    return {k: v.requires_grad for k, v in flags.items()}


def test_which_results_keep_a_graph_matches_torch():
    assert _graph_flags(descent, dfunc) == _graph_flags(torch, tfunc)


def _combos(ns, F):
    """Transforms composed in every common way; each entry is computed in both libraries."""
    rows = np.linspace(-1.0, 1.2, 12).reshape(4, 3)
    x, b = ns.tensor(rows), ns.tensor(rows[1] * 0.7)
    ones = ns.ones(3, dtype=ns.float64)

    def f(t):
        return (t.sin() * t.sum()).exp()

    def s(t):
        return (t.sin() * t**2).sum()

    return {
        "vmap(jacrev)": lambda: F.vmap(F.jacrev(f))(x),
        "vmap(jacfwd)": lambda: F.vmap(F.jacfwd(f))(x),
        "vmap(hessian)": lambda: F.vmap(F.hessian(s))(x),
        "jacrev(vmap)": lambda: F.jacrev(F.vmap(f))(x),
        "grad(vmap)": lambda: F.grad(lambda t: F.vmap(s)(t).sum())(x),
        "grad^3": lambda: F.grad(lambda t: F.grad(lambda u: F.grad(s)(u).sum())(t).sum())(b),
        "jvp(grad)": lambda: F.jvp(F.grad(s), (b,), (ones,))[1],
        "vjp(jacfwd)": lambda: F.vjp(F.jacfwd(f), b)[1](ns.ones(3, 3, dtype=ns.float64))[0],
        "jacfwd(jacfwd)": lambda: F.jacfwd(F.jacfwd(f))(b),
        "grad(autograd.functional.jacobian)": lambda: F.grad(
            lambda t: ns.autograd.functional.jacobian(f, t, create_graph=True).sum()
        )(b),
        "vmap(jacrev, in_dims=1)": lambda: F.vmap(F.jacrev(f), in_dims=1)(x),
        "vmap(vjp)": lambda: F.vmap(lambda t: F.vjp(f, t)[1](t)[0])(x),
    }


@pytest.mark.parametrize("name", list(_combos(descent, dfunc)))
def test_compositions_match_torch(name):
    same(_combos(descent, dfunc)[name](), _combos(torch, tfunc)[name]())


def test_stack_module_state_ensemble_matches_torch():
    mds = [mlp_pair() for _ in range(3)]
    x = arr(5, 3)
    pd, bd = dfunc.stack_module_state([m for m, _ in mds])
    pt, bt = tfunc.stack_module_state([m for _, m in mds])
    assert all(v.requires_grad for v in pd.values()) and not bd
    same(pd, {k: v.detach() for k, v in pt.items()})
    base_d, base_t = mds[0]

    def ens(lib, base):
        return lib.vmap(
            lambda p, b, x: lib.functional_call(base, (p, b), (x,)), in_dims=(0, 0, None)
        )

    yd = ens(dfunc, base_d)(pd, bd, descent.tensor(x))
    yt = ens(tfunc, base_t)(pt, bt, torch.tensor(x))
    same(yd, yt)
    yd.sum().backward()
    yt.sum().backward()
    for k in pd:
        np.testing.assert_allclose(pd[k].grad.numpy(), pt[k].grad.numpy(), atol=1e-10)
    with pytest.raises(RuntimeError, match="at least one model"):
        dfunc.stack_module_state([])
    with pytest.raises(RuntimeError, match="same class"):
        dfunc.stack_module_state([dnn.Linear(2, 2), dnn.Tanh()])


@pytest.mark.filterwarnings("ignore:Attempted to insert a get_attr")  # inside torch's linearize
def test_linearize_matches_torch():
    a, v1, v2 = arr(3), arr(3), arr(3)
    res = []
    for lib, ns in ((dfunc, descent), (tfunc, torch)):
        out, fn = lib.linearize(lambda x: (x.sin() * x.sum(), x.exp()), ns.tensor(a))
        res.append((out, fn(ns.tensor(v1)), fn(ns.tensor(v2))))
        with pytest.raises(RuntimeError, match="doesn't match the shape"):
            fn(ns.tensor(arr(4)))
        with pytest.raises(RuntimeError, match="same argspec"):
            fn(ns.tensor(v1), ns.tensor(v2))
    same(*res)


def test_replace_all_batch_norm_modules_matches_torch():
    # torch.func.replace_all_batch_norm_modules_: BatchNorms lose their running statistics (None,
    # track_running_stats False) so vmap over the model normalises with batch statistics only,
    # in train and in eval mode alike; other modules are untouched; returns the root
    x = arr(4, 3, 5).astype(np.float32)  # 4 "models" worth of (3, 5) batches
    outs = []
    for lib, F in ((descent, dfunc), (torch, tfunc)):
        net = lib.nn.Sequential(lib.nn.Linear(5, 4), lib.nn.BatchNorm1d(4), lib.nn.LayerNorm(4))
        with lib.no_grad():
            net[0].weight.copy_(
                lib.from_numpy(np.linspace(-1, 1, 20, dtype=np.float32).reshape(4, 5))
            )
        assert F.replace_all_batch_norm_modules_(net) is net
        bn = net[1]
        state = (bn.running_mean, bn.running_var, bn.num_batches_tracked, bn.track_running_stats)
        assert state == (None, None, None, False)
        assert sorted(net.state_dict()) == ["0.bias", "0.weight", "1.bias", "1.weight",
                                            "2.bias", "2.weight"]  # fmt: skip
        y_train = F.vmap(net)(lib.from_numpy(x))
        net.eval()
        y_eval = F.vmap(net)(lib.from_numpy(x))
        outs.append((y_train.detach().numpy(), y_eval.detach().numpy()))
    for ours, theirs in zip(outs[0], outs[1], strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs[0][0], outs[0][1], rtol=1e-6)  # eval = batch statistics
