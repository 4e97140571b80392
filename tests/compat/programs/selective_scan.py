# A small Mamba-style (Gu & Dao, 2023) sequence model as the reference (non-CUDA) implementations
# write it (mamba-minimal, mamba.py's pscan-free path): in_proj split by chunk, a causal depthwise
# Conv1d(groups=d_inner, padding=k-1) cut back with [..., :L], SiLU gating, delta by F.softplus,
# the zero-order-hold discretisation torch.exp(delta.unsqueeze(-1) * A) with A = -exp(A_log),
# the selective scan as a Python loop over time with torch.einsum and the same scan in parallel
# form by cumsum in log space, nn.RMSNorm pre-norm residual blocks, an RWKV-style token shift by
# F.pad(x, (0, 0, 1, -1)), clip_grad_norm_, AdamW with no decay on A_log/D/norms, and a
# linear-warmup cosine LambdaLR. The task: predict the next value of noisy superposed sines.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(5)
B, L, D_MODEL, D_STATE, D_CONV, EXPAND = 8, 24, 16, 4, 4, 2

t = np.arange(L + 1)[None, :]
freqs = rng.uniform(0.2, 0.7, (32, 1))
phase = rng.uniform(0, 2 * np.pi, (32, 1))
series = (
    np.sin(freqs * t + phase)
    + 0.5 * np.sin(2.1 * freqs * t)
    + 0.05 * rng.standard_normal((32, L + 1))
)
series = torch.from_numpy(series.astype(np.float32))  # (32, L + 1)


def selective_scan_loop(u, delta, A, B_, C_, D):
    """u, delta: (b, l, d); A: (d, n); B_, C_: (b, l, n); D: (d,) -> (b, l, d)."""
    b, l, d = u.shape
    deltaA = torch.exp(delta.unsqueeze(-1) * A)  # (b, l, d, n)
    deltaB_u = torch.einsum("bld,bln,bld->bldn", delta, B_, u)
    x = torch.zeros((b, d, A.shape[1]))
    ys = []
    for i in range(l):
        x = deltaA[:, i] * x + deltaB_u[:, i]
        ys.append(torch.einsum("bdn,bn->bd", x, C_[:, i, :]))
    y = torch.stack(ys, dim=1)  # (b, l, d)
    return y + u * D


def selective_scan_parallel(u, delta, A, B_, C_, D):
    """The same recurrence in closed form: h_t = sum_s exp(sum_{s<r<=t} dA_r) dBu_s."""
    log_a = delta.unsqueeze(-1) * A  # (b, l, d, n), <= 0
    cum = torch.cumsum(log_a, dim=1)
    deltaB_u = delta.unsqueeze(-1) * B_.unsqueeze(2) * u.unsqueeze(-1)
    # weights[t, s] = exp(cum_t - cum_s) for s <= t, masked before exp to stay finite
    diff = cum.unsqueeze(2) - cum.unsqueeze(1)  # (b, t, s, d, n)
    causal = torch.tril(torch.ones(u.shape[1], u.shape[1], dtype=torch.bool))
    diff = diff.masked_fill(~causal[None, :, :, None, None], float("-inf"))
    h = (torch.exp(diff) * deltaB_u.unsqueeze(1)).sum(dim=2)  # (b, t, d, n)
    y = (h * C_.unsqueeze(2)).sum(-1)
    return y + u * D


class MambaBlock(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.d_inner = EXPAND * d_model
        self.dt_rank = math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(
            self.d_inner, self.d_inner, D_CONV, groups=self.d_inner, padding=D_CONV - 1
        )
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * D_STATE, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner)
        # dt initialised log-uniform in [1e-3, 1e-1]; the bias is softplus^-1(dt)
        u = torch.from_numpy(rng.uniform(size=self.d_inner).astype(np.float32))
        dt = torch.exp(u * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp(min=1e-4)
        inv_dt = dt + torch.log(-torch.expm1(-dt))
        with torch.no_grad():
            self.dt_proj.bias.copy_(inv_dt)
        self.dt_proj.bias._no_reinit = True
        A = torch.arange(1, D_STATE + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(A))
        self.A_log._no_weight_decay = True
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.D._no_weight_decay = True
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        self.parallel = False

    def forward(self, x):  # (b, l, d_model)
        l = x.shape[1]
        x, res = self.in_proj(x).chunk(2, dim=-1)  # (b, l, d_inner) each
        x = self.conv1d(x.transpose(1, 2))[..., :l].transpose(1, 2)  # causal
        x = F.silu(x)
        dbc = self.x_proj(x)
        delta, B_, C_ = dbc.split([self.dt_rank, D_STATE, D_STATE], dim=-1)
        delta = F.softplus(self.dt_proj(delta))
        A = -torch.exp(self.A_log.float())
        scan = selective_scan_parallel if self.parallel else selective_scan_loop
        y = scan(x, delta, A, B_, C_, self.D.float())
        return self.out_proj(y * F.silu(res))


class ResidualBlock(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.norm = nn.RMSNorm(d_model, eps=1e-5)
        self.mixer = MambaBlock(d_model)
        self.shift_mix = nn.Parameter(torch.full((d_model,), 0.5))

    def forward(self, x):
        shifted = F.pad(x, (0, 0, 1, -1))  # RWKV token shift: x_{t-1}, zeros at t = 0
        x_mix = x * self.shift_mix + shifted * (1 - self.shift_mix)
        return x + self.mixer(self.norm(x_mix))


class Mamba(nn.Module):
    def __init__(self, n_layers=2):
        super().__init__()
        self.embed = nn.Linear(1, D_MODEL)
        self.layers = nn.ModuleList([ResidualBlock(D_MODEL) for _ in range(n_layers)])
        self.norm_f = nn.RMSNorm(D_MODEL)
        self.head = nn.Linear(D_MODEL, 1)

    def forward(self, u):  # (b, l)
        x = self.embed(u.unsqueeze(-1))
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm_f(x)).squeeze(-1)


model = Mamba()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        if not name.endswith(("A_log", "D", "shift_mix", "dt_proj.bias")):  # keep Mamba's init
            p.copy_(torch.from_numpy(W[name]))

decay, no_decay = [], []
for name, p in model.named_parameters():
    skip = p.dim() < 2 or getattr(p, "_no_weight_decay", False)
    (no_decay if skip else decay).append(p)
opt = torch.optim.AdamW(
    [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
    lr=3e-3,
    betas=(0.9, 0.95),
)
STEPS, WARMUP = 24, 4


class WarmupCosine:
    """A schedule object (its settings travel in the scheduler's state_dict, as PyTorch's)."""

    def __init__(self, warmup, total, floor=0.1):
        self.warmup, self.total, self.floor = warmup, total, floor

    def __call__(self, step):
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = (step - self.warmup) / max(1, self.total - self.warmup)
        return self.floor + (1 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


sched = torch.optim.lr_scheduler.LambdaLR(opt, [WarmupCosine(WARMUP, STEPS)] * 2)
losses, grad_norms, lrs = [], [], []
for step in range(STEPS):
    idx = torch.from_numpy(rng.choice(32, B, replace=False))
    seq = series[idx]
    pred = model(seq[:, :-1])
    loss = F.mse_loss(pred, seq[:, 1:])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    grad_norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0).item())
    opt.step()
    sched.step()
    losses.append(loss.item())
    lrs.append(sched.get_last_lr()[0])

# resuming: a fresh optimizer and scheduler (default settings) take the saved state
ckpt = {"opt": opt.state_dict(), "sched": sched.state_dict()}
opt_r = torch.optim.AdamW([{"params": decay}, {"params": no_decay}], lr=1.0)
sched_r = torch.optim.lr_scheduler.LambdaLR(opt_r, [WarmupCosine(1, 1, 0.0)] * 2)
opt_r.load_state_dict(ckpt["opt"])
sched_r.load_state_dict(ckpt["sched"])
resumed = [sched_r.lr_lambdas[0].warmup, sched_r.lr_lambdas[1].floor, sched_r.last_epoch]
resumed_lrs = [g["lr"] for g in opt_r.param_groups]

model.eval()
with torch.no_grad():
    test = series[:4, :-1]
    out_loop = model(test)
    for layer in model.layers:
        layer.mixer.parallel = True
    out_par = model(test)
    # causality: changing the last input leaves every earlier output unchanged (up to
    # rounding: torch's kernels are not bitwise equal over rows whose neighbours changed)
    poked = test.clone()
    poked[:, -1] += 1.0
    out_poked = model(poked)


# ---- Mamba-2's SSD in chunks (ssd_minimal.py) against the step-by-step recurrence ----
def segsum(x):
    """Stable segment sums: out[..., i, j] = sum(x[..., j+1:i+1]), -inf above the diagonal."""
    T = x.size(-1)
    x = x.unsqueeze(-1).expand(*x.shape, T)  # (..., T, T)
    x = x.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool), diagonal=-1), 0)
    x_segsum = torch.cumsum(x, dim=-2)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool), diagonal=0)
    return x_segsum.masked_fill(~mask, -torch.inf)


def ssd_minimal(X, A, B_, C_, block_len):
    """X: (b, l, h, p), A: (b, l, h), B_, C_: (b, l, h, n) -> Y (b, l, h, p), final state."""
    b, l, h, p = X.shape
    X, B_, C_ = (t.reshape(b, l // block_len, block_len, *t.shape[2:]) for t in (X, B_, C_))
    A = A.reshape(b, l // block_len, block_len, h).permute(0, 3, 1, 2)  # (b, h, c, l)
    A_cumsum = torch.cumsum(A, dim=-1)
    Lmat = torch.exp(segsum(A))
    Y_diag = torch.einsum("bclhn,bcshn,bhcls,bcshp->bclhp", C_, B_, Lmat, X)
    decay_states = torch.exp(A_cumsum[:, :, :, -1:] - A_cumsum)
    states = torch.einsum("bclhn,bhcl,bclhp->bchpn", B_, decay_states, X)
    states = torch.cat([torch.zeros_like(states[:, :1]), states], dim=1)
    decay_chunk = torch.exp(segsum(F.pad(A_cumsum[:, :, :, -1], (1, 0))))
    new_states = torch.einsum("bhzc,bchpn->bzhpn", decay_chunk, states)
    states, final_state = new_states[:, :-1], new_states[:, -1]
    Y_off = torch.einsum("bclhn,bchpn,bhcl->bclhp", C_, states, torch.exp(A_cumsum))
    return (Y_diag + Y_off).reshape(b, l, h, p), final_state


def ssd_recurrent(X, A, B_, C_):
    h = torch.zeros(X.shape[0], X.shape[2], X.shape[3], B_.shape[-1])  # (b, h, p, n)
    ys = []
    for t_ in range(X.shape[1]):
        h = torch.exp(A[:, t_])[..., None, None] * h + torch.einsum(
            "bhp,bhn->bhpn", X[:, t_], B_[:, t_]
        )
        ys.append(torch.einsum("bhpn,bhn->bhp", h, C_[:, t_]))
    return torch.stack(ys, dim=1), h


def leaf(*shape, scale=1.0):
    return torch.from_numpy(
        (scale * rng.standard_normal(shape)).astype(np.float32)
    ).requires_grad_()


Xs, Bs, Cs = leaf(2, 12, 3, 4), leaf(2, 12, 3, 5), leaf(2, 12, 3, 5)
As = torch.from_numpy(-rng.uniform(0.05, 0.8, (2, 12, 3)).astype(np.float32)).requires_grad_()
Y_chunk, final_chunk = ssd_minimal(Xs, As, Bs, Cs, block_len=4)
(Y_chunk.pow(2).sum() + final_chunk.sum()).backward()
chunk_grads = [t.grad.clone() for t in (Xs, As, Bs, Cs)]
for t in (Xs, As, Bs, Cs):
    t.grad = None
Y_rec, final_rec = ssd_recurrent(Xs, As, Bs, Cs)
(Y_rec.pow(2).sum() + final_rec.sum()).backward()
ssd_grad_err = max((g - t.grad).abs().max().item() for g, t in zip(chunk_grads, (Xs, As, Bs, Cs)))

# ---- Heinsen's parallel scan in log space: h_t = a_t h_{t-1} + b_t by logcumsumexp ----
log_a = torch.from_numpy(np.log(rng.uniform(0.5, 0.99, (4, 16))).astype(np.float32))
log_a.requires_grad_()
log_b = leaf(4, 16, scale=0.5)
a_star = torch.cumsum(log_a, dim=-1)
log_h = a_star + torch.logcumsumexp(log_b - a_star, dim=-1)
log_h.exp().sum().backward()
h_seq, h_prev = [], torch.zeros(4)
with torch.no_grad():
    for t_ in range(16):
        h_prev = log_a[:, t_].exp() * h_prev + log_b[:, t_].exp()
        h_seq.append(h_prev)
heinsen_err = (torch.stack(h_seq, dim=-1) - log_h.exp()).abs().max().item()


# ---- S4D: a complex diagonal SSM's convolution kernel (view_as_complex Parameters, complex
# einsum, .real), applied by FFT; per-parameter optimizer settings tagged as attributes ----
class S4DKernel(nn.Module):
    """S4D's diagonal kernel (Gu et al., 2022), as the state-spaces repository's s4d.py."""

    def __init__(self, d_model, N=8, dt_min=0.001, dt_max=0.1, lr=None):
        super().__init__()
        H = d_model
        u = torch.from_numpy(rng.uniform(size=H).astype(np.float32))
        log_dt = u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        C = torch.from_numpy(
            (rng.standard_normal((H, N // 2)) + 1j * rng.standard_normal((H, N // 2))).astype(
                np.complex64
            )
        )
        self.C = nn.Parameter(torch.view_as_real(C))
        self.register("log_dt", log_dt, lr)
        self.register("log_A_real", torch.log(0.5 * torch.ones(H, N // 2)), lr)
        self.register("A_imag", math.pi * torch.arange(N // 2).float().repeat(H, 1), lr)

    def forward(self, L):
        dt = torch.exp(self.log_dt)  # (H)
        C = torch.view_as_complex(self.C)  # (H, N)
        A = -torch.exp(self.log_A_real) + 1j * self.A_imag  # (H, N)
        dtA = A * dt.unsqueeze(-1)
        K = dtA.unsqueeze(-1) * torch.arange(L)  # (H, N, L)
        C = C * (torch.exp(dtA) - 1.0) / A
        return 2 * torch.einsum("hn, hnl -> hl", C, torch.exp(K)).real

    def register(self, name, tensor, lr=None):
        if lr == 0.0:
            self.register_buffer(name, tensor)
        else:
            self.register_parameter(name, nn.Parameter(tensor))
            optim = {"weight_decay": 0.0}
            if lr is not None:
                optim["lr"] = lr
            getattr(self, name)._optim = optim


class S4D(nn.Module):
    def __init__(self, d_model, lr=None):
        super().__init__()
        self.D = nn.Parameter(torch.ones(d_model))
        self.kernel = S4DKernel(d_model, lr=lr)
        self.activation = nn.GELU()
        self.output_linear = nn.Sequential(
            nn.Conv1d(d_model, 2 * d_model, kernel_size=1), nn.GLU(dim=-2)
        )

    def forward(self, u):  # (B, H, L)
        L = u.size(-1)
        k = self.kernel(L=L)
        k_f = torch.fft.rfft(k, n=2 * L)
        u_f = torch.fft.rfft(u.to(torch.float32), n=2 * L)
        y = torch.fft.irfft(u_f * k_f, n=2 * L)[..., :L]
        y = y + u * self.D.unsqueeze(-1)
        return self.output_linear(self.activation(y))


s4 = S4D(6, lr=1e-3)
W = reference_weights(s4)
with torch.no_grad():
    for name, p in s4.named_parameters():
        if name.startswith("output"):
            p.copy_(torch.from_numpy(W[name]))
kern = S4DKernel(6, lr=0.0)  # lr=0: the SSM parameters are buffers
all_parameters = list(s4.parameters())
params = [p for p in all_parameters if not hasattr(p, "_optim")]
s4_opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.01)
hps = [p._optim for p in all_parameters if hasattr(p, "_optim")]
hps = [dict(s) for s in sorted(list(dict.fromkeys(frozenset(hp.items()) for hp in hps)))]
for hp in hps:
    group = [p for p in all_parameters if getattr(p, "_optim", None) == hp]
    s4_opt.add_param_group({"params": group, **hp})
u_s4 = torch.from_numpy(rng.standard_normal((3, 6, 20)).astype(np.float32))
s4_losses = []
for step in range(6):
    loss = (s4(u_s4) - torch.roll(u_s4, 1, dims=-1)).pow(2).mean()  # remember one step
    s4_opt.zero_grad()
    loss.backward()
    s4_opt.step()
    s4_losses.append(loss.item())

report(
    s4_losses=s4_losses,
    s4_groups=[len(g["params"]) for g in s4_opt.param_groups],
    s4_group_lrs=[g["lr"] for g in s4_opt.param_groups],
    s4_buffers=sorted(n for n, _ in kern.named_buffers()),
    s4_kernel=kern(8)[0].tolist(),
    s4_C_grad=s4.kernel.C.grad[0, 0].tolist(),
    ssd_y=Y_chunk[0, :, 0, 0].tolist(),
    ssd_final=final_chunk[1, 2, 0].tolist(),
    ssd_value_close=(Y_chunk - Y_rec).abs().max().item() < 1e-4,
    ssd_grad_close=ssd_grad_err < 1e-3,
    ssd_grad_A=As.grad[0, :, 0].tolist(),
    ssd_grad_B=Bs.grad[1, -1, 1].tolist(),
    heinsen_close=heinsen_err < 1e-4,
    heinsen_h=log_h[0].tolist(),
    heinsen_grad_a=log_a.grad[1, 1:].tolist(),  # [0] is 0 up to rounding: a_0 meets h_{-1} = 0
    heinsen_grad_b=log_b.grad[2].tolist(),
    dt_bias=model.layers[0].mixer.dt_proj.bias[:4].tolist(),
    no_reinit=getattr(model.layers[1].mixer.dt_proj.bias, "_no_reinit", False),
    n_no_decay=len(no_decay),
    rms_functional_close=torch.allclose(
        F.rms_norm(test.unsqueeze(-1).expand(4, L, D_MODEL), (D_MODEL,), eps=1e-5),
        nn.RMSNorm(D_MODEL, eps=1e-5)(test.unsqueeze(-1).expand(4, L, D_MODEL)),
    ),
    losses=losses,
    grad_norms=grad_norms,
    lrs=lrs,
    resumed=resumed,
    resumed_lrs=resumed_lrs,
    saved_lambdas=ckpt["sched"]["lr_lambdas"],
    eval_mse=F.mse_loss(out_loop, series[:4, 1:]).item(),
    loop_vs_parallel=(out_loop - out_par).abs().max().item() < 1e-4,
    causal=(out_poked[:, :-1] - out_par[:, :-1]).abs().max().item() < 1e-5,
    last_changed=bool((out_poked[:, -1] != out_par[:, -1]).all()),
    A_log=model.layers[0].mixer.A_log[:2].tolist(),
    D_grad=model.layers[1].mixer.D.grad[:4].tolist(),
    shift_mix=model.layers[0].shift_mix[:4].tolist(),
    norm_weight=model.norm_f.weight[:4].tolist(),
)
