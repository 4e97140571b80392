# A Bernoulli restricted Boltzmann machine trained by contrastive divergence, as the classic
# PyTorch RBM tutorials write it: W, v_bias, h_bias as nn.Parameters, sample_from_p by
# F.relu(torch.sign(p - uniform)) with the uniforms drawn from NumPy, v_to_h / h_to_v by
# F.linear (the transposed weight), k Gibbs steps, the free energy
# -v.b_v - sum softplus(W v + b_h) whose difference between data and the chain's end is the
# CD loss (backward through free_energy only, the samples detached); SGD with momentum and
# weight decay; persistent CD keeping fantasy particles across batches; the reconstruction
# error, a pseudo-log-likelihood by flipping one random bit per example, and annealed
# importance sampling-free exact log Z by enumerating all 2^h hidden states (small h).
import itertools

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import report

rng = np.random.default_rng(73)
n_vis, n_hid = 12, 5
protos = (rng.uniform(size=(3, n_vis)) < 0.5).astype(np.float32)
data = np.abs(protos[rng.integers(0, 3, 64)] - (rng.uniform(size=(64, n_vis)) < 0.05))
data = torch.from_numpy(data.astype(np.float32))


def uniform_like(t):
    return torch.from_numpy(rng.uniform(size=tuple(t.shape)).astype(np.float32))


class RBM(nn.Module):
    def __init__(self, n_vis=784, n_hin=500, k=5):
        super(RBM, self).__init__()
        init = np.random.default_rng(0).standard_normal((n_hin, n_vis)).astype(np.float32)
        self.W = nn.Parameter(torch.from_numpy(init) * 1e-1)
        self.v_bias = nn.Parameter(torch.zeros(n_vis))
        self.h_bias = nn.Parameter(torch.zeros(n_hin))
        self.k = k

    def sample_from_p(self, p):
        return F.relu(torch.sign(p - uniform_like(p)))

    def v_to_h(self, v):
        p_h = torch.sigmoid(F.linear(v, self.W, self.h_bias))
        return p_h, self.sample_from_p(p_h)

    def h_to_v(self, h):
        p_v = torch.sigmoid(F.linear(h, self.W.t(), self.v_bias))
        return p_v, self.sample_from_p(p_v)

    def forward(self, v, v_start=None):
        _, h_ = self.v_to_h(v if v_start is None else v_start)
        for _ in range(self.k):
            _, v_ = self.h_to_v(h_)
            _, h_ = self.v_to_h(v_)
        return v, v_

    def free_energy(self, v):
        vbias_term = v.mv(self.v_bias)
        wx_b = F.linear(v, self.W, self.h_bias)
        hidden_term = F.softplus(wx_b).sum(1)
        return (-hidden_term - vbias_term).mean()


def exact_log_z(rbm):
    hs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n_hid)))
    # log Z = logsumexp_h [ h.b_h + sum_i softplus((W^T h)_i + b_v_i) ]
    terms = hs @ rbm.h_bias + F.softplus(hs @ rbm.W + rbm.v_bias).sum(1)
    return torch.logsumexp(terms, 0)


def pseudo_ll(rbm, v):
    idx = torch.from_numpy(rng.integers(0, n_vis, v.shape[0]))
    v_flip = v.clone()
    v_flip[torch.arange(v.shape[0]), idx] = 1 - v_flip[torch.arange(v.shape[0]), idx]
    fe = -F.softplus(F.linear(v, rbm.W, rbm.h_bias)).sum(1) - v.mv(rbm.v_bias)
    fe_flip = -F.softplus(F.linear(v_flip, rbm.W, rbm.h_bias)).sum(1) - v_flip.mv(rbm.v_bias)
    return (n_vis * F.logsigmoid(fe_flip - fe)).mean()


results = {}
for mode in ("cd", "pcd"):
    rbm = RBM(n_vis, n_hid, k=1 if mode == "cd" else 3)
    train_op = torch.optim.SGD(rbm.parameters(), lr=0.1, momentum=0.5, weight_decay=1e-4)
    fantasy = (torch.from_numpy(rng.uniform(size=(16, n_vis))) < 0.5).float()
    losses, recon, lls = [], [], []
    for epoch in range(5):
        for i in range(0, 64, 16):
            sample_data = data[i : i + 16]
            if mode == "cd":
                v, v1 = rbm(sample_data)
            else:
                v, v1 = rbm(sample_data, v_start=fantasy)
                fantasy = v1.detach()
            fe_data, fe_model = rbm.free_energy(v), rbm.free_energy(v1.detach())
            loss = fe_data - fe_model
            train_op.zero_grad()
            loss.backward()
            train_op.step()
            # the two free energies, not their difference, which cancels (-0.14 from terms of -4
            # to -10: 2e-6 apart between the libraries, 1.3e-5 of the difference)
            losses.append([fe_data.item(), fe_model.item()])
        with torch.no_grad():
            p_h, _ = rbm.v_to_h(data)
            p_v = torch.sigmoid(F.linear(p_h, rbm.W.t(), rbm.v_bias))
            recon.append(((p_v - data) ** 2).sum(1).mean().item())
            log_z = exact_log_z(rbm)
            fe = -F.softplus(F.linear(data, rbm.W, rbm.h_bias)).sum(1) - data.mv(rbm.v_bias)
            lls.append((-fe - log_z).mean().item())
    with torch.no_grad():
        pll = pseudo_ll(rbm, data).item()
    results[mode] = dict(
        losses=losses[::3], recon=recon, exact_ll=lls, pseudo_ll=pll, h_bias=rbm.h_bias.tolist()
    )
report(**results)
