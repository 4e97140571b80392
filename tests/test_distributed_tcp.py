"""descent.distributed over TCP sockets: PyTorch's spawn + init_process_group("gloo") route.

No MPI launcher here: `descent.multiprocessing.spawn` starts two ranks that meet at a free port
(rank 0 listens), as the "Getting Started with Distributed Data Parallel" tutorial does. One
spawn runs every check (the ranks write what they saw into files; the test compares them):
rank 0 joins through `env://` (RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT variables, as
torchrun sets) and rank 1 through `tcp://host:port`; then both leave and join again the
tutorial's way (MASTER_ADDR / MASTER_PORT in os.environ, rank and world_size passed).
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import time

import numpy as np
import pytest

import descent
import descent.distributed as dist
import descent.multiprocessing as dmp
from descent.distributed import comm as _comm
from descent.distributed import tcp

_LR, _STEPS, _ROWS = 0.1, 2, 4  # rows per rank


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data():
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((3, 4)).astype(np.float32)
    w2 = rng.standard_normal((1, 3)).astype(np.float32)
    x = rng.standard_normal((2 * _ROWS, 4)).astype(np.float32)
    y = rng.standard_normal((2 * _ROWS, 1)).astype(np.float32)
    return w1, w2, x, y


def _model(scale: float = 1.0):
    w1, w2, _, _ = _data()
    nn = descent.nn
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 1))
    with descent.no_grad():
        model[0].weight.copy_(descent.tensor(w1 * scale))
        model[0].bias.fill_(0.1 * scale)
        model[2].weight.copy_(descent.tensor(w2 * scale))
        model[2].bias.fill_(-0.2 * scale)
    return model


def _train(model, x, y):
    """_STEPS SGD steps of the MSE on (x, y); returns the final parameters."""
    opt = descent.optim.SGD(model.parameters(), lr=_LR)
    for _ in range(_STEPS):
        opt.zero_grad()
        descent.nn.functional.mse_loss(model(descent.tensor(x)), descent.tensor(y)).backward()
        opt.step()
    return [p.detach().numpy().copy() for p in model.parameters()]


def _worker(rank: int, world: int, port: int, outdir: str) -> None:
    out: dict = {}
    # 1. Join: rank 0 through env:// (torchrun's variables), rank 1 through tcp://host:port.
    timeout = datetime.timedelta(seconds=60)
    if rank == 0:
        os.environ.update(RANK="0", WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(port))  # fmt: skip
        dist.init_process_group("gloo", init_method="env://", timeout=timeout)
    else:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world, timeout=timeout)  # fmt: skip
    out["world"] = [dist.get_rank(), dist.get_world_size(), dist.is_initialized(),
                    dist.get_local_rank(), dist.get_backend()]  # fmt: skip

    # 2. Collectives.
    base = np.array([1.5, -2.0, 0.25], dtype=np.float32) * (rank + 1)
    for op in ("SUM", "AVG", "MAX", "MIN"):
        t = descent.tensor(base)
        dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
        out[op] = t.numpy().tolist()
    ti = descent.tensor(np.array([rank + 1, 10], dtype=np.int64))
    dist.all_reduce(ti)
    out["int_sum"] = ti.numpy().tolist()
    for src in (0, 1):
        t = descent.tensor(np.full((2, 2), float(rank + 7), dtype=np.float32))
        dist.broadcast(t, src=src)
        out[f"bcast{src}"] = t.numpy().tolist()
    out["gather"] = [g.numpy().tolist() for g in dist.all_gather(descent.tensor(base))]
    slots = [descent.zeros(3) for _ in range(world)]
    dist.all_gather(slots, descent.tensor(base))
    out["gather_list"] = [s.numpy().tolist() for s in slots]
    out["objects"] = dist.all_gather_object({"rank": rank})
    out["bobj"] = dist.broadcast_object(f"from {rank}", src=1)
    objs = [rank, "x"]
    dist.broadcast_object_list(objs, src=1)
    out["bobj_list"] = objs
    flat, stacked = descent.zeros(6), descent.zeros(2, 3)
    dist.all_gather_into_tensor(flat, descent.tensor(base))
    dist.all_gather_into_tensor(stacked, descent.tensor(base))
    out["into"] = [flat.numpy().tolist(), stacked.numpy().tolist()]
    dist.barrier()
    out["sampler"] = list(iter(dist.DistributedSampler(list(range(6)), shuffle=False)))
    dist.destroy_process_group()
    out["after_destroy"] = dist.is_initialized()

    # 3. The tutorial's way: MASTER_ADDR / MASTER_PORT, rank and world_size passed; then DDP.
    os.environ.pop("RANK", None)
    os.environ.pop("WORLD_SIZE", None)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timeout)
    _, _, x, y = _data()
    model = dist.DistributedDataParallel(_model(1.0 if rank == 0 else 0.5))  # rank 0's weights
    rows = slice(rank * _ROWS, (rank + 1) * _ROWS)
    np.savez(os.path.join(outdir, f"ddp{rank}.npz"), *_train(model, x[rows], y[rows]))

    # 4. A rank that disappears: rank 1 drops its connection; rank 0's next collective raises.
    if rank == 1:
        _comm.communicator().Free()  # as if the process had died
    else:
        try:
            dist.all_reduce(descent.ones(2))
            out["lost_peer"] = None
        except RuntimeError as e:
            out["lost_peer"] = str(e)
    dist.destroy_process_group()
    with open(os.path.join(outdir, f"rank{rank}.json"), "w") as f:
        json.dump(out, f)


def test_two_spawned_ranks_collectives_and_ddp_over_tcp(tmp_path):
    port = _free_port()
    ctx = dmp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=False)
    deadline = time.monotonic() + 120
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.terminate()
            pytest.fail("the two ranks did not finish within 120 s")
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))

    assert r0["world"] == [0, 2, True, 0, "gloo"] and r1["world"] == [1, 2, True, 1, "gloo"]
    a, b = np.float32([1.5, -2.0, 0.25]), np.float32([1.5, -2.0, 0.25]) * 2
    expect = {"SUM": a + b, "AVG": (a + b) / 2, "MAX": np.maximum(a, b), "MIN": np.minimum(a, b)}
    for r in (r0, r1):
        for op, want in expect.items():
            np.testing.assert_array_equal(np.float32(r[op]), want, err_msg=op)
        assert r["int_sum"] == [3, 20]
        assert r["bcast0"] == [[7.0, 7.0]] * 2 and r["bcast1"] == [[8.0, 8.0]] * 2
        assert r["gather"] == r["gather_list"] == [a.tolist(), b.tolist()]
        assert r["objects"] == [{"rank": 0}, {"rank": 1}] and r["bobj"] == "from 1"
        assert r["bobj_list"] == [1, "x"]
        assert r["into"] == [a.tolist() + b.tolist(), [a.tolist(), b.tolist()]]
        assert r["after_destroy"] is False
    assert r0["sampler"] == [0, 2, 4] and r1["sampler"] == [1, 3, 5]

    # DDP over two half batches == one process on the whole batch (float32 rounding).
    _, _, x, y = _data()
    ref = _train(_model(), x, y)
    for rank in (0, 1):
        got = np.load(tmp_path / f"ddp{rank}.npz")
        for i, want in enumerate(ref):
            np.testing.assert_allclose(got[f"arr_{i}"], want, rtol=1e-5, atol=1e-6)
    g0, g1 = np.load(tmp_path / "ddp0.npz"), np.load(tmp_path / "ddp1.npz")
    for k in g0.files:  # replicas hold the same bits: every rank got rank 0's reduced sum
        np.testing.assert_array_equal(g0[k], g1[k])

    assert "rank 1" in r0["lost_peer"] and "closed" in r0["lost_peer"], r0["lost_peer"]


def test_missing_peer_raises_naming_the_address():
    port = _free_port()
    short = datetime.timedelta(seconds=0.2)
    with pytest.raises(RuntimeError, match=rf"127\.0\.0\.1:{port}.*rank\(s\) 1 never connected"):
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0,
                                world_size=2, timeout=short)  # fmt: skip
    with pytest.raises(RuntimeError, match=rf"rank 1 could not reach rank 0 at 127.0.0.1:{port}"):
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=1,
                                world_size=2, timeout=short)  # fmt: skip
    assert not dist.is_initialized()


def test_backend_queries_answer_as_pytorch_on_a_cpu_host():
    assert dist.is_gloo_available() and dist.is_backend_available("gloo")
    assert not dist.is_nccl_available() and not dist.is_backend_available("nccl")
    assert dist.get_default_backend_for_device("cpu") == "gloo"
    assert dist.get_default_backend_for_device(descent.device("cuda:1")) == "nccl"
    with pytest.raises(ValueError, match="meta"):
        dist.get_default_backend_for_device("meta")


def test_world_size_two_needs_an_address_and_a_rank(monkeypatch):
    for var in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match="MASTER_ADDR and MASTER_PORT are not set"):
        dist.init_process_group("gloo", rank=0, world_size=2)
    with pytest.raises(ValueError, match="needs this process's rank"):
        dist.init_process_group("gloo", init_method="tcp://127.0.0.1:1", world_size=2)
    with pytest.raises(ValueError, match="udp://h:1. is not supported"):
        dist.init_process_group("gloo", init_method="udp://h:1", rank=0, world_size=2)
    with pytest.raises(ValueError, match="needs a path: file:///tmp/x"):
        dist.init_process_group("gloo", init_method="file://", rank=0, world_size=2)
    assert tcp.parse_address("tcp://[::1]:29500") == ("::1", 29500)
    assert not dist.is_initialized()
