"""Run under mpirun: rank 1 builds a wider model; wrapping it in DDP must fail on every rank."""

import descent
import descent.distributed as dist
from descent import nn

dist.init()
width = 16 if dist.get_rank() == 0 else 24
descent.manual_seed(0)
model = nn.Sequential(nn.Linear(8, width), nn.Tanh(), nn.Linear(width, 4))
dist.DistributedDataParallel(model)
print("UNREACHABLE: DDP accepted different models", flush=True)
