# Spiking neural networks trained by surrogate gradients, as snntorch's tutorials (and the
# SpyTorch notebooks) write them in plain PyTorch: a Heaviside spike as an autograd.Function
# whose backward is the fast-sigmoid derivative (SpyTorch's SurrGradSpike with
# ctx.save_for_backward and grad_input = grad_input.clone()), an arctan surrogate by the
# straight-through `heaviside + (s - s.detach())` trick, leaky integrate-and-fire neurons with
# reset by subtraction (a detached reset) and reset to zero, a learnable decay clamped
# (out of place: clamp_ of a saved Parameter fails the version check),
# synaptic (two-state) neurons, a recurrent leaky layer, rate coding from NumPy uniforms and
# latency coding by log with clamps; time loops recording torch.stack'ed spikes and membranes,
# snntorch's ce_rate_loss / mse_count_loss / mse_membrane_loss, a convolutional SNN with
# max_pool2d on (T, B, C, H, W) inputs, Adam, accuracy from spike counts, firing-rate stats.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

torch.manual_seed(0)
rng = np.random.default_rng(13)


class SurrGradSpike(torch.autograd.Function):
    scale = 10.0

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        out = torch.zeros_like(input)
        out[input > 0] = 1.0
        return out

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad = grad_input / (SurrGradSpike.scale * torch.abs(input) + 1.0) ** 2
        return grad


spike_fn = SurrGradSpike.apply


def atan_spike(mem, alpha=2.0):
    heav = torch.heaviside(mem.detach(), torch.tensor(0.0))  # no derivative in PyTorch
    soft = torch.atan(torch.pi / 2 * alpha * mem) / torch.pi
    return heav + (soft - soft.detach())


class Leaky(nn.Module):
    def __init__(self, beta, threshold=1.0, learn_beta=False, reset_mechanism="subtract",
                 surrogate="fast_sigmoid"):
        super().__init__()
        beta = torch.as_tensor(beta, dtype=torch.float32)
        if learn_beta:
            self.beta = nn.Parameter(beta)
        else:
            self.register_buffer("beta", beta)
        self.threshold = threshold
        self.reset_mechanism = reset_mechanism
        self.surrogate = surrogate

    def init_leaky(self):
        return torch.zeros(0)

    def fire(self, mem):
        mem_shift = mem - self.threshold
        if self.surrogate == "atan":
            return atan_spike(mem_shift)
        return spike_fn(mem_shift)

    def forward(self, input_, mem):
        if mem.numel() == 0:
            mem = torch.zeros_like(input_)
        beta = self.beta.clamp(0, 1)  # out of place: an in-place clamp_ here bumps the version
        reset = (mem - self.threshold > 0).float().detach()
        if self.reset_mechanism == "subtract":
            mem = beta * mem + input_ - reset * self.threshold
        else:
            mem = (beta * mem + input_) * (1 - reset)
        spk = self.fire(mem)
        return spk, mem


class Synaptic(Leaky):
    def __init__(self, alpha, beta, **kwargs):
        super().__init__(beta, **kwargs)
        self.register_buffer("alpha", torch.as_tensor(alpha))

    def forward(self, input_, syn, mem):
        if mem.numel() == 0:
            syn, mem = torch.zeros_like(input_), torch.zeros_like(input_)
        reset = self.fire(mem).detach()
        syn = self.alpha * syn + input_
        mem = self.beta * mem + syn - reset * self.threshold
        return self.fire(mem), syn, mem


class Net(nn.Module):
    def __init__(self, num_inputs, num_hidden, num_outputs, beta):
        super().__init__()
        self.fc1 = nn.Linear(num_inputs, num_hidden)
        self.lif1 = Leaky(beta=beta, learn_beta=True)
        self.fc_rec = nn.Linear(num_hidden, num_hidden, bias=False)
        self.fc2 = nn.Linear(num_hidden, num_outputs)
        self.lif2 = Synaptic(alpha=0.8, beta=beta, surrogate="atan")

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        syn2, mem2 = torch.zeros(0), torch.zeros(0)
        spk1 = torch.zeros(x.shape[1], self.fc_rec.in_features)
        spk2_rec, mem2_rec = [], []
        for step in range(x.shape[0]):
            cur1 = self.fc1(x[step]) + self.fc_rec(spk1)
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, syn2, mem2 = self.lif2(cur2, syn2, mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec, dim=0), torch.stack(mem2_rec, dim=0)


class ConvSNN(nn.Module):
    def __init__(self, beta=0.7):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.lif1 = Leaky(beta=beta, reset_mechanism="zero")
        self.fc1 = nn.Linear(4 * 4 * 4, 3)
        self.lif2 = Leaky(beta=beta)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        spk_rec, mem_rec = [], []
        for step in range(x.size(0)):
            cur1 = F.max_pool2d(self.conv1(x[step]), 2)
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc1(spk1.view(spk1.size(0), -1))
            spk2, mem2 = self.lif2(cur2, mem2)
            spk_rec.append(spk2)
            mem_rec.append(mem2)
        return torch.stack(spk_rec), torch.stack(mem_rec)


def ce_rate_loss(spk_out, targets):
    log_softmax_fn = nn.LogSoftmax(dim=-1)
    loss_fn = nn.NLLLoss()
    log_p_y = log_softmax_fn(spk_out)
    loss = torch.zeros((1), dtype=spk_out.dtype, device=spk_out.device)
    num_steps = spk_out.size(0)
    for step in range(num_steps):
        loss += loss_fn(log_p_y[step], targets)
    return loss / num_steps


def mse_count_loss(spk_out, targets, correct_rate=0.8, incorrect_rate=0.2):
    num_steps = spk_out.size(0)
    spike_count = torch.sum(spk_out, 0)
    on_target = int(num_steps * correct_rate)
    off_target = int(num_steps * incorrect_rate)
    spike_count_target = F.one_hot(targets, spk_out.size(-1)) * on_target
    spike_count_target = spike_count_target + (
        1 - F.one_hot(targets, spk_out.size(-1))) * off_target
    return nn.MSELoss()(spike_count, spike_count_target.float()) / num_steps


def mse_membrane_loss(mem_out, targets, on_target=1.0, off_target=0.0):
    target = F.one_hot(targets, mem_out.size(-1)).float() * (on_target - off_target) + off_target
    return nn.MSELoss()(mem_out, target.unsqueeze(0).expand_as(mem_out))


def rate(data, uniforms):
    return (uniforms < data.clamp(0, 1)).float()


def latency(data, num_steps, tau=5, threshold=0.01):
    data = torch.clamp(data, 0, 1)
    spike_time = tau * torch.log(data / (data - threshold))
    spike_time = torch.nan_to_num(spike_time, nan=float(num_steps - 1), posinf=num_steps - 1)
    spike_time = spike_time.clamp(max=num_steps - 1).round().long()
    return F.one_hot(spike_time, num_steps).movedim(-1, 0).float()


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 1:
                p.copy_(torch.from_numpy(W[name]) * 3.0)  # enough input current to fire
    return model


num_steps, batch = 12, 8
X = torch.from_numpy(rng.uniform(0, 1, size=(batch, 10)).astype(np.float32))
y = torch.from_numpy(rng.integers(0, 3, batch))
spikes_in = rate(X.unsqueeze(0).expand(num_steps, -1, -1),
                 torch.from_numpy(rng.uniform(size=(num_steps, batch, 10)).astype(np.float32)))
lat = latency(X, num_steps)

net = load(Net(10, 16, 3, beta=0.9))
opt = torch.optim.Adam(net.parameters(), lr=5e-3, betas=(0.9, 0.999))
hist = {"loss": [], "acc": [], "rate": [], "beta": []}
for epoch in range(8):
    inp = spikes_in if epoch % 2 == 0 else lat
    spk_rec, mem_rec = net(inp)
    loss = ce_rate_loss(spk_rec, y) + mse_count_loss(spk_rec, y) + 0.1 * mse_membrane_loss(
        mem_rec, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    _, idx = spk_rec.sum(dim=0).max(1)
    hist["loss"].append(loss.item())
    hist["acc"].append(np.mean((y == idx).detach().cpu().numpy()).item())
    hist["rate"].append(spk_rec.mean().item())
    hist["beta"].append(net.lif1.beta.item())
grads = {n: p.grad.norm().item() for n, p in net.named_parameters()}

# the two surrogates' gradients at fixed membranes
mem = torch.linspace(-1, 1, 9, requires_grad=True)
spike_fn(mem).sum().backward()
fs_grad = mem.grad.tolist()
mem.grad = None
atan_spike(mem).sum().backward()
atan_grad = mem.grad.tolist()

images = torch.from_numpy(rng.uniform(0, 1, size=(6, 1, 8, 8)).astype(np.float32))
labels = torch.from_numpy(rng.integers(0, 3, 6))
cnn_in = rate(images.unsqueeze(0).repeat(8, 1, 1, 1, 1),
              torch.from_numpy(rng.uniform(size=(8, 6, 1, 8, 8)).astype(np.float32)))
cnn = load(ConvSNN())
copt = torch.optim.Adam(cnn.parameters(), lr=1e-2)
cnn_losses, cnn_counts = [], []
for step in range(5):
    spk, memv = cnn(cnn_in)
    loss = ce_rate_loss(memv, labels)
    copt.zero_grad()
    loss.backward()
    copt.step()
    cnn_losses.append(loss.item())
    cnn_counts.append(spk.sum(0).long().tolist())

report(lat=lat.sum(0).tolist(), n_in_spikes=int(spikes_in.sum().item()), **hist,
       grads=grads, fs_grad=fs_grad, atan_grad=atan_grad, cnn_losses=cnn_losses,
       cnn_counts=cnn_counts)
