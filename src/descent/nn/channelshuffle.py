"""ChannelShuffle (torch.nn.modules.channelshuffle): ShuffleNet's channel permutation."""

from __future__ import annotations

from . import functional as F
from .module import Module

__all__ = ["ChannelShuffle"]


class ChannelShuffle(Module):
    """Split the C channels (dim 1) into `groups` groups and interleave them: channel
    i (C / groups) + j moves to j groups + i (Zhang et al. 2018, "ShuffleNet")."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, input):
        return F.channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
