# wav2vec 2.0 pre-training shrunk, the way Hugging Face's modeling_wav2vec2 writes it: a conv
# feature encoder (the first layer with GroupNorm(C, C), GELU), a feature projection with
# LayerNorm, span masking by _compute_mask_indices in NumPy with a learned masked_spec_embed
# written through a boolean index, a positional conv embedding (grouped Conv1d under weight norm
# with dim=2, the extra frame of an even kernel dropped), a post-LN nn.TransformerEncoder with a
# key padding mask, a Gumbel vector quantizer (two codebook groups, Gumbel noise from NumPy,
# straight-through hard one-hots by scatter_, codevectors summed per group, perplexity of the
# batch-averaged soft distribution), the contrastive loss over sampled distractors (cosine
# similarity / temperature, distractors with the positive's codes set to -inf), the diversity
# loss, Gumbel temperature annealing, AdamW with a linear warmup and decay, and
# clip_grad_norm_; then frozen features for a CTC-free linear probe.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(31)
B, S = 4, 400
lengths = np.array([400, 360, 400, 320])
t = np.arange(S) / 16000
wav = np.stack(
    [np.sin(2 * np.pi * rng.uniform(200, 800) * t) * rng.uniform(0.3, 1.0) for _ in range(B)]
) + 0.05 * rng.standard_normal((B, S))
for i, n in enumerate(lengths):
    wav[i, n:] = 0.0
wav = torch.from_numpy(wav.astype(np.float32))
D, C, G, V, K = 32, 16, 2, 8, 5  # model dim, conv channels, groups, codes per group, distractors


class FeatureEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv1d(1, C, 10, stride=5, bias=False)
        self.norm0 = nn.GroupNorm(C, C, affine=True)
        self.conv1 = nn.Conv1d(C, C, 4, stride=2, bias=False)
        self.conv2 = nn.Conv1d(C, C, 4, stride=2, bias=False)

    def forward(self, x):
        x = F.gelu(self.norm0(self.conv0(x[:, None])))
        x = F.gelu(self.conv1(x))
        return F.gelu(self.conv2(x))


def out_len(n):
    for k, s in ((10, 5), (4, 2), (4, 2)):
        n = (n - k) // s + 1
    return n


class PosConv(nn.Module):
    def __init__(self, d, kernel=8, groups=4):
        super().__init__()
        conv = nn.Conv1d(d, d, kernel, padding=kernel // 2, groups=groups)
        self.conv = nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
        self.remove = 1 if kernel % 2 == 0 else 0

    def forward(self, h):
        h = self.conv(h.transpose(1, 2))
        if self.remove:
            h = h[:, :, : -self.remove]
        return F.gelu(h).transpose(1, 2)


class GumbelVQ(nn.Module):
    def __init__(self):
        super().__init__()
        self.codevectors = nn.Parameter(torch.empty(1, G * V, D // G))
        self.weight_proj = nn.Linear(C, G * V)
        self.temperature = 2.0

    @staticmethod
    def perplexity(probs, mask):
        marginal = probs[mask.flatten()].mean(0)
        return torch.exp(-torch.sum(marginal * torch.log(marginal + 1e-7), dim=-1)).sum()

    def forward(self, h, mask, gumbel):
        b, tt, _ = h.shape
        logits = self.weight_proj(h).view(b * tt * G, -1)
        if self.training:
            soft = ((logits + gumbel) / self.temperature).softmax(-1)
            idx = soft.argmax(-1, keepdim=True)
            hard = torch.zeros_like(soft).scatter_(-1, idx, 1.0)
            probs = hard - soft.detach() + soft
            ppl = self.perplexity(logits.view(b * tt, G, -1).softmax(-1), mask)
        else:
            idx = logits.argmax(-1, keepdim=True)
            probs = logits.new_zeros(logits.shape).scatter_(-1, idx, 1.0)
            ppl = self.perplexity(probs.view(b * tt, G, -1), mask)
        cv = probs.view(b * tt, -1).unsqueeze(-1) * self.codevectors
        cv = cv.view(b * tt, G, V, -1).sum(-2).view(b, tt, -1)
        return cv, ppl, idx.view(b, tt, G)


class Wav2Vec2(nn.Module):
    def __init__(self):
        super().__init__()
        self.fe = FeatureEncoder()
        self.ln = nn.LayerNorm(C)
        self.proj = nn.Linear(C, D)
        self.masked_spec_embed = nn.Parameter(torch.empty(D))
        self.pos = PosConv(D)
        self.enc_ln = nn.LayerNorm(D)
        layer = nn.TransformerEncoderLayer(
            D, 4, 64, dropout=0.0, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.quantizer = GumbelVQ()
        self.project_hid = nn.Linear(D, D)
        self.project_q = nn.Linear(D, D)

    def forward(self, wav, pad_mask, time_mask, gumbel):
        feats = self.fe(wav).transpose(1, 2)
        feats = self.ln(feats)
        h = self.proj(feats)
        h[time_mask] = self.masked_spec_embed.to(h.dtype)
        h = h + self.pos(h)
        h = self.enc_ln(h)
        h = self.encoder(h, src_key_padding_mask=pad_mask)
        q, ppl, codes = self.quantizer(feats, ~pad_mask, gumbel)
        return self.project_hid(h), self.project_q(q), ppl, codes, h


def compute_mask_indices(shape, mask_prob, mask_length, lens):
    bsz, tt = shape
    mask = np.zeros(shape, dtype=bool)
    for i in range(bsz):
        n = int(mask_prob * lens[i] / mask_length + rng.uniform())
        starts = rng.choice(lens[i] - mask_length + 1, max(n, 1), replace=False)
        for s in starts:
            mask[i, s : s + mask_length] = True
    return mask


def sample_negatives(tt_lens, mask, num):
    bsz, tt = mask.shape
    neg = np.zeros((bsz, tt, num), dtype=np.int64)
    for i in range(bsz):
        hi = tt_lens[i] - 1
        for j in range(tt):
            cand = rng.integers(0, hi, num)
            cand[cand >= j] += 1  # never the frame itself
            neg[i, j] = cand + i * tt
    return neg


model = Wav2Vec2()
Wt = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(Wt[n]))
T = out_len(S)
feat_lens = np.array([out_len(n) for n in lengths])
pad_mask = torch.from_numpy(np.arange(T)[None] >= feat_lens[:, None])
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
total, warm = 10, 3
sched = torch.optim.lr_scheduler.LambdaLR(
    opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / (total - warm))
)
contrastive, diversity, ppls, temps = [], [], [], []
for step in range(total):
    model.quantizer.temperature = max(2.0 * 0.9**step, 0.5)
    temps.append(model.quantizer.temperature)
    tmask_np = compute_mask_indices((B, T), 0.5, 3, feat_lens)
    tmask = torch.from_numpy(tmask_np)
    gumbel = -np.log(-np.log(rng.uniform(1e-6, 1 - 1e-6, (B * T * G, V))))
    gumbel = torch.from_numpy(gumbel.astype(np.float32))
    hid, q, ppl, codes, _ = model(wav, pad_mask, tmask, gumbel)
    neg_idx = torch.from_numpy(sample_negatives(feat_lens, tmask_np, K))
    negs = q.reshape(B * T, -1)[neg_idx.view(-1)].view(B, T, K, -1).permute(2, 0, 1, 3)
    targets = torch.cat([q.unsqueeze(0), negs], 0)  # (1 + K, B, T, D)
    logits = torch.cosine_similarity(hid.float(), targets.float(), dim=-1) / 0.1
    # Hugging Face compares the vectors, (q == negs).all(-1): equal codes give equal rows only
    # if the BLAS computes every row of project_q alike, which OpenBLAS's Haswell kernels do not
    # (7 matches in PyTorch, 5 in descent at step 1); the code indices say the same exactly
    neg_codes = codes.reshape(B * T, G)[neg_idx.view(-1)].view(B, T, K, G).permute(2, 0, 1, 3)
    neg_is_pos = (codes.unsqueeze(0) == neg_codes).all(-1)
    logits[1:][neg_is_pos] = float("-inf")
    logits = logits.transpose(0, 2).reshape(-1, logits.size(0))  # (T * B, 1 + K)
    target = ((1 - tmask.long()) * -100).transpose(0, 1).flatten()
    loss_c = F.cross_entropy(logits.float(), target, reduction="sum")
    loss_d = (G * V - ppl) / (G * V) * tmask.sum()
    loss = loss_c + 0.1 * loss_d
    opt.zero_grad()
    (loss / tmask.sum()).backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    sched.step()
    contrastive.append(loss_c.item())
    diversity.append(loss_d.item())
    ppls.append(ppl.item())

model.eval()
with torch.no_grad():
    none = torch.zeros(B, T, dtype=torch.bool)
    hid, q, ppl, codes, h = model(wav, pad_mask, none, torch.zeros(B * T * G, V))
    pooled = (h * (~pad_mask).unsqueeze(-1)).sum(1) / (~pad_mask).sum(1, keepdim=True)

report(
    T=T,
    temps=temps,
    contrastive=contrastive,
    ppls=ppls,  # the diversity loss (G V - ppl) / (G V) cancels ~50-fold: ppl is reported
    eval_ppl=ppl.item(),
    codes=codes[0, :10].tolist(),
    pooled=pooled.sum(1).tolist(),
    wn_params=[n for n, _ in model.pos.named_parameters()],
)
