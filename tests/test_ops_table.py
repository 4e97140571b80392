"""Table-driven op tests: every spec in tests/specs drives forward, gradient, second-order,
PyTorch-agreement, broadcasting and dtype tests, and a guard fails for ops without a spec."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest
import torch

import descent as ds
import descent.ops
from descent.autograd import Function
from descent.explain import gradcheck, gradgradcheck
from specs import all_specs

SPECS = all_specs()
# Specs tagged "no_derivative" (floor_divide: PyTorch marks the result as requiring grad but its
# backward raises) skip the gradient checks; test_float32_matches_torch checks that both raise.
DIFFERENTIABLE = [s for s in SPECS if "no_derivative" not in s.tags]
SECOND = [s for s in DIFFERENTIABLE if s.second_order]
TORCH = [s for s in SPECS if s.torch_fn is not None]
BROADCAST = [s for s in SPECS if s.broadcast]


def _ids(specs):
    return [s.name for s in specs]


def _tensors(spec, arrays, dtype, requires_grad=True):
    diff = set(spec.diff_inputs())
    return [
        ds.tensor(a, dtype=dtype, requires_grad=requires_grad and i in diff)
        for i, a in enumerate(arrays)
    ]


# ---------------------------------------------------------------------------------------------
# Forward values (float64) against NumPy


@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_forward_matches_numpy(spec):
    arrays = spec.make_inputs(seed=0)
    out = spec.fn(*_tensors(spec, arrays, ds.float64, requires_grad=False))
    expected = np.asarray(spec.ref(*[a.copy() for a in arrays]))
    assert isinstance(out, ds.Tensor)
    assert out.shape == expected.shape, f"{spec.name}: shape {out.shape} vs {expected.shape}"
    assert out.dtype == ds.float64, f"{spec.name}: float64 inputs gave {out.dtype}"
    np.testing.assert_allclose(out.numpy(), expected, atol=spec.fwd_atol, rtol=spec.fwd_rtol)


# ---------------------------------------------------------------------------------------------
# Gradients (float64) against central finite differences


@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=_ids(DIFFERENTIABLE))
def test_gradient_matches_finite_differences(spec):
    arrays = spec.make_inputs(seed=1)
    gradcheck(
        spec.fn, _tensors(spec, arrays, ds.float64), eps=spec.eps, atol=spec.grad_atol,
        rtol=spec.grad_rtol, raise_on_failure=True,
    )  # fmt: skip


@pytest.mark.parametrize("spec", SECOND, ids=_ids(SECOND))
def test_second_order_matches_finite_differences(spec):
    arrays = spec.make_inputs(seed=2)
    gradgradcheck(
        spec.fn, _tensors(spec, arrays, ds.float64), eps=spec.eps, atol=spec.grad_atol,
        rtol=spec.grad_rtol, raise_on_failure=True,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# float32 forward and gradients against PyTorch


def _torch_compare(spec, arrays):
    diff = set(spec.diff_inputs())
    xs = _tensors(spec, arrays, ds.float32)
    ts = [torch.tensor(a, dtype=torch.float32, requires_grad=i in diff)
          for i, a in enumerate(arrays)]  # fmt: skip
    out = spec.fn(*xs)
    tout = spec.torch_fn(*ts)
    assert out.dtype == ds.float32, f"{spec.name}: float32 inputs gave {out.dtype}"
    assert tuple(out.shape) == tuple(tout.shape)
    np.testing.assert_allclose(
        out.numpy(), tout.detach().numpy(), atol=spec.torch_fwd_atol, rtol=spec.torch_fwd_rtol,
        err_msg=f"{spec.name}: forward differs from PyTorch",
    )  # fmt: skip
    # Backpropagate the same random cotangent through both.
    w = np.random.default_rng(3).standard_normal(out.shape).astype(np.float32)
    if "no_derivative" in spec.tags:
        assert out.requires_grad == tout.requires_grad
        with pytest.raises(RuntimeError):
            (tout * torch.tensor(w)).sum().backward()
        with pytest.raises(RuntimeError, match="not implemented"):
            (out * ds.tensor(w)).sum().backward()
        return
    (out * ds.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    for i in sorted(diff):
        g, tg = xs[i].grad, ts[i].grad
        assert g is not None, f"{spec.name}: input {i} got no gradient"
        assert g.dtype == ds.float32, f"{spec.name}: gradient dtype {g.dtype}"
        assert g.shape == xs[i].shape
        expected = tg.numpy() if tg is not None else np.zeros(arrays[i].shape, np.float32)
        np.testing.assert_allclose(
            g.numpy(), expected, atol=spec.torch_grad_atol, rtol=spec.torch_grad_rtol,
            err_msg=f"{spec.name}: gradient of input {i} differs from PyTorch",
        )  # fmt: skip


@pytest.mark.parametrize("spec", TORCH, ids=_ids(TORCH))
def test_float32_matches_torch(spec):
    _torch_compare(spec, [a.astype(np.float32) for a in spec.make_inputs(seed=4)])


# ---------------------------------------------------------------------------------------------
# Broadcasting over a grid of shapes (binary elementwise ops)

GRID = [
    ((3, 4), (4,)),
    ((4,), (3, 4)),
    ((3, 1), (1, 4)),
    ((2, 3, 4), (3, 1)),
    ((2, 1, 4), (3, 1)),
    ((), (2, 3)),
    ((2, 3), ()),
    ((1,), (2, 1, 3)),
    ((2, 3, 1), (2, 1, 5)),
]
BCAST_CASES = [(s, a, b) for s in BROADCAST for a, b in GRID]


@pytest.mark.parametrize(
    "spec,sa,sb", BCAST_CASES, ids=[f"{s.name}-{a}-{b}" for s, a, b in BCAST_CASES]
)
def test_broadcasting_grid(spec, sa, sb):
    arrays = spec.sample([sa, sb], seed=5)
    if spec.name == "where":  # keep the condition input away from its switching point
        arrays[0] = np.where(np.abs(arrays[0]) < 0.2, 0.5, arrays[0])
    expected = spec.ref(*[a.copy() for a in arrays])
    out = spec.fn(*_tensors(spec, arrays, ds.float64, requires_grad=False))
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12, rtol=1e-10)
    gradcheck(spec.fn, _tensors(spec, arrays, ds.float64), raise_on_failure=True)
    _torch_compare(spec, [a.astype(np.float32) for a in arrays])


# ---------------------------------------------------------------------------------------------
# dtypes: float32 stays float32 with Python scalars, float64 on request, no silent upcast

SCALAR_OPS = [
    ("add", lambda x: x + 2), ("radd", lambda x: 2.5 + x), ("sub", lambda x: x - 1.5),
    ("rsub", lambda x: 1 - x), ("mul", lambda x: x * 3.0), ("rmul", lambda x: 3 * x),
    ("div", lambda x: x / 7.0), ("rdiv", lambda x: 1.0 / x), ("pow", lambda x: x**2.5),
    ("rpow", lambda x: 2.0**x), ("maximum", lambda x: ds.maximum(x, 0.5)),
    ("minimum", lambda x: ds.minimum(0.5, x)), ("where", lambda x: ds.where(x > 1, x, 0.0)),
    ("clamp", lambda x: x.clamp(0.1, 0.9)), ("masked_fill", lambda x: x.masked_fill(x > 1, 1e3)),
    ("np_float64_scalar", lambda x: x * np.float64(1.5)), ("iadd", lambda x: x.__iadd__(1.5)),
    ("mean", lambda x: x.mean() + 1.0), ("std", lambda x: x.std() * 2),
    ("softmax", lambda x: ds.softmax(x * 2.0, -1)),
]  # fmt: skip


@pytest.mark.parametrize("dtype", [ds.float32, ds.float64, ds.float16], ids=str)
@pytest.mark.parametrize("name,fn", SCALAR_OPS, ids=[n for n, _ in SCALAR_OPS])
def test_python_scalars_never_change_dtype(name, fn, dtype):
    x = ds.tensor([[0.5, 1.5, 2.0]], dtype=dtype)
    assert fn(x).dtype == dtype
    if dtype != ds.float16:
        x = ds.tensor([[0.5, 1.5, 2.0]], dtype=dtype, requires_grad=True)
        y = fn(x * 1.0)
        assert y.dtype == dtype
        y.sum().backward()
        assert x.grad.dtype == dtype


def test_default_dtype_is_float32_and_float64_on_request():
    assert ds.tensor([1.0, 2.0]).dtype == ds.float32
    # an array keeps its dtype as in PyTorch (issue 12); Python floats give float32
    assert ds.tensor(np.array([1.0, 2.0])).dtype == ds.float64
    assert ds.tensor(3.5).dtype == ds.float32
    assert ds.tensor([1.0], dtype=ds.float64).dtype == ds.float64
    assert ds.zeros(2, dtype=ds.float64).dtype == ds.float64
    assert ds.randn(2, dtype=ds.float64).dtype == ds.float64
    x = ds.tensor([1.0, 2.0], dtype=ds.float64)
    for y in (x * 2, x.exp(), x.sum(), x @ x, ds.softmax(x, 0), x.mean(), x[0]):
        assert y.dtype == ds.float64


def test_mixed_float_dtypes_promote_like_torch():
    a = ds.ones(2, dtype=ds.float32)
    b = ds.ones(2, dtype=ds.float64)
    assert (a + b).dtype == ds.float64
    assert (torch.ones(2) + torch.ones(2, dtype=torch.float64)).dtype == torch.float64


def test_integer_tensors_with_float_scalars_compute_in_float32():
    i = ds.tensor([1, 2, 3])
    assert i.dtype == ds.int64
    assert (i + 1).dtype == ds.int64
    assert (i * 1.5).dtype == ds.float32
    assert (i / 2).dtype == ds.float32
    assert ds.exp(i).dtype == ds.float32
    np.testing.assert_allclose((i / 2).numpy(), [0.5, 1.0, 1.5])


def test_comparisons_return_bool_without_gradient():
    x = ds.tensor([1.0, -2.0, 3.0], requires_grad=True)
    for y, ref in [
        (x > 0, [True, False, True]), (x >= 1, [True, False, True]), (x < 0, [False, True, False]),
        (x <= -2, [False, True, False]), (x == 3, [False, False, True]),
        (x != 3, [True, True, False]), ((x > 0) & (x < 2), [True, False, False]),
        ((x > 2) | (x < 0), [False, True, True]), (~(x > 0), [False, True, False]),
        ((x > 0) ^ (x > 2), [True, False, False]),
    ]:  # fmt: skip
        assert y.dtype == ds.bool
        assert not y.requires_grad
        assert y.tolist() == ref


def test_argmax_argmin_are_integer_indices():
    x = ds.tensor([[1.0, 5.0, 3.0], [7.0, 0.0, 2.0]], requires_grad=True)
    assert x.argmax().item() == 3
    assert x.argmax(1).tolist() == [1, 0]
    assert x.argmin(dim=0).tolist() == [0, 1, 1]
    assert ds.argmax(x, 1, keepdims=True).shape == (2, 1)
    assert x.argmax(1).dtype == ds.int64
    assert not x.argmax(1).requires_grad


# ---------------------------------------------------------------------------------------------
# The guard: every op has a spec, and each spec exercises what it says it covers


def _op_modules():
    mods = [importlib.import_module(f"descent.ops.{m.name}")
            for m in pkgutil.iter_modules(descent.ops.__path__)]  # fmt: skip
    try:
        mods.append(importlib.import_module("descent.nn.functional"))
    except ModuleNotFoundError:
        pass
    return mods


def _functions_defined_in_ops():
    found = {}
    for mod in _op_modules():
        for name, cls in vars(mod).items():
            if (inspect.isclass(cls) and issubclass(cls, Function) and cls is not Function
                    and cls.__module__ == mod.__name__ and "forward" in cls.__dict__):  # fmt: skip
                found[name] = mod.__name__
    return found


# Function subclasses in descent.ops that are no differentiable op, so no spec can check their
# gradient; each names the tests that cover it instead.
_MARKER_NODES = {
    # its backward raises PyTorch's error for a stale no_grad / split view (by design):
    # tests/test_view_inplace_fuzz_s14.py (the stale-view cases) and tests/test_view_write.py
    "StaleView",
    # the record of an op without a gradient (comparisons, casts, indices) for descent.compile;
    # never a graph node: tests/test_compile_s18_inplace.py, tests/test_compile_s18_untracked.py
    "Untracked",
    # a data-dependent-shape result (nonzero, unique, bincount, ...) for descent.compile, guarded
    # by its shape; never a graph node: tests/test_compile_s22_fallbacks.py
    "Guarded",
}


def test_guard_every_op_has_a_spec():
    ops = _functions_defined_in_ops()
    assert len(ops) > 40, "the guard found suspiciously few ops"
    covered = {c for s in SPECS for c in s.covers} | _MARKER_NODES
    missing = sorted(f"{mod}.{name}" for name, mod in ops.items() if name not in covered)
    assert not missing, (
        f"ops without a spec in tests/specs: {missing}; add a Spec whose covers= names each"
    )


def _exercised(out) -> set[str]:
    seen, names, stack = set(), set(), [out._node]
    while stack:
        node = stack.pop()
        if node is None or not isinstance(node, Function) or id(node) in seen:
            continue
        seen.add(id(node))
        # a subclass that only renames an op (SubScalar is AddScalar, Permute is Transpose,
        # grad_fn_names.py) exercises its base op too
        names.update(c.__name__ for c in type(node).__mro__)
        stack.extend(node.parents)
    return names


@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_spec_exercises_what_it_covers(spec):
    out = spec.fn(*_tensors(spec, spec.make_inputs(seed=0), ds.float64))
    missing = set(spec.covers) - _exercised(out)
    assert not missing, f"{spec.name} says it covers {sorted(missing)} but never records them"
