"""nanoGPT's baby-GPT recipe on tinyshakespeare, trained by descent: loss curve, speed, final loss.

The `baby-gpt` preset (4 layers, 4 heads, width 128, context 64, batch 12, AdamW lr 1e-3 with
100 warm-up steps and cosine decay to 1e-4, betas (0.9, 0.99), weight decay 0.1, grad clip 1,
no dropout) for 2000 iterations, seeded; train/val loss on 20 batches every 250 iterations and a
final estimate on 200 batches. nanoGPT reports a val loss of 1.88 for this recipe; PyTorch
running it on the project's 2-core machine gives 1.887-1.899 over three seeds (~41 ms/iteration).
Target: <= 1.90.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/shakespeare_char.py
    ... --seed 1 --max-iters 500 --out /tmp/bench     (shorter runs for a quick look)
    ... --torch      (then the PyTorch twin on the very same batches, for the same final figure)

Data: $DESCENT_DATA, else ../shared/data/tinyshakespeare.txt next to the repository, else
descent.data.shakespeare() (cache or checked download).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import descent
from descent.train import TrainConfig, Trainer

TARGET = 1.90
NANOGPT = 1.88
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def find_data() -> str:
    if os.environ.get("DESCENT_DATA"):
        return os.environ["DESCENT_DATA"]
    if SHARED.is_file():
        return str(SHARED)
    return "shakespeare"


class Curve:
    """Callback: prints each evaluation as it happens."""

    def __init__(self) -> None:
        self.points: list[tuple[int, float, float]] = []
        self.t0 = time.perf_counter()

    def on_eval(self, trainer, step, metrics) -> None:
        self.points.append((step, metrics["train_loss"], metrics["val_loss"]))
        print(f"  step {step:5d}  train {metrics['train_loss']:.4f}  val {metrics['val_loss']:.4f}"
              f"  ({time.perf_counter() - self.t0:6.1f} s)", flush=True)  # fmt: skip


@descent.no_grad()
def estimate(trainer: Trainer, batches: int, seed: int) -> dict[str, float]:
    """Mean loss over `batches` batches of each split, from a fresh generator."""
    trainer.raw_model.eval()
    gen = descent.Generator(seed)
    out = {}
    for split in ("train", "val"):
        losses = [trainer.raw_model(*trainer.get_batch(split, gen))[1].item()
                  for _ in range(batches)]  # fmt: skip
        out[split] = float(np.mean(losses))
    return out


def torch_rival(config: TrainConfig) -> tuple[dict[str, float], float]:
    """The same recipe in PyTorch: same initial weights, same batches, same schedule.

    A fresh Trainer (same seed) provides descent's initial weights, the data stream and the
    batch generator; the PyTorch twin (benchmarks/_torch_gpt.py) trains on exactly the batches
    descent saw. Returns (final 200-batch estimate, ms per training step).
    """
    import torch
    from _torch_gpt import TorchGPT, torch_optimizer

    torch.manual_seed(config.seed)
    base = Trainer(replace(config, out_dir=tempfile.mkdtemp(prefix="descent-torch-")))
    tmodel = TorchGPT(base.raw_model.config)
    ours = dict(base.raw_model.named_parameters())
    tied = {"transformer.wte.weight": "lm_head.weight", "lm_head.weight": "transformer.wte.weight"}
    with torch.no_grad():
        for name, p in tmodel.named_parameters():
            p.copy_(torch.from_numpy(ours[name if name in ours else tied[name]].numpy().copy()))
    opt = torch_optimizer(tmodel, config.learning_rate, (config.beta1, config.beta2),
                          config.weight_decay)  # fmt: skip

    def as_torch(*tensors):
        return [torch.from_numpy(t.numpy()) for t in tensors]

    t0 = time.perf_counter()
    for step in range(1, config.max_iters + 1):
        for group in opt.param_groups:
            group["lr"] = base.get_lr(step)
        _, loss = tmodel(*as_torch(*base.get_batch("train", base.train_gen)))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tmodel.parameters(), config.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
    ms = (time.perf_counter() - t0) / config.max_iters * 1e3
    gen = descent.Generator(config.seed + 1)  # the batches descent's final estimate used
    out = {}
    with torch.no_grad():
        for split in ("train", "val"):
            losses = [tmodel(*as_torch(*base.get_batch(split, gen)))[1].item()
                      for _ in range(200)]  # fmt: skip
            out[split] = float(np.mean(losses))
    return out, ms


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--max-iters", type=int, default=2000)
    ap.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    ap.add_argument(
        "--torch", action="store_true",
        help="also train the PyTorch twin on the same batches (a few more minutes)",
    )  # fmt: skip
    args = ap.parse_args()

    data = find_data()
    out = args.out or tempfile.mkdtemp(prefix="descent-shakespeare-")
    config = TrainConfig.from_preset(
        "baby-gpt", data=data, out_dir=out, seed=args.seed, max_iters=args.max_iters,
        lr_decay_iters=max(args.max_iters, 1), eval_interval=250, eval_iters=20,
        log_interval=10, progress=False, sample_tokens=0,
    )  # fmt: skip
    print(f"descent {descent.__version__}, numpy {np.__version__}, python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"baby-gpt on {data}: {config.max_iters} iterations, seed {config.seed}, out {out}")
    curve = Curve()
    trainer = Trainer(config, [curve])
    print(f"model: {trainer.raw_model.num_parameters() / 1e6:.3f}M parameters, vocabulary "
          f"{trainer.tokenizer.vocab_size}")  # fmt: skip

    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    final = estimate(trainer, 200, seed=config.seed + 1)
    records = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    step_ms = [r["ms_per_iter"] for r in records if r["kind"] == "step"]

    print()
    print("loss curve (20 batches per split):")
    print("   step   train     val")
    for step, tr, va in curve.points:
        print(f"  {step:5d}  {tr:.4f}  {va:.4f}")
    print(f"wall time {wall:.1f} s for {config.max_iters} iterations "
          f"(incl. evaluation): {wall / config.max_iters * 1e3:.1f} ms/iteration; "
          f"median training step {np.median(step_ms):.1f} ms")  # fmt: skip
    print(f"final estimate (200 batches): train {final['train']:.4f}, val {final['val']:.4f}")
    if args.torch:
        # The loss is the point here; for speed against PyTorch see benchmarks/gpt_step.py.
        tfinal, _ = torch_rival(config)
        print(f"PyTorch, same weights, batches and schedule: val {tfinal['val']:.4f} "
              f"(train {tfinal['train']:.4f}); descent - PyTorch val: "
              f"{final['val'] - tfinal['val']:+.4f}")  # fmt: skip
    ok = final["val"] <= TARGET
    print(f"target val <= {TARGET} (nanoGPT {NANOGPT}): {'MET' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
