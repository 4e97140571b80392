"""tiny-grok against baby-gpt at equal wall time on tinyshakespeare (docs/grok.md).

The machine these runs share is loaded by other processes, unevenly, so wall-clock budgets
measured run by run are not comparable. The method instead:

1. `ratio`: build both trainers (baby-gpt: characters; tiny-grok: its subword tokens) on the
   same corpus in ONE process and time their training steps interleaved (a, b, a, b, ...; each
   step = batch, forward, backward, clip, AdamW, exactly the Trainer's). The median per-step
   cost ratio r = grok / gpt is robust to the load, which slows both alike.
2. Runs: baby-gpt for its 2,000 steps (the wall budget), tiny-grok for round(2000 / r) steps
   with its cosine schedule fitted to that many steps; both evaluate at 8 equally spaced points
   of the budget (every 250 steps for baby-gpt, every N/8 for tiny-grok), so the curves share
   their x axis in units of the budget. Evaluation time is not charged to either (both do 8).
3. `summarize`: the last val bits per character of each run, mean +- sd over seeds, and the
   curves (a text table, and an SVG when matplotlib is installed).

Run:
    python benchmarks/grok_equal_time.py ratio [--repeats 40] [--grok KEY=VALUE ...]
    python benchmarks/grok_equal_time.py summarize RUN_DIR ... [--svg docs/grok_equal_time.svg]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
from pathlib import Path

import _common  # noqa: I001  (first: re-execs without OPENBLAS_* tuning variables)

import descent
from descent.optim import clip_grad_norm_
from descent.train import Trainer
from descent.train_config import TrainConfig

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def _parse_overrides(items: list[str]) -> dict:
    """KEY=VALUE pairs (values read as JSON when they parse, else as strings)."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.replace("-", "_")] = value
    return out


def _trainer(preset: str, data: str, out: str, overrides: dict) -> Trainer:
    cfg = TrainConfig.from_preset(preset, data=data, out_dir=out, progress=False,
                                  sample_tokens=0, **overrides)  # fmt: skip
    return Trainer(cfg)


def _step_fn(tr: Trainer):
    """One training step as Trainer.train runs it (no logging, no evaluation)."""
    params = [p for p in tr.raw_model.parameters() if p.requires_grad]
    clip = tr.config.grad_clip

    def step() -> None:
        x, y = tr.get_batch("train", tr.train_gen)
        _, loss = tr.model(x, y)
        loss.backward()
        loss.item()
        clip_grad_norm_(params, clip if clip > 0 else math.inf)
        tr.optimizer.step()
        tr.optimizer.zero_grad(set_to_none=True)

    return step


def cmd_ratio(args) -> None:
    data = str(args.data)
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        gpt = _trainer("baby-gpt", data, os.path.join(tmp, "gpt"), {})
        grok = _trainer("tiny-grok", data, os.path.join(tmp, "grok"), _parse_overrides(args.grok))
        val = grok.stream.splits["val"]
        chars_per_token = len(grok.tokenizer.decode(val)) / len(val)
        med = _common.time_interleaved({"baby-gpt": _step_fn(gpt), "tiny-grok": _step_fn(grok)},
                                       args.repeats, args.warmup)  # fmt: skip
        gpt.close()
        grok.close()
    r = med["tiny-grok"] / med["baby-gpt"]
    print(
        f"# load average {load0:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
        f"median of {args.repeats} interleaved steps; grok overrides {args.grok or 'none'}"
    )
    print(
        f"baby-gpt step  {med['baby-gpt'] * 1e3:8.1f} ms  ({gpt.raw_model.num_parameters():,} "
        f"parameters, {gpt.config.batch_size}x{gpt.config.block_size} characters)"
    )
    print(
        f"tiny-grok step {med['tiny-grok'] * 1e3:8.1f} ms  ({grok.raw_model.num_parameters():,}"
        f" parameters, {grok.config.batch_size}x{grok.config.block_size} tokens of "
        f"{chars_per_token:.2f} characters each on the val split)"
    )
    steps = round(args.budget_steps / r / 8) * 8
    print(
        f"ratio {r:.3f}: tiny-grok gets {steps} steps for baby-gpt's {args.budget_steps} "
        f"(eval every {steps // 8})"
    )


def _read_run(path: Path) -> dict:
    recs = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    cfg = json.loads((path / "config.json").read_text())
    evals = [r for r in recs if r.get("kind") == "eval"]
    steps = [r for r in recs if r.get("kind") == "step"]
    return {"name": path.name, "preset": cfg.get("preset"), "seed": cfg.get("seed"),
            "max_iters": cfg["max_iters"], "evals": evals,
            "train_s": sum(r["ms_per_iter"] for r in steps) / 1e3}  # fmt: skip


def cmd_summarize(args) -> None:
    runs = [_read_run(Path(p)) for p in args.runs]
    groups: dict[str, list[dict]] = {}
    for run in runs:
        groups.setdefault(run["preset"], []).append(run)
    print(f"{'model':<12}{'steps':>7}{'seeds':>7}{'val bits/char (last)':>24}"
          f"{'train s (mean)':>16}")  # fmt: skip
    for name, rs in groups.items():
        last = [r["evals"][-1]["val_bits_per_char"] for r in rs]
        sd = statistics.stdev(last) if len(last) > 1 else float("nan")
        print(f"{name:<12}{rs[0]['max_iters']:>7}{len(rs):>7}"
              f"{statistics.mean(last):>16.4f} +- {sd:.4f}"
              f"{statistics.mean(r['train_s'] for r in rs):>16.0f}")  # fmt: skip
        for r in rs:
            print(f"    seed {r['seed']}: " + " ".join(f"{e['val_bits_per_char']:.3f}"
                                                     for e in r["evals"]))  # fmt: skip
    print("\ncurve: mean val bits/char at each fraction of the wall budget")
    print(f"{'fraction':>9}" + "".join(f"{n:>14}" for n in groups))
    npoints = min(len(r["evals"]) for rs in groups.values() for r in rs)
    for i in range(npoints):
        frac = groups[next(iter(groups))][0]["evals"][i]["step"] / next(
            iter(groups.values()))[0]["max_iters"]  # fmt: skip
        cells = "".join(
            f"{statistics.mean(r['evals'][i]['val_bits_per_char'] for r in rs):>14.3f}"
            for rs in groups.values()
        )
        print(f"{frac:>9.3f}{cells}")
    if args.svg:
        _plot(groups, args.svg)
        print(f"\nwrote {args.svg}")


def _plot(groups: dict[str, list[dict]], path: str) -> None:
    import matplotlib  # noqa: PLC0415 - only for the picture

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    colors = {"baby-gpt": "#1565c0", "tiny-grok": "#c62828"}
    for name, rs in groups.items():
        for j, r in enumerate(rs):
            xs = [e["step"] / r["max_iters"] for e in r["evals"]]
            ys = [e["val_bits_per_char"] for e in r["evals"]]
            ax.plot(xs, ys, color=colors.get(name), lw=1.2, alpha=0.8, marker="o", ms=3,
                    label=f"{name} ({r['max_iters']} steps)" if j == 0 else None)  # fmt: skip
    ax.set_xlabel("fraction of the wall budget (baby-gpt's 2,000 steps)")
    ax.set_ylabel("validation bits per character")
    ax.set_ylim(top=min(ax.get_ylim()[1], 4.0))
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("tinyshakespeare, equal wall time, one line per seed", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("ratio", help="per-step cost of tiny-grok / baby-gpt, interleaved")
    r.add_argument("--data", default=str(CORPUS))
    r.add_argument("--repeats", type=int, default=40)
    r.add_argument("--warmup", type=int, default=5)
    r.add_argument("--budget-steps", type=int, default=2000)
    r.add_argument("--grok", nargs="*", default=[], help="tiny-grok overrides, KEY=VALUE")
    s = sub.add_parser("summarize", help="table and curves from finished runs")
    s.add_argument("runs", nargs="+")
    s.add_argument("--svg", default=None)
    args = ap.parse_args()
    _common.setup_threads(1)
    descent.manual_seed(0)
    cmd_ratio(args) if args.cmd == "ratio" else cmd_summarize(args)


if __name__ == "__main__":
    main()
