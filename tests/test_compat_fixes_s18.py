"""Fixes found by the session-18 compat programs (tests/compat/programs), each against torch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")


def _both(fn):
    """fn(lib, a, v) in both libraries on the same data; the deprecation warning silenced."""
    a = np.array([1.0, -2.0, 3.0], dtype=np.float32)
    v = np.array([0.5, 4.0, -1.5], dtype=np.float32)
    out = []
    for lib in (torch, descent):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out.append(fn(lib, lib.tensor(a), lib.tensor(v)))
    return out


@pytest.mark.parametrize(
    "call",
    [
        lambda lib, a, v: a.add(2.0, v),
        lambda lib, a, v: a.sub(3, v),
        lambda lib, a, v: a.clone().add_(0.25, v),
        lambda lib, a, v: a.clone().add_(lib.tensor(0.5), v),  # DARTS: p.data.add_(R, v)
        lambda lib, a, v: a.clone().sub_(2 * lib.tensor(0.5), v),
        lambda lib, a, v: lib.add(a, 2.0, v),
        lambda lib, a, v: lib.sub(a, -1.5, v),
        lambda lib, a, v: a.clone().addcmul_(0.1, v, v),  # pre-1.5 Adam: addcmul_(1 - b2, g, g)
        lambda lib, a, v: a.clone().addcdiv_(-0.5, v, a),  # p.data.addcdiv_(-step, m, denom)
        lambda lib, a, v: a.addcmul(2, v, a),
        lambda lib, a, v: a.addcdiv(2, v, a),
        lambda lib, a, v: lib.addcmul(a, 0.5, v, v),
        lambda lib, a, v: lib.addcdiv(a, 0.5, v, a),
    ],
)
def test_deprecated_scalar_first_overloads(call):
    """torch 2.13 still takes the scalar first (with a UserWarning): x.add_(alpha, other),
    x.addcmul_(value, t1, t2); descent read `x.add_(R, v)` as other=R, alpha=v and raised."""
    theirs, ours = _both(call)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_deprecated_overload_warns_and_keeps_gradients():
    theta = descent.tensor([1.0, 2.0], requires_grad=True)
    step = descent.tensor([0.5, -1.0], requires_grad=True)
    with pytest.warns(UserWarning, match="deprecated"):
        out = theta.sub(0.1, step)  # DARTS' unrolled step: theta.sub(eta, moment + dtheta)
    out.sum().backward()
    np.testing.assert_allclose(step.grad.numpy(), [-0.1, -0.1])
    np.testing.assert_allclose(theta.grad.numpy(), [1.0, 1.0])


@pytest.mark.parametrize(
    "call",
    [
        lambda lib, a, v: a.add(v, v),  # the first argument is no scalar
        lambda lib, a, v: a.clone().add_(v, 2.0),  # alpha is keyword-only
        lambda lib, a, v: a.addcmul(0.5, v, 2.0),
    ],
)
def test_deprecated_overload_refuses_what_torch_refuses(call):
    for lib in (torch, descent):
        a, v = lib.ones(3), lib.arange(3.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            with pytest.raises(TypeError):
                call(lib, a, v)


def _mats(lib):
    rng = np.random.default_rng(1)
    arr = {k: lib.tensor(rng.standard_normal(s).astype(np.float32)) for k, s in
           (("x", (3, 4)), ("m1", (3, 2)), ("m2", (2, 4)), ("v2", (2,)), ("v3", (3,)),
            ("v4", (4,)), ("b", (2, 3, 2)), ("b2", (2, 2, 4)), ("bx", (2, 3, 4)))}
    return arr


@pytest.mark.parametrize(
    "call",
    [
        lambda lib, a: lib.addmm(0.5, a["x"], a["m1"], a["m2"]),
        lambda lib, a: lib.addmm(0.5, a["x"], 2.0, a["m1"], a["m2"]),
        lambda lib, a: a["x"].addmm(0.5, a["m1"], a["m2"]),
        lambda lib, a: a["x"].addmm(0.5, -1.5, a["m1"], a["m2"]),
        lambda lib, a: a["x"].clone().addmm_(0.5, 2.0, a["m1"], a["m2"]),
        lambda lib, a: a["x"].clone().addmm_(lib.tensor(0.5), a["m1"], a["m2"]),
        lambda lib, a: a["v3"].addmv(0.5, 2.0, a["m1"], a["v2"]),
        lambda lib, a: lib.addmv(0.5, a["v3"], a["m1"], a["v2"]),
        lambda lib, a: a["v3"].clone().addmv_(2, a["m1"], a["v2"]),
        lambda lib, a: a["x"].addr(0.5, 2.0, a["v3"], a["v4"]),
        lambda lib, a: lib.addr(0.5, a["x"], -1.0, a["v3"], a["v4"]),
        lambda lib, a: a["x"].clone().addr_(0.5, a["v3"], a["v4"]),
        lambda lib, a: a["bx"].baddbmm(0.5, 2.0, a["b"], a["b2"]),
        lambda lib, a: a["bx"].clone().baddbmm_(0.5, a["b"], a["b2"]),
        lambda lib, a: a["x"].addbmm(0.5, 2.0, a["b"], a["b2"]),
        lambda lib, a: a["x"].clone().addbmm_(0.5, a["b"], a["b2"]),
        lambda lib, a: lib.addbmm(0.5, a["x"], 2.0, a["b"], a["b2"]),
        lambda lib, a: lib.addbmm(0.5, a["x"], a["b"], a["b2"]),
        lambda lib, a: lib.baddbmm(0.5, a["bx"], a["b"], a["b2"]),
        lambda lib, a: lib.baddbmm(0.5, a["bx"], -2.0, a["b"], a["b2"]),
        lambda lib, a: lib.addmm(a["x"], a["m1"], a["m2"], beta=0.5, alpha=2.0),  # current form
    ],
)
def test_deprecated_beta_alpha_first_overloads(call):
    """torch.addmm(beta, input, [alpha,] m1, m2) and x.addmm(beta, [alpha,] m1, m2) (and
    addmv / addr / baddbmm / addbmm, in place too), as torch 2.13 still takes them."""
    out = []
    for lib in (torch, descent):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out.append(call(lib, _mats(lib)).numpy())
    np.testing.assert_allclose(out[1], out[0], rtol=1e-6, atol=1e-6)


def test_deprecated_beta_alpha_refuses_a_matrix_as_beta():
    for lib in (torch, descent):
        a = _mats(lib)
        with pytest.raises(TypeError):
            a["x"].addmm(a["x"], a["m1"], a["m2"])


_CHAINABLE = {
    "StepLR": lambda S, o: S.StepLR(o, 2, 0.5),
    "MultiStepLR": lambda S, o: S.MultiStepLR(o, [1, 3, 3], 0.5),
    "ExponentialLR": lambda S, o: S.ExponentialLR(o, 0.5),
    "CosineAnnealingLR": lambda S, o: S.CosineAnnealingLR(o, 3, 0.01),
    "MultiplicativeLR": lambda S, o: S.MultiplicativeLR(o, lambda e: 0.9),
    "LinearLR": lambda S, o: S.LinearLR(o, 0.5, 1.0, 3),
    "ConstantLR": lambda S, o: S.ConstantLR(o, 0.5, 2),
    "PolynomialLR": lambda S, o: S.PolynomialLR(o, 4, 2.0),
    "LambdaLR": lambda S, o: S.LambdaLR(o, lambda e: 1 / (e + 1)),
    "OneCycleLR": lambda S, o: S.OneCycleLR(o, 1.0, total_steps=10),
}


@pytest.mark.parametrize("name", sorted(_CHAINABLE))
def test_scheduler_get_lr_outside_step_is_torchs(name):
    """scheduler.get_lr() after step() (pre-1.4 logging code; DARTS passes it on as eta):
    PyTorch's chainable schedules apply their recursive rule once more to the current lr
    (StepLR at a boundary: lr x gamma again), with a warning; descent returned the lr."""
    seqs = []
    for lib in (torch, descent):
        o = lib.optim.SGD([lib.nn.Parameter(lib.ones(1))], lr=0.1, momentum=0.9)
        s = _CHAINABLE[name](lib.optim.lr_scheduler, o)
        seq = []
        for _ in range(8):
            o.step()
            s.step()
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                seq.append(s.get_lr()[0])
            seq.append(len([x for x in w if "get_last_lr" in str(x.message)]))
            seq.append(s.get_last_lr()[0])
        seqs.append(seq)
    np.testing.assert_allclose(seqs[1], seqs[0], rtol=1e-12)


def test_multiplicative_lr_step_with_epoch_is_torchs():
    """MultiplicativeLR.step(epoch) multiplies the current lr by f(epoch) once (PyTorch has no
    closed form for it); descent jumped to the product f(1)...f(epoch) from the base lr."""
    seqs = []
    for lib in (torch, descent):
        o = lib.optim.SGD([lib.nn.Parameter(lib.ones(1))], lr=0.1)
        s = lib.optim.lr_scheduler.MultiplicativeLR(o, lambda e: 0.9 if e % 2 else 0.5)
        seq = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            for e in [None, 5, None, None, 2, None, 7]:
                o.step()
                s.step(e)
                seq += [o.param_groups[0]["lr"], s.get_last_lr()[0], s.last_epoch]
        seqs.append(seq)
    np.testing.assert_allclose(seqs[1], seqs[0], rtol=1e-12)
