"""descent.nn.parallel: `DistributedDataParallel` with torch.nn.parallel's signature.

The work is descent.distributed's (MPI, gradient buckets overlapped with backward; see
docs/distributed.md). This class takes PyTorch's arguments so that

    model = nn.parallel.DistributedDataParallel(model, device_ids=[local_rank])

ports unchanged. One process drives one device, so `device_ids` may name at most one device and
`output_device` must be that device; descent has one process group (MPI's world).
"""

from __future__ import annotations

from typing import Any as _Any

from ..distributed.ddp import DistributedDataParallel as _MPIDataParallel
from .legacy import DataParallel  # torch.nn.parallel.DataParallel (one device, see legacy.py)

__all__ = ["DataParallel", "DistributedDataParallel"]


class DistributedDataParallel(_MPIDataParallel):
    """Data-parallel wrapper with torch.nn.parallel.DistributedDataParallel's arguments.

    Args:
        module: the model to replicate (rank 0's weights are copied to every rank).
        device_ids: None, or a one-element list: the device of this process (accepted, the
            model is wherever its parameters are).
        output_device: None or the same device as `device_ids[0]`.
        dim: the batch dimension; descent splits the data before the model, so only 0.
        broadcast_buffers: copy rank 0's buffers to every rank at each training forward.
        process_group: None (descent has one group, MPI's world).
        bucket_cap_mb: gradient bucket size in MiB (default 25, as torch).
        find_unused_parameters, check_reduction, gradient_as_bucket_view, static_graph:
            accepted; descent's buckets already skip parameters that get no gradient.

    Raises:
        ValueError: several device_ids, a different output_device, dim != 0, or a process
            group.
    """

    def __init__(
        self,
        module: _Any,
        device_ids: list[_Any] | None = None,
        output_device: _Any = None,
        dim: int = 0,
        broadcast_buffers: bool = True,
        process_group: _Any = None,
        bucket_cap_mb: float | None = None,
        find_unused_parameters: bool = False,
        check_reduction: bool = False,
        gradient_as_bucket_view: bool = False,
        static_graph: bool = False,
        **kwargs: _Any,
    ) -> None:
        del find_unused_parameters, check_reduction, gradient_as_bucket_view, static_graph
        unknown = set(kwargs) - {
            "delay_all_reduce_named_params",
            "param_to_hook_all_reduce",
            "mixed_precision",
            "device_mesh",
            "skip_all_reduce_unused_params",
        }
        if unknown:
            raise TypeError(
                f"DistributedDataParallel got unexpected keyword arguments {sorted(unknown)}"
            )
        if device_ids is not None and len(device_ids) > 1:
            raise ValueError(
                f"DistributedDataParallel: device_ids={device_ids!r} names several devices; "
                "descent runs one process per device (start one rank per GPU with mpirun)"
            )
        if output_device is not None and device_ids and str(output_device) != str(device_ids[0]):
            raise ValueError(
                f"DistributedDataParallel: output_device {output_device!r} differs from "
                f"device_ids[0] {device_ids[0]!r}; one process drives one device"
            )
        if dim != 0:
            raise ValueError(
                f"DistributedDataParallel: dim={dim}; descent shards the batch along dim 0 "
                "before the model (DistributedSampler / ShardedBatches)"
            )
        if process_group is not None:
            raise ValueError(
                "DistributedDataParallel: process_group must be None; descent has one process "
                "group, MPI's world"
            )
        super().__init__(
            module,
            bucket_mb=25.0 if bucket_cap_mb is None else float(bucket_cap_mb),
            broadcast_buffers=broadcast_buffers,
        )
        self.device_ids = device_ids
        self.output_device = output_device
        self.dim = dim
