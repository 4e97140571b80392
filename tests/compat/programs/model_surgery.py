# The utilities people use around a model rather than inside it: model.apply(init_fn) with
# kaiming_normal_(mode="fan_out") / orthogonal_ / zeros_ (statistics checked, then reference
# weights copied in), named_modules / named_parameters(prefix=, recurse=False) / named_buffers,
# a non-persistent buffer kept out of state_dict, load_state_dict(strict=False) and its
# missing/unexpected keys, copy.deepcopy then diverging, dtype round-trips (.to(float64),
# .double(), .half()), freezing with requires_grad_(False) and filter(...), add_param_group and
# per-group learning rates and weight-decay groups found by isinstance(m, _BatchNorm),
# parameters_to_vector / vector_to_parameters, gradient accumulation,
# eval()/train() on Dropout and BatchNorm, inference_mode, ModuleDict / ParameterList /
# Sequential slicing, + , insert and append, Conv+BN folding by hand and with nn.utils.fusion, and
# torch.save / torch.load(weights_only=True) of a dict of tensors and numbers.
import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(5)
X = torch.from_numpy(rng.standard_normal((24, 3, 8, 8)).astype(np.float32))
Y = torch.from_numpy(rng.integers(0, 4, size=24))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.heads = nn.ModuleDict({"cls": nn.Linear(8, 4), "aux": nn.Linear(8, 2)})
        self.scales = nn.ParameterList([nn.Parameter(torch.ones(8)) for _ in range(2)])
        self.drop = nn.Dropout(p=0.5)
        self.register_buffer("step_count", torch.zeros((), dtype=torch.long))
        self.register_buffer("cache", torch.zeros(8), persistent=False)

    def forward(self, x):
        h = self.features(x).mean(dim=(2, 3)) * self.scales[0] + self.scales[1] - 1
        self.cache = h.detach().mean(0)
        return self.heads["cls"](self.drop(h)), self.heads["aux"](h)


def init_fn(m):
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    elif isinstance(m, nn.Linear):
        nn.init.orthogonal_(m.weight, gain=nn.init.calculate_gain("relu"))
        nn.init.zeros_(m.bias)


model = Net()
model.apply(init_fn)
w0 = model.features[0].weight
expected_std = (2.0 / (w0.shape[0] * w0[0, 0].numel())) ** 0.5
init_stats = {
    "conv_std_ok": abs(w0.std().item() / expected_std - 1) < 0.25,
    "orth_ok": torch.allclose(
        model.heads["aux"].weight @ model.heads["aux"].weight.T, 2.0 * torch.eye(2), atol=1e-5
    ),
    "bias_zero": bool((model.heads["cls"].bias == 0).all()),
}
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))

module_names = [n for n, _ in model.named_modules()]
top_params = [n for n, _ in model.heads.cls.named_parameters(prefix="head", recurse=False)]
buffers = {n: list(b.shape) for n, b in model.named_buffers()}
sd_keys = list(model.state_dict().keys())

# a checkpoint from an "older" model: one key gone, one extra, and no num_batches_tracked
# (checkpoints from before PyTorch 0.4.1 lack it; loading fills it in)
old_keys = [k for k in model.state_dict() if k != "heads.aux.bias" and "num_batches" not in k]
ckpt = {k: model.state_dict()[k].clone() for k in old_keys}
ckpt["heads.old.weight"] = torch.zeros(2, 8)
other = Net()
res = other.load_state_dict(ckpt, strict=False)
load_keys = {"missing": list(res.missing_keys), "unexpected": list(res.unexpected_keys)}

# folding BatchNorm into the preceding convolution, after running statistics exist
model.train()
with torch.no_grad():
    for i in range(3):
        model(X[i * 8 : (i + 1) * 8])
model.eval()
conv, bn = model.features[0], model.features[1]
fused = nn.utils.fusion.fuse_conv_bn_eval(conv, bn)
scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
by_hand = nn.Conv2d(3, 8, 3, padding=1)
with torch.no_grad():
    by_hand.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
    by_hand.bias.copy_(bn.bias - bn.running_mean * scale)
with torch.inference_mode():
    ref = bn(conv(X[:4]))
    fused_err = (fused(X[:4]) - ref).abs().max().item()
    hand_err = (by_hand(X[:4]) - ref).abs().max().item()
    out_eval_a = model(X[:4])[0]
    out_eval_b = model(X[:4])[0]
eval_deterministic = torch.equal(out_eval_a, out_eval_b)
bn_tracked = int(bn.num_batches_tracked)

# a copy that diverges; the original is frozen except its heads
student = copy.deepcopy(model)
model.features.requires_grad_(False)
trainable = [n for n, p in model.named_parameters() if p.requires_grad]
opt = torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.05)
opt.add_param_group({"params": model.features[3].parameters(), "lr": 0.01, "momentum": 0.9})
model.features[3].requires_grad_(True)
for m in model.modules():  # dropout off but still in train mode, so the runs match
    if isinstance(m, nn.modules.dropout._DropoutNd):
        m.p = 0.0
model.train()
losses, accum = [], 3
for step in range(6):
    opt.zero_grad()
    for k in range(accum):  # micro-batches of 8
        xb, yb = X[k * 8 : (k + 1) * 8], Y[k * 8 : (k + 1) * 8]
        logits, aux = model(xb)
        loss = F.cross_entropy(logits, yb) + 0.1 * aux.pow(2).mean()
        (loss / accum).backward()
    opt.step()
    model.step_count += 1
    losses.append(loss.item())
group_lrs = [g["lr"] for g in opt.param_groups]

# a snapshot after backward (its gradients start empty), fine-tuned with AdamW whose weight
# decay skips norm layers and biases, zero_grad after each step
best = copy.deepcopy(model)
best_grads_none = [p.grad is None for p in best.parameters()]
best.requires_grad_(True)
decay, no_decay = [], []
for mod_name, mod in best.named_modules():
    for p_name, p in mod.named_parameters(recurse=False):
        norm = isinstance(mod, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm))
        (no_decay if norm or p_name.endswith("bias") else decay).append(p)
ft = torch.optim.AdamW(
    [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=3e-3
)
ft_losses = []
for step in range(4):
    logits, _ = best(X[:8])
    loss = F.cross_entropy(logits, Y[:8], label_smoothing=0.1)
    loss.backward()
    ft.step()
    ft.zero_grad()
    ft_losses.append(loss.item())
diverged = not torch.equal(student.heads["cls"].weight, model.heads["cls"].weight)
frozen_same = torch.equal(student.features[0].weight, model.features[0].weight)

# the flat view of the parameters, shifted and written back
vec = nn.utils.parameters_to_vector(student.heads.parameters())
nn.utils.vector_to_parameters(vec * 0.5, student.heads.parameters())
half_norm = student.heads["cls"].weight.norm().item()

# containers: slicing, insert, append
trunk = student.features[:3] + nn.Sequential(nn.AdaptiveAvgPool2d(1))
trunk.insert(3, nn.Identity())
trunk.append(nn.Flatten())
trunk_out = trunk(X[:2])
trunk_names = [type(m).__name__ for m in trunk]
student.scales.append(nn.Parameter(torch.full((8,), 0.5)))

# dtype round-trips
d = copy.deepcopy(student).to(torch.float64)
d_dtypes = sorted({str(p.dtype).split(".")[-1] for p in d.parameters()})
back = d.float()
h = copy.deepcopy(student).half()
half_err = (h.heads["cls"].weight.double() - student.heads["cls"].weight.double()).abs().max()
with torch.no_grad():
    d_out = d.double().eval()(X[:2].double())[0]

# save/load of a training checkpoint
path = "ckpt.pt"
torch.save({"model": model.state_dict(), "epoch": 6, "loss": losses[-1], "lrs": group_lrs}, path)
loaded = torch.load(path, weights_only=True)
restored = Net()
restored.load_state_dict(loaded["model"])
os.remove(path)

report(
    init=init_stats,
    module_names=module_names,
    top_params=top_params,
    buffers=buffers,
    sd_keys=sd_keys,
    load_keys=load_keys,
    fused_ok=fused_err < 1e-5,
    hand_ok=hand_err < 1e-5,
    eval_deterministic=eval_deterministic,
    bn_tracked=bn_tracked,
    running_mean=bn.running_mean.tolist(),
    trainable=trainable,
    losses=losses,
    group_lrs=group_lrs,
    best_grads_none=best_grads_none,
    n_decay=[len(decay), len(no_decay)],
    ft_losses=ft_losses,
    diverged=diverged,
    frozen_same=frozen_same,
    half_norm=half_norm,
    trunk_names=trunk_names,
    trunk_out=trunk_out.sum(1).tolist(),
    n_scales=len(student.scales),
    d_dtypes=d_dtypes,
    back_dtype=str(back.heads["cls"].weight.dtype).split(".")[-1],
    half_ok=half_err.item() < 1e-3,
    d_out=d_out.tolist(),
    step_count=int(restored.step_count),
    epoch=loaded["epoch"],
    loaded_loss=loaded["loss"],
    same=torch.equal(restored.heads["cls"].weight, model.heads["cls"].weight),
)
