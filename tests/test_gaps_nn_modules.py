"""torch.nn names added with docs/torch_gaps_nn.md against PyTorch: F.fractional_max_pool2d/3d
(+ _with_indices) and FractionalMaxPool2d/3d, CrossMapLRN2d, SyncBatchNorm (one process),
Buffer, UninitializedParameter/UninitializedBuffer, F.conv_tbc, F.native_channel_shuffle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF

import descent as ds
import descent.nn as nn
import descent.nn.functional as F
from descent.autograd_gradcheck import gradcheck

RNG = np.random.default_rng(11)


def _np(t):
    return np.asarray(t.detach().numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("dims", "shape", "kernel", "kw"),
    [
        (2, (2, 3, 11, 9), 3, {"output_size": (5, 4)}),
        (2, (2, 3, 11, 9), 2, {"output_size": (10, 8)}),
        (2, (2, 3, 11, 9), (2, 3), {"output_ratio": (0.5, 0.7)}),
        (2, (3, 8, 8), 2, {"output_size": 1}),  # unbatched
        (3, (2, 2, 7, 8, 9), (2, 3, 2), {"output_size": (4, 5, 3)}),
        (3, (2, 6, 5, 7), 2, {"output_ratio": (0.6, 0.5, 0.5)}),  # unbatched
    ],
)
def test_fractional_max_pool_matches_torch_given_the_samples(dtype, dims, shape, kernel, kw):
    x = RNG.standard_normal(shape).astype(dtype)
    planes = (shape[0], shape[1]) if len(shape) == dims + 2 else (1, shape[0])
    u = RNG.uniform(0, 1, planes + (dims,)).astype(dtype)
    tf = TF.fractional_max_pool2d if dims == 2 else TF.fractional_max_pool3d
    df = F.fractional_max_pool2d if dims == 2 else F.fractional_max_pool3d
    tx, dx = torch.tensor(x, requires_grad=True), ds.tensor(x, requires_grad=True)
    t_out, t_idx = tf(tx, kernel, return_indices=True, _random_samples=torch.tensor(u), **kw)
    d_out, d_idx = df(dx, kernel, return_indices=True, _random_samples=ds.tensor(u), **kw)
    assert d_out.dtype == dx.dtype and d_idx.dtype == ds.int64
    np.testing.assert_array_equal(_np(d_out), _np(t_out))
    np.testing.assert_array_equal(_np(d_idx), _np(t_idx))
    cot = RNG.standard_normal(tuple(t_out.shape)).astype(dtype)
    (t_out * torch.tensor(cot)).sum().backward()
    (d_out * ds.tensor(cot)).sum().backward()
    np.testing.assert_allclose(_np(dx.grad), _np(tx.grad), rtol=1e-6)
    fn = getattr(F, f"fractional_max_pool{dims}d_with_indices")
    again = fn(dx, kernel, _random_samples=ds.tensor(u), **kw)
    np.testing.assert_array_equal(_np(again[1]), _np(t_idx))


def test_fractional_max_pool_draws_its_own_samples_and_checks_sizes():
    x = ds.randn(2, 3, 10, 10)
    out, idx = F.fractional_max_pool2d(x, 2, output_size=4, return_indices=True)
    assert tuple(out.shape) == (2, 3, 4, 4)
    flat = _np(x).reshape(2, 3, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, _np(idx).reshape(2, 3, -1), -1),
                                  _np(out).reshape(2, 3, -1))  # fmt: skip
    with pytest.raises(ValueError, match="output_size or an output_ratio"):
        F.fractional_max_pool2d(x, 2)
    with pytest.raises(RuntimeError, match="too large"):
        F.fractional_max_pool2d(x, 3, output_size=9)
    with pytest.raises(RuntimeError):
        TF.fractional_max_pool2d(torch.randn(2, 3, 10, 10), 3, output_size=9)
    u = ds.tensor(RNG.uniform(0, 1, (1, 2, 2)))
    x = ds.tensor(RNG.standard_normal((1, 2, 6, 5)), requires_grad=True)
    assert gradcheck(lambda t: F.fractional_max_pool2d(t, 2, (3, 3), _random_samples=u), (x,))


def test_fractional_max_pool_modules_match_torch():
    x = RNG.standard_normal((2, 3, 9, 9)).astype(np.float32)
    u = RNG.uniform(0, 1, (2, 3, 2)).astype(np.float32)
    t = tnn.FractionalMaxPool2d(3, output_ratio=0.5, _random_samples=torch.tensor(u))
    d = nn.FractionalMaxPool2d(3, output_ratio=0.5, _random_samples=ds.tensor(u))
    np.testing.assert_array_equal(_np(d(ds.tensor(x))), _np(t(torch.tensor(x))))
    assert list(d.state_dict()) == list(t.state_dict()) == ["_random_samples"]
    d3 = nn.FractionalMaxPool3d(2, output_size=3, return_indices=True)
    out, idx = d3(ds.randn(1, 2, 6, 6, 6))
    assert tuple(out.shape) == tuple(idx.shape) == (1, 2, 3, 3, 3)
    for cls_t, cls_d in ((tnn.FractionalMaxPool2d, nn.FractionalMaxPool2d),):
        for kw in ({}, {"output_ratio": 1.5}, {"output_size": 2, "output_ratio": 0.5}):
            with pytest.raises(ValueError):
                cls_t(2, **kw)
            with pytest.raises(ValueError):
                cls_d(2, **kw)


@pytest.mark.parametrize(("size", "channels"), [(3, 7), (4, 7), (5, 9), (2, 4), (5, 3)])
def test_cross_map_lrn2d_values_match_torch(size, channels):
    x = RNG.standard_normal((2, channels, 3, 4))
    t = tnn.CrossMapLRN2d(size, 1e-2, 0.75, 1.5)(torch.tensor(x))
    d = nn.CrossMapLRN2d(size, 1e-2, 0.75, 1.5)(ds.tensor(x))
    np.testing.assert_allclose(_np(d), _np(t), rtol=1e-12, atol=1e-14)
    d32 = nn.CrossMapLRN2d(size, 1e-2, 0.75, 1.5)(ds.tensor(x.astype(np.float32)))
    assert d32.dtype == ds.float32
    np.testing.assert_allclose(_np(d32), _np(t), rtol=1e-5, atol=1e-6)


def test_cross_map_lrn2d_gradients():
    m = nn.CrossMapLRN2d(3, 0.5, 0.75, 1.0)
    assert gradcheck(m, (ds.tensor(RNG.standard_normal((1, 6, 2, 2)), requires_grad=True),))
    # (PyTorch's hand-written backward is not the derivative of its own forward: its window
    # differs, so descent checks its gradient against finite differences, not torch.)
    assert gradcheck(
        nn.CrossMapLRN2d(5, 0.5, 0.75, 1.0),
        (ds.tensor(RNG.standard_normal((2, 3, 2, 2)), requires_grad=True),),
    )
    with pytest.raises(ValueError, match="4D"):
        m(ds.ones(2, 3, 4))
    assert repr(m) == "CrossMapLRN2d(3, alpha=0.5, beta=0.75, k=1.0)"


def test_sync_batch_norm_is_batch_norm_in_one_process():
    x = RNG.standard_normal((4, 3, 5, 2)).astype(np.float32)
    t, d = tnn.SyncBatchNorm(3, momentum=0.2), nn.SyncBatchNorm(3, momentum=0.2)
    for _ in range(2):
        np.testing.assert_allclose(_np(d(ds.tensor(x))), _np(t(torch.tensor(x))), rtol=1e-5,
                                   atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(_np(d.running_var), _np(t.running_var), rtol=1e-5)
    assert list(d.state_dict()) == list(t.state_dict())
    d.eval()
    t.eval()
    np.testing.assert_allclose(_np(d(ds.tensor(x))), _np(t(torch.tensor(x))), rtol=1e-5, atol=1e-5)
    assert tuple(d(ds.randn(4, 3)).shape) == (4, 3)  # any rank >= 2
    with pytest.raises(ValueError, match="at least 2D"):
        d(ds.ones(3))
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm1d(2)))
    bn = model[1]
    conv = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert type(conv[1]) is nn.SyncBatchNorm and type(conv[2][0]) is nn.SyncBatchNorm
    assert conv[1].weight is bn.weight and conv[1].running_mean is bn.running_mean
    assert type(conv[0]) is nn.Conv2d


def test_buffer_registers_on_assignment_as_torch():
    mods = {}
    for lib, mod in ((torch, tnn), (ds, nn)):
        m = mod.Module()
        m.a = mod.Buffer(lib.ones(2))
        m.b = mod.Buffer(lib.zeros(3), persistent=False)
        m.c = mod.Parameter(lib.ones(1))
        mods[lib.__name__] = m
    t, d = mods["torch"], mods["descent"]
    assert [n for n, _ in d.named_buffers()] == [n for n, _ in t.named_buffers()] == ["a", "b"]
    assert list(d.state_dict()) == list(t.state_dict()) == ["c", "a"]
    b = nn.Buffer(ds.ones(2, requires_grad=True))
    assert isinstance(b, ds.Tensor) and b.requires_grad and b.persistent
    assert tuple(nn.Buffer().shape) == (0,)


def test_uninitialized_parameter_and_buffer_materialize():
    p = nn.UninitializedParameter()
    assert isinstance(p, nn.Parameter) and p.requires_grad and p.numel() == 0
    assert isinstance(tnn.UninitializedParameter(), tnn.Parameter)
    p.materialize((2, 3), dtype=ds.float64)
    assert type(p) is nn.Parameter and tuple(p.shape) == (2, 3) and p.dtype == ds.float64
    b = nn.UninitializedBuffer()
    b.materialize(4)
    assert type(b) is nn.Buffer and tuple(b.shape) == (4,) and not b.requires_grad
    m = nn.Module()
    m.u = nn.UninitializedBuffer(persistent=False)
    assert "u" in dict(m.named_buffers()) and "u" not in m.state_dict()


def test_functional_conv_tbc_and_native_channel_shuffle_match_torch():
    x, w, b = (RNG.standard_normal(s) for s in ((5, 2, 3), (3, 3, 4), (4,)))
    t = TF.conv_tbc(torch.tensor(x), torch.tensor(w), torch.tensor(b), 1)
    d = F.conv_tbc(ds.tensor(x), ds.tensor(w), ds.tensor(b), 1)
    np.testing.assert_allclose(_np(d), _np(t), rtol=1e-12)
    assert F.conv_tbc is ds.conv_tbc
    y = RNG.standard_normal((2, 6, 3))
    np.testing.assert_array_equal(_np(F.native_channel_shuffle(ds.tensor(y), 3)),
                                  _np(TF.native_channel_shuffle(torch.tensor(y), 3)))  # fmt: skip


MHA_CASES = {
    "self": {},
    "cross+masks": {"cross": True, "attn_mask": "bool", "key_padding_mask": True},
    "float mask, per-head weights": {"attn_mask": "float3", "average_attn_weights": False},
    "bias_kv+zero_attn": {"bias_kv": True, "add_zero_attn": True, "key_padding_mask": True},
    "separate weights": {"separate": True, "cross": True},
    "unbatched, no weights": {"unbatched": True, "need_weights": False},
    "static kv": {"static": True},
}


@pytest.mark.parametrize("case", list(MHA_CASES), ids=list(MHA_CASES))
def test_multi_head_attention_forward_matches_torch(case):
    opt = MHA_CASES[case]
    rng = np.random.default_rng(5)
    L, S, N, E, H = 4, 5, 2, 6, 3
    s_len = S if opt.get("cross") else L

    def arr(*shape):
        return rng.standard_normal(shape)

    qkv = [arr(L, N, E), arr(s_len, N, E), arr(s_len, N, E)]
    if not opt.get("cross"):
        qkv = [qkv[0]] * 3
    if opt.get("unbatched"):
        qkv = [a[:, 0] for a in qkv]
    w = {"in_w": arr(3 * E, E), "in_b": arr(3 * E), "out_w": arr(E, E), "out_b": arr(E)}
    if opt.get("bias_kv"):
        w["bk"], w["bv"] = arr(1, 1, E), arr(1, 1, E)
    if opt.get("separate"):
        w["qw"], w["kw"], w["vw"] = arr(E, E), arr(E, E), arr(E, E)
    if opt.get("static"):
        w["sk"], w["sv"] = arr(N * H, s_len, E // H), arr(N * H, s_len, E // H)
    mask = None
    if opt.get("attn_mask") == "bool":
        mask = np.triu(np.ones((L, s_len), bool), 1)
    elif opt.get("attn_mask") == "float3":
        mask = arr(N * H, L, s_len)
    kpm = None
    if opt.get("key_padding_mask"):
        kpm = np.zeros((N, s_len), bool)
        kpm[1, -2:] = True
    results = []
    for lib, fn in ((torch, TF.multi_head_attention_forward), (ds, F.multi_head_attention_forward)):
        t = {k: lib.tensor(v, requires_grad=True) for k, v in w.items()}
        q, k, v = (lib.tensor(a) for a in qkv)
        if not opt.get("cross"):
            k = v = q
        out, weights = fn(
            q, k, v, E, H, t["in_w"], t["in_b"], t.get("bk"), t.get("bv"),
            opt.get("add_zero_attn", False), 0.0, t["out_w"], t["out_b"], True,
            None if kpm is None else lib.tensor(kpm), opt.get("need_weights", True),
            None if mask is None else lib.tensor(mask), opt.get("separate", False),
            t.get("qw"), t.get("kw"), t.get("vw"), t.get("sk"), t.get("sv"),
            opt.get("average_attn_weights", True),
        )  # fmt: skip
        out.sum().backward()
        grads = {k: None if p.grad is None else _np(p.grad) for k, p in t.items()}
        results.append((out, weights, grads))
    (to, tw, tg), (do, dw, dg) = results
    np.testing.assert_allclose(_np(do), _np(to), rtol=1e-10, atol=1e-12)
    assert (tw is None) == (dw is None)
    if tw is not None:
        np.testing.assert_allclose(_np(dw), _np(tw), rtol=1e-10, atol=1e-12)
    for name, g in tg.items():
        if g is None:
            assert dg[name] is None or not np.any(dg[name]), name
        else:
            np.testing.assert_allclose(dg[name], g, rtol=1e-9, atol=1e-11, err_msg=name)


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("nn.modules.pooling", ["FractionalMaxPool2d", "FractionalMaxPool3d"]),
        ("nn.modules.batchnorm", ["SyncBatchNorm"]),
        ("nn.modules.normalization", ["CrossMapLRN2d"]),
        ("nn.parameter", ["Buffer", "UninitializedParameter", "UninitializedBuffer"]),
        ("nn.modules", ["FractionalMaxPool2d", "SyncBatchNorm", "CrossMapLRN2d"]),
    ],
)
def test_torch_import_paths_of_the_new_classes(path, names):
    import importlib

    tmod = importlib.import_module(f"torch.{path}")
    dmod = importlib.import_module(f"descent.{path}")
    for n in names:
        assert hasattr(tmod, n), f"torch.{path}.{n}"
        assert getattr(dmod, n) is getattr(nn, n), f"descent.{path}.{n}"
