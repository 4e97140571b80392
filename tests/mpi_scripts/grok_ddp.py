"""Run under mpirun -n 2: data parallel with a Grok whose ranks route to different experts.

The model is set up so that routing is known: attention's output projection is zero (the MoE
reads the embeddings), token t's embedding points along dimension t % 4, and the router's
expert j reads dimension j (top-1). Rank 0's tokens use experts 0 and 1, rank 1's experts 1
and 2, and no rank uses expert 3. The composite sparse dispatch (MoE(fused=False)) never runs
an expert without tokens, so on each rank some experts are absent from the graph; they must
still take part in the allreduce (the fused experts' op, run second, gives them zeros):

* every parameter's gradient on every rank is the mean of the ranks' local gradients (float64,
  1e-12; a local gradient that does not exist counts as zeros);
* expert 0 gets rank 0's gradient / 2, expert 2 rank 1's / 2, expert 3 exact zeros;
* after 3 AdamW steps the two replicas are bitwise equal.

Prints GROK DDP OK on each rank on success.
"""

import numpy as np

import descent
import descent.distributed as dist
from descent.models import Grok, GrokConfig

dist.init()
rank, world = dist.get_rank(), dist.get_world_size()
assert world == 2, f"launch with mpirun -n 2 (got {world})"

E, D, V = 4, 8, 8
cfg = GrokConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_kv_head=1, head_dim=4,
                 n_embd=D, widening_factor=2.0, num_experts=E, num_selected_experts=1)  # fmt: skip


def build(fused: bool) -> Grok:
    descent.manual_seed(0)
    model = Grok(cfg).double()
    model.h[0].moe.fused = fused
    rng = np.random.default_rng(0)
    emb = np.zeros((V, D))
    for t in range(V):
        emb[t, t % E] = 1.0  # the routing direction
        emb[t, E:] = 0.3 * rng.standard_normal(D - E)  # something for the experts to compute
    router = np.zeros((E, D))
    router[:, :E] = 10.0 * np.eye(E)  # expert j's logit reads dimension j
    with descent.no_grad():
        model.wte.weight.copy_(descent.tensor(emb, dtype=descent.float64))
        model.h[0].attn.linear.weight.copy_(descent.zeros((D, D), dtype=descent.float64))
        model.h[0].moe.router.linear.weight.copy_(descent.tensor(router, dtype=descent.float64))
    return model


def batch(r: int):
    tokens = [0, 1, 4, 5] if r == 0 else [1, 2, 5, 6]  # experts {0, 1} / {1, 2}
    rng = np.random.default_rng(10 + r)
    x = rng.choice(tokens, size=(2, 8))
    y = rng.integers(0, V, size=(2, 8))
    return descent.tensor(x), descent.tensor(y)


def check(fused: bool) -> None:
    # Each rank's local gradients, without data parallelism (both ranks compute both).
    local = []
    for r in range(world):
        ref = build(fused)
        _, loss = ref(*batch(r))
        loss.backward()
        used = ref.h[0].moe.last_stats.tokens_per_expert
        expect_used = [1, 1, 0, 0] if r == 0 else [0, 1, 1, 0]
        assert [int(u > 0) for u in used] == expect_used, (r, used)
        local.append({n: (p.grad.numpy().copy() if p.grad is not None else None)
                      for n, p in ref.named_parameters()})  # fmt: skip
    # The scenario holds: each rank leaves some expert out of its graph (fused: zero gradients).
    for r, name in ((0, "2"), (1, "0"), (0, "3"), (1, "3")):
        gr = local[r][f"h.0.moe.experts.{name}.linear.weight"]
        assert (gr is None) if not fused else (gr is not None and not gr.any()), (fused, r, name)

    model = build(fused)
    ddp = dist.DistributedDataParallel(model, bucket_mb=0.0001)  # many small buckets
    _, loss = ddp(*batch(rank))
    loss.backward()
    for n, p in model.named_parameters():
        assert p.grad is not None, f"{n}: no gradient after a synchronised backward on rank {rank}"
        parts = [loc[n] if loc[n] is not None else np.zeros(p.shape) for loc in local]
        np.testing.assert_allclose(p.grad.numpy(), sum(parts) / world, rtol=1e-12, atol=1e-15,
                                   err_msg=n)  # fmt: skip
    g = {n: p.grad.numpy() for n, p in model.named_parameters()}
    w0, w2 = "h.0.moe.experts.0.linear.weight", "h.0.moe.experts.2.linear.weight"
    np.testing.assert_allclose(g[w0], local[0][w0] / 2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g[w2], local[1][w2] / 2, rtol=1e-12, atol=1e-15)
    assert np.abs(g[w0]).max() > 0 and np.abs(g[w2]).max() > 0
    for n in g:
        if ".experts.3." in n:
            assert np.all(g[n] == 0), n

    # Three AdamW steps: the replicas stay bitwise equal (the unused experts move only by decay).
    opt = model.configure_optimizers(0.1, 1e-2, (0.9, 0.99))
    opt.step()
    for _ in range(2):
        opt.zero_grad(set_to_none=True)
        _, loss = ddp(*batch(rank))
        loss.backward()
        opt.step()
    mine = {n: p.numpy().tobytes() for n, p in model.named_parameters()}
    theirs = dist.all_gather_object(mine)
    for n in mine:
        assert theirs[0][n] == theirs[1][n], f"{n} differs between the ranks"


for fused in (False, True):
    check(fused)
print(f"rank {rank}: GROK DDP OK", flush=True)
