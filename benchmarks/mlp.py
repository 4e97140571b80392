"""MLP 784-256-256-10 (ReLU), batch 128, cross-entropy, Adam: descent vs PyTorch eager.

One training step = zero_grad, forward, loss, backward, Adam step. Both libraries start from the
same weights (descent's initialisation copied into the torch twin) and see the same batches; the
losses of the first steps must agree before anything is timed. Timing is interleaved after
warm-up, median of the repeats, PyTorch given as many threads as NumPy's BLAS.

Run: python benchmarks/mlp.py [--repeats 200] [--warmup 20]
"""

from __future__ import annotations

import argparse

import _common  # first: re-execs without OPENBLAS_* tuning variables
import numpy as np
import torch
from _classifier import classifier_steps

import descent
from descent.models import MLP

SIZES = (784, 256, 256, 10)
BATCH = 128
LR = 1e-3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args()
    blas, threads = _common.setup_threads()

    descent.manual_seed(0)
    model = MLP(SIZES, activation="relu")
    opt = descent.optim.Adam(model.parameters(), lr=LR)
    layers = []
    for i, lin in enumerate(model.layers):
        t = torch.nn.Linear(lin.in_features, lin.out_features)
        with torch.no_grad():
            t.weight.copy_(torch.from_numpy(lin.weight.numpy().copy()))
            t.bias.copy_(torch.from_numpy(lin.bias.numpy().copy()))
        layers += [t] if i == len(model.layers) - 1 else [t, torch.nn.ReLU()]
    tmodel = torch.nn.Sequential(*layers)
    topt = torch.optim.Adam(tmodel.parameters(), lr=LR)

    rng = np.random.default_rng(0)
    pool = [
        (rng.standard_normal((BATCH, SIZES[0]), dtype=np.float32), rng.integers(0, 10, BATCH))
        for _ in range(8)
    ]
    step_descent, step_torch = classifier_steps("mlp", model, opt, tmodel, topt, pool)

    med = _common.time_interleaved(
        {"descent": step_descent, "torch": step_torch}, args.repeats, args.warmup
    )
    _common.print_machine(blas, threads)
    print(f"# MLP {'-'.join(map(str, SIZES))} ReLU, batch {BATCH}, Adam; median of {args.repeats}")
    print(_common.HEADER)
    _common.print_row("MLP 784-256-256-10 step", med["descent"] * 1e3, med["torch"] * 1e3, 0.9)


if __name__ == "__main__":
    main()
