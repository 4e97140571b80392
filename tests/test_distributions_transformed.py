"""TransformedDistribution and the transforms, MixtureSameFamily and
OneHotCategoricalStraightThrough against torch.distributions: values, shapes and gradients
(float32 and float64), and the transforms' caching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributions as TD
import torch.distributions.transforms as TT

import descent as ds
import descent.distributions as D
import descent.distributions.transforms as DT

R = np.random.default_rng(9)
LOC, SCALE = R.normal(0, 1, (3, 4)), R.uniform(0.5, 2.0, (3, 4))
LOC3, SCALE3 = R.normal(0, 1, (3, 2, 5)), R.uniform(0.5, 1, (3, 2, 5))


def _t(lib, arr, dtype, grad=False):
    if lib is torch:
        return torch.tensor(arr, dtype=getattr(torch, np.dtype(dtype).name), requires_grad=grad)
    return ds.tensor(np.asarray(arr, dtype), requires_grad=grad)


# name -> (function(lib's distributions module, lib's transforms module, tensor maker) ->
# distribution, values for log_prob)
TRANSFORMED = {
    "exp": (lambda M, T, t: M.TransformedDistribution(M.Normal(t(LOC), t(SCALE)),
                                                      [T.ExpTransform()]),
            R.uniform(0.2, 3.0, (5, 3, 4))),
    "affine_exp": (lambda M, T, t: M.TransformedDistribution(
        M.Normal(t(LOC), t(SCALE)), [T.AffineTransform(t(LOC[0]), 2.0), T.ExpTransform()]),
        R.uniform(0.2, 3.0, (5, 3, 4))),
    "negative_affine": (lambda M, T, t: M.TransformedDistribution(
        M.Normal(t(LOC), t(SCALE)), T.AffineTransform(1.0, t(-SCALE))),
        R.normal(0, 1, (5, 3, 4))),
    "sigmoid": (lambda M, T, t: M.TransformedDistribution(M.Normal(t(LOC), t(SCALE)),
                                                          T.SigmoidTransform()),
                R.uniform(0.05, 0.95, (5, 3, 4))),
    "tanh": (lambda M, T, t: M.TransformedDistribution(M.Normal(t(LOC), t(SCALE)),
                                                       [T.TanhTransform(cache_size=1)]),
             R.uniform(-0.9, 0.9, (5, 3, 4))),
    "softplus": (lambda M, T, t: M.TransformedDistribution(M.Gamma(t(SCALE), t(SCALE)),
                                                           T.SoftplusTransform().inv),
                 R.normal(0, 1, (5, 3, 4))),
    "power": (lambda M, T, t: M.TransformedDistribution(M.Exponential(t(SCALE)),
                                                        T.PowerTransform(t(SCALE[0]))),
              R.uniform(0.2, 3.0, (5, 3, 4))),
    "affine_event": (lambda M, T, t: M.TransformedDistribution(
        M.Independent(M.Normal(t(LOC), t(SCALE)), 1),
        T.AffineTransform(t(LOC[0]), t(SCALE[1]), event_dim=1)), R.normal(0, 1, (5, 3, 4))),
    "independent_transform": (lambda M, T, t: M.TransformedDistribution(
        M.Normal(t(LOC), t(SCALE)), T.IndependentTransform(T.ExpTransform(), 1)),
        R.uniform(0.2, 3.0, (5, 3, 4))),
    "compose": (lambda M, T, t: M.TransformedDistribution(
        M.Normal(t(LOC), t(SCALE)),
        T.ComposeTransform([T.AffineTransform(0.5, 3.0), T.SigmoidTransform()])),
        R.uniform(0.05, 0.95, (5, 3, 4))),
    "stickbreaking": (lambda M, T, t: M.TransformedDistribution(
        M.Normal(t(LOC), t(SCALE)), T.StickBreakingTransform()),
        np.stack([np.full(5, 0.2), np.array([0.1, 0.2, 0.3, 0.15, 0.25])])[[0, 1, 1]]),
    "mixture": (lambda M, T, t: M.MixtureSameFamily(M.Categorical(logits=t(LOC)),
                                                    M.Normal(t(LOC), t(SCALE))),
                R.normal(0, 1, (5, 3))),
    "mixture_mvn": (lambda M, T, t: M.MixtureSameFamily(
        M.Categorical(logits=t(LOC[0])),
        M.MultivariateNormal(t(LOC.T), scale_tril=t(np.eye(3) * 1.5))),
        R.normal(0, 1, (5, 3))),
    "mixture_independent": (lambda M, T, t: M.MixtureSameFamily(
        M.Categorical(logits=t(LOC[:, :2])),
        M.Independent(M.Normal(t(LOC3), t(SCALE3)),
                      1)), R.normal(0, 1, (4, 3, 5))),
}  # fmt: skip

HAS_CDF = {"exp", "affine_exp", "negative_affine", "sigmoid", "tanh", "compose", "mixture"}


def _build(name, lib, dtype):
    make, value = TRANSFORMED[name]
    M, T = (TD, TT) if lib is torch else (D, DT)
    return make(M, T, lambda a: _t(lib, a, dtype)), _t(lib, value, dtype)


def _np(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else x.numpy()


def _close(a, b, dtype):
    tol = {"rtol": 3e-4, "atol": 3e-5} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-11}
    assert tuple(a.shape) == tuple(b.shape)
    np.testing.assert_allclose(_np(a).astype(float), _np(b).astype(float), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", sorted(TRANSFORMED))
def test_transformed_values_match_torch(name, dtype):
    d, v = _build(name, ds, dtype)
    t, tv = _build(name, torch, dtype)
    assert tuple(d.batch_shape) == tuple(t.batch_shape)
    assert tuple(d.event_shape) == tuple(t.event_shape)
    assert d.has_rsample == t.has_rsample
    assert tuple(d.sample((2,)).shape) == tuple(t.sample((2,)).shape)
    lp = d.log_prob(v)
    assert lp.dtype == dtype
    _close(lp, t.log_prob(tv), dtype)
    if name in HAS_CDF:
        _close(d.cdf(v), t.cdf(tv), dtype)
    if name.startswith("mixture"):
        _close(d.mean, t.mean, dtype)
        _close(d.variance, t.variance, dtype)
    new_batch = tuple(v.shape[: v.ndim - len(d.event_shape)])  # the value's batch part
    de, te = d.expand(new_batch), t.expand(new_batch)
    assert tuple(de.batch_shape) == tuple(te.batch_shape)
    _close(de.log_prob(v), te.log_prob(tv), dtype)


@pytest.mark.parametrize("name", sorted(TRANSFORMED))
def test_transformed_log_prob_gradients_match_torch(name):
    d, v = _build(name, ds, np.float64)
    t, tv = _build(name, torch, np.float64)
    vd = ds.tensor(v.numpy(), requires_grad=True)
    vt = tv.clone().requires_grad_(True)
    d.log_prob(vd).sum().backward()
    t.log_prob(vt).sum().backward()
    np.testing.assert_allclose(vd.grad.numpy(), vt.grad.numpy(), rtol=1e-8, atol=1e-11)


def test_parameter_gradients_through_transforms_match_torch():
    def run(lib, M, T):
        loc = _t(lib, LOC, np.float64, grad=True)
        scale = _t(lib, SCALE, np.float64, grad=True)
        shift = _t(lib, LOC[0], np.float64, grad=True)
        transforms = [T.AffineTransform(shift, 2.0), T.TanhTransform()]
        d = M.TransformedDistribution(M.Normal(loc, scale), transforms)
        v = _t(lib, R.uniform(-0.9, 0.9, (5, 3, 4)), np.float64)
        d.log_prob(v).sum().backward()
        return loc.grad, scale.grad, shift.grad

    state = R.bit_generator.state
    ours = run(ds, D, DT)
    R.bit_generator.state = state
    theirs = run(torch, TD, TT)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-11)


def test_tanh_cache_scores_its_own_draws_exactly_and_rsample_has_gradients():
    loc = ds.zeros(3, dtype=ds.float64, requires_grad=True)
    d = D.TransformedDistribution(D.Normal(loc, 4.0), [DT.TanhTransform(cache_size=1)])
    ds.manual_seed(0)
    a = d.rsample((1000,))
    lp = d.log_prob(a)  # the cache returns the pre-tanh draw: finite even where |a| rounds to 1
    assert np.all(np.isfinite(lp.detach().numpy()))
    (a.sum() + lp.sum()).backward()
    assert loc.grad is not None and np.all(np.isfinite(loc.grad.numpy()))


def test_transforms_inverses_and_jacobians_match_torch():
    x = R.normal(0, 1, (4, 3))
    pairs = [(DT.ExpTransform(), TT.ExpTransform()),
             (DT.SigmoidTransform(), TT.SigmoidTransform()),
             (DT.TanhTransform(), TT.TanhTransform()),
             (DT.SoftplusTransform(), TT.SoftplusTransform()),
             (DT.AffineTransform(0.5, -2.0), TT.AffineTransform(0.5, -2.0)),
             (DT.AbsTransform(), TT.AbsTransform())]  # fmt: skip
    for ours, theirs in pairs:
        y, ty = ours(ds.tensor(x)), theirs(torch.tensor(x))
        np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-12, err_msg=repr(ours))
        np.testing.assert_allclose(ours.inv(y).numpy(), theirs.inv(ty).numpy(), rtol=1e-9)
        if ours.bijective:
            np.testing.assert_allclose(ours.log_abs_det_jacobian(ds.tensor(x), y).numpy(),
                                       theirs.log_abs_det_jacobian(torch.tensor(x), ty).numpy(),
                                       rtol=1e-10)  # fmt: skip
        assert repr(ours.domain) == repr(theirs.domain)
        assert repr(ours.codomain) == repr(theirs.codomain)
    assert DT.ExpTransform().inv.inv is not None
    assert DT.identity_transform(ds.tensor(x)).shape == (4, 3)


def test_invalid_transforms_and_mixtures_raise_like_torch():
    for lib, M in ((ds, D), (torch, TD)):
        with pytest.raises(ValueError):
            M.TransformedDistribution(M.Normal(lib.zeros(2), 1.0), "exp")
        with pytest.raises(ValueError):
            M.MixtureSameFamily(M.Normal(lib.zeros(2), 1.0), M.Normal(lib.zeros(2), 1.0))
        with pytest.raises(ValueError):
            M.MixtureSameFamily(M.Categorical(logits=lib.zeros(3)), M.Normal(lib.zeros(2), 1.0))


def test_mixture_samples_follow_the_mixture():
    logits = ds.tensor([0.0, np.log(3.0)])  # weights 1/4, 3/4
    m = D.MixtureSameFamily(D.Categorical(logits=logits),
                            D.Normal(ds.tensor([-5.0, 5.0]), ds.tensor([0.5, 0.5])))  # fmt: skip
    ds.manual_seed(4)
    x = m.sample((20_000,)).numpy()
    assert x.shape == (20_000,)
    frac = (x > 0).mean()
    assert abs(frac - 0.75) < 5 * np.sqrt(0.75 * 0.25 / 20_000)
    assert abs(x.mean() - float(m.mean.item())) < 5 * np.sqrt(float(m.variance.item()) / 20_000)


def test_straight_through_passes_gradients_to_probs():
    logits = ds.tensor([[0.2, -0.1, 0.5]], dtype=ds.float64, requires_grad=True)
    d = D.OneHotCategoricalStraightThrough(logits=logits)
    ds.manual_seed(1)
    s = d.rsample((4,))
    assert tuple(s.shape) == (4, 1, 3)
    np.testing.assert_allclose(s.detach().numpy().sum(-1), 1.0)
    w = ds.tensor([1.0, 2.0, 3.0], dtype=ds.float64)
    (s * w).sum().backward()
    lt = torch.tensor([[0.2, -0.1, 0.5]], dtype=torch.float64, requires_grad=True)
    tp = TD.OneHotCategoricalStraightThrough(logits=lt).rsample((4,))
    (tp * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose(logits.grad.numpy(), lt.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize(
    "make",
    [
        lambda c: c.real,
        lambda c: c.positive,
        lambda c: c.nonnegative,
        lambda c: c.greater_than(-1.5),
        lambda c: c.less_than(2.0),
        lambda c: c.unit_interval,
        lambda c: c.interval(-2.0, 3.0),
        lambda c: c.half_open_interval(0.5, 1.5),
        lambda c: c.simplex,
        lambda c: c.real_vector,
        lambda c: c.independent(c.positive, 1),
    ],
)
@pytest.mark.parametrize("registry", ["biject_to", "transform_to"])
def test_constraint_registry_matches_torch(make, registry):
    from torch.distributions import constraints as tc

    from descent.distributions import constraints as dc

    ours, theirs = getattr(D, registry)(make(dc)), getattr(TD, registry)(make(tc))
    assert type(ours).__name__ == type(theirs).__name__
    x = R.normal(0, 1, (3, 4))
    y, ty = ours(ds.tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-12)
    assert bool(make(dc).check(y).all())
    np.testing.assert_allclose(ours.inv(y).numpy(), theirs.inv(ty).numpy(), rtol=1e-7, atol=1e-9)
    if ours.bijective:
        a = ours.log_abs_det_jacobian(ds.tensor(x), y).numpy()
        b = theirs.log_abs_det_jacobian(torch.tensor(x), ty).numpy()
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_matrix_transforms_match_torch():
    from descent.distributions import constraints as dc

    x = R.normal(0, 1, (2, 3, 3))
    pairs = [(DT.LowerCholeskyTransform(), TT.LowerCholeskyTransform()),
             (DT.PositiveDefiniteTransform(), TT.PositiveDefiniteTransform())]  # fmt: skip
    for ours, theirs in pairs:
        y, ty = ours(ds.tensor(x)), theirs(torch.tensor(x))
        np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.inv(y).numpy(), theirs.inv(ty).numpy(), rtol=1e-9)
        assert bool(ours.codomain.check(y).all())
    assert type(D.transform_to(dc.lower_cholesky)).__name__ == "LowerCholeskyTransform"
    with pytest.raises(NotImplementedError):
        D.biject_to(dc.lower_cholesky)


def test_optimising_a_positive_parameter_through_transform_to():
    from descent.distributions import constraints as dc

    raw = ds.zeros(3, requires_grad=True)
    opt = ds.optim.Adam([raw], lr=0.1)
    target = ds.tensor([0.5, 2.0, 4.0])
    for _ in range(300):
        scale = D.transform_to(dc.positive)(raw)
        loss = ((scale - target) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(D.transform_to(dc.positive)(raw).detach().numpy(),
                               target.numpy(), rtol=1e-3)  # fmt: skip


def test_corr_cholesky_transform_matches_torch_with_gradients():
    x = R.normal(0, 1, (2, 3, 6))  # D = 4
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours, theirs = DT.CorrCholeskyTransform(), TT.CorrCholeskyTransform()
    y, ty = ours(xd), theirs(xt)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-15)
    assert bool(ours.codomain.check(y).all())
    np.testing.assert_allclose(ours.inv(y).detach().numpy(), x, rtol=1e-9, atol=1e-12)
    ld, lt = ours.log_abs_det_jacobian(xd, y), theirs.log_abs_det_jacobian(xt, ty)
    np.testing.assert_allclose(ld.detach().numpy(), lt.detach().numpy(), rtol=1e-12)
    w = R.normal(0, 1, (4, 4))
    ((y * ds.tensor(w)).sum() + ld.sum()).backward()
    ((ty * torch.tensor(w)).sum() + lt.sum()).backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert ours.forward_shape((5, 6)) == (5, 4, 4) and ours.inverse_shape((5, 4, 4)) == (5, 6)
    with pytest.raises(ValueError):
        ours.forward_shape((5, 7))
    from descent.distributions import constraints as dc

    assert type(D.biject_to(dc.corr_cholesky)).__name__ == "CorrCholeskyTransform"


def test_lkj_with_corr_cholesky_transform_scores_like_torch():
    # the usual HMC parameterisation: an unconstrained vector mapped onto the LKJ support
    x = R.normal(0, 1, (5, 3))
    lkj = D.LKJCholesky(3, ds.tensor(1.5, dtype=ds.float64))
    tlkj = TD.LKJCholesky(3, torch.tensor(1.5, dtype=torch.float64))
    t, tt = DT.CorrCholeskyTransform(), TT.CorrCholeskyTransform()
    y, ty = t(ds.tensor(x)), tt(torch.tensor(x))
    a = lkj.log_prob(y) + t.log_abs_det_jacobian(ds.tensor(x), y)
    b = tlkj.log_prob(ty) + tt.log_abs_det_jacobian(torch.tensor(x), ty)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10)


def test_cdf_and_reshape_transforms_match_torch():
    x = R.normal(0, 1, (2, 6))
    n, tn = D.Normal(0.5, 2.0), TD.Normal(0.5, 2.0)
    ours = D.CumulativeDistributionTransform(n)
    theirs = TT.CumulativeDistributionTransform(tn)
    xf = x.astype(np.float32)
    y, ty = ours(ds.tensor(xf)), theirs(torch.tensor(xf))
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.inv(y).numpy(), xf, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.log_abs_det_jacobian(ds.tensor(xf), y).numpy(),
                               theirs.log_abs_det_jacobian(torch.tensor(xf), ty).numpy(),
                               rtol=1e-6)  # fmt: skip
    r, tr = D.ReshapeTransform((6,), (2, 3)), TT.ReshapeTransform((6,), (2, 3))
    assert tuple(r(ds.tensor(x)).shape) == tuple(tr(torch.tensor(x)).shape) == (2, 2, 3)
    assert r.forward_shape((4, 6)) == tuple(tr.forward_shape((4, 6)))
    np.testing.assert_array_equal(r.log_abs_det_jacobian(ds.tensor(x), None).numpy(), [0, 0])
    d = D.TransformedDistribution(D.Normal(ds.zeros(6), 1.0), [r])
    td = TD.TransformedDistribution(TD.Normal(torch.zeros(6), 1.0), [tr])
    assert tuple(d.event_shape) == tuple(td.event_shape) == (2, 3)
    v = R.normal(0, 1, (4, 2, 3)).astype(np.float32)
    np.testing.assert_allclose(d.log_prob(ds.tensor(v)).numpy(),
                               td.log_prob(torch.tensor(v)).numpy(), rtol=1e-6)  # fmt: skip


def test_cat_and_stack_transforms_match_torch():
    from torch.distributions import constraints as tc

    from descent.distributions import constraints as dc

    x = R.normal(0, 1, (4, 5))
    cases = [
        (lambda T: T.CatTransform([T.ExpTransform(), T.SigmoidTransform()], dim=1,
                                  lengths=[2, 3])),
        (lambda T: T.CatTransform([T.ExpTransform(), T.AffineTransform(1.0, -2.0)], dim=0,
                                  lengths=[1, 3])),
        (lambda T: T.StackTransform([T.ExpTransform(), T.TanhTransform(), T.SigmoidTransform(),
                                     T.SoftplusTransform(), T.ExpTransform()], dim=1)),
    ]  # fmt: skip
    for make in cases:
        ours, theirs = make(DT), make(TT)
        y, ty = ours(ds.tensor(x)), theirs(torch.tensor(x))
        np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.inv(y).numpy(), x, rtol=1e-9, atol=1e-12)
        a = ours.log_abs_det_jacobian(ds.tensor(x), y).numpy()
        b = theirs.log_abs_det_jacobian(torch.tensor(x), ty).numpy()
        np.testing.assert_allclose(a, b, rtol=1e-12)
        np.testing.assert_array_equal(ours.codomain.check(y).numpy(),
                                      theirs.codomain.check(ty).numpy())  # fmt: skip
    # the registry builds them from cat / stack constraints
    dcon = dc.cat([dc.positive, dc.unit_interval], 1, [2, 3])
    tcon = tc.cat([tc.positive, tc.unit_interval], 1, [2, 3])
    y, ty = D.biject_to(dcon)(ds.tensor(x)), TD.biject_to(tcon)(torch.tensor(x))
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-12)
    dcon = dc.stack([dc.positive, dc.real, dc.unit_interval, dc.positive, dc.real], 1)
    tcon = tc.stack([tc.positive, tc.real, tc.unit_interval, tc.positive, tc.real], 1)
    y, ty = D.transform_to(dcon)(ds.tensor(x)), TD.transform_to(tcon)(torch.tensor(x))
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(dcon.check(y).numpy(), tcon.check(ty).numpy())


def test_tril_vector_helpers_and_remaining_constraints_match_torch():
    from torch.distributions import constraints as tc
    from torch.distributions.utils import tril_matrix_to_vec as t_tm
    from torch.distributions.utils import vec_to_tril_matrix as t_vt

    from descent.distributions import constraints as dc
    from descent.distributions.utils import tril_matrix_to_vec, vec_to_tril_matrix

    for diag, n in ((0, 10), (-1, 6), (-2, 3), (1, 13)):
        v = R.normal(0, 1, (2, n))
        m, tm = vec_to_tril_matrix(ds.tensor(v), diag), t_vt(torch.tensor(v), diag)
        np.testing.assert_array_equal(m.numpy(), tm.numpy())
        back, t_back = tril_matrix_to_vec(m, diag), t_tm(tm, diag)
        np.testing.assert_array_equal(back.numpy(), t_back.numpy())
    mats = np.stack([np.eye(3), -np.eye(3), np.diag([1.0, 0.0, 2.0]), np.ones((3, 3))])
    mats[3, 0, 1] = 5.0  # not symmetric
    for name in ("positive_semidefinite", "positive_definite", "symmetric"):
        a = getattr(dc, name).check(ds.tensor(mats)).numpy()
        b = getattr(tc, name).check(torch.tensor(mats)).numpy()
        np.testing.assert_array_equal(a, b, err_msg=name)
    counts = np.array([[1.0, 2.0], [3.0, 1.0], [-1.0, 1.0]])
    a = dc.multinomial(3).check(ds.tensor(counts)).numpy()
    np.testing.assert_array_equal(a, tc.multinomial(3).check(torch.tensor(counts)).numpy())
    mix = D.MixtureSameFamily(D.Categorical(logits=ds.zeros(2)),
                              D.Uniform(ds.tensor([0.0, 0.5]), ds.tensor([1.0, 2.0])))  # fmt: skip
    tu = TD.Uniform(torch.tensor([0.0, 0.5]), torch.tensor([1.0, 2.0]))
    tmix = TD.MixtureSameFamily(TD.Categorical(logits=torch.zeros(2)), tu)
    v = np.array([0.7, 0.2, 1.5])
    np.testing.assert_array_equal(mix.support.check(ds.tensor(v)).numpy(),
                                  tmix.support.check(torch.tensor(v)).numpy())  # fmt: skip
    assert type(mix.support).__name__ == type(tmix.support).__name__
