# An image/tabular data-preparation script's tensor arithmetic: uint8 images to float and back
# (clamp + round + to(torch.uint8)), per-channel mean / std from integer sums with
# sum(dtype=torch.float64), integer floor division and remainder of negatives, bool masks summed
# and averaged, torch.promote_types / result_type / can_cast, finfo / iinfo limits, int64
# labels from a float tensor, arange with a float step, linspace into an int dtype, histc and
# bucketize bins, one-hot by scatter_, cumsum(dtype=), mixed int / float scalars, a tiny linear
# probe on the normalised images.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(17)
torch.manual_seed(0)
imgs = torch.from_numpy(rng.integers(0, 256, size=(12, 3, 6, 6), dtype=np.uint8))
labels_f = torch.from_numpy(rng.integers(0, 4, size=12).astype(np.float32))
results = {}


def name(dtype):
    return str(dtype).split(".")[-1]


# statistics
n = imgs.shape[0] * imgs.shape[2] * imgs.shape[3]
sums = imgs.sum(dim=(0, 2, 3), dtype=torch.float64)
sq = (imgs.to(torch.int64) ** 2).sum(dim=(0, 2, 3))
mean = sums / n
std = (sq / n - mean**2).sqrt()
results["sum_dtypes"] = [name(imgs.sum().dtype), name(sums.dtype), name(sq.dtype)]
results["mean"] = mean.tolist()
results["std"] = std.tolist()
x = (imgs.float() / 255 - mean.float().view(1, 3, 1, 1) / 255) / (
    std.float().view(1, 3, 1, 1) / 255
)
results["x_dtype"] = name(x.dtype)
results["x_stats"] = [x.mean().item(), x.std().item(), x.amax().item()]

# augment and write back to uint8
bright = (imgs.float() * 1.3 + 10).clamp(0, 255).round().to(torch.uint8)
results["bright"] = bright[0, 0, 0].tolist()
results["bright_dtype"] = name(bright.dtype)
results["uint8_wrap"] = (imgs[0, 0, 0] + 200).tolist()
results["uint8_sub"] = (imgs[0, 0, 0] - imgs[1, 0, 0]).tolist()
results["uint8_div"] = (imgs[0, 0, 0] / 2).tolist()
results["uint8_floordiv"] = (imgs[0, 0, 0] // 3).tolist()
results["uint8_mul_float"] = (imgs[0, 0, 0] * 0.5).dtype.__str__().split(".")[-1]
results["uint8_gt"] = (imgs[0, 0, 0] > 127).sum().item()

# integer arithmetic
a = torch.tensor([-7, -3, 0, 3, 7])
results["floordiv"] = (a // 2).tolist()
results["div_floor"] = torch.div(a, 2, rounding_mode="floor").tolist()
results["div_trunc"] = torch.div(a, 2, rounding_mode="trunc").tolist()
results["remainder"] = (a % 3).tolist()
results["fmod"] = torch.fmod(a, 3).tolist()
results["true_div"] = (a / 2).tolist()
results["int_pow"] = (a**2).tolist()
results["int_float_scalar"] = [
    name((a * 1.5).dtype),
    name((a + True).dtype),
    name((a > 0).sum().dtype),
]
mask = a > 0
results["mask_mean"] = mask.float().mean().item()
results["mask_sum_dtype"] = name(mask.sum().dtype)
results["mask_cumsum"] = mask.cumsum(0).tolist()
results["cumsum_dtype"] = name(
    torch.ones(3, dtype=torch.int32).cumsum(0, dtype=torch.float32).dtype
)

# type utilities
results["promote"] = [
    name(torch.promote_types(torch.uint8, torch.int8)),
    name(torch.promote_types(torch.int32, torch.float16)),
    name(torch.promote_types(torch.bool, torch.uint8)),
]
results["result_type"] = [
    name(torch.result_type(imgs, 2.5)),
    name(torch.result_type(a, 2)),
    name(torch.result_type(torch.tensor(2.0), a)),
]
results["can_cast"] = [
    torch.can_cast(torch.float32, torch.int32),
    torch.can_cast(torch.int32, torch.float32),
    torch.can_cast(torch.uint8, torch.int8),
]
results["finfo"] = [
    torch.finfo(torch.float32).eps,
    torch.finfo(torch.float16).max,
    torch.finfo(torch.bfloat16).eps,
    torch.finfo().tiny,
]
results["iinfo"] = [
    torch.iinfo(torch.uint8).max,
    torch.iinfo(torch.int32).min,
    torch.iinfo(torch.int64).max,
]

# creation
results["arange_float"] = torch.arange(0, 1, 0.1).tolist()
results["arange_len"] = len(torch.arange(0.5, 2.0, 0.3))
results["linspace_int"] = torch.linspace(0, 10, 4, dtype=torch.int64).tolist()
results["full_dtypes"] = [
    name(torch.full((2,), 7).dtype),
    name(torch.full((2,), 7.0).dtype),
    name(torch.full((2,), True).dtype),
    name(torch.tensor([1, 2.5]).dtype),
]

# labels and binning
labels = labels_f.long()
onehot = torch.zeros(12, 4).scatter_(1, labels.unsqueeze(1), 1.0)
results["onehot_sum"] = onehot.sum(0).tolist()
bright_mean = imgs.float().mean(dim=(1, 2, 3))
results["histc"] = torch.histc(bright_mean, bins=5, min=100, max=160).tolist()
results["bucketize"] = torch.bucketize(
    bright_mean, torch.tensor([110.0, 125.0, 140.0]), right=True
).tolist()

# a linear probe on the normalised images
probe = nn.Linear(3 * 36, 4)
W = reference_weights(probe)
with torch.no_grad():
    for name_, p in probe.named_parameters():
        p.copy_(torch.from_numpy(W[name_]))
opt = torch.optim.SGD(probe.parameters(), lr=0.05)
losses = []
for _ in range(5):
    loss = F.cross_entropy(probe(x.flatten(1)), labels)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
results["losses"] = losses
report(**results)
