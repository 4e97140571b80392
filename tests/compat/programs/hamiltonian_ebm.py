# Higher-order autograd as research code uses it: a Hamiltonian neural network (Greydanus et al.,
# 2019) whose loss is the symplectic gradient of the learned H (autograd.grad(create_graph=True)),
# a leapfrog rollout of the learned dynamics and its divergence-free Jacobian (grad with
# is_grads_batched=True); an energy-based model trained by contrastive
# divergence on Langevin samples (requires_grad_ on the samples, autograd.grad of E.sum(),
# detach between steps); a Jacobian-norm regulariser (grad_outputs=ones_like, create_graph and
# retain_graph); a gradient-norm penalty through backward(create_graph=True); a straight-through
# quantiser ((z.round() - z).detach() + z); torch.autograd.functional's jacobian / hessian / vjp /
# jvp / hvp; and torch.func per-sample gradients (vmap(grad)) and jacrev / jacfwd / hessian.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.autograd.functional import hessian, hvp, jacobian, jvp, vjp
from torch.func import functional_call, grad, jacfwd, jacrev, vmap
from torch.func import hessian as func_hessian

rng = np.random.default_rng(31)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


# ---- Hamiltonian neural network on a pendulum: H = p^2 / 2 + (1 - cos q) ----
qp_np = rng.uniform(-2, 2, size=(64, 2)).astype(np.float32)
q, p = qp_np[:, 0], qp_np[:, 1]
dqp_true = torch.from_numpy(np.stack([p, -np.sin(q)], axis=1).astype(np.float32))
hnn = load(
    nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Softplus(), nn.Linear(32, 1))
)


def symplectic_field(model, qp, create_graph):
    H = model(qp)
    dH = torch.autograd.grad(H.sum(), qp, create_graph=create_graph)[0]  # (N, 2)
    return torch.cat([dH[:, 1:], -dH[:, :1]], dim=1)  # (dq/dt, dp/dt) = (dH/dp, -dH/dq)


opt = torch.optim.Adam(hnn.parameters(), lr=3e-3)
hnn_losses = []
for step in range(15):
    qp = torch.from_numpy(qp_np).requires_grad_(True)
    loss = F.mse_loss(symplectic_field(hnn, qp, create_graph=True), dqp_true)
    opt.zero_grad()
    loss.backward()
    opt.step()
    hnn_losses.append(loss.item())


# leapfrog (symplectic) rollout of the learned H: gradients needed inside, nothing kept
def dH(state):
    with torch.enable_grad():
        x = state.detach().requires_grad_()
        return torch.autograd.grad(hnn(x).sum(), x)[0]


energies, dt = [], 0.1
with torch.no_grad():
    state = torch.tensor([[1.0, 0.0]])
    for _ in range(10):
        state[:, 1] -= 0.5 * dt * dH(state)[:, 0]  # half kick: p -= dt/2 dH/dq
        state[:, 0] += dt * dH(state)[:, 1]  # drift: q += dt dH/dp
        state[:, 1] -= 0.5 * dt * dH(state)[:, 0]
        energies.append(hnn(state).item())

# the learned field is divergence-free: the trace of its Jacobian, row by row in one call
x = torch.tensor([[0.3, -0.7]], requires_grad=True)
field = symplectic_field(hnn, x, create_graph=True)[0]  # (2,)
(J_field,) = torch.autograd.grad(field, x, torch.eye(2), is_grads_batched=True)  # (2, 1, 2)
divergence = J_field[:, 0].trace().item()
field_jac = J_field.squeeze(1).tolist()

# ---- energy-based model with Langevin sampling and contrastive divergence ----
centers = np.array([[-1.5, 0.0], [1.5, 0.0]], dtype=np.float32)
data = torch.from_numpy(centers[rng.integers(0, 2, 128)] + 0.3 * rng.standard_normal((128, 2)))
data = data.float()
ebm = load(
    nn.Sequential(nn.Linear(2, 32), nn.SiLU(), nn.Linear(32, 32), nn.SiLU(), nn.Linear(32, 1))
)
ebm_opt = torch.optim.Adam(ebm.parameters(), lr=1e-3, betas=(0.0, 0.999))
noises = torch.from_numpy(0.05 * rng.standard_normal((10, 8, 64, 2)).astype(np.float32))
starts = torch.from_numpy(rng.uniform(-3, 3, size=(10, 64, 2)).astype(np.float32))


def langevin(x, noise, step_size=0.1):
    for k in range(noise.shape[0]):
        x.requires_grad_(True)
        e = ebm(x)
        g = torch.autograd.grad(e.sum(), x)[0]
        x = x - step_size * g.clamp(-1, 1) + noise[k]
        x = x.detach()
    return x


ebm_losses, sample_means = [], []
for step in range(10):
    neg = langevin(starts[step].clone(), noises[step])
    pos_e, neg_e = ebm(data[:64]).squeeze(-1), ebm(neg).squeeze(-1)
    loss = pos_e.mean() - neg_e.mean() + 0.1 * (pos_e.pow(2).mean() + neg_e.pow(2).mean())
    ebm_opt.zero_grad()
    loss.backward()
    ebm_opt.step()
    ebm_losses.append(loss.item())
    sample_means.append(neg.abs().mean().item())
random_noise_shape = list(torch.randn_like(neg).shape)

# ---- a classifier with a Jacobian-norm penalty, a gradient-norm penalty, and an STE ----
X = torch.from_numpy(rng.standard_normal((48, 4)).astype(np.float32))
y = torch.from_numpy((X[:, 0] * X[:, 1] > 0).numpy().astype(np.int64))


class QuantNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(4, 6)
        self.dec = nn.Linear(6, 2)

    def forward(self, x):
        z = torch.tanh(self.enc(x))
        zq = (z * 4).round() / 4  # 9 levels
        return self.dec((zq - z).detach() + z)  # straight through: forward zq, gradient of z


qnet = load(QuantNet())
sgd = torch.optim.SGD(qnet.parameters(), lr=0.1, momentum=0.9)
clf_losses, jac_pens, grad_pens = [], [], []
for step in range(12):
    xb = X.clone().requires_grad_(True)
    out = qnet(xb)
    task = F.cross_entropy(out, y)
    lse = out.logsumexp(dim=1)
    J = torch.autograd.grad(
        lse, xb, grad_outputs=torch.ones_like(lse), create_graph=True, retain_graph=True
    )[0]
    jac_pen = J.pow(2).sum(dim=1).mean()
    sgd.zero_grad()
    (task + 0.1 * jac_pen).backward(create_graph=True)
    grad_pen = sum(p.grad.pow(2).sum() for p in qnet.parameters())
    grad_pen.backward()  # adds d(grad_pen)/dparams to the gradients already there
    for p_ in qnet.parameters():
        p_.grad = p_.grad.detach()
    sgd.step()
    clf_losses.append(task.item())
    jac_pens.append(jac_pen.item())
    grad_pens.append(grad_pen.item())


# ---- torch.autograd.functional on a small function ----
def f(x):
    return torch.stack([x[0] * x[1].sin(), x.pow(3).sum(), torch.exp(-x[2]) * x[0]])


def scalar(x):
    return (x.sin() * x.roll(1)).sum() + x.prod()


x0 = torch.tensor([0.5, -1.0, 2.0])
v = torch.tensor([1.0, 0.5, -0.25])
J0 = jacobian(f, x0)
Jv = jacobian(f, x0, vectorize=True, strategy="forward-mode")
H0 = hessian(scalar, x0)
_, vjp_out = vjp(f, x0, v)
_, jvp_out = jvp(f, x0, v)
_, hvp_out = hvp(scalar, x0, v)

# ---- torch.func: per-sample gradients and function transforms ----
head = load(nn.Linear(4, 2))
params = {k: p.detach() for k, p in head.named_parameters()}


def sample_loss(params, x, t):
    out = functional_call(head, params, (x.unsqueeze(0),))
    return F.cross_entropy(out, t.unsqueeze(0))


per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X[:8], y[:8])
mean_grad = {k: g.mean(0) for k, g in per_sample.items()}
F.cross_entropy(head(X[:8]), y[:8]).backward()
per_sample_ok = all(
    torch.allclose(mean_grad[k], p.grad, atol=1e-6) for k, p in head.named_parameters()
)

report(
    hnn_losses=hnn_losses,
    energies=energies,
    divergence=divergence,
    field_jac=field_jac,
    ebm_losses=ebm_losses,
    sample_means=sample_means,
    random_noise_shape=random_noise_shape,
    clf_losses=clf_losses,
    jac_pens=jac_pens,
    grad_pens=grad_pens,
    J0=J0.tolist(),
    Jv_same=torch.allclose(J0, Jv),
    H0=H0.tolist(),
    vjp=vjp_out.tolist(),
    jvp=jvp_out.tolist(),
    hvp=hvp_out.tolist(),
    per_sample_norms=[g.flatten(1).norm(dim=1).tolist() for g in per_sample.values()],
    per_sample_ok=per_sample_ok,
    jacrev=jacrev(f)(x0).tolist(),
    jacfwd=jacfwd(f)(x0).tolist(),
    func_hessian=func_hessian(scalar)(x0).tolist(),
)
