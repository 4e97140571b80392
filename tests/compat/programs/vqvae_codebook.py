# A VQ-VAE (van den Oord et al., 2017) as the reference implementations write it: a conv
# encoder/decoder with residual blocks (Conv2d, ConvTranspose2d), nearest-codebook quantisation
# by the expanded ||z||^2 - 2 z.e + ||e||^2 distance and argmin (checked against torch.cdist),
# F.embedding lookups, the straight-through estimator z + (z_q - z).detach(), the commitment loss,
# an EMA codebook (VQ-VAE-2 / Sonnet's VectorQuantizerEMA) updated under no_grad with one_hot
# counts, index_add_ sums, Laplace smoothing, mul_/add_(alpha=) on buffers, dead-code restarts,
# and perplexity from bincount and from the mean one-hot.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(7)
K, D = 16, 8  # codebook size, code dimension

# 8x8 "images": sums of two random oriented gratings, in [-1, 1]
yy, xx = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
imgs = []
for _ in range(24):
    a, b = rng.uniform(0.3, 1.2, 2)
    ph = rng.uniform(0, 2 * np.pi)
    imgs.append(np.sin(a * xx + b * yy + ph) * 0.8 + 0.1 * rng.standard_normal((8, 8)))
images = torch.from_numpy(np.stack(imgs)[:, None].astype(np.float32))  # (24, 1, 8, 8)


class ResBlock(nn.Module):
    """The notebook's Residual: its first ReLU is in place, so x + block(x) adds relu(x)."""

    def __init__(self, ch, hidden):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReLU(True),
            nn.Conv2d(ch, hidden, 3, padding=1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, ch, 1, bias=False),
        )

    def forward(self, x):
        return x + self.block(x)


class VectorQuantizerEMA(nn.Module):
    def __init__(self, num_codes, dim, beta=0.25, decay=0.9, eps=1e-5):
        super().__init__()
        self.num_codes, self.dim, self.beta, self.decay, self.eps = num_codes, dim, beta, decay, eps
        init = torch.from_numpy(rng.standard_normal((num_codes, dim)).astype(np.float32) * 0.5)
        self.register_buffer("embedding", init.clone())
        self.register_buffer("ema_count", torch.ones(num_codes))
        self.register_buffer("ema_weight", init.clone())

    def forward(self, z):  # z: (B, D, H, W)
        z = z.permute(0, 2, 3, 1).contiguous()  # (B, H, W, D)
        flat = z.view(-1, self.dim)  # (N, D)
        dist = (
            flat.pow(2).sum(1, keepdim=True)
            - 2 * flat @ self.embedding.t()
            + self.embedding.pow(2).sum(1)
        )  # (N, K)
        codes = torch.argmin(dist, dim=1)  # (N,)
        with torch.no_grad():  # the same codes by torch.cdist, kept to check
            self.cdist_codes = torch.cdist(flat, self.embedding).argmin(dim=1)
        z_q = F.embedding(codes, self.embedding).view_as(z)
        if self.training:
            with torch.no_grad():
                one_hot = F.one_hot(codes, self.num_codes).type(flat.dtype)  # (N, K)
                self.ema_count.mul_(self.decay).add_(one_hot.sum(0), alpha=1 - self.decay)
                n = self.ema_count.sum()
                count = (self.ema_count + self.eps) / (n + self.num_codes * self.eps) * n
                dw = torch.zeros_like(self.ema_weight).index_add_(0, codes, flat)
                self.ema_weight.mul_(self.decay).add_(dw, alpha=1 - self.decay)
                self.embedding.copy_(self.ema_weight / count.unsqueeze(1))
        commitment = F.mse_loss(z, z_q.detach())
        z_q = z + (z_q - z).detach()  # straight-through
        avg_probs = F.one_hot(codes, self.num_codes).float().mean(0)
        perplexity = torch.exp(-torch.sum(avg_probs * torch.log(avg_probs + 1e-10)))
        return z_q.permute(0, 3, 1, 2), self.beta * commitment, perplexity, codes, dist


class VQVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, D, 3, padding=1),
            ResBlock(D, 16),
            ResBlock(D, 16),
        )
        self.vq = VectorQuantizerEMA(K, D)
        self.decoder = nn.Sequential(
            nn.Conv2d(D, 16, 3, padding=1),
            ResBlock(16, 8),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 1, 4, stride=2, padding=1),
            nn.Tanh(),
        )

    def forward(self, x):
        z = self.encoder(x)
        z_q, vq_loss, perplexity, codes, dist = self.vq(z)
        return self.decoder(z_q), vq_loss, perplexity, codes, z, dist


model = VQVAE()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
opt = torch.optim.Adam(model.parameters(), lr=2e-3)

losses, recons, perplexities, usage, restarts = [], [], [], [], []
for step in range(20):
    batch = images[(step * 8) % 24 : (step * 8) % 24 + 8]
    recon, vq_loss, perplexity, codes, z, dist = model(batch)
    recon_loss = F.mse_loss(recon, batch)
    loss = recon_loss + vq_loss
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    recons.append(recon_loss.item())
    perplexities.append(perplexity.item())
    counts = torch.bincount(codes, minlength=K)
    usage.append(counts.tolist())
    assert torch.equal(model.vq.cdist_codes, codes)  # expanded form == cdist
    flat = z.detach().permute(0, 2, 3, 1).reshape(-1, D)
    if step % 5 == 4:  # dead-code restart: unused codes jump to random encoder outputs
        with torch.no_grad():
            dead = (model.vq.ema_count < 0.5).nonzero(as_tuple=True)[0]
            if dead.numel() > 0:
                pick = torch.from_numpy(rng.choice(flat.shape[0], dead.numel(), replace=False))
                model.vq.embedding[dead] = flat[pick]
                model.vq.ema_weight[dead] = flat[pick]
                model.vq.ema_count[dead] = 1.0
            restarts.append(dead.tolist())

model.eval()
with torch.no_grad():
    recon, _, perplexity, codes, z, dist = model(images)
    eval_mse = F.mse_loss(recon, images).item()
    # perplexity again from bincount probabilities
    probs = torch.bincount(codes, minlength=K).float() / codes.numel()
    entropy = -(probs * torch.log(probs.clamp_min(1e-10))).sum()
    code_grid = codes.view(24, 4, 4)[:2].tolist()
    # decode from codes directly: the embedding gathered, moved to channels-first
    z_q = model.vq.embedding[codes].view(24, 4, 4, D).permute(0, 3, 1, 2)
    from_codes = model.decoder(z_q)
    same_decode = torch.allclose(from_codes, recon, atol=1e-5)
    margin = dist.sort(dim=1).values[:, :2].diff(dim=1).min().item()


# ---- the learned-codebook quantiser of the classic notebook: scatter_ one-hots, matmul lookup,
# codebook + commitment losses; its EMA twin re-assigns buffers and Parameters each step ----
class VectorQuantizer(nn.Module):
    def __init__(self, num_codes, dim, beta=0.25):
        super().__init__()
        self.embedding = nn.Embedding(num_codes, dim)
        self.embedding.weight.data.uniform_(-1 / num_codes, 1 / num_codes)
        self.num_codes, self.beta = num_codes, beta

    def forward(self, inputs):  # (N, D)
        distances = (
            torch.sum(inputs**2, dim=1, keepdim=True)
            + torch.sum(self.embedding.weight**2, dim=1)
            - 2 * torch.matmul(inputs, self.embedding.weight.t())
        )
        indices = torch.argmin(distances, dim=1).unsqueeze(1)
        encodings = torch.zeros(indices.shape[0], self.num_codes)
        encodings.scatter_(1, indices, 1)
        quantized = torch.matmul(encodings, self.embedding.weight)
        e_latent = F.mse_loss(quantized.detach(), inputs)
        q_latent = F.mse_loss(quantized, inputs.detach())
        quantized = inputs + (quantized - inputs).detach()
        return quantized, q_latent + self.beta * e_latent, encodings


class ReassigningEMA(nn.Module):
    def __init__(self, num_codes, dim, decay=0.8, eps=1e-5):
        super().__init__()
        self.embedding = nn.Embedding(num_codes, dim)
        self.register_buffer("ema_cluster_size", torch.zeros(num_codes))
        self.ema_w = nn.Parameter(torch.Tensor(num_codes, dim))
        self.decay, self.eps, self.num_codes = decay, eps, num_codes

    def forward(self, inputs):
        d = torch.addmm(
            (inputs**2).sum(1, keepdim=True) + (self.embedding.weight**2).sum(1),
            inputs,
            self.embedding.weight.t(),
            beta=1.0,
            alpha=-2.0,
        )
        encodings = F.one_hot(d.argmin(1), self.num_codes).float()
        if self.training:
            self.ema_cluster_size = self.ema_cluster_size * self.decay + (
                1 - self.decay
            ) * torch.sum(encodings, 0)
            n = torch.sum(self.ema_cluster_size.data)
            self.ema_cluster_size = (
                (self.ema_cluster_size + self.eps) / (n + self.num_codes * self.eps) * n
            )
            dw = torch.matmul(encodings.t(), inputs)
            self.ema_w = nn.Parameter(self.ema_w * self.decay + (1 - self.decay) * dw)
            self.embedding.weight = nn.Parameter(self.ema_w / self.ema_cluster_size.unsqueeze(1))
        quantized = encodings @ self.embedding.weight
        return inputs + (quantized - inputs).detach(), F.mse_loss(quantized.detach(), inputs)


latents = torch.from_numpy(
    (rng.standard_normal((6, 1, D)) * 2 + 0.3 * rng.standard_normal((6, 40, D)))
    .reshape(-1, D)
    .astype(np.float32)
)  # six clusters of 40 points
vq = VectorQuantizer(K, D)
ema = ReassigningEMA(K, D)
for module in (vq, ema):
    W = reference_weights(module)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
proj = nn.Linear(D, D)
with torch.no_grad():
    proj.weight.copy_(torch.eye(D) + 0.1 * torch.from_numpy(W["ema_w"][:D]))
    proj.bias.zero_()
opt2 = torch.optim.SGD(list(vq.parameters()) + list(proj.parameters()), lr=0.2, momentum=0.5)
vq_losses, ema_losses, cluster_sizes = [], [], []
for step in range(12):
    z = proj(latents)
    zq, loss, enc = vq(z)
    loss = loss + F.mse_loss(zq, latents)
    opt2.zero_grad()
    loss.backward()
    opt2.step()
    vq_losses.append(loss.item())
    with torch.no_grad():
        _, commit = ema(latents)
    ema_losses.append(commit.item())
    cluster_sizes.append(ema.ema_cluster_size.sum().item())
used, used_counts = torch.unique(enc.argmax(1), return_counts=True)
counts_scatter = torch.zeros(K).scatter_add_(0, enc.argmax(1), torch.ones(enc.shape[0]))
buffers = sorted(name for name, _ in ema.named_buffers())
params = sorted(name for name, _ in ema.named_parameters())

report(
    vq_losses=vq_losses,
    ema_losses=ema_losses,
    cluster_sizes=cluster_sizes,
    used=used.tolist(),
    used_counts=used_counts.tolist(),
    counts_match=torch.equal(counts_scatter[used].long(), used_counts),
    ema_buffers=buffers,
    ema_params=params,
    vq_codebook_grad=vq.embedding.weight.grad.abs().sum().item(),
    losses=losses,
    recons=recons,
    perplexities=perplexities,
    usage=usage,
    restarts=restarts,
    eval_mse=eval_mse,
    eval_perplexity=perplexity.item(),
    bincount_perplexity=entropy.exp().item(),
    code_grid=code_grid,
    same_decode=same_decode,
    ema_count=model.vq.ema_count.tolist(),
    codebook_norms=model.vq.embedding.norm(dim=1).tolist(),
    margin_positive=margin > 0,
)
