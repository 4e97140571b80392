# minGRU and minLSTM ("Were RNNs All We Needed?", Feng et al. 2024) as the reference
# implementations write them: gates that depend on the input only, the sequential mode (one
# step at a time, the hidden state carried) and the parallel mode by Heinsen's log-space scan
# (log_coeffs = -softplus(k), log values through the g() activation's log, logcumsumexp of
# a_star, exp of the difference); both modes agree on outputs and gradients; minLSTM's
# normalised forget / input gates; a 2-layer minGRU language model with residual connections,
# RMSNorm, a causal depthwise conv and a tied head, trained by SGD with momentum (under Adam
# one gate weight's first gradient was 3e-7 of the largest, its sign rounding's, and Adam's
# first step moved it by the full lr); generation in the sequential mode (greedy), resuming
# from the parallel pass's last hidden state.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report


def exists(v):
    return v is not None


def heinsen_associative_scan_log(log_coeffs, log_values):
    a_star = log_coeffs.cumsum(dim=1)
    log_h0_plus_b_star = (log_values - a_star).logcumsumexp(dim=1)
    log_h = a_star + log_h0_plus_b_star
    return log_h.exp()


def g(x):
    return torch.where(x >= 0, x + 0.5, x.sigmoid())


def log_g(x):
    return torch.where(x >= 0, (F.relu(x) + 0.5).log(), -F.softplus(-x))


class MinGRU(nn.Module):
    def __init__(self, dim, expansion_factor=1.0):
        super().__init__()
        dim_inner = int(dim * expansion_factor)
        self.to_hidden_and_gate = nn.Linear(dim, dim_inner * 2, bias=False)
        self.to_out = (
            nn.Linear(dim_inner, dim, bias=False) if expansion_factor != 1.0 else (nn.Identity())
        )

    def forward(self, x, prev_hidden=None, return_next_prev_hidden=False):
        seq_len = x.shape[1]
        hidden, gate = self.to_hidden_and_gate(x).chunk(2, dim=-1)
        if seq_len == 1:  # sequential
            hidden = g(hidden)
            gate = gate.sigmoid()
            out = torch.lerp(prev_hidden, hidden, gate) if exists(prev_hidden) else (hidden * gate)
        else:  # parallel
            log_coeffs = -F.softplus(gate)
            log_z = -F.softplus(-gate)
            log_tilde_h = log_g(hidden)
            log_values = log_z + log_tilde_h
            if exists(prev_hidden):
                log_values = torch.cat((prev_hidden.log(), log_values), dim=1)
                log_coeffs = F.pad(log_coeffs, (0, 0, 1, 0))
            out = heinsen_associative_scan_log(log_coeffs, log_values)
            out = out[:, -seq_len:]
        next_prev_hidden = out[:, -1:]
        out = self.to_out(out)
        if not return_next_prev_hidden:
            return out
        return out, next_prev_hidden


class MinLSTM(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.to_hidden_and_gates = nn.Linear(dim, dim * 3, bias=False)

    def forward(self, x, prev_hidden=None):
        hidden, f_gate, i_gate = self.to_hidden_and_gates(x).chunk(3, dim=-1)
        if x.shape[1] == 1:
            f, i = f_gate.sigmoid(), i_gate.sigmoid()
            f_n, i_n = f / (f + i), i / (f + i)
            h_tilde = g(hidden)
            return f_n * prev_hidden + i_n * h_tilde if exists(prev_hidden) else i_n * h_tilde
        diff = F.softplus(-f_gate) - F.softplus(-i_gate)
        log_f = -F.softplus(diff)
        log_i = -F.softplus(-diff)
        log_values = log_i + log_g(hidden)
        return heinsen_associative_scan_log(log_f, log_values)


class CausalDepthWiseConv1d(nn.Module):
    def __init__(self, dim, kernel_size):
        super().__init__()
        self.kernel_size = kernel_size
        self.net = nn.Sequential(
            nn.Conv1d(dim, dim, kernel_size=kernel_size, groups=dim),
            nn.Conv1d(dim, dim, kernel_size=1),
        )

    def forward(self, x):
        x = x.transpose(1, 2)
        x = F.pad(x, (self.kernel_size - 1, 0), value=0.0)
        return self.net(x).transpose(1, 2)


class MinGRULM(nn.Module):
    def __init__(self, num_tokens, dim, depth):
        super().__init__()
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.layers = nn.ModuleList([])
        for _ in range(depth):
            self.layers.append(
                nn.ModuleList(
                    [
                        CausalDepthWiseConv1d(dim, 3),
                        nn.RMSNorm(dim),
                        MinGRU(dim),
                        nn.RMSNorm(dim),
                        nn.Sequential(nn.Linear(dim, dim * 2), nn.GELU(), nn.Linear(dim * 2, dim)),
                    ]
                )
            )
        self.norm = nn.RMSNorm(dim)
        self.to_logits = nn.Linear(dim, num_tokens, bias=False)
        self.to_logits.weight = self.token_emb.weight

    def forward(self, x, prev_hiddens=None, return_hiddens=False):
        x = self.token_emb(x)
        next_hiddens = []
        prev_hiddens = iter(prev_hiddens or [])
        for conv, norm, mingru, ff_norm, ff in self.layers:
            if x.shape[1] > 1:
                x = conv(x) + x
            min_gru_out, next_hidden = mingru(
                norm(x), next(prev_hiddens, None), return_next_prev_hidden=True
            )
            x = min_gru_out + x
            next_hiddens.append(next_hidden)
            x = ff(ff_norm(x)) + x
        logits = self.to_logits(self.norm(x))
        return (logits, next_hiddens) if return_hiddens else logits


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    return model


rng = np.random.default_rng(13)
results = {}
x = torch.from_numpy(rng.standard_normal((3, 10, 8)).astype(np.float32))
for name, cls in (("mingru", MinGRU), ("minlstm", MinLSTM)):
    cell = load(cls(8))
    xp = x.clone().requires_grad_(True)
    par = cell(xp)
    par.square().sum().backward()
    g_par = xp.grad.clone()
    xs = x.clone().requires_grad_(True)
    h, outs = None, []
    for t in range(xs.shape[1]):
        h = cell(xs[:, t : t + 1], h)
        outs.append(h)
    seq = torch.cat(outs, 1)
    seq.square().sum().backward()
    results[name] = dict(
        out=par[0, :, 0].tolist(),
        max_diff_small=bool((par - seq).abs().max() < 1e-4),
        grad_close=bool(torch.allclose(g_par, xs.grad, rtol=1e-4, atol=1e-5)),
        grad=g_par[1, :, 2].tolist(),
    )

text = "the min gru is a gru with gates on the input only; the scan is in log space. " * 3
vocab = sorted(set(text))
ids = torch.tensor([vocab.index(c) for c in text])
model = load(MinGRULM(len(vocab), 16, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
losses = []
for step in range(10):
    starts = rng.integers(0, len(ids) - 33, 4)
    batch = torch.stack([ids[s : s + 33] for s in starts])
    logits = model(batch[:, :-1])
    loss = F.cross_entropy(logits.transpose(1, 2), batch[:, 1:])
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    opt.step()
    losses.append(loss.item())
results["lm_losses"] = losses

model.eval()
with torch.no_grad():
    prompt = ids[:12].unsqueeze(0)
    logits, hiddens = model(prompt, return_hiddens=True)
    token = logits[:, -1].argmax(-1, keepdim=True)
    out = [token.item()]
    for _ in range(8):
        logits, hiddens = model(token, hiddens, return_hiddens=True)
        token = logits[:, -1].argmax(-1, keepdim=True)
        out.append(token.item())
    results["generated"] = out
    results["hidden_norms"] = [h.norm().item() for h in hiddens]
report(**results)
