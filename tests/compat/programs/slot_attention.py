# Slot Attention (Locatello et al. 2020) as the reference PyTorch ports write it: a small CNN
# encoder with a soft position embedding (a Linear over a 4-channel coordinate grid built by
# meshgrid / stack / cat with 1 - grid), slots drawn from a learned Gaussian (mu + exp(log_sigma)
# * noise, the noise from NumPy), iterative attention normalised over slots (softmax dim=1) then
# a weighted mean over inputs (+ eps, sum over dim -1 keepdim), a GRUCell update on flattened
# slots (reshape(-1, D)), a residual MLP, and a spatial-broadcast decoder (repeat over an 8x8
# grid) that splits RGB from a mask logit, softmax over slots and recombines. Adam with a
# linear warmup times exponential decay LambdaLR, clip_grad_norm_; ARI-style mask statistics.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(5)
B, H, W_, K = 6, 8, 8, 3


def make_scene():
    img = np.zeros((3, H, W_), np.float32)
    masks = np.zeros((H, W_), np.int64)
    for k in range(1, 3):
        cy, cx = rng.integers(1, 7, 2)
        col = rng.uniform(0.2, 1.0, 3)
        yy, xx = np.mgrid[:H, :W_]
        m = (yy - cy) ** 2 + (xx - cx) ** 2 <= 3
        img[:, m] = col[:, None]
        masks[m] = k
    return img, masks


scenes = [make_scene() for _ in range(B)]
imgs = torch.from_numpy(np.stack([s[0] for s in scenes]))
gt = torch.from_numpy(np.stack([s[1] for s in scenes]))


def build_grid(res):
    ranges = [torch.linspace(0.0, 1.0, steps=r) for r in res]
    grid = torch.meshgrid(*ranges, indexing="ij")
    grid = torch.stack(grid, dim=-1).reshape(res[0], res[1], -1).unsqueeze(0)
    return torch.cat([grid, 1.0 - grid], dim=-1)


class SoftPositionEmbed(nn.Module):
    def __init__(self, hidden, res):
        super().__init__()
        self.dense = nn.Linear(4, hidden)
        self.register_buffer("grid", build_grid(res))

    def forward(self, x):  # x: (B, H, W, C)
        return x + self.dense(self.grid)


class SlotAttention(nn.Module):
    def __init__(self, num_slots, dim, iters=3, eps=1e-8, hidden=32):
        super().__init__()
        self.num_slots, self.iters, self.eps = num_slots, iters, eps
        self.scale = dim**-0.5
        self.slots_mu = nn.Parameter(torch.zeros(1, 1, dim))
        self.slots_log_sigma = nn.Parameter(torch.zeros(1, 1, dim))
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.gru = nn.GRUCell(dim, dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim)
        )
        self.norm_input = nn.LayerNorm(dim)
        self.norm_slots = nn.LayerNorm(dim)
        self.norm_pre_ff = nn.LayerNorm(dim)

    def forward(self, inputs, noise):
        b, n, d = inputs.shape
        mu = self.slots_mu.expand(b, self.num_slots, -1)
        sigma = self.slots_log_sigma.exp().expand(b, self.num_slots, -1)
        slots = mu + sigma * noise
        inputs = self.norm_input(inputs)
        k, v = self.to_k(inputs), self.to_v(inputs)
        for _ in range(self.iters):
            slots_prev = slots
            slots = self.norm_slots(slots)
            q = self.to_q(slots)
            dots = torch.einsum("bid,bjd->bij", q, k) * self.scale
            attn = dots.softmax(dim=1) + self.eps
            attn = attn / attn.sum(dim=-1, keepdim=True)
            updates = torch.einsum("bjd,bij->bid", v, attn)
            slots = self.gru(updates.reshape(-1, d), slots_prev.reshape(-1, d))
            slots = slots.reshape(b, -1, d)
            slots = slots + self.mlp(self.norm_pre_ff(slots))
        return slots, attn


class SlotAutoEncoder(nn.Module):
    def __init__(self, dim=16, num_slots=K):
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(3, dim, 3, padding=1), nn.ReLU(), nn.Conv2d(dim, dim, 3, padding=1), nn.ReLU()
        )
        self.enc_pos = SoftPositionEmbed(dim, (H, W_))
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.slot_attention = SlotAttention(num_slots, dim)
        self.dec_pos = SoftPositionEmbed(dim, (H, W_))
        self.dec = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1), nn.ReLU(), nn.Conv2d(dim, 4, 3, padding=1)
        )
        self.ln = nn.LayerNorm(dim)

    def forward(self, image, noise):
        x = self.enc(image).permute(0, 2, 3, 1)
        x = self.enc_pos(x)
        x = torch.flatten(x, 1, 2)
        x = self.mlp(self.ln(x))
        slots, attn = self.slot_attention(x, noise)
        b, s, d = slots.shape
        z = slots.reshape(b * s, d)[:, None, None, :].repeat((1, H, W_, 1))
        z = self.dec_pos(z).permute(0, 3, 1, 2)
        out = self.dec(z).reshape(b, s, 4, H, W_)
        recons, masks = out.split([3, 1], dim=2)
        masks = F.softmax(masks, dim=1)
        recon_combined = torch.sum(recons * masks, dim=1)
        return recon_combined, recons, masks, slots, attn


model = SlotAutoEncoder()
Wt = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(Wt[n]))
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
warmup, decay_steps = 4, 20
sched = torch.optim.lr_scheduler.LambdaLR(
    opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 ** (s / decay_steps)
)
losses, norms, lrs = [], [], []
for step in range(10):
    noise = torch.from_numpy(rng.standard_normal((B, K, 16)).astype(np.float32))
    recon, _, masks, slots, attn = model(imgs, noise)
    loss = F.mse_loss(recon, imgs)
    opt.zero_grad()
    loss.backward()
    norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), 1.0)))
    opt.step()
    sched.step()
    losses.append(loss.item())
    lrs.append(sched.get_last_lr()[0])

model.eval()
with torch.no_grad():
    noise = torch.from_numpy(rng.standard_normal((B, K, 16)).astype(np.float32))
    recon, recons, masks, slots, attn = model(imgs, noise)
    assign = masks.squeeze(2).argmax(dim=1)  # (B, H, W)
    # purity of each ground-truth object's pixels under the predicted slot assignment
    onehot_gt = F.one_hot(gt, 3).flatten(1, 2).float()  # (B, HW, 3)
    onehot_pr = F.one_hot(assign, K).flatten(1, 2).float()
    contingency = torch.einsum("bni,bnj->bij", onehot_gt, onehot_pr)
    purity = contingency.max(dim=2).values.sum(1) / contingency.sum((1, 2))

report(
    losses=losses,
    norms=norms,
    lrs=lrs,
    eval_mse=F.mse_loss(recon, imgs).item(),
    attn_sum=attn.sum(1).mean().item(),
    mask_sums=masks.sum(1).mean().item(),
    slot_norms=slots.norm(dim=-1).flatten().tolist(),
    contingency_shape=list(contingency.shape),
    purity=purity.tolist(),
)
