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
