"""Neural-network building blocks with PyTorch's names: `Module`, `Parameter`, layers,
containers, `functional` (the `torch.nn.functional` equivalents) and `init`.

    >>> from descent import nn
    >>> model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    >>> model.num_parameters()
    97

One file per concept, as torch.nn.modules: module.py (Module), parameter.py, container.py
(Sequential, ModuleList, ModuleDict), linear.py, embedding.py, normalization.py, dropout.py,
conv.py, pooling.py, flatten.py, activation.py, attention.py; functional/ and init.py hold the
functions. Each file's `__all__` lists its public names once; this package exports their union.
"""

from . import (
    activation,
    activation_extra,
    attention,
    channel_dropout,
    container,
    conv,
    conv_transpose,
    distance,
    dropout,
    embedding,
    flatten,
    functional,
    groupnorm,
    init,
    instancenorm,
    linear,
    loss,
    loss_extra,
    module,
    normalization,
    parameter,
    parameter_containers,
    pooling,
    pooling_extra,
    rnn,
    transformer,
    upsampling,
)
from . import parallel, utils  # torch.nn.parallel, torch.nn.utils
from .activation import *  # noqa: F403
from .activation_extra import *  # noqa: F403
from .attention import *  # noqa: F403
from .channel_dropout import *  # noqa: F403
from .container import *  # noqa: F403
from .conv import *  # noqa: F403
from .conv_transpose import *  # noqa: F403
from .distance import *  # noqa: F403
from .dropout import *  # noqa: F403
from .embedding import *  # noqa: F403
from .flatten import *  # noqa: F403
from .gated_mlp import GatedMLP, ffn_size
from .gqa_attention import GroupedQueryAttention, KVCache, soft_cap
from .groupnorm import *  # noqa: F403
from .instancenorm import *  # noqa: F403
from .linear import *  # noqa: F403
from .loss import *  # noqa: F403
from .loss_extra import *  # noqa: F403
from .module import *  # noqa: F403
from .moe import MoE, MoEStats, Router, RouterOutput
from .normalization import *  # noqa: F403
from .parameter import *  # noqa: F403
from .parameter_containers import *  # noqa: F403
from .pooling import *  # noqa: F403
from .pooling_extra import *  # noqa: F403
from .rnn import *  # noqa: F403
from .rotary import RotaryEmbedding, apply_rotary_emb, rotary_cos_sin
from .transformer import *  # noqa: F403
from .upsampling import *  # noqa: F403

__all__ = (
    ["functional", "init", "parallel", "utils"]
    + module.__all__
    + parameter.__all__
    + container.__all__
    + linear.__all__
    + embedding.__all__
    + normalization.__all__
    + dropout.__all__
    + conv.__all__
    + pooling.__all__
    + flatten.__all__
    + activation.__all__
    + attention.__all__
    # rotary.py also defines rotary_frequencies, which descent.nn does not export.
    + ["RotaryEmbedding", "apply_rotary_emb", "rotary_cos_sin"]
    + ["GatedMLP", "ffn_size", "GroupedQueryAttention", "KVCache", "soft_cap"]
    + ["MoE", "MoEStats", "Router", "RouterOutput"]
    + loss.__all__
    + rnn.__all__
    + groupnorm.__all__
    + instancenorm.__all__
    + channel_dropout.__all__
    + parameter_containers.__all__
    + transformer.__all__
    + activation_extra.__all__
    + conv_transpose.__all__
    + distance.__all__
    + loss_extra.__all__
    + pooling_extra.__all__
    + upsampling.__all__
)
