# The training utilities around a model as a HuggingFace-Trainer-style script writes them by hand
# (our own condensed rewrite): a map-style Dataset of variable-length token lists, a
# length-grouped BatchSampler subclass (megabatches sorted by length, order from a NumPy
# permutation, __len__), a collate_fn padding by torch.nn.utils.rnn.pad_sequence(batch_first=True,
# padding_value=) with attention masks and labels, DataLoader(batch_sampler=..., collate_fn=...),
# get_cosine_schedule_with_warmup written as a LambdaLR, gradient accumulation over
# micro-batches with the loss divided by the steps, clip_grad_value_ then clip_grad_norm_ (the
# returned total norm logged), CrossEntropyLoss(label_smoothing=0.1, ignore_index=-100), an EMA
# of the weights by torch.optim.swa_utils.AveragedModel(multi_avg_fn=get_ema_multi_avg_fn(0.9))
# evaluated on its .module, a weight under torch.nn.utils.parametrize (a symmetric
# parametrization registered with register_parametrization, parametrize.cached() at eval),
# a checkpoint of model, optimizer, scheduler, EMA and step written by torch.save into a dict
# and read by torch.load(weights_only=True), training resumed into fresh objects and checked
# step for step against the uninterrupted run.
import io
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.parametrize as parametrize
from compat_helpers import reference_weights, report
from torch.nn.utils.rnn import pad_sequence
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler

rng = np.random.default_rng(2204)
VOCAB, PAD = 30, 0


class ToyTextDataset(Dataset):
    def __init__(self, n):
        self.examples = []
        for _ in range(n):
            length = int(rng.integers(3, 12))
            label = int(rng.integers(0, 3))
            toks = rng.integers(1 + 9 * label, 10 + 9 * label, length)
            toks[rng.uniform(size=length) < 0.3] = rng.integers(1, VOCAB)
            self.examples.append((toks.tolist(), label))

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, idx):
        toks, label = self.examples[idx]
        return {"input_ids": torch.tensor(toks), "labels": label}


class LengthGroupedSampler(Sampler):
    def __init__(self, lengths, batch_size, perm, mega=4):
        self.lengths, self.batch_size, self.perm, self.mega = lengths, batch_size, perm, mega

    def __iter__(self):
        size = self.batch_size * self.mega
        megabatches = [self.perm[i : i + size].tolist() for i in range(0, len(self.perm), size)]
        megabatches = [sorted(m, key=lambda i: -self.lengths[i]) for m in megabatches]
        return iter([i for m in megabatches for i in m])

    def __len__(self):
        return len(self.lengths)


def collate(features):
    ids = pad_sequence([f["input_ids"] for f in features], batch_first=True, padding_value=PAD)
    return {
        "input_ids": ids,
        "attention_mask": (ids != PAD).long(),
        "labels": torch.tensor([f["labels"] for f in features]),
    }


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)


class Classifier(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, d, padding_idx=PAD)
        self.mix = nn.Linear(d, d)
        self.gru = nn.GRU(d, d, batch_first=True)
        self.head = nn.Linear(2 * d, 3)

    def forward(self, input_ids, attention_mask):
        h = torch.tanh(self.mix(self.emb(input_ids)))
        out, _ = self.gru(h)
        m = attention_mask.unsqueeze(-1).float()
        mean = (out * m).sum(1) / m.sum(1)
        last = out[torch.arange(out.size(0)), attention_mask.sum(1) - 1]
        return self.head(torch.cat([mean, last], -1))


def get_cosine_schedule_with_warmup(
    optimizer, num_warmup_steps, num_training_steps, num_cycles=0.5
):
    def lr_lambda(current_step):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        progress = float(current_step - num_warmup_steps) / float(
            max(1, num_training_steps - num_warmup_steps)
        )
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)


def build():
    model = Classifier()
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    parametrize.register_parametrization(model.mix, "weight", Symmetric())
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.01)
    sched = get_cosine_schedule_with_warmup(opt, 2, 12)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    return model, opt, sched, ema


ds = ToyTextDataset(48)
lengths = [len(e[0]) for e in ds.examples]
perms = [rng.permutation(len(ds)) for _ in range(3)]
crit = nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=-100)
ACCUM = 2


def train_epoch(model, opt, sched, ema, epoch, log):
    sampler = LengthGroupedSampler(lengths, 8, perms[epoch])
    loader = DataLoader(
        ds, batch_sampler=BatchSampler(sampler, batch_size=8, drop_last=False), collate_fn=collate
    )
    model.train()
    for i, batch in enumerate(loader):
        logits = model(batch["input_ids"], batch["attention_mask"])
        loss = crit(logits, batch["labels"]) / ACCUM
        loss.backward()
        if (i + 1) % ACCUM == 0:
            torch.nn.utils.clip_grad_value_(model.parameters(), 0.5)
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            ema.update_parameters(model)
            log["loss"].append(loss.item() * ACCUM)
            log["norm"].append(norm.item())
            log["lr"].append(sched.get_last_lr()[0])
            log["shape"].append(list(batch["input_ids"].shape))


def evaluate(net):
    net.eval()
    loader = DataLoader(ds, batch_size=16, shuffle=False, collate_fn=collate)
    correct, total = 0, 0.0
    with torch.no_grad(), parametrize.cached():
        for batch in loader:
            logits = net(batch["input_ids"], batch["attention_mask"])
            total += F.cross_entropy(logits, batch["labels"], reduction="sum").item()
            correct += int((logits.argmax(-1) == batch["labels"]).sum())
    return total / len(ds), correct


# uninterrupted: 3 epochs
model, opt, sched, ema = build()
full = {"loss": [], "norm": [], "lr": [], "shape": []}
for epoch in range(3):
    train_epoch(model, opt, sched, ema, epoch, full)
full_eval = evaluate(model)
ema_eval = evaluate(ema.module)
sym = model.mix.weight
symmetric = bool(torch.equal(sym, sym.T))

# interrupted after epoch 1, checkpointed, resumed into fresh objects
model2, opt2, sched2, ema2 = build()
part = {"loss": [], "norm": [], "lr": [], "shape": []}
train_epoch(model2, opt2, sched2, ema2, 0, part)
buf = io.BytesIO()
torch.save(
    {
        "model": model2.state_dict(),
        "optimizer": opt2.state_dict(),
        "scheduler": sched2.state_dict(),
        "ema": ema2.state_dict(),
        "epoch": 1,
    },
    buf,
)
buf.seek(0)
ckpt = torch.load(buf, weights_only=True)
model3, opt3, sched3, ema3 = build()
model3.load_state_dict(ckpt["model"])
opt3.load_state_dict(ckpt["optimizer"])
sched3.load_state_dict(ckpt["scheduler"])
ema3.load_state_dict(ckpt["ema"])
for epoch in range(ckpt["epoch"], 3):
    train_epoch(model3, opt3, sched3, ema3, epoch, part)
resumed_eval = evaluate(model3)

report(
    full=full,
    resumed_losses=part["loss"],
    resume_equal=part["loss"] == full["loss"],
    full_eval=list(full_eval),
    ema_eval=list(ema_eval),
    resumed_eval=list(resumed_eval),
    symmetric=symmetric,
    sd_keys=sorted(k for k in ckpt["model"] if "mix" in k),
    n_averaged=int(ema.n_averaged),
)
