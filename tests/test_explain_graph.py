"""graph(): ops, shapes, dtypes and gradient norms as text and DOT; iterative traversal."""

import numpy as np

import descent as ds
from descent.explain import graph


def test_graph_text_shapes_dtypes_and_grad_norms():
    rng = np.random.default_rng(0)
    a = ds.tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    b = ds.tensor(rng.standard_normal((4, 2)).astype(np.float32), requires_grad=True)
    h = a @ b
    h.retain_grad()
    loss = ds.tanh(h).sum()
    view = graph(loss, params={"a": a, "b": b})
    loss.backward()
    by_name = {n.name: n for n in view.nodes}  # nodes are named as PyTorch names grad_fn
    mm = by_name["MatMulBackward"]
    assert set(by_name) == {"a", "b", "MatMulBackward", "TanhBackward", "SumBackward"}
    assert mm.shape == (3, 2) and mm.dtype == "float32"
    assert by_name["SumBackward"].shape == () and by_name["a"].kind == "leaf"
    # the gradient reaching MatMul's output is d loss / d h
    assert np.isclose(mm.grad_norm, np.linalg.norm(h.grad.numpy()), rtol=1e-6)
    assert np.isclose(by_name["a"].grad_norm, np.linalg.norm(a.grad.numpy()), rtol=1e-6)
    assert by_name["SumBackward"].grad_norm == 1.0
    assert sorted(mm.inputs) == sorted([by_name["a"].id, by_name["b"].id])
    text = str(view)
    assert "MatMulBackward" in text and "[a]" in text and "(3, 2)" in text
    dot = view.to_dot()
    assert dot.startswith("digraph") and dot.count("->") == 4 and "MatMulBackward" in dot
    assert len(view.to_dicts()) == 5


def test_graph_dtype_float64_and_before_backward():
    x = ds.tensor(np.ones(3), dtype=ds.float64, requires_grad=True)
    view = graph((x * x).sum())
    assert all(n.grad_norm is None for n in view.nodes)
    assert {n.dtype for n in view.nodes} == {"float64"}


def test_deep_chain_no_recursion():
    t = ds.tensor(1.0, requires_grad=True)
    h = t
    for _ in range(20000):
        h = h * 1.0
    view = graph(h)
    assert len(view) == 20001
    h.backward()
    assert view.nodes[-1].grad_norm == 1.0


def test_leaf_norms_are_this_pass_and_hooks_are_cleaned_up():
    a = ds.tensor([1.0, 2.0], requires_grad=True)
    (a * 100.0).sum().backward()  # an old gradient sits in a.grad
    unused = graph((a * 5.0).sum(), params={"a": a})  # never backpropagated
    assert unused.nodes[0].grad_norm is None  # not the stale .grad
    loss = (a * 3.0).sum()
    view = graph(loss, params={"a": a})
    loss.backward()
    leaf = view.nodes[0]
    assert leaf.name == "a" and np.isclose(leaf.grad_norm, np.linalg.norm([3.0, 3.0]))
    assert unused.nodes[0].grad_norm is None
    # view's fired hook was removed; the unused view's hook is still waiting
    assert len(a._hooks) == 1
