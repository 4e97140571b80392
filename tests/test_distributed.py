"""descent.distributed: collectives, DDP, samplers; multi-rank tests launch `mpirun -n 2`.

Tests marked `mpi` start real MPI jobs (tests/mpi_scripts/*.py) through
`descent.distributed.launch`, which adds `--allow-run-as-root` when needed and `--oversubscribe`.
Every launch has a timeout, so a hang fails the test instead of blocking the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import descent
import descent.distributed as dist
from descent.distributed import launch

HERE = Path(__file__).parent
SCRIPTS = HERE / "mpi_scripts"
SHAKESPEARE = HERE.parent.parent / "shared" / "data" / "tinyshakespeare.txt"
MPI_TIMEOUT = 180  # seconds for one mpirun job; a deadlock fails here instead of hanging


def _clean_env() -> dict[str, str]:
    """This environment without any MPI launcher variables (a plain single process)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_", "SLURM_"))
    }


def _mpirun(n: int, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = _clean_env()
    env["PYTHONUNBUFFERED"] = "1"
    return launch.run(n, [str(a) for a in argv], timeout=MPI_TIMEOUT, env=env, cwd=cwd)


def _show(res: subprocess.CompletedProcess) -> str:
    return (
        f"exit {res.returncode}\n--- stdout\n{res.stdout[-4000:]}\n--- stderr\n{res.stderr[-4000:]}"
    )


# ---------------------------------------------------------------------------------------------
# A world of one: no MPI needed


def test_world_of_one_without_mpi_never_imports_mpi4py():
    code = (
        "import sys, descent, descent.distributed as d\n"
        "assert 'mpi4py' not in sys.modules, 'import descent imported mpi4py'\n"
        "assert (d.get_rank(), d.get_world_size(), d.get_local_rank()) == (0, 1, 0)\n"
        "assert d.is_main() and not d.is_initialized() and not d.launched_by_mpi()\n"
        "d.barrier()\n"
        "t = descent.tensor([1.0, 2.0]); d.all_reduce(t, 'mean'); d.broadcast(t)\n"
        "assert t.numpy().tolist() == [1.0, 2.0]\n"
        "assert [g.numpy().tolist() for g in d.all_gather(t)] == [[1.0, 2.0]]\n"
        "assert 'mpi4py' not in sys.modules, 'a world of one initialised MPI'\n"
        "print('OK')\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0 and "OK" in res.stdout, _show(res)


def test_all_reduce_rejects_bad_op_and_integer_mean():
    with pytest.raises(ValueError, match="op must be one of"):
        dist.all_reduce(descent.tensor([1.0]), op="prod")
    with pytest.raises(TypeError, match="mean"):
        dist.all_reduce(descent.tensor([1, 2], dtype=descent.int64), op="mean")
    with pytest.raises(TypeError, match="descent Tensor"):
        dist.all_reduce(np.ones(2))


def test_sampler_matches_torch_without_shuffle():
    torch_data = pytest.importorskip("torch.utils.data")
    for n, world, drop_last in [(10, 3, False), (10, 3, True), (12, 4, False), (2, 3, False)]:
        for r in range(world):
            ours = list(
                dist.DistributedSampler(
                    range(n), num_replicas=world, rank=r, shuffle=False, drop_last=drop_last
                )
            )
            theirs = list(
                torch_data.DistributedSampler(
                    range(n), num_replicas=world, rank=r, shuffle=False, drop_last=drop_last
                )
            )
            assert ours == theirs, (n, world, r, drop_last)


def test_sampler_shuffled_shards_partition_the_dataset_and_change_with_epoch():
    n, world = 103, 4
    samplers = [dist.DistributedSampler(range(n), world, r, seed=5) for r in range(world)]
    shards = [list(s) for s in samplers]
    assert all(len(s) == len(samplers[0]) == 26 for s in shards)
    flat = sum(shards, [])
    assert set(flat) == set(range(n))  # everything is seen; 1 index repeats as padding
    assert len(flat) - len(set(flat)) == 104 - n
    for s in samplers:
        s.set_epoch(1)
    shards1 = [list(s) for s in samplers]
    assert shards1 != shards and set(sum(shards1, [])) == set(range(n))
    # drop_last: disjoint, equal shares, no padding.
    dl = [list(dist.DistributedSampler(range(n), world, r, drop_last=True)) for r in range(world)]
    assert all(len(s) == n // world for s in dl)
    assert len(set(sum(dl, []))) == (n // world) * world
    with pytest.raises(ValueError, match="rank 4"):
        dist.DistributedSampler(range(n), num_replicas=4, rank=4)


def test_sampler_subset_feeds_a_dataloader():
    from descent.data import DataLoader, TensorDataset

    ds = TensorDataset(descent.tensor(np.arange(10.0)[:, None]))
    seen = []
    for r in range(2):
        sampler = dist.DistributedSampler(ds, num_replicas=2, rank=r, seed=1)
        sampler.set_epoch(3)
        for (xb,) in DataLoader(sampler.subset(), batch_size=2):
            seen += xb.numpy()[:, 0].tolist()
    assert sorted(seen) == list(range(10))


def test_shard_rows_and_sharded_batches_cover_the_global_batch():
    from descent.data import TokenStream

    text = "the quick brown fox jumps over the lazy dog " * 20
    glob = TokenStream(text, seed=3).get_batch("train", 8, 5)
    parts = [
        dist.ShardedBatches(TokenStream(text, seed=3), rank=r, world_size=4).get_batch(
            "train", 8, 5
        )
        for r in range(4)
    ]
    for k in range(2):  # x and y
        stacked = np.concatenate([p[k].numpy() for p in parts])
        np.testing.assert_array_equal(stacked, glob[k].numpy())
        assert all(p[k].shape == (2, 5) for p in parts)
    with pytest.raises(ValueError, match="multiple of 4"):
        dist.shard_rows(np.zeros((6, 2)), 0, 4)
    assert dist.local_batch_size(12, 3) == 4


def _mlp(width=16):
    from descent import nn

    descent.manual_seed(0)
    return nn.Sequential(nn.Linear(8, width), nn.Tanh(), nn.Linear(width, 4))


def test_ddp_world_of_one_passes_through_and_keeps_state_dict_keys():
    model = _mlp()
    ddp = dist.DistributedDataParallel(model)
    assert ddp.module is model
    assert list(ddp.state_dict()) == list(model.state_dict())  # no 'module.' prefix
    assert not any(k.startswith("module.") for k in ddp.state_dict())
    x = descent.randn(3, 8)
    np.testing.assert_array_equal(ddp(x).numpy(), model(x).numpy())
    assert len(list(ddp.parameters())) == 4
    with ddp.no_sync():
        ddp(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_buckets_follow_reverse_parameter_order_and_size_cap():
    from descent import nn

    descent.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(256, 256) for _ in range(8)])  # 8 x (256 KiB + 1 KiB)
    ddp = dist.DistributedDataParallel(model, bucket_mb=0.6)
    names = [n for n, _ in model.named_parameters()]
    order = [ddp._param_names[pos] for b in ddp._buckets for pos in b.params]
    assert order == names[::-1]
    sizes = ddp.bucket_sizes
    assert sum(sizes) == sum(p._data.nbytes for p in model.parameters())
    assert all(s <= 0.6 * 2**20 for s in sizes) and len(sizes) >= 4
    with pytest.raises(ValueError, match="bucket_mb"):
        dist.DistributedDataParallel(model, bucket_mb=0)


def test_mpirun_command_has_root_and_oversubscribe_flags():
    cmd = launch.mpirun_command(2, ["x.py"])
    assert cmd[1:3] == ["-n", "2"] and "--oversubscribe" in cmd and cmd[-1] == "x.py"
    if os.geteuid() == 0:
        assert "--allow-run-as-root" in cmd


# ---------------------------------------------------------------------------------------------
# Real MPI jobs


@pytest.mark.mpi
@pytest.mark.timeout(MPI_TIMEOUT + 30)
def test_collectives_on_two_ranks():
    res = _mpirun(2, SCRIPTS / "collectives.py")
    assert res.returncode == 0, _show(res)
    assert res.stdout.count("COLLECTIVES OK") == 2, _show(res)


def _tcp_pair(script: Path, *argv: str) -> list[subprocess.CompletedProcess]:
    """Two plain processes (RANK / WORLD_SIZE / MASTER_*: the TCP backend) running `script`."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for r in range(2):
        env = _clean_env()
        env.update(RANK=str(r), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        cmd = [sys.executable, str(script), *argv]
        procs.append(subprocess.Popen(cmd, env=env, stdout=-1, stderr=-1, text=True))
    res = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=MPI_TIMEOUT)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        res.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return res


def _rooted_expected(rank: int) -> dict:
    """NumPy's values of tests/mpi_scripts/rooted_p2p_groups.py's results on `rank` of 2."""

    def base(r, dtype=np.float32):
        x = np.array([1.5, -2.0, 0.1, 1e-8, 3.3], dtype) * dtype(r + 1)
        return (x + dtype(0.7) * dtype(r)).astype(dtype)

    want: dict = {}
    for dtype in (np.float32, np.float64):
        x0, x1 = base(0, dtype), base(1, dtype)
        ops = {"SUM": x0 + x1, "AVG": (x0 + x1) / dtype(2), "MAX": np.maximum(x0, x1),
               "MIN": np.minimum(x0, x1), "PRODUCT": x0 * x1}  # fmt: skip
        for dst in range(2):
            for op, v in ops.items():
                want[f"reduce{dst}{op}{np.dtype(dtype).name}"] = (
                    v if rank == dst else base(rank, dtype)
                ).tolist()
    i0, i1 = np.array([1, 7, 12, 0]), np.array([2, 7, 12, -3])
    for op, f in [("BAND", np.bitwise_and), ("BOR", np.bitwise_or), ("BXOR", np.bitwise_xor),
                  ("SUM", np.add), ("PRODUCT", np.multiply), ("MAX", np.maximum)]:  # fmt: skip
        want[f"all_reduce_int{op}"] = f(i0, i1).tolist()
        j = np.array([rank + 5, 7, 12], np.int32)
        want[f"reduce_int32{op}"] = [
            (f(np.int32([5, 7, 12]), np.int32([6, 7, 12])) if rank == 1 else j).tolist(),
            "descent.int32",
        ]
    xs = [base(0), base(1)]
    for r in range(2):
        want[f"gather{r}"] = [x.tolist() for x in xs] if rank == r else None
        want[f"scatter{r}"] = [[rank, 10 * r + rank], [0.5, -rank]]
    want["all_to_all"] = [[10.0 * i + rank] * (i + 1) for i in range(2)]
    want["all_to_all_single_even"] = [2 * rank, 2 * rank + 1, 100 + 2 * rank, 101 + 2 * rank]
    starts = [0, 1]
    want["all_to_all_single"] = [
        [100.0 * i + starts[rank] + j, -1.0] for i in range(2) for j in range(rank + 1)
    ]
    k = np.float32(rank + 1)
    red = {"SUM": xs[0] * k + xs[1] * k, "MAX": np.maximum(xs[0] * k, xs[1] * k),
           "AVG": (xs[0] * k + xs[1] * k) / np.float32(2)}  # fmt: skip
    for op, v in red.items():
        want[f"reduce_scatter{op}"] = v.tolist()
        want[f"reduce_scatter_tensor{op}"] = [v.tolist()]
    if rank == 1:
        want["p2p_tags"] = [[0, 0], [1.0, 1.0], [1.0, 2.0]]
    else:
        want["any_source"] = [1, [7, 8, 9]]
        want["g2_recv"] = [1, 42.0]
    want["isend_irecv"] = [True, [1 - rank, 0.5]]
    want["batch_isend_irecv"] = 1 - rank + 0.25
    warned = ["Running all_reduce on global rank 0 which does not belong to the given group."]
    want["g1"] = (
        [-100, -1, -1, xs[0].tolist(), warned] if rank == 0 else [[0, 1], 0, 1, xs[1].tolist(), []]
    )
    want["g2"] = [[0, 1], rank, 1, np.maximum(*xs).tolist(), xs[1].tolist(),
                  ((xs[0] + xs[1]) if rank == 1 else xs[0]).tolist(),
                  [x.tolist() for x in xs] if rank == 0 else None]  # fmt: skip
    want["objects"] = [[{"r": 0, "s": ""}, {"r": 1, "s": "x"}] if rank == 1 else None, [f"s{rank}"]]
    want["async"] = [True, True, ((xs[0] + xs[1]) if rank == 0 else xs[1]).tolist()]
    want["err_gather_list"] = "ValueError"
    want["err_send_self"] = "ValueError"
    want["err_band_float"] = want["err_avg_int"] = "TypeError"
    return want


@pytest.mark.mpi
@pytest.mark.timeout(2 * MPI_TIMEOUT + 30)
def test_rooted_collectives_p2p_and_groups_under_mpirun_equal_tcp_and_numpy(tmp_path):
    """Every collective session 26 added, on MPI (mpirun -n 2) and on TCP: the same results."""
    runs = {}
    for backend in ("mpi", "tcp"):
        d = tmp_path / backend
        d.mkdir()
        script = SCRIPTS / "rooted_p2p_groups.py"
        if backend == "mpi":
            res = [_mpirun(2, script, d)]
        else:
            res = _tcp_pair(script, str(d))
        for r in res:
            assert r.returncode == 0, _show(r)
        assert sum(r.stdout.count("ROOTED OK") for r in res) == 2, [_show(r) for r in res]
        runs[backend] = [json.loads((d / f"rank{r}.json").read_text()) for r in range(2)]
    for rank in range(2):
        mpi, tcp = runs["mpi"][rank], runs["tcp"][rank]
        assert (mpi.pop("backend"), tcp.pop("backend")) == ("mpi", "tcp")
        assert mpi == tcp, [k for k in mpi if mpi[k] != tcp.get(k)]
        want = _rooted_expected(rank)
        assert sorted(want) == sorted(mpi)
        for key, value in want.items():
            assert mpi[key] == value, (rank, key, mpi[key], value)


@pytest.mark.mpi
@pytest.mark.timeout(2 * MPI_TIMEOUT + 30)
def test_two_ranks_half_batch_equal_one_process_full_batch(tmp_path):
    """10 AdamW steps: N=2 with local batch B/2 == 1 process with batch B (float64, 1e-10)."""
    one = tmp_path / "one.npz"
    two = tmp_path / "two.npz"
    res1 = subprocess.run(
        [sys.executable, SCRIPTS / "ddp_train.py", "--steps", "10", "--batch", "4", "--out", one],
        env=_clean_env(), capture_output=True, text=True, timeout=MPI_TIMEOUT,
    )  # fmt: skip
    assert res1.returncode == 0, _show(res1)
    res2 = _mpirun(2, SCRIPTS / "ddp_train.py", "--steps", "10", "--batch", "4", "--out", two)
    assert res2.returncode == 0, _show(res2)
    a, b = np.load(one), np.load(two)
    assert sorted(a.files) == sorted(b.files) and len(a.files) > 5
    for k in a.files:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-10, atol=1e-12, err_msg=k)
    # Communication overlapped backward: some buckets started before backward ended.
    stats = res2.stdout.split("ddp stats:")[1].split("buckets:")[0]
    early = int(stats.split("'early_buckets':")[1].split("}")[0])
    assert early > 0, res2.stdout


@pytest.mark.mpi
@pytest.mark.timeout(MPI_TIMEOUT + 30)
def test_ddp_unused_parameters_hooks_no_grad_and_double_forward():
    res = _mpirun(2, SCRIPTS / "ddp_semantics.py")
    assert res.returncode == 0, _show(res)
    assert res.stdout.count("SEMANTICS OK") == 2, _show(res)


@pytest.mark.mpi
@pytest.mark.timeout(2 * MPI_TIMEOUT + 30)
def test_gradient_accumulation_with_no_sync_matches_one_process(tmp_path):
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    common = ["--steps", "3", "--batch", "4", "--accum", "2"]
    res1 = subprocess.run(
        [sys.executable, SCRIPTS / "ddp_train.py", *common, "--out", one],
        env=_clean_env(), capture_output=True, text=True, timeout=MPI_TIMEOUT,
    )  # fmt: skip
    assert res1.returncode == 0, _show(res1)
    res2 = _mpirun(2, SCRIPTS / "ddp_train.py", *common, "--out", two)
    assert res2.returncode == 0, _show(res2)
    a, b = np.load(one), np.load(two)
    for k in a.files:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.mpi
@pytest.mark.timeout(MPI_TIMEOUT + 30)
def test_replicas_stay_bitwise_identical_for_50_steps(tmp_path):
    out = tmp_path / "run.npz"
    res = _mpirun(
        2, SCRIPTS / "ddp_train.py", "--steps", "50", "--batch", "2", "--dtype", "float32",
        "--bucket-mb", "0.002", "--hash", "--out", out,
    )  # fmt: skip
    assert res.returncode == 0, _show(res)
    lines = (tmp_path / "run.npz.hashes").read_text().splitlines()
    per_rank = [line.split()[1:] for line in lines]
    assert len(per_rank) == 2 and len(per_rank[0]) == 50
    assert per_rank[0] == per_rank[1]
    assert len(set(per_rank[0])) == 50  # the parameters changed every step


@pytest.mark.mpi
@pytest.mark.timeout(MPI_TIMEOUT + 30)
def test_an_exception_on_one_rank_ends_the_job_with_its_error():
    t0 = time.monotonic()
    res = _mpirun(2, SCRIPTS / "raise_on_rank.py")
    elapsed = time.monotonic() - t0
    out = res.stdout + res.stderr
    assert res.returncode != 0, _show(res)
    assert "boom: rank 1 failed on purpose" in out, _show(res)
    assert "rank 1/2" in out and "Traceback" in out, _show(res)
    assert "UNREACHABLE" not in out
    # Rank 0 was blocked in an all_reduce that can never complete: only the abort ends it.
    # Ending at all (well before the 180 s timeout) is the point; start-up takes ~2 s.
    assert elapsed < 60, f"the job took {elapsed:.1f} s to end"


@pytest.mark.mpi
@pytest.mark.timeout(MPI_TIMEOUT + 30)
def test_ranks_with_different_models_fail_at_start_with_a_clear_message():
    res = _mpirun(2, SCRIPTS / "mismatch.py")
    out = res.stdout + res.stderr
    assert res.returncode != 0, _show(res)
    assert "ranks disagree on the model" in out, _show(res)
    assert (
        "'0.weight' shape (16, 8)" in out and "rank 1 has parameter '0.weight' shape (24, 8)" in out
    )
    assert "UNREACHABLE" not in out


def _step_losses(out: Path) -> dict[int, float]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return {r["step"]: r["loss"] for r in map(json.loads, lines) if r["kind"] == "step"}


def _train_alone(flags, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "descent", "train", *map(str, flags)],
        env=_clean_env(), capture_output=True, text=True, timeout=MPI_TIMEOUT, cwd=cwd,
    )  # fmt: skip


@pytest.mark.mpi
@pytest.mark.timeout(4 * MPI_TIMEOUT + 30)
def test_descent_train_under_mpirun_writes_one_log_and_one_checkpoint(tmp_path):
    data = tmp_path / "corpus.txt"
    text = SHAKESPEARE.read_text()[:60_000] if SHAKESPEARE.exists() else "to be or not " * 5000
    data.write_text(text)
    out = tmp_path / "out"
    flags = [
        "--preset", "baby-gpt", "--data", data, "--n-layer", "1", "--n-head", "2",
        "--n-embd", "16", "--block-size", "16", "--batch-size", "4", "--eval-interval", "3",
        "--eval-iters", "2", "--log-interval", "1", "--gradient-accumulation-steps", "2",
    ]  # fmt: skip
    res = _mpirun(2, "-m", "descent", "train", *flags, "--out", out, "--max-iters", "3",
                  cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, _show(res)
    files = sorted(p.name for p in out.iterdir())
    assert sum(f.endswith(".jsonl") for f in files) == 1, files
    ckpts = [f for f in files if f.endswith(".safetensors")]
    assert len(ckpts) == 1, files
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r.get("kind") == "step"]
    assert steps == [1, 2, 3], "each step must be logged once, by rank 0 only"
    assert res.stdout.count("descent: training") == 1  # only rank 0 talks

    # The global batch is split over the ranks: one process sees the same data and the same
    # losses (float32: the two ways of summing the gradient differ in the last bits).
    alone = tmp_path / "alone"
    res1 = _train_alone([*flags, "--out", alone, "--max-iters", "5"], tmp_path)
    assert res1.returncode == 0, _show(res1)
    ref = _step_losses(alone)
    two = _step_losses(out)
    for k in (1, 2, 3):
        assert two[k] == pytest.approx(ref[k], rel=1e-4), (k, two[k], ref[k])

    # Resume the 2-rank checkpoint with 1 rank: it continues where the 2 ranks stopped and
    # matches the uninterrupted single-process run.
    res2 = _train_alone([*flags, "--out", out, "--max-iters", "5", "--resume"], tmp_path)
    assert res2.returncode == 0, _show(res2)
    resumed = _step_losses(out)
    assert sorted(resumed) == [1, 2, 3, 4, 5]
    for k in (4, 5):
        assert resumed[k] == pytest.approx(ref[k], rel=1e-4), (k, resumed[k], ref[k])
