"""Complex input to descent.linalg (det, slogdet, inv, solve, cholesky, qr, lu and their
compositions) against torch 2.13: complex64 values and gradients of real losses that use every
output (float32-level tolerances), complex128 gradients against central finite differences
(descent's gradcheck, which checks complex numbers as (real, imaginary) pairs, as PyTorch's),
second order where the real op claims it, batched, empty and non-contiguous inputs, errors.
See docs/linalg.md, "Complex input"."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds
from descent.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(1234)


def crandn(*shape, dtype=np.complex128, rng=RNG):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


# ---------------------------------------------------------------------------------------------
# gradcheck with complex inputs and outputs


def test_gradcheck_checks_complex_inputs_and_outputs():
    z = ds.tensor(crandn(2, 3), requires_grad=True)
    w = ds.tensor(crandn(3, 2), requires_grad=True)
    r = ds.tensor(RNG.standard_normal((3, 2)), requires_grad=True)
    assert gradcheck(lambda a, b: a @ b, (z, w))
    assert gradcheck(lambda a, b: a @ b, (z, r))  # complex output of a real input
    assert gradcheck(lambda a: ds.exp(a).abs(), (z,))  # real output of a complex input
    assert gradgradcheck(lambda a, b: (a @ b).exp(), (z, w))


class _ForgetsConj(ds.autograd.Function):
    """z * z with the backward written for real input (2 z g, not 2 conj(z) g): wrong."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


def test_gradcheck_catches_a_missing_conjugate():
    z = ds.tensor(crandn(3), requires_grad=True)
    assert not gradcheck(_ForgetsConj.apply, (z,), raise_exception=False)
    with pytest.raises(RuntimeError, match="Jacobian mismatch for output 0"):
        gradcheck(_ForgetsConj.apply, (z,))
    # torch agrees on the verdict
    tz = torch.tensor(crandn(3), requires_grad=True)

    class TorchForgetsConj(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    assert not torch.autograd.gradcheck(TorchForgetsConj.apply, (tz,), raise_exception=False)


def test_explain_gradcheck_reports_complex_parts():
    from descent.explain import gradcheck as explain_gradcheck

    z = ds.tensor(crandn(2), requires_grad=True)
    res = explain_gradcheck(_ForgetsConj.apply, [z])
    assert not res.passed
    assert len(res.worst_index) == 2 and res.worst_index[-1] in (0, 1)  # (element, re/im)
    assert explain_gradcheck(lambda a: a * a, [z]).passed
