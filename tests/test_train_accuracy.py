"""The reference classifiers learn: stated accuracies on held-out data.

* LeNet on generated 28x28 images of 8 shape classes (lines in four directions, a square, a disk,
  a plus and a cross) at random positions and sizes with pixel noise: >= 95% test accuracy.
* MLP on three interleaved spirals (the classic non-linearly-separable problem; 2 inputs,
  3 classes, noisy): >= 95% test accuracy, where a linear model stays near 50%.

Seeds are fixed, so each run is the same; the thresholds leave room below what the runs reach.
"""

from __future__ import annotations

import numpy as np

import descent
from descent import nn
from descent.models import MLP, LeNet
from descent.nn import functional as F
from descent.optim import Adam

# ---------------------------------------------------------------------------------------------
# Data built here, seeded


def shape_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n images (n, 1, 28, 28) float32 of 8 shape classes, and their labels (n,)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    images = np.zeros((n, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 8, size=n)
    for i, label in enumerate(labels):
        half = rng.integers(5, 10)  # half the size of the shape
        cy, cx = rng.integers(half + 1, 27 - half, size=2)  # its centre, inside the frame
        dy, dx = yy - cy, xx - cx
        inside = (np.abs(dy) <= half) & (np.abs(dx) <= half)
        thick = 1.2
        masks = [
            inside & (np.abs(dy) < thick),  # 0: horizontal line
            inside & (np.abs(dx) < thick),  # 1: vertical line
            inside & (np.abs(dy - dx) < thick),  # 2: diagonal \
            inside & (np.abs(dy + dx) < thick),  # 3: diagonal /
            inside & ((np.abs(dy) > half - 2) | (np.abs(dx) > half - 2)),  # 4: square outline
            dy**2 + dx**2 <= half**2,  # 5: filled disk
            inside & ((np.abs(dy) < thick) | (np.abs(dx) < thick)),  # 6: plus
            inside & ((np.abs(dy - dx) < thick) | (np.abs(dy + dx) < thick)),  # 7: cross
        ]
        images[i, 0] = masks[label] * rng.uniform(0.6, 1.0)
    images += rng.normal(0.0, 0.15, size=images.shape).astype(np.float32)
    return images, labels


def spirals(n: int, seed: int, arms: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """n points (n, 2) on `arms` interleaved spirals with noise, and their arm (n,)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, arms, size=n)
    r = rng.uniform(0.05, 1.0, size=n)
    theta = labels * (2 * np.pi / arms) + r * 4.0 + rng.normal(0.0, 0.15, size=n)
    x = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1).astype(np.float32)
    return x, labels


# ---------------------------------------------------------------------------------------------


def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, steps: int, batch: int, lr: float):
    """Adam on shuffled mini-batches; returns the last loss."""
    rng = np.random.default_rng(0)
    opt = Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        idx = rng.integers(0, len(x), size=batch)
        logits = model(descent.tensor(x[idx]))
        loss = F.cross_entropy(logits, descent.tensor(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


@descent.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    pred = model(descent.tensor(x)).numpy().argmax(axis=1)
    return float((pred == y).mean())


def test_lenet_learns_shapes_to_95_percent():
    descent.manual_seed(0)
    x_train, y_train = shape_images(1200, seed=1)
    x_test, y_test = shape_images(400, seed=2)
    model = LeNet(num_classes=8)
    assert accuracy(model, x_test, y_test) < 0.35  # untrained: about chance (1/8)
    fit(model, x_train, y_train, steps=250, batch=32, lr=2e-3)
    acc = accuracy(model, x_test, y_test)
    assert acc >= 0.95, f"LeNet test accuracy {acc:.3f} < 0.95"


def test_mlp_learns_spirals_to_95_percent():
    descent.manual_seed(0)
    x_train, y_train = spirals(1500, seed=1)
    x_test, y_test = spirals(500, seed=2)
    # A linear model cannot separate spirals: the problem needs the hidden layers.
    linear = MLP([2, 3])
    fit(linear, x_train, y_train, steps=300, batch=64, lr=1e-2)
    assert accuracy(linear, x_test, y_test) < 0.7
    model = MLP([2, 64, 64, 3], activation="relu")
    fit(model, x_train, y_train, steps=1500, batch=64, lr=1e-2)
    acc = accuracy(model, x_test, y_test)
    assert acc >= 0.95, f"MLP test accuracy {acc:.3f} < 0.95"
