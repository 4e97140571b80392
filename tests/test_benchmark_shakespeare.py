"""benchmarks/shakespeare_char.py runs end to end: one run, the nanoGPT rival, a seed study.

Tiny runs (2 iterations on a small generated corpus, evaluations during training on 2
batches per split instead of the recipe's 20, final estimates on 2-3 instead of 200): these
check that the script works and reports what it claims (the figures themselves are for
`make bench`, never for a test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "shakespeare_char.py"


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(0)
    words = ["to", "be", "or", "not", "that", "is", "the", "question", "KING:", "\n"]
    text = " ".join(rng.choice(words, size=6000))
    path = tmp_path / "corpus.txt"
    path.write_text(text)
    return path


def run(args, corpus, tmp_path):
    env = dict(os.environ, DESCENT_DATA=str(corpus))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_one_run_with_nanogpt_rival_writes_json(corpus, tmp_path):
    out = run(
        [
            "--seed",
            "3",
            "--max-iters",
            "2",
            "--nanogpt",
            "--final-batches",
            "3",
            "--eval-iters",
            "2",
            "--json",
            str(tmp_path / "r.json"),
        ],  # fmt: skip
        corpus,
        tmp_path,
    )
    assert "final estimate (3 batches)" in out
    assert "nanoGPT in PyTorch, seed 3" in out
    assert "target val <= 1.9" in out
    r = json.loads((tmp_path / "r.json").read_text())
    # a few steps from ln(vocab): finite losses well above the trained figure
    assert 1.0 < r["val"] < 10.0 and 1.0 < r["val_all_windows"] < 10.0
    assert abs(r["val"] - r["val_all_windows"]) < 0.2  # the estimate and the exact mean agree


def test_seed_study_table_and_summary(corpus, tmp_path):
    out = run(
        ["--seeds", "1,2", "--nanogpt", "--jobs", "2", "--max-iters", "2", "--final-batches", "2",
         "--eval-iters", "2", "--json", str(tmp_path / "s.json")],
        corpus,
        tmp_path,
    )  # fmt: skip
    assert "FAILED" not in out
    for name in ("descent 2-batch", "descent all-windows", "nanogpt 2-batch"):
        assert f"{name}" in out and "n=2" in out
    assert "descent mean - nanoGPT mean (val)" in out
    rows = json.loads((tmp_path / "s.json").read_text())
    assert sorted((r["kind"], r["seed"]) for r in rows) == [
        ("descent", 1), ("descent", 2), ("nanogpt", 1), ("nanogpt", 2)
    ]  # fmt: skip
    by = {(r["kind"], r["seed"]): r["val"] for r in rows}
    assert by[("descent", 1)] != by[("descent", 2)]  # the seed reaches the run
    assert by[("nanogpt", 1)] != by[("nanogpt", 2)]
