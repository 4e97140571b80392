"""torch.nn.modules.module: the same classes as `descent.nn` (one implementation;
this path exists for programs that import from it)."""

from __future__ import annotations

from .. import (  # noqa: F401
    Module,
)
from ..module_hooks import (  # noqa: F401 - torch.nn.modules.module's global hooks
    register_module_buffer_registration_hook,
    register_module_forward_hook,
    register_module_forward_pre_hook,
    register_module_full_backward_hook,
    register_module_full_backward_pre_hook,
    register_module_module_registration_hook,
    register_module_parameter_registration_hook,
)

__all__ = [
    "Module", "register_module_forward_hook", "register_module_forward_pre_hook",
    "register_module_full_backward_hook", "register_module_full_backward_pre_hook",
    "register_module_buffer_registration_hook", "register_module_module_registration_hook",
    "register_module_parameter_registration_hook",
]  # fmt: skip
