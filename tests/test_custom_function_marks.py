"""ctx.mark_dirty and ctx.mark_non_differentiable of ctx-style custom functions, as PyTorch's:
a dirty input returned by forward is the same object afterwards and carries the function's
node; non-differentiable outputs are outside the graph and backward gets zeros for them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds


def _dirty_program(lib):
    class AddOneInplace(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 2

    class ScaleFirst(lib.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            a.mul_(2)
            ctx.mark_dirty(a)
            return a, b * 3

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * 2, gb * 3

    x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    z = AddOneInplace.apply(y)
    p, q = ScaleFirst.apply(y, x * 1)
    (z.sum() + y.sum() + p.sum() * 2 + q.sum()).backward()
    return z is y, p is y, y.detach().numpy(), x.grad.numpy(), AddOneInplace


def test_mark_dirty_returns_the_input_object_in_the_graph():
    ours, ref = _dirty_program(ds), _dirty_program(torch)
    assert ours[0] and ours[1] and ref[0] and ref[1]
    np.testing.assert_array_equal(ours[2], ref[2])
    np.testing.assert_array_equal(ours[3], ref[3])  # 19: both uses of y go through the nodes
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        ours[4].apply(ds.tensor([1.0], requires_grad=True))


def _non_diff_program(lib):
    seen = []

    class Pair(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            a, b = x * 3, x * 2
            ctx.mark_non_differentiable(b)
            return a, b

        @staticmethod
        def backward(ctx, ga, gb):
            seen.append(gb.detach().numpy().copy())
            return ga * 3

    class Single(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            b = x * 2
            ctx.mark_non_differentiable(b)
            return b

        @staticmethod
        def backward(ctx, g):
            return g

    x = lib.tensor([1.0, 2.0], requires_grad=True)
    a, b = Pair.apply(x)
    c = Single.apply(x)
    (a.sum() + (b * b).sum()).backward()
    return (a.requires_grad, b.requires_grad, c.requires_grad), x.grad.numpy(), seen


def test_mark_non_differentiable_outputs_leave_the_graph():
    ours, ref = _non_diff_program(ds), _non_diff_program(torch)
    assert ours[0] == ref[0] == (True, False, False)
    np.testing.assert_array_equal(ours[1], ref[1])
    assert len(ours[2]) == len(ref[2]) == 1
    np.testing.assert_array_equal(ours[2][0], ref[2][0])  # zeros for the marked output
