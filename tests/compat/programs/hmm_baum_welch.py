# Hidden Markov models as pytorch_HMM-style notebooks and the "HMMs in PyTorch" tutorials write
# them: a batched forward algorithm in log space (logsumexp over the previous state, sequences of
# different lengths masked by torch.where), the backward algorithm, state posteriors and pairwise
# posteriors, Viterbi decoding with argmax back-pointers and a reversed gather, Baum-Welch EM
# (expected counts by einsum and scatter_add_ of one-hot emissions, renormalisation) with a
# log-likelihood that never decreases, and the same model fitted by gradient ascent on
# log_softmax-parametrised tables with Adam, where the gradient of log p(x) with respect to the
# emission log-probabilities equals the posterior counts (checked). Float64, as EM is run.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import report

torch.manual_seed(0)
rng = np.random.default_rng(31)
torch.set_default_dtype(torch.float64)

S, V, B, TMAX = 3, 5, 6, 20
A_true = np.array([[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
E_true = np.array([[0.6, 0.3, 0.05, 0.03, 0.02], [0.05, 0.2, 0.5, 0.2, 0.05],
                   [0.02, 0.03, 0.05, 0.3, 0.6]])
pi_true = np.array([0.5, 0.3, 0.2])
lengths_np = rng.integers(12, TMAX + 1, B)
lengths_np[0] = TMAX
obs_np = np.zeros((B, TMAX), dtype=np.int64)
for b in range(B):
    s = rng.choice(S, p=pi_true)
    for t in range(lengths_np[b]):
        obs_np[b, t] = rng.choice(V, p=E_true[s])
        s = rng.choice(S, p=A_true[s])
obs = torch.from_numpy(obs_np)
lengths = torch.from_numpy(lengths_np)
mask = torch.arange(TMAX)[None, :] < lengths[:, None]          # (B, T)


def forward_alg(log_pi, log_A, log_E, obs, mask):
    em = log_E[:, obs].permute(1, 2, 0)                        # (B, T, S)
    alpha = log_pi + em[:, 0]
    alphas = [alpha]
    for t in range(1, obs.shape[1]):
        new = torch.logsumexp(alpha.unsqueeze(2) + log_A, dim=1) + em[:, t]
        alpha = torch.where(mask[:, t:t + 1], new, alpha)
        alphas.append(alpha)
    return torch.logsumexp(alpha, dim=1), torch.stack(alphas, 1)


def backward_alg(log_A, log_E, obs, mask):
    em = log_E[:, obs].permute(1, 2, 0)
    beta = torch.zeros(obs.shape[0], log_A.shape[0])
    betas = [beta]
    for t in range(obs.shape[1] - 2, -1, -1):
        new = torch.logsumexp(log_A + (em[:, t + 1] + beta).unsqueeze(1), dim=2)
        beta = torch.where(mask[:, t + 1:t + 2], new, beta)
        betas.append(beta)
    return torch.stack(betas[::-1], 1)


def viterbi(log_pi, log_A, log_E, obs, length):
    em = log_E[:, obs[:length]].t()                            # (T, S)
    delta = log_pi + em[0]
    pointers = []
    for t in range(1, length):
        scores = delta.unsqueeze(1) + log_A                    # (S, S) prev -> next
        best, arg = scores.max(dim=0)
        pointers.append(arg)
        delta = best + em[t]
    path = [int(delta.argmax())]
    for arg in reversed(pointers):
        path.append(int(arg[path[-1]]))
    return path[::-1], delta.max().item()


def normalize(x, dim):
    return x / x.sum(dim, keepdim=True)


pi = torch.full((S,), 1.0 / S)
A = normalize(torch.from_numpy(rng.uniform(0.5, 1.5, (S, S))), 1)
E = normalize(torch.from_numpy(rng.uniform(0.5, 1.5, (S, V))), 1)
em_ll = []
for it in range(8):
    log_pi, log_A, log_E = pi.log(), A.log(), E.log()
    ll, log_alpha = forward_alg(log_pi, log_A, log_E, obs, mask)
    log_beta = backward_alg(log_A, log_E, obs, mask)
    em_ll.append(ll.sum().item())
    gamma = torch.exp(log_alpha + log_beta - ll[:, None, None]) * mask[..., None]   # (B, T, S)
    em = log_E[:, obs].permute(1, 2, 0)
    # xi[b, t, i, j] = p(z_t = i, z_t+1 = j | x)
    log_xi = (log_alpha[:, :-1, :, None] + log_A + (em[:, 1:] + log_beta[:, 1:])[:, :, None, :]
              - ll[:, None, None, None])
    xi = torch.exp(log_xi) * mask[:, 1:, None, None]
    pi = gamma[:, 0].sum(0) / B
    A = normalize(xi.sum((0, 1)), 1)
    counts = torch.zeros(S, V)
    counts.scatter_add_(1, obs.reshape(1, -1).expand(S, -1),
                        gamma.permute(2, 0, 1).reshape(S, -1))
    E = normalize(counts, 1)
    posterior_sum_ok = bool(torch.allclose(gamma.sum(-1), mask.double()))
monotone = all(b >= a - 1e-9 for a, b in zip(em_ll, em_ll[1:]))
# decode with the generating tables (the EM fit from 8 iterations has near-tied paths)
log_tables = [torch.from_numpy(t).log() for t in (pi_true, A_true, E_true)]
paths = [viterbi(*log_tables, obs[b], int(lengths[b])) for b in range(B)]


class HMM(nn.Module):
    def __init__(self):
        super().__init__()
        self.pi_logits = nn.Parameter(torch.zeros(S))
        self.A_logits = nn.Parameter(torch.from_numpy(rng.standard_normal((S, S)) * 0.1))
        self.E_logits = nn.Parameter(torch.from_numpy(rng.standard_normal((S, V)) * 0.1))

    def forward(self, obs, mask):
        log_pi = torch.log_softmax(self.pi_logits, 0)
        log_A = torch.log_softmax(self.A_logits, 1)
        log_E = torch.log_softmax(self.E_logits, 1)
        return forward_alg(log_pi, log_A, log_E, obs, mask)[0]


hmm = HMM()
opt = torch.optim.Adam(hmm.parameters(), lr=0.1)
sgd_ll = []
for step in range(25):
    opt.zero_grad()
    loss = -hmm(obs, mask).sum() / mask.sum()
    loss.backward()
    opt.step()
    sgd_ll.append(-loss.item())

# d log p(x) / d log E[s, v] = expected number of times state s emits v
log_E_leaf = E.log().clone().requires_grad_()
ll, _ = forward_alg(pi.log(), A.log(), log_E_leaf, obs, mask)
ll.sum().backward()
log_alpha_f = forward_alg(pi.log(), A.log(), E.log(), obs, mask)[1]
log_beta_f = backward_alg(A.log(), E.log(), obs, mask)
gamma_f = torch.exp(log_alpha_f + log_beta_f - ll.detach()[:, None, None]) * mask[..., None]
expected = torch.zeros(S, V).index_put_(
    (torch.arange(S).repeat(B * TMAX), obs.reshape(-1).repeat_interleave(S)),
    gamma_f.reshape(-1), accumulate=True)
grad_is_posterior = bool(torch.allclose(log_E_leaf.grad, expected))

report(
    em_ll=em_ll,
    monotone=monotone,
    posterior_sum_ok=posterior_sum_ok,
    pi=pi.tolist(),
    A=A.tolist(),
    E=E.tolist(),
    paths=[p for p, _ in paths],
    path_scores=[s for _, s in paths],
    sgd_ll=sgd_ll,
    grad_is_posterior=grad_is_posterior,
    expected_counts=expected.tolist(),
)
