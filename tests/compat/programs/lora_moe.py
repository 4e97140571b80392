# Two patterns of current LLM code, on a toy scale: (1) LoRA fine-tuning (Hu et al. 2021) the two
# ways repositories write it: a LoRALinear wrapper swapped into a pretrained model by walking
# named_modules() and setattr on the parent (minLoRA / loralib style), and
# torch.nn.utils.parametrize.register_parametrization with a low-rank delta on the weight, then
# merging with parametrize.remove_parametrizations(leave_parametrized=True); only the adapters
# train (requires_grad filtering, a param-group optimizer). (2) A top-2 mixture-of-experts layer
# (Switch / Mixtral style): router softmax, torch.topk, renormalised gates, token dispatch with
# torch.where(expert_mask), index_add_ back into the output, the load-balancing auxiliary loss
# from F.one_hot counts, and router z-loss with torch.logsumexp.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.parametrize as parametrize
from compat_helpers import reference_weights, report

rng = np.random.default_rng(89)


def load(model):
    W = reference_weights(model)
    model.load_state_dict({**model.state_dict(), **{k: torch.from_numpy(v) for k, v in W.items()}})
    return model


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, r=2, alpha=4):
        super().__init__()
        self.base = base
        self.lora_A = nn.Parameter(torch.zeros(r, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling


class LoRAParametrization(nn.Module):
    def __init__(self, fan_in, fan_out, rank=2, alpha=4):
        super().__init__()
        self.lora_A = nn.Parameter(torch.zeros((rank, fan_out)))
        self.lora_B = nn.Parameter(torch.zeros((fan_in, rank)))
        self.scale = alpha / rank

    def forward(self, original_weights):
        return (
            original_weights
            + torch.matmul(self.lora_B, self.lora_A).view(original_weights.shape) * self.scale
        )


X = torch.from_numpy(rng.standard_normal((32, 8)).astype(np.float32))
Y = torch.from_numpy(rng.integers(0, 3, 32))
results = {}

# (1a) wrapper modules swapped in
model = load(MLP())
for name, module in list(model.named_modules()):
    if isinstance(module, nn.Linear):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(module))
for n, p in model.named_parameters():
    p.requires_grad = "lora_" in n
with torch.no_grad():  # deterministic adapters (kaiming_uniform_ drew them randomly)
    for n, p in model.named_parameters():
        if "lora_A" in n:
            p.copy_(torch.from_numpy(reference_weights(model)[n]))
trainable = [n for n, p in model.named_parameters() if p.requires_grad]
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
losses = []
for step in range(10):
    loss = F.cross_entropy(model(X), Y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
base_unchanged = torch.equal(
    model.fc1.base.weight, torch.from_numpy(reference_weights(MLP())["fc1.weight"])
)
results["wrapper"] = {"trainable": trainable, "losses": losses, "base_unchanged": base_unchanged}

# (1b) parametrization on the weight, then merged
model = load(MLP())
for layer in (model.fc1, model.fc2):
    fan_out, fan_in = layer.weight.shape
    parametrize.register_parametrization(layer, "weight", LoRAParametrization(fan_in, fan_out))
names = sorted(n for n, _ in model.named_parameters())
with torch.no_grad():
    for n, p in model.named_parameters():
        if "lora_A" in n:
            p.copy_(torch.from_numpy(reference_weights(model)[n]))
for n, p in model.named_parameters():
    p.requires_grad = "lora" in n
opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
losses = []
for step in range(10):
    loss = F.cross_entropy(model(X), Y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
before = model(X).detach()
for layer in (model.fc1, model.fc2):
    parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
after = model(X).detach()
results["parametrize"] = {
    "names": names,
    "losses": losses,
    "merged_close": torch.allclose(before, after, atol=1e-5),
    "is_parametrized": parametrize.is_parametrized(model.fc1),
    "names_after": sorted(n for n, _ in model.named_parameters()),
}


# (2) top-2 mixture of experts
class MoE(nn.Module):
    def __init__(self, dim=8, hidden=12, n_experts=4, top_k=2):
        super().__init__()
        self.top_k, self.n_experts = top_k, n_experts
        self.gate = nn.Linear(dim, n_experts, bias=False)
        self.experts = nn.ModuleList(
            [
                nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, dim))
                for _ in range(n_experts)
            ]
        )

    def forward(self, x):
        B, T, C = x.shape
        x = x.view(-1, C)
        router_logits = self.gate(x)  # (N, E)
        routing_weights = F.softmax(router_logits, dim=1, dtype=torch.float)
        routing_weights, selected_experts = torch.topk(routing_weights, self.top_k, dim=-1)
        routing_weights /= routing_weights.sum(dim=-1, keepdim=True)
        final = torch.zeros((B * T, C), dtype=x.dtype)
        expert_mask = F.one_hot(selected_experts, num_classes=self.n_experts).permute(2, 1, 0)
        for expert_idx in range(self.n_experts):
            idx, top_x = torch.where(expert_mask[expert_idx])
            if top_x.numel() == 0:
                continue
            current_state = x[None, top_x].reshape(-1, C)
            current = self.experts[expert_idx](current_state) * routing_weights[top_x, idx, None]
            final.index_add_(0, top_x, current.to(x.dtype))
        # Switch Transformer load balancing: fraction of tokens per expert x mean router prob
        tokens_per_expert = F.one_hot(selected_experts, self.n_experts).float().mean(dim=(0, 1))
        prob_per_expert = F.softmax(router_logits, dim=-1).mean(dim=0)
        aux = self.n_experts * torch.sum(tokens_per_expert * prob_per_expert)
        z_loss = torch.logsumexp(router_logits, dim=-1).pow(2).mean()
        counts = torch.bincount(selected_experts.flatten(), minlength=self.n_experts)
        return final.view(B, T, C), aux, z_loss, counts


moe = load(MoE())
head = load(nn.Linear(8, 3))
opt = torch.optim.Adam(list(moe.parameters()) + list(head.parameters()), lr=1e-2)
Xs = X.view(4, 8, 8)
moe_log = []
for step in range(10):
    h, aux, z_loss, counts = moe(Xs)
    logits = head(h.mean(dim=1))
    loss = F.cross_entropy(logits, Y[:4]) + 0.01 * aux + 1e-3 * z_loss
    opt.zero_grad()
    loss.backward()
    opt.step()
    moe_log.append([loss.item(), aux.item(), z_loss.item(), counts.tolist()])
results["moe"] = moe_log
report(**results)
