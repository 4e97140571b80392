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

import numpy as np
import pytest
import torch

import descent


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
        return _np(out).round(12).tolist()
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


if __name__ == "__main__":
    for name in sorted(CASES):
        print(name, _outcome(torch, CASES[name]), _outcome(descent, CASES[name]))
