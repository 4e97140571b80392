"""Complex parameters in descent's optimizers (stepped as their (re, im) pairs, PyTorch's
view_as_real) and gradient clipping of complex gradients, against torch 2.13."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

RNG = np.random.default_rng(0)
Z0 = (RNG.standard_normal((3, 2)) + 1j * RNG.standard_normal((3, 2))).astype(np.complex64)
R0 = RNG.standard_normal(3).astype(np.float32)
T0 = (RNG.standard_normal((3, 2)) + 1j * RNG.standard_normal((3, 2))).astype(np.complex64)

CONFIGS = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.1, weight_decay=0.1)),
    ("NAdam", dict(lr=0.1)),
    ("RAdam", dict(lr=0.1)),
    ("Adamax", dict(lr=0.1)),
    ("Adadelta", dict(lr=1.0)),
    ("Rprop", dict(lr=0.01)),
    ("ASGD", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
    ("Adagrad", dict(lr=0.1)),
]


def _state_dtypes(opt, p):
    return sorted(
        (k, str(v.dtype).split(".")[-1])
        for k, v in opt.state[p].items()
        if hasattr(v, "dtype") and getattr(v, "ndim", 0) > 0
    )


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_complex_parameters_step_like_torch(name, kwargs):
    out = []
    for T in (torch, ds):
        p = T.nn.Parameter(T.tensor(Z0))  # complex
        q = T.nn.Parameter(T.tensor(R0))  # real, in the same group
        opt = getattr(T.optim, name)([p, q], **kwargs)
        for _ in range(6):
            loss = (p * q[:, None] - T.tensor(T0)).abs().pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        out.append((p.detach().numpy().copy(), q.detach().numpy().copy(), _state_dtypes(opt, p)))
    (pt, qt, st), (pd, qd, sd) = out
    np.testing.assert_allclose(pd, pt, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(qd, qt, rtol=1e-5, atol=1e-5)
    assert sd == st  # complex state tensors, as torch's


def test_optimizers_with_whole_tensor_rules_refuse_complex_parameters():
    for name in ("Adafactor", "Muon"):  # RuntimeError, as PyTorch's (LBFGS takes complex ones)
        with pytest.raises(RuntimeError, match="complex"):
            getattr(ds.optim, name)([ds.nn.Parameter(ds.tensor(Z0))])


def test_complex_parameter_state_dict_round_trip():
    p = ds.nn.Parameter(ds.tensor(Z0))
    opt = ds.optim.Adam([p], lr=0.1)
    (p.abs().sum()).backward()
    opt.step()
    sd = opt.state_dict()
    p2 = ds.nn.Parameter(ds.tensor(Z0))
    opt2 = ds.optim.Adam([p2], lr=0.1)
    opt2.load_state_dict(sd)
    assert opt2.state[p2]["exp_avg"].dtype == ds.complex64
    np.testing.assert_array_equal(
        opt2.state[p2]["exp_avg"].numpy(), opt.state[p]["exp_avg"].numpy()
    )


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.0])
def test_clip_grad_norm_of_complex_gradients(norm_type):
    out = []
    for T in (torch, ds):
        p = T.nn.Parameter(T.tensor(Z0))
        q = T.nn.Parameter(T.ones(2))
        (p * q).abs().pow(2).sum().backward()
        n = T.nn.utils.clip_grad_norm_([p, q], 1.0, norm_type=norm_type)
        out.append((float(n), str(n.dtype).split(".")[-1], p.grad.numpy(), q.grad.numpy()))
    (nt, dt, pt, qt), (nd, dd, pd, qd) = out
    assert dd == dt == "float32"
    np.testing.assert_allclose(nd, nt, rtol=1e-5)
    np.testing.assert_allclose(pd, pt, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(qd, qt, rtol=1e-5, atol=1e-7)
