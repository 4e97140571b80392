# A convolutional autoencoder with a classification side head, in the style of many tutorials:
# Conv2d + BatchNorm2d + MaxPool2d down, ConvTranspose2d and nn.Upsample up, AdaptiveAvgPool2d
# for the head, SGD with Nesterov momentum and CosineAnnealingLR, a summed loss of MSE and
# cross-entropy. Our own program; images generated with NumPy.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from compat_helpers import reference_weights, report

rng = np.random.default_rng(11)
n, size = 96, 12
labels = rng.integers(0, 3, size=n)
grid = np.linspace(-1, 1, size)
yy, xx = np.meshgrid(grid, grid, indexing="ij")
shapes = np.stack([xx**2 + yy**2 < 0.5, np.abs(xx) < 0.3, np.abs(yy) < 0.3]).astype(np.float32)
images = shapes[labels][:, None] + 0.2 * rng.standard_normal((n, 1, size, size))
images = torch.tensor(images, dtype=torch.float32)
targets = torch.from_numpy(labels)


class ConvAutoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 12 -> 6
            nn.Conv2d(8, 16, kernel_size=3, padding=1),
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(16, 8, kernel_size=2, stride=2),  # 6 -> 12
            nn.ReLU(),
            nn.Conv2d(8, 1, kernel_size=3, padding=1),
        )
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.skip = nn.Conv2d(16, 1, kernel_size=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3))

    def forward(self, x):
        z = self.encoder(x)  # (B, 16, 6, 6)
        recon = self.decoder(z) + self.upsample(self.skip(z))  # (B, 1, 12, 12)
        return recon, self.head(z)


model = ConvAutoencoder()
W = reference_weights(model)
model.load_state_dict({**model.state_dict(), **{k: torch.from_numpy(v) for k, v in W.items()}})

epochs, batch_size = 4, 32
optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)

losses, lrs = [], []
for epoch in range(epochs):
    model.train()
    for start in range(0, n, batch_size):
        xb = images[start : start + batch_size]
        yb = targets[start : start + batch_size]
        recon, logits = model(xb)
        loss = F.mse_loss(recon, xb) + 0.1 * F.cross_entropy(logits, yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    scheduler.step()
    lrs.append(scheduler.get_last_lr()[0])
    print(f"epoch {epoch}: loss {losses[-1]:.5f}")

model.eval()
with torch.no_grad():
    recon, logits = model(images[:8])
    err = (recon - images[:8]).pow(2).mean(dim=(1, 2, 3))
report(
    losses=losses,
    lrs=lrs,
    eval_errors=err.tolist(),
    predictions=logits.argmax(1).tolist(),
    bn_running_var=model.encoder[1].running_var.tolist(),
)
