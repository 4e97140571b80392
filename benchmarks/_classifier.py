"""The classifier race shared by mlp.py and cnn.py: one training step in each library.

Both step functions cycle through the same pool of batches; the first losses must agree before
anything is timed (same weights, same data), or the benchmark stops.
"""

from __future__ import annotations

import math

import torch

import descent
from descent.nn import functional as F


def classifier_steps(name: str, model, opt, tmodel, topt, pool, check_steps: int = 3):
    """(step_descent, step_torch) for a cross-entropy classifier over `pool` [(x, y) arrays]."""
    d_batches = [(descent.tensor(x), descent.tensor(y)) for x, y in pool]
    t_batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in pool]
    state = {"d": 0, "t": 0}

    def step_descent():
        x, y = d_batches[state["d"] % len(pool)]
        state["d"] += 1
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    def step_torch():
        x, y = t_batches[state["t"] % len(pool)]
        state["t"] += 1
        topt.zero_grad()
        loss = torch.nn.functional.cross_entropy(tmodel(x), y)
        loss.backward()
        topt.step()
        return loss.item()

    for i in range(check_steps):
        ld, lt = step_descent(), step_torch()
        if not math.isclose(ld, lt, rel_tol=1e-4, abs_tol=1e-5):
            raise SystemExit(f"{name}: losses disagree at step {i}: descent {ld} torch {lt}")
    return step_descent, step_torch
