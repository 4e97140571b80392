"""descent.kernels._cpu_extra: the fast paths found by benchmarks/op_sweep.py.

Each test checks that the fast path is taken (a spy on the kernel), that it gives PyTorch's
values and gradients, and that it gives the same bits as the NumPy path it replaces
(`kernels.cpu.set_enabled(False)`, what DESCENT_KERNELS=numpy does).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import threadpoolctl
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
def spy(name: str, module: str = "_cpu_extra"):
    """Count the calls of descent.kernels.<module>.<name>."""
    import importlib

    _cpu_extra = importlib.import_module(f"descent.kernels.{module}")
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

    a = np.zeros((5, 80), np.float32)  # 320 values: above backend._ADD_AT_MAX (np.add.at)
    v = np.ones((4, 80), np.float32)
    b = a.copy()
    idx = np.array([-1, 0, -1, 4])
    with spy("scatter_add_rows") as calls:
        backend.scatter_add(a, (idx,), v)
    assert calls
    np.add.at(b, (idx,), v)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(IndexError):  # left to np.add.at, which names the index
        backend.scatter_add(a, np.array([5]), v[:1])


@pytest.mark.parametrize("kernel, k", [("topk_small_rows", 7), ("topk_rows", 70)])
@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_topk_partial_selection_matches_torch_and_full_sort(largest, dtype, kernel, k):
    rng = np.random.default_rng(1)
    a = rng.permutation(6 * 600).reshape(6, 600).astype(dtype)  # distinct: torch's order
    with spy(kernel) as calls:
        v, i = descent.topk(descent.tensor(a), k, dim=1, largest=largest)
    assert calls, "topk sorted whole rows"
    tv, ti = torch.topk(torch.tensor(a), k, dim=1, largest=largest)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    # Ties (and -0.0 against 0.0), another axis: the same indices as the full stable sort.
    b = rng.integers(-3, 3, (5, 600, 2)).astype(dtype)
    if dtype != np.int64:
        b[b == 0] = -0.0
    with spy(kernel) as calls:
        fast = descent.topk(descent.tensor(b), k, dim=1, largest=largest).indices.numpy()
    assert calls
    with kernels(False):
        full = descent.topk(descent.tensor(b), k, dim=1, largest=largest).indices.numpy()
    np.testing.assert_array_equal(fast, full)


def test_topk_gradient_and_nan_rows():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((4, 200)).astype(np.float32)
    fn = lambda lib, x: lib.topk(x, 5, dim=-1)[0]  # noqa: E731
    with spy("topk_small_rows") as calls:
        _, (g,), gy = _run(descent, fn, [a])
    assert calls
    _, (tg,), _ = _run(torch, fn, [a], gy)
    np.testing.assert_array_equal(g, tg)
    a[1, 7] = np.nan  # NaN is the largest value (PyTorch): the full sort's rule applies
    v = descent.topk(descent.tensor(a), 5, dim=-1)
    tv = torch.topk(torch.tensor(a), 5, dim=-1)
    np.testing.assert_array_equal(v.indices.numpy(), tv.indices.numpy())


@pytest.mark.parametrize("numba", [True, False])
@pytest.mark.parametrize("module", ["group", "instance", "group no affine"])
def test_group_norm_op_matches_torch(module, numba):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 8, 5, 4)).astype(np.float32) * 2 + 1
    w = rng.standard_normal(8).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    if module == "group":
        fn = lambda lib, x, w, b: lib.nn.functional.group_norm(x, 4, w, b)  # noqa: E731
    elif module == "group no affine":
        fn = lambda lib, x, w, b: lib.nn.functional.group_norm(x, 2) + w.sum() + b.sum()  # noqa: E731
    else:
        fn = lambda lib, x, w, b: lib.nn.functional.instance_norm(x, weight=w, bias=b)  # noqa: E731
    with kernels(numba), spy("group_norm_backward") as calls:
        y, grads, gy = _run(descent, fn, [x, w, b])
    assert bool(calls) == numba, "group_norm did not run as one op"
    ty, tgrads, _ = _run(torch, fn, [x, w, b], gy)
    np.testing.assert_allclose(y, ty, rtol=1e-5, atol=1e-5)
    for g, tg in zip(grads, tgrads):
        np.testing.assert_allclose(g, tg, rtol=1e-4, atol=1e-4)


def test_group_norm_second_order_matches_torch():
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal((2, 4, 3)), rng.standard_normal(4)]  # float64

    def second(lib):
        x, w = (lib.tensor(a, requires_grad=True) for a in arrays)
        y = lib.nn.functional.group_norm(x, 2, w)
        (g,) = lib.autograd.grad((y**3).sum(), x, create_graph=True)
        (g * g).sum().backward()
        return x.grad.numpy(), w.grad.numpy()

    for a, b in zip(second(descent), second(torch)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "n, c, h, w, k, stride, pad, dil, bias",
    [(2, 6, 9, 11, 3, 1, 1, 1, True), (3, 4, 10, 8, 3, 2, 1, 1, False),
     (2, 5, 12, 12, 3, 1, 2, 2, True), (2, 3, 7, 7, 5, 2, 0, 1, True)],
)  # fmt: skip
def test_depthwise_conv2d_direct_loop_matches_torch(n, c, h, w, k, stride, pad, dil, bias):
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal((n, c, h, w)).astype(np.float32),
              rng.standard_normal((c, 1, k, k)).astype(np.float32),
              rng.standard_normal(c).astype(np.float32)]  # fmt: skip

    def fn(lib, x, wt, b):
        return lib.nn.functional.conv2d(x, wt, b if bias else None, stride, pad, dil, c)

    with spy("depthwise_backward", "_cpu_convdw") as calls:
        y, grads, gy = _run(descent, fn, arrays)
    assert calls, "the depthwise convolution did not use the direct loop"
    ty, tgrads, _ = _run(torch, fn, arrays, gy)
    np.testing.assert_allclose(y, ty, rtol=1e-5, atol=1e-5)
    for g, tg in zip(grads, tgrads):
        if tg is not None:
            np.testing.assert_allclose(g, tg, rtol=1e-4, atol=1e-4)


def test_depthwise_conv1d_and_second_order():
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal((2, 4, 15)), rng.standard_normal((4, 1, 3))]  # float64

    def second(lib):
        x, wt = (lib.tensor(a, requires_grad=True) for a in arrays)
        y = lib.nn.functional.conv1d(x, wt, padding=1, groups=4)
        (g,) = lib.autograd.grad((y**2).sum(), x, create_graph=True)
        (g * g).sum().backward()
        return y.detach().numpy(), x.grad.numpy(), wt.grad.numpy()

    with spy("depthwise_forward", "_cpu_convdw") as calls:
        ours = second(descent)
    assert calls
    for a, b in zip(ours, second(torch)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape, out", [((2, 3, 32, 32), 7), ((2, 3, 10, 13), (3, 5)),
                                        ((3, 7, 9), 4), ((2, 4, 5, 6), (7, 9))])  # fmt: skip
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adaptive_avg_pool2d_window_matrices_match_torch(shape, out, dtype, monkeypatch):
    from descent.nn.functional import _pooling

    calls = []
    real = _pooling._window_matrix
    monkeypatch.setattr(_pooling, "_window_matrix", lambda *a: calls.append(1) or real(*a))
    x = np.random.default_rng(7).standard_normal(shape).astype(dtype)
    fn = lambda lib, x: lib.nn.functional.adaptive_avg_pool2d(x, out)  # noqa: E731
    y, (g,), gy = _run(descent, fn, [x], None)
    assert calls, "adaptive_avg_pool2d took a mean per output cell"
    ty, (tg,), _ = _run(torch, fn, [x], gy)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ty, rtol=tol, atol=tol)
    np.testing.assert_allclose(g, tg, rtol=tol, atol=tol)


ALONG_CASES = {
    "scatter_add dim0": (lambda lib, x, s, i: x.scatter_add(0, i, s), [(40, 8), (300, 8)],
                         (300, 8), 40),
    "scatter_add dim1 3-d": (lambda lib, x, s, i: x.scatter_add(1, i, s),
                             [(3, 20, 4), (3, 50, 4)], (3, 50, 4), 20),
    "gather dim1": (lambda lib, x, i: lib.gather(x, 1, i), [(30, 40)], (30, 90), 40),
    "take_along_dim 3-d": (lambda lib, x, i: lib.take_along_dim(x, i, 2), [(3, 4, 50)],
                           (3, 4, 70), 50),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(ALONG_CASES))
def test_scatter_add_along_matches_torch_and_numpy_path(case):
    fn, shapes, ishape, high = ALONG_CASES[case]
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    arrays.append(rng.integers(0, high, ishape))  # repeats: the sums must accumulate
    with spy("scatter_add_along") as calls:
        y, grads, gy = _run(descent, fn, arrays)
    assert calls, "the along-axis scatter-add kernel was not used"
    ty, tgrads, _ = _run(torch, fn, arrays, gy)
    np.testing.assert_allclose(y, ty, rtol=1e-5, atol=1e-5)
    for g, tg in zip(grads, tgrads):
        if tg is not None:
            np.testing.assert_allclose(g, tg, rtol=1e-5, atol=1e-5)
    with kernels(False):  # np.add.at over the full index: the same order, the same bits
        y0, grads0, _ = _run(descent, fn, arrays, gy)
    np.testing.assert_array_equal(y, y0)
    for g, g0 in zip(grads, grads0):
        if g is not None:
            np.testing.assert_array_equal(g, g0)


def _lstm_pair(layers, bi, bf, bias, dtype=np.float32):
    dm = descent.nn.LSTM(5, 7, num_layers=layers, bidirectional=bi, batch_first=bf, bias=bias)
    tm = torch.nn.LSTM(5, 7, num_layers=layers, bidirectional=bi, batch_first=bf, bias=bias)
    if dtype == np.float64:
        dm, tm = dm.double(), tm.double()
    with torch.no_grad():
        for (n, p), (n2, q) in zip(tm.named_parameters(), dm.named_parameters(), strict=True):
            assert n == n2
            p.copy_(torch.tensor(q.numpy()))
    return dm, tm


@pytest.mark.parametrize("layers, bi, bf, bias, hx", [(1, False, True, True, False),
                                                      (2, False, True, True, True),
                                                      (2, True, False, False, True),
                                                      (1, True, True, True, False)])  # fmt: skip
@pytest.mark.parametrize("numba", [True, False])
def test_lstm_layer_op_matches_torch(layers, bi, bf, bias, hx, numba, monkeypatch):
    from descent.ops import rnn

    calls = []
    real = rnn.LSTMLayer.forward
    monkeypatch.setattr(rnn.LSTMLayer, "forward", lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(10)
    dm, tm = _lstm_pair(layers, bi, bf, bias)
    d = 2 if bi else 1
    x = rng.standard_normal((3, 6, 5) if bf else (6, 3, 5)).astype(np.float32)
    states = [rng.standard_normal((d * layers, 3, 7)).astype(np.float32) for _ in range(2)]
    gy = rng.standard_normal((3, 6, 7 * d) if bf else (6, 3, 7 * d)).astype(np.float32)

    def run(lib, m):
        xt = lib.tensor(x, requires_grad=True)
        st = tuple(lib.tensor(a, requires_grad=True) for a in states) if hx else None
        out, (h, c) = m(xt) if st is None else m(xt, st)
        (out * lib.tensor(gy)).sum().add(h.sum() * 0.5 + (c * c).sum() * 0.3).backward()
        res = [out.detach().numpy(), h.detach().numpy(), c.detach().numpy(), xt.grad.numpy()]
        res += [p.grad.numpy() for p in m.parameters()]
        return res + ([a.grad.numpy() for a in st] if st else [])

    with kernels(numba), spy("lstm_cell_backward") as cell_calls:
        ours = run(descent, dm)
    assert calls, "the LSTM ran per-step ops"
    assert bool(cell_calls) == numba
    for a, b in zip(ours, run(torch, tm), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_lstm_layer_op_second_order_matches_torch():
    rng = np.random.default_rng(11)
    dm, tm = _lstm_pair(1, False, False, True, np.float64)
    x = rng.standard_normal((4, 2, 5))

    def second(lib, m):
        xt = lib.tensor(x, requires_grad=True)
        out = m(xt)[0]
        (g,) = lib.autograd.grad((out**2).sum(), xt, create_graph=True)
        (g * g).sum().backward()
        return [xt.grad.numpy()] + [p.grad.numpy() for p in m.parameters()]

    for a, b in zip(second(descent, dm), second(torch, tm), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


PAD_CASES = [((2, 3, 8, 9), (1, 1, 1, 1), "reflect"), ((2, 3, 8, 9), (3, 2, 0, 4), "reflect"),
             ((1, 2, 3, 4, 5), (1, 1, 2, 2, 1, 0), "reflect"), ((2, 5, 7), (2, 6), "replicate"),
             ((2, 3, 4, 5), (1, 3, 2, 0), "replicate")]  # fmt: skip


@pytest.mark.parametrize("shape, pad, mode", PAD_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pad_reflect_replicate_folded_gradient_matches_torch(shape, pad, mode, dtype,
                                                             monkeypatch):  # fmt: skip
    from descent.ops import shape_copy

    calls = []
    real = shape_copy._fold_pad_grad
    monkeypatch.setattr(shape_copy, "_fold_pad_grad", lambda *a: calls.append(1) or real(*a))
    x = np.random.default_rng(12).standard_normal(shape).astype(dtype)
    fn = lambda lib, x: lib.nn.functional.pad(x, pad, mode=mode)  # noqa: E731
    y, (g,), gy = _run(descent, fn, [x])
    assert calls, "the pad gradient went through the flat index map"
    ty, (tg,), _ = _run(torch, fn, [x], gy)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ty, rtol=tol, atol=tol)
    np.testing.assert_allclose(g, tg, rtol=tol, atol=tol)


def test_pad_reflect_second_order_matches_torch():
    x = np.random.default_rng(13).standard_normal((2, 3, 5, 6))

    def second(lib):
        t = lib.tensor(x, requires_grad=True)
        y = lib.nn.functional.pad(t, (2, 1, 1, 3), mode="reflect")
        (g,) = lib.autograd.grad((y**3).sum(), t, create_graph=True)
        (g * g).sum().backward()
        return t.grad.numpy()

    np.testing.assert_allclose(second(descent), second(torch), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape, dim", [((64, 700), 1), ((5, 6, 7), 0), ((5, 6, 7), 2), ((9,), 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cumsum_scan_kernel_matches_torch_bits(shape, dim, dtype):
    rng = np.random.default_rng(14)
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[0] = -0.0  # PyTorch's scan starts at +0: cumsum(-0.0) is +0.0
    fn = lambda lib, x: lib.cumsum(x, dim)  # noqa: E731
    with spy("cumsum_axis1") as calls:
        y, (g,), gy = _run(descent, fn, [x])
    assert len(calls) == 2, "cumsum's forward and backward did not use the scan kernel"
    ty, (tg,), _ = _run(torch, fn, [x], gy.astype(dtype))
    # Both accumulate in float64 in order and round once: the same bits as PyTorch's CPU scan.
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(ty))
    np.testing.assert_array_equal(g, tg)
    with kernels(False):  # the NumPy path's forward: float64 cumsum rounded once, same bits
        y0, _, _ = _run(descent, fn, [x], gy)
    np.testing.assert_array_equal(y, y0)


def _gru_pair(layers, bi, bf, bias, dtype=np.float32):
    dm = descent.nn.GRU(5, 7, num_layers=layers, bidirectional=bi, batch_first=bf, bias=bias)
    tm = torch.nn.GRU(5, 7, num_layers=layers, bidirectional=bi, batch_first=bf, bias=bias)
    if dtype == np.float64:
        dm, tm = dm.double(), tm.double()
    with torch.no_grad():
        for (n, p), (n2, q) in zip(tm.named_parameters(), dm.named_parameters(), strict=True):
            assert n == n2
            p.copy_(torch.tensor(q.numpy()))
    return dm, tm


@pytest.mark.parametrize("layers, bi, bf, bias, hx", [(1, False, True, True, False),
                                                      (2, False, True, True, True),
                                                      (2, True, False, False, True),
                                                      (1, True, True, True, False)])  # fmt: skip
def test_gru_layer_op_matches_torch(layers, bi, bf, bias, hx, monkeypatch):
    from descent.ops import rnn

    calls = []
    real = rnn.GRULayer.forward
    monkeypatch.setattr(rnn.GRULayer, "forward", lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(15)
    dm, tm = _gru_pair(layers, bi, bf, bias)
    d = 2 if bi else 1
    x = rng.standard_normal((3, 6, 5) if bf else (6, 3, 5)).astype(np.float32)
    h0 = rng.standard_normal((d * layers, 3, 7)).astype(np.float32)
    gy = rng.standard_normal((3, 6, 7 * d) if bf else (6, 3, 7 * d)).astype(np.float32)

    def run(lib, m):
        xt = lib.tensor(x, requires_grad=True)
        ht = lib.tensor(h0, requires_grad=True) if hx else None
        out, h = m(xt) if ht is None else m(xt, ht)
        (out * lib.tensor(gy)).sum().add((h * h).sum() * 0.3).backward()
        res = [out.detach().numpy(), h.detach().numpy(), xt.grad.numpy()]
        res += [p.grad.numpy() for p in m.parameters()]
        return res + ([ht.grad.numpy()] if hx else [])

    ours = run(descent, dm)
    assert calls, "the GRU ran per-step ops"
    for a, b in zip(ours, run(torch, tm), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_gru_layer_op_second_order_matches_torch():
    rng = np.random.default_rng(16)
    dm, tm = _gru_pair(1, True, False, True, np.float64)
    x = rng.standard_normal((4, 2, 5))

    def second(lib, m):
        xt = lib.tensor(x, requires_grad=True)
        out = m(xt)[0]
        (g,) = lib.autograd.grad((out**2).sum(), xt, create_graph=True)
        (g * g).sum().backward()
        return [xt.grad.numpy()] + [p.grad.numpy() for p in m.parameters()]

    for a, b in zip(second(descent, dm), second(torch, tm), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("stride, pad, dil", [(1, 1, 1), (2, 1, 1), (1, 2, 2), ((2, 1), 0, (1, 2))])
def test_conv2d_col2im_kernel_matches_torch_and_numpy_path(stride, pad, dil):
    rng = np.random.default_rng(18)
    arrays = [rng.standard_normal((2, 3, 17, 36)).astype(np.float32),  # wide: Wo >= 16 path
              rng.standard_normal((4, 3, 3, 3)).astype(np.float32)]  # fmt: skip
    fn = lambda lib, x, w: lib.nn.functional.conv2d(x, w, None, stride, pad, dil)  # noqa: E731
    # the image-major col2im loop is the one-BLAS-thread path (the suite's workers run one
    # thread each; a one-process run has two, where the batch splits): set it here
    with spy("col2im_2d") as calls, threadpoolctl.threadpool_limits(1, user_api="blas"):
        y, grads, gy = _run(descent, fn, arrays)
    assert calls, "conv2d's input gradient did not use the col2im loop"
    ty, tgrads, _ = _run(torch, fn, arrays, gy)
    np.testing.assert_allclose(y, ty, rtol=1e-4, atol=1e-4)
    for g, tg in zip(grads, tgrads, strict=True):
        np.testing.assert_allclose(g, tg, rtol=1e-4, atol=1e-4)
    with kernels(False):  # the slab adds: the same order of additions, the same bits
        _, grads0, _ = _run(descent, fn, arrays, gy)
    np.testing.assert_array_equal(grads[0], grads0[0])


@pytest.mark.parametrize("stride, pad, dil", [(1, 1, 1), (2, 1, 1), (1, 2, 2)])
def test_conv2d_col2im_batch_last_kernel_matches_torch(stride, pad, dil):
    rng = np.random.default_rng(19)
    arrays = [rng.standard_normal((5, 3, 9, 10)).astype(np.float32),  # small: Wo < 16 path
              rng.standard_normal((4, 3, 3, 3)).astype(np.float32)]  # fmt: skip
    fn = lambda lib, x, w: lib.nn.functional.conv2d(x, w, None, stride, pad, dil)  # noqa: E731
    with spy("col2im_nlast_2d") as calls:
        y, grads, gy = _run(descent, fn, arrays)
    assert calls, "conv2d's batch-last input gradient did not use the col2im loop"
    ty, tgrads, _ = _run(torch, fn, arrays, gy)
    np.testing.assert_allclose(y, ty, rtol=1e-4, atol=1e-4)
    for g, tg in zip(grads, tgrads, strict=True):
        np.testing.assert_allclose(g, tg, rtol=1e-4, atol=1e-4)
    with kernels(False):  # the slab adds: the same order of additions, the same bits
        _, grads0, _ = _run(descent, fn, arrays, gy)
    np.testing.assert_array_equal(grads[0], grads0[0])
