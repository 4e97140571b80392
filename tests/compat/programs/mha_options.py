# nn.MultiheadAttention and the nn.Transformer layers with the options that library code passes
# (fairseq-style encoders, OpenNMT, the "Transformer from nn modules" tutorials, our own
# program): add_bias_kv and add_zero_attn (an extra key / value row, masks padded by one),
# kdim / vdim for cross-attention from another width, need_weights with
# average_attn_weights=False (per-head maps), a 3-D float attn_mask of shape (N * num_heads, L,
# S) as fairseq's relative biases are passed, a boolean key_padding_mask with a bool causal mask,
# the sequence-first layout (batch_first=False) and batch_first=True, F.multi_head_attention_forward
# called directly with the module's in_proj_weight / out_proj (use_separate_proj_weight for
# kdim != embed_dim), a decoder-only LM from nn.TransformerDecoderLayer with memory=None
# replaced by a zero-length memory, nn.TransformerEncoder(enable_nested_tensor=False) with
# is_causal=True and Transformer.generate_square_subsequent_mask, and a hand loop of
# incremental decoding that recomputes with the growing prefix.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(4)
torch.manual_seed(0)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def arr(*shape):
    return torch.from_numpy(rng.standard_normal(shape).astype(np.float32))


results = {}
E, H, L, S, N = 16, 4, 5, 7, 3

# 1. add_bias_kv + add_zero_attn, sequence-first, with padding and a causal-style mask
mha = load(nn.MultiheadAttention(E, H, add_bias_kv=True, add_zero_attn=True))
results["bias_kv_names"] = [n for n, _ in mha.named_parameters()]
q, k = arr(L, N, E), arr(S, N, E)
kpm = torch.zeros(N, S, dtype=torch.bool)
kpm[0, 5:] = True
kpm[2, 6:] = True
am = torch.triu(torch.ones(L, S, dtype=torch.bool), diagonal=3)
out, w = mha(q, k, k, key_padding_mask=kpm, attn_mask=am, average_attn_weights=False)
results["bias_kv_out"] = out.sum(-1).flatten().tolist()
results["bias_kv_weights_shape"] = list(w.shape)
results["bias_kv_weights"] = w.sum(-1).flatten().tolist()
results["bias_kv_last_cols"] = w[..., -2:].flatten().tolist()
(out.pow(2).mean() + w.mean()).backward()
results["bias_kv_grads"] = [mha.bias_k.grad.norm().item(), mha.bias_v.grad.norm().item(),
                            mha.in_proj_weight.grad.norm().item()]  # fmt: skip

# 2. kdim / vdim: cross-attention from a memory of another width, batch_first, float 3-D mask
cross = load(nn.MultiheadAttention(E, H, kdim=10, vdim=6, batch_first=True, bias=False))
results["cross_names"] = [n for n, _ in cross.named_parameters()]
q2, mk, mv = arr(N, L, E), arr(N, S, 10), arr(N, S, 6)
rel_bias = arr(N * H, L, S) * 0.5
o2, w2 = cross(q2, mk, mv, attn_mask=rel_bias)
results["cross_out"] = o2.flatten()[::5].tolist()
results["cross_weights_avg"] = w2.flatten()[::3].tolist()
o2b, _ = cross(q2, mk, mv, attn_mask=rel_bias, need_weights=False)
results["cross_need_weights_false_same"] = torch.allclose(o2, o2b, atol=1e-6)

# 3. F.multi_head_attention_forward with the module's own weights
with torch.no_grad():
    qf, kf = q2.transpose(0, 1), mk.transpose(0, 1)
    vf = mv.transpose(0, 1)
    of, wf = F.multi_head_attention_forward(
        qf, kf, vf, E, H,
        in_proj_weight=None, in_proj_bias=None, bias_k=None, bias_v=None, add_zero_attn=False,
        dropout_p=0.0, out_proj_weight=cross.out_proj.weight, out_proj_bias=None,
        training=False, attn_mask=rel_bias, use_separate_proj_weight=True,
        q_proj_weight=cross.q_proj_weight, k_proj_weight=cross.k_proj_weight,
        v_proj_weight=cross.v_proj_weight, average_attn_weights=True,
    )  # fmt: skip
    results["functional_matches_module"] = torch.allclose(of.transpose(0, 1), o2, atol=1e-5)
    results["functional_weights_match"] = torch.allclose(wf, w2, atol=1e-6)


# 4. a decoder-only LM from TransformerDecoderLayer (self-attention + a zero-length memory)
class DecoderOnlyLM(nn.Module):
    def __init__(self, vocab=20, d=16, nhead=4, layers=2):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(1, 16, d))
        layer = nn.TransformerDecoderLayer(d, nhead, dim_feedforward=32, dropout=0.0,
                                           batch_first=True, norm_first=True)  # fmt: skip
        self.dec = nn.TransformerDecoder(layer, layers, norm=nn.LayerNorm(d))
        self.head = nn.Linear(d, vocab)

    def forward(self, idx, memory):
        T = idx.size(1)
        x = self.emb(idx) + self.pos[:, :T]
        mask = nn.Transformer.generate_square_subsequent_mask(T)
        h = self.dec(x, memory, tgt_mask=mask, tgt_is_causal=True)
        return self.head(h)


lm = load(DecoderOnlyLM())
opt = torch.optim.Adam(lm.parameters(), lr=3e-3)
memory = arr(4, 3, 16) * 0.1
lm_losses = []
for step in range(10):
    start = rng.integers(0, 20, size=(4, 1))
    seq = torch.from_numpy((start + 3 * np.arange(13)) % 20)
    logits = lm(seq[:, :-1], memory)
    loss = F.cross_entropy(logits.reshape(-1, 20), seq[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    lm_losses.append(loss.item())
results["lm_losses"] = lm_losses
lm.eval()
with torch.no_grad():
    idx = torch.tensor([[1, 4], [7, 10]])
    for _ in range(6):
        nxt = lm(idx, memory[:2])[:, -1].argmax(-1, keepdim=True)
        idx = torch.cat([idx, nxt], 1)
results["lm_generated"] = idx.tolist()

# 5. TransformerEncoder with is_causal and a padding mask, sequence-first
enc_layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=24, dropout=0.0, activation="gelu")
enc = load(nn.TransformerEncoder(enc_layer, 2, enable_nested_tensor=False))
src = arr(6, 3, 16)
pad = torch.tensor([[False] * 6, [False] * 4 + [True] * 2, [False] * 5 + [True]])
causal = nn.Transformer.generate_square_subsequent_mask(6)
y = enc(src, mask=causal, src_key_padding_mask=pad, is_causal=True)
results["encoder_out"] = y[:, 0].sum(-1).tolist() + y[:4, 1].sum(-1).tolist()
y.sum().backward()
results["encoder_grad"] = enc.layers[0].self_attn.in_proj_weight.grad.norm().item()
results["mask_values"] = causal[:3, :3].tolist()

# 6. attention weights from a bool mask and an equivalent float mask agree
m3 = load(nn.MultiheadAttention(8, 2, batch_first=True))
x = arr(2, 4, 8)
bool_mask = torch.tensor([[False, True, True, True], [False, False, True, True],
                          [False, False, False, True], [False, False, False, False]])  # fmt: skip
float_mask = torch.zeros(4, 4).masked_fill(bool_mask, float("-inf"))
ob, wb = m3(x, x, x, attn_mask=bool_mask)
of_, wf_ = m3(x, x, x, attn_mask=float_mask)
results["bool_float_same"] = torch.allclose(ob, of_) and torch.allclose(wb, wf_)
results["causal_weights"] = wb[0].tolist()

report(**results)
