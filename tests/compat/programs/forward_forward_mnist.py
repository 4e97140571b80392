# pytorch/examples' mnist_forward_forward (Hinton's Forward-Forward algorithm) as written
# (condensed; NumPy digits-like data instead of the MNIST download, and the negative labels
# drawn by NumPy): overlay_y_on_x writing the one-hot label into the first pixels through
# `x_ = x.clone(); x_[:, :10] *= 0.0; x_[range(x.shape[0]), y] = x.max()`, a Net of Layer
# subclasses of nn.Linear each with its own Adam, the direction normalisation
# x / (x.norm(2, 1, keepdim=True) + 1e-4), goodness by .pow(2).mean(1), the loss
# torch.log(1 + torch.exp(torch.cat([-g_pos + threshold, g_neg - threshold]))).mean(),
# layer-by-layer training on detached outputs, predict() by argmax of summed goodness over
# every label, and the error rate as 1.0 - acc.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.optim import Adam

rng = np.random.default_rng(31)
N, D = 64, 36
protos = rng.uniform(0, 1, (10, D)).astype(np.float32)
labels = rng.integers(0, 10, N)
xs = protos[labels] + 0.2 * rng.standard_normal((N, D)).astype(np.float32)


def overlay_y_on_x(x, y):
    x_ = x.clone()
    x_[:, :10] *= 0.0
    x_[range(x.shape[0]), y] = x.max()
    return x_


class Layer(nn.Linear):
    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__(in_features, out_features, bias, device, dtype)
        self.relu = torch.nn.ReLU()
        self.opt = None
        self.threshold = 2.0
        self.num_epochs = 12

    def forward(self, x):
        x_direction = x / (x.norm(2, 1, keepdim=True) + 1e-4)
        return self.relu(torch.mm(x_direction, self.weight.T) + self.bias.unsqueeze(0))

    def train(self, x_pos, x_neg):
        losses = []
        for i in range(self.num_epochs):
            g_pos = self.forward(x_pos).pow(2).mean(1)
            g_neg = self.forward(x_neg).pow(2).mean(1)
            loss = torch.log(
                1 + torch.exp(torch.cat([-g_pos + self.threshold, g_neg - self.threshold]))
            ).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            losses.append(loss.item())
        return self.forward(x_pos).detach(), self.forward(x_neg).detach(), losses


class Net(torch.nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.layers = []
        for d in range(len(dims) - 1):
            self.layers += [Layer(dims[d], dims[d + 1])]

    def predict(self, x):
        goodness_per_label = []
        for label in range(10):
            h = overlay_y_on_x(x, label)
            goodness = []
            for layer in self.layers:
                h = layer(h)
                goodness += [h.pow(2).mean(1)]
            goodness_per_label += [sum(goodness).unsqueeze(1)]
        goodness_per_label = torch.cat(goodness_per_label, 1)
        return goodness_per_label.argmax(1), goodness_per_label

    def train(self, x_pos, x_neg):
        h_pos, h_neg = x_pos, x_neg
        all_losses = []
        for i, layer in enumerate(self.layers):
            h_pos, h_neg, losses = layer.train(h_pos, h_neg)
            all_losses.append(losses)
        return all_losses


net = Net([D, 40, 40])
for i, layer in enumerate(net.layers):
    W = reference_weights(layer)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            p.copy_(torch.from_numpy(W[name]) * 2.0)
    layer.opt = Adam(layer.parameters(), lr=0.03)
x, y = torch.from_numpy(xs), torch.from_numpy(labels)
x_pos = overlay_y_on_x(x, y)
rnd = torch.from_numpy(rng.permutation(x.size(0)))
x_neg = overlay_y_on_x(x, y[rnd])
losses = net.train(x_pos, x_neg)
pred, goodness = net.predict(x)
acc = pred.eq(y).float().mean().item()
report(
    losses=losses,
    pos_prefix=x_pos[:2, :12].tolist(),
    goodness=goodness[:4].tolist(),
    pred=pred.tolist(),
    train_error=1.0 - acc,
)
