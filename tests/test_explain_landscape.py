"""Loss landscapes: bit-exact restore, slices, grids, filter normalisation, trajectories, plots."""

import numpy as np
import pytest

import descent as ds
import descent.nn.functional as F
import descent.optim as optim
from descent.explain import (
    descent_path,
    flatten_parameters,
    loss_landscape,
    surface_grid,
    trajectory_landscape,
    trajectory_projection,
)
from descent.explain.landscape import _filter_normalize
from descent.models import MLP


def _setup(seed=0):
    ds.manual_seed(seed)
    model = MLP([4, 12, 3])
    rng = np.random.default_rng(seed)
    x = ds.tensor(rng.standard_normal((20, 4)).astype(np.float32))
    y = ds.tensor(rng.integers(0, 3, 20))
    return model, (x, y)


def _loss(model, batch):
    return F.cross_entropy(model(batch[0]), batch[1])


def test_parameters_restored_bit_exactly():
    model, batch = _setup()
    before = {n: (p._data.copy(), id(p._data)) for n, p in model.named_parameters()}
    land = loss_landscape(model, _loss, batch, steps=5, grid=True, grid_steps=3)
    for n, p in model.named_parameters():
        assert id(p._data) == before[n][1]  # the very same array objects are back
        assert p._data.tobytes() == before[n][0].tobytes()
        assert p.grad is None  # the gradient direction never touched .grad
    assert len(land.slices) == 3 and land.grid is not None
    assert np.asarray(land.grid.losses).shape == (3, 3)


def test_restored_even_when_loss_fn_raises():
    model, batch = _setup()
    before = {n: p._data.copy() for n, p in model.named_parameters()}
    calls = []

    def bad(m, b):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("boom")
        return _loss(m, b)

    with pytest.raises(RuntimeError, match="boom"):
        loss_landscape(model, bad, batch, steps=5)
    for n, p in model.named_parameters():
        np.testing.assert_array_equal(p._data, before[n])


def test_slices_centre_and_gradient_direction_descends():
    model, batch = _setup(1)
    base = float(_loss(model, batch).item())
    land = loss_landscape(model, _loss, batch, steps=21, span=0.2, num_random=1)
    g = land.slices[0]
    assert g.direction == "negative gradient"
    assert g.alphas[10] == 0.0 and g.losses[10] == base
    # a small step along -gradient lowers the loss, a small step back raises it
    assert g.losses[11] < base < g.losses[9]
    assert "negative gradient" in str(land) and land.to_dict()["slices"][1]["direction"]


def test_filter_normalisation_matches_weight_filter_norms():
    model, _ = _setup()
    params = [p for _, p in model.named_parameters()]
    rng = np.random.default_rng(0)
    d = [rng.standard_normal(p.shape) for p in params]
    _filter_normalize(d, params, include_1d=False)
    for dk, p in zip(d, params):
        w = p._data.astype(np.float64)
        if w.ndim == 1:
            assert not dk.any()  # biases get no direction (Li et al.)
        else:
            np.testing.assert_allclose(
                np.linalg.norm(dk, axis=1), np.linalg.norm(w, axis=1), rtol=1e-6
            )


def test_trajectory_projection_straight_line_and_plane():
    rng = np.random.default_rng(0)
    start, end = rng.standard_normal(100), rng.standard_normal(100)
    line = [start + t * (end - start) for t in np.linspace(0, 1, 6)]
    tr = trajectory_projection(line, steps=list(range(6)))
    assert tr.explained[0] > 0.999
    c = np.asarray(tr.coords)
    assert np.allclose(c[-1], 0) and np.allclose(c[:, 1], 0, atol=1e-8)
    # distances along the path are preserved by the projection (it lies in the plane)
    np.testing.assert_allclose(np.abs(c[0, 0]), np.linalg.norm(end - start), rtol=1e-8)
    with pytest.raises(ValueError, match="at least 2"):
        trajectory_projection(line[:1])


def test_trajectory_landscape_on_real_training():
    model, batch = _setup(2)
    opt = optim.SGD(model.parameters(), lr=0.5)
    snaps = [flatten_parameters(model)]
    for _ in range(6):
        opt.zero_grad()
        _loss(model, batch).backward()
        opt.step()
        snaps.append(flatten_parameters(model))
    before = flatten_parameters(model)
    tr = trajectory_projection(snaps)
    land = trajectory_landscape(model, _loss, batch, tr, grid_steps=5)
    np.testing.assert_array_equal(flatten_parameters(model), before)
    z = np.asarray(land.grid.losses)
    assert z.shape == (5, 5) and np.isfinite(z).all()
    assert land.trajectory is tr and "PCA" in land.grid.directions[0]


def test_toy_descent_path_and_surface():
    def f(t):
        return t[0] ** 2 + 10 * t[1] ** 2

    path = descent_path(f, (2.0, 1.0), lr=0.04, steps=30)
    assert len(path.points) == 31 and path.losses[-1] < 0.05 * path.losses[0]
    np.testing.assert_allclose(path.gradients[0], [4.0, 20.0])  # (2x, 20y) at (2, 1)
    np.testing.assert_allclose(path.points[1], [2 - 0.04 * 4, 1 - 0.04 * 20])
    grid = surface_grid(f, (-2, 2), (-1, 1), steps=9)
    assert grid.losses[4][4] == 0.0 and grid.losses[0][0] == pytest.approx(4 + 10)


def test_plots_render_png():
    from descent.explain import plot

    def f(t):
        return (t[0] - 1) ** 2 + 3 * t[1] ** 2

    path = descent_path(f, (-1.5, 1.0), lr=0.1, steps=10)
    grid = surface_grid(f, (-2, 2), (-1.5, 1.5), steps=20)
    png = plot.to_png(plot.toy_descent(grid, path))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    model, batch = _setup(3)
    land = loss_landscape(model, _loss, batch, steps=5, grid=True, grid_steps=4)
    assert plot.to_png(plot.landscape_slices(land))[:4] == b"\x89PNG"
    assert plot.to_png(plot.landscape_contour(land.grid))[:4] == b"\x89PNG"
