# GANs as eriklindernoren/PyTorch-GAN's implementations write them (our own condensed rewrite
# of its acgan / infogan / lsgan scripts), shrunk to 1-D "images": the opening lines
# `cuda = True if torch.cuda.is_available() else False`, `Tensor = torch.cuda.FloatTensor if cuda
# else torch.FloatTensor` (and LongTensor), isinstance checks against both, weights_init_normal
# through classname.find("Conv") / find("BatchNorm"), torch.nn.init.normal_(m.weight.data, ...),
# labels as Variable(Tensor(batch, 1).fill_(1.0), requires_grad=False), noise as
# Variable(Tensor(np.random.normal(0, 1, (batch, latent_dim)))) from a seeded NumPy generator,
# imgs.type(Tensor), an auxiliary classifier (ACGAN) with CrossEntropyLoss on LongTensor labels,
# InfoGAN's to_categorical by np.eye, a continuous code, itertools.chain of both networks'
# parameters for the info loss, LSGAN's MSELoss, accuracy by np.concatenate / np.argmax of
# .data.cpu().numpy(), and BatchNorm1d(..., 0.8) with the momentum passed positionally (eps).
import itertools

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.autograd import Variable

cuda = True if torch.cuda.is_available() else False
Tensor = torch.cuda.FloatTensor if cuda else torch.FloatTensor
LongTensor = torch.cuda.LongTensor if cuda else torch.LongTensor

latent_dim, n_classes, code_dim, img_size, batch_size = 6, 3, 2, 12, 16
np_rng = np.random.RandomState(0)


def weights_init_normal(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        torch.nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        torch.nn.init.normal_(m.weight.data, 1.0, 0.02)
        torch.nn.init.constant_(m.bias.data, 0.0)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.label_emb = nn.Embedding(n_classes, latent_dim)
        self.init_size = img_size // 4
        self.l1 = nn.Sequential(nn.Linear(latent_dim + code_dim, 8 * self.init_size))
        self.conv_blocks = nn.Sequential(
            nn.BatchNorm1d(8),
            nn.Upsample(scale_factor=2),
            nn.Conv1d(8, 8, 3, stride=1, padding=1),
            nn.BatchNorm1d(8, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2),
            nn.Conv1d(8, 4, 3, stride=1, padding=1),
            nn.BatchNorm1d(4, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv1d(4, 1, 3, stride=1, padding=1),
            nn.Tanh(),
        )

    def forward(self, noise, labels, code):
        gen_input = torch.cat((torch.mul(self.label_emb(labels), noise), code), -1)
        out = self.l1(gen_input)
        out = out.view(out.shape[0], 8, self.init_size)
        return self.conv_blocks(out)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()

        def discriminator_block(in_filters, out_filters, bn=True):
            block = [
                nn.Conv1d(in_filters, out_filters, 3, 2, 1),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Dropout(0.0),
            ]
            if bn:
                block.append(nn.BatchNorm1d(out_filters, 0.8))
            return block

        self.conv_blocks = nn.Sequential(
            *discriminator_block(1, 4, bn=False), *discriminator_block(4, 8)
        )
        ds_size = img_size // 2**2
        self.adv_layer = nn.Sequential(nn.Linear(8 * ds_size, 1), nn.Sigmoid())
        self.aux_layer = nn.Sequential(nn.Linear(8 * ds_size, n_classes), nn.Softmax(dim=1))
        self.latent_layer = nn.Sequential(nn.Linear(8 * ds_size, code_dim))

    def forward(self, img):
        out = self.conv_blocks(img)
        out = out.view(out.shape[0], -1)
        return self.adv_layer(out), self.aux_layer(out), self.latent_layer(out)


def to_categorical(y, num_columns):
    y_cat = np.zeros((y.shape[0], num_columns))
    y_cat[range(y.shape[0]), y] = 1.0
    return Variable(Tensor(y_cat))


adversarial_loss = torch.nn.BCELoss()
auxiliary_loss = torch.nn.CrossEntropyLoss()
continuous_loss = torch.nn.MSELoss()
generator, discriminator = Generator(), Discriminator()
for net in (generator, discriminator):
    W = reference_weights(net)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
generator.apply(lambda m: None)
stats = [float(m.weight.data.mean()) for m in generator.modules() if isinstance(m, nn.BatchNorm1d)]

optimizer_G = torch.optim.SGD(generator.parameters(), lr=0.05, momentum=0.5)
optimizer_D = torch.optim.SGD(discriminator.parameters(), lr=0.05, momentum=0.5)
optimizer_info = torch.optim.SGD(
    itertools.chain(generator.parameters(), discriminator.parameters()), lr=0.05, momentum=0.5
)

t = np.linspace(0, 1, img_size)
real_np = np.stack([np.sin(2 * np.pi * (k + 1) * t) for k in range(n_classes)])
log = {"d": [], "g": [], "info": [], "acc": []}
for i in range(6):
    labels_np = np_rng.randint(0, n_classes, batch_size)
    imgs = torch.from_numpy(
        real_np[labels_np][:, None] + 0.1 * np_rng.normal(size=(batch_size, 1, img_size))
    )
    labels = Variable(imgs.new_tensor(labels_np).type(LongTensor))
    valid = Variable(Tensor(batch_size, 1).fill_(1.0), requires_grad=False)
    fake = Variable(Tensor(batch_size, 1).fill_(0.0), requires_grad=False)
    real_imgs = Variable(imgs.type(Tensor))

    optimizer_G.zero_grad()
    z = Variable(Tensor(np_rng.normal(0, 1, (batch_size, latent_dim))))
    gen_labels = Variable(LongTensor(np_rng.randint(0, n_classes, batch_size)))
    code_input = Variable(Tensor(np_rng.uniform(-1, 1, (batch_size, code_dim))))
    gen_imgs = generator(z, gen_labels, code_input)
    validity, pred_label, _ = discriminator(gen_imgs)
    g_loss = 0.5 * (adversarial_loss(validity, valid) + auxiliary_loss(pred_label, gen_labels))
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    real_pred, real_aux, _ = discriminator(real_imgs)
    d_real_loss = (adversarial_loss(real_pred, valid) + auxiliary_loss(real_aux, labels)) / 2
    fake_pred, fake_aux, _ = discriminator(gen_imgs.detach())
    d_fake_loss = (continuous_loss(fake_pred, fake) + auxiliary_loss(fake_aux, gen_labels)) / 2
    d_loss = (d_real_loss + d_fake_loss) / 2
    pred = np.concatenate([real_aux.data.cpu().numpy(), fake_aux.data.cpu().numpy()], axis=0)
    gt = np.concatenate([labels.data.cpu().numpy(), gen_labels.data.cpu().numpy()], axis=0)
    d_acc = np.mean(np.argmax(pred, axis=1) == gt)
    d_loss.backward()
    optimizer_D.step()

    optimizer_info.zero_grad()
    sampled_labels = np_rng.randint(0, n_classes, batch_size)
    gt_labels = Variable(LongTensor(sampled_labels), requires_grad=False)
    code_input = Variable(Tensor(np_rng.uniform(-1, 1, (batch_size, code_dim))))
    z = Variable(Tensor(np_rng.normal(0, 1, (batch_size, latent_dim))))
    cat = to_categorical(sampled_labels, num_columns=n_classes)
    gen_imgs = generator(z, gt_labels, code_input)
    _, pred_label, pred_code = discriminator(gen_imgs)
    info_loss = (
        auxiliary_loss(pred_label, gt_labels)
        + 0.1 * continuous_loss(pred_code, code_input)
        + 0.0 * cat.sum()
    )
    info_loss.backward()
    optimizer_info.step()
    log["d"].append(d_loss.item())
    log["g"].append(g_loss.item())
    log["info"].append(info_loss.item())
    log["acc"].append(float(d_acc))

report(
    **log,
    bn_eps=[m.eps for m in generator.modules() if isinstance(m, nn.BatchNorm1d)],
    is_float=[
        isinstance(real_imgs, torch.FloatTensor),
        isinstance(gt_labels, torch.LongTensor),
        cuda,
    ],
    gen_sample=gen_imgs[0, 0].tolist(),
    stats=stats,
)
