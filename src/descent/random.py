"""`torch.random`: the default generator's seed and state, and `fork_rng`.

The functions are descent's top-level ones (`descent.manual_seed` & co.); `fork_rng()` runs a
block whose random draws leave the default generator (and the CUDA generators, when `devices`
names them) as they were before it, as torch.random.fork_rng does.
"""

from __future__ import annotations

import contextlib

from .creation import (
    default_generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    seed,
    set_rng_state,
)

__all__ = [
    "default_generator", "fork_rng", "get_rng_state", "initial_seed", "manual_seed", "seed",
    "set_rng_state",
]  # fmt: skip


@contextlib.contextmanager
def fork_rng(devices=None, enabled: bool = True, _caller: str = "fork_rng",
             _devices_kw: str = "devices", device_type: str = "cuda"):  # fmt: skip
    """Restore the default generator's state (and the listed devices' generators) on exit."""
    if not enabled:
        yield
        return
    from . import creation  # noqa: PLC0415

    state = get_rng_state()
    device_states = {}
    for dev in devices or ():
        name = f"cuda:{dev}" if isinstance(dev, int) else str(dev)
        gen = creation._device_generators.get(name)
        if gen is not None:
            device_states[name] = gen.get_state()
    try:
        yield
    finally:
        set_rng_state(state)
        for name, st in device_states.items():
            creation._device_generators[name].set_state(st)
