"""PyTorch's shape, indexing and tensor-object names added to descent on 2026-12-04
(docs/torch_gaps_tensor.md), tested against torch (the oracle): values, dtypes, shapes, 0-d and
empty tensors, negative dims, error classes, view-ness, gradients (float32 vs torch, float64
finite differences), and the in-place rules (identity, leaf errors, autograd through them).

The differentiable compositions and AsStrided also have op-table specs (tests/specs/gaps_tensor.py)
with gradcheck, gradgradcheck and float32-vs-torch gradients."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import descent as ds
from descent.autograd_gradcheck import gradcheck

RNG = np.random.default_rng(0)


def _pair(shape, dtype=np.float32, lo=-2.0, hi=2.0):
    a = RNG.uniform(lo, hi, shape).astype(dtype)
    return ds.tensor(a), torch.tensor(a)


def _close(d, t, atol=1e-6, rtol=1e-5):
    assert tuple(d.shape) == tuple(t.shape), (tuple(d.shape), tuple(t.shape))
    assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], (d.dtype, t.dtype)
    np.testing.assert_allclose(d.numpy(), t.detach().numpy(), atol=atol, rtol=rtol)


def _same_error(fd, ft):
    with pytest.raises(Exception) as et:
        ft()
    with pytest.raises(type(et.value)):
        fd()


# ---------------------------------------------------------------------------------------------
# The names exist

TENSOR_NAMES = """
select select_scatter slice_scatter diagonal_scatter as_strided sum_to_size swapdims diagflat
index_copy index_reduce masked_scatter put split_with_sizes unsafe_chunk unsafe_split
unsafe_split_with_sizes take_along_dim ravel new_empty_strided is_nonzero is_same_size
is_signed is_complex conj conj_physical conj_physical_ resolve_conj resolve_neg is_conj is_neg
real imag adjoint H mH layout is_sparse is_sparse_csr is_quantized is_meta is_mkldnn is_nested
is_mps is_xpu is_vulkan is_xla is_ipu is_maia is_mtia is_distributed is_inference data_ptr
storage_offset retains_grad register_post_accumulate_grad_hook pin_memory is_pinned
share_memory_ is_shared dim_order log_normal_ cauchy_ geometric_ resize_ resize_as_ squeeze_
unsqueeze_ t_ transpose_ swapaxes_ swapdims_ tril_ triu_ index_add_ index_copy_ index_fill_
index_reduce_ masked_scatter_ put_ scatter_add_ scatter_reduce_ fill_diagonal_ renorm_
""".split()

TOP_NAMES = """select select_scatter slice_scatter diagonal_scatter as_strided swapdims diagflat
index_copy index_reduce masked_scatter put unbind split_with_sizes unsafe_chunk unsafe_split
unsafe_split_with_sizes fill fill_ zero_ empty_strided detach detach_ is_nonzero is_same_size
is_signed is_complex conj conj_physical conj_physical_ resolve_conj resolve_neg is_conj is_neg
real imag adjoint is_inference typename get_device resize_as_ strided layout
is_anomaly_enabled set_anomaly_enabled is_anomaly_check_nan_enabled is_warn_always_enabled
set_warn_always is_inference_mode_enabled set_flush_denormal set_default_tensor_type
is_autocast_enabled get_autocast_dtype set_autocast_enabled set_autocast_dtype
is_autocast_cpu_enabled set_autocast_cpu_enabled get_autocast_cpu_dtype get_autocast_gpu_dtype
set_autocast_cpu_dtype set_autocast_gpu_dtype is_autocast_cache_enabled
set_autocast_cache_enabled clear_autocast_cache autocast_increment_nesting
autocast_decrement_nesting""".split()


def test_names_exist_in_torch_and_descent():
    for n in TENSOR_NAMES:
        assert hasattr(torch.Tensor, n), n
        assert hasattr(ds.Tensor, n), n
    for n in TOP_NAMES:
        assert hasattr(torch, n), n
        assert hasattr(ds, n), n


# ---------------------------------------------------------------------------------------------
# select and the *_scatter family


@pytest.mark.parametrize("dim,index", [(0, 1), (1, -1), (-1, 0), (-2, -2)])
def test_select_values_and_view(dim, index):
    d, t = _pair((3, 4))
    _close(ds.select(d, dim, index), torch.select(t, dim, index))
    _close(d.select(dim, index), t.select(dim, index))
    v = d.select(dim, index)
    v.fill_(7.0)  # a view: writes reach the base, as in torch
    t.select(dim, index).fill_(7.0)
    _close(d, t)


def test_select_errors():
    d, t = _pair((5,))
    _same_error(lambda: ds.select(d, 0, 5), lambda: torch.select(t, 0, 5))
    _same_error(lambda: ds.select(d, 1, 0), lambda: torch.select(t, 1, 0))
    _same_error(
        lambda: ds.select(ds.tensor(1.0), 0, 0), lambda: torch.select(torch.tensor(1.0), 0, 0)
    )


def test_select_gradient_matches_torch():
    d, t = _pair((3, 4))
    d.requires_grad_(), t.requires_grad_()
    (ds.select(d, 1, 2) * 3).sum().backward()
    (torch.select(t, 1, 2) * 3).sum().backward()
    _close(d.grad, t.grad)


@pytest.mark.parametrize("dim,index", [(0, 0), (1, -1), (-1, 2)])
def test_select_scatter(dim, index):
    d, t = _pair((3, 4))
    src_shape = tuple(torch.select(t, dim, index).shape)
    sd, st = _pair(src_shape)
    _close(ds.select_scatter(d, sd, dim, index), torch.select_scatter(t, st, dim, index))
    _close(d.select_scatter(sd, dim, index), t.select_scatter(st, dim, index))
    bad_d, bad_t = _pair((7,))
    _same_error(lambda: ds.select_scatter(d, bad_d, dim, index),
                lambda: torch.select_scatter(t, bad_t, dim, index))  # fmt: skip


@pytest.mark.parametrize("args", [(0, None, None, 1), (1, 1, 3, 1), (-1, 0, None, 2),
                                  (1, -3, None, 1), (0, 5, None, 1), (1, None, -1, 3)])  # fmt: skip
def test_slice_scatter(args):
    d, t = _pair((3, 4))
    dim, start, end, step = args
    shape = tuple(t[(slice(None),) * (dim % 2) + (slice(start, end, step),)].shape)
    sd, st = _pair(shape)
    _close(ds.slice_scatter(d, sd, dim, start, end, step),
           torch.slice_scatter(t, st, dim, start, end, step))  # fmt: skip
    _close(d.slice_scatter(sd, dim, start, end, step), t.slice_scatter(st, dim, start, end, step))


@pytest.mark.parametrize("shape,offset,d1,d2", [((3, 4), 0, 0, 1), ((3, 4), 2, 0, 1),
                                                ((3, 4), -1, 1, 0), ((2, 3, 4), 1, -1, 0),
                                                ((2, 3, 3), -5, 1, 2)])  # fmt: skip
def test_diagonal_scatter(shape, offset, d1, d2):
    d, t = _pair(shape)
    n = tuple(torch.diagonal(t, offset, d1, d2).shape)
    sd, st = _pair(n)
    _close(ds.diagonal_scatter(d, sd, offset, d1, d2),
           torch.diagonal_scatter(t, st, offset, d1, d2))  # fmt: skip
    _same_error(lambda: ds.diagonal_scatter(ds.zeros(5), ds.zeros(5)),
                lambda: torch.diagonal_scatter(torch.zeros(5), torch.zeros(5)))  # fmt: skip


@pytest.mark.parametrize("shape,offset", [((3,), 0), ((2, 2), 1), ((4,), -2), ((0,), 0), ((), 1)])
def test_diagflat(shape, offset):
    d, t = _pair(shape)
    _close(ds.diagflat(d, offset), torch.diagflat(t, offset))
    _close(d.diagflat(offset), t.diagflat(offset))


def test_scatter_family_float64_gradcheck():
    a = ds.tensor(RNG.normal(size=(3, 4)), requires_grad=True)
    b = ds.tensor(RNG.normal(size=(3,)), requires_grad=True)
    c = ds.tensor(RNG.normal(size=(3, 2)), requires_grad=True)
    assert gradcheck(lambda x, s: ds.select_scatter(x, s, 1, 2), (a, b))
    assert gradcheck(lambda x, s: ds.diagonal_scatter(x, s, 0), (a, b))
    assert gradcheck(lambda x, s: ds.slice_scatter(x, s, 1, 1, 4, 2), (a, c))


# ---------------------------------------------------------------------------------------------
# as_strided, storage offsets, data pointers, dim order


@pytest.mark.parametrize("size,stride,offset", [((2, 2), (1, 2), None), ((3,), (2,), 1),
                                                ((2, 3), (0, 1), 2), ((0, 2), (1, 1), None),
                                                ((), (), 5)])  # fmt: skip
def test_as_strided_values(size, stride, offset):
    d, t = _pair((2, 3))
    _close(ds.as_strided(d, size, stride, offset), torch.as_strided(t, size, stride, offset))
    _close(d.as_strided(size, stride, offset), t.as_strided(size, stride, offset))


def test_as_strided_of_a_view_uses_the_storage_offset():
    base_d, base_t = _pair((10,))
    d, t = base_d[3:], base_t[3:]
    _close(d.as_strided((2, 2), (1, 1)), t.as_strided((2, 2), (1, 1)))
    _close(d.as_strided((2,), (2,), 4), t.as_strided((2,), (2,), 4))


def test_as_strided_is_a_writable_view_of_the_storage_as_in_torch():
    d, t = ds.arange(6.0), torch.arange(6.0)
    vd, vt = d.as_strided((2, 2), (1, 2)), t.as_strided((2, 2), (1, 2))
    d.add_(1.0), t.add_(1.0)  # a view: the base's change shows through
    _close(vd, vt)
    vd.fill_(0.0), vt.fill_(0.0)  # writable (before 2026-12-05: read-only), as torch's
    _close(d, t)
    # a non-contiguous input reads the storage it views (before: RuntimeError)
    d, t = ds.arange(6.0).reshape(2, 3).t(), torch.arange(6.0).reshape(2, 3).t()
    _close(d.as_strided((2,), (1,)), t.as_strided((2,), (1,)))
    _same_error(lambda: ds.arange(6.0).as_strided((4,), (2,)),
                lambda: torch.arange(6.0).as_strided((4,), (2,)))  # fmt: skip


def test_as_strided_gradient_overlapping_windows():
    d, t = _pair((8,))
    d.requires_grad_(), t.requires_grad_()
    w = RNG.normal(size=(3, 4)).astype(np.float32)
    (ds.as_strided(d, (3, 4), (2, 1)) * ds.tensor(w)).sum().backward()
    (torch.as_strided(t, (3, 4), (2, 1)) * torch.tensor(w)).sum().backward()
    _close(d.grad, t.grad, atol=1e-5)
    a = ds.tensor(RNG.normal(size=(9,)), requires_grad=True)
    assert gradcheck(lambda x: ds.as_strided(x, (3, 4), (2, 1), 1), (a,))


def test_storage_offset_and_data_ptr_follow_torch():
    d, t = ds.arange(24.0).reshape(2, 3, 4), torch.arange(24.0).reshape(2, 3, 4)
    for idx in [(1,), (0, 2), (slice(None), 1), (1, slice(1, None), 2), (slice(None, None, 2),)]:
        vd, vt = d[idx], t[idx]
        assert vd.storage_offset() == vt.storage_offset(), idx
        isz = vt.element_size()
        assert (
            vd.data_ptr() - d.data_ptr()
            == vt.data_ptr() - t.data_ptr()
            == (vt.storage_offset() * isz)
        )
    assert d.storage_offset() == 0 and ds.tensor(3.0).storage_offset() == 0
    assert d[0].data_ptr() == d.data_ptr()  # a view at offset 0


@pytest.mark.parametrize("perm", [(0, 1, 2), (2, 0, 1), (1, 2, 0)])
def test_dim_order(perm):
    d, t = ds.zeros(2, 3, 4).permute(*perm), torch.zeros(2, 3, 4).permute(*perm)
    assert d.dim_order() == t.dim_order()


# ---------------------------------------------------------------------------------------------
# index_copy, index_reduce, masked_scatter, put


@pytest.mark.parametrize("dim,index", [(0, [2, 0]), (1, [3]), (-1, [0, 1, 2, 3]), (1, [1, 0])])
def test_index_copy(dim, index):
    d, t = _pair((3, 4))
    n = len(index)
    shape = (n, 4) if dim == 0 else (3, n)
    sd, st = _pair(shape)
    _close(
        ds.index_copy(d, dim, ds.tensor(index), sd),
        torch.index_copy(t, dim, torch.tensor(index), st),
    )
    _close(d.index_copy(dim, ds.tensor(index), sd), t.index_copy(dim, torch.tensor(index), st))


def test_index_copy_errors_and_0d():
    d, t = _pair((5,))
    _same_error(lambda: ds.index_copy(d, 0, ds.tensor([5]), ds.ones(1)),
                lambda: torch.index_copy(t, 0, torch.tensor([5]), torch.ones(1)))  # fmt: skip
    _same_error(lambda: ds.index_copy(d, 0, ds.tensor([-1]), ds.ones(1)),
                lambda: torch.index_copy(t, 0, torch.tensor([-1]), torch.ones(1)))  # fmt: skip
    _same_error(lambda: ds.index_copy(d, 0, ds.tensor([[0]]), ds.ones(1)),
                lambda: torch.index_copy(t, 0, torch.tensor([[0]]), torch.ones(1)))  # fmt: skip
    d0, t0 = _pair(())
    _close(ds.index_copy(d0, 0, ds.tensor([0]), ds.tensor(5.0)),
           torch.index_copy(t0, 0, torch.tensor([0]), torch.tensor(5.0)))  # fmt: skip


@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_index_reduce_values_and_gradients(reduce, include_self):
    x = RNG.permutation(12).reshape(3, 4).astype(np.float32) / 3 - 2
    s = RNG.permutation(12).reshape(3, 4).astype(np.float32) / 3 - 1.9
    idx = [2, 0, 2]
    d, sd = ds.tensor(x, requires_grad=True), ds.tensor(s, requires_grad=True)
    t, st = torch.tensor(x, requires_grad=True), torch.tensor(s, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "index_reduce() is in beta"
        yt = t.index_reduce(0, torch.tensor(idx), st, reduce, include_self=include_self)
    yd = d.index_reduce(0, ds.tensor(idx), sd, reduce, include_self=include_self)
    _close(yd, yt, atol=1e-5)
    w = RNG.normal(size=(3, 4)).astype(np.float32)
    (yd * ds.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    _close(d.grad, t.grad, atol=1e-5)
    _close(sd.grad, st.grad, atol=1e-5)


def test_index_reduce_refuses_sum_like_torch():
    d, t = _pair((5,))
    _same_error(lambda: d.index_reduce(0, ds.tensor([0]), ds.ones(1), "sum"),
                lambda: t.index_reduce(0, torch.tensor([0]), torch.ones(1), "sum"))  # fmt: skip


@pytest.mark.parametrize("mask_shape", [(3, 4), (4,), (3, 1), ()])
def test_masked_scatter_broadcasts_the_mask(mask_shape):
    d, t = _pair((3, 4))
    m = RNG.random(mask_shape) > 0.4
    sd, st = _pair((13,))
    _close(ds.masked_scatter(d, ds.tensor(m), sd), torch.masked_scatter(t, torch.tensor(m), st))
    _close(d.masked_scatter(ds.tensor(m), sd), t.masked_scatter(torch.tensor(m), st))


def test_masked_scatter_errors_and_gradient():
    d, t = _pair((5,))
    ones_d, ones_t = ds.ones(5, dtype=ds.bool), torch.ones(5, dtype=torch.bool)
    _same_error(lambda: ds.masked_scatter(d, ones_d, ds.ones(2)),
                lambda: torch.masked_scatter(t, ones_t, torch.ones(2)))  # fmt: skip
    a = ds.tensor(RNG.normal(size=(3, 4)), requires_grad=True)
    s = ds.tensor(RNG.normal(size=(2, 5)), requires_grad=True)
    m = ds.tensor(RNG.random((3, 4)) > 0.5)
    assert gradcheck(lambda x, y: ds.masked_scatter(x, m, y), (a, s))


@pytest.mark.parametrize("accumulate", [False, True])
def test_put(accumulate):
    d, t = _pair((3, 4))
    idx = [0, -1, 5] if not accumulate else [0, 5, 0, -12]
    sd, st = _pair((len(idx),))
    _close(
        ds.put(d, ds.tensor(idx), sd, accumulate), torch.put(t, torch.tensor(idx), st, accumulate)
    )
    _close(d.put(ds.tensor(idx), sd, accumulate=accumulate),
           t.put(torch.tensor(idx), st, accumulate=accumulate))  # fmt: skip
    _same_error(lambda: d.put(ds.tensor([12]), ds.ones(1)),
                lambda: t.put(torch.tensor([12]), torch.ones(1)))  # fmt: skip
    d0, t0 = _pair(())
    _close(d0.put(ds.tensor([0]), ds.tensor([3.0])), t0.put(torch.tensor([0]), torch.tensor([3.0])))


# ---------------------------------------------------------------------------------------------
# Shapes: swapdims, adjoint, H/mH, splits, unbind, sum_to_size, ravel, take_along_dim


def test_swapdims_adjoint_h_mh():
    d, t = _pair((2, 3, 4))
    _close(ds.swapdims(d, 0, -1), torch.swapdims(t, 0, -1))
    _close(d.swapdims(1, 2), t.swapdims(1, 2))
    _close(ds.adjoint(d), torch.adjoint(t))
    _close(d.mH, t.mH)
    m_d, m_t = _pair((2, 3))
    _close(m_d.H, m_t.H)
    assert m_d.H.shape == (3, 2)
    v = m_d.adjoint()
    v[0, 1] = 9.0  # views: writes reach the matrix
    assert m_d[1, 0].item() == 9.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _close(ds.tensor(2.0).H, torch.tensor(2.0).H)
    for f in (lambda x: x.H, lambda x: x.mH, lambda x: x.adjoint()):
        _same_error(lambda f=f: f(ds.zeros(3)), lambda f=f: f(torch.zeros(3)))
    _same_error(lambda: ds.zeros(2, 2, 2).H, lambda: torch.zeros(2, 2, 2).H)


@pytest.mark.parametrize("sizes,dim", [([2, 3], 0), ([0, 4, 1], 1), ([5], -2), ([1, 4], -1)])
def test_split_with_sizes(sizes, dim):
    shape = (5, 5) if dim in (0, -2) else (3, 5)
    d, t = _pair(shape)
    for fd, ft in ((ds.split_with_sizes, torch.split_with_sizes),
                   (ds.unsafe_split_with_sizes, torch.unsafe_split_with_sizes),
                   (ds.Tensor.split_with_sizes, torch.Tensor.split_with_sizes)):  # fmt: skip
        outs_d, outs_t = fd(d, sizes, dim), ft(t, sizes, dim)
        assert len(outs_d) == len(outs_t)
        for a, b in zip(outs_d, outs_t):
            _close(a, b)
    _same_error(
        lambda: ds.split_with_sizes(d, [2, 2], dim), lambda: torch.split_with_sizes(t, [2, 2], dim)
    )
    _same_error(
        lambda: ds.split_with_sizes(d, [6, -1], dim),
        lambda: torch.split_with_sizes(t, [6, -1], dim),
    )


def test_unsafe_split_chunk_and_unbind():
    d, t = _pair((5, 3))
    for a, b in zip(ds.unsafe_split(d, 2), torch.unsafe_split(t, 2)):
        _close(a, b)
    for a, b in zip(d.unsafe_chunk(2, 1), t.unsafe_chunk(2, 1)):
        _close(a, b)
    for a, b in zip(ds.unbind(d, -1), torch.unbind(t, -1)):
        _close(a, b)
    assert ds.unbind(ds.zeros(0, 3)) == ()
    assert len(ds.unbind(ds.zeros(0, 3), 1)) == 3
    _same_error(lambda: ds.unbind(ds.tensor(1.0)), lambda: torch.unbind(torch.tensor(1.0)))
    _same_error(lambda: ds.unbind(d, 2), lambda: torch.unbind(t, 2))


@pytest.mark.parametrize("shape,size", [((2, 3, 4), (3, 1)), ((2, 3, 4), (1, 1, 4)), ((3,), (3,)),
                                        ((2, 3), (1,)), ((), ()), ((4, 1), (1, 1))])  # fmt: skip
def test_sum_to_size(shape, size):
    d, t = _pair(shape)
    if size:
        _close(d.sum_to_size(*size), t.sum_to_size(*size), atol=1e-5)
    _close(d.sum_to_size(size), t.sum_to_size(size), atol=1e-5)


def test_sum_to_size_error():
    _same_error(lambda: ds.zeros(5).sum_to_size(2), lambda: torch.zeros(5).sum_to_size(2))
    _same_error(
        lambda: ds.zeros(5).sum_to_size(1, 5, 1), lambda: torch.zeros(5).sum_to_size(1, 5, 1)
    )


def test_ravel_and_take_along_dim_methods():
    d, t = _pair((2, 3))
    _close(d.ravel(), t.ravel())
    _close(d.t().ravel(), t.t().ravel())
    i = RNG.integers(0, 3, (2, 2))
    _close(d.take_along_dim(ds.tensor(i), 1), t.take_along_dim(torch.tensor(i), 1))
    _close(d.take_along_dim(ds.tensor([0, 5])), t.take_along_dim(torch.tensor([0, 5])))


# ---------------------------------------------------------------------------------------------
# Real tensors as complex ones, and facts about tensors


def test_conj_real_family_return_the_tensor():
    d = ds.randn(2, 3)
    for f in ("conj", "conj_physical", "resolve_conj", "resolve_neg", "real"):
        assert getattr(ds, f)(d) is d, f
    assert d.conj() is d and d.real is d and ds.conj_physical_(d) is d and d.conj_physical_() is d
    assert not d.is_conj() and not d.is_neg() and not d.is_complex() and not ds.is_complex(d)
    with pytest.raises(RuntimeError, match="imag is not implemented"):
        ds.imag(d)
    with pytest.raises(RuntimeError):
        d.imag  # noqa: B018
    with pytest.raises(RuntimeError):
        torch.randn(2).imag  # noqa: B018


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "int16", "int8",
                                   "uint8", "bool", "float16"])  # fmt: skip
def test_is_signed(dtype):
    d = ds.zeros(2, dtype=getattr(ds, dtype))
    t = torch.zeros(2, dtype=getattr(torch, dtype))
    assert d.is_signed() == t.is_signed() == ds.is_signed(d)


@pytest.mark.parametrize("value", [[0.0], [2.5], 0, [[True]], [], [1, 2]])
def test_is_nonzero(value):
    d, t = ds.tensor(value), torch.tensor(value)
    try:
        expected = torch.is_nonzero(t)
    except RuntimeError:
        with pytest.raises(RuntimeError, match="ambiguous"):
            ds.is_nonzero(d)
        return
    assert ds.is_nonzero(d) == d.is_nonzero() == expected


def test_facts_flags_and_memory_no_ops():
    d, t = ds.zeros(2, 3), torch.zeros(2, 3)
    assert ds.is_same_size(d, ds.ones(2, 3)) and not d.is_same_size(ds.ones(3, 2))
    assert ds.typename(d) == "descent.FloatTensor" and torch.typename(t) == "torch.FloatTensor"
    assert ds.typename(ds.zeros(2, dtype=ds.int64)) == "descent.LongTensor"
    assert ds.typename(1) == torch.typename(1) == "int"
    assert ds.get_device(d) == d.get_device() == torch.get_device(t) == -1
    assert repr(d.layout) == repr(t.layout) == "torch.strided"
    assert d.layout is ds.strided and isinstance(ds.strided, ds.layout)
    for flag in ("is_sparse", "is_sparse_csr", "is_quantized", "is_meta", "is_mkldnn",
                 "is_nested", "is_mps", "is_xpu", "is_vulkan", "is_xla", "is_ipu", "is_maia",
                 "is_mtia"):  # fmt: skip
        assert getattr(d, flag) is False and getattr(t, flag) is False, flag
    assert d.is_distributed() is False and t.is_distributed() is False
    assert ds.is_distributed(d) is False and torch.is_distributed(t) is False
    assert d.pin_memory() is d and d.is_pinned() is False
    assert d.share_memory_() is d and d.is_shared() is False
    assert d.is_inference() is False and ds.is_inference(d) is False
    assert ds.detach(d) is not d and ds.detach(d).data_ptr() == d.data_ptr()
    r = ds.ones(2, requires_grad=True) * 2
    assert ds.detach_(r) is r and not r.requires_grad and r.grad_fn is None


def test_retains_grad_follows_torch():
    for lib in (ds, torch):
        x = lib.ones(3, requires_grad=True)
        y = x * 2
        z = y * 3
        assert x.retains_grad is False and y.retains_grad is False
        y.retain_grad()
        assert y.retains_grad is True and z.retains_grad is False
        x.retain_grad()
        assert x.retains_grad is False  # a leaf keeps its grad anyway


# ---------------------------------------------------------------------------------------------
# fill, zero_, fill_, empty_strided


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_fill_and_zero(dtype):
    d = ds.tensor([[1, 2], [3, 4]], dtype=getattr(ds, dtype))
    t = torch.tensor([[1, 2], [3, 4]], dtype=getattr(torch, dtype))
    _close(ds.fill(d, 2.5), torch.fill(t, 2.5))
    _close(ds.fill(d, ds.tensor(3)), torch.fill(t, torch.tensor(3)))
    assert d.numpy()[0, 0] == 1  # fill returns a new tensor
    assert ds.fill_(d, 7) is d and ds.zero_(d) is d
    torch.fill_(t, 7), torch.zero_(t)
    _close(d, t)
    _same_error(lambda: ds.fill(d, ds.ones(2)), lambda: torch.fill(t, torch.ones(2)))


def test_fill_gradient_goes_to_the_value():
    x, v = ds.randn(2, 3, requires_grad=True), ds.tensor(2.0, requires_grad=True)
    tx, tv = torch.tensor(x.numpy(), requires_grad=True), torch.tensor(2.0, requires_grad=True)
    ds.fill(x, v).sum().backward()
    torch.fill(tx, tv).sum().backward()
    _close(v.grad, tv.grad)
    _close(x.grad, tx.grad)
    assert not np.isnan(ds.fill(ds.tensor([np.inf]), 1.0).numpy()).any()


def test_empty_strided():
    d = ds.empty_strided((2, 3), (1, 2), dtype=ds.float64)
    t = torch.empty_strided((2, 3), (1, 2), dtype=torch.float64)
    assert d.shape == t.shape and str(d.dtype).endswith("float64")
    n = ds.ones(2, dtype=ds.int32).new_empty_strided((4,), (1,))
    assert n.shape == (4,) and str(n.dtype).endswith("int32")
    with pytest.raises(RuntimeError):
        ds.empty_strided((2, 3), (1,))


# ---------------------------------------------------------------------------------------------
# Post-accumulate-grad hooks


def test_post_accumulate_grad_hook_follows_torch():
    seen = {}
    for lib in (ds, torch):
        p = lib.ones(3, requires_grad=True)
        calls = []
        h = p.register_post_accumulate_grad_hook(lambda q, c=calls: c.append(q.grad.clone()))
        (p * 2).sum().backward()
        (p * 3).sum().backward()
        h.remove()
        (p * 4).sum().backward()
        seen[lib.__name__] = [c.tolist() for c in calls]
        with pytest.raises(RuntimeError):
            (p * 1).register_post_accumulate_grad_hook(lambda q: None)
    assert seen["descent"] == seen["torch"] == [[2.0] * 3, [5.0] * 3]


def test_post_accumulate_grad_hook_not_called_by_functional_grad():
    p = ds.ones(2, requires_grad=True)
    calls = []
    p.register_post_accumulate_grad_hook(lambda q: calls.append(1))
    ds.autograd.grad((p * 2).sum(), [p])
    assert calls == [] and p.grad is None
    (p * 2).sum().backward()
    assert calls == [1]


# ---------------------------------------------------------------------------------------------
# Empty and 0-d tensors, integer dtypes: the same result (or error class) as torch

EDGES = [
    lambda L: L.select_scatter(L.zeros(0, 3), L.zeros(0), 1, 0),
    lambda L: L.slice_scatter(L.zeros(2, 3), L.zeros(2, 0), 1, 3),
    lambda L: L.diagonal_scatter(L.zeros(2, 3), L.zeros(0), 5),
    lambda L: L.index_copy(L.zeros(3, 2), 0, L.tensor([], dtype=L.int64), L.zeros(0, 2)),
    lambda L: L.index_reduce(L.zeros(3, 2), 0, L.tensor([], dtype=L.int64), L.zeros(0, 2), "amax"),
    lambda L: L.masked_scatter(L.zeros(0, 2), L.zeros(0, 2, dtype=L.bool), L.zeros(0)),
    lambda L: L.put(L.zeros(0), L.tensor([], dtype=L.int64), L.zeros(0)),
    lambda L: L.zeros(0, 0).fill_diagonal_(1.0),
    lambda L: L.zeros(0, 1).squeeze_(),
    lambda L: L.zeros(0, 3).t_(),
    lambda L: L.zeros(0, 3).tril_(),
    lambda L: L.split_with_sizes(L.zeros(0, 3), [0, 0]),
    lambda L: L.diagflat(L.zeros(0), 2),
    lambda L: L.zeros(2, 0).sum_to_size(1, 0),
    lambda L: L.zeros(0).index_add_(0, L.tensor([], dtype=L.int64), L.zeros(0)),
    lambda L: L.tensor(3.0).index_fill_(0, L.tensor([0]), 5.0),
    lambda L: L.tensor(3.0).index_add_(0, L.tensor([0]), L.tensor(2.0)),
    lambda L: L.tensor(3.0).put_(L.tensor([0]), L.tensor([7.0])),
    lambda L: L.tensor(3.0).masked_scatter(L.tensor(True), L.tensor([9.0])),
    lambda L: L.tensor(3.0).squeeze_(0),
    lambda L: L.tensor(3.0).t_(),
    lambda L: L.tensor(3.0).select_scatter(L.tensor(1.0), 0, 0),
    lambda L: L.arange(4.0).unsqueeze_(-1),
    lambda L: L.zeros(2, 3, dtype=L.int64).index_reduce_(
        0, L.tensor([0]), L.ones(1, 3, dtype=L.int64) * -5, "mean"
    ),
    lambda L: L.zeros(2, 3, dtype=L.int64).index_reduce(
        0, L.tensor([1, 1]), L.arange(6).reshape(2, 3), "mean", include_self=False
    ),
    lambda L: L.zeros(2, 3, dtype=L.int64).masked_scatter_(L.ones(2, 3, dtype=L.bool), L.arange(6)),
    lambda L: L.zeros(3, 3, dtype=L.int64).fill_diagonal_(7),
    lambda L: L.zeros(3, 3).index_fill_(-1, L.tensor([-1]), 2.0),
    lambda L: L.zeros(3, 3, dtype=L.int32).index_add_(
        0, L.tensor([1]), L.ones(1, 3, dtype=L.int32), alpha=3
    ),
    lambda L: L.zeros(3).index_copy_(0, L.tensor([1]), L.ones(1, dtype=L.float64)),
]


def _outcome(call, lib):
    try:
        out = call(lib)
    except Exception as e:  # noqa: BLE001 - the class is what is compared
        return type(e).__name__
    if isinstance(out, tuple):
        return [tuple(o.shape) for o in out]
    return tuple(out.shape), str(out.dtype).split(".")[-1], out.tolist()


@pytest.mark.parametrize("i", range(len(EDGES)))
def test_empty_0d_and_integer_edges_match_torch(i):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "index_reduce() is in beta"
        assert _outcome(EDGES[i], ds) == _outcome(EDGES[i], torch)


def test_scatter_reduce_integer_and_bool_without_self_as_torch():
    """scatter_reduce(amax/amin, include_self=False) on integer tensors raised OverflowError
    (the slots were reset to -inf / inf before reducing); every reduce and integer dtype, and
    bool, against torch; index_reduce_ shares the path."""
    import torch  # noqa: PLC0415

    for red in ("amax", "amin", "prod", "sum", "mean"):
        for name in ("int64", "int32", "int16", "uint8"):
            got = []
            for lib in (ds, torch):
                dt = getattr(lib, name)
                x = lib.tensor([3, 1, 4, 2], dtype=dt)
                src = lib.tensor([5, 9, 7, 0], dtype=dt)
                got.append(
                    x.scatter_reduce(0, lib.tensor([0, 2, 2, 0]), src, red, include_self=False)
                )
            assert str(got[0].dtype).split(".")[1] == name
            assert got[0].tolist() == got[1].tolist(), (red, name)
    for red in ("amax", "amin"):
        got = [
            lib.tensor([True, False, True]).scatter_reduce(
                0, lib.tensor([0, 2, 2]), lib.tensor([False, True, False]), red, include_self=False
            )
            for lib in (ds, torch)
        ]
        assert got[0].tolist() == got[1].tolist()
    got = [
        lib.zeros(3, dtype=lib.long).index_reduce_(
            0, lib.tensor([0, 2, 2]), lib.tensor([-5, -9, -7]), "amax", include_self=False
        )
        for lib in (ds, torch)
    ]
    assert got[0].tolist() == got[1].tolist() == [-5, 0, -7]
