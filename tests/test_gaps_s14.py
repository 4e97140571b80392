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
