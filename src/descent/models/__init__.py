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
]
