# Distributions built from torch.distributions.transforms and fitted by maximum likelihood, as
# probabilistic-modelling code (Pyro-style guides written on bare torch) does: a logit-normal
# (Normal + SigmoidTransform) and a Beta fitted to the same proportions, a mixture of
# log-normals (MixtureSameFamily over TransformedDistribution(Normal, ExpTransform)), a bounded
# action density by ComposeTransform([TanhTransform(cache_size=1), AffineTransform]), a
# logistic-normal on the simplex by StickBreakingTransform and LogisticNormal, a Gaussian copula
# whose marginals go through CumulativeDistributionTransform, correlation matrices from
# CorrCholeskyTransform under an LKJCholesky prior, PowerTransform / ReshapeTransform /
# IndependentTransform / CatTransform / StackTransform log-determinants, GeneralizedPareto and
# Gumbel fitted to tail data, transform inverses, signs, domains and the cache.
import math

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import report
from torch.distributions import (
    Beta,
    Categorical,
    Gumbel,
    Independent,
    LKJCholesky,
    LogisticNormal,
    LogNormal,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
    TransformedDistribution,
    constraints,
)
from torch.distributions import transforms as T
from torch.distributions.generalized_pareto import GeneralizedPareto

torch.manual_seed(0)
rng = np.random.default_rng(99)

# ---- logit-normal vs Beta on proportions ----------------------------------------------------
props = torch.from_numpy(rng.beta(2.0, 5.0, 200).astype(np.float32))
loc = torch.zeros((), requires_grad=True)
log_scale = torch.zeros((), requires_grad=True)
log_ab = torch.zeros(2, requires_grad=True)
opt = torch.optim.Adam([loc, log_scale, log_ab], lr=0.05)
fit_log = []
for step in range(40):
    opt.zero_grad()
    logit_normal = TransformedDistribution(Normal(loc, log_scale.exp()), [T.SigmoidTransform()])
    beta = Beta(*F.softplus(log_ab).unbind())
    nll_ln = -logit_normal.log_prob(props).mean()
    nll_beta = -beta.log_prob(props).mean()
    (nll_ln + nll_beta).backward()
    opt.step()
    fit_log.append([nll_ln.item(), nll_beta.item()])

# ---- mixture of log-normals ---------------------------------------------------------------
sizes = np.concatenate([rng.lognormal(0.0, 0.3, 150), rng.lognormal(1.5, 0.2, 100)])
sizes = torch.from_numpy(sizes.astype(np.float32))
mix_logits = torch.zeros(2, requires_grad=True)
mix_loc = torch.tensor([0.3, 1.0], requires_grad=True)
mix_log_scale = torch.full((2,), -1.0, requires_grad=True)
mopt = torch.optim.Adam([mix_logits, mix_loc, mix_log_scale], lr=0.05)
mix_nll = []
for step in range(40):
    mopt.zero_grad()
    comp = TransformedDistribution(Normal(mix_loc, mix_log_scale.exp()), [T.ExpTransform()])
    mix = MixtureSameFamily(Categorical(logits=mix_logits), comp)
    loss = -mix.log_prob(sizes).mean()
    loss.backward()
    mopt.step()
    mix_nll.append(loss.item())
lognormal_same = bool(torch.allclose(
    TransformedDistribution(Normal(0.2, 0.7), [T.ExpTransform()]).log_prob(sizes[:10]),
    LogNormal(0.2, 0.7).log_prob(sizes[:10])))
compose_same = bool(torch.allclose(
    TransformedDistribution(Normal(0.0, 1.0), T.ComposeTransform([T.AffineTransform(0.2, 0.7),
                                                                  T.ExpTransform()]))
    .log_prob(sizes[:10]), LogNormal(0.2, 0.7).log_prob(sizes[:10])))

# ---- a bounded action density (SAC's squashing, as transforms) --------------------------------
low, high = torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 1.0])
squash = T.ComposeTransform([T.TanhTransform(cache_size=1),
                             T.AffineTransform((high + low) / 2, (high - low) / 2)])
base = Independent(Normal(torch.tensor([0.3, -0.5]), torch.tensor([0.5, 0.8])), 1)
policy = TransformedDistribution(base, squash)
u = torch.from_numpy(rng.standard_normal((5, 2)).astype(np.float32))
actions = squash(u)
cached = squash.inv(actions) is u
lp_cached = policy.log_prob(actions)
lp_fresh = policy.log_prob(actions.detach().clone())
by_hand = base.log_prob(u) - (torch.log((high - low) / 2) + 2 * (math.log(2) - u - F.softplus(
    -2 * u))).sum(-1)

# ---- logistic-normal on the simplex ---------------------------------------------------------
sb = T.StickBreakingTransform()
z = torch.from_numpy(rng.standard_normal((4, 3)).astype(np.float32))
simplex = sb(z)
sb_ladj = sb.log_abs_det_jacobian(z, simplex)
sb_roundtrip = (sb.inv(simplex) - z).abs().max().item()
ln = LogisticNormal(torch.zeros(3), torch.ones(3))
ln_lp = ln.log_prob(simplex)
sb_dist = TransformedDistribution(Independent(Normal(torch.zeros(3), torch.ones(3)), 1),
                                  [T.StickBreakingTransform()])
stick_lp = sb_dist.log_prob(simplex)

# ---- a Gaussian copula with exponential marginals --------------------------------------------
n = 300
L_true = np.linalg.cholesky(np.array([[1.0, 0.6], [0.6, 1.0]]))
g = rng.standard_normal((n, 2)) @ L_true.T
from_normal = torch.distributions.Normal(0.0, 1.0)
u_np = 0.5 * (1 + np.vectorize(math.erf)(g / math.sqrt(2)))
data = torch.from_numpy((-np.log1p(-u_np) / np.array([1.0, 3.0])).astype(np.float32))
rates = torch.zeros(2, requires_grad=True)
rho_raw = torch.zeros((), requires_grad=True)
copt = torch.optim.Adam([rates, rho_raw], lr=0.05)
copula_nll = []
for step in range(40):
    copt.zero_grad()
    marg = torch.distributions.Exponential(rates.exp())
    to_uniform = T.CumulativeDistributionTransform(marg)
    uu = to_uniform(data).clamp(1e-6, 1 - 1e-6)
    zz = from_normal.icdf(uu)
    rho = torch.tanh(rho_raw)
    cov = torch.stack([torch.stack([torch.ones(()), rho]), torch.stack([rho, torch.ones(())])])
    copula = MultivariateNormal(torch.zeros(2), covariance_matrix=cov).log_prob(zz) - \
        from_normal.log_prob(zz).sum(-1)
    loss = -(copula + marg.log_prob(data).sum(-1)).mean()
    loss.backward()
    copt.step()
    copula_nll.append(loss.item())
cdf_ladj = to_uniform.log_abs_det_jacobian(data[:3], to_uniform(data[:3])).tolist()

# ---- correlation matrices by CorrCholeskyTransform under LKJ --------------------------------
cc = T.CorrCholeskyTransform()
v = torch.from_numpy(rng.standard_normal((2, 3)).astype(np.float32)) * 0.5
Lc = cc(v)
corr = Lc @ Lc.mT
lkj = LKJCholesky(3, concentration=2.0)
lkj_lp = (lkj.log_prob(Lc) + cc.log_abs_det_jacobian(v, Lc)).tolist()
cc_roundtrip = (cc.inv(Lc) - v).abs().max().item()
in_support = bool(constraints.corr_cholesky.check(Lc).all())

# ---- the other transforms' values and log-determinants -------------------------------------
x = torch.from_numpy(rng.uniform(0.5, 2.0, (3, 4)).astype(np.float32))
pw = T.PowerTransform(torch.tensor(2.5))
rs = T.ReshapeTransform((4,), (2, 2))
it = T.IndependentTransform(T.ExpTransform(), 1)
cat = T.CatTransform([T.ExpTransform(), T.AffineTransform(1.0, 3.0)], dim=1, lengths=[2, 2])
st = T.StackTransform([T.ExpTransform(), T.SigmoidTransform(), T.TanhTransform(),
                       T.AbsTransform()], dim=1)
others = {
    "power": [pw(x).sum().item(), pw.log_abs_det_jacobian(x, pw(x)).sum().item(), pw.sign.item()],
    "reshape": [list(rs(x).shape), rs.log_abs_det_jacobian(x, rs(x)).tolist()],
    "independent": it.log_abs_det_jacobian(x, it(x)).tolist(),
    "cat": cat.log_abs_det_jacobian(x, cat(x)).sum(1).tolist(),
    "stack": st(x).sum(0).tolist(),
    "signs": [T.ExpTransform().sign, T.AffineTransform(0.0, -2.0).sign, T.TanhTransform().sign],
    "bijective": [T.StickBreakingTransform().bijective, T.AbsTransform().bijective],
    "event_dims": [sb.domain.event_dim, sb.codomain.event_dim, cc.codomain.event_dim],
}

# ---- tails: GeneralizedPareto and Gumbel by maximum likelihood -------------------------------
exceed = torch.from_numpy((rng.pareto(3.0, 200) * 0.5).astype(np.float32))
maxima = torch.from_numpy(rng.gumbel(2.0, 0.7, 200).astype(np.float32))
gp_params = torch.tensor([0.0, -1.0], requires_grad=True)      # log scale, softplus^-1 shape
gu_params = torch.tensor([0.0, 0.0], requires_grad=True)       # loc, log scale
topt = torch.optim.Adam([gp_params, gu_params], lr=0.05)
tail_nll = []
for step in range(40):
    topt.zero_grad()
    gp = GeneralizedPareto(torch.tensor(0.0), gp_params[0].exp(), F.softplus(gp_params[1]))
    gu = Gumbel(gu_params[0], gu_params[1].exp())
    l1 = -gp.log_prob(exceed).mean()
    l2 = -gu.log_prob(maxima).mean()
    (l1 + l2).backward()
    topt.step()
    tail_nll.append([l1.item(), l2.item()])
gp_stats = [gp.mean.item(), gp.variance.item(), gp.cdf(torch.tensor(1.0)).item(),
            gp.icdf(torch.tensor(0.9)).item()]
gu_stats = [gu.mean.item(), gu.stddev.item(), gu.entropy().item(), gu.cdf(torch.tensor(2.0)).item()]

report(
    fit_log=fit_log,
    logit_normal=[loc.item(), log_scale.item()],
    beta_ab=F.softplus(log_ab).tolist(),
    mix_nll=mix_nll,
    mix_weights=torch.softmax(mix_logits, 0).tolist(),
    lognormal_same=lognormal_same,
    compose_same=compose_same,
    cached=cached,
    lp_cached=lp_cached.tolist(),
    lp_fresh=lp_fresh.tolist(),
    lp_by_hand=by_hand.tolist(),
    simplex=simplex.tolist(),
    sb_ladj=sb_ladj.tolist(),
    sb_roundtrip_small=sb_roundtrip < 1e-5,
    ln_lp=ln_lp.tolist(),
    stick_lp=stick_lp.tolist(),
    copula_nll=copula_nll,
    copula_rho=torch.tanh(rho_raw).item(),
    rates=rates.exp().tolist(),
    cdf_ladj=cdf_ladj,
    corr=corr.tolist(),
    lkj_lp=lkj_lp,
    cc_roundtrip_small=cc_roundtrip < 1e-5,
    in_support=in_support,
    others=others,
    tail_nll=tail_nll,
    gp_stats=gp_stats,
    gu_stats=gu_stats,
)
