# Liquid time-constant networks (Hasani et al. 2021) and closed-form continuous-time cells (CfC,
# Hasani et al. 2022) as the ncps-style PyTorch code writes them: an LTC cell unfolded by a
# fused semi-implicit ODE solver over several sub-steps of an irregular elapsed time, sigmoid
# synapses with softplus-constrained weights (reversal potentials, leak, membrane capacitance),
# parameter constraints applied by clamping after each step; a CfC cell whose gate interpolates
# ff1 / ff2 by sigmoid(-t_a * ts + t_b) with a shared backbone (LeCun tanh), its "no_gate" and
# "minimal" modes; a sequence model over irregularly sampled series (timespans as an input
# tensor), masked MSE on the observed steps, Adam with ReduceLROnPlateau; the hidden states'
# dependence on the elapsed time checked by autograd.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(31)


class LeCun(nn.Module):
    def forward(self, x):
        return 1.7159 * torch.tanh(0.666 * x)


class LTCCell(nn.Module):
    def __init__(self, in_features, units, ode_unfolds=4, epsilon=1e-8):
        super().__init__()
        self.units, self.ode_unfolds, self.epsilon = units, ode_unfolds, epsilon
        self.gleak = nn.Parameter(torch.empty(units))
        self.vleak = nn.Parameter(torch.empty(units))
        self.cm = nn.Parameter(torch.empty(units))
        self.sigma = nn.Parameter(torch.empty(units, units))
        self.mu = nn.Parameter(torch.empty(units, units))
        self.w = nn.Parameter(torch.empty(units, units))
        self.erev = nn.Parameter(torch.empty(units, units))
        self.sensory_sigma = nn.Parameter(torch.empty(in_features, units))
        self.sensory_mu = nn.Parameter(torch.empty(in_features, units))
        self.sensory_w = nn.Parameter(torch.empty(in_features, units))
        self.sensory_erev = nn.Parameter(torch.empty(in_features, units))
        self.input_w = nn.Parameter(torch.ones(in_features))
        self.input_b = nn.Parameter(torch.zeros(in_features))
        self.softplus = nn.Softplus()

    @staticmethod
    def _sigmoid(v_pre, mu, sigma):
        v_pre = torch.unsqueeze(v_pre, -1)
        return torch.sigmoid(sigma * (v_pre - mu))

    def _ode_solver(self, inputs, state, elapsed_time):
        v_pre = state
        sensory_w_activation = self.softplus(self.sensory_w) * self._sigmoid(
            inputs, self.sensory_mu, self.sensory_sigma
        )
        sensory_rev_activation = sensory_w_activation * self.sensory_erev
        w_numerator_sensory = torch.sum(sensory_rev_activation, dim=1)
        w_denominator_sensory = torch.sum(sensory_w_activation, dim=1)
        cm_t = self.softplus(self.cm) / (elapsed_time / self.ode_unfolds)
        w_param = self.softplus(self.w)
        for t in range(self.ode_unfolds):
            w_activation = w_param * self._sigmoid(v_pre, self.mu, self.sigma)
            rev_activation = w_activation * self.erev
            w_numerator = torch.sum(rev_activation, dim=1) + w_numerator_sensory
            w_denominator = torch.sum(w_activation, dim=1) + w_denominator_sensory
            gleak = self.softplus(self.gleak)
            numerator = cm_t * v_pre + gleak * self.vleak + w_numerator
            denominator = cm_t + gleak + w_denominator
            v_pre = numerator / (denominator + self.epsilon)
        return v_pre

    def forward(self, inputs, states, ts):
        inputs = inputs * self.input_w + self.input_b
        return self._ode_solver(inputs, states, ts.view(-1, 1))


class CfCCell(nn.Module):
    def __init__(self, input_size, hidden_size, mode="default", backbone_units=16):
        super().__init__()
        self.hidden_size, self.mode = hidden_size, mode
        self.backbone = nn.Sequential(nn.Linear(input_size + hidden_size, backbone_units), LeCun())
        self.ff1 = nn.Linear(backbone_units, hidden_size)
        if mode == "minimal":
            self.w_tau = nn.Parameter(torch.zeros(1, hidden_size))
            self.A = nn.Parameter(torch.ones(1, hidden_size))
        else:
            self.ff2 = nn.Linear(backbone_units, hidden_size)
            self.time_a = nn.Linear(backbone_units, hidden_size)
            self.time_b = nn.Linear(backbone_units, hidden_size)

    def forward(self, input, hx, ts):
        x = torch.cat([input, hx], 1)
        x = self.backbone(x)
        ts = ts.view(-1, 1)
        if self.mode == "minimal":
            ff1 = self.ff1(x)
            return -self.A * torch.exp(-ts * (torch.abs(self.w_tau) + torch.abs(ff1))) * ff1 + (
                self.A
            )
        ff1 = torch.tanh(self.ff1(x))
        ff2 = torch.tanh(self.ff2(x))
        t_interp = torch.sigmoid(self.time_a(x) * ts + self.time_b(x))
        if self.mode == "no_gate":
            return ff1 + t_interp * ff2
        return ff1 * (1.0 - t_interp) + t_interp * ff2


class Seq(nn.Module):
    def __init__(self, cell, hidden, out=1):
        super().__init__()
        self.cell, self.hidden = cell, hidden
        self.fc = nn.Linear(hidden, out)

    def forward(self, x, timespans):
        b, t, _ = x.shape
        h = x.new_zeros(b, self.hidden)
        outs = []
        for i in range(t):
            h = self.cell(x[:, i], h, timespans[:, i])
            outs.append(self.fc(h))
        return torch.stack(outs, 1), h


def init(model):
    W = reference_weights(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            w = torch.from_numpy(W[n])
            if n.endswith(("sigma", "sensory_sigma")):
                w = 3 + 5 * w.abs()
            elif n.endswith(("mu", "sensory_mu")):
                w = 0.3 + 0.5 * w.abs()
            elif n.endswith("cm"):
                w = 0.5 + w.abs()
            p.copy_(w)
    return model


def constrain(cell):
    with torch.no_grad():
        cell.sigma.clamp_(min=0.0)
        cell.cm.clamp_(min=-1.0)


B, T = 6, 14
times = np.sort(rng.uniform(0, 6, (B, T)), 1)
dts = np.diff(np.concatenate([np.zeros((B, 1)), times], 1)) + 0.05
signal = np.sin(times)[..., None] * rng.uniform(0.5, 1.5, (B, 1, 1))
x = torch.from_numpy(np.concatenate([signal, dts[..., None]], -1).astype(np.float32))
y = torch.from_numpy(np.cos(times)[..., None].astype(np.float32))
ts = torch.from_numpy(dts.astype(np.float32))
mask = torch.from_numpy(rng.uniform(size=(B, T, 1)) > 0.3)

results = {}
for name, cell in (
    ("ltc", LTCCell(2, 6)),
    ("cfc", CfCCell(2, 8)),
    ("cfc_nogate", CfCCell(2, 8, "no_gate")),
    ("cfc_minimal", CfCCell(2, 8, "minimal")),
):
    model = init(Seq(cell, cell.units if name == "ltc" else 8))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
    losses = []
    for epoch in range(8):
        pred, _ = model(x, ts)
        loss = ((pred - y) ** 2)[mask].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step(loss.item())
        if name == "ltc":
            constrain(model.cell)
        losses.append(loss.item())
    tt = ts.clone().requires_grad_(True)
    _, h = model(x, tt)
    (dh,) = torch.autograd.grad(h.sum(), tt)
    results[name] = dict(
        losses=losses, lr=opt.param_groups[0]["lr"], dh_dts=dh[:, -3:].flatten().tolist()
    )
report(**results)
