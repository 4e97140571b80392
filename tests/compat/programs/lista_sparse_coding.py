# Sparse coding as the LISTA / dictionary-learning papers' reference code writes it: ISTA and
# FISTA with the step 1 / L from torch.linalg.matrix_norm(D, ord=2) ** 2 (and eigvalsh of the
# Gram matrix), soft thresholding by F.softshrink and by sign * relu, LISTA (Gregor & LeCun) as
# an unrolled network with shared We / S matrices and a learned per-layer threshold, trained
# against FISTA's codes with Adam, ALISTA-style tied weights, online dictionary learning (an
# SGD step on D, columns renormalised by F.normalize under no_grad), and a differentiable
# spectral-norm penalty whose gradient flows through matrix_norm(ord=2).
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

torch.manual_seed(0)
rng = np.random.default_rng(2718)

M, N, B, K = 12, 24, 64, 4          # signal dim, atoms, batch, nonzeros
D_true = rng.standard_normal((M, N))
D_true /= np.linalg.norm(D_true, axis=0, keepdims=True)
codes = np.zeros((B, N))
for b in range(B):
    idx = rng.choice(N, K, replace=False)
    codes[b, idx] = rng.standard_normal(K) * 1.5
Y = torch.from_numpy((codes @ D_true.T + 0.02 * rng.standard_normal((B, M))).astype(np.float32))
D = torch.from_numpy(D_true.astype(np.float32))
lam = 0.1

L = torch.linalg.matrix_norm(D, ord=2) ** 2
L_eig = torch.linalg.eigvalsh(D.T @ D).max()


def objective(Z, D, Y):
    return (0.5 * (Y - Z @ D.T).pow(2).sum(1) + lam * Z.abs().sum(1)).mean()


def ista(Y, D, iters):
    Z = torch.zeros(Y.shape[0], D.shape[1])
    objs = []
    for _ in range(iters):
        Z = F.softshrink(Z - ((Z @ D.T - Y) @ D) / L, lam / L.item())
        objs.append(objective(Z, D, Y).item())
    return Z, objs


def fista(Y, D, iters):
    Z = torch.zeros(Y.shape[0], D.shape[1])
    V = Z.clone()
    t = 1.0
    objs = []
    for _ in range(iters):
        G = V - ((V @ D.T - Y) @ D) / L
        Z_new = torch.sign(G) * F.relu(G.abs() - lam / L)
        t_new = (1 + (1 + 4 * t * t) ** 0.5) / 2
        V = Z_new + ((t - 1) / t_new) * (Z_new - Z)
        Z, t = Z_new, t_new
        objs.append(objective(Z, D, Y).item())
    return Z, objs


Z_ista, ista_objs = ista(Y, D, 30)
Z_fista, fista_objs = fista(Y, D, 30)
Z_star, _ = fista(Y, D, 200)
support_recovery = ((Z_star.abs() > 0.05) == torch.from_numpy(codes != 0)).float().mean().item()


class LISTA(nn.Module):
    def __init__(self, D, n_layers, tied=False):
        super().__init__()
        self.n_layers = n_layers
        self.tied = tied
        self.We = nn.Linear(D.shape[0], D.shape[1], bias=False)
        self.S = nn.Linear(D.shape[1], D.shape[1], bias=False)
        self.theta = nn.Parameter(torch.full((n_layers,), lam / L.item()))
        with torch.no_grad():
            self.We.weight.copy_(D.T / L)
            self.S.weight.copy_(torch.eye(D.shape[1]) - D.T @ D / L)

    def forward(self, y):
        B = self.We(y)
        Z = F.softshrink(B, lam / L.item()) if self.tied else \
            torch.sign(B) * F.relu(B.abs() - self.theta[0])
        for k in range(1, self.n_layers):
            C = B + self.S(Z)
            Z = torch.sign(C) * F.relu(C.abs() - self.theta[k])
        return Z


lista = LISTA(D, 5)
opt = torch.optim.Adam(lista.parameters(), lr=1e-3)
lista_losses = []
for step in range(25):
    opt.zero_grad()
    Z = lista(Y)
    loss = F.mse_loss(Z, Z_star)
    loss.backward()
    opt.step()
    lista_losses.append(loss.item())
thetas = lista.theta.tolist()
with torch.no_grad():
    lista_obj = objective(lista(Y), D, Y).item()
    fista5_obj = fista_objs[4]

# online dictionary learning from a perturbed start
Dl = nn.Parameter(torch.from_numpy((D_true + 0.3 * rng.standard_normal((M, N)))
                                   .astype(np.float32)))
with torch.no_grad():
    Dl.copy_(F.normalize(Dl, dim=0))
dopt = torch.optim.SGD([Dl], lr=0.5)
dict_losses = []
for epoch in range(8):
    with torch.no_grad():
        L = torch.linalg.matrix_norm(Dl, ord=2) ** 2
        Zc, _ = fista(Y, Dl.detach(), 40)
    dopt.zero_grad()
    loss = 0.5 * (Y - Zc @ Dl.T).pow(2).sum(1).mean()
    loss.backward()
    dopt.step()
    with torch.no_grad():
        Dl.copy_(F.normalize(Dl, dim=0))
    dict_losses.append(loss.item())
atom_match = (Dl.detach().T @ D).abs().max(1).values.mean().item()

# a spectral-norm penalty learned through matrix_norm(ord=2)
W = nn.Linear(8, 8)
Wr = reference_weights(W)
with torch.no_grad():
    W.weight.copy_(torch.from_numpy(Wr["weight"]) * 3)
    W.bias.copy_(torch.from_numpy(Wr["bias"]))
x = torch.from_numpy(rng.standard_normal((16, 8)).astype(np.float32))
target = torch.from_numpy(rng.standard_normal((16, 8)).astype(np.float32))
wopt = torch.optim.SGD(W.parameters(), lr=0.05)
spec = []
for step in range(10):
    wopt.zero_grad()
    sigma = torch.linalg.matrix_norm(W.weight, ord=2)
    loss = F.mse_loss(W(x), target) + 0.1 * F.relu(sigma - 1.0) ** 2
    loss.backward()
    wopt.step()
    spec.append([loss.item(), sigma.item()])

report(
    L=L_eig.item(),
    ista_objs=ista_objs,
    fista_objs=fista_objs,
    fista_beats_ista=fista_objs[-1] <= ista_objs[-1],
    sparsity=[(Z_ista != 0).float().mean().item(), (Z_fista != 0).float().mean().item()],
    support_recovery=support_recovery,
    lista_losses=lista_losses,
    thetas=thetas,
    lista_obj=lista_obj,
    fista5_obj=fista5_obj,
    dict_losses=dict_losses,
    atom_match=atom_match,
    spec=spec,
)
