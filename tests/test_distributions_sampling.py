"""descent.distributions: draws (shapes, dtypes, reproducibility under descent.manual_seed,
moments of 20k draws with a fixed seed), reparameterised gradients (finite differences of
rsample under a repeated seed; the Gamma family's implicit gradient against PyTorch's
_standard_gamma_grad and in expectation), and validation errors against PyTorch's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.distributions as TD

import descent as ds
import descent.distributions as D
from descent.distributions.utils import standard_gamma_grad
from test_distributions import CASES, build


@pytest.fixture(autouse=True)
def _validation_on():
    """Both libraries validate arguments (their default): torch.compile turns torch's
    validation off for the whole process (torch/_dynamo/eval_frame.py), so a worker that ran a
    torch.compile test before this file saw torch accept what it rejects (26 failures in one
    xdist order)."""
    saved = (TD.Distribution._validate_args, D.Distribution._validate_args)
    TD.Distribution.set_default_validate_args(True)
    D.Distribution.set_default_validate_args(True)
    yield
    TD.Distribution.set_default_validate_args(saved[0])
    D.Distribution.set_default_validate_args(saved[1])

N = 20_000


@pytest.mark.parametrize("name", sorted(CASES))
def test_sample_shapes_match_torch(name):
    d, _, _ = build(name, ds, np.float64)
    t, _, _ = build(name, torch, np.float64)
    no_empty = "categorical" in name or name in ("onehot", "multinomial")
    shapes = ((), (3, 2)) if no_empty else ((), (3, 2), (0,))
    for shape in shapes:  # (PyTorch's Categorical refuses 0 draws; descent returns none)
        s, ts = d.sample(shape), t.sample(shape)
        assert tuple(s.shape) == tuple(ts.shape)
        assert s.dtype == {torch.float64: np.float64, torch.int64: np.int64}[ts.dtype]
        assert not s.requires_grad
    if t.has_rsample:
        assert d.has_rsample
        assert tuple(d.rsample((2,)).shape) == tuple(t.rsample((2,)).shape)
    else:
        assert not d.has_rsample


@pytest.mark.parametrize("name", sorted(CASES))
def test_samples_repeat_under_manual_seed(name):
    d, _, _ = build(name, ds, np.float32)
    ds.manual_seed(7)
    a = d.sample((4,)).numpy()
    ds.manual_seed(7)
    b = d.sample((4,)).numpy()
    c = d.sample((4,)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)  # the generator moved on


@pytest.mark.parametrize("name", sorted(CASES))
def test_samples_lie_in_the_support(name):
    d, _, _ = build(name, ds, np.float32)
    ds.manual_seed(3)
    s = d.sample((50,))
    assert bool(d.support.check(s).all())


MOMENT_CASES = sorted(
    set(CASES)
    - {
        "cauchy",
        "halfcauchy",
        "relaxed_bernoulli",
        "relaxed_onehot",
        "logisticnormal",
        "vonmises",
        "lkj",
    }
)


@pytest.mark.parametrize("name", MOMENT_CASES)
def test_sample_moments_within_standard_errors(name):
    """Mean within 5 standard errors, variance within 6 (estimated from the 4th moment) for
    20k draws per batch element. Fixed seed: deterministic, never flaky."""
    d, _, _ = build(name, ds, np.float64)
    ds.manual_seed(2024)
    x = d.sample((N,)).numpy().astype(np.float64)
    if name.startswith("categorical"):
        freq = np.stack([(x == k).mean(0) for k in range(4)], -1)
        p = d.probs.numpy()
        assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / N))
        return
    mean, var = d.mean.numpy(), d.variance.numpy()
    if name == "lognormal":  # heavy tails: test the normal moments of log x instead
        x, mean, var = np.log(x), d.loc.numpy(), d.scale.numpy() ** 2
    m = x.mean(0)
    assert np.all(np.abs(m - mean) < 5 * np.sqrt(var / N) + 1e-12), name
    v = x.var(0)
    m4 = ((x - m) ** 4).mean(0)
    se_var = np.sqrt(np.maximum(m4 - v**2, 0) / N)
    finite = np.isfinite(var)
    assert np.all(np.abs(v - var)[finite] < 6 * se_var[finite] + 1e-12), name


def test_cauchy_median_and_quartiles():
    d = D.Cauchy(ds.tensor([0.5, -1.0]), ds.tensor([2.0, 0.3]))
    ds.manual_seed(5)
    x = d.sample((N,)).numpy()
    for q in (0.25, 0.5, 0.75):
        frac = (x < d.icdf(ds.tensor([q, q])).numpy()).mean(0)
        assert np.all(np.abs(frac - q) < 5 * math.sqrt(q * (1 - q) / N))


def test_relaxed_one_hot_approaches_categorical_at_low_temperature():
    probs = ds.tensor([0.2, 0.5, 0.3])
    d = D.RelaxedOneHotCategorical(ds.tensor(0.05), probs=probs)
    ds.manual_seed(11)
    x = d.sample((N,)).numpy()
    freq = np.bincount(x.argmax(-1), minlength=3) / N
    assert np.all(np.abs(freq - probs.numpy()) < 5 * np.sqrt(0.25 / N))
    np.testing.assert_allclose(x.sum(-1), 1.0, rtol=1e-5)


# -- reparameterised gradients ---------------------------------------------------------------

RSAMPLE_FD = ["normal", "lognormal", "halfnormal", "uniform", "laplace", "cauchy", "exponential",
              "mvn_tril", "mvn_cov", "relaxed_bernoulli", "relaxed_onehot"]  # fmt: skip


@pytest.mark.parametrize("name", RSAMPLE_FD)
def test_rsample_gradient_matches_finite_differences(name):
    """With the noise fixed by re-seeding, rsample is a smooth function of the parameters."""
    cls_name, params, extra, _ = CASES[name]

    def draw(p, grad=False):
        leaves = {k: ds.tensor(v, requires_grad=grad) for k, v in p.items()}
        ex = {k: ds.tensor(np.float64(v)) if k == "temperature" else v for k, v in extra.items()}
        ds.manual_seed(99)
        out = getattr(D, cls_name)(**leaves, **ex).rsample((3,))
        w = np.cos(np.arange(out.numel())).reshape(out.shape)  # a generic linear functional
        return (out * ds.tensor(w)).sum(), leaves

    total, leaves = draw(params, grad=True)
    total.backward()
    h = 1e-6
    for k, base in params.items():
        g = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            if k == "scale_tril" and idx[-1] > idx[-2]:
                continue
            vals = []
            for s in (1, -1):
                p = {kk: vv.copy() for kk, vv in params.items()}
                p[k][idx] += s * h
                if k == "covariance_matrix":
                    p[k][idx[:-2] + idx[-2:][::-1]] = p[k][idx]
                vals.append(float(draw(p)[0].item()))
            g[idx] = (vals[0] - vals[1]) / (2 * h)
        a = leaves[k].grad.numpy()
        if k == "scale_tril":  # the upper triangle's gradient is L @ eps's (as PyTorch)
            a = np.tril(a)
        if k == "covariance_matrix":  # only the lower triangle is read
            a = np.tril(a + np.swapaxes(a, -1, -2) - np.eye(a.shape[-1]) * a)
            g = np.tril(g)
        np.testing.assert_allclose(a, g, rtol=1e-5, atol=1e-6, err_msg=k)


def test_standard_gamma_gradient_matches_torch():
    alpha = np.array([0.05, 0.3, 1.0, 2.5, 7.0, 40.0, 300.0, 2000.0, 1e5])
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.gamma(alpha)
        ours = standard_gamma_grad(alpha, x)
        theirs = torch._standard_gamma_grad(torch.tensor(alpha), torch.tensor(x)).numpy()
        # PyTorch's gradient is itself an approximation (~1e-3 relative, per its comments)
        np.testing.assert_allclose(ours, theirs, rtol=5e-3)


def test_standard_gamma_gradient_is_the_implicit_derivative_of_the_cdf():
    alpha = np.array([0.2, 1.0, 3.0, 30.0, 500.0])
    x = np.array([0.01, 0.7, 4.0, 25.0, 520.0])
    # dx/da = -(dP/da) / (dP/dx), with PyTorch's igamma as the independent reference
    h = 1e-6 * alpha
    dpda = (
        torch.special.gammainc(torch.tensor(alpha + h), torch.tensor(x))
        - torch.special.gammainc(torch.tensor(alpha - h), torch.tensor(x))
    ).numpy() / (2 * h)
    lg = torch.lgamma(torch.tensor(alpha)).numpy()
    dens = np.exp((alpha - 1) * np.log(x) - x - lg)
    np.testing.assert_allclose(standard_gamma_grad(alpha, x), -dpda / dens, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gamma_rsample_gradient_in_expectation(dtype):
    a = ds.tensor(np.array([0.4, 2.0, 9.0], dtype=dtype), requires_grad=True)
    b = ds.tensor(np.array([1.5, 0.5, 2.0], dtype=dtype), requires_grad=True)
    ds.manual_seed(17)
    x = D.Gamma(a, b).rsample((N,))
    assert x.dtype == dtype
    x.sum().backward()  # d/da of the sum over draws: N * d E[x]/da = N / b on average
    an, bn = a.detach().numpy().astype(float), b.detach().numpy().astype(float)
    np.testing.assert_allclose(a.grad.numpy() / N, 1 / bn, rtol=0.03)
    np.testing.assert_allclose(b.grad.numpy() / N, -an / bn**2, rtol=0.03)


def test_beta_and_dirichlet_rsample_gradients_in_expectation():
    c1 = ds.tensor([0.7, 3.0], dtype=ds.float64, requires_grad=True)
    c0 = ds.tensor([2.0, 1.2], dtype=ds.float64, requires_grad=True)
    ds.manual_seed(23)
    D.Beta(c1, c0).rsample((N,)).sum(0).sum().backward()
    s = (c1 + c0).detach().numpy()
    np.testing.assert_allclose(c1.grad.numpy() / N, c0.detach().numpy() / s**2, rtol=0.05)
    np.testing.assert_allclose(c0.grad.numpy() / N, -c1.detach().numpy() / s**2, rtol=0.05)
    conc = ds.tensor([1.0, 2.0, 3.0], dtype=ds.float64, requires_grad=True)
    ds.manual_seed(29)
    x = D.Dirichlet(conc).rsample((N,))
    x[:, 0].sum().backward()  # d E[x_0] / d c = (delta_0j a0 - c0) / a0^2
    expect = np.array([5.0, -1.0, -1.0]) / 36.0
    np.testing.assert_allclose(conc.grad.numpy() / N, expect, rtol=0.05, atol=2e-3)


def test_studentt_and_chi2_rsample_have_gradients():
    df = ds.tensor([3.0, 6.0], requires_grad=True)
    loc = ds.tensor([0.0, 1.0], requires_grad=True)
    ds.manual_seed(1)
    D.StudentT(df, loc, 2.0).rsample((10,)).sum().backward()
    assert df.grad is not None and np.all(np.isfinite(df.grad.numpy()))
    np.testing.assert_allclose(loc.grad.numpy(), [10.0, 10.0])
    c = ds.tensor(4.0, requires_grad=True)
    D.Chi2(c).rsample((5,)).sum().backward()
    assert c.grad is not None and np.isfinite(c.grad.item())


def test_sample_has_no_graph_and_rsample_does():
    loc = ds.zeros(2, requires_grad=True)
    n = D.Normal(loc, 1.0)
    assert not n.sample().requires_grad
    assert n.rsample().requires_grad
    with pytest.raises(NotImplementedError):
        D.Bernoulli(0.5).rsample()


# -- validation --------------------------------------------------------------------------------


def _both_raise(fn_ds, fn_torch, exc=ValueError):
    with pytest.raises(exc) as e1:
        fn_ds()
    with pytest.raises(exc):
        fn_torch()
    return str(e1.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda m, t: m.Normal(t([0.0]), t([-1.0])),
        lambda m, t: m.Normal(t([float("nan")]), t([1.0])),
        lambda m, t: m.Exponential(t([0.0])),
        lambda m, t: m.Gamma(t([1.0]), t([-2.0])),
        lambda m, t: m.Bernoulli(probs=t([1.5])),
        lambda m, t: m.Bernoulli(),
        lambda m, t: m.Bernoulli(probs=t([0.5]), logits=t([0.0])),
        lambda m, t: m.Categorical(probs=t([0.5, -0.5])),
        lambda m, t: m.Uniform(t([1.0]), t([0.0])),
        lambda m, t: m.Dirichlet(t([1.0, -1.0])),
        lambda m, t: m.Beta(t([1.0]), t([0.0])),
        lambda m, t: m.Poisson(t([-1.0])),
        lambda m, t: m.Geometric(probs=t([0.0])),
        lambda m, t: m.Binomial(t([2.5]), t([0.5])),
        lambda m, t: m.StudentT(t([0.0])),
        lambda m, t: m.MultivariateNormal(t([0.0, 0.0]), t([[1.0, 2.0], [2.0, 1.0]])),
        lambda m, t: m.MultivariateNormal(t([0.0, 0.0]), scale_tril=t([[1.0, 1.0], [0.0, 1.0]])),
        lambda m, t: m.MultivariateNormal(t([0.0, 0.0])),
        lambda m, t: m.MultivariateNormal(t(0.0), t([[1.0]])),
        lambda m, t: m.Independent(m.Normal(t([0.0]), t([1.0])), 2),
    ],
)
def test_invalid_parameters_raise_like_torch(make):
    _both_raise(lambda: make(D, ds.tensor), lambda: make(TD, torch.tensor))


@pytest.mark.parametrize(
    "case",
    [
        ("Normal", (0.0, 1.0), [[[1.0]]]),  # shape (1, 1, 1): fine; see the next test for shapes
        ("Exponential", (1.0,), [-1.0]),
        ("Gamma", (1.0, 1.0), [-0.5]),
        ("Bernoulli", (0.3,), [0.5]),
        ("Poisson", (2.0,), [1.5]),
        ("Uniform", (0.0, 1.0), [1.5]),
        ("Beta", (1.0, 2.0), [1.5]),
        ("Binomial", (3, 0.5), [4.0]),
        ("Geometric", (0.5,), [-1.0]),
        ("LogNormal", (0.0, 1.0), [-1.0]),
        ("HalfNormal", (1.0,), [-0.1]),
    ],
)
def test_out_of_support_values_raise_like_torch(case):
    name, args, bad = case
    d, t = getattr(D, name)(*args), getattr(TD, name)(*args)
    if name == "Normal":  # a valid value: no error from either
        d.log_prob(ds.tensor(bad))
        t.log_prob(torch.tensor(bad))
        return
    msg = _both_raise(lambda: d.log_prob(ds.tensor(bad)), lambda: t.log_prob(torch.tensor(bad)))
    assert "within the support" in msg


def test_value_checks_raise_like_torch():
    d, t = D.Normal(ds.zeros(3), 1.0), TD.Normal(torch.zeros(3), 1.0)
    msg = _both_raise(lambda: d.log_prob(ds.zeros(2)), lambda: t.log_prob(torch.zeros(2)))
    assert "broadcastable" in msg
    msg = _both_raise(lambda: d.log_prob(0.5), lambda: t.log_prob(0.5))
    assert "must be a Tensor" in msg
    c, tc = D.Categorical(ds.ones(3)), TD.Categorical(torch.ones(3))
    _both_raise(lambda: c.log_prob(ds.tensor(3)), lambda: tc.log_prob(torch.tensor(3)))
    dd = D.Dirichlet(ds.ones(3))
    td = TD.Dirichlet(torch.ones(3))
    _both_raise(lambda: dd.log_prob(ds.tensor([0.5, 0.6, 0.1])),
                lambda: td.log_prob(torch.tensor([0.5, 0.6, 0.1])))  # fmt: skip
    mv = D.MultivariateNormal(ds.zeros(3), ds.eye(3))
    tmv = TD.MultivariateNormal(torch.zeros(3), torch.eye(3))
    msg = _both_raise(lambda: mv.log_prob(ds.zeros(2)), lambda: tmv.log_prob(torch.zeros(2)))
    assert "right-most size" in msg


def test_validate_args_false_and_the_default_switch():
    d = D.Normal(ds.tensor([0.0]), ds.tensor([-1.0]), validate_args=False)
    assert np.isnan(d.log_prob(ds.tensor([0.0])).numpy()).all()
    assert np.isfinite(D.Exponential(1.0, validate_args=False).log_prob(ds.tensor(-1.0)).item())
    try:
        D.Distribution.set_default_validate_args(False)
        D.Normal(ds.tensor([0.0]), ds.tensor([-1.0]))  # no error now
    finally:
        D.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError):
        D.Normal(ds.tensor([0.0]), ds.tensor([-1.0]))


def test_constraints_reprs_and_checks_match_torch():
    from torch.distributions import constraints as tc

    from descent.distributions import constraints as dc

    for name in ("real", "positive", "nonnegative", "unit_interval", "simplex", "boolean",
                 "nonnegative_integer", "real_vector", "lower_cholesky", "positive_definite",
                 "one_hot"):  # fmt: skip
        assert repr(getattr(dc, name)) == repr(getattr(tc, name)), name
    values = np.array([[0.2, 0.8], [1.0, 0.0], [-0.1, 1.1], [0.5, 0.5000001]])
    for name in ("real", "positive", "unit_interval", "simplex", "boolean", "one_hot"):
        a = getattr(dc, name).check(ds.tensor(values)).numpy()
        b = getattr(tc, name).check(torch.tensor(values)).numpy()
        np.testing.assert_array_equal(a, b, err_msg=name)
    ii, tii = dc.integer_interval(0, 3), tc.integer_interval(0, 3)
    v = np.array([0.0, 1.5, 3.0, 4.0])
    np.testing.assert_array_equal(ii.check(ds.tensor(v)).numpy(), tii.check(torch.tensor(v)))
    assert dc.is_dependent(dc.dependent) and not dc.is_dependent(dc.real)
    with pytest.raises(ValueError):
        dc.dependent.check(ds.zeros(1))


def test_von_mises_circular_moments():
    """The mean direction is loc and the mean resultant length is 1 - circular variance."""
    loc = np.array([0.5, -2.0, 3.0])
    d = D.VonMises(ds.tensor(loc, dtype=ds.float64), ds.tensor([0.3, 2.0, 50.0], dtype=ds.float64))
    ds.manual_seed(8)
    x = d.sample((N,)).numpy()
    assert x.dtype == np.float64 and x.min() >= -np.pi and x.max() < np.pi
    z = np.exp(1j * x)
    r = np.abs(z.mean(0))
    np.testing.assert_allclose(r, 1 - d.variance.numpy(), atol=5 / np.sqrt(2 * N))
    ang = np.angle(z.mean(0))
    assert np.all(np.abs(np.angle(np.exp(1j * (ang - loc)))) < 5 / (np.sqrt(N) * r))


def test_lkj_draws_follow_the_marginal_beta():
    """Under LKJ(eta) in dimension d, each off-diagonal correlation r satisfies
    (r + 1) / 2 ~ Beta(eta - 1 + d/2, eta - 1 + d/2)."""
    eta, dim = 2.0, 4
    d = D.LKJCholesky(dim, ds.tensor(eta, dtype=ds.float64))
    ds.manual_seed(12)
    lo = d.sample((N,)).numpy()
    corr = lo @ np.swapaxes(lo, -1, -2)
    np.testing.assert_allclose(np.diagonal(corr, axis1=-2, axis2=-1), 1.0, rtol=1e-12)
    a = eta - 1 + dim / 2
    var = 1 / (2 * a + 1)  # Var(2B - 1) for B ~ Beta(a, a)
    for i, j in ((0, 1), (0, 3), (1, 2), (1, 3), (2, 3)):  # every pair (PyTorch's fail beyond
        r = corr[:, i, j]  # row 0: its Beta parameters for rows >= 2 are off)
        assert abs(r.mean()) < 5 * np.sqrt(var / N)
        se = np.sqrt((((r - r.mean()) ** 4).mean() - r.var() ** 2) / N)
        assert abs(r.var() - var) < 6 * se, (i, j, r.var(), var)


def test_categorical_inverse_cdf_sampling():
    """Zero-probability categories are never drawn; frequencies match; a large vocabulary
    with many draws works without an (n, R, K) comparison array."""
    p = np.array([[0.0, 0.2, 0.0, 0.5, 0.3], [1.0, 0.0, 0.0, 0.0, 0.0]])
    d = D.Categorical(ds.tensor(p))
    ds.manual_seed(0)
    x = d.sample((N,)).numpy()
    assert x.shape == (N, 2) and x.dtype == np.int64
    freq = np.bincount(x[:, 0], minlength=5) / N
    assert freq[0] == 0 and freq[2] == 0
    assert np.all(np.abs(freq - p[0]) < 5 * np.sqrt(p[0] * (1 - p[0]) / N) + 1e-12)
    assert np.all(x[:, 1] == 0)
    big = D.Categorical(logits=ds.zeros((8, 50_000)))
    draws = big.sample((500,)).numpy()
    assert draws.shape == (500, 8) and draws.min() >= 0 and draws.max() < 50_000
