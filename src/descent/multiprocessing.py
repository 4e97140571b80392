"""`torch.multiprocessing`: Python's multiprocessing, plus `spawn` / `start_processes`.

Everything of the standard library's `multiprocessing` is re-exported (`Process`, `Queue`,
`get_context`, `set_start_method`, ...). Tensors travel between processes by pickling (their
arrays are copied; PyTorch moves storages to shared memory instead), so `set_sharing_strategy`
is accepted and changes nothing. `spawn(fn, args, nprocs)` runs `fn(i, *args)` in `nprocs`
processes and, with `join=True`, waits for them and raises `ProcessRaisedException` (with the
child's traceback) when one fails, as PyTorch's does. Spawned processes that call
`descent.distributed.init_process_group(world_size=n)` meet over TCP sockets (PyTorch's DDP
tutorial; docs/distributed.md); under `mpirun`, MPI starts the processes instead.
"""

from __future__ import annotations

import multiprocessing as _mp
import multiprocessing.connection as _connection
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
        self._ended: list = []  # processes seen to end, in that order

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def join(self, timeout: float | None = None) -> bool:
        """Wait for every process; True when all are done, False when `timeout` passed first.

        Waits on all of them at once (as PyTorch's): the first process to fail terminates the
        others and raises, even while an earlier one still waits for it (a rank blocked in a
        rendezvous or a collective with the dead one).
        """
        alive = [p for p in self.processes if p.exitcode is None]
        if alive:
            ready = _connection.wait([p.sentinel for p in alive], timeout=timeout)
            for p in alive:  # note who ended first, in the order the wait reported them
                if p.sentinel in ready and p not in self._ended:
                    p.join()  # its sentinel fired: it has ended, reap it for its exit code
                    self._ended.append(p)
        for p in self.processes:
            if p.exitcode is not None and p not in self._ended:
                self._ended.append(p)
        failed = [p for p in self._ended if p.exitcode != 0]
        if failed:
            p = failed[0]
            i = self.processes.index(p)
            for q in self.processes:
                if q.is_alive():
                    q.terminate()
            for q in self.processes:
                q.join(5)
            if not self.error_queues[i].empty():
                tb = self.error_queues[i].get()
                raise ProcessRaisedException(
                    f"\n\n-- Process {i} terminated with the following error:\n{tb}", i, p.pid
                )
            raise ProcessExitedException(
                f"process {i} terminated with exit code {p.exitcode}", i, p.pid, p.exitcode
            )
        if len(self._ended) < len(self.processes):
            return False
        for p in self.processes:
            p.join()
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
