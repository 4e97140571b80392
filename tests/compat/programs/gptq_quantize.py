# Post-training weight quantization as GPTQ / AWQ / SmoothQuant code writes it, in float64 (the
# GPTQ error feedback divides by Cholesky diagonals, so float32 rounding would pick other grid
# points at ties): a Quantizer with per-channel min/max scales and zero points (round, clamp),
# round-to-nearest as the baseline, GPTQ's Hessian accumulated from calibration batches by
# forward hooks (H *= n / (n + tmp); H += inp.matmul(inp.t())), dead columns, dampening on the
# diagonal, H^-1's upper Cholesky factor by cholesky -> cholesky_inverse -> cholesky(upper=True),
# column-by-column quantization in blocks with lazy error updates, act-order permutation by
# argsort of diag(H) and its inverse; AWQ's activation-aware scale search over a grid of
# alphas, SmoothQuant's per-channel migration folded into a LayerNorm, int4 packing into uint8
# by bit shifts and unpacking. Our own program.
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(3)
D_IN, D_HID, D_OUT = 24, 32, 12


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm(D_IN)
        self.fc1 = nn.Linear(D_IN, D_HID)
        self.fc2 = nn.Linear(D_HID, D_OUT)

    def forward(self, x):
        return self.fc2(torch.nn.functional.gelu(self.fc1(self.ln(x))))


model = MLP()
W0 = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(W0[n]).double())
# outlier input channels, as in LLM activations
scale_in = np.ones(D_IN)
scale_in[[2, 9, 17]] = [8.0, 5.0, 12.0]
calib = [torch.from_numpy(rng.normal(size=(16, D_IN)) * scale_in) for _ in range(4)]
test_x = torch.from_numpy(rng.normal(size=(32, D_IN)) * scale_in)
with torch.no_grad():
    ref_out = model(test_x)


class Quantizer(nn.Module):
    def __init__(self, bits=4, sym=False):
        super().__init__()
        self.maxq = torch.tensor(2**bits - 1)
        self.sym = sym
        self.register_buffer("scale", torch.zeros(1))
        self.register_buffer("zero", torch.zeros(1))

    def find_params(self, x):
        tmp = torch.zeros(x.shape[0])
        xmin = torch.minimum(x.min(1)[0], tmp)
        xmax = torch.maximum(x.max(1)[0], tmp)
        if self.sym:
            xmax = torch.maximum(torch.abs(xmin), xmax)
            tmp = xmin < 0
            if torch.any(tmp):
                xmin[tmp] = -xmax[tmp]
        tmp = (xmin == 0) & (xmax == 0)
        xmin[tmp] = -1
        xmax[tmp] = +1
        self.scale = (xmax - xmin) / self.maxq
        if self.sym:
            self.zero = torch.full_like(self.scale, (self.maxq + 1) / 2)
        else:
            self.zero = torch.round(-xmin / self.scale)
        self.scale = self.scale.unsqueeze(1)
        self.zero = self.zero.unsqueeze(1)

    def quantize(self, x):
        q = torch.clamp(torch.round(x / self.scale) + self.zero, 0, self.maxq)
        return self.scale * (q - self.zero)


def output_err(m):
    with torch.no_grad():
        return ((m(test_x) - ref_out) ** 2).mean().item()


# ---- round to nearest
rtn = MLP()
rtn.load_state_dict(model.state_dict())
for lin in (rtn.fc1, rtn.fc2):
    q = Quantizer(bits=4)
    q.find_params(lin.weight.data)
    lin.weight.data = q.quantize(lin.weight.data)
rtn_err = output_err(rtn)


# ---- GPTQ
class GPTQ:
    def __init__(self, layer):
        self.layer = layer
        W = layer.weight.data.clone()
        self.rows, self.columns = W.shape
        self.H = torch.zeros((self.columns, self.columns))
        self.nsamples = 0

    def add_batch(self, inp, out):
        if len(inp.shape) == 2:
            inp = inp.unsqueeze(0)
        tmp = inp.shape[0]
        inp = inp.reshape((-1, inp.shape[-1])).t()
        self.H *= self.nsamples / (self.nsamples + tmp)
        self.nsamples += tmp
        inp = math.sqrt(2 / self.nsamples) * inp.double()
        self.H += inp.matmul(inp.t())

    def fasterquant(self, quantizer, blocksize=8, percdamp=0.01, actorder=False):
        W = self.layer.weight.data.clone()
        quantizer.find_params(W)
        H = self.H
        dead = torch.diag(H) == 0
        H[dead, dead] = 1
        W[:, dead] = 0
        if actorder:
            perm = torch.argsort(torch.diag(H), descending=True)
            W = W[:, perm]
            H = H[perm][:, perm]
            invperm = torch.argsort(perm)
        Losses = torch.zeros_like(W)
        Q = torch.zeros_like(W)
        damp = percdamp * torch.mean(torch.diag(H))
        diag = torch.arange(self.columns)
        H[diag, diag] += damp
        H = torch.linalg.cholesky(H)
        H = torch.cholesky_inverse(H)
        H = torch.linalg.cholesky(H, upper=True)
        Hinv = H
        for i1 in range(0, self.columns, blocksize):
            i2 = min(i1 + blocksize, self.columns)
            count = i2 - i1
            W1 = W[:, i1:i2].clone()
            Q1 = torch.zeros_like(W1)
            Err1 = torch.zeros_like(W1)
            Losses1 = torch.zeros_like(W1)
            Hinv1 = Hinv[i1:i2, i1:i2]
            for i in range(count):
                w = W1[:, i]
                d = Hinv1[i, i]
                q = quantizer.quantize(w.unsqueeze(1)).flatten()
                Q1[:, i] = q
                Losses1[:, i] = (w - q) ** 2 / d**2
                err1 = (w - q) / d
                W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
                Err1[:, i] = err1
            Q[:, i1:i2] = Q1
            Losses[:, i1:i2] = Losses1 / 2
            W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
        if actorder:
            Q = Q[:, invperm]
        self.layer.weight.data = Q.reshape(self.layer.weight.shape).to(self.layer.weight.data.dtype)
        return torch.sum(Losses).item()


results = {"rtn_err": rtn_err}
for actorder in (False, True):
    qm = MLP()
    qm.load_state_dict(model.state_dict())
    for name in ("fc1", "fc2"):  # sequential: fc2's Hessian sees the quantized fc1
        layer = getattr(qm, name)
        g = GPTQ(layer)
        h = layer.register_forward_hook(
            lambda mod, inp, out, g=g: g.add_batch(inp[0].data, out.data)
        )
        with torch.no_grad():
            for xb in calib:
                qm(xb)
        h.remove()
        quantizer = Quantizer(bits=4)
        results[f"gptq_loss_{name}_{actorder}"] = g.fasterquant(quantizer, actorder=actorder)
        results[f"gptq_w_{name}_{actorder}"] = layer.weight.sum().item()
    results[f"gptq_err_{actorder}"] = output_err(qm)

# ---- AWQ-style scale search for fc1: s = x_mean ** alpha, W * s, x / s
x_all = torch.cat(calib)
with torch.no_grad():
    xn = model.ln(x_all)
    x_mean = xn.abs().view(-1, D_IN).mean(0)
    target = model.fc1(xn)
    best = (float("inf"), None, None)
    history = []
    for ratio in range(0, 10):
        alpha = ratio / 10
        s = x_mean.pow(alpha).clamp(min=1e-4)
        s = s / (s.max() * s.min()).sqrt()
        Wq = model.fc1.weight * s.view(1, -1)
        q = Quantizer(bits=3)
        q.find_params(Wq)
        Wq = q.quantize(Wq) / s.view(1, -1)
        out = nn.functional.linear(xn, Wq, model.fc1.bias)
        err = (out - target).float().pow(2).mean().item()
        history.append(err)
        if err < best[0]:
            best = (err, alpha, s)
results["awq_history"] = history
results["awq_alpha"] = best[1]

# ---- SmoothQuant: migrate activation outliers into the weights, fold 1/s into the LayerNorm
with torch.no_grad():
    act_max = xn.abs().amax(dim=0)
    w_max = model.fc1.weight.abs().max(dim=0)[0].clamp(min=1e-5)
    s = (act_max.pow(0.5) / w_max.pow(0.5)).clamp(min=1e-5)
    sm = MLP()
    sm.load_state_dict(model.state_dict())
    sm.ln.weight.div_(s)
    sm.ln.bias.div_(s)
    sm.fc1.weight.mul_(s.view(1, -1))
    results["smooth_equiv"] = (sm(test_x) - ref_out).abs().max().item()

    def quant_act_per_tensor(t, bits=8):
        scale = t.abs().max() / (2 ** (bits - 1) - 1)
        return (t / scale).round().clamp(-128, 127) * scale

    for tag, m in (("plain", model), ("smooth", sm)):
        a = quant_act_per_tensor(m.ln(test_x))
        qw = Quantizer(bits=8, sym=True)
        qw.find_params(m.fc1.weight)
        y = nn.functional.linear(a, qw.quantize(m.fc1.weight), m.fc1.bias)
        results[f"w8a8_err_{tag}"] = (y - m.fc1(m.ln(test_x))).pow(2).mean().item()

# ---- int4 packing: two codes per uint8
q = Quantizer(bits=4)
W = model.fc2.weight.data
q.find_params(W)
codes = torch.clamp(torch.round(W / q.scale) + q.zero, 0, 15).to(torch.uint8)
packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).contiguous()
lo = packed & 0x0F
hi = (packed >> 4) & 0x0F
unpacked = torch.stack([lo, hi], dim=-1).reshape(codes.shape)
results["packed_bytes"] = packed.numel() * packed.element_size()
results["pack_roundtrip"] = bool(torch.equal(unpacked, codes))
results["packed_sum"] = int(packed.to(torch.int64).sum())
results["dequant_err"] = (q.scale * (unpacked.double() - q.zero) - W).abs().max().item()
report(**results)
