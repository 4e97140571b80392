# Pruning as the PyTorch pruning tutorial and lottery-ticket repositories write it with
# torch.nn.utils.prune: random_unstructured / l1_unstructured / ln_structured on one layer (the
# tutorial's named_buffers, _forward_pre_hooks and PruningContainer history), a BasePruningMethod
# subclass (the tutorial's FooBarPruningMethod), custom_from_mask, importance_scores, an integer
# amount on a bias, prune.is_pruned, a pruned state_dict loaded into a fresh model made pruned by
# prune.identity, and iterative magnitude pruning with rewinding (Frankle & Carbin): train,
# global_unstructured 20% of what is left, copy the initial weights back into weight_orig,
# retrain; prune.remove makes it permanent.
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as prune
from compat_helpers import reference_weights, report

torch.manual_seed(0)
rng = np.random.default_rng(135)


class LeNet(nn.Module):
    def __init__(self):
        super(LeNet, self).__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.conv2 = nn.Conv2d(4, 8, 3)
        self.fc1 = nn.Linear(8 * 2 * 2, 32)
        self.fc2 = nn.Linear(32, 16)
        self.fc3 = nn.Linear(16, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        x = x.view(-1, int(x.nelement() / x.shape[0]))
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def load_reference(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


X = torch.from_numpy(rng.standard_normal((48, 1, 10, 10)).astype(np.float32))
y = torch.from_numpy((X[:, 0, :5].sum((1, 2)) > X[:, 0, 5:].sum((1, 2))).long().numpy()
                     + (X[:, 0, :, :2].mean((1, 2)) > 0.2).long().numpy())

model = LeNet()
load_reference(model)
module = model.conv1

# the tutorial: prune 30% of conv1.weight at random, then 3 biases by L1, then L2 channels
prune.random_unstructured(module, name="weight", amount=0.3)
names_after_random = [n for n, _ in module.named_parameters()]
buffers_after_random = [n for n, _ in module.named_buffers()]
random_kept = int(module.weight_mask.sum())
has_weight_attr = hasattr(module, "weight") and not isinstance(module.weight, nn.Parameter)
prune.l1_unstructured(module, name="bias", amount=3)
bias_zeros = int((module.bias == 0).sum())
bias_mask = module.bias_mask.tolist()
prune.ln_structured(module, name="weight", amount=0.5, n=2, dim=0)
for hook in module._forward_pre_hooks.values():
    if hook._tensor_name == "weight":
        break
history = [type(h).__name__ for h in hook]
channels_kept = int((module.weight_mask.sum(dim=(1, 2, 3)) > 0).sum())
random_structure_ok = bool(((module.weight == 0) | (module.weight_mask == 1)).all())


class FooBarPruningMethod(prune.BasePruningMethod):
    """Prune every other entry in a tensor"""
    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        mask = default_mask.clone()
        mask.view(-1)[::2] = 0
        return mask


def foobar_unstructured(module, name):
    FooBarPruningMethod.apply(module, name)
    return module


foobar_unstructured(model.fc3, name="bias")
foobar_mask = model.fc3.bias_mask.tolist()
prune.custom_from_mask(model.fc2, name="bias", mask=(torch.arange(16) % 3 != 0).float())
custom_bias = model.fc2.bias.tolist()
scores = torch.arange(model.fc3.weight.numel(), dtype=torch.float32).view_as(model.fc3.weight)
prune.l1_unstructured(model.fc3, name="weight", amount=0.25, importance_scores=scores)
fc3_mask_rows = model.fc3.weight_mask.sum(1).tolist()
pruned_flags = [prune.is_pruned(m) for m in (model.conv1, model.conv2, model.fc1, model)]
sd_keys = sorted(model.state_dict().keys())

# a pruned checkpoint loads into a fresh model once its modules carry the same buffers
state = copy.deepcopy(model.state_dict())
fresh = LeNet()
for name, m in fresh.named_modules():
    for pname in ("weight", "bias"):
        if name + "." + pname + "_mask" in state:
            prune.identity(m, pname)
fresh.load_state_dict(state)
same_out = bool(torch.allclose(fresh(X[:4]), model(X[:4])))

# iterative magnitude pruning with rewinding on a fresh network
net = LeNet()
load_reference(net)
init_state = copy.deepcopy(net.state_dict())
parameters_to_prune = [(net.conv1, "weight"), (net.conv2, "weight"), (net.fc1, "weight"),
                       (net.fc2, "weight"), (net.fc3, "weight")]
criterion = nn.CrossEntropyLoss()


def train(net, steps):
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for step in range(steps):
        idx = torch.arange(step * 16, step * 16 + 16) % X.shape[0]
        opt.zero_grad()
        loss = criterion(net(X[idx]), y[idx])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


round_losses, sparsities, masked_grads_zero = [], [], []
for rnd in range(3):
    round_losses.append(train(net, 6))
    prune.global_unstructured(parameters_to_prune, pruning_method=prune.L1Unstructured,
                              amount=0.2)
    total = sum(getattr(m, n).nelement() for m, n in parameters_to_prune)
    zeros = sum(int((getattr(m, n) == 0).sum()) for m, n in parameters_to_prune)
    per_layer = [float((getattr(m, n) == 0).float().mean()) for m, n in parameters_to_prune]
    sparsities.append([round(100.0 * zeros / total, 4)] + per_layer)
    # rewind the surviving weights to their initial values
    with torch.no_grad():
        for m, n in parameters_to_prune:
            key = [k for k, mm in net.named_modules() if mm is m][0]
            getattr(m, n + "_orig").copy_(init_state[key + "." + n])
    net.zero_grad()
    out = net(X[:8])
    out.sum().backward()
    masked_grads_zero.append(bool(all(
        (getattr(m, n + "_orig").grad[getattr(m, n + "_mask") == 0] == 0).all()
        for m, n in parameters_to_prune)))
    net.zero_grad()
final_losses = train(net, 6)
for m, n in parameters_to_prune:
    prune.remove(m, n)
final_keys = sorted(net.state_dict().keys())
final_sparsity = float(sum(int((p == 0).sum()) for p in net.parameters() if p.dim() > 1))
with torch.no_grad():
    eval_acc = float((net(X).argmax(1) == y).float().mean())
    eval_logits = net(X[:5]).tolist()

report(
    names_after_random=names_after_random,
    buffers_after_random=buffers_after_random,
    random_kept=random_kept,
    has_weight_attr=has_weight_attr,
    bias_zeros=bias_zeros,
    bias_mask=bias_mask,
    history=history,
    channels_kept=channels_kept,
    random_structure_ok=random_structure_ok,
    foobar_mask=foobar_mask,
    custom_bias=custom_bias,
    fc3_mask_rows=fc3_mask_rows,
    pruned_flags=pruned_flags,
    sd_keys=sd_keys,
    same_out=same_out,
    round_losses=round_losses,
    sparsities=sparsities,
    masked_grads_zero=masked_grads_zero,
    final_losses=final_losses,
    final_keys=final_keys,
    final_sparsity=final_sparsity,
    eval_acc=eval_acc,
    eval_logits=eval_logits,
)
