# DCGAN in the shape of the PyTorch DCGAN tutorial (and pytorch/examples/dcgan), shrunk to 8x8
# images: a generator of ConvTranspose2d + BatchNorm2d + ReLU ending in Tanh, a discriminator of
# strided Conv2d + BatchNorm2d + LeakyReLU(0.2), `weights_init` applied with `model.apply`
# (class-name matching, nn.init.normal_ / constant_), then the reference weights copied over it.
# Two Adam optimizers with betas=(0.5, 0.999), BCEWithLogitsLoss, `fake.detach()` in the
# discriminator step, label smoothing on the real labels. Noise and data come from NumPy.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from compat_helpers import reference_weights, report

rng = np.random.default_rng(3)
nz, ngf, ndf, nc, batch = 8, 8, 8, 1, 16


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            # input is Z, going into a convolution: (nz) x 1 x 1
            nn.ConvTranspose2d(nz, ngf * 2, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            # state size. (ngf*2) x 4 x 4
            nn.ConvTranspose2d(ngf * 2, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
            # state size. (nc) x 8 x 8
        )

    def forward(self, input):
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 3, 1, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, 1, 4, 1, 0, bias=False),
        )

    def forward(self, input):
        return self.main(input).view(-1, 1).squeeze(1)


netG = Generator()
netG.apply(weights_init)
netD = Discriminator()
netD.apply(weights_init)
init_std = float(netG.main[0].weight.std())  # random: compared by structure only
bn_bias_zero = bool((netG.main[1].bias == 0).all())
for net in (netG, netD):
    W = reference_weights(net)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.from_numpy(W[name]))

criterion = nn.BCEWithLogitsLoss()
optimizerD = optim.Adam(netD.parameters(), lr=2e-3, betas=(0.5, 0.999))
optimizerG = optim.Adam(netG.parameters(), lr=2e-3, betas=(0.5, 0.999))
fixed_noise = torch.from_numpy(rng.standard_normal((4, nz, 1, 1)).astype(np.float32))


def real_batch():
    # bright squares of random size on a dark background, in [-1, 1]
    img = -np.ones((batch, nc, 8, 8), np.float32)
    for i in range(batch):
        a, b = rng.integers(0, 4, size=2)
        img[i, :, a : a + 4, b : b + 4] = 1.0
    return torch.from_numpy(img + 0.05 * rng.standard_normal(img.shape).astype(np.float32))


real_label, fake_label = 0.9, 0.0
errDs, errGs, D_xs, D_G_zs = [], [], [], []
for i in range(12):
    ############################
    # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
    ###########################
    netD.zero_grad()
    real_cpu = real_batch()
    b_size = real_cpu.size(0)
    label = torch.full((b_size,), real_label, dtype=torch.float)
    output = netD(real_cpu)
    errD_real = criterion(output, label)
    errD_real.backward()
    D_x = torch.sigmoid(output).mean().item()

    noise = torch.from_numpy(rng.standard_normal((b_size, nz, 1, 1)).astype(np.float32))
    fake = netG(noise)
    label.fill_(fake_label)
    output = netD(fake.detach())
    errD_fake = criterion(output, label)
    errD_fake.backward()
    D_G_z1 = torch.sigmoid(output).mean().item()
    errD = errD_real + errD_fake
    optimizerD.step()

    ############################
    # (2) Update G network: maximize log(D(G(z)))
    ###########################
    netG.zero_grad()
    label.fill_(1.0)  # fake labels are real for generator cost
    output = netD(fake)
    errG = criterion(output, label)
    errG.backward()
    D_G_z2 = torch.sigmoid(output).mean().item()
    optimizerG.step()

    errDs.append(errD.item())
    errGs.append(errG.item())
    D_xs.append(D_x)
    D_G_zs.append([D_G_z1, D_G_z2])
    if i % 4 == 0:
        print(
            "[%d] Loss_D: %.4f Loss_G: %.4f D(x): %.4f D(G(z)): %.4f / %.4f"
            % (i, errD.item(), errG.item(), D_x, D_G_z1, D_G_z2)
        )

netG.eval()
with torch.no_grad():
    fake = netG(fixed_noise).detach().cpu()
grid = F.pad(fake, (1, 1, 1, 1), value=-1.0)  # a vutils.make_grid-style border
report(
    errD=errDs,
    errG=errGs,
    D_x=D_xs,
    D_G_z=D_G_zs,
    random_init_std=init_std,
    bn_bias_zero=bn_bias_zero,
    fake_mean=fake.mean().item(),
    fake_range=[fake.min().item(), fake.max().item()],
    grid_shape=list(grid.shape),
    running_mean=netG.main[1].running_mean.tolist(),
    running_var=netG.main[1].running_var.tolist(),
    num_batches_tracked=int(netG.main[1].num_batches_tracked),
)
