"""`inplace=True` on activations (F.relu(x, inplace=True), nn.ReLU(inplace=True), ...) stores
the result in the input, as in PyTorch: it was accepted and ignored, so a residual block
`x + block(x)` whose block starts with nn.ReLU(inplace=True) (the classic VQ-VAE notebook's
Residual) added x where PyTorch adds relu(x). Values, gradients, identity and errors vs torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds
import descent.nn as nn
import descent.nn.functional as F

X = np.array([[-4.0, -0.5, 0.0, 0.3, 2.5, 7.0]], dtype=np.float32)

# name, call with inplace=True on (lib, tensor)
FUNCTIONAL = [
    ("relu", lambda lib, t: lib.nn.functional.relu(t, inplace=True)),
    ("silu", lambda lib, t: lib.nn.functional.silu(t, inplace=True)),
    ("leaky_relu", lambda lib, t: lib.nn.functional.leaky_relu(t, 0.2, inplace=True)),
    ("elu", lambda lib, t: lib.nn.functional.elu(t, 0.7, inplace=True)),
    ("hardtanh", lambda lib, t: lib.nn.functional.hardtanh(t, -1.5, 2.0, inplace=True)),
    ("relu6", lambda lib, t: lib.nn.functional.relu6(t, inplace=True)),
    ("hardsigmoid", lambda lib, t: lib.nn.functional.hardsigmoid(t, inplace=True)),
    ("hardswish", lambda lib, t: lib.nn.functional.hardswish(t, inplace=True)),
    ("selu", lambda lib, t: lib.nn.functional.selu(t, inplace=True)),
    ("celu", lambda lib, t: lib.nn.functional.celu(t, 0.5, inplace=True)),
    ("mish", lambda lib, t: lib.nn.functional.mish(t, inplace=True)),
    ("threshold", lambda lib, t: lib.nn.functional.threshold(t, 0.1, -2.0, inplace=True)),
    ("rrelu_eval", lambda lib, t: lib.nn.functional.rrelu(t, training=False, inplace=True)),
]
MODULES = [
    ("ReLU", lambda lib: lib.nn.ReLU(inplace=True)),
    ("SiLU", lambda lib: lib.nn.SiLU(inplace=True)),
    ("LeakyReLU", lambda lib: lib.nn.LeakyReLU(0.1, inplace=True)),
    ("ELU", lambda lib: lib.nn.ELU(inplace=True)),
    ("Hardtanh", lambda lib: lib.nn.Hardtanh(inplace=True)),
    ("ReLU6", lambda lib: lib.nn.ReLU6(inplace=True)),
    ("Hardsigmoid", lambda lib: lib.nn.Hardsigmoid(inplace=True)),
    ("Hardswish", lambda lib: lib.nn.Hardswish(inplace=True)),
    ("SELU", lambda lib: lib.nn.SELU(inplace=True)),
    ("CELU", lambda lib: lib.nn.CELU(inplace=True)),
    ("Mish", lambda lib: lib.nn.Mish(inplace=True)),
    ("Threshold", lambda lib: lib.nn.Threshold(0.1, 20.0, inplace=True)),
]


def _run(lib, act):
    """act applied in place to a non-leaf h = 2x; returns h after, whether act returned h,
    and x's gradient of sum(h * w) (w makes each element's gradient distinct)."""
    x = lib.tensor(X, requires_grad=True)
    h = x * 2
    out = act(h)
    same = out is h
    (h * lib.arange(1.0, 7.0)).sum().backward()
    return h.detach().numpy(), same, x.grad.numpy()


@pytest.mark.parametrize("name,fn", FUNCTIONAL, ids=[n for n, _ in FUNCTIONAL])
def test_functional_inplace_writes_the_input_as_torch(name, fn):
    h, same, g = _run(ds, lambda t: fn(ds, t))
    th, tsame, tg = _run(torch, lambda t: fn(torch, t))
    assert same and tsame
    np.testing.assert_allclose(h, th, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g, tg, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name,make", MODULES, ids=[n for n, _ in MODULES])
def test_module_inplace_writes_the_input_as_torch(name, make):
    h, same, g = _run(ds, make(ds))
    th, tsame, tg = _run(torch, make(torch))
    assert same == tsame
    np.testing.assert_allclose(h, th, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g, tg, rtol=1e-6, atol=1e-6)


def test_residual_block_starting_with_an_inplace_relu_as_torch():
    """x + block(x) with block = Sequential(ReLU(True), Linear): PyTorch adds relu(x)."""
    results = []
    for lib in (ds, torch):
        pre = lib.nn.Linear(3, 3)
        block = lib.nn.Sequential(lib.nn.ReLU(True), lib.nn.Linear(3, 3))
        with lib.no_grad():
            pre.weight.copy_(lib.tensor(np.eye(3, dtype=np.float32) * 2 - 0.5))
            pre.bias.fill_(0.1)
            block[1].weight.copy_(lib.tensor(np.arange(9, dtype=np.float32).reshape(3, 3) / 9))
            block[1].bias.zero_()
        x = lib.tensor([[0.5, -1.0, 2.0]], requires_grad=True)
        z = pre(x)
        y = z + block(z)
        y.sum().backward()
        results.append([t.detach().numpy() for t in (y, x.grad, pre.weight.grad)])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_inplace_activation_without_grad_and_its_errors():
    t = ds.tensor(X.copy())
    view = t[0, :3]
    F.relu(t, inplace=True)  # not recorded: written into the array, views see it
    np.testing.assert_array_equal(view.numpy(), [0.0, 0.0, 0.0])
    leaf = ds.tensor([1.0, -1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        nn.ReLU(inplace=True)(leaf)
    with pytest.raises(TypeError, match="relu_"):
        F.relu([1.0, -1.0], inplace=True)
    # an input saved by another node (Mul saves both inputs): its backward refuses, as torch
    a = ds.tensor([1.0, -2.0], requires_grad=True)
    h = a * 1.5
    y = h * h
    F.silu(h, inplace=True)
    with pytest.raises(RuntimeError, match="modified in place"):
        y.sum().backward()
    ta = torch.tensor([1.0, -2.0], requires_grad=True)
    th = ta * 1.5
    ty = th * th
    torch.nn.functional.silu(th, inplace=True)
    with pytest.raises(RuntimeError, match="inplace"):
        ty.sum().backward()


def test_inplace_activation_on_bfloat16_stays_in_place():
    """hardsigmoid/selu/celu compute bfloat16 in float32 and round once; in place, the
    rounded result must still land in the input."""
    for name in ("hardsigmoid", "selu", "celu"):
        t = ds.tensor(X.copy()).to(ds.bfloat16)
        tt = torch.tensor(X.copy()).to(torch.bfloat16)
        assert getattr(F, name)(t, inplace=True) is t
        getattr(torch.nn.functional, name)(tt, inplace=True)
        assert t.dtype == ds.bfloat16
        np.testing.assert_array_equal(t.float().numpy(), tt.float().numpy())


def test_dropout_inplace_writes_the_input_as_torch():
    """F.dropout(x, inplace=True) and nn.Dropout(inplace=True) in training mode store the
    masked values in x (the mask is random: p = 1 compares exactly, p = 0.5 by structure)."""
    for lib in (ds, torch):
        x = lib.tensor(X, requires_grad=True)
        h = x * 2
        assert lib.nn.functional.dropout(h, p=1.0, training=True, inplace=True) is h
        np.testing.assert_array_equal(h.detach().numpy(), np.zeros_like(X))
        h.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), np.zeros_like(X))
        h = lib.tensor(X) * 2
        before = h.clone()
        out = lib.nn.Dropout(p=0.5, inplace=True)(h)
        assert out is h
        kept = (h != 0).numpy()
        np.testing.assert_allclose(h.numpy()[kept], 2 * before.numpy()[kept])
        h = lib.tensor(X)
        lib.nn.functional.dropout(h, p=0.5, training=False, inplace=True)  # eval: unchanged
        np.testing.assert_array_equal(h.numpy(), X)


@pytest.mark.parametrize(
    "make,shape",
    [
        (lambda lib: lib.nn.Dropout1d(p=1.0, inplace=True), (2, 3, 4)),
        (lambda lib: lib.nn.Dropout2d(p=1.0, inplace=True), (2, 3, 4, 4)),
        (lambda lib: lib.nn.Dropout3d(p=1.0, inplace=True), (2, 3, 2, 2, 2)),
        (
            lambda lib: lambda t: lib.nn.functional.feature_alpha_dropout(t, 1.0, True, True),
            (2, 3, 4),
        ),
        (
            lambda lib: lambda t: lib.nn.functional.dropout2d(t, 1.0, True, inplace=True),
            (2, 3, 4, 4),
        ),
        (lambda lib: lambda t: lib.nn.functional.alpha_dropout(t, 1.0, True, True), (2, 3)),
    ],
)
def test_channel_and_alpha_dropout_inplace_as_torch(make, shape):
    """p = 1 is deterministic: every value dropped, stored in the input, zero gradients.
    (nn.AlphaDropout(inplace=True) does not pass `inplace` on in PyTorch: neither here.)"""
    vals = np.arange(1.0, 1.0 + np.prod(shape), dtype=np.float32).reshape(shape)
    results = []
    for lib in (ds, torch):
        x = lib.tensor(vals, requires_grad=True)
        h = x * 1.0
        layer = make(lib)
        if isinstance(layer, lib.nn.Module):
            layer.train()
        out = layer(h)
        (h * 2).sum().backward()
        results.append((out is h, h.detach().numpy(), x.grad.numpy()))
    (same, h, g), (tsame, th, tg) = results
    assert same and tsame
    np.testing.assert_array_equal(h, th)
    np.testing.assert_array_equal(g, tg)


def test_alpha_dropout_modules_ignore_inplace_as_torch():
    for lib in (ds, torch):
        for layer in (
            lib.nn.AlphaDropout(1.0, inplace=True),
            lib.nn.FeatureAlphaDropout(1.0, True),
        ):
            h = lib.ones(2, 3, 4)
            assert layer.train()(h) is not h
            np.testing.assert_array_equal(h.numpy(), np.ones((2, 3, 4)))
