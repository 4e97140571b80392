"""PyTorch-fidelity gaps closed in session 14, each compared with torch 2.13 (the oracle).

- torch.utils.swap_tensors refuses a tensor that a live autograd graph saved for backward
  (PyTorch's use-count check: a SavedVariable holds a reference); descent swapped silently.
"""

from __future__ import annotations

import pytest
import torch

import descent as ds

# -- swap_tensors and live autograd graphs -----------------------------------------------------


def _mul_self(L):
    a, b = L.ones(3, requires_grad=True), L.zeros(3)
    return (a, b), (a * a).sum()


def _mul_scalar(L):  # a * 2 saves nothing: allowed
    a, b = L.ones(3, requires_grad=True), L.zeros(3)
    return (a, b), (a * 2).sum()


def _add(L):  # a + 1 saves nothing: allowed
    a, b = L.ones(3, requires_grad=True), L.zeros(3)
    return (a, b), (a + 1).sum()


def _saved_second(L):  # the saved tensor as t2, a tensor without grad saved by mul
    x, w, b = L.ones(3), L.ones(3, requires_grad=True), L.zeros(3)
    return (b, x), (x * w).sum()


def _non_leaf(L):
    a, b = L.ones(3, requires_grad=True), L.zeros(3)
    h = a + 1
    return (h, b), (h * h).sum()


def _saved_output(L):  # exp saves its output's values, not the tensor: allowed
    a, b = L.ones(3, requires_grad=True), L.zeros(3)
    e = a.exp()
    return (e, b), e.sum()


def _after_backward(L):  # backward frees the saved tensors: allowed
    a, b = L.ones(3, requires_grad=True), L.zeros(3)
    y = (a * a).sum()
    y.backward()
    return (a, b), y


def _retained(L):  # retain_graph keeps them: refused
    a, b = L.ones(3, requires_grad=True), L.zeros(3)
    y = (a * a).sum()
    y.backward(retain_graph=True)
    return (a, b), y


def _no_grad(L):
    a, b = L.ones(3, requires_grad=True), L.zeros(3)
    with L.no_grad():
        y = a * a
    return (a, b), y


def _graph_deleted(L):
    a, b = L.ones(3, requires_grad=True), L.zeros(3)
    y = (a * a).sum()
    del y
    return (a, b), None


def _matmul(L):  # a weight saved by mm
    x, w = L.ones(2, 3), L.ones(3, 4, requires_grad=True)
    return (w, L.zeros(3, 4, requires_grad=True)), (x @ w).sum()


SWAP_CASES = [
    _mul_self,
    _mul_scalar,
    _add,
    _saved_second,
    _non_leaf,
    _saved_output,
    _after_backward,
    _retained,
    _no_grad,
    _graph_deleted,
    _matmul,
]


def _swap_outcome(L, case):
    (t1, t2), _graph = case(L)  # the graph stays alive while swapping
    try:
        L.utils.swap_tensors(t1, t2)
    except RuntimeError as e:
        return "refused", str(e)
    return "swapped", ""


@pytest.mark.parametrize("case", SWAP_CASES, ids=lambda c: c.__name__)
def test_swap_tensors_refuses_what_a_live_graph_saved(case):
    expected, _ = _swap_outcome(torch, case)
    got, message = _swap_outcome(ds, case)
    assert got == expected
    if got == "refused":
        assert "swap_tensors" in message and "saved for backward" in message
        assert "run backward first" in message


def test_swap_tensors_still_swaps_contents():
    a, b = ds.ones(3, requires_grad=True), ds.zeros(2)
    y = (a * 2).sum()
    ds.utils.swap_tensors(a, b)
    assert tuple(a.shape) == (2,) and not a.requires_grad
    assert tuple(b.shape) == (3,) and b.requires_grad
    assert y.item() == 6.0


def _mul_constant(L):  # x * w with x constant: PyTorch saves x only (for w's gradient)
    x, w = L.ones(3), L.ones(3, requires_grad=True)
    return (w, L.zeros(3)), (x * w).sum()


def _linear(L):
    x, w = L.ones(2, 3), L.ones(4, 3, requires_grad=True)
    b = L.zeros(4, requires_grad=True)
    return (w, L.zeros(4, 3)), L.nn.functional.linear(x, w, b).sum()


def _linear_input(L):
    x, w = L.ones(2, 3), L.ones(4, 3, requires_grad=True)
    return (x, L.zeros(2, 3)), L.nn.functional.linear(x, w).sum()


def _div_numerator(L):
    a, c = L.ones(3, requires_grad=True), L.full((3,), 2.0)
    return (a, L.zeros(3)), (a / c).sum()


def _div_denominator(L):
    a, c = L.ones(3), L.full((3,), 2.0, requires_grad=True)
    return (c, L.zeros(3)), (a / c).sum()


def _sin(L):
    a = L.ones(3, requires_grad=True)
    return (a, L.zeros(3)), a.sin().sum()


MORE_CASES = [_mul_constant, _linear, _linear_input, _div_numerator, _div_denominator, _sin]


@pytest.mark.parametrize("case", MORE_CASES, ids=lambda c: c.__name__)
def test_swap_tensors_refuses_only_what_pytorch_saves(case):
    assert _swap_outcome(ds, case)[0] == _swap_outcome(torch, case)[0]


def _conv_weight(L):
    x, w = L.ones(1, 2, 5, 5), L.ones(3, 2, 3, 3, requires_grad=True)
    return (w, L.zeros(3, 2, 3, 3)), L.nn.functional.conv2d(x, w).sum()


def _matmul_batched(L):
    x, w = L.ones(2, 2, 3), L.ones(3, 4, requires_grad=True)
    return (w, L.zeros(3, 4)), (x @ w).sum()


MORE_CASES += [_conv_weight, _matmul_batched]


# -- docstring-example gaps (tests/docexamples_known.py) ----------------------------------------


def _pytree(L):
    import importlib

    return importlib.import_module(f"{L.__name__}.utils._pytree")


def test_pytree_register_constant_matches_torch():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Config:
        norm: str

    class NoEq:
        pass

    for L in (torch, ds):
        pt = _pytree(L)
        pt.register_constant(Config)
        values, spec = pt.tree_flatten([Config("l2"), 1])
        assert values == [1] and spec.num_leaves == 1
        assert spec.children()[0].context == pt.ConstantNode(Config("l2"))
        assert pt.tree_unflatten([5], spec) == [Config("l2"), 5]
        assert pt.tree_structure([Config("l2"), 1]) == spec
        assert pt.tree_structure([Config("l1"), 1]) != spec
        with pytest.raises(TypeError, match="non-default `__eq__`"):
            pt.register_constant(NoEq)


def test_pytree_register_dataclass_matches_torch():
    import dataclasses

    @dataclasses.dataclass
    class Point:
        x: object
        y: object = None
        tag: str = dataclasses.field(default="p", init=False)

    class Plain:
        def __init__(self, a, b):
            self.a, self.b = a, b

    results = []
    for L in (torch, ds):
        pt = _pytree(L)
        pt.register_dataclass(Point)
        leaves, spec = pt.tree_flatten({"p": Point(L.tensor(0), None)})
        p2 = pt.tree_map(lambda t: t + 1, Point(L.tensor(0), L.tensor(1)))
        results.append((len(leaves), spec.children()[0].context, p2.x.item(), p2.y.item()))
        assert pt.tree_unflatten([L.tensor(3)], spec)["p"].y is None
        pt.register_dataclass(Plain, field_names=["a", "b"])
        assert pt.tree_leaves(Plain(1, [2, 3])) == [1, 2, 3]
        with pytest.raises(ValueError, match="field_names must be specified"):
            pt.register_dataclass(type("Other", (), {}))
        with pytest.raises(ValueError, match="Missing fields in `field_names`"):
            pt.register_dataclass(dataclasses.make_dataclass("Q", ["u", "v"]), field_names=["u"])
    assert results[0] == results[1]


def test_cpu_get_capabilities_matches_torch():
    t, d = torch.cpu.get_capabilities(), ds.cpu.get_capabilities()
    assert dict(d) == dict(t)
    with pytest.raises(TypeError):
        d["avx2"] = False  # an immutable mapping, as PyTorch's
    assert ds.cpu.get_capabilities() is d  # read once


def test_checkpoint_namespace_has_tree_map():
    import torch.utils.checkpoint as tc

    import descent.utils.checkpoint as dc

    tree = {"x": 7, "y": (42, 64), "z": None}
    assert dc.tree_map(lambda x: x is None, tree) == tc.tree_map(lambda x: x is None, tree)
    assert "tree_map" not in dc.__all__ and "tree_map" not in tc.__all__


@pytest.mark.parametrize("dtype", ["int64", "int32"])
def test_poisson_refuses_an_integer_rate_as_torch(dtype):
    for L in (torch, ds):
        m = L.distributions.Poisson(L.tensor([4], dtype=getattr(L, dtype)))
        assert m.rate.dtype == getattr(L, dtype)
        assert abs(m.log_prob(L.tensor([2])).item() - -1.9206) < 1e-4  # log_prob still works
        with pytest.raises(NotImplementedError, match='"poisson_cpu" not implemented for'):
            m.sample()
    ds.manual_seed(0)
    before = ds.rand(1).item()
    ds.manual_seed(0)
    with pytest.raises(NotImplementedError, match="Poisson.sample with an integer rate"):
        ds.distributions.Poisson(ds.tensor([4])).sample()
    assert ds.rand(1).item() == before  # refused before drawing


def _swap_detached(L):
    a, b = L.zeros(2), L.ones(2)
    d = a.detach()  # shares a's memory, does not hold a (PyTorch: a new TensorImpl)
    L.utils.swap_tensors(a, b)
    d.add_(5)  # writes the memory that b now holds
    return a.tolist(), b.tolist(), d.tolist(), b._version == d._version, a._version


def test_swap_tensors_with_a_detached_alias_matches_torch():
    assert _swap_detached(ds) == _swap_detached(torch)
