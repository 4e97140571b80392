"""Optimizers, learning-rate schedules and gradient clipping, with PyTorch's names.

    opt = descent.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    loss.backward()
    descent.optim.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad()

See docs/optim.md for the update rules and the state_dict layout.
"""

from .. import _namespace
from . import lr_scheduler
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .asgd import ASGD
from .clip import clip_grad_norm_, clip_grad_value_
from .lbfgs import LBFGS
from .lion import Lion
from .muon import Muon, MuonWithAdamW, muon_param_groups
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD
from .sparse_adam import SparseAdam

__all__ = [
    "Optimizer",
    "SGD",
    "SparseAdam",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Lion",
    "Muon",
    "MuonWithAdamW",
    "muon_param_groups",
    "Adadelta",
    "Adafactor",
    "Adamax",
    "NAdam",
    "RAdam",
    "LBFGS",
    "Rprop",
    "ASGD",
    "lr_scheduler",
    "clip_grad_norm_",
    "clip_grad_value_",
]

# The files (adam, sgd, optimizer, ...) are importable by path only, as torch.optim's are.
_namespace.hide_submodules(globals(), keep=("lr_scheduler", "swa_utils"))
del _namespace


def __getattr__(name: str):
    # torch.optim.swa_utils loads on first use (it imports descent.nn).
    if name == "swa_utils":
        import importlib  # noqa: PLC0415

        return importlib.import_module(f"{__name__}.swa_utils")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
