"""conv3d and the transposed convolutions as one op (ops/conv_nd.py, kernels/_cpu_convnd.py):
values and gradients against torch in float32 and float64, the op taken (and not with the
numba kernels off, where the composite form runs), double backward through the composite
form, and float64 finite differences."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

import descent
from descent.explain.gradcheck import gradcheck
from descent.kernels import cpu

pytestmark = pytest.mark.skipif(not cpu.available(), reason="numba missing")


@contextlib.contextmanager
def kernels(flag: bool):
    previous = cpu.set_enabled(flag)
    try:
        yield
    finally:
        cpu.set_enabled(previous)


# (function, input shape, weight shape, bias?, keyword arguments): strides, padding,
# dilation, groups, output_padding, unbatched inputs
CASES = [
    ("conv3d", (2, 4, 5, 6, 7), (6, 4, 3, 2, 3), True,
     dict(stride=(1, 2, 1), padding=(1, 0, 2), dilation=(2, 1, 1))),
    ("conv3d", (2, 4, 5, 6, 5), (6, 2, 3, 2, 3), False, dict(stride=2, padding=1, groups=2)),
    ("conv3d", (4, 3, 4, 5), (2, 4, 2, 3, 2), True, dict(padding="same")),
    # stride 1: the input gradient (and the transposed forward) as a flipped-kernel convolution,
    # padding d (k - 1) - p negative here in two dimensions
    ("conv3d", (2, 4, 4, 5, 3), (6, 2, 2, 2, 3), True,
     dict(padding=(2, 1, 3), dilation=(1, 2, 1), groups=2)),
    ("conv_transpose1d", (2, 4, 7), (4, 3, 3), True, dict(padding=3, dilation=2, groups=2)),
    ("conv_transpose1d", (2, 4, 9), (4, 3, 3), True,
     dict(stride=2, padding=1, output_padding=1)),
    ("conv_transpose2d", (2, 4, 5, 6), (4, 3, 3, 4), True,
     dict(stride=(2, 3), padding=(1, 2), output_padding=(1, 0), groups=2, dilation=(1, 2))),
    ("conv_transpose2d", (2, 4, 5, 6), (4, 3, 3, 3), False,
     dict(output_padding=1, dilation=2)),  # output_padding >= stride: windows past the input
    ("conv_transpose3d", (2, 4, 3, 4, 5), (4, 2, 2, 3, 2), True, dict(stride=2, padding=1)),
    ("conv_transpose3d", (4, 3, 4, 3), (4, 1, 2, 2, 3), False,
     dict(stride=(1, 2, 2), groups=2)),
]  # fmt: skip
IDS = [f"{c[0]}-{i}" for i, c in enumerate(CASES)]


def _run(lib, case, dtype, gy=None):
    name, xs, ws, has_b, kw = case
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(xs), rng.standard_normal(ws)]
    if has_b:
        o = ws[0] if name == "conv3d" else ws[1] * kw.get("groups", 1)
        arrays.append(rng.standard_normal(o))
    leaves = [lib.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    y = getattr(lib.nn.functional, name)(*leaves[:2], leaves[2] if has_b else None, **kw)
    if gy is None:
        gy = rng.standard_normal(tuple(y.shape)).astype(dtype)
    y.backward(lib.tensor(gy))
    return y, [y.detach().numpy()] + [t.grad.numpy() for t in leaves], gy


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_and_grads_match_torch(case, dtype):
    import warnings

    y, got, gy = _run(descent, case, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's padding='same' with an even kernel
        _, want, _ = _run(torch, case, dtype, gy)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "case", [CASES[1], CASES[6], CASES[8], CASES[3]], ids=["c3", "t2", "t3", "c3s1"]
)
def test_row_blocks_give_the_same_results(case, monkeypatch):
    """Patches made a few rows at a time (3 here: blocks that end inside an image and
    inside a row of windows) equal one block."""
    from descent.ops import conv_nd

    monkeypatch.setattr(conv_nd, "BLOCK_ROWS", 1 << 30)
    _, whole, gy = _run(descent, case, np.float64)
    monkeypatch.setattr(conv_nd, "BLOCK_ROWS", 3)
    monkeypatch.setattr(conv_nd, "BLOCK_ROWS_THREADED", 3)  # (a multi-threaded BLAS's)
    monkeypatch.setattr(conv_nd, "BLOCK_BYTES", 1)
    _, blocked, _ = _run(descent, case, np.float64, gy)
    for a, b in zip(whole, blocked, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("numba", [True, False])
@pytest.mark.parametrize("case", [CASES[0], CASES[6]], ids=["conv3d", "conv_transpose2d"])
def test_one_op_taken_with_kernels_on(case, numba):
    with kernels(numba):
        y, got, gy = _run(descent, case, np.float64)
    want = "ConvNd" if case[0] == "conv3d" else "ConvTransposeNd"  # (batched cases)
    assert (type(y._node).__name__ == want) == numba, type(y._node).__name__
    if not numba:  # the composite form gives the same values
        _, fast, _ = _run(descent, case, np.float64, gy)
        for a, b in zip(got, fast, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["conv3d", "conv_transpose2d"])
def test_double_backward_matches_torch(name):
    rng = np.random.default_rng(8)
    if name == "conv3d":
        arrays = [rng.standard_normal((2, 2, 4, 3, 4)), rng.standard_normal((3, 2, 2, 2, 2))]
        kw = dict(stride=(1, 2, 1), padding=1)
    else:
        arrays = [rng.standard_normal((2, 2, 3, 4)), rng.standard_normal((2, 3, 3, 2))]
        kw = dict(stride=2, padding=1, output_padding=1)

    def second(lib):
        x, w = (lib.tensor(a, requires_grad=True) for a in arrays)
        y = getattr(lib.nn.functional, name)(x, w, None, **kw)
        gx, gw = lib.autograd.grad((y**3).sum(), (x, w), create_graph=True)
        ((gx * gx).sum() + (gw**2).sum()).backward()
        return x.grad.numpy(), w.grad.numpy()

    for a, b in zip(second(descent), second(torch), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[8]],
                         ids=["conv3d", "conv3d-s1", "conv_transpose3d"])
def test_float64_finite_differences(case):
    name, xs, ws, has_b, kw = case
    rng = np.random.default_rng(9)
    arrays = [rng.standard_normal(xs), rng.standard_normal(ws)]
    if has_b:
        o = ws[0] if name == "conv3d" else ws[1] * kw.get("groups", 1)
        arrays.append(rng.standard_normal(o))
    leaves = [descent.tensor(a, requires_grad=True) for a in arrays]

    def f(*ts):
        return getattr(descent.nn.functional, name)(ts[0], ts[1], ts[2] if has_b else None, **kw)

    assert gradcheck(f, leaves, raise_on_failure=True)
