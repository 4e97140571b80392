"""torch.autograd.graph.register_multi_grad_hook: the hook lives as long as its tensors (a
forgotten handle in PyTorch's own docstring example kept a global pass hook alive, which made
every later descent.compile step run eagerly), and backward(inputs=...) reports only the
gradients it computes, as torch 2.13's."""

from __future__ import annotations

import gc

import torch

import descent as ds
import descent.hooks


def _example(lib, log):
    a = lib.rand(2, 3, requires_grad=True)
    b = lib.rand(2, 3, requires_grad=True)
    c, d = a * b, a * b
    lib.autograd.graph.register_multi_grad_hook(
        (a, b, c, d), lambda grads: log.append([g is not None for g in grads])
    )
    c.sum().backward(retain_graph=True)
    c.sum().backward(inputs=(a,), retain_graph=True)


def test_docstring_example_matches_torch():
    ours, theirs = [], []
    _example(ds, ours)
    _example(torch, theirs)
    assert ours == theirs == [[True, True, True, False], [True, False, True, False]]


def test_hook_goes_with_its_tensors_and_compile_replays_again():
    before = len(descent.hooks._pass_hooks)
    _example(ds, [])
    gc.collect()
    assert len(descent.hooks._pass_hooks) == before
    # an fn whose globals hold the tensors (a docstring example's namespace): a reference
    # cycle through the tensors, collectable as in PyTorch
    ns: dict = {"ds": ds}
    exec(
        "a = ds.rand(2, requires_grad=True)\n"
        "def fn(grads):\n    pass\n"
        "h = ds.autograd.graph.register_multi_grad_hook((a,), fn)\n",
        ns,
    )
    del ns
    gc.collect()
    assert len(descent.hooks._pass_hooks) == before
    w = ds.randn(3, requires_grad=True)

    @ds.compile
    def step(x):
        loss = (w * x).sum()
        loss.backward()
        return loss

    for _ in range(5):
        step(ds.ones(3))
    assert step.stats["eager"] == 0 and step.stats["replays"] >= 1  # no hook forces eager
