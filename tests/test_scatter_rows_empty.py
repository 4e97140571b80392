"""The numba scatter-add row loops (backend._scatter_add_rows / scatter_add_along_axis) hand
zero-size targets to np.add.at: reshape(-1) cannot infer a zero-size axis (the fresh-clone run
of 2026-12-05 failed interpolate's nearest backward on a zero batch). Gradients equal torch's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent


@pytest.mark.parametrize("shape", [(0, 4, 3), (2, 0, 3), (2, 4, 0)])
def test_index_select_and_gather_backward_of_empty(shape):
    x = np.zeros(shape, np.float32)
    for lib in (descent, torch):
        t = lib.tensor(x, requires_grad=True)
        n = shape[2]
        idx = [0, n - 1, 0] if n else []
        y = t.index_select(2, lib.tensor(idx, dtype=lib.int64))
        g = lib.zeros((*shape[:2], 3 if n else 0), dtype=lib.int64) if n else None
        z = y.sum() + (t.gather(2, g).sum() if g is not None else 0)
        z.backward()
        assert tuple(t.grad.shape) == shape


def test_interpolate_nearest_backward_zero_batch():
    for lib in (descent, torch):
        x = lib.zeros((0, 4, 5), requires_grad=True)
        lib.nn.functional.interpolate(x, scale_factor=2, mode="nearest").sum().backward()
        assert tuple(x.grad.shape) == (0, 4, 5)
