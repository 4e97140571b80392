# 3-D rotations and poses the way pytorch3d / roma-style helpers write them: quaternion <->
# matrix (standardised w >= 0, the _sqrt_positive_part branch by argmax over four candidates
# and one_hot masks), axis-angle by Rodrigues with hat / skew matrices, so3_log_map through
# acos of the clamped trace, the 6-D continuous representation (Zhou et al.: Gram-Schmidt by
# F.normalize and torch.cross / linalg.cross), Kabsch / Procrustes alignment by SVD with the
# reflection fix (det sign in a diag), 4x4 homogeneous transforms (inverse by R^T), pinhole
# projection; a network regressing rotations from point clouds trained on the geodesic loss
# (acos of clamped (trace - 1) / 2), compared across representations. Our own program.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(21)


def _sqrt_positive_part(x):
    ret = torch.zeros_like(x)
    positive_mask = x > 0
    ret[positive_mask] = torch.sqrt(x[positive_mask])
    return ret


def matrix_to_quaternion(matrix):
    batch_dim = matrix.shape[:-2]
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = torch.unbind(
        matrix.reshape(batch_dim + (9,)), dim=-1
    )
    q_abs = _sqrt_positive_part(
        torch.stack(
            [
                1.0 + m00 + m11 + m22,
                1.0 + m00 - m11 - m22,
                1.0 - m00 + m11 - m22,
                1.0 - m00 - m11 + m22,
            ],
            dim=-1,
        )
    )
    quat_by_rijk = torch.stack(
        [
            torch.stack([q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], dim=-1),
            torch.stack([m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20], dim=-1),
            torch.stack([m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21], dim=-1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2], dim=-1),
        ],
        dim=-2,
    )
    flr = torch.tensor(0.1).to(dtype=q_abs.dtype, device=q_abs.device)
    quat_candidates = quat_by_rijk / (2.0 * q_abs[..., None].max(flr))
    out = quat_candidates[F.one_hot(q_abs.argmax(dim=-1), num_classes=4) > 0.5, :].reshape(
        batch_dim + (4,)
    )
    return torch.where(out[..., 0:1] < 0, -out, out)


def quaternion_to_matrix(quaternions):
    r, i, j, k = torch.unbind(quaternions, -1)
    two_s = 2.0 / (quaternions * quaternions).sum(-1)
    o = torch.stack(
        (
            1 - two_s * (j * j + k * k), two_s * (i * j - k * r), two_s * (i * k + j * r),
            two_s * (i * j + k * r), 1 - two_s * (i * i + k * k), two_s * (j * k - i * r),
            two_s * (i * k - j * r), two_s * (j * k + i * r), 1 - two_s * (i * i + j * j),
        ),
        -1,
    )  # fmt: skip
    return o.reshape(quaternions.shape[:-1] + (3, 3))


def hat(v):
    N = v.shape[0]
    h = v.new_zeros(N, 3, 3)
    x, y, z = v.unbind(1)
    h[:, 0, 1] = -z
    h[:, 0, 2] = y
    h[:, 1, 0] = z
    h[:, 1, 2] = -x
    h[:, 2, 0] = -y
    h[:, 2, 1] = x
    return h


def so3_exp_map(log_rot, eps=1e-4):
    nrms = (log_rot * log_rot).sum(1)
    rot_angles = torch.clamp(nrms, eps).sqrt()
    rot_angles_inv = 1.0 / rot_angles
    fac1 = rot_angles_inv * rot_angles.sin()
    fac2 = rot_angles_inv * rot_angles_inv * (1.0 - rot_angles.cos())
    skews = hat(log_rot)
    skews_square = torch.bmm(skews, skews)
    return (
        fac1[:, None, None] * skews
        + fac2[:, None, None] * skews_square
        + torch.eye(3, dtype=log_rot.dtype)[None]
    )


def so3_log_map(R, eps=1e-4):
    rot_trace = R[:, 0, 0] + R[:, 1, 1] + R[:, 2, 2]
    phi_cos = torch.clamp((rot_trace - 1.0) * 0.5, -1.0 + eps, 1.0 - eps)
    phi = torch.acos(phi_cos)
    phi_factor = phi / (2.0 * phi.sin())
    log_rot_hat = phi_factor[:, None, None] * (R - R.permute(0, 2, 1))
    return torch.stack((log_rot_hat[:, 2, 1], log_rot_hat[:, 0, 2], log_rot_hat[:, 1, 0]), dim=1)


def rotation_6d_to_matrix(d6):
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = F.normalize(b2, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-2)


def matrix_to_rotation_6d(matrix):
    batch_dim = matrix.size()[:-2]
    return matrix[..., :2, :].clone().reshape(batch_dim + (6,))


def geodesic_loss(R1, R2, eps=1e-6):
    m = torch.bmm(R1, R2.transpose(1, 2))
    cos = (m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2] - 1) / 2
    return torch.acos(torch.clamp(cos, -1 + eps, 1 - eps))


def kabsch(P, Q):
    """R, t minimising |R P + t - Q| for (B, N, 3) point sets."""
    p_mean, q_mean = P.mean(1, keepdim=True), Q.mean(1, keepdim=True)
    H = (P - p_mean).transpose(1, 2) @ (Q - q_mean)
    U, S, Vh = torch.linalg.svd(H)
    d = torch.sign(torch.linalg.det(Vh.transpose(1, 2) @ U.transpose(1, 2)))
    D = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], dim=-1))
    R = Vh.transpose(1, 2) @ D @ U.transpose(1, 2)
    t = q_mean.squeeze(1) - (R @ p_mean.transpose(1, 2)).squeeze(2)
    return R, t


results = {}
# ---- conversions round trip (away from the angle-pi singularity)
aa = torch.from_numpy(rng.normal(size=(8, 3)).astype(np.float32))
aa = aa / aa.norm(dim=1, keepdim=True) * torch.linspace(0.2, 2.5, 8).unsqueeze(1)
R = so3_exp_map(aa)
q = matrix_to_quaternion(R)
results["orthogonal"] = (R @ R.transpose(1, 2) - torch.eye(3)).abs().max().item() < 1e-5
results["det"] = torch.linalg.det(R).tolist()
results["quat"] = q.tolist()
results["quat_roundtrip"] = torch.allclose(quaternion_to_matrix(q), R, atol=1e-5)
results["log_roundtrip"] = torch.allclose(so3_log_map(R), aa, atol=1e-4)
results["six_d_roundtrip"] = torch.allclose(
    rotation_6d_to_matrix(matrix_to_rotation_6d(R)), R, atol=1e-5
)
results["linalg_cross"] = torch.linalg.cross(aa[:4], aa[4:]).tolist()

# ---- gradients through the maps
aa_g = aa.clone().requires_grad_(True)
loss = (
    so3_log_map(so3_exp_map(aa_g)).pow(2).sum()
    + matrix_to_quaternion(so3_exp_map(aa_g))[:, 1:].sum()
)
loss.backward()
results["aa_grad"] = aa_g.grad.tolist()

# ---- Kabsch alignment of noisy point sets, homogeneous transforms, projection
P = torch.from_numpy(rng.normal(size=(4, 10, 3)).astype(np.float32))
R_true = R[:4]
t_true = torch.tensor([[0.5, -0.2, 3.0], [0.0, 0.1, 4.0], [-0.3, 0.3, 5.0], [0.2, 0.0, 3.5]])
Q = (
    P @ R_true.transpose(1, 2)
    + t_true[:, None]
    + 0.01 * torch.from_numpy(rng.normal(size=(4, 10, 3)).astype(np.float32))
)
Q[3] = -Q[3]  # a reflected set: the det fix keeps a rotation
R_est, t_est = kabsch(P, Q)
# (the geodesic angle of a 0.002 rad error is acos near 1: float32 rounding of the cosine
# moves it by 5%, so the estimate itself is compared)
results["kabsch_R"] = R_est.tolist()
results["kabsch_err"] = (R_est[:3] - R_true[:3]).abs().amax(dim=(1, 2)).tolist()
results["kabsch_t"] = t_est.tolist()
results["kabsch_det"] = torch.linalg.det(R_est).tolist()
T = torch.eye(4).repeat(4, 1, 1)
T[:, :3, :3] = R_est
T[:, :3, 3] = t_est
T_inv = torch.eye(4).repeat(4, 1, 1)
T_inv[:, :3, :3] = R_est.transpose(1, 2)
T_inv[:, :3, 3:] = -R_est.transpose(1, 2) @ t_est.unsqueeze(-1)
results["inv_ok"] = torch.allclose(T_inv, torch.linalg.inv(T), atol=1e-5)
Ph = F.pad(P, (0, 1), value=1.0)
cam = (Ph @ T.transpose(1, 2))[..., :3]
K = torch.tensor([[50.0, 0.0, 16.0], [0.0, 50.0, 12.0], [0.0, 0.0, 1.0]])
uv = cam[:3] @ K.T
uv = uv[..., :2] / uv[..., 2:].clamp(min=1e-6)
results["uv_mean"] = uv.mean(1).tolist()


# ---- rotation regression from point clouds in three representations
class RotNet(nn.Module):
    def __init__(self, out):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 32))
        self.head = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, out))

    def forward(self, src, dst):
        f = torch.cat([self.mlp(src).max(1)[0], self.mlp(dst).max(1)[0]], dim=1)
        return self.head(f)


template = torch.from_numpy(rng.normal(size=(12, 3)).astype(np.float32))
train_aa = torch.from_numpy(rng.normal(scale=0.6, size=(64, 3)).astype(np.float32))
train_R = so3_exp_map(train_aa)
train_pts = template.unsqueeze(0) @ train_R.transpose(1, 2)
to_matrix = {
    "6d": rotation_6d_to_matrix,
    "quat": lambda o: quaternion_to_matrix(F.normalize(o, dim=-1)),
    "axis_angle": so3_exp_map,
}
for rep, dim in (("6d", 6), ("quat", 4), ("axis_angle", 3)):
    net = RotNet(dim)
    W = reference_weights(net)
    with torch.no_grad():
        for n, p in net.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for step in range(12):
        idx = torch.arange(step * 16, step * 16 + 16) % 64
        src = template.unsqueeze(0).expand(16, -1, -1)
        R_pred = to_matrix[rep](net(src, train_pts[idx]))
        loss = geodesic_loss(R_pred, train_R[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    results[f"train_{rep}"] = losses
report(**results)
