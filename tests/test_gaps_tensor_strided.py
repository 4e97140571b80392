"""The *_copy functions, as_strided_scatter, nonzero_static, empty_permuted, the legacy
x.new / x.resize / is_set_to / apply_ family, and the memory-format constants added on
2026-12-04 (descent.ops.gaps_tensor_strided, docs/torch_gaps_tensor.md), against torch."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch

import descent as ds
from descent.autograd_gradcheck import gradcheck

RNG = np.random.default_rng(2)


def _close(d, t, atol=1e-6):
    assert tuple(d.shape) == tuple(t.shape), (tuple(d.shape), tuple(t.shape))
    assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], (d.dtype, t.dtype)
    np.testing.assert_allclose(d.numpy(), t.detach().numpy(), atol=atol, rtol=1e-5)


COPIES = [
    ("select_copy", (1, -1)),
    ("slice_copy", (1, 0, None, 2)),
    ("slice_copy", (0, -1)),
    ("diagonal_copy", (1,)),
    ("diagonal_copy", (0, 1, 0)),
    ("expand_copy", ((2, 3, 4),)),
    ("permute_copy", ((1, 0),)),
    ("t_copy", ()),
    ("transpose_copy", (0, -1)),
    ("unsqueeze_copy", (-1,)),
    ("squeeze_copy", ()),
    ("view_copy", ((4, 3),)),
    ("unfold_copy", (1, 2, 1)),
    ("narrow_copy", (1, 1, 2)),
    ("as_strided_copy", ((2, 2), (1, 3))),
    ("detach_copy", ()),
    ("alias_copy", ()),
]


@pytest.mark.parametrize("name,args", COPIES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(COPIES)])
def test_copy_functions_match_torch_and_never_share_memory(name, args):
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    d, t = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = getattr(ds, name)(d, *args), getattr(torch, name)(t, *args)
    _close(yd, yt)
    if yd.numel():
        before = d.numpy().copy()
        with ds.no_grad():
            yd.fill_(123.0)  # a copy: writable, and the input does not change
        np.testing.assert_array_equal(d.numpy(), before)
    if name != "detach_copy":
        w = np.linspace(-1, 1, yt.numel(), dtype=np.float32).reshape(tuple(yt.shape))
        yd, yt = getattr(ds, name)(d, *args), getattr(torch, name)(t, *args)
        (yd * ds.tensor(w)).sum().backward()
        (yt * torch.tensor(w)).sum().backward()
        _close(d.grad, t.grad)
    else:
        assert not yd.requires_grad  # (torch 2.13 marks its detach_copy as requiring grad)


def test_split_and_unbind_copies():
    d, t = ds.arange(10.0).reshape(5, 2), torch.arange(10.0).reshape(5, 2)
    for a, b in zip(ds.split_copy(d, 2), torch.split_copy(t, 2)):
        _close(a, b)
    for a, b in zip(ds.split_with_sizes_copy(d, [1, 4]), torch.split_with_sizes_copy(t, [1, 4])):
        _close(a, b)
    for a, b in zip(ds.unbind_copy(d, 1), torch.unbind_copy(t, 1)):
        _close(a, b)
    assert ds.unbind_copy(d)[0].data_ptr() != d.data_ptr()


def test_t_copy_rule():
    _close(ds.t_copy(ds.arange(3.0)), torch.t_copy(torch.arange(3.0)))
    for lib in (ds, torch):
        with pytest.raises(RuntimeError):
            lib.t_copy(lib.zeros(2, 2, 2))


@pytest.mark.parametrize(
    "size,stride,offset",
    [((2, 2), (1, 2), None), ((3,), (2,), 1), ((2, 2), (3, 1), 0), ((1, 3), (0, 1), 3)],
)
def test_as_strided_scatter(size, stride, offset):
    x = RNG.normal(size=(2, 3)).astype(np.float32)
    s = RNG.normal(size=size).astype(np.float32)
    yd = ds.as_strided_scatter(ds.tensor(x), ds.tensor(s), size, stride, offset)
    yt = torch.as_strided_scatter(torch.tensor(x), torch.tensor(s), size, stride, offset)
    _close(yd, yt)
    _close(ds.tensor(x).as_strided_scatter(ds.tensor(s), size, stride, offset), yt)


def test_as_strided_scatter_gradients_and_errors():
    a = ds.tensor(RNG.normal(size=(2, 3)), requires_grad=True)
    s = ds.tensor(RNG.normal(size=(2, 2)), requires_grad=True)
    assert gradcheck(lambda x, y: ds.as_strided_scatter(x, y, (2, 2), (1, 2), 1), (a, s))
    for lib in (ds, torch):
        with pytest.raises(RuntimeError):
            lib.as_strided_scatter(lib.zeros(6), lib.ones(3), (2, 2), (1, 2))
        with pytest.raises(RuntimeError):  # a zero stride: a view that overlaps itself
            lib.as_strided_scatter(lib.zeros(6), lib.ones(2, 2), (2, 2), (0, 1))


@pytest.mark.parametrize("values,size,fill", [([0, 1, 0, 2], 3, -1), ([[0, 1], [1, 1]], 1, 9),
                                              ([[0, 1], [1, 1]], 5, 0), ([0, 0], 0, -1),
                                              ([], 2, -1)])  # fmt: skip
def test_nonzero_static(values, size, fill):
    d, t = ds.tensor(values), torch.tensor(values)
    _close(ds.nonzero_static(d, size=size, fill_value=fill),
           torch.nonzero_static(t, size=size, fill_value=fill))  # fmt: skip
    _close(d.nonzero_static(size=size), t.nonzero_static(size=size))


@pytest.mark.parametrize("size,layout", [((2, 3, 4), (0, 2, 1)), ((2, 3), (1, 0)), ((5,), (0,))])
def test_empty_permuted(size, layout):
    d, t = ds.empty_permuted(size, layout), torch.empty_permuted(size, layout)
    assert tuple(d.shape) == tuple(t.shape) and d.stride() == t.stride()
    assert str(ds.empty_permuted(size, layout, dtype=ds.float64).dtype).endswith("float64")
    with pytest.raises(RuntimeError):
        ds.empty_permuted((2, 3), (0, 0))


def test_legacy_new_resize_and_is_set_to():
    d, t = ds.arange(6.0), torch.arange(6.0)
    for args in [(), ([1, 2],), ((1, 2),)]:
        _close(d.new(*args), t.new(*args))
    assert tuple(d.new(2, 3).shape) == tuple(t.new(2, 3).shape) and d.new(2, 3).sum().item() == 0
    assert tuple(d.new(ds.Size([2, 2])).shape) == (2, 2)
    assert str(ds.zeros(2, dtype=ds.int32).new([1, 2]).dtype).endswith("int32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rd, rt = d.resize(2, 3), t.resize(2, 3)
        _close(rd, rt)
        assert rd.data_ptr() == d.data_ptr()  # same count: a view, as torch
        assert tuple(d.resize(4).shape) == (4,) and tuple(d.shape) == (6,)
        assert tuple(d.resize_as(ds.zeros(3, 2)).shape) == (3, 2)
    with pytest.warns(UserWarning, match="deprecated"):
        d.resize(3, 2)
    for other_d, other_t in [(d, t), (d[:], t[:]), (d.view(2, 3), t.view(2, 3)),
                             (d.clone(), t.clone()), (d[1:], t[1:])]:  # fmt: skip
        assert d.is_set_to(other_d) == t.is_set_to(other_t)
    assert d.const_data_ptr() == d.data_ptr()


def test_apply_map_map2():
    for lib in (ds, torch):
        x = lib.arange(4.0)
        y = lib.tensor([1.0, 2.0, 3.0, 4.0])
        assert x.apply_(lambda v: v * 2) is x
        assert x.map_(y, lambda a, b: a + b) is x
        assert x.map2_(y, lib.tensor(1.0), lambda a, b, c: a - b + c) is x
        assert x.tolist() == [1.0, 3.0, 5.0, 7.0]
    with pytest.raises(RuntimeError):
        ds.zeros(2, requires_grad=True).apply_(lambda v: v)


def test_memory_formats_and_newaxis():
    for name in ("contiguous_format", "channels_last", "channels_last_3d", "preserve_format",
                 "legacy_contiguous_format"):  # fmt: skip
        d, t = getattr(ds, name), getattr(torch, name)
        assert repr(d) == repr(t) and isinstance(d, ds.memory_format)
        assert pickle.loads(pickle.dumps(d)) is d
    assert pickle.loads(pickle.dumps(ds.strided)) is ds.strided
    x = ds.zeros(2, 3, 4, 5)
    assert x.contiguous(memory_format=ds.channels_last).shape == (2, 3, 4, 5)
    assert x.to(memory_format=ds.channels_last).shape == (2, 3, 4, 5)
    assert ds.newaxis is torch.newaxis is None
    assert x[:, ds.newaxis].shape == (2, 1, 3, 4, 5)


def test_no_earlier_tensor_base_shadows_a_tensor_gap_method():
    from descent.tensor_gap_methods_tensor import TensorGapMethods2

    for name, member in vars(TensorGapMethods2).items():
        if name.startswith("__"):
            continue
        owner = next(c for c in ds.Tensor.__mro__ if name in vars(c))
        assert owner is TensorGapMethods2, f"{name} is defined by {owner.__name__} first"
        assert getattr(ds.Tensor, name) is member or isinstance(member, property)
