# Complex linear algebra the way physics and signal-processing code writes it in PyTorch: a
# 4-level quantum gate learned by Adam on a complex nn.Parameter (H = (W + W^H) / 2 Hermitian,
# U = matrix_exp(-i H)), the target a random unitary from the QR of a complex Gaussian matrix;
# a circular complex Gaussian whose covariance Sigma = L L^H is fitted by maximum likelihood
# (cholesky, cholesky_solve, slogdet with its complex sign, solve_triangular); then a least-
# squares channel estimate (lstsq), inv / det / solve / lu_solve of complex matrices, and
# gradcheck of a complex function. complex128 throughout. Our own program; data made with NumPy.
import numpy as np
import torch
import torch.nn as nn

rng = np.random.default_rng(5)
n = 4


def cgauss(*shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)


# --- a target gate: Q of a complex QR, its phases fixed by R's diagonal (the Haar recipe)
Z = torch.from_numpy(cgauss(n, n))
Q, R = torch.linalg.qr(Z)
d = torch.diagonal(R)
target = Q * (d / d.abs()).unsqueeze(0)


class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.W = nn.Parameter(torch.from_numpy(0.3 * cgauss(n, n)))

    def forward(self):
        H = 0.5 * (self.W + self.W.mH)
        return torch.linalg.matrix_exp(-1j * H)


gate = Gate()
opt = torch.optim.Adam(gate.parameters(), lr=0.05)
fidelities = []
for step in range(40):
    opt.zero_grad()
    U = gate()
    overlap = torch.trace(target.mH @ U)
    loss = 1 - (overlap.abs() ** 2) / n**2
    loss.backward()
    opt.step()
    fidelities.append(1 - loss.item())

with torch.no_grad():
    U = gate()
    unitarity = torch.linalg.matrix_norm(U.mH @ U - torch.eye(n, dtype=U.dtype)).item()
    det_U = torch.linalg.det(U)

# --- a circular complex Gaussian fitted by maximum likelihood: Sigma = L L^H + eps I
true_L = np.tril(cgauss(n, n)) + 2 * np.eye(n)
X = torch.from_numpy(cgauss(200, n) @ true_L.T)  # rows x ~ CN(0, L L^H)
raw = torch.zeros(n, n, dtype=torch.complex128, requires_grad=True)
opt = torch.optim.Adam([raw], lr=0.05)
nlls = []
mask = torch.tril(torch.ones(n, n, dtype=torch.bool), -1)
for step in range(60):
    opt.zero_grad()
    # a lower factor with a positive diagonal, the strict lower part complex
    diag = torch.diag(torch.exp(raw.diagonal().real) + 0j)
    L = torch.where(mask, raw, torch.zeros_like(raw)) + diag
    Sigma = L @ L.mH + 1e-3 * torch.eye(n, dtype=L.dtype)
    C = torch.linalg.cholesky(Sigma)
    sign, logabsdet = torch.linalg.slogdet(Sigma)
    Y = torch.cholesky_solve(X.mT, C)  # Sigma^{-1} X^T
    quad = (X.conj() * Y.mT).sum(-1).real  # x^H Sigma^{-1} x per row
    nll = (logabsdet + quad.mean() + n * np.log(np.pi)).real
    nll.backward()
    opt.step()
    nlls.append(nll.item())

with torch.no_grad():
    Sigma = L @ L.mH + 1e-3 * torch.eye(n, dtype=L.dtype)
    W_ = torch.linalg.solve_triangular(torch.linalg.cholesky(Sigma), X.mT, upper=False)
    whitened_cov = (W_ @ W_.mH / X.shape[0]).diagonal().real
    sample_cov_err = torch.linalg.matrix_norm(Sigma - X.mT @ X.conj() / X.shape[0]).item()

# --- least squares channel estimate y = A h + noise, and complex solves
A = torch.from_numpy(cgauss(30, n))
h_true = torch.from_numpy(cgauss(n))
yv = A @ h_true + 0.01 * torch.from_numpy(cgauss(30))
h_ls = torch.linalg.lstsq(A, yv.unsqueeze(-1), driver="gelsd")
M = torch.from_numpy(cgauss(3, n, n)) + 2 * torch.eye(n, dtype=torch.complex128)
M.requires_grad_(True)
b = torch.from_numpy(cgauss(3, n, 2))
LU, piv = torch.linalg.lu_factor(M)
x_lu = torch.linalg.lu_solve(LU, piv, b)
x_solve = torch.linalg.solve(M, b)
stats = (torch.linalg.det(M).abs().log().sum() + torch.linalg.inv(M).abs().sum()
         + (x_lu.abs() ** 2).sum() + torch.logdet(M).imag.sum())
stats.backward()

M0 = M.detach()[0].clone().requires_grad_()
ok = torch.autograd.gradcheck(lambda m: torch.linalg.inv(m) @ m.mH, (M0,))

from compat_helpers import report  # noqa: E402

report(
    target_phases=torch.angle(torch.diagonal(target)).tolist(),
    fidelities=fidelities,
    unitarity=bool(unitarity < 1e-9),
    det_U_abs=float(det_U.abs()),
    nlls=nlls,
    sign_real=float(sign.real),  # 1: Sigma is Hermitian positive-definite
    sign_imag_tiny=bool(abs(float(sign.imag)) < 1e-12),
    whitened_cov=whitened_cov.tolist(),
    sample_cov_err=sample_cov_err,
    h_ls=torch.view_as_real(h_ls.solution.squeeze(-1)).flatten().tolist(),
    residuals=h_ls.residuals.tolist(),
    singular_values=h_ls.singular_values.tolist(),
    lu_vs_solve=bool((x_lu - x_solve).abs().max() < 1e-10),
    pivots=piv.flatten().tolist(),
    stats=stats.item(),
    grad_M=torch.view_as_real(M.grad).flatten().tolist(),
    gradcheck=bool(ok),
    dtype=str(x_lu.dtype).split(".")[-1],
)
