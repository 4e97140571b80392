"""LeNet-style CNN on 28x28 images, batch 64, cross-entropy, Adam: descent vs PyTorch eager.

descent.models.LeNet (conv 5x5 pad 2 -> ReLU -> max-pool 2 -> conv 5x5 -> ReLU -> max-pool 2 ->
400 -> 120 -> 84 -> 10) and the same network in torch.nn with descent's initial weights copied
in. One training step = zero_grad, forward, loss, backward, Adam step; the losses of the first
steps must agree before timing; interleaved, median of the repeats.

Run: python benchmarks/cnn.py [--repeats 60] [--warmup 10]
"""

from __future__ import annotations

import argparse

import _common  # first: re-execs without OPENBLAS_* tuning variables
import numpy as np
import torch
from _classifier import classifier_steps

import descent
from descent.models import LeNet

BATCH = 64
LR = 1e-3


class TorchLeNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = torch.nn.Conv2d(6, 16, 5)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc1 = torch.nn.Linear(400, 120)
        self.fc2 = torch.nn.Linear(120, 84)
        self.fc3 = torch.nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc3(torch.relu(self.fc2(x)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10)
    args = ap.parse_args()
    blas, threads = _common.setup_threads()

    descent.manual_seed(0)
    model = LeNet(num_classes=10)
    tmodel = TorchLeNet()
    ours = dict(model.named_parameters())
    with torch.no_grad():
        for name, p in tmodel.named_parameters():
            p.copy_(torch.from_numpy(ours[name].numpy().copy()))
    opt = descent.optim.Adam(model.parameters(), lr=LR)
    topt = torch.optim.Adam(tmodel.parameters(), lr=LR)

    rng = np.random.default_rng(0)
    pool = [
        (rng.standard_normal((BATCH, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, BATCH))
        for _ in range(8)
    ]
    step_descent, step_torch = classifier_steps("cnn", model, opt, tmodel, topt, pool)

    med = _common.time_interleaved(
        {"descent": step_descent, "torch": step_torch}, args.repeats, args.warmup
    )
    _common.print_machine(blas, threads)
    print(f"# LeNet-style CNN, 1x28x28, batch {BATCH}, Adam; median of {args.repeats}")
    print(_common.HEADER)
    _common.print_row("CNN (LeNet, 28x28, batch 64) step", med["descent"] * 1e3,
                      med["torch"] * 1e3, 1.2)  # fmt: skip


if __name__ == "__main__":
    main()
