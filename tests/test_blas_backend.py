"""descent's opt-in MKL backend for its matrix products (descent/blas.py, the `mkl` extra):
`descent.blas.matmul` against NumPy (OpenBLAS) in float64 and PyTorch for every layout, batched,
empty and non-contiguous operands and `out=`; the switch (set_blas / blas / DESCENT_BLAS), its
error when MKL is missing, OpenBLAS held at one thread beside MKL and restored after; and
descent.compile's replay giving eager's bits on the GPT step under MKL.

The `mkl` wheel is in the test extra (x86-64 only: Intel ships no other), so these run in
`make test`; only a platform without the wheel skips them."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from descent import blas
from test_compile_gpt_s14 import _assert_bitwise
from test_compile_gpt_s14 import _gpt_train as _train_s14

pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"),
    reason="Intel's mkl wheel exists for x86-64 only",
)

_TOL = {np.float32: dict(rtol=1e-5, atol=1e-4), np.float64: dict(rtol=1e-12, atol=1e-11)}


@pytest.fixture
def mkl():
    """MKL on for the test (OpenBLAS again after it), the calls that reached MKL counted."""
    assert blas.blas() == "openblas"
    blas.set_blas("mkl")
    calls = []
    real = blas._caller
    callers = blas._MKL["callers"]
    reals = dict(callers)  # the compiled callers (kept across tests: ~0.4 s each to compile)

    def counting(dt, ndim):
        key = (dt.char, ndim)
        if key not in reals:
            callers.pop(key, None)
            reals[key] = real(dt, ndim)
        fn = reals[key]

        def call(a, b, c):
            r = fn(a, b, c)
            calls.append((a.shape, b.shape, r))
            return r

        callers[key] = call  # matmul's own lookup finds it next time
        return call

    callers.clear()
    blas._caller = counting
    try:
        yield calls
    finally:
        blas._caller = real
        callers.clear()
        callers.update(reals)
        blas.set_blas("openblas")


def _operand(rng, shape, dt, transposed, batch=()):
    """An array of batch + shape whose last two axes are stored transposed if asked."""
    if transposed:
        x = rng.standard_normal(batch + shape[::-1]).astype(dt)
        return x.swapaxes(-1, -2)
    return rng.standard_normal(batch + shape).astype(dt)


def _check(a, b, got, dt):
    """got against NumPy in float64 and against PyTorch in the operands' dtype."""
    import torch

    ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert got.shape == ref.shape and got.dtype == dt
    np.testing.assert_allclose(got, ref, **_TOL[dt])
    t = torch.matmul(
        torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b))
    )
    np.testing.assert_allclose(got, t.numpy(), **_TOL[dt])


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("mkn", [(5, 7, 3), (64, 32, 96), (1, 9, 1), (1, 1, 1), (33, 1, 17)])
def test_2d_products_every_layout_on_mkl(mkl, dt, ta, tb, mkn):
    m, k, n = mkn
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a = _operand(rng, (m, k), dt, ta)
    b = _operand(rng, (k, n), dt, tb)
    _check(a, b, blas.matmul(a, b), dt)
    assert mkl and all(r == 0 for *_, r in mkl)  # one MKL call, no fallback


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("batch", [(3,), (2, 4), (1, 5)])
def test_batched_products_are_one_mkl_call(mkl, dt, ta, tb, batch):
    rng = np.random.default_rng(len(batch))
    a = _operand(rng, (16, 8), dt, ta, batch)
    b = _operand(rng, (8, 12), dt, tb, batch)
    _check(a, b, blas.matmul(a, b), dt)
    assert len(mkl) == 1 and mkl[0][2] == 0


def test_head_split_layouts_and_strided_out(mkl):
    """Attention's (B, T, nh, hs) -> (B, nh, T, hs) views: batch axes that do not collapse to
    one stride (one call per leading index), and an out laid out as (B, T, nh, hs)."""
    rng = np.random.default_rng(3)
    q = rng.standard_normal((2, 6, 3, 4)).astype(np.float32).transpose(0, 2, 1, 3)
    k = rng.standard_normal((2, 6, 3, 4)).astype(np.float32).transpose(0, 2, 1, 3)
    s = blas.matmul(q, k.swapaxes(-1, -2))
    _check(q, k.swapaxes(-1, -2), s, np.float32)
    buf = np.empty((2, 6, 3, 4), np.float32)
    out = buf.transpose(0, 2, 1, 3)
    r = blas.matmul(s, q, out=out)
    assert r is out
    _check(s, q, out, np.float32)
    # the strided out gets the fresh product's bits
    np.testing.assert_array_equal(out.view(np.int32), blas.matmul(s, q).view(np.int32))
    # each product one MKL call (grouped over the heads' addresses), no fallback
    assert len(mkl) == 3 and all(r == 0 for *_, r in mkl)


def test_compiled_replays_split_their_loops_beside_mkl(monkeypatch):
    """At two MKL threads on two cores descent.compile's one-thread plan still runs its long
    loops in two halves (`threads.split`); its halves plan (attention's products in two halves
    on OpenBLAS) stays off: OpenBLAS is held at one thread."""
    from descent.compiler import threads

    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setitem(threads.SPLIT, "on", True)
    monkeypatch.setattr(threads, "_two_blas_threads", lambda: False)  # OpenBLAS held at one
    monkeypatch.setattr(blas, "mkl_threads", lambda: 2)
    assert threads.split_allowed()
    monkeypatch.setattr(blas, "mkl_threads", lambda: 1)
    assert not threads.split_allowed()


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_empty_and_zero_k(mkl, dt):
    for sa, sb in [((0, 3), (3, 4)), ((2, 3), (3, 0)), ((2, 0), (0, 4)), ((5, 0, 3), (5, 3, 2)),
                   ((3, 2, 0), (3, 0, 4))]:  # fmt: skip
        a, b = np.ones(sa, dt), np.ones(sb, dt)
        got = blas.matmul(a, b)
        ref = np.matmul(a, b)
        assert got.shape == ref.shape and got.dtype == ref.dtype
        np.testing.assert_array_equal(got, ref)  # zeros where K is 0
        out = np.full(ref.shape, 7, dt)
        assert blas.matmul(a, b, out=out) is out
        np.testing.assert_array_equal(out, ref)


def test_out_contiguous_transposed_and_overlapping(mkl):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((8, 8)).astype(np.float32)
    b = rng.standard_normal((8, 8)).astype(np.float32)
    ref = blas.matmul(a, b)
    out = np.empty((8, 8), np.float32)
    assert blas.matmul(a, b, out=out) is out
    np.testing.assert_array_equal(out, ref)
    out_t = np.empty((8, 8), np.float32).T  # columns of unit stride: computed aside, copied
    assert blas.matmul(a, b, out=out_t) is out_t
    np.testing.assert_array_equal(out_t, ref)
    a2 = a.copy()
    assert blas.matmul(a2, b, out=a2) is a2  # out is an operand: NumPy's meaning (no aliasing)
    np.testing.assert_array_equal(a2, ref)
    with pytest.raises(ValueError):
        blas.matmul(a, b, out=np.empty((8, 7), np.float32))  # NumPy's error for a wrong out


def test_fallbacks_give_numpys_results(mkl):
    """No unit stride, broadcasting, 1-D, mixed dtypes, integers, float16: NumPy's product."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((6, 10)).astype(np.float32)
    b = rng.standard_normal((10, 12)).astype(np.float32)
    cases = [
        (a[:, ::2], b[::2, ::2]),  # neither axis unit-stride
        (rng.standard_normal((3, 6, 10)).astype(np.float32), b),  # broadcast batch
        (a, b[:, 0]),  # matrix @ vector
        (a, b.astype(np.float64)),  # mixed dtypes
        (a.astype(np.int64), b.astype(np.int64)),
        (a.astype(np.float16), b.astype(np.float16)),
    ]
    for x, y in cases:
        got = blas.matmul(x, y)
        ref = np.matmul(x, y)
        assert got.dtype == ref.dtype and got.shape == ref.shape
        np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64), rtol=1e-3,
                                   atol=1e-3)  # fmt: skip
    np.testing.assert_array_equal(blas.matmul(a[:, ::2], b[::2, ::2]), a[:, ::2] @ b[::2, ::2])


def test_switch_threads_and_back():
    import threadpoolctl

    import descent

    here = os.path.dirname(np.__file__)  # NumPy's OpenBLAS: numpy.libs/ (wheels) or numpy/

    def counts():
        info = threadpoolctl.threadpool_info()
        out = {i["internal_api"]: i["num_threads"] for i in info if i["internal_api"] == "mkl"}
        ours = [i for i in info if i["filepath"].startswith((here + ".libs", here + os.sep))]
        out["openblas"] = ours[0]["num_threads"]
        return out

    import numba

    from descent import runtime

    before = counts()["openblas"]
    # set_num_threads below also sets numba's threads and descent's recorded count: both are
    # put back at the end, so that later tests in this process see what they saw before
    saved = runtime._state["threads"], numba.get_num_threads()
    descent.backends.set_blas("mkl")
    try:
        assert descent.backends.blas() == "mkl"
        assert counts()["openblas"] == 1  # held while MKL does the products
        assert blas.mkl_threads() == descent.get_num_threads()
        descent.set_num_threads(1)
        assert blas.mkl_threads() == 1 and counts()["openblas"] == 1
        descent.set_num_threads(before)
        assert blas.mkl_threads() == before and counts()["openblas"] == 1
        a = np.ones((4, 4), np.float32)
        np.testing.assert_array_equal(blas.matmul(a, a), a @ a)
    finally:
        descent.backends.set_blas("openblas")
        runtime._state["threads"] = saved[0]
        numba.set_num_threads(saved[1])
    assert descent.backends.blas() == "openblas" and blas._ACTIVE[0] is None
    assert counts()["openblas"] == before  # restored
    descent.backends.set_blas("mkl")
    descent.backends.set_blas("openblas")
    assert counts()["openblas"] == before
    with pytest.raises(ValueError, match="'openblas', 'mkl' or 'auto'"):
        descent.backends.set_blas("accelerate")


def test_auto_follows_the_cpu(monkeypatch):
    monkeypatch.setattr(blas, "_intel_avx512", lambda: False)
    blas.set_blas("auto")
    assert blas.blas() == "openblas"
    monkeypatch.setattr(blas, "_intel_avx512", lambda: True)
    try:
        blas.set_blas("auto")
        assert blas.blas() == "mkl"
    finally:
        blas.set_blas("openblas")


def test_missing_mkl_names_the_fix(monkeypatch):
    monkeypatch.setattr(blas, "_MKL", {})
    monkeypatch.setattr(blas, "_candidates", lambda: [])
    assert not blas.is_mkl_available()
    with pytest.raises(blas.BlasError, match=r"pip install 'descent\[mkl\]'"):
        blas.set_blas("mkl")
    assert blas.blas() == "openblas" and blas._ACTIVE[0] is None
    blas.set_blas("auto")  # no MKL: OpenBLAS, no error
    assert blas.blas() == "openblas"


def _run(code: str, **env):
    full = {k: v for k, v in os.environ.items() if not k.startswith("DESCENT_")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full,
                          timeout=300)  # fmt: skip


def test_setting_at_import_and_numba_layer():
    """DESCENT_BLAS=mkl switches at import; numba's threading layer stays `omp` beside MKL's
    GNU layer (the tbb wheel must not move it); a bad value stops the import."""
    code = (
        "import numba, numpy as np, descent\n"
        "assert descent.blas._ACTIVE[0] is not None  # on at import, before any product\n"
        "@numba.njit(parallel=True)\n"
        "def f(x):\n"
        "    s = 0.0\n"
        "    for i in numba.prange(x.size):\n"
        "        s += x[i]\n"
        "    return s\n"
        "f(np.ones(100))\n"
        "a = np.ones((64, 64), np.float32)\n"
        "from descent import blas\n"
        "blas.matmul(a, a)\n"
        "print(descent.backends.blas(), numba.threading_layer())\n"
    )
    r = _run(code, DESCENT_BLAS="mkl")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["mkl", "omp"]
    r = _run("import descent; print(descent.backends.blas())")
    assert r.returncode == 0 and r.stdout.split() == ["openblas"], r.stderr
    r = _run("import descent", DESCENT_BLAS="fast")
    assert r.returncode != 0 and "DESCENT_BLAS='fast'" in r.stderr


def test_linear_and_attention_eager_run_on_mkl(mkl):
    """nn.Linear and scaled_dot_product_attention, forward and backward, make their products
    through MKL (counted), with PyTorch's results."""
    import torch

    import descent
    import descent.nn.functional as F

    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    w = rng.standard_normal((6, 8)).astype(np.float32)
    q, k, v = (rng.standard_normal((2, 3, 5, 4)).astype(np.float32) for _ in range(3))
    dx, dw = descent.tensor(x, requires_grad=True), descent.tensor(w, requires_grad=True)
    y = F.linear(dx, dw)
    dq, dk, dv = (descent.tensor(a, requires_grad=True) for a in (q, k, v))
    o = F.scaled_dot_product_attention(dq, dk, dv, is_causal=True)
    (y.sum() + o.sum()).backward()
    assert len(mkl) >= 3 + 5  # Linear's three products, attention's five
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    ty = torch.nn.functional.linear(tx, tw)
    to = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
    (ty.sum() + to.sum()).backward()
    for d, t in [(y, ty), (o, to), (dx.grad, tx.grad), (dw.grad, tw.grad), (dq.grad, tq.grad),
                 (dk.grad, tk.grad), (dv.grad, tv.grad)]:  # fmt: skip
        np.testing.assert_allclose(d.numpy(), t.detach().numpy(), rtol=1e-4, atol=1e-5)


def _gpt_train(compiled: bool, steps: int = 4, dtype=None):
    """test_compile_gpt_s14's GPT step (2 layers, width 32, AdamW + clip), 4 steps."""
    return _train_s14(compiled, steps, dtype=dtype)


@pytest.mark.parametrize("dtype", [None, "float64"])
def test_gpt_step_compiled_is_eager_bitwise_on_mkl(mkl, dtype):
    import descent

    dt = None if dtype is None else getattr(descent, dtype)
    eager, _ = _gpt_train(False, dtype=dt)
    n_eager = len(mkl)
    compiled, f = _gpt_train(True, dtype=dt)
    _assert_bitwise(eager, compiled)
    assert n_eager > 0 and len(mkl) >= 2 * n_eager  # the replays' products went to MKL too
    assert len(f.programs()) == 1


def test_switching_blas_records_a_compiled_step_again():
    """A compiled step recorded on OpenBLAS records anew on MKL (its layout probes are the
    recording BLAS's) and back; each gives its own BLAS's eager bits."""
    eager_ob, _ = _gpt_train(False, steps=2)
    import descent
    from descent.models import GPT, GPTConfig

    cfg = GPTConfig(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_embd=32, dropout=0.0)
    descent.manual_seed(1)
    m = GPT(cfg)

    def fwd(x):
        return m(x)[0]

    f = descent.compile(fwd)
    x = descent.tensor(np.random.default_rng(2).integers(0, 40, (4, 16)))
    with descent.no_grad():
        ref_ob = [fwd(x)._data.copy() for _ in range(3)]
        got_ob = [f(x)._data.copy() for _ in range(3)]
        descent.backends.set_blas("mkl")
        try:
            ref_mkl = [fwd(x)._data.copy() for _ in range(3)]
            got_mkl = [f(x)._data.copy() for _ in range(3)]
        finally:
            descent.backends.set_blas("openblas")
        got_ob2 = [f(x)._data.copy() for _ in range(2)]
    _assert_bitwise(ref_ob, got_ob)
    _assert_bitwise(ref_mkl, got_mkl)
    _assert_bitwise(ref_ob[:2], got_ob2)
    assert len(f.programs()) == 2
    assert eager_ob  # the OpenBLAS run before the switch trained as usual


# --------------------------------------------------------------------------- convolutions (s29)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize(
    "sa, sb, ta",
    [
        ((1, 6, 25), (5, 1, 25, 40), False),  # a convolution's weight against its images
        ((3, 4, 9), (2, 3, 9, 7), True),  # three groups: the grouped call
        ((6, 25), (5, 25, 40), False),  # a matrix against a stack
        ((5, 6, 25), (25, 40), True),  # a stack against a matrix
        ((2, 1, 4, 9), (1, 3, 9, 7), False),  # both broadcast
    ],
)
def test_broadcast_batches_are_one_mkl_call(mkl, dt, sa, sb, ta):
    """Batches that broadcast go to MKL too (the broadcast axis read at stride 0), in one call,
    with NumPy's shapes and PyTorch's values, `out=` included."""
    rng = np.random.default_rng(5)
    a = _operand(rng, sa[-2:], dt, ta, sa[:-2])
    b = _operand(rng, sb[-2:], dt, False, sb[:-2])
    got = blas.matmul(a, b)
    _check(a, b, got, dt)
    out = np.full(got.shape, np.nan, dt)
    assert blas.matmul(a, b, out=out) is out
    np.testing.assert_array_equal(out, got)
    assert len(mkl) == 2 and all(r == 0 for *_, r in mkl)


CONV_CASES = [  # (x shape, w shape, keywords, transposed): every product site of the convolutions
    ((3, 1, 28, 28), (6, 1, 5, 5), dict(padding=2), False),  # LeNet's conv1: Conv2d, wide
    ((3, 6, 14, 14), (16, 6, 5, 5), dict(), False),  # LeNet's conv2: Conv2d, batch-last
    ((1, 3, 20, 20), (4, 3, 3, 3), dict(), False),  # Conv2d, one image
    ((3, 16, 7, 5), (16, 16, 3, 3), dict(padding=1), False),  # ConvNd, Winograd
    ((3, 16, 20, 20), (16, 16, 3, 3), dict(padding=2, dilation=2), False),  # ConvNd, im2col
    ((2, 32, 18, 18), (32, 16, 3, 3), dict(padding=1, groups=2), False),  # ConvNd, 2 groups
    ((2, 4, 5, 6, 5), (6, 4, 3, 3, 3), dict(padding=1), False),  # conv3d
    ((2, 8, 9, 9), (8, 6, 3, 3), dict(stride=2, padding=1), True),  # transposed, col2im
    ((2, 8, 9, 9), (8, 6, 3, 3), dict(padding=1), True),  # transposed, stride 1
]


def _conv_fns(xs, ws, kw, transposed):
    import torch.nn.functional as TF

    import descent.nn.functional as F

    nd = len(xs) - 2
    name = f"conv_transpose{nd}d" if transposed else f"conv{nd}d"
    return (lambda x, w, b: getattr(F, name)(x, w, b, **kw),
            lambda x, w, b: getattr(TF, name)(x, w, b, **kw))  # fmt: skip


def _conv_arrays(xs, ws, transposed, seed=1):
    rng = np.random.default_rng(seed)
    cout = ws[1] if transposed else ws[0]  # (the transposed cases have one group)
    return [rng.standard_normal(xs), rng.standard_normal(ws) * 0.2, rng.standard_normal(cout)]


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("xs, ws, kw, transposed", CONV_CASES)
def test_convolutions_run_their_products_on_mkl(mkl, dt, xs, ws, kw, transposed):
    """conv1d/2d/3d and the transposed ones make their products (forward, input and weight
    gradients) through MKL, with PyTorch's values (the convolution tests' tolerance)."""
    from conv_compare import compare
    from descent.kernels import cpu

    if not cpu.available():
        pytest.skip("numba missing: the convolutions' fast paths are off")
    dfn, tfn = _conv_fns(xs, ws, kw, transposed)
    compare(dfn, tfn, _conv_arrays(xs, ws, transposed), dtype=dt)
    assert len(mkl) >= 3 and all(r == 0 for *_, r in mkl)  # forward, gx and gw products


@pytest.fixture
def two_mkl_threads(mkl, monkeypatch):
    """MKL at two threads and two cores for the convolutions' split (its results do not depend
    on the cores); records each split's parts and MKL's threads at every product."""
    from descent.ops import conv_winograd

    if conv_winograd._blas() is None:
        pytest.skip("threadpoolctl missing: no split")
    monkeypatch.setattr(conv_winograd, "_cores", lambda: 2)
    seen = {"splits": [], "threads": []}
    real_run, real_mm = conv_winograd._run, blas.matmul

    def run(parts, fn):
        seen["splits"].append(parts)
        return real_run(parts, fn)

    def mm(a, b, out=None):
        seen["threads"].append(blas.mkl_threads())
        return real_mm(a, b, out=out)

    monkeypatch.setattr(conv_winograd, "_run", run)
    monkeypatch.setattr(blas, "matmul", mm)
    before = blas.set_mkl_threads(2)
    try:
        yield seen
        assert blas.mkl_threads() == 2  # restored after every split
    finally:
        blas.set_mkl_threads(before)


@pytest.mark.parametrize("case", [0, 3, 4, 5])
def test_convolutions_split_at_two_mkl_threads_give_one_threads_bits(two_mkl_threads, case):
    """At two MKL threads on two cores a convolution splits its batch over two threads, each
    half's products on MKL at one thread (as OpenBLAS's), and gives MKL's one-thread bits
    (MKL_CBWR's strict mode; the halves' weight gradients added in one order)."""
    import descent as ds
    from conv_compare import grads
    from descent.kernels import cpu

    if not cpu.available():
        pytest.skip("numba missing: the convolutions' fast paths are off")
    xs, ws, kw, transposed = CONV_CASES[case]
    dfn, tfn = _conv_fns(xs, ws, kw, transposed)
    arrays = _conv_arrays(xs, ws, transposed)
    two = grads(ds, dfn, arrays, [True] * 3, np.float32)
    assert two_mkl_threads["splits"] and all(len(p) == 2 for p in two_mkl_threads["splits"])
    assert two_mkl_threads["threads"] and set(two_mkl_threads["threads"]) == {1}
    blas.set_mkl_threads(1)
    try:
        two_mkl_threads["splits"].clear()
        one = grads(ds, dfn, arrays, [True] * 3, np.float32)
        assert not two_mkl_threads["splits"]  # one thread: the same halves one after the other
    finally:
        blas.set_mkl_threads(2)
    _assert_bitwise(one, two)


def _lenet_train(compiled: bool, steps: int = 3):
    """LeNet, SGD momentum, batch 4: losses, gradients each step and the parameters after."""
    import descent
    import descent.nn.functional as F
    from descent.models import LeNet

    descent.manual_seed(0)
    m = LeNet(num_classes=10)
    opt = descent.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return loss

    f = descent.compile(step) if compiled else step
    rng = np.random.default_rng(0)
    out = []
    for _ in range(steps):
        x = descent.tensor(rng.standard_normal((4, 1, 28, 28)).astype(np.float32))
        y = descent.tensor(rng.integers(0, 10, 4))
        out.append(f(x, y)._data.copy())
        out += [p.grad._data.copy() for p in m.parameters()]
    return out + [p._data.copy() for p in m.parameters()], f


def test_lenet_step_compiled_is_eager_bitwise_on_mkl(mkl):
    """The LeNet step under MKL: its convolutions' and Linears' products on MKL, eagerly and
    in descent.compile's replay, the same bits."""
    eager, _ = _lenet_train(False)
    n_eager = len(mkl)
    conv_eager = sum(len(sa) >= 3 for sa, *_ in mkl)  # (the Linears' products are 2-D)
    compiled, f = _lenet_train(True)
    _assert_bitwise(eager, compiled)
    conv_all = sum(len(sa) >= 3 for sa, *_ in mkl)
    assert conv_eager >= 3 * 6 and conv_all >= 2 * conv_eager  # 2 convolutions a step, 3 each
    assert len(mkl) >= 2 * n_eager and all(r == 0 for *_, r in mkl)
    assert len(f.programs()) == 1


def test_lenet_step_at_two_mkl_threads_gives_one_threads_bits(two_mkl_threads):
    """The LeNet step at two MKL threads (its convolutions' batch split over two threads) gives
    the bits of one MKL thread."""
    two, _ = _lenet_train(False)
    assert two_mkl_threads["splits"]
    blas.set_mkl_threads(1)
    try:
        one, _ = _lenet_train(False)
    finally:
        blas.set_mkl_threads(2)
    _assert_bitwise(one, two)


def test_eager_halves_beside_mkl(mkl, monkeypatch):
    """At two MKL threads on two cores eager's non-BLAS halves (GELU's forward) run, with the
    whole call's bits; attention stays whole (MKL's one grouped call over the heads); at one MKL
    thread nothing splits."""
    import descent
    from descent import halves

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    x = np.random.default_rng(3).standard_normal(1 << 18).astype(np.float32)
    q = np.zeros((4, 2, 64, 32), np.float32)
    before = blas.set_mkl_threads(1)
    try:
        assert not halves.allowed(1 << 18) and halves.gelu_forward_d(x) is None
        whole = descent.nn.functional.gelu(descent.tensor(x)).numpy()
        blas.set_mkl_threads(2)
        assert halves.two_blas_threads() and halves.allowed(1 << 18)
        assert not halves.attention_ok(q, q, q)
        y, _ = halves.gelu_forward_d(x)
        split = descent.nn.functional.gelu(descent.tensor(x)).numpy()
    finally:
        blas.set_mkl_threads(before)
    _assert_bitwise([whole, whole], [y, split])
