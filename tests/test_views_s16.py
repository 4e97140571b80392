"""Views and in-place ops under autograd, session 16: the fixes a new run of the view/in-place
fuzz (tests/test_view_inplace_fuzz_s14.py, seeds 21-26) led to, one small program each, run in
descent and in PyTorch 2.13 and compared (values, gradients, or the exception class), and a
second differential fuzz round (FUZZ2) over what the first does not generate: chains of view ops
(unflatten, movedim, swapaxes, flatten, narrow, select, split / chunk / unbind outputs, expand,
diagonal, as_strided, view_as_real), basic and advanced __setitem__, index_put_, masked_fill_,
fill_, clamp_, fill_diagonal_, `out=` arguments, integer and bool dtypes, 0-d and empty
tensors. `python tests/test_views_s16.py N SEED` runs N programs of FUZZ2 verbosely.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))

import descent  # noqa: E402
import test_view_inplace_fuzz_s14 as F  # noqa: E402 - the first round's runner and comparison


def _f64(L, v, rg=False):
    return L.tensor(v, dtype=L.float64, requires_grad=rg)


# ---------------------------------------------------------------------------------------------
# Writes through views whose elements share memory (PyTorch's assert_no_internal_overlap and
# CopySlices): fills of an expanded view run (a backward through them raises), only the written
# selection of x[i] = v is checked, fill_diagonal_ writes the diagonal alone, copy_ into an
# as_strided view whose elements overlap without a 0 stride runs (the last value in C order,
# every element gets its location's gradient)


def _case_zero_expanded_then_backward(L):
    x = _f64(L, [1.0, 2.0, 3.0, 4.0], True)
    y = x.clone()
    y.expand(2, 4).zero_()
    (y * L.arange(4.0, dtype=L.float64)).sum().backward()  # raises in both


def _case_zero_expanded_values(L):
    x = _f64(L, [1.0, 2.0, 3.0, 4.0], True)
    y = x.clone()
    y.expand(2, 4).zero_()
    return y, y.requires_grad, y.grad_fn is None


def _case_masked_fill_as_strided_zero_stride(L):
    x = _f64(L, [[0.881], [0.616], [1.938], [0.867]], True)
    y = x * 1
    v = y.as_strided((3, 3), (1, 0), 1)
    v.masked_fill_(L.tensor([[False] * 3, [False] * 3, [False, True, False]]), 1)
    return y, v


def _case_masked_fill_expanded_complex(L):
    y = L.tensor(1.0 + 2j, dtype=L.complex128, requires_grad=True).clone()
    y.expand(2).masked_fill_(L.tensor([False, True]), L.tensor(0.5 - 1j, dtype=L.complex128))
    return y


def _case_setitem_selection_of_expanded(L):
    x = _f64(L, [1.0, 2.0, 3.0], True)
    y = x.clone()
    e = y.expand(2, 3)
    e[0, 0] = 5.0
    (y * L.arange(3.0, dtype=L.float64)).sum().backward()
    return y, x.grad


def _case_setitem_row_of_expanded(L):
    x = _f64(L, [1.0, 2.0, 3.0], True)
    v = _f64(L, [4.0, 5.0, 6.0], True)
    y = x.clone()
    y.expand(2, 3)[0] = v * 2
    (y * L.arange(3.0, dtype=L.float64)).sum().backward()
    return y, x.grad, v.grad


def _case_setitem_column_of_expanded(L):
    y = _f64(L, [1.0, 2.0, 3.0], True).clone()
    y.expand(2, 3)[:, 0] = 5.0


def _case_setitem_whole_zero_stride_nograd(L):
    x = L.tensor([1.0, 2.0, 3.0])
    x.as_strided((2, 1), (0, 1), 0)[...] = 0.5


def _case_setitem_int_zero_stride(L):
    y = L.tensor([1, 2, 3]) * 1
    y.as_strided((3,), (0,), 0)[:] = -1


def _case_setitem_part_zero_stride_nograd(L):
    x = L.tensor([1.0, 2.0, 3.0])
    v = x.as_strided((3, 2), (1, 0), 0)
    v[:, 1] = 0.5
    v[1:, :1] = -1.0
    v[L.tensor([1])] = 7.0  # (an array index: PyTorch's index_put_ does not check)
    return x


def _case_fill_diagonal_expanded(L):
    y = L.tensor([[True], [False], [False]]) * 1
    y.expand(-1, 2).fill_diagonal_(1)
    return y


def _case_fill_diagonal_zero_stride_recorded(L):
    x = _f64(L, [1.0, 2.0, 3.0, 4.0], True)
    y = x.clone()
    y.as_strided((3, 3), (1, 0), 0).fill_diagonal_(7.0)
    (y * L.arange(4.0, dtype=L.float64)).sum().backward()
    return y, x.grad


def _case_fill_diagonal_zero_stride_nograd(L):
    y = L.tensor([1.0, 2.0, 3.0, 4.0])
    y.as_strided((3, 3), (1, 0), 0).fill_diagonal_(7.0)
    return y


def _case_fill_diagonal_0d_as_strided(L):
    y = _f64(L, 0.208, True).clone()
    y.as_strided((1, 3), (1, 0), 0).fill_diagonal_(1)
    return y


def _case_copy_into_overlapping_as_strided(L):
    x = L.arange(9.0, dtype=L.float64, requires_grad=True)
    c = (L.arange(9.0, dtype=L.float64).reshape(3, 3) * 10).requires_grad_()
    y = x.clone()
    y.as_strided((3, 3), (1, 1), 0).copy_(c)
    (y * L.arange(9.0, dtype=L.float64)).sum().backward()
    return y, x.grad, c.grad


def _case_fill_overlapping_as_strided(L):
    x = _f64(L, [1.0, 2.0, 3.0, 4.0, 5.0], True)
    y = x.clone()
    y.as_strided((3, 3), (1, 1), 0).zero_()
    y.as_strided((2, 2), (1, 1), 1).fill_(2.0)
    (y * L.arange(5.0, dtype=L.float64)).sum().backward()
    return y, x.grad


def _case_setitem_overlapping_unfold(L):
    x = L.tensor([[1 + 2j, 3 - 1j, 0.5j], [2.0, 1j, -1.0]], dtype=L.complex128,
                 requires_grad=True)  # fmt: skip
    y = x.clone()
    y.unfold(0, 2, 1)[...] = 3
    return y


# Rounded division saves its inputs as PyTorch's DivBackward2 does (backward reads neither)


def _case_div_floor_by_itself(L):
    y = _f64(L, [0.5, -0.6, 0.7], True).clone()
    y.div_(y, rounding_mode="floor")
    y.sum().backward()


def _case_div_trunc_divisor_changed(L):
    x = _f64(L, [0.5, -0.6, 0.7], True)
    c = _f64(L, [2.0, 3.0, 4.0])
    z = x.div(c, rounding_mode="trunc")
    c.mul_(2)
    z.sum().backward()


def _case_div_floor_dividend_changed(L):  # (the dividend is saved only for the divisor's grad)
    x = _f64(L, [0.5, -0.6, 0.7], True)
    y = x.clone()
    z = y.div(_f64(L, 2.0), rounding_mode="floor")
    y.mul_(2)
    z.sum().backward()
    return x.grad


def _case_div_trunc_backward_twice(L):
    x = _f64(L, [0.5, -0.6, 0.7], True)
    s = x.div(_f64(L, [2.0, 1.0, 3.0]), rounding_mode="trunc").sum()
    s.backward()
    s.backward()


# A view made under no_grad of a tensor that requires grad requires grad, but has no gradient
# edge (PyTorch's): its .grad stays None and the ops using it save nothing for it, so a second
# backward without retain_graph runs


def _case_nograd_view_backward_twice(L):
    x = _f64(L, [[1.0, 2.0], [3.0, 4.0]], True)
    with L.no_grad():
        v = x[0]
    s = (v * _f64(L, [1.0, 2.0])).sum()
    s.backward()
    s.backward()
    s = (v * v).sum()
    s.backward()
    s.backward()
    return v.requires_grad, v.grad is None, x.grad is None


def _case_nograd_view_of_product_backward_twice(L):
    x = _f64(L, [0.5, -1.0, 2.0], True)
    y = x * x
    with L.no_grad():
        v = y.narrow(0, 0, 2)
    s = (v * _f64(L, [0.75, 0.14])).sum()
    s.backward()
    s.backward()
    return x.grad is None, v.grad is None


def _case_nograd_view_grad_unused(L):
    x = _f64(L, [1.0, 2.0], True)
    with L.no_grad():
        v = x[:1]
    return L.autograd.grad((v * 2).sum(), [v], allow_unused=True)[0] is None


def _case_nograd_view_grad_raises(L):
    x = _f64(L, [1.0, 2.0], True)
    with L.no_grad():
        v = x[:1]
    L.autograd.grad((v * 2).sum(), [v])


# where and masked_fill read only the condition / mask in backward (PyTorch saves only it)


def _case_masked_fill_value_is_view_of_target(L):
    y = _f64(L, -0.78, True).clone()
    v = y.view(())
    y.masked_fill_(L.tensor(True), v)
    (v * 2 + y).sum().backward()


def _case_masked_fill_input_changed(L):
    x = _f64(L, [1.0, 2.0], True)
    y = x.clone()
    z = y.masked_fill(L.tensor([True, False]), 3.0)
    y.mul_(2)
    z.sum().backward()
    return x.grad


def _case_where_branch_changed(L):
    x = _f64(L, [1.0, 2.0], True)
    y = x.clone()
    z = L.where(L.tensor([True, False]), y, 0.0)
    y.mul_(2)
    z.sum().backward()
    return x.grad


def _case_where_condition_changed(L):
    x = _f64(L, [1.0, 2.0], True)
    m = L.tensor([True, False])
    z = L.where(m, x, 0.0)
    m.logical_not_()
    z.sum().backward()


# A view taken of a tensor outside the graph that joined it since is a leaf in PyTorch (an
# in-place op on it raises) only until an op uses it, which makes its grad_fn


def _case_plain_view_inplace_raises(L):
    x = _f64(L, [-0.5, 0.4])
    v = x[:1]
    x.add_(_f64(L, [1.0, 2.0], True))
    v.add_(1)


def _case_plain_view_used_by_view_op(L):
    x = _f64(L, [[-0.527], [-0.397]])
    v = x[:, -1]
    x.add_(_f64(L, [[-0.431], [0.786]], True))
    w = v.split(1)[0]
    v.div_(2)
    return v, w


def _case_plain_view_used_by_op(L):
    x = _f64(L, -0.481)
    v = x.view(1)
    x.add_(_f64(L, 0.894, True))
    p = v.pow(3)
    v.add_(-1.5)
    return v, p


def _case_plain_view_fill_diagonal(L):
    y = _f64(L, [[-2.8, 0.01], [-1.3, -0.36]]) * 1
    d = y.detach()
    v = d[::3, ...]
    d.masked_fill_(L.tensor([False, True]), _f64(L, -0.287, True))
    v.fill_diagonal_(1, wrap=True)
    return d, v


def _case_pow_empty_expanded(L):  # (an empty expanded tensor takes any write: a no-op)
    x = L.tensor([[5, -1, -1], [-1, 4, -5]])
    v = x.narrow(-2, 1, 0).expand(0, -1)
    v.pow_(3)
    return v._version, x._version


# Overlap of an operand with the written-to tensor (PyTorch's get_overlap_status), through
# as_strided and unfold views too (their NumPy base is an adapter object), and for x[i] = v


def _case_add_unfold_from_expand(L):
    x = L.tensor([-1, -3])
    x.unfold(-1, 2, 1).add_(x.expand(1, -1))


def _case_add_as_strided_transposed(L):
    y = _f64(L, [-0.199], True).clone()
    a = y.as_strided((1, 1), (1, 2), 0)
    a.transpose(-2, 1).add_(a)


def _case_setitem_from_overlapping_slice(L):
    x = _f64(L, [1.0, 2.0, 3.0, 4.0])
    x[1:3] = x[0:2]


def _case_setitem_from_overlapping_slice_recorded(L):
    x = _f64(L, [1.0, 2.0, 3.0, 4.0], True).clone()
    x[1:3] = x[0:2]


def _case_setitem_from_same_or_disjoint_slice(L):
    x = _f64(L, [1.0, 2.0, 3.0, 4.0])
    x[1:3] = x[1:3]
    x[::2] = x[1::2]
    return x


def _case_setitem_from_overlapping_other_shape(L):  # (0-d: a fill; other shape: expanded)
    x = L.tensor([0, 1])
    x[:1] = x[0]
    y = L.tensor([[0, -4, 1, -3], [-2, 3, 5, 0], [5, -4, 4, 0], [3, -4, 2, -3]])
    y[...] = y.unbind(-2)[3]
    z = _f64(L, [1.0, 2.0, 3.0, 4.0])
    z[1:3] = z[0:1]
    return x, y, z


def _case_setitem_as_strided_from_unsqueeze(L):
    x = L.tensor(5)
    x.as_strided((1, 1), (2, 1), 0)[-1, ::3] = x.unsqueeze(-1)


# index_add_: PyTorch checks a view's in-place rules first, then the shapes, then the overlaps


def _case_index_add_multi_output_view_bad_source(L):
    u = (_f64(L, [[1.0, 2.0], [3.0, 4.0]]) * 1).unbind(-1)[1]
    u.index_add_(-1, L.tensor([0, 1]), _f64(L, -0.06, True))


def _case_index_add_expanded_bad_source(L):
    v = (_f64(L, 0.6, True) * 1).as_strided((3,), (0,), 0)
    v.index_add_(0, L.tensor([2, 2]), _f64(L, -0.75), alpha=2)


# Found by FUZZ2: view(dtype) shares the version counter; index_put_ bumps the family once;
# out= resizes in out's memory (a tensor sharing it sees the write) and refuses an expanded out;
# unflatten infers -1 from the dimension; index_put_ refuses a value overlapping x


def _case_view_dtype_versions(L):
    x = L.tensor([[5, 5, 4], [-5, -1, 5]])
    v = x.view(L.float64)
    v[0, 0] = 2.5
    x.add_(1)
    return x._version, v._version, x


def _case_index_put_versions(L):
    y = L.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=L.complex128) * 1
    w = y.mT
    y.index_put_((L.tensor([0]),), L.tensor(2 - 1j, dtype=L.complex128), accumulate=True)
    with L.no_grad():
        y.index_put_((L.tensor([1]), L.tensor([0])), L.tensor(1j, dtype=L.complex128))
    return y._version, w._version, w


def _case_out_resized_in_place(L):
    x = L.tensor([[3, -5, -3], [-1, 5, 2], [3, -4, 3], [-3, -3, 4]])
    v = x.mT
    L.add(L.tensor([5, -2, -5]), -3, out=x)
    d = L.tensor([[3], [1], [-2]])
    L.clamp(L.tensor([-3]), min=-1, out=d.detach())
    e = L.zeros(3, 0, dtype=L.int64)
    L.clamp(L.tensor([0, 4, -4]), 0, 2, out=e.mT)
    return x, v, x._version, v._version, d, e._version


def _case_out_expanded(L):
    L.mul(L.tensor(-4), L.tensor(-3), out=L.tensor(-3).expand(2))


def _case_out_empty_expanded(L):
    x = L.zeros(0, 3, 3, dtype=L.int64).expand(0, -1, -1)
    L.clamp(L.zeros(0, 3, 3, dtype=L.int64), -1, 2, out=x)
    return x._version


def _case_unflatten_empty(L):
    return list(L.zeros(0, 3, 3).expand(0, -1, -1).unflatten(-1, (1, -1)).shape)


def _case_fill_grad_value_expanded(L):
    w = _f64(L, 1.3, True)
    _f64(L, [[1.0], [2.0]]).expand(2, 2).fill_(w)


def _case_index_put_value_is_target(L):
    y = _f64(L, [0.275], True).clone()
    y.index_put_((L.tensor([-1]),), y)


def _case_setitem_array_index_value_is_target(L):
    x = L.tensor([[True, True], [True, False]])
    x[:, L.tensor([True, False])] = x


def _case_setitem_mask_one_value_is_target(L):  # (a fill: PyTorch's masked_fill_ path)
    x = _f64(L, [-0.136, -0.043]) * 1
    v = x[0::3]
    v[(L.tensor([True]),)] = v
    return x


def _case_index_put_repeated_rows_grads(L):  # (every value gets its row's gradient)
    x = _f64(L, [-1.108, 2.0, 3.0], True)
    v = _f64(L, [[-1.056, 1.0], [-0.832, 2.0], [0.5, 3.0]], True)
    y = L.zeros(3, 2, dtype=L.float64) + x[:, None]
    y.index_put_((L.tensor([0, -3, 1]),), v)
    (y * _f64(L, [[0.82, 1.0], [2.0, 3.0], [4.0, 5.0]])).sum().backward()
    g = L.autograd.grad((L.index_put(x, (L.tensor([0, 0, 2]),), v[:, 0]) ** 2).sum(), [x, v],
                        create_graph=True)  # fmt: skip
    return y, x.grad, v.grad, L.autograd.grad(sum((t**2).sum() for t in g), [x, v])


def _case_out_overlaps_input(L):
    x = L.tensor([[4, -3], [3, -2], [-5, 1]])
    L.neg(x.mT, out=x)


def _case_out_overlaps_input_in_part(L):
    x = L.tensor([1, 2, 3, 4])
    L.add(x[1:], 1, out=x[:3])


def _case_out_same_as_input(L):
    x = L.tensor([1, 2, 3, 4])
    L.add(x, x, out=x)
    L.clamp(x, 0, 5, out=x)
    return x


def _case_index_put_expanded(L):
    x = L.tensor([[True, False, False]])
    x.expand(2, 1, -1).index_put_((L.tensor([-2]), L.tensor([-1])), L.tensor(True))
    y = L.tensor([1.0, 2.0])
    y.expand(3, 2).index_put_((L.tensor([1, 2]), L.tensor([0, 1])), L.tensor([5.0, 6.0]))
    return x, y


def _case_index_put_expanded_recorded(L):
    y = _f64(L, -0.98, True) * 1
    e = y.expand(2)
    e.index_put_((L.tensor([-2]),), _f64(L, [0.899], True))
    return y, e


def _case_index_put_expanded_backward(L):
    x = _f64(L, -0.98, True)
    y = x * 1
    y.expand(2).index_put_((L.tensor([-2]),), _f64(L, [0.899], True))
    y.sum().backward()


def _case_setitem_through_plain_view(L):  # (t[i] = v writes through a view of t: t is plain)
    y = _f64(L, [[-1.0], [-2.1], [-0.04], [0.8]]) * 1
    v = y.mT
    v[:, 1] = _f64(L, 0.079, True)
    v.addcmul_(v, _f64(L, [[-0.98, 0.45, -0.34, -0.34]], True))


def _case_lerp_addcmul_overlap(L):  # (the gaps_math in-place ops check their operands too)
    x = _f64(L, [[1.0, 2.0], [3.0, 4.0]])
    x.lerp_(x, 0.5)
    out = []
    for f in (lambda: x.lerp_(x.mT, 0.25), lambda: x.addcmul_(x.mT, x, value=0.5),
              lambda: x.addcdiv_(x[0], x.clone() + 1)):  # fmt: skip
        try:
            f()
            out.append(None)
        except RuntimeError:
            out.append("raised")
    return x, out


def _case_setitem_mask_value_dtype(L):  # (other dtype: only a one-element value is a fill)
    out = []
    for index, value in [(L.tensor([True, False, True]), L.tensor([1])),
                         ((slice(None), L.tensor([True, False, True])), L.tensor(1)),
                         (L.tensor([True, False, True]), L.tensor([[1, 2, 3]])),
                         ((0, L.tensor([True, False, True])), L.tensor([1, 2]))]:  # fmt: skip
        x = L.zeros(3, 3)
        try:
            x[index] = value
            out.append(x)
        except RuntimeError:
            out.append("raised")
    return out


def _case_copy_same_data_into_expanded(L):  # (PyTorch's is_same_data: nothing to copy)
    x = L.tensor([[False, False, False]])
    e = x.expand(2, 3)
    e.chunk(1, 1)[0].copy_(e)
    y = L.tensor([[1.0], [2.0]])
    f = y.expand(-1, 3)
    f[...] = f
    return x, x._version, y, y._version


def _case_setitem_mask_fill_expanded_recorded(L):
    x = _f64(L, -0.2)
    e = x.detach().expand(2)
    e[L.tensor([False, False])] = _f64(L, 0.66, True)
    y = _f64(L, [1.0, 2.0], True) * 1
    y.expand(3, 2)[L.tensor([[True, False], [False, False], [False, True]])] = _f64(L, 5.0, True)
    return x, y


def _case_setitem_overlap_after_broadcast(L):  # (a broadcast adding only size-1 dims: checked)
    x = L.tensor(5)
    x.as_strided((1, 1), (2, 1), 0)[...] = x.unsqueeze(-1)


def _case_setitem_ellipsis_then_inplace(L):  # (x[...] = v writes into x itself: not plain)
    y = _f64(L, -0.744).clone()
    v = y.as_strided((1,), (0,), 0)
    v[...] = _f64(L, [-0.048], True)
    v.pow_(2)
    return y, v


def _case_copy_same_data_from_grad_view(L):  # (recorded: src requires grad)
    x = L.tensor([[1 + 2j, 3 - 1j, 0.5j], [2.0, 1j, -1.0]], dtype=L.complex128,
                 requires_grad=True)  # fmt: skip
    v = x.diagonal(-2, 1, 0)
    d = v.detach()
    d.copy_(v)
    return d.requires_grad, d.grad_fn is None, d._version


CASES = {k[len("_case_"):]: v for k, v in list(globals().items()) if k.startswith("_case_")}


def _np(t):
    if isinstance(t, torch.Tensor):
        t = t.detach()
        if t.is_conj():
            t = t.resolve_conj()
        return t.numpy()
    return np.asarray(t.detach().numpy())


def _plain(out):
    if isinstance(out, (tuple, list)):
        return [_plain(o) for o in out]
    if isinstance(out, (torch.Tensor, descent.Tensor)):
        a = _np(out)
        return (a.round(12) if a.dtype.kind in "fc" else a).tolist()
    return out


def _outcome(L, f):
    try:
        out = f(L)
    except Exception as e:  # noqa: BLE001 - compared with the other library's
        return type(e)
    return _plain(out)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(CASES))
def test_case_as_torch(name):
    t, d = _outcome(torch, CASES[name]), _outcome(descent, CASES[name])
    if isinstance(t, type):
        assert isinstance(d, type) and issubclass(d, t), (d, t)
    else:
        assert d == t




# ---------------------------------------------------------------------------------------------
# FUZZ2: a second differential round, in the first round's program form (steps "leaf", "view",
# "inplace", "save", "hook", "backward"; tests/test_view_inplace_fuzz_s14.py compares and
# documents it) with view and in-place ops the first does not generate. A step's slot operands
# are ("slot", k) entries of its arguments, so F's shrinking renumbers them.

SEED2 = 16
N_PROGRAMS2 = 800  # ~1 s on the 2-core machine; `python tests/test_views_s16.py N SEED` for more
DTYPES2 = ["float64"] * 10 + ["float32"] * 2 + ["int64"] * 3 + ["bool"] * 2 + ["complex128"]


def _view2(L, t, op, a):
    if op == "unflatten":
        return t.unflatten(a[0], a[1])
    if op == "movedim":
        return t.movedim(a[0], a[1])
    if op == "swapaxes":
        return t.swapaxes(a[0], a[1])
    if op == "flatten":
        return t.flatten(a[0], a[1])
    if op == "t":
        return t.t()
    if op == "tensor_split":
        return t.tensor_split(a[0], a[1])[a[2]]
    if op == "split_sizes":
        return t.split(list(a[0]), a[1])[a[2]]
    if op == "view_dtype":
        return t.view(getattr(L, a[0]))
    if op == "index2":  # a basic index (the first round's "index" step)
        return t[_index2(a[0])]
    if op == "expand_as":
        return t.expand(*a[0])
    return F._view(L, t, op, a)


def _index2(spec):
    out = []
    for s in spec:
        if s[0] == "s":
            out.append(slice(s[1], s[2], s[3]))
        elif s[0] == "i":
            out.append(s[1])
        elif s[0] == "n":
            out.append(None)
        elif s[0] == "e":
            out.append(Ellipsis)
        elif s[0] == "a":  # an integer array index
            out.append(s[1])
        elif s[0] == "m":  # a bool mask
            out.append(s[1])
    return tuple(out)


def _tensor_index(L, spec):
    return tuple(L.tensor(i.copy()) if isinstance(i, np.ndarray) else i for i in _index2(spec))


def _inplace2(R, k, t, op, a):
    L = R.L
    dt = str(t.dtype).split(".")[-1]
    if op == "setitem2":
        t[_tensor_index(L, a[0])] = F._operand(R, k, a[1], dt)
        return t
    if op == "index_put_":
        idx = tuple(L.tensor(i.copy()) for i in a[0])
        return t.index_put_(idx, F._operand(R, k, a[1], dt), accumulate=a[2])
    if op == "fill_":
        return t.fill_(F._operand(R, k, a[0], dt))
    if op == "sub_":
        return t.sub_(F._operand(R, k, a[0], dt))
    if op in ("out_add", "out_mul", "out_clamp", "out_neg"):
        x = F._operand(R, k, a[0], dt)
        if op == "out_add":
            r = L.add(x, F._operand(R, k, a[1], dt), out=t)
        elif op == "out_mul":
            r = L.mul(x, F._operand(R, k, a[1], dt), out=t)
        elif op == "out_clamp":
            r = L.clamp(x, min=a[1], max=a[2], out=t)
        else:
            r = L.neg(x, out=t)
        assert r is t, "out= returned another object"
        return t
    if op == "addcmul_":
        return t.addcmul_(F._operand(R, k, a[0], dt), F._operand(R, k, a[1], dt), value=a[2])
    if op == "lerp_":
        return t.lerp_(F._operand(R, k, a[0], dt), a[1])
    return F._inplace(R, k, t, op, a)


def step2(R, k, st):
    L = R.L
    if st[0] == "view":
        _, src, op, a, ng = st
        with L.no_grad() if ng else contextlib.nullcontext():
            R.slots[k] = _view2(L, R.slots[src], op, a)
    elif st[0] == "inplace":
        _, dst, op, a, ng = st
        with L.no_grad() if ng else contextlib.nullcontext():
            out = _inplace2(R, k, R.slots[dst], op, a)
        assert out is R.slots[dst], f"{op} returned another object"
    else:
        F.step(R, k, st)


def run2(lib, prog):
    R = F.Run(lib)
    for k, st in enumerate(prog):
        try:
            step2(R, k, st)
        except Exception as e:  # noqa: BLE001 - compared with the other library's
            R.error = (k, type(e), str(e).split("\n")[0][:200])
            break
    return R


def _gen_basic_index(rng, shape):
    return F.gen_basic_index(rng, shape, p_none=0.08, p_ellipsis=0.15)


def _gen_index2(rng, shape):
    """A basic index, or one with an integer array or a bool mask in it."""
    spec = _gen_basic_index(rng, shape)
    nd = len(shape)
    if nd and rng.random() < 0.35:
        d = rng.randrange(nd)
        n = shape[d]
        spec = [("s", None, None, None)] * d
        if rng.random() < 0.5 and n:
            m = rng.randint(1, 3)
            spec.append(("a", np.array([rng.randrange(-n, n) for _ in range(m)], dtype=np.int64)))
        else:
            spec.append(("m", np.random.default_rng(rng.randrange(2**32)).random(n) < 0.5))
    return spec


def _gen_view2(rng, t):
    shape, nd = tuple(t.shape), t.ndim
    ops = ["index2", "index2", "unsqueeze", "squeeze", "expand_as", "flatten"]
    if nd:
        ops += ["movedim", "swapaxes", "narrow", "select", "unflatten", "tensor_split",
                "split_sizes", "split", "chunk", "unbind"]  # fmt: skip
    if nd >= 2:
        ops += ["diagonal", "mT"]
    if nd <= 2:
        ops += ["t"]
    if t.is_contiguous() and t.numel():
        ops += ["as_strided"]
    if t.is_complex():
        ops += ["view_as_real"] * 3
    if t.dtype == torch.int64 and nd and t.stride(-1) == 1:  # (float64 bits read as int64
        ops += ["view_dtype"]  # would compare float results to the last bit)
    op = rng.choice(ops)
    dim = rng.randint(-nd, nd - 1) if nd else 0
    n = shape[dim] if nd else 0
    if op == "index2":
        return op, (_gen_basic_index(rng, shape),)
    if op == "movedim":
        return op, (dim, rng.randint(-nd, nd - 1))
    if op == "swapaxes":
        return op, (dim, rng.randint(-nd, nd - 1))
    if op == "flatten":
        if not nd:
            return op, (0, -1)
        a = rng.randint(0, nd - 1)
        return op, (a, rng.randint(a, nd - 1))
    if op == "unflatten":
        divs = [d for d in range(1, n + 1) if n and n % d == 0] or [1]
        a = rng.choice(divs)
        return op, (dim, (a, -1) if n else (0, rng.choice([1, 2])))
    if op == "tensor_split":
        s = rng.randint(1, 3)
        return op, (s, dim, rng.randrange(s))
    if op == "split_sizes":
        if n == 0:
            return None
        a = rng.randint(0, n)
        return op, ((a, n - a), dim, rng.randrange(2))
    if op == "view_dtype":
        return op, ("float64",)
    if op == "expand_as":
        new = [rng.choice([s, 2, 3]) if s == 1 else rng.choice([s, -1]) for s in shape]
        return op, (tuple([rng.choice([1, 2])] * rng.choice([0, 0, 1]) + new),)
    return F._gen_view(rng, t) if op not in ("t",) else (op, ())


def _tensor_operand(rng, prog, T, shape, dtn):
    for _ in range(5):
        o = F._gen_operand(rng, prog, T, shape, dtn)
        if o[0] != "scalar":
            return o
    return ("const", F._values(rng, shape, dtn), dtn)


def _gen_inplace2(rng, prog, T, t):
    shape, nd, dtn = tuple(t.shape), t.ndim, F._dname(t)
    ops = ["setitem2", "setitem2", "index_put_", "fill_", "out_add", "out_mul", "out_neg",
           "masked_fill_", "clamp_", "zero_", "copy_", "add_", "mul_"]  # fmt: skip
    if dtn != "bool":
        ops += ["sub_", "out_clamp"]
    if F._float(dtn):
        ops += ["addcmul_", "lerp_"]
    op = rng.choice(ops)
    if op == "setitem2":
        spec = _gen_index2(rng, shape)
        try:
            sub = t[_tensor_index(torch, spec)]
        except Exception:  # noqa: BLE001 - an out-of-range generated index: another op
            return None
        return op, (spec, F._gen_operand(rng, prog, T, tuple(sub.shape), dtn))
    if op == "index_put_":
        if not nd or 0 in shape:
            return None
        m = rng.randint(1, 3)
        k = rng.randint(1, nd)
        idx = [np.array([rng.randrange(-shape[d], shape[d]) for _ in range(m)], dtype=np.int64)
               for d in range(k)]  # (a list: F._renumber looks for ("slot", k) tuples)
        vshape = (m, *shape[k:]) if rng.random() < 0.7 else ()
        acc = rng.random() < 0.5
        return op, (idx, _tensor_operand(rng, prog, T, vshape, dtn), acc)
    if op == "fill_":
        v = ("scalar", rng.choice([0, 1, -2]) if dtn != "bool" else True)
        return op, (F._gen_operand(rng, prog, T, (), dtn) if rng.random() < 0.4 else v,)
    if op == "sub_":
        return op, (F._gen_operand(rng, prog, T, shape, dtn),)
    if op in ("out_add", "out_mul"):
        return op, (_tensor_operand(rng, prog, T, shape, dtn),
                    F._gen_operand(rng, prog, T, shape, dtn))  # fmt: skip
    if op == "out_neg":
        if dtn == "bool":
            return None
        return op, (_tensor_operand(rng, prog, T, shape, dtn),)
    if op == "out_clamp":
        o = F._gen_operand(rng, prog, T, shape, dtn)
        if o[0] == "scalar":
            return None
        return op, (o, rng.choice([None, -1, 0]), rng.choice([None, 1, 2]) if dtn != "int64"
                    else rng.choice([None, 1, 2]))  # fmt: skip
    if op == "addcmul_":
        return op, (_tensor_operand(rng, prog, T, shape, dtn),
                    _tensor_operand(rng, prog, T, shape, dtn), rng.choice([1, 0.5, -2]))
    if op == "lerp_":
        o = F._gen_operand(rng, prog, T, shape, dtn)
        if o[0] == "scalar":
            return None
        return op, (o, rng.choice([0.25, 0.5, 1.0]))
    return F._gen_inplace(rng, prog, T, t) if op not in ("zero_",) else (op, ())


def generate2(seed: int):
    """A program generated while it runs in torch; returns (prog, T)."""
    rng = random.Random(seed)
    T = F.Run(torch)
    prog: list = []
    add = F._adder(T, prog, step2)  # (the first round's generator's pieces)
    dtn = rng.choice(DTYPES2)
    try:
        for _ in range(rng.choice([1, 1, 2])):
            shape = F._rand_shape(rng)
            add(("leaf", F._values(rng, shape, dtn), dtn, F._float(dtn) and rng.random() < 0.8))
        if rng.random() < 0.85:
            add(("save", rng.choice(["mul1", "clone"]), [0], ()))
        if rng.random() < 0.3 and T.slots[len(prog) - 1].ndim >= 2:  # a non-contiguous input
            add(("view", len(prog) - 1, "mT", (), False))
        depth = {k: 0 for k in T.slots}
        for _ in range(rng.randint(3, 10)):
            r = rng.random()
            if r < 0.45:
                src = rng.choice([k for k in T.slots if depth.get(k, 0) < 4])
                g = _gen_view2(rng, T.slots[src])
                if g is None:
                    continue
                add(("view", src, g[0], g[1], rng.random() < 0.06))
                depth[len(prog) - 1] = depth.get(src, 0) + 1
            elif r < 0.85:
                dst = rng.choice(list(T.slots))
                g = _gen_inplace2(rng, prog, T, T.slots[dst])
                if g is None:
                    continue
                add(("inplace", dst, g[0], g[1], rng.random() < 0.15))
            else:
                add(F._gen_save(rng, T))
        cands = [k for k, t in T.slots.items() if t.requires_grad and F._float(F._dname(t))]
        if cands:
            add(F._gen_backward(rng, T, cands))
    except Exception:  # noqa: BLE001 - a step raised (T.error), or the generator's own look
        pass  # at a slot did (a stale view's grad_fn, session 17): the program ends before it
    return prog, T


def _check2(prog):
    return F.compare(prog, run2(torch, prog), run2(descent, prog))


def shrink2(prog, msg):
    changed = True
    while changed:
        changed = False
        for i in range(len(prog) - 1, -1, -1):
            p = F._renumber(prog, i)
            if p is None:
                continue
            try:
                m = _check2(p)
            except Exception:  # noqa: BLE001 - a malformed shrink
                continue
            if m is not None:
                prog, msg, changed = p, m, True
                break
    return prog, msg


# Known mismatches of the default run: program seed -> reason (strict xfails)
KNOWN2: dict[int, str] = {}  # (16000802, clone's strides: fixed in session 17; 16000397, mul_
# on an unfold view whose windows share elements: fixed in session 25, ops/overlap_rounds)


def fuzz2(n: int, seed: int, verbose: bool = False):
    bad = []
    for i in range(n):
        s = seed * 1_000_003 + i
        if s in KNOWN2:
            continue
        prog, T = generate2(s)
        if T.error is not None:
            prog = prog[: T.error[0] + 1]
        msg = F.compare(prog, T, run2(descent, prog))
        if msg is None:
            continue
        prog, msg = shrink2(prog, msg)
        bad.append((s, msg, prog))
        if verbose:
            print(f"\n=== program {s}: {msg}\n{F.source(prog)}", flush=True)
    return bad


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_view_inplace_fuzz2():
    bad = fuzz2(N_PROGRAMS2, SEED2)
    report = "\n".join(f"program {s}: {m}\n{F.source(p)}" for s, m, p in bad[:5])
    assert not bad, f"{len(bad)} of {N_PROGRAMS2} programs differ from torch:\n{report}"


@pytest.mark.skipif(not KNOWN2, reason="no known mismatches in the default run")
@pytest.mark.parametrize(
    "seed",
    [pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=r)) for k, r in KNOWN2.items()]
    or [0],
)
def test_known2(seed):
    prog, T = generate2(seed)
    if T.error is not None:
        prog = prog[: T.error[0] + 1]
    assert F.compare(prog, T, run2(descent, prog)) is None, KNOWN2[seed]


if __name__ == "__main__":
    import time
    import warnings

    warnings.simplefilter("ignore")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else N_PROGRAMS2
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else SEED2
    t0 = time.perf_counter()
    bad = fuzz2(n, seed, verbose=True)
    print(f"\n{n} programs from seed {seed}: {len(bad)} mismatches, "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
