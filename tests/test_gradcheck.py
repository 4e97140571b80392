"""descent.explain.gradcheck / gradgradcheck: they pass correct ops and catch planted bugs."""

from __future__ import annotations

import numpy as np
import pytest

import descent as ds
from descent.autograd import Function
from descent.explain import GradcheckError, GradcheckResult, gradcheck, gradgradcheck


class WrongSin(Function):
    """sin with a planted bug: d/dx sin(x) written as -cos(x)."""

    save_inputs = True

    def forward(self, x):
        return np.sin(x)

    def backward(self, gy, F):
        (x,) = self.inputs(F)
        return -gy * F.cos(x)


class WrongSecondInput(Function):
    """a * b with the gradient of b off by 10% (the first input is right)."""

    save_inputs = True

    def forward(self, a, b):
        return a * b

    def backward(self, gy, F):
        a, b = self.inputs(F)
        return gy * b, gy * a * 1.1


class FirstOrderOnlySin(Function):
    """sin whose backward is right but not differentiable: under create_graph it detaches x, so
    the second derivative comes out zero."""

    save_inputs = True

    def forward(self, x):
        return np.sin(x)

    def backward(self, gy, F):
        (x,) = self.inputs(F)
        if F.is_graph:
            x = x.detach()
        return gy * F.cos(x)


def x64(shape, seed=0, requires_grad=True):
    v = np.random.default_rng(seed).uniform(-1, 1, shape)
    return ds.tensor(v, dtype=ds.float64, requires_grad=requires_grad)


def test_passes_on_correct_ops_and_returns_a_result():
    r = gradcheck(lambda x, y: (ds.tanh(x) * y).sum(1), [x64((3, 4)), x64((3, 4), 1)])
    assert isinstance(r, GradcheckResult) and r.passed and bool(r)
    assert r.method == "full Jacobian" and r.order == 1 and r.dtype == "float64"
    assert r.max_abs_error < 1e-8 and r.n_compared == 3 * 24
    text = str(r)
    assert "PASSED" in text and "Sum" in text and "max abs error" in text


def test_catches_a_planted_wrong_backward_and_explains_where():
    x = x64((2, 3))
    r = gradcheck(WrongSin.apply, [x])
    assert not r.passed and not bool(r)
    assert r.worst_input == 0 and len(r.worst_index) == 2
    i = r.worst_index
    # The worst entry is on the diagonal of the Jacobian, where the error is 2 |cos(x)|.
    np.testing.assert_allclose(r.numeric, np.cos(x.numpy()[i]), rtol=1e-6)
    np.testing.assert_allclose(r.analytic, -np.cos(x.numpy()[i]), rtol=1e-6)
    assert np.isclose(r.max_abs_error, 2 * np.abs(np.cos(x.numpy())).max(), rtol=1e-6)
    text = str(r)
    assert "FAILED" in text and "WrongSin" in text and f"element {i}" in text


def test_worst_input_is_the_wrong_one():
    r = gradcheck(WrongSecondInput.apply, [x64((3,)), x64((3,), 1)])
    assert not r.passed and r.worst_input == 1
    np.testing.assert_allclose(r.max_rel_error, 0.1, rtol=1e-4)


def test_only_inputs_requiring_grad_are_checked():
    # Input 1 is wrong but not checked when only input 0 requires grad.
    r = gradcheck(WrongSecondInput.apply, [x64((3,)), x64((3,), 1, requires_grad=False)])
    assert r.passed and r.n_compared == 9


def test_raise_on_failure_raises_with_the_text():
    with pytest.raises(GradcheckError) as e:
        gradcheck(WrongSin.apply, [x64((2,))], raise_on_failure=True)
    assert "FAILED" in str(e.value) and "WrongSin" in str(e.value)
    assert not e.value.result.passed
    assert gradcheck(ds.sin, [x64((2,))], raise_on_failure=True).passed


def test_random_projections_for_large_inputs():
    big = x64((40, 30))
    r = gradcheck(lambda x: ds.tanh(x) * 2.0, [big])
    assert r.method == "random projections" and r.passed and r.n_compared == 8
    r = gradcheck(WrongSin.apply, [big], n_projections=4)
    assert r.method == "random projections" and not r.passed
    assert "random projection" in str(r) and r.worst_index is None


def test_float32_inputs_warn_and_are_checked_in_float64():
    x = ds.tensor([0.1, 0.2], requires_grad=True)
    with pytest.warns(UserWarning, match="float32.*float64.*rounding"):
        r = gradcheck(ds.exp, [x])
    assert r.passed and r.dtype == "float64"
    with pytest.warns(UserWarning, match="float32"):
        gradcheck(ds.exp, [x], dtype=np.float32, eps=1e-2, atol=1e-2, rtol=1e-2)


def test_gradgradcheck_passes_and_catches_a_non_differentiable_backward():
    r = gradgradcheck(lambda x: ds.sin(x) * x, [x64((2, 3))])
    assert r.passed and r.order == 2 and "second derivative" in str(r)
    assert gradcheck(FirstOrderOnlySin.apply, [x64((3,))]).passed  # first order is right
    r = gradgradcheck(FirstOrderOnlySin.apply, [x64((3,))])
    assert not r.passed and "FAILED" in str(r)
    with pytest.raises(GradcheckError):
        gradgradcheck(FirstOrderOnlySin.apply, [x64((3,))], raise_on_failure=True)


def test_gradgradcheck_with_several_inputs_and_given_cotangent():
    r = gradgradcheck(lambda a, b: ds.exp(a) * ds.sin(b), [x64((2,)), x64((2,), 1)],
                      grad_outputs=np.array([1.0, -2.0]))  # fmt: skip
    assert r.passed


def test_accepts_single_tensor_and_arrays():
    assert gradcheck(ds.exp, x64((3,))).passed
    assert gradcheck(lambda x: (x * x).sum(), np.array([1.0, 2.0])).passed
    with pytest.raises(ValueError, match="no floating-point"):
        gradcheck(lambda i: i * 1.0, ds.tensor([1, 2]))


def test_function_that_ignores_its_input():
    r = gradcheck(lambda x: ds.ones(3, dtype=ds.float64), [x64((2,))])
    assert r.passed and r.max_abs_error == 0


def test_non_contiguous_input_is_perturbed():
    """A transposed input used to be checked through a copy (numeric Jacobian 0)."""
    b = ds.randn(2, 3, dtype=ds.float64, requires_grad=True)
    assert gradcheck(lambda x: x * 2, [b.transpose(0, 1)]).passed
    assert gradcheck(lambda x: x * 2, [b.detach().t().requires_grad_()]).passed
