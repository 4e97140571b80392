# Mixture-of-experts layers with expert capacity, as the reference implementations write them:
# Hugging Face's SwitchTransformersTop1Router (router in float32 under a dtype round trip,
# multiplicative jitter, argmax one_hot, token priority by cumsum, tokens over capacity dropped
# by `expert_index *= mask`, max router prob), SwitchSparseMLP (hidden.clone() with
# `next_states[token_indices] = expert(...)` per expert), the load-balancing and router z-losses;
# fairseq's GShard top2gating (masked_fill(-inf) for the second expert, locations by cumsum,
# capacity masks, normalised gates with clamp(min=eps), one_hot locations, dispatch and combine
# tensors by bmm / einsum("sec,sm->ecm"), experts as batched weights); expert-choice routing
# (topk over tokens per expert, index_add_ of gated outputs). A small LM is trained on each.
import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(21)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


class Top1Router(nn.Module):
    def __init__(self, hidden_size, num_experts, expert_capacity, jitter_noise=0.1):
        super().__init__()
        self.num_experts = num_experts
        self.expert_capacity = expert_capacity
        self.classifier = nn.Linear(hidden_size, num_experts, bias=False)
        self.jitter_noise = jitter_noise
        self.dtype = torch.float32
        self.noise = None  # NumPy-made multiplicative jitter, set per step

    def _compute_router_probabilities(self, hidden_states):
        self.input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(self.dtype)
        if self.training and self.jitter_noise > 0 and self.noise is not None:
            hidden_states *= self.noise
        router_logits = self.classifier(hidden_states)
        router_probabilities = nn.functional.softmax(router_logits, dim=-1, dtype=self.dtype)
        router_probabilities = router_probabilities.to(self.input_dtype)
        return router_probabilities, router_logits

    def forward(self, hidden_states):
        router_probs, router_logits = self._compute_router_probabilities(hidden_states)
        expert_index = torch.argmax(router_probs, dim=-1)
        expert_index = torch.nn.functional.one_hot(expert_index, num_classes=self.num_experts)
        token_priority = torch.cumsum(expert_index, dim=-2)
        expert_capacity_mask = token_priority <= self.expert_capacity
        expert_index = expert_index * expert_capacity_mask
        router_probs = torch.max(router_probs, dim=-1).values.unsqueeze(-1)
        return expert_index, router_probs, router_logits


class DenseActDense(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.wi = nn.Linear(d_model, d_ff, bias=False)
        self.wo = nn.Linear(d_ff, d_model, bias=False)
        self.act = nn.ReLU()

    def forward(self, hidden_states):
        return self.wo(self.act(self.wi(hidden_states)))


class SwitchSparseMLP(nn.Module):
    def __init__(self, d_model, d_ff, num_experts, expert_capacity):
        super().__init__()
        self.router = Top1Router(d_model, num_experts, expert_capacity)
        self.experts = nn.ModuleDict()
        for idx in range(num_experts):
            self.experts[f"expert_{idx}"] = DenseActDense(d_model, d_ff)

    def forward(self, hidden_states):
        router_mask, router_probs, router_logits = self.router(hidden_states)
        expert_index = torch.argmax(router_mask, dim=-1)
        next_states = hidden_states.clone()
        for idx, expert in enumerate(self.experts.values()):
            token_indices = router_mask[:, :, idx].bool()
            next_states[token_indices] = expert(hidden_states[token_indices]).to(next_states.dtype)
        hidden_states = router_probs * next_states
        return hidden_states, (router_logits, expert_index, router_mask)


def router_z_loss_func(router_logits):
    num_groups, tokens_per_group, _ = router_logits.shape
    log_z = torch.logsumexp(router_logits, dim=-1)
    z_loss = log_z**2
    return torch.sum(z_loss) / (num_groups * tokens_per_group)


def load_balancing_loss_func(router_probs, expert_indices):
    num_experts = router_probs.shape[-1]
    if expert_indices.dtype != torch.int64:
        expert_indices = expert_indices.to(torch.int64)
    if len(expert_indices.shape) == 2:
        expert_indices = expert_indices.unsqueeze(2)
    expert_mask = torch.nn.functional.one_hot(expert_indices, num_experts)
    expert_mask = torch.max(expert_mask, axis=-2).values
    expert_mask = expert_mask.to(torch.float32)
    tokens_per_group_and_expert = torch.mean(expert_mask, axis=-2)
    router_prob_per_group_and_expert = torch.mean(router_probs, axis=-2)
    return torch.mean(tokens_per_group_and_expert * router_prob_per_group_and_expert) * (
        num_experts**2)


# ---------------------------------------------------------------- fairseq's top-2 gating
def top2gating(logits, capacity_factor=1.0, noise=None, eps=1e-9):
    gates = F.softmax(logits, dim=1, dtype=torch.float)
    num_tokens = gates.shape[0]
    num_experts = gates.shape[1]
    capacity = 2 * int(capacity_factor * ((num_tokens + num_experts - 1) // num_experts))
    indices1_s = torch.argmax(gates, dim=1, keepdim=True)
    mask1 = torch.zeros_like(gates).scatter_(1, indices1_s, 1)
    logits_w_noise = logits + noise if noise is not None else logits
    logits_except1 = logits_w_noise.masked_fill(mask1.bool(), float("-inf"))
    indices2_s = torch.argmax(logits_except1, dim=1, keepdim=True)
    mask2 = F.one_hot(indices2_s.squeeze(1), num_classes=num_experts).to(gates.dtype)
    locations1 = torch.cumsum(mask1, dim=0) - 1
    locations2 = torch.cumsum(mask2, dim=0) - 1
    locations2 += torch.sum(mask1, dim=0, keepdim=True)
    me = torch.mean(gates, dim=0)
    ce = torch.mean(mask1.to(gates.dtype), dim=0)
    l_aux = torch.mean(me * ce) * num_experts * num_experts
    mask1 = mask1 * torch.lt(locations1, capacity)
    mask2 = mask2 * torch.lt(locations2, capacity)
    locations1_s = torch.sum(locations1 * mask1, dim=1).long()
    locations2_s = torch.sum(locations2 * mask2, dim=1).long()
    gates1_s = (gates * mask1).sum(dim=1)
    gates2_s = (gates * mask2).sum(dim=1)
    denom_s = gates1_s + gates2_s
    denom_s = torch.clamp(denom_s, min=torch.finfo(denom_s.dtype).eps)
    gates1_s /= denom_s
    gates2_s /= denom_s
    gates1 = gates1_s.unsqueeze(-1) * mask1
    gates2 = gates2_s.unsqueeze(-1) * mask2
    locations1_sc = F.one_hot(locations1_s, num_classes=capacity).to(gates.dtype)
    locations2_sc = F.one_hot(locations2_s, num_classes=capacity).to(gates.dtype)
    combine1_sec = torch.bmm(gates1.unsqueeze(-1), locations1_sc.unsqueeze(1))
    combine2_sec = torch.bmm(gates2.unsqueeze(-1), locations2_sc.unsqueeze(1))
    combine_weights = combine1_sec + combine2_sec
    dispatch_mask = combine_weights.bool()
    metadata = {"overflow": 1.0 - (mask1.sum() + mask2.sum()).item() / (2 * num_tokens)}
    return l_aux, combine_weights, dispatch_mask, metadata


class GShardMoE(nn.Module):
    def __init__(self, d_model, d_ff, num_experts):
        super().__init__()
        self.wg = nn.Linear(d_model, num_experts, bias=False)
        self.w1 = nn.Parameter(torch.empty(num_experts, d_model, d_ff))
        self.w2 = nn.Parameter(torch.empty(num_experts, d_ff, d_model))
        self.noise = None

    def forward(self, x):
        shape = x.shape
        reshaped = x.reshape(-1, shape[-1])
        l_aux, combine_weights, dispatch_mask, self.metadata = top2gating(
            self.wg(reshaped), capacity_factor=1.0, noise=self.noise)
        dispatched = torch.einsum("sec,sm->ecm", dispatch_mask.to(x.dtype), reshaped)
        h = F.gelu(torch.bmm(dispatched, self.w1))
        expert_output = torch.bmm(h, self.w2)
        combined = torch.einsum("sec,ecm->sm", combine_weights, expert_output)
        return combined.reshape(shape), l_aux


class ExpertChoiceMoE(nn.Module):
    def __init__(self, d_model, d_ff, num_experts, capacity):
        super().__init__()
        self.gate = nn.Linear(d_model, num_experts, bias=False)
        self.experts = nn.ModuleList(DenseActDense(d_model, d_ff) for _ in range(num_experts))
        self.capacity = capacity

    def forward(self, x):
        b, t, d = x.shape
        flat = x.view(-1, d)
        scores = self.gate(flat).softmax(dim=-1).t()  # (E, S)
        gates, token_idx = torch.topk(scores, self.capacity, dim=1)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            y = expert(flat[token_idx[e]]) * gates[e].unsqueeze(-1)
            out.index_add_(0, token_idx[e], y)
        coverage = torch.zeros(flat.shape[0], dtype=torch.long)
        coverage.scatter_add_(0, token_idx.flatten(), torch.ones_like(token_idx.flatten()))
        return out.view(b, t, d), coverage


class TinyLM(nn.Module):
    def __init__(self, kind, vocab=12, d_model=16, d_ff=24, num_experts=4):
        super().__init__()
        self.kind = kind
        self.embed = nn.Embedding(vocab, d_model)
        self.norm = nn.LayerNorm(d_model)
        if kind == "switch":
            self.moe = SwitchSparseMLP(d_model, d_ff, num_experts, expert_capacity=5)
        elif kind == "gshard":
            self.moe = GShardMoE(d_model, d_ff, num_experts)
        else:
            self.moe = ExpertChoiceMoE(d_model, d_ff, num_experts, capacity=6)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, tokens):
        h = self.embed(tokens)
        y = self.moe(self.norm(h))
        h = h + y[0]
        return self.head(h), y[1]


vocab = 12
data = torch.from_numpy(rng.integers(0, vocab, size=(6, 3, 9)))
results = {}
for kind in ("switch", "gshard", "expert_choice"):
    model = load(TinyLM(kind))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses, aux, extra = [], [], []
    for step in range(6):
        tokens = data[step]
        inp, tgt = tokens[:, :-1], tokens[:, 1:]
        noise = rng.uniform(1 - 0.1, 1 + 0.1, size=(3, 8, 16)).astype(np.float32)
        if kind == "switch":
            model.moe.router.noise = torch.from_numpy(noise)
        elif kind == "gshard":
            model.moe.noise = torch.from_numpy(noise[..., :4].reshape(-1, 4) - 1.0)
        logits, info = model(inp)
        loss = F.cross_entropy(logits.reshape(-1, vocab), tgt.reshape(-1))
        if kind == "switch":
            router_logits, expert_index, router_mask = info
            z_loss = router_z_loss_func(router_logits)
            router_probs = nn.Softmax(dim=-1)(router_logits)
            lb = load_balancing_loss_func(router_probs, expert_index)
            total = loss + 1e-3 * z_loss + 1e-2 * lb
            aux.append([z_loss.item(), lb.item()])
            extra.append([router_mask.sum(dim=(0, 1)).tolist(),
                          int((router_mask.sum(-1) == 0).sum())])
        elif kind == "gshard":
            total = loss + 1e-2 * info
            aux.append(info.item())
            extra.append(model.moe.metadata["overflow"])
        else:
            total = loss
            extra.append(torch.bincount(info, minlength=24).tolist())
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(total.item())
    grads = {n: p.grad.norm().item() for n, p in model.named_parameters() if p.grad is not None}
    results[kind] = {"losses": losses, "aux": aux, "extra": extra, "grads": grads}

report(**results)
