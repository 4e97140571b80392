# Quantization-aware training written by hand, the way QAT research repositories do it next to
# (or instead of) torch.ao.quantization (our own program): min/max observers as buffers with an
# EMA (torch.ao's MovingAverageMinMaxObserver arithmetic: _calculate_qparams for affine uint8
# activations and symmetric per-channel int8 weights, zero points rounded and clamped as
# torch.int), torch.fake_quantize_per_tensor_affine on activations (Python float / int
# qparams from .item()) and fake_quantize_per_channel_affine on weights (axis 0, int32 zero
# points); LSQ (Esser et al.) with grad_scale / round_pass straight-through tricks and a
# data-initialised step size behind a uint8 `init_state` buffer; PACT's learnable clipping
# written with abs(); DoReFa weights by tanh normalisation; float pre-training, QAT, observers
# frozen by apply(), then an int8 "export": weights rounded to torch.int8, an int32 matmul of
# zero-point-shifted integers, rescaled and checked against the fake-quantized float model.
import math

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import nn

# In float64 (set_default_dtype): QAT's forward rounds every activation to a grid, so two
# libraries whose float32 matmuls differ by an ulp (BLAS summation order) round a value lying
# within that ulp of a grid midpoint differently, and training then follows a different path:
# in float32 the losses parted by 3e-5 after one step and 3e-4 after four (PyTorch against
# descent, whose fake quantization is bit-identical on the same input). float64 makes such a
# tie ~1e9 times rarer; torch's fake_quantize kernels take float64 inputs (with float32 scales)
torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(8)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(np.asarray(W[name], dtype=np.float64)))
    return model


def _calculate_qparams(min_val, max_val, quant_min, quant_max, symmetric, eps=1.1920929e-07):
    min_val_neg = torch.min(min_val, torch.zeros_like(min_val))
    max_val_pos = torch.max(max_val, torch.zeros_like(max_val))
    if symmetric:
        max_val_pos = torch.max(-min_val_neg, max_val_pos)
        scale = max_val_pos / (float(quant_max - quant_min) / 2)
        scale = torch.max(scale, torch.tensor(eps))
        zero_point = torch.zeros(min_val.shape, dtype=torch.int32)
    else:
        scale = (max_val_pos - min_val_neg) / float(quant_max - quant_min)
        scale = torch.max(scale, torch.tensor(eps))
        zero_point = quant_min - torch.round(min_val_neg / scale).to(torch.int)
        zero_point = torch.clamp(zero_point, quant_min, quant_max)
    return scale, zero_point


class MovingAverageMinMax(nn.Module):
    def __init__(self, averaging_constant=0.1, ch_axis=None):
        super().__init__()
        self.averaging_constant = averaging_constant
        self.ch_axis = ch_axis
        self.enabled = True
        self.register_buffer("min_val", torch.tensor(float("inf")))
        self.register_buffer("max_val", torch.tensor(float("-inf")))

    def forward(self, x):
        if not self.enabled:
            return x
        x_detached = x.detach()
        if self.ch_axis is None:
            min_now, max_now = torch.aminmax(x_detached)
        else:
            y = torch.flatten(x_detached.transpose(0, self.ch_axis), start_dim=1)
            min_now, max_now = torch.aminmax(y, dim=1)
        if self.min_val.numel() == 1 and self.min_val == float("inf"):
            min_val, max_val = min_now, max_now
        else:
            min_val = self.min_val + self.averaging_constant * (min_now - self.min_val)
            max_val = self.max_val + self.averaging_constant * (max_now - self.max_val)
        self.min_val.resize_(min_val.shape)
        self.max_val.resize_(max_val.shape)
        self.min_val.copy_(min_val)
        self.max_val.copy_(max_val)
        return x


class FakeQuantAct(nn.Module):
    def __init__(self, quant_min=0, quant_max=255):
        super().__init__()
        self.observer = MovingAverageMinMax()
        self.quant_min, self.quant_max = quant_min, quant_max

    def qparams(self):
        return _calculate_qparams(self.observer.min_val, self.observer.max_val,
                                  self.quant_min, self.quant_max, symmetric=False)

    def forward(self, x):
        self.observer(x)
        scale, zero_point = self.qparams()
        return torch.fake_quantize_per_tensor_affine(x, scale.item(), int(zero_point.item()),
                                                     self.quant_min, self.quant_max)


class QATLinear(nn.Linear):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__(in_features, out_features, bias)
        self.weight_observer = MovingAverageMinMax(averaging_constant=1.0, ch_axis=0)

    def weight_qparams(self):
        return _calculate_qparams(self.weight_observer.min_val, self.weight_observer.max_val,
                                  -128, 127, symmetric=True)

    def forward(self, x):
        self.weight_observer(self.weight)
        scale, zero_point = self.weight_qparams()
        w = torch.fake_quantize_per_channel_affine(self.weight, scale.float(), zero_point, 0,
                                                   -128, 127)
        return F.linear(x, w, self.bias)


class QATConv2d(nn.Conv2d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.weight_observer = MovingAverageMinMax(averaging_constant=1.0, ch_axis=0)

    def forward(self, x):
        self.weight_observer(self.weight)
        scale, zero_point = _calculate_qparams(self.weight_observer.min_val,
                                               self.weight_observer.max_val, -128, 127, True)
        w = torch.fake_quantize_per_channel_affine(self.weight, scale.float(), zero_point, 0,
                                                   -128, 127)
        return self._conv_forward(x, w, self.bias)


class Net(nn.Module):
    def __init__(self, qat=False):
        super().__init__()
        Conv = QATConv2d if qat else nn.Conv2d
        Lin = QATLinear if qat else nn.Linear
        self.quant_in = FakeQuantAct() if qat else nn.Identity()
        self.conv = Conv(1, 4, 3)
        self.act1 = FakeQuantAct() if qat else nn.Identity()
        self.fc1 = Lin(4 * 4 * 4, 24)
        self.act2 = FakeQuantAct() if qat else nn.Identity()
        self.fc2 = Lin(24, 3)

    def forward(self, x):
        x = self.quant_in(x)
        x = self.act1(F.relu(self.conv(x)))
        x = self.act2(F.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)


images = torch.from_numpy(rng.standard_normal((48, 1, 6, 6)))
labels = torch.from_numpy((images[:, 0, 2:4, 2:4].numpy().sum((1, 2)) > 0).astype(np.int64)
                          + (images[:, 0, 0].numpy().sum(1) > 1.0).astype(np.int64))

float_model = load(Net())
opt = torch.optim.SGD(float_model.parameters(), lr=0.05, momentum=0.9)
float_losses = []
for step in range(4):
    x, y = images[(step % 3) * 16:(step % 3 + 1) * 16], labels[(step % 3) * 16:(step % 3 + 1) * 16]
    loss = F.cross_entropy(float_model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    float_losses.append(loss.item())

qat_model = Net(qat=True)
missing = qat_model.load_state_dict(float_model.state_dict(), strict=False)
opt = torch.optim.SGD(qat_model.parameters(), lr=0.02, momentum=0.9)
qat_losses, act_qparams = [], []
for step in range(6):
    if step == 4:  # freeze the observers, as torch.ao's disable_observer through apply()
        qat_model.apply(lambda m: setattr(m, "enabled", False)
                        if isinstance(m, MovingAverageMinMax) else None)
    x, y = images[(step % 3) * 16:(step % 3 + 1) * 16], labels[(step % 3) * 16:(step % 3 + 1) * 16]
    loss = F.cross_entropy(qat_model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    qat_losses.append(loss.item())
    s, z = qat_model.act1.qparams()
    act_qparams.append([s.item(), z.item(), str(z.dtype).split(".")[-1]])
w_scale, w_zp = qat_model.fc1.weight_qparams()
observers = [list(qat_model.fc1.weight_observer.min_val.shape), w_scale[:4].tolist(),
             w_zp[:4].tolist(), str(w_zp.dtype).split(".")[-1],
             sorted(missing.missing_keys)[:3], len(missing.unexpected_keys)]

# int8 "export" of fc2 and a check against the fake-quantized float path
with torch.no_grad():
    qat_model.eval()
    x = images[:8]
    h = qat_model.act2(F.relu(qat_model.fc1(qat_model.act1(
        F.relu(qat_model.conv(qat_model.quant_in(x)))).flatten(1))))
    a_scale, a_zp = qat_model.act2.qparams()
    w = qat_model.fc2.weight
    ws, wz = qat_model.fc2.weight_qparams()
    q_w = torch.clamp(torch.round(w / ws.unsqueeze(1)), -128, 127).to(torch.int8)
    q_x = torch.clamp(torch.round(h / a_scale) + a_zp, 0, 255).to(torch.uint8)
    acc = (q_x.to(torch.int32) - a_zp.to(torch.int32)) @ q_w.to(torch.int32).t()
    y_int = acc.float() * (a_scale * ws) + qat_model.fc2.bias
    y_fake = qat_model.fc2(h)
    export = [q_w.dtype == torch.int8, q_x.dtype == torch.uint8, str(acc.dtype).split(".")[-1],
              acc[:2].tolist(), (y_int - y_fake).abs().max().item() < 1e-4,
              y_fake[:2].tolist(), int(q_w.abs().max())]


# ------------------------------------------------------------- LSQ, PACT, DoReFa
def grad_scale(x, scale):
    y = x
    y_grad = x * scale
    return (y - y_grad).detach() + y_grad


def round_pass(x):
    y = x.round()
    y_grad = x
    return (y - y_grad).detach() + y_grad


class LsqQuan(nn.Module):
    def __init__(self, bit, all_positive=False, symmetric=False):
        super().__init__()
        if all_positive:
            self.thd_neg, self.thd_pos = 0, 2 ** bit - 1
        elif symmetric:
            self.thd_neg, self.thd_pos = -2 ** (bit - 1) + 1, 2 ** (bit - 1) - 1
        else:
            self.thd_neg, self.thd_pos = -2 ** (bit - 1), 2 ** (bit - 1) - 1
        self.s = nn.Parameter(torch.ones(1))
        self.register_buffer("init_state", torch.zeros(1, dtype=torch.uint8))

    def forward(self, x):
        if self.init_state == 0:
            self.s.data.copy_(x.detach().abs().mean() * 2 / (self.thd_pos ** 0.5))
            self.init_state.fill_(1)
        s_grad_scale = 1.0 / ((self.thd_pos * x.numel()) ** 0.5)
        s_scale = grad_scale(self.s, s_grad_scale)
        x = x / s_scale
        x = torch.clamp(x, self.thd_neg, self.thd_pos)
        x = round_pass(x)
        x = x * s_scale
        return x


class PACT(nn.Module):
    def __init__(self, bit=4, alpha=6.0):
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(alpha))
        self.levels = 2 ** bit - 1

    def forward(self, x):
        y = 0.5 * (x.abs() - (x - self.alpha).abs() + self.alpha)
        scale = self.levels / self.alpha
        return round_pass(y * scale) / scale


def dorefa_weight(w, bit):
    n = float(2 ** bit - 1)
    w = torch.tanh(w)
    w = w / (2 * torch.max(torch.abs(w)).detach()) + 0.5
    return 2 * round_pass(w * n) / n - 1


class LsqNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(36, 20)
        self.wq1 = LsqQuan(4, symmetric=True)
        self.aq1 = PACT(4, alpha=3.0)
        self.fc2 = nn.Linear(20, 3)
        self.aq2 = LsqQuan(4, all_positive=True)

    def forward(self, x):
        x = F.linear(x.flatten(1), self.wq1(self.fc1.weight), self.fc1.bias)
        x = self.aq1(x)
        x = self.aq2(F.relu(x))
        return F.linear(x, dorefa_weight(self.fc2.weight, 3), self.fc2.bias)


lsq = LsqNet()
load(lsq)
with torch.no_grad():
    lsq.aq1.alpha.fill_(3.0)
opt = torch.optim.Adam([p for n, p in lsq.named_parameters() if not n.endswith(".s")], lr=5e-3)
opt.add_param_group({"params": [lsq.wq1.s, lsq.aq2.s], "lr": 1e-3})
lsq_losses, steps = [], []
for step in range(6):
    x, y = images[(step % 3) * 16:(step % 3 + 1) * 16], labels[(step % 3) * 16:(step % 3 + 1) * 16]
    loss = F.cross_entropy(lsq(x), y)
    opt.zero_grad()
    loss.backward()
    steps.append([lsq.wq1.s.grad.item(), lsq.aq1.alpha.grad.item()])
    opt.step()
    lsq_losses.append(loss.item())
lsq_state = [lsq.wq1.s.item(), lsq.aq2.s.item(), lsq.aq1.alpha.item(),
             int(lsq.wq1.init_state), math.isfinite(lsq_losses[-1])]

report(float_losses=float_losses, qat_losses=qat_losses, act_qparams=act_qparams,
       observers=observers, export=export, lsq_losses=lsq_losses, lsq_grads=steps,
       lsq_state=lsq_state)
