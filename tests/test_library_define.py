"""torch.library's schema-string API (Library / define / impl) against PyTorch 2.13.

Each test defines the same operator in both libraries (distinct namespaces per test, since
registrations are global) and compares values, gradients and errors."""

from __future__ import annotations

import gc
import itertools

import numpy as np
import pytest

import descent
from descent.library_define import parse_schema

torch = pytest.importorskip("torch")

_count = itertools.count()


def _ns() -> str:
    return f"dlibdef{next(_count)}"


@pytest.fixture(params=["torch", "descent"])
def lib(request):
    return torch if request.param == "torch" else descent


def _close(a, b, tol=1e-6):
    np.testing.assert_allclose(np.asarray(a.detach()), np.asarray(b.detach()), rtol=tol, atol=tol)


X = np.array([0.3, -1.2, 2.5], dtype=np.float32)


def _both(build):
    """Run `build(lib, ns)` under torch and descent; return both results."""
    out = []
    keep = []
    for lib in (torch, descent):
        ns = _ns()
        r, library = build(lib, ns)
        keep.append(library)
        out.append(r)
    return out


def test_composite_implicit_gets_gradients_from_its_ops():
    def build(lib, ns):
        L = lib.library.Library(ns, "DEF")
        assert L.define("foo(Tensor x, int n=2, *, float alpha=1.) -> Tensor") == "foo"
        L.impl("foo", lambda x, n=2, alpha=1.0: (x * n).sin() + alpha, "CompositeImplicitAutograd")
        x = lib.tensor(X, requires_grad=True)
        op = getattr(lib.ops, ns).foo
        y = op(x, 3, alpha=0.5)
        y.sum().backward()
        d = op(x.detach())  # the defaults
        return (y, x.grad, d, y.grad_fn.name()), L

    (ty, tg, td, tname), (dy, dg, dd, dname) = _both(build)
    _close(ty, dy)
    _close(tg, dg)
    _close(td, dd)
    assert tname == dname == "AddBackward0"


def test_cpu_kernel_with_register_autograd():
    def build(lib, ns):
        L = lib.library.Library(ns, "DEF")
        L.define("mysin(Tensor x) -> Tensor")

        def mysin(x):
            return lib.from_numpy(np.sin(x.detach().numpy()))

        L.impl("mysin", mysin, "CPU")

        def setup(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x.cos()

        lib.library.register_autograd(f"{ns}::mysin", backward, setup_context=setup)
        x = lib.tensor(X, requires_grad=True)
        y = getattr(lib.ops, ns).mysin(x)
        y.sum().backward()
        return (y, x.grad), L

    (ty, tg), (dy, dg) = _both(build)
    _close(ty, dy)
    _close(tg, dg)


def test_autograd_key_kernel_over_a_cpu_kernel():
    def build(lib, ns):
        L = lib.library.Library(ns, "DEF")
        L.define("cube(Tensor x) -> Tensor")

        def cube_cpu(x):
            return x * x * x

        class Cube(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return cube_cpu(x)

            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return g * 3 * x * x

        L.impl("cube", cube_cpu, "CPU")
        L.impl("cube", Cube.apply, "Autograd")
        op = getattr(lib.ops, ns).cube
        x = lib.tensor(X, requires_grad=True)
        y = op(x)
        y.sum().backward()
        z = op(x.detach())
        return (y, x.grad, z, z.requires_grad), L

    (ty, tg, tz, tr), (dy, dg, dz, dr) = _both(build)
    _close(ty, dy)
    _close(tg, dg)
    _close(tz, dz)
    assert tr == dr is False


def test_module_level_define_and_impl_decorator():
    def build(lib, ns):
        lib.library.define(f"{ns}::twice", "(Tensor x, float s=2.) -> Tensor")

        @lib.library.impl(f"{ns}::twice", "cpu")
        def twice(x, s=2.0):
            return x * s

        return getattr(lib.ops, ns).twice(lib.tensor(X)), None

    t, d = _both(build)
    _close(t, d)


def test_multiple_returns_and_fragment_libraries():
    def build(lib, ns):
        a = lib.library.Library(ns, "DEF")
        b = lib.library.Library(ns, "FRAGMENT")
        b.define("sumdiff(Tensor a, Tensor b) -> (Tensor, Tensor)")
        b.impl("sumdiff", lambda a, b: (a + b, a - b), "CompositeExplicitAutograd")
        s, d = getattr(lib.ops, ns).sumdiff(lib.tensor(X), lib.tensor(X * 2))
        return (s, d), (a, b)

    (ts, td), (ds, dd) = _both(build)
    _close(ts, ds)
    _close(td, dd)


def test_mutating_schema_may_return_its_input():
    def build(lib, ns):
        L = lib.library.Library(ns, "DEF")
        L.define("addone_(Tensor(a!) x) -> Tensor(a!)")

        def addone_(x):
            x.add_(1)
            return x

        L.impl("addone_", addone_, "CPU")
        x = lib.tensor(X.copy())
        y = getattr(lib.ops, ns).addone_(x)
        return (x, y is x), L

    (tx, tsame), (dx, dsame) = _both(build)
    _close(tx, dx)
    assert tsame == dsame


def test_errors_match_pytorch():
    for lib in (torch, descent):
        ns = _ns()
        L = lib.library.Library(ns, "DEF")
        L.define("foo(Tensor x) -> Tensor")
        with pytest.raises(RuntimeError, match="same name and overload name"):
            L.define("foo(Tensor x) -> Tensor")
        with pytest.raises(RuntimeError, match="Only a single TORCH_LIBRARY"):
            lib.library.Library(ns, "DEF")
        with pytest.raises(AttributeError, match="has no attribute 'nothere'"):
            getattr(lib.ops, ns).nothere  # noqa: B018
        with pytest.raises(ValueError, match="Unsupported kind"):
            lib.library.Library(ns, "WRONG")
        del L


def test_no_kernel_and_no_autograd_raise_naming_the_op():
    ns = _ns()
    L = descent.library.Library(ns, "DEF")
    L.define("bar(Tensor x) -> Tensor")
    op = getattr(descent.ops, ns).bar
    with pytest.raises(NotImplementedError, match=f"{ns}::bar: no implementation for device"):
        op(descent.tensor(X))
    L.impl("bar", lambda x: x * 2, "CPU")
    x = descent.tensor(X, requires_grad=True)
    y = op(x)
    assert y.requires_grad
    with pytest.raises(RuntimeError, match="no autograd formula"):
        y.sum().backward()


def test_registrations_go_with_their_library():
    ns = _ns()
    L = descent.library.Library(ns, "DEF")
    L.define("baz(Tensor x) -> Tensor")
    L.impl("baz", lambda x: x + 1, "CompositeImplicitAutograd")
    assert float(getattr(descent.ops, ns).baz(descent.tensor(1.0))) == 2.0
    L._destroy()
    with pytest.raises(AttributeError):
        getattr(descent.ops, ns).baz  # noqa: B018
    L2 = descent.library.Library(ns, "DEF")  # the namespace is free again
    L2.define("baz(Tensor x) -> Tensor")
    del L2
    gc.collect()
    with pytest.raises(AttributeError):
        getattr(descent.ops, ns).baz  # noqa: B018


def test_aten_overrides_are_refused_with_the_reason():
    with pytest.raises(NotImplementedError, match="cannot override PyTorch's own operators"):
        descent.library.Library("aten", "IMPL")


def test_meta_kernel_is_the_fake_for_opcheck():
    ns = _ns()
    L = descent.library.Library(ns, "DEF")
    L.define("dbl(Tensor x) -> Tensor")
    L.impl("dbl", lambda x: x * 2, "CPU")
    L.impl("dbl", lambda x: descent.empty_like(x), "Meta")

    def backward(ctx, g):
        return g * 2

    descent.library.register_autograd(f"{ns}::dbl", backward)
    x = descent.tensor(np.arange(3.0), dtype=descent.float64, requires_grad=True)
    res = descent.library.opcheck(getattr(descent.ops, ns).dbl, (x,))
    assert set(res.values()) == {"SUCCESS"}


@pytest.mark.parametrize(
    "schema, names, kinds, defaults, mutated",
    [
        ("f(Tensor x) -> Tensor", ["x"], "P", [None], ()),
        ("g(Tensor x, int n=2, *, float alpha=1., str mode='sum') -> Tensor",
         ["x", "n", "alpha", "mode"], "PPKK", [None, 2, 1.0, "sum"], ()),
        ("h(Tensor(a!) out, Tensor[] xs, int[2] size=[1, 2], ScalarType? dtype=None) -> ()",
         ["out", "xs", "size", "dtype"], "PPPP", [None, None, [1, 2], None], ("out",)),
        ("(Tensor? w=None, bool flag=True, Scalar s=-1e-05) -> (Tensor, Tensor)",
         ["w", "flag", "s"], "PPP", [None, True, -1e-05], ()),
    ],
)  # fmt: skip
def test_schema_parser(schema, names, kinds, defaults, mutated):
    _, sig, mut, _ = parse_schema(schema, "test")
    assert list(sig.parameters) == names
    got_kinds = "".join("K" if p.kind == p.KEYWORD_ONLY else "P" for p in sig.parameters.values())
    assert got_kinds == kinds
    got = [None if p.default is p.empty else p.default for p in sig.parameters.values()]
    assert got == defaults
    assert mut == mutated


@pytest.mark.parametrize("bad", ["foo(Tensor) -> Tensor", "foo Tensor x -> Tensor", "f(x) -> T"])
def test_schema_parser_rejects_malformed(bad):
    with pytest.raises(ValueError, match="Library.define"):
        parse_schema(bad, "Library.define")
