# A small GAN trained the usual way: two models, two Adam optimizers with betas=(0.5, 0.999),
# BCEWithLogitsLoss, fake samples detached for the discriminator step, and a WGAN-GP style
# gradient penalty through torch.autograd.grad(create_graph=True). Our own program; the noise
# and the interpolation weights come from NumPy so that both libraries draw the same.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(21)
latent, batch = 4, 32


def load_reference(model):
    W = reference_weights(model)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in W.items()})
    return model


G = load_reference(nn.Sequential(nn.Linear(latent, 16), nn.LeakyReLU(0.2), nn.Linear(16, 2)))
D = load_reference(nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1)))
criterion = nn.BCEWithLogitsLoss()
opt_g = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))


def real_batch():
    angle = rng.uniform(0, 2 * np.pi, size=batch)
    ring = np.stack([np.cos(angle), np.sin(angle)], axis=1) + 0.05 * rng.standard_normal((batch, 2))
    return torch.from_numpy(ring.astype(np.float32))


def noise():
    return torch.from_numpy(rng.standard_normal((batch, latent)).astype(np.float32))


def gradient_penalty(D, real, fake):
    alpha = torch.from_numpy(rng.random((batch, 1)).astype(np.float32))
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = D(mixed)
    grads = torch.autograd.grad(
        outputs=scores,
        inputs=mixed,
        grad_outputs=torch.ones_like(scores),
        create_graph=True,
        retain_graph=True,
    )[0]
    return ((grads.norm(2, dim=1) - 1) ** 2).mean()


real_label, fake_label = 1.0, 0.0
d_losses, g_losses, penalties = [], [], []
for step in range(25):
    # (1) discriminator: maximise log D(x) + log(1 - D(G(z)))
    real = real_batch()
    fake = G(noise())
    d_real = D(real)
    d_fake = D(fake.detach())
    gp = gradient_penalty(D, real, fake.detach())
    loss_d = (
        criterion(d_real, torch.full_like(d_real, real_label))
        + criterion(d_fake, torch.full_like(d_fake, fake_label))
        + 0.1 * gp
    )
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()

    # (2) generator: maximise log D(G(z)); D's parameters are not updated here
    for p in D.parameters():
        p.requires_grad_(False)
    d_out = D(G(noise()))
    loss_g = criterion(d_out, torch.ones(batch, 1))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    for p in D.parameters():
        p.requires_grad_(True)

    d_losses.append(loss_d.item())
    g_losses.append(loss_g.item())
    penalties.append(gp.item())
    if step % 5 == 0:
        print(f"[{step}] Loss_D: {loss_d.item():.4f} Loss_G: {loss_g.item():.4f} GP: {gp:.4f}")

with torch.no_grad():
    samples = G(noise())
radius = samples.norm(dim=1).mean().item()
report(d_losses=d_losses, g_losses=g_losses, penalties=penalties, radius=radius)
