"""The default install's speed: the baby-gpt step with descent's numba kernels and without.

`pip install descent` without extras has no numba: GELU, softmax, layer norm and Adam then run
as sequences of NumPy calls. This times the same training step (benchmarks/gpt_step.py's:
forward, loss, backward, clip, AdamW) with `descent.kernels.cpu` enabled and disabled, in one
process, interleaved, median wall time and CPU time per step (CPU time is steadier than wall
time on a shared machine; the load average is printed). Eager and `descent.compile` both.

Run: python benchmarks/default_install.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import time

import _common  # noqa: F401, I001  (first: re-execs without OPENBLAS_* tuning variables)
import numpy as np

import descent
from descent.kernels import cpu as kernels
from descent.models import GPT, PRESETS, GPTConfig
from descent.optim import clip_grad_norm_


def make_step(compiled: bool, use_kernels: bool):
    p = PRESETS["baby-gpt"]
    cfg = GPTConfig(vocab_size=65, block_size=p["block_size"], n_layer=p["n_layer"],
                    n_head=p["n_head"], n_embd=p["n_embd"], dropout=0.0, bias=False)  # fmt: skip
    descent.manual_seed(1337)
    model = GPT(cfg)
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    rng = np.random.default_rng(0)
    batches = [tuple(descent.tensor(a) for a in rng.integers(0, 65, (2, 12, 64)))
               for _ in range(8)]  # fmt: skip

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        _, loss = model(x, y)
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    f = descent.compile(step) if compiled else step
    state = {"i": 0}

    def run():
        kernels.set_enabled(use_kernels)
        x, y = batches[state["i"] % 8]
        state["i"] += 1
        return f(x, y).item()

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    if not kernels.available():
        raise SystemExit("numba is not installed: nothing to compare")
    print(f"# load average before: {os.getloadavg()}")
    fns = {(c, k): make_step(c, k) for c in (False, True) for k in (True, False)}
    for f in fns.values():
        for _ in range(3):
            f()
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for _ in range(args.repeats):
        for k, f in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            f()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    print(f"{'step':<28}{'wall ms':>10}{'cpu ms':>10}")
    for (c, k) in fns:
        name = f"{'compiled' if c else 'eager'}, {'numba' if k else 'NumPy only'}"
        print(f"{name:<28}{np.median(wall[(c, k)]) * 1e3:>10.2f}"
              f"{np.median(cpu[(c, k)]) * 1e3:>10.2f}")  # fmt: skip
    for c in (False, True):
        r = np.median(cpu[(c, False)]) / np.median(cpu[(c, True)])
        print(f"# {'compiled' if c else 'eager'}: NumPy-only / numba CPU time = {r:.2f}")
    print(f"# load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
