# The data side of an NLP training script, in the shape of the torchtext-free text
# classification tutorials and of HuggingFace-style collators (our own program): a vocabulary
# from collections.Counter with specials, a map-style Dataset returning dicts, a bucketing
# batch Sampler subclass (sort within chunks, yield index lists) passed as batch_sampler=, a
# collate_fn that pads with pad_sequence (batch_first, padding_value, padding_side="left"),
# builds attention masks and lengths, and keeps strings and NumPy scalars; default_collate on
# dicts / namedtuples / tuples / NumPy arrays / Python numbers and strings, default_convert;
# StackDataset, ConcatDataset, ChainDataset over IterableDatasets, Subset of a Subset,
# BatchSampler over a SequentialSampler, DataLoader(batch_size=None), drop_last; a GRU
# classifier over pack_padded_sequence(enforce_sorted=False), pad_packed_sequence(total_length=),
# unpad_sequence / unpack_sequence / pack_sequence round trips, a masked mean pooling, class
# weights from label counts, Adam + StepLR, macro-F1 by bincount.
import collections
import re

import numpy as np
import torch
from compat_helpers import reference_weights, report
from torch import nn
from torch.nn.utils.rnn import (
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpack_sequence,
    unpad_sequence,
)
from torch.utils.data import (
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    Sampler,
    SequentialSampler,
    StackDataset,
    Subset,
    TensorDataset,
)
from torch.utils.data._utils.collate import default_collate, default_convert

rng = np.random.default_rng(42)

WORDS = {0: "good great fine lovely superb nice happy".split(),
         1: "bad awful poor sad terrible ugly grim".split(),
         2: "table chair window river paper stone cloud".split()}
FILLER = "the a of and to is it this that was".split()


def make_corpus(n):
    texts, labels = [], []
    for i in range(n):
        y = int(rng.integers(0, 3))
        length = int(rng.integers(3, 12))
        toks = [str(rng.choice(WORDS[y])) if rng.uniform() < 0.4 else str(rng.choice(FILLER))
                for _ in range(length)]
        texts.append(" ".join(toks).capitalize() + ("!" if y == 0 else "."))
        labels.append(y)
    return texts, labels


def tokenize(text):
    return re.findall(r"[a-z]+|[!.]", text.lower())


texts, labels = make_corpus(120)
counter = collections.Counter()
for t in texts:
    counter.update(tokenize(t))
specials = ["<pad>", "<unk>", "<bos>"]
itos = specials + [w for w, c in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
                   if c >= 2]
stoi = {w: i for i, w in enumerate(itos)}
PAD, UNK, BOS = 0, 1, 2


class TextDataset(Dataset):
    def __init__(self, texts, labels):
        self.texts, self.labels = texts, labels

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, idx):
        ids = [BOS] + [stoi.get(tok, UNK) for tok in tokenize(self.texts[idx])]
        return {"input_ids": torch.tensor(ids, dtype=torch.long), "label": self.labels[idx],
                "text": self.texts[idx], "weight": np.float32(1.0 + 0.1 * (idx % 3))}


class BucketBatchSampler(Sampler):
    def __init__(self, lengths, batch_size, chunk=4, drop_last=False):
        self.lengths = lengths
        self.batch_size = batch_size
        self.chunk = chunk
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        order = np.random.default_rng(self.epoch).permutation(len(self.lengths))
        span = self.batch_size * self.chunk
        batches = []
        for s in range(0, len(order), span):
            block = sorted(order[s:s + span].tolist(), key=lambda i: self.lengths[i])
            for b in range(0, len(block), self.batch_size):
                batch = block[b:b + self.batch_size]
                if len(batch) < self.batch_size and self.drop_last:
                    continue
                batches.append(batch)
        yield from batches

    def __len__(self):
        if self.drop_last:
            return len(self.lengths) // self.batch_size
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size


def collate_batch(batch, padding_side="right"):
    ids = [item["input_ids"] for item in batch]
    lengths = torch.tensor([len(x) for x in ids])
    input_ids = pad_sequence(ids, batch_first=True, padding_value=PAD, padding_side=padding_side)
    attention_mask = (input_ids != PAD).long()
    labels = torch.tensor([item["label"] for item in batch])
    weights = default_collate([item["weight"] for item in batch])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "lengths": lengths,
            "labels": labels, "weights": weights, "texts": [item["text"] for item in batch]}


dataset = TextDataset(texts, labels)
train_set = Subset(dataset, list(range(96)))
val_set = Subset(dataset, list(range(96, 120)))
train_lengths = [len(dataset[i]["input_ids"]) for i in train_set.indices]
sampler = BucketBatchSampler(train_lengths, batch_size=8, chunk=3, drop_last=True)
loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=collate_batch)
val_loader = DataLoader(val_set, batch_size=8, shuffle=False, collate_fn=collate_batch)

first = next(iter(loader))
left = collate_batch([dataset[i] for i in range(3)], padding_side="left")
pipeline = {"vocab": len(itos), "itos_head": itos[:12], "n_batches": len(loader),
            "first_ids": first["input_ids"].tolist(),
            "first_mask": first["attention_mask"].tolist(),
            "first_weights": first["weights"].tolist(), "first_texts": first["texts"][:2],
            "weights_dtype": str(first["weights"].dtype).split(".")[-1],
            "left_padded": left["input_ids"].tolist(),
            "batch_lengths": [b["lengths"].tolist() for b in loader]}


# ------------------------------------------------------------- collate and dataset utilities
Point = collections.namedtuple("Point", ["x", "y"])
samples = [{"a": np.array([1.0, 2.0]), "b": (3, "s%d" % i), "c": Point(torch.ones(2) * i, 2.5),
            "d": [i, i + 1]} for i in range(3)]
dc = default_collate(samples)
collated = {"a": [dc["a"].tolist(), str(dc["a"].dtype).split(".")[-1]], "b0": dc["b"][0].tolist(),
            "b1": list(dc["b"][1]), "c_type": type(dc["c"]).__name__,
            "cx": dc["c"].x.tolist(),
            "cy": [dc["c"].y.tolist(), str(dc["c"].y.dtype).split(".")[-1]],
            "d": [t.tolist() for t in dc["d"]]}
conv = default_convert({"n": np.arange(3), "s": "text", "t": (np.float64(1.5), 2)})
collated["convert"] = [type(conv["n"]).__name__, conv["n"].tolist(), conv["s"],
                       type(conv["t"][0]).__name__, conv["t"][1]]


class Countdown(IterableDataset):
    def __init__(self, start, stop):
        self.start, self.stop = start, stop

    def __iter__(self):
        return iter(range(self.start, self.stop, -1))


chain = ChainDataset([Countdown(5, 2), Countdown(10, 7)])
concat = ConcatDataset([TensorDataset(torch.arange(4.0)), TensorDataset(torch.arange(10.0, 13.0))])
stack = StackDataset(ids=TensorDataset(torch.arange(5)), sq=TensorDataset(torch.arange(5) ** 2))
stack_t = StackDataset(TensorDataset(torch.arange(3)), TensorDataset(torch.arange(3) * 10))
nested = Subset(Subset(concat, [6, 5, 4, 3, 2]), [0, 2, 4])
bs = list(BatchSampler(SequentialSampler(range(10)), batch_size=4, drop_last=False))
bs_drop = list(BatchSampler(SequentialSampler(range(10)), batch_size=4, drop_last=True))
no_batch = [[type(x).__name__, x[0].tolist()]
            for x in DataLoader(TensorDataset(torch.arange(6.0).view(3, 2)), batch_size=None)]
chain_loader = [b.tolist() for b in DataLoader(chain, batch_size=3)]
datasets = {"chain": list(chain), "concat": [concat[i][0].item() for i in range(len(concat))],
            "cumulative": concat.cumulative_sizes, "stack": stack[3],
            "stack_t": [[a[0].item() for a in stack_t[i]] for i in range(len(stack_t))],
            "stack_len": len(stack), "nested": [nested[i][0].item() for i in range(3)],
            "bs": bs, "bs_drop": bs_drop, "no_batch": no_batch, "chain_loader": chain_loader}
datasets["stack"] = {k: v[0].item() for k, v in datasets["stack"].items()}


# ------------------------------------------------------------- rnn utilities round trips
seqs = [torch.arange(1.0, n + 1).unsqueeze(-1).repeat(1, 2) * (i + 1)
        for i, n in enumerate([4, 2, 5])]
padded = pad_sequence(seqs)  # time-major
unpadded = unpad_sequence(padded, torch.tensor([4, 2, 5]))  # transposes `padded` in place
unpadded[0][0] = -1.0  # a copy: `padded` keeps its value
packed = pack_sequence(seqs, enforce_sorted=False)
unpacked = unpack_sequence(packed)
rnn_utils = {"padded_shape": list(padded.shape), "padded_00": padded[0, 0].tolist(),
             "unpadded": [u.tolist() for u in unpadded],
             "batch_sizes": packed.batch_sizes.tolist(),
             "sorted_indices": packed.sorted_indices.tolist(),
             "unsorted_indices": packed.unsorted_indices.tolist(),
             "unpacked": [u.tolist() for u in unpacked]}


# ------------------------------------------------------------- the model
class GRUClassifier(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden, num_class):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.gru = nn.GRU(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(4 * hidden, num_class)

    def forward(self, input_ids, lengths, attention_mask):
        emb = self.embedding(input_ids)
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        out, h_n = self.gru(packed)
        out, out_lengths = pad_packed_sequence(out, batch_first=True,
                                               total_length=input_ids.shape[1])
        mask = attention_mask.unsqueeze(-1).float()
        mean = (out * mask).sum(1) / mask.sum(1)
        last = torch.cat([h_n[-2], h_n[-1]], dim=-1)
        return self.fc(torch.cat([mean, last], dim=-1)), out_lengths


model = GRUClassifier(len(itos), 12, 16, 3)
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
    model.embedding.weight[PAD].zero_()
counts = torch.bincount(torch.tensor(labels[:96]), minlength=3).float()
class_weights = counts.sum() / (3 * counts)
criterion = nn.CrossEntropyLoss(weight=class_weights, reduction="none")
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
losses, out_len_ok = [], True
for epoch in range(2):
    sampler.set_epoch(epoch)
    model.train()
    for batch in loader:
        logits, out_lengths = model(batch["input_ids"], batch["lengths"],
                                    batch["attention_mask"])
        out_len_ok = out_len_ok and torch.equal(out_lengths, batch["lengths"])
        loss = (criterion(logits, batch["labels"]) * batch["weights"]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    scheduler.step()

model.eval()
preds, golds = [], []
with torch.no_grad():
    for batch in val_loader:
        logits, _ = model(batch["input_ids"], batch["lengths"], batch["attention_mask"])
        preds.append(logits.argmax(-1))
        golds.append(batch["labels"])
preds, golds = torch.cat(preds), torch.cat(golds)
tp = torch.bincount(golds[preds == golds], minlength=3).float()
pred_count = torch.bincount(preds, minlength=3).float()
gold_count = torch.bincount(golds, minlength=3).float()
f1 = 2 * tp / (pred_count + gold_count).clamp(min=1)
pad_row_grad = model.embedding.weight.grad[PAD].abs().sum().item()

report(pipeline=pipeline, collated=collated, datasets=datasets, rnn_utils=rnn_utils,
       losses=losses, out_len_ok=bool(out_len_ok), preds=preds.tolist(),
       macro_f1=f1.mean().item(), pad_row_grad=pad_row_grad,
       lr=scheduler.get_last_lr())
