"""Issue 14, MPI: every exit path of every rank ends the job within seconds.

A handled error on one rank (a missing data file), ranks given different flags, and an error
only one rank sees in the middle of training (a full disk on rank 0) must each end the whole
job promptly, with the error on one line; ranks that differ only in learning rate or seed are
warned about and run. Each job has a timeout, so a hang fails the test instead of freezing the
suite.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from descent.distributed import launch
from test_distributed import SCRIPTS, _clean_env, _show

pytestmark = pytest.mark.mpi
HANG = 90  # seconds: a job that has not ended by then is hung (start-up takes ~2-5 s)

TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "8", "--block-size", "8",
        "--batch-size", "4", "--eval-interval", "2", "--eval-iters", "1", "--warmup-iters", "1",
        "--lr-decay-iters", "4", "--no-progress", "--sample-tokens", "0"]  # fmt: skip


def _job(argv_per_rank: list[list], **extra) -> tuple[object, float]:
    spec = {"argv": [[str(a) for a in argv] for argv in argv_per_rank], **extra}
    env = _clean_env()
    env["PYTHONUNBUFFERED"] = "1"
    t0 = time.perf_counter()
    res = launch.run(len(argv_per_rank), [str(SCRIPTS / "per_rank_cli.py"), json.dumps(spec)],
                     timeout=HANG, env=env)  # fmt: skip
    return res, time.perf_counter() - t0


@pytest.fixture()
def corpus(tmp_path) -> Path:
    path = tmp_path / "text.txt"
    path.write_text("to be, or not to be, that is the question. " * 80)
    return path


def _errors(res) -> list[str]:
    return [line for line in res.stderr.splitlines() if "error:" in line]


@pytest.mark.timeout(HANG + 30)
def test_a_missing_data_file_on_one_rank_ends_every_rank(corpus, tmp_path):
    base = ["train", "--out", tmp_path / "out", "--max-iters", "3", *TINY]
    res, took = _job([[*base, "--data", corpus], [*base, "--data", tmp_path / "missing.txt"]])
    assert res.returncode == 2, _show(res)
    assert "Traceback" not in res.stderr, _show(res)
    errors = _errors(res)
    assert len(errors) == 1 and "rank 1" in errors[0] and "missing.txt" in errors[0], _show(res)


@pytest.mark.timeout(HANG + 30)
@pytest.mark.parametrize("flag,values", [("--max-iters", ("3", "4")),
                                         ("--eval-interval", ("2", "3"))])  # fmt: skip
def test_ranks_with_different_flags_are_stopped_at_start(corpus, tmp_path, flag, values):
    base = ["train", "--data", corpus, "--out", tmp_path / "out", *TINY]
    a, b = ([*base, "--max-iters", "3", flag, v] for v in values)
    res, took = _job([a, b])
    assert res.returncode == 2, _show(res)
    errors = _errors(res)
    assert len(errors) == 1 and flag in errors[0] and "rank 1" in errors[0], _show(res)
    assert not (tmp_path / "out" / "ckpt.safetensors").exists()


@pytest.mark.timeout(HANG + 30)
def test_different_learning_rates_seeds_and_corpora_are_warned_about(corpus, tmp_path):
    other = tmp_path / "other.txt"  # the same characters in another order: another checksum
    other.write_text("be, or not to be, that is the question. to " * 80)
    base = ["train", "--out", tmp_path / "out", "--max-iters", "2", *TINY]
    res, _ = _job([[*base, "--data", corpus, "--learning-rate", "1e-3", "--seed", "1"],
                   [*base, "--data", other, "--learning-rate", "2e-3", "--seed", "2"]])  # fmt: skip
    assert res.returncode == 0, _show(res)
    for needle in ("--learning-rate", "--seed", "training text differs"):
        assert needle in res.stderr, _show(res)
    assert res.stderr.count("warning") == 3, _show(res)  # rank 0 says each once


@pytest.mark.timeout(HANG + 30)
def test_an_error_only_rank_0_sees_mid_training_aborts_the_job(corpus, tmp_path):
    base = ["train", "--data", corpus, "--out", tmp_path / "out", "--max-iters", "6", *TINY]
    res, took = _job([base, base], full_disk=0)
    assert res.returncode != 0, _show(res)
    assert "No space left" in res.stderr and "Traceback" not in res.stderr, _show(res)
    assert took < HANG - 10, f"the job took {took:.0f} s to end"
