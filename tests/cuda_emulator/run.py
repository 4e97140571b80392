"""Run descent's fused CUDA kernels on a CPU, through their own CUDA C++ source (a development
aid for machines without a GPU; see README.md). Needs g++ >= 11 (C++20 std::barrier).

    python tests/cuda_emulator/run.py kernels      # tests/test_gpu.py's kernel tests
    python tests/cuda_emulator/run.py ops [FILES]  # CPU test files with every op's fused path
                                                   # (default: losses, layers, optim, amp)
Extra pytest arguments go after `--`.
"""

from __future__ import annotations

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import fakecupy  # noqa: E402
import pytest  # noqa: E402

from descent import backend  # noqa: E402
from descent.kernels import cuda as kc  # noqa: E402

DEFAULT_OPS_FILES = ["test_losses.py", "test_nn_layers.py", "test_optim.py", "test_amp.py"]


def main() -> int:
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    mode = argv[0] if argv else "kernels"
    fake = fakecupy.make()
    # Two warps per block instead of four: the cross-warp reductions still run, with half the
    # threads (a thread per CUDA thread is what makes the emulation slow). THREADS=128 for all.
    kc._THREADS = int(os.environ.get("THREADS", "64"))
    if mode == "kernels":
        # descent sees a "GPU" whose arrays are NumPy's: only the kernel tests make sense here.
        backend._cupy, backend._cupy_checked = fake, True
        args = [os.path.join(TESTS, "test_gpu.py"), "-k", "kernel", "-p", "no:cacheprovider"]
        return pytest.main(args + extra)
    if mode == "ops":
        kc._cp = lambda: fake
        calls: dict[str, int] = {}
        dtypes = (np.dtype(np.float32), np.dtype(np.float16))

        def fused(name, *arrays):
            """backend.fused, answering float32/float16 NumPy arrays with the CUDA kernels."""
            if not backend._fused_enabled or not arrays:
                return None
            a0 = arrays[0]
            if not isinstance(a0, np.ndarray) or a0.dtype not in dtypes:
                return None
            if any(a is not None and a.dtype.kind == "f" and a.dtype != a0.dtype for a in arrays):
                return None
            calls[name] = calls.get(name, 0) + 1
            return kc.KERNELS[name]

        backend.fused = fused
        files = argv[1:] or DEFAULT_OPS_FILES
        args = [os.path.join(TESTS, f) for f in files]
        args += ["-k", "not cupy", "-p", "no:cacheprovider"]
        rc = pytest.main(args + extra)
        print("fused kernel calls:", dict(sorted(calls.items())))
        if not calls:
            print("no fused kernel was called: the harness did not reach the ops")
            return 1
        return rc
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
