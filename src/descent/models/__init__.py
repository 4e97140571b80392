"""Reference models: a multilayer perceptron, a LeNet-style CNN and a nanoGPT-shaped GPT.

    >>> from descent.models import GPT, GPTConfig
    >>> model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128))
    >>> logits, loss = model(idx, targets)          # idx, targets: (B, T) integer tensors

`PRESETS` holds the training recipes `descent train --preset NAME` starts from.
"""

from .cnn import LeNet
from .gpt import GPT, PRESETS, Block, GPTConfig
from .grok import GROK_PRESETS, Grok, GrokConfig
from .mlp import MLP

__all__ = [
    "GPT", "GPTConfig", "Block", "PRESETS", "LeNet", "MLP", "Grok", "GrokConfig", "GROK_PRESETS",
    "build_model", "config_from_dict",
]


def config_from_dict(d: dict) -> GPTConfig | GrokConfig:
    """The model config a checkpoint's `model_config` dict describes (Grok's has num_experts)."""
    return GrokConfig.from_dict(d) if "num_experts" in d else GPTConfig.from_dict(d)


def build_model(config: GPTConfig | GrokConfig, **kwargs) -> GPT | Grok:
    """The language model a config describes: `Grok(config, **kwargs)` or `GPT(config)`."""
    return Grok(config, **kwargs) if isinstance(config, GrokConfig) else GPT(config)
