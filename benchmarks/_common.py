"""Shared helpers for the ratio benchmarks (descent vs PyTorch eager in the same process).

Import this module FIRST in a benchmark script, before numpy or torch: it re-executes the
interpreter without `OPENBLAS_CORETYPE`/`OPENBLAS_L2_SIZE` (tuning variables set for other
programs on this machine would otherwise change OpenBLAS's kernels and skew the comparison).

Then:
    blas, threads = setup_threads()      # threadpoolctl report; torch uses NumPy's BLAS threads
    med = time_interleaved({"descent": f, "torch": g}, repeats=30, warmup=5)
    print_header(...); print_row(...)
"""

from __future__ import annotations

import os
import sys

_SCRUB = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(k in os.environ for k in _SCRUB) and os.environ.get("DESCENT_BENCH_REEXEC") != "1":
    _env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    _env["DESCENT_BENCH_REEXEC"] = "1"
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], _env)

import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from descent import backend as _backend  # noqa: E402

# A benchmark owns its process: it applies the malloc tuning the `descent` command applies
# (docs/settings.md, DESCENT_MALLOC_TUNE), so both libraries run as they would in training.
_backend.tune_malloc()


def blas_report() -> tuple[str, int]:
    """The BLAS library NumPy uses ('openblas 0.3.x') and its thread count (threadpoolctl)."""
    from threadpoolctl import threadpool_info

    for info in threadpool_info():
        if info.get("user_api") == "blas":
            name = f"{info.get('internal_api')} {info.get('version')}"
            return name, int(info["num_threads"])
    return "unknown", 1


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform string elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


_limits = None  # keeps threadpoolctl's limit alive for the whole run


def setup_threads(threads: int | None = None) -> tuple[str, int]:
    """Give PyTorch as many intra-op threads as NumPy's BLAS has; return (blas, threads).

    threads: limit NumPy's BLAS to this many first (threadpoolctl); None keeps its default
    (one per core). The environment variable DESCENT_BENCH_THREADS sets it for `make bench`.
    """
    global _limits
    import torch

    if threads is None and os.environ.get("DESCENT_BENCH_THREADS"):
        threads = int(os.environ["DESCENT_BENCH_THREADS"])
    if threads is not None:
        from threadpoolctl import threadpool_limits

        _limits = threadpool_limits(limits=threads, user_api="blas")
    blas, n = blas_report()
    torch.set_num_threads(n)
    return blas, n


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    repeats: int = 30,
    warmup: int = 5,
    block: int = 4,
    cpu: bool = False,
) -> dict:
    """Median seconds per call of each function, interleaved in blocks.

    Each round calls every contestant `block` times in a row (a a a a, b b b b, ...) and times
    all but the first call of each block; `block=1` times single calls (a, b, a, b, ...).
    Interleaving spreads drifts in machine load over the contestants; the median ignores the
    outliers such drifts leave. The untimed first call is there because a library's thread
    pools keep spinning for a while after its call (OpenBLAS's workers, libgomp's, XLA's
    Eigen pool), and the next library's first call pays for them: on a quiet 2-core machine,
    at two threads, single calls made PyTorch eager's baby-gpt step 130 ms against 46 ms in
    blocks, and descent's MLP step 4.8 ms against 2.1. With `cpu=True` each value is
    (median seconds, process CPU time / wall time over the timed calls): the cores used.
    """
    for _ in range(warmup):
        for f in fns.values():
            f()
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpus: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            for i in range(block):
                c0, t0 = time.process_time(), time.perf_counter()
                f()
                t1, c1 = time.perf_counter(), time.process_time()
                if i or block == 1:
                    wall[k].append(t1 - t0)
                    cpus[k].append(c1 - c0)
    if cpu:
        return {k: (float(np.median(v)), float(np.sum(cpus[k]) / np.sum(v)))
                for k, v in wall.items()}  # fmt: skip
    return {k: float(np.median(v)) for k, v in wall.items()}


def print_machine(blas: str, threads: int) -> None:
    """One line naming the machine, the BLAS and the thread count."""
    import torch

    print(
        f"# {cpu_model()}, {os.cpu_count()} cores; numpy {np.__version__} BLAS {blas}, "
        f"{threads} threads; torch {torch.__version__} "
        f"(torch.set_num_threads({torch.get_num_threads()}))"
    )


HEADER = f"{'benchmark':<34}{'descent ms':>12}{'PyTorch ms':>12}{'ratio':>8}{'target':>9}"


def print_row(name: str, d_ms: float, t_ms: float, target: float, extra: str = "") -> None:
    """One table row: descent ms, PyTorch ms, ratio, target and MET/MISSED."""
    ratio = d_ms / t_ms
    verdict = "MET" if ratio <= target else "MISSED"
    print(f"{name:<34}{d_ms:>12.2f}{t_ms:>12.2f}{ratio:>8.2f}{'<= ' + str(target):>9}  "
          f"{verdict}{extra}")  # fmt: skip
