"""The torch.nn.functional names that are torch's own top-level functions (F.conv_tbc is
torch.conv_tbc, F.native_channel_shuffle is torch.native_channel_shuffle): the same objects as
descent.conv_tbc and descent.native_channel_shuffle (descent/gaps_nn.py, docs/torch_gaps_nn.md).
"""

from __future__ import annotations

from ...gaps_nn import conv_tbc, native_channel_shuffle

__all__ = ["conv_tbc", "native_channel_shuffle"]
