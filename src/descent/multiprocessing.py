"""`torch.multiprocessing`: Python's multiprocessing, plus `spawn` / `start_processes`.

Everything of the standard library's `multiprocessing` is re-exported (`Process`, `Queue`,
`get_context`, `set_start_method`, ...). Tensors travel between processes by pickling (their
arrays are copied; PyTorch moves storages to shared memory instead), so `set_sharing_strategy`
is accepted and changes nothing. `spawn(fn, args, nprocs)` runs `fn(i, *args)` in `nprocs`
processes and, with `join=True`, waits for them and raises `ProcessRaisedException` (with the
child's traceback) when one fails, as PyTorch's does. descent's distributed training itself
runs under MPI (docs/distributed.md), where `mpirun` starts the processes.
"""

from __future__ import annotations

import multiprocessing as _mp
import traceback as _traceback
from multiprocessing import *  # noqa: F403

__all__ = list(getattr(_mp, "__all__", [])) + [
    "ProcessContext", "ProcessExitedException", "ProcessRaisedException",
    "get_all_sharing_strategies", "get_sharing_strategy", "set_sharing_strategy", "spawn",
    "start_processes",
]  # fmt: skip

_strategy = "file_system"


def get_all_sharing_strategies() -> set:
    return {"file_descriptor", "file_system"}


def get_sharing_strategy() -> str:
    return _strategy


def set_sharing_strategy(new_strategy: str) -> None:
    """Accepted (descent pickles tensors between processes: nothing to share)."""
    global _strategy
    if new_strategy not in get_all_sharing_strategies():
        raise ValueError(f"set_sharing_strategy: unknown strategy {new_strategy!r}")
    _strategy = new_strategy


class _ProcessException(Exception):
    """The base of the two below (torch.multiprocessing.spawn.ProcessException, not a name of
    torch.multiprocessing itself)."""

    def __init__(self, msg: str, error_index: int, pid: int) -> None:
        super().__init__(msg)
        self.msg, self.error_index, self.pid = msg, error_index, pid

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.pid)


class ProcessRaisedException(_ProcessException):
    """A spawned process raised: the message holds its traceback."""


class ProcessExitedException(_ProcessException):
    """A spawned process exited with a non-zero code (or a signal) without raising."""

    def __init__(self, msg: str, error_index: int, error_pid: int, exit_code: int,
                 signal_name: str | None = None) -> None:  # fmt: skip
        super().__init__(msg, error_index, error_pid)
        self.exit_code, self.signal_name = exit_code, signal_name

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.pid, self.exit_code, self.signal_name)


def _wrap(fn, i, args, error_queue) -> None:
    try:
        fn(i, *args)
    except KeyboardInterrupt:
        pass
    except Exception:  # noqa: BLE001 - sent to the parent, which raises it
        error_queue.put(_traceback.format_exc())
        raise SystemExit(1) from None


class ProcessContext:
    """The processes of one `start_processes` call; `join()` waits and raises on failure."""

    def __init__(self, processes, error_queues) -> None:
        self.processes, self.error_queues = processes, error_queues

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def join(self, timeout: float | None = None) -> bool:
        """Wait for every process; True when all are done. Raises when one failed."""
        for i, p in enumerate(self.processes):
            p.join(timeout)
            if p.exitcode is None:
                return False
            if p.exitcode != 0:
                for q in self.processes:
                    if q.is_alive():
                        q.terminate()
                if not self.error_queues[i].empty():
                    tb = self.error_queues[i].get()
                    raise ProcessRaisedException(
                        f"\n\n-- Process {i} terminated with the following error:\n{tb}", i, p.pid
                    )
                raise ProcessExitedException(
                    f"process {i} terminated with exit code {p.exitcode}", i, p.pid, p.exitcode
                )
        return True


def start_processes(fn, args=(), nprocs: int = 1, join: bool = True, daemon: bool = False,
                    start_method: str = "spawn"):  # fmt: skip
    """Run `fn(i, *args)` for i in range(nprocs), each in its own process."""
    ctx = _mp.get_context(start_method)
    error_queues, processes = [], []
    for i in range(nprocs):
        q = ctx.SimpleQueue()
        p = ctx.Process(target=_wrap, args=(fn, i, tuple(args), q), daemon=daemon)
        p.start()
        error_queues.append(q)
        processes.append(p)
    context = ProcessContext(processes, error_queues)
    if not join:
        return context
    while not context.join():
        pass
    return None


def spawn(fn, args=(), nprocs: int = 1, join: bool = True, daemon: bool = False,
          start_method: str = "spawn"):  # fmt: skip
    """torch.multiprocessing.spawn: `start_processes` with the spawn start method."""
    return start_processes(fn, args, nprocs, join, daemon, start_method)
