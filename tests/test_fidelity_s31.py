"""PyTorch fidelity and reliability leftovers of session 30, fixed in session 31 (helper-235;
docs/pytorch.md, "Edges, session 31 (helper-235)"). Each case runs the same code in descent and
in torch 2.13 (the oracle) and compares values and gradients (nan positions exact)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import descent

inf, nan = math.inf, math.nan


def _np(t):
    t = t.detach()
    return t.resolve_conj().numpy() if isinstance(t, torch.Tensor) else t.numpy()


def _same(d, t, rtol=1e-6, atol=1e-6):
    a, b = _np(d), _np(t)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


# ---------------------------------------------------------------------------------------------
# 1. float32 scaled_dot_product_attention (the numba softmax kernel, `_cpu_jit.softmax_fwd32`,
# eager, eager's halves and descent.compile's replay): a row whose scores are all -inf attends
# to nothing, as PyTorch's _safe_softmax: output 0 and gradients 0 (descent gave nan; float64 /
# float16 were fixed in session 30). F.softmax keeps PyTorch's nan on such a row.

_K = {False: [[30.0, inf], [0.0, 5.8], [-1.17, -1e-8], [-0.31, 1e-8]],
      True: [[30.0, inf], [0.0, inf], [-1.17, inf], [-0.31, inf]]}  # fmt: skip
_Q = [[0.88, -0.466], [0.355, -0.33]]
_V = [[-2.98, -3.82], [-3.98, 1.09], [2.67, -1.67], [-1.62, -5.94]]
_W = [[0.5, -1.5], [2.0, 0.25]]
_SDPA_CASES = [(True, False), (True, True), (False, True)]  # (causal, every key infinite)


def _sdpa(m, q, k, v, causal, create_graph=False, batch=()):
    """y and the gradients of q, k, v of a weighted sum of float32 attention."""
    q, k, v = (m.tensor(np.broadcast_to(np.array(a, np.float32), batch + np.shape(a)).copy(),
                        requires_grad=True) for a in (q, k, v))  # fmt: skip
    y = m.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=2.0)
    w = m.tensor(np.broadcast_to(np.array(_W, np.float32), y.shape).copy())
    return (y, *m.autograd.grad((y * w).sum(), [q, k, v], create_graph=create_graph))


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("causal, all_inf", _SDPA_CASES)
def test_sdpa_float32_row_of_infinite_scores_is_zero(causal, all_inf, create_graph):
    d = _sdpa(descent, [_Q], [_K[all_inf]], [_V], causal, create_graph)
    t = _sdpa(torch, [_Q], [_K[all_inf]], [_V], causal, create_graph)
    for a, b in zip(d, t, strict=True):
        _same(a, b)
    if all_inf:  # every row dead: zeros, not merely the same nan pattern
        assert not np.isnan(_np(d[0])).any() and (_np(d[0]) == 0).all()


@pytest.mark.parametrize("causal, all_inf", _SDPA_CASES)
def test_sdpa_float32_halves_row_of_infinite_scores_is_zero(causal, all_inf, monkeypatch):
    # eager's two halves of the batch (halves.sdpa_forward_part), forced on whatever the BLAS
    from descent import halves

    monkeypatch.setattr(halves, "attention_ok", lambda q, k, v: q.ndim == 4)
    calls = []
    run0 = halves.run
    monkeypatch.setattr(halves, "run", lambda parts, fn: (calls.append(1), run0(parts, fn)))
    args = ([_Q], [_K[all_inf]], [_V], causal)
    d = _sdpa(descent, *args, batch=(2,))
    assert calls, "the halves did not run"
    t = _sdpa(torch, *args, batch=(2,))
    for a, b in zip(d, t, strict=True):
        _same(a, b)


@pytest.mark.parametrize("halves_on", [False, True])
@pytest.mark.parametrize("causal, all_inf", _SDPA_CASES)
def test_sdpa_float32_replay_row_of_infinite_scores_is_zero(causal, all_inf, halves_on,
                                                            monkeypatch):  # fmt: skip
    if halves_on:  # the replay's halves (replay_kernels._sdpa_forward_halves)
        from descent.compiler import replay_kernels as rk
        from descent.compiler import threads

        monkeypatch.setattr(rk, "HALVES_MIN", 0)
        monkeypatch.setattr(threads, "_two_blas_threads", lambda: True)
        monkeypatch.setitem(threads.HALVES, "on", True)
    batch = (2, 1)
    arrays = [np.broadcast_to(np.array(a, np.float32), batch + np.shape(a)).copy()
              for a in (_Q, _K[all_inf], _V)]  # fmt: skip
    leaves = [descent.tensor(a, requires_grad=True) for a in arrays]
    w = descent.tensor(np.broadcast_to(np.array(_W, np.float32), batch + (2, 2)).copy())

    def step():
        for x in leaves:
            x.grad = None
        y = descent.nn.functional.scaled_dot_product_attention(*leaves, is_causal=causal,
                                                               scale=2.0)  # fmt: skip
        (y * w).sum().backward()
        return y.detach()

    f = descent.compile(step)
    t = _sdpa(torch, [_Q], [_K[all_inf]], [_V], causal, batch=(2,))
    for _ in range(6):
        y = f()
        for a, b in zip((y, *(x.grad for x in leaves)), t, strict=True):
            _same(a, b)
    assert f.stats["replays"] >= 3 and f.stats["fallbacks"] == 0, f.stats


def test_softmax_kernel_safe_flag_only_for_attention():
    pytest.importorskip("numba")
    from descent.kernels import _cpu_jit

    rows = np.array([[-inf, -inf, -inf], [nan, -inf, -inf], [1.0, -inf, 2.0], [-inf, 0.5, -inf]],
                    np.float32)  # fmt: skip
    for causal in (False, True):
        n_q = 4 if causal else 1
        for safe in (False, True):
            x = rows.copy()
            _cpu_jit.softmax_fwd32(x, np.float32(1.0), n_q, causal, False, safe)
            dead = 0.0 if safe else nan  # a row of -inf only; the nan row stays nan
            assert np.array_equal(x[0], [dead, 0.0 if causal else dead, 0.0 if causal else dead],
                                  equal_nan=True), (causal, safe, x)  # fmt: skip
            assert np.isnan(x[1, 0]), (causal, safe, x)
            assert np.isfinite(x[2]).all() and np.isclose(x[2].sum(), 1.0)
            assert np.isclose(x[3].sum(), 1.0) and x[3, 1] == 1.0
    # F.softmax of an all -inf row: nan, as PyTorch's (torch.softmax is not _safe_softmax)
    got = descent.softmax(descent.tensor(rows), dim=-1).numpy()
    want = torch.softmax(torch.tensor(rows), dim=-1).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)


# ---------------------------------------------------------------------------------------------
# 2. aminmax's results share one node (AminmaxBackward0), as PyTorch's; since session 31 the
# engine runs it as one (a summed `grad_fn.PieceGroup`): node hooks on it see both results'
# gradients (None for one no gradient reached) and x's gradient, and may replace them (they
# were refused: descent ran the results' backward apart).

_AX = np.array([[1.0, 2.0, 2.0, -0.0], [3.0, 3.0, 0.0, -1.5], [0.5, 0.5, 0.5, 0.5]])


def _aminmax_hooks(m, dtype, use, dim, replace, create_graph=False):
    """Node hooks' arguments and x's gradient (and, under create_graph, a second derivative)
    for aminmax with the results in `use` ("min", "max") reaching the loss."""
    x = m.tensor(_AX, dtype=dtype, requires_grad=True)
    kw = {} if dim is None else {"dim": dim}
    mn, mx = m.aminmax(x, **kw)
    assert mn.grad_fn is mx.grad_fn and (mn.output_nr, mx.output_nr) == (0, 1)
    seen = []

    def pre(go):
        seen.append(("pre", [None if g is None else _np(g).tolist() for g in go]))
        if replace:
            return tuple(None if g is None else g * -2.0 for g in go)
        return None

    def post(gi, go):
        seen.append(("post", [None if g is None else _np(g).tolist() for g in gi],
                     [None if g is None else _np(g).tolist() for g in go]))  # fmt: skip
        return (gi[0] * 3.0 + 0.25,) if replace else None

    mx.grad_fn.register_prehook(pre)
    mn.grad_fn.register_hook(post)
    w = m.tensor(np.linspace(-1.0, 2.0, mn.numel()).reshape(mn.shape), dtype=dtype)
    loss = sum(((r * w) ** 2).sum() for r, name in ((mn, "min"), (mx, "max")) if name in use)
    (gx,) = m.autograd.grad(loss, [x], create_graph=create_graph)
    out = [gx]
    if create_graph:
        (gg,) = m.autograd.grad((gx * gx).sum(), [x])
        out.append(gg)
    return seen, out


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("dim", [None, 0, 1])
@pytest.mark.parametrize("use", [("min",), ("max",), ("min", "max")])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_aminmax_node_hooks_as_pytorch(dtype, use, dim, replace):
    sd, gd = _aminmax_hooks(descent, getattr(descent, dtype), use, dim, replace)
    st, gt = _aminmax_hooks(torch, getattr(torch, dtype), use, dim, replace)
    assert [s[0] for s in st] == ["pre", "post"]
    _same_hook_calls(sd, st, gd, gt)


def _same_hook_calls(sd, st, gd, gt):
    assert [s[0] for s in sd] == [s[0] for s in st]
    for a, b in zip(sd, st, strict=True):
        for u, v in zip(a[1:], b[1:], strict=True):
            assert [g is None for g in u] == [g is None for g in v], (u, v)
            for g, h in zip(u, v, strict=True):
                if g is not None:
                    np.testing.assert_allclose(g, h, rtol=1e-6)
                    assert (np.signbit(g) == np.signbit(h)).all(), (g, h)  # -0.0 kept
    for a, b in zip(gd, gt, strict=True):
        _same(a, b)
        assert (np.signbit(_np(a)) == np.signbit(_np(b))).all()


@pytest.mark.parametrize("use", [("min",), ("max",), ("min", "max")])
def test_aminmax_node_hooks_create_graph_float64(use):
    # a second derivative through the shared node's replaced gradients, against PyTorch's (the
    # second pass reaches the node again through the first's graph: its hooks run twice)
    sd, gd = _aminmax_hooks(descent, descent.float64, use, 1, True, create_graph=True)
    st, gt = _aminmax_hooks(torch, torch.float64, use, 1, True, create_graph=True)
    assert [s[0] for s in st] == ["pre", "post", "pre", "post"]
    _same_hook_calls(sd, st, gd, gt)


def test_aminmax_hook_order_retain_grad_and_inplace_error():
    """Tensor hooks on the results run in registration order, then retain_grad, then the node's
    pre-hook, as PyTorch's; x modified in place after aminmax raises in backward, as PyTorch."""

    def run(m):
        x = m.tensor(_AX, requires_grad=True)
        y = x * 1.0
        mn, mx = y.aminmax(dim=1)
        calls = []
        mx.register_hook(lambda g: calls.append("t-max") or g * 2)
        mn.retain_grad()
        mn.register_hook(lambda g: calls.append("t-min"))
        mx.grad_fn.register_prehook(lambda go: calls.append(("pre", [_np(g).tolist()
                                                                     for g in go])))  # fmt: skip
        (mn.sum() + (mx * mx).sum()).backward()
        z = x * 1.0
        a, b = z.aminmax()
        with torch.no_grad() if m is torch else descent.no_grad():
            z.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation|in place"):
            (a + b).backward()
        return calls, _np(x.grad), _np(mn.grad)

    cd, gd, rd = run(descent)
    ct, gt, rt = run(torch)
    assert cd == ct
    np.testing.assert_array_equal(gd, gt)
    np.testing.assert_array_equal(rd, rt)


def test_aminmax_compiled_replays_without_hooks():
    # no hook: the recorder sees each result's node as before and the replay matches eager
    pytest.importorskip("numba")
    x = descent.tensor(_AX.astype(np.float32), requires_grad=True)

    def step():
        x.grad = None
        mn, mx = x.aminmax(dim=1)
        (mn * 2.0 + mx * mx).sum().backward()
        return mx.detach()

    f = descent.compile(step)
    want = None
    for _ in range(5):
        f()
        g = x.grad.numpy().copy()
        if want is None:
            want = g
        np.testing.assert_array_equal(g, want)
    assert f.stats["replays"] >= 2 and f.stats["fallbacks"] == 0, f.stats
    xt = torch.tensor(_AX.astype(np.float32), requires_grad=True)
    mn, mx = xt.aminmax(dim=1)
    (mn * 2.0 + mx * mx).sum().backward()
    np.testing.assert_allclose(want, xt.grad.numpy(), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# 3. descent.compile's replay copies the later pieces of a split into the zeros buffer its first
# piece started (eager's cat: a piece's -0.0 kept). The marker of that buffer was one module
# variable (`program._FRESH`): two compiled functions replaying at once in two threads could
# read each other's, and add instead of copy (0.0 + -0.0 = +0.0). It is per thread now. The
# interleaving is forced: thread A stops after its first piece until thread B has delivered
# its own first piece.


def _split_step(seed):
    rng = np.random.default_rng(seed)
    x = descent.tensor(rng.standard_normal((4, 6)).astype(np.float32), requires_grad=True)
    w0 = rng.standard_normal((4, 2)).astype(np.float32)
    w0[::2] = -0.0  # piece 0's gradient holds -0.0: kept by a copy, +0.0 after an add
    w0, w1 = descent.tensor(w0), descent.tensor(rng.standard_normal((4, 2)).astype(np.float32))

    def step():
        x.grad = None
        # the third piece unused: y's gradient is not one fill (y, not the leaf x: the replay
        # adds a leaf's pieces, see below)
        p0, p1, _ = (x * 1.0).split(2, dim=1)
        ((p0 * w0).sum() + (p1 * w1).sum()).backward()
        return x.grad

    want = np.zeros((4, 6), np.float32)
    want[:, :2], want[:, 2:4] = w0.numpy(), w1.numpy()
    return step, want


def _bits_equal(a, b):
    return np.array_equal(np.asarray(a).view(np.int32), np.asarray(b).view(np.int32))


def test_split_marker_is_per_thread(monkeypatch):
    pytest.importorskip("numba")
    import threading

    from descent.compiler import program

    orig = program._slice_gradient
    armed = {"on": False}
    a_first, b_first = threading.Event(), threading.Event()
    calls: dict = {}

    def slice_gradient(*args, **kw):
        name = threading.current_thread().name
        if armed["on"] and name == "B" and not calls.get("B"):
            assert a_first.wait(10)
        r = orig(*args, **kw)
        if armed["on"] and name in ("A", "B"):
            calls[name] = calls.get(name, 0) + 1
            if name == "A" and calls["A"] == 1:
                a_first.set()
                assert b_first.wait(10)
            elif name == "B" and calls["B"] == 1:
                b_first.set()
        return r

    monkeypatch.setattr(program, "_slice_gradient", slice_gradient)  # (before codegen reads it)
    (sa, want_a), (sb, want_b) = _split_step(1), _split_step(2)
    fa, fb = descent.compile(sa), descent.compile(sb)
    for _ in range(4):  # recorded, then replayed
        assert _bits_equal(fa().numpy(), want_a) and _bits_equal(fb().numpy(), want_b)
    assert fa.stats["replays"] >= 1 and fb.stats["replays"] >= 1, (fa.stats, fb.stats)
    armed["on"] = True
    out: dict = {}
    ta = threading.Thread(target=lambda: out.__setitem__("A", fa().numpy().copy()), name="A")
    tb = threading.Thread(target=lambda: out.__setitem__("B", fb().numpy().copy()), name="B")
    ta.start()
    tb.start()
    ta.join(30)
    tb.join(30)
    assert calls.get("A", 0) >= 2 and calls.get("B", 0) >= 2, calls  # the pieces interleaved
    assert _bits_equal(out["A"], want_a), (out["A"], want_a)
    assert _bits_equal(out["B"], want_b), (out["B"], want_b)


@pytest.mark.parametrize("used", [(0, 1), (0, 1, 2), (1, 2)])
def test_split_of_a_leaf_replays_as_eager(used):
    """A leaf's split pieces: the replay added their zero-padded gradients (a piece's -0.0 came
    out +0.0) where eager (run_group) and PyTorch cat them; now copied as for a node's pieces."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(4)
    x0 = rng.standard_normal((4, 6)).astype(np.float32)
    ws = [rng.standard_normal((4, 2)).astype(np.float32) for _ in range(3)]
    for w in ws:
        w[1::2] = -0.0

    def grads(m, compiled):
        x = m.tensor(x0, requires_grad=True)
        wt = [m.tensor(w) for w in ws]

        def step():
            x.grad = None
            pieces = x.split(2, dim=1)
            sum((pieces[i] * wt[i]).sum() for i in used).backward()
            return x.grad

        f = descent.compile(step) if compiled else step
        out = [f().numpy().copy() for _ in range(4)]
        if compiled:
            assert f.stats["replays"] >= 1, f.stats
        return out

    want = grads(torch, False)[0]
    for got in grads(descent, False) + grads(descent, True):
        assert _bits_equal(got, want), (got, want)


# ---------------------------------------------------------------------------------------------
# 4. numba's on-disk cache keyed a kernel on its own file only: after an edit of
# kernels/_cpu_simd.py (inlined into _cpu_jit.py's kernels), _cpu_jit's kernels loaded the
# machine code cached before it. The stamp of a kernel file now covers the sibling modules it
# imports (`_numba_cache.install_source_stamps`). Checked on a copy of the package in a temp
# tree (its own cache): a second process loads the kernel, an edit of _cpu_simd.py makes the
# next one compile it again, and an edit of a module it does not import does not.

_KERNEL_CHILD = r"""
import json
import numpy as np
from descent.kernels import _cpu_jit
x = np.arange(12, dtype=np.float32).reshape(4, 3)
_cpu_jit.softmax_fwd32(x, np.float32(0.5), 4, True, False, True)
k = _cpu_jit.softmax_fwd32
print(json.dumps({"hits": sum(k._cache_hits.values()), "misses": sum(k._cache_misses.values()),
                  "file": _cpu_jit.__file__, "row": x[1].tolist()}))
"""


def test_kernel_cache_covers_inlined_modules(tmp_path):
    pytest.importorskip("numba")
    import json
    import os
    import shutil
    import subprocess
    import sys

    src = os.path.dirname(os.path.dirname(os.path.abspath(descent.__file__)))
    shutil.copytree(os.path.join(src, "descent"), tmp_path / "descent",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "PYTHONPATH")}
    env["PYTHONPATH"] = str(tmp_path)

    def child():
        p = subprocess.run([sys.executable, "-c", _KERNEL_CHILD], capture_output=True, text=True,
                           timeout=300, env=env, cwd=tmp_path)  # fmt: skip
        assert p.returncode == 0, p.stderr[-2000:]
        return json.loads(p.stdout.strip().splitlines()[-1])

    first = child()
    assert first["file"].startswith(str(tmp_path)), first
    assert first["misses"] == 1 and first["hits"] == 0, first  # a cold cache: compiled
    again = child()
    assert again["hits"] == 1 and again["misses"] == 0, again  # loaded
    kernels = tmp_path / "descent" / "kernels"
    with open(kernels / "_cpu_optim.py", "a") as f:  # not imported by _cpu_jit: still loaded
        f.write("\n# edited by the test\n")
    assert child()["hits"] == 1
    with open(kernels / "_cpu_simd.py", "a") as f:  # inlined into _cpu_jit's kernels
        f.write("\n# edited by the test\n")
    edited = child()
    assert edited["misses"] == 1 and edited["hits"] == 0, edited  # compiled again
    assert edited["row"] == first["row"]
    assert child()["hits"] == 1  # and cached under the new stamp


# ---------------------------------------------------------------------------------------------
# 5. adaptive_max_pool1d's graph as PyTorch's (SqueezeBackward1 over AdaptiveMaxPool2DBackward0
# over UnsqueezeBackward0 over x): descent's one PoolGather node is named as the squeeze and
# shows the other two as ShownNodes (session 30 measured the three real nodes at 2.2x PyTorch
# per call against 1.2x); unbatched, the select of the result is named as the squeeze.


def _walk(y):
    out, f = [], y.grad_fn
    while f is not None:
        out.append((type(f).__name__, f.name()))
        nf = f.next_functions
        assert len(nf) <= 1, nf
        f = nf[0][0] if nf else None
    return out


@pytest.mark.parametrize("shape", [(2, 3, 16), (3, 16), (1, 2, 5)])
@pytest.mark.parametrize("indices", [False, True])
def test_adaptive_max_pool1d_graph_as_pytorch(shape, indices):
    x = np.random.default_rng(0).permutation(int(np.prod(shape))).reshape(shape)
    res = []
    for m in (descent, torch):
        xt = m.tensor(x.astype(np.float32), requires_grad=True)
        r = m.nn.functional.adaptive_max_pool1d(xt, 4, return_indices=indices)
        y = r[0] if indices else r
        names = _walk(y)
        g = np.arange(y.numel(), dtype=np.float32).reshape(tuple(y.shape))
        y.backward(m.tensor(g))
        res.append((names, _np(y), _np(xt.grad), _np(r[1]) if indices else None))
    (nd, yd, gd, idd), (nt, yt, gt, idt) = res
    assert nd == nt and nd[0][0] == "SqueezeBackward1", (nd, nt)
    np.testing.assert_array_equal(yd, yt)
    np.testing.assert_array_equal(gd, gt)
    if indices:
        np.testing.assert_array_equal(idd, idt)


def test_adaptive_max_pool1d_shown_nodes_refuse_hooks():
    y = descent.nn.functional.adaptive_max_pool1d(descent.randn(2, 3, 8, requires_grad=True), 2)
    inner = y.grad_fn.next_functions[0][0]
    with pytest.raises(RuntimeError, match="register the hook on the tensor"):
        inner.register_hook(lambda gi, go: None)
