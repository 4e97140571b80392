"""Learning-rate schedules with PyTorch's interface and PyTorch's arithmetic.

A scheduler sets `group["lr"]` for each parameter group of its optimizer. As PyTorch's, the
chainable schedules (Step, MultiStep, Exponential, CosineAnnealing, Linear, Constant, Polynomial,
Multiplicative) step recursively from each group's CURRENT lr (`_chainable_lr`, PyTorch's
`get_lr`), so a hand-made change of `group["lr"]` carries forward and the values are PyTorch's
bit for bit; `step(epoch)` and `lr_at(step)` are the closed form from `base_lrs`. Resuming needs
the optimizer's state (its lrs) and the scheduler's, as in PyTorch.

Usage (call `scheduler.step()` after `optimizer.step()`, as in PyTorch):

    opt = descent.optim.AdamW(model.parameters(), lr=1e-3)
    sched = descent.optim.lr_scheduler.WarmupCosineLR(opt, warmup_iters=100,
                                                      lr_decay_iters=2000, min_lr=1e-4)
    for it in range(max_iters):
        ...; opt.step(); sched.step()

The schedules live in one file per family; import them from this package (the files' names
start with `_` so that none shadows a name of the package):

    _base            LRScheduler (step, get_last_lr, state_dict, resuming with last_epoch)
    _decay           LambdaLR, StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR,
                     LinearLR, ConstantLR, PolynomialLR
    _cyclic          OneCycleLR, CosineAnnealingWarmRestarts, CyclicLR
    _warmup_cosine   warmup_cosine_lr, WarmupCosineLR (nanoGPT's)
    _sequential      SequentialLR
    _chained         MultiplicativeLR, ChainedScheduler
    _plateau         ReduceLROnPlateau
"""

from . import _base, _chained, _cyclic, _decay, _plateau, _sequential, _warmup_cosine
from ._base import *
from ._base import EPOCH_DEPRECATION_WARNING  # noqa: F401 - a name of PyTorch's module
from ._chained import *
from ._cyclic import *
from ._decay import *
from ._plateau import *
from ._sequential import *
from ._warmup_cosine import *

# Each name is listed once, in the `__all__` of the file that defines it.
__all__ = (
    _base.__all__
    + _decay.__all__
    + _cyclic.__all__
    + _warmup_cosine.__all__
    + _sequential.__all__
    + _plateau.__all__
    + _chained.__all__
)

# PyTorch's deprecated base-class name; custom schedulers subclass it and override get_lr().
_LRScheduler = LRScheduler  # noqa: F405
