"""Eager per-call overhead sweep: forward + backward of ~70 common ops on small and medium
shapes, descent vs torch in the same process, interleaved (docs/performance.md, "Per-call
overhead").

Each case is written once against the PyTorch API (`lib` is descent or torch). A sample times
`inner` calls in a row (inner chosen so one sample lasts ~2 ms); the contestants alternate in
blocks (d d d, t t t, d d d, ...; the first sample of each block untimed); medians of wall and
of process CPU time per call are reported, with the ratio descent / torch.

Small shapes: 8x16 matrices, 2x3x8x8 images, 2x3x16 sequences, 2x3x4^3 volumes; medium: 64x512,
16x16x32x32, 16x32x256, 4x8x16^3. Optimizer cases: 5 Linear layers (10 parameters) of width 16
or 256, gradients set.

Run (pinned, one thread; ~1 min):
    taskset -c 0 python benchmarks/overhead_sweep.py [--only NAME,NAME] [--size small|medium]
    [--forward]

--forward times the forward alone (the inputs still require grad, so both libraries record
their graphs as in training; the optimizer cases, which have no forward, are left out).
"""

from __future__ import annotations

import argparse
import os
import time

import _common  # noqa: F401 - first: re-execs without OPENBLAS_* tuning variables
import numpy as np
import torch
from op_sweep import _leaf  # op_sweep's leaf helper

import descent

FORWARD_ONLY = False  # --forward: no backward in fn_case / module_case / setitem_case


def _backward_fixed(lib, holder, out):
    """out.backward of a fixed upstream gradient (drawn once per case, seed 9)."""
    gy = holder.get("gy")
    if gy is None:
        gy = holder["gy"] = lib.tensor(
            np.random.default_rng(9).standard_normal(tuple(out.shape)).astype(np.float32)
        )
    out.backward(gy)


def fn_case(fn, *specs, grad=True):
    """fn(lib, *tensors) forward, then backward of a fixed upstream gradient through the first
    output. specs: shapes (float leaves requiring grad), ('int', shape, high), ('bool', shape),
    ('const', shape) (float, no grad)."""

    def make(lib):
        rng = np.random.default_rng(2)
        ins, leaves = [], []
        for s in specs:
            if isinstance(s, tuple) and s and s[0] == "int":
                ins.append(lib.tensor(rng.integers(0, s[2], s[1])))
            elif isinstance(s, tuple) and s and s[0] == "bool":
                ins.append(lib.tensor(rng.random(s[1]) < 0.3))
            elif isinstance(s, tuple) and s and s[0] == "const":
                ins.append(
                    lib.tensor(np.random.default_rng(5).standard_normal(s[1]).astype(np.float32))
                )
            else:
                t = _leaf(
                    lib, np.random.default_rng(len(ins)).standard_normal(s).astype(np.float32), grad
                )
                ins.append(t)
                leaves.append(t)
        holder = {}

        def step():
            for t in leaves:
                t.grad = None
            out = fn(lib, *ins)
            if isinstance(out, (tuple, list)):
                out = out[0]
            if not grad or FORWARD_ONLY:
                return out
            _backward_fixed(lib, holder, out)
            return out

        return step

    return make


def module_case(build, x_shape, x_kind="normal"):
    def make(lib):
        lib.manual_seed(0)
        m = build(lib)
        m.train()
        if x_kind == "normal":
            x = _leaf(lib, np.random.default_rng(1).standard_normal(x_shape).astype(np.float32))
        else:
            x = lib.tensor(np.random.default_rng(1).integers(0, x_kind, x_shape))
        params = list(m.parameters())
        _same_weights(lib, params)
        holder = {}

        def step():
            for p in params:
                p.grad = None
            if x.requires_grad:
                x.grad = None
            out = m(x)
            if isinstance(out, tuple):
                out = out[0]
            if FORWARD_ONLY:
                return out
            _backward_fixed(lib, holder, out)
            return out

        return step

    return make


def _same_weights(lib, params):
    """Both libraries' modules get the same parameter values (their initializers differ)."""
    rng = np.random.default_rng(7)
    with lib.no_grad():
        for p in params:
            scale = 1.0 / np.sqrt(p.shape[-1]) if p.ndim > 1 else 0.2
            v = (rng.standard_normal(tuple(p.shape)) * scale).astype(np.float32)
            p.copy_(lib.tensor(v))


def _model(lib, width):
    """10 parameters: 5 Linear layers with bias."""
    lib.manual_seed(0)
    nn = lib.nn
    m = nn.Sequential(*[nn.Linear(width, width) for _ in range(5)])
    _same_weights(lib, list(m.parameters()))
    return m


def _with_grads(lib, m):
    rng = np.random.default_rng(3)
    for p in m.parameters():
        p.grad = lib.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32) * 0.01)


def optim_case(name, width, **kw):
    def make(lib):
        m = _model(lib, width)
        _with_grads(lib, m)
        opt = getattr(lib.optim, name)(m.parameters(), **kw)
        return opt.step

    return make


def zero_grad_case(width):
    def make(lib):
        m = _model(lib, width)
        opt = lib.optim.SGD(m.parameters(), lr=0.1)

        def step():
            _set = [setattr(p, "grad", g) for p, g in zip(params, grads)]  # noqa: F841
            opt.zero_grad()

        params = list(m.parameters())
        _with_grads(lib, m)
        grads = [p.grad for p in params]
        return step

    return make


def clip_case(width):
    def make(lib):
        m = _model(lib, width)
        _with_grads(lib, m)
        params = list(m.parameters())
        return lambda: lib.nn.utils.clip_grad_norm_(params, 1.0)

    return make


def mlp_case(width, batch):
    def build(lib):
        nn = lib.nn
        layers = []
        for _ in range(4):
            layers += [nn.Linear(width, width), nn.ReLU()]
        return nn.Sequential(*layers)

    return module_case(build, (batch, width))


def setitem_case(shape, idx_kind):
    def make(lib):
        x = _leaf(lib, np.random.default_rng(1).standard_normal(shape).astype(np.float32))
        v = _leaf(lib, np.random.default_rng(2).standard_normal((shape[1],)).astype(np.float32))
        ids = lib.tensor(np.array([0, 2, 3]))
        gy = lib.tensor(np.random.default_rng(9).standard_normal(shape).astype(np.float32))

        def step():
            x.grad = v.grad = None
            y = x * 1.0
            if idx_kind == "int":
                y[1] = v
            elif idx_kind == "slice":
                y[1:3] = v
            else:
                y[ids] = v
            if not FORWARD_ONLY:
                y.backward(gy)
            return y

        return step

    return make


def _cases(size):
    F = lambda lib: lib.nn.functional  # noqa: E731
    nn = lambda lib: lib.nn  # noqa: E731
    small = size == "small"
    c = []

    def add(name, make):
        c.append((f"{name} [{size}]", make))

    N, C, H = (2, 3, 8) if small else (16, 16, 32)
    img = (N, C, H, H)
    seq = (N, C, 16) if small else (16, 32, 256)
    vol = (2, 3, 4, 4, 4) if small else (4, 8, 16, 16, 16)
    R, K = (8, 16) if small else (64, 512)
    mat = (R, K)

    # pooling
    add("max_pool1d k2", fn_case(lambda lib, x: F(lib).max_pool1d(x, 2), seq))
    add("max_pool2d k2", fn_case(lambda lib, x: F(lib).max_pool2d(x, 2), img))
    add("max_pool2d k3 s2 p1", fn_case(lambda lib, x: F(lib).max_pool2d(x, 3, 2, 1), img))
    add(
        "max_pool2d k2 indices",
        fn_case(lambda lib, x: F(lib).max_pool2d(x, 2, return_indices=True), img),
    )
    add("MaxPool2d module k2", module_case(lambda lib: nn(lib).MaxPool2d(2), img))
    add("max_pool3d k2", fn_case(lambda lib, x: F(lib).max_pool3d(x, 2), vol))
    add(
        "max_pool3d k2 indices",
        fn_case(lambda lib, x: F(lib).max_pool3d(x, 2, return_indices=True), vol),
    )
    add("avg_pool1d k2", fn_case(lambda lib, x: F(lib).avg_pool1d(x, 2), seq))
    add("avg_pool2d k2", fn_case(lambda lib, x: F(lib).avg_pool2d(x, 2), img))
    add("avg_pool2d k3 s2 p1", fn_case(lambda lib, x: F(lib).avg_pool2d(x, 3, 2, 1), img))
    add("avg_pool3d k2", fn_case(lambda lib, x: F(lib).avg_pool3d(x, 2), vol))
    add("adaptive_avg_pool1d 4", fn_case(lambda lib, x: F(lib).adaptive_avg_pool1d(x, 4), seq))
    add("adaptive_avg_pool2d 1", fn_case(lambda lib, x: F(lib).adaptive_avg_pool2d(x, 1), img))
    add("adaptive_avg_pool2d 3", fn_case(lambda lib, x: F(lib).adaptive_avg_pool2d(x, 3), img))
    add("adaptive_avg_pool3d 2", fn_case(lambda lib, x: F(lib).adaptive_avg_pool3d(x, 2), vol))
    add("adaptive_max_pool1d 4", fn_case(lambda lib, x: F(lib).adaptive_max_pool1d(x, 4), seq))
    add("adaptive_max_pool2d 3", fn_case(lambda lib, x: F(lib).adaptive_max_pool2d(x, 3), img))
    add(
        "adaptive_max_pool2d 3 indices",
        fn_case(lambda lib, x: F(lib).adaptive_max_pool2d(x, 3, return_indices=True), img),
    )
    add("adaptive_max_pool3d 2", fn_case(lambda lib, x: F(lib).adaptive_max_pool3d(x, 2), vol))
    # convolutions
    add("Conv1d k3 p1", module_case(lambda lib: nn(lib).Conv1d(seq[1], seq[1], 3, padding=1), seq))
    add("Conv2d k3 p1", module_case(lambda lib: nn(lib).Conv2d(C, C, 3, padding=1), img))
    # normalization
    add("BatchNorm2d train", module_case(lambda lib: nn(lib).BatchNorm2d(C), img))
    add("BatchNorm1d train", module_case(lambda lib: nn(lib).BatchNorm1d(K), mat))
    add("LayerNorm", module_case(lambda lib: nn(lib).LayerNorm(K), mat))
    add("layer_norm fn", fn_case(lambda lib, x: F(lib).layer_norm(x, (K,)), mat))
    add("GroupNorm", module_case(lambda lib: nn(lib).GroupNorm(C if C < 4 else 4, C), img))
    # embedding
    add("Embedding", module_case(lambda lib: nn(lib).Embedding(100, K), (R,), x_kind=100))
    # losses
    tgt = ("int", (R,), K)
    add("cross_entropy", fn_case(lambda lib, x, t: F(lib).cross_entropy(x, t), mat, tgt))
    add(
        "nll_loss(log_softmax)",
        fn_case(lambda lib, x, t: F(lib).nll_loss(F(lib).log_softmax(x, -1), t), mat, tgt),
    )
    add("mse_loss", fn_case(lambda lib, x, y: F(lib).mse_loss(x, y), mat, ("const", mat)))
    add(
        "binary_cross_entropy(sigmoid)",
        fn_case(
            lambda lib, x, y: F(lib).binary_cross_entropy(lib.sigmoid(x), (y > 0).float()),
            mat,
            ("const", mat),
        ),
    )
    add(
        "bce_with_logits",
        fn_case(
            lambda lib, x, y: F(lib).binary_cross_entropy_with_logits(x, (y > 0).float()),
            mat,
            ("const", mat),
        ),
    )
    # softmax, dropout, activations
    add("softmax", fn_case(lambda lib, x: lib.softmax(x, -1), mat))
    add("log_softmax", fn_case(lambda lib, x: F(lib).log_softmax(x, -1), mat))
    add("dropout p0.1", fn_case(lambda lib, x: F(lib).dropout(x, 0.1, training=True), mat))
    add("relu", fn_case(lambda lib, x: lib.relu(x), mat))
    add("gelu", fn_case(lambda lib, x: F(lib).gelu(x), mat))
    add("add", fn_case(lambda lib, x, y: x + y, mat, mat))
    add("mul scalar", fn_case(lambda lib, x: x * 0.5, mat))
    # indexing
    add("getitem int", fn_case(lambda lib, x: x[1], mat))
    add("getitem slices", fn_case(lambda lib, x: x[1:5, 2:9], mat))
    add("getitem tensor", fn_case(lambda lib, x, i: x[i], mat, ("int", (5,), R)))
    add("getitem bool mask", fn_case(lambda lib, x, m: x[m], mat, ("bool", mat)))
    add("setitem int", setitem_case(mat, "int"))
    add("setitem slice", setitem_case(mat, "slice"))
    add("setitem tensor", setitem_case(mat, "tensor"))
    # joining and splitting
    add("cat 3 dim0", fn_case(lambda lib, a, b, d: lib.cat([a, b, d], 0), mat, mat, mat))
    add("stack 3", fn_case(lambda lib, a, b, d: lib.stack([a, b, d]), mat, mat, mat))
    add("split 4 [0]", fn_case(lambda lib, x: lib.split(x, 4, dim=1)[0], mat))
    add("chunk 2 [1]", fn_case(lambda lib, x: x.chunk(2, 1)[1], mat))
    # views
    add("reshape", fn_case(lambda lib, x: x.reshape(-1), mat))
    add("view", fn_case(lambda lib, x: x.view(R * 2, K // 2), mat))
    add("permute", fn_case(lambda lib, x: x.permute(0, 2, 3, 1), img))
    add("transpose", fn_case(lambda lib, x: x.transpose(0, 1), mat))
    add("transpose.contiguous", fn_case(lambda lib, x: x.transpose(0, 1).contiguous(), mat))
    add("unsqueeze+expand", fn_case(lambda lib, x: x.unsqueeze(0).expand(3, R, K), mat))
    # reductions
    add("sum all", fn_case(lambda lib, x: x.sum(), mat))
    add("sum dim", fn_case(lambda lib, x: x.sum(1), mat))
    add("mean dim keepdim", fn_case(lambda lib, x: x.mean(-1, keepdim=True), mat))
    add("max dim", fn_case(lambda lib, x: x.max(1)[0], mat))
    add("amax dim", fn_case(lambda lib, x: x.amax(1), mat))
    add("var dim", fn_case(lambda lib, x: x.var(1), mat))
    # selection
    add("where", fn_case(lambda lib, m, a, b: lib.where(m, a, b), ("bool", mat), mat, mat))
    add("masked_fill", fn_case(lambda lib, x, m: x.masked_fill(m, 0.0), mat, ("bool", mat)))
    # products
    add("matmul", fn_case(lambda lib, a, b: a @ b, mat, (K, R)))
    add("bmm", fn_case(lambda lib, a, b: lib.bmm(a, b), (4, R, K), (4, K, R)))
    add("linear fn", fn_case(lambda lib, x, w, b: F(lib).linear(x, w, b), mat, (R, K), (R,)))
    add("Linear module", module_case(lambda lib: nn(lib).Linear(K, R), mat))
    # modules and training plumbing
    width = 16 if small else 256
    add("Sequential 4x(Linear+ReLU)", mlp_case(width, 8 if small else 64))
    add("SGD step momentum (10 params)", optim_case("SGD", width, lr=0.1, momentum=0.9))
    add("Adam step (10 params)", optim_case("Adam", width, lr=1e-3))
    add("AdamW step (10 params)", optim_case("AdamW", width, lr=1e-3, weight_decay=0.01))
    add("zero_grad (10 params)", zero_grad_case(width))
    add("clip_grad_norm_ (10 params)", clip_case(width))
    return c


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _check(name, od, ot):
    """Forward outputs agree (a benchmark of the wrong thing is worthless)."""
    if od is None or ot is None or "dropout" in name:
        return ""
    try:
        a = od.detach().numpy() if hasattr(od, "detach") else None
        b = ot.detach().numpy() if hasattr(ot, "detach") else None
        if a is None or b is None:
            return ""
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-4, atol=1e-5):
            return " MISMATCH"
    except Exception as e:  # noqa: BLE001
        return f" check:{type(e).__name__}"
    return ""


def time_case(fd, ft, budget, samples=15, block=3):
    """Median (wall, cpu) seconds per call of each, interleaved in blocks of samples."""
    for _ in range(3):
        fd(), ft()
    t0 = time.perf_counter()
    for _ in range(5):
        fd(), ft()
    per = (time.perf_counter() - t0) / 10
    inner = max(1, int(0.002 / per))
    total = max(4, int(budget / (2 * per * inner * block)))
    res = {"d": ([], []), "t": ([], [])}
    for _ in range(min(samples, total)):
        for k, f in (("d", fd), ("t", ft)):
            for b in range(block):
                c0, w0 = time.process_time(), time.perf_counter()
                for _ in range(inner):
                    f()
                w1, c1 = time.perf_counter(), time.process_time()
                if b:
                    res[k][0].append((w1 - w0) / inner)
                    res[k][1].append((c1 - c0) / inner)
    return {k: (float(np.median(w)), float(np.median(cc))) for k, (w, cc) in res.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="comma-separated substrings of case names")
    ap.add_argument("--size", default="both", choices=["small", "medium", "both"])
    ap.add_argument("--budget", type=float, default=0.25, help="seconds per case")
    ap.add_argument("--forward", action="store_true", help="time the forward alone")
    args = ap.parse_args()
    global FORWARD_ONLY
    FORWARD_ONLY = args.forward
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    _lim = threadpool_limits(limits=1, user_api="blas")  # noqa: F841
    import numba

    numba.set_num_threads(1)
    mode = "forward only" if FORWARD_ONLY else "forward + backward"
    aff = sorted(os.sched_getaffinity(0))
    print(f"# {mode}; torch {torch.__version__}, threads 1; affinity {aff}")
    print(f"# load average before: {_loadavg()}")
    sizes = ["small", "medium"] if args.size == "both" else [args.size]
    only = [s for s in args.only.split(",") if s]
    rows = []
    t_start = time.perf_counter()
    c_start = time.process_time()
    for size in sizes:
        for name, make in _cases(size):
            if only and not any(s in name for s in only):
                continue
            if FORWARD_ONLY and any(w in name for w in ("step (", "zero_grad (", "clip_grad")):
                continue
            try:
                fd, ft = make(descent), make(torch)
                flag = _check(name, fd(), ft())
                m = time_case(fd, ft, args.budget)
                (dw, dc), (tw, tc) = m["d"], m["t"]
                rows.append((dw / tw, name, dw * 1e6, tw * 1e6, dc / dw, tc / tw, flag))
            except Exception as e:  # noqa: BLE001
                rows.append((float("inf"), name, float("nan"), float("nan"), 0, 0, ""))
                print(f"# {name}: {type(e).__name__}: {str(e)[:150]}")
    print(f"{'case':<44}{'descent us':>11}{'torch us':>10}{'ratio':>7}{'cpu/wall d,t':>14}")
    for ratio, name, d, t, cd, ct, flag in sorted(rows, key=lambda r: -r[0]):
        print(f"{name:<44}{d:>11.1f}{t:>10.1f}{ratio:>7.2f}{cd:>8.2f}{ct:>6.2f}{flag}")
    wall = time.perf_counter() - t_start
    print(
        f"# {len(rows)} cases in {wall:.0f} s (cpu/wall "
        f"{(time.process_time() - c_start) / wall:.2f}); load average after: {_loadavg()}"
    )


if __name__ == "__main__":
    main()
