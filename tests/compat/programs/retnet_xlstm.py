# Recurrent-parallel duality as RetNet's and xLSTM's reference code write it: multi-scale
# retention with per-head decays (gamma = 1 - 2 ** (-5 - arange)), the xPos rotation by
# rotate_every_two (stack / flatten of interleaved halves), the decay mask by tril + masked_fill
# of -inf + exp + row normalisation by sqrt of its sum, the parallel, recurrent (kv state) and
# chunkwise (cross-chunk state with inner decay) forms checked against each other, a
# GroupNorm per head and swish gate; xLSTM's mLSTM cell with exponential input gates stabilised
# by a running max (logsigmoid forget gates, cumsum of log-forgets into a D matrix, the
# max(|n|, exp(-m)) normaliser) in parallel and step form, and an sLSTM cell with block-diagonal
# recurrence by einsum and the same stabiliser; a retention LM and an mLSTM LM trained by Adam.
# The sLSTM's output is invariant to a shift of every input-gate pre-activation (the stabiliser m
# absorbs it), so the input-gate bias's gradient is 0 up to rounding (1e-10) and Adam turns that
# into full steps of either sign: m itself is not reported, only what it cancels out of.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(11)
V, D, H, T, B = 20, 16, 2, 12, 3


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def rotate_every_two(x):
    x1 = x[:, :, ::2]
    x2 = x[:, :, 1::2]
    x = torch.stack((-x2, x1), dim=-1)
    return x.flatten(-2)


def duplicate_interleave(m):
    dim0 = m.shape[0]
    m = m.view(-1, 1)
    m = m.repeat(1, 2)
    return m.view(dim0, -1)


class XPOS(nn.Module):
    def __init__(self, head_dim, scale_base=512):
        super().__init__()
        self.scale_base = scale_base
        self.register_buffer(
            "scale", (torch.arange(0, head_dim, 2) + 0.4 * head_dim) / (1.4 * head_dim)
        )

    def forward(self, x, offset=0, downscale=False):
        length = x.shape[1]
        min_pos = 0
        max_pos = length + offset + min_pos
        scale = (
            self.scale
            ** torch.arange(min_pos, max_pos, 1).to(self.scale).div(self.scale_base)[:, None]
        )
        half = x.shape[-1] // 2
        inv_freq = 1.0 / (10000 ** (torch.arange(0, half) / half))
        sinusoid = torch.einsum(
            "i , j -> i j", torch.arange(0, max_pos, dtype=torch.float), inv_freq
        ).to(x)
        sin, cos = torch.sin(sinusoid), torch.cos(sinusoid)
        if scale.shape[0] > length:
            scale = scale[-length:]
            sin, cos = sin[-length:], cos[-length:]
        if downscale:
            scale = 1 / scale
        sin, cos = map(lambda t: duplicate_interleave(t * scale), (sin, cos))
        return (x * cos) + (rotate_every_two(x) * sin)


class SimpleRetention(nn.Module):
    def __init__(self, hidden, gamma):
        super().__init__()
        self.hidden, self.gamma = hidden, gamma
        self.W_Q = nn.Parameter(torch.randn(hidden, hidden) / hidden)
        self.W_K = nn.Parameter(torch.randn(hidden, hidden) / hidden)
        self.W_V = nn.Parameter(torch.randn(hidden, hidden) / hidden)
        self.xpos = XPOS(hidden)

    def _get_D(self, n):
        nn_ = torch.arange(n).unsqueeze(1)
        m = torch.arange(n).unsqueeze(0)
        Dm = (self.gamma ** (nn_ - m)) * (nn_ >= m).float()
        Dm[Dm != Dm] = 0
        return Dm

    def forward(self, X):
        n = X.shape[1]
        Dm = self._get_D(n).to(X.dtype)
        Q = self.xpos(X @ self.W_Q)
        K = self.xpos(X @ self.W_K, downscale=True)
        V_ = X @ self.W_V
        ret = (Q @ K.permute(0, 2, 1)) * Dm.unsqueeze(0)
        return ret @ V_

    def forward_recurrent(self, x_n, s_n_1, n):
        Q = self.xpos(x_n @ self.W_Q, n + 1)
        K = self.xpos(x_n @ self.W_K, n + 1, downscale=True)
        V_ = x_n @ self.W_V
        s_n = self.gamma * s_n_1 + (K.transpose(-1, -2) @ V_)
        return (Q @ s_n), s_n

    def forward_chunkwise(self, x_i, r_i_1, i):
        batch, chunk_size, _ = x_i.shape
        Dm = self._get_D(chunk_size)
        Q = self.xpos(x_i @ self.W_Q, i * chunk_size)
        K = self.xpos(x_i @ self.W_K, i * chunk_size, downscale=True)
        V_ = x_i @ self.W_V
        r_i = (K.transpose(-1, -2) @ (V_ * Dm[-1].view(1, chunk_size, 1))) + (
            self.gamma**chunk_size
        ) * r_i_1
        inner_chunk = ((Q @ K.transpose(-1, -2)) * Dm.unsqueeze(0)) @ V_
        e = torch.zeros(batch, chunk_size, 1)
        for _i in range(chunk_size):
            e[:, _i, :] = self.gamma ** (_i + 1)
        cross_chunk = (Q @ r_i_1) * e
        return inner_chunk + cross_chunk, r_i


class MultiScaleRetention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.hidden, self.heads = hidden, heads
        self.head_size = hidden // heads
        self.gammas = (
            (1 - torch.exp(torch.linspace(math.log(1 / 32), math.log(1 / 512), heads)))
            .detach()
            .cpu()
            .tolist()
        )
        self.swish = lambda x: x * torch.sigmoid(x)
        self.W_G = nn.Parameter(torch.randn(hidden, hidden) / hidden)
        self.W_O = nn.Parameter(torch.randn(hidden, hidden) / hidden)
        self.group_norm = nn.GroupNorm(heads, hidden)
        self.retentions = nn.ModuleList([SimpleRetention(self.head_size, g) for g in self.gammas])

    def _out(self, X, Y):
        shape = Y.shape
        Y = self.group_norm(Y.reshape(-1, self.hidden)).reshape(shape)
        return (self.swish(X @ self.W_G) * Y) @ self.W_O

    def forward(self, X):
        Y = [
            r(X[:, :, i * self.head_size : (i + 1) * self.head_size])
            for i, r in enumerate(self.retentions)
        ]
        return self._out(X, torch.cat(Y, dim=2))

    def forward_recurrent(self, x_n, s_n_1s, n):
        Y, s_ns = [], []
        for i in range(self.heads):
            y, s_n = self.retentions[i].forward_recurrent(
                x_n[:, :, i * self.head_size : (i + 1) * self.head_size], s_n_1s[i], n
            )
            Y.append(y)
            s_ns.append(s_n)
        return self._out(x_n, torch.cat(Y, dim=2)), s_ns

    def forward_chunkwise(self, x_i, r_i_1s, i):
        Y, r_is = [], []
        for j in range(self.heads):
            y, r_i = self.retentions[j].forward_chunkwise(
                x_i[:, :, j * self.head_size : (j + 1) * self.head_size], r_i_1s[j], i
            )
            Y.append(y)
            r_is.append(r_i)
        return self._out(x_i, torch.cat(Y, dim=2)), r_is


class RetNetLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.msr = MultiScaleRetention(D, H)
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.ffn = nn.Sequential(nn.Linear(D, 2 * D), nn.GELU(), nn.Linear(2 * D, D))
        self.head = nn.Linear(D, V)

    def forward(self, idx):
        X = self.emb(idx)
        Y = self.msr(self.ln1(X)) + X
        return self.head(self.ffn(self.ln2(Y)) + Y)


def mlstm_parallel(q, k, v, igate_preact, fgate_preact, eps=1e-6):
    """xLSTM's parallel_stabilized_simple: (B, NH, S, DH) and gates (B, NH, S, 1)."""
    Bq, NH, S, DH = q.shape
    log_fgates = F.logsigmoid(fgate_preact)
    ltr = torch.tril(torch.ones((S, S), dtype=torch.bool))
    log_fgates_cumsum = torch.cat(
        [torch.zeros((Bq, NH, 1, 1), dtype=q.dtype), torch.cumsum(log_fgates, dim=-2)], dim=-2
    )
    rep = log_fgates_cumsum.repeat(1, 1, 1, S + 1)
    _log_fg_matrix = rep - rep.transpose(-2, -1)
    log_fg_matrix = torch.where(ltr, _log_fg_matrix[:, :, 1:, 1:], -float("inf"))
    log_D_matrix = log_fg_matrix + igate_preact.transpose(-2, -1)
    max_log_D, _ = torch.max(log_D_matrix, dim=-1, keepdim=True)
    D_matrix = torch.exp(log_D_matrix - max_log_D)
    keys_scaled = k / math.sqrt(DH)
    C = (q @ keys_scaled.transpose(-2, -1)) * D_matrix
    normalizer = torch.maximum(C.sum(dim=-1, keepdim=True).abs(), torch.exp(-max_log_D))
    return (C / (normalizer + eps)) @ v


def mlstm_recurrent_step(c, n, m, q, k, v, igate_preact, fgate_preact, eps=1e-6):
    """One step: c (B, NH, DH, DH), n (B, NH, DH, 1), m (B, NH, 1, 1); q,k,v (B, NH, 1, DH)."""
    DH = q.shape[-1]
    q, k, v = q.squeeze(2).unsqueeze(-1), k.squeeze(2).unsqueeze(-1), v.squeeze(2).unsqueeze(-1)
    log_fg_act = F.logsigmoid(fgate_preact)
    m_new = torch.max(log_fg_act + m, igate_preact)
    fg_act = torch.exp(log_fg_act + m - m_new)
    ig_act = torch.exp(igate_preact - m_new)
    k_scaled = k / math.sqrt(DH)
    c_new = fg_act * c + ig_act * (k_scaled @ v.transpose(-1, -2))
    n_new = fg_act * n + ig_act * k_scaled
    h_num = q.transpose(-1, -2) @ c_new
    qn_dotproduct = q.transpose(-1, -2) @ n_new
    max_val = torch.exp(-m_new)
    h_denom = torch.maximum(qn_dotproduct.abs(), max_val) + eps
    return h_num / h_denom, (c_new, n_new, m_new)


class MLSTMLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.qkv = nn.Linear(D, 3 * D, bias=False)
        self.igate = nn.Linear(3 * D, H)
        self.fgate = nn.Linear(3 * D, H)
        self.outnorm = nn.GroupNorm(H, D, affine=True)
        self.head = nn.Linear(D, V)

    def gates(self, idx):
        x = self.emb(idx)
        Bx, S, _ = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        if_in = torch.cat([q, k, v], dim=-1)
        ig = self.igate(if_in).transpose(-1, -2).unsqueeze(-1)
        fg = self.fgate(if_in).transpose(-1, -2).unsqueeze(-1)
        split = lambda t: t.view(Bx, S, H, D // H).transpose(1, 2)  # noqa: E731
        return x, split(q), split(k), split(v), ig, fg

    def forward(self, idx):
        x, q, k, v, ig, fg = self.gates(idx)
        h = mlstm_parallel(q, k, v, ig, fg)
        Bx, _, S, _ = h.shape
        h = h.transpose(1, 2).reshape(Bx * S, D)
        h = self.outnorm(h).view(Bx, S, D)
        return self.head(h + x)


class SLSTMCell(nn.Module):
    """sLSTM with exponential gating, a stabiliser state and block-diagonal recurrence."""

    def __init__(self, d, heads):
        super().__init__()
        self.d, self.heads, self.hd = d, heads, d // heads
        self.W = nn.Linear(d, 4 * d)
        self.R = nn.Parameter(torch.zeros(heads, self.hd, 4 * self.hd))

    def forward(self, x, state):
        h, c, n, m = state
        Bx = x.shape[0]
        rec = torch.einsum("bhd,hdk->bhk", h.view(Bx, self.heads, self.hd), self.R)
        rec = rec.view(Bx, self.heads, 4, self.hd).transpose(1, 2).reshape(Bx, 4 * self.d)
        raw = self.W(x) + rec
        i_, f_, z_, o_ = raw.chunk(4, dim=-1)
        logfplusm = m + F.logsigmoid(f_)
        m_new = torch.where(n == 0, i_, torch.max(i_, logfplusm))
        ig = torch.exp(i_ - m_new)
        fg = torch.exp(logfplusm - m_new)
        c_new = fg * c + ig * torch.tanh(z_)
        n_new = fg * n + ig
        h_new = torch.sigmoid(o_) * c_new / n_new
        return h_new, (h_new, c_new, n_new, m_new)


seq = np.concatenate([np.arange(V)] * 3)
starts = rng.integers(0, V, size=B)
data = torch.from_numpy(np.stack([seq[s : s + T + 1] for s in starts]) * 7 % V)
x_ids, y_ids = data[:, :-1], data[:, 1:]

# --- RetNet: the three forms agree, then train the parallel form
torch.manual_seed(0)
retnet = load(RetNetLM())
X = torch.from_numpy(rng.standard_normal((B, T, D)).astype(np.float32))
msr = retnet.msr
with torch.no_grad():
    Y_par = msr(X)
    s = [torch.zeros(B, D // H, D // H) for _ in range(H)]
    Y_rec = []
    for i in range(T):
        y_n, s = msr.forward_recurrent(X[:, i : i + 1, :], s, i)
        Y_rec.append(y_n)
    Y_rec = torch.cat(Y_rec, dim=1)
    r = [torch.zeros(B, D // H, D // H) for _ in range(H)]
    Y_chunk = []
    cs = 4
    for i in range(T // cs):
        y_i, r = msr.forward_chunkwise(X[:, i * cs : (i + 1) * cs, :], r, i)
        Y_chunk.append(y_i)
    Y_chunk = torch.cat(Y_chunk, dim=1)

opt = torch.optim.Adam(retnet.parameters(), lr=1e-2)
ret_losses = []
for step in range(10):
    logits = retnet(x_ids)
    loss = F.cross_entropy(logits.reshape(-1, V), y_ids.reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    ret_losses.append(loss.item())

# --- mLSTM: parallel vs recurrent, then train
mlstm = load(MLSTMLM())
with torch.no_grad():
    _, q, k, v, ig, fg = mlstm.gates(x_ids)
    h_par = mlstm_parallel(q, k, v, ig, fg)
    c = torch.zeros(B, H, D // H, D // H)
    n = torch.zeros(B, H, D // H, 1)
    m = torch.zeros(B, H, 1, 1)
    h_steps = []
    for t in range(T):
        h_t, (c, n, m) = mlstm_recurrent_step(
            c,
            n,
            m,
            q[:, :, t : t + 1],
            k[:, :, t : t + 1],
            v[:, :, t : t + 1],
            ig[:, :, t : t + 1],
            fg[:, :, t : t + 1],
        )
        h_steps.append(h_t)
    h_rec = torch.cat(h_steps, dim=2)
opt = torch.optim.AdamW(mlstm.parameters(), lr=1e-2)
ml_losses = []
for step in range(10):
    loss = F.cross_entropy(mlstm(x_ids).reshape(-1, V), y_ids.reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    ml_losses.append(loss.item())

# --- sLSTM: a sequence regression through time
cell = load(SLSTMCell(8, 2))
head = load(nn.Linear(8, 1))
xs = torch.from_numpy(rng.standard_normal((T, B, 8)).astype(np.float32))
target = xs.cumsum(0)[..., :1].tanh()
opt = torch.optim.Adam(list(cell.parameters()) + list(head.parameters()), lr=5e-3)
sl_losses = []
for step in range(8):
    state = tuple(torch.zeros(B, 8) for _ in range(4))
    outs = []
    for t in range(T):
        h, state = cell(xs[t], state)
        outs.append(head(h))
    loss = F.mse_loss(torch.stack(outs), target)
    opt.zero_grad()
    loss.backward()
    opt.step()
    sl_losses.append(loss.item())

report(
    gammas=msr.gammas,
    ret_par=Y_par[0, :3, :4].flatten().tolist(),
    ret_rec_err=(Y_par - Y_rec).abs().max().item(),
    ret_chunk_err=(Y_par - Y_chunk).abs().max().item(),
    ret_losses=ret_losses,
    mlstm_par=h_par[1, 0, -1].tolist(),
    mlstm_rec_err=(h_par - h_rec).abs().max().item(),
    ml_losses=ml_losses,
    sl_losses=sl_losses,
    final_h=state[0][0].tolist(),
)
