"""torch.optim.swa_utils (AveragedModel with SWA and EMA, SWALR, update_bn) and the optimizer
hooks (step pre/post, global, state-dict), against torch 2.13 on the same training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.optim.swa_utils as tswa

import descent as ds
import descent.optim.swa_utils as dswa
from descent.compiler import CompileWarning

RNG = np.random.default_rng(11)
X = RNG.standard_normal((6, 8, 4)).astype(np.float32)
Y = RNG.standard_normal((6, 8, 1)).astype(np.float32)


def _models():
    d = ds.nn.Sequential(ds.nn.Linear(4, 8), ds.nn.BatchNorm1d(8), ds.nn.ReLU(), ds.nn.Linear(8, 1))
    t = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                            torch.nn.Linear(8, 1))  # fmt: skip
    with torch.no_grad():
        for (_, dp), (_, tp) in zip(d.named_parameters(), t.named_parameters()):
            tp.copy_(torch.from_numpy(dp.numpy().copy()))
    return d, t


def _run(lib, swa, model, kind, use_buffers):
    opt = lib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    if kind == "swa":
        avg = swa.AveragedModel(model, use_buffers=use_buffers)
    elif kind == "ema":
        avg = swa.AveragedModel(model, multi_avg_fn=swa.get_ema_multi_avg_fn(0.9),
                                use_buffers=use_buffers)  # fmt: skip
    else:
        avg = swa.AveragedModel(model, avg_fn=swa.get_ema_avg_fn(0.8))
    sched = swa.SWALR(opt, swa_lr=0.02, anneal_epochs=3, anneal_strategy="linear")
    lrs = []
    for x, y in zip(X, Y):
        loss = ((model(lib.tensor(x)) - lib.tensor(y)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        avg.update_parameters(model)
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    swa.update_bn([lib.tensor(x) for x in X], avg)
    state = {k: v.detach().numpy().copy() for k, v in avg.state_dict().items()}
    avg.eval()
    with lib.no_grad():
        out = avg(lib.tensor(X[0])).numpy()
    return lrs, state, out


@pytest.mark.parametrize("kind", ["swa", "ema", "avg_fn"])
@pytest.mark.parametrize("use_buffers", [False, True])
def test_averaged_model_swalr_and_update_bn_match_torch(kind, use_buffers):
    d, t = _models()
    lrs_d, sd_d, out_d = _run(ds, dswa, d, kind, use_buffers)
    lrs_t, sd_t, out_t = _run(torch, tswa, t, kind, use_buffers)
    np.testing.assert_allclose(lrs_d, lrs_t, rtol=1e-12)
    assert list(sd_d) == list(sd_t)
    for k in sd_d:
        np.testing.assert_allclose(sd_d[k], sd_t[k], rtol=2e-5, atol=2e-6, err_msg=k)
    np.testing.assert_allclose(out_d, out_t, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("epochs", [0, 1, 4])
def test_swalr_schedules_match_torch(strategy, epochs):
    got = []
    for lib, swa in ((ds, dswa), (torch, tswa)):
        p = lib.zeros(2, requires_grad=True)
        q = lib.zeros(1, requires_grad=True)
        opt = lib.optim.SGD([{"params": [p], "lr": 0.5}, {"params": [q]}], lr=0.3)
        s = swa.SWALR(opt, swa_lr=[0.05, 0.01], anneal_epochs=epochs, anneal_strategy=strategy)
        seq = []
        for _ in range(7):
            opt.step()
            s.step()
            seq.append([g["lr"] for g in opt.param_groups])
        got.append(seq)
    np.testing.assert_allclose(got[0], got[1], rtol=1e-12)


def test_swalr_and_averaged_model_errors():
    opt = ds.optim.SGD([ds.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="anneal_strategy"):
        dswa.SWALR(opt, 0.01, anneal_strategy="step")
    with pytest.raises(ValueError, match="anneal_epochs"):
        dswa.SWALR(opt, 0.01, anneal_epochs=-1)
    with pytest.raises(AssertionError):
        dswa.AveragedModel(ds.nn.Linear(1, 1), avg_fn=lambda *a: None, multi_avg_fn=lambda *a: None)


def _hook_log(lib):
    log = []
    p = lib.ones(2, requires_grad=True)
    opt = lib.optim.Adam([p], lr=0.1)
    h = opt.register_step_pre_hook(lambda o, a, k: log.append(("pre", len(a), sorted(k))))
    opt.register_step_post_hook(lambda o, a, k: log.append(("post", len(a))))
    opt.register_state_dict_pre_hook(lambda o: log.append("sd-pre"))
    opt.register_state_dict_post_hook(lambda o, sd: log.append(("sd-post", sorted(sd))))
    opt.register_load_state_dict_pre_hook(lambda o, sd: log.append("load-pre"))
    opt.register_load_state_dict_post_hook(lambda o: log.append("load-post"))
    (p * p).sum().backward()
    opt.step()
    h.remove()
    opt.step()
    opt.load_state_dict(opt.state_dict())
    return log


def test_optimizer_hooks_match_torch():
    assert _hook_log(ds) == _hook_log(torch)


def test_step_pre_hook_replaces_arguments_and_global_hooks_run_for_every_optimizer():
    from descent.optim.optimizer import register_optimizer_step_post_hook

    p = ds.ones(1, requires_grad=True)
    opt = ds.optim.LBFGS([p], lr=0.5)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    opt.register_step_pre_hook(lambda o, a, k: ((o, closure), {}))
    seen = []
    h = register_optimizer_step_post_hook(lambda o, a, k: seen.append(type(o).__name__))
    try:
        opt.step(lambda: None)  # replaced by the hook's closure
        ds.optim.SGD([ds.ones(1, requires_grad=True)], lr=0.1).step()
    finally:
        h.remove()
    assert calls and seen == ["LBFGS", "SGD"]


def test_compile_runs_eagerly_when_an_optimizer_has_step_hooks():
    m = ds.nn.Linear(2, 1)
    opt = ds.optim.SGD(m.parameters(), lr=0.1)
    steps = []
    opt.register_step_post_hook(lambda o, a, k: steps.append(1))

    @ds.compile
    def step(x):
        opt.zero_grad()
        m(x).sum().backward()
        opt.step()

    with pytest.warns(CompileWarning, match="step hook"):
        for _ in range(3):
            step(ds.ones(3, 2))
    assert len(steps) == 3


def test_a_subclass_calling_super_step_runs_the_hooks_once():
    class MySGD(ds.optim.SGD):
        def step(self, closure=None):
            return super().step(closure)

    p = ds.ones(1, requires_grad=True)
    opt = MySGD([p], lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    (p * p).sum().backward()
    opt.step()
    assert calls == ["pre", "post"] and p.item() == pytest.approx(0.8)
