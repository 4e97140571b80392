"""descent on a CUDA GPU vs PyTorch on the same GPU, same process: the `shakespeare-char` GPT.

Part 1 times one training iteration (forward, backward, gradient clipping, AdamW step) of the
`shakespeare-char` preset (6 layers, 6 heads, width 384, context 256, batch 64, dropout 0.2,
no biases; 10.7M parameters) for:

    descent float32 (fused kernels on, and off for comparison), descent autocast float16 +
    GradScaler, descent autocast bfloat16 (when CuPy + ml_dtypes support it);
    PyTorch eager in the same precisions (nanoGPT's code: SDPA attention, fused AdamW),
    and torch.compile of the same model.

and prints ms/iteration, descent / PyTorch eager (target <= 1.5 at equal precision) and
descent / torch.compile. Timing: warm-up iterations first (kernel compilation, cuBLAS handles),
then blocks of iterations between device synchronisations; the median block is reported. The
same pre-built batches (on the GPU) feed every contender. float32 matrix products are true
float32 in both libraries (no TF32: CuPy's default, and PyTorch's for matmul).

Part 2 trains the preset with descent (the faster precision of part 1 that works) toward its
best validation loss within a time budget, with the preset's schedule (warm-up 100, cosine to
1e-4 over 5000 iterations, AdamW lr 1e-3, betas (0.9, 0.99), wd 0.1, clip 1), evaluating every
`--eval-interval` iterations on `--eval-iters` batches per split, and prints the curve.
nanoGPT reports a best val loss of 1.4697 for this preset (about 3 minutes on an A100).

    PYTHONPATH=src python benchmarks/gpu.py --budget 300 --out OUTDIR

Data: --data, $DESCENT_DATA, .gpu_data/tinyshakespeare.txt in the repository (what
scripts/gpu_check.sh carries to the device machine), ../shared/data/tinyshakespeare.txt.
Without the text the timing runs on random tokens and the training part is skipped.
Exits with status 2 and a clear message on a machine without CUDA.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PRESET = dict(
    n_layer=6,
    n_head=6,
    n_embd=384,
    block_size=256,
    dropout=0.2,
    bias=False,
    batch_size=64,
    learning_rate=1e-3,
    min_lr=1e-4,
    warmup_iters=100,
    lr_decay_iters=5000,
    beta1=0.9,
    beta2=0.99,
    weight_decay=0.1,
    grad_clip=1.0,
)
NANOGPT_BEST_VAL = 1.4697


def find_data(arg: str | None) -> Path | None:
    cands = [arg, os.environ.get("DESCENT_DATA"), ROOT / ".gpu_data" / "tinyshakespeare.txt",
             ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"]  # fmt: skip
    for c in cands:
        if c and Path(c).is_file():
            return Path(c)
    return None


def load_tokens(path: Path | None):
    """(train ids, val ids, vocab size): characters, 90/10 split (nanoGPT's prepare.py)."""
    if path is None:
        rng = np.random.default_rng(0)
        ids = rng.integers(0, 65, 1_000_000)
        return ids[:900_000], ids[900_000:], 65
    text = path.read_text(encoding="utf-8")
    chars = sorted(set(text))
    lut = {c: i for i, c in enumerate(chars)}
    ids = np.fromiter((lut[c] for c in text), dtype=np.int64, count=len(text))
    n = int(0.9 * len(ids))
    return ids[:n], ids[n:], len(chars)


def sample_batch(ids: np.ndarray, rng: np.random.Generator, b: int, t: int):
    ix = rng.integers(0, len(ids) - t - 1, b)
    x = np.stack([ids[i : i + t] for i in ix])
    y = np.stack([ids[i + 1 : i + 1 + t] for i in ix])
    return x, y


def lr_at(it: int) -> float:
    """nanoGPT's schedule: linear warm-up, cosine decay to min_lr, then min_lr."""
    p = PRESET
    if it < p["warmup_iters"]:
        return p["learning_rate"] * (it + 1) / (p["warmup_iters"] + 1)
    if it > p["lr_decay_iters"]:
        return p["min_lr"]
    ratio = (it - p["warmup_iters"]) / (p["lr_decay_iters"] - p["warmup_iters"])
    return p["min_lr"] + 0.5 * (1 + math.cos(math.pi * ratio)) * (p["learning_rate"] - p["min_lr"])


def time_block(step, sync, warmup: int, block: int, reps: int) -> float:
    """Median ms/iteration over `reps` blocks of `block` iterations, after `warmup` ones."""
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(block):
            step()
        sync()
        times.append((time.perf_counter() - t0) * 1e3 / block)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------
# descent


DEV = "cuda"  # "cpu" under --smoke (a quick check of this script's code paths without a GPU)


def descent_setup(vocab: int):
    import descent
    from descent.models.gpt import GPT, GPTConfig

    p = PRESET
    descent.manual_seed(1337)
    descent.cuda.manual_seed(1337)
    cfg = GPTConfig(vocab_size=vocab, block_size=p["block_size"], n_layer=p["n_layer"],
                    n_head=p["n_head"], n_embd=p["n_embd"], dropout=p["dropout"],
                    bias=p["bias"])  # fmt: skip
    model = GPT(cfg).to(DEV)
    opt = model.configure_optimizers(p["weight_decay"], p["learning_rate"],
                                     (p["beta1"], p["beta2"]), DEV)  # fmt: skip
    return model, opt


def descent_step_fn(model, opt, batches, dtype):
    """One training iteration of descent: `dtype` None (float32), 'float16' or 'bfloat16'."""
    import descent
    from descent.optim import clip_grad_norm_

    low = dtype is not None
    scaler = descent.amp.GradScaler(DEV, enabled=dtype == "float16")
    params = [q for q in model.parameters() if q.requires_grad]
    state = {"i": 0, "loss": None}

    def step():
        x, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        with descent.autocast(DEV, dtype=dtype, enabled=low):
            _, loss = model(x, y)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        clip_grad_norm_(params, PRESET["grad_clip"])
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        state["loss"] = loss

    return step, state


def descent_compiled_step_fn(model, opt, batches):
    """The float32 iteration through `descent.compile` (issue 17): recorded on the first call,
    replayed afterwards (CuPy ElementwiseKernels for the fused elementwise chains)."""
    import descent
    from descent.optim import clip_grad_norm_

    params = [q for q in model.parameters() if q.requires_grad]
    state = {"i": 0, "loss": None}

    def raw(x, y):
        _, loss = model(x, y)
        loss.backward()
        clip_grad_norm_(params, PRESET["grad_clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    f = descent.compile(raw)

    def step():
        x, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        state["loss"] = f(x, y)

    return step, state, f


# ---------------------------------------------------------------------------------------------
# PyTorch (nanoGPT's model, written out here: descent's code never imports torch)


def torch_model(vocab: int):
    import torch
    import torch.nn as tnn
    from torch.nn import functional as TF

    p = PRESET
    c, nh, t, drop = p["n_embd"], p["n_head"], p["block_size"], p["dropout"]

    class Attn(tnn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = tnn.Linear(c, 3 * c, bias=False)
            self.c_proj = tnn.Linear(c, c, bias=False)
            self.resid = tnn.Dropout(drop)

        def forward(self, x):
            b, tt, _ = x.shape
            q, k, v = self.c_attn(x).split(c, dim=2)
            q, k, v = (z.view(b, tt, nh, c // nh).transpose(1, 2) for z in (q, k, v))
            y = TF.scaled_dot_product_attention(q, k, v, dropout_p=drop if self.training else 0,
                                                is_causal=True)  # fmt: skip
            return self.resid(self.c_proj(y.transpose(1, 2).reshape(b, tt, c)))

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = tnn.LayerNorm(c, bias=False), tnn.LayerNorm(c, bias=False)
            self.attn = Attn()
            self.mlp = tnn.Sequential(
                tnn.Linear(c, 4 * c, bias=False),
                tnn.GELU(),
                tnn.Linear(4 * c, c, bias=False),
                tnn.Dropout(drop),
            )

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(tnn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = tnn.Embedding(vocab, c), tnn.Embedding(t, c)
            self.drop = tnn.Dropout(drop)
            self.h = tnn.ModuleList([Block() for _ in range(p["n_layer"])])
            self.ln_f = tnn.LayerNorm(c, bias=False)
            self.lm_head = tnn.Linear(c, vocab, bias=False)
            self.wte.weight = self.lm_head.weight  # tied, as nanoGPT
            for n, w in self.named_parameters():
                if w.ndim >= 2:
                    std = 0.02 / math.sqrt(2 * p["n_layer"]) if n.endswith("c_proj.weight") or \
                        n.endswith("mlp.2.weight") else 0.02  # fmt: skip
                    tnn.init.normal_(w, 0.0, std)

        def forward(self, idx, targets):
            pos = torch.arange(idx.shape[1], device=idx.device)
            x = self.drop(self.wte(idx) + self.wpe(pos))
            for blk in self.h:
                x = blk(x)
            logits = self.lm_head(self.ln_f(x))
            return logits, TF.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    torch.manual_seed(1337)
    model = GPT().to(DEV)
    decay = [w for w in model.parameters() if w.ndim >= 2]
    other = [w for w in model.parameters() if w.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": p["weight_decay"]},
                             {"params": other, "weight_decay": 0.0}], lr=p["learning_rate"],
                            betas=(p["beta1"], p["beta2"]), fused=DEV == "cuda")  # fmt: skip
    return model, opt


def torch_step_fn(model, opt, batches, dtype):
    import torch

    tdt = {None: None, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    scaler = torch.amp.GradScaler(DEV, enabled=dtype == "float16")
    state = {"i": 0, "loss": None}

    def step():
        x, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        with torch.autocast(DEV, dtype=tdt or torch.float16, enabled=tdt is not None):
            _, loss = model(x, y)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), PRESET["grad_clip"])
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        state["loss"] = loss

    return step, state


# ---------------------------------------------------------------------------------------------
# Part 2: training descent within a time budget


def train_descent(train_ids, val_ids, vocab, dtype, seconds, eval_interval, eval_iters, log):
    import descent
    from descent.optim import clip_grad_norm_

    p = PRESET
    model, opt = descent_setup(vocab)
    scaler = descent.amp.GradScaler(DEV, enabled=dtype == "float16")
    params = [q for q in model.parameters() if q.requires_grad]
    rng = np.random.default_rng(1337)
    b, t = p["batch_size"], p["block_size"]

    def to_dev(xy):
        return tuple(descent.tensor(a, device=DEV) for a in xy)

    @descent.no_grad()
    def evaluate():
        model.eval()
        out = {}
        erng = np.random.default_rng(0)
        for split, ids in (("train", train_ids), ("val", val_ids)):
            losses = []
            for _ in range(eval_iters):
                x, y = to_dev(sample_batch(ids, erng, b, t))
                with descent.autocast(DEV, dtype=dtype, enabled=dtype is not None):
                    losses.append(model(x, y)[1])
            out[split] = float(np.mean([float(v.item()) for v in losses]))
        model.train()
        return out

    curve, t0, it = [], time.perf_counter(), 0
    train_time = 0.0
    while True:
        if it % eval_interval == 0:
            ev = evaluate()
            curve.append({"iter": it, "train": ev["train"], "val": ev["val"],
                          "train_seconds": round(train_time, 1)})  # fmt: skip
            log(
                f"  iter {it:5d}  train {ev['train']:.4f}  val {ev['val']:.4f}  "
                f"({train_time:6.1f} s training, {time.perf_counter() - t0:6.1f} s total)"
            )
        if time.perf_counter() - t0 > seconds or it >= p["lr_decay_iters"]:
            break
        ts = time.perf_counter()
        lr = lr_at(it)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = to_dev(sample_batch(train_ids, rng, b, t))
        with descent.autocast(DEV, dtype=dtype, enabled=dtype is not None):
            _, loss = model(x, y)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        clip_grad_norm_(params, p["grad_clip"])
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        it += 1
        if it % 100 == 0:
            descent.cuda.synchronize()  # a no-op on the CPU
        train_time += time.perf_counter() - ts
    return curve, it


# ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=300.0, help="seconds for the whole run")
    ap.add_argument("--train-seconds", type=float, default=None,
                    help="cap on part 2 (default: what the budget leaves)")  # fmt: skip
    ap.add_argument("--eval-interval", type=int, default=250)
    ap.add_argument("--eval-iters", type=int, default=20)
    ap.add_argument("--block", type=int, default=5, help="iterations per timed block")
    ap.add_argument("--reps", type=int, default=3, help="timed blocks per contender")
    ap.add_argument("--train-reserve", type=float, default=150.0,
                    help="seconds of the budget kept for part 2 (torch.compile is skipped "
                    "when it would eat into them)")  # fmt: skip
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--no-train", action="store_true", help="skip part 2")
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default=None, help="folder for gpu_bench.json")
    ap.add_argument("--smoke", action="store_true", help="tiny model on the CPU: a code check")
    args = ap.parse_args()
    global DEV
    if args.smoke:
        DEV = "cpu"
        PRESET.update(n_layer=1, n_head=2, n_embd=32, block_size=16, batch_size=4)
        args.no_compile = True
    t_start = time.perf_counter()

    def left() -> float:
        return args.budget - (time.perf_counter() - t_start)

    def log(msg: str) -> None:
        print(msg, flush=True)

    sys.path.insert(0, str(ROOT / "src"))
    import descent
    from descent import backend

    if not args.smoke and not descent.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA GPU visible through CuPy on this machine "
              "(descent.cuda.is_available() is False); run it on a GPU machine, e.g. with "
              "scripts/gpu_check.sh", file=sys.stderr)  # fmt: skip
        return 2
    import torch

    if not args.smoke and not torch.cuda.is_available():
        print("benchmarks/gpu.py: CuPy sees a GPU but PyTorch does not (CPU-only torch?); the "
              "comparison needs PyTorch with CUDA", file=sys.stderr)  # fmt: skip
        return 2

    cupy = backend.cupy_module()
    gpu_name = "cpu (smoke test)" if args.smoke else torch.cuda.get_device_name(0)
    cupy_version = getattr(cupy, "__version__", "-")
    log(f"GPU: {gpu_name}; CuPy {cupy_version}, PyTorch {torch.__version__}, NumPy "
        f"{np.__version__}, Python {platform.python_version()}")  # fmt: skip
    data = find_data(args.data)
    log(f"data: {data if data else 'none found: random tokens, no training part'}")
    train_ids, val_ids, vocab = load_tokens(data)
    p = PRESET
    rng = np.random.default_rng(0)
    host_batches = [sample_batch(train_ids, rng, p["batch_size"], p["block_size"])
                    for _ in range(8)]  # fmt: skip
    d_batches = [tuple(descent.tensor(a, device=DEV) for a in xy) for xy in host_batches]
    t_batches = [tuple(torch.tensor(a, device=DEV) for a in xy) for xy in host_batches]
    d_sync = descent.cuda.synchronize
    t_sync = torch.cuda.synchronize if DEV == "cuda" else (lambda: None)
    bf16 = backend.bfloat16_dtype() is not None
    results: dict = {"gpu": gpu_name, "preset": "shakespeare-char", "rows": []}
    kw = dict(block=args.block, reps=args.reps)

    # ---- part 1: ms/iteration ----------------------------------------------------------------
    log("\n== ms/iteration, shakespeare-char (B=64, T=256, 6x384, dropout 0.2) ==")
    rows = []
    modes = [(None, "float32"), ("float16", "float16 autocast")]
    if bf16:
        modes.append(("bfloat16", "bfloat16 autocast"))
    for dtype, label in modes:
        row = {"mode": label}
        try:
            model, opt = descent_setup(vocab)
            step, st = descent_step_fn(model, opt, d_batches, dtype)
            row["descent_ms"] = time_block(step, d_sync, warmup=3, **kw)
            row["descent_loss"] = float(st["loss"].item())
            if dtype is None:  # the same with the fused kernels off: what they buy
                prev = backend.set_fused_enabled(False)
                try:
                    row["descent_unfused_ms"] = time_block(step, d_sync, warmup=2, **kw)
                finally:
                    backend.set_fused_enabled(prev)
                del model, opt, step, st
                model, opt = descent_setup(vocab)
                step, st, f = descent_compiled_step_fn(model, opt, d_batches)
                tc0 = time.perf_counter()
                step()
                d_sync()
                row["descent_record_s"] = time.perf_counter() - tc0
                row["descent_compiled_ms"] = time_block(step, d_sync, warmup=2, **kw)
                row["descent_compiled_stats"] = dict(f.stats)
                del f
            del model, opt, step, st
        except Exception as e:  # report and go on to the other contenders
            row["descent_error"] = f"{type(e).__name__}: {e}"[:400]
            log(f"  descent {label}: FAILED {row['descent_error']}")
        if cupy is not None:
            cupy.get_default_memory_pool().free_all_blocks()
        try:
            tm, topt = torch_model(vocab)
            step, st = torch_step_fn(tm, topt, t_batches, dtype)
            row["torch_ms"] = time_block(step, t_sync, warmup=3, **kw)
            row["torch_loss"] = float(st["loss"].item())
            reserve = 0.0 if args.no_train else args.train_reserve
            if not args.no_compile and dtype != "bfloat16" and left() - reserve > 100:
                ct = torch.compile(tm)
                step, st = torch_step_fn(ct, topt, t_batches, dtype)
                tc0 = time.perf_counter()
                step()
                t_sync()
                row["compile_s"] = time.perf_counter() - tc0
                row["compile_ms"] = time_block(step, t_sync, warmup=2, **kw)
            del tm, topt, step, st
        except Exception as e:
            row["torch_error"] = f"{type(e).__name__}: {e}"[:400]
            log(f"  torch {label}: FAILED {row['torch_error']}")
        if DEV == "cuda":
            torch.cuda.empty_cache()
        if "descent_ms" in row and "torch_ms" in row:
            row["ratio_eager"] = row["descent_ms"] / row["torch_ms"]
        if "descent_ms" in row and "compile_ms" in row:
            row["ratio_compile"] = row["descent_ms"] / row["compile_ms"]
        if "descent_compiled_ms" in row and "compile_ms" in row:
            row["ratio_compiled_compile"] = row["descent_compiled_ms"] / row["compile_ms"]
        rows.append(row)
        log("  " + json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                               for k, v in row.items()}))  # fmt: skip
    results["rows"] = rows
    results["fused_kernels_ready"] = sorted(f"{n}:{d}" for n, d in backend._fused_ready)
    results["fused_kernels_broken"] = sorted(backend._fused_broken)

    def fmt(v, spec=".1f"):
        return "-" if v is None else format(v, spec)

    log("\n| precision | descent ms/it | descent unfused | descent compiled | PyTorch eager | "
        "ratio | torch.compile | ratio | compiled / torch.compile |")  # fmt: skip
    log("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        log(f"| {r['mode']} | {fmt(r.get('descent_ms'))} | {fmt(r.get('descent_unfused_ms'))} | "
            f"{fmt(r.get('descent_compiled_ms'))} | "
            f"{fmt(r.get('torch_ms'))} | {fmt(r.get('ratio_eager'), '.2f')} | "
            f"{fmt(r.get('compile_ms'))} | {fmt(r.get('ratio_compile'), '.2f')} | "
            f"{fmt(r.get('ratio_compiled_compile'), '.2f')} |")  # fmt: skip
    log(
        "target: descent <= 1.5x PyTorch eager at equal precision; fused kernels compiled: "
        f"{len(results['fused_kernels_ready'])}, failed: {results['fused_kernels_broken']}"
    )

    # ---- part 2: training -------------------------------------------------------------------
    if not args.no_train and data is not None:
        ok = [r for r in rows if "descent_ms" in r]
        best = min(ok, key=lambda r: r["descent_ms"]) if ok else None
        dtype = {"float32": None, "float16 autocast": "float16",
                 "bfloat16 autocast": "bfloat16"}.get(best["mode"]) if best else None  # fmt: skip
        seconds = left() - 20
        if args.train_seconds is not None:
            seconds = min(seconds, args.train_seconds)
        if seconds > 20:
            log(f"\n== training shakespeare-char with descent ({best['mode'] if best else '-'}), "
                f"{seconds:.0f} s budget, eval every {args.eval_interval} iters on "
                f"{args.eval_iters} batches/split ==")  # fmt: skip
            curve, iters = train_descent(train_ids, val_ids, vocab, dtype, seconds,
                                         args.eval_interval, args.eval_iters, log)  # fmt: skip
            best_val = min(c["val"] for c in curve)
            results["training"] = {"precision": best["mode"] if best else None,
                                   "iterations": iters, "curve": curve, "best_val": best_val,
                                   "nanogpt_best_val": NANOGPT_BEST_VAL}  # fmt: skip
            log(f"best val loss {best_val:.4f} after {iters} iterations "
                f"(nanoGPT: {NANOGPT_BEST_VAL} after 5000)")  # fmt: skip
        else:
            log("\n(no time left in the budget for the training part)")
    results["wall_s"] = time.perf_counter() - t_start
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "gpu_bench.json"), "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
