"""descent.distributions against torch.distributions (the oracle): log_prob, entropy, moments,
cdf/icdf, shapes and gradients for every distribution on the same parameters, in float32 and
float64, with broadcast parameter shapes; gradients also against central finite differences in
float64. Sampling, KL and validation live in test_distributions_sampling.py and _kl.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributions as TD

import descent as ds
import descent.distributions as D

R = np.random.default_rng(0)


def _pos(*shape, lo=0.5, hi=3.0):
    return R.uniform(lo, hi, shape)


def _real(*shape):
    return R.normal(0, 1, shape)


def _probs(*shape):
    return R.uniform(0.1, 0.9, shape)


def _simplex(*shape):
    p = R.uniform(0.1, 1.0, shape)
    return p / p.sum(-1, keepdims=True)


def _spd(n, *batch):
    a = R.normal(0, 1, batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def _tril(n, *batch):
    return np.linalg.cholesky(_spd(n, *batch))


# name -> (class name, parameters {name: array}, extra keyword numbers, values for log_prob).
# The parameters broadcast to the batch shape (3, 4) (or (3,) for the vector distributions).
CASES = {
    "normal": ("Normal", {"loc": _real(3, 1), "scale": _pos(4)}, {}, _real(5, 3, 4)),
    "lognormal": ("LogNormal", {"loc": _real(3, 1), "scale": _pos(4)}, {}, _pos(5, 3, 4)),
    "halfnormal": ("HalfNormal", {"scale": _pos(3, 4)}, {}, _pos(5, 3, 4, lo=0.0)),
    "uniform": ("Uniform", {"low": -2 - _pos(3, 1), "high": _pos(4)}, {},
                R.uniform(-1.5, 0.5, (5, 3, 4))),
    "laplace": ("Laplace", {"loc": _real(3, 1), "scale": _pos(4)}, {}, _real(5, 3, 4)),
    "cauchy": ("Cauchy", {"loc": _real(3, 1), "scale": _pos(4)}, {}, _real(5, 3, 4)),
    "exponential": ("Exponential", {"rate": _pos(3, 4)}, {}, _pos(5, 3, 4, lo=0.0)),
    "gamma": ("Gamma", {"concentration": _pos(3, 1), "rate": _pos(4)}, {}, _pos(5, 3, 4)),
    "chi2": ("Chi2", {"df": _pos(3, 4, lo=1.0, hi=6.0)}, {}, _pos(5, 3, 4)),
    "beta": ("Beta", {"concentration1": _pos(3, 1), "concentration0": _pos(4)}, {},
             _probs(5, 3, 4)),
    "dirichlet": ("Dirichlet", {"concentration": _pos(3, 4)}, {}, _simplex(5, 3, 4)),
    "studentt": ("StudentT", {"df": _pos(3, 1, lo=2.5, hi=8.0), "loc": _real(4),
                              "scale": _pos(3, 4)}, {}, _real(5, 3, 4)),
    "bernoulli_probs": ("Bernoulli", {"probs": _probs(3, 4)}, {},
                        R.integers(0, 2, (5, 3, 4)).astype(float)),
    "bernoulli_logits": ("Bernoulli", {"logits": _real(3, 4)}, {},
                         R.integers(0, 2, (5, 3, 4)).astype(float)),
    "categorical_probs": ("Categorical", {"probs": _simplex(3, 4)}, {},
                          R.integers(0, 4, (5, 3))),
    "categorical_logits": ("Categorical", {"logits": _real(3, 4)}, {}, R.integers(0, 4, (5, 3))),
    "onehot": ("OneHotCategorical", {"logits": _real(3, 4)}, {},
               np.eye(4)[R.integers(0, 4, (5, 3))]),
    "binomial": ("Binomial", {"probs": _probs(3, 4)}, {"total_count": 7},
                 R.integers(0, 8, (5, 3, 4)).astype(float)),
    "binomial_logits": ("Binomial", {"logits": _real(3, 4)}, {"total_count": 5},
                        R.integers(0, 6, (5, 3, 4)).astype(float)),
    "poisson": ("Poisson", {"rate": _pos(3, 4)}, {}, R.integers(0, 8, (5, 3, 4)).astype(float)),
    "geometric": ("Geometric", {"probs": _probs(3, 4)}, {},
                  R.integers(0, 8, (5, 3, 4)).astype(float)),
    "mvn_cov": ("MultivariateNormal", {"loc": _real(3, 4), "covariance_matrix": _spd(4)}, {},
                _real(5, 3, 4)),
    "mvn_tril": ("MultivariateNormal", {"loc": _real(4), "scale_tril": _tril(4, 3)}, {},
                 _real(5, 3, 4)),
    "mvn_prec": ("MultivariateNormal", {"loc": _real(3, 4), "precision_matrix": _spd(4, 3)}, {},
                 _real(5, 3, 4)),
    "relaxed_bernoulli": ("RelaxedBernoulli", {"logits": _real(3, 4)}, {"temperature": 0.7},
                          _probs(5, 3, 4)),
    "relaxed_onehot": ("RelaxedOneHotCategorical", {"probs": _simplex(3, 4)},
                       {"temperature": 0.6}, _simplex(5, 3, 4)),
    "gumbel": ("Gumbel", {"loc": _real(3, 1), "scale": _pos(4)}, {}, _real(5, 3, 4)),
    "halfcauchy": ("HalfCauchy", {"scale": _pos(3, 4)}, {}, _pos(5, 3, 4, lo=0.0)),
    "weibull": ("Weibull", {"scale": _pos(3, 1), "concentration": _pos(4, lo=0.7)}, {},
                _pos(5, 3, 4, lo=0.05)),
    "pareto": ("Pareto", {"scale": _pos(3, 1, lo=0.5, hi=1.0), "alpha": _pos(4, lo=2.5, hi=5.0)},
               {}, _pos(5, 3, 4, lo=1.0, hi=4.0)),
    "multinomial": ("Multinomial", {"probs": _simplex(3, 4)}, {"total_count": 6},
                    R.multinomial(6, [0.25] * 4, (5, 3)).astype(float)),
    "negbinomial": ("NegativeBinomial", {"total_count": _pos(3, 1), "probs": _probs(4)}, {},
                    R.integers(0, 8, (5, 3, 4)).astype(float)),
    "inversegamma": ("InverseGamma", {"concentration": _pos(3, 1, lo=2.5, hi=6.0),
                                      "rate": _pos(4)}, {}, _pos(5, 3, 4)),
    "kumaraswamy": ("Kumaraswamy", {"concentration1": _pos(3, 1), "concentration0": _pos(4)},
                    {}, _probs(5, 3, 4)),
    "fisher": ("FisherSnedecor", {"df1": _pos(3, 1, lo=3.0, hi=9.0),
                                  "df2": _pos(4, lo=9.0, hi=20.0)}, {}, _pos(5, 3, 4)),
    "logisticnormal": ("LogisticNormal", {"loc": _real(3, 4), "scale": _pos(4)}, {},
                       _simplex(5, 3, 5)),
    "lowrank": ("LowRankMultivariateNormal", {"loc": _real(3, 4), "cov_factor": _real(4, 2),
                                              "cov_diag": _pos(4)}, {}, _real(5, 3, 4)),
    "contbern": ("ContinuousBernoulli", {"probs": np.concatenate(
        [_probs(10), [0.5, 0.4995]]).reshape(3, 4)}, {}, _probs(5, 3, 4)),
    "contbern_logits": ("ContinuousBernoulli", {"logits": _real(3, 4)}, {}, _probs(5, 3, 4)),
    "vonmises": ("VonMises", {"loc": _real(3, 1), "concentration": _pos(4, lo=0.2, hi=20.0)},
                 {}, R.uniform(-4.0, 4.0, (5, 3, 4))),
    "genpareto": ("GeneralizedPareto", {"loc": _real(3, 1), "scale": _pos(4),
                                        "concentration": np.array([[-0.2], [0.0], [0.3]])},
                  {}, None),
    "wishart_tril": ("Wishart", {"df": _pos(3, lo=4.0, hi=8.0), "scale_tril": _tril(3, 3)}, {},
                     _spd(3, 5, 3)),
    "wishart_cov": ("Wishart", {"df": _pos(3, lo=4.0, hi=8.0), "covariance_matrix": _spd(3)},
                    {}, _spd(3, 5, 3)),
    "lkj": ("LKJCholesky", {"concentration": _pos(3, 4, lo=0.3, hi=3.0)}, {"dim": 3}, None),
}  # fmt: skip
torch.manual_seed(0)  # LKJ values: correlation Cholesky factors drawn by the oracle
_lkj_values = TD.LKJCholesky(3, torch.ones(3, 4, dtype=torch.float64)).sample((5,)).numpy()
CASES["lkj"] = CASES["lkj"][:3] + (_lkj_values,)
# GeneralizedPareto's support depends on all three parameters: values inside it
_gp = CASES["genpareto"][1]
CASES["genpareto"] = CASES["genpareto"][:3] + (
    _gp["loc"] + _gp["scale"] * R.uniform(0.05, 2.0, (5, 3, 4)),
)

# PyTorch's VonMises evaluates log I0 / I1 by A&S polynomial fits (~1e-7 relative); descent's
# are exact (descent.special.i0e / i1e): float64 comparisons allow that much
# PyTorch's Multinomial entropy takes lgamma(n + 1) of an integer tensor, in float32 even for
# float64 parameters (2e-8 relative); descent's is exact
APPROX = {"vonmises": 3e-6, "multinomial": 1e-7}
# PyTorch's GeneralizedPareto fails in float64 (isclose against a float32 zero: "Double did not
# match Float"): compared in float32 only; float64 gradients against finite differences
TORCH_F32_ONLY = {"genpareto"}

# PyTorch has no entropy for these
NO_ENTROPY = {"relaxed_bernoulli", "relaxed_onehot", "poisson", "negbinomial",
              "fisher", "logisticnormal", "vonmises", "lkj"}  # fmt: skip
NO_MOMENTS = {"relaxed_bernoulli", "relaxed_onehot"}
HAS_CDF = {"normal", "lognormal", "halfnormal", "uniform", "laplace", "cauchy", "exponential",
           "gamma", "gumbel", "halfcauchy", "weibull", "pareto", "contbern", "genpareto",
           "contbern_logits"}  # fmt: skip
HAS_ICDF = HAS_CDF - {"gamma"}
INT_VALUES = {"categorical_probs", "categorical_logits"}


def _tensor(lib, arr, dtype, requires_grad=False):
    if np.issubdtype(np.asarray(arr).dtype, np.integer):
        return lib.tensor(arr)
    if lib is torch:
        tdt = getattr(torch, np.dtype(dtype).name)
        return torch.tensor(arr, dtype=tdt, requires_grad=requires_grad)
    return ds.tensor(np.asarray(arr, dtype=dtype), requires_grad=requires_grad)


def build(name, lib, dtype, requires_grad=False):
    """(distribution, {param: leaf tensor}, value tensor) for case `name` in lib's types."""
    cls_name, params, extra, value = CASES[name]
    if lib is torch and name in TORCH_F32_ONLY and dtype == np.float64:
        pytest.skip("PyTorch's GeneralizedPareto fails in float64")
    module = TD if lib is torch else D
    leaves = {k: _tensor(lib, v, dtype, requires_grad) for k, v in params.items()}
    extra = {k: (_tensor(lib, v, dtype) if k == "temperature" else v) for k, v in extra.items()}
    dist = getattr(module, cls_name)(**leaves, **extra)
    return dist, leaves, _tensor(lib, value, dtype)


def _np(t):
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return t.numpy()


def _close(a, b, dtype, rtol=None, atol=None):
    rtol = rtol if rtol is not None else (2e-4 if dtype == np.float32 else 1e-9)
    atol = atol if atol is not None else (2e-5 if dtype == np.float32 else 1e-10)
    a, b = _np(a), _np(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol, atol=atol)


DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_log_prob_and_shapes_match_torch(name, dtype):
    d, _, v = build(name, ds, dtype)
    t, _, tv = build(name, torch, dtype)
    assert tuple(d.batch_shape) == tuple(t.batch_shape)
    assert tuple(d.event_shape) == tuple(t.event_shape)
    assert isinstance(d.batch_shape, ds.Size)
    lp = d.log_prob(v)
    assert lp.dtype == dtype
    _close(lp, t.log_prob(tv), dtype, rtol=APPROX.get(name))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", sorted(set(CASES) - NO_ENTROPY))
def test_entropy_matches_torch(name, dtype):
    d, _, _ = build(name, ds, dtype)
    t, _, _ = build(name, torch, dtype)
    _close(d.entropy(), t.entropy(), dtype, rtol=APPROX.get(name))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", sorted(set(CASES) - NO_MOMENTS))
@pytest.mark.parametrize("stat", ["mean", "variance", "stddev", "mode"])
def test_moments_match_torch(name, stat, dtype):
    d, _, _ = build(name, ds, dtype)
    t, _, _ = build(name, torch, dtype)
    try:
        b = getattr(t, stat)
    except NotImplementedError:
        with pytest.raises(NotImplementedError):
            getattr(d, stat)
        return
    a = getattr(d, stat)
    if name == "kumaraswamy" and stat == "mode":  # PyTorch's formula is nan for a, b > 1
        a, b = d.concentration1, d.concentration0
        want = (((a - 1) / (a * b - 1)) ** (1 / a)).numpy()
        np.testing.assert_allclose(d.mode.numpy(), np.where((a >= 1) & (b >= 1), want, np.nan),
                                   rtol=1e-5)  # fmt: skip
        return
    if b.dtype == torch.int64:
        np.testing.assert_array_equal(_np(a), _np(b))
        return
    _close(a, b, dtype, rtol=APPROX.get(name))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", sorted(HAS_CDF))
def test_cdf_icdf_match_torch(name, dtype):
    d, _, v = build(name, ds, dtype)
    t, _, tv = build(name, torch, dtype)
    if name == "gamma":  # PyTorch's igamma in float32 is ~1e-6 relative
        _close(d.cdf(v), t.cdf(tv), dtype, rtol=1e-4 if dtype == np.float32 else 1e-9)
        return
    _close(d.cdf(v), t.cdf(tv), dtype)
    u = R.uniform(0.05, 0.95, (5, 3, 4))
    _close(d.icdf(_tensor(ds, u, dtype)), t.icdf(_tensor(torch, u, dtype)), dtype,
           rtol=1e-3 if dtype == np.float32 else 1e-9)  # fmt: skip


def _grads(name, lib, fn):
    dist, leaves, value = build(name, lib, np.float64, requires_grad=True)
    out = fn(dist, value)
    out.sum().backward()
    return {k: v.grad for k, v in leaves.items()}


def _compare_grads(name, fn):
    gd = _grads(name, ds, fn)
    gt = _grads(name, torch, fn)
    for k in gt:
        if gt[k] is None:
            assert gd[k] is None or not np.any(_np(gd[k])), k
            continue
        assert gd[k] is not None, f"{name}: no gradient for {k}"
        if k == "scale_tril":
            # only its lower triangle is read (PyTorch's Wishart gradient has upper-triangle
            # entries: its cholesky_solve's backward does not mask them)
            a, b = np.tril(_np(gd[k])), np.tril(_np(gt[k]))
            np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)
            continue
        if k in ("covariance_matrix", "precision_matrix"):
            # only the lower triangle is read: compare the symmetric parts
            a, b = _np(gd[k]), _np(gt[k])
            a, b = a + np.swapaxes(a, -1, -2), b + np.swapaxes(b, -1, -2)
            np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)
            continue
        _close(gd[k], gt[k], np.float64, rtol=APPROX.get(name, 1e-7), atol=1e-10)


@pytest.mark.parametrize("name", sorted(CASES))
def test_log_prob_gradients_match_torch(name):
    _compare_grads(name, lambda dist, value: dist.log_prob(value))


@pytest.mark.parametrize("name", sorted(set(CASES) - NO_ENTROPY))
def test_entropy_gradients_match_torch(name):
    _compare_grads(name, lambda dist, value: dist.entropy())


@pytest.mark.parametrize("name", sorted(HAS_CDF - {"gamma"}))
def test_cdf_gradients_match_torch(name):
    _compare_grads(name, lambda dist, value: dist.cdf(value))


def test_gamma_cdf_gradient_in_x_matches_torch():
    x = np.array([0.3, 1.0, 2.5, 9.0])
    xd = ds.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    D.Gamma(ds.tensor([2.0, 0.5, 3.0, 7.0], dtype=ds.float64), 1.5).cdf(xd).sum().backward()
    TD.Gamma(torch.tensor([2.0, 0.5, 3.0, 7.0], dtype=torch.float64), 1.5).cdf(xt).sum().backward()
    _close(xd.grad, xt.grad, np.float64, rtol=1e-9)


def _finite_difference(name, fn, h=1e-6):
    """Central differences of sum(fn(dist, value)) in each parameter element (float64)."""
    cls_name, params, extra, value = CASES[name]
    out = {}
    for k, base in params.items():
        g = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            if k == "scale_tril" and idx[-1] > idx[-2]:
                continue  # only the lower triangle is a parameter
            if name == "genpareto" and k == "concentration" and base[idx] == 0:
                g[idx] = np.nan  # log_prob's xi = 0 branch ignores xi (PyTorch's too): skipped
                continue
            vals = []
            for sign in (1, -1):
                p = {kk: vv.copy() for kk, vv in params.items()}
                p[k][idx] += sign * h
                if k in ("covariance_matrix", "precision_matrix"):  # keep it symmetric
                    p[k][idx[:-2] + idx[-2:][::-1]] = p[k][idx]
                dist = getattr(D, cls_name)(**{kk: ds.tensor(vv) for kk, vv in p.items()}, **extra)
                vals.append(float(fn(dist, _tensor(ds, value, np.float64)).sum().item()))
            g[idx] = (vals[0] - vals[1]) / (2 * h)
        out[k] = g
    return out


FD_CASES = sorted(
    set(CASES) - {"onehot", "categorical_probs", "mvn_prec", "mvn_cov", "wishart_cov"}
)


@pytest.mark.parametrize("what", ["log_prob", "entropy"])
@pytest.mark.parametrize("name", FD_CASES)
def test_gradients_match_finite_differences(name, what):
    if what == "entropy" and name in NO_ENTROPY:
        pytest.skip("no entropy")

    def fn(dist, value):
        return dist.log_prob(value) if what == "log_prob" else dist.entropy()

    analytic = _grads(name, ds, fn)
    numeric = _finite_difference(name, fn)
    for k, g in numeric.items():
        a = np.zeros_like(g) if analytic[k] is None else _np(analytic[k])  # None: no path
        known = ~np.isnan(g)
        np.testing.assert_allclose(a[known], g[known], rtol=1e-5, atol=1e-6, err_msg=k)


def test_mvn_covariance_gradient_matches_finite_differences_symmetric():
    # Sigma = B B^T + I, differentiated in B: every path (Cholesky, solve) is exercised
    b0 = R.normal(0, 1, (3, 3))
    x = R.normal(0, 1, (4, 3))

    def f(b):
        cov = b @ b.mT + ds.eye(3, dtype=ds.float64)
        return D.MultivariateNormal(ds.zeros(3, dtype=ds.float64), covariance_matrix=cov)

    b = ds.tensor(b0, requires_grad=True)
    (f(b).log_prob(ds.tensor(x)).sum() + f(b).entropy()).backward()
    g = np.zeros_like(b0)
    for idx in np.ndindex(b0.shape):
        vals = []
        for s in (1, -1):
            bb = b0.copy()
            bb[idx] += s * 1e-6
            d = f(ds.tensor(bb))
            vals.append(float((d.log_prob(ds.tensor(x)).sum() + d.entropy()).item()))
        g[idx] = (vals[0] - vals[1]) / 2e-6
    np.testing.assert_allclose(b.grad.numpy(), g, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["mvn_cov", "mvn_prec", "mvn_tril"])
def test_mvn_matrices_match_torch(name):
    d, _, _ = build(name, ds, np.float64)
    t, _, _ = build(name, torch, np.float64)
    for attr in ("scale_tril", "covariance_matrix", "precision_matrix"):
        _close(getattr(d, attr), getattr(t, attr), np.float64, rtol=1e-8, atol=1e-10)


def test_python_numbers_become_default_dtype_and_float64_is_kept():
    assert D.Normal(0.0, 1.0).loc.dtype == np.float32
    assert D.Normal(0.0, 1.0).batch_shape == ()
    assert D.Normal(0.0, 1.0).sample().dtype == np.float32
    loc = ds.zeros(2, dtype=ds.float64)
    n = D.Normal(loc, 1.0)
    assert n.scale.dtype == np.float64 and n.sample((3,)).dtype == np.float64
    assert n.log_prob(ds.zeros(2, dtype=ds.float64)).dtype == np.float64
    assert D.Gamma(ds.ones(2, dtype=ds.float64), 2.0).rsample().dtype == np.float64
    assert D.Bernoulli(0.3).sample().dtype == np.float32
    assert D.Categorical(ds.ones(3)).sample().dtype == np.int64
    assert D.Poisson(ds.ones(2, dtype=ds.float64)).sample().dtype == np.float64


@pytest.mark.parametrize("name", sorted(CASES))
def test_expand_matches_torch_shapes_and_values(name):
    d, _, v = build(name, ds, np.float64)
    t, _, tv = build(name, torch, np.float64)
    new_batch = (5,) + tuple(d.batch_shape)
    de, te = d.expand(new_batch), t.expand(new_batch)
    assert tuple(de.batch_shape) == tuple(te.batch_shape) == new_batch
    assert tuple(de.event_shape) == tuple(te.event_shape)
    assert tuple(de.sample((3,)).shape) == tuple(te.sample((3,)).shape)
    _close(de.log_prob(v), te.log_prob(tv), np.float64, rtol=APPROX.get(name))


@pytest.mark.parametrize("name", ["bernoulli_probs", "categorical_logits", "onehot", "binomial"])
def test_enumerate_support_matches_torch(name):
    d, _, _ = build(name, ds, np.float64)
    t, _, _ = build(name, torch, np.float64)
    for expand in (True, False):
        a, b = d.enumerate_support(expand), t.enumerate_support(expand)
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_array_equal(_np(a), _np(b))


def test_independent_matches_torch():
    loc, scale = _real(3, 4), _pos(3, 4)
    d = D.Independent(D.Normal(ds.tensor(loc), ds.tensor(scale)), 1)
    t = TD.Independent(TD.Normal(torch.tensor(loc), torch.tensor(scale)), 1)
    assert tuple(d.batch_shape) == (3,) and tuple(d.event_shape) == (4,)
    v = _real(2, 3, 4)
    _close(d.log_prob(ds.tensor(v)), t.log_prob(torch.tensor(v)), np.float64)
    _close(d.entropy(), t.entropy(), np.float64)
    assert d.has_rsample and tuple(d.rsample((5,)).shape) == (5, 3, 4)
    assert repr(d.support) == repr(t.support)
    with pytest.raises(ValueError):
        D.Independent(D.Normal(ds.zeros(3), 1.0), 2)
    with pytest.raises(NotImplementedError):
        D.Independent(D.Bernoulli(ds.full((2, 3), 0.5)), 1).enumerate_support()


def test_binomial_inhomogeneous_total_count_entropy_raises_like_torch():
    d = D.Binomial(ds.tensor([2.0, 3.0]), ds.tensor([0.3, 0.4]))
    with pytest.raises(NotImplementedError):
        d.entropy()
    with pytest.raises(NotImplementedError):
        TD.Binomial(torch.tensor([2.0, 3.0]), torch.tensor([0.3, 0.4])).entropy()


def test_categorical_with_zero_probability_entropy_and_log_prob():
    p = np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    d, t = D.Categorical(ds.tensor(p)), TD.Categorical(torch.tensor(p))
    _close(d.entropy(), t.entropy(), np.float64)
    v = np.array([1, 0])
    _close(d.log_prob(ds.tensor(v)), t.log_prob(torch.tensor(v)), np.float64)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize(
    "case",
    [
        ("Binomial", {"total_count": 5, "probs": [0.3, 0.6]}, [2, 5]),
        ("Poisson", {"rate": [0.3, 2.0]}, [0, 3]),
        ("Geometric", {"probs": [0.3, 0.6]}, [0, 4]),
        ("NegativeBinomial", {"total_count": 3.0, "probs": [0.3, 0.6]}, [0, 4]),
        ("Multinomial", {"total_count": 3, "probs": [[0.3, 0.7]]}, [[1, 2]]),
        ("Normal", {"loc": [0.0, 1.0], "scale": 1.0}, [0, 2]),
        ("Exponential", {"rate": [1.0, 2.0]}, [0, 2]),
    ],
)
def test_integer_values_score_in_the_parameters_dtype_like_torch(case, dtype):
    name, kw, v = case
    kd = {k: ds.tensor(np.array(x, dtype)) if isinstance(x, list) else x for k, x in kw.items()}
    kt = {k: torch.tensor(np.array(x, dtype)) if isinstance(x, list) else x for k, x in kw.items()}
    a = getattr(D, name)(**kd).log_prob(ds.tensor(v))
    b = getattr(TD, name)(**kt).log_prob(torch.tensor(v))
    assert a.dtype == dtype
    _close(a, b, dtype)


def test_empty_batches():
    # PyTorch's validation fails to reshape empty batches of vector events; descent scores them
    n = D.Normal(ds.zeros(0), 1.0)
    assert tuple(n.log_prob(ds.zeros((2, 0))).shape) == (2, 0)
    assert tuple(n.sample((2,)).shape) == (2, 0)
    c = D.Categorical(logits=ds.zeros((0, 3)))
    assert tuple(c.sample((2,)).shape) == (2, 0) and tuple(c.entropy().shape) == (0,)
    d = D.Dirichlet(ds.ones((0, 3)))
    assert tuple(d.log_prob(ds.ones((0, 3)) / 3).shape) == (0,)
    m = D.MultivariateNormal(ds.zeros((0, 2)), ds.eye(2))
    assert tuple(m.log_prob(ds.zeros((0, 2))).shape) == (0,)
    assert tuple(m.rsample((2,)).shape) == (2, 0, 2)
    # Bernoulli scores integer values (PyTorch's binary_cross_entropy refuses a long target)
    b = D.Bernoulli(ds.tensor([0.3, 0.6]))
    np.testing.assert_allclose(b.log_prob(ds.tensor([0, 1])).numpy(), np.log([0.7, 0.6]),
                               rtol=1e-6)  # fmt: skip


def test_second_derivatives_match_torch():
    """log_prob and entropy are compositions of differentiable ops: Hessians work."""
    x = np.array([0.5, 1.5])

    def ours(c):
        v = ds.tensor(x)
        return (D.Gamma(c, 2.0).log_prob(v).sum() + D.Beta(c, c * 2).entropy().sum()
                + D.StudentT(c, 0.0, c).log_prob(v).sum())  # fmt: skip

    def theirs(c):
        v = torch.tensor(x)
        return (TD.Gamma(c, 2.0).log_prob(v).sum() + TD.Beta(c, c * 2).entropy().sum()
                + TD.StudentT(c, 0.0, c).log_prob(v).sum())  # fmt: skip

    h = ds.hessian(ours)(ds.tensor([1.5, 3.0], dtype=ds.float64))
    ht = torch.autograd.functional.hessian(theirs, torch.tensor([1.5, 3.0], dtype=torch.float64))
    np.testing.assert_allclose(h.numpy(), ht.numpy(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("param", ["covariance_matrix", "precision_matrix", "scale_tril"])
def test_mvn_second_derivatives_match_torch(param):
    """The Cholesky and triangular-solve nodes differentiate twice (create_graph)."""
    x = R.normal(0, 1, (4, 3))
    q = R.normal(0, 1, (3, 3))
    theta0 = np.concatenate([R.normal(0, 1, 3), (q @ q.T + 3 * np.eye(3)).ravel()])

    def build_and_score(lib, M, theta):
        loc, mat = theta[:3], theta[3:].reshape(3, 3)
        mat = (mat + mat.mT) / 2  # symmetric
        if param == "scale_tril":  # a positive diagonal from the symmetric matrix's diagonal
            eye = lib.eye(3, dtype=mat.dtype)
            mat = mat.tril(-1) + eye * mat.diagonal().exp()
        d = M.MultivariateNormal(loc, **{param: mat})
        v = lib.tensor(x)
        return d.log_prob(v).sum() + d.entropy() + (d.rsample((2,)) ** 2).sum() * 0

    h = ds.hessian(lambda t: build_and_score(ds, D, t))(ds.tensor(theta0))
    ht = torch.autograd.functional.hessian(lambda t: build_and_score(torch, TD, t),
                                           torch.tensor(theta0))  # fmt: skip
    np.testing.assert_allclose(h.numpy(), ht.numpy(), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("name", ["Bernoulli", "ContinuousBernoulli", "Geometric"])
def test_gradient_at_logit_zero_matches_torch(name):
    """softplus(x) - t x: the gradient at x = 0 is sigmoid(0) - t (a max/abs form was 1 - t)."""
    grads = []
    for lib, M in ((ds, D), (torch, TD)):
        logits = lib.tensor([0.0, 0.0, 1.0], dtype=lib.float64, requires_grad=True)
        d = getattr(M, name)(logits=logits)
        v = lib.tensor([1.0, 0.0, 1.0] if name != "ContinuousBernoulli" else [0.3, 0.9, 0.5],
                       dtype=lib.float64)  # fmt: skip
        (d.log_prob(v).sum() + d.entropy().sum()).backward()
        grads.append(logits.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-9, atol=1e-12)
