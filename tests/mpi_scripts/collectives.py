"""Run under mpirun: every collective of descent.distributed on descent Tensors; exits 0 if OK."""

import numpy as np

import descent
import descent.distributed as dist

dist.init()
rank, n = dist.get_rank(), dist.get_world_size()
assert dist.is_initialized()
assert n >= 2, f"launch with mpirun -n 2 or more (got {n})"
assert dist.is_main() == (rank == 0)
assert 0 <= dist.get_local_rank() < n

# all_reduce works in place on the tensor's array, for every op.
base = np.arange(6, dtype=np.float64).reshape(2, 3)
for op, expect in [
    ("sum", sum(base + r for r in range(n))),
    ("mean", sum(base + r for r in range(n)) / n),
    ("max", base + (n - 1)),
    ("min", base),
]:
    t = descent.tensor(base + rank, dtype=descent.float64)
    arr = t._data
    out = dist.all_reduce(t, op=op)
    assert out is t and t._data is arr, "all_reduce must work in place"
    np.testing.assert_array_equal(t.numpy(), expect, err_msg=op)

# Integer sum and float32 mean.
t = descent.tensor([rank + 1, 10 * (rank + 1)], dtype=descent.int64)
dist.all_reduce(t)
assert t.numpy().tolist() == [n * (n + 1) // 2, 10 * n * (n + 1) // 2]
t32 = descent.tensor([float(rank)])
dist.all_reduce(t32, op="mean")
assert t32.dtype == np.float32 and abs(t32.item() - (n - 1) / 2) < 1e-6

# A non-contiguous tensor is reduced and written back into its view.
big = np.zeros((4, 4))
view = descent.Tensor._wrap(big[:, 1])
view._data[...] = rank + 1
dist.all_reduce(view)
assert np.all(big[:, 1] == n * (n + 1) / 2), big

# broadcast from rank 0 and from the last rank.
b = descent.tensor(np.full(5, float(rank)))
dist.broadcast(b, src=0)
assert np.all(b.numpy() == 0.0)
b = descent.tensor(np.full(5, float(rank)))
dist.broadcast(b, src=n - 1)
assert np.all(b.numpy() == n - 1)

# all_gather: one tensor per rank, in rank order.
g = dist.all_gather(descent.tensor(np.full((2, 2), float(rank))))
assert len(g) == n and all(np.all(gi.numpy() == i) for i, gi in enumerate(g))

# Mismatched shapes in all_gather give a clear error on every rank.
try:
    dist.all_gather(descent.tensor(np.zeros(rank + 1)))
except ValueError as e:
    assert "different shapes" in str(e)
else:
    raise AssertionError("all_gather with different shapes did not raise")

dist.barrier()
print(f"rank {rank}: COLLECTIVES OK", flush=True)
dist.destroy()
