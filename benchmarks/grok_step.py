"""Grok (descent.models.Grok): a training step against its PyTorch twin, the MoE layer's sparse
dispatch against dense execution, and cached against cacheless generation.

1. Training step of the tiny-grok shape (4 layers, width 128, 4 query / 2 key-value heads of 32,
   4 experts, 2 per token, vocab 512, context 64, batch 12): forward, loss with the auxiliary
   losses, backward, clipping to 1.0, AdamW. The twin is the PyTorch model of tests/test_grok.py
   (Grok-1's arithmetic, functional over the same weights); the losses must agree first.
   Goal: descent / PyTorch <= 1.0. Three descent rows: eager with the fused experts' op (the
   default), eager with MoE(fused=False) (the composite form), and the step under
   descent.compile (which replays it since the fused op); all three give the same losses.
2. One MoE layer (forward + backward, N = B*T tokens): sparse dispatch (tokens grouped by
   expert) against dense (every expert on every token); the ideal ratio is k/E.
3. Generation of 500 new tokens at context (block_size) 256 with and without the key/value cache
   (tokens/s); the goal is >= 5x. The tokens are checked equal while they fit in the context.

Run: python benchmarks/grok_step.py [--repeats 20] [--warmup 3] [--generate-rounds 3]
     [--parts step,moe,generate] [--torch-compile]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import _common  # first: re-execs without OPENBLAS_* tuning variables
import numpy as np
import torch

import descent
from descent import nn
from descent.models import GPT, GROK_PRESETS, GPTConfig, Grok, GrokConfig
from descent.optim import clip_grad_norm_

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from test_grok import torch_grok  # the twin lives with the tests


def tiny_config(vocab_size: int = 512, block_size: int | None = None) -> GrokConfig:
    p = dict(GROK_PRESETS["tiny-grok"])
    if block_size is not None:
        p["block_size"] = block_size
    return GrokConfig.from_dict({**p, "vocab_size": vocab_size})


def bench_step(args) -> None:
    p = GROK_PRESETS["tiny-grok"]
    cfg = tiny_config()
    B, lr, betas, wd, clip = (p["batch_size"], p["learning_rate"], (p["beta1"], p["beta2"]),
                              p["weight_decay"], p["grad_clip"])  # fmt: skip

    def build(fused: bool):
        descent.manual_seed(1337)
        m = Grok(cfg)
        m.train()
        for moe in m.moe_layers():
            moe.fused = fused
        return m, m.configure_optimizers(wd, lr, betas)

    model, opt = build(True)
    tp = {n: torch.tensor(q.numpy(), requires_grad=True) for n, q in model.named_parameters()}
    tdecay = [t for t in tp.values() if t.ndim >= 2]
    tno = [t for t in tp.values() if t.ndim < 2]
    groups = [{"params": tdecay, "weight_decay": wd}, {"params": tno, "weight_decay": 0.0}]
    topt = torch.optim.AdamW(groups, lr=lr, betas=betas)
    rng = np.random.default_rng(0)
    pool = [rng.integers(0, cfg.vocab_size, (2, B, cfg.block_size)) for _ in range(8)]
    d_batches = [(descent.tensor(b[0]), descent.tensor(b[1])) for b in pool]
    t_batches = [(torch.from_numpy(b[0]), torch.from_numpy(b[1])) for b in pool]
    state = {}

    def make_step(m, o, compiled=False):
        params = [q for q in m.parameters() if q.requires_grad]

        def one(x, y):
            _, loss = m(x, y)
            o.zero_grad(set_to_none=True)
            loss.backward()
            clip_grad_norm_(params, clip)
            o.step()
            return loss

        fn = descent.compile(one) if compiled else one
        key = len(state)
        state[key] = 0

        def step():
            x, y = d_batches[state[key] % len(pool)]
            state[key] += 1
            return fn(x, y).item()

        return step, fn

    step_descent, _ = make_step(model, opt)
    step_composite, _ = make_step(*build(False))
    step_compiled, compiled_fn = make_step(*build(True), compiled=True)
    state["t"] = 0

    def step_torch():
        x, y = t_batches[state["t"] % len(pool)]
        state["t"] += 1
        loss = torch_grok(tp, cfg, x, y)[1]
        topt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(tp.values()), clip)
        topt.step()
        return loss.item()

    fns = {"descent": step_descent, "composite": step_composite, "compiled": step_compiled,
           "torch": step_torch}  # fmt: skip
    if args.torch_compile:  # torch.compile of the twin: its experts' row counts are data
        tcomp = torch.compile(torch_grok)
        tp2 = {n: torch.tensor(q.numpy(), requires_grad=True) for n, q in model.named_parameters()}
        groups2 = [
            {"params": [t for t in tp2.values() if t.ndim >= 2], "weight_decay": wd},
            {"params": [t for t in tp2.values() if t.ndim < 2], "weight_decay": 0.0},
        ]
        topt2 = torch.optim.AdamW(groups2, lr=lr, betas=betas)
        state["tc"] = 0

        def step_torch_compiled():
            x, y = t_batches[state["tc"] % len(pool)]
            state["tc"] += 1
            loss = tcomp(tp2, cfg, x, y)[1]
            topt2.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(tp2.values()), clip)
            topt2.step()
            return loss.item()

        t0 = time.perf_counter()
        for _ in range(3):
            step_torch_compiled()
        print(f"# torch.compile: first 3 calls {time.perf_counter() - t0:.1f} s")
        fns["torch.compile"] = step_torch_compiled
    for i in range(3):
        ld, lc, lk, lt = step_descent(), step_composite(), step_compiled(), step_torch()
        if not math.isclose(ld, lt, rel_tol=2e-4, abs_tol=1e-5) or not ld == lc == lk:
            raise SystemExit(f"grok_step: losses disagree at step {i}: descent {ld} composite "
                             f"{lc} compiled {lk} torch {lt}")  # fmt: skip
    timed = _common.time_interleaved(fns, args.repeats, args.warmup, cpu=True)
    med = {k: v[0] for k, v in timed.items()}
    cores = "  ".join(f"{k} {v[1]:.2f}" for k, v in timed.items())
    if compiled_fn.stats["replays"] == 0:
        raise SystemExit(f"grok_step: the compiled step never replayed: {compiled_fn.stats}")
    t_ms = med["torch"] * 1e3
    print(f"# tiny-grok training step (B={B}, T={cfg.block_size}, {cfg.n_layer}x{cfg.n_embd}, "
          f"E={cfg.num_experts} k={cfg.num_selected_experts}, {model.num_parameters():,} "
          f"parameters, {model.num_parameters(active=True):,} active), median of "
          f"{args.repeats}; compiled: {compiled_fn.stats['replays']} replays")  # fmt: skip
    print(_common.HEADER)
    _common.print_row("tiny-grok step, eager (fused MoE)", med["descent"] * 1e3, t_ms, 1.0)
    _common.print_row("  eager, MoE(fused=False)", med["composite"] * 1e3, t_ms, 1.0)
    _common.print_row("  descent.compile", med["compiled"] * 1e3, t_ms, 1.0)
    if "torch.compile" in med:
        print(f"{'  (PyTorch: torch.compile)':<34}{med['torch.compile'] * 1e3:>12.2f}{t_ms:>12.2f}"
              f"{med['torch.compile'] * 1e3 / t_ms:>8.2f}")  # fmt: skip
    print(f"# cpu time / wall time (cores used): {cores}")


def bench_moe(args) -> None:
    print(f"\n# one MoE layer, forward + backward, median of {args.repeats}; ideal ratio = k/E")
    print(f"{'layer':<34}{'sparse ms':>12}{'dense ms':>12}{'ratio':>8}{'k/E':>9}")
    rng = np.random.default_rng(0)
    for n, d, e, k in ((768, 128, 4, 2), (768, 128, 8, 2), (3072, 128, 8, 2)):
        descent.manual_seed(0)
        moe = nn.MoE(d, nn.ffn_size(d, 4.0), e, k)
        x = descent.tensor(rng.standard_normal((n, d)), dtype=np.float32)

        def run(mode, moe=moe, x=x):
            moe.dispatch = mode
            moe.zero_grad(set_to_none=True)
            moe(x).sum().backward()

        med = _common.time_interleaved({"sparse": lambda r=run: r("sparse"),
                                        "dense": lambda r=run: r("dense")},
                                       args.repeats, args.warmup)  # fmt: skip
        s_ms, d_ms = med["sparse"] * 1e3, med["dense"] * 1e3
        name = f"N={n} D={d} E={e} k={k}"
        print(f"{name:<34}{s_ms:>12.2f}{d_ms:>12.2f}{s_ms / d_ms:>8.2f}{k / e:>9.2f}")


def _tokens_per_s(model, prompt, n_new, use_cache):
    t0 = time.perf_counter()
    out = model.generate(prompt, n_new, temperature=1.0, top_k=None,
                         generator=descent.Generator().manual_seed(0),
                         use_cache=use_cache)  # fmt: skip
    return n_new / (time.perf_counter() - t0), out.numpy()


def bench_generate(args) -> None:
    rounds = max(1, args.generate_rounds)
    print(f"\n# generation: 500 new tokens after a 1-token prompt, block_size 256, batch 1; "
          f"median of {rounds} interleaved rounds")  # fmt: skip
    print(f"{'model':<34}{'no cache tok/s':>15}{'cache tok/s':>13}{'speed-up':>10}"
          f"{'target':>8}  same tokens (first 255)")  # fmt: skip
    prompt = descent.tensor([[1]])
    descent.manual_seed(0)
    grok = Grok(tiny_config(block_size=256))
    descent.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=512, block_size=256, n_layer=4, n_head=4, n_embd=128))
    for name, model in (("tiny-grok (RoPE, GQA, MoE)", grok), ("baby-gpt shape, vocab 512", gpt)):
        slow, fast = [], []
        for _ in range(rounds):  # alternate, so that a change in load hits both alike
            s_rate, a = _tokens_per_s(model, prompt, 500, False)
            f_rate, b = _tokens_per_s(model, prompt, 500, True)
            slow.append(s_rate)
            fast.append(f_rate)
        slow_med, fast_med = float(np.median(slow)), float(np.median(fast))
        same = bool(np.array_equal(a[:, :256], b[:, :256]))
        ratio = fast_med / slow_med
        print(f"{name:<34}{slow_med:>15.1f}{fast_med:>13.1f}{ratio:>9.1f}x{'>= 5x':>8}  {same} "
              f"({'MET' if ratio >= 5 else 'MISSED'})")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--generate-rounds", type=int, default=3)
    ap.add_argument(
        "--torch-compile",
        action="store_true",
        help="also time torch.compile of the PyTorch twin (about 25 s to compile)",
    )
    ap.add_argument("--parts", default="step,moe,generate",
                    help="comma-separated subset of step, moe, generate")  # fmt: skip
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    blas, threads = _common.setup_threads()
    _common.print_machine(blas, threads)
    print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start")
    if "step" in parts:
        bench_step(args)
    if "moe" in parts:
        bench_moe(args)
    if "generate" in parts:
        bench_generate(args)


if __name__ == "__main__":
    main()
