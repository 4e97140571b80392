"""In-place ops on a tensor whose elements share memory (an unfold with a step smaller than its
size, an as_strided view), as PyTorch 2.13 computes them (session 24's view fuzz: 30 of its 49
mismatches; ops/overlap_rounds.py), each a small program run in descent and in PyTorch with the
outcomes compared (values, gradients, or the exception class):

* PyTorch refuses only a 0 stride over more than one element; otherwise its loop visits the
  elements one after another, each reading its location's current value: a unary op is applied
  once per element sharing the location (sigmoid twice), add_ adds every element's operand, and
  the last visit in TensorIterator's order (its dimensions sorted by stride, ties to the smaller
  size) decides copy_ and a rounded division;
* recorded, the write is PyTorch's CopySlices: the gradient of one visit per location (the op's
  backward applied once, with sigmoid's saved result the final value), every element's gradient
  for the other operands; a fill of an expanded view with a value that requires grad gives that
  value every element's gradient when the base does not require grad.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import descent


def _f64(L, v, rg=False):
    return L.tensor(v, dtype=L.float64, requires_grad=rg)


def _case_unary_applied_per_element(L):  # view fuzz 24100073338163, 15701, 12829
    y = _f64(L, [-0.5, -0.7, -1.7, 0.3])
    y.unfold(0, 2, 1).sigmoid_()
    z = _f64(L, [0.8, 0.3, 1.5, -1.9])
    z.unfold(0, 3, 1).pow_(3)
    return y, z


def _case_add_scalar_and_self_alpha(L):  # 24100073340818, 32991
    y = _f64(L, [[-1.6, 0.5, 1.3], [-0.4, 1.6, -1.0], [-0.5, 2.3, 1.3]])
    y.unfold(0, 2, 1).add_(0.5)
    z = _f64(L, [0.2, -2.5, 1.6, 1.0])
    with L.no_grad():
        v = z.unfold(0, 2, 1)
        v.add_(v, alpha=0.5)
    return y, z


def _case_add_tensor_int(L):  # 24100073321598, 28023
    y = L.tensor([[[-3]], [[-3]], [[3]], [[3]]])
    y.unfold(-3, 2, 1).add_(L.tensor([[[[0, 4]]], [[[-1, -3]]], [[[0, 5]]]]))
    return y


def _case_copy_last_visit_in_loop_order(L):
    y = L.zeros(4, dtype=L.float64)
    y.unfold(0, 3, 1).copy_(L.arange(6.0, dtype=L.float64).view(2, 3))  # (columns inside)
    z = L.zeros(4, dtype=L.float64)
    z.unfold(0, 2, 1).copy_(L.arange(6.0, dtype=L.float64).view(3, 2))
    return y, z


def _case_rounded_div(L):  # 24100073319005, 32609
    y = _f64(L, [1.258, 1.162, 0.276])
    y.unfold(0, 2, 1).div_(_f64(L, [[-0.517, -0.572], [-0.348, -0.734]]), rounding_mode="trunc")
    z = L.ones(4, dtype=L.float64)
    z.unfold(0, 3, 1).div_(_f64(L, [[2.0, 3, 4], [5, 6, 7]]), rounding_mode="floor")
    return y, z


def _case_index_add(L):  # 24100073335712
    y = L.tensor([[-5, 2, -3], [2, 3, 3], [4, -1, 3]])
    y.unfold(0, 2, 1).index_add_(0, L.tensor([0]), L.tensor([[[0, 2], [5, -2], [4, 1]]]))
    return y


def _case_recorded_unary_gradient_once(L):  # 24100073301893, 04002, 12790
    outs = []
    for op in ("sigmoid_", "pow_", "relu_", "exp_"):
        x = _f64(L, [0.5, -1.0, 1.5, 2.0], True)
        y = x * 1
        v = y.unfold(0, 2, 1)
        getattr(v, op)(*((2,) if op == "pow_" else ()))
        (y * _f64(L, [1.0, 2.0, 3.0, 4.0])).sum().backward()
        outs += [y, x.grad]
    return outs


def _case_recorded_clamp_as_strided(L):  # 24100073306460, 27708
    x = _f64(L, [0.1, -0.9, 0.7, 0.4, -0.8, -0.7], True)
    y = x * 2
    y.as_strided((3, 2), (1, 1), 2).clamp_(None, 0.5)
    (y * _f64(L, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])).sum().backward()
    return y, x.grad


def _case_recorded_binary(L):  # 24100073329674, 37194, 24631
    outs = []
    for op in ("add_", "sub_", "mul_", "div_"):
        x = _f64(L, [-0.3, -1.5, 1.1, -0.8, -0.5, 1.8], True)
        s = _f64(L, [[0.9, 1.7], [0.2, -0.5], [-0.3, -0.4]], op in ("add_", "sub_"))
        y = x * 1
        v = y.as_strided((3, 2), (1, 1), 0)
        if op == "sub_":
            v.sub_(s, alpha=2)
        else:
            getattr(v, op)(s)  # (mul_, div_ by a constant: the last visit's gradient)
        w = _f64(L, [[1.0, -1], [2, 0], [1, 3]])
        (y * _f64(L, [1.0, 2, 3, 4, 5, 6])).sum().add(v.mul(w).sum()).backward()
        outs += [y, x.grad, s.grad]
    return outs


def _case_recorded_copy(L):
    x = _f64(L, [0.5, 1.0, 1.5, 2.0], True)
    s = _f64(L, [[1.0, 2, 3], [4, 5, 6]], True)
    y = x * 1
    y.unfold(0, 3, 1).copy_(s)
    (y * _f64(L, [1.0, 2.0, 3.0, 4.0])).sum().backward()
    return y, x.grad, s.grad


def _case_fill_expanded_value_gradient(L):  # 24100073338793
    outs = []
    for mask in ([True, True], [False, True]):
        x = _f64(L, [[0.59, -0.69, 0.13]])
        v = x.as_strided((2,), (0,), 1)
        val = _f64(L, 0.66, True)
        v.masked_fill_(L.tensor(mask), val)
        (v * _f64(L, [0.15, 0.77])).sum().backward()
        outs += [x, val.grad]
    return outs


def _case_zero_stride_still_refused(L):
    y = _f64(L, [0.5, 1.0], True) * 1
    y.as_strided((2, 2), (0, 1)).sigmoid_()


def _case_index_add_source_saved(L):  # 24100073306046, 23291 (KNOWN in session 24)
    outs = []
    for x_rg in (False, True):
        x = _f64(L, [1.0, 2.0, 3.0], x_rg)
        s = _f64(L, [5.0, 6.0], True) * 1
        y = x * 1
        y.index_add_(0, L.tensor([0, 2]), s)
        s.add_(1)  # PyTorch saved source (for its shape): backward raises
        try:
            y.sum().backward()
            outs.append("ran")
        except RuntimeError:
            outs.append("raised")
    s = _f64(L, [5.0, 6.0]).clone()  # a source that needs no gradient is not saved
    y = _f64(L, [1.0, 2.0, 3.0], True) * 1
    y.index_add_(0, L.tensor([0, 2]), s)
    s.add_(1)
    y.sum().backward()
    return outs


# Session 25's view fuzz (40,000 programs from seed 25100001), fixed:


def _case_no_grad_view_refused_before_writing(L):  # 25100076322577, 06920
    x = _f64(L, [[-0.2, -1.3], [0.5, -1.3], [0.2, 0.5]], True)
    with L.no_grad():
        v = x.unfold(-2, 2, 1)
    try:
        v.div_(_f64(L, [[[-0.3, -0.6]], [[0.9, -0.2]]], True), rounding_mode="trunc")
    except RuntimeError:
        pass
    return x  # (unchanged: the error comes before the write)


def _case_add_alpha_partial_overlap(L):  # 25100076329871
    y = _f64(L, [[0.6, -0.4], [-0.2, 0.8]], True) * 1
    y.permute(1, 0).add_(y, alpha=0.5)


def _case_masked_fill_overlap_gradient(L):  # 25100076313277
    x = _f64(L, [0.5, 1.0, 1.5, 2.0, 2.5], True)
    y = x * 1
    y.unfold(0, 2, 1).masked_fill_(L.tensor([[True, False], [False, True], [False, False],
                                             [True, False]]), 2.0)  # fmt: skip
    (y * _f64(L, [1.0, 2.0, 3.0, 4.0, 5.0])).sum().backward()
    return y, x.grad


def _case_arithmetic_on_part_of_expanded(L):  # 25100076322607
    x = L.tensor([False]) * 1
    x.expand(2, 3)[0, :1:2].mul_(L.tensor(-3))
    y = _f64(L, [1.0]) * 1
    y.expand(2, 3)[0, :1].add_(2)
    return x, y, y._version


def _case_recorded_inplace_keeps_strides(L):  # 25100076303619
    y = (_f64(L, [[-0.2, 0.7], [0.9, -0.7], [0.2, 1.9], [1.6, -1.6]], True) * 1).mT.sin()
    y.index_add_(-1, L.tensor([2, 1]), _f64(L, [[1.9, 0.5], [-0.1, -1.1]]))
    z = (_f64(L, [[1.0, 2.0], [3.0, 4.0]], True) * 1).mT
    z.index_copy_(0, L.tensor([1]), _f64(L, [[5.0, 6.0]]))
    return y.stride(), z.stride(), z.contiguous().view(4)


def _case_plain_view_written_through_itself(L):  # 25100076306444
    x = _f64(L, [[1.9], [-0.3], [-0.5], [0.3]])
    v = x[-3, ::2]
    v[-1] = _f64(L, -0.4, True)  # x joins the graph through v
    w = v.view(())  # (an op used v: its node is made)
    v.add_(v)
    v.div_(0.5, rounding_mode="floor")  # (v is a view in the graph now: no leaf error)
    return v, x, w


def _case_write_through_view_of_permuted_base(L):  # 25100077326762
    x = L.arange(24.0, dtype=L.float64).reshape(2, 3, 4).requires_grad_()
    y = x.permute(2, 0, 1) * 1  # (keeps the permuted strides: neither C nor F order)
    y[1:, :, ::2].mul_(2)
    y.select(1, 0).add_(L.ones(4, 3, dtype=L.float64))
    y[:1, ...].copy_(_f64(L, -1.5))
    (y * L.arange(24.0, dtype=L.float64).reshape(4, 2, 3)).sum().backward()
    return y, x.grad


def _case_add_alpha_leaf_view_checked_first(L):  # 25100077344239
    x = _f64(L, [[0.2, -1.1], [-0.5, -1.6], [-0.2, -0.1], [0.5, -1.2]])
    v = x.unsqueeze(2)
    v[-3::2, :, :2] = _f64(L, [[-0.4], [-0.4]], True)
    v.add_(v, alpha=0.5)  # (v is not used since x joined the graph: PyTorch's leaf error)


def _case_view_checks_before_overlap(L):  # 25100078306750
    x = _f64(L, [1.0, -1.7, 0.9, 0.3], True)
    s = x.as_strided((3,), (0,), 3).split(3, 0)[0]  # an expanded output of split
    s.index_add_(-1, L.tensor([2, 1]), _f64(L, 0.8, True))  # (the split error, not the shapes')


def _case_setitem_into_detached_expanded(L):  # 25100079303166, 25100077333065
    y = _f64(L, [-0.5, 0.1, -1.3]).clone()
    d = y.as_strided((2,), (0,), 0).detach()
    d[-3:2:2] = _f64(L, 0.4, True)  # one element of the expanded view: written into y
    return y, d, d.requires_grad


CASES = {k[len("_case_") :]: v for k, v in list(globals().items()) if k.startswith("_case_")}


def _plain(out):
    if isinstance(out, (tuple, list)):
        return [_plain(o) for o in out]
    if isinstance(out, (torch.Tensor, descent.Tensor)):
        return np.asarray(out.detach().numpy()).round(10).tolist()
    return out


def _outcome(L, f):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (masked_fill_ of an expanded tensor warns in both)
            out = f(L)
    except Exception as e:  # noqa: BLE001 - compared with the other library's
        return type(e)
    return _plain(out)


@pytest.mark.parametrize("name", sorted(CASES))
def test_as_torch(name):
    t, d = _outcome(torch, CASES[name]), _outcome(descent, CASES[name])
    if isinstance(t, type):
        assert isinstance(d, type) and issubclass(d, t), (d, t)
    else:
        assert d == t
