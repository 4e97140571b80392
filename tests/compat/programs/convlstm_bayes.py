# Two research-code staples. A ConvLSTM (Shi et al.) as the most copied implementation writes
# it (ndrplz/ConvLSTM_pytorch: a cell that cats input and hidden state, one Conv2d for the four
# gates split by torch.split, init_hidden with device=self.conv.weight.device, a multi-layer
# wrapper with _extend_for_multilayer, batch_first permutes, torch.stack over time,
# return_all_layers) predicting the next frame of moving-blob videos, then rolled out
# autoregressively. And Bayes by Backprop (Blundell et al.): Bayesian linear layers with
# softplus-parametrised sigmas, weights drawn by the reparametrisation trick with NumPy noise,
# a scale-mixture prior by MixtureSameFamily and by hand with logsumexp, the KL by Monte Carlo
# (Normal.log_prob) and in closed form (kl_divergence, Independent), the minibatch-weighted ELBO,
# and predictive means and variances by sampling. Our own program.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal, kl_divergence

rng = np.random.default_rng(13)


def load_reference(model, scale=1.0):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name] * scale))


class ConvLSTMCell(nn.Module):
    def __init__(self, input_dim, hidden_dim, kernel_size, bias):
        super(ConvLSTMCell, self).__init__()
        self.input_dim = input_dim
        self.hidden_dim = hidden_dim
        self.kernel_size = kernel_size
        self.padding = kernel_size[0] // 2, kernel_size[1] // 2
        self.bias = bias
        self.conv = nn.Conv2d(in_channels=self.input_dim + self.hidden_dim,
                              out_channels=4 * self.hidden_dim,
                              kernel_size=self.kernel_size,
                              padding=self.padding,
                              bias=self.bias)

    def forward(self, input_tensor, cur_state):
        h_cur, c_cur = cur_state
        combined = torch.cat([input_tensor, h_cur], dim=1)
        combined_conv = self.conv(combined)
        cc_i, cc_f, cc_o, cc_g = torch.split(combined_conv, self.hidden_dim, dim=1)
        i = torch.sigmoid(cc_i)
        f = torch.sigmoid(cc_f)
        o = torch.sigmoid(cc_o)
        g = torch.tanh(cc_g)
        c_next = f * c_cur + i * g
        h_next = o * torch.tanh(c_next)
        return h_next, c_next

    def init_hidden(self, batch_size, image_size):
        height, width = image_size
        return (torch.zeros(batch_size, self.hidden_dim, height, width,
                            device=self.conv.weight.device),
                torch.zeros(batch_size, self.hidden_dim, height, width,
                            device=self.conv.weight.device))


class ConvLSTM(nn.Module):
    def __init__(self, input_dim, hidden_dim, kernel_size, num_layers,
                 batch_first=False, bias=True, return_all_layers=False):
        super(ConvLSTM, self).__init__()
        self._check_kernel_size_consistency(kernel_size)
        kernel_size = self._extend_for_multilayer(kernel_size, num_layers)
        hidden_dim = self._extend_for_multilayer(hidden_dim, num_layers)
        if not len(kernel_size) == len(hidden_dim) == num_layers:
            raise ValueError("Inconsistent list length.")
        self.input_dim = input_dim
        self.hidden_dim = hidden_dim
        self.kernel_size = kernel_size
        self.num_layers = num_layers
        self.batch_first = batch_first
        self.bias = bias
        self.return_all_layers = return_all_layers
        cell_list = []
        for i in range(0, self.num_layers):
            cur_input_dim = self.input_dim if i == 0 else self.hidden_dim[i - 1]
            cell_list.append(ConvLSTMCell(input_dim=cur_input_dim,
                                          hidden_dim=self.hidden_dim[i],
                                          kernel_size=self.kernel_size[i],
                                          bias=self.bias))
        self.cell_list = nn.ModuleList(cell_list)

    def forward(self, input_tensor, hidden_state=None):
        if not self.batch_first:
            input_tensor = input_tensor.permute(1, 0, 2, 3, 4)
        b, _, _, h, w = input_tensor.size()
        if hidden_state is not None:
            raise NotImplementedError()
        hidden_state = self._init_hidden(batch_size=b, image_size=(h, w))
        layer_output_list = []
        last_state_list = []
        seq_len = input_tensor.size(1)
        cur_layer_input = input_tensor
        for layer_idx in range(self.num_layers):
            h, c = hidden_state[layer_idx]
            output_inner = []
            for t in range(seq_len):
                h, c = self.cell_list[layer_idx](input_tensor=cur_layer_input[:, t, :, :, :],
                                                 cur_state=[h, c])
                output_inner.append(h)
            layer_output = torch.stack(output_inner, dim=1)
            cur_layer_input = layer_output
            layer_output_list.append(layer_output)
            last_state_list.append([h, c])
        if not self.return_all_layers:
            layer_output_list = layer_output_list[-1:]
            last_state_list = last_state_list[-1:]
        return layer_output_list, last_state_list

    def _init_hidden(self, batch_size, image_size):
        init_states = []
        for i in range(self.num_layers):
            init_states.append(self.cell_list[i].init_hidden(batch_size, image_size))
        return init_states

    @staticmethod
    def _check_kernel_size_consistency(kernel_size):
        if not (isinstance(kernel_size, tuple) or
                (isinstance(kernel_size, list) and all([isinstance(elem, tuple)
                                                        for elem in kernel_size]))):
            raise ValueError("`kernel_size` must be tuple or list of tuples")

    @staticmethod
    def _extend_for_multilayer(param, num_layers):
        if not isinstance(param, list):
            param = [param] * num_layers
        return param


class NextFrame(nn.Module):
    def __init__(self):
        super().__init__()
        self.convlstm = ConvLSTM(1, [6, 6], (3, 3), 2, batch_first=True, return_all_layers=True)
        self.head = nn.Conv2d(6, 1, 1)

    def forward(self, frames):
        outputs, states = self.convlstm(frames)
        last = outputs[-1]
        b, t, c, h, w = last.shape
        pred = self.head(last.reshape(b * t, c, h, w)).view(b, t, 1, h, w)
        return torch.sigmoid(pred), states


def blob_videos(n, T=6, size=8):
    vids = np.zeros((n, T, 1, size, size), dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size]
    for v in vids:
        p = rng.uniform(2, 6, size=2)
        d = rng.uniform(-0.8, 0.8, size=2)
        for t in range(T):
            v[t, 0] = np.exp(-((yy - p[0]) ** 2 + (xx - p[1]) ** 2) / 3.0)
            p = p + d
            for k in range(2):
                if p[k] < 1 or p[k] > size - 2:
                    d[k] = -d[k]
    return torch.from_numpy(vids)


videos = blob_videos(8)
model = NextFrame()
load_reference(model)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
conv_losses, grad_norms = [], []
for step in range(8):
    pred, _ = model(videos[:, :-1])
    loss = F.mse_loss(pred, videos[:, 1:])
    opt.zero_grad()
    loss.backward()
    grad_norms.append(nn.utils.clip_grad_norm_(model.parameters(), 1.0).item())
    opt.step()
    conv_losses.append(loss.item())

with torch.no_grad():
    context = videos[:2, :3]
    frames = [context[:, i] for i in range(3)]
    for _ in range(3):
        pred, states = model(torch.stack(frames, dim=1))
        frames.append(pred[:, -1])
    rollout = torch.stack(frames[3:], 1)
    rollout_mse = F.mse_loss(rollout, videos[:2, 3:]).item()
    state_shapes = [list(h.shape) for h, c in states]


# ---- Bayes by Backprop ---------------------------------------------------------------------
# Blundell et al. used SIGMA_2 = exp(-6): its spike makes the log prior amplify 1-ulp
# differences of exp / log1p (PyTorch's vs NumPy's float32 kernels) by w / SIGMA_2 ** 2; measured
# 2e-7 relative at step 0, 1.0e-5 by step 9 under Adam. exp(-3) keeps the mixture, not the blow-up.
PI, SIGMA_1, SIGMA_2 = 0.5, math.exp(-0), math.exp(-3)


class ScaleMixtureGaussian:
    def __init__(self, pi, sigma1, sigma2):
        self.pi = pi
        self.gaussian1 = torch.distributions.Normal(0, sigma1)
        self.gaussian2 = torch.distributions.Normal(0, sigma2)

    def log_prob(self, input):
        prob1 = torch.exp(self.gaussian1.log_prob(input))
        prob2 = torch.exp(self.gaussian2.log_prob(input))
        return (torch.log(self.pi * prob1 + (1 - self.pi) * prob2)).sum()


class Gaussian:
    def __init__(self, mu, rho):
        self.mu = mu
        self.rho = rho

    @property
    def sigma(self):
        return torch.log1p(torch.exp(self.rho))

    def sample(self, epsilon):
        return self.mu + self.sigma * epsilon

    def log_prob(self, input):
        return (-math.log(math.sqrt(2 * math.pi))
                - torch.log(self.sigma)
                - ((input - self.mu) ** 2) / (2 * self.sigma ** 2)).sum()


class BayesianLinear(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight_mu = nn.Parameter(torch.Tensor(out_features, in_features))
        self.weight_rho = nn.Parameter(torch.Tensor(out_features, in_features))
        self.weight = Gaussian(self.weight_mu, self.weight_rho)
        self.bias_mu = nn.Parameter(torch.Tensor(out_features))
        self.bias_rho = nn.Parameter(torch.Tensor(out_features))
        self.bias = Gaussian(self.bias_mu, self.bias_rho)
        self.weight_prior = ScaleMixtureGaussian(PI, SIGMA_1, SIGMA_2)
        self.bias_prior = ScaleMixtureGaussian(PI, SIGMA_1, SIGMA_2)
        self.log_prior = 0
        self.log_variational_posterior = 0

    def forward(self, input, eps_w, eps_b, sample=False, calculate_log_probs=False):
        if self.training or sample:
            weight = self.weight.sample(eps_w)
            bias = self.bias.sample(eps_b)
        else:
            weight = self.weight.mu
            bias = self.bias.mu
        if self.training or calculate_log_probs:
            self.log_prior = self.weight_prior.log_prob(weight) + self.bias_prior.log_prob(bias)
            self.log_variational_posterior = (self.weight.log_prob(weight)
                                              + self.bias.log_prob(bias))
        else:
            self.log_prior, self.log_variational_posterior = 0, 0
        return F.linear(input, weight, bias)


class BayesianNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = BayesianLinear(1, 16)
        self.l2 = BayesianLinear(16, 1)

    def forward(self, x, eps, sample=False):
        x = F.relu(self.l1(x, eps[0], eps[1], sample))
        return self.l2(x, eps[2], eps[3], sample)

    def log_prior(self):
        return self.l1.log_prior + self.l2.log_prior

    def log_variational_posterior(self):
        return self.l1.log_variational_posterior + self.l2.log_variational_posterior

    def eps_shapes(self):
        return [self.l1.weight_mu.shape, self.l1.bias_mu.shape,
                self.l2.weight_mu.shape, self.l2.bias_mu.shape]


net = BayesianNetwork()
W = reference_weights(net)
with torch.no_grad():
    for name, p in net.named_parameters():
        if name.endswith("rho"):
            p.copy_(torch.from_numpy(W[name]) * 0.1 - 4.0)
        elif name.endswith("weight_mu"):
            p.copy_(torch.from_numpy(W[name]))
        else:
            p.copy_(torch.from_numpy(W[name]))

xs = np.linspace(-2, 2, 40, dtype=np.float32)[:, None]
ys = (np.sin(2 * xs) + 0.1 * rng.standard_normal(xs.shape)).astype(np.float32)
X, Y = torch.from_numpy(xs), torch.from_numpy(ys)
NUM_BATCHES, SAMPLES = 2, 2


def draw_eps():
    return [torch.from_numpy(rng.standard_normal(tuple(s)).astype(np.float32))
            for s in net.eps_shapes()]


bopt = torch.optim.Adam(net.parameters(), lr=2e-2)
elbo_hist = []
for step in range(12):
    net.train()
    batch = slice((step % NUM_BATCHES) * 20, (step % NUM_BATCHES) * 20 + 20)
    outputs, log_priors, log_posts = [], [], []
    for _ in range(SAMPLES):
        outputs.append(net(X[batch], draw_eps()))
        log_priors.append(net.log_prior())
        log_posts.append(net.log_variational_posterior())
    outputs = torch.stack(outputs)
    log_prior = torch.stack(log_priors).mean()
    log_post = torch.stack(log_posts).mean()
    nll = -Normal(outputs, 0.1).log_prob(Y[batch].expand_as(outputs)).sum() / SAMPLES
    loss = (log_post - log_prior) / NUM_BATCHES + nll
    bopt.zero_grad()
    loss.backward()
    bopt.step()
    elbo_hist.append([loss.item(), log_prior.item(), log_post.item(), nll.item()])

# the same prior by MixtureSameFamily, and a closed-form KL to a wide Gaussian prior
w = net.l1.weight.mu.detach()
mix = MixtureSameFamily(Categorical(torch.tensor([PI, 1 - PI])),
                        Normal(torch.zeros(2), torch.tensor([SIGMA_1, SIGMA_2])))
prior_by_hand = net.l1.weight_prior.log_prob(w).item()
prior_by_mixture = mix.log_prob(w).sum().item()
q = Independent(Normal(net.l1.weight_mu, net.l1.weight.sigma), 2)
p = Independent(Normal(torch.zeros_like(w), torch.ones_like(w)), 2)
kl = kl_divergence(q, p)
kl.backward()
kl_grad_rho = net.l1.weight_rho.grad.flatten().tolist()
kl_mc = (q.log_prob(w) - p.log_prob(w)).item()
entropy = q.entropy().item()

net.eval()
with torch.no_grad():
    grid = torch.linspace(-2.5, 2.5, 9).unsqueeze(1)
    mean_pred = net(grid, draw_eps()).squeeze(1).tolist()
    samples = torch.stack([net(grid, draw_eps(), sample=True) for _ in range(5)])
    pred_std = samples.std(0).squeeze(1).tolist()
    softplus_same = torch.allclose(F.softplus(net.l2.weight_rho), net.l2.weight.sigma)

report(conv_losses=conv_losses, grad_norms=grad_norms, rollout_mse=rollout_mse,
       state_shapes=state_shapes, elbo=elbo_hist, prior_by_hand=prior_by_hand,
       prior_by_mixture=prior_by_mixture, kl=kl.item(), kl_grad_rho=kl_grad_rho, kl_mc=kl_mc,
       entropy=entropy, mean_pred=mean_pred, pred_std=pred_std, softplus_same=softplus_same)
