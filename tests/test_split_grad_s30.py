"""Session 30 (helper-228): split's pieces as PyTorch's one node over them.

PyTorch's backward for the pieces of one split / chunk / unbind (SplitBackward0,
SplitWithSizesBackward0, the unsafe forms, UnbindBackward0) is one node: it concatenates
(stacks) its outputs' gradients, zeros for a piece no gradient reached, so a piece's -0.0 stays
-0.0 in the input's gradient; separate slices and tensor_split's pieces are SliceBackward0 nodes
whose gradients its engine sums (+0.0). A hook on that node runs once and sees every piece's
gradient (None for an unused piece). descent's engine runs the pieces' nodes as that one step
(autograd_backward's `run_group`) on every path: the fast one, the plain one (a backward op
hook: descent.compile's recorder, anomaly mode) and create_graph. Checked against torch 2.13:
bits (np.signbit, a NaN matches any NaN), hook calls and their arguments, replacements,
retain_grad, double backward, compiled replays; float64 against finite differences.
"""

from __future__ import annotations

import gc
import importlib
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

import descent
from descent import halves, hooks


def _values(shape, seed, dtype):
    """Random values with -0.0, +0.0, NaN, inf and subnormals among them."""
    w = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    flat = w.reshape(-1)
    flat[::5] = -0.0
    flat[1::11] = 0.0
    flat[3::29] = np.nan
    flat[4::31] = -np.inf
    flat[6::17] = np.finfo(dtype).smallest_subnormal * -3
    return w


def _same_bits(a, b) -> bool:
    """The same bits, zeros' signs included; a NaN matches any NaN."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    na, nb = np.isnan(a), np.isnan(b)
    as_int = {4: np.int32, 8: np.int64}[a.dtype.itemsize]
    return np.array_equal(na, nb) and np.array_equal(a[~na].view(as_int), b[~nb].view(as_int))


# how the pieces of z (4, 12) are taken along axis 1, and which of them get a gradient
PIECES = {
    "split": (lambda z, lib: z.split(4, dim=1), (0, 1, 2)),
    "split sizes": (lambda z, lib: z.split([3, 5, 4], dim=1), (0, 1, 2)),
    "split_with_sizes": (lambda z, lib: lib.split_with_sizes(z, [3, 5, 4], 1), (2, 0, 1)),
    "chunk": (lambda z, lib: z.chunk(3, dim=1), (2, 0, 1)),
    "split, one piece unused": (lambda z, lib: z.split(4, dim=1), (0, 2)),
    "chunk, only the middle": (lambda z, lib: z.chunk(3, dim=1), (1,)),
    "unbind": (lambda z, lib: z.unbind(1), (0, 3, 4, 5, 11, 7)),
    "unbind dim 0": (lambda z, lib: z.unbind(0), (0, 1, 3)),
    "unsafe_split": (lambda z, lib: lib.unsafe_split(z, 4, 1), (0, 1, 2)),
    "unsafe_chunk": (lambda z, lib: lib.unsafe_chunk(z, 3, 1), (1, 2)),
    "unsafe_split_with_sizes": (
        lambda z, lib: lib.unsafe_split_with_sizes(z, [3, 5, 4], 1),
        (0, 1, 2),
    ),
    "slices": (lambda z, lib: (z[:, 0:4], z[:, 4:8], z[:, 8:12]), (0, 1, 2)),
    "tensor_split": (lambda z, lib: z.tensor_split(3, dim=1), (0, 1, 2)),
    "split and a slice": (lambda z, lib: z.split(6, dim=1) + (z[:, 6:8],), (0, 2)),
}


def _grad(lib, how, xv, gvs, create_graph=False):
    take, used = PIECES[how]
    x = lib.tensor(xv, requires_grad=True)
    z = x * 1.0  # a node: the pieces' gradients meet at its node
    pieces = take(z, lib)
    outs = [pieces[i] for i in used]
    grads = [lib.tensor(gvs[i].reshape(-1)[: p.numel()].reshape(tuple(p.shape)))
             for i, p in zip(used, outs, strict=True)]  # fmt: skip
    if create_graph:
        (g,) = lib.autograd.grad(outs, [x], grads, create_graph=True)
        return g.detach().numpy()
    lib.autograd.backward(outs, grads)
    return x.grad.detach().numpy()


@pytest.mark.parametrize("path", ["fast", "op hook", "create_graph"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("how", list(PIECES))
def test_pieces_gradient_bits_are_pytorchs(how, dtype, path):
    """x's gradient bit for bit as PyTorch's on each of the engine's paths: one split's pieces
    are a cat (a piece's -0.0 kept), separate slices and tensor_split's pieces a sum (+0.0)."""
    xv = _values((4, 12), 1, dtype)
    gvs = [_values((4, 12), 10 + i, dtype) for i in range(12)]
    want = _grad(torch, how, xv, gvs)
    handle = hooks.add_op_hook(backward=lambda node, gy, gxs: None) if path == "op hook" else None
    try:
        got = _grad(descent, how, xv, gvs, create_graph=path == "create_graph")
    finally:
        if handle is not None:
            handle.remove()
    assert _same_bits(got, want), (how, np.signbit(got).astype(int), np.signbit(want).astype(int))
    if how in ("split", "chunk", "unbind", "unsafe_split", "split_with_sizes"):
        assert np.signbit(got[got == 0]).any()  # the pieces' -0.0 kept (the cat)


def _heads_grad(lib, xv, gvs, nh):
    """nanoGPT's heads: q, k, v = split(x); each viewed (B, T, nh, hs) and transposed."""
    b, t, c3 = xv.shape
    c = c3 // 3
    x = lib.tensor(xv, requires_grad=True)
    heads = [p.view(b, t, nh, c // nh).transpose(1, 2) for p in (x * 1.0).split(c, dim=2)]
    lib.autograd.backward(heads, [lib.tensor(g) for g in gvs])
    return x.grad.detach().numpy()


@pytest.mark.parametrize("split_halves", [False, True])
@pytest.mark.parametrize("shape", [(2, 3, 24), (12, 64, 384)])
def test_heads_gradient_bits_are_pytorchs(shape, split_halves, monkeypatch):
    """The heads' pieces arrive as transposed views (the engine's `_Reshaped`): copied into
    place, in two halves of the batch where the halves run (forced here on baby-gpt's shape)."""
    monkeypatch.setattr(halves, "two_blas_threads", lambda: split_halves)
    runs = []
    real_run = halves.run
    monkeypatch.setattr(halves, "run", lambda parts, fn: (runs.append(parts), real_run(parts, fn)))
    b, t, c3 = shape
    nh = 4 if c3 > 24 else 2
    xv = _values(shape, 2, np.float32)
    gvs = [_values((b, nh, t, c3 // 3 // nh), 20 + i, np.float32) for i in range(3)]
    want = _heads_grad(torch, xv, gvs, nh)
    got = _heads_grad(descent, xv, gvs, nh)
    assert _same_bits(got, want)
    assert np.signbit(got[got == 0]).any()
    assert len(runs) == (1 if split_halves and b == 12 else 0)


# -- hooks on the node the pieces share ---------------------------------------------------------

HOOKED = {
    "split": lambda z, lib: z.split(2, 1),
    "chunk": lambda z, lib: z.chunk(3, 1),
    "unbind": lambda z, lib: z.unbind(1),
    "split_with_sizes": lambda z, lib: lib.split_with_sizes(z, [1, 3, 2], 1),
    "unsafe_split": lambda z, lib: lib.unsafe_split(z, 2, 1),
    "unsafe_chunk": lambda z, lib: lib.unsafe_chunk(z, 3, 1),
    "tensor_split": lambda z, lib: z.tensor_split(3, 1),  # (a SliceBackward0 per piece)
}


def _tolist(g):
    return None if g is None else g.detach().numpy().tolist()


def _hook_events(lib, how, used, replace):
    """The calls of a pre-hook and a post-hook on piece 1's node, with their arguments, and
    the gradients that come out (the hooks replacing theirs when `replace`)."""
    ev = []
    x = lib.tensor(np.arange(12, dtype=np.float32).reshape(2, 6) - 5, requires_grad=True)
    z = x * 1.0
    p = HOOKED[how](z, lib)
    node = p[1].grad_fn

    def pre(go):
        ev.append(("pre", [_tolist(g) for g in go]))
        if replace:
            return tuple(None if g is None else g * 10 for g in go)
        return None

    def post(gi, go):
        ev.append(("post", [_tolist(g) for g in gi], [_tolist(g) for g in go]))
        return (gi[0] + 1,) if replace else None

    node.register_prehook(pre)
    node.register_hook(post)
    loss = sum((p[k] * (k + 2)).sum() for k in used)
    loss.backward()
    ev.append(("x.grad", _tolist(x.grad)))
    return ev


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize(
    "how, used",
    [(how, used) for how in HOOKED for used in [(0, 1, 2), (1,), (2, 0)]
     if used != (2, 0) or how != "tensor_split"],  # (piece 1's own node: no gradient, no call)
)  # fmt: skip
def test_node_hooks_see_every_piece_as_pytorchs(how, used, replace):
    """One call of each hook per backward, with every output's gradient (None for a piece no
    gradient reached), grad_inputs the cat; a returned tuple replaces them."""
    assert _hook_events(descent, how, used, replace) == _hook_events(torch, how, used, replace)


def _order(lib):
    """Tensor hooks on two pieces (registered out of output order), retain_grad, and the
    shared node's hooks: the order of the calls and what each sees."""
    ev = []
    x = lib.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3), requires_grad=True)
    a, b, c = (x * 1.0).unbind(1)
    c.register_hook(lambda g: ev.append(("c", _tolist(g))))
    a.retain_grad()
    c.retain_grad()
    a.register_hook(lambda g: ev.append(("a", _tolist(g))) or g * 2)
    h = a.register_hook(lambda g: ev.append(("removed", _tolist(g))))
    h.remove()
    a.grad_fn.register_prehook(lambda go: ev.append(("pre", [_tolist(g) for g in go])))
    b.grad_fn.register_hook(lambda gi, go: ev.append(("post", [_tolist(g) for g in gi])))
    (a * 3 + c * 5).sum().backward()
    ev.append(("grads", _tolist(a.grad), _tolist(c.grad), _tolist(x.grad), b.grad))
    return ev


def test_piece_hooks_then_retain_grad_then_node_hooks_as_pytorchs():
    """PyTorch's order for a node's outputs: the tensor hooks of every piece in registration
    order, then retain_grad (seeing the hooks' result), then the node's pre- and post-hooks."""
    assert _order(descent) == _order(torch)


def _double(lib, how):
    """create_graph through the pieces with a post-hook doubling grad_inputs: the gradient
    and the gradient of its sum (x's second derivative), as numbers."""
    x = lib.tensor(np.linspace(-1.0, 1.5, 12).reshape(2, 6), requires_grad=True)
    p = HOOKED[how](x * x, lib)
    p[0].grad_fn.register_hook(lambda gi, go: (gi[0] * 2,))
    loss = sum(((q * (k + 1)) ** 2).sum() for k, q in enumerate(p) if k != 1)
    (g,) = lib.autograd.grad(loss, [x], create_graph=True)
    (gg,) = lib.autograd.grad((g * g).sum(), [x])
    return g.detach().numpy(), gg.detach().numpy()


@pytest.mark.parametrize("how", ["split", "chunk", "unbind", "split_with_sizes", "unsafe_split"])
def test_double_backward_through_the_pieces(how):
    """float64: PyTorch's first and second derivatives (the hook in the recorded graph), and
    the hook-free gradient against central differences."""
    g, gg = _double(descent, how)
    tg, tgg = _double(torch, how)
    np.testing.assert_allclose(g, tg, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gg, tgg, rtol=1e-12, atol=1e-12)

    def f(xv):
        p = HOOKED[how](descent.tensor(xv) ** 2, descent)
        return sum(((q * (k + 1)) ** 2).sum() for k, q in enumerate(p) if k != 1).item()

    x = descent.tensor(np.linspace(-1.0, 1.5, 12).reshape(2, 6), requires_grad=True)
    p = HOOKED[how](x**2, descent)
    (g1,) = descent.autograd.grad(
        sum(((q * (k + 1)) ** 2).sum() for k, q in enumerate(p) if k != 1), [x]
    )
    xv, eps = x.detach().numpy(), 1e-6
    num = np.zeros_like(xv)
    for i in np.ndindex(xv.shape):
        d = np.zeros_like(xv)
        d[i] = eps
        num[i] = (f(xv + d) - f(xv - d)) / (2 * eps)
    np.testing.assert_allclose(g1.numpy(), num, rtol=1e-6, atol=1e-8)


def _captured(lib):
    """autograd.grad with respect to two pieces and x, and a piece's retained .grad."""
    x = lib.tensor(_values((3, 6), 4, np.float32), requires_grad=True)
    a, b, c = (x * 2.0).split(2, 1)
    b.retain_grad()
    loss = (a * -0.0).sum() + (b * 3).sum() + (c * -0.0).sum()
    ga, gc_, gx = lib.autograd.grad(loss, [a, c, x], retain_graph=True)
    loss.backward()
    return [np.asarray(t.detach()) for t in (ga, gc_, gx, b.grad, x.grad)]


def test_capture_and_retain_grad_of_pieces():
    for got, want in zip(_captured(descent), _captured(torch), strict=True):
        assert _same_bits(got, want)


def test_anomaly_mode_gives_the_same_bits():
    """(finite values: anomaly mode raises on a NaN, as PyTorch's)"""
    xv = np.nan_to_num(_values((4, 12), 1, np.float32), posinf=2.0, neginf=-2.0)
    gvs = [np.nan_to_num(_values((4, 12), 10 + i, np.float32), posinf=3.0, neginf=-3.0)
           for i in range(12)]  # fmt: skip
    want = _grad(torch, "split", xv, gvs)
    with descent.autograd.detect_anomaly():
        got = _grad(descent, "split", xv, gvs)
    assert _same_bits(got, want)


def test_the_group_keeps_no_node_alive():
    """The pieces' nodes hold their group, the group holds them weakly: the graph is freed by
    reference counts alone once backward has run and the tensors are gone."""
    gc.disable()
    try:
        x = descent.randn(3, 6, requires_grad=True)
        pieces = (x * 2.0).split(2, 1)
        refs = [weakref.ref(p.grad_fn) for p in pieces]
        pieces[0].grad_fn.register_hook(lambda gi, go: None)
        sum(p.sum() for p in pieces).backward()
        del pieces
        assert all(r() is None for r in refs)
    finally:
        gc.enable()


def test_aminmax_accepts_node_hooks():
    """aminmax's two results share a node that descent runs as one since session 31 (a
    summed PieceGroup; tests/test_fidelity_s31.py compares it with PyTorch's)."""
    lo, hi = descent.randn(5, requires_grad=True).aminmax()
    seen = []
    hi.grad_fn.register_hook(lambda gi, go: seen.append(len(go)))
    (lo + hi).backward()
    assert seen == [2]


# -- descent.compile ----------------------------------------------------------------------------


def _compiled_grads(split_halves: bool, used):
    """Four calls of a compiled step over a split (recorded, then replayed): w's gradient."""
    pytest.importorskip("numba")
    wv = _values((4, 12), 3, np.float32)
    gv = _values((4, 12), 5, np.float32)
    w = descent.tensor(wv, requires_grad=True)

    def step(c):
        w.grad = None
        pieces = (w * c).split(4, dim=1)
        loss = sum((pieces[k] * descent.tensor(gv[:, 4 * k : 4 * k + 4])).sum() for k in used)
        loss.backward()
        return loss

    f = descent.compile(step)
    out = [f(descent.tensor(1.0)) and w.grad.numpy().copy() for _ in range(4)]
    return out, f.stats["replays"]


@pytest.mark.parametrize("used", [(0, 1, 2), (2, 0)])
def test_compiled_replay_gives_eager_and_pytorchs_bits(used):
    wv = _values((4, 12), 3, np.float32)
    gv = _values((4, 12), 5, np.float32)
    tw = torch.tensor(wv, requires_grad=True)
    pieces = (tw * 1.0).split(4, dim=1)
    sum((pieces[k] * torch.tensor(gv[:, 4 * k : 4 * k + 4])).sum() for k in used).backward()
    want = tw.grad.numpy()
    grads, replays = _compiled_grads(False, used)
    assert replays >= 1
    for k, g in enumerate(grads):
        assert _same_bits(g, want), k


def test_gpt_gradients_against_pytorch_and_finite_differences(monkeypatch):
    """A one-layer GPT (split into q, k, v): float32 gradients against PyTorch's twin, float64
    against central differences."""
    # the benchmarks' PyTorch twin, imported by name (not gpt_step: its _common re-executes the
    # process), with sys.path restored afterwards
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    TorchGPT = importlib.import_module("_torch_gpt").TorchGPT

    from descent.models import GPT, GPTConfig

    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.0,
                    bias=False)  # fmt: skip
    idx = np.random.default_rng(5).integers(0, 11, size=(2, 2, 8))
    descent.manual_seed(3)
    model = GPT(cfg)
    tm = TorchGPT(cfg)
    ours = dict(model.named_parameters())
    with torch.no_grad():
        for name, p in tm.named_parameters():
            src = ours.get(name, ours.get(name.replace("lm_head", "transformer.wte")))
            p.copy_(torch.from_numpy(src.numpy().copy()))
    model(descent.tensor(idx[0]), descent.tensor(idx[1]))[1].backward()
    tm(torch.from_numpy(idx[0]), torch.from_numpy(idx[1]))[1].backward()
    tgrads = dict(tm.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tgrads[name].grad.numpy(), rtol=2e-4,
                                   atol=2e-6, err_msg=name)  # fmt: skip

    x = descent.tensor(np.random.default_rng(6).standard_normal((2, 3, 12)), requires_grad=True)
    w = descent.tensor(np.random.default_rng(7).standard_normal((2, 3, 12)))

    def f(x):
        q, k, v = x.split(4, dim=2)
        qh, kh, vh = (t.view(2, 3, 2, 2).transpose(1, 2) for t in (q, k, v))
        y = descent.nn.functional.scaled_dot_product_attention(qh, kh, vh, is_causal=True)
        return (y.transpose(1, 2).reshape(2, 3, 4).tanh() * w[..., :4]).sum() + (
            k * w[..., 4:8]
        ).sum()

    f(x).backward()
    eps, xv = 1e-6, x.detach().numpy()
    num = np.zeros_like(xv)
    for i in np.ndindex(xv.shape):
        d = np.zeros_like(xv)
        d[i] = eps
        num[i] = (f(descent.tensor(xv + d)).item() - f(descent.tensor(xv - d)).item()) / (2 * eps)
    np.testing.assert_allclose(x.grad.numpy(), num, rtol=1e-6, atol=1e-8)


def test_a_node_hook_inside_a_compiled_function_runs_each_call():
    """A hook on the shared node inside a compiled function: the recorder gives up (it replays
    no hooks) naming it, so every call runs eagerly and the hook sees every piece's gradient
    each time."""
    pytest.importorskip("numba")
    w = descent.tensor(np.arange(12.0, dtype=np.float32).reshape(2, 6), requires_grad=True)
    seen = []

    def step(c):
        w.grad = None
        a, b, d = (w * c).split(2, 1)
        a.grad_fn.register_prehook(lambda go: seen.append(go))
        ((a * 2).sum() + (d * 3).sum()).backward()
        return w.grad

    f = descent.compile(step)
    with pytest.warns(UserWarning, match="a hook on the node split's pieces share"):
        grads = [f(descent.tensor(1.0)).numpy().tolist() for _ in range(4)]
    want = [[[2.0] * 2] * 2, None, [[3.0] * 2] * 2]
    assert len(seen) == 4 and all([_tolist(g) for g in go] == want for go in seen)
    assert all(g == [[2.0, 2.0, 0.0, 0.0, 3.0, 3.0]] * 2 for g in grads)
    assert f.stats["replays"] == 0


def _inputs(lib, which, functional):
    """backward(inputs=[piece]) runs the shared node (its hooks see every piece's gradient);
    autograd.grad(loss, [piece]) does not run it (no hook call)."""
    ev = []
    x = lib.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3), requires_grad=True)
    p = (x * 1.0).unbind(1)
    p[0].grad_fn.register_prehook(lambda go: ev.append(("pre", [_tolist(g) for g in go])))
    p[1].grad_fn.register_hook(lambda gi, go: ev.append(("post", [_tolist(g) for g in gi])))
    loss = (p[0] * 2 + p[2] * 3).sum()
    if functional:
        ev.append(("grad", [_tolist(g) for g in lib.autograd.grad(loss, [p[which]])]))
    else:
        p[which].retain_grad()
        loss.backward(inputs=[p[which]])
        ev.append(("backward", _tolist(p[which].grad), x.grad))
    return ev


@pytest.mark.parametrize("functional", [False, True])
@pytest.mark.parametrize("which", [0, 2])
def test_pieces_as_inputs_of_backward_and_grad(which, functional):
    assert _inputs(descent, which, functional) == _inputs(torch, which, functional)
