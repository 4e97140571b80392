"""torch.distributed's rooted collectives, point to point and groups on 2 ranks, any backend.

Run under `mpirun -n 2` (descent's MPI backend) or as two processes with RANK, WORLD_SIZE,
MASTER_ADDR and MASTER_PORT set (the TCP backend); each rank writes what it saw to
`<outdir>/rank<r>.json`. tests/test_distributed.py runs it both ways and compares the two
backends' files with each other and with the values worked out in NumPy.
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np

import descent
import descent.distributed as dist

outdir = Path(sys.argv[1])
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
assert world == 2, f"run with 2 ranks (got {world})"
t = descent.tensor
out: dict = {"backend": "mpi" if dist.launched_by_mpi() else "tcp"}


def base(r: int, dtype=np.float32) -> np.ndarray:
    x = np.array([1.5, -2.0, 0.1, 1e-8, 3.3], dtype) * dtype(r + 1)
    return (x + dtype(0.7) * dtype(r)).astype(dtype)


def errors(fn) -> str:
    try:
        fn()
    except (ValueError, TypeError, RuntimeError) as e:
        return type(e).__name__
    return "no error"


# reduce: every op, to each rank, float32 and float64; the other rank's tensor is unchanged
for dtype in (np.float32, np.float64):
    for dst in range(world):
        for op in ("SUM", "AVG", "MAX", "MIN", "PRODUCT"):
            x = t(base(rank, dtype))
            assert dist.reduce(x, dst=dst, op=getattr(dist.ReduceOp, op)) is None
            out[f"reduce{dst}{op}{np.dtype(dtype).name}"] = x.numpy().tolist()
for op in ("BAND", "BOR", "BXOR", "SUM", "PRODUCT", "MAX"):
    x = t(np.array([rank + 1, 7, 12, -3 * rank], dtype=np.int64))
    dist.all_reduce(x, op=getattr(dist.ReduceOp, op))
    out[f"all_reduce_int{op}"] = x.numpy().tolist()
    x = t(np.array([rank + 5, 7, 12], dtype=np.int32))
    dist.reduce(x, dst=1, op=getattr(dist.ReduceOp, op))
    out[f"reduce_int32{op}"] = [x.numpy().tolist(), str(x.dtype)]

# gather / scatter, each rank the root in turn
for r in range(world):
    slots = [descent.zeros(5) for _ in range(world)] if rank == r else None
    dist.gather(t(base(rank)), slots, dst=r)
    out[f"gather{r}"] = None if slots is None else [s.numpy().tolist() for s in slots]
    y = descent.zeros(2, 2, dtype=descent.float64)
    parts = (
        [t(np.float64([[i, 10 * r + i], [0.5, -i]])) for i in range(world)] if rank == r else None
    )
    dist.scatter(y, parts, src=r)
    out[f"scatter{r}"] = y.numpy().tolist()

# all_to_all (equal and unequal sizes), all_to_all_single (even and with splits)
outs = [descent.zeros(i + 1) for i in range(world)]
dist.all_to_all(outs, [t(np.full(rank + 1, 10.0 * rank + i, np.float32)) for i in range(world)])
out["all_to_all"] = [o.numpy().tolist() for o in outs]
y = descent.zeros(4, dtype=descent.int64)
dist.all_to_all_single(y, t(np.arange(4, dtype=np.int64) + 100 * rank))
out["all_to_all_single_even"] = y.numpy().tolist()
rows = 3  # rank r receives r + 1 rows from each rank
y = descent.zeros((rank + 1) * world, 2)
x = t(np.stack([np.arange(rows, dtype=np.float32) + 100 * rank, -np.ones(rows, np.float32)], 1))
dist.all_to_all_single(y, x, [rank + 1] * world, [1, 2])
out["all_to_all_single"] = y.numpy().tolist()

# reduce_scatter / reduce_scatter_tensor: sum, max, avg
for op in ("SUM", "MAX", "AVG"):
    y = descent.zeros(5)
    dist.reduce_scatter(
        y, [t(base(rank) * np.float32(i + 1)) for i in range(world)], op=getattr(dist.ReduceOp, op)
    )
    out[f"reduce_scatter{op}"] = y.numpy().tolist()
    y = descent.zeros(1, 5)
    dist.reduce_scatter_tensor(
        y,
        t(np.stack([base(rank) * np.float32(i + 1) for i in range(world)])),
        op=getattr(dist.ReduceOp, op),
    )
    out[f"reduce_scatter_tensor{op}"] = y.numpy().tolist()

# point to point: tags out of order, isend/irecv, any source, a batch
peer = 1 - rank
if rank == 0:
    dist.send(t(np.float32([1, 1])), 1, tag=1)
    dist.send(t(np.float32([1, 2])), 1, tag=2)
else:
    a, b = descent.zeros(2), descent.zeros(2)
    got = [dist.recv(b, 0, tag=2), dist.recv(a, src=0, tag=1)]
    out["p2p_tags"] = [got, a.numpy().tolist(), b.numpy().tolist()]
r2 = descent.zeros(2, dtype=descent.float64)
w1 = dist.isend(t(np.float64([rank, 0.5])), peer)
w2 = dist.irecv(r2, peer)
w1.wait(), w2.wait()
out["isend_irecv"] = [w2.is_completed(), r2.numpy().tolist()]
if rank == 0:
    v = descent.zeros(3, dtype=descent.int32)
    out["any_source"] = [dist.recv(v, tag=9), v.numpy().tolist()]
else:
    dist.send(t(np.int32([7, 8, 9])), 0, tag=9)
r1 = descent.zeros(1)
ops = [dist.P2POp(dist.irecv, r1, peer), dist.P2POp(dist.isend, t(np.float32([rank + 0.25])), peer)]
for w in dist.batch_isend_irecv(ops):
    w.wait()
out["batch_isend_irecv"] = r1.item()

# groups: one without rank 0, and the world listed backwards (torch sorts it)
g1 = dist.new_group([1])
g2 = dist.new_group([1, 0])
x = t(base(rank))
with warnings.catch_warnings(record=True) as caught:  # rank 0: torch's warning, a no-op
    warnings.simplefilter("always")
    dist.all_reduce(x, group=g1)
out["g1"] = [
    g1 if g1 == dist.GroupMember.NON_GROUP_MEMBER else [g1.rank(), g1.size()],
    dist.get_rank(g1),
    dist.get_world_size(g1),
    x.numpy().tolist(),
    [str(w.message) for w in caught],
]
x, y, z = t(base(rank)), t(base(rank)), t(base(rank))
dist.all_reduce(x, op=dist.ReduceOp.MAX, group=g2)
dist.broadcast(y, src=1, group=g2)
dist.reduce(z, group_dst=1, group=g2)
slots = [descent.zeros(5) for _ in range(2)] if rank == 0 else None
dist.gather(t(base(rank)), slots, group=g2, group_dst=0)
dist.barrier(group=g2)
v = descent.zeros(1)
if rank == 1:
    dist.send(t(np.float32([42])), group=g2, group_dst=0)
else:
    out["g2_recv"] = [dist.recv(v, src=1, group=g2), v.item()]
out["g2"] = [
    dist.get_process_group_ranks(g2),
    dist.get_group_rank(g2, rank),
    dist.get_global_rank(g2, 1),
    x.numpy().tolist(),
    y.numpy().tolist(),
    z.numpy().tolist(),
    None if slots is None else [s.numpy().tolist() for s in slots],
]

# objects, async handles
objs = [None] * world if rank == 1 else None
dist.gather_object({"r": rank, "s": "x" * rank}, objs, dst=1)
one = [None]
dist.scatter_object_list(one, [f"s{i}" for i in range(world)] if rank == 1 else None, src=1)
out["objects"] = [objs, one]
x = t(base(rank))
w = dist.reduce(x, dst=0, async_op=True)
out["async"] = [w.wait(), w.is_completed(), x.numpy().tolist()]

# errors raised before any message, on every rank alike
out["err_gather_list"] = errors(lambda: dist.gather(t(base(rank)), [t(base(rank))] * 2, dst=peer))
out["err_send_self"] = errors(lambda: dist.send(t(base(rank)), rank))
out["err_band_float"] = errors(lambda: dist.all_reduce(t(base(rank)), op=dist.ReduceOp.BAND))
out["err_avg_int"] = errors(lambda: dist.reduce(t(np.int64([1])), dst=0, op=dist.ReduceOp.AVG))

dist.barrier()
(outdir / f"rank{rank}.json").write_text(json.dumps(out))
dist.destroy_process_group()
print(f"rank {rank}: ROOTED OK", flush=True)
