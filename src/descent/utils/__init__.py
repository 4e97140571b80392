"""descent.utils: the `torch.utils` names PyTorch programs import (`descent.utils.data`,
`descent.utils.checkpoint`, `descent.utils._pytree`, `descent.utils.benchmark`,
`descent.utils.dlpack`)."""

import importlib as _importlib

from .. import _namespace
from . import checkpoint, data
from ._swap import swap_tensors

__all__ = ["checkpoint", "data", "swap_tensors"]
_namespace.hide_submodules(globals(), keep=("checkpoint", "data"))  # checkpoint_selective

# Loaded on first use: `torch.utils._pytree.tree_map(...)` works after `import torch` alone.
_LAZY = ("_pytree", "benchmark", "dlpack", "flop_counter", "hooks", "module_tracker", "tensorboard")


def __getattr__(name: str):
    if name in _LAZY:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
