# Diffusion and flow samplers on a 2-D class-conditional toy set, as the reference code writes
# them: improved-DDPM's cosine schedule (betas clipped at 0.999 from a cumprod), extract() by
# gather + reshape, epsilon-prediction training with class dropout for classifier-free guidance
# (a null class by torch.where), DDIM sampling with eta = 0 and eta > 0 (NumPy noise) over a
# strided timestep list, guidance by torch.cat([x, x]) / chunk(2) and an x0 clamp; Karras et
# al.'s EDM: lognormal sigmas, the c_skip / c_out / c_in / c_noise preconditioner, the loss
# weight, the rho = 7 sigma ladder and the Heun (2nd order) sampler; rectified flow / flow
# matching with an Euler sampler, and MeanFlow's average-velocity loss, whose target needs
# d u / d t along (v, 0, 1) by torch.func.jvp through the network (a stop-gradient target);
# AdamW, an EMA of the weights by torch._foreach_lerp_, torch.no_grad sampling loops (one a
# generator function under @torch.no_grad()).
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

torch.manual_seed(0)
rng = np.random.default_rng(9)


def timestep_embedding(timesteps, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(start=0, end=half,
                                                           dtype=torch.float32) / half)
    args = timesteps[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class Denoiser(nn.Module):
    def __init__(self, num_classes=2, hidden=32, temb=16, n_in=2):
        super().__init__()
        self.temb = temb
        self.class_emb = nn.Embedding(num_classes + 1, temb)  # the last row: no class
        self.time_mlp = nn.Sequential(nn.Linear(temb, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.inp = nn.Linear(n_in, hidden)
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden),
                                                  nn.SiLU(), nn.Linear(hidden, hidden))
                                    for _ in range(2))
        self.out = nn.Linear(hidden, n_in)

    def forward(self, x, t, y, r=None):
        emb = self.time_mlp(timestep_embedding(t, self.temb) + self.class_emb(y))
        if r is not None:  # MeanFlow: condition on the interval too
            emb = emb + self.time_mlp(timestep_embedding(t - r, self.temb))
        h = self.inp(x)
        for blk in self.blocks:
            h = h + blk(h + emb)
        return self.out(h)


def cosine_beta_schedule(timesteps, s=0.008):
    steps = timesteps + 1
    x = torch.linspace(0, timesteps, steps, dtype=torch.float64)
    alphas_cumprod = torch.cos(((x / timesteps) + s) / (1 + s) * math.pi * 0.5) ** 2
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    betas = 1 - (alphas_cumprod[1:] / alphas_cumprod[:-1])
    return torch.clip(betas, 0, 0.999)


def extract(a, t, x_shape):
    b, *_ = t.shape
    out = a.gather(-1, t)
    return out.reshape(b, *((1,) * (len(x_shape) - 1)))


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def sample_data(n):
    y = rng.integers(0, 2, n)
    centers = np.array([[-1.0, 0.5], [1.0, -0.5]])
    x = centers[y] + 0.3 * rng.standard_normal((n, 2))
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)


def np_randn(*shape):
    return torch.from_numpy(rng.standard_normal(shape).astype(np.float32))


T = 100
betas = cosine_beta_schedule(T).float()
alphas = 1.0 - betas
alphas_cumprod = torch.cumprod(alphas, dim=0)
sqrt_alphas_cumprod = torch.sqrt(alphas_cumprod)
sqrt_one_minus_alphas_cumprod = torch.sqrt(1.0 - alphas_cumprod)
null_class = 2
out = {"betas_tail": betas[-3:].tolist(), "abar_mid": alphas_cumprod[T // 2].item()}

# ------------------------------------------------------------------- DDPM training + EMA
model = load(Denoiser())
ema = load(Denoiser())
ema.requires_grad_(False)
opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
ddpm_losses = []
for step in range(15):
    x0, y = sample_data(16)
    drop = torch.from_numpy(rng.uniform(size=16) < 0.2)
    y = torch.where(drop, torch.full_like(y, null_class), y)
    t = torch.from_numpy(rng.integers(0, T, 16))
    noise = np_randn(16, 2)
    x_t = extract(sqrt_alphas_cumprod, t, x0.shape) * x0 + extract(
        sqrt_one_minus_alphas_cumprod, t, x0.shape) * noise
    loss = F.mse_loss(model(x_t, t, y), noise)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    with torch.no_grad():
        torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 0.1)
    ddpm_losses.append(loss.item())
out["ddpm_losses"] = ddpm_losses


@torch.no_grad()
def ddim_sample(net, x, y, steps=10, eta=0.0, guidance=2.0):
    # "leading" spacing (diffusers' DDIMScheduler): starts at T - T // steps, not at T - 1, where
    # the clipped cosine schedule leaves abar = 1e-5 and x0 = x / sqrt(abar) is all rounding
    times = (np.arange(0, steps) * (T // steps))[::-1].astype(np.int64)
    for i, t_cur in enumerate(times):
        t_prev = times[i + 1] if i + 1 < len(times) else -1
        tt = torch.full((x.shape[0],), int(t_cur), dtype=torch.long)
        x_in = torch.cat([x, x])
        y_in = torch.cat([y, torch.full_like(y, null_class)])
        eps_c, eps_u = net(x_in, torch.cat([tt, tt]), y_in).chunk(2)
        eps = eps_u + guidance * (eps_c - eps_u)
        a_t = alphas_cumprod[t_cur]
        a_prev = alphas_cumprod[t_prev] if t_prev >= 0 else torch.tensor(1.0)
        x0_pred = ((x - (1 - a_t).sqrt() * eps) / a_t.sqrt()).clamp(-3, 3)
        sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt()
        dir_xt = (1 - a_prev - sigma**2).sqrt() * eps
        x = a_prev.sqrt() * x0_pred + dir_xt
        if eta > 0 and t_prev >= 0:
            x = x + sigma * np_randn(*x.shape)
    return x


@torch.no_grad()
def ddim_progressive(net, x, y, steps=5):
    """The unguided DDIM loop as a generator yielding every step's sample (a progress loop);
    the decorator covers the generator's body at each resumption."""
    times = (np.arange(0, steps) * (T // steps))[::-1].astype(np.int64)
    for i, t_cur in enumerate(times):
        a_t = alphas_cumprod[t_cur]
        a_prev = alphas_cumprod[times[i + 1]] if i + 1 < len(times) else torch.tensor(1.0)
        eps = net(x, torch.full((x.shape[0],), int(t_cur), dtype=torch.long), y)
        x0_pred = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        x = a_prev.sqrt() * x0_pred + (1 - a_prev).sqrt() * eps
        yield x


x_T = np_randn(8, 2)
progress = [(s.requires_grad, s.abs().mean().item())
            for s in ddim_progressive(model, x_T, torch.tensor([0, 1] * 4))]
out["ddim_progress"] = progress
y_s = torch.tensor([0, 1] * 4)
det = ddim_sample(ema, x_T, y_s, eta=0.0)
sto = ddim_sample(ema, x_T, y_s, eta=0.5)
out["ddim"] = det.tolist()
out["ddim_eta"] = sto.tolist()
out["ddim_class_means"] = [det[y_s == c].mean(0).tolist() for c in (0, 1)]

# ----------------------------------------------------------------------------------- EDM
sigma_data, P_mean, P_std = 0.5, -1.2, 1.2
edm = load(Denoiser())


def edm_denoise(net, x, sigma, y):
    sigma = sigma.reshape(-1, 1)
    c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
    c_out = sigma * sigma_data / (sigma**2 + sigma_data**2).sqrt()
    c_in = 1 / (sigma_data**2 + sigma**2).sqrt()
    c_noise = sigma.log() / 4
    F_x = net(c_in * x, c_noise.flatten() * 100, y)
    return c_skip * x + c_out * F_x


opt = torch.optim.Adam(edm.parameters(), lr=2e-3)
edm_losses = []
for step in range(12):
    x0, y = sample_data(16)
    rnd_normal = np_randn(16, 1)
    sigma = (rnd_normal * P_std + P_mean).exp()
    weight = (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2
    n = np_randn(16, 2) * sigma
    D_yn = edm_denoise(edm, x0 + n, sigma, y)
    loss = (weight * ((D_yn - x0) ** 2)).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    edm_losses.append(loss.item())
out["edm_losses"] = edm_losses


@torch.no_grad()
def edm_sampler(net, latents, y, num_steps=8, sigma_min=0.002, sigma_max=80, rho=7):
    step_indices = torch.arange(num_steps, dtype=torch.float64)
    t_steps = (sigma_max ** (1 / rho) + step_indices / (num_steps - 1) * (
        sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    t_steps = torch.cat([torch.as_tensor(t_steps), torch.zeros_like(t_steps[:1])])
    x_next = latents.to(torch.float64) * t_steps[0]
    for i, (t_cur, t_next) in enumerate(zip(t_steps[:-1], t_steps[1:])):
        x_cur = x_next
        denoised = edm_denoise(net, x_cur.float(), t_cur.float().expand(len(y)), y).to(
            torch.float64)
        d_cur = (x_cur - denoised) / t_cur
        x_next = x_cur + (t_next - t_cur) * d_cur
        if i < num_steps - 1:
            denoised = edm_denoise(net, x_next.float(), t_next.float().expand(len(y)), y).to(
                torch.float64)
            d_prime = (x_next - denoised) / t_next
            x_next = x_cur + (t_next - t_cur) * (0.5 * d_cur + 0.5 * d_prime)
    return x_next


heun = edm_sampler(edm, np_randn(6, 2), torch.tensor([0, 1, 0, 1, 0, 1]))
out["edm_samples"] = heun.tolist()
out["edm_dtype"] = str(heun.dtype).split(".")[-1]  # descent's dtypes print as descent.*

# ------------------------------------------------------------ flow matching and MeanFlow
fm = load(Denoiser())
opt = torch.optim.Adam(fm.parameters(), lr=2e-3)
fm_losses = []
for step in range(12):
    x1, y = sample_data(16)
    x0 = np_randn(16, 2)
    t = torch.from_numpy(rng.uniform(size=16).astype(np.float32))
    xt = (1 - t[:, None]) * x0 + t[:, None] * x1
    loss = F.mse_loss(fm(xt, t * 1000, y), x1 - x0)
    opt.zero_grad()
    loss.backward()
    opt.step()
    fm_losses.append(loss.item())
out["fm_losses"] = fm_losses

with torch.no_grad():
    x = np_randn(6, 2)
    yy = torch.tensor([0, 1, 0, 1, 0, 1])
    for i in range(10):
        t = torch.full((6,), i / 10)
        x = x + 0.1 * fm(x, t * 1000, yy)
out["euler"] = x.tolist()

mf = load(Denoiser())
opt = torch.optim.Adam(mf.parameters(), lr=1e-3)
mf_losses = []
for step in range(8):
    x1, y = sample_data(12)
    e = np_randn(12, 2)
    tr = torch.from_numpy(np.sort(rng.uniform(size=(12, 2)), axis=1).astype(np.float32))
    r, t = tr[:, 0], tr[:, 1]
    z = (1 - t[:, None]) * x1 + t[:, None] * e  # MeanFlow's convention: t = 1 is noise
    v = e - x1

    def u_fn(z, r, t, y=y):
        return mf(z, t * 1000, y, r=r * 1000)

    u, dudt = torch.func.jvp(u_fn, (z, r, t), (v, torch.zeros_like(r), torch.ones_like(t)))
    u_tgt = v - (t - r)[:, None] * dudt
    loss = F.mse_loss(u, u_tgt.detach())
    opt.zero_grad()
    loss.backward()
    opt.step()
    mf_losses.append([loss.item(), dudt.abs().mean().item()])
out["meanflow"] = mf_losses
with torch.no_grad():
    z = np_randn(4, 2)
    one_step = z - mf(z, torch.ones(4) * 1000, torch.tensor([0, 1, 0, 1]), r=torch.zeros(4))
out["meanflow_1step"] = one_step.tolist()
report(**out)
