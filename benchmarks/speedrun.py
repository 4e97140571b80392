"""The CPU speedrun (issue 16): time and steps to val 1.90 on tinyshakespeare, three recipes.

    (a) nanoGPT's baby recipe in PyTorch (its own train.py procedure: init, batches, schedule;
        benchmarks/shakespeare_char.py `nanogpt_rival`), 2,000 iterations
    (b) descent `--preset baby-gpt` (the same recipe in descent), 2,000 iterations
    (c) descent `--preset speedrun-cpu` (Muon + the modded-nanogpt options; docs/speedrun.md)

For each run: the training wall time (forward, backward, clipping, optimizer step and the next
batch; every evaluation is EXCLUDED, its time measured apart and subtracted), the process's CPU
time over that wall time (how many cores the library kept busy), and the validation loss over
the WHOLE val split every `--eval-interval` steps: every window of `block_size` tokens starting
at a multiple of `--stride` (64 = block_size: each val token scored once, no sampling noise;
the seed study's stride 16 scores each token 4 times at 4 context lengths, with the same
expectation). From that curve: the first evaluated step whose val is <= 1.90 (and, with the
evaluation before it, the linearly interpolated crossing step) and its training time, and the
val reached at (a)'s mean training wall time (the last evaluation at or before it).

Every run is a fresh process (`--jobs` at a time, `--threads` BLAS/OpenMP/torch threads each).
On a shared machine absolute times move with the load, so the script also measures the three
recipes' step costs in ONE process, three steps of each in turn (the first untimed: it pays for
the previous library's spinning thread pools) for `--cost-rounds` rounds (the median of the
per-round ratios is robust to load), and reports the load-independent estimate
    time to 1.90 as a share of (a)'s 2,000 iterations = steps_to_1.90 * cost(c) / (2000 * cost(a)).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/speedrun.py
    ... --seeds 1337 --max-iters 300 --eval-interval 100     (a quick look)
    ... --only c --variant no_rope=rope:0 --variant adamw=optimizer:adamw,learning_rate:2e-3
                     (an ablation: speedrun-cpu with overrides, each a row of its own)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import shakespeare_char as sc  # noqa: E402 - benchmarks/ is not a package

import descent  # noqa: E402
from descent.optim import clip_grad_norm_  # noqa: E402
from descent.train import TrainConfig, Trainer  # noqa: E402

TARGET = 1.90
ROWS = {"a": "nanoGPT baby recipe, PyTorch", "b": "descent baby-gpt", "c": "descent speedrun-cpu"}
PRESET = {"a": "baby-gpt", "b": "baby-gpt", "c": "speedrun-cpu"}


def parse_overrides(text: str) -> dict:
    """'rope:0,learning_rate:2e-3,optimizer:adamw' -> {'rope': False, 'learning_rate': 0.002,
    'optimizer': 'adamw'}, each value cast to the TrainConfig field's type."""
    out = {}
    kinds = {f: type(v) for f, v in TrainConfig().to_dict().items()}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition(":")
        if key == "muon_ns_steps" and key not in kinds:  # before the field existed
            out[key] = int(value)
            continue
        if key not in kinds:
            raise SystemExit(f"speedrun.py: --variant: {key!r} is not a TrainConfig field")
        kind = kinds[key]
        if kind is bool:
            out[key] = value.lower() in ("1", "true", "yes", "on")
        elif kind in (int, float, str):
            out[key] = kind(value)
        else:  # Optional fields (None default)
            out[key] = int(value)
    return out


def make_config(row: str, seed: int, iters: int | None, out: str, **overrides) -> TrainConfig:
    """The row's preset with the benchmark's settings: no checkpoints or evaluations inside the
    trainer's loop (the benchmark evaluates, off the clock), seeded, `iters` iterations (None:
    the preset's, or the overrides' max_iters) with the schedule stretched or shrunk to it
    (warm-up and decay keep their share of the run)."""
    preset = PRESET[row]
    base = TrainConfig.from_preset(preset)
    if iters is None:
        iters = overrides.pop("max_iters", base.max_iters)
    warmup = min(base.warmup_iters, max(iters // 10, 0))
    # The decay horizon keeps its share of the run (speedrun-cpu decays before its end).
    decay = max(1, round(base.lr_decay_iters * iters / base.max_iters))
    values = dict(
        data=sc.find_data(), out_dir=out, seed=seed, max_iters=iters, lr_decay_iters=decay,
        warmup_iters=warmup, eval_interval=iters, eval_iters=1, checkpoint_interval=iters,
        log_interval=iters, progress=False, sample_tokens=0,
    )  # fmt: skip
    values.update({k: v for k, v in overrides.items() if k != "muon_ns_steps"})
    return TrainConfig.from_preset(preset, **values)


def eval_note(args) -> str:
    return (f"whole val (stride {args.stride}) every {args.eval_interval} steps from step "
            f"{args.eval_from}{', stopped at 1.90' if args.stop else ''}")


class _Reached(Exception):
    """Raised by the evaluation hook to end a run once the target is reached (--stop)."""


class Curve:
    """Evaluates the whole val split every `every` steps, off the clock; keeps the curve."""

    def __init__(self, every: int, stride: int, start: int, stop: bool) -> None:
        self.every, self.stride, self.start, self.stop = every, stride, start, stop
        self.points: list[dict] = []  # {"step", "train_s", "val"}
        self.train_s = 0.0  # training wall time so far (evaluation excluded)
        self.eval_s = 0.0
        self.eval_cpu_s = 0.0

    def due(self, step: int, last: int) -> bool:
        return step == last or (step >= self.start and step % self.every == 0)

    def record(self, step: int, val_of) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        val = float(val_of())
        self.eval_s += time.perf_counter() - t0
        self.eval_cpu_s += time.process_time() - c0
        self.points.append({"step": step, "train_s": self.train_s, "val": val})
        print(f"  step {step:5d}  val {val:.4f}  ({self.train_s:7.1f} s of training)", flush=True)
        if self.stop and val <= TARGET:
            raise _Reached


def _forward_backward(trainer: Trainer):
    """The trainer's forward + backward, compiled when its config says so (`compile`, on in
    speedrun-cpu), as `Trainer.train` does: recorded on the first calls, then replayed."""
    if trainer.config.compile:
        return descent.compile(trainer._forward_backward)
    return trainer._forward_backward


def run_descent(row: str, seed: int, args, overrides: dict) -> dict:
    """One descent run (b or c) with the whole-val curve; returns the run's record."""
    config = make_config(row, seed, args.max_iters, tempfile.mkdtemp(prefix="descent-sr-"),
                         **overrides)  # fmt: skip
    trainer = Trainer(config)
    if "muon_ns_steps" in overrides:
        for group in trainer.optimizer.param_groups:
            if group["use_muon"]:
                group["ns_steps"] = overrides["muon_ns_steps"]
    model, stream = trainer.raw_model, trainer.stream
    forward_backward = _forward_backward(trainer)
    curve = Curve(args.eval_interval, args.stride, args.eval_from, args.stop)
    params = [p for p in model.parameters() if p.requires_grad]

    @descent.no_grad()
    def val_now():
        model.eval()
        loss = sc.all_windows_loss(
            lambda x, y: model(descent.tensor(x), descent.tensor(y))[1].item(),
            stream.val, config.block_size, args.stride,
        )  # fmt: skip
        model.train()
        return loss

    # The loop of Trainer.train, without its logging, checkpoints and evaluations.
    model.train()
    cpu0 = time.process_time()
    try:
        for step in range(1, config.max_iters + 1):
            t0 = time.perf_counter()
            lr = trainer.get_lr(step)
            for group in trainer.optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            x, y = trainer.get_batch("train", trainer.train_gen)
            forward_backward(x, y)
            clip_grad_norm_(params, config.grad_clip if config.grad_clip > 0 else float("inf"))
            trainer.optimizer.step()
            trainer.optimizer.zero_grad(set_to_none=True)
            curve.train_s += time.perf_counter() - t0
            if curve.due(step, config.max_iters):
                curve.record(step, val_now)
    except _Reached:
        pass
    finally:
        trainer.close()
    cpu = time.process_time() - cpu0 - curve.eval_cpu_s
    return {"row": row, "seed": seed, "iters": config.max_iters, "train_s": curve.train_s,
            "cpu_per_wall": cpu / max(curve.train_s, 1e-9), "curve": curve.points,
            "eval": eval_note(args), "threads": args.threads}  # fmt: skip


def run_nanogpt(seed: int, args) -> dict:
    """(a): nanoGPT's train.py procedure in PyTorch (`shakespeare_char.nanogpt_rival`)."""
    import torch

    torch.set_num_threads(args.threads)
    config = make_config("a", seed, args.max_iters, tempfile.mkdtemp(prefix="descent-sr-"))
    curve = Curve(args.eval_interval, args.stride, args.eval_from, args.stop)

    def on_iter(it: int, model, splits, train_s: float) -> None:
        curve.train_s = train_s
        if curve.due(it, config.max_iters):
            model.eval()
            with torch.no_grad():
                curve.record(it, lambda: sc.all_windows_loss(
                    lambda x, y: model(torch.from_numpy(x), torch.from_numpy(y))[1].item(),
                    splits["val"], config.block_size, args.stride))  # fmt: skip
            model.train()

    cpu0 = time.process_time()
    try:
        r = sc.nanogpt_rival(config, sc.read_text(config.data), curve=False, on_iter=on_iter,
                             final_estimates=False)  # fmt: skip
        train_s = r["train_s"]
    except _Reached:
        train_s = curve.train_s
    cpu = time.process_time() - cpu0 - curve.eval_cpu_s
    return {"row": "a", "seed": seed, "iters": config.max_iters, "train_s": train_s,
            "cpu_per_wall": cpu / max(train_s, 1e-9), "curve": curve.points,
            "eval": eval_note(args), "threads": args.threads}  # fmt: skip


# -- step costs in one process ------------------------------------------------------------------


def _descent_stepper(row: str, overrides: dict):
    config = make_config(row, 1337, None, tempfile.mkdtemp(prefix="descent-sr-"), **overrides)
    trainer = Trainer(config)
    if "muon_ns_steps" in overrides:
        for group in trainer.optimizer.param_groups:
            if group["use_muon"]:
                group["ns_steps"] = overrides["muon_ns_steps"]
    model = trainer.raw_model
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    forward_backward = _forward_backward(trainer)

    def step(i: int) -> None:
        lr = trainer.get_lr(i)
        for group in trainer.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        forward_backward(*trainer.get_batch("train", trainer.train_gen))
        clip_grad_norm_(params, config.grad_clip)
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)

    step.close = trainer.close
    return step


def _nanogpt_stepper(threads: int):
    """One iteration of nanoGPT's loop in PyTorch (the baby recipe's model and optimizer)."""
    import torch
    from _torch_gpt import TorchGPT, nanogpt_init, torch_optimizer

    torch.set_num_threads(threads)
    torch.manual_seed(1337)
    c = TrainConfig.from_preset("baby-gpt")
    text = sc.read_text(sc.find_data())
    stoi = {ch: i for i, ch in enumerate(sorted(set(text)))}
    data = np.array([stoi[ch] for ch in text], dtype=np.uint16)
    shape = argparse.Namespace(vocab_size=len(stoi), block_size=c.block_size, n_layer=c.n_layer,
                               n_head=c.n_head, n_embd=c.n_embd, bias=c.bias)  # fmt: skip
    model = TorchGPT(shape)
    nanogpt_init(model, c.n_layer)
    opt = torch_optimizer(model, c.learning_rate, (c.beta1, c.beta2), c.weight_decay)

    def step(i: int) -> None:
        ix = torch.randint(len(data) - c.block_size, (c.batch_size,))
        w = data[ix.numpy()[:, None] + np.arange(c.block_size + 1)].astype(np.int64)
        w = torch.from_numpy(w)
        _, loss = model(w[:, :-1].contiguous(), w[:, 1:].contiguous())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)

    step.close = lambda: None
    return step


BLOCK = 3  # steps of each recipe in a row per round of step_costs; the first is not timed


def step_costs(rounds: int, threads: int, variants: dict[str, dict]) -> dict[str, dict]:
    """Per-step cost of (a), (b), (c) and the variants, a block of steps of each per round.

    Returns {name: {"ms": median ms per step, "ratio": median over rounds of the step's time
    over (a)'s in the same round}}: the ratio is what the load cannot move much, since each
    round's steps run within a second of each other.
    """
    steppers = {"a": _nanogpt_stepper(threads), "b": _descent_stepper("b", {}),
                "c": _descent_stepper("c", {})}  # fmt: skip
    for name, ov in variants.items():
        steppers[name] = _descent_stepper("c", ov)
    for fn in steppers.values():  # warm-up: buffers, JIT kernels, allocator
        for i in range(1, 4):
            fn(i)
    times: dict[str, list[float]] = {k: [] for k in steppers}
    for r in range(rounds):
        for name, fn in steppers.items():
            # A block of BLOCK steps per recipe, the first untimed: it pays for the thread
            # pools the previous library left spinning (benchmarks/_common.time_interleaved).
            block = []
            for i in range(BLOCK):
                t0 = time.perf_counter()
                fn(10 + r * BLOCK + i)
                block.append(time.perf_counter() - t0)
            times[name].append(float(np.median(block[1:])))
    for fn in steppers.values():
        fn.close()
    base = np.asarray(times["a"])
    return {k: {"ms": float(np.median(v)) * 1e3, "ratio": float(np.median(np.asarray(v) / base))}
            for k, v in times.items()}  # fmt: skip


# -- summaries ----------------------------------------------------------------------------------


def crossing(curve: list[dict]) -> dict | None:
    """The first evaluation with val <= TARGET, and the step and training time where the line
    from the evaluation before it crosses TARGET (None if never reached)."""
    for i, p in enumerate(curve):
        if p["val"] <= TARGET:
            if i == 0:
                return {"step": p["step"], "train_s": p["train_s"], "step_interp": p["step"],
                        "train_s_interp": p["train_s"]}  # fmt: skip
            q = curve[i - 1]
            f = (q["val"] - TARGET) / (q["val"] - p["val"])
            return {"step": p["step"], "train_s": p["train_s"],
                    "step_interp": q["step"] + f * (p["step"] - q["step"]),
                    "train_s_interp": q["train_s"] + f * (p["train_s"] - q["train_s"])}  # fmt: skip
    return None


def val_at(curve: list[dict], seconds: float) -> float | None:
    """The val of the last evaluation at or before `seconds` of training."""
    before = [p for p in curve if p["train_s"] <= seconds * (1 + 1e-9)]
    return before[-1]["val"] if before else None


def mean_sd(values: list[float], fmt: str = ".3f") -> str:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if len(v) == 0:
        return "-"
    if len(v) == 1:
        return f"{v[0]:{fmt}}"
    return f"{v.mean():{fmt}} ± {v.std(ddof=1):{fmt}}"


def load_average() -> str:
    try:
        return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "load average unknown"


def report(results: list[dict], costs: dict | None, args) -> None:
    rows = sorted({r["row"] for r in results}, key=lambda k: (len(k) > 1, k))
    a_runs = [r for r in results if r["row"] == "a" and r["curve"]]
    a_wall = float(np.mean([r["train_s"] for r in a_runs])) if a_runs else None
    a_iters = a_runs[0]["iters"] if a_runs else None
    print()
    print("val = mean loss over the whole val split (every window at the stride below); "
          "training time excludes evaluation; val@a = val at (a)'s mean training time")
    head = (f"{'run':<34}{'seed':>6}{'train s':>9}{'cpu/wall':>9}{'steps→1.90':>12}"
            f"{'(interp)':>10}{'s→1.90':>9}{'val@a':>8}{'final':>8}")  # fmt: skip
    print(head)
    for row in rows:
        for r in (x for x in results if x["row"] == row):
            c = crossing(r["curve"])
            va = val_at(r["curve"], a_wall) if a_wall else None
            step, interp, secs = (
                (str(c["step"]), f"{c['step_interp']:.0f}", f"{c['train_s']:.1f}") if c
                else ("-", "-", "-")
            )  # fmt: skip
            va_s = "-" if va is None else f"{va:.4f}"
            final = r["curve"][-1]["val"] if r["curve"] else float("nan")
            print(f"{ROWS.get(row, 'speedrun-cpu ' + row):<34}{r['seed']:>6}{r['train_s']:>9.1f}"
                  f"{r['cpu_per_wall']:>9.2f}{step:>12}{interp:>10}{secs:>9}{va_s:>8}"
                  f"{final:>8.4f}")  # fmt: skip
    print()
    print(f"{'mean ± sd':<34}{'train s':>16}{'steps→1.90 (interp)':>22}{'s→1.90':>16}"
          f"{'val@a':>16}{'reached':>9}")  # fmt: skip
    for row in rows:
        runs = [x for x in results if x["row"] == row]
        cs = [crossing(x["curve"]) for x in runs]
        print(f"{ROWS.get(row, 'speedrun-cpu ' + row):<34}"
              f"{mean_sd([x['train_s'] for x in runs], '.1f'):>16}"
              f"{mean_sd([c['step_interp'] for c in cs if c], '.0f'):>22}"
              f"{mean_sd([c['train_s_interp'] for c in cs if c], '.1f'):>16}"
              f"{mean_sd([val_at(x['curve'], a_wall) for x in runs] if a_wall else [], '.4f'):>16}"
              f"{sum(c is not None for c in cs):>5}/{len(runs)}")  # fmt: skip
    for row in rows:
        notes = sorted({x.get("eval", "?") for x in results if x["row"] == row})
        print(f"evaluation, {ROWS.get(row, row)}: {'; '.join(notes)}")
    if a_wall:
        print(f"(a)'s mean training wall time: {a_wall:.1f} s for {a_iters} iterations")
    for row in rows:
        runs = [x for x in results if x["row"] == row]
        print(f"CPU time / wall time, {ROWS.get(row, row)}: "
              f"{mean_sd([x['cpu_per_wall'] for x in runs], '.2f')}")  # fmt: skip
    if costs:
        print()
        print(f"step cost in one process ({args.cost_rounds} rounds, {BLOCK} steps of each per "
              f"round, the first untimed; {args.threads} thread(s)):")  # fmt: skip
        for k, v in costs.items():
            print(f"  {ROWS.get(k, 'speedrun-cpu ' + k):<34}{v['ms']:8.1f} ms (median)  "
                  f"{v['ratio']:.2f} x (a)'s step")  # fmt: skip
        iters_a = a_iters or 2000
        for row in rows:
            if row == "a" or row not in costs:
                continue
            runs = [x for x in results if x["row"] == row]
            cs = [crossing(x["curve"]) for x in runs]
            steps = [c["step_interp"] for c in cs if c]
            budget = iters_a / costs[row]["ratio"]  # this row's steps in (a)'s time
            vals = [[p["val"] for p in x["curve"] if p["step"] <= budget][-1:] for x in runs
                    if "stopped" not in x.get("eval", "")]  # a stopped run ends too early
            vals = [v[0] for v in vals if v]
            if vals:
                print(f"  {ROWS.get(row, 'speedrun-cpu ' + row)}: val at (a)'s {iters_a} "
                      f"iterations = {budget:.0f} of its steps: {mean_sd(vals, '.4f')} (the last "
                      f"evaluation at or before that step)")  # fmt: skip
            if steps:
                share = np.asarray(steps) * costs[row]["ratio"] / iters_a
                print(f"  {ROWS.get(row, 'speedrun-cpu ' + row)}: time to 1.90 = "
                      f"{mean_sd(list(share), '.3f')} of (a)'s {iters_a} iterations "
                      f"(steps × cost ratio; 1/{1 / share.mean():.1f})")  # fmt: skip
    print(load_average())


# -- the driver ---------------------------------------------------------------------------------


def one(args) -> int:
    """A child process: one run, its record written to --json."""
    descent.backend.tune_malloc()  # a benchmark owns its process (docs/settings.md)
    overrides = parse_overrides(args.overrides or "")
    if args.one == "costs":
        variants = {}
        for v in args.variant:
            name, _, spec = v.partition("=")
            variants[name] = parse_overrides(spec)
        Path(args.json).write_text(json.dumps(step_costs(args.cost_rounds, args.threads, variants)))
        return 0
    if args.one == "a":
        rec = run_nanogpt(args.seed, args)
    else:
        rec = run_descent("b" if args.one == "b" else "c", args.seed, args, overrides)
        rec["row"] = args.one
    Path(args.json).write_text(json.dumps(rec))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1337,1,2", help="comma-separated seeds (default 3)")
    ap.add_argument("--only", default="a,b,c", help="rows to run: any of a,b,c (default all)")
    ap.add_argument("--max-iters", type=int, default=None,
                    help="iterations per run (default: the presets': 2000 for a/b, speedrun-cpu's "
                         "own for c); the schedule follows")  # fmt: skip
    ap.add_argument("--eval-interval", type=int, default=50,
                    help="evaluate the whole val split every N steps (default 50)")
    ap.add_argument("--eval-from", type=int, default=0,
                    help="first step to evaluate at (saves time when 1.90 is far; default 0)")
    ap.add_argument("--stride", type=int, default=64,
                    help="start of one val window every STRIDE tokens (default 64 = block_size)")
    ap.add_argument("--stop", action="store_true",
                    help="end each run at its first evaluation <= 1.90 (steps-to-1.90 only)")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=field:value,...: an extra row, speedrun-cpu with these overrides")
    ap.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS/OpenMP/torch threads per run (default 1)")
    ap.add_argument("--cost-rounds", type=int, default=30,
                    help="rounds of the one-process step-cost measurement (0: skip)")
    ap.add_argument("--in-process", action="store_true",
                    help="run everything in this process, one run at a time (for tests: no "
                         "fresh processes, BLAS threads as the environment set them)")
    ap.add_argument("--json", default=None, help="write every run's record there")
    ap.add_argument("--with", dest="prior", action="append", default=[],
                    help="a --json file of an earlier invocation: its runs (and step costs, "
                         "unless measured now) join the tables, e.g. to run the rows in pieces")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child's row
    ap.add_argument("--seed", type=int, default=1337, help=argparse.SUPPRESS)
    ap.add_argument("--overrides", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        return one(args)

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    variants = {}
    for v in args.variant:
        name, _, spec = v.partition("=")
        variants[name] = parse_overrides(spec)
    rows = [r for r in args.only.split(",") if r in ROWS] + list(variants)
    tasks = [(row, s) for s in seeds for row in rows]
    tmp = Path(tempfile.mkdtemp(prefix="descent-speedrun-"))
    env = dict(os.environ)
    n = str(args.threads)
    env.update(OMP_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n)
    print(f"speedrun: {len(tasks)} runs (rows {rows}, seeds {seeds}), {args.jobs} at a time, "
          f"{args.threads} thread(s) each; {load_average()}; logs in {tmp}", flush=True)
    results: list[dict] = []
    running: list[tuple[tuple[str, int], subprocess.Popen, Path]] = []
    pending = list(tasks)
    failed = 0
    if args.in_process:
        descent.backend.tune_malloc()
        for row, seed in pending:
            ov = variants.get(row, {})
            rec = (run_nanogpt(seed, args) if row == "a"
                   else run_descent("b" if row == "b" else "c", seed, args, ov))  # fmt: skip
            rec["row"] = row
            results.append(rec)
        pending = []
    while pending or running:
        while pending and len(running) < args.jobs:
            row, seed = pending.pop(0)
            res = tmp / f"{row}_{seed}.json"
            cmd = [sys.executable, __file__, "--one", row, "--seed", str(seed), "--json", str(res),
                   "--eval-interval", str(args.eval_interval), "--eval-from", str(args.eval_from),
                   "--stride", str(args.stride), "--threads", str(args.threads),
                   "--overrides", ",".join(f"{k}:{v}" for k, v in variants.get(row, {}).items())]
            if args.max_iters is not None:
                cmd += ["--max-iters", str(args.max_iters)]
            if args.stop:
                cmd.append("--stop")
            with open(tmp / f"{row}_{seed}.log", "w") as log:
                proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
            running.append(((row, seed), proc, res))
        time.sleep(0.5)
        for item in list(running):
            (row, seed), proc, res = item
            if proc.poll() is None:
                continue
            running.remove(item)
            if proc.returncode != 0 or not res.is_file():
                failed += 1
                print(f"  {row} seed {seed}: FAILED (rc {proc.returncode}; see {tmp})")
                continue
            rec = json.loads(res.read_text())
            results.append(rec)
            c = crossing(rec["curve"])
            print(f"  {ROWS.get(row, row)} seed {seed}: {rec['train_s']:.1f} s of training, "
                  f"final val {rec['curve'][-1]['val']:.4f}, 1.90 "
                  f"{'at step ' + str(c['step']) if c else 'not reached'}; {load_average()}",
                  flush=True)  # fmt: skip
    costs = None
    if args.cost_rounds > 0 and args.in_process:
        costs = step_costs(args.cost_rounds, args.threads, variants)
    elif args.cost_rounds > 0:  # in a child too: BLAS reads its thread count when it loads
        res = tmp / "costs.json"
        cmd = [sys.executable, __file__, "--one", "costs", "--json", str(res), "--threads", n,
               "--cost-rounds", str(args.cost_rounds)]
        cmd += [f"--variant={v}" for v in args.variant]
        print(f"step costs: {args.cost_rounds} rounds in one process ...", flush=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode == 0:
            costs = json.loads(res.read_text())
        else:
            failed += 1
            print(f"  step costs: FAILED (rc {proc.returncode}):\n{proc.stderr[-2000:]}")
    for prior in args.prior:
        earlier = json.loads(Path(prior).read_text())
        results = earlier["runs"] + results
        costs = costs or earlier.get("costs")
    report(results, costs, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "costs": costs}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
