# A diagonal state-space sequence classifier in the shape of state-spaces/s4's example.py,
# models/s4/s4d.py and the S4 kernel's step mode (our own rewrite): sequential (and permuted)
# MNIST-like classification of 8x8 images read pixel by pixel. S4D-Lin initialisation with
# complex tensors (torch.cfloat randn, view_as_real Parameters read back by view_as_complex,
# A = -exp(log_A_real) + 1j * A_imag, torch.exp of a complex tensor, a complex einsum and .real),
# the kernel applied by torch.fft.rfft / irfft with n=2L; a bidirectional kernel (two channels
# split by view, the backward one flipped and the pair joined by F.pad); a second kernel whose
# step size is kept positive by torch.nn.utils.parametrize (softplus with a right_inverse, so that
# assigning dt stores the inverse) and whose B is a complex Parameter trained by AdamW directly;
# the recurrent view: ZOH discretisation, a complex state in a registered buffer stepped through
# the sequence, checked against the convolution; prenorm residual blocks with Conv1d + GLU,
# parameters tagged with `_optim` dicts gathered into extra param groups, CosineAnnealingLR,
# clip_grad_norm_ over real and complex gradients. Data: 8x8 "digits" made with NumPy.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.parametrize as parametrize
from compat_helpers import reference_weights, report


class S4DKernel(nn.Module):
    """Generate convolution kernel from diagonal SSM parameters."""

    def __init__(self, d_model, N=8, dt_min=0.001, dt_max=0.1, lr=None, channels=1):
        super().__init__()
        # Generate dt
        H = d_model
        log_dt = torch.rand(H) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)

        C = torch.randn(channels, H, N // 2, dtype=torch.cfloat)
        self.C = nn.Parameter(torch.view_as_real(C))
        self.register("log_dt", log_dt, lr)

        log_A_real = torch.log(0.5 * torch.ones(H, N // 2))
        A_imag = math.pi * torch.arange(N // 2).float().unsqueeze(0).repeat(H, 1)
        self.register("log_A_real", log_A_real, lr)
        self.register("A_imag", A_imag, lr)

    def forward(self, L):
        """returns: (..., c, H, L) filter of length L"""
        # Materialize parameters
        dt = torch.exp(self.log_dt)  # (H)
        C = torch.view_as_complex(self.C)  # (c H N)
        A = -torch.exp(self.log_A_real) + 1j * self.A_imag  # (H N)

        # Vandermonde multiplication
        dtA = A * dt.unsqueeze(-1)  # (H N)
        K = dtA.unsqueeze(-1) * torch.arange(L, device=A.device)  # (H N L)
        C = C * (torch.exp(dtA) - 1.0) / A
        K = 2 * torch.einsum("chn, hnl -> chl", C, torch.exp(K)).real
        return K

    def register(self, name, tensor, lr=None):
        """Register a tensor with a configurable learning rate and 0 weight decay"""
        if lr == 0.0:
            self.register_buffer(name, tensor)
        else:
            self.register_parameter(name, nn.Parameter(tensor))

            optim = {"weight_decay": 0.0}
            if lr is not None:
                optim["lr"] = lr
            setattr(getattr(self, name), "_optim", optim)  # noqa: B010 - as the original

    # the recurrent view of the same SSM (the S4 kernel's _setup_step / step, ZOH)
    def setup_step(self):
        dt = torch.exp(self.log_dt)
        A = -torch.exp(self.log_A_real) + 1j * self.A_imag  # (H N)
        dtA = A * dt.unsqueeze(-1)
        self.dA = torch.exp(dtA)  # (H N)
        self.dB = (self.dA - 1.0) / A  # (H N), B = 1
        self.dC = torch.view_as_complex(self.C)[0]  # (H N)

    def default_state(self, *batch_shape):
        return torch.zeros(*batch_shape, self.dA.shape[0], self.dA.shape[1],
                           dtype=self.dC.dtype, device=self.dC.device)

    def step(self, u, state):
        next_state = self.dA * state + self.dB * u.unsqueeze(-1)  # (B H N)
        y = 2 * torch.einsum("hn,bhn->bh", self.dC, next_state).real
        return y, next_state


class Softplus(nn.Module):
    def forward(self, x):
        return F.softplus(x)

    def right_inverse(self, y):
        return torch.log(torch.expm1(y))  # softplus^-1


class S4DParamKernel(nn.Module):
    """The same kernel with dt = softplus(raw) by parametrize and a complex B Parameter."""

    def __init__(self, d_model, N=8):
        super().__init__()
        self.dt = nn.Parameter(torch.full((d_model,), 0.05))
        parametrize.register_parametrization(self, "dt", Softplus())
        self.B = nn.Parameter(torch.ones(d_model, N // 2, dtype=torch.cfloat))
        self.C = nn.Parameter(torch.randn(d_model, N // 2, dtype=torch.cfloat))
        self.log_A_real = nn.Parameter(torch.log(0.5 * torch.ones(d_model, N // 2)))
        self.register_buffer("A_imag", math.pi * torch.arange(N // 2).float().expand(d_model, -1))

    def forward(self, L):
        A = torch.complex(-torch.exp(self.log_A_real), self.A_imag)
        dtA = A * self.dt[:, None]
        BC = self.B * self.C * (torch.exp(dtA) - 1.0) / A
        K = torch.exp(dtA.unsqueeze(-1) * torch.arange(L))  # (H N L)
        return 2 * (BC.unsqueeze(-1) * K).sum(-2).real


class S4D(nn.Module):
    def __init__(self, d_model, d_state=8, transposed=True, bidirectional=False,
                 kernel="s4d", **kernel_args):
        super().__init__()
        self.h = d_model
        self.n = d_state
        self.transposed = transposed
        self.bidirectional = bidirectional
        self.D = nn.Parameter(torch.randn(self.h))

        if kernel == "s4d":
            channels = 2 if bidirectional else 1
            self.kernel = S4DKernel(self.h, N=self.n, channels=channels, **kernel_args)
        else:
            self.kernel = S4DParamKernel(self.h, N=self.n)

        self.activation = nn.GELU()
        self.dropout = nn.Identity()
        # position-wise output transform to mix features
        self.output_linear = nn.Sequential(
            nn.Conv1d(self.h, 2 * self.h, kernel_size=1),
            nn.GLU(dim=-2),
        )

    def forward(self, u):
        """Input and output shape (B, H, L)"""
        if not self.transposed:
            u = u.transpose(-1, -2)
        L = u.size(-1)

        k = self.kernel(L=L)  # (c H L) or (H L)
        if self.bidirectional:
            k0, k1 = k.view(2, self.h, L)
            k = F.pad(k0, (0, L)) + F.pad(k1.flip(-1), (L, 0))
        elif k.dim() == 3:
            k = k[0]

        # Convolution
        k_f = torch.fft.rfft(k, n=2 * L)  # (H L)
        u_f = torch.fft.rfft(u, n=2 * L)  # (B H L)
        y = torch.fft.irfft(u_f * k_f, n=2 * L)[..., :L]  # (B H L)

        # Compute D term in state space equation - essentially a skip connection
        y = y + u * self.D.unsqueeze(-1)

        y = self.dropout(self.activation(y))
        y = self.output_linear(y)
        if not self.transposed:
            y = y.transpose(-1, -2)
        return y, None


class S4Model(nn.Module):
    def __init__(self, d_input, d_output=10, d_model=16, n_layers=2, prenorm=True, lr=1e-3,
                 bidirectional=False, kernel="s4d"):
        super().__init__()
        self.prenorm = prenorm
        self.encoder = nn.Linear(d_input, d_model)
        self.s4_layers = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.dropouts = nn.ModuleList()
        for _ in range(n_layers):
            kwargs = {"lr": min(0.001, lr)} if kernel == "s4d" else {}
            self.s4_layers.append(S4D(d_model, transposed=True, bidirectional=bidirectional,
                                      kernel=kernel, **kwargs))
            self.norms.append(nn.LayerNorm(d_model))
            self.dropouts.append(nn.Dropout1d(0.0))
        self.decoder = nn.Linear(d_model, d_output)

    def forward(self, x):
        """Input x is shape (B, L, d_input)"""
        x = self.encoder(x)  # (B, L, d_input) -> (B, L, d_model)
        x = x.transpose(-1, -2)  # (B, L, d_model) -> (B, d_model, L)
        for layer, norm, dropout in zip(self.s4_layers, self.norms, self.dropouts):
            z = x
            if self.prenorm:
                z = norm(z.transpose(-1, -2)).transpose(-1, -2)
            z, _ = layer(z)
            z = dropout(z)
            x = z + x
            if not self.prenorm:
                x = norm(x.transpose(-1, -2)).transpose(-1, -2)
        x = x.transpose(-1, -2)
        x = x.mean(dim=1)  # pooling: average over the sequence length
        x = self.decoder(x)  # (B, d_model) -> (B, d_output)
        return x


def setup_optimizer(model, lr, weight_decay, epochs):
    """S4 requires a specific optimizer setup: the (A, B, C, dt) parameters
    get a lower learning rate and no weight decay."""
    all_parameters = list(model.parameters())
    params = [p for p in all_parameters if not hasattr(p, "_optim")]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)

    # Add parameters with special hyperparameters
    hps = [getattr(p, "_optim") for p in all_parameters if hasattr(p, "_optim")]  # noqa: B009
    hps = [dict(s) for s in sorted(list(dict.fromkeys(frozenset(hp.items()) for hp in hps)))]
    for hp in hps:
        params = [p for p in all_parameters if getattr(p, "_optim", None) == hp]
        optimizer.add_param_group({"params": params, **hp})

    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    keys = sorted(set([k for hp in hps for k in hp.keys()]))
    groups = [[len(g["params"])] + [g.get(k, None) for k in keys] for g in optimizer.param_groups]
    return optimizer, scheduler, groups


def make_digits(n, seed):
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 8, 8))
    labels = rng.integers(0, 4, size=n)
    for i, c in enumerate(labels):
        if c == 0:
            images[i, 1:7, 2] = images[i, 1:7, 5] = 1  # two bars
        elif c == 1:
            images[i, 3:5, 1:7] = 1  # a dash
        elif c == 2:
            np.fill_diagonal(images[i], 1)  # a diagonal
        else:
            images[i, 1, 1:7] = images[i, 6, 1:7] = 1  # two rows
    images += 0.2 * rng.standard_normal(images.shape)
    return (torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels))


def s4d_lin_init(model):
    """Reference weights, with S4D-Lin's deterministic (A, dt) and a seeded complex C."""
    W = reference_weights(model)
    rng = np.random.default_rng(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("log_dt"):
                p.copy_(torch.linspace(math.log(1e-3), math.log(1e-1), p.shape[0]))
            elif name.endswith("log_A_real") or name.endswith("A_imag"):
                continue  # already S4D-Lin
            elif p.is_complex():
                z = rng.standard_normal(p.shape) + 1j * rng.standard_normal(p.shape)
                p.copy_(torch.from_numpy((z / 2).astype(np.complex64)))
            elif name.endswith("C"):  # the view_as_real C
                p.copy_(torch.from_numpy(rng.standard_normal(p.shape).astype(np.float32) / 2))
            elif "parametrizations" in name:
                continue
            else:
                p.copy_(torch.from_numpy(W[name]))


def main():
    torch.manual_seed(0)
    images, labels = make_digits(48, seed=1)
    x = images.view(48, 64, 1)  # sequential: one pixel per step
    perm = torch.from_numpy(np.random.default_rng(5).permutation(64))
    x_perm = x[:, perm]  # permuted sequential MNIST

    results = {}
    for variant, data, kwargs in [("s4d", x, {}), ("bidir_perm", x_perm, {"bidirectional": True}),
                                  ("param", x, {"kernel": "param"})]:
        model = S4Model(d_input=1, d_output=4, d_model=8, n_layers=2, **kwargs)
        s4d_lin_init(model)
        optimizer, scheduler, groups = setup_optimizer(model, lr=0.01, weight_decay=0.01,
                                                       epochs=3)
        losses, norms, lrs = [], [], []
        for epoch in range(3):
            for b in range(2):
                inputs, targets = data[b * 24:(b + 1) * 24], labels[b * 24:(b + 1) * 24]
                optimizer.zero_grad()
                outputs = model(inputs)
                loss = F.cross_entropy(outputs, targets)
                loss.backward()
                norms.append(nn.utils.clip_grad_norm_(model.parameters(), 1.0).item())
                optimizer.step()
                losses.append(loss.item())
            scheduler.step()
            lrs.append([g["lr"] for g in optimizer.param_groups])
        model.eval()
        with torch.no_grad():
            acc = (model(data).argmax(-1) == labels).float().mean().item()
        results[variant] = dict(losses=losses, norms=norms, lrs=lrs, groups=groups, acc=acc)
        results[variant]["names"] = [n for n, _ in model.named_parameters()]
        results[variant]["grads"] = [p.grad.abs().sum().item() for p in model.parameters()]

    # the parametrized step size: stored as softplus^-1, read as softplus; remove it keeps values
    pk = S4DParamKernel(4)
    raw = pk.parametrizations.dt.original.clone()
    dt_before = pk.dt.clone()
    pk.dt = torch.tensor([0.01, 0.02, 0.05, 0.1])
    dt_after = pk.dt
    raw_after = pk.parametrizations.dt.original.clone()
    raw_alias = pk.parametrizations.dt.original
    parametrize.remove_parametrizations(pk, "dt")
    is_param = isinstance(pk.dt, nn.Parameter)

    # the recurrent view agrees with the convolution
    kernel = S4DKernel(4, N=8)
    s4d_lin_init(kernel)
    kernel.setup_step()
    u = torch.from_numpy(np.random.default_rng(8).standard_normal((3, 4, 16)).astype(np.float32))
    kernel.register_buffer("state", kernel.default_state(3))
    ys = []
    with torch.no_grad():
        for t in range(u.shape[-1]):
            y_t, kernel.state = kernel.step(u[..., t], kernel.state)
            ys.append(y_t)
        y_rec = torch.stack(ys, dim=-1)
        k = kernel(L=16)[0]
        y_conv = torch.fft.irfft(torch.fft.rfft(u, n=32) * torch.fft.rfft(k, n=32), n=32)[..., :16]
    state = kernel.state

    report(
        results=results, perm_head=perm[:6].tolist(),
        dt_before=dt_before.tolist(), dt_after=dt_after.tolist(), raw=raw.tolist(),
        raw_after=raw_after.tolist(), is_param=is_param, raw_alias=raw_alias.tolist(),
        rec_vs_conv=(y_rec - y_conv).abs().max().item() < 1e-4, y_rec=y_rec[0, 1, :6].tolist(),
        state_real=torch.view_as_real(state)[1, 2].tolist(),
        state_complex64=state.dtype == torch.complex64,
        buffers=sorted(n for n, _ in kernel.named_buffers()),
        kernel_cfloat=kernel.dA.dtype == torch.cfloat, ks=k[:2, :5].tolist(),
    )


if __name__ == "__main__":
    main()
