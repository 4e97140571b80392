"""CNN training steps, descent vs PyTorch eager: LeNet (Adam) or a ResNet-style net (SGD).

--model lenet: descent.models.LeNet (conv 5x5 pad 2 -> ReLU -> max-pool 2 -> conv 5x5 -> ReLU ->
max-pool 2 -> 400 -> 120 -> 84 -> 10) and the same network in torch.nn with descent's initial
weights copied in. One training step = zero_grad, forward, loss, backward, Adam step; the
losses of the first steps must agree before timing; interleaved, median of the repeats.

--model resnet: a small ResNet-style net, batch 32, 3x32x32 (or --size 56) images: a 3x3 stem
conv 3->32 + BatchNorm + ReLU, a residual block (two 3x3 convs with BatchNorm) at 32 channels,
max-pool 2, conv 32->64 + BN + ReLU, a residual block at 64, max-pool 2, conv 64->128 + BN +
ReLU, global average pool, linear 128->10; SGD with momentum 0.9. Prints cpu/wall (the cores
used) per library and the load average before and after.

Run: python benchmarks/cnn.py [--model lenet|resnet] [--size 32|56] [--repeats 60] [--warmup 10]
     [--threads N] [--profile]   (pin with taskset -c 0 for the one-core figure)
"""

from __future__ import annotations

import argparse
import os

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


def _block_pair(lib, c: int):
    """(conv-bn-relu-conv-bn) residual body at c channels, no conv bias, in `lib`'s nn."""
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
        nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
    )  # fmt: skip


def _conv_bn_relu(lib, ci: int, co: int):
    nn = lib.nn
    return nn.Sequential(nn.Conv2d(ci, co, 3, padding=1, bias=False), nn.BatchNorm2d(co), nn.ReLU())


def resnet_net(lib):
    """The ResNet-style net of the docstring, built from `lib` (descent or torch)."""
    nn = lib.nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = _conv_bn_relu(lib, 3, 32)
            self.block1 = _block_pair(lib, 32)
            self.pool = nn.MaxPool2d(2)
            self.up2 = _conv_bn_relu(lib, 32, 64)
            self.block2 = _block_pair(lib, 64)
            self.up3 = _conv_bn_relu(lib, 64, 128)
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(128, 10)
            self.relu = nn.ReLU()

        def forward(self, x):
            x = self.stem(x)
            x = self.pool(self.relu(x + self.block1(x)))
            x = self.up2(x)
            x = self.pool(self.relu(x + self.block2(x)))
            x = self.up3(x)
            return self.fc(self.gap(x).flatten(1))

    return Net()


def _copy_weights(model, tmodel) -> None:
    ours = dict(model.named_parameters())
    with torch.no_grad():
        for name, p in tmodel.named_parameters():
            p.copy_(torch.from_numpy(ours[name].numpy().copy()))


def main_resnet(args) -> None:
    blas, threads = _common.setup_threads(args.threads)
    descent.manual_seed(0)
    model, tmodel = resnet_net(descent), resnet_net(torch)
    _copy_weights(model, tmodel)
    opt = descent.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    s = args.size
    pool = [
        (rng.standard_normal((32, 3, s, s), dtype=np.float32), rng.integers(0, 10, 32))
        for _ in range(4)
    ]
    step_descent, step_torch = classifier_steps("resnet", model, opt, tmodel, topt, pool)
    if args.profile:
        _profile(step_descent, step_torch)
        return
    load0 = os.getloadavg()
    med = _common.time_interleaved(
        {"descent": step_descent, "torch": step_torch}, args.repeats, args.warmup, cpu=True
    )
    load1 = os.getloadavg()
    _common.print_machine(blas, threads)
    print(f"# ResNet-style CNN, 3x{s}x{s}, batch 32, SGD momentum; median of {args.repeats}; "
          f"load average {load0[0]:.2f} -> {load1[0]:.2f}")  # fmt: skip
    print(_common.HEADER)
    (d, dc), (t, tc) = med["descent"], med["torch"]
    _common.print_row(f"ResNet-style {s}x{s} b32 step", d * 1e3, t * 1e3, 1.0,
                      f"  cpu/wall descent {dc:.2f} torch {tc:.2f}")  # fmt: skip


def _profile(step_descent, step_torch) -> None:
    """cProfile of 5 descent steps (top functions by own time) and torch's profiler table."""
    import cProfile
    import pstats

    pr = cProfile.Profile()
    pr.enable()
    for _ in range(5):
        step_descent()
    pr.disable()
    pstats.Stats(pr).sort_stats("tottime").print_stats(25)
    with torch.profiler.profile() as prof:
        for _ in range(5):
            step_torch()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("lenet", "resnet"), default="lenet")
    ap.add_argument("--size", type=int, default=32, help="resnet: image side (32 or 56)")
    ap.add_argument("--threads", type=int, default=None, help="BLAS/torch threads")
    ap.add_argument("--profile", action="store_true", help="resnet: profile instead of timing")
    ap.add_argument("--repeats", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10)
    args = ap.parse_args()
    if args.model == "resnet":
        main_resnet(args)
        return
    blas, threads = _common.setup_threads(args.threads)

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
