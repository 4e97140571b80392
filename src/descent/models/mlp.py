"""A multilayer perceptron: Linear layers with an activation between them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import descent

from .. import nn

# Activations by name; a callable works as well (any Tensor -> Tensor function).
_ACTIVATIONS: dict[str, Callable] = {
    "relu": descent.relu,
    "tanh": descent.tanh,
    "gelu": descent.gelu,
    "sigmoid": descent.sigmoid,
    "silu": descent.silu,
}


class MLP(nn.Module):
    """A stack of fully connected layers: `sizes[0] -> sizes[1] -> ... -> sizes[-1]`.

    The activation is applied after every layer but the last, so the output is raw logits (or a
    regression value).

    Args:
        sizes: layer widths, input first, output last; at least two entries.
        activation: 'relu', 'tanh', 'gelu', 'sigmoid', 'silu' or a Tensor -> Tensor callable.
        bias: whether the Linear layers have biases.

    Example:
        >>> model = MLP([784, 128, 10])      # 784 inputs, one hidden layer of 128, 10 classes
        >>> logits = model(x)                # x: (N, 784) -> (N, 10)
    """

    def __init__(
        self, sizes: Sequence[int], activation: str | Callable = "relu", bias: bool = True
    ) -> None:
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or any(s <= 0 for s in sizes):
            raise ValueError(
                f"MLP: sizes must list at least an input and an output width, all positive; "
                f"got {sizes}"
            )
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise ValueError(
                    f"MLP: unknown activation {activation!r}; choose one of "
                    f"{sorted(_ACTIVATIONS)} or pass a callable"
                )
            self.activation_name = activation
            activation = _ACTIVATIONS[activation]
        else:
            self.activation_name = getattr(activation, "__name__", type(activation).__name__)
        self.sizes = sizes
        self.activation = activation
        self.layers = nn.ModuleList(
            nn.Linear(n_in, n_out, bias=bias) for n_in, n_out in zip(sizes[:-1], sizes[1:])
        )

    def forward(self, x):
        """(N, sizes[0]) -> (N, sizes[-1])."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return x

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, activation={self.activation_name}"
