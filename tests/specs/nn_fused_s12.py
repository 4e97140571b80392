"""Specs of the one-op layers added on 2026-12-05 for eager speed: GroupNorm (ops/group_norm.py),
the LSTM and GRU layers (ops/rnn.py: one op per layer and direction, backpropagation through
time written by hand). See tests/specs/__init__.py for the format. The NumPy references are
written from the definitions (PyTorch's gate order and formulas), independently of descent's
implementation. The convolution specs that now record ConvNd / ConvTransposeNd are in
nn_extra.py."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as TF

import descent
import descent.nn.functional as F

from . import Spec

SPECS: list[Spec] = []


def add(**kw) -> None:
    SPECS.append(Spec(**kw))


# ---------------------------------------------------------------------------------------------
# GroupNorm


def np_group_norm(x, w, b, groups, eps=1e-5):
    n, c = x.shape[:2]
    g = x.reshape(n, groups, -1)
    mean = g.mean(axis=2, keepdims=True)
    var = ((g - mean) ** 2).mean(axis=2, keepdims=True)
    y = ((g - mean) / np.sqrt(var + eps)).reshape(x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    return y * w.reshape(shape) + b.reshape(shape)


add(
    name="F.group_norm-fused",
    fn=lambda x, w, b: F.group_norm(x, 2, w, b),
    ref=lambda x, w, b: np_group_norm(x, w, b, 2),
    torch_fn=lambda x, w, b: TF.group_norm(x, 2, w, b),
    shapes=[(2, 4, 3, 2), (4,), (4,)],
    covers=("GroupNorm",),
)


# ---------------------------------------------------------------------------------------------
# LSTM and GRU layers (one layer, one direction, batch second: (L, N, F))

HID = 3


def _sig(v):
    return 1 / (1 + np.exp(-v))


def np_lstm(x, w_ih, w_hh, b_ih, b_hh):
    """torch.nn.LSTM's recurrence (gates i, f, g, o), h0 = c0 = 0; returns the outputs."""
    h = np.zeros((x.shape[1], HID))
    c = np.zeros_like(h)
    out = []
    for t in range(x.shape[0]):
        z = x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f, g, o = (z[:, k * HID:(k + 1) * HID] for k in range(4))
        c = _sig(f) * c + _sig(i) * np.tanh(g)
        h = _sig(o) * np.tanh(c)
        out.append(h)
    return np.stack(out)


def np_gru(x, w_ih, w_hh, b_ih, b_hh):
    """torch.nn.GRU's recurrence (gates r, z, n), h0 = 0; returns the outputs."""
    h = np.zeros((x.shape[1], HID))
    out = []
    for t in range(x.shape[0]):
        gi = x[t] @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        r = _sig(gi[:, :HID] + gh[:, :HID])
        z = _sig(gi[:, HID:2 * HID] + gh[:, HID:2 * HID])
        n = np.tanh(gi[:, 2 * HID:] + r * gh[:, 2 * HID:])
        h = (1 - z) * n + z * h
        out.append(h)
    return np.stack(out)


def _rnn(lib, kind):
    """f(x, w_ih, w_hh, b_ih, b_hh) -> the outputs of lib.nn.<kind>(F, HID) with those weights
    (functional_call, so the gradients reach the given tensors)."""

    def f(x, w_ih, w_hh, b_ih, b_hh):
        m = getattr(lib.nn, kind)(x.shape[-1], HID)
        m = m.to(x.dtype)
        params = {"weight_ih_l0": w_ih, "weight_hh_l0": w_hh, "bias_ih_l0": b_ih,
                  "bias_hh_l0": b_hh}  # fmt: skip
        return lib.func.functional_call(m, params, (x,))[0]

    return f


for kind, ref, gates in (("LSTM", np_lstm, 4), ("GRU", np_gru, 3)):
    add(
        name=f"nn.{kind}-layer-op",
        fn=_rnn(descent, kind),
        ref=ref,
        torch_fn=_rnn(torch, kind),
        shapes=[(4, 2, 3), (gates * HID, 3), (gates * HID, HID), (gates * HID,), (gates * HID,)],
        covers=(f"{kind}Layer",),
        domain=(-1.0, 1.0),
    )
