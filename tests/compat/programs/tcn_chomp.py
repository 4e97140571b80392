# locuslab's Temporal Convolutional Network (Bai et al. 2018) as its repository writes it:
# Chomp1d cutting the causal padding off, TemporalBlock = two weight-normed dilated Conv1d
# (torch.nn.utils.weight_norm, the legacy hook form) with ReLU and dropout, a 1x1 downsample
# on the residual, init_weights by normal_(0, 0.01), dilations 2**i, a Linear on the last time
# step; trained on the adding problem with Adam and clip_grad_norm_. Then the receptive field,
# a causality check by autograd (the gradient of an early output with respect to later inputs
# is exactly 0), remove_weight_norm for inference, and a sequence labelling head over all steps.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.utils import remove_weight_norm, weight_norm

rng = np.random.default_rng(7)
B, T = 16, 24


def adding_problem(n, seq_len):
    x_num = rng.uniform(0, 1, (n, 1, seq_len))
    x_mask = np.zeros((n, 1, seq_len))
    y = np.zeros((n, 1))
    for i in range(n):
        a, b = rng.choice(seq_len, 2, replace=False)
        x_mask[i, 0, [a, b]] = 1
        y[i, 0] = x_num[i, 0, a] + x_num[i, 0, b]
    x = np.concatenate([x_num, x_mask], axis=1)
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32))


class Chomp1d(nn.Module):
    def __init__(self, chomp_size):
        super(Chomp1d, self).__init__()
        self.chomp_size = chomp_size

    def forward(self, x):
        return x[:, :, : -self.chomp_size].contiguous()


class TemporalBlock(nn.Module):
    def __init__(self, n_inputs, n_outputs, kernel_size, stride, dilation, padding, dropout=0.2):
        super(TemporalBlock, self).__init__()
        self.conv1 = weight_norm(
            nn.Conv1d(
                n_inputs, n_outputs, kernel_size, stride=stride, padding=padding, dilation=dilation
            )
        )
        self.chomp1 = Chomp1d(padding)
        self.relu1 = nn.ReLU()
        self.dropout1 = nn.Dropout(dropout)
        self.conv2 = weight_norm(
            nn.Conv1d(
                n_outputs, n_outputs, kernel_size, stride=stride, padding=padding, dilation=dilation
            )
        )
        self.chomp2 = Chomp1d(padding)
        self.relu2 = nn.ReLU()
        self.dropout2 = nn.Dropout(dropout)
        self.net = nn.Sequential(
            self.conv1,
            self.chomp1,
            self.relu1,
            self.dropout1,
            self.conv2,
            self.chomp2,
            self.relu2,
            self.dropout2,
        )
        self.downsample = nn.Conv1d(n_inputs, n_outputs, 1) if n_inputs != n_outputs else None
        self.relu = nn.ReLU()
        self.init_weights()

    def init_weights(self):
        self.conv1.weight.data.normal_(0, 0.01)
        self.conv2.weight.data.normal_(0, 0.01)
        if self.downsample is not None:
            self.downsample.weight.data.normal_(0, 0.01)

    def forward(self, x):
        out = self.net(x)
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


class TemporalConvNet(nn.Module):
    def __init__(self, num_inputs, num_channels, kernel_size=2, dropout=0.2):
        super(TemporalConvNet, self).__init__()
        layers = []
        num_levels = len(num_channels)
        for i in range(num_levels):
            dilation_size = 2**i
            in_channels = num_inputs if i == 0 else num_channels[i - 1]
            out_channels = num_channels[i]
            layers += [
                TemporalBlock(
                    in_channels,
                    out_channels,
                    kernel_size,
                    stride=1,
                    dilation=dilation_size,
                    padding=(kernel_size - 1) * dilation_size,
                    dropout=dropout,
                )
            ]
        self.network = nn.Sequential(*layers)

    def forward(self, x):
        return self.network(x)


class TCN(nn.Module):
    def __init__(self, input_size, output_size, num_channels, kernel_size, dropout):
        super(TCN, self).__init__()
        self.tcn = TemporalConvNet(
            input_size, num_channels, kernel_size=kernel_size, dropout=dropout
        )
        self.linear = nn.Linear(num_channels[-1], output_size)
        self.init_weights()

    def init_weights(self):
        self.linear.weight.data.normal_(0, 0.01)

    def forward(self, x):
        y1 = self.tcn(x)
        return self.linear(y1[:, :, -1])


def load_reference(model):
    W = reference_weights(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            w = torch.from_numpy(W[n])
            p.copy_(w.abs() + 0.5 if n.endswith("weight_g") else w)


results = {}
model = TCN(2, 1, [12, 12, 12], kernel_size=3, dropout=0.0)
load_reference(model)
names = [n for n, _ in model.named_parameters()]
results["param_names"] = names[:6]
results["n_params"] = sum(p.numel() for p in model.parameters())
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
losses = []
model.train()
for step in range(10):
    x, y = adding_problem(B, T)
    optimizer.zero_grad()
    output = model(x)
    loss = F.mse_loss(output, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    losses.append(loss.item())
results["losses"] = losses

# receptive field: 1 + 2 * (k - 1) * sum(dilations)
k, levels = 3, 3
results["receptive_field"] = 1 + 2 * (k - 1) * sum(2**i for i in range(levels))

# causality: the output at time t never sees inputs after t
model.eval()
x, _ = adding_problem(2, T)
x.requires_grad_(True)
feats = model.tcn(x)
t0 = 10
feats[:, :, t0].sum().backward()
results["grad_future_max"] = x.grad[:, :, t0 + 1 :].abs().max().item()
results["grad_past_sum"] = x.grad[:, :, : t0 + 1].abs().sum().item()

# inference without the weight-norm hooks gives the same outputs
with torch.no_grad():
    before = model(x.detach())
    for block in model.tcn.network:
        remove_weight_norm(block.conv1)
        remove_weight_norm(block.conv2)
    after = model(x.detach())
results["removed_names"] = [n for n, _ in model.named_parameters()][:4]
results["before"] = before.flatten().tolist()
results["after_close"] = bool(torch.allclose(before, after, atol=1e-6))

# a sequence labelling head over every step (1x1 conv), trained by cross-entropy
tagger = nn.Sequential(TemporalConvNet(2, [8, 8], kernel_size=2, dropout=0.0), nn.Conv1d(8, 3, 1))
load_reference(tagger)
opt = torch.optim.SGD(tagger.parameters(), lr=0.1, momentum=0.9)
tag_losses = []
for step in range(6):
    x, _ = adding_problem(B, T)
    tags = (x[:, 1].long() + (x[:, 0] > 0.5).long()).clamp(max=2)
    logits = tagger(x)
    loss = F.cross_entropy(logits, tags)
    opt.zero_grad()
    loss.backward()
    opt.step()
    tag_losses.append(loss.item())
results["tag_losses"] = tag_losses
report(**results)
