"""Grok under MPI data parallel (`mpirun -n 2`): experts that a rank's tokens did not choose
still take part in the allreduce, and `descent train --preset tiny-grok` on 2 ranks takes the
same steps as one process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from descent.distributed import launch

pytest.importorskip("mpi4py")
try:
    launch.find_mpirun()
except (FileNotFoundError, RuntimeError):  # pragma: no cover - machines without Open MPI
    pytest.skip("no mpirun", allow_module_level=True)

from test_distributed import MPI_TIMEOUT, SCRIPTS, _clean_env, _mpirun, _show
from test_grok_cli import TEXT, TINY

pytestmark = pytest.mark.mpi


@pytest.mark.timeout(MPI_TIMEOUT + 30)
def test_unused_experts_take_part_in_the_allreduce():
    res = _mpirun(2, SCRIPTS / "grok_ddp.py")
    assert res.returncode == 0, _show(res)
    assert res.stdout.count("GROK DDP OK") == 2, _show(res)


def _step_losses(out: Path) -> dict[int, float]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return {r["step"]: r["loss"] for r in map(json.loads, lines) if r["kind"] == "step"}


@pytest.mark.timeout(3 * MPI_TIMEOUT + 30)
def test_tiny_grok_on_two_ranks_matches_one_process(tmp_path):
    pytest.importorskip("tokenizers")
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT)
    flags = ["train", "--data", data, *TINY, "--max-iters", "4"]
    two, one = tmp_path / "two", tmp_path / "one"
    res = _mpirun(2, "-m", "descent", *flags, "--out", two, cwd=tmp_path)
    assert res.returncode == 0, _show(res)
    assert res.stdout.count("descent: training") == 1  # only rank 0 talks
    alone = subprocess.run([sys.executable, "-m", "descent", *map(str, flags), "--out", str(one)],
                           env=_clean_env(), capture_output=True, text=True,
                           timeout=MPI_TIMEOUT, cwd=tmp_path)  # fmt: skip
    assert alone.returncode == 0, _show(alone)
    a, b = _step_losses(one), _step_losses(two)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]
    for k in a:  # float32: the two ways of summing the gradient differ in the last bits
        assert b[k] == pytest.approx(a[k], rel=1e-4), (k, b[k], a[k])
