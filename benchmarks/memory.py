"""Peak resident memory of 200 baby-gpt training steps: descent vs PyTorch, one process each.

Each library trains in its own fresh subprocess (so neither's allocations or imported modules
count against the other): the baby-gpt preset model (4 layers, width 128, context 64, batch
12), AdamW with nanoGPT's two groups, gradient clipping at 1.0, 200 steps on the same fixed
batches. The descent child writes its initial weights to a file that the PyTorch child loads,
so both train the same model; their first losses must agree. Each child reports its peak
resident set size (getrusage ru_maxrss, which on Linux is the process's VmHWM) and its resident
size after the imports, so the table shows the whole process and the training's own share.

Run: python benchmarks/memory.py [--steps 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import _common  # first: re-execs without OPENBLAS_* tuning variables

_CHILD = r"""
import json, resource, sys
import numpy as np

lib, steps, weights_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def rss_mb():  # current resident set, from /proc (Linux)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


B, T, V = 12, 64, 65
rng = np.random.default_rng(0)
batches = [rng.integers(0, V, size=(2, B, T), dtype=np.int64) for _ in range(8)]
if lib == "descent":
    import descent
    from descent.models import GPT, GPTConfig
    from descent.optim import clip_grad_norm_

    base = rss_mb()
    descent.manual_seed(1337)
    model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=4, n_head=4, n_embd=128))
    np.savez(weights_path, **{k: p.numpy() for k, p in model.named_parameters()})
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    params = list(model.parameters())
    data = [(descent.tensor(b[0]), descent.tensor(b[1])) for b in batches]

    def step(i):
        x, y = data[i % len(data)]
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()
else:
    import torch

    from types import SimpleNamespace

    sys.path.insert(0, sys.argv[4])
    from _torch_gpt import TorchGPT, torch_optimizer  # gpt_step.py's twin; imports torch only

    torch.set_num_threads(int(sys.argv[5]))
    base = rss_mb()
    cfg = SimpleNamespace(vocab_size=V, block_size=T, n_layer=4, n_head=4, n_embd=128, bias=False)
    model = TorchGPT(cfg)
    saved = np.load(weights_path)
    tied = {"transformer.wte.weight": "lm_head.weight", "lm_head.weight": "transformer.wte.weight"}
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(saved[name] if name in saved else saved[tied[name]]))
    opt = torch_optimizer(model, 1e-3, (0.9, 0.99), 0.1)
    data = [(torch.from_numpy(b[0]), torch.from_numpy(b[1])) for b in batches]

    def step(i):
        x, y = data[i % len(data)]
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

losses = [step(i) for i in range(steps)]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
print(json.dumps({"peak": peak, "base": base, "losses": losses[:3]}))
"""


def run_child(lib: str, steps: int, weights: str, threads: int) -> dict:
    here = os.path.dirname(os.path.abspath(__file__))
    cmd = [sys.executable, "-c", _CHILD, lib, str(steps), weights, here, str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    blas, threads = _common.setup_threads()

    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "init.npz")
        d = run_child("descent", args.steps, weights, threads)  # first: writes the weights
        t = run_child("torch", args.steps, weights, threads)
    for i, (ld, lt) in enumerate(zip(d["losses"], t["losses"])):
        if abs(ld - lt) > 2e-4 * max(1.0, abs(lt)):
            raise SystemExit(f"memory: losses disagree at step {i}: descent {ld} torch {lt}")

    _common.print_machine(blas, threads)
    print(f"# peak RSS of {args.steps} baby-gpt training steps, each library in its own process "
          f"(after imports: descent {d['base']:.0f} MB, PyTorch {t['base']:.0f} MB)")  # fmt: skip
    print(f"{'benchmark':<34}{'descent MB':>12}{'PyTorch MB':>12}{'ratio':>8}{'target':>9}")
    ratio = d["peak"] / t["peak"]
    print(f"{'peak RSS, 200 baby-gpt steps':<34}{d['peak']:>12.0f}{t['peak']:>12.0f}"
          f"{ratio:>8.2f}{'<= 1.0':>9}  {'MET' if ratio <= 1.0 else 'MISSED'}")  # fmt: skip
    growth_d, growth_t = d["peak"] - d["base"], t["peak"] - t["base"]
    print(f"{'  of which training (peak - base)':<34}{growth_d:>12.0f}{growth_t:>12.0f}"
          f"{growth_d / growth_t:>8.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
