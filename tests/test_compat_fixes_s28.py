"""Differences session 28's real programs found (helper-209, tests/compat/programs): each test
runs the PyTorch line and the descent line side by side and fails on the old behaviour."""

from __future__ import annotations

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")


def _both(fn):
    """fn(lib) for PyTorch and descent, as NumPy arrays (tuples of them)."""
    out = []
    for lib in (torch, descent):
        res = fn(lib)
        res = res if isinstance(res, tuple) else (res,)
        out.append([np.asarray(r.detach().numpy() if hasattr(r, "detach") else r) for r in res])
    return out


# p.data.<in-place op>(v) where v requires grad: PyTorch writes into p's storage (NCF's NeuMF
# loads its pre-trained GMF / MLP this way: `self.predict_layer.weight.data.copy_(0.5 *
# torch.cat([gmf.predict_layer.weight, mlp.predict_layer.weight], dim=1))`); descent rebound the
# `.data` tensor alone and p kept its old values.
@pytest.mark.parametrize(
    "op",
    [
        lambda d, v: d.copy_(v * 3),
        lambda d, v: d.mul_(v),
        lambda d, v: d.add_(v, alpha=2),
        lambda d, v: d.fill_(v.sum()),
        lambda d, v: d.__setitem__(0, v[1] * 5),
        lambda d, v: d.__setitem__((slice(None), 1), v[:, 0]),
        lambda d, v: d.masked_fill_(d > 0, v.sum()),
        lambda d, v: d.clamp_(max=v),
    ],
)
def test_data_inplace_with_a_grad_value_writes_into_the_parameter(op):
    def run(lib):
        p = lib.nn.Parameter(lib.tensor([[0.5, -1.0], [2.0, 0.25]]))
        v = lib.tensor([[1.5, 0.5], [-2.0, 3.0]], requires_grad=True)
        d = p.data
        op(d, v)
        (d * lib.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
        assert d.requires_grad and p.is_leaf and p.grad is None
        return p, d, v.grad

    theirs, ours = _both(run)
    for t, o in zip(theirs, ours, strict=True):
        np.testing.assert_array_equal(o, t)


def test_data_copy_of_a_grad_tensor_inside_module_init():
    # the NeuMF pattern: one module initialised from two others' parameters
    def run(lib):
        lib.manual_seed(0)
        g, m = lib.nn.Linear(3, 1), lib.nn.Linear(3, 1)
        with lib.no_grad():
            g.weight.copy_(lib.tensor([[1.0, 2.0, 3.0]]))
            m.weight.copy_(lib.tensor([[-1.0, 0.5, 4.0]]))
            g.bias.fill_(0.25)
            m.bias.fill_(-0.75)
        head = lib.nn.Linear(6, 1)
        head.weight.data.copy_(0.5 * lib.cat([g.weight, m.weight], dim=1))
        head.bias.data.copy_(0.5 * (g.bias + m.bias))
        out = head(lib.ones(2, 6))
        out.sum().backward()
        return head.weight, head.bias, out, head.weight.grad, g.weight.grad

    theirs, ours = _both(run)
    for t, o in zip(theirs, ours, strict=True):
        np.testing.assert_array_equal(o, t)


def test_data_keeps_its_own_version_counter():
    # PyTorch's `.data` shares storage, not the version counter: a node that saved p still runs
    # its backward (with the new values) after a write through p.data
    for lib in (torch, descent):
        p = lib.tensor([1.0, 2.0], requires_grad=True)
        w = lib.tensor([3.0, 4.0], requires_grad=True)
        y = (p * w).sum()
        p.data.copy_(w * 2)
        y.backward()
        np.testing.assert_array_equal(w.grad.numpy(), [6.0, 8.0])


# A custom Function whose forward has defaulted parameters, applied with fewer arguments, may
# return a gradient slot for every parameter: PyTorch drops the trailing Nones (ShakeDrop's
# `forward(ctx, x, gate, alpha, beta, p_drop=0.5, training=True)` applied to four tensors and a
# backward returning six gradients). descent raised "returned 6 gradients; forward took 4".
def _shake_drop(lib):
    class ShakeDrop(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, gate, p_drop=0.5, training=True):
            ctx.save_for_backward(gate)
            return x * gate if training else (1 - p_drop) * x

        @staticmethod
        def backward(ctx, grad_output):
            (gate,) = ctx.saved_tensors
            return grad_output * gate * 2, None, None, None

    return ShakeDrop


def test_function_backward_may_return_trailing_nones_for_defaulted_arguments():
    def run(lib):
        x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        out = _shake_drop(lib).apply(x, lib.tensor([1.0, 0.0, 1.0]))
        out.sum().backward()
        return out, x.grad

    theirs, ours = _both(run)
    for t, o in zip(theirs, ours, strict=True):
        np.testing.assert_array_equal(o, t)


def test_function_backward_extra_gradients_must_be_none():
    class Bad(descent.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale=2.0):
            return x * scale

        @staticmethod
        def backward(ctx, g):
            return g * 2, g  # a tensor for an argument that was not given

    x = descent.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="Bad.backward returned 2 gradients; forward took 1"):
        Bad.apply(x).sum().backward()


# remove_parametrizations of a tensor parametrized by several originals (weight_norm's g and
# v) computes the value in the caller's grad mode, as PyTorch: under no_grad (HiFi-GAN's
# inference export) the weight comes back as a plain tensor, registered as a buffer; with grad
# on, as a new Parameter. descent always made a Parameter (the generator counted 3241
# parameters where PyTorch's has 77).
@pytest.mark.parametrize("grad_mode", ["no_grad", "enable_grad"])
@pytest.mark.parametrize("frozen", [False, True])
def test_remove_weight_norm_parametrization_follows_grad_mode(grad_mode, frozen):
    def run(lib):
        lib.manual_seed(0)
        conv = lib.nn.utils.parametrizations.weight_norm(lib.nn.Conv1d(2, 3, 3))
        if frozen:
            conv.requires_grad_(False)
        with getattr(lib, grad_mode)():
            lib.nn.utils.parametrize.remove_parametrizations(conv, "weight")
        w = conv.weight
        return (
            [n for n, _ in conv.named_parameters()],
            [n for n, _ in conv.named_buffers()],
            type(w).__name__,
            w.requires_grad,
            w.grad_fn is None,
            tuple(w.shape),
        )

    assert run(descent) == run(torch)
