"""Where the eager baby-gpt step goes, op by op: descent against PyTorch eager.

descent: every `Function.forward` / `backward` timed with perf_counter (wrappers installed for
the timed steps only, then removed), plus the engine's deferred slice gradients
(`_Slices.value`, the qkv gradient's assembly); what the forward and backward phases spend
outside the ops is the module, dispatch and engine Python. PyTorch: torch.profiler's self CPU
time per aten op over the same steps. (Forward and backward only: the optimizer's and clip's
ops are in their phases.) Both are grouped into the step's parts (products,
attention, GELU, layer norm, ...) side by side, in ms a step. The phases (forward, backward,
clip, optimizer) are timed first without wrappers or profiler, interleaved in blocks.

The wrappers add ~1 us a call and the profiler more (PyTorch's step runs slower under it):
read the per-op figures as shares, the unwrapped phases as the times.

Run: python benchmarks/eager_ops.py [--threads 2] [--steps 20]
"""

from __future__ import annotations

import argparse
import collections
import functools
import time

import _common  # first: re-execs without OPENBLAS_* tuning variables
import numpy as np

import descent
from descent.models import GPT, PRESETS, GPTConfig
from descent.optim import clip_grad_norm_

# (part, descent op-name prefixes, PyTorch aten-name substrings): each op goes to the first
# part whose list matches; the rest are summed as "other ops"
GROUPS = [
    ("matrix products (Linear)", ("Linear.",), ("aten::mm", "aten::addmm", "aten::bmm")),
    ("attention", ("ScaledDotProductAttention.",), ("scaled_dot_product",)),
    ("qkv gradient's assembly", ("[engine] _Slices",), ("aten::cat",)),
    ("GELU", ("Gelu.",), ("aten::gelu",)),
    ("layer norm", ("LayerNorm.",), ("layer_norm",)),
    ("adds (residual, accumulation)", ("Add.",), ("aten::add",)),
    ("cross-entropy", ("SoftmaxCrossEntropy.", "CrossEntropy."), ("softmax", "nll_loss")),
    ("embeddings", ("Embedding.",), ("embedding",)),
]


def group_times(ours: dict, theirs: dict) -> list[tuple[str, float, float]]:
    """[(part, descent ms, PyTorch ms)] from {op name: ms a step} dicts, in GROUPS' order,
    then "other ops" (whatever no part claimed)."""
    rows = {name: [0.0, 0.0] for name, _, _ in GROUPS}
    rows["other ops"] = [0.0, 0.0]
    for side, table in ((0, ours), (1, theirs)):
        for op, ms in table.items():
            part = "other ops"
            for name, prefixes, subs in GROUPS:
                keys = prefixes if side == 0 else subs
                if op.startswith(keys) if side == 0 else any(s in op for s in keys):
                    part = name
                    break
            rows[part][side] += ms
    return [(name, d, t) for name, (d, t) in rows.items()]


def descent_op_times(step, steps: int) -> dict:
    """{op: ms a step} over `steps` calls of step(i), every Function subclass's forward and
    backward wrapped (and unwrapped afterwards), and the engine's `_Slices.value`."""
    from descent import autograd_backward as engine
    from descent.autograd import Function

    acc: dict = collections.defaultdict(float)
    pc = time.perf_counter
    installed = []

    def wrap(cls, meth, key):
        f = cls.__dict__[meth]

        @functools.wraps(f)
        def timed(self, *a, **k):
            t0 = pc()
            try:
                return f(self, *a, **k)
            finally:
                acc[key] += pc() - t0

        setattr(cls, meth, timed)
        installed.append((cls, meth, f))

    seen, stack = set(), [Function]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub in seen:
                continue
            seen.add(sub)
            stack.append(sub)
            for meth in ("forward", "backward"):
                f = sub.__dict__.get(meth)
                if f is not None and not isinstance(f, (staticmethod, classmethod)):
                    wrap(sub, meth, f"{sub.__name__}.{meth}")
    wrap(engine._Slices, "value", "[engine] _Slices.value")
    try:
        for i in range(steps):
            step(i)
    finally:
        for cls, meth, f in reversed(installed):
            setattr(cls, meth, f)
    return {k: v / steps * 1e3 for k, v in acc.items()}


def torch_op_times(step, steps: int) -> dict:
    """{aten op: ms a step} of self CPU time under torch.profiler over `steps` calls."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(steps):
            step(i)
    return {e.key: e.self_cpu_time_total / 1e3 / steps for e in prof.key_averages()}


def phases(model, opt, x, y, clip, out: list):
    """One step; appends (forward, backward, clip, optimizer, step) seconds to out."""
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = model(x, y)[1]
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    clip(model.parameters(), 1.0)
    t3 = time.perf_counter()
    opt.step()
    loss.item()
    t4 = time.perf_counter()
    out.append((t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0))


def main(argv=None) -> None:
    import torch
    from _torch_gpt import torch_optimizer
    from gpt_step import torch_twin

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per contestant")
    ap.add_argument("--preset", default="baby-gpt")
    args = ap.parse_args(argv)
    blas, threads = _common.setup_threads(args.threads)
    torch.set_num_threads(threads)
    _common.print_machine(blas, threads)

    p = PRESETS[args.preset]
    cfg = GPTConfig(
        vocab_size=65,
        block_size=p["block_size"],
        n_layer=p["n_layer"],
        n_head=p["n_head"],
        n_embd=p["n_embd"],
        dropout=0.0,
        bias=p["bias"],
    )
    lr, betas, B = p["learning_rate"], (p["beta1"], p["beta2"]), p["batch_size"]
    rng = np.random.default_rng(0)
    pool = [rng.integers(0, 65, size=(2, B, cfg.block_size), dtype=np.int64) for _ in range(8)]
    descent.manual_seed(1337)
    dm = GPT(cfg)
    tm = torch_twin(dm)
    dopt = dm.configure_optimizers(0.1, lr, betas)
    topt = torch_optimizer(tm, lr, betas, 0.1)
    dbatch = [(descent.tensor(b[0]), descent.tensor(b[1])) for b in pool]
    tbatch = [(torch.from_numpy(b[0]), torch.from_numpy(b[1])) for b in pool]

    def dstep(i, out=None):
        phases(dm, dopt, *dbatch[i % 8], clip_grad_norm_, [] if out is None else out)

    def tstep(i, out=None):
        phases(tm, topt, *tbatch[i % 8], torch.nn.utils.clip_grad_norm_, [] if out is None else out)

    for i in range(3):
        dstep(i)
        tstep(i)
    dt, tt = [], []
    for block in range(max(1, args.steps // 4)):  # blocks of 4, the first step untimed
        for fn, out in ((dstep, dt), (tstep, tt)) if block % 2 == 0 else ((tstep, tt), (dstep, dt)):
            for j in range(4):
                fn(4 * block + j, out if j else None)
    dph = np.median(np.array(dt), axis=0) * 1e3
    tph = np.median(np.array(tt), axis=0) * 1e3
    print(f"\nphases, ms (median of {len(dt)} steps each, interleaved):")
    print(
        f"  {'':12s} {'forward':>9s} {'backward':>9s} {'clip':>9s} {'optimizer':>9s} {'step':>9s}"
    )
    for name, ph in (("descent", dph), ("PyTorch", tph)):
        print(f"  {name:12s} " + " ".join(f"{v:9.3f}" for v in ph))
    print(f"  descent / PyTorch step: {dph[4] / tph[4]:.3f}")

    def dfb(i):  # the ops of forward and backward only (the optimizer's would mix in)
        dm.zero_grad(set_to_none=True)
        dm(*dbatch[i % 8])[1].backward()

    def tfb(i):
        tm.zero_grad(set_to_none=True)
        tm(*tbatch[i % 8])[1].backward()

    ours = descent_op_times(dfb, args.steps)
    theirs = torch_op_times(tfb, args.steps)
    fwd = sum(v for k, v in ours.items() if k.endswith(".forward"))
    bwd = sum(v for k, v in ours.items() if not k.endswith(".forward"))
    print(
        "\nforward and backward by part, ms a step (descent: wrapped ops; PyTorch: profiler "
        "self CPU)"
    )
    print(f"  {'part':32s} {'descent':>9s} {'PyTorch':>9s}")
    for name, d, t in group_times(ours, theirs):
        print(f"  {name:32s} {d:9.3f} {t:9.3f}")
    print(
        f"  descent forward outside its ops (modules, dispatch): {dph[0] - fwd:.3f} ms; "
        f"backward outside its ops (the engine): {dph[1] - bwd:.3f} ms (unwrapped phases "
        "minus wrapped ops)"
    )
    print("\ndescent ops, ms a step:")
    for k, v in sorted(ours.items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {k:45s} {v:8.3f}")
    print("\nPyTorch ops (self CPU), ms a step:")
    for k, v in sorted(theirs.items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {k:45s} {v:8.3f}")


if __name__ == "__main__":
    main()
