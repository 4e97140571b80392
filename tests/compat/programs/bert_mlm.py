# A BERT-style masked-language-model pretraining/fine-tune loop in the shape of HuggingFace's
# run_mlm.py and of minimal BERT reimplementations: token + learned position + segment
# embeddings, LayerNorm, a pre-LN nn.TransformerEncoder (norm_first=True, GELU, batch_first,
# enable_nested_tensor=False), src_key_padding_mask, an MLM head whose decoder weight is tied to
# the word embedding (plus its own bias), 15% masking with the 80/10/10 rule decided by a fixed
# NumPy draw and applied with torch.where, labels -100 for unmasked tokens, AdamW with no weight
# decay on biases and LayerNorm weights, get_linear_schedule_with_warmup written as a LambdaLR,
# gradient clipping, and a [CLS] pooler feeding a sequence-classification head.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.optim.lr_scheduler import LambdaLR

rng = np.random.default_rng(23)
PAD, CLS, SEP, MASK = 0, 1, 2, 3
vocab_size, d_model, n_layers, n_heads, max_len = 24, 16, 2, 2, 12


def get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, last_epoch=-1):
    def lr_lambda(current_step: int):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        return max(
            0.0,
            float(num_training_steps - current_step)
            / float(max(1, num_training_steps - num_warmup_steps)),
        )

    return LambdaLR(optimizer, lr_lambda, last_epoch)


class BertEmbeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, d_model, padding_idx=PAD)
        self.position_embeddings = nn.Embedding(max_len, d_model)
        self.token_type_embeddings = nn.Embedding(2, d_model)
        self.LayerNorm = nn.LayerNorm(d_model, eps=1e-12)
        self.dropout = nn.Dropout(0.1)
        self.register_buffer(
            "position_ids", torch.arange(max_len).expand((1, -1)), persistent=False
        )

    def forward(self, input_ids, token_type_ids):
        seq_length = input_ids.size(1)
        position_ids = self.position_ids[:, :seq_length]
        embeddings = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(position_ids)
            + self.token_type_embeddings(token_type_ids)
        )
        return self.dropout(self.LayerNorm(embeddings))


class BertForMaskedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = BertEmbeddings()
        layer = nn.TransformerEncoderLayer(
            d_model,
            n_heads,
            dim_feedforward=4 * d_model,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, n_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.transform = nn.Sequential(
            nn.Linear(d_model, d_model), nn.GELU(), nn.LayerNorm(d_model)
        )
        self.decoder = nn.Linear(d_model, vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.decoder.weight = self.embeddings.word_embeddings.weight  # weight tying
        self.pooler = nn.Linear(d_model, d_model)
        self.classifier = nn.Linear(d_model, 2)

    def forward(self, input_ids, token_type_ids, attention_mask):
        h = self.embeddings(input_ids, token_type_ids)
        h = self.encoder(h, src_key_padding_mask=attention_mask == 0)
        logits = self.decoder(self.transform(h)) + self.bias
        pooled = torch.tanh(self.pooler(h[:, 0]))
        return logits, self.classifier(pooled)


def make_batch(n):
    ids = np.full((n, max_len), PAD)
    types = np.zeros((n, max_len), dtype=np.int64)
    labels_cls = np.zeros(n, dtype=np.int64)
    for i in range(n):
        la, lb = rng.integers(2, 5, size=2)
        a = rng.integers(4, vocab_size, size=la)
        # sentence B continues A (counting up mod vocab) or is random: the classification label
        follow = rng.random() < 0.5
        b = (
            (a[-1] + 1 + np.arange(lb)) % (vocab_size - 4) + 4
            if follow
            else rng.integers(4, vocab_size, size=lb)
        )
        seq = [CLS, *a, SEP, *b, SEP]
        ids[i, : len(seq)] = seq
        types[i, la + 2 : len(seq)] = 1
        labels_cls[i] = int(follow)
    input_ids = torch.from_numpy(ids)
    special = (input_ids == PAD) | (input_ids == CLS) | (input_ids == SEP)
    # DataCollatorForLanguageModeling, with its Bernoulli draws replaced by one NumPy draw
    u = torch.from_numpy(rng.random((n, max_len, 3)).astype(np.float32))
    masked = (u[..., 0] < 0.15) & ~special
    labels = torch.where(masked, input_ids, torch.full_like(input_ids, -100))
    replace = masked & (u[..., 1] < 0.8)
    randomize = masked & ~replace & (u[..., 2] < 0.5)
    random_words = torch.from_numpy(rng.integers(4, vocab_size, size=(n, max_len)))
    corrupted = torch.where(replace, torch.tensor(MASK), input_ids)
    corrupted = torch.where(randomize, random_words, corrupted)
    attention_mask = (input_ids != PAD).long()
    return corrupted, torch.from_numpy(types), attention_mask, labels, torch.from_numpy(labels_cls)


model = BertForMaskedLM()
W = reference_weights(model)
model.load_state_dict({**model.state_dict(), **{k: torch.from_numpy(v) for k, v in W.items()}})
tied = model.decoder.weight is model.embeddings.word_embeddings.weight
n_params = sum(p.numel() for p in model.parameters())

no_decay = ["bias", "LayerNorm.weight", "norm1.weight", "norm2.weight", "norm.weight"]
optimizer_grouped_parameters = [
    {
        "params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)],
        "weight_decay": 0.01,
    },
    {
        "params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)],
        "weight_decay": 0.0,
    },
]
optimizer = torch.optim.AdamW(optimizer_grouped_parameters, lr=3e-3, eps=1e-8)
num_steps = 16
scheduler = get_linear_schedule_with_warmup(
    optimizer, num_warmup_steps=4, num_training_steps=num_steps
)

losses, lrs, mlm_accs = [], [], []
for step in range(num_steps):
    model.train()
    # dropout off (the attention dropout is a float inside MultiheadAttention: 0.0 above)
    model.apply(lambda m: m.eval() if isinstance(m, nn.Dropout) else None)
    input_ids, token_type_ids, attention_mask, labels, cls_labels = make_batch(8)
    logits, cls_logits = model(input_ids, token_type_ids, attention_mask)
    mlm_loss = F.cross_entropy(logits.view(-1, vocab_size), labels.view(-1), ignore_index=-100)
    loss = mlm_loss + F.cross_entropy(cls_logits, cls_labels)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    losses.append(loss.item())
    lrs.append(scheduler.get_last_lr()[0])
    with torch.no_grad():
        sel = labels != -100
        mlm_accs.append((logits.argmax(-1)[sel] == labels[sel]).float().mean().item())

model.eval()
input_ids, token_type_ids, attention_mask, labels, cls_labels = make_batch(4)
with torch.no_grad():
    logits, cls_logits = model(input_ids, token_type_ids, attention_mask)
    probs = logits.softmax(-1)
    top5 = probs[0, 1].topk(5)
    perplexity = math.exp(F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100).item())
report(
    tied=tied,
    n_params=n_params,
    losses=losses,
    lrs=lrs,
    mlm_accs=mlm_accs,
    top5_values=top5.values.tolist(),
    top5_indices=top5.indices.tolist(),
    cls_pred=cls_logits.argmax(-1).tolist(),
    perplexity=perplexity,
    emb_pad_grad_zero=bool(
        model.embeddings.word_embeddings.weight[PAD]
        .eq(torch.from_numpy(W["embeddings.word_embeddings.weight"][PAD]))
        .all()
    ),
)
