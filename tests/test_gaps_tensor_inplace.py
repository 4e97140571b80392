"""In-place shape, index and random-fill methods added on 2026-12-04
(descent.ops.gaps_tensor_inplace) and the top-level switches of descent.torch_toggles, against
torch: values, identity (the method returns self), the leaf rule, autograd through in-place
changes of non-leaves (float32 vs torch, float64 finite differences), views seeing unrecorded
writes, and the saved-tensor check."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import descent as ds
from descent.autograd_gradcheck import gradcheck

RNG = np.random.default_rng(1)


def _close(d, t, atol=1e-5, rtol=1e-5):
    assert tuple(d.shape) == tuple(t.shape), (tuple(d.shape), tuple(t.shape))
    assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], (d.dtype, t.dtype)
    np.testing.assert_allclose(d.numpy(), t.detach().numpy(), atol=atol, rtol=rtol)


def _lib_args(lib, args):
    """Turn the NumPy arrays among args into lib tensors (indices stay int64, masks bool)."""
    out = []
    for a in args:
        out.append(lib.tensor(a) if isinstance(a, np.ndarray) else a)
    return out


IDX2 = np.array([2, 0])
SRC24 = RNG.normal(size=(2, 4)).astype(np.float32)
MASK = RNG.random((3, 4)) > 0.5
SCATTER_IDX = np.array([[0, 1, 2, 0], [2, 2, 1, 0]])

# (method, shape of self, positional args, keyword args, differentiable args' positions)
CASES = [
    ("squeeze_", (3, 1, 4), (), {}, ()),
    ("squeeze_", (3, 1, 4), (1,), {}, ()),
    ("squeeze_", (3, 1, 4), (-1,), {}, ()),
    ("unsqueeze_", (3, 4), (-1,), {}, ()),
    ("unsqueeze_", (), (0,), {}, ()),
    ("t_", (3, 4), (), {}, ()),
    ("t_", (4,), (), {}, ()),
    ("transpose_", (2, 3, 4), (0, -1), {}, ()),
    ("swapaxes_", (2, 3, 4), (1, 2), {}, ()),
    ("swapdims_", (2, 3, 4), (-3, 1), {}, ()),
    ("tril_", (3, 4), (), {}, ()),
    ("tril_", (2, 3, 4), (-1,), {}, ()),
    ("triu_", (3, 4), (1,), {}, ()),
    ("index_add_", (3, 4), (0, IDX2, SRC24), {"alpha": 2.0}, (2,)),
    ("index_copy_", (3, 4), (0, IDX2, SRC24), {}, (2,)),
    ("index_fill_", (3, 4), (1, np.array([1, 3]), -1.5), {}, ()),
    ("index_reduce_", (3, 4), (0, IDX2, SRC24, "prod"), {}, (2,)),
    ("index_reduce_", (3, 4), (0, IDX2, SRC24, "mean"), {"include_self": False}, (2,)),
    ("masked_scatter_", (3, 4), (MASK, RNG.normal(size=(12,)).astype(np.float32)), {}, (1,)),
    ("put_", (3, 4), (np.array([0, 11, -2]), SRC24[0, :3]), {}, (1,)),
    ("put_", (3, 4), (np.array([0, 0, 5]), SRC24[0, :3]), {"accumulate": True}, (1,)),
    ("scatter_add_", (3, 4), (0, SCATTER_IDX, SRC24), {}, (2,)),
    ("scatter_reduce_", (3, 4), (0, SCATTER_IDX, SRC24, "amax"), {}, (2,)),
    ("scatter_reduce_", (3, 4), (1, SCATTER_IDX, SRC24, "sum"), {"include_self": False}, (2,)),
    ("fill_diagonal_", (3, 4), (2.5,), {}, ()),
    ("fill_diagonal_", (7, 3), (2.5,), {"wrap": True}, ()),
    ("fill_diagonal_", (7, 3), (2.5,), {"wrap": False}, ()),
    ("fill_diagonal_", (3, 3, 3), (-1.0,), {}, ()),
    ("renorm_", (3, 4), (2, 0, 1.0), {}, ()),
    ("renorm_", (3, 4), (1, 1, 0.5), {}, ()),
]
CASE_IDS = [f"{c[0]}-{i}" for i, c in enumerate(CASES)]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_inplace_values_and_identity(case):
    name, shape, args, kwargs, _ = case
    x = RNG.normal(size=shape).astype(np.float32)
    d, t = ds.tensor(x), torch.tensor(x)
    rd = getattr(d, name)(*_lib_args(ds, args), **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "index_reduce() is in beta"
        rt = getattr(t, name)(*_lib_args(torch, args), **kwargs)
    assert rd is d and rt is t
    _close(d, t)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_inplace_on_a_leaf_that_requires_grad_raises(case):
    name, shape, args, kwargs, _ = case
    d = ds.zeros(shape, requires_grad=True)
    t = torch.zeros(shape, requires_grad=True)
    with pytest.raises(RuntimeError):
        getattr(t, name)(*_lib_args(torch, args), **kwargs)
    with pytest.raises(RuntimeError):
        getattr(d, name)(*_lib_args(ds, args), **kwargs)
    with ds.no_grad():  # allowed without recording, as in torch
        assert getattr(d, name)(*_lib_args(ds, args), **kwargs) is d


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradients_through_inplace_on_a_non_leaf(case):
    name, shape, args, kwargs, diff = case
    x = RNG.normal(size=shape).astype(np.float32)
    if name == "scatter_reduce_":  # distinct values: no ties for amax
        x = (RNG.permutation(x.size).reshape(shape) / 3.0).astype(np.float32)
    grads = {}
    for lib in (ds, torch):
        leaf = lib.tensor(x, requires_grad=True)
        a = _lib_args(lib, args)
        srcs = []
        for i in diff:
            a[i] = a[i].clone().requires_grad_()
            srcs.append(a[i])
        y = leaf * 2.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = getattr(y, name)(*a, **kwargs)
        assert out is y and y.requires_grad
        w = lib.tensor(np.linspace(-1, 1, y.numel(), dtype=np.float32).reshape(tuple(y.shape)))
        (y * w).sum().backward()
        grads[lib.__name__] = [leaf.grad] + [s.grad for s in srcs]
    for gd, gt in zip(grads["descent"], grads["torch"]):
        _close(gd, gt)


def test_inplace_float64_finite_differences():
    x = ds.tensor(RNG.normal(size=(3, 4)), requires_grad=True)
    s = ds.tensor(RNG.normal(size=(2, 4)), requires_grad=True)
    idx = ds.tensor([2, 0])
    assert gradcheck(lambda a, b: (a * 1.0).index_copy_(0, idx, b), (x, s))
    assert gradcheck(lambda a, b: (a * 1.0).index_add_(0, idx, b, alpha=-0.5), (x, s))
    assert gradcheck(lambda a, b: (a * 1.0).index_reduce_(0, idx, b, "prod"), (x, s))
    assert gradcheck(lambda a: (a * 1.0).t_().tril_(-1), (x,))
    assert gradcheck(lambda a: (a * 1.0).unsqueeze_(1).transpose_(0, 2).squeeze_(), (x,))
    assert gradcheck(lambda a: (a * 1.0).renorm_(2, 0, 1.0), (x,))
    assert gradcheck(lambda a: (a * 1.0).fill_diagonal_(0.5), (x,))


def test_unrecorded_writes_reach_views():
    for lib in (ds, torch):
        base = lib.zeros(2, 3, 4)
        v = base[1]
        v.index_fill_(0, lib.tensor([0, 2]), 1.0)
        v.fill_diagonal_(5.0)
        v.tril_()
        assert base.sum().item() == pytest.approx(v.sum().item())
        assert base[1, 0, 0].item() == 5.0 and base[0].abs().sum().item() == 0.0
    for lib in (ds, torch):  # shape methods: the result still shares the memory
        z = lib.zeros(2, 1)
        v = z[:]
        v.squeeze_()
        v.fill_(1.0)
        assert z.tolist() == [[1.0], [1.0]] and tuple(v.shape) == (2,)
        w = z[:]
        w.t_()
        w[0, 1] = 3.0
        assert z[1, 0].item() == 3.0


def test_inplace_after_a_save_raises_at_backward():
    for lib in (ds, torch):
        x = lib.ones(3, 3, requires_grad=True)
        a = x * 2.0
        b = a * a  # saves a
        a.index_fill_(0, lib.tensor([0]), 0.0)
        with pytest.raises(RuntimeError):
            b.sum().backward()
        c = x * 2.0
        e = c * c
        c.transpose_(0, 1)  # a view change bumps the version too (PyTorch's rule)
        with pytest.raises(RuntimeError):
            e.sum().backward()


def test_t_refuses_more_than_two_dims():
    for lib in (ds, torch):
        with pytest.raises(RuntimeError):
            lib.zeros(2, 2, 2).t_()


def test_fill_diagonal_needs_equal_dims():
    for lib in (ds, torch):
        with pytest.raises(RuntimeError):
            lib.zeros(2, 3, 4).fill_diagonal_(1.0)
        with pytest.raises(RuntimeError):
            lib.zeros(3).fill_diagonal_(1.0)


# ---------------------------------------------------------------------------------------------
# resize_ and resize_as_


@pytest.mark.parametrize("old,new", [((5,), (2, 2)), ((5,), (2, 4)), ((2, 3), (6,)), ((3,), (0,)),
                                     ((0,), (2,)), ((4,), ())])  # fmt: skip
def test_resize_keeps_leading_elements(old, new):
    n = int(np.prod(old))
    d, t = ds.arange(float(n)).reshape(old), torch.arange(float(n)).reshape(old)
    assert d.resize_(new) is d and t.resize_(new) is t
    k = min(n, int(np.prod(new)))
    assert tuple(d.shape) == tuple(t.shape) == new
    np.testing.assert_array_equal(d.numpy().reshape(-1)[:k], t.numpy().reshape(-1)[:k])
    assert (d.numpy().reshape(-1)[k:] == 0).all()  # descent zero-fills (torch: uninitialised)


def test_resize_refuses_grad_and_resize_as():
    for lib in (ds, torch):
        with pytest.raises(RuntimeError, match="cannot resize variables that require grad"):
            lib.zeros(3, requires_grad=True).resize_(2)
        x = lib.arange(6.0)
        assert lib.resize_as_(x, lib.zeros(2, 2)) is x and tuple(x.shape) == (2, 2)
        assert x.resize_as_(lib.zeros(3)) is x and x.tolist() == [0.0, 1.0, 2.0]


# ---------------------------------------------------------------------------------------------
# Random fills


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_random_fills_keep_dtype_and_support(dtype):
    g = ds.Generator().manual_seed(3)
    x = ds.empty(20000, dtype=getattr(ds, dtype))
    assert x.log_normal_(0.0, 0.5, generator=g) is x
    v = x.numpy()
    assert str(x.dtype).endswith(dtype) and (v > 0).all()
    assert abs(np.log(v).mean()) < 0.02 and abs(np.log(v).std() - 0.5) < 0.02
    x.cauchy_(1.0, 2.0, generator=g)
    assert abs(np.median(x.numpy()) - 1.0) < 0.1
    x.geometric_(0.25, generator=g)
    v = x.numpy()
    assert (v >= 1).all() and (v == np.round(v)).all() and abs(v.mean() - 4.0) < 0.15
    ints = ds.zeros(5, dtype=ds.int64).geometric_(0.5)
    assert (ints.numpy() >= 1).all() and str(ints.dtype).endswith("int64")


def test_random_fills_reproducible_with_a_generator():
    a = ds.empty(6).log_normal_(generator=ds.Generator().manual_seed(7))
    b = ds.empty(6).log_normal_(generator=ds.Generator().manual_seed(7))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    ds.manual_seed(5)
    c = ds.empty(4).cauchy_()
    ds.manual_seed(5)
    np.testing.assert_array_equal(c.numpy(), ds.empty(4).cauchy_().numpy())


@pytest.mark.parametrize("call", [
    lambda lib: lib.zeros(3).geometric_(1.0),
    lambda lib: lib.zeros(3).geometric_(0.0),
    lambda lib: lib.zeros(3).log_normal_(std=0.0),
    lambda lib: lib.zeros(3).cauchy_(sigma=-1.0),
    lambda lib: lib.zeros(3, dtype=lib.int64).log_normal_(),
    lambda lib: lib.zeros(3, dtype=lib.int64).cauchy_(),
    lambda lib: lib.zeros(3, requires_grad=True).cauchy_(),
])  # fmt: skip
def test_random_fill_errors_match_torch(call):
    with pytest.raises(Exception) as et:
        call(torch)
    with pytest.raises(type(et.value)):
        call(ds)


# ---------------------------------------------------------------------------------------------
# Top-level switches (descent.torch_toggles)


def test_anomaly_switches():
    assert ds.is_anomaly_enabled() is torch.is_anomaly_enabled() is False
    try:
        ds.set_anomaly_enabled(True, check_nan=False)
        assert ds.is_anomaly_enabled() and not ds.is_anomaly_check_nan_enabled()
        ds.set_anomaly_enabled(True)
        assert ds.is_anomaly_check_nan_enabled()
    finally:
        ds.set_anomaly_enabled(False)
    assert not ds.is_anomaly_enabled() and not ds.is_anomaly_check_nan_enabled()


def test_warn_always_inference_mode_and_denormals():
    assert ds.is_warn_always_enabled() is torch.is_warn_always_enabled() is False
    ds.set_warn_always(True)
    assert ds.is_warn_always_enabled()
    ds.set_warn_always(False)
    assert not ds.is_inference_mode_enabled()
    with ds.inference_mode():
        assert ds.is_inference_mode_enabled()
        with ds.inference_mode(False):
            assert not ds.is_inference_mode_enabled()
        assert ds.is_inference_mode_enabled() and not ds.is_grad_enabled()
    assert not ds.is_inference_mode_enabled() and ds.is_grad_enabled()

    @ds.inference_mode()
    def f():
        return ds.is_inference_mode_enabled()

    assert f() and not ds.is_inference_mode_enabled()
    assert ds.set_flush_denormal(True) is False and ds.set_flush_denormal(False) is False


def test_set_default_tensor_type():
    before = ds.get_default_dtype()
    try:
        for t in (ds.DoubleTensor, "torch.DoubleTensor", "descent.DoubleTensor"):
            ds.set_default_dtype(ds.float32)
            with pytest.warns(UserWarning, match="deprecated"):
                ds.set_default_tensor_type(t)
            assert str(ds.get_default_dtype()).endswith("float64")
            assert str(ds.tensor([1.5]).dtype).endswith("float64")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for bad in (ds.LongTensor, "torch.LongTensor", "torch.NoSuchTensor"):
                with pytest.raises(TypeError):
                    ds.set_default_tensor_type(bad)
            with pytest.raises(TypeError):
                torch.set_default_tensor_type(torch.LongTensor)
    finally:
        ds.set_default_dtype(before)


def test_autocast_state_getters_and_setters():
    assert ds.is_autocast_enabled("cpu") is torch.is_autocast_enabled("cpu") is False
    assert not ds.is_autocast_enabled() and not ds.is_autocast_cpu_enabled()
    assert str(ds.get_autocast_dtype("cuda")).endswith("float16")
    assert str(ds.get_autocast_gpu_dtype()).endswith("float16")
    try:
        ds.set_autocast_cpu_dtype(ds.float16)
        ds.set_autocast_enabled("cpu", True)
        assert ds.is_autocast_enabled("cpu") and ds.is_autocast_cpu_enabled()
        a, b = ds.randn(4, 4), ds.randn(4, 4)
        assert str((a @ b).dtype).endswith("float16")  # the region is in force
        assert str(ds.get_autocast_cpu_dtype()).endswith("float16")
        with pytest.raises(RuntimeError):
            with ds.autocast("cpu"):
                ds.set_autocast_enabled("cpu", False)
    finally:
        ds.set_autocast_enabled("cpu", False)
    assert not ds.is_autocast_enabled("cpu")
    assert str((ds.randn(2, 2) @ ds.randn(2, 2)).dtype).endswith("float32")
    with pytest.raises(ValueError):
        ds.set_autocast_dtype("cpu", ds.int64)
    assert ds.is_autocast_cache_enabled()
    ds.set_autocast_cache_enabled(False)
    assert not ds.is_autocast_cache_enabled()
    ds.set_autocast_cache_enabled(True)
    ds.clear_autocast_cache()
    assert ds.autocast_increment_nesting() == 1 and ds.autocast_decrement_nesting() == 0
