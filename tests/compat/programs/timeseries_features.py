# Time-series feature engineering and a tabular model in the shape of Kaggle notebooks (M5 /
# Optiver / store-sales): lag and rolling features by torch.diff(prepend=), unfold windows,
# cummax / cummin drawdowns, kthvalue / torch.mode / nanmedian / nanquantile, var_mean /
# std_mean(correction=), aminmax, histc and torch.histogram, bucketize(right=) and searchsorted
# (sorter=), tensor_split / chunk / unbind, take_along_dim, masked_scatter, index_copy /
# index_fill / select_scatter / slice_scatter / diagonal_scatter, trapezoid and
# cumulative_trapezoid, cov / corrcoef (fweights), block_diag, cartesian_prod, combinations,
# tril_indices, vander, kron, cross, addcmul / addcdiv / baddbmm / addbmm / addmv, fmod vs
# remainder on negatives, floor_divide, gcd/lcm, bitwise ops, frexp / ldexp / copysign / hypot /
# logaddexp / nextafter; then an nn.EmbeddingBag(mode="mean", per_sample_weights with
# mode="sum", padding_idx) model over bucketized features, trained with NAdam + PolynomialLR.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(77)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


T, S = 40, 6  # days, stores
sales_np = np.round(np.abs(rng.standard_normal((S, T)).cumsum(1) * 3 + 20)).astype(np.float32)
sales_np[2, 5:9] = np.nan
sales = torch.from_numpy(sales_np)
clean = torch.nan_to_num(sales, nan=0.0)

feats = {}
feats["diff1"] = torch.diff(clean, dim=1, prepend=clean[:, :1])[:, :8].flatten().tolist()
feats["diff2"] = torch.diff(clean, n=2, dim=1)[:, :5].flatten().tolist()
windows = clean.unfold(1, 7, 1)  # (S, T - 6, 7)
feats["roll_mean"] = windows.mean(-1)[:, -5:].flatten().tolist()
var, mean = torch.var_mean(windows, dim=-1, correction=0)
std, _ = torch.std_mean(windows, dim=-1, unbiased=True)
feats["roll_var"] = var[:, :5].flatten().tolist()
feats["roll_std"] = std[:, :5].flatten().tolist()
cm = torch.cummax(clean, dim=1)
feats["cummax_idx"] = cm.indices[:, -6:].flatten().tolist()
feats["drawdown"] = (clean / cm.values.clamp_min(1) - 1).min(dim=1).values.tolist()
feats["cummin_idx"] = torch.cummin(clean, dim=1).indices[:, -6:].flatten().tolist()
kv = torch.kthvalue(clean, 5, dim=1)
feats["kth"] = [kv.values.tolist(), kv.indices.tolist()]
md = torch.mode(clean[:, :12].round(), dim=1)
feats["mode"] = [md.values.tolist(), md.indices.tolist()]
feats["nanmedian"] = torch.nanmedian(sales, dim=1).values.tolist()
feats["nanquantile"] = (
    torch.nanquantile(sales, torch.tensor([0.1, 0.5, 0.9]), dim=1).flatten().tolist()
)
feats["quantile_modes"] = [
    torch.quantile(clean[0], 0.3, interpolation=m).item()
    for m in ("linear", "lower", "higher", "midpoint", "nearest")
]
lo, hi = torch.aminmax(clean, dim=1)
feats["aminmax"] = [lo.tolist(), hi.tolist()]
feats["histc"] = torch.histc(clean, bins=6, min=0, max=60).tolist()
h = torch.histogram(clean.flatten(), bins=5, range=(0.0, 50.0))
feats["histogram"] = [h.hist.tolist(), h.bin_edges.tolist()]
h2 = torch.histogram(clean.flatten(), bins=torch.tensor([0.0, 10.0, 25.0, 60.0]), density=True)
feats["histogram_density"] = h2.hist.tolist()
edges = torch.tensor([10.0, 20.0, 30.0, 40.0])
feats["bucketize"] = torch.bucketize(clean[:, -1], edges).tolist()
feats["bucketize_right"] = torch.bucketize(
    clean[:, -1].round(decimals=-1), edges, right=True
).tolist()
unsorted = torch.tensor([30.0, 10.0, 40.0, 20.0])
order = torch.argsort(unsorted)
feats["searchsorted_sorter"] = torch.searchsorted(unsorted, clean[:, -1], sorter=order).tolist()
feats["searchsorted_side"] = torch.searchsorted(edges, edges, side="right").tolist()
feats["tensor_split"] = [t.shape[1] for t in torch.tensor_split(clean, 3, dim=1)]
feats["tensor_split_idx"] = [t.shape[1] for t in clean.tensor_split([5, 12, 30], dim=1)]
feats["chunk"] = [t.shape[1] for t in clean.chunk(6, dim=1)]
feats["unbind"] = [t.sum().item() for t in clean.unbind(0)]
top_idx = clean.argsort(dim=1, descending=True)[:, :3]
feats["take_along"] = torch.take_along_dim(clean, top_idx, dim=1).flatten().tolist()
feats["take_along_flat"] = torch.take_along_dim(clean, torch.tensor([0, 5, 239])).tolist()
mask = clean > 30
feats["masked_scatter"] = clean[:2].masked_scatter(mask[:2], -torch.arange(80.0)).flatten().tolist()

base = torch.zeros(4, 5)
feats["index_copy"] = (
    base.index_copy(0, torch.tensor([2, 0]), torch.ones(2, 5) * 3).flatten().tolist()
)
feats["index_fill"] = base.index_fill(1, torch.tensor([1, 3]), -1.0).flatten().tolist()
feats["select_scatter"] = torch.select_scatter(base, torch.arange(5.0), 0, 1).flatten().tolist()
feats["slice_scatter"] = (
    torch.slice_scatter(base, torch.ones(4, 2), dim=1, start=1, end=5, step=2).flatten().tolist()
)
feats["diagonal_scatter"] = (
    torch.diagonal_scatter(base, torch.tensor([7.0, 8, 9, 10]), 1).flatten().tolist()
)

xs = torch.linspace(0, 3, 7)
feats["trapezoid"] = [torch.trapezoid(xs.pow(2), xs).item(), torch.trapezoid(xs, dx=0.5).item()]
feats["cum_trapezoid"] = torch.cumulative_trapezoid(xs.pow(2), x=xs).tolist()
feats["cov"] = torch.cov(clean[:, :10]).flatten().tolist()
feats["cov_w"] = (
    torch.cov(clean[:3, :10], correction=0, fweights=torch.arange(1, 11)).flatten().tolist()
)
feats["corrcoef"] = torch.corrcoef(clean[:, :10]).flatten().tolist()
feats["block_diag"] = torch.block_diag(
    torch.ones(2, 2), torch.tensor([[5.0, 6.0, 7.0]]), torch.tensor(9.0)
).tolist()
feats["cartesian"] = torch.cartesian_prod(torch.tensor([1, 2]), torch.tensor([3, 4, 5])).tolist()
feats["combinations"] = torch.combinations(torch.tensor([1, 2, 3, 4]), r=2).tolist()
feats["combinations_rep"] = torch.combinations(
    torch.tensor([1, 2, 3]), r=2, with_replacement=True
).tolist()
feats["tril_indices"] = torch.tril_indices(4, 3, offset=-1).tolist()
feats["triu_indices"] = torch.triu_indices(3, 4, offset=1).tolist()
feats["vander"] = torch.vander(torch.tensor([1.0, 2.0, 3.0]), N=4, increasing=True).tolist()
feats["kron"] = torch.kron(torch.eye(2), torch.tensor([[1.0, 2.0], [3.0, 4.0]])).tolist()
feats["cross"] = torch.linalg.cross(
    torch.tensor([[1.0, 0, 0], [0, 1, 2]]), torch.tensor([[0.0, 1, 0], [3, 0, 1]])
).tolist()

a = torch.from_numpy(rng.standard_normal((3, 4)).astype(np.float32))
b = torch.from_numpy(rng.standard_normal((3, 4)).astype(np.float32))
feats["addcmul"] = torch.addcmul(a, a, b, value=0.5).flatten().tolist()
feats["addcdiv"] = torch.addcdiv(a, a, b.abs() + 1, value=-2).flatten().tolist()
bm = torch.from_numpy(rng.standard_normal((2, 3, 4)).astype(np.float32))
bm2 = torch.from_numpy(rng.standard_normal((2, 4, 3)).astype(np.float32))
feats["baddbmm"] = torch.baddbmm(torch.ones(3, 3), bm, bm2, beta=0.5, alpha=2).flatten().tolist()
feats["addbmm"] = torch.addbmm(torch.ones(3, 3), bm, bm2).flatten().tolist()
feats["addmv"] = torch.addmv(torch.ones(3), a, b[0], alpha=3).tolist()
ints = torch.tensor([-7, -3, 0, 3, 7, 12])
feats["fmod"] = torch.fmod(ints, 4).tolist()
feats["remainder"] = torch.remainder(ints, 4).tolist()
feats["remainder_neg_div"] = torch.remainder(ints, -4).tolist()
feats["fmod_float"] = torch.fmod(ints.float() * 1.5, -2.5).tolist()
feats["floor_divide"] = torch.floor_divide(ints, 4).tolist()
feats["div_trunc"] = torch.div(ints, 4, rounding_mode="trunc").tolist()
feats["div_floor_float"] = torch.div(ints.float(), -4, rounding_mode="floor").tolist()
feats["gcd_lcm"] = [
    torch.gcd(ints, torch.tensor(6)).tolist(),
    torch.lcm(ints, torch.tensor(4)).tolist(),
]
feats["bitwise"] = [
    (ints & 5).tolist(),
    (ints | 8).tolist(),
    (ints ^ 3).tolist(),
    (~ints).tolist(),
    (ints << 2).tolist(),
    (ints >> 1).tolist(),
]
m, e = torch.frexp(torch.tensor([0.0, 1.0, -3.5, 1000.0, 1e-3]))
feats["frexp"] = [m.tolist(), e.tolist()]
feats["ldexp"] = torch.ldexp(torch.tensor([1.0, -0.75]), torch.tensor([3, -2])).tolist()
feats["copysign"] = torch.copysign(
    torch.tensor([1.0, -2.0, 3.0]), torch.tensor([-0.0, 1.0, -1.0])
).tolist()
feats["hypot"] = torch.hypot(a[0], b[0]).tolist()
feats["logaddexp"] = [torch.logaddexp(a[0], b[0]).tolist(), torch.logaddexp2(a[0], b[0]).tolist()]
feats["nextafter"] = (
    torch.nextafter(torch.tensor([1.0, 0.0]), torch.tensor([2.0, -1.0])) - torch.tensor([1.0, 0.0])
).tolist()


# an EmbeddingBag model over bucketized features
class BagModel(nn.Module):
    def __init__(self, n_tokens=5 * 8 + 1, dim=6):
        super().__init__()
        self.bag_mean = nn.EmbeddingBag(n_tokens, dim, mode="mean", padding_idx=0)
        self.bag_sum = nn.EmbeddingBag(n_tokens, dim, mode="sum")
        self.head = nn.Linear(2 * dim, 1)

    def forward(self, tokens, offsets, weights):
        a = self.bag_mean(tokens, offsets)
        b = self.bag_sum(tokens, offsets, per_sample_weights=weights)
        return self.head(torch.cat([a, b], 1)).squeeze(1)


n_feat = 8
X = torch.from_numpy(rng.standard_normal((20, n_feat)).astype(np.float32))
y = (X[:, 0] * 2 - X[:, 3] + 0.5 * X[:, 5].abs()).float()
bounds = torch.tensor([-1.0, -0.3, 0.3, 1.0])
codes = torch.bucketize(X, bounds) + 5 * torch.arange(n_feat) + 1  # 1..40, 0 is padding
keep = X.abs() > 0.15  # sparse features: drop small values
tokens = torch.where(keep, codes, torch.zeros_like(codes))
flat = tokens.flatten()
offsets = torch.arange(0, 20 * n_feat, n_feat)
weights = X.abs().flatten()
model = load(BagModel())
optimizer = torch.optim.NAdam(model.parameters(), lr=2e-2, momentum_decay=4e-3)
scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=8, power=2.0)
losses = []
for step in range(10):
    loss = F.smooth_l1_loss(model(flat, offsets, weights), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    losses.append(loss.item())
pad_grad_zero = bool((model.bag_mean.weight.grad[0] == 0).all())
bag2d = model.bag_mean(tokens[:4])  # 2-D input, no offsets
bag_last = nn.EmbeddingBag.from_pretrained(model.bag_sum.weight.detach(), mode="max")(
    flat[:16], torch.tensor([0, 3, 3, 10])
)  # an empty bag gives zeros
bag_incl = F.embedding_bag(
    flat[:16], model.bag_sum.weight, torch.tensor([0, 5, 16]), mode="sum", include_last_offset=True
)

report(
    **feats,
    losses=losses,
    pad_grad_zero=pad_grad_zero,
    bag2d=bag2d.flatten().tolist(),
    bag_max=bag_last.flatten().tolist(),
    bag_incl=bag_incl.flatten().tolist(),
)
