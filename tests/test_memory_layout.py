"""torch.channels_last / channels_last_3d as real layouts (descent.memory_layout), against torch:
strides and is_contiguous after contiguous / to / clone(memory_format=), the rank errors,
values and gradients through a channels-last input, Module.to(memory_format=) and an optimizer
that keeps the layout of its parameters while updating them as torch does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

RNG = np.random.default_rng(4)

SHAPES = [(2, 3, 4, 5), (2, 1, 4, 5), (2, 3, 1, 1), (1, 3, 4, 1), (1, 1, 1, 1)]


def _both(shape):
    a = RNG.standard_normal(shape).astype(np.float32)
    return ds.tensor(a), torch.tensor(a)


def _fmt(lib, name):
    return getattr(lib, name)


@pytest.mark.parametrize("shape", SHAPES)
def test_contiguous_channels_last_strides_and_flags_as_torch(shape):
    d, t = _both(shape)
    for fd, ft in ((ds.channels_last, torch.channels_last), (None, None)):
        dc = d.contiguous(memory_format=fd) if fd else d.contiguous()
        tc = t.contiguous(memory_format=ft) if ft else t.contiguous()
        assert dc.stride() == tc.stride(), (shape, fd)
        assert dc.is_contiguous() == tc.is_contiguous()
        for name in ("channels_last", "contiguous_format", "preserve_format"):
            assert dc.is_contiguous(memory_format=_fmt(ds, name)) == tc.is_contiguous(
                memory_format=_fmt(torch, name)
            ), (shape, name)
        np.testing.assert_array_equal(dc.numpy(), tc.numpy())
    # to(memory_format=) and clone(memory_format=) lay out the same way
    assert (
        d.to(memory_format=ds.channels_last).stride()
        == t.to(memory_format=torch.channels_last).stride()
    )
    assert (
        d.clone(memory_format=ds.channels_last).stride()
        == t.clone(memory_format=torch.channels_last).stride()
    )


@pytest.mark.parametrize("shape", [(0, 3, 4, 5), (2, 3, 0, 2)])
def test_empty_tensors_take_the_formats(shape):
    # NumPy 2 gives an empty array all-zero strides, so descent cannot tell an empty tensor's
    # layout (docs/torch_gaps_tensor.md); the requests still work and keep shape and dtype
    d, _ = _both(shape)
    for out in (
        d.contiguous(memory_format=ds.channels_last),
        d.to(memory_format=ds.channels_last),
        d.clone(memory_format=ds.channels_last),
    ):
        assert out.shape == shape and out.dtype == ds.float32


def test_layout_is_kept_or_dropped_as_torch():
    d, t = _both((2, 3, 4, 5))
    dc, tc = (
        d.contiguous(memory_format=ds.channels_last),
        t.contiguous(memory_format=torch.channels_last),
    )
    # already channels-last: the same tensor back
    assert dc.contiguous(memory_format=ds.channels_last) is dc
    pairs = [
        (dc.clone(), tc.clone()),  # preserve_format keeps it
        (ds.clone(dc), torch.clone(tc)),
        (
            dc.clone(memory_format=ds.contiguous_format),
            tc.clone(memory_format=torch.contiguous_format),
        ),
        (dc.contiguous(), tc.contiguous()),  # back to NCHW
        (dc * 2 + 1, tc * 2 + 1),  # elementwise ops keep the layout
        (dc.double(), tc.double()),
    ]
    for a, b in pairs:
        assert a.stride() == b.stride()
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    x5, t5 = _both((2, 3, 2, 4, 5))
    assert (
        x5.contiguous(memory_format=ds.channels_last_3d).stride()
        == t5.contiguous(memory_format=torch.channels_last_3d).stride()
    )
    assert x5.contiguous(memory_format=ds.channels_last_3d).is_contiguous(
        memory_format=ds.channels_last_3d
    )


@pytest.mark.parametrize(
    "shape, name",
    [((2, 3, 4), "channels_last"), ((2, 3, 4, 5), "channels_last_3d"), ((), "channels_last")],
)
def test_wrong_rank_is_refused_as_torch(shape, name):
    d, t = _both(shape)
    with pytest.raises(RuntimeError, match=f"required rank .* {name} format") as ei:
        t.contiguous(memory_format=getattr(torch, name))
    with pytest.raises(RuntimeError, match=f"required rank .* {name} format"):
        d.contiguous(memory_format=getattr(ds, name))
    assert (
        str(ei.value).split(" tensor")[0] in f"required rank {4 if name == 'channels_last' else 5}"
    )
    # asking is allowed: False for another rank
    assert d.is_contiguous(memory_format=getattr(ds, name)) is t.is_contiguous(
        memory_format=getattr(torch, name)
    )


def test_gradients_through_a_channels_last_input_as_torch():
    a = RNG.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
    grads = []
    for lib in (ds, torch):
        x = lib.tensor(a, requires_grad=True)
        weight = lib.tensor(w, requires_grad=True)
        xc = x.contiguous(memory_format=lib.channels_last)
        y = lib.nn.functional.conv2d(xc, weight, padding=1)
        (y * y).sum().backward()
        grads.append((y.detach().numpy(), x.grad.numpy(), weight.grad.numpy(), x.grad.stride()))
    for d, t in zip(*grads, strict=True):
        if isinstance(t, tuple):
            assert d == t  # the leaf's gradient is laid out like the leaf (NCHW)
        else:
            np.testing.assert_allclose(d, t, rtol=1e-4, atol=1e-4)


def test_module_to_channels_last_and_an_optimizer_keep_the_layout():
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, bias=False), torch.nn.BatchNorm2d(4))
    dm = ds.nn.Sequential(ds.nn.Conv2d(3, 4, 3, bias=False), ds.nn.BatchNorm2d(4))
    with ds.no_grad():
        for (_, pd), (_, pt) in zip(dm.named_parameters(), tm.named_parameters(), strict=True):
            pd.copy_(ds.tensor(pt.detach().numpy()))
    weight = dm[0].weight
    assert dm.to(memory_format=ds.channels_last) is dm
    tm.to(memory_format=torch.channels_last)
    assert dm[0].weight is weight  # the same Parameter object, laid out anew
    for pd, pt in zip(dm.parameters(), tm.parameters(), strict=True):
        assert pd.stride() == pt.stride()
    x = RNG.standard_normal((2, 3, 5, 5)).astype(np.float32)
    target = RNG.standard_normal((2, 4, 3, 3)).astype(np.float32)  # not BN's own scale
    opts = [ds.optim.Adam(dm.parameters(), lr=0.1), torch.optim.Adam(tm.parameters(), lr=0.1)]
    for _ in range(3):
        outs = []
        for lib, m, opt in ((ds, dm, opts[0]), (torch, tm, opts[1])):
            opt.zero_grad()
            out = m(lib.tensor(x).contiguous(memory_format=lib.channels_last))
            loss = (out - lib.tensor(target)).pow(2).mean()
            loss.backward()
            opt.step()
            outs.append(loss.item())
        np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5)
    assert dm[0].weight.is_contiguous(memory_format=ds.channels_last)
    assert dm[0].weight.stride() == tm[0].weight.stride() == (27, 1, 9, 3)
    np.testing.assert_allclose(
        dm[0].weight.detach().numpy(), tm[0].weight.detach().numpy(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        opts[0].state[dm[0].weight]["exp_avg"].numpy(),
        opts[1].state[tm[0].weight]["exp_avg"].numpy(),
        rtol=1e-5,
        atol=1e-7,
    )
    with pytest.raises(TypeError, match="unexpected keyword"):
        dm.to(memory_fmt=ds.channels_last)
