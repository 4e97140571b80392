"""Run under mpirun -n 2: DDP corner cases; exits 0 and prints SEMANTICS OK on success.

* a parameter used on one rank only gets (its gradient + zeros) / N on both ranks;
* a parameter no rank used gets a zero gradient;
* user hooks on a parameter still see its local gradient;
* a forward under no_grad records nothing and communicates nothing;
* two forwards then one backward raise a clear error.
"""

import numpy as np

import descent
import descent.distributed as dist
from descent import nn


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(3, 4)
        self.head_a = nn.Linear(4, 1)
        self.head_b = nn.Linear(4, 1)
        self.never = nn.Linear(4, 1)  # no rank ever uses it

    def forward(self, x, use_b: bool):
        h = descent.tanh(self.body(x))
        out = self.head_a(h).sum()
        if use_b:
            out = out + 2.0 * self.head_b(h).sum()
        return out


dist.init()
rank, world = dist.get_rank(), dist.get_world_size()
descent.manual_seed(0)
model = TwoHeads().double()
ddp = dist.DistributedDataParallel(model, bucket_mb=0.0001)
seen = []
model.body.weight.register_hook(lambda g: seen.append(g.shape))

x = descent.tensor(np.linspace(-1, 1, 6).reshape(2, 3) * (rank + 1), dtype=descent.float64)
ddp(x, use_b=(rank == 1)).backward()
assert seen == [(4, 3)], seen

# Reference: each rank's local gradients, computed without DDP on a copy of the same weights.
ref = TwoHeads().double()
ref.load_state_dict(model.state_dict())
local = []
for r in range(world):
    xr = descent.tensor(np.linspace(-1, 1, 6).reshape(2, 3) * (r + 1), dtype=descent.float64)
    ref.zero_grad()
    ref(xr, use_b=(r == 1)).backward()
    local.append(
        {
            n: (p.grad.numpy().copy() if p.grad is not None else np.zeros(p.shape))
            for n, p in ref.named_parameters()
        }
    )
for n, p in model.named_parameters():
    expect = sum(loc[n] for loc in local) / world
    assert p.grad is not None, f"{n} has no grad after a synchronised backward"
    np.testing.assert_allclose(p.grad.numpy(), expect, rtol=1e-12, atol=1e-15, err_msg=n)
assert np.all(model.never.weight.grad.numpy() == 0)

# Evaluation forward: no graph, no communication (rank 1 skips it entirely: no deadlock).
before = ddp.stats["syncs"]
if rank == 0:
    with descent.no_grad():
        ddp(x, use_b=True)
assert ddp.stats["syncs"] == before

# Two forwards, one backward: the second gradient of a parameter is refused.
model.zero_grad()
try:
    (ddp(x, use_b=True) + ddp(x, use_b=True)).backward()
except RuntimeError as e:
    assert "twice" in str(e) or "after synchronisation" in str(e), e
else:
    raise AssertionError("two forwards and one backward were accepted")
print(f"rank {rank}: SEMANTICS OK", flush=True)
