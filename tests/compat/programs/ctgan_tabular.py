# CTGAN (Xu et al. 2019) on a small mixed-type table, as the sdv-dev implementation writes
# its pieces in plain PyTorch: mode-specific normalisation of continuous columns (a fixed
# 3-component mixture per column, the value as a normalised scalar within its sampled mode plus
# a one-hot of the mode, tanh / clamp to [-0.99, 0.99]), discrete columns one-hot; the
# conditional vector and training-by-sampling (a discrete column and a category by log
# frequency, rows drawn matching it); a residual generator (Linear + BatchNorm1d + ReLU,
# concatenated outputs), the output activations applied per span (tanh for scalars,
# gumbel_softmax(tau=0.2, hard=False) for one-hots: the noise from NumPy through an explicit
# Gumbel transform so both libraries agree); a PacGAN discriminator that packs pac=4 rows
# with view(-1, pac * dim); WGAN-GP with the packed gradient penalty; Adam(betas=(0.5, 0.9));
# the generator's conditional cross-entropy; and inverse transformation back to a table.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(137)
n = 96
age = np.concatenate([rng.normal(25, 3, n // 2), rng.normal(55, 5, n // 2)])
income = np.exp(rng.normal(3, 0.4, n))
city = rng.choice(3, n, p=[0.6, 0.3, 0.1])
member = (age > 40).astype(int) ^ (rng.uniform(size=n) < 0.1)

# mode-specific normalisation with fixed modes (a fitted mixture in the original)
modes = {
    "age": (np.array([25.0, 40.0, 55.0]), np.array([3.0, 8.0, 5.0])),
    "income": (np.array([12.0, 20.0, 35.0]), np.array([4.0, 6.0, 10.0])),
}


def encode_continuous(x, means, stds):
    probs = np.exp(-0.5 * ((x[:, None] - means) / stds) ** 2) / stds
    probs /= probs.sum(1, keepdims=True)
    u = rng.uniform(size=len(x))
    mode = (probs.cumsum(1) < u[:, None]).sum(1).clip(0, 2)
    scalar = np.clip((x - means[mode]) / (4 * stds[mode]), -0.99, 0.99)
    return np.concatenate([scalar[:, None], np.eye(3)[mode]], 1)


cols = [
    encode_continuous(age, *modes["age"]),
    encode_continuous(income, *modes["income"]),
    np.eye(3)[city],
    np.eye(2)[member],
]
data = torch.from_numpy(np.concatenate(cols, 1).astype(np.float32))
spans = [(1, "tanh"), (3, "softmax"), (1, "tanh"), (3, "softmax"), (3, "softmax"), (2, "softmax")]
discrete = [(8, 3, city), (11, 2, member)]  # (start, size, values)
data_dim, cond_dim, z_dim, pac = data.shape[1], 5, 8, 4


def sample_condvec(batch):
    col = rng.integers(0, 2, batch)
    vec = np.zeros((batch, cond_dim), np.float32)
    rows = np.zeros(batch, int)
    offsets = [0, 3]
    for i in range(batch):
        start, size, values = discrete[col[i]]
        freq = np.log(np.bincount(values, minlength=size) + 1)
        p = freq / freq.sum()
        cat = rng.choice(size, p=p)
        vec[i, offsets[col[i]] + cat] = 1
        rows[i] = rng.choice(np.flatnonzero(values == cat))
    return torch.from_numpy(vec), torch.from_numpy(rows), col


class Residual(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        # no bias in front of the BatchNorm (sdv's has one): its gradient is 0 up to rounding,
        # Adam stepped on it and the eval-mode outputs parted by 3e-5
        self.fc = nn.Linear(i, o, bias=False)
        self.bn = nn.BatchNorm1d(o)
        self.relu = nn.ReLU()

    def forward(self, input_):
        out = self.relu(self.bn(self.fc(input_)))
        return torch.cat([out, input_], dim=1)


class Generator(nn.Module):
    def __init__(self, embedding_dim, generator_dim, data_dim):
        super().__init__()
        dim = embedding_dim
        seq = []
        for item in list(generator_dim):
            seq += [Residual(dim, item)]
            dim += item
        seq.append(nn.Linear(dim, data_dim))
        self.seq = nn.Sequential(*seq)

    def forward(self, input_):
        return self.seq(input_)


class Discriminator(nn.Module):
    def __init__(self, input_dim, discriminator_dim, pac=10):
        super().__init__()
        dim = input_dim * pac
        self.pac, self.pacdim = pac, dim
        seq = []
        for item in list(discriminator_dim):
            seq += [nn.Linear(dim, item), nn.LeakyReLU(0.2), nn.Dropout(0.0)]
            dim = item
        seq += [nn.Linear(dim, 1)]
        self.seq = nn.Sequential(*seq)

    def calc_gradient_penalty(self, real_data, fake_data, alpha, lambda_=10):
        interpolates = alpha * real_data + ((1 - alpha) * fake_data)
        disc_interpolates = self(interpolates)
        gradients = torch.autograd.grad(
            outputs=disc_interpolates,
            inputs=interpolates,
            grad_outputs=torch.ones(disc_interpolates.size()),
            create_graph=True,
            retain_graph=True,
            only_inputs=True,
        )[0]
        gradients_view = gradients.view(-1, self.pac * real_data.size(1)).norm(2, dim=1) - 1
        return ((gradients_view) ** 2).mean() * lambda_

    def forward(self, input_):
        return self.seq(input_.view(-1, self.pacdim))


def gumbel(logits, tau):
    g = torch.from_numpy(
        -np.log(-np.log(rng.uniform(1e-10, 1.0, tuple(logits.shape)))).astype(np.float32)
    )
    return F.softmax((logits + g) / tau, dim=-1)


def apply_activate(data):
    data_t, st = [], 0
    for size, fn in spans:
        ed = st + size
        data_t.append(torch.tanh(data[:, st:ed]) if fn == "tanh" else gumbel(data[:, st:ed], 0.2))
        st = ed
    return torch.cat(data_t, dim=1)


def cond_loss(data, c, col):
    loss = []
    for k, (start, size, _) in enumerate(discrete):
        offset = 0 if k == 0 else 3
        tmp = F.cross_entropy(
            data[:, start : start + size],
            torch.argmax(c[:, offset : offset + size], dim=1),
            reduction="none",
        )
        loss.append(tmp * torch.from_numpy((col == k).astype(np.float32)))
    return torch.stack(loss, 1).sum() / data.size(0)


gen = Generator(z_dim + cond_dim, (16, 16), data_dim)
disc = Discriminator(data_dim + cond_dim, (32, 32), pac=pac)
for m in (gen, disc):
    W = reference_weights(m)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.9), weight_decay=1e-6)
opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.9), weight_decay=1e-6)
batch = 16
log = {"d": [], "g": [], "pen": [], "cond": []}
for step in range(8):
    z = torch.from_numpy(rng.standard_normal((batch, z_dim)).astype(np.float32))
    c1, rows, col = sample_condvec(batch)
    fake = apply_activate(gen(torch.cat([z, c1], 1)))
    perm = torch.from_numpy(rng.permutation(batch))
    real = data[rows[perm]]
    c2 = c1[perm]
    fake_cat, real_cat = torch.cat([fake, c1], 1), torch.cat([real, c2], 1)
    y_fake, y_real = disc(fake_cat.detach()), disc(real_cat)
    alpha = torch.from_numpy(rng.uniform(size=(batch // pac, 1, 1)).astype(np.float32))
    alpha = alpha.repeat(1, pac, real_cat.size(1)).view(-1, real_cat.size(1))
    pen = disc.calc_gradient_penalty(real_cat, fake_cat, alpha)
    loss_d = -(torch.mean(y_real) - torch.mean(y_fake))
    opt_d.zero_grad(set_to_none=False)
    pen.backward(retain_graph=True)
    loss_d.backward()
    opt_d.step()

    z = torch.from_numpy(rng.standard_normal((batch, z_dim)).astype(np.float32))
    c1, rows, col = sample_condvec(batch)
    fakez = gen(torch.cat([z, c1], 1))
    fake = apply_activate(fakez)
    y_fake = disc(torch.cat([fake, c1], 1))
    cross_entropy = cond_loss(fakez, c1, col)
    loss_g = -torch.mean(y_fake) + cross_entropy
    opt_g.zero_grad(set_to_none=False)
    loss_g.backward()
    opt_g.step()
    for k, v in zip(log, (loss_d, loss_g, pen, cross_entropy)):
        log[k].append(v.item())

gen.eval()
with torch.no_grad():
    z = torch.from_numpy(rng.standard_normal((8, z_dim)).astype(np.float32))
    c1, _, _ = sample_condvec(8)
    out = apply_activate(gen(torch.cat([z, c1], 1)))
    mode = out[:, 1:4].argmax(1)
    means, stds = (torch.from_numpy(v.astype(np.float32)) for v in modes["age"])
    ages = out[:, 0] * 4 * stds[mode] + means[mode]
    log["scalars"] = out[:, 0].tolist()
    log["ages"] = ages.tolist()
    log["cities"] = out[:, 8:11].argmax(1).tolist()
report(**log)
