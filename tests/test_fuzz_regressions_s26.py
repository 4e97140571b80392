"""Regressions found by the session-26 fuzz campaign (helper-187; session 25's open view-fuzz
programs and seeds 26000001 onward of tests/test_fuzz_differential.py,
tests/test_view_inplace_fuzz_s14.py and tests/fuzz_extra_dtypes.py): each case runs in
descent and in torch 2.13 (the oracle) and compares the outcomes."""

import numpy as np
import pytest
import torch

import descent as ds


def _outcome(fn, m):
    """fn(m) as plain Python values, or the class of the error it raised."""
    try:
        r = fn(m)
    except Exception as e:  # noqa: BLE001 - the outcome compared is the error class
        return RuntimeError if isinstance(e, RuntimeError) else type(e)
    return _plain(r)


def _plain(r):
    if isinstance(r, (tuple, list)):
        return [_plain(v) for v in r]
    if isinstance(r, (torch.Tensor, ds.Tensor)):
        return np.asarray(r.detach().numpy()).round(12).tolist()
    return r


def _same(fn):
    t, d = _outcome(fn, torch), _outcome(fn, ds)
    if isinstance(t, type):
        assert isinstance(d, type) and issubclass(d, t), (d, t)
    else:
        assert d == t, (d, t)


# ---------------------------------------------------------------------------------------------
# A view of a plain tensor that joined the graph by an in-place op elsewhere is a "leaf" to
# PyTorch's check_inplace until an op reads it (or its grad_fn is read). descent counted it as
# used only while the op's result was alive (the consumer's reference to the view's node).


def _plain_view_then(use):
    def fn(m):
        x = m.tensor([[1.854], [-0.286], [-0.536], [0.277]], dtype=m.float64)
        v = x[-3, ::2]
        u = x[0]
        v[-1] = m.tensor(-0.43, dtype=m.float64, requires_grad=True)
        if use == "discarded":
            v.view(())  # (the result dropped: v was still read)
            u * 2
        elif use == "grad_fn":
            _ = (v.grad_fn, u.is_leaf)
        elif use == "no_grad":  # (an op under no_grad does not read grad_fn: still a leaf)
            with m.no_grad():
                v * 2, u * 2
        outs = []
        for t in (v, u):
            try:
                t.add_(1)
                outs.append(t.requires_grad)
            except RuntimeError:
                outs.append("leaf error")
        return outs, x.requires_grad

    return fn


@pytest.mark.parametrize("use", ["discarded", "grad_fn", "no_grad", "none"])
def test_view_of_a_plain_tensor_counts_as_used_once_read(use):
    # session 25's open item ("v.view(()) discarded": descent raised the leaf error at add_)
    _same(_plain_view_then(use))


def test_view_stays_unused_when_its_base_is_written_again():
    # view fuzz 26100079305823: t (a transpose of x, taken before x joined the graph) is still
    # a leaf after x.add_(x) refreshed it; PyTorch's masked_fill_ on it raises
    def fn(m):
        x = m.tensor([[-0.18, 1.209, 0.687], [0.757, 0.194, 0.148]], dtype=m.float64)
        r = x.reshape(3, 1, 2)
        t = x.transpose(1, 0)
        r[:-1:2, 0::3, -2::2] = m.tensor([[[0.665]]], dtype=m.float64, requires_grad=True)
        x.add_(x)
        return t.masked_fill_(m.tensor([[True, False], [False, True], [False, False]]), 1)

    _same(fn)


def test_view_as_real_used_by_a_permute_then_written():
    # view fuzz 25100077329262: r = view_as_real(y) was used by r.permute (whose result was then
    # written in place, dropping its reference to r's node): clamp_ on r runs, as in PyTorch
    def fn(m):
        x = m.tensor(np.array([-1.5 + 0.9j, -0.5 + 0.2j, 0.85 + 0.8j, -1.7 - 1.2j]))
        y = x * 1
        r = m.view_as_real(y)
        src = np.array([0.1 - 1.0j, -3.1 - 1.6j, -0.27 + 0.3j, 2.1 - 0.4j])
        y.copy_(m.tensor(src, requires_grad=True))
        p = r.permute(1, 0)
        p.add_(-1.5)
        r.clamp_(-0.5)
        return r, p, r.is_leaf, y.is_leaf

    _same(fn)


# ---------------------------------------------------------------------------------------------
# expand's strides: PyTorch's inferExpandGeometry keeps a kept size-1 dimension's stride and
# gives a new size-1 one the next dimension's extent; NumPy's broadcast_to gave both 0, so
# setitem's overlap check (which compares strides, as PyTorch's get_overlap_status) saw a
# partial overlap where PyTorch sees the same memory with the same strides.


def test_setitem_into_an_expanded_view_from_the_same_memory():
    # view fuzz 25100078311681 (session 25, open): e[0, ...] = x.reshape(1, -1) under no_grad
    def fn(m):
        x = m.tensor([-5, -2, -1]).clone()
        r = x.reshape(1, -1)
        e = r.expand(2, 1, 3)
        with m.no_grad():
            e[0, ...] = r
        return x, e.stride(), x._version

    _same(fn)


@pytest.mark.parametrize(
    "shape, index, sizes",
    [((3,), None, (1, 1, 3)), ((3, 1), None, (2, 1, 3, 1)), ((3, 1), None, (1, 3, 4)),
     ((4, 3), (slice(None), slice(0, 1)), (1, 4, 1)), ((4, 3), (slice(None), slice(0, 1)),
     (1, 4, 5)), ((2, 3), "t", (1, 3, 2)), ((), None, (2, 1)), ((2, 1), None, (2, 1))],
)  # fmt: skip
def test_expand_strides_are_pytorchs(shape, index, sizes):
    def fn(m):
        x = m.arange(float(np.prod(shape))).reshape(shape)
        if index == "t":
            x = x.t()
        elif index is not None:
            x = x[index]
        e = x.expand(*sizes)
        return e.stride(), e, e.is_contiguous()

    _same(fn)


# ---------------------------------------------------------------------------------------------
# diagonal of a read-only (expanded) tensor was a copy: PyTorch's is a view sharing the version
# counter (view fuzz 26100080320317: version 0 vs 1) and written through


def test_diagonal_of_an_expanded_tensor_is_a_view():
    def fn(m):
        x = m.tensor(0.391, dtype=m.float64)
        e = x.expand(2)
        x.add_(1)
        d = e.unfold(0, 2, 2).diagonal(0, 0, 1)
        y = m.ones(3).expand(2, 3)
        g = y.diagonal()
        g.add_(1)
        with m.no_grad():
            y.diagonal(1).fill_(5.0)
        return d._version, d, y, g._version, y._version

    _same(fn)


@pytest.mark.parametrize("expand", [True, False])
def test_setitem_of_a_graph_tensor_from_itself(expand):
    # view fuzz 26100081301061: e[:] = e with e an expanded graph tensor is PyTorch's copy_
    # from itself (is_same: nothing written, no overlap error; backward then raises for the
    # expanded one, as copy_'s); descent's setitem raised the overlap error at once
    def fn(m):
        x = m.tensor(1.397 if expand else [1.397], dtype=m.float64, requires_grad=True)
        y = x * 2
        e = y.expand(2) if expand else y
        v0 = e._version
        e[:] = e
        out = [e, e._version - v0, e.requires_grad]
        try:
            (e * 3).sum().backward()
            out.append(x.grad)
        except RuntimeError:
            out.append("backward raised")
        return out

    _same(fn)
