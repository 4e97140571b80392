"""descent.compile against descent eager, PyTorch eager, torch.compile and JAX jit (issue 17).

Three training steps, each the same model, weights, batches and optimizer in every library:

* baby-gpt: GPT 4x128, context 64, vocab 65, batch 12; forward, cross-entropy, backward, clip to
  norm 1.0, AdamW (decay 0.1 on matrices); and the step's matmul floor (benchmarks/gpt_step.py);
* MLP 784-256-256-10 ReLU, batch 128, cross-entropy, Adam;
* LeNet (benchmarks/cnn.py's), batch 64, cross-entropy, SGD momentum 0.9.

All contestants of a workload are timed interleaved in one process, in blocks (a a a a, b b b b,
c c c c, a a a a, ...; `--block 4`) whose first call is not timed: a library's thread pools spin
for a while after its call (OpenBLAS's workers, libgomp's, XLA's Eigen pool), and the next
library's first call pays for it (measured: a 2.5 ms descent MLP step took 4.8-7.2 ms right
after another library's at two threads); `--block 1` times single calls a, b, c, a, b, c.
Median of the timed calls; each call ends with the loss as a Python float (a synchronisation).
Beside the wall time each row gives the process CPU time per call divided by the wall time:
the cores that library kept busy. The first calls (recording, tracing, compiling) are timed
separately. The load average is printed before and after: on a shared machine the figures are
NOT quiet-machine results (PyTorch's threaded kernels suffer most from other jobs).
After the warm-up rounds, untimed rounds run on (at most `--settle`, default 60) until each
compiled step's thread plan is chosen and checked (`threads.ThreadPlan`: its trials take ~30-60
calls here, ~100 where its check times the plans again, many of them on a slower plan, which
the median of a short run took in before session 30; since session 31 two close plans are
timed for up to 20 rounds, ~35 blocks here); the report says how many rounds ran.
`--settle 0`: as before.

JAX is optional (the `bench` extra: pip install 'descent[bench]'); without it its rows say so.
Where descent's opt-in MKL backend is installed (the `mkl` extra; descent/blas.py), every
workload adds "descent eager (mkl)" and "descent compiled (mkl)", the GPT workload also "matmul
floor (mkl)" (the floor's products through descent.blas.matmul on MKL). They run in a child
process that switches descent to MKL after importing torch (`MklChild`), whose rounds alternate
with this process's: PyTorch and JAX never share a process with MKL's threads (session 28
measured PyTorch's eager GPT step at 29.1 ms in a process where MKL had run, against ~20-24 in
one without; session 29 measured 0-3% there, within the run-to-run spread, and found that a
torch imported after descent's MKL was loaded runs its own products on it), and one run gives
every ratio. `--no-mkl` leaves them out.
torch.compile on the CPU needs a C++ compiler (g++) for its generated kernels.

Run: python benchmarks/compile.py [--repeats 20] [--only gpt,mlp,lenet] [--no-torch-compile]
     [--no-mkl]
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import _common  # noqa: I001  (first: re-execs without OPENBLAS_* tuning variables)
import numpy as np
import torch
from _torch_gpt import torch_optimizer
from cnn import TorchLeNet
from gpt_step import matmul_floor, torch_twin

import descent
from descent.models import GPT, MLP, PRESETS, GPTConfig, LeNet
from descent.nn import functional as F
from descent.optim import clip_grad_norm_

try:
    import jax_models
except ImportError as e:  # jax missing
    jax_models = None
    JAX_WHY = str(e)


def _loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} cores)"


def first_calls(f, n: int = 3) -> tuple[list[float], list[float]]:
    """(losses, seconds) of the first n calls (recording / compiling included)."""
    losses, secs = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        losses.append(f())
        secs.append(time.perf_counter() - t0)
    return losses, secs


def cycle(batches):
    state = {"i": 0}

    def nxt():
        b = batches[state["i"] % len(batches)]
        state["i"] += 1
        return b

    return nxt


# -- descent and torch steps ------------------------------------------------------------------


def descent_step(model, opt, loss_fn, batches, compiled: bool, clip: float | None = None):
    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model, x, y)
        loss.backward()
        if clip is not None:
            clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss

    f = descent.compile(step) if compiled else step
    nxt = cycle(batches)

    def run():
        x, y = nxt()
        return f(x, y).item()

    run.compiled = f if compiled else None
    return run


def torch_step(tmodel, topt, loss_fn, batches, compiled: bool, clip: float | None = None):
    def step(x, y):
        topt.zero_grad(set_to_none=True)
        loss = loss_fn(tmodel, x, y)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(tmodel.parameters(), clip)
        topt.step()
        return loss

    f = torch.compile(step) if compiled else step
    nxt = cycle(batches)

    def run():
        x, y = nxt()
        return f(x, y).item()

    return run


def _copy_into_torch(model, tmodel) -> None:
    ours = dict(model.named_parameters())
    with torch.no_grad():
        for name, p in tmodel.named_parameters():
            p.copy_(torch.from_numpy(ours[name].numpy().copy()))


# -- the workloads ----------------------------------------------------------------------------


def gpt_workload():
    p = PRESETS["baby-gpt"]
    cfg = GPTConfig(
        vocab_size=65, block_size=p["block_size"], n_layer=p["n_layer"], n_head=p["n_head"],
        n_embd=p["n_embd"], dropout=0.0, bias=p["bias"],
    )  # fmt: skip
    B, lr, betas, wd = p["batch_size"], p["learning_rate"], (p["beta1"], p["beta2"]), 0.1
    rng = np.random.default_rng(0)
    pool = [rng.integers(0, 65, size=(2, B, cfg.block_size), dtype=np.int64) for _ in range(8)]

    def models():
        descent.manual_seed(1337)
        return GPT(cfg)

    def d(compiled):
        m = models()
        opt = m.configure_optimizers(wd, lr, betas)
        batches = [(descent.tensor(b[0]), descent.tensor(b[1])) for b in pool]
        return descent_step(m, opt, lambda m, x, y: m(x, y)[1], batches, compiled, clip=1.0)

    def t(compiled):
        tm = torch_twin(models())
        topt = torch_optimizer(tm, lr, betas, wd)
        batches = [(torch.from_numpy(b[0]), torch.from_numpy(b[1])) for b in pool]
        return torch_step(tm, topt, lambda m, x, y: m(x, y)[1], batches, compiled, clip=1.0)

    def j():
        return jax_models.gpt_step(models(), cfg, pool, lr, betas, wd, clip=1.0)

    floor, _ = matmul_floor(cfg, B)
    mkl_floor, _ = matmul_floor(cfg, B, descent_blas=True)
    return "baby-gpt step (AdamW + clip)", d, t, j, floor, mkl_floor


def mlp_workload():
    sizes, batch, lr = (784, 256, 256, 10), 128, 1e-3
    rng = np.random.default_rng(0)
    pool = [(rng.standard_normal((batch, 784), dtype=np.float32), rng.integers(0, 10, batch))
            for _ in range(8)]  # fmt: skip

    def models():
        descent.manual_seed(0)
        return MLP(sizes, activation="relu")

    def d(compiled):
        m = models()
        opt = descent.optim.Adam(m.parameters(), lr=lr)
        batches = [(descent.tensor(x), descent.tensor(y)) for x, y in pool]
        return descent_step(m, opt, lambda m, x, y: F.cross_entropy(m(x), y), batches, compiled)

    def t(compiled):
        m = models()
        layers = []
        for i, lin in enumerate(m.layers):
            tl = torch.nn.Linear(lin.in_features, lin.out_features)
            with torch.no_grad():
                tl.weight.copy_(torch.from_numpy(lin.weight.numpy().copy()))
                tl.bias.copy_(torch.from_numpy(lin.bias.numpy().copy()))
            layers += [tl] if i == len(m.layers) - 1 else [tl, torch.nn.ReLU()]
        tm = torch.nn.Sequential(*layers)
        topt = torch.optim.Adam(tm.parameters(), lr=lr)
        batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in pool]
        ce = torch.nn.functional.cross_entropy
        return torch_step(tm, topt, lambda m, x, y: ce(m(x), y), batches, compiled)

    def j():
        return jax_models.mlp_step(models(), pool, lr)

    return "MLP 784-256-256-10 step (Adam)", d, t, j, None


def lenet_workload():
    batch, lr = 64, 0.01
    rng = np.random.default_rng(0)
    pool = [(rng.standard_normal((batch, 1, 28, 28), dtype=np.float32),
             rng.integers(0, 10, batch)) for _ in range(8)]  # fmt: skip

    def models():
        descent.manual_seed(0)
        return LeNet(num_classes=10)

    def d(compiled):
        m = models()
        opt = descent.optim.SGD(m.parameters(), lr=lr, momentum=0.9)
        batches = [(descent.tensor(x), descent.tensor(y)) for x, y in pool]
        return descent_step(m, opt, lambda m, x, y: F.cross_entropy(m(x), y), batches, compiled)

    def t(compiled):
        tm = TorchLeNet()
        _copy_into_torch(models(), tm)
        topt = torch.optim.SGD(tm.parameters(), lr=lr, momentum=0.9)
        batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in pool]
        ce = torch.nn.functional.cross_entropy
        return torch_step(tm, topt, lambda m, x, y: ce(m(x), y), batches, compiled)

    def j():
        return jax_models.lenet_step(models(), pool, lr)

    return "LeNet step (SGD momentum)", d, t, j, None


WORKLOADS = {"gpt": gpt_workload, "mlp": mlp_workload, "lenet": lenet_workload}


HANDOVER_SLEEP = 0.2  # s the idle process waits after handing the machine to the other


class MklChild:
    """The MKL contestants of one workload in a child process (`--mkl-child`), with descent's
    products on MKL for its whole life (set_blas once torch is imported), timed in rounds
    interleaved with the parent's: the parent runs its round, hands over and waits (blocked on
    the pipe), the child runs one block of each MKL contestant and hands back. So PyTorch eager,
    torch.compile and JAX never share a process with MKL's threads (session 28 saw PyTorch's
    eager GPT step at 29.1 ms in a process where they had run, against ~20-24 in one without),
    and one run still gives every ratio, the load drifts shared by both processes' rows. Each
    process waits HANDOVER_SLEEP after the other's round before its own (the other's pools spin
    for a while after their last call); the first call of every block is untimed anyway."""

    def __init__(self, key: str, args) -> None:
        import subprocess
        import sys

        env = {k: v for k, v in os.environ.items() if k != "DESCENT_BLAS"}
        cmd = [sys.executable, os.path.abspath(__file__), "--mkl-child", key,
               "--block", str(args.block)]  # fmt: skip
        if args.threads is not None:
            cmd += ["--threads", str(args.threads)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env, text=True)  # fmt: skip

    def ask(self, what: str):
        import json

        self.proc.stdin.write(what + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith("@@ "):
                return json.loads(line[3:])
        raise SystemExit(f"the MKL child process ended (rc {self.proc.wait()})")

    def close(self) -> None:
        self.ask("quit")
        self.proc.wait()


def mkl_child(key: str, args) -> None:
    """The child's side of MklChild: answers 'first', 'warmup', 'round' and 'quit' on stdin
    with one '@@ {json}' line on stdout."""
    import json
    import sys

    # MKL switched on here, after `import torch` (at the top), not by DESCENT_BLAS at descent's
    # import: libmkl_rt's parts enter the process's global symbol scope, and a libtorch_cpu
    # loaded after them binds its own MKL calls to them (4,878 symbols: torch's products on
    # descent's MKL, torch.set_num_threads setting its threads; docs/compile.md, session 29).
    _, threads = _common.setup_threads(args.threads)
    descent.backends.set_blas("mkl")
    descent.set_num_threads(threads)
    w = WORKLOADS[key]()
    d, mkl_floor = w[1], (w[5] if len(w) > 5 else None)
    fns = {"descent eager (mkl)": d(False), "descent compiled (mkl)": d(True)}

    def reply(obj) -> None:
        sys.stdout.write("@@ " + json.dumps(obj) + "\n")
        sys.stdout.flush()

    for line in sys.stdin:
        what = line.strip()
        if what == "first":
            reply({k: first_calls(f) for k, f in fns.items()})
            if mkl_floor is not None:
                fns["matmul floor (mkl)"] = mkl_floor
        elif what == "warmup":
            time.sleep(HANDOVER_SLEEP)
            for f in fns.values():
                f()
            reply({})
        elif what == "round":
            time.sleep(HANDOVER_SLEEP)
            reply({k: _block(f, args.block) for k, f in fns.items()})
        elif what == "settled":
            reply(_settled(fns["descent compiled (mkl)"]))
        elif what == "plans":
            f = fns["descent compiled (mkl)"].compiled
            reply({"stats": f.stats, "plans": [p.threads.plan for p in f.programs()]})
        else:
            reply({})
            return


def _settled(run) -> bool:
    """Whether every program of a compiled step has chosen its thread plan and checked it
    (`ThreadPlan.settled`; before session 30 a plan had no VERIFY calls after one thread)."""
    plans = [p.threads for p in run.compiled.programs()]
    return all(getattr(p, "settled", p.plan is not None and p.verify is None) for p in plans)


def _block(f, block: int) -> list:
    """[(wall, cpu)] of the timed calls of one block (all but the first; block 1: the one)."""
    out = []
    for i in range(block):
        c0, t0 = time.process_time(), time.perf_counter()
        f()
        t1, c1 = time.perf_counter(), time.process_time()
        if i or block == 1:
            out.append((t1 - t0, c1 - c0))
    return out


def run_workload(key, name, d, t, j, floor, args) -> None:
    fns = {"descent eager": d(False), "descent compiled": d(True), "torch eager": t(False)}
    if args.torch_compile:
        fns["torch.compile"] = t(True)
    if jax_models is not None:
        fns["jax jit"] = j()
    child = MklChild(key, args) if args.mkl and descent.backends.is_mkl_available() else None
    # The first calls of each contestant, alone: recording (descent), tracing and compiling
    # (torch.compile, jax). Their losses must agree with descent eager's: same weights, data.
    firsts = {k: first_calls(f) for k, f in fns.items()}
    if child is not None:
        firsts.update({k: tuple(v) for k, v in child.ask("first").items()})
    ref = firsts["descent eager"][0]
    for k, (losses, _) in firsts.items():
        if not np.allclose(ref, losses, rtol=2e-4, atol=1e-5):
            raise SystemExit(f"{name}: {k} losses {losses} disagree with descent eager's {ref}")
    if floor is not None:
        fns["matmul floor"] = floor
    # interleaved rounds: the parent's contestants, then the child's (see MklChild)
    for _ in range(args.warmup):
        for f in fns.values():
            f()
        if child is not None:
            child.ask("warmup")
            time.sleep(HANDOVER_SLEEP)
    settle = 0  # untimed rounds until the compiled steps' thread plans are chosen and checked
    while not (
        settled := _settled(fns["descent compiled"]) and (child is None or child.ask("settled"))
    ):
        if settle == args.settle:
            break
        for f in fns.values():
            _block(f, args.block)
        if child is not None:
            child.ask("round")
            time.sleep(HANDOVER_SLEEP)
        settle += 1
    timed: dict = {k: [] for k in fns}
    for _ in range(args.repeats):
        for k, f in fns.items():
            timed[k] += _block(f, args.block)
        if child is not None:
            for k, v in child.ask("round").items():
                timed.setdefault(k, []).extend(tuple(x) for x in v)
            time.sleep(HANDOVER_SLEEP)
    med = {}  # (median wall, process cpu / wall over the timed calls)
    for k, v in timed.items():
        med[k] = (float(np.median([w for w, _ in v])), sum(c for _, c in v) / sum(w for w, _ in v))
    base = med["torch eager"][0]
    how = f"blocks of {args.block}, first of each untimed" if args.block > 1 else "single calls"
    print(f"\n## {name}: median of {args.repeats} rounds, interleaved in {how}")
    if child is not None:
        print(
            "# (mkl) rows: a child process with descent's products on MKL, its rounds "
            "interleaved with this process's"
        )
    print(f"{'contestant':<24}{'ms':>8}{'/ torch eager':>15}{'cpu/wall':>10}  first calls (s)")
    order = [k for k in ("descent eager", "descent compiled", "descent eager (mkl)",
                         "descent compiled (mkl)") if k in med]  # fmt: skip
    order += [k for k in med if k not in order]
    for k in order:
        wall, cores = med[k]
        first = ", ".join(f"{s:.2f}" for s in firsts[k][1]) if k in firsts else ""
        print(f"{k:<24}{wall * 1e3:>8.2f}{wall / base:>15.2f}{cores:>10.2f}  {first}")
    if jax_models is None:
        print(f"{'jax jit':<24}{'(not installed: ' + JAX_WHY + ')':>10}")
    plans = {None: "still timing", 0: "one thread", 1: "every core", 2: "halves"}
    c = fns["descent compiled"].compiled
    chosen = ", ".join(plans[p.threads.plan] for p in c.programs())
    print(f"# descent compiled: descent.compile stats: {c.stats}; kernel threads: {chosen}")
    print(
        f"# untimed rounds until the thread plans settled: {settle}"
        + ("" if settled else f" (--settle {args.settle} reached first: some still timing)")
    )
    if child is not None:
        info = child.ask("plans")
        chosen = ", ".join(plans[p] for p in info["plans"])
        print(
            f"# descent compiled (mkl): descent.compile stats: {info['stats']}; "
            f"kernel threads: {chosen}"
        )
        child.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument(
        "--block",
        type=int,
        default=4,
        help="calls per contestant per round, the first untimed (1: single calls)",
    )
    ap.add_argument(
        "--settle",
        type=int,
        default=60,
        help="untimed rounds at most, after the warm-up, until descent's thread plans settle",
    )
    ap.add_argument("--only", default="gpt,mlp,lenet")
    ap.add_argument("--threads", type=int, default=None, help="BLAS/torch threads")
    ap.add_argument("--no-torch-compile", dest="torch_compile", action="store_false")
    ap.add_argument(
        "--no-mkl",
        dest="mkl",
        action="store_false",
        help="leave out the MKL rows (a child process with descent's products on "
        "MKL, where the `mkl` extra is installed)",
    )
    ap.add_argument("--mkl-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mkl_child:  # MklChild's process: no report of its own
        mkl_child(args.mkl_child, args)
        return
    if args.torch_compile and shutil.which("g++") is None and shutil.which("c++") is None:
        print("# torch.compile needs a C++ compiler on the CPU: none found, its rows are skipped")
        args.torch_compile = False
    blas, threads = _common.setup_threads(args.threads)
    if jax_models is not None:
        jax_models.set_threads(threads)
    _common.print_machine(blas, threads)
    print(f"# before: {_loadavg()}. NOT a quiet-machine result when the load exceeds ~0.5.")
    for key in args.only.split(","):
        w = WORKLOADS[key]()  # (name, d, t, j, floor) and for the GPT step its MKL floor
        run_workload(key, *w[:5], args)
    print(f"\n# after: {_loadavg()}")


if __name__ == "__main__":
    main()
