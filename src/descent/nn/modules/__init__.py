"""torch.nn.modules: descent.nn's classes under PyTorch's module paths
(`from torch.nn.modules.loss import _Loss`, `torch.nn.modules.batchnorm._BatchNorm`, ...).

Each submodule re-exports the same classes as `descent.nn` (isinstance checks agree).
"""

from __future__ import annotations

import importlib as _importlib

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

# torch.nn.modules.utils is the argument helpers (_pair, ...): `from .. import *` above bound
# `utils` to torch.nn.utils, and `from . import utils` would find that name and load nothing
utils = _importlib.import_module(".utils", __name__)

__all__ = list(_nn_all)
