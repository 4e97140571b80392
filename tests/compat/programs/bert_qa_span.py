# Extractive question answering as HuggingFace's BertForQuestionAnswering and run_qa.py write it
# (our own condensed rewrite): BertEmbeddings (word + position + token_type embeddings from a
# registered position_ids buffer and a zero token_type_ids buffer expanded when not given,
# LayerNorm eps 1e-12), get_extended_attention_mask ((1.0 - mask[:, None, None, :]) *
# torch.finfo(dtype).min), BertSelfAttention with transpose_for_scores (view + permute), the
# intermediate GELU, BertSelfOutput's dense + LayerNorm(x + input), a qa_outputs Linear split by
# logits.split(1, dim=-1) into start / end logits squeezed and .contiguous(), positions clamped
# by clamp(0, ignored_index) and CrossEntropyLoss(ignore_index=ignored_index) averaged over start
# and end; [CLS] q [SEP] context [SEP] packing with token type ids, answers out of the span
# mapped to the CLS position, _init_weights (normal std 0.02, LayerNorm ones), AdamW with
# linear decay; post-processing: the n-best start / end indices by torch.topk, a score matrix
# start[:, None] + end[None, :] masked to the context with torch.triu and a max answer length
# (torch.tril(diagonal=L - 1)), argmax over the flattened matrix with divmod, exact match and
# token-F1 by hand.
import collections

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.nn import CrossEntropyLoss

rng = np.random.default_rng(2205)
CLS, SEP, PAD, VOCAB = 1, 2, 0, 50
H, HEADS, LAYERS, MAXLEN = 32, 4, 2, 24


class BertEmbeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB, H, padding_idx=PAD)
        self.position_embeddings = nn.Embedding(MAXLEN, H)
        self.token_type_embeddings = nn.Embedding(2, H)
        self.LayerNorm = nn.LayerNorm(H, eps=1e-12)
        self.dropout = nn.Dropout(0.0)
        self.register_buffer("position_ids", torch.arange(MAXLEN).expand((1, -1)), persistent=False)
        self.register_buffer(
            "token_type_ids",
            torch.zeros(self.position_ids.size(), dtype=torch.long),
            persistent=False,
        )

    def forward(self, input_ids, token_type_ids=None):
        seq_length = input_ids.size(1)
        position_ids = self.position_ids[:, :seq_length]
        if token_type_ids is None:
            buffered = self.token_type_ids[:, :seq_length]
            token_type_ids = buffered.expand(input_ids.shape[0], seq_length)
        embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class BertSelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.num_attention_heads = HEADS
        self.attention_head_size = H // HEADS
        self.all_head_size = H
        self.query = nn.Linear(H, H)
        self.key = nn.Linear(H, H)
        self.value = nn.Linear(H, H)

    def transpose_for_scores(self, x):
        new_x_shape = x.size()[:-1] + (self.num_attention_heads, self.attention_head_size)
        x = x.view(new_x_shape)
        return x.permute(0, 2, 1, 3)

    def forward(self, hidden_states, attention_mask):
        query_layer = self.transpose_for_scores(self.query(hidden_states))
        key_layer = self.transpose_for_scores(self.key(hidden_states))
        value_layer = self.transpose_for_scores(self.value(hidden_states))
        attention_scores = torch.matmul(query_layer, key_layer.transpose(-1, -2))
        attention_scores = attention_scores / (self.attention_head_size**0.5)
        attention_scores = attention_scores + attention_mask
        attention_probs = nn.functional.softmax(attention_scores, dim=-1)
        context_layer = torch.matmul(attention_probs, value_layer)
        context_layer = context_layer.permute(0, 2, 1, 3).contiguous()
        new_context_layer_shape = context_layer.size()[:-2] + (self.all_head_size,)
        return context_layer.view(new_context_layer_shape)


class BertLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = BertSelfAttention()
        self.attn_dense = nn.Linear(H, H)
        self.attn_norm = nn.LayerNorm(H, eps=1e-12)
        self.intermediate = nn.Linear(H, 4 * H)
        self.output = nn.Linear(4 * H, H)
        self.out_norm = nn.LayerNorm(H, eps=1e-12)

    def forward(self, hidden_states, attention_mask):
        a = self.attn_norm(
            self.attn_dense(self.attention(hidden_states, attention_mask)) + hidden_states
        )
        i = nn.functional.gelu(self.intermediate(a))
        return self.out_norm(self.output(i) + a)


class BertForQuestionAnswering(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = BertEmbeddings()
        self.layers = nn.ModuleList([BertLayer() for _ in range(LAYERS)])
        self.qa_outputs = nn.Linear(H, 2)
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=0.02)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=0.02)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)

    def get_extended_attention_mask(self, attention_mask, dtype=torch.float32):
        extended_attention_mask = attention_mask[:, None, None, :]
        extended_attention_mask = extended_attention_mask.to(dtype=dtype)
        return (1.0 - extended_attention_mask) * torch.finfo(dtype).min

    def forward(
        self,
        input_ids,
        attention_mask,
        token_type_ids=None,
        start_positions=None,
        end_positions=None,
    ):
        h = self.embeddings(input_ids, token_type_ids)
        ext = self.get_extended_attention_mask(attention_mask)
        for layer in self.layers:
            h = layer(h, ext)
        logits = self.qa_outputs(h)
        start_logits, end_logits = logits.split(1, dim=-1)
        start_logits = start_logits.squeeze(-1).contiguous()
        end_logits = end_logits.squeeze(-1).contiguous()
        total_loss = None
        if start_positions is not None and end_positions is not None:
            if len(start_positions.size()) > 1:
                start_positions = start_positions.squeeze(-1)
            if len(end_positions.size()) > 1:
                end_positions = end_positions.squeeze(-1)
            ignored_index = start_logits.size(1)
            start_positions = start_positions.clamp(0, ignored_index)
            end_positions = end_positions.clamp(0, ignored_index)
            loss_fct = CrossEntropyLoss(ignore_index=ignored_index)
            start_loss = loss_fct(start_logits, start_positions)
            end_loss = loss_fct(end_logits, end_positions)
            total_loss = (start_loss + end_loss) / 2
        return total_loss, start_logits, end_logits


def make_example():
    q_len, c_len = int(rng.integers(2, 5)), int(rng.integers(8, 15))
    context = rng.integers(10, VOCAB, c_len)
    a_len = int(rng.integers(1, 4))
    a_start = int(rng.integers(0, c_len - a_len + 1))
    answer = context[a_start : a_start + a_len]
    question = np.concatenate([[answer[0] % 7 + 3], rng.integers(10, VOCAB, q_len - 1)])
    ids = [CLS] + question.tolist() + [SEP] + context.tolist() + [SEP]
    tt = [0] * (q_len + 2) + [1] * (c_len + 1)
    off = q_len + 2
    s, e = off + a_start, off + a_start + a_len - 1
    if rng.uniform() < 0.15:
        s, e = 0, 0  # unanswerable: CLS
    pad = MAXLEN - len(ids)
    return ids + [PAD] * pad, tt + [0] * pad, [1] * len(ids) + [0] * pad, s, e, off, off + c_len - 1


examples = [make_example() for _ in range(24)]
ids = torch.tensor([e[0] for e in examples])
tts = torch.tensor([e[1] for e in examples])
am = torch.tensor([e[2] for e in examples])
starts = torch.tensor([e[3] for e in examples])
ends = torch.tensor([e[4] for e in examples])
ends[3] = 99  # a label past the sequence: clamped to ignored_index and ignored

model = BertForQuestionAnswering()
init_std = float(model.qa_outputs.weight.std())
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, eps=1e-6)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / 10))
losses = []
for step in range(8):
    b = slice((step % 3) * 8, (step % 3) * 8 + 8)
    loss, _, _ = model(ids[b], am[b], tts[b], starts[b], ends[b])
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    losses.append(loss.item())
model.eval()
with torch.no_grad():
    _, s_logits, e_logits = model(ids, am)  # token_type_ids from the buffer
    _, s_logits_tt, e_logits_tt = model(ids, am, tts)

max_answer_len = 4
preds, em, f1s = [], 0, []
for i, ex in enumerate(examples):
    lo, hi = ex[5], ex[6]
    sl, el = s_logits_tt[i], e_logits_tt[i]
    nbest_s = torch.topk(sl, 5).indices.tolist()
    scores = sl[:, None] + el[None, :]
    valid = torch.zeros(MAXLEN, MAXLEN, dtype=torch.bool)
    valid[lo : hi + 1, lo : hi + 1] = True
    valid = (
        valid
        & torch.ones(MAXLEN, MAXLEN, dtype=torch.bool).triu()
        & torch.ones(MAXLEN, MAXLEN, dtype=torch.bool).tril(diagonal=max_answer_len - 1)
    )
    scores = scores.masked_fill(~valid, float("-inf"))
    best = int(scores.flatten().argmax())
    s, e = divmod(best, MAXLEN)
    null_score = (sl[0] + el[0]).item()
    if null_score > scores.max().item():
        s, e = 0, 0
    preds.append([s, e, nbest_s[0]])
    gold = ids[i, ex[3] : ex[4] + 1].tolist() if ex[3] > 0 else []
    pred = ids[i, s : e + 1].tolist() if s > 0 else []
    em += int(gold == pred)
    common = collections.Counter(gold) & collections.Counter(pred)
    num_same = sum(common.values())
    if len(gold) == 0 or len(pred) == 0:
        f1s.append(float(gold == pred))
    elif num_same == 0:
        f1s.append(0.0)
    else:
        p, r = num_same / len(pred), num_same / len(gold)
        f1s.append(2 * p * r / (p + r))

report(
    init_std_small=bool(init_std < 0.05),
    losses=losses,
    # the logits up to a constant: softmax cross-entropy over positions ignores a shift, so
    # qa_outputs.bias's gradient is 0 up to rounding and AdamW's steps on it differ by lr
    # (measured: every logit 1.4e-5 apart, log-probabilities equal)
    start_logprobs=s_logits[:2].log_softmax(-1).tolist(),
    tt_changes_logits=bool(not torch.allclose(s_logits, s_logits_tt)),
    preds=preds,
    em=em,
    f1=float(np.mean(f1s)),
    buffers=[n for n, _ in model.named_buffers()],
    sd_has_position_ids=any("position_ids" in k for k in model.state_dict()),
)
