# Federated learning simulated in one process, as FedAvg / FedProx / SCAFFOLD reference code
# writes it: a global model deepcopy'd to clients with non-IID shards (a NumPy Dirichlet split
# of labels), local epochs over DataLoaders on TensorDatasets, FedAvg aggregation of
# state_dicts weighted by shard size (copy.deepcopy(w[0]), `w_avg[k] += w[i][k] * n_i`,
# torch.div), BatchNorm buffers averaged too, num_batches_tracked kept integral, FedProx's
# proximal term mu / 2 * ||w - w_global||^2 over zip(parameters), SCAFFOLD's control variates
# added to gradients (p.grad.data += c - c_i) and updated from the model delta, server momentum
# (FedAvgM) on the pseudo-gradient, client-level differential privacy by clipping each update's
# flat norm and adding NumPy Gaussian noise, and per-client evaluation. Our own program.
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.utils.data import DataLoader, TensorDataset

rng = np.random.default_rng(81)
N_CLIENTS, N_CLS, D = 4, 3, 6
centers = rng.normal(scale=1.5, size=(N_CLS, D)).astype(np.float32)
y_all = rng.integers(0, N_CLS, size=160)
x_all = (centers[y_all] + rng.normal(size=(160, D))).astype(np.float32)
proportions = rng.dirichlet([0.5] * N_CLIENTS, size=N_CLS)
client_idx = [[] for _ in range(N_CLIENTS)]
for c in range(N_CLS):
    idx = np.where(y_all == c)[0]
    cuts = (np.cumsum(proportions[c]) * len(idx)).astype(int)[:-1]
    for k, part in enumerate(np.split(idx, cuts)):
        client_idx[k] += part.tolist()
client_data = [
    TensorDataset(torch.from_numpy(x_all[i]), torch.from_numpy(y_all[i]))
    for i in map(np.array, client_idx)
]
sizes = [len(d) for d in client_data]
x_test = torch.from_numpy(
    (centers[np.arange(60) % N_CLS] + rng.normal(size=(60, D))).astype(np.float32)
)
y_test = torch.from_numpy(np.arange(60) % N_CLS)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(D, 16)
        self.bn = nn.BatchNorm1d(16)
        self.fc2 = nn.Linear(16, N_CLS)

    def forward(self, x):
        return self.fc2(F.relu(self.bn(self.fc1(x))))


def fresh():
    m = Net()
    W = reference_weights(m)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    return m


def FedAvg(w, n):
    w_avg = copy.deepcopy(w[0])
    for k in w_avg.keys():
        if "num_batches_tracked" in k:
            w_avg[k] = max(wi[k] for wi in w)
            continue
        w_avg[k] = w_avg[k] * n[0]
        for i in range(1, len(w)):
            w_avg[k] += w[i][k] * n[i]
        w_avg[k] = torch.div(w_avg[k], sum(n))
    return w_avg


def local_train(model, data, global_model=None, mu=0.0, c=None, c_i=None, epochs=1, lr=0.05):
    model.train()
    loader = DataLoader(data, batch_size=8, shuffle=False, drop_last=False)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    steps, last = 0, 0.0
    global_params = (
        [p.detach().clone() for p in global_model.parameters()]
        if global_model is not None
        else None
    )
    for _ in range(epochs):
        for xb, yb in loader:
            if len(xb) < 2:
                continue
            loss = F.cross_entropy(model(xb), yb)
            if mu > 0:
                prox = 0.0
                for w, w_t in zip(model.parameters(), global_params):
                    prox += (w - w_t).norm(2) ** 2
                loss = loss + mu / 2 * prox
            opt.zero_grad()
            loss.backward()
            if c is not None:
                for p, ci, cc in zip(model.parameters(), c_i, c):
                    p.grad.data += cc - ci
            opt.step()
            steps += 1
            last = loss.item()
    return steps, last


def evaluate(model):
    model.eval()
    with torch.no_grad():
        out = model(x_test)
        return F.cross_entropy(out, y_test).item(), (out.argmax(1) == y_test).float().mean().item()


results = {"sizes": sizes}
for algo in ("fedavg", "fedprox", "scaffold", "fedavgm", "dp"):
    global_model = fresh()
    c_global = [torch.zeros_like(p) for p in global_model.parameters()]
    c_local = [[torch.zeros_like(p) for p in global_model.parameters()] for _ in range(N_CLIENTS)]
    momentum = [torch.zeros_like(p) for p in global_model.parameters()]
    log = []
    for rnd in range(3):
        local_weights, local_losses, deltas_c = [], [], []
        for k in range(N_CLIENTS):
            local = copy.deepcopy(global_model)
            if algo == "scaffold":
                steps, last = local_train(local, client_data[k], c=c_global, c_i=c_local[k])
                with torch.no_grad():
                    new_ci = [
                        ci - cg + (gp - lp) / (steps * 0.05)
                        for ci, cg, gp, lp in zip(
                            c_local[k], c_global, global_model.parameters(), local.parameters()
                        )
                    ]
                    deltas_c.append([n_ - o for n_, o in zip(new_ci, c_local[k])])
                    c_local[k] = new_ci
            else:
                steps, last = local_train(
                    local,
                    client_data[k],
                    global_model=global_model,
                    mu=0.1 if algo == "fedprox" else 0.0,
                )
            if algo == "dp":
                with torch.no_grad():
                    g_vec = torch.nn.utils.parameters_to_vector(global_model.parameters())
                    delta = torch.nn.utils.parameters_to_vector(local.parameters()) - g_vec
                    delta = delta / max(1.0, (delta.norm() / 0.5).item())
                    delta += torch.from_numpy(
                        rng.normal(scale=0.01, size=delta.numel()).astype(np.float32)
                    )
                    torch.nn.utils.vector_to_parameters(g_vec + delta, local.parameters())
            local_weights.append(copy.deepcopy(local.state_dict()))
            local_losses.append(last)
        new_state = FedAvg(local_weights, sizes)
        if algo == "fedavgm":
            with torch.no_grad():
                names = [n for n, _ in global_model.named_parameters()]
                for i, (name, p) in enumerate(global_model.named_parameters()):
                    pseudo_grad = p.detach() - new_state[name]
                    momentum[i] = 0.9 * momentum[i] + pseudo_grad
                    new_state[name] = p.detach() - momentum[i]
        if algo == "scaffold":
            with torch.no_grad():
                for i in range(len(c_global)):
                    c_global[i] += sum(dc[i] for dc in deltas_c) / N_CLIENTS
        global_model.load_state_dict(new_state)
        log.append([float(np.mean(local_losses)), *evaluate(global_model)])
    results[algo] = log
    results[f"{algo}_bn_tracked"] = int(global_model.bn.num_batches_tracked)
    results[f"{algo}_bn_mean"] = global_model.bn.running_mean[:3].tolist()
report(**results)
