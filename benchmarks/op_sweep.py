"""Op sweep: forward + backward of common layers and ops, descent eager vs PyTorch eager.

Each case is written once against the PyTorch API and run with `lib = descent` and
`lib = torch` (descent is used as `import descent as torch`), on the same float32 inputs, in
training mode, at shapes taken from real models: ResNet-18 on 32x32 CIFAR batches, a 2-layer
LSTM (hidden 256, sequence 64, batch 32), a transformer block of width 256. One call is the
forward, then `backward(gy)` with a fixed upstream gradient (or the optimizer's step). Both
libraries run interleaved in the same process at the same thread count (block medians,
`_common.time_interleaved`); the table is sorted by ratio, worst first, and the load average
is printed before and after (the machine may be shared: ratios within one run are what count).

Run (one thread, pinned):
    taskset -c 0 python benchmarks/op_sweep.py [--threads 1] [--budget 0.6] [--only conv]
"""

from __future__ import annotations

import argparse
import os
import time

import _common  # first: re-execs without OPENBLAS_* tuning variables
import numpy as np
import torch

import descent

RNG = np.random.default_rng(0)


def _arr(*shape, lo=None, hi=None):
    """A float32 array of standard normals (or uniform in [lo, hi))."""
    if lo is not None:
        return RNG.uniform(lo, hi, shape).astype(np.float32)
    return RNG.standard_normal(shape, dtype=np.float32)


def _leaf(lib, a, grad=True):
    """`a` as a leaf tensor of `lib` (a copy, so the libraries never share memory)."""
    return lib.tensor(np.array(a), requires_grad=grad)


def _fwd_bwd(lib, make_out, inputs):
    """A step that runs make_out(*inputs) and backpropagates a fixed random gradient."""
    holder = {}

    def step():
        for t in inputs:
            t.grad = None
        out = make_out(*inputs)
        if isinstance(out, tuple):
            out = out[0]
        gy = holder.get("gy")
        if gy is None:
            gy = holder["gy"] = lib.tensor(_arr(*out.shape))
        out.backward(gy)

    return step


def module_case(build, x_shape, x_kind="normal", grad_x=True):
    """A case that applies the module build(lib) to one input of x_shape."""

    def make(lib):
        m = build(lib)
        m.train()
        if x_kind == "normal":
            x = _leaf(lib, _arr(*x_shape), grad_x)
        else:  # integer indices in [0, x_kind)
            x = lib.tensor(np.random.default_rng(1).integers(0, x_kind, x_shape))
        params = list(m.parameters())

        def step():
            for p in params:
                p.grad = None
            if grad_x:
                x.grad = None
            out = m(x)
            if isinstance(out, tuple):
                out = out[0]
            gy = step.__dict__.get("gy")
            if gy is None:
                gy = step.gy = lib.tensor(_arr(*out.shape))
            out.backward(gy)

        return step

    return make


def fn_case(fn, *specs):
    """A case computing fn(lib, *tensors); specs: shapes (differentiable float inputs),
    ('int', shape, high) integer tensors, ('bool', shape) masks, or ('const', shape)."""

    def make(lib):
        rng = np.random.default_rng(2)
        ins, grads = [], []
        for s in specs:
            if isinstance(s, tuple) and s and s[0] == "int":
                ins.append(lib.tensor(rng.integers(0, s[2], s[1])))
            elif isinstance(s, tuple) and s and s[0] == "bool":
                ins.append(lib.tensor(rng.random(s[1]) < 0.3))
            elif isinstance(s, tuple) and s and s[0] == "const":
                ins.append(lib.tensor(_arr(*s[1])))
            else:
                t = _leaf(lib, _arr(*s))
                ins.append(t)
                grads.append(t)
        return _fwd_bwd(lib, lambda *a: fn(lib, *a), ins) if grads else (lambda: fn(lib, *ins))

    return make


def no_grad_case(fn, *specs):
    """Like fn_case, but fn runs without gradients (topk/sort as used in sampling)."""

    def make(lib):
        ins = [_leaf(lib, _arr(*s), False) for s in specs]

        def step():
            with lib.no_grad():
                fn(lib, *ins)

        return step

    return make


RESNET18_SHAPES = (
    [(64, 3, 3, 3), (64,), (64,)]
    + [(64, 64, 3, 3), (64,), (64,)] * 4
    + [(128, 64, 3, 3), (128,), (128,), (128, 128, 3, 3), (128,), (128,), (128, 64, 1, 1),
       (128,), (128,), (128, 128, 3, 3), (128,), (128,), (128, 128, 3, 3), (128,), (128,)]
    + [(256, 128, 3, 3), (256,), (256,), (256, 256, 3, 3), (256,), (256,), (256, 128, 1, 1),
       (256,), (256,), (256, 256, 3, 3), (256,), (256,), (256, 256, 3, 3), (256,), (256,)]
    + [(512, 256, 3, 3), (512,), (512,), (512, 512, 3, 3), (512,), (512,), (512, 256, 1, 1),
       (512,), (512,), (512, 512, 3, 3), (512,), (512,), (512, 512, 3, 3), (512,), (512,)]
    + [(10, 512), (10,)]
)  # fmt: skip


def optim_case(name, **kw):
    """One optimizer step over ResNet-18's 62 parameters (11.2 M floats), gradients set."""

    def make(lib):
        rng = np.random.default_rng(3)
        params = []
        for s in RESNET18_SHAPES:
            p = lib.nn.Parameter(lib.tensor(rng.standard_normal(s, dtype=np.float32) * 0.05))
            p.grad = lib.tensor(rng.standard_normal(s, dtype=np.float32) * 0.01)
            params.append(p)
        opt = getattr(lib.optim, name)(params, **kw)
        return opt.step

    return make


def clip_case(make_params=RESNET18_SHAPES):
    def make(lib):
        rng = np.random.default_rng(4)
        params = []
        for s in make_params:
            p = lib.nn.Parameter(lib.tensor(rng.standard_normal(s, dtype=np.float32)))
            p.grad = lib.tensor(rng.standard_normal(s, dtype=np.float32))
            params.append(p)
        return lambda: lib.nn.utils.clip_grad_norm_(params, 1.0)

    return make


def _cases():
    """(name, make(lib) -> step) pairs."""
    nn = lambda lib: lib.nn  # noqa: E731
    F = lambda lib: lib.nn.functional  # noqa: E731
    B = 32  # CIFAR batch
    c = []
    add = lambda name, make: c.append((name, make))  # noqa: E731

    # --- convolutions (ResNet-18 on 32x32) ---
    add(
        "conv2d 3x3 s1 64->64 32x32 b32",
        module_case(lambda lib: nn(lib).Conv2d(64, 64, 3, padding=1, bias=False), (B, 64, 32, 32)),
    )
    add(
        "conv2d 3x3 s1 3->64 32x32 b32 (stem)",
        module_case(
            lambda lib: nn(lib).Conv2d(3, 64, 3, padding=1, bias=False),
            (B, 3, 32, 32),
            grad_x=False,
        ),
    )
    add(
        "conv2d 3x3 s2 64->128 32x32 b32",
        module_case(lambda lib: nn(lib).Conv2d(64, 128, 3, 2, 1, bias=False), (B, 64, 32, 32)),
    )
    add(
        "conv2d 3x3 s1 256->256 8x8 b32",
        module_case(lambda lib: nn(lib).Conv2d(256, 256, 3, padding=1, bias=False), (B, 256, 8, 8)),
    )
    add(
        "conv2d 1x1 s2 64->128 32x32 b32",
        module_case(lambda lib: nn(lib).Conv2d(64, 128, 1, 2, bias=False), (B, 64, 32, 32)),
    )
    add(
        "conv2d 1x1 s1 128->256 16x16 b32",
        module_case(lambda lib: nn(lib).Conv2d(128, 256, 1), (B, 128, 16, 16)),
    )
    add(
        "conv2d depthwise 3x3 C=128 16x16 b32",
        module_case(
            lambda lib: nn(lib).Conv2d(128, 128, 3, padding=1, groups=128), (B, 128, 16, 16)
        ),
    )
    add(
        "conv2d 3x3 dilation 2 64->64 32x32 b16",
        module_case(lambda lib: nn(lib).Conv2d(64, 64, 3, padding=2, dilation=2), (16, 64, 32, 32)),
    )
    add(
        "conv1d k3 256->256 L128 b32",
        module_case(lambda lib: nn(lib).Conv1d(256, 256, 3, padding=1), (B, 256, 128)),
    )
    add(
        "conv1d depthwise k7 C=256 L128 b32",
        module_case(lambda lib: nn(lib).Conv1d(256, 256, 7, padding=3, groups=256), (B, 256, 128)),
    )
    add(
        "convT2d 4x4 s2 128->64 16->32 b32",
        module_case(lambda lib: nn(lib).ConvTranspose2d(128, 64, 4, 2, 1), (B, 128, 16, 16)),
    )
    add(
        "convT2d 3x3 s1 64->64 32x32 b16",
        module_case(lambda lib: nn(lib).ConvTranspose2d(64, 64, 3, 1, 1), (16, 64, 32, 32)),
    )
    add(
        "conv3d 3x3x3 32->32 16^3 b4",
        module_case(lambda lib: nn(lib).Conv3d(32, 32, 3, padding=1), (4, 32, 16, 16, 16)),
    )
    add(
        "convT3d 4^3 s2 32->16 8->16 b4",
        module_case(lambda lib: nn(lib).ConvTranspose3d(32, 16, 4, 2, 1), (4, 32, 8, 8, 8)),
    )

    # --- pooling ---
    add(
        "maxpool2d 2x2 C64 32x32 b32",
        module_case(lambda lib: nn(lib).MaxPool2d(2), (B, 64, 32, 32)),
    )
    add(
        "maxpool2d 3x3 s2 p1 C64 32x32 b32",
        module_case(lambda lib: nn(lib).MaxPool2d(3, 2, 1), (B, 64, 32, 32)),
    )
    add(
        "avgpool2d 2x2 C64 32x32 b32",
        module_case(lambda lib: nn(lib).AvgPool2d(2), (B, 64, 32, 32)),
    )
    add(
        "adaptiveavgpool2d 1 C512 4x4 b64",
        module_case(lambda lib: nn(lib).AdaptiveAvgPool2d(1), (64, 512, 4, 4)),
    )
    add(
        "adaptiveavgpool2d 7 C64 32x32 b32",
        module_case(lambda lib: nn(lib).AdaptiveAvgPool2d(7), (B, 64, 32, 32)),
    )

    # --- normalization ---
    add(
        "batchnorm2d C64 32x32 b32 train",
        module_case(lambda lib: nn(lib).BatchNorm2d(64), (B, 64, 32, 32)),
    )
    add(
        "batchnorm1d C256 b256 train", module_case(lambda lib: nn(lib).BatchNorm1d(256), (256, 256))
    )
    add(
        "batchnorm1d C64 L128 b32 train",
        module_case(lambda lib: nn(lib).BatchNorm1d(64), (B, 64, 128)),
    )
    add(
        "layernorm 256 (32x64 tokens)",
        module_case(lambda lib: nn(lib).LayerNorm(256), (B, 64, 256)),
    )
    add(
        "groupnorm 32 groups C128 16x16 b32",
        module_case(lambda lib: nn(lib).GroupNorm(32, 128), (B, 128, 16, 16)),
    )
    add(
        "instancenorm2d affine C64 32x32 b32",
        module_case(lambda lib: nn(lib).InstanceNorm2d(64, affine=True), (B, 64, 32, 32)),
    )

    # --- embeddings ---
    add(
        "embedding 50k x 256, 32x64 ids",
        module_case(lambda lib: nn(lib).Embedding(50000, 256), (B, 64), x_kind=50000, grad_x=False),
    )
    add(
        "embedding padding_idx 10k x 256",
        module_case(
            lambda lib: nn(lib).Embedding(10000, 256, padding_idx=0),
            (B, 64),
            x_kind=10000,
            grad_x=False,
        ),
    )
    add(
        "embeddingbag mean 10k x 128, 32x20",
        module_case(
            lambda lib: nn(lib).EmbeddingBag(10000, 128, mode="mean"),
            (B, 20),
            x_kind=10000,
            grad_x=False,
        ),
    )

    # --- recurrent ---
    add(
        "lstm 1 layer h256 T64 b32 batch_first",
        module_case(lambda lib: nn(lib).LSTM(128, 256, batch_first=True), (B, 64, 128)),
    )
    add(
        "lstm 2 layers h256 T64 b32 batch_first",
        module_case(
            lambda lib: nn(lib).LSTM(128, 256, num_layers=2, batch_first=True), (B, 64, 128)
        ),
    )
    add(
        "gru 1 layer h256 T64 b32 batch_first",
        module_case(lambda lib: nn(lib).GRU(128, 256, batch_first=True), (B, 64, 128)),
    )
    add(
        "gru 2 layers h256 T64 b32 batch_first",
        module_case(
            lambda lib: nn(lib).GRU(128, 256, num_layers=2, batch_first=True), (B, 64, 128)
        ),
    )

    # --- attention (width 256, 8 heads, 32 x 64 tokens) ---
    def mha(lib):
        m = nn(lib).MultiheadAttention(256, 8, batch_first=True)

        class Self(nn(lib).Module):
            def __init__(self):
                super().__init__()
                self.m = m

            def forward(self, x):
                return self.m(x, x, x, need_weights=False)[0]

        return Self()

    add("multiheadattention w256 h8 32x64", module_case(mha, (B, 64, 256)))
    add(
        "sdpa b32 h8 T64 d32",
        fn_case(
            lambda lib, q, k, v: F(lib).scaled_dot_product_attention(q, k, v),
            (B, 8, 64, 32),
            (B, 8, 64, 32),
            (B, 8, 64, 32),
        ),
    )
    add(
        "sdpa causal b32 h8 T64 d32",
        fn_case(
            lambda lib, q, k, v: F(lib).scaled_dot_product_attention(q, k, v, is_causal=True),
            (B, 8, 64, 32),
            (B, 8, 64, 32),
            (B, 8, 64, 32),
        ),
    )
    add(
        "sdpa b8 h8 T256 d64 causal",
        fn_case(
            lambda lib, q, k, v: F(lib).scaled_dot_product_attention(q, k, v, is_causal=True),
            (8, 8, 256, 64),
            (8, 8, 256, 64),
            (8, 8, 256, 64),
        ),
    )

    # --- softmax and losses ---
    add("softmax last dim 32k, 64 rows", fn_case(lambda lib, x: lib.softmax(x, -1), (64, 32000)))
    add(
        "log_softmax last dim 32k, 64 rows",
        fn_case(lambda lib, x: F(lib).log_softmax(x, -1), (64, 32000)),
    )
    add(
        "cross_entropy label_smoothing 0.1, 512x32k",
        fn_case(
            lambda lib, x, t: F(lib).cross_entropy(x, t, label_smoothing=0.1),
            (512, 32000),
            ("int", (512,), 32000),
        ),
    )
    add(
        "cross_entropy 2048x1000",
        fn_case(lambda lib, x, t: F(lib).cross_entropy(x, t), (2048, 1000), ("int", (2048,), 1000)),
    )
    add(
        "nll_loss 2048x1000",
        fn_case(lambda lib, x, t: F(lib).nll_loss(x, t), (2048, 1000), ("int", (2048,), 1000)),
    )

    # --- resampling, padding, unfold ---
    add(
        "interpolate nearest x2 C64 16->32 b32",
        fn_case(
            lambda lib, x: F(lib).interpolate(x, scale_factor=2, mode="nearest"), (B, 64, 16, 16)
        ),
    )
    add(
        "interpolate bilinear x2 C64 16->32 b32",
        fn_case(
            lambda lib, x: F(lib).interpolate(
                x, scale_factor=2, mode="bilinear", align_corners=False
            ),
            (B, 64, 16, 16),
        ),
    )
    add(
        "pad reflect 1 C64 32x32 b32",
        fn_case(lambda lib, x: F(lib).pad(x, (1, 1, 1, 1), mode="reflect"), (B, 64, 32, 32)),
    )
    add(
        "unfold 3x3 C64 16x16 b32",
        fn_case(lambda lib, x: F(lib).unfold(x, 3, padding=1), (B, 64, 16, 16)),
    )
    add(
        "fold 3x3 C64 16x16 b32",
        fn_case(lambda lib, x: F(lib).fold(x, (16, 16), 3, padding=1), (B, 64 * 9, 256)),
    )

    # --- indexing and its backward (scatter-adds) ---
    add(
        "index_select dim0 10k x 256, 4096 ids",
        fn_case(lambda lib, w, i: lib.index_select(w, 0, i), (10000, 256), ("int", (4096,), 10000)),
    )
    add(
        "gather dim1 512x1000, 512x10",
        fn_case(lambda lib, x, i: lib.gather(x, 1, i), (512, 1000), ("int", (512, 10), 1000)),
    )
    add(
        "scatter_add dim0 4096x256 -> 1000",
        fn_case(
            lambda lib, s, i: lib.zeros(1000, 256).scatter_add(0, i, s),
            (4096, 256),
            ("int", (4096, 256), 1000),
        ),
    )
    add(
        "index_add dim0 4096x256 -> 1000",
        fn_case(
            lambda lib, s, i: lib.zeros(1000, 256).index_add(0, i, s),
            (4096, 256),
            ("int", (4096,), 1000),
        ),
    )
    add(
        "advanced index x[idx] 10k x 256",
        fn_case(lambda lib, w, i: w[i], (10000, 256), ("int", (4096,), 10000)),
    )

    # --- scans, order, selection ---
    add("cumsum dim1 256x4096", fn_case(lambda lib, x: lib.cumsum(x, 1), (256, 4096)))
    add(
        "topk k=10 of 32k, 64 rows (no grad)",
        no_grad_case(lambda lib, x: lib.topk(x, 10, -1), (64, 32000)),
    )
    add("topk k=10 of 32k, 64 rows", fn_case(lambda lib, x: lib.topk(x, 10, -1)[0], (64, 32000)))
    add("sort last dim 4096, 256 rows", fn_case(lambda lib, x: lib.sort(x, -1)[0], (256, 4096)))
    add(
        "where 32x64x256",
        fn_case(
            lambda lib, m, a, b: lib.where(m, a, b),
            ("bool", (B, 64, 256)),
            (B, 64, 256),
            (B, 64, 256),
        ),
    )
    add(
        "masked_fill -inf attn 32x8x64x64",
        fn_case(
            lambda lib, x, m: x.masked_fill(m, float("-inf")).softmax(-1),
            (B, 8, 64, 64),
            ("bool", (64, 64)),
        ),
    )
    add(
        "dropout p0.1 train 32x64x256",
        fn_case(lambda lib, x: F(lib).dropout(x, 0.1, training=True), (B, 64, 256)),
    )

    # --- optimizers (ResNet-18 parameter list) and clipping ---
    add("clip_grad_norm_ resnet18", clip_case())
    add(
        "SGD momentum 0.9 step resnet18", optim_case("SGD", lr=0.1, momentum=0.9, weight_decay=5e-4)
    )
    add("Adam step resnet18", optim_case("Adam", lr=1e-3))
    add("AdamW step resnet18", optim_case("AdamW", lr=1e-3, weight_decay=0.01))
    add("RMSprop step resnet18", optim_case("RMSprop", lr=1e-3))
    return c


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (both)")
    ap.add_argument(
        "--budget",
        type=float,
        default=0.6,
        help="seconds of timed calls per library per case (sets the repeats)",
    )
    ap.add_argument("--only", default="", help="run only cases whose name contains this")
    args = ap.parse_args()
    blas, threads = _common.setup_threads(args.threads)
    import numba

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    _common.print_machine(blas, threads)
    print(f"# load average before: {_loadavg()}")
    rows = []
    t_start = time.perf_counter()
    for name, make in _cases():
        if args.only and args.only not in name:
            continue
        try:
            fd, ft = make(descent), make(torch)
            fd(), ft()  # first calls: compile numba kernels, allocate
            t0 = time.perf_counter()
            fd(), ft()
            per = max(time.perf_counter() - t0, 1e-5)
            repeats = int(min(15, max(3, 2 * args.budget / per / 3)))
            med = _common.time_interleaved({"d": fd, "t": ft}, repeats=repeats, warmup=1,
                                           block=3)  # fmt: skip
            rows.append((med["d"] / med["t"], name, med["d"] * 1e3, med["t"] * 1e3))
        except Exception as e:  # a missing feature is a row, not the end of the sweep
            rows.append((float("inf"), name, float("nan"), float("nan")))
            print(f"# {name}: {type(e).__name__}: {str(e)[:120]}")
    rows.sort(key=lambda r: -r[0])
    print(f"{'case':<44}{'descent ms':>12}{'torch ms':>12}{'ratio':>8}")
    for ratio, name, d, t in rows:
        print(f"{name:<44}{d:>12.3f}{t:>12.3f}{ratio:>8.2f}")
    print(f"# {len(rows)} cases in {time.perf_counter() - t_start:.0f} s; "
          f"load average after: {_loadavg()}")  # fmt: skip


if __name__ == "__main__":
    main()
