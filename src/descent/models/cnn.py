"""LeNet: the small convolutional classifier of LeCun et al. (1998), for 1x28x28 images.

The shape follows the classic LeNet-5 with the modern defaults (ReLU, max pooling):

    (N, 1, 28, 28) --conv 5x5 pad 2--> (N, 6, 28, 28) --pool--> (N, 6, 14, 14)
                   --conv 5x5-------->  (N, 16, 10, 10) --pool--> (N, 16, 5, 5)
                   --flatten--> (N, 400) --> 120 --> 84 --> num_classes
"""

from __future__ import annotations

import descent

from .. import nn


class LeNet(nn.Module):
    """A LeNet-style CNN for single-channel 28x28 images (MNIST-sized).

    Args:
        num_classes: the number of output logits.
        in_channels: input channels (1 for greyscale).
        channels: widths of the two convolution layers.
        hidden: widths of the two fully connected hidden layers.

    Example:
        >>> model = LeNet(num_classes=10)
        >>> logits = model(images)           # images: (N, 1, 28, 28) -> (N, 10)
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        channels: tuple[int, int] = (6, 16),
        hidden: tuple[int, int] = (120, 84),
    ) -> None:
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(in_channels, c1, kernel_size=5, padding=2)  # keeps 28x28
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=5)  # 14x14 -> 10x10
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(c2 * 5 * 5, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], num_classes)

    def forward(self, x):
        """(N, C, 28, 28) -> (N, num_classes) logits."""
        if x.ndim != 4 or tuple(x.shape[2:]) != (28, 28):
            raise ValueError(
                f"LeNet: expected images of shape (N, C, 28, 28), got {tuple(x.shape)}; "
                "reshape flat 784-vectors with x.view(-1, 1, 28, 28)"
            )
        x = self.pool(descent.relu(self.conv1(x)))  # (N, c1, 14, 14)
        x = self.pool(descent.relu(self.conv2(x)))  # (N, c2, 5, 5)
        x = x.flatten(1)  # (N, c2 * 25)
        x = descent.relu(self.fc1(x))
        x = descent.relu(self.fc2(x))
        return self.fc3(x)
