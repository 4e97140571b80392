# A denoising diffusion model (Ho et al. 2020) in the shape of lucidrains' denoising-diffusion-
# pytorch and the "annotated diffusion" notebook, on 2-D points: linear and cosine beta
# schedules (torch.linspace, torch.cos, torch.cumprod, F.pad of alphas_cumprod_prev), registered
# buffers cast with .to(torch.float32), the `extract(a, t, x_shape)` gather helper, sinusoidal
# time embeddings, q_sample, an epsilon-prediction MLP trained with F.mse_loss, an EMA of the
# weights updated with torch._foreach_lerp_ (timm's ModelEmaV3), and ancestral sampling with
# posterior variance clipping; the noise comes from NumPy so both runs draw the same.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(101)


def linear_beta_schedule(timesteps):
    scale = 1000 / timesteps
    return torch.linspace(scale * 0.0001, scale * 0.02, timesteps, dtype=torch.float64)


def cosine_beta_schedule(timesteps, s=0.008):
    steps = timesteps + 1
    t = torch.linspace(0, timesteps, steps, dtype=torch.float64) / timesteps
    alphas_cumprod = torch.cos((t + s) / (1 + s) * math.pi * 0.5) ** 2
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    betas = 1 - (alphas_cumprod[1:] / alphas_cumprod[:-1])
    return torch.clip(betas, 0, 0.999)


def extract(a, t, x_shape):
    b, *_ = t.shape
    out = a.gather(-1, t)
    return out.reshape(b, *((1,) * (len(x_shape) - 1)))


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim, theta=10000):
        super().__init__()
        self.dim, self.theta = dim, theta

    def forward(self, x):
        half_dim = self.dim // 2
        emb = math.log(self.theta) / (half_dim - 1)
        emb = torch.exp(torch.arange(half_dim, device=x.device) * -emb)
        emb = x[:, None] * emb[None, :]
        return torch.cat((emb.sin(), emb.cos()), dim=-1)


class Denoiser(nn.Module):
    def __init__(self, dim=32):
        super().__init__()
        self.time_mlp = nn.Sequential(
            SinusoidalPosEmb(16), nn.Linear(16, dim), nn.GELU(), nn.Linear(dim, dim)
        )
        self.inp = nn.Linear(2, dim)
        self.blocks = nn.ModuleList(
            [nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.SiLU()) for _ in range(2)]
        )
        self.out = nn.Linear(dim, 2)

    def forward(self, x, t):
        h = self.inp(x) + self.time_mlp(t.float())
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


class GaussianDiffusion(nn.Module):
    def __init__(self, model, timesteps=50, schedule="cosine"):
        super().__init__()
        self.model = model
        betas = (
            cosine_beta_schedule(timesteps)
            if schedule == "cosine"
            else linear_beta_schedule(timesteps)
        )
        alphas = 1.0 - betas
        alphas_cumprod = torch.cumprod(alphas, dim=0)
        alphas_cumprod_prev = F.pad(alphas_cumprod[:-1], (1, 0), value=1.0)
        self.num_timesteps = int(betas.shape[0])

        def register_buffer(name, val):
            self.register_buffer(name, val.to(torch.float32))

        register_buffer("betas", betas)
        register_buffer("alphas_cumprod", alphas_cumprod)
        register_buffer("sqrt_alphas_cumprod", torch.sqrt(alphas_cumprod))
        register_buffer("sqrt_one_minus_alphas_cumprod", torch.sqrt(1.0 - alphas_cumprod))
        register_buffer("sqrt_recip_alphas_cumprod", torch.sqrt(1.0 / alphas_cumprod))
        register_buffer("sqrt_recipm1_alphas_cumprod", torch.sqrt(1.0 / alphas_cumprod - 1))
        posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        register_buffer("posterior_variance", posterior_variance)
        register_buffer(
            "posterior_log_variance_clipped", torch.log(posterior_variance.clamp(min=1e-20))
        )
        register_buffer(
            "posterior_mean_coef1", betas * torch.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        )
        register_buffer(
            "posterior_mean_coef2",
            (1.0 - alphas_cumprod_prev) * torch.sqrt(alphas) / (1.0 - alphas_cumprod),
        )

    def q_sample(self, x_start, t, noise):
        return (
            extract(self.sqrt_alphas_cumprod, t, x_start.shape) * x_start
            + extract(self.sqrt_one_minus_alphas_cumprod, t, x_start.shape) * noise
        )

    def p_losses(self, x_start, t, noise):
        x = self.q_sample(x_start=x_start, t=t, noise=noise)
        model_out = self.model(x, t)
        return F.mse_loss(model_out, noise, reduction="none").mean(dim=1).mean()

    @torch.no_grad()
    def p_sample(self, x, t, noise):
        b = x.shape[0]
        batched_times = torch.full((b,), t, dtype=torch.long)
        pred_noise = self.model(x, batched_times)
        x_start = (
            extract(self.sqrt_recip_alphas_cumprod, batched_times, x.shape) * x
            - extract(self.sqrt_recipm1_alphas_cumprod, batched_times, x.shape) * pred_noise
        ).clamp_(-2.0, 2.0)
        model_mean = (
            extract(self.posterior_mean_coef1, batched_times, x.shape) * x_start
            + extract(self.posterior_mean_coef2, batched_times, x.shape) * x
        )
        log_var = extract(self.posterior_log_variance_clipped, batched_times, x.shape)
        noise = noise if t > 0 else torch.zeros_like(x)
        return model_mean + (0.5 * log_var).exp() * noise


def two_moons(n):
    a = rng.uniform(0, np.pi, n)
    up = rng.random(n) < 0.5
    pts = np.stack(
        [np.where(up, np.cos(a), 1 - np.cos(a)), np.where(up, np.sin(a), 0.5 - np.sin(a))], 1
    )
    return torch.from_numpy((pts - [0.5, 0.25]).astype(np.float32))


results = {}
for schedule in ("linear", "cosine"):
    model = Denoiser()
    W = reference_weights(model)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in W.items()})
    diffusion = GaussianDiffusion(model, timesteps=50, schedule=schedule)
    ema_model = Denoiser()
    ema_model.load_state_dict(model.state_dict())
    ema_model.requires_grad_(False)
    opt = torch.optim.Adam(diffusion.parameters(), lr=2e-3, betas=(0.9, 0.99))
    losses = []
    for step in range(30):
        x0 = two_moons(64)
        t = torch.from_numpy(rng.integers(0, diffusion.num_timesteps, 64))
        noise = torch.from_numpy(rng.standard_normal((64, 2)).astype(np.float32))
        loss = diffusion.p_losses(x0, t, noise)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(diffusion.parameters(), 1.0)
        opt.step()
        with torch.no_grad():  # ModelEmaV3's update
            ema_params = tuple(ema_model.parameters())
            model_params = tuple(model.parameters())
            torch._foreach_lerp_(ema_params, model_params, weight=1.0 - 0.9)
        losses.append(loss.item())
    diffusion.model = ema_model
    x = torch.from_numpy(rng.standard_normal((16, 2)).astype(np.float32))
    for t in reversed(range(0, diffusion.num_timesteps)):
        x = diffusion.p_sample(
            x, t, torch.from_numpy(rng.standard_normal((16, 2)).astype(np.float32))
        )
    results[schedule] = {
        "losses": losses,
        "buffers": [n for n, _ in diffusion.named_buffers()][:4],
        "alphas_cumprod_end": diffusion.alphas_cumprod[-1].item(),
        "post_logvar": diffusion.posterior_log_variance_clipped[:3].tolist(),
        "samples_mean": x.mean(0).tolist(),
        "samples_std": x.std(0).tolist(),
        "ema_norms": [n.item() for n in torch._foreach_norm(list(ema_model.parameters()))][:4],
    }
report(**results)
