# Bayesian inference written directly on torch.distributions, the way probabilistic-programming
# tutorials and research code do without Pyro (our own program): a hierarchical "eight schools"
# model fitted by mean-field variational inference (HalfCauchy / HalfNormal / Normal / StudentT
# log-densities, a softplus-parametrised guide, reparametrised draws from NumPy noise, the ELBO
# with an analytic entropy, Adam); a multivariate regression with an LKJCholesky prior on a
# correlation factor reached through biject_to(constraints.corr_cholesky) (its
# log_abs_det_jacobian), a Wishart likelihood of scatter matrices, MultivariateNormal(scale_tril=);
# Hamiltonian Monte Carlo with leapfrog steps by autograd.grad and a Metropolis correction; the
# less common families' log_prob / cdf / icdf / mean / variance / entropy with gradients (Beta,
# Chi2, FisherSnedecor, Pareto, HalfNormal, Multinomial, Binomial with tensor counts, Wishart,
# InverseGamma) and KLs between them; a user Distribution subclass (zero-inflated Poisson with
# arg_constraints, support, expand, validate_args) with register_kl for it; Independent,
# expand, constraints checks and the validation errors.
import math

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import report
from torch.distributions import (
    Beta,
    Binomial,
    Chi2,
    Distribution,
    FisherSnedecor,
    Gamma,
    HalfCauchy,
    HalfNormal,
    Independent,
    InverseGamma,
    LKJCholesky,
    Multinomial,
    MultivariateNormal,
    Normal,
    Pareto,
    Poisson,
    StudentT,
    Wishart,
    biject_to,
    constraints,
    kl_divergence,
    register_kl,
)
from torch.distributions.utils import broadcast_all

rng = np.random.default_rng(8)


def F32(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float32))


# ------------------------------------------------------------- eight schools by ADVI
y = F32([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
sigma = F32([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
J = 8


def log_joint(mu, log_tau, theta_tilde):
    tau = log_tau.exp()
    lp = Normal(0.0, 5.0).log_prob(mu)
    lp = lp + HalfCauchy(5.0).log_prob(tau) + log_tau  # change of variables for tau
    lp = lp + Normal(0.0, 1.0).log_prob(theta_tilde).sum(-1)
    theta = mu.unsqueeze(-1) + tau.unsqueeze(-1) * theta_tilde
    lp = lp + StudentT(df=6.0, loc=theta, scale=sigma).log_prob(y).sum(-1)
    return lp


q_loc = torch.zeros(J + 2, requires_grad=True)
q_rho = torch.full((J + 2,), -1.0, requires_grad=True)
opt = torch.optim.Adam([q_loc, q_rho], lr=0.05)
elbos = []
for step in range(30):
    eps = F32(rng.standard_normal((16, J + 2)))
    scale = F.softplus(q_rho)
    z = q_loc + scale * eps
    lj = log_joint(z[:, 0], z[:, 1], z[:, 2:])
    entropy = Normal(q_loc, scale).entropy().sum()
    elbo = lj.mean() + entropy
    opt.zero_grad()
    (-elbo).backward()
    opt.step()
    elbos.append(elbo.item())
posterior = [q_loc.tolist(), F.softplus(q_rho).tolist()]


# ------------------------------------------------------------- LKJ + Wishart regression
D = 3
true_L = np.linalg.cholesky(np.array([[1.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 1.0]]))
X = rng.standard_normal((40, 2))
B_true = rng.standard_normal((2, D))
Y = X @ B_true + (rng.standard_normal((40, D)) @ (true_L * np.array([0.5, 1.0, 0.8])).T)
X, Y = F32(X), F32(Y)

corr_bij = biject_to(constraints.corr_cholesky)
unc_corr = torch.zeros(D * (D - 1) // 2, requires_grad=True)
log_sd = torch.zeros(D, requires_grad=True)
B = torch.zeros(2, D, requires_grad=True)
lkj = LKJCholesky(D, concentration=2.0)
opt = torch.optim.Adam([unc_corr, log_sd, B], lr=0.05)
map_losses = []
for step in range(25):
    L_corr = corr_bij(unc_corr)
    scale_tril = torch.diag_embed(log_sd.exp()) @ L_corr
    lik = MultivariateNormal(X @ B, scale_tril=scale_tril).log_prob(Y).sum()
    prior = lkj.log_prob(L_corr) + corr_bij.log_abs_det_jacobian(unc_corr, L_corr)
    prior = prior + HalfNormal(2.0).log_prob(log_sd.exp()).sum() + log_sd.sum()
    prior = prior + Normal(0.0, 3.0).log_prob(B).sum()
    loss = -(lik + prior)
    opt.zero_grad()
    loss.backward()
    opt.step()
    map_losses.append(loss.item())
with torch.no_grad():
    L_corr = corr_bij(unc_corr)
    corr_est = (L_corr @ L_corr.T).tolist()
    on_support = bool(constraints.corr_cholesky.check(L_corr))
    inv_back = corr_bij.inv(L_corr).tolist()

scatters = []
for k in range(4):
    Z = rng.standard_normal((6, D)) @ true_L.T
    scatters.append(Z.T @ Z)
scatters = F32(np.stack(scatters))
df = torch.tensor(6.0, requires_grad=True)
cov_unc = torch.zeros(D, D, requires_grad=True)
opt = torch.optim.SGD([df, cov_unc], lr=0.01)
wishart_losses = []
for step in range(12):
    L = torch.tril(cov_unc, -1) + torch.diag_embed(cov_unc.diagonal().exp())
    W = Wishart(df=df + 3.0, scale_tril=L)
    loss = -W.log_prob(scatters).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    wishart_losses.append(loss.item())
with torch.no_grad():
    W = Wishart(df=torch.tensor(7.0), covariance_matrix=F32(true_L @ true_L.T))
    wishart_stats = [W.mean.tolist(), W.variance.tolist(), W.entropy().item(),
                     list(W.event_shape), W.log_prob(scatters).tolist()]


# ------------------------------------------------------------- HMC on a banana density
def potential(q):
    x1, x2 = q[..., 0], q[..., 1]
    return 0.5 * (x1 ** 2 / 4.0 + (x2 - 0.25 * x1 ** 2) ** 2 / 0.5)


def grad_u(q):
    q = q.detach().requires_grad_(True)
    u = potential(q).sum()
    g, = torch.autograd.grad(u, q)
    return g


def hmc_step(q, step_size, n_leapfrog, p0, u01):
    p = p0.clone()
    q_new = q.clone()
    p = p - 0.5 * step_size * grad_u(q_new)
    for i in range(n_leapfrog):
        q_new = q_new + step_size * p
        if i != n_leapfrog - 1:
            p = p - step_size * grad_u(q_new)
    p = p - 0.5 * step_size * grad_u(q_new)
    p = -p
    current_h = potential(q) + 0.5 * (p0 ** 2).sum(-1)
    proposed_h = potential(q_new) + 0.5 * (p ** 2).sum(-1)
    accept_prob = torch.exp(current_h - proposed_h).clamp(max=1.0)
    accept = u01 < accept_prob
    q = torch.where(accept.unsqueeze(-1), q_new, q)
    return q, accept_prob


q = F32(rng.standard_normal((4, 2)))  # four chains
chain, accepts = [], []
for it in range(25):
    p0 = F32(rng.standard_normal((4, 2)))
    u01 = F32(rng.uniform(0.0, 1.0, 4))
    q, a = hmc_step(q, 0.2, 5, p0, u01)
    chain.append(q.tolist())
    accepts.append(a.tolist())
samples = torch.tensor(chain[5:]).reshape(-1, 2)
hmc_summary = [samples.mean(0).tolist(), samples.var(0).tolist(), chain[-1]]


# ------------------------------------------------------------- the rarer families
conc = torch.tensor([2.0, 0.7], requires_grad=True)
conc0 = torch.tensor([3.0, 1.5], requires_grad=True)
beta = Beta(conc, conc0)
v = torch.tensor([0.2, 0.9])
(beta.log_prob(v).sum() + beta.entropy().sum() + beta.mean.sum()
 + beta.variance.sum()).backward()
families = {"beta": [beta.log_prob(v).tolist(), beta.entropy().tolist(), conc.grad.tolist(),
                     conc0.grad.tolist()]}
dfc = torch.tensor([3.0, 7.5], requires_grad=True)
chi = Chi2(dfc)
vx = torch.tensor([2.0, 9.0])
chi.log_prob(vx).sum().backward()
families["chi2"] = [chi.log_prob(vx).tolist(), chi.mean.tolist(), chi.variance.tolist(),
                    chi.entropy().tolist(), dfc.grad.tolist()]
fs = FisherSnedecor(torch.tensor([4.0, 10.0]), torch.tensor([6.0, 12.0]))
families["fisher"] = [fs.log_prob(torch.tensor([0.5, 2.0])).tolist(), fs.mean.tolist(),
                      fs.variance.tolist()]
alpha = torch.tensor([1.5, 3.0], requires_grad=True)
pa = Pareto(torch.tensor([1.0, 2.0]), alpha)
px = torch.tensor([1.7, 5.0])
(pa.log_prob(px).sum() + pa.entropy().sum()).backward()
families["pareto"] = [pa.log_prob(px).tolist(), pa.cdf(px).tolist(),
                      pa.icdf(torch.tensor([0.25, 0.75])).tolist(), pa.mean.tolist(),
                      pa.variance.tolist(), pa.entropy().tolist(), alpha.grad.tolist(),
                      bool(pa.support.check(torch.tensor([0.5, 3.0]))[0])]
hn = HalfNormal(torch.tensor([1.0, 2.5]))
families["halfnormal"] = [hn.log_prob(torch.tensor([0.3, 4.0])).tolist(),
                          hn.cdf(torch.tensor([0.3, 4.0])).tolist(),
                          hn.icdf(torch.tensor([0.5, 0.9])).tolist(), hn.mean.tolist(),
                          hn.entropy().tolist()]
logits = torch.tensor([0.2, -0.4, 1.0], requires_grad=True)
mn = Multinomial(10, logits=logits)
counts = torch.tensor([[3.0, 2.0, 5.0], [0.0, 10.0, 0.0]])
mn.log_prob(counts).sum().backward()
families["multinomial"] = [mn.log_prob(counts).tolist(), mn.mean.tolist(),
                           mn.variance.tolist(), logits.grad.tolist()]
bi = Binomial(total_count=torch.tensor([5.0, 12.0, 20.0]), probs=torch.tensor([0.3, 0.5, 0.9]))
families["binomial"] = [bi.log_prob(torch.tensor([2.0, 12.0, 18.0])).tolist(),
                        bi.mean.tolist(), bi.variance.tolist(),
                        Binomial(8, torch.tensor([0.3, 0.6])).entropy().tolist(),
                        list(Binomial(4, torch.tensor([0.3, 0.6])).enumerate_support().shape)]
ig = InverseGamma(torch.tensor([3.0, 5.0]), torch.tensor([2.0, 1.0]))
families["invgamma"] = [ig.log_prob(torch.tensor([0.5, 0.3])).tolist(), ig.mean.tolist(),
                        ig.variance.tolist(), ig.entropy().tolist()]
families["kl"] = [kl_divergence(Beta(torch.tensor(2.0), torch.tensor(3.0)),
                                Beta(torch.tensor(1.0), torch.tensor(1.5))).item(),
                  kl_divergence(Gamma(2.0, 3.0), Gamma(1.5, 1.0)).item(),
                  kl_divergence(Pareto(1.0, 3.0), Pareto(0.5, 2.0)).item(),
                  kl_divergence(Poisson(torch.tensor(3.0)), Poisson(torch.tensor(2.0))).item()]


# ------------------------------------------------------------- a user Distribution
class ZeroInflatedPoisson(Distribution):
    arg_constraints = {"rate": constraints.positive, "gate": constraints.unit_interval}
    support = constraints.nonnegative_integer

    def __init__(self, rate, gate, validate_args=None):
        self.rate, self.gate = broadcast_all(rate, gate)
        batch_shape = self.rate.shape
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(ZeroInflatedPoisson, _instance)
        batch_shape = torch.Size(batch_shape)
        new.rate = self.rate.expand(batch_shape)
        new.gate = self.gate.expand(batch_shape)
        super(ZeroInflatedPoisson, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self):
        return (1 - self.gate) * self.rate

    @property
    def variance(self):
        return (1 - self.gate) * self.rate * (1 + self.gate * self.rate)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        rate, gate, value = broadcast_all(self.rate, self.gate, value)
        log_pois = value * rate.log() - rate - torch.lgamma(value + 1)
        zero = torch.log(gate + (1 - gate) * torch.exp(-rate))
        return torch.where(value == 0, zero, torch.log1p(-gate) + log_pois)


@register_kl(ZeroInflatedPoisson, ZeroInflatedPoisson)
def _kl_zip_zip(p, q):  # truncated sum over the support, as people write it
    ks = torch.arange(40.0).view(-1, *([1] * len(p.batch_shape)))
    lp, lq = p.log_prob(ks), q.log_prob(ks)
    return (lp.exp() * (lp - lq)).sum(0)


rate_p = torch.tensor([2.0, 0.5], requires_grad=True)
gate_u = torch.tensor([0.0, 1.0], requires_grad=True)
data = torch.tensor([[0.0, 0.0], [3.0, 1.0], [0.0, 2.0], [1.0, 0.0], [5.0, 0.0]])
opt = torch.optim.Adam([rate_p, gate_u], lr=0.1)
zip_losses = []
for step in range(15):
    zip_d = ZeroInflatedPoisson(F.softplus(rate_p), torch.sigmoid(gate_u),
                                validate_args=True)
    loss = -zip_d.log_prob(data).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
    zip_losses.append(loss.item())
zp = ZeroInflatedPoisson(torch.tensor([2.0, 0.5]), torch.tensor([0.3, 0.1]))
zq = ZeroInflatedPoisson(torch.tensor([1.0, 1.5]), torch.tensor([0.2, 0.4]))
zexp = zp.expand([3, 2])
errors = []
try:
    ZeroInflatedPoisson(torch.tensor([-1.0]), torch.tensor([0.5]), validate_args=True)
except ValueError:
    errors.append("bad rate")
try:
    ZeroInflatedPoisson(torch.tensor([1.0]), torch.tensor([0.5]),
                        validate_args=True).log_prob(torch.tensor([1.5]))
except ValueError:
    errors.append("bad value")
try:
    Normal(torch.tensor([0.0]), torch.tensor([-1.0]), validate_args=True)
except ValueError:
    errors.append("normal scale")
ind = Independent(Normal(torch.zeros(4, 3), torch.ones(4, 3)), 1)
user_dist = [zp.mean.tolist(), zp.variance.tolist(), kl_divergence(zp, zq).tolist(),
             list(zexp.batch_shape), zexp.log_prob(torch.zeros(3, 2)).tolist(), errors,
             list(ind.batch_shape), list(ind.event_shape),
             ind.log_prob(torch.full((4, 3), 0.5)).tolist(),
             list(Normal(0.0, 1.0).expand([2, 5]).batch_shape),
             bool(constraints.simplex.check(torch.tensor([0.2, 0.3, 0.5]))),
             constraints.positive_definite.check(F32(true_L @ true_L.T)).item(),
             math.isclose(zp.log_prob(torch.tensor([0.0, 0.0])).exp().sum().item(),
                          (0.3 + 0.7 * math.exp(-2.0)) + (0.1 + 0.9 * math.exp(-0.5)),
                          rel_tol=1e-6)]

report(elbos=elbos, posterior=posterior, map_losses=map_losses, corr_est=corr_est,
       on_support=on_support, inv_back=inv_back, wishart_losses=wishart_losses,
       wishart_stats=wishart_stats, accepts=accepts, hmc_summary=hmc_summary,
       families=families, zip_losses=zip_losses, user_dist=user_dist)
