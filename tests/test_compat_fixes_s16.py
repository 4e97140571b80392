"""Fixes found by session 16's new compat programs (tests/compat/programs), each differential
against PyTorch 2.13 (the oracle)."""

from __future__ import annotations

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")


def _run_both(fn):
    """fn(lib) -> a JSON-like result, run with descent and with torch."""
    return fn(descent), fn(torch)


# extending_autograd: a pack hook that returns a new tensor (`t.double()`, as the "Hooks for
# saved tensors" tutorial's compressing hooks) on a saved tensor whose version is not 0 (a
# weight written by copy_ under no_grad) made backward raise descent's "modified in place"
# error: the slot compared the new tensor's version (0) with the saved one's (2).
def test_saved_tensor_pack_to_new_tensor_after_inplace_writes():
    def run(lib):
        w = lib.zeros(3, 4, requires_grad=True)
        with lib.no_grad():
            w.copy_(lib.arange(12.0).reshape(3, 4) / 100)
            w.mul_(2)
        x = lib.ones(2, 4)
        with lib.autograd.graph.saved_tensors_hooks(
                lambda t: t.double() if t.is_floating_point() else t,
                lambda t: t.float() if t.dtype == lib.float64 else t):
            y = lib.nn.functional.linear(x, w).tanh().sum()
        y.backward()
        return w.grad.tolist()

    ours, theirs = _run_both(run)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


# extending_autograd: the private `_register_state_dict_hook` (used by many libraries) may return
# the state dict; descent raised "post-hook must return None" (the public hook's rule).
def test_private_state_dict_hook_may_return_a_dict():
    def run(lib):
        net = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.Linear(2, 1))

        def child_hook(module, state_dict, prefix, local_metadata):
            state_dict[prefix + "tag"] = lib.tensor(1)
            return state_dict

        def root_hook(module, state_dict, prefix, local_metadata):
            return {k: v for k, v in state_dict.items() if not k.endswith("bias")}

        net[0]._register_state_dict_hook(child_hook)
        keys_child_only = list(net.state_dict())
        net._register_state_dict_hook(root_hook)
        keys_root = list(net.state_dict())

        def public(module, state_dict, prefix, local_metadata):
            return state_dict

        net[1].register_state_dict_post_hook(public)
        try:
            net.state_dict()
            public_error = None
        except RuntimeError:
            public_error = "RuntimeError"
        return keys_child_only, keys_root, public_error

    ours, theirs = _run_both(run)
    assert ours == theirs


# extending_autograd: grad_fn.register_prehook ran before a tensor hook registered later on the
# node's output; PyTorch runs the tensor hooks first, then fills retain_grad's .grad, then the
# node's pre-hooks (engine.cpp: call_tensor_pre_hooks, then call_pre_hooks).
def test_tensor_hooks_run_before_node_prehooks():
    def run(lib):
        log = []
        x = lib.arange(4.0, requires_grad=True)
        mid = x.exp()
        mid.grad_fn.register_prehook(lambda g: (log.append(("pre", g[0].tolist())), (g[0] + 1,))[1])
        mid.register_hook(lambda g: g * 2)
        mid.retain_grad()
        mid.register_hook(lambda g: g - 0.5)
        (mid * lib.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
        return log, mid.grad.tolist(), x.grad.tolist()

    ours, theirs = _run_both(run)
    assert ours[0] == theirs[0]
    assert ours[1] == theirs[1]
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-6)
