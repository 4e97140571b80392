# A padded-batch text classifier on nn.TransformerEncoder, then the inference code people write
# around it: model.eval() under torch.no_grad() / torch.inference_mode() with a
# src_key_padding_mask (PyTorch's nested-tensor fast path: padded positions come back as 0,
# before the final LayerNorm, so those rows are norm(0)), naive `out.mean(1)` sentence
# embeddings next to masked mean pooling, eval with gradients on (saliency: no fast path),
# frozen weights under grad mode, torch.backends.mha.set_fastpath_enabled(False), a float
# key-padding mask, padding that is not left-aligned, an odd head count, norm_first layers.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(23)
torch.manual_seed(0)

VOCAB, D, H, FF, L, B, CLASSES = 30, 16, 4, 32, 9, 6, 3


class Classifier(nn.Module):
    def __init__(self, nhead=H, norm_first=False):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, D, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(1, L, D))
        layer = nn.TransformerEncoderLayer(
            D, nhead, FF, dropout=0.0, batch_first=True, norm_first=norm_first
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, norm=nn.LayerNorm(D))
        self.head = nn.Linear(D, CLASSES)

    def forward(self, tokens):
        pad = tokens == 0  # (B, L) True at padding
        h = self.emb(tokens) + self.pos[:, : tokens.shape[1]]
        h = self.encoder(h, src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).float()
        pooled = (h * keep).sum(1) / keep.sum(1)
        return self.head(pooled), h


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def batch(n, right_pad=True):
    lengths = rng.integers(3, L + 1, size=n)
    lengths[0] = L  # one full row
    tok = np.zeros((n, L), dtype=np.int64)
    for i, n_i in enumerate(lengths):
        ids = rng.integers(1, VOCAB, size=n_i)
        if right_pad:
            tok[i, :n_i] = ids
        else:
            tok[i, L - n_i :] = ids
    labels = rng.integers(0, CLASSES, size=n)
    return torch.from_numpy(tok), torch.from_numpy(labels)


model = load(Classifier())
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
losses = []
for step in range(8):
    tok, y = batch(B)
    logits, _ = model(tok)
    loss = F.cross_entropy(logits, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())

results = {"losses": losses, "use_nested_tensor": model.encoder.use_nested_tensor}
tok, y = batch(B)
pad = tok == 0


def rows(h):
    return h.norm(dim=-1).flatten().tolist() + h[..., :2].flatten().tolist()


model.eval()
with torch.no_grad():
    logits, h = model(tok)
    results["eval_logits"] = logits.flatten().tolist()
    results["eval_hidden_rows"] = rows(h)
    results["naive_mean_embedding"] = h.mean(1).flatten().tolist()
    results["padded_rows_equal_norm_bias"] = bool(
        torch.allclose(h[pad], model.encoder.norm.bias.expand(int(pad.sum()), D))
    )
    raw = model.encoder(model.emb(tok) + model.pos, src_key_padding_mask=pad)
    results["acc"] = (logits.argmax(-1) == y).float().mean().item()

with torch.inference_mode():
    _, h_inf = model(tok)
    results["inference_mode_rows"] = rows(h_inf)

# saliency: eval mode with gradients on takes the regular path
emb = (model.emb(tok) + model.pos).detach().requires_grad_(True)
out = model.encoder(emb, src_key_padding_mask=pad)
out[:, 0].sum().backward()
results["saliency"] = emb.grad.norm(dim=-1).flatten().tolist()
results["grad_path_rows"] = rows(out.detach())

# frozen encoder used as a feature extractor under grad mode, with a float padding mask
for p in model.parameters():
    p.requires_grad_(False)
fmask = torch.zeros(pad.shape).masked_fill(pad, float("-inf"))
feats = model.encoder(model.emb(tok) + model.pos, src_key_padding_mask=fmask)
results["frozen_float_mask_rows"] = rows(feats)
for p in model.parameters():
    p.requires_grad_(True)

# the fast path switched off, and padding on the left (not left-aligned)
torch.backends.mha.set_fastpath_enabled(False)
results["fastpath_enabled"] = torch.backends.mha.get_fastpath_enabled()
with torch.no_grad():
    results["no_fastpath_rows"] = rows(model(tok)[1])
torch.backends.mha.set_fastpath_enabled(True)
left_tok, _ = batch(B, right_pad=False)
with torch.no_grad():
    results["left_pad_rows"] = rows(model(left_tok)[1])
    results["raw_rows"] = rows(raw)

# an odd head count and pre-norm layers never take the nested path
odd = load(Classifier(nhead=1)).eval()
pre = load(Classifier(norm_first=True)).eval()
with torch.no_grad():
    results["odd_heads_rows"] = rows(odd(tok)[1])
    results["norm_first_rows"] = rows(pre(tok)[1])
results["odd_use_nested"] = odd.encoder.use_nested_tensor
results["pre_use_nested"] = pre.encoder.use_nested_tensor
report(**results)
