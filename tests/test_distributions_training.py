"""PyTorch programs that use torch.distributions run on descent (`import descent as torch`):
variational inference through rsample, REINFORCE through Categorical.log_prob, a Gaussian
mixture fitted by maximum likelihood. Each runs the same code with both libraries from the same
initial parameters and reaches the known answer (fixed seeds: deterministic)."""

from __future__ import annotations

import numpy as np
import pytest
import torch as real_torch

import descent


def _fit_gaussian_by_elbo(torch):
    """Fit q = N(mu, softplus(rho)) to the target N(3, 0.5^2) by minimising the Monte Carlo
    estimate of KL(q || p) = E_q[log q(z) - log p(z)] with reparameterised draws."""
    torch.manual_seed(0)
    dist = torch.distributions
    mu = torch.zeros(2, requires_grad=True)
    rho = torch.zeros(2, requires_grad=True)
    target = dist.Normal(torch.tensor([3.0, -1.0]), torch.tensor([0.5, 2.0]))
    opt = torch.optim.Adam([mu, rho], lr=0.05)
    for _ in range(600):
        q = dist.Normal(mu, torch.nn.functional.softplus(rho))
        z = q.rsample((64,))
        loss = (q.log_prob(z) - target.log_prob(z)).mean(0).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return mu.detach().numpy(), torch.nn.functional.softplus(rho).detach().numpy()


@pytest.mark.parametrize("lib", [descent, real_torch], ids=["descent", "torch"])
def test_variational_fit_through_rsample(lib):
    mu, sigma = _fit_gaussian_by_elbo(lib)
    np.testing.assert_allclose(mu, [3.0, -1.0], atol=0.15)
    np.testing.assert_allclose(sigma, [0.5, 2.0], rtol=0.1)


def _reinforce_bandit(torch):
    """A 4-armed bandit with rewards 0.1, 0.2, 0.9, 0.3: the policy's logits learn arm 2 by
    REINFORCE (score-function gradients of Categorical.log_prob)."""
    torch.manual_seed(1)
    logits = torch.zeros(4, requires_grad=True)
    rewards = torch.tensor([0.1, 0.2, 0.9, 0.3])
    opt = torch.optim.SGD([logits], lr=0.5)
    for _ in range(300):
        pi = torch.distributions.Categorical(logits=logits)
        a = pi.sample((32,))
        r = rewards[a]
        loss = -(pi.log_prob(a) * (r - r.mean())).mean() - 0.001 * pi.entropy()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.distributions.Categorical(logits=logits).probs.detach().numpy()


@pytest.mark.parametrize("lib", [descent, real_torch], ids=["descent", "torch"])
def test_reinforce_learns_the_best_arm(lib):
    probs = _reinforce_bandit(lib)
    assert probs.argmax() == 2 and probs[2] > 0.9


def test_gaussian_mixture_maximum_likelihood():
    """MixtureSameFamily's log_prob trained by Adam recovers two well-separated components."""
    rng = np.random.default_rng(0)
    data = np.concatenate([rng.normal(-4, 0.7, 600), rng.normal(2, 1.2, 400)]).astype(np.float32)
    torch = descent
    x = torch.tensor(data)
    logits = torch.zeros(2, requires_grad=True)
    loc = torch.tensor([-1.0, 1.0], requires_grad=True)
    log_scale = torch.zeros(2, requires_grad=True)
    opt = torch.optim.Adam([logits, loc, log_scale], lr=0.05)
    for _ in range(400):
        mix = torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(logits=logits),
            torch.distributions.Normal(loc, log_scale.exp()),
        )
        loss = -mix.log_prob(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    w = torch.distributions.Categorical(logits=logits).probs.detach().numpy()
    np.testing.assert_allclose(loc.detach().numpy(), [-4.0, 2.0], atol=0.2)
    np.testing.assert_allclose(log_scale.exp().detach().numpy(), [0.7, 1.2], rtol=0.12)
    np.testing.assert_allclose(w, [0.6, 0.4], atol=0.05)
