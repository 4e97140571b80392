# A tabular classifier the way many notebooks train one: BatchNorm1d between Linear layers,
# Adam with weight decay, ReduceLROnPlateau on the validation loss, gradient value clipping,
# the best weights kept with copy.deepcopy(model.state_dict()) and restored at the end
# (early stopping). Our own program; data generated with NumPy.
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.utils.data import DataLoader, TensorDataset

rng = np.random.default_rng(7)
n_features, n_classes = 10, 3
W_true = rng.standard_normal((n_features, n_classes))
X = rng.standard_normal((600, n_features)).astype(np.float32)
y = (X @ W_true + 0.5 * rng.standard_normal((600, n_classes))).argmax(1)
X[:, 3] = X[:, 3] * 50 + 10  # an unscaled column: what BatchNorm is for

train_ds = TensorDataset(torch.from_numpy(X[:480]), torch.from_numpy(y[:480]))
val_x, val_y = torch.from_numpy(X[480:]), torch.from_numpy(y[480:])
train_loader = DataLoader(train_ds, batch_size=64, shuffle=False, drop_last=True)


class TabularNet(nn.Module):
    def __init__(self, d_in, d_hidden, d_out, p_drop=0.2):
        super().__init__()
        self.net = nn.Sequential(
            # Standardise the inputs without a learned shift or scale, and no bias before the
            # next BatchNorm: that BatchNorm would cancel any shift, so such a parameter's
            # gradient is 0 up to rounding, which Adam scales up to full-size steps of either
            # sign (the two libraries' rounding would then decide the weights).
            nn.BatchNorm1d(d_in, affine=False),
            nn.Linear(d_in, d_hidden, bias=False),
            nn.BatchNorm1d(d_hidden),
            nn.ReLU(),
            nn.Dropout(p_drop),
            nn.Linear(d_hidden, d_out),
        )

    def forward(self, x):
        return self.net(x)


# Dropout draws random masks, which differ from library to library: off for the comparison.
model = TabularNet(n_features, 32, n_classes, p_drop=0.0)
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))

optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
scheduler = ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=1)

best_loss, best_state, bad_epochs = float("inf"), None, 0
losses, val_losses, lrs = [], [], []
for epoch in range(12):
    model.train()
    for xb, yb in train_loader:
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), clip_value=1.0)
        optimizer.step()
        losses.append(loss.item())

    model.eval()
    with torch.no_grad():
        val_logits = model(val_x)
        val_loss = F.cross_entropy(val_logits, val_y).item()
        acc = (val_logits.argmax(dim=1) == val_y).float().mean().item()
    val_losses.append(val_loss)
    scheduler.step(val_loss)
    lrs.append(optimizer.param_groups[0]["lr"])
    print(f"epoch {epoch:2d}  train {losses[-1]:.4f}  val {val_loss:.4f}  acc {acc:.3f}")

    if val_loss < best_loss:
        best_loss, best_state, bad_epochs = val_loss, copy.deepcopy(model.state_dict()), 0
    else:
        bad_epochs += 1
        if bad_epochs >= 4:
            print("early stop")
            break

model.load_state_dict(best_state)
model.eval()
with torch.no_grad():
    restored = F.cross_entropy(model(val_x), val_y).item()
bn = model.net[0]
report(
    losses=losses,
    val_losses=val_losses,
    lrs=lrs,
    restored=restored,
    best=best_loss,
    running_mean=bn.running_mean.tolist(),
    running_var=bn.running_var.tolist(),
    batches_tracked=int(bn.num_batches_tracked),
)
