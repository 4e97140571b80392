"""A fork server for the compat programs: import a library once, run each program in a fork.

`import torch` takes 1.6-2.5 s of each PyTorch run of a compat program, more than most programs
themselves. This server imports the library (and NumPy) once, then for each request forks a
child that runs one program as `__main__` (runpy), in its own working directory, with its own
environment variables, stdin from /dev/null and stdout/stderr to files. Every child starts from
the same freshly imported state (the server itself never runs a program), so programs cannot
see each other's seeds, default dtypes, flags or registrations, as with one process each.
Nothing has started a thread when the server forks (checked at start: forking a process with
threads could copy a held lock).

Protocol, one JSON line each way on stdin/stdout: the request {"script", "cwd", "env"}; the
replies {"pid": N} when the child starts and {"exit": code} when it ends.

Run as `python forkserver.py torch` or `python forkserver.py descent`.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import runpy
import sys
import traceback


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # not Linux: no way to tell, so assume none started
        return 1


def _child(request: dict) -> None:
    """Run one program in this (forked) process; never returns."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.update(request["env"])
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        for fd, name in ((1, "stdout.txt"), (2, "stderr.txt")):
            f = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(f, fd)
            os.close(f)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own descriptors
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        script = request["script"]
        sys.argv = [script]
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        try:
            runpy.run_path(script, run_name="__main__")
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:  # noqa: BLE001 - reported as a script's traceback would be
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()  # what interpreter exit would run (worker pools, writers)
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _start_numba() -> None:
    """Initialise numba's CPU target (LLVM's code generator) once, here: each child's first
    descent kernel otherwise pays for it, 0.21 s CPU of a forked child's first gelu forward +
    backward (0.56 -> 0.35 s; notes/s18h126/fork_numba_ab.py). It starts no thread (checked
    below, as for the import); the kernels themselves still load in each child, from numba's
    cache, as in a fresh process."""
    try:
        from numba.core.registry import cpu_target  # noqa: PLC0415 - only where installed
    except ImportError:
        return
    cpu_target.target_context  # noqa: B018 - the property initialises the target
    # A dispatcher's first compile or cache load refreshes the typing and target registries,
    # importing numba.np.arraymath and its BLAS check (scipy.linalg): ~1 s CPU per child
    cpu_target.typing_context.refresh()
    cpu_target.target_context.refresh()


# Modules that programs' runs import on first use (each library imports them lazily), loaded once
# here instead of in every child. A fresh process would import them when the program first
# touched them, with nothing to show for it but the time: importing them sets no default, seed
# or flag (checked for descent: default dtype, grad mode, both RNG states, thread count and
# NumPy's error state are the same after), it only defines the modules. Without them a torch
# child spent 1.3-2 s CPU importing torch._dynamo (torch.optim.Optimizer() does: sympy,
# torch.fx), and a descent child 0.2-1 s on descent.nn / descent.optim / the kernel modules, and
# 0.9 s on ml_dtypes where it touched bfloat16 or torch.save (notes/s24/h169).
PRELOAD = {
    "torch": ("torch._dynamo",),
    "descent": (
        "descent.nn",
        "descent.optim",
        "descent.utils.data",
        "descent.distributions",
        "descent.linalg",
        "descent.serialization",
        "descent.kernels.cpu",
        "descent.kernels._cpu_extra",
        "descent.kernels._cpu_optim",
        "descent.kernels._cpu_tie_order",
        "descent.kernels._cpu_fast",
        "descent.kernels._cpu_misc",
        "descent.kernels._cpu_bnpool",
        "ml_dtypes",  # not descent's bfloat16 itself: that stays unmade until a program asks
    ),
}


def main() -> None:
    library = sys.argv[1]
    importlib.import_module(library)
    import numpy  # noqa: F401, PLC0415 - every program uses it: load it once too

    if library == "descent":
        _start_numba()
    for name in PRELOAD.get(library, ()):
        importlib.import_module(name)
    if _threads() != 1:
        print(json.dumps({"error": f"importing {library} started threads: cannot fork"}))
        sys.exit(1)
    proto_out = sys.stdout
    print(json.dumps({"ready": library}), file=proto_out, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        print(json.dumps({"pid": pid}), file=proto_out, flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"exit": os.waitstatus_to_exitcode(status)}), file=proto_out,
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
