"""descent.cond and descent._higher_order_ops (while_loop, scan, map, associative_scan) against
PyTorch 2.13's: values, gradients through the branch taken and every loop step, pytrees,
reverse scans, other dims, and PyTorch's errors."""

from __future__ import annotations

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")
th = pytest.importorskip("torch._higher_order_ops")


def _pair(a, grad=True):
    return (descent.tensor(a, requires_grad=grad),
            torch.tensor(a, requires_grad=grad))  # fmt: skip


def _close(d, t):
    np.testing.assert_allclose(d.detach().numpy(), t.detach().numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cond_takes_the_branch_and_its_gradient(sign):
    a = sign * np.random.default_rng(0).uniform(0.5, 1.5, (2, 3)).astype(np.float32)
    dx, tx = _pair(a)
    outs = []
    for lib, x in ((descent, dx), (torch, tx)):
        y = lib.cond(x.sum() > 0, lambda x: (x.cos(),), lambda x: (x.sin() * 2,), [x])
        (y[0] * 3).sum().backward()
        outs.append(y[0])
    _close(outs[0], outs[1])
    _close(dx.grad, tx.grad)
    assert descent.cond(True, lambda: 1, lambda: 2) == 1
    with pytest.raises(RuntimeError, match="single-element"):
        descent.cond(descent.tensor([True, False]), lambda: 1, lambda: 2, ())
    with pytest.raises(RuntimeError, match="single-element"):
        torch.cond(torch.tensor([True, False]), lambda: 1, lambda: 2, ())


def test_while_loop_matches_pytorch_with_gradients():
    a = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    dx, tx = _pair(a)
    res = []
    for lib, hop, x in ((descent, descent._higher_order_ops, dx), (torch, th, tx)):
        i, h = hop.while_loop(lambda i, h: i > 0, lambda i, h: (i - 1, (h * 1.5).tanh()),
                              (lib.tensor(3), x))  # fmt: skip
        h.sum().backward()
        res.append((int(i), h))
    assert res[0][0] == res[1][0] == 0
    _close(res[0][1], res[1][1])
    _close(dx.grad, tx.grad)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dim", [0, 1])
def test_scan_matches_pytorch(reverse, dim):
    rng = np.random.default_rng(2)
    xs_a = rng.standard_normal((3, 3)).astype(np.float32)
    w_a = rng.standard_normal((3, 3)).astype(np.float32) * 0.5
    init_a = rng.standard_normal(3).astype(np.float32)
    res = []
    for lib, hop in ((descent, descent._higher_order_ops), (torch, th)):
        xs, w = lib.tensor(xs_a, requires_grad=True), lib.tensor(w_a, requires_grad=True)
        init = lib.tensor(init_a)

        def combine(c, x, w=w):
            nxt = (c @ w + x).tanh()
            return nxt, {"h": nxt * 2, "c": c.clone()}

        last, ys = hop.scan(combine, init, xs, dim=dim, reverse=reverse)
        (last.sum() + (ys["h"] * ys["c"]).sum()).backward()
        res.append((last, ys["h"], ys["c"], xs.grad, w.grad))
    for d, t in zip(*res, strict=True):
        _close(d, t)


def test_map_matches_pytorch():
    a = np.arange(6.0, dtype=np.float32).reshape(3, 2)
    res = []
    for lib, hop in ((descent, descent._higher_order_ops), (torch, th)):
        xs = lib.tensor(a, requires_grad=True)
        out = hop.map(lambda x, y: (x * y, (x + 1).sin()), xs, lib.tensor(2.0))
        (out[0].sum() + out[1].sum()).backward()
        res.append((out[0], out[1], xs.grad))
    for d, t in zip(*res, strict=True):
        _close(d, t)


@pytest.mark.parametrize("reverse", [False, True])
def test_associative_scan_matches_pytorch(reverse):
    a = np.random.default_rng(3).standard_normal((3, 5)).astype(np.float32)
    res = []
    for lib, hop in ((descent, descent._higher_order_ops), (torch, th)):
        xs = lib.tensor(a, requires_grad=True)
        out = hop.associative_scan(lambda x, y: x + y, xs, 1, reverse=reverse,
                                   combine_mode="generic")  # fmt: skip
        (out * out).sum().backward()
        res.append((out, xs.grad))
    for d, t in zip(*res, strict=True):
        _close(d, t)
    np.testing.assert_allclose(res[0][0].detach().numpy(),
                               np.flip(np.cumsum(np.flip(a, 1), 1), 1) if reverse
                               else np.cumsum(a, 1), rtol=1e-5)  # fmt: skip


def test_top_level_names():
    import subprocess
    import sys

    src = ("import descent as torch\n"
           "x = torch.ones(2)\n"
           "print(torch.cond(x.sum() > 1, lambda x: x + 1, lambda x: x - 1, (x,)).tolist())\n"
           "print(torch._higher_order_ops.map(lambda v: v * 2, torch.arange(3)).tolist())\n")
    out = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[2.0, 2.0]", "[0, 2, 4]"]
