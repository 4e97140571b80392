"""torch.nn.modules: descent.nn's classes under PyTorch's module paths
(`from torch.nn.modules.loss import _Loss`, `torch.nn.modules.batchnorm._BatchNorm`, ...).

Each submodule re-exports the same classes as `descent.nn` (isinstance checks agree).
"""

from __future__ import annotations

from .. import *  # noqa: F403
from .. import __all__ as _nn_all
from . import (  # noqa: F401
    activation,
    adaptive,
    batchnorm,
    channelshuffle,
    container,
    conv,
    distance,
    dropout,
    flatten,
    fold,
    instancenorm,
    linear,
    loss,
    module,
    normalization,
    padding,
    pixelshuffle,
    pooling,
    rnn,
    sparse,
    transformer,
    upsampling,
)

__all__ = list(_nn_all)
