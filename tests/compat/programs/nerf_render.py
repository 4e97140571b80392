# A tiny NeRF in the shape of nerf-pytorch's run_nerf.py / run_nerf_helpers.py (our own rewrite):
# poses by pose_spherical's lambdas over torch.Tensor matrices, rays from a pinhole camera by
# meshgrid and broadcasting with c2w, positional encoding by sin/cos of 2^k x, an MLP with a skip
# concatenation and a view-direction branch, batchify()'d queries, volume rendering by raw2outputs
# (cumprod transmittance, white background, depth/disparity/accumulation maps), hierarchical
# sampling by sample_pdf (cumsum CDF, searchsorted(right=True), gather on expanded CDFs, where),
# torch.sort over merged depths, a coarse and a fine network trained with Adam and an exponential
# learning-rate decay set by hand, PSNR by log10. The scene: a coloured sphere rendered in NumPy.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

img2mse = lambda x, y: torch.mean((x - y) ** 2)  # noqa: E731
mse2psnr = lambda x: -10.0 * torch.log(x) / torch.log(torch.Tensor([10.0]))  # noqa: E731

trans_t = lambda t: torch.Tensor([  # noqa: E731
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, t],
    [0, 0, 0, 1]]).float()

rot_phi = lambda phi: torch.Tensor([  # noqa: E731
    [1, 0, 0, 0],
    [0, np.cos(phi), -np.sin(phi), 0],
    [0, np.sin(phi), np.cos(phi), 0],
    [0, 0, 0, 1]]).float()

rot_theta = lambda th: torch.Tensor([  # noqa: E731
    [np.cos(th), 0, -np.sin(th), 0],
    [0, 1, 0, 0],
    [np.sin(th), 0, np.cos(th), 0],
    [0, 0, 0, 1]]).float()


def pose_spherical(theta, phi, radius):
    c2w = trans_t(radius)
    c2w = rot_phi(phi / 180.0 * np.pi) @ c2w
    c2w = rot_theta(theta / 180.0 * np.pi) @ c2w
    c2w = torch.Tensor(np.array([[-1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])) @ c2w
    return c2w


class Embedder:
    def __init__(self, multires, include_input=True):
        embed_fns, out_dim = [], 0
        if include_input:
            embed_fns.append(lambda x: x)
            out_dim += 3
        freq_bands = 2.0 ** torch.linspace(0.0, multires - 1, steps=multires)
        for freq in freq_bands:
            for p_fn in (torch.sin, torch.cos):
                embed_fns.append(lambda x, p_fn=p_fn, freq=freq: p_fn(x * freq))
                out_dim += 3
        self.embed_fns = embed_fns
        self.out_dim = out_dim

    def embed(self, inputs):
        return torch.cat([fn(inputs) for fn in self.embed_fns], -1)


class NeRF(nn.Module):
    def __init__(self, D=4, W=32, input_ch=3, input_ch_views=3, skips=(2,)):
        super().__init__()
        self.D, self.W, self.skips = D, W, list(skips)
        self.input_ch, self.input_ch_views = input_ch, input_ch_views
        self.pts_linears = nn.ModuleList(
            [nn.Linear(input_ch, W)]
            + [nn.Linear(W, W) if i not in self.skips else nn.Linear(W + input_ch, W)
               for i in range(D - 1)])
        self.views_linears = nn.ModuleList([nn.Linear(input_ch_views + W, W // 2)])
        self.feature_linear = nn.Linear(W, W)
        self.alpha_linear = nn.Linear(W, 1)
        self.rgb_linear = nn.Linear(W // 2, 3)

    def forward(self, x):
        input_pts, input_views = torch.split(x, [self.input_ch, self.input_ch_views], dim=-1)
        h = input_pts
        for i, _ in enumerate(self.pts_linears):
            h = self.pts_linears[i](h)
            h = F.relu(h)
            if i in self.skips:
                h = torch.cat([input_pts, h], -1)
        alpha = self.alpha_linear(h)
        feature = self.feature_linear(h)
        h = torch.cat([feature, input_views], -1)
        for i, _ in enumerate(self.views_linears):
            h = self.views_linears[i](h)
            h = F.relu(h)
        rgb = self.rgb_linear(h)
        return torch.cat([rgb, alpha], -1)


def batchify(fn, chunk):
    def ret(inputs):
        return torch.cat([fn(inputs[i:i + chunk]) for i in range(0, inputs.shape[0], chunk)], 0)
    return ret


def run_network(inputs, viewdirs, fn, embed_fn, embeddirs_fn, netchunk=256):
    inputs_flat = torch.reshape(inputs, [-1, inputs.shape[-1]])
    embedded = embed_fn(inputs_flat)
    input_dirs = viewdirs[:, None].expand(inputs.shape)
    input_dirs_flat = torch.reshape(input_dirs, [-1, input_dirs.shape[-1]])
    embedded = torch.cat([embedded, embeddirs_fn(input_dirs_flat)], -1)
    outputs_flat = batchify(fn, netchunk)(embedded)
    return torch.reshape(outputs_flat, list(inputs.shape[:-1]) + [outputs_flat.shape[-1]])


def get_rays(H, W, K, c2w):
    i, j = torch.meshgrid(torch.linspace(0, W - 1, W), torch.linspace(0, H - 1, H), indexing="ij")
    i = i.t()
    j = j.t()
    dirs = torch.stack([(i - K[0][2]) / K[0][0], -(j - K[1][2]) / K[1][1], -torch.ones_like(i)], -1)
    rays_d = torch.sum(dirs[..., np.newaxis, :] * c2w[:3, :3], -1)
    rays_o = c2w[:3, -1].expand(rays_d.shape)
    return rays_o, rays_d


def raw2outputs(raw, z_vals, rays_d, white_bkgd=True):
    raw2alpha = lambda raw, dists, act_fn=F.relu: 1.0 - torch.exp(-act_fn(raw) * dists)  # noqa: E731
    dists = z_vals[..., 1:] - z_vals[..., :-1]
    dists = torch.cat([dists, torch.Tensor([1e10]).expand(dists[..., :1].shape)], -1)
    dists = dists * torch.norm(rays_d[..., None, :], dim=-1)
    rgb = torch.sigmoid(raw[..., :3])
    alpha = raw2alpha(raw[..., 3], dists)
    weights = alpha * torch.cumprod(
        torch.cat([torch.ones((alpha.shape[0], 1)), 1.0 - alpha + 1e-10], -1), -1)[:, :-1]
    rgb_map = torch.sum(weights[..., None] * rgb, -2)
    depth_map = torch.sum(weights * z_vals, -1)
    disp_map = 1.0 / torch.max(1e-10 * torch.ones_like(depth_map),
                               depth_map / torch.sum(weights, -1))
    acc_map = torch.sum(weights, -1)
    if white_bkgd:
        rgb_map = rgb_map + (1.0 - acc_map[..., None])
    return rgb_map, disp_map, acc_map, weights, depth_map


def sample_pdf(bins, weights, N_samples):
    weights = weights + 1e-5
    pdf = weights / torch.sum(weights, -1, keepdim=True)
    cdf = torch.cumsum(pdf, -1)
    cdf = torch.cat([torch.zeros_like(cdf[..., :1]), cdf], -1)
    u = torch.linspace(0.0, 1.0, steps=N_samples)
    u = u.expand(list(cdf.shape[:-1]) + [N_samples])
    u = u.contiguous()
    inds = torch.searchsorted(cdf, u, right=True)
    below = torch.max(torch.zeros_like(inds - 1), inds - 1)
    above = torch.min((cdf.shape[-1] - 1) * torch.ones_like(inds), inds)
    inds_g = torch.stack([below, above], -1)
    matched_shape = [inds_g.shape[0], inds_g.shape[1], cdf.shape[-1]]
    cdf_g = torch.gather(cdf.unsqueeze(1).expand(matched_shape), 2, inds_g)
    bins_g = torch.gather(bins.unsqueeze(1).expand(matched_shape), 2, inds_g)
    denom = cdf_g[..., 1] - cdf_g[..., 0]
    denom = torch.where(denom < 1e-5, torch.ones_like(denom), denom)
    t = (u - cdf_g[..., 0]) / denom
    return bins_g[..., 0] + t * (bins_g[..., 1] - bins_g[..., 0])


def render_rays(rays, coarse, fine, embed_fn, embeddirs_fn, N_samples=16, N_importance=16,
                near=2.0, far=6.0):
    rays_o, rays_d = rays[:, 0:3], rays[:, 3:6]
    viewdirs = rays_d / torch.norm(rays_d, dim=-1, keepdim=True)
    N_rays = rays.shape[0]
    t_vals = torch.linspace(0.0, 1.0, steps=N_samples)
    z_vals = near * (1.0 - t_vals) + far * t_vals
    z_vals = z_vals.expand([N_rays, N_samples])
    pts = rays_o[..., None, :] + rays_d[..., None, :] * z_vals[..., :, None]
    raw = run_network(pts, viewdirs, coarse, embed_fn, embeddirs_fn)
    rgb0, disp0, acc0, weights, _ = raw2outputs(raw, z_vals, rays_d)
    z_vals_mid = 0.5 * (z_vals[..., 1:] + z_vals[..., :-1])
    z_samples = sample_pdf(z_vals_mid, weights[..., 1:-1], N_importance).detach()
    z_vals, _ = torch.sort(torch.cat([z_vals, z_samples], -1), -1)
    pts = rays_o[..., None, :] + rays_d[..., None, :] * z_vals[..., :, None]
    raw = run_network(pts, viewdirs, fine, embed_fn, embeddirs_fn)
    rgb_map, disp_map, acc_map, _, depth_map = raw2outputs(raw, z_vals, rays_d)
    return {"rgb_map": rgb_map, "disp_map": disp_map, "acc_map": acc_map, "rgb0": rgb0,
            "depth_map": depth_map, "z_std": torch.std(z_samples, dim=-1, unbiased=False)}


def sphere_image(rays_o, rays_d):
    """The target: a sphere of radius 1 at the origin, coloured by its normal, on white."""
    o, d = rays_o.reshape(-1, 3), rays_d.reshape(-1, 3)
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    b = (o * d).sum(-1)
    c = (o * o).sum(-1) - 1.0
    disc = b * b - c
    hit = disc > 0
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    n = o + t[:, None] * d
    rgb = np.where(hit[:, None], 0.5 + 0.5 * n, 1.0)
    return rgb.reshape(rays_o.shape).astype(np.float32)


def main():
    torch.manual_seed(0)
    H = W = 10
    focal = 12.0
    K = np.array([[focal, 0, 0.5 * W], [0, focal, 0.5 * H], [0, 0, 1]])
    poses = [pose_spherical(angle, -30.0, 4.0) for angle in np.linspace(-180, 180, 5)[:-1]]
    rays, targets = [], []
    for c2w in poses:
        ro, rd = get_rays(H, W, K, c2w)
        rays.append(torch.cat([ro, rd], -1).reshape(-1, 6))
        targets.append(torch.from_numpy(sphere_image(ro.numpy(), rd.numpy())).reshape(-1, 3))
    rays = torch.cat(rays, 0)
    targets = torch.cat(targets, 0)

    embed = Embedder(4)
    embed_dirs = Embedder(2)
    coarse = NeRF(input_ch=embed.out_dim, input_ch_views=embed_dirs.out_dim)
    fine = NeRF(input_ch=embed.out_dim, input_ch_views=embed_dirs.out_dim)
    for net in (coarse, fine):
        Wt = reference_weights(net)
        with torch.no_grad():
            for name, p in net.named_parameters():
                p.copy_(torch.from_numpy(Wt[name]))
    grad_vars = list(coarse.parameters()) + list(fine.parameters())
    lrate, decay_rate, decay_steps = 5e-3, 0.1, 40
    optimizer = torch.optim.Adam(params=grad_vars, lr=lrate, betas=(0.9, 0.999))

    N_rand = 80
    losses, psnrs, lrs = [], [], []
    for step in range(12):
        start = (step * N_rand) % rays.shape[0]
        batch = rays[start:start + N_rand]
        target_s = targets[start:start + N_rand]
        out = render_rays(batch, coarse, fine, embed.embed, embed_dirs.embed)
        optimizer.zero_grad()
        img_loss = img2mse(out["rgb_map"], target_s)
        loss = img_loss + img2mse(out["rgb0"], target_s)
        psnr = mse2psnr(img_loss)
        loss.backward()
        optimizer.step()
        new_lrate = lrate * (decay_rate ** ((step + 1) / decay_steps))
        for param_group in optimizer.param_groups:
            param_group["lr"] = new_lrate
        losses.append(loss.item())
        psnrs.append(psnr.item())
        lrs.append(new_lrate)

    with torch.no_grad():
        out = render_rays(rays[:N_rand], coarse, fine, embed.embed, embed_dirs.embed)
        test_psnr = mse2psnr(img2mse(out["rgb_map"], targets[:N_rand])).item()
        disp = out["disp_map"]
        depth_mean = out["depth_map"].mean().item()
        acc_mean = out["acc_map"].mean().item()
        z_std = out["z_std"].mean().item()

    report(
        ray_origin=rays[0, :3].tolist(), ray_dir=rays[7, 3:].tolist(),
        target_mean=targets.mean().item(), embed_dims=[embed.out_dim, embed_dirs.out_dim],
        losses=losses, psnrs=psnrs, lrs=lrs, test_psnr=test_psnr, depth_mean=depth_mean,
        acc_mean=acc_mean, disp_finite=bool(torch.isfinite(disp).all()), z_std=z_std,
        disp_nan=int(torch.isnan(disp).sum()),
        disp_max=torch.nan_to_num(disp, nan=0.0).max().item(), pi=math.pi,
    )


if __name__ == "__main__":
    main()
