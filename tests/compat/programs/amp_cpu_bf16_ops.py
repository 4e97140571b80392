# CPU mixed precision (torch.autocast("cpu", dtype=torch.bfloat16)) over the ops that model code
# reaches outside nn.Linear: HuggingFace GPT-2's Conv1D (torch.addmm(bias, x, weight)), attention
# scores by torch.baddbmm (GPT-2's / BLOOM's reordered attention) and by einsum, a DCGAN-style
# generator of ConvTranspose2d layers, torch.linalg.vecdot similarities, a deep-kernel GP head
# that casts the features to float64 inside the region (a float64 product stays float64 under
# autocast), and dot / mv / addmv / vdot metrics, which autocast leaves in float32. Output
# dtypes are compared exactly; values at bfloat16's resolution (8 bits: 2e-2 relative).
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(31)
torch.manual_seed(0)


class Conv1D(nn.Module):
    """transformers.pytorch_utils.Conv1D: a linear layer with a transposed weight."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        size_out = x.size()[:-1] + (self.nf,)
        x = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return x.view(size_out)


class Block(nn.Module):
    def __init__(self, d=16, heads=2, einsum_scores=False):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.ln = nn.LayerNorm(d)
        self.c_attn = Conv1D(3 * d, d)
        self.c_proj = Conv1D(d, d)
        self.einsum_scores = einsum_scores

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(self.ln(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.h, self.dh).transpose(1, 2) for z in (q, k, v))
        if self.einsum_scores:
            scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / self.dh**0.5
        else:
            qf, kf = q.reshape(b * self.h, t, self.dh), k.reshape(b * self.h, t, self.dh)
            base = torch.zeros(b * self.h, t, t, dtype=qf.dtype)
            scores = torch.baddbmm(base, qf, kf.transpose(-1, -2), beta=0, alpha=self.dh**-0.5)
            scores = scores.view(b, self.h, t, t)
        causal = torch.ones(t, t, dtype=torch.bool).tril()
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
        attn = scores.softmax(-1)
        out = torch.einsum("bhqk,bhkd->bhqd", attn, v).transpose(1, 2).reshape(b, t, d)
        return x + self.c_proj(out), scores.dtype, attn.dtype


class Generator(nn.Module):
    def __init__(self, nz=8, ngf=4):
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 2, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True), nn.ConvTranspose2d(ngf * 2, 1, 4, 2, 1, bias=False), nn.Tanh(),
        )  # fmt: skip

    def forward(self, z):
        return self.net(z)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def name(dtype):
    return str(dtype).split(".")[-1]


def arr(*shape, scale=1.0):
    return torch.from_numpy((scale * rng.standard_normal(shape)).astype(np.float32))


results = {}
for tag, einsum_scores in (("baddbmm", False), ("einsum", True)):
    block = load(Block(einsum_scores=einsum_scores))
    head = load(nn.Linear(16, 5))
    opt = torch.optim.AdamW(list(block.parameters()) + list(head.parameters()), lr=1e-2)
    losses = []
    for step in range(4):
        x, y = arr(2, 6, 16), torch.from_numpy(rng.integers(0, 5, size=(2 * 6,)))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            h, score_dtype, attn_dtype = block(x)
            logits = head(h)
            loss = F.cross_entropy(logits.view(-1, 5), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    results[tag + "_losses"] = losses
    results[tag + "_dtypes"] = [name(h.dtype), name(score_dtype), name(attn_dtype),
                                name(logits.dtype), name(loss.dtype)]  # fmt: skip
    results[tag + "_grad_dtype"] = name(block.c_attn.weight.grad.dtype)

# DCGAN generator step under autocast
gen = load(Generator())
opt_g = torch.optim.Adam(gen.parameters(), lr=2e-3, betas=(0.5, 0.999))
target = torch.tanh(arr(4, 1, 8, 8))
g_losses = []
for step in range(3):
    z = arr(4, 8, 1, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fake = gen(z)
        g_loss = F.mse_loss(fake.float(), target)
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    g_losses.append(g_loss.item())
results["gen_losses"] = g_losses
results["gen_dtype"] = name(fake.dtype)

# deep-kernel GP head: features in bfloat16, the kernel algebra cast to float64 inside the region
feats_in = arr(8, 16)
y_gp = arr(8, 1, scale=0.5).double()
with torch.autocast("cpu", dtype=torch.bfloat16):
    feats = F.linear(feats_in, load(nn.Linear(16, 4)).weight)
    f64 = feats.double()
    K = f64 @ f64.T + 0.5 * torch.eye(8, dtype=torch.float64)
    alpha = torch.linalg.solve(K, y_gp)
    nll = 0.5 * (y_gp.T @ alpha).squeeze() + torch.linalg.slogdet(K)[1] / 2
    sims = torch.linalg.vecdot(feats_in, feats_in.flip(0))
    w = arr(16)
    metrics = [torch.dot(w, w), torch.mv(feats_in, w), torch.addmv(arr(8), feats_in, w),
               torch.vdot(w, w)]  # fmt: skip
results["feat_dtype"] = name(feats.dtype)
results["kernel_dtype"] = name(K.dtype)
results["nll"] = nll.item()
results["alpha"] = alpha.flatten().tolist()
results["sims_dtype"] = name(sims.dtype)
results["sims"] = sims.float().tolist()
results["metric_dtypes"] = [name(m.dtype) for m in metrics]
results["metrics"] = [m.flatten()[:3].tolist() for m in metrics]
report(**results)
