# ELECTRA's replaced-token detection as the small reimplementations (and HF's run_pretraining
# examples) write it: an MLM generator a fraction of the discriminator's size sharing the token
# and position embeddings (the generator's own Linear projection from the embedding size), 15%
# masking by NumPy probabilities with 80/10/10 replacement, the generator's logits gathered at the
# masked positions only (masked_select / boolean indexing), sampling from them by Gumbel-max with
# NumPy noise under no_grad, is_replaced = sampled != original, the discriminator's per-token
# BCEWithLogits over non-pad positions, total = gen_loss + 50 * disc_loss, a tied MLM decoder
# (F.linear with the embedding matrix and a bias), AdamW with layer-wise lr decay by parameter
# groups, get_linear_schedule_with_warmup written out; then the discriminator's precision /
# recall on replaced tokens and a frozen-encoder classifier.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(41)
VOCAB, PAD, MASK, CLS = 30, 0, 1, 2
B, L, E, HG, HD = 8, 16, 16, 16, 32
lens = rng.integers(10, L + 1, B)
tokens = np.full((B, L), PAD, np.int64)
for i, n in enumerate(lens):
    base = rng.integers(3, 12)
    seq = (base + np.arange(n - 1) * rng.integers(1, 3)) % (VOCAB - 3) + 3
    tokens[i, 0] = CLS
    tokens[i, 1:n] = seq
input_ids = torch.from_numpy(tokens)
attn_mask = input_ids != PAD
labels_cls = torch.from_numpy((lens > 13).astype(np.int64))


class Embeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.word = nn.Embedding(VOCAB, E, padding_idx=PAD)
        self.pos = nn.Embedding(L, E)
        self.ln = nn.LayerNorm(E, eps=1e-12)

    def forward(self, ids):
        pos = torch.arange(ids.size(1)).unsqueeze(0).expand_as(ids)
        return self.ln(self.word(ids) + self.pos(pos))


class Encoder(nn.Module):
    def __init__(self, hidden, layers, embeddings):
        super().__init__()
        self.embeddings = embeddings  # shared module object
        self.embeddings_project = nn.Linear(E, hidden)
        layer = nn.TransformerEncoderLayer(
            hidden,
            2,
            hidden * 2,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=False,
        )
        self.layers = nn.ModuleList(
            [layer]
            + [
                nn.TransformerEncoderLayer(
                    hidden, 2, hidden * 2, dropout=0.0, activation="gelu", batch_first=True
                )
                for _ in range(layers - 1)
            ]
        )

    def forward(self, ids, mask):
        h = self.embeddings_project(self.embeddings(ids))
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=~mask)
        return h


emb = Embeddings()
generator = Encoder(HG, 1, emb)
gen_head = nn.Sequential(nn.Linear(HG, E), nn.GELU(), nn.LayerNorm(E))
gen_bias = nn.Parameter(torch.zeros(VOCAB))
discriminator = Encoder(HD, 2, emb)
disc_head = nn.Sequential(nn.Linear(HD, HD), nn.GELU(), nn.Linear(HD, 1))
modules = nn.ModuleDict(
    dict(gen=generator, gen_head=gen_head, disc=discriminator, disc_head=disc_head)
)
Wt = reference_weights(modules)
with torch.no_grad():
    for n, p in modules.named_parameters():
        p.copy_(torch.from_numpy(Wt[n]))


def mask_tokens(ids):
    ids = ids.clone()
    labels = ids.clone()
    prob = torch.from_numpy(rng.uniform(size=ids.shape).astype(np.float32))
    special = (ids == PAD) | (ids == CLS)
    masked = (prob < 0.15) & ~special
    labels[~masked] = -100
    r = torch.from_numpy(rng.uniform(size=ids.shape).astype(np.float32))
    ids[masked & (r < 0.8)] = MASK
    rand_pos = masked & (r >= 0.8) & (r < 0.9)
    ids[rand_pos] = torch.from_numpy(rng.integers(3, VOCAB, int(rand_pos.sum()))).long()
    return ids, labels, masked


lr, decay_rate, n_layers = 2e-3, 0.8, 2
groups = [
    {
        "params": list(gen_head.parameters())
        + list(generator.embeddings_project.parameters())
        + list(generator.layers.parameters())
        + [gen_bias],
        "lr": lr,
    },
    {"params": list(emb.parameters()), "lr": lr * decay_rate ** (n_layers + 1)},
    {
        "params": list(discriminator.embeddings_project.parameters()),
        "lr": lr * decay_rate**n_layers,
    },
]
for i, layer in enumerate(discriminator.layers):
    groups.append({"params": list(layer.parameters()), "lr": lr * decay_rate ** (n_layers - 1 - i)})
groups.append({"params": list(disc_head.parameters()), "lr": lr})
opt = torch.optim.AdamW(groups, lr=lr, weight_decay=0.01)
total, warm = 12, 2
sched = torch.optim.lr_scheduler.LambdaLR(
    opt, lambda s: s / warm if s < warm else max(0.0, (total - s) / (total - warm))
)
gen_losses, disc_losses, replaced_frac = [], [], []
for step in range(total):
    masked_ids, labels, masked = mask_tokens(input_ids)
    gh = gen_head(generator(masked_ids, attn_mask))
    logits = F.linear(gh, emb.word.weight, gen_bias)
    mlm_logits = logits[masked]
    gen_loss = F.cross_entropy(mlm_logits, labels[masked])
    with torch.no_grad():
        g = -torch.log(
            -torch.log(torch.from_numpy(rng.uniform(1e-9, 1.0, mlm_logits.shape)).float())
        )
        sampled = (mlm_logits + g).argmax(-1)
    disc_in = input_ids.clone()
    disc_in[masked] = sampled
    is_replaced = (disc_in != input_ids).float()
    d_logits = disc_head(discriminator(disc_in, attn_mask)).squeeze(-1)
    disc_loss = F.binary_cross_entropy_with_logits(d_logits[attn_mask], is_replaced[attn_mask])
    loss = gen_loss + 50.0 * disc_loss
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(modules.parameters(), 1.0)
    opt.step()
    sched.step()
    gen_losses.append(gen_loss.item())
    disc_losses.append(disc_loss.item())
    replaced_frac.append(is_replaced.sum().item() / masked.sum().item())

with torch.no_grad():
    masked_ids, labels, masked = mask_tokens(input_ids)
    corrupted = input_ids.clone()
    corrupted[masked] = (input_ids[masked] + 1 - 3) % (VOCAB - 3) + 3
    pred = disc_head(discriminator(corrupted, attn_mask)).squeeze(-1) > 0
    truth = corrupted != input_ids
    tp = (pred & truth & attn_mask).sum().item()
    precision = tp / max(1, (pred & attn_mask).sum().item())
    recall = tp / max(1, truth.sum().item())

for p in discriminator.parameters():
    p.requires_grad_(False)
clf = nn.Linear(HD, 2)
Wc = reference_weights(clf)
with torch.no_grad():
    for n, p in clf.named_parameters():
        p.copy_(torch.from_numpy(Wc[n]))
copt = torch.optim.SGD(clf.parameters(), lr=0.5)
clf_losses = []
feats = discriminator(input_ids, attn_mask)[:, 0]
for _ in range(10):
    cl = F.cross_entropy(clf(feats), labels_cls)
    copt.zero_grad()
    cl.backward()
    copt.step()
    clf_losses.append(cl.item())

report(
    n_groups=len(opt.param_groups),
    group_lrs=[g["initial_lr"] for g in opt.param_groups],
    gen_losses=gen_losses,
    disc_losses=disc_losses,
    replaced_frac=replaced_frac,
    precision=precision,
    recall=recall,
    clf_losses=clf_losses,
    emb_grad_none=emb.word.weight.grad is not None,
)
