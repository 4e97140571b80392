# Machine-learned interatomic potentials and equivariant message passing, in the shape of
# schnetpack's SchNet and vgsatorras/egnn (our own condensed rewrites), on toy molecules made
# with NumPy: neighbour lists by torch.cdist inside each molecule (block mask, cutoff, no self
# pairs, nonzero(as_tuple=True)), Gaussian radial bases on a linspace, a cosine cutoff, shifted
# softplus, continuous-filter convolutions gathered by index and summed by index_add, per-molecule
# energies by index_add over a molecule index, forces as -dE/dR by autograd.grad(create_graph=
# True) and a force-matching loss backpropagated through them (a second derivative), rotation
# invariance and equivariance checks with a rotation from torch.linalg.qr (sign-fixed by the
# diagonal); EGNN's E_GCL (unsorted_segment_sum / mean by scatter_add_ on expanded indices,
# new_full, xavier_uniform_(gain=0.001) coordinate head, a tanh-bounded update, attention
# gating, coords normalised by a detached norm) predicting an n-body system's future positions
# from positions and velocities; Adam, an exponential lr decay.
import math

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import nn

rng = np.random.default_rng(6)


def load(model, scale=1.0):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name] * scale))
    return model


# ------------------------------------------------------------- data: toy molecules
n_mol, n_atoms = 6, 5
Z = rng.integers(1, 4, size=(n_mol, n_atoms))
R = rng.standard_normal((n_mol, n_atoms, 3)) * 0.9


def lj_energy_forces(pos, z):
    eps = 0.2 + 0.1 * (z[:, None] + z[None, :])
    diff = pos[:, None, :] - pos[None, :, :]
    d = np.linalg.norm(diff, axis=-1) + np.eye(len(pos))
    s = 1.0 / d
    e_pair = eps * (0.25 * s ** 12 - s ** 6)
    np.fill_diagonal(e_pair, 0.0)
    de_dd = eps * (-3.0 * s ** 13 + 6.0 * s ** 7)
    np.fill_diagonal(de_dd, 0.0)
    forces = -(de_dd[..., None] * diff / d[..., None]).sum(1)
    return 0.5 * e_pair.sum(), forces


for m in range(n_mol):  # push atoms apart until no pair is closer than 0.8
    for _ in range(200):
        d = np.linalg.norm(R[m][:, None] - R[m][None], axis=-1) + 10 * np.eye(n_atoms)
        if d.min() > 0.8:
            break
        i, j = np.unravel_index(d.argmin(), d.shape)
        R[m, i] += 0.1 * (R[m, i] - R[m, j]) / d[i, j]
E_ref, F_ref = zip(*[lj_energy_forces(R[m], Z[m]) for m in range(n_mol)])
E_ref = torch.tensor(np.array(E_ref), dtype=torch.float32)
F_ref = torch.tensor(np.concatenate(F_ref), dtype=torch.float32)
F_ref = F_ref.clamp(-20.0, 20.0)
positions = torch.tensor(R.reshape(-1, 3), dtype=torch.float32)
atomic_numbers = torch.tensor(Z.reshape(-1))
idx_m = torch.arange(n_mol).repeat_interleave(n_atoms)


def neighbor_list(pos, idx_m, cutoff):
    d = torch.cdist(pos, pos)
    same = idx_m.unsqueeze(0) == idx_m.unsqueeze(1)
    mask = same & (d < cutoff) & ~torch.eye(len(pos), dtype=torch.bool)
    idx_i, idx_j = mask.nonzero(as_tuple=True)
    return idx_i, idx_j


# ------------------------------------------------------------- schnetpack's SchNet
def shifted_softplus(x):
    return F.softplus(x) - math.log(2.0)


class GaussianRBF(nn.Module):
    def __init__(self, n_rbf, cutoff, start=0.0, trainable=False):
        super().__init__()
        self.n_rbf = n_rbf
        offset = torch.linspace(start, cutoff, n_rbf)
        widths = torch.FloatTensor(torch.abs(offset[1] - offset[0]) * torch.ones_like(offset))
        if trainable:
            self.widths = nn.Parameter(widths)
            self.offsets = nn.Parameter(offset)
        else:
            self.register_buffer("widths", widths)
            self.register_buffer("offsets", offset)

    def forward(self, inputs):
        coeff = -0.5 / torch.pow(self.widths, 2)
        diff = inputs[..., None] - self.offsets
        y = torch.exp(coeff * torch.pow(diff, 2))
        return y


class CosineCutoff(nn.Module):
    def __init__(self, cutoff):
        super().__init__()
        self.register_buffer("cutoff", torch.FloatTensor([cutoff]))

    def forward(self, input):
        input_cut = 0.5 * (torch.cos(input * math.pi / self.cutoff) + 1.0)
        input_cut *= (input < self.cutoff).float()
        return input_cut


def scatter_add(x, idx_i, dim_size, dim=0):
    shape = list(x.shape)
    shape[dim] = dim_size
    tmp = torch.zeros(shape, dtype=x.dtype, device=x.device)
    y = tmp.index_add(dim, idx_i, x)
    return y


class SchNetInteraction(nn.Module):
    def __init__(self, n_atom_basis, n_rbf, n_filters):
        super().__init__()
        self.in2f = nn.Linear(n_atom_basis, n_filters, bias=False)
        self.f2out = nn.Sequential(nn.Linear(n_filters, n_atom_basis), nn.Softplus(),
                                   nn.Linear(n_atom_basis, n_atom_basis))
        self.filter_network = nn.Sequential(nn.Linear(n_rbf, n_filters), nn.Softplus(),
                                            nn.Linear(n_filters, n_filters))

    def forward(self, x, f_ij, idx_i, idx_j, rcut_ij):
        x = self.in2f(x)
        Wij = self.filter_network(f_ij)
        Wij = Wij * rcut_ij[:, None]
        x_j = x[idx_j]
        x_ij = x_j * Wij
        x = scatter_add(x_ij, idx_i, dim_size=x.shape[0])
        x = self.f2out(x)
        return x


class SchNet(nn.Module):
    def __init__(self, n_atom_basis=16, n_interactions=2, n_rbf=12, cutoff=3.0, max_z=10):
        super().__init__()
        self.cutoff = cutoff
        self.embedding = nn.Embedding(max_z, n_atom_basis, padding_idx=0)
        self.radial_basis = GaussianRBF(n_rbf=n_rbf, cutoff=cutoff)
        self.cutoff_fn = CosineCutoff(cutoff)
        self.interactions = nn.ModuleList([SchNetInteraction(n_atom_basis, n_rbf, n_atom_basis)
                                           for _ in range(n_interactions)])
        self.outnet = nn.Sequential(nn.Linear(n_atom_basis, n_atom_basis // 2), nn.SiLU(),
                                    nn.Linear(n_atom_basis // 2, 1))

    def forward(self, Z, R, idx_m, n_mol):
        idx_i, idx_j = neighbor_list(R.detach(), idx_m, self.cutoff)
        r_ij = R[idx_j] - R[idx_i]
        d_ij = torch.norm(r_ij, dim=1)
        f_ij = self.radial_basis(d_ij)
        rcut_ij = self.cutoff_fn(d_ij)
        q = self.embedding(Z)
        for interaction in self.interactions:
            v = interaction(q, f_ij, idx_i, idx_j, rcut_ij)
            q = q + v
        yi = self.outnet(q).squeeze(-1)
        energy = torch.zeros(n_mol, dtype=yi.dtype).index_add(0, idx_m, yi)
        return energy, len(idx_i)


schnet = load(SchNet())
opt = torch.optim.Adam(schnet.parameters(), lr=5e-3)
sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
rho_force = 0.1
schnet_losses, n_pairs = [], []
for step in range(8):
    R_in = positions.clone().requires_grad_(True)
    energy, n_pair = schnet(atomic_numbers, R_in, idx_m, n_mol)
    forces = -torch.autograd.grad(energy, R_in, grad_outputs=torch.ones_like(energy),
                                  create_graph=True, retain_graph=True)[0]
    loss_e = F.mse_loss(energy, E_ref)
    loss_f = F.mse_loss(forces, F_ref)
    loss = (1 - rho_force) * loss_e + rho_force * loss_f
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    schnet_losses.append([loss_e.item(), loss_f.item()])
    n_pairs.append(n_pair)

# invariance: rotate every molecule by the same rotation, translate each
A = torch.tensor(rng.standard_normal((3, 3)), dtype=torch.float32)
Q, Rr = torch.linalg.qr(A)
Q = Q * torch.sign(torch.diagonal(Rr)).unsqueeze(0)
shift = torch.tensor(rng.standard_normal((n_mol, 3)), dtype=torch.float32)[idx_m]
R_in = positions.clone().requires_grad_(True)
R_rot = (positions @ Q.T + shift).requires_grad_(True)
e1, _ = schnet(atomic_numbers, R_in, idx_m, n_mol)
e2, _ = schnet(atomic_numbers, R_rot, idx_m, n_mol)
f1 = -torch.autograd.grad(e1.sum(), R_in)[0]
f2 = -torch.autograd.grad(e2.sum(), R_rot)[0]
schnet_checks = [e1.tolist(), f1[:3].tolist(),
                 bool((e1 - e2).abs().max() < 1e-4),
                 bool((f1 @ Q.T - f2).abs().max() < 1e-3),
                 abs(torch.linalg.det(Q).item() - 1.0) < 1e-5,
                 forces.sum(0).abs().max().item() < 1e-4]


# ------------------------------------------------------------- EGNN on an n-body system
def unsorted_segment_sum(data, segment_ids, num_segments):
    result_shape = (num_segments, data.size(1))
    result = data.new_full(result_shape, 0)  # Init empty result tensor.
    segment_ids = segment_ids.unsqueeze(-1).expand(-1, data.size(1))
    result.scatter_add_(0, segment_ids, data)
    return result


def unsorted_segment_mean(data, segment_ids, num_segments):
    result_shape = (num_segments, data.size(1))
    segment_ids = segment_ids.unsqueeze(-1).expand(-1, data.size(1))
    result = data.new_full(result_shape, 0)  # Init empty result tensor.
    count = data.new_full(result_shape, 0)
    result.scatter_add_(0, segment_ids, data)
    count.scatter_add_(0, segment_ids, torch.ones_like(data))
    return result / count.clamp(min=1)


class E_GCL(nn.Module):
    def __init__(self, input_nf, output_nf, hidden_nf, edges_in_d=0, act_fn=nn.SiLU(),  # noqa: B008 (the repository's default)
                 residual=True, attention=False, normalize=False, coords_agg="mean",
                 tanh=False):
        super(E_GCL, self).__init__()
        input_edge = input_nf * 2
        self.residual = residual
        self.attention = attention
        self.normalize = normalize
        self.coords_agg = coords_agg
        self.tanh = tanh
        self.epsilon = 1e-8
        edge_coords_nf = 1
        self.edge_mlp = nn.Sequential(
            nn.Linear(input_edge + edge_coords_nf + edges_in_d, hidden_nf), act_fn,
            nn.Linear(hidden_nf, hidden_nf), act_fn)
        self.node_mlp = nn.Sequential(nn.Linear(hidden_nf + input_nf, hidden_nf), act_fn,
                                      nn.Linear(hidden_nf, output_nf))
        layer = nn.Linear(hidden_nf, 1, bias=False)
        torch.nn.init.xavier_uniform_(layer.weight, gain=0.001)
        coord_mlp = []
        coord_mlp.append(nn.Linear(hidden_nf, hidden_nf))
        coord_mlp.append(act_fn)
        coord_mlp.append(layer)
        if self.tanh:
            coord_mlp.append(nn.Tanh())
        self.coord_mlp = nn.Sequential(*coord_mlp)
        if self.attention:
            self.att_mlp = nn.Sequential(nn.Linear(hidden_nf, 1), nn.Sigmoid())

    def edge_model(self, source, target, radial, edge_attr):
        if edge_attr is None:
            out = torch.cat([source, target, radial], dim=1)
        else:
            out = torch.cat([source, target, radial, edge_attr], dim=1)
        out = self.edge_mlp(out)
        if self.attention:
            att_val = self.att_mlp(out)
            out = out * att_val
        return out

    def node_model(self, x, edge_index, edge_attr, node_attr):
        row, col = edge_index
        agg = unsorted_segment_sum(edge_attr, row, num_segments=x.size(0))
        if node_attr is not None:
            agg = torch.cat([x, agg, node_attr], dim=1)
        else:
            agg = torch.cat([x, agg], dim=1)
        out = self.node_mlp(agg)
        if self.residual:
            out = x + out
        return out, agg

    def coord_model(self, coord, edge_index, coord_diff, edge_feat):
        row, col = edge_index
        trans = coord_diff * self.coord_mlp(edge_feat)
        if self.coords_agg == "sum":
            agg = unsorted_segment_sum(trans, row, num_segments=coord.size(0))
        elif self.coords_agg == "mean":
            agg = unsorted_segment_mean(trans, row, num_segments=coord.size(0))
        else:
            raise Exception("Wrong coords_agg parameter %s" % self.coords_agg)
        coord = coord + agg
        return coord

    def coord2radial(self, edge_index, coord):
        row, col = edge_index
        coord_diff = coord[row] - coord[col]
        radial = torch.sum(coord_diff ** 2, 1).unsqueeze(1)
        if self.normalize:
            norm = torch.sqrt(radial).detach() + self.epsilon
            coord_diff = coord_diff / norm
        return radial, coord_diff

    def forward(self, h, edge_index, coord, edge_attr=None, node_attr=None):
        row, col = edge_index
        radial, coord_diff = self.coord2radial(edge_index, coord)
        edge_feat = self.edge_model(h[row], h[col], radial, edge_attr)
        coord = self.coord_model(coord, edge_index, coord_diff, edge_feat)
        h, agg = self.node_model(h, edge_index, edge_feat, node_attr)
        return h, coord, edge_attr


class EGNN(nn.Module):
    def __init__(self, in_node_nf, hidden_nf, out_node_nf, in_edge_nf=0, act_fn=nn.SiLU(),  # noqa: B008 (the repository's default)
                 n_layers=3, residual=True, attention=False, normalize=False, tanh=False):
        super(EGNN, self).__init__()
        self.hidden_nf = hidden_nf
        self.n_layers = n_layers
        self.embedding_in = nn.Linear(in_node_nf, self.hidden_nf)
        self.embedding_out = nn.Linear(self.hidden_nf, out_node_nf)
        for i in range(0, n_layers):
            self.add_module("gcl_%d" % i, E_GCL(self.hidden_nf, self.hidden_nf, self.hidden_nf,
                                                edges_in_d=in_edge_nf, act_fn=act_fn,
                                                residual=residual, attention=attention,
                                                normalize=normalize, tanh=tanh))

    def forward(self, h, x, edges, edge_attr):
        h = self.embedding_in(h)
        for i in range(0, self.n_layers):
            h, x, _ = self._modules["gcl_%d" % i](h, edges, x, edge_attr=edge_attr)
        h = self.embedding_out(h)
        return h, x


def get_edges(n_nodes):
    rows, cols = [], []
    for i in range(n_nodes):
        for j in range(n_nodes):
            if i != j:
                rows.append(i)
                cols.append(j)
    edges = [rows, cols]
    return edges


def get_edges_batch(n_nodes, batch_size):
    edges = get_edges(n_nodes)
    edge_attr = torch.ones(len(edges[0]) * batch_size, 1)
    edges = [torch.LongTensor(edges[0]), torch.LongTensor(edges[1])]
    if batch_size == 1:
        return edges, edge_attr
    elif batch_size > 1:
        rows, cols = [], []
        for i in range(batch_size):
            rows.append(edges[0] + n_nodes * i)
            cols.append(edges[1] + n_nodes * i)
        edges = [torch.cat(rows), torch.cat(cols)]
    return edges, edge_attr


def simulate(loc, vel, charges, steps=20, dt=0.01):
    for _ in range(steps):
        diff = loc[:, :, None, :] - loc[:, None, :, :]
        d = np.linalg.norm(diff, axis=-1) + np.eye(loc.shape[1])
        f = (charges[:, :, None] * charges[:, None, :])[..., None] * diff / d[..., None] ** 3
        vel = vel + dt * np.clip(f.sum(2), -10, 10)
        loc = loc + dt * vel
    return loc


batch_size, n_nodes = 8, 5
loc0 = rng.standard_normal((batch_size, n_nodes, 3))
vel0 = 0.5 * rng.standard_normal((batch_size, n_nodes, 3))
charges = rng.choice([-1.0, 1.0], size=(batch_size, n_nodes))
loc_end = simulate(loc0, vel0, charges)
edges, edge_attr = get_edges_batch(n_nodes, batch_size)
rows, cols = edges
charge_prod = torch.tensor((charges.reshape(-1)[rows.numpy()] * charges.reshape(-1)[
    cols.numpy()])[:, None], dtype=torch.float32)
h0 = torch.tensor(np.concatenate([np.linalg.norm(vel0, axis=-1, keepdims=True),
                                  charges[..., None]], -1).reshape(-1, 2), dtype=torch.float32)
x0 = torch.tensor(loc0.reshape(-1, 3), dtype=torch.float32)
v0 = torch.tensor(vel0.reshape(-1, 3), dtype=torch.float32)
target = torch.tensor(loc_end.reshape(-1, 3), dtype=torch.float32)

egnn = EGNN(in_node_nf=2, hidden_nf=16, out_node_nf=1, in_edge_nf=1, n_layers=2,
            attention=True, normalize=True, tanh=True)
load(egnn)
with torch.no_grad():  # the repository's tiny coordinate-head init (gain=0.001), by value
    for i in range(2):
        egnn._modules["gcl_%d" % i].coord_mlp[2].weight.mul_(0.01)
opt = torch.optim.Adam(egnn.parameters(), lr=3e-3, weight_decay=1e-12)
egnn_losses = []
for step in range(10):
    _, x_pred = egnn(h0, x0 + 0.2 * v0, edges, charge_prod)
    loss = F.mse_loss(x_pred, target)
    opt.zero_grad()
    loss.backward()
    opt.step()
    egnn_losses.append(loss.item())
with torch.no_grad():
    h1, x1 = egnn(h0, x0, edges, charge_prod)
    h2, x2 = egnn(h0, x0 @ Q.T + 1.5, edges, charge_prod)
    egnn_checks = [bool((h1 - h2).abs().max() < 1e-4),
                   bool((x1 @ Q.T + 1.5 - x2).abs().max() < 1e-4),
                   x1[:4].tolist(), h1[:6, 0].tolist(),
                   F.mse_loss(x1, torch.tensor(loc0.reshape(-1, 3), dtype=torch.float32)).item()]

report(n_pairs=n_pairs, schnet_losses=schnet_losses, schnet_checks=schnet_checks,
       egnn_losses=egnn_losses, egnn_checks=egnn_checks, n_edges=len(rows),
       lr=sched.get_last_lr())
