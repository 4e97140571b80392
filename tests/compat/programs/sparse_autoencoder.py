# Sparse autoencoders for interpretability as SAELens, OpenAI's sparse_autoencoder and the
# Anthropic / DeepMind write-ups code them, on synthetic "activations" made of sparse features:
# a ReLU SAE with b_dec subtracted before encoding, decoder rows kept at unit norm by
# W_dec.data /= W_dec.data.norm(dim=-1, keepdim=True), the gradient component parallel to each
# row removed (einsum "ij,ij->i" then W_dec.grad -= ...), L1 weighted by decoder norms, b_dec
# initialised at the geometric median by Weiszfeld iterations under no_grad, dead-feature
# tracking by n_forward_passes_since_fired, ghost gradients (exp of the dead pre-activations,
# the residual's norm ratio, a detached scale); a TopK SAE (topk + scatter into zeros, AuxK loss
# on the top dead latents); a JumpReLU SAE whose threshold learns through custom
# autograd.Functions with rectangle-kernel pseudo-derivatives (ctx.save_for_backward, a bandwidth
# constant), an L0 penalty through a Heaviside step; metrics: L0, explained variance, dead
# fraction, cosine similarity of learned decoder rows to the true features (max over rows).
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

torch.manual_seed(0)
rng = np.random.default_rng(13)
D_IN, D_SAE, N_FEAT, N = 8, 24, 12, 256

# activations: sparse non-negative combinations of unit-norm feature directions
feats = rng.standard_normal((N_FEAT, D_IN))
feats /= np.linalg.norm(feats, axis=1, keepdims=True)
codes = rng.exponential(1.0, (N, N_FEAT)) * (rng.uniform(size=(N, N_FEAT)) < 0.15)
acts = codes @ feats + 0.02 * rng.standard_normal((N, D_IN)) + 0.5
X = torch.from_numpy(acts.astype(np.float32))
FEATS = torch.from_numpy(feats.astype(np.float32))


def geometric_median(points, max_iter=20, eps=1e-6):
    with torch.no_grad():
        guess = points.mean(dim=0)
        weights = torch.ones(len(points))
        for _ in range(max_iter):
            prev = guess
            weights = 1 / torch.norm(points - guess, dim=1).clamp(min=eps)
            weights /= weights.sum()
            guess = (weights.unsqueeze(1) * points).sum(dim=0)
            if torch.norm(guess - prev) < 1e-9:
                break
    return guess


class SAE(nn.Module):
    def __init__(self, kind="relu", k=3):
        super().__init__()
        self.kind = kind
        self.k = k
        self.W_enc = nn.Parameter(torch.empty(D_IN, D_SAE))
        self.W_dec = nn.Parameter(torch.empty(D_SAE, D_IN))
        self.b_enc = nn.Parameter(torch.zeros(D_SAE))
        self.b_dec = nn.Parameter(torch.zeros(D_IN))
        if kind == "jumprelu":
            self.log_threshold = nn.Parameter(torch.full((D_SAE,), np.log(0.05)))
        W = reference_weights(self)
        with torch.no_grad():
            self.W_dec.copy_(torch.from_numpy(W["W_dec"]))
            self.W_dec.data /= self.W_dec.data.norm(dim=-1, keepdim=True)
            self.W_enc.copy_(self.W_dec.data.T.clone())
            self.b_enc[-6:] = -5.0  # six latents that start dead: ghost grads / AuxK revive them
        self.register_buffer("n_forward_passes_since_fired", torch.zeros(D_SAE))

    def encode_pre(self, x):
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def encode(self, x):
        pre = self.encode_pre(x)
        if self.kind == "relu":
            return F.relu(pre), pre
        if self.kind == "topk":
            post = F.relu(pre)
            top = torch.topk(post, self.k, dim=-1)
            return torch.zeros_like(post).scatter(-1, top.indices, top.values), pre
        threshold = torch.exp(self.log_threshold)
        return JumpReLU.apply(pre, threshold), pre

    def forward(self, x):
        z, pre = self.encode(x)
        x_hat = z @ self.W_dec + self.b_dec
        with torch.no_grad():
            fired = (z > 0).any(dim=0)
            self.n_forward_passes_since_fired += 1
            self.n_forward_passes_since_fired[fired] = 0
        return x_hat, z, pre

    @torch.no_grad()
    def remove_gradient_parallel_to_decoder_directions(self):
        parallel_component = torch.einsum("ij,ij->i", self.W_dec.grad, self.W_dec.data)
        self.W_dec.grad -= torch.einsum("i,ij->ij", parallel_component, self.W_dec.data)

    @torch.no_grad()
    def set_decoder_norm_to_unit_norm(self):
        self.W_dec.data /= torch.norm(self.W_dec.data, dim=1, keepdim=True)


BANDWIDTH = 0.05


def rectangle(x):
    return ((x > -0.5) & (x < 0.5)).to(x)


class JumpReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, threshold):
        ctx.save_for_backward(x, threshold)
        return x * (x > threshold).to(x)

    @staticmethod
    def backward(ctx, grad_output):
        x, threshold = ctx.saved_tensors
        x_grad = (x > threshold).to(x) * grad_output
        threshold_grad = -(threshold / BANDWIDTH) * rectangle((x - threshold) / BANDWIDTH) \
            * grad_output
        return x_grad, threshold_grad.sum(dim=0)


class Step(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, threshold):
        ctx.save_for_backward(x, threshold)
        return (x > threshold).to(x)

    @staticmethod
    def backward(ctx, grad_output):
        x, threshold = ctx.saved_tensors
        threshold_grad = -(1.0 / BANDWIDTH) * rectangle((x - threshold) / BANDWIDTH) \
            * grad_output
        return torch.zeros_like(x), threshold_grad.sum(dim=0)


def explained_variance(x, x_hat):
    return (1 - (x - x_hat).pow(2).sum(-1) / (x - x.mean(0)).pow(2).sum(-1)).mean().item()


results = {}
median = geometric_median(X)
results["geometric_median"] = median.tolist()
for kind in ("relu", "topk", "jumprelu"):
    sae = SAE(kind)
    with torch.no_grad():
        sae.b_dec.copy_(median)
    opt = torch.optim.Adam(sae.parameters(), lr=3e-3, betas=(0.9, 0.999))
    losses, ghost = [], []
    for step in range(12):
        x = X[(step % 4) * 64:(step % 4) * 64 + 64]
        x_hat, z, pre = sae(x)
        mse = (x_hat - x).pow(2).sum(-1).mean()
        if kind == "relu":
            sparsity = (z * sae.W_dec.norm(dim=1)).sum(-1).mean()
            loss = mse + 0.05 * sparsity
            dead = sae.n_forward_passes_since_fired > 2
            if dead.any():
                # ghost grads: reconstruct the residual with exp(pre) of the dead latents
                residual = (x - x_hat).detach()
                ghost_out = torch.exp(pre[:, dead]) @ sae.W_dec[dead]
                l2_ghost = torch.norm(ghost_out, dim=-1)
                norm_scaling = torch.norm(residual, dim=-1) / (1e-6 + l2_ghost * 2)
                ghost_out = ghost_out * norm_scaling[:, None].detach()
                ghost_mse = (ghost_out - residual).pow(2).sum(-1)
                ghost_mse = ghost_mse * (mse / (ghost_mse.mean() + 1e-6)).detach()
                loss = loss + ghost_mse.mean()
                ghost.append(ghost_mse.mean().item())
        elif kind == "topk":
            loss = mse
            dead = sae.n_forward_passes_since_fired > 2
            if dead.any():
                k_aux = min(2, int(dead.sum()))
                aux_pre = pre.masked_fill(~dead, float("-inf"))
                aux = torch.topk(aux_pre, k_aux, dim=-1)
                z_aux = torch.zeros_like(pre).scatter(-1, aux.indices, F.relu(aux.values))
                aux_mse = ((z_aux @ sae.W_dec) - (x - x_hat).detach()).pow(2).sum(-1).mean()
                loss = loss + 0.125 * aux_mse
                ghost.append(aux_mse.item())
        else:
            l0 = Step.apply(pre, torch.exp(sae.log_threshold)).sum(-1).mean()
            loss = mse + 0.01 * l0
        opt.zero_grad()
        loss.backward()
        sae.remove_gradient_parallel_to_decoder_directions()
        opt.step()
        sae.set_decoder_norm_to_unit_norm()
        losses.append(loss.item())
    with torch.no_grad():
        x_hat, z, _ = sae(X)
        cos = F.normalize(sae.W_dec, dim=1) @ FEATS.T  # (D_SAE, N_FEAT)
        results[kind] = losses
        results[kind + "_aux"] = ghost
        results[kind + "_l0"] = (z > 0).float().sum(-1).mean().item()
        results[kind + "_ev"] = explained_variance(X, x_hat)
        results[kind + "_dead"] = (sae.n_forward_passes_since_fired > 2).float().mean().item()
        results[kind + "_feature_recovery"] = cos.max(dim=0).values.tolist()
        results[kind + "_dec_norms"] = sae.W_dec.norm(dim=1)[:4].tolist()
    if kind == "jumprelu":
        results["thresholds"] = torch.exp(sae.log_threshold.detach())[:6].tolist()

report(**results)
