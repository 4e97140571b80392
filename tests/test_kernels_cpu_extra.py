"""descent.kernels._cpu_extra: the fast paths found by benchmarks/op_sweep.py.

Each test checks that the fast path is taken (a spy on the kernel), that it gives PyTorch's
values and gradients, and that it gives the same bits as the NumPy path it replaces
(`kernels.cpu.set_enabled(False)`, what DESCENT_KERNELS=numpy does).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

import descent
from descent.kernels import cpu

pytestmark = pytest.mark.skipif(not cpu.available(), reason="numba missing")


@contextlib.contextmanager
def kernels(flag: bool):
    previous = cpu.set_enabled(flag)
    try:
        yield
    finally:
        cpu.set_enabled(previous)


@contextlib.contextmanager
def spy(name: str):
    """Count the calls of _cpu_extra.<name>."""
    from descent.kernels import _cpu_extra

    real = getattr(_cpu_extra, name)
    calls = []

    def wrapper(*args):
        calls.append(1)
        return real(*args)

    setattr(_cpu_extra, name, wrapper)
    try:
        yield calls
    finally:
        setattr(_cpu_extra, name, real)


def _run(lib, fn, arrays, gy=None):
    """fn(lib, *leaves) and the leaves' gradients for upstream gy (float arrays only)."""
    leaves = [lib.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    out = fn(lib, *leaves)
    if isinstance(out, tuple):
        out = out[0]
    if gy is None:
        gy = np.random.default_rng(9).standard_normal(tuple(out.shape)).astype(np.float32)
    out.backward(lib.tensor(gy))
    grads = [t.grad.numpy() if t.grad is not None else None for t in leaves]
    return out.detach().numpy(), grads, gy


SCATTER_CASES = {
    "index_select": (lambda lib, w, i: lib.index_select(w, 0, i), [(50, 16)], (300,), 50),
    "index_select dim1": (lambda lib, w, i: lib.index_select(w, 1, i), [(4, 50, 3)], (80,), 50),
    "getitem": (lambda lib, w, i: w[i], [(50, 16)], (300,), 50),
    "index_add": (lambda lib, x, s, i: x.index_add(0, i, s), [(40, 8), (300, 8)], (300,), 40),
    "embedding padding_idx": (
        lambda lib, w, i: lib.nn.functional.embedding(i, w, padding_idx=3),
        [(2000, 64)], (40, 60), 2000),  # 2000 x 2400 cells: past the one-hot product's cap
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(SCATTER_CASES))
def test_scatter_add_rows_matches_torch_and_numpy_path(case):
    fn, shapes, ishape, high = SCATTER_CASES[case]
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    arrays.append(rng.integers(0, high, ishape))  # repeats: the gradients must accumulate
    with spy("scatter_add_rows") as calls:
        y, grads, gy = _run(descent, fn, arrays)
    assert calls, "the row scatter-add kernel was not used"
    ty, tgrads, _ = _run(torch, fn, arrays, gy)
    np.testing.assert_allclose(y, ty, rtol=1e-5, atol=1e-5)
    for g, tg in zip(grads, tgrads):
        if tg is not None:
            np.testing.assert_allclose(g, tg, rtol=1e-5, atol=1e-5)
    with kernels(False):  # np.add.at: the same order of additions, so the same bits
        y0, grads0, _ = _run(descent, fn, arrays, gy)
    np.testing.assert_array_equal(y, y0)
    for g, g0 in zip(grads, grads0):
        if g is not None:
            np.testing.assert_array_equal(g, g0)


def test_scatter_add_rows_negative_and_out_of_range_indices():
    from descent import backend

    a = np.zeros((5, 3), np.float32)
    v = np.ones((4, 3), np.float32)
    b = a.copy()
    idx = np.array([-1, 0, -1, 4])
    with spy("scatter_add_rows") as calls:
        backend.scatter_add(a, (idx,), v)
    assert calls
    np.add.at(b, (idx,), v)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(IndexError):  # left to np.add.at, which names the index
        backend.scatter_add(a, np.array([5]), v[:1])

