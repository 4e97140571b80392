# "Attention, Learn to Solve Routing Problems!" (Kool et al.) as its attention-model code writes
# it (our own condensed rewrite): an encoder of graph attention layers (MultiHeadAttention with
# W_query / W_key / W_val Parameters of shape (heads, in, key_dim) initialised by uniform_(-stdv,
# stdv) and applied by torch.matmul over flattened nodes, compatibility scaled by
# 1/sqrt(key_dim), BatchNorm1d over flattened nodes by view(-1, d)), SkipConnection and
# Normalization modules in an nn.Sequential; a decoder with a precomputed fixed context (node
# embeddings projected once into glimpse keys / values / logit keys by .chunk(3, dim=-1)), the
# step context of graph embedding + first and last node embeddings (a learned W_placeholder at
# the first step), a visited mask updated by scatter(-1, idx, 1), masked compatibility by
# compatibility[mask] = -math.inf, a single-head logit layer with tanh clipping (C = 10),
# log_softmax; greedy and sampling decoding (sampling by inverse CDF on NumPy uniforms),
# log-likelihoods gathered by gather(2, ...), tour lengths by gather + norm(p=2, dim=2);
# REINFORCE with a greedy-rollout baseline (a deepcopy of the policy), Adam, clip_grad_norm_
# returning the per-group norms.
import copy
import math

import numpy as np
import torch
from compat_helpers import reference_weights, report
from torch import nn

rng = np.random.default_rng(2207)
N_NODES, EMB, HEADS = 8, 16, 4


class SkipConnection(nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, input):
        return input + self.module(input)


class MultiHeadAttention(nn.Module):
    def __init__(self, n_heads, input_dim, embed_dim):
        super().__init__()
        val_dim = key_dim = embed_dim // n_heads
        self.n_heads, self.input_dim, self.embed_dim = n_heads, input_dim, embed_dim
        self.val_dim, self.key_dim = val_dim, key_dim
        self.norm_factor = 1 / math.sqrt(key_dim)
        self.W_query = nn.Parameter(torch.Tensor(n_heads, input_dim, key_dim))
        self.W_key = nn.Parameter(torch.Tensor(n_heads, input_dim, key_dim))
        self.W_val = nn.Parameter(torch.Tensor(n_heads, input_dim, val_dim))
        self.W_out = nn.Parameter(torch.Tensor(n_heads, val_dim, embed_dim))
        self.init_parameters()

    def init_parameters(self):
        for param in self.parameters():
            stdv = 1.0 / math.sqrt(param.size(-1))
            param.data.uniform_(-stdv, stdv)

    def forward(self, q, h=None, mask=None):
        if h is None:
            h = q
        batch_size, graph_size, input_dim = h.size()
        n_query = q.size(1)
        hflat = h.contiguous().view(-1, input_dim)
        qflat = q.contiguous().view(-1, input_dim)
        shp = (self.n_heads, batch_size, graph_size, -1)
        shp_q = (self.n_heads, batch_size, n_query, -1)
        Q = torch.matmul(qflat, self.W_query).view(shp_q)
        K = torch.matmul(hflat, self.W_key).view(shp)
        V = torch.matmul(hflat, self.W_val).view(shp)
        compatibility = self.norm_factor * torch.matmul(Q, K.transpose(2, 3))
        attn = torch.softmax(compatibility, dim=-1)
        heads = torch.matmul(attn, V)
        out = torch.mm(
            heads.permute(1, 2, 0, 3).contiguous().view(-1, self.n_heads * self.val_dim),
            self.W_out.view(-1, self.embed_dim),
        ).view(batch_size, n_query, self.embed_dim)
        return out


class Normalization(nn.Module):
    def __init__(self, embed_dim):
        super().__init__()
        self.normalizer = nn.BatchNorm1d(embed_dim, affine=True)

    def forward(self, input):
        return self.normalizer(input.view(-1, input.size(-1))).view(*input.size())


class MultiHeadAttentionLayer(nn.Sequential):
    def __init__(self, n_heads, embed_dim, feed_forward_hidden=32):
        super().__init__(
            SkipConnection(MultiHeadAttention(n_heads, input_dim=embed_dim, embed_dim=embed_dim)),
            Normalization(embed_dim),
            # the feed-forward's output Linear has no bias (the repository's has one): it feeds a
            # BatchNorm, so its gradient is 0 up to rounding; Adam stepped on it and the running
            # means recorded the steps (eval log-likelihoods 7.7e-5 apart, training equal)
            SkipConnection(
                nn.Sequential(
                    nn.Linear(embed_dim, feed_forward_hidden),
                    nn.ReLU(),
                    nn.Linear(feed_forward_hidden, embed_dim, bias=False),
                )
            ),
            Normalization(embed_dim),
        )


class AttentionModel(nn.Module):
    def __init__(self, embedding_dim=EMB, n_heads=HEADS, n_layers=2, tanh_clipping=10.0):
        super().__init__()
        self.embedding_dim, self.n_heads, self.tanh_clipping = embedding_dim, n_heads, tanh_clipping
        self.init_embed = nn.Linear(2, embedding_dim)
        self.embedder = nn.Sequential(
            *(MultiHeadAttentionLayer(n_heads, embedding_dim) for _ in range(n_layers))
        )
        self.W_placeholder = nn.Parameter(torch.Tensor(2 * embedding_dim))
        self.W_placeholder.data.uniform_(-1, 1)
        self.project_node_embeddings = nn.Linear(embedding_dim, 3 * embedding_dim, bias=False)
        self.project_fixed_context = nn.Linear(embedding_dim, embedding_dim, bias=False)
        self.project_step_context = nn.Linear(2 * embedding_dim, embedding_dim, bias=False)
        self.project_out = nn.Linear(embedding_dim, embedding_dim, bias=False)

    def forward(self, loc, decode="greedy", uniforms=None):
        embeddings = self.embedder(self.init_embed(loc))
        batch_size, n, d = embeddings.shape
        graph_embed = embeddings.mean(1)
        fixed_context = self.project_fixed_context(graph_embed)[:, None, :]
        glimpse_key, glimpse_val, logit_key = self.project_node_embeddings(
            embeddings[:, None, :, :]
        ).chunk(3, dim=-1)
        mask = torch.zeros(batch_size, 1, n, dtype=torch.bool)
        first = last = None
        log_ps, selected_all = [], []
        for i in range(n):
            if i == 0:
                step_ctx = self.W_placeholder[None, None, :].expand(batch_size, 1, 2 * d)
            else:
                idx = torch.stack([first, last], 1)
                step_ctx = embeddings.gather(1, idx[:, :, None].expand(batch_size, 2, d)).view(
                    batch_size, 1, -1
                )
            query = fixed_context + self.project_step_context(step_ctx)
            log_p = self._one_to_many_logits(query, glimpse_key, glimpse_val, logit_key, mask)
            probs = log_p.exp()[:, 0, :]
            if decode == "greedy":
                selected = probs.max(1)[1]
            else:
                cdf = probs.cumsum(1)
                u = torch.from_numpy(uniforms[:, i]).float()[:, None] * cdf[:, -1:]
                selected = (cdf < u).sum(1).clamp(max=n - 1)
                while mask.gather(
                    2, selected[:, None, None]
                ).any():  # numerical edge: resample next
                    selected = torch.where(
                        mask[:, 0].gather(1, selected[:, None])[:, 0], (selected + 1) % n, selected
                    )
            log_ps.append(log_p[:, 0, :])
            selected_all.append(selected)
            if i == 0:
                first = selected
            last = selected
            mask = mask.scatter(-1, selected[:, None, None], True)
        _log_p = torch.stack(log_ps, 1)
        pi = torch.stack(selected_all, 1)
        ll = _log_p.gather(2, pi.unsqueeze(-1)).squeeze(-1).sum(1)
        return pi, ll

    def _one_to_many_logits(self, query, glimpse_K, glimpse_V, logit_K, mask):
        batch_size, num_steps, embed_dim = query.size()
        key_size = val_size = embed_dim // self.n_heads
        glimpse_Q = query.view(batch_size, num_steps, self.n_heads, 1, key_size).permute(
            2, 0, 1, 3, 4
        )
        gK = glimpse_K.view(batch_size, 1, -1, self.n_heads, key_size).permute(3, 0, 1, 2, 4)
        gV = glimpse_V.view(batch_size, 1, -1, self.n_heads, val_size).permute(3, 0, 1, 2, 4)
        compatibility = torch.matmul(glimpse_Q, gK.transpose(-2, -1)) / math.sqrt(
            glimpse_Q.size(-1)
        )
        compatibility[mask[None, :, :, None, :].expand_as(compatibility)] = -math.inf
        heads = torch.matmul(torch.softmax(compatibility, dim=-1), gV)
        glimpse = self.project_out(
            heads.permute(1, 2, 3, 0, 4)
            .contiguous()
            .view(-1, num_steps, 1, self.n_heads * val_size)
        )
        logits = torch.matmul(glimpse, logit_K.transpose(-2, -1)).squeeze(-2) / math.sqrt(
            glimpse.size(-1)
        )
        logits = torch.tanh(logits) * self.tanh_clipping
        logits[mask] = -math.inf
        return torch.log_softmax(logits, dim=-1)


def tour_length(loc, pi):
    d = loc.gather(1, pi.unsqueeze(-1).expand_as(loc))
    return (d[:, 1:] - d[:, :-1]).norm(p=2, dim=2).sum(1) + (d[:, 0] - d[:, -1]).norm(p=2, dim=1)


model = AttentionModel()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
baseline = copy.deepcopy(model)
baseline.eval()
opt = torch.optim.Adam(model.parameters(), lr=1e-4)
losses, costs, norms = [], [], []
for step in range(5):
    loc = torch.from_numpy(rng.uniform(size=(16, N_NODES, 2)).astype(np.float32))
    u = rng.uniform(size=(16, N_NODES))
    model.train()
    pi, ll = model(loc, decode="sample", uniforms=u)
    cost = tour_length(loc, pi)
    with torch.no_grad():
        bl_pi, _ = baseline(loc)
        bl = tour_length(loc, bl_pi)
    loss = ((cost - bl) * ll).mean()
    opt.zero_grad()
    loss.backward()
    grad_norms = [
        torch.nn.utils.clip_grad_norm_(g["params"], 1.0, norm_type=2).item()
        for g in opt.param_groups
    ]
    opt.step()
    losses.append(loss.item())
    costs.append(cost.mean().item())
    norms.append(grad_norms)
    if step == 2:
        baseline.load_state_dict(model.state_dict())
model.eval()
with torch.no_grad():
    loc = torch.from_numpy(
        np.random.default_rng(5).uniform(size=(4, N_NODES, 2)).astype(np.float32)
    )
    pi, ll = model(loc)
    valid = bool((pi.sort(1)[0] == torch.arange(N_NODES)).all())

report(
    losses=losses,
    costs=costs,
    norms=norms,
    tours=pi.tolist(),
    ll=ll.tolist(),
    length=tour_length(loc, pi).tolist(),
    valid=valid,
)
