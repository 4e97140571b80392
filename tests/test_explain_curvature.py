"""descent.explain curvature: HVPs, sharpness, trace, spectral density, stability, noise scale.

References: numpy.linalg.eigvalsh of the full Hessian (descent.func.hessian, an independent
path: reverse-over-reverse Jacobians), torch 2.13's double backward (float32), closed forms
(quadratics, linear regression) and the optimizers' own trajectories on 1-D quadratics.
"""

import copy
import json

import numpy as np
import pytest
import torch

import descent as ds
import descent.nn.functional as F
from descent import func, nn
from descent.explain import (
    gradient_noise_scale,
    hessian_trace,
    hvp,
    sharpness,
    spectral_density,
    stability,
)
from descent.explain.curvature import HessianOperator
from descent.func_vmap import functional_call

F64 = ds.float64


# ---------------------------------------------------------------------------------------------
# helpers


def _quadratic(A, b=None):
    """A 'model' {w} and the loss 1/2 w^T A w + b^T w: its Hessian is A, everywhere."""
    n = A.shape[0]
    rng = np.random.default_rng(1)
    params = {"w": ds.tensor(rng.standard_normal(n), dtype=F64, requires_grad=True)}
    At = ds.tensor(A, dtype=F64)
    bt = ds.tensor(np.zeros(n) if b is None else b, dtype=F64)

    def loss(m, _batch):
        w = m["w"]
        return 0.5 * (w * (At @ w)).sum() + (bt * w).sum()

    return params, loss


def _indefinite(n=12, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.concatenate([[-9.0, -2.5], np.linspace(-1, 5, n - 2)])  # |lambda_min| > lambda_max
    return (q * lam) @ q.T


def _mlp64(act=nn.Tanh, seed=0):
    ds.manual_seed(seed)
    m = nn.Sequential(nn.Linear(3, 5), act(), nn.Linear(5, 2)).to(np.float64)
    rng = np.random.default_rng(seed)
    x = ds.tensor(rng.standard_normal((8, 3)), dtype=F64)
    y = ds.tensor(rng.standard_normal((8, 2)), dtype=F64)
    return m, (x, y)


def _mse(m, b):
    return F.mse_loss(m(b[0]), b[1])


def _full_hessian(model, loss_fn, batch):
    """The Hessian by descent.func.hessian of the loss as a function of one flat vector."""
    named = list(model.named_parameters())
    flat = np.concatenate([p._data.ravel() for _, p in named])

    def f(w):
        tensors, i = {}, 0
        for name, p in named:
            k = p.numel()
            tensors[name] = w[i : i + k].reshape(tuple(p.shape))
            i += k
        return loss_fn(_Functional(model, tensors), batch)

    return func.hessian(f)(ds.tensor(flat, dtype=F64)).numpy()


class _Functional:
    """model(x) with the given tensors in place of the parameters (functional_call)."""

    def __init__(self, model, tensors):
        self.model, self.tensors = model, tensors

    def __call__(self, x):
        return functional_call(self.model, self.tensors, (x,))


# ---------------------------------------------------------------------------------------------
# Hessian-vector products


def test_hvp_of_a_quadratic_is_A_v_in_every_vector_form():
    A = _indefinite(6)
    params, loss = _quadratic(A)
    v = np.arange(6.0) - 2
    np.testing.assert_allclose(hvp(loss, params, None, v), A @ v, rtol=0, atol=1e-12)
    np.testing.assert_allclose(hvp(loss, params, None, {"w": v}), A @ v, atol=1e-12)
    np.testing.assert_allclose(hvp(loss, params, None, [v]), A @ v, atol=1e-12)
    with pytest.raises(ValueError, match="6 entries"):
        hvp(loss, params, None, np.ones(5))
    assert params["w"].grad is None  # .grad is never touched


def test_unused_frozen_and_linear_parameters_and_bad_losses():
    w = ds.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    b = ds.tensor([0.5], dtype=F64, requires_grad=True)  # the loss is linear in b: H row 0
    unused = ds.tensor([3.0], dtype=F64, requires_grad=True)
    frozen = ds.tensor([4.0], dtype=F64)  # not differentiated: not in the vectors

    def loss(m, _):
        return (m["w"] ** 3).sum() * m["frozen"].sum() + 2 * m["b"].sum()

    model = {"w": w, "b": b, "unused": unused, "frozen": frozen}
    v = np.array([1.0, -1.0, 5.0, 7.0])  # w (2), b, unused
    np.testing.assert_allclose(hvp(loss, model, None, v), [24.0, -48.0, 0, 0], atol=1e-12)
    assert sharpness(model, loss, None, k=2, tol=1e-12).eigenvalues == pytest.approx([48, 24])
    with pytest.raises(TypeError, match="scalar"):
        hvp(lambda m, _: m["w"] * 2, model, None, v)
    with pytest.raises(ValueError, match="not finite|nan"):
        sharpness(model, lambda m, _: m["w"].sum() * float("nan"), None)
    with pytest.raises(ValueError, match="no parameters"):
        sharpness({"frozen": frozen}, loss, None)


def test_mlp_hessian_matches_func_hessian_and_top_eigenvalues_match_eigvalsh():
    m, batch = _mlp64()
    H = _full_hessian(m, _mse, batch)
    op = HessianOperator(_mse, m, batch)
    cols = np.stack([op.matvec(e) for e in np.eye(op.n)], axis=1)
    np.testing.assert_allclose(cols, H, atol=1e-12)
    ev = np.linalg.eigvalsh(H)[::-1]
    assert ev[-1] < -1e-3  # tanh MLP with MSE away from a minimum: indefinite
    s = sharpness(m, _mse, batch, k=3, tol=1e-10)
    np.testing.assert_allclose(s.eigenvalues, ev[:3], rtol=0, atol=1e-8)
    assert s.converged and s.hvps <= op.n
    # eigenvectors: dicts shaped like the parameters, H u = lambda u
    u = np.concatenate([s.eigenvectors[0][n].ravel() for n, _ in m.named_parameters()])
    assert set(s.eigenvectors[0]) == {n for n, _ in m.named_parameters()}
    np.testing.assert_allclose(H @ u, s.value * u, atol=1e-7)
    assert "not a minimum" in str(s)
    # where the sharpest direction lives: shares of |u|^2 per parameter, largest first
    shares = s.where(0)
    assert sum(v for _, v in shares) == pytest.approx(1.0)
    assert shares[0][1] == pytest.approx(max(np.sum(a**2) for a in s.eigenvectors[0].values()))
    assert f"the sharpest direction lies in {shares[0][0]}" in str(s)


def test_loss_over_the_top_eigenvector_plane_curves_by_the_eigenvalues():
    """loss_landscape takes the eigenvector dicts as directions; the loss's second differences
    along them are the eigenvalues (an independent check: no Hessian-vector product)."""
    from descent.explain import loss_landscape

    m, batch = _mlp64(seed=1)
    s = sharpness(m, _mse, batch, k=2, tol=1e-12)
    h = 1e-3
    land = loss_landscape(m, _mse, batch, steps=3, num_random=0, gradient_slice=False,
                          grid=True, grid_steps=3, span=h, directions=tuple(s.eigenvectors),
                          normalization="none")  # fmt: skip
    z = np.asarray(land.grid.losses)  # z[i][j] at (alphas[j], betas[i])
    assert (z[1, 0] + z[1, 2] - 2 * z[1, 1]) / h**2 == pytest.approx(s.eigenvalues[0], rel=1e-4)
    assert (z[0, 1] + z[2, 1] - 2 * z[1, 1]) / h**2 == pytest.approx(s.eigenvalues[1], rel=1e-4)
    with pytest.raises(ValueError, match="unknown parameters"):
        loss_landscape(m, _mse, batch, grid=True, directions=({"nope": 1}, {"nope": 1}))


def test_sharpness_on_quadratics_lanczos_and_power_match_eigvalsh():
    A = _indefinite(12)
    params, loss = _quadratic(A)
    ev = np.linalg.eigvalsh(A)[::-1]
    s = sharpness(params, loss, None, k=3, tol=1e-12)
    np.testing.assert_allclose(s.eigenvalues, ev[:3], atol=1e-8)
    assert s.min_eigenvalue == pytest.approx(ev[-1], abs=1e-8)
    # power iteration: the dominant eigenvalue is -9 (negative): found after the shift
    p = sharpness(params, loss, None, k=2, method="power", iters=3000, tol=1e-11)
    np.testing.assert_allclose(p.eigenvalues, ev[:2], atol=1e-8)
    assert p.method == "power" and p.hvps > s.hvps
    # repeated top eigenvalue: Lanczos sees one copy per Krylov block; the restart finds both
    D = np.diag([3.0, 3.0, 3.0, 1.0, 0.5, -1.0])
    params, loss = _quadratic(D)
    s = sharpness(params, loss, None, k=3, tol=1e-12, iters=6)
    np.testing.assert_allclose(s.eigenvalues, [3, 3, 3], atol=1e-8)
    with pytest.raises(ValueError, match="k must be"):
        sharpness(params, loss, None, k=7)
    with pytest.raises(ValueError, match="method"):
        sharpness(params, loss, None, method="qr")


def test_float64_copy_on_request_leaves_the_model_alone():
    ds.manual_seed(3)
    m = nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 1))
    x, y = ds.randn(6, 3), ds.randn(6, 1)
    before = [p._data.copy() for p in m.parameters()]
    v = np.random.default_rng(0).standard_normal(sum(p.numel() for p in m.parameters()))
    h64 = hvp(_mse, m, (x, y), v, dtype="float64")
    h32 = hvp(_mse, m, (x, y), v)
    assert h64.dtype == np.float64 and h32.dtype == np.float32
    np.testing.assert_allclose(h32, h64, rtol=1e-3, atol=1e-4)
    for p, b in zip(m.parameters(), before):
        assert p._data.dtype == np.float32 and np.array_equal(p._data, b)


def _torch_hvp(tmodel, loss_fn, v_parts):
    params = list(tmodel.parameters())
    loss = loss_fn(tmodel)
    g = torch.autograd.grad(loss, params, create_graph=True)
    hv = torch.autograd.grad(g, params, grad_outputs=v_parts)
    return np.concatenate([h.detach().numpy().ravel() for h in hv])


def _copy_weights(dmodel, tmodel):
    with torch.no_grad():
        for (_, p), (_, tp) in zip(dmodel.named_parameters(), tmodel.named_parameters()):
            tp.copy_(torch.from_numpy(p._data.copy()))


def test_hvp_matches_torch_on_an_mlp_with_tanh_and_gelu():
    ds.manual_seed(0)
    dm = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5), nn.GELU(), nn.Linear(5, 3))
    tm = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 5),
                             torch.nn.GELU(), torch.nn.Linear(5, 3))  # fmt: skip
    _copy_weights(dm, tm)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 4)).astype(np.float32)
    y = rng.integers(0, 3, 7)
    n = sum(p.numel() for p in dm.parameters())
    v = rng.standard_normal(n).astype(np.float32)
    ours = hvp(lambda m, b: F.cross_entropy(m(b[0]), b[1]), dm, (ds.tensor(x), ds.tensor(y)), v)
    parts, i = [], 0
    for p in tm.parameters():
        parts.append(torch.from_numpy(v[i : i + p.numel()].reshape(p.shape)))
        i += p.numel()
    ref = _torch_hvp(tm, lambda m: torch.nn.functional.cross_entropy(
        m(torch.from_numpy(x)), torch.from_numpy(y)), parts)  # fmt: skip
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


def test_hvp_matches_torch_on_a_tiny_conv_net():
    ds.manual_seed(1)
    dm = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
                       nn.Linear(12, 2))  # fmt: skip
    tm = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3, padding=1),
        torch.nn.Tanh(),
        torch.nn.AvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(12, 2),
    )
    _copy_weights(dm, tm)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 4, 4)).astype(np.float32)
    y = rng.standard_normal((3, 2)).astype(np.float32)
    n = sum(p.numel() for p in dm.parameters())
    v = rng.standard_normal(n).astype(np.float32)
    ours = hvp(_mse, dm, (ds.tensor(x), ds.tensor(y)), v)
    parts, i = [], 0
    for p in tm.parameters():
        parts.append(torch.from_numpy(v[i : i + p.numel()].reshape(p.shape)))
        i += p.numel()
    ref = _torch_hvp(tm, lambda m: torch.nn.functional.mse_loss(
        m(torch.from_numpy(x)), torch.from_numpy(y)), parts)  # fmt: skip
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


def test_gpt_hvp_matches_central_differences_of_its_gradient():
    """The whole GPT (embeddings tied to the head, attention, layer norm, GELU MLP, cross
    entropy): H v against (g(w + e v) - g(w - e v)) / 2e in float64 (error ~ e^2: 5e-9 here)."""
    from descent.explain.landscape import _gradient
    from descent.models.gpt import GPT, GPTConfig

    ds.manual_seed(0)
    m = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=8, dropout=0.0))
    m.to(np.float64).eval()
    rng = np.random.default_rng(0)
    batch = (ds.tensor(rng.integers(0, 11, (2, 8))), ds.tensor(rng.integers(0, 11, (2, 8))))
    op = HessianOperator(lambda m, b: m(*b)[1], m, batch)
    v = rng.standard_normal(op.n)
    hv = op.matvec(v)
    orig = [p._data for p in op.params]

    def grad_at(eps):
        for p, o, d in zip(op.params, orig, op.split(v)):
            p._data = o + eps * d
        parts = _gradient(lambda m, b: m(*b)[1], m, batch, op.params)
        return np.concatenate([g.ravel() for g in parts])

    fd = (grad_at(1e-6) - grad_at(-1e-6)) / 2e-6
    for p, o in zip(op.params, orig):
        p._data = o
    assert np.abs(hv - fd).max() <= 1e-7 * np.abs(fd).max()


def test_batchnorm_in_training_mode_hvp_matches_torch_and_running_stats_are_untouched():
    ds.manual_seed(2)
    dm = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2))
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Tanh(),
                             torch.nn.Linear(4, 2))  # fmt: skip
    _copy_weights(dm, tm)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 3)).astype(np.float32)
    y = rng.standard_normal((6, 2)).astype(np.float32)
    stats = {n: b._data.copy() for n, b in dm.named_buffers()}
    n = sum(p.numel() for p in dm.parameters())
    v = rng.standard_normal(n).astype(np.float32)
    ours = hvp(_mse, dm, (ds.tensor(x), ds.tensor(y)), v)
    for name, b in dm.named_buffers():
        assert np.array_equal(b._data, stats[name]), name
    parts, i = [], 0
    for p in tm.parameters():
        parts.append(torch.from_numpy(v[i : i + p.numel()].reshape(p.shape)))
        i += p.numel()
    ref = _torch_hvp(tm, lambda m: torch.nn.functional.mse_loss(
        m(torch.from_numpy(x)), torch.from_numpy(y)), parts)  # fmt: skip
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Trace and spectral density


def test_hutchinson_trace_within_its_standard_error():
    m, batch = _mlp64(nn.GELU, seed=2)
    H = _full_hessian(m, _mse, batch)
    tr = hessian_trace(m, _mse, batch, probes=60, seed=0)
    assert tr.probes == 60 and len(tr.samples) == 60 and tr.stderr > 0
    # within one stated standard error (0.81 of it for this seed; 68% of seeds would pass)
    assert abs(tr.trace - np.trace(H)) <= tr.stderr, (tr.trace, np.trace(H), tr.stderr)
    # per-parameter blocks: they add up to the trace; each near its exact block trace
    blocks, i = {}, 0
    for name, p in m.named_parameters():
        blocks[name] = np.trace(H[i : i + p.numel(), i : i + p.numel()])
        i += p.numel()
    assert sum(t for t, _ in tr.per_parameter.values()) == pytest.approx(tr.trace)
    for name, (t, e) in tr.per_parameter.items():
        assert abs(t - blocks[name]) <= 3 * e + 1e-12, (name, t, blocks[name], e)
    # the stated error is honest: the probes' spread, not zero and not huge
    assert tr.stderr < 0.5 * abs(np.trace(H)) + np.abs(H).max()
    with pytest.raises(ValueError, match="probes"):
        hessian_trace(m, _mse, batch, probes=1)


def test_spectral_density_integrates_to_one_and_finds_the_extremes():
    A = _indefinite(30, seed=4)
    params, loss = _quadratic(A)
    ev = np.linalg.eigvalsh(A)
    full = spectral_density(params, loss, None, probes=2, steps=30)
    assert np.trapezoid(full.density, full.grid) == pytest.approx(1.0, abs=1e-6)
    assert full.lambda_min == pytest.approx(ev[0], abs=1e-8)
    assert full.lambda_max == pytest.approx(ev[-1], abs=1e-8)
    assert full.hvps == 60 and not full.is_minimum and "NOT a minimum" in str(full)
    assert full.negative_mass > 0
    # fewer steps than parameters: the extremes still converge first
    part = spectral_density(params, loss, None, probes=3, steps=15)
    assert part.lambda_min == pytest.approx(ev[0], rel=1e-3)
    assert part.lambda_max == pytest.approx(ev[-1], rel=1e-2)
    assert np.trapezoid(part.density, part.grid) == pytest.approx(1.0, abs=1e-6)
    # a positive definite quadratic is a minimum
    params, loss = _quadratic(A @ A.T + np.eye(30))
    pd = spectral_density(params, loss, None, probes=1, steps=10)
    assert pd.is_minimum and pd.negative_mass == 0 and "minimum" in str(pd)


# ---------------------------------------------------------------------------------------------
# Stability


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"momentum": 0.9},
        {"momentum": 0.5, "dampening": 0.3},
        {"momentum": 0.8, "nesterov": True},
    ],  # fmt: skip
)
def test_sgd_threshold_formula_matches_the_optimizer_on_a_quadratic(kwargs):
    """lambda w^2 / 2 with lambda just below / above the stated threshold: |w| shrinks / grows."""
    lam = 4.0
    for factor, grows in ((0.97, False), (1.03, True)):
        params, loss = _quadratic(np.array([[lam]]))
        opt = ds.optim.SGD([params["w"]], lr=1.0, **kwargs)
        rep = stability(params, loss, None, opt)
        lr = factor * rep.max_stable_lr  # the lr at which lam sits at `factor` of the edge
        opt.param_groups[0]["lr"] = lr
        rep = stability(params, loss, None, opt)
        assert rep.sharpness == pytest.approx(lam) and rep.above_edge == grows
        assert rep.ratio == pytest.approx(factor)  # lambda / threshold
        w0 = abs(float(params["w"]._data[0]))
        for _ in range(600):
            opt.zero_grad()
            loss(params, None).backward()
            opt.step()
        assert (abs(float(params["w"]._data[0])) > w0) == grows, (kwargs, factor)


def test_stability_verdict_agrees_with_training_an_mlp():
    ds.manual_seed(5)
    m0 = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    rng = np.random.default_rng(5)
    batch = (ds.tensor(rng.standard_normal((32, 4)).astype(np.float32)),
             ds.tensor(rng.standard_normal((32, 1)).astype(np.float32)))  # fmt: skip
    edge = stability(m0, _mse, batch, ds.optim.SGD(m0.parameters(), lr=1.0)).max_stable_lr
    for factor in (0.5, 2.5):
        m = copy.deepcopy(m0)
        opt = ds.optim.SGD(m.parameters(), lr=factor * edge)
        rep = stability(m, _mse, batch, opt)
        losses = []
        for _ in range(60):
            opt.zero_grad()
            loss = _mse(m, batch)
            losses.append(loss.item())
            loss.backward()
            opt.step()
        diverged = not np.isfinite(losses[-1]) or losses[-1] > losses[0]
        assert rep.above_edge == diverged == (factor > 1), (factor, losses[::10])
        assert ("ABOVE" in str(rep)) == rep.above_edge
        assert sum(v for _, v in rep.direction) == pytest.approx(1.0)
        assert f"{rep.max_stable_lr:.3g}" in str(rep)


def test_adam_preconditioned_sharpness_and_threshold():
    A = _indefinite(8, seed=6) + 10 * np.eye(8)  # positive definite
    params, loss = _quadratic(A)
    opt = ds.optim.Adam([params["w"]], lr=0.01, betas=(0.8, 0.99))
    with pytest.raises(ValueError, match="at least one optimizer step"):
        stability(params, loss, None, opt)
    for _ in range(3):
        opt.zero_grad()
        loss(params, None).backward()
        opt.step()
    rep = stability(params, loss, None, opt, tol=1e-12)
    st = opt.state[params["w"]]
    t = float(st["step"].item())
    v = st["exp_avg_sq"].numpy().astype(np.float64)
    P = (1 - 0.8**t) * (np.sqrt(v / (1 - 0.99**t)) + 1e-8)
    ref = np.linalg.eigvalsh(A / np.sqrt(np.outer(P, P)))[-1]
    assert rep.preconditioned and rep.measured == pytest.approx(ref, rel=1e-8)
    assert rep.sharpness == pytest.approx(np.linalg.eigvalsh(A)[-1], rel=1e-8)
    assert rep.threshold == pytest.approx((2 + 2 * 0.8) / ((1 - 0.8) * 0.01))
    assert "preconditioned" in str(rep)
    # SGD groups: different weight decays add diag(wd); different lrs precondition by lr_g / lr
    w = params["w"]
    groups = [{"params": [w], "weight_decay": 0.5}]
    rep = stability(params, loss, None, ds.optim.SGD(groups, lr=0.1), tol=1e-12)
    assert rep.sharpness == pytest.approx(np.linalg.eigvalsh(A)[-1] + 0.5, rel=1e-8)
    assert "+ weight decay" in rep.quantity and not rep.preconditioned
    # maximize=True ascends L: the curvature that limits it is that of -L (top eigenvalue of -A)
    up = ds.optim.SGD([params["w"]], lr=0.01, maximize=True)
    assert stability(params, loss, None, up, tol=1e-12).sharpness == pytest.approx(
        -np.linalg.eigvalsh(A)[0], rel=1e-8
    )


# ---------------------------------------------------------------------------------------------
# Gradient noise scale


def _linreg(n, d=4, noise=1.0, seed=0):
    """y = x.w* + noise; the model sits at w* + r. Per example g = x (x.r - eps): G = r and
    tr(Sigma) = (d + 1)|r|^2 + d noise^2 for x ~ N(0, I) (E[(x.r)^2 |x|^2] = (d + 2)|r|^2)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    wstar = rng.standard_normal(d)
    r = np.full(d, 0.5)
    Y = X @ wstar + noise * rng.standard_normal(n)
    lin = nn.Linear(d, 1, bias=False).to(np.float64)
    lin.weight._data = (wstar + r)[None].copy()
    tr_sigma = (d + 1) * r @ r + d * noise**2
    return lin, X, Y, r, tr_sigma


def _half_mse(m, b):
    return 0.5 * ((m(b[0])[:, 0] - b[1]) ** 2).mean()


def test_noise_scale_estimators_equal_their_formulas_on_the_same_gradients():
    lin, X, Y, r, _ = _linreg(40)
    wv = lin.weight._data[0]
    g = X * (X @ wv - Y)[:, None]  # per-example gradients of 1/2 (x.w - y)^2
    ns = gradient_noise_scale(lin, _half_mse, (ds.tensor(X), ds.tensor(Y)), per_example=True)
    var = g.var(axis=0, ddof=1).sum()
    assert ns.trace_sigma == pytest.approx(var, rel=1e-10)
    assert ns.grad_sq_norm == pytest.approx(g.mean(0) @ g.mean(0) - var / 40, rel=1e-10)
    # two batch sizes: 8 batches of 5
    gb = g.reshape(8, 5, -1).mean(axis=1)
    small, big = (gb * gb).sum(1).mean(), gb.mean(0) @ gb.mean(0)
    two = gradient_noise_scale(lin, _half_mse, [(ds.tensor(X[i : i + 5]), ds.tensor(Y[i : i + 5]))
                                                for i in range(0, 40, 5)])  # fmt: skip
    assert two.batch_size == 5 and two.gradients == 8
    assert two.grad_sq_norm == pytest.approx((40 * big - 5 * small) / 35, rel=1e-10)
    assert two.trace_sigma == pytest.approx((small - big) / (1 / 5 - 1 / 40), rel=1e-10)
    with pytest.raises(ValueError, match="one size"):
        gradient_noise_scale(lin, _half_mse, [(ds.tensor(X[:5]), ds.tensor(Y[:5])),
                                              (ds.tensor(X[:6]), ds.tensor(Y[:6]))])  # fmt: skip


def test_noise_scale_matches_the_closed_form_of_linear_regression():
    lin, X, Y, r, tr_sigma = _linreg(2000)
    expected = tr_sigma / (r @ r)  # B_simple = 9 for d = 4, noise 1, |r|^2 = 1
    per = gradient_noise_scale(lin, _half_mse, (ds.tensor(X), ds.tensor(Y)), per_example=True)
    assert per.b_simple == pytest.approx(expected, rel=0.15)
    assert per.critical_batch_size == per.b_simple and "B_simple" in str(per)
    batches = [(ds.tensor(X[i : i + 10]), ds.tensor(Y[i : i + 10])) for i in range(0, 2000, 10)]
    two = gradient_noise_scale(lin, _half_mse, batches)
    assert two.b_simple == pytest.approx(expected, rel=0.25)
    assert two.trace_sigma == pytest.approx(tr_sigma, rel=0.2)
    s, e = two.steps_and_examples(two.b_simple)
    assert s == pytest.approx(2.0) and e == pytest.approx(2.0)


# ---------------------------------------------------------------------------------------------
# During training: the monitor, the summary, the picture, the CLI flag


def test_monitor_records_sharpness_against_2_over_lr_and_the_summary_says_so():
    from descent.explain import GradientMonitor
    from descent.explain import plot as eplot
    from descent.explain.curvature_stability import curvature_findings

    ds.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    batch = (ds.randn(32, 4), ds.randn(32, 1))
    opt = ds.optim.SGD(m.parameters(), lr=0.3)
    mon = GradientMonitor(m, every=5, curvature_every=4, loss_fn=_mse, batch=batch, optimizer=opt)
    for step in range(1, 9):
        opt.zero_grad()
        _mse(m, batch).backward()
        mon.before_step(step)
        opt.step()
        mon.after_step(step)
        if step == 8:  # the record is that of the weights after the step
            ref = stability(m, _mse, batch, opt, iters=20, tol=1e-3)
    recs = mon.curvature_history
    assert [r["step"] for r in recs] == [4, 8] and all(p.grad is not None for p in m.parameters())
    assert recs[-1]["measured"] == pytest.approx(ref.measured, rel=1e-5)
    assert recs[-1]["threshold"] == pytest.approx(2 / 0.3) and m.training
    (good,) = curvature_findings(recs)
    assert good.level == "good" and "2 / lr" in good.text
    hot = [dict(r, measured=2 * r["threshold"]) for r in recs]
    (warn,) = curvature_findings(hot)
    assert warn.level == "warning"
    assert "exceeded the edge of stability 2 / lr at step 4" in warn.text
    assert len(eplot.sharpness(recs).axes[0].lines) == 2
    # off by default; on without a batch: a clear error
    assert GradientMonitor(m).curvature_every == 0
    with pytest.raises(ValueError, match="batch="):
        GradientMonitor(m, curvature_every=1, optimizer=opt).after_step(1)


def test_report_reads_curvature_records_and_skips_damaged_ones(tmp_path):
    from descent.explain import write_report
    from descent.explain.report import load_run

    good = {"step": 10, "measured": 12.0, "threshold": 20.0, "lr": 0.1, "formula": "2 / lr",
            "preconditioned": False}  # fmt: skip
    lines = [json.dumps(good), '{"step": 20, "measured": "x"}', "not json",
             json.dumps({**good, "step": 30, "measured": 25.0})]  # fmt: skip
    (tmp_path / "curvature.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 1.0}) + "\n")
    run = load_run(tmp_path)
    assert [r["step"] for r in run.curvature] == [10, 30]
    html = open(write_report(tmp_path)).read()
    assert '<section id="curvature">' in html
    assert "exceeded the edge of stability 2 / lr at step 30" in html


def test_cli_curvature_every_needs_report(capsys):
    from descent.cli import main

    assert main(["train", "--curvature-every", "5"]) == 2
    assert "add --report" in capsys.readouterr().err


def test_sgd_param_groups_act_as_a_preconditioner():
    """Groups with their own lr and weight decay: lambda_1(L^1/2 (H + diag(wd)) L^1/2) with
    L = lr_group / lr, built by hand from the full Hessian."""
    m, batch = _mlp64()
    first, last = list(m[0].parameters()), list(m[2].parameters())
    groups = [{"params": first}, {"params": last, "lr": 0.05, "weight_decay": 0.1}]
    rep = stability(m, _mse, batch, ds.optim.SGD(groups, lr=0.1), tol=1e-12)
    H = _full_hessian(m, _mse, batch)
    n0 = sum(p.numel() for p in first)
    s = np.r_[np.ones(n0), np.full(len(H) - n0, 0.5)]
    wd = np.r_[np.zeros(n0), np.full(len(H) - n0, 0.1)]
    ref = np.linalg.eigvalsh(np.sqrt(np.outer(s, s)) * (H + np.diag(wd)))[-1]
    assert rep.preconditioned and rep.measured == pytest.approx(ref, rel=1e-8)
    assert rep.threshold == pytest.approx(20.0) and "learning rates" in str(rep)
