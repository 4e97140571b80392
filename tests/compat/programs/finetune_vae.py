# Two things people do once they have a model: fine-tune it (freeze the body, replace the head,
# give parameter groups their own learning rates, register a buffer) and train a small VAE
# (reparameterisation trick, BCE + KL loss with reduction="sum"). Our own program; the VAE's
# noise is drawn with NumPy so that both libraries draw the same.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(5)


def load_reference(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


# -- fine-tuning -------------------------------------------------------------------------------
class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh())
        self.classifier = nn.Linear(16, 5)
        self.register_buffer("input_scale", torch.full((6,), 0.5))

    def forward(self, x):
        return self.classifier(self.features(x * self.input_scale))


model = load_reference(Backbone())
for param in model.features.parameters():
    param.requires_grad = False
model.classifier = nn.Linear(16, 2)  # a new head for the new task
load_reference(model.classifier)
model.features[2].weight.requires_grad_(True)  # unfreeze the last layer's weight only

trainable = [n for n, p in model.named_parameters() if p.requires_grad]
print("trainable:", trainable)
optimizer = torch.optim.SGD(
    [
        {"params": [model.features[2].weight], "lr": 1e-3},
        {"params": model.classifier.parameters()},
    ],
    lr=1e-1,
    momentum=0.9,
)
x = torch.from_numpy(rng.standard_normal((64, 6)).astype(np.float32))
y = torch.from_numpy((rng.standard_normal(64) > 0).astype(np.int64))
frozen_before = model.features[0].weight.clone()
ft_losses = []
for _ in range(15):
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ft_losses.append(loss.item())
frozen_kept = torch.equal(frozen_before, model.features[0].weight)
frozen_grad_none = model.features[0].weight.grad is None
modules = [name for name, _ in model.named_modules()]


# -- a small VAE -------------------------------------------------------------------------------
class VAE(nn.Module):
    def __init__(self, d_in=16, d_hidden=12, d_latent=2):
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.fc21 = nn.Linear(d_hidden, d_latent)
        self.fc22 = nn.Linear(d_hidden, d_latent)
        self.fc3 = nn.Linear(d_latent, d_hidden)
        self.fc4 = nn.Linear(d_hidden, d_in)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar, eps):
        std = torch.exp(0.5 * logvar)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x, eps):
        mu, logvar = self.encode(x.view(-1, 16))
        z = self.reparameterize(mu, logvar, eps)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 16), reduction="sum")
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


vae = load_reference(VAE())
opt = torch.optim.Adam(vae.parameters(), lr=1e-2)
data = torch.from_numpy((rng.random((128, 4, 4)) > 0.5).astype(np.float32))
vae_losses = []
for step in range(20):
    batch = data[(step % 4) * 32 : (step % 4 + 1) * 32]
    eps = torch.from_numpy(rng.standard_normal((32, 2)).astype(np.float32))  # same in both
    opt.zero_grad()
    recon, mu, logvar = vae(batch, eps)
    loss = loss_function(recon, batch, mu, logvar)
    loss.backward()
    opt.step()
    vae_losses.append(loss.item() / len(batch))
with torch.no_grad():
    sample = vae.decode(torch.zeros(1, 2)).view(4, 4)

report(
    ft_losses=ft_losses,
    trainable=trainable,
    frozen_kept=frozen_kept,
    frozen_grad_none=frozen_grad_none,
    modules=modules,
    vae_losses=vae_losses,
    sample=sample.tolist(),
)
