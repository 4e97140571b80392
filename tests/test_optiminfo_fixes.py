"""Regression tests for the optimizer findings of PyTorch's OptimizerInfo run (2026-12-04).

Differential against torch 2.13: named parameters, tensor lr and betas, duplicate parameters,
complex parameters in Adafactor/Muon, Muon's bfloat16 Newton-Schulz iteration and LBFGS's
fused `add_`. tests/optiminfo_harness.py runs PyTorch's whole database; these pin each fix.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import descent
from descent import optim
from descent.nn import Parameter

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
W0 = RNG.standard_normal((6, 4)).astype(np.float32)
B0 = RNG.standard_normal(6).astype(np.float32)
X = RNG.standard_normal((4, 5)).astype(np.float32)
Y = RNG.standard_normal((6, 5)).astype(np.float32)


def _pair(dtype=np.float32):
    """(descent's [w, b], torch's [w, b]) from the same start."""
    ours = [
        Parameter(descent.tensor(W0.astype(dtype))),
        Parameter(descent.tensor(B0.astype(dtype))),
    ]
    theirs = [torch.nn.Parameter(torch.tensor(W0.astype(dtype))),
              torch.nn.Parameter(torch.tensor(B0.astype(dtype)))]  # fmt: skip
    return ours, theirs


def _loss(lib, w, b):
    x, y = lib.tensor(X).to(w.dtype), lib.tensor(Y).to(w.dtype)
    return ((w @ x + b[:, None] - y) ** 2).mean()


def _run(opt, params, lib, steps=3):
    for _ in range(steps):

        def closure():
            opt.zero_grad()
            loss = _loss(lib, *params)
            loss.backward()
            return loss

        opt.step(closure)
    return [p.detach().numpy().copy() for p in params]


def _assert_close(ours, theirs, rtol=1e-5, atol=1e-6):
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# -- 1. named parameters -----------------------------------------------------------------------
def test_named_parameters_store_param_names_as_torch():
    (w, b), (tw, tb) = _pair()
    ours = optim.Adam([("weight", w), ("bias", b)], lr=0.1)
    theirs = torch.optim.Adam([("weight", tw), ("bias", tb)], lr=0.1)
    assert ours.param_groups[0]["params"] == [w, b]
    assert ours.param_groups[0]["param_names"] == theirs.param_groups[0]["param_names"]
    _assert_close(_run(ours, [w, b], descent), _run(theirs, [tw, tb], torch))
    sd, tsd = ours.state_dict(), theirs.state_dict()
    assert sd["param_groups"][0]["param_names"] == ["weight", "bias"]
    assert sorted(sd["param_groups"][0]) == sorted(tsd["param_groups"][0])


def test_named_parameter_groups_and_model_named_parameters():
    model = descent.nn.Linear(3, 2)
    opt = optim.SGD([{"params": list(model.named_parameters()), "lr": 0.5}], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt.param_groups[0]["lr"] == 0.5
    opt2 = optim.SGD(model.named_parameters(), lr=0.1)  # a generator of pairs, as in torch
    assert opt2.param_groups[0]["param_names"] == ["weight", "bias"]


def test_named_parameters_all_or_none():
    (w, b), (tw, tb) = _pair()
    for _lib, (p, q), cls in ((descent, (w, b), optim.SGD), (torch, (tw, tb), torch.optim.SGD)):
        with pytest.raises(ValueError, match="Some param names are missing"):
            cls([("weight", p), q], lr=0.1)
        with pytest.raises(ValueError, match="cannot add param group with names"):
            cls([{"params": [p]}, {"params": [("bias", q)]}], lr=0.1)
        with pytest.raises(ValueError, match="cannot add param group without names"):
            cls([{"params": [("weight", p)]}, {"params": [q]}], lr=0.1)


def test_load_state_dict_keeps_names_unless_the_dict_has_some():
    (w, b), _ = _pair()
    opt = optim.SGD([("weight", w), ("bias", b)], lr=0.1)
    sd = opt.state_dict()
    del sd["param_groups"][0]["param_names"]
    opt.load_state_dict(sd)  # names kept, as torch's update_group
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    sd["param_groups"][0]["param_names"] = ["w", "b"]
    opt.load_state_dict(sd)  # the saved names win
    assert opt.param_groups[0]["param_names"] == ["w", "b"]


# -- 2. tensor lr and betas --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("SGD", dict(momentum=0.9)), ("Adam", {}), ("AdamW", {}), ("Adagrad", {}), ("RMSprop", {}),
     ("Rprop", {}), ("ASGD", {}), ("NAdam", {}), ("Adafactor", {})],
)  # fmt: skip
def test_tensor_lr_matches_torch(name, kwargs):
    (w, b), (tw, tb) = _pair()
    ours = getattr(optim, name)([w, b], lr=descent.tensor(0.01), **kwargs)
    theirs = getattr(torch.optim, name)([tw, tb], lr=torch.tensor(0.01), **kwargs)
    assert isinstance(ours.param_groups[0]["lr"], descent.Tensor)  # kept a Tensor, as torch
    _assert_close(_run(ours, [w, b], descent), _run(theirs, [tw, tb], torch), rtol=1e-4)


def test_tensor_lr_in_muon_and_in_place_change_takes_effect():
    (w, _), (tw, _) = _pair()
    lr, tlr = descent.tensor(0.02), torch.tensor(0.02)
    ours, theirs = optim.Muon([w], lr=lr), torch.optim.Muon([tw], lr=tlr)
    for step in range(3):
        if step == 2:  # what a scheduler does to a tensor lr: change it in place
            lr.fill_(0.005)
            tlr.fill_(0.005)
        for opt, p in ((ours, w), (theirs, tw)):
            opt.zero_grad()
            (p**2).sum().backward()
            opt.step()
    np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_tensor_lr_must_have_one_element():
    (w, b), _ = _pair()
    for name in ("SGD", "Adam", "Adagrad", "Adafactor", "LBFGS"):
        with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
            getattr(optim, name)([w, b], lr=descent.tensor([0.001, 0.001]))
        with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
            getattr(torch.optim, name)(
                [torch.nn.Parameter(torch.ones(2))], lr=torch.tensor([0.001, 0.001])
            )


def test_adam_tensor_betas_match_torch_and_follow_its_rules():
    (w, b), (tw, tb) = _pair()
    ours = optim.Adam([w, b], lr=0.01, betas=(descent.tensor([0.9]), descent.tensor(0.99)))
    theirs = torch.optim.Adam([tw, tb], lr=0.01, betas=(torch.tensor([0.9]), torch.tensor(0.99)))
    assert [tuple(x.shape) for x in ours.param_groups[0]["betas"]] == [(), ()]  # squeezed
    _assert_close(_run(ours, [w, b], descent), _run(theirs, [tw, tb], torch))
    cases = [
        (dict(betas=(0.9, "T")), "both floats or both Tensors"),
        (dict(betas=("T", 0.99)), "both floats or both Tensors"),
        (dict(betas=(0, 0.99)), "both floats or both Tensors"),  # an int: torch refuses it too
        (dict(betas=("T", "T"), foreach=True), r"betas\[0\] as a Tensor is not supported"),
        (dict(lr="T", foreach=True), "lr as a Tensor is not supported"),
    ]
    for kwargs, match in cases:
        for lib, cls, p in ((descent, optim.AdamW, w), (torch, torch.optim.AdamW, tw)):
            val = {"T": lib.tensor(0.9)}
            kw = {k: (tuple(val.get(x, x) for x in v) if isinstance(v, tuple) else val.get(v, v))
                  for k, v in kwargs.items()}  # fmt: skip
            with pytest.raises(ValueError, match=match):
                cls([p], **kw)
    with pytest.raises(ValueError, match=r"Tensor betas\[0\] must be 1-element"):
        optim.Adam([w], betas=(descent.tensor([0.9, 0.9]), descent.tensor(0.99)))


# -- 3. the same parameter twice ---------------------------------------------------------------
def test_duplicate_parameter_in_a_group_warns_and_is_stepped_per_listing():
    p = Parameter(descent.tensor(np.array([1.0, 2.0], np.float32)))
    with pytest.warns(UserWarning, match="a parameter group with duplicate parameters"):
        opt = optim.SGD([p, p], lr=0.1)
    with pytest.warns(UserWarning, match="a parameter group with duplicate parameters"):
        torch.optim.SGD([torch.nn.Parameter(torch.ones(2))] * 2, lr=0.1)
    assert opt.param_groups[0]["params"] == [p]
    p.grad = descent.ones_like(p)
    opt.step()
    # twice, as PyTorch's for-loop SGD (since 2026-12-07; tests/test_fidelity_s24.py)
    np.testing.assert_allclose(p.numpy(), [0.8, 1.8], rtol=1e-6)
    q = Parameter(descent.tensor(np.ones(2, np.float32)))
    with pytest.warns(UserWarning):
        named = optim.SGD([("a", q), ("b", q)], lr=0.1)
    assert named.param_groups[0]["param_names"] == ["a"]


def test_parameter_in_two_groups_raises_as_torch():
    p = Parameter(descent.tensor(np.ones(2, np.float32)))
    tp = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter"):
        optim.Adam([{"params": p}, {"params": p}])
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter"):
        torch.optim.Adam([{"params": tp}, {"params": tp}])
    opt = optim.Adam([p])
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [p]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optim.Adam([p])  # one of each: no warning


# -- 4. complex parameters in whole-tensor rules ----------------------------------------------
@pytest.mark.parametrize("name", ["Adafactor", "Muon"])
def test_complex_parameters_raise_runtime_error_as_torch(name):
    z = np.ones((2, 2), np.complex64)
    with pytest.raises(RuntimeError, match="complex"):
        getattr(optim, name)([Parameter(descent.tensor(z))])
    tp = torch.nn.Parameter(torch.tensor(z))
    opt = getattr(torch.optim, name)([tp])
    tp.grad = torch.ones_like(tp)
    with pytest.raises(RuntimeError, match="does not support complex"):
        opt.step()


# -- 5. Muon: PyTorch's bfloat16 Newton-Schulz ------------------------------------------------
@pytest.mark.parametrize("shape", [(10, 5), (5, 10), (6, 6), (16, 3)])
def test_newton_schulz_bfloat16_equals_torch_bitwise(shape):
    from torch.optim._muon import _zeropower_via_newtonschulz

    from descent.optim.muon import zeropower_via_newton_schulz

    g = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    coeffs = (3.4445, -4.7750, 2.0315)
    theirs = _zeropower_via_newtonschulz(torch.tensor(g), coeffs, 5, 1e-7).float().numpy()
    ours = zeropower_via_newton_schulz(g, coeffs, 5, 1e-7, ns_dtype="bfloat16")
    assert ours.dtype == np.float32 and ours.shape == shape
    np.testing.assert_array_equal(ours, theirs)
    zero = zeropower_via_newton_schulz(np.zeros(shape, np.float32), ns_dtype="bfloat16")
    assert not zero.any()  # the eps floor keeps a zero update zero (no nan)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=0.01),
        dict(),
        dict(lr=0.02, nesterov=False),
        dict(lr=0.01, adjust_lr_fn="match_rms_adamw"),
    ],
)
def test_muon_default_matches_stock_torch(kwargs):
    """The harness's finding: lr=0.01, 1.5e-4 off after one step before the fix."""
    (w, _), (tw, _) = _pair()
    ours, theirs = optim.Muon([w], **kwargs), torch.optim.Muon([tw], **kwargs)
    assert ours.ns_dtype == "bfloat16" and "ns_dtype" not in ours.param_groups[0]
    for _ in range(6):
        for opt, p, lib in ((ours, w, descent), (theirs, tw, torch)):
            opt.zero_grad()
            ((p @ lib.tensor(X) - lib.tensor(Y)) ** 2).mean().backward()
            opt.step()
    np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_muon_full_precision_option_and_validation():
    (w, _), _ = _pair()
    opt = optim.Muon([w], ns_dtype=None)
    assert opt.ns_dtype is None
    with pytest.raises(ValueError, match="ns_dtype"):
        optim.Muon([w], ns_dtype="float16")


# -- 6. LBFGS ---------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.3, -0.0123457, 1e-3])
def test_lbfgs_add_is_fused_as_torch_add_alpha(alpha):
    from descent.optim.lbfgs import _add_scaled_once

    rng = np.random.default_rng(2)
    p = rng.standard_normal(4096).astype(np.float32)
    d = rng.standard_normal(4096).astype(np.float32)
    theirs = torch.tensor(p).add_(torch.tensor(d), alpha=alpha).numpy()
    ours = p.copy()
    _add_scaled_once(ours, alpha, d)
    np.testing.assert_array_equal(ours, theirs)
    theirs64 = torch.tensor(p, dtype=torch.float64).add_(torch.tensor(d, dtype=torch.float64),
                                                         alpha=alpha).numpy()  # fmt: skip
    ours64 = p.astype(np.float64)
    _add_scaled_once(ours64, alpha, d.astype(np.float64))
    np.testing.assert_allclose(ours64, theirs64, rtol=1e-13)  # torch fuses; descent need not


def _harness_problem(lib):
    """tests/optiminfo_harness.py's least squares in float64: w (10, 5), b (10,)."""
    rng = np.random.default_rng(0)
    w0, b0 = rng.standard_normal((10, 5)), rng.standard_normal(10)
    x, y = lib.tensor(rng.standard_normal((5, 8))), lib.tensor(rng.standard_normal((10, 8)))
    make = torch.nn.Parameter if lib is torch else Parameter
    w, b = make(lib.tensor(w0)), make(lib.tensor(b0))
    return [w, b], lambda: ((w @ x + b[:, None] - y) ** 2).mean()


@pytest.mark.parametrize("lr", [1.0, "tensor"])
def test_lbfgs_strong_wolfe_matches_torch_in_float64(lr):
    """float32 differs by summation order only (tests/optiminfo_harness.py, _float64_only):
    in float64 the first step agrees to rounding, evaluation for evaluation."""
    out = []
    for lib, cls in ((descent, optim.LBFGS), (torch, torch.optim.LBFGS)):
        params, loss_fn = _harness_problem(lib)
        opt = cls(params, lr=lib.tensor(1.0) if lr == "tensor" else lr,
                  line_search_fn="strong_wolfe")  # fmt: skip

        def closure(opt=opt, loss_fn=loss_fn):
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            return loss

        opt.step(closure)
        st = opt.state[params[0]]
        out.append(([p.detach().numpy().copy() for p in params], int(st["func_evals"])))
    (ours, evals), (theirs, tevals) = out
    assert evals == tevals
    _assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


# -- 7. schedulers fill a tensor lr in place, as PyTorch's ------------------------------------
_SCHEDULERS = {
    "StepLR": lambda L, o: L.optim.lr_scheduler.StepLR(o, 2, 0.5),
    "OneCycleLR": lambda L, o: L.optim.lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=10),
    "CyclicLR": lambda L, o: L.optim.lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=2),
    "SequentialLR": lambda L, o: L.optim.lr_scheduler.SequentialLR(
        o,
        [
            L.optim.lr_scheduler.LinearLR(o, 0.1, total_iters=2),
            L.optim.lr_scheduler.ExponentialLR(o, 0.9),
        ],
        milestones=[2],
    ),  # fmt: skip
    "CosineAnnealingWarmRestarts": lambda L, o: L.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        o, 3
    ),
    "ReduceLROnPlateau": lambda L, o: L.optim.lr_scheduler.ReduceLROnPlateau(o, patience=0),
}


@pytest.mark.parametrize("name", list(_SCHEDULERS))
def test_scheduler_fills_a_tensor_lr_in_place(name):
    out = []
    for lib in (descent, torch):
        make = torch.nn.Parameter if lib is torch else Parameter
        p, lr = make(lib.ones(3)), lib.tensor(0.1)
        opt = lib.optim.SGD([p], lr=lr, momentum=0.9)
        sched = _SCHEDULERS[name](lib, opt)
        seen = []
        for _ in range(6):
            p.grad = lib.ones(3)
            opt.step()
            sched.step(1.0) if name == "ReduceLROnPlateau" else sched.step()
            assert opt.param_groups[0]["lr"] is lr  # the same Tensor, filled in place
            seen.append(float(lr))
        last = [float(x) for x in sched.get_last_lr()]
        out.append((seen, last, float(opt.param_groups[0].get("initial_lr", -1.0))))
    (seen, last, init), (tseen, tlast, tinit) = out
    np.testing.assert_allclose(seen, tseen, rtol=1e-6)
    np.testing.assert_allclose(last, tlast, rtol=1e-6)
    assert init == pytest.approx(tinit)  # "initial_lr" is a copy: not filled with the lr


def test_add_param_group_with_its_own_param_names_entry():
    """A group dict that carries "param_names" (plain params) counts as named, as in torch."""
    out = []
    for lib in (descent, torch):
        make = torch.nn.Parameter if lib is torch else Parameter
        a, b = make(lib.ones(2)), make(lib.ones(2))
        opt = lib.optim.SGD([("a", a)], lr=0.1)
        opt.add_param_group({"params": [b], "param_names": ["b"]})
        out.append([g["param_names"] for g in opt.param_groups])
    assert out[0] == out[1] == [["a"], ["b"]]


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_complex_parameters_match_torch(line_search_fn):
    """PyTorch's LBFGS steps a complex parameter as its (re, im) pairs; descent refused it."""
    rng = np.random.default_rng(3)
    z0 = (rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))).astype(np.complex64)
    a0 = (rng.standard_normal((4, 4)) + 1j * rng.standard_normal((4, 4))).astype(np.complex64)
    out = []
    for lib in (descent, torch):
        make = torch.nn.Parameter if lib is torch else Parameter
        z, a = make(lib.tensor(z0)), lib.tensor(a0)
        opt = lib.optim.LBFGS([z], line_search_fn=line_search_fn, max_iter=5)

        def closure(opt=opt, z=z, a=a):
            opt.zero_grad()
            loss = ((z @ a).abs() ** 2).sum() + ((z.real - 1) ** 2).sum()
            loss.backward()
            return loss

        for _ in range(2):
            opt.step(closure)
        st = opt.state[z]
        out.append((z.detach().numpy().copy(), st["d"].numpy().dtype, tuple(st["d"].shape)))
    (ours, dtype, shape), (theirs, tdtype, tshape) = out
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    assert (dtype, shape) == (tdtype, tshape) == (np.float32, (24,))  # real flat vectors


def test_checkpoint_keeps_a_tensor_lr_and_names(tmp_path):
    """descent.io.save refused a tensor lr (not JSON); it is now written as its number and
    read back as a Tensor; param_names round-trip too."""
    model = descent.nn.Linear(3, 2)
    opt = optim.AdamW(
        model.named_parameters(), lr=descent.tensor(1e-3), betas=(descent.tensor(0.9),
                                                                   descent.tensor(0.99))
    )  # fmt: skip
    for p in model.parameters():
        p.grad = descent.ones_like(p)
    opt.step()
    path = descent.io.save(tmp_path / "ck.safetensors", model, opt)
    model2 = descent.nn.Linear(3, 2)
    opt2 = optim.AdamW(model2.named_parameters(), lr=0.5)
    descent.io.load(path, model2, opt2)
    group = opt2.param_groups[0]
    assert isinstance(group["lr"], descent.Tensor) and group["lr"].item() == pytest.approx(1e-3)
    assert group["lr"].dtype == descent.float32
    assert [b.item() for b in group["betas"]] == pytest.approx([0.9, 0.99])
    assert group["param_names"] == ["weight", "bias"]
