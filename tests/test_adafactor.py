"""descent.optim.Adafactor against torch.optim.Adafactor: the same training run (matrices with
factored second moments, vectors, a 3-d weight, weight decay, maximize, eps1 given or None,
clipping), state shapes and state_dict round trip, argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

RNG = np.random.default_rng(2)
SHAPES = [(6, 4), (4,), (2, 3, 5), ()]


def _run(lib, kw, steps=6, dtype="float32"):
    ws = [RNG.standard_normal(s).astype(dtype) for s in SHAPES]
    gs = [[RNG.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]
    ps = [lib.tensor(w.copy(), requires_grad=True) for w in ws]
    opt = lib.optim.Adafactor(ps, **kw)
    for step in gs:
        for p, g in zip(ps, step):
            p.grad = lib.tensor(g.copy())
        opt.step()
    return [p.detach().numpy().copy() for p in ps], opt


@pytest.mark.parametrize("kw", [
    {}, {"lr": 0.1}, {"lr": 0.05, "weight_decay": 0.1}, {"maximize": True},
    {"eps": (1e-30, 1e-3)}, {"d": 2.0, "beta2_decay": -0.5}, {"lr": 1e-3, "eps": (None, 1e-1)},
])  # fmt: skip
def test_adafactor_matches_torch(kw):
    state = RNG.bit_generator.state
    ours, _ = _run(ds, kw)
    RNG.bit_generator.state = state
    theirs, _ = _run(torch, kw)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_adafactor_float64_and_state():
    state = RNG.bit_generator.state
    ours, opt = _run(ds, {"lr": 0.1}, dtype="float64")
    RNG.bit_generator.state = state
    theirs, topt = _run(torch, {"lr": 0.1}, dtype="float64")
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    st = opt.state_dict()["state"]
    tst = topt.state_dict()["state"]
    for i in st:
        assert sorted(st[i]) == sorted(tst[i])
        for k in st[i]:
            if k != "step":
                assert tuple(st[i][k].shape) == tuple(tst[i][k].shape)
    fresh = ds.optim.Adafactor([ds.zeros(s, dtype=ds.float64, requires_grad=True) for s in SHAPES])
    fresh.load_state_dict(opt.state_dict())
    assert fresh.state_dict()["state"][0]["step"] == 6


def test_adafactor_argument_checks_match_torch():
    p = [ds.zeros(2, requires_grad=True)]
    for kw in ({"lr": -1.0}, {"beta2_decay": 0.5}, {"eps": (-1.0, 1e-3)}, {"d": 0.5},
               {"weight_decay": -0.1}):  # fmt: skip
        with pytest.raises(ValueError):
            ds.optim.Adafactor(p, **kw)
        with pytest.raises(ValueError):
            torch.optim.Adafactor([torch.zeros(2, requires_grad=True)], **kw)
