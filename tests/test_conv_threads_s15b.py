"""Convolutions at two BLAS threads (session 15): ConvNd splits the batch into two halves run
at once, one on a worker thread, each with a one-thread BLAS (ops/conv_winograd.py's _parts,
_run and _OneBlasThread), on Winograd's path and on im2col's. Against PyTorch (float32 and
float64), float64 finite differences, bitwise repeatable, the BLAS's threads restored."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as TF

import descent as ds
import descent.nn.functional as F
from conv_compare import compare as _compare
from descent.kernels import cpu
from descent.ops import conv_nd, conv_winograd
from specs.nn import gradcheck64

pytestmark = pytest.mark.skipif(
    not cpu.available() or conv_winograd._blas() is None, reason="numba or threadpoolctl missing"
)


@pytest.fixture(autouse=True)
def two_blas_threads(monkeypatch):
    """Two BLAS threads, and the split even where this process has one core (the split's
    results do not depend on the cores); records each split's parts."""
    from threadpoolctl import threadpool_limits

    monkeypatch.setattr(conv_winograd, "_cores", lambda: 2)
    splits = []
    real = conv_winograd._run
    monkeypatch.setattr(conv_winograd, "_run", lambda parts, fn: splits.append(parts) or real(
        parts, fn))  # fmt: skip
    with threadpool_limits(limits=2, user_api="blas"):
        if conv_nd._blas_threads() != 2:
            pytest.skip("the BLAS does not run two threads here")
        yield splits
        assert conv_nd._blas_threads() == 2  # restored after every split


CASES = [  # (x shape, w shape, conv2d keywords): Winograd, then im2col's paths
    ((3, 16, 7, 5), (16, 16, 3, 3), dict(padding=1)),  # Winograd, odd batch and sizes
    ((2, 16, 6, 6), (24, 16, 3, 3), dict(padding=0)),  # Winograd, one image per part
    ((3, 3, 16, 16), (16, 3, 3, 3), dict(padding=1)),  # 3 channels: im2col, stride 1
    ((3, 16, 33, 33), (16, 16, 3, 3), dict(stride=2, padding=1)),  # stride 2: col2im
    ((3, 16, 17, 17), (16, 16, 3, 3), dict(padding=2, dilation=2)),  # dilated, stride 1
]


@pytest.mark.parametrize("xs, ws, kw", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_matches_torch(xs, ws, kw, dtype, two_blas_threads):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(xs), rng.standard_normal(ws) * 0.2,
              rng.standard_normal(ws[0])]  # fmt: skip
    _compare(lambda x, w, b: F.conv2d(x, w, b, **kw), lambda x, w, b: TF.conv2d(x, w, b, **kw),
             arrays, dtype=dtype)  # fmt: skip
    assert two_blas_threads and all(len(p) == 2 for p in two_blas_threads)


@pytest.mark.parametrize("need", [[True, False], [False, True]])
@pytest.mark.parametrize("case", [0, 3, 4])
def test_split_one_gradient(case, need, two_blas_threads):
    """Each gradient alone (the stem's x needs none; a frozen weight)."""
    xs, ws, kw = CASES[case]
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(xs), rng.standard_normal(ws) * 0.2]
    _compare(lambda x, w: F.conv2d(x, w, None, **kw), lambda x, w: TF.conv2d(x, w, None, **kw),
             arrays, need=need)  # fmt: skip
    assert two_blas_threads


@pytest.mark.parametrize("case", [0])
def test_split_finite_differences(case):
    xs, ws, kw = CASES[case]
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((2, *xs[1:])), rng.standard_normal(ws) * 0.2]
    gradcheck64(lambda x, w: F.conv2d(x, w, None, **kw), arrays)


def test_split_repeatable(two_blas_threads):
    """The same bits on every call (the halves' weight gradients added in one order)."""
    rng = np.random.default_rng(4)
    x0 = rng.standard_normal((5, 16, 8, 8)).astype(np.float32)
    w0 = (rng.standard_normal((16, 16, 3, 3)) * 0.2).astype(np.float32)

    def run():
        x = ds.tensor(x0, requires_grad=True)
        w = ds.tensor(w0, requires_grad=True)
        y = F.conv2d(x, w, None, padding=1)
        (y * y).sum().backward()
        return y.numpy(), x.grad.numpy(), w.grad.numpy()

    first = run()
    for _ in range(3):
        for a, b in zip(first, run()):
            assert np.array_equal(a, b)
    assert two_blas_threads


def test_blas_controller_is_numpys(monkeypatch):
    """With a second OpenBLAS loaded (SciPy's wheel brings libscipy_openblas beside NumPy's),
    the controller set to one thread is NumPy's: the one under NumPy's directory, whatever
    order threadpoolctl lists them in. The other library is a stand-in listed first."""
    import os

    import threadpoolctl

    real = [c for c in threadpoolctl.ThreadpoolController().lib_controllers
            if c.user_api == "blas"]  # fmt: skip
    here = os.path.dirname(np.__file__)
    ours = [c for c in real if c.filepath.startswith((here + ".libs", here + os.sep))]
    if not ours:
        pytest.skip("NumPy's BLAS is not a wheel's own library here")

    class Other:  # a second OpenBLAS elsewhere (SciPy's), listed before NumPy's
        user_api = "blas"
        filepath = os.path.join(os.path.dirname(here), "scipy.libs", "libscipy_openblas.so")

    class Controller:
        lib_controllers = [Other()] + real

    monkeypatch.setattr(threadpoolctl, "ThreadpoolController", Controller)
    monkeypatch.setattr(conv_winograd, "_BLAS", [])
    lib = conv_winograd._blas()
    assert lib is ours[0]
    before = lib.get_num_threads()
    with conv_winograd._OneBlasThread([(0, 1), (1, 2)]):
        assert conv_winograd._blas().get_num_threads() == 1
    assert lib.get_num_threads() == before
