# Kolmogorov-Arnold networks in the shape of Blealtan/efficient-kan's src/efficient_kan/kan.py
# (our own rewrite) and of the ChebyKAN / FastKAN layers that followed it: a grid buffer made by
# arange * h .expand(in, -1).contiguous(), B-spline bases by the Cox-de Boor recursion on slices of
# the grid (comparisons cast by .to(x.dtype), bases[:, :, :-1]), curve2coeff by a batched
# torch.linalg.lstsq(A, B).solution, uninitialised torch.Tensor(...) Parameters filled by
# kaiming_uniform_ and .data.copy_, the standalone spline scaler, update_grid under
# @torch.no_grad() (sort, indexing by torch.linspace(dtype=int64), torch.concatenate, the grid
# buffer written by copy_(grid.T), the spline weights refitted from the old curve by bmm + lstsq),
# the L1 + entropy spline regularisation; Chebyshev bases by tanh / acos on an expanded view and
# an in-place `x *= arange` then torch.einsum("bid,iod->bo"); Gaussian RBF bases (FastKAN) on a
# linspace buffer with a LayerNorm; training by AdamW + ExponentialLR, grid updates at fixed
# steps, then LBFGS with a closure. Data: a 2-D regression target made with NumPy.
import math

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report


class KANLinear(torch.nn.Module):
    def __init__(self, in_features, out_features, grid_size=5, spline_order=3, scale_noise=0.1,
                 scale_base=1.0, scale_spline=1.0, enable_standalone_scale_spline=True,
                 base_activation=torch.nn.SiLU, grid_eps=0.02, grid_range=[-1, 1]):
        super(KANLinear, self).__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.grid_size = grid_size
        self.spline_order = spline_order

        h = (grid_range[1] - grid_range[0]) / grid_size
        grid = (
            (torch.arange(-spline_order, grid_size + spline_order + 1) * h + grid_range[0])
            .expand(in_features, -1)
            .contiguous()
        )
        self.register_buffer("grid", grid)

        self.base_weight = torch.nn.Parameter(torch.Tensor(out_features, in_features))
        self.spline_weight = torch.nn.Parameter(
            torch.Tensor(out_features, in_features, grid_size + spline_order)
        )
        if enable_standalone_scale_spline:
            self.spline_scaler = torch.nn.Parameter(torch.Tensor(out_features, in_features))

        self.scale_noise = scale_noise
        self.scale_base = scale_base
        self.scale_spline = scale_spline
        self.enable_standalone_scale_spline = enable_standalone_scale_spline
        self.base_activation = base_activation()
        self.grid_eps = grid_eps

        self.reset_parameters()

    def reset_parameters(self):
        torch.nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5) * self.scale_base)
        with torch.no_grad():
            noise = (
                (torch.rand(self.grid_size + 1, self.in_features, self.out_features) - 1 / 2)
                * self.scale_noise
                / self.grid_size
            )
            self.spline_weight.data.copy_(
                (self.scale_spline if not self.enable_standalone_scale_spline else 1.0)
                * self.curve2coeff(
                    self.grid.T[self.spline_order : -self.spline_order],
                    noise,
                )
            )
            if self.enable_standalone_scale_spline:
                torch.nn.init.kaiming_uniform_(self.spline_scaler,
                                               a=math.sqrt(5) * self.scale_spline)

    def b_splines(self, x: torch.Tensor):
        """Compute the B-spline bases for the given input tensor.

        x: (batch_size, in_features) -> (batch_size, in_features, grid_size + spline_order)
        """
        assert x.dim() == 2 and x.size(1) == self.in_features

        grid: torch.Tensor = self.grid  # (in_features, grid_size + 2 * spline_order + 1)
        x = x.unsqueeze(-1)
        bases = ((x >= grid[:, :-1]) & (x < grid[:, 1:])).to(x.dtype)
        for k in range(1, self.spline_order + 1):
            bases = (
                (x - grid[:, : -(k + 1)])
                / (grid[:, k:-1] - grid[:, : -(k + 1)])
                * bases[:, :, :-1]
            ) + (
                (grid[:, k + 1 :] - x)
                / (grid[:, k + 1 :] - grid[:, 1:(-k)])
                * bases[:, :, 1:]
            )

        assert bases.size() == (x.size(0), self.in_features, self.grid_size + self.spline_order)
        return bases.contiguous()

    def curve2coeff(self, x: torch.Tensor, y: torch.Tensor):
        """Compute the coefficients of the curve that interpolates the given points.

        x: (batch_size, in_features), y: (batch_size, in_features, out_features)
        -> (out_features, in_features, grid_size + spline_order)
        """
        assert x.dim() == 2 and x.size(1) == self.in_features
        assert y.size() == (x.size(0), self.in_features, self.out_features)

        A = self.b_splines(x).transpose(0, 1)  # (in_features, batch_size, grid_size + order)
        B = y.transpose(0, 1)  # (in_features, batch_size, out_features)
        solution = torch.linalg.lstsq(A, B).solution  # (in_features, grid_size + order, out)
        result = solution.permute(2, 0, 1)  # (out_features, in_features, grid_size + order)

        assert result.size() == (
            self.out_features, self.in_features, self.grid_size + self.spline_order)
        return result.contiguous()

    @property
    def scaled_spline_weight(self):
        return self.spline_weight * (
            self.spline_scaler.unsqueeze(-1) if self.enable_standalone_scale_spline else 1.0
        )

    def forward(self, x: torch.Tensor):
        assert x.size(-1) == self.in_features
        original_shape = x.shape
        x = x.reshape(-1, self.in_features)

        base_output = F.linear(self.base_activation(x), self.base_weight)
        spline_output = F.linear(
            self.b_splines(x).view(x.size(0), -1),
            self.scaled_spline_weight.view(self.out_features, -1),
        )
        output = base_output + spline_output

        output = output.reshape(*original_shape[:-1], self.out_features)
        return output

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, margin=0.01):
        assert x.dim() == 2 and x.size(1) == self.in_features
        batch = x.size(0)

        splines = self.b_splines(x)  # (batch, in, coeff)
        splines = splines.permute(1, 0, 2)  # (in, batch, coeff)
        orig_coeff = self.scaled_spline_weight  # (out, in, coeff)
        orig_coeff = orig_coeff.permute(1, 2, 0)  # (in, coeff, out)
        unreduced_spline_output = torch.bmm(splines, orig_coeff)  # (in, batch, out)
        unreduced_spline_output = unreduced_spline_output.permute(1, 0, 2)  # (batch, in, out)

        # sort each channel individually to collect data distribution
        x_sorted = torch.sort(x, dim=0)[0]
        grid_adaptive = x_sorted[
            torch.linspace(0, batch - 1, self.grid_size + 1, dtype=torch.int64, device=x.device)
        ]

        uniform_step = (x_sorted[-1] - x_sorted[0] + 2 * margin) / self.grid_size
        grid_uniform = (
            torch.arange(self.grid_size + 1, dtype=torch.float32, device=x.device).unsqueeze(1)
            * uniform_step
            + x_sorted[0]
            - margin
        )

        grid = self.grid_eps * grid_uniform + (1 - self.grid_eps) * grid_adaptive
        grid = torch.concatenate(
            [
                grid[:1]
                - uniform_step
                * torch.arange(self.spline_order, 0, -1, device=x.device).unsqueeze(1),
                grid,
                grid[-1:]
                + uniform_step
                * torch.arange(1, self.spline_order + 1, device=x.device).unsqueeze(1),
            ],
            dim=0,
        )

        self.grid.copy_(grid.T)
        self.spline_weight.data.copy_(self.curve2coeff(x, unreduced_spline_output))

    def regularization_loss(self, regularize_activation=1.0, regularize_entropy=1.0):
        l1_fake = self.spline_weight.abs().mean(-1)
        regularization_loss_activation = l1_fake.sum()
        p = l1_fake / regularization_loss_activation
        regularization_loss_entropy = -torch.sum(p * p.log())
        return (
            regularize_activation * regularization_loss_activation
            + regularize_entropy * regularization_loss_entropy
        )


class KAN(torch.nn.Module):
    def __init__(self, layers_hidden, grid_size=5, spline_order=3, **kwargs):
        super(KAN, self).__init__()
        self.grid_size = grid_size
        self.spline_order = spline_order

        self.layers = torch.nn.ModuleList()
        for in_features, out_features in zip(layers_hidden, layers_hidden[1:]):
            self.layers.append(
                KANLinear(in_features, out_features, grid_size=grid_size,
                          spline_order=spline_order, **kwargs)
            )

    def forward(self, x: torch.Tensor, update_grid=False):
        for layer in self.layers:
            if update_grid:
                layer.update_grid(x)
            x = layer(x)
        return x

    def regularization_loss(self, regularize_activation=1.0, regularize_entropy=1.0):
        return sum(
            layer.regularization_loss(regularize_activation, regularize_entropy)
            for layer in self.layers
        )


# ChebyKAN (SynodicMonth/ChebyKAN): Chebyshev polynomials by cos(n * acos(tanh(x)))
class ChebyKANLayer(torch.nn.Module):
    def __init__(self, input_dim, output_dim, degree):
        super(ChebyKANLayer, self).__init__()
        self.inputdim = input_dim
        self.outdim = output_dim
        self.degree = degree

        self.cheby_coeffs = torch.nn.Parameter(torch.empty(input_dim, output_dim, degree + 1))
        torch.nn.init.normal_(self.cheby_coeffs, mean=0.0, std=1 / (input_dim * (degree + 1)))
        self.register_buffer("arange", torch.arange(0, degree + 1, 1))

    def forward(self, x):
        # Since Chebyshev polynomial is defined in [-1, 1]
        # We need to normalize x to [-1, 1] using tanh
        x = torch.tanh(x)
        # View and repeat input degree + 1 times
        x = x.view((-1, self.inputdim, 1)).expand(-1, -1, self.degree + 1)  # shape = (B, in, d+1)
        # Apply acos
        x = x.acos()
        # Multiply by arange [0 .. degree]
        x *= self.arange
        # Apply cos
        x = x.cos()
        # Compute the Chebyshev interpolation
        y = torch.einsum("bid,iod->bo", x, self.cheby_coeffs)  # shape = (batch_size, outdim)
        y = y.view(-1, self.outdim)
        return y


# FastKAN (ZiyaoLi/fast-kan): Gaussian radial basis functions on a fixed grid
class RadialBasisFunction(torch.nn.Module):
    def __init__(self, grid_min=-2.0, grid_max=2.0, num_grids=8, denominator=None):
        super().__init__()
        grid = torch.linspace(grid_min, grid_max, num_grids)
        self.grid = torch.nn.Parameter(grid, requires_grad=False)
        self.denominator = denominator or (grid_max - grid_min) / (num_grids - 1)

    def forward(self, x):
        return torch.exp(-(((x[..., None] - self.grid) / self.denominator) ** 2))


class FastKANLayer(torch.nn.Module):
    def __init__(self, input_dim, output_dim, num_grids=8, use_base_update=True,
                 base_activation=F.silu, spline_weight_init_scale=0.1):
        super().__init__()
        self.layernorm = torch.nn.LayerNorm(input_dim)
        self.rbf = RadialBasisFunction(num_grids=num_grids)
        self.spline_linear = torch.nn.Linear(input_dim * num_grids, output_dim, bias=False)
        torch.nn.init.trunc_normal_(self.spline_linear.weight, mean=0,
                                    std=spline_weight_init_scale)
        self.use_base_update = use_base_update
        if use_base_update:
            self.base_activation = base_activation
            self.base_linear = torch.nn.Linear(input_dim, output_dim)

    def forward(self, x, time_benchmark=False):
        spline_basis = self.rbf(self.layernorm(x))
        ret = self.spline_linear(spline_basis.view(*spline_basis.shape[:-2], -1))
        if self.use_base_update:
            base = self.base_linear(self.base_activation(x))
            ret = ret + base
        return ret


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 2))
    y = np.exp(np.sin(np.pi * x[:, :1]) + x[:, 1:] ** 2)  # pykan's toy function
    return (torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32)))


def load_reference(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


def grad_norms(model):
    return [p.grad.norm().item() for p in model.parameters() if p.grad is not None]


def main():
    torch.manual_seed(0)
    x, y = make_data(64, seed=1)
    x_test, y_test = make_data(32, seed=2)

    model = KAN([2, 4, 1], grid_size=5, spline_order=3)
    random_init_norm = model.layers[0].spline_weight.norm().item()  # torch.rand noise + lstsq
    grid0 = model.layers[0].grid[0].tolist()
    load_reference(model)

    bases = model.layers[0].b_splines(x[:5])
    partition_of_unity = bases.sum(-1).tolist()  # inside the grid the bases sum to one

    # the spline fit of a known curve recovers it: curve2coeff inverts b_splines
    layer = model.layers[0]
    with torch.no_grad():
        target = torch.stack([torch.sin(2 * x), torch.cos(x)], dim=-1)  # (64, 2, 2)
        coeff = layer.curve2coeff(x, target[:, :, :layer.out_features].repeat(1, 1, 2))
        fit = torch.einsum("bik,oik->bio", layer.b_splines(x), coeff)
        fit_err = (fit[..., :2] - target).abs().max().item()

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    losses, reg_losses, norms = [], [], []
    for step in range(8):
        model.train()
        optimizer.zero_grad()
        output = model(x, update_grid=(step == 4))
        loss = F.mse_loss(output, y)
        reg = model.regularization_loss(1.0, 1.0)
        (loss + 1e-3 * reg).backward()
        norms.append(grad_norms(model))
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        reg_losses.append(reg.item())
    grid_after = model.layers[0].grid.tolist()
    grid_h1 = model.layers[1].grid[0].tolist()

    # LBFGS on the same model (pykan trains this way)
    lbfgs = torch.optim.LBFGS(model.parameters(), lr=0.5, history_size=5, max_iter=4,
                              line_search_fn="strong_wolfe")
    lbfgs_losses = []

    def closure():
        lbfgs.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        return loss

    for _ in range(2):
        lbfgs_losses.append(lbfgs.step(closure).item())
    model.eval()
    with torch.no_grad():
        test_loss = F.mse_loss(model(x_test), y_test).item()
        preds = model(x_test[:4]).squeeze(-1).tolist()

    # ChebyKAN and FastKAN on the same data
    cheby = torch.nn.Sequential(ChebyKANLayer(2, 6, 4), torch.nn.LayerNorm(6),
                                ChebyKANLayer(6, 1, 4))
    fast = torch.nn.Sequential(FastKANLayer(2, 5), FastKANLayer(5, 1))
    load_reference(cheby)
    load_reference(fast)
    other_losses = {}
    for name, net in [("cheby", cheby), ("fast", fast)]:
        opt = torch.optim.Adam(net.parameters(), lr=5e-3)
        curve = []
        for step in range(5):
            opt.zero_grad()
            loss = F.mse_loss(net(x), y)
            loss.backward()
            opt.step()
            curve.append(loss.item())
        other_losses[name] = curve
    cheby_grad = [p.grad.norm().item() for p in cheby.parameters()]
    fast_buffers = [n for n, _ in fast.named_buffers()]
    fast_frozen = [n for n, p in fast.named_parameters() if not p.requires_grad]

    report(
        random_init_norm=random_init_norm, grid0=grid0, partition_of_unity=partition_of_unity,
        bases=bases[0].tolist(), fit_err_small=fit_err < 1e-2, losses=losses,
        reg_losses=reg_losses, norms=norms, grid_after=grid_after, grid_h1=grid_h1,
        lbfgs_losses=lbfgs_losses, test_loss=test_loss, preds=preds, other_losses=other_losses,
        cheby_grad=cheby_grad, fast_buffers=fast_buffers, fast_frozen=fast_frozen,
        lr=scheduler.get_last_lr(),
    )


if __name__ == "__main__":
    main()
