"""A data-parallel step written with torch.distributed's names, run by mpirun on descent.

Each rank takes its half of a fixed batch; after backward through
nn.parallel.DistributedDataParallel every rank must hold the full-batch gradient, all_reduce
with ReduceOp must sum, and the process group must come and go cleanly.
"""

import numpy as np

import descent as torch
import descent.distributed as dist
import descent.nn as nn

dist.init_process_group(backend="gloo")
rank, world = dist.get_rank(), dist.get_world_size()
assert world == 2, world
assert dist.get_backend() == "gloo"

rng = np.random.default_rng(rank)  # different starts: DDP must copy rank 0's weights
model = nn.Linear(4, 1)
with torch.no_grad():
    model.weight.copy_(torch.from_numpy(rng.standard_normal((1, 4)).astype(np.float32)))
ddp = nn.parallel.DistributedDataParallel(model, device_ids=None, bucket_cap_mb=1)

X = np.arange(32, dtype=np.float32).reshape(8, 4) / 10
Y = np.linspace(-1, 1, 8, dtype=np.float32).reshape(8, 1)
mine = slice(rank * 4, rank * 4 + 4)
loss = ((ddp(torch.from_numpy(X[mine])) - torch.from_numpy(Y[mine])) ** 2).mean()
loss.backward()

# The full-batch gradient from rank 0's weights, computed alone (no DDP) on every rank.
ref = nn.Linear(4, 1)
ref.load_state_dict(model.state_dict())
((ref(torch.from_numpy(X)) - torch.from_numpy(Y)) ** 2).mean().backward()
np.testing.assert_allclose(model.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-5)
np.testing.assert_allclose(model.bias.grad.numpy(), ref.bias.grad.numpy(), rtol=1e-5)

t = torch.tensor([rank + 1.0])
dist.all_reduce(t, op=dist.ReduceOp.SUM)
assert t.item() == 3.0, t
m = torch.tensor([float(rank)])
dist.all_reduce(m, op=dist.ReduceOp.MAX)
assert m.item() == 1.0, m
dist.barrier()
dist.destroy_process_group()
print(f"rank {rank} ok")
