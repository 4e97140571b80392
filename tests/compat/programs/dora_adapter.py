# DoRA (weight-decomposed low-rank adaptation, Liu et al. 2024) next to LoRA, as the PEFT-style
# re-implementations write them: a frozen base nn.Linear, lora_A kaiming_uniform_(a=sqrt(5))
# and lora_B zeros, scaling = alpha / r, DoRA's magnitude vector initialised to the column
# norms of the base weight, the norm of W + s B A detached as the paper recommends
# (torch.linalg.norm(dim=1) with .detach()), dropout on the adapter input; wrapping a model by
# replacing named submodules (setattr on the parent found through get_submodule), training
# only the adapter parameters (requires_grad False elsewhere) with AdamW, counting trainable
# parameters, merging the adapters back into plain Linear weights (merge_and_unload) and
# checking the merged model's outputs, and a state_dict holding only the adapter keys.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(41)


class LoraLinear(nn.Module):
    def __init__(self, base: nn.Linear, r=4, alpha=8, dropout=0.0, use_dora=False):
        super().__init__()
        self.base = base
        self.r, self.scaling, self.use_dora = r, alpha / r, use_dora
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        self.lora_dropout = nn.Dropout(dropout)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        if use_dora:
            with torch.no_grad():
                self.lora_magnitude = nn.Parameter(torch.linalg.norm(base.weight, dim=1))

    def delta_weight(self):
        return self.scaling * (self.lora_B.weight @ self.lora_A.weight)

    def forward(self, x):
        result = self.base(x)
        h = self.lora_dropout(x)
        lora = self.lora_B(self.lora_A(h)) * self.scaling
        if not self.use_dora:
            return result + lora
        weight = self.base.weight + self.delta_weight()
        weight_norm = torch.linalg.norm(weight, dim=1).detach()
        mag_norm_scale = (self.lora_magnitude / weight_norm).view(1, -1)
        base_out = result - (self.base.bias if self.base.bias is not None else 0)
        out = (mag_norm_scale - 1) * base_out + mag_norm_scale * lora
        if self.base.bias is not None:
            out = out + self.base.bias
        return out

    def merged(self):
        w = self.base.weight + self.delta_weight()
        if self.use_dora:
            w = w * (self.lora_magnitude / torch.linalg.norm(w, dim=1)).view(-1, 1)
        lin = nn.Linear(
            self.base.in_features, self.base.out_features, bias=self.base.bias is not None
        )
        with torch.no_grad():
            lin.weight.copy_(w)
            if self.base.bias is not None:
                lin.bias.copy_(self.base.bias)
        return lin


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(10, 24), nn.GELU(), nn.Linear(24, 24), nn.GELU())
        self.q_proj = nn.Linear(24, 24)
        self.v_proj = nn.Linear(24, 24, bias=False)
        self.head = nn.Linear(24, 3)

    def forward(self, x):
        h = self.encoder(x)
        h = h + torch.tanh(self.q_proj(h)) * self.v_proj(h)
        return self.head(h)


def inject(model, targets, **kw):
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoraLinear(getattr(parent, child), **kw))
    for n, prm in model.named_parameters():
        prm.requires_grad = "lora_" in n
    return model


def merge_and_unload(model):
    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLinear):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, module.merged())
    return model


X = torch.from_numpy(rng.standard_normal((48, 10)).astype(np.float32))
y = torch.from_numpy(rng.integers(0, 3, 48))
results = {}
for variant in ("lora", "dora"):
    model = Net()
    W = reference_weights(model)
    with torch.no_grad():
        for n, prm in model.named_parameters():
            prm.copy_(torch.from_numpy(W[n]))
    inject(model, ["q_proj", "v_proj", "encoder.2"], r=4, alpha=8, use_dora=variant == "dora")
    Wa = reference_weights(model)
    with torch.no_grad():
        for n, prm in model.named_parameters():
            if n.endswith("lora_A.weight"):
                prm.copy_(torch.from_numpy(Wa[n]))
    trainable = [n for n, prm in model.named_parameters() if prm.requires_grad]
    total = sum(prm.numel() for prm in model.parameters())
    n_train = sum(prm.numel() for prm in model.parameters() if prm.requires_grad)
    with torch.no_grad():
        start = model(X[:4])
    opt = torch.optim.AdamW(
        [prm for prm in model.parameters() if prm.requires_grad], lr=1e-2, weight_decay=0.01
    )
    losses = []
    for step in range(12):
        idx = torch.from_numpy(rng.permutation(48)[:16])
        loss = F.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    adapter_state = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    with torch.no_grad():
        before = model(X)
        merge_and_unload(model)
        after = model(X)
    results[variant] = dict(
        trainable=trainable,
        ratio=n_train / total,
        start=start.flatten().tolist(),
        losses=losses,
        adapter_keys=sorted(adapter_state),
        merged_close=bool(torch.allclose(before, after, atol=1e-5)),
        merged_logits=after[:3].flatten().tolist(),
        plain=sorted(type(m).__name__ for m in model.modules() if isinstance(m, nn.Linear)),
    )
report(**results)
