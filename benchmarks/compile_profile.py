"""Where a replayed baby-gpt step spends its time: per-op timing of descent.compile's replay.

Builds benchmarks/compile.py's baby-gpt step (AdamW + clip), compiles it, and replays it
`--repeats` times with every instruction timed: forward ops by class, backward nodes by class
(`<Op>.bwd`), gradient sums, the optimizer step, clipping, fused chains. Then the plain
eager / compiled medians, interleaved, without the instrumentation.

Run: python benchmarks/compile_profile.py [--threads 1] [--repeats 20] [--ab]
`--ab` also times eager and compiled interleaved with and without `--threads` BLAS threads.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict

import _common  # noqa: I001  (first: re-execs without OPENBLAS_* tuning variables)
import numpy as np

import descent
from descent.compiler import program as prog_mod
from descent.compiler.recorder import Backward
from descent.models import GPT, PRESETS, GPTConfig
from descent.optim import clip_grad_norm_


def gpt_step(compiled: bool):
    p = PRESETS["baby-gpt"]
    cfg = GPTConfig(
        vocab_size=65,
        block_size=p["block_size"],
        n_layer=p["n_layer"],
        n_head=p["n_head"],
        n_embd=p["n_embd"],
        dropout=0.0,
        bias=p["bias"],
    )
    B = p["batch_size"]
    rng = np.random.default_rng(0)
    pool = [rng.integers(0, 65, size=(2, B, cfg.block_size), dtype=np.int64) for _ in range(8)]
    descent.manual_seed(1337)
    m = GPT(cfg)
    opt = m.configure_optimizers(0.1, p["learning_rate"], (p["beta1"], p["beta2"]))
    batches = [(descent.tensor(b[0]), descent.tensor(b[1])) for b in pool]

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        _, loss = m(x, y)
        loss.backward()
        clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        return loss

    f = descent.compile(step) if compiled else step
    state = {"i": 0}

    def run():
        x, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        return f(x, y).item()

    run.compiled = f if compiled else None
    return run


def profile(run, repeats: int) -> dict:
    """Seconds per replay spent in each kind of instruction (median over repeats)."""
    times: dict = defaultdict(list)
    acc: dict = defaultdict(float)
    orig_forward = prog_mod.Program._forward
    orig_call = prog_mod.Program._call
    orig_add = prog_mod._add
    orig_fused = prog_mod.fusion.run
    patched: dict = {}

    def t_forward(self, ins, extra, env, pool):
        t0 = time.perf_counter()
        orig_forward(self, ins, extra, env, pool)
        acc[type(ins.op).__name__] += time.perf_counter() - t0

    def t_call(self, ins, env):
        t0 = time.perf_counter()
        orig_call(self, ins, env)
        acc["call:" + getattr(ins.fn, "__name__", str(ins.kind))] += time.perf_counter() - t0

    def t_add(a, b, pool):
        t0 = time.perf_counter()
        r = orig_add(a, b, pool)
        acc["grad sum"] += time.perf_counter() - t0
        return r

    def t_fused(chain, env, pool):
        t0 = time.perf_counter()
        orig_fused(chain, env, pool)
        acc["fused chain"] += time.perf_counter() - t0

    prog = run.compiled.programs()[0]
    gelu_sites = dict(prog.gelu_backward)
    for key, site in gelu_sites.items():

        def timed(x, gy, site=site):
            t0 = time.perf_counter()
            r = site(x, gy)
            acc["Gelu.bwd"] += time.perf_counter() - t0
            return r

        prog.gelu_backward[key] = timed
    for ins in prog.rec.program:
        if isinstance(ins, Backward):
            for node, _ in ins.order:
                cls = type(node)
                if cls not in patched:
                    patched[cls] = cls.backward

                    def wrap(orig, name):
                        def backward(self, gy, ops, **kw):
                            t0 = time.perf_counter()
                            r = orig(self, gy, ops, **kw)
                            acc[name] += time.perf_counter() - t0
                            return r

                        return backward

                    cls.backward = wrap(cls.backward, cls.__name__ + ".bwd")
    orig_backward = prog_mod.Program._backward

    def t_backward(self, ins, env, pool):
        t0 = time.perf_counter()
        orig_backward(self, ins, env, pool)
        acc["(whole backward pass)"] += time.perf_counter() - t0

    prog_mod.Program._backward = t_backward
    prog_mod.Program._forward = t_forward
    prog_mod.Program._call = t_call
    prog_mod._add = t_add
    prog_mod.fusion.run = t_fused
    try:
        for _ in range(repeats):
            acc.clear()
            t0 = time.perf_counter()
            run()
            total = time.perf_counter() - t0
            for k, v in acc.items():
                times[k].append(v)
            times["TOTAL"].append(total)
    finally:
        prog_mod.Program._forward = orig_forward
        prog_mod.Program._backward = orig_backward
        prog_mod.Program._call = orig_call
        prog_mod._add = orig_add
        prog_mod.fusion.run = orig_fused
        prog.gelu_backward.update(gelu_sites)
        for cls, b in patched.items():
            cls.backward = b
    return {k: float(np.median(v)) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-profile", dest="profile", action="store_false")
    ap.add_argument("--ab", action="store_true", help="also time eager vs compiled")
    args = ap.parse_args()
    blas, threads = _common.setup_threads(args.threads)
    print(
        f"# BLAS {blas} {threads} threads; NUMBA_NUM_THREADS="
        f"{os.environ.get('NUMBA_NUM_THREADS')}; load {os.getloadavg()}"
    )
    eager, comp = gpt_step(False), gpt_step(True)
    for _ in range(4):
        eager(), comp()
    # Past the thread plan's trials (docs/compile.md "Every core, or one"): a profile taken
    # during them mixes in every-core calls, whose spinning OpenMP workers slow the products.
    for _ in range(40):
        if comp.compiled.programs()[0].threads.parallel is not None:
            break
        comp()
    if args.profile:
        prof = profile(comp, args.repeats)
        total = prof.pop("TOTAL")
        print(f"replay total {total * 1e3:.2f} ms (instrumented)")
        for k, v in sorted(prof.items(), key=lambda kv: -kv[1]):
            if v > 2e-5:
                print(f"  {k:<28}{v * 1e3:>8.2f} ms")
        whole = prof.pop("(whole backward pass)", 0.0)
        print(f"  {'(sum of the above)':<28}{sum(prof.values()) * 1e3:>8.2f} ms")
        print(f"  {'(whole backward pass)':<28}{whole * 1e3:>8.2f} ms")
        prog = comp.compiled.programs()[0]
        print(f"fused chains: {len(prog.fused)}; every-core plan: {prog.threads.parallel}")
    if args.ab:
        fns = {"eager": eager, "compiled": comp}
        for name, choice in (("compiled 1-thread plan", 0), ("compiled every-core plan", 1)):
            f = gpt_step(True)
            for _ in range(3):
                f()
            f.compiled.programs()[0].threads.fix(choice)
            fns[name] = f
        med = _common.time_interleaved(fns, args.repeats, 3)
        print("interleaved medians: " + "; ".join(f"{k} {v * 1e3:.2f} ms" for k, v in med.items()))
        print(
            f"plan chosen by the timed compiled step: "
            f"{comp.compiled.programs()[0].threads.parallel}"
        )
    print(f"# load {os.getloadavg()}")


if __name__ == "__main__":
    main()
