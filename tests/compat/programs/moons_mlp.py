# micrograd's moons demo written in PyTorch: a 2-16-16-1 MLP trained with the SVM max-margin loss
# plus L2 regularisation, full batch, SGD with a learning rate decayed by hand. The moons are
# generated with NumPy as sklearn.datasets.make_moons(n_samples=100, noise=0.1) does.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report


def make_moons(n_samples=100, noise=0.1, seed=1):
    rng = np.random.default_rng(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    outer = np.stack([np.cos(np.linspace(0, np.pi, n_out)), np.sin(np.linspace(0, np.pi, n_out))])
    inner = np.stack(
        [1 - np.cos(np.linspace(0, np.pi, n_in)), 1 - np.sin(np.linspace(0, np.pi, n_in)) - 0.5]
    )
    X = np.concatenate([outer, inner], axis=1).T + rng.normal(scale=noise, size=(n_samples, 2))
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    return X, y


X, y = make_moons(n_samples=100, noise=0.1)
y = y * 2 - 1  # make y be -1 or 1

model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))
W = reference_weights(model)
for name, p in model.named_parameters():
    p.data = torch.from_numpy(W[name])
print(model)
print("number of parameters", sum(p.numel() for p in model.parameters()))

Xb = torch.tensor(X, dtype=torch.float32)
yb = torch.tensor(y, dtype=torch.float32)


def loss_fn():
    scores = model(Xb).squeeze(1)
    # svm "max-margin" loss
    losses = (1 + -yb * scores).relu()
    data_loss = losses.mean()
    # L2 regularization
    alpha = 1e-4
    reg_loss = alpha * sum((p * p).sum() for p in model.parameters())
    total_loss = data_loss + reg_loss
    # also get accuracy
    accuracy = ((yb > 0) == (scores > 0)).float().mean()
    return total_loss, accuracy


losses, accuracies = [], []
optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
for k in range(60):
    # forward
    total_loss, acc = loss_fn()

    # backward
    optimizer.zero_grad()
    total_loss.backward()

    # update (sgd)
    learning_rate = 1.0 - 0.9 * k / 100
    for group in optimizer.param_groups:
        group["lr"] = learning_rate
    optimizer.step()

    losses.append(total_loss.item())
    accuracies.append(acc.item())
    if k % 10 == 0:
        print(f"step {k} loss {total_loss.item()}, accuracy {acc.item() * 100}%")

# the decision boundary on a grid, as the demo plots it
h = 0.25
xx, yy = np.meshgrid(np.arange(-2.0, 3.0, h), np.arange(-1.5, 2.0, h))
Xmesh = np.c_[xx.ravel(), yy.ravel()]
with torch.no_grad():
    scores = model(torch.from_numpy(Xmesh).float())
Z = (scores > 0).squeeze().numpy().astype(int).tolist()

report(losses=losses, accuracies=accuracies, boundary=Z)
