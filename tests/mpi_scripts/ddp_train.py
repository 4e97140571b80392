"""Train a tiny float64 GPT with AdamW, data parallel under mpirun or alone; save the result.

    mpirun -n 2 python ddp_train.py --out run2.npz      # 2 ranks, local batch B/2
    python ddp_train.py --out run1.npz                  # 1 process, batch B

Every rank starts from a DIFFERENT random init (seed + rank): DDP must broadcast rank 0's.
The global batch is drawn from one seeded stream and each rank keeps its rows, so N ranks and
one process see the same data. Rank 0 writes the final parameters (and, with --hash, one
digest per step and rank, to check that replicas stay bitwise identical).
"""

import argparse
import hashlib

import numpy as np

import descent
import descent.distributed as dist
from descent.models import GPT, GPTConfig
from descent.optim import AdamW

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=10)
p.add_argument("--batch", type=int, default=4, help="global batch")
p.add_argument("--accum", type=int, default=1, help="micro-batches per step (no_sync)")
p.add_argument("--bucket-mb", type=float, default=0.01)
p.add_argument("--dtype", default="float64")
p.add_argument("--hash", action="store_true")
p.add_argument("--out", required=True)
args = p.parse_args()

world = dist.get_world_size()  # 1 without mpirun: nothing initialised
rank = dist.get_rank()
cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
descent.manual_seed(1234 + rank)  # deliberately different per rank
model = GPT(cfg)
if args.dtype == "float64":
    model = model.double()
net = dist.DistributedDataParallel(model, bucket_mb=args.bucket_mb) if world > 1 else model
opt = AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.99), weight_decay=0.1)

data_rng = np.random.default_rng(7)
digests = []
for _step in range(args.steps):
    for micro in range(args.accum):
        x_all = data_rng.integers(0, cfg.vocab_size, size=(args.batch, cfg.block_size + 1))
        (x_loc,) = dist.shard_rows((x_all,), rank, world)
        x = descent.tensor(x_loc[:, :-1])
        y = descent.tensor(x_loc[:, 1:])
        last = micro == args.accum - 1
        if world > 1 and not last:
            with net.no_sync():
                _, loss = net(x, y)
                (loss / args.accum).backward()
        else:
            _, loss = net(x, y)
            (loss / args.accum).backward()
    opt.step()
    opt.zero_grad()
    if args.hash:
        h = hashlib.sha256()
        for _, prm in model.named_parameters():
            h.update(np.ascontiguousarray(prm._data).tobytes())
        digests.append(h.hexdigest())

state = {n: prm.numpy() for n, prm in model.named_parameters()}
everyone = dist.all_gather_object(digests)
if rank == 0:
    np.savez(args.out, **state)
    if args.hash:
        with open(args.out + ".hashes", "w") as f:
            for r, ds in enumerate(everyone):
                f.write(" ".join([str(r)] + ds) + "\n")
    if world > 1:
        print("ddp stats:", net.stats, "buckets:", net.bucket_sizes, flush=True)
print(f"rank {rank}: DONE", flush=True)
