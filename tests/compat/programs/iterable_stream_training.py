# Training from a streamed data set the way the torch.utils.data docs and WebDataset-style
# scripts set it up: an IterableDataset over [start, end) whose worker_init_fn rewrites each
# worker's copy (get_worker_info().dataset) to its own shard and seeds NumPy by worker id, the
# loader's interleaving of the two workers' batches in order, an iterable that yields ready-made
# batches under batch_size=None, samples as namedtuples (collated field by field into the same
# namedtuple) and as nested dicts with lists, a collate_fn padding variable-length sequences with
# lengths and masks, drop_last on a stream, a shuffle buffer seeded per epoch, DistributedSampler
# with explicit rank / num_replicas (padding, drop_last, set_epoch), BatchSampler over a
# SequentialSampler, a TensorDataset, len() of loaders; a masked-mean GRU regressor is trained on
# the streamed batches with SGD and momentum, and evaluated per shard.
import collections
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    DistributedSampler,
    IterableDataset,
    SequentialSampler,
    TensorDataset,
    default_collate,
    get_worker_info,
)

Sample = collections.namedtuple("Sample", ["tokens", "target", "meta"])
MAX_LEN, VOCAB = 7, 12


def make_sample(i):
    r = np.random.default_rng(1000 + i)
    n = 2 + i % (MAX_LEN - 1)
    toks = r.integers(1, VOCAB, size=n)
    return toks, float(np.sin(toks.sum() / 5.0))


class RangeStream(IterableDataset):
    def __init__(self, start, end):
        super().__init__()
        assert end > start
        self.start, self.end = start, end

    def __iter__(self):
        for i in range(self.start, self.end):
            toks, y = make_sample(i)
            yield {
                "tokens": torch.from_numpy(toks),
                "target": torch.tensor(y),
                "meta": {"index": i, "tags": [i % 3, int(np.random.randint(0, 100))]},
            }


def worker_init_fn(worker_id):
    worker_info = get_worker_info()
    dataset = worker_info.dataset
    overall_start, overall_end = dataset.start, dataset.end
    per_worker = int(math.ceil((overall_end - overall_start) / float(worker_info.num_workers)))
    dataset.start = overall_start + worker_id * per_worker
    dataset.end = min(dataset.start + per_worker, overall_end)
    np.random.seed(worker_id)


def pad_collate(batch):
    lengths = torch.tensor([len(b["tokens"]) for b in batch])
    padded = torch.zeros(len(batch), int(lengths.max()), dtype=torch.long)
    for j, b in enumerate(batch):
        padded[j, : len(b["tokens"])] = b["tokens"]
    mask = torch.arange(padded.shape[1])[None, :] < lengths[:, None]
    rest = default_collate([{"target": b["target"], "meta": b["meta"]} for b in batch])
    return {"tokens": padded, "lengths": lengths, "mask": mask, **rest}


class PreBatched(IterableDataset):
    """Yields whole batches (batch_size=None): each a namedtuple of tensors."""

    def __init__(self, n_batches, bs):
        self.n_batches, self.bs = n_batches, bs

    def __iter__(self):
        info = get_worker_info()
        wid, nw = (0, 1) if info is None else (info.id, info.num_workers)
        for k in range(wid, self.n_batches, nw):
            idx = range(k * self.bs, (k + 1) * self.bs)
            toks = torch.zeros(self.bs, MAX_LEN, dtype=torch.long)
            ys = []
            for j, i in enumerate(idx):
                t, y = make_sample(i)
                toks[j, : len(t)] = torch.as_tensor(t)
                ys.append(y)
            yield Sample(toks, torch.tensor(ys, dtype=torch.float32), k)


class ShuffleBuffer(IterableDataset):
    def __init__(self, source, size, seed):
        self.source, self.size, self.seed, self.epoch = source, size, seed, 0

    def __iter__(self):
        r = np.random.default_rng(self.seed + self.epoch)
        buf = []
        for item in self.source:
            buf.append(item)
            if len(buf) == self.size:
                yield buf.pop(int(r.integers(len(buf))))
        while buf:
            yield buf.pop(int(r.integers(len(buf))))


class TupleDS(Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        toks, y = make_sample(i)
        return Sample(torch.from_numpy(toks[:2]), y, {"i": i, "odd": bool(i % 2)})


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 8, padding_idx=0)
        self.gru = nn.GRU(8, 8, batch_first=True)
        self.out = nn.Linear(8, 1)

    def forward(self, tokens, mask):
        h, _ = self.gru(self.emb(tokens))
        m = mask.unsqueeze(-1).float()
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1)
        return self.out(pooled).squeeze(-1)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


out = {}
stream = RangeStream(0, 22)
loader = DataLoader(
    stream, batch_size=4, num_workers=2, worker_init_fn=worker_init_fn, collate_fn=pad_collate
)
order, tags = [], []
for batch in loader:
    order.append(batch["meta"]["index"].tolist())
    tags.append([t.tolist() for t in batch["meta"]["tags"]])
out["worker_order"] = order
out["worker_tags"] = tags
out["main_process_info"] = get_worker_info() is None
single = DataLoader(RangeStream(3, 9), batch_size=4, drop_last=True, collate_fn=pad_collate)
out["drop_last_stream"] = [b["meta"]["index"].tolist() for b in single]
out["stream_len"] = sum(
    1 for _ in DataLoader(RangeStream(0, 10), batch_size=3, collate_fn=pad_collate)
)

pre = DataLoader(PreBatched(5, 3), batch_size=None, num_workers=2)
pre_batches = list(pre)
out["prebatched"] = [
    [type(b).__name__, b.meta, list(b.tokens.shape), b.target.dtype == torch.float32]
    for b in pre_batches
]

tuple_loader = DataLoader(TupleDS(), batch_size=4)
tb = next(iter(tuple_loader))
out["namedtuple_batch"] = [
    type(tb).__name__,
    tb.tokens.tolist(),
    tb.target.dtype == torch.float64,
    tb.meta["i"].tolist(),
    tb.meta["odd"].tolist(),
]
out["tuple_loader_len"] = len(tuple_loader)

ds = TupleDS()
dist = []
for rank in range(3):
    s = DistributedSampler(ds, num_replicas=3, rank=rank, shuffle=False)
    s.set_epoch(1)
    dist.append(list(s))
out["distributed"] = dist
out["distributed_drop"] = [
    list(DistributedSampler(ds, num_replicas=3, rank=r, shuffle=False, drop_last=True))
    for r in range(3)
]
out["batch_sampler"] = list(
    BatchSampler(SequentialSampler(range(7)), batch_size=3, drop_last=False)
)

torch.manual_seed(0)
model = load(Regressor())
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
shuffled = ShuffleBuffer(RangeStream(0, 24), size=6, seed=5)
losses, epoch_orders = [], []
for epoch in range(3):
    shuffled.epoch = epoch
    seen = []
    for batch in DataLoader(shuffled, batch_size=6, collate_fn=pad_collate):
        pred = model(batch["tokens"], batch["mask"])
        loss = nn.functional.mse_loss(pred, batch["target"].float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        seen.extend(batch["meta"]["index"].tolist())
    epoch_orders.append(seen)
out["losses"] = losses
out["epoch_orders"] = epoch_orders

model.eval()
with torch.no_grad():
    shard_err = []
    for b in pre_batches:
        mask = b.tokens != 0
        shard_err.append(nn.functional.l1_loss(model(b.tokens, mask), b.target).item())
    xs = torch.stack([b.tokens for b in pre_batches]).view(-1, MAX_LEN)
    ys = torch.cat([b.target for b in pre_batches])
    td = TensorDataset(xs, ys)
    total = 0.0
    for tok, y in DataLoader(td, batch_size=4):
        total += ((model(tok, tok != 0) - y) ** 2).sum().item()
out["shard_err"] = shard_err
out["tensor_dataset_mse"] = total / len(td)
report(**out)
