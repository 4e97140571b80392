"""torch.distributed's process-group functions over descent's MPI layer.

    import descent.distributed as dist
    dist.init_process_group(backend="mpi")       # "gloo" and "nccl" are accepted too
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    dist.destroy_process_group()

descent has one communication layer, MPI (comm.py), and one process group, its world: the
backend name is accepted and recorded, `init_method`, `store` and `timeout` are not needed
(the MPI launcher tells every process who it is), and `world_size` / `rank`, when given, must
agree with the launcher's. Outside a launcher the group is this process alone (world_size 1,
as PyTorch's single-GPU starts ask for) and MPI is not imported.
"""

from __future__ import annotations

from typing import Any

from . import comm as _c

__all__ = [
    "ReduceOp",
    "destroy_process_group",
    "get_backend",
    "init_process_group",
    "is_mpi_available",
]

_backend: str | None = None


class ReduceOp:
    """Reduction names for `all_reduce(t, op=ReduceOp.SUM)` (strings descent's layer takes)."""

    SUM = "sum"
    AVG = "mean"
    MAX = "max"
    MIN = "min"


def is_mpi_available() -> bool:
    """True when mpi4py can be imported (descent's only backend)."""
    return _c.is_available()


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
    """Join the job's process group (MPI's world), as torch.distributed.init_process_group.

    Args:
        backend: 'mpi', 'gloo', 'nccl', 'cpu:gloo,cuda:nccl' or None; all run over MPI.
        init_method, timeout, store, group_name, pg_options, device_id: accepted; the MPI
            launcher already connects the processes.
        world_size, rank: -1, or the values the launcher gives (checked).

    Raises:
        RuntimeError: mpi4py is missing, or world_size / rank disagree with the launcher.
    """
    del init_method, timeout, store, group_name, pg_options, device_id
    global _backend
    if _c.launched_by_mpi():
        _c.init()
    else:  # a single process (torch's world_size=1 start): no MPI import, no second's wait
        _c.join_world_of_one()
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
    _backend = backend or "mpi"


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
    again in this process then); a group of one (no launcher) can be formed again."""
    global _backend
    if group is not None:
        raise ValueError("destroy_process_group: descent has one group; pass group=None")
    _backend = None
    _c.destroy()
