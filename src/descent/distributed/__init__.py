"""descent.distributed: data-parallel training over MPI (the `distributed` extra: mpi4py).

Start a job with `mpirun -n N python train.py` (or `mpirun -n N descent train ...`). Every rank
runs the same program; rank 0 writes logs and checkpoints. Without MPI the same calls answer
for a world of one, and mpi4py is never imported. See docs/distributed.md.

    import descent.distributed as dist
    dist.init()
    model = dist.DistributedDataParallel(model)          # rank 0's weights everywhere
    stream = dist.ShardedBatches(stream)                 # each rank its rows of the batch
    loss.backward()                                      # gradients averaged, overlapped
"""

from .comm import (
    Work,
    all_gather,
    all_gather_into_tensor,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    broadcast_object,
    broadcast_object_list,
    destroy,
    get_local_rank,
    get_rank,
    get_world_size,
    init,
    is_available,
    is_initialized,
    is_main,
    launched_by_mpi,
)
from .ddp import DDP, DistributedDataParallel
from .process_group import (
    ReduceOp,
    destroy_process_group,
    get_backend,
    get_default_backend_for_device,
    init_process_group,
    is_backend_available,
    is_gloo_available,
    is_mpi_available,
    is_nccl_available,
    is_torchelastic_launched,
)
from .sampler import DistributedSampler, ShardedBatches, local_batch_size, shard_rows

__all__ = [
    "DDP",
    "DistributedDataParallel",
    "DistributedSampler",
    "ReduceOp",
    "ShardedBatches",
    "Work",
    "all_gather",
    "all_gather_into_tensor",
    "all_gather_object",
    "all_reduce",
    "barrier",
    "broadcast",
    "broadcast_object",
    "broadcast_object_list",
    "destroy",
    "destroy_process_group",
    "get_backend",
    "get_default_backend_for_device",
    "get_local_rank",
    "get_rank",
    "get_world_size",
    "init",
    "init_process_group",
    "is_available",
    "is_backend_available",
    "is_gloo_available",
    "is_initialized",
    "is_main",
    "is_mpi_available",
    "is_nccl_available",
    "is_torchelastic_launched",
    "launched_by_mpi",
    "local_batch_size",
    "shard_rows",
]
