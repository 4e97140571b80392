# DeltaNet (linear attention with the delta rule; Schlag et al. 2021, Yang et al. 2024) as the
# flash-linear-attention reference code writes it in pure PyTorch: the recurrent form
# S_t = S_{t-1} + beta_t (v_t - S_{t-1} k_t) k_t^T, and the chunkwise parallel form through
# the WY representation (a strictly lower triangular system solved by forward substitution
# with in-place row updates on a clone, then -A @ ... products per chunk); L2-normalised keys,
# sigmoid betas, a short causal conv, multi-head layout by rearranging views; both forms agree
# on outputs and gradients; gated DeltaNet's decay (exp of a cumulative log-gate); a small
# DeltaNet LM layer trained with AdamW. Triangular solves are cross-checked with
# torch.linalg.solve_triangular.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report


def delta_rule_recurrent(q, k, v, beta):
    b, h, l, d_k = q.shape
    d_v = v.shape[-1]
    o = torch.zeros_like(v)
    S = torch.zeros(b, h, d_k, d_v)
    q = q * (d_k**-0.5)
    for i in range(l):
        _k = k[:, :, i]
        _q = q[:, :, i]
        _v = v[:, :, i].clone()
        beta_i = beta[:, :, i]
        _v = _v - (S.clone() * _k[..., None]).sum(-2)
        _v = _v * beta_i[..., None]
        S = S.clone() + _k.unsqueeze(-1) * _v.unsqueeze(-2)
        o[:, :, i] = torch.einsum("bhd,bhdm->bhm", _q, S)
    return o, S


def delta_rule_chunkwise(q, k, v, beta, chunk_size=4):
    b, h, l, d_k = q.shape
    q = q * (d_k**-0.5)
    v = v * beta[..., None]
    k_beta = k * beta[..., None]
    n = l // chunk_size
    q, k, v, k_beta = (x.reshape(b, h, n, chunk_size, -1) for x in (q, k, v, k_beta))
    mask = torch.triu(torch.ones(chunk_size, chunk_size, dtype=torch.bool), diagonal=0)
    attn = -(k_beta @ k.transpose(-1, -2)).masked_fill(mask, 0)
    for i in range(1, chunk_size):
        attn[..., i, :i] = attn[..., i, :i].clone() + (
            attn[..., i, :, None].clone() * attn[..., :, :i].clone()
        ).sum(-2)
    attn = attn + torch.eye(chunk_size)
    u = attn @ v
    w = attn @ k_beta
    S = k.new_zeros(b, h, d_k, v.shape[-1])
    o = torch.zeros_like(v)
    mask = torch.triu(torch.ones(chunk_size, chunk_size, dtype=torch.bool), diagonal=1)
    for i in range(n):
        q_i, k_i = q[:, :, i], k[:, :, i]
        attn_i = (q_i @ k_i.transpose(-1, -2)).masked_fill_(mask, 0)
        u_i = u[:, :, i] - w[:, :, i] @ S
        o_inter = q_i @ S
        o[:, :, i] = o_inter + attn_i @ u_i
        S = S + k_i.transpose(-1, -2) @ u_i
    return o.reshape(b, h, l, -1), S


rng = np.random.default_rng(8)
B, H, L, D = 2, 2, 8, 4


def t(*shape):
    return torch.from_numpy(rng.standard_normal(shape).astype(np.float32))


q, k, v = t(B, H, L, D), F.normalize(t(B, H, L, D), p=2, dim=-1), t(B, H, L, D)
beta = torch.sigmoid(t(B, H, L))
results = {}
grads = []
for fn in (delta_rule_recurrent, delta_rule_chunkwise):
    qq, kk, vv, bb = (x.clone().requires_grad_(True) for x in (q, k, v, beta))
    o, S = fn(qq, kk, vv, bb)
    (o.pow(2).sum() + S.sum()).backward()
    grads.append([x.grad for x in (qq, kk, vv, bb)])
    results[fn.__name__] = dict(
        o=o[0, 0, :, 0].tolist(),
        S=S[1, 1, 0].tolist(),
        dk=kk.grad[0, 1, :, 1].tolist(),
        dbeta=bb.grad[1, 0].tolist(),
    )
results["grads_agree"] = [bool(torch.allclose(a, b, rtol=1e-4, atol=1e-5)) for a, b in zip(*grads)]

# the WY matrix is the inverse of (I + strictly-lower(K_beta K^T)): check by solve_triangular
kb = (k * beta[..., None])[0, 0, :4]
A = torch.eye(4) + torch.tril(kb @ k[0, 0, :4].T, diagonal=-1)
T_inv = torch.linalg.solve_triangular(A, torch.eye(4), upper=False)
results["wy_inverse"] = T_inv[3].tolist()


# gated DeltaNet: S_t = alpha_t S_{t-1} + ..., alpha_t = exp(g_t)
def gated_delta_recurrent(q, k, v, beta, gk):
    b, h, l, d_k = q.shape
    S = torch.zeros(b, h, d_k, v.shape[-1])
    outs = []
    for i in range(l):
        S = S * gk[:, :, i].exp()[..., None, None]
        kv = (S * k[:, :, i, :, None]).sum(-2)
        S = S + k[:, :, i, :, None] * ((v[:, :, i] - kv) * beta[:, :, i, None])[..., None, :]
        outs.append(torch.einsum("bhd,bhdm->bhm", q[:, :, i] * d_k**-0.5, S))
    return torch.stack(outs, 2)


gk = F.logsigmoid(t(B, H, L))
og = gated_delta_recurrent(q, k, v, beta, gk)
results["gated_out"] = og[1, 0, :, 2].tolist()
results["decay_total"] = gk.cumsum(-1)[..., -1].exp().flatten().tolist()


class DeltaNetLayer(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.b_proj = nn.Linear(dim, heads, bias=False)
        self.conv = nn.Conv1d(dim, dim, 3, groups=dim, padding=2)
        self.o_norm = nn.RMSNorm(dim // heads)
        self.o_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x):
        b, l, d = x.shape
        xc = F.silu(self.conv(x.transpose(1, 2))[..., :l].transpose(1, 2))
        q, k, v = (
            p(xc).view(b, l, self.heads, -1).transpose(1, 2)
            for p in (self.q_proj, self.k_proj, self.v_proj)
        )
        q, k = F.silu(q), F.normalize(F.silu(k), dim=-1)
        beta = self.b_proj(x).sigmoid().transpose(1, 2)
        o, _ = delta_rule_chunkwise(q, k, v, beta, chunk_size=4)
        o = self.o_norm(o).transpose(1, 2).reshape(b, l, d)
        return self.o_proj(o)


emb = nn.Embedding(12, 16)
layer = DeltaNetLayer(16, 2)
head = nn.Linear(16, 12)
model = nn.ModuleDict(dict(emb=emb, layer=layer, head=head))
W = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
seq = torch.from_numpy(np.tile(np.arange(12), 4)[None].repeat(3, 0))
losses = []
for step in range(8):
    off = int(rng.integers(0, 12))
    batch = seq[:, off : off + 17]
    x = emb(batch[:, :-1])
    logits = head(x + layer(x))
    loss = F.cross_entropy(logits.reshape(-1, 12), batch[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
results["lm_losses"] = losses
report(**results)
