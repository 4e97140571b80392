"""grad_fn.register_hook / register_prehook against torch: what the hooks see (grad_inputs,
grad_outputs), replacing gradients, removal, and create_graph."""

from __future__ import annotations

import torch

import descent as ds


def _run(lib):
    res = []
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    w = lib.tensor([3.0, 4.0], requires_grad=True)
    m = x * w
    y = (m * 2).sum()
    m.grad_fn.register_hook(
        lambda gi, go: res.append(
            ("post", [None if g is None else g.tolist() for g in gi], [g.tolist() for g in go])
        )
    )
    m.grad_fn.register_prehook(lambda go: res.append(("pre", [g.tolist() for g in go])))
    y.backward()
    res.append(("grads", x.grad.tolist(), w.grad.tolist()))
    x2 = lib.tensor([1.0, 2.0], requires_grad=True)
    m2 = x2 * lib.tensor([3.0, 3.0])
    h = m2.grad_fn.register_hook(lambda gi, go: (gi[0] * 10, gi[1]))
    m2.sum().backward()
    res.append(("replaced", x2.grad.tolist()))
    h.remove()
    x2.grad = None
    m3 = x2 * lib.tensor([3.0, 3.0])
    m3.grad_fn.register_prehook(lambda go: (go[0] * 0 + 1,))
    (m3 * 5).sum().backward()
    res.append(("pre-replaced", x2.grad.tolist()))
    x3 = lib.tensor([1.5], requires_grad=True)
    c = x3**3
    c.grad_fn.register_hook(lambda gi, go: (gi[0] * 2,))
    (g,) = lib.autograd.grad(c.sum(), x3, create_graph=True)
    (gg,) = lib.autograd.grad(g.sum(), x3)
    res.append(("create_graph", g.tolist(), gg.tolist()))
    return res


def test_node_hooks_match_torch():
    assert _run(ds) == _run(torch)


def test_removed_node_hooks_do_not_run():
    x = ds.tensor([1.0], requires_grad=True)
    y = x * 2
    calls = []
    h = y.grad_fn.register_hook(lambda gi, go: calls.append(1))
    h.remove()
    y.sum().backward()
    assert calls == [] and x.grad.tolist() == [2.0]
