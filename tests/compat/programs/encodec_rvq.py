# Neural audio codec quantisers as EnCodec / DAC / vector-quantize-pytorch write them (our own
# condensed rewrite): a SEANet-style Conv1d encoder with weight-normalised convolutions
# (torch.nn.utils.parametrizations.weight_norm), the Snake activation x + (alpha + 1e-9)^-1
# sin(alpha x)^2 with a per-channel alpha Parameter, residual vector quantisation where each
# stage quantises the previous stages' residual (a Python loop over nn.ModuleList codebooks,
# residual = residual - quantized.detach()), DAC's factorised codes (in_proj to a low
# dimension, F.normalize of both latents and the codebook, distances by the expanded
# dot-product form, codes by .max(1)[1], straight-through z_e + (z_q - z_e).detach(),
# commitment and codebook losses by F.mse_loss(reduction="none").mean([1, 2])), quantizer
# dropout decided from a NumPy draw (n_quantizers per batch element, a mask by torch.arange <
# n.unsqueeze(1)), an EMA-updated RVQ variant (cluster sizes and embedding sums under no_grad
# by one_hot.T @ x, Laplace smoothing, the codebook copied in by .data.copy_), decoding from
# codes by summing per-stage embeddings, bitrate from the number of codebooks, a multi-scale
# mel-free spectral loss by torch.stft magnitudes at two window sizes, AdamW with betas (0.8,
# 0.99) and ExponentialLR as DAC trains. At lr 1e-3 (DAC's is 1e-4) the losses went 8.6e-7,
# 3.5e-6, 4.1e-5 apart (relative) over steps 3-5 and a code flipped at step 6: an argmax over
# normalised codes turns float32 rounding into another code.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.utils.parametrizations import weight_norm

rng = np.random.default_rng(2202)


def WNConv1d(*args, **kwargs):
    return weight_norm(nn.Conv1d(*args, **kwargs))


def snake(x, alpha):
    shape = x.shape
    x = x.reshape(shape[0], shape[1], -1)
    x = x + (alpha + 1e-9).reciprocal() * torch.sin(alpha * x).pow(2)
    return x.reshape(shape)


class Snake1d(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x):
        return snake(x, self.alpha)


class Encoder(nn.Module):
    def __init__(self, d=8, latent=16):
        super().__init__()
        self.block = nn.Sequential(
            WNConv1d(1, d, kernel_size=7, padding=3),
            Snake1d(d),
            WNConv1d(d, 2 * d, kernel_size=4, stride=2, padding=1),
            Snake1d(2 * d),
            WNConv1d(2 * d, latent, kernel_size=4, stride=2, padding=1),
        )

    def forward(self, x):
        return self.block(x)


class Decoder(nn.Module):
    def __init__(self, d=8, latent=16):
        super().__init__()
        self.block = nn.Sequential(
            nn.ConvTranspose1d(latent, 2 * d, 4, stride=2, padding=1),
            Snake1d(2 * d),
            nn.ConvTranspose1d(2 * d, d, 4, stride=2, padding=1),
            Snake1d(d),
            nn.Conv1d(d, 1, 7, padding=3),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.block(z)


class VectorQuantize(nn.Module):
    def __init__(self, input_dim, codebook_size, codebook_dim):
        super().__init__()
        self.codebook_size = codebook_size
        self.codebook_dim = codebook_dim
        self.in_proj = WNConv1d(input_dim, codebook_dim, kernel_size=1)
        self.out_proj = WNConv1d(codebook_dim, input_dim, kernel_size=1)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)

    def forward(self, z):
        z_e = self.in_proj(z)
        z_q, indices = self.decode_latents(z_e)
        commitment_loss = F.mse_loss(z_e, z_q.detach(), reduction="none").mean([1, 2])
        codebook_loss = F.mse_loss(z_q, z_e.detach(), reduction="none").mean([1, 2])
        z_q = z_e + (z_q - z_e).detach()
        z_q = self.out_proj(z_q)
        return z_q, commitment_loss, codebook_loss, indices, z_e

    def embed_code(self, embed_id):
        return F.embedding(embed_id, self.codebook.weight)

    def decode_code(self, embed_id):
        return self.embed_code(embed_id).transpose(1, 2)

    def decode_latents(self, latents):
        encodings = latents.transpose(1, 2).reshape(-1, latents.size(1))
        codebook = self.codebook.weight
        encodings = F.normalize(encodings)
        codebook = F.normalize(codebook)
        dist = (
            encodings.pow(2).sum(1, keepdim=True)
            - 2 * encodings @ codebook.t()
            + codebook.pow(2).sum(1, keepdim=True).t()
        )
        indices = (-dist).max(1)[1].reshape(latents.size(0), -1)
        z_q = self.decode_code(indices)
        return z_q, indices


class ResidualVectorQuantize(nn.Module):
    def __init__(
        self, input_dim=16, n_codebooks=4, codebook_size=32, codebook_dim=4, quantizer_dropout=0.0
    ):
        super().__init__()
        self.n_codebooks = n_codebooks
        self.quantizers = nn.ModuleList(
            [VectorQuantize(input_dim, codebook_size, codebook_dim) for _ in range(n_codebooks)]
        )
        self.quantizer_dropout = quantizer_dropout

    def forward(self, z, n_quantizers=None, dropout_draw=None):
        z_q = 0
        residual = z
        commitment_loss = 0
        codebook_loss = 0
        codebook_indices = []
        if n_quantizers is None:
            n_quantizers = self.n_codebooks
        if self.training and dropout_draw is not None:
            n_quantizers = torch.ones((z.shape[0],)) * self.n_codebooks + 1
            dropout = torch.from_numpy(dropout_draw)
            n_dropout = int(z.shape[0] * self.quantizer_dropout)
            n_quantizers[:n_dropout] = dropout[:n_dropout].float()
        for i, quantizer in enumerate(self.quantizers):
            if self.training is False and i >= n_quantizers:
                break
            z_q_i, commitment_loss_i, codebook_loss_i, indices_i, z_e_i = quantizer(residual)
            mask = torch.full((z.shape[0],), fill_value=i) < n_quantizers
            z_q = z_q + z_q_i * mask[:, None, None]
            residual = residual - z_q_i
            commitment_loss += (commitment_loss_i * mask).mean()
            codebook_loss += (codebook_loss_i * mask).mean()
            codebook_indices.append(indices_i)
        codes = torch.stack(codebook_indices, dim=1)
        return z_q, codes, commitment_loss, codebook_loss

    def from_codes(self, codes):
        z_q = 0.0
        for i in range(codes.shape[1]):
            z_p_i = self.quantizers[i].decode_code(codes[:, i, :])
            z_q = z_q + self.quantizers[i].out_proj(z_p_i)
        return z_q


class EMAResidualVQ(nn.Module):
    def __init__(self, dim=16, n_q=3, bins=16, decay=0.9, eps=1e-5):
        super().__init__()
        self.decay, self.eps = decay, eps
        self.register_buffer("embed", torch.zeros(n_q, bins, dim))
        self.register_buffer("cluster_size", torch.zeros(n_q, bins))
        self.register_buffer("embed_avg", torch.zeros(n_q, bins, dim))

    def forward(self, x):  # x: (B, D, T)
        flat = x.transpose(1, 2).reshape(-1, x.shape[1])
        residual = flat
        out = torch.zeros_like(flat)
        all_idx = []
        for q in range(self.embed.shape[0]):
            embed = self.embed[q]
            dist = -(
                residual.pow(2).sum(1, keepdim=True)
                - 2 * residual @ embed.t()
                + embed.pow(2).sum(1)[None]
            )
            idx = dist.max(dim=-1).indices
            quantized = F.embedding(idx, embed)
            if self.training:
                with torch.no_grad():
                    onehot = F.one_hot(idx, embed.shape[0]).type(residual.dtype)
                    self.cluster_size[q].mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
                    embed_sum = onehot.t() @ residual
                    self.embed_avg[q].mul_(self.decay).add_(embed_sum, alpha=1 - self.decay)
                    n = self.cluster_size[q].sum()
                    cluster_size = (
                        (self.cluster_size[q] + self.eps) / (n + embed.shape[0] * self.eps) * n
                    )
                    self.embed[q].data.copy_(self.embed_avg[q] / cluster_size.unsqueeze(1))
            out = out + quantized
            residual = residual - quantized
            all_idx.append(idx)
        return out.view(x.shape[0], x.shape[2], -1).transpose(1, 2), torch.stack(all_idx)


def stft_loss(x, y, windows=(32, 64)):
    loss = 0.0
    for w in windows:
        win = torch.hann_window(w)
        X = torch.stft(
            x.squeeze(1), n_fft=w, hop_length=w // 4, window=win, return_complex=True
        ).abs()
        Y = torch.stft(
            y.squeeze(1), n_fft=w, hop_length=w // 4, window=win, return_complex=True
        ).abs()
        loss = (
            loss + F.l1_loss(torch.log(X.clamp(1e-5)), torch.log(Y.clamp(1e-5))) + F.l1_loss(X, Y)
        )
    return loss


t = np.arange(256) / 256
audio = np.stack(
    [0.5 * np.sin(2 * np.pi * (4 + 3 * k) * t + k) * np.exp(-2 * t * (k % 3)) for k in range(8)]
)
audio = torch.from_numpy(
    (audio + 0.02 * rng.standard_normal(audio.shape))[:, None, :].astype(np.float32)
)

enc, dec = Encoder(), Decoder()
rvq = ResidualVectorQuantize(quantizer_dropout=0.5)
modules = nn.ModuleDict({"enc": enc, "dec": dec, "rvq": rvq})
W = reference_weights(modules)
with torch.no_grad():
    for name, p in modules.named_parameters():
        if "alpha" in name:
            continue
        p.copy_(torch.from_numpy(W[name]))
opt = torch.optim.AdamW(modules.parameters(), lr=1e-4, betas=(0.8, 0.99))
sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.999996)
losses, code_hist = [], []
for step in range(6):
    x = audio[(step % 2) * 4 : (step % 2) * 4 + 4]
    z = enc(x)
    draw = rng.integers(1, rvq.n_codebooks + 1, 4)
    z_q, codes, commit, cb = rvq(z, dropout_draw=draw)
    y = dec(z_q)
    rec = stft_loss(y, x) + F.l1_loss(y, x)
    loss = rec + 0.25 * commit + cb
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    losses.append([rec.item(), commit.item(), cb.item()])
    code_hist.append(codes[0, :, :4].tolist())
modules.eval()
with torch.no_grad():
    z = enc(audio)
    zq_full, codes, _, _ = rvq(z)
    zq_2, codes_2, _, _ = rvq(z, n_quantizers=2)
    from_codes = rvq.from_codes(codes)
    err = [F.mse_loss(dec(q), audio).item() for q in (zq_2, zq_full)]
frames_per_sec = 16000 / 4
bitrate = frames_per_sec * rvq.n_codebooks * math.log2(32) / 1000

ema = EMAResidualVQ()
ema.embed.copy_(torch.from_numpy(rng.standard_normal((3, 16, 16)).astype(np.float32)))
ema.embed_avg.copy_(ema.embed)
ema.cluster_size.fill_(1.0)
ema_err = []
zd = z.detach()
for it in range(4):
    q, idx = ema(zd)
    ema_err.append(F.mse_loss(q, zd).item())

report(
    losses=losses,
    codes=code_hist,
    eval_codes=codes[:2].tolist(),
    codes_2_shape=list(codes_2.shape),
    from_codes_match=bool(torch.allclose(from_codes, zq_full, atol=1e-5)),
    err=err,
    bitrate_kbps=bitrate,
    ema_err=ema_err,
    ema_cluster=ema.cluster_size.sum(1).tolist(),
    alpha=modules["enc"].block[1].alpha.flatten()[:4].tolist(),
)
