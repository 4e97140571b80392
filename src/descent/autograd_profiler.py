"""`torch.autograd.profiler`: the older profiler spelling over `descent.profiler`.

    with torch.autograd.profiler.profile(record_shapes=True) as prof:
        with torch.autograd.profiler.record_function("forward"):
            loss = model(x).sum()
        loss.backward()
    print(prof.key_averages().table(sort_by="self_cpu_time_total"))

`profile(enabled=True, *, use_cuda=False, use_device=None, record_shapes=False,
with_flops=False, profile_memory=False, with_stack=False, with_modules=False, use_kineto=True,
use_cpu=True, ...)` records as `descent.profiler.profile` does (CPU times of every op and
backward node); `enabled=False` records nothing. `record_function` is descent.profiler's.
"""

from __future__ import annotations

import contextlib

from .autograd_profiler_util import EventList
from .profiler import profile as _profile
from .profiler import record_function

__all__ = ["profile", "record_function", "EventList", "emit_nvtx", "emit_itt"]


class profile(_profile):  # noqa: N801 - torch's name
    """torch.autograd.profiler.profile's signature over descent.profiler.profile."""

    def __init__(self, enabled: bool = True, *, use_cuda: bool = False, use_device=None,
                 record_shapes: bool = False, with_flops: bool = False,
                 profile_memory: bool = False, with_stack: bool = False,
                 with_modules: bool = False, use_kineto: bool = True, use_cpu: bool = True,
                 experimental_config=None, acc_events: bool = False,
                 custom_trace_id_callback=None) -> None:  # fmt: skip
        super().__init__(record_shapes=record_shapes, profile_memory=profile_memory,
                         with_stack=with_stack, with_flops=with_flops,
                         with_modules=with_modules)  # fmt: skip
        self.enabled = bool(enabled)

    def __enter__(self):
        return super().__enter__() if self.enabled else self

    def __exit__(self, *exc):
        return super().__exit__(*exc) if self.enabled else False


@contextlib.contextmanager
def emit_nvtx(enabled: bool = True, record_shapes: bool = False):
    """NVTX ranges for Nsight: a no-op context (descent emits none)."""
    yield


@contextlib.contextmanager
def emit_itt(enabled: bool = True, record_shapes: bool = False):
    """Intel ITT ranges for VTune: a no-op context (descent emits none)."""
    yield
