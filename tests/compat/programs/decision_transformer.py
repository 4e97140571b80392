# The Decision Transformer (Chen et al. 2021) as min-decision-transformer / the official gym code
# write it: trajectories from a scripted policy on a 1-D point-mass task, returns-to-go by a
# reversed cumsum (flip / cumsum / flip) scaled by rtg_scale, random context windows with left
# padding and an attention mask, tokens (R_t, s_t, a_t) embedded separately plus a timestep
# Embedding, interleaved by stack(dim=1).permute(0, 2, 1, 3).reshape(B, 3K, h), a GPT of
# pre-LN blocks with a causal mask from register_buffer(torch.tril(...).view(1, 1, n, n)) and
# masked_fill(-inf), action predictions read from the state tokens (h[:, 1]), MSE on unpadded
# positions; AdamW with weight decay on Linear weights only, LambdaLR warmup, clip_grad_norm_
# 0.25; then an autoregressive evaluation rollout conditioned on a target return, the context
# cropped to the last K steps, the return-to-go decremented by each reward.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(37)
SD, AD, K, H, EP_LEN, MAX_T = 2, 1, 6, 32, 20, 32
RTG_SCALE = 10.0


def env_step(s, a):
    pos, vel = s
    vel = 0.9 * vel + 0.1 * float(np.clip(a, -1, 1))
    pos = pos + vel
    return np.array([pos, vel]), -abs(pos - 1.0)


def rollout(noise):
    s = np.array([rng.uniform(-1, 0), 0.0])
    S, A, R = [], [], []
    for _ in range(EP_LEN):
        a = np.clip(2.0 * (1.0 - s[0]) - 3.0 * s[1] + noise * rng.standard_normal(), -1, 1)
        S.append(s)
        A.append([a])
        s, r = env_step(s, a)
        R.append(r)
    return np.array(S, np.float32), np.array(A, np.float32), np.array(R, np.float32)


trajs = [rollout(noise) for noise in np.linspace(0.0, 1.0, 12)]
state_mean = np.concatenate([t[0] for t in trajs]).mean(0)
state_std = np.concatenate([t[0] for t in trajs]).std(0) + 1e-6


def discount_cumsum(r):
    r = torch.from_numpy(r)
    return torch.flip(torch.cumsum(torch.flip(r, [0]), 0), [0])


def get_batch(bs):
    S, A, R, T, M = [], [], [], [], []
    for _ in range(bs):
        s, a, r = trajs[rng.integers(len(trajs))]
        si = int(rng.integers(0, EP_LEN - 1))
        s_, a_ = s[si : si + K], a[si : si + K]
        rtg = discount_cumsum(r)[si : si + K].numpy() / RTG_SCALE
        tlen = s_.shape[0]
        pad = K - tlen
        S.append(np.concatenate([np.zeros((pad, SD)), (s_ - state_mean) / state_std]))
        A.append(np.concatenate([np.ones((pad, AD)) * -10.0, a_]))
        R.append(np.concatenate([np.zeros(pad), rtg])[:, None])
        T.append(np.concatenate([np.zeros(pad), np.arange(si, si + tlen)]))
        M.append(np.concatenate([np.zeros(pad), np.ones(tlen)]))

    def f(x, dt=torch.float32):
        return torch.from_numpy(np.array(x)).to(dtype=dt)

    return f(S), f(A), f(R), f(T, torch.long), f(M, torch.long)


class MaskedCausalAttention(nn.Module):
    def __init__(self, h, max_T, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.q_net, self.k_net, self.v_net = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.proj_net = nn.Linear(h, h)
        ones = torch.ones((max_T, max_T))
        self.register_buffer("mask", torch.tril(ones).view(1, 1, max_T, max_T))

    def forward(self, x, pad):
        B_, T_, C_ = x.shape
        N, D_ = self.n_heads, C_ // self.n_heads
        q = self.q_net(x).view(B_, T_, N, D_).transpose(1, 2)
        k = self.k_net(x).view(B_, T_, N, D_).transpose(1, 2)
        v = self.v_net(x).view(B_, T_, N, D_).transpose(1, 2)
        w = q @ k.transpose(2, 3) / math.sqrt(D_)
        w = w.masked_fill(self.mask[..., :T_, :T_] == 0, float("-inf"))
        w = w.masked_fill(pad[:, None, None, :] == 0, -1e4)
        att = F.softmax(w, dim=-1)
        out = (att @ v).transpose(1, 2).contiguous().view(B_, T_, N * D_)
        return self.proj_net(out)


class Block(nn.Module):
    def __init__(self, h, max_T, n_heads):
        super().__init__()
        self.attention = MaskedCausalAttention(h, max_T, n_heads)
        self.mlp = nn.Sequential(nn.Linear(h, 4 * h), nn.GELU(), nn.Linear(4 * h, h))
        self.ln1, self.ln2 = nn.LayerNorm(h), nn.LayerNorm(h)

    def forward(self, x, pad):
        x = x + self.attention(self.ln1(x), pad)
        return x + self.mlp(self.ln2(x))


class DecisionTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_timestep = nn.Embedding(MAX_T, H)
        self.embed_rtg = nn.Linear(1, H)
        self.embed_state = nn.Linear(SD, H)
        self.embed_action = nn.Linear(AD, H)
        self.embed_ln = nn.LayerNorm(H)
        self.blocks = nn.ModuleList([Block(H, 3 * K, 2) for _ in range(2)])
        self.predict_action = nn.Sequential(nn.Linear(H, AD), nn.Tanh())
        self.predict_state = nn.Linear(H, SD)
        self.predict_rtg = nn.Linear(H, 1)

    def forward(self, timesteps, states, actions, rtg, mask):
        B_, T_, _ = states.shape
        te = self.embed_timestep(timesteps)
        s = self.embed_state(states) + te
        a = self.embed_action(actions) + te
        r = self.embed_rtg(rtg) + te
        h = torch.stack((r, s, a), dim=1).permute(0, 2, 1, 3).reshape(B_, 3 * T_, H)
        h = self.embed_ln(h)
        pad = torch.stack((mask, mask, mask), dim=1).permute(0, 2, 1).reshape(B_, 3 * T_)
        for blk in self.blocks:
            h = blk(h, pad)
        h = h.reshape(B_, T_, 3, H).permute(0, 2, 1, 3)
        return self.predict_state(h[:, 2]), self.predict_action(h[:, 1]), self.predict_rtg(h[:, 2])


model = DecisionTransformer()
Wt = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(Wt[n]))
decay, no_decay = [], []
for mn, m in model.named_modules():
    for pn, p in m.named_parameters(recurse=False):
        (decay if isinstance(m, nn.Linear) and pn == "weight" else no_decay).append(p)
opt = torch.optim.AdamW(
    [{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-3
)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / 5, 1))
losses = []
for step in range(15):
    S, A, R, T, M = get_batch(8)
    _, a_pred, _ = model(T, S, A, R, M)
    valid = M.view(-1) > 0
    loss = F.mse_loss(a_pred.reshape(-1, AD)[valid], A.reshape(-1, AD)[valid])
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
    opt.step()
    sched.step()
    losses.append(loss.item())

model.eval()
returns, actions_taken = [], []
for target in (-4.0, -8.0):
    s = np.array([-0.5, 0.0])
    states = torch.zeros((1, EP_LEN, SD))
    acts = torch.zeros((1, EP_LEN, AD))
    rtgs = torch.zeros((1, EP_LEN, 1))
    tsteps = torch.arange(EP_LEN).unsqueeze(0)
    run_rtg, total = target / RTG_SCALE, 0.0
    with torch.no_grad():
        for t in range(EP_LEN):
            states[0, t] = torch.from_numpy(((s - state_mean) / state_std).astype(np.float32))
            rtgs[0, t] = run_rtg
            lo = max(0, t - K + 1)
            m = torch.ones(1, t + 1 - lo, dtype=torch.long)
            _, a_p, _ = model(
                tsteps[:, lo : t + 1],
                states[:, lo : t + 1],
                acts[:, lo : t + 1],
                rtgs[:, lo : t + 1],
                m,
            )
            act = a_p[0, -1].detach()
            acts[0, t] = act
            s, r = env_step(s, act.item())
            run_rtg = run_rtg - r / RTG_SCALE
            total += r
    returns.append(total)
    actions_taken.append(acts[0, :, 0].tolist())

report(
    rtg0=discount_cumsum(trajs[0][2])[:5].tolist(),
    losses=losses,
    returns=returns,
    actions=actions_taken,
    buffer_keys=[k for k, _ in model.named_buffers()],
)
