"""descent.ao.quantization: torch.ao.quantization (descent.quantization's public names);
`descent.ao.quantization.observer` is descent.quantization.observer."""

import sys as _sys

from ...quantization import *  # noqa: F403
from ...quantization import __all__ as __all__  # noqa: PLC0414
from ...quantization import observer as observer  # noqa: PLC0414

# `from descent.ao.quantization.observer import MinMaxObserver` (torch's import path)
_sys.modules[f"{__name__}.observer"] = observer
