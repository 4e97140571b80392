"""The eager Adam/AdamW step's Python (session 29, helper-222).

`Optimizer.step` checks its flat layout (`_GroupLayout.is_current`: one `opt.state` lookup per
parameter), then steps each buffer; the float32 fast path (`adam._step_from_grads`) and the flat
path (`Optimizer._step_buffer`) take each parameter's state dict from the layout just checked
instead of looking it up again, and the fast path keeps its layout's constants (views' shapes
and contiguity, the halves' cut) in `_FlatBuffer.fast`. These tests count the lookups and check
the cases that now rest on the layout's check: state cleared, replaced or deleted mid-training
(PyTorch restarts that parameter's moments), a channels-last parameter, a wrongly shaped
gradient.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent
from descent.optim import adam
from descent.tensor import Tensor


def _params(rng, lib, shapes):
    return [lib.nn.Parameter(lib.tensor(rng.standard_normal(s).astype(np.float32))) for s in shapes]


#: a decayed group above adam.FROM_GRADS_MIN (the fast path) and a small one (the flat path)
_SHAPES = [(300, 256), (256,), (128, 300), (128,)]


def _pair(cls_name, **kw):
    rng = np.random.default_rng(5)
    w = [rng.standard_normal(s).astype(np.float32) for s in _SHAPES]
    dp = [descent.nn.Parameter(descent.tensor(a.copy())) for a in w]
    tp = [torch.nn.Parameter(torch.tensor(a.copy())) for a in w]

    def groups(ps):
        return [{"params": ps[0::2], "weight_decay": 0.1}, {"params": ps[1::2], "weight_decay": 0}]

    dopt = getattr(descent.optim, cls_name)(groups(dp), lr=1e-2, **kw)
    topt = getattr(torch.optim, cls_name)(groups(tp), lr=1e-2, **kw)
    return dp, tp, dopt, topt


def _step_both(rng, dp, tp, dopt, topt):
    for p, q in zip(dp, tp, strict=True):
        g = rng.standard_normal(tuple(p.shape)).astype(np.float32)
        p.grad, q.grad = descent.tensor(g), torch.tensor(g)
    dopt.step()
    topt.step()


def test_step_looks_up_each_state_once(monkeypatch):
    dp, tp, dopt, topt = _pair("AdamW")
    rng = np.random.default_rng(1)
    _step_both(rng, dp, tp, dopt, topt)  # creates the state
    assert sum(p.numel() for p in dp[0::2]) >= adam.FROM_GRADS_MIN
    seen = []
    orig = adam._step_from_grads
    monkeypatch.setattr(adam, "_step_from_grads", lambda *a: seen.append(orig(*a)) or seen[-1])
    count = [0]

    def counting(self):
        count[0] += 1
        return id(self)

    monkeypatch.setattr(Tensor, "__hash__", counting)
    for p in dp:
        p.grad = descent.tensor(np.ones(tuple(p.shape), np.float32))
    dopt.step()
    monkeypatch.undo()
    assert seen == [True, False]  # the large group's fast path, the small group's flat path
    assert count[0] == len(dp)  # is_current's lookup; before: 8 (fast path, flat path again)


@pytest.mark.parametrize("cls_name", ["Adam", "AdamW"])
@pytest.mark.parametrize("how", ["clear", "replace", "delete"])
def test_state_reset_mid_training_vs_torch(cls_name, how):
    dp, tp, dopt, topt = _pair(cls_name)
    rng = np.random.default_rng(2)
    for t in range(5):
        if t == 2:  # one parameter of each group starts over (fast path and flat path)
            for i in (0, 1):
                for p, opt in ((dp[i], dopt), (tp[i], topt)):
                    if how == "clear":
                        opt.state[p].clear()
                    elif how == "replace":
                        opt.state[p] = {}
                    else:
                        del opt.state[p]
        _step_both(rng, dp, tp, dopt, topt)
    for p, q in zip(dp, tp, strict=True):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-6, atol=1e-6)
        for k in ("exp_avg", "exp_avg_sq", "step"):
            np.testing.assert_allclose(
                dopt.state[p][k].numpy(), topt.state[q][k].numpy(), rtol=1e-6, atol=1e-7
            )


def test_channels_last_parameter_vs_torch():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((64, 32, 6, 6)).astype(np.float32)  # 73,728 values: the fast size
    dm = descent.nn.Conv2d(32, 64, 6, bias=False)
    tm = torch.nn.Conv2d(32, 64, 6, bias=False)
    with descent.no_grad():
        dm.weight.copy_(descent.tensor(w))
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(w))
    dm = dm.to(memory_format=descent.channels_last)
    tm = tm.to(memory_format=torch.channels_last)
    dopt = descent.optim.AdamW(dm.parameters(), lr=1e-2)
    topt = torch.optim.AdamW(tm.parameters(), lr=1e-2)
    seen = []
    orig = adam._step_from_grads
    adam_fn = lambda *a: seen.append(orig(*a)) or seen[-1]  # noqa: E731
    old = adam._step_from_grads
    adam._step_from_grads = adam_fn
    try:
        for _ in range(3):
            g = rng.standard_normal(w.shape).astype(np.float32)
            dm.weight.grad, tm.weight.grad = descent.tensor(g), torch.tensor(g)
            dopt.step()
            topt.step()
    finally:
        adam._step_from_grads = old
    assert seen == [False, False, False]  # its flat slice is in memory order: the flat path
    np.testing.assert_allclose(
        dm.weight.detach().numpy(), tm.weight.detach().numpy(), rtol=1e-6, atol=1e-6
    )


def test_wrongly_shaped_gradient_raises():
    p = descent.nn.Parameter(descent.zeros(4, 3))
    opt = descent.optim.AdamW([p], lr=1e-2)
    p._grad = descent.zeros(3, 4)  # past the .grad setter's check
    with pytest.raises(RuntimeError, match=r"gradient of shape \(3, 4\) for a parameter of shape"):
        opt.step()
