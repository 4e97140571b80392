"""Specs of the mixture-of-experts ops (descent.ops.moe: the fused experts and the load-balancing
loss); see tests/specs/__init__.py for the format. The NumPy and PyTorch references compute each
token's k experts one by one (no grouping, no permutation), independently of the op.

The router probabilities are rows of a permutation of (0.6, 0.3, 0.1): well separated, so a
finite-difference step never changes which experts a token picks (the choice is piecewise
constant; no gradient flows through it)."""

from __future__ import annotations

import math

import numpy as np
import torch

from descent.ops.moe import LoadBalance, MoEExperts

from . import Spec

SPECS: list[Spec] = []

N, D, H, E, K = 6, 4, 5, 3, 2
_C = math.sqrt(2.0 / math.pi)


def _inputs(rng, dtype):
    x = rng.uniform(-1.5, 1.5, (N, D))
    probs = np.stack([rng.permutation([0.6, 0.3, 0.1]) for _ in range(N)])
    ws = []
    for _ in range(E):
        ws += [rng.uniform(-0.8, 0.8, (H, D)), rng.uniform(-0.8, 0.8, (H, D)),
               rng.uniform(-0.8, 0.8, (D, H))]  # fmt: skip
    return [a.astype(dtype) for a in (x, probs, *ws)]


def _top_k(p):
    return np.argsort(-p, axis=-1, kind="stable")[:, :K]


def _ref_experts(x, p, *ws):
    idx = _top_k(p)
    y = np.zeros_like(x)
    for n in range(N):
        for j in range(K):
            e = idx[n, j]
            w, v, w1 = ws[3 * e : 3 * e + 3]
            a, b = w @ x[n], v @ x[n]
            h = 0.5 * a * (1 + np.tanh(_C * (a + 0.044715 * a**3))) * b
            y[n] += p[n, e] * (w1 @ h)
    return y


def _torch_experts(x, p, *ws):
    idx = torch.topk(p.detach(), K, dim=-1).indices
    rows = []
    for n in range(N):
        acc = torch.zeros_like(x[n])
        for j in range(K):
            e = int(idx[n, j])
            w, v, w1 = ws[3 * e : 3 * e + 3]
            h = torch.nn.functional.gelu(w @ x[n], approximate="tanh") * (v @ x[n])
            acc = acc + p[n, e] * (w1 @ h)
        rows.append(acc)
    return torch.stack(rows)


def _ref_load_balance(p):
    f = np.bincount(_top_k(p).reshape(-1), minlength=E) / (N * K)
    return E * (f * p.mean(axis=0)).sum()


def _torch_load_balance(p):
    idx = torch.topk(p.detach(), K, dim=-1).indices
    f = torch.bincount(idx.reshape(-1), minlength=E).to(p.dtype) / (N * K)
    return E * (f * p.mean(0)).sum()


SPECS.append(
    Spec(
        name="moe_experts",
        fn=lambda x, p, *ws: MoEExperts.apply(x, p, *ws, k=K, act="gelu_tanh"),
        ref=_ref_experts,
        torch_fn=_torch_experts,
        shapes=[(N, D), (N, E)] + [(H, D), (H, D), (D, H)] * E,
        inputs=_inputs,
        second_order=False,  # the fused backward is array code: MoE(fused=False) for that
        covers=("MoEExperts",),
    )
)
SPECS.append(
    Spec(
        name="moe_load_balance",
        fn=lambda p: LoadBalance.apply(p, k=K),
        ref=_ref_load_balance,
        torch_fn=_torch_load_balance,
        shapes=[(N, E)],
        inputs=lambda rng, dtype: [_inputs(rng, dtype)[1]],
        second_order=False,  # as the experts' op: MoE(fused=False) for higher order
        covers=("LoadBalance",),
    )
)
