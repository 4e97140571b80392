# pytorch/examples' vae/main.py as written (condensed: 8x8 "digits" made by NumPy instead of
# the MNIST download, the reparameterisation noise drawn by NumPy and passed in instead of
# torch.randn_like): fc1 / fc21 / fc22 / fc3 / fc4, encode / reparameterize / decode,
# x.view(-1, 64), the loss F.binary_cross_entropy(recon_x, x.view(-1, 64), reduction="sum")
# plus the KL term -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()), train() with
# `train_loss += loss.item()` and the per-batch "Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss:
# {:.6f}" lines, test() under no_grad with the comparison image by torch.cat of the first n
# inputs and recon_batch.view(batch_size, 1, 8, 8)[:n], and sampling from N(0, I) by
# model.decode(sample).
import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.data
from compat_helpers import reference_weights, report
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

rng = np.random.default_rng(4141)
protos = (rng.uniform(size=(4, 64)) > 0.6).astype(np.float32)
labels = rng.integers(0, 4, 48)
data = np.clip(protos[labels] + 0.15 * rng.standard_normal((48, 64)), 0, 1).astype(np.float32)
train_loader = DataLoader(
    TensorDataset(torch.from_numpy(data[:32]).view(-1, 1, 8, 8), torch.from_numpy(labels[:32])),
    batch_size=8, shuffle=False,
)  # fmt: skip
test_loader = DataLoader(
    TensorDataset(torch.from_numpy(data[32:]).view(-1, 1, 8, 8), torch.from_numpy(labels[32:])),
    batch_size=8, shuffle=False,
)  # fmt: skip
noise = torch.from_numpy(rng.standard_normal((40, 8, 6)).astype(np.float32))
calls = {"n": 0}


class VAE(nn.Module):
    def __init__(self):
        super(VAE, self).__init__()
        self.fc1 = nn.Linear(64, 32)
        self.fc21 = nn.Linear(32, 6)
        self.fc22 = nn.Linear(32, 6)
        self.fc3 = nn.Linear(6, 32)
        self.fc4 = nn.Linear(32, 64)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = noise[calls["n"]][: std.shape[0]]
        calls["n"] += 1
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 64))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


model = VAE()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
optimizer = optim.Adam(model.parameters(), lr=1e-3)


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 64), reduction="sum")
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


lines = []


def train(epoch):
    model.train()
    train_loss = 0
    for batch_idx, (data, _) in enumerate(train_loader):
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
        if batch_idx % 2 == 0:
            lines.append(
                "Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.3f}".format(
                    epoch, batch_idx * len(data), len(train_loader.dataset),
                    100.0 * batch_idx / len(train_loader), loss.item() / len(data),
                )
            )  # fmt: skip
    avg = train_loss / len(train_loader.dataset)
    lines.append("====> Epoch: {} Average loss: {:.3f}".format(epoch, avg))
    return avg


def test(epoch):
    model.eval()
    test_loss = 0
    with torch.no_grad():
        for i, (data, _) in enumerate(test_loader):
            recon_batch, mu, logvar = model(data)
            test_loss += loss_function(recon_batch, data, mu, logvar).item()
            if i == 0:
                n = min(data.size(0), 4)
                comparison = torch.cat([data[:n], recon_batch.view(8, 1, 8, 8)[:n]])
    test_loss /= len(test_loader.dataset)
    lines.append("====> Test set loss: {:.3f}".format(test_loss))
    return test_loss, comparison


history = []
for epoch in range(1, 4):
    tr = train(epoch)
    te, comparison = test(epoch)
    with torch.no_grad():
        sample = torch.from_numpy(rng.standard_normal((4, 6)).astype(np.float32))
        sample = model.decode(sample)
    history.append([tr, te])
report(
    history=history,
    lines=lines,
    comparison_shape=list(comparison.shape),
    comparison=comparison[4, 0, 0].tolist(),
    sample=sample.view(4, 1, 8, 8)[0, 0, 0].tolist(),
)
