"""descent.autograd.functional against torch.autograd.functional (the oracle), and grad_fn's
PyTorch spellings (`name()`, `next_functions`).

Every function runs in descent and in PyTorch on the same float64 inputs; the results must
have the same nesting (Tensor, tuple, tuple of tuples) and the same values.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent
from descent.autograd import functional as AF

rng = np.random.default_rng(0)


def arr(*shape):
    return rng.standard_normal(shape)


def both(*arrays):
    """The same float64 values as (descent tensors, torch tensors)."""
    d = tuple(descent.tensor(a) for a in arrays)
    t = tuple(torch.tensor(a) for a in arrays)
    return d, t


def same(got, want, atol=1e-9):
    """Equal nesting and values: descent result `got`, torch result `want`."""
    if isinstance(want, torch.Tensor):
        assert isinstance(got, descent.Tensor), type(got)
        assert tuple(got.shape) == tuple(want.shape)
        np.testing.assert_allclose(got.numpy(), want.detach().numpy(), atol=atol, rtol=1e-7)
        return
    assert isinstance(got, tuple) and isinstance(want, tuple), (type(got), type(want))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        same(g, w, atol)


# Functions written once against a namespace (descent or torch), so both run the same code.
def f_vec(m, x):
    return (x.sin() * x).exp()


def f_scalar(m, x):
    return (x.sin() * x).sum() + (x**3).sum()


def f_mat(m, x):
    return m.tanh(x @ x.T)


def f_pair(m, x, y):
    return (x * y.sum()).sin(), (x.exp().sum() * y).cos()


def f_pair_scalar(m, x, y):
    return ((x * x).sum() * y.sin().sum()) + (x.sum() * y).sum()


CASES = [  # (function, input shapes)
    (f_vec, [(4,)]),
    (f_scalar, [(3,)]),
    (f_mat, [(2, 3)]),
    (f_pair, [(3,), (2,)]),
]


def run_both(fn, shapes, call):
    """call(namespace, f, inputs) in descent and in torch; a single input goes in bare."""
    d, t = both(*[arr(*s) for s in shapes])
    if len(shapes) == 1:
        d, t = d[0], t[0]
    return call(descent, lambda *a: fn(descent, *a), d), call(torch, lambda *a: fn(torch, *a), t)


@pytest.mark.parametrize("fn,shapes", CASES)
def test_jacobian_matches_torch(fn, shapes):
    got, want = run_both(fn, shapes, lambda m, f, x: m.autograd.functional.jacobian(f, x))
    same(got, want)


@pytest.mark.parametrize("fn,shapes", CASES)
def test_jacobian_tuple_input_of_one(fn, shapes):
    # A 1-tuple input gives a tuple over inputs, even for one input.
    d, t = both(*[arr(*s) for s in shapes])
    got = AF.jacobian(lambda *a: fn(descent, *a), d)
    want = torch.autograd.functional.jacobian(lambda *a: fn(torch, *a), t)
    same(got, want)


@pytest.mark.parametrize("fn,shapes", CASES)
def test_vjp_matches_torch(fn, shapes):
    def call(m, f, x):
        out = f(*x) if isinstance(x, tuple) else f(x)
        outs = out if isinstance(out, tuple) else (out,)
        v = tuple(m.tensor(np.linspace(-1, 1, o.numel()).reshape(tuple(o.shape))) for o in outs)
        return m.autograd.functional.vjp(f, x, v if isinstance(out, tuple) else v[0])

    got, want = run_both(fn, shapes, call)
    same(got, want)


@pytest.mark.parametrize("fn,shapes", CASES)
def test_jvp_matches_torch(fn, shapes):
    def call(m, f, x):
        xs = x if isinstance(x, tuple) else (x,)
        v = tuple(m.tensor(np.linspace(-1, 2, a.numel()).reshape(tuple(a.shape))) for a in xs)
        return m.autograd.functional.jvp(f, x, v if isinstance(x, tuple) else v[0])

    got, want = run_both(fn, shapes, call)
    same(got, want)


@pytest.mark.parametrize("fn,shapes", [(f_scalar, [(3,)]), (f_pair_scalar, [(2,), (3,)])])
@pytest.mark.parametrize("name", ["hvp", "vhp"])
def test_hvp_vhp_match_torch(fn, shapes, name):
    def call(m, f, x):
        xs = x if isinstance(x, tuple) else (x,)
        v = tuple(m.tensor(np.linspace(-1, 2, a.numel()).reshape(tuple(a.shape))) for a in xs)
        return getattr(m.autograd.functional, name)(f, x, v if isinstance(x, tuple) else v[0])

    got, want = run_both(fn, shapes, call)
    same(got, want)


@pytest.mark.parametrize("fn,shapes", [(f_scalar, [(3,)]), (f_pair_scalar, [(2,), (3,)])])
def test_hessian_matches_torch(fn, shapes):
    got, want = run_both(fn, shapes, lambda m, f, x: m.autograd.functional.hessian(f, x))
    same(got, want)


def test_hessian_of_matrix_input():
    got, want = run_both(
        lambda m, x: (x @ x.T).sin().sum(),
        [(2, 3)],
        lambda m, f, x: m.autograd.functional.hessian(f, x),
    )
    same(got, want)
    assert tuple(got.shape) == (2, 3, 2, 3)


def test_v_none_for_one_element():
    d, t = both(arr(1))
    same(
        AF.vjp(lambda x: (x * x).sum(), d[0]),
        torch.autograd.functional.vjp(lambda x: (x * x).sum(), t[0]),
    )
    same(AF.jvp(lambda x: x.exp(), d[0]), torch.autograd.functional.jvp(lambda x: x.exp(), t[0]))
    with pytest.raises(RuntimeError, match="v can only be None"):
        AF.vjp(lambda x: x * 2, descent.tensor(arr(3)))
    with pytest.raises(RuntimeError, match="v can only be None"):
        AF.jvp(lambda x: x * 2, descent.tensor(arr(3)))


def test_results_detached_unless_create_graph():
    x = descent.tensor(arr(3), requires_grad=True)
    out, g = AF.vjp(lambda a: (a**3).sum(), x)
    assert not out.requires_grad and not g.requires_grad
    J = AF.jacobian(lambda a: a**3, x)
    assert not J.requires_grad
    out, g = AF.vjp(lambda a: (a**3).sum(), x, create_graph=True)
    assert g.requires_grad
    # The graph reaches x: d/dx sum(3 x^2) = 6 x.
    (gx,) = descent.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(gx.numpy(), 6 * x.numpy(), atol=1e-12)
    assert x.grad is None  # a user's .grad is never touched


def test_create_graph_jacobian_matches_torch_second_derivative():
    a = arr(3)
    xd = descent.tensor(a, requires_grad=True)
    xt = torch.tensor(a, requires_grad=True)
    Jd = AF.jacobian(lambda x: x.sin() * x, xd, create_graph=True)
    Jt = torch.autograd.functional.jacobian(lambda x: x.sin() * x, xt, create_graph=True)
    (gd,) = descent.autograd.grad(Jd.sum(), xd)
    (gt,) = torch.autograd.grad(Jt.sum(), xt)
    np.testing.assert_allclose(gd.numpy(), gt.numpy(), atol=1e-12)


def test_independent_output_gives_zeros_and_strict_raises():
    d, t = both(arr(3), arr(2))

    def fd(x, y):
        return x * 2

    def ft(x, y):
        return x * 2

    same(AF.jacobian(fd, d), torch.autograd.functional.jacobian(ft, t))
    same(AF.vjp(fd, d, descent.ones(3, dtype=descent.float64)),
         torch.autograd.functional.vjp(ft, t, torch.ones(3, dtype=torch.float64)))  # fmt: skip
    with pytest.raises(RuntimeError, match="Output 0 of the user-provided function is independent"):
        AF.jacobian(fd, d, strict=True)
    with pytest.raises(RuntimeError, match="Output 0 of the user-provided function is independent"):
        torch.autograd.functional.jacobian(ft, t, strict=True)
    with pytest.raises(RuntimeError, match="independent of input 1"):
        AF.vjp(fd, d, descent.ones(3, dtype=descent.float64), strict=True)
    with pytest.raises(RuntimeError, match="independent of input 1"):
        torch.autograd.functional.vjp(ft, t, torch.ones(3, dtype=torch.float64), strict=True)


def test_strict_output_without_graph_raises_like_torch():
    x = arr(3)
    for ns, F in ((descent, AF), (torch, torch.autograd.functional)):
        with pytest.raises(RuntimeError, match="does not require gradients"):
            F.jacobian(lambda a, ns=ns: ns.ones(3, dtype=ns.float64), ns.tensor(x), strict=True)
        # Without strict: zeros.
        J = F.jacobian(lambda a, ns=ns: ns.ones(3, dtype=ns.float64), ns.tensor(x))
        assert float(abs(J).sum()) == 0.0


def test_strict_linear_hessian_raises():
    x = arr(3)
    for F, ns in ((AF, descent), (torch.autograd.functional, torch)):
        with pytest.raises(RuntimeError, match="jacobian of the user-provided function"):
            F.hessian(lambda a: a.sum() * 2, ns.tensor(x), strict=True)
        H = F.hessian(lambda a: a.sum() * 2, ns.tensor(x))
        assert float(abs(H).sum()) == 0.0


def test_bad_arguments_raise_like_torch():
    x = descent.tensor(arr(3))
    with pytest.raises(TypeError, match="must be either a Tensor or a tuple of Tensors"):
        AF.jacobian(lambda a: a, [x])
    with pytest.raises(TypeError, match="outputs of the user-provided function"):
        AF.jacobian(lambda a: 3.0, x)
    with pytest.raises(RuntimeError, match="v has invalid size"):
        AF.vjp(lambda a: a * 2, x, descent.ones(4, dtype=descent.float64))
    with pytest.raises(RuntimeError, match="single element"):
        AF.hessian(lambda a: a * 2, x)
    with pytest.raises(RuntimeError, match="single Tensor"):
        AF.hvp(lambda a: (a.sum(), a.sum()), x, x)
    with pytest.raises(NotImplementedError, match="vectorize=True"):
        AF.jacobian(lambda a: a * 2, x, strategy="forward-mode")
    with pytest.raises(ValueError, match="forward-mode"):
        AF.jacobian(lambda a: a * 2, x, strategy="sideways")


def test_forward_mode_and_vectorize_give_the_same_values():
    d, t = both(arr(3))
    want = torch.autograd.functional.jacobian(lambda a: a.sin() * a, t[0])
    for kw in ({"vectorize": True}, {"vectorize": True, "strategy": "forward-mode"}):
        same(AF.jacobian(lambda a: a.sin() * a, d[0], **kw), want)


def test_float32_kept():
    x = descent.tensor(arr(3).astype(np.float32))
    J = AF.jacobian(lambda a: a * a, x)
    assert J.dtype == descent.float32
    out, hv = AF.hvp(lambda a: (a**3).sum(), x, descent.ones(3))
    assert hv.dtype == descent.float32


def test_attribute_access_forms():
    import descent.autograd as dag

    assert dag.functional is AF
    assert descent.autograd.functional.jacobian is AF.jacobian


# ---------------------------------------------------------------------------------------------
# grad_fn: name() and next_functions


def test_grad_fn_name_is_str_and_callable():
    x = descent.tensor(arr(3), requires_grad=True)
    y = (x * 2).sum()
    # name() is PyTorch's name; the attribute stays descent's (tests/test_grad_fn_names.py)
    assert y.grad_fn.name() == "SumBackward0" and y.grad_fn.name == "SumBackward"
    assert type(y.grad_fn.name()) is str
    assert isinstance(y.grad_fn.name, str)
    assert f"{y.grad_fn.name}" == "SumBackward"
    xt = torch.tensor(arr(3), requires_grad=True)
    assert (xt * 2).sum().grad_fn.name() == y.grad_fn.name()


def test_next_functions_like_torch():
    a = arr(3)
    xd, wd = descent.tensor(a, requires_grad=True), descent.tensor(a)
    xt, wt = torch.tensor(a, requires_grad=True), torch.tensor(a)
    yd, yt = (xd * wd).sum(), (xt * wt).sum()
    ((nd, kd),) = yd.grad_fn.next_functions
    ((nt, kt),) = yt.grad_fn.next_functions
    assert kd == kt == 0
    assert nd.name().startswith("MulBackward") and nt.name().startswith("MulBackward")
    leaf_d, none_d = nd.next_functions
    leaf_t, none_t = nt.next_functions
    assert none_d == none_t == (None, 0)
    assert leaf_d[0].variable is xd and leaf_t[0].variable is xt
    assert leaf_d[0].name() == leaf_t[0].name() == "torch::autograd::AccumulateGrad"
    assert leaf_d[0].next_functions == () == leaf_t[0].next_functions
    assert leaf_d[0] == (xd * 3).grad_fn.next_functions[0][0]  # the same leaf: equal


def test_next_functions_walk_reaches_every_leaf():
    x = descent.tensor(arr(2), requires_grad=True)
    w = descent.tensor(arr(2), requires_grad=True)
    y = ((x * w).exp() + x).sum()
    found, stack = set(), [y.grad_fn]
    while stack:
        node = stack.pop()
        for nxt, _ in node.next_functions:
            if nxt is None:
                continue
            if hasattr(nxt, "variable"):
                found.add(id(nxt.variable))
            else:
                stack.append(nxt)
    assert found == {id(x), id(w)}


def test_custom_function_node_name_callable():
    class Square(descent.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    y = Square.apply(descent.tensor(arr(3), requires_grad=True))
    assert y.grad_fn.name() == "SquareBackward" == y.grad_fn.name


@pytest.mark.parametrize("shape", [(), (0,), (1,), (2, 1, 3)])
def test_jacobian_and_hessian_shapes_edge_inputs(shape):
    a = arr(*shape)
    if a.size == 0:  # torch's loop stacks an empty list and raises; descent gives the empty J
        with pytest.raises(RuntimeError, match="non-empty"):
            torch.autograd.functional.jacobian(lambda x: x.exp() * 2, torch.tensor(a))
        assert tuple(AF.jacobian(lambda x: x.exp() * 2, descent.tensor(a)).shape) == (0, 0)
        assert tuple(AF.hessian(lambda x: (x**3).sum(), descent.tensor(a)).shape) == (0, 0)
        return
    same(AF.jacobian(lambda x: x.exp() * 2, descent.tensor(a)),
         torch.autograd.functional.jacobian(lambda x: x.exp() * 2, torch.tensor(a)))  # fmt: skip
    same(AF.hessian(lambda x: (x**3).sum(), descent.tensor(a)),
         torch.autograd.functional.hessian(lambda x: (x**3).sum(), torch.tensor(a)))  # fmt: skip


@pytest.mark.parametrize("name", ["hvp", "vhp", "jvp", "vjp"])
def test_create_graph_products_differentiate_again_like_torch(name):
    a, v = arr(3), arr(3)
    res = []
    for ns, F in ((descent, AF), (torch, torch.autograd.functional)):
        x = ns.tensor(a, requires_grad=True)
        f = (
            (lambda t: (t.sin() * t**2).sum())
            if name in ("hvp", "vhp")
            else (lambda t: t.sin() * t)
        )
        _, out = getattr(F, name)(f, x, ns.tensor(v), create_graph=True)
        assert out.requires_grad
        (g,) = ns.autograd.grad((out * out).sum(), x)
        res.append(g)
    same(*res)


def test_results_under_no_grad_and_float32():
    a = arr(3).astype(np.float32)
    with descent.no_grad():
        J = AF.jacobian(lambda x: x.sin(), descent.tensor(a))
        H = AF.hessian(lambda x: (x**3).sum(), descent.tensor(a))
    with torch.no_grad():
        Jt = torch.autograd.functional.jacobian(lambda x: x.sin(), torch.tensor(a))
    np.testing.assert_allclose(J.numpy(), Jt.numpy(), atol=1e-6)
    assert J.dtype == H.dtype == descent.float32
    np.testing.assert_allclose(H.numpy(), np.diag(6 * a), atol=1e-5)


def test_integer_inputs_refused_like_torch():
    for ns, F in ((descent, AF), (torch, torch.autograd.functional)):
        with pytest.raises(RuntimeError, match="floating"):
            F.jacobian(lambda x: x * 2, ns.tensor([1, 2]))


def test_from_import_as_in_pytorch():
    # `from torch.autograd.functional import jacobian`: descent.autograd is a module, so the
    # "submodule" is an alias in sys.modules, loaded lazily (import descent does not load it).
    import subprocess
    import sys

    code = (
        "import sys, descent\n"
        "assert 'descent.autograd_functional' not in sys.modules or "
        "type(sys.modules['descent.autograd_functional']).__name__ == '_LazyModule'\n"
        "from descent.autograd.functional import jacobian, hessian\n"
        "import descent.autograd.functional as F\n"
        "assert F is descent.autograd.functional\n"
        "j = jacobian(lambda x: x * 3, descent.ones(2))\n"
        "assert j.tolist() == [[3.0, 0.0], [0.0, 3.0]], j\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
