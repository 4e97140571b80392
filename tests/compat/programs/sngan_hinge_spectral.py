# An SNGAN as the pytorch-spectral-normalization-gan / mimicry repositories write it (condensed:
# 8x8 images): torch.nn.utils.spectral_norm (the hook API) on every conv and linear of the
# discriminator, its weight_orig parameter and weight_u / weight_v buffers set from NumPy through
# load_state_dict (so both libraries start their power iteration alike), n_power_iterations=1
# updated in train mode and frozen in eval mode, the hinge losses (F.relu(1.0 - d_real).mean() +
# F.relu(1.0 + d_fake).mean(); -d_fake.mean()), Adam with betas (0.0, 0.9), n_dis = 2 discriminator
# steps per generator step, a generator with ConvTranspose2d (no bias in front of BatchNorm, as
# DCGAN's) + BatchNorm2d and tanh, fixed NumPy noise, the largest singular value of each normalised
# weight checked by torch.linalg.matrix_norm(ord=2), and torch.nn.utils.remove_spectral_norm before
# saving.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.utils import remove_spectral_norm, spectral_norm

rng = np.random.default_rng(3939)
nz = 8


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(nz, 16 * 2 * 2)
        self.main = nn.Sequential(
            nn.BatchNorm2d(16), nn.ReLU(True),
            nn.ConvTranspose2d(16, 8, 4, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(True),
            nn.ConvTranspose2d(8, 3, 4, 2, 1), nn.Tanh(),
        )  # fmt: skip

    def forward(self, z):
        return self.main(self.l1(z).view(-1, 16, 2, 2))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            spectral_norm(nn.Conv2d(3, 8, 3, 1, 1)), nn.LeakyReLU(0.1),
            spectral_norm(nn.Conv2d(8, 16, 4, 2, 1)), nn.LeakyReLU(0.1),
            spectral_norm(nn.Conv2d(16, 16, 4, 2, 1)), nn.LeakyReLU(0.1),
        )  # fmt: skip
        self.fc = spectral_norm(nn.Linear(16 * 2 * 2, 1))

    def forward(self, x):
        return self.fc(self.main(x).view(x.size(0), -1))


G, D = Generator(), Discriminator()
WG = reference_weights(G)
with torch.no_grad():
    for name, p in G.named_parameters():
        p.copy_(torch.from_numpy(WG[name]))
sd = D.state_dict()
WD = reference_weights(D)
for k in list(sd):
    if k in WD:
        sd[k] = torch.from_numpy(WD[k])
    elif k.endswith("weight_u") or k.endswith("weight_v"):
        v = rng.standard_normal(tuple(sd[k].shape)).astype(np.float32)
        sd[k] = torch.from_numpy(v / np.linalg.norm(v))
D.load_state_dict(sd)
keys = sorted(D.state_dict().keys())
optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.0, 0.9))
optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.0, 0.9))
real = torch.from_numpy(np.tanh(rng.standard_normal((32, 3, 8, 8))).astype(np.float32))
fixed_z = torch.from_numpy(rng.standard_normal((4, nz)).astype(np.float32))
log = []
for it in range(4):
    for n in range(2):
        z = torch.from_numpy(rng.standard_normal((8, nz)).astype(np.float32))
        x = real[(it * 2 + n) * 4 % 32 :][:8]
        d_real = D(x)
        d_fake = D(G(z).detach())
        errD = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
        optD.zero_grad()
        errD.backward()
        optD.step()
    z = torch.from_numpy(rng.standard_normal((8, nz)).astype(np.float32))
    errG = -D(G(z)).mean()
    optG.zero_grad()
    errG.backward()
    optG.step()
    log.append([errD.item(), errG.item()])
sigmas = []
with torch.no_grad():
    for m in D.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight.reshape(m.weight.shape[0], -1)
            sigmas.append(torch.linalg.matrix_norm(w, ord=2).item())
D.eval()
u_before = D.fc.weight_u.clone()
with torch.no_grad():
    d_eval = D(real[:4])
    D(real[:4])
u_frozen = torch.equal(u_before, D.fc.weight_u)
G.eval()
with torch.no_grad():
    sample = G(fixed_z)
for m in D.modules():
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        remove_spectral_norm(m)
with torch.no_grad():
    d_removed = D(real[:4])
report(
    keys=keys,
    log=log,
    sigmas=sigmas,
    d_eval=d_eval.flatten().tolist(),
    u_frozen=u_frozen,
    removed_same=torch.allclose(d_eval, d_removed, atol=1e-6),
    removed_keys=sorted(k for k in D.state_dict() if "fc" in k),
    sample=sample[0, 0, :3].tolist(),
)
