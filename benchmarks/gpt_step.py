"""One training step of the baby-gpt preset: descent vs PyTorch eager, and vs the matmul floor.

The step is the one `descent train` runs: forward, cross-entropy loss, backward, gradient
clipping to norm 1.0, AdamW (two groups: decay 0.1 on matrices, none on gains). The model is
nanoGPT's (4 layers, 4 heads, width 128, context 64, vocab 65, no bias, batch 12).

The PyTorch twin is nanoGPT's model.py in torch.nn (scaled_dot_product_attention with
is_causal=True, exact GELU, tied weights) with descent's initial weights copied in. Both take
the same batches; the losses are checked to agree before timing.

The matmul floor is the sum of every matrix product of the step (forward and backward) timed
alone in NumPy into preallocated outputs: what any NumPy-based library must spend at least.

Run: python benchmarks/gpt_step.py [--repeats 40] [--warmup 5]
"""

from __future__ import annotations

import argparse
import math

import _common  # first: re-execs without OPENBLAS_* tuning variables
import numpy as np
import torch
from _torch_gpt import TorchGPT, torch_optimizer

import descent
from descent.models import GPT, PRESETS, GPTConfig
from descent.optim import clip_grad_norm_


def torch_twin(model: GPT) -> TorchGPT:
    """A TorchGPT holding exactly the descent model's weights (the tied matrix once)."""
    tmodel = TorchGPT(model.config)
    ours = dict(model.named_parameters())
    tied = {"transformer.wte.weight": "lm_head.weight", "lm_head.weight": "transformer.wte.weight"}
    with torch.no_grad():
        for name, p in tmodel.named_parameters():
            src = ours[name] if name in ours else ours[tied[name]]
            p.copy_(torch.from_numpy(src.numpy().copy()))
    return tmodel


def matmul_floor(cfg: GPTConfig, B: int, descent_blas: bool = False):
    """A function doing all matrix products of one training step, alone in NumPy (with
    `descent_blas`, through descent.blas.matmul: the BLAS descent.backends.set_blas chose).

    Returns (function, number of products). Shapes: N = B*T rows; each Linear (in -> out) costs
    one product forward (N,in)@(in,out) and two backward (dx (N,out)@(out,in), dW (out,N)@(N,in));
    attention per layer two forward (q k^T, P v) and four backward, batched over B*heads.
    """
    rng = np.random.default_rng(0)
    T, C, V, H = cfg.block_size, cfg.n_embd, cfg.vocab_size, cfg.n_head
    N, D, G = B * T, C // H, B * H
    f32 = np.float32
    linears = [(C, 3 * C), (C, C), (C, 4 * C), (4 * C, C)] * cfg.n_layer + [(C, V)]
    jobs = []  # (a, b, out)

    def job(a_shape, b_shape, transpose_a=False, transpose_b=False):
        a = rng.standard_normal(a_shape[::-1] if transpose_a else a_shape).astype(f32)
        b = rng.standard_normal(b_shape[::-1] if transpose_b else b_shape).astype(f32)
        a = a.T if transpose_a else a
        b = b.T if transpose_b else b
        out = np.empty(np.matmul(a[:1], b).shape[:-2] + (a.shape[-2], b.shape[-1]), f32)
        jobs.append((a, b, out))

    for fan_in, fan_out in linears:
        job((N, fan_in), (fan_in, fan_out), transpose_b=True)  # y = x W^T, W (out, in)
        job((N, fan_out), (fan_out, fan_in))  # dx = gy W
        job((fan_out, N), (N, fan_in), transpose_a=True)  # dW = gy^T x
    for _ in range(cfg.n_layer):
        job((G, T, D), (G, D, T))  # s = q k^T
        job((G, T, T), (G, T, D))  # y = P v
        job((G, T, T), (G, T, D))  # gv = P^T gy
        job((G, T, D), (G, D, T))  # gP = gy v^T
        job((G, T, T), (G, T, D))  # gq = gs k
        job((G, T, T), (G, T, D))  # gk = gs^T q

    mm = np.matmul
    if descent_blas:
        from descent import blas

        mm = blas.matmul

    def run():
        for a, b, out in jobs:
            mm(a, b, out=out)

    return run, len(jobs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()

    blas, threads = _common.setup_threads()
    p = PRESETS["baby-gpt"]
    cfg = GPTConfig(
        vocab_size=65, block_size=p["block_size"], n_layer=p["n_layer"], n_head=p["n_head"],
        n_embd=p["n_embd"], dropout=0.0, bias=p["bias"],
    )  # fmt: skip
    B, lr, betas, wd, clip = (
        p["batch_size"], p["learning_rate"], (p["beta1"], p["beta2"]), p["weight_decay"],
        p["grad_clip"],
    )  # fmt: skip

    descent.manual_seed(1337)
    model = GPT(cfg)
    tmodel = torch_twin(model)
    opt = model.configure_optimizers(wd, lr, betas)
    topt = torch_optimizer(tmodel, lr, betas, wd)
    params = [q for q in model.parameters() if q.requires_grad]

    # A fixed pool of batches of random token ids, cycled (both see the same sequence).
    rng = np.random.default_rng(0)
    pool = [
        rng.integers(0, cfg.vocab_size, size=(2, B, cfg.block_size), dtype=np.int64)
        for _ in range(8)
    ]
    d_batches = [(descent.tensor(b[0]), descent.tensor(b[1])) for b in pool]
    t_batches = [(torch.from_numpy(b[0]), torch.from_numpy(b[1])) for b in pool]
    state = {"d": 0, "t": 0}

    def step_descent():
        x, y = d_batches[state["d"] % len(pool)]
        state["d"] += 1
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_grad_norm_(params, clip)
        opt.step()
        return loss.item()

    def step_torch():
        x, y = t_batches[state["t"] % len(pool)]
        state["t"] += 1
        _, loss = tmodel(x, y)
        topt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tmodel.parameters(), clip)
        topt.step()
        return loss.item()

    # Same model, same data: the first steps' losses must agree (float32, so not bitwise).
    for i in range(3):
        ld, lt = step_descent(), step_torch()
        if not math.isclose(ld, lt, rel_tol=2e-4, abs_tol=1e-5):
            raise SystemExit(f"gpt_step: losses disagree at step {i}: descent {ld} torch {lt}")

    # The floor is timed in the same interleaved loop, so that all three see the same load.
    floor, n_mm = matmul_floor(cfg, B)
    med = _common.time_interleaved(
        {"descent": step_descent, "torch": step_torch, "floor": floor}, args.repeats, args.warmup
    )
    d_ms, t_ms, f_ms = med["descent"] * 1e3, med["torch"] * 1e3, med["floor"] * 1e3

    _common.print_machine(blas, threads)
    print(f"# baby-gpt step (B={B}, T={cfg.block_size}, 4x128, AdamW + clip), median of "
          f"{args.repeats}; matmul floor = {n_mm} NumPy products, {f_ms:.2f} ms")  # fmt: skip
    print(_common.HEADER)
    _common.print_row("baby-gpt training step", d_ms, t_ms, 1.0)
    verdict = "MET" if d_ms / f_ms <= 1.6 else "MISSED"
    print(f"{'baby-gpt step / matmul floor':<34}{d_ms:>12.2f}{f_ms:>12.2f}{d_ms / f_ms:>8.2f}"
          f"{'<= 1.6':>9}  {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
