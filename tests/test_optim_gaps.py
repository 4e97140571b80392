"""optim.Rprop, optim.ASGD, lr_scheduler.MultiplicativeLR and lr_scheduler.ChainedScheduler
against torch 2.13, step by step: parameters and state after N steps, state_dict round trips
mid-run (descent's own, through JSON, and PyTorch's), errors."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
import torch

import descent
import descent.optim as optim
from descent.nn import Parameter
from descent.optim import lr_scheduler as sched

SHAPES = [(3, 4), (5,), (2, 3, 2)]
STEPS = 40
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-6, atol=1e-6)}
DTYPES = [np.float64, np.float32]

CONFIGS = [
    ("Rprop", dict()),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2))),
    ("Rprop", dict(lr=0.02, maximize=True)),
    ("ASGD", dict()),
    ("ASGD", dict(lr=0.05, lambd=1e-2, alpha=0.5, t0=10, weight_decay=0.1)),  # averaging on
    ("ASGD", dict(lr=0.03, t0=3, maximize=True)),
]


@contextlib.contextmanager
def _torch_default_dtype(dtype):
    """PyTorch keeps ASGD's eta and mu in its default dtype (descent too): set both
    libraries' to the parameters' dtype."""
    old, ours = torch.get_default_dtype(), descent.get_default_dtype()
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    descent.set_default_dtype(descent.float64 if dtype == np.float64 else descent.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(old)
        descent.set_default_dtype(ours)


def _data(dtype, seed=0, steps=STEPS, sign_runs=False):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = []
    for t in range(steps):
        g = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
        if sign_runs and t % 5:  # Rprop: keep signs for a while so step sizes grow and clamp
            g = [np.abs(x) * np.sign(prev) for x, prev in zip(g, grads[-1])]
        if t % 7 == 3:
            g[0][0, 0] = 0.0  # a zero gradient: PyTorch's "sign = 0 -> 1" branch
        grads.append(g)
    return init, grads


def _pair(init, dtype):
    return ([Parameter(a.copy(), dtype=dtype) for a in init],
            [torch.nn.Parameter(torch.tensor(a.copy())) for a in init])  # fmt: skip


def _set_grads(ps, qs, grads):
    for p, q, g in zip(ps, qs, grads, strict=True):
        p.grad = descent.tensor(g, dtype=g.dtype)
        q.grad = torch.tensor(g)


def _assert_same(ps, qs, dtype, what=""):
    for i, (p, q) in enumerate(zip(ps, qs, strict=True)):
        assert p.dtype == np.dtype(dtype)
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), **TOL[dtype],
                                   err_msg=f"{what} parameter {i}")  # fmt: skip


def _assert_state(ours, theirs, ps, qs, dtype):
    for p, q in zip(ps, qs, strict=True):
        st, ts = ours.state[p], theirs.state[q]
        assert set(st) == set(ts)
        assert st["step"] == int(ts["step"])
        for key, value in ts.items():
            if key == "step":
                continue
            mine = st[key].numpy() if isinstance(st[key], descent.Tensor) else st[key]
            np.testing.assert_allclose(mine, value.numpy(), **TOL[dtype], err_msg=key)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=[f"{n}-{k}" for n, k in CONFIGS])
def test_matches_torch_step_by_step(name, kwargs, dtype):
    init, grads = _data(dtype, sign_runs=name == "Rprop")
    ps, qs = _pair(init, dtype)
    with _torch_default_dtype(dtype):
        ours = getattr(optim, name)(ps, **kwargs)
        theirs = getattr(torch.optim, name)(qs, **kwargs)
        for t in range(STEPS):
            _set_grads(ps, qs, grads[t])
            ours.step()
            theirs.step()
            _assert_same(ps, qs, dtype, f"{name}{kwargs} step {t + 1}")
    _assert_state(ours, theirs, ps, qs, dtype)


def _through_json(sd):
    """A checkpoint's round trip: tensors to NumPy arrays, everything else through JSON."""
    arrays, meta = {}, {"state": {}, "param_groups": sd["param_groups"]}
    for idx, st in sd["state"].items():
        meta["state"][idx] = {}
        for key, value in st.items():
            if isinstance(value, descent.Tensor):
                arrays[(str(idx), key)] = value.numpy().copy()
            else:
                meta["state"][idx][key] = value
    meta = json.loads(json.dumps(meta))
    for (idx, key), arr in arrays.items():
        meta["state"][idx][key] = arr
    return meta


@pytest.mark.parametrize("name", ["Rprop", "ASGD"])
@pytest.mark.parametrize("source", ["descent", "torch"])
def test_state_dict_round_trip_mid_run(name, source):
    dtype = np.float64
    init, grads = _data(dtype, seed=3, sign_runs=name == "Rprop")
    ps, qs = _pair(init, dtype)
    kwargs = dict(lr=0.02, t0=5) if name == "ASGD" else dict(lr=0.02)
    with _torch_default_dtype(dtype):
        ours = getattr(optim, name)(ps, **kwargs)
        theirs = getattr(torch.optim, name)(qs, **kwargs)
        for t in range(20):
            _set_grads(ps, qs, grads[t])
            ours.step()
            theirs.step()
        sd = _through_json(ours.state_dict()) if source == "descent" else theirs.state_dict()
        ps2 = [Parameter(q.detach().numpy().copy(), dtype=dtype) for q in qs]
        fresh = getattr(optim, name)(ps2, lr=5.0)
        fresh.load_state_dict(sd)
        assert fresh.param_groups[0]["lr"] == 0.02
        for t in range(20, STEPS):
            _set_grads(ps2, qs, grads[t])
            fresh.step()
            theirs.step()
    _assert_same(ps2, qs, dtype, f"{name} after loading a {source} state_dict")
    _assert_state(fresh, theirs, ps2, qs, dtype)


def test_param_groups_and_missing_gradients():
    dtype = np.float64
    init, grads = _data(dtype, seed=5)
    ps, qs = _pair(init, dtype)
    for name, over in [("Rprop", dict(lr=0.1, etas=(0.4, 1.1))), ("ASGD", dict(lambd=0.1))]:
        ps, qs = _pair(init, dtype)
        with _torch_default_dtype(dtype):
            ours = getattr(optim, name)([{"params": ps[:2]}, {"params": ps[2:], **over}])
            theirs = getattr(torch.optim, name)([{"params": qs[:2]}, {"params": qs[2:], **over}])
            for t in range(15):
                _set_grads(ps, qs, grads[t])
                if t % 4 == 1:  # one parameter without a gradient this step
                    ps[1].grad, qs[1].grad = None, None
                ours.step()
                theirs.step()
        _assert_same(ps, qs, dtype, name)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p, lib: lib.optim.Rprop(p, etas=(1.5, 2.0)), "eta"),
        (lambda p, lib: lib.optim.Rprop(p, lr=-1.0), "learning rate|lr"),
        (lambda p, lib: lib.optim.ASGD(p, lr=-1.0), "learning rate|lr"),
        (lambda p, lib: lib.optim.ASGD(p, weight_decay=-1.0), "weight_decay"),
    ],
)
def test_invalid_hyperparameters_raise(make, match):
    for lib, p in [(torch, [torch.nn.Parameter(torch.ones(2))]), (descent, [Parameter([1.0])])]:
        with pytest.raises(ValueError, match=match):
            make(p, lib)
    with pytest.raises(NotImplementedError):
        optim.Rprop([Parameter([1.0])], differentiable=True)


def test_positional_arguments_follow_torch():
    init, grads = _data(np.float64, seed=1)
    for name, args in [("Rprop", (0.03, (0.4, 1.3), (1e-4, 1.0))), ("ASGD", (0.03, 1e-3, 0.6, 4))]:
        ps, qs = _pair(init, np.float64)
        with _torch_default_dtype(np.float64):
            ours, theirs = getattr(optim, name)(ps, *args), getattr(torch.optim, name)(qs, *args)
            for t in range(10):
                _set_grads(ps, qs, grads[t])
                ours.step()
                theirs.step()
        _assert_same(ps, qs, np.float64, name)


# -- schedulers ---------------------------------------------------------------------------------


def _opts(lr=0.1, groups=1):
    p = [Parameter([1.0]) for _ in range(groups)]
    q = [torch.nn.Parameter(torch.ones(1)) for _ in range(groups)]
    ours = optim.SGD([{"params": [x], "lr": lr * (i + 1)} for i, x in enumerate(p)], lr=lr)
    theirs = torch.optim.SGD([{"params": [x], "lr": lr * (i + 1)} for i, x in enumerate(q)], lr=lr)
    return ours, theirs


def _run(ours_sched, theirs_sched, ours, theirs, steps=30):
    for t in range(steps):
        for a, b in zip(ours.param_groups, theirs.param_groups, strict=True):
            assert a["lr"] == pytest.approx(b["lr"], rel=1e-12, abs=1e-15), t
        assert ours_sched.get_last_lr() == pytest.approx(theirs_sched.get_last_lr(), rel=1e-12)
        ours.step()
        theirs.step()
        ours_sched.step()
        theirs_sched.step()


def test_multiplicative_lr():
    ours, theirs = _opts(groups=2)
    fs = [lambda e: 0.95, lambda e: 1.0 - 0.01 * (e % 3)]
    s1 = sched.MultiplicativeLR(ours, fs)
    s2 = torch.optim.lr_scheduler.MultiplicativeLR(theirs, fs)
    _run(s1, s2, ours, theirs)
    # a state_dict round trip mid-run into a fresh scheduler (functions are not saved)
    state = json.loads(json.dumps(s1.state_dict()))
    fresh_opt, _ = _opts(groups=2)
    fresh_opt.load_state_dict(ours.state_dict())
    fresh = sched.MultiplicativeLR(fresh_opt, fs, last_epoch=s1.last_epoch)
    fresh.load_state_dict(state)
    assert fresh.last_epoch == s1.last_epoch
    for _ in range(10):
        fresh.step()
        s2.step()
        assert fresh.get_last_lr() == pytest.approx(s2.get_last_lr(), rel=1e-12)


CHAINS = [
    lambda lib, o: [lib.ConstantLR(o, factor=0.1, total_iters=4), lib.ExponentialLR(o, gamma=0.9)],
    lambda lib, o: [lib.LinearLR(o, 0.2, 1.0, 5), lib.StepLR(o, 3, 0.5),
                    lib.MultiStepLR(o, [7, 11], 0.3)],
    lambda lib, o: [lib.ExponentialLR(o, 0.97), lib.MultiplicativeLR(o, lambda e: 0.99)],
    lambda lib, o: [lib.PolynomialLR(o, total_iters=12, power=2.0), lib.ConstantLR(o, 0.5, 3)],
    lambda lib, o: [lib.CosineAnnealingLR(o, T_max=10), lib.ExponentialLR(o, 0.95)],
    lambda lib, o: [lib.ExponentialLR(o, 0.9), lib.LambdaLR(o, lambda e: 1 / (e + 1))],
]  # fmt: skip


@pytest.mark.parametrize("make", CHAINS, ids=range(len(CHAINS)))
def test_chained_scheduler(make):
    ours, theirs = _opts(groups=2)
    s1 = sched.ChainedScheduler(make(sched, ours))
    s2 = torch.optim.lr_scheduler.ChainedScheduler(make(torch.optim.lr_scheduler, theirs))
    _run(s1, s2, ours, theirs, steps=25)
    state = s1.state_dict()
    assert len(state["_schedulers"]) == len(s1._schedulers)
    json.dumps({k: v for k, v in state.items() if k != "_schedulers"})


@pytest.mark.filterwarnings("ignore:Detected call of")  # torch's, for stepping without training
def test_chained_scheduler_state_dict_resume():
    ours, theirs = _opts()
    s1 = sched.ChainedScheduler(make := CHAINS[0](sched, ours))
    s2 = torch.optim.lr_scheduler.ChainedScheduler(CHAINS[0](torch.optim.lr_scheduler, theirs))
    for _ in range(6):
        s1.step()
        s2.step()
    state = s1.state_dict()
    opt2, _ = _opts()
    opt2.load_state_dict(ours.state_dict())
    s3 = sched.ChainedScheduler(CHAINS[0](sched, opt2))
    s3.load_state_dict(state)
    assert [c.last_epoch for c in s3._schedulers] == [c.last_epoch for c in make]
    for _ in range(10):
        s3.step()
        s2.step()
        assert s3.get_last_lr() == pytest.approx(s2.get_last_lr(), rel=1e-12)
        assert opt2.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"], rel=1e-12)


def test_chained_scheduler_errors():
    ours, _ = _opts()
    other, _ = _opts()
    with pytest.raises(ValueError, match="at least one scheduler"):
        sched.ChainedScheduler([])
    with pytest.raises(ValueError, match="same optimizer"):
        sched.ChainedScheduler([sched.ExponentialLR(ours, 0.9), sched.ExponentialLR(other, 0.9)])
