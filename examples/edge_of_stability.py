"""The edge of stability: full-batch gradient descent raises the sharpness until it reaches 2 / lr.

Cohen, Kaur, Li, Kolter and Talwalkar (2021, "Gradient descent on neural networks typically occurs
at the edge of stability") observed that when a network is trained by full-batch gradient descent,
the sharpness (the largest eigenvalue of the loss's Hessian) first rises ("progressive
sharpening") and then hovers at 2 / lr, the largest curvature that gradient descent with that lr
can follow, while the loss keeps falling, not monotonically. This script trains the same small
MLP at two learning rates and records the sharpness every few steps with
descent.explain.GradientMonitor(curvature_every=...); each run settles at its own 2 / lr.

    python examples/edge_of_stability.py [OUT_DIR]     # prints a table, writes sharpness.png
"""

import sys
import time
from pathlib import Path

import numpy as np

import descent as ds
import descent.nn.functional as F
from descent import nn
from descent.explain import GradientMonitor, stability

# -- settings (nanoGPT style: plain constants) --------------------------------------------------
LEARNING_RATES = (0.1, 0.05)
STEPS = 1500
CURVATURE_EVERY = 50  # steps between two sharpness measurements
CURVATURE_ITERS = 30  # Lanczos steps (Hessian-vector products) per measurement
N, D, WIDTH = 200, 10, 64  # examples, input size, hidden width
SEED = 0
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out/edge_of_stability")

# -- data: a smooth target of random inputs; the whole set is the batch ------------------------
rng = np.random.default_rng(SEED)
x_np = rng.standard_normal((N, D)).astype(np.float32)
y_np = np.sin(x_np @ rng.standard_normal((D, 1))).astype(np.float32)
batch = (ds.tensor(x_np), ds.tensor(y_np))


def loss_fn(model, batch):
    return F.mse_loss(model(batch[0]), batch[1])


runs = {}
for lr in LEARNING_RATES:
    ds.manual_seed(SEED)  # the same initial weights for every lr
    model = nn.Sequential(nn.Linear(D, WIDTH), nn.Tanh(), nn.Linear(WIDTH, WIDTH), nn.Tanh(),
                          nn.Linear(WIDTH, 1))  # fmt: skip
    opt = ds.optim.SGD(model.parameters(), lr=lr)  # plain gradient descent on the full batch
    start = stability(model, loss_fn, batch, opt)
    monitor = GradientMonitor(model, every=STEPS + 1, curvature_every=CURVATURE_EVERY,
                              loss_fn=loss_fn, batch=batch, optimizer=opt,
                              curvature_iters=CURVATURE_ITERS)  # fmt: skip
    t0 = time.time()
    losses = []
    for step in range(1, STEPS + 1):
        opt.zero_grad()
        loss = loss_fn(model, batch)
        loss.backward()
        losses.append(loss.item())
        opt.step()
        monitor.after_step(step)  # every CURVATURE_EVERY steps: stability() of the new weights
    runs[lr] = monitor.curvature_history
    print(f"\nlr {lr}: 2 / lr = {2 / lr:g}; sharpness at initialisation {start.sharpness:.3g} "
          f"({time.time() - t0:.0f} s)")  # fmt: skip
    print(f"{'step':>6} {'loss':>9} {'sharpness':>10} {'x 2/lr':>7}")
    for rec in monitor.curvature_history[:: max(1, len(monitor.curvature_history) // 10)]:
        s = rec["step"]
        print(f"{s:6d} {losses[s - 1]:9.5f} {rec['measured']:10.3f} {rec['ratio']:7.3f}")

# -- picture: the sharpness of each run and its 2 / lr ------------------------------------------
try:
    from descent.explain import plot
except ImportError:
    plot = None
if plot is not None:
    OUT.mkdir(parents=True, exist_ok=True)
    fig = plot.sharpness(runs[LEARNING_RATES[0]])
    ax = fig.axes[0]
    ax.lines[0].set_label(f"sharpness at lr {LEARNING_RATES[0]}")
    ax.lines[1].set_label(f"2 / lr = {2 / LEARNING_RATES[0]:g}")
    for lr in LEARNING_RATES[1:]:
        recs = runs[lr]
        ax.plot([r["step"] for r in recs], [r["measured"] for r in recs], "o-", ms=3,
                label=f"sharpness at lr {lr}")  # fmt: skip
        ax.axhline(2 / lr, ls=":", color="gray", lw=1, label=f"2 / lr = {2 / lr:g}")
    ax.legend(fontsize=7)
    fig.savefig(OUT / "sharpness.png")
    print(f"\nwrote {OUT / 'sharpness.png'}")
