"""Dropout: the layer form of `descent.nn.functional.dropout`, switched by train()/eval()."""

from __future__ import annotations

from . import functional as F
from .channel_dropout import _DropoutNd

__all__ = ["Dropout"]


class Dropout(_DropoutNd):
    """Zero each element with probability p in training and scale the rest by 1/(1-p).

    The identity in eval mode. Random draws come from the default generator
    (`descent.manual_seed`). A `_DropoutNd`, as in PyTorch, so code that finds every dropout
    layer with `isinstance(m, nn.modules.dropout._DropoutNd)` finds this one.
    """

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)
