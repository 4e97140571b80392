"""Generated classification data (no download): Gaussian blobs, interleaved spirals, shape images.

Every generator takes a seeded `descent.Generator`, so the same seed gives the same data, and
returns `(X, y)`: float32 inputs and int64 class labels as descent Tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..creation import Generator, default_generator
from ..tensor import Tensor


def _rng(generator: Generator | None) -> np.random.Generator:
    return (generator or default_generator()).numpy_rng


def blobs(
    n: int = 300,
    centers: int | Sequence[Sequence[float]] = 3,
    dim: int = 2,
    generator: Generator | None = None,
    std: float = 1.0,
    center_box: tuple[float, float] = (-10.0, 10.0),
) -> tuple[Tensor, Tensor]:
    """Isotropic Gaussian blobs (scikit-learn's `make_blobs`).

    Args:
        n: number of points, spread as evenly as possible over the classes.
        centers: the number of classes (centers drawn uniformly in `center_box`), or the
            centers themselves, shape (K, dim).
        dim: input dimension (ignored when `centers` are given).
        generator: seeded generator.
        std: standard deviation of each blob.
        center_box: range of the random centers.

    Returns:
        `X` (n, dim) float32 and `y` (n,) int64 in `[0, K)`, shuffled.
    """
    rng = _rng(generator)
    if isinstance(centers, (int, np.integer)):
        c = rng.uniform(center_box[0], center_box[1], size=(int(centers), dim))
    else:
        c = np.asarray(centers, dtype=np.float64)
        if c.ndim != 2:
            raise ValueError(f"blobs: centers must have shape (K, dim), got {tuple(c.shape)}")
    k = len(c)
    y = np.arange(n) % k  # balanced classes
    x = c[y] + std * rng.standard_normal((n, c.shape[1]))
    perm = rng.permutation(n)
    return Tensor._wrap(x[perm].astype(np.float32)), Tensor._wrap(y[perm].astype(np.int64))


def spirals(
    n: int = 300,
    classes: int = 3,
    noise: float = 0.2,
    generator: Generator | None = None,
    turns: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Interleaved 2-D spirals (the CS231n toy problem a linear model cannot solve).

    Args:
        n: number of points (spread evenly over the classes).
        classes: number of spiral arms.
        noise: standard deviation of the angular noise.
        generator: seeded generator.
        turns: how far each arm winds (in full turns).

    Returns:
        `X` (n, 2) float32 in about [-1, 1]^2 and `y` (n,) int64, shuffled.
    """
    rng = _rng(generator)
    y = np.arange(n) % classes
    r = rng.uniform(0.05, 1.0, size=n)  # radius
    theta = (
        2 * np.pi * turns * r + 2 * np.pi * y / classes + noise * rng.standard_normal(n)
    )  # arm k is rotated by 2 pi k / classes
    x = np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1)
    perm = rng.permutation(n)
    return Tensor._wrap(x[perm].astype(np.float32)), Tensor._wrap(y[perm].astype(np.int64))


IMAGE_CLASSES = ("horizontal bar", "vertical bar", "cross", "diagonal", "square", "dot")


def _draw(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One (size, size) image of shape class `kind` at a random position and thickness."""
    img = np.zeros((size, size), dtype=np.float32)
    t = int(rng.integers(1, max(2, size // 8) + 1))  # stroke thickness
    lo, hi = size // 8, size - size // 8 - t  # keep strokes inside the frame
    r, c = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
    a = int(rng.integers(size // 4, size // 2 + 1))  # half-length of strokes
    r0, r1 = max(0, r - a), min(size, r + a + t)
    c0, c1 = max(0, c - a), min(size, c + a + t)
    if kind == 0:  # horizontal bar
        img[r : r + t, c0:c1] = 1.0
    elif kind == 1:  # vertical bar
        img[r0:r1, c : c + t] = 1.0
    elif kind == 2:  # cross
        img[r : r + t, c0:c1] = 1.0
        img[r0:r1, c : c + t] = 1.0
    elif kind == 3:  # diagonal (top-left to bottom-right)
        for i in range(-a, a + 1):
            rr, cc = r + i, c + i
            if 0 <= rr < size:
                img[rr, max(0, cc) : min(size, cc + t)] = 1.0
    elif kind == 4:  # square outline
        img[r0 : r0 + t, c0:c1] = 1.0
        img[r1 - t : r1, c0:c1] = 1.0
        img[r0:r1, c0 : c0 + t] = 1.0
        img[r0:r1, c1 - t : c1] = 1.0
    else:  # filled dot (a small square blob)
        s = max(2, size // 5)
        img[r : r + s, c : c + s] = 1.0
    return img


def images(
    n: int = 1000,
    size: int = 16,
    classes: int = 4,
    noise: float = 0.1,
    generator: Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Small generated images of simple shapes, for training a CNN without a download.

    Class k draws shape `IMAGE_CLASSES[k]` (horizontal bar, vertical bar, cross, diagonal,
    square outline, dot) at a random position, length and stroke width, plus Gaussian pixel noise.

    Args:
        n: number of images (classes balanced).
        size: image height and width (16 or 28 are typical).
        classes: number of shape classes, 2 to 6.
        noise: standard deviation of the pixel noise.
        generator: seeded generator.

    Returns:
        `X` (n, 1, size, size) float32 and `y` (n,) int64, shuffled.
    """
    if not 2 <= classes <= len(IMAGE_CLASSES):
        raise ValueError(f"images: classes must be in [2, {len(IMAGE_CLASSES)}], got {classes}")
    if size < 8:
        raise ValueError(f"images: size must be at least 8, got {size}")
    rng = _rng(generator)
    y = rng.permutation(np.arange(n) % classes)
    x = np.stack([_draw(int(k), size, rng) for k in y])  # (n, size, size)
    x = x + noise * rng.standard_normal(x.shape).astype(np.float32)
    return Tensor._wrap(x[:, None].astype(np.float32)), Tensor._wrap(y.astype(np.int64))
