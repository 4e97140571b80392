"""LR schedulers step recursively from the groups' current lrs, as PyTorch's `get_lr()`.

PyTorch's StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR, ConstantLR,
PolynomialLR and MultiplicativeLR multiply (or shift) each group's CURRENT lr at every `step()`,
so a hand-made change of `group["lr"]` (a hand-written warmup before a schedule) carries forward;
descent computed every lr in closed form from base_lrs and ignored it. The arithmetic is now
PyTorch's, in the same order, so the lrs are compared exactly (==), over 40 steps, for: (a) no
change, (b) a hand-made change at step 10, (c) two parameter groups, (d) a state_dict round trip
at step 20 (onto a fresh optimizer and scheduler, the optimizer's state loaded last, as a resume
does). `step(epoch)` keeps the closed form, as PyTorch's `_get_closed_form_lr`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import descent
import descent.optim.lr_scheduler as ls

CASES = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=3, gamma=0.7),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[4, 9, 9, 25], gamma=0.3),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.93),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=12, eta_min=0.001),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=15),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.4, total_iters=7),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=30, power=2.0),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lambda e: 0.95 if e % 2 else 0.99),
}
LRS = (0.1, 0.037)


def _opt(lib, groups):
    params = [{"params": [lib.nn.Parameter(lib.zeros(2))], "lr": lr} for lr in LRS[:groups]]
    return lib.optim.SGD(params, lr=LRS[0])


def _run(lib, case, groups=1, change_at=None, resume_at=None, steps=40):
    """The lrs of every group after each of `steps` steps."""
    opt = _opt(lib, groups)
    sched = CASES[case](lib.optim.lr_scheduler, opt)
    out = [[g["lr"] for g in opt.param_groups]]
    for i in range(steps):
        opt.step()
        sched.step()
        if i == change_at:
            for g in opt.param_groups:
                g["lr"] = g["lr"] * 3.0 + 0.01  # a hand-made change (warmup, manual decay)
        if i == resume_at:
            opt_sd, sched_sd = opt.state_dict(), sched.state_dict()
            opt = _opt(lib, groups)
            sched = CASES[case](lib.optim.lr_scheduler, opt)
            sched.load_state_dict(sched_sd)
            opt.load_state_dict(opt_sd)
        out.append([float(g["lr"]) for g in opt.param_groups])
    return out


@pytest.mark.parametrize("variant", ["plain", "manual", "two_groups", "state_dict"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_recursive_step_matches_torch_exactly(case, variant):
    kw = {
        "plain": {},
        "manual": {"change_at": 10},
        "two_groups": {"groups": 2, "change_at": 10},
        "state_dict": {"groups": 2, "change_at": 5, "resume_at": 20},
    }[variant]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notes about step order
        theirs = _run(torch, case, **kw)
    ours = _run(descent, case, **kw)
    assert ours == theirs  # bitwise: the same float operations in the same order


def test_reproducer_step_lr_after_hand_made_change():
    got = []
    for lib in (descent, torch):
        opt = _opt(lib, 1)
        opt.param_groups[0]["lr"] = 1.0
        sched = lib.optim.lr_scheduler.StepLR(opt, 2, 0.5)
        for _ in range(2):
            opt.step()
            sched.step()
        opt.param_groups[0]["lr"] = 0.3
        lrs = []
        for _ in range(4):
            opt.step()
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        got.append(lrs)
    assert got[0] == got[1] == [0.3, 0.15, 0.15, 0.075]


@pytest.mark.parametrize("case", sorted(set(CASES) - {"MultiplicativeLR"}))
def test_step_with_epoch_is_the_closed_form(case):
    # step(epoch) jumps with the closed form from base_lrs (PyTorch's _get_closed_form_lr),
    # ignoring a hand-made change; rtol 1e-12 only because it is compared to lr_at's values
    opt = _opt(descent, 2)
    sched = CASES[case](ls, opt)
    opt.param_groups[0]["lr"] = 5.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        topt = _opt(torch, 2)
        theirs = CASES[case](torch.optim.lr_scheduler, topt)
        topt.param_groups[0]["lr"] = 5.0
        for epoch in (7, 3, 18):
            sched.step(epoch)
            theirs.step(epoch)
            assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in topt.param_groups]
    np.testing.assert_allclose(sched.get_last_lr(), sched.lr_at(18), rtol=1e-12)


def test_warmup_by_hand_then_cosine_matches_torch():
    # the compat program's pattern: a hand-written linear warmup, then CosineAnnealingLR
    runs = []
    for lib in (descent, torch):
        opt = _opt(lib, 1)
        sched = lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=30, eta_min=1e-4)
        lrs = []
        for it in range(40):
            if it < 5:
                opt.param_groups[0]["lr"] = LRS[0] * (it + 1) / 5
            opt.step()
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        runs.append(lrs)
    assert runs[0] == runs[1]


@pytest.mark.parametrize("kind", ["SequentialLR", "ChainedScheduler"])
def test_composites_carry_a_hand_made_change_as_torch(kind):
    # SequentialLR's children and ChainedScheduler's chainable children step recursively too
    runs = []
    for lib in (descent, torch):
        opt = _opt(lib, 2)
        m = lib.optim.lr_scheduler
        if kind == "SequentialLR":
            children = [m.LinearLR(opt, 0.2, total_iters=5), m.CosineAnnealingLR(opt, 20, 1e-3)]
            sched = m.SequentialLR(opt, children, [5])
        else:
            children = [m.ConstantLR(opt, 0.5, total_iters=4), m.ExponentialLR(opt, 0.9)]
            sched = m.ChainedScheduler(children)
        lrs = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in range(30):
                opt.step()
                sched.step()
                if i == 12:
                    opt.param_groups[0]["lr"] *= 2
                lrs.append([g["lr"] for g in opt.param_groups])
        runs.append(lrs)
    assert runs[0] == runs[1]
