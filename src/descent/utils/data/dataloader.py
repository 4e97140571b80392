"""DataLoader with torch.utils.data's arguments, including real worker processes.

    loader = DataLoader(dataset, batch_size=32, shuffle=True, num_workers=2,
                        persistent_workers=True, generator=descent.Generator(0))

How a batch is made, in the main process (`num_workers=0`) or in a worker:

* map-style dataset: the batch sampler yields a list of indices, the samples are read with
  `dataset[i]` and `collate_fn` stacks them. When the dataset offers `get_batch(indices)`
  (descent's TensorDataset) and no `collate_fn` is given, one fancy-indexing call per tensor
  replaces the item-by-item loop: same values, much faster.
* iterable-style dataset: `batch_size` samples are taken from `iter(dataset)` and collated.
* `batch_size=None` turns batching off: every sample goes through `default_convert` alone.

Workers (`num_workers > 0`) are processes of the standard `multiprocessing` module (the
platform's default start method unless `multiprocessing_context` says otherwise; once CUDA is
initialised in the main process, pass 'spawn': CUDA does not survive a fork). Each worker
gets its own copy of the dataset, seeds descent's default generator and Python's `random` with
`base_seed + worker_id` (base_seed drawn from the loader's generator each epoch, as torch does),
then calls `worker_init_fn(worker_id)`. The main process hands out batches round-robin, keeps
`prefetch_factor` batches in flight per worker and yields them in order. Batches travel as NumPy
arrays (Tensors are unwrapped in the worker and wrapped again here). A worker's exception is
raised again in the main process with the worker's traceback; a worker that dies raises
RuntimeError instead of hanging.

`pin_memory` is accepted: descent's CPU tensors are ordinary NumPy arrays, and a transfer to
the GPU (`.to("cuda")`) copies them either way, so there is nothing to pin.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import random
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...creation import Generator, default_generator
from ...tensor import Tensor
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader", "WorkerInfo", "get_worker_info"]

# How long the main process waits on the result queue before it checks that every worker is
# still alive (seconds). A dead worker is reported within this time instead of a hang.
_POLL_S = 1.0


@dataclass(frozen=True)
class WorkerInfo:
    """What `get_worker_info()` returns inside a worker process."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """This worker's `WorkerInfo` (id, num_workers, seed, dataset); None in the main process.

    An IterableDataset uses it to give each worker its own share of the stream:

        info = get_worker_info()
        start = 0 if info is None else info.id
        step = 1 if info is None else info.num_workers
    """
    return _worker_info


# ---------------------------------------------------------------------------------------------
# Batches between processes: Tensors travel as their NumPy arrays.


class _WireTensor:
    """A Tensor's array on its way from a worker to the main process."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array


def _to_wire(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return _WireTensor(obj.numpy())
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_to_wire(o) for o in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_wire(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _to_wire(v) for k, v in obj.items()}
    return obj


def _from_wire(obj: Any) -> Any:
    if isinstance(obj, _WireTensor):
        return Tensor._wrap(obj.array)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_from_wire(o) for o in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_from_wire(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _from_wire(v) for k, v in obj.items()}
    return obj


class _WorkerError:
    """An exception raised in a worker, carried to the main process as text."""

    def __init__(self, worker_id: int, exc: BaseException) -> None:
        self.worker_id = worker_id
        self.exc_type = type(exc)
        self.text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))

    def reraise(self) -> None:
        msg = (
            f"Caught {self.exc_type.__name__} in DataLoader worker process {self.worker_id}.\n"
            f"Original traceback:\n{self.text}"
        )
        try:
            err = self.exc_type(msg)
        except Exception:  # an exception class that needs other arguments
            err = RuntimeError(msg)
        raise err


# A worker's answer when its copy of an iterable dataset is exhausted.
_END = "__descent_dataloader_end__"


# ---------------------------------------------------------------------------------------------
# Fetching: one batch from a map-style or an iterable dataset.


class _Fetcher:
    """Makes batches; the same code runs in the main process and in the workers."""

    def __init__(self, dataset, auto_collation: bool, collate_fn, batch_size, drop_last) -> None:
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.iterable = isinstance(dataset, IterableDataset)
        self.it: Iterator[Any] | None = None
        # descent's fast path: a whole batch by fancy indexing (same values as collating).
        self.fast = (
            not self.iterable
            and auto_collation
            and collate_fn is default_collate
            and hasattr(dataset, "get_batch")
        )

    def reset(self) -> None:
        if self.iterable:
            self.it = iter(self.dataset)

    def fetch(self, indices: Any) -> Any:
        """A batch for `indices` (map-style), or the next one (iterable; StopIteration at the
        end)."""
        if self.iterable:
            if not self.auto_collation:
                return self.collate_fn(next(self.it))
            samples = list(itertools.islice(self.it, self.batch_size))
            if not samples or (self.drop_last and len(samples) < self.batch_size):
                raise StopIteration
            return self.collate_fn(samples)
        if not self.auto_collation:
            return self.collate_fn(self.dataset[indices])
        if self.fast:
            return list(self.dataset.get_batch(np.asarray(indices, dtype=np.int64)))
        return self.collate_fn([self.dataset[i] for i in indices])


def _worker_loop(
    worker_id: int, num_workers: int, fetcher: _Fetcher, tasks, results, init_fn, seed: int
) -> None:
    """A worker process: seed, initialise, then answer tasks until told to stop (None).

    Tasks: ("reset", epoch) starts a new pass over an iterable dataset; ("fetch", epoch, k,
    indices) asks for batch k. Answers: (epoch, k, batch, error); for an exhausted iterable
    dataset, batch is the marker `_END`.
    """
    global _worker_info
    _worker_info = WorkerInfo(worker_id, num_workers, seed, fetcher.dataset)
    default_generator().manual_seed(seed)
    random.seed(seed)
    try:
        if init_fn is not None:
            init_fn(worker_id)
    except Exception as e:  # reported with the first batch asked of this worker
        init_error: _WorkerError | None = _WorkerError(worker_id, e)
    else:
        init_error = None
    while True:
        task = tasks.get()
        if task is None:
            return
        if task[0] == "reset":
            fetcher.reset()
            continue
        _, epoch, k, indices = task
        if init_error is not None:
            results.put((epoch, k, None, init_error))
            continue
        try:
            batch = _to_wire(fetcher.fetch(indices))
        except StopIteration:
            results.put((epoch, k, _END, None))
        except Exception as e:
            results.put((epoch, k, None, _WorkerError(worker_id, e)))
        else:
            results.put((epoch, k, batch, None))


class _WorkerPool:
    """`num_workers` processes, a task queue each, one shared result queue."""

    def __init__(self, loader: DataLoader, fetcher: _Fetcher, base_seed: int) -> None:
        ctx = loader.multiprocessing_context
        if ctx is None:
            ctx = multiprocessing.get_context()
        elif isinstance(ctx, str):
            ctx = multiprocessing.get_context(ctx)
        self.results = ctx.Queue()
        self.tasks = []
        self.procs = []
        self.epoch = 0
        n = loader.num_workers
        for w in range(n):
            q = ctx.Queue()
            p = ctx.Process(
                target=_worker_loop,
                args=(w, n, fetcher, q, self.results, loader.worker_init_fn, base_seed + w),
                daemon=True,
            )
            p.start()
            self.tasks.append(q)
            self.procs.append(p)

    def check_alive(self) -> None:
        for w, p in enumerate(self.procs):
            if not p.is_alive():
                raise RuntimeError(
                    f"DataLoader worker {w} (pid {p.pid}) exited unexpectedly with exit code "
                    f"{p.exitcode}; run with num_workers=0 to see the error in this process"
                )

    def shutdown(self) -> None:
        for q in self.tasks:
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        for q in [*self.tasks, self.results]:
            q.cancel_join_thread()  # never block on a pipe a dead worker no longer reads
            q.close()
        self.procs = []

    def __del__(self) -> None:
        if getattr(self, "procs", None):
            self.shutdown()


class _MultiProcessIter:
    """One epoch over a worker pool: batches out round-robin, answers back in order."""

    def __init__(self, loader: DataLoader, pool: _WorkerPool, owns_pool: bool) -> None:
        self.loader = loader
        self.pool = pool
        self.owns_pool = owns_pool
        pool.epoch += 1
        self.epoch = pool.epoch
        n = loader.num_workers
        self.iterable = isinstance(loader.dataset, IterableDataset)
        if self.iterable:
            for q in pool.tasks:
                q.put(("reset", self.epoch))
            self.index_iter: Iterator[Any] = itertools.repeat(None)
        else:
            self.index_iter = iter(loader._index_sampler())
        self.active = list(range(n))  # workers whose iterable dataset is not exhausted
        self.turn = 0
        self.sent = 0  # batches asked for
        self.next_k = 0  # the next batch to yield
        self.worker_of: dict[int, int] = {}
        self.buffer: dict[int, Any] = {}
        self.exhausted = False
        for _ in range(loader.prefetch_factor * n):
            self._send()

    def _send(self) -> None:
        if self.exhausted or not self.active:
            return
        try:
            indices = next(self.index_iter)
        except StopIteration:
            self.exhausted = True
            return
        w = self.active[self.turn % len(self.active)]
        self.turn += 1
        self.pool.tasks[w].put(("fetch", self.epoch, self.sent, indices))
        self.worker_of[self.sent] = w
        self.sent += 1

    def _receive(self) -> None:
        timeout = self.loader.timeout
        waited = 0.0
        while True:
            wait = _POLL_S if timeout <= 0 else min(_POLL_S, timeout - waited)
            try:
                epoch, k, batch, error = self.pool.results.get(timeout=wait)
            except queue.Empty:
                waited += wait
                self.pool.check_alive()
                if timeout > 0 and waited >= timeout:
                    raise RuntimeError(
                        f"DataLoader timed out after {timeout} seconds waiting for a batch"
                    ) from None
                continue
            if epoch != self.epoch:
                continue  # left over from an epoch that was abandoned part-way
            self.buffer[k] = (batch, error)
            return

    def __iter__(self) -> _MultiProcessIter:
        return self

    def __next__(self) -> Any:
        while True:
            if self.next_k >= self.sent:
                self._finish()
                raise StopIteration
            while self.next_k not in self.buffer:
                self._receive()
            batch, error = self.buffer.pop(self.next_k)
            w = self.worker_of.pop(self.next_k)
            self.next_k += 1
            if error is not None:
                self._finish()
                error.reraise()
            if isinstance(batch, str) and batch == _END:
                if w in self.active:  # this worker's copy of the dataset is used up
                    self.active.remove(w)
                self._send()  # keep the other workers busy
                continue
            self._send()
            return _from_wire(batch)

    def _finish(self) -> None:
        if self.owns_pool and self.pool.procs:
            self.pool.shutdown()

    def __del__(self) -> None:
        self._finish()


class _SingleProcessIter:
    def __init__(self, loader: DataLoader) -> None:
        self.fetcher = loader._fetcher()
        self.fetcher.reset()
        iterable = isinstance(loader.dataset, IterableDataset)
        self.index_iter = itertools.repeat(None) if iterable else iter(loader._index_sampler())

    def __iter__(self) -> _SingleProcessIter:
        return self

    def __next__(self) -> Any:
        return self.fetcher.fetch(next(self.index_iter))


class DataLoader:
    """Batches from a dataset, with torch.utils.data.DataLoader's arguments.

    Args:
        dataset: a map-style dataset (`__len__`, `__getitem__`) or an `IterableDataset`.
        batch_size: samples per batch; None for no batching (one converted sample at a time).
        shuffle: a new random order every epoch (from `generator`); map-style datasets only.
        sampler: an iterable of indices (a Sampler, or e.g. a list) instead of `shuffle`.
        batch_sampler: an iterable of index lists; excludes batch_size, shuffle, sampler and
            drop_last.
        num_workers: worker processes that read batches (0: read in this process).
        collate_fn: turns a list of samples into a batch (`default_collate` when None).
        pin_memory: accepted; nothing to pin for NumPy arrays (see the module docstring).
        drop_last: drop the last incomplete batch.
        timeout: seconds to wait for a worker's batch (0: forever), >= 0.
        worker_init_fn: called as `worker_init_fn(worker_id)` in each worker after seeding.
        multiprocessing_context: a start method name ('fork', 'spawn', 'forkserver') or a
            multiprocessing context.
        generator: the `descent.Generator` for shuffling and for the workers' base seed.
        prefetch_factor: batches in flight per worker (default 2; needs num_workers > 0).
        persistent_workers: keep the workers alive from one epoch to the next.
        pin_memory_device, in_order: accepted for PyTorch compatibility (batches always
            arrive in order).

    Raises:
        ValueError: for a combination of arguments PyTorch refuses (the message says which).
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Sampler | Iterable[Any] | None = None,
        batch_sampler: Iterable[list[Any]] | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context: Any = None,
        generator: Generator | None = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
    ) -> None:
        del pin_memory_device, in_order
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(
                f"DataLoader: num_workers must be a non-negative int, got {num_workers!r}"
            )
        if timeout < 0:
            raise ValueError(f"DataLoader: timeout must be >= 0, got {timeout}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "DataLoader: prefetch_factor needs num_workers > 0 (it counts batches in flight "
                "per worker)"
            )
        if persistent_workers and num_workers == 0:
            raise ValueError("DataLoader: persistent_workers=True needs num_workers > 0")
        if prefetch_factor is not None and prefetch_factor < 1:
            raise ValueError(f"DataLoader: prefetch_factor must be >= 1, got {prefetch_factor}")
        iterable = isinstance(dataset, IterableDataset)
        if iterable and (shuffle not in (None, False) or sampler is not None
                         or batch_sampler is not None):  # fmt: skip
            raise ValueError(
                "DataLoader with an IterableDataset: shuffle, sampler and batch_sampler do not "
                "apply (the dataset decides its order); shuffle inside the dataset instead"
            )
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "DataLoader: batch_sampler option is mutually exclusive with batch_size, "
                    "shuffle, sampler, and drop_last"
                )
            batch_size = None  # the batch sampler decides
        elif batch_size is None and drop_last:
            raise ValueError(
                "DataLoader: batch_size=None (no batching) is mutually exclusive with drop_last"
            )
        elif batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1
        ):  # fmt: skip
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if sampler is None and not iterable:
            sampler = (
                RandomSampler(dataset, generator=generator) if shuffle
                else SequentialSampler(dataset)
            )  # fmt: skip
        if batch_size is not None and batch_sampler is None and not iterable:
            batch_sampler = BatchSampler(sampler, int(batch_size), bool(drop_last))

        self.dataset = dataset
        self.batch_size = None if batch_size is None else int(batch_size)
        self.drop_last = bool(drop_last)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self._auto_collation = batch_sampler is not None or (iterable and batch_size is not None)
        self.collate_fn = collate_fn or (
            default_collate if self._auto_collation else default_convert
        )
        self.pin_memory = bool(pin_memory)
        self.timeout = float(timeout)
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.prefetch_factor = 2 if prefetch_factor is None else int(prefetch_factor)
        self.persistent_workers = bool(persistent_workers)
        self._pool: _WorkerPool | None = None

    def _index_sampler(self) -> Iterable[Any]:
        return self.batch_sampler if self._auto_collation else self.sampler

    def _fetcher(self) -> _Fetcher:
        return _Fetcher(
            self.dataset, self._auto_collation, self.collate_fn, self.batch_size, self.drop_last
        )

    def _base_seed(self) -> int:
        """A fresh seed per epoch for the workers, from the loader's generator (as torch)."""
        gen = self.generator if self.generator is not None else default_generator()
        return int(gen.numpy_rng.integers(0, 2**62))

    def __iter__(self) -> Iterator[Any]:
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if self.persistent_workers:
            if self._pool is None or not self._pool.procs:
                self._pool = _WorkerPool(self, self._fetcher(), self._base_seed())
            return _MultiProcessIter(self, self._pool, owns_pool=False)
        return _MultiProcessIter(
            self, _WorkerPool(self, self._fetcher(), self._base_seed()), owns_pool=True
        )

    def __len__(self) -> int:
        if isinstance(self.dataset, IterableDataset):
            try:
                n = len(self.dataset)
            except (TypeError, NotImplementedError):
                raise TypeError(
                    f"DataLoader: the IterableDataset {type(self.dataset).__name__} has no len"
                ) from None
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self._index_sampler())  # type: ignore[arg-type]

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None and pool.procs:
            pool.shutdown()

    def __repr__(self) -> str:
        return (
            f"DataLoader(dataset={type(self.dataset).__name__}, batch_size={self.batch_size}, "
            f"num_workers={self.num_workers})"
        )
