"""The concepts of gradient descent, with descent: the script behind docs/tutorial.md.

    python examples/tutorial.py [OUT]        (pictures go to OUT, default out/tutorial)

1. a loss function is a scorecard;
2. a partial derivative, by nudging one parameter and by autodiff, side by side;
3. the gradient is a vector: a direction and a magnitude;
4. gradient descent on a 2-D hill, with the picture;
5. a small network: its gradient check, its gradient report, its landscape, its graph;
6. anomaly mode: where did the NaN come from?
"""

import os
import sys

import numpy as np

import descent as ds
import descent.nn.functional as F
import descent.optim as optim
from descent import explain
from descent.explain import plot
from descent.models import MLP

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join("out", "tutorial")
SEED = 0
TRUE_W, TRUE_B = 2.0, -1.0  # the line the data comes from
N_POINTS = 20
LR = 0.4  # step size of the 2-D descent
STEPS = 25
NET_STEPS = 150  # training steps of the small network

os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(SEED)
ds.manual_seed(SEED)


def save(fig, name):
    path = os.path.join(OUT, name)
    fig.savefig(path, bbox_inches="tight")
    print(f"  picture: {path}")


# --- 1. A loss function is a scorecard -------------------------------------------------------
# Data from the line y = 2x - 1 plus noise. A model y = w x + b gets a score for each (w, b):
# the mean squared error. Lower is better; 0 would be a perfect fit.
x = ds.tensor(np.linspace(-1, 1, N_POINTS), dtype=ds.float64)
y = ds.tensor(TRUE_W * x.numpy() + TRUE_B + 0.1 * rng.standard_normal(N_POINTS), dtype=ds.float64)


def loss_of(w, b):
    return ((w * x + b - y) ** 2).mean()


print("1. the loss is a scorecard for each guess of (w, b):")
for w, b in [(0.0, 0.0), (1.0, 0.0), (2.0, -1.0), (3.0, 1.0)]:
    print(f"  w={w:+.1f} b={b:+.1f}  loss {loss_of(w, b).item():.4f}")

# --- 2. A partial derivative: nudge one knob, or ask autodiff ---------------------------------
# dL/dw at (w, b) = (0.5, 0.5): how much the score changes per unit change of w, b held fixed.
w = ds.tensor(0.5, dtype=ds.float64, requires_grad=True)
b = ds.tensor(0.5, dtype=ds.float64, requires_grad=True)
loss = loss_of(w, b)
loss.backward()  # autodiff: fills w.grad and b.grad
h = 1e-5
nudged_w = (loss_of(0.5 + h, 0.5).item() - loss_of(0.5 - h, 0.5).item()) / (2 * h)
nudged_b = (loss_of(0.5, 0.5 + h).item() - loss_of(0.5, 0.5 - h).item()) / (2 * h)
print("2. partial derivatives at (w, b) = (0.5, 0.5):")
print(f"  dL/dw: nudging {nudged_w:+.8f}   autodiff {w.grad.item():+.8f}")
print(f"  dL/db: nudging {nudged_b:+.8f}   autodiff {b.grad.item():+.8f}")
assert abs(nudged_w - w.grad.item()) < 1e-6 and abs(nudged_b - b.grad.item()) < 1e-6

# --- 3. The gradient is a vector: direction and magnitude -------------------------------------
g = np.array([w.grad.item(), b.grad.item()])
magnitude = np.linalg.norm(g)
direction = g / magnitude
print("3. the gradient (dL/dw, dL/db):")
print(f"  vector {g.round(4)}, magnitude {magnitude:.4f}, direction {direction.round(4)}")
print("  it points uphill; a small step against it lowers the loss:")
for step in (0.01, 0.1):
    nw, nb = np.array([0.5, 0.5]) - step * direction
    print(f"  step {step}: loss {loss.item():.4f} -> {loss_of(nw, nb).item():.4f}")


# --- 4. Gradient descent on a 2-D hill ---------------------------------------------------------
def f(p):  # the same loss as a function of one 2-vector p = (w, b)
    return loss_of(p[0], p[1])


path = explain.descent_path(f, start=(-1.0, 1.5), lr=LR, steps=STEPS)
grid = explain.surface_grid(f, (-1.5, 3.5), (-2.5, 2.0), steps=60)
print("4. gradient descent, x <- x - lr * gradient:")
print(f"  {path}")
w_end, b_end = path.points[-1]
print(f"  found w={w_end:.3f}, b={b_end:.3f} (the data came from w={TRUE_W}, b={TRUE_B})")
fig = plot.toy_descent(grid, path, title="Gradient descent on the line-fit loss", labels=("w", "b"))
save(fig, "descent_2d.png")

# --- 5. A small network ------------------------------------------------------------------------
# Two interleaved spirals: not separable by a line, so the network needs its hidden layer.
n = 100
t = np.linspace(0.3, 3 * np.pi / 2, n)
pts = np.concatenate([np.stack([t * np.cos(t), t * np.sin(t)], 1),
                      np.stack([-t * np.cos(t), -t * np.sin(t)], 1)]) / 5  # fmt: skip
labels = np.concatenate([np.zeros(n), np.ones(n)]).astype(np.int64)
X = ds.tensor(pts.astype(np.float32))
Y = ds.tensor(labels)
model = MLP([2, 32, 32, 2], activation="tanh")


def net_loss(m, batch):
    return F.cross_entropy(m(batch[0]), batch[1])


print("5. a small network (MLP 2-32-32-2 on two spirals):")
check = explain.check_model_gradients(model, net_loss, (X[:16], Y[:16]))
print("  " + str(check).replace("\n", "\n  "))

opt = optim.Adam(model.parameters(), lr=0.02)
monitor = explain.GradientMonitor(model, every=25)
snapshots = [explain.flatten_parameters(model)]
for step in range(1, NET_STEPS + 1):
    opt.zero_grad()
    loss = net_loss(model, (X, Y))
    loss.backward()
    monitor.before_step(step)
    opt.step()
    monitor.after_step(step)
    if step % 25 == 0:
        snapshots.append(explain.flatten_parameters(model))
accuracy = (model(X).numpy().argmax(1) == labels).mean()
print(f"  after {NET_STEPS} Adam steps: loss {loss.item():.4f}, accuracy {accuracy:.0%}")

# The monitor's last record: the gradients of step 150 and how far that step moved each tensor.
report = monitor.history[-1]
print("  " + str(report).replace("\n", "\n  "))

land = explain.loss_landscape(model, net_loss, (X, Y), steps=21, span=1.0, num_random=2)
print("  " + str(land).replace("\n", "\n  "))
save(plot.landscape_slices(land), "net_slices.png")
traj = explain.trajectory_projection(snapshots, steps=[25 * i for i in range(len(snapshots))])
surface = explain.trajectory_landscape(model, net_loss, (X, Y), traj, grid_steps=15)
save(plot.landscape_contour(surface.grid, traj, title="Training path on the loss surface"),
     "net_trajectory.png")  # fmt: skip
save(plot.gradient_norms([r.to_dict() for r in monitor.history]), "net_gradients.png")

opt.zero_grad()
small_loss = net_loss(model, (X[:4], Y[:4]))
view = explain.graph(small_loss, params=model.named_parameters())
small_loss.backward()  # the view's hooks record each node's gradient norm
print("  the graph of the loss on 4 points:")
print("  " + str(view).replace("\n", "\n  "))
with open(os.path.join(OUT, "graph.dot"), "w") as fh:
    fh.write(view.to_dot())  # render with: dot -Tpng graph.dot -o graph.png

# --- 6. Anomaly mode ----------------------------------------------------------------------------
print("6. anomaly mode finds the op and the line that made a NaN/Inf:")
probs = ds.tensor([0.5, 0.0, 0.5])
try:
    with explain.detect_anomaly(), np.errstate(divide="ignore"):
        entropy = -(probs * ds.log(probs)).sum()  # log(0) = -inf, and 0 * -inf = NaN
except explain.AnomalyError as e:
    print("  " + str(e).replace("\n", "\n  "))
print("done")
