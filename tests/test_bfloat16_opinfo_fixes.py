"""Fixes found by running PyTorch's op_db in bfloat16 (`tests/opinfo_harness.py --dtype bfloat16`;
the survey: notes/s10/bf16_survey.txt), each checked against PyTorch 2.13's CPU bfloat16."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds


def _pair(values):
    """The same bfloat16 values as (torch tensor, descent tensor)."""
    a = np.asarray(values, dtype=np.float32)
    return torch.tensor(a).bfloat16(), ds.tensor(a).bfloat16()


@pytest.mark.parametrize(
    "name, args",
    [("cauchy_", (0.0, 0.5)), ("log_normal_", (0.0, 0.25)), ("geometric_", (0.3,))],
)
def test_random_fills_take_bfloat16(name, args):
    # they raised 'expected a floating point tensor, got descent.bfloat16'; torch fills them
    t, d = _pair(np.zeros((4, 5)))
    tout, dout = getattr(t, name)(*args), getattr(d, name)(*args)
    assert dout is d and dout.dtype == ds.bfloat16 and tout.dtype == torch.bfloat16
    v = dout.float().numpy()
    assert np.isfinite(v).all() and (v != 0).any()
    if name == "geometric_":  # whole numbers >= 1, as torch's
        assert (v >= 1).all() and (v == np.round(v)).all()
    if name == "log_normal_":
        assert (v > 0).all()
    # integer tensors: still refused where torch refuses them
    ti, di = torch.zeros(3, dtype=torch.int64), ds.zeros(3, dtype=ds.int64)
    if name != "geometric_":
        with pytest.raises((RuntimeError, NotImplementedError)):
            getattr(ti, name)(*args)
        with pytest.raises((RuntimeError, NotImplementedError)):
            getattr(di, name)(*args)


@pytest.mark.parametrize("name", ["igamma", "igammac"])
def test_igamma_takes_bfloat16(name):
    # raised 'not implemented for integer tensors (dtypes descent.bfloat16 ...)'
    ta, da = _pair([0.5, 2.0, 3.0, 1e-3, 7.5])
    tx, dx = _pair([0.3, 1.5, 4.0, 2.0, 0.0])
    tx.requires_grad_(True)
    dx.requires_grad_(True)
    tout, dout = getattr(torch, name)(ta, tx), getattr(ds, name)(da, dx)
    assert dout.dtype == ds.bfloat16
    np.testing.assert_allclose(dout.float().detach().numpy(), tout.float().detach().numpy(),
                               rtol=1.6e-2, atol=1e-5)  # fmt: skip
    w = np.linspace(-1, 1, 5).astype(np.float32)
    (gt,) = torch.autograd.grad(tout, tx, torch.tensor(w).bfloat16())
    (gd,) = ds.autograd.grad(dout, dx, ds.tensor(w).bfloat16())
    assert gd.dtype == ds.bfloat16
    np.testing.assert_allclose(gd.float().numpy(), gt.float().numpy(), rtol=5e-2, atol=1e-2)
    # two integer tensors: still refused, as torch refuses them
    with pytest.raises(RuntimeError):
        getattr(torch, name)(torch.tensor([1, 2]), torch.tensor([1, 2]))
    with pytest.raises(RuntimeError):
        getattr(ds, name)(ds.tensor([1, 2]), ds.tensor([1, 2]))


def _bf16_close(d, t, rtol=1.6e-2, atol=1e-5, truth=None):
    """descent's bfloat16 result within PyTorch's bfloat16 tolerance of torch's (about two
    ulps; assert_close's rtol), atol times the largest magnitude (tests/opinfo_harness.py's
    rule; gradients, rounded at each step of backward: its BF16_GRAD_TOL), or, elementwise, no
    further than torch's from ``truth`` (torch in float64 on the same values)."""
    assert d.dtype == ds.bfloat16
    a, b = t.detach().float().numpy(), d.detach().float().numpy()
    ok = np.isclose(b, a, rtol=rtol, atol=atol * max(1.0, np.abs(a).max()))
    if truth is not None:
        ok |= np.abs(b - truth) <= np.abs(a - truth)
    assert ok.all(), f"{(~ok).sum()} of {ok.size} differ: torch {a[~ok][:3]}, descent {b[~ok][:3]}"


def _run_both(tfn, dfn, *arrays, grad=True):
    """tfn / dfn on the same bfloat16 inputs: values, then the gradients of sum(out * w); each
    judged against torch's bfloat16 result and its float64 one on the same values."""
    ts = [torch.tensor(a).bfloat16().requires_grad_(grad) for a in arrays]
    t64 = [t.detach().double().requires_grad_(grad) for t in ts]
    dts = [ds.tensor(a).bfloat16().requires_grad_(grad) for a in arrays]
    tout, dout, ref = tfn(*ts), dfn(*dts), tfn(*t64)
    _bf16_close(dout, tout, truth=ref.detach().numpy())
    if grad:
        w = np.random.default_rng(1).standard_normal(tuple(tout.shape)).astype(np.float32)
        w = torch.tensor(w).bfloat16()
        tg = torch.autograd.grad(tout, ts, w)
        rg = torch.autograd.grad(ref, t64, w.double())
        dg = ds.autograd.grad(dout, dts, ds.tensor(w.float().numpy()).bfloat16())
        for a, b, r in zip(tg, dg, rg):
            _bf16_close(b, a, rtol=5e-2, atol=1e-2, truth=r.numpy())


_rng = np.random.default_rng(0)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_interpolate_rounds_once(mode):
    # each 1-d interpolation pass was rounded to bfloat16 (float16 already ran in float32)
    x = _rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    _run_both(*(lambda v, lib=lib: lib.nn.functional.interpolate(
        v, size=(9, 7), mode=mode, align_corners=True) for lib in (torch, ds)), x)  # fmt: skip


def test_conv_transpose_rounds_once():
    # the col2im sums were rounded to bfloat16 term by term
    x = _rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    w = _rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    _run_both(*(lambda a, b, lib=lib: lib.nn.functional.conv_transpose2d(
        a, b, stride=2, padding=1, output_padding=1) for lib in (torch, ds)), x, w)  # fmt: skip


def test_batch_norm_rounds_once():
    training = False  # eval mode: the running statistics normalise (training=True agreed)
    # (x - mean) / sqrt(var + eps) * w + b was rounded to bfloat16 step by step
    x = _rng.standard_normal((6, 3, 8)).astype(np.float32) * 3 + 1
    m, v = _rng.standard_normal(3).astype(np.float32), _rng.uniform(0.5, 2, 3).astype(np.float32)
    stats = {}

    def run(lib, xx, w, b):
        rs = stats[lib, xx.dtype] = (lib.tensor(m).to(xx.dtype), lib.tensor(v).to(xx.dtype))
        return lib.nn.functional.batch_norm(xx, *rs, w, b, training=training, eps=0.5)

    w, b = _rng.standard_normal(3).astype(np.float32), _rng.standard_normal(3).astype(np.float32)
    _run_both(lambda *a: run(torch, *a), lambda *a: run(ds, *a), x, w, b)
    for d, t in zip(stats[ds, ds.bfloat16], stats[torch, torch.bfloat16]):
        _bf16_close(d, t)  # the running statistics, updated in place, stay bfloat16


def test_grid_sample_bicubic_rounds_once():
    x = _rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    g = _rng.uniform(-1, 1, (1, 4, 4, 2)).astype(np.float32)
    _run_both(*(lambda a, b, lib=lib: lib.nn.functional.grid_sample(
        a, b, mode="bicubic", align_corners=False) for lib in (torch, ds)), x, g)  # fmt: skip


def test_embedding_bag_weighted_sum_rounds_once():
    # each weight * row product was rounded to bfloat16 before the bag sum
    w = _rng.standard_normal((10, 6)).astype(np.float32)
    psw = _rng.standard_normal((8, 16)).astype(np.float32)
    idx = _rng.integers(0, 10, (8, 16))
    _run_both(*(lambda a, p, lib=lib: lib.nn.functional.embedding_bag(
        lib.tensor(idx), a, mode="sum", per_sample_weights=p) for lib in (torch, ds)),
        w, psw)  # fmt: skip
