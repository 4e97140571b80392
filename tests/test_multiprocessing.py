"""descent.multiprocessing (torch.multiprocessing): the standard library's names, and spawn()
running fn(i, *args) in processes, raising the child's error with its traceback."""

from __future__ import annotations

import time

import pytest

import descent as ds
import descent.multiprocessing as mp


def _write(i, path, value):
    t = ds.tensor([float(value)]) * (i + 1)
    with open(f"{path}.{i}", "w") as f:
        f.write(str(t.item()))


def _fail(i):
    if i == 1:
        raise ValueError("boom in child")


def _wait_or_fail(i):
    if i == 0:  # a rank waiting for the other (a rendezvous, a collective)
        time.sleep(20)
    raise ValueError(f"process {i} died")


def test_join_raises_the_first_failure_while_another_process_still_waits():
    # PyTorch's ProcessContext.join waits on every process at once: process 1's error ends
    # the job at once (process 0 is terminated) instead of after process 0's 20 s wait.
    t0 = time.monotonic()
    with pytest.raises(mp.ProcessRaisedException, match="process 1 died"):
        mp.start_processes(_wait_or_fail, nprocs=2, start_method="fork")  # fork: cheap
    assert time.monotonic() - t0 < 10


def test_spawn_runs_every_rank(tmp_path):
    mp.spawn(_write, args=(str(tmp_path / "out"), 2.5), nprocs=2)
    got = sorted(float((tmp_path / f"out.{i}").read_text()) for i in range(2))
    assert got == [2.5, 5.0]


def test_spawn_raises_the_childs_error():
    with pytest.raises(mp.ProcessRaisedException, match="boom in child"):
        mp.spawn(_fail, nprocs=2)


def test_standard_names_and_queue_carry_tensors():
    ctx = mp.get_context("spawn")
    q = ctx.SimpleQueue()
    q.put(ds.tensor([1.0, 2.0]))
    assert q.get().tolist() == [1.0, 2.0]
    assert mp.Process is not None and mp.cpu_count() >= 1
    mp.set_sharing_strategy("file_system")
    assert mp.get_sharing_strategy() == "file_system"
    ctx_obj = mp.start_processes(_write, args=("/dev/null", 1), nprocs=1, join=False)
    assert ctx_obj.join() is True
