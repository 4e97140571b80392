# Neural Oblivious Decision Ensembles (Popov et al., the qubvel / Qwicen NODE code) as written
# there (our own condensed rewrite): sparsemax and entmax15 as torch.autograd.Function subclasses
# (sort descending, cumsum, support by gather, ctx.save_for_backward, a _make_ix_like helper
# with view(view) shapes), entmoid15 through entmax15 on cat of x and zeros_like(x), an ODST layer
# whose feature-selection logits (num_trees, depth, in_features) go through sparsemax over
# features, feature values by torch.einsum("bi,ind->bnd"), per-tree thresholds and log
# temperatures, bin responses by entmoid15 and a (2, depth) stack, the response of each leaf as
# a product over depth by an einsum against a fixed binary code buffer (torch.arange / bitwise
# shifts), data-aware initialisation of thresholds by per-feature quantiles of a batch
# (torch.quantile under no_grad with beta-distributed quantile levels from NumPy) and of
# temperatures by the quantiles of |x - threshold|; a DenseBlock stacking ODST layers with
# concatenated outputs; regression trained with QHAdam-free Adam and an MSE loss; and a
# float64 gradcheck of the two Functions.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.autograd import Function

rng = np.random.default_rng(2211)


def _make_ix_like(input, dim=0):
    d = input.size(dim)
    rho = torch.arange(1, d + 1, device=input.device, dtype=input.dtype)
    view = [1] * input.dim()
    view[0] = -1
    return rho.view(view).transpose(0, dim)


class SparsemaxFunction(Function):
    @staticmethod
    def forward(ctx, input, dim=-1):
        ctx.dim = dim
        max_val, _ = input.max(dim=dim, keepdim=True)
        input = input - max_val
        tau, supp_size = SparsemaxFunction._threshold_and_support(input, dim=dim)
        output = torch.clamp(input - tau, min=0)
        ctx.save_for_backward(supp_size, output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        supp_size, output = ctx.saved_tensors
        dim = ctx.dim
        grad_input = grad_output.clone()
        grad_input[output == 0] = 0
        v_hat = grad_input.sum(dim=dim) / supp_size.to(output.dtype).squeeze()
        v_hat = v_hat.unsqueeze(dim)
        grad_input = torch.where(output != 0, grad_input - v_hat, grad_input)
        return grad_input, None

    @staticmethod
    def _threshold_and_support(input, dim=-1):
        input_srt, _ = torch.sort(input, descending=True, dim=dim)
        input_cumsum = input_srt.cumsum(dim) - 1
        rhos = _make_ix_like(input, dim)
        support = rhos * input_srt > input_cumsum
        support_size = support.sum(dim=dim).unsqueeze(dim)
        tau = input_cumsum.gather(dim, support_size - 1)
        tau /= support_size.to(input.dtype)
        return tau, support_size


class Entmax15Function(Function):
    @staticmethod
    def forward(ctx, input, dim=0):
        ctx.dim = dim
        max_val, _ = input.max(dim=dim, keepdim=True)
        input = input - max_val
        input = input / 2
        tau_star, _ = Entmax15Function._threshold_and_support(input, dim)
        output = torch.clamp(input - tau_star, min=0) ** 2
        ctx.save_for_backward(output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        (Y,) = ctx.saved_tensors
        gppr = Y.sqrt()
        dX = grad_output * gppr
        q = dX.sum(ctx.dim) / gppr.sum(ctx.dim)
        q = q.unsqueeze(ctx.dim)
        dX -= q * gppr
        return dX, None

    @staticmethod
    def _threshold_and_support(input, dim=0):
        Xsrt, _ = torch.sort(input, descending=True, dim=dim)
        rho = _make_ix_like(input, dim)
        mean = Xsrt.cumsum(dim) / rho
        mean_sq = (Xsrt**2).cumsum(dim) / rho
        ss = rho * (mean_sq - mean**2)
        delta = (1 - ss) / rho
        delta_nz = torch.clamp(delta, 0)
        tau = mean - torch.sqrt(delta_nz)
        support_size = (tau <= Xsrt).sum(dim).unsqueeze(dim)
        tau_star = tau.gather(dim, support_size - 1)
        return tau_star, support_size


sparsemax = lambda input, dim=-1: SparsemaxFunction.apply(input, dim)  # noqa: E731
entmax15 = lambda input, dim=-1: Entmax15Function.apply(input, dim)  # noqa: E731


def entmoid15(input):
    return entmax15(torch.stack([input, torch.zeros_like(input)], dim=-1), -1)[..., 0]


class ODST(nn.Module):
    def __init__(
        self,
        in_features,
        num_trees,
        depth=3,
        tree_dim=1,
        choice_function=sparsemax,
        bin_function=entmoid15,
    ):
        super().__init__()
        self.depth, self.num_trees, self.tree_dim = depth, num_trees, tree_dim
        self.choice_function, self.bin_function = choice_function, bin_function
        self.response = nn.Parameter(
            torch.zeros([num_trees, tree_dim, 2**depth]), requires_grad=True
        )
        self.feature_selection_logits = nn.Parameter(
            torch.zeros([in_features, num_trees, depth]), requires_grad=True
        )
        self.feature_thresholds = nn.Parameter(
            torch.full([num_trees, depth], float("nan"), dtype=torch.float32), requires_grad=True
        )
        self.log_temperatures = nn.Parameter(
            torch.full([num_trees, depth], float("nan"), dtype=torch.float32), requires_grad=True
        )
        with torch.no_grad():
            indices = torch.arange(2**self.depth)
            offsets = 2 ** torch.arange(self.depth)
            bin_codes = (indices.view(1, -1) // offsets.view(-1, 1) % 2).to(torch.float32)
            bin_codes_1hot = torch.stack([bin_codes, 1.0 - bin_codes], dim=-1)
            self.bin_codes_1hot = nn.Parameter(bin_codes_1hot, requires_grad=False)

    def forward(self, input):
        feature_logits = self.feature_selection_logits
        feature_selectors = self.choice_function(feature_logits, 0)
        feature_values = torch.einsum("bi,ind->bnd", input, feature_selectors)
        threshold_logits = (feature_values - self.feature_thresholds) * torch.exp(
            -self.log_temperatures
        )
        threshold_logits = torch.stack([-threshold_logits, threshold_logits], dim=-1)
        bins = self.bin_function(threshold_logits)
        bin_matches = torch.einsum("btds,dcs->btdc", bins, self.bin_codes_1hot)
        response_weights = torch.prod(bin_matches, dim=-2)
        response = torch.einsum("bnd,ncd->bnc", response_weights, self.response)
        return response.flatten(1, 2)

    def initialize(self, input, betas):
        with torch.no_grad():
            feature_selectors = self.choice_function(self.feature_selection_logits, 0)
            feature_values = torch.einsum("bi,ind->bnd", input, feature_selectors)
            percentiles_q = 100 * torch.from_numpy(betas.astype(np.float32))
            self.feature_thresholds.data[...] = torch.as_tensor(
                list(
                    map(
                        np.percentile,
                        feature_values.flatten(1, 2).t().numpy(),
                        percentiles_q.flatten().numpy(),
                    )
                ),
                dtype=feature_values.dtype,
            ).view(self.num_trees, self.depth)
            temperatures = torch.quantile(
                abs(feature_values - self.feature_thresholds).flatten(0, 0), 0.5, dim=0
            )
            self.log_temperatures.data[...] = torch.log(temperatures + 1e-6)


class DenseBlock(nn.Sequential):
    def __init__(self, input_dim, layer_dim, num_layers, tree_dim=1, **kwargs):
        layers = []
        for i in range(num_layers):
            layers.append(ODST(input_dim, layer_dim, tree_dim=tree_dim, **kwargs))
            input_dim = input_dim + layer_dim * tree_dim
        super().__init__(*layers)
        self.num_layers, self.layer_dim, self.tree_dim = num_layers, layer_dim, tree_dim

    def forward(self, x):
        initial_features = x.shape[-1]
        for layer in self:
            h = layer(x)
            x = torch.cat([x, h], dim=-1)
        outputs = x[..., initial_features:]
        return outputs.view(*outputs.shape[:-1], self.num_layers * self.layer_dim, self.tree_dim)


# gradchecks in float64 (choose inputs away from ties)
x64 = torch.from_numpy(rng.standard_normal((3, 5))).requires_grad_()
gc_sparse = torch.autograd.gradcheck(lambda t: sparsemax(t, -1), (x64,))
gc_entmax = torch.autograd.gradcheck(lambda t: entmax15(t, -1), (x64,))
demo = sparsemax(torch.tensor([[1.0, 0.8, -1.0], [0.1, 0.1, 0.3]]), -1)
demo_e = entmax15(torch.tensor([[1.0, 0.8, -1.0], [0.1, 0.2, 0.3]]), -1)

X = rng.standard_normal((96, 6)).astype(np.float32)
y = (np.sin(X[:, 0]) + (X[:, 1] > 0) * X[:, 2] + 0.1 * rng.standard_normal(96)).astype(np.float32)
X, y = torch.from_numpy(X), torch.from_numpy(y)
block = DenseBlock(6, layer_dim=8, num_layers=2, tree_dim=2, depth=3)
model = nn.Sequential(block)
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        if "thresholds" in name or "temperatures" in name or "bin_codes" in name:
            continue
        p.copy_(torch.from_numpy(W[name]))
with torch.no_grad():  # data-aware init, layer by layer
    h = X[:64]
    for layer in block:
        layer.initialize(h, rng.beta(1.0, 1.0, size=(layer.num_trees, layer.depth)))
        h = torch.cat([h, layer(h)], -1)
opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
losses = []
for step in range(8):
    b = slice((step % 3) * 32, (step % 3) * 32 + 32)
    pred = model(X[b])[..., 0].mean(-1)
    loss = F.mse_loss(pred, y[b])
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
with torch.no_grad():
    pred = model(X)[..., 0].mean(-1)
report(
    gc=[bool(gc_sparse), bool(gc_entmax)],
    demo=demo.tolist(),
    demo_e=demo_e.tolist(),
    losses=losses,
    thresholds=block[0].feature_thresholds[:2].tolist(),
    temps=block[0].log_temperatures[:2].tolist(),
    mse=F.mse_loss(pred, y).item(),
    n_trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
)
