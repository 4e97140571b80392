"""Regression tests for the differences PyTorch's operator database (OpInfo, run by
tests/opinfo_harness.py) found in descent's indexing, shape, product and factory functions:
each test runs the sample that differed against torch 2.13 (the oracle) in float32 (values,
dtypes, shapes and gradients), and gradcheck in float64 where a derivative was added or changed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds
from descent.autograd_gradcheck import gradcheck

RNG = np.random.default_rng(0)


def _pair(shape, dtype=np.float32, lo=-2.0, hi=2.0, grad=False):
    a = np.asarray(RNG.uniform(lo, hi, shape)).astype(dtype)
    return ds.tensor(a, requires_grad=grad), torch.tensor(a, requires_grad=grad)


def _close(d, t, atol=1e-6, rtol=1e-5):
    assert tuple(d.shape) == tuple(t.shape), (tuple(d.shape), tuple(t.shape))
    assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], (d.dtype, t.dtype)
    np.testing.assert_allclose(d.detach().numpy(), t.detach().numpy(), atol=atol, rtol=rtol)


def _both_grads(fd, ft, shapes, dtype=np.float32):
    """Run f on descent and torch leaves of `shapes`, backward a random cotangent, compare the
    outputs and every input's gradient."""
    dins, tins = zip(*(_pair(s, dtype, grad=True) for s in shapes))
    yd, yt = fd(*dins), ft(*tins)
    _close(yd, yt)
    g = RNG.uniform(-1, 1, tuple(yt.shape)).astype(dtype)
    yd.backward(ds.tensor(g))
    yt.backward(torch.tensor(g))
    for d, t in zip(dins, tins):
        if t.grad is None:
            assert d.grad is None or not d.grad.numpy().any()
        else:
            _close(d.grad, t.grad)


# ---------------------------------------------------------------------------------------------
# masked_scatter: input and mask broadcast together (out of place); in place never expands


def test_masked_scatter_mask_with_more_dims_broadcasts_input():
    mask = RNG.uniform(size=(5, 5)) > 0.5
    _both_grads(
        lambda x, s: ds.masked_scatter(x, ds.tensor(mask), s),
        lambda x, s: torch.masked_scatter(x, torch.tensor(mask), s),
        [(5,), (5, 5)],
    )


def test_masked_scatter_broadcast_gradcheck_float64():
    mask = ds.tensor(RNG.uniform(size=(3, 4)) > 0.4)
    x = ds.tensor(RNG.normal(size=(4,)), requires_grad=True)
    s = ds.tensor(RNG.normal(size=(12,)), requires_grad=True)
    assert gradcheck(lambda a, b: ds.masked_scatter(a, mask, b), (x, s))


def test_masked_scatter_inplace_refuses_expanding_like_torch():
    mask = RNG.uniform(size=(5, 5)) > 0.5
    with pytest.raises(RuntimeError):
        torch.zeros(5).masked_scatter_(torch.tensor(mask), torch.zeros(25))
    with pytest.raises(RuntimeError):
        ds.zeros(5).masked_scatter_(ds.tensor(mask), ds.zeros(25))
    with pytest.raises(RuntimeError):  # shapes that do not broadcast at all
        ds.zeros(5, 5).masked_scatter(ds.tensor(mask[:3]), ds.zeros(25))
    # a mask that broadcasts to the tensor still works in place
    m1 = RNG.uniform(size=(5,)) > 0.5
    src = RNG.normal(size=(25,)).astype(np.float32)
    d = ds.zeros(5, 5).masked_scatter_(ds.tensor(m1), ds.tensor(src))
    t = torch.zeros(5, 5).masked_scatter_(torch.tensor(m1), torch.tensor(src))
    _close(d, t)


# ---------------------------------------------------------------------------------------------
# matmul: a shared weight's gradient under a batched input with an empty dimension


@pytest.mark.parametrize("sa,sb", [((5, 5, 0), (0, 5)), ((5, 0, 3), (3, 5)), ((0, 2, 3), (3, 4))])
def test_matmul_backward_empty_dims(sa, sb):
    _both_grads(lambda a, b: a @ b, lambda a, b: a @ b, [sa, sb])
    _both_grads(lambda a, b: b.__rmatmul__(a), lambda a, b: b.__rmatmul__(a), [sa, sb])


def test_matmul_shared_weight_gradcheck_float64():
    a = ds.tensor(RNG.normal(size=(2, 3, 4)), requires_grad=True)
    b = ds.tensor(RNG.normal(size=(4, 2)), requires_grad=True)
    assert gradcheck(lambda x, y: x @ y, (a, b))


# ---------------------------------------------------------------------------------------------
# __div__ / __rdiv__ / __idiv__: Python 2's names, still on PyTorch's Tensor


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_div_python2_names(dtype):
    a = (RNG.uniform(1, 3, (3,))).astype(dtype)
    b = (RNG.uniform(1, 3, (3,))).astype(dtype)
    _close(ds.tensor(a).__rdiv__(ds.tensor(b)), torch.tensor(a).__rdiv__(torch.tensor(b)))
    _close(ds.tensor(a).__div__(ds.tensor(b)), torch.tensor(a).__div__(torch.tensor(b)))
    _close(ds.tensor(a).__rdiv__(2), torch.tensor(a).__rdiv__(2))


def test_rdiv_gradients_and_idiv():
    _both_grads(lambda x, y: x.__rdiv__(y), lambda x, y: x.__rdiv__(y), [(4,), (4,)])
    a = np.array([1.0, 2.0, 4.0], np.float32)
    d, t = ds.tensor(a), torch.tensor(a)
    d2, t2 = d.__idiv__(2), t.__idiv__(2)
    assert d2 is d and t2 is t
    _close(d, t)


# ---------------------------------------------------------------------------------------------
# gather with an empty index of more dimensions; index_select and unfold on 0-d inputs


@pytest.mark.parametrize("xs,ishape", [((5,), (2, 0)), ((5, 3), (1, 0, 0)), ((), (1, 0, 0))])
def test_gather_empty_index_any_dims(xs, ishape):
    idx = np.zeros(ishape, np.int64)
    _both_grads(
        lambda x: ds.gather(x, 0, ds.tensor(idx)),
        lambda x: torch.gather(x, 0, torch.tensor(idx)),
        [xs],
    )
    with pytest.raises(RuntimeError):  # a non-empty index still needs x's dimensions
        torch.gather(torch.zeros(5), 0, torch.zeros((2, 1), dtype=torch.long))
    with pytest.raises(RuntimeError):
        ds.gather(ds.zeros(5), 0, ds.zeros((2, 1), dtype=ds.int64))


@pytest.mark.parametrize("index", [[0], 0])
def test_index_select_0d(index):
    _both_grads(
        lambda x: ds.index_select(x, 0, ds.tensor(index)),
        lambda x: torch.index_select(x, 0, torch.tensor(index)),
        [()],
    )


@pytest.mark.parametrize("index,err", [([0, 0], RuntimeError), ([1], IndexError)])
def test_index_select_0d_errors_like_torch(index, err):
    with pytest.raises(err):
        torch.index_select(torch.tensor(1.0), 0, torch.tensor(index))
    with pytest.raises(err):
        ds.index_select(ds.tensor(1.0), 0, ds.tensor(index))


@pytest.mark.parametrize("size,dim", [(1, 0), (0, 0), (1, -1)])
@pytest.mark.parametrize("fn", ["unfold", "unfold_copy"])
def test_unfold_0d(size, dim, fn):
    if fn == "unfold":
        fd, ft = (lambda x: x.unfold(dim, size, 1)), (lambda x: x.unfold(dim, size, 1))
    else:
        fd = lambda x: ds.unfold_copy(x, dim, size, 2)  # noqa: E731
        ft = lambda x: torch.unfold_copy(x, dim, size, 2)  # noqa: E731
    _both_grads(fd, ft, [()])


@pytest.mark.parametrize("args,err", [((0, 2, 1), RuntimeError), ((1, 1, 1), IndexError)])
def test_unfold_0d_errors_like_torch(args, err):
    with pytest.raises(err):
        torch.tensor(3.0).unfold(*args)
    with pytest.raises(err):
        ds.tensor(3.0).unfold(*args)


# ---------------------------------------------------------------------------------------------
# scatter_reduce / index_reduce: amax/amin backward on 0-d; bool inputs


@pytest.mark.parametrize("reduce", ["amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_amax_amin_0d_backward(reduce, include_self):
    _both_grads(
        lambda x, s: ds.scatter_reduce(x, 0, ds.tensor(0), s, reduce, include_self=include_self),
        lambda x, s: torch.scatter_reduce(
            x, 0, torch.tensor(0), s, reduce, include_self=include_self
        ),
        [(), ()],
    )
    _both_grads(
        lambda x, s: ds.index_reduce(x, 0, ds.tensor([0]), s, reduce, include_self=include_self),
        lambda x, s: torch.index_reduce(
            x, 0, torch.tensor([0]), s, reduce, include_self=include_self
        ),
        [(), ()],
    )


def test_scatter_reduce_amax_0d_gradcheck_float64():
    x = ds.tensor(0.3, dtype=ds.float64, requires_grad=True)
    s = ds.tensor(-0.7, dtype=ds.float64, requires_grad=True)
    idx = ds.tensor(0)
    assert gradcheck(lambda a, b: ds.scatter_reduce(a, 0, idx, b, "amax"), (x, s))
    assert gradcheck(lambda a, b: ds.scatter_reduce(a, 0, idx, b, "amin"), (x, s))


@pytest.mark.parametrize("reduce", ["sum", "prod", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_reduce_bool(reduce, include_self, dim):
    x = RNG.uniform(size=(6, 4)) > 0.5
    src = RNG.uniform(size=(3, 3)) > 0.5
    idx = RNG.integers(0, 3, (3, 3))
    d = ds.scatter_reduce(ds.tensor(x), dim, ds.tensor(idx), ds.tensor(src), reduce,
                          include_self=include_self)  # fmt: skip
    t = torch.scatter_reduce(torch.tensor(x), dim, torch.tensor(idx), torch.tensor(src), reduce,
                             include_self=include_self)  # fmt: skip
    _close(d, t)
    s0 = np.array(True)
    d0 = ds.scatter_reduce(ds.tensor(False), 0, ds.tensor(0), ds.tensor(s0), reduce)
    t0 = torch.scatter_reduce(torch.tensor(False), 0, torch.tensor(0), torch.tensor(s0), reduce)
    _close(d0, t0)


def test_scatter_reduce_bool_mean_refused_like_torch():
    args = ([True, False], [0], [True])
    with pytest.raises(RuntimeError):
        torch.scatter_reduce(*(torch.tensor(a) for a in args[:1]), 0,
                             *(torch.tensor(a) for a in args[1:]), "mean")  # fmt: skip
    with pytest.raises(RuntimeError):
        ds.scatter_reduce(ds.tensor(args[0]), 0, ds.tensor(args[1]), ds.tensor(args[2]), "mean")


# ---------------------------------------------------------------------------------------------
# tensordot: contracted dimensions of size 1 broadcast (dims as lists or an int); empty shapes


@pytest.mark.parametrize(
    "sa,sb,dims",
    [
        ((1, 1, 1), (2, 1, 2), [[0, 1], [2, 0]]),
        ((2, 1), (3, 4), 1),
        ((3, 2), (2, 1, 4), ([1, 0], [0, 1])),
        ((0, 3), (3, 2), 1),
        ((2, 3), (3, 0), 1),
        ((2, 0), (0, 3), 1),
    ],
)
def test_tensordot_broadcast_and_empty(sa, sb, dims):
    _both_grads(
        lambda a, b: ds.tensordot(a, b, dims=dims),
        lambda a, b: torch.tensordot(a, b, dims=dims),
        [sa, sb],
    )


def test_tensordot_broadcast_gradcheck_float64():
    a = ds.tensor(RNG.normal(size=(1, 3, 1)), requires_grad=True)
    b = ds.tensor(RNG.normal(size=(2, 3, 4)), requires_grad=True)
    assert gradcheck(lambda x, y: ds.tensordot(x, y, dims=([0, 1], [0, 1])), (a, b))


def test_tensordot_mismatch_raises_like_torch():
    with pytest.raises(RuntimeError):
        torch.tensordot(torch.zeros(3, 1), torch.zeros(2, 1), dims=[[0], [0]])
    with pytest.raises(RuntimeError):
        ds.tensordot(ds.zeros(3, 1), ds.zeros(2, 1), dims=[[0], [0]])


# ---------------------------------------------------------------------------------------------
# searchsorted with empty batched inputs


@pytest.mark.parametrize("ss,vs", [((0, 0), (0, 0)), ((0, 0, 0), (0, 0, 0)), ((2, 0), (2, 3)),
                                   ((3, 4), (3, 0)), ((0, 4), (0, 2))])  # fmt: skip
@pytest.mark.parametrize("right", [False, True])
@pytest.mark.parametrize("out_int32", [False, True])
def test_searchsorted_empty(ss, vs, right, out_int32):
    seq = np.sort(RNG.normal(size=ss).astype(np.float32), -1)
    vals = RNG.normal(size=vs).astype(np.float32)
    d = ds.searchsorted(ds.tensor(seq), ds.tensor(vals), right=right, out_int32=out_int32)
    t = torch.searchsorted(torch.tensor(seq), torch.tensor(vals), right=right,
                           out_int32=out_int32)  # fmt: skip
    _close(d, t)


# ---------------------------------------------------------------------------------------------
# The addmm family on integer and bool tensors: PyTorch keeps the dtype (coefficients cast to
# the integer type, truncating), addr on bools is logical, bool products are refused


_ADDMM_SHAPES = {"addr": ((2, 3), (2,), (3,)), "addmv": ((2,), (2, 3), (3,)),
                 "addmm": ((2, 2), (2, 3), (3, 2)), "baddbmm": ((2, 2, 2), (2, 2, 3), (2, 3, 2)),
                 "addbmm": ((2, 2), (2, 2, 3), (2, 3, 2))}  # fmt: skip


def _addmm_family(dt_name):
    """(name, descent call, torch call) for each op of the family, on the same int inputs."""
    for name, shapes in _ADDMM_SHAPES.items():
        args = [RNG.integers(-3, 4, s) for s in shapes]

        def call(mod, name=name, args=args):
            dt = getattr(mod, dt_name)
            return lambda b, al: getattr(mod, name)(
                *(mod.tensor(x).to(dt) for x in args), beta=b, alpha=al
            )

        yield name, call(ds), call(torch)


@pytest.mark.parametrize("beta,alpha", [(0.2, 0.6), (1.5, 2.7), (-1.5, -2.7), (2, 3), (0, 1)])
def test_addmm_family_int64_keeps_dtype(beta, alpha):
    for name, fd, ft in _addmm_family("int64"):
        try:
            t = ft(beta, alpha)
        except RuntimeError:  # addr refuses float coefficients on integers
            assert name == "addr"
            with pytest.raises(RuntimeError):
                fd(beta, alpha)
            continue
        _close(fd(beta, alpha), t)


@pytest.mark.parametrize("beta,alpha", [(3, 2), (0, 1), (1, 0), (True, False), (0.5, 2)])
def test_addmm_family_bool(beta, alpha):
    for _name, fd, ft in _addmm_family("bool"):
        try:
            t = ft(beta, alpha)
        except RuntimeError:
            with pytest.raises(RuntimeError):
                fd(beta, alpha)
            continue
        _close(fd(beta, alpha), t)
    # addr's input broadcasts (a 0-d input)
    v1, v2 = RNG.uniform(size=5) > 0.5, RNG.uniform(size=4) > 0.5
    for inp in (np.array(True), np.array(False)):
        d = ds.addr(ds.tensor(inp), ds.tensor(v1), ds.tensor(v2), beta=3, alpha=2)
        t = torch.addr(torch.tensor(inp), torch.tensor(v1), torch.tensor(v2), beta=3, alpha=2)
        _close(d, t)


# ---------------------------------------------------------------------------------------------
# Factories with integer dtypes and non-integer bounds: PyTorch converts the bounds first


_ARANGE = [(0.0, -8.000001, -4.0), (1.0, 5.000001, 2.0), (-0.9, 2.1, 2.0), (2.1, -2.9, -1.0),
           (0.1, -7.9, -4.0), (0, 3.1, 1), (0.5, 3.7, 1.5), (0.0, 3.0, 0.5),
           (3, 0.5, -1)]  # fmt: skip


@pytest.mark.parametrize("args", _ARANGE)
@pytest.mark.parametrize("dt", ["int64", "int32", "int16", "uint8", "float32"])
def test_arange_integer_dtype_float_bounds(args, dt):
    try:
        t = torch.arange(*args, dtype=getattr(torch, dt))
    except (RuntimeError, ValueError) as e:  # int64: a step truncated to 0 (ValueError)
        with pytest.raises(type(e)):
            ds.arange(*args, dtype=getattr(ds, dt))
        return
    _close(ds.arange(*args, dtype=getattr(ds, dt)), t)


_SPACE = [(4.3, -3, 50), (4.3, 0, 50), (4.3, 50, 50), (-2.7, 3.9, 7), (0, 1.2, 2), (0, 1.2, 4),
          (1, 1.2, 2), (0.7, 2.2, 1), (3.3, -3.3, 0), (-1, 2, 4)]  # fmt: skip


@pytest.mark.parametrize("args", _SPACE)
@pytest.mark.parametrize("dt", ["int64", "int32", "uint8"])
def test_linspace_logspace_integer_dtype(args, dt):
    try:
        t = torch.linspace(*args, dtype=getattr(torch, dt))
    except RuntimeError:  # uint8 and a negative float bound: PyTorch's checked conversion
        with pytest.raises(RuntimeError):
            ds.linspace(*args, dtype=getattr(ds, dt))
        return
    _close(ds.linspace(*args, dtype=getattr(ds, dt)), t)
    for base in (10.0, 2.0, 2.5):
        if base ** max(args[:2]) > 2**31 or (dt == "uint8" and min(args[:2]) < 0):
            continue  # out of the dtype's range: PyTorch's C++ conversion is undefined
        _close(ds.logspace(*args, base=base, dtype=getattr(ds, dt)),
               torch.logspace(*args, base=base, dtype=getattr(torch, dt)))  # fmt: skip


@pytest.mark.parametrize("dt", ["float64", "float32", "int64"])
def test_linspace_tensor_bounds_use_their_values(dt):
    # a float32 0-d bound must not make a float64 range compute in float32
    for s, e in [(-2.0, 0), (1.7, -3.1), (4.3, 2.2)]:
        d = ds.linspace(ds.tensor(s), ds.tensor(e), 50, dtype=getattr(ds, dt))
        t = torch.linspace(torch.tensor(s), torch.tensor(e), 50, dtype=getattr(torch, dt))
        _close(
            d, t, atol=1e-12 if dt == "float64" else 1e-6, rtol=1e-12 if dt == "float64" else 1e-5
        )
        d = ds.logspace(ds.tensor(s), ds.tensor(e), 5, dtype=getattr(ds, dt))
        t = torch.logspace(torch.tensor(s), torch.tensor(e), 5, dtype=getattr(torch, dt))
        _close(
            d, t, atol=1e-12 if dt == "float64" else 1e-6, rtol=1e-12 if dt == "float64" else 1e-5
        )


# ---------------------------------------------------------------------------------------------
# as_strided_scatter: descent keeps the TRUE input gradient. PyTorch's as_strided_scatter_backward
# (FunctionsManual.cpp) returns the gradient INSIDE the scattered region, where the output does
# not depend on input at all; PyTorch's own OpInfo marks TestBwdGradients.test_fn_grad for it an
# expected failure, and torch.autograd.gradcheck rejects it (checked below). src's gradient agrees.


@pytest.mark.parametrize(
    "xs,ss,size,stride,off",
    [((1,), (), [], [], 0), ((3, 3), (2, 2), [2, 2], [1, 2], 0),
     ((3, 3), (2, 2), [2, 2], [1, 2], 1), ((16,), (2, 1, 1, 2), [2, 1, 1, 2], [1, 2, 4, 8], 0)],
)  # fmt: skip
def test_as_strided_scatter_gradient_is_the_true_one(xs, ss, size, stride, off):
    (dx, tx), (dsrc, tsrc) = _pair(xs, grad=True), _pair(ss, grad=True)
    yd = ds.as_strided_scatter(dx, dsrc, size, stride, off)
    yt = torch.as_strided_scatter(tx, tsrc, size, stride, off)
    _close(yd, yt)
    g = RNG.uniform(-1, 1, tuple(yt.shape)).astype(np.float32)
    yd.backward(ds.tensor(g))
    yt.backward(torch.tensor(g))
    _close(dsrc.grad, tsrc.grad)
    # input's gradient: g where input survives, 0 where src overwrote it (PyTorch: the reverse)
    region = torch.zeros(xs).as_strided_scatter(torch.ones(ss), size, stride, off).numpy() > 0
    np.testing.assert_allclose(dx.grad.numpy(), np.where(region, 0, g), atol=1e-7)
    x64 = ds.tensor(RNG.normal(size=xs), requires_grad=True)
    s64 = ds.tensor(RNG.normal(size=ss), requires_grad=True)
    assert gradcheck(lambda a, b: ds.as_strided_scatter(a, b, size, stride, off), (x64, s64))


def test_torch_as_strided_scatter_input_gradient_fails_its_own_gradcheck():
    x = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    with pytest.raises(Exception, match="Jacobian mismatch"):
        torch.autograd.gradcheck(lambda a, b: torch.as_strided_scatter(a, b, [2, 2], [1, 2], 0),
                                 (x, s))  # fmt: skip
