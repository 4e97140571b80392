# Two image models whose convolutions pad by reflection or wrap-around: (1) a CycleGAN in the
# shape of junyanz/pytorch-CycleGAN-and-pix2pix, shrunk: ResnetGenerators with
# nn.ReflectionPad2d, InstanceNorm2d, ResnetBlocks (padding_type "reflect" / "replicate" through
# the conv's padding_mode), ConvTranspose2d(output_padding=1), a PatchGAN discriminator, LSGAN
# (MSELoss) adversarial terms, L1 cycle and identity losses, itertools.chain over two generators'
# parameters in one Adam, set_requires_grad on the discriminators, LambdaLR linear decay;
# (2) a Growing Neural Cellular Automaton (Mordvintsev et al. 2020): fixed Sobel / identity
# perception filters as a depthwise conv with padding_mode="circular", a 1x1-conv update rule
# with a zero-initialised last layer, a stochastic update mask and alive masking by max_pool2d,
# trained through the unrolled steps with per-parameter gradient normalisation.
import itertools

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

# data seed 304: every ReLU / LeakyReLU input stays 2.4e-5 or more from 0 (float64), so float32
# rounding cannot flip a gradient mask (with seed 67 one input was 3.8e-7 from 0; see CASES)
rng = np.random.default_rng(304)


def load(model):
    W = reference_weights(model)
    model.load_state_dict({**model.state_dict(), **{k: torch.from_numpy(v) for k, v in W.items()}})
    return model


class ResnetBlock(nn.Module):
    def __init__(self, dim, padding_type, norm_layer):
        super().__init__()
        conv_block = []
        p = 0
        if padding_type == "reflect":
            conv_block += [nn.ReflectionPad2d(1)]
        elif padding_type == "replicate":
            conv_block += [nn.ReplicationPad2d(1)]
        elif padding_type == "zero":
            p = 1
        conv_block += [
            nn.Conv2d(dim, dim, kernel_size=3, padding=p),
            norm_layer(dim),
            nn.ReLU(True),
        ]
        # the second conv pads through padding_mode instead of a padding layer
        mode = "zeros" if padding_type == "zero" else padding_type
        conv_block += [
            nn.Conv2d(dim, dim, kernel_size=3, padding=1, padding_mode=mode),
            norm_layer(dim),
        ]
        self.conv_block = nn.Sequential(*conv_block)

    def forward(self, x):
        return x + self.conv_block(x)  # add skip connections


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf=4, n_blocks=2, padding_type="reflect"):
        super().__init__()
        norm_layer = nn.InstanceNorm2d
        model = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0),
            norm_layer(ngf),
            nn.ReLU(True),
            nn.Conv2d(ngf, ngf * 2, kernel_size=3, stride=2, padding=1),
            norm_layer(ngf * 2),
            nn.ReLU(True),
        ]
        for i in range(n_blocks):
            model += [ResnetBlock(ngf * 2, padding_type=padding_type, norm_layer=norm_layer)]
        model += [
            nn.ConvTranspose2d(ngf * 2, ngf, kernel_size=3, stride=2, padding=1, output_padding=1),
            norm_layer(ngf),
            nn.ReLU(True),
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*model)

    def forward(self, input):
        return self.model(input)


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc, ndf=4):
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, kernel_size=4, stride=1, padding=1, bias=True),
            nn.InstanceNorm2d(ndf * 2, affine=True),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, kernel_size=4, stride=1, padding=1),
        )

    def forward(self, input):
        return self.model(input)


def set_requires_grad(nets, requires_grad=False):
    if not isinstance(nets, list):
        nets = [nets]
    for net in nets:
        if net is not None:
            for param in net.parameters():
                param.requires_grad = requires_grad


netG_A = load(ResnetGenerator(1, 1, padding_type="reflect"))
netG_B = load(ResnetGenerator(1, 1, padding_type="replicate"))
netD_A = load(NLayerDiscriminator(1))
netD_B = load(NLayerDiscriminator(1))
criterionGAN = nn.MSELoss()
criterionCycle = nn.L1Loss()
criterionIdt = nn.L1Loss()
optimizer_G = torch.optim.Adam(
    itertools.chain(netG_A.parameters(), netG_B.parameters()), lr=2e-3, betas=(0.5, 0.999)
)
optimizer_D = torch.optim.Adam(
    itertools.chain(netD_A.parameters(), netD_B.parameters()), lr=2e-3, betas=(0.5, 0.999)
)
n_epochs, n_epochs_decay = 3, 3


def lambda_rule(epoch):
    return 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)


schedulers = [
    torch.optim.lr_scheduler.LambdaLR(o, lr_lambda=lambda_rule) for o in (optimizer_G, optimizer_D)
]


def gan_loss(prediction, target_is_real):
    target = torch.tensor(1.0 if target_is_real else 0.0).expand_as(prediction)
    return criterionGAN(prediction, target)


def images(kind):
    yy, xx = np.mgrid[0:12, 0:12]
    out = []
    for _ in range(2):
        c = rng.uniform(3, 9, size=2)
        if kind == "A":  # discs
            img = ((yy - c[0]) ** 2 + (xx - c[1]) ** 2 < 9).astype(np.float32)
        else:  # stripes
            img = (np.sin(xx * rng.uniform(0.5, 1.5) + c[0]) > 0).astype(np.float32)
        out.append(img * 2 - 1)
    return torch.from_numpy(np.stack(out)[:, None])


cycle_log = []
for epoch in range(n_epochs + n_epochs_decay):
    real_A, real_B = images("A"), images("B")
    fake_B = netG_A(real_A)
    rec_A = netG_B(fake_B)
    fake_A = netG_B(real_B)
    rec_B = netG_A(fake_A)
    # G_A and G_B
    set_requires_grad([netD_A, netD_B], False)
    optimizer_G.zero_grad()
    loss_idt_A = criterionIdt(netG_A(real_B), real_B) * 10 * 0.5
    loss_idt_B = criterionIdt(netG_B(real_A), real_A) * 10 * 0.5
    loss_G_A = gan_loss(netD_A(fake_B), True)
    loss_G_B = gan_loss(netD_B(fake_A), True)
    loss_cycle_A = criterionCycle(rec_A, real_A) * 10
    loss_cycle_B = criterionCycle(rec_B, real_B) * 10
    loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
    loss_G.backward()
    optimizer_G.step()
    # D_A and D_B
    set_requires_grad([netD_A, netD_B], True)
    optimizer_D.zero_grad()
    loss_D_A = (gan_loss(netD_A(real_B), True) + gan_loss(netD_A(fake_B.detach()), False)) * 0.5
    loss_D_A.backward()
    loss_D_B = (gan_loss(netD_B(real_A), True) + gan_loss(netD_B(fake_A.detach()), False)) * 0.5
    loss_D_B.backward()
    optimizer_D.step()
    for s in schedulers:
        s.step()
    cycle_log.append(
        [loss_G.item(), loss_cycle_A.item(), loss_idt_B.item(), loss_D_A.item(), loss_D_B.item(),
         optimizer_G.param_groups[0]["lr"]]
    )  # fmt: skip


# (2) neural cellular automaton on a 10x10 torus
class CAModel(nn.Module):
    def __init__(self, channel_n=8, hidden_size=16):
        super().__init__()
        self.channel_n = channel_n
        ident = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
        sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
        kernel = torch.stack([ident, sobel_x, sobel_x.T])  # (3, 3, 3)
        kernel = kernel.repeat(channel_n, 1, 1)[:, None]  # (3C, 1, 3, 3)
        self.perceive = nn.Conv2d(
            channel_n,
            3 * channel_n,
            3,
            padding=1,
            groups=channel_n,
            bias=False,
            padding_mode="circular",
        )
        self.perceive.weight.data.copy_(kernel)
        self.perceive.requires_grad_(False)
        self.fc0 = nn.Conv2d(3 * channel_n, hidden_size, 1)
        self.fc1 = nn.Conv2d(hidden_size, channel_n, 1, bias=False)

    def alive(self, x):
        return F.max_pool2d(x[:, 3:4], kernel_size=3, stride=1, padding=1) > 0.1

    def forward(self, x, fire):
        pre_life_mask = self.alive(x)
        dx = self.fc1(F.relu(self.fc0(self.perceive(x))))
        x = x + dx * fire
        life_mask = pre_life_mask & self.alive(x)
        return x * life_mask.float()


ca = CAModel()
W = reference_weights(ca)
with torch.no_grad():
    ca.fc0.weight.copy_(torch.from_numpy(W["fc0.weight"]))
    ca.fc0.bias.copy_(torch.from_numpy(W["fc0.bias"]))
    ca.fc1.weight.copy_(torch.from_numpy(W["fc1.weight"]) * 0.1)
target = torch.zeros(1, 4, 10, 10)
target[:, :, 3:7, 3:7] = 1.0
opt = torch.optim.Adam([p for p in ca.parameters() if p.requires_grad], lr=2e-3)
nca_losses = []
for it in range(6):
    x = torch.zeros(2, 8, 10, 10)
    x[:, 3:, 5, 5] = 1.0  # the seed
    for step in range(6):
        fire = torch.from_numpy((rng.random((2, 1, 10, 10)) <= 0.5).astype(np.float32))
        x = ca(x, fire)
    loss = F.mse_loss(x[:, :4], target.expand(2, -1, -1, -1))
    opt.zero_grad()
    loss.backward()
    with torch.no_grad():
        for p in ca.parameters():
            if p.grad is not None:
                p.grad /= p.grad.norm() + 1e-8
    opt.step()
    nca_losses.append(loss.item())
report(
    cycle_log=cycle_log,
    gen_names=[n for n, _ in netG_B.named_parameters()][:6],
    nca_losses=nca_losses,
    alive=int(ca.alive(x).sum()),
    perceive=repr(ca.perceive),
    frozen=[p.requires_grad for p in ca.parameters()],
)
