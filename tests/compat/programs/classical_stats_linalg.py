# Classical statistics written in torch.linalg, as data-science notebooks port scikit-learn
# to tensors (float64): PCA by eigh of torch.cov with sign-fixed components, ZCA whitening,
# weighted covariances (fweights / aweights) and corrcoef, Fisher LDA by the Cholesky-reduced
# generalised eigenproblem (solve_triangular both sides), CCA by SVD of whitened
# cross-covariances with svdvals, ridge regression by solve, by ldl_factor / ldl_solve and by
# cholesky + cholesky_solve / cholesky_inverse, polynomial fits through torch.vander and
# linalg.vander with lstsq (gelsd driver), Householder QR by geqrf + householder_product against
# linalg.qr, matrix_power for Markov chains and their stationary distribution (eig of the
# transpose, real parts), multi_dot, vecdot, tensorsolve / tensorinv, matrix_rank / cond /
# pinv(hermitian=True), lu_factor / lu_solve, trapezoid / cumulative_trapezoid; then a
# Mahalanobis metric (L L^T with a softplus diagonal, tril_indices) learned by Adam with a
# log-determinant regulariser, gradients through eigvalsh / svdvals / slogdet.
import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import report

rng = np.random.default_rng(55)
torch.set_default_dtype(torch.float64)


def t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def sign_fix(vecs):
    idx = vecs.abs().argmax(dim=0)
    signs = torch.sign(vecs[idx, torch.arange(vecs.shape[1])])
    return vecs * signs


out = {}
# ---- PCA / ZCA
A = t(rng.standard_normal((4, 4)))
X = t(rng.standard_normal((60, 4))) @ A + t([1.0, -2.0, 0.5, 3.0])
C = torch.cov(X.T)
evals, evecs = torch.linalg.eigh(C)
order = torch.argsort(evals, descending=True)
evals, evecs = evals[order], sign_fix(evecs[:, order])
Z = (X - X.mean(0)) @ evecs[:, :2]
out["pca_var"] = evals.tolist()
out["pca_ratio"] = (evals / evals.sum()).cumsum(0).tolist()
out["pca_proj"] = Z[:3].flatten().tolist()
W_zca = evecs @ torch.diag(1.0 / torch.sqrt(evals + 1e-5)) @ evecs.T
Xw = (X - X.mean(0)) @ W_zca
out["zca_cov_err"] = (torch.cov(Xw.T) - torch.eye(4)).abs().max().item() < 1e-3
fw = torch.from_numpy(rng.integers(1, 4, size=60))
aw = t(rng.uniform(0.5, 1.5, size=60))
out["cov_weighted"] = torch.cov(X.T, correction=1, fweights=fw, aweights=aw)[0].tolist()
out["corrcoef"] = torch.corrcoef(X.T)[0].tolist()

# ---- LDA
y = torch.from_numpy(rng.integers(0, 3, size=60))
Xl = X + 2.0 * F.one_hot(y, 4)[:, :4].double()
mu = Xl.mean(0)
Sw = torch.zeros(4, 4)
Sb = torch.zeros(4, 4)
for c in range(3):
    Xc = Xl[y == c]
    mc = Xc.mean(0)
    Sw += (Xc - mc).T @ (Xc - mc)
    Sb += Xc.shape[0] * torch.outer(mc - mu, mc - mu)
Lw = torch.linalg.cholesky(Sw)
M = torch.linalg.solve_triangular(Lw, Sb, upper=False)
M = torch.linalg.solve_triangular(Lw, M.T, upper=False).T
ev, V = torch.linalg.eigh(M)
Wlda = torch.linalg.solve_triangular(Lw.T, V, upper=True)[:, -2:].flip(1)
out["lda_evals"] = ev[-2:].tolist()
proj = Xl @ sign_fix(Wlda)
centroids = torch.stack([proj[y == c].mean(0) for c in range(3)])
pred = torch.cdist(proj, centroids).argmin(1)
out["lda_acc"] = (pred == y).double().mean().item()

# ---- CCA
Y = X[:, :2] @ t(rng.standard_normal((2, 3))) + 0.5 * t(rng.standard_normal((60, 3)))
Xc, Yc = X - X.mean(0), Y - Y.mean(0)
Sxx = Xc.T @ Xc / 59 + 1e-6 * torch.eye(4)
Syy = Yc.T @ Yc / 59 + 1e-6 * torch.eye(3)
Sxy = Xc.T @ Yc / 59
Lx, Ly = torch.linalg.cholesky(Sxx), torch.linalg.cholesky(Syy)
T_ = torch.linalg.solve_triangular(Lx, Sxy, upper=False)
T_ = torch.linalg.solve_triangular(Ly, T_.T, upper=False).T
out["cca_corrs"] = torch.linalg.svdvals(T_).tolist()

# ---- ridge three ways
lam = 0.3
G = X.T @ X + lam * torch.eye(4)
rhs = X.T @ Y[:, :1]
w1 = torch.linalg.solve(G, rhs)
LD, piv = torch.linalg.ldl_factor(G)
w2 = torch.linalg.ldl_solve(LD, piv, rhs)
Lg = torch.linalg.cholesky(G)
w3 = torch.cholesky_solve(rhs, Lg)
w4 = torch.cholesky_inverse(Lg) @ rhs
out["ridge"] = w1.flatten().tolist()
out["ridge_agree"] = [(w1 - w).abs().max().item() < 1e-10 for w in (w2, w3, w4)]

# ---- polynomial fit
xs = t(np.linspace(-1, 1, 15))
ys = 0.5 - xs + 2 * xs**3 + 0.01 * t(rng.standard_normal(15))
V1 = torch.vander(xs, N=4, increasing=True)
V2 = torch.linalg.vander(xs, N=4)
coef = torch.linalg.lstsq(V1, ys.unsqueeze(-1), driver="gelsd").solution
out["poly"] = coef.flatten().tolist()
out["vander_same"] = torch.equal(V1, V2)

# ---- Householder QR
Mq = t(rng.standard_normal((5, 3)))
a, tau = torch.geqrf(Mq)
Q = torch.linalg.householder_product(a, tau)
R = torch.triu(a)[:3]
Q2, R2 = torch.linalg.qr(Mq)
out["qr_recon"] = (Q @ R - Mq).abs().max().item() < 1e-12
out["qr_same"] = (
    (Q.abs() - Q2.abs()).abs().max().item() < 1e-12,
    (R.abs() - R2.abs()).abs().max().item() < 1e-12,
)
out["R_diag"] = R.diagonal().abs().tolist()

# ---- Markov chain
P = t(rng.uniform(size=(4, 4)))
P = P / P.sum(1, keepdim=True)
P10 = torch.linalg.matrix_power(P, 10)
lam_, vec = torch.linalg.eig(P.T)
k = torch.argmin((lam_ - 1).abs())
pi = vec[:, k].real
pi = pi / pi.sum()
out["P10_row"] = P10[0].tolist()
out["stationary"] = pi.tolist()
out["multi_dot"] = torch.linalg.multi_dot([P, P10, P]).sum(1).tolist()
out["vecdot"] = torch.linalg.vecdot(P, P10, dim=1).tolist()
out["matrix_power_neg"] = torch.linalg.matrix_power(P + torch.eye(4), -2)[0].tolist()

# ---- tensor equations, ranks, conditioning, LU
Ta = t(rng.standard_normal((2, 3, 6)))
Ta = Ta.reshape(6, 6) + 3 * torch.eye(6)
Ta = Ta.reshape(2, 3, 6)
Bt = t(rng.standard_normal((2, 3)))
xt = torch.linalg.tensorsolve(Ta, Bt)
out["tensorsolve"] = xt.tolist()
out["tensorinv"] = torch.linalg.tensorinv(Ta.reshape(6, 2, 3), ind=1).reshape(-1)[:4].tolist()
low = t(rng.standard_normal((5, 2))) @ t(rng.standard_normal((2, 5)))
out["rank"] = [
    int(torch.linalg.matrix_rank(low)),
    int(torch.linalg.matrix_rank(low, hermitian=False, atol=1e-8)),
]
S = low @ low.T + 0.1 * torch.eye(5)
out["cond"] = [torch.linalg.cond(S).item(), torch.linalg.cond(S, p="fro").item()]
out["pinv_h"] = torch.linalg.pinv(S, hermitian=True)[0].tolist()
LU, pivots = torch.linalg.lu_factor(S)
out["lu_solve"] = torch.linalg.lu_solve(LU, pivots, torch.ones(5, 1)).flatten().tolist()
out["pivots"] = pivots.tolist()
tt = t(np.linspace(0, np.pi, 9))
out["trapz"] = [
    torch.trapezoid(torch.sin(tt), tt).item(),
    torch.cumulative_trapezoid(torch.sin(tt), tt)[-3:].tolist(),
]

# ---- metric learning with a log-det regulariser
D = 4
n_tril = D * (D + 1) // 2
rows, cols = torch.tril_indices(D, D)
theta = torch.zeros(n_tril, requires_grad=True)
with torch.no_grad():
    theta[rows == cols] = 0.5
opt = torch.optim.Adam([theta], lr=0.05)
pairs_a = Xl[:30]
pairs_b = Xl[30:]
same = (y[:30] == y[30:]).double()
losses = []
for step in range(15):
    L = torch.zeros(D, D)
    diag = rows == cols
    vals = torch.where(diag, F.softplus(theta), theta)
    L = L.index_put((rows, cols), vals)
    Mmat = L @ L.T
    d = pairs_a - pairs_b
    dist = torch.einsum("ni,ij,nj->n", d, Mmat, d)
    hinge = same * dist + (1 - same) * F.relu(4.0 - dist)
    sign, logdet = torch.linalg.slogdet(Mmat)
    reg = (
        -0.1 * logdet
        + 0.01 * torch.linalg.eigvalsh(Mmat).max()
        + 0.01 * torch.linalg.svdvals(L).sum()
    )
    loss = hinge.mean() + reg
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
out["metric_losses"] = losses
out["metric_eigs"] = torch.linalg.eigvalsh(Mmat.detach()).tolist()
out["theta_grad"] = theta.grad.tolist()
report(**out)
