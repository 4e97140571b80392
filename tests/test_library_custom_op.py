"""descent.library (torch.library): custom_op with register_autograd / register_fake /
register_kernel, schema inference, torch.ops.<namespace> lookup and opcheck, compared with
PyTorch 2.13 running the same operator definitions."""

from __future__ import annotations

import typing
from collections.abc import Sequence

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")

_counter = iter(range(10**6))


def _define(lib, body, name="op", mutates_args=(), annotations=None):
    """Define the same custom op in `lib` (torch or descent) under a fresh name."""
    full = f"dtest{next(_counter)}::{name}"
    body.__annotations__ = annotations or {"x": lib.Tensor, "return": lib.Tensor}
    return lib.library.custom_op(full, mutates_args=mutates_args)(body)


def _numpy_sin(lib):
    def numpy_sin(x):
        return lib.from_numpy(np.sin(x.numpy(force=True)))

    op = _define(lib, numpy_sin, "numpy_sin")

    def setup_context(ctx, inputs, output):
        (x,) = inputs
        ctx.save_for_backward(x)

    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x.cos()

    return op, setup_context, backward


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_and_gradients_match_pytorch(dtype):
    a = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    outs = {}
    for lib in (torch, descent):
        op, setup, bw = _numpy_sin(lib)
        op.register_autograd(bw, setup_context=setup)
        x = lib.tensor(a, requires_grad=True)
        y = op(x)
        (y * lib.tensor(np.arange(12.0).reshape(3, 4).astype(dtype))).sum().backward()
        outs[lib.__name__] = (y.detach().numpy(), x.grad.numpy(), y.requires_grad)
    np.testing.assert_allclose(outs["descent"][0], outs["torch"][0], rtol=1e-6)
    np.testing.assert_allclose(outs["descent"][1], outs["torch"][1], rtol=1e-6)
    assert outs["descent"][2] and outs["torch"][2]


def test_without_register_autograd_backward_raises_as_pytorch():
    for lib in (torch, descent):
        op, _, _ = _numpy_sin(lib)
        y = op(lib.ones(3, requires_grad=True))
        assert y.requires_grad
        with pytest.raises(RuntimeError, match="no autograd formula was registered"):
            y.sum().backward()
        with lib.no_grad():
            assert not op(lib.ones(3, requires_grad=True)).requires_grad


def _sig1(x, y, s, n, b, name, xs, dims, o=None, k=3): ...
def _sig2(x, out): ...
def _sig3(x): ...
def _sig4(x, *, alpha=1.0): ...
def _sig5(x, d, dev): ...


def _hints(lib):
    T = lib.Tensor
    return [
        (_sig1, {"x": T, "y": T | None, "s": float, "n": int, "b": bool, "name": str,
                 "xs": list[T], "dims": Sequence[int], "k": int,
                 "o": typing.Optional[float],  # noqa: UP045
                 "return": tuple[T, T]}, ()),
        (_sig2, {"x": T, "out": T, "return": None}, {"out"}),
        (_sig3, {"x": T, "return": list[T]}, ()),
        (_sig4, {"x": T, "alpha": float, "return": T}, "unknown"),
        (_sig5, {"x": T, "d": lib.dtype, "dev": lib.device, "return": T}, ()),
    ]  # fmt: skip


@pytest.mark.parametrize("k", range(5))
def test_inferred_schemas_match_pytorch(k):
    schemas = []
    for lib in (torch, descent):
        fn, hints, mutates = _hints(lib)[k]
        fn.__annotations__ = hints
        schemas.append(lib.library.infer_schema(fn, mutates_args=mutates))
    assert schemas[0] == schemas[1]


@pytest.mark.parametrize("lib", [torch, descent], ids=["torch", "descent"])
def test_definition_errors(lib):
    def no_hint(x):
        return x

    with pytest.raises(ValueError, match="must have a type annotation"):
        lib.library.custom_op("dtest_err::a", mutates_args=())(no_hint)

    def f(x, y):
        return x + y

    f.__annotations__ = {"x": lib.Tensor, "y": lib.Tensor, "return": lib.Tensor}

    with pytest.raises(ValueError, match="were not found in the custom op's signature"):
        lib.library.custom_op(f"dtest_err{next(_counter)}::b", mutates_args={"z"})(f)
    with pytest.raises(ValueError):
        lib.library.custom_op("no_namespace", mutates_args=())(f)


@pytest.mark.parametrize("lib", [torch, descent], ids=["torch", "descent"])
def test_an_output_aliasing_an_input_is_refused(lib):
    def ident(x):
        return x

    op = _define(lib, ident, "ident")
    with pytest.raises(RuntimeError, match="may not alias any inputs"):
        op(lib.ones(2))


def test_mutating_op_and_multiple_outputs():
    results = []
    for lib in (torch, descent):
        def add_one_(x):
            x.add_(1)

        op = _define(lib, add_one_, "add_one_", mutates_args={"x"},
                     annotations={"x": lib.Tensor, "return": None})  # fmt: skip
        z = lib.zeros(3)
        assert op(z) is None

        def two(x, y, s=2.0):
            return x * s, y + s

        op2 = _define(lib, two, "two", annotations={"x": lib.Tensor, "y": lib.Tensor,
                                                    "s": float,
                                                    "return": tuple[lib.Tensor, lib.Tensor]})

        def setup(ctx, inputs, output):
            ctx.s = inputs[2]

        def bw(ctx, ga, gb):
            return ga * ctx.s, gb, None

        op2.register_autograd(bw, setup_context=setup)
        x, y = lib.ones(2, requires_grad=True), lib.ones(2, requires_grad=True)
        a, b = op2(x, y, s=3.0)
        (a.sum() + 2 * b.sum()).backward()
        results.append((z.numpy(), a.detach().numpy(), b.detach().numpy(), x.grad.numpy(),
                        y.grad.numpy()))  # fmt: skip
    for ours, theirs in zip(results[1], results[0], strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_torch_ops_namespace_and_register_kernel():
    def body(x):
        return x * 2

    op = _define(descent, body, "double")
    ns = op._namespace
    assert getattr(descent.ops, ns).double is op and getattr(descent.ops, ns).double.default is op
    with pytest.raises(AttributeError):
        descent.ops.no_such_namespace_xyz  # noqa: B018

    @op.register_kernel("cpu")
    def _(x):
        return x * 3

    np.testing.assert_array_equal(op(descent.ones(2)).numpy(), [3.0, 3.0])
    with op.set_kernel_enabled("cpu", enabled=False):
        np.testing.assert_array_equal(op(descent.ones(2)).numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(op(descent.ones(2)).numpy(), [3.0, 3.0])


def test_opcheck_passes_a_good_op_and_catches_undeclared_mutation_and_missing_fake():
    op, setup, bw = _numpy_sin(descent)
    op.register_autograd(bw, setup_context=setup)
    x = descent.randn(4, dtype=descent.float64, requires_grad=True)
    with pytest.raises(descent.library._OpCheckError, match="no fake impl"):
        descent.library.opcheck(op, (x,))
    op.register_fake(lambda x: descent.empty_like(x))
    assert set(descent.library.opcheck(op, (x,)).values()) == {"SUCCESS"}

    def sneaky(x):
        x.mul_(2)
        return x.clone()

    bad = _define(descent, sneaky, "sneaky")
    res = descent.library.opcheck(bad, (descent.ones(2),), raise_exception=False)
    assert "not in mutates_args" in res["test_schema"]

    def wrong_grad(ctx, grad):
        return grad  # d sin / dx is cos, not 1

    op.register_autograd(wrong_grad, setup_context=setup)
    res = descent.library.opcheck(op, (x,), raise_exception=False)
    assert res["test_gradients"] != "SUCCESS"


def test_custom_op_in_a_training_loop():
    op, setup, bw = _numpy_sin(descent)
    op.register_autograd(bw, setup_context=setup)
    lin = descent.nn.Linear(3, 3)
    opt = descent.optim.SGD(lin.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = op(lin(descent.ones(2, 3))).pow(2).sum()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
