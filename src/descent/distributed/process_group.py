"""torch.distributed's process-group functions over descent's MPI layer.

    import descent.distributed as dist
    dist.init_process_group(backend="mpi")       # "gloo" and "nccl" are accepted too
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    dist.destroy_process_group()

descent has one process group, its world, over one of two transports (comm.py): MPI under an
MPI launcher (`world_size` / `rank`, when given, must agree with the launcher's), or, when
PyTorch's way starts the ranks (torch.multiprocessing.spawn, torchrun) with world_size > 1, TCP
sockets (tcp.py) meeting at MASTER_ADDR:MASTER_PORT or `init_method='tcp://host:port'`. The
backend name ('gloo', 'nccl', 'mpi') is accepted and recorded. With world_size 1 the group is
this process alone and neither MPI nor a socket is touched.
"""

from __future__ import annotations

import os
from typing import Any

from . import comm as _c

__all__ = [
    "ReduceOp",
    "destroy_process_group",
    "get_backend",
    "get_default_backend_for_device",
    "init_process_group",
    "is_backend_available",
    "is_gloo_available",
    "is_mpi_available",
    "is_nccl_available",
    "is_torchelastic_launched",
]

_backend: str | None = None


class ReduceOp:
    """Reduction names for `all_reduce(t, op=ReduceOp.SUM)` (strings descent's layer takes)."""

    SUM = "sum"
    AVG = "mean"
    MAX = "max"
    MIN = "min"
    PRODUCT = "product"
    BAND = "band"
    BOR = "bor"
    BXOR = "bxor"


def is_mpi_available() -> bool:
    """True when mpi4py can be imported (the transport under mpirun; without a launcher descent
    uses TCP sockets and needs no MPI)."""
    return _c.is_available()


def is_gloo_available() -> bool:
    """True: "gloo" runs over descent's TCP transport (or MPI under mpirun)."""
    return True


def is_nccl_available() -> bool:
    """False: descent has no NCCL (a "nccl" group is accepted and runs over MPI or TCP)."""
    return False


def is_backend_available(backend: str) -> bool:
    """Whether `backend` ('gloo', 'mpi', 'nccl', ...) is available, as PyTorch answers."""
    name = str(backend).lower()
    return name == "gloo" or (name == "mpi" and is_mpi_available())


def is_torchelastic_launched() -> bool:
    """True when torchrun (torchelastic) started this process (TORCHELASTIC_RUN_ID is set)."""
    return os.environ.get("TORCHELASTIC_RUN_ID") is not None


def get_default_backend_for_device(device: Any) -> str:
    """'gloo' for a CPU device, 'nccl' for CUDA (PyTorch's defaults; both run over descent's
    MPI or TCP transport). Raises ValueError for other device types, as PyTorch does."""
    if device is None or isinstance(device, bool):
        raise TypeError("get_default_backend_for_device: expected a device or a device name")
    kind = str(getattr(device, "type", device)).split(":")[0]
    backends = {"cpu": "gloo", "cuda": "nccl"}
    if kind not in backends:
        raise ValueError(f"Default backend not registered for device : {kind}")
    return backends[kind]


def init_process_group(
    backend: str | None = None,
    init_method: str | None = None,
    timeout: Any = None,
    world_size: int = -1,
    rank: int = -1,
    store: Any = None,
    group_name: str = "",
    pg_options: Any = None,
    device_id: Any = None,
) -> None:
    """Join the job's process group, as torch.distributed.init_process_group.

    Under an MPI launcher (mpirun, srun) the group is MPI's world. Without one:
    * world_size > 1 (torch.multiprocessing.spawn, torchrun, ranks started by hand): the ranks
      meet over TCP sockets (tcp.py) at `init_method='tcp://host:port'`, or, with
      `init_method=None` / `'env://'`, at MASTER_ADDR:MASTER_PORT; rank 0 listens there.
      `rank` / `world_size` default to the RANK / WORLD_SIZE environment variables (torchrun's).
    * world_size 1 (or unset): a group of this process alone; no sockets, no MPI.

    Args:
        backend: 'mpi', 'gloo', 'nccl', 'cpu:gloo,cuda:nccl' or None: recorded; the transport
            is MPI under a launcher, TCP otherwise.
        init_method: None, 'env://', 'tcp://host:port' or 'file:///path' (TCP only; MPI
            needs none).
        timeout: a datetime.timedelta (or seconds): how long the rendezvous and each
            collective of a TCP group wait for a peer before raising (default 30 minutes).
        world_size, rank: -1, or the values (checked against an MPI launcher's).
        store: a TCPStore / FileStore / HashStore (TCP): rank 0 announces its address there
            (instead of init_method).
        group_name, pg_options, device_id: accepted.

    Raises:
        RuntimeError: mpi4py is missing, world_size / rank disagree with the launcher, or a TCP
            peer never came within `timeout` (the message names the address).
        ValueError: world_size > 1 without a rank, or without a rendezvous address.
    """
    del group_name, pg_options, device_id
    global _backend
    if _c.launched_by_mpi():
        _join_mpi(world_size, rank)
    else:
        size = world_size if world_size not in (-1, None) else _env("WORLD_SIZE", 1)
        if size > 1:
            _join_tcp(size, rank, init_method, timeout, store)
        else:  # a single process (torch's world_size=1 start): no MPI import, no second's wait
            _c.join_world_of_one()
    _backend = backend or "mpi"


def _env(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"init_process_group: {name}={value!r} is not an integer") from None


def _join_mpi(world_size: int, rank: int) -> None:
    _c.init()
    if world_size not in (-1, None) and world_size != _c.get_world_size():
        raise RuntimeError(
            f"init_process_group: world_size={world_size}, but the MPI launcher started "
            f"{_c.get_world_size()} processes; start the job with mpirun -n {world_size}"
        )
    if rank not in (-1, None) and rank != _c.get_rank():
        raise RuntimeError(
            f"init_process_group: rank={rank}, but MPI says this process is rank "
            f"{_c.get_rank()}; let the launcher choose the rank (pass rank=-1)"
        )


def _join_tcp(size: int, rank: int, init_method: str | None, timeout: Any, store: Any) -> None:
    from . import tcp

    if store is not None and init_method is not None:
        raise ValueError("init_process_group: pass init_method or store, not both")
    if rank in (-1, None):
        rank = _env("RANK", -1)
        if rank < 0:
            raise ValueError(
                f"init_process_group: world_size={size} without an MPI launcher needs this "
                "process's rank: pass rank=r or set the RANK environment variable (as "
                "torch.multiprocessing.spawn's function or torchrun does), or start the job "
                f"with mpirun -n {size}"
            )
    if timeout is None:
        seconds = tcp.DEFAULT_TIMEOUT_S
    elif hasattr(timeout, "total_seconds"):
        seconds = timeout.total_seconds()
    else:
        seconds = float(timeout)
    path = tcp.address_file(init_method)
    if store is not None:  # rank 0 announces its address under a key of the store
        board, host, port = tcp.StoreBoard(store, rank), "", 0
    elif path is not None:  # ... or in a file
        board, host, port = tcp.FileBoard(path), "", 0
    else:
        board, (host, port) = None, tcp.parse_address(init_method)
    _c.init_tcp(rank, size, host, port, seconds, board)


def get_backend(group: Any = None) -> str:
    """The backend name given to init_process_group ('mpi' when none was given).

    Raises:
        RuntimeError: init_process_group has not been called.
    """
    del group
    if _backend is None or not _c.is_initialized():
        raise RuntimeError("get_backend: call init_process_group first")
    return _backend


def destroy_process_group(group: Any = None) -> None:
    """Leave the process group: finalises MPI when it was set up (it cannot be initialised
    again in this process then); a TCP group closes its sockets and, like a group of one (no
    launcher), can be formed again."""
    global _backend
    if group is not None:
        raise ValueError("destroy_process_group: descent has one group; pass group=None")
    _backend = None
    _c.destroy()
