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

from .. import _namespace
from . import (
    activation,
    activation_extra,
    adaptive,
    attention,
    buffer,
    channel_dropout,
    channelshuffle,
    container,
    conv,
    conv_transpose,
    distance,
    dropout,
    dropout_extra,
    embedding,
    embedding_bag,
    flatten,
    functional,
    gaps_layers,
    groupnorm,
    init,
    instancenorm,
    lazy,
    legacy,
    linear,
    loss,
    loss_extra,
    loss_margin,
    module,
    normalization,
    normalization_extra,
    padding,
    parallel,  # torch.nn.parallel
    parameter,
    parameter_containers,
    pooling,
    pooling_extra,
    rnn,
    transformer,
    transformer_decoder,
    upsampling,
    utils,  # torch.nn.utils
)
from .activation import *
from .activation_extra import *
from .adaptive import *
from .attention import *
from .buffer import *
from .channel_dropout import *
from .channelshuffle import *
from .container import *
from .conv import *
from .conv_transpose import *
from .distance import *
from .dropout import *
from .dropout_extra import *
from .embedding import *
from .embedding_bag import *
from .flatten import *
from .gaps_layers import *
from .gated_mlp import GatedMLP, ffn_size
from .gqa_attention import GroupedQueryAttention, KVCache, soft_cap
from .groupnorm import *
from .instancenorm import *
from .lazy import *
from .legacy import *
from .linear import *
from .linear_ce import LinearCrossEntropyLoss, LinearCrossEntropyOptions
from .loss import *
from .loss_extra import *
from .loss_margin import *
from .module import *
from .moe import MoE, MoEStats, Router, RouterOutput
from .normalization import *
from .normalization_extra import *
from .padding import *
from .parameter import *
from .parameter_containers import *
from .pooling import *
from .pooling_extra import *
from .rnn import *
from .rotary import RotaryEmbedding, apply_rotary_emb, rotary_cos_sin
from .transformer import *
from .transformer_decoder import *
from .upsampling import *

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
    + [n for n in attention.__all__ if n not in ("SDPBackend", "sdpa_kernel")]
    # rotary.py also defines rotary_frequencies, which descent.nn does not export.
    + ["RotaryEmbedding", "apply_rotary_emb", "rotary_cos_sin"]
    + ["GatedMLP", "ffn_size", "GroupedQueryAttention", "KVCache", "soft_cap"]
    + ["MoE", "MoEStats", "Router", "RouterOutput"]
    + loss.__all__
    + ["LinearCrossEntropyLoss", "LinearCrossEntropyOptions"]
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
    + padding.__all__
    + channelshuffle.__all__
    + transformer_decoder.__all__
    + embedding_bag.__all__
    + loss_margin.__all__
    + normalization_extra.__all__
    + dropout_extra.__all__
    + lazy.__all__
    + legacy.__all__
    + adaptive.__all__
    + buffer.__all__  # docs/torch_gaps_nn.md
    + gaps_layers.__all__
)


# torch keeps these two in torch.nn.attention only (descent.nn.attention has them too)
del SDPBackend, sdpa_kernel  # noqa: F821 - bound by `from .attention import *`
# The files (activation, conv, linear, ...) are importable by path only, as torch.nn's
# implementation modules live under torch.nn.modules; torch.nn's own submodule names stay.
_namespace.hide_submodules(globals(), keep=("attention", "functional", "init", "parallel",
                                            "parameter", "utils"))  # fmt: skip


def __getattr__(name: str):
    # `nn.modules.batchnorm._BatchNorm` without importing torch.nn.modules first, as PyTorch
    # allows (torch.nn imports it). Loaded on first use: descent.nn.modules re-exports this
    # package, so it cannot be imported while this package is still loading.
    if name == "modules":
        import importlib  # not `from . import modules`: that asks this __getattr__ again

        return importlib.import_module(".modules", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
