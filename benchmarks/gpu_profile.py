"""Where descent's GPU step spends its time: the `shakespeare-char` float32 iteration
(benchmarks/gpu.py's) under cProfile, after warm-up.

Prints ms/iteration with a device synchronisation per iteration, the host time of the Python
side (the same iterations timed without synchronising, which the GPU overlaps while the host
is the slower side), and cProfile's top functions by own time. Needs CUDA (exits 2 without).

    PYTHONPATH=src python benchmarks/gpu_profile.py [--iters 10] [--dtype float16]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--dtype", default=None, choices=[None, "float16", "bfloat16"])
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--smoke", action="store_true", help="tiny model on the CPU: a code check")
    ap.add_argument("--kernels", action="store_true",
                    help="also list the GPU kernels of 3 iterations by device time (through "
                    "torch.profiler's CUPTI tracing, which sees CuPy's launches too)")  # fmt: skip
    args = ap.parse_args()
    import gpu as bench  # benchmarks/gpu.py: the same model, batches and step

    import descent

    if args.smoke:
        bench.DEV = "cpu"
        bench.PRESET.update(n_layer=1, n_head=2, n_embd=32, block_size=16, batch_size=4)
    elif not descent.cuda.is_available():
        print("benchmarks/gpu_profile.py: no CUDA GPU through CuPy", file=sys.stderr)
        return 2
    import numpy as np

    train_ids, _, vocab = bench.load_tokens(bench.find_data(None))
    p = bench.PRESET
    rng = np.random.default_rng(0)
    batches = [tuple(descent.tensor(a, device=bench.DEV) for a in
                     bench.sample_batch(train_ids, rng, p["batch_size"], p["block_size"]))
               for _ in range(4)]  # fmt: skip
    model, opt = bench.descent_setup(vocab)
    step, _ = bench.descent_step_fn(model, opt, batches, args.dtype)
    for _ in range(3):
        step()
    descent.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.iters):
        step()
        descent.cuda.synchronize()
    synced = (time.perf_counter() - t0) * 1e3 / args.iters
    t0 = time.perf_counter()
    for _ in range(args.iters):
        step()
    host = (time.perf_counter() - t0) * 1e3 / args.iters
    descent.cuda.synchronize()
    print(f"{args.dtype or 'float32'}: {synced:.1f} ms/iteration synchronised each iteration; "
          f"{host:.1f} ms/iteration of host time unsynchronised")  # fmt: skip
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(args.iters):
        step()
    descent.cuda.synchronize()
    prof.disable()
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(args.top)
    print("\n".join(line[:160] for line in s.getvalue().splitlines()[:args.top + 12]))
    if args.kernels and not args.smoke:
        import torch
        from torch.profiler import ProfilerActivity, profile

        torch.zeros(1, device="cuda")  # torch's CUDA state, before CUPTI tracing starts
        with profile(activities=[ProfilerActivity.CUDA]) as kprof:
            for _ in range(3):
                step()
            descent.cuda.synchronize()
        events = [e for e in kprof.key_averages() if e.device_time_total > 0]
        total = sum(e.device_time_total for e in events)
        launches = sum(e.count for e in events)
        print(f"\nGPU kernels, 3 iterations: {total / 3e3:.1f} ms of device time per iteration, "
              f"{launches / 3:.0f} launches per iteration")  # fmt: skip
        events.sort(key=lambda e: -e.device_time_total)
        for e in events[:args.top]:
            print(f"  {e.device_time_total / 3e3:7.2f} ms/it  {e.count // 3:5d} x  {e.key[:110]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
