# Preference tuning of a tiny causal LM the way TRL-style code writes it: a reward model trained
# on chosen / rejected pairs by the Bradley-Terry loss (-logsigmoid(r_c - r_r)) with the reward
# read at each sequence's last real token (a gather at lengths - 1); DPO, IPO and conservative
# (label-smoothed) DPO against a frozen deepcopy'd reference, with per-sequence log-probs from
# log_softmax + gather over shifted labels where prompt and padding positions are -100
# (masked by `labels != -100` and replaced by 0 before the gather); then a PPO-RLHF step:
# per-token KL penalty rewards, the score added at the last token by scatter_add_, masked_mean /
# masked_whiten of advantages, GAE in reverse, clipped policy and value losses. Our own program.
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

V, D, T, B = 13, 16, 10, 6
rng = np.random.default_rng(5)


class TinyLM(nn.Module):
    def __init__(self, value_head=False, value_bias=True):
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.pos = nn.Parameter(torch.zeros(T, D))
        self.mix = nn.Linear(D, D)
        self.ln = nn.LayerNorm(D)
        self.lm_head = nn.Linear(D, V, bias=False)
        self.v_head = nn.Linear(D, 1, bias=value_bias) if value_head else None

    def hidden(self, ids):
        h = self.emb(ids) + self.pos[: ids.size(1)]
        # causal mixing: a running mean over earlier positions
        csum = torch.cumsum(h, dim=1)
        counts = torch.arange(1, ids.size(1) + 1, dtype=h.dtype).view(1, -1, 1)
        return self.ln(h + torch.tanh(self.mix(csum / counts)))

    def forward(self, ids):
        h = self.hidden(ids)
        logits = self.lm_head(h)
        if self.v_head is None:
            return logits
        return logits, self.v_head(h).squeeze(-1)


def init(model):
    W = reference_weights(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[n]))


def make_batch():
    prompt_len = rng.integers(2, 4, size=B)
    lengths = rng.integers(6, T + 1, size=B)
    ids = rng.integers(1, V, size=(B, T))
    for i in range(B):
        ids[i, lengths[i] :] = 0
    labels = ids.copy()
    for i in range(B):
        labels[i, : prompt_len[i]] = -100
        labels[i, lengths[i] :] = -100
    return torch.from_numpy(ids), torch.from_numpy(labels), torch.from_numpy(lengths)


def get_batch_logps(logits, labels, average_log_prob=False):
    labels = labels[:, 1:].clone()
    logits = logits[:, :-1, :]
    loss_mask = labels != -100
    labels[labels == -100] = 0
    per_token_logps = torch.gather(
        logits.log_softmax(-1), dim=2, index=labels.unsqueeze(2)
    ).squeeze(2)
    if average_log_prob:
        return (per_token_logps * loss_mask).sum(-1) / loss_mask.sum(-1)
    return (per_token_logps * loss_mask).sum(-1)


def preference_loss(pc, pr, rc, rr, beta, label_smoothing=0.0, ipo=False):
    logits = (pc - pr) - (rc - rr)
    if ipo:
        losses = (logits - 1 / (2 * beta)) ** 2
    else:
        losses = (
            -F.logsigmoid(beta * logits) * (1 - label_smoothing)
            - F.logsigmoid(-beta * logits) * label_smoothing
        )
    chosen_rewards = beta * (pc - rc).detach()
    rejected_rewards = beta * (pr - rr).detach()
    return losses, chosen_rewards, rejected_rewards


# ---- reward model: Bradley-Terry on the last real token. No bias on its head: it cancels in
# r_c - r_r, so its gradient is 0 up to rounding and AdamW would make rounding into steps
rm = TinyLM(value_head=True, value_bias=False)
init(rm)
opt = torch.optim.AdamW(rm.parameters(), lr=5e-3, weight_decay=0.01)
rm_losses, rm_acc = [], []
for step in range(6):
    ids_c, _, len_c = make_batch()
    ids_r, _, len_r = make_batch()
    _, v_c = rm(ids_c)
    _, v_r = rm(ids_r)
    r_c = v_c.gather(1, (len_c - 1).unsqueeze(1)).squeeze(1)
    r_r = v_r[torch.arange(B), len_r - 1]
    loss = -F.logsigmoid(r_c - r_r).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    rm_losses.append(loss.item())
    rm_acc.append((r_c > r_r).float().mean().item())

# ---- DPO / IPO / cDPO against a frozen reference
policy = TinyLM()
init(policy)
reference = copy.deepcopy(policy)
reference.requires_grad_(False)
reference.eval()
opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
dpo = {"sigmoid": [], "ipo": [], "cdpo": []}
margins = []
for step in range(9):
    kind = ["sigmoid", "ipo", "cdpo"][step % 3]
    ids_c, lab_c, _ = make_batch()
    ids_r, lab_r, _ = make_batch()
    ids = torch.cat([ids_c, ids_r], dim=0)
    labels = torch.cat([lab_c, lab_r], dim=0)
    logps = get_batch_logps(policy(ids), labels, average_log_prob=(kind == "ipo"))
    with torch.no_grad():
        ref_logps = get_batch_logps(reference(ids), labels, average_log_prob=(kind == "ipo"))
    pc, pr = logps.split(B)
    rc, rr = ref_logps.chunk(2)
    losses, cr, rj = preference_loss(
        pc, pr, rc, rr, beta=0.1, label_smoothing=0.1 if kind == "cdpo" else 0.0, ipo=kind == "ipo"
    )
    loss = losses.mean()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
    opt.step()
    dpo[kind].append(loss.item())
    margins.append((cr - rj).mean().item())


# ---- PPO-RLHF step with a value head and a KL-penalised reward
def masked_mean(values, mask, axis=None):
    return (
        (values * mask).sum(axis=axis) / mask.sum(axis=axis)
        if axis is not None
        else (values * mask).sum() / mask.sum()
    )


def masked_var(values, mask):
    mean = masked_mean(values, mask)
    centered = values - mean
    variance = masked_mean(centered**2, mask)
    return variance * mask.sum() / (mask.sum() - 1)


def masked_whiten(values, mask, shift_mean=True):
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened += mean
    return whitened


actor = TinyLM(value_head=True)
init(actor)
ref_actor = copy.deepcopy(actor).eval()
opt = torch.optim.Adam(actor.parameters(), lr=2e-3)
ppo_stats = []
ids, labels, lengths = make_batch()
mask = (labels[:, 1:] != -100).float()
safe = labels[:, 1:].clamp(min=0)
with torch.no_grad():
    logits, old_values = actor(ids)
    old_logp = torch.gather(F.log_softmax(logits[:, :-1], -1), 2, safe.unsqueeze(-1)).squeeze(-1)
    ref_logp = torch.gather(
        F.log_softmax(ref_actor(ids)[0][:, :-1], -1), 2, safe.unsqueeze(-1)
    ).squeeze(-1)
    old_values = old_values[:, :-1]
    score = rm(ids)[1].gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
    kl = old_logp - ref_logp
    rewards = -0.05 * kl
    last = (lengths - 2).unsqueeze(1)
    rewards.scatter_add_(1, last, score.unsqueeze(1))
    rewards = rewards * mask
    adv_rev, lastgaelam = [], 0
    for t in reversed(range(T - 1)):
        nextv = old_values[:, t + 1] if t < T - 2 else 0.0
        delta = rewards[:, t] + 0.99 * nextv - old_values[:, t]
        lastgaelam = delta + 0.99 * 0.95 * lastgaelam
        adv_rev.append(lastgaelam)
    advantages = torch.stack(adv_rev[::-1], dim=1)
    returns = advantages + old_values
    advantages = masked_whiten(advantages, mask)
for epoch in range(4):
    logits, vpred = actor(ids)
    logp = torch.gather(F.log_softmax(logits[:, :-1], -1), 2, safe.unsqueeze(-1)).squeeze(-1)
    vpred = vpred[:, :-1]
    vclipped = old_values + torch.clamp(vpred - old_values, -0.2, 0.2)
    vf_loss = 0.5 * masked_mean(torch.max((vpred - returns) ** 2, (vclipped - returns) ** 2), mask)
    ratio = torch.exp(logp - old_logp)
    pg_losses = -advantages * ratio
    pg_losses2 = -advantages * torch.clamp(ratio, 0.8, 1.2)
    pg_loss = masked_mean(torch.max(pg_losses, pg_losses2), mask)
    loss = pg_loss + 0.1 * vf_loss
    opt.zero_grad()
    loss.backward()
    opt.step()
    clipfrac = masked_mean(torch.gt(pg_losses2, pg_losses).float(), mask)
    approxkl = 0.5 * masked_mean((logp - old_logp) ** 2, mask)
    ppo_stats.append([pg_loss.item(), vf_loss.item(), clipfrac.item(), approxkl.item()])

report(
    rm_losses=rm_losses,
    rm_acc=rm_acc,
    dpo=dpo,
    margins=margins,
    ppo=ppo_stats,
    kl_sum=kl.sum().item(),
    score=score.tolist(),
    adv=advantages.sum(1).tolist(),
)
