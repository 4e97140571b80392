"""Neural-network building blocks with PyTorch's names: `Module`, `Parameter`, layers,
containers, `functional` (the `torch.nn.functional` equivalents) and `init`.

    >>> from descent import nn
    >>> model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    >>> model.num_parameters()
    97
"""

from . import functional, init
from .attention import CausalSelfAttention, MultiheadAttention
from .layers import (
    ELU,
    GELU,
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Bilinear,
    Conv1d,
    Conv2d,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ReLU,
    RMSNorm,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
    Unflatten,
)
from .module import Module, ModuleDict, ModuleList, RemovableHandle, Sequential
from .parameter import Parameter
from .rotary import RotaryEmbedding, apply_rotary_emb, rotary_cos_sin

__all__ = [
    "functional",
    "init",
    "Module",
    "Parameter",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "RemovableHandle",
    "Identity",
    "Linear",
    "Bilinear",
    "Embedding",
    "LayerNorm",
    "RMSNorm",
    "BatchNorm1d",
    "BatchNorm2d",
    "Dropout",
    "Conv1d",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "Flatten",
    "Unflatten",
    "ReLU",
    "GELU",
    "SiLU",
    "Tanh",
    "Sigmoid",
    "LeakyReLU",
    "ELU",
    "Softplus",
    "Softmax",
    "LogSoftmax",
    "MultiheadAttention",
    "CausalSelfAttention",
    "RotaryEmbedding",
    "apply_rotary_emb",
    "rotary_cos_sin",
]
