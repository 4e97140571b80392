"""nanoGPT's baby-GPT recipe on tinyshakespeare, trained by descent: loss curve, speed, final loss.

The `baby-gpt` preset (4 layers, 4 heads, width 128, context 64, batch 12, AdamW lr 1e-3 with
100 warm-up steps and cosine decay to 1e-4, betas (0.9, 0.99), weight decay 0.1, grad clip 1,
no dropout) for 2000 iterations, seeded; train/val loss on 20 batches every 250 iterations and a
final estimate on 200 batches. nanoGPT reports a val loss of 1.88 for this recipe (a 20-batch
estimate); the issue's target is <= 1.90. On the project's 2-core machine nanoGPT's own
procedure in PyTorch gives 1.907 +- 0.008 over 15 seeds and descent 1.906 +- 0.009
(docs/training.md has the table).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/shakespeare_char.py
    ... --seed 1 --max-iters 500 --out /tmp/bench     (shorter runs for a quick look)
    ... --eval-iters 2 --final-batches 20   (fewer evaluation batches: quicker, noisier figures)
    ... --torch      (then the PyTorch twin on the very same batches, for the same final figure)
    ... --seeds 1337,1,2,3 --nanogpt --jobs 2
                     (a seed study: descent and, independently, nanoGPT's own procedure in
                      PyTorch on each seed, two runs at a time with one BLAS thread each; prints
                      a table and the mean, spread and pass count of each)

Data: $DESCENT_DATA, else ../shared/data/tinyshakespeare.txt next to the repository, else
descent.data.shakespeare() (cache or checked download).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import descent
from descent.train import TrainConfig, Trainer

TARGET = 1.90
NANOGPT = 1.88
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def find_data() -> str:
    if os.environ.get("DESCENT_DATA"):
        return os.environ["DESCENT_DATA"]
    if SHARED.is_file():
        return str(SHARED)
    return "shakespeare"


class Curve:
    """Callback: prints each evaluation as it happens."""

    def __init__(self) -> None:
        self.points: list[tuple[int, float, float]] = []
        self.t0 = time.perf_counter()

    def on_eval(self, trainer, step, metrics) -> None:
        self.points.append((step, metrics["train_loss"], metrics["val_loss"]))
        print(f"  step {step:5d}  train {metrics['train_loss']:.4f}  val {metrics['val_loss']:.4f}"
              f"  ({time.perf_counter() - self.t0:6.1f} s)", flush=True)  # fmt: skip


@descent.no_grad()
def estimate(trainer: Trainer, batches: int, seed: int) -> dict[str, float]:
    """Mean loss over `batches` batches of each split, from a fresh generator."""
    trainer.raw_model.eval()
    gen = descent.Generator(seed)
    out = {}
    for split in ("train", "val"):
        losses = [trainer.raw_model(*trainer.get_batch(split, gen))[1].item()
                  for _ in range(batches)]  # fmt: skip
        out[split] = float(np.mean(losses))
    return out


FINAL_BATCHES = 200  # batches per split of the final estimate (--final-batches, for quick looks)
STRIDE = 16  # the exact val loss: every window of the val split starting at a multiple of this


def all_windows_loss(loss_of, tokens: np.ndarray, block_size: int, stride: int = STRIDE) -> float:
    """Mean loss over every window of `tokens` starting at a multiple of `stride` (no sampling).

    The 200-batch estimate draws 2,400 random windows, so it carries sampling noise (about
    0.004 in val loss for the baby-gpt model here); this figure has none, so two models or two
    seeds compare on training alone. loss_of(x, y) takes int64 arrays (B, T) and returns the
    mean loss of the batch.
    """
    starts = np.arange(0, len(tokens) - block_size, stride)
    total = 0.0
    for i in range(0, len(starts), 128):
        s = starts[i : i + 128]
        w = tokens[s[:, None] + np.arange(block_size + 1)].astype(np.int64)
        total += loss_of(np.ascontiguousarray(w[:, :-1]), np.ascontiguousarray(w[:, 1:])) * len(s)
    return total / len(starts)


def torch_rival(config: TrainConfig) -> tuple[dict[str, float], float]:
    """The same recipe in PyTorch: same initial weights, same batches, same schedule.

    A fresh Trainer (same seed) provides descent's initial weights, the data stream and the
    batch generator; the PyTorch twin (benchmarks/_torch_gpt.py) trains on exactly the batches
    descent saw. Returns (final 200-batch estimate, ms per training step).
    """
    import torch
    from _torch_gpt import TorchGPT, torch_optimizer

    torch.manual_seed(config.seed)
    base = Trainer(replace(config, out_dir=tempfile.mkdtemp(prefix="descent-torch-")))
    tmodel = TorchGPT(base.raw_model.config)
    ours = dict(base.raw_model.named_parameters())
    tied = {"transformer.wte.weight": "lm_head.weight", "lm_head.weight": "transformer.wte.weight"}
    with torch.no_grad():
        for name, p in tmodel.named_parameters():
            p.copy_(torch.from_numpy(ours[name if name in ours else tied[name]].numpy().copy()))
    opt = torch_optimizer(tmodel, config.learning_rate, (config.beta1, config.beta2),
                          config.weight_decay)  # fmt: skip

    def as_torch(*tensors):
        return [torch.from_numpy(t.numpy()) for t in tensors]

    t0 = time.perf_counter()
    for step in range(1, config.max_iters + 1):
        for group in opt.param_groups:
            group["lr"] = base.get_lr(step)
        _, loss = tmodel(*as_torch(*base.get_batch("train", base.train_gen)))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tmodel.parameters(), config.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
    ms = (time.perf_counter() - t0) / config.max_iters * 1e3
    gen = descent.Generator(config.seed + 1)  # the batches descent's final estimate used
    out = {}
    with torch.no_grad():
        for split in ("train", "val"):
            losses = [tmodel(*as_torch(*base.get_batch(split, gen)))[1].item()
                      for _ in range(FINAL_BATCHES)]  # fmt: skip
            out[split] = float(np.mean(losses))
    return out, ms


def nanogpt_rival(config: TrainConfig, text: str, curve: bool = True, on_iter=None,
                  final_estimates: bool = True) -> dict:
    """nanoGPT's own train.py procedure in PyTorch, on its own random streams.

    Unlike `torch_rival` (descent's weights and batches), nothing here comes from descent:
    `torch.manual_seed(seed)`, nanoGPT's initialisation from torch's global generator, batches
    from `torch.randint` on the same generator (evaluations interleaved, as in nanoGPT), the
    same 90/10 split of the sorted-character encoding, nanoGPT's get_lr and loop order. Its
    results are a sample of what the recipe itself gives, to compare descent's seeds with.

    on_iter(it, model, splits, train_s), if given, runs after each iteration `it` (1-based)
    with the training time so far, evaluations excluded (benchmarks/speedrun.py evaluates
    there); its own time is excluded too. The result's "train_s" is that training time;
    final_estimates=False skips the final 200-batch and all-windows figures (then None).
    """
    import math

    import torch
    from _torch_gpt import TorchGPT, nanogpt_init, torch_optimizer

    c = config
    torch.manual_seed(c.seed)
    chars = sorted(set(text))  # nanoGPT's shakespeare_char/prepare.py
    stoi = {ch: i for i, ch in enumerate(chars)}
    data = np.array([stoi[ch] for ch in text], dtype=np.uint16)
    n = int(len(data) * 0.9)
    splits = {"train": data[:n], "val": data[n:]}
    shape = argparse.Namespace(vocab_size=len(chars), block_size=c.block_size, n_layer=c.n_layer,
                               n_head=c.n_head, n_embd=c.n_embd, bias=c.bias)  # fmt: skip
    model = TorchGPT(shape)
    nanogpt_init(model, c.n_layer)
    opt = torch_optimizer(model, c.learning_rate, (c.beta1, c.beta2), c.weight_decay)

    def get_batch(split):
        d = splits[split]
        ix = torch.randint(len(d) - c.block_size, (c.batch_size,))
        w = torch.from_numpy(d[ix.numpy()[:, None] + np.arange(c.block_size + 1)].astype(np.int64))
        return w[:, :-1].contiguous(), w[:, 1:].contiguous()

    def get_lr(it):  # nanoGPT's train.py
        if it < c.warmup_iters:
            return c.learning_rate * (it + 1) / (c.warmup_iters + 1)
        if it > c.lr_decay_iters:
            return c.min_lr
        ratio = (it - c.warmup_iters) / (c.lr_decay_iters - c.warmup_iters)
        return c.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (c.learning_rate - c.min_lr)

    @torch.no_grad()
    def estimate_loss(iters):
        model.eval()
        out = {s: float(np.mean([model(*get_batch(s))[1].item() for _ in range(iters)]))
               for s in ("train", "val")}  # fmt: skip
        model.train()
        return out

    t0 = time.perf_counter()
    t_eval = 0.0  # time in evaluations and in on_iter: not training
    x, y = get_batch("train")
    for it in range(c.max_iters):
        for group in opt.param_groups:
            group["lr"] = get_lr(it)
        if it % c.eval_interval == 0:
            te = time.perf_counter()
            losses = estimate_loss(c.eval_iters)
            if curve:
                dt = time.perf_counter() - t0
                print(f"  nanoGPT step {it:5d}  train {losses['train']:.4f}  val "
                      f"{losses['val']:.4f}  ({dt:6.1f} s)", flush=True)  # fmt: skip
            t_eval += time.perf_counter() - te
        _, loss = model(x, y)
        x, y = get_batch("train")
        loss.backward()
        if c.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if on_iter is not None:
            te = time.perf_counter()
            on_iter(it + 1, model, splits, te - t0 - t_eval)
            t_eval += time.perf_counter() - te
    wall = time.perf_counter() - t0
    if not final_estimates:
        return {"val": None, "train": None, "val_all_windows": None, "wall_s": wall,
                "ms_per_iter": wall / max(c.max_iters, 1) * 1e3, "train_s": wall - t_eval}
    final = estimate_loss(FINAL_BATCHES)
    model.eval()
    with torch.no_grad():
        exact = all_windows_loss(
            lambda x, y: model(torch.from_numpy(x), torch.from_numpy(y))[1].item(),
            splits["val"], c.block_size,
        )  # fmt: skip
    return {"val": final["val"], "train": final["train"], "val_all_windows": exact, "wall_s": wall,
            "ms_per_iter": wall / max(c.max_iters, 1) * 1e3, "train_s": wall - t_eval}  # fmt: skip


def make_config(seed: int, max_iters: int, out: str, eval_iters: int = 20) -> TrainConfig:
    return TrainConfig.from_preset(
        "baby-gpt", data=find_data(), out_dir=out, seed=seed, max_iters=max_iters,
        lr_decay_iters=max(max_iters, 1), eval_interval=250, eval_iters=eval_iters,
        log_interval=10, progress=False, sample_tokens=0,
    )  # fmt: skip


def read_text(data: str) -> str:
    if data == "shakespeare":
        return descent.data.shakespeare()
    return Path(data).read_text(encoding="utf-8")


def summary(name: str, vals: list[float]) -> str:
    v = np.asarray(vals)
    sd = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
    return (f"{name:<20} n={len(v)}  mean {v.mean():.4f}  sd {sd:.4f}  min {v.min():.4f}  "
            f"max {v.max():.4f}  <= {TARGET}: {int((v <= TARGET).sum())}/{len(v)}")  # fmt: skip


def study(args) -> int:
    """Several seeds, each run in a fresh process, `--jobs` at a time; a table and a summary."""
    import subprocess

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    kinds = ["descent"] + (["nanogpt"] if args.nanogpt else [])
    tasks = [(kind, s) for s in seeds for kind in kinds]
    tmp = Path(tempfile.mkdtemp(prefix="descent-seed-study-"))
    env = dict(os.environ)
    if args.jobs > 1:  # one BLAS/OpenMP thread per run: the runs share the cores
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    print(f"seed study: {len(tasks)} runs ({', '.join(kinds)}; seeds {seeds}), {args.jobs} at a "
          f"time, logs in {tmp}", flush=True)  # fmt: skip
    results: dict[tuple[str, int], dict] = {}
    running: list[tuple[tuple[str, int], subprocess.Popen, Path]] = []
    pending = list(tasks)
    while pending or running:
        while pending and len(running) < args.jobs:
            kind, seed = pending.pop(0)
            res = tmp / f"{kind}_{seed}.json"
            cmd = [sys.executable, __file__, "--one", kind, "--seed", str(seed),
                   "--max-iters", str(args.max_iters), "--json", str(res),
                   "--final-batches", str(args.final_batches),
                   "--eval-iters", str(args.eval_iters),
                   "--out", str(tmp / f"out_{kind}_{seed}")]  # fmt: skip
            with open(tmp / f"{kind}_{seed}.log", "w") as log:  # the child keeps its own handle
                proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
            running.append(((kind, seed), proc, res))
        time.sleep(0.1)  # poll: a finished run is seen within 0.1 s
        for item in list(running):
            key, proc, res = item
            if proc.poll() is None:
                continue
            running.remove(item)
            if proc.returncode != 0 or not res.is_file():
                print(f"  {key[0]} seed {key[1]}: FAILED (rc {proc.returncode}; see {tmp})")
                continue
            results[key] = json.loads(res.read_text())
            r = results[key]
            print(f"  {key[0]:<8} seed {key[1]:>5}: val {r['val']:.4f}  train {r['train']:.4f}  "
                  f"val over all windows {r['val_all_windows']:.4f}  "
                  f"{r['ms_per_iter']:.1f} ms/iteration", flush=True)  # fmt: skip
    print()
    cols = [(k, f) for k in kinds for f in ("val", "val_all_windows")]
    print(
        f"final val: the {args.final_batches}-batch estimate (200: the target's figure) and every "
        f"window at stride "
        f"{STRIDE}"
    )
    print(f"{'seed':>6}" + "".join(f"{k + (' val' if f == 'val' else ' all'):>14}"
                                   for k, f in cols))  # fmt: skip
    for s in seeds:
        row = "".join(f"{results[(k, s)][f]:>14.4f}" if (k, s) in results else f"{'-':>14}"
                      for k, f in cols)  # fmt: skip
        print(f"{s:>6}{row}")
    for k in kinds:
        for f in ("val", "val_all_windows"):
            vals = [results[(k, s)][f] for s in seeds if (k, s) in results]
            if vals:
                label = f"{args.final_batches}-batch" if f == "val" else "all-windows"
                print(summary(f"{k} {label}", vals))
    if args.nanogpt:
        for f in ("val", "val_all_windows"):
            d = np.array([results[("descent", s)][f] for s in seeds if ("descent", s) in results])
            t = np.array([results[("nanogpt", s)][f] for s in seeds if ("nanogpt", s) in results])
            if len(d) > 1 and len(t) > 1:
                se = float(np.sqrt(d.var(ddof=1) / len(d) + t.var(ddof=1) / len(t)))
                print(
                    f"descent mean - nanoGPT mean ({f}): {d.mean() - t.mean():+.4f} (standard "
                    f"error {se:.4f}; the streams differ per seed, so runs are not paired)"
                )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                [{"kind": k, "seed": s, **r} for (k, s), r in sorted(results.items())], indent=1
            )
        )
    return 0 if len(results) == len(tasks) else 1


def main() -> int:
    global FINAL_BATCHES
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--max-iters", type=int, default=2000)
    ap.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    ap.add_argument(
        "--torch", action="store_true",
        help="also train the PyTorch twin on the same batches (a few more minutes)",
    )  # fmt: skip
    ap.add_argument(
        "--nanogpt",
        action="store_true",
        help="also run nanoGPT's own procedure in PyTorch (its own init and batches)",
    )
    ap.add_argument(
        "--seeds", default=None, help="comma-separated seeds: run a seed study instead of one run"
    )
    ap.add_argument("--jobs", type=int, default=1, help="runs at a time in a seed study")
    ap.add_argument("--json", default=None, help="write the results there as JSON")
    ap.add_argument(
        "--final-batches",
        type=int,
        default=FINAL_BATCHES,
        help="batches per split of the final estimate (200: the target's figure)",
    )
    ap.add_argument(
        "--eval-iters",
        type=int,
        default=20,
        help="batches per split of each evaluation during training (20: the recipe's)",
    )
    ap.add_argument(
        "--one", choices=["descent", "nanogpt"], default=None, help=argparse.SUPPRESS
    )  # one run of a seed study (a child process)
    args = ap.parse_args()
    descent.backend.tune_malloc()  # a benchmark owns its process (docs/settings.md)
    FINAL_BATCHES = args.final_batches
    if args.seeds:
        return study(args)

    out = args.out or tempfile.mkdtemp(prefix="descent-shakespeare-")
    config = make_config(args.seed, args.max_iters, out, args.eval_iters)
    data = config.data
    if args.one == "nanogpt":
        r = nanogpt_rival(config, read_text(data))
        Path(args.json).write_text(json.dumps(r))
        return 0
    print(f"descent {descent.__version__}, numpy {np.__version__}, python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"baby-gpt on {data}: {config.max_iters} iterations, seed {config.seed}, out {out}")
    curve = Curve()
    trainer = Trainer(config, [curve])
    print(f"model: {trainer.raw_model.num_parameters() / 1e6:.3f}M parameters, vocabulary "
          f"{trainer.tokenizer.vocab_size}")  # fmt: skip

    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    final = estimate(trainer, FINAL_BATCHES, seed=config.seed + 1)
    with descent.no_grad():
        exact = all_windows_loss(
            lambda x, y: trainer.raw_model(descent.tensor(x), descent.tensor(y))[1].item(),
            trainer.stream.val, config.block_size,
        )  # fmt: skip
    records = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    step_ms = [r["ms_per_iter"] for r in records if r["kind"] == "step"]

    print()
    print("loss curve (20 batches per split):")
    print("   step   train     val")
    for step, tr, va in curve.points:
        print(f"  {step:5d}  {tr:.4f}  {va:.4f}")
    print(f"wall time {wall:.1f} s for {config.max_iters} iterations "
          f"(incl. evaluation): {wall / config.max_iters * 1e3:.1f} ms/iteration; "
          f"median training step {np.median(step_ms):.1f} ms")  # fmt: skip
    print(f"final estimate ({FINAL_BATCHES} batches): train {final['train']:.4f}, "
          f"val {final['val']:.4f}")  # fmt: skip
    print(f"val loss over every window of the val split at stride {STRIDE} (no sampling noise): "
          f"{exact:.4f}")  # fmt: skip
    if args.torch:
        # The loss is the point here; for speed against PyTorch see benchmarks/gpt_step.py.
        tfinal, _ = torch_rival(config)
        print(f"PyTorch, same weights, batches and schedule: val {tfinal['val']:.4f} "
              f"(train {tfinal['train']:.4f}); descent - PyTorch val: "
              f"{final['val'] - tfinal['val']:+.4f}")  # fmt: skip
    if args.nanogpt:
        print("nanoGPT's own procedure in PyTorch (its own initial weights and batches):")
        r = nanogpt_rival(config, read_text(data))
        print(
            f"nanoGPT in PyTorch, seed {config.seed}: final estimate ({FINAL_BATCHES} batches): "
            f"val "
            f"{r['val']:.4f} (train {r['train']:.4f}), every window at stride {STRIDE}: "
            f"{r['val_all_windows']:.4f}; {r['ms_per_iter']:.1f} ms/iteration"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"val": final["val"], "train": final["train"], "val_all_windows": exact, "wall_s": wall,
             "ms_per_iter": wall / max(config.max_iters, 1) * 1e3,
             "median_step_ms": float(np.median(step_ms)) if step_ms else None}))  # fmt: skip
    ok = final["val"] <= TARGET
    print(f"target val <= {TARGET} (nanoGPT {NANOGPT}): {'MET' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
