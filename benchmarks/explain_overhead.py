"""Cost of recording gradient figures during training (`descent train --report`).

    python benchmarks/explain_overhead.py [--steps 100] [--every 10] [--repeats 2]

Trains the baby-gpt preset (4 layers, 4 heads, width 128, context 64, batch 12) on
tinyshakespeare (or the embedded default corpus when the file is absent) for `--steps` steps,
with and without `descent.explain.ReportCallback(every=10)` (gradient figures every 10 steps,
parameter snapshots at each evaluation; the one-time landscape at the end is timed apart).
Runs alternate in ABBA order (without, with, with, without, ...) so that a busy machine
affects both.

Two figures, because wall-clock differences of a few percent drown in the noise of a shared
2-core machine:
* measured directly: time spent inside the callback's methods / time of the training loop;
* wall clock: median ms/step with the callback vs without (noisy; printed for honesty).
Target (issue 5): under 5% at every-10-steps recording.

`--anomaly` instead times a loop of small ops (forward + backward) before any anomaly mode,
after a `detect_anomaly()` context has been entered and left (must equal the first: the
originals are restored), and inside the context (the cost of checking, when on).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


class Timed:
    """Wraps a callback and adds up the seconds spent in each of its methods."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.final_seconds = 0.0

    def __getattr__(self, name):
        fn = getattr(self.inner, name)
        if not name.startswith("on_"):
            return fn

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                if name == "on_train_end":
                    self.final_seconds += dt
                else:
                    self.seconds += dt

        return timed


def run(steps: int, every: int | None, out: str) -> dict:
    from descent.explain import ReportCallback
    from descent.train import TrainConfig, Trainer

    data = str(DATA) if DATA.is_file() else None
    cfg = TrainConfig.from_preset(
        "baby-gpt", out_dir=out, data=data, max_iters=steps, eval_interval=max(steps // 4, 1),
        eval_iters=2, progress=False, sample_tokens=0, lr_decay_iters=steps,
        warmup_iters=min(100, steps // 5),
    )  # fmt: skip
    cbs = []
    timed = None
    if every is not None:
        timed = Timed(ReportCallback(out, every=every))
        cbs = [timed]
    trainer = Trainer(cfg, cbs)
    times = []

    class StepTimes:
        def on_step(self, trainer, step, metrics):
            times.append(metrics["ms_per_iter"])

    trainer.callbacks.append(StepTimes())
    t0 = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - t0
    return {
        "total_s": total,
        "median_ms": statistics.median(times),
        "callback_s": 0.0 if timed is None else timed.seconds,
        "final_s": 0.0 if timed is None else timed.final_seconds,
    }


def anomaly_cost(repeats: int = 5, iters: int = 300) -> None:
    import numpy as np

    import descent as ds
    from descent.explain import detect_anomaly

    x = ds.tensor(np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32),
                  requires_grad=True)  # fmt: skip

    def loop() -> float:
        t0 = time.perf_counter()
        for _ in range(iters):
            y = ds.tanh(x @ x) * 0.5 + 1.0
            ds.log(y * y + 1.0).sum().backward()
        return (time.perf_counter() - t0) / iters * 1e6

    before, after, inside = [], [], []
    for _ in range(repeats):
        before.append(loop())
        with detect_anomaly():
            inside.append(loop())
        after.append(loop())
    b, a, i = (statistics.median(v) for v in (before, after, inside))
    print(f"anomaly mode, {iters} iterations of 8 small ops forward + backward on 64x64:")
    print(f"  never used: {b:.1f} us/iteration")
    print(f"  after a detect_anomaly() block (off again): {a:.1f} us ({100 * (a / b - 1):+.1f}%,"
          " noise: the same function objects run)")  # fmt: skip
    print(f"  inside detect_anomaly(): {i:.1f} us ({i / b:.2f}x: isfinite on every output and "
          "gradient, the user's frame per op)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--anomaly", action="store_true", help="time anomaly mode off/on instead")
    args = ap.parse_args()
    from descent import backend

    backend.tune_malloc()  # a benchmark owns its process (docs/settings.md)
    if args.anomaly:
        anomaly_cost()
        return
    base, mon = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            # ABBA order: a drift in machine load hits both sides alike
            order = [None, args.every] if r % 2 == 0 else [args.every, None]
            for every in order:
                res = run(args.steps, every, os.path.join(tmp, f"{every}-{r}"))
                (base if every is None else mon).append(res)
    loop_s = [m["total_s"] - m["final_s"] for m in mon]
    direct = [100 * m["callback_s"] / (loop - m["callback_s"]) for m, loop in zip(mon, loop_s)]
    mb = statistics.median(b["median_ms"] for b in base)
    mm = statistics.median(m["median_ms"] for m in mon)
    load = os.getloadavg()[0]
    print(f"baby-gpt, {args.steps} steps, recording every {args.every} steps, "
          f"{args.repeats} alternating repeats (load average {load:.1f})")  # fmt: skip
    print(f"  without monitor: median {mb:.1f} ms/step")
    print(f"  with monitor:    median {mm:.1f} ms/step (steps that record included)")
    print(f"  time inside the monitor: {statistics.median(m['callback_s'] for m in mon):.3f} s "
          f"per run -> overhead {statistics.median(direct):.2f}% of the training loop "
          f"(target < 5%)")  # fmt: skip
    print(f"  wall clock ratio (noisy): {100 * (mm / mb - 1):+.2f}% ms/step")
    print(f"  one-time end of run (landscape + trajectory surface): "
          f"{statistics.median(m['final_s'] for m in mon):.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
